/* placeholder.c -- the placeholder namespaces and their lookups (see placeholder.h).
 *
 * Each lookup borrows its value from the request: path parameters from the
 * decoded fo_params, query and header values from libmicrohttpd's parse of
 * the head, which lives until the request ends. Query values are handed over
 * still percent-encoded (the front keeps the target as the client sent it,
 * server.c), so tmpl.c decodes them as it places them; libmicrohttpd has
 * already read each '+' as a space, as a form does. */
#include "placeholder.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "deps.h"
#include "request.h"
#include "token.h"

/* ---- {name}: path parameters ---- */

static int bind_path(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    const struct fo_endpoint_conf *ep = arg;
    int idx = ep->pattern ? fo_path_param_index(ep->pattern, s, n) : -1;
    if (idx < 0)
        snprintf(err, errlen, "{%.*s} is not a parameter of the endpoint path", (int)n, s);
    return idx < 0 ? -EINVAL : idx;
}

static void lookup_path(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct request *r = req;
    if ((size_t)id < r->params.n)
        *out = (struct fo_tmpl_val){r->params.p[id].value, r->params.p[id].len, false};
}

/* ---- {query.name} ---- */

/* Longest query name a placeholder may give (decoded). */
#define MAX_QUERY_NAME 200

/* A query name placeholder holds no byte that separates or escapes. */
static int bind_query(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    if (n > MAX_QUERY_NAME) {
        snprintf(err, errlen, "query name longer than %d bytes", MAX_QUERY_NAME);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strchr("&=#%+", s[i])) {
            snprintf(err, errlen, "query name \"%.*s\" must not hold '%c' (name it decoded)",
                     (int)n, s, s[i]);
            return -EINVAL;
        }
    }
    return 0;
}

/* True when the raw (percent-encoded) query key decodes to [name, name+n). */
static bool key_is(const char *raw, size_t rawlen, const char *name, size_t n)
{
    char tmp[3 * MAX_QUERY_NAME]; /* Each decoded byte is at most 3 raw ones. */
    if (rawlen < n || rawlen > sizeof tmp)
        return false;
    return fo_url_decode(tmp, raw, rawlen) == n && memcmp(tmp, name, n) == 0;
}

struct query_find {
    const char *name;
    size_t n;
    struct fo_tmpl_val *out;
};

static enum MHD_Result find_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    struct query_find *f = cls;
    (void)kind;
    if (!key_is(key, key_size, f->name, f->n))
        return MHD_YES;
    *f->out = (struct fo_tmpl_val){value ? value : "", value ? value_size : 0, true};
    return MHD_NO; /* The first one. */
}

static void lookup_query(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct request *r = req;
    struct query_find f = {s, n, out};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, find_arg, &f);
}

/* ---- {header.Name} ---- */

static int bind_header(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    if (!fo_is_token(s, n)) {
        snprintf(err, errlen, "header name \"%.*s\" is not a token", (int)n, s);
        return -EINVAL;
    }
    return 0;
}

static enum MHD_Result find_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct query_find *f = cls;
    (void)kind;
    if (key_size != f->n || strncasecmp(key, f->name, f->n) != 0)
        return MHD_YES;
    *f->out = (struct fo_tmpl_val){value ? value : "", value ? value_size : 0, false};
    return MHD_NO;
}

static void lookup_header(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct request *r = req;
    struct query_find f = {s, n, out};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, find_header, &f);
}

/* ---- {auth.name}, {jwt.<claim>}: who called (auth.h) ---- */

static int bind_auth(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 4 && memcmp(s, "name", 4) == 0)
        return 0;
    snprintf(err, errlen, "{auth.%.*s}: the auth namespace has only {auth.name}", (int)n, s);
    return -EINVAL;
}

static void lookup_auth(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct request *r = req;
    if (fo_auth_name(&r->auth, &out->p, &out->len))
        out->pct = false;
}

static int bind_jwt(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    return 0; /* Any claim name; an absent claim takes the default. */
}

static void lookup_jwt(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct request *r = req;
    if (fo_auth_claim_text(&r->auth, s, n, &out->p, &out->len))
        out->pct = false;
}

/* The namespaces. A new one is a row here (and its bind and lookup). */
/* ---- {name.path}: a value from a dependency's body, {item}: a foreach element ---- */

/* The value is not in the request: the fan-in places it once the dependency has answered
 * (graph.h); here it is only registered. Which dependency may be read is checked against
 * each backend's depends_on once the endpoint is read (config_deps.c). */
static int bind_dep(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    const struct fo_endpoint_conf *ep = arg;
    return fo_dep_ref_add(ep->deprefs, s, n, err, errlen);
}

static void lookup_dep(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
}

static const struct fo_tmpl_ns namespaces[] = {
    {.name = "", .bind = bind_path, .lookup = lookup_path},
    {.name = "query", .bind = bind_query, .lookup = lookup_query},
    {.name = "header", .fold_case = true, .bind = bind_header, .lookup = lookup_header},
    {.name = "auth", .bind = bind_auth, .lookup = lookup_auth},
    {.name = "jwt", .bind = bind_jwt, .lookup = lookup_jwt},
    {.name = "*", .bind = bind_dep, .lookup = lookup_dep},
};

int fo_placeholder_scope(struct fo_tmpl_scope **out, const struct fo_endpoint_conf *ep)
{
    return fo_tmpl_scope_create(out, namespaces, sizeof namespaces / sizeof *namespaces, ep);
}
