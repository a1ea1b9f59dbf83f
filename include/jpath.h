/* jpath.h -- the path syntax every shaping key (and a dependent call's placeholder) shares.
 *
 * A path is dot-separated segments: a segment matches an object key exactly (case-sensitive);
 * a decimal segment (0, 7, 42: no sign, no leading zero) indexes an array, and on an object
 * matches the key of that text; "*" matches every key of an object or every element of an
 * array. A path does not descend into an array unless a segment says "*" or an index. Empty
 * segments, more than FO_JPATH_MAX segments and a "*" inside a longer segment are refused:
 * such a key cannot be written in this syntax.
 * Ownership: a compiled path owns its copy of the text (free with fo_jpath_free).
 * Threads: a compiled path is immutable and may be shared. */
#ifndef FO_JPATH_H
#define FO_JPATH_H

#include <stdbool.h>
#include <stddef.h>

/* Most segments one path may have. */
#define FO_JPATH_MAX 32

/* One segment. */
struct fo_jseg {
    const char *s; /* Points into the path's text; not NUL-terminated. */
    size_t len;
    long index; /* The array index of a decimal segment, else -1. */
    bool any;   /* The segment is "*". */
};

struct fo_jpath {
    char *text; /* From malloc(): the source text, NUL-terminated. */
    struct fo_jseg seg[FO_JPATH_MAX];
    size_t n;    /* Segments used, >= 1. */
    size_t nany; /* How many of them are "*". */
};

/* Compile 's' into *p. Returns 0, -ENOMEM, or -EINVAL with the reason in err (a
 * NUL-terminated message of at most errlen bytes). *p needs fo_jpath_free only after 0. */
int fo_jpath_compile(struct fo_jpath *p, const char *s, char *err, size_t errlen);

/* Free what a compiled path holds. Safe on a zeroed one. */
void fo_jpath_free(struct fo_jpath *p);

/* True when segment 'g' names the key of n bytes at k (decoded), ignoring "*". */
static inline bool fo_jseg_is_key(const struct fo_jseg *g, const char *k, size_t n)
{
    if (g->any || g->len != n)
        return false;
    for (size_t i = 0; i < n; i++) /* Keys are short: no call to memcmp. */
        if (g->s[i] != k[i])
            return false;
    return true;
}

#endif /* FO_JPATH_H */
