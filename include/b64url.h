/* b64url.h -- base64url (RFC 4648 section 5) decoding, strict, for JWT and JWKS.
 *
 * JWS segments and JWK members are base64url without padding. The decoder
 * takes exactly that alphabet (A-Z a-z 0-9 - _), no padding, no whitespace,
 * and refuses a length that no encoding has (n % 4 == 1) or leftover bits
 * that are not zero, so one value has one spelling.
 * Threads: pure functions, thread-safe. */
#ifndef FO_B64URL_H
#define FO_B64URL_H

#include <stddef.h>

/* Bytes that decoding n characters gives at most. */
#define FO_B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)

/* Decode n characters of 's' into 'out' (room for FO_B64URL_DECODED_MAX(n)
 * bytes) and set *outlen. Returns 0 or -EINVAL. */
int fo_b64url_decode(const char *s, size_t n, unsigned char *out, size_t *outlen);

#endif /* FO_B64URL_H */
