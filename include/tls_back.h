/* tls_back.h -- TLS to backends: a call's TLS options on its curl easy handle.
 *
 * A backend's TLS options (config.h's struct fo_backend_tls: CA bundle, client
 * certificate, server name, verification) reach the transfer through its call
 * (plan.h). This module sets them on the reused easy handle for each https
 * call, every one of them, so nothing of one backend's settings leaks into the
 * next call on the same handle; curl keeps a kept-alive connection only for
 * calls whose TLS settings match it, so reuse stays per backend.
 * A server_name is the URL's host for TLS and HTTP (SNI, certificate check,
 * Host), while the connection goes to the host the URL named: the URL is
 * rewritten to the server name and CURLOPT_CONNECT_TO maps it back.
 * Ownership: the options are borrowed (the config outlives the call); what a
 * call needs while it runs is in its struct fo_tls_call, cleared after.
 * Threads: a worker thread, on its own handles. */
#ifndef FO_TLS_BACK_H
#define FO_TLS_BACK_H

#include <curl/curl.h>
#include <stdbool.h>

#include "config.h"

/* One handle's TLS state: curl's defaults, and what the running call holds. */
struct fo_tls_call {
    const char *def_cainfo;        /* curl's built-in CA bundle (libcurl's static string). */
    const char *def_capath;        /* ... and CA directory: what verifies without ca_file. */
    char *url;                     /* From curl_url_get: the URL with server_name as host. */
    struct curl_slist *connect_to; /* "server_name:port:host:port" for CURLOPT_CONNECT_TO. */
};

/* Read curl's defaults from 'fresh' (a handle no option was set on) into 'st'. */
void fo_tls_call_init(struct fo_tls_call *st, CURL *fresh);

/* Set the TLS options of 't' (borrowed; NULL: the defaults) for a call to 'url' on 'e'.
 * *use_url is the URL to give curl ('url', or st->url with server_name). An http:// URL
 * only clears what an earlier call left (CONNECT_TO). Returns 0, -ENOMEM or -EINVAL (a
 * URL curl cannot parse); then clear 'st' anyway. */
int fo_tls_back_apply(CURL *e, const struct fo_backend_tls *t, const char *url,
                      struct fo_tls_call *st, const char **use_url);

/* Free what the call held (after curl is done with the transfer); the defaults stay. */
void fo_tls_call_clear(struct fo_tls_call *st);

/* True for an https:// URL. */
bool fo_tls_back_is_https(const char *url);

#endif /* FO_TLS_BACK_H */
