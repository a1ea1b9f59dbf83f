/* demo.h -- the embedded default: demo backends and the config that uses them.
 *
 * `fanout` with no config file starts a small in-process HTTP server on
 * 127.0.0.1 (ephemeral port) that plays three backends -- users, orders and
 * feature flags -- and builds a config whose endpoint
 * GET /api/dashboard/{id} fans out to them, so a fresh install answers a
 * real aggregate request at once.
 * Threads: create/destroy from the main thread. */
#ifndef FO_DEMO_H
#define FO_DEMO_H

#include <stddef.h>

#include "buf.h"

struct fo_demo; /* Opaque. */

/* Start the demo backends. Returns 0 and sets *out, or a negative errno. */
int fo_demo_create(struct fo_demo **out);

/* Append the demo config (JSON text) that points at the running backends. */
int fo_demo_config(const struct fo_demo *d, struct fo_buf *out);

/* Stop and free. NULL is a no-op. */
void fo_demo_destroy(struct fo_demo *d);

#endif /* FO_DEMO_H */
