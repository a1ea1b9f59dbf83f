/* answer.c -- a request's answer: the response, its headers, its accounting,
 * and the access log line.
 *
 * Every answer goes through fo__answer: the request id, X-Fanout-Complete,
 * Allow, Retry-After on a 503, Connection: close while draining or when the
 * framing is in doubt, the metrics of the request, and MHD_queue_response.
 * A large body stays charged to the buffered-bytes budget until MHD has
 * sent and freed it. */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "merge.h"
#include "resil.h"

struct fo_endpoint_stats *fo__request_stats(const struct request *r)
{
    if (r->ep)
        return r->rt->ep_stats[r->ep_index];
    if (r->batch ||
        (r->rt->batch_stats && r->url && strcmp(r->url, r->rt->cfg->aggregate.path) == 0))
        return r->rt->batch_stats;
    return r->rt->other_stats;
}

enum MHD_Result fo__answer(struct request *r, unsigned status, struct MHD_Response *resp,
                           const char *complete, const char *allow)
{
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (complete)
        MHD_add_response_header(resp, "X-Fanout-Complete", complete);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE && !r->probe) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", r->retry_after_s > 0 ? (long long)r->retry_after_s : 1LL);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->www_auth[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
    if (r->cors && !r->preflight)
        fo_cors_answer(r->cors, r->conn, resp);
    if (r->close || atomic_load_explicit(&r->front->draining, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->state = REQ_DONE;
    r->status = status;
    if (!r->probe)
        fo_metrics_request(fo__request_stats(r), status, fo_clock_us() - r->start_us);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A large answer stays charged to the buffered-bytes budget until MHD has
 * sent it and frees it. */
struct charged {
    struct fo_budget *budget; /* Borrowed. */
    char *body;               /* From malloc(); freed with this. */
    size_t len;
};

static void free_charged(void *cls)
{
    struct charged *ch = cls;
    fo_budget_release(ch->budget, ch->len);
    free(ch->body);
    free(ch);
}

/* Answers below this are not worth a second allocation to account for. */
#define CHARGE_MIN (16 * 1024)

static struct MHD_Response *response_from(struct fo_front *fr, char *body, size_t len)
{
    struct charged *ch = len >= CHARGE_MIN ? malloc(sizeof *ch) : NULL;
    if (!ch)
        return MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    ch->budget = fr->budget;
    ch->body = body;
    ch->len = len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback_cls(len, body, free_charged, ch);
    if (!resp) {
        free(ch);
        return NULL;
    }
    fo_budget_charge(fr->budget, len);
    return resp;
}

enum MHD_Result fo__answer_bytes(struct request *r, unsigned status, char *body, size_t len,
                                 const char *type, const char *complete, const char *allow)
{
    struct MHD_Response *resp = response_from(r->front, body, len);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return fo__answer(r, status, resp, complete, allow);
}

enum MHD_Result fo__answer_json(struct request *r, unsigned status, char *body, size_t len,
                                const char *complete, const char *allow)
{
    return fo__answer_bytes(r, status, body, len, "application/json", complete, allow);
}

enum MHD_Result fo_request_error(struct request *r, unsigned status, const char *code,
                                 const char *message, const char *allow)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    if (fo_merge_error(&b, code, message, NULL, NULL, 0, NULL) < 0) {
        fo_buf_free(&b);
        return MHD_NO;
    }
    size_t len;
    char *body = fo_buf_release(&b, &len);
    return fo__answer_json(r, status, body, len, NULL, allow);
}

/* While draining no request is suspended any more: new requests on the
 * connections still open are answered at once, and the connection closed. */
enum MHD_Result fo__answer_draining(struct request *r)
{
    return fo_request_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "draining",
                            "the server is shutting down; retry on another instance", NULL);
}

/* Answer while the request body is still arriving, then close: a chunked
 * upload past max_body_bytes may never end, and libmicrohttpd 0.9.75 refuses
 * MHD_queue_response until the whole body is in (it returns MHD_NO in the
 * body-receiving states). So the answer is written on the socket here, once,
 * before anything else could be (MHD writes nothing while it reads a body),
 * and the caller returns MHD_NO so that MHD closes the connection. The
 * client's kernel keeps the answer readable even when the close resets the
 * connection under its unsent upload. */
void fo_request_refuse_mid_body(struct request *r, unsigned status, const char *reason,
                                const char *code, const char *message)
{
    r->state = REQ_DONE;
    r->status = status;
    fo_metrics_request(fo__request_stats(r), status, fo_clock_us() - r->start_us);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    struct fo_buf body, out;
    fo_buf_init(&body, 4096);
    fo_buf_init(&out, 8192);
    if (fo_merge_error(&body, code, message, NULL, NULL, 0, NULL) == 0 &&
        fo_buf_printf(&out,
                      "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n",
                      status, reason, body.len, r->id) == 0 &&
        fo_buf_append(&out, body.data, body.len) == 0)
        (void)send(ci->connect_fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    fo_buf_free(&body);
    fo_buf_free(&out);
}

enum MHD_Result fo__answer_text(struct request *r, unsigned status, const char *type,
                                const char *text)
{
    size_t len = strlen(text);
    char *body = malloc(len + 1);
    if (!body)
        return MHD_NO;
    memcpy(body, text, len + 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return fo__answer(r, status, resp, NULL, NULL);
}

/* One JSON line per answered request, written with one write(2). */
void fo__access_log(struct request *r, enum MHD_RequestTerminationCode toe)
{
    const struct fo_config *cfg = r->rt->cfg;
    if (!cfg->access_log || (r->probe && !cfg->access_log_probes))
        return;
    struct fo_buf b;
    fo_buf_init(&b, 1 << 20);
    if (!fo_log_begin(&b, FO_LOG_INFO, "access"))
        return;
    fo_buf_puts(&b, ",\"id\":");
    fo_json_put_string(&b, r->id, strlen(r->id));
    fo_buf_puts(&b, ",\"method\":");
    fo_json_put_string(&b, r->method ? r->method : "", r->method ? strlen(r->method) : 0);
    fo_buf_puts(&b, ",\"path\":");
    fo_json_put_string(&b, r->url ? r->url : "", r->url ? strlen(r->url) : 0);
    fo_buf_puts(&b, ",\"endpoint\":");
    const char *label = fo__request_stats(r) ? fo__request_stats(r)->label : "other";
    fo_json_put_string(&b, label, strlen(label));
    fo_buf_puts(&b, ",\"status\":");
    fo_buf_put_int(&b, r->status);
    if (r->auth.name) { /* The key's name, never the key. */
        fo_buf_puts(&b, ",\"auth\":");
        fo_json_put_string(&b, r->auth.name, strlen(r->auth.name));
    }
    if (r->auth_failed >= 0)
        fo_buf_printf(&b, ",\"auth_failed\":\"%s\"", fo_auth_reason_name(r->auth_failed));
    if (r->ncalls)
        fo_buf_puts(&b, r->complete ? ",\"complete\":true" : ",\"complete\":false");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        fo_buf_printf(&b, ",\"aborted\":%d", (int)toe);
    fo_buf_puts(&b, ",\"ms\":");
    fo_buf_put_ms(&b, (double)(fo_clock_us() - r->start_us) / 1000.0);
    if (r->ncalls) {
        fo_buf_puts(&b, ",\"backends\":{");
        for (size_t i = 0; i < r->ncalls; i++) {
            const struct fo_call *c = &r->plan.calls[i];
            const char *name = c->name;
            if (i)
                fo_buf_putc(&b, ',');
            fo_json_put_string(&b, name, strlen(name));
            fo_buf_puts(&b, ":{\"outcome\":\"");
            fo_buf_puts(&b, fo_outcome_name(c->outcome));
            fo_buf_puts(&b, "\",\"status\":");
            fo_buf_put_int(&b, c->status);
            fo_buf_puts(&b, ",\"ms\":");
            fo_buf_put_ms(&b, c->ms);
            if (c->stage)
                fo_buf_printf(&b, ",\"stage\":\"%s\"", c->stage);
            if (c->start_us && c->start_ms >= 0) {
                fo_buf_puts(&b, ",\"start_ms\":");
                fo_buf_put_int(&b, c->start_ms);
            }
            if (c->gathered) {
                fo_buf_puts(&b, ",\"items_failed\":");
                fo_buf_put_int(&b, c->items_failed);
            }
            fo_resil_put_report(&b, c); /* Attempts, host, stale (resil.h). */
            fo_buf_putc(&b, '}');
        }
        fo_buf_putc(&b, '}');
    }
    fo_log_finish(&b);
    fo_buf_free(&b);
}
