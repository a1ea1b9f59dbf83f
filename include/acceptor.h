/* acceptor.h -- a thread that accepts connections on a listening socket and hands each over.
 *
 * The HTTPS listener accepts its connections itself and gives each to the
 * libmicrohttpd daemon current at that moment (MHD_add_connection), so that
 * a certificate reload can switch daemons by switching a pointer: no
 * daemon ever has to be quiesced while its threads run (libmicrohttpd
 * 0.9.75's quiesce races its own epoll workers and can abort the process).
 * Ownership: the listening socket stays the caller's; each accepted socket
 * moves to the callback, which must close it or hand it on.
 * Threads: create and destroy from one thread; the callback runs on the
 * acceptor's own thread, one connection at a time. */
#ifndef FO_ACCEPTOR_H
#define FO_ACCEPTOR_H

#include <sys/socket.h>

struct fo_acceptor; /* Opaque. */

/* A connection accepted on the listening socket: 'fd' is non-blocking and
 * close-on-exec, 'addr' (borrowed, 'len' bytes) its peer. */
typedef void fo_accept_fn(void *arg, int fd, const struct sockaddr *addr, socklen_t len);

/* Start accepting on 'lfd' (listening, non-blocking). Returns 0 and sets *out,
 * or a negative errno. */
int fo_acceptor_create(struct fo_acceptor **out, int lfd, fo_accept_fn *fn, void *arg);

/* Stop the thread (no callback runs after this returns) and free. The
 * socket is not closed. NULL is a no-op. */
void fo_acceptor_destroy(struct fo_acceptor *a);

#endif /* FO_ACCEPTOR_H */
