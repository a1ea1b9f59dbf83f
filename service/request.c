/* request.c -- one client request's life: route, fan out, fan in, answer.
 *
 * DESIGN
 * The call that sees the end of the request either answers at once
 * (probes, errors) or builds the backend calls, suspends the connection and
 * hands the fan-out to the worker pool -- suspend first, submit second, so a
 * fast worker can never resume a connection that is not suspended yet. The
 * worker that ends the last call resumes the connection (MHD's resume is
 * thread-safe); MHD then calls the handler again on one of its threads,
 * which drains the request's fan-in channel, decides the status, merges the
 * bodies and answers. A suspended connection needs no timeout of its own:
 * every backend call carries a curl timeout no later than the request
 * deadline, so the fan-out always ends by then. */
#include "request.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "fmt.h"
#include "forward.h"
#include "head.h"
#include "log.h"
#include "merge.h"
#include "graph.h"
#include "pipeline.h"
#include "resil.h"

/* ---- the fan-out ---- */

static void on_fanout_done(struct fo_fanout *f)
{
    struct request *r = f->data;
    /* Last touch of the request from the worker thread. */
    MHD_resume_connection(r->conn);
}

/* Fan-in: each ended call, taken off the request's channel as the pool
 * delivers it (on the worker thread, which runs every call of this request),
 * goes through the pipeline, is counted, and is tallied for the status. A
 * required call that failed by itself decides the request: the pool aborts
 * the rest (fail fast). */
static bool on_call_ended(struct fo_fanout *f)
{
    struct request *r = f->data;
    struct fo_stage_env env = {.max_json_depth = r->front->max_json_depth,
                               .max_tree_bytes = r->rt->cfg->max_request_response_bytes};
    void *item;
    while (fo_chan_recv(r->fanin, &item, 0) == 0) {
        struct fo_call *c = item;
        if (r->graph && fo_graph_is_item(r->graph, c)) { /* One element of a foreach. */
            fo_pipeline_run(&env, c);
            fo_metrics_call(c->stats, c->outcome, (int64_t)(c->ms * 1000.0));
            fo_graph_item_ended(r->graph, c, f);
            continue;
        }
        ssize_t i = c - r->plan.calls;
        c->start_ms = c->start_us ? (long)((c->start_us - r->start_us) / 1000) : -1;
        if (!c->gathered) {
            fo_pipeline_judge(&env, c);
            if (r->graph) /* What its dependents read: the body before its own shaping. */
                fo_graph_capture(r->graph, (size_t)i, c);
            fo_pipeline_shape(&env, c);
        }
        if (c->resil && c->start_us)
            fo_resil_call_judged(c); /* Its breaker; a good value kept for stale-on-error. */
        fo_metrics_call(c->stats, c->outcome, (int64_t)(c->ms * 1000.0));
        if (r->graph)
            fo_graph_ended(r->graph, (size_t)i, f);
        bool stale = c->resil && fo_resil_stale(c); /* A failure answered from the cache. */
        struct fo_tally *t = &r->tally;
        t->in++;
        t->stale += stale;
        if (c->outcome == FO_OK) {
            t->ok++;
            t->partial += c->items_failed > 0; /* A foreach with failed items. */
            continue;
        }
        /* The first in plan order, whatever the order of arrival. */
        if (t->first_failed < 0 || i < t->first_failed)
            t->first_failed = i;
        if (c->outcome == FO_ERR_TIMEOUT)
            t->any_timeout = true;
        bool cancelled = c->outcome == FO_ERR_CANCELLED;
        if (c->required && !cancelled && (t->req_failed < 0 || i < t->req_failed))
            t->req_failed = i;
        if (c->required && cancelled && (t->req_cancelled < 0 || i < t->req_cancelled))
            t->req_cancelled = i;
    }
    return r->tally.req_failed >= 0;
}

/* Make the context and the fan-in channel for the plan's calls, with a
 * deadline 'timeout_ms' after the request started (and no later than the
 * client asks). Returns 0, or answers the error itself and returns -1 with
 * the MHD result in *res. */
static int prepare(struct request *r, int64_t timeout_ms, enum MHD_Result *res)
{
    int64_t client_ms;
    if (fo_head_timeout(r->conn, &client_ms) < 0) {
        *res = fo_request_error(r, MHD_HTTP_BAD_REQUEST, "invalid_timeout",
                                "X-Timeout-Ms must be one integer from 1 to 3600000", NULL);
        return -1;
    }
    if (client_ms > 0 && client_ms < timeout_ms)
        timeout_ms = client_ms;
    int64_t deadline = r->start_us / 1000 + timeout_ms;
    if (fo_ctx_create(&r->ctx, r->front->root, deadline) < 0 ||
        fo_chan_create(&r->fanin, r->plan.n) < 0) {
        *res = MHD_NO;
        return -1;
    }
    r->ncalls = r->plan.n;
    r->tally.first_failed = r->tally.req_failed = r->tally.req_cancelled = -1;
    return 0;
}

/* Take 'n' calls from the global budget and one from each call's backend
 * budget. Returns false (and takes nothing) when a budget is spent. */
static bool admit(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    struct fo_front *fr = r->front;
    long n = (long)r->ncalls;
    if (atomic_fetch_add_explicit(&fr->calls_inflight, n, memory_order_relaxed) + n >
        (long)cfg->max_inflight_calls) {
        atomic_fetch_sub_explicit(&fr->calls_inflight, n, memory_order_relaxed);
        return false;
    }
    if (cfg->max_backend_inflight == 0)
        return true;
    for (size_t i = 0; i < r->ncalls; i++) {
        struct fo_backend_stats *b = r->plan.calls[i].stats;
        if (atomic_fetch_add_explicit(&b->inflight, 1, memory_order_relaxed) + 1 >
            (long)cfg->max_backend_inflight) {
            for (size_t k = 0; k <= i; k++)
                atomic_fetch_sub_explicit(&r->plan.calls[k].stats->inflight, 1,
                                          memory_order_relaxed);
            atomic_fetch_sub_explicit(&fr->calls_inflight, n, memory_order_relaxed);
            return false;
        }
    }
    return true;
}

/* Give back what admit() took. */
static void release(struct request *r)
{
    atomic_fetch_sub_explicit(&r->front->calls_inflight, (long)r->ncalls, memory_order_relaxed);
    if (r->rt->cfg->max_backend_inflight == 0)
        return;
    for (size_t i = 0; i < r->ncalls; i++)
        atomic_fetch_sub_explicit(&r->plan.calls[i].stats->inflight, 1, memory_order_relaxed);
}

/* Suspend the connection and hand the calls to the pool. */
static enum MHD_Result launch(struct request *r)
{
    struct fo_front *fr = r->front;
    if (fo_budget_full(fr->budget)) {
        r->ncalls = 0; /* None is made: the access log lists none. */
        return fo_request_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                "too many response bytes buffered; retry later", NULL);
    }
    if (!admit(r)) {
        r->ncalls = 0;
        return fo_request_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                "too many backend calls in flight; retry later", NULL);
    }
    /* Count first, then look at 'draining' (see the field). */
    atomic_fetch_add(&fr->waiting, 1);
    if (atomic_load(&fr->draining)) {
        atomic_fetch_sub(&fr->waiting, 1);
        release(r);
        r->ncalls = 0;
        return fo__answer_draining(r);
    }
    r->fan.calls = r->plan.calls;
    r->fan.ncalls = r->ncalls;
    r->fan.ctx = r->ctx;
    r->fan.fanin = r->fanin;
    r->fan.request_id = r->id;
    r->fan.max_bytes = r->rt->cfg->max_request_response_bytes;
    r->fan.ended = on_call_ended;
    r->fan.done = on_fanout_done;
    r->fan.data = r;

    r->state = REQ_WAIT;
    r->waiting = true;
    MHD_suspend_connection(r->conn);
    fo_conn_watch(fr->conns, r->cr, r->ctx); /* A reset cancels it (conns.h). */
    if (fo_pool_submit(fr->pool, &r->fan) < 0) {
        r->state = REQ_FAILED;
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

/* The auth of the route refuses the request: answer it (401 or 403, no
 * backend call), count it by reason, and return true. */
static bool refused(struct request *r, const struct fo_auth *a, enum MHD_Result *res)
{
    struct fo_auth_fail f;
    int rc = fo_auth_check(a, r->conn, (int64_t)time(NULL), &r->auth, &f);
    if (rc == 0)
        return false;
    if (rc == -ENOMEM) {
        *res = MHD_NO;
        return true;
    }
    fo_metrics_auth_failure(r->front->metrics, f.reason);
    r->auth_failed = (int)f.reason;
    snprintf(r->www_auth, sizeof r->www_auth, "%s", f.www);
    *res = fo_request_error(r, f.status, f.code, f.message, NULL);
    return true;
}

/* The client's address as text, and whether it reached fanout over TLS. */
static void client_of(struct MHD_Connection *c, char *addr, size_t len, struct fo_fwd_client *cl)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *in = NULL;
    if (sa && sa->sa_family == AF_INET)
        in = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        in = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (in && inet_ntop(sa->sa_family, in, addr, (socklen_t)len))
        cl->addr = addr;
    const union MHD_ConnectionInfo *di = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    const union MHD_DaemonInfo *fl =
        di ? MHD_get_daemon_info(di->daemon, MHD_DAEMON_INFO_FLAGS) : NULL;
    if (fl && (fl->flags & MHD_USE_TLS))
        cl->proto = "https";
}

/* The client's key for a keyed endpoint rate limit: its address, or a
 * header's value (none: the shared empty key). */
static size_t rate_key(const struct request *r, const struct fo_rate_conf *rc, char *buf,
                       size_t len, const char **key)
{
    *key = "";
    if (rc->key == FO_RATE_KEY_HEADER) {
        const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, rc->key_header);
        *key = v ? v : "";
        return strlen(*key);
    }
    if (rc->key != FO_RATE_KEY_CLIENT_IP)
        return 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
    else
        buf[0] = '\0';
    *key = buf;
    return strlen(buf);
}

static enum MHD_Result start_endpoint(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    const struct fo_endpoint_conf *ep = r->ep;
    int64_t timeout = cfg->timeout_ms;
    if (ep->timeout_ms > 0 && ep->timeout_ms < timeout)
        timeout = ep->timeout_ms;
    const struct fo_rate_conf *rl = fo_resil_endpoint_rate(r->rt->resil, r->ep_index);
    if (rl) {
        char ip[INET6_ADDRSTRLEN];
        const char *key;
        size_t klen = rate_key(r, rl, ip, sizeof ip, &key);
        if (!fo_resil_admit(r->rt->resil, r->ep_index, key, klen, &r->retry_after_s))
            return fo_request_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "rate_limited",
                                    "too many requests; retry after the time Retry-After says",
                                    NULL);
    }
    /* Placeholder values and the client, read once for every call of the plan. */
    /* Kept in the request: dependent calls are built from them later. */
    fo_tmpl_resolve(ep->scope, r, &r->vals);
    r->fwd = (struct fo_fwd_client){.conn = r->conn,
                                    .proto = "http",
                                    .secret = fo_auth_secret_header(fo_endpoint_auth(cfg, ep))};
    if (fo_fwd_active(&ep->fwd_headers))
        client_of(r->conn, r->fwd_addr, sizeof r->fwd_addr, &r->fwd);
    struct fo_plan_src src = {
        .vals = &r->vals,
        .fwd = &r->fwd,
        .body = r->body.data,
        .body_len = r->body.len,
        .body_type = ep->forward_body
                         ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type")
                         : NULL,
    };
    size_t slot = 0;
    int rc = fo_plan_endpoint(&r->plan, ep, &src, r->rt->be_stats[r->ep_index], &slot);
    if (rc == -ENOENT) {
        char msg[300];
        snprintf(msg, sizeof msg, "{%s} has no value in this request and no default",
                 fo_tmpl_slot_name(ep->scope, slot));
        return fo_request_error(r, MHD_HTTP_BAD_REQUEST, "missing_parameter", msg, NULL);
    }
    if (rc < 0)
        return MHD_NO;
    if (ep->has_deps)
        r->graph = fo_graph_create(&r->plan, ep->scope, ep->deprefs, &r->vals);
    fo_resil_plan(r->rt->resil, r->ep_index, &r->plan);
    enum MHD_Result res;
    if (fo_auth_apply(&r->auth, &r->plan) < 0) /* forward_claims headers. */
        return MHD_NO;
    if (prepare(r, timeout, &res) < 0)
        return res;
    r->report = ep->report;
    return launch(r);
}

static enum MHD_Result start_batch(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    struct fo_batch_error berr = {0};
    int rc = fo_batch_parse(&r->batch, r->body.data ? r->body.data : "", r->body.len,
                            &cfg->aggregate, r->front->max_json_depth, &berr);
    if (rc == -ENOMEM)
        return MHD_NO;
    if (rc < 0)
        return fo_request_error(r, (unsigned)berr.status, berr.code, berr.message, NULL);
    struct fo_batch *b = r->batch;
    enum MHD_Result res;
    int64_t timeout = b->timeout_ms < cfg->timeout_ms ? b->timeout_ms : cfg->timeout_ms;
    if (fo_plan_batch(&r->plan, b, r->rt->host_stats, &r->rt->cfg->backend_tls) < 0)
        return MHD_NO;
    if (b->has_deps)
        r->graph = fo_graph_create(&r->plan, b->scope, b->refs, NULL);
    if (prepare(r, timeout, &res) < 0)
        return res;
    r->report = b->report;
    return launch(r);
}

/* ---- fan-in and the answer ---- */

/* The request no longer waits on the pool: give back its counts. Called
 * from finish(), or from on_completed() when the client left while the
 * connection was suspended (MHD then never calls the handler again). */
void fo__request_unwait(struct request *r)
{
    if (!r->waiting)
        return;
    r->waiting = false;
    fo_conn_unwatch(r->front->conns, r->cr);
    atomic_fetch_sub(&r->front->waiting, 1);
    release(r);
}

/* ---- routing ---- */

/* A CORS preflight for a route under a policy: 204 with the policy's
 * headers, no backend call, no auth (browsers send no credentials on a
 * preflight). Returns false when no route of 'url' has a policy: the
 * request is then routed like any other (405 on an endpoint path). */
static bool preflight(struct request *r, const char *url, enum MHD_Result *res)
{
    const struct fo_config *cfg = r->rt->cfg;
    const char *want =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    const struct fo_cors *p = NULL;
    struct fo_buf methods; /* The methods of the path's endpoints, for Allow-Methods. */
    fo_buf_init(&methods, FO_BUF_UNLIMITED);
    bool batch = cfg->aggregate.enabled && strcmp(url, cfg->aggregate.path) == 0;
    if (batch) {
        p = cfg->cors;
        if (fo_buf_puts(&methods, "POST") < 0)
            fo_panic("out of memory");
    }
    size_t n = strlen(url);
    bool exact = false; /* 'p' is the policy of an endpoint of the wanted method. */
    for (size_t i = 0; !batch && i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *ep = &cfg->endpoints[i];
        struct fo_params params = {0};
        int m = fo_path_match(ep->pattern, url, n, &params);
        fo_params_clear(&params);
        const struct fo_cors *c = m ? fo_endpoint_cors(cfg, ep) : NULL;
        if (!c)
            continue;
        if ((methods.len && fo_buf_puts(&methods, ", ") < 0) ||
            fo_buf_puts(&methods, ep->method) < 0)
            fo_panic("out of memory");
        if (!exact && (!p || strcmp(ep->method, want) == 0)) {
            p = c;
            exact = strcmp(ep->method, want) == 0;
        }
    }
    if (!p) {
        fo_buf_free(&methods);
        return false;
    }
    r->cors = p;
    r->preflight = true;
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        fo_buf_free(&methods);
        *res = MHD_NO;
        return true;
    }
    fo_cors_preflight(p, r->conn, methods.data, resp);
    fo_buf_free(&methods);
    *res = fo__answer(r, MHD_HTTP_NO_CONTENT, resp, NULL, NULL);
    return true;
}

enum MHD_Result fo_request_route(struct request *r, const char *url, const char *method)
{
    const struct fo_config *cfg = r->rt->cfg;
    enum MHD_Result res;
    if (fo__request_probe(r, url, method, &res))
        return res;
    if (fo_cors_is_preflight(r->conn, method) && preflight(r, url, &res))
        return res;

    if (cfg->aggregate.enabled && strcmp(url, cfg->aggregate.path) == 0) {
        r->cors = cfg->cors;
        if (strcmp(method, "POST") != 0)
            return fo_request_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                    "use POST", "POST");
        if (cfg->auth && refused(r, cfg->auth, &res))
            return res;
        return start_batch(r);
    }

    /* Endpoints: the first whose path and method match. Remember the methods
     * of path-only matches for 405's Allow. */
    struct fo_buf allow; /* Methods of path-only matches, for 405's Allow: any length. */
    fo_buf_init(&allow, FO_BUF_UNLIMITED);
    size_t n = strlen(url);
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *ep = &cfg->endpoints[i];
        struct fo_params params = {0};
        int m = fo_path_match(ep->pattern, url, n, &params);
        if (m == 0)
            continue;
        if (strcmp(ep->method, method) != 0 &&
            !(strcmp(method, "HEAD") == 0 && strcmp(ep->method, "GET") == 0)) {
            fo_params_clear(&params);
            if ((allow.len && fo_buf_puts(&allow, ", ") < 0) || fo_buf_puts(&allow, ep->method) < 0)
                fo_panic("out of memory");
            continue;
        }
        fo_buf_free(&allow);
        r->ep = ep;
        r->ep_index = i;
        r->cors = fo_endpoint_cors(cfg, ep);
        const struct fo_auth *a = fo_endpoint_auth(cfg, ep);
        if (a && refused(r, a, &res)) {
            fo_params_clear(&params);
            return res;
        }
        if (m < 0)
            return fo_request_error(r, MHD_HTTP_BAD_REQUEST, "invalid_param",
                                    "a path parameter is malformed (bad %-escape, '.' or '..', "
                                    "or too long)",
                                    NULL);
        r->params = params;
        return start_endpoint(r);
    }
    if (allow.len) {
        enum MHD_Result rc = fo_request_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                              "method not allowed for this path", allow.data);
        fo_buf_free(&allow);
        return rc;
    }
    return fo_request_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no endpoint for this path", NULL);
}

/* ---- the request head: id, limits ---- */

static void take_id(struct request *r)
{
    if (fo_head_request_id(r->conn, r->id, sizeof r->id))
        return;
    uint64_t seq = atomic_fetch_add_explicit(&r->front->id_seq, 1, memory_order_relaxed);
    size_t len = fo_fmt_hex(r->id, r->front->id_prefix, 8); /* "%08x%012llx" */
    unsigned width = 12;
    while (width < 16 && seq >> (4 * width))
        width++;
    len += fo_fmt_hex(r->id + len, seq, width);
    r->id[len] = '\0';
}

struct request *fo_request_new(struct fo_front *front, struct fo_runtime *rt,
                               struct MHD_Connection *c, const char *method, const char *url)
{
    struct request *r = fo_xcalloc(sizeof *r);
    atomic_fetch_add_explicit(&front->live, 1, memory_order_relaxed);
    r->front = front;
    r->rt = rt;
    r->conn = c;
    r->state = REQ_READ;
    r->start_us = fo_clock_us();
    r->method = method;
    r->url = url;
    r->auth_failed = -1;
    fo_buf_init(&r->body, rt->cfg->max_body_bytes);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->cr = ci ? ci->socket_context : NULL;
    fo_conn_head(r->cr);
    take_id(r);
    return r;
}

void fo_request_end(struct request *r, enum MHD_RequestTerminationCode toe)
{
    struct fo_front *fr = r->front;
    if (r->state == REQ_WAIT || r->state == REQ_FAILED) {
        /* MHD ended it without the handler call after the resume (the client
         * left meanwhile): count the request all the same (its calls were
         * counted as they came in). */
        fo_metrics_request(fo__request_stats(r), 0, fo_clock_us() - r->start_us);
    }
    fo__request_unwait(r);
    fo_conn_done(r->cr);
    if (r->state != REQ_READ)
        fo__access_log(r, toe);
    fo_graph_destroy(r->graph);
    fo_plan_clear(&r->plan);
    fo_chan_destroy(r->fanin, NULL);
    fo_ctx_destroy(r->ctx);
    fo_batch_destroy(r->batch);
    fo_params_clear(&r->params);
    fo_auth_result_clear(&r->auth);
    fo_buf_free(&r->body);
    fo_runtime_put(r->rt);
    free(r);
    atomic_fetch_sub_explicit(&fr->live, 1, memory_order_relaxed);
}
