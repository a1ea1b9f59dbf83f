/* buf.h -- growable byte buffer with a hard limit.
 *
 * Anything filled from the network is capped: a buffer is given the largest
 * size it may grow to, and an append past it fails with -E2BIG and leaves the
 * buffer as it was. The contents are always NUL-terminated (the NUL is not
 * counted in len and not in the limit).
 * Ownership: the buffer owns 'data' (from malloc()) until fo_buf_release().
 * Threads: a buffer belongs to one thread at a time; no locking. */
#ifndef FO_BUF_H
#define FO_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct fo_buf {
    char *data; /* From malloc(); NULL until the first append. */
    size_t len; /* Bytes used, excluding the terminating NUL. */
    size_t cap; /* Bytes allocated, including room for the NUL. */
    size_t max; /* Largest len allowed; appends beyond fail with -E2BIG. */
};

#define FO_BUF_UNLIMITED ((size_t)-1)

/* Start an empty buffer that may hold at most 'max' bytes. Allocates nothing. */
void fo_buf_init(struct fo_buf *b, size_t max);

/* Make room for 'extra' more bytes. Returns 0, -E2BIG (over max) or -ENOMEM. */
int fo_buf_reserve(struct fo_buf *b, size_t extra);

/* Make room for 'extra' more bytes in one allocation of just that size (plus
 * the NUL), for a size known ahead; a buffer with the room already is left as
 * it is. Same returns as fo_buf_reserve. */
int fo_buf_presize(struct fo_buf *b, size_t extra);

/* Append 'n' bytes. Returns 0, -E2BIG or -ENOMEM; on error nothing is appended. */
int fo_buf_append(struct fo_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. Same returns as fo_buf_append. */
int fo_buf_puts(struct fo_buf *b, const char *s);

/* Append one byte. Same returns as fo_buf_append. */
int fo_buf_putc(struct fo_buf *b, char c);

/* Append a decimal integer, or milliseconds with one decimal (fmt.h): the
 * hot path's numbers, without printf's engine. Same returns as fo_buf_append. */
int fo_buf_put_int(struct fo_buf *b, int64_t v);
int fo_buf_put_ms(struct fo_buf *b, double ms);

/* Append printf-style text. Same returns as fo_buf_append. */
int fo_buf_printf(struct fo_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fo_buf_vprintf(struct fo_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Forget the contents, keep the allocation. */
void fo_buf_reset(struct fo_buf *b);

/* Hand the data to the caller (caller frees with free(); never NULL: an empty
 * buffer yields an allocated ""), store its length in *len (may be NULL) and
 * leave the buffer empty. Returns NULL only when out of memory. */
char *fo_buf_release(struct fo_buf *b, size_t *len);

/* Free the data and leave the buffer empty (max is kept). */
void fo_buf_free(struct fo_buf *b);

#endif /* FO_BUF_H */
