/* config_schema.c -- the generic half of the config: one walker over the schema tables, the
 * defaults, and the JSON Schema of `fanout --schema`. See config_schema.h and config.h.
 *
 * A walk first reports unknown and duplicate keys in document order, then reads the rows in
 * table order: a missing required key is one line on the object, a wrong value one line on
 * its own path (the field keeps its default), and the walk goes on, so one run reports every
 * mistake. The schema writer reads the same rows, so what the editor is told and what
 * fanout --check enforces come from one place; the custom rows' schemas are as strict as a
 * JSON Schema can say simply, and fanout checks the rest (template placeholders, duplicate
 * routes, max_url_bytes <= max_header_bytes). */
#include "config_schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "token.h"

#define ROOT "(root)"

void fo__errorf(struct fo__vctx *c, const char *path, const char *fmt, ...)
{
    c->nerr++;
    if (!c->errors)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)fo_buf_printf(c->errors, "%s: %s\n", path, msg);
}

const char *fo__quote(char *dst, size_t dstlen, const char *s)
{
    return fo_quote_bytes(dst, dstlen, s, strlen(s));
}

void fo__pathf(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

char *fo__strdup(struct fo__vctx *c, const char *s)
{
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

static void *at(void *base, const struct fo__field *f)
{
    return (char *)base + f->offset;
}

/* Store an integer row's value in its field's own type. */
static void put_int(void *base, const struct fo__field *f, int64_t v)
{
    if (f->type == FO_FT_INT64)
        *(int64_t *)at(base, f) = v;
    else if (f->type == FO_FT_SIZE)
        *(size_t *)at(base, f) = (size_t)v;
    else if (f->type == FO_FT_UINT)
        *(unsigned *)at(base, f) = (unsigned)v;
    else if (f->type == FO_FT_ENUM)
        *(int *)at(base, f) = (int)v;
    else
        *(bool *)at(base, f) = v != 0;
}

void fo__defaults(struct fo__vctx *c, const struct fo__table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct fo__field *f = &t->fields[i];
        if (f->type == FO_FT_OBJECT) {
            fo__defaults(c, f->sub, at(base, f));
        } else if (f->type != FO_FT_CUSTOM) {
            put_int(base, f, f->defn ? (int64_t)f->defn() : f->def);
        } else if (f->init) {
            f->init(c, f, base);
        } else if (f->sdef) {
            char **s = at(base, f);
            free(*s);
            *s = fo__strdup(c, f->sdef);
        }
    }
}

/* "path.key", or "key" at the root. */
static void join(char *dst, size_t n, const char *path, const char *key)
{
    if (path[0])
        fo__pathf(dst, n, "%s.%s", path, key);
    else
        fo__pathf(dst, n, "%s", key);
}

/* Unknown keys, and keys given twice (cJSON keeps both; lookups would see only the first).
 * Linear in the members: one bit per row. */
static void check_keys(struct fo__vctx *c, const struct fo__table *t, const cJSON *obj,
                       const char *where)
{
    char q[96];
    uint64_t seen = 0;
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t i = 0;
        while (i < t->n && strcmp(t->fields[i].key, m->string) != 0)
            i++;
        if (i == t->n)
            fo__errorf(c, where, "unknown key \"%s\"", fo__quote(q, sizeof q, m->string));
        else if (seen & (UINT64_C(1) << i))
            fo__errorf(c, where, "duplicate key \"%s\"", fo__quote(q, sizeof q, m->string));
        seen |= i < t->n ? UINT64_C(1) << i : 0;
    }
}

static bool read_int(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                     const char *path, void *base)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : f->min - 1;
    if (d >= f->min && d <= f->max && (double)(int64_t)d == d) {
        put_int(base, f, (int64_t)d);
        return true;
    }
    if (f->max == FO_MAX_SIZE)
        fo__errorf(c, path, "must be an integer from %.0f to 2^53-1", f->min);
    else
        fo__errorf(c, path, "must be an integer from %.0f to %.0f", f->min, f->max);
    return false;
}

/* "must be "a", "b" or "c"" from an enum row's names. */
static bool read_enum(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                      const char *path, void *base)
{
    size_t i = 0;
    while (f->names[i] && !(cJSON_IsString(v) && strcmp(v->valuestring, f->names[i]) == 0))
        i++;
    if (f->names[i]) {
        put_int(base, f, (int64_t)i);
        return true;
    }
    char msg[256] = "";
    size_t o = 0;
    for (i = 0; f->names[i] && o < sizeof msg; i++) {
        const char *sep = i == 0 ? "" : f->names[i + 1] ? ", " : " or ";
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s\"%s\"", sep, f->names[i]);
    }
    fo__errorf(c, path, "must be %s", msg);
    return false;
}

/* One present value. Returns false when it was wrong. */
static bool read_value(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                       const char *path, void *base, const void *up)
{
    switch (f->type) {
    case FO_FT_INT64:
    case FO_FT_SIZE:
    case FO_FT_UINT:
        return read_int(c, f, v, path, base);
    case FO_FT_BOOL:
        if (cJSON_IsBool(v)) {
            put_int(base, f, cJSON_IsTrue(v));
            return true;
        }
        fo__errorf(c, path, "must be true or false");
        return false;
    case FO_FT_ENUM:
        return read_enum(c, f, v, path, base);
    case FO_FT_OBJECT:
        return fo__walk(c, f->sub, v, path, at(base, f), up) == 0;
    case FO_FT_CUSTOM:
        return f->parse(c, f, v, path, base, up);
    }
    return false;
}

uint64_t fo__walk(struct fo__vctx *c, const struct fo__table *t, const cJSON *obj, const char *path,
                  void *base, const void *up)
{
    const char *where = path[0] ? path : ROOT;
    if (!cJSON_IsObject(obj)) {
        fo__errorf(c, where, path[0] ? "must be an object" : "must be a JSON object");
        return UINT64_MAX;
    }
    check_keys(c, t, obj, where);
    uint64_t bad = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct fo__field *f = &t->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->key);
        if (!v) {
            if (f->required)
                fo__errorf(c, where, "missing key \"%s\"", f->key);
            continue;
        }
        char p[256];
        join(p, sizeof p, path, f->key);
        if (!read_value(c, f, v, p, base, up))
            bad |= UINT64_C(1) << i;
    }
    if (t->check)
        t->check(c, base, bad);
    return bad;
}

uint64_t fo__field_bit(const struct fo__table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->fields[i].key, key) == 0)
            return UINT64_C(1) << i;
    }
    return 0;
}

/* The JSON Schema writer. cJSON ignores a NULL item handed to an add function, so a failed
 * allocation only leaves a member out; the caller sees it as cJSON_Print's NULL or as a
 * missing piece, and fo_config_schema reports -ENOMEM when any create failed. */

static cJSON *table_schema(const struct fo__table *t, bool *ok);

/* An integer as its exact digits: cJSON would print 2^53-1 with 15 significant digits. */
static cJSON *integer(double v)
{
    char text[32];
    snprintf(text, sizeof text, "%.0f", v);
    return cJSON_CreateRaw(text);
}

static void add(cJSON *obj, const char *key, cJSON *item, bool *ok)
{
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        *ok = false;
    }
}

/* A custom row's schema text, its members moved into 'node'. */
static void add_fragment(cJSON *node, const char *text, bool *ok)
{
    cJSON *frag = cJSON_Parse(text);
    if (!frag) {
        *ok = false;
        return;
    }
    while (frag->child) {
        cJSON *m = cJSON_DetachItemViaPointer(frag, frag->child);
        add(node, m->string, m, ok);
    }
    cJSON_Delete(frag);
}

static cJSON *field_schema(const struct fo__field *f, bool *ok)
{
    if (f->type == FO_FT_OBJECT) {
        cJSON *node = table_schema(f->sub, ok);
        if (node)
            add(node, "description", cJSON_CreateString(f->doc), ok);
        return node;
    }
    cJSON *node = cJSON_CreateObject();
    if (!node) {
        *ok = false;
        return NULL;
    }
    add(node, "description", cJSON_CreateString(f->doc), ok);
    switch (f->type) {
    case FO_FT_INT64:
    case FO_FT_SIZE:
    case FO_FT_UINT:
        add(node, "type", cJSON_CreateString("integer"), ok);
        add(node, "minimum", integer(f->min), ok);
        add(node, "maximum", integer(f->max), ok);
        /* A computed default (CPUs) or a "none" outside the range is for the doc to say. */
        if (!f->defn && (double)f->def >= f->min && (double)f->def <= f->max)
            add(node, "default", integer((double)f->def), ok);
        break;
    case FO_FT_BOOL:
        add(node, "type", cJSON_CreateString("boolean"), ok);
        add(node, "default", cJSON_CreateBool(f->def != 0), ok);
        break;
    case FO_FT_ENUM: {
        cJSON *names = cJSON_CreateArray();
        for (size_t i = 0; names && f->names[i]; i++) {
            if (!cJSON_AddItemToArray(names, cJSON_CreateString(f->names[i])))
                *ok = false;
        }
        add(node, "enum", names, ok);
        add(node, "default", cJSON_CreateString(f->names[f->def]), ok);
        break;
    }
    case FO_FT_CUSTOM:
        add_fragment(node, f->schema, ok);
        if (f->sub)
            add(node, "items", table_schema(f->sub, ok), ok);
        if (f->sdef)
            add(node, "default", cJSON_CreateString(f->sdef), ok);
        break;
    case FO_FT_OBJECT:
        break;
    }
    return node;
}

static cJSON *table_schema(const struct fo__table *t, bool *ok)
{
    cJSON *node = cJSON_CreateObject();
    cJSON *props = cJSON_CreateObject();
    cJSON *required = cJSON_CreateArray();
    if (!node || !props || !required) {
        cJSON_Delete(node);
        cJSON_Delete(props);
        cJSON_Delete(required);
        *ok = false;
        return NULL;
    }
    add(node, "type", cJSON_CreateString("object"), ok);
    for (size_t i = 0; i < t->n; i++) {
        add(props, t->fields[i].key, field_schema(&t->fields[i], ok), ok);
        if (t->fields[i].required &&
            !cJSON_AddItemToArray(required, cJSON_CreateString(t->fields[i].key)))
            *ok = false;
    }
    add(node, "properties", props, ok);
    if (required->child)
        add(node, "required", required, ok);
    else
        cJSON_Delete(required);
    add(node, "additionalProperties", cJSON_CreateFalse(), ok);
    return node;
}

int fo_config_schema(struct fo_buf *out)
{
    bool ok = true;
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return -ENOMEM;
    add(doc, "$schema", cJSON_CreateString("https://json-schema.org/draft/2020-12/schema"), &ok);
    add(doc, "title", cJSON_CreateString("fanout configuration"), &ok);
    cJSON *root = table_schema(&fo__config_root, &ok);
    while (root && root->child) {
        cJSON *m = cJSON_DetachItemViaPointer(root, root->child);
        add(doc, m->string, m, &ok);
    }
    cJSON_Delete(root);
    char *text = ok ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    int rc = text ? fo_buf_printf(out, "%s\n", text) : -ENOMEM;
    free(text);
    return rc < 0 ? rc : 0;
}
