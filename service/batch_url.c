/* batch_url.c -- which URLs an ad-hoc batch may call (see batch.h).
 *
 * The allow list holds "host:port" strings that are compared byte for byte with the URL's
 * authority, so no spelling of an address other than the listed one passes (no DNS, no IP
 * normalisation). Because the URL is later handed to libcurl, which has its own parser and
 * does normalise ("127.1" is 127.0.0.1 to curl), the URL is also parsed with curl's URL API
 * and refused unless curl sees the same scheme, host and port: a parser differential cannot
 * smuggle a different target past the comparison. The same check runs on a URL a
 * dependent call builds from a backend's answer (batch_deps.c). */
#include "batch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "token.h"

static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write a reason into msg (when given) and return rc. */
static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
{
    if (msg && msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Compare what libcurl reads from 'url' with our own reading. Returns 0 when
 * it agrees, -EINVAL otherwise. */
static int curl_agrees(const char *url, const char *scheme, const char *host, size_t hostlen,
                       const char *port, char *msg, size_t msglen)
{
    char *cscheme = NULL;
    char *chost = NULL;
    char *cport = NULL;
    int rc = -EINVAL;
    CURLU *u = curl_url();
    if (!u)
        return say(msg, msglen, -ENOMEM, "out of memory");
    CURLUcode cu = curl_url_set(u, CURLUPART_URL, url, CURLU_DISALLOW_USER);
    if (cu != CURLUE_OK) {
        say(msg, msglen, -EINVAL, "malformed URL (%s)", curl_url_strerror(cu));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &cscheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &chost, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &cport, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        say(msg, msglen, -EINVAL, "malformed URL");
        goto out;
    }
    if (strcmp(cscheme, scheme) != 0 || strlen(chost) != hostlen ||
        memcmp(chost, host, hostlen) != 0 || strcmp(cport, port) != 0) {
        char q[96];
        say(msg, msglen, -EINVAL, "ambiguous URL: libcurl reads the host as \"%s:%s\"",
            fo_quote_bytes(q, sizeof q, chost, strlen(chost)), cport);
        goto out;
    }
    rc = 0;
out:
    curl_free(cscheme);
    curl_free(chost);
    curl_free(cport);
    curl_url_cleanup(u);
    return rc;
}

int fo_batch_check_url(const char *url, const struct fo_aggregate_conf *conf, char *msg,
                       size_t msglen, size_t *index)
{
    char q[96];
    for (const char *c = url; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if (b <= 0x20 || b == 0x7f)
            return say(msg, msglen, -EINVAL, "URL contains a space or control character");
    }

    const char *scheme;
    const char *auth;
    if (strncasecmp(url, "http://", 7) == 0) {
        scheme = "http";
        auth = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        scheme = "https";
        auth = url + 8;
    } else {
        return say(msg, msglen, -EINVAL, "URL must start with http:// or https://");
    }

    size_t alen = strcspn(auth, "/?#");
    if (alen == 0)
        return say(msg, msglen, -EINVAL, "URL has no host");
    for (size_t i = 0; i < alen; i++) {
        unsigned char b = (unsigned char)auth[i];
        if (b == '@')
            return say(msg, msglen, -EINVAL, "user information (\"@\") is not allowed in URLs");
        if (b == '\\' || b == '%' || b >= 0x80)
            return say(msg, msglen, -EINVAL, "host \"%s\" contains a forbidden character",
                       fo_quote_bytes(q, sizeof q, auth, alen));
    }

    /* Split the authority into host and optional port. */
    const char *colon;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close || close == auth + 1)
            return say(msg, msglen, -EINVAL, "malformed IPv6 host");
        colon = close + 1 < auth + alen ? close + 1 : NULL;
        if (colon && *colon != ':')
            return say(msg, msglen, -EINVAL, "malformed IPv6 host");
    } else {
        colon = memchr(auth, ':', alen);
        if (colon && memchr(colon + 1, ':', (size_t)(auth + alen - colon - 1)))
            return say(msg, msglen, -EINVAL, "malformed host \"%s\"",
                       fo_quote_bytes(q, sizeof q, auth, alen));
        if (colon == auth || memchr(auth, ']', alen))
            return say(msg, msglen, -EINVAL, "malformed host \"%s\"",
                       fo_quote_bytes(q, sizeof q, auth, alen));
    }
    size_t hostlen = colon ? (size_t)(colon - auth) : alen;
    char port[8];
    if (colon) {
        size_t plen = (size_t)(auth + alen - colon - 1);
        if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen)
            return say(msg, msglen, -EINVAL, "malformed port in \"%s\"",
                       fo_quote_bytes(q, sizeof q, auth, alen));
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    } else {
        strcpy(port, scheme[4] == 's' ? "443" : "80");
    }

    /* The authority with its port made explicit, as the allow list spells it. */
    char hostport[300];
    if (hostlen + 1 + strlen(port) >= sizeof hostport)
        return say(msg, msglen, -EACCES, "host \"%s\" is not allowed",
                   fo_quote_bytes(q, sizeof q, auth, alen));
    memcpy(hostport, auth, hostlen);
    hostport[hostlen] = ':';
    strcpy(hostport + hostlen + 1, port);

    size_t i = 0;
    while (i < conf->nallow && strcmp(conf->allow_hosts[i], hostport) != 0)
        i++;
    if (i == conf->nallow)
        return say(msg, msglen, -EACCES, "host \"%s\" is not allowed",
                   fo_quote_bytes(q, sizeof q, hostport, strlen(hostport)));
    if (index)
        *index = i;
    return curl_agrees(url, scheme, auth, hostlen, port, msg, msglen);
}
