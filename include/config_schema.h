/* config_schema.h -- the configuration's schema tables and the walker that reads JSON with them.
 *
 * Private to the config module: config.c and config_backend.c hold one table per JSON object
 * (root, endpoint, backend, aggregate, log) and the parsers of the keys that need their own
 * (config_rows.h is what they share); config_schema.c
 * walks a table over a cJSON object (unknown and duplicate keys, missing required keys,
 * types, ranges, writing each field at its offset), applies the defaults and writes the
 * JSON Schema that `fanout --schema` prints. Every key of the config is a row, so the
 * reader, the defaults and the schema cannot drift apart.
 * Threads: tables are constant; a walk runs on one thread (the one parsing). */
#ifndef FO_CONFIG_SCHEMA_H
#define FO_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"

/* Largest size limit: 2^53 - 1, so every integer below is exact in a double. */
#define FO_MAX_SIZE 9007199254740991.0

/* State of one validation run. */
struct fo__vctx {
    struct fo_buf *errors; /* Borrowed; may be NULL (errors only counted). */
    unsigned nerr;         /* Lines written (or that would have been). */
    bool oom;              /* An allocation failed: the result is -ENOMEM. */
    const char *text;      /* Borrowed: the config's text (for keys read from it), or NULL. */
    size_t text_len;
    const char *dir; /* Borrowed: the config file's folder (keys files), or NULL. */
};

enum fo__ftype {
    FO_FT_INT64,  /* int64_t field, integer in [min, max]. */
    FO_FT_SIZE,   /* size_t field, integer in [min, max] (min >= 0). */
    FO_FT_UINT,   /* unsigned field, integer in [min, max]. */
    FO_FT_BOOL,   /* bool field. */
    FO_FT_ENUM,   /* int field: the index of the string in 'names'. */
    FO_FT_OBJECT, /* Nested object read with 'sub'; its fields are at base + offset. */
    FO_FT_CUSTOM, /* Read by 'parse'; 'schema' says what it takes. */
};

struct fo__field;

/* Read a present value 'v' of row 'f' (its JSON path is 'path') into the object at 'base'.
 * 'up' is what the enclosing walk was given (a backend gets its endpoint's pattern). Returns
 * false when the value was wrong (an error line was written). */
typedef bool fo__parse_fn(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                          const char *path, void *base, const void *up);

/* Store a default that is more than a copy of 'sdef' (e.g. "listen"). */
typedef void fo__init_fn(struct fo__vctx *c, const struct fo__field *f, void *base);

/* Run after every row of an object: checks between keys. Bit i of 'bad' is set when row i
 * was present but wrong, so a check compares only values valid on their own. */
typedef void fo__check_fn(struct fo__vctx *c, void *base, uint64_t bad);

/* One key of one object. */
struct fo__field {
    const char *key;
    enum fo__ftype type;
    double min, max;             /* Integer rows: the inclusive range. */
    size_t offset;               /* offsetof the field in the object's struct. */
    int64_t def;                 /* Integer, bool and enum rows: the default. */
    unsigned (*defn)(void);      /* Integer rows: a computed default (overrides 'def'). */
    const char *sdef;            /* Custom rows: default text, copied into a char * field
                                  * at 'offset' unless 'init' is set; NULL: none. */
    const char *doc;             /* One line for people: the schema's description. */
    bool required;               /* Absent: "missing key" on the object. */
    const char *const *names;    /* Enum rows: the accepted strings, NULL-terminated. */
    const struct fo__table *sub; /* Object rows: their table; array rows: the item's. */
    fo__parse_fn *parse;         /* Custom rows. */
    fo__init_fn *init;           /* Custom rows: default other than a copy of 'sdef'. */
    const char *schema;          /* Custom rows: JSON Schema of the value (JSON text). */
};

/* One JSON object: at most 64 rows, in the order they are read and reported. */
struct fo__table {
    const struct fo__field *fields;
    size_t n;
    fo__check_fn *check; /* May be NULL. */
};

/* The configuration's root table (config.c). */
extern const struct fo__table fo__config_root;

/* Append "path: message\n" (a NULL or full buffer still counts the error). */
void fo__errorf(struct fo__vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Printable, bounded rendering of outside text for a message; returns dst. */
const char *fo__quote(char *dst, size_t dstlen, const char *s);

/* printf into a path buffer; a truncated path still points near the mistake. */
void fo__pathf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* strdup that records an allocation failure in c. */
char *fo__strdup(struct fo__vctx *c, const char *s);

/* Apply the defaults of every row of 't' (nested objects too) to the object at 'base'. */
void fo__defaults(struct fo__vctx *c, const struct fo__table *t, void *base);

/* Check 'obj' against 't' and write its values into 'base'. 'path' is the object's JSON
 * path ("" at the root). Returns the rows that were present but wrong (bit i = row i). */
uint64_t fo__walk(struct fo__vctx *c, const struct fo__table *t, const cJSON *obj, const char *path,
                  void *base, const void *up);

/* Row 'key' of 't' as a bit of a walk's result; 0 if there is none. */
uint64_t fo__field_bit(const struct fo__table *t, const char *key);

/* Route and address checks (config_routes.c). */
struct fo_config;

/* "host:port" with a non-empty host and a port 1..65535 (no sign, no spaces). */
bool fo__is_host_port(const char *s);

/* A route path without placeholders (the aggregate, the probes): returns a copy the caller
 * frees, or NULL after an error line on 'where' (or when out of memory). */
char *fo__literal_path(struct fo__vctx *c, const char *where, const char *s);

/* Probe, aggregate and endpoint paths that an earlier route already takes. Run last. */
void fo__route_checks(struct fo__vctx *c, const struct fo_config *cfg);

/* TLS keys (config_tls.c). */

/* The "min_version" names, NULL-terminated: "1.2", "1.3". */
extern const char *const fo__tls_versions[];

/* Read at most 1 MiB of 'file' (a regular file) into a NUL-terminated buffer the caller frees
 * (*len may be NULL). Returns 0, -E2BIG when larger, -EINVAL when not a regular file, or the
 * open/read errno. */
int fo__read_pem(const char *file, char **out, size_t *len);

/* The reason for a fo__read_pem error, for a message. */
const char *fo__pem_strerror(int rc);

/* True when PEM 'text' holds a private key ('key') or a certificate. */
bool fo__pem_kind_ok(const char *text, bool key);

/* Custom rows: a readable PEM file (a key when the row's key ends in "key_file", else a
 * certificate), "listen_tls", a backend's "server_name". */
fo__parse_fn fo__parse_pem_path, fo__parse_listen_tls, fo__parse_server_name;

/* The listener rules (at least one; listen_tls and tls together) and each backend's TLS
 * keys (https:// only, client cert and key together); gives backends the top-level
 * ca_file. 'bad' is the root walk's. Run from the root check. */
void fo__tls_checks(struct fo__vctx *c, struct fo_config *cfg, uint64_t bad);

#endif /* FO_CONFIG_SCHEMA_H */
