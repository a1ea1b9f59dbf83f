/* fuzz_shape.c -- libFuzzer target for the shaping edits (jpath.c, jtree.c, shape.c).
 *
 * The input is one line of up to 8 space-separated paths, then a body (any bytes). Bodies
 * that are not valid JSON are skipped (the pipeline validates first). Every edit runs on
 * its own tree: target (each path without "*"), allow and deny with the paths in the given
 * order and reversed, rename of each path to "r", and the ops (move and append between
 * consecutive paths with as many "*", del of each). Checks: every result is valid JSON;
 * allow and deny give the same bytes whatever the order of their paths; an arena cap is
 * obeyed (-E2BIG, never more). Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_shape.c \
 *       service/jpath.c service/jtree.c service/shape.c service/json.c service/buf.c \
 *       service/budget.c */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jpath.h"
#include "jtree.h"
#include "json.h"
#include "shape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PATHS 8
#define ARENA     (256 * 1024)

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Write the tree, check the text, and keep it in *out (caller frees) when asked. */
static void emit(struct fo_jtree *t, int rc, char **out)
{
    check(rc == 0 || rc == 1 || rc == -E2BIG);
    check(t->used <= ARENA);
    if (rc == 0) {
        struct fo_buf b;
        fo_buf_init(&b, FO_BUF_UNLIMITED);
        check(fo_jtree_write(t->root, &b) == 0);
        check(fo_json_validate(b.data ? b.data : "", b.len, FO_JSON_MAX_DEPTH, NULL) == 0);
        if (out)
            *out = fo_buf_release(&b, NULL);
        fo_buf_free(&b);
    }
    fo_jtree_free(t);
}

static bool start(struct fo_jtree *t, struct fo_json_span v)
{
    return fo_jtree_init(t, v, ARENA, NULL) == 0;
}

/* Allow or deny with the paths in order and reversed: the same bytes. */
static void order_free(struct fo_json_span v, struct fo_jpath *p, size_t n, bool allow)
{
    struct fo_jpath rev[MAX_PATHS];
    char *a = NULL, *b = NULL;
    for (size_t i = 0; i < n; i++)
        rev[i] = p[n - 1 - i];
    struct fo_jtree t;
    if (start(&t, v))
        emit(&t, allow ? fo_shape_allow(&t, p, n) : fo_shape_deny(&t, p, n), &a);
    if (start(&t, v))
        emit(&t, allow ? fo_shape_allow(&t, rev, n) : fo_shape_deny(&t, rev, n), &b);
    check((a == NULL) == (b == NULL));
    check(!a || strcmp(a, b) == 0);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    if (!nl || nl - s > 512)
        return 0;
    char line[513];
    memcpy(line, s, (size_t)(nl - s));
    line[nl - s] = '\0';
    const char *body = nl + 1;
    size_t blen = size - (size_t)(nl - s) - 1;
    struct fo_json_span v;
    if (fo_json_validate(body, blen, 64, &v) < 0)
        return 0;

    struct fo_jpath p[MAX_PATHS];
    size_t n = 0;
    char err[128];
    for (char *tok = strtok(line, " "); tok && n < MAX_PATHS; tok = strtok(NULL, " "))
        if (fo_jpath_compile(&p[n], tok, err, sizeof err) == 0)
            n++;
    if (n == 0)
        return 0;

    struct fo_jtree t;
    for (size_t i = 0; i < n; i++) {
        if (p[i].nany == 0 && start(&t, v))
            emit(&t, fo_shape_target(&t, &p[i]), NULL);
    }
    order_free(v, p, n, true);
    order_free(v, p, n, false);

    static char key[] = "r";
    struct fo_shape_rename r[MAX_PATHS];
    for (size_t i = 0; i < n; i++)
        r[i] = (struct fo_shape_rename){p[i], key, 1};
    if (start(&t, v))
        emit(&t, fo_shape_rename(&t, r, n), NULL);

    struct fo_shape_op ops[3 * MAX_PATHS];
    size_t nops = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i].nany == p[i + 1].nany) {
            ops[nops++] = (struct fo_shape_op){FO_OP_MOVE, p[i], p[i + 1]};
            ops[nops++] = (struct fo_shape_op){FO_OP_APPEND, p[i + 1], p[i]};
        }
    }
    for (size_t i = 0; i < n; i++)
        ops[nops++] = (struct fo_shape_op){FO_OP_DEL, p[i], {0}};
    bool skipped = false;
    if (start(&t, v))
        emit(&t, fo_shape_ops(&t, ops, nops, &skipped), NULL);
    struct fo_shape_op rev[3 * MAX_PATHS];
    for (size_t i = 0; i < nops; i++)
        rev[i] = ops[nops - 1 - i];
    if (start(&t, v))
        emit(&t, fo_shape_ops(&t, rev, nops, &skipped), NULL);

    for (size_t i = 0; i < n; i++)
        fo_jpath_free(&p[i]);
    return 0;
}
