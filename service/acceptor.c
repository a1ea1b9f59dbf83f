/* acceptor.c -- a thread that accepts connections and hands each over (see acceptor.h).
 *
 * The thread polls the listening socket and an eventfd (its stop signal)
 * and accepts until EAGAIN each time the socket is readable. A process out
 * of descriptors (EMFILE, ENFILE) or memory makes accept() fail while the
 * connection stays queued, so the thread waits 10 ms before it tries again
 * instead of spinning; other errors (a client that reset before the accept)
 * concern one connection only. */
#include "acceptor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fo_acceptor {
    int lfd;          /* Borrowed: the listening socket. */
    int stopfd;       /* eventfd: written once to stop the thread. */
    fo_accept_fn *fn; /* Takes each accepted socket. */
    void *arg;
    pthread_t thread;
};

static void *accept_main(void *p)
{
    struct fo_acceptor *a = p;
    struct pollfd fds[2] = {{.fd = a->lfd, .events = POLLIN}, {.fd = a->stopfd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (fds[1].revents)
            return NULL;
        if (!fds[0].revents)
            continue;
        for (;;) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            int fd = accept4(a->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                a->fn(a->arg, fd, (struct sockaddr *)&ss, len);
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
                break; /* EAGAIN: the queue is empty; anything else: poll again. */
        }
    }
}

int fo_acceptor_create(struct fo_acceptor **out, int lfd, fo_accept_fn *fn, void *arg)
{
    struct fo_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->lfd = lfd;
    a->fn = fn;
    a->arg = arg;
    a->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->stopfd < 0) {
        int rc = -errno;
        free(a);
        return rc;
    }
    int rc = -pthread_create(&a->thread, NULL, accept_main, a);
    if (rc < 0) {
        close(a->stopfd);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void fo_acceptor_destroy(struct fo_acceptor *a)
{
    if (!a)
        return;
    uint64_t one = 1;
    while (write(a->stopfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(a->thread, NULL);
    close(a->stopfd);
    free(a);
}
