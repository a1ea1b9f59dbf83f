/* placeholder.h -- the placeholder namespaces fanout knows, and where their values come from.
 *
 * Backend URLs and header values are templates (tmpl.h). This module is the
 * namespace table they are compiled with and resolved against:
 *     {name}            a parameter of the endpoint path (decoded)
 *     {query.name}      the client's first query parameter 'name' (case-sensitive, decoded)
 *     {header.Name}     the client's first header field 'Name' (case-insensitive)
 *     {auth.name}, {jwt.claim}  who the request was admitted as
 *     {call.path}       a value from the body of backend 'call' (in its depends_on), and
 *     {item}, {item.path}  the element of a foreach: the catch-all row "*", only registered
 *                       here (deps.h); the fan-in places their values (graph.h)
 * each optionally with a default, "{query.page|1}". A new namespace (an
 * authenticated identity, a JWT claim) is one more row in the table in
 * placeholder.c: a bind that checks its names at config load and a lookup
 * that finds a value in a request.
 * Ownership: the table is static; scopes belong to their endpoint config.
 * Threads: fo_placeholder_scope on the config thread; the lookups run on the
 * request's MHD thread, reading the request (struct request, request.h). */
#ifndef FO_PLACEHOLDER_H
#define FO_PLACEHOLDER_H

#include "tmpl.h"

struct fo_endpoint_conf; /* config.h */

/* A scope for the templates of endpoint 'ep' (borrowed: it must outlive the
 * scope; its compiled path is read at each bind, so set it first). Returns 0
 * or -ENOMEM. */
int fo_placeholder_scope(struct fo_tmpl_scope **out, const struct fo_endpoint_conf *ep);

#endif /* FO_PLACEHOLDER_H */
