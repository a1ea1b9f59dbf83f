/* jwt_cache.c -- a bounded memo of verified tokens (see jwt_cache.h). */
#include "jwt_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

struct entry {
    unsigned char d[32]; /* SHA-256 of the token. */
    const void *key;     /* The key it verified with (borrowed; NULL: empty slot). */
};

struct fo_jwt_cache {
    pthread_mutex_t lock;                   /* Guards 'slots'. */
    struct entry slots[FO_JWT_CACHE_SLOTS]; /* Direct-mapped by the digest's first bytes. */
};

int fo_jwt_cache_create(struct fo_jwt_cache **out)
{
    struct fo_jwt_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void fo_jwt_cache_destroy(struct fo_jwt_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void fo_jwt_cache_digest(const char *token, size_t n, unsigned char d[32])
{
    SHA256((const unsigned char *)token, n, d);
}

static struct entry *slot_of(struct fo_jwt_cache *c, const unsigned char d[32])
{
    uint32_t i;
    memcpy(&i, d, sizeof i);
    return &c->slots[i % FO_JWT_CACHE_SLOTS];
}

bool fo_jwt_cache_has(struct fo_jwt_cache *c, const unsigned char d[32], const void *key)
{
    if (!c)
        return false;
    pthread_mutex_lock(&c->lock);
    const struct entry *e = slot_of(c, d);
    bool hit = e->key == key && CRYPTO_memcmp(e->d, d, 32) == 0;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void fo_jwt_cache_put(struct fo_jwt_cache *c, const unsigned char d[32], const void *key)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    struct entry *e = slot_of(c, d);
    memcpy(e->d, d, 32);
    e->key = key;
    pthread_mutex_unlock(&c->lock);
}
