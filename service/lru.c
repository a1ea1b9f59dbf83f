/* lru.c -- a bounded map with least-recently-used eviction (see lru.h).
 *
 * Chained hash slots that double when the map holds more nodes than slots (never past the
 * next power of two above max_entries), and one doubly linked recency list. Every operation
 * is O(1) on average; eviction takes the tail. */
#include "lru.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"

void fo_lru_init(struct fo_lru *l, size_t max_entries, size_t max_bytes,
                 void (*evict)(struct fo_lru_node *node))
{
    memset(l, 0, sizeof *l);
    l->max_entries = max_entries ? max_entries : 1;
    l->max_bytes = max_bytes;
    l->evict = evict;
    l->nslots = 16;
    l->slots = fo_xcalloc(l->nslots * sizeof *l->slots);
    if (getrandom(&l->seed, sizeof l->seed, GRND_NONBLOCK) != sizeof l->seed)
        l->seed = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ull;
}

uint64_t fo_lru_hash(const struct fo_lru *l, const char *key, size_t klen)
{
    uint64_t h = 14695981039346656037ull ^ l->seed;
    for (size_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29; /* FNV's low bits are weak; the slot index takes them. */
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static void unlink_list(struct fo_lru *l, struct fo_lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void push_front(struct fo_lru *l, struct fo_lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

void fo_lru_remove(struct fo_lru *l, struct fo_lru_node *node)
{
    struct fo_lru_node **p = &l->slots[node->hash & (l->nslots - 1)];
    while (*p && *p != node)
        p = &(*p)->hnext;
    if (*p)
        *p = node->hnext;
    node->hnext = NULL;
    unlink_list(l, node);
    l->n--;
    l->bytes -= node->bytes;
}

void fo_lru_clear(struct fo_lru *l)
{
    while (l->tail) {
        struct fo_lru_node *n = l->tail;
        fo_lru_remove(l, n);
        l->evict(n);
    }
    free(l->slots);
    l->slots = NULL;
    l->nslots = 0;
}

struct fo_lru_node *fo_lru_get(struct fo_lru *l, const char *key, size_t klen)
{
    uint64_t h = fo_lru_hash(l, key, klen);
    struct fo_lru_node *n = l->slots[h & (l->nslots - 1)];
    while (n && !(n->hash == h && n->klen == klen && memcmp(n->key, key, klen) == 0))
        n = n->hnext;
    if (n && n != l->head) {
        unlink_list(l, n);
        push_front(l, n);
    }
    return n;
}

static void grow(struct fo_lru *l)
{
    size_t ns = l->nslots * 2;
    struct fo_lru_node **slots = fo_xcalloc(ns * sizeof *slots);
    for (size_t i = 0; i < l->nslots; i++) {
        struct fo_lru_node *n = l->slots[i];
        while (n) {
            struct fo_lru_node *next = n->hnext;
            n->hnext = slots[n->hash & (ns - 1)];
            slots[n->hash & (ns - 1)] = n;
            n = next;
        }
    }
    free(l->slots);
    l->slots = slots;
    l->nslots = ns;
}

int fo_lru_put(struct fo_lru *l, struct fo_lru_node *node)
{
    node->hash = fo_lru_hash(l, node->key, node->klen);
    if (l->n >= l->nslots && l->nslots < l->max_entries)
        grow(l);
    struct fo_lru_node **slot = &l->slots[node->hash & (l->nslots - 1)];
    node->hnext = *slot;
    *slot = node;
    push_front(l, node);
    l->n++;
    l->bytes += node->bytes;
    while (l->tail != node &&
           (l->n > l->max_entries || (l->max_bytes && l->bytes > l->max_bytes))) {
        struct fo_lru_node *t = l->tail;
        fo_lru_remove(l, t);
        l->evict(t);
    }
    if (l->max_bytes && l->bytes > l->max_bytes) { /* 'node' alone is too big. */
        fo_lru_remove(l, node);
        l->evict(node);
        return -E2BIG;
    }
    return 0;
}
