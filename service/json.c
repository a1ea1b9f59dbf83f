/* json.c -- JSON validation, raw iteration, string escaping. See json.h.
 *
 * Every backend body passes through fo_json_validate once, so it is written
 * for the common case: one pass, no allocation, no calls through pointers.
 * Nesting is tracked in a bit stack on the C stack (1 = object, 0 = array),
 * which is why the depth is capped at FO_JSON_MAX_DEPTH. String bodies are
 * scanned eight bytes at a time while they are plain ASCII; the byte loop
 * only runs around quotes, escapes and multi-byte UTF-8.
 *
 * The iterators and decoders trust that their input was validated, but they
 * never read outside the span they are given, whatever it holds. */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Bytes that end a run of plain string content: controls, '"', '\\' and
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

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static inline bool is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
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

/* Validate a string body; p is just past the opening quote. Returns the byte
 * after the closing quote, or NULL. */
static const uint8_t *scan_string(const uint8_t *p, const uint8_t *end)
{
    for (;;) {
        /* Eight plain ASCII bytes at a time. Each term flags (at least) the
         * first byte below 0x20, equal to '"' or equal to '\\' exactly when
         * there is one; bytes >= 0x80 are flagged by x itself. */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ (ONES * '"');
            uint64_t s = x ^ (ONES * '\\');
            if (((x - ONES * 0x20) | (q - ONES) | (s - ONES) | x) & HIGHS)
                break;
            p += 8;
        }
        while (p < end && !str_special[*p])
            p++;
        if (p >= end)
            return NULL;
        uint8_t c = *p;
        if (c == '"')
            return p + 1;
        if (c >= 0x80) {
            bool ok;
            size_t n = utf8_seq(p, end, &ok);
            if (!ok)
                return NULL;
            p += n;
            continue;
        }
        if (c != '\\')
            return NULL; /* Unescaped control character. */
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u': {
            unsigned u, lo;
            if (end - p < 6 || !hex4(p + 2, &u))
                return NULL;
            p += 6;
            if (u >= 0xdc00 && u <= 0xdfff)
                return NULL; /* Low surrogate without a high one. */
            if (u >= 0xd800 && u <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return NULL; /* High surrogate without a low one. */
                p += 6;
            }
            break;
        }
        default:
            return NULL;
        }
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
    if (*p == '0') {
        p++;
    } else if (is_digit(*p)) {
        p++;
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

/* A member name and its colon; p is at the name. Returns the start of the
 * value (after whitespace), or NULL. */
static inline const uint8_t *scan_key(const uint8_t *p, const uint8_t *end)
{
    if (p >= end || *p != '"')
        return NULL;
    p = scan_string(p + 1, end);
    if (!p)
        return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return NULL;
    return skip_ws(p + 1, end);
}

int fo_json_validate(const char *s, size_t len, unsigned max_depth, struct fo_json_span *out)
{
    uint64_t is_obj[FO_JSON_MAX_DEPTH / 64]; /* Bit d: level d+1 is an object. */
    unsigned depth = 0;

    if (!s || len == 0)
        return -EINVAL;
    if (max_depth > FO_JSON_MAX_DEPTH)
        max_depth = FO_JSON_MAX_DEPTH;
    const uint8_t *end = (const uint8_t *)s + len;
    const uint8_t *p = skip_ws((const uint8_t *)s, end);
    const uint8_t *start = p;

    for (;;) {
        /* A value starts at p. */
        if (p >= end)
            return -EINVAL;
        switch (*p) {
        case '{':
        case '[': {
            bool obj = *p == '{';
            if (depth >= max_depth)
                return -E2BIG;
            uint64_t bit = 1ULL << (depth % 64);
            if (obj)
                is_obj[depth / 64] |= bit;
            else
                is_obj[depth / 64] &= ~bit;
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                depth--;
                p++;
                break; /* Empty: a complete value. */
            }
            if (obj) {
                p = scan_key(p, end);
                if (!p)
                    return -EINVAL;
            }
            continue; /* The first member or element. */
        }
        case '"':
            p = scan_string(p + 1, end);
            break;
        case 't':
            p = end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
            break;
        case 'f':
            p = end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
            break;
        case 'n':
            p = end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
            break;
        default:
            p = scan_number(p, end);
            break;
        }
        if (!p)
            return -EINVAL;

        /* After a value: close finished containers until a comma. */
        for (;;) {
            if (depth == 0) {
                const uint8_t *vend = p;
                if (skip_ws(p, end) != end)
                    return -EINVAL; /* Trailing garbage. */
                if (out) {
                    out->p = (const char *)start;
                    out->len = (size_t)(vend - start);
                }
                return 0;
            }
            p = skip_ws(p, end);
            if (p >= end)
                return -EINVAL;
            bool obj = (is_obj[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                if (obj) {
                    p = scan_key(p, end);
                    if (!p)
                        return -EINVAL;
                }
                break;
            }
            if (*p != (obj ? '}' : ']'))
                return -EINVAL;
            depth--;
            p++;
        }
    }
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
