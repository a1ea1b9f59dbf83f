/* config_tls.c -- the config's TLS keys: the HTTPS listener (listen_tls, tls) and the TLS
 * options of backend calls (ca_file, client_cert_file, client_key_file, server_name,
 * insecure_skip_verify). See config_schema.h and config.h.
 *
 * The rows live in config.c's tables; their parsers and the checks between them live here,
 * so that the TLS rules read in one place. A file key is checked the way it will be used:
 * the file must be readable now and hold PEM of the right kind (a certificate, or a private
 * key), so `fanout --check` finds a wrong path or a swapped pair before a start or a reload
 * does. Whether the key matches the certificate is for GnuTLS to say when the listener
 * starts (a start-up error, or reload_failed on SIGHUP). */
#include "config_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* A PEM file larger than this is not a certificate chain or a key. */
#define MAX_PEM_BYTES (1u << 20)

const char *const fo__tls_versions[] = {"1.2", "1.3", NULL};

/* Read at most MAX_PEM_BYTES of 'file' into a NUL-terminated buffer the caller frees.
 * Returns 0 or a negative errno (-E2BIG when larger). */
int fo__read_pem(const char *file, char **out, size_t *len)
{
    *out = NULL;
    /* Non-blocking and a regular file only: a FIFO or a device must not hang a reload. */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    char *buf = malloc(MAX_PEM_BYTES + 1);
    int rc = buf ? 0 : -ENOMEM;
    size_t n = 0;
    while (rc == 0 && n <= MAX_PEM_BYTES) {
        ssize_t r = read(fd, buf + n, MAX_PEM_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > MAX_PEM_BYTES)
        rc = -E2BIG;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

const char *fo__pem_strerror(int rc)
{
    if (rc == -E2BIG)
        return "larger than 1 MiB";
    if (rc == -EINVAL)
        return "not a regular file";
    return strerror(-rc);
}

/* What a file key must hold: a key row ("key_file", "client_key_file") a private key, the
 * others a certificate. */
static bool wants_key(const char *key)
{
    size_t n = strlen(key);
    return n >= 8 && strcmp(key + n - 8, "key_file") == 0;
}

bool fo__pem_kind_ok(const char *text, bool key)
{
    if (key)
        return strstr(text, "-----BEGIN ") && strstr(text, "PRIVATE KEY-----");
    return strstr(text, "-----BEGIN CERTIFICATE-----") != NULL;
}

/* A file row: a path to a readable PEM file of the kind the key names. */
bool fo__parse_pem_path(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                        const char *path, void *base, const void *up)
{
    char **out = (char **)((char *)base + f->offset);
    char q[160];
    free(*out);
    *out = NULL;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        fo__errorf(c, path, "must be a non-empty file path");
        return false;
    }
    const char *file = v->valuestring;
    bool key = wants_key(f->key);
    char *text = NULL;
    int rc = fo__read_pem(file, &text, NULL);
    if (rc == -ENOMEM) {
        c->oom = true;
        return false;
    }
    if (rc < 0) {
        fo__errorf(c, path, "cannot read \"%s\": %s", fo__quote(q, sizeof q, file),
                   fo__pem_strerror(rc));
        return false;
    }
    bool ok = fo__pem_kind_ok(text, key);
    free(text);
    if (!ok) {
        fo__errorf(c, path, "\"%s\" holds no PEM %s", fo__quote(q, sizeof q, file),
                   key ? "private key" : "certificate");
        return false;
    }
    *out = fo__strdup(c, file);
    return *out != NULL;
}

/* "listen_tls": "host:port" like "listen" (no null: leave the key out instead). */
bool fo__parse_listen_tls(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                          const char *path, void *base, const void *up)
{
    struct fo_config *cfg = base;
    char host[64];
    if (!cJSON_IsString(v) ||
        fo_listen_parse(v->valuestring, host, sizeof host, &cfg->listen_tls_port) < 0) {
        fo__errorf(c, path,
                   "must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from "
                   "0 to 65535");
        return false;
    }
    free(cfg->listen_tls_host);
    cfg->listen_tls_host = fo__strdup(c, host);
    return cfg->listen_tls_host != NULL;
}

/* "server_name": a DNS name (SNI carries no address): letters, digits, '-' and '.' in
 * labels of 1 to 63, at most 253 in all. */
bool fo__parse_server_name(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up)
{
    struct fo_backend_conf *b = base;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    size_t n = s ? strlen(s) : 0;
    bool ok = n > 0 && n <= 253 && s[0] != '.' && s[n - 1] != '.';
    size_t label = 0;
    bool digits_only = true;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            ok = label > 0 && s[i - 1] != '-';
            label = 0;
            continue;
        }
        ok = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch == '-' && label > 0)) &&
             ++label <= 63;
        digits_only = digits_only && ch >= '0' && ch <= '9';
    }
    ok = ok && !digits_only; /* 10.0.0.1 is an address, not a name. */
    if (!ok) {
        fo__errorf(c, path, "must be a DNS host name such as \"api.internal\"");
        return false;
    }
    free(b->tls.server_name);
    b->tls.server_name = fo__strdup(c, s);
    return b->tls.server_name != NULL;
}

static bool is_https(const char *url)
{
    return url && strncmp(url, "https://", 8) == 0;
}

/* The checks of one backend's TLS keys, and the top-level ca_file as its default. */
static void backend_checks(struct fo__vctx *c, const char *bp, struct fo_backend_conf *b,
                           const char *ca_default)
{
    struct fo_backend_tls *t = &b->tls;
    char p[320];
    bool any = t->ca_file || t->client_cert_file || t->client_key_file || t->server_name ||
               t->insecure_skip_verify;
    if (any && b->url && !is_https(b->url)) {
        fo__errorf(c, bp,
                   "TLS keys (ca_file, client_cert_file, client_key_file, server_name, "
                   "insecure_skip_verify) need an https:// url");
        return;
    }
    if (!t->client_cert_file != !t->client_key_file) {
        fo__pathf(p, sizeof p, "%s.%s", bp,
                  t->client_cert_file ? "client_key_file" : "client_cert_file");
        fo__errorf(c, p, "missing: client_cert_file and client_key_file go together");
    }
    if (t->insecure_skip_verify && t->ca_file) {
        fo__pathf(p, sizeof p, "%s.insecure_skip_verify", bp);
        fo__errorf(c, p, "verification is off, so ca_file would not be used: give one of them");
    }
    if (!t->ca_file && ca_default && !t->insecure_skip_verify)
        t->ca_file = fo__strdup(c, ca_default);
}

/* Listener rules, and each backend's TLS keys. Run from the root check. */
void fo__tls_checks(struct fo__vctx *c, struct fo_config *cfg, uint64_t bad)
{
    uint64_t listen_bit = fo__field_bit(&fo__config_root, "listen");
    uint64_t ltls_bit = fo__field_bit(&fo__config_root, "listen_tls");
    uint64_t tls_bit = fo__field_bit(&fo__config_root, "tls");
    bool tls = cfg->tls.cert_file && cfg->tls.key_file;
    if (!(bad & (ltls_bit | tls_bit))) {
        if (cfg->listen_tls_host && !tls)
            fo__errorf(c, "listen_tls", "needs \"tls\" with cert_file and key_file");
        else if (tls && !cfg->listen_tls_host)
            fo__errorf(c, "tls", "needs \"listen_tls\" (the HTTPS address)");
    }
    if (!(bad & (listen_bit | ltls_bit | tls_bit)) && !cfg->listen_host && !cfg->listen_tls_host)
        fo__errorf(c, "listen", "is null and there is no listen_tls: at least one listener");
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        struct fo_endpoint_conf *e = &cfg->endpoints[i];
        for (size_t j = 0; j < e->nbackends; j++) {
            char bp[96];
            fo__pathf(bp, sizeof bp, "endpoints[%zu].backends[%zu]", i, j);
            backend_checks(c, bp, &e->backends[j], cfg->backend_tls.ca_file);
        }
    }
}

int fo_config_warnings(const struct fo_config *cfg, struct fo_buf *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *e = &cfg->endpoints[i];
        for (size_t j = 0; rc == 0 && j < e->nbackends; j++) {
            if (e->backends[j].tls.insecure_skip_verify)
                rc = fo_buf_printf(out,
                                   "endpoints[%zu].backends[%zu].insecure_skip_verify: TLS "
                                   "verification of backend \"%s\" is off\n",
                                   i, j, e->backends[j].name ? e->backends[j].name : "");
        }
    }
    return rc;
}
