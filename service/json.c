/* json.c -- JSON validation. See json.h (raw access to validated values: json_raw.c).
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
 *   byte loop, so nothing past p+len is ever read. */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_bytes.h"

/* What the first byte of a value makes it; whitespace is a class too. */
enum { V_BAD, V_WS, V_OBJ, V_ARR, V_STR, V_NUM, V_TRUE, V_FALSE, V_NULL };

static const uint8_t value_class[256] = {
    ['\t'] = V_WS,  ['\n'] = V_WS,   ['\r'] = V_WS,  [' '] = V_WS,  ['{'] = V_OBJ, ['['] = V_ARR,
    ['"'] = V_STR,  ['-'] = V_NUM,   ['0'] = V_NUM,  ['1'] = V_NUM, ['2'] = V_NUM, ['3'] = V_NUM,
    ['4'] = V_NUM,  ['5'] = V_NUM,   ['6'] = V_NUM,  ['7'] = V_NUM, ['8'] = V_NUM, ['9'] = V_NUM,
    ['t'] = V_TRUE, ['f'] = V_FALSE, ['n'] = V_NULL,
};

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
