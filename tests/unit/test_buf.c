/* test_buf.c -- unit tests for the capped byte buffer (buf.h). */
#include "buf.h"
#include "fmt.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

/* A copy of a buffer's visible state, to prove a failed call changed nothing. */
struct snap {
    char *data;      /* The data pointer itself (not freed). */
    size_t len;      /* Length then. */
    size_t cap;      /* Capacity then. */
    size_t max;      /* Limit then. */
    char bytes[512]; /* The first len + 1 bytes (contents and NUL), if any. */
};

static void snap_take(struct snap *s, const struct fo_buf *b)
{
    s->data = b->data;
    s->len = b->len;
    s->cap = b->cap;
    s->max = b->max;
    assert_true(b->len < sizeof s->bytes);
    if (b->data)
        memcpy(s->bytes, b->data, b->len + 1);
}

static void snap_check(const struct snap *s, const struct fo_buf *b)
{
    assert_ptr_equal(b->data, s->data);
    assert_int_equal(b->len, s->len);
    assert_int_equal(b->cap, s->cap);
    assert_int_equal(b->max, s->max);
    if (b->data)
        assert_memory_equal(b->data, s->bytes, s->len + 1);
}

static void test_init_allocates_nothing(void **state)
{
    struct fo_buf b;

    memset(&b, 0xa5, sizeof b);
    fo_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 10);
    fo_buf_free(&b);
}

static void test_append_up_to_the_limit(void **state)
{
    struct fo_buf b;
    struct snap s;

    fo_buf_init(&b, 8);
    assert_int_equal(fo_buf_append(&b, "abcde", 5), 0);
    assert_int_equal(fo_buf_puts(&b, "fgh"), 0); /* Exactly at the limit. */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    assert_true(b.cap <= 9); /* Never allocates past what the limit can use. */

    snap_take(&s, &b);
    assert_int_equal(fo_buf_putc(&b, 'i'), -E2BIG);
    snap_check(&s, &b);
    assert_int_equal(fo_buf_append(&b, "i", 1), -E2BIG);
    snap_check(&s, &b);
    assert_int_equal(fo_buf_puts(&b, "ijk"), -E2BIG);
    snap_check(&s, &b);
    assert_int_equal(fo_buf_reserve(&b, 1), -E2BIG);
    snap_check(&s, &b);
    /* An empty append still fits. */
    assert_int_equal(fo_buf_append(&b, "", 0), 0);
    snap_check(&s, &b);
    fo_buf_free(&b);
}

/* A too-big append into a partly filled buffer fails as a whole: nothing
 * of it is written, not even the part that would have fitted. */
static void test_e2big_leaves_partial_buffer_unchanged(void **state)
{
    struct fo_buf b;
    struct snap s;

    fo_buf_init(&b, 10);
    assert_int_equal(fo_buf_puts(&b, "hello"), 0);
    snap_take(&s, &b);
    assert_int_equal(fo_buf_puts(&b, " world"), -E2BIG);
    snap_check(&s, &b);
    assert_string_equal(b.data, "hello");
    assert_int_equal(fo_buf_printf(&b, "%s", " world"), -E2BIG);
    snap_check(&s, &b);
    /* Over the limit by sizes that would wrap a naive len + n. */
    assert_int_equal(fo_buf_reserve(&b, SIZE_MAX), -E2BIG);
    snap_check(&s, &b);
    assert_int_equal(fo_buf_reserve(&b, SIZE_MAX - 2), -E2BIG);
    snap_check(&s, &b);
    /* What still fits goes in afterwards. */
    assert_int_equal(fo_buf_puts(&b, "!!!!!"), 0);
    assert_string_equal(b.data, "hello!!!!!");
    fo_buf_free(&b);
}

static void test_zero_limit(void **state)
{
    struct fo_buf b;

    fo_buf_init(&b, 0);
    assert_int_equal(fo_buf_putc(&b, 'x'), -E2BIG);
    assert_int_equal(fo_buf_printf(&b, "%d", 1), -E2BIG);
    assert_null(b.data); /* A failed append allocates nothing. */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    fo_buf_free(&b);
}

/* On an unlimited buffer a request for (nearly) all of memory cannot be met:
 * it must fail rather than report success without room. */
static void test_unlimited_huge_reserve_fails(void **state)
{
    struct fo_buf b;

    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_puts(&b, "ab"), 0);
    size_t cap = b.cap;
    int rc = fo_buf_reserve(&b, SIZE_MAX - 2); /* len + extra + 1 would wrap to 0. */
    assert_true(rc == -E2BIG || rc == -ENOMEM);
    rc = fo_buf_reserve(&b, SIZE_MAX);
    assert_true(rc == -E2BIG || rc == -ENOMEM);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "ab");
    fo_buf_free(&b);
}

static void test_putc_fast_path_respects_limit(void **state)
{
    struct fo_buf b;

    /* Allocation grows to min(256, max + 1), so the room left in the
     * allocation is never what stops putc: the limit is. */
    fo_buf_init(&b, 3);
    assert_int_equal(fo_buf_putc(&b, 'a'), 0);
    assert_int_equal(fo_buf_putc(&b, 'b'), 0);
    assert_int_equal(fo_buf_putc(&b, 'c'), 0);
    assert_int_equal(fo_buf_putc(&b, 'd'), -E2BIG);
    assert_string_equal(b.data, "abc");
    fo_buf_free(&b);

    fo_buf_init(&b, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fo_buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(fo_buf_putc(&b, 'x'), -E2BIG);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[1000], '\0');
    assert_int_equal(b.data[999], 'a' + 999 % 26);
    fo_buf_free(&b);
}

static void test_printf_grows(void **state)
{
    struct fo_buf b;
    char want[8192];
    size_t wlen = 0;

    fo_buf_init(&b, FO_BUF_UNLIMITED);
    /* Short pieces (formatted on the stack) and long ones (formatted in
     * place after a reserve), across several reallocations. */
    for (int i = 0; i < 40; i++) {
        int n = i % 3 ? 5 : 300;
        assert_int_equal(fo_buf_printf(&b, "%d:%*s|", i, n, "x"), 0);
        wlen += (size_t)snprintf(want + wlen, sizeof want - wlen, "%d:%*s|", i, n, "x");
        assert_true(wlen < sizeof want);
        assert_int_equal(b.len, wlen);
        assert_int_equal(strlen(b.data), wlen); /* NUL-terminated at len. */
        assert_true(b.cap > b.len);
    }
    assert_memory_equal(b.data, want, wlen + 1);
    assert_true(b.cap > 256); /* It did have to grow. */
    fo_buf_free(&b);
}

static void test_printf_limit(void **state)
{
    struct fo_buf b;
    struct snap s;

    fo_buf_init(&b, 300);
    assert_int_equal(fo_buf_printf(&b, "%s", "head "), 0);
    snap_take(&s, &b);
    /* Long output (the reserve path) over the limit. */
    assert_int_equal(fo_buf_printf(&b, "%400s", "x"), -E2BIG);
    snap_check(&s, &b);
    /* One byte over. */
    assert_int_equal(fo_buf_printf(&b, "%296s", "x"), -E2BIG);
    snap_check(&s, &b);
    /* Exactly up to the limit via the reserve path. */
    assert_int_equal(fo_buf_printf(&b, "%295s", "y"), 0);
    assert_int_equal(b.len, 300);
    assert_int_equal(strlen(b.data), 300);
    assert_int_equal(b.data[299], 'y');
    assert_true(b.cap <= 301);
    fo_buf_free(&b);
}

static void test_release_empty(void **state)
{
    struct fo_buf b;
    size_t len = 12345;

    /* Never written: still an allocated "". */
    fo_buf_init(&b, 50);
    char *p = fo_buf_release(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 50);

    /* Written, then reset: the allocation is handed over, still "". */
    assert_int_equal(fo_buf_puts(&b, "abc"), 0);
    fo_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    len = 12345;
    p = fo_buf_release(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);

    /* len may be NULL. */
    p = fo_buf_release(&b, NULL);
    assert_non_null(p);
    free(p);
}

static void test_release_hands_over_and_restarts(void **state)
{
    struct fo_buf b;
    size_t len = 0;

    fo_buf_init(&b, 20);
    assert_int_equal(fo_buf_printf(&b, "n=%d", 42), 0);
    char *p = fo_buf_release(&b, &len);
    assert_string_equal(p, "n=42");
    assert_int_equal(len, 4);
    free(p);

    /* The buffer is empty and reusable under the same limit. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 20);
    assert_int_equal(fo_buf_puts(&b, "01234567890123456789"), 0);
    assert_int_equal(fo_buf_putc(&b, 'x'), -E2BIG);
    fo_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.max, 20); /* Kept by free too. */
    fo_buf_free(&b);             /* Twice is fine. */
}

/* fmt.h writes what printf writes, without its engine: every integer edge,
 * a sweep of values, and the one-decimal milliseconds at rounding edges. */
static void check_i64(int64_t v)
{
    char got[FO_FMT_MAX + 1], want[32];
    size_t n = fo_fmt_i64(got, v);
    got[n] = '\0';
    snprintf(want, sizeof want, "%lld", (long long)v);
    assert_string_equal(got, want);
    if (v >= 0) {
        n = fo_fmt_u64(got, (uint64_t)v);
        got[n] = '\0';
        assert_string_equal(got, want);
    }
}

static void test_fmt_integers_match_printf(void **state)
{
    (void)state;
    int64_t edges[] = {0,
                       1,
                       9,
                       10,
                       99,
                       100,
                       -1,
                       -9,
                       -10,
                       INT64_MAX,
                       INT64_MIN,
                       INT64_MIN + 1,
                       (int64_t)1e15,
                       4294967295LL,
                       4294967296LL};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check_i64(edges[i]);
    for (int64_t v = 1; v > 0 && v < INT64_MAX / 3; v = v * 3 + 1) {
        check_i64(v);
        check_i64(-v);
    }
    char got[FO_FMT_MAX + 1];
    size_t n = fo_fmt_u64(got, UINT64_MAX);
    got[n] = '\0';
    assert_string_equal(got, "18446744073709551615");
}

static void check_ms(double ms, const char *want)
{
    char got[FO_FMT_MAX + 1];
    size_t n = fo_fmt_ms(got, ms);
    assert_true(n <= FO_FMT_MAX);
    got[n] = '\0';
    assert_string_equal(got, want);
}

static void test_fmt_ms_one_decimal(void **state)
{
    (void)state;
    check_ms(0, "0.0");
    check_ms(0.04, "0.0");
    check_ms(0.05, "0.1");
    check_ms(12.34, "12.3");
    check_ms(12.36, "12.4");
    check_ms(99.96, "100.0");
    check_ms(-0.5, "-0.5");
    check_ms(-12.36, "-12.4");
    check_ms(NAN, "0.0");
    check_ms(INFINITY, "0.0");
    check_ms(99999999999.9, "99999999999.9");
    char none[FO_FMT_MAX];
    assert_int_equal(fo_fmt_ms(none, 1e15), 0); /* Left to the caller's printf. */
    assert_int_equal(fo_fmt_ms(none, -1e300), 0);
    /* Against printf over a sweep, away from the .x5 ties printf rounds to even. */
    for (double v = 0.0123; v < 1e9; v = v * 1.7 + 0.0031) {
        double tenths = v * 10;
        if (fabs(tenths - floor(tenths) - 0.5) < 1e-6)
            continue;
        char want[64];
        snprintf(want, sizeof want, "%.1f", v);
        check_ms(v, want);
    }
}

static void test_fmt_hex_fixed_width(void **state)
{
    (void)state;
    char got[FO_FMT_MAX + 1], want[32];
    uint64_t vs[] = {0, 1, 0xabc, 0xdeadbeef, 0x123456789abcULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        size_t n = fo_fmt_hex(got, vs[i], 12);
        got[n] = '\0';
        snprintf(want, sizeof want, "%012llx", (unsigned long long)(vs[i] & 0xffffffffffffULL));
        assert_string_equal(got, want);
        n = fo_fmt_hex(got, vs[i], 16);
        got[n] = '\0';
        snprintf(want, sizeof want, "%016llx", (unsigned long long)vs[i]);
        assert_string_equal(got, want);
    }
}

static void test_put_int_and_ms_respect_the_limit(void **state)
{
    (void)state;
    struct fo_buf b;
    fo_buf_init(&b, 6);
    assert_int_equal(fo_buf_put_int(&b, -1234), 0);
    assert_string_equal(b.data, "-1234");
    assert_int_equal(fo_buf_put_ms(&b, 1.25), -E2BIG); /* "1.3" does not fit: nothing added. */
    assert_string_equal(b.data, "-1234");
    assert_int_equal(fo_buf_put_int(&b, 7), 0);
    assert_string_equal(b.data, "-12347");
    fo_buf_free(&b);
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    assert_int_equal(fo_buf_put_ms(&b, 1e20), 0); /* Past fmt.h's range: whole digits. */
    assert_string_equal(b.data, "100000000000000000000.0");
    fo_buf_free(&b);
}

static void test_presize_is_exact_and_capped(void **state)
{
    (void)state;
    struct fo_buf b;
    fo_buf_init(&b, 10000);
    assert_int_equal(fo_buf_presize(&b, 4096), 0);
    assert_int_equal(b.cap, 4097); /* The bytes and the NUL, not a power of two. */
    char *was = b.data;
    assert_int_equal(fo_buf_presize(&b, 100), 0); /* Room already: as it was. */
    assert_ptr_equal(b.data, was);
    assert_int_equal(b.cap, 4097);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    assert_int_equal(fo_buf_append(&b, chunk, sizeof chunk), 0);
    assert_ptr_equal(b.data, was); /* No realloc for the body it was sized for. */
    assert_int_equal(b.len, 4096);
    assert_int_equal(b.data[4096], '\0');
    assert_int_equal(fo_buf_presize(&b, 10000 - 4096 + 1), -E2BIG); /* Past max: unchanged. */
    assert_int_equal(b.cap, 4097);
    assert_int_equal(fo_buf_presize(&b, SIZE_MAX), -E2BIG);
    assert_int_equal(fo_buf_append(&b, "y", 1), 0); /* Growth goes on past the presize. */
    assert_int_equal(b.len, 4097);
    fo_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_allocates_nothing),
        cmocka_unit_test(test_append_up_to_the_limit),
        cmocka_unit_test(test_e2big_leaves_partial_buffer_unchanged),
        cmocka_unit_test(test_zero_limit),
        cmocka_unit_test(test_unlimited_huge_reserve_fails),
        cmocka_unit_test(test_putc_fast_path_respects_limit),
        cmocka_unit_test(test_printf_grows),
        cmocka_unit_test(test_printf_limit),
        cmocka_unit_test(test_release_empty),
        cmocka_unit_test(test_release_hands_over_and_restarts),
        cmocka_unit_test(test_fmt_integers_match_printf),
        cmocka_unit_test(test_fmt_ms_one_decimal),
        cmocka_unit_test(test_fmt_hex_fixed_width),
        cmocka_unit_test(test_put_int_and_ms_respect_the_limit),
        cmocka_unit_test(test_presize_is_exact_and_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
