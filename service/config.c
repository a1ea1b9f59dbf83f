/* config.c -- the service configuration: the root, endpoint, aggregate, log and TLS tables
 * and the keys with their own parsers. See config.h.
 *
 * Each JSON object of the config (root, endpoint, backend, aggregate, log) is one table of
 * rows {key, type, range, offset, default, doc}; config_schema.c walks a table over the
 * cJSON object and writes every field, and prints the same tables as a JSON Schema. A key
 * that is more than a typed number or flag (listen, paths and templates, headers, the
 * endpoint and backend arrays) is a "custom" row whose parser lives here. A check that fails
 * appends one "path: message" line and the walk goes on, so one run reports every mistake; at
 * the end the half-built config is thrown away if any line was written. Checks between keys
 * run after their object's rows (a table's check), cross checks between routes (duplicates,
 * the aggregate and probe paths) last; both only look at values that were valid on their own,
 * so one mistake gives one line. Reading the file, the text checks before cJSON and the
 * listen address live in config_io.c; route paths and their cross checks in config_routes.c;
 * the forwarding lists in config_forward.c; one backend's table and parsers in
 * config_backend.c (config_rows.h is what the two table files share). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "config_forward.h"
#include "clock.h"
#include "config_resil.h"
#include "config_rows.h"
#include "config_schema.h"
#include "config_shape.h"
#include "config_deps.h"
#include "cors.h"
#include "token.h"
#include "json.h"
#include "log.h"
#include "placeholder.h"

#define MAX_THREADS  256
#define MAX_REQUESTS 1024

static const struct fo__table endpoint_table;

const char *fo__string_value(struct fo__vctx *c, const cJSON *v, const char *path)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    fo__errorf(c, path, "must be a string");
    return NULL;
}

static void listen_default(struct fo__vctx *c, const struct fo__field *f, void *base)
{
    struct fo_config *cfg = base;
    char host[64];
    (void)fo_listen_parse(f->sdef, host, sizeof host, &cfg->listen_port);
    free(cfg->listen_host);
    cfg->listen_host = fo__strdup(c, host);
}

static bool parse_listen(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                         const char *path, void *base, const void *up)
{
    struct fo_config *cfg = base;
    if (cJSON_IsNull(v)) { /* No plain listener: listen_tls only. */
        free(cfg->listen_host);
        cfg->listen_host = NULL;
        return true;
    }
    const char *listen = cJSON_IsString(v) ? v->valuestring : NULL;
    char host[64];
    if (!listen) {
        fo__errorf(c, path, "must be a string or null");
        return false;
    }
    if (fo_listen_parse(listen, host, sizeof host, &cfg->listen_port) < 0) {
        fo__errorf(c, path,
                   "must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from "
                   "0 to 65535");
        return false;
    }
    free(cfg->listen_host);
    cfg->listen_host = fo__strdup(c, host);
    return true;
}

bool fo__parse_method(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                      const char *path, void *base, const void *up)
{
    char **method = (char **)((char *)base + f->offset);
    free(*method);
    *method = NULL;
    if (cJSON_IsString(v) && fo_is_method(v->valuestring)) {
        *method = fo__strdup(c, v->valuestring);
        return true;
    }
    fo__errorf(c, path, "must be an upper-case token such as \"GET\"");
    return false;
}

static bool parse_endpoint_path(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                                const char *path, void *base, const void *up)
{
    struct fo_endpoint_conf *e = base;
    char err[256];
    const char *pat = fo__string_value(c, v, path);
    if (!pat)
        return false;
    int rc = fo_path_compile(&e->pattern, pat, err, sizeof err);
    if (rc == 0 && !(e->deprefs = calloc(1, sizeof *e->deprefs)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = fo_placeholder_scope(&e->scope, e);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, path, "%s", err);
    else
        e->path = fo__strdup(c, pat);
    return rc == 0;
}

static bool parse_endpoints(struct fo__vctx *c, const struct fo__field *f, const cJSON *eps,
                            const char *path, void *base, const void *up)
{
    struct fo_config *cfg = base;
    if (!cJSON_IsArray(eps)) {
        fo__errorf(c, path, "must be an array");
        return false;
    }
    if (!eps->child)
        return true;
    size_t n = (size_t)cJSON_GetArraySize(eps);
    cfg->endpoints = calloc(n, sizeof *cfg->endpoints);
    if (!cfg->endpoints) {
        c->oom = true;
        return false;
    }
    cfg->nendpoints = n;
    size_t i = 0;
    for (const cJSON *e = eps->child; e; e = e->next, i++) {
        char p[64];
        snprintf(p, sizeof p, "endpoints[%zu]", i);
        fo__defaults(c, &endpoint_table, &cfg->endpoints[i]);
        struct fo_endpoint_conf *ec = &cfg->endpoints[i];
        if (fo__walk(c, &endpoint_table, e, p, ec, NULL) == 0) {
            fo__shape_check_endpoint(c, p, ec);
            fo__deps_check_endpoint(c, p, ec);
        }
        ec->rate_hash = fo__def_hash(ec->method, ec->path, cJSON_GetObjectItem(e, "rate_limit"));
    }
    return true;
}

/* "auth" and "cors": at the top level the default, on an endpoint its own (null: none). */
static bool parse_root_auth(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                            const char *path, void *base, const void *up)
{
    struct fo_config *cfg = base;
    return fo__auth_parse(c, v, path, c->dir, &cfg->auth);
}

static bool parse_endpoint_auth(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                                const char *path, void *base, const void *up)
{
    struct fo_endpoint_conf *e = base;
    e->auth_set = true;
    return fo__auth_parse(c, v, path, c->dir, &e->auth);
}

static bool parse_root_cors(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                            const char *path, void *base, const void *up)
{
    struct fo_config *cfg = base;
    return fo__cors_parse(c, v, path, &cfg->cors);
}

static bool parse_endpoint_cors(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                                const char *path, void *base, const void *up)
{
    struct fo_endpoint_conf *e = base;
    e->cors_set = true;
    return fo__cors_parse(c, v, path, &e->cors);
}

const struct fo_auth *fo_endpoint_auth(const struct fo_config *cfg,
                                       const struct fo_endpoint_conf *ep)
{
    return ep && ep->auth_set ? ep->auth : cfg->auth;
}

const struct fo_cors *fo_endpoint_cors(const struct fo_config *cfg,
                                       const struct fo_endpoint_conf *ep)
{
    return ep && ep->cors_set ? ep->cors : cfg->cors;
}

/* A wrong aggregate path leaves none, so no cross check compares the default. */
static bool parse_aggregate_path(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                                 const char *path, void *base, const void *up)
{
    struct fo_aggregate_conf *a = base;
    const char *pat = fo__string_value(c, v, path);
    free(a->path);
    a->path = pat ? fo__literal_path(c, path, pat) : NULL;
    return a->path != NULL;
}

static bool parse_allow_hosts(struct fo__vctx *c, const struct fo__field *f, const cJSON *hosts,
                              const char *path, void *base, const void *up)
{
    struct fo_aggregate_conf *a = base;
    if (!cJSON_IsArray(hosts)) {
        fo__errorf(c, path, "must be an array of \"host:port\" strings");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(hosts);
    if (n == 0)
        return true;
    a->allow_hosts = calloc(n, sizeof *a->allow_hosts);
    if (!a->allow_hosts) {
        c->oom = true;
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *h = hosts->child; h; h = h->next, i++) {
        if (!cJSON_IsString(h) || !fo__is_host_port(h->valuestring)) {
            char p[300];
            fo__pathf(p, sizeof p, "%s[%zu]", path, i);
            fo__errorf(c, p, "must be \"host:port\" with a port from 1 to 65535");
            ok = false;
            continue;
        }
        char *s = fo__strdup(c, h->valuestring);
        if (s)
            a->allow_hosts[a->nallow++] = s;
    }
    a->enabled = a->nallow > 0;
    return ok;
}

/* A probe route: a literal path, or null to turn the route off. A wrong
 * value leaves none, so no cross check compares the default. */
static bool parse_probe_path(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                             const char *path, void *base, const void *up)
{
    char **out = (char **)((char *)base + f->offset);
    free(*out);
    *out = NULL;
    if (cJSON_IsString(v))
        *out = fo__literal_path(c, path, v->valuestring);
    else if (!cJSON_IsNull(v))
        fo__errorf(c, path, "must be a path string or null");
    return *out != NULL || cJSON_IsNull(v);
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* Half the CPUs: the front does less per request than the workers (which run every backend
 * transfer), so with workers = CPUs the service runs about one busy thread per core. */
static unsigned half_cpus(void)
{
    return online_cpus() / 2 > 0 ? online_cpus() / 2 : 1;
}

/* The request line is part of the head, so a longer target could never arrive. Either value
 * may be the default, hence both numbers in the message. Route cross checks run last. */
static void root_check(struct fo__vctx *c, void *base, uint64_t bad)
{
    const struct fo_config *cfg = base;
    uint64_t head = fo__field_bit(&fo__config_root, "max_header_bytes") |
                    fo__field_bit(&fo__config_root, "max_url_bytes");
    if (!(bad & head) && cfg->max_url_bytes > cfg->max_header_bytes)
        fo__errorf(c, "max_url_bytes", "%zu is more than max_header_bytes (%zu)",
                   cfg->max_url_bytes, cfg->max_header_bytes);
    fo__tls_checks(c, base, bad);
    fo__route_checks(c, cfg);
}

/* clang-format off */
/* The schema tables: every key of every object, in the order they are read and reported
 * (config_rows.h has the row macros; the backend table is in config_backend.c). */
static const struct fo__field endpoint_fields[] = {
    {.key = "path", .type = FO_FT_CUSTOM, .required = true, .parse = parse_endpoint_path,
     .schema = PATH_SCHEMA, .doc = "/literal/{param}/...; a {param} matches one path segment"},
    {.key = "method", .type = FO_FT_CUSTOM, .sdef = "GET", .parse = fo__parse_method,
     .offset = offsetof(struct fo_endpoint_conf, method), .schema = TOKEN_SCHEMA,
     .doc = "upper-case method token"},
    INT("timeout_ms", FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, struct fo_endpoint_conf, timeout_ms, 0,
        "endpoint deadline in ms; default the global timeout_ms (it may only lower it)"),
    BOOL("report", struct fo_endpoint_conf, report, false, "add the _fanout report member"),
    CUSTOM("forward_query", struct fo_endpoint_conf, fwd_query, fo__parse_fwd_query, FWD_SCHEMA,
           "client query parameters appended to each backend URL: names or [\"*\"]"),
    CUSTOM("forward_headers", struct fo_endpoint_conf, fwd_headers, fo__parse_fwd_headers,
           FWD_SCHEMA, "client header fields sent to each backend: names or [\"*\"]"),
    BOOL("forward_body", struct fo_endpoint_conf, forward_body, false,
         "send the client's body and Content-Type to POST, PUT and PATCH backends"),
    {.key = "backends", .type = FO_FT_CUSTOM, .required = true, .parse = fo__parse_backends,
     .schema = "{\"type\": \"array\", \"minItems\": 1}", .sub = &fo__backend_table,
     .doc = "the backend calls, run at once"},
    {.key = "ops", .type = FO_FT_CUSTOM, .parse = fo__parse_ops, .schema = OPS_SCHEMA,
     .offset = offsetof(struct fo_endpoint_conf, shape),
     .doc = "del / move / append operations on the merged document"},
    CUSTOM("auth", struct fo_endpoint_conf, auth, parse_endpoint_auth, AUTH_SCHEMA,
           "who may call: api_keys or jwt; replaces the top-level auth, null for none"),
    CUSTOM("cors", struct fo_endpoint_conf, cors, parse_endpoint_cors, CORS_SCHEMA,
           "cross-origin policy; replaces the top-level cors, null for none"),
    {.key = "rate_limit", .type = FO_FT_OBJECT, .sub = &fo__endpoint_rate_table,
     .offset = offsetof(struct fo_endpoint_conf, rate_limit),
     .doc = "token bucket on requests: rps, burst, key, max_clients (over it: 503)"},
};
static const struct fo__table endpoint_table = TABLE(endpoint_fields, NULL);

static const struct fo__field aggregate_fields[] = {
    {.key = "path", .type = FO_FT_CUSTOM, .sdef = "/aggregate", .parse = parse_aggregate_path,
     .offset = offsetof(struct fo_aggregate_conf, path), .schema = PATH_SCHEMA,
     .doc = "route of the ad-hoc batch (no placeholders)"},
    INT("max_requests", FO_FT_SIZE, 1, MAX_REQUESTS, struct fo_aggregate_conf, max_requests, 32,
        "calls per batch"),
    INT("timeout_ms", FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, struct fo_aggregate_conf, timeout_ms,
        1000, "cap on a batch's own timeout_ms"),
    CUSTOM("allow_hosts", struct fo_aggregate_conf, allow_hosts, parse_allow_hosts, HOSTS_SCHEMA,
           "host:port entries the ad-hoc batch may call; without it POST /aggregate is off"),
};
static const struct fo__table aggregate_table = TABLE(aggregate_fields, NULL);

/* In the order of enum fo_log_level. */
static const char *const log_levels[] = {"debug", "info", "warn", "error", "off", NULL};

static const struct fo__field log_fields[] = {
    {.key = "level", .type = FO_FT_ENUM, .names = log_levels, .def = FO_LOG_INFO,
     .offset = offsetof(struct fo_config, log_level), .doc = "lines below it are dropped"},
    BOOL("access", struct fo_config, access_log, true, "one access line per request"),
    BOOL("probes", struct fo_config, access_log_probes, false,
         "also log the health, ready and metrics routes"),
};
static const struct fo__table log_table = TABLE(log_fields, NULL);

static const struct fo__field tls_fields[] = {
    {.key = "cert_file", .type = FO_FT_CUSTOM, .required = true, .parse = fo__parse_pem_path,
     .offset = offsetof(struct fo_tls_conf, cert_file), .schema = FILE_SCHEMA,
     .doc = "PEM certificate chain of the HTTPS listener (read again on SIGHUP)"},
    {.key = "key_file", .type = FO_FT_CUSTOM, .required = true, .parse = fo__parse_pem_path,
     .offset = offsetof(struct fo_tls_conf, key_file), .schema = FILE_SCHEMA,
     .doc = "PEM private key of cert_file (read again on SIGHUP)"},
    {.key = "min_version", .type = FO_FT_ENUM, .names = fo__tls_versions, .def = 0,
     .offset = offsetof(struct fo_tls_conf, min_version),
     .doc = "lowest TLS version offered; TLS 1.0 and 1.1 are never"},
};
static const struct fo__table tls_table = TABLE(tls_fields, NULL);

#define ROOT_INT(k, t, lo, hi, d, text) INT(#k, t, lo, hi, struct fo_config, k, d, text)
#define ROOT_PROBE(k, d, text)                                                                      \
    {.key = #k, .type = FO_FT_CUSTOM, .sdef = d, .parse = parse_probe_path,                        \
     .offset = offsetof(struct fo_config, k), .schema = PROBE_SCHEMA, .doc = text}

static const struct fo__field root_fields[] = {
    {.key = "listen", .type = FO_FT_CUSTOM, .sdef = "127.0.0.1:8080", .parse = parse_listen,
     .init = listen_default,
     .schema = "{\"type\": [\"string\", \"null\"]}",
     .doc = "numeric address and port to bind: \"host:port\", \"[v6]:port\" or \":port\"; "
            "null: HTTPS only (listen_tls)"},
    {.key = "listen_tls", .type = FO_FT_CUSTOM, .parse = fo__parse_listen_tls,
     .schema = "{\"type\": \"string\"}",
     .doc = "numeric address and port of the HTTPS listener (needs tls); default none"},
    {.key = "tls", .type = FO_FT_OBJECT, .sub = &tls_table,
     .offset = offsetof(struct fo_config, tls),
     .doc = "certificate and key of the HTTPS listener, and its lowest TLS version"},
    CUSTOM("ca_file", struct fo_config, backend_tls.ca_file, fo__parse_pem_path, FILE_SCHEMA,
           "PEM CA bundle for https backends (and the ad-hoc batch); default the system's"),
    {.key = "workers", .type = FO_FT_UINT, .min = 1, .max = MAX_THREADS, .defn = online_cpus,
     .offset = offsetof(struct fo_config, workers),
     .doc = "backend worker threads (each drives one libcurl multi handle); default online CPUs"},
    {.key = "server_threads", .type = FO_FT_UINT, .min = 1, .max = MAX_THREADS,
     .defn = half_cpus, .offset = offsetof(struct fo_config, server_threads),
     .doc = "HTTP front threads; default half the online CPUs (at least 1)"},
    ROOT_INT(timeout_ms, FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, 1000,
             "global request deadline in ms; an endpoint may only lower it"),
    ROOT_INT(max_body_bytes, FO_FT_SIZE, 1, FO_MAX_SIZE, 1 << 20,
             "client request body cap (413 beyond)"),
    ROOT_INT(max_response_bytes, FO_FT_SIZE, 1, FO_MAX_SIZE, 8 << 20,
             "backend response cap (the call fails too_large)"),
    ROOT_INT(max_json_depth, FO_FT_UINT, 1, FO_JSON_MAX_DEPTH, FO_JSON_DEFAULT_DEPTH,
             "nesting cap for every JSON document read (backend bodies, batch bodies)"),
    {.key = "endpoints", .type = FO_FT_CUSTOM, .parse = parse_endpoints, .sub = &endpoint_table,
     .schema = "{\"type\": \"array\"}", .doc = "the configured endpoints, routed in order"},
    {.key = "aggregate", .type = FO_FT_OBJECT, .sub = &aggregate_table,
     .offset = offsetof(struct fo_config, aggregate),
     .doc = "the ad-hoc batch (POST /aggregate), off unless allow_hosts is given"},
    CUSTOM("auth", struct fo_config, auth, parse_root_auth, AUTH_SCHEMA,
           "default auth of every endpoint and of the batch: api_keys or jwt"),
    CUSTOM("cors", struct fo_config, cors, parse_root_cors, CORS_SCHEMA,
           "default cross-origin policy of every endpoint and of the batch"),
    ROOT_PROBE(health_path, "/health", "health route; null turns it off"),
    ROOT_PROBE(ready_path, "/ready", "readiness route; null turns it off"),
    ROOT_PROBE(metrics_path, "/metrics", "Prometheus metrics route; null turns it off"),
    {.key = "log", .type = FO_FT_OBJECT, .sub = &log_table, .offset = 0,
     .doc = "logging: level, access lines, probe access lines"},
    ROOT_INT(drain_ms, FO_FT_INT64, 0, 600000, 10000, "graceful stop budget in ms"),
    ROOT_INT(max_connections, FO_FT_SIZE, 1, 1000000, 10000, "open client connections"),
    ROOT_INT(max_header_bytes, FO_FT_SIZE, 1024, 1048576, 8192, "request line and headers"),
    ROOT_INT(max_headers, FO_FT_SIZE, 1, 10000, 100, "header count"),
    ROOT_INT(max_url_bytes, FO_FT_SIZE, 64, 1048576, 4096,
             "request target length (at most max_header_bytes)"),
    ROOT_INT(idle_timeout_ms, FO_FT_INT64, 1000, FO_MAX_TIMEOUT_MS, 60000,
             "idle keep-alive connection in ms"),
    ROOT_INT(header_timeout_ms, FO_FT_INT64, 100, FO_MAX_TIMEOUT_MS, 10000,
             "the whole request head must arrive within this many ms"),
    ROOT_INT(max_inflight_calls, FO_FT_SIZE, 1, 10000000, 10000,
             "backend calls in flight, all workers"),
    ROOT_INT(max_backend_inflight, FO_FT_SIZE, 0, 10000000, 4096,
             "calls in flight to one backend (0 = no cap)"),
    ROOT_INT(max_host_connections, FO_FT_SIZE, 0, 100000, 128,
             "calls (so connections) per worker to one scheme://host:port at once; the "
             "others wait in order (0 = no cap)"),
    ROOT_INT(max_request_response_bytes, FO_FT_SIZE, 1, FO_MAX_SIZE, 16 << 20,
             "backend body bytes one request may hold"),
    ROOT_INT(max_buffered_bytes, FO_FT_SIZE, 1, FO_MAX_SIZE, 256 << 20,
             "backend and answer bytes all requests may hold"),
    {.key = "retry_budget", .type = FO_FT_OBJECT, .sub = &fo__retry_budget_table,
     .offset = offsetof(struct fo_config, retry_budget),
     .doc = "retries in flight: at most max(min, percent of calls in flight)"},
};
const struct fo__table fo__config_root = TABLE(root_fields, root_check);
/* clang-format on */
_Static_assert(sizeof root_fields / sizeof *root_fields <= 64, "a walk's result has 64 bits");

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
            for (size_t k = 0; b->htmpl && k < b->nheaders; k++)
                fo_tmpl_destroy(b->htmpl[k]);
            free(b->htmpl);
            free_lines(b->headers, b->nheaders);
            fo_shape_clear(&b->shape);
            fo_fwd_list_free(&b->fwd_query);
            fo_fwd_list_free(&b->fwd_headers);
            fo__resil_conf_free(&b->resil);
            free(b->tls.ca_file);
            free(b->tls.client_cert_file);
            free(b->tls.client_key_file);
            free(b->tls.server_name);
            fo__deps_backend_free(b);
        }
        fo_shape_clear(&e->shape);
        free(e->backends);
        free(e->path);
        fo_path_destroy(e->pattern);
        fo_tmpl_scope_destroy(e->scope);
        if (e->deprefs)
            fo_dep_refs_free(e->deprefs);
        free(e->deprefs);
        fo_fwd_list_free(&e->fwd_query);
        fo_fwd_list_free(&e->fwd_headers);
        free(e->method);
        fo_auth_destroy(e->auth);
        fo_cors_destroy(e->cors);
        free(e->rate_limit.key_header);
    }
    fo_auth_destroy(cfg->auth);
    fo_cors_destroy(cfg->cors);
    free(cfg->endpoints);
    free(cfg->aggregate.path);
    free_lines(cfg->aggregate.allow_hosts, cfg->aggregate.nallow);
    free(cfg->listen_host);
    free(cfg->listen_tls_host);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->backend_tls.ca_file);
    free(cfg->health_path);
    free(cfg->ready_path);
    free(cfg->metrics_path);
    free(cfg);
}
