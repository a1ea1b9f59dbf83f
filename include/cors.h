/* cors.h -- the cross-origin policy (Fetch standard, CORS protocol) of an
 * endpoint or of the whole config.
 *
 * A policy lists the origins it allows (exact serialized origins such as
 * "https://app.example.com", or "*"), and what a preflight may approve:
 * methods, request headers, response headers exposed to scripts, whether
 * credentials may be sent, and how long a preflight may be cached. fanout
 * answers a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 * itself, 204 with no backend call; an actual request from an allowed origin
 * gets Access-Control-Allow-Origin (and -Allow-Credentials, -Expose-Headers)
 * on whatever answer it gets, errors included. An origin not allowed gets no
 * CORS header at all. Every answer under a policy says Vary: Origin, since
 * the answer depends on it. "*" with allow_credentials is a config error:
 * the Fetch standard makes browsers refuse a wildcard on a credentialed
 * request, and echoing every origin instead would hand credentialed access
 * to any site.
 * Ownership: a policy belongs to its config (fo_cors_destroy).
 * Threads: immutable once parsed; the functions may run on any thread. */
#ifndef FO_CORS_H
#define FO_CORS_H

#include <microhttpd.h>
#include <stdbool.h>

struct fo_cors; /* Opaque. */

/* True when the request on 'c' is a CORS preflight (Origin and
 * Access-Control-Request-Method present; the method is OPTIONS). */
bool fo_cors_is_preflight(struct MHD_Connection *c, const char *method);

/* Add the preflight answer's headers to 'resp' for the request on 'c'.
 * 'methods' is what Access-Control-Allow-Methods says when the policy lists
 * none (the methods of the endpoints on the path). */
void fo_cors_preflight(const struct fo_cors *p, struct MHD_Connection *c, const char *methods,
                       struct MHD_Response *resp);

/* Add an actual answer's CORS headers to 'resp' (only Vary: Origin when the
 * request has no Origin or one the policy does not allow). */
void fo_cors_answer(const struct fo_cors *p, struct MHD_Connection *c, struct MHD_Response *resp);

/* ---- config ---- */

struct fo__vctx;
struct cJSON;

/* Read a "cors" value at 'path' into *out (NULL for JSON null). Returns
 * false after an error line on 'c'. */
bool fo__cors_parse(struct fo__vctx *c, const struct cJSON *v, const char *path,
                    struct fo_cors **out);

/* NULL is a no-op. */
void fo_cors_destroy(struct fo_cors *p);

#endif /* FO_CORS_H */
