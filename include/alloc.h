/* alloc.h -- allocation for small control structures: it succeeds or the process ends.
 *
 * House rule (STYLE.md, 10): memory for control structures is allocated or
 * the process aborts with a message, as h2o and Redis do; data from the
 * network goes into capped buffers that fail with -E2BIG instead. This is
 * the one place that message is written, so library modules never print.
 * Threads: thread-safe. */
#ifndef FO_ALLOC_H
#define FO_ALLOC_H

#include <stddef.h>

/* calloc(1, n), realloc and strdup that never return NULL. */
void *fo_xcalloc(size_t n);
void *fo_xrealloc(void *p, size_t n);
char *fo_xstrdup(const char *s);

/* The process cannot go on (out of memory, a broken invariant): write
 * "fanout: <what>" to stderr and abort. */
void fo_panic(const char *what) __attribute__((noreturn));

#endif /* FO_ALLOC_H */
