/* auth_conf.h -- the inside of a configured auth, shared by the modules that
 * read it (auth_config.c) and use it (auth.c, the fuzz targets) only.
 * Threads: immutable once parsed. */
#ifndef FO_AUTH_CONF_H
#define FO_AUTH_CONF_H

#include "auth.h"
#include "jwt_verify.h"

#define FO_SHA256_LEN 32

enum fo_auth_kind {
    FO_AUTH_KIND_KEYS, /* "api_keys" */
    FO_AUTH_KIND_JWT,  /* "jwt" */
};

struct fo_api_key {
    char *name;                          /* From malloc(): printable, for logs and {auth.name}. */
    unsigned char sha256[FO_SHA256_LEN]; /* Digest of the key; the key itself is never held. */
};

struct fo_auth {
    enum fo_auth_kind kind;
    char *header;            /* KEYS: the header carrying the key (from malloc()). */
    struct fo_api_key *keys; /* KEYS: from calloc(), nkeys of them. */
    size_t nkeys;
    struct fo_jwt_conf jwt; /* JWT. */
};

/* Parse an API keys file {"keys": [{"name", "sha256"}]} into 'a'. Returns 0,
 * -EINVAL with a reason in 'err', or -ENOMEM. */
int fo__api_keys_parse(struct fo_auth *a, const char *text, size_t n, char *err, size_t errlen);

#endif /* FO_AUTH_CONF_H */
