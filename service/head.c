/* head.c -- checks on a request head before anything is done for it.
 *
 * libmicrohttpd parses the head; these checks refuse what its parser lets
 * through but a next hop could read differently (RFC 9112 framing and
 * syntax, bytes hidden behind a NUL), the limits on the head, and read the
 * two fields fanout itself interprets (X-Timeout-Ms, X-Request-Id). */
#include "head.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "token.h"

/* Add the length of one query argument ("&key=value") to *cls. */
static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    *(size_t *)cls += 2 + strlen(key) + (value ? strlen(value) : 0);
    return MHD_YES;
}

/* What scan_header learns about the head's fields. */
struct head_scan {
    size_t n;           /* Fields. */
    unsigned hosts;     /* Host fields. */
    unsigned lengths;   /* Content-Length fields. */
    unsigned codings;   /* Transfer-Encoding fields. */
    const char *length; /* The (last) Content-Length value, borrowed from MHD. */
    const char *bad;    /* Why the head is malformed, or NULL. */
};

/* True if s holds a control byte other than tab, or DEL; NULs count. */
static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *h = cls;
    (void)kind;
    h->n++;
    if (h->bad)
        return MHD_YES;
    bool name_ok = key_size > 0;
    for (size_t i = 0; name_ok && i < key_size; i++)
        name_ok = fo_is_tchar((unsigned char)key[i]);
    if (!name_ok) {
        h->bad = "malformed header field name";
        return MHD_YES;
    }
    if (value && has_ctl(value, value_size)) {
        h->bad = "control character in a header field value";
        return MHD_YES;
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        h->hosts++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        h->lengths++;
        h->length = value;
        bool digits = value && value_size > 0;
        for (size_t i = 0; digits && i < value_size; i++)
            digits = value[i] >= '0' && value[i] <= '9';
        if (!digits)
            h->bad = "Content-Length is not a number";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->codings++;
        if (!value || strcasecmp(value, "chunked") != 0)
            h->bad = "the only transfer coding accepted is chunked";
    }
    return MHD_YES;
}

/* Flag a query argument holding a byte no request target may carry. */
static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    bool *bad = cls;
    /* No check for spaces: the parser has already turned each '+' into one. */
    if (has_ctl(key, key_size) || (value && has_ctl(value, value_size)))
        *bad = true;
    return MHD_YES;
}

/* A NUL in the head. libmicrohttpd 0.9.75 parses the head in place, in one
 * buffer: it writes a NUL over each separator (the spaces of the request line,
 * '?', '&' and '=' in the query, each colon, each CR and LF) and hands out
 * C strings, so a NUL the client sent cuts a field short and what followed it
 * is never seen ("Content-Length: 2\0 99" reads as 2). No length it reports
 * shows the cut, but the head is still there, header_size bytes from the
 * method: walk it field by field, in the order the parser stored the fields,
 * and require that the fields and the separators account for every byte.
 * What cannot be told apart: a NUL just before a bare LF (or just before the
 * space ending the query) looks like a separator; nothing follows it on that
 * line, so nothing is hidden. A field the parser moved (obs-fold) fails the
 * walk and is refused too. */
struct head_walk {
    const char *p;   /* Next byte to account for. */
    const char *end; /* End of the head: the byte after its empty line. */
    size_t n;        /* Fields (arguments, then header fields) walked so far. */
    bool ok;         /* Every byte so far is accounted for. */
};

/* Expect the string s of length len right at w->p. */
static void walk_take(struct head_walk *w, const char *s, size_t len)
{
    uintptr_t at = (uintptr_t)s, p = (uintptr_t)w->p, end = (uintptr_t)w->end;
    w->ok = w->ok && at == p && len <= end - p;
    if (w->ok)
        w->p += len;
}

/* Expect one separator the parser turned into a NUL. */
static void walk_nul(struct head_walk *w)
{
    w->ok = w->ok && w->p < w->end && *w->p == '\0';
    if (w->ok)
        w->p++;
}

/* Expect min..max line-end bytes (CR, LF) the parser turned into NULs. */
static void walk_nuls(struct head_walk *w, size_t min, size_t max)
{
    size_t n = 0;
    while (w->ok && w->p < w->end && *w->p == '\0' && n <= max) {
        w->p++;
        n++;
    }
    w->ok = w->ok && n >= min && n <= max;
}

/* Skip the bytes in 'set' the parser skipped. */
static void walk_skip(struct head_walk *w, const char *set)
{
    while (w->ok && w->p < w->end && *w->p && strchr(set, *w->p))
        w->p++;
}

/* One query argument: "key", "key=value", each after '?' or '&'. */
static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    struct head_walk *w = cls;
    (void)kind;
    walk_nul(w);
    walk_take(w, key, key_size);
    if (value) {
        walk_nul(w);
        walk_take(w, value, value_size);
    }
    w->n++;
    return w->ok ? MHD_YES : MHD_NO;
}

/* One header line: terminator of the line before, "name:", OWS, value. */
static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct head_walk *w = cls;
    (void)kind;
    walk_nuls(w, 1, 2);
    walk_take(w, key, key_size);
    walk_nul(w);
    walk_skip(w, " \t");
    walk_take(w, value ? value : w->p, value ? value_size : 0);
    w->n++;
    return w->ok ? MHD_YES : MHD_NO;
}

/* True when the method, target, version and fields account for every byte of
 * the head, i.e. the client sent no NUL that cut one of them short. */
static bool head_is_whole(struct MHD_Connection *c, const char *method, const char *url,
                          const char *version)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || ci->header_size == 0)
        return false;
    struct head_walk w = {method, method + ci->header_size, 0, true};
    walk_take(&w, method, strlen(method));
    walk_nul(&w);
    walk_skip(&w, " ");
    walk_take(&w, url, strlen(url));
    /* The query: '?' and the arguments, up to the space before the version;
     * one more NUL may be a trailing '&'. */
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    if (w.ok && (uintptr_t)w.p + 1 < (uintptr_t)version && *w.p == '\0')
        w.p++;
    walk_nul(&w);
    walk_take(&w, version, strlen(version));
    w.n = 0;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, walk_field, &w);
    walk_nuls(&w, 2, 4); /* The last line's end and the empty line. */
    return w.ok && w.p == w.end;
}

/* RFC 9112 framing and syntax the parser lets through: fields that could make
 * this request mean something else to the next hop. Returns why, or NULL. */
static const char *malformed(struct MHD_Connection *c, const char *method, const char *url,
                             const char *version, const struct head_scan *h)
{
    static const char bad_target[] = "the request target holds a space or a control character";
    if (!head_is_whole(c, method, url, version))
        return "a NUL byte in the request head";
    if (h->bad)
        return h->bad;
    size_t n = strlen(url);
    if (has_ctl(url, n) || memchr(url, ' ', n))
        return bad_target;
    bool bad_arg = false;
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, scan_arg, &bad_arg);
    if (bad_arg)
        return bad_target;
    if (h->hosts > 1 || (h->hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
        return "an HTTP/1.1 request needs exactly one Host field";
    if (h->lengths > 1 || h->codings > 1)
        return "Content-Length or Transfer-Encoding appears more than once";
    if (h->lengths && h->codings)
        return "Content-Length and Transfer-Encoding together";
    return NULL;
}

/* Fill *v and return -EINVAL. */
static int refuse(struct fo_head_verdict *v, unsigned status, const char *code, const char *msg,
                  bool close)
{
    v->status = status;
    v->code = code;
    v->message = msg;
    v->close = close;
    return -EINVAL;
}

int fo_head_check(struct MHD_Connection *c, const char *method, const char *url,
                  const char *version, const struct fo_config *cfg, bool *body,
                  struct fo_head_verdict *v)
{
    size_t target = strlen(url); /* MHD hands the query over separately. */
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg_len, &target);
    if (target > cfg->max_url_bytes)
        return refuse(v, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                      "the request target is longer than max_url_bytes", false);
    struct head_scan h = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.n > cfg->max_headers)
        return refuse(v, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "too_many_headers",
                      "the request has more than max_headers header fields", false);
    const char *why = malformed(c, method, url, version, &h);
    if (why)
        return refuse(v, MHD_HTTP_BAD_REQUEST, "malformed_request", why, true);
    const char *cl = h.length; /* All digits: malformed() saw to that. */
    *body = h.codings > 0 || (cl && strspn(cl, "0") != strlen(cl));
    if (cl) {
        errno = 0;
        unsigned long long n = strtoull(cl, NULL, 10);
        if (errno == ERANGE || n > cfg->max_body_bytes)
            return refuse(v, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                          "request body is larger than max_body_bytes", false);
    }
    return 0;
}

bool fo_head_request_id(struct MHD_Connection *c, char *id, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (!v)
        return false;
    size_t n = strlen(v);
    bool ok = n >= 1 && n < cap;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             ch == '-' || ch == '_' || ch == '.' || ch == ':';
    }
    if (ok)
        memcpy(id, v, n + 1);
    return ok;
}

/* What timeout_field() has seen of the X-Timeout-Ms fields. */
struct timeout_scan {
    int64_t ms; /* The value, 0 while none was seen. */
    bool bad;   /* A value out of range, or two that differ. */
};

/* Parse one X-Timeout-Ms value, optional whitespace (SP, HTAB) on either side
 * trimmed (RFC 9110 5.5): 1..FO_MAX_TIMEOUT_MS. Returns the value, or -1. */
static int64_t parse_timeout(const char *v, size_t n)
{
    while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    int64_t ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        ms = ms * 10 + (v[i] - '0');
        if (ms > FO_MAX_TIMEOUT_MS)
            return -1;
    }
    return ms >= 1 ? ms : -1;
}

static enum MHD_Result timeout_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    struct timeout_scan *t = cls;
    (void)kind;
    (void)key_size;
    if (strcasecmp(key, "X-Timeout-Ms") != 0)
        return MHD_YES;
    int64_t ms = value ? parse_timeout(value, value_size) : -1;
    if (ms < 0 || (t->ms && ms != t->ms))
        t->bad = true;
    t->ms = ms;
    return t->bad ? MHD_NO : MHD_YES;
}

int fo_head_timeout(struct MHD_Connection *c, int64_t *ms)
{
    struct timeout_scan t = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, timeout_field, &t);
    *ms = t.bad ? 0 : t.ms;
    return t.bad ? -EINVAL : 0;
}
