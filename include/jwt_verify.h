/* jwt_verify.h -- verify a JWS compact token (RFC 7515/7519) for a "jwt" auth.
 *
 * The front of verification is fanout's own, and it is the part that meets
 * outside bytes first: the token is split into its three segments (the
 * base64url alphabet only, bounded lengths), the header and the claims are
 * decoded and validated as JSON by json.c (duplicate members in the header
 * or at the top of the claims are refused, so no two parsers can read one
 * token two ways), the header's "alg" must be one the auth allows and never
 * "none", "crit" is refused, and the key is chosen by "kid" from the JWKS.
 * The key's type must fit the algorithm before any signature is checked
 * (HS* only with an "oct" secret, RS* only with RSA, ES256 only with EC):
 * that is what stops algorithm confusion, e.g. an HS256 token "signed" with
 * the RSA public key as its secret. Then libjwt checks the signature
 * (jwt_decode with the key), and the claims are judged here: exp, nbf and
 * iat with leeway, iss, aud (a string or an array), required_claims.
 * Ownership: a conf owns its strings and its JWKS; verified claims own the
 * decoded claims text (free with fo_jwt_claims_clear).
 * Threads: a conf is immutable once parsed; verification is thread-safe. */
#ifndef FO_JWT_VERIFY_H
#define FO_JWT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "json.h"
#include "jwks.h"
#include "jwt_cache.h"

/* Longest token taken at all (the head cap is usually lower). */
#define FO_JWT_MAX_TOKEN 16384

/* The signature algorithms fanout verifies; bit i of fo_jwt_conf.algs is alg i. */
enum fo_jwt_alg {
    FO_JWT_RS256,
    FO_JWT_RS384,
    FO_JWT_RS512,
    FO_JWT_ES256,
    FO_JWT_HS256,
    FO_JWT_HS384,
    FO_JWT_HS512,
    FO_JWT_NALGS,
};

/* The name of alg i ("RS256"), and the index of a name (-1: none of them). */
const char *fo_jwt_alg_name(enum fo_jwt_alg a);
int fo_jwt_alg_index(const char *name, size_t n);

/* A required claim: equal to a scalar, or containing every listed string. */
struct fo_jwt_rule {
    char *claim;            /* From malloc(). */
    enum fo_json_kind kind; /* STRING, NUMBER, TRUE/FALSE: equal; ARRAY: contains. */
    char *text;             /* STRING: the value; NUMBER: its text (from malloc()). */
    char **members;         /* ARRAY: nmembers strings (from malloc()). */
    size_t nmembers;
};

/* A claim sent to every backend call as a header. */
struct fo_jwt_forward {
    char *header; /* From malloc(): a token. */
    char *claim;  /* From malloc(). */
};

struct fo_jwt_conf {
    unsigned algs;             /* Allowed algorithms: bit set of enum fo_jwt_alg. */
    struct fo_jwks *keys;      /* Owned. */
    char *issuer;              /* From malloc(), or NULL: iss not checked. */
    char *audience;            /* From malloc(), or NULL: aud not checked. */
    int64_t leeway_s;          /* Clock skew allowed on exp, nbf, iat. */
    struct fo_jwt_rule *rules; /* From calloc(): nrules of them. */
    size_t nrules;
    struct fo_jwt_forward *forward; /* From calloc(): nforward of them. */
    size_t nforward;
    struct fo_jwt_cache *verified; /* Owned, or NULL: tokens whose signature verified. */
};

/* Free what a conf holds (not the conf itself). NULL is a no-op. */
void fo_jwt_conf_clear(struct fo_jwt_conf *jc);

/* The claims of a verified token. */
struct fo_jwt_claims {
    char *text;              /* From malloc(): the decoded claims JSON, or NULL. */
    struct fo_json_span obj; /* The object inside 'text'. */
};

void fo_jwt_claims_clear(struct fo_jwt_claims *cl);

/* The value of claim 'name' in verified claims; false when absent. */
bool fo_jwt_claim(const struct fo_jwt_claims *cl, const char *name, struct fo_json_span *val);

/* Verify the n bytes of 'token' at time 'now_s' (Unix seconds). Returns 0
 * with *cl filled; -EACCES (401: *why says why) or -EPERM (403: a required
 * claim does not match, *why is FO_AUTH_CLAIMS; *cl is still filled, then
 * cleared by the caller); or -ENOMEM. */
int fo_jwt_verify(const struct fo_jwt_conf *jc, const char *token, size_t n, int64_t now_s,
                  struct fo_jwt_claims *cl, enum fo_auth_reason *why);

/* The "Name: value" line of each forward_claims entry whose claim is
 * present, into 'lines' (room for jc->nforward; each from malloc()), and
 * their count in *n. A string claim goes as it is, a number or a boolean as
 * its JSON text, an array or object as its compact JSON text. Returns 0,
 * -EACCES when a value holds a control byte (CR, LF, NUL, ...: such a value
 * can never be a header), or -ENOMEM; on error nothing is left allocated. */
int fo_jwt_forward_lines(const struct fo_jwt_conf *jc, const struct fo_jwt_claims *cl, char **lines,
                         size_t *n);

#endif /* FO_JWT_VERIFY_H */
