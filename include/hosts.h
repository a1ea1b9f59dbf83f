/* hosts.h -- many origins for one backend: round robin and the URL of an attempt.
 *
 * A backend with "hosts" sends each attempt to one origin: the call's URL with its scheme
 * and authority replaced (its path and query stay). The choice is round robin over one
 * counter per backend, deterministic from index 0, skipping what the caller refuses (an
 * open breaker, a host this call has tried when an untried one is left).
 * Threads: fo_hosts_pick is lock-free (one relaxed atomic add); the rest is pure. */
#ifndef FO_HOSTS_H
#define FO_HOSTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The URL of 'url' (absolute http(s)) sent to 'origin' ("scheme://host[:port]"), from
 * malloc(); NULL when out of memory. */
char *fo_hosts_url(const char *origin, const char *url);

/* Take the next index from the round-robin counter 'rr' over 'n' hosts, skipping those for
 * which ok(arg, i) is false: the first that passes, looking at most n places on. Returns
 * the index, or -1 when none passes. */
int fo_hosts_pick(atomic_uint *rr, size_t n, bool (*ok)(void *arg, size_t i), void *arg);

#endif /* FO_HOSTS_H */
