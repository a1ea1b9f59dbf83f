/* retry.h -- when an attempt is retried, how long to wait, and the process's retry budget.
 *
 * Policy (issue "Resilience"; Envoy's and the AWS full-jitter rules): an attempt is retried
 * when its result is in the backend's "on" set -- connect (no answer: refused, reset),
 * timeout (only the attempt's own try_timeout_ms, never the call's or the request's
 * deadline), 5xx or a listed status -- and the method is idempotent. Before retry n
 * (1 = the first retry) the wait is uniform in [0, (2^n - 1) * B), capped at 10 * B and at
 * half the time left, so that the retry still has time to run; a Retry-After on a 429 or
 * 503 is waited for instead when it is longer, and when it is longer than the time left
 * there is no retry at all.
 * Budget (Envoy's retry budget): retries in flight may be at most max(min, percent x calls
 * in flight); a retry counts from the moment it is granted (its backoff included) until its
 * attempt ends.
 * Threads: the policy functions are pure; the budget is lock-free (relaxed atomics: it is a
 * load signal, and a few retries past the line under a race are harmless). */
#ifndef FO_RETRY_H
#define FO_RETRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "outcome.h"
#include "resil_conf.h"

/* Reasons, for metrics labels. */
enum fo_retry_reason {
    FO_RETRY_R_CONNECT,
    FO_RETRY_R_TIMEOUT,
    FO_RETRY_R_STATUS,
    FO_RETRY_R_COUNT,
};

const char *fo_retry_reason_name(enum fo_retry_reason r);

/* Should an attempt that ended with transport 'outcome' (FO_OK: an answer with 'status')
 * be retried under 'c'? 'try_timeout' says a FO_ERR_TIMEOUT was the attempt's own
 * try_timeout_ms. Returns the reason, or -1 for no. */
int fo_retry_wanted(const struct fo_retry_conf *c, enum fo_outcome outcome, int status,
                    bool try_timeout);

/* The wait before retry 'n' (>= 1) in us, from the random 'rnd', fitted into 'left_us'. */
int64_t fo_retry_backoff_us(const struct fo_retry_conf *c, unsigned n, uint64_t rnd,
                            int64_t left_us);

/* The process's retry budget. */
struct fo_retry_budget {
    atomic_long calls;            /* Calls with a resilience policy in flight. */
    atomic_long retries;          /* Retries granted and not ended. */
    atomic_uint percent;          /* From the current config. */
    atomic_uint min;              /* From the current config. */
    atomic_uint_fast64_t refused; /* Retries refused, ever. */
};

void fo_retry_budget_init(struct fo_retry_budget *b);

/* Take one retry. Returns false (counted in 'refused') when the budget is spent. */
bool fo_retry_budget_take(struct fo_retry_budget *b);

/* A granted retry's attempt ended (or it was never sent). */
void fo_retry_budget_put(struct fo_retry_budget *b);

#endif /* FO_RETRY_H */
