/* server.c -- the HTTP front: the libmicrohttpd daemon, its callbacks, the drain.
 *
 * DESIGN
 * libmicrohttpd runs an epoll thread pool and calls on_request() for each
 * step of a request. The handler is two-phase: the first call only attaches
 * a struct request (queueing an answer in the first call makes MHD close
 * the connection, so every request would pay a new TCP handshake) after the
 * head checks (head.h); later calls collect the body, and the call that sees
 * the end of the request hands it to the request's life (request.h), which
 * answers it or suspends it for the pool; the handler call after the resume
 * finishes it there too.
 *
 * A struct request lives from the first handler call to MHD's completion
 * callback, which can only come after the resume, i.e. after the pool is
 * done with it. It holds a reference on the runtime (runtime.h) current when
 * it began, so a reload never pulls a config from under a request in flight.
 * Each connection has a record (conns.h) that the watchdog and the drain use.
 *
 * Listeners: one daemon for plain HTTP ("listen") and one for HTTPS
 * ("listen_tls"), with the same callbacks, front, limits and records, so both
 * serve the same routes, count into the same series and drain together. The
 * HTTPS socket is ours (bound once: the port never closes on a reload) and
 * its connections are accepted by our own thread (acceptor.h), which hands
 * each to the current HTTPS daemon. A certificate reload (SIGHUP) starts a
 * new daemon and makes it current: new connections get the new certificate,
 * the old daemon keeps serving the connections it has -- a request in flight
 * finishes there -- and closes each once it is quiet (its answers say
 * Connection: close); the watchdog stops it when none is left. If the new
 * certificate cannot be read or GnuTLS refuses it, nothing changes. The
 * HTTPS half lives in server_tls.c (server_int.h is what the two share).
 *
 * Shutdown: see fo_server_stop. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conns.h"
#include "ctx.h"
#include "fdlimit.h"
#include "head.h"
#include "log.h"
#include "request.h"
#include "runtime.h"
#include "server_int.h"

/* ---- runtimes ---- */

static struct fo_runtime *runtime_get(struct fo_server *srv)
{
    pthread_mutex_lock(&srv->rt_lock);
    struct fo_runtime *rt = srv->rt;
    fo_runtime_hold(rt);
    pthread_mutex_unlock(&srv->rt_lock);
    return rt;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct fo__listener *l = cls;
    struct fo_server *srv = l->srv;
    struct request *r = *req_cls;

    if (!r) {
        r = fo_request_new(&srv->front, runtime_get(srv), c, method, url);
        *req_cls = r;
        if (atomic_load_explicit(&l->retired, memory_order_relaxed))
            r->close = true; /* Its daemon drains: the client reconnects to the new one. */
        bool body;
        struct fo_head_verdict v;
        if (fo_head_check(c, method, url, version, r->rt->cfg, &body, &v) < 0) {
            r->close = v.close;
            return fo_request_error(r, v.status, v.code, v.message, NULL);
        }
        if (body)
            fo_conn_body(r->cr, true);
        return MHD_YES;
    }

    switch (r->state) {
    case REQ_READ:
        if (*upload_data_size > 0) {
            fo_conn_chunk(r->cr);
            if (fo_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
                fo_buf_free(&r->body);
                *upload_data_size = 0;
                fo_conn_body(r->cr, false);
                fo_request_refuse_mid_body(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
                                           "body_too_large",
                                           "request body is larger than max_body_bytes");
                return MHD_NO; /* MHD closes the connection. */
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        fo_conn_body(r->cr, false);
        return fo_request_route(r, url, method);
    case REQ_WAIT:
    case REQ_FAILED:
        return fo_request_finish(r);
    case REQ_DONE:
        break;
    }
    *upload_data_size = 0;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    struct request *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    fo_request_end(r, toe);
}

/* Over max_connections: refuse at once (MHD closes the accepted socket), so
 * the client sees a clean close instead of waiting in the listen backlog
 * while the connections already open keep being served. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct fo_server *srv = ((struct fo__listener *)cls)->srv;
    (void)addr;
    (void)addrlen;
    return fo_conns_admit(srv->front.conns, (long)srv->boot->max_connections) ? MHD_YES : MHD_NO;
}

/* A connection accepted with the descriptors nearly all taken (fdlimit.h):
 * answer 503 at once and close. Written before MHD has read or written
 * anything on it. */
static void refuse_connection(int fd)
{
    static const char body[] = "{\"error\":{\"code\":\"overloaded\",\"message\":"
                               "\"out of file descriptors; retry later\"}}";
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    (void)send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_RDWR); /* MHD's next read fails and it drops the connection. */
}

/* Give each connection its record (conns.h), from accept: for HTTPS the
 * head's time runs from before the handshake, so a client that stalls in
 * it is closed like one that stalls in its head. Refuse it near the
 * descriptor limit (an HTTPS client is simply closed: plain text would
 * mean nothing to it). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct fo__listener *l = cls;
    struct fo_server *srv = l->srv;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;
        if (fo_fd_over_share(fd, FO_FD_CLIENT)) {
            if (l->tls)
                shutdown(fd, SHUT_RDWR);
            else
                refuse_connection(fd);
        }
        *socket_context = fo_conns_open(srv->front.conns, fd);
        if (l->tag)
            fo_conn_tag(srv->front.conns, *socket_context, l->tag);
        return;
    }
    fo_conns_close(srv->front.conns, *socket_context);
    *socket_context = NULL;
}

void fo_server_watchdog(struct fo_server *srv)
{
    fo_conns_watch(srv->front.conns);
    fo__server_sweep_retired(srv);
}

/* A request line arrived. MHD takes the return value as the request's
 * initial req_cls: none. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct fo_server *srv = ((struct fo__listener *)cls)->srv;
    (void)uri;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    fo_conn_line(srv->front.conns, ci ? ci->socket_context : NULL);
    return NULL;
}

/* Keep the path as the client sent it: tmpl.c decodes each segment itself,
 * so %2F stays inside one parameter and %00 cannot truncate the path. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* ---- lifecycle ---- */

static int make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, int *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *v6 = 1;
        return 0;
    }
    return -EINVAL;
}

/* A watched client connection was reset and its request's context
 * cancelled (conns.h): the workers abort the calls of cancelled contexts. */
static void sweep_pool(void *arg)
{
    struct fo_server *srv = arg;
    fo_pool_sweep(srv->front.pool);
}

/* Start 'l''s daemon: plain on 'ss', or HTTPS with l->creds and no socket of
 * its own (the acceptor hands it connections). Returns 0 or -EADDRINUSE
 * (plain) / -EINVAL (HTTPS: GnuTLS refused the certificate, the key or the
 * pair). */
int fo__server_start_daemon(struct fo_server *srv, struct fo__listener *l,
                            const struct fo_config *cfg, const struct sockaddr_storage *ss, int v6)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | (v6 && !l->tls ? MHD_USE_IPv6 : 0) |
                     (l->tls ? MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET : 0);
    unsigned threads = cfg->server_threads > 0 ? cfg->server_threads : 1;
    unsigned idle_s = (unsigned)((cfg->idle_timeout_ms + 999) / 1000);
    /* MHD's own limit is split between its threads and, when reached, leaves
     * new clients hanging in the backlog; keep it out of the way and let
     * on_accept enforce max_connections. */
    unsigned mhd_limit = (unsigned)(cfg->max_connections + 64) * threads;
    struct MHD_OptionItem where[4];
    memset(where, 0, sizeof where); /* MHD_OPTION_END after what is set. */
    if (l->tls) {
        where[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->creds.cert};
        where[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->creds.key};
        where[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                           (void *)(uintptr_t)l->creds.priorities};
    } else {
        where[0] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)(uintptr_t)ss};
        where[1] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
    }
    l->daemon = MHD_start_daemon(
        flags, 0, on_accept, l, on_request, l, MHD_OPTION_ARRAY, where, MHD_OPTION_THREAD_POOL_SIZE,
        threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, l, MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, l,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, l, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)cfg->max_header_bytes, MHD_OPTION_END);
    if (!l->daemon)
        return l->tls ? -EINVAL : -EADDRINUSE;
    return 0;
}

int fo_server_create(struct fo_server **out, struct fo_config *cfg, struct fo_pool *pool,
                     struct fo_metrics *metrics, struct fo_budget *budget, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int v6 = 0;
    int rc = cfg->listen_host ? make_addr(cfg->listen_host, cfg->listen_port, &ss, &v6) : 0;
    if (rc < 0) {
        snprintf(err, errlen, "listen address %s is not a numeric IP", cfg->listen_host);
        return rc;
    }
    struct fo_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->tls_fd = -1;
    pthread_mutex_init(&srv->tls_lock, NULL);
    srv->front.pool = pool;
    srv->front.metrics = metrics;
    srv->front.budget = budget;
    srv->front.max_json_depth = cfg->max_json_depth;
    pthread_mutex_init(&srv->rt_lock, NULL);
    if (getrandom(&srv->front.id_prefix, sizeof srv->front.id_prefix, 0) !=
        sizeof srv->front.id_prefix)
        srv->front.id_prefix = (uint32_t)getpid() ^ (uint32_t)fo_clock_us();
    rc = fo_ctx_create(&srv->front.root, NULL, FO_NO_DEADLINE);
    if (rc < 0)
        goto fail;
    rc = fo_conns_create(&srv->front.conns, cfg->header_timeout_ms, sweep_pool, srv);
    if (rc < 0)
        goto fail;
    rc = fo_resil_create(&srv->resil);
    if (rc < 0)
        goto fail;
    srv->rt = fo_runtime_create(metrics, cfg);
    if (!srv->rt) {
        rc = -ENOMEM;
        goto fail;
    }
    srv->rt->resil = fo_resil_bind(srv->resil, cfg);
    srv->rt0 = srv->rt;
    fo_runtime_hold(srv->rt0);
    srv->boot = cfg;

    if (cfg->listen_host) {
        srv->plain = fo__listener_new(srv, false);
        rc = srv->plain ? fo__server_start_daemon(srv, srv->plain, cfg, &ss, v6) : -ENOMEM;
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s:%u (address in use or not available)",
                     cfg->listen_host, cfg->listen_port);
            goto fail;
        }
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(srv->plain->daemon, MHD_DAEMON_INFO_BIND_PORT);
        srv->port = di ? di->port : cfg->listen_port;
    }
    if (cfg->listen_tls_host) {
        rc = fo__server_start_tls(srv, cfg, err, errlen);
        if (rc < 0)
            goto fail;
    }
    *out = srv;
    return 0;
fail:
    fo__server_stop_accepting_tls(srv);
    fo__listener_free(srv->plain);
    fo__server_free_tls(srv);
    pthread_mutex_destroy(&srv->tls_lock);
    if (srv->rt) /* Without the config: the caller keeps it on error. */
        fo_runtime_free(srv->rt);
    fo_ctx_destroy(srv->front.root);
    pthread_mutex_destroy(&srv->rt_lock);
    fo_conns_destroy(srv->front.conns);
    fo_resil_destroy(srv->resil);
    free(srv);
    return rc;
}

uint16_t fo_server_port(const struct fo_server *srv)
{
    return srv->port;
}

static bool same_host(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void fo_server_reload(struct fo_server *srv, struct fo_config *cfg, char *note, size_t notelen)
{
    const struct fo_config *b = srv->boot;
    note[0] = '\0';
#define FO_STARTUP_ONLY(field, name)                                                               \
    if (cfg->field != b->field)                                                                    \
        snprintf(note + strlen(note), notelen - strlen(note), "%s%s", note[0] ? ", " : "", name);
    FO_STARTUP_ONLY(listen_port, "listen")
    FO_STARTUP_ONLY(workers, "workers")
    FO_STARTUP_ONLY(server_threads, "server_threads")
    FO_STARTUP_ONLY(max_connections, "max_connections")
    FO_STARTUP_ONLY(max_header_bytes, "max_header_bytes")
    FO_STARTUP_ONLY(idle_timeout_ms, "idle_timeout_ms")
    FO_STARTUP_ONLY(header_timeout_ms, "header_timeout_ms")
    FO_STARTUP_ONLY(max_response_bytes, "max_response_bytes")
    FO_STARTUP_ONLY(max_json_depth, "max_json_depth")
    FO_STARTUP_ONLY(max_host_connections, "max_host_connections")
    FO_STARTUP_ONLY(max_buffered_bytes, "max_buffered_bytes")
#undef FO_STARTUP_ONLY
    if (!same_host(cfg->listen_host, b->listen_host) && !strstr(note, "listen"))
        snprintf(note + strlen(note), notelen - strlen(note), "%slisten", note[0] ? ", " : "");
    if (!same_host(cfg->listen_tls_host, b->listen_tls_host) ||
        cfg->listen_tls_port != b->listen_tls_port)
        snprintf(note + strlen(note), notelen - strlen(note), "%slisten_tls", note[0] ? ", " : "");
    struct fo_runtime *rt = fo_runtime_create(srv->front.metrics, cfg);
    if (!rt) {
        fo_config_destroy(cfg);
        snprintf(note, notelen, "out of memory; the old config stays");
        return;
    }
    rt->resil = fo_resil_bind(srv->resil, cfg); /* Before the old one lets go of its states. */
    pthread_mutex_lock(&srv->rt_lock);
    struct fo_runtime *old = srv->rt;
    srv->rt = rt;
    pthread_mutex_unlock(&srv->rt_lock);
    fo_runtime_put(old);
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* In a drain, none is closed in the grace period at the start, so that a client
 * (a load balancer's pooled connection, a probe) that was quiet just before
 * the signal can still send one request and be told 503 "draining". */
#define DRAIN_GRACE_MS 1000

/* Until 'until_ms': wait for every request to end and every connection to
 * close, running the watchdog (dead uploads must not hold the drain up) and
 * closing connections that stay quiet. */
static void drain_wait(struct fo_server *srv, int64_t until_ms)
{
    int64_t grace_until = fo_clock_ms() + DRAIN_GRACE_MS;
    for (unsigned i = 0; fo_clock_ms() < until_ms; i++) {
        if (atomic_load(&srv->front.live) == 0 && fo_conns_count(srv->front.conns) == 0)
            return;
        if (i % 4 == 0 && fo_clock_ms() >= grace_until)
            fo_conns_close_quiet(srv->front.conns, FO__DRAIN_QUIET_MS);
        if (i % 20 == 0)
            fo_server_watchdog(srv);
        nap_ms(5);
    }
}

/* DESIGN of the stop, in this order:
 * 1. 'draining' is set: from here on no request is suspended (launch()
 *    answers 503 "draining" with Connection: close), and every answer closes
 *    its connection. The listener stops accepting.
 * 2. Requests in flight get drain_ms to finish; quiet connections are closed.
 * 3. Then the root context is cancelled and the pool aborts what is left;
 *    each of those requests is resumed and answered. The wait for that has no
 *    bound: every call ends by its curl timeout at the latest, and stopping
 *    the daemon with a suspended connection would abort the process.
 * 4. MHD_stop_daemon on every daemon (plain, HTTPS, retired HTTPS), which
 *    then meets no suspended connection, and the pool has no fan-out of ours
 *    left to call back. */
void fo_server_stop(struct fo_server *srv)
{
    if (srv->stopped)
        return;
    srv->stopped = true;
    atomic_store(&srv->front.draining, true);
    /* Stop accepting, and stop listening at once: a client that connects now
     * is refused instead of waiting in the backlog. shutdown() rather than
     * close(): MHD's threads take the socket out of their epoll sets after
     * this returns, so the fd is closed only once they are stopped. */
    MHD_socket lfd = srv->plain ? MHD_quiesce_daemon(srv->plain->daemon) : MHD_INVALID_SOCKET;
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);
    fo__server_stop_accepting_tls(srv);
    pthread_mutex_lock(&srv->rt_lock);
    int64_t drain_ms = srv->rt->cfg->drain_ms; /* Reloadable: the current config's. */
    pthread_mutex_unlock(&srv->rt_lock);
    fo_log(FO_LOG_INFO, "draining", "\"in_flight\":%ld,\"drain_ms\":%lld",
           atomic_load(&srv->front.live), (long long)drain_ms);
    drain_wait(srv, fo_clock_ms() + drain_ms);
    if (atomic_load(&srv->front.waiting) > 0) {
        /* Out of patience: abort what is left; each request is still answered. */
        fo_log(FO_LOG_WARN, "drain_timeout", "\"waiting\":%ld", atomic_load(&srv->front.waiting));
        fo_ctx_cancel(srv->front.root, -ESHUTDOWN);
        fo_pool_sweep(srv->front.pool);
        for (unsigned i = 1; atomic_load(&srv->front.waiting) > 0; i++) {
            nap_ms(5);
            if (i % 200 == 0)
                fo_pool_sweep(srv->front.pool);
        }
        drain_wait(srv, fo_clock_ms() + 1000); /* Let those answers go out. */
    }
    fo__listener_free(srv->plain);
    srv->plain = NULL;
    fo__server_free_tls(srv);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
}

void fo_server_destroy(struct fo_server *srv)
{
    if (!srv)
        return;
    fo_server_stop(srv);
    fo_runtime_put(srv->rt);
    fo_runtime_put(srv->rt0);
    fo_ctx_destroy(srv->front.root);
    pthread_mutex_destroy(&srv->rt_lock);
    pthread_mutex_destroy(&srv->tls_lock);
    fo_conns_destroy(srv->front.conns);
    fo_resil_destroy(srv->resil);
    free(srv);
}
