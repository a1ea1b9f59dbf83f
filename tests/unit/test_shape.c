/* test_shape.c -- the path syntax, the lazy exact tree and the shaping edits. */
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

#include "jpath.h"
#include "jtree.h"
#include "json.h"
#include "shape.h"

static struct fo_jpath path(const char *s)
{
    struct fo_jpath p;
    char err[128] = "";
    int rc = fo_jpath_compile(&p, s, err, sizeof err);
    if (rc != 0)
        print_error("path %s: %s\n", s, err);
    assert_int_equal(rc, 0);
    return p;
}

/* A tree over 'text' (which must outlive it). */
static void tree(struct fo_jtree *t, const char *text)
{
    struct fo_json_span v;
    assert_int_equal(fo_json_validate(text, strlen(text), 64, &v), 0);
    assert_int_equal(fo_jtree_init(t, v, 1 << 20, NULL), 0);
}

static void expect(struct fo_jtree *t, const char *want)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_jtree_write(t->root, &b), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(fo_json_validate(b.data, b.len, 64, NULL), 0);
    fo_buf_free(&b);
    fo_jtree_free(t);
}

static void test_path_syntax(void **state)
{
    (void)state;
    struct fo_jpath p = path("a.0.*.b01.10");
    assert_int_equal(p.n, 5);
    assert_int_equal(p.nany, 1);
    assert_int_equal(p.seg[1].index, 0);
    assert_true(p.seg[2].any);
    assert_int_equal(p.seg[3].index, -1);
    assert_int_equal(p.seg[4].index, 10);
    fo_jpath_free(&p);
    p = path("007");
    assert_int_equal(p.seg[0].index, -1); /* A leading zero makes it a key. */
    fo_jpath_free(&p);

    static const char *const bad[] = {"", ".", "a.", ".a", "a..b", "a*", "*b", "a.b*c"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[128];
        assert_int_equal(fo_jpath_compile(&p, bad[i], err, sizeof err), -EINVAL);
    }
    char long_path[200] = "k";
    for (int i = 1; i < 33; i++)
        strcat(long_path, ".k");
    char err[128];
    assert_int_equal(fo_jpath_compile(&p, long_path, err, sizeof err), -EINVAL);
    long_path[strlen(long_path) - 2] = '\0'; /* 32 segments: fine. */
    assert_int_equal(fo_jpath_compile(&p, long_path, err, sizeof err), 0);
    fo_jpath_free(&p);
}

static void test_tree_untouched_is_byte_exact(void **state)
{
    (void)state;
    struct fo_jtree t;
    tree(&t, "{ \"a\" : [1.50, 12345678901234567890] , \"s\":\"\\u00e9\\n\" }");
    expect(&t, "{ \"a\" : [1.50, 12345678901234567890] , \"s\":\"\\u00e9\\n\" }");
    /* Opening the root re-writes it compactly, each child still as sent. */
    tree(&t, "{ \"a\" : [1.50, 12345678901234567890] , \"s\":\"\\u00e9\\n\" }");
    assert_int_equal(fo_jtree_open(&t, t.root), 0);
    expect(&t, "{\"a\":[1.50, 12345678901234567890],\"s\":\"\\u00e9\\n\"}");
}

static void test_target(void **state)
{
    (void)state;
    struct fo_jtree t;
    struct fo_jpath p = path("data.items.1");
    tree(&t, "{\"data\":{\"items\":[0,{\"n\":12345678901234567890}]}}");
    assert_int_equal(fo_shape_target(&t, &p), 0);
    expect(&t, "{\"n\":12345678901234567890}");
    tree(&t, "{\"data\":{\"items\":[0]}}");
    assert_int_equal(fo_shape_target(&t, &p), 1); /* Index past the end. */
    fo_jtree_free(&t);
    tree(&t, "{\"data\":3}");
    assert_int_equal(fo_shape_target(&t, &p), 1); /* Into a scalar. */
    fo_jtree_free(&t);
    fo_jpath_free(&p);
    /* Escaped keys are compared decoded; a repeated key: the first is taken. */
    p = path("k\xc3\xa9");
    tree(&t, "{\"k\\u00e9\":1,\"k\\u00e9\":2}");
    assert_int_equal(fo_shape_target(&t, &p), 0);
    expect(&t, "1");
    fo_jpath_free(&p);
}

static void test_allow_union_any_order(void **state)
{
    (void)state;
    struct fo_jpath fwd[2] = {path("a"), path("a.b")};
    struct fo_jpath rev[2] = {path("a.b"), path("a")};
    const char *body = "{\"a\":{\"b\":1,\"c\":2},\"z\":[1]}";
    struct fo_jtree t;
    tree(&t, body);
    assert_int_equal(fo_shape_allow(&t, fwd, 2), 0);
    expect(&t, "{\"a\":{\"b\":1,\"c\":2}}");
    tree(&t, body);
    assert_int_equal(fo_shape_allow(&t, rev, 2), 0);
    expect(&t, "{\"a\":{\"b\":1,\"c\":2}}");
    for (int i = 0; i < 2; i++) {
        fo_jpath_free(&fwd[i]);
        fo_jpath_free(&rev[i]);
    }
    struct fo_jpath none = path("x.y");
    tree(&t, "{\"a\":1}");
    assert_int_equal(fo_shape_allow(&t, &none, 1), 0);
    expect(&t, "{}"); /* The root stays. */
    tree(&t, "7");
    assert_int_equal(fo_shape_allow(&t, &none, 1), 0);
    expect(&t, "null");
    fo_jpath_free(&none);
}

static void test_deny_finds_first(void **state)
{
    (void)state;
    struct fo_jpath p[3] = {path("arr.0"), path("arr.1"), path("o.*")};
    struct fo_jtree t;
    tree(&t, "{\"arr\":[1,2,3],\"o\":{\"x\":1,\"y\":2}}");
    assert_int_equal(fo_shape_deny(&t, p, 3), 0);
    expect(&t, "{\"arr\":[3],\"o\":{}}");
    for (int i = 0; i < 3; i++)
        fo_jpath_free(&p[i]);
}

static void test_rename_in_order(void **state)
{
    (void)state;
    static char b[] = "b", c[] = "c";
    struct fo_shape_rename r[2] = {{path("a"), b, 1}, {path("b"), c, 1}};
    struct fo_jtree t;
    tree(&t, "{\"x\":0,\"a\":1,\"b\":2}");
    assert_int_equal(fo_shape_rename(&t, r, 2), 0);
    expect(&t, "{\"x\":0,\"c\":1}");
    fo_jpath_free(&r[0].path);
    fo_jpath_free(&r[1].path);
}

static void test_ops(void **state)
{
    (void)state;
    struct fo_shape_op ops[3] = {
        {FO_OP_MOVE, path("u.*.n"), path("names.*")},
        {FO_OP_APPEND, path("b"), path("a")},
        {FO_OP_DEL, path("u"), {0}},
    };
    struct fo_jtree t;
    bool skipped = false;
    tree(&t, "{\"u\":[{\"n\":\"p\"},{\"n\":\"q\"}],\"a\":[1],\"b\":[2,3]}");
    assert_int_equal(fo_shape_ops(&t, ops, 3, &skipped), 0);
    expect(&t, "{\"a\":[1,2,3],\"names\":{\"0\":\"p\",\"1\":\"q\"}}");
    assert_false(skipped);
    tree(&t, "{\"u\":[],\"a\":{},\"b\":[2]}");
    assert_int_equal(fo_shape_ops(&t, ops, 3, &skipped), 0);
    expect(&t, "{\"a\":{},\"b\":[2]}");
    assert_true(skipped);
    for (int i = 0; i < 3; i++) {
        fo_jpath_free(&ops[i].from);
        fo_jpath_free(&ops[i].to);
    }
}

static void test_arena_cap(void **state)
{
    (void)state;
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_putc(&b, '['), 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(fo_buf_puts(&b, i ? ",1" : "1"), 0);
    assert_int_equal(fo_buf_putc(&b, ']'), 0);
    struct fo_json_span v;
    assert_int_equal(fo_json_validate(b.data, b.len, 64, &v), 0);
    struct fo_jtree t;
    assert_int_equal(fo_jtree_init(&t, v, 64 * 1024, NULL), 0);
    assert_int_equal(fo_jtree_open(&t, t.root), -E2BIG);
    assert_true(t.used <= 64 * 1024);
    fo_jtree_free(&t);
    fo_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_syntax),
        cmocka_unit_test(test_tree_untouched_is_byte_exact),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_allow_union_any_order),
        cmocka_unit_test(test_deny_finds_first),
        cmocka_unit_test(test_rename_in_order),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_arena_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
