/* tls_back.c -- TLS to backends: a call's TLS options on its curl easy handle (see
 * tls_back.h).
 *
 * Why CONNECT_TO for server_name: curl takes the TLS name (SNI and the certificate
 * check) from the URL's host and has no option to set it apart, so the URL must carry
 * the server name; CURLOPT_CONNECT_TO then sends the connection to the host and port the
 * config named, resolved by name as usual for each new connection. CURLOPT_RESOLVE would
 * need a numeric address fixed at load, and pinning an address is not what the key asks.
 * The Host header becomes the server name too, which is what a name-based TLS backend
 * expects (the name it serves and the certificate it shows). Connections are cached by
 * both names, so reuse works as for any other backend. */
#include "tls_back.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fo_tls_call_init(struct fo_tls_call *st, CURL *fresh)
{
    char *s = NULL;
    memset(st, 0, sizeof *st);
    if (curl_easy_getinfo(fresh, CURLINFO_CAINFO, &s) == CURLE_OK)
        st->def_cainfo = s;
    s = NULL;
    if (curl_easy_getinfo(fresh, CURLINFO_CAPATH, &s) == CURLE_OK)
        st->def_capath = s;
}

bool fo_tls_back_is_https(const char *url)
{
    return strncmp(url, "https://", 8) == 0;
}

/* The URL with 'name' as its host, and "name:port:host:port" for CONNECT_TO. */
static int rewrite(const char *url, const char *name, struct fo_tls_call *st)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = -ENOMEM;
    if (!u)
        return rc;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = -EINVAL;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &st->url, 0) != CURLUE_OK)
        goto out;
    char *line;
    if (asprintf(&line, "%s:%s:%s:%s", name, port, host, port) < 0)
        goto out;
    st->connect_to = curl_slist_append(NULL, line);
    free(line);
    if (st->connect_to)
        rc = 0;
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int fo_tls_back_apply(CURL *e, const struct fo_backend_tls *t, const char *url,
                      struct fo_tls_call *st, const char **use_url)
{
    *use_url = url;
    if (!fo_tls_back_is_https(url) || !t) {
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, NULL);
        if (fo_tls_back_is_https(url)) { /* No options: curl's defaults. */
            curl_easy_setopt(e, CURLOPT_CAINFO, st->def_cainfo);
            curl_easy_setopt(e, CURLOPT_CAPATH, st->def_capath);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
            curl_easy_setopt(e, CURLOPT_SSLCERT, NULL);
            curl_easy_setopt(e, CURLOPT_SSLKEY, NULL);
        }
        return 0;
    }
    if (t->server_name) {
        int rc = rewrite(url, t->server_name, st);
        if (rc < 0)
            return rc;
        *use_url = st->url;
    }
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, st->connect_to);
    /* A ca_file is the whole trust for that backend: not the system's CAs as well. */
    curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file ? t->ca_file : st->def_cainfo);
    curl_easy_setopt(e, CURLOPT_CAPATH, t->ca_file ? NULL : st->def_capath);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->insecure_skip_verify ? 0L : 2L);
    curl_easy_setopt(e, CURLOPT_SSLCERT, t->client_cert_file);
    curl_easy_setopt(e, CURLOPT_SSLKEY, t->client_key_file);
    return 0;
}

void fo_tls_call_clear(struct fo_tls_call *st)
{
    curl_free(st->url);
    curl_slist_free_all(st->connect_to);
    st->url = NULL;
    st->connect_to = NULL;
}
