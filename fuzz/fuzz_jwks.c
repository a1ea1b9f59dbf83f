/* fuzz_jwks.c -- libFuzzer target for the keys-file parsers: the JWKS of a "jwt" auth
 * (jwks.c, b64url.c, OpenSSL's key building) and the API keys file (auth_config.c).
 *
 * Checks, for any input: fo_jwks_parse returns 0 with a set of 1 to 256 keys, or -EINVAL with
 * a reason; every key of a parsed set has key bytes, RSA and EC keys as PEM public keys, oct
 * secrets of at least 32 bytes, and kids unique; a set of more than one key has a kid on
 * every key, and fo_jwks_find finds each by its kid. fo__api_keys_parse returns 0 with named
 * entries or -EINVAL with a reason. Nothing leaks. Any violation aborts.
 *
 *   clang -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_jwks.c \
 *       service/jwks.c service/b64url.c service/auth_config.c service/auth.c \
 *       service/jwt_verify.c service/jwt_cache.c service/json.c service/json_raw.c service/buf.c service/token.c \
 *       service/cors.c \
 *       service/config.c service/config_backend.c service/config_io.c service/config_routes.c service/config_schema.c \
 *       service/tmpl.c service/path.c service/placeholder.c service/clock.c service/log.c \
 *       -ljwt -lcrypto -lcjson -lcurl -lmicrohttpd -o /tmp/fuzz_jwks */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_conf.h"
#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[512];
    err[0] = '\0';
    struct fo_jwks *s = NULL;
    int rc = fo_jwks_parse(&s, text, size, err, sizeof err);
    check(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        check(!s && err[0]);
    } else {
        size_t n = fo_jwks_count(s);
        check(n >= 1 && n <= 256);
        for (size_t i = 0; i < n; i++) {
            const struct fo_jwk *k = fo_jwks_key(s, i);
            check(k->key && k->key_len > 0);
            if (k->kty == FO_JWK_OCT)
                check(k->key_len >= 32);
            else
                check(strncmp((const char *)k->key, "-----BEGIN PUBLIC KEY-----", 26) == 0);
            check(n == 1 || k->kid);
            if (k->kid)
                check(fo_jwks_find(s, k->kid, strlen(k->kid)) == k);
        }
        fo_jwks_destroy(s);
    }
    struct fo_auth a;
    memset(&a, 0, sizeof a);
    err[0] = '\0';
    rc = fo__api_keys_parse(&a, text, size, err, sizeof err);
    check(rc == 0 || rc == -EINVAL);
    check(rc == 0 ? a.nkeys >= 1 : err[0] != '\0');
    for (size_t i = 0; i < a.nkeys; i++)
        check(a.keys[i].name && a.keys[i].name[0]);
    for (size_t i = 0; i < a.nkeys; i++)
        free(a.keys[i].name);
    free(a.keys);
    return 0;
}
