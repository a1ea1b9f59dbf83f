/* outcome.c -- names of call outcomes. See outcome.h. */
#include "outcome.h"

const char *fo_outcome_name(enum fo_outcome o)
{
    static const char *const names[FO_OUTCOME_COUNT] = {
        [FO_OK] = "ok",
        [FO_ERR_TIMEOUT] = "timeout",
        [FO_ERR_CONNECT] = "connect",
        [FO_ERR_STATUS] = "status",
        [FO_ERR_INVALID_JSON] = "invalid_json",
        [FO_ERR_TOO_LARGE] = "too_large",
        [FO_ERR_CANCELLED] = "cancelled",
        [FO_ERR_SHAPE] = "shape",
        [FO_ERR_CIRCUIT_OPEN] = "circuit_open",
        [FO_ERR_RATE_LIMITED] = "rate_limited",
        [FO_ERR_DEPENDENCY] = "dependency",
        [FO_ERR_FORBIDDEN] = "forbidden",
    };
    if ((unsigned)o >= FO_OUTCOME_COUNT)
        return "unknown";
    return names[o];
}
