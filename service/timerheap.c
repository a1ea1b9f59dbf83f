/* timerheap.c -- a min-heap of deadlines (see timerheap.h). */
#include "timerheap.h"

#include <stdlib.h>

#include "alloc.h"

static void set(struct fo_timerheap *h, size_t i, struct fo_timer *t)
{
    h->v[i] = t;
    t->index = i;
}

static void up(struct fo_timerheap *h, size_t i)
{
    struct fo_timer *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->due <= t->due)
            break;
        set(h, i, h->v[p]);
        i = p;
    }
    set(h, i, t);
}

static void down(struct fo_timerheap *h, size_t i)
{
    struct fo_timer *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->due < h->v[c]->due)
            c++;
        if (h->v[c]->due >= t->due)
            break;
        set(h, i, h->v[c]);
        i = c;
    }
    set(h, i, t);
}

void fo_timerheap_push(struct fo_timerheap *h, struct fo_timer *t)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = fo_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n] = t;
    t->index = h->n++;
    up(h, t->index);
}

void fo_timerheap_remove(struct fo_timerheap *h, struct fo_timer *t)
{
    size_t i = t->index;
    if (i == FO_TIMER_NONE)
        return;
    t->index = FO_TIMER_NONE;
    struct fo_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    set(h, i, last);
    up(h, i);
    down(h, last->index);
}

void fo_timerheap_free(struct fo_timerheap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
