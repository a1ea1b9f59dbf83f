/* stage_collection.c -- a top-level array wrapped as {"<key>": [...]} so that the later
 * stages can address it (see pipeline.h; any other value passes as it is). */
#include "pipeline.h"

#include "shape.h"

int fo_stage_collection(const struct fo_stage_env *env, struct fo_call *call)
{
    if (!call->shape || call->shape->stream || !call->shape->collection ||
        fo_json_kind(call->json) != FO_JSON_ARRAY)
        return 0;
    struct fo_jtree *t = fo__stage_tree(env, call);
    if (!t)
        return -1;
    int rc = fo_shape_collection(t, call->shape->collection);
    return rc == 0 ? 0 : fo__stage_fail(call, "collection", rc);
}
