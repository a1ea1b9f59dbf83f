/* json.h -- JSON validation and raw scanning without building a tree.
 *
 * Backend bodies pass through fanout as the bytes the backend sent: they are
 * validated (RFC 8259, UTF-8, bounded nesting) and embedded raw, so numbers
 * such as 12345678901234567890 keep every digit. Where fanout must look
 * inside a value (lifting an object's members for "merge", reading an ad-hoc
 * batch body), it iterates over raw spans of an already validated value.
 * Ownership: spans point into the caller's memory and never own it.
 * Threads: pure functions, thread-safe. */
#ifndef FO_JSON_H
#define FO_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Nesting limit used where nothing else is configured. Deep enough for any
 * sane API document, shallow enough that a hostile body costs nothing. */
#define FO_JSON_DEFAULT_DEPTH 64

/* Largest nesting fo_json_validate can check without allocating; a larger
 * 'max_depth' counts as this. */
#define FO_JSON_MAX_DEPTH 4096

/* A run of bytes inside someone else's buffer. */
struct fo_json_span {
    const char *p; /* Borrowed. */
    size_t len;
};

/* Check that [p, p+len) is exactly one JSON value, optionally surrounded by
 * whitespace: RFC 8259 grammar, strings valid UTF-8 (no overlongs, no
 * surrogates encoded in UTF-8, \u escapes well formed), arrays and objects
 * nested at most 'max_depth' deep (a scalar is depth 0, [] is depth 1;
 * capped at FO_JSON_MAX_DEPTH).
 * On success sets *out (may be NULL) to the value without the whitespace.
 * Returns 0, -EINVAL (not JSON, trailing bytes, bad UTF-8) or -E2BIG (too
 * deep). */
int fo_json_validate(const char *p, size_t len, unsigned max_depth, struct fo_json_span *out);

/* Walks the members of an object or the elements of an array. */
struct fo_json_iter {
    const char *p;   /* Next byte to read. */
    const char *end; /* One past the closing bracket. */
};

/* Start iterating 'v', which must come from a successful fo_json_validate
 * (or from an iterator over such a value). Returns 0, or -EINVAL when 'v'
 * is not an object (for _object) or not an array (for _array). */
int fo_json_iter_object(struct fo_json_iter *it, struct fo_json_span v);
int fo_json_iter_array(struct fo_json_iter *it, struct fo_json_span v);

/* Next member: *key is the raw string literal including its quotes, *val
 * the raw value. Returns true while there is one. */
bool fo_json_next_member(struct fo_json_iter *it, struct fo_json_span *key,
                         struct fo_json_span *val);

/* Next element of an array. Returns true while there is one. */
bool fo_json_next_element(struct fo_json_iter *it, struct fo_json_span *val);

/* One past the end of the value that starts at p (no leading whitespace) inside validated
 * text that ends at 'end' (the value may be followed by more text). Never reads at or
 * past 'end'. */
const char *fo_json_value_end(const char *p, const char *end);

/* Decode a raw string literal (with quotes, from a validated value) to its
 * UTF-8 bytes, appended to 'out' (may contain NUL bytes from \u0000).
 * Returns 0, -EINVAL (not a string) or the fo_buf_append errors. */
int fo_json_unescape(struct fo_json_span str, struct fo_buf *out);

/* True when the raw string literal 'str' decodes to exactly the C string 's'. */
bool fo_json_str_eq(struct fo_json_span str, const char *s);

/* Kind of a validated value, from its first byte. */
enum fo_json_kind {
    FO_JSON_OBJECT,
    FO_JSON_ARRAY,
    FO_JSON_STRING,
    FO_JSON_NUMBER,
    FO_JSON_TRUE,
    FO_JSON_FALSE,
    FO_JSON_NULL,
};
enum fo_json_kind fo_json_kind(struct fo_json_span v);

/* Append 's' (n bytes, any bytes) as a JSON string literal with quotes:
 * '"', '\\' and control bytes escaped, DEL and bytes >= 0x80 copied as they
 * are (callers pass UTF-8; invalid UTF-8 is replaced by U+FFFD so the output
 * is always valid JSON). Returns 0 or the fo_buf_append errors. */
int fo_json_put_string(struct fo_buf *b, const char *s, size_t n);

#endif /* FO_JSON_H */
