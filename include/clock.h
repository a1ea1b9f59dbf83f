/* clock.h -- monotonic time.
 *
 * Every deadline in fanout is an absolute CLOCK_MONOTONIC time in
 * milliseconds (int64_t); durations that are reported use microseconds.
 * Threads: thread-safe. */
#ifndef FO_CLOCK_H
#define FO_CLOCK_H

#include <stdint.h>

/* No deadline at all: later than any time. */
#define FO_NO_DEADLINE INT64_MAX

/* The longest timeout fanout accepts anywhere (an hour): config timeouts, X-Timeout-Ms. */
#define FO_MAX_TIMEOUT_MS 3600000

/* Monotonic now in milliseconds. */
int64_t fo_clock_ms(void);

/* Monotonic now in microseconds. */
int64_t fo_clock_us(void);

#endif /* FO_CLOCK_H */
