/* jwks.c -- a JSON Web Key Set read into verification keys (see jwks.h).
 *
 * The file is configuration, read once per config load, so cJSON reads it
 * (as it reads the config). RSA and EC public keys are built as EVP_PKEYs
 * from their parameters with OpenSSL 3's EVP_PKEY_fromdata and written out
 * as SubjectPublicKeyInfo PEM, the form libjwt 1.x takes for RS* and ES*;
 * an EC point is checked to lie on P-256 before it is accepted. */
#include "jwks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "b64url.h"

#define MAX_KEYS      256
#define MAX_MEMBER    2048 /* Base64url characters of one key member (a 8192-bit n is 1366). */
#define MIN_RSA_BITS  2048
#define MIN_OCT_BYTES 32
#define MAX_KID       256

struct fo_jwks {
    struct fo_jwk *keys; /* From calloc(): n of them. */
    size_t n;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Decode member 'name' of 'jwk' (base64url) into a new buffer. */
static int member(const cJSON *jwk, const char *name, const char *where, unsigned char **out,
                  size_t *len, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, name);
    if (!cJSON_IsString(v))
        return fail(err, errlen, "%s.%s: must be a base64url string", where, name);
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > MAX_MEMBER)
        return fail(err, errlen, "%s.%s: must be 1 to %d base64url characters", where, name,
                    MAX_MEMBER);
    unsigned char *b = malloc(FO_B64URL_DECODED_MAX(n));
    if (!b)
        return -ENOMEM;
    if (fo_b64url_decode(v->valuestring, n, b, len) < 0) {
        free(b);
        return fail(err, errlen, "%s.%s: not base64url (RFC 4648 section 5, no padding)", where,
                    name);
    }
    *out = b;
    return 0;
}

/* An EVP_PKEY as SubjectPublicKeyInfo PEM text. */
static int to_pem(EVP_PKEY *pk, struct fo_jwk *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return -ENOMEM;
    int rc = -ENOMEM;
    char *data;
    if (PEM_write_bio_PUBKEY(bio, pk) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        k->key = malloc((size_t)n + 1);
        if (k->key) {
            memcpy(k->key, data, (size_t)n);
            k->key[n] = '\0';
            k->key_len = (size_t)n;
            rc = 0;
        }
    }
    BIO_free(bio);
    return rc;
}

/* Build a public key of 'type' from 'params'; checks it when 'check'. */
static EVP_PKEY *from_params(const char *type, OSSL_PARAM *params, bool check)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1 && check) {
        EVP_PKEY_CTX *cc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (!cc || EVP_PKEY_public_check(cc) != 1) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
        EVP_PKEY_CTX_free(cc);
    }
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static int rsa_key(const cJSON *jwk, const char *where, struct fo_jwk *k, char *err, size_t errlen)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    int rc = member(jwk, "n", where, &n, &nlen, err, errlen);
    if (rc == 0)
        rc = member(jwk, "e", where, &e, &elen, err, errlen);
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk = NULL;
    if (rc < 0)
        goto out;
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    rc = -ENOMEM;
    if (!bn || !be)
        goto out;
    if (BN_num_bits(bn) < MIN_RSA_BITS) {
        rc = fail(err, errlen, "%s.n: an RSA key of %d bits; at least %d are needed", where,
                  BN_num_bits(bn), MIN_RSA_BITS);
        goto out;
    }
    if (BN_num_bits(be) < 2 || !BN_is_odd(be)) {
        rc = fail(err, errlen, "%s.e: not an RSA public exponent", where);
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!params)
        goto out;
    pk = from_params("RSA", params, false);
    if (!pk) {
        rc = fail(err, errlen, "%s: OpenSSL refuses this RSA key", where);
        goto out;
    }
    rc = to_pem(pk, k);
out:
    EVP_PKEY_free(pk);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return rc;
}

static int ec_key(const cJSON *jwk, const char *where, struct fo_jwk *k, char *err, size_t errlen)
{
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0)
        return fail(err, errlen, "%s.crv: must be \"P-256\" (the curve of ES256)", where);
    unsigned char *x = NULL, *y = NULL;
    size_t xlen = 0, ylen = 0;
    int rc = member(jwk, "x", where, &x, &xlen, err, errlen);
    if (rc == 0)
        rc = member(jwk, "y", where, &y, &ylen, err, errlen);
    OSSL_PARAM params[3];
    unsigned char point[65];
    EVP_PKEY *pk = NULL;
    if (rc < 0)
        goto out;
    if (xlen != 32 || ylen != 32) {
        rc = fail(err, errlen, "%s: x and y must be 32 bytes each for P-256", where);
        goto out;
    }
    point[0] = 0x04; /* Uncompressed: 04 || x || y. */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    static char group[] = "prime256v1";
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
    params[2] = OSSL_PARAM_construct_end();
    pk = from_params("EC", params, true);
    if (!pk) {
        rc = fail(err, errlen, "%s: x, y is not a point on P-256", where);
        goto out;
    }
    rc = to_pem(pk, k);
out:
    EVP_PKEY_free(pk);
    free(x);
    free(y);
    return rc;
}

static int oct_key(const cJSON *jwk, const char *where, struct fo_jwk *k, char *err, size_t errlen)
{
    int rc = member(jwk, "k", where, &k->key, &k->key_len, err, errlen);
    if (rc == 0 && k->key_len < MIN_OCT_BYTES)
        rc = fail(err, errlen, "%s.k: a secret of %zu bytes; at least %d are needed", where,
                  k->key_len, MIN_OCT_BYTES);
    return rc;
}

/* Members a verification key must not carry (RFC 7518 6.3.2, 6.2.2). */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", NULL};

/* Algorithms a JWK's own "alg" may name, by key type. */
static bool alg_fits(enum fo_jwk_kty kty, const char *alg)
{
    static const char *const rsa[] = {"RS256", "RS384", "RS512", NULL};
    static const char *const oct[] = {"HS256", "HS384", "HS512", NULL};
    if (kty == FO_JWK_EC)
        return strcmp(alg, "ES256") == 0;
    for (const char *const *a = kty == FO_JWK_RSA ? rsa : oct; *a; a++)
        if (strcmp(*a, alg) == 0)
            return true;
    return false;
}

static int one_key(const cJSON *jwk, const char *where, struct fo_jwk *k, char *err, size_t errlen)
{
    if (!cJSON_IsObject(jwk))
        return fail(err, errlen, "%s: must be an object (a JWK)", where);
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
    if (!cJSON_IsString(kty))
        return fail(err, errlen, "%s.kty: must be \"RSA\", \"EC\" or \"oct\"", where);
    if (strcmp(kty->valuestring, "RSA") == 0)
        k->kty = FO_JWK_RSA;
    else if (strcmp(kty->valuestring, "EC") == 0)
        k->kty = FO_JWK_EC;
    else if (strcmp(kty->valuestring, "oct") == 0)
        k->kty = FO_JWK_OCT;
    else
        return fail(err, errlen, "%s.kty: must be \"RSA\", \"EC\" or \"oct\"", where);
    if (k->kty != FO_JWK_OCT)
        for (const char *const *m = private_members; *m; m++)
            if (cJSON_GetObjectItemCaseSensitive(jwk, *m))
                return fail(err, errlen,
                            "%s.%s: a private key member; the keys file takes public keys only",
                            where, *m);
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
    if (kid &&
        (!cJSON_IsString(kid) || kid->valuestring[0] == '\0' || strlen(kid->valuestring) > MAX_KID))
        return fail(err, errlen, "%s.kid: must be a string of 1 to %d bytes", where, MAX_KID);
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
    if (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig") != 0))
        return fail(err, errlen, "%s.use: must be \"sig\" when given", where);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
    if (alg && (!cJSON_IsString(alg) || !alg_fits(k->kty, alg->valuestring)))
        return fail(err, errlen, "%s.alg: not an algorithm for a key of type \"%s\"", where,
                    kty->valuestring);
    if (kid && !(k->kid = strdup(kid->valuestring)))
        return -ENOMEM;
    if (alg && !(k->alg = strdup(alg->valuestring)))
        return -ENOMEM;
    if (k->kty == FO_JWK_RSA)
        return rsa_key(jwk, where, k, err, errlen);
    if (k->kty == FO_JWK_EC)
        return ec_key(jwk, where, k, err, errlen);
    return oct_key(jwk, where, k, err, errlen);
}

int fo_jwks_parse(struct fo_jwks **out, const char *text, size_t n, char *err, size_t errlen)
{
    *out = NULL;
    if (memchr(text, '\0', n))
        return fail(err, errlen, "NUL byte in the text");
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root)
        return fail(err, errlen, "not valid JSON");
    int rc = 0;
    struct fo_jwks *s = calloc(1, sizeof *s);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!s) {
        rc = -ENOMEM;
        goto out;
    }
    if (!cJSON_IsObject(root) || !cJSON_IsArray(keys) || !keys->child) {
        rc = fail(err, errlen, "keys: must be a non-empty array of JWKs");
        goto out;
    }
    size_t count = (size_t)cJSON_GetArraySize(keys);
    if (count > MAX_KEYS) {
        rc = fail(err, errlen, "keys: at most %d keys", MAX_KEYS);
        goto out;
    }
    s->keys = calloc(count, sizeof *s->keys);
    if (!s->keys) {
        rc = -ENOMEM;
        goto out;
    }
    for (const cJSON *k = keys->child; k && rc == 0; k = k->next) {
        char where[32];
        snprintf(where, sizeof where, "keys[%zu]", s->n);
        struct fo_jwk *key = &s->keys[s->n++];
        rc = one_key(k, where, key, err, errlen);
        for (size_t j = 0; rc == 0 && key->kid && j + 1 < s->n; j++)
            if (s->keys[j].kid && strcmp(s->keys[j].kid, key->kid) == 0)
                rc = fail(err, errlen, "%s.kid: duplicate of keys[%zu].kid", where, j);
        if (rc == 0 && !key->kid && count > 1)
            rc = fail(err, errlen, "%s.kid: needed when the set holds more than one key", where);
    }
out:
    cJSON_Delete(root);
    if (rc < 0) {
        fo_jwks_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

const struct fo_jwk *fo_jwks_find(const struct fo_jwks *s, const char *kid, size_t n)
{
    if (!kid)
        return s->n == 1 ? &s->keys[0] : NULL;
    for (size_t i = 0; i < s->n; i++) {
        const char *k = s->keys[i].kid;
        if (k && strlen(k) == n && memcmp(k, kid, n) == 0)
            return &s->keys[i];
    }
    return NULL;
}

size_t fo_jwks_count(const struct fo_jwks *s)
{
    return s->n;
}

const struct fo_jwk *fo_jwks_key(const struct fo_jwks *s, size_t i)
{
    return &s->keys[i];
}

void fo_jwks_destroy(struct fo_jwks *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i].kid);
        free(s->keys[i].alg);
        if (s->keys[i].key) /* A secret: wipe it before it goes back to the heap. */
            OPENSSL_cleanse(s->keys[i].key, s->keys[i].key_len);
        free(s->keys[i].key);
    }
    free(s->keys);
    free(s);
}
