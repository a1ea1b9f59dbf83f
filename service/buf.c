/* buf.c -- growable byte buffer with a hard limit. See buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

void fo_buf_init(struct fo_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int fo_buf_reserve(struct fo_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra || b->len + extra >= SIZE_MAX - 1)
        return -E2BIG;
    size_t need = b->len + extra + 1; /* Room for the NUL. */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* Never allocate far past what the limit can use. */
    if (b->max != FO_BUF_UNLIMITED && cap > b->max + 1)
        cap = b->max + 1 > need ? b->max + 1 : need;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fo_buf_presize(struct fo_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra || b->len + extra >= SIZE_MAX - 1)
        return -E2BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    char *p = realloc(b->data, need);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = need;
    return 0;
}

int fo_buf_append(struct fo_buf *b, const void *p, size_t n)
{
    int rc = fo_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fo_buf_puts(struct fo_buf *b, const char *s)
{
    return fo_buf_append(b, s, strlen(s));
}

int fo_buf_putc(struct fo_buf *b, char c)
{
    if (b->len + 1 < b->cap && b->len < b->max) { /* Fast path: room already. */
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return fo_buf_append(b, &c, 1);
}

int fo_buf_put_int(struct fo_buf *b, int64_t v)
{
    char t[FO_FMT_MAX];
    return fo_buf_append(b, t, fo_fmt_i64(t, v));
}

int fo_buf_put_ms(struct fo_buf *b, double ms)
{
    char t[FO_FMT_MAX];
    size_t n = fo_fmt_ms(t, ms);
    if (n == 0) /* 1e15 ms and over: whole digits, no decimal point to localise. */
        return fo_buf_printf(b, "%.0f.0", ms);
    return fo_buf_append(b, t, n);
}

int fo_buf_vprintf(struct fo_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return fo_buf_append(b, small, (size_t)n);
    int rc = fo_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fo_buf_printf(struct fo_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fo_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void fo_buf_reset(struct fo_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *fo_buf_release(struct fo_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void fo_buf_free(struct fo_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
