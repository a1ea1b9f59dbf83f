/* tmpl_chars.h -- the lexical helpers path.c and tmpl.c share (placeholder names, %XX
 * digits, compile errors). Private to those two files. Threads: pure functions, except
 * fo__tmpl_fail, which writes only the caller's buffer. */
#ifndef FO_TMPL_CHARS_H
#define FO_TMPL_CHARS_H

#include <stdbool.h>
#include <stddef.h>

/* A character of a placeholder or parameter name: [A-Za-z0-9_]. */
static inline bool fo__tmpl_is_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* The value of hex digit 'c', or -1. */
static inline int fo__tmpl_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Write a reason into 'err' (errlen bytes, when given) and return -EINVAL (tmpl.c). */
int fo__tmpl_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* FO_TMPL_CHARS_H */
