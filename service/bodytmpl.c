/* bodytmpl.c -- a JSON request body with placeholders in its strings (see bodytmpl.h).
 *
 * Compiling walks the validated text once: every string literal that holds a '{' once
 * decoded is compiled as a text template; the bytes between such strings are kept as
 * literal pieces. */
#include "bodytmpl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bpiece {
    size_t off, len;     /* Literal: bytes of 'src'. */
    struct fo_tmpl *str; /* Or a string's template (it replaces the literal with quotes). */
    bool whole;          /* The string is exactly one placeholder. */
    unsigned slot;       /* ... that one. */
};

struct fo_body_tmpl {
    char *src;
    size_t len;
    struct bpiece *p;
    size_t n;
    bool dynamic;
};

static int add(struct fo_body_tmpl *t, struct bpiece pc)
{
    struct bpiece *p = realloc(t->p, (t->n + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    t->p = p;
    p[t->n++] = pc;
    return 0;
}

/* The end of the string literal that starts at s (its opening quote). */
static const char *string_end(const char *s, const char *end)
{
    for (const char *c = s + 1; c < end; c++) {
        if (*c == '\\')
            c++;
        else if (*c == '"')
            return c + 1;
    }
    return end;
}

int fo_body_compile(struct fo_body_tmpl **out, const char *json, size_t len,
                    struct fo_tmpl_scope *scope, char *err, size_t errlen)
{
    *out = NULL;
    struct fo_body_tmpl *t = calloc(1, sizeof *t);
    if (!t || !(t->src = malloc(len + 1))) {
        free(t);
        return -ENOMEM;
    }
    memcpy(t->src, json, len);
    t->src[len] = '\0';
    t->len = len;
    const char *end = t->src + len, *lit = t->src;
    int rc = 0;
    for (const char *c = t->src; rc == 0 && c < end; c++) {
        if (*c != '"')
            continue;
        const char *e = string_end(c, end);
        struct fo_json_span lit_s = {c, (size_t)(e - c)};
        if (!memchr(c, '{', (size_t)(e - c))) {
            c = e - 1;
            continue;
        }
        struct fo_buf dec;
        fo_buf_init(&dec, FO_BUF_UNLIMITED);
        rc = fo_json_unescape(lit_s, &dec);
        if (rc == 0 && dec.data && memchr(dec.data, '\0', dec.len)) {
            snprintf(err, errlen, "a string with a placeholder cannot hold \\u0000");
            rc = -EINVAL;
        }
        struct fo_tmpl *st = NULL;
        if (rc == 0)
            rc = fo_tmpl_compile(&st, dec.data ? dec.data : "", FO_TMPL_TEXT, scope, err, errlen);
        fo_buf_free(&dec);
        if (rc == 0 && fo_tmpl_is_static(st)) { /* Braces only ("{{"): as written. */
            fo_tmpl_destroy(st);
            c = e - 1;
            continue;
        }
        if (rc == 0)
            rc = add(t, (struct bpiece){.off = (size_t)(lit - t->src), .len = (size_t)(c - lit)});
        if (rc == 0) {
            const char *text = fo_tmpl_text(st);
            size_t tl = strlen(text);
            unsigned slot = 0;
            bool one = tl > 2 && text[0] == '{' && text[tl - 1] == '}' &&
                       !memchr(text + 1, '{', tl - 2) && fo_tmpl_slots(st, &slot, 1) == 1;
            rc = add(t, (struct bpiece){.str = st, .whole = one, .slot = slot});
        }
        if (rc < 0)
            fo_tmpl_destroy(st);
        t->dynamic = true;
        lit = e;
        c = e - 1;
    }
    if (rc == 0)
        rc = add(t, (struct bpiece){.off = (size_t)(lit - t->src), .len = (size_t)(end - lit)});
    if (rc < 0) {
        fo_body_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

void fo_body_destroy(struct fo_body_tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        fo_tmpl_destroy(t->p[i].str);
    free(t->p);
    free(t->src);
    free(t);
}

const char *fo_body_text(const struct fo_body_tmpl *t, size_t *len)
{
    *len = t->len;
    return t->src;
}

bool fo_body_dynamic(const struct fo_body_tmpl *t)
{
    return t && t->dynamic;
}

size_t fo_body_slots(const struct fo_body_tmpl *t, unsigned *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; t && i < t->n; i++) {
        unsigned s[FO_TMPL_MAX_SLOTS];
        size_t k = t->p[i].str ? fo_tmpl_slots(t->p[i].str, s, FO_TMPL_MAX_SLOTS) : 0;
        for (size_t j = 0; j < k; j++) {
            bool seen = false;
            for (size_t m = 0; m < n && !seen; m++)
                seen = out[m] == s[j];
            if (!seen && n < max)
                out[n++] = s[j];
        }
    }
    return n;
}

int fo_body_expand(const struct fo_body_tmpl *t, const struct fo_tmpl_vals *vals,
                   const struct fo_json_span *json, struct fo_buf *out, size_t *slot)
{
    size_t start = out->len;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        const struct bpiece *pc = &t->p[i];
        if (!pc->str) {
            rc = fo_buf_append(out, t->src + pc->off, pc->len);
            continue;
        }
        if (pc->whole && json && json[pc->slot].p) {
            rc = fo_buf_append(out, json[pc->slot].p, json[pc->slot].len);
            continue;
        }
        struct fo_buf text;
        fo_buf_init(&text, FO_BUF_UNLIMITED);
        rc = fo_tmpl_expand(pc->str, vals, &text, slot);
        if (rc == 0)
            rc = fo_json_put_string(out, text.data ? text.data : "", text.len);
        fo_buf_free(&text);
    }
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
