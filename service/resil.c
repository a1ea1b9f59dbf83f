/* resil.c -- the resilience state store and the decisions it gives (see resil.h).
 *
 * DESIGN
 * A state is created on the first binding that names its definition and lives while any
 * binding holds it; bindings are made by the server for each runtime (start-up, reload),
 * and a runtime's binding is dropped with the runtime, after its last request. So the hot
 * path never looks a state up: a call carries a pointer to it (fo_resil_plan), and every
 * mechanism inside is thread-safe on its own -- the round-robin counter, the hedge budget
 * and the counters are atomics, a closed breaker admits with one atomic load, and the
 * buckets, latency windows and stale caches each have their own small mutex. The store's
 * mutex is taken only by bind and unbind. The structures are in resil_int.h, which
 * resil_metrics.c (the Prometheus series of these states) reads too. */
#include "resil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "alloc.h"
#include "breaker.h"
#include "clock.h"
#include "hedge.h"
#include "hosts.h"
#include "ratelimit.h"
#include "resil_int.h"
#include "stale.h"

int fo_resil_create(struct fo_resil **out)
{
    struct fo_resil *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    fo_retry_budget_init(&s->budget);
    *out = s;
    return 0;
}

void fo_resil_destroy(struct fo_resil *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static struct fo_resil_backend *backend_new(struct fo_resil *s, const struct fo_backend_conf *bc)
{
    const struct fo_resil_conf *rc = &bc->resil;
    struct fo_resil_backend *b = fo_xcalloc(sizeof *b);
    b->store = s;
    b->hash = bc->def_hash;
    b->nhosts = rc->nhosts;
    atomic_init(&b->rr, 0);
    if (rc->breaker.on) {
        b->nbreakers = rc->nhosts > 0 ? rc->nhosts : 1;
        b->breakers = fo_xcalloc(b->nbreakers * sizeof *b->breakers);
        for (size_t i = 0; i < b->nbreakers; i++)
            fo_breaker_init(&b->breakers[i]);
    }
    if (rc->rate_limit.on)
        b->rate = fo_ratelimit_create(rc->rate_limit.rps, rc->rate_limit.burst, false, 1);
    if (rc->hedge.on && rc->hedge.after_pct > 0) {
        b->lat = fo_xcalloc(sizeof *b->lat);
        fo_latwin_init(b->lat);
    }
    fo_hedge_budget_init(&b->hedge);
    b->hedge_percent = rc->hedge.max_extra_percent;
    if (rc->stale_ms > 0)
        b->stale = fo_stale_create(rc->stale_max_entries, rc->stale_max_bytes);
    for (size_t i = 0; i < FO_RC_COUNT; i++)
        atomic_init(&b->count[i], 0);
    return b;
}

static void backend_free(struct fo_resil_backend *b)
{
    for (size_t i = 0; i < b->nbreakers; i++)
        fo_breaker_destroy(&b->breakers[i]);
    free(b->breakers);
    fo_ratelimit_destroy(b->rate);
    if (b->lat)
        fo_latwin_destroy(b->lat);
    free(b->lat);
    fo_stale_destroy(b->stale);
    free(b);
}

/* The store's mutex held. */
static struct fo_resil_backend *backend_get(struct fo_resil *s, const struct fo_backend_conf *bc)
{
    struct fo_resil_backend *b = s->backends;
    while (b && !(b->hash == bc->def_hash && b->nhosts == bc->resil.nhosts))
        b = b->next;
    if (!b) {
        b = backend_new(s, bc);
        b->next = s->backends;
        s->backends = b;
    }
    b->refs++;
    return b;
}

/* The store's mutex held. */
static struct fo_resil_endpoint *endpoint_get(struct fo_resil *s, const struct fo_endpoint_conf *e)
{
    struct fo_resil_endpoint *x = s->endpoints;
    while (x && x->hash != e->rate_hash)
        x = x->next;
    if (!x) {
        const struct fo_rate_conf *r = &e->rate_limit;
        x = fo_xcalloc(sizeof *x);
        x->hash = e->rate_hash;
        x->rate = fo_ratelimit_create(r->rps, r->burst, r->key != FO_RATE_KEY_NONE, r->max_clients);
        atomic_init(&x->limited, 0);
        x->next = s->endpoints;
        s->endpoints = x;
    }
    x->refs++;
    return x;
}

struct fo_resil_bind *fo_resil_bind(struct fo_resil *s, const struct fo_config *cfg)
{
    struct fo_resil_bind *b = fo_xcalloc(sizeof *b);
    b->store = s;
    b->cfg = cfg;
    b->be = fo_xcalloc((cfg->nendpoints + 1) * sizeof *b->be);
    b->ep = fo_xcalloc((cfg->nendpoints + 1) * sizeof *b->ep);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *e = &cfg->endpoints[i];
        if (e->rate_limit.on)
            b->ep[i] = endpoint_get(s, e);
        b->be[i] = fo_xcalloc((e->nbackends + 1) * sizeof **b->be);
        for (size_t k = 0; k < e->nbackends; k++) {
            if (fo_resil_conf_any(&e->backends[k].resil))
                b->be[i][k] = backend_get(s, &e->backends[k]);
        }
    }
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->budget.percent, cfg->retry_budget.percent);
    atomic_store(&s->budget.min, cfg->retry_budget.min);
    return b;
}

void fo_resil_unbind(struct fo_resil_bind *b)
{
    if (!b)
        return;
    struct fo_resil *s = b->store;
    const struct fo_config *cfg = b->cfg;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        for (size_t k = 0; k < cfg->endpoints[i].nbackends; k++) {
            struct fo_resil_backend *x = b->be[i][k];
            if (!x || --x->refs > 0)
                continue;
            struct fo_resil_backend **p = &s->backends;
            while (*p != x)
                p = &(*p)->next;
            *p = x->next;
            backend_free(x);
        }
        free(b->be[i]);
        struct fo_resil_endpoint *e = b->ep[i];
        if (e && --e->refs == 0) {
            struct fo_resil_endpoint **p = &s->endpoints;
            while (*p != e)
                p = &(*p)->next;
            *p = e->next;
            fo_ratelimit_destroy(e->rate);
            free(e);
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(b->be);
    free(b->ep);
    free(b);
}

/* ---- the request side ---- */

void fo_resil_plan(const struct fo_resil_bind *b, size_t ep_index, struct fo_plan *p)
{
    const struct fo_endpoint_conf *e = &b->cfg->endpoints[ep_index];
    for (size_t i = 0; i < p->n && i < e->nbackends; i++) {
        p->calls[i].resil = b->be[ep_index][i];
        p->calls[i].rconf = &e->backends[i].resil;
        p->calls[i].tries.host = -1;
    }
}

const struct fo_rate_conf *fo_resil_endpoint_rate(const struct fo_resil_bind *b, size_t ep_index)
{
    return b->ep[ep_index] ? &b->cfg->endpoints[ep_index].rate_limit : NULL;
}

bool fo_resil_admit(const struct fo_resil_bind *b, size_t ep_index, const char *key, size_t klen,
                    int64_t *retry_after_s)
{
    struct fo_resil_endpoint *e = b->ep[ep_index];
    int64_t wait_us = 0;
    if (!e || fo_ratelimit_take(e->rate, key, klen, fo_clock_us(), &wait_us))
        return true;
    atomic_fetch_add_explicit(&e->limited, 1, memory_order_relaxed);
    *retry_after_s = (wait_us + 999999) / 1000000;
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return false;
}

static struct fo_breaker *breaker_of(struct fo_resil_backend *b, int host)
{
    if (!b->breakers)
        return NULL;
    return &b->breakers[host >= 0 && (size_t)host < b->nbreakers ? (size_t)host : 0];
}

int fo_resil_verdict(enum fo_outcome transport, int status, bool own_timeout)
{
    switch (transport) {
    case FO_OK:
        return status >= 500 ? 1 : 0;
    case FO_ERR_CONNECT:
    case FO_ERR_INVALID_JSON:
        return 1;
    case FO_ERR_STATUS:
        return status >= 500 ? 1 : 0;
    case FO_ERR_TIMEOUT:
        return own_timeout ? 1 : -1;
    default:
        return -1;
    }
}

void fo_resil_attempt_end(struct fo_call *c, int host, bool probe, int failure, int64_t now_us)
{
    struct fo_breaker *br = breaker_of(c->resil, host);
    if (!br)
        return;
    if (failure < 0)
        fo_breaker_release(br, probe, now_us);
    else
        fo_breaker_record(br, c->rconf->breaker.failures, c->rconf->breaker.open_ms, failure > 0,
                          probe, now_us);
}

void fo_resil_call_judged(struct fo_call *c)
{
    struct fo_resil_backend *b = c->resil;
    int64_t now = fo_clock_us();
    if (c->tries.winner > 0) /* An attempt gave the result: it counts for its breaker. */
        fo_resil_attempt_end(c, c->tries.host, c->tries.probe,
                             fo_resil_verdict(c->outcome, c->status, c->tries.own_timeout), now);
    if (b->stale && c->outcome == FO_OK)
        fo_stale_put(b->stale, c->url, c->json.p, c->json.len, now);
}

bool fo_resil_stale(struct fo_call *c)
{
    struct fo_resil_backend *b = c->resil;
    int64_t now = fo_clock_us();
    if (!b->stale || c->outcome == FO_OK)
        return false;
    if (c->outcome == FO_ERR_CANCELLED)
        return false; /* Nobody waits for it. */
    size_t len = 0;
    int64_t age = 0;
    char *v = fo_stale_get(b->stale, c->url, c->rconf->stale_ms * 1000, now, &len, &age);
    if (!v)
        return false;
    fo_call_drop_body(c);
    c->resp = v;
    c->resp_len = len;
    c->budget = NULL; /* Not charged: a copy the size of what was charged before. */
    c->json.p = v;
    c->json.len = len;
    c->outcome = FO_OK;
    c->tries.stale = true;
    c->tries.age_ms = age / 1000;
    fo_resil_count(c, FO_RC_STALE);
    return true;
}

const char *fo_resil_host(const struct fo_call *c)
{
    if (!c->resil || c->tries.host < 0 || (size_t)c->tries.host >= c->rconf->nhosts)
        return NULL;
    return c->rconf->hosts[c->tries.host];
}

int fo_resil_put_report(struct fo_buf *out, const struct fo_call *c)
{
    if (!c->resil)
        return 0;
    const struct fo_call_tries *t = &c->tries;
    int rc = fo_buf_printf(out, ",\"attempts\":%u", t->attempts);
    if (rc == 0 && t->hedged)
        rc = fo_buf_printf(out, ",\"hedged\":true,\"winner\":%u", t->winner);
    const char *host = fo_resil_host(c);
    if (rc == 0 && host) /* An origin passed --check: no quote, backslash or control byte. */
        rc = fo_buf_printf(out, ",\"host\":\"%s\"", host);
    if (rc == 0 && t->stale)
        rc = fo_buf_printf(out, ",\"stale\":true,\"age_ms\":%lld", (long long)t->age_ms);
    if (rc == 0 && t->budget_exhausted)
        rc = fo_buf_puts(out, ",\"retry_budget\":\"exhausted\"");
    return rc;
}

/* ---- the pool side ---- */

void fo_resil_count(struct fo_call *c, enum fo_resil_count what)
{
    atomic_fetch_add_explicit(&c->resil->count[what], 1, memory_order_relaxed);
}

void fo_resil_call_begin(struct fo_call *c)
{
    atomic_fetch_add_explicit(&c->resil->store->budget.calls, 1, memory_order_relaxed);
}

void fo_resil_call_end(struct fo_call *c)
{
    atomic_fetch_sub_explicit(&c->resil->store->budget.calls, 1, memory_order_relaxed);
}

struct fo_retry_budget *fo_resil_budget(struct fo_call *c)
{
    return &c->resil->store->budget;
}

/* What fo_hosts_pick asks of each host. */
struct pick {
    struct fo_resil_backend *b;
    uint64_t tried;
    bool untried_only;
    int64_t now_us;
    bool probe; /* Out: the host's breaker let it through as the probe. */
};

static bool host_ok(void *arg, size_t i)
{
    struct pick *p = arg;
    if (p->untried_only && i < 64 && (p->tried & (UINT64_C(1) << i)))
        return false;
    struct fo_breaker *br = breaker_of(p->b, (int)i);
    if (!br)
        return true;
    enum fo_breaker_verdict v = fo_breaker_allow(br, p->now_us);
    p->probe = v == FO_BREAKER_PROBE;
    return v != FO_BREAKER_DENY;
}

enum fo_resil_gate fo_resil_attempt_begin(struct fo_call *c, uint64_t tried, bool primary,
                                          int64_t now_us, int *host, bool *probe)
{
    struct fo_resil_backend *b = c->resil;
    *host = -1;
    *probe = false;
    if (b->nhosts > 0) {
        struct pick p = {.b = b, .tried = tried, .untried_only = true, .now_us = now_us};
        int h = fo_hosts_pick(&b->rr, b->nhosts, host_ok, &p);
        if (h < 0 && tried) {
            p.untried_only = false;
            h = fo_hosts_pick(&b->rr, b->nhosts, host_ok, &p);
        }
        if (h < 0) {
            fo_resil_count(c, FO_RC_CIRCUIT_OPEN);
            return FO_RESIL_CIRCUIT_OPEN;
        }
        *host = h;
        *probe = p.probe;
    } else if (b->breakers) {
        enum fo_breaker_verdict v = fo_breaker_allow(&b->breakers[0], now_us);
        if (v == FO_BREAKER_DENY) {
            fo_resil_count(c, FO_RC_CIRCUIT_OPEN);
            return FO_RESIL_CIRCUIT_OPEN;
        }
        *probe = v == FO_BREAKER_PROBE;
    }
    int64_t wait = 0;
    if (b->rate && !fo_ratelimit_take(b->rate, NULL, 0, now_us, &wait)) {
        fo_resil_attempt_end(c, *host, *probe, -1, now_us); /* Frees a probe slot. */
        fo_resil_count(c, FO_RC_RATE_LIMITED);
        return FO_RESIL_RATE_LIMITED;
    }
    if (primary)
        fo_hedge_budget_deposit(&b->hedge, b->hedge_percent);
    return FO_RESIL_GO;
}

void fo_resil_latency(struct fo_call *c, int64_t us, int64_t now_us)
{
    if (c->resil->lat)
        fo_latwin_add(c->resil->lat, us, now_us);
}

int64_t fo_resil_hedge_delay_us(struct fo_call *c, int64_t now_us)
{
    const struct fo_hedge_conf *h = &c->rconf->hedge;
    if (!h->on)
        return -1;
    if (h->after_ms > 0)
        return h->after_ms * 1000;
    int64_t q = c->resil->lat ? fo_latwin_quantile(c->resil->lat, h->after_pct, now_us) : -1;
    if (q < 0)
        return -1;
    return q < 1000 ? 1000 : q;
}

bool fo_resil_hedge_take(struct fo_call *c)
{
    return fo_hedge_budget_take(&c->resil->hedge);
}
