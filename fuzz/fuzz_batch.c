/* fuzz_batch.c -- libFuzzer target for batch.c (the POST /aggregate body).
 *
 * Checks, for any input: fo_batch_parse returns 0 with a batch, or -EINVAL
 * with no batch and a 400/403 error whose code is one of the stable ones.
 * An accepted batch holds at most max_requests calls with unique, non-empty
 * names, upper-case methods, header lines without CR/LF, bodies that are
 * valid JSON, timeouts within the cap, and URLs that pass the policy. The
 * input is also tried as a URL on its own: when the policy lets it through,
 * the host and port libcurl would connect to must be an allow_hosts entry.
 * Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_batch.c \
 *       service/batch.c service/json.c service/json_raw.c service/buf.c -lcurl -o /tmp/fuzz_batch */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "batch.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char h1[] = "127.0.0.1:9001", h2[] = "localhost:80", h3[] = "[::1]:443",
            h4[] = "example.com:8080", agg_path[] = "/aggregate";
static char *allow[] = {h1, h2, h3, h4};
static const struct fo_aggregate_conf conf = {
    .enabled = true,
    .path = agg_path,
    .allow_hosts = allow,
    .nallow = sizeof allow / sizeof *allow,
    .max_requests = 8,
    .timeout_ms = 1000,
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool listed(const char *hostport)
{
    for (size_t i = 0; i < conf.nallow; i++) {
        if (strcmp(conf.allow_hosts[i], hostport) == 0)
            return true;
    }
    return false;
}

/* Where libcurl would connect for 'url' must be listed. */
static void check_curl_target(const char *url)
{
    CURLU *u = curl_url();
    check(u != NULL);
    check(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK);
    char *host = NULL;
    char *port = NULL;
    check(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
    check(curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK);
    char hp[512];
    snprintf(hp, sizeof hp, "%s:%s", host, port);
    check(listed(hp));
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static void check_batch(const struct fo_batch *b)
{
    check(b->n >= 1 && b->n <= conf.max_requests);
    check(b->timeout_ms >= 1 && b->timeout_ms <= conf.timeout_ms);
    for (size_t i = 0; i < b->n; i++) {
        const struct fo_batch_req *r = &b->reqs[i];
        check(r->name && r->name[0] && strcmp(r->name, "_fanout") != 0);
        for (size_t j = 0; j < i; j++)
            check(strcmp(b->reqs[j].name, r->name) != 0);
        check(r->method && r->method[0]);
        for (const char *m = r->method; *m; m++)
            check(*m >= 'A' && *m <= 'Z');
        check(fo_batch_check_url(r->url, &conf, NULL, 0, NULL) == 0);
        check_curl_target(r->url);
        for (size_t j = 0; j < r->nheaders; j++)
            check(strpbrk(r->headers[j], "\r\n") == NULL);
        if (r->body)
            check(fo_json_validate(r->body, r->body_len, FO_JSON_MAX_DEPTH, NULL) == 0);
        check(r->timeout_ms >= 0 && r->timeout_ms <= b->timeout_ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fo_batch *b = (struct fo_batch *)&conf; /* Must be overwritten. */
    struct fo_batch_error err;
    memset(&err, 0, sizeof err);
    int rc = fo_batch_parse(&b, (const char *)data, size, &conf, FO_JSON_DEFAULT_DEPTH, &err);
    check(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        check(b != NULL);
        check_batch(b);
    } else {
        check(b == NULL);
        check(err.status == 400 || err.status == 403);
        check(err.code != NULL);
        check(strcmp(err.code, "invalid_json") == 0 || strcmp(err.code, "invalid_batch") == 0 ||
              strcmp(err.code, "too_many_requests") == 0 ||
              strcmp(err.code, "host_not_allowed") == 0);
        check((err.status == 403) == (strcmp(err.code, "host_not_allowed") == 0));
        check(memchr(err.message, '\0', sizeof err.message) != NULL);
    }
    fo_batch_destroy(b);

    /* The input as one URL. */
    char *url = malloc(size + 1);
    check(url != NULL);
    memcpy(url, data, size);
    url[size] = '\0';
    char msg[200];
    rc = fo_batch_check_url(url, &conf, msg, sizeof msg, NULL);
    check(rc == 0 || rc == -EINVAL || rc == -EACCES);
    check(memchr(msg, '\0', sizeof msg) != NULL);
    if (rc == 0)
        check_curl_target(url);
    free(url);
    return 0;
}
