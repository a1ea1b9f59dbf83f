/* bodytmpl.h -- a JSON request body with placeholders in its strings.
 *
 * A dependent call's body is JSON whose strings may hold placeholders (tmpl.h): a string
 * that is exactly one placeholder, "{order.total}", becomes that value as JSON (a
 * dependency's value as its own JSON text: numbers exact, strings quoted, an array of
 * scalars as the array; any other value as a JSON string); a placeholder inside a longer
 * string is placed as text and the whole string escaped again. Everything else is sent as
 * written. A body without placeholders costs nothing per call: its text is used as is.
 * Ownership: a compiled body owns its copy of the text and its templates.
 * Threads: compiled on the config (or request) thread, immutable after; expansion is pure. */
#ifndef FO_BODYTMPL_H
#define FO_BODYTMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"
#include "tmpl.h"

struct fo_body_tmpl; /* Opaque. */

/* Compile the JSON text [json, json+len) (one valid value) against 'scope'. Returns 0,
 * -EINVAL with the reason in err, or -ENOMEM. */
int fo_body_compile(struct fo_body_tmpl **out, const char *json, size_t len,
                    struct fo_tmpl_scope *scope, char *err, size_t errlen);
void fo_body_destroy(struct fo_body_tmpl *t);

/* The text as written. */
const char *fo_body_text(const struct fo_body_tmpl *t, size_t *len);

/* True when it has a placeholder. */
bool fo_body_dynamic(const struct fo_body_tmpl *t);

/* The distinct slots it uses, at most 'max' into 'out'. Returns how many. */
size_t fo_body_slots(const struct fo_body_tmpl *t, unsigned *out, size_t max);

/* Append the body with each placeholder's value from 'vals'; 'json' (may be NULL; indexed
 * by slot, an entry with p == NULL has none) gives a slot's value as JSON for a string that
 * is that one placeholder. Returns 0, or fo_tmpl_expand's errors (*slot names the
 * placeholder); nothing is appended on error. */
int fo_body_expand(const struct fo_body_tmpl *t, const struct fo_tmpl_vals *vals,
                   const struct fo_json_span *json, struct fo_buf *out, size_t *slot);

#endif /* FO_BODYTMPL_H */
