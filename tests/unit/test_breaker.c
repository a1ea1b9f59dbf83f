/* test_breaker.c -- unit tests for the circuit breaker state machine (breaker.h). */
#include "breaker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MS 1000

/* Opens on the F-th consecutive failure (>=, not >); an answer in between resets. */
static void test_opens_at_f(void **state)
{
    (void)state;
    struct fo_breaker b;
    fo_breaker_init(&b);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fo_breaker_allow(&b, 0), FO_BREAKER_PASS);
        fo_breaker_record(&b, 3, 1000, true, false, 0);
    }
    fo_breaker_record(&b, 3, 1000, false, false, 0); /* A success resets the count. */
    for (int i = 0; i < 2; i++)
        fo_breaker_record(&b, 3, 1000, true, false, 0);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_CLOSED);
    fo_breaker_record(&b, 3, 1000, true, false, 0);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_OPEN);
    assert_int_equal(fo_breaker_allow(&b, 999 * MS), FO_BREAKER_DENY);
    assert_int_equal(atomic_load(&b.to_open), 1);
    fo_breaker_destroy(&b);
}

/* After open_ms exactly one probe; its failure re-opens for open_ms, its success closes. */
static void test_one_probe(void **state)
{
    (void)state;
    struct fo_breaker b;
    fo_breaker_init(&b);
    fo_breaker_record(&b, 1, 1000, true, false, 0);
    assert_int_equal(fo_breaker_allow(&b, 1000 * MS), FO_BREAKER_PROBE);
    assert_int_equal(fo_breaker_allow(&b, 1000 * MS), FO_BREAKER_DENY);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_HALF_OPEN);
    /* A late result of an attempt from before the opening decides nothing. */
    fo_breaker_record(&b, 1, 1000, false, false, 1001 * MS);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_HALF_OPEN);
    fo_breaker_record(&b, 1, 1000, true, true, 1010 * MS);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_OPEN);
    assert_int_equal(fo_breaker_allow(&b, 2009 * MS), FO_BREAKER_DENY);
    assert_int_equal(fo_breaker_allow(&b, 2010 * MS), FO_BREAKER_PROBE);
    fo_breaker_record(&b, 1, 1000, false, true, 2020 * MS);
    assert_int_equal(fo_breaker_state(&b), FO_BREAKER_CLOSED);
    assert_int_equal(fo_breaker_allow(&b, 2020 * MS), FO_BREAKER_PASS);
    assert_int_equal(atomic_load(&b.to_open), 2);
    assert_int_equal(atomic_load(&b.to_half_open), 2);
    assert_int_equal(atomic_load(&b.to_closed), 1);
    fo_breaker_destroy(&b);
}

/* A probe that ends without a counted result (cancelled) lets the next attempt probe. */
static void test_released_probe(void **state)
{
    (void)state;
    struct fo_breaker b;
    fo_breaker_init(&b);
    fo_breaker_record(&b, 1, 10, true, false, 0);
    assert_int_equal(fo_breaker_allow(&b, 10 * MS), FO_BREAKER_PROBE);
    fo_breaker_release(&b, true, 11 * MS);
    assert_int_equal(fo_breaker_allow(&b, 11 * MS), FO_BREAKER_PROBE);
    fo_breaker_release(&b, false, 11 * MS); /* Not the probe: changes nothing. */
    assert_int_equal(fo_breaker_allow(&b, 11 * MS), FO_BREAKER_DENY);
    fo_breaker_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_at_f),
        cmocka_unit_test(test_one_probe),
        cmocka_unit_test(test_released_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
