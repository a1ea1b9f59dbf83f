/* test_retry.c -- unit tests for the retry policy and budget (retry.h), the hedge token
 * budget and latency window (hedge.h) and host URLs (hosts.h). */
#include "retry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hedge.h"
#include "hosts.h"

static void test_wanted(void **state)
{
    (void)state;
    struct fo_retry_conf c = {
        .on = true, .attempts = 2, .on_mask = FO_RETRY_CONNECT | FO_RETRY_503, .backoff_ms = 25};
    assert_int_equal(fo_retry_wanted(&c, FO_ERR_CONNECT, 0, false), FO_RETRY_R_CONNECT);
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 503, false), FO_RETRY_R_STATUS);
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 502, false), -1);
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 200, false), -1);
    assert_int_equal(fo_retry_wanted(&c, FO_ERR_TIMEOUT, 0, true), -1);
    c.on_mask = FO_RETRY_TIMEOUT | FO_RETRY_5XX | FO_RETRY_429;
    assert_int_equal(fo_retry_wanted(&c, FO_ERR_TIMEOUT, 0, true), FO_RETRY_R_TIMEOUT);
    assert_int_equal(fo_retry_wanted(&c, FO_ERR_TIMEOUT, 0, false), -1); /* Not its own. */
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 599, false), FO_RETRY_R_STATUS);
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 429, false), FO_RETRY_R_STATUS);
    assert_int_equal(fo_retry_wanted(&c, FO_OK, 404, false), -1);
    assert_int_equal(fo_retry_wanted(&c, FO_ERR_CONNECT, 0, false), -1);
}

/* Full jitter in [0, (2^n - 1) B), capped at 10 B and at half the time left. */
static void test_backoff(void **state)
{
    (void)state;
    struct fo_retry_conf c = {.backoff_ms = 10};
    int64_t max[5] = {0};
    for (uint64_t r = 0; r < 100000; r += 7) {
        for (unsigned n = 1; n <= 4; n++) {
            int64_t w = fo_retry_backoff_us(&c, n, r * 2654435761u, INT64_MAX / 4);
            assert_true(w >= 0);
            if (w > max[n])
                max[n] = w;
        }
    }
    assert_true(max[1] < 10000 && max[1] > 9000);
    assert_true(max[2] < 30000 && max[2] > 29000);
    assert_true(max[3] < 70000 && max[3] > 69000);
    assert_true(max[4] < 100000 && max[4] > 99000);
    assert_true(fo_retry_backoff_us(&c, 4, 99999, 1000) <= 500);
}

/* max(min, percent x calls in flight). */
static void test_budget(void **state)
{
    (void)state;
    struct fo_retry_budget b;
    fo_retry_budget_init(&b);
    atomic_store(&b.calls, 100);
    int granted = 0;
    for (int i = 0; i < 50; i++)
        granted += fo_retry_budget_take(&b);
    assert_int_equal(granted, 20);
    assert_int_equal(atomic_load(&b.refused), 30);
    for (int i = 0; i < 20; i++)
        fo_retry_budget_put(&b);
    atomic_store(&b.calls, 2);
    granted = 0;
    for (int i = 0; i < 10; i++)
        granted += fo_retry_budget_take(&b);
    assert_int_equal(granted, 3);
}

/* Starts at 10 tokens, never more; each primary pays percent/100 of one. */
static void test_hedge_budget(void **state)
{
    (void)state;
    struct fo_hedge_budget b;
    fo_hedge_budget_init(&b);
    for (int i = 0; i < 1000; i++)
        fo_hedge_budget_deposit(&b, 5);
    int n = 0;
    while (fo_hedge_budget_take(&b))
        n++;
    assert_int_equal(n, 10);
    for (int i = 0; i < 100; i++)
        fo_hedge_budget_deposit(&b, 5);
    n = 0;
    while (fo_hedge_budget_take(&b))
        n++;
    assert_int_equal(n, 5);
}

/* Quantiles within a bucket's width; nothing below 100 samples; old slices forgotten. */
static void test_latency_window(void **state)
{
    (void)state;
    for (int64_t us = 0; us < 10000000; us = us * 2 + 1) {
        unsigned b = fo_lat_bucket(us);
        assert_true(fo_lat_bucket_top(b) >= us);
        assert_true(fo_lat_bucket_top(b) <= us + us / 8 + 1);
    }
    struct fo_latwin *w = calloc(1, sizeof *w);
    fo_latwin_init(w);
    for (int i = 0; i < 99; i++)
        fo_latwin_add(w, 1000, 0);
    assert_int_equal(fo_latwin_quantile(w, 95, 0), -1);
    for (int i = 0; i < 901; i++)
        fo_latwin_add(w, i < 800 ? 1000 : 200000, 1);
    int64_t p95 = fo_latwin_quantile(w, 95, 100000); /* Past the 50 ms cache. */
    assert_true(p95 >= 200000 && p95 <= 230000);
    int64_t p50 = fo_latwin_quantile(w, 50, 200000);
    assert_true(p50 >= 1000 && p50 <= 1130);
    assert_int_equal(fo_latwin_quantile(w, 50, 31000000), -1); /* All older than 30 s. */
    fo_latwin_destroy(w);
    free(w);
}

static bool all_ok(void *arg, size_t i)
{
    (void)arg;
    (void)i;
    return true;
}

static bool not_zero(void *arg, size_t i)
{
    (void)arg;
    return i != 0;
}

static void test_hosts(void **state)
{
    (void)state;
    char *u = fo_hosts_url("https://b:8443", "http://a:1/x/y?q=1");
    assert_string_equal(u, "https://b:8443/x/y?q=1");
    free(u);
    u = fo_hosts_url("http://b", "http://a:1?q");
    assert_string_equal(u, "http://b/?q");
    free(u);
    atomic_uint rr = 0;
    int seq[6];
    for (int i = 0; i < 6; i++)
        seq[i] = fo_hosts_pick(&rr, 3, all_ok, NULL);
    assert_int_equal(seq[0], 0);
    assert_int_equal(seq[1], 1);
    assert_int_equal(seq[2], 2);
    assert_int_equal(seq[3], 0);
    /* A refused host is skipped, and the one after it does not get its share too. */
    atomic_store(&rr, 0);
    int count[3] = {0};
    for (int i = 0; i < 100; i++)
        count[fo_hosts_pick(&rr, 3, not_zero, NULL)]++;
    assert_int_equal(count[0], 0);
    assert_true(count[1] >= 45 && count[2] >= 45);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted),         cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_budget),         cmocka_unit_test(test_hedge_budget),
        cmocka_unit_test(test_latency_window), cmocka_unit_test(test_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
