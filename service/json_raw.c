/* json_raw.c -- raw access to validated JSON: skipping a value, iterating an object's
 * members or an array's elements as spans of the caller's bytes, decoding and comparing
 * string literals, and writing a string as a JSON literal. See json.h.
 *
 * Split from json.c (the validator), which it trusts: every function here reads values
 * fo_json_validate accepted, never outside the span it is given whatever it holds, and
 * shares the byte-level helpers of json_bytes.h with it. Why hand-written: see json.c. */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_bytes.h"

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
