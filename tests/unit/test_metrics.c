/* test_metrics.c -- unit tests for the metrics registry and its exposition (metrics.h).
 *
 * The exposition is read back with a strict little parser of the Prometheus
 * text format (0.0.4): every line is "# HELP name text", "# TYPE name type" or
 * one sample "name{label="value",...} value"; label values use only the
 * escapes \\, \" and \n; each family has one HELP and one TYPE, before its
 * samples, and its lines form one group; no sample repeats; per label set a
 * histogram's buckets grow with "le", end with +Inf, and that bucket equals
 * _count. Values are then looked up by name and labels. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "outcome.h"

/* Bucket bounds in seconds as the exposition writes them, +Inf last. */
static const double bounds_s[FO_HIST_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10};

/* ---- a strict exposition parser --------------------------------------------------------- */

#define MAX_LABELS 4

struct label {
    char *name;  /* From malloc(). */
    char *value; /* From malloc(): unescaped. */
};

struct sample {
    char *name;                      /* From malloc(): as written (x_bucket, ...). */
    char *family;                    /* Borrowed from the family list. */
    struct label labels[MAX_LABELS]; /* nlabels of them, sorted by name. */
    size_t nlabels;
    double value;
    char *key;    /* From malloc(): name and labels, to find duplicates. */
    char *series; /* From malloc(): family and labels but "le", to group histograms. */
    int kind;     /* Histograms: 0 _bucket, 1 _sum, 2 _count. */
    double le;    /* Histogram buckets: the bound. */
};

struct family {
    char *name;  /* From malloc(). */
    char *type;  /* From malloc(); NULL before # TYPE. */
    bool help;   /* A # HELP line was seen. */
    bool closed; /* Another family started after this one. */
    size_t nsamples;
};

struct expo {
    struct sample *samples; /* From realloc(). */
    size_t nsamples, capsamples;
    struct family *families; /* From realloc(). */
    size_t nfamilies, capfamilies;
    char error[256]; /* The first problem, "" when the text is valid. */
};

static void expo_free(struct expo *e)
{
    for (size_t i = 0; i < e->nsamples; i++) {
        free(e->samples[i].name);
        free(e->samples[i].key);
        free(e->samples[i].series);
        for (size_t k = 0; k < e->samples[i].nlabels; k++) {
            free(e->samples[i].labels[k].name);
            free(e->samples[i].labels[k].value);
        }
    }
    free(e->samples);
    for (size_t i = 0; i < e->nfamilies; i++) {
        free(e->families[i].name);
        free(e->families[i].type);
    }
    free(e->families);
    memset(e, 0, sizeof *e);
}

static bool bad(struct expo *e, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool bad(struct expo *e, int line, const char *fmt, ...)
{
    if (e->error[0])
        return false;
    int n = snprintf(e->error, sizeof e->error, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error + n, sizeof e->error - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static bool name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

/* Length of the metric (colon) or label name at p, 0 if none. */
static size_t name_len(const char *p, bool colon)
{
    size_t n = 0;
    if (!name_start(p[0], colon))
        return 0;
    while (name_char(p[n], colon))
        n++;
    return n;
}

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && strcmp(s + n - k, sfx) == 0;
}

static struct family *find_family(struct expo *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->nfamilies; i++)
        if (strlen(e->families[i].name) == len && memcmp(e->families[i].name, name, len) == 0)
            return &e->families[i];
    return NULL;
}

/* The family a new line belongs to; opening one closes the current one. */
static struct family *enter_family(struct expo *e, int line, const char *name, size_t len)
{
    struct family *f = find_family(e, name, len);
    struct family *cur = e->nfamilies ? &e->families[e->nfamilies - 1] : NULL;
    if (f && f != cur) {
        bad(e, line, "family %.*s comes back after another one", (int)len, name);
        return NULL;
    }
    if (f)
        return f;
    if (e->nfamilies == e->capfamilies) {
        e->capfamilies = e->capfamilies ? 2 * e->capfamilies : 16;
        e->families = realloc(e->families, e->capfamilies * sizeof *e->families);
        if (!e->families)
            abort();
    }
    if (cur)
        cur->closed = true;
    f = &e->families[e->nfamilies++];
    memset(f, 0, sizeof *f);
    f->name = dup_n(name, len);
    return f;
}

/* Family name of a sample: histograms own name_bucket, name_sum, name_count. */
static struct family *sample_family(struct expo *e, const char *name, size_t len)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    struct family *cur = e->nfamilies ? &e->families[e->nfamilies - 1] : NULL;
    if (cur && cur->type && strcmp(cur->type, "histogram") == 0) {
        for (size_t i = 0; i < 3; i++) {
            size_t fl = strlen(cur->name), sl = strlen(sfx[i]);
            if (len == fl + sl && memcmp(name, cur->name, fl) == 0 &&
                memcmp(name + fl, sfx[i], sl) == 0)
                return cur;
        }
    }
    return find_family(e, name, len);
}

static bool parse_comment(struct expo *e, int line, const char *p)
{
    bool help = strncmp(p, "# HELP ", 7) == 0, type = strncmp(p, "# TYPE ", 7) == 0;
    if (!help && !type)
        return true; /* Any other comment. */
    p += 7;
    size_t n = name_len(p, true);
    if (n == 0 || (p[n] != ' ' && p[n] != '\0'))
        return bad(e, line, "bad metric name in a %s line", help ? "HELP" : "TYPE");
    struct family *f = enter_family(e, line, p, n);
    if (!f)
        return false;
    const char *rest = p[n] ? p + n + 1 : p + n;
    if (help) {
        if (f->help)
            return bad(e, line, "second HELP for %s", f->name);
        for (const char *q = rest; *q; q++)
            if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
                return bad(e, line, "bad escape in HELP");
            else if (*q == '\\')
                q++;
        f->help = true;
        return true;
    }
    if (f->type)
        return bad(e, line, "second TYPE for %s", f->name);
    if (f->nsamples)
        return bad(e, line, "TYPE after samples of %s", f->name);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < 5; i++)
        if (strcmp(rest, types[i]) == 0) {
            f->type = dup_n(rest, strlen(rest));
            return true;
        }
    return bad(e, line, "unknown type \"%s\"", rest);
}

/* "name\1k=v\2k=v..." over the sorted labels, skipping 'skip' (may be NULL). */
static char *make_key(const char *name, const struct sample *smp, const char *skip)
{
    struct fo_buf k;
    fo_buf_init(&k, FO_BUF_UNLIMITED);
    fo_buf_puts(&k, name);
    fo_buf_putc(&k, '\1');
    for (size_t i = 0; i < smp->nlabels; i++) {
        if (skip && strcmp(smp->labels[i].name, skip) == 0)
            continue;
        fo_buf_printf(&k, "%s=%s\2", smp->labels[i].name, smp->labels[i].value);
    }
    char *out = fo_buf_release(&k, NULL);
    if (!out)
        abort();
    return out;
}

static void sort_labels(struct sample *smp)
{
    for (size_t i = 1; i < smp->nlabels; i++)
        for (size_t k = i; k > 0 && strcmp(smp->labels[k - 1].name, smp->labels[k].name) > 0; k--) {
            struct label t = smp->labels[k];
            smp->labels[k] = smp->labels[k - 1];
            smp->labels[k - 1] = t;
        }
}

static bool parse_sample(struct expo *e, int line, const char *p)
{
    struct sample s = {0};
    size_t n = name_len(p, true);
    if (n == 0)
        return bad(e, line, "not a sample");
    struct family *f = sample_family(e, p, n);
    if (!f || !f->type)
        return bad(e, line, "sample %.*s before its family's TYPE", (int)n, p);
    if (f != &e->families[e->nfamilies - 1])
        return bad(e, line, "sample %.*s outside its family's group", (int)n, p);
    s.name = dup_n(p, n);
    s.family = f->name;
    p += n;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t ln = name_len(p, false);
            if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"' || s.nlabels == MAX_LABELS)
                goto fail_label;
            if (ln >= 2 && p[0] == '_' && p[1] == '_')
                goto fail_label;
            struct label *l = &s.labels[s.nlabels++];
            l->name = dup_n(p, ln);
            for (size_t k = 0; k + 1 < s.nlabels; k++)
                if (strcmp(s.labels[k].name, l->name) == 0)
                    goto fail_label;
            p += ln + 2;
            struct fo_buf v;
            fo_buf_init(&v, FO_BUF_UNLIMITED);
            while (*p && *p != '"') {
                char c = *p++;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"') {
                        fo_buf_free(&v);
                        goto fail_label;
                    }
                } else if (c == '\n') {
                    fo_buf_free(&v);
                    goto fail_label;
                }
                if (fo_buf_putc(&v, c) < 0)
                    abort();
            }
            if (*p != '"') {
                fo_buf_free(&v);
                goto fail_label;
            }
            p++;
            l->value = fo_buf_release(&v, NULL);
            if (*p == ',')
                p++;
            else if (*p != '}')
                goto fail_label;
        }
        p++;
    }
    if (*p != ' ')
        goto fail_value;
    p++;
    char *end;
    if (strcmp(p, "+Inf") == 0)
        s.value = INFINITY;
    else if (strcmp(p, "-Inf") == 0)
        s.value = -INFINITY;
    else {
        errno = 0;
        s.value = strtod(p, &end);
        if (end == p || *end != '\0' || errno)
            goto fail_value; /* Also rejects a timestamp: not written by fanout. */
    }
    if (strcmp(f->type, "counter") == 0 && !(s.value >= 0))
        goto fail_value;
    sort_labels(&s);
    s.key = make_key(s.name, &s, NULL);
    s.series = make_key(f->name, &s, "le");
    s.kind = ends_with(s.name, "_bucket") ? 0 : ends_with(s.name, "_sum") ? 1 : 2;
    if (strcmp(f->type, "histogram") == 0 && s.kind == 0) {
        const char *le = NULL;
        for (size_t k = 0; k < s.nlabels; k++)
            if (strcmp(s.labels[k].name, "le") == 0)
                le = s.labels[k].value;
        if (!le) {
            bad(e, line, "%s without le", s.name);
            goto fail;
        }
        s.le = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
    }
    if (e->nsamples == e->capsamples) {
        e->capsamples = e->capsamples ? 2 * e->capsamples : 64;
        e->samples = realloc(e->samples, e->capsamples * sizeof *e->samples);
        if (!e->samples)
            abort();
    }
    e->samples[e->nsamples++] = s;
    f->nsamples++;
    return true;
fail_label:
    bad(e, line, "bad label set in %s", s.name);
    goto fail;
fail_value:
    bad(e, line, "bad value in %s", s.name);
fail:
    free(s.name);
    free(s.key);
    free(s.series);
    for (size_t k = 0; k < s.nlabels; k++) {
        free(s.labels[k].name);
        free(s.labels[k].value);
    }
    return false;
}

static const char *label_of(const struct sample *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}

static int by_key(const void *a, const void *b)
{
    const struct sample *x = *(const struct sample *const *)a,
                        *y = *(const struct sample *const *)b;
    return strcmp(x->key, y->key);
}

/* Histogram samples by series, then _bucket/_sum/_count, buckets by bound. */
static int by_series(const void *a, const void *b)
{
    const struct sample *x = *(const struct sample *const *)a,
                        *y = *(const struct sample *const *)b;
    int c = strcmp(x->series, y->series);
    if (c != 0)
        return c;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    return x->le < y->le ? -1 : x->le > y->le;
}

static void check_duplicates(struct expo *e)
{
    const struct sample **v = calloc(e->nsamples + 1, sizeof *v);
    if (!v)
        abort();
    for (size_t i = 0; i < e->nsamples; i++)
        v[i] = &e->samples[i];
    qsort(v, e->nsamples, sizeof *v, by_key);
    for (size_t i = 1; i < e->nsamples && !e->error[0]; i++)
        if (strcmp(v[i - 1]->key, v[i]->key) == 0)
            bad(e, 0, "duplicate sample %s", v[i]->name);
    free(v);
}

static void check_histograms(struct expo *e)
{
    const struct sample **v = calloc(e->nsamples + 1, sizeof *v);
    size_t n = 0;
    if (!v)
        abort();
    for (size_t i = 0; i < e->nsamples; i++) {
        const struct family *f = find_family(e, e->samples[i].family, strlen(e->samples[i].family));
        if (strcmp(f->type, "histogram") == 0)
            v[n++] = &e->samples[i];
    }
    qsort(v, n, sizeof *v, by_series);
    for (size_t i = 0; i < n && !e->error[0];) {
        size_t j = i, nb = 0, nsum = 0, ncount = 0;
        double prev = 0, inf = -1, count = -2;
        for (; j < n && strcmp(v[j]->series, v[i]->series) == 0; j++) {
            const struct sample *x = v[j];
            if (x->kind == 0) {
                if (x->value < prev ||
                    (nb < FO_HIST_BUCKETS - 1 && fabs(x->le - bounds_s[nb]) > 1e-12))
                    bad(e, 0, "%s: bucket %zu (le %g) holds %g after %g", x->name, nb, x->le,
                        x->value, prev);
                prev = x->value;
                if (isinf(x->le))
                    inf = x->value;
                nb++;
            } else if (x->kind == 1) {
                nsum++;
            } else {
                ncount++;
                count = x->value;
            }
        }
        if (nb != FO_HIST_BUCKETS || nsum != 1 || ncount != 1 || inf != count)
            bad(e, 0, "%s: %zu buckets, %zu _sum, %zu _count, +Inf %g, count %g", v[i]->name, nb,
                nsum, ncount, inf, count);
        i = j;
    }
    free(v);
}

/* Parse 'text' into 'e'; e->error says what is wrong, if anything. */
static void expo_parse(struct expo *e, const char *text, size_t len)
{
    memset(e, 0, sizeof *e);
    if (len == 0 || text[len - 1] != '\n') {
        bad(e, 0, "the text does not end with a newline");
        return;
    }
    if (strlen(text) != len) {
        bad(e, 0, "NUL byte in the text");
        return;
    }
    int line = 0;
    for (const char *p = text; *p && !e->error[0];) {
        const char *nl = strchr(p, '\n');
        char *l = dup_n(p, (size_t)(nl - p));
        line++;
        if (l[0] == '\0')
            bad(e, line, "empty line");
        else if (l[0] == '#')
            parse_comment(e, line, l);
        else
            parse_sample(e, line, l);
        free(l);
        p = nl + 1;
    }
    for (size_t i = 0; i < e->nfamilies && !e->error[0]; i++)
        if (!e->families[i].help || !e->families[i].type)
            bad(e, 0, "family %s lacks HELP or TYPE", e->families[i].name);
    if (!e->error[0])
        check_duplicates(e);
    if (!e->error[0])
        check_histograms(e);
}

/* The value of sample 'name' whose labels are the NULL-terminated name,
 * value pairs given (exactly those labels); NAN when absent. */
static double value_of(const struct expo *e, const char *name, ...)
{
    const char *ln[MAX_LABELS + 1], *lv[MAX_LABELS + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k || n == MAX_LABELS)
            break;
        ln[n] = k;
        lv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    for (size_t i = 0; i < e->nsamples; i++) {
        const struct sample *s = &e->samples[i];
        if (strcmp(s->name, name) != 0 || s->nlabels != n)
            continue;
        bool match = true;
        for (size_t k = 0; k < n && match; k++) {
            const char *v = label_of(s, ln[k]);
            match = v && strcmp(v, lv[k]) == 0;
        }
        if (match)
            return s->value;
    }
    return NAN;
}

static size_t count_samples(const struct expo *e, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nsamples; i++)
        n += strcmp(e->samples[i].name, name) == 0;
    return n;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static struct fo_metrics *metrics_new(void)
{
    struct fo_metrics *m = NULL;
    assert_int_equal(fo_metrics_create(&m), 0);
    assert_non_null(m);
    return m;
}

static const struct fo_gauges zero_gauges = {.ready = 1};

/* Write the exposition and parse it; fails the test on a format error. */
static void scrape(struct fo_metrics *m, const struct fo_gauges *g, struct expo *e)
{
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_metrics_write(m, g, &out), 0);
    assert_non_null(out.data);
    expo_parse(e, out.data, out.len);
    if (e->error[0]) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", e->error);
        fo_buf_free(&out);
        expo_free(e);
        fail_msg("exposition: %s", msg);
    }
    fo_buf_free(&out);
}

static void assert_value(double got, double want)
{
    if (isnan(got) || got != want)
        fail_msg("sample value %g, want %g", got, want);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_series_identity(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *a = fo_metrics_endpoint(m, "GET /a");
    struct fo_endpoint_stats *b = fo_metrics_endpoint(m, "GET /b");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /a"), a);
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /b"), b);
    assert_string_equal(a->label, "GET /a");

    /* The registry keeps its own copy of the label. */
    char label[] = "GET /c";
    struct fo_endpoint_stats *c = fo_metrics_endpoint(m, label);
    label[5] = 'x';
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /c"), c);
    assert_ptr_not_equal(fo_metrics_endpoint(m, label), c);

    /* Backends are per endpoint: the same name under two endpoints is two series. */
    struct fo_backend_stats *ua = fo_metrics_backend(m, a, "users");
    struct fo_backend_stats *oa = fo_metrics_backend(m, a, "orders");
    struct fo_backend_stats *ub = fo_metrics_backend(m, b, "users");
    assert_ptr_not_equal(ua, oa);
    assert_ptr_not_equal(ua, ub);
    assert_ptr_equal(fo_metrics_backend(m, a, "users"), ua);
    assert_ptr_equal(fo_metrics_backend(m, b, "users"), ub);
    assert_string_equal(ub->label, "users");

    /* A re-registration (a reload) keeps counting into the same series. */
    fo_metrics_call(ua, FO_OK, 10);
    assert_int_equal(
        atomic_load(
            &fo_metrics_backend(m, fo_metrics_endpoint(m, "GET /a"), "users")->calls[FO_OK]),
        1);
    fo_metrics_destroy(m);
    fo_metrics_destroy(NULL); /* A no-op. */
}

static void test_empty_registry_exposition(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_gauges g = {.requests_in_flight = 3,
                          .jobs_queued = 4,
                          .calls_in_flight = 5,
                          .calls_waiting = 2,
                          .client_connections = 6,
                          .backend_connections = 7,
                          .ready = 0};
    struct expo e;
    scrape(m, &g, &e);
    assert_value(value_of(&e, "fanout_ready", NULL), 0);
    assert_value(value_of(&e, "fanout_requests_in_flight", NULL), 3);
    assert_value(value_of(&e, "fanout_jobs_queued", NULL), 4);
    assert_value(value_of(&e, "fanout_backend_calls_in_flight", NULL), 5);
    assert_value(value_of(&e, "fanout_backend_calls_waiting", NULL), 2);
    assert_value(value_of(&e, "fanout_client_connections", NULL), 6);
    assert_value(value_of(&e, "fanout_backend_connections_opened_total", NULL), 7);
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "ok", NULL), 0);
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "error", NULL), 0);
    assert_int_equal(count_samples(&e, "fanout_info"), 1);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 0);
    expo_free(&e);

    fo_metrics_reload(m, 1);
    fo_metrics_reload(m, 1);
    fo_metrics_reload(m, 0);
    g.ready = 1;
    g.requests_in_flight = -1; /* A gauge may go below zero; the text must still parse. */
    scrape(m, &g, &e);
    assert_value(value_of(&e, "fanout_ready", NULL), 1);
    assert_value(value_of(&e, "fanout_requests_in_flight", NULL), -1);
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "ok", NULL), 2);
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "error", NULL), 1);
    expo_free(&e);
    fo_metrics_destroy(m);
}

static void test_request_classes(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, "GET /x");
    static const unsigned statuses[] = {100, 200, 204, 299, 301, 404, 499, 500, 503, 0, 99, 600};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        fo_metrics_request(ep, statuses[i], 1000);

    struct expo e;
    scrape(m, &zero_gauges, &e);
    static const char *const codes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const double want[] = {3, 1, 3, 1, 2, 2};
    for (size_t c = 0; c < 6; c++)
        assert_value(
            value_of(&e, "fanout_requests_total", "endpoint", "GET /x", "code", codes[c], NULL),
            want[c]);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 6);
    assert_value(value_of(&e, "fanout_request_duration_seconds_count", "endpoint", "GET /x", NULL),
                 12);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* Each observation lands in the first bucket whose bound it does not
 * exceed; the exposition shows the buckets cumulatively. */
static void test_histogram_buckets(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, "GET /h");
    struct fo_backend_stats *b = fo_metrics_backend(m, ep, "be");
    static const int64_t obs[] = {
        -5, /* Clamped to 0: first bucket. */
        0,
        1000, /* On the first bound: first bucket. */
        1001, /* Just over: second. */
        2500,
        2501,
        9999,
        10000,
        250000,
        999999,
        1000000,
        1000001,
        9999999,
        10000000,
        10000001,     /* Just over the last bound: +Inf. */
        3600000000LL, /* An hour: +Inf. */
    };
    enum { N = sizeof obs / sizeof obs[0] };
    uint64_t per_bucket[FO_HIST_BUCKETS] = {0};
    int64_t sum_us = 0;
    for (size_t i = 0; i < N; i++) {
        fo_metrics_request(ep, 200, obs[i]);
        fo_metrics_call(b, FO_OK, obs[i]);
        int64_t us = obs[i] < 0 ? 0 : obs[i];
        sum_us += us;
        size_t k = 0;
        while (k < FO_HIST_BUCKETS - 1 && (double)us / 1e6 > bounds_s[k] + 1e-12)
            k++;
        per_bucket[k]++;
    }
    /* The raw (non-cumulative) counts in the struct. */
    for (size_t k = 0; k < FO_HIST_BUCKETS; k++)
        assert_int_equal(atomic_load(&ep->duration.bucket[k]), per_bucket[k]);
    assert_int_equal(atomic_load(&ep->duration.sum_us), (uint64_t)sum_us);

    struct expo e;
    scrape(m, &zero_gauges, &e);
    static const char *const les[FO_HIST_BUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                     "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                     "2.5",   "5",      "10",    "+Inf"};
    uint64_t cum = 0;
    for (size_t k = 0; k < FO_HIST_BUCKETS; k++) {
        cum += per_bucket[k];
        assert_value(value_of(&e, "fanout_request_duration_seconds_bucket", "endpoint", "GET /h",
                              "le", les[k], NULL),
                     (double)cum);
        assert_value(value_of(&e, "fanout_backend_call_duration_seconds_bucket", "endpoint",
                              "GET /h", "backend", "be", "le", les[k], NULL),
                     (double)cum);
    }
    assert_value(value_of(&e, "fanout_request_duration_seconds_count", "endpoint", "GET /h", NULL),
                 N);
    double sum = value_of(&e, "fanout_request_duration_seconds_sum", "endpoint", "GET /h", NULL);
    assert_true(fabs(sum - (double)sum_us / 1e6) < 1e-6);
    expo_free(&e);
    fo_metrics_destroy(m);
}

static void test_call_outcomes(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, "GET /o");
    struct fo_backend_stats *b = fo_metrics_backend(m, ep, "be");
    for (int o = 0; o < FO_OUTCOME_COUNT; o++)
        for (int k = 0; k <= o; k++)
            fo_metrics_call(b, (enum fo_outcome)o, 5000);

    struct expo e;
    scrape(m, &zero_gauges, &e);
    for (int o = 0; o < FO_OUTCOME_COUNT; o++)
        assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", "GET /o", "backend",
                              "be", "outcome", fo_outcome_name((enum fo_outcome)o), NULL),
                     o + 1);
    assert_int_equal(count_samples(&e, "fanout_backend_calls_total"), FO_OUTCOME_COUNT);
    int total = FO_OUTCOME_COUNT * (FO_OUTCOME_COUNT + 1) / 2;
    assert_value(value_of(&e, "fanout_backend_call_duration_seconds_count", "endpoint", "GET /o",
                          "backend", "be", NULL),
                 total);
    /* An endpoint without backends has request series and no backend series. */
    assert_true(isnan(value_of(&e, "fanout_backend_calls_total", "endpoint", "GET /o", NULL)));
    expo_free(&e);
    fo_metrics_destroy(m);
}

static void test_label_escaping(void **state)
{
    struct fo_metrics *m = metrics_new();
    static const char *const eps[] = {
        "GET /a\"b",          /* quote */
        "GET /back\\slash",   /* backslash */
        "GET /new\nline",     /* newline */
        "GET /\\\"\\n\"\\",   /* all of them, and a literal backslash-n */
        "GET /{id},le=\"1\"", /* label syntax inside a value */
        "GET /caf\xc3\xa9",   /* UTF-8 passes as is */
        "",                   /* empty */
    };
    enum { N = sizeof eps / sizeof eps[0] };
    for (size_t i = 0; i < N; i++) {
        struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, eps[i]);
        fo_metrics_request(ep, 200, 100);
        fo_metrics_call(fo_metrics_backend(m, ep, eps[N - 1 - i]), FO_OK, 100);
    }

    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    assert_int_equal(fo_metrics_write(m, &zero_gauges, &out), 0);
    /* The escapes as written. */
    assert_non_null(strstr(out.data, "endpoint=\"GET /a\\\"b\""));
    assert_non_null(strstr(out.data, "endpoint=\"GET /back\\\\slash\""));
    assert_non_null(strstr(out.data, "endpoint=\"GET /new\\nline\""));
    assert_non_null(strstr(out.data, "endpoint=\"GET /\\\\\\\"\\\\n\\\"\\\\\""));
    fo_buf_free(&out);

    /* And read back: every value unescapes to the label it came from. */
    struct expo e;
    scrape(m, &zero_gauges, &e);
    for (size_t i = 0; i < N; i++) {
        assert_value(value_of(&e, "fanout_requests_total", "endpoint", eps[i], "code", "2xx", NULL),
                     1);
        assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", eps[i], "backend",
                              eps[N - 1 - i], "outcome", "ok", NULL),
                     1);
    }
    expo_free(&e);
    fo_metrics_destroy(m);
}

static void test_exposition_families(void **state)
{
    struct fo_metrics *m = metrics_new();
    for (int i = 0; i < 5; i++) {
        char label[32];
        snprintf(label, sizeof label, "GET /ep/%d", i);
        struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, label);
        fo_metrics_request(ep, 200, 1234);
        for (int k = 0; k < i; k++) {
            char be[16];
            snprintf(be, sizeof be, "b%d", k);
            fo_metrics_call(fo_metrics_backend(m, ep, be), FO_ERR_TIMEOUT, 4321);
        }
    }
    struct expo e;
    scrape(m, &zero_gauges, &e);
    static const char *const fams[][2] = {
        {"fanout_info", "gauge"},
        {"fanout_ready", "gauge"},
        {"fanout_requests_in_flight", "gauge"},
        {"fanout_jobs_queued", "gauge"},
        {"fanout_backend_calls_in_flight", "gauge"},
        {"fanout_backend_calls_waiting", "gauge"},
        {"fanout_client_connections", "gauge"},
        {"fanout_backend_connections_opened_total", "counter"},
        {"fanout_config_reloads_total", "counter"},
        {"fanout_auth_failures_total", "counter"},
        {"fanout_requests_total", "counter"},
        {"fanout_request_duration_seconds", "histogram"},
        {"fanout_backend_calls_total", "counter"},
        {"fanout_backend_call_duration_seconds", "histogram"},
        {"fanout_backend_tls_handshakes_total", "counter"},
    };
    enum { NF = sizeof fams / sizeof fams[0] };
    assert_int_equal(e.nfamilies, NF);
    for (size_t i = 0; i < NF; i++) {
        struct family *f = find_family(&e, fams[i][0], strlen(fams[i][0]));
        if (!f)
            fail_msg("family %s missing", fams[i][0]);
        assert_string_equal(f->type, fams[i][1]);
    }
    /* 5 endpoints x 6 classes; 0+1+2+3+4 backends x 7 outcomes; histograms per series. */
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 5 * 6);
    assert_int_equal(count_samples(&e, "fanout_backend_calls_total"), 10 * FO_OUTCOME_COUNT);
    assert_int_equal(count_samples(&e, "fanout_request_duration_seconds_bucket"),
                     5 * FO_HIST_BUCKETS);
    assert_int_equal(count_samples(&e, "fanout_backend_call_duration_seconds_bucket"),
                     10 * FO_HIST_BUCKETS);
    assert_int_equal(count_samples(&e, "fanout_backend_call_duration_seconds_sum"), 10);
    assert_int_equal(count_samples(&e, "fanout_backend_tls_handshakes_total"), 10);
    expo_free(&e);
    fo_metrics_destroy(m);
}

static void test_write_into_small_buffer(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, "GET /s");
    fo_metrics_request(ep, 200, 1);
    struct fo_buf out;
    fo_buf_init(&out, 100);
    assert_int_equal(fo_metrics_write(m, &zero_gauges, &out), -E2BIG);
    fo_buf_free(&out);
    fo_buf_init(&out, 2000); /* Past the fixed part, inside the series. */
    assert_int_equal(fo_metrics_write(m, &zero_gauges, &out), -E2BIG);
    fo_buf_free(&out);
    /* The registry lock was released: registering and writing still work. */
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /s"), ep);
    struct expo e;
    scrape(m, &zero_gauges, &e);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* ---- concurrency ------------------------------------------------------------------------ */

enum { THREADS = 8, ROUNDS = 20000, LABELS = 4 };

struct counter_thread {
    struct fo_metrics *m; /* Borrowed. */
    int id;
    pthread_t thread;
    struct fo_endpoint_stats *eps[LABELS]; /* Out: what registration returned. */
    struct fo_backend_stats *bes[LABELS];  /* Out. */
};

static void *counter_main(void *arg)
{
    struct counter_thread *t = arg;
    for (int i = 0; i < ROUNDS; i++) {
        int k = (i + t->id) % LABELS;
        char label[32];
        /* Find-or-create races with the other threads on the first rounds. */
        if (i < LABELS) {
            snprintf(label, sizeof label, "GET /c/%d", k);
            t->eps[k] = fo_metrics_endpoint(t->m, label);
            t->bes[k] = fo_metrics_backend(t->m, t->eps[k], "shared");
        }
        fo_metrics_request(t->eps[k], 200 + 100 * (unsigned)(i % 4), (int64_t)(i % 7) * 1000);
        fo_metrics_call(t->bes[k], (enum fo_outcome)(i % FO_OUTCOME_COUNT), i % 3);
        if (i % 5000 == 0)
            fo_metrics_reload(t->m, i % 2 == 0);
    }
    return NULL;
}

struct scraper_thread {
    struct fo_metrics *m; /* Borrowed. */
    atomic_bool stop;     /* Set when the counters are done. */
    int scrapes;          /* Out. */
    int bad;              /* Out: writes that failed or did not parse. */
    pthread_t thread;
};

static void *scraper_main(void *arg)
{
    struct scraper_thread *s = arg;
    do {
        struct fo_buf out;
        struct expo e;
        fo_buf_init(&out, FO_BUF_UNLIMITED);
        if (fo_metrics_write(s->m, &zero_gauges, &out) != 0) {
            s->bad++;
        } else {
            expo_parse(&e, out.data, out.len);
            s->bad += e.error[0] != '\0';
            expo_free(&e);
        }
        fo_buf_free(&out);
        s->scrapes++;
    } while (!atomic_load(&s->stop));
    return NULL;
}

static void test_concurrent_counting(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct counter_thread ts[THREADS];
    struct scraper_thread sc = {.m = m};
    assert_int_equal(pthread_create(&sc.thread, NULL, scraper_main, &sc), 0);
    for (int i = 0; i < THREADS; i++) {
        ts[i] = (struct counter_thread){.m = m, .id = i};
        assert_int_equal(pthread_create(&ts[i].thread, NULL, counter_main, &ts[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(ts[i].thread, NULL);
    atomic_store(&sc.stop, true);
    pthread_join(sc.thread, NULL);
    assert_int_equal(sc.bad, 0);
    assert_true(sc.scrapes > 0);

    /* Every thread got the same series for a label. */
    for (int i = 1; i < THREADS; i++)
        for (int k = 0; k < LABELS; k++) {
            assert_ptr_equal(ts[i].eps[k], ts[0].eps[k]);
            assert_ptr_equal(ts[i].bes[k], ts[0].bes[k]);
        }

    /* Exact sums: what each thread did, added up. */
    uint64_t req[LABELS][6] = {{0}}, calls[LABELS][FO_OUTCOME_COUNT] = {{0}};
    uint64_t req_sum[LABELS] = {0}, call_sum[LABELS] = {0}, ok = 0, failed = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < ROUNDS; i++) {
            int k = (i + t) % LABELS;
            req[k][2 + i % 4]++;
            req_sum[k] += (uint64_t)(i % 7) * 1000;
            calls[k][i % FO_OUTCOME_COUNT]++;
            call_sum[k] += (uint64_t)(i % 3);
            if (i % 5000 == 0 && i % 2 == 0)
                ok++;
            else if (i % 5000 == 0)
                failed++;
        }
    struct expo e;
    scrape(m, &zero_gauges, &e);
    static const char *const codes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int k = 0; k < LABELS; k++) {
        char label[32];
        snprintf(label, sizeof label, "GET /c/%d", k);
        uint64_t n = 0;
        for (int c = 0; c < 6; c++) {
            n += req[k][c];
            assert_value(
                value_of(&e, "fanout_requests_total", "endpoint", label, "code", codes[c], NULL),
                (double)req[k][c]);
        }
        assert_value(value_of(&e, "fanout_request_duration_seconds_count", "endpoint", label, NULL),
                     (double)n);
        assert_int_equal(atomic_load(&ts[0].eps[k]->duration.sum_us), req_sum[k]);
        for (int o = 0; o < FO_OUTCOME_COUNT; o++)
            assert_int_equal(atomic_load(&ts[0].bes[k]->calls[o]), calls[k][o]);
        assert_int_equal(atomic_load(&ts[0].bes[k]->duration.sum_us), call_sum[k]);
    }
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "ok", NULL), (double)ok);
    assert_value(value_of(&e, "fanout_config_reloads_total", "result", "error", NULL),
                 (double)failed);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* Many threads registering distinct series at once: none lost, none doubled. */
static void *register_main(void *arg)
{
    struct counter_thread *t = arg;
    for (int i = 0; i < 200; i++) {
        char label[32];
        snprintf(label, sizeof label, "GET /r/%d", i);
        struct fo_endpoint_stats *ep = fo_metrics_endpoint(t->m, label);
        snprintf(label, sizeof label, "b%d", t->id);
        fo_metrics_call(fo_metrics_backend(t->m, ep, label), FO_OK, 1);
        fo_metrics_request(ep, 200, 1);
    }
    return NULL;
}

static void test_concurrent_registration(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct counter_thread ts[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ts[i] = (struct counter_thread){.m = m, .id = i};
        assert_int_equal(pthread_create(&ts[i].thread, NULL, register_main, &ts[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(ts[i].thread, NULL);
    struct expo e;
    scrape(m, &zero_gauges, &e);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 200 * 6);
    assert_int_equal(count_samples(&e, "fanout_backend_calls_total"),
                     200 * THREADS * FO_OUTCOME_COUNT);
    for (int i = 0; i < 200; i += 37) {
        char label[32];
        snprintf(label, sizeof label, "GET /r/%d", i);
        assert_value(value_of(&e, "fanout_requests_total", "endpoint", label, "code", "2xx", NULL),
                     THREADS);
        assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", label, "backend", "b3",
                              "outcome", "ok", NULL),
                     1);
    }
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* ---- reference counts ------------------------------------------------------------------- */

/* Requests-total samples of 'label' in a fresh scrape (6 while the series exists, else 0). */
static size_t endpoint_samples(struct fo_metrics *m, const char *label)
{
    struct expo e;
    scrape(m, &zero_gauges, &e);
    size_t n = 0;
    for (size_t i = 0; i < e.nsamples; i++) {
        const struct sample *s = &e.samples[i];
        const char *l = label_of(s, "endpoint");
        n += strcmp(s->name, "fanout_requests_total") == 0 && l && strcmp(l, label) == 0;
    }
    expo_free(&e);
    return n;
}

/* Backend-calls samples of 'ep'/'be' in a fresh scrape (FO_OUTCOME_COUNT or 0). */
static size_t backend_samples(struct fo_metrics *m, const char *ep, const char *be)
{
    struct expo e;
    scrape(m, &zero_gauges, &e);
    size_t n = 0;
    for (size_t i = 0; i < e.nsamples; i++) {
        const struct sample *s = &e.samples[i];
        const char *l = label_of(s, "endpoint"), *b = label_of(s, "backend");
        n += strcmp(s->name, "fanout_backend_calls_total") == 0 && l && b && strcmp(l, ep) == 0 &&
             strcmp(b, be) == 0;
    }
    expo_free(&e);
    return n;
}

/* Two scrapes: the first writes what was released one last time and frees it. */
static void scrape_settled(struct fo_metrics *m, struct expo *e)
{
    scrape(m, &zero_gauges, e);
    expo_free(e);
    scrape(m, &zero_gauges, e);
}

static void test_refcount_endpoint(void **state)
{
    struct fo_metrics *m = metrics_new();
    /* Register twice (two configs naming it): one series. */
    struct fo_endpoint_stats *a = fo_metrics_endpoint(m, "GET /a");
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /a"), a);
    fo_metrics_request(a, 200, 10);
    assert_int_equal(endpoint_samples(m, "GET /a"), 6);

    /* Release once: the other reference keeps it, counting on, scrape after scrape. */
    fo_metrics_endpoint_release(m, a);
    assert_int_equal(endpoint_samples(m, "GET /a"), 6);
    fo_metrics_request(a, 200, 10);
    assert_int_equal(endpoint_samples(m, "GET /a"), 6);

    /* Release again: the next scrape has its final values, the one after has it no more
     * (ASan: and it was freed). */
    fo_metrics_endpoint_release(m, a);
    struct expo e;
    scrape(m, &zero_gauges, &e);
    assert_value(value_of(&e, "fanout_requests_total", "endpoint", "GET /a", "code", "2xx", NULL),
                 2);
    expo_free(&e);
    assert_int_equal(endpoint_samples(m, "GET /a"), 0);

    /* Released and registered again before a scrape: the same series, counts intact. */
    struct fo_endpoint_stats *r = fo_metrics_endpoint(m, "GET /r");
    fo_metrics_request(r, 500, 10);
    fo_metrics_endpoint_release(m, r);
    assert_ptr_equal(fo_metrics_endpoint(m, "GET /r"), r);
    fo_metrics_request(r, 500, 10);
    scrape_settled(m, &e);
    assert_value(value_of(&e, "fanout_requests_total", "endpoint", "GET /r", "code", "5xx", NULL),
                 2);
    expo_free(&e);

    /* Registered after it was freed: a new series from zero. */
    a = fo_metrics_endpoint(m, "GET /a");
    scrape(m, &zero_gauges, &e);
    assert_value(value_of(&e, "fanout_requests_total", "endpoint", "GET /a", "code", "2xx", NULL),
                 0);
    expo_free(&e);
    fo_metrics_endpoint_release(m, NULL); /* A no-op. */
    fo_metrics_destroy(m);                /* Frees what is still referenced. */
}

static void test_refcount_backend(void **state)
{
    struct fo_metrics *m = metrics_new();
    struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, "GET /e");
    struct fo_backend_stats *b = fo_metrics_backend(m, ep, "users");
    assert_ptr_equal(fo_metrics_backend(m, ep, "users"), b);
    struct fo_backend_stats *o = fo_metrics_backend(m, ep, "orders");
    fo_metrics_call(b, FO_OK, 10);
    assert_int_equal(backend_samples(m, "GET /e", "users"), FO_OUTCOME_COUNT);

    /* The endpoint's own reference goes first: its backends keep it listed. */
    fo_metrics_endpoint_release(m, ep);
    assert_int_equal(endpoint_samples(m, "GET /e"), 6);
    assert_int_equal(endpoint_samples(m, "GET /e"), 6);
    fo_metrics_backend_release(m, b);
    assert_int_equal(backend_samples(m, "GET /e", "users"), FO_OUTCOME_COUNT);
    fo_metrics_call(b, FO_OK, 10);
    struct expo e;
    scrape(m, &zero_gauges, &e);
    assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", "GET /e", "backend",
                          "users", "outcome", "ok", NULL),
                 2);
    expo_free(&e);

    /* The last reference on "users" drops that backend only, after one more scrape. */
    fo_metrics_backend_release(m, b);
    assert_int_equal(backend_samples(m, "GET /e", "users"), FO_OUTCOME_COUNT);
    assert_int_equal(backend_samples(m, "GET /e", "users"), 0);
    assert_int_equal(backend_samples(m, "GET /e", "orders"), FO_OUTCOME_COUNT);
    assert_int_equal(endpoint_samples(m, "GET /e"), 6);

    /* The last backend takes the unreferenced endpoint with it. */
    fo_metrics_backend_release(m, o);
    assert_int_equal(endpoint_samples(m, "GET /e"), 6);
    assert_int_equal(backend_samples(m, "GET /e", "orders"), 0);
    assert_int_equal(endpoint_samples(m, "GET /e"), 0);
    fo_metrics_backend_release(m, NULL); /* A no-op. */
    fo_metrics_destroy(m);
}

/* Dropping the first, a middle and the last of the registry's and an endpoint's lists keeps
 * the others whole. */
static void test_refcount_list_positions(void **state)
{
    struct fo_metrics *m = metrics_new();
    enum { N = 5 };
    struct fo_endpoint_stats *eps[N];
    struct fo_backend_stats *bes[N];
    char label[32];
    for (int i = 0; i < N; i++) {
        snprintf(label, sizeof label, "GET /l/%d", i);
        eps[i] = fo_metrics_endpoint(m, label);
        snprintf(label, sizeof label, "b%d", i);
        bes[i] = fo_metrics_backend(m, eps[0], label);
        fo_metrics_request(eps[i], 200, 1);
        fo_metrics_call(bes[i], FO_OK, 1);
    }
    static const int order[N] = {2, 0, 4, 1, 3}; /* Middle, last, first, ... */
    for (int k = 0; k < N; k++) {
        if (order[k] != 0)
            fo_metrics_endpoint_release(m, eps[order[k]]);
        fo_metrics_backend_release(m, bes[order[k]]);
        struct expo e;
        scrape_settled(m, &e);
        int left = N - 1 - k;
        assert_int_equal(count_samples(&e, "fanout_backend_calls_total"), left * FO_OUTCOME_COUNT);
        for (int j = k + 1; j < N; j++) {
            snprintf(label, sizeof label, "b%d", order[j]);
            assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", "GET /l/0",
                                  "backend", label, "outcome", "ok", NULL),
                         1);
            snprintf(label, sizeof label, "GET /l/%d", order[j]);
            assert_value(
                value_of(&e, "fanout_requests_total", "endpoint", label, "code", "2xx", NULL), 1);
        }
        expo_free(&e);
    }
    /* /l/0 is still referenced though its backends are gone. */
    assert_int_equal(endpoint_samples(m, "GET /l/0"), 6);
    fo_metrics_endpoint_release(m, eps[0]);
    struct expo e;
    scrape_settled(m, &e);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 0);
    assert_int_equal(count_samples(&e, "fanout_request_duration_seconds_count"), 0);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* Nobody scrapes: released series are freed anyway once they pass the slack. */
static void test_orphans_bounded_without_scrape(void **state)
{
    struct fo_metrics *m = metrics_new();
    enum { LIVE = 100, NGONE = 3 * FO_METRICS_ORPHAN_SLACK };
    char label[32];
    for (int i = 0; i < LIVE; i++) {
        snprintf(label, sizeof label, "GET /live/%d", i);
        fo_metrics_endpoint(m, label);
    }
    for (int i = 0; i < NGONE; i++) {
        snprintf(label, sizeof label, "GET /gone/%d", i);
        struct fo_endpoint_stats *ep = fo_metrics_endpoint(m, label);
        struct fo_backend_stats *b = fo_metrics_backend(m, ep, "b");
        fo_metrics_backend_release(m, b);
        fo_metrics_endpoint_release(m, ep);
    }
    struct expo e;
    scrape(m, &zero_gauges, &e);
    size_t eps = count_samples(&e, "fanout_requests_total") / 6;
    size_t bes = count_samples(&e, "fanout_backend_calls_total") / FO_OUTCOME_COUNT;
    if (eps + bes > LIVE + FO_METRICS_ORPHAN_SLACK + 1)
        fail_msg("%zu endpoint and %zu backend series after %d released", eps, bes, 2 * NGONE);
    assert_true(eps >= LIVE);
    expo_free(&e);
    scrape(m, &zero_gauges, &e);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), LIVE * 6);
    assert_int_equal(count_samples(&e, "fanout_backend_calls_total"), 0);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* Reloads as the server does them, from several threads at once while a scraper runs: each
 * round registers a config (a shared endpoint and backend plus one of its own), counts into
 * it, then releases the previous round's config. The shared series count every add; at the
 * end only the last configs' series are left. */
enum { RELOAD_ROUNDS = 300 };

struct reload_thread {
    struct fo_metrics *m; /* Borrowed. */
    int id;
    pthread_t thread;
};

struct held {
    struct fo_endpoint_stats *shared, *own; /* References. */
    struct fo_backend_stats *shared_be, *own_be;
};

static void hold_release(struct fo_metrics *m, struct held *h)
{
    fo_metrics_backend_release(m, h->shared_be);
    fo_metrics_backend_release(m, h->own_be);
    fo_metrics_endpoint_release(m, h->shared);
    fo_metrics_endpoint_release(m, h->own);
}

static void *reload_main(void *arg)
{
    struct reload_thread *t = arg;
    struct held prev = {0};
    for (int i = 0; i < RELOAD_ROUNDS; i++) {
        char label[48];
        struct held cur;
        cur.shared = fo_metrics_endpoint(t->m, "GET /shared");
        cur.shared_be = fo_metrics_backend(t->m, cur.shared, "s");
        snprintf(label, sizeof label, "GET /t%d/%d", t->id, i);
        cur.own = fo_metrics_endpoint(t->m, label);
        cur.own_be = fo_metrics_backend(t->m, cur.own, "o");
        hold_release(t->m, &prev);
        fo_metrics_request(cur.shared, 200, 1);
        fo_metrics_call(cur.shared_be, FO_OK, 1);
        fo_metrics_request(cur.own, 200, 1);
        prev = cur;
    }
    hold_release(t->m, &prev);
    return NULL;
}

static void test_concurrent_reloads(void **state)
{
    struct fo_metrics *m = metrics_new();
    /* A reference held throughout, like the boot config. */
    struct fo_endpoint_stats *shared = fo_metrics_endpoint(m, "GET /shared");
    struct fo_backend_stats *shared_be = fo_metrics_backend(m, shared, "s");
    struct scraper_thread sc = {.m = m};
    assert_int_equal(pthread_create(&sc.thread, NULL, scraper_main, &sc), 0);
    struct reload_thread ts[4];
    for (int i = 0; i < 4; i++) {
        ts[i] = (struct reload_thread){.m = m, .id = i};
        assert_int_equal(pthread_create(&ts[i].thread, NULL, reload_main, &ts[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(ts[i].thread, NULL);
    atomic_store(&sc.stop, true);
    pthread_join(sc.thread, NULL);
    assert_int_equal(sc.bad, 0);

    struct expo e;
    scrape_settled(m, &e);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 6);
    assert_int_equal(count_samples(&e, "fanout_backend_calls_total"), FO_OUTCOME_COUNT);
    assert_value(
        value_of(&e, "fanout_requests_total", "endpoint", "GET /shared", "code", "2xx", NULL),
        4 * RELOAD_ROUNDS);
    assert_value(value_of(&e, "fanout_backend_calls_total", "endpoint", "GET /shared", "backend",
                          "s", "outcome", "ok", NULL),
                 4 * RELOAD_ROUNDS);
    expo_free(&e);
    fo_metrics_backend_release(m, shared_be);
    fo_metrics_endpoint_release(m, shared);
    scrape_settled(m, &e);
    assert_int_equal(count_samples(&e, "fanout_requests_total"), 0);
    expo_free(&e);
    fo_metrics_destroy(m);
}

/* The parser itself rejects what it should, so a pass means something. */
static void test_parser_rejects(void **state)
{
    static const char *const bad_texts[] = {
        "x 1",                                                  /* no newline */
        "# TYPE x counter\nx 1\n\n",                            /* empty line */
        "x 1\n",                                                /* no TYPE */
        "# HELP x h\n# TYPE x counter\nx{a=\"\\q\"} 1\n",       /* bad escape */
        "# HELP x h\n# TYPE x counter\nx{a=\"1\",a=\"2\"} 1\n", /* label twice */
        "# HELP x h\n# TYPE x counter\nx 1\nx 2\n",             /* duplicate */
        "# HELP x h\n# TYPE x counter\nx -1\n",                 /* negative counter */
        "# HELP x h\n# TYPE x counter\n# HELP y h\n# TYPE y gauge\ny 1\nx 1\n", /* regroup */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP x h\n# TYPE x counter\nx 1 1700000000\n", /* timestamp: not ours */
    };
    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
        struct expo e;
        expo_parse(&e, bad_texts[i], strlen(bad_texts[i]));
        if (!e.error[0])
            fail_msg("parser accepted bad text %zu", i);
        expo_free(&e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_rejects),
        cmocka_unit_test(test_series_identity),
        cmocka_unit_test(test_empty_registry_exposition),
        cmocka_unit_test(test_request_classes),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_call_outcomes),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_exposition_families),
        cmocka_unit_test(test_write_into_small_buffer),
        cmocka_unit_test(test_concurrent_counting),
        cmocka_unit_test(test_concurrent_registration),
        cmocka_unit_test(test_refcount_endpoint),
        cmocka_unit_test(test_refcount_backend),
        cmocka_unit_test(test_refcount_list_positions),
        cmocka_unit_test(test_orphans_bounded_without_scrape),
        cmocka_unit_test(test_concurrent_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
