/* jtree.c -- the editable JSON tree (see jtree.h).
 *
 * Why hand-written: the tree must keep each token's text (exact numbers, the backend's own
 * escapes) and must not cost anything for the parts of a body nobody edits; cJSON does
 * neither. Opening a container walks its raw text with json.h's iterators (the body was
 * validated once, so nothing is checked twice) and makes one node per child. The arena is a
 * list of chunks, each at least CHUNK bytes, so a tree of a few nodes costs one malloc. */
#include "jtree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096

struct fo_jchunk {
    struct fo_jchunk *next;
    size_t size, used; /* Bytes of data[]. */
    _Alignas(max_align_t) unsigned char data[];
};

static void *arena_alloc(struct fo_jtree *t, size_t n, int *rc)
{
    n = (n + 15) & ~(size_t)15;
    struct fo_jchunk *c = t->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > CHUNK ? n : CHUNK;
        if (t->used + size + sizeof *c > t->max_bytes) {
            *rc = -E2BIG;
            return NULL;
        }
        c = malloc(sizeof *c + size);
        if (!c) {
            *rc = -ENOMEM;
            return NULL;
        }
        c->next = t->chunks;
        c->size = size;
        c->used = 0;
        t->chunks = c;
        t->used += size + sizeof *c;
        fo_budget_charge(t->budget, size + sizeof *c);
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static struct fo_jnode *node_new(struct fo_jtree *t, struct fo_json_span v, int *rc)
{
    struct fo_jnode *x = arena_alloc(t, sizeof *x, rc);
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    x->raw = v;
    x->kind = fo_json_kind(v);
    return x;
}

int fo_jtree_init(struct fo_jtree *t, struct fo_json_span v, size_t max_bytes,
                  struct fo_budget *budget)
{
    memset(t, 0, sizeof *t);
    t->max_bytes = max_bytes;
    t->budget = budget;
    int rc = 0;
    t->root = node_new(t, v, &rc);
    return rc;
}

void fo_jtree_free(struct fo_jtree *t)
{
    while (t->chunks) {
        struct fo_jchunk *c = t->chunks;
        t->chunks = c->next;
        fo_budget_release(t->budget, c->size + sizeof *c);
        free(c);
    }
    t->root = NULL;
    t->used = 0;
}

const char *fo_jtree_strdup(struct fo_jtree *t, const char *s, size_t n, int *rc)
{
    char *d = arena_alloc(t, n + 1, rc);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Link detached 'x' after the last child of 'p'. */
static void link_last(struct fo_jnode *p, struct fo_jnode *x)
{
    x->parent = p;
    x->prev = p->last;
    x->next = NULL;
    if (p->last)
        p->last->next = x;
    else
        p->first = x;
    p->last = x;
    p->n++;
}

/* A decoded key: the bytes between the quotes when there is no escape, else a copy. */
static int decode_key(struct fo_jtree *t, struct fo_json_span k, const char **out, size_t *len)
{
    const char *inner = k.p + 1;
    size_t n = k.len >= 2 ? k.len - 2 : 0;
    if (!memchr(inner, '\\', n)) {
        *out = inner;
        *len = n;
        return 0;
    }
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    int rc = fo_json_unescape(k, &b);
    if (rc == 0) {
        *out = fo_jtree_strdup(t, b.data ? b.data : "", b.len, &rc);
        *len = b.len;
    }
    fo_buf_free(&b);
    return rc;
}

/* ---- opening a whole subtree in one pass ---- */

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Build every child of container x, whose text starts at p, and theirs (recursively, as
 * deep as the validated nesting); returns the end of x's text. Children get exact spans,
 * so a later write of an unedited child copies its bytes. */
static const char *build(struct fo_jtree *t, struct fo_jnode *x, const char *p, const char *end,
                         int *rc)
{
    bool obj = *p == '{';
    char close = obj ? '}' : ']';
    x->opened = true;
    p = ws(p + 1, end);
    while (*rc == 0 && p < end && *p != close) {
        struct fo_json_span k = {NULL, 0};
        if (obj) {
            const char *ke = fo_json_value_end(p, end);
            k = (struct fo_json_span){p, (size_t)(ke - p)};
            p = ws(ke, end);
            p = ws(p + 1, end); /* The colon. */
        }
        struct fo_jnode *c = node_new(t, (struct fo_json_span){p, 1}, rc);
        if (!c)
            break;
        if (obj && (*rc = decode_key(t, k, &c->key, &c->klen)) < 0)
            break;
        const char *ve =
            *p == '{' || *p == '[' ? build(t, c, p, end, rc) : fo_json_value_end(p, end);
        c->raw.len = (size_t)(ve - p);
        link_last(x, c);
        p = ws(ve, end);
        if (p < end && *p == ',')
            p = ws(p + 1, end);
    }
    return p < end ? p + 1 : end;
}

int fo_jtree_open_all(struct fo_jtree *t, struct fo_jnode *node)
{
    if (node->opened || (node->kind != FO_JSON_OBJECT && node->kind != FO_JSON_ARRAY))
        return 0;
    int rc = 0;
    build(t, node, node->raw.p, node->raw.p + node->raw.len, &rc);
    return rc;
}

int fo_jtree_open(struct fo_jtree *t, struct fo_jnode *node)
{
    if (node->opened || (node->kind != FO_JSON_OBJECT && node->kind != FO_JSON_ARRAY))
        return 0;
    struct fo_json_iter it;
    struct fo_json_span k, v;
    int rc = 0;
    node->opened = true; /* Children appended below; a failure leaves a prefix, still valid. */
    if (node->kind == FO_JSON_OBJECT) {
        fo_json_iter_object(&it, node->raw);
        while (rc == 0 && fo_json_next_member(&it, &k, &v)) {
            struct fo_jnode *x = node_new(t, v, &rc);
            if (x)
                rc = decode_key(t, k, &x->key, &x->klen);
            if (rc == 0)
                link_last(node, x);
        }
    } else {
        fo_json_iter_array(&it, node->raw);
        while (rc == 0 && fo_json_next_element(&it, &v)) {
            struct fo_jnode *x = node_new(t, v, &rc);
            if (x)
                link_last(node, x);
        }
    }
    return rc;
}

struct fo_jnode *fo_jtree_member(struct fo_jtree *t, struct fo_jnode *obj, const char *k, size_t n,
                                 int *rc)
{
    if (obj->kind != FO_JSON_OBJECT)
        return NULL;
    *rc = fo_jtree_open(t, obj);
    if (*rc < 0)
        return NULL;
    for (struct fo_jnode *x = obj->first; x; x = x->next) {
        if (x->klen == n && memcmp(x->key, k, n) == 0)
            return x;
    }
    return NULL;
}

struct fo_jnode *fo_jtree_element(struct fo_jtree *t, struct fo_jnode *arr, size_t i, int *rc)
{
    if (arr->kind != FO_JSON_ARRAY)
        return NULL;
    *rc = fo_jtree_open(t, arr);
    if (*rc < 0 || i >= arr->n)
        return NULL;
    struct fo_jnode *x = arr->first;
    while (i--)
        x = x->next;
    return x;
}

struct fo_jnode *fo_jtree_new_object(struct fo_jtree *t, int *rc)
{
    struct fo_jnode *x = node_new(t, (struct fo_json_span){"{}", 2}, rc);
    if (x)
        x->opened = true;
    return x;
}

struct fo_jnode *fo_jtree_new_value(struct fo_jtree *t, struct fo_json_span v, int *rc)
{
    return node_new(t, v, rc);
}

void fo_jtree_detach(struct fo_jnode *x)
{
    struct fo_jnode *p = x->parent;
    if (!p)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        p->first = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        p->last = x->prev;
    p->n--;
    x->parent = x->prev = x->next = NULL;
}

void fo_jtree_append(struct fo_jnode *parent, struct fo_jnode *child, const char *k, size_t n)
{
    child->key = k;
    child->klen = n;
    link_last(parent, child);
}

void fo_jtree_replace(struct fo_jnode *old, struct fo_jnode *x)
{
    struct fo_jnode *p = old->parent;
    x->key = old->key;
    x->klen = old->klen;
    x->parent = p;
    x->prev = old->prev;
    x->next = old->next;
    if (p) {
        if (x->prev)
            x->prev->next = x;
        else
            p->first = x;
        if (x->next)
            x->next->prev = x;
        else
            p->last = x;
    }
    old->parent = old->prev = old->next = NULL;
}

/* True when a key's bytes can go between quotes as they are (what fo_json_put_string would
 * write for them): no quote, backslash, control byte or byte >= 0x80. */
static bool plain_key(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
            return false;
    }
    return true;
}

static int write_node(const struct fo_jnode *x, struct fo_buf *out)
{
    if (!x->opened)
        return fo_buf_append(out, x->raw.p, x->raw.len);
    bool obj = x->kind == FO_JSON_OBJECT;
    int rc = fo_buf_putc(out, obj ? '{' : '[');
    for (const struct fo_jnode *c = x->first; rc == 0 && c; c = c->next) {
        if (obj && plain_key(c->key, c->klen)) {
            /* Room for ,"key": and a scalar: one reserve, then plain stores. */
            size_t need = c->klen + 4 + (c->opened ? 0 : c->raw.len);
            rc = fo_buf_reserve(out, need);
            if (rc < 0)
                break;
            char *d = out->data + out->len;
            if (c != x->first)
                *d++ = ',';
            *d++ = '"';
            memcpy(d, c->key, c->klen);
            d += c->klen;
            *d++ = '"';
            *d++ = ':';
            if (!c->opened) {
                memcpy(d, c->raw.p, c->raw.len);
                d += c->raw.len;
            }
            out->len = (size_t)(d - out->data);
            out->data[out->len] = '\0';
            if (!c->opened)
                continue;
        } else {
            if (c != x->first)
                rc = fo_buf_putc(out, ',');
            if (rc == 0 && obj) {
                rc = fo_json_put_string(out, c->key, c->klen);
                if (rc == 0)
                    rc = fo_buf_putc(out, ':');
            }
        }
        if (rc == 0)
            rc = write_node(c, out);
    }
    return rc == 0 ? fo_buf_putc(out, obj ? '}' : ']') : rc;
}

int fo_jtree_write(const struct fo_jnode *x, struct fo_buf *out)
{
    /* The source text is a fair guess of the output's size: one reserve for most trees. */
    int rc = fo_buf_reserve(out, x->raw.len + 64);
    return rc == -E2BIG || rc == 0 ? write_node(x, out) : rc;
}
