/* stage_check.c -- an answer counts only with a 2xx status (see pipeline.h).
 * Redirects are not followed, so a 3xx fails here too; the status is kept. */
#include "pipeline.h"

int fo_stage_check(const struct fo_stage_env *env, struct fo_call *call)
{
    (void)env;
    if (call->status >= 200 && call->status <= 299)
        return 0;
    call->outcome = FO_ERR_STATUS;
    fo_call_drop_body(call);
    return -1;
}
