/* breaker.h -- a circuit breaker: consecutive failures open it, one probe closes it.
 *
 * The rule (issue "Resilience"): a breaker counts consecutive failures of the classes the
 * caller says count (connect, the call's own timeout, 5xx, invalid_json); any other answer
 * resets the count; cancelled attempts and the request's deadline do not count at all. It
 * opens when the count reaches 'failures' (>=, not KrakenD's >); while open every attempt is
 * refused; 'open_ms' after opening one attempt goes through as the probe (half-open) and the
 * others are still refused; the probe's success closes it, its failure opens it again for
 * open_ms, and a probe that ended without a counted result lets the next attempt probe.
 * Results of attempts that started before the breaker opened are ignored while it is open
 * or half-open (only the probe decides). Same as Envoy's consecutive-failure ejection and
 * Hystrix's half-open, without a rolling window.
 * Ownership: embedded in its owner (resil.c), init/destroy around it.
 * Threads: thread-safe; a closed breaker admits without the lock (one atomic load), and every
 * other step takes the breaker's own small mutex. */
#ifndef FO_BREAKER_H
#define FO_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum fo_breaker_state { FO_BREAKER_CLOSED = 0, FO_BREAKER_OPEN = 1, FO_BREAKER_HALF_OPEN = 2 };

/* What fo_breaker_allow says about one attempt. */
enum fo_breaker_verdict {
    FO_BREAKER_PASS,  /* Closed: go ahead. */
    FO_BREAKER_PROBE, /* Go ahead as the probe: report its result with probe = true. */
    FO_BREAKER_DENY,  /* Open: fail the attempt circuit_open without a connection. */
};

struct fo_breaker {
    pthread_mutex_t lock;
    atomic_int state;      /* enum fo_breaker_state; written under 'lock'. */
    unsigned fails;        /* Consecutive counted failures while closed; 'lock'. */
    int64_t open_until_us; /* When open: the first probe may go (fo_clock_us); 'lock'. */
    bool probing;          /* Half-open: the probe is in flight; 'lock'. */
    atomic_uint_fast64_t to_open, to_half_open, to_closed; /* Transitions, for metrics. */
};

void fo_breaker_init(struct fo_breaker *b);
void fo_breaker_destroy(struct fo_breaker *b);

/* May an attempt start at 'now_us'? Thread-safe. */
enum fo_breaker_verdict fo_breaker_allow(struct fo_breaker *b, int64_t now_us);

/* An attempt's counted result: 'failure' true for a counted failure, false for any other
 * answer. 'probe' says it was let through as the probe. Thread-safe. */
void fo_breaker_record(struct fo_breaker *b, unsigned failures, int64_t open_ms, bool failure,
                       bool probe, int64_t now_us);

/* An attempt ended without a counted result (cancelled, the deadline, refused before
 * sending): a probe frees the probe slot. Thread-safe. */
void fo_breaker_release(struct fo_breaker *b, bool probe, int64_t now_us);

/* The state now (for the gauge). Thread-safe. */
enum fo_breaker_state fo_breaker_state(struct fo_breaker *b);

#endif /* FO_BREAKER_H */
