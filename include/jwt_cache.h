/* jwt_cache.h -- a bounded memo of the tokens whose signature was verified.
 *
 * libjwt 1.x takes a key as PEM text and decodes it on every call; with
 * OpenSSL 3's decoders that costs about 0.75 ms for an RS256 token and 1 ms
 * for ES256 (bench/README.md), thirty times the signature check itself. A
 * client sends the same token on request after request, so the signature of
 * a token already verified with the same key is not checked again: the memo
 * holds the SHA-256 of the whole token text and the key it verified with.
 * Only a verified token is ever put in, and only the signature is skipped:
 * the header, the claims and exp/nbf/iat are judged on every request. It is
 * direct-mapped (a new token replaces the one in its slot) and belongs to
 * one auth of one config, so a reload (new keys) starts empty.
 * Ownership: created and destroyed with its auth config.
 * Threads: has/put are thread-safe (one mutex, held for a 32-byte compare). */
#ifndef FO_JWT_CACHE_H
#define FO_JWT_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#define FO_JWT_CACHE_SLOTS 4096

struct fo_jwt_cache; /* Opaque. */

/* Returns 0 and sets *out, or -ENOMEM. */
int fo_jwt_cache_create(struct fo_jwt_cache **out);

/* NULL is a no-op. */
void fo_jwt_cache_destroy(struct fo_jwt_cache *c);

/* The SHA-256 of n bytes of 'token' into d. */
void fo_jwt_cache_digest(const char *token, size_t n, unsigned char d[32]);

/* True when the token of digest 'd' was put with 'key'. NULL 'c': false. */
bool fo_jwt_cache_has(struct fo_jwt_cache *c, const unsigned char d[32], const void *key);

/* Remember that the token of digest 'd' verified with 'key'. NULL 'c': no-op. */
void fo_jwt_cache_put(struct fo_jwt_cache *c, const unsigned char d[32], const void *key);

#endif /* FO_JWT_CACHE_H */
