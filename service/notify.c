/* notify.c -- sd_notify's datagram protocol, in a few lines.
 *
 * systemd documents the protocol as stable: one AF_UNIX SOCK_DGRAM datagram
 * with the state text, to the socket in NOTIFY_SOCKET; a leading '@' means
 * the abstract namespace (the '@' becomes a NUL byte and the address length
 * counts exactly the name, no terminator). Linking libsystemd for this would
 * add a runtime dependency to the package and the minimal image. A fresh
 * socket per message keeps the module stateless; fanout sends two messages
 * in its whole life. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int fo_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name)
        return 0;

    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof sa.sun_path)
        return -EINVAL;
    memcpy(sa.sun_path, name, n);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0'; /* Abstract: length n, no terminator. */
    else
        salen += 1; /* A path: count its NUL, as sd_notify does. */

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}
