/* socktab.h -- the TCP sockets one curl multi opened, found by address.
 *
 * Curl 7.88 tells a pre-request callback the addresses and ports of the
 * connection it chose, not its socket (CURLINFO_ACTIVESOCKET names the
 * previous transfer's connection until this one is done). A worker opens
 * every curl socket itself (CURLOPT_OPENSOCKETFUNCTION), records it here, and
 * finds it again by its four-tuple. Local addresses are read lazily
 * (getsockname) the first time a lookup misses, once per socket.
 * Ownership: the table owns its memory, never the sockets.
 * Threads: none of it is thread-safe; one worker thread uses one table. */
#ifndef FO_SOCKTAB_H
#define FO_SOCKTAB_H

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

/* The recorded socket connected from lip:lport to rip:rport (numeric
 * addresses as curl prints them), or -1 when there is none. */
int fo_socktab_find(struct fo_socktab *t, const char *rip, int rport, const char *lip, int lport);

#endif /* FO_SOCKTAB_H */
