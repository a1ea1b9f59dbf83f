/* test_ctx.c -- unit tests for request contexts (ctx.h). */
#include "ctx.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

static struct fo_ctx *ctx_new(struct fo_ctx *parent, int64_t deadline_ms)
{
    struct fo_ctx *c = NULL;
    assert_int_equal(fo_ctx_create(&c, parent, deadline_ms), 0);
    assert_non_null(c);
    return c;
}

/* Sleep until the monotonic clock reaches 'ms': here waiting for time to
 * pass is the thing under test, not a stand-in for synchronisation. */
static void sleep_until_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* fo_ctx_err(c) checked against the clock read around the call, so a
 * descheduled test cannot fail by accident: live while the deadline is
 * surely ahead, -ETIMEDOUT once it has surely passed. Returns the error. */
static int err_vs_clock(const struct fo_ctx *c, int64_t deadline_ms)
{
    int64_t before = fo_clock_ms();
    int err = fo_ctx_err(c);
    int64_t after = fo_clock_ms();

    if (after < deadline_ms)
        assert_int_equal(err, 0);
    if (before >= deadline_ms)
        assert_int_equal(err, -ETIMEDOUT);
    assert_true(err == 0 || err == -ETIMEDOUT);
    return err;
}

static void test_root_without_deadline(void **state)
{
    struct fo_ctx *c = ctx_new(NULL, FO_NO_DEADLINE);

    assert_int_equal(fo_ctx_err(c), 0);
    assert_true(fo_ctx_deadline(c) == FO_NO_DEADLINE);
    assert_true(fo_ctx_remaining_ms(c, fo_clock_ms()) == INT64_MAX);
    assert_true(fo_ctx_remaining_ms(c, INT64_MAX - 1) == INT64_MAX);
    fo_ctx_destroy(c);
    fo_ctx_destroy(NULL); /* A no-op. */
}

static void test_remaining_ms(void **state)
{
    struct fo_ctx *c = ctx_new(NULL, 1000);

    assert_true(fo_ctx_deadline(c) == 1000);
    assert_true(fo_ctx_remaining_ms(c, 0) == 1000);
    assert_true(fo_ctx_remaining_ms(c, 400) == 600);
    assert_true(fo_ctx_remaining_ms(c, 999) == 1);
    assert_true(fo_ctx_remaining_ms(c, 1000) == 0);
    assert_true(fo_ctx_remaining_ms(c, 5000) == 0);
    fo_ctx_destroy(c);

    /* A far deadline measured from a negative time must not overflow. */
    c = ctx_new(NULL, INT64_MAX - 1);
    assert_true(fo_ctx_remaining_ms(c, -10) > 0);
    assert_true(fo_ctx_remaining_ms(c, 0) == INT64_MAX - 1);
    fo_ctx_destroy(c);
}

static void test_deadline_expires(void **state)
{
    int64_t t0 = fo_clock_ms();
    struct fo_ctx *c = ctx_new(NULL, t0 + 100);
    struct fo_ctx *past = ctx_new(NULL, t0 - 1);
    struct fo_ctx *zero = ctx_new(NULL, 0);

    err_vs_clock(c, t0 + 100);
    assert_true(fo_ctx_remaining_ms(c, t0) == 100);
    assert_int_equal(fo_ctx_err(past), -ETIMEDOUT);
    assert_int_equal(fo_ctx_err(zero), -ETIMEDOUT);

    /* Before the deadline it is live, from the deadline on it is done. */
    sleep_until_ms(t0 + 50);
    err_vs_clock(c, t0 + 100);
    sleep_until_ms(t0 + 100);
    assert_int_equal(fo_ctx_err(c), -ETIMEDOUT);
    assert_true(fo_ctx_remaining_ms(c, fo_clock_ms()) == 0);

    fo_ctx_destroy(zero);
    fo_ctx_destroy(past);
    fo_ctx_destroy(c);
}

static void test_cancel_reasons(void **state)
{
    struct fo_ctx *a = ctx_new(NULL, FO_NO_DEADLINE);
    struct fo_ctx *b = ctx_new(NULL, FO_NO_DEADLINE);

    fo_ctx_cancel(a, -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(a), -ESHUTDOWN);
    fo_ctx_cancel(a, -ECANCELED); /* The first reason sticks. */
    fo_ctx_cancel(a, 0);
    assert_int_equal(fo_ctx_err(a), -ESHUTDOWN);

    fo_ctx_cancel(b, 0); /* 0 means -ECANCELED. */
    assert_int_equal(fo_ctx_err(b), -ECANCELED);
    fo_ctx_cancel(b, -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(b), -ECANCELED);

    fo_ctx_destroy(b);
    fo_ctx_destroy(a);
}

static void test_cancel_wins_over_deadline(void **state)
{
    struct fo_ctx *c = ctx_new(NULL, 0); /* Already past. */
    assert_int_equal(fo_ctx_err(c), -ETIMEDOUT);
    fo_ctx_cancel(c, -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(c), -ESHUTDOWN);

    /* A cancelled parent also wins over the child's own passed deadline. */
    struct fo_ctx *parent = ctx_new(NULL, FO_NO_DEADLINE);
    struct fo_ctx *child = ctx_new(parent, 0);
    assert_int_equal(fo_ctx_err(child), -ETIMEDOUT);
    fo_ctx_cancel(parent, -ECONNRESET);
    assert_int_equal(fo_ctx_err(child), -ECONNRESET);

    fo_ctx_destroy(child);
    fo_ctx_destroy(parent);
    fo_ctx_destroy(c);
}

static void test_parent_cancel_reaches_descendants(void **state)
{
    struct fo_ctx *root = ctx_new(NULL, FO_NO_DEADLINE);
    struct fo_ctx *a = ctx_new(root, FO_NO_DEADLINE);
    struct fo_ctx *b = ctx_new(root, FO_NO_DEADLINE);
    struct fo_ctx *a1 = ctx_new(a, FO_NO_DEADLINE);

    /* A child's cancel stays below it. */
    fo_ctx_cancel(a, -ECANCELED);
    assert_int_equal(fo_ctx_err(a), -ECANCELED);
    assert_int_equal(fo_ctx_err(a1), -ECANCELED);
    assert_int_equal(fo_ctx_err(root), 0);
    assert_int_equal(fo_ctx_err(b), 0);

    /* The root's cancel reaches everyone; the nearest reason is reported. */
    fo_ctx_cancel(root, -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(root), -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(b), -ESHUTDOWN);
    assert_int_equal(fo_ctx_err(a), -ECANCELED);
    assert_int_equal(fo_ctx_err(a1), -ECANCELED);

    /* A child made under a cancelled parent is born done. */
    struct fo_ctx *late = ctx_new(b, FO_NO_DEADLINE);
    assert_int_equal(fo_ctx_err(late), -ESHUTDOWN);

    fo_ctx_destroy(late);
    fo_ctx_destroy(a1);
    fo_ctx_destroy(b);
    fo_ctx_destroy(a);
    fo_ctx_destroy(root);
}

static void test_child_deadline_is_the_earlier(void **state)
{
    struct fo_ctx *p = ctx_new(NULL, 1000);
    struct fo_ctx *earlier = ctx_new(p, 500);
    struct fo_ctx *later = ctx_new(p, 2000);
    struct fo_ctx *none = ctx_new(p, FO_NO_DEADLINE);
    struct fo_ctx *grand = ctx_new(later, 3000); /* Capped two levels up. */
    struct fo_ctx *free_root = ctx_new(NULL, FO_NO_DEADLINE);
    struct fo_ctx *own = ctx_new(free_root, 700);

    assert_true(fo_ctx_deadline(earlier) == 500);
    assert_true(fo_ctx_deadline(later) == 1000);
    assert_true(fo_ctx_deadline(none) == 1000);
    assert_true(fo_ctx_deadline(grand) == 1000);
    assert_true(fo_ctx_deadline(own) == 700);
    assert_true(fo_ctx_remaining_ms(later, 900) == 100);
    assert_true(fo_ctx_remaining_ms(earlier, 900) == 0);

    fo_ctx_destroy(own);
    fo_ctx_destroy(free_root);
    fo_ctx_destroy(grand);
    fo_ctx_destroy(none);
    fo_ctx_destroy(later);
    fo_ctx_destroy(earlier);
    fo_ctx_destroy(p);
}

static void test_deadlines_expire_through_the_chain(void **state)
{
    int64_t t0 = fo_clock_ms();
    struct fo_ctx *p = ctx_new(NULL, t0 + 200);
    struct fo_ctx *early = ctx_new(p, t0 + 100);  /* Own deadline first. */
    struct fo_ctx *late = ctx_new(p, t0 + 10000); /* Parent's deadline first. */
    struct fo_ctx *none = ctx_new(p, FO_NO_DEADLINE);

    err_vs_clock(early, t0 + 100);
    err_vs_clock(late, t0 + 200);

    sleep_until_ms(t0 + 100);
    assert_int_equal(fo_ctx_err(early), -ETIMEDOUT);
    err_vs_clock(p, t0 + 200); /* The child's deadline does not go up. */
    err_vs_clock(late, t0 + 200);
    err_vs_clock(none, t0 + 200);

    sleep_until_ms(t0 + 200);
    assert_int_equal(fo_ctx_err(p), -ETIMEDOUT);
    assert_int_equal(fo_ctx_err(late), -ETIMEDOUT);
    assert_int_equal(fo_ctx_err(none), -ETIMEDOUT);

    fo_ctx_destroy(none);
    fo_ctx_destroy(late);
    fo_ctx_destroy(early);
    fo_ctx_destroy(p);
}

/* ---- concurrency ------------------------------------------------------- */

enum { NTHREADS = 16, NWATCHERS = 2, ROUNDS = 200 };

struct racer {
    struct fo_ctx *target;    /* Cancelled by every racer at once. */
    struct fo_ctx *child;     /* Read by every racer after its cancel. */
    pthread_barrier_t *start; /* Lines the racers up. */
    int reason;               /* This racer's reason. */
    int seen_target;          /* Out: fo_ctx_err(target) after its own cancel. */
    int seen_child;           /* Out: fo_ctx_err(child) after its own cancel. */
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;

    pthread_barrier_wait(r->start);
    fo_ctx_cancel(r->target, r->reason);
    r->seen_target = fo_ctx_err(r->target);
    r->seen_child = fo_ctx_err(r->child);
    return NULL;
}

struct watcher {
    struct fo_ctx *child; /* Polled until done. */
    int first;            /* Out: the first non-zero fo_ctx_err(child). */
    int changed;          /* Out: 1 if a later read differed from 'first'. */
};

static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    int err;

    for (;;) {
        err = fo_ctx_err(w->child);
        if (err != 0)
            break;
        sched_yield();
    }
    w->first = err;
    for (int i = 0; i < 100; i++) {
        if (fo_ctx_err(w->child) != err)
            w->changed = 1;
    }
    return NULL;
}

/* Many threads cancel one context at once: one reason wins, and every
 * thread, having cancelled, already sees that winner (never 0, never its own
 * reason when it lost). Watchers polling a child see only that reason, and it
 * never changes once seen. */
static void test_concurrent_cancel_one_winner(void **state)
{
    pthread_t threads[NTHREADS], wthreads[NWATCHERS];
    struct racer racers[NTHREADS];
    struct watcher watchers[NWATCHERS];
    pthread_barrier_t start;
    int wins[NTHREADS] = {0};

    for (int round = 0; round < ROUNDS; round++) {
        struct fo_ctx *target = ctx_new(NULL, FO_NO_DEADLINE);
        struct fo_ctx *child = ctx_new(target, FO_NO_DEADLINE);
        assert_int_equal(pthread_barrier_init(&start, NULL, NTHREADS), 0);
        for (int i = 0; i < NWATCHERS; i++) {
            watchers[i] = (struct watcher){.child = child};
            assert_int_equal(pthread_create(&wthreads[i], NULL, watcher_main, &watchers[i]), 0);
        }
        for (int i = 0; i < NTHREADS; i++) {
            racers[i] = (struct racer){
                .target = target, .child = child, .start = &start, .reason = -(1000 + i)};
            assert_int_equal(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
        }
        for (int i = 0; i < NTHREADS; i++)
            assert_int_equal(pthread_join(threads[i], NULL), 0);
        for (int i = 0; i < NWATCHERS; i++)
            assert_int_equal(pthread_join(wthreads[i], NULL), 0);

        int winner = fo_ctx_err(target);
        assert_in_range(-winner, 1000, 1000 + NTHREADS - 1);
        wins[-winner - 1000]++;
        assert_int_equal(fo_ctx_err(child), winner);
        for (int i = 0; i < NWATCHERS; i++) {
            assert_int_equal(watchers[i].first, winner);
            assert_false(watchers[i].changed);
        }
        for (int i = 0; i < NTHREADS; i++) {
            assert_int_equal(racers[i].seen_target, winner);
            assert_int_equal(racers[i].seen_child, winner);
        }
        pthread_barrier_destroy(&start);
        fo_ctx_destroy(child);
        fo_ctx_destroy(target);
    }
    int total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += wins[i];
    assert_int_equal(total, ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_without_deadline),
        cmocka_unit_test(test_remaining_ms),
        cmocka_unit_test(test_deadline_expires),
        cmocka_unit_test(test_cancel_reasons),
        cmocka_unit_test(test_cancel_wins_over_deadline),
        cmocka_unit_test(test_parent_cancel_reaches_descendants),
        cmocka_unit_test(test_child_deadline_is_the_earlier),
        cmocka_unit_test(test_deadlines_expire_through_the_chain),
        cmocka_unit_test(test_concurrent_cancel_one_winner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
