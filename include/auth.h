/* auth.h -- who may call an endpoint: API keys or JWTs, checked before any
 * backend call.
 *
 * An "auth" is configured at the top level (the default of every endpoint
 * and of the ad-hoc batch) or on an endpoint (which may turn the default off
 * with "auth": null). It is one of
 *   {"api_keys": {"header", "keys_file"}}: the client sends a key in a header;
 *       its SHA-256 is compared in constant time with every digest of the
 *       keys file, and the matching entry's name is the caller's name;
 *   {"jwt": {...}}: "Authorization: Bearer <token>", verified by
 *       jwt_verify.h against a JWKS file.
 * Keys files are read when the config is loaded (so SIGHUP re-reads them and
 * a bad one fails the load like any config error).
 * The verdict of a request is either a result (the caller's name, the
 * verified claims, the header lines forward_claims adds to every call) or a
 * failure with its status, code, reason and WWW-Authenticate challenge.
 * Ownership: an auth belongs to its config (fo_auth_destroy); a result owns
 * what it holds until fo_auth_result_clear. The client's Authorization and
 * key headers are never copied anywhere.
 * Threads: a parsed auth is immutable and may be read from any thread; a
 * result belongs to its request. */
#ifndef FO_AUTH_H
#define FO_AUTH_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fo_plan; /* plan.h */

/* Why a request was refused: the reason label of fanout_auth_failures_total. */
enum fo_auth_reason {
    FO_AUTH_MISSING,       /* No credentials (401). */
    FO_AUTH_BAD_KEY,       /* An API key no entry has (401). */
    FO_AUTH_MALFORMED,     /* Not a token fanout can read (401). */
    FO_AUTH_ALG,           /* "none", an alg not allowed, or a key of another type (401). */
    FO_AUTH_UNKNOWN_KID,   /* No key with the token's kid (401). */
    FO_AUTH_SIGNATURE,     /* The signature does not verify (401). */
    FO_AUTH_EXPIRED,       /* exp has passed (401). */
    FO_AUTH_NOT_YET_VALID, /* nbf or iat is in the future (401). */
    FO_AUTH_ISSUER,        /* iss is not the configured issuer (401). */
    FO_AUTH_AUDIENCE,      /* aud does not name the configured audience (401). */
    FO_AUTH_CLAIM_VALUE,   /* A forwarded claim holds a control byte (401). */
    FO_AUTH_CLAIMS,        /* Valid, but a required claim does not match (403). */
    FO_AUTH_NREASONS,
};

/* The reason's label ("missing", "bad_signature", ...). */
const char *fo_auth_reason_name(enum fo_auth_reason r);

struct fo_auth; /* Opaque: one configured auth (auth_config.c). */

/* What a passed check knows about the caller. */
struct fo_auth_result {
    const char *name; /* API key entry's name (borrowed from the config), or NULL. */
    char *claims;     /* From malloc(): the verified JWT claims JSON, or NULL. */
    size_t claims_len;
    char **lines; /* From malloc(): forward_claims "Name: value" lines. */
    size_t nlines;
    const char ***call_hdrs; /* From malloc(): per call, the header array given to it. */
    size_t ncalls;
    char *ctext; /* From malloc(): each claim's name and text, for {jwt.*}. */
    struct fo_auth_claim {
        size_t name, nlen; /* Offset and length of the decoded name in 'ctext'. */
        size_t val, vlen;  /* ... of its text: a string decoded, an array of strings
                              joined with spaces, anything else its JSON text. */
    } * cl;                /* From malloc(): ncl of them, in token order. */
    size_t ncl;
};

/* Why a check failed, for the answer. Strings are static. */
struct fo_auth_fail {
    unsigned status;     /* 401 or 403. */
    const char *code;    /* "unauthorized" or "forbidden". */
    const char *message; /* Human text; never echoes the credential. */
    enum fo_auth_reason reason;
    char www[160]; /* WWW-Authenticate value for a 401, or "". */
};

/* Check the request on 'c' against 'a' at time 'now_s' (Unix seconds).
 * Returns 0 with *res filled, -EACCES with *f filled, or -ENOMEM. */
int fo_auth_check(const struct fo_auth *a, struct MHD_Connection *c, int64_t now_s,
                  struct fo_auth_result *res, struct fo_auth_fail *f);

/* Add the result's forward_claims lines to every call of 'p': a call
 * header of the same name is replaced. The arrays belong to 'res' and must
 * outlive the plan's use. Returns 0 or -ENOMEM. */
int fo_auth_apply(struct fo_auth_result *res, struct fo_plan *p);

/* The values of the {auth.name} and {jwt.<claim>} placeholders: the API key
 * entry's name, or claim 'name' (n bytes) of a verified JWT, as *p and *len
 * (borrowed from the result). False when the request has none. */
bool fo_auth_name(const struct fo_auth_result *res, const char **p, size_t *len);
bool fo_auth_claim_text(const struct fo_auth_result *res, const char *name, size_t n,
                        const char **p, size_t *len);

/* The header an "api_keys" auth reads the key from, or NULL (another kind,
 * or no auth): forward_headers' "*" leaves it out. */
const char *fo_auth_secret_header(const struct fo_auth *a);

/* Free what a result holds and zero it. */
void fo_auth_result_clear(struct fo_auth_result *res);

/* ---- config (auth_config.c) ---- */

struct fo__vctx;
struct cJSON;

/* Read an "auth" value at 'path' into *out (NULL for JSON null). Keys files
 * are read now: a relative name is taken from 'dir' (the config file's
 * folder, or NULL: the working directory). Errors go to 'c' naming 'path'
 * and the file. Returns false after an error. */
bool fo__auth_parse(struct fo__vctx *c, const struct cJSON *v, const char *path, const char *dir,
                    struct fo_auth **out);

/* NULL is a no-op. */
void fo_auth_destroy(struct fo_auth *a);

#endif /* FO_AUTH_H */
