/* graph.c -- a request's dependent calls while they run (see graph.h).
 *
 * DESIGN
 * As in the seed's pipeline, a stage starts when what feeds it is there: here a call
 * starts when the last call it depends on has ended, and the whole graph runs under the
 * request's one context (each start gets the time left). Everything happens in the
 * request's fan-in, on the one worker thread that runs its calls, so the graph needs no
 * lock: counts of dependencies left per call, the values captured per template slot, and
 * per foreach the elements, its distinct item calls and how many are in flight. */
#include "graph.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "depval.h"
#include "json.h"
#include "log.h"

#define NONE SIZE_MAX

/* A foreach while its items run. */
struct each {
    bool captured; /* Its elements were read (the foreach's call answered). */
    long nelem;    /* Elements matched (may exceed max_items), -1 = no container. */
    char **elem;   /* From malloc(): a copy of each element's value, or NULL (none). */
    size_t *elen;
    size_t *which;         /* Per element: its distinct item, or NONE (no value: failed). */
    struct fo_call *items; /* From calloc(): the distinct items. */
    size_t nitems, next, live, ended;
    bool done; /* Its call has ended: no more starts, no gathering. */
};

struct fo_graph {
    struct fo_plan *plan;
    const struct fo_tmpl_scope *scope;
    const struct fo_dep_refs *refs;
    struct fo_tmpl_vals vals;                    /* The request's, with captured values. */
    struct fo_json_span json[FO_TMPL_MAX_SLOTS]; /* The same as JSON (bodies). */
    char *store[2 * FO_TMPL_MAX_SLOTS];          /* From malloc(): the captured texts. */
    size_t *waiting;                             /* Per call: dependencies not ended. */
    bool *dep_failed;                            /* Per call: one of them failed. */
    struct each *each;                           /* Per call (foreach calls only used). */
};

static char *copy(const char *p, size_t n)
{
    char *d = fo_xrealloc(NULL, n + 1);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

struct fo_graph *fo_graph_create(struct fo_plan *p, const struct fo_tmpl_scope *scope,
                                 const struct fo_dep_refs *refs, const struct fo_tmpl_vals *vals)
{
    struct fo_graph *g = fo_xcalloc(sizeof *g);
    g->plan = p;
    g->scope = scope;
    g->refs = refs;
    if (vals)
        g->vals = *vals;
    else
        g->vals.n = fo_tmpl_scope_slots(scope);
    g->waiting = fo_xcalloc(p->n * sizeof *g->waiting);
    g->dep_failed = fo_xcalloc(p->n * sizeof *g->dep_failed);
    g->each = fo_xcalloc(p->n * sizeof *g->each);
    for (size_t i = 0; i < p->n; i++)
        g->waiting[i] = p->calls[i].dep ? p->calls[i].dep->n : 0;
    return g;
}

void fo_graph_destroy(struct fo_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < sizeof g->store / sizeof *g->store; i++)
        free(g->store[i]);
    for (size_t i = 0; i < g->plan->n; i++) {
        struct each *e = &g->each[i];
        for (long k = 0; e->elem && k < e->nelem; k++)
            free(e->elem[k]);
        free(e->elem);
        free(e->elen);
        free(e->which);
        for (size_t k = 0; k < e->nitems; k++)
            fo_call_clear(&e->items[k]);
        free(e->items);
    }
    free(g->each);
    free(g->waiting);
    free(g->dep_failed);
    free(g);
}

bool fo_graph_is_item(const struct fo_graph *g, const struct fo_call *c)
{
    struct fo_call *calls = g->plan->calls;
    return c < calls || c >= calls + g->plan->n;
}

/* The reference of slot s, or NULL when s is no dependency placeholder. */
static const struct fo_dep_ref *ref_of(const struct fo_graph *g, size_t s)
{
    if (!g->refs || !fo_tmpl_slot_in(g->scope, s, "*"))
        return NULL;
    return &g->refs->r[fo_tmpl_slot_id(g->scope, s)];
}

/* Place value 'v' in slot s of 'vals' and 'json', its texts kept in store[2s], [2s+1]. */
static void place(struct fo_tmpl_vals *vals, struct fo_json_span *json, char **store, size_t s,
                  struct fo_json_span v)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    int rc = fo_depval_text(v, &b);
    if (rc == -ENOMEM)
        fo_panic("out of memory");
    if (rc < 0) {
        fo_buf_free(&b);
        return; /* No text: absent, the call that needs it fails "dependency". */
    }
    size_t len;
    char *text = fo_buf_release(&b, &len);
    if (!text)
        text = copy("", 0);
    free(store[2 * s]);
    free(store[2 * s + 1]);
    store[2 * s] = text;
    store[2 * s + 1] = copy(v.p, v.len);
    vals->v[s] = (struct fo_tmpl_val){text, len, false};
    json[s] = (struct fo_json_span){store[2 * s + 1], v.len};
}

/* The elements foreach call d runs over, read from its call's body. */
static void capture_each(struct fo_graph *g, size_t d, struct fo_json_span body)
{
    const struct fo_dep *dep = g->plan->calls[d].dep;
    struct each *e = &g->each[d];
    size_t max = dep->max_items;
    struct fo_json_span *els = fo_xrealloc(NULL, (max + 1) * sizeof *els);
    long n = fo_depval_each(body, &dep->each, els, max + 1);
    e->captured = true;
    e->nelem = n < 0 ? -1 : n;
    if (n > 0 && (size_t)n <= max) {
        e->elem = fo_xcalloc((size_t)n * sizeof *e->elem);
        e->elen = fo_xcalloc((size_t)n * sizeof *e->elen);
        for (long k = 0; k < n; k++) {
            if (els[k].p) {
                e->elem[k] = copy(els[k].p, els[k].len);
                e->elen[k] = els[k].len;
            }
        }
    }
    free(els);
}

void fo_graph_capture(struct fo_graph *g, size_t i, const struct fo_call *c)
{
    if (c->outcome != FO_OK || !c->json.p)
        return;
    for (size_t s = 0; s < g->vals.n; s++) {
        const struct fo_dep_ref *r = ref_of(g, s);
        struct fo_json_span v;
        if (!r || r->item || r->call != i || fo_depval_find(c->json, &r->path, &v) < 0)
            continue;
        place(&g->vals, g->json, g->store, s, v);
    }
    for (size_t d = 0; d < g->plan->n; d++) {
        const struct fo_dep *dep = g->plan->calls[d].dep;
        if (dep && dep->foreach && dep->each_of == i)
            capture_each(g, d, c->json);
    }
}

/* End held call 'c' with 'o' and no call. */
static void skip(struct fo_fanout *f, struct fo_call *c, enum fo_outcome o, const char *stage)
{
    c->outcome = o;
    c->status = 0;
    c->stage = stage;
    fo_fanout_finish(f, c);
}

/* Build 'call' (plan index i) from 'vals' and start it, or end it with why it cannot go.
 * Returns true when it was started. */
static bool go(struct fo_graph *g, size_t i, struct fo_call *call, const struct fo_tmpl_vals *vals,
               const struct fo_json_span *json, struct fo_fanout *f, bool item)
{
    int rc = fo_plan_build(g->plan, i, call, vals, json);
    if (rc == -ENOMEM)
        fo_panic("out of memory");
    if (rc == 0) {
        fo_fanout_start(f, call);
        return true;
    }
    enum fo_outcome o = rc == -EILSEQ   ? FO_ERR_SHAPE
                        : rc == -EACCES ? FO_ERR_FORBIDDEN
                                        : FO_ERR_DEPENDENCY;
    call->outcome = o;
    call->stage = rc == -EILSEQ ? "dependency" : NULL;
    if (!item)
        fo_fanout_finish(f, call);
    return false;
}

/* The key of an element in a foreach "object": its text when it is a scalar, else the first
 * {item.path} value it has, else its JSON text. */
static int elem_key(const struct fo_graph *g, struct fo_json_span ev, struct fo_buf *key)
{
    if (fo_depval_text(ev, key) == 0)
        return 0;
    key->len = 0;
    for (size_t s = 0; s < g->vals.n; s++) {
        const struct fo_dep_ref *r = ref_of(g, s);
        struct fo_json_span v;
        if (r && r->item && r->has_path && fo_depval_find(ev, &r->path, &v) == 0 &&
            fo_depval_text(v, key) == 0)
            return 0;
        key->len = 0;
    }
    return fo_buf_append(key, ev.p, ev.len);
}

/* The gathered result of foreach d, as its body. */
static void gather(struct fo_graph *g, size_t d, struct fo_fanout *f)
{
    struct fo_call *c = &g->plan->calls[d];
    struct each *e = &g->each[d];
    bool obj = c->dep->as == FO_DEPS_AS_OBJECT;
    struct fo_buf b, key;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    fo_buf_init(&key, FO_BUF_UNLIMITED);
    int rc = fo_buf_putc(&b, obj ? '{' : '[');
    unsigned failed = 0;
    bool first = true;
    for (long k = 0; rc == 0 && k < e->nelem; k++) {
        size_t w = e->which[k];
        const struct fo_call *it = w == NONE ? NULL : &e->items[w];
        bool ok = it && it->outcome == FO_OK && it->json.p;
        failed += !ok;
        if (obj) {
            if (!e->elem[k])
                continue; /* No value: no key either (counted as failed). */
            bool dup = false;
            for (long m = 0; m < k && !dup; m++)
                dup = e->which[m] == w;
            if (dup)
                continue;
            key.len = 0;
            rc = elem_key(g, (struct fo_json_span){e->elem[k], e->elen[k]}, &key);
            if (rc == 0 && !first)
                rc = fo_buf_putc(&b, ',');
            if (rc == 0)
                rc = fo_json_put_string(&b, key.data ? key.data : "", key.len);
            if (rc == 0)
                rc = fo_buf_putc(&b, ':');
        } else if (!first) {
            rc = fo_buf_putc(&b, ',');
        }
        first = false;
        if (rc == 0)
            rc = ok ? fo_buf_append(&b, it->json.p, it->json.len) : fo_buf_puts(&b, "null");
    }
    if (rc == 0)
        rc = fo_buf_putc(&b, obj ? '}' : ']');
    if (rc < 0)
        fo_panic("out of memory");
    fo_buf_free(&key);
    size_t len;
    c->resp = fo_buf_release(&b, &len);
    c->resp_len = len;
    c->budget = NULL;
    c->json = (struct fo_json_span){c->resp, len};
    c->outcome = FO_OK;
    c->status = 200;
    c->gathered = true;
    c->items_failed = failed;
    c->ms = (double)(fo_clock_us() - c->start_us) / 1000.0;
    e->done = true;
    fo_fanout_finish(f, c);
}

/* Start the items of foreach d while it has room; gather once the last has ended. */
static void pump(struct fo_graph *g, size_t d, struct fo_fanout *f)
{
    struct fo_call *c = &g->plan->calls[d];
    struct each *e = &g->each[d];
    while (!e->done && e->live < c->dep->max_concurrency && e->next < e->nitems) {
        size_t k = e->next++;
        struct fo_call *it = &e->items[k];
        long el = 0; /* The first element of this item. */
        while (e->which[el] != k)
            el++;
        struct fo_tmpl_vals vals = g->vals;
        struct fo_json_span json[FO_TMPL_MAX_SLOTS];
        memcpy(json, g->json, sizeof json);
        char *store[2 * FO_TMPL_MAX_SLOTS] = {0};
        struct fo_json_span ev = {e->elem[el], e->elen[el]};
        for (size_t s = 0; s < vals.n; s++) {
            const struct fo_dep_ref *r = ref_of(g, s);
            struct fo_json_span v = ev;
            if (!r || !r->item)
                continue;
            vals.v[s] = (struct fo_tmpl_val){0};
            json[s] = (struct fo_json_span){0};
            if (!r->has_path || fo_depval_find(ev, &r->path, &v) == 0)
                place(&vals, json, store, s, v);
        }
        if (go(g, d, it, &vals, json, f, true))
            e->live++;
        else
            e->ended++;
        for (size_t s = 0; s < sizeof store / sizeof *store; s++)
            free(store[s]);
    }
    if (!e->done && e->ended == e->nitems)
        gather(g, d, f);
}

/* Foreach d may start: its distinct elements become items. */
static void start_each(struct fo_graph *g, size_t d, struct fo_fanout *f)
{
    struct fo_call *c = &g->plan->calls[d];
    struct each *e = &g->each[d];
    if (!e->captured || e->nelem < 0) {
        skip(f, c, FO_ERR_DEPENDENCY, NULL);
        return;
    }
    if ((size_t)e->nelem > c->dep->max_items) {
        skip(f, c, FO_ERR_SHAPE, "foreach");
        return;
    }
    c->start_us = fo_clock_us();
    e->which = fo_xrealloc(NULL, ((size_t)e->nelem + 1) * sizeof *e->which);
    e->items = fo_xcalloc(((size_t)e->nelem + 1) * sizeof *e->items);
    for (long k = 0; k < e->nelem; k++) {
        e->which[k] = NONE;
        if (!e->elem[k])
            continue;
        for (long m = 0; m < k && e->which[k] == NONE; m++)
            if (e->elem[m] && e->elen[m] == e->elen[k] &&
                memcmp(e->elem[m], e->elem[k], e->elen[k]) == 0)
                e->which[k] = e->which[m];
        if (e->which[k] != NONE)
            continue;
        struct fo_call *it = &e->items[e->nitems];
        e->which[k] = e->nitems++;
        it->name = c->name;
        it->method = c->method;
        it->timeout_ms = c->timeout_ms;
        it->stats = c->stats;
        it->shape = c->shape;
        it->tls = c->tls;
        it->budget = c->budget;
    }
    pump(g, d, f);
}

/* Call d's last dependency has ended. */
static void release(struct fo_graph *g, size_t d, struct fo_fanout *f)
{
    struct fo_call *c = &g->plan->calls[d];
    if (g->dep_failed[d])
        skip(f, c, FO_ERR_DEPENDENCY, NULL);
    else if (c->dep->foreach)
        start_each(g, d, f);
    else
        go(g, d, c, &g->vals, g->json, f, false);
}

void fo_graph_ended(struct fo_graph *g, size_t i, struct fo_fanout *f)
{
    struct fo_call *c = &g->plan->calls[i];
    g->each[i].done = true;
    for (size_t d = 0; d < g->plan->n; d++) {
        const struct fo_dep *dep = g->plan->calls[d].dep;
        bool on = false;
        for (size_t k = 0; dep && k < dep->n && !on; k++)
            on = dep->on[k] == i;
        if (!on || g->waiting[d] == 0)
            continue;
        if (c->outcome != FO_OK)
            g->dep_failed[d] = true;
        if (--g->waiting[d] == 0)
            release(g, d, f);
    }
}

void fo_graph_item_ended(struct fo_graph *g, struct fo_call *item, struct fo_fanout *f)
{
    for (size_t d = 0; d < g->plan->n; d++) {
        struct each *e = &g->each[d];
        if (!e->items || item < e->items || item >= e->items + e->nitems)
            continue;
        e->live--;
        e->ended++;
        pump(g, d, f);
        return;
    }
}
