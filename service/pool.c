/* pool.c -- the worker pool: W threads, each an epoll loop around one curl multi.
 *
 * DESIGN
 * Each worker owns everything it touches: an epoll set, a curl multi handle
 * driven with curl_multi_socket_action, its running jobs (one job per
 * submitted fan-out) and free lists of transfers (whose easy handles are
 * reused, so per-call setup is a handful of setopts) and jobs. The only
 * shared state is the worker's inbox channel, an eventfd that wakes it, and
 * relaxed atomic counters. Nothing in a worker takes a lock apart from the
 * inbox's, and no lock is held while calling out (curl, 'done').
 *
 * The epoll set holds three kinds of descriptor: the wake eventfd and the
 * client sockets of running jobs (EPOLLRDHUP only: a hang-up, not pipelined
 * data, is what we look for), both as pointers to a 'watch' header, and the
 * sockets curl asks us to watch, as the fd itself tagged in the low bit.
 * Curl sockets carry no pointer because curl may close one while we are
 * still walking a batch of events that names it; a stale fd is harmless to
 * curl_multi_socket_action, a stale pointer is not. Jobs are never freed
 * while the worker runs (they are recycled), and a recycled job is marked so
 * that a stale client event for it is ignored.
 *
 * A job ends when its last transfer ends. Transfers end by curl (done,
 * failed, timed out: every transfer carries a curl timeout no later than the
 * fan-out's deadline, so deadlines need no timer of ours) or by an abort
 * (client hang-up, failed required sibling, sweep after a parent context was
 * cancelled), which removes the easy handle from the multi and so closes its
 * connection. Before calling 'done' the worker drops the client socket from
 * its epoll set, since 'done' resumes the client connection and the HTTP
 * front may close that socket at any time after.
 *
 * A kept-alive connection must be clean before it carries a request: bytes
 * (or an EOF) already waiting on it were sent for no request of ours -- a
 * backend that answered twice -- and curl 7.88 would read them as the next
 * call's answer, whoever's call that is. on_prereq runs once curl has chosen
 * the connection and before anything is sent; it peeks at the socket, and a
 * dirty reused connection aborts the attempt (curl then closes, not caches,
 * that connection) and drain_done starts the same call again on a fresh
 * connection within the same budget. Nothing was sent, so this is safe for
 * any method. */
#include "pool.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "fdlimit.h"
#include "socktab.h"
#include "version.h"

enum watch_kind { WATCH_WAKE, WATCH_CLIENT };

/* epoll_data.u64 of a curl socket: (fd << 1) | SOCK_TAG. Pointers are even. */
#define SOCK_TAG 1u

/* curl_multi_assign marker: "this socket is in the epoll set already". */
static char sock_known;

/* First member of everything an epoll event can point at. */
struct watch {
    enum watch_kind kind;
    int fd;
};

struct job;
struct fo_worker;

/* One running backend call. Recycled through the worker's free list. */
struct xfer {
    CURL *easy;                /* Reused between calls (keeps its buffers). */
    struct fo_call *call;      /* Borrowed from the fan-out. */
    struct job *job;           /* Owning job. */
    struct fo_worker *worker;  /* The worker whose curl handle 'easy' serves. */
    struct xfer *prev, *next;  /* Job's running list, or the free list (next only). */
    struct curl_slist *hdrs;   /* Request headers, from curl_slist_append. */
    struct fo_buf body;        /* Response body, capped at max_response_bytes. */
    int64_t start_us;          /* When the worker started it. */
    int64_t budget_ms;         /* Its curl timeout, from start_us. */
    bool too_large;            /* A write or header callback refused more bytes. */
    size_t head_bytes;         /* Response head bytes so far (all heads, 1xx included). */
    bool dirty;                /* on_prereq found unread input on the chosen connection. */
    bool dirty_fresh;          /* ... and that connection was a new one (no retry helps). */
    bool retried;              /* Already restarted once on a fresh connection. */
    bool no_fds;               /* on_open: the process is out of descriptors. */
};

/* One submitted fan-out while a worker runs it. */
struct job {
    struct watch w;            /* WATCH_CLIENT on f->client_fd. */
    struct fo_fanout *f;       /* Borrowed until 'done'. */
    struct xfer *xfers;        /* Running transfers. */
    size_t pending;            /* Calls not ended yet. */
    struct job *prev, *next;   /* Worker's running list, or the free list. */
    bool watching;             /* w.fd is in the epoll set. */
    struct fo_worker *worker;  /* The worker running it. */
    size_t bytes;              /* Response bytes its calls hold (against f->max_bytes). */
    int64_t deadline_us;       /* The context's deadline, fo_clock_us() time. */
    size_t heap_idx;           /* Position in the worker's deadline heap, or NO_HEAP. */
};

#define NO_HEAP ((size_t)-1)

struct fo_worker {
    struct fo_pool *pool;      /* Back pointer, for options. */
    pthread_t thread;
    int epfd;                  /* epoll set: wake fd, curl sockets, client sockets. */
    struct watch wake;         /* WATCH_WAKE on an eventfd. */
    CURLM *multi;              /* All transfers of this worker. */
    struct fo_chan *inbox;     /* Submitted fan-outs (struct fo_fanout *). */
    struct fo_socktab *socks;  /* Every socket this worker's curl opened (on_open). */
    int64_t timer_due_us;      /* When curl wants CURL_SOCKET_TIMEOUT (fo_clock_us), -1 = never. */
    struct job *running;       /* Jobs in flight (doubly linked). */
    struct job **heap;         /* Running jobs with a deadline, min-heap on deadline_us. */
    size_t nheap, capheap;
    struct job *free_jobs;     /* Recycled jobs (via next). */
    struct xfer *free_xfers;   /* Recycled transfers with their easy handles (via next). */
    size_t nfree_xfers;        /* Length of free_xfers. */
    bool pwait2;               /* epoll_pwait2 is available (until ENOSYS says not). */
    atomic_bool stop;          /* Set by fo_pool_destroy. */
    atomic_bool sweep;         /* Set by fo_pool_sweep. */
    /* Statistics: written by the worker, read by anyone (relaxed). */
    atomic_uint_fast64_t n_fanouts, n_calls, n_connects, n_running;
    atomic_uint_fast64_t n_dirty;  /* Connections discarded for unread input (on_prereq). */
};

struct fo_pool {
    struct fo_pool_opts opts;  /* Copied at create. */
    struct fo_worker *workers; /* opts.workers of them, from calloc(). */
    unsigned nstarted;         /* Threads started (for unwinding). */
    atomic_uint next;          /* Round-robin cursor. */
    atomic_bool closed;        /* No more submits. */
};

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p) {
        fprintf(stderr, "fanout: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void fo_call_drop_body(struct fo_call *call)
{
    if (call->resp)
        fo_budget_release(call->budget, call->resp_len);
    free(call->resp);
    call->resp = NULL;
    call->resp_len = 0;
    call->json.p = NULL;
    call->json.len = 0;
}

void fo_call_clear(struct fo_call *call)
{
    fo_call_drop_body(call);
    call->outcome = FO_OK;
    call->status = 0;
    call->no_fds = false;
    call->ms = 0;
}

/* ---- curl callbacks (worker thread) ---- */

/* Body bytes: capped per call (the buffer's max), per request (the fan-out's
 * max_bytes, shared by its calls) and charged to the process budget. */
static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    struct job *j = x->job;
    size_t len = size * n;
    size_t cap = j->f->max_bytes;
    if ((cap && len > cap - j->bytes) || fo_buf_append(&x->body, data, len) < 0) {
        x->too_large = true;
        return 0; /* Abort the transfer: CURLE_WRITE_ERROR. */
    }
    j->bytes += len;
    fo_budget_charge(j->worker->pool->opts.buffered, len);
    return len;
}

#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer treats an fd number as a shared object: the late
 * EPOLL_CTL_DEL below (see on_socket) names a number that another worker's
 * curl may already have reused for its own socket, and is reported as a race
 * with that socket(). It is not one: the call acts on this worker's epoll
 * set only, where that number is no longer registered, and fails with
 * ENOENT. on_socket touches nothing else shared. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:on_socket\n";
}
#endif

static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct fo_worker *w = arg;
    (void)easy;
    /* When a transfer is removed while it connects, curl 7.88 closes the
     * socket first and reports CURL_POLL_REMOVE for it later, keeping the
     * marker. The late EPOLL_CTL_DEL cannot hit anything: the kernel dropped
     * the closed socket from the set, and only this thread adds to it. A new
     * socket curl opens with the same number inherits the stale marker, so a
     * MOD that finds nothing becomes an ADD. */
    if (what == CURL_POLL_REMOVE) {
        if (sockp) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
            curl_multi_assign(w->multi, s, NULL);
        }
        return 0;
    }
    struct epoll_event ev = {.events = 0};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    ev.data.u64 = ((uint64_t)(unsigned)s << 1) | SOCK_TAG;
    int op = sockp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (!sockp)
        curl_multi_assign(w->multi, s, &sock_known);
    if (epoll_ctl(w->epfd, op, s, &ev) < 0) {
        if (errno == EEXIST)
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev);
        else if (errno == ENOENT)
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct fo_worker *w = arg;
    (void)multi;
    w->timer_due_us = timeout_ms < 0 ? -1 : fo_clock_us() + (int64_t)timeout_ms * 1000;
    return 0;
}

/* Response head lines, counted against FO_MAX_HEAD_BYTES: curl 7.88 caps one
 * line at 100 KiB (failing with a generic error, see xfer_finish) but not the
 * whole head. Past the cap the transfer is aborted (CURLE_WRITE_ERROR). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    (void)data;
    x->head_bytes += size * n;
    if (x->head_bytes > FO_MAX_HEAD_BYTES) {
        x->too_large = true;
        return 0;
    }
    return size * n;
}

/* Curl's sockets are opened and closed here so that the worker's table
 * knows them (see socktab.h). */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = arg;
    struct fo_worker *w = x->worker;
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
    if (fo_socktab_add(w->socks, s, &a->addr, a->addrlen) < 0) {
        close(s);
        return CURL_SOCKET_BAD;
    }
    return s;
}

static int on_close(void *arg, curl_socket_t s)
{
    struct fo_worker *w = arg;
    fo_socktab_remove(w->socks, s);
    return close(s);
}

/* What is left of the transfer's budget, and never more than the context's. */
static int64_t xfer_time_left_ms(const struct xfer *x)
{
    int64_t now_us = fo_clock_us();
    int64_t left = x->budget_ms - (now_us - x->start_us) / 1000;
    int64_t ctx_left = fo_ctx_remaining_ms(x->job->f->ctx, now_us / 1000);
    return ctx_left < left ? ctx_left : left;
}

/* True when the connection curl chose (named by its addresses) has input
 * waiting: data, EOF or an error. Nothing was asked on it yet, so none of it
 * can be an answer of ours. */
static bool conn_dirty(struct xfer *x, const char *ip, const char *lip, int rport, int lport)
{
    int s = fo_socktab_find(x->worker->socks, ip, rport, lip, lport);
    if (s < 0)
        return false;
    char c;
    ssize_t r = recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Just before the request is sent (after a wait for a connection, perhaps):
 * refuse a connection with unread input (see DESIGN), then rewrite the
 * X-Timeout-Ms line, the slist's first, with what is left now. The value
 * only shrinks, so it fits the line's original allocation. */
static int on_prereq(void *arg, char *ip, char *lip, int rport, int lport)
{
    struct xfer *x = arg;
    if (conn_dirty(x, ip, lip, rport, lport)) {
        long fresh = 0;
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &fresh);
        x->dirty = true;
        x->dirty_fresh = fresh > 0;
        return CURL_PREREQFUNC_ABORT; /* Closes the connection (a premature end). */
    }
    int64_t left = xfer_time_left_ms(x);
    if (left < 1)
        left = 1;
    char *line = x->hdrs->data;
    snprintf(line, strlen(line) + 1, "X-Timeout-Ms: %lld", (long long)left);
    return CURL_PREREQFUNC_OK;
}

/* ---- transfers and jobs (worker thread) ---- */

static struct xfer *xfer_get(struct fo_worker *w)
{
    struct xfer *x = w->free_xfers;
    if (x) {
        w->free_xfers = x->next;
        w->nfree_xfers--;
        x->next = NULL;
        return x;
    }
    x = xmalloc(sizeof *x);
    x->worker = w;
    x->easy = curl_easy_init();
    if (!x->easy) {
        fprintf(stderr, "fanout: curl_easy_init failed\n");
        abort();
    }
    fo_buf_init(&x->body, w->pool->opts.max_response_bytes);
    /* Options that never change between calls. */
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(x->easy, CURLOPT_PREREQDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, w);
    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "fanout/" FO_VERSION);
    /* Every handle, in flight or kept for reuse, holds one receive buffer:
     * 4 KiB instead of curl's 16 KiB took private memory at 64 clients x 3
     * backends from 11.6 to 9.1 MB with the same throughput; a bigger body
     * simply takes more reads. */
    curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)w->pool->opts.max_response_bytes);
    curl_easy_setopt(x->easy, CURLOPT_TCP_NODELAY, 1L);
    /* Backends are called directly: no proxy from the environment (which
     * would also cost a getenv() scan per call). */
    curl_easy_setopt(x->easy, CURLOPT_PROXY, "");
    return x;
}

/* Idle transfers (with their easy handles and buffers) kept per worker, and
 * the largest body buffer an idle transfer keeps. */
#define KEEP_BODY_BYTES (64 * 1024)
/* Idle transfers (with their easy handles and buffers) kept per worker. */
#define FREE_XFERS_MAX 256

static void xfer_put(struct fo_worker *w, struct xfer *x)
{
    if (x->job && x->body.len) { /* A body that was not handed to its call. */
        x->job->bytes -= x->body.len;
        fo_budget_release(w->pool->opts.buffered, x->body.len);
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    x->call = NULL;
    x->job = NULL;
    x->too_large = false;
    if (x->body.cap > KEEP_BODY_BYTES) /* Keep small buffers for reuse, give big ones back. */
        fo_buf_free(&x->body);
    else
        fo_buf_reset(&x->body);
    x->prev = NULL;
    if (w->nfree_xfers >= FREE_XFERS_MAX) { /* A burst is over: give memory back. */
        curl_easy_cleanup(x->easy);
        fo_buf_free(&x->body);
        free(x);
        return;
    }
    w->nfree_xfers++;
    x->next = w->free_xfers;
    w->free_xfers = x;
}

static struct job *job_get(struct fo_worker *w)
{
    struct job *j = w->free_jobs;
    if (j) {
        w->free_jobs = j->next;
        memset(j, 0, sizeof *j);
        return j;
    }
    return xmalloc(sizeof *j);
}

/* ---- deadline heap (worker thread) ----
 * Curl's own timers work in whole milliseconds rounded up, so a call cut by
 * its curl timeout ends up to a millisecond after the request deadline. The
 * heap lets the worker wake at the deadline itself (epoll_pwait2 takes a
 * timespec) and abort what is still running. */

static void heap_set(struct fo_worker *w, size_t i, struct job *j)
{
    w->heap[i] = j;
    j->heap_idx = i;
}

static void heap_up(struct fo_worker *w, size_t i)
{
    struct job *j = w->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p]->deadline_us <= j->deadline_us)
            break;
        heap_set(w, i, w->heap[p]);
        i = p;
    }
    heap_set(w, i, j);
}

static void heap_down(struct fo_worker *w, size_t i)
{
    struct job *j = w->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && w->heap[c + 1]->deadline_us < w->heap[c]->deadline_us)
            c++;
        if (w->heap[c]->deadline_us >= j->deadline_us)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, j);
}

static void heap_push(struct fo_worker *w, struct job *j)
{
    if (w->nheap == w->capheap) {
        size_t cap = w->capheap ? w->capheap * 2 : 64;
        struct job **h = realloc(w->heap, cap * sizeof *h);
        if (!h) {
            fprintf(stderr, "fanout: out of memory\n");
            abort();
        }
        w->heap = h;
        w->capheap = cap;
    }
    w->heap[w->nheap] = j;
    j->heap_idx = w->nheap++;
    heap_up(w, j->heap_idx);
}

static void heap_remove(struct fo_worker *w, struct job *j)
{
    size_t i = j->heap_idx;
    if (i == NO_HEAP)
        return;
    j->heap_idx = NO_HEAP;
    struct job *last = w->heap[--w->nheap];
    if (i == w->nheap)
        return;
    heap_set(w, i, last);
    heap_up(w, i);
    heap_down(w, last->heap_idx);
}

/* Drop one count from the job; the last completes it: the client socket
 * leaves the epoll set, the job is recycled and 'done' is called. The job
 * must not be touched after a release that may have been the last. */
static void job_release(struct fo_worker *w, struct job *j)
{
    if (--j->pending > 0)
        return;
    struct fo_fanout *f = j->f;
    heap_remove(w, j);
    if (j->watching)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, j->w.fd, NULL);
    j->watching = false;
    if (j->prev)
        j->prev->next = j->next;
    else
        w->running = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->next = w->free_jobs;
    w->free_jobs = j;
    atomic_fetch_add_explicit(&w->n_fanouts, 1, memory_order_relaxed);
    f->done(f);
}

/* Hand an ended call to the fan-in channel and release its count. */
static void call_end(struct fo_worker *w, struct job *j, struct fo_call *call)
{
    int rc = fo_chan_send(j->f->fanin, call, 0);
    if (rc < 0) { /* Capacity >= ncalls is the submitter's promise. */
        fprintf(stderr, "fanout: fan-in channel refused a result (%d)\n", rc);
        abort();
    }
    atomic_fetch_add_explicit(&w->n_calls, 1, memory_order_relaxed);
    job_release(w, j);
}

/* End a call that never started or was aborted, without a response. */
static void call_fail(struct fo_worker *w, struct job *j, struct fo_call *call,
                      enum fo_outcome outcome, double ms)
{
    call->outcome = outcome;
    call->status = 0;
    call->no_fds = false;
    call->ms = ms;
    call_end(w, j, call);
}

static void abort_job(struct fo_worker *w, struct job *j, enum fo_outcome outcome);

/* Add the connections this transfer opened to the worker's count. */
static void count_connects(struct fo_worker *w, struct xfer *x)
{
    long connects = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
    if (connects > 0)
        atomic_fetch_add_explicit(&w->n_connects, (uint64_t)connects, memory_order_relaxed);
}

/* Classify a finished transfer and fill in its call's result. */
static void xfer_finish(struct fo_worker *w, struct xfer *x, CURLcode res)
{
    struct fo_call *call = x->call;
    struct job *j = x->job;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    count_connects(w, x);
    call->status = (int)status;
    call->ms = (double)(fo_clock_us() - x->start_us) / 1000.0;
    call->no_fds = x->no_fds;

    switch (res) {
    case CURLE_OK:
        if (status < 200 || status > 299) {
            call->outcome = FO_ERR_STATUS;
        } else if (fo_json_validate(x->body.data ? x->body.data : "", x->body.len,
                                    w->pool->opts.max_json_depth, &call->json) < 0) {
            call->outcome = FO_ERR_INVALID_JSON;
        } else {
            call->outcome = FO_OK;
        }
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
    if (call->outcome == FO_OK) {
        /* Hand the body over, still charged; the span stays valid since release
         * keeps the pointer. */
        call->budget = w->pool->opts.buffered;
        call->resp = fo_buf_release(&x->body, &call->resp_len);
        if (!call->resp) {
            fprintf(stderr, "fanout: out of memory\n");
            abort();
        }
    } else {
        call->json.p = NULL;
        call->json.len = 0;
    }

    /* Unlink from the job, recycle, then report. */
    if (x->prev)
        x->prev->next = x->next;
    else
        j->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    bool fail_fast = call->outcome != FO_OK && call->required && j->xfers;
    xfer_put(w, x);
    if (!fail_fast) {
        call_end(w, j, call);
        return;
    }
    /* Siblings are still running, so this end cannot complete the job. */
    call_end(w, j, call);
    fo_ctx_cancel(j->f->ctx, -ECANCELED);
    abort_job(w, j, FO_ERR_CANCELLED);
}

/* Abort every running transfer of 'j' with 'outcome'. The list is detached
 * first: the last call_fail may complete (and recycle) the job. */
static void abort_job(struct fo_worker *w, struct job *j, enum fo_outcome outcome)
{
    struct xfer *list = j->xfers;
    j->xfers = NULL;
    while (list) {
        struct xfer *x = list;
        list = x->next;
        struct fo_call *call = x->call;
        double ms = (double)(fo_clock_us() - x->start_us) / 1000.0;
        count_connects(w, x);
        curl_multi_remove_handle(w->multi, x->easy);
        atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
        xfer_put(w, x);
        call_fail(w, j, call, outcome, ms);
    }
}

/* Outcome for calls cut short because the context is done. */
static enum fo_outcome ctx_outcome(int err)
{
    return err == -ETIMEDOUT ? FO_ERR_TIMEOUT : FO_ERR_CANCELLED;
}

/* True for a configured or client-given header line that would repeat one
 * fanout sets itself: X-Timeout-Ms and X-Request-Id always, Content-Type
 * when fanout sends a JSON body. Fanout's own value wins. Expect is never
 * sent: "100-continue" would hold every call with a body until curl gives up
 * waiting (1 s). */
static bool own_header(const char *line, bool body)
{
    size_t n = strcspn(line, ":");
    return (n == 12 && strncasecmp(line, "X-Timeout-Ms", n) == 0) ||
           (n == 12 && strncasecmp(line, "X-Request-Id", n) == 0) ||
           (n == 6 && strncasecmp(line, "Expect", n) == 0) ||
           (body && n == 12 && strncasecmp(line, "Content-Type", n) == 0);
}

/* Append one header line; on failure the list is freed and *h is NULL. */
static bool add_header(struct curl_slist **h, const char *line)
{
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n) {
        curl_slist_free_all(*h);
        *h = NULL;
        return false;
    }
    *h = n;
    return true;
}

/* Append a configured or client-given "Name: value" line. Curl reads
 * "Name:" with nothing after it as "remove my own Name header", so an empty
 * value goes as "Name;", curl's syntax for a header sent empty. */
static bool add_call_header(struct curl_slist **h, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon[1 + strspn(colon + 1, " \t")] != '\0')
        return add_header(h, line);
    char *empty;
    if (asprintf(&empty, "%.*s;", (int)(colon - line), line) < 0) {
        curl_slist_free_all(*h);
        *h = NULL;
        return false;
    }
    bool ok = add_header(h, empty);
    free(empty);
    return ok;
}

/* Set the per-call options and add the transfer to the multi. */
static int xfer_start(struct fo_worker *w, struct job *j, struct fo_call *call, int64_t budget_ms)
{
    struct xfer *x = xfer_get(w);
    CURL *e = x->easy;
    x->call = call;
    x->job = j;
    x->start_us = fo_clock_us();
    x->budget_ms = budget_ms;
    x->head_bytes = 0;
    x->dirty = false;
    x->dirty_fresh = false;
    x->retried = false;
    x->no_fds = false;

    char tmo[40];
    snprintf(tmo, sizeof tmo, "X-Timeout-Ms: %lld", (long long)budget_ms);
    struct curl_slist *h = NULL;
    bool ok = add_header(&h, tmo);
    if (ok && j->f->request_id) {
        char *rid;
        if (asprintf(&rid, "X-Request-Id: %s", j->f->request_id) < 0) {
            ok = false;
        } else {
            ok = add_header(&h, rid);
            free(rid);
        }
    }
    for (size_t i = 0; ok && i < call->nheaders; i++)
        if (!own_header(call->headers[i], call->body != NULL))
            ok = add_call_header(&h, call->headers[i]);
    ok = ok && add_header(&h, "Accept: application/json");
    if (ok && call->body)
        ok = add_header(&h, "Content-Type: application/json") &&
             add_header(&h, "Expect:"); /* No 100-continue round trip. */
    if (!ok) {
        curl_slist_free_all(h);
        xfer_put(w, x);
        return -ENOMEM;
    }
    x->hdrs = h;

    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 0L); /* A retry before left it set. */
    const char *m = call->method;
    if (call->body) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 0L); /* A HEAD before left it set. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m && strcmp(m, "POST") != 0 ? m : NULL);
    } else if (m && strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m && strcmp(m, "GET") != 0 ? m : NULL);
    }

    CURLMcode mc = curl_multi_add_handle(w->multi, e);
    if (mc != CURLM_OK) {
        xfer_put(w, x);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&w->n_running, 1, memory_order_relaxed);
    x->prev = NULL;
    x->next = j->xfers;
    if (j->xfers)
        j->xfers->prev = x;
    j->xfers = x;
    return 0;
}

/* Take one fan-out from the inbox and start all its calls. */
static void job_start(struct fo_worker *w, struct fo_fanout *f)
{
    struct job *j = job_get(w);
    j->w.kind = WATCH_CLIENT;
    j->w.fd = f->client_fd;
    j->f = f;
    j->worker = w;
    j->heap_idx = NO_HEAP;
    int64_t deadline_ms = fo_ctx_deadline(f->ctx);
    if (deadline_ms != FO_NO_DEADLINE) {
        j->deadline_us = deadline_ms * 1000;
        heap_push(w, j);
    }
    /* One extra count keeps the job alive until every call is started. */
    j->pending = f->ncalls + 1;
    j->next = w->running;
    if (w->running)
        w->running->prev = j;
    w->running = j;

    /* No event bits asked for: epoll always reports EPOLLHUP and EPOLLERR,
     * which a reset brings; a FIN alone (the client half-closed after its
     * request) does not, and the request goes on. */
    if (f->client_fd >= 0) {
        struct epoll_event ev = {.events = 0, .data.ptr = &j->w};
        j->watching = epoll_ctl(w->epfd, EPOLL_CTL_ADD, f->client_fd, &ev) == 0;
    }

    int64_t now = fo_clock_ms();
    for (size_t i = 0; i < f->ncalls; i++) {
        struct fo_call *call = &f->calls[i];
        call->resp = NULL;
        call->resp_len = 0;
        call->json.p = NULL;
        call->json.len = 0;
        int err = fo_ctx_err(f->ctx);
        if (err < 0) {
            call_fail(w, j, call, ctx_outcome(err), 0);
            continue;
        }
        int64_t budget = fo_ctx_remaining_ms(f->ctx, now);
        if (call->timeout_ms > 0 && call->timeout_ms < budget)
            budget = call->timeout_ms;
        if (budget > FO_MAX_TIMEOUT_MS)
            budget = FO_MAX_TIMEOUT_MS;
        if (budget <= 0) {
            call_fail(w, j, call, FO_ERR_TIMEOUT, 0);
            continue;
        }
        if (xfer_start(w, j, call, budget) < 0)
            call_fail(w, j, call, FO_ERR_CONNECT, 0);
    }
    /* Release the extra count; this ends the job if every call already ended. */
    job_release(w, j);
}

/* Abort the running jobs whose context is done (after fo_pool_sweep). */
static void sweep_jobs(struct fo_worker *w)
{
    struct job *j = w->running;
    while (j) {
        /* Aborting may recycle j: read the successor first. A job whose
         * calls are all being aborted is only ever completed by abort_job. */
        struct job *next = j->next;
        int err = fo_ctx_err(j->f->ctx);
        if (err < 0)
            abort_job(w, j, ctx_outcome(err));
        j = next;
    }
}

/* After on_prereq refused a dirty connection (curl closed it): start the
 * same call again on a fresh connection, with what is left of its budget.
 * Returns true when it runs again; false leaves it to xfer_finish with *res
 * (a connection that was new and dirty already, a second dirty one, or no
 * time left). */
static bool xfer_retry(struct fo_worker *w, struct xfer *x, CURLcode *res)
{
    atomic_fetch_add_explicit(&w->n_dirty, 1, memory_order_relaxed);
    x->dirty = false;
    if (x->dirty_fresh || x->retried)
        return false;
    int64_t left = xfer_time_left_ms(x);
    if (left < 1) {
        *res = CURLE_OPERATION_TIMEDOUT;
        return false;
    }
    count_connects(w, x); /* Curl resets the count when the transfer restarts. */
    x->retried = true;
    curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    return curl_multi_add_handle(w->multi, x->easy) == CURLM_OK;
}

/* Collect the transfers curl has finished. */
static void drain_done(struct fo_worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(w->multi, e);
        if (x->dirty && xfer_retry(w, x, &res))
            continue;
        atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
        xfer_finish(w, x, res);
    }
}

static void drain_inbox(struct fo_worker *w)
{
    uint64_t v;
    while (read(w->wake.fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    void *item;
    while (fo_chan_recv(w->inbox, &item, 0) == 0)
        job_start(w, item);
}

/* epoll_pwait2 where the kernel has it (5.11+); else epoll_wait with the
 * timeout rounded up to whole milliseconds (never early). */
static int wait_events(struct fo_worker *w, struct epoll_event *ev, int max,
                       const struct timespec *ts)
{
    if (w->pwait2) {
        int n = epoll_pwait2(w->epfd, ev, max, ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        w->pwait2 = false;
    }
    int ms = -1;
    if (ts)
        ms = (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
    return epoll_wait(w->epfd, ev, max, ms);
}

static void *worker_main(void *arg)
{
    struct fo_worker *w = arg;
    struct epoll_event events[64];
    int running;

    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        /* Microsecond timeouts (epoll_pwait2): deadlines end within a
         * fraction of a millisecond, not up to one late. */
        struct timespec ts, *tsp = NULL;
        int64_t due = w->timer_due_us;
        if (w->nheap && (due < 0 || w->heap[0]->deadline_us < due))
            due = w->heap[0]->deadline_us;
        if (due >= 0) {
            int64_t d = due - fo_clock_us();
            if (d < 0)
                d = 0;
            if (d > 60000000)
                d = 60000000;
            ts.tv_sec = d / 1000000;
            ts.tv_nsec = (d % 1000000) * 1000;
            tsp = &ts;
        }
        int n = wait_events(w, events, 64, tsp);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "fanout: epoll wait: %s\n", strerror(errno));
            abort();
        }
        for (int i = 0; i < n; i++) {
            uint32_t ev = events[i].events;
            if (events[i].data.u64 & SOCK_TAG) {
                int mask = 0;
                if (ev & EPOLLIN)
                    mask |= CURL_CSELECT_IN;
                if (ev & EPOLLOUT)
                    mask |= CURL_CSELECT_OUT;
                if (ev & (EPOLLERR | EPOLLHUP))
                    mask |= CURL_CSELECT_ERR;
                curl_multi_socket_action(w->multi, (curl_socket_t)(events[i].data.u64 >> 1), mask,
                                         &running);
                drain_done(w);
                continue;
            }
            struct watch *wt = events[i].data.ptr;
            if (wt->kind == WATCH_CLIENT) {
                struct job *j = (struct job *)wt;
                if (!j->watching)
                    continue; /* Completed earlier in this batch. */
                /* The connection was reset: nobody is waiting for these answers. */
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, wt->fd, NULL);
                j->watching = false;
                fo_ctx_cancel(j->f->ctx, -ECONNABORTED);
                abort_job(w, j, FO_ERR_CANCELLED);
            }
        }
        /* The wake fd is handled after socket events so that a job aborted
         * above is never confused with one started in this round. */
        for (int i = 0; i < n; i++) {
            if (!(events[i].data.u64 & SOCK_TAG) && events[i].data.ptr == &w->wake)
                drain_inbox(w);
        }
        if (atomic_exchange_explicit(&w->sweep, false, memory_order_acq_rel))
            sweep_jobs(w);
        int64_t now_us = fo_clock_us();
        while (w->nheap && w->heap[0]->deadline_us <= now_us) {
            struct job *j = w->heap[0];
            heap_remove(w, j);
            abort_job(w, j, FO_ERR_TIMEOUT); /* May complete (recycle) the job. */
        }
        if (w->timer_due_us >= 0 && fo_clock_us() >= w->timer_due_us) {
            w->timer_due_us = -1;
            curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            drain_done(w);
        }
    }
    return NULL;
}

/* ---- setup and teardown (caller's thread) ---- */

static void worker_cleanup(struct fo_worker *w)
{
    while (w->free_xfers) {
        struct xfer *x = w->free_xfers;
        w->free_xfers = x->next;
        curl_easy_cleanup(x->easy);
        fo_buf_free(&x->body);
        free(x);
    }
    free(w->heap);
    while (w->free_jobs) {
        struct job *j = w->free_jobs;
        w->free_jobs = j->next;
        free(j);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi); /* Closes cached connections via on_socket, on_close. */
    fo_socktab_destroy(w->socks);
    fo_chan_destroy(w->inbox, NULL);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    if (w->epfd >= 0)
        close(w->epfd);
}

static int worker_init(struct fo_worker *w, struct fo_pool *pool)
{
    w->pool = pool;
    w->epfd = -1;
    w->wake.fd = -1;
    w->wake.kind = WATCH_WAKE;
    w->timer_due_us = -1;
    w->pwait2 = true;
    int rc = fo_chan_create(&w->inbox, pool->opts.queue_cap);
    if (rc < 0)
        return rc;
    rc = fo_socktab_create(&w->socks);
    if (rc < 0)
        return rc;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -errno;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake.fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake.fd, &ev) < 0)
        return -errno;
    w->multi = curl_multi_init();
    if (!w->multi)
        return -ENOMEM;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Keep every connection the worker's concurrency needed: a cache smaller
     * than the number of transfers in flight closes connections after use,
     * and each request then pays new TCP handshakes. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 4096L);
    if (pool->opts.max_host_connections > 0)
        curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          pool->opts.max_host_connections);
    return 0;
}

static void wake(struct fo_worker *w)
{
    uint64_t one = 1;
    while (write(w->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int fo_pool_create(struct fo_pool **out, const struct fo_pool_opts *opts)
{
    if (opts->workers < 1 || opts->queue_cap < 1)
        return -EINVAL;
    struct fo_pool *pool = xmalloc(sizeof *pool);
    pool->opts = *opts;
    pool->workers = xmalloc(opts->workers * sizeof *pool->workers);
    int rc = 0;
    for (unsigned i = 0; i < opts->workers; i++) {
        rc = worker_init(&pool->workers[i], pool);
        if (rc < 0)
            goto fail;
    }
    for (unsigned i = 0; i < opts->workers; i++) {
        rc = -pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (rc < 0)
            goto fail;
        pool->nstarted++;
    }
    *out = pool;
    return 0;
fail:
    /* Workers 0..nstarted-1 run; the rest at most hold resources. */
    atomic_store(&pool->closed, true);
    for (unsigned i = 0; i < pool->nstarted; i++) {
        atomic_store(&pool->workers[i].stop, true);
        wake(&pool->workers[i]);
        pthread_join(pool->workers[i].thread, NULL);
    }
    for (unsigned i = 0; i < opts->workers; i++)
        if (pool->workers[i].pool)
            worker_cleanup(&pool->workers[i]);
    free(pool->workers);
    free(pool);
    return rc;
}

void fo_pool_destroy(struct fo_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->closed, true);
    for (unsigned i = 0; i < pool->nstarted; i++) {
        atomic_store(&pool->workers[i].stop, true);
        wake(&pool->workers[i]);
    }
    for (unsigned i = 0; i < pool->nstarted; i++)
        pthread_join(pool->workers[i].thread, NULL);
    for (unsigned i = 0; i < pool->opts.workers; i++)
        worker_cleanup(&pool->workers[i]);
    free(pool->workers);
    free(pool);
}

int fo_pool_submit(struct fo_pool *pool, struct fo_fanout *f)
{
    if (atomic_load_explicit(&pool->closed, memory_order_acquire))
        return -EPIPE;
    unsigned k = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
    struct fo_worker *w = &pool->workers[k % pool->opts.workers];
    int rc = fo_chan_send(w->inbox, f, 0);
    if (rc == -ETIMEDOUT)
        rc = -EAGAIN;
    if (rc < 0)
        return rc;
    wake(w);
    return 0;
}

void fo_pool_sweep(struct fo_pool *pool)
{
    for (unsigned i = 0; i < pool->nstarted; i++) {
        atomic_store_explicit(&pool->workers[i].sweep, true, memory_order_release);
        wake(&pool->workers[i]);
    }
}

void fo_pool_stats(struct fo_pool *pool, struct fo_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < pool->opts.workers; i++) {
        struct fo_worker *w = &pool->workers[i];
        out->fanouts += atomic_load_explicit(&w->n_fanouts, memory_order_relaxed);
        out->calls += atomic_load_explicit(&w->n_calls, memory_order_relaxed);
        out->connections += atomic_load_explicit(&w->n_connects, memory_order_relaxed);
        out->running += atomic_load_explicit(&w->n_running, memory_order_relaxed);
        out->dirty_discards += atomic_load_explicit(&w->n_dirty, memory_order_relaxed);
        out->queued += fo_chan_len(w->inbox);
    }
}
