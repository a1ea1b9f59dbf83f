/* batch_deps.c -- the dependent calls of an ad-hoc batch: templates, checks, building.
 *
 * A batch request with depends_on (or foreach) may hold placeholders {name.path} (and
 * {item}, {item.path}) in its URL's path and query, its header values and its body's
 * strings; its URL may also be one placeholder whole, "{first.next}", to follow a link a
 * backend returned. Such a request is held until its dependencies answered; its URL is then
 * checked against allow_hosts like any other (a refused one ends "forbidden", no connection
 * made), so a backend's answer can never make fanout call a host the batch could not name.
 * The batch's scope has one namespace, the catch-all of dependency values (tmpl.h).
 * Threads: fo__batch_deps on the request's MHD thread; fo_batch_build on the worker thread
 * that runs the batch's calls (it reads the batch only). */
#include "batch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodytmpl.h"
#include "buf.h"

static int bind_ref(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    const struct fo_batch *b = arg;
    return fo_dep_ref_add(b->refs, s, n, err, errlen);
}

static void lookup_none(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
}

static const struct fo_tmpl_ns batch_ns[] = {
    {.name = "*", .bind = bind_ref, .lookup = lookup_none},
};

__attribute__((format(printf, 2, 3))) static int bad(struct fo_batch_error *err, const char *fmt,
                                                     ...)
{
    err->status = 400;
    err->code = "invalid_batch";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A URL with placeholders, each replaced by "x", as allow_hosts would see its host. */
static int check_shape(const struct fo_batch *b, const char *url, size_t *index, char *msg,
                       size_t msglen)
{
    struct fo_buf t;
    fo_buf_init(&t, FO_BUF_UNLIMITED);
    int rc = 0;
    for (const char *p = url; *p && rc == 0; p++) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        rc = fo_buf_putc(&t, close ? 'x' : *p);
        if (close)
            p = close;
    }
    if (rc == 0)
        rc = fo_batch_check_url(t.data, b->conf, msg, msglen, index);
    fo_buf_free(&t);
    return rc;
}

/* Compile request r's URL, header lines and body. */
static int compile_req(struct fo_batch *b, struct fo_batch_req *r, struct fo_batch_error *err)
{
    char why[200];
    size_t ul = strlen(r->url);
    int rc = 0;
    if (ul > 2 && r->url[0] == '{' && r->url[ul - 1] == '}' && !memchr(r->url + 1, '{', ul - 2)) {
        struct fo_tmpl *t = NULL;
        rc = fo_tmpl_compile(&t, r->url, FO_TMPL_TEXT, b->scope, why, sizeof why);
        if (rc == 0 && fo_tmpl_slots(t, &r->url_slot, 1) == 1)
            r->url_whole = true;
        fo_tmpl_destroy(t);
    } else if (strchr(r->url, '{')) {
        rc = fo_tmpl_compile(&r->utmpl, r->url, FO_TMPL_URL, b->scope, why, sizeof why);
        if (rc == 0 && check_shape(b, r->url, &r->allow_index, why, sizeof why) < 0) {
            err->status = 403;
            err->code = "host_not_allowed";
            snprintf(err->message, sizeof err->message, "request \"%s\": %s", r->name, why);
            return -EINVAL;
        }
    }
    if (rc == -EINVAL)
        return bad(err, "request \"%s\": url: %s", r->name, why);
    if (rc < 0)
        return rc;
    if (r->nheaders && !(r->htmpl = calloc(r->nheaders, sizeof *r->htmpl)))
        return -ENOMEM;
    for (size_t k = 0; k < r->nheaders; k++) {
        rc =
            fo_tmpl_compile(&r->htmpl[k], r->headers[k], FO_TMPL_HEADER, b->scope, why, sizeof why);
        if (rc == -EINVAL)
            return bad(err, "request \"%s\": headers: %s", r->name, why);
        if (rc < 0)
            return rc;
    }
    if (r->body) {
        rc = fo_body_compile(&r->btmpl, r->body, r->body_len, b->scope, why, sizeof why);
        if (rc == -EINVAL)
            return bad(err, "request \"%s\": body: %s", r->name, why);
    }
    return rc;
}

/* Each placeholder of r names one of its dependencies ({item}: it has a foreach). */
static int check_refs(const struct fo_batch *b, const struct fo_batch_req *r,
                      struct fo_batch_error *err)
{
    unsigned slots[3 * FO_TMPL_MAX_SLOTS];
    size_t n = fo_tmpl_slots(r->utmpl, slots, FO_TMPL_MAX_SLOTS);
    if (r->url_whole)
        slots[n++] = r->url_slot;
    for (size_t k = 0; k < r->nheaders && n < FO_TMPL_MAX_SLOTS; k++)
        n += fo_tmpl_slots(r->htmpl[k], slots + n, FO_TMPL_MAX_SLOTS);
    n += fo_body_slots(r->btmpl, slots + n, FO_TMPL_MAX_SLOTS);
    for (size_t k = 0; k < n; k++) {
        const struct fo_dep_ref *ref = &b->refs->r[fo_tmpl_slot_id(b->scope, slots[k])];
        if (ref->item && !r->dep.foreach)
            return bad(err, "request \"%s\": {%s} is only for a request with \"foreach\"", r->name,
                       ref->text);
        if (!ref->item && fo_dep_index(&r->dep, ref->name) < 0)
            return bad(err, "request \"%s\": {%s} reads a request not in its depends_on", r->name,
                       ref->text);
    }
    return 0;
}

int fo__batch_deps(struct fo_batch *b, struct fo_batch_error *err)
{
    for (size_t i = 0; i < b->n; i++)
        b->has_deps = b->has_deps || b->reqs[i].dep.n > 0;
    if (!b->has_deps)
        return 0;
    b->refs = calloc(1, sizeof *b->refs);
    if (!b->refs)
        return -ENOMEM;
    int rc = fo_tmpl_scope_create(&b->scope, batch_ns, 1, b);
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        if (b->reqs[i].dep.n)
            rc = compile_req(b, &b->reqs[i], err);
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        if (b->reqs[i].dep.n)
            rc = check_refs(b, &b->reqs[i], err);
    if (rc < 0)
        return rc;
    struct fo_dep **deps = calloc(b->n, sizeof *deps);
    const char **names = calloc(b->n, sizeof *names);
    if (!deps || !names) {
        free(deps);
        free(names);
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        deps[i] = &b->reqs[i].dep;
        names[i] = b->reqs[i].name;
    }
    char why[200];
    size_t at = 0;
    rc = fo_deps_check(deps, names, b->n, why, sizeof why, &at);
    if (rc == -EINVAL)
        bad(err, "request \"%s\": %s", names[at], why);
    for (size_t k = 0; rc == 0 && k < b->refs->n; k++) {
        struct fo_dep_ref *ref = &b->refs->r[k];
        for (size_t i = 0; !ref->item && i < b->n; i++)
            if (strcmp(names[i], ref->name) == 0)
                ref->call = i;
    }
    free(deps);
    free(names);
    return rc;
}

void fo__batch_req_deps_free(struct fo_batch_req *r)
{
    fo_dep_free(&r->dep);
    fo_tmpl_destroy(r->utmpl);
    for (size_t k = 0; r->htmpl && k < r->nheaders; k++)
        fo_tmpl_destroy(r->htmpl[k]);
    free(r->htmpl);
    fo_body_destroy(r->btmpl);
}

int fo_batch_build(const struct fo_batch *b, size_t i, struct fo_call *call,
                   const struct fo_tmpl_vals *vals, const struct fo_json_span *json)
{
    const struct fo_batch_req *r = &b->reqs[i];
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    size_t slot;
    int rc = 0;
    if (r->url_whole) {
        const struct fo_tmpl_val *v = &vals->v[r->url_slot];
        char msg[200];
        rc = v->p ? fo_buf_append(&out, v->p, v->len) : -ENOENT;
        if (rc == 0 && (memchr(out.data, '\0', out.len) ||
                        fo_batch_check_url(out.data, b->conf, msg, sizeof msg, NULL) < 0))
            rc = -EACCES; /* Not a URL the batch may call: no connection is made. */
    } else if (r->utmpl) {
        rc = fo_tmpl_expand(r->utmpl, vals, &out, &slot);
    } else {
        rc = fo_buf_puts(&out, r->url);
    }
    if (rc == 0)
        rc = fo_buf_putc(&out, '\0');
    size_t *at = r->nheaders ? calloc(r->nheaders, sizeof *at) : NULL;
    if (r->nheaders && !at)
        rc = -ENOMEM;
    for (size_t k = 0; rc == 0 && k < r->nheaders; k++) {
        at[k] = out.len;
        rc = fo_tmpl_expand(r->htmpl[k], vals, &out, &slot);
        if (rc == 0)
            rc = fo_buf_putc(&out, '\0');
    }
    size_t body_at = out.len;
    if (rc == 0 && r->btmpl)
        rc = fo_body_expand(r->btmpl, vals, json, &out, &slot);
    if (rc == 0) {
        size_t len;
        call->built = fo_buf_release(&out, &len);
        call->built_hdrs = r->nheaders ? calloc(r->nheaders, sizeof *call->built_hdrs) : NULL;
        if (!call->built || (r->nheaders && !call->built_hdrs))
            rc = -ENOMEM;
        for (size_t k = 0; rc == 0 && k < r->nheaders; k++)
            call->built_hdrs[k] = call->built + at[k];
        if (rc == 0) {
            call->url = call->built;
            call->headers = call->built_hdrs;
            call->nheaders = r->nheaders;
            if (r->btmpl) {
                call->body = call->built + body_at;
                call->body_len = len - body_at;
            }
        }
    }
    free(at);
    fo_buf_free(&out);
    return rc;
}
