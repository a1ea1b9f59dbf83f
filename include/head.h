/* head.h -- checks on a request head before anything is done for it.
 *
 * Ownership: everything is borrowed from libmicrohttpd for the call; the
 * verdict's strings are static.
 * Threads: pure functions of the connection's parsed head; call from the
 * MHD thread that runs the request. */
#ifndef FO_HEAD_H
#define FO_HEAD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"

/* Why a head is refused. */
struct fo_head_verdict {
    unsigned status;     /* 400, 413, 414 or 431. */
    const char *code;    /* Stable error code, e.g. "malformed_request". */
    const char *message; /* Human text. */
    bool close;          /* Framing is in doubt: close after the answer. */
};

/* Check the head of the request on 'c' (method, target without the query,
 * version as MHD gives them) against the limits in 'cfg': target length,
 * field count, malformed framing or syntax, a NUL anywhere (as far as
 * libmicrohttpd 0.9.75's in-place parse lets it be seen; README, Limits),
 * and a Content-Length over max_body_bytes. Returns 0 and sets *body (a body
 * follows), or -EINVAL with *v filled. */
int fo_head_check(struct MHD_Connection *c, const char *method, const char *url,
                  const char *version, const struct fo_config *cfg, bool *body,
                  struct fo_head_verdict *v);

/* The client's X-Timeout-Ms: 1..FO_MAX_TIMEOUT_MS, optional whitespace
 * around it; the field may repeat with the same value, two different values
 * are refused rather than one picked. Returns 0 (absent: *ms = 0), or
 * -EINVAL. */
int fo_head_timeout(struct MHD_Connection *c, int64_t *ms);

/* Copy the client's X-Request-Id (1..cap-1 characters of A-Z a-z 0-9 - _ .
 * :) into 'id' and return true; false (and 'id' untouched) when absent or
 * not like that. */
bool fo_head_request_id(struct MHD_Connection *c, char *id, size_t cap);

#endif /* FO_HEAD_H */
