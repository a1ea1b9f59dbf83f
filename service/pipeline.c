/* pipeline.c -- the stages of a backend answer, in order (see pipeline.h). */
#include "pipeline.h"

static const fo_stage_fn stages[] = {
    fo_stage_check,
    fo_stage_validate,
};

int fo_pipeline_run(const struct fo_stage_env *env, struct fo_call *call)
{
    if (call->outcome != FO_OK)
        return -1;
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        if (stages[i](env, call) < 0)
            return -1;
    return 0;
}
