/* token.h -- the small lexical checks of HTTP, in one place.
 *
 * Field names and methods are tokens (RFC 9110 5.6.2); fanout takes methods
 * in upper case only (as every registered method is), at most
 * FO_MAX_METHOD_LEN bytes, so a method can never smuggle anything.
 * Threads: pure functions, thread-safe. */
#ifndef FO_TOKEN_H
#define FO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define FO_MAX_METHOD_LEN 32

/* A token character: A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~ */
bool fo_is_tchar(unsigned char c);

/* 's' (n bytes) is a non-empty token. */
bool fo_is_token(const char *s, size_t n);

/* 's' is a method fanout accepts: 1..FO_MAX_METHOD_LEN of A-Z. */
bool fo_is_method(const char *s);

/* A method whose request carries a body: POST, PUT, PATCH ('m' may be NULL: GET). */
bool fo_method_has_body(const char *m);

/* Write n bytes of 's' into 'dst' (dstlen >= 8) for an error message:
 * printable ASCII as it is, '"', '\\' and every other byte as \xNN, cut with
 * "..." when it does not fit. Returns dst. */
const char *fo_quote_bytes(char *dst, size_t dstlen, const char *s, size_t n);

#endif /* FO_TOKEN_H */
