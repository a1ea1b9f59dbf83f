/* config_rows.h -- what config.c and config_backend.c share to write their schema tables.
 *
 * Private to the config module (see config_schema.h for the walk). The row macros build one
 * struct fo__field each; the *_SCHEMA texts are the JSON Schema of custom rows used by more
 * than one table. config.c holds the root, endpoint, aggregate, log and TLS tables and the
 * parsers two tables share; config_backend.c holds one backend's table and the walk over an
 * endpoint's "backends" array.
 * Threads: constants and parsers for the one thread that parses a config. */
#ifndef FO_CONFIG_ROWS_H
#define FO_CONFIG_ROWS_H

#include <stddef.h>

#include "config_schema.h"

/* clang-format off */
/* The schema tables: every key of every object, in the order they are read and reported.
 * A custom row's schema is JSON text; it says as much as a JSON Schema can say simply. */
#define INT(k, t, lo, hi, s, f, d, text)                                                          \
    {.key = k, .type = t, .min = lo, .max = hi, .offset = offsetof(s, f), .def = d, .doc = text}
#define BOOL(k, s, f, d, text)                                                                     \
    {.key = k, .type = FO_FT_BOOL, .offset = offsetof(s, f), .def = d, .doc = text}
#define CUSTOM(k, s, f, fn, sch, text)                                                             \
    {.key = k, .type = FO_FT_CUSTOM, .offset = offsetof(s, f), .parse = fn, .schema = sch,         \
     .doc = text}

#define TABLE(f, check) {f, sizeof f / sizeof *f, check}

#define TOKEN_SCHEMA   "{\"type\": \"string\", \"pattern\": \"^[A-Z]{1,32}$\"}"
#define PATH_SCHEMA    "{\"type\": \"string\", \"pattern\": \"^/\"}"
#define PROBE_SCHEMA   "{\"type\": [\"string\", \"null\"], \"pattern\": \"^/\"}"
#define JPATH_SCHEMA    "{\"type\": \"string\", \"minLength\": 1}"
#define OPS_SCHEMA                                                                                 \
    "{\"type\": \"array\", \"minItems\": 1, \"maxItems\": 64, \"items\": {\"type\": \"object\", "     \
    "\"required\": [\"op\"], \"properties\": {\"op\": {\"enum\": [\"del\", \"move\", "              \
    "\"append\"]}, \"path\": " JPATH_SCHEMA ", \"from\": " JPATH_SCHEMA ", \"to\": " JPATH_SCHEMA   \
    "}, \"additionalProperties\": false}}"
#define AUTH_SCHEMA                                                                                \
    "{\"type\": [\"object\", \"null\"], \"minProperties\": 1, \"maxProperties\": 1, "           \
    "\"properties\": {\"api_keys\": {\"type\": \"object\"}, \"jwt\": {\"type\": \"object\"}}, "  \
    "\"additionalProperties\": false}"
#define CORS_SCHEMA                                                                                \
    "{\"type\": [\"object\", \"null\"], \"required\": [\"allow_origins\"], \"properties\": {"  \
    "\"allow_origins\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"type\": "         \
    "\"string\"}}, \"allow_methods\": {\"type\": \"array\"}, \"allow_headers\": {\"type\": "   \
    "\"array\"}, \"expose_headers\": {\"type\": \"array\"}, \"allow_credentials\": {\"type\": " \
    "\"boolean\"}, \"max_age_s\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": "        \
    "86400}}, \"additionalProperties\": false}"
#define FWD_SCHEMA                                                                                 \
    "{\"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}}"
#define FILE_SCHEMA    "{\"type\": \"string\", \"minLength\": 1}"
#define HOSTS_SCHEMA                                                                               \
    "{\"type\": \"array\", \"items\": {\"type\": \"string\", \"pattern\": \":[0-9]{1,5}$\"}}"
/* clang-format on */

/* A present value that must be a string: returns it, or NULL after an error (config.c). */
const char *fo__string_value(struct fo__vctx *c, const cJSON *v, const char *path);

/* An endpoint's or a backend's "method" ("GET" by default); a wrong one leaves none
 * (config.c). */
bool fo__parse_method(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                      const char *path, void *base, const void *up);

/* One backend's keys, and the endpoint's "backends" row that walks them (config_backend.c):
 * every element is checked against the table, then the checks between its keys (shaping,
 * forwarding, resilience) and the duplicate names of the endpoint. */
extern const struct fo__table fo__backend_table;
bool fo__parse_backends(struct fo__vctx *c, const struct fo__field *f, const cJSON *bs,
                        const char *path, void *base, const void *up);

#endif /* FO_CONFIG_ROWS_H */
