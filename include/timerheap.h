/* timerheap.h -- a min-heap of deadlines, intrusive: the entries live in
 * their owners (a worker's jobs), which find themselves again by position.
 *
 * Ownership: the heap owns only its array of pointers; entries are
 * borrowed from insert to remove (or pop).
 * Threads: one thread per heap (a worker's). */
#ifndef FO_TIMERHEAP_H
#define FO_TIMERHEAP_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in whatever waits for a deadline. */
struct fo_timer {
    int64_t due;  /* The deadline (any clock, the same for every entry). */
    size_t index; /* Position in the heap, or FO_TIMER_NONE. */
};

#define FO_TIMER_NONE ((size_t)-1)

struct fo_timerheap {
    struct fo_timer **v; /* From realloc(): n entries, heap-ordered on 'due'. */
    size_t n, cap;
};

/* Insert 't' (not in a heap, t->due set). Aborts when out of memory. */
void fo_timerheap_push(struct fo_timerheap *h, struct fo_timer *t);

/* Take 't' out; a no-op when it is in no heap. */
void fo_timerheap_remove(struct fo_timerheap *h, struct fo_timer *t);

/* The entry with the earliest deadline, or NULL when empty. */
static inline struct fo_timer *fo_timerheap_top(const struct fo_timerheap *h)
{
    return h->n ? h->v[0] : NULL;
}

/* Free the array (the entries are not the heap's). */
void fo_timerheap_free(struct fo_timerheap *h);

#endif /* FO_TIMERHEAP_H */
