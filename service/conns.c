/* conns.c -- the open client connections, for the watchdog and the drain.
 *
 * DESIGN
 * libmicrohttpd times a connection out only when it is idle, and every byte
 * resets that timer, so a client that drips a head or an upload one byte at
 * a time would hold a connection for ever. The records here say what each
 * connection is doing; MHD's threads write the marks (relaxed atomics), and
 * the main thread walks the list under the lock every 250 ms. The walk
 * touches a socket only where a rule needs to look: a peek for a dead
 * head or upload, TCP_INFO for an idle connection that may be dripping a request
 * line, so thousands of idle keep-alive connections cost little. */
#include "conns.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "ctx.h"

/* Per connection. Atomics are written by MHD's threads; the plain fields
 * belong to the thread that walks the list. */
struct fo_conn_rec {
    int fd;                          /* Client socket (MHD's). */
    unsigned tag;                    /* The front's mark for its listener; the lock. */
    atomic_int_fast64_t head_by_ms;  /* A request head is due by then; 0: none is being read. */
    atomic_bool busy;                /* A request is under way (whole head to its end). */
    atomic_int_fast64_t line_ms;     /* When a request line arrived; 0 once its request ended. */
    atomic_int_fast64_t idle_ms;     /* When it last became idle: accept or a request's end. */
    atomic_bool in_body;             /* A request is waiting for more of its body. */
    atomic_ulong body_chunks;        /* Body chunks received, to see progress. */
    bool head_fin;                   /* Walker: the peer's FIN seen while a head is due. */
    bool fin;                        /* Walker: the peer's FIN seen while in_body, */
    unsigned long fin_chunks;        /* ... at this body_chunks. */
    int64_t drip_ms;                 /* Walker: bytes of a request line seen arriving since, */
    int64_t drip_last;               /* ... the last of them at. */
    int64_t checked_ms;              /* Walker: last TCP_INFO look at an idle connection. */
    struct fo_ctx *watch_ctx;        /* Borrowed: the waiting request's, while watched; lock. */
    bool in_set;                     /* fd is in the watch set (kept across requests); lock. */
    struct fo_conn_rec *prev, *next; /* The registry's list; its lock. */
};

struct fo_conns {
    pthread_mutex_t lock;      /* Guards the list and each record's watch_ctx. */
    struct fo_conn_rec *head;  /* Open connections. */
    atomic_long n;             /* Their count. */
    int64_t header_timeout_ms; /* Set at create. */
    int epfd;                  /* The watched connections (data.fd = their fd) and 'stopfd'. */
    int stopfd;                /* eventfd: the thread's stop signal. */
    pthread_t thread;          /* Runs watch_main. */
    bool started;              /* 'thread' runs. */
    void (*on_gone)(void *);   /* Called after a reset cancelled a watched request. */
    void *arg;
};

/* The connection on 'fd' is gone for good: reset, or both sides shut (a
 * fresh look, since the event may be older than the fd's current use). */
static bool is_reset(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* The watching thread: an epoll set holding the sockets of connections
 * that had a request wait on the pool, with no event bits (EPOLLHUP and
 * EPOLLERR come anyway: a reset, not a FIN). A socket joins at its first
 * watched request and stays until its connection closes or resets, so a
 * kept-alive connection costs no epoll_ctl per request. Its data is the fd,
 * not the record, which may be freed while an event for it is in flight; the
 * record is looked up under the lock, and a reused fd number is told apart
 * by looking again. */
static void *watch_main(void *arg)
{
    struct fo_conns *cs = arg;
    struct epoll_event ev[32];
    for (;;) {
        int n = epoll_wait(cs->epfd, ev, 32, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        bool gone = false;
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == cs->stopfd)
                return NULL;
            pthread_mutex_lock(&cs->lock);
            for (struct fo_conn_rec *cr = cs->head; cr; cr = cr->next) {
                if (cr->fd != fd || !cr->in_set)
                    continue;
                if (is_reset(fd)) {
                    epoll_ctl(cs->epfd, EPOLL_CTL_DEL, fd, NULL);
                    cr->in_set = false;
                    if (cr->watch_ctx) {
                        fo_ctx_cancel(cr->watch_ctx, -ECONNABORTED);
                        gone = true;
                    }
                    cr->watch_ctx = NULL;
                }
                break;
            }
            pthread_mutex_unlock(&cs->lock);
        }
        if (gone)
            cs->on_gone(cs->arg);
    }
}

void fo_conn_watch(struct fo_conns *cs, struct fo_conn_rec *cr, struct fo_ctx *ctx)
{
    if (!cr || cr->fd < 0)
        return;
    struct epoll_event ev = {.events = 0, .data.fd = cr->fd};
    pthread_mutex_lock(&cs->lock);
    if (!cr->in_set && epoll_ctl(cs->epfd, EPOLL_CTL_ADD, cr->fd, &ev) == 0)
        cr->in_set = true;
    if (cr->in_set) /* A reset before this reports at once: the set is level-triggered. */
        cr->watch_ctx = ctx;
    pthread_mutex_unlock(&cs->lock);
}

void fo_conn_unwatch(struct fo_conns *cs, struct fo_conn_rec *cr)
{
    if (!cr)
        return;
    pthread_mutex_lock(&cs->lock);
    cr->watch_ctx = NULL; /* The socket stays in the set for the next request. */
    pthread_mutex_unlock(&cs->lock);
}

int fo_conns_create(struct fo_conns **out, int64_t header_timeout_ms, void (*on_gone)(void *arg),
                    void *arg)
{
    struct fo_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return -ENOMEM;
    pthread_mutex_init(&cs->lock, NULL);
    cs->header_timeout_ms = header_timeout_ms;
    cs->on_gone = on_gone;
    cs->arg = arg;
    cs->epfd = epoll_create1(EPOLL_CLOEXEC);
    cs->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cs->stopfd};
    int rc = 0;
    if (cs->epfd < 0 || cs->stopfd < 0 || epoll_ctl(cs->epfd, EPOLL_CTL_ADD, cs->stopfd, &ev) < 0)
        rc = -errno;
    if (rc == 0)
        rc = -pthread_create(&cs->thread, NULL, watch_main, cs);
    cs->started = rc == 0;
    if (rc < 0) {
        fo_conns_destroy(cs);
        return rc;
    }
    *out = cs;
    return 0;
}

void fo_conns_destroy(struct fo_conns *cs)
{
    if (!cs)
        return;
    if (cs->started) {
        uint64_t one = 1;
        while (write(cs->stopfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(cs->thread, NULL);
    }
    if (cs->epfd >= 0)
        close(cs->epfd);
    if (cs->stopfd >= 0)
        close(cs->stopfd);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

bool fo_conns_admit(struct fo_conns *cs, long max)
{
    if (atomic_fetch_add_explicit(&cs->n, 1, memory_order_relaxed) < max)
        return true;
    atomic_fetch_sub_explicit(&cs->n, 1, memory_order_relaxed);
    return false;
}

struct fo_conn_rec *fo_conns_open(struct fo_conns *cs, int fd)
{
    struct fo_conn_rec *cr = calloc(1, sizeof *cr);
    if (!cr) {
        atomic_fetch_sub_explicit(&cs->n, 1, memory_order_relaxed);
        return NULL;
    }
    cr->fd = fd;
    int64_t now = fo_clock_ms();
    atomic_init(&cr->idle_ms, now);
    atomic_init(&cr->head_by_ms, now + cs->header_timeout_ms);
    pthread_mutex_lock(&cs->lock);
    cr->next = cs->head;
    if (cs->head)
        cs->head->prev = cr;
    cs->head = cr;
    pthread_mutex_unlock(&cs->lock);
    return cr;
}

void fo_conns_close(struct fo_conns *cs, struct fo_conn_rec *cr)
{
    if (!cr)
        return; /* Its count went back when its record could not be made. */
    atomic_fetch_sub_explicit(&cs->n, 1, memory_order_relaxed);
    pthread_mutex_lock(&cs->lock);
    if (cr->in_set) /* Before libmicrohttpd closes the fd. */
        epoll_ctl(cs->epfd, EPOLL_CTL_DEL, cr->fd, NULL);
    if (cr->prev)
        cr->prev->next = cr->next;
    else
        cs->head = cr->next;
    if (cr->next)
        cr->next->prev = cr->prev;
    pthread_mutex_unlock(&cs->lock);
    free(cr);
}

long fo_conns_count(struct fo_conns *cs)
{
    return atomic_load_explicit(&cs->n, memory_order_relaxed);
}

/* The first request of a connection keeps the due time from accept. */
void fo_conn_line(struct fo_conns *cs, struct fo_conn_rec *cr)
{
    if (!cr)
        return;
    int64_t now = fo_clock_ms();
    atomic_store_explicit(&cr->line_ms, now, memory_order_relaxed);
    if (!atomic_load_explicit(&cr->head_by_ms, memory_order_relaxed))
        atomic_store_explicit(&cr->head_by_ms, now + cs->header_timeout_ms, memory_order_relaxed);
}

void fo_conn_head(struct fo_conn_rec *cr)
{
    if (!cr)
        return;
    atomic_store_explicit(&cr->busy, true, memory_order_relaxed);
    atomic_store_explicit(&cr->head_by_ms, 0, memory_order_relaxed);
}

void fo_conn_body(struct fo_conn_rec *cr, bool coming)
{
    if (cr)
        atomic_store_explicit(&cr->in_body, coming, memory_order_relaxed);
}

void fo_conn_chunk(struct fo_conn_rec *cr)
{
    if (cr)
        atomic_fetch_add_explicit(&cr->body_chunks, 1, memory_order_relaxed);
}

void fo_conn_done(struct fo_conn_rec *cr)
{
    if (!cr)
        return;
    atomic_store_explicit(&cr->in_body, false, memory_order_relaxed);
    atomic_store_explicit(&cr->idle_ms, fo_clock_ms(), memory_order_relaxed);
    atomic_store_explicit(&cr->line_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&cr->busy, false, memory_order_relaxed);
}

/* True if the client closed its side while a request still waits for body
 * bytes: they can never come, yet libmicrohttpd keeps waiting for them.
 * Seen on two passes with no body progress between, so a body that arrived
 * whole with the FIN right behind it is not mistaken for a dead one. */
static bool upload_is_dead(struct fo_conn_rec *cr)
{
    if (!atomic_load_explicit(&cr->in_body, memory_order_relaxed)) {
        cr->fin = false;
        return false;
    }
    char c;
    if (recv(cr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0) {
        cr->fin = false;
        return false;
    }
    unsigned long chunks = atomic_load_explicit(&cr->body_chunks, memory_order_relaxed);
    if (cr->fin && cr->fin_chunks == chunks)
        return true;
    cr->fin = true;
    cr->fin_chunks = chunks;
    return false;
}

/* True if the client closed its side while its request head is still
 * incomplete: the rest can never come. Seen on two passes in a row, so a
 * whole request sent with its FIN right behind it (a half-close, which is
 * allowed) is parsed by then and no longer has a head due. */
static bool head_is_dead(struct fo_conn_rec *cr)
{
    char c;
    if (recv(cr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0) {
        cr->head_fin = false;
        return false;
    }
    if (cr->head_fin)
        return true;
    cr->head_fin = true;
    return false;
}

/* True if the idle connection's client has been sending the bytes of a
 * request line for longer than 'limit' without finishing it: a request line
 * arrives in one piece, so bytes since the connection went idle with no
 * request line yet are a drip. The kernel says when data last arrived; the
 * socket is looked at once a second at most, and only after 'limit' of
 * idleness. */
static bool request_line_drips(struct fo_conn_rec *cr, int64_t now, int64_t limit)
{
    int64_t idle = atomic_load_explicit(&cr->idle_ms, memory_order_relaxed);
    if (now - idle <= limit || now - cr->checked_ms < 1000)
        return false;
    cr->checked_ms = now;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(cr->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return false;
    /* The kernel's clock ticks in jiffies: allow it 20 ms of blur. */
    int64_t last = now - (int64_t)ti.tcpi_last_data_recv;
    if (last <= idle + 20 || cr->drip_ms < idle) {
        cr->drip_ms = last > idle + 20 ? last : 0;
        cr->drip_last = cr->drip_ms;
        return false;
    }
    /* Still arriving (a client that stopped is the idle timeout's). */
    bool more = last > cr->drip_last;
    cr->drip_last = last;
    return more && now - cr->drip_ms > limit;
}

void fo_conns_watch(struct fo_conns *cs)
{
    int64_t limit = cs->header_timeout_ms;
    int64_t now = fo_clock_ms();
    pthread_mutex_lock(&cs->lock);
    for (struct fo_conn_rec *cr = cs->head; cr; cr = cr->next) {
        if (cr->fd < 0)
            continue;
        int64_t due = atomic_load_explicit(&cr->head_by_ms, memory_order_relaxed);
        bool busy = atomic_load_explicit(&cr->busy, memory_order_relaxed);
        if (due && (now > due || head_is_dead(cr))) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->head_by_ms, 0, memory_order_relaxed);
        } else if (upload_is_dead(cr)) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->in_body, false, memory_order_relaxed);
        } else if (!busy && !due && request_line_drips(cr, now, limit)) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->idle_ms, INT64_MAX / 2, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&cs->lock);
}

void fo_conn_tag(struct fo_conns *cs, struct fo_conn_rec *cr, unsigned tag)
{
    if (!cr)
        return;
    pthread_mutex_lock(&cs->lock);
    cr->tag = tag;
    pthread_mutex_unlock(&cs->lock);
}

long fo_conns_count_tag(struct fo_conns *cs, unsigned tag)
{
    long n = 0;
    pthread_mutex_lock(&cs->lock);
    for (struct fo_conn_rec *cr = cs->head; cr; cr = cr->next)
        n += cr->tag == tag;
    pthread_mutex_unlock(&cs->lock);
    return n;
}

/* A connection is not quiet while bytes wait in its socket that MHD's busy
 * threads have not read yet, or while the head whose request line arrived
 * less than 'quiet_ms' ago is still coming; a head older than that is
 * abandoned or dripped. 'all' or only those tagged 'tag'. */
static void close_quiet(struct fo_conns *cs, int64_t quiet_ms, bool all, unsigned tag)
{
    int64_t now = fo_clock_ms();
    pthread_mutex_lock(&cs->lock);
    for (struct fo_conn_rec *cr = cs->head; cr; cr = cr->next) {
        if (cr->fd < 0 || atomic_load_explicit(&cr->busy, memory_order_relaxed) ||
            (!all && cr->tag != tag))
            continue;
        int64_t line = atomic_load_explicit(&cr->line_ms, memory_order_relaxed);
        int64_t idle = atomic_load_explicit(&cr->idle_ms, memory_order_relaxed);
        char c;
        if (now - idle >= quiet_ms && (!line || now - line >= quiet_ms) &&
            recv(cr->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
            shutdown(cr->fd, SHUT_RDWR);
            atomic_store_explicit(&cr->idle_ms, INT64_MAX / 2, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&cs->lock);
}

void fo_conns_close_quiet(struct fo_conns *cs, int64_t quiet_ms)
{
    close_quiet(cs, quiet_ms, true, 0);
}

void fo_conns_close_quiet_tag(struct fo_conns *cs, int64_t quiet_ms, unsigned tag)
{
    close_quiet(cs, quiet_ms, false, tag);
}
