/* config_shape.h -- the parsers and checks of the shaping keys (private to the config).
 *
 * Custom rows of the backend and endpoint tables (config.c); each row's offset is the
 * object's struct fo_shape (shape.h). See config_schema.h for the row contract.
 * Threads: run on the thread that parses the config. */
#ifndef FO_CONFIG_SHAPE_H
#define FO_CONFIG_SHAPE_H

#include "config_schema.h"

struct fo_shape;
struct fo_endpoint_conf;

fo__parse_fn fo__parse_collection, fo__parse_target, fo__parse_paths, fo__parse_rename,
    fo__parse_ops, fo__parse_group, fo__parse_encoding, fo__parse_pass_status, fo__parse_fallback;

/* Checks between one backend's keys; 'path' is the backend's. */
void fo__shape_check_backend(struct fo__vctx *c, const char *path, const struct fo_shape *s,
                             bool required);

/* Checks between an endpoint's backends (raw, groups); 'path' is the endpoint's. */
void fo__shape_check_endpoint(struct fo__vctx *c, const char *path,
                              const struct fo_endpoint_conf *e);

/* The exact, compacted text of the config value at JSON path 'path' (numbers keep their
 * digits), from malloc(); NULL after an error that names 'what' (or out of memory). */
char *fo__exact_text(struct fo__vctx *c, const char *path, const char *what, size_t *len);

#endif /* FO_CONFIG_SHAPE_H */
