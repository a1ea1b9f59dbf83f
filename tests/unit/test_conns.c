/* test_conns.c -- unit tests for the connection records (conns.h): the
 * front's half of cancellation, watching waiting requests for a reset. */
#include "conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "ctx.h"

/* A connected pair of stream sockets: [0] as the HTTP front holds it, [1] the client's. */
static void tcp_pair(int sv[2])
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    sv[1] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv[1] >= 0);
    assert_int_equal(connect(sv[1], (struct sockaddr *)&sa, sizeof sa), 0);
    sv[0] = accept(lfd, NULL, NULL);
    assert_true(sv[0] >= 0);
    close(lfd);
}

/* Close with a reset (SO_LINGER 0): the client is really gone. A plain
 * close() of a TCP socket only sends a FIN, which a half-close sends too. */
static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void unix_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static atomic_int gone; /* on_gone calls. */

static void on_gone(void *arg)
{
    (void)arg;
    atomic_fetch_add(&gone, 1);
}

/* Wait up to 'ms' for on_gone to have been called 'want' times. */
static bool wait_gone(int want, int ms)
{
    for (int i = 0; i < ms && atomic_load(&gone) < want; i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&gone) >= want;
}

struct setup {
    struct fo_conns *cs;
    struct fo_conn_rec *cr;
    struct fo_ctx *ctx;
    int sv[2];
};

static void setup(struct setup *t, void (*pair)(int sv[2]))
{
    atomic_store(&gone, 0);
    assert_int_equal(fo_conns_create(&t->cs, 10000, on_gone, NULL), 0);
    pair(t->sv);
    assert_true(fo_conns_admit(t->cs, 10));
    t->cr = fo_conns_open(t->cs, t->sv[0]);
    assert_non_null(t->cr);
    assert_int_equal(fo_ctx_create(&t->ctx, NULL, FO_NO_DEADLINE), 0);
}

static void teardown(struct setup *t)
{
    fo_conn_unwatch(t->cs, t->cr);
    fo_conns_close(t->cs, t->cr);
    assert_int_equal(fo_conns_count(t->cs), 0);
    fo_conns_destroy(t->cs);
    fo_ctx_destroy(t->ctx);
    close(t->sv[0]);
    if (t->sv[1] >= 0)
        close(t->sv[1]);
}

static void run_reset(void (*pair)(int sv[2]))
{
    struct setup t;
    setup(&t, pair);
    fo_conn_watch(t.cs, t.cr, t.ctx);
    reset_close(t.sv[1]);
    t.sv[1] = -1;
    assert_true(wait_gone(1, 2000));
    assert_int_equal(fo_ctx_err(t.ctx), -ECONNABORTED);
    teardown(&t);
}

/* A reset (or a peer gone on both sides) cancels the waiting request. */
static void test_reset_cancels_tcp(void **state)
{
    (void)state;
    run_reset(tcp_pair);
}

static void test_reset_cancels_unix(void **state)
{
    (void)state;
    run_reset(unix_pair);
}

/* A half-close is not a reset: a client may shut its sending side after the
 * request and read the answer. Pipelined data is no reset either. */
static void test_half_close_and_data_do_not_cancel(void **state)
{
    (void)state;
    struct setup t;
    setup(&t, tcp_pair);
    fo_conn_watch(t.cs, t.cr, t.ctx);
    static const char more[] = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(t.sv[1], more, sizeof more - 1), (ssize_t)sizeof more - 1);
    assert_int_equal(shutdown(t.sv[1], SHUT_WR), 0);
    assert_false(wait_gone(1, 300)); /* The bound of the look; a reset takes under 1 ms. */
    assert_int_equal(fo_ctx_err(t.ctx), 0);
    /* Once unwatched, even a reset no longer touches the (finished) request. */
    fo_conn_unwatch(t.cs, t.cr);
    reset_close(t.sv[1]);
    t.sv[1] = -1;
    assert_false(wait_gone(1, 100));
    assert_int_equal(fo_ctx_err(t.ctx), 0);
    teardown(&t);
}

/* A client gone before the request is watched is noticed at once. */
static void test_reset_before_watch(void **state)
{
    (void)state;
    struct setup t;
    setup(&t, tcp_pair);
    reset_close(t.sv[1]);
    t.sv[1] = -1;
    fo_conn_watch(t.cs, t.cr, t.ctx);
    assert_true(wait_gone(1, 2000));
    assert_int_equal(fo_ctx_err(t.ctx), -ECONNABORTED);
    teardown(&t);
}

/* Counted at admission: 'max' holds whatever the timing of the records. */
static void test_admit_counts_at_accept(void **state)
{
    (void)state;
    struct fo_conns *cs;
    assert_int_equal(fo_conns_create(&cs, 1000, on_gone, NULL), 0);
    assert_true(fo_conns_admit(cs, 2));
    assert_true(fo_conns_admit(cs, 2));
    assert_false(fo_conns_admit(cs, 2)); /* No record exists yet: still refused. */
    assert_int_equal(fo_conns_count(cs), 2);
    struct fo_conn_rec *a = fo_conns_open(cs, -1), *b = fo_conns_open(cs, -1);
    fo_conns_close(cs, a);
    assert_true(fo_conns_admit(cs, 2));
    struct fo_conn_rec *c = fo_conns_open(cs, -1);
    fo_conns_close(cs, b);
    fo_conns_close(cs, c);
    assert_int_equal(fo_conns_count(cs), 0);
    fo_conns_destroy(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_cancels_tcp),
        cmocka_unit_test(test_reset_cancels_unix),
        cmocka_unit_test(test_half_close_and_data_do_not_cancel),
        cmocka_unit_test(test_reset_before_watch),
        cmocka_unit_test(test_admit_counts_at_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
