/* jwt_verify.c -- verify a JWS compact token for a "jwt" auth (see jwt_verify.h).
 *
 * The order is the point: shape, then JSON, then the algorithm and the key
 * (kid, then the key type against the algorithm), then the signature (libjwt),
 * then the claims. Nothing of the token is believed before its signature is
 * checked, and libjwt is only ever handed a key whose type fits the
 * algorithm the token names, which fanout checked it allows. libjwt 1.x
 * reads "alg" again itself; fanout refuses duplicate header members and then
 * checks that libjwt saw the same algorithm, so the two readings cannot
 * differ. The claims judged are fanout's own reading of the very bytes the
 * signature covers. */
#include "jwt_verify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "b64url.h"
#include "buf.h"

#define MAX_MEMBERS 64 /* Top-level members of a header or of the claims. */
#define MAX_DEPTH   16 /* Nesting of the claims. */
#define MAX_NUMBER  64 /* Characters of a NumericDate. */

static const char *const alg_names[FO_JWT_NALGS] = {"RS256", "RS384", "RS512", "ES256",
                                                    "HS256", "HS384", "HS512"};
static const jwt_alg_t lib_algs[FO_JWT_NALGS] = {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512,
                                                 JWT_ALG_ES256, JWT_ALG_HS256, JWT_ALG_HS384,
                                                 JWT_ALG_HS512};

const char *fo_jwt_alg_name(enum fo_jwt_alg a)
{
    return a < FO_JWT_NALGS ? alg_names[a] : "?";
}

int fo_jwt_alg_index(const char *name, size_t n)
{
    for (int i = 0; i < FO_JWT_NALGS; i++)
        if (strlen(alg_names[i]) == n && memcmp(alg_names[i], name, n) == 0)
            return i;
    return -1;
}

/* The only key type alg 'a' may be verified with (see the header). */
static enum fo_jwk_kty kty_of(enum fo_jwt_alg a)
{
    if (a <= FO_JWT_RS512)
        return FO_JWK_RSA;
    return a == FO_JWT_ES256 ? FO_JWK_EC : FO_JWK_OCT;
}

void fo_jwt_conf_clear(struct fo_jwt_conf *jc)
{
    if (!jc)
        return;
    fo_jwks_destroy(jc->keys);
    fo_jwt_cache_destroy(jc->verified);
    free(jc->issuer);
    free(jc->audience);
    for (size_t i = 0; i < jc->nrules; i++) {
        struct fo_jwt_rule *r = &jc->rules[i];
        free(r->claim);
        free(r->text);
        for (size_t k = 0; k < r->nmembers; k++)
            free(r->members[k]);
        free(r->members);
    }
    free(jc->rules);
    for (size_t i = 0; i < jc->nforward; i++) {
        free(jc->forward[i].header);
        free(jc->forward[i].claim);
    }
    free(jc->forward);
    memset(jc, 0, sizeof *jc);
}

void fo_jwt_claims_clear(struct fo_jwt_claims *cl)
{
    free(cl->text);
    cl->text = NULL;
    cl->obj.p = NULL;
    cl->obj.len = 0;
}

/* Top-level member names of 'obj' are unique (compared decoded, so "a" and
 * "\u0061" are the same name) and at most MAX_MEMBERS. */
static int unique_members(struct fo_json_span obj)
{
    struct fo_json_iter it;
    struct fo_json_span k, v;
    size_t at[MAX_MEMBERS + 1];
    size_t n = 0;
    struct fo_buf names;
    fo_buf_init(&names, FO_BUF_UNLIMITED);
    int rc = fo_json_iter_object(&it, obj);
    while (rc == 0 && fo_json_next_member(&it, &k, &v)) {
        if (n == MAX_MEMBERS) {
            rc = -EINVAL;
            break;
        }
        at[n++] = names.len;
        rc = fo_json_unescape(k, &names);
        if (rc == 0)
            rc = fo_buf_putc(&names, '\0'); /* A NUL inside a name only makes it longer. */
    }
    at[n] = names.len;
    for (size_t i = 0; rc == 0 && i < n; i++)
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (at[i + 1] - at[i] == at[j + 1] - at[j] &&
                memcmp(names.data + at[i], names.data + at[j], at[i + 1] - at[i]) == 0)
                rc = -EINVAL;
    fo_buf_free(&names);
    return rc == -ENOMEM ? -ENOMEM : rc < 0 ? -EINVAL : 0;
}

/* Decode one base64url segment holding a JSON object. */
static int segment_json(const char *s, size_t n, char **text, struct fo_json_span *obj)
{
    if (n == 0)
        return -EINVAL;
    char *t = malloc(FO_B64URL_DECODED_MAX(n) + 1);
    if (!t)
        return -ENOMEM;
    size_t len;
    int rc = fo_b64url_decode(s, n, (unsigned char *)t, &len);
    if (rc == 0) {
        t[len] = '\0';
        rc = fo_json_validate(t, len, MAX_DEPTH, obj);
    }
    if (rc == 0 && fo_json_kind(*obj) != FO_JSON_OBJECT)
        rc = -EINVAL;
    if (rc == 0)
        rc = unique_members(*obj);
    if (rc < 0) {
        free(t);
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    *text = t;
    return 0;
}

static bool member_of(struct fo_json_span obj, const char *name, struct fo_json_span *val)
{
    struct fo_json_iter it;
    struct fo_json_span k, v;
    if (fo_json_iter_object(&it, obj) < 0)
        return false;
    while (fo_json_next_member(&it, &k, &v))
        if (fo_json_str_eq(k, name)) {
            *val = v;
            return true;
        }
    return false;
}

bool fo_jwt_claim(const struct fo_jwt_claims *cl, const char *name, struct fo_json_span *val)
{
    return cl->obj.p && member_of(cl->obj, name, val);
}

/* A raw JSON number as a double (huge ones become +-inf; too long: -EINVAL). */
static int number(struct fo_json_span v, double *out)
{
    char tmp[MAX_NUMBER + 1];
    if (fo_json_kind(v) != FO_JSON_NUMBER || v.len > MAX_NUMBER)
        return -EINVAL;
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = '\0';
    *out = strtod(tmp, NULL);
    return isnan(*out) ? -EINVAL : 0;
}

/* The decoded string 'v' equals the n bytes at 's'. */
static bool str_is(struct fo_json_span v, const char *s)
{
    return fo_json_kind(v) == FO_JSON_STRING && fo_json_str_eq(v, s);
}

/* An array value holds a string equal to 's'. */
static bool array_has(struct fo_json_span arr, const char *s)
{
    struct fo_json_iter it;
    struct fo_json_span e;
    if (fo_json_iter_array(&it, arr) < 0)
        return false;
    while (fo_json_next_element(&it, &e))
        if (str_is(e, s))
            return true;
    return false;
}

/* A space-separated string value (such as "scope") holds the word 's'. */
static bool words_have(struct fo_json_span v, const char *s)
{
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    bool found = false;
    if (fo_json_unescape(v, &b) == 0 && b.data) {
        size_t n = strlen(s);
        for (const char *p = b.data; *p && !found;) {
            size_t w = strcspn(p, " ");
            found = w == n && memcmp(p, s, n) == 0;
            p += w;
            p += strspn(p, " ");
        }
    }
    fo_buf_free(&b);
    return found;
}

static bool rule_holds(const struct fo_jwt_rule *r, const struct fo_jwt_claims *cl)
{
    struct fo_json_span v;
    if (!fo_jwt_claim(cl, r->claim, &v))
        return false;
    enum fo_json_kind k = fo_json_kind(v);
    double a, b;
    switch (r->kind) {
    case FO_JSON_STRING:
        return str_is(v, r->text);
    case FO_JSON_NUMBER:
        if (number(v, &a) < 0)
            return false;
        b = strtod(r->text, NULL);
        return a == b;
    case FO_JSON_TRUE:
    case FO_JSON_FALSE:
        return k == r->kind;
    case FO_JSON_ARRAY:
        if (k != FO_JSON_ARRAY && k != FO_JSON_STRING)
            return false;
        for (size_t i = 0; i < r->nmembers; i++)
            if (k == FO_JSON_ARRAY ? !array_has(v, r->members[i]) : !words_have(v, r->members[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* exp, nbf, iat, iss, aud. Returns 0 or -EACCES with *why. */
static int judge_claims(const struct fo_jwt_conf *jc, const struct fo_jwt_claims *cl, int64_t now_s,
                        enum fo_auth_reason *why)
{
    struct fo_json_span v;
    double t, now = (double)now_s, leeway = (double)jc->leeway_s;
    static const char *const times[] = {"exp", "nbf", "iat"};
    for (int i = 0; i < 3; i++) {
        if (!fo_jwt_claim(cl, times[i], &v))
            continue;
        if (number(v, &t) < 0) {
            *why = FO_AUTH_MALFORMED;
            return -EACCES;
        }
        if (i == 0 && now > t + leeway) {
            *why = FO_AUTH_EXPIRED;
            return -EACCES;
        }
        if (i > 0 && t > now + leeway) {
            *why = FO_AUTH_NOT_YET_VALID;
            return -EACCES;
        }
    }
    if (jc->issuer && !(fo_jwt_claim(cl, "iss", &v) && str_is(v, jc->issuer))) {
        *why = FO_AUTH_ISSUER;
        return -EACCES;
    }
    if (jc->audience && !(fo_jwt_claim(cl, "aud", &v) &&
                          (str_is(v, jc->audience) ||
                           (fo_json_kind(v) == FO_JSON_ARRAY && array_has(v, jc->audience))))) {
        *why = FO_AUTH_AUDIENCE;
        return -EACCES;
    }
    return 0;
}

/* The header: its alg (allowed, never "none") and its key (by kid, of the
 * type the alg needs). */
static int choose_key(const struct fo_jwt_conf *jc, struct fo_json_span hdr, enum fo_jwt_alg *alg,
                      const struct fo_jwk **key, enum fo_auth_reason *why)
{
    struct fo_json_span v;
    struct fo_buf s;
    fo_buf_init(&s, 256);
    *why = FO_AUTH_MALFORMED;
    if (member_of(hdr, "crit", &v)) /* Extensions fanout does not know must not be ignored. */
        return -EACCES;
    if (!member_of(hdr, "alg", &v) || fo_json_kind(v) != FO_JSON_STRING)
        return -EACCES;
    int rc = fo_json_unescape(v, &s);
    int a = rc == 0 && s.data ? fo_jwt_alg_index(s.data, s.len) : -1;
    fo_buf_free(&s);
    if (rc == -ENOMEM)
        return -ENOMEM;
    if (a < 0 || !(jc->algs & (1u << a))) { /* "none" is never in the list. */
        *why = FO_AUTH_ALG;
        return -EACCES;
    }
    *alg = (enum fo_jwt_alg)a;
    fo_buf_init(&s, 1024);
    const struct fo_jwk *k;
    if (member_of(hdr, "kid", &v)) {
        if (fo_json_kind(v) != FO_JSON_STRING)
            return -EACCES;
        rc = fo_json_unescape(v, &s);
        if (rc == -ENOMEM)
            return -ENOMEM;
        k = rc == 0 ? fo_jwks_find(jc->keys, s.data ? s.data : "", s.len) : NULL;
        fo_buf_free(&s);
    } else {
        k = fo_jwks_find(jc->keys, NULL, 0);
    }
    if (!k) {
        *why = FO_AUTH_UNKNOWN_KID;
        return -EACCES;
    }
    if (k->kty != kty_of(*alg) || (k->alg && strcmp(k->alg, alg_names[a]) != 0)) {
        *why = FO_AUTH_ALG; /* Algorithm confusion: refused before any verification. */
        return -EACCES;
    }
    *key = k;
    return 0;
}

/* libjwt checks the signature of the whole token with the chosen key. */
static int check_signature(const char *token, size_t n, enum fo_jwt_alg alg,
                           const struct fo_jwk *key, enum fo_auth_reason *why)
{
    char *t = malloc(n + 1); /* libjwt wants a C string. */
    if (!t)
        return -ENOMEM;
    memcpy(t, token, n);
    t[n] = '\0';
    jwt_t *j = NULL;
    int rc = jwt_decode(&j, t, key->key, (int)key->key_len);
    if (rc == ENOMEM) {
        jwt_free(j);
        free(t);
        return -ENOMEM;
    }
    if (rc == 0 && j && jwt_get_alg(j) == lib_algs[alg]) {
        jwt_free(j);
        free(t);
        return 0;
    }
    jwt_free(j);
    /* libjwt reads the claims before it checks the signature: a token it
     * cannot read at all (a 400-digit number, a \u0000) is malformed, not
     * badly signed. Only failures pay for this second read. */
    j = NULL;
    rc = jwt_decode(&j, t, NULL, 0);
    jwt_free(j);
    free(t);
    *why = rc == 0 ? FO_AUTH_SIGNATURE : FO_AUTH_MALFORMED;
    return -EACCES;
}

int fo_jwt_verify(const struct fo_jwt_conf *jc, const char *token, size_t n, int64_t now_s,
                  struct fo_jwt_claims *cl, enum fo_auth_reason *why)
{
    cl->text = NULL;
    cl->obj.p = NULL;
    cl->obj.len = 0;
    *why = FO_AUTH_MALFORMED;
    if (n == 0 || n > FO_JWT_MAX_TOKEN)
        return -EACCES;
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + n - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(token + n - d2 - 1)))
        return -EACCES; /* Not three segments (a JWE has five). */
    size_t hn = (size_t)(d1 - token), pn = (size_t)(d2 - d1 - 1), sn = (size_t)(token + n - d2 - 1);
    char *htext = NULL;
    struct fo_json_span hdr;
    int rc = segment_json(token, hn, &htext, &hdr);
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : -EACCES;
    enum fo_jwt_alg alg;
    const struct fo_jwk *key = NULL;
    rc = choose_key(jc, hdr, &alg, &key, why);
    free(htext);
    if (rc < 0)
        return rc;
    *why = FO_AUTH_MALFORMED;
    if (sn == 0)
        return -EACCES;
    rc = segment_json(d1 + 1, pn, &cl->text, &cl->obj);
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : -EACCES;
    unsigned char d[32];
    fo_jwt_cache_digest(token, n, d);
    if (fo_jwt_cache_has(jc->verified, d, key)) {
        rc = 0; /* This very token verified with this key before (jwt_cache.h). */
    } else {
        rc = check_signature(token, n, alg, key, why);
        if (rc == 0)
            fo_jwt_cache_put(jc->verified, d, key);
    }
    if (rc == 0)
        rc = judge_claims(jc, cl, now_s, why);
    for (size_t i = 0; rc == 0 && i < jc->nrules; i++)
        if (!rule_holds(&jc->rules[i], cl)) {
            *why = FO_AUTH_CLAIMS;
            rc = -EPERM;
        }
    if (rc < 0 && rc != -EPERM)
        fo_jwt_claims_clear(cl);
    return rc;
}

/* A header value must not hold a control byte (HTAB aside) or DEL. */
static bool header_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int fo_jwt_forward_lines(const struct fo_jwt_conf *jc, const struct fo_jwt_claims *cl, char **lines,
                         size_t *n)
{
    *n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < jc->nforward; i++) {
        struct fo_json_span v;
        if (!fo_jwt_claim(cl, jc->forward[i].claim, &v))
            continue;
        struct fo_buf b;
        fo_buf_init(&b, FO_BUF_UNLIMITED);
        rc = fo_buf_printf(&b, "%s: ", jc->forward[i].header);
        size_t at = b.len;
        if (rc == 0)
            rc = fo_json_kind(v) == FO_JSON_STRING ? fo_json_unescape(v, &b)
                                                   : fo_buf_append(&b, v.p, v.len);
        if (rc == 0 && !header_safe(b.data + at, b.len - at))
            rc = -EACCES;
        if (rc == 0) {
            lines[(*n)++] = fo_buf_release(&b, NULL);
            if (!lines[*n - 1])
                rc = -ENOMEM;
        }
        fo_buf_free(&b);
    }
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            free(lines[i]);
        *n = 0;
        return rc == -EACCES ? -EACCES : -ENOMEM;
    }
    return 0;
}
