/* test_tmpl.c -- endpoint path patterns and backend URL templates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        {"http://h}/x", "placeholders are not allowed in the scheme or host:port"},
        {"http://h/{nope}", "{nope} is not a parameter of the endpoint path"},
        {"http://h/{ID}", "{ID} is not a parameter of the endpoint path"},
        {"http://h/{id", "'{' without a closing '}'"},
        {"http://h/{id}/{", "'{' without a closing '}'"},
        {"http://h/id}", "'}' without '{'"},
        {"http://h/{}", "empty placeholder {}"},
        {"http://h/{a-b}", "placeholder name must be [A-Za-z0-9_]+"},
        {"http://h/{{id}}", "placeholder name must be [A-Za-z0-9_]+"},
        {"http://h/a b", "contains a space or control byte 0x20"},
        {"http://h/a\r\nX: 1", "contains a space or control byte 0x0d"},
        {"http://h/\x7f", "contains a space or control byte 0x7f"},
    };
    struct fo_path *p = path_ok("/u/{id}");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fo_tmpl *t = (struct fo_tmpl *)0x1;
        char err[128] = "";
        assert_int_equal(fo_tmpl_compile(&t, bad[i].url, p, err, sizeof err), -EINVAL);
        assert_null(t);
        if (strcmp(err, bad[i].err) != 0)
            print_error("url %s\n", bad[i].url);
        assert_string_equal(err, bad[i].err);
    }
    /* Without a path no placeholder can resolve. */
    struct fo_tmpl *t = NULL;
    char err[128] = "";
    assert_int_equal(fo_tmpl_compile(&t, "http://h/{id}", NULL, err, sizeof err), -EINVAL);
    assert_string_equal(err, "{id} is not a parameter of the endpoint path");
    assert_int_equal(fo_tmpl_compile(&t, "http://h/x", NULL, err, sizeof err), 0);
    fo_tmpl_destroy(t);
    fo_tmpl_destroy(NULL);
    fo_path_destroy(p);
}

/* Match 'raw' against 'pattern', expand 'url', compare with 'want'. */
static void expand_case(const char *pattern, const char *raw, const char *url, const char *want)
{
    struct fo_path *p = path_ok(pattern);
    struct fo_tmpl *t = NULL;
    char err[128] = "";
    int rc = fo_tmpl_compile(&t, url, p, err, sizeof err);
    if (rc != 0)
        print_error("url %s: %s\n", url, err);
    assert_int_equal(rc, 0);
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(p, raw, strlen(raw), &params), 1);
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_tmpl_expand(t, &params, &out), 0);
    assert_string_equal(out.data, want);
    assert_int_equal(out.len, strlen(want));
    fo_buf_free(&out);
    fo_params_clear(&params);
    fo_tmpl_destroy(t);
    fo_path_destroy(p);
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

static void test_expand_appends_and_limits(void **state)
{
    struct fo_path *p = path_ok("/u/{id}");
    struct fo_tmpl *t = NULL;
    assert_int_equal(fo_tmpl_compile(&t, "http://h/{id}", p, NULL, 0), 0);
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(p, "/u/a%20b", 8, &params), 1);

    /* Appends to what is there. */
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_puts(&out, "GET "), 0);
    assert_int_equal(fo_tmpl_expand(t, &params, &out), 0);
    assert_string_equal(out.data, "GET http://h/a%20b");
    fo_buf_free(&out);

    /* Exactly enough room succeeds; one byte less fails and leaves the buffer. */
    size_t need = strlen("http://h/a%20b");
    fo_buf_init(&out, need);
    assert_int_equal(fo_tmpl_expand(t, &params, &out), 0);
    assert_string_equal(out.data, "http://h/a%20b");
    fo_buf_free(&out);
    fo_buf_init(&out, need - 1);
    assert_int_equal(fo_buf_puts(&out, "x"), 0);
    assert_int_equal(fo_tmpl_expand(t, &params, &out), -E2BIG);
    assert_string_equal(out.data, "x");
    assert_int_equal(out.len, 1);
    fo_buf_free(&out);

    /* Params that do not come from this path: refused, not read out of bounds. */
    struct fo_params empty = {0};
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_tmpl_expand(t, &empty, &out), -EINVAL);
    fo_buf_free(&out);

    fo_params_clear(&params);
    fo_tmpl_destroy(t);
    fo_path_destroy(p);
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
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_appends_and_limits),
        cmocka_unit_test(test_url_encode_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
