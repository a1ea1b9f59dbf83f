/* pool_held.c -- the calls a fan-out's submitter starts or ends itself (see pool.h).
 *
 * A dependent call is held: the pool does not start it with its fan-out. The submitter,
 * from 'ended' on the worker thread, asks for it to be started or ended once what it waits
 * for has answered (and starts the extra calls of a foreach the same way). What it asks is
 * queued on the job and carried out, in order, once 'ended' has returned, so a call ended
 * here never re-enters the submitter's fan-in while it is draining its channel.
 * Threads: worker thread only. */
#include "pool.h"

#include "alloc.h"
#include "pool_worker.h"

static void enqueue(struct fo_fanout *f, struct fo_call *c, bool start)
{
    struct job *j = f->job;
    if (j->nq == j->q_cap) {
        j->q_cap = j->q_cap ? 2 * j->q_cap : 8;
        j->q = fo_xrealloc(j->q, j->q_cap * sizeof *j->q);
    }
    j->q[j->nq++] = (struct fo__qent){.call = c, .start = start};
    bool own = c >= f->calls && c < f->calls + f->ncalls;
    if (!own)
        j->pending++; /* An extra call: one more to end. */
}

void fo_fanout_start(struct fo_fanout *f, struct fo_call *c)
{
    enqueue(f, c, true);
}

void fo_fanout_finish(struct fo_fanout *f, struct fo_call *c)
{
    enqueue(f, c, false);
}

/* Carry out what 'ended' queued, in order, once it has returned; what a call ended here
 * queues is carried out by the same loop. After the fan-out is decided or its context is
 * done a start ends the call at once instead (the context's outcome, or cancelled). The job
 * stays alive throughout: the call whose end ran 'ended' still holds its count. */
void fo__run_queue(struct fo_worker *w, struct job *j)
{
    if (j->in_queue)
        return;
    j->in_queue = true;
    for (size_t k = 0; k < j->nq; k++) {
        struct fo__qent e = j->q[k];
        if (e.call->held) {
            e.call->held = false;
            j->nheld--;
        }
        if (!e.start) {
            fo__call_end(w, j, e.call);
            continue;
        }
        int err = fo_ctx_err(j->f->ctx);
        if (j->decided || err < 0) {
            e.call->resp = NULL;
            e.call->resp_len = 0;
            fo__call_fail(w, j, e.call, err < 0 ? fo__ctx_outcome(err) : FO_ERR_CANCELLED, 0);
            continue;
        }
        fo__call_begin(w, j, e.call);
    }
    j->nq = 0;
    j->in_queue = false;
}
