/* fdlimit.h -- keep the process below its descriptor limit.
 *
 * Every client and backend connection is a descriptor. At the limit,
 * accept() fails and libmicrohttpd stops accepting until one of its own
 * connections closes, so new clients hang in the backlog. Instead, each new
 * socket is checked against the limit as it is made, and refused with a
 * quick answer while some descriptors are still free. The kernel hands out
 * the lowest free number, so a socket's number is about how many are open.
 * Client sockets are refused first (past 3/4 of the limit), backend sockets
 * later (past 7/8), so the last eighth is never used up by either.
 * Threads: thread-safe. */
#ifndef FO_FDLIMIT_H
#define FO_FDLIMIT_H

#include <stdbool.h>

enum fo_fd_use { FO_FD_CLIENT, FO_FD_BACKEND };

/* True when 'fd', just made for 'use', is past that use's share of the
 * RLIMIT_NOFILE soft limit (read each call, so a changed limit counts). */
bool fo_fd_over_share(int fd, enum fo_fd_use use);

/* Raise the soft descriptor limit to the hard one, as servers do. */
void fo_fd_raise_limit(void);

#endif /* FO_FDLIMIT_H */
