/* fmt.c -- numbers as text without printf's engine (see fmt.h). */
#include "fmt.h"

#include <math.h>

size_t fo_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t fo_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fo_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fo_fmt_u64(out + 1, 0ULL - (uint64_t)v);
}

size_t fo_fmt_ms(char *out, double ms)
{
    if (!isfinite(ms))
        ms = 0;
    if (!(ms > -1e15 && ms < 1e15))
        return 0;
    int64_t t = (int64_t)(ms * 10 + (ms < 0 ? -0.5 : 0.5));
    uint64_t a = t < 0 ? 0ULL - (uint64_t)t : (uint64_t)t;
    size_t n = 0;
    if (t < 0)
        out[n++] = '-';
    n += fo_fmt_u64(out + n, a / 10);
    out[n++] = '.';
    out[n++] = (char)('0' + a % 10);
    return n;
}

size_t fo_fmt_hex(char *out, uint64_t v, unsigned width)
{
    static const char digits[] = "0123456789abcdef";
    if (width > 16)
        width = 16;
    for (unsigned i = width; i-- > 0;) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
    return width;
}
