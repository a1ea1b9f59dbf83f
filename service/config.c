/* config.c -- the service configuration: JSON text -> validated structs. See config.h.
 *
 * The text is parsed with cJSON, then walked once: each value is checked and
 * copied into the fo_config being built. A check that fails appends one
 * "path: message" line and the walk goes on, so one run reports every
 * mistake; at the end the half-built config is thrown away if any line was
 * written. A limit bounded by another limit is checked as soon as both are
 * read; cross checks between routes (duplicates, the aggregate and probe
 * paths) run last. Both only look at values that were valid on their own, so
 * one mistake gives one line. Reading the file and the listen address live in
 * config_io.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "log.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define MAX_THREADS    256
#define MAX_TIMEOUT_MS 3600000
#define MAX_SIZE       9007199254740991.0 /* 2^53 - 1: every integer below is exact. */
#define MAX_REQUESTS   1024
#define MAX_METHOD_LEN 32
#define ROOT           "(root)"

/* State of one validation run. */
struct vctx {
    struct fo_buf *errors; /* Borrowed; may be NULL (errors only counted). */
    unsigned nerr;         /* Lines written (or that would have been). */
    bool oom;              /* An allocation failed: the result is -ENOMEM. */
};

static void errorf(struct vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append "path: message\n". Failing to record an error still counts it. */
static void errorf(struct vctx *c, const char *path, const char *fmt, ...)
{
    c->nerr++;
    if (!c->errors)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)fo_buf_printf(c->errors, "%s: %s\n", path, msg);
}

/* Printable, bounded rendering of outside text for a message. */
static const char *quote(char *dst, size_t dstlen, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o + 8 >= dstlen) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            dst[o++] = (char)ch;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[ch >> 4];
            dst[o++] = hex[ch & 15];
        }
    }
    dst[o] = '\0';
    return dst;
}

static void pathf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Format a JSON path. Paths are built from our own key names and indexes, so
 * they are short; a truncated one would still point near the mistake. */
static void pathf(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* "path.key", or "key" at the root. */
static void join(char *dst, size_t n, const char *path, const char *key)
{
    if (path[0])
        pathf(dst, n, "%s.%s", path, key);
    else
        pathf(dst, n, "%s", key);
}

static char *xstrdup(struct vctx *c, const char *s)
{
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

/* Report members of 'obj' not named in 'allowed' (NULL-terminated, at most
 * 32 names), and keys given twice (cJSON keeps both; lookups would see only
 * the first). Linear in the members: one bit per allowed name. */
static void check_keys(struct vctx *c, const cJSON *obj, const char *path,
                       const char *const *allowed)
{
    const char *where = path[0] ? path : ROOT;
    char q[96];
    uint32_t seen = 0;
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], m->string) != 0)
            i++;
        if (!allowed[i])
            errorf(c, where, "unknown key \"%s\"", quote(q, sizeof q, m->string));
        else if (seen & (UINT32_C(1) << i))
            errorf(c, where, "duplicate key \"%s\"", quote(q, sizeof q, m->string));
        seen |= allowed[i] ? UINT32_C(1) << i : 0;
    }
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Integer member in [lo, hi]: stores it when valid, leaves *out when absent.
 * Returns false when the member is there but wrong (an error was written). */
static bool get_int(struct vctx *c, const cJSON *obj, const char *path, const char *key, double lo,
                    double hi, int64_t *out)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return true;
    double d = cJSON_IsNumber(v) ? v->valuedouble : lo - 1;
    if (d >= lo && d <= hi && (double)(int64_t)d == d) {
        *out = (int64_t)d;
        return true;
    }
    char p[256];
    join(p, sizeof p, path, key);
    if (hi == MAX_SIZE)
        errorf(c, p, "must be an integer from %.0f to 2^53-1", lo);
    else
        errorf(c, p, "must be an integer from %.0f to %.0f", lo, hi);
    return false;
}

/* get_int for a size_t field (lo >= 0). */
static bool get_size(struct vctx *c, const cJSON *obj, const char *path, const char *key, double lo,
                     double hi, size_t *out)
{
    int64_t v = (int64_t)*out;
    bool ok = get_int(c, obj, path, key, lo, hi, &v);
    *out = (size_t)v;
    return ok;
}

static void get_bool(struct vctx *c, const cJSON *obj, const char *path, const char *key, bool *out)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return;
    }
    char p[256];
    join(p, sizeof p, path, key);
    errorf(c, p, "must be true or false");
}

/* String member: returns it, or NULL when absent (silently) or not a string
 * (with an error). */
static const char *get_string(struct vctx *c, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *v = member(obj, key);
    if (!v)
        return NULL;
    if (cJSON_IsString(v))
        return v->valuestring;
    char p[256];
    join(p, sizeof p, path, key);
    errorf(c, p, "must be a string");
    return NULL;
}

static bool is_method(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_METHOD_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    }
    return true;
}

/* Method member, "GET" when absent. Returns a copy (NULL on error or OOM). */
static char *get_method(struct vctx *c, const cJSON *obj, const char *path)
{
    const cJSON *v = member(obj, "method");
    if (!v)
        return xstrdup(c, "GET");
    if (cJSON_IsString(v) && is_method(v->valuestring))
        return xstrdup(c, v->valuestring);
    char p[256];
    join(p, sizeof p, path, "method");
    errorf(c, p, "must be an upper-case token such as \"GET\"");
    return NULL;
}

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void get_headers(struct vctx *c, const cJSON *obj, const char *path,
                        struct fo_backend_conf *b)
{
    const cJSON *h = member(obj, "headers");
    if (!h)
        return;
    char p[256];
    char q[96];
    join(p, sizeof p, path, "headers");
    if (!cJSON_IsObject(h)) {
        errorf(c, p, "must be an object of strings");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(h);
    if (n == 0)
        return;
    b->headers = calloc(n, sizeof *b->headers);
    if (!b->headers) {
        c->oom = true;
        return;
    }
    for (const cJSON *m = h->child; m; m = m->next) {
        bool ok = m->string[0] != '\0';
        for (const char *s = m->string; *s; s++)
            ok = ok && is_tchar((unsigned char)*s);
        if (!ok) {
            errorf(c, p, "invalid header name \"%s\"", quote(q, sizeof q, m->string));
            continue;
        }
        if (!cJSON_IsString(m) || strpbrk(m->valuestring, "\r\n")) {
            errorf(c, p, "value of \"%s\" must be a string without CR, LF or NUL", m->string);
            continue;
        }
        size_t nlen = strlen(m->string);
        bool dup = false;
        for (size_t i = 0; i < b->nheaders && !dup; i++)
            dup = strncasecmp(b->headers[i], m->string, nlen) == 0 && b->headers[i][nlen] == ':';
        if (dup) {
            errorf(c, p, "duplicate header \"%s\"", m->string);
            continue;
        }
        char *line = NULL;
        if (asprintf(&line, "%s: %s", m->string, m->valuestring) < 0) {
            c->oom = true;
            return;
        }
        b->headers[b->nheaders++] = line;
    }
}

static void parse_backend(struct vctx *c, const cJSON *obj, const char *path,
                          const struct fo_path *pattern, struct fo_backend_conf *b)
{
    static const char *const keys[] = {"name",       "url",      "method", "headers",
                                       "timeout_ms", "required", "merge",  NULL};
    if (!cJSON_IsObject(obj)) {
        errorf(c, path, "must be an object");
        return;
    }
    check_keys(c, obj, path, keys);
    char p[256];
    char err[256];

    const char *name = get_string(c, obj, path, "name");
    join(p, sizeof p, path, "name");
    if (!member(obj, "name"))
        errorf(c, path, "missing key \"name\"");
    else if (name && name[0] == '\0')
        errorf(c, p, "must not be empty");
    else if (name && strcmp(name, "_fanout") == 0)
        errorf(c, p, "\"_fanout\" is reserved");
    else if (name)
        b->name = xstrdup(c, name);

    const char *url = get_string(c, obj, path, "url");
    join(p, sizeof p, path, "url");
    if (!member(obj, "url")) {
        errorf(c, path, "missing key \"url\"");
    } else if (url) {
        b->url = xstrdup(c, url);
        /* Without a valid endpoint path, placeholder errors would be noise. */
        if (pattern) {
            int rc = fo_tmpl_compile(&b->tmpl, url, pattern, err, sizeof err);
            if (rc == -ENOMEM)
                c->oom = true;
            else if (rc < 0)
                errorf(c, p, "%s", err);
        }
    }

    b->method = get_method(c, obj, path);
    get_headers(c, obj, path, b);
    get_int(c, obj, path, "timeout_ms", 1, MAX_TIMEOUT_MS, &b->timeout_ms);
    get_bool(c, obj, path, "required", &b->required);
    get_bool(c, obj, path, "merge", &b->merge);
}

static void parse_endpoint(struct vctx *c, const cJSON *obj, const char *path,
                           struct fo_endpoint_conf *e)
{
    static const char *const keys[] = {"path", "method", "timeout_ms", "report", "backends", NULL};
    if (!cJSON_IsObject(obj)) {
        errorf(c, path, "must be an object");
        return;
    }
    check_keys(c, obj, path, keys);
    char p[256];
    char err[256];

    const char *pat = get_string(c, obj, path, "path");
    join(p, sizeof p, path, "path");
    if (!member(obj, "path")) {
        errorf(c, path, "missing key \"path\"");
    } else if (pat) {
        int rc = fo_path_compile(&e->pattern, pat, err, sizeof err);
        if (rc == -ENOMEM)
            c->oom = true;
        else if (rc < 0)
            errorf(c, p, "%s", err);
        else
            e->path = xstrdup(c, pat);
    }

    e->method = get_method(c, obj, path);
    get_int(c, obj, path, "timeout_ms", 1, MAX_TIMEOUT_MS, &e->timeout_ms);
    get_bool(c, obj, path, "report", &e->report);

    const cJSON *bs = member(obj, "backends");
    join(p, sizeof p, path, "backends");
    if (!bs) {
        errorf(c, path, "missing key \"backends\"");
        return;
    }
    if (!cJSON_IsArray(bs) || !bs->child) {
        errorf(c, p, "must be a non-empty array");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(bs);
    e->backends = calloc(n, sizeof *e->backends);
    if (!e->backends) {
        c->oom = true;
        return;
    }
    e->nbackends = n;
    size_t i = 0;
    for (const cJSON *b = bs->child; b; b = b->next, i++) {
        char bp[256];
        pathf(bp, sizeof bp, "%s[%zu]", p, i);
        parse_backend(c, b, bp, e->pattern, &e->backends[i]);
        const char *name = e->backends[i].name;
        for (size_t j = 0; name && j < i; j++) {
            if (e->backends[j].name && strcmp(e->backends[j].name, name) == 0) {
                char np[300];
                pathf(np, sizeof np, "%s.name", bp);
                errorf(c, np, "duplicate of %s[%zu].name", p, j);
                break;
            }
        }
    }
}

/* "host:port" with a non-empty host and a port 1..65535 (no sign, no spaces). */
static bool is_host_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen > 5)
        return false;
    unsigned port = 0;
    for (const char *d = colon + 1; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        port = port * 10 + (unsigned)(*d - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    for (const char *h = s; h < colon; h++) {
        unsigned char ch = (unsigned char)*h;
        if (ch <= 0x20 || ch >= 0x7f || strchr("@/\\?#%", ch))
            return false;
    }
    if (s[0] == '[')
        return colon[-1] == ']' && colon - s > 2 && !memchr(s + 1, ']', (size_t)(colon - s - 2));
    return memchr(s, ':', (size_t)(colon - s)) == NULL && !memchr(s, '[', (size_t)(colon - s)) &&
           !memchr(s, ']', (size_t)(colon - s));
}

/* A route path without placeholders (the aggregate, the probes): returns a
 * copy, or NULL after an error line (or when out of memory). */
static char *literal_path(struct vctx *c, const char *where, const char *s)
{
    char err[256];
    struct fo_path *fp = NULL;
    char *copy = NULL;
    int rc = fo_path_compile(&fp, s, err, sizeof err);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        errorf(c, where, "%s", err);
    else if (strchr(s, '{'))
        errorf(c, where, "must not have placeholders");
    else
        copy = xstrdup(c, s);
    fo_path_destroy(fp);
    return copy;
}

static void parse_aggregate(struct vctx *c, const cJSON *obj, struct fo_aggregate_conf *a)
{
    static const char *const keys[] = {"path", "allow_hosts", "max_requests", "timeout_ms", NULL};
    const char *path = "aggregate";
    if (!cJSON_IsObject(obj)) {
        errorf(c, path, "must be an object");
        return;
    }
    check_keys(c, obj, path, keys);

    const char *pat = get_string(c, obj, path, "path");
    if (member(obj, "path")) {
        /* A wrong path leaves none, so no cross check compares the default. */
        free(a->path);
        a->path = pat ? literal_path(c, "aggregate.path", pat) : NULL;
    }

    int64_t v = (int64_t)a->max_requests;
    get_int(c, obj, path, "max_requests", 1, MAX_REQUESTS, &v);
    a->max_requests = (size_t)v;
    get_int(c, obj, path, "timeout_ms", 1, MAX_TIMEOUT_MS, &a->timeout_ms);

    const cJSON *hosts = member(obj, "allow_hosts");
    if (!hosts)
        return;
    if (!cJSON_IsArray(hosts)) {
        errorf(c, "aggregate.allow_hosts", "must be an array of \"host:port\" strings");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(hosts);
    if (n == 0)
        return;
    a->allow_hosts = calloc(n, sizeof *a->allow_hosts);
    if (!a->allow_hosts) {
        c->oom = true;
        return;
    }
    size_t i = 0;
    for (const cJSON *h = hosts->child; h; h = h->next, i++) {
        if (!cJSON_IsString(h) || !is_host_port(h->valuestring)) {
            char p[64];
            snprintf(p, sizeof p, "aggregate.allow_hosts[%zu]", i);
            errorf(c, p, "must be \"host:port\" with a port from 1 to 65535");
            continue;
        }
        char *s = xstrdup(c, h->valuestring);
        if (s)
            a->allow_hosts[a->nallow++] = s;
    }
    a->enabled = a->nallow > 0;
}

/* A probe route: a literal path, or null to turn the route off. A wrong
 * value leaves none, so no cross check compares the default. */
static void parse_probe_path(struct vctx *c, const cJSON *root, const char *key, char **out)
{
    const cJSON *v = member(root, key);
    if (!v)
        return;
    free(*out);
    *out = NULL;
    if (cJSON_IsString(v))
        *out = literal_path(c, key, v->valuestring);
    else if (!cJSON_IsNull(v))
        errorf(c, key, "must be a path string or null");
}

static void parse_log(struct vctx *c, const cJSON *obj, struct fo_config *cfg)
{
    static const char *const keys[] = {"level", "access", "probes", NULL};
    static const struct {
        const char *name;
        enum fo_log_level level;
    } levels[] = {{"debug", FO_LOG_DEBUG},
                  {"info", FO_LOG_INFO},
                  {"warn", FO_LOG_WARN},
                  {"error", FO_LOG_ERROR},
                  {"off", FO_LOG_OFF}};
    if (!cJSON_IsObject(obj)) {
        errorf(c, "log", "must be an object");
        return;
    }
    check_keys(c, obj, "log", keys);

    const cJSON *v = member(obj, "level");
    if (v) {
        size_t i = 0;
        size_t n = sizeof levels / sizeof *levels;
        while (i < n && !(cJSON_IsString(v) && strcmp(v->valuestring, levels[i].name) == 0))
            i++;
        if (i < n)
            cfg->log_level = (int)levels[i].level;
        else
            errorf(c, "log.level", "must be \"debug\", \"info\", \"warn\", \"error\" or \"off\"");
    }
    get_bool(c, obj, "log", "access", &cfg->access_log);
    get_bool(c, obj, "log", "probes", &cfg->access_log_probes);
}

/* Operations: probe routes, logging, the drain budget. */
static void parse_operations(struct vctx *c, const cJSON *root, struct fo_config *cfg)
{
    parse_probe_path(c, root, "health_path", &cfg->health_path);
    parse_probe_path(c, root, "ready_path", &cfg->ready_path);
    parse_probe_path(c, root, "metrics_path", &cfg->metrics_path);
    const cJSON *log = member(root, "log");
    if (log)
        parse_log(c, log, cfg);
    get_int(c, root, "", "drain_ms", 0, 600000, &cfg->drain_ms);
}

/* Limits on what clients and backends may hold open or send. */
static void parse_limits(struct vctx *c, const cJSON *root, struct fo_config *cfg)
{
    get_size(c, root, "", "max_connections", 1, 1000000, &cfg->max_connections);
    bool head_ok = get_size(c, root, "", "max_header_bytes", 1024, 1048576, &cfg->max_header_bytes);
    get_size(c, root, "", "max_headers", 1, 10000, &cfg->max_headers);
    bool url_ok = get_size(c, root, "", "max_url_bytes", 64, 1048576, &cfg->max_url_bytes);
    get_int(c, root, "", "idle_timeout_ms", 1000, MAX_TIMEOUT_MS, &cfg->idle_timeout_ms);
    get_int(c, root, "", "header_timeout_ms", 100, MAX_TIMEOUT_MS, &cfg->header_timeout_ms);
    get_size(c, root, "", "max_inflight_calls", 1, 10000000, &cfg->max_inflight_calls);
    get_size(c, root, "", "max_backend_inflight", 0, 10000000, &cfg->max_backend_inflight);
    get_size(c, root, "", "max_host_connections", 0, 100000, &cfg->max_host_connections);
    get_size(c, root, "", "max_request_response_bytes", 1, MAX_SIZE,
             &cfg->max_request_response_bytes);
    get_size(c, root, "", "max_buffered_bytes", 1, MAX_SIZE, &cfg->max_buffered_bytes);

    /* The request line is part of the head, so a longer target could never arrive. Either
     * value may be the default, hence both numbers in the message. */
    if (head_ok && url_ok && cfg->max_url_bytes > cfg->max_header_bytes)
        errorf(c, "max_url_bytes", "%zu is more than max_header_bytes (%zu)", cfg->max_url_bytes,
               cfg->max_header_bytes);
}

/* Same route shape: equal text once every "{name}" is read as "{}". */
static bool same_shape(const char *a, const char *b)
{
    for (;;) {
        if (*a == '{' && *b == '{') {
            a = strchr(a, '}');
            b = strchr(b, '}');
            if (!a || !b)
                return false;
        }
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

/* Requests are routed to the probes first, then the aggregate, then the
 * endpoints in order; a path taken by an earlier route is reported on the
 * later one, which could never be reached. Probes take every method. */
static void cross_checks(struct vctx *c, const struct fo_config *cfg)
{
    const struct {
        const char *key;
        const char *path; /* NULL: off, or not valid. */
    } probes[] = {{"health_path", cfg->health_path},
                  {"ready_path", cfg->ready_path},
                  {"metrics_path", cfg->metrics_path}};
    size_t nprobes = sizeof probes / sizeof *probes;
    const char *agg = cfg->aggregate.enabled ? cfg->aggregate.path : NULL;

    for (size_t i = 0; i < nprobes; i++) {
        for (size_t j = 0; probes[i].path && j < i; j++) {
            if (probes[j].path && strcmp(probes[i].path, probes[j].path) == 0) {
                errorf(c, probes[i].key, "same as %s", probes[j].key);
                break;
            }
        }
    }
    for (size_t i = 0; agg && i < nprobes; i++) {
        if (probes[i].path && strcmp(agg, probes[i].path) == 0) {
            errorf(c, "aggregate.path", "same as %s", probes[i].key);
            break;
        }
    }

    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *e = &cfg->endpoints[i];
        if (!e->path || !e->method)
            continue;
        char p[64];
        snprintf(p, sizeof p, "endpoints[%zu].path", i);
        /* Text equality: a path with a {param} never clashes (probe paths have
         * none), as it still serves its other values. */
        for (size_t k = 0; k < nprobes; k++) {
            if (probes[k].path && strcmp(e->path, probes[k].path) == 0) {
                errorf(c, p, "same as %s", probes[k].key);
                break;
            }
        }
        if (agg && strcmp(e->path, agg) == 0)
            errorf(c, p, "same as aggregate.path");
        for (size_t j = 0; j < i; j++) {
            const struct fo_endpoint_conf *o = &cfg->endpoints[j];
            if (o->path && o->method && strcmp(o->method, e->method) == 0 &&
                same_shape(o->path, e->path)) {
                errorf(c, p, "duplicate of endpoints[%zu].path", j);
                break;
            }
        }
    }
}

/* Offset of the first "\u0000" escape in a valid JSON text, or -1. cJSON
 * would cut the string there, silently. */
static long find_nul_escape(const char *s, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = false;
        } else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return (long)i;
            i++;
        }
    }
    return -1;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void parse_root(struct vctx *c, const cJSON *root, struct fo_config *cfg)
{
    static const char *const keys[] = {"listen",
                                       "workers",
                                       "server_threads",
                                       "timeout_ms",
                                       "max_body_bytes",
                                       "max_response_bytes",
                                       "max_json_depth",
                                       "endpoints",
                                       "aggregate",
                                       "health_path",
                                       "ready_path",
                                       "metrics_path",
                                       "log",
                                       "drain_ms",
                                       "max_connections",
                                       "max_header_bytes",
                                       "max_headers",
                                       "max_url_bytes",
                                       "idle_timeout_ms",
                                       "header_timeout_ms",
                                       "max_inflight_calls",
                                       "max_backend_inflight",
                                       "max_host_connections",
                                       "max_request_response_bytes",
                                       "max_buffered_bytes",
                                       NULL};
    if (!cJSON_IsObject(root)) {
        errorf(c, ROOT, "must be a JSON object");
        return;
    }
    check_keys(c, root, "", keys);

    const char *listen = get_string(c, root, "", "listen");
    char host[64];
    if (listen) {
        if (fo_listen_parse(listen, host, sizeof host, &cfg->listen_port) < 0) {
            errorf(c, "listen",
                   "must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from "
                   "0 to 65535");
        } else {
            free(cfg->listen_host);
            cfg->listen_host = xstrdup(c, host);
        }
    }

    int64_t v = cfg->workers;
    get_int(c, root, "", "workers", 1, MAX_THREADS, &v);
    cfg->workers = (unsigned)v;
    v = cfg->server_threads;
    get_int(c, root, "", "server_threads", 1, MAX_THREADS, &v);
    cfg->server_threads = (unsigned)v;
    get_int(c, root, "", "timeout_ms", 1, MAX_TIMEOUT_MS, &cfg->timeout_ms);
    get_size(c, root, "", "max_body_bytes", 1, MAX_SIZE, &cfg->max_body_bytes);
    get_size(c, root, "", "max_response_bytes", 1, MAX_SIZE, &cfg->max_response_bytes);
    v = cfg->max_json_depth;
    get_int(c, root, "", "max_json_depth", 1, FO_JSON_MAX_DEPTH, &v);
    cfg->max_json_depth = (unsigned)v;

    const cJSON *eps = member(root, "endpoints");
    if (eps && !cJSON_IsArray(eps)) {
        errorf(c, "endpoints", "must be an array");
    } else if (eps && eps->child) {
        size_t n = (size_t)cJSON_GetArraySize(eps);
        cfg->endpoints = calloc(n, sizeof *cfg->endpoints);
        if (!cfg->endpoints) {
            c->oom = true;
            return;
        }
        cfg->nendpoints = n;
        size_t i = 0;
        for (const cJSON *e = eps->child; e; e = e->next, i++) {
            char p[64];
            snprintf(p, sizeof p, "endpoints[%zu]", i);
            parse_endpoint(c, e, p, &cfg->endpoints[i]);
        }
    }

    const cJSON *agg = member(root, "aggregate");
    if (agg)
        parse_aggregate(c, agg, &cfg->aggregate);
    parse_operations(c, root, cfg);
    parse_limits(c, root, cfg);
    cross_checks(c, cfg);
}

static struct fo_config *config_new(struct vctx *c)
{
    struct fo_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        c->oom = true;
        return NULL;
    }
    char host[64];
    (void)fo_listen_parse(DEFAULT_LISTEN, host, sizeof host, &cfg->listen_port);
    cfg->listen_host = xstrdup(c, host);
    cfg->workers = online_cpus();
    /* The front does less per request than the workers (which run every
     * backend transfer), so it gets half the CPUs: with workers = CPUs the
     * service then runs about one busy thread per core. */
    cfg->server_threads = online_cpus() / 2 > 0 ? online_cpus() / 2 : 1;
    cfg->timeout_ms = 1000;
    cfg->max_body_bytes = 1u << 20;
    cfg->max_response_bytes = 8u << 20;
    cfg->max_json_depth = FO_JSON_DEFAULT_DEPTH;
    cfg->aggregate.path = xstrdup(c, "/aggregate");
    cfg->aggregate.max_requests = 32;
    cfg->aggregate.timeout_ms = 1000;
    cfg->health_path = xstrdup(c, "/health");
    cfg->ready_path = xstrdup(c, "/ready");
    cfg->metrics_path = xstrdup(c, "/metrics");
    cfg->log_level = FO_LOG_INFO;
    cfg->access_log = true;
    cfg->access_log_probes = false;
    cfg->drain_ms = 10000;
    cfg->max_connections = 10000;
    cfg->max_header_bytes = 8192;
    cfg->max_headers = 100;
    cfg->max_url_bytes = 4096;
    cfg->idle_timeout_ms = 60000;
    cfg->header_timeout_ms = 10000;
    cfg->max_inflight_calls = 10000;
    cfg->max_backend_inflight = 4096;
    cfg->max_request_response_bytes = 16u << 20;
    cfg->max_buffered_bytes = 256u << 20;
    return cfg;
}

int fo_config_parse(struct fo_config **out, const char *text, size_t n, struct fo_buf *errors)
{
    struct vctx c = {.errors = errors, .nerr = 0, .oom = false};
    struct fo_config *cfg = NULL;
    cJSON *root = NULL;
    char *copy = NULL;
    int rc = -EINVAL;
    *out = NULL;

    const char *nul = memchr(text, '\0', n);
    if (nul) {
        char p[32];
        snprintf(p, sizeof p, "offset %zu", (size_t)(nul - text));
        errorf(&c, p, "NUL byte in the text");
        goto out;
    }
    /* cJSON's "require null terminated" wants the NUL inside the length. */
    copy = malloc(n + 1);
    if (!copy) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(copy, n + 1, &end, 1);
    if (!root) {
        char p[32];
        size_t off = end && end >= copy && end <= copy + n ? (size_t)(end - copy) : 0;
        snprintf(p, sizeof p, "offset %zu", off);
        errorf(&c, p, "not valid JSON");
        goto out;
    }
    long esc = find_nul_escape(copy, n);
    if (esc >= 0) {
        char p[32];
        snprintf(p, sizeof p, "offset %ld", esc);
        errorf(&c, p, "\\u0000 is not allowed in strings");
        goto out;
    }

    cfg = config_new(&c);
    if (cfg)
        parse_root(&c, root, cfg);
    if (c.oom)
        rc = -ENOMEM;
    else if (c.nerr == 0)
        rc = 0;
out:
    cJSON_Delete(root);
    free(copy);
    if (rc == 0) {
        *out = cfg;
    } else {
        fo_config_destroy(cfg);
    }
    return rc;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

void fo_config_destroy(struct fo_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        struct fo_endpoint_conf *e = &cfg->endpoints[i];
        for (size_t j = 0; j < e->nbackends; j++) {
            struct fo_backend_conf *b = &e->backends[j];
            free(b->name);
            free(b->url);
            fo_tmpl_destroy(b->tmpl);
            free(b->method);
            free_lines(b->headers, b->nheaders);
        }
        free(e->backends);
        free(e->path);
        fo_path_destroy(e->pattern);
        free(e->method);
    }
    free(cfg->endpoints);
    free(cfg->aggregate.path);
    free_lines(cfg->aggregate.allow_hosts, cfg->aggregate.nallow);
    free(cfg->listen_host);
    free(cfg->health_path);
    free(cfg->ready_path);
    free(cfg->metrics_path);
    free(cfg);
}
