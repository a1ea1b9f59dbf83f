/* config_resil.h -- the resilience keys' schema tables and parsers (private to the config).
 *
 * config.c puts these tables under its backend, endpoint and root rows; config_resil.c holds
 * them with the parsers of the keys that need their own (hosts, retry.on, hedge.after,
 * rate_limit.key). See resil_conf.h for what the fields mean.
 * Threads: tables are constant; parsing runs on the thread that parses the config. */
#ifndef FO_CONFIG_RESIL_H
#define FO_CONFIG_RESIL_H

#include "config_schema.h"
#include "resil_conf.h"

extern const struct fo__table fo__retry_table;
extern const struct fo__table fo__hedge_table;
extern const struct fo__table fo__breaker_table;
extern const struct fo__table fo__backend_rate_table;
extern const struct fo__table fo__endpoint_rate_table;
extern const struct fo__table fo__retry_budget_table;

/* The "hosts" row: a struct fo_resil_conf at base + f->offset. */
bool fo__parse_hosts(struct fo__vctx *c, const struct fo__field *f, const cJSON *v,
                     const char *path, void *base, const void *up);

/* Checks between a backend's keys, after its walk: 'bp' is its JSON path, 't' its table and
 * 'bad' the walk's result (rows present but wrong are not checked again). */
void fo__resil_backend_check(struct fo__vctx *c, const char *bp, const struct fo_resil_conf *r,
                             const char *method, const struct fo__table *t, uint64_t bad);

/* A 64-bit hash of two strings and the compact text of 'obj' (may be NULL). */
uint64_t fo__def_hash(const char *a, const char *b, const cJSON *obj);

/* Free what a resil conf holds (not the struct). */
void fo__resil_conf_free(struct fo_resil_conf *r);

#endif /* FO_CONFIG_RESIL_H */
