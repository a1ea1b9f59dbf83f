/* merge.h -- fan-in: the merged JSON document sent to the client.
 *
 * Writes one object from the results of a request's backend calls:
 *  - each successful result goes under its name, as the raw bytes the
 *    backend sent (numbers keep every digit);
 *  - a result marked 'merge' whose body is an object has its members lifted
 *    into the top level instead (a non-object is kept under its name);
 *  - keys appear in result order (config order, never arrival order); on a
 *    clash the later result wins and the key keeps its first position;
 *  - a result with a group goes under the group's key instead; the merged results of
 *    one group are lifted into one object under that key;
 *  - failed results are absent, unless their shape has a fallback, placed instead;
 *  - with a report, a last member "_fanout" says what happened to each call.
 * Ownership: everything is borrowed; output is appended to the caller's buf.
 * Threads: pure functions, thread-safe. */
#ifndef FO_MERGE_H
#define FO_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"
#include "plan.h"

/* What the "_fanout" member reports beyond the per-call results. */
struct fo_report {
    bool complete;     /* Every call succeeded. */
    double elapsed_ms; /* Whole request, as the client saw it so far. */
    bool ops_skipped;  /* An endpoint op could not be made. */
};

/* Append the merged object for the judged calls r[0..n) of a plan to 'out'
 * (each call's name, merge, outcome, status, ms and JSON value). 'report' may be
 * NULL (no "_fanout" member). Bodies must already be validated.
 * Returns 0, or -E2BIG / -ENOMEM from 'out' (whose contents are then
 * unspecified). */
int fo_merge_write(struct fo_buf *out, const struct fo_call *r, size_t n,
                   const struct fo_report *report);

/* The merged object alone (no report), for the endpoint stages to edit; with
 * 'reserve_report' a backend's "_fanout" key is dropped. Returns as fo_merge_write. */
int fo_merge_body(struct fo_buf *out, const struct fo_call *r, size_t n, bool reserve_report);

/* Append the "_fanout" member to the object that ends 'out' (as fo_merge_write would
 * have). Returns 0, -EINVAL ('out' does not end with an object) or the fo_buf errors. */
int fo_merge_append_report(struct fo_buf *out, const struct fo_call *r, size_t n,
                           const struct fo_report *report);

/* Append {"error":{"code":..,"message":..[,"backend":..]}} to 'out', and
 * when 'report' is not NULL a "_fanout" member for results r[0..n) as in
 * fo_merge_write. 'backend' may be NULL. Returns 0 or the fo_buf errors. */
int fo_merge_error(struct fo_buf *out, const char *code, const char *message, const char *backend,
                   const struct fo_call *r, size_t n, const struct fo_report *report);

/* The same with a "status" member in the error when 'status' is not 0 (pass_status). */
int fo_merge_error_status(struct fo_buf *out, const char *code, const char *message,
                          const char *backend, int status, const struct fo_call *r, size_t n,
                          const struct fo_report *report);

#endif /* FO_MERGE_H */
