/* config_deps.h -- the dependent-call keys of a backend (private to the config).
 *
 * config.c puts these parsers under its backend rows (depends_on, foreach, body) and calls
 * the endpoint check once every backend of an endpoint is read: the graph (deps.h), and
 * each placeholder that reads a dependency or a foreach element against what its backend
 * depends on.
 * Threads: parsing runs on the thread that parses the config. */
#ifndef FO_CONFIG_DEPS_H
#define FO_CONFIG_DEPS_H

#include "config.h"
#include "config_schema.h"

/* "depends_on" and "foreach": the struct fo_dep at base + f->offset. */
bool fo__parse_depends_on(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                          const char *path, void *base, const void *up);
bool fo__parse_foreach(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                       const char *path, void *base, const void *up);

/* "body": the backend's own JSON body ('base' the backend, 'up' its endpoint). */
bool fo__parse_body(struct fo__vctx *c, const struct fo__field *f, const cJSON *v, const char *path,
                    void *base, const void *up);

/* Checks of an endpoint's dependent calls ('path' is the endpoint's JSON path). */
void fo__deps_check_endpoint(struct fo__vctx *c, const char *path, struct fo_endpoint_conf *e);

/* Free what a backend's dependent-call keys hold. */
void fo__deps_backend_free(struct fo_backend_conf *b);

#endif /* FO_CONFIG_DEPS_H */
