/* log.c -- structured log lines on stdout. See log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static atomic_int min_level = FO_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void fo_log_set_level(enum fo_log_level lvl)
{
    atomic_store_explicit(&min_level, (int)lvl, memory_order_relaxed);
}

/* "{"ts":"...","level":"...","event":"..."" into line; returns its length. */
static int prefix(char *line, size_t cap, enum fo_log_level lvl, const char *event)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(
        line, cap,
        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":\"%s\"",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000, level_names[lvl], event);
}

static bool enabled(enum fo_log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&min_level, memory_order_relaxed) && lvl < FO_LOG_OFF;
}

bool fo_log_begin(struct fo_buf *b, enum fo_log_level lvl, const char *event)
{
    if (!enabled(lvl))
        return false;
    char line[160];
    int n = prefix(line, sizeof line, lvl, event);
    fo_buf_reset(b);
    return n > 0 && fo_buf_append(b, line, (size_t)n) == 0;
}

void fo_log_finish(struct fo_buf *b)
{
    if (fo_buf_append(b, "}\n", 2) < 0)
        return;
    ssize_t w = write(STDOUT_FILENO, b->data, b->len);
    (void)w;
}

void fo_log(enum fo_log_level lvl, const char *event, const char *fmt, ...)
{
    if (!enabled(lvl))
        return;
    char line[4096];
    int n = prefix(line, sizeof line, lvl, event);
    if (fmt && n > 0 && (size_t)n < sizeof line - 3) {
        line[n++] = ',';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if (n < 0 || (size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3; /* Truncated: still one line. */
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
    (void)w;
}

const char *fo_log_quote(char *buf, size_t cap, const char *s)
{
    /* One escaper for every JSON string (json.c): invalid UTF-8 becomes
     * U+FFFD there, so no line is ever invalid JSON. A value too long for
     * 'buf' is cut at a UTF-8 boundary, short enough that even every byte
     * written as \u00XX fits. */
    if (cap < 3) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    size_t n = strlen(s);
    size_t most = (cap - 3) / 6;
    if (n > most) {
        n = most;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    struct fo_buf b;
    fo_buf_init(&b, cap - 1);
    if (fo_json_put_string(&b, s, n) < 0) {
        fo_buf_free(&b);
        snprintf(buf, cap, "\"\"");
        return buf;
    }
    memcpy(buf, b.data, b.len + 1);
    fo_buf_free(&b);
    return buf;
}
