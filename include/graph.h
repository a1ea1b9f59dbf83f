/* graph.h -- a request's dependent calls while they run: values, starts, foreach items.
 *
 * The pool starts the calls that wait for nothing; every other call of the plan is held
 * (pool.h). As each call comes off the request's fan-in, the fan-in gives it here twice:
 * once judged and before its own shaping (fo_graph_capture keeps the values its
 * dependents read: placeholder text and JSON per template slot, and the elements a
 * foreach runs over), and once tallied (fo_graph_ended counts it off each dependent; a
 * dependent whose last dependency has ended is built (plan.h) and started, or, when a
 * dependency failed or a value is missing, ended "dependency" without a call). A foreach
 * runs one extra call per distinct element, at most max_concurrency at once, each through
 * the pipeline like any answer, and is ended with the gathered array (or object) once the
 * last item has ended.
 * Ownership: the graph owns the captured values and the item calls (and their results);
 * it borrows the plan, the scope and the references, which outlive it.
 * Threads: created on the request's MHD thread before submit; every other function runs
 * in the fan-in, on the worker thread that runs the request's calls. */
#ifndef FO_GRAPH_H
#define FO_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "deps.h"
#include "plan.h"
#include "pool.h"
#include "tmpl.h"

struct fo_graph; /* Opaque. */

/* A graph over plan 'p' (which has held calls) whose templates were compiled in 'scope'
 * with references 'refs' (may be NULL: no placeholder reads a call), starting from the
 * request's own values 'vals' (copied). Aborts when out of memory. */
struct fo_graph *fo_graph_create(struct fo_plan *p, const struct fo_tmpl_scope *scope,
                                 const struct fo_dep_refs *refs, const struct fo_tmpl_vals *vals);
void fo_graph_destroy(struct fo_graph *g);

/* Call 'c' is one of the graph's foreach items (not a call of the plan). */
bool fo_graph_is_item(const struct fo_graph *g, const struct fo_call *c);

/* Plan call i has been judged (check, decode), its shaping not yet run: keep what its
 * dependents read from it. */
void fo_graph_capture(struct fo_graph *g, size_t i, const struct fo_call *c);

/* Plan call i has ended (any outcome): release what waited for it, through 'f'. */
void fo_graph_ended(struct fo_graph *g, size_t i, struct fo_fanout *f);

/* Foreach item 'item' has ended and been through the pipeline. */
void fo_graph_item_ended(struct fo_graph *g, struct fo_call *item, struct fo_fanout *f);

#endif /* FO_GRAPH_H */
