/* lru.h -- a bounded map from byte-string keys to nodes, least recently used dropped first.
 *
 * The per-client rate-limit buckets and the stale values both need a table that a flood of
 * distinct keys cannot grow: at most 'max_entries' nodes and 'max_bytes' bytes (as each node
 * declares). Nodes are intrusive: the owner embeds a struct fo_lru_node first in its own
 * allocation; the map links them, and hands an evicted node to 'evict' (which frees it).
 * Keys are compared whole (length and bytes); the hash is seeded per map.
 * Ownership: a node belongs to the map from fo_lru_put until it is evicted, removed or the map
 * cleared; its key memory is the owner's (inside the node's allocation).
 * Threads: none; the caller locks (one lock per map). */
#ifndef FO_LRU_H
#define FO_LRU_H

#include <stddef.h>
#include <stdint.h>

struct fo_lru_node {
    struct fo_lru_node *hnext;       /* Hash chain. */
    struct fo_lru_node *prev, *next; /* Recency list, most recent first. */
    uint64_t hash;
    const char *key; /* Owner's memory: klen bytes. */
    size_t klen;
    size_t bytes; /* What it counts against max_bytes (set before fo_lru_put). */
};

struct fo_lru {
    struct fo_lru_node **slots; /* From calloc(): nslots chains (a power of two). */
    size_t nslots;
    struct fo_lru_node *head, *tail;         /* Most and least recently used. */
    size_t n, bytes;                         /* Nodes and declared bytes held. */
    size_t max_entries, max_bytes;           /* Caps (max_bytes 0 = none). */
    uint64_t seed;                           /* Hash seed. */
    void (*evict)(struct fo_lru_node *node); /* Frees a node the map drops. */
};

/* An empty map with these caps (max_entries >= 1). Aborts when out of memory. */
void fo_lru_init(struct fo_lru *l, size_t max_entries, size_t max_bytes,
                 void (*evict)(struct fo_lru_node *node));

/* Evict every node and free the chains. */
void fo_lru_clear(struct fo_lru *l);

/* The hash of a key in this map (for a node about to be put). */
uint64_t fo_lru_hash(const struct fo_lru *l, const char *key, size_t klen);

/* The node with this key, made the most recent; NULL when absent. */
struct fo_lru_node *fo_lru_get(struct fo_lru *l, const char *key, size_t klen);

/* Insert 'node' (key, klen, bytes set; no node with its key in the map) as the most
 * recent, then evict the least recent while over a cap (never 'node' itself, unless it is
 * over max_bytes alone: then it is evicted too and the call returns -E2BIG). Returns 0. */
int fo_lru_put(struct fo_lru *l, struct fo_lru_node *node);

/* Take 'node' out without evicting it (the caller frees it). */
void fo_lru_remove(struct fo_lru *l, struct fo_lru_node *node);

#endif /* FO_LRU_H */
