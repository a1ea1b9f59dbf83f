/* config_forward.h -- the forwarding keys of an endpoint and a backend (private to the
 * config).
 *
 * config.c puts the two parsers under its endpoint and backend rows (forward_query,
 * forward_headers: a struct fo_fwd_list at base + f->offset, freed with the config) and
 * calls the narrowing check for each backend once its endpoint is read.
 * Threads: parsing runs on the thread that parses the config. */
#ifndef FO_CONFIG_FORWARD_H
#define FO_CONFIG_FORWARD_H

#include "config.h"
#include "config_schema.h"

/* ["*"], names, or both; header names must be forwardable tokens, query names plain. */
bool fo__parse_fwd_query(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                         const char *path, void *base, const void *up);
bool fo__parse_fwd_headers(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                           const char *path, void *base, const void *up);

/* A backend's lists ('b', at JSON path 'bp') only narrow its endpoint's ('e'), and a URL
 * with a #fragment takes no forwarded query. */
void fo__fwd_check_narrowing(struct fo__vctx *c, const struct fo_endpoint_conf *e,
                             const struct fo_backend_conf *b, const char *bp);

#endif /* FO_CONFIG_FORWARD_H */
