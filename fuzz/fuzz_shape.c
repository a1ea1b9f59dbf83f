/* fuzz_shape.c -- libFuzzer target for the shaping edits (jpath.c, jtree.c, shape.c).
 *
 * The input is one line of up to 8 space-separated paths, then a body (any bytes). Bodies
 * that are not valid JSON are skipped (the pipeline validates first). Every edit runs on
 * its own tree: target (each path without "*"), allow and deny with the paths in the given
 * order and reversed, rename of each path to "r", and the ops (move and append between
 * consecutive paths with as many "*", del of each). Checks: every result is valid JSON;
 * allow and deny give the same value whatever the order of their paths; an arena cap is
 * obeyed (-E2BIG, never more); and the one-pass shaping (shape_stream.c) gives the tree's
 * result, value for value, for target + allow or deny + renames built from the same paths,
 * whenever fo_shape_finish says the shape streams. Any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_shape.c \
 *       service/jpath.c service/jtree.c service/shape.c service/shape_stream.c \
 *       service/json.c service/json_raw.c service/buf.c service/budget.c */
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

static char *canonical(struct fo_json_span v);

/* Allow or deny with the paths in order and reversed: the same value. */
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
    if (a) {
        char *ca = canonical((struct fo_json_span){a, strlen(a)});
        char *cb = canonical((struct fo_json_span){b, strlen(b)});
        check(strcmp(ca, cb) == 0);
        free(ca);
        free(cb);
    }
    free(a);
    free(b);
}

/* The text of v with every container opened: the same for values equal value for value. */
static char *canonical(struct fo_json_span v)
{
    struct fo_jtree t;
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    check(fo_jtree_init(&t, v, 64u << 20, NULL) == 0);
    /* Open every container, level by level. */
    struct fo_jnode *stack[4096];
    size_t n = 0;
    stack[n++] = t.root;
    while (n) {
        struct fo_jnode *x = stack[--n];
        check(fo_jtree_open(&t, x) == 0);
        for (struct fo_jnode *c = x->first; c && n < 4096; c = c->next)
            if (c->kind == FO_JSON_OBJECT || c->kind == FO_JSON_ARRAY)
                stack[n++] = c;
    }
    check(fo_jtree_write(t.root, &b) == 0);
    fo_jtree_free(&t);
    return fo_buf_release(&b, NULL);
}

/* One pass against the tree for a shape made of the paths. */
static void stream_vs_tree(struct fo_json_span v, struct fo_jpath *p, size_t n, bool allow)
{
    static char k1[] = "r", k2[] = "s";
    struct fo_shape s = {0};
    struct fo_shape_rename rn[2];
    size_t nr = 0;
    for (size_t i = 0; i < n && nr < 2; i++) {
        const struct fo_jseg *last = &p[i].seg[p[i].n - 1];
        if (!last->any && last->index < 0)
            rn[nr++] = (struct fo_shape_rename){p[i], nr ? k2 : k1, 1};
    }
    s.any = s.tree = true;
    s.has_target = p[0].nany == 0 && n > 1;
    if (s.has_target)
        s.target = p[0];
    struct fo_jpath *fp = s.has_target ? p + 1 : p;
    size_t nf = s.has_target ? n - 1 : n;
    if (allow) {
        s.allow = fp;
        s.nallow = nf;
    } else {
        s.deny = fp;
        s.ndeny = nf;
    }
    s.rename = rn;
    s.nrename = nr;
    fo_shape_finish(&s);
    if (!s.stream)
        return;

    struct fo_jtree t;
    if (fo_jtree_init(&t, v, 64u << 20, NULL) != 0) {
        fo_jtree_free(&t);
        return;
    }
    int rc = s.has_target ? fo_shape_target(&t, &s.target) : 0;
    if (rc == 0)
        rc = allow ? fo_shape_allow(&t, fp, nf) : fo_shape_deny(&t, fp, nf);
    if (rc == 0)
        rc = fo_shape_rename(&t, rn, nr);
    struct fo_buf tb, sb;
    fo_buf_init(&tb, FO_BUF_UNLIMITED);
    fo_buf_init(&sb, FO_BUF_UNLIMITED);
    if (rc == 0)
        check(fo_jtree_write(t.root, &tb) == 0);
    fo_jtree_free(&t);
    struct fo_json_span sv;
    int src = fo_shape_stream(&s, v, &sb, &sv);
    check(src == rc);
    if (rc == 0) {
        check(fo_json_validate(sv.p, sv.len, FO_JSON_MAX_DEPTH, NULL) == 0);
        char *a = canonical((struct fo_json_span){tb.data, tb.len});
        char *b = canonical(sv);
        check(strcmp(a, b) == 0);
        free(a);
        free(b);
    }
    fo_buf_free(&tb);
    fo_buf_free(&sb);
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

    stream_vs_tree(v, p, n, true);
    stream_vs_tree(v, p, n, false);

    for (size_t i = 0; i < n; i++)
        fo_jpath_free(&p[i]);
    return 0;
}
