/* ratelimit.c -- token buckets, single or per client key (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lru.h"

void fo_tbucket_init(struct fo_tbucket *b, int64_t burst, int64_t now_us)
{
    b->tokens = (double)burst;
    b->last_us = now_us;
}

bool fo_tbucket_take(struct fo_tbucket *b, int64_t rps, int64_t burst, int64_t now_us,
                     int64_t *wait_us)
{
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * (double)rps / 1e6;
        if (b->tokens > (double)burst)
            b->tokens = (double)burst;
        b->last_us = now_us;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    double us = (1.0 - b->tokens) * 1e6 / (double)rps;
    *wait_us = (int64_t)us + 1;
    return false;
}

#define SHARDS 16

struct client {
    struct fo_lru_node node; /* First: the map's handle. */
    struct fo_tbucket bucket;
    char key[]; /* node.klen bytes. */
};

struct shard {
    pthread_mutex_t lock;
    struct fo_lru map; /* struct client nodes; 'lock'. */
};

struct fo_ratelimit {
    int64_t rps, burst;
    bool keyed;
    pthread_mutex_t lock;  /* Not keyed: guards 'one'. */
    struct fo_tbucket one; /* Not keyed: the bucket. */
    struct shard *shards;  /* Keyed: SHARDS of them, from calloc(). */
};

static void free_client(struct fo_lru_node *n)
{
    free(n);
}

struct fo_ratelimit *fo_ratelimit_create(int64_t rps, int64_t burst, bool keyed, size_t max_clients)
{
    struct fo_ratelimit *rl = fo_xcalloc(sizeof *rl);
    rl->rps = rps > 0 ? rps : 1;
    rl->burst = burst > 0 ? burst : rl->rps;
    rl->keyed = keyed;
    pthread_mutex_init(&rl->lock, NULL);
    fo_tbucket_init(&rl->one, rl->burst, 0);
    rl->one.last_us = INT64_MIN; /* Full whenever first used. */
    if (keyed) {
        size_t per = max_clients / SHARDS > 0 ? max_clients / SHARDS : 1;
        rl->shards = fo_xcalloc(SHARDS * sizeof *rl->shards);
        for (size_t i = 0; i < SHARDS; i++) {
            pthread_mutex_init(&rl->shards[i].lock, NULL);
            fo_lru_init(&rl->shards[i].map, per, 0, free_client);
        }
    }
    return rl;
}

void fo_ratelimit_destroy(struct fo_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; rl->shards && i < SHARDS; i++) {
        fo_lru_clear(&rl->shards[i].map);
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl->shards);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

bool fo_ratelimit_take(struct fo_ratelimit *rl, const char *key, size_t klen, int64_t now_us,
                       int64_t *wait_us)
{
    bool ok;
    if (!rl->keyed) {
        pthread_mutex_lock(&rl->lock);
        if (rl->one.last_us == INT64_MIN)
            fo_tbucket_init(&rl->one, rl->burst, now_us);
        ok = fo_tbucket_take(&rl->one, rl->rps, rl->burst, now_us, wait_us);
        pthread_mutex_unlock(&rl->lock);
        return ok;
    }
    if (klen > FO_RATE_KEY_MAX)
        klen = FO_RATE_KEY_MAX;
    /* The shard from a hash of its own, so one shard's map seed does not pick it. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    struct shard *s = &rl->shards[(h >> 32) % SHARDS];
    pthread_mutex_lock(&s->lock);
    struct client *c = (struct client *)fo_lru_get(&s->map, key, klen);
    if (!c) {
        c = fo_xcalloc(sizeof *c + klen + 1);
        memcpy(c->key, key, klen);
        c->node.key = c->key;
        c->node.klen = klen;
        c->node.bytes = sizeof *c + klen;
        fo_tbucket_init(&c->bucket, rl->burst, now_us);
        fo_lru_put(&s->map, &c->node); /* No byte cap: never -E2BIG. */
    }
    ok = fo_tbucket_take(&c->bucket, rl->rps, rl->burst, now_us, wait_us);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

size_t fo_ratelimit_clients(struct fo_ratelimit *rl)
{
    if (!rl->keyed)
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&rl->shards[i].lock);
        n += rl->shards[i].map.n;
        pthread_mutex_unlock(&rl->shards[i].lock);
    }
    return n;
}
