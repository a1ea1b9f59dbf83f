/* tmpl.c -- endpoint path patterns and backend URL templates. See tmpl.h.
 *
 * Both are compiled once at config load into flat piece lists, so the hot
 * path (one match per request, one expansion per backend call) is a single
 * pass with no parsing: a path is an array of segments (literal bytes or a
 * parameter index), a template an array of pieces (literal bytes or a
 * parameter index). Matching is on the raw path the client sent: literal
 * segments compare byte for byte, parameter segments are percent-decoded.
 * Decoding happens only after the whole path matched structurally, so a
 * malformed escape in a path that belongs to another route is "no match",
 * not an error. */
#include "tmpl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One piece of a compiled URL template. */
struct piece {
    const char *lit; /* Literal bytes (into fo_tmpl.src), or NULL for a parameter. */
    size_t len;      /* Length of 'lit'. */
    int param;       /* Parameter index into fo_params when 'lit' is NULL. */
};

struct fo_tmpl {
    char *src;            /* Template text, from malloc(). */
    struct piece *pieces; /* npieces of them, from malloc(). */
    size_t npieces;
    size_t litlen; /* Sum of the literal lengths (to size the output). */
};

/* Bytes that pass fo_url_encode unchanged: RFC 3986 unreserved. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a reason into err (when given) and return -EINVAL. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* ---- Paths -------------------------------------------------------------- */

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
        return fail(err, errlen, "empty segment (\"//\")");
    if (len >= 1 && s[0] == '{') {
        if (len < 3 || s[len - 1] != '}')
            return fail(err, errlen, "a placeholder must be a whole segment \"{name}\"");
        for (size_t i = 1; i + 1 < len; i++) {
            if (!is_name_char((unsigned char)s[i]))
                return fail(err, errlen, "placeholder name must be [A-Za-z0-9_]+");
        }
        if (fo_path_param_index(p, s + 1, len - 2) >= 0)
            return fail(err, errlen, "placeholder {%.*s} appears twice", (int)(len - 2), s + 1);
        if (p->nparams == FO_MAX_PARAMS)
            return fail(err, errlen, "more than %d placeholders", FO_MAX_PARAMS);
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
            return fail(err, errlen, "a placeholder must be a whole segment \"{name}\"");
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return fail(err, errlen,
                        "invalid byte 0x%02x (use printable ASCII, percent-encode the rest)", c);
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
        return fail(err, errlen, "must start with '/'");
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
        fail(err, errlen, "out of memory");
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
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
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

/* ---- URL templates ------------------------------------------------------ */

void fo_tmpl_destroy(struct fo_tmpl *t)
{
    if (!t)
        return;
    free(t->pieces);
    free(t->src);
    free(t);
}

static void add_literal(struct fo_tmpl *t, const char *s, size_t len)
{
    if (len == 0)
        return;
    t->pieces[t->npieces++] = (struct piece){.lit = s, .len = len, .param = -1};
    t->litlen += len;
}

int fo_tmpl_compile(struct fo_tmpl **out, const char *url, const struct fo_path *path, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!url)
        return fail(err, errlen, "missing URL");
    size_t skip;
    if (strncmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return fail(err, errlen, "must start with http:// or https://");

    for (const char *c = url; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if (b <= 0x20 || b == 0x7f)
            return fail(err, errlen, "contains a space or control byte 0x%02x", b);
    }
    size_t alen = strcspn(url + skip, "/?#");
    const char *auth = url + skip;
    if (alen == 0 || auth[0] == ':')
        return fail(err, errlen, "missing host");
    if (memchr(auth, '{', alen) || memchr(auth, '}', alen))
        return fail(err, errlen, "placeholders are not allowed in the scheme or host:port");

    int rc = -ENOMEM;
    struct fo_tmpl *t = calloc(1, sizeof *t);
    if (!t)
        goto fail;
    t->src = strdup(url);
    if (!t->src)
        goto fail;
    /* At most one literal before each placeholder, plus one after the last. */
    size_t nopen = 0;
    for (const char *c = url; *c; c++)
        nopen += *c == '{';
    t->pieces = calloc(2 * nopen + 1, sizeof *t->pieces);
    if (!t->pieces)
        goto fail;

    rc = -EINVAL;
    const char *lit = t->src;
    const char *c = t->src + skip + alen;
    for (; *c; c++) {
        if (*c == '}') {
            fail(err, errlen, "'}' without '{'");
            goto fail;
        }
        if (*c != '{')
            continue;
        const char *close = strchr(c + 1, '}');
        if (!close) {
            fail(err, errlen, "'{' without a closing '}'");
            goto fail;
        }
        const char *name = c + 1;
        size_t nlen = (size_t)(close - name);
        for (size_t i = 0; i < nlen; i++) {
            if (!is_name_char((unsigned char)name[i])) {
                fail(err, errlen, "placeholder name must be [A-Za-z0-9_]+");
                goto fail;
            }
        }
        if (nlen == 0) {
            fail(err, errlen, "empty placeholder {}");
            goto fail;
        }
        int idx = path ? fo_path_param_index(path, name, nlen) : -1;
        if (idx < 0) {
            fail(err, errlen, "{%.*s} is not a parameter of the endpoint path", (int)nlen, name);
            goto fail;
        }
        add_literal(t, lit, (size_t)(c - lit));
        t->pieces[t->npieces++] = (struct piece){.lit = NULL, .len = 0, .param = idx};
        c = close;
        lit = close + 1;
    }
    add_literal(t, lit, (size_t)(c - lit));
    *out = t;
    return 0;
fail:
    if (rc == -ENOMEM)
        fail(err, errlen, "out of memory");
    fo_tmpl_destroy(t);
    return rc;
}

/* Length of the percent-encoding of [s, s+n). */
static size_t encoded_len(const char *s, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++)
        len += is_unreserved((unsigned char)s[i]) ? 0 : 2;
    return len;
}

/* Encode into room already reserved in 'out'. */
static void encode_into(struct fo_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            *d++ = (char)c;
        } else {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
        }
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
}

int fo_url_encode(struct fo_buf *out, const char *s, size_t n)
{
    int rc = fo_buf_reserve(out, encoded_len(s, n));
    if (rc < 0)
        return rc;
    encode_into(out, s, n);
    return 0;
}

int fo_tmpl_expand(const struct fo_tmpl *t, const struct fo_params *params, struct fo_buf *out)
{
    /* Size the result exactly, reserve once, then copy: no growth mid-way, and
     * on error nothing has been appended. */
    size_t total = t->litlen;
    for (size_t i = 0; i < t->npieces; i++) {
        const struct piece *pc = &t->pieces[i];
        if (pc->lit)
            continue;
        if ((size_t)pc->param >= params->n)
            return -EINVAL;
        size_t add = encoded_len(params->p[pc->param].value, params->p[pc->param].len);
        if (total > SIZE_MAX - add)
            return -E2BIG;
        total += add;
    }
    int rc = fo_buf_reserve(out, total);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t->npieces; i++) {
        const struct piece *pc = &t->pieces[i];
        if (pc->lit) {
            memcpy(out->data + out->len, pc->lit, pc->len);
            out->len += pc->len;
        } else {
            encode_into(out, params->p[pc->param].value, params->p[pc->param].len);
        }
    }
    out->data[out->len] = '\0';
    return 0;
}
