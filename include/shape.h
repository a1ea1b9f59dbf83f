/* shape.h -- a backend's (or an endpoint's) response shaping, and the edits it makes.
 *
 * The keys of the config that reshape a body (collection, target, allow, deny, rename, ops),
 * how a call's value is decoded (encoding), placed (group) or stood in for (fallback,
 * pass_status), compiled once at config load into a struct fo_shape, and the tree edits
 * that carry each key out on a struct fo_jtree (jtree.h). Paths use jpath.h's syntax.
 * Every edit is deterministic: it depends on the body and the config, never on map order or
 * arrival order (deny and del find every match before removing any, allow keeps the union
 * of its paths, rename applies its entries in config order).
 * Ownership: a struct fo_shape owns its paths and strings (fo_shape_clear); edits borrow the
 * shape, and keys they write point into the shape, which outlives every tree.
 * Threads: a compiled shape is immutable and may be read from any thread; an edit runs on
 * the thread that owns the tree. */
#ifndef FO_SHAPE_H
#define FO_SHAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "jpath.h"
#include "jtree.h"

/* Most entries one allow, deny, rename or ops list may have. */
#define FO_SHAPE_MAX_LIST 64
/* Most codes one pass_status list may have. */
#define FO_SHAPE_MAX_PASS 16

enum fo_encoding {
    FO_ENC_JSON, /* One JSON value of any type (the default). */
    FO_ENC_TEXT, /* The body becomes a JSON string (valid UTF-8 only). */
    FO_ENC_RAW,  /* Bytes and Content-Type pass through (one-backend endpoints). */
};

enum fo_op_kind { FO_OP_DEL, FO_OP_MOVE, FO_OP_APPEND };

/* One entry of "ops". */
struct fo_shape_op {
    enum fo_op_kind op;
    struct fo_jpath from; /* "path" of del, "from" of move and append. */
    struct fo_jpath to;   /* Move and append only. */
};

/* One entry of "rename". */
struct fo_shape_rename {
    struct fo_jpath path;
    char *to; /* From malloc(): the new key (no '.' or '*'). */
    size_t tolen;
};

struct fo_shape {
    bool any;    /* Some key below is set: the call borrows this shape. */
    bool tree;   /* Some key needs the body shaped (collection .. ops). */
    bool stream; /* ... and only target, allow/deny, rename, which fo_shape_stream does. */
    enum fo_encoding encoding;
    char *collection; /* From malloc(), or NULL: wrap a top-level array under this key. */
    bool has_target;
    struct fo_jpath target;
    struct fo_jpath *allow, *deny; /* From calloc(); nallow / ndeny of them. */
    size_t nallow, ndeny;
    struct fo_shape_rename *rename; /* From calloc(); nrename, in config order. */
    size_t nrename;
    struct fo_shape_op *ops; /* From calloc(); nops, in config order. */
    size_t nops;
    char *group;    /* From malloc(), or NULL: the key to place the value under. */
    char *fallback; /* From malloc(), or NULL: compact JSON text, the config's digits. */
    size_t fallback_len;
    int pass_status[FO_SHAPE_MAX_PASS]; /* 4xx codes answered as they are. */
    size_t npass;
};

/* Decide, once the keys are read, whether the shape can be done in one pass (stream). */
void fo_shape_finish(struct fo_shape *s);

/* Target, allow/deny and rename of a streamable shape in one pass over the validated value
 * 'in' (borrowed): *result is the shaped value, either a span of 'in' (a target alone) or
 * the text appended to 'out'. Returns 0, 1 (the target missed), or the fo_buf errors. The
 * result is the tree edits' (fo_shape_target, _allow/_deny, _rename in that order), value
 * for value. Thread-safe. */
int fo_shape_stream(const struct fo_shape *s, struct fo_json_span in, struct fo_buf *out,
                    struct fo_json_span *result);

/* Free what a shape holds and zero it. */
void fo_shape_clear(struct fo_shape *s);

/* True when 'status' is one of the shape's pass_status codes. NULL is false. */
bool fo_shape_passes(const struct fo_shape *s, int status);

/* The edits. Each returns 0, 1 where said, or -E2BIG / -ENOMEM from the tree's arena (the
 * tree is then consistent but half edited: drop it). */

/* Wrap a top-level array under 'key'; anything else is left as it is. */
int fo_shape_collection(struct fo_jtree *t, const char *key);

/* Replace the root with the value at 'p' (no "*"); 1 when the path misses (a missing key,
 * an index past the end, a step into a scalar, or into an array by a key). */
int fo_shape_target(struct fo_jtree *t, const struct fo_jpath *p);

/* Keep the union of the paths; objects left empty are removed, array elements that keep
 * nothing become {}. The root is never removed (it becomes {} or [] when it keeps nothing,
 * a scalar null). */
int fo_shape_allow(struct fo_jtree *t, const struct fo_jpath *paths, size_t n);

/* Remove every match of every path (found first, removed after); a miss is a no-op. */
int fo_shape_deny(struct fo_jtree *t, const struct fo_jpath *paths, size_t n);

/* Apply each rename in order: the matched member takes the new key in its place, dropping
 * another member of that key. A miss is a no-op. */
int fo_shape_rename(struct fo_jtree *t, const struct fo_shape_rename *r, size_t n);

/* Run the ops in order; *skipped is set when a move or append could not be made (its
 * destination could not be reached or created, or an append's operands were not both
 * arrays). */
int fo_shape_ops(struct fo_jtree *t, const struct fo_shape_op *ops, size_t n, bool *skipped);

#endif /* FO_SHAPE_H */
