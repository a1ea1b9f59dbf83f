/* finish.c -- the end of a fan-out: the status, the merged document, the answer.
 *
 * Runs on the MHD thread the pool resumed, after every call came through the pipeline on
 * the worker (request.c's fan-in). The status follows the calls' tally: a required call
 * that failed decides it (a pass_status code of its passes through as that code, anything
 * else is 502, or 504 for a timeout); no call succeeding is 502/504 too (a fallback counts
 * as a failure there); otherwise 200 with the merged document. An endpoint with encoding
 * "raw" answers its one backend's bytes and Content-Type as they came. The endpoint's ops
 * run on the merged document before the "_fanout" report is added, so they never see or
 * edit the report. */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "jtree.h"
#include "log.h"
#include "merge.h"
#include "shape.h"

/* The endpoint's ops over the merged object in 'b' (replaced by the result). */
static int endpoint_ops(struct request *r, struct fo_buf *b, bool *skipped)
{
    const struct fo_shape *s = &r->ep->shape;
    struct fo_jtree t;
    struct fo_buf out;
    size_t max = r->rt->cfg->max_request_response_bytes;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    int rc = fo_jtree_init(&t, (struct fo_json_span){b->data, b->len}, max, r->front->budget);
    if (rc == 0)
        rc = fo_shape_ops(&t, s->ops, s->nops, skipped);
    if (rc == 0)
        rc = fo_jtree_write(t.root, &out);
    fo_jtree_free(&t);
    if (rc == 0) {
        fo_buf_free(b);
        *b = out;
    } else {
        fo_buf_free(&out);
    }
    return rc;
}

/* 200: the merged document, with the endpoint's ops and the report. */
static int write_merged(struct request *r, struct fo_buf *b, struct fo_report *rep)
{
    struct fo_call *calls = r->plan.calls;
    size_t n = r->plan.n;
    bool ops = r->ep && r->ep->shape.nops;
    if (!ops)
        return fo_merge_write(b, calls, n, r->report ? rep : NULL);
    int rc = fo_merge_body(b, calls, n, r->report);
    if (rc == 0)
        rc = endpoint_ops(r, b, &rep->ops_skipped);
    if (rc == 0 && r->report)
        rc = fo_merge_append_report(b, calls, n, rep);
    return rc;
}

/* An endpoint whose one backend is "raw": its bytes, its Content-Type. */
static enum MHD_Result answer_raw(struct request *r, struct fo_call *c)
{
    char *body = malloc(c->resp_len ? c->resp_len : 1);
    if (!body)
        return MHD_NO;
    memcpy(body, c->resp ? c->resp : "", c->resp_len);
    const char *type = c->content_type ? c->content_type : "application/octet-stream";
    enum MHD_Result res = fo__answer_bytes(r, MHD_HTTP_OK, body, c->resp_len, type, "true", NULL);
    fo_call_drop_body(c);
    return res;
}

enum MHD_Result fo_request_finish(struct request *r)
{
    fo__request_unwait(r);
    if (r->state == REQ_FAILED)
        return fo_request_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                "the worker queues are full; retry later", NULL);

    /* Fan-in happened on the worker (request.c's on_call_ended): every call is in. */
    size_t n = r->plan.n;
    const struct fo_tally *t = &r->tally;
    if (t->in != n) {
        fo_log(FO_LOG_ERROR, "fanin_short", "\"got\":%zu,\"want\":%zu", t->in, n);
        return MHD_NO;
    }
    struct fo_call *calls = r->plan.calls;
    size_t ok = t->ok;
    size_t fresh = ok - t->stale - t->partial; /* Stale values, failed items: not complete. */
    /* Which failure decides the status: a required call's, preferring one
     * that failed by itself over one cancelled because of another. */
    ssize_t failed_required = t->req_failed >= 0 ? t->req_failed : t->req_cancelled;
    ssize_t first_failed = t->first_failed;
    r->complete = fresh == n;
    if (fresh == n && n == 1 && calls[0].shape && calls[0].shape->encoding == FO_ENC_RAW)
        return answer_raw(r, &calls[0]);

    struct fo_report rep = {
        .complete = fresh == n,
        .elapsed_ms = (double)(fo_clock_us() - r->start_us) / 1000.0,
    };
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    unsigned status = MHD_HTTP_OK;
    const char *complete = fresh == n ? "true" : "false";
    int rc;
    bool starved = false; /* The failure came from the process itself, not a backend. */
    if (failed_required >= 0 || ok == 0)
        starved = calls[failed_required >= 0 ? failed_required : first_failed].no_fds;
    const struct fo_call *bad = NULL;
    if (failed_required >= 0 || ok == 0)
        bad = &calls[failed_required >= 0 ? failed_required : first_failed];
    if (starved) {
        rc = fo_merge_error(&b, "overloaded", "out of file descriptors; retry later", NULL, calls,
                            n, r->report ? &rep : NULL);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        complete = NULL;
    } else if (failed_required >= 0 && bad->outcome == FO_ERR_STATUS &&
               fo_shape_passes(bad->shape, bad->status)) {
        char msg[200];
        snprintf(msg, sizeof msg, "required backend answered %d", bad->status);
        status = (unsigned)bad->status;
        rc = fo_merge_error_status(&b, "backend_status", msg, bad->name, bad->status, calls, n,
                                   r->report ? &rep : NULL);
        complete = NULL;
    } else if (bad) {
        bool timeout = failed_required >= 0 ? bad->outcome == FO_ERR_TIMEOUT : t->any_timeout;
        status = timeout ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
        char msg[200];
        if (failed_required >= 0)
            snprintf(msg, sizeof msg, "required backend failed: %s", fo_outcome_name(bad->outcome));
        else
            snprintf(msg, sizeof msg, "no backend succeeded");
        rc = fo_merge_error(&b, timeout ? "backend_timeout" : "backend_failed", msg, bad->name,
                            calls, n, r->report ? &rep : NULL);
        complete = NULL;
    } else {
        rc = write_merged(r, &b, &rep);
    }
    for (size_t i = 0; i < n; i++) /* Merged: the bodies are copied into the answer. */
        fo_call_drop_body(&calls[i]);
    if (rc == -E2BIG) { /* Only the endpoint's ops cap their tree. */
        fo_buf_free(&b);
        return fo_request_error(r, MHD_HTTP_BAD_GATEWAY, "too_large",
                                "the merged document is over max_request_response_bytes for "
                                "the endpoint's ops",
                                NULL);
    }
    if (rc < 0) {
        fo_buf_free(&b);
        return MHD_NO;
    }
    size_t len;
    char *body = fo_buf_release(&b, &len);
    return fo__answer_json(r, status, body, len, complete, NULL);
}
