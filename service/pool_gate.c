/* pool_gate.c -- max_host_connections: per worker and backend host, at most N transfers in
 * the curl multi at once, the rest waiting first come, first served (pool_gate.h).
 *
 * Why not CURLMOPT_MAX_HOST_CONNECTIONS: with libcurl 7.88 a transfer over the cap goes to
 * curl's pending list, and every time a connection comes free one pending transfer is
 * retried -- a new connection struct, its URL parsed again, the host's connection list
 * walked -- while a transfer added since may take the free connection first, so the
 * longest waiting can wait past its deadline. Measured at width 64 (wrk -c64, 64 calls per
 * request to one nginx): with curl's cap of 64 about 10% of the calls timed out on a busy
 * machine, against 1.6% without a cap. Here a waiting transfer costs nothing until its turn
 * and turns come in order. The cap also keeps curl's connection cache small, which matters
 * because curl walks it (all of it, on every curl_multi_remove_handle of a transfer whose
 * connection went back to the cache) per transfer.
 *
 * DESIGN: a chained hash table from the URL's scheme://authority to a host: its slots in use,
 * its queue (doubly linked through the transfers' gate_* fields) and a place on the list of
 * hosts that have both a free slot and a queue ("ready"). Idle hosts stay in the table for
 * reuse; past HOSTS_MAX of them the idle ones are dropped.
 * Threads: the owning worker thread only. */
#include "pool_gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "transfer.h"

#define HOSTS_MAX 1024 /* Hosts kept before the idle ones are dropped. */

struct host {
    char *key;            /* From malloc(): scheme://authority, NUL-terminated. */
    size_t klen;          /* strlen(key). */
    uint64_t hash;        /* Of key. */
    unsigned live;        /* Transfers holding a slot. */
    struct fo_xfer *head; /* Waiting, oldest first (gate_next / gate_prev). */
    struct fo_xfer *tail; /* Newest waiting. */
    bool ready;           /* On the gate's ready list. */
    struct host *chain;   /* Next in the bucket. */
    struct host *rnext;   /* Next on the ready list. */
};

struct fo_gate {
    unsigned per_host;    /* Slots per host; 0 = no gate. */
    struct host **bucket; /* From calloc(): nbuckets chains. */
    size_t nbuckets;      /* A power of two. */
    size_t nhosts;        /* Hosts in the table. */
    struct host *ready;   /* Hosts with a free slot and a queue (FIFO through rnext). */
    struct host *ready_tail;
};

struct fo_gate *fo_gate_new(unsigned per_host)
{
    struct fo_gate *g = fo_xcalloc(sizeof *g);
    g->per_host = per_host;
    g->nbuckets = 64;
    g->bucket = fo_xcalloc(g->nbuckets * sizeof *g->bucket);
    return g;
}

static void host_free(struct host *h)
{
    free(h->key);
    free(h);
}

void fo_gate_free(struct fo_gate *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nbuckets; i++) {
        struct host *h = g->bucket[i];
        while (h) {
            struct host *next = h->chain;
            host_free(h);
            h = next;
        }
    }
    free(g->bucket);
    free(g);
}

/* The length of url's scheme://authority (the whole URL when it has no path). */
static size_t key_len(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p += strcspn(p, "/?#");
    return (size_t)(p - url);
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* Drop the hosts with no slot in use, no queue and no place on the ready list (the table has
 * grown past HOSTS_MAX). */
static void drop_idle(struct fo_gate *g)
{
    for (size_t i = 0; i < g->nbuckets; i++) {
        struct host **pp = &g->bucket[i];
        while (*pp) {
            struct host *h = *pp;
            if (h->live == 0 && !h->head && !h->ready) {
                *pp = h->chain;
                host_free(h);
                g->nhosts--;
            } else {
                pp = &h->chain;
            }
        }
    }
}

static void grow(struct fo_gate *g)
{
    size_t n = g->nbuckets * 2;
    struct host **b = fo_xcalloc(n * sizeof *b);
    for (size_t i = 0; i < g->nbuckets; i++) {
        struct host *h = g->bucket[i];
        while (h) {
            struct host *next = h->chain;
            h->chain = b[h->hash & (n - 1)];
            b[h->hash & (n - 1)] = h;
            h = next;
        }
    }
    free(g->bucket);
    g->bucket = b;
    g->nbuckets = n;
}

static struct host *lookup(struct fo_gate *g, const char *url)
{
    size_t n = key_len(url);
    uint64_t hv = hash(url, n);
    for (struct host *h = g->bucket[hv & (g->nbuckets - 1)]; h; h = h->chain) {
        if (h->hash == hv && h->klen == n && memcmp(h->key, url, n) == 0)
            return h;
    }
    if (g->nhosts >= HOSTS_MAX)
        drop_idle(g);
    if (g->nhosts >= 2 * g->nbuckets)
        grow(g);
    struct host *h = fo_xcalloc(sizeof *h);
    h->key = fo_xcalloc(n + 1);
    memcpy(h->key, url, n);
    h->key[n] = '\0';
    h->klen = n;
    h->hash = hv;
    h->chain = g->bucket[hv & (g->nbuckets - 1)];
    g->bucket[hv & (g->nbuckets - 1)] = h;
    g->nhosts++;
    return h;
}

bool fo_gate_enter(struct fo_gate *g, struct fo_xfer *x, const char *url)
{
    x->gate_host = NULL;
    x->gate_waiting = false;
    if (g->per_host == 0)
        return true;
    struct host *h = lookup(g, url);
    x->gate_host = h;
    if (h->live < g->per_host && !h->head) {
        h->live++;
        return true;
    }
    x->gate_waiting = true;
    x->gate_next = NULL;
    x->gate_prev = h->tail;
    if (h->tail)
        h->tail->gate_next = x;
    else
        h->head = x;
    h->tail = x;
    return false;
}

static void make_ready(struct fo_gate *g, struct host *h)
{
    if (h->ready || !h->head || h->live >= g->per_host)
        return;
    h->ready = true;
    h->rnext = NULL;
    if (g->ready_tail)
        g->ready_tail->rnext = h;
    else
        g->ready = h;
    g->ready_tail = h;
}

void fo_gate_leave(struct fo_gate *g, struct fo_xfer *x)
{
    struct host *h = x->gate_host;
    if (!h)
        return;
    x->gate_host = NULL;
    if (x->gate_waiting) {
        x->gate_waiting = false;
        if (x->gate_prev)
            x->gate_prev->gate_next = x->gate_next;
        else
            h->head = x->gate_next;
        if (x->gate_next)
            x->gate_next->gate_prev = x->gate_prev;
        else
            h->tail = x->gate_prev;
        return;
    }
    h->live--;
    make_ready(g, h);
}

bool fo_gate_waiting(const struct fo_xfer *x)
{
    return x->gate_waiting;
}

struct fo_xfer *fo_gate_next(struct fo_gate *g)
{
    for (;;) {
        struct host *h = g->ready;
        if (!h)
            return NULL;
        if (!h->head || h->live >= g->per_host) { /* Its queue left, or its slots filled. */
            g->ready = h->rnext;
            if (!g->ready)
                g->ready_tail = NULL;
            h->ready = false;
            continue;
        }
        struct fo_xfer *x = h->head;
        h->head = x->gate_next;
        if (h->head)
            h->head->gate_prev = NULL;
        else
            h->tail = NULL;
        x->gate_waiting = false;
        h->live++;
        return x;
    }
}
