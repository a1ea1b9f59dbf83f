/* server.c -- the HTTP front: libmicrohttpd, routing, the request lifecycle.
 *
 * DESIGN
 * libmicrohttpd runs an epoll thread pool and calls on_request() for each
 * step of a request. The handler is two-phase: the first call only attaches
 * a struct request (queueing an answer in the first call makes MHD close
 * the connection, so every request would pay a new TCP handshake); later
 * calls collect the body, and the call that sees the end of the request
 * either answers at once (probes, errors) or builds the backend calls,
 * suspends the connection and hands the fan-out to the worker pool --
 * suspend first, submit second, so a fast worker can never resume a
 * connection that is not suspended yet.
 *
 * The worker that ends the last call resumes the connection (MHD's resume is
 * thread-safe); MHD then calls on_request() again on one of its threads,
 * which drains the request's fan-in channel, decides the status, merges the
 * bodies and answers. A suspended connection has no timeout of its own, but
 * needs none: every backend call carries a curl timeout no later than the
 * request deadline, so the fan-out always ends by then.
 *
 * A struct request lives from the first handler call to MHD's completion
 * callback, which can only come after the resume, i.e. after the pool is
 * done with it. It holds a reference on the runtime (config + metric
 * series) it started with, so a reload never pulls a config from under a
 * request in flight.
 *
 * Shutdown: /ready turns 503, quiesce (stop accepting), wait for the live
 * request count to reach zero, cancel the root context after drain_ms (the
 * pool aborts what is left and every request is answered), then
 * MHD_stop_daemon, which must never see a suspended connection. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "buf.h"
#include "chan.h"
#include "clock.h"
#include "ctx.h"
#include "fdlimit.h"
#include "log.h"
#include "merge.h"
#include "tmpl.h"

/* A config and the metric series its routes count into. Shared by every
 * request that started under it; freed with the last reference, which also
 * releases its references on the series (a series no runtime names leaves
 * /metrics then, after the last request that could count into it). */
struct runtime {
    struct fo_config *cfg;                /* Owned. */
    struct fo_metrics *metrics;           /* Borrowed; one reference on each series below. */
    atomic_long refs;                     /* Server's current pointer + requests. */
    struct fo_endpoint_stats **ep_stats;  /* [nendpoints] */
    struct fo_backend_stats ***be_stats;  /* [nendpoints][nbackends] */
    struct fo_endpoint_stats *batch_stats; /* The ad-hoc batch, or NULL. */
    struct fo_backend_stats **host_stats; /* [aggregate.nallow] */
    struct fo_endpoint_stats *other_stats; /* Unmatched paths and early errors. */
};

enum req_state {
    REQ_READ,   /* Headers seen; collecting the body. */
    REQ_WAIT,   /* Suspended while the pool runs the calls. */
    REQ_FAILED, /* Suspended, then the submit failed: answer 503 when resumed. */
    REQ_DONE,   /* Answer queued. */
};

/* One client request. From calloc() in the first handler call; freed in
 * on_completed(). Touched by one server thread at a time, and by the pool
 * only between submit and resume. */
struct request {
    struct fo_server *srv;         /* Borrowed. */
    struct runtime *rt;            /* One reference, dropped in on_completed. */
    struct MHD_Connection *conn;   /* Borrowed; valid until on_completed. */
    enum req_state state;
    int64_t start_us;              /* First handler call. */
    struct fo_buf body;            /* Request body, capped at max_body_bytes. */
    bool probe;                    /* health/ready/metrics: no access log by default. */
    bool close;                    /* Framing is in doubt: close after the answer. */
    struct conn_rec *cr;           /* The connection's watchdog record, or NULL. */
    char id[72];                   /* Request id: the client's X-Request-Id or ours. */
    const char *method;            /* Borrowed from MHD (valid until completion). */
    const char *url;               /* Borrowed from MHD. */

    size_t ep_index;               /* Which endpoint, when 'ep' is set. */
    const struct fo_endpoint_conf *ep; /* Configured endpoint, or NULL. */
    struct fo_batch *batch;        /* Ad-hoc batch, from fo_batch_parse. */
    struct fo_params params;       /* Path parameters (endpoint requests). */
    bool report;                   /* Add "_fanout". */

    struct fo_ctx *ctx;            /* Deadline and cancellation, child of the root. */
    struct fo_chan *fanin;         /* Results arrive here, one per call. */
    struct fo_fanout fan;          /* What the pool runs. */
    struct fo_call *calls;         /* From calloc(): one per backend, in config order. */
    struct fo_backend_stats **call_stats; /* From calloc(): series per call. */
    size_t ncalls;
    struct fo_buf urls;            /* Expanded URLs, NUL-separated. */

    bool waiting;                  /* Counted in srv->waiting and admitted (calls budget). */
    unsigned status;               /* The answer's status, once queued. */
    bool complete;                 /* Every call succeeded. */
};

/* Per-connection state for the watchdog and the drain. Atomics are written
 * by MHD's threads and read by the main thread's watchdog. */
struct conn_rec {
    int fd;                        /* Client socket. */
    atomic_int_fast64_t head_by_ms; /* A request head is due by then (fo_clock_ms); 0: none
                                      is being read. From accept for the first request,
                                      from its request line for later ones. */
    atomic_bool busy;              /* A request is under way (whole head to completion). */
    atomic_int_fast64_t line_ms;   /* When a request line arrived (on_uri); 0 once it ended. */
    atomic_int_fast64_t idle_ms;   /* When it last became idle: accept or a request's end. */
    atomic_bool in_body;           /* A request is waiting for more of its body. */
    atomic_ulong body_chunks;      /* Body chunks received, to see progress. */
    bool fin;                      /* Watchdog: the peer's FIN seen while in_body, */
    unsigned long fin_chunks;      /* ... at this body_chunks. */
    int64_t drip_ms;               /* Watchdog: bytes of a request line seen arriving since, */
    int64_t drip_last;             /* ... the last of them at. */
    int64_t checked_ms;            /* Watchdog: last look at the socket of an idle connection. */
    struct conn_rec *prev, *next;  /* Server's list; conns_lock. */
};

struct fo_server {
    struct fo_pool *pool;          /* Borrowed. */
    struct fo_metrics *metrics;    /* Borrowed. */
    struct fo_budget *budget;      /* Borrowed: buffered bytes, checked at admission. */
    struct MHD_Daemon *daemon;
    struct fo_ctx *root;           /* Parent of every request context; cancelled on stop. */
    uint16_t port;                 /* Bound port. */
    pthread_mutex_t rt_lock;       /* Guards 'rt' (the pointer, not the runtime). */
    struct runtime *rt;            /* Current runtime; one reference. */
    const struct fo_config *boot;  /* The config the daemon was started with (in 'rt0'). */
    struct runtime *rt0;           /* Start-up runtime; a reference kept for 'boot'. */
    atomic_long live;              /* Requests between first call and completion. */
    atomic_long waiting;           /* Requests suspended on the pool (or about to be). Raised
                                      before 'draining' is read, so that once the stop has
                                      set 'draining' and then seen zero here, no request
                                      is ever suspended again (seq_cst on both sides). */
    atomic_long calls_inflight;    /* Backend calls of suspended requests. */
    atomic_bool draining;          /* /ready answers 503; answers say Connection: close. */
    atomic_uint_fast64_t id_seq;   /* Request id counter. */
    uint32_t id_prefix;            /* Random per process. */
    atomic_long nconns;            /* Open client connections (on_connection). */
    pthread_mutex_t conns_lock;    /* Guards the connection list. */
    struct conn_rec *conns;        /* Open client connections. */
    bool stopped;
};

/* ---- runtimes ---- */

/* Release the series (those registered so far, when creation failed
 * half-way) and free 'rt'; the config stays with whoever owns it. */
static void runtime_free(struct runtime *rt)
{
    const struct fo_config *cfg = rt->cfg;
    for (size_t i = 0; rt->be_stats && i < cfg->nendpoints; i++) {
        for (size_t b = 0; rt->be_stats[i] && b < cfg->endpoints[i].nbackends; b++)
            fo_metrics_backend_release(rt->metrics, rt->be_stats[i][b]);
        free(rt->be_stats[i]);
    }
    for (size_t i = 0; rt->ep_stats && i < cfg->nendpoints; i++)
        fo_metrics_endpoint_release(rt->metrics, rt->ep_stats[i]);
    for (size_t h = 0; rt->host_stats && h < cfg->aggregate.nallow; h++)
        fo_metrics_backend_release(rt->metrics, rt->host_stats[h]);
    fo_metrics_endpoint_release(rt->metrics, rt->batch_stats);
    fo_metrics_endpoint_release(rt->metrics, rt->other_stats);
    free(rt->be_stats);
    free(rt->ep_stats);
    free(rt->host_stats);
    free(rt);
}

static struct runtime *runtime_create(struct fo_metrics *m, struct fo_config *cfg)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->cfg = cfg;
    rt->metrics = m;
    atomic_init(&rt->refs, 1);
    rt->ep_stats = calloc(cfg->nendpoints + 1, sizeof *rt->ep_stats);
    rt->be_stats = calloc(cfg->nendpoints + 1, sizeof *rt->be_stats);
    rt->host_stats = calloc(cfg->aggregate.nallow + 1, sizeof *rt->host_stats);
    if (!rt->ep_stats || !rt->be_stats || !rt->host_stats)
        goto fail;
    char label[512];
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *ep = &cfg->endpoints[i];
        snprintf(label, sizeof label, "%s %s", ep->method, ep->path);
        rt->ep_stats[i] = fo_metrics_endpoint(m, label);
        rt->be_stats[i] = calloc(ep->nbackends, sizeof **rt->be_stats);
        if (!rt->be_stats[i])
            goto fail;
        for (size_t b = 0; b < ep->nbackends; b++)
            rt->be_stats[i][b] = fo_metrics_backend(m, rt->ep_stats[i], ep->backends[b].name);
    }
    if (cfg->aggregate.enabled) {
        snprintf(label, sizeof label, "POST %s", cfg->aggregate.path);
        rt->batch_stats = fo_metrics_endpoint(m, label);
        for (size_t h = 0; h < cfg->aggregate.nallow; h++)
            rt->host_stats[h] =
                fo_metrics_backend(m, rt->batch_stats, cfg->aggregate.allow_hosts[h]);
    }
    rt->other_stats = fo_metrics_endpoint(m, "other");
    return rt;
fail:
    runtime_free(rt);
    return NULL;
}

/* Drop one reference; the last one frees the runtime and its config. The
 * acq_rel order makes every request's counting happen before the release. */
static void runtime_put(struct runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct fo_config *cfg = rt->cfg;
    runtime_free(rt);
    fo_config_destroy(cfg);
}

static struct runtime *runtime_get(struct fo_server *srv)
{
    pthread_mutex_lock(&srv->rt_lock);
    struct runtime *rt = srv->rt;
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&srv->rt_lock);
    return rt;
}

/* ---- answers and the access log ---- */

static struct fo_endpoint_stats *request_stats(const struct request *r)
{
    if (r->ep)
        return r->rt->ep_stats[r->ep_index];
    if (r->batch || (r->rt->batch_stats && r->url &&
                     strcmp(r->url, r->rt->cfg->aggregate.path) == 0))
        return r->rt->batch_stats;
    return r->rt->other_stats;
}

static enum MHD_Result queue(struct request *r, unsigned status, struct MHD_Response *resp,
                             const char *complete, const char *allow)
{
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (complete)
        MHD_add_response_header(resp, "X-Fanout-Complete", complete);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE && !r->probe)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (r->close || atomic_load_explicit(&r->srv->draining, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->state = REQ_DONE;
    r->status = status;
    if (!r->probe)
        fo_metrics_request(request_stats(r), status, fo_clock_us() - r->start_us);
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

static struct MHD_Response *response_from(struct fo_server *srv, char *body, size_t len)
{
    struct charged *ch = len >= CHARGE_MIN ? malloc(sizeof *ch) : NULL;
    if (!ch)
        return MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    ch->budget = srv->budget;
    ch->body = body;
    ch->len = len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback_cls(len, body, free_charged, ch);
    if (!resp) {
        free(ch);
        return NULL;
    }
    fo_budget_charge(srv->budget, len);
    return resp;
}

static enum MHD_Result queue_json(struct request *r, unsigned status, char *body, size_t len,
                                  const char *complete, const char *allow)
{
    struct MHD_Response *resp = response_from(r->srv, body, len);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return queue(r, status, resp, complete, allow);
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
    return queue_json(r, status, body, len, NULL, allow);
}

/* While draining no request is suspended any more: new requests on the
 * connections still open are answered at once, and the connection closed. */
static enum MHD_Result answer_draining(struct request *r)
{
    return answer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "draining",
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
static void refuse_mid_body(struct request *r, unsigned status, const char *reason,
                            const char *code, const char *message)
{
    r->state = REQ_DONE;
    r->status = status;
    fo_metrics_request(request_stats(r), status, fo_clock_us() - r->start_us);
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

static enum MHD_Result answer_text(struct request *r, unsigned status, const char *type,
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
    return queue(r, status, resp, NULL, NULL);
}

static const char *call_name(const struct request *r, size_t i)
{
    return r->ep ? r->ep->backends[i].name : r->batch->reqs[i].name;
}

/* One JSON line per answered request, written with one write(2). */
static void access_log(struct request *r, enum MHD_RequestTerminationCode toe)
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
    const char *label = request_stats(r) ? request_stats(r)->label : "other";
    fo_json_put_string(&b, label, strlen(label));
    fo_buf_printf(&b, ",\"status\":%u", r->status);
    if (r->ncalls)
        fo_buf_printf(&b, ",\"complete\":%s", r->complete ? "true" : "false");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        fo_buf_printf(&b, ",\"aborted\":%d", (int)toe);
    fo_buf_printf(&b, ",\"ms\":%.1f", (double)(fo_clock_us() - r->start_us) / 1000.0);
    if (r->ncalls) {
        fo_buf_puts(&b, ",\"backends\":{");
        for (size_t i = 0; i < r->ncalls; i++) {
            const struct fo_call *c = &r->calls[i];
            const char *name = call_name(r, i);
            if (i)
                fo_buf_putc(&b, ',');
            fo_json_put_string(&b, name, strlen(name));
            fo_buf_printf(&b, ":{\"outcome\":\"%s\",\"status\":%d,\"ms\":%.1f}",
                          fo_outcome_name(c->outcome), c->status, c->ms);
        }
        fo_buf_putc(&b, '}');
    }
    fo_log_finish(&b);
    fo_buf_free(&b);
}

/* ---- the fan-out ---- */

static void on_fanout_done(struct fo_fanout *f)
{
    struct request *r = f->data;
    /* Last touch of the request from the worker thread. */
    MHD_resume_connection(r->conn);
}

/* What timeout_field() has seen of the X-Timeout-Ms fields. */
struct timeout_scan {
    int64_t ms; /* The value, 0 while none was seen. */
    bool bad;   /* A value out of range, or two that differ. */
};

/* Parse one X-Timeout-Ms value, optional whitespace (SP, HTAB) on either side
 * trimmed (RFC 9110 5.5): 1..3600000. Returns the value, or -1. */
static int64_t parse_timeout(const char *v, size_t n)
{
    while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    int64_t ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        ms = ms * 10 + (v[i] - '0');
        if (ms > 3600000)
            return -1;
    }
    return ms >= 1 ? ms : -1;
}

static enum MHD_Result timeout_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    struct timeout_scan *t = cls;
    (void)kind;
    (void)key_size;
    if (strcasecmp(key, "X-Timeout-Ms") != 0)
        return MHD_YES;
    int64_t ms = value ? parse_timeout(value, value_size) : -1;
    if (ms < 0 || (t->ms && ms != t->ms))
        t->bad = true;
    t->ms = ms;
    return t->bad ? MHD_NO : MHD_YES;
}

/* Parse the client's X-Timeout-Ms: 1..3600000. The field may repeat with the
 * same value; two different values are refused rather than one picked.
 * Returns 0 (absent: *ms = 0), or -EINVAL. */
static int client_timeout(struct MHD_Connection *c, int64_t *ms)
{
    struct timeout_scan t = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, timeout_field, &t);
    *ms = t.bad ? 0 : t.ms;
    return t.bad ? -EINVAL : 0;
}

/* Make the context, channel and calls for n calls with a deadline 'timeout_ms'
 * after the request started (and no later than the client asks). Returns 0,
 * or answers the error itself and returns -1 with the MHD result in *res. */
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
    r->calls = calloc(n, sizeof *r->calls);
    r->call_stats = calloc(n, sizeof *r->call_stats);
    if (!r->calls || !r->call_stats || fo_ctx_create(&r->ctx, r->srv->root, deadline) < 0 ||
        fo_chan_create(&r->fanin, n) < 0) {
        *res = MHD_NO;
        return -1;
    }
    r->ncalls = n;
    return 0;
}

/* Take 'n' calls from the global budget and one from each call's backend
 * budget. Returns false (and takes nothing) when a budget is spent. */
static bool admit(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    struct fo_server *srv = r->srv;
    long n = (long)r->ncalls;
    if (atomic_fetch_add_explicit(&srv->calls_inflight, n, memory_order_relaxed) + n >
        (long)cfg->max_inflight_calls) {
        atomic_fetch_sub_explicit(&srv->calls_inflight, n, memory_order_relaxed);
        return false;
    }
    if (cfg->max_backend_inflight == 0)
        return true;
    for (size_t i = 0; i < r->ncalls; i++) {
        struct fo_backend_stats *b = r->call_stats[i];
        if (atomic_fetch_add_explicit(&b->inflight, 1, memory_order_relaxed) + 1 >
            (long)cfg->max_backend_inflight) {
            for (size_t k = 0; k <= i; k++)
                atomic_fetch_sub_explicit(&r->call_stats[k]->inflight, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&srv->calls_inflight, n, memory_order_relaxed);
            return false;
        }
    }
    return true;
}

/* Give back what admit() took. */
static void release(struct request *r)
{
    atomic_fetch_sub_explicit(&r->srv->calls_inflight, (long)r->ncalls, memory_order_relaxed);
    if (r->rt->cfg->max_backend_inflight == 0)
        return;
    for (size_t i = 0; i < r->ncalls; i++)
        atomic_fetch_sub_explicit(&r->call_stats[i]->inflight, 1, memory_order_relaxed);
}

/* Suspend the connection and hand the calls to the pool. */
static enum MHD_Result launch(struct request *r)
{
    struct fo_server *srv = r->srv;
    if (fo_budget_full(srv->budget)) {
        r->ncalls = 0; /* None is made: the access log lists none. */
        return answer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                            "too many response bytes buffered; retry later", NULL);
    }
    if (!admit(r)) {
        r->ncalls = 0;
        return answer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                            "too many backend calls in flight; retry later", NULL);
    }
    /* Count first, then look at 'draining' (see the field). */
    atomic_fetch_add(&srv->waiting, 1);
    if (atomic_load(&srv->draining)) {
        atomic_fetch_sub(&srv->waiting, 1);
        release(r);
        r->ncalls = 0;
        return answer_draining(r);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fan.calls = r->calls;
    r->fan.ncalls = r->ncalls;
    r->fan.ctx = r->ctx;
    r->fan.fanin = r->fanin;
    r->fan.client_fd = ci ? ci->connect_fd : -1;
    r->fan.request_id = r->id;
    r->fan.max_bytes = r->rt->cfg->max_request_response_bytes;
    r->fan.done = on_fanout_done;
    r->fan.data = r;

    r->state = REQ_WAIT;
    r->waiting = true;
    MHD_suspend_connection(r->conn);
    if (fo_pool_submit(srv->pool, &r->fan) < 0) {
        r->state = REQ_FAILED;
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

static enum MHD_Result start_endpoint(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    const struct fo_endpoint_conf *ep = r->ep;
    int64_t timeout = cfg->timeout_ms;
    if (ep->timeout_ms > 0 && ep->timeout_ms < timeout)
        timeout = ep->timeout_ms;
    enum MHD_Result res;
    if (prepare(r, ep->nbackends, timeout, &res) < 0)
        return res;
    r->report = ep->report;

    /* Expand every URL into one buffer, then point the calls into it (the
     * buffer may move while it grows). */
    fo_buf_init(&r->urls, FO_BUF_UNLIMITED);
    for (size_t i = 0; i < ep->nbackends; i++) {
        r->calls[i].body_len = r->urls.len; /* Offset, until the buffer is final. */
        if (fo_tmpl_expand(ep->backends[i].tmpl, &r->params, &r->urls) < 0 ||
            fo_buf_putc(&r->urls, '\0') < 0)
            return MHD_NO;
    }
    for (size_t i = 0; i < ep->nbackends; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        struct fo_call *call = &r->calls[i];
        call->url = r->urls.data + call->body_len;
        call->body_len = 0;
        call->method = b->method;
        call->headers = (const char *const *)b->headers;
        call->nheaders = b->nheaders;
        call->timeout_ms = b->timeout_ms;
        call->required = b->required;
        r->call_stats[i] = r->rt->be_stats[r->ep_index][i];
    }
    return launch(r);
}

/* The allow_hosts entry a batch URL was admitted under. */
static struct fo_backend_stats *host_stats(const struct runtime *rt, const char *url)
{
    const struct fo_aggregate_conf *ag = &rt->cfg->aggregate;
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t n = strcspn(a, "/?#");
    bool https = strncasecmp(url, "https:", 6) == 0;
    for (size_t h = 0; h < ag->nallow; h++) {
        const char *e = ag->allow_hosts[h];
        size_t en = strlen(e);
        if (en == n && memcmp(e, a, n) == 0)
            return rt->host_stats[h];
        /* No port in the URL: the entry carries the scheme's default. */
        const char *dflt = https ? ":443" : ":80";
        if (en == n + strlen(dflt) && memcmp(e, a, n) == 0 && strcmp(e + n, dflt) == 0)
            return rt->host_stats[h];
    }
    return rt->host_stats[0];
}

static enum MHD_Result start_batch(struct request *r)
{
    const struct fo_config *cfg = r->rt->cfg;
    struct fo_batch_error berr = {0};
    int rc = fo_batch_parse(&r->batch, r->body.data ? r->body.data : "", r->body.len,
                            &cfg->aggregate, cfg->max_json_depth, &berr);
    if (rc == -ENOMEM)
        return MHD_NO;
    if (rc < 0)
        return answer_error(r, (unsigned)berr.status, berr.code, berr.message, NULL);
    struct fo_batch *b = r->batch;
    enum MHD_Result res;
    int64_t timeout = b->timeout_ms < cfg->timeout_ms ? b->timeout_ms : cfg->timeout_ms;
    if (prepare(r, b->n, timeout, &res) < 0)
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
        r->call_stats[i] = host_stats(r->rt, q->url);
    }
    return launch(r);
}

/* ---- fan-in and the answer ---- */

static bool call_merge(const struct request *r, size_t i)
{
    return r->ep ? r->ep->backends[i].merge : r->batch->reqs[i].merge;
}

/* The request no longer waits on the pool: give back its counts. Called
 * from finish(), or from on_completed() when the client left while the
 * connection was suspended (MHD then never calls the handler again). */
static void unwait(struct request *r)
{
    if (!r->waiting)
        return;
    r->waiting = false;
    atomic_fetch_sub(&r->srv->waiting, 1);
    release(r);
}

static enum MHD_Result finish(struct request *r)
{
    unwait(r);
    if (r->state == REQ_FAILED)
        return answer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                            "the worker queues are full; retry later", NULL);

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
        fo_metrics_call(r->call_stats[i], c->outcome, (int64_t)(c->ms * 1000.0));
        res[i].name = call_name(r, i);
        res[i].merge = call_merge(r, i);
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
    r->complete = ok == n;

    struct fo_report rep = {
        .complete = ok == n,
        .elapsed_ms = (double)(fo_clock_us() - r->start_us) / 1000.0,
    };
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    unsigned status = MHD_HTTP_OK;
    const char *complete = ok == n ? "true" : "false";
    int rc;
    bool starved = false; /* The failure came from the process itself, not a backend. */
    if (failed_required >= 0 || ok == 0)
        starved = r->calls[failed_required >= 0 ? failed_required : first_failed].no_fds;
    if (starved) {
        rc = fo_merge_error(&b, "overloaded", "out of file descriptors; retry later", NULL, res,
                            n, r->report ? &rep : NULL);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        complete = NULL;
    } else if (failed_required >= 0 || ok == 0) {
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
    for (size_t i = 0; i < n; i++) /* Merged: the bodies are copied into the answer. */
        fo_call_drop_body(&r->calls[i]);
    if (rc < 0) {
        fo_buf_free(&b);
        return MHD_NO;
    }
    size_t len;
    char *body = fo_buf_release(&b, &len);
    return queue_json(r, status, body, len, complete, NULL);
}

/* ---- operations routes ---- */

static enum MHD_Result answer_metrics(struct request *r)
{
    struct fo_server *srv = r->srv;
    struct fo_pool_stats ps;
    fo_pool_stats(srv->pool, &ps);
    struct fo_gauges g = {
        .requests_in_flight = atomic_load(&srv->waiting),
        .jobs_queued = ps.queued,
        .calls_in_flight = ps.running,
        .client_connections = (uint64_t)atomic_load(&srv->nconns),
        .backend_connections = ps.connections,
        .ready = !atomic_load(&srv->draining),
    };
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    if (fo_metrics_write(srv->metrics, &g, &b) < 0) {
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
    return queue(r, MHD_HTTP_OK, resp, NULL, NULL);
}

/* Health, readiness and metrics. Returns true when 'url' was one of them. */
static bool probe(struct request *r, const char *url, const char *method, enum MHD_Result *res)
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
        *res = answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use GET",
                            "GET, HEAD");
        return true;
    }
    if (which == 1)
        *res = answer_text(r, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}");
    else if (which == 2 && atomic_load(&r->srv->draining))
        *res = answer_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                           "{\"status\":\"draining\"}");
    else if (which == 2)
        *res = answer_text(r, MHD_HTTP_OK, "application/json", "{\"status\":\"ready\"}");
    else
        *res = answer_metrics(r);
    return true;
}

/* ---- routing ---- */

static enum MHD_Result route(struct request *r, const char *url, const char *method)
{
    const struct fo_config *cfg = r->rt->cfg;
    enum MHD_Result res;
    if (probe(r, url, method, &res))
        return res;

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
        r->ep = ep;
        r->ep_index = i;
        if (m < 0)
            return answer_error(r, MHD_HTTP_BAD_REQUEST, "invalid_param",
                                "a path parameter is malformed (bad %-escape, '.' or '..', "
                                "or too long)",
                                NULL);
        r->params = params;
        return start_endpoint(r);
    }
    if (allow[0])
        return answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                            "method not allowed for this path", allow);
    return answer_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no endpoint for this path", NULL);
}

/* ---- the request head: id, limits ---- */

static void take_request_id(struct request *r)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (v) {
        size_t n = strlen(v);
        bool ok = n >= 1 && n < sizeof r->id;
        for (size_t i = 0; ok && i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '_' || c == '.' || c == ':';
        }
        if (ok) {
            memcpy(r->id, v, n + 1);
            return;
        }
    }
    uint64_t seq = atomic_fetch_add_explicit(&r->srv->id_seq, 1, memory_order_relaxed);
    snprintf(r->id, sizeof r->id, "%08x%012llx", r->srv->id_prefix, (unsigned long long)seq);
}

/* Add the length of one query argument ("&key=value") to *cls. */
static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    *(size_t *)cls += 2 + strlen(key) + (value ? strlen(value) : 0);
    return MHD_YES;
}

/* What scan_header learns about the head's fields. */
struct head_scan {
    size_t n;           /* Fields. */
    unsigned hosts;     /* Host fields. */
    unsigned lengths;   /* Content-Length fields. */
    unsigned codings;   /* Transfer-Encoding fields. */
    const char *length; /* The (last) Content-Length value, borrowed from MHD. */
    const char *bad;    /* Why the head is malformed, or NULL. */
};

/* A token character (RFC 9110 5.6.2), the only bytes a field name may hold. */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* True if s holds a control byte other than tab, or DEL; NULs count. */
static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *h = cls;
    (void)kind;
    h->n++;
    if (h->bad)
        return MHD_YES;
    bool name_ok = key_size > 0;
    for (size_t i = 0; name_ok && i < key_size; i++)
        name_ok = is_tchar((unsigned char)key[i]);
    if (!name_ok) {
        h->bad = "malformed header field name";
        return MHD_YES;
    }
    if (value && has_ctl(value, value_size)) {
        h->bad = "control character in a header field value";
        return MHD_YES;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        h->hosts++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        h->lengths++;
        h->length = value;
        bool digits = value && value_size > 0;
        for (size_t i = 0; digits && i < value_size; i++)
            digits = value[i] >= '0' && value[i] <= '9';
        if (!digits)
            h->bad = "Content-Length is not a number";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->codings++;
        if (!value || strcasecmp(value, "chunked") != 0)
            h->bad = "the only transfer coding accepted is chunked";
    }
    return MHD_YES;
}

/* Flag a query argument holding a byte no request target may carry. */
static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    bool *bad = cls;
    /* No check for spaces: the parser has already turned each '+' into one. */
    if (has_ctl(key, key_size) || (value && has_ctl(value, value_size)))
        *bad = true;
    return MHD_YES;
}

/* A NUL in the head. libmicrohttpd 0.9.75 parses the head in place, in one
 * buffer: it writes a NUL over each separator (the spaces of the request line,
 * '?', '&' and '=' in the query, each colon, each CR and LF) and hands out
 * C strings, so a NUL the client sent cuts a field short and what followed it
 * is never seen ("Content-Length: 2\0 99" reads as 2). No length it reports
 * shows the cut, but the head is still there, header_size bytes from the
 * method: walk it field by field, in the order the parser stored the fields,
 * and require that the fields and the separators account for every byte.
 * What cannot be told apart: a NUL just before a bare LF (or just before the
 * space ending the query) looks like a separator; nothing follows it on that
 * line, so nothing is hidden. A field the parser moved (obs-fold) fails the
 * walk and is refused too. */
struct head_walk {
    const char *p;   /* Next byte to account for. */
    const char *end; /* End of the head: the byte after its empty line. */
    size_t n;        /* Fields (arguments, then header fields) walked so far. */
    bool ok;         /* Every byte so far is accounted for. */
};

/* Expect the string s of length len right at w->p. */
static void walk_take(struct head_walk *w, const char *s, size_t len)
{
    uintptr_t at = (uintptr_t)s, p = (uintptr_t)w->p, end = (uintptr_t)w->end;
    w->ok = w->ok && at == p && len <= end - p;
    if (w->ok)
        w->p += len;
}

/* Expect one separator the parser turned into a NUL. */
static void walk_nul(struct head_walk *w)
{
    w->ok = w->ok && w->p < w->end && *w->p == '\0';
    if (w->ok)
        w->p++;
}

/* Expect min..max line-end bytes (CR, LF) the parser turned into NULs. */
static void walk_nuls(struct head_walk *w, size_t min, size_t max)
{
    size_t n = 0;
    while (w->ok && w->p < w->end && *w->p == '\0' && n <= max) {
        w->p++;
        n++;
    }
    w->ok = w->ok && n >= min && n <= max;
}

/* Skip the bytes in 'set' the parser skipped. */
static void walk_skip(struct head_walk *w, const char *set)
{
    while (w->ok && w->p < w->end && *w->p && strchr(set, *w->p))
        w->p++;
}

/* One query argument: "key", "key=value", each after '?' or '&'. */
static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    struct head_walk *w = cls;
    (void)kind;
    walk_nul(w);
    walk_take(w, key, key_size);
    if (value) {
        walk_nul(w);
        walk_take(w, value, value_size);
    }
    w->n++;
    return w->ok ? MHD_YES : MHD_NO;
}

/* One header line: terminator of the line before, "name:", OWS, value. */
static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct head_walk *w = cls;
    (void)kind;
    walk_nuls(w, 1, 2);
    walk_take(w, key, key_size);
    walk_nul(w);
    walk_skip(w, " \t");
    walk_take(w, value ? value : w->p, value ? value_size : 0);
    w->n++;
    return w->ok ? MHD_YES : MHD_NO;
}

/* True when the method, target, version and fields account for every byte of
 * the head, i.e. the client sent no NUL that cut one of them short. */
static bool head_is_whole(struct request *r, const char *url, const char *version)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || ci->header_size == 0)
        return false;
    struct head_walk w = {r->method, r->method + ci->header_size, 0, true};
    walk_take(&w, r->method, strlen(r->method));
    walk_nul(&w);
    walk_skip(&w, " ");
    walk_take(&w, url, strlen(url));
    /* The query: '?' and the arguments, up to the space before the version;
     * one more NUL may be a trailing '&'. */
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    if (w.ok && (uintptr_t)w.p + 1 < (uintptr_t)version && *w.p == '\0')
        w.p++;
    walk_nul(&w);
    walk_take(&w, version, strlen(version));
    w.n = 0;
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, walk_field, &w);
    walk_nuls(&w, 2, 4); /* The last line's end and the empty line. */
    return w.ok && w.p == w.end;
}

/* RFC 9112 framing and syntax the parser lets through: fields that could make
 * this request mean something else to the next hop. Returns why, or NULL. */
static const char *malformed(struct request *r, const char *url, const char *version,
                             const struct head_scan *h)
{
    static const char bad_target[] = "the request target holds a space or a control character";
    if (!head_is_whole(r, url, version))
        return "a NUL byte in the request head";
    if (h->bad)
        return h->bad;
    size_t n = strlen(url);
    if (has_ctl(url, n) || memchr(url, ' ', n))
        return bad_target;
    bool bad_arg = false;
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, scan_arg, &bad_arg);
    if (bad_arg)
        return bad_target;
    if (h->hosts > 1 || (h->hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
        return "an HTTP/1.1 request needs exactly one Host field";
    if (h->lengths > 1 || h->codings > 1)
        return "Content-Length or Transfer-Encoding appears more than once";
    if (h->lengths && h->codings)
        return "Content-Length and Transfer-Encoding together";
    return NULL;
}

/* Check the head against the limits. Returns 0, or an answered status. */
static int check_head(struct request *r, const char *url, const char *version, bool *body,
                      enum MHD_Result *res)
{
    const struct fo_config *cfg = r->rt->cfg;
    size_t target = strlen(url); /* MHD hands the query over separately. */
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg_len, &target);
    if (target > cfg->max_url_bytes) {
        *res = answer_error(r, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                            "the request target is longer than max_url_bytes", NULL);
        return -1;
    }
    struct head_scan h = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &h);
    if (h.n > cfg->max_headers) {
        *res = answer_error(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "too_many_headers",
                            "the request has more than max_headers header fields", NULL);
        return -1;
    }
    const char *why = malformed(r, url, version, &h);
    if (why) {
        r->close = true;
        *res = answer_error(r, MHD_HTTP_BAD_REQUEST, "malformed_request", why, NULL);
        return -1;
    }
    const char *cl = h.length; /* All digits: malformed() saw to that. */
    *body = h.codings > 0 || (cl && strspn(cl, "0") != strlen(cl));
    if (cl) {
        errno = 0;
        unsigned long long v = strtoull(cl, NULL, 10);
        if (errno == ERANGE || v > cfg->max_body_bytes) {
            *res = answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                                "request body is larger than max_body_bytes", NULL);
            return -1;
        }
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct fo_server *srv = cls;
    struct request *r = *req_cls;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        atomic_fetch_add_explicit(&srv->live, 1, memory_order_relaxed);
        r->srv = srv;
        r->rt = runtime_get(srv);
        r->conn = c;
        r->state = REQ_READ;
        r->start_us = fo_clock_us();
        r->method = method;
        r->url = url;
        fo_buf_init(&r->body, r->rt->cfg->max_body_bytes);
        *req_cls = r;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->cr = ci ? ci->socket_context : NULL;
        if (r->cr) {
            atomic_store_explicit(&r->cr->busy, true, memory_order_relaxed);
            atomic_store_explicit(&r->cr->head_by_ms, 0, memory_order_relaxed);
        }
        take_request_id(r);
        enum MHD_Result res;
        bool body;
        if (check_head(r, url, version, &body, &res) < 0)
            return res;
        if (body && r->cr)
            atomic_store_explicit(&r->cr->in_body, true, memory_order_relaxed);
        return MHD_YES;
    }

    switch (r->state) {
    case REQ_READ:
        if (*upload_data_size > 0) {
            if (r->cr)
                atomic_fetch_add_explicit(&r->cr->body_chunks, 1, memory_order_relaxed);
            if (fo_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
                fo_buf_free(&r->body);
                *upload_data_size = 0;
                if (r->cr)
                    atomic_store_explicit(&r->cr->in_body, false, memory_order_relaxed);
                refuse_mid_body(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
                                "body_too_large", "request body is larger than max_body_bytes");
                return MHD_NO; /* MHD closes the connection. */
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->cr)
            atomic_store_explicit(&r->cr->in_body, false, memory_order_relaxed);
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
    struct fo_server *srv = cls;
    struct request *r = *req_cls;
    (void)c;
    if (!r)
        return;
    *req_cls = NULL;
    unwait(r);
    if (r->cr) {
        atomic_store_explicit(&r->cr->in_body, false, memory_order_relaxed);
        atomic_store_explicit(&r->cr->idle_ms, fo_clock_ms(), memory_order_relaxed);
        atomic_store_explicit(&r->cr->line_ms, 0, memory_order_relaxed);
        atomic_store_explicit(&r->cr->busy, false, memory_order_relaxed);
    }
    if (r->state != REQ_READ)
        access_log(r, toe);
    for (size_t i = 0; i < r->ncalls; i++)
        fo_call_clear(&r->calls[i]);
    free(r->calls);
    free(r->call_stats);
    fo_chan_destroy(r->fanin, NULL);
    fo_ctx_destroy(r->ctx);
    fo_batch_destroy(r->batch);
    fo_params_clear(&r->params);
    fo_buf_free(&r->urls);
    fo_buf_free(&r->body);
    runtime_put(r->rt);
    free(r);
    atomic_fetch_sub_explicit(&srv->live, 1, memory_order_relaxed);
}

/* Over max_connections: refuse at once (MHD closes the accepted socket), so
 * the client sees a clean close instead of waiting in the listen backlog
 * while the connections already open keep being served. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct fo_server *srv = cls;
    (void)addr;
    (void)addrlen;
    long open = atomic_load_explicit(&srv->nconns, memory_order_relaxed);
    return open >= (long)srv->boot->max_connections ? MHD_NO : MHD_YES;
}

/* A connection accepted with the descriptors nearly all taken (fdlimit.h):
 * answer 503 at once and close. Written before MHD has read or written
 * anything on it. */
static void refuse_connection(int fd)
{
    static const char body[] = "{\"error\":{\"code\":\"overloaded\",\"message\":"
                               "\"out of file descriptors; retry later\"}}";
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    (void)send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_RDWR); /* MHD's next read fails and it drops the connection. */
}

/* Track connections for the header-timeout watchdog. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct fo_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_rec *cr = calloc(1, sizeof *cr);
        if (!cr)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cr->fd = ci ? ci->connect_fd : -1;
        if (fo_fd_over_share(cr->fd, FO_FD_CLIENT))
            refuse_connection(cr->fd);
        int64_t now = fo_clock_ms();
        atomic_init(&cr->idle_ms, now);
        atomic_init(&cr->head_by_ms, now + srv->boot->header_timeout_ms);
        atomic_fetch_add_explicit(&srv->nconns, 1, memory_order_relaxed);
        pthread_mutex_lock(&srv->conns_lock);
        cr->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = cr;
        srv->conns = cr;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = cr;
        return;
    }
    struct conn_rec *cr = *socket_context;
    if (!cr)
        return;
    atomic_fetch_sub_explicit(&srv->nconns, 1, memory_order_relaxed);
    pthread_mutex_lock(&srv->conns_lock);
    if (cr->prev)
        cr->prev->next = cr->next;
    else
        srv->conns = cr->next;
    if (cr->next)
        cr->next->prev = cr->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    free(cr);
    *socket_context = NULL;
}

/* True if the client closed its side while a request still waits for body
 * bytes: they can never come, yet libmicrohttpd keeps waiting for them.
 * Seen on two passes with no body progress between, so a body that arrived
 * whole with the FIN right behind it is not mistaken for a dead one. */
static bool upload_is_dead(struct conn_rec *cr)
{
    if (!atomic_load_explicit(&cr->in_body, memory_order_relaxed)) {
        cr->fin = false;
        return false;
    }
    char c;
    if (recv(cr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0) {
        cr->fin = false;
        return false;
    }
    unsigned long chunks = atomic_load_explicit(&cr->body_chunks, memory_order_relaxed);
    if (cr->fin && cr->fin_chunks == chunks)
        return true;
    cr->fin = true;
    cr->fin_chunks = chunks;
    return false;
}

/* True if the idle connection's client has been sending the bytes of a
 * request line for longer than 'limit' without finishing it: a request line
 * arrives in one piece, so bytes since the connection went idle with no
 * request line yet are a drip. The kernel says when data last arrived; the
 * socket is looked at once a second at most, and only after 'limit' of
 * idleness, so thousands of idle keep-alive connections cost little. */
static bool request_line_drips(struct conn_rec *cr, int64_t now, int64_t limit)
{
    int64_t idle = atomic_load_explicit(&cr->idle_ms, memory_order_relaxed);
    if (now - idle <= limit || now - cr->checked_ms < 1000)
        return false;
    cr->checked_ms = now;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(cr->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return false;
    /* The kernel's clock ticks in jiffies: allow it 20 ms of blur. */
    int64_t last = now - (int64_t)ti.tcpi_last_data_recv;
    if (last <= idle + 20 || cr->drip_ms < idle) {
        cr->drip_ms = last > idle + 20 ? last : 0;
        cr->drip_last = cr->drip_ms;
        return false;
    }
    if (!cr->drip_ms) {
        cr->drip_ms = cr->drip_last = last;
        return false;
    }
    /* Still arriving (a client that stopped is the idle timeout's). */
    bool more = last > cr->drip_last;
    cr->drip_last = last;
    return more && now - cr->drip_ms > limit;
}

void fo_server_watchdog(struct fo_server *srv)
{
    int64_t limit = srv->boot->header_timeout_ms;
    int64_t now = fo_clock_ms();
    pthread_mutex_lock(&srv->conns_lock);
    for (struct conn_rec *cr = srv->conns; cr; cr = cr->next) {
        if (cr->fd < 0)
            continue;
        /* shutdown() rather than close(): the fd stays MHD's to close; the
         * next read fails and MHD drops the connection. */
        int64_t due = atomic_load_explicit(&cr->head_by_ms, memory_order_relaxed);
        bool busy = atomic_load_explicit(&cr->busy, memory_order_relaxed);
        if (due && now > due) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->head_by_ms, 0, memory_order_relaxed);
        } else if (upload_is_dead(cr)) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->in_body, false, memory_order_relaxed);
        } else if (!busy && !due && request_line_drips(cr, now, limit)) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->idle_ms, INT64_MAX / 2, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&srv->conns_lock);
}

/* A request line arrived: its head is due header_timeout_ms from now (the
 * first request of a connection keeps the earlier due time from accept).
 * MHD takes the return value as the request's initial req_cls: none. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct fo_server *srv = cls;
    (void)uri;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_rec *cr = ci ? ci->socket_context : NULL;
    if (!cr)
        return NULL;
    atomic_store_explicit(&cr->line_ms, fo_clock_ms(), memory_order_relaxed);
    if (!atomic_load_explicit(&cr->head_by_ms, memory_order_relaxed))
        atomic_store_explicit(&cr->head_by_ms, fo_clock_ms() + srv->boot->header_timeout_ms,
                              memory_order_relaxed);
    return NULL;
}

/* While draining: close the connections that have had no request under way
 * for 'quiet_ms' (a client that sends without a pause gets its 503 and
 * Connection: close instead). A connection is not quiet while bytes wait in
 * its socket that MHD's busy threads have not read yet, or while the head
 * whose request line arrived less than 'quiet_ms' ago is still coming; a
 * head older than that is abandoned or dripped. */
static void close_idle(struct fo_server *srv, int64_t quiet_ms)
{
    int64_t now = fo_clock_ms();
    pthread_mutex_lock(&srv->conns_lock);
    for (struct conn_rec *cr = srv->conns; cr; cr = cr->next) {
        if (cr->fd < 0 || atomic_load_explicit(&cr->busy, memory_order_relaxed))
            continue;
        int64_t line = atomic_load_explicit(&cr->line_ms, memory_order_relaxed);
        int64_t idle = atomic_load_explicit(&cr->idle_ms, memory_order_relaxed);
        char c;
        if (now - idle >= quiet_ms && (!line || now - line >= quiet_ms) &&
            recv(cr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->idle_ms, INT64_MAX / 2, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&srv->conns_lock);
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

int fo_server_create(struct fo_server **out, struct fo_config *cfg, struct fo_pool *pool,
                     struct fo_metrics *metrics, struct fo_budget *budget, char *err,
                     size_t errlen)
{
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
    srv->pool = pool;
    srv->metrics = metrics;
    srv->budget = budget;
    pthread_mutex_init(&srv->rt_lock, NULL);
    pthread_mutex_init(&srv->conns_lock, NULL);
    if (getrandom(&srv->id_prefix, sizeof srv->id_prefix, 0) != sizeof srv->id_prefix)
        srv->id_prefix = (uint32_t)getpid() ^ (uint32_t)fo_clock_us();
    rc = fo_ctx_create(&srv->root, NULL, FO_NO_DEADLINE);
    if (rc < 0)
        goto fail;
    srv->rt = runtime_create(metrics, cfg);
    if (!srv->rt) {
        rc = -ENOMEM;
        goto fail;
    }
    srv->rt0 = srv->rt;
    atomic_fetch_add(&srv->rt0->refs, 1);
    srv->boot = cfg;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | (v6 ? MHD_USE_IPv6 : 0);
    unsigned threads = cfg->server_threads > 0 ? cfg->server_threads : 1;
    unsigned idle_s = (unsigned)((cfg->idle_timeout_ms + 999) / 1000);
    /* MHD's own limit is split between its threads and, when reached, leaves
     * new clients hanging in the backlog; keep it out of the way and let
     * on_accept enforce max_connections. */
    unsigned mhd_limit = (unsigned)(cfg->max_connections + 64) * threads;
    srv->daemon = MHD_start_daemon(
        flags, 0, on_accept, srv, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_escaped, srv, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_CONNECTION_LIMIT,
        mhd_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)cfg->max_header_bytes, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
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
    if (srv->rt) /* Without the config: the caller keeps it on error. */
        runtime_free(srv->rt);
    fo_ctx_destroy(srv->root);
    pthread_mutex_destroy(&srv->rt_lock);
    pthread_mutex_destroy(&srv->conns_lock);
    free(srv);
    return rc;
}

uint16_t fo_server_port(const struct fo_server *srv)
{
    return srv->port;
}

void fo_server_reload(struct fo_server *srv, struct fo_config *cfg, char *note, size_t notelen)
{
    const struct fo_config *b = srv->boot;
    note[0] = '\0';
#define FO_STARTUP_ONLY(field, name)                                                              \
    if (cfg->field != b->field)                                                                   \
        snprintf(note + strlen(note), notelen - strlen(note), "%s%s", note[0] ? ", " : "", name);
    FO_STARTUP_ONLY(listen_port, "listen")
    FO_STARTUP_ONLY(workers, "workers")
    FO_STARTUP_ONLY(server_threads, "server_threads")
    FO_STARTUP_ONLY(max_connections, "max_connections")
    FO_STARTUP_ONLY(max_header_bytes, "max_header_bytes")
    FO_STARTUP_ONLY(idle_timeout_ms, "idle_timeout_ms")
    FO_STARTUP_ONLY(header_timeout_ms, "header_timeout_ms")
    FO_STARTUP_ONLY(max_response_bytes, "max_response_bytes")
    FO_STARTUP_ONLY(max_json_depth, "max_json_depth")
    FO_STARTUP_ONLY(max_host_connections, "max_host_connections")
    FO_STARTUP_ONLY(max_buffered_bytes, "max_buffered_bytes")
#undef FO_STARTUP_ONLY
    if (strcmp(cfg->listen_host, b->listen_host) != 0 && !strstr(note, "listen"))
        snprintf(note + strlen(note), notelen - strlen(note), "%slisten", note[0] ? ", " : "");
    struct runtime *rt = runtime_create(srv->metrics, cfg);
    if (!rt) {
        fo_config_destroy(cfg);
        snprintf(note, notelen, "out of memory; the old config stays");
        return;
    }
    pthread_mutex_lock(&srv->rt_lock);
    struct runtime *old = srv->rt;
    srv->rt = rt;
    pthread_mutex_unlock(&srv->rt_lock);
    runtime_put(old);
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Until 'until_ms': wait for every request to end and every connection to
 * close, running the watchdog (dead uploads must not hold the drain up) and
 * closing connections that stay quiet. */
static void drain_wait(struct fo_server *srv, int64_t until_ms)
{
    for (unsigned i = 0; fo_clock_ms() < until_ms; i++) {
        if (atomic_load(&srv->live) == 0 && atomic_load(&srv->nconns) == 0)
            return;
        if (i % 4 == 0)
            close_idle(srv, 500);
        if (i % 20 == 0)
            fo_server_watchdog(srv);
        nap_ms(5);
    }
}

/* DESIGN of the stop, in this order:
 * 1. 'draining' is set: from here on no request is suspended (launch()
 *    answers 503 "draining" with Connection: close), and every answer closes
 *    its connection. The listener stops accepting.
 * 2. Requests in flight get drain_ms to finish; quiet connections are closed.
 * 3. Then the root context is cancelled and the pool aborts what is left;
 *    each of those requests is resumed and answered. The wait for that has no
 *    bound: every call ends by its curl timeout at the latest, and stopping
 *    the daemon with a suspended connection would abort the process.
 * 4. MHD_stop_daemon, which then meets no suspended connection, and the pool
 *    has no fan-out of ours left to call back. */
void fo_server_stop(struct fo_server *srv)
{
    if (srv->stopped)
        return;
    srv->stopped = true;
    atomic_store(&srv->draining, true);
    /* Stop accepting, and stop listening at once: a client that connects now
     * is refused instead of waiting in the backlog. shutdown() rather than
     * close(): MHD's threads take the socket out of their epoll sets after
     * this returns, so the fd is closed only once they are stopped. */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);
    pthread_mutex_lock(&srv->rt_lock);
    int64_t drain_ms = srv->rt->cfg->drain_ms; /* Reloadable: the current config's. */
    pthread_mutex_unlock(&srv->rt_lock);
    fo_log(FO_LOG_INFO, "draining", "\"in_flight\":%ld,\"drain_ms\":%lld",
           atomic_load(&srv->live), (long long)drain_ms);
    drain_wait(srv, fo_clock_ms() + drain_ms);
    if (atomic_load(&srv->waiting) > 0) {
        /* Out of patience: abort what is left; each request is still answered. */
        fo_log(FO_LOG_WARN, "drain_timeout", "\"waiting\":%ld", atomic_load(&srv->waiting));
        fo_ctx_cancel(srv->root, -ESHUTDOWN);
        fo_pool_sweep(srv->pool);
        for (unsigned i = 1; atomic_load(&srv->waiting) > 0; i++) {
            nap_ms(5);
            if (i % 200 == 0)
                fo_pool_sweep(srv->pool);
        }
        drain_wait(srv, fo_clock_ms() + 1000); /* Let those answers go out. */
    }
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
}

void fo_server_destroy(struct fo_server *srv)
{
    if (!srv)
        return;
    fo_server_stop(srv);
    runtime_put(srv->rt);
    runtime_put(srv->rt0);
    fo_ctx_destroy(srv->root);
    pthread_mutex_destroy(&srv->rt_lock);
    pthread_mutex_destroy(&srv->conns_lock);
    free(srv);
}
