/* tls_front.h -- TLS on the front: what a libmicrohttpd HTTPS daemon is given.
 *
 * libmicrohttpd (built with GnuTLS) takes the certificate chain and the key as
 * PEM text and a GnuTLS priority string; this module reads the files (capped,
 * and the key wiped when freed), names the priorities for a minimum version
 * (TLS 1.2 or 1.3 only, AEAD ciphers with forward secrecy, no legacy
 * suites), and binds the listening socket that the HTTPS daemons of
 * successive certificate reloads share, so that a reload never closes the
 * port.
 * Ownership: fo_tls_creds_load fills a struct the caller frees with
 * fo_tls_creds_free; the socket is the caller's to close.
 * Threads: any; nothing is shared. */
#ifndef FO_TLS_FRONT_H
#define FO_TLS_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* What one HTTPS daemon starts with. */
struct fo_tls_creds {
    char *cert;             /* From malloc(): PEM certificate chain, NUL-terminated. */
    char *key;              /* From malloc(): PEM private key; wiped when freed. */
    size_t key_len;         /* Bytes of 'key' (for the wipe). */
    const char *priorities; /* Static: the GnuTLS priority string for min_version. */
};

/* Read tc->cert_file and tc->key_file. Returns 0, or a negative errno with a reason in
 * 'err' (naming the file); 'out' is then empty. */
int fo_tls_creds_load(struct fo_tls_creds *out, const struct fo_tls_conf *tc, char *err,
                      size_t errlen);

/* Wipe the key and free both. Safe on a zeroed struct. */
void fo_tls_creds_free(struct fo_tls_creds *c);

/* The GnuTLS priority string for min_version (0: TLS 1.2, 1: TLS 1.3). */
const char *fo_tls_priorities(int min_version);

/* A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR) bound to host:port
 * (numeric). Returns the descriptor, or a negative errno with a reason in 'err'. */
int fo_tls_listen(const char *host, uint16_t port, char *err, size_t errlen);

/* The port 'fd' is bound to, or 0. */
uint16_t fo_tls_bound_port(int fd);

#endif /* FO_TLS_FRONT_H */
