/* tls_front.c -- TLS on the front: certificate material, priorities, the shared
 * listening socket (see tls_front.h).
 *
 * The priority strings start from GnuTLS's NORMAL set and keep only what a
 * current client needs: TLS 1.3 and (unless min_version is 1.3) TLS 1.2; AES-GCM
 * and ChaCha20-Poly1305 (AEAD: no CBC, RC4 or 3DES suites, no SHA-1 MACs);
 * ECDHE key exchange only (no static RSA, so every session has forward
 * secrecy). TLS 1.0 and 1.1 are never offered: a client limited to them fails
 * the handshake. The server's order wins. */
#include "tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_schema.h"

#define AEAD_ONLY                                                                                  \
    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:"             \
    "+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

static const char *const priorities[] = {
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" AEAD_ONLY,
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:" AEAD_ONLY,
};

const char *fo_tls_priorities(int min_version)
{
    return priorities[min_version == 1 ? 1 : 0];
}

void fo_tls_creds_free(struct fo_tls_creds *c)
{
    if (c->key)
        explicit_bzero(c->key, c->key_len);
    free(c->key);
    free(c->cert);
    c->key = NULL;
    c->cert = NULL;
    c->key_len = 0;
}

static int read_one(const char *file, bool key, char **out, size_t *len, char *err, size_t errlen)
{
    char q[160];
    int rc = fo__read_pem(file, out, len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read \"%s\": %s", fo__quote(q, sizeof q, file),
                 fo__pem_strerror(rc));
        return rc;
    }
    if (!fo__pem_kind_ok(*out, key)) {
        snprintf(err, errlen, "\"%s\" holds no PEM %s", fo__quote(q, sizeof q, file),
                 key ? "private key" : "certificate");
        return -EINVAL;
    }
    return 0;
}

int fo_tls_creds_load(struct fo_tls_creds *out, const struct fo_tls_conf *tc, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = read_one(tc->cert_file, false, &out->cert, NULL, err, errlen);
    if (rc == 0)
        rc = read_one(tc->key_file, true, &out->key, &out->key_len, err, errlen);
    if (rc < 0) {
        fo_tls_creds_free(out);
        return rc;
    }
    out->priorities = fo_tls_priorities(tc->min_version);
    return 0;
}

int fo_tls_listen(const char *host, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        len = sizeof *a6;
    } else {
        snprintf(err, errlen, "listen_tls address %s is not a numeric IP", host);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open a socket for listen_tls: %s", strerror(e));
        return -e;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "cannot listen on %s:%u for listen_tls: %s", host, port, strerror(e));
        return -e;
    }
    return fd;
}

uint16_t fo_tls_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}
