/* pool_sock.c -- a worker's curl sockets in its epoll set (see pool_worker.h).
 *
 * Curl tells the worker which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION); this file keeps the epoll set
 * in step and hands socket events back to curl. A socket the worker opened
 * (one in its socket table, socktab.h) keeps its registration between the
 * transfers of a kept-alive connection, so a transfer costs no epoll_ctl.
 * Threads: the worker's own only. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "clock.h"
#include "pool_worker.h"
#include "socktab.h"

/* epoll_data.u64 of a curl socket: (fd << 1) | SOCK_TAG. Pointers are even. */
#define SOCK_TAG 1u

/* curl_multi_assign marker: "this socket is in the epoll set already". */
static char sock_known;

#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer treats an fd number as a shared object: the late
 * EPOLL_CTL_DEL below (see fo__on_socket) names a number that another worker's
 * curl may already have reused for its own socket, and is reported as a race
 * with that socket(). It is not one: the call acts on this worker's epoll
 * set only, where that number is no longer registered, and fails with
 * ENOENT. fo__on_socket touches nothing else shared. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:fo__on_socket\n";
}
#endif

/* The epoll events for curl's CURL_POLL_* 'what'. */
static unsigned epoll_events(int what)
{
    return ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
}

/* Set the epoll registration of 's' from 'reg' (0: none) to 'want'. */
static void sock_register(struct fo_worker *w, curl_socket_t s, unsigned reg, unsigned want)
{
    struct epoll_event ev = {.events = want};
    ev.data.u64 = ((uint64_t)(unsigned)s << 1) | SOCK_TAG;
    if (epoll_ctl(w->epfd, reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0) {
        if (errno == EEXIST)
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev);
        else if (errno == ENOENT)
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
    }
}

/* A socket this worker opened (it is in the socket table) stays in the epoll
 * set when curl stops watching it: the next transfer on the kept-alive
 * connection asks for the same events, and no epoll_ctl is made for either.
 * An event on it while it is unwanted (the backend closed the idle
 * connection, or sent something) is noted (fo__sock_polled: the connection
 * is refused before it carries another request) and takes it out then
 * (fo__sock_event). */
int fo__on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct fo_worker *w = arg;
    (void)easy;
    int reg = fo_socktab_reg(w->socks, s);
    if (reg >= 0) {
        if (what == CURL_POLL_REMOVE) {
            fo_socktab_set_reg(w->socks, s, (unsigned)reg, false);
            return 0;
        }
        unsigned want = epoll_events(what);
        fo_socktab_set_reg(w->socks, s, want, true);
        if (want != (unsigned)reg)
            sock_register(w, s, (unsigned)reg, want);
        return 0;
    }
    /* Not in the table (closed already): the registration follows curl.
     * When a transfer is removed while it connects, curl 7.88 closes the
     * socket first and reports CURL_POLL_REMOVE for it later, keeping the
     * marker. The late EPOLL_CTL_DEL cannot hit anything: the kernel dropped
     * the closed socket from the set, and only this thread adds to it. A new
     * socket curl opens with the same number inherits the stale marker, so a
     * MOD that finds nothing becomes an ADD. */
    if (what == CURL_POLL_REMOVE) {
        if (sockp) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
            curl_multi_assign(w->multi, s, NULL);
        }
        return 0;
    }
    if (!sockp)
        curl_multi_assign(w->multi, s, &sock_known);
    sock_register(w, s, sockp ? 1u : 0u, epoll_events(what));
    return 0;
}

bool fo__sock_is(uint64_t data)
{
    return data & SOCK_TAG;
}

bool fo__sock_event(struct fo_worker *w, uint64_t data, uint32_t events)
{
    curl_socket_t s = (curl_socket_t)(data >> 1);
    if (!fo_socktab_wanted(w->socks, s)) { /* Curl no longer watches it: out of the set. */
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, NULL);
        fo_socktab_set_reg(w->socks, s, 0, false);
        return false;
    }
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(w->multi, s, mask, &running);
    return true;
}

void fo__sock_polled(struct fo_worker *w, const struct epoll_event *ev, int n)
{
    fo_socktab_polled(w->socks);
    for (int i = 0; i < n; i++)
        if (fo__sock_is(ev[i].data.u64) &&
            (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            fo_socktab_mark_input(w->socks, (int)(ev[i].data.u64 >> 1));
}

int fo__on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct fo_worker *w = arg;
    (void)multi;
    w->timer_due_us = timeout_ms < 0 ? -1 : fo_clock_us() + (int64_t)timeout_ms * 1000;
    return 0;
}
