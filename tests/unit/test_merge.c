/* test_merge.c -- unit tests for merge.c: raw values, key order and clashes,
 * arrival-order independence, lifted keys, the "_fanout" report, error bodies.
 * Every document produced here must itself be valid JSON. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "merge.h"

/* A successful result; 'body' must be valid JSON (checked). */
static struct fo_call ok(const char *name, bool merge, const char *body)
{
    struct fo_call r = {.name = name, .merge = merge, .outcome = FO_OK, .status = 200};
    assert_int_equal(fo_json_validate(body, strlen(body), FO_JSON_DEFAULT_DEPTH, &r.json), 0);
    return r;
}

static struct fo_call failed(const char *name, enum fo_outcome o, int status)
{
    struct fo_call r = {.name = name, .outcome = o, .status = status};
    return r;
}

static void check_valid(const struct fo_buf *b)
{
    if (fo_json_validate(b->data, b->len, FO_JSON_MAX_DEPTH, NULL) != 0)
        fail_msg("output is not valid JSON: %s", b->data);
}

/* The merged document (caller frees), checked to be valid JSON. */
static char *merged(const struct fo_call *r, size_t n, const struct fo_report *rep)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_merge_write(&b, r, n, rep), 0);
    check_valid(&b);
    return fo_buf_release(&b, NULL);
}

static void expect_merge(const struct fo_call *r, size_t n, const struct fo_report *rep,
                         const char *want)
{
    char *got = merged(r, n, rep);
    assert_string_equal(got, want);
    free(got);
}

static void test_numbers_byte_exact(void **state)
{
    const char *body = "{\"n\":12345678901234567890,\"f\":1e400,\"z\":-0.0,"
                       "\"e\":1.000000000000000000001E-400,\"a\":[-0,0.10]}";
    struct fo_call r[3] = {ok("user", false, body), ok("big", false, "12345678901234567890"),
                           ok("negz", false, " -0.0 ")};
    expect_merge(r, 3, NULL,
                 "{\"user\":{\"n\":12345678901234567890,\"f\":1e400,\"z\":-0.0,"
                 "\"e\":1.000000000000000000001E-400,\"a\":[-0,0.10]},"
                 "\"big\":12345678901234567890,\"negz\":-0.0}");

    r[0].merge = true;
    expect_merge(r, 1, NULL,
                 "{\"n\":12345678901234567890,\"f\":1e400,\"z\":-0.0,"
                 "\"e\":1.000000000000000000001E-400,\"a\":[-0,0.10]}");

    /* Inner whitespace is part of the raw value. */
    struct fo_call s[2] = {ok("w", false, "{ \"a\" : [ 1 , 2 ] }"),
                           ok("m", true, "{ \"b\" : [ 1 , 2 ] , \"c\" :\n3 }")};
    expect_merge(s, 2, NULL, "{\"w\":{ \"a\" : [ 1 , 2 ] },\"b\":[ 1 , 2 ],\"c\":3}");
}

static void test_order_and_clash(void **state)
{
    struct fo_call r[4] = {
        ok("first", true, "{\"a\":1,\"b\":2}"),
        ok("c", false, "3"),
        ok("third", true, "{\"b\":\"B\",\"d\":4,\"a\":\"A\"}"),
        ok("d", false, "true"),
    };
    expect_merge(r, 4, NULL, "{\"a\":\"A\",\"b\":\"B\",\"c\":3,\"d\":true}");

    /* A later name replaces a lifted key; a later lifted key replaces a name. */
    struct fo_call s[3] = {ok("x", false, "1"), ok("m", true, "{\"x\":2,\"y\":3}"),
                           ok("y", false, "[4]")};
    expect_merge(s, 3, NULL, "{\"x\":2,\"y\":[4]}");

    /* Duplicates inside one body: the last wins, in the first place. */
    struct fo_call t[1] = {ok("m", true, "{\"k\":1,\"j\":0,\"k\":2}")};
    expect_merge(t, 1, NULL, "{\"k\":2,\"j\":0}");

    /* Two results with the same name. */
    struct fo_call u[3] = {ok("n", false, "1"), ok("o", false, "2"), ok("n", false, "3")};
    expect_merge(u, 3, NULL, "{\"n\":3,\"o\":2}");
}

static void test_failed_absent(void **state)
{
    struct fo_call r[4] = {
        ok("user", false, "{\"id\":1}"),
        failed("orders", FO_ERR_TIMEOUT, 0),
        failed("flags", FO_ERR_STATUS, 503),
        ok("m", true, "{\"z\":0}"),
    };
    r[2].merge = true;
    expect_merge(r, 4, NULL, "{\"user\":{\"id\":1},\"z\":0}");

    /* A failed result's body is never looked at, and a failure never wins. */
    struct fo_call s[2] = {ok("a", false, "1"), ok("a", false, "2")};
    s[1].outcome = FO_ERR_INVALID_JSON;
    expect_merge(s, 2, NULL, "{\"a\":1}");

    struct fo_call t[2] = {failed("a", FO_ERR_CONNECT, 0), failed("b", FO_ERR_CANCELLED, 0)};
    expect_merge(t, 2, NULL, "{}");
    expect_merge(NULL, 0, NULL, "{}");
}

/* Results are given in config order; their bodies are produced (allocated and
 * filled) in every possible order. The bytes must never change. */
static void test_arrival_order_independent(void **state)
{
    enum { N = 4 };
    static const char *const names[N] = {"user", "orders", "prefs", "flags"};
    static const bool lift[N] = {false, true, true, false};
    static const char *const bodies[N] = {
        "{\"id\":12345678901234567890}",
        "{\"items\":[1,2],\"total\":3.50,\"flags\":\"from orders\"}",
        "{\"total\":\"prefs wins\",\"\\u0074heme\":\"dark\"}",
        "[true,false]",
    };
    static const double ms[N] = {3.1, 7.25, 1.0, 2.0};
    int perm[N] = {0, 1, 2, 3};
    char *first = NULL;
    int count = 0;

    for (;;) {
        char *mem[N];
        struct fo_call r[N];
        for (int k = 0; k < N; k++) { /* Arrival: perm[0] first. */
            int i = perm[k];
            mem[i] = malloc(strlen(bodies[i]) + 1);
            assert_non_null(mem[i]);
            strcpy(mem[i], bodies[i]);
        }
        for (int i = 0; i < N; i++) {
            r[i] = ok(names[i], lift[i], mem[i]);
            r[i].ms = ms[i];
        }
        struct fo_report rep = {.complete = true, .elapsed_ms = 9.0};
        char *got = merged(r, N, &rep);
        if (!first)
            first = got;
        else {
            assert_string_equal(got, first);
            free(got);
        }
        for (int i = 0; i < N; i++)
            free(mem[i]);
        count++;

        /* Next permutation (lexicographic). */
        int i = N - 2;
        while (i >= 0 && perm[i] > perm[i + 1])
            i--;
        if (i < 0)
            break;
        int j = N - 1;
        while (perm[j] < perm[i])
            j--;
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        for (int a = i + 1, b = N - 1; a < b; a++, b--) {
            t = perm[a];
            perm[a] = perm[b];
            perm[b] = t;
        }
    }
    assert_int_equal(count, 24);
    assert_string_equal(first, "{\"user\":{\"id\":12345678901234567890},\"items\":[1,2],"
                               "\"total\":\"prefs wins\",\"flags\":[true,false],"
                               "\"theme\":\"dark\",\"_fanout\":{\"complete\":true,"
                               "\"elapsed_ms\":9.0,\"backends\":{"
                               "\"user\":{\"status\":200,\"ms\":3.1},"
                               "\"orders\":{\"status\":200,\"ms\":7.3},"
                               "\"prefs\":{\"status\":200,\"ms\":1.0},"
                               "\"flags\":{\"status\":200,\"ms\":2.0}}}}");
    free(first);
}

static void test_merge_non_object(void **state)
{
    struct fo_call r[5] = {
        ok("arr", true, "[1,2]"), ok("str", true, "\"s\""), ok("num", true, "42"),
        ok("nul", true, "null"),  ok("obj", true, "{}"),
    };
    expect_merge(r, 5, NULL, "{\"arr\":[1,2],\"str\":\"s\",\"num\":42,\"nul\":null}");
}

static void test_key_escapes(void **state)
{
    struct fo_call r[3] = {
        ok("m", true,
           "{\"\\u0061\":1,\"a\\\"b\":2,\"\\u00e9\":3,\"\\/\":4,\"\\u0001\":5,"
           "\"\\uD83D\\uDE00\":6,\"tab\\t\":7,\"\\u0000\":8}"),
        ok("a", false, "\"name a\""),
        ok("n", true, "{\"\\u00E9\":\"again\",\"\\\"\":9,\"a\\u0022b\":10}"),
    };
    expect_merge(r, 3, NULL,
                 "{\"a\":\"name a\",\"a\\\"b\":10,\"\xc3\xa9\":\"again\",\"/\":4,"
                 "\"\\u0001\":5,\"\xf0\x9f\x98\x80\":6,\"tab\\t\":7,\"\\u0000\":8,\"\\\"\":9}");

    /* Names are written escaped too. */
    struct fo_call s[1] = {ok("we\"ird\n", false, "1")};
    expect_merge(s, 1, NULL, "{\"we\\\"ird\\n\":1}");
}

/* The top-level keys of a document, in order. */
static size_t keys_of(const char *doc, struct fo_json_span *keys, size_t max)
{
    struct fo_json_span v, k, m;
    struct fo_json_iter it;
    size_t n = 0;
    assert_int_equal(fo_json_validate(doc, strlen(doc), FO_JSON_MAX_DEPTH, &v), 0);
    assert_int_equal(fo_json_iter_object(&it, v), 0);
    while (fo_json_next_member(&it, &k, &m)) {
        assert_true(n < max);
        keys[n++] = k;
    }
    return n;
}

static void test_many_keys(void **state)
{
    enum { K = 5000 };
    struct fo_buf body;
    fo_buf_init(&body, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_putc(&body, '{'), 0);
    for (int i = 0; i < K; i++)
        assert_int_equal(fo_buf_printf(&body, "%s\"k%d\":%d", i ? "," : "", i, i), 0);
    assert_int_equal(fo_buf_puts(&body, ",\"_fanout\":\"dropped\"}"), 0);

    struct fo_call r[3] = {
        ok("big", true, body.data),
        ok("later", true,
           "{\"k4999\":\"last\",\"new\":1,\"\\u006b1\":\"escaped\",\"k0\":\"first\"}"),
        ok("k2", false, "\"name\""),
    };
    struct fo_report rep = {.complete = true, .elapsed_ms = 1};
    char *doc = merged(r, 3, &rep);

    struct fo_json_span *keys = calloc(K + 10, sizeof *keys);
    assert_non_null(keys);
    size_t n = keys_of(doc, keys, K + 10);
    assert_int_equal(n, K + 2); /* k0..k4999, new, _fanout */
    char want[32];
    for (int i = 0; i < K; i++) {
        snprintf(want, sizeof want, "k%d", i);
        if (!fo_json_str_eq(keys[i], want))
            fail_msg("key %d is %.*s", i, (int)keys[i].len, keys[i].p);
    }
    assert_true(fo_json_str_eq(keys[K], "new"));
    assert_true(fo_json_str_eq(keys[K + 1], "_fanout"));
    free(keys);

    cJSON *j = cJSON_Parse(doc);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "k0")->valuestring, "first");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "k1")->valuestring, "escaped");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "k2")->valuestring, "name");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "k3")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "k4999")->valuestring, "last");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "_fanout")));
    cJSON_Delete(j);
    free(doc);
    fo_buf_free(&body);
}

static void test_report_key_reserved(void **state)
{
    struct fo_call r[2] = {ok("m", true, "{\"_fanout\":1,\"a\":2}"), ok("_fanout", false, "3")};
    expect_merge(r, 2, NULL, "{\"_fanout\":3,\"a\":2}");
    r[0].ms = 1;
    r[1].ms = 2;
    struct fo_report rep = {.complete = true, .elapsed_ms = 2};
    expect_merge(r, 2, &rep,
                 "{\"a\":2,\"_fanout\":{\"complete\":true,\"elapsed_ms\":2.0,\"backends\":{"
                 "\"m\":{\"status\":200,\"ms\":1.0},\"_fanout\":{\"status\":200,\"ms\":2.0}}}}");
}

static cJSON *item(const cJSON *o, const char *k)
{
    cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!i)
        fail_msg("no member %s", k);
    return i;
}

static void test_report_shape(void **state)
{
    struct fo_call r[3] = {
        ok("user", false, "{\"id\":7}"),
        failed("orders", FO_ERR_TIMEOUT, 0),
        failed("flags", FO_ERR_STATUS, 503),
    };
    r[0].ms = 3.1;
    r[1].ms = 100.0;
    r[2].ms = 2.0;
    struct fo_report rep = {.complete = false, .elapsed_ms = 12.34};
    char *doc = merged(r, 3, &rep);
    assert_string_equal(doc, "{\"user\":{\"id\":7},\"_fanout\":{\"complete\":false,"
                             "\"elapsed_ms\":12.3,\"backends\":{"
                             "\"user\":{\"status\":200,\"ms\":3.1},"
                             "\"orders\":{\"error\":\"timeout\",\"ms\":100.0},"
                             "\"flags\":{\"error\":\"status\",\"status\":503,\"ms\":2.0}}}}");

    cJSON *j = cJSON_Parse(doc);
    assert_non_null(j);
    cJSON *f = item(j, "_fanout");
    assert_ptr_equal(f, j->child->next); /* The last member. */
    assert_null(f->next);
    assert_true(cJSON_IsFalse(item(f, "complete")));
    assert_true(fabs(item(f, "elapsed_ms")->valuedouble - 12.3) < 1e-9);
    cJSON *b = item(f, "backends");
    assert_int_equal(cJSON_GetArraySize(b), 3);
    cJSON *u = item(b, "user");
    assert_int_equal(cJSON_GetArraySize(u), 2);
    assert_int_equal(item(u, "status")->valueint, 200);
    assert_true(fabs(item(u, "ms")->valuedouble - 3.1) < 1e-9);
    assert_null(cJSON_GetObjectItemCaseSensitive(u, "error"));
    cJSON *o = item(b, "orders");
    assert_string_equal(item(o, "error")->valuestring, "timeout");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "status"));
    assert_true(fabs(item(o, "ms")->valuedouble - 100.0) < 1e-9);
    cJSON *fl = item(b, "flags");
    assert_string_equal(item(fl, "error")->valuestring, "status");
    assert_int_equal(item(fl, "status")->valueint, 503);
    cJSON_Delete(j);
    free(doc);

    /* Every outcome's name, and ms rounding to one decimal. */
    struct fo_call s[FO_OUTCOME_COUNT];
    static const char *const names[FO_OUTCOME_COUNT] = {"a", "b", "c", "d", "e",
                                                        "f", "g", "h", "i"};
    static const double ms[FO_OUTCOME_COUNT] = {0,    -3.14, 1234.56, NAN, INFINITY,
                                                1e20, 0.04,  7,       12};
    static const char *const ms_text[FO_OUTCOME_COUNT] = {
        "0.0", "-3.1", "1234.6", "0.0", "0.0", "100000000000000000000.0", "0.0", "7.0", "12.0"};
    for (int i = 0; i < FO_OUTCOME_COUNT; i++) {
        s[i] = failed(names[i], (enum fo_outcome)i, i == FO_ERR_STATUS ? 404 : 0);
        s[i].ms = ms[i];
    }
    s[FO_OK] = ok("a", false, "0");
    s[FO_OK].status = 0;
    s[FO_OK].ms = ms[FO_OK];
    struct fo_report rep2 = {.complete = true, .elapsed_ms = NAN};
    doc = merged(s, FO_OUTCOME_COUNT, &rep2);
    j = cJSON_Parse(doc);
    assert_non_null(j);
    b = item(item(j, "_fanout"), "backends");
    for (int i = 0; i < FO_OUTCOME_COUNT; i++) {
        cJSON *x = item(b, names[i]);
        if (i == FO_OK)
            assert_null(cJSON_GetObjectItemCaseSensitive(x, "error"));
        else
            assert_string_equal(item(x, "error")->valuestring, fo_outcome_name((enum fo_outcome)i));
        char want[64];
        snprintf(want, sizeof want, "\"%s\":{", names[i]);
        const char *at = strstr(doc, want);
        assert_non_null(at);
        snprintf(want, sizeof want, "\"ms\":%s}", ms_text[i]);
        assert_non_null(strstr(at, want));
    }
    assert_non_null(strstr(doc, "\"elapsed_ms\":0.0,"));
    assert_non_null(strstr(doc, "\"d\":{\"error\":\"status\",\"status\":404,"));
    cJSON_Delete(j);
    free(doc);

    /* Nothing to report. */
    struct fo_report rep3 = {.complete = true, .elapsed_ms = 0.25};
    expect_merge(NULL, 0, &rep3,
                 "{\"_fanout\":{\"complete\":true,\"elapsed_ms\":0.3,\"backends\":{}}}");
}

static void test_error_body(void **state)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_merge_error(&b, "bad_request", "m", NULL, NULL, 0, NULL), 0);
    assert_string_equal(b.data, "{\"error\":{\"code\":\"bad_request\",\"message\":\"m\"}}");
    check_valid(&b);

    struct fo_call r[2] = {ok("user", false, "{}"), failed("orders", FO_ERR_TIMEOUT, 0)};
    r[0].ms = 1.5;
    r[1].ms = 250;
    struct fo_report rep = {.complete = false, .elapsed_ms = 250.04};
    fo_buf_reset(&b);
    assert_int_equal(fo_merge_error(&b, "backend_failed", "backend \"orders\" timed out\n",
                                    "orders", r, 2, &rep),
                     0);
    check_valid(&b);
    assert_string_equal(
        b.data, "{\"error\":{\"code\":\"backend_failed\","
                "\"message\":\"backend \\\"orders\\\" timed out\\n\",\"backend\":\"orders\"},"
                "\"_fanout\":{\"complete\":false,\"elapsed_ms\":250.0,\"backends\":{"
                "\"user\":{\"status\":200,\"ms\":1.5},"
                "\"orders\":{\"error\":\"timeout\",\"ms\":250.0}}}}");
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    cJSON *e = item(j, "error");
    assert_string_equal(item(e, "code")->valuestring, "backend_failed");
    assert_string_equal(item(e, "message")->valuestring, "backend \"orders\" timed out\n");
    assert_string_equal(item(e, "backend")->valuestring, "orders");
    assert_true(cJSON_IsObject(item(item(j, "_fanout"), "backends")));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "user")); /* No data in an error. */
    cJSON_Delete(j);

    /* Invalid UTF-8 in a message still gives valid JSON. */
    fo_buf_reset(&b);
    assert_int_equal(fo_merge_error(&b, "x", "bad \xff byte", "b\xc3", NULL, 0, NULL), 0);
    check_valid(&b);
    fo_buf_free(&b);
}

static void test_limits(void **state)
{
    struct fo_call r[2] = {ok("a", false, "[1,2,3]"), ok("m", true, "{\"b\":\"xyz\"}")};
    const char *want = "{\"a\":[1,2,3],\"b\":\"xyz\"}";
    size_t wlen = strlen(want);
    struct fo_buf b;

    /* Appends after what the buffer holds. */
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_puts(&b, "pre"), 0);
    assert_int_equal(fo_merge_write(&b, r, 2, NULL), 0);
    assert_string_equal(b.data + 3, want);
    fo_buf_free(&b);

    /* Exactly enough room, then one byte short. */
    fo_buf_init(&b, wlen);
    assert_int_equal(fo_merge_write(&b, r, 2, NULL), 0);
    assert_string_equal(b.data, want);
    fo_buf_free(&b);
    fo_buf_init(&b, wlen - 1);
    assert_int_equal(fo_merge_write(&b, r, 2, NULL), -E2BIG);
    fo_buf_free(&b);

    struct fo_report rep = {.complete = true};
    fo_buf_init(&b, wlen + 10);
    assert_int_equal(fo_merge_write(&b, r, 2, &rep), -E2BIG);
    fo_buf_reset(&b);
    assert_int_equal(fo_merge_error(&b, "code", "a long message here", NULL, r, 2, &rep), -E2BIG);
    fo_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_byte_exact),
        cmocka_unit_test(test_order_and_clash),
        cmocka_unit_test(test_failed_absent),
        cmocka_unit_test(test_arrival_order_independent),
        cmocka_unit_test(test_merge_non_object),
        cmocka_unit_test(test_key_escapes),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_report_key_reserved),
        cmocka_unit_test(test_report_shape),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
