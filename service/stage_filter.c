/* stage_filter.c -- allow or deny: keep only the listed paths, or remove them (see
 * pipeline.h and shape.h for the rules; a backend has one or the other, never both). */
#include "pipeline.h"

#include "shape.h"

int fo_stage_filter(const struct fo_stage_env *env, struct fo_call *call)
{
    const struct fo_shape *s = call->shape;
    if (!s || s->stream || (!s->nallow && !s->ndeny))
        return 0;
    struct fo_jtree *t = fo__stage_tree(env, call);
    if (!t)
        return -1;
    int rc =
        s->nallow ? fo_shape_allow(t, s->allow, s->nallow) : fo_shape_deny(t, s->deny, s->ndeny);
    return rc == 0 ? 0 : fo__stage_fail(call, s->nallow ? "allow" : "deny", rc);
}
