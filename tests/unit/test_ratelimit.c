/* test_ratelimit.c -- unit tests for token buckets and the keyed table (ratelimit.h). */
#include "ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* burst at once, then rps per second; the wait says when the next token comes. */
static void test_bucket(void **state)
{
    (void)state;
    struct fo_tbucket b;
    int64_t wait = 0;
    fo_tbucket_init(&b, 5, 0);
    for (int i = 0; i < 5; i++)
        assert_true(fo_tbucket_take(&b, 1, 5, 0, &wait));
    assert_false(fo_tbucket_take(&b, 1, 5, 0, &wait));
    assert_true(wait > 999000 && wait <= 1000001);
    assert_false(fo_tbucket_take(&b, 1, 5, 500000, &wait));
    assert_true(wait > 499000 && wait <= 500001);
    assert_true(fo_tbucket_take(&b, 1, 5, 1000000, &wait));
    /* Never more than burst, however long idle. */
    for (int i = 0; i < 5; i++)
        assert_true(fo_tbucket_take(&b, 1, 5, 100000000, &wait));
    assert_false(fo_tbucket_take(&b, 1, 5, 100000000, &wait));
}

/* One bucket per key; an empty key is one shared bucket; the table never holds more than
 * max_clients, and an evicted client comes back full. */
static void test_keyed(void **state)
{
    (void)state;
    struct fo_ratelimit *rl = fo_ratelimit_create(1, 1, true, 160);
    int64_t wait;
    assert_true(fo_ratelimit_take(rl, "a", 1, 0, &wait));
    assert_false(fo_ratelimit_take(rl, "a", 1, 0, &wait));
    assert_true(fo_ratelimit_take(rl, "b", 1, 0, &wait));
    assert_true(fo_ratelimit_take(rl, "", 0, 0, &wait));
    assert_false(fo_ratelimit_take(rl, "", 0, 0, &wait));
    char key[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_true(fo_ratelimit_take(rl, key, (size_t)n, 0, &wait));
    }
    assert_true(fo_ratelimit_clients(rl) <= 160);
    assert_true(fo_ratelimit_take(rl, "a", 1, 0, &wait)); /* Evicted long ago. */
    fo_ratelimit_destroy(rl);
    rl = fo_ratelimit_create(2, 0, false, 0); /* burst 0 = rps */
    assert_true(fo_ratelimit_take(rl, NULL, 0, 5, &wait));
    assert_true(fo_ratelimit_take(rl, NULL, 0, 5, &wait));
    assert_false(fo_ratelimit_take(rl, NULL, 0, 5, &wait));
    assert_int_equal(fo_ratelimit_clients(rl), 1);
    fo_ratelimit_destroy(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_keyed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
