/* test_socktab.c -- unit tests for the socket table (socktab.h) with real loopback sockets. */
#include "socktab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

/* A listening socket on 127.0.0.1 and its address. */
static int listener(struct sockaddr_in *sa)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(listen(l, 8), 0);
    socklen_t len = sizeof *sa;
    assert_int_equal(getsockname(l, (struct sockaddr *)sa, &len), 0);
    return l;
}

static int local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

static void test_find_by_four_tuple(void **state)
{
    (void)state;
    struct fo_socktab *t;
    assert_int_equal(fo_socktab_create(&t), 0);
    struct sockaddr_in sa;
    int l = listener(&sa);
    int rport = ntohs(sa.sin_port);
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    /* Recorded before connect, as curl's open callback does; bound lazily at lookup. */
    assert_int_equal(fo_socktab_add(t, a, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_add(t, b, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", 1), -1);
    assert_int_equal(connect(a, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(connect(b, (struct sockaddr *)&sa, sizeof sa), 0);
    int pa = local_port(a), pb = local_port(b);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", pa), a);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", pb), b);
    /* Any part of the tuple wrong: not found. */
    assert_int_equal(fo_socktab_find(t, "127.0.0.2", rport, "127.0.0.1", pa), -1);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport + 1, "127.0.0.1", pa), -1);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.9", pa), -1);
    assert_int_equal(fo_socktab_find(t, "::1", rport, "::1", pa), -1);
    assert_int_equal(fo_socktab_find(t, "not an ip", rport, "127.0.0.1", pa), -1);
    assert_int_equal(fo_socktab_find(t, NULL, rport, "127.0.0.1", pa), -1);
    /* Removed: gone, the other stays. */
    fo_socktab_remove(t, a);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", pa), -1);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", pb), b);
    fo_socktab_remove(t, a);    /* Twice: a no-op. */
    fo_socktab_remove(t, 9999); /* Never seen: a no-op. */
    /* The number reused for a new socket: found with its new tuple only. */
    close(a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(fo_socktab_add(t, c, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", local_port(c)), c);
    /* Re-added without a remove (curl closed it unseen): one entry, the new one. */
    assert_int_equal(fo_socktab_add(t, b, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", pb), b);
    close(b);
    close(c);
    close(l);
    fo_socktab_destroy(t);
    fo_socktab_destroy(NULL);
}

/* An fd re-added while it is the newest unbound entry (curl closed it unseen
 * before it connected, and the number came back): one entry, no loop. */
static void test_readded_unbound_head(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 8), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    int rport = ntohs(sa.sin_port);
    struct fo_socktab *t;
    assert_int_equal(fo_socktab_create(&t), 0);
    int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(fo_socktab_add(t, a, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_add(t, b, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_add(t, b, (struct sockaddr *)&sa, sizeof sa), 0);
    /* Neither connected: a lookup walks the unbound list to its end. */
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", 1), -1);
    assert_int_equal(connect(b, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(connect(a, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", local_port(b)), b);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", local_port(a)), a);
    fo_socktab_remove(t, b);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", local_port(b)), -1);
    assert_int_equal(fo_socktab_find(t, "127.0.0.1", rport, "127.0.0.1", local_port(a)), a);
    close(a);
    close(b);
    close(l);
    fo_socktab_destroy(t);
}

static void test_other_families_are_ignored(void **state)
{
    (void)state;
    struct fo_socktab *t;
    assert_int_equal(fo_socktab_create(&t), 0);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_int_equal(fo_socktab_add(t, 3, &sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_add(t, -1, &sa, sizeof sa), 0);
    fo_socktab_remove(t, 3);
    fo_socktab_destroy(t);
}

/* Input on idle sockets: known from the worker's polls only when the socket
 * has been idle and registered for input since before the last poll; else
 * unknown (-1), and the caller looks at the socket itself. */
static void test_idle_input_from_polls(void **state)
{
    (void)state;
    struct fo_socktab *t;
    assert_int_equal(fo_socktab_create(&t), 0);
    struct sockaddr_in sa;
    int l = listener(&sa);
    int a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(fo_socktab_add(t, a, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fo_socktab_idle_input(t, a), -1); /* Curl watches it (connecting). */
    fo_socktab_set_reg(t, a, EPOLLIN, true);
    fo_socktab_polled(t);
    fo_socktab_mark_input(t, a); /* Input while curl wants it: a response, not noted. */
    assert_int_equal(fo_socktab_idle_input(t, a), -1);

    fo_socktab_set_reg(t, a, EPOLLIN, false); /* The transfer ended: idle from this round. */
    assert_int_equal(fo_socktab_idle_input(t, a), -1); /* No poll since: unknown. */
    fo_socktab_polled(t);
    assert_int_equal(fo_socktab_idle_input(t, a), 0);  /* That poll saw nothing: clean. */
    fo_socktab_set_reg(t, a, 0, false);                /* Taken out of the set, quiet. */
    assert_int_equal(fo_socktab_idle_input(t, a), -1); /* Not registered: unknown. */

    fo_socktab_set_reg(t, a, EPOLLIN, true); /* Reused, then idle again. */
    fo_socktab_set_reg(t, a, EPOLLIN, false);
    fo_socktab_polled(t);
    assert_int_equal(fo_socktab_idle_input(t, a), 0);
    fo_socktab_polled(t);
    fo_socktab_mark_input(t, a); /* A later poll saw input: dirty from then on. */
    assert_int_equal(fo_socktab_idle_input(t, a), 1);
    fo_socktab_set_reg(t, a, 0, false); /* Out of the set after the event: still dirty. */
    fo_socktab_polled(t);
    assert_int_equal(fo_socktab_idle_input(t, a), 1);

    /* Only for EPOLLIN: an idle socket registered for output alone is not known. */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(fo_socktab_add(t, b, (struct sockaddr *)&sa, sizeof sa), 0);
    fo_socktab_set_reg(t, b, EPOLLOUT, true);
    fo_socktab_set_reg(t, b, EPOLLOUT, false);
    fo_socktab_polled(t);
    assert_int_equal(fo_socktab_idle_input(t, b), -1);

    /* A number recorded again (a new socket) starts clean of the old one's input. */
    fo_socktab_remove(t, a);
    assert_int_equal(fo_socktab_idle_input(t, a), -1);
    assert_int_equal(fo_socktab_add(t, a, (struct sockaddr *)&sa, sizeof sa), 0);
    fo_socktab_set_reg(t, a, EPOLLIN, true);
    fo_socktab_set_reg(t, a, EPOLLIN, false);
    fo_socktab_polled(t);
    assert_int_equal(fo_socktab_idle_input(t, a), 0);
    fo_socktab_mark_input(t, 9999); /* Unknown fds are ignored. */
    assert_int_equal(fo_socktab_idle_input(t, 9999), -1);
    close(a);
    close(b);
    close(l);
    fo_socktab_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_by_four_tuple),
        cmocka_unit_test(test_readded_unbound_head),
        cmocka_unit_test(test_other_families_are_ignored),
        cmocka_unit_test(test_idle_input_from_polls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
