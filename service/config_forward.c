/* config_forward.c -- the forward_query and forward_headers keys of an endpoint and a
 * backend, and the rule that a backend's lists only narrow its endpoint's (see
 * config_forward.h). */
#include "config_forward.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forward.h"
#include "token.h"

/* A forward list: ["*"], names, or both (for headers "*" leaves out Authorization, which
 * only a name forwards). Header names are tokens that may be forwarded at all. */
static bool parse_fwd_list(struct fo__vctx *c, const cJSON *v, const char *path,
                           struct fo_fwd_list *l, bool header)
{
    char q[96];
    fo_fwd_list_free(l);
    l->given = true;
    if (!cJSON_IsArray(v)) {
        fo__errorf(c, path, "must be an array of names, or [\"*\"]");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    l->names = n ? calloc(n, sizeof *l->names) : NULL;
    if (n && !l->names) {
        c->oom = true;
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        const char *s = cJSON_IsString(m) ? m->valuestring : NULL;
        size_t len = s ? strlen(s) : 0;
        const char *why = NULL;
        if (!s || len == 0 || len > FO_FWD_MAX_NAME)
            why = "must be a non-empty string of at most 200 bytes";
        else if (strcmp(s, "*") == 0 && l->all)
            why = "\"*\" twice";
        else if (strcmp(s, "*") == 0)
            l->all = true;
        else if (header && !fo_is_token(s, len))
            why = "is not a header field name";
        else if (!header && strpbrk(s, "&=#"))
            why = "a query name holds no '&', '=' or '#' (name it decoded)";
        else if (fo_fwd_names(l, s, len, header))
            why = "is listed twice";
        for (size_t k = 0; !why && !header && k < len; k++)
            if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
                why = "holds a control byte";
        const char *never =
            header && !why && strcmp(s, "*") != 0 ? fo_fwd_header_never(s, len) : NULL;
        if (never) {
            fo__errorf(c, p, "\"%s\" is never forwarded (%s)", fo__quote(q, sizeof q, s), never);
            ok = false;
            continue;
        }
        if (why) {
            if (s)
                fo__errorf(c, p, "\"%s\" %s", fo__quote(q, sizeof q, s), why);
            else
                fo__errorf(c, p, "%s", why);
            ok = false;
            continue;
        }
        if (strcmp(s, "*") == 0)
            continue;
        l->names[l->n] = fo__strdup(c, s);
        if (l->names[l->n])
            l->n++;
    }
    return ok;
}

bool fo__parse_fwd_query(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                         const char *path, void *base, const void *up)
{
    return parse_fwd_list(c, v, path, (struct fo_fwd_list *)((char *)base + f->offset), false);
}

bool fo__parse_fwd_headers(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up)
{
    return parse_fwd_list(c, v, path, (struct fo_fwd_list *)((char *)base + f->offset), true);
}

/* A backend's list may only narrow its endpoint's. */
static void check_subset(struct fo__vctx *c, const struct fo_fwd_list *b,
                         const struct fo_fwd_list *e, const char *path, const char *key,
                         bool header)
{
    char q[96];
    if (!b->given)
        return;
    if (b->all && !e->all)
        fo__errorf(c, path, "%s: \"*\" needs \"*\" in the endpoint's %s", key, key);
    for (size_t i = 0; i < b->n; i++) {
        const char *s = b->names[i];
        size_t len = strlen(s);
        bool in = fo_fwd_names(e, s, len, header) ||
                  (e->all && !(header && strcasecmp(s, "Authorization") == 0));
        if (!in)
            fo__errorf(c, path, "%s: \"%s\" is not forwarded by the endpoint's %s", key,
                       fo__quote(q, sizeof q, s), key);
    }
}

void fo__fwd_check_narrowing(struct fo__vctx *c, const struct fo_endpoint_conf *e,
                             const struct fo_backend_conf *b, const char *bp)
{
    check_subset(c, &b->fwd_query, &e->fwd_query, bp, "forward_query", false);
    check_subset(c, &b->fwd_headers, &e->fwd_headers, bp, "forward_headers", true);
    if (b->url && strchr(b->url, '#') &&
        fo_fwd_active(fo_fwd_effective(&b->fwd_query, &e->fwd_query))) {
        char p[300];
        fo__pathf(p, sizeof p, "%s.url", bp);
        fo__errorf(c, p, "a URL with a #fragment cannot take forward_query parameters");
    }
}
