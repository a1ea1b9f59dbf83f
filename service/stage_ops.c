/* stage_ops.c -- del, move and append on one backend's value, in config order (see
 * pipeline.h). An op that cannot be made is skipped and noted for the report. */
#include "pipeline.h"

#include "shape.h"

int fo_stage_ops(const struct fo_stage_env *env, struct fo_call *call)
{
    if (!call->shape || call->shape->stream || !call->shape->nops)
        return 0;
    struct fo_jtree *t = fo__stage_tree(env, call);
    if (!t)
        return -1;
    int rc = fo_shape_ops(t, call->shape->ops, call->shape->nops, &call->ops_skipped);
    return rc == 0 ? 0 : fo__stage_fail(call, "ops", rc);
}
