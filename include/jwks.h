/* jwks.h -- a JSON Web Key Set (RFC 7517) read into verification keys.
 *
 * The keys file of a "jwt" auth is {"keys": [JWK, ...]} with RSA public keys
 * (n, e; at least 2048 bits), EC P-256 public keys (crv, x, y; the point is
 * checked to be on the curve) and "oct" secrets (k; at least 32 bytes, for
 * HS256/384/512). RSA and EC keys are turned into PEM text once, here, with
 * OpenSSL, because that is what libjwt verifies with. A key holding private
 * members (d, p, q, ...) is refused: the file is for verification only.
 * Every key needs a "kid" when the set holds more than one; kids are unique.
 * Ownership: a set owns its keys; free with fo_jwks_destroy.
 * Threads: a parsed set is immutable and may be read from any thread. */
#ifndef FO_JWKS_H
#define FO_JWKS_H

#include <stddef.h>

enum fo_jwk_kty {
    FO_JWK_RSA,
    FO_JWK_EC,  /* P-256 only. */
    FO_JWK_OCT, /* A shared secret. */
};

struct fo_jwk {
    char *kid;           /* From malloc(), or NULL when the JWK has none. */
    enum fo_jwk_kty kty; /* The key's type: decides which algorithms may use it. */
    char *alg;           /* The JWK's own "alg" (from malloc()), or NULL: any of its type. */
    unsigned char *key;  /* From malloc(): PEM text (NUL-terminated) or the secret. */
    size_t key_len;      /* Bytes of 'key' (without the NUL of PEM text). */
};

struct fo_jwks; /* Opaque. */

/* Parse 'text' (n bytes). Returns 0 and sets *out, or -EINVAL with a reason
 * (naming the JSON path inside the file, e.g. "keys[1].n: ...") in 'err', or
 * -ENOMEM. */
int fo_jwks_parse(struct fo_jwks **out, const char *text, size_t n, char *err, size_t errlen);

/* The key whose kid is the n bytes at 'kid'; with kid NULL, the only key of a
 * set of one. NULL when there is none. */
const struct fo_jwk *fo_jwks_find(const struct fo_jwks *s, const char *kid, size_t n);

/* Number of keys, and key i (< the count). */
size_t fo_jwks_count(const struct fo_jwks *s);
const struct fo_jwk *fo_jwks_key(const struct fo_jwks *s, size_t i);

/* NULL is a no-op. */
void fo_jwks_destroy(struct fo_jwks *s);

#endif /* FO_JWKS_H */
