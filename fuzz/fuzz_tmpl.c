/* fuzz_tmpl.c -- libFuzzer target for path.c and tmpl.c (path match and URL expansion).
 *
 * The input is three lines: a path pattern, a URL template, then the raw
 * request path (the rest, any bytes). Checks: a match yields one value per
 * placeholder, none "." or ".." or longer than FO_MAX_PARAM_LEN; "no match"
 * and errors leave no values; an expanded URL has no space or control byte
 * and exactly as many '/', '?', '&', '#', '=' and '%'-escapes-of-its-own as
 * the template text -- a value never adds structure; and each value, once
 * encoded, decodes back to itself. Besides the path parameters the template
 * may name {query.x} (any x): its value is the raw path itself, read as
 * percent-encoded text, so hostile escapes reach the encoder too. The raw
 * path is also matched against a few fixed patterns. Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_tmpl.c \
 *       service/tmpl.c service/path.c service/buf.c -o /tmp/fuzz_tmpl */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static size_t count_structure(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '/' || s[i] == '?' || s[i] == '&' || s[i] == '#' || s[i] == '=';
    return c;
}

/* The same count over a template's literal text (placeholders and defaults left out). */
static size_t count_template_structure(const char *s)
{
    size_t c = 0;
    for (; *s; s++) {
        if (*s == '{') {
            const char *close = strchr(s, '}');
            if (close) {
                s = close;
                continue;
            }
        }
        c += count_structure(s, 1);
    }
    return c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* fo_url_encode(v) must decode back to v and hold only unreserved bytes and %XX. */
static void check_roundtrip(const char *v, size_t n)
{
    struct fo_buf enc;
    fo_buf_init(&enc, FO_BUF_UNLIMITED);
    check(fo_url_encode(&enc, v, n) == 0);
    size_t o = 0;
    for (size_t i = 0; i < enc.len; i++) {
        char c = enc.data[i];
        if (c == '%') {
            check(i + 2 < enc.len);
            int hi = hexval(enc.data[i + 1]);
            int lo = hexval(enc.data[i + 2]);
            check(hi >= 0 && lo >= 0);
            check(o < n && (unsigned char)v[o] == (unsigned)(hi << 4 | lo));
            i += 2;
        } else {
            check((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~');
            check(o < n && v[o] == c);
        }
        o++;
    }
    check(o == n);
    fo_buf_free(&enc);
}

static void check_match(const struct fo_path *p, const char *raw, size_t n,
                        struct fo_params *params)
{
    int rc = fo_path_match(p, raw, n, params);
    check(rc == 1 || rc == 0 || rc == -EINVAL);
    if (rc != 1) {
        check(params->n == 0);
        return;
    }
    for (size_t i = 0; i < params->n; i++) {
        const char *v = params->p[i].value;
        size_t len = params->p[i].len;
        check(v != NULL && params->p[i].name != NULL && v[len] == '\0');
        check(len >= 1 && len <= FO_MAX_PARAM_LEN);
        check(!(len == 1 && v[0] == '.') && !(len == 2 && v[0] == '.' && v[1] == '.'));
        check(fo_path_param_index(p, params->p[i].name, strlen(params->p[i].name)) == (int)i);
        check_roundtrip(v, len);
    }
}

/* The request the lookups read: the path parameters and the raw bytes. */
struct freq {
    const struct fo_params *params;
    const char *raw;
    size_t rawlen;
};

static int bind_path(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    int idx = fo_path_param_index(arg, s, n);
    if (idx < 0 && err && errlen)
        err[0] = '\0';
    return idx < 0 ? -EINVAL : idx;
}

static void lookup_path(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct freq *r = req;
    if ((size_t)id < r->params->n)
        *out = (struct fo_tmpl_val){r->params->p[id].value, r->params->p[id].len, false};
}

static int bind_any(const void *arg, const char *s, size_t n, char *err, size_t errlen)
{
    return 0;
}

static void lookup_raw(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out)
{
    const struct freq *r = req;
    *out = (struct fo_tmpl_val){r->raw, r->rawlen, true};
}

static const struct fo_tmpl_ns fuzz_ns[] = {
    {.name = "", .bind = bind_path, .lookup = lookup_path},
    {.name = "query", .bind = bind_any, .lookup = lookup_raw},
};

static const char *const fixed[] = {"/", "/a/{id}", "/u/{id}/o/{oid}/", "/{a}/{b}/{c}"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl1 = memchr(s, '\n', size);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - s)) : NULL;
    const char *raw = nl2 ? nl2 + 1 : s;
    size_t rawlen = size - (size_t)(raw - s);
    struct fo_params params = {0};

    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        struct fo_path *p = NULL;
        check(fo_path_compile(&p, fixed[i], NULL, 0) == 0);
        check_match(p, raw, rawlen, &params);
        fo_params_clear(&params);
        fo_path_destroy(p);
    }
    if (!nl2)
        return 0;

    char *pattern = strndup(s, (size_t)(nl1 - s));
    char *url = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
    check(pattern && url);
    struct fo_path *p = NULL;
    struct fo_tmpl *t = NULL;
    struct fo_tmpl_scope *sc = NULL;
    char err[128];
    int rc = fo_path_compile(&p, pattern, err, sizeof err);
    check(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        check(p == NULL && memchr(err, '\0', sizeof err) != NULL);
        goto out;
    }
    check(strcmp(fo_path_pattern(p), pattern) == 0);
    /* The pattern text matches itself when it has no placeholder. */
    if (!strchr(pattern, '{'))
        check(fo_path_match(p, pattern, strlen(pattern), &params) == 1);
    fo_params_clear(&params);

    check(fo_tmpl_scope_create(&sc, fuzz_ns, 2, p) == 0);
    rc = fo_tmpl_compile(&t, url, FO_TMPL_URL, sc, err, sizeof err);
    check(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        check(t == NULL);
        goto out;
    }
    check_match(p, raw, rawlen, &params);
    if (params.n == 0 && strchr(pattern, '{'))
        goto out;

    struct freq req = {&params, raw, rawlen};
    struct fo_tmpl_vals vals;
    fo_tmpl_resolve(sc, &req, &vals);
    struct fo_buf out;
    fo_buf_init(&out, FO_BUF_UNLIMITED);
    rc = fo_tmpl_expand(t, &vals, &out, NULL);
    /* Refused only for a dot segment made by the raw bytes in the path. */
    check(rc == 0 || rc == -EILSEQ);
    if (rc < 0) {
        fo_buf_free(&out);
        goto out;
    }
    for (size_t i = 0; i < out.len; i++)
        check((unsigned char)out.data[i] > 0x20 && out.data[i] != 0x7f);
    check(count_structure(out.data, out.len) == count_template_structure(url));
    check(strncmp(out.data, url, 7) == 0);
    fo_buf_free(&out);
out:
    fo_params_clear(&params);
    fo_tmpl_destroy(t);
    fo_tmpl_scope_destroy(sc);
    fo_path_destroy(p);
    free(pattern);
    free(url);
    return 0;
}
