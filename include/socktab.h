/* socktab.h -- the TCP sockets one curl multi opened, found by address, and
 * what the worker's epoll set holds for each.
 *
 * Curl 7.88 tells a pre-request callback the addresses and ports of the
 * connection it chose, not its socket (CURLINFO_ACTIVESOCKET names the
 * previous transfer's connection until this one is done). A worker opens
 * every curl socket itself (CURLOPT_OPENSOCKETFUNCTION), records it here, and
 * finds it again by its four-tuple. Local addresses are read lazily
 * (getsockname) the first time a lookup misses, once per socket.
 * The worker keeps a kept-alive connection's socket in its epoll set between
 * transfers (no EPOLL_CTL_DEL and ADD per transfer): the table records the
 * events registered and whether curl still wants them.
 * Ownership: the table owns its memory, never the sockets.
 * Threads: none of it is thread-safe; one worker thread uses one table. */
#ifndef FO_SOCKTAB_H
#define FO_SOCKTAB_H

#include <stdbool.h>
#include <sys/socket.h>

struct fo_socktab; /* Opaque. */

/* Returns 0 and sets *out, or -ENOMEM. */
int fo_socktab_create(struct fo_socktab **out);

/* Free the table (not the sockets). NULL is a no-op. */
void fo_socktab_destroy(struct fo_socktab *t);

/* Record socket 'fd' about to connect to 'peer' (borrowed; AF_INET or
 * AF_INET6, else ignored). Returns 0 or -ENOMEM. */
int fo_socktab_add(struct fo_socktab *t, int fd, const struct sockaddr *peer, socklen_t len);

/* Forget 'fd' (before it is closed). Unknown fds are ignored. */
void fo_socktab_remove(struct fo_socktab *t, int fd);

/* The epoll events (EPOLLIN | EPOLLOUT bits) registered for 'fd', 0 for none,
 * or -1 when 'fd' is not a recorded socket. A socket added, re-added or
 * removed has none: closing it took it out of the set. */
int fo_socktab_reg(const struct fo_socktab *t, int fd);

/* True unless 'fd' is a recorded socket curl no longer watches (its
 * registration is kept only for the next transfer on the connection). */
bool fo_socktab_wanted(const struct fo_socktab *t, int fd);

/* Record that 'fd' is registered for 'events' and whether curl wants them.
 * Unknown fds are ignored. */
void fo_socktab_set_reg(struct fo_socktab *t, int fd, unsigned events, bool wanted);

/* Input on idle connections, without a syscall per reuse. The worker calls
 * fo_socktab_polled() each time its epoll wait returns and, before it acts on
 * any event of that poll, fo_socktab_mark_input() for each socket with input
 * (EPOLLIN, EPOLLRDHUP, EPOLLHUP or EPOLLERR) that curl no longer watches
 * (ignored for others). fo_socktab_idle_input() then says, for a socket curl
 * no longer watches: 1 when a poll saw input on it since; 0 when it is known
 * to have had none at the last poll (registered for EPOLLIN, and idle since
 * before that poll, which reported nothing for it); -1 when that is not
 * known (a socket curl still watches, one that became idle after the last
 * poll or has no EPOLLIN registration, an unknown fd): the caller looks at
 * the socket itself. */
void fo_socktab_polled(struct fo_socktab *t);
void fo_socktab_mark_input(struct fo_socktab *t, int fd);
int fo_socktab_idle_input(const struct fo_socktab *t, int fd);

/* The recorded socket connected from lip:lport to rip:rport (numeric
 * addresses as curl prints them), or -1 when there is none. */
int fo_socktab_find(struct fo_socktab *t, const char *rip, int rport, const char *lip, int lport);

#endif /* FO_SOCKTAB_H */
