/* resil_int.h -- private to the resilience store (resil.c, resil_metrics.c): the layout of
 * the store, its states and a binding, which resil.h keeps opaque.
 *
 * resil.c owns all of it: it creates and frees the states, binds and unbinds configs, and
 * gives the decisions the request side and the pool ask for; resil_metrics.c only reads a
 * binding's states to write their Prometheus series. Not part of the store's API (resil.h).
 * Threads: the lists and refs are the store's mutex's (bind, unbind); every other field is
 * an atomic or a mechanism with its own lock, read from any thread. */
#ifndef FO_RESIL_INT_H
#define FO_RESIL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "config.h"
#include "hedge.h"
#include "ratelimit.h"
#include "resil.h"
#include "retry.h"
#include "stale.h"

/* One backend definition's state. */
struct fo_resil_backend {
    struct fo_resil *store;        /* Back pointer (the retry budget). */
    uint64_t hash;                 /* Of the definition. */
    long refs;                     /* Bindings holding it; the store's mutex. */
    struct fo_resil_backend *next; /* Store's list; the store's mutex. */
    size_t nhosts;                 /* As configured. */
    atomic_uint rr;                /* Round-robin counter over hosts. */
    struct fo_breaker *breakers;   /* nbreakers of them (one per host, or one), or NULL. */
    size_t nbreakers;
    struct fo_ratelimit *rate;    /* Backend rate limit, or NULL. */
    struct fo_latwin *lat;        /* Hedge "after": recent latency, or NULL. */
    struct fo_hedge_budget hedge; /* Hedge tokens. */
    unsigned hedge_percent;       /* Deposit per primary (max_extra_percent). */
    struct fo_stale *stale;       /* Stale values, or NULL. */
    atomic_uint_fast64_t count[FO_RC_COUNT];
};

/* One endpoint rate limit's state. */
struct fo_resil_endpoint {
    uint64_t hash;
    long refs;                      /* The store's mutex. */
    struct fo_resil_endpoint *next; /* The store's mutex. */
    struct fo_ratelimit *rate;      /* Never NULL. */
    atomic_uint_fast64_t limited;   /* Requests refused. */
};

struct fo_resil {
    pthread_mutex_t lock;                /* Guards the lists and refs. */
    struct fo_resil_backend *backends;   /* 'lock'. */
    struct fo_resil_endpoint *endpoints; /* 'lock'. */
    struct fo_retry_budget budget;       /* Lock-free. */
};

/* One config's references; fixed from fo_resil_bind to fo_resil_unbind. */
struct fo_resil_bind {
    struct fo_resil *store;
    const struct fo_config *cfg;   /* Borrowed: the runtime's. */
    struct fo_resil_backend ***be; /* [nendpoints][nbackends], NULL = no policy. */
    struct fo_resil_endpoint **ep; /* [nendpoints], NULL = no limit. */
};

#endif /* FO_RESIL_INT_H */
