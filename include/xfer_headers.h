/* xfer_headers.h -- the request header lines of one backend call, in storage
 * its transfer keeps between calls.
 *
 * The policy: fanout's own X-Timeout-Ms first (fo_hdrs_set_timeout rewrites
 * its value just before the request is sent), X-Request-Id, X-Fanout-Attempt
 * on a second or later attempt, then the call's configured or forwarded lines
 * without those fanout sets itself (and never Expect: "100-continue" would
 * hold every call with a body until curl gives up waiting, 1 s), an empty
 * value sent empty, Accept unless the call has its own, and the body's
 * Content-Type.
 * Storage: the list's nodes and its text are two arrays the list keeps, so a
 * transfer reused for another call builds its list without allocating once
 * they have grown to its largest header set (curl_slist_append took two
 * blocks per line, and freeing them two more calls per line, on every call).
 * Ownership: the list owns its arrays; curl borrows fo_hdrs_list() until the
 * next fo_hdrs_build, fo_hdrs_clear or fo_hdrs_free.
 * Threads: a list belongs to its transfer's worker thread. */
#ifndef FO_XFER_HEADERS_H
#define FO_XFER_HEADERS_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "plan.h"

struct fo_hdrs {
    struct curl_slist *nodes; /* From realloc(): n linked in order once built. */
    size_t *starts;           /* From realloc(): where line i starts in 'text'. */
    size_t n;                 /* Lines in the list. */
    size_t cap;               /* Room in nodes and starts. */
    struct fo_buf text;       /* The lines, each followed by its NUL. */
};

/* An empty list. Allocates nothing. */
void fo_hdrs_init(struct fo_hdrs *h);

/* Build the lines of 'call' (see the policy above), with 'request_id' (may be
 * NULL: none), an X-Timeout-Ms of 'budget_ms' and an X-Fanout-Attempt of
 * 'attempt' when it is > 0. Returns 0, or -ENOMEM (the list is then empty). */
int fo_hdrs_build(struct fo_hdrs *h, const struct fo_call *call, const char *request_id,
                  int64_t budget_ms, unsigned attempt);

/* The built list for CURLOPT_HTTPHEADER; NULL when it is empty. */
struct curl_slist *fo_hdrs_list(struct fo_hdrs *h);

/* Rewrite X-Timeout-Ms with 'left_ms' (>= 1). It only ever shrinks from the
 * value built, so it fits the line; a larger value leaves the line as it is. */
void fo_hdrs_set_timeout(struct fo_hdrs *h, int64_t left_ms);

/* Forget the lines; the storage is kept unless it grew past what a list keeps
 * for its next call. */
void fo_hdrs_clear(struct fo_hdrs *h);

/* Free the storage. The list is left empty and may be built again. */
void fo_hdrs_free(struct fo_hdrs *h);

#endif /* FO_XFER_HEADERS_H */
