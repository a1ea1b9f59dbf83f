/* pool_gate.h -- a worker's admission of transfers per backend host: at most 'per_host' of
 * them in its curl multi at once for one scheme://host:port, the others waiting in order of
 * arrival (max_host_connections; pool_gate.c says why curl's own cap is not used).
 *
 * Owns: its table of hosts and the wait-queue links of the transfers it holds (the gate_*
 * fields of struct fo_xfer). Borrows: the transfers; the worker starts and ends them.
 * Threads: the owning worker thread only. */
#ifndef FO_POOL_GATE_H
#define FO_POOL_GATE_H

#include <stdbool.h>

struct fo_gate;
struct fo_xfer;

/* A gate letting 'per_host' transfers per host through at once; 0 lets every transfer
 * through with no bookkeeping. Aborts when out of memory. */
struct fo_gate *fo_gate_new(unsigned per_host);

/* Free the gate and its table (the transfers stay the caller's). NULL is a no-op. */
void fo_gate_free(struct fo_gate *g);

/* 'x' asks to start on the host of 'url' (borrowed, read here only): true when it may start
 * now (it holds a slot until fo_gate_leave), false when it waits in the host's queue. */
bool fo_gate_enter(struct fo_gate *g, struct fo_xfer *x, const char *url);

/* 'x' is done with the gate: its slot is given back (a waiting transfer of the host becomes
 * ready, see fo_gate_next), or it leaves the queue it waited in. A transfer that never
 * entered (or already left) is a no-op. */
void fo_gate_leave(struct fo_gate *g, struct fo_xfer *x);

/* True while 'x' waits in a queue (entered, not yet handed out by fo_gate_next). */
bool fo_gate_waiting(const struct fo_xfer *x);

/* The longest-waiting transfer of a host with a free slot, now holding that slot (the caller
 * starts it, or calls fo_gate_leave); NULL when none is ready. */
struct fo_xfer *fo_gate_next(struct fo_gate *g);

#endif /* FO_POOL_GATE_H */
