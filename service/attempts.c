/* attempts.c -- the attempts of a call with a resilience policy, on its worker.
 *
 * DESIGN
 * A call with a policy (call->resil, resil.h) runs as a 'run': a sequence of attempts, each
 * one transfer, of which at most two run at once (the attempt and its hedge). The policies
 * decide (resil.c and the modules behind it); this file does the mechanics on the worker
 * that runs the call's job (pool_worker.h), so nothing here is shared between threads:
 *  - an attempt's curl timeout is the least of the time left on the context, on the call's
 *    own timeout_ms (which covers all its attempts) and retry.try_timeout_ms; which one it
 *    was tells a try timeout (retried on "timeout") from the call's own (not retried, but
 *    counted by the breaker) and from the request deadline (neither);
 *  - a backoff or a hedge delay is a timer in the worker's second heap ('timers'), never a
 *    sleep; one timer per run, as a run is never waiting for both;
 *  - the first successful (2xx) answer ends the call and aborts the other attempt (removing
 *    it from the multi closes its connection); a failed one waits for the other, or else is
 *    retried (policy, time left, Retry-After, the retry budget) or ends the call;
 *  - an attempt that did not give the call its result is counted for its breaker here; the
 *    one that did is counted by the fan-in once the pipeline has judged it (so an invalid
 *    JSON body counts too); an aborted attempt counts for nothing but frees a probe slot;
 *  - a run whose attempts were all aborted, or that waits for a timer when its job is
 *    aborted, ends with the abort's outcome (pool_worker.c's abort_job). */
#include "pool_worker.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "hosts.h"
#include "resil.h"
#include "resil_conf.h"

static struct run *run_of(struct fo_timer *t)
{
    return (struct run *)((char *)t - offsetof(struct run, timer));
}

static uint64_t next_random(struct fo_worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

static bool idempotent(const struct fo_call *call)
{
    const char *m = call->method;
    return call->rconf->idempotent || !m || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* Time left for the call now, in us: the context's and its own cap's. */
static int64_t run_left_us(const struct job *j, const struct run *r, int64_t now_us)
{
    int64_t left = fo_ctx_remaining_ms(j->f->ctx, now_us / 1000);
    left = left > INT64_MAX / 1000 ? INT64_MAX : left * 1000;
    if (r->end_us != INT64_MAX && r->end_us - now_us < left)
        left = r->end_us - now_us;
    return left;
}

static void timer_arm(struct fo_worker *w, struct run *r, int64_t due_us)
{
    fo_timerheap_remove(&w->timers, &r->timer);
    r->timer.due = due_us;
    fo_timerheap_push(&w->timers, &r->timer);
}

/* Take a transfer of a run out of the job's list and the run (its handle is
 * already out of the multi): no counted result for its breaker, its retry
 * slot given back, the transfer recycled. */
void fo__attempt_drop(struct fo_worker *w, struct fo_xfer *x)
{
    struct run *r = x->run;
    fo_resil_attempt_end(r->call, x->host, x->probe, -1, fo_clock_us());
    if (x->retry_slot)
        fo_retry_budget_put(fo_resil_budget(r->call));
    r->live--;
    fo__xfer_put(w, x);
}

/* Unlink 'x' from its job's running list. */
static void xfer_unlink(struct job *j, struct fo_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        j->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Start one attempt of run 'r'. 'slot' says it holds a retry budget slot
 * (which moves to the transfer, or is given back on failure). Returns 0, or
 * the outcome that stops it (nothing started). */
static enum fo_outcome attempt_start(struct fo_worker *w, struct job *j, struct run *r, int kind,
                                     bool slot)
{
    struct fo_call *call = r->call;
    struct fo_retry_budget *budget = fo_resil_budget(call);
    enum fo_outcome stop = FO_OK;
    int err = fo_ctx_err(j->f->ctx);
    int64_t now_us = fo_clock_us();
    int64_t left_us = run_left_us(j, r, now_us);
    int limit = FO__LIM_CTX;
    if (r->end_us != INT64_MAX && r->end_us - now_us <= left_us)
        limit = FO__LIM_CALL;
    int64_t left = left_us / 1000;
    int64_t try_ms = call->rconf->retry.on ? call->rconf->retry.try_timeout_ms : 0;
    if (try_ms > 0 && try_ms < left) {
        left = try_ms;
        limit = FO__LIM_TRY;
    }
    if (left > FO_MAX_TIMEOUT_MS)
        left = FO_MAX_TIMEOUT_MS;
    if (err < 0)
        stop = fo__ctx_outcome(err);
    else if (left <= 0)
        stop = FO_ERR_TIMEOUT;
    int host = -1;
    bool probe = false;
    if (stop == FO_OK) {
        enum fo_resil_gate g =
            fo_resil_attempt_begin(call, r->tried, kind == FO__TRY_PRIMARY, now_us, &host, &probe);
        if (g == FO_RESIL_CIRCUIT_OPEN)
            stop = FO_ERR_CIRCUIT_OPEN;
        else if (g == FO_RESIL_RATE_LIMITED)
            stop = FO_ERR_RATE_LIMITED;
    }
    if (stop != FO_OK) {
        if (slot)
            fo_retry_budget_put(budget);
        return stop;
    }
    char *host_url = NULL; /* This attempt's URL on a host of its own (hosts). */
    if (host >= 0) {
        r->tried |= UINT64_C(1) << host;
        host_url = fo_hosts_url(call->rconf->hosts[host], call->url);
    }
    struct fo_xfer *x = fo__xfer_get(w, host_url ? host_url : call->url);
    x->run = r;
    x->host = host;
    x->probe = probe;
    x->retry_slot = slot;
    x->limit = limit;
    x->attempt = call->tries.attempts + 1;
    x->url = host_url;
    if ((host >= 0 && !x->url) || fo_xfer_prepare(x, &j->group, call, left) < 0 ||
        fo__xfer_add(w, x) < 0) {
        fo_resil_attempt_end(call, host, probe, -1, now_us);
        if (slot)
            fo_retry_budget_put(budget);
        fo__xfer_put(w, x);
        return FO_ERR_CONNECT;
    }
    call->tries.attempts++;
    atomic_fetch_add_explicit(&w->n_running, 1, memory_order_relaxed);
    x->prev = NULL;
    x->next = j->xfers;
    if (j->xfers)
        j->xfers->prev = x;
    j->xfers = x;
    r->live++;
    if (kind == FO__TRY_PRIMARY && idempotent(call)) {
        int64_t delay = fo_resil_hedge_delay_us(call, now_us);
        if (delay >= 0 && delay < left * 1000) {
            r->hedge_armed = true;
            timer_arm(w, r, now_us + delay);
        }
    }
    return FO_OK;
}

/* The call's result is final: send it on. Returns false when that completed the job (calls
 * its end released may have ended too): the job must not be touched again. */
static bool run_end(struct fo_worker *w, struct job *j, struct run *r)
{
    struct fo_call *call = r->call;
    fo_timerheap_remove(&w->timers, &r->timer);
    r->backoff = r->hedge_armed = false;
    if (r->slot_held)
        fo_retry_budget_put(fo_resil_budget(call));
    r->slot_held = false;
    r->ended = true;
    call->ms = (double)(fo_clock_us() - r->start_us) / 1000.0;
    fo_resil_call_end(call);
    return fo__call_end(w, j, call);
}

/* End a run with 'outcome' and no answer (it could not start, or was aborted). */
void fo__run_fail(struct fo_worker *w, struct job *j, struct run *r, enum fo_outcome outcome)
{
    struct fo_call *call = r->call;
    if (call->resp) {
        j->group.bytes -= call->resp_len;
        fo_call_drop_body(call);
    }
    call->outcome = outcome;
    call->status = 0;
    call->no_fds = false;
    call->tries.winner = 0;
    (void)run_end(w, j, r);
}

/* Abort the other attempts of 'r' (the first successful answer won). */
static void run_abort_others(struct fo_worker *w, struct job *j, struct run *r)
{
    struct fo_xfer *x = j->xfers;
    while (x && r->live > 0) {
        struct fo_xfer *next = x->next;
        if (x->run == r) {
            if (fo__xfer_remove(w, x)) /* Closes its connection. */
                fo__count_connects(w, x);
            atomic_fetch_sub_explicit(&w->n_running, 1, memory_order_relaxed);
            xfer_unlink(j, x);
            fo__attempt_drop(w, x);
        }
        x = next;
    }
}

/* After an event ended a run's call: fail fast if that decided the job (still running). */
static void run_after_end(struct fo_worker *w, struct job *j, bool alive)
{
    if (alive && j->decided)
        fo__decide(w, j);
}

/* An attempt of a run has ended in curl. */
void fo__run_xfer_done(struct fo_worker *w, struct job *j, struct fo_xfer *x, CURLcode res)
{
    struct run *r = x->run;
    struct fo_call *call = r->call;
    const struct fo_resil_conf *rc = call->rconf;
    if (call->resp) { /* A failed attempt's answer kept while this one ran. */
        j->group.bytes -= call->resp_len;
        fo_call_drop_body(call);
    }
    fo_xfer_classify(x, res);
    int64_t now = fo_clock_us();
    bool own_timeout = call->outcome == FO_ERR_TIMEOUT && x->limit != FO__LIM_CTX;
    bool try_timeout = call->outcome == FO_ERR_TIMEOUT && x->limit == FO__LIM_TRY;
    if (call->outcome == FO_OK)
        fo_resil_latency(call, now - x->start_us, now);
    int64_t retry_after = -1;
    if (call->outcome == FO_OK && (call->status == 429 || call->status == 503))
        retry_after = fo_xfer_retry_after_ms(x);
    int host = x->host;
    bool probe = x->probe;
    unsigned attempt = x->attempt;
    if (x->retry_slot)
        fo_retry_budget_put(fo_resil_budget(call));
    xfer_unlink(j, x);
    r->live--;
    fo__xfer_put(w, x);

    bool success = call->outcome == FO_OK && call->status >= 200 && call->status <= 299;
    int verdict = fo_resil_verdict(call->outcome, call->status, own_timeout);
    if (!success && r->live > 0) {
        /* The other attempt may still answer well: this one is not the result. */
        fo_resil_attempt_end(call, host, probe, verdict, now);
        return;
    }
    if (success) {
        run_abort_others(w, j, r);
        if (attempt == r->hedge_attempt)
            fo_resil_count(call, FO_RC_HEDGE_WON);
    }
    int reason = -1;
    int64_t left_us = run_left_us(j, r, now);
    if (!success && rc->retry.on && idempotent(call) && r->retries + 1 < rc->retry.attempts)
        reason = fo_retry_wanted(&rc->retry, call->outcome, call->status, try_timeout);
    if (reason >= 0 && (left_us < 2000 || (retry_after >= 0 && retry_after * 1000 > left_us)))
        reason = -1; /* No time for another attempt, or the backend asks for longer. */
    if (reason >= 0 && !fo_retry_budget_take(fo_resil_budget(call))) {
        call->tries.budget_exhausted = true;
        fo_resil_count(call, FO_RC_BUDGET_REFUSED);
        reason = -1;
    }
    call->tries.host = host;
    if (reason < 0) {
        call->tries.winner = attempt;
        call->tries.probe = probe;
        call->tries.own_timeout = own_timeout;
        run_after_end(w, j, run_end(w, j, r));
        return;
    }
    /* Retry: this attempt is not the result. */
    fo_resil_attempt_end(call, host, probe, verdict, now);
    fo_resil_count(call, (enum fo_resil_count)(FO_RC_RETRY_CONNECT + reason));
    r->retries++;
    call->tries.winner = 0; /* Unless a retry starts, the result is this one, counted. */
    if (call->resp) {
        j->group.bytes -= call->resp_len;
        fo_call_drop_body(call);
    }
    int64_t wait = fo_retry_backoff_us(&rc->retry, r->retries, next_random(w), left_us);
    if (retry_after * 1000 > wait)
        wait = retry_after * 1000;
    r->hedge_armed = false;
    r->backoff = true;
    r->slot_held = true;
    timer_arm(w, r, now + wait);
}

/* A run's timer is due: start its retry, or its hedge. */
void fo__run_timer(struct fo_worker *w, struct fo_timer *t)
{
    struct run *r = run_of(t);
    struct job *j = r->job;
    struct fo_call *call = r->call;
    if (r->backoff) {
        r->backoff = false;
        r->slot_held = false; /* Moves to the attempt (or is given back). */
        if (attempt_start(w, j, r, FO__TRY_RETRY, true) != FO_OK)
            run_after_end(w, j, run_end(w, j, r)); /* The last attempt's result stands. */
        return;
    }
    if (!r->hedge_armed)
        return;
    r->hedge_armed = false;
    if (r->live != 1 || r->ended || !fo_resil_hedge_take(call))
        return;
    unsigned next = call->tries.attempts + 1;
    if (attempt_start(w, j, r, FO__TRY_HEDGE, false) == FO_OK) {
        r->hedge_attempt = next;
        call->tries.hedged = true;
        fo_resil_count(call, FO_RC_HEDGE_SENT);
    }
}

/* Start call 'i' of 'j' as a run. */
void fo__run_start(struct fo_worker *w, struct job *j, size_t i)
{
    struct fo_call *call = &j->f->calls[i];
    struct run *r = &j->runs[i];
    memset(r, 0, sizeof *r);
    r->timer.index = FO_TIMER_NONE;
    r->job = j;
    r->call = call;
    r->active = true;
    r->start_us = fo_clock_us();
    r->end_us = call->timeout_ms > 0 ? r->start_us + call->timeout_ms * 1000 : INT64_MAX;
    fo_resil_call_begin(call);
    enum fo_outcome stop = attempt_start(w, j, r, FO__TRY_PRIMARY, false);
    if (stop != FO_OK)
        fo__run_fail(w, j, r, stop);
}
