/* pool.c -- the worker pool: W worker threads (pool_worker.c), the round-robin hand-over of
 * fan-outs to their inboxes, sweeps and statistics. See pool.h.
 *
 * Each worker is set up here on the caller's thread (epoll set, wake eventfd, curl multi and
 * its options, the per-host gate) and then owns all of it on its own thread; what crosses
 * threads is the inbox channel, the wake fd (coalesced: one write while none is pending), the
 * stop and sweep flags and the relaxed counters fo_pool_stats sums. */
#include "pool.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "pool_gate.h"
#include "pool_worker.h"
#include "socktab.h"
#include "timerheap.h"
#include "transfer.h"

struct fo_pool {
    struct fo_pool_opts opts;  /* Copied at create. */
    struct fo_worker *workers; /* opts.workers of them, from calloc(). */
    unsigned nstarted;         /* Threads started (for unwinding). */
    atomic_uint next;          /* Round-robin cursor. */
    atomic_bool closed;        /* No more submits. */
};

/* ---- setup and teardown (caller's thread) ---- */

static void worker_cleanup(struct fo_worker *w)
{
    while (w->free_xfers) {
        struct fo_xfer *x = w->free_xfers;
        w->free_xfers = x->next;
        fo_xfer_free(x);
    }
    fo_gate_free(w->gate);
    fo_timerheap_free(&w->deadlines);
    fo_timerheap_free(&w->timers);
    while (w->free_jobs) {
        struct job *j = w->free_jobs;
        w->free_jobs = j->next;
        free(j->runs);
        free(j->q);
        free(j);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi); /* Closes cached connections via fo__on_socket, on_close. */
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
    w->rng = ((uint64_t)(uintptr_t)w * 0x9e3779b97f4a7c15ull) ^ (uint64_t)fo_clock_us();
    if (w->rng == 0)
        w->rng = 1;
    int rc = fo_chan_create(&w->inbox, pool->opts.queue_cap);
    if (rc < 0)
        return rc;
    rc = fo_socktab_create(&w->socks);
    if (rc < 0)
        return rc;
    w->env.socks = w->socks;
    w->env.buffered = pool->opts.buffered;
    w->env.max_response_bytes = pool->opts.max_response_bytes;
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
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, fo__on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, fo__on_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Keep every connection the worker's concurrency needed: a cache smaller
     * than the number of transfers in flight closes connections after use,
     * and each request then pays new TCP handshakes. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 4096L);
    w->gate = fo_gate_new((unsigned)pool->opts.max_host_connections);
    return 0;
}

/* Wake 'w' (any thread). Wakeups coalesce: while one written is not drained
 * yet, the worker will read its inbox and flags anyway, and no write is made. */
static void wake(struct fo_worker *w)
{
    if (atomic_exchange(&w->wake_pending, true))
        return;
    uint64_t one = 1;
    while (write(w->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int fo_pool_create(struct fo_pool **out, const struct fo_pool_opts *opts)
{
    if (opts->workers < 1 || opts->queue_cap < 1)
        return -EINVAL;
    struct fo_pool *pool = fo_xcalloc(sizeof *pool);
    pool->opts = *opts;
    pool->workers = fo_xcalloc(opts->workers * sizeof *pool->workers);
    int rc = 0;
    for (unsigned i = 0; i < opts->workers; i++) {
        rc = worker_init(&pool->workers[i], pool);
        if (rc < 0)
            goto fail;
    }
    for (unsigned i = 0; i < opts->workers; i++) {
        rc = -pthread_create(&pool->workers[i].thread, NULL, fo__worker_main, &pool->workers[i]);
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
        out->waiting += atomic_load_explicit(&w->n_waiting, memory_order_relaxed);
        out->dirty_discards += atomic_load_explicit(&w->n_dirty, memory_order_relaxed);
        out->queued += fo_chan_len(w->inbox);
    }
}
