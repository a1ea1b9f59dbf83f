/* config_shape.c -- the config keys of response shaping: their parsers and the checks
 * between them. See shape.h for what each key does, config.h for the error convention.
 *
 * Every row here is a custom row of the backend table (one, "ops", also of the endpoint
 * table) whose field is the object's struct fo_shape; the parsers compile paths once
 * (jpath.h), so a request never parses a path. "fallback" is the one key read from the
 * config's text rather than from cJSON: cJSON keeps numbers as doubles, and a fallback must
 * come out with the digits written in the file, so its value's text is found again by its
 * JSON path in the validated text (json.h's iterators) and kept, compacted. */
#include "config_shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "shape.h"

static struct fo_shape *shape_of(const struct fo__field *f, void *base)
{
    return (struct fo_shape *)((char *)base + f->offset);
}

/* Compile one path; 'star' false refuses "*". */
static bool path_value(struct fo__vctx *c, const cJSON *v, const char *path, bool star,
                       struct fo_jpath *out)
{
    char err[160];
    if (!cJSON_IsString(v)) {
        fo__errorf(c, path, "must be a path string");
        return false;
    }
    int rc = fo_jpath_compile(out, v->valuestring, err, sizeof err);
    if (rc == -ENOMEM) {
        c->oom = true;
        return false;
    }
    if (rc < 0) {
        fo__errorf(c, path, "%s", err);
        return false;
    }
    if (!star && out->nany) {
        fo_jpath_free(out);
        fo__errorf(c, path, "must not contain \"*\"");
        return false;
    }
    return true;
}

/* A list of up to FO_SHAPE_MAX_LIST items: *n set, items from calloc() in *out. */
static const cJSON *list_value(struct fo__vctx *c, const cJSON *v, const char *path, bool array,
                               size_t size, void **out, size_t *n)
{
    if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
        fo__errorf(c, path, array ? "must be an array" : "must be an object");
        return NULL;
    }
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count == 0 || count > FO_SHAPE_MAX_LIST) {
        fo__errorf(c, path, "must have 1 to %d entries", FO_SHAPE_MAX_LIST);
        return NULL;
    }
    *out = calloc(count, size);
    if (!*out) {
        c->oom = true;
        return NULL;
    }
    *n = 0;
    return v->child;
}

bool fo__parse_collection(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                          const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        fo__errorf(c, path, "must be a non-empty key");
        return false;
    }
    s->collection = fo__strdup(c, v->valuestring);
    s->any = s->tree = true;
    return s->collection != NULL;
}

bool fo__parse_target(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                      const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    if (!path_value(c, v, path, false, &s->target))
        return false;
    s->has_target = s->any = s->tree = true;
    return true;
}

/* "allow" and "deny": which one is the row's key. */
bool fo__parse_paths(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                     const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    bool allow = strcmp(f->key, "allow") == 0;
    struct fo_jpath **list = allow ? &s->allow : &s->deny;
    size_t *n = allow ? &s->nallow : &s->ndeny;
    (void)up;
    const cJSON *e = list_value(c, v, path, true, sizeof **list, (void **)list, n);
    bool ok = e != NULL;
    for (size_t i = 0; e; e = e->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        if (path_value(c, e, p, true, &(*list)[*n]))
            (*n)++;
        else
            ok = false;
    }
    s->any = s->tree = s->any || *n > 0;
    return ok;
}

bool fo__parse_rename(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                      const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    const cJSON *e =
        list_value(c, v, path, false, sizeof *s->rename, (void **)&s->rename, &s->nrename);
    bool ok = e != NULL;
    for (; e; e = e->next) {
        char p[300];
        fo__pathf(p, sizeof p, "%s.%s", path, e->string);
        struct fo_shape_rename *r = &s->rename[s->nrename];
        cJSON key = {.type = cJSON_String, .valuestring = e->string};
        if (!path_value(c, &key, p, true, &r->path)) {
            ok = false;
            continue;
        }
        const struct fo_jseg *last = &r->path.seg[r->path.n - 1];
        const char *why = NULL;
        if (last->any || last->index >= 0)
            why = "the path must end with a key, not \"*\" or an index";
        else if (!cJSON_IsString(e) || !e->valuestring[0])
            why = "the new key must be a non-empty string";
        else if (strpbrk(e->valuestring, ".*"))
            why = "the new key must not contain '.' or '*'";
        if (why) {
            fo__errorf(c, p, "%s", why);
            fo_jpath_free(&r->path);
            ok = false;
            continue;
        }
        r->to = fo__strdup(c, e->valuestring);
        r->tolen = r->to ? strlen(r->to) : 0;
        s->nrename++;
    }
    s->any = s->tree = s->any || s->nrename > 0;
    return ok;
}

/* One entry of "ops". */
static bool parse_op(struct fo__vctx *c, const cJSON *e, const char *p, struct fo_shape_op *op)
{
    char q[400];
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "op");
    if (!cJSON_IsObject(e) || !cJSON_IsString(kind)) {
        fo__errorf(c, p, "must be an object with \"op\": \"del\", \"move\" or \"append\"");
        return false;
    }
    const char *k = kind->valuestring;
    bool del = strcmp(k, "del") == 0;
    if (!del && strcmp(k, "move") != 0 && strcmp(k, "append") != 0) {
        fo__pathf(q, sizeof q, "%s.op", p);
        fo__errorf(c, q, "must be \"del\", \"move\" or \"append\"");
        return false;
    }
    op->op = del ? FO_OP_DEL : k[0] == 'm' ? FO_OP_MOVE : FO_OP_APPEND;
    for (const cJSON *m = e->child; m; m = m->next) {
        bool known = strcmp(m->string, "op") == 0 ||
                     (del ? strcmp(m->string, "path") == 0
                          : strcmp(m->string, "from") == 0 || strcmp(m->string, "to") == 0);
        if (!known) {
            fo__errorf(c, p, "unknown key \"%s\" for op \"%s\"", m->string, k);
            return false;
        }
    }
    const char *from_key = del ? "path" : "from";
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(e, from_key);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(e, "to");
    if (!from || (!del && !to)) {
        fo__errorf(c, p, del ? "needs \"path\"" : "needs \"from\" and \"to\"");
        return false;
    }
    fo__pathf(q, sizeof q, "%s.%s", p, from_key);
    if (!path_value(c, from, q, true, &op->from))
        return false;
    if (del)
        return true;
    fo__pathf(q, sizeof q, "%s.to", p);
    if (!path_value(c, to, q, true, &op->to)) {
        fo_jpath_free(&op->from);
        return false;
    }
    if (op->from.nany != op->to.nany) {
        fo__errorf(c, q, "must have as many \"*\" as \"from\" (%zu, not %zu)", op->from.nany,
                   op->to.nany);
        fo_jpath_free(&op->from);
        fo_jpath_free(&op->to);
        return false;
    }
    return true;
}

bool fo__parse_ops(struct fo__vctx *c, const struct fo__field *f, const cJSON *v, const char *path,
                   void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    const cJSON *e = list_value(c, v, path, true, sizeof *s->ops, (void **)&s->ops, &s->nops);
    bool ok = e != NULL;
    for (size_t i = 0; e; e = e->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        if (parse_op(c, e, p, &s->ops[s->nops]))
            s->nops++;
        else
            ok = false;
    }
    s->any = s->tree = s->any || s->nops > 0;
    return ok;
}

bool fo__parse_group(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                     const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strcmp(v->valuestring, "_fanout") == 0) {
        fo__errorf(c, path, "must be a non-empty key other than \"_fanout\"");
        return false;
    }
    s->group = fo__strdup(c, v->valuestring);
    s->any = true;
    return s->group != NULL;
}

bool fo__parse_encoding(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                        const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    static const char *const names[] = {"json", "text", "raw"};
    (void)up;
    for (int i = 0; i < 3; i++) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, names[i]) == 0) {
            s->encoding = (enum fo_encoding)i;
            s->any = s->any || i != FO_ENC_JSON;
            return true;
        }
    }
    fo__errorf(c, path, "must be \"json\", \"text\" or \"raw\"");
    return false;
}

bool fo__parse_pass_status(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)up;
    if (!cJSON_IsArray(v) || !v->child || cJSON_GetArraySize(v) > FO_SHAPE_MAX_PASS) {
        fo__errorf(c, path, "must be an array of 1 to %d status codes", FO_SHAPE_MAX_PASS);
        return false;
    }
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : 0;
        if (d < 400 || d > 499 || d != (double)(int)d) {
            char p[300];
            fo__pathf(p, sizeof p, "%s[%zu]", path, i);
            fo__errorf(c, p, "must be a status code from 400 to 499");
            s->npass = 0;
            return false;
        }
        s->pass_status[s->npass++] = (int)d;
    }
    s->any = true;
    return true;
}

/* ---- fallback: the value's own text ---- */

/* The span of the value at config path 'path' ("endpoints[0].backends[1].fallback") inside
 * the validated document 'doc'; false when it cannot be found. */
static bool locate(struct fo_json_span doc, const char *path, struct fo_json_span *out)
{
    struct fo_json_span cur = doc;
    const char *p = path;
    while (*p) {
        struct fo_json_iter it;
        struct fo_json_span k, v;
        bool found = false;
        if (*p == '[') {
            char *end;
            unsigned long want = strtoul(p + 1, &end, 10);
            if (*end != ']' || fo_json_iter_array(&it, cur) < 0)
                return false;
            for (unsigned long i = 0; !found && fo_json_next_element(&it, &v); i++)
                found = i == want;
            p = end + 1;
        } else {
            if (*p == '.')
                p++;
            size_t n = strcspn(p, ".[");
            char key[128];
            if (n == 0 || n >= sizeof key || fo_json_iter_object(&it, cur) < 0)
                return false;
            memcpy(key, p, n);
            key[n] = '\0';
            while (!found && fo_json_next_member(&it, &k, &v))
                found = fo_json_str_eq(k, key);
            p += n;
        }
        if (!found)
            return false;
        cur = v;
    }
    *out = cur;
    return true;
}

/* Copy validated JSON text without the whitespace between tokens. */
static char *compact(struct fo_json_span v, size_t *len)
{
    char *d = malloc(v.len + 1);
    size_t n = 0;
    bool str = false;
    for (size_t i = 0; d && i < v.len; i++) {
        char ch = v.p[i];
        if (str) {
            d[n++] = ch;
            if (ch == '\\' && i + 1 < v.len)
                d[n++] = v.p[++i];
            else if (ch == '"')
                str = false;
        } else if (ch == '"') {
            str = true;
            d[n++] = ch;
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            d[n++] = ch;
        }
    }
    if (d)
        d[n] = '\0';
    *len = n;
    return d;
}

char *fo__exact_text(struct fo__vctx *c, const char *path, const char *what, size_t *len)
{
    struct fo_json_span doc, at;
    if (!c->text || fo_json_validate(c->text, c->text_len, FO_JSON_MAX_DEPTH, &doc) < 0 ||
        !locate(doc, path, &at)) {
        fo__errorf(c, path, "the config must be strict JSON (RFC 8259) to keep %s text exact",
                   what);
        return NULL;
    }
    char *t = compact(at, len);
    if (!t)
        c->oom = true;
    return t;
}

bool fo__parse_fallback(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                        const char *path, void *base, const void *up)
{
    struct fo_shape *s = shape_of(f, base);
    (void)v;
    (void)up;
    s->fallback = fo__exact_text(c, path, "a fallback's", &s->fallback_len);
    if (!s->fallback)
        return false;
    s->any = true;
    return true;
}

/* ---- checks between keys ---- */

void fo__shape_check_backend(struct fo__vctx *c, const char *path, const struct fo_shape *s,
                             bool required)
{
    if (s->nallow && s->ndeny)
        fo__errorf(c, path, "\"allow\" and \"deny\" cannot both be set");
    if (s->encoding != FO_ENC_JSON && s->tree)
        fo__errorf(c, path,
                   "encoding \"%s\" cannot be shaped (collection, target, allow, deny, "
                   "rename, ops)",
                   s->encoding == FO_ENC_TEXT ? "text" : "raw");
    if (s->fallback && required)
        fo__errorf(c, path,
                   "\"fallback\" on a required backend: a required failure fails the "
                   "request");
    if (s->npass && !required)
        fo__errorf(c, path, "\"pass_status\" needs \"required\": true");
}

void fo__shape_check_endpoint(struct fo__vctx *c, const char *path,
                              const struct fo_endpoint_conf *e)
{
    for (size_t i = 0; i < e->nbackends; i++) {
        const struct fo_backend_conf *b = &e->backends[i];
        char p[300];
        fo__pathf(p, sizeof p, "%s.backends[%zu]", path, i);
        if (b->shape.encoding == FO_ENC_RAW && (e->nbackends != 1 || e->report || e->shape.any))
            fo__errorf(c, p,
                       "encoding \"raw\" needs an endpoint with one backend, no report "
                       "and no ops");
        const char *g = b->shape.group;
        for (size_t j = 0; g && j < i; j++) {
            const struct fo_backend_conf *o = &e->backends[j];
            if (o->shape.group && strcmp(o->shape.group, g) == 0 && !(b->merge && o->merge)) {
                fo__errorf(c, p,
                           "group \"%s\" is also backends[%zu]'s; two backends share a "
                           "group only when both have \"merge\": true",
                           g, j);
                break;
            }
        }
    }
}
