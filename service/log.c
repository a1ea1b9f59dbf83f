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

/* The line's date to the second, "2026-12-03T14:18:35", formatted once a
 * second per thread: gmtime_r and printf cost more than the rest of an
 * access line. */
struct second {
    time_t sec;
    char text[32];
    size_t len;
};

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

static const struct second *this_second(time_t sec)
{
    static _Thread_local struct second cache = {.sec = (time_t)-1};
    if (cache.sec == sec)
        return &cache;
    struct tm tm;
    gmtime_r(&sec, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        int n = snprintf(cache.text, sizeof cache.text, "%04d-%02d-%02dT%02d:%02d:%02d", year,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cache.len = n > 0 && (size_t)n < sizeof cache.text ? (size_t)n : 0;
    } else {
        char *p = cache.text; /* YYYY-MM-DDTHH:MM:SS */
        put2(p, year / 100);
        put2(p + 2, year % 100);
        p[4] = '-';
        put2(p + 5, tm.tm_mon + 1);
        p[7] = '-';
        put2(p + 8, tm.tm_mday);
        p[10] = 'T';
        put2(p + 11, tm.tm_hour);
        p[13] = ':';
        put2(p + 14, tm.tm_min);
        p[16] = ':';
        put2(p + 17, tm.tm_sec);
        cache.len = 19;
    }
    cache.sec = sec;
    return &cache;
}

static size_t put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

/* "{"ts":"...","level":"...","event":"..."" into line; returns its length,
 * or -1 when it does not fit in 'cap'. */
static int prefix(char *line, size_t cap, enum fo_log_level lvl, const char *event)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const struct second *sec = this_second(ts.tv_sec);
    const char *level = level_names[lvl];
    size_t need = 8 + sec->len + 5 + 11 + strlen(level) + 11 + strlen(event) + 1;
    if (need >= cap)
        return -1;
    size_t n = put_str(line, "{\"ts\":\"");
    memcpy(line + n, sec->text, sec->len);
    n += sec->len;
    long ms = ts.tv_nsec / 1000000;
    line[n++] = '.';
    line[n++] = (char)('0' + ms / 100);
    put2(line + n, (int)(ms % 100));
    n += 2;
    n += put_str(line + n, "Z\",\"level\":\"");
    n += put_str(line + n, level);
    n += put_str(line + n, "\",\"event\":\"");
    n += put_str(line + n, event);
    line[n++] = '"';
    return (int)n;
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
    if (n < 0)
        return; /* An event name of 4 KiB: never one of ours. */
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
