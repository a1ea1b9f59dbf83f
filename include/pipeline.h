/* pipeline.h -- the stages each backend answer goes through, in order.
 *
 *     answer (the pool's: it arrived, with its status and body)
 *       -> check       2xx, else the call fails "status"             (stage_check.c)
 *       -> decode      by encoding: json (one value; a 204, or a 2xx  (stage_decode.c)
 *                      to a HEAD, is null), text (a JSON string), raw;
 *                      else "invalid_json"
 *       -> stream      target, allow|deny, rename in one pass, when   (stage_stream.c)
 *                      the shape has nothing else (no tree at all)
 *       -> collection  wrap a top-level array under a key             (stage_collection.c)
 *       -> target      the value at a path replaces the body          (stage_target.c)
 *       -> allow|deny  keep only some paths, or remove some           (stage_filter.c)
 *       -> rename      keys renamed in place, in config order         (stage_rename.c)
 *       -> ops         del, move, append                              (stage_ops.c)
 *       -> emit        the edited tree written back as the body       (stage_emit.c)
 *     then for the request: place each under its name or group, or lift it (merge), in plan
 *     order; a failed call with a fallback places the fallback -> endpoint ops -> the
 *     _fanout report -> encode the answer                              (merge.h, finish.c)
 *
 * As the seed's square(in) reads from one channel and writes to the next, each stage takes
 * one call and passes it on, or fails it: it sets the outcome, drops the body, and the rest
 * of the pipeline is skipped for that call. Each stage is a function of one signature in its
 * own file; adding one is adding a file and a line in the list in pipeline.c. A call without
 * shaping keys passes the shaping stages at the cost of a pointer test: no tree is built.
 * The shaping stages share one tree per call (jtree.h), made by the first that needs it and
 * written back by emit, so a body is parsed into nodes once, and only as deep as the paths
 * go. A stage that cannot apply fails the call "shape" and names itself in call->stage.
 * Threads: pure per call; runs where the fan-in is consumed (the request's worker thread). */
#ifndef FO_PIPELINE_H
#define FO_PIPELINE_H

#include <stddef.h>

#include "plan.h"

struct fo_jtree;

/* What the stages may need besides the call. */
struct fo_stage_env {
    unsigned max_json_depth; /* Nesting cap for bodies. */
    size_t max_tree_bytes;   /* Cap on one call's tree and on its rewritten body. */
};

/* One stage: 0 to pass the call on, or -1 once it has failed it. */
typedef int (*fo_stage_fn)(const struct fo_stage_env *env, struct fo_call *call);

int fo_stage_check(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_decode(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_stream(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_collection(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_target(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_filter(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_rename(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_ops(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_emit(const struct fo_stage_env *env, struct fo_call *call);

/* Run every stage on a call the pool ended with an answer (FO_OK); a call that ended
 * without one passes through untouched. Returns 0 when it came through, -1 when it failed. */
int fo_pipeline_run(const struct fo_stage_env *env, struct fo_call *call);

/* The same in two halves: check and decode (after which the body is the backend's,
 * validated: what a dependent call reads), then the shaping stages. */
int fo_pipeline_judge(const struct fo_stage_env *env, struct fo_call *call);
int fo_pipeline_shape(const struct fo_stage_env *env, struct fo_call *call);

/* For the shaping stages (pipeline.c). The call's tree, made over its body on first use;
 * NULL after failing the call (too_large). */
struct fo_jtree *fo__stage_tree(const struct fo_stage_env *env, struct fo_call *call);

/* Fail the call after an edit returned rc (1: the stage did not apply, "shape"; < 0: the
 * tree's arena, "too_large"); drops its tree and body. Returns -1. */
int fo__stage_fail(struct fo_call *call, const char *stage, int rc);

#endif /* FO_PIPELINE_H */
