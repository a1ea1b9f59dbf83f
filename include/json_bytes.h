/* json_bytes.h -- byte-level scanning shared by json.c (the validator) and json_raw.c (raw
 * access to validated values): word-at-a-time (SWAR) masks, their 16-byte SSE2 forms and
 * the block questions the validator's fast paths ask (first_str_stop, first_non_digit),
 * whitespace, digits, UTF-8 sequences, \u escapes. Private to those two files; everything
 * is static inline. Threads: pure functions. */
#ifndef FO_JSON_BYTES_H
#define FO_JSON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define LOW7S 0x7f7f7f7f7f7f7f7fULL

/* SWAR (SIMD within a register). A word holds 8 input bytes, byte i of the
 * input in bits 8i..8i+7 (little-endian order; big-endian hosts swap), so
 * the first flagged byte is the lowest set bit and ctz(mask) / 8 its index.
 * The masks below flag a byte by setting its bit 7. Two borrow-free forms:
 * - (v - ONES) & HIGHS ORed with the raw bytes: for a byte < 0x80, v - 1 sets
 *   bit 7 exactly when v is 0, or when a borrow comes in from the byte below;
 *   that borrow only happens below a flagged byte, so the lowest flag is
 *   exact even though higher ones may be spurious. That is all a "find the
 *   first" scan needs.
 * - ((t & LOW7S) + k) | t: the add cannot carry out of a byte (at most
 *   0x7f + 0x7f), so every byte is flagged exactly, used where the whole
 *   word's answer matters. */
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

static inline unsigned first_byte(uint64_t mask) /* mask != 0 */
{
    return (unsigned)__builtin_ctzll(mask) >> 3;
}

/* Bytes that end plain string content: below 0x20, '"', '\\', >= 0x80. The
 * 0x02 flip maps '"' (0x22) to 0x20 and keeps 0x00..0x1f among themselves
 * (0x20 and 0x21 go to 0x22 and 0x23), so one "below 0x21" test covers
 * controls and the quote; the backslash needs its own zero test, and bytes
 * >= 0x80 flag themselves. First-flag exact (see above). */
static inline uint64_t str_stops(uint64_t x)
{
    uint64_t cq = (x ^ (ONES * 0x02)) - ONES * 0x21;
    uint64_t bs = (x ^ (ONES * '\\')) - ONES;
    return (cq | bs | x) & HIGHS;
}

/* Bytes that are not '0'..'9', every one exact: t = x ^ '0' is 0..9 for a
 * digit; (t & 0x7f) + 0x76 reaches bit 7 from 10 up, and t itself from 0x80. */
static inline uint64_t non_digits(uint64_t x)
{
    uint64_t t = x ^ (ONES * '0');
    return (((t & LOW7S) + ONES * (0x80 - 10)) | t) & HIGHS;
}

static inline bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Runs of spaces (indentation) go a word at a time: x ^ "        " is zero
 * in exactly the space bytes, so its lowest nonzero byte is the first
 * non-space. The byte loop handles the rest, including '\n' and tabs. */
static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t c = *p;
        if (c == ' ' && end - p >= 8) {
            uint64_t v = load64(p) ^ (ONES * ' ');
            if (!v) {
                p += 8;
                continue;
            }
            p += first_byte(v); /* >= 1: the first byte is a space. */
            continue;
        }
        if (!is_ws(c))
            break;
        p++;
    }
    return p;
}

static inline bool is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
}

/* Past the digits starting at p. */
static inline const uint8_t *skip_digits(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 8) {
        uint64_t m = non_digits(load64(p));
        if (m)
            return p + first_byte(m);
        p += 8;
    }
    while (p < end && is_digit(*p))
        p++;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), per the
 * table in RFC 3629 section 4. Sets *ok; when the sequence is ill-formed the
 * length is that of its maximal subpart (>= 1), the bytes one U+FFFD replaces. */
static inline size_t utf8_seq(const uint8_t *p, const uint8_t *end, bool *ok)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xbf; /* Range of the first continuation byte. */
    size_t need;                  /* Continuation bytes. */

    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* Overlong below U+0800. */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF are not characters. */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* Overlong below U+10000. */
        else if (c == 0xf4)
            hi = 0x8f; /* Above U+10FFFF. */
    } else {
        *ok = false; /* Continuation byte, C0/C1 overlong lead, or F5..FF. */
        return 1;
    }
    size_t avail = (size_t)(end - p) - 1;
    if (avail < 1 || p[1] < lo || p[1] > hi) {
        *ok = false;
        return 1;
    }
    for (size_t i = 2; i <= need; i++) {
        if (i > avail || (p[i] & 0xc0) != 0x80) {
            *ok = false;
            return i;
        }
    }
    *ok = true;
    return need + 1;
}

/* Four hex digits at p (caller checked there are four bytes). */
static inline bool hex4(const uint8_t *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (unsigned)((c | 0x20) - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

#ifdef __SSE2__
/* Sixteen bytes at a time with SSE2, the x86-64 baseline: the same questions
 * as the word masks above, one bit per byte (bit i for p[i], from
 * _mm_movemask_epi8), every bit exact. The caller guarantees 16 readable
 * bytes at p; loads are unaligned. */
static inline __m128i load128(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Bytes that do not end plain string content (the complement of str_stops):
 * after the same 0x02 flip, signed "above 0x20" is false for the controls, the
 * quote and every byte >= 0x80 (negative); then the backslash is cleared. */
static inline unsigned str_plain16(const uint8_t *p)
{
    __m128i v = load128(p);
    __m128i high = _mm_cmpgt_epi8(_mm_xor_si128(v, _mm_set1_epi8(0x02)), _mm_set1_epi8(0x20));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(bs, high));
}

/* Digits: adding 0x50 takes '0'..'9' to -128..-119, the only bytes below -118. */
static inline unsigned digits16(const uint8_t *p)
{
    __m128i t = _mm_add_epi8(load128(p), _mm_set1_epi8(0x50));
    return (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(t, _mm_set1_epi8(-118)));
}
#endif

/* The validator's fast paths ask of the SCAN_W bytes at p (all readable)
 * where the first string stop, or the first byte that is not a digit, is:
 * its index, or SCAN_W when there is none. SSE2 answers for 16 bytes, other
 * hosts the word masks for 8. */
#ifdef __SSE2__
#define SCAN_W 16

/* Bits 16 and up of the complements are set: the index is at most 16. */
static inline size_t first_str_stop(const uint8_t *p)
{
    return (unsigned)__builtin_ctz(~str_plain16(p));
}

static inline size_t first_non_digit(const uint8_t *p)
{
    return (unsigned)__builtin_ctz(~digits16(p));
}
#else
#define SCAN_W 8

static inline size_t first_str_stop(const uint8_t *p)
{
    uint64_t m = str_stops(load64(p));
    return m ? first_byte(m) : 8;
}

static inline size_t first_non_digit(const uint8_t *p)
{
    uint64_t m = non_digits(load64(p));
    return m ? first_byte(m) : 8;
}
#endif

/* Bytes that end plain string content: controls, '"', '\\' and
 * every byte >= 0x80 (the start or middle of a multi-byte sequence). */
static const uint8_t str_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x90 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xa0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xb0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xc0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xd0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xe0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xf0 */
};

#endif /* FO_JSON_BYTES_H */
