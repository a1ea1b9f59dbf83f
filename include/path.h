/* path.h -- endpoint path patterns: "/api/dashboard/{id}" compiled once, matched per request.
 *
 * A pattern is matched segment by segment against the raw request path (still
 * percent-encoded, as the client sent it); a {param} matches exactly one non-empty segment,
 * whose percent-decoded value becomes the parameter; values "." and ".." are refused at
 * match time, since a backend might resolve them as dot segments.
 * Ownership: a compiled path owns its memory (fo_path_destroy); fo_params owns decoded
 * values until fo_params_clear. Threads: a compiled path is immutable once the config is
 * loaded and may be shared; fo_params belong to one thread. */
#ifndef FO_PATH_H
#define FO_PATH_H

#include <stddef.h>

/* Most {param} placeholders one endpoint path may have. */
#define FO_MAX_PARAMS 8
/* Longest decoded value of one parameter. */
#define FO_MAX_PARAM_LEN 1024

struct fo_path; /* Opaque: a compiled endpoint path. */
struct fo_tmpl; /* Opaque: a compiled template (URL or header line). */

/* Parameters taken from a request path. */
struct fo_params {
    size_t n;
    struct {
        const char *name; /* Borrowed from the fo_path. */
        char *value;      /* From malloc(), NUL-terminated, may hold NULs. */
        size_t len;       /* Decoded length. */
    } p[FO_MAX_PARAMS];
};

/* Compile an endpoint path: starts with '/', segments are literal text or
 * one whole "{name}" (name: [A-Za-z0-9_]+, unique). Returns 0, or -EINVAL
 * with a reason in err (a NUL-terminated message of at most errlen bytes). */
int fo_path_compile(struct fo_path **out, const char *pattern, char *err, size_t errlen);
void fo_path_destroy(struct fo_path *p);

/* The source text the path was compiled from. */
const char *fo_path_pattern(const struct fo_path *p);

/* Index of parameter 'name' (n bytes) in the path, or -1. */
int fo_path_param_index(const struct fo_path *p, const char *name, size_t n);

/* Match the raw request path 'raw' (n bytes, no query string). On a match
 * fills *params (which must be empty) and returns 1; returns 0 when the path
 * does not match, -EINVAL when it matches but a parameter is malformed
 * (bad %XX, "." or "..", longer than FO_MAX_PARAM_LEN); *params is empty
 * after any result but 1. */
int fo_path_match(const struct fo_path *p, const char *raw, size_t n, struct fo_params *params);

/* Free the values held by 'params' and make it empty. */
void fo_params_clear(struct fo_params *params);

#endif /* FO_PATH_H */
