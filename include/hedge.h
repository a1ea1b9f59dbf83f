/* hedge.h -- what a hedge needs: a backend's recent latency and a budget of extra attempts.
 *
 * Latency window: the durations of a backend's answered attempts over the last 30 s, in six
 * 5-second slices of log-linear buckets (8 per power of two, so a quantile is within 12.5%),
 * 1.7 KiB each; a quantile reads the slices still inside the window and is cached for 50 ms.
 * Token budget (Finagle's rule): each primary attempt deposits max_extra_percent/100 of a
 * token, a hedge takes a whole one, and the budget starts at and never holds more than
 * FO_HEDGE_TOKENS, so a cold start can hedge at once and the long-run rate of extra
 * attempts is the percentage. Kept in thousandths in one atomic.
 * Ownership: embedded in its owner (resil.c); the window is allocated by init.
 * Threads: thread-safe: the window has its own small mutex, the budget is lock-free. */
#ifndef FO_HEDGE_H
#define FO_HEDGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FO_HEDGE_TOKENS  10
#define FO_LAT_SLICES    6
#define FO_LAT_SLICE_US  5000000
#define FO_LAT_BUCKETS   216
#define FO_LAT_MIN_COUNT 100 /* Samples in the window before a quantile is given. */

struct fo_latwin {
    pthread_mutex_t lock;
    int64_t slice_epoch[FO_LAT_SLICES];            /* now / FO_LAT_SLICE_US of each; 'lock'. */
    uint32_t count[FO_LAT_SLICES][FO_LAT_BUCKETS]; /* 'lock'. */
    int64_t cached_at_us;                          /* 'lock'. */
    unsigned cached_pct;                           /* 'lock'. */
    int64_t cached_us;                             /* Last quantile, -1 none; 'lock'. */
};

void fo_latwin_init(struct fo_latwin *w);
void fo_latwin_destroy(struct fo_latwin *w);

/* One answered attempt that took 'us'. Thread-safe. */
void fo_latwin_add(struct fo_latwin *w, int64_t us, int64_t now_us);

/* The 'pct' percentile (50..99) of the window in us, or -1 with fewer than
 * FO_LAT_MIN_COUNT samples. Thread-safe. */
int64_t fo_latwin_quantile(struct fo_latwin *w, unsigned pct, int64_t now_us);

/* The bucket of 'us' and its upper bound (exposed for tests). */
unsigned fo_lat_bucket(int64_t us);
int64_t fo_lat_bucket_top(unsigned b);

/* The token budget, in thousandths of a token. */
struct fo_hedge_budget {
    atomic_int_fast64_t milli;
};

void fo_hedge_budget_init(struct fo_hedge_budget *b);

/* A primary attempt: deposit percent/100 of a token (up to the cap). Lock-free. */
void fo_hedge_budget_deposit(struct fo_hedge_budget *b, unsigned percent);

/* Take one token for a hedge. Returns false when there is not a whole one. Lock-free. */
bool fo_hedge_budget_take(struct fo_hedge_budget *b);

#endif /* FO_HEDGE_H */
