/* request_ops.c -- the operations routes of the front: health, readiness and the Prometheus
 * exposition (the configured probe paths). They answer on the handler's thread from
 * counters and gauges alone: no backend call, no auth, not in the request metrics or the
 * access log (r->probe). See request.h. */
#include "request.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conns.h"
#include "metrics.h"
#include "pool.h"
#include "resil.h"

static enum MHD_Result answer_metrics(struct request *r)
{
    struct fo_front *fr = r->front;
    struct fo_pool_stats ps;
    fo_pool_stats(fr->pool, &ps);
    struct fo_gauges g = {
        .requests_in_flight = atomic_load(&fr->waiting),
        .jobs_queued = ps.queued,
        .calls_in_flight = ps.running,
        .calls_waiting = ps.waiting,
        .client_connections = (uint64_t)fo_conns_count(fr->conns),
        .backend_connections = ps.connections,
        .ready = !atomic_load(&fr->draining),
    };
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    if (fo_metrics_write(fr->metrics, &g, &b) < 0 || fo_resil_write_metrics(r->rt->resil, &b) < 0) {
        fo_buf_free(&b);
        return MHD_NO;
    }
    size_t len;
    char *body = fo_buf_release(&b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    return fo__answer(r, MHD_HTTP_OK, resp, NULL, NULL);
}

bool fo__request_probe(struct request *r, const char *url, const char *method, enum MHD_Result *res)
{
    const struct fo_config *cfg = r->rt->cfg;
    int which = 0;
    if (cfg->health_path && strcmp(url, cfg->health_path) == 0)
        which = 1;
    else if (cfg->ready_path && strcmp(url, cfg->ready_path) == 0)
        which = 2;
    else if (cfg->metrics_path && strcmp(url, cfg->metrics_path) == 0)
        which = 3;
    if (!which)
        return false;
    r->probe = true;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *res = fo_request_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use GET",
                                "GET, HEAD");
        return true;
    }
    if (which == 1)
        *res = fo__answer_text(r, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}");
    else if (which == 2 && atomic_load(&r->front->draining))
        *res = fo__answer_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                               "{\"status\":\"draining\"}");
    else if (which == 2)
        *res = fo__answer_text(r, MHD_HTTP_OK, "application/json", "{\"status\":\"ready\"}");
    else
        *res = answer_metrics(r);
    return true;
}
