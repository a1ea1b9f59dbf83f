/* fuzz_json.c -- libFuzzer target for json.c and merge.c.
 *
 * Checks, for any input: fo_json_put_string always yields valid JSON;
 * validation agrees with itself at a larger depth. For a valid input: every
 * member and element of it validates on its own, keys decode and re-encode to
 * the same bytes, and the merged documents built from it (lifted, named,
 * failed, with a report, as an error) are valid JSON without duplicate
 * top-level keys. Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_json.c \
 *       service/json.c service/json_raw.c service/merge.c service/buf.c service/outcome.c -o /tmp/fuzz_json */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_KEYS 512 /* Duplicate-key check is quadratic; skip it beyond this. */

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool valid(const struct fo_buf *b)
{
    return fo_json_validate(b->data, b->len, FO_JSON_MAX_DEPTH, NULL) == 0;
}

/* A decoded key must survive put_string and unescape unchanged. */
static void check_key(struct fo_json_span k, struct fo_buf *tmp)
{
    struct fo_buf enc, dec;

    check(fo_json_kind(k) == FO_JSON_STRING);
    check(fo_json_validate(k.p, k.len, 0, NULL) == 0);
    fo_buf_reset(tmp);
    check(fo_json_unescape(k, tmp) == 0);
    const char *d = tmp->data ? tmp->data : "";
    if (!memchr(d, '\0', tmp->len))
        check(fo_json_str_eq(k, d));
    fo_buf_init(&enc, FO_BUF_UNLIMITED);
    fo_buf_init(&dec, FO_BUF_UNLIMITED);
    check(fo_json_put_string(&enc, d, tmp->len) == 0);
    struct fo_json_span again = {enc.data, enc.len};
    check(fo_json_validate(again.p, again.len, 0, NULL) == 0);
    check(fo_json_unescape(again, &dec) == 0);
    check(dec.len == tmp->len && (dec.len == 0 || memcmp(dec.data, d, dec.len) == 0));
    fo_buf_free(&enc);
    fo_buf_free(&dec);
}

/* Walk a container one level down; every part must be valid by itself. */
static void check_children(struct fo_json_span v, struct fo_buf *tmp)
{
    struct fo_json_iter it;
    struct fo_json_span k, m;

    if (fo_json_kind(v) == FO_JSON_OBJECT) {
        check(fo_json_iter_object(&it, v) == 0);
        check(fo_json_iter_array(&it, v) == -EINVAL);
        while (fo_json_next_member(&it, &k, &m)) {
            check(k.p >= v.p && m.p + m.len <= v.p + v.len);
            check_key(k, tmp);
            check(fo_json_validate(m.p, m.len, FO_JSON_MAX_DEPTH, NULL) == 0);
        }
    } else if (fo_json_kind(v) == FO_JSON_ARRAY) {
        check(fo_json_iter_array(&it, v) == 0);
        while (fo_json_next_element(&it, &m)) {
            check(m.p >= v.p && m.p + m.len <= v.p + v.len);
            check(fo_json_validate(m.p, m.len, FO_JSON_MAX_DEPTH, NULL) == 0);
        }
    } else {
        check(fo_json_iter_object(&it, v) == -EINVAL);
        check(fo_json_iter_array(&it, v) == -EINVAL);
        if (fo_json_kind(v) == FO_JSON_STRING)
            check_key(v, tmp);
    }
}

/* The merged document: valid, and no top-level key twice. */
static void check_document(const struct fo_buf *out, struct fo_buf *tmp)
{
    struct fo_json_span v, k, m;
    struct fo_json_iter it;
    size_t off[MAX_KEYS + 1], len[MAX_KEYS + 1];
    size_t n = 0;

    check(fo_json_validate(out->data, out->len, FO_JSON_MAX_DEPTH, &v) == 0);
    check(fo_json_kind(v) == FO_JSON_OBJECT);
    check(fo_json_iter_object(&it, v) == 0);
    fo_buf_reset(tmp);
    while (fo_json_next_member(&it, &k, &m) && n <= MAX_KEYS) {
        off[n] = tmp->len;
        check(fo_json_unescape(k, tmp) == 0);
        len[n] = tmp->len - off[n];
        for (size_t i = 0; i < n; i++)
            check(len[i] != len[n] || memcmp(tmp->data + off[i], tmp->data + off[n], len[n]) != 0);
        n++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct fo_buf out, tmp;
    struct fo_json_span v;

    fo_buf_init(&out, FO_BUF_UNLIMITED);
    fo_buf_init(&tmp, FO_BUF_UNLIMITED);

    /* Any bytes make a valid string literal. */
    check(fo_json_put_string(&out, s, size) == 0);
    check(valid(&out));
    fo_buf_reset(&out);

    int rc = fo_json_validate(s, size, FO_JSON_DEFAULT_DEPTH, &v);
    check(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    int deep = fo_json_validate(s, size, UINT_MAX, NULL);
    if (rc == 0)
        check(deep == 0);
    if (rc != 0)
        goto out;
    check(v.p >= s && v.p + v.len <= s + size && v.len > 0);
    check(fo_json_validate(v.p, v.len, FO_JSON_DEFAULT_DEPTH, NULL) == 0);
    check_children(v, &tmp);

    /* Merge it: lifted, named, failed (absent), and its first member lifted. */
    struct fo_call r[4] = {
        {.name = "a", .merge = true, .outcome = FO_OK, .status = 200, .ms = 1.25, .json = v},
        {.name = "b", .merge = false, .outcome = FO_OK, .status = 201, .ms = 2, .json = v},
        {.name = "a", .merge = true, .outcome = FO_ERR_TIMEOUT, .ms = 3, .json = v},
        {.name = "c\"\n", .merge = true, .outcome = FO_OK, .ms = 4},
    };
    struct fo_json_iter it;
    struct fo_json_span k, m = v;
    if (fo_json_iter_object(&it, v) == 0 && fo_json_next_member(&it, &k, &m))
        r[3].json = m;
    else if (fo_json_iter_array(&it, v) == 0 && fo_json_next_element(&it, &m))
        r[3].json = m;
    else
        r[3].json = v;
    struct fo_report rep = {.complete = false, .elapsed_ms = 12.34};

    check(fo_merge_write(&out, r, 4, NULL) == 0);
    check_document(&out, &tmp);
    fo_buf_reset(&out);
    check(fo_merge_write(&out, r, 4, &rep) == 0);
    check_document(&out, &tmp);
    fo_buf_reset(&out);
    check(fo_merge_write(&out, r, 1, &rep) == 0);
    check_document(&out, &tmp);

    /* An error body with the input as its texts. */
    char text[64];
    size_t tn = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, s, tn);
    text[tn] = '\0';
    fo_buf_reset(&out);
    check(fo_merge_error(&out, text, text, text, r, 4, &rep) == 0);
    check_document(&out, &tmp);

out:
    fo_buf_free(&out);
    fo_buf_free(&tmp);
    return 0;
}
