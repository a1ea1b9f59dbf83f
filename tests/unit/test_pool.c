/* test_pool.c -- unit tests for the worker pool (pool.h) against an in-process backend.
 *
 * The backend is libmicrohttpd on 127.0.0.1, port 0, one thread per
 * connection so that handlers may wait. Paths:
 *   /ok, /ok/<tag>       200 {"ok":true} / {"path":"/ok/<tag>"}
 *   /ws                  200 a JSON value surrounded by whitespace
 *   /slow/<ms>           200 after <ms> milliseconds
 *   /status/<code>       <code> with a JSON body
 *   /big/<n>             200, a JSON string of exactly n bytes, Content-Length
 *   /chunked/<n>         the same with chunked transfer encoding
 *   /notjson             200 with a body that is not JSON
 *   /deep/<n>            200, arrays nested n deep
 *   /truncated           200, Content-Length 1000, then the connection drops after 10 bytes
 *   /echo-headers        200 {"method", "timeout_ms", "timeout_count", ..., "now_ms"}
 *                        (now_ms: fo_clock_ms() when the backend read the request)
 *   /echo-body           200 with the request body as the response body
 *
 * Synchronisation is observed, never slept for: a /slow handler waits on the
 * server's condition variable (so stopping the server wakes it) and announces
 * itself on it, so a test waits until the backend holds its requests; every
 * 'done' callback sends its fan-out on a channel that the test receives from
 * with a deadline. Sleeps appear only where the passing of time is the thing
 * under test (the backend's own delay) or to pace a thread that pokes the pool
 * while others work. Tests that count connections or descriptors get a backend
 * of their own, so late accepts of an earlier test's aborted calls stay out. */
#include "pipeline.h"
#include "pool.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "buf.h"
#include "chan.h"
#include "clock.h"
#include "ctx.h"
#include "json.h"

/* Generous bounds: the tests also run under sanitizers on a loaded machine. */
#define WAIT_MS   10000 /* Longest wait for something that must happen. */
#define PROMPT_MS 1000  /* "Promptly": far below the slow backends' delays. */
#define SLOW_MS   5000  /* A backend that would answer long after the test ends. */
#define MAX_CALLS 16

/* ---- the backend ---------------------------------------------------------------------- */

struct server {
    struct MHD_Daemon *daemon; /* Thread per connection. */
    uint16_t port;             /* Bound port on 127.0.0.1. */
    pthread_mutex_t lock;      /* Guards everything below. */
    pthread_cond_t cond;       /* CLOCK_MONOTONIC; broadcast on every change below. */
    bool stopping;             /* Wakes every /slow handler. */
    unsigned requests;         /* Requests seen (headers and body complete), ever. */
    unsigned slow_started;     /* /slow handlers that began waiting, ever. */
    unsigned connections;      /* TCP connections accepted, ever. */
    unsigned open;             /* TCP connections open now. */
    char last_method[16];      /* Method of the latest request. */
};

static struct server srv; /* The one backend of this test program (group setup). */

/* Per-request state: the uploaded body. */
struct req {
    struct fo_buf body; /* Capped at 1 MiB. */
};

static void server_note(struct server *s, unsigned *counter, int delta)
{
    pthread_mutex_lock(&s->lock);
    *counter += (unsigned)delta;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static unsigned server_get(struct server *s, const unsigned *counter)
{
    pthread_mutex_lock(&s->lock);
    unsigned v = *counter;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void deadline_ts(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms_from_now / 1000;
    ts->tv_nsec += (ms_from_now % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait until *counter == want (or >= want when 'at_least'); false after WAIT_MS. */
static bool server_wait(struct server *s, const unsigned *counter, unsigned want, bool at_least)
{
    struct timespec until;
    deadline_ts(&until, WAIT_MS);
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    while (!(at_least ? *counter >= want : *counter == want) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cond, &s->lock, &until);
    bool ok = at_least ? *counter >= want : *counter == want;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* The backend's own delay: wait 'ms' on the condition, cut short by a stop. */
static void server_delay(struct server *s, long ms)
{
    struct timespec until;
    deadline_ts(&until, ms);
    pthread_mutex_lock(&s->lock);
    s->slow_started++;
    pthread_cond_broadcast(&s->cond);
    while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, struct fo_buf *b)
{
    size_t len;
    char *body = fo_buf_release(b, &len);
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* /big/<n> body: a JSON string of exactly n (>= 2) bytes. */
static char big_byte(uint64_t pos, uint64_t n)
{
    return pos == 0 || pos == n - 1 ? '"' : 'a';
}

static ssize_t chunked_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    uint64_t n = *(const uint64_t *)cls;
    if (pos >= n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t k = 0;
    if (max > 1000)
        max = 1000; /* Several chunks. */
    while (k < max && pos + k < n) {
        buf[k] = big_byte(pos + k, n);
        k++;
    }
    return (ssize_t)k;
}

static ssize_t truncated_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos >= 10)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    memcpy(buf, "{\"a\":[1,2,", 10);
    return 10;
}

static enum MHD_Result reply_truncated(struct MHD_Connection *c)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(1000, 1000, truncated_reader, NULL, NULL);
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply_chunked(struct MHD_Connection *c, uint64_t n)
{
    uint64_t *st = malloc(sizeof *st);
    if (!st)
        return MHD_NO;
    *st = n;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, chunked_reader, st, free);
    if (!resp) {
        free(st);
        return MHD_NO;
    }
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Counts headers named as in 'cls'. */
struct header_count {
    const char *name; /* Borrowed. */
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct header_count *hc = cls;
    if (strcasecmp(key, hc->name) == 0)
        hc->n++;
    return MHD_YES;
}

static void put_member(struct fo_buf *b, const char *key, const char *value, bool comma)
{
    fo_buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    if (value)
        fo_json_put_string(b, value, strlen(value));
    else
        fo_buf_puts(b, "null");
}

static int header_count(struct MHD_Connection *c, const char *name)
{
    struct header_count hc = {.name = name};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hc);
    return hc.n;
}

static enum MHD_Result echo_headers(struct MHD_Connection *c, const char *method, struct fo_buf *b)
{
    fo_buf_putc(b, '{');
    put_member(b, "method", method, false);
    put_member(b, "timeout_ms", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Timeout-Ms"),
               true);
    put_member(b, "request_id", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id"),
               true);
    put_member(b, "custom", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Custom"), true);
    put_member(b, "content_type", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
               true);
    put_member(b, "content_length",
               MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length"), true);
    fo_buf_printf(b,
                  ",\"timeout_count\":%d,\"request_id_count\":%d,\"content_type_count\":%d,"
                  "\"now_ms\":%lld}",
                  header_count(c, "X-Timeout-Ms"), header_count(c, "X-Request-Id"),
                  header_count(c, "Content-Type"), (long long)fo_clock_ms());
    return reply(c, MHD_HTTP_OK, b);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct server *s = cls;
    struct req *r = *req_cls;
    if (!r) { /* Two-phase: answer on a later call, so keep-alive works. */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        fo_buf_init(&r->body, 1 << 20);
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (fo_buf_append(&r->body, upload_data, *upload_data_size) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_method, sizeof s->last_method, "%s", method);
    pthread_mutex_unlock(&s->lock);
    server_note(s, &s->requests, 1);

    struct fo_buf b;
    fo_buf_init(&b, 1 << 20);
    if (strcmp(url, "/ok") == 0) {
        fo_buf_puts(&b, "{\"ok\":true}");
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strncmp(url, "/ok/", 4) == 0) {
        fo_buf_printf(&b, "{\"path\":\"%s\"}", url);
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/ws") == 0) {
        fo_buf_puts(&b, "  \n{\"a\": [1, 2]}\r\n\t ");
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strncmp(url, "/slow/", 6) == 0) {
        long ms = strtol(url + 6, NULL, 10);
        server_delay(s, ms);
        fo_buf_printf(&b, "{\"slept\":%ld}", ms);
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strncmp(url, "/status/", 8) == 0) {
        long code = strtol(url + 8, NULL, 10);
        if (code != 204)
            fo_buf_printf(&b, "{\"status\":%ld}", code);
        return reply(c, (unsigned)code, &b);
    }
    if (strcmp(url, "/empty") == 0)
        return reply(c, MHD_HTTP_OK, &b);
    if (strncmp(url, "/big/", 5) == 0) {
        uint64_t n = strtoull(url + 5, NULL, 10);
        for (uint64_t i = 0; i < n; i++)
            fo_buf_putc(&b, big_byte(i, n));
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strncmp(url, "/chunked/", 9) == 0) {
        fo_buf_free(&b);
        return reply_chunked(c, strtoull(url + 9, NULL, 10));
    }
    if (strncmp(url, "/deep/", 6) == 0) {
        long n = strtol(url + 6, NULL, 10);
        for (long i = 0; i < n; i++)
            fo_buf_putc(&b, '[');
        for (long i = 0; i < n; i++)
            fo_buf_putc(&b, ']');
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/truncated") == 0) {
        fo_buf_free(&b);
        return reply_truncated(c);
    }
    if (strcmp(url, "/notjson") == 0) {
        fo_buf_puts(&b, "this is not json");
        return reply(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/echo-headers") == 0)
        return echo_headers(c, method, &b);
    if (strcmp(url, "/echo-body") == 0) {
        fo_buf_append(&b, r->body.data ? r->body.data : "", r->body.len);
        return reply(c, MHD_HTTP_OK, &b);
    }
    fo_buf_puts(&b, "{\"error\":\"not found\"}");
    return reply(c, MHD_HTTP_NOT_FOUND, &b);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *r = *req_cls;
    if (r) {
        fo_buf_free(&r->body);
        free(r);
    }
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&s->lock);
        s->connections++;
        s->open++;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        server_note(s, &s->open, -1);
    }
}

static int server_start(struct server *s)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
        NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_END);
    if (!s->daemon)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!di || di->port == 0)
        return -1;
    s->port = di->port;
    return 0;
}

static void server_stop(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

static int group_setup(void **state)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    return server_start(&srv);
}

static int group_teardown(void **state)
{
    server_stop(&srv);
    curl_global_cleanup();
    return 0;
}

/* A backend of its own, for tests that count its connections: a late accept
 * from an earlier test's aborted call cannot land in its counts. */
static struct server *server_new(void)
{
    struct server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_int_equal(server_start(s), 0);
    return s;
}

static void server_free(struct server *s)
{
    server_stop(s);
    free(s);
}

/* ---- fan-outs --------------------------------------------------------------------------- */

/* A pool under test with its tally of successful submits and 'done' calls:
 * equal once it has been destroyed, so no fan-out saw 'done' twice or never.
 * Per pool, so that a failed test's leftovers cannot spoil the next test. */
struct tp {
    struct fo_pool *p;     /* The pool. */
    atomic_uint submitted; /* fo_pool_submit returned 0. */
    atomic_uint done;      /* 'done' calls. */
};

struct fan {
    struct fo_fanout f;               /* f.data points back here. */
    struct fo_call calls[MAX_CALLS];  /* f.calls. */
    char urls[MAX_CALLS][128];        /* The calls' URLs. */
    struct fo_ctx *ctx;               /* Owned: the fan-out's context. */
    struct fo_chan *fanin;            /* Owned: capacity ncalls, made at submit. */
    struct fo_chan *report;           /* Borrowed: 'done' sends the fan here. */
    struct tp *tp;                    /* Borrowed: the pool it was submitted to. */
    atomic_int ndone;                 /* 'done' calls for this fan-out. */
    size_t fanin_len_at_done;         /* Written by 'done' before it reports. */
    struct fo_call *order[MAX_CALLS]; /* Calls as 'ended' took them off the channel. */
    size_t nended;                    /* Of them. */
    int64_t submit_us, done_us;       /* fo_clock_us() at submit and in 'done'. */
};

/* The consumer a request would be (request.c): each call off the channel,
 * through the pipeline; a required call that failed by itself decides. */
static bool on_ended(struct fo_fanout *f)
{
    struct fan *fan = f->data;
    static const struct fo_stage_env env = {.max_json_depth = 64};
    bool decided = false;
    void *item;
    while (fo_chan_recv(fan->fanin, &item, 0) == 0) {
        struct fo_call *call = item;
        fo_pipeline_run(&env, call);
        if (fan->nended < MAX_CALLS)
            fan->order[fan->nended] = call;
        fan->nended++;
        decided |= call->required && call->outcome != FO_OK && call->outcome != FO_ERR_CANCELLED;
    }
    return decided;
}

static void on_done(struct fo_fanout *f)
{
    struct fan *fan = f->data;
    fan->fanin_len_at_done = fo_chan_len(fan->fanin);
    fan->done_us = fo_clock_us();
    atomic_fetch_add(&fan->ndone, 1);
    atomic_fetch_add(&fan->tp->done, 1);
    if (fo_chan_send(fan->report, fan, 0) != 0)
        abort(); /* Report channels are sized for every fan-out in flight. */
}

static struct fo_chan *chan_new(size_t cap)
{
    struct fo_chan *ch = NULL;
    assert_int_equal(fo_chan_create(&ch, cap), 0);
    return ch;
}

static struct tp *pool_new_opts(unsigned workers, size_t max_bytes, size_t queue_cap, long max_host)
{
    struct fo_pool_opts o = {.workers = workers,
                             .max_response_bytes = max_bytes,
                             .queue_cap = queue_cap,
                             .max_host_connections = max_host};
    struct tp *tp = calloc(1, sizeof *tp);
    assert_non_null(tp);
    assert_int_equal(fo_pool_create(&tp->p, &o), 0);
    assert_non_null(tp->p);
    return tp;
}

static struct tp *pool_new(unsigned workers)
{
    return pool_new_opts(workers, 1 << 20, 64, 0);
}

/* Destroy the pool; by then every 'done' has run exactly once. */
static void pool_end(struct tp *tp)
{
    fo_pool_destroy(tp->p);
    unsigned submitted = atomic_load(&tp->submitted), done = atomic_load(&tp->done);
    free(tp);
    assert_int_equal(done, submitted);
}

/* A fan-out whose context is a child of 'parent' with 'deadline_ms'. No cmocka
 * asserts: also used from submitter threads. NULL when out of memory. */
static struct fan *fan_make(struct fo_chan *report, struct fo_ctx *parent, int64_t deadline_ms)
{
    struct fan *fan = calloc(1, sizeof *fan);
    if (!fan)
        return NULL;
    if (fo_ctx_create(&fan->ctx, parent, deadline_ms) < 0) {
        free(fan);
        return NULL;
    }
    fan->report = report;
    fan->f.calls = fan->calls;
    fan->f.ctx = fan->ctx;
    fan->f.ended = on_ended;
    fan->f.done = on_done;
    fan->f.data = fan;
    return fan;
}

static struct fan *fan_new(struct fo_chan *report, struct fo_ctx *parent, int64_t deadline_ms)
{
    struct fan *fan = fan_make(report, parent, deadline_ms);
    assert_non_null(fan);
    return fan;
}

/* Add a call to 'path' on port 'port'. */
static struct fo_call *fan_add_port(struct fan *fan, uint16_t port, const char *path,
                                    int64_t timeout_ms, bool required)
{
    size_t i = fan->f.ncalls++;
    if (i >= MAX_CALLS)
        abort();
    snprintf(fan->urls[i], sizeof fan->urls[i], "http://127.0.0.1:%u%s", (unsigned)port, path);
    struct fo_call *call = &fan->calls[i];
    memset(call, 0, sizeof *call);
    call->url = fan->urls[i];
    call->timeout_ms = timeout_ms;
    call->required = required;
    call->outcome = FO_OUTCOME_COUNT; /* Not a valid result: the pool must set it. */
    call->status = -1;
    call->ms = -1;
    return call;
}

static struct fo_call *fan_add(struct fan *fan, const char *path, int64_t timeout_ms, bool required)
{
    return fan_add_port(fan, srv.port, path, timeout_ms, required);
}

/* Submit without cmocka asserts; returns fo_pool_submit's result. */
static int fan_try_submit(struct tp *tp, struct fan *fan)
{
    if (!fan->fanin && fo_chan_create(&fan->fanin, fan->f.ncalls) < 0)
        return -ENOMEM;
    fan->f.fanin = fan->fanin;
    fan->tp = tp;
    fan->submit_us = fo_clock_us();
    int rc = fo_pool_submit(tp->p, &fan->f);
    if (rc == 0)
        atomic_fetch_add(&tp->submitted, 1);
    return rc;
}

static void fan_submit(struct tp *pool, struct fan *fan)
{
    assert_int_equal(fan_try_submit(pool, fan), 0);
}

/* Wait for the next 'done' report on 'report'. */
static struct fan *fan_wait(struct fo_chan *report, int64_t timeout_ms)
{
    void *item = NULL;
    assert_int_equal(fo_chan_recv(report, &item, fo_clock_ms() + timeout_ms), 0);
    assert_non_null(item);
    return item;
}

/* Checks of the fan-in contract, without cmocka asserts (for threads):
 * 'done' once, after every call was sent and taken by 'ended'; every call on
 * the channel exactly once and nothing else. Returns 0 or a line number of the failed check. */
static int fan_fanin_problem(struct fan *fan)
{
    bool seen[MAX_CALLS] = {false};
    size_t n = fan->f.ncalls;
    if (atomic_load(&fan->ndone) != 1)
        return __LINE__;
    if (fan->fanin_len_at_done != 0 || fan->nended != n) /* All sent and taken before 'done'. */
        return __LINE__;
    for (size_t i = 0; i < n; i++) {
        struct fo_call *call = fan->order[i];
        if (call < fan->calls || call >= fan->calls + n)
            return __LINE__;
        size_t k = (size_t)(call - fan->calls);
        if (seen[k])
            return __LINE__;
        seen[k] = true;
        if (call->outcome >= FO_OUTCOME_COUNT || call->ms < 0)
            return __LINE__;
    }
    void *extra;
    if (fo_chan_recv(fan->fanin, &extra, 0) != -EAGAIN)
        return __LINE__;
    return 0;
}

static void fan_check_fanin(struct fan *fan)
{
    assert_int_equal(fan_fanin_problem(fan), 0);
}

/* Wait for 'fan' to be reported and check the fan-in contract. */
static void fan_finish(struct fo_chan *report, struct fan *fan, int64_t timeout_ms)
{
    struct fan *got = fan_wait(report, timeout_ms);
    assert_ptr_equal(got, fan);
    fan_check_fanin(fan);
}

static void fan_free(struct fan *fan)
{
    if (!fan)
        return;
    for (size_t i = 0; i < fan->f.ncalls; i++)
        fo_call_clear(&fan->calls[i]);
    fo_chan_destroy(fan->fanin, NULL);
    fo_ctx_destroy(fan->ctx);
    free(fan);
}

static double done_ms(const struct fan *fan)
{
    return (double)(fan->done_us - fan->submit_us) / 1000.0;
}

/* The call's JSON span lies inside its body and reads 'want'. */
static void assert_json(const struct fo_call *call, const char *want)
{
    assert_int_equal(call->outcome, FO_OK);
    assert_in_range(call->status, 200, 299);
    assert_non_null(call->resp);
    assert_non_null(call->json.p);
    assert_true(call->json.p >= call->resp);
    assert_true(call->json.p + call->json.len <= call->resp + call->resp_len);
    assert_int_equal(call->json.len, strlen(want));
    assert_memory_equal(call->json.p, want, call->json.len);
}

static void assert_failed(const struct fo_call *call, enum fo_outcome outcome)
{
    assert_int_equal(call->outcome, outcome);
    assert_null(call->resp);
    assert_int_equal(call->resp_len, 0);
    assert_null(call->json.p);
}

/* What /echo-headers reported. Strings are "" and has_* false when absent. */
struct echo {
    char method[16];
    char timeout_ms[32];     /* X-Timeout-Ms. */
    char request_id[512];    /* X-Request-Id. */
    char custom[64];         /* X-Custom. */
    char content_type[64];   /* Content-Type. */
    char content_length[32]; /* Content-Length, "" when absent. */
    bool has_timeout_ms, has_request_id;
    int timeout_count, request_id_count, content_type_count;
    int64_t now_ms; /* fo_clock_ms() when the backend read the request. */
};

static bool copy_str(const cJSON *j, const char *key, char *out, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    out[0] = '\0';
    if (!cJSON_IsString(v))
        return false;
    snprintf(out, size, "%s", v->valuestring);
    return true;
}

static int64_t get_num(const cJSON *j, const char *key, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) {
        *ok = false;
        return 0;
    }
    return (int64_t)v->valuedouble;
}

/* Parse a call's /echo-headers answer (the JSON is freed before any assert). */
static void echo_parse(const struct fo_call *call, struct echo *e)
{
    assert_int_equal(call->outcome, FO_OK);
    memset(e, 0, sizeof *e);
    cJSON *j = cJSON_ParseWithLength(call->json.p, call->json.len);
    assert_non_null(j);
    bool ok = copy_str(j, "method", e->method, sizeof e->method);
    e->has_timeout_ms = copy_str(j, "timeout_ms", e->timeout_ms, sizeof e->timeout_ms);
    e->has_request_id = copy_str(j, "request_id", e->request_id, sizeof e->request_id);
    copy_str(j, "custom", e->custom, sizeof e->custom);
    copy_str(j, "content_type", e->content_type, sizeof e->content_type);
    copy_str(j, "content_length", e->content_length, sizeof e->content_length);
    e->timeout_count = (int)get_num(j, "timeout_count", &ok);
    e->request_id_count = (int)get_num(j, "request_id_count", &ok);
    e->content_type_count = (int)get_num(j, "content_type_count", &ok);
    e->now_ms = get_num(j, "now_ms", &ok);
    cJSON_Delete(j);
    assert_true(ok);
}

/* X-Timeout-Ms for a call capped at 'cap_ms' with no earlier deadline: the
 * cap, less at most the time the fan-out took (t0, t1: around it). */
static void assert_cap_budget(const struct echo *e, long cap_ms, int64_t t0, int64_t t1)
{
    assert_true(e->has_timeout_ms);
    long ms = strtol(e->timeout_ms, NULL, 10);
    if (ms > cap_ms || ms < cap_ms - (t1 - t0) - 1)
        fail_msg("X-Timeout-Ms: %s for a %ld ms cap over a %lld ms fan-out", e->timeout_ms, cap_ms,
                 (long long)(t1 - t0));
}

/* Transit from the worker to the backend reading the request. */
#define TRANSIT_SLACK_MS 50

/* The X-Timeout-Ms a backend got, checked against the time it really had
 * left when it read the request (now_ms is on the same monotonic clock):
 * never more than that plus the transit slack, and no less than 'floor_ms'. */
static long assert_budget(const struct echo *e, int64_t deadline_ms, long floor_ms)
{
    assert_true(e->has_timeout_ms);
    long ms = strtol(e->timeout_ms, NULL, 10);
    int64_t left = deadline_ms - e->now_ms;
    if (ms > left + TRANSIT_SLACK_MS || ms < floor_ms)
        fail_msg("X-Timeout-Ms: %s, but %lld ms were left when the backend read it (floor %ld)",
                 e->timeout_ms, (long long)left, floor_ms);
    return ms;
}

/* ---- tests: results --------------------------------------------------------------------- */

static void test_all_ok(void **state)
{
    struct tp *pool = pool_new(2);
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    char path[MAX_CALLS][32];

    for (int i = 0; i < 6; i++) {
        snprintf(path[i], sizeof path[i], "/ok/call-%d", i);
        fan_add(fan, path[i], 0, i % 2 == 0);
    }
    fan_add(fan, "/ws", 0, true);
    fan_add(fan, "/ok", 0, false);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    for (int i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"path\":\"/ok/call-%d\"}", i);
        assert_json(&fan->calls[i], want);
        /* The body is exactly the value here, and NUL-terminated. */
        assert_ptr_equal(fan->calls[i].json.p, fan->calls[i].resp);
        assert_int_equal(fan->calls[i].resp_len, strlen(want));
        assert_int_equal(fan->calls[i].resp[fan->calls[i].resp_len], '\0');
        assert_true(fan->calls[i].ms > 0);
    }
    /* Whitespace around the value: the span skips it, the body keeps it. */
    const struct fo_call *ws = &fan->calls[6];
    assert_json(ws, "{\"a\": [1, 2]}");
    assert_int_equal(ws->resp_len, strlen("  \n{\"a\": [1, 2]}\r\n\t "));
    assert_ptr_equal(ws->json.p, ws->resp + 3);
    assert_json(&fan->calls[7], "{\"ok\":true}");
    assert_int_equal(fo_ctx_err(fan->ctx), 0); /* Success cancels nothing. */

    /* fo_call_clear frees the result and resets the fields. */
    fo_call_clear(&fan->calls[0]);
    assert_null(fan->calls[0].resp);
    assert_int_equal(fan->calls[0].resp_len, 0);
    assert_null(fan->calls[0].json.p);
    assert_int_equal(fan->calls[0].status, 0);

    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_calls_run_concurrently(void **state)
{
    /* One worker: the concurrency comes from its curl multi, not from threads. */
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);

    for (int i = 0; i < 3; i++)
        fan_add(fan, "/slow/200", 0, true);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    for (int i = 0; i < 3; i++) {
        assert_json(&fan->calls[i], "{\"slept\":200}");
        assert_true(fan->calls[i].ms >= 195);
    }
    double took = done_ms(fan);
    assert_true(took >= 195);
    if (took >= 400)
        fail_msg("3 x 200 ms calls took %.1f ms: not concurrent", took);
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_status_classes(void **state)
{
    enum { MAX = 4096 };
    struct tp *pool = pool_new_opts(1, MAX, 8, 0);
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);

    /* A port that is bound but not listening refuses connections, and
     * stays ours for the whole test. */
    int closed = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(closed >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    assert_int_equal(bind(closed, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(closed, (struct sockaddr *)&sa, &slen), 0);

    fan_add(fan, "/status/503", 0, false);                  /* 0 */
    fan_add(fan, "/status/404", 0, false);                  /* 1 */
    fan_add(fan, "/notjson", 0, false);                     /* 2 */
    fan_add(fan, "/big/4096", 0, false);                    /* 3: at the limit */
    fan_add(fan, "/big/4097", 0, false);                    /* 4: one byte over */
    fan_add(fan, "/chunked/4096", 0, false);                /* 5 */
    fan_add(fan, "/chunked/4097", 0, false);                /* 6 */
    fan_add(fan, "/big/100000", 0, false);                  /* 7 */
    fan_add(fan, "/chunked/100000", 0, false);              /* 8 */
    fan_add_port(fan, ntohs(sa.sin_port), "/ok", 0, false); /* 9 */
    fan_add(fan, "/status/201", 0, false);                  /* 10: 2xx is success */
    fan_add(fan, "/status/301", 0, false);                  /* 11: not followed */
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    assert_failed(&fan->calls[0], FO_ERR_STATUS);
    assert_int_equal(fan->calls[0].status, 503);
    assert_failed(&fan->calls[1], FO_ERR_STATUS);
    assert_int_equal(fan->calls[1].status, 404);
    assert_failed(&fan->calls[2], FO_ERR_INVALID_JSON);
    assert_int_equal(fan->calls[2].status, 200);
    assert_int_equal(fan->calls[3].outcome, FO_OK);
    assert_int_equal(fan->calls[3].resp_len, MAX);
    assert_failed(&fan->calls[4], FO_ERR_TOO_LARGE);
    assert_int_equal(fan->calls[5].outcome, FO_OK);
    assert_int_equal(fan->calls[5].resp_len, MAX);
    assert_failed(&fan->calls[6], FO_ERR_TOO_LARGE);
    assert_failed(&fan->calls[7], FO_ERR_TOO_LARGE);
    assert_failed(&fan->calls[8], FO_ERR_TOO_LARGE);
    assert_failed(&fan->calls[9], FO_ERR_CONNECT);
    assert_int_equal(fan->calls[9].status, 0);
    assert_json(&fan->calls[10], "{\"status\":201}");
    assert_int_equal(fan->calls[10].status, 201);
    assert_failed(&fan->calls[11], FO_ERR_STATUS);
    assert_int_equal(fan->calls[11].status, 301);
    /* None was required: nothing was cancelled. */
    assert_int_equal(fo_ctx_err(fan->ctx), 0);

    close(closed);
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_broken_and_deep_bodies(void **state)
{
    struct tp *pool = pool_new(1); /* on_ended's pipeline: max_json_depth 64 */
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);

    struct fo_call *deep64 = fan_add(fan, "/deep/64", 0, false);
    struct fo_call *deep65 = fan_add(fan, "/deep/65", 0, false);
    struct fo_call *cut = fan_add(fan, "/truncated", 0, false);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    assert_int_equal(deep64->outcome, FO_OK);
    assert_int_equal(deep64->json.len, 128);
    assert_failed(deep65, FO_ERR_INVALID_JSON);
    assert_int_equal(deep65->status, 200);
    assert_failed(cut, FO_ERR_CONNECT); /* The connection broke mid-body. */
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_methods_and_body(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    static const char body[] = "{\"x\":[1,2,3],\"s\":\"\\u00e9\"}";

    struct fo_call *post = fan_add(fan, "/echo-body", 0, false);
    post->method = "POST";
    post->body = body;
    post->body_len = strlen(body);
    /* With a body, fanout's Content-Type wins over a configured one. */
    static const char *const hdrs[] = {"Content-Type: text/plain", "X-Custom: yes"};
    struct fo_call *implicit = fan_add(fan, "/echo-headers", 0, false);
    implicit->body = "{}"; /* A body without a method is a POST. */
    implicit->body_len = 2;
    implicit->headers = hdrs;
    implicit->nheaders = 2;
    struct fo_call *put = fan_add(fan, "/echo-headers", 0, false);
    put->method = "PUT";
    put->body = "[]";
    put->body_len = 2;
    struct fo_call *del = fan_add(fan, "/echo-headers", 0, false);
    del->method = "DELETE";
    del->headers = hdrs; /* Without a body, the configured Content-Type is sent. */
    del->nheaders = 2;
    fan_add(fan, "/echo-headers", 0, false); /* GET */
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    assert_json(post, body);
    static const char *const want[] = {"POST", "PUT", "DELETE", "GET"};
    for (int i = 0; i < 4; i++) {
        struct echo e;
        echo_parse(&fan->calls[1 + i], &e);
        assert_string_equal(e.method, want[i]);
        if (i < 2) {
            assert_string_equal(e.content_type, "application/json");
            assert_int_equal(e.content_type_count, 1);
        }
        if (i == 0 || i == 2)
            assert_string_equal(e.custom, "yes");
        if (i == 2) {
            assert_string_equal(e.content_type, "text/plain");
            assert_int_equal(e.content_type_count, 1);
        }
    }
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* A worker reuses its easy handles: what one call set must not leak into the
 * next. One worker and one call per fan-out, so each call gets the handle the
 * previous one used. Every pair is tried before failing, to show which leak. */
static void test_handle_reuse_keeps_no_method(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    static const char *const methods[] = {"GET",  "HEAD",   "POST", "HEAD", "PUT",   "HEAD", "GET",
                                          "HEAD", "DELETE", "POST", "HEAD", "PATCH", "POST", "GET"};
    enum { N = sizeof methods / sizeof methods[0] };
    char problems[2048] = "";
    size_t used = 0;

    for (size_t i = 0; i < N; i++) {
        struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
        struct fo_call *call = fan_add(fan, "/echo-headers", 0, false);
        bool body = strcmp(methods[i], "POST") == 0 || strcmp(methods[i], "PUT") == 0 ||
                    strcmp(methods[i], "PATCH") == 0;
        call->method = methods[i];
        if (body) {
            call->body = "{}";
            call->body_len = 2;
        }
        fan_submit(pool, fan);
        fan_finish(report, fan, WAIT_MS);
        char seen[16];
        pthread_mutex_lock(&srv.lock);
        memcpy(seen, srv.last_method, sizeof seen);
        pthread_mutex_unlock(&srv.lock);
        /* A HEAD answer has no body: it succeeds as null; the rest echo as JSON. */
        bool head = strcmp(methods[i], "HEAD") == 0;
        bool ok = strcmp(seen, methods[i]) == 0 && call->status == 200 && call->outcome == FO_OK &&
                  (!head || (call->json.len == 4 && memcmp(call->json.p, "null", 4) == 0));
        if (!ok && used < sizeof problems)
            used += (size_t)snprintf(problems + used, sizeof problems - used,
                                     "\n  %s%s after %s: backend saw %s, outcome %s, status %d",
                                     methods[i], body ? " with a body" : "",
                                     i ? methods[i - 1] : "nothing", seen,
                                     fo_outcome_name(call->outcome), call->status);
        fan_free(fan);
    }
    pool_end(pool);
    fo_chan_destroy(report, NULL);
    if (problems[0])
        fail_msg("a reused easy handle kept the previous call's method:%s", problems);
}

/* A 2xx answer to a HEAD, and a 204 to any method, is a success whose value
 * is null; any other 2xx with an empty body is invalid_json. A POST, PUT or
 * PATCH without a body says Content-Length: 0 (and no form Content-Type), so
 * the backend does not wait for one. */
static void test_empty_answers_and_bodyless_posts(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(8);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    struct fo_call *head = fan_add(fan, "/ok", 0, false);
    head->method = "HEAD";
    struct fo_call *nocontent = fan_add(fan, "/status/204", 0, false);
    struct fo_call *empty = fan_add(fan, "/empty", 0, false);
    static const char *const posts[] = {"POST", "PUT", "PATCH"};
    struct fo_call *bodyless[3];
    for (int i = 0; i < 3; i++) {
        bodyless[i] = fan_add(fan, "/echo-headers", 0, false);
        bodyless[i]->method = posts[i];
    }
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    assert_json(head, "null");
    assert_json(nocontent, "null");
    assert_int_equal(nocontent->status, 204);
    assert_failed(empty, FO_ERR_INVALID_JSON);
    assert_int_equal(empty->status, 200);
    for (int i = 0; i < 3; i++) {
        struct echo e;
        echo_parse(bodyless[i], &e);
        assert_string_equal(e.method, posts[i]);
        assert_string_equal(e.content_length, "0");
        assert_int_equal(e.content_type_count, 0);
    }
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* ---- tests: deadlines and headers ------------------------------------------------------- */

static void test_call_timeout(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);

    char slow[32];
    snprintf(slow, sizeof slow, "/slow/%d", SLOW_MS);
    struct fo_call *cut = fan_add(fan, slow, 150, false);
    struct fo_call *fast = fan_add(fan, "/ok", 150, false);
    struct fo_call *other = fan_add(fan, "/slow/300", 0, false); /* No own cap, no deadline. */
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    assert_failed(cut, FO_ERR_TIMEOUT);
    assert_int_equal(cut->status, 0);
    if (cut->ms < 145 || cut->ms > 150 + 300)
        fail_msg("150 ms call timeout ended after %.1f ms", cut->ms);
    assert_json(fast, "{\"ok\":true}");
    assert_json(other, "{\"slept\":300}"); /* A sibling's timeout cancels nothing. */
    assert_int_equal(fo_ctx_err(fan->ctx), 0);
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_ctx_deadline(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    int64_t deadline = fo_clock_ms() + 200;
    struct fan *fan = fan_new(report, NULL, deadline);

    char slow[32];
    snprintf(slow, sizeof slow, "/slow/%d", SLOW_MS);
    struct fo_call *a = fan_add(fan, slow, 0, false);
    struct fo_call *b = fan_add(fan, slow, 3000, false); /* Own cap later than the deadline. */
    struct fo_call *c = fan_add(fan, "/ok", 0, false);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);

    assert_failed(a, FO_ERR_TIMEOUT);
    assert_failed(b, FO_ERR_TIMEOUT);
    assert_json(c, "{\"ok\":true}");
    /* Not before the deadline, and not long after it. */
    int64_t late_us = fan->done_us - deadline * 1000;
    if (late_us < -1000 || late_us > 300 * 1000)
        fail_msg("deadline fan-out done %+.1f ms from its deadline", (double)late_us / 1000);
    assert_int_equal(fo_ctx_err(fan->ctx), -ETIMEDOUT);
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* Many fan-outs on one worker, each with its own deadline: each ends at its
 * own, never before it, whatever order they were submitted in, and fan-outs
 * that finish first leave the others' deadlines intact. */
static void test_deadlines_in_any_order(void **state)
{
    static const int offsets[] = {300, 120, 500, 200, 450, 150, 350, 250};
    enum { N = sizeof offsets / sizeof offsets[0] };
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(2 * N);
    struct fan *timed[N], *quick[N];
    int64_t deadline[N];
    char slow[32];
    snprintf(slow, sizeof slow, "/slow/%d", SLOW_MS);

    int64_t t0 = fo_clock_ms();
    for (int i = 0; i < N; i++) {
        deadline[i] = t0 + offsets[i];
        timed[i] = fan_new(report, NULL, deadline[i]);
        fan_add(timed[i], slow, 0, false);
        /* A later deadline, done long before it: leaves the heap from inside. */
        quick[i] = fan_new(report, NULL, t0 + 2000 + 100 * i);
        fan_add(quick[i], "/slow/60", 0, false);
        fan_submit(pool, timed[i]);
        fan_submit(pool, quick[i]);
    }
    for (int k = 0; k < 2 * N; k++) {
        struct fan *f = fan_wait(report, WAIT_MS);
        fan_check_fanin(f);
    }
    for (int i = 0; i < N; i++) {
        assert_failed(&timed[i]->calls[0], FO_ERR_TIMEOUT);
        int64_t late_us = timed[i]->done_us - deadline[i] * 1000;
        if (late_us < -1000 || late_us > 200 * 1000)
            fail_msg("fan-out %d (deadline +%d ms) done %+.1f ms from it", i, offsets[i],
                     (double)late_us / 1000);
        assert_json(&quick[i]->calls[0], "{\"slept\":60}");
    }
    for (int i = 0; i < N; i++) {
        fan_free(timed[i]);
        fan_free(quick[i]);
    }
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_timeout_and_request_id_headers(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    static const char *const hdrs[] = {"X-Custom: yes", "X-Timeout-Ms: 999999",
                                       "x-request-id: spoofed"};

    /* A deadline 3 s away: every call's header is at most what is left. */
    int64_t t0 = fo_clock_ms();
    struct fan *fan = fan_new(report, NULL, t0 + 3000);
    fan->f.request_id = "req-42/abc";
    struct fo_call *bydeadline = fan_add(fan, "/echo-headers", 0, false);
    bydeadline->headers = hdrs;
    bydeadline->nheaders = 3;
    struct fo_call *bycap = fan_add(fan, "/echo-headers", 700, false);
    struct fo_call *biggercap = fan_add(fan, "/echo-headers", 60000, false);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    int64_t t1 = fo_clock_ms();

    struct echo e;
    echo_parse(bydeadline, &e);
    assert_budget(&e, t0 + 3000, (long)(3000 - (t1 - t0) - 1));
    assert_int_equal(e.timeout_count, 1); /* The call's own X-Timeout-Ms is dropped. */
    assert_string_equal(e.request_id, "req-42/abc");
    assert_int_equal(e.request_id_count, 1);
    assert_string_equal(e.custom, "yes");

    echo_parse(bycap, &e);
    assert_cap_budget(&e, 700, t0, t1); /* min(700, ~3000) */
    assert_string_equal(e.request_id, "req-42/abc");

    echo_parse(biggercap, &e);
    assert_budget(&e, t0 + 3000, (long)(3000 - (t1 - t0) - 1)); /* min(60000, ~3000) */
    fan_free(fan);

    /* No deadline: the call's own cap is the budget; no request id, no header. */
    fan = fan_new(report, NULL, FO_NO_DEADLINE);
    struct fo_call *nodeadline = fan_add(fan, "/echo-headers", 700, false);
    t0 = fo_clock_ms();
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    t1 = fo_clock_ms();
    echo_parse(nodeadline, &e);
    assert_cap_budget(&e, 700, t0, t1);
    assert_false(e.has_request_id);
    assert_int_equal(e.request_id_count, 0);
    fan_free(fan);

    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* With a connection cap the second call waits for the first one's connection:
 * the X-Timeout-Ms it carries must still be what is left when it is sent. */
static void test_timeout_header_after_waiting_for_a_connection(void **state)
{
    struct tp *pool = pool_new_opts(1, 1 << 20, 8, 1);
    struct fo_chan *report = chan_new(4);

    unsigned base = server_get(&srv, &srv.slow_started);
    struct fan *first = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add(first, "/slow/500", 0, true);
    fan_submit(pool, first);
    assert_true(server_wait(&srv, &srv.slow_started, base + 1, true));

    int64_t deadline = fo_clock_ms() + 2000;
    struct fan *second = fan_new(report, NULL, deadline);
    struct fo_call *echo = fan_add(second, "/echo-headers", 0, true);
    fan_submit(pool, second);
    fan_finish(report, first, WAIT_MS);
    fan_finish(report, second, WAIT_MS);
    assert_json(&first->calls[0], "{\"slept\":500}");
    struct echo e;
    echo_parse(echo, &e);
    assert_budget(&e, deadline, 1);

    fan_free(first);
    fan_free(second);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* pool.h: request_id is "sent to every call as X-Request-Id" -- all of it. */
static void test_long_request_id_forwarded_whole(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    char id[201];
    for (size_t i = 0; i < sizeof id - 1; i++)
        id[i] = (char)('a' + i % 26);
    id[sizeof id - 1] = '\0';

    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    fan->f.request_id = id;
    struct fo_call *echo = fan_add(fan, "/echo-headers", 0, true);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    struct echo e;
    echo_parse(echo, &e);
    assert_true(e.has_request_id);
    if (strcmp(e.request_id, id) != 0)
        fail_msg("a %zu-byte request id arrived as %zu bytes", strlen(id), strlen(e.request_id));
    fan_free(fan);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* ---- tests: cancellation ---------------------------------------------------------------- */

static void test_fail_fast(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    char slow[32];
    snprintf(slow, sizeof slow, "/slow/%d", SLOW_MS);

    /* A required call answering 500 cancels its slow siblings. */
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    struct fo_call *s1 = fan_add(fan, slow, 0, false);
    struct fo_call *req = fan_add(fan, "/status/500", 0, true);
    struct fo_call *s2 = fan_add(fan, slow, 0, true);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    assert_failed(req, FO_ERR_STATUS);
    assert_int_equal(req->status, 500);
    assert_failed(s1, FO_ERR_CANCELLED);
    assert_failed(s2, FO_ERR_CANCELLED);
    assert_int_equal(s1->status, 0);
    if (done_ms(fan) > PROMPT_MS)
        fail_msg("fail fast took %.1f ms", done_ms(fan));
    assert_int_equal(fo_ctx_err(fan->ctx), -ECANCELED);
    fan_free(fan);

    /* A required call that times out does the same. */
    fan = fan_new(report, NULL, FO_NO_DEADLINE);
    s1 = fan_add(fan, slow, 0, false);
    req = fan_add(fan, slow, 100, true);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    assert_failed(req, FO_ERR_TIMEOUT);
    assert_failed(s1, FO_ERR_CANCELLED);
    if (done_ms(fan) > 100 + PROMPT_MS)
        fail_msg("fail fast after a timeout took %.1f ms", done_ms(fan));
    assert_true(fo_ctx_err(fan->ctx) < 0);
    fan_free(fan);

    /* An optional call failing cancels nothing. */
    fan = fan_new(report, NULL, FO_NO_DEADLINE);
    struct fo_call *opt = fan_add(fan, "/status/500", 0, false);
    struct fo_call *s = fan_add(fan, "/slow/200", 0, true);
    fan_submit(pool, fan);
    fan_finish(report, fan, WAIT_MS);
    assert_failed(opt, FO_ERR_STATUS);
    assert_json(s, "{\"slept\":200}");
    assert_int_equal(fo_ctx_err(fan->ctx), 0);
    fan_free(fan);

    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

static void test_sweep_after_parent_cancel(void **state)
{
    struct tp *pool = pool_new(2);
    struct fo_chan *report = chan_new(8);
    struct fo_ctx *parent = NULL;
    assert_int_equal(fo_ctx_create(&parent, NULL, FO_NO_DEADLINE), 0);
    char slow[32];
    snprintf(slow, sizeof slow, "/slow/%d", SLOW_MS);

    unsigned base = server_get(&srv, &srv.slow_started);
    struct fan *a = fan_new(report, parent, FO_NO_DEADLINE);
    fan_add(a, slow, 0, false);
    fan_add(a, slow, 0, false);
    struct fan *b = fan_new(report, parent, FO_NO_DEADLINE);
    fan_add(b, slow, 0, false);
    /* Not under the parent: the sweep must leave it alone. */
    struct fan *other = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add(other, "/slow/600", 0, false);
    fan_submit(pool, a);
    fan_submit(pool, b);
    fan_submit(pool, other);
    assert_true(server_wait(&srv, &srv.slow_started, base + 4, true));

    int64_t t0 = fo_clock_us();
    fo_ctx_cancel(parent, -ESHUTDOWN);
    fo_pool_sweep(pool->p);
    for (int i = 0; i < 2; i++) {
        struct fan *f = fan_wait(report, WAIT_MS);
        assert_true(f == a || f == b);
        fan_check_fanin(f);
        if ((double)(f->done_us - t0) / 1000 > PROMPT_MS)
            fail_msg("sweep took %.1f ms", (double)(f->done_us - t0) / 1000);
        for (size_t k = 0; k < f->f.ncalls; k++)
            assert_failed(&f->calls[k], FO_ERR_CANCELLED);
        assert_int_equal(fo_ctx_err(f->ctx), -ESHUTDOWN);
    }
    fan_finish(report, other, WAIT_MS);
    assert_json(&other->calls[0], "{\"slept\":600}");

    fan_free(a);
    fan_free(b);
    fan_free(other);
    pool_end(pool);
    fo_ctx_destroy(parent);
    fo_chan_destroy(report, NULL);
}

static void test_ctx_done_before_submit(void **state)
{
    struct tp *pool = pool_new(1);
    struct fo_chan *report = chan_new(4);
    unsigned requests = server_get(&srv, &srv.requests);

    struct fan *cancelled = fan_new(report, NULL, FO_NO_DEADLINE);
    fo_ctx_cancel(cancelled->ctx, -ECANCELED);
    struct fan *expired = fan_new(report, NULL, fo_clock_ms() - 1);
    for (int i = 0; i < 3; i++) {
        fan_add(cancelled, "/ok", 0, i == 0);
        fan_add(expired, "/ok", 0, i == 0);
    }
    fan_submit(pool, cancelled);
    fan_finish(report, cancelled, WAIT_MS);
    fan_submit(pool, expired);
    fan_finish(report, expired, WAIT_MS);

    for (int i = 0; i < 3; i++) {
        assert_failed(&cancelled->calls[i], FO_ERR_CANCELLED);
        assert_int_equal(cancelled->calls[i].status, 0);
        assert_true(cancelled->calls[i].ms == 0);
        assert_failed(&expired->calls[i], FO_ERR_TIMEOUT);
        assert_int_equal(expired->calls[i].status, 0);
        assert_true(expired->calls[i].ms == 0);
    }
    /* Nothing was started: no request, no connection. */
    struct fo_pool_stats st;
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.fanouts, 2);
    assert_int_equal(st.calls, 6);
    assert_int_equal(server_get(&srv, &srv.requests), requests);

    fan_free(cancelled);
    fan_free(expired);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* ---- tests: many submitters ------------------------------------------------------------- */

enum { SUBMITTERS = 4, FANOUTS_EACH = 200, CALLS_EACH = 3, WINDOW = 25 };

struct submitter {
    struct tp *pool;          /* Borrowed. */
    pthread_barrier_t *start; /* Borrowed: all threads submit at once. */
    uint16_t port;            /* The backend's. */
    int id;
    pthread_t thread;
    int completed;     /* Out: fan-outs that ended, checked. */
    int bad;           /* Out: fan-outs that failed a check. */
    int first_problem; /* Out: line of the first failed check, 0 if none. */
    int eagain;        /* Out: submits refused with -EAGAIN (then retried). */
    int fanouts;       /* Fan-outs to submit (0: FANOUTS_EACH). */
    int calls;         /* Calls in each (0: CALLS_EACH). */
    int window;        /* Fan-outs in flight at most (0: WINDOW). */
};

static int check_many(struct fan *fan, int id)
{
    int line = fan_fanin_problem(fan);
    if (line)
        return line;
    for (size_t k = 0; k < fan->f.ncalls; k++) {
        const struct fo_call *c = &fan->calls[k];
        char want[160];
        const char *path = strstr(fan->urls[k], "/ok/");
        if (!path || c->outcome != FO_OK || c->status != 200 || !c->resp)
            return __LINE__;
        snprintf(want, sizeof want, "{\"path\":\"%s\"}", path);
        if (c->json.len != strlen(want) || memcmp(c->json.p, want, c->json.len) != 0)
            return __LINE__;
        if (strncmp(path + 4, "t", 1) != 0 || atoi(path + 5) != id)
            return __LINE__;
    }
    return 0;
}

static void submitter_collect(struct submitter *s, struct fo_chan *report, int *outstanding)
{
    void *item = NULL;
    if (fo_chan_recv(report, &item, fo_clock_ms() + WAIT_MS) != 0) {
        s->bad++;
        if (!s->first_problem)
            s->first_problem = __LINE__;
        *outstanding = 0; /* Give up: something is stuck. */
        return;
    }
    struct fan *fan = item;
    int line = check_many(fan, s->id);
    if (line) {
        s->bad++;
        if (!s->first_problem)
            s->first_problem = line;
    }
    s->completed++;
    fan_free(fan);
    (*outstanding)--;
}

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    struct fo_chan *report = NULL;
    int outstanding = 0;
    int fanouts = s->fanouts ? s->fanouts : FANOUTS_EACH, calls = s->calls ? s->calls : CALLS_EACH;
    int window = s->window ? s->window : WINDOW;
    if (fo_chan_create(&report, (size_t)window) < 0)
        abort();
    pthread_barrier_wait(s->start);
    for (int i = 0; i < fanouts; i++) {
        struct fan *fan = fan_make(report, NULL, fo_clock_ms() + WAIT_MS);
        if (!fan)
            abort();
        fan->f.request_id = "many";
        for (int k = 0; k < calls; k++) {
            char path[64];
            snprintf(path, sizeof path, "/ok/t%d-f%d-c%d", s->id, i, k);
            fan_add_port(fan, s->port, path, 0, k == 0);
        }
        for (;;) {
            int rc = fan_try_submit(s->pool, fan);
            if (rc == 0)
                break;
            if (rc != -EAGAIN)
                abort();
            s->eagain++;
            if (outstanding > 0)
                submitter_collect(s, report, &outstanding);
            else
                sched_yield();
        }
        outstanding++;
        if (outstanding == window)
            submitter_collect(s, report, &outstanding);
    }
    while (outstanding > 0)
        submitter_collect(s, report, &outstanding);
    fo_chan_destroy(report, NULL);
    return NULL;
}

/* Meanwhile another thread reads the counters and asks for sweeps (of live
 * contexts: they must change nothing). */
struct poker {
    struct tp *pool;  /* Borrowed. */
    atomic_bool stop; /* Set by the test when the submitters are done. */
    unsigned pokes;   /* Out: rounds done. */
    pthread_t thread;
};

static void *poker_main(void *arg)
{
    struct poker *p = arg;
    while (!atomic_load(&p->stop)) {
        struct fo_pool_stats st;
        fo_pool_stats(p->pool->p, &st);
        fo_pool_sweep(p->pool->p);
        p->pokes++;
        struct timespec ts = {.tv_nsec = 1000000}; /* Pacing, not synchronisation. */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_many_submitters(void **state)
{
    enum { WORKERS = 2, HOST_CAP = 16 };
    struct tp *pool = pool_new_opts(WORKERS, 1 << 20, 64, HOST_CAP);
    struct submitter subs[SUBMITTERS];
    pthread_barrier_t start;
    struct server *own = server_new();

    struct poker poker = {.pool = pool};
    assert_int_equal(pthread_create(&poker.thread, NULL, poker_main, &poker), 0);
    pthread_barrier_init(&start, NULL, SUBMITTERS);
    for (int i = 0; i < SUBMITTERS; i++) {
        subs[i] = (struct submitter){.pool = pool, .start = &start, .port = own->port, .id = i};
        assert_int_equal(pthread_create(&subs[i].thread, NULL, submitter_main, &subs[i]), 0);
    }
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(subs[i].thread, NULL);
    pthread_barrier_destroy(&start);
    atomic_store(&poker.stop, true);
    pthread_join(poker.thread, NULL);
    assert_true(poker.pokes > 0);

    for (int i = 0; i < SUBMITTERS; i++) {
        if (subs[i].bad)
            fail_msg("submitter %d: %d bad fan-outs, first failed check at line %d", i, subs[i].bad,
                     subs[i].first_problem);
        assert_int_equal(subs[i].completed, FANOUTS_EACH);
    }
    struct fo_pool_stats st;
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.fanouts, SUBMITTERS * FANOUTS_EACH);
    assert_int_equal(st.calls, SUBMITTERS * FANOUTS_EACH * CALLS_EACH);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.queued, 0);
    /* Connections are capped per worker and kept alive. */
    assert_true(st.connections >= 1);
    if (st.connections > WORKERS * HOST_CAP)
        fail_msg("%llu connections opened, cap %d", (unsigned long long)st.connections,
                 WORKERS * HOST_CAP);
    assert_int_equal(server_get(own, &own->connections), st.connections);
    pool_end(pool);
    server_free(own);
}

/* Wakeups coalesce (one wake fd write while none is pending): many threads
 * submitting small fan-outs (up to 64 each in flight), so that submits land while a
 * worker drains its inbox. A wakeup lost there leaves a job in the inbox with
 * the worker asleep: its fan-out never ends and the submitter reports it. */
static void test_wakeups_never_lost(void **state)
{
    (void)state;
    enum { THREADS = 6, EACH = 3000 };
    struct tp *pool = pool_new_opts(2, 1 << 20, 64, 16);
    struct submitter subs[THREADS];
    pthread_barrier_t start;
    struct server *own = server_new();
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        subs[i] = (struct submitter){.pool = pool,
                                     .start = &start,
                                     .port = own->port,
                                     .id = i,
                                     .fanouts = EACH,
                                     .calls = 1,
                                     .window = 64};
        assert_int_equal(pthread_create(&subs[i].thread, NULL, submitter_main, &subs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(subs[i].thread, NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < THREADS; i++) {
        if (subs[i].bad)
            fail_msg("submitter %d: %d bad fan-outs, first failed check at line %d", i, subs[i].bad,
                     subs[i].first_problem);
        assert_int_equal(subs[i].completed, EACH);
    }
    pool_end(pool);
    server_free(own);
}

/* ---- tests: statistics, back-pressure, lifecycle ---------------------------------------- */

static void test_stats_and_connection_reuse(void **state)
{
    enum { WORKERS = 2, N = 20 };
    struct tp *pool = pool_new(WORKERS);
    struct fo_chan *report = chan_new(4);
    struct fo_pool_stats st;
    struct server *own = server_new();

    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.fanouts, 0);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.connections, 0);
    for (int i = 0; i < N; i++) {
        struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
        fan_add_port(fan, own->port, "/ok", 0, true);
        fan_add_port(fan, own->port, "/ok/second", 0, true);
        fan_submit(pool, fan);
        fan_finish(report, fan, WAIT_MS);
        assert_json(&fan->calls[0], "{\"ok\":true}");
        fan_free(fan);
    }
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.fanouts, N);
    assert_int_equal(st.calls, 2 * N);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.queued, 0);
    /* Two calls at once per fan-out, on two workers: two connections each, reused. */
    if (st.connections < 1 || st.connections > 2 * WORKERS)
        fail_msg("%llu connections for %d sequential fan-outs", (unsigned long long)st.connections,
                 N);
    assert_int_equal(server_get(own, &own->connections), st.connections);

    /* A running call shows as running. */
    unsigned base = server_get(own, &own->slow_started);
    struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add_port(fan, own->port, "/slow/300", 0, true);
    fan_submit(pool, fan);
    assert_true(server_wait(own, &own->slow_started, base + 1, true));
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.fanouts, N);
    fan_finish(report, fan, WAIT_MS);
    fan_free(fan);
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.fanouts, N + 1);
    assert_int_equal(st.calls, 2 * N + 1);

    pool_end(pool);
    fo_chan_destroy(report, NULL);
    server_free(own);
}

/* A gate a 'done' callback waits at, to hold its worker still. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void on_done_gated(struct fo_fanout *f)
{
    on_done(f);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&gate.lock);
    int rc = 0;
    while (!gate.open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&gate.cond, &gate.lock, &until);
    pthread_mutex_unlock(&gate.lock);
}

static void test_full_inbox_is_eagain(void **state)
{
    struct tp *pool = pool_new_opts(1, 1 << 20, 1, 0);
    struct fo_chan *report = chan_new(4);
    struct fo_pool_stats st;

    /* The worker blocks in a.done (deliberately against the rules), so the
     * inbox fills: one fan-out fits, the next is refused. */
    struct fan *a = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add(a, "/ok", 0, true);
    a->f.done = on_done_gated;
    struct fan *b = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add(b, "/ok/b", 0, true);
    struct fan *c = fan_new(report, NULL, FO_NO_DEADLINE);
    fan_add(c, "/ok/c", 0, true);

    fan_submit(pool, a);
    fan_finish(report, a, WAIT_MS); /* The worker now waits at the gate. */
    fan_submit(pool, b);
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(fan_try_submit(pool, c), -EAGAIN);

    pthread_mutex_lock(&gate.lock);
    gate.open = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    fan_finish(report, b, WAIT_MS);
    assert_json(&b->calls[0], "{\"path\":\"/ok/b\"}");
    fan_submit(pool, c);
    fan_finish(report, c, WAIT_MS);
    assert_json(&c->calls[0], "{\"path\":\"/ok/c\"}");
    fo_pool_stats(pool->p, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.fanouts, 3);

    fan_free(a);
    fan_free(b);
    fan_free(c);
    pool_end(pool);
    fo_chan_destroy(report, NULL);
}

/* Open descriptors of this process, not counting the backends' own sockets
 * (local port srv.port or 'port'): a server closes them on its own threads,
 * some time after the client did. */
static int count_fds(uint16_t port)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        if (fd == dirfd(d))
            continue;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
            if (sa.sin_family == AF_INET &&
                (ntohs(sa.sin_port) == srv.port || ntohs(sa.sin_port) == port))
                continue;
        } else if (errno == EBADF) {
            continue; /* A server thread closed it while we looked. */
        }
        n++;
    }
    closedir(d);
    return n;
}

static void test_create_destroy(void **state)
{
    struct fo_pool_opts bad = {.workers = 0, .max_response_bytes = 1024, .queue_cap = 4};
    struct fo_pool *raw = NULL;
    assert_int_equal(fo_pool_create(&raw, &bad), -EINVAL);
    bad.workers = 1;
    bad.queue_cap = 0;
    assert_int_equal(fo_pool_create(&raw, &bad), -EINVAL);
    fo_pool_destroy(NULL); /* A no-op. */

    /* Idle pools, then a pool that kept connections: destroy closes everything. */
    struct server *own = server_new();
    int fds = count_fds(own->port);
    assert_true(fds > 0);
    pool_end(pool_new(1));
    pool_end(pool_new(4));
    assert_int_equal(count_fds(own->port), fds);

    struct tp *pool = pool_new(3);
    struct fo_chan *report = chan_new(4);
    for (int i = 0; i < 3; i++) {
        struct fan *fan = fan_new(report, NULL, FO_NO_DEADLINE);
        fan_add_port(fan, own->port, "/ok", 0, true);
        fan_add_port(fan, own->port, "/big/3000", 0, true);
        fan_submit(pool, fan);
        fan_finish(report, fan, WAIT_MS);
        assert_int_equal(fan->calls[1].outcome, FO_OK);
        fan_free(fan);
    }
    assert_true(server_get(own, &own->open) > 0);
    assert_true(count_fds(own->port) > fds); /* The pool's kept connections. */
    pool_end(pool);
    assert_int_equal(count_fds(own->port), fds);
    assert_true(server_wait(own, &own->open, 0, false)); /* The backend saw them close. */
    fo_chan_destroy(report, NULL);
    server_free(own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_destroy),
        cmocka_unit_test(test_all_ok),
        cmocka_unit_test(test_calls_run_concurrently),
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_broken_and_deep_bodies),
        cmocka_unit_test(test_methods_and_body),
        cmocka_unit_test(test_handle_reuse_keeps_no_method),
        cmocka_unit_test(test_empty_answers_and_bodyless_posts),
        cmocka_unit_test(test_call_timeout),
        cmocka_unit_test(test_ctx_deadline),
        cmocka_unit_test(test_deadlines_in_any_order),
        cmocka_unit_test(test_timeout_and_request_id_headers),
        cmocka_unit_test(test_timeout_header_after_waiting_for_a_connection),
        cmocka_unit_test(test_long_request_id_forwarded_whole),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_sweep_after_parent_cancel),
        cmocka_unit_test(test_ctx_done_before_submit),
        cmocka_unit_test(test_stats_and_connection_reuse),
        cmocka_unit_test(test_full_inbox_is_eagain),
        cmocka_unit_test(test_many_submitters),
        cmocka_unit_test(test_wakeups_never_lost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
