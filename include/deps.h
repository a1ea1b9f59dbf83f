/* deps.h -- dependent calls: what one call of a plan waits for, and the checks of the graph.
 *
 * A call may name others it depends on ("depends_on": it starts once they all succeeded)
 * and may run once per element of another call's answer ("foreach": it depends on that
 * call too). Its URL, header values and body may hold placeholders {name.path} that take a
 * value from a dependency's body (before that dependency's own shaping), and a foreach's
 * {item} / {item.path} one from the element. The same structures serve configured
 * backends (config.c) and batch requests (batch.c); the run-time side (values, starts,
 * gathering the items) is graph.h's.
 * Ownership: a fo_dep owns its index array and its compiled foreach path (fo_dep_free);
 * a fo_dep_refs owns each reference's text and path (fo_dep_refs_free).
 * Threads: built on the config (or request) thread, immutable after; pure functions. */
#ifndef FO_DEPS_H
#define FO_DEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "jpath.h"

/* Longest chain of calls one after the other (a -> b -> ... counts its calls). */
#define FO_DEPS_MAX_CHAIN 8
/* foreach limits. */
#define FO_DEPS_DEFAULT_CONCURRENCY 8
#define FO_DEPS_MAX_CONCURRENCY     64
#define FO_DEPS_DEFAULT_ITEMS       100
#define FO_DEPS_MAX_ITEMS           1000

enum { FO_DEPS_AS_ARRAY, FO_DEPS_AS_OBJECT };

/* What one call waits for. Zeroed: nothing (it starts at once). */
struct fo_dep {
    char **names;         /* From malloc(): n names as given (depends_on, then the foreach's). */
    size_t *on;           /* From malloc(): the same as plan indices, once resolved. */
    size_t n;             /* How many; > 0 when the call depends on any. */
    bool foreach;         /* Run once per element of call 'each_of'. */
    size_t each_of;       /* Plan index of that call (one of 'on'). */
    char *each_name;      /* From malloc(): its name. */
    struct fo_jpath each; /* Path with exactly one "*" in its body. */
    unsigned max_concurrency; /* Items in flight at most (1..64). */
    unsigned max_items;       /* Elements at most (1..1000); more fails the call "shape". */
    int as;                   /* FO_DEPS_AS_ARRAY or FO_DEPS_AS_OBJECT: how results gather. */
};

/* One placeholder that reads another call's body or the foreach element: {hotel.id},
 * {item}, {item.sku}. Its index in the table is the id of its template slot. */
struct fo_dep_ref {
    char *text;           /* From malloc(): as written, without braces. */
    char *name;           /* From malloc(): the call it reads ("item" for the element). */
    bool item;            /* The foreach element. */
    size_t call;          /* Plan index of the call it reads (not for 'item'), once resolved. */
    bool has_path;        /* Else the whole value ({item} only). */
    struct fo_jpath path; /* Where in it. */
};

/* The references of one endpoint (or batch): at most one per template slot. */
#define FO_DEP_MAX_REFS 16
struct fo_dep_refs {
    struct fo_dep_ref r[FO_DEP_MAX_REFS];
    size_t n;
};

/* Add the reference "name.path" (or "item"), n bytes at s, to 'refs'. Returns its index,
 * -ENOENT when 's' is not such a reference (no '.' and not "item"), or -EINVAL with the
 * reason in err, or -ENOMEM. The same text twice gives one index. */
int fo_dep_ref_add(struct fo_dep_refs *refs, const char *s, size_t n, char *err, size_t errlen);

void fo_dep_refs_free(struct fo_dep_refs *refs);

/* Parse "name.path-with-one-*" as the foreach of 'd' (its name is also appended to the
 * dependencies). Returns 0, -EINVAL with the reason in err, or -ENOMEM. */
int fo_dep_set_foreach(struct fo_dep *d, const char *spec, char *err, size_t errlen);

/* Append a dependency by name. Returns 0 or -ENOMEM. */
int fo_dep_add_name(struct fo_dep *d, const char *name);

void fo_dep_free(struct fo_dep *d);

/* Resolve every call's names (deps[i] is call i's) against 'names' (n calls in plan order) and
 * check the graph: unknown names, a call depending on itself, cycles (named: "a -> b -> a") and
 * chains of more than FO_DEPS_MAX_CHAIN calls. Returns 0, or -EINVAL with the message in err and
 * the index of the call it is about in *bad; -ENOMEM. */
int fo_deps_check(struct fo_dep *const *deps, const char *const *names, size_t n, char *err,
                  size_t errlen, size_t *bad);

/* The dependency 'name' of d, or -1. */
long fo_dep_index(const struct fo_dep *d, const char *name);

#endif /* FO_DEPS_H */
