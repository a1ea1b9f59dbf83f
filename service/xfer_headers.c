/* xfer_headers.c -- the request header lines of one backend call (see xfer_headers.h).
 *
 * A line is appended to 'text' with its NUL and its start recorded; the
 * nodes are linked to their lines only once all are in, since 'text' may move
 * while it grows. */
#include "xfer_headers.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "token.h"
#include "version.h"

/* What a list keeps for its next call; past this it gives the storage back. */
#define KEEP_TEXT_BYTES (16 * 1024)
#define KEEP_LINES      64

/* The first line of every list; fo_hdrs_set_timeout rewrites its value. */
#define TIMEOUT_PREFIX     "X-Timeout-Ms: "
#define TIMEOUT_PREFIX_LEN (sizeof TIMEOUT_PREFIX - 1)

void fo_hdrs_init(struct fo_hdrs *h)
{
    memset(h, 0, sizeof *h);
    fo_buf_init(&h->text, FO_BUF_UNLIMITED);
}

/* Append the line a[0..an) b[0..bn). Returns 0 or -ENOMEM. */
static int add(struct fo_hdrs *h, const char *a, size_t an, const char *b, size_t bn)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        struct curl_slist *nodes = realloc(h->nodes, cap * sizeof *nodes);
        if (!nodes)
            return -ENOMEM;
        h->nodes = nodes;
        size_t *starts = realloc(h->starts, cap * sizeof *starts);
        if (!starts)
            return -ENOMEM;
        h->starts = starts;
        h->cap = cap;
    }
    size_t start = h->text.len;
    if (fo_buf_reserve(&h->text, an + bn + 1) < 0)
        return -ENOMEM;
    fo_buf_append(&h->text, a, an);
    fo_buf_append(&h->text, b, bn);
    fo_buf_putc(&h->text, '\0');
    h->starts[h->n++] = start;
    return 0;
}

static int add_str(struct fo_hdrs *h, const char *line)
{
    return add(h, line, strlen(line), NULL, 0);
}

/* True for a configured or client-given header line that would repeat one
 * fanout sets itself: X-Timeout-Ms, X-Request-Id and X-Fanout-Attempt always,
 * Content-Type when fanout sends a JSON body. Fanout's own value wins.
 * Expect is never sent. */
static bool own_header(const char *line, bool body)
{
    size_t n = strcspn(line, ":");
    return (n == 12 && strncasecmp(line, "X-Timeout-Ms", n) == 0) ||
           (n == 12 && strncasecmp(line, "X-Request-Id", n) == 0) ||
           (n == 16 && strncasecmp(line, "X-Fanout-Attempt", n) == 0) ||
           (n == 6 && strncasecmp(line, "Expect", n) == 0) ||
           (body && n == 12 && strncasecmp(line, "Content-Type", n) == 0);
}

/* A configured or client-given "Name: value" line. Curl reads "Name:" with
 * nothing after it as "remove my own Name header", so an empty value goes as
 * "Name;", curl's syntax for a header sent empty. */
static int add_call_header(struct fo_hdrs *h, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon[1 + strspn(colon + 1, " \t")] != '\0')
        return add_str(h, line);
    return add(h, line, (size_t)(colon - line), ";", 1);
}

/* True when the call's own headers name 'name'. */
static bool has_header(const struct fo_call *call, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < call->nheaders; i++)
        if (strncasecmp(call->headers[i], name, n) == 0 && call->headers[i][n] == ':')
            return true;
    return false;
}

static int add_lines(struct fo_hdrs *h, const struct fo_call *call, const char *request_id,
                     int64_t budget_ms, unsigned attempt)
{
    char digits[FO_FMT_MAX];
    int rc = add(h, TIMEOUT_PREFIX, TIMEOUT_PREFIX_LEN, digits, fo_fmt_i64(digits, budget_ms));
    if (rc == 0 && request_id)
        rc = add(h, "X-Request-Id: ", 14, request_id, strlen(request_id));
    if (rc == 0 && attempt > 0)
        rc = add(h, "X-Fanout-Attempt: ", 18, digits, fo_fmt_u64(digits, attempt));
    for (size_t i = 0; rc == 0 && i < call->nheaders; i++)
        if (!own_header(call->headers[i], call->body != NULL))
            rc = add_call_header(h, call->headers[i]);
    if (rc == 0 && !has_header(call, "Accept")) /* A forwarded Accept says what the client takes. */
        rc = add_str(h, "Accept: application/json");
    if (rc == 0 && !has_header(call, "User-Agent"))
        rc = add_str(h, "User-Agent: fanout/" FO_VERSION);
    bool takes_body = fo_method_has_body(call->method);
    if (rc < 0)
        return rc;
    if (call->body && call->body_type && call->body_type[0]) /* The client's, forwarded. */
        rc = add(h, "Content-Type: ", 14, call->body_type, strlen(call->body_type));
    else if (call->body)
        rc = add_str(h, call->body_type ? "Content-Type:" : "Content-Type: application/json");
    else if (takes_body && !has_header(call, "Content-Type"))
        rc = add_str(h, "Content-Type:"); /* Not curl's form type for an empty body. */
    if (rc == 0 && (call->body || takes_body))
        rc = add_str(h, "Expect:"); /* No 100-continue round trip. */
    return rc;
}

int fo_hdrs_build(struct fo_hdrs *h, const struct fo_call *call, const char *request_id,
                  int64_t budget_ms, unsigned attempt)
{
    fo_hdrs_clear(h);
    int rc = add_lines(h, call, request_id, budget_ms, attempt);
    if (rc < 0) {
        fo_hdrs_clear(h);
        return rc;
    }
    for (size_t i = 0; i < h->n; i++) {
        h->nodes[i].data = h->text.data + h->starts[i];
        h->nodes[i].next = i + 1 < h->n ? &h->nodes[i + 1] : NULL;
    }
    return 0;
}

struct curl_slist *fo_hdrs_list(struct fo_hdrs *h)
{
    return h->n ? h->nodes : NULL;
}

void fo_hdrs_set_timeout(struct fo_hdrs *h, int64_t left_ms)
{
    if (!h->n)
        return;
    char *line = h->nodes[0].data, digits[FO_FMT_MAX];
    size_t n = fo_fmt_i64(digits, left_ms), room = strlen(line) - TIMEOUT_PREFIX_LEN;
    if (n <= room) {
        memcpy(line + TIMEOUT_PREFIX_LEN, digits, n);
        line[TIMEOUT_PREFIX_LEN + n] = '\0';
    }
}

void fo_hdrs_clear(struct fo_hdrs *h)
{
    h->n = 0;
    if (h->text.cap > KEEP_TEXT_BYTES || h->cap > KEEP_LINES)
        fo_hdrs_free(h);
    else
        fo_buf_reset(&h->text);
}

void fo_hdrs_free(struct fo_hdrs *h)
{
    free(h->nodes);
    free(h->starts);
    fo_buf_free(&h->text);
    h->nodes = NULL;
    h->starts = NULL;
    h->n = h->cap = 0;
}
