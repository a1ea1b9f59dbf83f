/* ctx.c -- request context: a deadline, a cancel flag and its reason. See ctx.h.
 *
 * DESIGN: no lock. Everything but the cancel reason is fixed at create: the
 * parent pointer and the effective deadline (the earlier of our own and the
 * parent's effective one, which is itself fixed), so fo_ctx_err() reads the
 * clock at most once and never walks the chain for deadlines. The reason is
 * one atomic int that goes from 0 to a negative errno exactly once, by
 * compare-exchange, so the first canceller wins and later ones change
 * nothing. fo_ctx_err() loads the reasons along the chain to the root first
 * (a cancel wins over the deadline) and only then, if needed, asks the clock.
 * A parent must outlive its children, so walking the chain is safe without
 * reference counts. */
#include "ctx.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

struct fo_ctx {
    const struct fo_ctx *parent; /* Borrowed, may be NULL; outlives us. Fixed at create. */
    int64_t deadline_ms;         /* Effective deadline, min(own, parent's). Fixed at create. */
    atomic_int reason;           /* 0 while not cancelled, then the first reason for good. */
};

int fo_ctx_create(struct fo_ctx **out, struct fo_ctx *parent, int64_t deadline_ms)
{
    struct fo_ctx *ctx = malloc(sizeof *ctx);

    *out = NULL;
    if (!ctx)
        return -ENOMEM;
    ctx->parent = parent;
    ctx->deadline_ms = deadline_ms;
    if (parent && parent->deadline_ms < deadline_ms)
        ctx->deadline_ms = parent->deadline_ms;
    atomic_init(&ctx->reason, 0);
    *out = ctx;
    return 0;
}

void fo_ctx_destroy(struct fo_ctx *ctx)
{
    free(ctx);
}

void fo_ctx_cancel(struct fo_ctx *ctx, int reason)
{
    int expected = 0;

    if (reason == 0)
        reason = -ECANCELED;
    else if (reason > 0) /* Out of contract; keep fo_ctx_err() negative anyway. */
        reason = -reason;
    /* Release pairs with the acquire in fo_ctx_err(): whatever the canceller
     * wrote before cancelling is visible to a thread that sees the reason. */
    atomic_compare_exchange_strong_explicit(&ctx->reason, &expected, reason, memory_order_acq_rel,
                                            memory_order_acquire);
}

int fo_ctx_err(const struct fo_ctx *ctx)
{
    for (const struct fo_ctx *c = ctx; c; c = c->parent) {
        int reason = atomic_load_explicit(&c->reason, memory_order_acquire);
        if (reason != 0)
            return reason;
    }
    if (ctx->deadline_ms != FO_NO_DEADLINE && fo_clock_ms() >= ctx->deadline_ms)
        return -ETIMEDOUT;
    return 0;
}

int64_t fo_ctx_deadline(const struct fo_ctx *ctx)
{
    return ctx->deadline_ms;
}

int64_t fo_ctx_remaining_ms(const struct fo_ctx *ctx, int64_t now_ms)
{
    int64_t d = ctx->deadline_ms;

    if (d == FO_NO_DEADLINE)
        return INT64_MAX;
    if (d <= now_ms)
        return 0;
    /* d - now_ms overflows only for a far deadline and a negative 'now'. */
    if (now_ms < 0 && d > INT64_MAX + now_ms)
        return INT64_MAX - 1;
    return d - now_ms;
}
