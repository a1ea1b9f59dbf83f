/* resil_metrics.c -- the Prometheus series of the resilience store (see resil.h): the
 * retry budget, each bound backend's counters and breakers, each endpoint rate limit.
 *
 * It reads a binding's states (resil_int.h) and changes nothing: counters and breaker
 * states are relaxed atomic loads, a rate limit's client count takes that limit's own lock,
 * and the store's mutex is never taken (a binding's states live as long as the binding).
 * Label values are escaped by metrics.c's helper, as for the other series.
 * Threads: any thread that holds the binding (the MHD thread answering GET /metrics). */
#include "resil.h"

#include <stdatomic.h>
#include <stddef.h>

#include "breaker.h"
#include "metrics.h"
#include "ratelimit.h"
#include "resil_int.h"
#include "retry.h"

/* endpoint="GET /x",backend="name" into 'lb'. */
static int labels(struct fo_buf *lb, const struct fo_endpoint_conf *e, const char *backend)
{
    fo_buf_reset(lb);
    int rc = fo_buf_puts(lb, "endpoint=\"") ?: fo_metrics_put_label(lb, e->method)
                 ?: fo_buf_putc(lb, ' ') ?: fo_metrics_put_label(lb, e->path)
                 ?: fo_buf_putc(lb, '"');
    if (rc == 0 && backend)
        rc = fo_buf_puts(lb, ",backend=\"") ?: fo_metrics_put_label(lb, backend)
                 ?: fo_buf_putc(lb, '"');
    return rc;
}

static unsigned long long get(const atomic_uint_fast64_t *a)
{
    return (unsigned long long)atomic_load_explicit(a, memory_order_relaxed);
}

static const char *const state_names[] = {"closed", "open", "half_open"};

int fo_resil_write_metrics(const struct fo_resil_bind *b, struct fo_buf *out)
{
    const struct fo_config *cfg = b->cfg;
    struct fo_buf lb;
    fo_buf_init(&lb, 64 * 1024);
    struct fo_retry_budget *bud = &b->store->budget;
    int rc = fo_buf_printf(
        out,
        "# HELP fanout_retry_budget_refused_total Retries refused by the retry budget.\n"
        "# TYPE fanout_retry_budget_refused_total counter\n"
        "fanout_retry_budget_refused_total %llu\n"
        "# HELP fanout_retries_in_flight Retries granted and not ended.\n"
        "# TYPE fanout_retries_in_flight gauge\nfanout_retries_in_flight %ld\n",
        get(&bud->refused), atomic_load_explicit(&bud->retries, memory_order_relaxed));
    static const struct {
        const char *name, *help;
        enum fo_resil_count first, last;
    } families[] = {
        {"fanout_backend_retries_total", "Retries sent, by reason.", FO_RC_RETRY_CONNECT,
         FO_RC_RETRY_STATUS},
        {"fanout_backend_retry_budget_refused_total", "Retries the retry budget refused.",
         FO_RC_BUDGET_REFUSED, FO_RC_BUDGET_REFUSED},
        {"fanout_backend_hedges_total", "Hedged attempts sent.", FO_RC_HEDGE_SENT,
         FO_RC_HEDGE_SENT},
        {"fanout_backend_hedges_won_total", "Calls whose result came from the hedge.",
         FO_RC_HEDGE_WON, FO_RC_HEDGE_WON},
        {"fanout_backend_circuit_open_total", "Attempts refused by an open breaker.",
         FO_RC_CIRCUIT_OPEN, FO_RC_CIRCUIT_OPEN},
        {"fanout_backend_rate_limited_total", "Calls refused by the backend's rate limit.",
         FO_RC_RATE_LIMITED, FO_RC_RATE_LIMITED},
        {"fanout_backend_stale_total", "Failed calls answered with a stale value.", FO_RC_STALE,
         FO_RC_STALE},
    };
    for (size_t f = 0; f < sizeof families / sizeof *families && rc == 0; f++) {
        rc = fo_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", families[f].name,
                           families[f].help, families[f].name);
        for (size_t i = 0; i < cfg->nendpoints && rc == 0; i++) {
            const struct fo_endpoint_conf *e = &cfg->endpoints[i];
            for (size_t k = 0; k < e->nbackends && rc == 0; k++) {
                struct fo_resil_backend *x = b->be[i][k];
                if (!x)
                    continue;
                rc = labels(&lb, e, e->backends[k].name);
                for (int w = (int)families[f].first; w <= (int)families[f].last && rc == 0; w++) {
                    if (families[f].first != families[f].last)
                        rc = fo_buf_printf(out, "%s{%s,reason=\"%s\"} %llu\n", families[f].name,
                                           lb.data, fo_retry_reason_name((enum fo_retry_reason)(w)),
                                           get(&x->count[w]));
                    else
                        rc = fo_buf_printf(out, "%s{%s} %llu\n", families[f].name, lb.data,
                                           get(&x->count[w]));
                }
            }
        }
    }
    if (rc == 0)
        rc = fo_buf_puts(out,
                         "# HELP fanout_breaker_state Breaker state (0 closed, 1 open, 2 "
                         "half-open), per backend and host.\n# TYPE fanout_breaker_state gauge\n");
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        if (pass == 1)
            rc = fo_buf_puts(out, "# HELP fanout_breaker_transitions_total Breaker state "
                                  "changes, by new state.\n"
                                  "# TYPE fanout_breaker_transitions_total counter\n");
        for (size_t i = 0; i < cfg->nendpoints && rc == 0; i++) {
            const struct fo_endpoint_conf *e = &cfg->endpoints[i];
            for (size_t k = 0; k < e->nbackends && rc == 0; k++) {
                struct fo_resil_backend *x = b->be[i][k];
                const struct fo_resil_conf *r = &e->backends[k].resil;
                for (size_t h = 0; x && h < x->nbreakers && rc == 0; h++) {
                    struct fo_breaker *br = &x->breakers[h];
                    rc = labels(&lb, e, e->backends[k].name) ?: fo_buf_puts(&lb, ",host=\"")
                             ?: fo_metrics_put_label(&lb, r->nhosts ? r->hosts[h] : "")
                             ?: fo_buf_putc(&lb, '"');
                    if (rc == 0 && pass == 0)
                        rc = fo_buf_printf(out, "fanout_breaker_state{%s} %d\n", lb.data,
                                           (int)fo_breaker_state(br));
                    for (int s = 0; s < 3 && rc == 0 && pass == 1; s++) {
                        const atomic_uint_fast64_t *cnt = s == 0   ? &br->to_closed
                                                          : s == 1 ? &br->to_open
                                                                   : &br->to_half_open;
                        rc = fo_buf_printf(out,
                                           "fanout_breaker_transitions_total{%s,to=\"%s\"} "
                                           "%llu\n",
                                           lb.data, state_names[s], get(cnt));
                    }
                }
            }
        }
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_rate_limited_requests_total Requests refused by "
                              "the endpoint's rate limit.\n"
                              "# TYPE fanout_rate_limited_requests_total counter\n");
    for (size_t i = 0; i < cfg->nendpoints && rc == 0; i++) {
        struct fo_resil_endpoint *x = b->ep[i];
        if (!x)
            continue;
        rc = labels(&lb, &cfg->endpoints[i], NULL);
        if (rc == 0)
            rc = fo_buf_printf(out, "fanout_rate_limited_requests_total{%s} %llu\n", lb.data,
                               get(&x->limited));
    }
    if (rc == 0)
        rc = fo_buf_puts(out, "# HELP fanout_rate_limit_clients Per-client buckets held.\n"
                              "# TYPE fanout_rate_limit_clients gauge\n");
    for (size_t i = 0; i < cfg->nendpoints && rc == 0; i++) {
        struct fo_resil_endpoint *x = b->ep[i];
        if (!x || cfg->endpoints[i].rate_limit.key == FO_RATE_KEY_NONE)
            continue;
        rc = labels(&lb, &cfg->endpoints[i], NULL);
        if (rc == 0)
            rc = fo_buf_printf(out, "fanout_rate_limit_clients{%s} %zu\n", lb.data,
                               fo_ratelimit_clients(x->rate));
    }
    fo_buf_free(&lb);
    return rc;
}
