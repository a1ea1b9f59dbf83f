/* breaker.c -- a circuit breaker (see breaker.h). */
#include "breaker.h"

void fo_breaker_init(struct fo_breaker *b)
{
    pthread_mutex_init(&b->lock, NULL);
    atomic_init(&b->state, FO_BREAKER_CLOSED);
    b->fails = 0;
    b->open_until_us = 0;
    b->probing = false;
    atomic_init(&b->to_open, 0);
    atomic_init(&b->to_half_open, 0);
    atomic_init(&b->to_closed, 0);
}

void fo_breaker_destroy(struct fo_breaker *b)
{
    pthread_mutex_destroy(&b->lock);
}

/* Lock held. */
static void set_state(struct fo_breaker *b, enum fo_breaker_state s)
{
    atomic_store_explicit(&b->state, s, memory_order_relaxed);
    atomic_uint_fast64_t *c = s == FO_BREAKER_OPEN        ? &b->to_open
                              : s == FO_BREAKER_HALF_OPEN ? &b->to_half_open
                                                          : &b->to_closed;
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

enum fo_breaker_verdict fo_breaker_allow(struct fo_breaker *b, int64_t now_us)
{
    if (atomic_load_explicit(&b->state, memory_order_relaxed) == FO_BREAKER_CLOSED)
        return FO_BREAKER_PASS;
    enum fo_breaker_verdict v = FO_BREAKER_DENY;
    pthread_mutex_lock(&b->lock);
    int s = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (s == FO_BREAKER_CLOSED) {
        v = FO_BREAKER_PASS;
    } else if (s == FO_BREAKER_OPEN && now_us >= b->open_until_us) {
        set_state(b, FO_BREAKER_HALF_OPEN);
        b->probing = true;
        v = FO_BREAKER_PROBE;
    } else if (s == FO_BREAKER_HALF_OPEN && !b->probing) {
        b->probing = true;
        v = FO_BREAKER_PROBE;
    }
    pthread_mutex_unlock(&b->lock);
    return v;
}

void fo_breaker_record(struct fo_breaker *b, unsigned failures, int64_t open_ms, bool failure,
                       bool probe, int64_t now_us)
{
    pthread_mutex_lock(&b->lock);
    int s = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (s == FO_BREAKER_CLOSED) {
        if (!failure) {
            b->fails = 0;
        } else if (++b->fails >= failures) {
            b->fails = 0;
            b->open_until_us = now_us + open_ms * 1000;
            set_state(b, FO_BREAKER_OPEN);
        }
    } else if (s == FO_BREAKER_HALF_OPEN && probe) {
        b->probing = false;
        if (failure) {
            b->open_until_us = now_us + open_ms * 1000;
            set_state(b, FO_BREAKER_OPEN);
        } else {
            b->fails = 0;
            set_state(b, FO_BREAKER_CLOSED);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

void fo_breaker_release(struct fo_breaker *b, bool probe, int64_t now_us)
{
    if (!probe)
        return;
    pthread_mutex_lock(&b->lock);
    if (atomic_load_explicit(&b->state, memory_order_relaxed) == FO_BREAKER_HALF_OPEN)
        b->probing = false;
    pthread_mutex_unlock(&b->lock);
}

enum fo_breaker_state fo_breaker_state(struct fo_breaker *b)
{
    return (enum fo_breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
}
