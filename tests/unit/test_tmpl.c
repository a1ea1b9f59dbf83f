/* test_tmpl.c -- endpoint path patterns and templates with placeholders. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "tmpl.h"

static struct fo_path *path_ok(const char *pattern)
{
    struct fo_path *p = NULL;
    char err[128] = "";
    int rc = fo_path_compile(&p, pattern, err, sizeof err);
    if (rc != 0)
        print_error("pattern %s: %s\n", pattern, err);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

static void test_path_compile_good(void **state)
{
    static const char *const good[] = {
        "/",
        "/a",
        "/a/",
        "/a/b/c",
        "/{id}",
        "/api/dashboard/{id}",
        "/a/{x}/b/{y}/",
        "/a/%41",
        "/a:b@c!$&'()*+,;=-._~",
        "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        struct fo_path *p = path_ok(good[i]);
        assert_string_equal(fo_path_pattern(p), good[i]);
        fo_path_destroy(p);
    }
    fo_path_destroy(NULL);
}

static void test_path_compile_bad(void **state)
{
    static const struct {
        const char *pattern;
        const char *err;
    } bad[] = {
        {"", "must start with '/'"},
        {"a/b", "must start with '/'"},
        {"/a//b", "empty segment (\"//\")"},
        {"//", "empty segment (\"//\")"},
        {"/a{id}", "a placeholder must be a whole segment \"{name}\""},
        {"/{id}x", "a placeholder must be a whole segment \"{name}\""},
        {"/{id", "a placeholder must be a whole segment \"{name}\""},
        {"/id}", "a placeholder must be a whole segment \"{name}\""},
        {"/{}", "a placeholder must be a whole segment \"{name}\""},
        {"/{a-b}", "placeholder name must be [A-Za-z0-9_]+"},
        {"/{a}{b}", "placeholder name must be [A-Za-z0-9_]+"},
        {"/{id}/{id}", "placeholder {id} appears twice"},
        {"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "more than 8 placeholders"},
        {"/a b", "invalid byte 0x20 (use printable ASCII, percent-encode the rest)"},
        {"/a?x=1", "invalid byte 0x3f (use printable ASCII, percent-encode the rest)"},
        {"/a#x", "invalid byte 0x23 (use printable ASCII, percent-encode the rest)"},
        {"/caf\xc3\xa9", "invalid byte 0xc3 (use printable ASCII, percent-encode the rest)"},
        {"/a\r\n", "invalid byte 0x0d (use printable ASCII, percent-encode the rest)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fo_path *p = (struct fo_path *)0x1;
        char err[128] = "";
        assert_int_equal(fo_path_compile(&p, bad[i].pattern, err, sizeof err), -EINVAL);
        assert_null(p);
        assert_string_equal(err, bad[i].err);
    }
    /* A NULL or tiny err buffer is fine. */
    struct fo_path *p = NULL;
    assert_int_equal(fo_path_compile(&p, "x", NULL, 0), -EINVAL);
    char small[4];
    assert_int_equal(fo_path_compile(&p, "x", small, sizeof small), -EINVAL);
    assert_string_equal(small, "mus");
}

static void test_param_index(void **state)
{
    struct fo_path *p = path_ok("/u/{id}/o/{order_id}");
    assert_int_equal(fo_path_param_index(p, "id", 2), 0);
    assert_int_equal(fo_path_param_index(p, "order_id", 8), 1);
    assert_int_equal(fo_path_param_index(p, "order", 5), -1);
    assert_int_equal(fo_path_param_index(p, "idx", 2), 0); /* Only n bytes count. */
    assert_int_equal(fo_path_param_index(p, "u", 1), -1);
    fo_path_destroy(p);
}

/* One fo_path_match case: rc, and when 1 the decoded values in order. */
struct match_case {
    const char *pattern;
    const char *raw;
    size_t rawlen; /* 0: strlen(raw). */
    int rc;
    size_t n;
    const char *v[2];
    size_t vlen[2]; /* 0: strlen(v). */
};

static void test_path_match_table(void **state)
{
    static const struct match_case cases[] = {
        {"/api/dashboard/{id}", "/api/dashboard/42", 0, 1, 1, {"42"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/42/", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/1/2", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/Dashboard/42", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/%64ashboard/42", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "api/dashboard/42", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "//api/dashboard/42", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/a%2Fb", 0, 1, 1, {"a/b"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/a%2fb", 0, 1, 1, {"a/b"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%00", 0, 1, 1, {"\0"}, {1}},
        {"/api/dashboard/{id}", "/api/dashboard/a%00b", 0, 1, 1, {"a\0b"}, {3}},
        {"/api/dashboard/{id}", "/api/dashboard/a%26b%3Dc", 0, 1, 1, {"a&b=c"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/a&b", 0, 1, 1, {"a&b"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/a+b", 0, 1, 1, {"a+b"}, {0}},
        {"/api/dashboard/{id}",
         "/api/dashboard/%0D%0AX-Evil:%201",
         0,
         1,
         1,
         {"\r\nX-Evil: 1"},
         {0}},
        {"/api/dashboard/{id}", "/api/dashboard/caf%C3%A9", 0, 1, 1, {"caf\xc3\xa9"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/caf\xc3\xa9", 0, 1, 1, {"caf\xc3\xa9"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%F0%9F%98%80", 0, 1, 1, {"\xf0\x9f\x98\x80"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/...", 0, 1, 1, {"..."}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/.a", 0, 1, 1, {".a"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/.", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/..", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%2E", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%2e%2E", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/.%2e", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%zz", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%4", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/a%", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%%41", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%4G", 0, -EINVAL, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%-1", 0, -EINVAL, 0, {NULL}, {0}},
        /* Malformed escapes in a path of another shape are "no match", not errors. */
        {"/api/dashboard/{id}", "/other/%zz", 0, 0, 0, {NULL}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/%zz/x", 0, 0, 0, {NULL}, {0}},
        /* n bytes only: what follows is not part of the path. */
        {"/api/dashboard/{id}", "/api/dashboard/42?x=1", 17, 1, 1, {"42"}, {0}},
        {"/api/dashboard/{id}", "/api/dashboard/4", 16, 1, 1, {"4"}, {0}},
        {"/u/{id}/o/{oid}", "/u/7/o/x%20y", 0, 1, 2, {"7", "x y"}, {0, 0}},
        {"/u/{id}/o/{oid}", "/u/7/o/..", 0, -EINVAL, 0, {NULL}, {0}},
        {"/u/{id}/o/{oid}", "/u/%zz/o/1", 0, -EINVAL, 0, {NULL}, {0}},
        {"/u/{id}/o/{oid}", "/u//o/1", 0, 0, 0, {NULL}, {0}},
        {"/", "/", 0, 1, 0, {NULL}, {0}},
        {"/", "", 0, 0, 0, {NULL}, {0}},
        {"/", "/a", 0, 0, 0, {NULL}, {0}},
        {"/", "//", 0, 0, 0, {NULL}, {0}},
        {"/a/", "/a/", 0, 1, 0, {NULL}, {0}},
        {"/a/", "/a", 0, 0, 0, {NULL}, {0}},
        {"/a", "/a/", 0, 0, 0, {NULL}, {0}},
        {"/a/{id}/", "/a/1/", 0, 1, 1, {"1"}, {0}},
        {"/a/{id}/", "/a/1", 0, 0, 0, {NULL}, {0}},
        {"/a/%41", "/a/%41", 0, 1, 0, {NULL}, {0}},
        {"/a/%41", "/a/A", 0, 0, 0, {NULL}, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct match_case *c = &cases[i];
        struct fo_path *p = path_ok(c->pattern);
        struct fo_params params = {0};
        size_t n = c->rawlen ? c->rawlen : strlen(c->raw);
        int rc = fo_path_match(p, c->raw, n, &params);
        if (rc != c->rc)
            print_error("case %zu: %s vs %s: %d\n", i, c->pattern, c->raw, rc);
        assert_int_equal(rc, c->rc);
        assert_int_equal(params.n, c->n);
        for (size_t j = 0; j < c->n; j++) {
            size_t len = c->vlen[j] ? c->vlen[j] : strlen(c->v[j]);
            assert_int_equal(params.p[j].len, len);
            assert_memory_equal(params.p[j].value, c->v[j], len);
            assert_int_equal(params.p[j].value[len], '\0');
        }
        fo_params_clear(&params);
        assert_int_equal(params.n, 0);
        fo_path_destroy(p);
    }
}

static void test_param_names_and_limits(void **state)
{
    struct fo_path *p = path_ok("/u/{id}/o/{oid}");
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(p, "/u/1/o/2", 8, &params), 1);
    assert_string_equal(params.p[0].name, "id");
    assert_string_equal(params.p[1].name, "oid");
    fo_params_clear(&params);
    fo_params_clear(&params); /* Idempotent. */
    fo_path_destroy(p);

    /* FO_MAX_PARAM_LEN decoded bytes pass, one more does not. */
    p = path_ok("/{v}");
    char raw[3 * FO_MAX_PARAM_LEN + 8];
    raw[0] = '/';
    memset(raw + 1, 'a', FO_MAX_PARAM_LEN);
    assert_int_equal(fo_path_match(p, raw, 1 + FO_MAX_PARAM_LEN, &params), 1);
    assert_int_equal(params.p[0].len, FO_MAX_PARAM_LEN);
    fo_params_clear(&params);
    raw[1 + FO_MAX_PARAM_LEN] = 'a';
    assert_int_equal(fo_path_match(p, raw, 2 + FO_MAX_PARAM_LEN, &params), -EINVAL);
    assert_int_equal(params.n, 0);
    /* The limit is on the decoded value: %41 x 1024 is 1024 bytes. */
    for (size_t i = 0; i < FO_MAX_PARAM_LEN; i++)
        memcpy(raw + 1 + 3 * i, "%41", 3);
    assert_int_equal(fo_path_match(p, raw, 1 + 3 * FO_MAX_PARAM_LEN, &params), 1);
    assert_int_equal(params.p[0].len, FO_MAX_PARAM_LEN);
    assert_int_equal(params.p[0].value[0], 'A');
    fo_params_clear(&params);
    fo_path_destroy(p);
}

/* ---- Templates, over a test namespace table ---- */

/* A request as the test lookups see it. */
struct treq {
    const struct fo_params *params;
    const char *const *query;  /* name, raw value pairs, NULL-terminated; a NULL value: "?k" */
    const char *const *header; /* name, value pairs, NULL-terminated */
};

static int bind_path(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    int idx = arg ? fo_path_param_index(arg, s, n) : -1;
    if (idx < 0)
        snprintf(err, errlen, "{%.*s} is not a parameter of the endpoint path", (int)n, s);
    return idx < 0 ? -EINVAL : idx;
}

static void lookup_path(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct treq *r = req;
    if ((size_t)id < r->params->n)
        *out = (struct fo_tmpl_val){r->params->p[id].value, r->params->p[id].len, false};
}

static int bind_any(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    if (memchr(s, '&', n)) {
        snprintf(err, errlen, "bad name");
        return -EINVAL;
    }
    return 7; /* Handed back to the lookup. */
}

static void lookup_pairs(const char *const *kv, const char *s, size_t n, bool fold, bool pct,
                         struct fo_tmpl_val *out)
{
    for (size_t i = 0; kv && kv[i]; i += 2) {
        bool eq =
            strlen(kv[i]) == n && (fold ? strncasecmp(kv[i], s, n) == 0 : memcmp(kv[i], s, n) == 0);
        if (eq) {
            const char *v = kv[i + 1] ? kv[i + 1] : "";
            *out = (struct fo_tmpl_val){v, strlen(v), pct};
            return;
        }
    }
}

static void lookup_query(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    assert_int_equal(id, 7);
    lookup_pairs(((const struct treq *)req)->query, s, n, false, true, out);
}

static void lookup_header(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    lookup_pairs(((const struct treq *)req)->header, s, n, true, false, out);
}

static const struct fo_tmpl_ns test_ns[] = {
    {.name = "", .bind = bind_path, .lookup = lookup_path},
    {.name = "query", .bind = bind_any, .lookup = lookup_query},
    {.name = "header", .fold_case = true, .bind = bind_any, .lookup = lookup_header},
};

static struct fo_tmpl_scope *scope_for(const struct fo_path *p)
{
    struct fo_tmpl_scope *s = NULL;
    assert_int_equal(fo_tmpl_scope_create(&s, test_ns, 3, p), 0);
    return s;
}

static void test_tmpl_compile_bad(void **state)
{
    static const struct {
        const char *url;
        const char *err;
    } bad[] = {
        {"ftp://h/x", "must start with http:// or https://"},
        {"http:/h/x", "must start with http:// or https://"},
        {"HTTP://h/x", "must start with http:// or https://"},
        {"//h/x", "must start with http:// or https://"},
        {"/users/{id}", "must start with http:// or https://"},
        {"", "must start with http:// or https://"},
        {"http://", "missing host"},
        {"http:///x", "missing host"},
        {"https://?q", "missing host"},
        {"http://:80/x", "missing host"},
        {"http://{id}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h:{id}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h{id}.example/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://{query.host}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h:{header.Port}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h/{nope}", "{nope} is not a parameter of the endpoint path"},
        {"http://h/{ID}", "{ID} is not a parameter of the endpoint path"},
        {"http://h/{id", "'{' without a closing '}'"},
        {"http://h/{id}/{", "'{' without a closing '}'"},
        {"http://h/{query.a", "'{' without a closing '}'"},
        {"http://h/id}", "'}' without '{'"},
        {"http://h/{}", "empty placeholder {}"},
        {"http://h/{a-b}", "placeholder name must be [A-Za-z0-9_]+"},
        {"http://h/{{id}}", "placeholder name must be [A-Za-z0-9_]+"},
        {"http://h/{|1}", "empty placeholder name in {|1}"},
        {"http://h/{foo.x}",
         "unknown placeholder namespace \"foo\" in {foo.x} (known: query, header)"},
        {"http://h/{Query.x}",
         "unknown placeholder namespace \"Query\" in {Query.x} (known: query, header)"},
        {"http://h/{query.}", "empty name in {query.}"},
        {"http://h/{.x}", "empty namespace in {.x}"},
        {"http://h/{query.a&b}", "bad name"},
        {"http://h/{query.a|{b}", "the default of {query.a} holds '{'"},
        {"http://h/a b", "contains a space or control byte 0x20"},
        {"http://h/a\r\nX: 1", "contains a space or control byte 0x0d"},
        {"http://h/\x7f", "contains a space or control byte 0x7f"},
    };
    struct fo_path *p = path_ok("/u/{id}");
    struct fo_tmpl_scope *sc = scope_for(p);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fo_tmpl *t = (struct fo_tmpl *)0x1;
        char err[128] = "";
        int brc = fo_tmpl_compile(&t, bad[i].url, FO_TMPL_URL, sc, err, sizeof err);
        if (brc != -EINVAL)
            print_error("url %s compiled\n", bad[i].url);
        assert_int_equal(brc, -EINVAL);
        assert_null(t);
        if (strcmp(err, bad[i].err) != 0)
            print_error("url %s\n", bad[i].url);
        assert_string_equal(err, bad[i].err);
    }

    static const struct {
        const char *line;
        const char *err;
    } hbad[] = {
        {"X-A: {header.a b}", "invalid byte 0x20 in the name of {header.a b}"},
        {"X-A: {foo.a}", "unknown placeholder namespace \"foo\" in {foo.a} (known: query, header)"},
        {"X-A: {query.a", "'{' without a closing '}'"},
        {"X-A: a}", "'}' without '{'"},
        {"X-A: {}", "empty placeholder {}"},
    };
    for (size_t i = 0; i < sizeof hbad / sizeof *hbad; i++) {
        struct fo_tmpl *t = NULL;
        char err[128] = "";
        assert_int_equal(fo_tmpl_compile(&t, hbad[i].line, FO_TMPL_HEADER, sc, err, sizeof err),
                         -EINVAL);
        assert_string_equal(err, hbad[i].err);
    }

    /* Without a scope no placeholder can resolve. */
    struct fo_tmpl *t = NULL;
    char err[128] = "";
    assert_int_equal(fo_tmpl_compile(&t, "http://h/{id}", FO_TMPL_URL, NULL, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "{id} is not a parameter of the endpoint path");
    assert_int_equal(fo_tmpl_compile(&t, "http://h/x", FO_TMPL_URL, NULL, err, sizeof err), 0);
    assert_true(fo_tmpl_is_static(t));
    assert_string_equal(fo_tmpl_text(t), "http://h/x");
    fo_tmpl_destroy(t);
    fo_tmpl_destroy(NULL);
    fo_tmpl_scope_destroy(sc);
    fo_tmpl_scope_destroy(NULL);
    fo_path_destroy(p);
}

static void test_slots(void **state)
{
    struct fo_path *p = path_ok("/u/{id}");
    struct fo_tmpl_scope *sc = scope_for(p);
    const char *texts[] = {
        "http://h/{id}?a={query.a}&b={query.a|1}&c={query.A}",
        "X: {header.X-Key} {header.x-key|none} {id}",
    };
    struct fo_tmpl *t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            fo_tmpl_compile(&t[i], texts[i], i ? FO_TMPL_HEADER : FO_TMPL_URL, sc, NULL, 0), 0);
    /* One slot per distinct placeholder: query names keep their case, header names do not;
     * a default does not make another slot. */
    assert_int_equal(fo_tmpl_scope_slots(sc), 4);
    assert_string_equal(fo_tmpl_slot_name(sc, 0), "id");
    assert_string_equal(fo_tmpl_slot_name(sc, 1), "query.a");
    assert_string_equal(fo_tmpl_slot_name(sc, 2), "query.A");
    assert_string_equal(fo_tmpl_slot_name(sc, 3), "header.X-Key");
    assert_false(fo_tmpl_is_static(t[0]));

    /* The slots fill up at FO_TMPL_MAX_SLOTS; what is there stays usable. */
    char text[64], err[128];
    for (int i = 0; fo_tmpl_scope_slots(sc) < FO_TMPL_MAX_SLOTS; i++) {
        struct fo_tmpl *x = NULL;
        snprintf(text, sizeof text, "http://h/{query.n%d}", i);
        assert_int_equal(fo_tmpl_compile(&x, text, FO_TMPL_URL, sc, NULL, 0), 0);
        fo_tmpl_destroy(x);
    }
    struct fo_tmpl *x = NULL;
    assert_int_equal(fo_tmpl_compile(&x, "http://h/{query.more}", FO_TMPL_URL, sc, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "more than 16 distinct placeholders in one endpoint");
    assert_int_equal(fo_tmpl_compile(&x, "http://h/{query.a}", FO_TMPL_URL, sc, NULL, 0), 0);
    fo_tmpl_destroy(x);
    for (int i = 0; i < 2; i++)
        fo_tmpl_destroy(t[i]);
    fo_tmpl_scope_destroy(sc);
    fo_path_destroy(p);
}

/* Compile 'text' for 'pattern', match 'raw', resolve against the request, expand. */
static int expand_rc(const char *pattern, const char *raw, const char *const *query,
                     const char *const *header, enum fo_tmpl_kind kind, const char *text, char *got,
                     size_t gotlen, char *slotname, size_t slotlen)
{
    struct fo_path *p = path_ok(pattern);
    struct fo_tmpl_scope *sc = scope_for(p);
    struct fo_tmpl *t = NULL;
    char err[128] = "";
    int rc = fo_tmpl_compile(&t, text, kind, sc, err, sizeof err);
    if (rc != 0)
        print_error("template %s: %s\n", text, err);
    assert_int_equal(rc, 0);
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(p, raw, strlen(raw), &params), 1);
    struct treq req = {&params, query, header};
    struct fo_tmpl_vals vals;
    fo_tmpl_resolve(sc, &req, &vals);
    assert_int_equal(vals.n, fo_tmpl_scope_slots(sc));
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    size_t slot = 99;
    rc = fo_tmpl_expand(t, &vals, &out, &slot);
    if (rc == 0) {
        assert_int_equal(out.len, strlen(out.data));
        snprintf(got, gotlen, "%s", out.data);
    } else {
        assert_int_equal(out.len, 0); /* Nothing appended. */
        assert_true(slot < vals.n);
        snprintf(slotname, slotlen, "%s", fo_tmpl_slot_name(sc, slot));
    }
    fo_buf_free(&out);
    fo_params_clear(&params);
    fo_tmpl_destroy(t);
    fo_tmpl_scope_destroy(sc);
    fo_path_destroy(p);
    return rc;
}

/* Match 'raw' against 'pattern', expand 'url', compare with 'want'. */
static void expand_case(const char *pattern, const char *raw, const char *url, const char *want)
{
    char got[512], slot[64];
    assert_int_equal(
        expand_rc(pattern, raw, NULL, NULL, FO_TMPL_URL, url, got, sizeof got, slot, sizeof slot),
        0);
    assert_string_equal(got, want);
}

static void expand_q(const char *const *query, const char *const *header, enum fo_tmpl_kind kind,
                     const char *text, const char *want)
{
    char got[512], slot[64];
    int rc = expand_rc("/u/{id}", "/u/42", query, header, kind, text, got, sizeof got, slot,
                       sizeof slot);
    if (rc != 0)
        print_error("%s: %d at %s\n", text, rc, slot);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
}

static void expand_fails(const char *const *query, const char *const *header,
                         enum fo_tmpl_kind kind, const char *text, int want_rc,
                         const char *want_slot)
{
    char got[512], slot[64] = "";
    int rc = expand_rc("/u/{id}", "/u/42", query, header, kind, text, got, sizeof got, slot,
                       sizeof slot);
    if (rc != want_rc)
        print_error("%s: %d\n", text, rc);
    assert_int_equal(rc, want_rc);
    assert_string_equal(slot, want_slot);
}

static void test_expand(void **state)
{
    const char *u = "/u/{id}";
    expand_case(u, "/u/42", "http://127.0.0.1:9001/users/{id}", "http://127.0.0.1:9001/users/42");
    expand_case(u, "/u/42", "http://h:1/orders?user={id}", "http://h:1/orders?user=42");
    expand_case(u, "/u/42", "http://h:1/o?a={id}&b={id}#f{id}", "http://h:1/o?a=42&b=42#f42");
    expand_case(u, "/u/42", "https://h/{id}{id}", "https://h/4242");
    expand_case(u, "/u/42", "http://h/static", "http://h/static");
    expand_case(u, "/u/42", "http://h/{id}", "http://h/42");
    /* CRLF cannot start a header line or end the request line. */
    expand_case(u, "/u/a%0D%0AX-Evil:%201", "http://h/{id}", "http://h/a%0D%0AX-Evil%3A%201");
    /* Query injection. */
    expand_case(u, "/u/1&admin=true", "http://h/o?user={id}", "http://h/o?user=1%26admin%3Dtrue");
    expand_case(u, "/u/1%26admin%3Dtrue", "http://h/o?user={id}",
                "http://h/o?user=1%26admin%3Dtrue");
    expand_case(u, "/u/a%23frag", "http://h/o?user={id}", "http://h/o?user=a%23frag");
    expand_case(u, "/u/a%3Fq", "http://h/{id}", "http://h/a%3Fq");
    /* Path traversal: '/' stays inside one segment. */
    expand_case(u, "/u/..%2F..%2Fadmin", "http://h/users/{id}", "http://h/users/..%2F..%2Fadmin");
    expand_case(u, "/u/%2F", "http://h/users/{id}", "http://h/users/%2F");
    expand_case(u, "/u/%252F", "http://h/users/{id}", "http://h/users/%252F");
    expand_case(u, "/u/%00", "http://h/users/{id}", "http://h/users/%00");
    expand_case(u, "/u/a%00b", "http://h/users/{id}", "http://h/users/a%00b");
    /* Unicode, raw or encoded, comes out encoded as UTF-8 bytes. */
    expand_case(u, "/u/caf%C3%A9", "http://h/{id}", "http://h/caf%C3%A9");
    expand_case(u, "/u/caf\xc3\xa9", "http://h/{id}", "http://h/caf%C3%A9");
    expand_case(u, "/u/%E6%97%A5%E6%9C%AC", "http://h/{id}", "http://h/%E6%97%A5%E6%9C%AC");
    /* Unreserved bytes stay, everything else is encoded. */
    expand_case(u, "/u/AZaz09-._~", "http://h/{id}", "http://h/AZaz09-._~");
    expand_case(u, "/u/a+b", "http://h/{id}", "http://h/a%2Bb");
    expand_case(u, "/u/a%20b", "http://h/{id}", "http://h/a%20b");
    expand_case(u, "/u/:@!$'()*,;=", "http://h/{id}", "http://h/%3A%40%21%24%27%28%29%2A%2C%3B%3D");
    expand_case(u, "/u/%7B%7D", "http://h/{id}", "http://h/%7B%7D");
    expand_case("/a/{x}/b/{y}", "/a/1/b/2", "http://h/{y}/{x}?x={x}", "http://h/2/1?x=1");
}

static void test_expand_namespaces(void **state)
{
    const char *const q[] = {"page", "2",         "q",     "a%20b%26c%3Dd%23e%2Ff%25",
                             "uni",  "caf%C3%A9", "raw",   "caf\xc3\xa9 x",
                             "bad",  "%zz%4",     "empty", "",
                             "flag", NULL,        "crlf",  "a%0d%0aX-Evil:%201",
                             "nul",  "a%00b",     "dot",   ".",
                             "dots", "%2E%2e",    "Page",  "upper",
                             "page", "second",    NULL};
    const char *const h[] = {"X-Key", "k1", "x-key", "k2", "X-Cr", "a\rb", NULL};
    /* Query values are decoded, then encoded whole: they add no parameter or segment. */
    expand_q(q, h, FO_TMPL_URL, "http://h/s?p={query.page}&q={query.q}",
             "http://h/s?p=2&q=a%20b%26c%3Dd%23e%2Ff%25");
    expand_q(q, h, FO_TMPL_URL, "http://h/{query.q}", "http://h/a%20b%26c%3Dd%23e%2Ff%25");
    expand_q(q, h, FO_TMPL_URL, "http://h/{query.uni}/{query.raw}",
             "http://h/caf%C3%A9/caf%C3%A9%20x");
    /* A '%' that starts no escape is a '%'. */
    expand_q(q, h, FO_TMPL_URL, "http://h/{query.bad}", "http://h/%25zz%254");
    /* The first value when repeated; names keep their case. */
    expand_q(q, h, FO_TMPL_URL, "http://h/?a={query.page}&b={query.Page}", "http://h/?a=2&b=upper");
    /* Defaults: used only when absent; "" and a bare "?flag" are values. */
    expand_q(q, h, FO_TMPL_URL, "http://h/?a={query.none|1}&b={query.empty|x}&c={query.flag|y}",
             "http://h/?a=1&b=&c=");
    expand_q(q, h, FO_TMPL_URL, "http://h/?a={query.none|}", "http://h/?a=");
    expand_q(q, h, FO_TMPL_URL, "http://h/?a={query.none|a/b}", "http://h/?a=a%2Fb");
    /* Header names fold case; the first value wins. */
    expand_q(q, h, FO_TMPL_URL, "http://h/{header.x-KEY}", "http://h/k1");
    /* Dot segments are refused in the path only. */
    expand_q(q, h, FO_TMPL_URL, "http://h/x?d={query.dot}&e={query.dots}", "http://h/x?d=.&e=..");
    expand_q(q, h, FO_TMPL_URL, "http://h/x#{query.dot}", "http://h/x#.");

    /* Header lines: values as they are, decoded when they come from the query. */
    expand_q(q, h, FO_TMPL_HEADER, "X-Page: {query.page}", "X-Page: 2");
    expand_q(q, h, FO_TMPL_HEADER, "X-Q: {query.q}", "X-Q: a b&c=d#e/f%");
    expand_q(q, h, FO_TMPL_HEADER, "X-U: {query.uni}", "X-U: caf\xc3\xa9");
    expand_q(q, h, FO_TMPL_HEADER, "X-K: {header.X-KEY} {id} {query.none|-}", "X-K: k1 42 -");
    expand_q(q, h, FO_TMPL_HEADER, "X-J: {{\"a\":{id}}}", "X-J: {\"a\":42}");
    expand_q(q, h, FO_TMPL_HEADER, "X-J: }}{{", "X-J: }{");

    /* Refusals name the placeholder; nothing is appended. */
    expand_fails(q, h, FO_TMPL_URL, "http://h/?a={query.none}", -ENOENT, "query.none");
    expand_fails(q, h, FO_TMPL_HEADER, "X: {header.Missing}", -ENOENT, "header.Missing");
    expand_fails(q, h, FO_TMPL_HEADER, "X: {query.crlf}", -EILSEQ, "query.crlf");
    expand_fails(q, h, FO_TMPL_HEADER, "X: {query.nul}", -EILSEQ, "query.nul");
    expand_fails(q, h, FO_TMPL_HEADER, "X: {header.X-Cr}", -EILSEQ, "header.X-Cr");
    expand_fails(q, h, FO_TMPL_URL, "http://h/{query.dot}", -EILSEQ, "query.dot");
    expand_fails(q, h, FO_TMPL_URL, "http://h/a/{query.dots}/b", -EILSEQ, "query.dots");
    expand_fails(q, h, FO_TMPL_URL, "http://h/{query.dot}x", -EILSEQ, "query.dot");
    /* In a URL CR and LF are simply encoded. */
    expand_q(q, h, FO_TMPL_URL, "http://h/{query.crlf}", "http://h/a%0D%0AX-Evil%3A%201");
}

static void test_expand_appends_and_limits(void **state)
{
    struct fo_path *p = path_ok("/u/{id}");
    struct fo_tmpl_scope *sc = scope_for(p);
    struct fo_tmpl *t = NULL;
    assert_int_equal(fo_tmpl_compile(&t, "http://h/{id}", FO_TMPL_URL, sc, NULL, 0), 0);
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(p, "/u/a%20b", 8, &params), 1);
    struct treq req = {&params, NULL, NULL};
    struct fo_tmpl_vals vals;
    fo_tmpl_resolve(sc, &req, &vals);

    /* Appends to what is there. */
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_puts(&out, "GET "), 0);
    assert_int_equal(fo_tmpl_expand(t, &vals, &out, NULL), 0);
    assert_string_equal(out.data, "GET http://h/a%20b");
    fo_buf_free(&out);

    /* Exactly enough room succeeds; one byte less fails and leaves the buffer. */
    size_t need = strlen("http://h/a%20b");
    fo_buf_init(&out, need);
    assert_int_equal(fo_tmpl_expand(t, &vals, &out, NULL), 0);
    assert_string_equal(out.data, "http://h/a%20b");
    fo_buf_free(&out);
    fo_buf_init(&out, need - 1);
    assert_int_equal(fo_buf_puts(&out, "x"), 0);
    assert_int_equal(fo_tmpl_expand(t, &vals, &out, NULL), -E2BIG);
    assert_string_equal(out.data, "x");
    assert_int_equal(out.len, 1);
    fo_buf_free(&out);

    /* Values that do not come from this scope: refused, not read out of bounds. */
    struct fo_tmpl_vals empty = {0};
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_tmpl_expand(t, &empty, &out, NULL), -EINVAL);
    fo_buf_free(&out);

    fo_params_clear(&params);
    fo_tmpl_destroy(t);
    fo_tmpl_scope_destroy(sc);
    fo_path_destroy(p);
}

static void test_url_decode(void **state)
{
    char out[32];
    size_t n = fo_url_decode(out, "a%20b%zz%4%%41%e9", 17);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "a b%zz%4%A\xe9", 11);
    assert_int_equal(fo_url_decode(out, "", 0), 0);
    assert_int_equal(fo_url_decode(out, "%00", 3), 1);
    assert_int_equal(out[0], '\0');
}

static void test_url_encode_all_bytes(void **state)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_url_encode(&out, all, sizeof all), 0);
    size_t o = 0;
    for (int i = 0; i < 256; i++) {
        bool keep = (i >= 'A' && i <= 'Z') || (i >= 'a' && i <= 'z') || (i >= '0' && i <= '9') ||
                    i == '-' || i == '.' || i == '_' || i == '~';
        if (keep) {
            assert_int_equal((unsigned char)out.data[o], i);
            o++;
        } else {
            char want[4];
            snprintf(want, sizeof want, "%%%02X", i);
            assert_memory_equal(out.data + o, want, 3);
            o += 3;
        }
    }
    assert_int_equal(out.len, o);
    assert_int_equal(out.data[o], '\0');
    fo_buf_free(&out);

    /* Empty input still yields a terminated buffer. */
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_url_encode(&out, "", 0), 0);
    assert_non_null(out.data);
    assert_string_equal(out.data, "");
    fo_buf_free(&out);

    /* The limit counts encoded bytes. */
    fo_buf_init(&out, 5);
    assert_int_equal(fo_url_encode(&out, " a ", 3), -E2BIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(fo_url_encode(&out, " ab", 3), 0);
    assert_string_equal(out.data, "%20ab");
    fo_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_compile_good),
        cmocka_unit_test(test_path_compile_bad),
        cmocka_unit_test(test_param_index),
        cmocka_unit_test(test_path_match_table),
        cmocka_unit_test(test_param_names_and_limits),
        cmocka_unit_test(test_tmpl_compile_bad),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_namespaces),
        cmocka_unit_test(test_expand_appends_and_limits),
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_url_encode_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
