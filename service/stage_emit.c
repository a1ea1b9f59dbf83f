/* stage_emit.c -- the shaped tree written back as the call's body (see pipeline.h).
 *
 * A root nobody opened is still a span of the backend's own bytes (a target that picked
 * one subtree, say): the body is then kept and only the span moves, nothing is copied. */
#include "pipeline.h"

#include <stdlib.h>

#include "alloc.h"
#include "jtree.h"

int fo_stage_emit(const struct fo_stage_env *env, struct fo_call *call)
{
    struct fo_jtree *t = call->tree;
    if (!t)
        return 0;
    const struct fo_jnode *root = t->root;
    if (!root->opened && call->resp && root->raw.p >= call->resp &&
        root->raw.p + root->raw.len <= call->resp + call->resp_len) {
        call->json = root->raw;
        fo_jtree_free(t);
        free(t);
        call->tree = NULL;
        return 0;
    }
    struct fo_buf b;
    fo_buf_init(&b, env->max_tree_bytes);
    int rc = fo_jtree_write(root, &b);
    if (rc < 0) {
        fo_buf_free(&b);
        return fo__stage_fail(call, "emit", rc);
    }
    size_t n;
    char *text = fo_buf_release(&b, &n);
    if (!text)
        fo_panic("out of memory");
    fo_jtree_free(t);
    free(t);
    call->tree = NULL;
    fo_call_drop_body(call);
    call->resp = text;
    call->resp_len = n;
    call->json.p = text;
    call->json.len = n;
    fo_budget_charge(call->budget, n);
    return 0;
}
