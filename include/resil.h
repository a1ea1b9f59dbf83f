/* resil.h -- the resilience state store: per-backend and per-endpoint state, and the
 * decisions the pool and the fan-in ask of it.
 *
 * The store (one per process, owned by the server) keeps one state per backend definition
 * -- its round-robin counter, breakers (one, or one per host), rate-limit bucket, latency
 * window and hedge budget, stale cache and counters -- and one per endpoint rate limit.
 * States are keyed by a hash of the definition (config.h: def_hash, rate_hash) and
 * reference-counted by the runtimes that name them (runtime.h), so a reload keeps the
 * state of every backend whose definition did not change (a breaker stays open across a
 * SIGHUP) and frees the rest when the last request of the old config is done. Memory per
 * state is bounded by its settings whatever the traffic (lru.h, hedge.h).
 * The mechanics of attempts (timers, hedges, aborts) are the pool's (pool_worker.c); the policies
 * are in hosts.h, retry.h, breaker.h, ratelimit.h, hedge.h and stale.h; this module glues
 * them to a call.
 * Ownership: the store owns every state; a binding (fo_resil_bind) holds one reference on
 * each state its config names and is freed with fo_resil_unbind; calls borrow states from
 * their request's runtime.
 * Threads: bind/unbind take the store's mutex (reload and request end, never the hot path);
 * everything else is thread-safe without a global lock (atomics and each mechanism's own
 * small lock). */
#ifndef FO_RESIL_H
#define FO_RESIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "outcome.h"
#include "plan.h"
#include "retry.h"

struct fo_resil;         /* Opaque: the store. */
struct fo_resil_backend; /* Opaque: one backend's state. */
struct fo_resil_bind;    /* Opaque: one config's references. */

/* Returns 0 and sets *out, or -ENOMEM. */
int fo_resil_create(struct fo_resil **out);

/* Free the store; every binding must be gone. NULL is a no-op. */
void fo_resil_destroy(struct fo_resil *s);

/* Find or create the states 'cfg' names and take a reference on each; also sets the retry
 * budget from cfg (the newest binding's wins). 'cfg' must outlive the binding. Aborts when
 * out of memory. Thread-safe. */
struct fo_resil_bind *fo_resil_bind(struct fo_resil *s, const struct fo_config *cfg);

/* Drop the binding's references (a state nobody names is freed). NULL is a no-op. */
void fo_resil_unbind(struct fo_resil_bind *b);

/* ---- the request side (MHD thread, and the fan-in on the worker) ---- */

/* Point each call of endpoint 'ep_index''s plan at its backend's state (none for a
 * backend without a policy). */
void fo_resil_plan(const struct fo_resil_bind *b, size_t ep_index, struct fo_plan *p);

/* Endpoint 'ep_index''s rate limit for one request of client 'key' (klen bytes; ignored
 * unless the limit is keyed). Returns true when admitted, else false with *retry_after_s
 * (whole seconds, >= 1). Always true without a limit. */
bool fo_resil_admit(const struct fo_resil_bind *b, size_t ep_index, const char *key, size_t klen,
                    int64_t *retry_after_s);

/* The endpoint's rate limit, if any (to know which key to read). */
const struct fo_rate_conf *fo_resil_endpoint_rate(const struct fo_resil_bind *b, size_t ep_index);

/* A call with a state has been through the pipeline: count the attempt that gave its
 * result for the breaker, and keep a good value for stale-on-error. Worker thread (the
 * fan-in). */
void fo_resil_call_judged(struct fo_call *c);

/* After fo_resil_call_judged (and the call's metrics, which see the real outcome): replace
 * a failure by a stale value at most stale_ms old. Returns true when it did (outcome FO_OK,
 * tries.stale set). Worker thread. */
bool fo_resil_stale(struct fo_call *c);

/* Append the report members of a call with a state (",\"attempts\":n,..."); nothing for
 * one without. Returns 0 or the fo_buf errors. */
int fo_resil_put_report(struct fo_buf *out, const struct fo_call *c);

/* The origin a call's result came from, or NULL. */
const char *fo_resil_host(const struct fo_call *c);

/* Append the resilience series of the binding's states (Prometheus text; resil_metrics.c).
 * Returns 0 or the fo_buf errors. Thread-safe. */
int fo_resil_write_metrics(const struct fo_resil_bind *b, struct fo_buf *out);

/* ---- the pool side (worker thread) ---- */

/* Why an attempt may not start. */
enum fo_resil_gate {
    FO_RESIL_GO,           /* Start it ('host', 'probe' set). */
    FO_RESIL_CIRCUIT_OPEN, /* Every breaker it could use is open. */
    FO_RESIL_RATE_LIMITED, /* The backend's rate limit is spent. */
};

/* A call with a state begins / ends (the retry budget counts calls in flight). */
void fo_resil_call_begin(struct fo_call *c);
void fo_resil_call_end(struct fo_call *c);

/* May an attempt start now? 'tried' is the mask of hosts this call has tried (a host not
 * in it is preferred); 'primary' says it is the call's first attempt (it pays into the
 * hedge budget). Sets *host (-1 without hosts) and *probe. */
enum fo_resil_gate fo_resil_attempt_begin(struct fo_call *c, uint64_t tried, bool primary,
                                          int64_t now_us, int *host, bool *probe);

/* An attempt that did not give the call its result has ended: count it for the breaker of
 * 'host' ('failure' 1 counted failure, 0 any other answer, -1 no counted result). */
void fo_resil_attempt_end(struct fo_call *c, int host, bool probe, int failure, int64_t now_us);

/* Transport result of an attempt as a breaker verdict: 1 counted failure, 0 other answer,
 * -1 not counted. 'own_timeout' says a timeout was the call's own. */
int fo_resil_verdict(enum fo_outcome transport, int status, bool own_timeout);

/* An attempt got an answer after 'us' (the latency window). */
void fo_resil_latency(struct fo_call *c, int64_t us, int64_t now_us);

/* The hedge delay of a call that starts now, in us, or -1 for no hedge. */
int64_t fo_resil_hedge_delay_us(struct fo_call *c, int64_t now_us);

/* Take a hedge token. Returns false when the budget is spent. */
bool fo_resil_hedge_take(struct fo_call *c);

/* The process's retry budget (take and put around each retry). */
struct fo_retry_budget *fo_resil_budget(struct fo_call *c);

/* Counters the pool bumps. */
enum fo_resil_count {
    FO_RC_RETRY_CONNECT, /* A retry for each enum fo_retry_reason, in order. */
    FO_RC_RETRY_TIMEOUT,
    FO_RC_RETRY_STATUS,
    FO_RC_BUDGET_REFUSED,
    FO_RC_HEDGE_SENT,
    FO_RC_HEDGE_WON,
    FO_RC_CIRCUIT_OPEN,
    FO_RC_RATE_LIMITED,
    FO_RC_STALE,
    FO_RC_COUNT
};
void fo_resil_count(struct fo_call *c, enum fo_resil_count what);

#endif /* FO_RESIL_H */
