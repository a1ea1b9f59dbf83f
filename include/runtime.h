/* runtime.h -- a configuration in use and the metric series its routes count into.
 *
 * The HTTP front serves every request with the runtime that was current when
 * the request began; a reload makes a new one current, and the old one lives
 * on until the last request that holds it ends. Its last reference frees it,
 * its config, and its references on the series (a series that no runtime
 * names leaves /metrics then; see metrics.h).
 * Ownership: a runtime owns its config (once created) and its arrays; the
 * series belong to the metrics registry.
 * Threads: a runtime is immutable after create and may be read from any
 * thread; references are atomic. */
#ifndef FO_RUNTIME_H
#define FO_RUNTIME_H

#include <stdatomic.h>

#include "config.h"
#include "metrics.h"
#include "resil.h"

struct fo_runtime {
    struct fo_config *cfg;                 /* Owned. */
    struct fo_metrics *metrics;            /* Borrowed; one reference on each series below. */
    atomic_long refs;                      /* The front's current pointer + requests. */
    struct fo_endpoint_stats **ep_stats;   /* [nendpoints] */
    struct fo_backend_stats ***be_stats;   /* [nendpoints][nbackends] */
    struct fo_endpoint_stats *batch_stats; /* The ad-hoc batch, or NULL. */
    struct fo_backend_stats **host_stats;  /* [aggregate.nallow] */
    struct fo_endpoint_stats *other_stats; /* Unmatched paths and early errors. */
    struct fo_resil_bind *resil;           /* Its resilience states (resil.h); set by the server
                                              after create, dropped with the runtime. */
};

/* Register the series of 'cfg' in 'm' and return a runtime with one
 * reference, or NULL when out of memory. Ownership of 'cfg' moves to the
 * runtime on success (the caller keeps it on NULL). */
struct fo_runtime *fo_runtime_create(struct fo_metrics *m, struct fo_config *cfg);

/* Take one more reference. */
static inline void fo_runtime_hold(struct fo_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
}

/* Drop one reference; the last one frees the runtime and its config. NULL is
 * a no-op. */
void fo_runtime_put(struct fo_runtime *rt);

/* Free a runtime whose config the caller keeps (a failed start): release its
 * series and free it whatever its references. */
void fo_runtime_free(struct fo_runtime *rt);

#endif /* FO_RUNTIME_H */
