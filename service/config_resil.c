/* config_resil.c -- the schema tables of the resilience keys and their own parsers.
 *
 * The backend keys hosts, idempotent, retry, hedge, breaker, rate_limit and stale_*, the
 * endpoint's rate_limit and the root's retry_budget (see resil_conf.h and README). The
 * tables are rows like config.c's, walked by config_schema.c; a nested object's table check
 * marks it given ('on'). Checks between a backend's keys (hedge needs an idempotent backend,
 * stale_ms a GET one) run from config.c's backend walk, which knows the entry's path. Each
 * backend and endpoint also gets a hash of its definition, so that a reload keeps the state
 * of what did not change (resil.h). */
#include "config_resil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "token.h"

bool fo_resil_conf_any(const struct fo_resil_conf *c)
{
    return c->nhosts > 0 || c->retry.on || c->hedge.on || c->breaker.on || c->rate_limit.on ||
           c->stale_ms > 0;
}

/* ---- retry ---- */

static const struct {
    const char *name;
    unsigned bit;
} retry_on_names[] = {
    {"connect", FO_RETRY_CONNECT}, {"timeout", FO_RETRY_TIMEOUT}, {"5xx", FO_RETRY_5XX},
    {"502", FO_RETRY_502},         {"503", FO_RETRY_503},         {"504", FO_RETRY_504},
    {"429", FO_RETRY_429},
};

static void retry_on_default(struct fo__vctx *c, const struct fo__field *f, void *base)
{
    (void)c;
    *(unsigned *)((char *)base + f->offset) = FO_RETRY_CONNECT | FO_RETRY_503;
}

static bool parse_retry_on(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up)
{
    unsigned *mask = (unsigned *)((char *)base + f->offset);
    const char *want = "must be a non-empty array of \"connect\", \"timeout\", \"5xx\", \"502\", "
                       "\"503\", \"504\" or \"429\"";
    if (!cJSON_IsArray(v) || !v->child) {
        fo__errorf(c, path, "%s", want);
        return false;
    }
    unsigned m = 0;
    size_t i = 0;
    bool ok = true;
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        size_t k = 0;
        size_t n = sizeof retry_on_names / sizeof *retry_on_names;
        while (k < n && !(cJSON_IsString(s) && strcmp(s->valuestring, retry_on_names[k].name) == 0))
            k++;
        if (k == n) {
            char p[300];
            fo__pathf(p, sizeof p, "%s[%zu]", path, i);
            fo__errorf(c, p, "must be one of %s", want + strlen("must be a non-empty array of "));
            ok = false;
            continue;
        }
        m |= retry_on_names[k].bit;
    }
    if (ok)
        *mask = m;
    return ok;
}

static void mark_retry(struct fo__vctx *c, void *base, uint64_t bad)
{
    ((struct fo_retry_conf *)base)->on = true;
}

/* clang-format off */
#define INT(k, t, lo, hi, s, f, d, text)                                                          \
    {.key = k, .type = t, .min = lo, .max = hi, .offset = offsetof(s, f), .def = d, .doc = text}
#define TABLE(f, check) {f, sizeof f / sizeof *f, check}

static const struct fo__field retry_fields[] = {
    INT("attempts", FO_FT_UINT, 2, 5, struct fo_retry_conf, attempts, 2,
        "attempts including the first"),
    {.key = "on", .type = FO_FT_CUSTOM, .parse = parse_retry_on, .init = retry_on_default,
     .offset = offsetof(struct fo_retry_conf, on_mask),
     .schema = "{\"type\": \"array\", \"minItems\": 1, \"items\": {\"enum\": [\"connect\", "
               "\"timeout\", \"5xx\", \"502\", \"503\", \"504\", \"429\"]}, "
               "\"default\": [\"connect\", \"503\"]}",
     .doc = "what is retried: connect, timeout, 5xx, 502, 503, 504, 429"},
    INT("backoff_ms", FO_FT_INT64, 1, 60000, struct fo_retry_conf, backoff_ms, 25,
        "base B of the full-jitter backoff: before retry n a wait in [0, (2^n-1)B), at most 10B"),
    INT("try_timeout_ms", FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, struct fo_retry_conf, try_timeout_ms,
        0, "cap on each attempt in ms; without it a timeout is never retried"),
};
const struct fo__table fo__retry_table = TABLE(retry_fields, mark_retry);

/* ---- hedge ---- */

static bool parse_hedge_after(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                              const char *path, void *base, const void *up)
{
    struct fo_hedge_conf *h = base;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    char *end = NULL;
    long pct = s && s[0] == 'p' && s[1] >= '1' && s[1] <= '9' ? strtol(s + 1, &end, 10) : 0;
    if (!end || *end || pct < 50 || pct > 99) {
        fo__errorf(c, path, "must be a percentile \"p50\" to \"p99\", such as \"p95\"");
        return false;
    }
    h->after_pct = (unsigned)pct;
    return true;
}

/* The pair after_ms / after is checked with the backend (fo__resil_backend_check). */
static void mark_hedge(struct fo__vctx *c, void *base, uint64_t bad)
{
    ((struct fo_hedge_conf *)base)->on = true;
}

static const struct fo__field hedge_fields[] = {
    INT("after_ms", FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, struct fo_hedge_conf, after_ms, 0,
        "send the extra attempt when the first has not answered after this many ms"),
    {.key = "after", .type = FO_FT_CUSTOM, .parse = parse_hedge_after,
     .schema = "{\"type\": \"string\", \"pattern\": \"^p[5-9][0-9]$\"}",
     .doc = "instead of after_ms: that percentile of the backend's latency over 30 s "
            "(at least 1 ms; no hedge before 100 samples)"},
    INT("max_extra_percent", FO_FT_UINT, 1, 100, struct fo_hedge_conf, max_extra_percent, 5,
        "long-run cap on extra attempts, in percent of calls (token budget of 10)"),
};
const struct fo__table fo__hedge_table = TABLE(hedge_fields, mark_hedge);

/* ---- breaker ---- */

static void mark_breaker(struct fo__vctx *c, void *base, uint64_t bad)
{
    ((struct fo_breaker_conf *)base)->on = true;
}

static const struct fo__field breaker_fields[] = {
    {.key = "failures", .type = FO_FT_UINT, .min = 1, .max = 1000000, .required = true,
     .offset = offsetof(struct fo_breaker_conf, failures),
     .doc = "consecutive counted failures (connect, timeout, 5xx, invalid_json) that open it"},
    {.key = "open_ms", .type = FO_FT_INT64, .min = 1, .max = FO_MAX_TIMEOUT_MS, .required = true,
     .offset = offsetof(struct fo_breaker_conf, open_ms),
     .doc = "ms it stays open (calls fail circuit_open) before one probe goes through"},
};
const struct fo__table fo__breaker_table = TABLE(breaker_fields, mark_breaker);

/* ---- rate limits ---- */

static void mark_rate(struct fo__vctx *c, void *base, uint64_t bad)
{
    ((struct fo_rate_conf *)base)->on = true;
}

static bool parse_rate_key(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up)
{
    struct fo_rate_conf *r = base;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    if (s && strcmp(s, "client_ip") == 0) {
        r->key = FO_RATE_KEY_CLIENT_IP;
        return true;
    }
    if (s && strncmp(s, "header:", 7) == 0 && fo_is_token(s + 7, strlen(s + 7))) {
        r->key = FO_RATE_KEY_HEADER;
        free(r->key_header);
        r->key_header = fo__strdup(c, s + 7);
        return r->key_header != NULL;
    }
    fo__errorf(c, path, "must be \"client_ip\" or \"header:<Name>\"");
    return false;
}

#define RATE_ROWS                                                                                  \
    {.key = "rps", .type = FO_FT_INT64, .min = 1, .max = 1000000, .required = true,                \
     .offset = offsetof(struct fo_rate_conf, rps), .doc = "tokens added per second"},              \
    INT("burst", FO_FT_INT64, 1, 1000000, struct fo_rate_conf, burst, 0,                           \
        "bucket size (requests at once); default rps")

static const struct fo__field backend_rate_fields[] = {RATE_ROWS};
const struct fo__table fo__backend_rate_table = TABLE(backend_rate_fields, mark_rate);

static const struct fo__field endpoint_rate_fields[] = {
    RATE_ROWS,
    {.key = "key", .type = FO_FT_CUSTOM, .parse = parse_rate_key,
     .schema = "{\"type\": \"string\", \"pattern\": \"^(client_ip|header:.+)$\"}",
     .doc = "one bucket per client: \"client_ip\" or \"header:<Name>\"; default one for all"},
    INT("max_clients", FO_FT_SIZE, 1, 10000000, struct fo_rate_conf, max_clients, 10000,
        "per-client buckets kept (least recently used dropped)"),
};
const struct fo__table fo__endpoint_rate_table = TABLE(endpoint_rate_fields, mark_rate);

/* ---- the retry budget (root) ---- */

static const struct fo__field budget_fields[] = {
    INT("percent", FO_FT_UINT, 0, 100, struct fo_retry_budget_conf, percent, 20,
        "retries in flight may be this percent of calls in flight"),
    INT("min", FO_FT_UINT, 0, 1000000, struct fo_retry_budget_conf, min, 3,
        "retries in flight always allowed"),
};
const struct fo__table fo__retry_budget_table = TABLE(budget_fields, NULL);
/* clang-format on */

/* ---- hosts ---- */

bool fo__parse_hosts(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                     const char *path, void *base, const void *up)
{
    struct fo_resil_conf *r = (struct fo_resil_conf *)((char *)base + f->offset);
    if (!cJSON_IsArray(v) || !v->child) {
        fo__errorf(c, path, "must be a non-empty array of \"http(s)://host:port\" origins");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > FO_MAX_HOSTS) {
        fo__errorf(c, path, "at most %d hosts", FO_MAX_HOSTS);
        return false;
    }
    r->hosts = calloc(n, sizeof *r->hosts);
    if (!r->hosts) {
        c->oom = true;
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *h = v->child; h; h = h->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        const char *s = cJSON_IsString(h) ? h->valuestring : NULL;
        const char *rest = NULL;
        if (s && strncmp(s, "http://", 7) == 0)
            rest = s + 7;
        else if (s && strncmp(s, "https://", 8) == 0)
            rest = s + 8;
        if (!rest || !rest[0] || rest[0] == ':') {
            fo__errorf(c, p, "must be an \"http(s)://host:port\" origin");
            ok = false;
            continue;
        }
        if (strpbrk(rest, "/?#")) {
            fo__errorf(c, p, "an origin has no path, query or fragment");
            ok = false;
            continue;
        }
        if (strpbrk(rest, "@ {}\\\"")) {
            fo__errorf(c, p, "must be an \"http(s)://host:port\" origin (no user info)");
            ok = false;
            continue;
        }
        const char *colon = strrchr(rest, ':');
        const char *bracket = strrchr(rest, ']');
        if (colon && (!bracket || colon > bracket)) {
            char *end;
            long port = strtol(colon + 1, &end, 10);
            if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535) {
                fo__errorf(c, p, "the port must be from 1 to 65535");
                ok = false;
                continue;
            }
        }
        for (size_t j = 0; j < r->nhosts; j++) {
            if (strcmp(r->hosts[j], s) == 0) {
                fo__errorf(c, p, "duplicate of %s[%zu]", path, j);
                ok = false;
                break;
            }
        }
        if (!ok)
            continue;
        char *d = fo__strdup(c, s);
        if (d)
            r->hosts[r->nhosts++] = d;
    }
    return ok;
}

/* ---- checks between a backend's keys ---- */

void fo__resil_backend_check(struct fo__vctx *c, const char *bp, const struct fo_resil_conf *r,
                             const char *method, const struct fo__table *t, uint64_t bad)
{
    char p[300];
    bool idem =
        r->idempotent || !method || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (r->hedge.on && !(bad & fo__field_bit(t, "hedge"))) {
        fo__pathf(p, sizeof p, "%s.hedge", bp);
        if (!idem)
            fo__errorf(c, p, "needs an idempotent backend (GET, HEAD or \"idempotent\": true)");
        else if ((r->hedge.after_ms > 0) == (r->hedge.after_pct > 0))
            fo__errorf(c, p, "give exactly one of \"after_ms\" and \"after\"");
    }
    if (r->stale_ms > 0 && method && strcmp(method, "GET") != 0) {
        fo__pathf(p, sizeof p, "%s.stale_ms", bp);
        fo__errorf(c, p, "only a GET backend keeps stale values");
    }
}

/* ---- definition hashes ---- */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ^ 0xff; /* Separates "ab","c" from "a","bc". */
}

uint64_t fo__def_hash(const char *a, const char *b, const cJSON *obj)
{
    uint64_t h = 14695981039346656037ull;
    h = fnv(h, a);
    h = fnv(h, b);
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    h = fnv(h, text);
    free(text);
    return h;
}

void fo__resil_conf_free(struct fo_resil_conf *r)
{
    for (size_t i = 0; i < r->nhosts; i++)
        free(r->hosts[i]);
    free(r->hosts);
    free(r->rate_limit.key_header);
}
