/* request.h -- one client request's life: route, fan out, fan in, answer.
 *
 * The HTTP front (server.c) owns the daemon and the connections; for each
 * request it reads the head and the body and hands over here: the route
 * (operations probes, the ad-hoc batch, a configured endpoint), its plan
 * (plan.h), the admission against the budgets, the suspend and the submit
 * to the worker pool. The fan-in is consumed as results arrive, on the
 * worker thread (the pipeline, metrics, the tally, fail fast); once the pool
 * has resumed the connection come the status decision and the merged answer
 * (answer.c: responses and the access log).
 * Ownership: a request holds one reference on its runtime; the front's
 * shared state (struct fo_front) outlives every request.
 * Threads: every function runs on the MHD thread that runs the request;
 * the fan-in consumer writes only the tally and the calls' results, on the
 * worker thread between submit and resume (MHD's resume orders the two). */
#ifndef FO_REQUEST_H
#define FO_REQUEST_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "batch.h"
#include "budget.h"
#include "buf.h"
#include "chan.h"
#include "conns.h"
#include "cors.h"
#include "forward.h"
#include "ctx.h"
#include "metrics.h"
#include "plan.h"
#include "pool.h"
#include "runtime.h"
#include "tmpl.h"

struct fo_graph; /* graph.h */

/* What requests share with the front that serves them. Owned by the server;
 * the atomics are the only fields written after start. */
struct fo_front {
    struct fo_pool *pool;        /* Borrowed. */
    struct fo_metrics *metrics;  /* Borrowed. */
    struct fo_budget *budget;    /* Borrowed: buffered bytes, checked at admission. */
    struct fo_ctx *root;         /* Parent of every request context; cancelled on stop. */
    struct fo_conns *conns;      /* Open client connections. */
    unsigned max_json_depth;     /* The start-up config's: one nesting cap for every JSON read
                                    (batch bodies as backend bodies), reload or not. */
    atomic_long live;            /* Requests between first call and completion. */
    atomic_long waiting;         /* Requests suspended on the pool (or about to be). Raised
                                    before 'draining' is read, so that once the stop has
                                    set 'draining' and then seen zero here, no request
                                    is ever suspended again (seq_cst on both sides). */
    atomic_long calls_inflight;  /* Backend calls of suspended requests. */
    atomic_bool draining;        /* /ready answers 503; answers say Connection: close;
                                    no request is suspended. */
    atomic_uint_fast64_t id_seq; /* Request id counter. */
    uint32_t id_prefix;          /* Random per process. */
};

enum req_state {
    REQ_READ,   /* Headers seen; collecting the body. */
    REQ_WAIT,   /* Suspended while the pool runs the calls. */
    REQ_FAILED, /* Suspended, then the submit failed: answer 503 when resumed. */
    REQ_DONE,   /* Answer queued. */
};

/* What the fan-in has seen of a request's calls, for its status. */
struct fo_tally {
    size_t in;             /* Calls taken off the fan-in channel. */
    size_t ok;             /* ... that came through the pipeline. */
    ssize_t first_failed;  /* Index (plan order) of the first that failed, or -1. */
    ssize_t req_failed;    /* ... of the first required that failed by itself, or -1. */
    ssize_t req_cancelled; /* ... of the first required cancelled for another, or -1. */
    bool any_timeout;      /* A call timed out. */
    size_t stale;          /* ... of 'ok', answered with a stale value (resil.h). */
    size_t partial;        /* ... of 'ok', a foreach some of whose items failed. */
};

/* One client request. From fo_request_new in the first handler call; freed
 * by fo_request_end. Touched by one MHD thread at a time, and by the pool
 * only between submit and resume. */
struct request {
    struct fo_front *front;      /* Borrowed. */
    struct fo_runtime *rt;       /* One reference, dropped by fo_request_end. */
    struct MHD_Connection *conn; /* Borrowed; valid until on_completed. */
    enum req_state state;
    int64_t start_us;       /* First handler call. */
    struct fo_buf body;     /* Request body, capped at max_body_bytes. */
    bool probe;             /* health/ready/metrics: no access log by default. */
    bool close;             /* Framing is in doubt: close after the answer. */
    struct fo_conn_rec *cr; /* The connection's record (conns.h), or NULL. */
    char id[72];            /* Request id: the client's X-Request-Id or ours. */
    const char *method;     /* Borrowed from MHD (valid until completion). */
    const char *url;        /* Borrowed from MHD. */

    size_t ep_index;                   /* Which endpoint, when 'ep' is set. */
    const struct fo_endpoint_conf *ep; /* Configured endpoint, or NULL. */
    struct fo_batch *batch;            /* Ad-hoc batch, from fo_batch_parse. */
    struct fo_params params;           /* Path parameters (endpoint requests). */
    bool report;                       /* Add "_fanout". */

    struct fo_ctx *ctx;       /* Deadline and cancellation, child of the root. */
    struct fo_chan *fanin;    /* Results arrive here, one per call. */
    struct fo_fanout fan;     /* What the pool runs. */
    struct fo_plan plan;      /* The calls, in config (or body) order. */
    struct fo_graph *graph;   /* Its dependent calls while they run (graph.h), or NULL. */
    struct fo_tmpl_vals vals; /* The endpoint's placeholder values (dependents use them). */
    struct fo_fwd_client fwd; /* The client, for what dependents forward. */
    char fwd_addr[48];        /* Its address text. */
    size_t ncalls;            /* Calls made: plan.n once launched (0 if refused). */
    struct fo_tally tally;    /* Fan-in: written by the worker, read after resume. */

    struct fo_auth_result auth; /* Who called, once the endpoint's auth passed. */
    int auth_failed;            /* enum fo_auth_reason of a refusal, or -1. */
    char www_auth[160];         /* WWW-Authenticate of the answer, or "". */
    const struct fo_cors *cors; /* The policy the answer follows (config's), or NULL. */
    bool preflight;             /* Answered as a CORS preflight (its headers are set). */

    bool waiting;          /* Counted in front->waiting and admitted (calls budget). */
    unsigned status;       /* The answer's status, once queued. */
    bool complete;         /* Every call succeeded. */
    int64_t retry_after_s; /* Retry-After of a 503, 0 = the default (1). */
};

/* A new request on 'c' (MHD's method and url strings stay valid until it
 * ends) served with 'rt' (one reference moves to the request). Aborts when
 * out of memory, like every small control structure. */
struct request *fo_request_new(struct fo_front *front, struct fo_runtime *rt,
                               struct MHD_Connection *c, const char *method, const char *url);

/* The whole request has arrived (head and body): answer it, or suspend it
 * for the pool. */
enum MHD_Result fo_request_route(struct request *r, const char *url, const char *method);

/* The pool resumed the connection: fan in, decide, answer (finish.c). */
enum MHD_Result fo_request_finish(struct request *r);

/* Health, readiness and metrics (request_ops.c): true when 'url' is one of the probe paths,
 * with the answer queued in *res (405 for a method other than GET or HEAD). */
bool fo__request_probe(struct request *r, const char *url, const char *method,
                       enum MHD_Result *res);

/* The request no longer waits on the pool: give back its counts (request.c). */
void fo__request_unwait(struct request *r);

/* Queue {"error":{"code","message"}} with 'status'. */
enum MHD_Result fo_request_error(struct request *r, unsigned status, const char *code,
                                 const char *message, const char *allow);

/* Answer while the body is still arriving (then return MHD_NO: MHD closes). */
void fo_request_refuse_mid_body(struct request *r, unsigned status, const char *reason,
                                const char *code, const char *message);

/* MHD is done with the request ('toe' says how): count, log and free it. */
void fo_request_end(struct request *r, enum MHD_RequestTerminationCode toe);

/* ---- Shared by request.c and answer.c only (the answer side). ---- */

/* The series the request counts into (its endpoint, the batch, or "other"). */
struct fo_endpoint_stats *fo__request_stats(const struct request *r);

/* Queue 'resp' with 'status' and fanout's headers ('complete' and 'allow'
 * may be NULL); counts the request. The response is destroyed here. */
enum MHD_Result fo__answer(struct request *r, unsigned status, struct MHD_Response *resp,
                           const char *complete, const char *allow);

/* The same for a JSON body from malloc() (ownership moves here, also on
 * error), and for a static text body. */
enum MHD_Result fo__answer_json(struct request *r, unsigned status, char *body, size_t len,
                                const char *complete, const char *allow);
enum MHD_Result fo__answer_text(struct request *r, unsigned status, const char *type,
                                const char *text);

/* The same for any body from malloc() with Content-Type 'type' (NULL: none). */
enum MHD_Result fo__answer_bytes(struct request *r, unsigned status, char *body, size_t len,
                                 const char *type, const char *complete, const char *allow);

/* 503 "draining" with Connection: close. */
enum MHD_Result fo__answer_draining(struct request *r);

/* The access log line of an ended request. */
void fo__access_log(struct request *r, enum MHD_RequestTerminationCode toe);

#endif /* FO_REQUEST_H */
