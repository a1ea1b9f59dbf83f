/* outcome.h -- how one backend call ended.
 *
 * The classes are part of the API: they appear in "_fanout" reports, error
 * bodies, logs and metrics labels, so their names never change.
 * Threads: thread-safe. */
#ifndef FO_OUTCOME_H
#define FO_OUTCOME_H

enum fo_outcome {
    FO_OK = 0,           /* 2xx with a valid JSON body. */
    FO_ERR_TIMEOUT,      /* Its own timeout or the request deadline passed. */
    FO_ERR_CONNECT,      /* Could not resolve/connect, or the connection broke. */
    FO_ERR_STATUS,       /* Answered, but not 2xx (the status is kept). */
    FO_ERR_INVALID_JSON, /* 2xx, but the body is not valid JSON. */
    FO_ERR_TOO_LARGE,    /* The body went past the response size limit. */
    FO_ERR_CANCELLED,    /* Aborted: client gone, a required sibling failed, shutdown. */
    FO_ERR_SHAPE,        /* The call or its answer does not fit what the endpoint says:
                            a request value that cannot be placed (nothing was sent),
                            or a response that fails a shaping stage. */
    FO_ERR_CIRCUIT_OPEN, /* Its breaker is open: no connection was made. */
    FO_ERR_RATE_LIMITED, /* Over its backend's rate limit: no connection was made. */
    FO_ERR_DEPENDENCY,   /* Not made: a call it depends on failed, or gave no value
                            that can be placed (missing, null, an object). */
    FO_ERR_FORBIDDEN,    /* Not made: the URL its dependency's value gave is not allowed. */
    FO_OUTCOME_COUNT
};

/* Stable lower-case name: "ok", "timeout", "connect", "status",
 * "invalid_json", "too_large", "cancelled", "shape", "circuit_open", "rate_limited", "dependency",
 * "forbidden". */
const char *fo_outcome_name(enum fo_outcome o);

#endif /* FO_OUTCOME_H */
