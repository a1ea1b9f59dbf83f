/* cors.c -- the cross-origin policy (see cors.h). */
#include "cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "config_schema.h"
#include "token.h"

#define MAX_AGE_S 86400

struct fo_cors {
    char **origins; /* Exact origins (from malloc()), norigins of them. */
    size_t norigins;
    bool any_origin;  /* "*" is listed. */
    char *methods;    /* "GET, POST" (from malloc()), or NULL: the endpoints' own. */
    char *headers;    /* Allowed request headers, joined, or NULL. */
    bool any_header;  /* "*": echo Access-Control-Request-Headers. */
    char *expose;     /* Exposed response headers, joined, or NULL. */
    bool credentials; /* Access-Control-Allow-Credentials: true. */
    long max_age_s;   /* Access-Control-Max-Age, or -1: not sent. */
};

bool fo_cors_is_preflight(struct MHD_Connection *c, const char *method)
{
    return strcmp(method, "OPTIONS") == 0 &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
}

/* The value for Access-Control-Allow-Origin, or NULL: not allowed. */
static const char *allowed(const struct fo_cors *p, const char *origin)
{
    if (!origin)
        return NULL;
    for (size_t i = 0; i < p->norigins; i++)
        if (strcmp(p->origins[i], origin) == 0)
            return origin;
    return p->any_origin ? "*" : NULL;
}

/* Only the tail common to both kinds of answer. */
static const char *common(const struct fo_cors *p, struct MHD_Connection *c,
                          struct MHD_Response *resp, const char *vary)
{
    MHD_add_response_header(resp, "Vary", vary);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *allow = allowed(p, origin);
    if (!allow)
        return NULL;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
    if (p->credentials)
        MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    return allow;
}

void fo_cors_preflight(const struct fo_cors *p, struct MHD_Connection *c, const char *methods,
                       struct MHD_Response *resp)
{
    if (!common(p, c, resp,
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            p->methods ? p->methods : methods);
    const char *asked =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    if (p->any_header && asked && !strpbrk(asked, "\r\n"))
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", asked);
    else if (p->headers)
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", p->headers);
    if (p->max_age_s >= 0) {
        char age[24];
        snprintf(age, sizeof age, "%ld", p->max_age_s);
        MHD_add_response_header(resp, "Access-Control-Max-Age", age);
    }
}

void fo_cors_answer(const struct fo_cors *p, struct MHD_Connection *c, struct MHD_Response *resp)
{
    if (common(p, c, resp, "Origin") && p->expose)
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", p->expose);
}

/* ---- config ---- */

/* An origin as browsers serialize it: scheme "://" host [":" port], nothing after. */
static bool is_origin(const char *s)
{
    const char *rest;
    if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    else
        return false;
    if (!*rest)
        return false;
    for (const char *q = rest; *q; q++) {
        unsigned char ch = (unsigned char)*q;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
                  ch == ':' || ch == '[' || ch == ']';
        if (!ok)
            return false; /* Upper case, a path, a query, userinfo: never an Origin. */
    }
    return true;
}

/* A list of tokens (or "*" when 'star') joined with ", " into *out. */
static bool token_list(struct fo__vctx *c, const cJSON *v, const char *path, bool star,
                       bool methods, char **out, bool *any)
{
    if (!cJSON_IsArray(v)) {
        fo__errorf(c, path, "must be an array of %s", methods ? "methods" : "header names");
        return false;
    }
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    bool ok = true;
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        const char *s = cJSON_IsString(e) ? e->valuestring : NULL;
        if (s && star && strcmp(s, "*") == 0) {
            *any = true;
            continue;
        }
        if (!s || (methods ? !fo_is_method(s) : !fo_is_token(s, strlen(s)))) {
            fo__errorf(c, p,
                       methods ? "must be an upper-case method token" : "must be a header name%s",
                       methods ? "" : (star ? " or \"*\"" : ""));
            ok = false;
            continue;
        }
        if ((b.len && fo_buf_puts(&b, ", ") < 0) || fo_buf_puts(&b, s) < 0)
            c->oom = true;
    }
    if (ok && b.len) {
        *out = fo_buf_release(&b, NULL);
        if (!*out)
            c->oom = true;
    }
    fo_buf_free(&b);
    return ok;
}

bool fo__cors_parse(struct fo__vctx *c, const cJSON *v, const char *path, struct fo_cors **out)
{
    static const char *const keys[] = {"allow_origins",
                                       "allow_methods",
                                       "allow_headers",
                                       "expose_headers",
                                       "allow_credentials",
                                       "max_age_s",
                                       NULL};
    *out = NULL;
    if (cJSON_IsNull(v))
        return true;
    if (!cJSON_IsObject(v)) {
        fo__errorf(c, path, "must be an object or null");
        return false;
    }
    struct fo_cors *p = calloc(1, sizeof *p);
    if (!p) {
        c->oom = true;
        return false;
    }
    p->max_age_s = -1;
    bool ok = true;
    char q[96], at[300];
    for (const cJSON *m = v->child; m; m = m->next) {
        bool known = false;
        for (const char *const *k = keys; *k && !known; k++)
            known = strcmp(*k, m->string) == 0;
        if (!known) {
            fo__errorf(c, path, "unknown key \"%s\"", fo__quote(q, sizeof q, m->string));
            ok = false;
        }
        for (const cJSON *prev = v->child; known && prev != m; prev = prev->next)
            if (strcmp(prev->string, m->string) == 0) {
                fo__errorf(c, path, "duplicate key \"%s\"", fo__quote(q, sizeof q, m->string));
                ok = false;
                break;
            }
    }
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(v, "allow_origins");
    fo__pathf(at, sizeof at, "%s.allow_origins", path);
    if (!o) {
        fo__errorf(c, path, "missing key \"allow_origins\"");
        ok = false;
    } else if (!cJSON_IsArray(o) || !o->child) {
        fo__errorf(c, at, "must be a non-empty array of origins or \"*\"");
        ok = false;
    } else {
        p->origins = calloc((size_t)cJSON_GetArraySize(o), sizeof *p->origins);
        if (!p->origins)
            c->oom = true;
        size_t i = 0;
        for (const cJSON *e = o->child; e && p->origins; e = e->next, i++) {
            char ep[320];
            fo__pathf(ep, sizeof ep, "%s[%zu]", at, i);
            if (cJSON_IsString(e) && strcmp(e->valuestring, "*") == 0) {
                p->any_origin = true;
            } else if (cJSON_IsString(e) && is_origin(e->valuestring)) {
                p->origins[p->norigins++] = fo__strdup(c, e->valuestring);
            } else {
                fo__errorf(c, ep,
                           "must be \"*\" or an origin such as \"https://app.example.com\" "
                           "(lower case, no path, no trailing slash)");
                ok = false;
            }
        }
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "allow_methods");
    bool unused = false;
    fo__pathf(at, sizeof at, "%s.allow_methods", path);
    if (m)
        ok = token_list(c, m, at, false, true, &p->methods, &unused) && ok;
    m = cJSON_GetObjectItemCaseSensitive(v, "allow_headers");
    fo__pathf(at, sizeof at, "%s.allow_headers", path);
    if (m)
        ok = token_list(c, m, at, true, false, &p->headers, &p->any_header) && ok;
    m = cJSON_GetObjectItemCaseSensitive(v, "expose_headers");
    fo__pathf(at, sizeof at, "%s.expose_headers", path);
    if (m)
        ok = token_list(c, m, at, false, false, &p->expose, &unused) && ok;
    m = cJSON_GetObjectItemCaseSensitive(v, "allow_credentials");
    fo__pathf(at, sizeof at, "%s.allow_credentials", path);
    if (m && !cJSON_IsBool(m)) {
        fo__errorf(c, at, "must be true or false");
        ok = false;
    }
    p->credentials = m && cJSON_IsTrue(m);
    if (p->credentials && p->any_origin) {
        fo__errorf(c, at,
                   "cannot be true with \"*\" in allow_origins (browsers refuse a "
                   "wildcard origin on credentialed requests): list the origins");
        ok = false;
    }
    m = cJSON_GetObjectItemCaseSensitive(v, "max_age_s");
    fo__pathf(at, sizeof at, "%s.max_age_s", path);
    if (m && (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > MAX_AGE_S ||
              m->valuedouble != (double)(long)m->valuedouble)) {
        fo__errorf(c, at, "must be an integer from 0 to %d", MAX_AGE_S);
        ok = false;
    } else if (m) {
        p->max_age_s = (long)m->valuedouble;
    }
    if (!ok || c->oom) {
        fo_cors_destroy(p);
        return false;
    }
    *out = p;
    return true;
}

void fo_cors_destroy(struct fo_cors *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->norigins; i++)
        free(p->origins[i]);
    free(p->origins);
    free(p->methods);
    free(p->headers);
    free(p->expose);
    free(p);
}
