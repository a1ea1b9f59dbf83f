/* stage_stream.c -- target, allow/deny and rename in one pass, for a backend whose shape
 * needs nothing else (see pipeline.h and shape_stream.c); the tree stages then pass it by. */
#include "pipeline.h"

#include "alloc.h"
#include "shape.h"

int fo_stage_stream(const struct fo_stage_env *env, struct fo_call *call)
{
    const struct fo_shape *s = call->shape;
    if (!s || !s->stream)
        return 0;
    struct fo_buf out;
    struct fo_json_span v;
    fo_buf_init(&out, env->max_tree_bytes);
    int rc = fo_shape_stream(s, call->json, &out, &v);
    if (rc != 0) {
        fo_buf_free(&out);
        return fo__stage_fail(call, s->has_target && rc == 1 ? "target" : "allow", rc);
    }
    if (!out.data) {
        call->json = v; /* A span of the body: nothing was copied. */
        return 0;
    }
    size_t n;
    char *text = fo_buf_release(&out, &n);
    if (!text)
        fo_panic("out of memory");
    fo_call_drop_body(call);
    call->resp = text;
    call->resp_len = n;
    call->json.p = text;
    call->json.len = n;
    fo_budget_charge(call->budget, n);
    return 0;
}
