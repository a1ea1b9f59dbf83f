/* forward.c -- the client's query parameters and header fields an endpoint passes on
 * (see forward.h).
 *
 * Query parameters are read from libmicrohttpd's parse of the target, which
 * keeps each name and value as the client encoded it (server.c keeps the
 * escapes) except that a '+' already reads as a space. A parameter goes out
 * as the client wrote it when every byte is valid in a query (RFC 3986:
 * unreserved, %XX, sub-delims, ':', '@', '/', '?'), a space going back to
 * '+'; any other byte (a raw non-ASCII byte, '"', '<', a '%' that starts no
 * escape, ...) is percent-encoded, the rest left as written, so what the
 * client meant reaches the backend unchanged and nothing the client sent
 * can add a parameter or end the target. */
#include "forward.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tmpl.h"

void fo_fwd_list_free(struct fo_fwd_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    *l = (struct fo_fwd_list){0};
}

const struct fo_fwd_list *fo_fwd_effective(const struct fo_fwd_list *backend,
                                           const struct fo_fwd_list *endpoint)
{
    return backend->given ? backend : endpoint;
}

bool fo_fwd_active(const struct fo_fwd_list *l)
{
    return l->all || l->n > 0;
}

static bool is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

const char *fo_fwd_header_never(const char *name, size_t n)
{
    static const char *const hop[] = {"Connection",        "Keep-Alive", "TE", "Trailer",
                                      "Transfer-Encoding", "Upgrade",    NULL};
    static const char *const own[] = {"X-Timeout-Ms", "X-Request-Id", "X-Forwarded-Proto",
                                      "X-Forwarded-Host", NULL};
    for (size_t i = 0; hop[i]; i++)
        if (is(name, n, hop[i]))
            return "a hop-by-hop field";
    if (n >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
        return "a hop-by-hop field";
    for (size_t i = 0; own[i]; i++)
        if (is(name, n, own[i]))
            return "set by fanout";
    if (is(name, n, "Host") || is(name, n, "Content-Length") || is(name, n, "Expect"))
        return "about the connection to fanout";
    if (is(name, n, "Accept-Encoding"))
        return "fanout reads the answer, in no content coding";
    return NULL;
}

bool fo_fwd_names(const struct fo_fwd_list *l, const char *name, size_t n, bool fold)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->names[i];
        if (strlen(s) == n && (fold ? strncasecmp(s, name, n) : memcmp(s, name, n)) == 0)
            return true;
    }
    return false;
}

/* ---- query ---- */

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A byte a query name or value may hold as written ('=' in a value only). */
static bool query_byte_ok(unsigned char c, bool value)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$'()*+,;:@/?", c)) || (value && c == '=');
}

/* Append one name or value as the client wrote it where valid, encoded where not. */
static int put_component(struct fo_buf *out, const char *s, size_t n, bool value)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = fo_buf_reserve(out, 3 * n);
    if (rc < 0)
        return rc;
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            *d++ = '+'; /* The parser's reading of a '+'. */
        } else if (c == '%' && i + 2 < n && is_hex((unsigned char)s[i + 1]) &&
                   is_hex((unsigned char)s[i + 2])) {
            memcpy(d, s + i, 3);
            d += 3;
            i += 2;
        } else if (c != '%' && query_byte_ok(c, value)) {
            *d++ = (char)c;
        } else {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
        }
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
    return 0;
}

struct query_fwd {
    const struct fo_fwd_list *l;
    struct fo_buf *out;
    char sep; /* Before the next parameter: '?', '&' or none. */
    int rc;
};

static enum MHD_Result fwd_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                               const char *value, size_t value_size)
{
    struct query_fwd *q = cls;
    (void)kind;
    if (!q->l->all) {
        char tmp[3 * FO_FWD_MAX_NAME]; /* Each decoded byte is at most 3 raw ones. */
        if (key_size > sizeof tmp)
            return MHD_YES; /* Decodes to more than any listed name. */
        size_t n = fo_url_decode(tmp, key, key_size);
        if (!fo_fwd_names(q->l, tmp, n, false))
            return MHD_YES;
    }
    if (q->sep)
        q->rc = fo_buf_putc(q->out, q->sep);
    q->sep = '&';
    if (q->rc == 0)
        q->rc = put_component(q->out, key, key_size, false);
    if (q->rc == 0 && value)
        q->rc = fo_buf_putc(q->out, '=');
    if (q->rc == 0 && value)
        q->rc = put_component(q->out, value, value_size, true);
    return q->rc == 0 ? MHD_YES : MHD_NO;
}

int fo_fwd_query(struct fo_buf *url, size_t start, const struct fo_fwd_list *l,
                 const struct fo_fwd_client *cl)
{
    if (!fo_fwd_active(l))
        return 0;
    const char *u = url->data + start;
    const char *qm = strchr(u, '?');
    char last = url->len > start ? url->data[url->len - 1] : '\0';
    struct query_fwd q = {l, url, !qm ? '?' : (last == '?' || last == '&') ? '\0' : '&', 0};
    MHD_get_connection_values_n(cl->conn, MHD_GET_ARGUMENT_KIND, fwd_arg, &q);
    return q.rc;
}

/* ---- headers ---- */

#define MAX_CONN_TOKENS 32

struct header_fwd {
    const struct fo_fwd_list *l;
    const char *secret; /* Borrowed: a credential field "*" leaves out, or NULL. */
    struct fo_buf *out;
    size_t lines;
    struct fo_buf xff; /* The client's X-Forwarded-For values, joined by ", ". */
    struct {
        const char *p;
        size_t n;
    } tok[MAX_CONN_TOKENS]; /* Names the client's Connection lists. */
    size_t ntok;
    bool tok_overflow; /* More than MAX_CONN_TOKENS: scan the fields again. */
    struct MHD_Connection *conn;
    int rc;
};

static bool has_bad_byte(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return true;
    return false;
}

/* Call fn(arg, token, len) for each comma-separated token of a Connection value. */
static bool each_token(const char *v, size_t vn, bool (*fn)(void *, const char *, size_t),
                       void *arg)
{
    size_t i = 0;
    while (i < vn) {
        while (i < vn && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vn && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && !fn(arg, v + s, e - s))
            return false;
    }
    return true;
}

static bool keep_token(void *arg, const char *t, size_t n)
{
    struct header_fwd *h = arg;
    if (h->ntok == MAX_CONN_TOKENS) {
        h->tok_overflow = true;
        return false;
    }
    h->tok[h->ntok].p = t;
    h->tok[h->ntok++].n = n;
    return true;
}

static enum MHD_Result collect_tokens(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    struct header_fwd *h = cls;
    (void)kind;
    if (value && is(key, key_size, "Connection"))
        each_token(value, value_size, keep_token, h);
    return h->tok_overflow ? MHD_NO : MHD_YES;
}

struct token_find {
    const char *name;
    size_t n;
    bool found;
};

static bool match_token(void *arg, const char *t, size_t n)
{
    struct token_find *f = arg;
    f->found = f->found || (n == f->n && strncasecmp(t, f->name, n) == 0);
    return !f->found;
}

static enum MHD_Result scan_tokens(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct token_find *f = cls;
    (void)kind;
    if (value && is(key, key_size, "Connection"))
        each_token(value, value_size, match_token, f);
    return f->found ? MHD_NO : MHD_YES;
}

/* The client's Connection field names 'name' (so it was meant for fanout only). */
static bool in_connection(struct header_fwd *h, const char *name, size_t n)
{
    for (size_t i = 0; i < h->ntok; i++)
        if (h->tok[i].n == n && strncasecmp(h->tok[i].p, name, n) == 0)
            return true;
    if (!h->tok_overflow)
        return false;
    struct token_find f = {name, n, false};
    MHD_get_connection_values_n(h->conn, MHD_HEADER_KIND, scan_tokens, &f);
    return f.found;
}

/* 'l' forwards the client's field 'name': named, or "*" (which leaves out Authorization and
 * the route's API key field 'secret'). */
static bool forwards(const struct fo_fwd_list *l, const char *name, size_t n, const char *secret)
{
    if (fo_fwd_names(l, name, n, true))
        return true;
    return l->all && !is(name, n, "Authorization") && !(secret && is(name, n, secret));
}

static int put_line(struct header_fwd *h, const char *name, size_t n, const char *v, size_t vn)
{
    int rc = fo_buf_append(h->out, name, n);
    if (rc == 0)
        rc = fo_buf_append(h->out, ": ", 2);
    if (rc == 0)
        rc = fo_buf_append(h->out, v, vn);
    if (rc == 0)
        rc = fo_buf_putc(h->out, '\0');
    h->lines += rc == 0;
    return rc;
}

static enum MHD_Result fwd_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    struct header_fwd *h = cls;
    (void)kind;
    if (!value) {
        value = "";
        value_size = 0;
    }
    if (!forwards(h->l, key, key_size, h->secret) || fo_fwd_header_never(key, key_size) ||
        in_connection(h, key, key_size))
        return MHD_YES;
    if (has_bad_byte(key, key_size) || has_bad_byte(value, value_size)) {
        h->rc = -EILSEQ; /* libmicrohttpd refuses these; never send one anyway. */
        return MHD_NO;
    }
    if (is(key, key_size, "X-Forwarded-For")) {
        if (h->xff.len)
            h->rc = fo_buf_append(&h->xff, ", ", 2);
        if (h->rc == 0)
            h->rc = fo_buf_append(&h->xff, value, value_size);
    } else {
        h->rc = put_line(h, key, key_size, value, value_size);
    }
    return h->rc == 0 ? MHD_YES : MHD_NO;
}

int fo_fwd_headers(struct fo_buf *out, size_t *nlines, const struct fo_fwd_list *l,
                   const struct fo_fwd_client *cl)
{
    *nlines = 0;
    if (!fo_fwd_active(l))
        return 0;
    struct header_fwd h = {.l = l, .secret = cl->secret, .out = out, .conn = cl->conn};
    fo_buf_init(&h.xff, FO_BUF_UNLIMITED);
    MHD_get_connection_values_n(cl->conn, MHD_HEADER_KIND, collect_tokens, &h);
    MHD_get_connection_values_n(cl->conn, MHD_HEADER_KIND, fwd_field, &h);
    int rc = h.rc;
    if (rc == 0 && cl->addr) {
        if (h.xff.len)
            rc = fo_buf_append(&h.xff, ", ", 2);
        if (rc == 0)
            rc = fo_buf_puts(&h.xff, cl->addr);
    }
    if (rc == 0 && h.xff.len)
        rc = put_line(&h, "X-Forwarded-For", 15, h.xff.data, h.xff.len);
    if (rc == 0 && cl->proto)
        rc = put_line(&h, "X-Forwarded-Proto", 17, cl->proto, strlen(cl->proto));
    const char *host = NULL;
    size_t hostlen = 0;
    if (rc == 0 &&
        MHD_lookup_connection_value_n(cl->conn, MHD_HEADER_KIND, "Host", 4, &host, &hostlen) ==
            MHD_YES &&
        host) {
        if (has_bad_byte(host, hostlen))
            rc = -EILSEQ;
        else
            rc = put_line(&h, "X-Forwarded-Host", 16, host, hostlen);
    }
    fo_buf_free(&h.xff);
    *nlines = h.lines;
    return rc;
}
