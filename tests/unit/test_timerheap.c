/* test_timerheap.c -- unit tests for the deadline heap (timerheap.h). */
#include "timerheap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define N 500

/* Random pushes and removals; what is left comes out in deadline order. */
static void test_order_after_pushes_and_removals(void **state)
{
    (void)state;
    static struct fo_timer t[N];
    struct fo_timerheap h = {0};
    srand(7);
    for (int i = 0; i < N; i++) {
        t[i].due = rand() % 1000;
        t[i].index = FO_TIMER_NONE;
        fo_timerheap_push(&h, &t[i]);
    }
    for (int i = 0; i < N; i += 3)
        fo_timerheap_remove(&h, &t[i]);
    fo_timerheap_remove(&h, &t[0]); /* Twice: a no-op. */
    assert_int_equal(t[0].index, FO_TIMER_NONE);
    int64_t last = -1;
    size_t left = 0;
    for (struct fo_timer *top = fo_timerheap_top(&h); top; top = fo_timerheap_top(&h)) {
        assert_true(top->due >= last);
        assert_ptr_equal(h.v[top->index], top);
        last = top->due;
        fo_timerheap_remove(&h, top);
        left++;
    }
    assert_int_equal(left, N - (N + 2) / 3);
    fo_timerheap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_after_pushes_and_removals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
