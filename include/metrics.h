/* metrics.h -- counters and histograms for GET /metrics (Prometheus text format).
 *
 * Series are registered when a config is loaded (one per endpoint and per
 * backend of it, plus one per allowed host of the ad-hoc batch) and the hot
 * path never looks anything up: it holds pointers and does relaxed atomic
 * adds. Each registration is a reference: registering a label that exists
 * returns the same series (a reload keeps counting into it). A series whose
 * last reference is released is written by the next successful exposition
 * one last time and then freed (registered again before that, it lives on
 * with its counts), so the registry holds what the configs in use name plus
 * what was released since the last scrape -- and, unscraped, never more
 * than FO_METRICS_ORPHAN_SLACK released series beyond the live ones.
 * Registration, release and exposition take the registry's mutex.
 * Ownership: the registry owns every series; a pointer stays valid until the
 * reference it came with is released (or fo_metrics_destroy).
 * Threads: everything is thread-safe except create/destroy. */
#ifndef FO_METRICS_H
#define FO_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "outcome.h"

/* Released series kept for the next scrape beyond the number of live ones;
 * past that they are freed unscraped. */
#define FO_METRICS_ORPHAN_SLACK 1024

/* Upper bounds of the duration buckets in microseconds (the last is +Inf). */
#define FO_HIST_BUCKETS 14

struct fo_hist {
    atomic_uint_fast64_t bucket[FO_HIST_BUCKETS]; /* Non-cumulative counts. */
    atomic_uint_fast64_t sum_us;                  /* Sum of observations. */
};

/* One backend of one endpoint (or one allowed host of the batch). */
struct fo_backend_stats {
    char *label;                                  /* From strdup(). */
    atomic_uint_fast64_t calls[FO_OUTCOME_COUNT]; /* By outcome. */
    struct fo_hist duration;
    /* New TLS connections its calls opened (https). */
    atomic_uint_fast64_t tls_handshakes;
    atomic_long inflight;          /* Calls admitted now (the server's cap). */
    long refs;                     /* Registrations not released; registry mutex. */
    struct fo_backend_stats *next; /* Endpoint's list; registry mutex. */
};

/* One endpoint ("GET /api/dashboard/{id}", the batch, or "unmatched"). */
struct fo_endpoint_stats {
    char *label;                      /* From strdup(). */
    atomic_uint_fast64_t requests[6]; /* By status class: [1]=1xx .. [5]=5xx, [0] other. */
    struct fo_hist duration;
    struct fo_backend_stats *backends; /* Registry mutex for the list; the series are atomic. */
    long refs;                         /* Registrations not released; registry mutex. */
    struct fo_endpoint_stats *next;    /* Registry list; registry mutex. */
};

struct fo_metrics; /* Opaque. */

/* Returns 0 and sets *out, or -ENOMEM. */
int fo_metrics_create(struct fo_metrics **out);

/* Free the registry and every series, released or not. NULL is a no-op. */
void fo_metrics_destroy(struct fo_metrics *m);

/* Find or create the series of endpoint 'label' / of backend 'label' under
 * 'ep' (on which the caller holds a reference), and take one reference on
 * it. 'label' is borrowed (the registry keeps a copy). Returns a pointer
 * valid until that reference is released; aborts when out of memory. */
struct fo_endpoint_stats *fo_metrics_endpoint(struct fo_metrics *m, const char *label);
struct fo_backend_stats *fo_metrics_backend(struct fo_metrics *m, struct fo_endpoint_stats *ep,
                                            const char *label);

/* Release one reference taken by fo_metrics_endpoint / fo_metrics_backend.
 * After the last one nothing may count into the series: the next successful
 * fo_metrics_write shows it one last time and frees it (an endpoint only
 * once its backends are gone too), unless it is registered again first.
 * NULL is a no-op. */
void fo_metrics_endpoint_release(struct fo_metrics *m, struct fo_endpoint_stats *ep);
void fo_metrics_backend_release(struct fo_metrics *m, struct fo_backend_stats *b);

/* Count one answered request / one ended backend call. Lock-free. */
void fo_metrics_request(struct fo_endpoint_stats *ep, unsigned status, int64_t us);
void fo_metrics_call(struct fo_backend_stats *b, enum fo_outcome o, int64_t us);

/* Count a request refused by its auth, by reason (enum fo_auth_reason). Lock-free. */
void fo_metrics_auth_failure(struct fo_metrics *m, unsigned reason);
/* Count 'n' TLS handshakes (new https connections) of backend 'b'. Lock-free. */
void fo_metrics_tls_handshakes(struct fo_backend_stats *b, long n);

/* Count a config reload attempt. Lock-free. */
void fo_metrics_reload(struct fo_metrics *m, int ok);

/* Point-in-time values the registry does not own. */
struct fo_gauges {
    int64_t requests_in_flight;   /* Suspended on the pool. */
    uint64_t jobs_queued;         /* Fan-outs waiting in worker inboxes. */
    uint64_t calls_in_flight;     /* Backend calls running. */
    uint64_t calls_waiting;       /* Of those, waiting for a max_host_connections slot. */
    uint64_t client_connections;  /* Open client connections. */
    uint64_t backend_connections; /* New backend connections opened, ever. */
    int ready;                    /* 1 while serving, 0 while draining. */
};

/* Append label value 's' (borrowed, NUL-terminated) to 'out' with Prometheus escaping
 * (\\, \", \n). Also for other modules' series (resil_metrics.c). Returns 0 or the fo_buf
 * errors. Thread-safe. */
int fo_metrics_put_label(struct fo_buf *out, const char *s);

/* Append the whole exposition to 'out' (borrowed), holding the registry
 * mutex while it walks the series; on success, then free the released
 * series it wrote. Returns 0 or the fo_buf errors. */
int fo_metrics_write(struct fo_metrics *m, const struct fo_gauges *g, struct fo_buf *out);

#endif /* FO_METRICS_H */
