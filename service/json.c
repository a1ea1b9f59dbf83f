/* json.c -- JSON validation. See json.h (raw access to validated values: json_raw.c).
 *
 * Why hand-written: fanout embeds backend bodies byte for byte, so it needs a
 * validator, not a tree. cJSON (linked for the configuration) parses numbers
 * into doubles, so 12345678901234567890 would come back as 12345678901234567000,
 * and it allocates a node per value. This file checks the grammar in one pass
 * over the caller's bytes, never allocates, never recurses, and caps depth.
 *
 * Every backend body passes through fo_json_validate once, so it is written
 * for the common case of compact, token-dense bodies: 3.4 to 3.9 instructions
 * a byte on bench/data (bash bench/probes/json_speed.sh, counted by callgrind;
 * 7.9 to 8.8 for the word-at-a-time state machine before it, 14 for the byte
 * loop before that):
 * - The grammar is a flat state machine jumped between with goto. A value's
 *   first byte picks its code through a class table and a table of label
 *   addresses (GNU C's computed goto); where a value's end goes (after_obj,
 *   after_arr, after_top) is a label held in 'after', switched at every
 *   bracket, so a member pays no test of what holds it. The nesting is a byte
 *   a level on the C stack, hence the cap FO_JSON_MAX_DEPTH.
 * - Names, strings and digit runs are classified SCAN_W bytes at a time
 *   (json_bytes.h: 16 with SSE2, the x86-64 baseline, elsewhere 8 in a
 *   uint64_t). Only quotes, escapes, controls and bytes >= 0x80 stop a string
 *   block, and UTF-8 is only decoded when such a byte appears.
 * - The fast paths never compare against the end: a check per value (the
 *   zone) leaves LOOKAHEAD readable bytes ahead. Past the zone the body's last
 *   bytes are copied to the stack, padded with NUL bytes that stop every fast
 *   path, and reading goes on there, so nothing past p+len is ever read.
 *   Whatever they cannot decide within that distance (long tokens, escapes,
 *   UTF-8, exponents, whitespace) goes to the general code, which compares
 *   against the end as the validator before did, with the same verdicts. */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_bytes.h"

/* What the first byte of a value makes it; whitespace is a class too. */
enum { V_BAD, V_WS, V_OBJ, V_ARR, V_STR, V_ZERO, V_DIGIT, V_MINUS, V_TRUE, V_FALSE, V_NULL };

/* What holds the value being read: the top level, an object or an array. */
enum { K_TOP, K_OBJ, K_ARR };

/* Bytes after a number's first block of integer digits that call for a closer
 * look: a fraction or exponent, or a digit (when the block was all digits). */
static const uint8_t num_more[256] = {
    ['.'] = 1, ['e'] = 1, ['E'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
};

/* The stop byte at p inside a string is not the closing quote: a multi-byte
 * UTF-8 sequence, an escape, or an error. Returns the byte after it, or NULL.
 * Kept out of line so the block loops in scan_string_rest stay small. */
static __attribute__((noinline)) const uint8_t *string_stop(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = *p;
    if (c >= 0x80) {
        bool ok;
        size_t n = utf8_seq(p, end, &ok);
        return ok ? p + n : NULL;
    }
    if (c != '\\' || end - p < 2)
        return NULL; /* Unescaped control character, or a lone backslash. */
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u': {
        unsigned u, lo;
        if (end - p < 6 || !hex4(p + 2, &u))
            return NULL;
        p += 6;
        if (u >= 0xdc00 && u <= 0xdfff)
            return NULL; /* Low surrogate without a high one. */
        if (u >= 0xd800 && u <= 0xdbff) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xdc00 ||
                lo > 0xdfff)
                return NULL; /* High surrogate without a low one. */
            p += 6;
        }
        return p;
    }
    default:
        return NULL;
    }
}

/* The rest of a string body from p, byte by byte where needed: the general
 * case behind the fast paths. Returns the byte after the closing quote, or NULL. */
static __attribute__((noinline)) const uint8_t *scan_string_rest(const uint8_t *p,
                                                                 const uint8_t *end)
{
    for (;;) {
#ifdef __SSE2__
        while (end - p >= 16) {
            unsigned m = ~str_plain16(p) & 0xffff;
            if (m) {
                p += __builtin_ctz(m);
                goto stop;
            }
            p += 16;
        }
#endif
        while (end - p >= 8) {
            uint64_t m = str_stops(load64(p));
            if (m) {
                p += first_byte(m);
                goto stop;
            }
            p += 8;
        }
        while (p < end && !str_special[*p])
            p++;
        if (p >= end)
            return NULL;
    stop:
        if (*p == '"')
            return p + 1;
        p = string_stop(p, end);
        if (!p)
            return NULL;
    }
}

/* Validate a number starting at p. Returns the byte after it, or NULL. What
 * follows is the caller's business ("01" stops after "0" and the caller
 * rejects the "1"). */
static inline const uint8_t *scan_number(const uint8_t *p, const uint8_t *end)
{
    if (*p == '-') {
        p++;
        if (p == end)
            return NULL;
    }
    if (*p == '0')
        p++;
    else if (is_digit(*p))
        p = skip_digits(p + 1, end);
    else
        return NULL;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        p = skip_digits(p + 1, end);
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        p = skip_digits(p + 1, end);
    }
    return p;
}

/* ---- Fast paths ----------------------------------------------------------
 * The fast paths read a fixed distance ahead without comparing against the
 * end: at most LOOKAHEAD bytes past the position last checked against the
 * zone (CHECK_ZONE), which leaves that many bytes before the end. Near the end
 * the body's last bytes move to a padded copy (to_tail) and the same code
 * reads on into the padding. What they cannot decide in that distance (long
 * tokens, escapes, UTF-8, exponents, whitespace) goes to the general code
 * above, which compares against the end. */

/* The first string stop in the block at q, or q + SCAN_W: a string's second
 * block. Out of line for the same reason as scan_number_long. */
static __attribute__((noinline)) const uint8_t *next_str_stop(const uint8_t *q)
{
    return q + first_str_stop(q);
}

/* More than SCAN_W integer digits: the next block from q. Returns the byte
 * after the number, or NULL when it is longer still or has a fraction or an
 * exponent (reading those could go past LOOKAHEAD). Out of line: inlined, GCC
 * keeps the block constants in registers for it, and the common one-block
 * case pays for register copies (measured, about 0.1 instructions a byte). */
static __attribute__((noinline)) const uint8_t *scan_number_long(const uint8_t *q)
{
    size_t k = first_non_digit(q);
    q += k;
    if (k == SCAN_W || *q == '.' || (*q | 0x20) == 'e')
        return NULL;
    return q;
}

/* The rest of a number at q ('.', 'e' or 'E' after its integer digits).
 * Returns the byte after the number, or NULL for an exponent, a '.' without
 * digits or a block of fraction digits: scan_number decides those from the
 * number's start. */
static inline const uint8_t *number_more(const uint8_t *q)
{
    if (*q == '.') {
        size_t f = first_non_digit(q + 1);
        if (f - 1 >= SCAN_W - 1)
            return NULL; /* No digit (f is 0), or a whole block. */
        q += 1 + f;
    }
    return (*q | 0x20) == 'e' ? NULL : q;
}

/* The two bytes at p as one number, for comparing with PAIR(a, b). */
static inline unsigned pair_at(const uint8_t *p)
{
    uint16_t x;
    memcpy(&x, p, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap16(x);
#endif
    return x;
}
#define PAIR(a, b) ((unsigned)(a) | (unsigned)(b) << 8)

/* How far past a checked position the fast paths may read: the farthest
 * read, 53 bytes on, is after a comma and a name of up to 16 bytes with its
 * quotes and colon (20 bytes), in a string value's two blocks and the byte
 * after them (test_tail_boundary, under ASan, fails with 52 here). Also the
 * size of the copied tail and of its padding. */
#define LOOKAHEAD 64

/* Where the fast paths read near the end of the body: a copy of its last
 * bytes, padded with NUL bytes, which end every fast path (a NUL is no digit,
 * stops a string, and is no value, comma, colon or closer). */
struct tail {
    uint8_t buf[2 * LOOKAHEAD]; /* The body's last bytes, then padding. */
    const uint8_t *end;         /* Their end in buf. */
    size_t off;                 /* Offset in the body of buf[0]; SIZE_MAX before the move. */
};

/* Move p, in the body of 'len' bytes that ends at 'end', to the same byte of
 * a copy of its last min(len, LOOKAHEAD) bytes. */
static __attribute__((noinline)) const uint8_t *to_tail(struct tail *t, const uint8_t *p,
                                                        const uint8_t *end, size_t len)
{
    size_t n = len < LOOKAHEAD ? len : LOOKAHEAD;
    if (n == LOOKAHEAD) { /* The usual case, fixed sizes copied inline. */
        memcpy(t->buf, end - LOOKAHEAD, LOOKAHEAD);
        memset(t->buf + LOOKAHEAD, 0, LOOKAHEAD);
    } else {
        memcpy(t->buf, end - n, n);
        memset(t->buf + n, 0, sizeof t->buf - n);
    }
    t->end = t->buf + n;
    t->off = len - n;
    return t->buf + (p - (end - n));
}

/* Before a fast path reads on from p: near the end, move to the copy of the
 * tail (once: its zone lies past its end). */
#define CHECK_ZONE()                                                                               \
    do {                                                                                           \
        if (__builtin_expect(p >= zone, 0)) {                                                      \
            p = to_tail(&tail, p, end, len);                                                       \
            end = tail.end;                                                                        \
            zone = tail.buf + sizeof tail.buf;                                                     \
        }                                                                                          \
    } while (0)

int fo_json_validate(const char *s, size_t len, unsigned max_depth, struct fo_json_span *out)
{
    /* The first byte's class picks the code for a value (both tables in one
     * object, so that one register addresses them); where a value's end goes
     * (after_obj, after_arr or after_top) is the state of the container being
     * filled, switched at every bracket. */
    static const struct {
        const void *go[V_NULL + 1]; /* The code for each class. */
        uint8_t class_of[256];      /* The class of each first byte. */
    } on = {
        .go = {[V_BAD] = &&v_bad,
               [V_WS] = &&v_ws,
               [V_OBJ] = &&v_obj,
               [V_ARR] = &&v_arr,
               [V_STR] = &&v_str,
               [V_ZERO] = &&v_zero,
               [V_DIGIT] = &&v_digit,
               [V_MINUS] = &&v_minus,
               [V_TRUE] = &&v_true,
               [V_FALSE] = &&v_false,
               [V_NULL] = &&v_null},
        .class_of =
            {['\t'] = V_WS,   ['\n'] = V_WS,   ['\r'] = V_WS,   [' '] = V_WS,    ['{'] = V_OBJ,
             ['['] = V_ARR,   ['"'] = V_STR,   ['0'] = V_ZERO,  ['1'] = V_DIGIT, ['2'] = V_DIGIT,
             ['3'] = V_DIGIT, ['4'] = V_DIGIT, ['5'] = V_DIGIT, ['6'] = V_DIGIT, ['7'] = V_DIGIT,
             ['8'] = V_DIGIT, ['9'] = V_DIGIT, ['-'] = V_MINUS, ['t'] = V_TRUE,  ['f'] = V_FALSE,
             ['n'] = V_NULL},
    };
    static const void *const after_kind[] = {&&after_top, &&after_obj, &&after_arr};
    const void *after = &&after_top;
    uint8_t kinds[FO_JSON_MAX_DEPTH + 1]; /* kinds[d]: the container at depth d. */
    size_t depth = 0;
    struct tail tail;
    const uint8_t *q;
    size_t k;

    if (!s || len == 0)
        return -EINVAL;
    if (max_depth > FO_JSON_MAX_DEPTH)
        max_depth = FO_JSON_MAX_DEPTH;
    const uint8_t *p = (const uint8_t *)s;
    const uint8_t *end = p + len;
    const uint8_t *zone = len > LOOKAHEAD ? end - LOOKAHEAD : p;
    tail.off = SIZE_MAX;
    kinds[0] = K_TOP;
    if (*p <= ' ')
        p = skip_ws(p, end);
    const uint8_t *start = p; /* The value, in s. */

value: /* A value starts at p, maybe after whitespace. */
    CHECK_ZONE();
value_fast: /* The same, within LOOKAHEAD of a checked position. */
    goto *on.go[on.class_of[*p]];

v_bad:
    return -EINVAL; /* Also the padding: the body ended. */
v_ws:
    p = skip_ws(p + 1, end);
    goto value;
v_obj:
    if (depth >= max_depth)
        return -E2BIG;
    kinds[++depth] = K_OBJ;
    after = &&after_obj;
    p++;
    CHECK_ZONE();
    if (*p == '"')
        goto name;
    goto open_rest;
v_arr:
    if (depth >= max_depth)
        return -E2BIG;
    kinds[++depth] = K_ARR;
    after = &&after_arr;
    p++;
    CHECK_ZONE();
    if (*p == ']') {
        p++;
        goto close;
    }
    if (*p > ' ')
        goto value_fast; /* The first element. */
    goto open_rest;
v_str: /* Two blocks, then the general scan. */
    q = p + 1;
    k = first_str_stop(q);
    q += k;
    if (*q == '"') {
        p = q + 1;
        goto *after;
    }
    if (k == SCAN_W)
        goto string_long;
    p = scan_string_rest(q, end);
    goto value_end;
string_long: /* A second block. */
    q = next_str_stop(q);
    if (*q == '"') {
        p = q + 1;
        goto *after;
    }
    p = scan_string_rest(q, end);
    goto value_end;
v_zero: /* "01" ends after the 0 (number_more), and the 1 is rejected next. */
    q = p + 1;
    if (num_more[*q])
        goto number_more;
    p = q;
    goto *after;
v_digit:
    k = first_non_digit(p);
    q = p + k;
    if (num_more[*q]) {
        if (k == SCAN_W)
            goto number_long; /* *q may be a digit, and only then. */
        goto number_more;
    }
    p = q;
    goto *after;
number_more:
    q = number_more(q);
    if (!q)
        goto number_general;
    p = q;
    goto *after;
number_long: /* A second block, and no fraction (it could read too far). */
    q = p + SCAN_W;
    q = scan_number_long(q);
    if (!q)
        goto number_general;
    p = q;
    goto *after;
number_general:
v_minus:
    p = scan_number(p, end);
    goto value_end;
v_true: /* Five bytes are readable: within LOOKAHEAD of a check. */
    p = memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    goto value_end;
v_false:
    p = memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    goto value_end;
v_null:
    p = memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
value_end:
    if (!p)
        return -EINVAL;
    goto *after;

after_obj: /* A member's value ended at p: a comma, '}', or whitespace first. */
    CHECK_ZONE();
    if (pair_at(p) == PAIR(',', '"')) {
        p++;
        goto name; /* The usual ,"name" without spaces. */
    }
    if (*p == ',') {
        p++;
        goto key;
    }
    if (*p == '}') {
        p++;
        goto close;
    }
    goto after_other;
after_arr: /* An element ended at p: a comma, ']', or whitespace first. */
    CHECK_ZONE();
    if (*p == ',') {
        p++;
        goto value_fast;
    }
    if (*p == ']') {
        p++;
        goto close;
    }
    goto after_other;
after_top:   /* The top-level value ended at p: only whitespace may follow. */
after_other: /* Whitespace after a value, or an error, or (at the top) the end. */
    if (p < end && is_ws(*p)) {
        const uint8_t *vend = p;
        p = skip_ws(p + 1, end);
        if (p < end)
            goto *after; /* At a byte that is not whitespace. */
        if (depth > 0)
            return -EINVAL;
        p = vend; /* Trailing whitespace after the top-level value. */
        goto done;
    }
    if (p < end || depth > 0)
        return -EINVAL; /* A stray byte, or unclosed containers. */
    goto done;

open_rest: /* After an opening bracket, not at a name or element: whitespace or empty. */
    if (p < end && *p <= ' ')
        p = skip_ws(p, end);
    if (p < end && *p == (kinds[depth] == K_OBJ ? '}' : ']')) {
        p++;
        goto close; /* Empty: a complete value. */
    }
    if (kinds[depth] == K_OBJ)
        goto key;
    goto value; /* The first element. */

close: /* A container closed; p is past its closer. */
    after = after_kind[kinds[--depth]];
    goto *after;

key: /* A member name, maybe after whitespace. */
    if (p < end && *p != '"')
        p = skip_ws(p, end);
    if (p >= end || *p != '"')
        return -EINVAL;
    CHECK_ZONE();
name: /* p is at the opening quote of a name, within LOOKAHEAD of a check. */
    q = p + first_str_stop(p + 1) + 1;
    if (pair_at(q) == PAIR('"', ':')) {
        p = q + 2;
        goto value_fast;
    }
    p = scan_string_rest(q, end);
    if (!p)
        return -EINVAL;
    if (p < end && *p != ':')
        p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return -EINVAL;
    p++;
    goto value;

done:
    if (out) {
        out->p = (const char *)start;
        out->len = tail.off == SIZE_MAX
                       ? (size_t)(p - start)
                       : tail.off + (size_t)(p - tail.buf) - (size_t)(start - (const uint8_t *)s);
    }
    return 0;
}
