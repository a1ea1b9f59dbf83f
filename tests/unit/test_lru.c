/* test_lru.c -- unit tests for the bounded LRU map (lru.h) and the stale cache on it
 * (stale.h). */
#include "lru.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stale.h"

struct item {
    struct fo_lru_node node;
    char key[16];
};

static int evicted;

static void evict(struct fo_lru_node *n)
{
    evicted++;
    free(n);
}

static struct item *item(const char *k, size_t bytes)
{
    struct item *it = calloc(1, sizeof *it);
    snprintf(it->key, sizeof it->key, "%s", k);
    it->node.key = it->key;
    it->node.klen = strlen(it->key);
    it->node.bytes = bytes;
    return it;
}

/* The least recently used goes first; a get makes a node the most recent. */
static void test_order_and_caps(void **state)
{
    (void)state;
    struct fo_lru l;
    evicted = 0;
    fo_lru_init(&l, 3, 100, evict);
    assert_int_equal(fo_lru_put(&l, &item("a", 10)->node), 0);
    assert_int_equal(fo_lru_put(&l, &item("b", 10)->node), 0);
    assert_int_equal(fo_lru_put(&l, &item("c", 10)->node), 0);
    assert_non_null(fo_lru_get(&l, "a", 1));
    assert_int_equal(fo_lru_put(&l, &item("d", 10)->node), 0);
    assert_null(fo_lru_get(&l, "b", 1));
    assert_non_null(fo_lru_get(&l, "a", 1));
    assert_int_equal(l.n, 3);
    assert_int_equal(evicted, 1);
    /* Bytes: a node of 90 pushes out two of 10. */
    assert_int_equal(fo_lru_put(&l, &item("e", 90)->node), 0);
    assert_int_equal(l.bytes, 100);
    assert_int_equal(l.n, 2);
    /* A node over the cap alone is refused. */
    assert_int_equal(fo_lru_put(&l, &item("f", 101)->node), -E2BIG);
    assert_null(fo_lru_get(&l, "f", 1));
    fo_lru_clear(&l);
}

/* Many keys through a small map: it grows its slots, never its entries. */
static void test_many(void **state)
{
    (void)state;
    struct fo_lru l;
    fo_lru_init(&l, 1000, 0, evict);
    char k[16];
    for (int i = 0; i < 50000; i++) {
        snprintf(k, sizeof k, "%d", i);
        struct item *it = item(k, 1);
        assert_int_equal(fo_lru_put(&l, &it->node), 0);
    }
    assert_int_equal(l.n, 1000);
    assert_true(l.nslots <= 1024);
    assert_non_null(fo_lru_get(&l, "49999", 5));
    assert_null(fo_lru_get(&l, "48999", 5));
    fo_lru_clear(&l);
}

/* Stale: a value at most max_age old is served (a copy), an older one dropped. */
static void test_stale(void **state)
{
    (void)state;
    struct fo_stale *s = fo_stale_create(2, 1000);
    fo_stale_put(s, "http://a/1", "{\"v\":1}", 7, 0);
    size_t len = 0;
    int64_t age = 0;
    char *v = fo_stale_get(s, "http://a/1", 100, 50, &len, &age);
    assert_non_null(v);
    assert_int_equal(len, 7);
    assert_int_equal(age, 50);
    assert_memory_equal(v, "{\"v\":1}", 7);
    free(v);
    assert_null(fo_stale_get(s, "http://a/1", 100, 101, &len, &age));
    size_t n, bytes;
    fo_stale_usage(s, &n, &bytes);
    assert_int_equal(n, 0);
    fo_stale_put(s, "u1", "1", 1, 0);
    fo_stale_put(s, "u2", "2", 1, 0);
    fo_stale_put(s, "u3", "3", 1, 0);
    fo_stale_put(s, "u3", "4", 1, 0); /* Replaces. */
    fo_stale_usage(s, &n, &bytes);
    assert_int_equal(n, 2);
    v = fo_stale_get(s, "u3", 10, 0, &len, &age);
    assert_non_null(v);
    assert_int_equal(v[0], '4');
    free(v);
    assert_null(fo_stale_get(s, "u1", 10, 0, &len, &age));
    fo_stale_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_caps),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
