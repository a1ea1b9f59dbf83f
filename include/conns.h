/* conns.h -- the open client connections, as the watchdog and the drain see them.
 *
 * One record per accepted connection, from libmicrohttpd's "connection
 * started" notification to its "closed" one. The HTTP front marks what each
 * connection is doing (a request line arrived, the head is complete, a body
 * is coming, the request ended); the watchdog, on its own clock, closes the
 * connections that break the head and upload rules, and the drain closes the
 * ones that stay quiet. Closing is shutdown(): the fd stays libmicrohttpd's
 * to close, its next read fails and it drops the connection.
 * It also owns the front's half of cancellation: while a request waits on
 * the pool, its connection is watched (a thread of the registry's own, on
 * an epoll set the socket joins at its first watched request and leaves when
 * the connection closes or resets) for a reset, which cancels the request's context and calls
 * 'on_gone' (the server sweeps the pool, whose workers abort the calls of
 * every cancelled context). A FIN alone is not a reset: a client may
 * half-close after its request and still read the answer.
 * Ownership: the registry owns the records; a record pointer is valid from
 * fo_conns_open to fo_conns_close. Watched contexts are borrowed until
 * fo_conn_unwatch.
 * Threads: the marks are relaxed atomics, safe from any thread (MHD's);
 * open/close/watch/unwatch take the registry lock; fo_conns_watch and
 * fo_conns_close_quiet from one thread (the main thread) only; 'on_gone'
 * runs on the registry's thread, with no lock held. */
#ifndef FO_CONNS_H
#define FO_CONNS_H

#include <stdbool.h>
#include <stdint.h>

struct fo_conns;    /* Opaque. */
struct fo_conn_rec; /* Opaque. */

struct fo_ctx; /* ctx.h */

/* Returns 0 and sets *out, or a negative errno. 'header_timeout_ms' is the
 * time a request head may take (from accept for the first one); 'on_gone'
 * (with 'arg') is called after a watched connection's reset cancelled its
 * context. */
int fo_conns_create(struct fo_conns **out, int64_t header_timeout_ms, void (*on_gone)(void *arg),
                    void *arg);

/* Stop its thread and free the registry; every record must be closed. NULL
 * is a no-op. */
void fo_conns_destroy(struct fo_conns *cs);

/* A connection is being accepted: count it now, so that a burst of accepts
 * cannot pass 'max' before their records exist. Returns false (and counts
 * nothing) when 'max' connections are open already. */
bool fo_conns_admit(struct fo_conns *cs, long max);

/* A connection on socket 'fd' was accepted (and admitted). Returns its
 * record, or NULL when out of memory (the connection is then simply not
 * watched, and its count is given back). */
struct fo_conn_rec *fo_conns_open(struct fo_conns *cs, int fd);

/* Mark 'cr' with the front's 'tag' (the listener that accepted it; 0 unless
 * set). NULL 'cr' is a no-op. */
void fo_conn_tag(struct fo_conns *cs, struct fo_conn_rec *cr, unsigned tag);

/* Open connections tagged 'tag' now (a walk of the list). */
long fo_conns_count_tag(struct fo_conns *cs, unsigned tag);

/* The connection closed: forget and free 'cr' (NULL is a no-op). */
void fo_conns_close(struct fo_conns *cs, struct fo_conn_rec *cr);

/* Open connections now. */
long fo_conns_count(struct fo_conns *cs);

/* Marks, from the front. NULL 'cr' is a no-op for each. */
void fo_conn_line(struct fo_conns *cs, struct fo_conn_rec *cr); /* A request line arrived. */
void fo_conn_head(struct fo_conn_rec *cr);                      /* Its whole head is in. */
void fo_conn_body(struct fo_conn_rec *cr, bool coming);         /* A body is (not) awaited. */
void fo_conn_chunk(struct fo_conn_rec *cr);                     /* A piece of the body arrived. */
void fo_conn_done(struct fo_conn_rec *cr);                      /* The request ended. */

/* The request on 'cr' waits on the pool under 'ctx': cancel 'ctx' if the
 * connection is reset before fo_conn_unwatch. NULL 'cr' is a no-op. */
void fo_conn_watch(struct fo_conns *cs, struct fo_conn_rec *cr, struct fo_ctx *ctx);

/* Stop watching (before 'ctx' is freed). Idempotent; NULL is a no-op. */
void fo_conn_unwatch(struct fo_conns *cs, struct fo_conn_rec *cr);

/* One watchdog pass: close the connections whose request head is overdue
 * (first head from accept, later ones from their request line, a request
 * line dripped byte by byte from its first bytes), and those whose client
 * sent its FIN while a head or a body was still awaited. Call every 250 ms or so. */
void fo_conns_watch(struct fo_conns *cs);

/* Close the connections with no request under way for 'quiet_ms' and no
 * bytes waiting (for the drain). */
void fo_conns_close_quiet(struct fo_conns *cs, int64_t quiet_ms);

/* The same for the connections tagged 'tag' only (a retired listener's). */
void fo_conns_close_quiet_tag(struct fo_conns *cs, int64_t quiet_ms, unsigned tag);

#endif /* FO_CONNS_H */
