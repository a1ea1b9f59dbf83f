/* server.h -- the HTTP front: libmicrohttpd, routing, the request lifecycle.
 *
 * A request is read by libmicrohttpd's thread pool (epoll), routed to a
 * configured endpoint or the ad-hoc batch, fanned out to the worker pool,
 * and its connection suspended; the worker that ends the last call resumes
 * it, and the server thread merges the results and answers. No server
 * thread ever waits on a backend.
 * Ownership: the server borrows the config and the pool for its lifetime.
 * Threads: create, stop and destroy from one (the main) thread. */
#ifndef FO_SERVER_H
#define FO_SERVER_H

#include <stdint.h>

#include "config.h"
#include "pool.h"

struct fo_server; /* Opaque. */

/* Bind cfg->listen_host:listen_port and start serving with 'pool'.
 * 'cfg' and 'pool' are borrowed and must outlive the server.
 * Returns 0 and sets *out, or a negative errno with a reason in err. */
int fo_server_create(struct fo_server **out, const struct fo_config *cfg, struct fo_pool *pool,
                     char *err, size_t errlen);

/* The port actually bound (useful when the config said 0). */
uint16_t fo_server_port(const struct fo_server *srv);

/* Graceful stop: stop accepting, let requests in flight finish for up to
 * 'drain_ms', then cancel what is left and answer it, and stop the
 * daemon. Every accepted request gets an answer. Idempotent. */
void fo_server_stop(struct fo_server *srv, int64_t drain_ms);

/* Stop (with no drain if not stopped yet) and free. NULL is a no-op. */
void fo_server_destroy(struct fo_server *srv);

#endif /* FO_SERVER_H */
