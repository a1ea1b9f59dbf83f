/* pipeline.c -- the stages of a backend answer, in order, and the tree the shaping stages
 * share (see pipeline.h). */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "jtree.h"

static const fo_stage_fn stages[] = {
    fo_stage_check,  fo_stage_decode, fo_stage_stream, fo_stage_collection, fo_stage_target,
    fo_stage_filter, fo_stage_rename, fo_stage_ops,    fo_stage_emit,
};

/* Stages [0, JUDGED) judge the answer; the rest shape it. */
#define JUDGED 2

static int run(const struct fo_stage_env *env, struct fo_call *call, size_t from, size_t to)
{
    if (call->outcome != FO_OK)
        return -1;
    for (size_t i = from; i < to; i++)
        if (stages[i](env, call) < 0)
            return -1;
    return 0;
}

int fo_pipeline_run(const struct fo_stage_env *env, struct fo_call *call)
{
    return run(env, call, 0, sizeof stages / sizeof stages[0]);
}

int fo_pipeline_judge(const struct fo_stage_env *env, struct fo_call *call)
{
    return run(env, call, 0, JUDGED);
}

int fo_pipeline_shape(const struct fo_stage_env *env, struct fo_call *call)
{
    return run(env, call, JUDGED, sizeof stages / sizeof stages[0]);
}

static void drop_tree(struct fo_call *call)
{
    if (!call->tree)
        return;
    fo_jtree_free(call->tree);
    free(call->tree);
    call->tree = NULL;
}

struct fo_jtree *fo__stage_tree(const struct fo_stage_env *env, struct fo_call *call)
{
    if (call->tree)
        return call->tree;
    call->tree = fo_xcalloc(sizeof *call->tree);
    int rc = fo_jtree_init(call->tree, call->json, env->max_tree_bytes, call->budget);
    if (rc < 0) {
        fo__stage_fail(call, "decode", rc);
        return NULL;
    }
    return call->tree;
}

int fo__stage_fail(struct fo_call *call, const char *stage, int rc)
{
    drop_tree(call);
    fo_call_drop_body(call);
    call->outcome = rc > 0 ? FO_ERR_SHAPE : FO_ERR_TOO_LARGE;
    call->stage = stage;
    return -1;
}
