/* depval.c -- a dependency's value as a placeholder places it (see depval.h). Works on the
 * raw validated bytes with json.h's iterators: no tree, and numbers keep their text. */
#include "depval.h"

#include <errno.h>
#include <string.h>

/* The raw key literal 'key' decodes to segment g's text. */
static bool key_is(struct fo_json_span key, const struct fo_jseg *g)
{
    const char *in = key.p + 1;
    size_t n = key.len - 2;
    if (!memchr(in, '\\', n))
        return n == g->len && memcmp(in, g->s, n) == 0;
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    bool eq =
        fo_json_unescape(key, &b) == 0 && b.len == g->len && memcmp(b.data, g->s, g->len) == 0;
    fo_buf_free(&b);
    return eq;
}

/* One step of a path: the member or element segment 'g' names in container 'v'. */
static int step(struct fo_json_span v, const struct fo_jseg *g, struct fo_json_span *out)
{
    struct fo_json_iter it;
    struct fo_json_span key, val;
    enum fo_json_kind k = fo_json_kind(v);
    if (k == FO_JSON_ARRAY && g->index >= 0) {
        fo_json_iter_array(&it, v);
        for (long i = 0; fo_json_next_element(&it, &val); i++) {
            if (i == g->index) {
                *out = val;
                return 0;
            }
        }
        return -ENOENT;
    }
    if (k != FO_JSON_OBJECT)
        return -ENOENT;
    fo_json_iter_object(&it, v);
    bool found = false;
    while (fo_json_next_member(&it, &key, &val)) {
        /* Keys are compared decoded; the last of duplicate keys wins, as in a parser. */
        if (key_is(key, g)) {
            *out = val;
            found = true;
        }
    }
    return found ? 0 : -ENOENT;
}

static int walk(struct fo_json_span v, const struct fo_jpath *p, size_t from, size_t to,
                struct fo_json_span *out)
{
    for (size_t i = from; i < to; i++) {
        if (p->seg[i].any)
            return -EINVAL;
        if (step(v, &p->seg[i], &v) < 0)
            return -ENOENT;
    }
    *out = v;
    return 0;
}

int fo_depval_find(struct fo_json_span v, const struct fo_jpath *p, struct fo_json_span *out)
{
    return walk(v, p, 0, p->n, out);
}

int fo_depval_text(struct fo_json_span v, struct fo_buf *out)
{
    switch (fo_json_kind(v)) {
    case FO_JSON_STRING:
        return fo_json_unescape(v, out);
    case FO_JSON_NUMBER:
    case FO_JSON_TRUE:
    case FO_JSON_FALSE:
        return fo_buf_append(out, v.p, v.len);
    case FO_JSON_ARRAY: {
        struct fo_json_iter it;
        struct fo_json_span el;
        fo_json_iter_array(&it, v);
        size_t start = out->len;
        for (bool first = true; fo_json_next_element(&it, &el); first = false) {
            enum fo_json_kind k = fo_json_kind(el);
            int rc = 0;
            if (k == FO_JSON_OBJECT || k == FO_JSON_ARRAY || k == FO_JSON_NULL)
                rc = -ENOENT;
            if (rc == 0 && !first)
                rc = fo_buf_putc(out, ',');
            if (rc == 0)
                rc = fo_depval_text(el, out);
            if (rc < 0) {
                out->len = start;
                return rc;
            }
        }
        return 0;
    }
    default:
        return -ENOENT;
    }
}

long fo_depval_each(struct fo_json_span v, const struct fo_jpath *p, struct fo_json_span *out,
                    size_t max)
{
    size_t star = 0;
    while (star < p->n && !p->seg[star].any)
        star++;
    struct fo_json_span c;
    if (star == p->n || walk(v, p, 0, star, &c) < 0)
        return -ENOENT;
    enum fo_json_kind k = fo_json_kind(c);
    if (k != FO_JSON_ARRAY && k != FO_JSON_OBJECT)
        return -ENOENT;
    struct fo_json_iter it;
    struct fo_json_span key, el;
    long n = 0;
    if (k == FO_JSON_ARRAY)
        fo_json_iter_array(&it, c);
    else
        fo_json_iter_object(&it, c);
    while (k == FO_JSON_ARRAY ? fo_json_next_element(&it, &el)
                              : fo_json_next_member(&it, &key, &el)) {
        if ((size_t)n < max) {
            struct fo_json_span at = {0};
            if (walk(el, p, star + 1, p->n, &at) < 0)
                at = (struct fo_json_span){0};
            out[n] = at;
        }
        n++;
    }
    return n;
}
