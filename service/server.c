/* server.c -- the HTTP front: libmicrohttpd, routing, the request lifecycle.
 *
 * DESIGN
 * libmicrohttpd runs an epoll thread pool and calls on_request() for each
 * step of a request. The handler is two-phase: the first call only attaches
 * a struct request (queueing an answer in the first call makes MHD close
 * the connection, so every request would pay a new TCP handshake); later
 * calls collect the body, and the call that sees the end of the request
 * either answers at once (health, errors) or builds the backend calls,
 * suspends the connection and hands the fan-out to the worker pool --
 * suspend first, submit second, so a fast worker can never resume a
 * connection that is not suspended yet.
 *
 * The worker that ends the last call resumes the connection (MHD's resume is
 * thread-safe); MHD then calls on_request() again on one of its threads,
 * which drains the request's fan-in channel, decides the status, merges the
 * bodies and queues the answer. A suspended connection has no timeout of
 * its own, but it needs none: every backend call carries a curl timeout no
 * later than the request deadline, so the fan-out always ends by then.
 *
 * A struct request lives from the first call to MHD's completion callback,
 * which can only come after the resume, i.e. after the pool is done with it.
 *
 * Shutdown: quiesce (stop accepting), wait for the in-flight count to reach
 * zero, cancel the root context after the drain time (the pool aborts what
 * is left and every request is answered), then MHD_stop_daemon, which must
 * never see a suspended connection. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "buf.h"
#include "chan.h"
#include "clock.h"
#include "ctx.h"
#include "log.h"
#include "merge.h"
#include "tmpl.h"

enum req_state {
    REQ_READ,   /* Headers seen; collecting the body. */
    REQ_WAIT,   /* Suspended while the pool runs the calls. */
    REQ_FAILED, /* Suspended, then the submit failed: answer 'err' when resumed. */
    REQ_DONE,   /* Answer queued. */
};

/* One client request. From calloc() in the first handler call; freed in
 * on_completed(). Touched by one server thread at a time, and by the pool
 * only between submit and resume. */
struct request {
    struct fo_server *srv;         /* Borrowed. */
    struct MHD_Connection *conn;   /* Borrowed; valid until on_completed. */
    enum req_state state;
    int64_t start_us;              /* First handler call. */
    struct fo_buf body;            /* Request body, capped at max_body_bytes. */
    bool body_too_large;           /* A chunk went past the cap. */

    const struct fo_endpoint_conf *ep; /* Configured endpoint, or NULL for a batch. */
    struct fo_batch *batch;        /* Ad-hoc batch, from fo_batch_parse. */
    struct fo_params params;       /* Path parameters (endpoint requests). */
    bool report;                   /* Add "_fanout". */

    struct fo_ctx *ctx;            /* Deadline and cancellation, child of the root. */
    struct fo_chan *fanin;         /* Results arrive here, one per call. */
    struct fo_fanout fan;          /* What the pool runs. */
    struct fo_call *calls;         /* From calloc(): one per backend, in config order. */
    size_t ncalls;
    struct fo_buf urls;            /* Expanded URLs, NUL-separated. */

    int err_status;                /* REQ_FAILED: what to answer. */
    const char *err_code;
};

struct fo_server {
    const struct fo_config *cfg;   /* Borrowed. */
    struct fo_pool *pool;          /* Borrowed. */
    struct MHD_Daemon *daemon;
    struct fo_ctx *root;           /* Parent of every request context; cancelled on stop. */
    uint16_t port;                 /* Bound port. */
    atomic_long in_flight;         /* Requests suspended on the pool. */
    struct MHD_Response *health;   /* Shared, immutable answer to /health. */
    bool stopped;
};

/* ---- answers ---- */

static enum MHD_Result queue_json(struct MHD_Connection *c, unsigned status, char *body,
                                  size_t len, const char *complete, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (complete)
        MHD_add_response_header(resp, "X-Fanout-Complete", complete);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result answer_error(struct request *r, unsigned status, const char *code,
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
    r->state = REQ_DONE;
    return queue_json(r->conn, status, body, len, NULL, allow);
}

/* ---- the fan-out ---- */

static void on_fanout_done(struct fo_fanout *f)
{
    struct request *r = f->data;
    /* Last touch of the request from the worker thread. */
    MHD_resume_connection(r->conn);
}

/* Parse the client's X-Timeout-Ms: 1..3600000. Returns 0 (absent: *ms = 0),
 * or -EINVAL. */
static int client_timeout(struct MHD_Connection *c, int64_t *ms)
{
    *ms = 0;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Timeout-Ms");
    if (!v)
        return 0;
    int64_t n = 0;
    const char *p = v;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > 3600000)
            return -EINVAL;
    }
    if (*p != '\0' || n < 1)
        return -EINVAL;
    *ms = n;
    return 0;
}

/* Make the context, channel and calls array for n calls with a deadline
 * 'timeout_ms' from the start of the request (and no later than the
 * client's). Returns 0 or answers the error itself and returns -1 with the
 * MHD result in *res. */
static int prepare(struct request *r, size_t n, int64_t timeout_ms, enum MHD_Result *res)
{
    int64_t client_ms;
    if (client_timeout(r->conn, &client_ms) < 0) {
        *res = answer_error(r, MHD_HTTP_BAD_REQUEST, "invalid_timeout",
                            "X-Timeout-Ms must be an integer from 1 to 3600000", NULL);
        return -1;
    }
    if (client_ms > 0 && client_ms < timeout_ms)
        timeout_ms = client_ms;
    int64_t deadline = r->start_us / 1000 + timeout_ms;
    if (fo_ctx_create(&r->ctx, r->srv->root, deadline) < 0 || fo_chan_create(&r->fanin, n) < 0) {
        *res = MHD_NO;
        return -1;
    }
    r->calls = calloc(n, sizeof *r->calls);
    if (!r->calls) {
        *res = MHD_NO;
        return -1;
    }
    r->ncalls = n;
    return 0;
}

/* Suspend the connection and hand the calls to the pool. */
static enum MHD_Result launch(struct request *r)
{
    struct fo_server *srv = r->srv;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fan.calls = r->calls;
    r->fan.ncalls = r->ncalls;
    r->fan.ctx = r->ctx;
    r->fan.fanin = r->fanin;
    r->fan.client_fd = ci ? ci->connect_fd : -1;
    r->fan.done = on_fanout_done;
    r->fan.data = r;

    r->state = REQ_WAIT;
    atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
    MHD_suspend_connection(r->conn);
    int rc = fo_pool_submit(srv->pool, &r->fan);
    if (rc < 0) {
        r->state = REQ_FAILED;
        r->err_status = MHD_HTTP_SERVICE_UNAVAILABLE;
        r->err_code = "overloaded";
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

static enum MHD_Result start_endpoint(struct request *r)
{
    const struct fo_config *cfg = r->srv->cfg;
    const struct fo_endpoint_conf *ep = r->ep;
    int64_t timeout = cfg->timeout_ms;
    if (ep->timeout_ms > 0 && ep->timeout_ms < timeout)
        timeout = ep->timeout_ms;
    enum MHD_Result res;
    if (prepare(r, ep->nbackends, timeout, &res) < 0)
        return res;
    r->report = ep->report;

    /* Expand every URL into one buffer, then point the calls into it. */
    fo_buf_init(&r->urls, FO_BUF_UNLIMITED);
    size_t *off = malloc(ep->nbackends * sizeof *off);
    if (!off)
        return MHD_NO;
    for (size_t i = 0; i < ep->nbackends; i++) {
        off[i] = r->urls.len;
        if (fo_tmpl_expand(ep->backends[i].tmpl, &r->params, &r->urls) < 0 ||
            fo_buf_putc(&r->urls, '\0') < 0) {
            free(off);
            return MHD_NO;
        }
    }
    for (size_t i = 0; i < ep->nbackends; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        struct fo_call *call = &r->calls[i];
        call->url = r->urls.data + off[i];
        call->method = b->method;
        call->headers = (const char *const *)b->headers;
        call->nheaders = b->nheaders;
        call->timeout_ms = b->timeout_ms;
        call->required = b->required;
    }
    free(off);
    return launch(r);
}

static enum MHD_Result start_batch(struct request *r)
{
    const struct fo_config *cfg = r->srv->cfg;
    struct fo_batch_error berr = {0};
    int rc = fo_batch_parse(&r->batch, r->body.data ? r->body.data : "", r->body.len,
                            &cfg->aggregate, cfg->max_json_depth, &berr);
    if (rc == -ENOMEM)
        return MHD_NO;
    if (rc < 0)
        return answer_error(r, (unsigned)berr.status, berr.code, berr.message, NULL);
    struct fo_batch *b = r->batch;
    enum MHD_Result res;
    if (prepare(r, b->n, b->timeout_ms, &res) < 0)
        return res;
    r->report = b->report;
    for (size_t i = 0; i < b->n; i++) {
        const struct fo_batch_req *q = &b->reqs[i];
        struct fo_call *call = &r->calls[i];
        call->url = q->url;
        call->method = q->method;
        call->headers = (const char *const *)q->headers;
        call->nheaders = q->nheaders;
        call->body = q->body;
        call->body_len = q->body_len;
        call->timeout_ms = q->timeout_ms;
        call->required = q->required;
    }
    return launch(r);
}

/* ---- fan-in and the answer ---- */

static const char *result_name(const struct request *r, size_t i)
{
    return r->ep ? r->ep->backends[i].name : r->batch->reqs[i].name;
}

static bool result_merge(const struct request *r, size_t i)
{
    return r->ep ? r->ep->backends[i].merge : r->batch->reqs[i].merge;
}

static enum MHD_Result finish(struct request *r)
{
    struct fo_server *srv = r->srv;
    atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
    if (r->state == REQ_FAILED) {
        return answer_error(r, (unsigned)r->err_status, r->err_code,
                            "too many requests in flight; retry later", NULL);
    }

    /* Fan-in: every call is on the channel once the pool called 'done'. */
    size_t got = 0;
    void *item;
    while (fo_chan_recv(r->fanin, &item, 0) == 0)
        got++;
    if (got != r->ncalls) {
        fo_log(FO_LOG_ERROR, "fanin_short", "\"got\":%zu,\"want\":%zu", got, r->ncalls);
        return MHD_NO;
    }

    size_t n = r->ncalls;
    struct fo_result *res = calloc(n, sizeof *res);
    if (!res)
        return MHD_NO;
    size_t ok = 0;
    /* Which failure decides the status: a required call's, preferring one
     * that failed by itself over one cancelled because of another. */
    ssize_t req_failed = -1, req_cancelled = -1, first_failed = -1;
    bool any_timeout = false;
    for (size_t i = 0; i < n; i++) {
        const struct fo_call *c = &r->calls[i];
        res[i].name = result_name(r, i);
        res[i].merge = result_merge(r, i);
        res[i].outcome = c->outcome;
        res[i].status = c->status;
        res[i].ms = c->ms;
        res[i].body = c->json;
        if (c->outcome == FO_OK) {
            ok++;
            continue;
        }
        if (first_failed < 0)
            first_failed = (ssize_t)i;
        if (c->outcome == FO_ERR_TIMEOUT)
            any_timeout = true;
        if (c->required && c->outcome != FO_ERR_CANCELLED && req_failed < 0)
            req_failed = (ssize_t)i;
        if (c->required && c->outcome == FO_ERR_CANCELLED && req_cancelled < 0)
            req_cancelled = (ssize_t)i;
    }
    ssize_t failed_required = req_failed >= 0 ? req_failed : req_cancelled;

    struct fo_report rep = {
        .complete = ok == n,
        .elapsed_ms = (double)(fo_clock_us() - r->start_us) / 1000.0,
    };
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    unsigned status = MHD_HTTP_OK;
    const char *complete = ok == n ? "true" : "false";
    int rc;
    if (failed_required >= 0 || ok == 0) {
        size_t bad = (size_t)(failed_required >= 0 ? failed_required : first_failed);
        bool timeout = failed_required >= 0 ? r->calls[bad].outcome == FO_ERR_TIMEOUT : any_timeout;
        status = timeout ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
        char msg[200];
        if (failed_required >= 0)
            snprintf(msg, sizeof msg, "required backend failed: %s",
                     fo_outcome_name(r->calls[bad].outcome));
        else
            snprintf(msg, sizeof msg, "no backend succeeded");
        rc = fo_merge_error(&b, timeout ? "backend_timeout" : "backend_failed", msg,
                            res[bad].name, res, n, r->report ? &rep : NULL);
        complete = NULL;
    } else {
        rc = fo_merge_write(&b, res, n, r->report ? &rep : NULL);
    }
    free(res);
    if (rc < 0) {
        fo_buf_free(&b);
        return MHD_NO;
    }
    size_t len;
    char *body = fo_buf_release(&b, &len);
    r->state = REQ_DONE;
    return queue_json(r->conn, status, body, len, complete, NULL);
}

/* ---- routing ---- */

static enum MHD_Result route(struct request *r, const char *url, const char *method)
{
    struct fo_server *srv = r->srv;
    const struct fo_config *cfg = srv->cfg;

    if (strcmp(url, "/health") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                "use GET", "GET, HEAD");
        r->state = REQ_DONE;
        return MHD_queue_response(r->conn, MHD_HTTP_OK, srv->health);
    }

    if (cfg->aggregate.enabled && strcmp(url, cfg->aggregate.path) == 0) {
        if (strcmp(method, "POST") != 0)
            return answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                "use POST", "POST");
        return start_batch(r);
    }

    /* Endpoints: the first whose path and method match. Remember the methods
     * of path-only matches for 405's Allow. */
    char allow[128] = "";
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
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", ep->method);
            continue;
        }
        if (m < 0)
            return answer_error(r, MHD_HTTP_BAD_REQUEST, "invalid_param",
                                "a path parameter is malformed (bad %-escape, '.' or '..', "
                                "or too long)",
                                NULL);
        r->ep = ep;
        r->params = params;
        return start_endpoint(r);
    }
    if (allow[0])
        return answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                            "method not allowed for this path", allow);
    return answer_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no endpoint for this path", NULL);
}

/* Content-Length already over the cap? Then answer before reading a byte. */
static bool declared_too_large(struct MHD_Connection *c, size_t max)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v)
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    return errno == ERANGE || (end != v && n > max);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct fo_server *srv = cls;
    struct request *r = *req_cls;
    (void)version;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->conn = c;
        r->state = REQ_READ;
        r->start_us = fo_clock_us();
        fo_buf_init(&r->body, srv->cfg->max_body_bytes);
        *req_cls = r;
        if (declared_too_large(c, srv->cfg->max_body_bytes))
            return answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                                "request body is larger than max_body_bytes", NULL);
        return MHD_YES;
    }

    switch (r->state) {
    case REQ_READ:
        if (*upload_data_size > 0) {
            if (!r->body_too_large && fo_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
                r->body_too_large = true;
                fo_buf_free(&r->body);
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->body_too_large)
            return answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                                "request body is larger than max_body_bytes", NULL);
        return route(r, url, method);
    case REQ_WAIT:
    case REQ_FAILED:
        return finish(r);
    case REQ_DONE:
        break;
    }
    *upload_data_size = 0;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *r = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (!r)
        return;
    *req_cls = NULL;
    for (size_t i = 0; i < r->ncalls; i++)
        fo_call_clear(&r->calls[i]);
    free(r->calls);
    fo_chan_destroy(r->fanin, NULL);
    fo_ctx_destroy(r->ctx);
    fo_batch_destroy(r->batch);
    fo_params_clear(&r->params);
    fo_buf_free(&r->urls);
    fo_buf_free(&r->body);
    free(r);
}

/* Keep the path as the client sent it: tmpl.c decodes each segment itself,
 * so %2F stays inside one parameter and %00 cannot truncate the path. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* ---- lifecycle ---- */

static int make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, int *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *v6 = 1;
        return 0;
    }
    return -EINVAL;
}

int fo_server_create(struct fo_server **out, const struct fo_config *cfg, struct fo_pool *pool,
                     char *err, size_t errlen)
{
    static const char health[] = "{\"status\":\"ok\"}";
    struct sockaddr_storage ss;
    int v6 = 0;
    int rc = make_addr(cfg->listen_host, cfg->listen_port, &ss, &v6);
    if (rc < 0) {
        snprintf(err, errlen, "listen address %s is not a numeric IP", cfg->listen_host);
        return rc;
    }
    struct fo_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    srv->pool = pool;
    rc = fo_ctx_create(&srv->root, NULL, FO_NO_DEADLINE);
    if (rc < 0)
        goto fail;
    srv->health = MHD_create_response_from_buffer(sizeof health - 1, (void *)(uintptr_t)health,
                                                  MHD_RESPMEM_PERSISTENT);
    if (!srv->health) {
        rc = -ENOMEM;
        goto fail;
    }
    MHD_add_response_header(srv->health, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0);
    unsigned threads = cfg->server_threads > 0 ? cfg->server_threads : 1;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)60, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!srv->daemon) {
        rc = -EADDRINUSE;
        snprintf(err, errlen, "cannot listen on %s:%u (address in use or not available)",
                 cfg->listen_host, cfg->listen_port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : cfg->listen_port;
    *out = srv;
    return 0;
fail:
    if (srv->health)
        MHD_destroy_response(srv->health);
    fo_ctx_destroy(srv->root);
    free(srv);
    return rc;
}

uint16_t fo_server_port(const struct fo_server *srv)
{
    return srv->port;
}

static void wait_idle(struct fo_server *srv, int64_t until_ms)
{
    while (atomic_load_explicit(&srv->in_flight, memory_order_relaxed) > 0 &&
           fo_clock_ms() < until_ms) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void fo_server_stop(struct fo_server *srv, int64_t drain_ms)
{
    if (srv->stopped)
        return;
    srv->stopped = true;
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    wait_idle(srv, fo_clock_ms() + drain_ms);
    if (atomic_load(&srv->in_flight) > 0) {
        /* Out of patience: abort what is left; each request is still answered. */
        fo_ctx_cancel(srv->root, -ESHUTDOWN);
        fo_pool_sweep(srv->pool);
        wait_idle(srv, fo_clock_ms() + 5000);
    }
    /* Answers queued by the last resumes still need the daemon to send them;
     * MHD_stop_daemon closes connections only after it has no suspended ones. */
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
}

void fo_server_destroy(struct fo_server *srv)
{
    if (!srv)
        return;
    fo_server_stop(srv, 0);
    MHD_destroy_response(srv->health);
    fo_ctx_destroy(srv->root);
    free(srv);
}
