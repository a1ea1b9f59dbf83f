/* jtree.h -- an editable JSON tree over validated bytes that keeps every token's text.
 *
 * The shaping stages (target, allow/deny, rename, ops) edit a backend's body; cJSON cannot
 * hold them (its numbers are doubles: 12345678901234567890 would come back rounded), so this
 * tree keeps each scalar as the raw token the backend sent (a number's digits, a string's
 * escapes) and writes it back byte for byte. It is lazy: a container is one node holding its
 * raw text until a stage looks inside it, and a container nobody opened is written back as
 * those bytes, so a stage that touches one path costs one path, not the body.
 * Object members keep their order; a key is held decoded (written back re-escaped).
 * Memory: every node comes from the tree's arena, capped at 'max_bytes' (fo_jtree_init);
 * past it an operation fails with -E2BIG and the tree stays consistent. Bytes are charged to
 * 'budget' while the tree lives.
 * Ownership: the tree borrows the text it is built over (which must outlive it) and owns
 * its nodes; nodes are never freed one by one, only with the tree.
 * Threads: a tree belongs to one thread. */
#ifndef FO_JTREE_H
#define FO_JTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "buf.h"
#include "json.h"

struct fo_jnode {
    struct fo_jnode *parent;       /* NULL for the root and for detached nodes. */
    struct fo_jnode *prev, *next;  /* Siblings, in order. */
    struct fo_jnode *first, *last; /* Children, once opened. */
    const char *key;               /* Object members: decoded key bytes (body or arena). */
    size_t klen;
    struct fo_json_span raw; /* Scalars: the token. Unopened containers: their text. */
    size_t n;                /* Children, once opened. */
    enum fo_json_kind kind;
    bool opened; /* A container whose children are nodes (raw is then unused). */
};

struct fo_jchunk; /* Private: one block of the arena. */

struct fo_jtree {
    struct fo_jnode *root;    /* Never NULL after fo_jtree_init. */
    struct fo_jchunk *chunks; /* From malloc(). */
    size_t used, max_bytes;   /* Arena bytes taken, and the cap. */
    struct fo_budget *budget; /* Borrowed; may be NULL. */
};

/* Start a tree over 'v', a value from a successful fo_json_validate. Returns 0, -E2BIG
 * (max_bytes is too small for one node) or -ENOMEM; fo_jtree_free it in every case. */
int fo_jtree_init(struct fo_jtree *t, struct fo_json_span v, size_t max_bytes,
                  struct fo_budget *budget);

/* Free every node and give the bytes back. Safe on a zeroed tree. */
void fo_jtree_free(struct fo_jtree *t);

/* Open a container so its children are nodes (a no-op for an open one or a scalar).
 * Returns 0, -E2BIG or -ENOMEM. */
int fo_jtree_open(struct fo_jtree *t, struct fo_jnode *node);

/* Open a container and every container inside it, in one pass over its text: for a stage
 * that visits every element ("*"), where opening level by level would scan the same bytes
 * once per level. A container already open is left as it is (its unopened children stay
 * so). Returns 0, -E2BIG or -ENOMEM. */
int fo_jtree_open_all(struct fo_jtree *t, struct fo_jnode *node);

/* The member of object 'obj' named by the n key bytes at k (the first one when a body
 * repeats a key), or NULL. Opens 'obj'; NULL on an allocation failure too (*rc says which). */
struct fo_jnode *fo_jtree_member(struct fo_jtree *t, struct fo_jnode *obj, const char *k, size_t n,
                                 int *rc);

/* Element 'i' of array 'arr', or NULL (as for fo_jtree_member). */
struct fo_jnode *fo_jtree_element(struct fo_jtree *t, struct fo_jnode *arr, size_t i, int *rc);

/* A new detached node: an empty object, or a copy of the text of a validated value 'v'
 * (borrowed: it must outlive the tree). Returns NULL on -E2BIG / -ENOMEM (*rc). */
struct fo_jnode *fo_jtree_new_object(struct fo_jtree *t, int *rc);
struct fo_jnode *fo_jtree_new_value(struct fo_jtree *t, struct fo_json_span v, int *rc);

/* Copy n bytes into the arena (for a key); NULL on -E2BIG / -ENOMEM (*rc). */
const char *fo_jtree_strdup(struct fo_jtree *t, const char *s, size_t n, int *rc);

/* Take 'node' out of its parent (a no-op for a detached one). */
void fo_jtree_detach(struct fo_jnode *node);

/* Append detached 'child' to the open container 'parent'; for an object, under the key of
 * n bytes at k (borrowed: arena or longer-lived memory). */
void fo_jtree_append(struct fo_jnode *parent, struct fo_jnode *child, const char *k, size_t n);

/* Put detached 'node' where 'old' is (same parent, position and key) and detach 'old'. */
void fo_jtree_replace(struct fo_jnode *old, struct fo_jnode *node);

/* Append the compact-or-original text of 'node' to 'out'. Returns 0 or the fo_buf errors. */
int fo_jtree_write(const struct fo_jnode *node, struct fo_buf *out);

#endif /* FO_JTREE_H */
