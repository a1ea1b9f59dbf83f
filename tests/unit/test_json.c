/* test_json.c -- unit tests for json.c: validator accept/reject tables, depth
 * limits, UTF-8 edges, raw iteration, unescaping and string escaping; and the
 * block-at-a-time validator held to the verdicts of the byte-at-a-time one it
 * replaced (kept below as ref_validate) at every offset around its 8- and
 * 16-byte blocks, on both sides of the point where it moves to its padded copy
 * of the body's last 64 bytes, on truncated, random and mutated inputs. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* A test input; literals may hold NUL bytes, so the length is explicit. */
struct tcase {
    const char *s; /* Static. */
    size_t len;    /* Bytes in s. */
};

#define C(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

static const struct tcase accept_cases[] = {
    C("[]"),
    C("{}"),
    C(" \t\r\n[ ]\n"),
    C("0"),
    C("-0"),
    C("-0.0"),
    C("1e400"),
    C("12345678901234567890"),
    C("1E+2"),
    C("1e-2"),
    C("0e0"),
    C("0.5"),
    C("-1.5e-10"),
    C("\"x\""),
    C("\"\""),
    C("true"),
    C("false"),
    C("null"),
    C("[1,2,3]"),
    C("[1, \"a\", {}, [], true, false, null]"),
    C("{\"a\":1,\"b\":[true,false,null]}"),
    C("{ \"a\" : 1 , \"b\" : 2 }"),
    C("{\"\":\"\"}"),
    C("{\"a\":{\"a\":{\"a\":{}}}}"),
    C("[[[]]]"),
    C("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
    C("\"\\u0000\""),
    C("\"\\uD83D\\uDE00\""),
    C("\"\\ud83d\\ude00\""),
    C("\"\\uDBFF\\uDFFF\""),
    C("\"\\u00e9\\uFFFF\\uffff\""),
    C("\"\xc3\xa9\""),
    C("\"\xf0\x9f\x98\x80\""),
    C("\"\x7f\""),
    C("\" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~\""),
    C("[\"]\", \"}\", \"\\\"]\"]"),
    C("{\"a\":[{\"b\":[{\"c\":[]}]}]}"),
};

static const struct tcase reject_cases[] = {
    C(""),
    C(" "),
    C("\n\t"),
    C("["),
    C("]"),
    C("{"),
    C("}"),
    C("[1,]"),
    C("[,1]"),
    C("[1,,2]"),
    C("[,]"),
    C("[\"a\",]"),
    C("{\"a\":1,}"),
    C("{,}"),
    C("{\"a\"}"),
    C("{\"a\":}"),
    C("{\"a\" 1}"),
    C("{a:1}"),
    C("{'a':1}"),
    C("{1:1}"),
    C("{null:1}"),
    C("[1 2]"),
    C("{\"a\":1 \"b\":2}"),
    C("[}"),
    C("{]"),
    C("[1]]"),
    C("{\"a\":1}}"),
    C("[][]"),
    C("[1] x"),
    C("1 2"),
    C("01"),
    C("-01"),
    C("00"),
    C("1."),
    C("1.e5"),
    C(".5"),
    C("-.5"),
    C("-"),
    C("[-]"),
    C("+1"),
    C("1e"),
    C("1e+"),
    C("[1e]"),
    C("0x10"),
    C("NaN"),
    C("Infinity"),
    C("-Infinity"),
    C("tru"),
    C("True"),
    C("nul"),
    C("nulll"),
    C("truefalse"),
    C("'a'"),
    C("\"abc"),
    C("\""),
    C("\"\\"),
    C("\"\\x\""),
    C("\"\\U0041\""),
    C("\"\\u12\""),
    C("\"\\u12G4\""),
    C("\"\\uD83D\""),
    C("\"\\uDE00\""),
    C("\"\\uD83Dx\""),
    C("\"\\uD83D\\u0041\""),
    C("\"\\uD83D\\uD83D\""),
    C("\"\\uD83D\\\""),
    C("\"\\uDE00\\uD83D\""),
    C("\"a\tb\""),
    C("\"\n\""),
    C("\"\x01\""),
    C("\"\x1f\""),
    C("\"\x00\""),
    C("\"\x80\""),
    C("\"\xbf\""),
    C("\"\xc0\x80\""),
    C("\"\xc1\xbf\""),
    C("\"\xe0\x80\x80\""),
    C("\"\xe0\x9f\xbf\""),
    C("\"\xed\xa0\x80\""),
    C("\"\xed\xbf\xbf\""),
    C("\"\xf0\x80\x80\x80\""),
    C("\"\xf0\x8f\xbf\xbf\""),
    C("\"\xf4\x90\x80\x80\""),
    C("\"\xf5\x80\x80\x80\""),
    C("\"\xf8\x88\x80\x80\x80\""),
    C("\"\xfe\""),
    C("\"\xff\""),
    C("\"\xc3\""),
    C("\"\xe2\x82\""),
    C("\"\xf0\x9f\x98\""),
    C("\"\xc3\x28\""),
    C("\"\xe2\x28\xa1\""),
    C("\xc3\xa9"),
    C("[\xc3\xa9]"),
    C("\xef\xbb\xbf[]"),
    C("[1]\x00"),
    C("\"x\"\x00"),
    C("\x00"),
    C("/*c*/[]"),
    C("[1]//"),
};

static void test_accept_table(void **state)
{
    for (size_t i = 0; i < sizeof accept_cases / sizeof *accept_cases; i++) {
        const struct tcase *c = &accept_cases[i];
        struct fo_json_span v = {0};
        int rc = fo_json_validate(c->s, c->len, FO_JSON_DEFAULT_DEPTH, &v);
        if (rc != 0)
            fail_msg("y_%zu rejected (%d): %.*s", i, rc, (int)c->len, c->s);
        assert_non_null(v.p);
        assert_true(v.len > 0 && v.len <= c->len);
    }
}

static void test_reject_table(void **state)
{
    for (size_t i = 0; i < sizeof reject_cases / sizeof *reject_cases; i++) {
        const struct tcase *c = &reject_cases[i];
        int rc = fo_json_validate(c->s, c->len, FO_JSON_DEFAULT_DEPTH, NULL);
        if (rc != -EINVAL)
            fail_msg("n_%zu gave %d: %.*s", i, rc, (int)c->len, c->s);
    }
    assert_int_equal(fo_json_validate(NULL, 0, 8, NULL), -EINVAL);
}

/* Every prefix of a valid document except the whole is invalid. */
static void test_prefixes_rejected(void **state)
{
    const char *doc = "{\"a\":[1,-2.5e3,\"x\\u00e9\\uD83D\\uDE00\",{\"b\":null}],\"c\":true}";
    size_t n = strlen(doc);
    assert_int_equal(fo_json_validate(doc, n, 8, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fo_json_validate(doc, i, 8, NULL), -EINVAL);
}

static void test_span_excludes_whitespace(void **state)
{
    const char *s = " \n [ 1 , 2 ] \t\r\n";
    struct fo_json_span v;
    assert_int_equal(fo_json_validate(s, strlen(s), 4, &v), 0);
    assert_int_equal(v.len, strlen("[ 1 , 2 ]"));
    assert_memory_equal(v.p, "[ 1 , 2 ]", v.len);

    assert_int_equal(fo_json_validate("  7 ", 4, 0, &v), 0);
    assert_int_equal(v.len, 1);
    assert_int_equal(v.p[0], '7');
}

/* Nested arrays, or objects with the key "a", 'depth' deep around a 1. */
static char *nest(unsigned depth, bool objects)
{
    size_t cap = (size_t)depth * 6 + 2;
    char *s = malloc(cap);
    size_t n = 0;
    assert_non_null(s);
    for (unsigned i = 0; i < depth; i++) {
        if (objects) {
            memcpy(s + n, "{\"a\":", 5);
            n += 5;
        } else {
            s[n++] = '[';
        }
    }
    s[n++] = '1';
    for (unsigned i = 0; i < depth; i++)
        s[n++] = objects ? '}' : ']';
    s[n] = '\0';
    return s;
}

static void test_depth_boundary(void **state)
{
    assert_int_equal(fo_json_validate("1", 1, 0, NULL), 0);
    assert_int_equal(fo_json_validate("\"s\"", 3, 0, NULL), 0);
    assert_int_equal(fo_json_validate("[]", 2, 0, NULL), -E2BIG);
    assert_int_equal(fo_json_validate("{}", 2, 0, NULL), -E2BIG);
    assert_int_equal(fo_json_validate("[]", 2, 1, NULL), 0);
    assert_int_equal(fo_json_validate("[[]]", 4, 1, NULL), -E2BIG);
    assert_int_equal(fo_json_validate("[[],[]]", 7, 2, NULL), 0);
    assert_int_equal(fo_json_validate("[[],[[]]]", 9, 2, NULL), -E2BIG);

    for (int objects = 0; objects < 2; objects++) {
        for (unsigned d = 1; d <= 70; d++) {
            char *s = nest(d, objects);
            int want = d <= FO_JSON_DEFAULT_DEPTH ? 0 : -E2BIG;
            assert_int_equal(fo_json_validate(s, strlen(s), FO_JSON_DEFAULT_DEPTH, NULL), want);
            assert_int_equal(fo_json_validate(s, strlen(s), d, NULL), 0);
            assert_int_equal(fo_json_validate(s, strlen(s), d - 1, NULL), -E2BIG);
            free(s);
        }
    }

    /* The hard cap: max_depth above it counts as it. */
    char *s = nest(FO_JSON_MAX_DEPTH, false);
    assert_int_equal(fo_json_validate(s, strlen(s), UINT_MAX, NULL), 0);
    free(s);
    s = nest(FO_JSON_MAX_DEPTH + 1, true);
    assert_int_equal(fo_json_validate(s, strlen(s), UINT_MAX, NULL), -E2BIG);
    assert_int_equal(fo_json_validate(s, strlen(s), FO_JSON_MAX_DEPTH + 1, NULL), -E2BIG);
    free(s);

    /* Unclosed but within the limit: not JSON. */
    assert_int_equal(fo_json_validate("[[[", 3, 8, NULL), -EINVAL);
}

/* Alternating objects and arrays deep enough to span several words of the
 * validator's bit stack; a wrong closer anywhere must be caught. */
static void test_deep_mixed_closers(void **state)
{
    enum { D = 300 };
    char s[D * 6 + 2];
    size_t n = 0;
    for (int i = 0; i < D; i++) {
        if (i % 3 == 0) {
            memcpy(s + n, "{\"k\":", 5);
            n += 5;
        } else {
            s[n++] = '[';
        }
    }
    s[n++] = '0';
    size_t close_at = n;
    for (int i = D - 1; i >= 0; i--)
        s[n++] = i % 3 == 0 ? '}' : ']';
    assert_int_equal(fo_json_validate(s, n, D, NULL), 0);
    assert_int_equal(fo_json_validate(s, n, D - 1, NULL), -E2BIG);
    for (size_t i = close_at; i < n; i++) {
        s[i] = s[i] == '}' ? ']' : '}';
        assert_int_equal(fo_json_validate(s, n, D, NULL), -EINVAL);
        s[i] = s[i] == '}' ? ']' : '}';
    }
}

/* Build "\"" + pad + ins + pad + "\"" with ins at offset 'at' of a 48-byte
 * body, so that it lands at every position of the 8- and 16-byte blocks. */
static size_t with_insert(char *out, size_t at, const char *ins, size_t inslen)
{
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < at; i++)
        out[n++] = (char)('a' + i % 26);
    memcpy(out + n, ins, inslen);
    n += inslen;
    for (size_t i = at; i < 48; i++)
        out[n++] = (char)('A' + i % 26);
    out[n++] = '"';
    return n;
}

static void test_utf8_and_escapes_at_every_offset(void **state)
{
    static const struct tcase good[] = {
        C("\xc2\x80"),
        C("\xdf\xbf"),
        C("\xe0\xa0\x80"),
        C("\xed\x9f\xbf"),
        C("\xee\x80\x80"),
        C("\xef\xbf\xbf"),
        C("\xf0\x90\x80\x80"),
        C("\xf4\x8f\xbf\xbf"),
        C("\xf3\xbf\xbf\xbf"),
        C("\\n"),
        C("\\\""),
        C("\\\\"),
        C("\\u0022"),
        C("\\uD800\\uDC00"),
        C(" "),
        C("\x7f"),
        C("~"),
        C("!"),
        C("#"),
        C("]"),
    };
    static const struct tcase bad[] = {
        C("\x01"),
        C("\x1f"),
        C("\x00"),
        C("\n"),
        C("\x80"),
        C("\xc2"),
        C("\xc2\x7f"),
        C("\xc0\xaf"),
        C("\xe0\x9f\x80"),
        C("\xed\xa0\x80"),
        C("\xf0\x8f\x80\x80"),
        C("\xf4\x90\x80\x80"),
        C("\xf5"),
        C("\xff"),
        C("\\"),
        C("\\q"),
        C("\\uDC00"),
        C("\\uD800"),
        C("\\uD800\\n"),
        C("\""),
    };
    char buf[128];
    for (size_t at = 0; at <= 48; at++) {
        for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
            size_t n = with_insert(buf, at, good[i].s, good[i].len);
            if (fo_json_validate(buf, n, 1, NULL) != 0)
                fail_msg("good %zu rejected at offset %zu", i, at);
        }
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            size_t n = with_insert(buf, at, bad[i].s, bad[i].len);
            if (fo_json_validate(buf, n, 1, NULL) != -EINVAL)
                fail_msg("bad %zu accepted at offset %zu", i, at);
        }
    }
}

/* Every single byte inside a string: the validator agrees with the rules. */
static void test_every_byte(void **state)
{
    for (int c = 0; c < 256; c++) {
        char s[3] = {'"', (char)c, '"'};
        bool ok = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
        assert_int_equal(fo_json_validate(s, 3, 1, NULL), ok ? 0 : -EINVAL);
    }
}

static void test_iterate_nested(void **state)
{
    const char *doc = "{ \"a\" : 1 , \"b\\\"}\" : [1, {\"x\": \"]}\\\\\"}, [] ,\"\\\"[\"],"
                      "\"c\":{\"d\":null},\"e\":\"s\\\\\",\"f\":-1.5e3,\"g\":true,\"h\":false}";
    static const char *const keys[] = {"\"a\"", "\"b\\\"}\"", "\"c\"", "\"e\"",
                                       "\"f\"", "\"g\"",      "\"h\""};
    static const char *const vals[] = {"1",
                                       "[1, {\"x\": \"]}\\\\\"}, [] ,\"\\\"[\"]",
                                       "{\"d\":null}",
                                       "\"s\\\\\"",
                                       "-1.5e3",
                                       "true",
                                       "false"};
    struct fo_json_span v, k, m;
    struct fo_json_iter it;

    assert_int_equal(fo_json_validate(doc, strlen(doc), 4, &v), 0);
    assert_int_equal(fo_json_kind(v), FO_JSON_OBJECT);
    assert_int_equal(fo_json_iter_array(&it, v), -EINVAL);
    assert_int_equal(fo_json_iter_object(&it, v), 0);
    size_t i = 0;
    struct fo_json_span b = {0};
    while (fo_json_next_member(&it, &k, &m)) {
        assert_true(i < 7);
        assert_int_equal(k.len, strlen(keys[i]));
        assert_memory_equal(k.p, keys[i], k.len);
        assert_int_equal(m.len, strlen(vals[i]));
        assert_memory_equal(m.p, vals[i], m.len);
        assert_int_equal(fo_json_validate(m.p, m.len, 4, NULL), 0);
        if (i == 1)
            b = m;
        i++;
    }
    assert_int_equal(i, 7);
    assert_false(fo_json_next_member(&it, &k, &m)); /* Stays finished. */

    /* Into the array under "b\"}". */
    static const char *const elems[] = {"1", "{\"x\": \"]}\\\\\"}", "[]", "\"\\\"[\""};
    static const enum fo_json_kind kinds[] = {FO_JSON_NUMBER, FO_JSON_OBJECT, FO_JSON_ARRAY,
                                              FO_JSON_STRING};
    assert_int_equal(fo_json_iter_object(&it, b), -EINVAL);
    assert_int_equal(fo_json_iter_array(&it, b), 0);
    struct fo_json_span inner = {0};
    for (i = 0; fo_json_next_element(&it, &m); i++) {
        assert_true(i < 4);
        assert_int_equal(m.len, strlen(elems[i]));
        assert_memory_equal(m.p, elems[i], m.len);
        assert_int_equal(fo_json_kind(m), kinds[i]);
        if (i == 1)
            inner = m;
    }
    assert_int_equal(i, 4);

    /* And into the object inside it. */
    struct fo_json_iter it2;
    assert_int_equal(fo_json_iter_object(&it2, inner), 0);
    assert_true(fo_json_next_member(&it2, &k, &m));
    assert_true(fo_json_str_eq(k, "x"));
    assert_true(fo_json_str_eq(m, "]}\\"));
    assert_false(fo_json_next_member(&it2, &k, &m));
}

static void test_iterate_empty_and_scalars(void **state)
{
    struct fo_json_iter it;
    struct fo_json_span k, m;
    struct fo_json_span v;

    assert_int_equal(fo_json_validate("{ }", 3, 1, &v), 0);
    assert_int_equal(fo_json_iter_object(&it, v), 0);
    assert_false(fo_json_next_member(&it, &k, &m));

    assert_int_equal(fo_json_validate("[\n]", 3, 1, &v), 0);
    assert_int_equal(fo_json_iter_array(&it, v), 0);
    assert_false(fo_json_next_element(&it, &m));

    static const char *const scalars[] = {"1", "\"{}\"", "true", "null", "false"};
    for (size_t i = 0; i < 5; i++) {
        v.p = scalars[i];
        v.len = strlen(scalars[i]);
        assert_int_equal(fo_json_iter_object(&it, v), -EINVAL);
        assert_int_equal(fo_json_iter_array(&it, v), -EINVAL);
    }
    v.p = NULL;
    v.len = 0;
    assert_int_equal(fo_json_iter_array(&it, v), -EINVAL);

    /* Element kinds of a flat array. */
    const char *a = "[0,-1e5,\"\",true,false,null,{},[]]";
    static const enum fo_json_kind kinds[] = {FO_JSON_NUMBER, FO_JSON_NUMBER, FO_JSON_STRING,
                                              FO_JSON_TRUE,   FO_JSON_FALSE,  FO_JSON_NULL,
                                              FO_JSON_OBJECT, FO_JSON_ARRAY};
    assert_int_equal(fo_json_validate(a, strlen(a), 2, &v), 0);
    assert_int_equal(fo_json_iter_array(&it, v), 0);
    size_t i = 0;
    while (fo_json_next_element(&it, &m))
        assert_int_equal(fo_json_kind(m), kinds[i++]);
    assert_int_equal(i, 8);
}

/* Unescape the literal 'lit' and compare with want[0..wlen). */
static void check_unescape(const char *lit, const char *want, size_t wlen)
{
    struct fo_buf b;
    struct fo_json_span s = {lit, strlen(lit)};
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_json_validate(s.p, s.len, 0, NULL), 0);
    assert_int_equal(fo_json_unescape(s, &b), 0);
    assert_int_equal(b.len, wlen);
    if (wlen)
        assert_memory_equal(b.data, want, wlen);
    fo_buf_free(&b);
}

static void test_unescape(void **state)
{
    check_unescape("\"\"", "", 0);
    check_unescape("\"plain h\xc3\xa9llo\"", "plain h\xc3\xa9llo", 12);
    check_unescape("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4);
    check_unescape("\"\\ud834\\udd1e\"", "\xf0\x9d\x84\x9e", 4);
    check_unescape("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);
    check_unescape("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80", 4);
    check_unescape("\"a\\u0000b\"", "a\0b", 3);
    check_unescape("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_unescape("\"\\u00e9\\u20AC\\u0041\\u07FF\\u0800\"",
                   "\xc3\xa9\xe2\x82\xac"
                   "A\xdf\xbf\xe0\xa0\x80",
                   11);
    check_unescape("\"x\\uD83D\\uDE00y\\ny\"", "x\xf0\x9f\x98\x80y\ny", 8);

    /* Appends after what is there. */
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_puts(&b, "pre:"), 0);
    struct fo_json_span s = {"\"\\u0061\"", 8};
    assert_int_equal(fo_json_unescape(s, &b), 0);
    assert_string_equal(b.data, "pre:a");

    /* Not a string literal. */
    struct fo_json_span bad[] = {{"123", 3}, {"\"", 1}, {"", 0}, {"{}", 2}, {NULL, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(fo_json_unescape(bad[i], &b), -EINVAL);
    assert_string_equal(b.data, "pre:a");
    fo_buf_free(&b);

    /* A full buffer: -E2BIG and the buffer as it was. */
    fo_buf_init(&b, 6);
    assert_int_equal(fo_buf_puts(&b, "pre:"), 0);
    s.p = "\"abc\\n\"";
    s.len = strlen(s.p);
    assert_int_equal(fo_json_unescape(s, &b), -E2BIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "pre:");
    fo_buf_free(&b);
}

static void test_str_eq(void **state)
{
    struct {
        const char *lit; /* Raw literal. */
        const char *s;   /* C string. */
        bool eq;         /* Expected. */
    } cases[] = {
        {"\"a\"", "a", true},
        {"\"\\u0061\"", "a", true},
        {"\"\"", "", true},
        {"\"ab\"", "a", false},
        {"\"a\"", "ab", false},
        {"\"a\"", "", false},
        {"\"a\\u0000\"", "a", false},
        {"\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", true},
        {"\"\\uD83D\\uDE00\"", "\xf0\x9f\x98", false},
        {"\"\\n\\\"\"", "\n\"", true},
        {"\"caf\\u00e9\"", "caf\xc3\xa9", true},
        {"\"caf\\u00e9\"", "cafe", false},
        {"a", "a", false},
        {"1", "1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fo_json_span s = {cases[i].lit, strlen(cases[i].lit)};
        if (fo_json_str_eq(s, cases[i].s) != cases[i].eq)
            fail_msg("str_eq case %zu", i);
    }
}

static void test_kind(void **state)
{
    struct {
        const char *v;          /* Value. */
        enum fo_json_kind kind; /* Expected. */
    } cases[] = {
        {"{}", FO_JSON_OBJECT},   {"[]", FO_JSON_ARRAY},  {"\"\"", FO_JSON_STRING},
        {"-1", FO_JSON_NUMBER},   {"0", FO_JSON_NUMBER},  {"true", FO_JSON_TRUE},
        {"false", FO_JSON_FALSE}, {"null", FO_JSON_NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fo_json_span v = {cases[i].v, strlen(cases[i].v)};
        assert_int_equal(fo_json_kind(v), cases[i].kind);
    }
}

/* put_string(in) must give exactly 'want', and valid JSON. */
static void check_put(const char *in, size_t n, const char *want)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_json_put_string(&b, in, n), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    assert_int_equal(fo_json_validate(b.data, b.len, 0, NULL), 0);
    fo_buf_free(&b);
}

static void test_put_string(void **state)
{
    check_put("", 0, "\"\"");
    check_put(NULL, 0, "\"\"");
    check_put("plain", 5, "\"plain\"");
    check_put("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
    check_put("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
    check_put("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    check_put("\0", 1, "\"\\u0000\"");
    check_put("\x7f", 1, "\"\x7f\"");
    check_put("\xc3\xa9\xf0\x9f\x98\x80", 6, "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    /* Invalid UTF-8: one U+FFFD per maximal subpart. */
    check_put("\xff", 1, "\"\xef\xbf\xbd\"");
    check_put("\xc3", 1, "\"\xef\xbf\xbd\"");
    check_put("\xe2\x82", 2, "\"\xef\xbf\xbd\"");
    check_put("\xe2\x82x", 3, "\"\xef\xbf\xbdx\"");
    check_put("\xf0\x9f\x98", 3, "\"\xef\xbf\xbd\"");
    check_put("\xc0\x80", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    check_put("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_put("a\x80"
              "b\xf4\x90\x80\x80",
              7,
              "\"a\xef\xbf\xbd"
              "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_put("0123456789abcdef\"0123456789abcdef\n", 34,
              "\"0123456789abcdef\\\"0123456789abcdef\\n\"");

    /* The limit: -E2BIG and nothing appended. */
    struct fo_buf b;
    fo_buf_init(&b, 8);
    assert_int_equal(fo_buf_puts(&b, "x"), 0);
    assert_int_equal(fo_json_put_string(&b, "abcdef", 6), -E2BIG);
    assert_string_equal(b.data, "x");
    assert_int_equal(fo_json_put_string(&b, "abcd\n", 5), -E2BIG); /* Fits only unescaped. */
    assert_string_equal(b.data, "x");
    assert_int_equal(fo_json_put_string(&b, "ab\n", 3), 0);
    assert_string_equal(b.data, "x\"ab\\n\"");
    fo_buf_free(&b);
}

/* A small deterministic generator, so failures reproduce. */
static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

/* Valid UTF-8 in, the same bytes back out of unescape; arbitrary bytes in,
 * valid JSON out. */
static void test_put_string_roundtrip(void **state)
{
    static const char *const units[] = {"a",
                                        "Z",
                                        " ",
                                        "\"",
                                        "\\",
                                        "/",
                                        "\n",
                                        "\x01",
                                        "\x1f",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xef\xbf\xbf",
                                        "\xf0\x9f\x98\x80",
                                        "\xf4\x8f\xbf\xbf",
                                        "\0"};
    uint64_t seed = 42;
    struct fo_buf in, out, back;
    fo_buf_init(&in, FO_BUF_UNLIMITED);
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    fo_buf_init(&back, FO_BUF_UNLIMITED);
    for (int iter = 0; iter < 5000; iter++) {
        fo_buf_reset(&in);
        fo_buf_reset(&out);
        fo_buf_reset(&back);
        size_t parts = rnd(&seed) % 40;
        for (size_t i = 0; i < parts; i++) {
            const char *u = units[rnd(&seed) % 16];
            size_t ulen = u[0] ? strlen(u) : 1;
            if (rnd(&seed) % 2) {
                u = "abcdefghij";
                ulen = 1 + rnd(&seed) % 10;
            }
            assert_int_equal(fo_buf_append(&in, u, ulen), 0);
        }
        assert_int_equal(fo_json_put_string(&out, in.data, in.len), 0);
        struct fo_json_span v;
        assert_int_equal(fo_json_validate(out.data, out.len, 0, &v), 0);
        assert_int_equal(fo_json_unescape(v, &back), 0);
        assert_int_equal(back.len, in.len);
        if (in.len)
            assert_memory_equal(back.data, in.data, in.len);
    }
    for (int iter = 0; iter < 20000; iter++) {
        unsigned char raw[40];
        size_t n = rnd(&seed) % sizeof raw;
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(rnd(&seed) % 3 ? 0x80 + rnd(&seed) % 0x80 : rnd(&seed));
        fo_buf_reset(&out);
        assert_int_equal(fo_json_put_string(&out, (const char *)raw, n), 0);
        if (fo_json_validate(out.data, out.len, 0, NULL) != 0)
            fail_msg("put_string output invalid at iteration %d", iter);
    }
    fo_buf_free(&in);
    fo_buf_free(&out);
    fo_buf_free(&back);
}

/* ---- Reference: the byte-at-a-time validator json.c had before its word-at-a-time
 * rewrite, kept verbatim (but for its name) so the differential tests below can
 * hold the new one to exactly the old verdicts and spans. ------------------------ */

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Bytes that end a run of plain string content: controls, '"', '\\' and
 * every byte >= 0x80 (the start or middle of a multi-byte sequence). */
static const uint8_t str_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x90 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xa0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xb0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xc0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xd0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xe0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xf0 */
};

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static bool is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), per the
 * table in RFC 3629 section 4. Sets *ok; when the sequence is ill-formed the
 * length is that of its maximal subpart (>= 1), the bytes one U+FFFD replaces. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end, bool *ok)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xbf; /* Range of the first continuation byte. */
    size_t need;                  /* Continuation bytes. */

    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* Overlong below U+0800. */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF are not characters. */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* Overlong below U+10000. */
        else if (c == 0xf4)
            hi = 0x8f; /* Above U+10FFFF. */
    } else {
        *ok = false; /* Continuation byte, C0/C1 overlong lead, or F5..FF. */
        return 1;
    }
    size_t avail = (size_t)(end - p) - 1;
    if (avail < 1 || p[1] < lo || p[1] > hi) {
        *ok = false;
        return 1;
    }
    for (size_t i = 2; i <= need; i++) {
        if (i > avail || (p[i] & 0xc0) != 0x80) {
            *ok = false;
            return i;
        }
    }
    *ok = true;
    return need + 1;
}

/* Four hex digits at p (caller checked there are four bytes). */
static bool hex4(const uint8_t *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (unsigned)((c | 0x20) - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Validate a string body; p is just past the opening quote. Returns the byte
 * after the closing quote, or NULL. */
static const uint8_t *scan_string(const uint8_t *p, const uint8_t *end)
{
    for (;;) {
        /* Eight plain ASCII bytes at a time. Each term flags (at least) the
         * first byte below 0x20, equal to '"' or equal to '\\' exactly when
         * there is one; bytes >= 0x80 are flagged by x itself. */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ (ONES * '"');
            uint64_t s = x ^ (ONES * '\\');
            if (((x - ONES * 0x20) | (q - ONES) | (s - ONES) | x) & HIGHS)
                break;
            p += 8;
        }
        while (p < end && !str_special[*p])
            p++;
        if (p >= end)
            return NULL;
        uint8_t c = *p;
        if (c == '"')
            return p + 1;
        if (c >= 0x80) {
            bool ok;
            size_t n = utf8_seq(p, end, &ok);
            if (!ok)
                return NULL;
            p += n;
            continue;
        }
        if (c != '\\')
            return NULL; /* Unescaped control character. */
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u': {
            unsigned u, lo;
            if (end - p < 6 || !hex4(p + 2, &u))
                return NULL;
            p += 6;
            if (u >= 0xdc00 && u <= 0xdfff)
                return NULL; /* Low surrogate without a high one. */
            if (u >= 0xd800 && u <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return NULL; /* High surrogate without a low one. */
                p += 6;
            }
            break;
        }
        default:
            return NULL;
        }
    }
}

/* Validate a number starting at p. Returns the byte after it, or NULL. What
 * follows is the caller's business ("01" stops after "0" and the caller
 * rejects the "1"). */
static const uint8_t *scan_number(const uint8_t *p, const uint8_t *end)
{
    if (*p == '-') {
        p++;
        if (p == end)
            return NULL;
    }
    if (*p == '0') {
        p++;
    } else if (is_digit(*p)) {
        p++;
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

/* A member name and its colon; p is at the name. Returns the start of the
 * value (after whitespace), or NULL. */
static const uint8_t *scan_key(const uint8_t *p, const uint8_t *end)
{
    if (p >= end || *p != '"')
        return NULL;
    p = scan_string(p + 1, end);
    if (!p)
        return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return NULL;
    return skip_ws(p + 1, end);
}

static int ref_validate(const char *s, size_t len, unsigned max_depth, struct fo_json_span *out)
{
    uint64_t is_obj[FO_JSON_MAX_DEPTH / 64]; /* Bit d: level d+1 is an object. */
    unsigned depth = 0;

    if (!s || len == 0)
        return -EINVAL;
    if (max_depth > FO_JSON_MAX_DEPTH)
        max_depth = FO_JSON_MAX_DEPTH;
    const uint8_t *end = (const uint8_t *)s + len;
    const uint8_t *p = skip_ws((const uint8_t *)s, end);
    const uint8_t *start = p;

    for (;;) {
        /* A value starts at p. */
        if (p >= end)
            return -EINVAL;
        switch (*p) {
        case '{':
        case '[': {
            bool obj = *p == '{';
            if (depth >= max_depth)
                return -E2BIG;
            uint64_t bit = 1ULL << (depth % 64);
            if (obj)
                is_obj[depth / 64] |= bit;
            else
                is_obj[depth / 64] &= ~bit;
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                depth--;
                p++;
                break; /* Empty: a complete value. */
            }
            if (obj) {
                p = scan_key(p, end);
                if (!p)
                    return -EINVAL;
            }
            continue; /* The first member or element. */
        }
        case '"':
            p = scan_string(p + 1, end);
            break;
        case 't':
            p = end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
            break;
        case 'f':
            p = end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
            break;
        case 'n':
            p = end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
            break;
        default:
            p = scan_number(p, end);
            break;
        }
        if (!p)
            return -EINVAL;

        /* After a value: close finished containers until a comma. */
        for (;;) {
            if (depth == 0) {
                const uint8_t *vend = p;
                if (skip_ws(p, end) != end)
                    return -EINVAL; /* Trailing garbage. */
                if (out) {
                    out->p = (const char *)start;
                    out->len = (size_t)(vend - start);
                }
                return 0;
            }
            p = skip_ws(p, end);
            if (p >= end)
                return -EINVAL;
            bool obj = (is_obj[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                if (obj) {
                    p = scan_key(p, end);
                    if (!p)
                        return -EINVAL;
                }
                break;
            }
            if (*p != (obj ? '}' : ']'))
                return -EINVAL;
            depth--;
            p++;
        }
    }
}

/* ---- Differential tests against the reference ---------------------------------- */

/* Both validators on a private heap copy of exactly n bytes, so ASan flags any read
 * past the end; verdict and span must agree, at a shallow and the full depth. */
static void same_verdict(const char *s, size_t n, const char *what, size_t a, size_t b)
{
    static const unsigned depths[] = {0, 2, FO_JSON_DEFAULT_DEPTH, UINT_MAX};
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
        struct fo_json_span x = {NULL, 0}, y = {NULL, 0};
        int want = ref_validate(copy, n, depths[d], &y);
        int got = fo_json_validate(copy, n, depths[d], &x);
        if (got != want || x.p != y.p || x.len != y.len)
            fail_msg("%s (%zu, %zu), %zu bytes, depth %u: got %d, reference %d", what, a, b, n,
                     depths[d], got, want);
    }
    free(copy);
}

/* Every kind of string stop at offsets 0..33 of a string body (both sides of
 * two 16-byte blocks), in strings that start at every alignment, as a value and
 * as a key. These bodies are short, so most of them is read from the padded
 * copy of the last 64 bytes; test_tail_boundary reads the same in place. */
static void test_stops_at_word_offsets(void **state)
{
    static const struct tcase ins[] = {
        C("\""),
        C("\\"),
        C("\\"),
        C("\\n"),
        C("\\u00e9"),
        C("\\uD83D\\uDE00"),
        C("\\"),
        C("\\x"),
        C("\\u12"),
        C("\x01"),
        C("\x1f"),
        C("\x00"),
        C("\t"),
        C("\x7f"),
        C(" "),
        C("\xc3\xa9"),
        C("\xe2\x82\xac"),
        C("\xf0\x9f\x98\x80"),
        C("\xc3"),
        C("\xe2\x82"),
        C("\xf0\x9f\x98"),
        C("\xed\xa0\x80"),
        C("\xc0\xaf"),
        C("\x80"),
        C("\xff"),
        C("\xf4\x90\x80\x80"),
    };
    static const char *frames[][2] = {
        {"", ""}, {"[", "]"}, {"{", ":1}"}, {"{\"k\":", "}"}, {"[1,", ",2]"},
    };
    char buf[96];
    for (size_t f = 0; f < sizeof frames / sizeof *frames; f++)
        for (size_t lead = 0; lead < 16; lead++) /* Where the string starts in a block. */
            for (size_t at = 0; at < 34; at++)
                for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
                    for (size_t tail = 0; tail < 10; tail += 3) {
                        size_t n = 0;
                        for (size_t k = 0; k < lead; k++)
                            buf[n++] = ' ';
                        n += (size_t)sprintf(buf + n, "%s\"", frames[f][0]);
                        for (size_t k = 0; k < at; k++)
                            buf[n++] = (char)('a' + k);
                        memcpy(buf + n, ins[i].s, ins[i].len);
                        n += ins[i].len;
                        for (size_t k = 0; k < tail; k++)
                            buf[n++] = 'z';
                        buf[n++] = '"';
                        n += (size_t)sprintf(buf + n, "%s", frames[f][1]);
                        same_verdict(buf, n, "insert/offset", i, at);
                        /* The same cut short anywhere: the end inside every token. */
                        for (size_t cut = 0; cut < n; cut++)
                            same_verdict(buf, cut, "insert/offset cut", i, at);
                    }
}

/* Bodies of length 0..40 ending mid-token (every prefix of documents dense in
 * tokens, numbers and literals), each in an exactly sized allocation. */
static void test_prefixes_end_mid_token(void **state)
{
    static const char *docs[] = {
        "{\"id\":1024,\"name\":\"bench-1024\",\"ok\":true,\"ratio\":0.125,\"n\":null}",
        "[12345678901234567890,-0.5e+10,1E-2,0,false,true,null,\"\",{},[]]",
        "{\"a\" : [ 1 , 2 ] , \"b\" :\t{ \"c\" : \"\\u00e9\xc3\xa9\" } }   \n",
        "                                        [1]",
        "\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"",
        "123456789012345678901234567890123456789012345",
        "[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t d = 0; d < sizeof docs / sizeof *docs; d++) {
        size_t n = strlen(docs[d]);
        for (size_t len = 0; len <= 40 && len <= n; len++)
            same_verdict(docs[d], len, "prefix", d, len);
        same_verdict(docs[d], n, "whole", d, n);
    }
}

/* The validator reads fast paths up to 64 bytes ahead in the caller's buffer
 * while more than 64 bytes remain, and from a padded copy of the last 64 after
 * that. Bodies followed by 0..80 spaces put that boundary at every byte of their
 * last tokens; each is also cut at every length, alone and behind 70 spaces. */
static void test_tail_boundary(void **state)
{
    static const char *docs[] = {
        "{\"id\":1024,\"name\":\"bench-1024\",\"ok\":true,\"ratio\":0.125,\"n\":null,\"f\":false}",
        "[12345678901234567890,1234567890123456,12345678901234567,-0.5e+10,1E-2,0,01,1.,0.5]",
        "{\"abcdefghijklmnop\":1,\"abcdefghijklmno\":[\"abcdefghijklmnopqrstuvwxyz0123456789\"]}",
        "[\"abcdefghijklmnop\",\"abcdefghijklmnopq\",\"a\\\"b\",\"\xc3\xa9\xe2\x82\xac\","
        "\"\\ud83d\\ude00\"]",
        "{\"a\" : [ 1 , 2 ] , \"b\" :\t{ \"c\" : \"\\u00e9\xc3\xa9\" } }",
        "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],{\"k\":{\"k\":{\"k\":{}}}}",
        "{\"p\":48.989999999999995,\"q\":0.1234567890123456,\"r\":1.5e3,\"s\":[true,false,null]}",
        "\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"",
        "12345678901234567890123456789012345678901234567890",
        /* The farthest reads: names of 14..16 bytes before strings of two blocks
         * and before numbers of a block of digits each side of the point. */
        "{\"a\":1,\"abcdefghijklmno\":\"abcdefghijklmnopqrstuvwxyz01234\",\"abcdefghijklmnop\":"
        "\"abcdefghijklmnopqrstuvwxyz012345\",\"abcdefghijklmn\":123456789012345.123456789012345,"
        "\"abcdefghijklmnop\":1234567890123456789012345678901,\"abcdefghijklmno\":0."
        "123456789012345}",
    };
    static char buf[1024];
    for (size_t d = 0; d < sizeof docs / sizeof *docs; d++) {
        size_t n = strlen(docs[d]);
        memcpy(buf, docs[d], n);
        for (size_t cut = 0; cut < n; cut++)
            same_verdict(buf, cut, "tail cut", d, cut);
        char *lead = buf + n + 100; /* The same behind 70 spaces: a full-size copy. */
        memset(lead, ' ', 70);
        memcpy(lead + 70, docs[d], n);
        for (size_t cut = 70; cut <= 70 + n; cut++)
            same_verdict(lead, cut, "lead cut", d, cut);
        for (size_t t = 0; t <= 80; t++) {
            same_verdict(buf, n + t, "tail", d, t);
            buf[n + t] = ' ';
        }
    }
}

/* Numbers of every shape around the block sizes: a sign or not, 1..40 integer
 * digits, no fraction, "." alone or 1..40 fraction digits, three exponents; in a
 * short body and in one long enough to be read in place. */
static void test_number_shapes(void **state)
{
    static const char *exps[] = {"", "e5", "E-2"};
    static char buf[512];
    for (int neg = 0; neg < 2; neg++)
        for (size_t ni = 1; ni <= 40; ni++)
            for (size_t nf = 0; nf <= 41; nf++)
                for (size_t e = 0; e < sizeof exps / sizeof *exps; e++) {
                    char num[128];
                    size_t m = 0;
                    if (neg)
                        num[m++] = '-';
                    for (size_t i = 0; i < ni; i++)
                        num[m++] = (char)('1' + (i + nf) % 9 - (i == 1 && ni == 2 ? 1 : 0));
                    if (nf > 0) {
                        num[m++] = '.';
                        for (size_t i = 1; i < nf; i++)
                            num[m++] = (char)('0' + i % 10);
                    }
                    m += (size_t)sprintf(num + m, "%s", exps[e]);
                    int n = sprintf(buf, "[%.*s,1]", (int)m, num);
                    same_verdict(buf, (size_t)n, "number", ni, nf);
                    n = sprintf(buf, "{\"k\":%.*s,\"pad\":\"%080d\"}", (int)m, num, 0);
                    same_verdict(buf, (size_t)n, "number in place", ni, nf);
                    buf[0] = '0'; /* A leading zero: "01..." ends after the 0. */
                    memcpy(buf + 1, num + neg, m - (size_t)neg);
                    same_verdict(buf, m + 1 - (size_t)neg, "zero", ni, nf);
                }
}

/* Names of 0..40 bytes, plain or with a stop at every offset, followed by the
 * colon or by whitespace first; short and in place. */
static void test_name_shapes(void **state)
{
    static const char *stops[] = {"", "\\n", "\xc3\xa9", "\x01", "\"", "\\", "\x80"};
    static const char *colons[] = {":", " :", ": ", "\n:\t", ",", ""};
    static char buf[512];
    for (size_t len = 0; len <= 40; len++)
        for (size_t st = 0; st < sizeof stops / sizeof *stops; st++)
            for (size_t at = 0; at <= len; at += st ? 1 : len + 1)
                for (size_t c = 0; c < sizeof colons / sizeof *colons; c++) {
                    char name[128];
                    size_t m = 0;
                    for (size_t i = 0; i < len; i++) {
                        if (i == at)
                            m += (size_t)sprintf(name + m, "%s", stops[st]);
                        name[m++] = (char)('a' + i % 26);
                    }
                    int n = sprintf(buf, "{\"%.*s\"%s1}", (int)m, name, colons[c]);
                    same_verdict(buf, (size_t)n, "name", len, at);
                    n = sprintf(buf, "{\"%.*s\"%s1,\"pad\":\"%080d\"}", (int)m, name, colons[c], 0);
                    same_verdict(buf, (size_t)n, "name in place", len, at);
                }
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random JSON-ish text: mostly well formed, from a grammar with a few wrong
 * choices mixed in, so that both verdicts are common. */
static void gen(uint64_t *r, char *out, size_t *n, size_t cap, int depth)
{
    static const char *atoms[] = {
        "0",
        "-0",
        "12",
        "3.25",
        "-1e9",
        "1E+2",
        "01",
        "1.",
        "true",
        "false",
        "null",
        "nul",
        "\"\"",
        "\"abc\"",
        "\"a\\n\"",
        "\"\\u00e9\"",
        "\"\xc3\xa9x\"",
        "\"\xe2\x82\"",
        "\"\\uD800\\uDC00\"",
        "\"0123456789abcdef\"",
        "\"\x01\"",
        "  ",
        "\n",
        ",",
        ":",
        "]",
        "}",
    };
    unsigned k = (unsigned)(xorshift(r) % 10);
    if (*n + 64 > cap)
        return;
    if (depth < 6 && k < 3) {
        bool obj = k == 0;
        out[(*n)++] = obj ? '{' : '[';
        unsigned items = (unsigned)(xorshift(r) % 5);
        for (unsigned i = 0; i < items && *n + 64 <= cap; i++) {
            if (i)
                out[(*n)++] = xorshift(r) % 30 ? ',' : ' ';
            if (obj) {
                *n += (size_t)sprintf(out + *n, "\"k%u\"", i);
                out[(*n)++] = xorshift(r) % 30 ? ':' : ',';
            }
            gen(r, out, n, cap, depth + 1);
        }
        out[(*n)++] = obj ? '}' : ']';
        return;
    }
    const char *a = atoms[xorshift(r) % (sizeof atoms / sizeof *atoms)];
    if (xorshift(r) % 4 && (a[0] == ',' || a[0] == ':' || a[0] == ']' || a[0] == '}'))
        a = "1";
    size_t l = strlen(a);
    memcpy(out + *n, a, l);
    *n += l;
}

/* Random texts, then each mutated (bytes flipped, inserted, deleted, cut),
 * and the bench bodies mutated: the new validator agrees with the reference. */
static void test_differential_random(void **state)
{
    static const char *bodies[] = {"../../bench/data/s200.json", "../../bench/data/s1k.json",
                                   "bench/data/s200.json", "bench/data/s1k.json"};
    static char text[8192];
    static const char specials[] = "\"\\{}[],:. \n\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff"
                                   "0e-u";
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    size_t nbody = 0;
    char body[2048];
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies && nbody == 0; b++) {
        FILE *f = fopen(bodies[b], "rb");
        if (f) {
            nbody = fread(body, 1, sizeof body, f);
            fclose(f);
        }
    }
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        if (nbody && iter % 4 == 0) {
            memcpy(text, body, nbody);
            n = nbody;
        } else {
            gen(&r, text, &n, sizeof text / 2, 0);
        }
        same_verdict(text, n, "random", (size_t)iter, 0);
        unsigned muts = 1 + (unsigned)(xorshift(&r) % 3);
        for (unsigned m = 0; m < muts && n > 0; m++) {
            size_t at = (size_t)(xorshift(&r) % n);
            char c = specials[xorshift(&r) % (sizeof specials - 1)];
            switch (xorshift(&r) % 4) {
            case 0:
                text[at] = c;
                break;
            case 1:
                memmove(text + at + 1, text + at, n - at);
                text[at] = c;
                n++;
                break;
            case 2:
                memmove(text + at, text + at + 1, n - at - 1);
                n--;
                break;
            default:
                n = at;
                break;
            }
        }
        same_verdict(text, n, "mutated", (size_t)iter, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_table),
        cmocka_unit_test(test_reject_table),
        cmocka_unit_test(test_prefixes_rejected),
        cmocka_unit_test(test_span_excludes_whitespace),
        cmocka_unit_test(test_depth_boundary),
        cmocka_unit_test(test_deep_mixed_closers),
        cmocka_unit_test(test_utf8_and_escapes_at_every_offset),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_iterate_nested),
        cmocka_unit_test(test_iterate_empty_and_scalars),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_str_eq),
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_put_string),
        cmocka_unit_test(test_put_string_roundtrip),
        cmocka_unit_test(test_stops_at_word_offsets),
        cmocka_unit_test(test_prefixes_end_mid_token),
        cmocka_unit_test(test_tail_boundary),
        cmocka_unit_test(test_number_shapes),
        cmocka_unit_test(test_name_shapes),
        cmocka_unit_test(test_differential_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
