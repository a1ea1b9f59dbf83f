/* shape_stream.c -- target, allow/deny and rename in one pass over a body, without a tree.
 *
 * The tree (jtree.h, shape.c) can do every edit, but building it costs a node per value,
 * and the common shaping (pick a subtree, keep a few fields of each item, rename one) does
 * not need one: each of those keys decides a member from its key and its path alone. So a
 * backend whose keys are only target, allow or deny, and rename (and whose renames do not
 * name, in their paths, a key an earlier rename takes or gives: fo_shape_finish checks)
 * is shaped here, reading the validated body once and writing the result as it goes.
 * The result is the tree's, value for value (fuzz/fuzz_shape.c compares the two):
 *  - target walks the raw spans to the value (the first member of a repeated key), skipping
 *    only what comes before it;
 *  - allow and deny follow their paths as shape.c's prune and match do; an object that
 *    keeps nothing under allow is taken back out of the output (the writer remembers where
 *    it began), an array element becomes {};
 *  - rename runs after the filter: at an object where a rename's last segment applies, the
 *    members' values are written first, then the renames are played in config order on the
 *    surviving keys (a rename onto a key drops that member), then the object is laid out.
 * Containers no path enters are copied as the backend's bytes. Threads: pure. */
#include "shape.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum mode { M_NONE, M_ALLOW, M_DENY };
enum { DROP, KEEP };

/* A path being followed: its index (in allow/deny, or in rename) and next segment. */
struct act {
    unsigned short path, seg;
};

struct sctx {
    const struct fo_shape *s;
    const struct fo_jpath *fp; /* allow or deny paths. */
    struct fo_buf *out;
    struct fo_buf keys; /* Decoded keys with escapes, for the current member. */
    struct fo_buf tmp;  /* An object being laid out after its renames (reused). */
    int rc;
};

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Past the comma (and whitespace) that may follow a value ending at p. */
static const char *next(const char *p, const char *end)
{
    p = ws(p, end);
    if (p < end && *p == ',')
        p = ws(p + 1, end);
    return p;
}

static void put(struct sctx *c, const char *s, size_t n)
{
    struct fo_buf *b = c->out;
    if (b->data && b->cap - b->len > n && b->len + n <= b->max) {
        memcpy(b->data + b->len, s, n); /* Room already: no call (the common case). */
        b->len += n;
        b->data[b->len] = '\0';
    } else if (c->rc == 0) {
        c->rc = fo_buf_append(b, s, n);
    }
}

/* "key": -- as fo_json_put_string writes it; a key with nothing to escape in one copy. */
static void put_key(struct sctx *c, const char *k, size_t n)
{
    bool plain = n < 128;
    for (size_t i = 0; plain && i < n; i++) {
        unsigned char ch = (unsigned char)k[i];
        plain = ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x80;
    }
    if (plain) {
        char tmp[132];
        tmp[0] = '"';
        memcpy(tmp + 1, k, n);
        tmp[n + 1] = '"';
        tmp[n + 2] = ':';
        put(c, tmp, n + 3);
        return;
    }
    if (c->rc == 0)
        c->rc = fo_json_put_string(c->out, k, n);
    put(c, ":", 1);
}

/* A member's key, decoded (into c->keys when it has escapes). */
static void key_of(struct sctx *c, struct fo_json_span raw, size_t at, const char **k, size_t *n)
{
    const char *inner = raw.p + 1;
    size_t len = raw.len - 2;
    if (!memchr(inner, '\\', len)) {
        *k = inner;
        *n = len;
        return;
    }
    c->keys.len = at;
    if (c->rc == 0)
        c->rc = fo_json_unescape(raw, &c->keys);
    *k = NULL; /* At c->keys.data + at, once it stops moving. */
    *n = c->keys.len - at;
}

/* The paths of 'in' that go on into child (key k, or array index idx). */
static size_t step(const struct fo_jpath *paths, const struct act *in, size_t nin, bool obj,
                   const char *k, size_t klen, size_t idx, struct act *out, bool *terminal)
{
    size_t n = 0;
    *terminal = false;
    for (size_t i = 0; i < nin; i++) {
        const struct fo_jpath *p = &paths[in[i].path];
        if (in[i].seg >= p->n)
            continue;
        const struct fo_jseg *g = &p->seg[in[i].seg];
        bool hit =
            g->any || (obj ? fo_jseg_is_key(g, k, klen) : g->index >= 0 && (size_t)g->index == idx);
        if (!hit)
            continue;
        out[n++] = (struct act){in[i].path, (unsigned short)(in[i].seg + 1)};
        *terminal = *terminal || (size_t)in[i].seg + 1 == p->n;
    }
    return n;
}

/* The same for renames: those whose next segment is not their last. */
static size_t step_renames(const struct fo_shape *s, const struct act *in, size_t nin,
                           const char *k, size_t klen, struct act *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nin; i++) {
        const struct fo_jpath *p = &s->rename[in[i].path].path;
        if ((size_t)in[i].seg + 1 >= p->n)
            continue;
        const struct fo_jseg *g = &p->seg[in[i].seg];
        if (g->any || fo_jseg_is_key(g, k, klen))
            out[n++] = (struct act){in[i].path, (unsigned short)(in[i].seg + 1)};
    }
    return n;
}

static int walk(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                size_t nfa, const struct act *ra, size_t nra, const char **vend);

/* One member kept by the filter, while its object is laid out after renames. */
struct member {
    const char *k; /* Current key (may point into c->keys via koff). */
    size_t klen, koff;
    bool esc;          /* The key is in c->keys at koff. */
    size_t voff, vlen; /* Its value's output, at out->data + voff. */
    bool gone;         /* Dropped by a rename onto its key. */
};

/* v.p is the value, v.len what is left of the text; *vend gets one past the value. */
/* The key a member's key k becomes under the renames of ra that apply here, in order; sets
 * *clash when k is a key one of them gives (a rename onto it would drop this member). */
static void map_key(const struct sctx *c, const struct act *ra, size_t nra, const char **k,
                    size_t *klen, bool *clash)
{
    for (size_t i = 0; i < nra; i++) {
        const struct fo_shape_rename *r = &c->s->rename[ra[i].path];
        if ((size_t)ra[i].seg + 1 != r->path.n)
            continue;
        if (*klen == r->tolen && memcmp(*k, r->to, r->tolen) == 0)
            *clash = true;
        if (fo_jseg_is_key(&r->path.seg[r->path.n - 1], *k, *klen)) {
            *k = r->to;
            *klen = r->tolen;
        }
    }
}

static int walk_object_at(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                          size_t nfa, const struct act *ra, size_t nra, const char **vend,
                          bool slow);

static int walk_object(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                       size_t nfa, const struct act *ra, size_t nra, const char **vend)
{
    return walk_object_at(c, v, m, fa, nfa, ra, nra, vend, false);
}

/* Renames that apply here are written straight away with each member's mapped key unless a
 * key could clash (a member has a key a rename gives, or two members are renamed onto one
 * key); then (slow) the object is walked again and laid out after playing the renames. */
static int walk_object_at(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                          size_t nfa, const struct act *ra, size_t nra, const char **vend,
                          bool slow)
{
    const char *p = ws(v.p + 1, v.p + v.len), *end = v.p + v.len;
    bool applies = false; /* A rename's last segment applies to this object's keys. */
    for (size_t i = 0; i < nra && !applies; i++)
        applies = (size_t)ra[i].seg + 1 == c->s->rename[ra[i].path].path.n;
    bool here = applies && slow, clash = false;
    const char *renamed[16]; /* Keys given to members here (each a rename's 'to'). */
    size_t nrenamed = 0, kmark = c->keys.len;
    size_t mark = c->out->len, kept = 0;
    struct member small[16];
    struct member *ms = small;
    size_t nms = 0, cap = 16;
    if (!here)
        put(c, "{", 1);
    struct act cf[FO_SHAPE_MAX_LIST], cr[FO_SHAPE_MAX_LIST];
    while (c->rc == 0 && p < end && *p != '}') {
        const char *ke = fo_json_value_end(p, end);
        struct fo_json_span kraw = {p, (size_t)(ke - p)};
        p = ws(ws(ke, end) + 1, end);
        struct fo_json_span cv = {p, (size_t)(end - p)};
        const char *ve;

        size_t koff = c->keys.len;
        const char *k;
        size_t klen;
        key_of(c, kraw, koff, &k, &klen);
        const char *kk = k ? k : c->keys.data + koff;
        bool term;
        size_t ncf = step(c->fp, fa, nfa, true, kk, klen, 0, cf, &term);
        if ((m == M_ALLOW && ncf == 0) || (m == M_DENY && term)) {
            p = next(fo_json_value_end(p, end), end);
            continue; /* Not kept by allow, or removed by deny. */
        }
        size_t ncr = step_renames(c->s, ra, nra, kk, klen, cr);
        size_t before = c->out->len;
        if (!here) {
            if (kept)
                put(c, ",", 1);
            const char *mk = kk;
            size_t mlen = klen;
            if (applies) {
                map_key(c, ra, nra, &mk, &mlen, &clash);
                for (size_t i = 0; mk != kk && i < nrenamed; i++)
                    clash = clash || strcmp(renamed[i], mk) == 0;
                if (mk != kk)
                    clash = clash || nrenamed == 16;
                if (mk != kk && nrenamed < 16)
                    renamed[nrenamed++] = mk;
            }
            put_key(c, mk, mlen);
        }
        size_t vstart = c->out->len;
        int kept_it = walk(c, cv, m, cf, ncf, cr, ncr, &ve);
        p = next(ve, end);
        if (kept_it == DROP) {
            c->out->len = before; /* Emptied by allow: as if never written. */
            continue;
        }
        kept++;
        if (!here) {
            c->keys.len = koff; /* Written: the decoded key is no longer needed. */
            continue;
        }
        if (nms == cap) {
            struct member *n2 = malloc(cap * 2 * sizeof *ms);
            if (!n2) {
                c->rc = -ENOMEM;
                break;
            }
            memcpy(n2, ms, nms * sizeof *ms);
            if (ms != small)
                free(ms);
            ms = n2;
            cap *= 2;
        }
        ms[nms++] = (struct member){k, klen, koff, k == NULL, vstart, c->out->len - vstart, false};
    }
    if (applies && !slow && clash && c->rc == 0) {
        c->out->len = mark; /* Start again, the careful way. */
        c->keys.len = kmark;
        return walk_object_at(c, v, m, fa, nfa, ra, nra, vend, true);
    }
    if (here && c->rc == 0) {
        /* Play the renames in order on the surviving keys, then lay the object out. */
        for (size_t i = 0; i < nms; i++)
            if (ms[i].esc)
                ms[i].k = c->keys.data + ms[i].koff;
        for (size_t i = 0; i < nra; i++) {
            const struct fo_shape_rename *r = &c->s->rename[ra[i].path];
            if ((size_t)ra[i].seg + 1 != r->path.n)
                continue;
            const struct fo_jseg *g = &r->path.seg[r->path.n - 1];
            for (size_t j = 0; j < nms; j++) {
                if (ms[j].gone || !fo_jseg_is_key(g, ms[j].k, ms[j].klen))
                    continue;
                for (size_t o = 0; o < nms; o++)
                    if (o != j && !ms[o].gone && ms[o].klen == r->tolen &&
                        memcmp(ms[o].k, r->to, r->tolen) == 0)
                        ms[o].gone = true;
                ms[j].k = r->to;
                ms[j].klen = r->tolen;
            }
        }
        struct fo_buf *o = &c->tmp;
        o->len = 0;
        int rc = fo_buf_putc(o, '{');
        kept = 0;
        for (size_t j = 0; rc == 0 && j < nms; j++) {
            if (ms[j].gone)
                continue;
            if (kept++)
                rc = fo_buf_putc(o, ',');
            if (rc == 0)
                rc = fo_json_put_string(o, ms[j].k, ms[j].klen);
            if (rc == 0)
                rc = fo_buf_putc(o, ':');
            if (rc == 0)
                rc = fo_buf_append(o, c->out->data + ms[j].voff, ms[j].vlen);
        }
        if (rc == 0)
            rc = fo_buf_putc(o, '}');
        c->out->len = mark;
        if (rc == 0)
            rc = fo_buf_append(c->out, o->data, o->len);
        c->rc = rc;
    } else {
        put(c, "}", 1);
    }
    if (ms != small)
        free(ms);
    if (c->rc == 0 && c->out->data)
        c->out->data[c->out->len] = '\0';
    *vend = p < end ? p + 1 : end;
    return m == M_ALLOW && kept == 0 ? DROP : KEEP;
}

static int walk_array(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                      size_t nfa, const struct act *ra, size_t nra, const char **vend)
{
    const char *p = ws(v.p + 1, v.p + v.len), *end = v.p + v.len;
    struct act cf[FO_SHAPE_MAX_LIST];
    size_t idx = 0, kept = 0;
    put(c, "[", 1);
    for (; c->rc == 0 && p < end && *p != ']'; idx++) {
        struct fo_json_span cv = {p, (size_t)(end - p)};
        const char *ve;
        bool term;
        size_t ncf = step(c->fp, fa, nfa, false, NULL, 0, idx, cf, &term);
        if (m == M_DENY && term) {
            p = next(fo_json_value_end(p, end), end);
            continue; /* Removed: the later elements move up, as in the tree. */
        }
        size_t before = c->out->len;
        if (kept++)
            put(c, ",", 1);
        size_t vstart = c->out->len;
        if (m == M_ALLOW && ncf == 0) {
            put(c, "{}", 2);
            p = next(fo_json_value_end(p, end), end);
            continue;
        }
        /* Renames go on into elements only through "*" or an index: none of them has
         * one here but "*" (their last segment is a key), so every one still applies. */
        struct act cr[FO_SHAPE_MAX_LIST];
        size_t ncr = 0;
        for (size_t i = 0; i < nra; i++) {
            const struct fo_jpath *rp = &c->s->rename[ra[i].path].path;
            const struct fo_jseg *g = &rp->seg[ra[i].seg];
            if ((size_t)ra[i].seg + 1 < rp->n &&
                (g->any || (g->index >= 0 && (size_t)g->index == idx)))
                cr[ncr++] = (struct act){ra[i].path, (unsigned short)(ra[i].seg + 1)};
        }
        if (walk(c, cv, m, cf, ncf, cr, ncr, &ve) == DROP) {
            c->out->len = vstart;
            put(c, "{}", 2);
        }
        p = next(ve, end);
        (void)before;
    }
    put(c, "]", 1);
    *vend = p < end ? p + 1 : end;
    return KEEP;
}

static int walk(struct sctx *c, struct fo_json_span v, enum mode m, const struct act *fa,
                size_t nfa, const struct act *ra, size_t nra, const char **vend)
{
    bool container = v.len && (v.p[0] == '{' || v.p[0] == '[');
    if (m == M_ALLOW) {
        bool term = false, descends = false;
        for (size_t i = 0; i < nfa; i++) {
            const struct fo_jpath *p = &c->fp[fa[i].path];
            term = term || fa[i].seg == p->n;
            descends = descends || (fa[i].seg < p->n &&
                                    (p->seg[fa[i].seg].any || p->seg[fa[i].seg].index >= 0));
        }
        if (term) {
            m = M_NONE; /* A listed path ends here: the whole subtree stays. */
            nfa = 0;
        } else if (!container || (v.p[0] == '[' && !descends)) {
            *vend = fo_json_value_end(v.p, v.p + v.len);
            return DROP;
        }
    }
    if (!container || (nfa == 0 && nra == 0)) {
        *vend = fo_json_value_end(v.p, v.p + v.len);
        put(c, v.p, (size_t)(*vend - v.p));
        return KEEP;
    }
    if (m == M_NONE)
        nfa = 0;
    return v.p[0] == '{' ? walk_object(c, v, m, fa, nfa, ra, nra, vend)
                         : walk_array(c, v, m, fa, nfa, ra, nra, vend);
}

/* True when the raw key literal k decodes to the n bytes at s. */
static bool key_is(struct fo_json_span k, const char *s, size_t n)
{
    if (!memchr(k.p, '\\', k.len))
        return k.len == n + 2 && memcmp(k.p + 1, s, n) == 0;
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    bool eq = fo_json_unescape(k, &b) == 0 && b.len == n && memcmp(b.data ? b.data : "", s, n) == 0;
    fo_buf_free(&b);
    return eq;
}

/* The value at target path p inside v, or false on a miss (as fo_shape_target: the first
 * member of a repeated key). Only the siblings before each step are skipped; out->len is
 * what is left of the text from the value on (its end is found by whoever reads it). */
static bool find_target(struct fo_json_span v, const struct fo_jpath *p, struct fo_json_span *out)
{
    const char *end = v.p + v.len, *x = v.p;
    for (size_t i = 0; i < p->n; i++) {
        const struct fo_jseg *g = &p->seg[i];
        const char *hit = NULL;
        if (*x == '{') {
            const char *q = ws(x + 1, end);
            while (!hit && q < end && *q != '}') {
                const char *ke = fo_json_value_end(q, end);
                bool eq = key_is((struct fo_json_span){q, (size_t)(ke - q)}, g->s, g->len);
                q = ws(ws(ke, end) + 1, end);
                if (eq)
                    hit = q;
                else
                    q = next(fo_json_value_end(q, end), end);
            }
        } else if (*x == '[' && g->index >= 0) {
            const char *q = ws(x + 1, end);
            for (long n = 0; !hit && q < end && *q != ']'; n++) {
                if (n == g->index)
                    hit = q;
                else
                    q = next(fo_json_value_end(q, end), end);
            }
        }
        if (!hit)
            return false;
        x = hit;
    }
    out->p = x;
    out->len = (size_t)(end - x);
    return true;
}

int fo_shape_stream(const struct fo_shape *s, struct fo_json_span in, struct fo_buf *out,
                    struct fo_json_span *result)
{
    struct fo_json_span v = in;
    if (s->has_target && !find_target(in, &s->target, &v))
        return 1;
    if (!s->nallow && !s->ndeny && !s->nrename) {
        result->p = v.p; /* A target alone: the span moves, nothing is copied. */
        result->len = (size_t)(fo_json_value_end(v.p, v.p + v.len) - v.p);
        return 0;
    }
    struct sctx c = {.s = s, .fp = s->nallow ? s->allow : s->deny, .out = out, .rc = 0};
    fo_buf_init(&c.keys, FO_BUF_UNLIMITED);
    fo_buf_init(&c.tmp, FO_BUF_UNLIMITED);
    struct act fa[FO_SHAPE_MAX_LIST], ra[FO_SHAPE_MAX_LIST];
    size_t nfa = s->nallow ? s->nallow : s->ndeny;
    for (size_t i = 0; i < nfa; i++)
        fa[i] = (struct act){(unsigned short)i, 0};
    for (size_t i = 0; i < s->nrename; i++)
        ra[i] = (struct act){(unsigned short)i, 0};
    enum mode m = s->nallow ? M_ALLOW : s->ndeny ? M_DENY : M_NONE;
    const char *vend;
    bool container = v.p[0] == '{' || v.p[0] == '[';
    if (m == M_ALLOW && !container) {
        put(&c, "null", 4); /* The root is never removed; a scalar keeps nothing. */
    } else if (walk(&c, v, m, fa, m == M_NONE ? 0 : nfa, ra, s->nrename, &vend) == DROP) {
        out->len = 0;
        put(&c, v.p[0] == '{' ? "{}" : "[]", 2);
    }
    fo_buf_free(&c.keys);
    fo_buf_free(&c.tmp);
    if (c.rc < 0)
        return c.rc;
    result->p = out->data;
    result->len = out->len;
    return 0;
}
