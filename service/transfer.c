/* transfer.c -- one backend call on a reusable curl easy handle (see transfer.h).
 *
 * DESIGN
 * A kept-alive connection must be clean before it carries a request: bytes
 * (or an EOF) already waiting on it were sent for no request of ours -- a
 * backend that answered twice -- and curl 7.88 would read them as the next
 * call's answer, whoever's call that is. on_prereq runs once curl has chosen
 * the connection and before anything is sent. It finds the socket by its
 * addresses in the worker's socket table (curl 7.88 cannot name it yet) and
 * asks what the worker's last poll saw there: an idle connection stays in the
 * worker's epoll set for input, so input on it is noted before any event of
 * that poll is acted on (socktab.h). Only when that is not known -- the
 * connection became idle after the last poll, or is not registered -- does
 * it peek at the socket itself (one recv per call saved on the rest). A dirty
 * reused connection aborts the attempt (curl then closes, not caches, that
 * connection) and fo_xfer_retry sets the same call up again on a fresh
 * connection within the same budget. Nothing was sent, so this is safe for
 * any method. Input that arrives after the last poll (a backend's second
 * answer written just then) is as unknowable as input that arrives just
 * after a peek: either way it comes before our request's answer. */
#include "transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "fdlimit.h"
#include "fmt.h"
#include "shape.h"
#include "token.h"
#include "version.h"

/* ---- curl callbacks (worker thread) ---- */

/* The largest body buffer sized ahead from a Content-Length. Past it the
 * buffer grows as bytes arrive, so a length claimed but not sent costs no
 * more than this. */
#define PRESIZE_MAX (16 * 1024)

/* With the first body bytes: one allocation of the whole body when its
 * Content-Length says how long it is (growing by doubling from 256 bytes
 * took five reallocs for a 4 KiB body and kept 8 KiB for it). Best effort:
 * a failure leaves the growth to fo_buf_append, which reports it. */
static void presize_body(struct fo_xfer *x, size_t first)
{
    curl_off_t cl = -1;
    if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK || cl <= 0)
        return;
    size_t want = (uint64_t)cl > PRESIZE_MAX ? PRESIZE_MAX : (size_t)cl;
    if (want > first)
        fo_buf_presize(&x->body, want);
}

/* Body bytes: capped per call (the buffer's max), per request (the fan-out's
 * max_bytes, shared by its calls) and charged to the process budget. */
static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct fo_xfer *x = arg;
    struct fo_xfer_group *g = x->group;
    size_t len = size * n;
    size_t cap = g->f->max_bytes;
    if (cap && len > cap - g->bytes) {
        x->too_large = true;
        return 0;
    }
    if (x->body.len == 0)
        presize_body(x, len);
    if (fo_buf_append(&x->body, data, len) < 0) {
        x->too_large = true;
        return 0; /* Abort the transfer: CURLE_WRITE_ERROR. */
    }
    g->bytes += len;
    fo_budget_charge(x->env->buffered, len);
    return len;
}

/* Response head lines, counted against FO_MAX_HEAD_BYTES: curl 7.88 caps one
 * line at 100 KiB (failing with a generic error, see fo_xfer_classify) but
 * not the whole head. Past the cap the transfer is aborted. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct fo_xfer *x = arg;
    (void)data;
    x->head_bytes += size * n;
    if (x->head_bytes > FO_MAX_HEAD_BYTES) {
        x->too_large = true;
        return 0;
    }
    return size * n;
}

/* Curl's sockets are opened and closed here so that the worker's table
 * knows them (see socktab.h), and none is opened past the process's share
 * of descriptors for backends (fdlimit.h). */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct fo_xfer *x = arg;
    (void)purpose;
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s == CURL_SOCKET_BAD) {
        x->no_fds = errno == EMFILE || errno == ENFILE;
        return CURL_SOCKET_BAD;
    }
    if (fo_fd_over_share(s, FO_FD_BACKEND)) {
        close(s);
        x->no_fds = true;
        return CURL_SOCKET_BAD;
    }
    if (fo_socktab_add(x->env->socks, s, &a->addr, a->addrlen) < 0) {
        close(s);
        return CURL_SOCKET_BAD;
    }
    return s;
}

static int on_close(void *arg, curl_socket_t s)
{
    const struct fo_xfer_env *env = arg;
    fo_socktab_remove(env->socks, s);
    return close(s);
}

/* What is left of the transfer's budget, and never more than the context's. */
static int64_t time_left_ms(const struct fo_xfer *x)
{
    int64_t now_us = fo_clock_us();
    int64_t left = x->budget_ms - (now_us - x->start_us) / 1000;
    int64_t ctx_left = fo_ctx_remaining_ms(x->group->f->ctx, now_us / 1000);
    return ctx_left < left ? ctx_left : left;
}

/* True when the connection curl chose (named by its addresses) has input
 * waiting: data, EOF or an error. Nothing was asked on it yet, so none of it
 * can be an answer of ours. */
static bool conn_dirty(const struct fo_xfer *x, const char *ip, const char *lip, int rport,
                       int lport)
{
    int s = fo_socktab_find(x->env->socks, ip, rport, lip, lport);
    if (s < 0)
        return false;
    int seen = fo_socktab_idle_input(x->env->socks, s); /* What the worker's poll saw. */
    if (seen >= 0)
        return seen;
    char c;
    ssize_t r = recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Just before the request is sent (after a wait for a connection, perhaps):
 * refuse a connection with unread input (see DESIGN), then rewrite the
 * X-Timeout-Ms line with what is left now. */
static int on_prereq(void *arg, char *ip, char *lip, int rport, int lport)
{
    struct fo_xfer *x = arg;
    long fresh = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &fresh);
    /* A TLS connection just made has the server's post-handshake records
     * (session tickets) waiting under TLS, and no stale answer: not dirty. */
    bool look = !(x->https && fresh > 0);
    if (look && conn_dirty(x, ip, lip, rport, lport)) {
        x->dirty = true;
        x->dirty_fresh = fresh > 0;
        return CURL_PREREQFUNC_ABORT; /* Closes the connection (a premature end). */
    }
    int64_t left = time_left_ms(x);
    if (left < 1)
        left = 1;
    fo_hdrs_set_timeout(&x->hdrs, left);
    return CURL_PREREQFUNC_OK;
}

/* ---- life of a transfer ---- */

struct fo_xfer *fo_xfer_new(struct fo_xfer_env *env)
{
    struct fo_xfer *x = fo_xcalloc(sizeof *x);
    CURL *e = curl_easy_init();
    if (!e)
        fo_panic("out of memory (curl_easy_init)");
    x->easy = e;
    x->env = env;
    fo_tls_call_init(&x->tls, e);
    fo_buf_init(&x->body, env->max_response_bytes);
    fo_hdrs_init(&x->hdrs);
    /* Options that never change between calls. */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, env); /* Not x: a connection outlives it. */
    /* Every handle, in flight or kept for reuse, holds one receive buffer:
     * 4 KiB instead of curl's 16 KiB took private memory at 64 clients x 3
     * backends from 11.6 to 9.1 MB with the same throughput; a bigger body
     * simply takes more reads. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)env->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* Backends are called directly: no proxy from the environment (which
     * would also cost a getenv() scan per call). */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    return x;
}

void fo_xfer_free(struct fo_xfer *x)
{
    if (!x)
        return;
    free(x->url);
    fo_hdrs_free(&x->hdrs);
    curl_easy_cleanup(x->easy);
    curl_url_cleanup(x->uh);
    free(x->uh_url);
    fo_tls_call_clear(&x->tls);
    fo_buf_free(&x->body);
    free(x);
}

/* The largest body buffer an idle transfer keeps for the next call. */
#define KEEP_BODY_BYTES (64 * 1024)

void fo_xfer_reset(struct fo_xfer *x)
{
    if (x->group && x->body.len) { /* A body that was not handed to its call. */
        x->group->bytes -= x->body.len;
        fo_budget_release(x->env->buffered, x->body.len);
    }
    fo_hdrs_clear(&x->hdrs);
    free(x->url);
    x->url = NULL;
    x->attempt = 0;
    x->run = NULL;
    fo_tls_call_clear(&x->tls);
    x->call = NULL;
    x->group = NULL;
    x->too_large = false;
    if (x->body.cap > KEEP_BODY_BYTES)
        fo_buf_free(&x->body);
    else
        fo_buf_reset(&x->body);
    x->prev = x->next = NULL;
}

/* The URL for curl: its parsed form (CURLOPT_CURLU) is kept with the
 * transfer and parsed again only when a call's URL differs from the last
 * one's (the pool gives a call an idle transfer that last ran the same URL
 * when it has one: fo_xfer_ran). Curl's own parse of CURLOPT_URL, and its
 * rebuild of the string from the parts, cost some 13k instructions per call.
 * The string is set as well: curl connects by the handle and keeps the string
 * as the transfer's URL, so both must say the same, and do. A URL the parser
 * refuses goes to curl as a string alone, to fail there as it always did. */
static void set_url(struct fo_xfer *x, const char *url)
{
    if (!x->uh_url || strcmp(x->uh_url, url) != 0) {
        free(x->uh_url);
        x->uh_url = NULL;
        if (!x->uh && !(x->uh = curl_url()))
            fo_panic("out of memory (curl_url)");
        /* The flags curl 7.88 parses CURLOPT_URL with. */
        if (curl_url_set(x->uh, CURLUPART_URL, url,
                         CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK)
            x->uh_url = fo_xstrdup(url);
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_CURLU, x->uh_url ? x->uh : NULL);
}

bool fo_xfer_ran(const struct fo_xfer *x, const char *url)
{
    return x->uh_url && strcmp(x->uh_url, url) == 0;
}

int fo_xfer_prepare(struct fo_xfer *x, struct fo_xfer_group *group, struct fo_call *call,
                    int64_t budget_ms)
{
    CURL *e = x->easy;
    x->call = call;
    x->group = group;
    x->start_us = fo_clock_us();
    x->budget_ms = budget_ms;
    x->head_bytes = 0;
    x->dirty = false;
    x->dirty_fresh = false;
    x->retried = false;
    x->no_fds = false;
    if (fo_hdrs_build(&x->hdrs, call, group->f->request_id, budget_ms, x->attempt) < 0)
        return -ENOMEM;
    const char *attempt_url = x->url ? x->url : call->url; /* A host of its own (hosts). */
    x->https = fo_tls_back_is_https(attempt_url);
    const char *url;
    if (fo_tls_back_apply(e, call->tls, attempt_url, &x->tls, &url) < 0)
        return -ENOMEM;

    set_url(x, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, fo_hdrs_list(&x->hdrs));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 0L); /* A retry before left it set. */
    const char *m = call->method;
    if (call->body || fo_method_has_body(m)) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 0L); /* A HEAD before left it set. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body ? call->body : "");
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m && strcmp(m, "POST") != 0 ? m : NULL);
    } else if (m && strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m && strcmp(m, "GET") != 0 ? m : NULL);
    }
    return 0;
}

bool fo_xfer_retry(struct fo_xfer *x, CURLcode *res)
{
    x->dirty = false;
    if (x->dirty_fresh || x->retried)
        return false;
    int64_t left = time_left_ms(x);
    if (left < 1) {
        *res = CURLE_OPERATION_TIMEDOUT;
        return false;
    }
    x->retried = true;
    curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    return true;
}

int64_t fo_xfer_admit(struct fo_xfer *x)
{
    int64_t left = time_left_ms(x);
    long t = left < 1 ? 1 : (long)left;
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, t);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, t);
    return left;
}

int64_t fo_xfer_retry_after_ms(struct fo_xfer *x)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return -1;
    const char *v = h->value;
    if (*v >= '0' && *v <= '9') {
        char *end;
        long long sec = strtoll(v, &end, 10);
        if (*end != '\0' || sec < 0)
            return -1;
        return sec > FO_MAX_TIMEOUT_MS / 1000 ? FO_MAX_TIMEOUT_MS : sec * 1000;
    }
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    time_t now = time(NULL);
    if (when <= now)
        return 0;
    long long d = (long long)(when - now);
    return d > FO_MAX_TIMEOUT_MS / 1000 ? FO_MAX_TIMEOUT_MS : d * 1000;
}

long fo_xfer_connects(const struct fo_xfer *x)
{
    long connects = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
    return connects;
}

long fo_xfer_tls_handshakes(const struct fo_xfer *x, long connects)
{
    return x->https ? connects : 0;
}

void fo_xfer_classify(struct fo_xfer *x, CURLcode res)
{
    struct fo_call *call = x->call;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    call->status = (int)status;
    call->ms = (double)(fo_clock_us() - x->start_us) / 1000.0;
    call->no_fds = x->no_fds;

    switch (res) {
    case CURLE_OK: /* An answer arrived; whether it is good is the pipeline's to say. */
        call->outcome = FO_OK;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        call->outcome = FO_ERR_TIMEOUT;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        call->outcome = FO_ERR_TOO_LARGE;
        break;
    case CURLE_WRITE_ERROR:
        call->outcome = x->too_large ? FO_ERR_TOO_LARGE : FO_ERR_CONNECT;
        break;
    case CURLE_OUT_OF_MEMORY:
        /* What curl 7.88 returns for a response header line over its 100 KiB
         * buffer (before on_header sees the line); fanout aborts on its own
         * allocation failures, so a head too large is what this means here. */
        call->outcome = FO_ERR_TOO_LARGE;
        break;
    default:
        call->outcome = FO_ERR_CONNECT;
        break;
    }
    if (call->outcome != FO_OK) {
        call->json.p = NULL;
        call->json.len = 0;
        return;
    }
    /* Hand the body over, still charged. */
    call->budget = x->env->buffered;
    call->resp = fo_buf_release(&x->body, &call->resp_len);
    if (!call->resp)
        fo_panic("out of memory");
    const char *type = NULL;
    if (call->shape && call->shape->encoding == FO_ENC_RAW &&
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type)
        call->content_type = fo_xstrdup(type);
}
