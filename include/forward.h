/* forward.h -- what of the client's request an endpoint passes on to its backends.
 *
 * An endpoint (and each backend, narrowing it) lists the query parameters
 * and header fields it forwards: nothing by default, some names, or "*".
 * Query names compare case-sensitively (decoded), header names without case.
 * Never forwarded, even with "*": the hop-by-hop fields (Connection,
 * Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*) and every
 * field the client's Connection names; Host, Content-Length, Expect;
 * Accept-Encoding (fanout must read the answer); the fields fanout sets
 * itself (X-Timeout-Ms, X-Request-Id, X-Forwarded-Proto, X-Forwarded-Host).
 * Authorization only when named. Where header forwarding is on,
 * X-Forwarded-For carries the client address (after the client's own value
 * when X-Forwarded-For is forwarded), and X-Forwarded-Proto and
 * X-Forwarded-Host say how the client reached fanout.
 * Ownership: lists belong to their config (fo_fwd_list_free); the request
 * side borrows everything from libmicrohttpd for the call.
 * Threads: lists are immutable after load; the request functions run on the
 * request's MHD thread. */
#ifndef FO_FORWARD_H
#define FO_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct MHD_Connection;

/* Longest name a forward list may hold. */
#define FO_FWD_MAX_NAME 200

/* A forward list as configured. */
struct fo_fwd_list {
    bool given;   /* The key was in the config (a backend without it inherits). */
    bool all;     /* "*": every name (for headers, every one but Authorization). */
    char **names; /* The names listed besides "*", from malloc(); n of them. */
    size_t n;
};

void fo_fwd_list_free(struct fo_fwd_list *l);

/* The list that applies to a backend: its own when given, else its endpoint's. */
const struct fo_fwd_list *fo_fwd_effective(const struct fo_fwd_list *backend,
                                           const struct fo_fwd_list *endpoint);

/* The list forwards something. */
bool fo_fwd_active(const struct fo_fwd_list *l);

/* Why header 'name' can never be forwarded ("hop-by-hop", "set by fanout",
 * ...), or NULL when it can. */
const char *fo_fwd_header_never(const char *name, size_t n);

/* True when 'l' names 'name' (headers: 'fold' compares without case). */
bool fo_fwd_names(const struct fo_fwd_list *l, const char *name, size_t n, bool fold);

/* What the request side knows of the client. */
struct fo_fwd_client {
    struct MHD_Connection *conn; /* Borrowed: the client's parsed head. */
    const char *addr;            /* Its address as text, or NULL. */
    const char *proto;           /* "http" or "https". */
    const char *secret;          /* The route's API key header ("*" leaves it out, as it
                                    leaves out Authorization), or NULL. */
};

/* Append to 'url' (an expanded URL, NUL-terminated in the buffer from
 * 'start') the client's query parameters that 'l' names, in the client's
 * order, each as the client encoded it where that is valid in a query and
 * percent-encoded where not. Returns 0 or the fo_buf errors. */
int fo_fwd_query(struct fo_buf *url, size_t start, const struct fo_fwd_list *l,
                 const struct fo_fwd_client *cl);

/* Append one NUL-terminated "Name: value" line per client header field 'l'
 * forwards, in the client's order, then X-Forwarded-For, -Proto and -Host;
 * *nlines counts the lines added. Returns 0, -EILSEQ when a value holds CR,
 * LF or NUL (nothing can be sent), or the fo_buf errors. */
int fo_fwd_headers(struct fo_buf *out, size_t *nlines, const struct fo_fwd_list *l,
                   const struct fo_fwd_client *cl);

#endif /* FO_FORWARD_H */
