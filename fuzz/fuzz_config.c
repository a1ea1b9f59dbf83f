/* fuzz_config.c -- libFuzzer target for config.c (and tmpl.c through it).
 *
 * Checks, for any input: fo_config_parse returns 0 with no error lines, or
 * -EINVAL with at least one "path: message\n" line and no config. A config
 * that parses holds what the readers rely on: every endpoint has a compiled
 * pattern, a method and at least one backend; every backend has a name
 * (unique, not "_fanout"), a compiled template, a method and "Name: value"
 * header lines without CR or LF; the aggregate is on exactly when it has
 * allow_hosts. Any violation aborts.
 *
 *   clang -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_config.c \
 *       service/config.c service/config_backend.c service/config_io.c service/config_routes.c service/config_schema.c \
 *       service/tmpl.c service/path.c service/placeholder.c service/forward.c service/token.c service/buf.c \
 *       service/auth_config.c service/auth.c service/cors.c service/jwks.c service/jwt_verify.c \
 *       service/jwt_cache.c service/b64url.c service/json.c service/json_raw.c service/config_tls.c \
 *       -lcjson -lmicrohttpd -ljwt -lcrypto -o /tmp/fuzz_config */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Every line is "path: message\n" with something on both sides. */
static void check_lines(const struct fo_buf *errors)
{
    check(errors->len > 0 && errors->data[errors->len - 1] == '\n');
    const char *p = errors->data;
    const char *end = errors->data + errors->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        check(nl != NULL);
        const char *sep = NULL;
        for (const char *q = p; q + 1 < nl && !sep; q++) {
            if (q[0] == ':' && q[1] == ' ')
                sep = q;
        }
        check(sep != NULL && sep > p && sep + 2 < nl);
        p = nl + 1;
    }
}

static void check_config(const struct fo_config *cfg)
{
    check(cfg->listen_host != NULL);
    check(cfg->workers >= 1 && cfg->server_threads >= 1);
    check(cfg->timeout_ms >= 1 && cfg->max_body_bytes >= 1 && cfg->max_response_bytes >= 1);
    check(cfg->max_json_depth >= 1);
    check((cfg->nendpoints == 0) == (cfg->endpoints == NULL));
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *e = &cfg->endpoints[i];
        check(e->path && e->pattern && e->method && e->nbackends >= 1);
        check(strcmp(fo_path_pattern(e->pattern), e->path) == 0);
        for (size_t j = 0; j < e->nbackends; j++) {
            const struct fo_backend_conf *b = &e->backends[j];
            check(b->name && b->name[0] && strcmp(b->name, "_fanout") != 0);
            check(b->url && b->tmpl && b->method);
            for (size_t k = 0; k < j; k++)
                check(strcmp(e->backends[k].name, b->name) != 0);
            for (size_t k = 0; k < b->nheaders; k++) {
                check(strpbrk(b->headers[k], "\r\n") == NULL);
                check(strstr(b->headers[k], ": ") != NULL);
            }
        }
    }
    const struct fo_aggregate_conf *a = &cfg->aggregate;
    check(a->path != NULL && a->path[0] == '/');
    check(a->enabled == (a->nallow > 0));
    check(a->max_requests >= 1 && a->timeout_ms >= 1);
    for (size_t i = 0; i < a->nallow; i++)
        check(strchr(a->allow_hosts[i], ':') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fo_buf errors;
    struct fo_config *cfg = (struct fo_config *)&errors; /* Must be overwritten. */
    fo_buf_init(&errors, 1 << 20);
    int rc = fo_config_parse(&cfg, (const char *)data, size, &errors);
    check(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        check(cfg != NULL && errors.len == 0);
        check_config(cfg);
    } else {
        check(cfg == NULL);
        check_lines(&errors);
    }
    fo_config_destroy(cfg);
    fo_buf_free(&errors);
    return 0;
}
