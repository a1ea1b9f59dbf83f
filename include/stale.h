/* stale.h -- stale-on-error: the last good value of each URL of a backend, served when a
 * call fails.
 *
 * One cache per backend with stale_ms: an LRU map (lru.h) from the call's URL to a copy of
 * its last good JSON value and when it arrived, bounded by stale_max_entries and
 * stale_max_bytes (keys and values counted). A lookup serves a value at most stale_ms old;
 * an older one is dropped there and never served.
 * Ownership: fo_stale_create / fo_stale_destroy; a value handed out is a copy the caller
 * frees.
 * Threads: thread-safe; one small mutex per cache. */
#ifndef FO_STALE_H
#define FO_STALE_H

#include <stddef.h>
#include <stdint.h>

struct fo_stale; /* Opaque. */

/* Aborts when out of memory. */
struct fo_stale *fo_stale_create(size_t max_entries, size_t max_bytes);

/* NULL is a no-op. */
void fo_stale_destroy(struct fo_stale *s);

/* Keep 'value' (len bytes, copied) as the good value of 'url' at 'now_us'. A value that
 * does not fit max_bytes alone is not kept (and drops an older one). */
void fo_stale_put(struct fo_stale *s, const char *url, const char *value, size_t len,
                  int64_t now_us);

/* The value of 'url' if at most 'max_age_us' old: returns a malloc()ed copy (*len, *age_us
 * set), or NULL. An older value is dropped. */
char *fo_stale_get(struct fo_stale *s, const char *url, int64_t max_age_us, int64_t now_us,
                   size_t *len, int64_t *age_us);

/* Values and bytes held now. */
void fo_stale_usage(struct fo_stale *s, size_t *entries, size_t *bytes);

#endif /* FO_STALE_H */
