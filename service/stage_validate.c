/* stage_validate.c -- an answer's body is one JSON value (see pipeline.h).
 *
 * A 204, or a 2xx answer to a HEAD, has no body by definition: its value is
 * null. Any other body must be exactly one valid JSON value (json.h: UTF-8,
 * nesting capped), or the call fails invalid_json; an empty one too. */
#include "pipeline.h"

#include <string.h>

#include "alloc.h"
#include "json.h"

int fo_stage_validate(const struct fo_stage_env *env, struct fo_call *call)
{
    bool head = call->method && strcmp(call->method, "HEAD") == 0;
    if ((call->status == 204 || head) && call->resp_len == 0) {
        fo_call_drop_body(call);
        call->resp = fo_xstrdup("null");
        call->resp_len = 4;
        fo_budget_charge(call->budget, 4);
    }
    if (fo_json_validate(call->resp ? call->resp : "", call->resp_len, env->max_json_depth,
                         &call->json) == 0)
        return 0;
    call->outcome = FO_ERR_INVALID_JSON;
    fo_call_drop_body(call);
    return -1;
}
