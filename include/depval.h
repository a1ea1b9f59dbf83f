/* depval.h -- a dependency's value as a placeholder places it.
 *
 * A dependent call's placeholder {name.path} reads the validated body of call 'name' at
 * 'path' (jpath.h syntax, no "*") and a foreach enumerates the elements a path with one
 * "*" matches. A value becomes placeholder text: a string as its decoded bytes, a number
 * as its exact text, true/false, an array of scalars joined with ","; a null, an object or
 * an array holding a container has no text (the dependent is not called: "dependency").
 * In a JSON body the value is placed as JSON instead (the raw text; an array of scalars as
 * the array).
 * Ownership: spans borrow the body; text goes to the caller's buffer.
 * Threads: pure functions. */
#ifndef FO_DEPVAL_H
#define FO_DEPVAL_H

#include <stddef.h>

#include "buf.h"
#include "jpath.h"
#include "json.h"

/* The value at 'p' inside validated value 'v'. Returns 0 and sets *out, or -ENOENT. A
 * path with "*" is refused (-EINVAL). */
int fo_depval_find(struct fo_json_span v, const struct fo_jpath *p, struct fo_json_span *out);

/* Append the placeholder text of value 'v' to 'out'. Returns 0, -ENOENT (null, an object,
 * an array holding a container), or the fo_buf errors. */
int fo_depval_text(struct fo_json_span v, struct fo_buf *out);

/* The elements path 'p' (exactly one "*") matches in 'v', in document order: each
 * element's value at the rest of the path, or a span with p == NULL when it has none there.
 * At most 'max' are written to 'out'; returns how many matched in all (more than 'max'
 * means too many), or -ENOENT when the part before "*" is missing or not a container. */
long fo_depval_each(struct fo_json_span v, const struct fo_jpath *p, struct fo_json_span *out,
                    size_t max);

#endif /* FO_DEPVAL_H */
