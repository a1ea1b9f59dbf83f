/* metrics.c -- counters and histograms in the Prometheus text format. See metrics.h.
 *
 * The hot path is two or three relaxed atomic adds per request and per call
 * on series registered in advance; only registration and exposition take the
 * registry mutex. Histograms keep non-cumulative bucket counts (one add per
 * observation) and are summed into Prometheus' cumulative form on output.
 *
 * Series are reference-counted per registration, and the counts live under
 * the registry mutex, not in atomics: registration, release and exposition
 * all take it, while the hot path never touches a count. A series may only
 * be freed once nobody counts into it; the server guarantees that by
 * releasing a config's series when the last request holding that config is
 * done, after its last add.
 *
 * The last release does not free at once: the series becomes an orphan that
 * the next successful exposition writes one last time (so the adds since the
 * previous scrape are not lost) and then frees. A label registered again
 * before that revives its orphan, counts intact, so a backend that leaves a
 * config and comes back between two scrapes looks continuous. Orphans are
 * also swept without a scrape once they outnumber the live series by
 * FO_METRICS_ORPHAN_SLACK, which bounds memory by the configs in use even
 * when nobody scrapes. */
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "version.h"

/* Bucket upper bounds, microseconds; the last bucket is +Inf. */
static const int64_t bounds_us[FO_HIST_BUCKETS - 1] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

struct fo_metrics {
    pthread_mutex_t lock;                /* Guards the lists and counts (not the counters). */
    struct fo_endpoint_stats *endpoints; /* Registration order reversed; 'lock'. */
    size_t nlive;                        /* Series with references; 'lock'. */
    size_t norphans;                     /* Series without, still listed; 'lock'. */
    atomic_uint_fast64_t reloads_ok, reloads_failed;
    atomic_uint_fast64_t auth_failures[FO_AUTH_NREASONS]; /* By enum fo_auth_reason. */
};

int fo_metrics_create(struct fo_metrics **out)
{
    struct fo_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
}

static void free_backend(struct fo_backend_stats *b)
{
    free(b->label);
    free(b);
}

static void free_endpoint(struct fo_endpoint_stats *ep)
{
    struct fo_backend_stats *b = ep->backends;
    while (b) {
        struct fo_backend_stats *bn = b->next;
        free_backend(b);
        b = bn;
    }
    free(ep->label);
    free(ep);
}

void fo_metrics_destroy(struct fo_metrics *m)
{
    if (!m)
        return;
    struct fo_endpoint_stats *ep = m->endpoints;
    while (ep) {
        struct fo_endpoint_stats *next = ep->next;
        free_endpoint(ep);
        ep = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* One more reference in 'refs'; the first revives an orphan. Registry mutex held. */
static void take(struct fo_metrics *m, long *refs)
{
    if ((*refs)++ > 0)
        return;
    m->norphans--;
    m->nlive++;
}

struct fo_endpoint_stats *fo_metrics_endpoint(struct fo_metrics *m, const char *label)
{
    pthread_mutex_lock(&m->lock);
    struct fo_endpoint_stats *ep = m->endpoints;
    while (ep && strcmp(ep->label, label) != 0)
        ep = ep->next;
    if (!ep) {
        ep = fo_xcalloc(sizeof *ep);
        ep->label = fo_xstrdup(label);
        ep->next = m->endpoints;
        m->endpoints = ep;
        m->norphans++; /* Until taken below. */
    }
    take(m, &ep->refs);
    pthread_mutex_unlock(&m->lock);
    return ep;
}

struct fo_backend_stats *fo_metrics_backend(struct fo_metrics *m, struct fo_endpoint_stats *ep,
                                            const char *label)
{
    pthread_mutex_lock(&m->lock);
    struct fo_backend_stats *b = ep->backends;
    while (b && strcmp(b->label, label) != 0)
        b = b->next;
    if (!b) {
        b = fo_xcalloc(sizeof *b);
        b->label = fo_xstrdup(label);
        b->next = ep->backends;
        ep->backends = b;
        m->norphans++; /* Until taken below. */
    }
    take(m, &b->refs);
    pthread_mutex_unlock(&m->lock);
    return b;
}

/* Free every orphan: backends without references, then endpoints without
 * references or backends. Registry mutex held. */
static void sweep(struct fo_metrics *m)
{
    struct fo_endpoint_stats **pe = &m->endpoints;
    while (*pe) {
        struct fo_endpoint_stats *ep = *pe;
        struct fo_backend_stats **pb = &ep->backends;
        while (*pb) {
            struct fo_backend_stats *b = *pb;
            if (b->refs > 0) {
                pb = &b->next;
                continue;
            }
            *pb = b->next;
            free_backend(b);
            m->norphans--;
        }
        if (ep->refs > 0 || ep->backends) {
            pe = &ep->next;
            continue;
        }
        *pe = ep->next;
        free_endpoint(ep);
        m->norphans--;
    }
}

/* Drop one reference from 'refs'; the last one makes an orphan. Registry
 * mutex held. */
static void put(struct fo_metrics *m, long *refs)
{
    if (--*refs > 0)
        return;
    m->nlive--;
    m->norphans++;
    if (m->norphans > m->nlive + FO_METRICS_ORPHAN_SLACK)
        sweep(m);
}

void fo_metrics_endpoint_release(struct fo_metrics *m, struct fo_endpoint_stats *ep)
{
    if (!ep)
        return;
    pthread_mutex_lock(&m->lock);
    put(m, &ep->refs);
    pthread_mutex_unlock(&m->lock);
}

void fo_metrics_backend_release(struct fo_metrics *m, struct fo_backend_stats *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&m->lock);
    put(m, &b->refs);
    pthread_mutex_unlock(&m->lock);
}

static void observe(struct fo_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t i = 0;
    while (i < FO_HIST_BUCKETS - 1 && us > bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

void fo_metrics_request(struct fo_endpoint_stats *ep, unsigned status, int64_t us)
{
    unsigned cls = status / 100;
    atomic_fetch_add_explicit(&ep->requests[cls >= 1 && cls <= 5 ? cls : 0], 1,
                              memory_order_relaxed);
    observe(&ep->duration, us);
}

void fo_metrics_call(struct fo_backend_stats *b, enum fo_outcome o, int64_t us)
{
    if ((unsigned)o < FO_OUTCOME_COUNT)
        atomic_fetch_add_explicit(&b->calls[o], 1, memory_order_relaxed);
    observe(&b->duration, us);
}

void fo_metrics_auth_failure(struct fo_metrics *m, unsigned reason)
{
    if (reason < FO_AUTH_NREASONS)
        atomic_fetch_add_explicit(&m->auth_failures[reason], 1, memory_order_relaxed);
}

void fo_metrics_tls_handshakes(struct fo_backend_stats *b, long n)
{
    atomic_fetch_add_explicit(&b->tls_handshakes, (uint64_t)n, memory_order_relaxed);
}

void fo_metrics_reload(struct fo_metrics *m, int ok)
{
    atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_failed, 1, memory_order_relaxed);
}

int fo_metrics_put_label(struct fo_buf *out, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        if (*s == '\\' || *s == '"')
            rc = fo_buf_putc(out, '\\') ?: fo_buf_putc(out, *s);
        else if (*s == '\n')
            rc = fo_buf_puts(out, "\\n");
        else
            rc = fo_buf_putc(out, *s);
    }
    return rc;
}

/* name{labels,le="..."} lines, _sum and _count for one histogram. 'labels'
 * is the already escaped label text without braces. */
static int put_hist(struct fo_buf *out, const char *name, const char *labels,
                    const struct fo_hist *h)
{
    uint64_t cum = 0;
    int rc = 0;
    for (size_t i = 0; i < FO_HIST_BUCKETS && rc == 0; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < FO_HIST_BUCKETS - 1)
            rc = fo_buf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
                               (double)bounds_us[i] / 1e6, (unsigned long long)cum);
        else
            rc = fo_buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                               (unsigned long long)cum);
    }
    if (rc == 0)
        rc = fo_buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
                           (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6,
                           name, labels, (unsigned long long)cum);
    return rc;
}

/* Escaped label text for an endpoint (and backend) into 'lb'. */
static int labels(struct fo_buf *lb, const char *ep, const char *backend)
{
    fo_buf_reset(lb);
    int rc = fo_buf_puts(lb, "endpoint=\"") ?: fo_metrics_put_label(lb, ep) ?: fo_buf_putc(lb, '"');
    if (rc == 0 && backend)
        rc = fo_buf_puts(lb, ",backend=\"") ?: fo_metrics_put_label(lb, backend)
                 ?: fo_buf_putc(lb, '"');
    return rc;
}

int fo_metrics_write(struct fo_metrics *m, const struct fo_gauges *g, struct fo_buf *out)
{
    static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    struct fo_buf lb;
    fo_buf_init(&lb, 64 * 1024);
    int rc = fo_buf_printf(
        out,
        "# HELP fanout_info Build information.\n# TYPE fanout_info gauge\n"
        "fanout_info{version=\"%s\"} 1\n"
        "# HELP fanout_ready Whether the service accepts new requests (0 while draining).\n"
        "# TYPE fanout_ready gauge\nfanout_ready %d\n"
        "# HELP fanout_requests_in_flight Requests waiting on backend calls.\n"
        "# TYPE fanout_requests_in_flight gauge\nfanout_requests_in_flight %lld\n"
        "# HELP fanout_jobs_queued Fan-outs waiting in worker queues.\n"
        "# TYPE fanout_jobs_queued gauge\nfanout_jobs_queued %llu\n"
        "# HELP fanout_backend_calls_in_flight Backend calls running.\n"
        "# TYPE fanout_backend_calls_in_flight gauge\nfanout_backend_calls_in_flight %llu\n"
        "# HELP fanout_backend_calls_waiting Backend calls waiting for a connection slot "
        "(max_host_connections).\n"
        "# TYPE fanout_backend_calls_waiting gauge\nfanout_backend_calls_waiting %llu\n"
        "# HELP fanout_client_connections Open client connections.\n"
        "# TYPE fanout_client_connections gauge\nfanout_client_connections %llu\n"
        "# HELP fanout_backend_connections_opened_total New connections opened to backends.\n"
        "# TYPE fanout_backend_connections_opened_total counter\n"
        "fanout_backend_connections_opened_total %llu\n"
        "# HELP fanout_config_reloads_total Configuration reloads by result.\n"
        "# TYPE fanout_config_reloads_total counter\n"
        "fanout_config_reloads_total{result=\"ok\"} %llu\n"
        "fanout_config_reloads_total{result=\"error\"} %llu\n",
        FO_VERSION, g->ready, (long long)g->requests_in_flight, (unsigned long long)g->jobs_queued,
        (unsigned long long)g->calls_in_flight, (unsigned long long)g->calls_waiting,
        (unsigned long long)g->client_connections, (unsigned long long)g->backend_connections,
        (unsigned long long)atomic_load(&m->reloads_ok),
        (unsigned long long)atomic_load(&m->reloads_failed));
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_auth_failures_total Requests refused by their "
                              "endpoint's auth, by reason.\n"
                              "# TYPE fanout_auth_failures_total counter\n");
    for (unsigned i = 0; i < FO_AUTH_NREASONS && rc == 0; i++)
        rc = fo_buf_printf(out, "fanout_auth_failures_total{reason=\"%s\"} %llu\n",
                           fo_auth_reason_name(i),
                           (unsigned long long)atomic_load(&m->auth_failures[i]));

    pthread_mutex_lock(&m->lock);
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_requests_total Answered requests by endpoint and "
                              "status class.\n# TYPE fanout_requests_total counter\n");
    for (struct fo_endpoint_stats *ep = m->endpoints; ep && rc == 0; ep = ep->next) {
        rc = labels(&lb, ep->label, NULL);
        for (size_t c = 0; c < 6 && rc == 0; c++)
            rc = fo_buf_printf(
                out, "fanout_requests_total{%s,code=\"%s\"} %llu\n", lb.data, classes[c],
                (unsigned long long)atomic_load_explicit(&ep->requests[c], memory_order_relaxed));
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_request_duration_seconds Time from request to "
                              "answer.\n# TYPE fanout_request_duration_seconds histogram\n");
    for (struct fo_endpoint_stats *ep = m->endpoints; ep && rc == 0; ep = ep->next) {
        rc = labels(&lb, ep->label, NULL);
        if (rc == 0)
            rc = put_hist(out, "fanout_request_duration_seconds", lb.data, &ep->duration);
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_backend_calls_total Backend calls by outcome.\n"
                              "# TYPE fanout_backend_calls_total counter\n");
    for (struct fo_endpoint_stats *ep = m->endpoints; ep && rc == 0; ep = ep->next) {
        for (struct fo_backend_stats *b = ep->backends; b && rc == 0; b = b->next) {
            rc = labels(&lb, ep->label, b->label);
            for (int o = 0; o < FO_OUTCOME_COUNT && rc == 0; o++)
                rc = fo_buf_printf(
                    out, "fanout_backend_calls_total{%s,outcome=\"%s\"} %llu\n", lb.data,
                    fo_outcome_name((enum fo_outcome)o),
                    (unsigned long long)atomic_load_explicit(&b->calls[o], memory_order_relaxed));
        }
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_backend_call_duration_seconds Backend call time.\n"
                              "# TYPE fanout_backend_call_duration_seconds histogram\n");
    for (struct fo_endpoint_stats *ep = m->endpoints; ep && rc == 0; ep = ep->next) {
        for (struct fo_backend_stats *b = ep->backends; b && rc == 0; b = b->next) {
            rc = labels(&lb, ep->label, b->label);
            if (rc == 0)
                rc = put_hist(out, "fanout_backend_call_duration_seconds", lb.data, &b->duration);
        }
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_backend_tls_handshakes_total New TLS connections "
                              "to a backend (reuse is working when this stays flat).\n"
                              "# TYPE fanout_backend_tls_handshakes_total counter\n");
    for (struct fo_endpoint_stats *ep = m->endpoints; ep && rc == 0; ep = ep->next) {
        for (struct fo_backend_stats *b = ep->backends; b && rc == 0; b = b->next) {
            rc = labels(&lb, ep->label, b->label);
            if (rc == 0)
                rc = fo_buf_printf(out, "fanout_backend_tls_handshakes_total{%s} %llu\n", lb.data,
                                   (unsigned long long)atomic_load_explicit(&b->tls_handshakes,
                                                                            memory_order_relaxed));
        }
    }
    if (rc == 0) /* Orphans were written one last time. */
        sweep(m);
    pthread_mutex_unlock(&m->lock);
    fo_buf_free(&lb);
    return rc;
}
