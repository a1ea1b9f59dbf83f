/* pool_worker.c -- one worker of the pool (pool.c): an epoll loop around one curl multi, its
 * jobs and transfers.
 *
 * DESIGN
 * Each worker owns everything it touches: an epoll set, a curl multi handle
 * driven with curl_multi_socket_action, its running jobs (one job per
 * submitted fan-out) and free lists of transfers (whose easy handles are
 * reused, so per-call setup is a handful of setopts) and jobs. The only
 * shared state is the worker's inbox channel, an eventfd that wakes it, and
 * relaxed atomic counters. The locks a worker takes are its inbox's and each
 * request's fan-in channel's (on every ended call), and none is held while
 * calling out (curl, 'done').
 *
 * The epoll set holds two kinds of descriptor: the wake eventfd, as a
 * pointer to a 'watch' header, and the sockets curl asks us to watch, as the
 * fd itself tagged in the low bit. Curl sockets carry no pointer because
 * curl may close one while we are still walking a batch of events that
 * names it; a stale fd is harmless to curl_multi_socket_action, a stale
 * pointer is not (pool_sock.c keeps this half of the set). Jobs are never freed while the worker
 * runs (they are recycled). The pool watches no client: the HTTP front does (conns.h), and cancels
 * the request's context and sweeps the pool when its client is gone.
 *
 * A job ends when its last transfer ends. Transfers end by curl (done,
 * failed, timed out: every transfer carries a curl timeout no later than the
 * fan-out's deadline) or by an abort (the submitter decided the fan-out, a
 * sweep after its context was cancelled, the deadline heap), which removes
 * the easy handle from the multi and so closes its connection.
 *
 * A transfer enters the multi through the worker's gate (pool_gate.h): past
 * max_host_connections for its host it waits there, in order, and the end of
 * every loop round starts those whose turn came (gate_admit). A waiting
 * transfer counts as running (its job waits for it) and leaves the gate on
 * an abort like any other.
 *
 * One call on its easy handle -- options, headers, caps, the refusal of a
 * dirty kept-alive connection and the transport result of its end -- is
 * transfer.c's; the worker runs transfers and restarts one that transfer.c
 * says must go on a fresh connection.
 *
 * A call with a resilience policy (call->resil, resil.h) runs as a 'run' of
 * attempts instead: attempts.c, on the same worker and the same structures
 * (pool_worker.h), with a second timer heap for backoffs and hedge delays. */
#include "pool_worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "metrics.h"
#include "pool_gate.h"
#include "socktab.h"
#include "timerheap.h"
#include "transfer.h"

/* ---- transfers and jobs (worker thread) ---- */

/* How far down the free list a get looks for a transfer that last ran the
 * same URL. The list is last in, first out: a fan-out's transfers come back
 * together, so the one for the same backend is near the top. */
#define FREE_XFERS_SCAN 8

struct fo_xfer *fo__xfer_get(struct fo_worker *w, const char *url)
{
    struct fo_xfer **at = &w->free_xfers;
    for (int i = 0; *at && i < FREE_XFERS_SCAN; i++, at = &(*at)->next)
        if (fo_xfer_ran(*at, url))
            break;
    if (!*at || !fo_xfer_ran(*at, url))
        at = &w->free_xfers; /* None: the top one. */
    struct fo_xfer *x = *at;
    if (x) {
        *at = x->next;
        w->nfree_xfers--;
        x->next = NULL;
        return x;
    }
    return fo_xfer_new(&w->env);
}

/* Idle transfers (with their easy handles and buffers) kept per worker: all
 * of them while the worker has calls in flight (a wide fan-out reuses what
 * the last one used instead of paying curl_easy_cleanup and a new handle per
 * call), FREE_XFERS_KEEP once it has none (a burst is over: memory goes
 * back). The list never outgrows the peak of calls in flight, which
 * max_inflight_calls bounds. */
#define FREE_XFERS_KEEP 256

void fo__xfer_put(struct fo_worker *w, struct fo_xfer *x)
{
    fo_xfer_reset(x);
    w->nfree_xfers++;
    x->next = w->free_xfers;
    w->free_xfers = x;
    if (atomic_load_explicit(&w->n_running, memory_order_relaxed) > 0)
        return;
    while (w->nfree_xfers > FREE_XFERS_KEEP) {
        struct fo_xfer *y = w->free_xfers;
        w->free_xfers = y->next;
        w->nfree_xfers--;
        fo_xfer_free(y);
    }
}

int fo__xfer_add(struct fo_worker *w, struct fo_xfer *x)
{
    if (!fo_gate_enter(w->gate, x, x->url ? x->url : x->call->url)) {
        atomic_fetch_add_explicit(&w->n_waiting, 1, memory_order_relaxed);
        return 0; /* Waits for a slot: gate_admit starts it. */
    }
    if (curl_multi_add_handle(w->multi, x->easy) != CURLM_OK) {
        fo_gate_leave(w->gate, x);
        return -ENOMEM;
    }
    return 0;
}

bool fo__xfer_remove(struct fo_worker *w, struct fo_xfer *x)
{
    bool ran = !fo_gate_waiting(x);
    if (ran)
        curl_multi_remove_handle(w->multi, x->easy);
    else
        atomic_fetch_sub_explicit(&w->n_waiting, 1, memory_order_relaxed);
    fo_gate_leave(w->gate, x);
    return ran;
}

static struct job *job_get(struct fo_worker *w)
{
    struct job *j = w->free_jobs;
    if (j) {
        w->free_jobs = j->next;
        struct run *runs = j->runs;
        size_t cap = j->runs_cap;
        struct fo__qent *q = j->q;
        size_t q_cap = j->q_cap;
        memset(j, 0, sizeof *j);
        j->runs = runs;
        j->runs_cap = cap;
        j->q = q;
        j->q_cap = q_cap;
        return j;
    }
    return fo_xcalloc(sizeof *j);
}

/* The job of a deadline in the worker's heap. Curl's own timers work in
 * whole milliseconds rounded up, so a call cut by its curl timeout ends up
 * to a millisecond after the request deadline; the heap lets the worker wake
 * at the deadline itself (epoll_pwait2 takes a timespec) and abort what is
 * still running. */
static struct job *job_of(struct fo_timer *t)
{
    return (struct job *)((char *)t - offsetof(struct job, deadline));
}

/* Drop one count from the job; the last completes it: the client socket
 * leaves the epoll set, the job is recycled and 'done' is called. The job
 * must not be touched after a release that may have been the last. */
static bool job_release(struct fo_worker *w, struct job *j)
{
    if (--j->pending > 0)
        return true;
    struct fo_fanout *f = j->f;
    fo_timerheap_remove(&w->deadlines, &j->deadline);
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
    return false;
}

/* Hand an ended call to the fan-in channel, let the submitter judge it
 * ('ended' may decide the fan-out), and release its count. */
bool fo__call_end(struct fo_worker *w, struct job *j, struct fo_call *call)
{
    int rc = fo_chan_send(j->f->fanin, call, 0);
    if (rc < 0) /* Capacity >= ncalls is the submitter's promise. */
        fo_panic("the fan-in channel refused a result");
    if (j->f->ended(j->f))
        j->decided = true;
    atomic_fetch_add_explicit(&w->n_calls, 1, memory_order_relaxed);
    fo__run_queue(w, j);
    return job_release(w, j);
}

/* End a call that never started or was aborted, without a response. */
void fo__call_fail(struct fo_worker *w, struct job *j, struct fo_call *call,
                   enum fo_outcome outcome, double ms)
{
    call->outcome = outcome;
    call->status = 0;
    call->no_fds = false;
    call->ms = ms;
    fo__call_end(w, j, call);
}

static void abort_job(struct fo_worker *w, struct job *j, enum fo_outcome outcome);

/* Add the connections this transfer opened to the worker's count. */
void fo__count_connects(struct fo_worker *w, struct fo_xfer *x)
{
    long connects = fo_xfer_connects(x);
    if (connects > 0)
        atomic_fetch_add_explicit(&w->n_connects, (uint64_t)connects, memory_order_relaxed);
    long tls = fo_xfer_tls_handshakes(x, connects);
    if (tls > 0 && x->call && x->call->stats)
        fo_metrics_tls_handshakes(x->call->stats, tls);
}

/* The submitter needs no more answers (fail fast): cancel and abort the rest. */
void fo__decide(struct fo_worker *w, struct job *j)
{
    fo_ctx_cancel(j->f->ctx, -ECANCELED);
    abort_job(w, j, FO_ERR_CANCELLED);
}

/* A transfer curl has finished: its transport result goes to the submitter,
 * which may decide the fan-out (then the calls still running are aborted). */
static void xfer_finish(struct fo_worker *w, struct fo_xfer *x, CURLcode res)
{
    struct fo_call *call = x->call;
    struct job *j = (struct job *)((char *)x->group - offsetof(struct job, group));
    fo__count_connects(w, x);
    if (x->run) {
        fo__run_xfer_done(w, j, x, res);
        return;
    }
    fo_xfer_classify(x, res);

    /* Unlink from the job, recycle, then report. */
    if (x->prev)
        x->prev->next = x->next;
    else
        j->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    fo__xfer_put(w, x);
    /* The end may complete (recycle) the job: calls it released may have ended too. */
    if (fo__call_end(w, j, call) && j->decided)
        fo__decide(w, j);
}

/* Abort every running transfer of 'j' with 'outcome', and end the runs
 * waiting for a timer. The list is detached first: the last call_fail may
 * complete (and recycle) the job; once it has, every run is ended and the
 * list was empty (a run's transfers all leave the list before it ends). */
static void abort_job(struct fo_worker *w, struct job *j, enum fo_outcome outcome)
{
    struct fo_xfer *list = j->xfers;
    j->xfers = NULL;
    size_t n = j->nruns; /* Pool memory: still readable after the job ended. */
    struct run *runs = j->runs;
    while (list) {
        struct fo_xfer *x = list;
        list = x->next;
        struct fo_call *call = x->call;
        double ms = (double)(fo_clock_us() - x->start_us) / 1000.0;
        if (fo__xfer_remove(w, x))
            fo__count_connects(w, x);
        atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
        struct run *r = x->run;
        if (r) {
            fo__attempt_drop(w, x);
            if (r->live == 0 && !r->ended)
                fo__run_fail(w, j, r, outcome);
            continue;
        }
        fo__xfer_put(w, x);
        fo__call_fail(w, j, call, outcome, ms);
    }
    for (size_t i = 0; i < n; i++) {
        if (runs[i].active && !runs[i].ended)
            fo__run_fail(w, j, &runs[i], outcome);
    }
    /* Held calls never started: each ends too. Once the last has, the submitter may free
     * the fan-out, so its calls are only read while a count is left. */
    for (size_t i = 0; j->pending > 0 && j->nheld > 0 && i < j->f->ncalls; i++) {
        struct fo_call *call = &j->f->calls[i];
        if (call->held) {
            j->nheld--;
            fo__call_fail(w, j, call, outcome, 0);
        }
    }
}

/* Outcome for calls cut short because the context is done. */
enum fo_outcome fo__ctx_outcome(int err)
{
    return err == -ETIMEDOUT ? FO_ERR_TIMEOUT : FO_ERR_CANCELLED;
}

/* Set the per-call options and add the transfer to the multi. */
static int xfer_start(struct fo_worker *w, struct job *j, struct fo_call *call, int64_t budget_ms)
{
    struct fo_xfer *x = fo__xfer_get(w, call->url);
    if (fo_xfer_prepare(x, &j->group, call, budget_ms) < 0 || fo__xfer_add(w, x) < 0) {
        fo__xfer_put(w, x);
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

/* Start one call of 'j': a transfer, a run of attempts (it has a policy), or its end at once
 * (refused, the context done, no time left). */
void fo__call_begin(struct fo_worker *w, struct job *j, struct fo_call *call)
{
    struct fo_fanout *f = j->f;
    call->resp = NULL;
    call->resp_len = 0;
    call->json.p = NULL;
    call->json.len = 0;
    call->start_us = fo_clock_us();
    if (call->refused) { /* Nothing can be sent for it (plan.h). */
        fo__call_fail(w, j, call, FO_ERR_SHAPE, 0);
        return;
    }
    bool own = call >= f->calls && call < f->calls + f->ncalls;
    if (call->resil && own) {
        fo__run_start(w, j, (size_t)(call - f->calls));
        return;
    }
    int err = fo_ctx_err(f->ctx);
    if (err < 0) {
        fo__call_fail(w, j, call, fo__ctx_outcome(err), 0);
        return;
    }
    int64_t budget = fo_ctx_remaining_ms(f->ctx, call->start_us / 1000);
    if (call->timeout_ms > 0 && call->timeout_ms < budget)
        budget = call->timeout_ms;
    if (budget > FO_MAX_TIMEOUT_MS)
        budget = FO_MAX_TIMEOUT_MS;
    if (budget <= 0) {
        fo__call_fail(w, j, call, FO_ERR_TIMEOUT, 0);
        return;
    }
    if (xfer_start(w, j, call, budget) < 0)
        fo__call_fail(w, j, call, FO_ERR_CONNECT, 0);
}

/* Take one fan-out from the inbox and start all its calls. */
static void job_start(struct fo_worker *w, struct fo_fanout *f)
{
    struct job *j = job_get(w);
    j->f = f;
    j->w = w;
    f->job = j;
    j->group.f = f;
    j->deadline.index = FO_TIMER_NONE;
    int64_t deadline_ms = fo_ctx_deadline(f->ctx);
    if (deadline_ms != FO_NO_DEADLINE) {
        j->deadline.due = deadline_ms * 1000;
        fo_timerheap_push(&w->deadlines, &j->deadline);
    }
    /* One extra count keeps the job alive until every call is started. */
    j->pending = f->ncalls + 1;
    bool any = false;
    for (size_t i = 0; i < f->ncalls && !any; i++)
        any = f->calls[i].resil != NULL;
    if (any) {
        if (j->runs_cap < f->ncalls) {
            j->runs = fo_xrealloc(j->runs, f->ncalls * sizeof *j->runs);
            j->runs_cap = f->ncalls;
        }
        memset(j->runs, 0, f->ncalls * sizeof *j->runs);
        j->nruns = f->ncalls;
    }
    j->next = w->running;
    if (w->running)
        w->running->prev = j;
    w->running = j;

    for (size_t i = 0; i < f->ncalls; i++)
        j->nheld += f->calls[i].held;
    for (size_t i = 0; i < f->ncalls; i++) {
        if (!f->calls[i].held)
            fo__call_begin(w, j, &f->calls[i]);
    }
    /* A call that could not start may have decided it already. Then release
     * the extra count; this ends the job if every call already ended. */
    if (j->decided && j->pending > 1)
        fo__decide(w, j);
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
            abort_job(w, j, fo__ctx_outcome(err));
        j = next;
    }
}

/* After a connection was refused for unread input (curl closed it): run
 * the same call again on a fresh one (transfer.h). */
static bool xfer_retry(struct fo_worker *w, struct fo_xfer *x, CURLcode *res)
{
    atomic_fetch_add_explicit(&w->n_dirty, 1, memory_order_relaxed);
    fo__count_connects(w, x); /* Curl resets the count when the transfer restarts. */
    return fo_xfer_retry(x, res) && curl_multi_add_handle(w->multi, x->easy) == CURLM_OK;
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
        struct fo_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(w->multi, e);
        if (x->dirty && xfer_retry(w, x, &res))
            continue; /* On its gate slot still. */
        fo_gate_leave(w->gate, x);
        atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
        xfer_finish(w, x, res);
    }
}

static void drain_inbox(struct fo_worker *w)
{
    uint64_t v;
    /* The wake fd is read first, then the flag cleared, then the inbox read:
     * a job whose sender saw the flag still set is found below, and a sender
     * after the clear writes the fd again. Cleared before the read, a write
     * made in between would be consumed with the flag left set, and the next
     * job would wait for a wakeup that never comes. */
    while (read(w->wake.fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    atomic_store(&w->wake_pending, false);
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

/* Start the transfers whose turn at the gate has come (slots given back since the last
 * round). One that cannot be added ends as a connect failure; its end may abort others of
 * its job, which only leave the gate. */
static void gate_admit(struct fo_worker *w)
{
    struct fo_xfer *x;
    while ((x = fo_gate_next(w->gate)) != NULL) {
        atomic_fetch_sub_explicit(&w->n_waiting, 1, memory_order_relaxed);
        fo_xfer_admit(x); /* No time left: curl's 1 ms timeout ends it as a timeout. */
        if (curl_multi_add_handle(w->multi, x->easy) == CURLM_OK)
            continue;
        fo_gate_leave(w->gate, x);
        atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
        xfer_finish(w, x, CURLE_OUT_OF_MEMORY);
    }
}

void *fo__worker_main(void *arg)
{
    struct fo_worker *w = arg;
    struct epoll_event events[64];
    int running;

    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        /* Microsecond timeouts (epoll_pwait2): deadlines end within a
         * fraction of a millisecond, not up to one late. */
        struct timespec ts, *tsp = NULL;
        int64_t due = w->timer_due_us;
        struct fo_timer *first = fo_timerheap_top(&w->deadlines);
        if (first && (due < 0 || first->due < due))
            due = first->due;
        first = fo_timerheap_top(&w->timers);
        if (first && (due < 0 || first->due < due))
            due = first->due;
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
            fo_panic("epoll wait failed");
        }
        fo__sock_polled(w, events, n < 0 ? 0 : n);
        for (int i = 0; i < n; i++) {
            if (fo__sock_is(events[i].data.u64)) {
                if (fo__sock_event(w, events[i].data.u64, events[i].events))
                    drain_done(w);
                continue;
            }
        }
        /* The wake fd is handled after socket events so that a job aborted
         * above is never confused with one started in this round. */
        for (int i = 0; i < n; i++) {
            if (!fo__sock_is(events[i].data.u64) && events[i].data.ptr == &w->wake)
                drain_inbox(w);
        }
        if (atomic_exchange_explicit(&w->sweep, false, memory_order_acq_rel))
            sweep_jobs(w);
        int64_t now_us = fo_clock_us();
        for (;;) {
            struct fo_timer *t = fo_timerheap_top(&w->deadlines);
            if (!t || t->due > now_us)
                break;
            struct job *j = job_of(t);
            fo_timerheap_remove(&w->deadlines, t);
            abort_job(w, j, FO_ERR_TIMEOUT); /* May complete (recycle) the job. */
        }
        now_us = fo_clock_us();
        for (;;) {
            struct fo_timer *t = fo_timerheap_top(&w->timers);
            if (!t || t->due > now_us)
                break;
            fo_timerheap_remove(&w->timers, t);
            fo__run_timer(w, t); /* May complete (recycle) its job. */
        }
        if (w->timer_due_us >= 0 && fo_clock_us() >= w->timer_due_us) {
            w->timer_due_us = -1;
            curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            drain_done(w);
        }
        gate_admit(w);
    }
    return NULL;
}
