/* tmpl.c -- templates with placeholders. See tmpl.h (endpoint paths: path.c).
 *
 * A template is compiled once at config load into a flat list of pieces (literal bytes or
 * a slot of its endpoint's scope, with a default), so one expansion per backend call is a
 * single pass with no parsing.
 *
 * Placeholders are namespaced so that new sources of values (an
 * authenticated identity, a JWT claim, a sibling call's answer) are a row in
 * the caller's namespace table with a bind and a lookup, not a change here.
 * A scope collects the distinct placeholders of one endpoint as slots; a
 * request looks each slot up once, and every template of the endpoint reads
 * the values by slot index. A value is never parsed for structure: in a URL
 * it is percent-encoded whole, in a header it is copied whole or, when it
 * holds CR, LF or NUL, refused. */
#include "tmpl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "tmpl_chars.h"

/* One piece of a compiled template. */
struct piece {
    const char *lit; /* Literal bytes (into fo_tmpl.src), or NULL for a placeholder. */
    size_t len;      /* Length of 'lit'. */
    unsigned slot;   /* Placeholder: its slot in the scope. */
    bool in_path;    /* Placeholder in a URL's path ("." and ".." refused). */
    const char *def; /* Placeholder: its default (into fo_tmpl.src), or NULL. */
    size_t deflen;
};

struct fo_tmpl {
    char *src;            /* Template text, from malloc(). */
    struct piece *pieces; /* npieces of them, from malloc(). */
    size_t npieces;
    size_t litlen;          /* Sum of the literal lengths (to size the output). */
    enum fo_tmpl_kind kind; /* How values are placed. */
    bool dynamic;           /* Has a placeholder. */
};

/* One distinct placeholder of a scope. */
struct slot {
    size_t ns;  /* Index into the scope's namespaces. */
    int id;     /* What the namespace's bind returned. */
    char *text; /* "ns.name" or "name", from malloc(). */
    size_t off; /* Where the name starts in 'text'. */
};

struct fo_tmpl_scope {
    const struct fo_tmpl_ns *ns; /* Borrowed: nns namespaces. */
    size_t nns;
    const void *arg; /* Borrowed: handed to each bind. */
    size_t n;        /* Slots in use. */
    struct slot slots[FO_TMPL_MAX_SLOTS];
};

/* Bytes that pass fo_url_encode unchanged: RFC 3986 unreserved. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int fo__tmpl_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* ---- Scopes ------------------------------------------------------------- */

int fo_tmpl_scope_create(struct fo_tmpl_scope **out, const struct fo_tmpl_ns *ns, size_t nns,
                         const void *arg)
{
    struct fo_tmpl_scope *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return -ENOMEM;
    s->ns = ns;
    s->nns = nns;
    s->arg = arg;
    return 0;
}

void fo_tmpl_scope_destroy(struct fo_tmpl_scope *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->slots[i].text);
    free(s);
}

size_t fo_tmpl_scope_slots(const struct fo_tmpl_scope *s)
{
    return s ? s->n : 0;
}

const char *fo_tmpl_slot_name(const struct fo_tmpl_scope *s, size_t i)
{
    return s->slots[i].text;
}

void fo_tmpl_resolve(const struct fo_tmpl_scope *s, const void *req, struct fo_tmpl_vals *out)
{
    out->n = s ? s->n : 0;
    for (size_t i = 0; i < out->n; i++) {
        const struct slot *sl = &s->slots[i];
        const struct fo_tmpl_ns *ns = &s->ns[sl->ns];
        const char *name = sl->text + sl->off;
        out->v[i] = (struct fo_tmpl_val){0};
        ns->lookup(req, name, strlen(name), sl->id, &out->v[i]);
    }
}

/* The slot of namespace 'nsi', name [name, name+n): found, or bound and added. Returns its
 * index, or -EINVAL / -ENOMEM. */
static int slot_of(struct fo_tmpl_scope *s, size_t nsi, const char *name, size_t n, char *err,
                   size_t errlen)
{
    const struct fo_tmpl_ns *ns = &s->ns[nsi];
    for (size_t i = 0; i < s->n; i++) {
        const struct slot *sl = &s->slots[i];
        const char *have = sl->text + sl->off;
        if (sl->ns != nsi || strlen(have) != n)
            continue;
        if (ns->fold_case ? strncasecmp(have, name, n) == 0 : memcmp(have, name, n) == 0)
            return (int)i;
    }
    int id = ns->bind(s->arg, name, n, err, errlen);
    if (id < 0)
        return id;
    if (s->n == FO_TMPL_MAX_SLOTS)
        return fo__tmpl_fail(err, errlen, "more than %d distinct placeholders in one endpoint",
                             FO_TMPL_MAX_SLOTS);
    size_t nslen = strcmp(ns->name, "*") == 0 ? 0 : strlen(ns->name); /* "*": the whole spec. */
    size_t off = nslen ? nslen + 1 : 0;
    char *text = malloc(off + n + 1);
    if (!text)
        return -ENOMEM;
    if (nslen) {
        memcpy(text, ns->name, nslen);
        text[nslen] = '.';
    }
    memcpy(text + off, name, n);
    text[off + n] = '\0';
    s->slots[s->n] = (struct slot){.ns = nsi, .id = id, .text = text, .off = off};
    return (int)s->n++;
}

/* Known namespace names, for a message: "query, header". */
static void ns_list(const struct fo_tmpl_scope *s, char *dst, size_t len)
{
    size_t o = 0;
    dst[0] = '\0';
    for (size_t i = 0; s && i < s->nns && o < len; i++) {
        if (s->ns[i].name[0])
            o += (size_t)snprintf(dst + o, len - o, "%s%s", o ? ", " : "", s->ns[i].name);
    }
}

/* Parse the placeholder between braces [a, a+n) into 'pc'. */
static int parse_placeholder(struct fo_tmpl_scope *s, const char *a, size_t n, struct piece *pc,
                             char *err, size_t errlen)
{
    if (n == 0)
        return fo__tmpl_fail(err, errlen, "empty placeholder {}");
    const char *bar = memchr(a, '|', n);
    size_t speclen = bar ? (size_t)(bar - a) : n;
    pc->def = NULL;
    pc->deflen = 0;
    if (bar) {
        pc->def = bar + 1;
        pc->deflen = n - speclen - 1;
        if (memchr(pc->def, '{', pc->deflen))
            return fo__tmpl_fail(err, errlen, "the default of {%.*s} holds '{'", (int)speclen, a);
    }
    const char *dot = memchr(a, '.', speclen);
    const char *ns = a;
    size_t nslen = dot ? (size_t)(dot - a) : 0;
    const char *name = dot ? dot + 1 : a;
    size_t nlen = dot ? speclen - nslen - 1 : speclen;
    if (!dot) {
        for (size_t i = 0; i < nlen; i++) {
            if (!fo__tmpl_is_name_char((unsigned char)name[i]))
                return fo__tmpl_fail(err, errlen, "placeholder name must be [A-Za-z0-9_]+");
        }
        if (nlen == 0)
            return fo__tmpl_fail(err, errlen, "empty placeholder name in {%.*s}", (int)n, a);
    }
    if (dot && (nlen == 0 || nslen == 0))
        return fo__tmpl_fail(err, errlen, "empty %s in {%.*s}", nlen ? "namespace" : "name",
                             (int)speclen, a);
    size_t nsi = 0;
    while (s && nsi < s->nns &&
           !(strlen(s->ns[nsi].name) == nslen && memcmp(s->ns[nsi].name, ns, nslen) == 0))
        nsi++;
    size_t any = 0; /* The catch-all namespace "*", if the scope has one. */
    while (s && any < s->nns && strcmp(s->ns[any].name, "*") != 0)
        any++;
    if (s && any < s->nns && (nsi == s->nns || !dot)) {
        /* What no named namespace takes, or a bare name that is no path parameter. */
        char first[200] = "";
        int slot = -ENOENT;
        if (nsi < s->nns) {
            slot = slot_of(s, nsi, name, nlen, first, sizeof first);
            if (slot >= 0 || slot == -ENOMEM)
                goto placed;
        }
        slot = slot_of(s, any, a, speclen, err, errlen);
        if (slot == -ENOENT && first[0])
            return fo__tmpl_fail(err, errlen, "%s", first);
        if (slot == -ENOENT)
            nsi = s->nns; /* Not its either: the unknown namespace below. */
        else if (slot < 0)
            return slot;
    placed:
        if (slot >= 0) {
            pc->lit = NULL;
            pc->len = 0;
            pc->slot = (unsigned)slot;
            return 0;
        }
        if (slot == -ENOMEM)
            return slot;
    }
    if (!s || nsi == s->nns) {
        char known[128];
        ns_list(s, known, sizeof known);
        if (!dot)
            return fo__tmpl_fail(err, errlen, "{%.*s} is not a parameter of the endpoint path",
                                 (int)nlen, name);
        return fo__tmpl_fail(err, errlen,
                             "unknown placeholder namespace \"%.*s\" in {%.*s} (known: %s)",
                             (int)nslen, ns, (int)speclen, a, known[0] ? known : "none");
    }
    for (size_t i = 0; dot && i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '{')
            return fo__tmpl_fail(err, errlen, "invalid byte 0x%02x in the name of {%.*s}", c,
                                 (int)speclen, a);
    }
    int slot = slot_of(s, nsi, name, nlen, err, errlen);
    if (slot < 0)
        return slot;
    pc->lit = NULL;
    pc->len = 0;
    pc->slot = (unsigned)slot;
    return 0;
}

void fo_tmpl_destroy(struct fo_tmpl *t)
{
    if (!t)
        return;
    free(t->pieces);
    free(t->src);
    free(t);
}

bool fo_tmpl_is_static(const struct fo_tmpl *t)
{
    return !t->dynamic;
}

const char *fo_tmpl_text(const struct fo_tmpl *t)
{
    return t->src;
}

static void add_literal(struct fo_tmpl *t, const char *s, size_t len)
{
    if (len == 0)
        return;
    t->pieces[t->npieces++] = (struct piece){.lit = s, .len = len};
    t->litlen += len;
}

/* A URL's checks before its placeholders: scheme, bytes, host. Sets *skip to where the path
 * (or query) starts. */
static int url_prefix(const char *url, size_t *skip, char *err, size_t errlen)
{
    size_t scheme;
    if (strncmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(url, "https://", 8) == 0)
        scheme = 8;
    else
        return fo__tmpl_fail(err, errlen, "must start with http:// or https://");
    for (const char *c = url; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if (b <= 0x20 || b == 0x7f)
            return fo__tmpl_fail(err, errlen, "contains a space or control byte 0x%02x", b);
    }
    size_t alen = strcspn(url + scheme, "/?#");
    const char *auth = url + scheme;
    if (alen == 0 || auth[0] == ':')
        return fo__tmpl_fail(err, errlen, "missing host");
    /* A value choosing the host would let a client send the call anywhere. */
    if (memchr(auth, '{', alen) || memchr(auth, '}', alen))
        return fo__tmpl_fail(err, errlen,
                             "placeholders are not allowed in the scheme or host:port");
    *skip = scheme + alen;
    return 0;
}

int fo_tmpl_compile(struct fo_tmpl **out, const char *text, enum fo_tmpl_kind kind,
                    struct fo_tmpl_scope *scope, char *err, size_t errlen)
{
    *out = NULL;
    if (!text)
        return fo__tmpl_fail(err, errlen, "missing text");
    size_t skip = 0;
    int rc;
    if (kind == FO_TMPL_URL) {
        rc = url_prefix(text, &skip, err, errlen);
        if (rc < 0)
            return rc;
    }
    rc = -ENOMEM;
    struct fo_tmpl *t = calloc(1, sizeof *t);
    if (!t)
        goto fail;
    t->kind = kind;
    t->src = strdup(text);
    if (!t->src)
        goto fail;
    /* Each brace ends at most one literal and starts one piece, plus the last literal. */
    size_t nbrace = 0;
    for (const char *c = text; *c; c++)
        nbrace += *c == '{' || *c == '}';
    t->pieces = calloc(2 * nbrace + 1, sizeof *t->pieces);
    if (!t->pieces)
        goto fail;

    rc = -EINVAL;
    bool in_path = true;
    const char *lit = t->src;
    const char *c = t->src + skip;
    for (; *c; c++) {
        if (kind == FO_TMPL_URL && (*c == '?' || *c == '#'))
            in_path = false;
        if (kind != FO_TMPL_URL && (c[0] == '{' || c[0] == '}') && c[1] == c[0]) {
            add_literal(t, lit, (size_t)(c - lit) + 1); /* Up to and with the first brace. */
            c++;
            lit = c + 1;
            continue;
        }
        if (*c == '}') {
            fo__tmpl_fail(err, errlen, "'}' without '{'");
            rc = -EINVAL;
            goto fail;
        }
        if (*c != '{')
            continue;
        const char *close = strchr(c + 1, '}');
        if (!close) {
            fo__tmpl_fail(err, errlen, "'{' without a closing '}'");
            rc = -EINVAL;
            goto fail;
        }
        struct piece pc = {0};
        rc = parse_placeholder(scope, c + 1, (size_t)(close - c - 1), &pc, err, errlen);
        if (rc < 0)
            goto fail;
        pc.in_path = kind == FO_TMPL_URL && in_path;
        add_literal(t, lit, (size_t)(c - lit));
        t->pieces[t->npieces++] = pc;
        t->dynamic = true;
        c = close;
        lit = close + 1;
    }
    add_literal(t, lit, (size_t)(c - lit));
    *out = t;
    return 0;
fail:
    if (rc == -ENOMEM)
        fo__tmpl_fail(err, errlen, "out of memory");
    fo_tmpl_destroy(t);
    return rc;
}

size_t fo_url_decode(char *dst, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi = c == '%' && i + 2 < n ? fo__tmpl_hexval((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? fo__tmpl_hexval((unsigned char)s[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        dst[o++] = (char)c;
    }
    return o;
}

/* Walks the bytes of a value, decoding %XX when it is percent-encoded. */
struct vwalk {
    const unsigned char *p;
    size_t n, i;
    bool pct;
};

/* The next byte into *c; false at the end. */
static bool vnext(struct vwalk *w, unsigned char *c)
{
    if (w->i >= w->n)
        return false;
    *c = w->p[w->i++];
    if (w->pct && *c == '%' && w->i + 1 < w->n) {
        int hi = fo__tmpl_hexval(w->p[w->i]);
        int lo = fo__tmpl_hexval(w->p[w->i + 1]);
        if (hi >= 0 && lo >= 0) {
            *c = (unsigned char)(hi << 4 | lo);
            w->i += 2;
        }
    }
    return true;
}

/* Bytes this value adds to the output, or -EILSEQ when it cannot be placed there. */
static ssize_t placed_len(const struct piece *pc, enum fo_tmpl_kind kind, struct vwalk w)
{
    size_t len = 0, raw = 0;
    unsigned char c, first[2] = {0, 0};
    while (vnext(&w, &c)) {
        if (raw < 2)
            first[raw] = c;
        raw++;
        if (kind != FO_TMPL_URL) {
            if (kind == FO_TMPL_HEADER && (c == '\r' || c == '\n' || c == '\0'))
                return -EILSEQ;
            len++;
        } else {
            len += is_unreserved(c) ? 1 : 3;
        }
    }
    if (pc->in_path &&
        ((raw == 1 && first[0] == '.') || (raw == 2 && first[0] == '.' && first[1] == '.')))
        return -EILSEQ;
    return (ssize_t)len;
}

static void place(struct fo_buf *out, enum fo_tmpl_kind kind, struct vwalk w)
{
    static const char hex[] = "0123456789ABCDEF";
    char *d = out->data + out->len;
    unsigned char c;
    while (vnext(&w, &c)) {
        if (kind != FO_TMPL_URL || is_unreserved(c)) {
            *d++ = (char)c;
        } else {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
        }
    }
    out->len = (size_t)(d - out->data);
}

/* The value a placeholder piece takes, or false when absent without a default. */
static bool piece_value(const struct piece *pc, const struct fo_tmpl_vals *vals, struct vwalk *w)
{
    const struct fo_tmpl_val *v = &vals->v[pc->slot];
    if (v->p) {
        *w = (struct vwalk){(const unsigned char *)v->p, v->len, 0, v->pct};
        return true;
    }
    if (!pc->def)
        return false;
    *w = (struct vwalk){(const unsigned char *)pc->def, pc->deflen, 0, false};
    return true;
}

int fo_tmpl_expand(const struct fo_tmpl *t, const struct fo_tmpl_vals *vals, struct fo_buf *out,
                   size_t *slot)
{
    /* Size the result exactly, reserve once, then copy: no growth mid-way, and
     * on error nothing has been appended. */
    size_t total = t->litlen;
    for (size_t i = 0; i < t->npieces; i++) {
        const struct piece *pc = &t->pieces[i];
        if (pc->lit)
            continue;
        if (pc->slot >= vals->n)
            return -EINVAL;
        struct vwalk w;
        if (!piece_value(pc, vals, &w)) {
            if (slot)
                *slot = pc->slot;
            return -ENOENT;
        }
        ssize_t add = placed_len(pc, t->kind, w);
        if (add < 0) {
            if (slot)
                *slot = pc->slot;
            return (int)add;
        }
        if (total > SIZE_MAX - (size_t)add)
            return -E2BIG;
        total += (size_t)add;
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
            struct vwalk w;
            piece_value(pc, vals, &w);
            place(out, t->kind, w);
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Length of the percent-encoding of [s, s+n). */
static size_t encoded_len(const char *s, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++)
        len += is_unreserved((unsigned char)s[i]) ? 0 : 2;
    return len;
}

int fo_url_encode(struct fo_buf *out, const char *s, size_t n)
{
    int rc = fo_buf_reserve(out, encoded_len(s, n));
    if (rc < 0)
        return rc;
    place(out, FO_TMPL_URL, (struct vwalk){(const unsigned char *)s, n, 0, false});
    out->data[out->len] = '\0';
    return 0;
}

size_t fo_tmpl_slots(const struct fo_tmpl *t, unsigned *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; t && i < t->npieces; i++) {
        const struct piece *pc = &t->pieces[i];
        if (pc->lit)
            continue;
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = out[k] == pc->slot;
        if (!seen && n < max)
            out[n++] = pc->slot;
    }
    return n;
}

unsigned fo_tmpl_slot_id(const struct fo_tmpl_scope *s, size_t i)
{
    return (unsigned)s->slots[i].id;
}

bool fo_tmpl_slot_in(const struct fo_tmpl_scope *s, size_t i, const char *ns)
{
    return strcmp(s->ns[s->slots[i].ns].name, ns) == 0;
}
