/* retry.c -- retry policy and budget (see retry.h). */
#include "retry.h"

const char *fo_retry_reason_name(enum fo_retry_reason r)
{
    static const char *const names[FO_RETRY_R_COUNT] = {"connect", "timeout", "status"};
    return (unsigned)r < FO_RETRY_R_COUNT ? names[r] : "unknown";
}

int fo_retry_wanted(const struct fo_retry_conf *c, enum fo_outcome outcome, int status,
                    bool try_timeout)
{
    unsigned m = c->on_mask;
    if (outcome == FO_ERR_CONNECT)
        return (m & FO_RETRY_CONNECT) ? FO_RETRY_R_CONNECT : -1;
    if (outcome == FO_ERR_TIMEOUT)
        return (m & FO_RETRY_TIMEOUT) && try_timeout ? FO_RETRY_R_TIMEOUT : -1;
    if (outcome != FO_OK)
        return -1;
    bool yes = (status >= 500 && status <= 599 && (m & FO_RETRY_5XX)) ||
               (status == 502 && (m & FO_RETRY_502)) || (status == 503 && (m & FO_RETRY_503)) ||
               (status == 504 && (m & FO_RETRY_504)) || (status == 429 && (m & FO_RETRY_429));
    return yes ? FO_RETRY_R_STATUS : -1;
}

int64_t fo_retry_backoff_us(const struct fo_retry_conf *c, unsigned n, uint64_t rnd,
                            int64_t left_us)
{
    int64_t base = c->backoff_ms * 1000;
    int64_t cap = 10 * base;
    int64_t span = n >= 4 ? cap : (((int64_t)1 << n) - 1) * base;
    if (span > cap)
        span = cap;
    int64_t wait = span > 0 ? (int64_t)(rnd % (uint64_t)span) : 0;
    if (wait > left_us / 2)
        wait = left_us / 2;
    return wait < 0 ? 0 : wait;
}

void fo_retry_budget_init(struct fo_retry_budget *b)
{
    atomic_init(&b->calls, 0);
    atomic_init(&b->retries, 0);
    atomic_init(&b->percent, 20);
    atomic_init(&b->min, 3);
    atomic_init(&b->refused, 0);
}

bool fo_retry_budget_take(struct fo_retry_budget *b)
{
    long calls = atomic_load_explicit(&b->calls, memory_order_relaxed);
    long cap = calls * (long)atomic_load_explicit(&b->percent, memory_order_relaxed) / 100;
    long min = (long)atomic_load_explicit(&b->min, memory_order_relaxed);
    if (cap < min)
        cap = min;
    if (atomic_fetch_add_explicit(&b->retries, 1, memory_order_relaxed) + 1 > cap) {
        atomic_fetch_sub_explicit(&b->retries, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void fo_retry_budget_put(struct fo_retry_budget *b)
{
    atomic_fetch_sub_explicit(&b->retries, 1, memory_order_relaxed);
}
