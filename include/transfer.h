/* transfer.h -- one backend call on a reusable curl easy handle.
 *
 * The worker pool (pool_worker.c) runs transfers on its curl multi handle; this
 * module owns what one call is: the easy handle's options, its URL (parsed
 * once per URL the handle runs), its header lines (xfer_headers.h), the caps
 * on what comes back (body per call and
 * per request, head size, the buffered-bytes budget), the refusal of a
 * kept-alive connection with unread input, and the transport result of its
 * end (the pipeline judges the answer: pipeline.h).
 * Ownership: a transfer is the pool's (fo_xfer_new / fo_xfer_free); it
 * borrows its call and its group while it runs; a successful body is handed
 * to the call (freed with fo_call_clear).
 * Threads: a transfer belongs to the worker thread that runs it. */
#ifndef FO_TRANSFER_H
#define FO_TRANSFER_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "buf.h"
#include "pool.h"
#include "socktab.h"
#include "tls_back.h"
#include "xfer_headers.h"

/* What the transfers of one worker share. Set up by the worker. */
struct fo_xfer_env {
    struct fo_socktab *socks;   /* Borrowed: every socket this worker's curl opened. */
    struct fo_budget *buffered; /* Borrowed, may be NULL: the process's buffered bytes. */
    size_t max_response_bytes;  /* Body cap per call. */
};

/* What the transfers of one fan-out share: its deadline and byte budget. */
struct fo_xfer_group {
    const struct fo_fanout *f; /* Borrowed: ctx, max_bytes, request_id. */
    size_t bytes;              /* Body bytes its transfers and calls hold (f->max_bytes). */
};

/* One running backend call. */
struct fo_xfer {
    CURL *easy;                  /* Reused between calls (keeps its buffers). */
    struct fo_xfer_env *env;     /* Borrowed from the worker (outlives its connections). */
    struct fo_call *call;        /* Borrowed while it runs. */
    struct fo_xfer_group *group; /* Borrowed while it runs. */
    struct fo_xfer *prev, *next; /* The worker's lists. */
    struct fo_hdrs hdrs;         /* Request headers, in storage kept between calls. */
    CURLU *uh;                   /* From curl_url(), or NULL: the parsed URL, kept. */
    char *uh_url;                /* From malloc(): the URL 'uh' holds, NULL when none. */
    struct fo_buf body;          /* Response body, capped at max_response_bytes. */
    int64_t start_us;            /* When it started. */
    int64_t budget_ms;           /* Its curl timeout, from start_us. */
    bool too_large;              /* A write or header callback refused more bytes. */
    size_t head_bytes;           /* Response head bytes so far (all heads, 1xx included). */
    bool dirty;                  /* The chosen connection had unread input (see fo_xfer_retry). */
    bool dirty_fresh;            /* ... and that connection was a new one (no retry helps). */
    bool retried;                /* Already restarted once on a fresh connection. */
    bool no_fds;                 /* The process was out of descriptors for its socket. */
    /* Set by the pool before fo_xfer_prepare, for a call with a resilience policy: */
    char *url;        /* From malloc(): this attempt's URL (hosts), or NULL for call->url;
                         freed by fo_xfer_reset. */
    unsigned attempt; /* Sent as X-Fanout-Attempt when > 0. */
    void *run;        /* The pool's: the call's attempt state, or NULL. */
    int host;         /* The pool's: the host index of this attempt, -1 none. */
    bool probe;       /* The pool's: this attempt is a breaker probe. */
    bool retry_slot;  /* The pool's: it holds a slot of the retry budget. */
    int limit;        /* The pool's: which cap set its curl timeout. */
    bool https;       /* Its URL is https: every new connection is a handshake. */
    /* The pool's gate (pool_gate.h) while it holds a slot or waits for one: */
    void *gate_host;                       /* Its host in the gate, NULL when not in it. */
    bool gate_waiting;                     /* Queued: not in the curl multi yet. */
    struct fo_xfer *gate_prev, *gate_next; /* The host's queue, while waiting. */
    struct fo_tls_call tls;                /* The call's TLS state (tls_back.h). */
};

/* A transfer with a new easy handle and the options that never change.
 * Aborts when out of memory. */
struct fo_xfer *fo_xfer_new(struct fo_xfer_env *env);

/* Free it (its handle must be out of any multi). NULL is a no-op. */
void fo_xfer_free(struct fo_xfer *x);

/* Set the per-call options for 'call' of 'group' with a curl timeout of
 * 'budget_ms'. Returns 0, or -ENOMEM (then fo_xfer_reset it). */
int fo_xfer_prepare(struct fo_xfer *x, struct fo_xfer_group *group, struct fo_call *call,
                    int64_t budget_ms);

/* True when the last call it ran went to 'url' (borrowed): a call to the
 * same URL on it needs no new parse. */
bool fo_xfer_ran(const struct fo_xfer *x, const char *url);

/* Ended on a connection refused for unread input: set it up to run again on
 * a fresh connection within what is left of its budget. Returns true when
 * the worker should add it again; false leaves it to fo_xfer_classify with
 * *res (the connection was new, this was the second try, or no time left). */
bool fo_xfer_retry(struct fo_xfer *x, CURLcode *res);

/* Started after waiting (the pool's gate): its curl timeouts shrink to what is left of its
 * budget, at least 1 ms. Returns what is left, in ms (< 1: nothing). */
int64_t fo_xfer_admit(struct fo_xfer *x);

/* Fill in the call's transport result from curl's 'res': FO_OK when an
 * answer arrived (any status; its body moves to the call, still charged to
 * the budget), else why none did. */
void fo_xfer_classify(struct fo_xfer *x, CURLcode res);

/* After its end: the Retry-After of the answer in ms (delta-seconds or an HTTP date),
 * or -1 when there is none. */
int64_t fo_xfer_retry_after_ms(struct fo_xfer *x);

/* Connections curl opened for it (this try). */
long fo_xfer_connects(const struct fo_xfer *x);

/* TLS handshakes of this try: its new connections when the call is https. */
long fo_xfer_tls_handshakes(const struct fo_xfer *x, long connects);

/* After its end: give back what it held (headers, an unclaimed body and its
 * bytes) and forget its call, ready for the next. */
void fo_xfer_reset(struct fo_xfer *x);

#endif /* FO_TRANSFER_H */
