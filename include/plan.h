/* plan.h -- a request as a plan: the calls it makes, each with what it needs.
 *
 * A request becomes a plan once, from a configured endpoint or from a batch
 * body: an array of calls in the order the config (or the body) lists them,
 * each with its name, method, URL, headers, body, timeout, whether it is
 * required or merged, and the metric series it counts into. Everything after
 * reads the plan and nothing else: the worker pool runs the calls and writes
 * each one's transport result into it, the pipeline (pipeline.h) judges each
 * result as it comes in, and merge writes the answer from it. There is no
 * second copy of a call or of its result.
 * Ownership: a plan owns its calls array and the URLs and header lines it
 * expanded (placeholders, forwarded fields); it borrows names, methods,
 * configured headers and bodies from the config, the batch or the client's
 * request, which outlive the plan. Result bodies belong to their call, and so
 * do the URL, lines and body a held call is built with once its dependencies
 * answered (call->built, freed with the call).
 * Threads: built and freed by the request's MHD thread; the pool and the
 * pipeline write a call's result fields on the worker thread between submit
 * and resume. */
#ifndef FO_PLAN_H
#define FO_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "json.h"
#include "json.h"
#include "outcome.h"

struct fo_backend_stats; /* metrics.h */
struct fo_resil_backend; /* resil.h */
struct fo_resil_conf;    /* resil_conf.h */
struct fo_backend_tls;   /* config.h */
struct fo_endpoint_conf; /* config.h */
struct fo_batch;         /* batch.h */
struct fo_params;        /* tmpl.h */
struct fo_shape;         /* shape.h */
struct fo_jtree;         /* jtree.h */
struct fo_tmpl_vals;     /* tmpl.h */
struct fo_fwd_client;    /* forward.h */
struct fo_dep;           /* deps.h */

/* What the attempts of a call with a resilience policy did (resil.h): written by the pool,
 * and by the fan-in for 'stale'. All zero for a call without one. */
struct fo_call_tries {
    unsigned attempts;     /* Attempts started, hedges included. */
    unsigned winner;       /* Which attempt (1-based) gave the result; 0 = none started. */
    int host;              /* Index in hosts of that attempt, -1 = none (or no hosts). */
    bool hedged;           /* A hedge was sent. */
    bool budget_exhausted; /* A retry was refused by the retry budget. */
    bool probe;            /* The result's attempt was a breaker probe. */
    bool own_timeout;      /* FO_ERR_TIMEOUT came from its own caps, not the deadline. */
    bool stale;            /* The value is a stale one (the call failed). */
    int64_t age_ms;        /* ... that old. */
};

/* One backend call of a plan. */
struct fo_call {
    /* The plan: set when the plan is built, read-only after. */
    const char *name;           /* Borrowed: the key of its result. */
    const char *url;            /* Absolute http(s) URL (borrowed, or the plan's). */
    const char *method;         /* Borrowed: NULL means GET. */
    const char *const *headers; /* Borrowed: nheaders "Name: value" lines. */
    size_t nheaders;
    const char *body; /* Borrowed: request body or NULL. */
    size_t body_len;
    const char *body_type;             /* Borrowed: the body's Content-Type, "" for none;
                                          NULL: application/json. */
    bool refused;                      /* Its request could not be built safely (a value
                                          with CR/LF in a header, ...): never sent, it
                                          ends FO_ERR_SHAPE. */
    int64_t timeout_ms;                /* Own cap; 0 = the request's deadline only. */
    bool required;                     /* Its failure fails the request (fail fast). */
    bool merge;                        /* Lift an object's members into the answer. */
    struct fo_backend_stats *stats;    /* Borrowed: the series it counts into. */
    const struct fo_shape *shape;      /* Borrowed: its shaping keys, or NULL when it has none. */
    struct fo_resil_backend *resil;    /* Borrowed: its resilience state, or NULL (none). */
    const struct fo_resil_conf *rconf; /* Borrowed: its resilience settings (with 'resil'). */
    /* Borrowed: its TLS options (for https; the config's), never NULL. */
    const struct fo_backend_tls *tls;
    const struct fo_dep *dep; /* Borrowed: what it waits for (deps.h), or NULL. */
    bool held;                /* The pool waits for the fan-in to start or end it (pool.h):
                                 it has dependencies, or is a foreach. */
    bool gathered;            /* A foreach's result, made by the fan-in from its items'. */
    unsigned items_failed;    /* A foreach's items that failed. */
    char *built;              /* From malloc(): the URL, header lines and body of a call
                                 made once its dependencies answered, or NULL. */
    const char **built_hdrs;  /* From malloc(): its line pointers into 'built', or NULL. */
    int64_t start_us;         /* When the pool started it (fo_clock_us); 0 = never. */
    long start_ms;            /* ... in ms after the request began (the fan-in's); -1 = never. */

    /* The result: written by the pool (transport) and the pipeline (judgement). */
    enum fo_outcome outcome;
    int status;                 /* HTTP status, 0 when none arrived. */
    bool no_fds;                /* FO_ERR_CONNECT because the process was out of file
                                   descriptors (the request is then overloaded). */
    double ms;                  /* From the worker picking it up to its end. */
    char *resp;                 /* From malloc(): the response body, or NULL. */
    size_t resp_len;            /* Charged to 'budget' until dropped. */
    struct fo_budget *budget;   /* Borrowed: the pool's buffered-bytes budget, or NULL. */
    struct fo_json_span json;   /* FO_OK once judged: the JSON value inside 'resp'. */
    struct fo_jtree *tree;      /* From malloc() while the shaping stages edit it, else NULL. */
    const char *stage;          /* Static: the shaping stage that failed it, or NULL. */
    bool ops_skipped;           /* An op of its shape could not be made (reported). */
    char *content_type;         /* From malloc(): encoding "raw" only, the answer's type. */
    struct fo_call_tries tries; /* With 'resil': what its attempts did. */
};

/* Free a call's body (giving its bytes back to the budget) as soon as it is
 * no longer needed; outcome, status and ms stay. */
void fo_call_drop_body(struct fo_call *call);

/* Free a call's result and reset its result fields. */
void fo_call_clear(struct fo_call *call);

/* What a request gives its endpoint's plan. */
struct fo_plan_src {
    const struct fo_tmpl_vals *vals; /* Borrowed: the endpoint's placeholder values. */
    const struct fo_fwd_client *fwd; /* Borrowed: the client, for forwarding. */
    const char *body;                /* Borrowed: the client's body (forward_body). */
    size_t body_len;
    const char *body_type; /* Borrowed: its Content-Type, NULL if none. */
};

/* The calls of one request. */
struct fo_plan {
    struct fo_call *calls; /* From calloc(): n of them, in config (or body) order. */
    size_t n;
    char *urls;        /* From malloc(): expanded URLs, NUL-separated, or NULL. */
    char *hdrtext;     /* From malloc(): expanded header lines, NUL-separated, or NULL. */
    const char **hdrs; /* From malloc(): the calls' lines when any call has its own. */
    /* What held calls are built from once their dependencies answered (fo_plan_build). */
    const struct fo_endpoint_conf *ep; /* Borrowed: the endpoint, or NULL (a batch). */
    const struct fo_batch *batch;      /* Borrowed: the batch, or NULL. */
    struct fo_plan_src src;            /* The endpoint's (its 'vals' not kept). */
};

/* The plan of a configured endpoint: one call per backend, each URL and
 * header line expanded from src->vals, with what the endpoint forwards, each
 * counting into series[i]. A call whose values cannot be placed is marked
 * 'refused'. Returns 0; -ENOENT when a placeholder without a default has no
 * value (*slot names it; nothing is planned); or -ENOMEM. */
int fo_plan_endpoint(struct fo_plan *p, const struct fo_endpoint_conf *ep,
                     const struct fo_plan_src *src, struct fo_backend_stats *const *series,
                     size_t *slot);

/* The plan of a parsed batch: one call per request, each counting into the
 * series of the allow_hosts entry that admitted its URL (host_series), each
 * with the TLS options 'tls' (the top-level ca_file). Returns 0, or -ENOMEM. */
int fo_plan_batch(struct fo_plan *p, const struct fo_batch *b,
                  struct fo_backend_stats *const *host_series, const struct fo_backend_tls *tls);

/* Build held call 'call' of plan index i (an item of a foreach: the foreach's index) now
 * that its values are known: 'vals' the endpoint's (or batch's) slots with the
 * dependencies' values placed, 'json' the same as JSON by slot (for bodies). Sets its URL,
 * header lines and body into call->built. Returns 0; -ENOENT when a value it needs is
 * absent (the call fails "dependency"); -EILSEQ when one cannot be placed ("shape");
 * -EACCES when a batch URL built from a value is not allowed ("forbidden"); -ENOMEM. On the
 * worker thread that runs the plan's calls. */
int fo_plan_build(struct fo_plan *p, size_t i, struct fo_call *call,
                  const struct fo_tmpl_vals *vals, const struct fo_json_span *json);

/* Free the calls' results, the calls and the URLs; the plan is empty after.
 * Safe on an empty (zeroed) plan. */
void fo_plan_clear(struct fo_plan *p);

#endif /* FO_PLAN_H */
