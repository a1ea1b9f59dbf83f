/* fuzz_jwt.c -- libFuzzer target for the JWT verification front (jwt_verify.c, b64url.c)
 * and, through it, libjwt's decoding of what the front lets by.
 *
 * The input is a token, verified against a fixed JWKS (an RSA 2048 key "rsa1", an EC P-256
 * key "ec1", an oct secret "hs1": the seeds in fuzz/corpus/jwt/ are tokens signed with them,
 * valid or refused for one reason each). Checks, for any input: the result is 0, -EACCES or
 * -EPERM with a reason in range (FO_AUTH_CLAIMS exactly for -EPERM); on 0 the claims are a
 * JSON object inside a NUL-terminated text; forward_claims lines are "Name: value" with no
 * control byte but HTAB; nothing leaks. Any violation aborts.
 *
 *   clang -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_jwt.c \
 *       service/jwt_verify.c service/jwt_cache.c service/jwks.c service/b64url.c service/json.c service/json_raw.c \
 *       service/buf.c \
 *       -ljwt -lcrypto -lcjson -o /tmp/fuzz_jwt */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_text[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"use\":\"sig\",\"n\":\"3VAr86v8j2UZOky-"
    "Dd1tgtTqx0eb"
    "9y1cYQoUHd8eYrEcvBHnDGmigg_LWrRcREZlC_08bWEnA1Y0rajdaZyqICAPa_YKwMXBr1GLGxWWNCV9"
    "w79dhE62Y_gvXuIrvWcYp_IyFSZzaT9IlIa2Gy8cR1dy3D3MFkegK_Svyw3gUbO-YUwB0y6SCDyaqQTl"
    "f2-5GdZn59Qe6GbhhNXKJMvzmk84Ar-KBwBLl5mxlco4R3HZ_cGD29dZ0Xsn9kAa_6GELz2A0Ni--lhF"
    "8jC8FPAFILN40DrW0YBhp5aRNMPKeOf_5DHyPV1wplw7PrF6qoLS0Y2srZ2YNUit7uujmCmU5Q\",\"e\":"
    "\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"ec1\",\"crv\":\"P-256\",\"x\":\"nqYqqR0ReD7viFI_"
    "2NJQz35HUnhQ2"
    "NZrPTrLmjyBAZs\",\"y\":\"0cgdqRE4wH9l_GWdzFli_44ZECi4q92VrdGLX9wj15Q\"},{\"kty\":\"oct\","
    "\"kid\":\"hs1\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}";

static void check(bool ok)
{
    if (!ok)
        abort();
}

static struct fo_jwt_conf *conf(void)
{
    static struct fo_jwt_conf jc;
    static struct fo_jwt_rule rule;
    static struct fo_jwt_forward fwd[2];
    static char *members[] = {(char *)"read"};
    if (jc.keys)
        return &jc;
    char err[256];
    check(fo_jwks_parse(&jc.keys, jwks_text, sizeof jwks_text - 1, err, sizeof err) == 0);
    check(fo_jwt_cache_create(&jc.verified) == 0);
    jc.algs = (1u << FO_JWT_NALGS) - 1;
    jc.issuer = (char *)"https://issuer.test";
    jc.audience = (char *)"fanout-test";
    jc.leeway_s = 30;
    rule.claim = (char *)"scope";
    rule.kind = FO_JSON_ARRAY;
    rule.members = members;
    rule.nmembers = 1;
    jc.rules = &rule;
    jc.nrules = 1;
    fwd[0].header = (char *)"X-User";
    fwd[0].claim = (char *)"sub";
    fwd[1].header = (char *)"X-Aud";
    fwd[1].claim = (char *)"aud";
    jc.forward = fwd;
    jc.nforward = 2;
    return &jc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fo_jwt_conf *jc = conf();
    struct fo_jwt_claims cl;
    enum fo_auth_reason why = FO_AUTH_NREASONS;
    int rc = fo_jwt_verify(jc, (const char *)data, size, 1700000000, &cl, &why);
    check(rc == 0 || rc == -EACCES || rc == -EPERM);
    if (rc == -EACCES)
        check(why < FO_AUTH_NREASONS && why != FO_AUTH_CLAIMS && !cl.text);
    if (rc == -EPERM)
        check(why == FO_AUTH_CLAIMS);
    if (rc == 0 || rc == -EPERM) {
        check(cl.text && cl.obj.p && fo_json_kind(cl.obj) == FO_JSON_OBJECT);
        check(fo_json_validate(cl.obj.p, cl.obj.len, 64, NULL) == 0);
        char *lines[2];
        size_t n = 0;
        int lr = fo_jwt_forward_lines(jc, &cl, lines, &n);
        check(lr == 0 || lr == -EACCES);
        check(lr == 0 || n == 0);
        for (size_t i = 0; i < n; i++) {
            check(strncmp(lines[i], "X-", 2) == 0 && strstr(lines[i], ": "));
            for (const char *p = lines[i]; *p; p++)
                check((unsigned char)*p >= 0x20 ? *p != 0x7f : *p == '\t');
            free(lines[i]);
        }
    }
    fo_jwt_claims_clear(&cl);
    return 0;
}
