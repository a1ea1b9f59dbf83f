/* notify.h -- tell the service manager about start-up and stop (sd_notify).
 *
 * The plain datagram protocol of systemd's sd_notify(3), without libsystemd:
 * when NOTIFY_SOCKET names a unix socket (a path, or "@name" for the abstract
 * namespace), each state is sent there as one datagram ("READY=1",
 * "STOPPING=1"). Without NOTIFY_SOCKET nothing is sent and 0 is returned, so
 * callers need not know whether a manager is listening.
 * Threads: thread-safe (no shared state; the environment is only read). */
#ifndef FO_NOTIFY_H
#define FO_NOTIFY_H

/* Send 'state' (borrowed; newline-separated VAR=value lines) to
 * $NOTIFY_SOCKET. Returns 0 (also when the variable is unset), -EINVAL for a
 * socket name that is not absolute, not "@..." or too long, or the negative
 * errno of socket()/sendto(). */
int fo_notify(const char *state);

#endif /* FO_NOTIFY_H */
