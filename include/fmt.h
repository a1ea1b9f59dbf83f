/* fmt.h -- numbers as text without printf's engine.
 *
 * The hot path writes a few numbers per request and per backend call (log
 * lines, the _fanout report, X-Timeout-Ms); vsnprintf spent about 20k
 * instructions an aggregate on them (callgrind), more than all of fanout's
 * JSON validation. These write the same text directly: decimal integers,
 * milliseconds with one decimal (locale-free), fixed-width lower-case hex.
 * Each writes into 'out', which must hold FO_FMT_MAX bytes, adds no NUL, and
 * returns the number of bytes written. Pure functions; any thread. */
#ifndef FO_FMT_H
#define FO_FMT_H

#include <stddef.h>
#include <stdint.h>

#define FO_FMT_MAX 24 /* "-9223372036854775808" and "-99999999999999.9" fit. */

size_t fo_fmt_u64(char *out, uint64_t v);
size_t fo_fmt_i64(char *out, int64_t v);

/* 'ms' rounded to one decimal ("12.3", "-0.5", "0.0"); non-finite values
 * write "0.0". Magnitudes of 1e15 and over write nothing and return 0 (the
 * caller prints those, e.g. with "%.0f.0"). */
size_t fo_fmt_ms(char *out, double ms);

/* The low 'width' hex digits of 'v' (width <= 16), zero-padded. */
size_t fo_fmt_hex(char *out, uint64_t v, unsigned width);

#endif /* FO_FMT_H */
