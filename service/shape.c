/* shape.c -- the edits of response shaping (see shape.h).
 *
 * Every path-driven edit first finds its matches (match(), which records what each "*"
 * stood for) and only then changes the tree, so the result never depends on the order in
 * which the matches were found or on the order of the list that named them. A "*" binding
 * is the key of an object member or the index of an array element; a move or append
 * writes the k-th "*" of its destination with the k-th binding of its source. */
#include "shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fo_shape_clear(struct fo_shape *s)
{
    free(s->collection);
    fo_jpath_free(&s->target);
    for (size_t i = 0; i < s->nallow; i++)
        fo_jpath_free(&s->allow[i]);
    free(s->allow);
    for (size_t i = 0; i < s->ndeny; i++)
        fo_jpath_free(&s->deny[i]);
    free(s->deny);
    for (size_t i = 0; i < s->nrename; i++) {
        fo_jpath_free(&s->rename[i].path);
        free(s->rename[i].to);
    }
    free(s->rename);
    for (size_t i = 0; i < s->nops; i++) {
        fo_jpath_free(&s->ops[i].from);
        fo_jpath_free(&s->ops[i].to);
    }
    free(s->ops);
    free(s->group);
    free(s->fallback);
    memset(s, 0, sizeof *s);
}

/* A rename's path prefix must not name a key an earlier rename takes or gives: the one pass
 * matches prefixes against the body's keys, the tree against keys already renamed. */
static bool renames_stream(const struct fo_shape *s)
{
    for (size_t i = 0; i < s->nrename; i++) {
        const struct fo_jpath *p = &s->rename[i].path;
        for (size_t k = 0; k + 1 < p->n; k++) {
            const struct fo_jseg *g = &p->seg[k];
            for (size_t j = 0; j < i && !g->any; j++) {
                const struct fo_shape_rename *r = &s->rename[j];
                const struct fo_jseg *from = &r->path.seg[r->path.n - 1];
                if (fo_jseg_is_key(g, r->to, r->tolen) || fo_jseg_is_key(from, g->s, g->len))
                    return false;
            }
        }
    }
    return true;
}

void fo_shape_finish(struct fo_shape *s)
{
    s->stream =
        s->tree && !s->collection && !s->nops && s->encoding == FO_ENC_JSON && renames_stream(s);
}

bool fo_shape_passes(const struct fo_shape *s, int status)
{
    for (size_t i = 0; s && i < s->npass; i++)
        if (s->pass_status[i] == status)
            return true;
    return false;
}

/* ---- finding matches ---- */

/* What one "*" stood for. */
struct bind {
    const char *k; /* Object member: its key; NULL for an array element. */
    size_t klen;
    size_t index; /* Array element: its index. */
};

struct matches {
    struct fo_jnode **node; /* From realloc(): n of them. */
    struct bind *bind;      /* From realloc(): nany per match. */
    size_t n, cap, nany;
    int rc; /* Sticky: -ENOMEM, or the tree's error. */
};

static void push(struct matches *m, struct fo_jnode *x, const struct bind *b)
{
    if (m->rc < 0)
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct fo_jnode **nn = realloc(m->node, cap * sizeof *nn);
        if (nn)
            m->node = nn;
        struct bind *nb = realloc(m->bind, cap * (m->nany ? m->nany : 1) * sizeof *nb);
        if (nb)
            m->bind = nb;
        if (!nn || !nb) {
            m->rc = -ENOMEM;
            return;
        }
        m->cap = cap;
    }
    m->node[m->n] = x;
    if (m->nany)
        memcpy(&m->bind[m->n * m->nany], b, m->nany * sizeof *b);
    m->n++;
}

static void free_matches(struct matches *m)
{
    free(m->node);
    free(m->bind);
}

/* Every node that 'p' from segment i on reaches from x; b holds the bindings so far. */
static void match(struct fo_jtree *t, struct fo_jnode *x, const struct fo_jpath *p, size_t i,
                  struct bind *b, size_t nb, struct matches *m)
{
    if (m->rc < 0)
        return;
    if (i == p->n) {
        push(m, x, b);
        return;
    }
    const struct fo_jseg *g = &p->seg[i];
    if (x->kind != FO_JSON_OBJECT && x->kind != FO_JSON_ARRAY)
        return;
    if (x->kind == FO_JSON_ARRAY && !g->any && g->index < 0)
        return;
    /* "*" visits every child: open the whole subtree in one pass. */
    int rc = g->any ? fo_jtree_open_all(t, x) : fo_jtree_open(t, x);
    if (rc < 0) {
        m->rc = rc;
        return;
    }
    size_t idx = 0;
    for (struct fo_jnode *c = x->first; c; c = c->next, idx++) {
        if (x->kind == FO_JSON_OBJECT && !g->any && !fo_jseg_is_key(g, c->key, c->klen))
            continue;
        if (x->kind == FO_JSON_ARRAY && !g->any && (size_t)g->index != idx)
            continue;
        if (g->any) {
            b[nb].k = x->kind == FO_JSON_OBJECT ? c->key : NULL;
            b[nb].klen = c->klen;
            b[nb].index = idx;
        }
        match(t, c, p, i + 1, b, nb + g->any, m);
    }
}

static int find(struct fo_jtree *t, const struct fo_jpath *p, struct matches *m)
{
    struct bind b[FO_JPATH_MAX];
    memset(m, 0, sizeof *m);
    m->nany = p->nany;
    match(t, t->root, p, 0, b, 0, m);
    return m->rc;
}

/* ---- the edits ---- */

int fo_shape_collection(struct fo_jtree *t, const char *key)
{
    if (t->root->kind != FO_JSON_ARRAY)
        return 0;
    int rc = 0;
    struct fo_jnode *obj = fo_jtree_new_object(t, &rc);
    if (!obj)
        return rc;
    fo_jtree_append(obj, t->root, key, strlen(key));
    t->root = obj;
    return 0;
}

int fo_shape_target(struct fo_jtree *t, const struct fo_jpath *p)
{
    struct fo_jnode *x = t->root;
    int rc = 0;
    for (size_t i = 0; x && i < p->n; i++) {
        const struct fo_jseg *g = &p->seg[i];
        if (x->kind == FO_JSON_OBJECT)
            x = fo_jtree_member(t, x, g->s, g->len, &rc);
        else if (x->kind == FO_JSON_ARRAY && g->index >= 0)
            x = fo_jtree_element(t, x, (size_t)g->index, &rc);
        else
            x = NULL;
        if (rc < 0)
            return rc;
    }
    if (!x)
        return 1;
    fo_jtree_detach(x);
    x->key = NULL;
    x->klen = 0;
    t->root = x;
    return 0;
}

int fo_shape_deny(struct fo_jtree *t, const struct fo_jpath *paths, size_t n)
{
    struct matches all[FO_SHAPE_MAX_LIST];
    size_t got = 0;
    int rc = 0;
    for (; got < n && got < FO_SHAPE_MAX_LIST && rc == 0; got++)
        rc = find(t, &paths[got], &all[got]);
    for (size_t i = 0; rc == 0 && i < got; i++)
        for (size_t j = 0; j < all[i].n; j++)
            fo_jtree_detach(all[i].node[j]);
    for (size_t i = 0; i < got; i++)
        free_matches(&all[i]);
    return rc;
}

/* Drop the members of object 'p' keyed k, but 'keep'. */
static void drop_key(struct fo_jnode *p, const char *k, size_t n, const struct fo_jnode *keep)
{
    for (struct fo_jnode *c = p->first, *next; c; c = next) {
        next = c->next;
        if (c != keep && c->klen == n && memcmp(c->key, k, n) == 0)
            fo_jtree_detach(c);
    }
}

int fo_shape_rename(struct fo_jtree *t, const struct fo_shape_rename *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct matches m;
        int rc = find(t, &r[i].path, &m);
        for (size_t j = 0; rc == 0 && j < m.n; j++) {
            struct fo_jnode *x = m.node[j];
            if (!x->parent || x->parent->kind != FO_JSON_OBJECT)
                continue; /* An array element has no key to rename. */
            drop_key(x->parent, r[i].to, r[i].tolen, x);
            x->key = r[i].to;
            x->klen = r[i].tolen;
        }
        free_matches(&m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- allow ---- */

/* The allow paths still being followed at one node: path index and next segment. */
struct active {
    unsigned short path, seg;
};

enum { DROP, KEEP };

static int prune(struct fo_jtree *t, struct fo_jnode *x, const struct fo_jpath *paths,
                 const struct active *in, size_t nin, int *rc);

/* Whether child c (index idx) of x goes on, and with which of the active paths. */
static size_t step(const struct fo_jnode *x, const struct fo_jnode *c, size_t idx,
                   const struct fo_jpath *paths, const struct active *in, size_t nin,
                   struct active *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nin; i++) {
        const struct fo_jseg *g = &paths[in[i].path].seg[in[i].seg];
        bool hit = g->any || (x->kind == FO_JSON_OBJECT ? fo_jseg_is_key(g, c->key, c->klen)
                                                        : g->index >= 0 && (size_t)g->index == idx);
        if (hit)
            out[n++] = (struct active){in[i].path, (unsigned short)(in[i].seg + 1)};
    }
    return n;
}

static int prune(struct fo_jtree *t, struct fo_jnode *x, const struct fo_jpath *paths,
                 const struct active *in, size_t nin, int *rc)
{
    for (size_t i = 0; i < nin; i++)
        if (in[i].seg == paths[in[i].path].n)
            return KEEP; /* A listed path ends here: its whole subtree stays. */
    if (x->kind != FO_JSON_OBJECT && x->kind != FO_JSON_ARRAY)
        return DROP;
    if (x->kind == FO_JSON_ARRAY) {
        bool descends = false; /* Only "*" or an index goes into an array. */
        for (size_t i = 0; i < nin && !descends; i++) {
            const struct fo_jseg *g = &paths[in[i].path].seg[in[i].seg];
            descends = g->any || g->index >= 0;
        }
        if (!descends)
            return DROP;
    }
    bool any = false;
    for (size_t i = 0; i < nin && !any; i++)
        any = paths[in[i].path].seg[in[i].seg].any;
    *rc = any ? fo_jtree_open_all(t, x) : fo_jtree_open(t, x);
    if (*rc < 0)
        return KEEP;
    struct active next[FO_SHAPE_MAX_LIST];
    size_t idx = 0;
    for (struct fo_jnode *c = x->first, *after; c && *rc == 0; c = after, idx++) {
        after = c->next;
        size_t nn = step(x, c, idx, paths, in, nin, next);
        if (nn && prune(t, c, paths, next, nn, rc) == KEEP)
            continue;
        if (x->kind == FO_JSON_OBJECT) {
            fo_jtree_detach(c);
        } else {
            struct fo_jnode *empty = fo_jtree_new_object(t, rc);
            if (empty)
                fo_jtree_replace(c, empty);
        }
    }
    return x->kind == FO_JSON_ARRAY || x->n > 0 ? KEEP : DROP;
}

int fo_shape_allow(struct fo_jtree *t, const struct fo_jpath *paths, size_t n)
{
    struct active in[FO_SHAPE_MAX_LIST];
    if (n > FO_SHAPE_MAX_LIST)
        n = FO_SHAPE_MAX_LIST;
    for (size_t i = 0; i < n; i++)
        in[i] = (struct active){(unsigned short)i, 0};
    int rc = 0;
    struct fo_jnode *root = t->root;
    if (root->kind != FO_JSON_OBJECT && root->kind != FO_JSON_ARRAY) {
        t->root = fo_jtree_new_value(t, (struct fo_json_span){"null", 4}, &rc);
        if (!t->root)
            t->root = root;
        return rc;
    }
    if (prune(t, root, paths, in, n, &rc) == DROP && rc == 0) {
        /* The root stays, keeping nothing: an array no path enters is emptied too. */
        struct fo_jnode *empty = root->kind == FO_JSON_OBJECT
                                     ? fo_jtree_new_object(t, &rc)
                                     : fo_jtree_new_value(t, (struct fo_json_span){"[]", 2}, &rc);
        if (empty)
            t->root = empty;
    }
    return rc;
}

/* ---- ops ---- */

/* One concrete segment of a destination. */
struct cseg {
    const char *k; /* Key bytes (shape text, tree arena or body). */
    size_t klen;
    long index; /* As an array index, or -1. */
};

/* The destination 'to' with the bindings of one source match. */
static int concrete(struct fo_jtree *t, const struct fo_jpath *to, const struct bind *b,
                    struct cseg *out)
{
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < to->n; i++) {
        const struct fo_jseg *g = &to->seg[i];
        if (!g->any) {
            out[i] = (struct cseg){g->s, g->len, g->index};
            continue;
        }
        const struct bind *x = &b[k++];
        if (x->k) {
            out[i] = (struct cseg){x->k, x->klen, -1};
            continue;
        }
        char num[24];
        int len = snprintf(num, sizeof num, "%zu", x->index);
        const char *s = fo_jtree_strdup(t, num, (size_t)len, &rc);
        if (!s)
            return rc;
        out[i] = (struct cseg){s, (size_t)len, (long)x->index};
    }
    return 0;
}

static bool within(const struct fo_jnode *x, const struct fo_jnode *anc)
{
    for (; x; x = x->parent)
        if (x == anc)
            return true;
    return false;
}

/* The existing child of x that s names, or NULL. */
static struct fo_jnode *child(struct fo_jtree *t, struct fo_jnode *x, const struct cseg *s, int *rc)
{
    if (x->kind == FO_JSON_OBJECT)
        return fo_jtree_member(t, x, s->k, s->klen, rc);
    if (x->kind == FO_JSON_ARRAY && s->index >= 0)
        return fo_jtree_element(t, x, (size_t)s->index, rc);
    return NULL;
}

/* Move 'x' to the concrete path d[0..n). Returns 0, 1 when it cannot be placed (x stays). */
static int move_to(struct fo_jtree *t, struct fo_jnode *x, const struct cseg *d, size_t n)
{
    int rc = 0;
    struct fo_jnode *p = t->root;
    size_t i = 0;
    /* Walk what exists; refuse a scalar, an array stepped into by key, a place inside x. */
    for (; i + 1 < n; i++) {
        if (p->kind != FO_JSON_OBJECT && p->kind != FO_JSON_ARRAY)
            return 1;
        struct fo_jnode *c = child(t, p, &d[i], &rc);
        if (rc < 0)
            return rc;
        if (!c) {
            if (p->kind != FO_JSON_OBJECT)
                return 1;
            break;
        }
        p = c;
    }
    if (within(p, x) || (p->kind != FO_JSON_OBJECT && (p->kind != FO_JSON_ARRAY || i + 1 < n)))
        return 1;
    if ((rc = fo_jtree_open(t, p)) < 0)
        return rc;
    struct fo_jnode *old = NULL;
    if (i + 1 == n && p->kind == FO_JSON_ARRAY) {
        old = child(t, p, &d[i], &rc);
        if (!old)
            return rc < 0 ? rc : 1;
    }
    if (old == x)
        return 0;
    /* Create the missing objects, then place. */
    for (; i + 1 < n; i++) {
        struct fo_jnode *o = fo_jtree_new_object(t, &rc);
        if (!o)
            return rc;
        fo_jtree_append(p, o, d[i].k, d[i].klen);
        p = o;
    }
    fo_jtree_detach(x);
    if (old) {
        fo_jtree_replace(old, x);
        x->key = NULL;
        x->klen = 0;
    } else {
        drop_key(p, d[n - 1].k, d[n - 1].klen, NULL);
        fo_jtree_append(p, x, d[n - 1].k, d[n - 1].klen);
    }
    return 0;
}

/* Append the elements of array x to the array at d[0..n), and drop x. 1 when not both
 * arrays (nothing changes). */
static int append_to(struct fo_jtree *t, struct fo_jnode *x, const struct cseg *d, size_t n)
{
    int rc = 0;
    struct fo_jnode *q = t->root;
    for (size_t i = 0; q && i < n; i++) {
        q = child(t, q, &d[i], &rc);
        if (rc < 0)
            return rc;
    }
    if (!q || q == x || within(q, x) || x->kind != FO_JSON_ARRAY || q->kind != FO_JSON_ARRAY)
        return 1;
    if ((rc = fo_jtree_open(t, x)) < 0 || (rc = fo_jtree_open(t, q)) < 0)
        return rc;
    while (x->first) {
        struct fo_jnode *e = x->first;
        fo_jtree_detach(e);
        fo_jtree_append(q, e, NULL, 0);
    }
    fo_jtree_detach(x);
    return 0;
}

int fo_shape_ops(struct fo_jtree *t, const struct fo_shape_op *ops, size_t n, bool *skipped)
{
    for (size_t i = 0; i < n; i++) {
        const struct fo_shape_op *op = &ops[i];
        struct matches m;
        int rc = find(t, &op->from, &m);
        if (op->op == FO_OP_APPEND && rc == 0 && m.n == 0)
            *skipped = true;
        for (size_t j = 0; rc == 0 && j < m.n; j++) {
            struct fo_jnode *x = m.node[j];
            if (op->op == FO_OP_DEL) {
                fo_jtree_detach(x);
                continue;
            }
            if (!within(x, t->root))
                continue; /* An earlier match dropped it (or what held it). */
            if (x == t->root) {
                *skipped = true;
                continue;
            }
            struct cseg d[FO_JPATH_MAX];
            rc = concrete(t, &op->to, &m.bind[j * m.nany], d);
            if (rc == 0)
                rc = op->op == FO_OP_MOVE ? move_to(t, x, d, op->to.n)
                                          : append_to(t, x, d, op->to.n);
            if (rc == 1) {
                *skipped = true;
                rc = 0;
            }
        }
        free_matches(&m);
        if (rc < 0)
            return rc;
    }
    return 0;
}
