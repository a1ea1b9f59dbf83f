/* pool_worker.h -- the worker pool's insides, shared by pool.c, pool_worker.c, pool_sock.c,
 * pool_held.c and attempts.c only.
 *
 * pool.c sets the workers up, hands them fan-outs and sums their counters; pool_worker.c runs
 * one (epoll loop, curl multi, jobs, the deadline heap, fail fast);
 * pool_sock.c keeps curl's sockets in the worker's epoll set and hands their events to curl;
 * pool_gate.c holds the transfers past max_host_connections until a slot of their host frees;
 * pool_held.c the calls the submitter starts or ends itself (dependent calls);
 * attempts.c runs the calls that have a resilience policy as sequences of attempts (retries,
 * hedges, their timers). All work on the structures below, which belong to one worker
 * thread each; nothing here may be touched from another thread except the atomics marked
 * so. Not part of the pool's API (pool.h).
 * Threads: worker thread only, unless a field says otherwise. */
#ifndef FO_POOL_WORKER_H
#define FO_POOL_WORKER_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "socktab.h"
#include "timerheap.h"
#include "transfer.h"

enum watch_kind { WATCH_WAKE };

/* First member of everything an epoll event can point at. */
struct watch {
    enum watch_kind kind;
    int fd;
};

struct job;
struct fo_worker;

/* Which cap set an attempt's curl timeout (its timeout is "own" unless the context's). */
enum { FO__LIM_CTX, FO__LIM_CALL, FO__LIM_TRY };

/* What an attempt is to its call. */
enum { FO__TRY_PRIMARY, FO__TRY_RETRY, FO__TRY_HEDGE };

/* One call with a resilience policy while its attempts run (attempts.c). */
struct run {
    struct fo_timer timer;  /* Backoff or hedge delay (fo_clock_us), in w->timers when armed. */
    struct job *job;        /* Its job. */
    struct fo_call *call;   /* Borrowed. */
    int64_t start_us;       /* When the call started. */
    int64_t end_us;         /* Its own timeout_ms from start_us, or INT64_MAX. */
    uint64_t tried;         /* Hosts tried (bit i: hosts[i]). */
    unsigned retries;       /* Retries granted. */
    unsigned live;          /* Attempts running. */
    unsigned hedge_attempt; /* The hedge's attempt number, 0 = none sent. */
    bool active;            /* The call runs as a run (else as one plain transfer). */
    bool ended;             /* Its result was sent on. */
    bool backoff;           /* The timer is a backoff; a retry starts when it fires. */
    bool hedge_armed;       /* The timer is the hedge delay. */
    bool slot_held;         /* A retry budget slot is held for the coming retry. */
};

/* A call the submitter asked to start or to end, from 'ended' (pool.h). */
struct fo__qent {
    struct fo_call *call;
    bool start; /* Start it; else end it as the submitter set it. */
};

/* One submitted fan-out while a worker runs it. */
struct job {
    struct fo_fanout *f;        /* Borrowed until 'done'. */
    struct fo_worker *w;        /* Its worker. */
    struct fo_xfer_group group; /* What its transfers share (deadline, byte budget). */
    struct fo_xfer *xfers;      /* Running transfers. */
    size_t pending;             /* Calls not ended yet. */
    struct job *prev, *next;    /* Worker's running list, or the free list. */
    struct fo_timer deadline;   /* The context's deadline (fo_clock_us() time), in the
                                   worker's heap while it has one. */
    bool decided;               /* 'ended' said no more answers are needed. */
    struct run *runs;           /* From realloc(): one per call when any has a policy, or
                                   NULL; kept with the recycled job. */
    size_t runs_cap;            /* Capacity of 'runs'. */
    size_t nruns;               /* Runs in use: ncalls when any call has a policy, else 0. */
    size_t nheld;               /* Held calls neither started nor ended yet. */
    struct fo__qent *q;         /* From realloc(): what 'ended' queued; kept with the job. */
    size_t nq, q_cap;
    bool in_queue; /* run_queue is carrying the queue out. */
};

struct fo_worker {
    struct fo_pool *pool; /* Back pointer, for options. */
    pthread_t thread;
    int epfd;                 /* epoll set: wake fd, curl sockets, client sockets. */
    struct watch wake;        /* WATCH_WAKE on an eventfd. */
    CURLM *multi;             /* All transfers of this worker. */
    struct fo_gate *gate;     /* max_host_connections: who may be in 'multi' (pool_gate.h). */
    struct fo_chan *inbox;    /* Submitted fan-outs (struct fo_fanout *). */
    struct fo_socktab *socks; /* Every socket this worker's curl opened (transfer.c). */
    struct fo_xfer_env env;   /* What its transfers share. */
    int64_t timer_due_us;     /* When curl wants CURL_SOCKET_TIMEOUT (fo_clock_us), -1 = never. */
    struct job *running;      /* Jobs in flight (doubly linked). */
    struct fo_timerheap deadlines; /* Running jobs with a deadline (job.deadline). */
    struct fo_timerheap timers;    /* Armed run timers (run.timer): backoffs, hedge delays. */
    uint64_t rng;                  /* xorshift state for backoff jitter. */
    struct job *free_jobs;         /* Recycled jobs (via next). */
    struct fo_xfer *free_xfers;    /* Recycled transfers with their easy handles (via next). */
    size_t nfree_xfers;            /* Length of free_xfers. */
    bool pwait2;                   /* epoll_pwait2 is available (until ENOSYS says not). */
    atomic_bool stop;              /* Set by fo_pool_destroy. */
    atomic_bool sweep;             /* Set by fo_pool_sweep. */
    atomic_bool wake_pending;      /* The wake fd was written and not drained yet. */
    /* Statistics: written by the worker, read by anyone (relaxed). */
    atomic_uint_fast64_t n_fanouts, n_calls, n_connects, n_running;
    atomic_uint_fast64_t n_dirty;   /* Connections discarded for unread input (on_prereq). */
    atomic_uint_fast64_t n_waiting; /* Of n_running: waiting at the gate, not sent yet. */
};

/* pool_sock.c: curl's socket and timer callbacks (CURLMOPT_SOCKETFUNCTION with
 * the worker as data, CURLMOPT_TIMERFUNCTION likewise). */
int fo__on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp);
int fo__on_timer(CURLM *multi, long timeout_ms, void *arg);

/* True when an epoll event's data names a curl socket (else it is a pointer). */
bool fo__sock_is(uint64_t data);

/* A curl socket's epoll event: handed to curl (true; finished transfers are
 * then waiting in curl's queue), or the socket taken out of the set because
 * curl no longer watches it (false). */
bool fo__sock_event(struct fo_worker *w, uint64_t data, uint32_t events);

/* After each epoll wait, before any of its events is acted on: a new poll
 * generation, and input noted on the sockets curl no longer watches (the
 * pre-request check of a reused connection reads it, socktab.h). */
struct epoll_event;
void fo__sock_polled(struct fo_worker *w, const struct epoll_event *ev, int n);

/* pool_worker.c: the worker thread's body (pthread_create with the worker as argument); it
 * returns once 'stop' is set and the wake fd written. */
void *fo__worker_main(void *arg);

/* ---- pool_worker.c, for attempts.c and pool_held.c ---- */

/* A transfer from the worker's free list (or a new one) / back to it. The
 * get prefers one that last ran 'url' (borrowed): its parsed URL is kept. */

struct fo_xfer *fo__xfer_get(struct fo_worker *w, const char *url);
void fo__xfer_put(struct fo_worker *w, struct fo_xfer *x);

/* Into the multi, or into the gate's queue for its host (it starts from fo__gate_admit):
 * 0, or -ENOMEM (nothing to undo but the transfer's own state). */
int fo__xfer_add(struct fo_worker *w, struct fo_xfer *x);

/* Out of the multi (which closes its connection when it runs) or out of the gate's queue,
 * its gate slot given back. Returns true when it was in the multi. */
bool fo__xfer_remove(struct fo_worker *w, struct fo_xfer *x);

/* Hand an ended call to the fan-in ('ended' may decide the job) and release its count.
 * Returns false when that completed the job: it must not be touched again. */
bool fo__call_end(struct fo_worker *w, struct job *j, struct fo_call *call);

/* Start one call of 'j' (a transfer, a run, or its end at once), or end it without one. */
void fo__call_begin(struct fo_worker *w, struct job *j, struct fo_call *call);
void fo__call_fail(struct fo_worker *w, struct job *j, struct fo_call *call,
                   enum fo_outcome outcome, double ms);

/* ---- pool_held.c, for pool_worker.c ---- */

/* Carry out what 'ended' queued (fo_fanout_start, fo_fanout_finish); a no-op when nested. */
void fo__run_queue(struct fo_worker *w, struct job *j);

/* The submitter needs no more answers: cancel the context and abort the rest. */
void fo__decide(struct fo_worker *w, struct job *j);

/* Add the connections a transfer opened to the worker's count. */
void fo__count_connects(struct fo_worker *w, struct fo_xfer *x);

/* Outcome for calls cut short because the context is done. */
enum fo_outcome fo__ctx_outcome(int err);

/* ---- attempts.c, for pool_worker.c ---- */

/* Start call 'i' of 'j' (it has a policy) as a run. */
void fo__run_start(struct fo_worker *w, struct job *j, size_t i);

/* An attempt of a run has ended in curl with 'res' (its handle is out of the multi). */
void fo__run_xfer_done(struct fo_worker *w, struct job *j, struct fo_xfer *x, CURLcode res);

/* A run's timer (taken out of w->timers) is due. */
void fo__run_timer(struct fo_worker *w, struct fo_timer *t);

/* An aborted attempt (its handle already out of the multi, the transfer out of the job's
 * list): no breaker result, its retry slot back, recycled. */
void fo__attempt_drop(struct fo_worker *w, struct fo_xfer *x);

/* End a run with 'outcome' and no answer. */
void fo__run_fail(struct fo_worker *w, struct job *j, struct run *r, enum fo_outcome outcome);

#endif /* FO_POOL_WORKER_H */
