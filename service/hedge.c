/* hedge.c -- latency window and hedge token budget (see hedge.h). */
#include "hedge.h"

#include <string.h>

/* 0..15 exact; then 8 buckets per power of two from 16 us up to 2^29 us (about 9 min). */
unsigned fo_lat_bucket(int64_t us)
{
    if (us < 16)
        return us < 0 ? 0 : (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)us); /* >= 4 */
    unsigned sub = (unsigned)((us >> (e - 3)) & 7);
    unsigned b = 16 + (e - 4) * 8 + sub;
    return b < FO_LAT_BUCKETS ? b : FO_LAT_BUCKETS - 1;
}

int64_t fo_lat_bucket_top(unsigned b)
{
    if (b < 16)
        return (int64_t)b;
    unsigned e = (b - 16) / 8 + 4, sub = (b - 16) % 8;
    return ((int64_t)(8 + sub + 1) << (e - 3)) - 1;
}

void fo_latwin_init(struct fo_latwin *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    for (size_t i = 0; i < FO_LAT_SLICES; i++)
        w->slice_epoch[i] = -1;
    w->cached_us = -1;
    w->cached_at_us = INT64_MIN;
}

void fo_latwin_destroy(struct fo_latwin *w)
{
    pthread_mutex_destroy(&w->lock);
}

void fo_latwin_add(struct fo_latwin *w, int64_t us, int64_t now_us)
{
    int64_t epoch = now_us / FO_LAT_SLICE_US;
    size_t s = (size_t)(epoch % FO_LAT_SLICES);
    unsigned b = fo_lat_bucket(us);
    pthread_mutex_lock(&w->lock);
    if (w->slice_epoch[s] != epoch) {
        memset(w->count[s], 0, sizeof w->count[s]);
        w->slice_epoch[s] = epoch;
    }
    w->count[s][b]++;
    pthread_mutex_unlock(&w->lock);
}

int64_t fo_latwin_quantile(struct fo_latwin *w, unsigned pct, int64_t now_us)
{
    pthread_mutex_lock(&w->lock);
    if (w->cached_pct == pct && now_us - w->cached_at_us < 50000) {
        int64_t v = w->cached_us;
        pthread_mutex_unlock(&w->lock);
        return v;
    }
    int64_t epoch = now_us / FO_LAT_SLICE_US;
    uint64_t total = 0;
    uint64_t acc[FO_LAT_BUCKETS] = {0};
    for (size_t s = 0; s < FO_LAT_SLICES; s++) {
        if (w->slice_epoch[s] < 0 || epoch - w->slice_epoch[s] >= FO_LAT_SLICES)
            continue;
        for (size_t b = 0; b < FO_LAT_BUCKETS; b++) {
            acc[b] += w->count[s][b];
            total += w->count[s][b];
        }
    }
    int64_t v = -1;
    if (total >= FO_LAT_MIN_COUNT) {
        uint64_t want = (total * pct + 99) / 100, run = 0;
        for (size_t b = 0; b < FO_LAT_BUCKETS; b++) {
            run += acc[b];
            if (run >= want) {
                v = fo_lat_bucket_top((unsigned)b);
                break;
            }
        }
    }
    w->cached_pct = pct;
    w->cached_at_us = now_us;
    w->cached_us = v;
    pthread_mutex_unlock(&w->lock);
    return v;
}

void fo_hedge_budget_init(struct fo_hedge_budget *b)
{
    atomic_init(&b->milli, FO_HEDGE_TOKENS * 1000);
}

void fo_hedge_budget_deposit(struct fo_hedge_budget *b, unsigned percent)
{
    int_fast64_t cur = atomic_load_explicit(&b->milli, memory_order_relaxed);
    for (;;) {
        int_fast64_t next = cur + (int_fast64_t)percent * 10;
        if (next > FO_HEDGE_TOKENS * 1000)
            next = FO_HEDGE_TOKENS * 1000;
        if (next == cur || atomic_compare_exchange_weak_explicit(
                               &b->milli, &cur, next, memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

bool fo_hedge_budget_take(struct fo_hedge_budget *b)
{
    int_fast64_t cur = atomic_load_explicit(&b->milli, memory_order_relaxed);
    while (cur >= 1000) {
        if (atomic_compare_exchange_weak_explicit(&b->milli, &cur, cur - 1000, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}
