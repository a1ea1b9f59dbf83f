/* json.c -- JSON validation, raw iteration, string escaping. See json.h.
 *
 * Why hand-written: fanout embeds backend bodies byte for byte, so it needs a
 * validator, not a tree. cJSON (linked for the configuration) parses numbers
 * into doubles, so 12345678901234567890 would come back as 12345678901234567000,
 * and it allocates a node per value. This file checks the grammar in one pass
 * over the caller's bytes, never allocates, never recurses, and caps depth.
 *
 * Every backend body passes through fo_json_validate once, so it is written
 * for the common case of compact, token-dense bodies (about 8 instructions a
 * byte on bench/data, where the byte loop it replaced took 14; see
 * bench/probes/json_speed.sh):
 * - The grammar is a flat state machine (value, after a value, key) jumped
 *   between with goto; the container being filled is kept in a register
 *   ('closer') so a comma costs a compare, and the nesting is a bit stack on
 *   the C stack (1 = object, 0 = array), hence the cap FO_JSON_MAX_DEPTH.
 * - A value is dispatched on a 256-entry class table of its first byte, with
 *   whitespace as one more class, so compact input never calls skip_ws.
 * - Strings, digit runs and runs of spaces are scanned eight bytes at a time
 *   in a uint64_t (SWAR, below); only quotes, escapes and bytes >= 0x80 leave
 *   the word loop, and UTF-8 is only decoded when such a byte appears.
 * - Words are loaded with memcpy (no alignment or aliasing assumptions) and
 *   only while 8 bytes remain before 'end'; the last < 8 bytes go through a
 *   byte loop, so nothing past p+len is ever read.
 *
 * The iterators and decoders trust that their input was validated, but they
 * never read outside the span they are given, whatever it holds. */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

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

/* What the first byte of a value makes it; whitespace is a class too. */
enum { V_BAD, V_WS, V_OBJ, V_ARR, V_STR, V_NUM, V_TRUE, V_FALSE, V_NULL };

static const uint8_t value_class[256] = {
    ['\t'] = V_WS,  ['\n'] = V_WS,   ['\r'] = V_WS,  [' '] = V_WS,  ['{'] = V_OBJ, ['['] = V_ARR,
    ['"'] = V_STR,  ['-'] = V_NUM,   ['0'] = V_NUM,  ['1'] = V_NUM, ['2'] = V_NUM, ['3'] = V_NUM,
    ['4'] = V_NUM,  ['5'] = V_NUM,   ['6'] = V_NUM,  ['7'] = V_NUM, ['8'] = V_NUM, ['9'] = V_NUM,
    ['t'] = V_TRUE, ['f'] = V_FALSE, ['n'] = V_NULL,
};

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

/* The stop byte at p inside a string is not the closing quote: a multi-byte
 * UTF-8 sequence, an escape, or an error. Returns the byte after it, or NULL.
 * Kept out of line so the ASCII loop in scan_string stays small. */
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
 * case behind scan_string. Returns the byte after the closing quote, or NULL. */
static __attribute__((noinline)) const uint8_t *scan_string_rest(const uint8_t *p,
                                                                 const uint8_t *end)
{
    for (;;) {
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

/* Validate a string body; p is just past the opening quote. Returns the byte
 * after the closing quote, or NULL. Inlined, only the common case: plain
 * ASCII words up to the closing quote. The tail (< 8 bytes left), escapes and
 * UTF-8 go out of line, which keeps the state machine's registers unspilled. */
static inline const uint8_t *scan_string(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 8) {
        uint64_t m = str_stops(load64(p));
        if (m) {
            p += first_byte(m);
            if (*p == '"')
                return p + 1;
            break;
        }
        p += 8;
    }
    return scan_string_rest(p, end);
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

/* No closer: at the top level nothing may close. Above any byte value. */
#define TOP 0x100u

int fo_json_validate(const char *s, size_t len, unsigned max_depth, struct fo_json_span *out)
{
    uint64_t is_obj[FO_JSON_MAX_DEPTH / 64]; /* Bit d: level d+1 is an object. */
    unsigned depth = 0;
    unsigned closer = TOP; /* Closing byte of the innermost container. */

    if (!s || len == 0)
        return -EINVAL;
    if (max_depth > FO_JSON_MAX_DEPTH)
        max_depth = FO_JSON_MAX_DEPTH;
    const uint8_t *end = (const uint8_t *)s + len;
    const uint8_t *p = skip_ws((const uint8_t *)s, end);
    const uint8_t *start = p;

value: /* A value starts at p, maybe after whitespace. */
    if (p >= end)
        return -EINVAL;
    switch (value_class[*p]) {
    case V_WS:
        p = skip_ws(p + 1, end);
        goto value;
    case V_OBJ:
    case V_ARR: {
        bool obj = *p == '{';
        if (depth >= max_depth)
            return -E2BIG;
        /* A word is written whole when its first level opens, so no bit is
         * read before it was set. */
        unsigned sh = depth % 64;
        uint64_t w = sh ? is_obj[depth / 64] & ~(1ULL << sh) : 0;
        is_obj[depth / 64] = w | (uint64_t)obj << sh;
        depth++;
        closer = obj ? '}' : ']';
        p++;
        if (p < end && *p <= ' ')
            p = skip_ws(p, end);
        if (p < end && *p == closer) {
            p++;
            goto close; /* Empty: a complete value. */
        }
        if (obj)
            goto key;
        goto value; /* The first element. */
    }
    case V_STR:
        p = scan_string(p + 1, end);
        break;
    case V_NUM:
        p = scan_number(p, end);
        break;
    case V_TRUE:
        p = end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
        break;
    case V_FALSE:
        p = end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
        break;
    case V_NULL:
        p = end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
        break;
    default:
        return -EINVAL;
    }
    if (!p)
        return -EINVAL;

after: /* A value ended at p: a comma, the closer, or (at the top) the end. */
    if (p < end) {
        unsigned c = *p;
        if (c == ',') {
            p++;
            if (closer == '}') {
                if (p < end && *p == '"')
                    goto key_body; /* The usual ,"name" without spaces. */
                goto key;
            }
            if (closer == ']')
                goto value;
            return -EINVAL; /* A comma at the top level. */
        }
        if (c == closer) {
            p++;
            goto close;
        }
        if (is_ws((uint8_t)c)) {
            const uint8_t *vend = p;
            p = skip_ws(p + 1, end);
            if (p < end)
                goto after; /* At a byte that is not whitespace. */
            if (depth > 0)
                return -EINVAL;
            p = vend; /* Trailing whitespace after the top-level value. */
            goto done;
        }
        return -EINVAL;
    }
    if (depth > 0)
        return -EINVAL; /* Unclosed containers. */
    goto done;

close: /* A container closed; p is past its closer. */
    depth--;
    closer = depth == 0 ? TOP : ((is_obj[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1) ? '}' : ']';
    goto after;

key: /* A member name, its colon and the value's start. */
    if (p < end && *p != '"')
        p = skip_ws(p, end);
    if (p >= end || *p != '"')
        return -EINVAL;
key_body: /* p is at the opening quote of the name. */
    p = scan_string(p + 1, end);
    if (!p)
        return -EINVAL;
    if (p < end && *p == ':') {
        p++;
        goto value;
    }
    if (p < end && *p != ':')
        p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return -EINVAL;
    p++;
    goto value;

done:
    if (out) {
        out->p = (const char *)start;
        out->len = (size_t)(p - start);
    }
    return 0;
}

/* ---- Raw scanning of validated values ---------------------------------- */

static inline const char *skip_ws_c(const char *p, const char *end)
{
    return (const char *)skip_ws((const uint8_t *)p, (const uint8_t *)end);
}

/* End of a string body; p is just past the opening quote and at a token
 * boundary. A quote is the closing one when an even number of backslashes
 * precede it. Returns the byte after the closing quote (end if none). */
static const char *skip_string(const char *p, const char *end)
{
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return end;
        const char *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if ((q - b) % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return end;
}

/* End of the value starting at p (no leading whitespace). */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    switch (*p) {
    case '"':
        return skip_string(p + 1, end);
    case '{':
    case '[': {
        static const uint8_t structural[256] = {
            ['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
        };
        size_t depth = 0;
        while (p < end) {
            while (p < end && !structural[(uint8_t)*p])
                p++;
            if (p >= end)
                break;
            char c = *p;
            if (c == '"') {
                p = skip_string(p + 1, end);
                continue;
            }
            p++;
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p;
            }
        }
        return end;
    }
    case 't':
    case 'n':
        return end - p >= 4 ? p + 4 : end;
    case 'f':
        return end - p >= 5 ? p + 5 : end;
    default:
        while (p < end &&
               (is_digit((uint8_t)*p) || *p == '-' || *p == '+' || *p == '.' || (*p | 0x20) == 'e'))
            p++;
        return p;
    }
}

static int iter_start(struct fo_json_iter *it, struct fo_json_span v, char open, char close)
{
    if (!v.p || v.len < 2 || v.p[0] != open || v.p[v.len - 1] != close)
        return -EINVAL;
    it->p = v.p + 1;
    it->end = v.p + v.len;
    return 0;
}

int fo_json_iter_object(struct fo_json_iter *it, struct fo_json_span v)
{
    return iter_start(it, v, '{', '}');
}

int fo_json_iter_array(struct fo_json_iter *it, struct fo_json_span v)
{
    return iter_start(it, v, '[', ']');
}

bool fo_json_next_member(struct fo_json_iter *it, struct fo_json_span *key,
                         struct fo_json_span *val)
{
    const char *end = it->end;
    const char *p = skip_ws_c(it->p, end);
    if (p < end && *p == ',')
        p = skip_ws_c(p + 1, end);
    if (p >= end || *p != '"')
        goto done;
    const char *k = p;
    p = skip_string(p + 1, end);
    key->p = k;
    key->len = (size_t)(p - k);
    p = skip_ws_c(p, end);
    if (p >= end || *p != ':')
        goto done;
    p = skip_ws_c(p + 1, end);
    const char *v = p;
    p = skip_value(p, end);
    if (p == v)
        goto done;
    val->p = v;
    val->len = (size_t)(p - v);
    it->p = p;
    return true;
done:
    it->p = end;
    return false;
}

bool fo_json_next_element(struct fo_json_iter *it, struct fo_json_span *val)
{
    const char *end = it->end;
    const char *p = skip_ws_c(it->p, end);
    if (p < end && *p == ',')
        p = skip_ws_c(p + 1, end);
    if (p >= end || *p == ']')
        goto done;
    const char *v = p;
    p = skip_value(p, end);
    if (p == v)
        goto done;
    val->p = v;
    val->len = (size_t)(p - v);
    it->p = p;
    return true;
done:
    it->p = end;
    return false;
}

/* ---- Decoding ------------------------------------------------------------ */

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode the escape at *pp (at the backslash) into o[0..4). Advances *pp and
 * returns the byte count, or 0 when the escape is malformed. */
static size_t decode_escape(const char **pp, const char *end, char o[4])
{
    const uint8_t *p = (const uint8_t *)*pp;
    const uint8_t *e = (const uint8_t *)end;
    unsigned cp, lo;

    if (e - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        o[0] = (char)p[1];
        break;
    case 'b':
        o[0] = '\b';
        break;
    case 'f':
        o[0] = '\f';
        break;
    case 'n':
        o[0] = '\n';
        break;
    case 'r':
        o[0] = '\r';
        break;
    case 't':
        o[0] = '\t';
        break;
    case 'u':
        if (e - p < 6 || !hex4(p + 2, &cp))
            return 0;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return 0;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (e - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xdc00 ||
                lo > 0xdfff)
                return 0;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            *pp += 12;
        } else {
            *pp += 6;
        }
        return put_utf8(o, cp);
    default:
        return 0;
    }
    *pp += 2;
    return 1;
}

static bool is_string(struct fo_json_span str)
{
    return str.p && str.len >= 2 && str.p[0] == '"' && str.p[str.len - 1] == '"';
}

int fo_json_unescape(struct fo_json_span str, struct fo_buf *out)
{
    if (!is_string(str))
        return -EINVAL;
    const char *p = str.p + 1;
    const char *end = str.p + str.len - 1;
    size_t old = out->len;
    int rc = 0;

    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *run_end = bs ? bs : end;
        rc = fo_buf_append(out, p, (size_t)(run_end - p));
        if (rc < 0 || !bs)
            break;
        p = bs;
        char o[4];
        size_t n = decode_escape(&p, end, o);
        if (n == 0) {
            rc = -EINVAL;
            break;
        }
        rc = fo_buf_append(out, o, n);
        if (rc < 0)
            break;
    }
    if (rc < 0 && out->data) {
        out->len = old;
        out->data[old] = '\0';
    }
    return rc;
}

bool fo_json_str_eq(struct fo_json_span str, const char *s)
{
    if (!is_string(str))
        return false;
    const char *p = str.p + 1;
    const char *end = str.p + str.len - 1;

    while (p < end) {
        if (*p != '\\') {
            if (*s == '\0' || *p != *s)
                return false;
            p++;
            s++;
            continue;
        }
        char o[4];
        size_t n = decode_escape(&p, end, o);
        if (n == 0)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (*s == '\0' || o[i] != *s) /* A decoded NUL never matches. */
                return false;
            s++;
        }
    }
    return *s == '\0';
}

const char *fo_json_value_end(const char *p, const char *end)
{
    return skip_value(p, end);
}

enum fo_json_kind fo_json_kind(struct fo_json_span v)
{
    if (!v.p || v.len == 0)
        return FO_JSON_NULL; /* Not a value; the least harmful answer. */
    switch (v.p[0]) {
    case '{':
        return FO_JSON_OBJECT;
    case '[':
        return FO_JSON_ARRAY;
    case '"':
        return FO_JSON_STRING;
    case 't':
        return FO_JSON_TRUE;
    case 'f':
        return FO_JSON_FALSE;
    case 'n':
        return FO_JSON_NULL;
    default:
        return FO_JSON_NUMBER;
    }
}

/* ---- Encoding ------------------------------------------------------------ */

int fo_json_put_string(struct fo_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) { /* No pointer arithmetic on NULL, even with n == 0. */
        s = "";
        n = 0;
    }
    const uint8_t *p = (const uint8_t *)s;
    const uint8_t *end = p + n;
    const uint8_t *run = p; /* Start of bytes not yet written. */
    size_t old = b->len;
    int rc;

    /* Most strings need no escaping: make room for them in one go. */
    rc = fo_buf_reserve(b, n + 2);
    if (rc < 0)
        return rc;
    b->data[b->len++] = '"';
    while (p < end) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ (ONES * '"');
            uint64_t t = x ^ (ONES * '\\');
            if (((x - ONES * 0x20) | (q - ONES) | (t - ONES) | x) & HIGHS)
                break;
            p += 8;
        }
        while (p < end && !str_special[*p])
            p++;
        if (p >= end)
            break;
        uint8_t c = *p;
        char esc[6];
        size_t elen = 2;
        size_t skip = 1;
        if (c >= 0x80) {
            bool ok;
            skip = utf8_seq(p, end, &ok);
            if (ok) {
                p += skip;
                continue;
            }
            memcpy(esc, "\xef\xbf\xbd", 3); /* U+FFFD for the maximal subpart. */
            elen = 3;
        } else {
            esc[0] = '\\';
            switch (c) {
            case '"':
            case '\\':
                esc[1] = (char)c;
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
                elen = 6;
                break;
            }
        }
        rc = fo_buf_append(b, run, (size_t)(p - run));
        if (rc == 0)
            rc = fo_buf_append(b, esc, elen);
        if (rc < 0)
            goto fail;
        p += skip;
        run = p;
    }
    rc = fo_buf_append(b, run, (size_t)(p - run));
    if (rc == 0)
        rc = fo_buf_putc(b, '"');
    if (rc < 0)
        goto fail;
    return 0;
fail:
    b->len = old;
    b->data[old] = '\0';
    return rc;
}
