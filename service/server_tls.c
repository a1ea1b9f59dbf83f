/* server_tls.c -- the HTTPS listener of the front (see server_int.h, server.h).
 *
 * DESIGN
 * The HTTPS socket is ours, bound once, so the port never closes on a reload, and our own
 * thread (acceptor.h) accepts on it and hands each connection to the current HTTPS daemon
 * (MHD_add_connection) under tls_lock. A certificate reload starts a new daemon with the new
 * files and makes it current under the same lock: from then on every new connection gets
 * the new certificate. The old daemon is retired: it keeps serving the connections it has
 * (a request in flight finishes there; its answers say Connection: close), the watchdog
 * closes each once quiet, and stops the daemon when none is left. libmicrohttpd's quiesce
 * is not used: in 0.9.75 it races the daemon's epoll threads and can abort the process. */
#include "server_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conns.h"
#include "log.h"

struct fo__listener *fo__listener_new(struct fo_server *srv, bool tls)
{
    struct fo__listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->srv = srv;
    l->tls = tls;
    l->tag = tls ? ++srv->next_tag : 0;
    atomic_init(&l->retired, false);
    return l;
}

void fo__listener_free(struct fo__listener *l)
{
    if (!l)
        return;
    if (l->daemon)
        MHD_stop_daemon(l->daemon);
    fo_tls_creds_free(&l->creds);
    free(l);
}

/* The acceptor's hand-over: to the current HTTPS daemon, which closes the
 * socket itself if it refuses it (max_connections, out of memory). */
static void on_tls_accept(void *arg, int fd, const struct sockaddr *addr, socklen_t len)
{
    struct fo_server *srv = arg;
    int one = 1; /* The handshake's flights are small writes: no Nagle delay between them. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&srv->tls_lock);
    if (srv->tls)
        (void)MHD_add_connection(srv->tls->daemon, fd, addr, len);
    else
        close(fd);
    pthread_mutex_unlock(&srv->tls_lock);
}

int fo__server_start_tls(struct fo_server *srv, const struct fo_config *cfg, char *err,
                         size_t errlen)
{
    int fd = fo_tls_listen(cfg->listen_tls_host, cfg->listen_tls_port, err, errlen);
    if (fd < 0)
        return fd;
    srv->tls_fd = fd;
    srv->tls_port = fo_tls_bound_port(fd);
    struct fo__listener *l = fo__listener_new(srv, true);
    if (!l)
        return -ENOMEM;
    int rc = fo_tls_creds_load(&l->creds, &cfg->tls, err, errlen);
    if (rc == 0) {
        rc = fo__server_start_daemon(srv, l, cfg, NULL, 0);
        if (rc < 0)
            snprintf(err, errlen,
                     "tls: cannot start HTTPS on %s:%u: the certificate or key was refused "
                     "(not PEM, or a key that does not match the certificate?)",
                     cfg->listen_tls_host, cfg->listen_tls_port);
    }
    if (rc < 0) {
        fo__listener_free(l);
        return rc;
    }
    srv->tls = l;
    rc = fo_acceptor_create(&srv->acceptor, fd, on_tls_accept, srv);
    if (rc < 0)
        snprintf(err, errlen, "cannot start the HTTPS acceptor: %s", strerror(-rc));
    return rc;
}

void fo__server_stop_accepting_tls(struct fo_server *srv)
{
    fo_acceptor_destroy(srv->acceptor);
    srv->acceptor = NULL;
    if (srv->tls_fd >= 0)
        shutdown(srv->tls_fd, SHUT_RDWR);
}

void fo__server_free_tls(struct fo_server *srv)
{
    fo__listener_free(srv->tls);
    srv->tls = NULL;
    while (srv->retired) {
        struct fo__listener *l = srv->retired;
        srv->retired = l->next;
        fo__listener_free(l);
    }
    if (srv->tls_fd >= 0)
        close(srv->tls_fd);
    srv->tls_fd = -1;
}

uint16_t fo_server_tls_port(const struct fo_server *srv)
{
    return srv->tls ? srv->tls_port : 0;
}

int fo_server_reload_tls(struct fo_server *srv, const struct fo_config *cfg, char *err,
                         size_t errlen)
{
    if (!srv->tls || !cfg->tls.cert_file || srv->stopped)
        return 0; /* No HTTPS listener now, or none in the new config (a restart's). */
    struct fo__listener *l = fo__listener_new(srv, true);
    if (!l) {
        snprintf(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    int rc = fo_tls_creds_load(&l->creds, &cfg->tls, err, errlen);
    if (rc == 0) {
        rc = fo__server_start_daemon(srv, l, srv->boot, NULL, 0); /* Limits are start-up only. */
        if (rc < 0)
            snprintf(err, errlen,
                     "tls: the new certificate or key was refused (not PEM, or a key that does "
                     "not match the certificate?); the old one stays");
    }
    if (rc < 0) {
        fo__listener_free(l);
        return rc;
    }
    pthread_mutex_lock(&srv->tls_lock);
    struct fo__listener *old = srv->tls;
    srv->tls = l;
    pthread_mutex_unlock(&srv->tls_lock);
    atomic_store(&old->retired, true);
    old->retired_ms = fo_clock_ms();
    old->next = srv->retired;
    srv->retired = old;
    fo_log(FO_LOG_INFO, "tls_reloaded", "\"generation\":%u,\"draining\":%ld", l->tag,
           fo_conns_count_tag(srv->front.conns, old->tag));
    return 0;
}

/* A retired daemon is stopped once none of its connections is left, and not
 * before a second after the swap (a connection handed to it just before has
 * its record by then). Until then its quiet connections are closed. */
#define RETIRE_MIN_MS 1000

void fo__server_sweep_retired(struct fo_server *srv)
{
    int64_t now = fo_clock_ms();
    for (struct fo__listener **p = &srv->retired; *p;) {
        struct fo__listener *l = *p;
        if (fo_conns_count_tag(srv->front.conns, l->tag) == 0 &&
            now - l->retired_ms >= RETIRE_MIN_MS) {
            *p = l->next;
            fo__listener_free(l);
            continue;
        }
        fo_conns_close_quiet_tag(srv->front.conns, FO__DRAIN_QUIET_MS, l->tag);
        p = &l->next;
    }
}
