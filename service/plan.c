/* plan.c -- a request as a plan (see plan.h). */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bodytmpl.h"
#include "buf.h"
#include "config.h"
#include "jtree.h"
#include "forward.h"
#include "tmpl.h"
#include "token.h"

void fo_call_drop_body(struct fo_call *call)
{
    if (call->resp)
        fo_budget_release(call->budget, call->resp_len);
    free(call->resp);
    call->resp = NULL;
    call->resp_len = 0;
    call->json.p = NULL;
    call->json.len = 0;
}

void fo_call_clear(struct fo_call *call)
{
    free(call->built);
    free(call->built_hdrs);
    call->built = NULL;
    call->built_hdrs = NULL;
    if (call->tree) {
        fo_jtree_free(call->tree);
        free(call->tree);
        call->tree = NULL;
    }
    free(call->content_type);
    call->content_type = NULL;
    call->stage = NULL;
    call->ops_skipped = false;
    fo_call_drop_body(call);
    call->outcome = FO_OK;
    call->status = 0;
    call->no_fds = false;
    call->ms = 0;
}

/* Where a call's expanded strings are while the buffers still grow. */
struct spot {
    size_t url;    /* Offset of its URL in 'urls'. */
    size_t line0;  /* Its first line in 'at' (when 'own'). */
    size_t nlines; /* Its lines. */
    bool own;      /* It has lines of its own (placeholders or forwarded fields). */
    bool refused;  /* A value could not be placed. */
};

/* Line offsets into the header text, grown as lines are added. */
struct offsets {
    size_t *at;
    size_t n, cap;
};

static int push(struct offsets *o, size_t off)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 16;
        size_t *at = realloc(o->at, cap * sizeof *at);
        if (!at)
            return -ENOMEM;
        o->at = at;
        o->cap = cap;
    }
    o->at[o->n++] = off;
    return 0;
}

/* The forwarded lines last made, for the next backend with the same list (backends mostly
 * take their endpoint's): one pass over the client's fields per list, not per call. */
struct fwd_lines {
    const struct fo_fwd_list *list; /* Whose lines, or NULL. */
    size_t first, n;                /* Their indices in the offsets. */
    bool refused;                   /* A value could not be sent. */
};

/* The header lines of backend 'b' into 'text': its configured lines (expanded when they
 * have placeholders), then what it forwards. -EILSEQ marks the call refused. */
static int plan_lines(const struct fo_endpoint_conf *ep, const struct fo_backend_conf *b,
                      const struct fo_plan_src *src, struct fo_buf *text, struct offsets *o,
                      struct fwd_lines *fw, struct spot *sp, size_t *slot)
{
    sp->own = true;
    sp->line0 = o->n;
    int rc = 0;
    for (size_t j = 0; rc == 0 && j < b->nheaders; j++) {
        size_t off = text->len;
        if (b->htmpl && b->htmpl[j])
            rc = fo_tmpl_expand(b->htmpl[j], src->vals, text, slot);
        else
            rc = fo_buf_puts(text, b->headers[j]);
        if (rc == -EILSEQ) { /* Go on: a missing value elsewhere still decides. */
            sp->refused = true;
            rc = 0;
            continue;
        }
        if (rc == 0)
            rc = fo_buf_putc(text, '\0');
        if (rc == 0)
            rc = push(o, off);
    }
    const struct fo_fwd_list *l =
        src->fwd ? fo_fwd_effective(&b->fwd_headers, &ep->fwd_headers) : NULL;
    if (rc == 0 && l && l == fw->list) {
        /* The same list as an earlier backend's: the same lines (text is shared). */
        for (size_t k = 0; rc == 0 && k < fw->n; k++)
            rc = push(o, o->at[fw->first + k]);
        sp->refused = sp->refused || fw->refused;
    } else if (rc == 0 && l) {
        size_t off = text->len, added;
        rc = fo_fwd_headers(text, &added, l, src->fwd);
        fw->refused = rc == -EILSEQ;
        if (rc == -EILSEQ) {
            sp->refused = true;
            text->len = off;
            if (text->data)
                text->data[off] = '\0';
            rc = 0;
        }
        fw->list = l;
        fw->first = o->n;
        for (size_t at = off; rc == 0 && at < text->len; at += strlen(text->data + at) + 1)
            rc = push(o, at);
        fw->n = o->n - fw->first;
    }
    sp->nlines = o->n - sp->line0;
    return rc;
}

static int build_endpoint(struct fo_plan *p, size_t i, struct fo_call *call,
                          const struct fo_tmpl_vals *vals, const struct fo_json_span *json,
                          size_t *slotp);

int fo_plan_endpoint(struct fo_plan *p, const struct fo_endpoint_conf *ep,
                     const struct fo_plan_src *src, struct fo_backend_stats *const *series,
                     size_t *slot)
{
    size_t n = ep->nbackends;
    p->calls = calloc(n, sizeof *p->calls);
    if (!p->calls)
        return -ENOMEM;
    p->n = n;
    /* Every URL into one buffer, every line of its own into another, then the calls point
     * into them (the buffers may move while they grow, so offsets first). */
    struct fo_buf urls, text;
    fo_buf_init(&urls, FO_BUF_UNLIMITED);
    fo_buf_init(&text, FO_BUF_UNLIMITED);
    struct offsets lines = {0};
    struct fwd_lines fw = {0};
    struct spot *sp = calloc(n, sizeof *sp);
    int rc = sp ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        sp[i].url = urls.len;
        if (b->dep.n) { /* Built when its dependencies have answered (fo_plan_build). */
            rc = fo_buf_putc(&urls, '\0');
            continue;
        }
        rc = fo_tmpl_expand(b->tmpl, src->vals, &urls, slot);
        if (rc == -EILSEQ) {
            sp[i].refused = true;
            rc = 0;
        } else if (rc == 0 && src->fwd) {
            rc = fo_fwd_query(&urls, sp[i].url, fo_fwd_effective(&b->fwd_query, &ep->fwd_query),
                              src->fwd);
        }
        if (rc == 0)
            rc = fo_buf_putc(&urls, '\0');
        bool fwd = src->fwd && fo_fwd_active(fo_fwd_effective(&b->fwd_headers, &ep->fwd_headers));
        if (rc == 0 && (b->htmpl || fwd))
            rc = plan_lines(ep, b, src, &text, &lines, &fw, &sp[i], slot);
    }
    if (rc == 0)
        p->urls = fo_buf_release(&urls, NULL);
    if (rc == 0 && lines.n) {
        p->hdrtext = fo_buf_release(&text, NULL);
        p->hdrs = malloc(lines.n * sizeof *p->hdrs);
        if (!p->hdrtext || !p->hdrs)
            rc = -ENOMEM;
    }
    if (rc == 0 && !p->urls)
        rc = -ENOMEM;
    fo_buf_free(&urls);
    fo_buf_free(&text);
    if (rc < 0) {
        free(sp);
        free(lines.at);
        fo_plan_clear(p);
        return rc;
    }
    for (size_t k = 0; k < lines.n; k++)
        p->hdrs[k] = p->hdrtext + lines.at[k];
    free(lines.at);
    for (size_t i = 0; i < n; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        struct fo_call *call = &p->calls[i];
        call->name = b->name;
        call->start_ms = -1;
        call->url = p->urls + sp[i].url;
        call->method = b->method;
        call->headers = sp[i].own ? p->hdrs + sp[i].line0 : (const char *const *)b->headers;
        call->nheaders = sp[i].own ? sp[i].nlines : b->nheaders;
        if (ep->forward_body && fo_method_has_body(b->method)) {
            call->body = src->body ? src->body : "";
            call->body_len = src->body ? src->body_len : 0;
            call->body_type = src->body_type ? src->body_type : "";
            if (strpbrk(call->body_type, "\r\n"))
                sp[i].refused = true;
        }
        call->refused = sp[i].refused;
        call->timeout_ms = b->timeout_ms;
        call->required = b->required;
        call->merge = b->merge;
        call->stats = series[i];
        call->shape = b->shape.any ? &b->shape : NULL;
        call->tls = &b->tls;
        if (b->dep.n) {
            call->dep = &b->dep;
            call->held = true;
            call->headers = NULL;
            call->nheaders = 0;
            call->body = NULL;
            call->body_len = 0;
        }
    }
    free(sp);
    p->ep = ep;
    p->src = *src;
    p->src.vals = NULL;
    /* A body of its own on a call that waits for nothing: placed now. */
    for (size_t i = 0; i < n; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        struct fo_call *call = &p->calls[i];
        if (!b->body || b->dep.n)
            continue;
        if (!fo_body_dynamic(b->body)) {
            call->body = fo_body_text(b->body, &call->body_len);
            call->body_type = NULL;
            continue;
        }
        rc = build_endpoint(p, i, call, src->vals, NULL, slot);
        if (rc == -EILSEQ)
            call->refused = true;
        else if (rc < 0) {
            fo_plan_clear(p);
            return rc;
        }
    }
    return 0;
}

/* The URL, header lines and body of a held call of an endpoint (or an item of one). */
static int build_endpoint(struct fo_plan *p, size_t i, struct fo_call *call,
                          const struct fo_tmpl_vals *vals, const struct fo_json_span *json,
                          size_t *slotp)
{
    const struct fo_endpoint_conf *ep = p->ep;
    const struct fo_backend_conf *b = &ep->backends[i];
    struct fo_buf out, text;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    fo_buf_init(&text, FO_BUF_UNLIMITED);
    struct offsets lines = {0};
    struct fwd_lines fw = {0};
    struct spot sp = {0};
    struct fo_plan_src src = p->src;
    src.vals = vals;
    size_t slot;
    int rc = fo_tmpl_expand(b->tmpl, vals, &out, &slot);
    if (rc == 0 && src.fwd)
        rc = fo_fwd_query(&out, 0, fo_fwd_effective(&b->fwd_query, &ep->fwd_query), src.fwd);
    if (rc == 0)
        rc = fo_buf_putc(&out, '\0');
    bool fwd = src.fwd && fo_fwd_active(fo_fwd_effective(&b->fwd_headers, &ep->fwd_headers));
    if (rc == 0 && (b->htmpl || fwd))
        rc = plan_lines(ep, b, &src, &text, &lines, &fw, &sp, &slot);
    else if (rc == 0)
        for (size_t k = 0; rc == 0 && k < b->nheaders; k++) {
            size_t off = text.len;
            rc = fo_buf_puts(&text, b->headers[k]);
            if (rc == 0)
                rc = fo_buf_putc(&text, '\0');
            if (rc == 0)
                rc = push(&lines, off);
        }
    size_t body_at = out.len + text.len;
    if (rc == 0 && text.len)
        rc = fo_buf_append(&out, text.data, text.len);
    if (rc == 0 && b->body)
        rc = fo_body_expand(b->body, vals, json, &out, &slot);
    if (rc == 0 && sp.refused)
        rc = -EILSEQ;
    if (slotp)
        *slotp = slot;
    size_t url_len = strlen(out.data ? out.data : "");
    if (rc == 0) {
        size_t len;
        call->built = fo_buf_release(&out, &len);
        call->built_hdrs = lines.n ? malloc(lines.n * sizeof *call->built_hdrs) : NULL;
        if (!call->built || (lines.n && !call->built_hdrs))
            rc = -ENOMEM;
        for (size_t k = 0; rc == 0 && k < lines.n; k++)
            call->built_hdrs[k] = call->built + url_len + 1 + lines.at[k];
        if (rc == 0) {
            call->url = call->built;
            call->headers = call->built_hdrs;
            call->nheaders = lines.n;
            if (b->body) {
                call->body = call->built + body_at;
                call->body_len = len - body_at;
                call->body_type = NULL;
            }
        }
    }
    fo_buf_free(&out);
    fo_buf_free(&text);
    free(lines.at);
    return rc;
}

/* The same for a request of a batch. */
static int build_batch(struct fo_plan *p, size_t i, struct fo_call *call,
                       const struct fo_tmpl_vals *vals, const struct fo_json_span *json)
{
    return fo_batch_build(p->batch, i, call, vals, json);
}

int fo_plan_build(struct fo_plan *p, size_t i, struct fo_call *call,
                  const struct fo_tmpl_vals *vals, const struct fo_json_span *json)
{
    return p->ep ? build_endpoint(p, i, call, vals, json, NULL)
                 : build_batch(p, i, call, vals, json);
}

int fo_plan_batch(struct fo_plan *p, const struct fo_batch *b,
                  struct fo_backend_stats *const *host_series, const struct fo_backend_tls *tls)
{
    p->calls = calloc(b->n, sizeof *p->calls);
    if (!p->calls)
        return -ENOMEM;
    p->n = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const struct fo_batch_req *q = &b->reqs[i];
        struct fo_call *call = &p->calls[i];
        call->name = q->name;
        call->start_ms = -1;
        call->url = q->url;
        call->method = q->method;
        call->headers = (const char *const *)q->headers;
        call->nheaders = q->nheaders;
        call->body = q->body;
        call->body_len = q->body_len;
        call->timeout_ms = q->timeout_ms;
        call->required = q->required;
        call->merge = q->merge;
        call->stats = host_series[q->allow_index]; /* Checked by fo_batch_parse. */
        call->tls = tls;
        if (q->dep.n) {
            call->dep = &q->dep;
            call->held = true;
        }
    }
    p->batch = b;
    return 0;
}

void fo_plan_clear(struct fo_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        fo_call_clear(&p->calls[i]);
    free(p->calls);
    free(p->urls);
    free(p->hdrtext);
    free(p->hdrs);
    p->calls = NULL;
    p->urls = NULL;
    p->hdrtext = NULL;
    p->hdrs = NULL;
    p->n = 0;
}
