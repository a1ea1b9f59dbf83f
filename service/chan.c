/* chan.c -- bounded multi-producer/multi-consumer channel with close. See chan.h.
 *
 * DESIGN: a ring of 'cap' pointers guarded by one mutex, with two condition
 * variables: 'not_empty' (receivers wait on it) and 'not_full' (senders wait
 * on it). Both use CLOCK_MONOTONIC, the clock behind fo_clock_ms(), so a
 * deadline converts straight into the absolute time pthread_cond_timedwait()
 * wants, and the wait loop never reads the clock itself.
 *
 * The fast path is one lock/unlock: a send into a non-full channel (or a
 * receive from a non-empty one) touches no clock and signals only when the
 * other side has waiters, which each side counts under the lock. Every
 * enqueue with receivers waiting signals one of them (and every dequeue one
 * sender), so each item has a waker; a woken thread re-checks the ring, so a
 * thread that barged in ahead of it just sends it back to sleep.
 *
 * A timed-out waiter looks at the ring once more before giving up: it may
 * have consumed the signal meant for an item that is now there, and taking
 * that item keeps it from sitting in the channel while others sleep.
 *
 * Signals are sent with the lock held. That costs a little under contention
 * but means no thread touches the channel after the one that drains it has
 * returned (it may destroy the channel straight away, as the fan-in does).
 *
 * Close sets a flag and broadcasts both conditions. Senders see it before
 * looking for room; receivers only once the ring is empty, so items queued
 * before the close are still delivered. */
#include "chan.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct fo_chan {
    pthread_mutex_t mu;       /* Protects every field below except cap and ring. */
    pthread_cond_t not_empty; /* Receivers wait here; CLOCK_MONOTONIC. */
    pthread_cond_t not_full;  /* Senders wait here; CLOCK_MONOTONIC. */
    void **ring;              /* From calloc(): cap slots; the pointer is set at create. */
    size_t cap;               /* Slots in ring, >= 1; fixed at create. */
    size_t head;              /* Index of the oldest item. */
    size_t len;               /* Items queued, <= cap. */
    size_t recv_waiters;      /* Receivers blocked on not_empty. */
    size_t send_waiters;      /* Senders blocked on not_full. */
    bool closed;              /* Set once by fo_chan_close, never cleared. */
};

int fo_chan_create(struct fo_chan **out, size_t cap)
{
    int rc;
    pthread_condattr_t attr;
    struct fo_chan *ch = NULL;

    *out = NULL;
    if (cap == 0)
        return -EINVAL;
    ch = calloc(1, sizeof *ch);
    if (!ch)
        return -ENOMEM;
    ch->cap = cap;
    ch->ring = calloc(cap, sizeof *ch->ring);
    if (!ch->ring) {
        rc = -ENOMEM;
        goto fail_ring;
    }
    rc = -pthread_mutex_init(&ch->mu, NULL);
    if (rc < 0)
        goto fail_mutex;
    rc = -pthread_condattr_init(&attr);
    if (rc < 0)
        goto fail_attr;
    rc = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc < 0)
        goto fail_not_empty;
    rc = -pthread_cond_init(&ch->not_empty, &attr);
    if (rc < 0)
        goto fail_not_empty;
    rc = -pthread_cond_init(&ch->not_full, &attr);
    if (rc < 0)
        goto fail_not_full;
    pthread_condattr_destroy(&attr);
    *out = ch;
    return 0;

fail_not_full:
    pthread_cond_destroy(&ch->not_empty);
fail_not_empty:
    pthread_condattr_destroy(&attr);
fail_attr:
    pthread_mutex_destroy(&ch->mu);
fail_mutex:
    free(ch->ring);
fail_ring:
    free(ch);
    return rc;
}

void fo_chan_destroy(struct fo_chan *ch, void (*drop)(void *item))
{
    if (!ch)
        return;
    if (drop) {
        for (size_t i = 0; i < ch->len; i++)
            drop(ch->ring[(ch->head + i) % ch->cap]);
    }
    pthread_cond_destroy(&ch->not_full);
    pthread_cond_destroy(&ch->not_empty);
    pthread_mutex_destroy(&ch->mu);
    free(ch->ring);
    free(ch);
}

/* Has 'deadline_ms' already passed? Read the clock only for a real deadline.
 * "Passed" includes now == deadline, matching fo_ctx_remaining_ms() == 0. */
static bool deadline_passed(int64_t deadline_ms)
{
    return deadline_ms != FO_NO_DEADLINE && fo_clock_ms() >= deadline_ms;
}

/* One wait on 'cond' with ch->mu held, until 'deadline_ms' (a future time or
 * FO_NO_DEADLINE). Returns 0 when woken (possibly spuriously) or ETIMEDOUT;
 * the caller re-checks its condition either way. */
static int wait_until(struct fo_chan *ch, pthread_cond_t *cond, int64_t deadline_ms)
{
    if (deadline_ms == FO_NO_DEADLINE)
        return pthread_cond_wait(cond, &ch->mu);
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ms / 1000),
        .tv_nsec = (long)(deadline_ms % 1000) * 1000000L,
    };
    /* Anything but a wake-up (ETIMEDOUT, or EINVAL for a time the kernel
     * refuses) ends the wait rather than spinning on it. */
    return pthread_cond_timedwait(cond, &ch->mu, &ts) ? ETIMEDOUT : 0;
}

int fo_chan_send(struct fo_chan *ch, void *item, int64_t deadline_ms)
{
    int rc = 0;

    pthread_mutex_lock(&ch->mu);
    if (!ch->closed && ch->len == ch->cap) {
        if (deadline_passed(deadline_ms)) {
            rc = -EAGAIN;
            goto out;
        }
        ch->send_waiters++;
        while (!ch->closed && ch->len == ch->cap) {
            if (wait_until(ch, &ch->not_full, deadline_ms) == ETIMEDOUT)
                break;
        }
        ch->send_waiters--;
    }
    if (ch->closed) {
        rc = -EPIPE;
        goto out;
    }
    if (ch->len == ch->cap) {
        rc = -ETIMEDOUT;
        goto out;
    }
    size_t tail = ch->head + ch->len; /* < 2 * cap: head < cap, len < cap. */
    if (tail >= ch->cap)
        tail -= ch->cap;
    ch->ring[tail] = item;
    ch->len++;
    if (ch->recv_waiters)
        pthread_cond_signal(&ch->not_empty);
out:
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int fo_chan_recv(struct fo_chan *ch, void **out, int64_t deadline_ms)
{
    int rc = 0;

    pthread_mutex_lock(&ch->mu);
    if (!ch->closed && ch->len == 0) {
        if (deadline_passed(deadline_ms)) {
            rc = -EAGAIN;
            goto out;
        }
        ch->recv_waiters++;
        while (!ch->closed && ch->len == 0) {
            if (wait_until(ch, &ch->not_empty, deadline_ms) == ETIMEDOUT)
                break;
        }
        ch->recv_waiters--;
    }
    if (ch->len == 0) {
        rc = ch->closed ? -EPIPE : -ETIMEDOUT;
        goto out;
    }
    *out = ch->ring[ch->head];
    ch->ring[ch->head] = NULL;
    ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1;
    ch->len--;
    if (ch->send_waiters)
        pthread_cond_signal(&ch->not_full);
out:
    assert(ch->len <= ch->cap);
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

void fo_chan_close(struct fo_chan *ch)
{
    pthread_mutex_lock(&ch->mu);
    ch->closed = true;
    /* Broadcast even without counted waiters: close is rare and this keeps
     * the rule simple. Under the lock for the same reason as the signals. */
    pthread_cond_broadcast(&ch->not_empty);
    pthread_cond_broadcast(&ch->not_full);
    pthread_mutex_unlock(&ch->mu);
}

size_t fo_chan_len(struct fo_chan *ch)
{
    pthread_mutex_lock(&ch->mu);
    size_t n = ch->len;
    pthread_mutex_unlock(&ch->mu);
    return n;
}

size_t fo_chan_waiters(struct fo_chan *ch)
{
    pthread_mutex_lock(&ch->mu);
    size_t n = ch->recv_waiters + ch->send_waiters;
    pthread_mutex_unlock(&ch->mu);
    return n;
}
