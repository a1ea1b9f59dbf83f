/* alloc.c -- allocation that succeeds or ends the process (see alloc.h). */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fo_panic(const char *what)
{
    fprintf(stderr, "fanout: %s\n", what);
    abort();
}

void *fo_xcalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        fo_panic("out of memory");
    return p;
}

void *fo_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        fo_panic("out of memory");
    return q;
}

char *fo_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        fo_panic("out of memory");
    return p;
}
