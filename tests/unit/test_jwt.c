/* test_jwt.c -- jwt_verify.c and its memo of verified tokens (jwt_cache.c), b64url.c.
 *
 * HS256 tokens are built here with OpenSSL's HMAC, so every case is exact: the memo skips
 * only the signature of a token that verified with the same key, never the claims; a
 * token one byte different is checked again; another auth (another memo) checks for
 * itself. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64url.h"
#include "jwt_verify.h"

static const char secret[] = "0123456789abcdef0123456789abcdef";

static void b64(const unsigned char *p, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* An HS256 token of 'claims' signed with 'key'. */
static void token(const char *claims, const char *key, char *out)
{
    const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"hs1\"}";
    char h[128], c[1024];
    b64((const unsigned char *)hdr, strlen(hdr), h);
    b64((const unsigned char *)claims, strlen(claims), c);
    sprintf(out, "%s.%s", h, c);
    unsigned char mac[32];
    unsigned len = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)out, strlen(out), mac, &len);
    strcat(out, ".");
    b64(mac, len, out + strlen(out));
}

static void conf(struct fo_jwt_conf *jc, const char *key)
{
    char k[64], text[256], err[256];
    b64((const unsigned char *)key, strlen(key), k);
    snprintf(text, sizeof text, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"hs1\",\"k\":\"%s\"}]}", k);
    memset(jc, 0, sizeof *jc);
    assert_int_equal(fo_jwks_parse(&jc->keys, text, strlen(text), err, sizeof err), 0);
    assert_int_equal(fo_jwt_cache_create(&jc->verified), 0);
    jc->algs = 1u << FO_JWT_HS256;
}

static int verify(const struct fo_jwt_conf *jc, const char *tok, int64_t now,
                  enum fo_auth_reason *why)
{
    struct fo_jwt_claims cl;
    int rc = fo_jwt_verify(jc, tok, strlen(tok), now, &cl, why);
    fo_jwt_claims_clear(&cl);
    return rc;
}

static void test_memo_skips_the_signature_only(void **state)
{
    (void)state;
    struct fo_jwt_conf jc;
    conf(&jc, secret);
    char tok[2048];
    token("{\"sub\":\"a\",\"exp\":1000}", secret, tok);
    enum fo_auth_reason why;
    assert_int_equal(verify(&jc, tok, 900, &why), 0);
    assert_int_equal(verify(&jc, tok, 900, &why), 0);        /* From the memo. */
    assert_int_equal(verify(&jc, tok, 2000, &why), -EACCES); /* exp is judged every time. */
    assert_int_equal(why, FO_AUTH_EXPIRED);
    /* One byte of the signature changed: checked again, refused. */
    char bad[2048];
    strcpy(bad, tok);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(&jc, bad, 900, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_SIGNATURE);
    /* Another auth with another secret has its own memo. */
    struct fo_jwt_conf other;
    conf(&other, "another secret of at least 32 bytes!");
    assert_int_equal(verify(&other, tok, 900, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_SIGNATURE);
    fo_jwt_conf_clear(&jc);
    fo_jwt_conf_clear(&other);
}

static void test_refusals(void **state)
{
    (void)state;
    struct fo_jwt_conf jc;
    conf(&jc, secret);
    jc.leeway_s = 10;
    char tok[2048];
    enum fo_auth_reason why;
    token("{\"nbf\":1005}", secret, tok);
    assert_int_equal(verify(&jc, tok, 1000, &why), 0); /* Within the leeway. */
    token("{\"nbf\":1011}", secret, tok);
    assert_int_equal(verify(&jc, tok, 1000, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_NOT_YET_VALID);
    token("{\"a\":1,\"a\":2}", secret, tok);
    assert_int_equal(verify(&jc, tok, 1000, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_MALFORMED);
    token("{\"exp\":\"soon\"}", secret, tok);
    assert_int_equal(verify(&jc, tok, 1000, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_MALFORMED);
    assert_int_equal(verify(&jc, "a.b", 1000, &why), -EACCES);
    assert_int_equal(why, FO_AUTH_MALFORMED);
    fo_jwt_conf_clear(&jc);
}

static void test_b64url_is_strict(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n;
    assert_int_equal(fo_b64url_decode("QQ", 2, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(fo_b64url_decode("QR", 2, out, &n), -EINVAL);   /* Leftover bits. */
    assert_int_equal(fo_b64url_decode("QQ==", 4, out, &n), -EINVAL); /* Padding. */
    assert_int_equal(fo_b64url_decode("Q", 1, out, &n), -EINVAL);
    assert_int_equal(fo_b64url_decode("+/8A", 4, out, &n), -EINVAL); /* Not the URL alphabet. */
    assert_int_equal(fo_b64url_decode("-_8A", 4, out, &n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_skips_the_signature_only),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_b64url_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
