/* batch.c -- the ad-hoc batch: parse a POST /aggregate body. See batch.h.
 *
 * The body is validated once (json.h) and then read through raw spans, never
 * through a tree, so a request's "body" is copied out as the exact bytes the
 * client sent. Everything is checked before anything is returned: a batch is
 * accepted whole or refused whole. Each URL is policed by batch_url.c; the
 * requests that depend on others are compiled and checked by batch_deps.c. */
#include "batch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "token.h"

static int refuse(struct fo_batch_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill *err and return -EINVAL. */
static int refuse(struct fo_batch_error *err, int status, const char *code, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* The decoded text of a raw string literal, quoted for a message. */
static const char *quote_key(char *dst, size_t dstlen, struct fo_json_span k)
{
    struct fo_buf b;
    const char *r;
    fo_buf_init(&b, 256);
    if (fo_json_unescape(k, &b) == 0)
        r = fo_quote_bytes(dst, dstlen, b.data ? b.data : "", b.len);
    else
        r = fo_quote_bytes(dst, dstlen, k.p + 1, k.len >= 2 ? k.len - 2 : 0);
    fo_buf_free(&b);
    return r;
}

/* ---- Parsing ------------------------------------------------------------ */

void fo_batch_destroy(struct fo_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        struct fo_batch_req *r = &b->reqs[i];
        free(r->name);
        free(r->url);
        free(r->method);
        for (size_t j = 0; j < r->nheaders; j++)
            free(r->headers[j]);
        free(r->headers);
        free(r->body);
        fo__batch_req_deps_free(r);
    }
    free(b->reqs);
    fo_tmpl_scope_destroy(b->scope);
    if (b->refs)
        fo_dep_refs_free(b->refs);
    free(b->refs);
    free(b);
}

/* Decode a validated string literal into a new C string. Returns 0, -EINVAL
 * (it holds a NUL byte: a C string cannot carry it) or -ENOMEM. */
static int decode(struct fo_json_span s, char **out, size_t *outlen)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    int rc = fo_json_unescape(s, &b);
    if (rc < 0 && rc != -EINVAL)
        rc = -ENOMEM;
    if (rc == 0 && b.len && memchr(b.data, '\0', b.len))
        rc = -EINVAL;
    if (rc < 0) {
        fo_buf_free(&b);
        return rc;
    }
    *out = fo_buf_release(&b, outlen);
    return *out ? 0 : -ENOMEM;
}

/* A JSON number span that is a positive integer, saturated at 'cap'.
 * Returns the value, or 0 when it is not one. */
static int64_t positive_int(struct fo_json_span v, int64_t cap)
{
    if (fo_json_kind(v) != FO_JSON_NUMBER || v.len == 0)
        return 0;
    int64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
        if (x < cap)
            x = x * 10 + (v.p[i] - '0');
    }
    return x > cap ? cap : x;
}

/* Headers a client may not set: they decide framing or the connection, or
 * (Host) which site behind an allowed host:port is reached. */
static bool is_forbidden_header(const char *name)
{
    static const char *const names[] = {"host",
                                        "content-length",
                                        "transfer-encoding",
                                        "connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "upgrade",
                                        "te",
                                        "trailer",
                                        NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcasecmp(names[i], name) == 0)
            return true;
    }
    return false;
}

/* A byte the HTTP front refuses in a client's field value: every control
 * byte but HTAB, and DEL. A backend must not get what a client could not send. */
static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return true;
    }
    return false;
}

/* State while one batch is read. */
struct bctx {
    const struct fo_aggregate_conf *conf; /* Borrowed. */
    struct fo_batch_error *err;           /* Borrowed; filled on refusal. */
    char qname[96];                       /* The current request's name, quoted. */
    int64_t timeout_ms;                   /* The batch's capped timeout. */
};

static int parse_headers(struct bctx *c, struct fo_json_span v, struct fo_batch_req *r)
{
    struct fo_json_iter it;
    struct fo_json_span k;
    struct fo_json_span hv;
    char q[96];
    if (fo_json_iter_object(&it, v) < 0)
        return refuse(c->err, 400, "invalid_batch",
                      "request \"%s\": \"headers\" must be an object of strings", c->qname);
    size_t n = 0;
    while (fo_json_next_member(&it, &k, &hv))
        n++;
    if (n == 0)
        return 0;
    r->headers = calloc(n, sizeof *r->headers);
    if (!r->headers)
        return -ENOMEM;
    fo_json_iter_object(&it, v);
    while (fo_json_next_member(&it, &k, &hv)) {
        char *name = NULL;
        char *value = NULL;
        size_t nlen = 0;
        size_t vlen = 0;
        int rc = decode(k, &name, &nlen);
        if (rc == -EINVAL || (rc == 0 && !fo_is_token(name, strlen(name)))) {
            if (rc == 0)
                fo_quote_bytes(q, sizeof q, name, nlen);
            else
                strcpy(q, "\\x00");
            free(name);
            return refuse(c->err, 400, "invalid_batch",
                          "request \"%s\": invalid header name \"%s\"", c->qname, q);
        }
        if (rc < 0)
            return rc;
        if (is_forbidden_header(name)) {
            rc =
                refuse(c->err, 400, "invalid_batch", "request \"%s\": header \"%s\" may not be set",
                       c->qname, fo_quote_bytes(q, sizeof q, name, nlen));
            free(name);
            return rc;
        }
        rc = fo_json_kind(hv) == FO_JSON_STRING ? decode(hv, &value, &vlen) : -EINVAL;
        if (rc == 0 && has_control(value, vlen))
            rc = -EINVAL;
        if (rc == -EINVAL) {
            rc = refuse(c->err, 400, "invalid_batch",
                        "request \"%s\": header \"%s\" must be a string without control "
                        "characters (HTAB is allowed)",
                        c->qname, fo_quote_bytes(q, sizeof q, name, nlen));
        }
        char *line = NULL;
        if (rc == 0 && asprintf(&line, "%s: %s", name, value) < 0)
            rc = -ENOMEM;
        free(name);
        free(value);
        if (rc < 0)
            return rc;
        r->headers[r->nheaders++] = line;
    }
    return 0;
}

/* depends_on, foreach, max_concurrency, max_items, foreach_as. */
static int parse_dep_key(struct bctx *c, const char *key, struct fo_json_span v,
                         struct fo_batch_req *r)
{
    enum fo_json_kind kind = fo_json_kind(v);
    struct fo_json_iter it;
    struct fo_json_span el;
    char *s = NULL;
    size_t len;
    int rc = 0;
    if (strcmp(key, "depends_on") == 0) {
        if (fo_json_iter_array(&it, v) < 0)
            return refuse(c->err, 400, "invalid_batch",
                          "request \"%s\": \"depends_on\" must be an array of names", c->qname);
        while (rc == 0 && fo_json_next_element(&it, &el)) {
            rc = fo_json_kind(el) == FO_JSON_STRING ? decode(el, &s, &len) : -EINVAL;
            if (rc == 0 && (len == 0 || fo_dep_index(&r->dep, s) >= 0))
                rc = -EINVAL;
            if (rc == 0)
                rc = fo_dep_add_name(&r->dep, s);
            free(s);
            s = NULL;
        }
        if (rc == -EINVAL)
            return refuse(c->err, 400, "invalid_batch",
                          "request \"%s\": \"depends_on\" must list distinct non-empty names",
                          c->qname);
        return rc;
    }
    if (strcmp(key, "foreach") == 0) {
        char why[200];
        rc = kind == FO_JSON_STRING ? decode(v, &s, &len) : -EINVAL;
        if (rc == -EINVAL) {
            free(s);
            return refuse(c->err, 400, "invalid_batch",
                          "request \"%s\": \"foreach\" must be a string", c->qname);
        }
        if (rc == 0)
            rc = fo_dep_set_foreach(&r->dep, s, why, sizeof why);
        free(s);
        if (rc == -EINVAL)
            return refuse(c->err, 400, "invalid_batch", "request \"%s\": \"foreach\": %s", c->qname,
                          why);
        return rc;
    }
    if (strcmp(key, "foreach_as") == 0) {
        if (fo_json_str_eq(v, "array") || fo_json_str_eq(v, "object")) {
            r->dep.as = fo_json_str_eq(v, "object") ? FO_DEPS_AS_OBJECT : FO_DEPS_AS_ARRAY;
            return 0;
        }
        return refuse(c->err, 400, "invalid_batch",
                      "request \"%s\": \"foreach_as\" must be \"array\" or \"object\"", c->qname);
    }
    bool conc = strcmp(key, "max_concurrency") == 0;
    int64_t max = conc ? FO_DEPS_MAX_CONCURRENCY : FO_DEPS_MAX_ITEMS;
    int64_t n = positive_int(v, max + 1);
    if (n == 0 || n > max)
        return refuse(c->err, 400, "invalid_batch",
                      "request \"%s\": \"%s\" must be an integer from 1 to %lld", c->qname, key,
                      (long long)max);
    if (conc)
        r->dep.max_concurrency = (unsigned)n;
    else
        r->dep.max_items = (unsigned)n;
    return 0;
}

/* Member keys of a request, in the order of their 'seen' bits. */
static const char *const req_keys[] = {
    "url",        "method",  "headers",         "body",      "required",   "merge", "timeout_ms",
    "depends_on", "foreach", "max_concurrency", "max_items", "foreach_as", NULL};

static int parse_request(struct bctx *c, struct fo_json_span v, struct fo_batch_req *r)
{
    struct fo_json_iter it;
    struct fo_json_span k;
    struct fo_json_span mv;
    char q[96];
    char msg[200];
    unsigned seen = 0;
    int rc;

    if (fo_json_iter_object(&it, v) < 0)
        return refuse(c->err, 400, "invalid_batch", "request \"%s\" must be an object", c->qname);
    while (fo_json_next_member(&it, &k, &mv)) {
        size_t i = 0;
        while (req_keys[i] && !fo_json_str_eq(k, req_keys[i]))
            i++;
        if (!req_keys[i])
            return refuse(c->err, 400, "invalid_batch", "request \"%s\": unknown key \"%s\"",
                          c->qname, quote_key(q, sizeof q, k));
        if (seen & (1u << i))
            return refuse(c->err, 400, "invalid_batch", "request \"%s\": duplicate key \"%s\"",
                          c->qname, req_keys[i]);
        seen |= 1u << i;
        const char *key = req_keys[i];
        enum fo_json_kind kind = fo_json_kind(mv);

        if (strcmp(key, "url") == 0) {
            size_t len;
            rc = kind == FO_JSON_STRING ? decode(mv, &r->url, &len) : -EINVAL;
            if (rc == -EINVAL && kind == FO_JSON_STRING)
                return refuse(c->err, 403, "host_not_allowed",
                              "request \"%s\": URL contains a space or control character",
                              c->qname);
            if (rc == -EINVAL)
                return refuse(c->err, 400, "invalid_batch",
                              "request \"%s\": \"url\" must be a string", c->qname);
            if (rc < 0)
                return rc;
        } else if (strcmp(key, "depends_on") == 0 || strcmp(key, "foreach") == 0 ||
                   strcmp(key, "max_concurrency") == 0 || strcmp(key, "max_items") == 0 ||
                   strcmp(key, "foreach_as") == 0) {
            rc = parse_dep_key(c, key, mv, r);
            if (rc < 0)
                return rc;
        } else if (strcmp(key, "method") == 0) {
            size_t len;
            rc = kind == FO_JSON_STRING ? decode(mv, &r->method, &len) : -EINVAL;
            if (rc == 0 && !fo_is_method(r->method))
                rc = -EINVAL;
            if (rc == -EINVAL)
                return refuse(c->err, 400, "invalid_batch",
                              "request \"%s\": \"method\" must be an upper-case token such as "
                              "\"GET\"",
                              c->qname);
            if (rc < 0)
                return rc;
        } else if (strcmp(key, "headers") == 0) {
            rc = parse_headers(c, mv, r);
            if (rc < 0)
                return rc;
        } else if (strcmp(key, "body") == 0) {
            r->body = malloc(mv.len + 1);
            if (!r->body)
                return -ENOMEM;
            memcpy(r->body, mv.p, mv.len);
            r->body[mv.len] = '\0';
            r->body_len = mv.len;
        } else if (strcmp(key, "timeout_ms") == 0) {
            r->timeout_ms = positive_int(mv, c->timeout_ms);
            if (r->timeout_ms == 0)
                return refuse(c->err, 400, "invalid_batch",
                              "request \"%s\": \"timeout_ms\" must be a positive integer",
                              c->qname);
        } else if (kind == FO_JSON_TRUE || kind == FO_JSON_FALSE) {
            bool *flag = strcmp(key, "required") == 0 ? &r->required : &r->merge;
            *flag = kind == FO_JSON_TRUE;
        } else {
            return refuse(c->err, 400, "invalid_batch",
                          "request \"%s\": \"%s\" must be true or false", c->qname, key);
        }
    }
    if (!r->url)
        return refuse(c->err, 400, "invalid_batch", "request \"%s\": missing \"url\"", c->qname);
    /* A URL with placeholders is checked once its values are known (batch_deps.c). */
    if (!(r->dep.n && strchr(r->url, '{'))) {
        rc = fo_batch_check_url(r->url, c->conf, msg, sizeof msg, &r->allow_index);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            return refuse(c->err, 403, "host_not_allowed", "request \"%s\": %s", c->qname, msg);
    }
    if (r->dep.n && !r->dep.max_concurrency)
        r->dep.max_concurrency = FO_DEPS_DEFAULT_CONCURRENCY;
    if (r->dep.n && !r->dep.max_items)
        r->dep.max_items = FO_DEPS_DEFAULT_ITEMS;
    if (!r->method) {
        r->method = strdup("GET");
        if (!r->method)
            return -ENOMEM;
    }
    return 0;
}

static int parse_requests(struct bctx *c, struct fo_json_span reqs, struct fo_batch *b)
{
    struct fo_json_iter it;
    struct fo_json_span k;
    struct fo_json_span v;
    size_t n = 0;
    if (fo_json_iter_object(&it, reqs) == 0) {
        while (fo_json_next_member(&it, &k, &v))
            n++;
    }
    if (n == 0)
        return refuse(c->err, 400, "invalid_batch", "\"requests\" must be a non-empty object");
    if (n > c->conf->max_requests)
        return refuse(c->err, 400, "too_many_requests",
                      "the batch has %zu requests, at most %zu are allowed", n,
                      c->conf->max_requests);
    b->reqs = calloc(n, sizeof *b->reqs);
    if (!b->reqs)
        return -ENOMEM;

    fo_json_iter_object(&it, reqs);
    while (fo_json_next_member(&it, &k, &v)) {
        struct fo_batch_req *r = &b->reqs[b->n++];
        size_t nlen = 0;
        int rc = decode(k, &r->name, &nlen);
        if (rc == -EINVAL)
            return refuse(c->err, 400, "invalid_batch", "request names must not contain NUL");
        if (rc < 0)
            return rc;
        fo_quote_bytes(c->qname, sizeof c->qname, r->name, nlen);
        if (nlen == 0)
            return refuse(c->err, 400, "invalid_batch", "request names must not be empty");
        if (strcmp(r->name, "_fanout") == 0)
            return refuse(c->err, 400, "invalid_batch", "request name \"_fanout\" is reserved");
        for (size_t j = 0; j + 1 < b->n; j++) {
            if (strcmp(b->reqs[j].name, r->name) == 0)
                return refuse(c->err, 400, "invalid_batch", "duplicate request name \"%s\"",
                              c->qname);
        }
        r->timeout_ms = 0;
        rc = parse_request(c, v, r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fo_batch_parse(struct fo_batch **out, const char *body, size_t n,
                   const struct fo_aggregate_conf *conf, unsigned max_depth,
                   struct fo_batch_error *err)
{
    struct fo_batch_error spare;
    struct bctx c = {.conf = conf, .err = err ? err : &spare, .qname = "", .timeout_ms = 0};
    struct fo_json_span root;
    struct fo_json_span k;
    struct fo_json_span v;
    struct fo_json_span reqs = {NULL, 0};
    struct fo_json_span timeout = {NULL, 0};
    struct fo_json_iter it;
    struct fo_batch *b = NULL;
    char q[96];
    int rc;

    *out = NULL;
    rc = fo_json_validate(body, n, max_depth, &root);
    if (rc == -E2BIG) {
        rc = refuse(c.err, 400, "invalid_json", "the body is nested deeper than %u levels",
                    max_depth);
        goto out;
    }
    if (rc < 0) {
        rc = refuse(c.err, 400, "invalid_json", "the body is not valid JSON");
        goto out;
    }
    if (fo_json_iter_object(&it, root) < 0) {
        rc = refuse(c.err, 400, "invalid_batch", "the body must be a JSON object");
        goto out;
    }
    b = calloc(1, sizeof *b);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    bool seen_report = false;
    while (fo_json_next_member(&it, &k, &v)) {
        struct fo_json_span *slot = NULL;
        const char *name = NULL;
        if (fo_json_str_eq(k, "requests")) {
            slot = &reqs;
            name = "requests";
        } else if (fo_json_str_eq(k, "timeout_ms")) {
            slot = &timeout;
            name = "timeout_ms";
        } else if (fo_json_str_eq(k, "report")) {
            name = "report";
            if (seen_report) {
                rc = refuse(c.err, 400, "invalid_batch", "duplicate key \"report\"");
                goto out;
            }
            seen_report = true;
            enum fo_json_kind kind = fo_json_kind(v);
            if (kind != FO_JSON_TRUE && kind != FO_JSON_FALSE) {
                rc = refuse(c.err, 400, "invalid_batch", "\"report\" must be true or false");
                goto out;
            }
            b->report = kind == FO_JSON_TRUE;
            continue;
        } else {
            rc = refuse(c.err, 400, "invalid_batch", "unknown key \"%s\"",
                        quote_key(q, sizeof q, k));
            goto out;
        }
        if (slot->p) {
            rc = refuse(c.err, 400, "invalid_batch", "duplicate key \"%s\"", name);
            goto out;
        }
        *slot = v;
    }

    c.timeout_ms = conf->timeout_ms;
    if (timeout.p) {
        int64_t t = positive_int(timeout, conf->timeout_ms);
        if (t == 0) {
            rc = refuse(c.err, 400, "invalid_batch", "\"timeout_ms\" must be a positive integer");
            goto out;
        }
        c.timeout_ms = t;
    }
    b->timeout_ms = c.timeout_ms;
    if (!reqs.p) {
        rc = refuse(c.err, 400, "invalid_batch", "missing \"requests\"");
        goto out;
    }
    b->conf = conf;
    rc = parse_requests(&c, reqs, b);
    if (rc == 0)
        rc = fo__batch_deps(b, c.err);
out:
    if (rc < 0) {
        fo_batch_destroy(b);
        return rc;
    }
    *out = b;
    return 0;
}
