/* merge.c -- the merged JSON document sent to the client. See merge.h.
 *
 * DESIGN: one pass over the results, in result (config) order, collects an
 * entry per top-level key: the result's name, or each member of a lifted
 * object. Keys are compared decoded, so "a" and "\u0061" are the same key;
 * a key written with escapes is decoded into a scratch buffer, any other key
 * is used in place. A second pass marks clashes: the first entry of a key
 * keeps its position and takes the value of the last one. Up to LINEAR_MAX
 * entries this is a plain scan; past it an open-addressing table keeps a body
 * with thousands of members linear. Output depends only on the results'
 * order and bytes, never on when each body arrived.
 *
 * Values are copied as raw bytes, keys re-escaped by fo_json_put_string, and
 * numbers are never parsed, so nothing is lost. With a report, a backend key
 * "_fanout" is dropped so the report is the one and last member of that name. */
#include "merge.h"

#include "resil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shape.h"

#define INLINE_ENTRIES 16 /* Entries held without malloc(). */
#define LINEAR_MAX     16 /* Up to this many entries, find clashes by scanning. */

static const char report_key[] = "_fanout";

/* One top-level key of the document. */
struct entry {
    const char *key;         /* Decoded key bytes (borrowed); NULL while in scratch. */
    size_t klen;             /* Bytes in key. */
    size_t koff;             /* Offset of the key in scratch when key is NULL. */
    struct fo_json_span val; /* Raw value; the last entry of the key wins. */
    uint64_t hash;           /* Of the key; set only when the table is used. */
    bool dup;                /* Written by an earlier entry, or dropped. */
};

/* The entries of one document. */
struct entries {
    struct entry *v;       /* 'small' or from malloc(). */
    size_t n;              /* Entries used. */
    size_t cap;            /* Entries allocated. */
    struct fo_buf scratch; /* Decoded escaped keys; from malloc(). */
    struct fo_buf *groups; /* From realloc(): the merged groups' objects. */
    size_t ngroups;
    struct entry small[INLINE_ENTRIES]; /* Storage for small documents. */
};

/* Appends with a sticky error, so a writer can check once at the end. */
struct writer {
    struct fo_buf *b; /* Borrowed. */
    int rc;           /* First error, or 0. */
};

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = fo_buf_append(w->b, s, n);
}

static void puts_(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_str(struct writer *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = fo_json_put_string(w->b, s, n);
}

static void put_cstr(struct writer *w, const char *s)
{
    if (!s)
        s = "";
    put_str(w, s, strlen(s));
}

/* One decimal, independent of the locale; non-finite values become 0. */
static void put_ms(struct writer *w, double ms)
{
    if (w->rc == 0)
        w->rc = fo_buf_put_ms(w->b, ms);
}

static void put_int(struct writer *w, int64_t v)
{
    if (w->rc == 0)
        w->rc = fo_buf_put_int(w->b, v);
}

static int entries_add(struct entries *es, const char *key, size_t klen, size_t koff,
                       struct fo_json_span val)
{
    if (es->n == es->cap) {
        if (es->cap > SIZE_MAX / 2 / sizeof *es->v)
            return -ENOMEM;
        size_t cap = es->cap * 2;
        struct entry *v;
        if (es->v == es->small) {
            v = malloc(cap * sizeof *v);
            if (v)
                memcpy(v, es->small, sizeof es->small);
        } else {
            v = realloc(es->v, cap * sizeof *v);
        }
        if (!v)
            return -ENOMEM;
        es->v = v;
        es->cap = cap;
    }
    struct entry *e = &es->v[es->n++];
    e->key = key;
    e->klen = klen;
    e->koff = koff;
    e->val = val;
    e->hash = 0;
    e->dup = false;
    return 0;
}

/* Add the members of object 'body', keys decoded. */
static int add_members(struct entries *es, struct fo_json_span body)
{
    struct fo_json_iter it;
    struct fo_json_span k, v;
    int rc = fo_json_iter_object(&it, body);

    while (rc == 0 && fo_json_next_member(&it, &k, &v)) {
        if (k.len < 2)
            break; /* Only an unvalidated body gets here. */
        const char *inner = k.p + 1;
        size_t n = k.len - 2;
        if (!memchr(inner, '\\', n)) {
            rc = entries_add(es, inner, n, 0, v);
            continue;
        }
        size_t off = es->scratch.len;
        rc = fo_json_unescape(k, &es->scratch);
        if (rc == 0)
            rc = entries_add(es, NULL, es->scratch.len - off, off, v);
    }
    return rc;
}

/* The value a call places: its own, its fallback when it failed, or none (len 0). */
static struct fo_json_span value_of(const struct fo_call *c)
{
    if (c->outcome == FO_OK)
        return c->json;
    if (c->shape && c->shape->fallback)
        return (struct fo_json_span){c->shape->fallback, c->shape->fallback_len};
    return (struct fo_json_span){NULL, 0};
}

static const char *group_of(const struct fo_call *c)
{
    return c->shape ? c->shape->group : NULL;
}

static bool same_group(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int write_object(struct fo_buf *out, const struct fo_call *r, size_t n, const char *group,
                        bool reserve_report);

/* The object of the merged calls of 'group' (the calls from r[first] on), as an entry. */
static int add_group(struct entries *es, const struct fo_call *r, size_t n, size_t first,
                     const char *group)
{
    bool any = false;
    for (size_t i = first; i < n && !any; i++)
        any = r[i].merge && same_group(group_of(&r[i]), group) && value_of(&r[i]).len;
    if (!any)
        return 0; /* Every call of the group failed: it is absent, like a failed call. */
    struct fo_buf *g = realloc(es->groups, (es->ngroups + 1) * sizeof *g);
    if (!g)
        return -ENOMEM;
    es->groups = g;
    g = &es->groups[es->ngroups++];
    fo_buf_init(g, FO_BUF_UNLIMITED);
    int rc = write_object(g, r, n, group, false);
    if (rc < 0)
        return rc;
    return entries_add(es, group, strlen(group), 0, (struct fo_json_span){g->data, g->len});
}

/* The entries of the calls placed at this level: every call, or (group) the merged calls
 * of that group, whose members are lifted into the group's object. */
static int collect(struct entries *es, const struct fo_call *r, size_t n, const char *group)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        struct fo_json_span v = value_of(&r[i]);
        const char *g = group_of(&r[i]);
        if (!v.len || (group && !(r[i].merge && same_group(g, group))))
            continue;
        if (!group && g && r[i].merge) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = r[j].merge && same_group(group_of(&r[j]), g);
            if (!seen)
                rc = add_group(es, r, n, i, g);
        } else if (r[i].merge && fo_json_kind(v) == FO_JSON_OBJECT) {
            rc = add_members(es, v);
        } else {
            const char *name = g ? g : r[i].name ? r[i].name : "";
            rc = entries_add(es, name, strlen(name), 0, v);
        }
        if (rc < 0)
            return rc;
    }
    /* Scratch is complete: it will not move any more. */
    for (size_t i = 0; i < es->n; i++) {
        if (!es->v[i].key)
            es->v[i].key = es->scratch.data + es->v[i].koff;
    }
    return 0;
}

static bool same_key(const struct entry *a, const struct entry *b)
{
    return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

/* FNV-1a, seeded from the address of this call's table (so from ASLR): a
 * set of colliding keys found for one run does not carry over to the next.
 * It is not a keyed hash; the bodies it sees are capped in size anyway. */
static uint64_t hash_key(const char *k, size_t n, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ h >> 29;
}

/* Mark every entry whose key an earlier entry has, giving the earlier one its
 * value. With 'reserve_report', the key "_fanout" is dropped. */
static int find_clashes(struct entries *es, bool reserve_report)
{
    struct entry *e = es->v;
    size_t n = es->n;

    if (reserve_report) {
        for (size_t i = 0; i < n; i++) {
            if (e[i].klen == sizeof report_key - 1 && memcmp(e[i].key, report_key, e[i].klen) == 0)
                e[i].dup = true;
        }
    }
    if (n <= LINEAR_MAX) {
        for (size_t i = 1; i < n; i++) {
            for (size_t j = 0; j < i && !e[i].dup; j++) {
                if (!e[j].dup && same_key(&e[j], &e[i])) {
                    e[j].val = e[i].val;
                    e[i].dup = true;
                }
            }
        }
        return 0;
    }

    size_t size = 64;
    while (size < n * 2)
        size *= 2;
    size_t mask = size - 1;
    size_t *slot = calloc(size, sizeof *slot); /* Entry index + 1; 0 is empty. */
    if (!slot)
        return -ENOMEM;
    uint64_t seed = (uint64_t)(uintptr_t)slot * 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].dup)
            continue;
        e[i].hash = hash_key(e[i].key, e[i].klen, seed);
        size_t at = (size_t)e[i].hash & mask;
        while (slot[at]) {
            struct entry *first = &e[slot[at] - 1];
            if (first->hash == e[i].hash && same_key(first, &e[i])) {
                first->val = e[i].val;
                e[i].dup = true;
                break;
            }
            at = (at + 1) & mask;
        }
        if (!e[i].dup)
            slot[at] = i + 1;
    }
    free(slot);
    return 0;
}

/* The "_fanout" member, without a leading comma. Results sharing a name are
 * reported once, like keys: the last wins, in the place of the first. */
static void write_report(struct writer *w, const struct fo_call *r, size_t n,
                         const struct fo_report *rep)
{
    puts_(w, "\"_fanout\":{\"complete\":");
    puts_(w, rep->complete ? "true" : "false");
    puts_(w, ",\"elapsed_ms\":");
    put_ms(w, rep->elapsed_ms);
    if (rep->ops_skipped)
        puts_(w, ",\"ops\":\"skipped\"");
    puts_(w, ",\"backends\":{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const char *name = r[i].name ? r[i].name : "";
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(r[j].name ? r[j].name : "", name) == 0;
        if (seen)
            continue;
        const struct fo_call *x = &r[i];
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(r[j].name ? r[j].name : "", name) == 0)
                x = &r[j];
        }
        if (!first)
            put(w, ",", 1);
        first = false;
        put_cstr(w, name);
        put(w, ":{", 2);
        if (x->outcome != FO_OK) {
            puts_(w, "\"error\":");
            put_cstr(w, fo_outcome_name(x->outcome));
            put(w, ",", 1);
        }
        if (x->stage) {
            puts_(w, "\"stage\":");
            put_cstr(w, x->stage);
            put(w, ",", 1);
        }
        if (x->outcome != FO_OK && x->shape && x->shape->fallback)
            puts_(w, "\"fallback\":true,");
        if (x->ops_skipped)
            puts_(w, "\"ops\":\"skipped\",");
        if (x->status != 0) {
            puts_(w, "\"status\":");
            put_int(w, x->status);
            put(w, ",", 1);
        }
        puts_(w, "\"ms\":");
        put_ms(w, x->ms);
        if (x->start_us && x->start_ms >= 0) {
            puts_(w, ",\"start_ms\":");
            put_int(w, x->start_ms);
        }
        if (x->gathered) {
            puts_(w, ",\"items_failed\":");
            put_int(w, x->items_failed);
        }
        if (w->rc == 0)
            w->rc = fo_resil_put_report(w->b, x); /* Attempts, host, stale (resil.h). */
        put(w, "}", 1);
    }
    puts_(w, "}}");
}

/* One object: the calls' entries, clashes resolved, without a report. */
static int write_object(struct fo_buf *out, const struct fo_call *r, size_t n, const char *group,
                        bool reserve_report)
{
    struct entries es;
    struct writer w = {.b = out, .rc = 0};

    es.v = es.small;
    es.n = 0;
    es.cap = INLINE_ENTRIES;
    es.groups = NULL;
    es.ngroups = 0;
    fo_buf_init(&es.scratch, FO_BUF_UNLIMITED);

    w.rc = collect(&es, r, n, group);
    if (w.rc == 0)
        w.rc = find_clashes(&es, reserve_report);
    if (w.rc < 0)
        goto out;

    /* A lower bound of the output (escaping only grows it): one reserve for
     * the common case, and an early -E2BIG when even that does not fit. */
    size_t need = 2; /* "{}", then per key: quotes, colon, comma but the last. */
    for (size_t i = 0, kept = 0; i < es.n; i++) {
        if (!es.v[i].dup)
            need += es.v[i].klen + es.v[i].val.len + (kept++ ? 4 : 3);
    }
    w.rc = fo_buf_reserve(out, need);

    put(&w, "{", 1);
    bool first = true;
    for (size_t i = 0; i < es.n; i++) {
        const struct entry *e = &es.v[i];
        if (e->dup)
            continue;
        if (!first)
            put(&w, ",", 1);
        first = false;
        put_str(&w, e->key, e->klen);
        put(&w, ":", 1);
        if (e->val.len)
            put(&w, e->val.p, e->val.len);
        else
            put(&w, "null", 4); /* Not a value: keep the document valid. */
    }
    put(&w, "}", 1);
out:
    if (es.v != es.small)
        free(es.v);
    for (size_t i = 0; i < es.ngroups; i++)
        fo_buf_free(&es.groups[i]);
    free(es.groups);
    fo_buf_free(&es.scratch);
    return w.rc;
}

int fo_merge_body(struct fo_buf *out, const struct fo_call *r, size_t n, bool reserve_report)
{
    return write_object(out, r, n, NULL, reserve_report);
}

int fo_merge_append_report(struct fo_buf *out, const struct fo_call *r, size_t n,
                           const struct fo_report *report)
{
    struct writer w = {.b = out, .rc = 0};
    if (out->len < 2 || out->data[out->len - 1] != '}')
        return -EINVAL;
    out->len--; /* The closing brace comes back after the report. */
    if (out->data[out->len - 1] != '{')
        put(&w, ",", 1);
    write_report(&w, r, n, report);
    put(&w, "}", 1);
    return w.rc;
}

int fo_merge_write(struct fo_buf *out, const struct fo_call *r, size_t n,
                   const struct fo_report *report)
{
    size_t start = out->len;
    int rc = write_object(out, r, n, NULL, report != NULL);
    if (rc == 0 && report && out->len - start >= 2)
        rc = fo_merge_append_report(out, r, n, report);
    return rc;
}

int fo_merge_error(struct fo_buf *out, const char *code, const char *message, const char *backend,
                   const struct fo_call *r, size_t n, const struct fo_report *report)
{
    return fo_merge_error_status(out, code, message, backend, 0, r, n, report);
}

int fo_merge_error_status(struct fo_buf *out, const char *code, const char *message,
                          const char *backend, int status, const struct fo_call *r, size_t n,
                          const struct fo_report *report)
{
    struct writer w = {.b = out, .rc = 0};

    puts_(&w, "{\"error\":{\"code\":");
    put_cstr(&w, code);
    puts_(&w, ",\"message\":");
    put_cstr(&w, message);
    if (backend) {
        puts_(&w, ",\"backend\":");
        put_cstr(&w, backend);
    }
    if (status) {
        puts_(&w, ",\"status\":");
        put_int(&w, status);
    }
    put(&w, "}", 1);
    if (report) {
        put(&w, ",", 1);
        write_report(&w, r, n, report);
    }
    put(&w, "}", 1);
    return w.rc;
}
