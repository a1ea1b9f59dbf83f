/* jpath.c -- compiling the shared path syntax (see jpath.h). */
#include "jpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest index a decimal segment may name: bodies are capped far below. */
#define MAX_INDEX 1000000000L

static long decimal(const char *s, size_t n)
{
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= MAX_INDEX ? v : -1;
}

int fo_jpath_compile(struct fo_jpath *p, const char *s, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!s[0]) {
        snprintf(err, errlen, "must not be empty");
        return -EINVAL;
    }
    size_t total = strlen(s);
    const char *seg = s;
    for (;;) {
        const char *dot = memchr(seg, '.', total - (size_t)(seg - s));
        size_t len = dot ? (size_t)(dot - seg) : total - (size_t)(seg - s);
        if (len == 0) {
            snprintf(err, errlen, "has an empty segment (at offset %zu)", (size_t)(seg - s));
            return -EINVAL;
        }
        if (p->n == FO_JPATH_MAX) {
            snprintf(err, errlen, "has more than %d segments", FO_JPATH_MAX);
            return -EINVAL;
        }
        bool any = len == 1 && seg[0] == '*';
        if (!any && memchr(seg, '*', len)) {
            snprintf(err, errlen, "segment %zu: \"*\" must be a whole segment", p->n + 1);
            return -EINVAL;
        }
        struct fo_jseg *g = &p->seg[p->n++];
        g->s = (const char *)(seg - s); /* An offset until the copy exists. */
        g->len = len;
        g->any = any;
        g->index = any ? -1 : decimal(seg, len);
        p->nany += any;
        if (!dot)
            break;
        seg = dot + 1;
    }
    p->text = strdup(s);
    if (!p->text) {
        p->n = 0;
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->n; i++)
        p->seg[i].s = p->text + (size_t)p->seg[i].s;
    return 0;
}

void fo_jpath_free(struct fo_jpath *p)
{
    free(p->text);
    p->text = NULL;
    p->n = 0;
}
