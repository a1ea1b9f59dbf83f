/* test_budget.c -- unit tests for the buffered-bytes budget (budget.h). */
#include "budget.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_full_at_the_limit(void **state)
{
    (void)state;
    struct fo_budget *b;
    assert_int_equal(fo_budget_create(&b, 100), 0);
    assert_false(fo_budget_full(b));
    fo_budget_charge(b, 99);
    assert_false(fo_budget_full(b));
    fo_budget_charge(b, 1);
    assert_true(fo_budget_full(b)); /* At the limit: refuse new work. */
    fo_budget_release(b, 1);
    assert_false(fo_budget_full(b));
    assert_int_equal(fo_budget_used(b), 99);
    fo_budget_release(b, 99);
    assert_int_equal(fo_budget_used(b), 0);
    fo_budget_destroy(b);
}

static void test_null_is_a_no_op(void **state)
{
    (void)state;
    fo_budget_charge(NULL, 10);
    fo_budget_release(NULL, 10);
    fo_budget_destroy(NULL);
}

static void *charge_and_release(void *arg)
{
    struct fo_budget *b = arg;
    for (int i = 0; i < 100000; i++) {
        fo_budget_charge(b, 7);
        fo_budget_release(b, 7);
    }
    return NULL;
}

/* Workers charge while the front releases: the count ends where it began. */
static void test_threads_balance(void **state)
{
    (void)state;
    struct fo_budget *b;
    assert_int_equal(fo_budget_create(&b, 1000), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, charge_and_release, b), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(fo_budget_used(b), 0);
    fo_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_at_the_limit),
        cmocka_unit_test(test_null_is_a_no_op),
        cmocka_unit_test(test_threads_balance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
