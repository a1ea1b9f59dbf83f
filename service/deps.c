/* deps.c -- what a call waits for, and the checks of a graph of calls (see deps.h).
 *
 * The graph is small (at most a batch's or an endpoint's calls), so the checks are plain
 * depth-first walks: one finds a cycle and names it by the walk's own stack, one measures
 * the longest chain (in calls) ending at each call. */
#include "deps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int fo_dep_ref_add(struct fo_dep_refs *refs, const char *s, size_t n, char *err, size_t errlen)
{
    const char *dot = memchr(s, '.', n);
    bool item = (dot ? (size_t)(dot - s) : n) == 4 && memcmp(s, "item", 4) == 0;
    if (!dot && !item)
        return -ENOENT;
    for (size_t i = 0; i < refs->n; i++)
        if (strlen(refs->r[i].text) == n && memcmp(refs->r[i].text, s, n) == 0)
            return (int)i;
    if (refs->n == FO_DEP_MAX_REFS) {
        snprintf(err, errlen, "more than %d distinct dependency placeholders", FO_DEP_MAX_REFS);
        return -EINVAL;
    }
    struct fo_dep_ref *r = &refs->r[refs->n];
    memset(r, 0, sizeof *r);
    r->item = item;
    r->text = dup_n(s, n);
    r->name = dup_n(s, dot ? (size_t)(dot - s) : n);
    if (!r->text || !r->name) {
        free(r->text);
        free(r->name);
        return -ENOMEM;
    }
    if (dot) {
        char perr[160];
        int rc = fo_jpath_compile(&r->path, r->text + (dot - s) + 1, perr, sizeof perr);
        if (rc == 0 && r->path.nany) {
            fo_jpath_free(&r->path);
            snprintf(perr, sizeof perr, "a placeholder path cannot hold \"*\"");
            rc = -EINVAL;
        }
        if (rc < 0) {
            if (rc == -EINVAL)
                snprintf(err, errlen, "{%.*s}: %s", (int)n, s, perr);
            free(r->text);
            free(r->name);
            return rc;
        }
        r->has_path = true;
    }
    return (int)refs->n++;
}

void fo_dep_refs_free(struct fo_dep_refs *refs)
{
    for (size_t i = 0; i < refs->n; i++) {
        free(refs->r[i].text);
        free(refs->r[i].name);
        fo_jpath_free(&refs->r[i].path);
    }
    refs->n = 0;
}

int fo_dep_add_name(struct fo_dep *d, const char *name)
{
    char **names = realloc(d->names, (d->n + 1) * sizeof *names);
    if (!names)
        return -ENOMEM;
    d->names = names;
    names[d->n] = strdup(name);
    if (!names[d->n])
        return -ENOMEM;
    d->n++;
    return 0;
}

int fo_dep_set_foreach(struct fo_dep *d, const char *spec, char *err, size_t errlen)
{
    const char *dot = strchr(spec, '.');
    if (!dot || dot == spec) {
        snprintf(err, errlen, "must be \"<name>.<path with one *>\", e.g. \"order.items.*.sku\"");
        return -EINVAL;
    }
    char perr[160];
    int rc = fo_jpath_compile(&d->each, dot + 1, perr, sizeof perr);
    if (rc == -EINVAL) {
        snprintf(err, errlen, "%s", perr);
        return rc;
    }
    if (rc < 0)
        return rc;
    if (d->each.nany != 1) {
        snprintf(err, errlen, "the path must hold exactly one \"*\" (it holds %zu)", d->each.nany);
        fo_jpath_free(&d->each);
        return -EINVAL;
    }
    d->each_name = dup_n(spec, (size_t)(dot - spec));
    if (!d->each_name)
        return -ENOMEM;
    d->foreach = true;
    return fo_dep_index(d, d->each_name) >= 0 ? 0 : fo_dep_add_name(d, d->each_name);
}

void fo_dep_free(struct fo_dep *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->names[i]);
    free(d->names);
    free(d->on);
    free(d->each_name);
    fo_jpath_free(&d->each);
    memset(d, 0, sizeof *d);
}

long fo_dep_index(const struct fo_dep *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->names[i], name) == 0)
            return (long)i;
    return -1;
}

/* ---- the graph ---- */

struct walk {
    struct fo_dep *const *deps;
    const char *const *names;
    size_t n;
    unsigned char *color; /* 0 new, 1 on the stack, 2 done. */
    size_t *stack;        /* The calls on the walk's path. */
    size_t depth;
    unsigned *chain; /* Longest chain (in calls) ending at each call, once done. */
    char *err;
    size_t errlen;
    size_t bad;
};

/* Name the cycle that closes at 'to' (on the stack): "a -> b -> a". */
static void name_cycle(struct walk *w, size_t to)
{
    size_t from = 0;
    while (w->stack[from] != to)
        from++;
    int o = snprintf(w->err, w->errlen, "a cycle: ");
    for (size_t k = from; k < w->depth && o >= 0 && (size_t)o < w->errlen; k++)
        o += snprintf(w->err + o, w->errlen - (size_t)o, "%s -> ", w->names[w->stack[k]]);
    if (o >= 0 && (size_t)o < w->errlen)
        snprintf(w->err + o, w->errlen - (size_t)o, "%s", w->names[to]);
    w->bad = to;
}

/* Depth-first from call i along what it depends on. Returns 0 or -EINVAL. */
static int visit(struct walk *w, size_t i)
{
    w->color[i] = 1;
    w->stack[w->depth++] = i;
    unsigned longest = 0;
    const struct fo_dep *d = w->deps[i];
    for (size_t k = 0; d && k < d->n; k++) {
        size_t to = d->on[k];
        if (w->color[to] == 1) {
            name_cycle(w, to);
            return -EINVAL;
        }
        if (w->color[to] == 0 && visit(w, to) < 0)
            return -EINVAL;
        if (w->chain[to] > longest)
            longest = w->chain[to];
    }
    w->chain[i] = longest + 1;
    w->depth--;
    w->color[i] = 2;
    if (w->chain[i] > FO_DEPS_MAX_CHAIN) {
        snprintf(w->err, w->errlen, "a chain of %u calls ends at \"%s\" (at most %d)", w->chain[i],
                 w->names[i], FO_DEPS_MAX_CHAIN);
        w->bad = i;
        return -EINVAL;
    }
    return 0;
}

int fo_deps_check(struct fo_dep *const *deps, const char *const *names, size_t n, char *err,
                  size_t errlen, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        struct fo_dep *d = deps[i];
        if (!d || d->n == 0)
            continue;
        free(d->on);
        d->on = malloc(d->n * sizeof *d->on);
        if (!d->on)
            return -ENOMEM;
        for (size_t k = 0; k < d->n; k++) {
            size_t to = 0;
            while (to < n && strcmp(names[to], d->names[k]) != 0)
                to++;
            *bad = i;
            if (to == n) {
                snprintf(err, errlen, "\"%s\" is not the name of another call", d->names[k]);
                return -EINVAL;
            }
            if (to == i) {
                snprintf(err, errlen, "\"%s\" depends on itself", names[i]);
                return -EINVAL;
            }
            d->on[k] = to;
            if (d->foreach && strcmp(d->names[k], d->each_name) == 0)
                d->each_of = to;
        }
    }
    struct walk w = {.deps = deps, .names = names, .n = n, .err = err, .errlen = errlen};
    w.color = calloc(n ? n : 1, 1);
    w.stack = calloc(n ? n : 1, sizeof *w.stack);
    w.chain = calloc(n ? n : 1, sizeof *w.chain);
    int rc = w.color && w.stack && w.chain ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (w.color[i] == 0)
            rc = visit(&w, i);
    if (rc == -EINVAL)
        *bad = w.bad;
    free(w.color);
    free(w.stack);
    free(w.chain);
    return rc;
}
