/* config_deps.c -- the dependent-call keys of a backend, and their checks (see
 * config_deps.h). */
#include "config_deps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodytmpl.h"
#include "config_shape.h"
#include "token.h"

static struct fo_dep *dep_of(const struct fo__field *f, void *base)
{
    return (struct fo_dep *)((char *)base + f->offset);
}

bool fo__parse_depends_on(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                          const char *path, void *base, const void *up)
{
    struct fo_dep *d = dep_of(f, base);
    char q[96];
    if (!cJSON_IsArray(v)) {
        fo__errorf(c, path, "must be an array of backend names");
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        char p[300];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        if (!cJSON_IsString(m) || !m->valuestring[0]) {
            fo__errorf(c, p, "must be a non-empty string");
            ok = false;
        } else if (fo_dep_index(d, m->valuestring) >= 0) {
            fo__errorf(c, p, "\"%s\" is listed twice", fo__quote(q, sizeof q, m->valuestring));
            ok = false;
        } else if (fo_dep_add_name(d, m->valuestring) < 0) {
            c->oom = true;
            return false;
        }
    }
    return ok;
}

bool fo__parse_foreach(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                       const char *path, void *base, const void *up)
{
    struct fo_dep *d = dep_of(f, base);
    char err[200];
    if (!cJSON_IsString(v)) {
        fo__errorf(c, path, "must be a string \"<name>.<path with one *>\"");
        return false;
    }
    int rc = fo_dep_set_foreach(d, v->valuestring, err, sizeof err);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, path, "%s", err);
    return rc == 0;
}

bool fo__parse_body(struct fo__vctx *c, const struct fo__field *f, const cJSON *v, const char *path,
                    void *base, const void *up)
{
    struct fo_backend_conf *b = base;
    const struct fo_endpoint_conf *e = up;
    size_t len;
    char *text = fo__exact_text(c, path, "a body's", &len);
    if (!text)
        return false;
    char err[256];
    int rc = e->scope ? fo_body_compile(&b->body, text, len, e->scope, err, sizeof err) : 0;
    free(text);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, path, "%s", err);
    return rc == 0;
}

void fo__deps_backend_free(struct fo_backend_conf *b)
{
    fo_dep_free(&b->dep);
    fo_body_destroy(b->body);
    b->body = NULL;
}

/* The placeholders of backend 'b' that read a dependency or an element, checked against
 * what it depends on. */
static void check_refs(struct fo__vctx *c, const char *bp, const struct fo_endpoint_conf *e,
                       const struct fo_backend_conf *b)
{
    unsigned slots[FO_TMPL_MAX_SLOTS];
    size_t n = fo_tmpl_slots(b->tmpl, slots, FO_TMPL_MAX_SLOTS);
    for (size_t k = 0; b->htmpl && k < b->nheaders; k++) {
        unsigned more[FO_TMPL_MAX_SLOTS];
        size_t m = fo_tmpl_slots(b->htmpl[k], more, FO_TMPL_MAX_SLOTS);
        for (size_t j = 0; j < m && n < FO_TMPL_MAX_SLOTS; j++)
            slots[n++] = more[j];
    }
    unsigned more[FO_TMPL_MAX_SLOTS];
    size_t m = fo_body_slots(b->body, more, FO_TMPL_MAX_SLOTS);
    for (size_t j = 0; j < m && n < FO_TMPL_MAX_SLOTS; j++)
        slots[n++] = more[j];
    for (size_t k = 0; k < n; k++) {
        if (!fo_tmpl_slot_in(e->scope, slots[k], "*"))
            continue;
        const struct fo_dep_ref *r = &e->deprefs->r[fo_tmpl_slot_id(e->scope, slots[k])];
        if (r->item && !b->dep.foreach)
            fo__errorf(c, bp, "{%s} is only for a backend with \"foreach\"", r->text);
        else if (!r->item && fo_dep_index(&b->dep, r->name) < 0)
            fo__errorf(c, bp,
                       "{%s}: \"%s\" is neither a placeholder namespace nor in depends_on "
                       "(namespaces: query, header, auth, jwt)",
                       r->text, r->name);
    }
}

void fo__deps_check_endpoint(struct fo__vctx *c, const char *path, struct fo_endpoint_conf *e)
{
    size_t n = e->nbackends;
    bool any = e->deprefs && e->deprefs->n > 0;
    for (size_t i = 0; i < n; i++)
        any = any || e->backends[i].dep.n > 0 || e->backends[i].body;
    if (!any || !e->scope)
        return;
    struct fo_dep **deps = calloc(n, sizeof *deps);
    const char **names = calloc(n, sizeof *names);
    if (!deps || !names) {
        free(deps);
        free(names);
        c->oom = true;
        return;
    }
    bool named = true;
    for (size_t i = 0; i < n; i++) {
        deps[i] = &e->backends[i].dep;
        names[i] = e->backends[i].name;
        named = named && names[i];
    }
    char err[300], bp[300];
    size_t bad = 0;
    int rc = named ? fo_deps_check(deps, names, n, err, sizeof err, &bad) : 0;
    if (rc == -ENOMEM)
        c->oom = true;
    if (rc == -EINVAL) {
        fo__pathf(bp, sizeof bp, "%s.backends[%zu].%s", path, bad,
                  e->backends[bad].dep.foreach ? "foreach" : "depends_on");
        fo__errorf(c, bp, "%s", err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fo_backend_conf *b = &e->backends[i];
        fo__pathf(bp, sizeof bp, "%s.backends[%zu]", path, i);
        check_refs(c, bp, e, b);
        if (b->dep.n)
            e->has_deps = true;
        if (b->body && !fo_method_has_body(b->method))
            fo__errorf(c, bp, "\"body\" needs a method with a body (POST, PUT, PATCH)");
        if (b->body && e->forward_body)
            fo__errorf(c, bp, "\"body\" and the endpoint's forward_body cannot both be set");
        if (b->dep.foreach && fo_resil_conf_any(&b->resil))
            fo__errorf(c, bp,
                       "\"foreach\" items run as plain calls: no hosts, retry, hedge, breaker, "
                       "rate_limit or stale_ms");
        if (b->dep.foreach && b->shape.encoding != FO_ENC_JSON)
            fo__errorf(c, bp, "\"foreach\" needs encoding \"json\"");
        if (b->dep.foreach && b->merge)
            fo__errorf(c, bp, "\"foreach\" gathers an array or object: it cannot \"merge\"");
    }
    /* Which call each reference reads. */
    for (size_t k = 0; rc == 0 && e->deprefs && k < e->deprefs->n; k++) {
        struct fo_dep_ref *r = &e->deprefs->r[k];
        for (size_t i = 0; !r->item && i < n; i++)
            if (names[i] && strcmp(names[i], r->name) == 0)
                r->call = i;
    }
    free(deps);
    free(names);
}
