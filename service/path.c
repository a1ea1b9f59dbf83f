/* path.c -- endpoint path patterns. See path.h.
 *
 * A pattern is compiled once at config load into an array of segments (literal bytes or a
 * parameter index), so matching is a single pass with no parsing. It works on the raw path
 * the client sent: literal segments compare byte for byte, parameter segments are
 * percent-decoded -- only after the whole path matched structurally, so a malformed escape
 * in a path that belongs to another route is "no match", not an error. */
#include "path.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_chars.h"

/* One '/'-separated segment of a compiled path. */
struct seg {
    const char *lit; /* Literal bytes (into fo_path.src), or NULL for a parameter. */
    size_t len;      /* Length of 'lit'. */
    int param;       /* Parameter index when 'lit' is NULL. */
};

struct fo_path {
    char *src;        /* Pattern text, from malloc(). */
    struct seg *segs; /* nsegs of them, from malloc(). */
    size_t nsegs;
    char *names[FO_MAX_PARAMS]; /* Parameter names, each from malloc(). */
    size_t nparams;
};

void fo_path_destroy(struct fo_path *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nparams; i++)
        free(p->names[i]);
    free(p->segs);
    free(p->src);
    free(p);
}

const char *fo_path_pattern(const struct fo_path *p)
{
    return p->src;
}

int fo_path_param_index(const struct fo_path *p, const char *name, size_t n)
{
    for (size_t i = 0; i < p->nparams; i++) {
        if (strlen(p->names[i]) == n && memcmp(p->names[i], name, n) == 0)
            return (int)i;
    }
    return -1;
}

/* Check one pattern segment [s, s+len) and add it to p. */
static int add_segment(struct fo_path *p, const char *s, size_t len, bool last, char *err,
                       size_t errlen)
{
    struct seg *sg = &p->segs[p->nsegs];
    if (len == 0 && !last)
        return fo__tmpl_fail(err, errlen, "empty segment (\"//\")");
    if (len >= 1 && s[0] == '{') {
        if (len < 3 || s[len - 1] != '}')
            return fo__tmpl_fail(err, errlen, "a placeholder must be a whole segment \"{name}\"");
        for (size_t i = 1; i + 1 < len; i++) {
            if (!fo__tmpl_is_name_char((unsigned char)s[i]))
                return fo__tmpl_fail(err, errlen, "placeholder name must be [A-Za-z0-9_]+");
        }
        if (fo_path_param_index(p, s + 1, len - 2) >= 0)
            return fo__tmpl_fail(err, errlen, "placeholder {%.*s} appears twice", (int)(len - 2),
                                 s + 1);
        if (p->nparams == FO_MAX_PARAMS)
            return fo__tmpl_fail(err, errlen, "more than %d placeholders", FO_MAX_PARAMS);
        char *name = strndup(s + 1, len - 2);
        if (!name)
            return -ENOMEM;
        p->names[p->nparams] = name;
        sg->lit = NULL;
        sg->len = 0;
        sg->param = (int)p->nparams++;
        p->nsegs++;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{' || c == '}')
            return fo__tmpl_fail(err, errlen, "a placeholder must be a whole segment \"{name}\"");
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return fo__tmpl_fail(
                err, errlen, "invalid byte 0x%02x (use printable ASCII, percent-encode the rest)",
                c);
    }
    sg->lit = s;
    sg->len = len;
    sg->param = -1;
    p->nsegs++;
    return 0;
}

int fo_path_compile(struct fo_path **out, const char *pattern, char *err, size_t errlen)
{
    *out = NULL;
    if (!pattern || pattern[0] != '/')
        return fo__tmpl_fail(err, errlen, "must start with '/'");
    int rc = -ENOMEM;
    struct fo_path *p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->src = strdup(pattern);
    if (!p->src)
        goto fail;
    size_t nslash = 0;
    for (const char *c = pattern; *c; c++)
        nslash += *c == '/';
    p->segs = calloc(nslash, sizeof *p->segs);
    if (!p->segs)
        goto fail;
    const char *s = p->src + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        rc = add_segment(p, s, len, !slash, err, errlen);
        if (rc < 0)
            goto fail;
        if (!slash)
            break;
        s = slash + 1;
    }
    *out = p;
    return 0;
fail:
    if (rc == -ENOMEM)
        fo__tmpl_fail(err, errlen, "out of memory");
    fo_path_destroy(p);
    return rc;
}

void fo_params_clear(struct fo_params *params)
{
    for (size_t i = 0; i < params->n; i++) {
        free(params->p[i].value);
        params->p[i].value = NULL;
        params->p[i].name = NULL;
        params->p[i].len = 0;
    }
    params->n = 0;
}

/* Percent-decode [s, s+n) into a new NUL-terminated string. Returns 0,
 * -EINVAL (bad escape, too long, "." or "..") or -ENOMEM. */
static int decode_param(const char *s, size_t n, char **out, size_t *outlen)
{
    char tmp[FO_MAX_PARAM_LEN];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? fo__tmpl_hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? fo__tmpl_hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (len == sizeof tmp)
            return -EINVAL;
        tmp[len++] = (char)c;
    }
    if ((len == 1 && tmp[0] == '.') || (len == 2 && tmp[0] == '.' && tmp[1] == '.'))
        return -EINVAL;
    char *v = malloc(len + 1);
    if (!v)
        return -ENOMEM;
    memcpy(v, tmp, len);
    v[len] = '\0';
    *out = v;
    *outlen = len;
    return 0;
}

int fo_path_match(const struct fo_path *p, const char *raw, size_t n, struct fo_params *params)
{
    /* Raw bounds of each parameter segment, decoded once the whole path matched. */
    const char *praw[FO_MAX_PARAMS];
    size_t plen[FO_MAX_PARAMS];

    if (n == 0 || raw[0] != '/')
        return 0;
    const char *s = raw + 1;
    const char *end = raw + n;
    for (size_t i = 0; i < p->nsegs; i++) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *segend = slash ? slash : end;
        size_t len = (size_t)(segend - s);
        bool last = i + 1 == p->nsegs;
        if (last != !slash)
            return 0; /* Fewer or more segments than the pattern. */
        const struct seg *sg = &p->segs[i];
        if (sg->lit) {
            if (len != sg->len || memcmp(s, sg->lit, len) != 0)
                return 0;
        } else {
            if (len == 0)
                return 0;
            praw[sg->param] = s;
            plen[sg->param] = len;
        }
        s = segend + (slash ? 1 : 0);
    }

    for (size_t i = 0; i < p->nparams; i++) {
        int rc = decode_param(praw[i], plen[i], &params->p[i].value, &params->p[i].len);
        if (rc < 0) {
            fo_params_clear(params);
            return rc;
        }
        params->p[i].name = p->names[i];
        params->n = i + 1;
    }
    return 1;
}
