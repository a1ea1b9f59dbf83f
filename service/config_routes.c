/* config_routes.c -- the config's checks on routes and addresses: literal route paths (the
 * aggregate, the probes), "host:port" entries of the batch allow list, and the cross checks
 * between routes once every object was read. See config_schema.h.
 *
 * Requests are routed to the probes first, then the aggregate, then the endpoints in order;
 * a path taken by an earlier route is reported on the later one, which could never be
 * reached. Only routes valid on their own (a non-NULL path) are compared. */
#include "config_schema.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "tmpl.h"

/* "host:port" with a non-empty host and a port 1..65535 (no sign, no spaces). */
bool fo__is_host_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen > 5)
        return false;
    unsigned port = 0;
    for (const char *d = colon + 1; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        port = port * 10 + (unsigned)(*d - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    for (const char *h = s; h < colon; h++) {
        unsigned char ch = (unsigned char)*h;
        if (ch <= 0x20 || ch >= 0x7f || strchr("@/\\?#%", ch))
            return false;
    }
    if (s[0] == '[')
        return colon[-1] == ']' && colon - s > 2 && !memchr(s + 1, ']', (size_t)(colon - s - 2));
    return memchr(s, ':', (size_t)(colon - s)) == NULL && !memchr(s, '[', (size_t)(colon - s)) &&
           !memchr(s, ']', (size_t)(colon - s));
}

/* A route path without placeholders (the aggregate, the probes): returns a
 * copy, or NULL after an error line (or when out of memory). */
char *fo__literal_path(struct fo__vctx *c, const char *where, const char *s)
{
    char err[256];
    struct fo_path *fp = NULL;
    char *copy = NULL;
    int rc = fo_path_compile(&fp, s, err, sizeof err);
    if (rc == -ENOMEM)
        c->oom = true;
    else if (rc < 0)
        fo__errorf(c, where, "%s", err);
    else if (strchr(s, '{'))
        fo__errorf(c, where, "must not have placeholders");
    else
        copy = fo__strdup(c, s);
    fo_path_destroy(fp);
    return copy;
}

/* Same route shape: equal text once every "{name}" is read as "{}". */
static bool same_shape(const char *a, const char *b)
{
    for (;;) {
        if (*a == '{' && *b == '{') {
            a = strchr(a, '}');
            b = strchr(b, '}');
            if (!a || !b)
                return false;
        }
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

/* Probes take every method; an endpoint clashes with another of the same method. */
void fo__route_checks(struct fo__vctx *c, const struct fo_config *cfg)
{
    const struct {
        const char *key;
        const char *path; /* NULL: off, or not valid. */
    } probes[] = {{"health_path", cfg->health_path},
                  {"ready_path", cfg->ready_path},
                  {"metrics_path", cfg->metrics_path}};
    size_t nprobes = sizeof probes / sizeof *probes;
    const char *agg = cfg->aggregate.enabled ? cfg->aggregate.path : NULL;

    for (size_t i = 0; i < nprobes; i++) {
        for (size_t j = 0; probes[i].path && j < i; j++) {
            if (probes[j].path && strcmp(probes[i].path, probes[j].path) == 0) {
                fo__errorf(c, probes[i].key, "same as %s", probes[j].key);
                break;
            }
        }
    }
    for (size_t i = 0; agg && i < nprobes; i++) {
        if (probes[i].path && strcmp(agg, probes[i].path) == 0) {
            fo__errorf(c, "aggregate.path", "same as %s", probes[i].key);
            break;
        }
    }

    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct fo_endpoint_conf *e = &cfg->endpoints[i];
        if (!e->path || !e->method)
            continue;
        char p[64];
        snprintf(p, sizeof p, "endpoints[%zu].path", i);
        /* Text equality: a path with a {param} never clashes (probe paths have
         * none), as it still serves its other values. */
        for (size_t k = 0; k < nprobes; k++) {
            if (probes[k].path && strcmp(e->path, probes[k].path) == 0) {
                fo__errorf(c, p, "same as %s", probes[k].key);
                break;
            }
        }
        if (agg && strcmp(e->path, agg) == 0)
            fo__errorf(c, p, "same as aggregate.path");
        for (size_t j = 0; j < i; j++) {
            const struct fo_endpoint_conf *o = &cfg->endpoints[j];
            if (o->path && o->method && strcmp(o->method, e->method) == 0 &&
                same_shape(o->path, e->path)) {
                fo__errorf(c, p, "duplicate of endpoints[%zu].path", j);
                break;
            }
        }
    }
}
