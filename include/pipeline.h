/* pipeline.h -- the stages each backend answer goes through, in order.
 *
 *     answer (the pool's: it arrived, with its status and body)
 *       -> check      2xx, else the call fails "status"      (stage_check.c)
 *       -> validate   one JSON value, nesting capped; a 204,  (stage_validate.c)
 *                     or a 2xx to a HEAD, is null; else "invalid_json"
 *       -> ...        the shaping stages go here
 *     then for the request: place each under its name, or lift it (merge),
 *     in plan order -> encode the answer                      (merge.h)
 *
 * As the seed's square(in) reads from one channel and writes to the next,
 * each stage takes one call and passes it on, or fails it: it sets the
 * outcome, drops the body, and the rest of the pipeline is skipped for that
 * call. Each stage is a function of one signature in its own file; adding
 * one is adding a file and a line in the list in pipeline.c.
 * Threads: pure per call; runs where the fan-in is consumed (the request's
 * worker thread). */
#ifndef FO_PIPELINE_H
#define FO_PIPELINE_H

#include "plan.h"

/* What the stages may need besides the call. */
struct fo_stage_env {
    unsigned max_json_depth; /* Nesting cap for bodies. */
};

/* One stage: 0 to pass the call on, or -1 once it has failed it. */
typedef int (*fo_stage_fn)(const struct fo_stage_env *env, struct fo_call *call);

int fo_stage_check(const struct fo_stage_env *env, struct fo_call *call);
int fo_stage_validate(const struct fo_stage_env *env, struct fo_call *call);

/* Run every stage on a call the pool ended with an answer (FO_OK); a call
 * that ended without one passes through untouched. Returns 0 when it came
 * through, -1 when it failed. */
int fo_pipeline_run(const struct fo_stage_env *env, struct fo_call *call);

#endif /* FO_PIPELINE_H */
