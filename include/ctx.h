/* ctx.h -- request context: a deadline, a cancel flag and its reason.
 *
 * Go's context.Context in C. Contexts form a tree: a child is done when its
 * own deadline passes, when it is cancelled, or when its parent is done.
 * fanout makes one root context for the server (cancelled on shutdown) and
 * one child per client request, shared by that request's backend calls.
 * Nothing is pushed to anyone when a context is cancelled: holders poll
 * fo_ctx_err() at the points where they can act on it (see pool.h for how
 * the workers are asked to look).
 * Threads: every function except create/destroy is thread-safe. */
#ifndef FO_CTX_H
#define FO_CTX_H

#include <stdint.h>

#include "clock.h"

struct fo_ctx; /* Opaque. */

/* Create a context with an absolute deadline (fo_clock_ms() time, or
 * FO_NO_DEADLINE). 'parent' is borrowed, may be NULL, and must outlive the
 * child. The effective deadline is the earlier of the two.
 * Returns 0 and sets *out, or -ENOMEM. */
int fo_ctx_create(struct fo_ctx **out, struct fo_ctx *parent, int64_t deadline_ms);

/* Free a context. No other thread may still use it. NULL is a no-op. */
void fo_ctx_destroy(struct fo_ctx *ctx);

/* Cancel with 'reason', a negative errno (-ECANCELED for a client that went
 * away, -ESHUTDOWN for a server stop, ...). The first reason sticks; later
 * calls are no-ops. A reason of 0 is treated as -ECANCELED. */
void fo_ctx_cancel(struct fo_ctx *ctx, int reason);

/* 0 while live; else why it is done: the cancel reason of this context or
 * the nearest cancelled ancestor, or -ETIMEDOUT once the effective deadline
 * has passed. Cancellation wins over the deadline when both apply. */
int fo_ctx_err(const struct fo_ctx *ctx);

/* The effective deadline: the earliest along the chain to the root. */
int64_t fo_ctx_deadline(const struct fo_ctx *ctx);

/* Milliseconds left before the effective deadline measured from 'now_ms'
 * (0 if passed; INT64_MAX without deadline). */
int64_t fo_ctx_remaining_ms(const struct fo_ctx *ctx, int64_t now_ms);

#endif /* FO_CTX_H */
