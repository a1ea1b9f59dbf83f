/* server.h -- the HTTP front: libmicrohttpd, routing, the request lifecycle.
 *
 * A request is read by libmicrohttpd's thread pool (epoll), routed to a
 * configured endpoint or the ad-hoc batch, fanned out to the worker pool,
 * and its connection suspended; the worker that ends the last call resumes
 * it, and the server thread merges the results and answers. No server
 * thread ever waits on a backend. The server also answers the operations
 * routes (health, ready, metrics), writes the access log, enforces the
 * client-side limits and swaps configurations on reload.
 * Ownership: the server owns every config handed to it (freed once no
 * request uses it any more); it borrows the pool and the metrics registry,
 * which must outlive it.
 * Threads: create, reload, watchdog, stop and destroy from one (the main)
 * thread. */
#ifndef FO_SERVER_H
#define FO_SERVER_H

#include <stdint.h>

#include "budget.h"
#include "config.h"
#include "metrics.h"
#include "pool.h"

struct fo_server; /* Opaque. */

/* Bind cfg->listen_host:listen_port (unless NULL) and cfg->listen_tls_host:
 * listen_tls_port (HTTPS with cfg->tls, unless NULL) and start serving with
 * 'pool'.
 * Ownership of 'cfg' moves to the server on success (the caller keeps it on
 * error). 'budget' (borrowed, outlives the server) counts the response bytes
 * held; new requests get 503 while it is full. Returns 0 and sets *out, or a
 * negative errno with a reason in err. */
int fo_server_create(struct fo_server **out, struct fo_config *cfg, struct fo_pool *pool,
                     struct fo_metrics *metrics, struct fo_budget *budget, char *err,
                     size_t errlen);

/* The port actually bound (useful when the config said 0); 0 without a plain
 * listener. */
uint16_t fo_server_port(const struct fo_server *srv);

/* The HTTPS listener's bound port, or 0 without one. */
uint16_t fo_server_tls_port(const struct fo_server *srv);

/* SIGHUP, before fo_server_reload: read cfg->tls's certificate and key again
 * and serve new HTTPS connections with them (a new daemon on the same
 * socket); the old daemon finishes its requests, closes its connections as
 * they go quiet and is stopped by the watchdog once none is left. Nothing
 * to do (0) without an HTTPS listener or without "tls" in 'cfg'. On error
 * (a file unreadable, GnuTLS refusing the pair) nothing changes: returns a
 * negative errno with a reason in 'err'. 'cfg' is borrowed. */
int fo_server_reload_tls(struct fo_server *srv, const struct fo_config *cfg, char *err,
                         size_t errlen);

/* Serve new requests with 'cfg' from now on; requests in flight finish on
 * the config they started with. Ownership of 'cfg' moves to the server.
 * Settings that only apply at start (listen, listen_tls, workers, server_threads,
 * max_connections, max_header_bytes, idle_timeout_ms, header_timeout_ms,
 * max_response_bytes, max_json_depth -- for batch bodies too --,
 * max_host_connections, max_buffered_bytes)
 * keep their old values; their names are written to 'note' (empty when
 * none differ). */
void fo_server_reload(struct fo_server *srv, struct fo_config *cfg, char *note, size_t notelen);

/* Close connections whose request head has not arrived within
 * header_timeout_ms (from accept for the first request -- the TLS handshake
 * included --, from the request line or the first dripped byte for later
 * ones), and those whose client sent its FIN while a request body was still
 * incomplete; stop retired HTTPS daemons with no connection left. Call every
 * 250 ms or so. */
void fo_server_watchdog(struct fo_server *srv);

/* Graceful stop: /ready answers 503, stop accepting, answer new requests on
 * open connections with 503 "draining" and close them, let requests in flight
 * finish for up to drain_ms (from the config), then cancel what is left and
 * answer it, and stop the daemon. Idempotent. */
void fo_server_stop(struct fo_server *srv);

/* Stop (if not stopped yet) and free. NULL is a no-op. */
void fo_server_destroy(struct fo_server *srv);

#endif /* FO_SERVER_H */
