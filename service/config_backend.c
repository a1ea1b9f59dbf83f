/* config_backend.c -- one backend's keys: its schema table, the parsers of its name, URL
 * (placeholders, and whether libcurl can use it) and headers (names, values, templates), and
 * the endpoint's "backends" row that walks every element and runs the checks between its keys.
 * See config_rows.h; the walk itself is config_schema.c's. */
#include "config_rows.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config.h"
#include "config_deps.h"
#include "config_forward.h"
#include "config_resil.h"
#include "config_shape.h"
#include "token.h"

/* Compile header line i of 'b' when it has placeholders (or "{{" / "}}"). */
static bool compile_header(struct fo__vctx *c, struct fo_backend_conf *b, size_t i,
                           const struct fo_endpoint_conf *e, const char *path, const char *name)
{
    const char *line = b->headers[i];
    if (!strpbrk(line, "{}") || !e || !e->scope)
        return true;
    char err[256];
    int rc = fo_tmpl_compile(&b->htmpl[i], line, FO_TMPL_HEADER, e->scope, err, sizeof err);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, path, "value of \"%s\": %s", name, err);
    return rc == 0;
}

static bool parse_headers(struct fo__vctx *c, const struct fo__field *f, const cJSON *h,
                          const char *path, void *base, const void *up)
{
    struct fo_backend_conf *b = base;
    const struct fo_endpoint_conf *e = up;
    char q[96];
    if (!cJSON_IsObject(h)) {
        fo__errorf(c, path, "must be an object of strings");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(h);
    if (n == 0)
        return true;
    b->headers = calloc(n, sizeof *b->headers);
    b->htmpl = NULL;
    if (!b->headers) {
        c->oom = true;
        return false;
    }
    bool all_ok = true;
    for (const cJSON *m = h->child; m; m = m->next) {
        bool ok = m->string[0] != '\0';
        for (const char *s = m->string; *s; s++)
            ok = ok && fo_is_tchar((unsigned char)*s);
        all_ok = all_ok && ok;
        if (!ok) {
            fo__errorf(c, path, "invalid header name \"%s\"", fo__quote(q, sizeof q, m->string));
            continue;
        }
        if (!cJSON_IsString(m) || strpbrk(m->valuestring, "\r\n")) {
            fo__errorf(c, path, "value of \"%s\" must be a string without CR, LF or NUL",
                       m->string);
            all_ok = false;
            continue;
        }
        size_t nlen = strlen(m->string);
        bool dup = false;
        for (size_t i = 0; i < b->nheaders && !dup; i++)
            dup = strncasecmp(b->headers[i], m->string, nlen) == 0 && b->headers[i][nlen] == ':';
        if (dup) {
            fo__errorf(c, path, "duplicate header \"%s\"", m->string);
            all_ok = false;
            continue;
        }
        char *line = NULL;
        if (asprintf(&line, "%s: %s", m->string, m->valuestring) < 0) {
            c->oom = true;
            return false;
        }
        b->headers[b->nheaders++] = line;
        if (!b->htmpl && strpbrk(line, "{}")) {
            b->htmpl = calloc(n, sizeof *b->htmpl);
            if (!b->htmpl) {
                c->oom = true;
                return false;
            }
        }
        all_ok = compile_header(c, b, b->nheaders - 1, e, path, m->string) && all_ok;
    }
    return all_ok;
}

static bool parse_backend_name(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                               const char *path, void *base, const void *up)
{
    struct fo_backend_conf *b = base;
    const char *name = fo__string_value(c, v, path);
    if (name && name[0] == '\0')
        fo__errorf(c, path, "must not be empty");
    else if (name && strcmp(name, "_fanout") == 0)
        fo__errorf(c, path, "\"_fanout\" is reserved");
    else if (name)
        b->name = fo__strdup(c, name);
    return b->name != NULL;
}

/* The URL as libcurl will read it, each placeholder standing for "x": a port
 * out of range or a host libcurl cannot parse would otherwise pass --check
 * and then fail every call as connect. */
static bool curl_accepts(const char *url, char *why, size_t len)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    bool ok = true;
    for (const char *p = url; *p && ok; p++) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        ok = fo_buf_putc(&b, close ? 'x' : *p) == 0;
        if (close)
            p = close;
    }
    CURLU *u = ok ? curl_url() : NULL;
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, b.data, 0) : CURLUE_OUT_OF_MEMORY;
    if (rc != CURLUE_OK)
        snprintf(why, len, "libcurl cannot use this URL: %s", curl_url_strerror(rc));
    curl_url_cleanup(u);
    fo_buf_free(&b);
    return rc == CURLUE_OK;
}

/* 'up' is the endpoint; its compiled path is NULL when it was not valid. */
static bool parse_backend_url(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                              const char *path, void *base, const void *up)
{
    struct fo_backend_conf *b = base;
    const struct fo_endpoint_conf *e = up;
    char err[256];
    const char *url = fo__string_value(c, v, path);
    if (!url)
        return false;
    b->url = fo__strdup(c, url);
    /* Without a valid endpoint path, placeholder errors would be noise. */
    if (!e->pattern || !e->scope)
        return true;
    int rc = fo_tmpl_compile(&b->tmpl, url, FO_TMPL_URL, e->scope, err, sizeof err);
    if (rc == 0 && !curl_accepts(url, err, sizeof err))
        rc = -EINVAL;
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, path, "%s", err);
    return rc == 0;
}

bool fo__parse_backends(struct fo__vctx *c, const struct fo__field *f, const cJSON *bs,
                        const char *path, void *base, const void *up)
{
    struct fo_endpoint_conf *e = base;
    if (!cJSON_IsArray(bs) || !bs->child) {
        fo__errorf(c, path, "must be a non-empty array");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(bs);
    e->backends = calloc(n, sizeof *e->backends);
    if (!e->backends) {
        c->oom = true;
        return false;
    }
    e->nbackends = n;
    size_t i = 0;
    for (const cJSON *b = bs->child; b; b = b->next, i++) {
        char bp[256];
        fo__pathf(bp, sizeof bp, "%s[%zu]", path, i);
        fo__defaults(c, &fo__backend_table, &e->backends[i]);
        uint64_t bad = fo__walk(c, &fo__backend_table, b, bp, &e->backends[i], e);
        if (bad == 0)
            fo__shape_check_backend(c, bp, &e->backends[i].shape, e->backends[i].required);
        fo_shape_finish(&e->backends[i].shape);
        fo__fwd_check_narrowing(c, e, &e->backends[i], bp);
        fo__resil_backend_check(c, bp, &e->backends[i].resil, e->backends[i].method,
                                &fo__backend_table, bad);
        e->backends[i].def_hash = fo__def_hash(e->method, e->path, b);
        const char *name = e->backends[i].name;
        for (size_t j = 0; name && j < i; j++) {
            if (e->backends[j].name && strcmp(e->backends[j].name, name) == 0) {
                char np[300];
                fo__pathf(np, sizeof np, "%s.name", bp);
                fo__errorf(c, np, "duplicate of %s[%zu].name", path, j);
                break;
            }
        }
    }
    return true;
}

/* clang-format off */
#define HEADERS_SCHEMA                                                                             \
    "{\"type\": \"object\", \"propertyNames\": {\"minLength\": 1, \"not\": {\"pattern\": "         \
    "\"[^-!#$%&'*+.^_`|~0-9A-Za-z]\"}}, \"additionalProperties\": {\"type\": \"string\", "         \
    "\"not\": {\"pattern\": \"[\\r\\n]\"}}}"
#define SHAPE_ROW(k, fn, sch, text)                                                                \
    {.key = k, .type = FO_FT_CUSTOM, .offset = offsetof(struct fo_backend_conf, shape),           \
     .parse = fn, .schema = sch, .doc = text}
#define ENCODING_SCHEMA "{\"enum\": [\"json\", \"text\", \"raw\"]}"
#define KEY_SCHEMA      "{\"type\": \"string\", \"minLength\": 1}"
#define JPATHS_SCHEMA                                                                              \
    "{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 64, \"items\": " JPATH_SCHEMA "}"
#define RENAME_SCHEMA                                                                              \
    "{\"type\": \"object\", \"minProperties\": 1, \"maxProperties\": 64, "                         \
    "\"additionalProperties\": {\"type\": \"string\", \"pattern\": \"^[^.*]+$\"}}"
#define PASS_SCHEMA                                                                                \
    "{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 16, \"items\": {\"type\": "             \
    "\"integer\", \"minimum\": 400, \"maximum\": 499}}"
#define DEPS_SCHEMA                                                                                \
    "{\"type\": \"array\", \"uniqueItems\": true, \"items\": {\"type\": \"string\", "     \
    "\"minLength\": 1}}"
#define FOREACH_SCHEMA "{\"type\": \"string\", \"pattern\": \"^[^.]+\\\\..*\\\\*\"}"
static const char *const foreach_as[] = {"array", "object", NULL};

static const struct fo__field backend_fields[] = {
    {.key = "name", .type = FO_FT_CUSTOM, .required = true, .parse = parse_backend_name,
     .schema = "{\"type\": \"string\", \"minLength\": 1, \"not\": {\"const\": \"_fanout\"}}",
     .doc = "unique within the endpoint; the key of its result"},
    {.key = "url", .type = FO_FT_CUSTOM, .required = true, .parse = parse_backend_url,
     .schema = "{\"type\": \"string\", \"pattern\": \"^https?://\"}",
     .doc = "http(s):// URL; {param}, {query.name}, {header.Name} placeholders (with |default) "
            "in path or query"},
    {.key = "method", .type = FO_FT_CUSTOM, .sdef = "GET", .parse = fo__parse_method,
     .offset = offsetof(struct fo_backend_conf, method), .schema = TOKEN_SCHEMA,
     .doc = "upper-case method token"},
    CUSTOM("headers", struct fo_backend_conf, headers, parse_headers, HEADERS_SCHEMA,
           "object of extra request headers (name: value); values take placeholders"),
    INT("timeout_ms", FO_FT_INT64, 1, FO_MAX_TIMEOUT_MS, struct fo_backend_conf, timeout_ms, 0,
        "the call's own cap in ms; default none (the request deadline still applies)"),
    BOOL("required", struct fo_backend_conf, required, false,
         "its failure fails the request (fail fast)"),
    BOOL("merge", struct fo_backend_conf, merge, false,
         "lift the members of its object into the top level"),
    SHAPE_ROW("encoding", fo__parse_encoding, ENCODING_SCHEMA,
              "\"json\" (default), \"text\" (the body as a JSON string) or \"raw\" (bytes and "
              "Content-Type pass through; one-backend endpoints)"),
    SHAPE_ROW("collection", fo__parse_collection, KEY_SCHEMA,
              "wrap a top-level array as {key: [...]} before the other stages"),
    SHAPE_ROW("target", fo__parse_target, JPATH_SCHEMA,
              "path (no *) of the value that replaces the body; a miss fails the call \"shape\""),
    SHAPE_ROW("allow", fo__parse_paths, JPATHS_SCHEMA,
              "keep only these paths (their union, whatever the order)"),
    SHAPE_ROW("deny", fo__parse_paths, JPATHS_SCHEMA, "remove these paths"),
    SHAPE_ROW("rename", fo__parse_rename, RENAME_SCHEMA,
              "{path: new key}, applied in order; the key keeps its place"),
    SHAPE_ROW("ops", fo__parse_ops, OPS_SCHEMA,
              "del / move / append operations, in order, after allow, deny and rename"),
    SHAPE_ROW("group", fo__parse_group, KEY_SCHEMA, "place the value under this key, not the name"),
    SHAPE_ROW("fallback", fo__parse_fallback, "{}",
              "JSON value placed when the call fails (its digits kept); optional backends only"),
    SHAPE_ROW("pass_status", fo__parse_pass_status, PASS_SCHEMA,
              "4xx codes of a required backend that the endpoint answers with"),
    CUSTOM("forward_query", struct fo_backend_conf, fwd_query, fo__parse_fwd_query, FWD_SCHEMA,
           "narrows the endpoint's forward_query for this backend"),
    CUSTOM("forward_headers", struct fo_backend_conf, fwd_headers, fo__parse_fwd_headers, FWD_SCHEMA,
           "narrows the endpoint's forward_headers for this backend"),
    CUSTOM("depends_on", struct fo_backend_conf, dep, fo__parse_depends_on, DEPS_SCHEMA,
           "names of backends of the endpoint it waits for; {name.path} reads their bodies"),
    CUSTOM("foreach", struct fo_backend_conf, dep, fo__parse_foreach, FOREACH_SCHEMA,
           "\"name.path.*\": one call per element, {item} / {item.path} in the call"),
    INT("max_concurrency", FO_FT_UINT, 1, FO_DEPS_MAX_CONCURRENCY, struct fo_backend_conf,
        dep.max_concurrency, FO_DEPS_DEFAULT_CONCURRENCY, "foreach: items in flight at most"),
    INT("max_items", FO_FT_UINT, 1, FO_DEPS_MAX_ITEMS, struct fo_backend_conf, dep.max_items,
        FO_DEPS_DEFAULT_ITEMS, "foreach: elements at most (more fails the call \"shape\")"),
    {.key = "foreach_as", .type = FO_FT_ENUM, .names = foreach_as, .def = FO_DEPS_AS_ARRAY,
     .offset = offsetof(struct fo_backend_conf, dep.as),
     .doc = "foreach results as an \"array\" in element order or an \"object\" by element"},
    {.key = "body", .type = FO_FT_CUSTOM, .parse = fo__parse_body, .schema = "{}",
     .doc = "JSON body of a POST/PUT/PATCH call; a string \"{name.path}\" becomes the value"},
    {.key = "hosts", .type = FO_FT_CUSTOM, .parse = fo__parse_hosts,
     .offset = offsetof(struct fo_backend_conf, resil),
     .schema = "{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 64, \"items\": "
               "{\"type\": \"string\", \"pattern\": \"^https?://[^/?#]+$\"}}",
     .doc = "origins that replace the scheme and authority of url, used in round robin"},
    BOOL("idempotent", struct fo_backend_conf, resil.idempotent, false,
         "retry and hedge this backend whatever its method (else only GET and HEAD)"),
    {.key = "retry", .type = FO_FT_OBJECT, .sub = &fo__retry_table,
     .offset = offsetof(struct fo_backend_conf, resil.retry),
     .doc = "retry a failed attempt: attempts, on, backoff_ms, try_timeout_ms"},
    {.key = "hedge", .type = FO_FT_OBJECT, .sub = &fo__hedge_table,
     .offset = offsetof(struct fo_backend_conf, resil.hedge),
     .doc = "one extra attempt when the first is slow: after_ms or after, max_extra_percent"},
    {.key = "breaker", .type = FO_FT_OBJECT, .sub = &fo__breaker_table,
     .offset = offsetof(struct fo_backend_conf, resil.breaker),
     .doc = "circuit breaker (per host with hosts): failures, open_ms"},
    {.key = "rate_limit", .type = FO_FT_OBJECT, .sub = &fo__backend_rate_table,
     .offset = offsetof(struct fo_backend_conf, resil.rate_limit),
     .doc = "token bucket on calls to it: rps, burst (over it: rate_limited)"},
    INT("stale_ms", FO_FT_INT64, 1, 86400000, struct fo_backend_conf, resil.stale_ms, 0,
        "GET only: on failure serve the last good value of the URL if at most this old"),
    INT("stale_max_entries", FO_FT_SIZE, 1, 10000000, struct fo_backend_conf,
        resil.stale_max_entries, 1000, "stale values kept (distinct URLs, least recent dropped)"),
    INT("stale_max_bytes", FO_FT_SIZE, 1, FO_MAX_SIZE, struct fo_backend_conf,
        resil.stale_max_bytes, 8 << 20, "bytes of stale values kept"),
    CUSTOM("ca_file", struct fo_backend_conf, tls.ca_file, fo__parse_pem_path, FILE_SCHEMA,
           "PEM CA bundle that verifies this https backend; default the top-level ca_file, "
           "else the system's"),
    CUSTOM("client_cert_file", struct fo_backend_conf, tls.client_cert_file, fo__parse_pem_path,
           FILE_SCHEMA, "PEM client certificate for mutual TLS (with client_key_file)"),
    CUSTOM("client_key_file", struct fo_backend_conf, tls.client_key_file, fo__parse_pem_path,
           FILE_SCHEMA, "PEM private key of client_cert_file"),
    CUSTOM("server_name", struct fo_backend_conf, tls.server_name, fo__parse_server_name,
           "{\"type\": \"string\", \"minLength\": 1, \"maxLength\": 253}",
           "TLS name (SNI, certificate check, Host) when the url's host is only where to connect"),
    BOOL("insecure_skip_verify", struct fo_backend_conf, tls.insecure_skip_verify, false,
         "do not verify the backend's certificate or name (warned at start and by --check)"),
};
const struct fo__table fo__backend_table = TABLE(backend_fields, NULL);

/* clang-format on */
