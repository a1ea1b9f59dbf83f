/* stale.c -- the stale-on-error cache of a backend (see stale.h). */
#include "stale.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lru.h"

struct entry {
    struct fo_lru_node node; /* First: the map's handle; key = the URL. */
    int64_t at_us;           /* When the value arrived. */
    size_t len;              /* Value bytes. */
    char *value;             /* Points into data, after the URL. */
    char data[];             /* URL, NUL, value. */
};

struct fo_stale {
    pthread_mutex_t lock;
    struct fo_lru map; /* struct entry nodes; 'lock'. */
};

static void free_entry(struct fo_lru_node *n)
{
    free(n);
}

struct fo_stale *fo_stale_create(size_t max_entries, size_t max_bytes)
{
    struct fo_stale *s = fo_xcalloc(sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    fo_lru_init(&s->map, max_entries, max_bytes, free_entry);
    return s;
}

void fo_stale_destroy(struct fo_stale *s)
{
    if (!s)
        return;
    fo_lru_clear(&s->map);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void fo_stale_put(struct fo_stale *s, const char *url, const char *value, size_t len,
                  int64_t now_us)
{
    size_t ulen = strlen(url);
    struct entry *e = fo_xcalloc(sizeof *e + ulen + 1 + len);
    memcpy(e->data, url, ulen);
    e->value = e->data + ulen + 1;
    memcpy(e->value, value, len);
    e->len = len;
    e->at_us = now_us;
    e->node.key = e->data;
    e->node.klen = ulen;
    e->node.bytes = ulen + len;
    pthread_mutex_lock(&s->lock);
    struct fo_lru_node *old = fo_lru_get(&s->map, url, ulen);
    if (old) {
        fo_lru_remove(&s->map, old);
        free_entry(old);
    }
    (void)fo_lru_put(&s->map, &e->node); /* -E2BIG: too big alone, freed by the map. */
    pthread_mutex_unlock(&s->lock);
}

char *fo_stale_get(struct fo_stale *s, const char *url, int64_t max_age_us, int64_t now_us,
                   size_t *len, int64_t *age_us)
{
    char *copy = NULL;
    pthread_mutex_lock(&s->lock);
    struct entry *e = (struct entry *)fo_lru_get(&s->map, url, strlen(url));
    if (e && now_us - e->at_us > max_age_us) {
        fo_lru_remove(&s->map, &e->node);
        free_entry(&e->node);
    } else if (e) {
        copy = malloc(e->len ? e->len : 1);
        if (copy) {
            memcpy(copy, e->value, e->len);
            *len = e->len;
            *age_us = now_us - e->at_us;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return copy;
}

void fo_stale_usage(struct fo_stale *s, size_t *entries, size_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    *entries = s->map.n;
    *bytes = s->map.bytes;
    pthread_mutex_unlock(&s->lock);
}
