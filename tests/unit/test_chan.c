/* test_chan.c -- unit tests for the bounded MPMC channel (chan.h).
 *
 * Threads that must be blocked inside the channel before the test acts are
 * observed, not guessed: each helper thread reports its kernel thread id,
 * and the test waits until /proc shows that thread sleeping. */
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"

#define ITEM(n) ((void *)(uintptr_t)(n))

/* Generous bounds: the tests also run under sanitizers on a loaded machine. */
#define WAKE_LIMIT_US    (5 * 1000 * 1000) /* A woken waiter returns well before this. */
#define LONG_DEADLINE_MS 10000             /* Deadline for waits that should be cut short. */

/* ---- helpers: a thread doing one send or receive --------------------- */

struct op {
    struct fo_chan *ch;    /* Borrowed: the channel under test. */
    struct fo_chan *ready; /* Borrowed: receives the thread's tid before it acts. */
    int is_send;           /* 1: send 'item'; 0: receive into 'item'. */
    void *item;            /* In for a send, out for a receive. */
    int64_t deadline_ms;   /* Absolute, or FO_NO_DEADLINE. */
    int rc;                /* Out: what the call returned. */
    int64_t took_us;       /* Out: how long the call took. */
    pthread_t thread;      /* The thread running it. */
};

static void *op_main(void *arg)
{
    struct op *op = arg;
    pid_t tid = gettid();

    if (fo_chan_send(op->ready, ITEM(tid), FO_NO_DEADLINE) != 0)
        abort();
    int64_t t0 = fo_clock_us();
    if (op->is_send)
        op->rc = fo_chan_send(op->ch, op->item, op->deadline_ms);
    else
        op->rc = fo_chan_recv(op->ch, &op->item, op->deadline_ms);
    op->took_us = fo_clock_us() - t0;
    return NULL;
}

/* Start 'op' on its own thread and return once that thread is blocked in
 * the channel: the channel's own count of blocked threads says so (not the
 * thread's state, which any sleep would show). */
static void op_start_blocked(struct op *op, struct fo_chan *ready)
{
    void *tid;
    size_t before = fo_chan_waiters(op->ch);

    op->ready = ready;
    assert_int_equal(pthread_create(&op->thread, NULL, op_main, op), 0);
    assert_int_equal(fo_chan_recv(ready, &tid, fo_clock_ms() + LONG_DEADLINE_MS), 0);
    int64_t give_up = fo_clock_ms() + LONG_DEADLINE_MS;
    while (fo_chan_waiters(op->ch) <= before) {
        assert_true(fo_clock_ms() < give_up);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static void op_join(struct op *op)
{
    assert_int_equal(pthread_join(op->thread, NULL), 0);
}

static struct fo_chan *chan_new(size_t cap)
{
    struct fo_chan *ch = NULL;
    assert_int_equal(fo_chan_create(&ch, cap), 0);
    assert_non_null(ch);
    return ch;
}

/* ---- single-threaded behaviour --------------------------------------- */

static void test_create_rejects_zero_cap(void **state)
{
    struct fo_chan *ch = ITEM(1);
    assert_int_equal(fo_chan_create(&ch, 0), -EINVAL);
    assert_null(ch);
    fo_chan_destroy(NULL, NULL); /* A no-op. */
}

static void test_fifo_and_capacity(void **state)
{
    struct fo_chan *ch = chan_new(4);
    void *p;

    for (uintptr_t i = 1; i <= 4; i++) {
        assert_int_equal(fo_chan_send(ch, ITEM(i), 0), 0);
        assert_int_equal(fo_chan_len(ch), i);
    }
    /* Full: a past deadline is a non-blocking try. */
    assert_int_equal(fo_chan_send(ch, ITEM(5), 0), -EAGAIN);
    assert_int_equal(fo_chan_send(ch, ITEM(5), fo_clock_ms() - 1), -EAGAIN);
    assert_int_equal(fo_chan_send(ch, ITEM(5), fo_clock_ms()), -EAGAIN);
    assert_int_equal(fo_chan_len(ch), 4);

    for (uintptr_t i = 1; i <= 4; i++) {
        assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
        assert_ptr_equal(p, ITEM(i));
    }
    p = ITEM(99);
    assert_int_equal(fo_chan_recv(ch, &p, 0), -EAGAIN);
    assert_ptr_equal(p, ITEM(99)); /* Untouched on error. */
    assert_int_equal(fo_chan_len(ch), 0);
    fo_chan_destroy(ch, NULL);
}

/* Random sends and receives against a model queue, so the ring wraps many
 * times at every fill level. */
static void test_ring_wraps(void **state)
{
    enum { CAP = 5, OPS = 20000 };
    struct fo_chan *ch = chan_new(CAP);
    uintptr_t model[CAP];
    size_t head = 0, len = 0;
    uintptr_t next = 1;
    uint32_t rnd = 12345;

    for (int i = 0; i < OPS; i++) {
        rnd = rnd * 1103515245u + 12345u;
        void *p = NULL;
        if ((rnd >> 16) & 1) {
            int rc = fo_chan_send(ch, ITEM(next), 0);
            if (len == CAP) {
                assert_int_equal(rc, -EAGAIN);
            } else {
                assert_int_equal(rc, 0);
                model[(head + len++) % CAP] = next++;
            }
        } else {
            int rc = fo_chan_recv(ch, &p, 0);
            if (len == 0) {
                assert_int_equal(rc, -EAGAIN);
            } else {
                assert_int_equal(rc, 0);
                assert_ptr_equal(p, ITEM(model[head]));
                head = (head + 1) % CAP;
                len--;
            }
        }
        assert_int_equal(fo_chan_len(ch), len);
    }
    assert_true(next > OPS / 4); /* The pattern really did move items. */
    fo_chan_destroy(ch, NULL);
}

static void test_recv_times_out(void **state)
{
    struct fo_chan *ch = chan_new(2);
    void *p = ITEM(7);

    int64_t t0 = fo_clock_us();
    int rc = fo_chan_recv(ch, &p, fo_clock_ms() + 100);
    int64_t took = fo_clock_us() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_ptr_equal(p, ITEM(7));
    /* The deadline is in whole ms, so up to 1 ms may be lost to rounding. */
    assert_in_range(took, 99 * 1000, WAKE_LIMIT_US);
    fo_chan_destroy(ch, NULL);
}

static void test_send_times_out(void **state)
{
    struct fo_chan *ch = chan_new(2);
    void *p;

    assert_int_equal(fo_chan_send(ch, ITEM(1), 0), 0);
    assert_int_equal(fo_chan_send(ch, ITEM(2), 0), 0);
    int64_t t0 = fo_clock_us();
    int rc = fo_chan_send(ch, ITEM(3), fo_clock_ms() + 150);
    int64_t took = fo_clock_us() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_in_range(took, 149 * 1000, WAKE_LIMIT_US);

    /* The refused item did not get in; the others are intact. */
    assert_int_equal(fo_chan_len(ch), 2);
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_ptr_equal(p, ITEM(1));
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_ptr_equal(p, ITEM(2));
    assert_int_equal(fo_chan_recv(ch, &p, 0), -EAGAIN);
    fo_chan_destroy(ch, NULL);
}

static void test_close_then_drain(void **state)
{
    struct fo_chan *ch = chan_new(4);
    void *p;

    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(fo_chan_send(ch, ITEM(i), 0), 0);
    fo_chan_close(ch);
    fo_chan_close(ch); /* Idempotent. */

    /* Sends fail even with room; the caller keeps the item. */
    assert_int_equal(fo_chan_send(ch, ITEM(4), 0), -EPIPE);
    assert_int_equal(fo_chan_send(ch, ITEM(4), FO_NO_DEADLINE), -EPIPE);
    assert_int_equal(fo_chan_len(ch), 3);

    for (uintptr_t i = 1; i <= 3; i++) {
        assert_int_equal(fo_chan_recv(ch, &p, FO_NO_DEADLINE), 0);
        assert_ptr_equal(p, ITEM(i));
    }
    /* Closed and empty: -EPIPE whatever the deadline, and at once. */
    assert_int_equal(fo_chan_recv(ch, &p, 0), -EPIPE);
    assert_int_equal(fo_chan_recv(ch, &p, fo_clock_ms() + 100), -EPIPE);
    int64_t t0 = fo_clock_us();
    assert_int_equal(fo_chan_recv(ch, &p, FO_NO_DEADLINE), -EPIPE);
    assert_true(fo_clock_us() - t0 < WAKE_LIMIT_US);
    fo_chan_destroy(ch, NULL);
}

static int dropped[8];
static size_t ndropped;

static void drop_item(void *item)
{
    if (ndropped < 8)
        dropped[ndropped] = (int)(uintptr_t)item;
    ndropped++;
}

static void test_destroy_drops_queued_items(void **state)
{
    struct fo_chan *ch = chan_new(4);
    void *p;

    /* Wrap the ring so the queued items straddle its end. */
    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(fo_chan_send(ch, ITEM(i), 0), 0);
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_int_equal(fo_chan_send(ch, ITEM(5), 0), 0);

    ndropped = 0;
    fo_chan_destroy(ch, drop_item);
    assert_int_equal(ndropped, 3);
    assert_int_equal(dropped[0], 3);
    assert_int_equal(dropped[1], 4);
    assert_int_equal(dropped[2], 5);

    /* Without a drop function the items are just forgotten. */
    ch = chan_new(2);
    assert_int_equal(fo_chan_send(ch, ITEM(1), 0), 0);
    fo_chan_destroy(ch, NULL);
}

/* ---- blocked threads --------------------------------------------------- */

static void test_blocked_recv_woken_by_send(void **state)
{
    struct fo_chan *ch = chan_new(1), *ready = chan_new(16);
    struct op op = {.ch = ch, .deadline_ms = fo_clock_ms() + LONG_DEADLINE_MS};

    op_start_blocked(&op, ready);
    assert_int_equal(fo_chan_send(ch, ITEM(42), 0), 0);
    op_join(&op);
    assert_int_equal(op.rc, 0);
    assert_ptr_equal(op.item, ITEM(42));
    assert_true(op.took_us < WAKE_LIMIT_US); /* Woken, not timed out. */
    assert_int_equal(fo_chan_len(ch), 0);
    fo_chan_destroy(ready, NULL);
    fo_chan_destroy(ch, NULL);
}

static void test_blocked_send_woken_by_recv(void **state)
{
    struct fo_chan *ch = chan_new(1), *ready = chan_new(16);
    struct op op = {
        .ch = ch, .is_send = 1, .item = ITEM(2), .deadline_ms = fo_clock_ms() + LONG_DEADLINE_MS};
    void *p;

    assert_int_equal(fo_chan_send(ch, ITEM(1), 0), 0);
    op_start_blocked(&op, ready);
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_ptr_equal(p, ITEM(1));
    op_join(&op);
    assert_int_equal(op.rc, 0);
    assert_true(op.took_us < WAKE_LIMIT_US);
    assert_int_equal(fo_chan_recv(ch, &p, 0), 0);
    assert_ptr_equal(p, ITEM(2));
    fo_chan_destroy(ready, NULL);
    fo_chan_destroy(ch, NULL);
}

/* Several receivers blocked on one channel: each item wakes one of them,
 * and each gets a different item. */
static void test_each_send_wakes_one_receiver(void **state)
{
    enum { N = 4 };
    struct fo_chan *ch = chan_new(N), *ready = chan_new(16);
    struct op ops[N];
    int got[N + 1] = {0};

    for (int i = 0; i < N; i++) {
        ops[i] = (struct op){.ch = ch, .deadline_ms = fo_clock_ms() + LONG_DEADLINE_MS};
        op_start_blocked(&ops[i], ready);
    }
    for (uintptr_t i = 1; i <= N; i++)
        assert_int_equal(fo_chan_send(ch, ITEM(i), 0), 0);
    for (int i = 0; i < N; i++) {
        op_join(&ops[i]);
        assert_int_equal(ops[i].rc, 0);
        uintptr_t v = (uintptr_t)ops[i].item;
        assert_in_range(v, 1, N);
        got[v]++;
    }
    for (int v = 1; v <= N; v++)
        assert_int_equal(got[v], 1);
    fo_chan_destroy(ready, NULL);
    fo_chan_destroy(ch, NULL);
}

static void test_close_wakes_blocked_receivers(void **state)
{
    enum { N = 4 };
    struct fo_chan *ch = chan_new(2), *ready = chan_new(16);
    struct op ops[N];

    for (int i = 0; i < N; i++) {
        /* Half wait for ever, half with a deadline: both kinds must wake. */
        int64_t d = i % 2 ? FO_NO_DEADLINE : fo_clock_ms() + LONG_DEADLINE_MS;
        ops[i] = (struct op){.ch = ch, .item = ITEM(99), .deadline_ms = d};
        op_start_blocked(&ops[i], ready);
    }
    fo_chan_close(ch);
    for (int i = 0; i < N; i++) {
        op_join(&ops[i]);
        assert_int_equal(ops[i].rc, -EPIPE);
        assert_ptr_equal(ops[i].item, ITEM(99));
        assert_true(ops[i].took_us < WAKE_LIMIT_US);
    }
    fo_chan_destroy(ready, NULL);
    fo_chan_destroy(ch, NULL);
}

static void test_close_wakes_blocked_senders(void **state)
{
    enum { N = 3 };
    struct fo_chan *ch = chan_new(2), *ready = chan_new(16);
    struct op ops[N];
    void *p;

    assert_int_equal(fo_chan_send(ch, ITEM(1), 0), 0);
    assert_int_equal(fo_chan_send(ch, ITEM(2), 0), 0);
    for (int i = 0; i < N; i++) {
        int64_t d = i % 2 ? FO_NO_DEADLINE : fo_clock_ms() + LONG_DEADLINE_MS;
        ops[i] = (struct op){.ch = ch, .is_send = 1, .item = ITEM(10 + i), .deadline_ms = d};
        op_start_blocked(&ops[i], ready);
    }
    fo_chan_close(ch);
    for (int i = 0; i < N; i++) {
        op_join(&ops[i]);
        assert_int_equal(ops[i].rc, -EPIPE);
        assert_true(ops[i].took_us < WAKE_LIMIT_US);
    }
    /* None of the refused items got in; what was queued is still delivered. */
    assert_int_equal(fo_chan_len(ch), 2);
    assert_int_equal(fo_chan_recv(ch, &p, FO_NO_DEADLINE), 0);
    assert_ptr_equal(p, ITEM(1));
    assert_int_equal(fo_chan_recv(ch, &p, FO_NO_DEADLINE), 0);
    assert_ptr_equal(p, ITEM(2));
    assert_int_equal(fo_chan_recv(ch, &p, FO_NO_DEADLINE), -EPIPE);
    fo_chan_destroy(ready, NULL);
    fo_chan_destroy(ch, NULL);
}

/* ---- stress ---------------------------------------------------------- */

struct item {
    uint32_t producer; /* Written by the producer before the send. */
    uint32_t seq;      /* Position in that producer's stream. */
    uint64_t payload;  /* Derived from both, checked by the consumer. */
    int received;      /* Plain int on purpose: a double delivery is a data race. */
};

struct stress {
    struct fo_chan *ch;    /* The channel under test. */
    struct item *items;    /* nprod * per_prod items, producer-major. */
    unsigned nprod;        /* Producer threads. */
    uint32_t per_prod;     /* Items each producer sends. */
    int timed;             /* 1: short deadlines with retries instead of blocking. */
    atomic_uint next_prod; /* Hands out producer numbers. */
};

struct consumer {
    struct stress *s;  /* Shared test state. */
    uint64_t count;    /* Items this consumer received. */
    uint64_t sum;      /* Sum of their payloads. */
    int64_t *last_seq; /* Per producer: last seq seen, for per-producer FIFO. */
    int order_ok;      /* 0 once a producer's items came out of order. */
    int end_rc;        /* What ended the loop; must be -EPIPE. */
    pthread_t thread;  /* Consumer thread. */
};

static uint64_t payload_of(uint32_t p, uint32_t seq)
{
    return ((uint64_t)p << 32 | seq) * 0x9e3779b97f4a7c15ull;
}

static void *producer_main(void *arg)
{
    struct stress *s = arg;
    uint32_t p = atomic_fetch_add(&s->next_prod, 1);

    for (uint32_t i = 0; i < s->per_prod; i++) {
        struct item *it = &s->items[(size_t)p * s->per_prod + i];
        it->producer = p;
        it->seq = i;
        it->payload = payload_of(p, i);
        int rc;
        if (s->timed) {
            do
                rc = fo_chan_send(s->ch, it, fo_clock_ms() + 1);
            while (rc == -ETIMEDOUT || rc == -EAGAIN);
        } else {
            rc = fo_chan_send(s->ch, it, FO_NO_DEADLINE);
        }
        if (rc != 0)
            abort(); /* Nobody closes before the producers are joined. */
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    struct stress *s = c->s;
    void *p;
    int rc;

    for (;;) {
        if (s->timed)
            rc = fo_chan_recv(s->ch, &p, fo_clock_ms() + 1);
        else
            rc = fo_chan_recv(s->ch, &p, FO_NO_DEADLINE);
        if (rc == -ETIMEDOUT || rc == -EAGAIN)
            continue;
        if (rc != 0)
            break;
        struct item *it = p;
        if (it->payload != payload_of(it->producer, it->seq) || it->producer >= s->nprod)
            c->order_ok = 0;
        else if ((int64_t)it->seq <= c->last_seq[it->producer])
            c->order_ok = 0;
        else
            c->last_seq[it->producer] = it->seq;
        it->received++;
        c->count++;
        c->sum += it->payload;
    }
    c->end_rc = rc;
    return NULL;
}

static void run_stress(unsigned nprod, unsigned ncons, uint32_t per_prod, size_t cap, int timed)
{
    size_t total = (size_t)nprod * per_prod;
    struct stress s = {.ch = chan_new(cap), .nprod = nprod, .per_prod = per_prod, .timed = timed};
    pthread_t prod[16];
    struct consumer cons[16];

    assert_true(nprod <= 16 && ncons <= 16);
    s.items = calloc(total, sizeof *s.items);
    assert_non_null(s.items);
    atomic_init(&s.next_prod, 0);

    for (unsigned i = 0; i < ncons; i++) {
        cons[i] = (struct consumer){.s = &s, .order_ok = 1};
        cons[i].last_seq = malloc(nprod * sizeof *cons[i].last_seq);
        assert_non_null(cons[i].last_seq);
        for (unsigned p = 0; p < nprod; p++)
            cons[i].last_seq[p] = -1;
        assert_int_equal(pthread_create(&cons[i].thread, NULL, consumer_main, &cons[i]), 0);
    }
    for (unsigned i = 0; i < nprod; i++)
        assert_int_equal(pthread_create(&prod[i], NULL, producer_main, &s), 0);
    for (unsigned i = 0; i < nprod; i++)
        assert_int_equal(pthread_join(prod[i], NULL), 0);
    fo_chan_close(s.ch);

    uint64_t count = 0, sum = 0, want_sum = 0;
    for (unsigned i = 0; i < ncons; i++) {
        assert_int_equal(pthread_join(cons[i].thread, NULL), 0);
        assert_int_equal(cons[i].end_rc, -EPIPE);
        assert_true(cons[i].order_ok);
        count += cons[i].count;
        sum += cons[i].sum;
        free(cons[i].last_seq);
    }
    for (size_t k = 0; k < total; k++) {
        if (s.items[k].received != 1)
            fail_msg("item %zu received %d times", k, s.items[k].received);
        want_sum += payload_of((uint32_t)(k / per_prod), (uint32_t)(k % per_prod));
    }
    assert_int_equal(count, total);
    assert_true(sum == want_sum);
    assert_int_equal(fo_chan_len(s.ch), 0);
    fo_chan_destroy(s.ch, NULL);
    free(s.items);
}

/* 4 producers x 4 consumers x 100k items through a small channel, blocking. */
static void test_stress_blocking(void **state)
{
    run_stress(4, 4, 100000, 16, 0);
}

/* The same with 1 ms deadlines and retries, through a tiny channel: waiters
 * time out all the time, racing the signals meant for them. */
static void test_stress_timed(void **state)
{
    run_stress(4, 4, 20000, 2, 1);
}

/* Unbalanced: many producers, one consumer, a channel of one. */
static void test_stress_single_slot(void **state)
{
    run_stress(8, 1, 10000, 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_zero_cap),
        cmocka_unit_test(test_fifo_and_capacity),
        cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_recv_times_out),
        cmocka_unit_test(test_send_times_out),
        cmocka_unit_test(test_close_then_drain),
        cmocka_unit_test(test_destroy_drops_queued_items),
        cmocka_unit_test(test_blocked_recv_woken_by_send),
        cmocka_unit_test(test_blocked_send_woken_by_recv),
        cmocka_unit_test(test_each_send_wakes_one_receiver),
        cmocka_unit_test(test_close_wakes_blocked_receivers),
        cmocka_unit_test(test_close_wakes_blocked_senders),
        cmocka_unit_test(test_stress_blocking),
        cmocka_unit_test(test_stress_timed),
        cmocka_unit_test(test_stress_single_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
