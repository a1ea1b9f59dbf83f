/* stage_target.c -- the value at a path replaces the body (see pipeline.h). A miss (a
 * missing key, an index past the end, a step into a scalar) fails the call "shape": it
 * never quietly becomes {}. A value that is there and null is a success. */
#include "pipeline.h"

#include "shape.h"

int fo_stage_target(const struct fo_stage_env *env, struct fo_call *call)
{
    if (!call->shape || call->shape->stream || !call->shape->has_target)
        return 0;
    struct fo_jtree *t = fo__stage_tree(env, call);
    if (!t)
        return -1;
    int rc = fo_shape_target(t, &call->shape->target);
    return rc == 0 ? 0 : fo__stage_fail(call, "target", rc);
}
