/* batch.h -- the ad-hoc batch: parse and police a POST /aggregate body.
 *
 *   {"timeout_ms": 300, "report": false,
 *    "requests": {"user":   {"url": "http://127.0.0.1:9001/users/1"},
 *                 "orders": {"url": "...", "method": "POST", "headers": {"X-Tag": "a"},
 *                            "body": {"user": 1}, "required": false}}}
 *
 * A batch is refused whole before any call is made: each URL must be http or
 * https, carry no userinfo, and its authority ("host:port", the port made
 * explicit from the scheme when absent) must equal one allow_hosts entry
 * byte for byte -- no DNS, no IP normalisation, so "127.1", "0x7f.1" or a
 * name that resolves to an allowed address never passes. "body" is kept as
 * the raw JSON the client sent (numbers keep every digit). A request may also
 * wait for others ("depends_on", "foreach") and take values from their answers
 * in its URL, headers and body (batch_deps.c); a URL built so is checked by
 * the same rule once its values are known.
 * Ownership: the returned batch owns all its strings; it borrows nothing.
 * Threads: pure functions, thread-safe. */
#ifndef FO_BATCH_H
#define FO_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "deps.h"
#include "plan.h"

struct fo_body_tmpl; /* bodytmpl.h */

/* One call of a batch. */
struct fo_batch_req {
    char *name;         /* Key in the result; unique. */
    char *url;          /* Absolute URL, checked against allow_hosts. */
    size_t allow_index; /* The allow_hosts entry it was admitted under. */
    char *method;       /* Upper-case token, "GET" unless given. */
    char **headers;     /* "Name: value" lines (names and values checked: no CR/LF). */
    size_t nheaders;
    char *body; /* Raw JSON text or NULL; sent with Content-Type: application/json. */
    size_t body_len;
    int64_t timeout_ms; /* Own cap, 0 = none. */
    bool required;
    bool merge;
    /* Dependent calls (batch_deps.c): set only when it has depends_on or foreach. */
    struct fo_dep dep; /* What it waits for. */
    bool url_whole;    /* The URL is one placeholder: slot 'url_slot'. */
    unsigned url_slot;
    struct fo_tmpl *utmpl;      /* Else its URL compiled, when it has placeholders. */
    struct fo_tmpl **htmpl;     /* nheaders lines compiled, or NULL. */
    struct fo_body_tmpl *btmpl; /* Its body compiled, or NULL. */
};

struct fo_batch {
    struct fo_batch_req *reqs; /* In the order the body lists them. */
    size_t n;
    int64_t timeout_ms; /* Batch deadline, already capped by the config. */
    bool report;
    bool has_deps;                        /* A request has depends_on or foreach. */
    struct fo_tmpl_scope *scope;          /* Its placeholders (only dependency ones). */
    struct fo_dep_refs *refs;             /* From calloc(): each one's reference (deps.h). */
    const struct fo_aggregate_conf *conf; /* Borrowed: what admitted it (URLs built later). */
};

/* Why a batch was refused. */
struct fo_batch_error {
    int status;        /* 400 or 403 (413 is the caller's: it sees the size first). */
    const char *code;  /* Stable: "invalid_json", "invalid_batch", "too_many_requests",
                          "host_not_allowed". */
    char message[256]; /* Human text, names the request when there is one. */
};

/* ---- batch_deps.c ---- */

/* After parsing: compile the templates of the requests that depend on others and check
 * the graph. Returns 0, -EINVAL with *err filled (400), or -ENOMEM. */
int fo__batch_deps(struct fo_batch *b, struct fo_batch_error *err);

/* Free what request r's dependent-call fields hold. */
void fo__batch_req_deps_free(struct fo_batch_req *r);

/* Build held request i into 'call' (see fo_plan_build: same results). */
int fo_batch_build(const struct fo_batch *b, size_t i, struct fo_call *call,
                   const struct fo_tmpl_vals *vals, const struct fo_json_span *json);

/* Parse 'body' (n bytes) under 'conf' (enabled). Returns 0 and sets *out,
 * or -EINVAL with *err filled, or -ENOMEM. */
int fo_batch_parse(struct fo_batch **out, const char *body, size_t n,
                   const struct fo_aggregate_conf *conf, unsigned max_depth,
                   struct fo_batch_error *err);

/* Free a batch. NULL is a no-op. */
void fo_batch_destroy(struct fo_batch *b);

/* The allow_hosts rule alone (batch_url.c): 0 when 'url' may be called (*index, when not
 * NULL, is the entry that admits it), else -EACCES (host:port not listed) or -EINVAL (not
 * http/https, userinfo, malformed), with a reason in msg. */
int fo_batch_check_url(const char *url, const struct fo_aggregate_conf *conf, char *msg,
                       size_t msglen, size_t *index);

#endif /* FO_BATCH_H */
