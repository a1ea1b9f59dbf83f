/* log.h -- structured log lines: one JSON object per line on stdout.
 *
 *   {"ts":"2026-11-28T05:00:00.123Z","level":"info","event":"listening","port":8080}
 *
 * Each line is built in a local buffer and written with a single write(2),
 * and no lock is taken: a line of at most PIPE_BUF (4096) bytes never
 * interleaves with another on a pipe; a longer one (an access line with many
 * backends) may, where stdout is a pipe.
 * Only the service layer (main, server) logs; library modules return errors.
 * Threads: thread-safe. */
#ifndef FO_LOG_H
#define FO_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum fo_log_level { FO_LOG_DEBUG, FO_LOG_INFO, FO_LOG_WARN, FO_LOG_ERROR, FO_LOG_OFF };

/* Lines below this level are dropped. Set at start-up and again by each
 * reload (the "log" key), from the main thread. */
void fo_log_set_level(enum fo_log_level lvl);

/* Write one line with "ts", "level", "event" and then the members produced
 * by 'fmt' (printf-style, JSON member text such as "\"port\":%d"; may be
 * NULL). String values must be escaped by the caller: use %s only with
 * fo_log_quote() output or trusted text. */
void fo_log(enum fo_log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For long lines (the access log): start a line in 'b' (reset first) with
 * "ts", "level" and "event"; the caller appends members, each starting with
 * ','; fo_log_finish closes it and writes it with one write(2). Returns false
 * (and writes nothing) when 'lvl' is filtered out. */
bool fo_log_begin(struct fo_buf *b, enum fo_log_level lvl, const char *event);
void fo_log_finish(struct fo_buf *b);

/* Quote 's' as a JSON string into buf (cap bytes, truncating safely).
 * Returns buf. */
const char *fo_log_quote(char *buf, size_t cap, const char *s);

#endif /* FO_LOG_H */
