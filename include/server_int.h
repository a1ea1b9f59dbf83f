/* server_int.h -- private to the HTTP front (server.c, server_tls.c): the server's state,
 * its listeners, and what the two files share.
 *
 * server.c owns the daemons' callbacks, the plain listener, reloads of the config and the
 * drain; server_tls.c the HTTPS listener: its socket, the acceptor that hands connections
 * to the current HTTPS daemon, certificate reloads and the retired daemons.
 * Threads: as server.h says (one main thread), except where a field says otherwise. */
#ifndef FO_SERVER_INT_H
#define FO_SERVER_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acceptor.h"
#include "config.h"
#include "request.h"
#include "runtime.h"
#include "server.h"
#include "tls_front.h"

/* In a drain (and a retired HTTPS daemon's), a kept-alive connection is closed once it has
 * been quiet this long. */
#define FO__DRAIN_QUIET_MS 500

/* One libmicrohttpd daemon: the cls of its callbacks. */
struct fo__listener {
    struct fo_server *srv;
    struct MHD_Daemon *daemon;
    bool tls;                  /* An HTTPS daemon. */
    unsigned tag;              /* Its connections' records carry it (0: plain). */
    atomic_bool retired;       /* A newer HTTPS daemon took the socket: close after answers. */
    int64_t retired_ms;        /* When (main thread). */
    struct fo_tls_creds creds; /* What it was started with, kept while it runs. */
    struct fo__listener *next; /* The server's retired list (main thread). */
};

struct fo_server {
    struct fo_front front;        /* What requests share (request.h). */
    struct fo__listener *plain;   /* The HTTP daemon, or NULL ("listen": null). */
    pthread_mutex_t tls_lock;     /* Guards 'tls' against a swap while a connection is handed
                                     to it (held across MHD_add_connection, which calls only
                                     on_accept back, and that takes no lock). */
    struct fo__listener *tls;     /* The current HTTPS daemon, or NULL; tls_lock to change. */
    struct fo__listener *retired; /* Older HTTPS daemons serving what they have (main thread). */
    struct fo_acceptor *acceptor; /* Accepts on tls_fd, or NULL. */
    int tls_fd;                   /* The HTTPS listening socket (ours), or -1. */
    uint16_t tls_port;            /* Its bound port. */
    unsigned next_tag;            /* The last tag given to an HTTPS daemon. */
    uint16_t port;                /* Bound port. */
    pthread_mutex_t rt_lock;      /* Guards 'rt' (the pointer, not the runtime). */
    struct fo_runtime *rt;        /* Current runtime; one reference. */
    const struct fo_config *boot; /* The config the daemon was started with (in 'rt0'). */
    struct fo_runtime *rt0;       /* Start-up runtime; a reference kept for 'boot'. */
    struct fo_resil *resil;       /* Resilience states, kept across reloads (resil.h). */
    bool stopped;
};

/* A listener (plain, or HTTPS with its tag) with no daemon yet; NULL when out of memory. */
struct fo__listener *fo__listener_new(struct fo_server *srv, bool tls);

/* Stop its daemon (none of its connections may be suspended) and free it. NULL is a no-op. */
void fo__listener_free(struct fo__listener *l);

/* Start 'l''s daemon: plain on 'ss', or HTTPS with l->creds and no socket of its own (the
 * acceptor hands it connections). Returns 0 or -EADDRINUSE (plain) / -EINVAL (HTTPS: GnuTLS
 * refused the certificate, the key or the pair). server.c. */
int fo__server_start_daemon(struct fo_server *srv, struct fo__listener *l,
                            const struct fo_config *cfg, const struct sockaddr_storage *ss, int v6);

/* The HTTPS listener of 'cfg': our socket, the first daemon, the acceptor. Returns 0 or a
 * negative errno with a reason in 'err' (the caller then frees with fo__server_free_tls). */
int fo__server_start_tls(struct fo_server *srv, const struct fo_config *cfg, char *err,
                         size_t errlen);

/* Stop handing over HTTPS connections and shut the socket (a client connecting is refused).
 * Idempotent. */
void fo__server_stop_accepting_tls(struct fo_server *srv);

/* Stop and free every HTTPS daemon (current and retired) and close the socket. */
void fo__server_free_tls(struct fo_server *srv);

/* Watchdog: close the quiet connections of retired HTTPS daemons and stop those with none. */
void fo__server_sweep_retired(struct fo_server *srv);

#endif /* FO_SERVER_INT_H */
