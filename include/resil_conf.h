/* resil_conf.h -- the resilience settings of a backend and an endpoint, as configured.
 *
 * Parsed by config_resil.c (rows of the schema tables) and read by the resilience modules
 * (hosts.c, retry.c, breaker.c, ratelimit.c, hedge.c, stale.c through resil.c). Every
 * object is off ('on' false) unless its key is given.
 * Ownership: part of the config (config.h); strings from malloc(), freed with it.
 * Threads: immutable once loaded; read from any thread. */
#ifndef FO_RESIL_CONF_H
#define FO_RESIL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most origins in one backend's "hosts" (a call's tried set is a 64-bit mask). */
#define FO_MAX_HOSTS 64

/* What a retry is for ("retry": {"on": [...]}). */
enum {
    FO_RETRY_CONNECT = 1u << 0, /* No connection, or it broke before an answer. */
    FO_RETRY_TIMEOUT = 1u << 1, /* The attempt's own try_timeout_ms passed. */
    FO_RETRY_5XX = 1u << 2,     /* Any 5xx status. */
    FO_RETRY_502 = 1u << 3,
    FO_RETRY_503 = 1u << 4,
    FO_RETRY_504 = 1u << 5,
    FO_RETRY_429 = 1u << 6,
};

struct fo_retry_conf {
    bool on;                /* "retry" was given. */
    unsigned attempts;      /* Attempts including the first, 2..5 (default 2). */
    unsigned on_mask;       /* FO_RETRY_* bits; default connect and 503. */
    int64_t backoff_ms;     /* Base of the full-jitter backoff, default 25. */
    int64_t try_timeout_ms; /* Per-attempt cap; 0 = none (then a timeout is never retried). */
};

struct fo_hedge_conf {
    bool on;                    /* "hedge" was given. */
    int64_t after_ms;           /* Fixed delay; 0 when 'after' is used. */
    unsigned after_pct;         /* "after": "pNN": that percentile of recent latency; 0 = none. */
    unsigned max_extra_percent; /* Long-run share of extra attempts, default 5. */
};

struct fo_breaker_conf {
    bool on;           /* "breaker" was given. */
    unsigned failures; /* Consecutive counted failures that open it. */
    int64_t open_ms;   /* How long it stays open before one probe. */
};

/* How an endpoint's per-client bucket is chosen. */
enum fo_rate_key { FO_RATE_KEY_NONE = 0, FO_RATE_KEY_CLIENT_IP, FO_RATE_KEY_HEADER };

struct fo_rate_conf {
    bool on;            /* "rate_limit" was given. */
    int64_t rps;        /* Tokens per second, >= 1. */
    int64_t burst;      /* Bucket size; 0 = rps. */
    int key;            /* enum fo_rate_key: one bucket per key, or one for all. */
    char *key_header;   /* FO_RATE_KEY_HEADER: the header name (from malloc()). */
    size_t max_clients; /* Keyed: buckets kept (LRU), default 10000. */
};

/* A backend's resilience settings. */
struct fo_resil_conf {
    char **hosts; /* "http(s)://host[:port]" origins (from malloc()), nhosts of them. */
    size_t nhosts;
    bool idempotent; /* Retry and hedge any method, not only GET/HEAD. */
    struct fo_retry_conf retry;
    struct fo_hedge_conf hedge;
    struct fo_breaker_conf breaker;
    struct fo_rate_conf rate_limit;
    int64_t stale_ms;         /* Serve a good value at most this old on failure; 0 = off. */
    size_t stale_max_entries; /* Distinct URLs kept, default 1000. */
    size_t stale_max_bytes;   /* Bytes of values kept, default 8 MiB. */
};

/* The process's cap on retries in flight ("retry_budget", Envoy's rule). */
struct fo_retry_budget_conf {
    unsigned percent; /* Of calls in flight, default 20. */
    unsigned min;     /* Always allowed, default 3. */
};

/* True when any setting is on: the call then runs under the resilience modules. */
bool fo_resil_conf_any(const struct fo_resil_conf *c);

#endif /* FO_RESIL_CONF_H */
