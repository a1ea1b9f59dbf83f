/* pool.h -- the worker pool: backend calls run concurrently on W threads.
 *
 * Each worker thread owns one libcurl multi handle, driven through its own
 * epoll loop (curl_multi_socket_action), so one thread runs many transfers
 * at once and keeps connections to backends alive between requests. Work
 * arrives as a fan-out: all the calls of one client request, submitted
 * together to one worker (round robin) over that worker's inbox channel,
 * followed by one wakeup on the worker's eventfd.
 *
 * Fan-in: as each call ends, the worker fills in its transport result (an
 * answer arrived, with its status and body, or why none did) and sends the
 * call on the fan-out's 'fanin' channel, then calls 'ended', where the
 * submitter takes it off the channel and judges it (pipeline.h); when the
 * submitter says the fan-out is decided (a required call failed: fail
 * fast), the pool cancels the context and aborts the rest. After the last
 * call it invokes 'done' once; the submitter (the HTTP front) resumes its
 * suspended client connection from there. The pool judges no answer: a 500
 * or a body that is not JSON is the pipeline's to fail.
 *
 * Context: every call gets min(its own timeout, time left on the fan-out's
 * context) as its curl timeout, and carries "X-Timeout-Ms: <ms left>", the
 * time left when the request is sent (after any wait for a connection).
 * The pool knows no client: whoever cancels a fan-out's context (the HTTP
 * front, when its client is gone; a stop) calls fo_pool_sweep, and the
 * workers abort the calls of every context that is done. Aborting a call
 * removes it from the multi, which closes its connection.
 *
 * Connections: a kept-alive connection with unread input (bytes a backend
 * sent unasked, or an EOF) never carries another request: it is closed and
 * the call is made on a fresh one, within the same budget (counted in
 * dirty_discards). A response head over FO_MAX_HEAD_BYTES fails the call
 * FO_ERR_TOO_LARGE.
 *
 * Ownership: a submitted fan-out, its calls (plan.h), their strings and the
 * channel are borrowed by the pool from a successful fo_pool_submit until
 * 'done' returns; result bodies are malloc()ed by the pool and belong to the
 * call (free with fo_call_clear). */
#ifndef FO_POOL_H
#define FO_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "chan.h"
#include "ctx.h"
#include "plan.h"

struct fo_fanout;
/* Called once per fan-out on the worker thread, after every call has been
 * sent on the fan-in channel. The pool does not touch the fan-out again
 * after calling it, so the callee may free it (or hand it to a thread that
 * does). Must not block. */
typedef void (*fo_fanout_done_cb)(struct fo_fanout *f);

/* Called on the worker thread each time a call has ended and been sent on
 * the fan-in channel: the submitter takes what is on the channel and judges
 * it. Returns true once the fan-out is decided (it needs no more answers);
 * the pool then cancels the context and aborts the calls still running
 * (FO_ERR_CANCELLED, each still sent and 'ended'). Never called after
 * 'done'. Must not block. */
typedef bool (*fo_fanout_ended_cb)(struct fo_fanout *f);

/* The calls of one client request. */
struct fo_fanout {
    struct fo_call *calls; /* Borrowed: ncalls >= 1 calls. */
    size_t ncalls;
    struct fo_ctx *ctx;       /* Borrowed: deadline and cancellation. */
    struct fo_chan *fanin;    /* Borrowed: capacity >= ncalls; receives each call. */
    const char *request_id;   /* Borrowed: sent to every call as X-Request-Id; may be NULL. */
    size_t max_bytes;         /* Response bytes all its calls may hold together; past it a
                                 call ends FO_ERR_TOO_LARGE. 0 = no cap. */
    fo_fanout_ended_cb ended; /* Required. */
    fo_fanout_done_cb done;   /* Required. */
    void *data;               /* The submitter's; the pool never reads it. */
    void *job;                /* The pool's while it runs the fan-out. */
};

/* Dependent calls. A call whose 'held' is set at submit is not started by the pool: it
 * counts as one of the fan-out's calls from the start, and the submitter, from 'ended' (on
 * the worker thread, once what it waits for has ended), either starts it or ends it
 * without a transfer. Both take effect in order once 'ended' returns. A held call that is
 * neither when the fan-out is decided, aborted or past its deadline ends with that outcome.
 *
 * Start call 'c': a held call of 'f', or an extra call the submitter owns (an item of a
 * foreach: it counts from now, is sent on the fan-in when it ends like every call, so the
 * channel needs room for it, and runs as one plain transfer: no resilience policy). After
 * the fan-out is decided, or once its context is done, it ends at once instead. */
void fo_fanout_start(struct fo_fanout *f, struct fo_call *c);

/* End held call 'c' as the submitter set it (its outcome, and for FO_OK its result),
 * without a transfer: sent on the fan-in and 'ended' like any other. */
void fo_fanout_finish(struct fo_fanout *f, struct fo_call *c);

/* Cap on a call's response head bytes (all heads, 1xx included). */
#define FO_MAX_HEAD_BYTES (100 * 1024)

struct fo_pool_opts {
    unsigned workers;           /* Threads, >= 1. */
    size_t max_response_bytes;  /* Bodies over it end as FO_ERR_TOO_LARGE. */
    size_t queue_cap;           /* Inbox capacity per worker (fan-outs). */
    long max_host_connections;  /* Per worker and scheme://host:port: calls at once, the rest
                                   wait in order (pool_gate.h); 0 = none. */
    struct fo_budget *buffered; /* Borrowed, may be NULL: every response byte held is
                                   charged to it until dropped or fo_call_clear. */
};

struct fo_pool; /* Opaque. */

/* Start the workers. Returns 0 and sets *out, or a negative errno. */
int fo_pool_create(struct fo_pool **out, const struct fo_pool_opts *opts);

/* Stop and join the workers, then free the pool. Every submitted fan-out
 * must have completed. NULL is a no-op. Not from a worker thread. */
void fo_pool_destroy(struct fo_pool *pool);

/* Hand 'f' to a worker. Returns 0 (then 'done' will be called exactly once),
 * or -EAGAIN when the worker's inbox is full, or -EPIPE after shutdown (then
 * 'done' is never called and the caller keeps 'f'). Thread-safe. */
int fo_pool_submit(struct fo_pool *pool, struct fo_fanout *f);

/* Ask every worker to re-check the context of each running fan-out and abort
 * those that are done (use after cancelling a shared parent context).
 * Thread-safe. */
void fo_pool_sweep(struct fo_pool *pool);

/* Counters for metrics; a snapshot summed over workers. Thread-safe. */
struct fo_pool_stats {
    uint64_t fanouts;        /* Fan-outs completed. */
    uint64_t calls;          /* Calls completed. */
    uint64_t connections;    /* New backend connections opened. */
    uint64_t queued;         /* Fan-outs waiting in inboxes now. */
    uint64_t running;        /* Calls in flight now (waiting ones included). */
    uint64_t waiting;        /* Of those, waiting for a slot of max_host_connections. */
    uint64_t dirty_discards; /* Connections refused before a request for unread input. */
};
void fo_pool_stats(struct fo_pool *pool, struct fo_pool_stats *out);

#endif /* FO_POOL_H */
