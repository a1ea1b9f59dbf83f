/* stage_rename.c -- keys renamed where they stand, in config order (see pipeline.h). */
#include "pipeline.h"

#include "shape.h"

int fo_stage_rename(const struct fo_stage_env *env, struct fo_call *call)
{
    if (!call->shape || call->shape->stream || !call->shape->nrename)
        return 0;
    struct fo_jtree *t = fo__stage_tree(env, call);
    if (!t)
        return -1;
    int rc = fo_shape_rename(t, call->shape->rename, call->shape->nrename);
    return rc == 0 ? 0 : fo__stage_fail(call, "rename", rc);
}
