/* plan.c -- a request as a plan (see plan.h). */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>

#include "batch.h"
#include "buf.h"
#include "config.h"
#include "tmpl.h"

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
    fo_call_drop_body(call);
    call->outcome = FO_OK;
    call->status = 0;
    call->no_fds = false;
    call->ms = 0;
}

int fo_plan_endpoint(struct fo_plan *p, const struct fo_endpoint_conf *ep,
                     const struct fo_params *params, struct fo_backend_stats *const *series)
{
    p->calls = calloc(ep->nbackends, sizeof *p->calls);
    if (!p->calls)
        return -ENOMEM;
    p->n = ep->nbackends;
    /* Every URL into one buffer, then the calls point into it (the buffer may
     * move while it grows, so offsets first). */
    struct fo_buf urls;
    fo_buf_init(&urls, FO_BUF_UNLIMITED);
    size_t *at = calloc(ep->nbackends, sizeof *at);
    int rc = at ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < ep->nbackends; i++) {
        at[i] = urls.len;
        rc = fo_tmpl_expand(ep->backends[i].tmpl, params, &urls);
        if (rc == 0)
            rc = fo_buf_putc(&urls, '\0');
    }
    if (rc == 0)
        p->urls = fo_buf_release(&urls, NULL);
    fo_buf_free(&urls);
    if (rc < 0 || !p->urls) {
        free(at);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ep->nbackends; i++) {
        const struct fo_backend_conf *b = &ep->backends[i];
        struct fo_call *call = &p->calls[i];
        call->name = b->name;
        call->url = p->urls + at[i];
        call->method = b->method;
        call->headers = (const char *const *)b->headers;
        call->nheaders = b->nheaders;
        call->timeout_ms = b->timeout_ms;
        call->required = b->required;
        call->merge = b->merge;
        call->stats = series[i];
        call->tls = &b->tls;
    }
    free(at);
    return 0;
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
    }
    return 0;
}

void fo_plan_clear(struct fo_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        fo_call_clear(&p->calls[i]);
    free(p->calls);
    free(p->urls);
    p->calls = NULL;
    p->urls = NULL;
    p->n = 0;
}
