/* chan.h -- bounded multi-producer/multi-consumer channel with close.
 *
 * Carries opaque pointers between threads like a buffered Go channel.
 * Deadlines are absolute fo_clock_ms() times: FO_NO_DEADLINE waits for ever,
 * a deadline already past (e.g. 0) makes the call non-blocking.
 * Ownership: a successful send moves the item into the channel; a successful
 * receive moves it to the caller.
 * Threads: every function except create/destroy is thread-safe. */
#ifndef FO_CHAN_H
#define FO_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"

struct fo_chan; /* Opaque. */

/* Create a channel holding at most 'cap' (>= 1) items.
 * Returns 0 and sets *out, or -EINVAL / -ENOMEM. */
int fo_chan_create(struct fo_chan **out, size_t cap);

/* Free the channel; no thread may still use it. Items still queued are
 * passed to 'drop' (may be NULL). NULL 'ch' is a no-op. */
void fo_chan_destroy(struct fo_chan *ch, void (*drop)(void *item));

/* Queue 'item', waiting while full until 'deadline_ms'.
 * Returns 0, -ETIMEDOUT (still full; -EAGAIN when the call was non-blocking),
 * or -EPIPE once closed; on error the caller keeps 'item'. */
int fo_chan_send(struct fo_chan *ch, void *item, int64_t deadline_ms);

/* Take the oldest item, waiting while empty until 'deadline_ms'.
 * Returns 0, -ETIMEDOUT (-EAGAIN when non-blocking), or -EPIPE when closed
 * and empty (items queued before the close are still delivered). */
int fo_chan_recv(struct fo_chan *ch, void **out, int64_t deadline_ms);

/* Refuse further sends and wake every waiter. Idempotent. */
void fo_chan_close(struct fo_chan *ch);

/* Items queued now (a snapshot). */
size_t fo_chan_len(struct fo_chan *ch);

/* Threads blocked in fo_chan_send or fo_chan_recv now (a snapshot). */
size_t fo_chan_waiters(struct fo_chan *ch);

#endif /* FO_CHAN_H */
