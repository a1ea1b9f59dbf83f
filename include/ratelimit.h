/* ratelimit.h -- token buckets: one for everything, or one per client key in a bounded table.
 *
 * A bucket holds at most 'burst' tokens and gains 'rps' per second; a request takes one or
 * is refused, and is told how long until the next token (for Retry-After). The keyed form
 * keeps one bucket per key (client address, a header's value) in 16 shards, each an LRU map
 * (lru.h) of at most max_clients/16 buckets under its own mutex: a flood of distinct keys
 * evicts the least recently seen, so memory stays bounded and an evicted client comes back
 * with a full bucket. Keys longer than FO_RATE_KEY_MAX bytes are cut there.
 * Ownership: fo_ratelimit_create / fo_ratelimit_destroy.
 * Threads: fo_ratelimit_take and fo_ratelimit_clients are thread-safe (the single bucket
 * has one small mutex, the keyed table one per shard); no global lock. */
#ifndef FO_RATELIMIT_H
#define FO_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A token bucket; pure arithmetic, no lock (the caller's). */
struct fo_tbucket {
    double tokens;   /* Tokens now (at last_us). */
    int64_t last_us; /* When 'tokens' was brought up to date. */
};

/* Full at 'now_us'. */
void fo_tbucket_init(struct fo_tbucket *b, int64_t burst, int64_t now_us);

/* Take one token at 'now_us'. Returns true, or false and sets *wait_us to the time until
 * one is there. */
bool fo_tbucket_take(struct fo_tbucket *b, int64_t rps, int64_t burst, int64_t now_us,
                     int64_t *wait_us);

/* Longest key kept, in bytes. */
#define FO_RATE_KEY_MAX 256

struct fo_ratelimit; /* Opaque. */

/* A limiter of 'rps' and 'burst' (0 = rps), keyed when 'keyed' with at most 'max_clients'
 * buckets. Aborts when out of memory. */
struct fo_ratelimit *fo_ratelimit_create(int64_t rps, int64_t burst, bool keyed,
                                         size_t max_clients);

/* NULL is a no-op. */
void fo_ratelimit_destroy(struct fo_ratelimit *rl);

/* One request of client 'key' (klen bytes; ignored unless keyed; an empty key is one shared
 * bucket) at 'now_us'. Returns true when admitted; else false and *wait_us as above. */
bool fo_ratelimit_take(struct fo_ratelimit *rl, const char *key, size_t klen, int64_t now_us,
                       int64_t *wait_us);

/* Buckets held now (1 when not keyed). */
size_t fo_ratelimit_clients(struct fo_ratelimit *rl);

#endif /* FO_RATELIMIT_H */
