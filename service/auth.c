/* auth.c -- the check of a request against its endpoint's auth (see auth.h).
 *
 * Runs on the MHD thread that routes the request, before the plan is built:
 * a refused request never reaches the pool. API keys: the presented key is
 * hashed (SHA-256, OpenSSL EVP) and the digest compared with CRYPTO_memcmp
 * against every entry, all of them, whatever matched first, so neither the
 * key's bytes nor its position leak through timing; the key itself is never
 * compared, stored or logged. JWTs: jwt_verify.c. A credential that appears
 * twice in the head is refused rather than one of the two picked. */
#include "auth_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "buf.h"
#include "json.h"
#include "plan.h"

static const char *const reason_names[FO_AUTH_NREASONS] = {
    "missing", "bad_key",       "malformed", "alg",      "unknown_kid", "bad_signature",
    "expired", "not_yet_valid", "issuer",    "audience", "claim_value", "claims"};

static const char *const reason_text[FO_AUTH_NREASONS] = {
    "credentials are required",
    "the API key is not valid",
    "the token is malformed",
    "the token's algorithm is not accepted with its key",
    "no key has the token's kid",
    "the token's signature does not verify",
    "the token has expired",
    "the token is not valid yet",
    "the token's issuer is not accepted",
    "the token's audience is not accepted",
    "a forwarded claim holds a control character",
    "a required claim does not match"};

const char *fo_auth_reason_name(enum fo_auth_reason r)
{
    return r < FO_AUTH_NREASONS ? reason_names[r] : "?";
}

struct lookup {
    const char *name; /* The header wanted. */
    const char *value;
    unsigned count;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct lookup *l = cls;
    (void)kind;
    if (key && strcasecmp(key, l->name) == 0) {
        l->count++;
        l->value = value ? value : "";
    }
    return MHD_YES;
}

/* The one value of header 'name'; NULL when absent; *twice when repeated. */
static const char *one_header(struct MHD_Connection *c, const char *name, bool *twice)
{
    struct lookup l = {.name = name};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &l);
    *twice = l.count > 1;
    return l.value;
}

static int refuse(struct fo_auth_fail *f, enum fo_auth_reason why, const struct fo_auth *a)
{
    f->reason = why;
    f->status = why == FO_AUTH_CLAIMS ? 403 : 401;
    f->code = why == FO_AUTH_CLAIMS ? "forbidden" : "unauthorized";
    f->message = reason_text[why];
    if (a->kind == FO_AUTH_KIND_KEYS)
        snprintf(f->www, sizeof f->www, "ApiKey realm=\"fanout\", header=\"%s\"", a->header);
    else if (why == FO_AUTH_MISSING)
        snprintf(f->www, sizeof f->www, "Bearer realm=\"fanout\"");
    else if (why == FO_AUTH_CLAIMS)
        snprintf(f->www, sizeof f->www, "Bearer realm=\"fanout\", error=\"insufficient_scope\"");
    else
        snprintf(f->www, sizeof f->www, "Bearer realm=\"fanout\", error=\"invalid_token\"");
    return -EACCES;
}

static int check_key(const struct fo_auth *a, struct MHD_Connection *c, struct fo_auth_result *res,
                     struct fo_auth_fail *f)
{
    bool twice;
    const char *key = one_header(c, a->header, &twice);
    if (!key || !key[0])
        return refuse(f, FO_AUTH_MISSING, a);
    if (twice)
        return refuse(f, FO_AUTH_BAD_KEY, a);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != FO_SHA256_LEN)
        return -ENOMEM;
    const struct fo_api_key *hit = NULL;
    for (size_t i = 0; i < a->nkeys; i++) {
        bool eq = CRYPTO_memcmp(md, a->keys[i].sha256, FO_SHA256_LEN) == 0;
        hit = eq && !hit ? &a->keys[i] : hit;
    }
    OPENSSL_cleanse(md, sizeof md);
    if (!hit)
        return refuse(f, FO_AUTH_BAD_KEY, a);
    res->name = hit->name;
    return 0;
}

/* An array whose elements are all strings, joined with spaces onto 'b';
 * false (nothing appended that counts) when it is not one. */
static bool join_strings(struct fo_json_span v, struct fo_buf *b, int *rc)
{
    struct fo_json_iter it;
    struct fo_json_span e;
    size_t start = b->len;
    if (fo_json_iter_array(&it, v) < 0)
        return false;
    while (fo_json_next_element(&it, &e)) {
        if (fo_json_kind(e) != FO_JSON_STRING) {
            b->len = start;
            return false;
        }
        if (b->len > start)
            *rc = *rc ? *rc : fo_buf_putc(b, ' ');
        *rc = *rc ? *rc : fo_json_unescape(e, b);
    }
    return true;
}

/* Each top-level claim's name and text into res->ctext / res->cl. */
static int claim_texts(struct fo_auth_result *res, const char *text)
{
    struct fo_json_span obj, k, v;
    struct fo_json_iter it;
    if (fo_json_validate(text, strlen(text), 64, &obj) < 0 || fo_json_iter_object(&it, obj) < 0)
        return -EINVAL; /* Cannot be: the verifier validated it. */
    size_t n = 0;
    while (fo_json_next_member(&it, &k, &v))
        n++;
    res->cl = calloc(n ? n : 1, sizeof *res->cl);
    if (!res->cl)
        return -ENOMEM;
    struct fo_buf b;
    fo_buf_init(&b, FO_BUF_UNLIMITED);
    int rc = fo_json_iter_object(&it, obj);
    while (rc == 0 && fo_json_next_member(&it, &k, &v)) {
        struct fo_auth_claim *c = &res->cl[res->ncl++];
        c->name = b.len;
        rc = fo_json_unescape(k, &b);
        c->nlen = b.len - c->name;
        c->val = b.len;
        if (rc == 0 && fo_json_kind(v) == FO_JSON_STRING)
            rc = fo_json_unescape(v, &b);
        else if (rc == 0 && !(fo_json_kind(v) == FO_JSON_ARRAY && join_strings(v, &b, &rc)))
            rc = fo_buf_append(&b, v.p, v.len);
        c->vlen = b.len - c->val;
    }
    if (rc == 0) {
        res->ctext = fo_buf_release(&b, NULL);
        rc = res->ctext ? 0 : -ENOMEM;
    }
    fo_buf_free(&b);
    return rc;
}

const char *fo_auth_secret_header(const struct fo_auth *a)
{
    return a && a->kind == FO_AUTH_KIND_KEYS ? a->header : NULL;
}

bool fo_auth_name(const struct fo_auth_result *res, const char **p, size_t *len)
{
    if (!res->name)
        return false;
    *p = res->name;
    *len = strlen(res->name);
    return true;
}

bool fo_auth_claim_text(const struct fo_auth_result *res, const char *name, size_t n,
                        const char **p, size_t *len)
{
    for (size_t i = 0; res->ctext && i < res->ncl; i++) {
        const struct fo_auth_claim *c = &res->cl[i];
        if (c->nlen == n && memcmp(res->ctext + c->name, name, n) == 0) {
            *p = res->ctext + c->val;
            *len = c->vlen;
            return true;
        }
    }
    return false;
}

static int check_jwt(const struct fo_auth *a, struct MHD_Connection *c, int64_t now_s,
                     struct fo_auth_result *res, struct fo_auth_fail *f)
{
    bool twice;
    const char *h = one_header(c, MHD_HTTP_HEADER_AUTHORIZATION, &twice);
    if (!h || !h[0])
        return refuse(f, FO_AUTH_MISSING, a);
    if (twice)
        return refuse(f, FO_AUTH_MALFORMED, a);
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return refuse(f, FO_AUTH_MISSING, a); /* Another scheme: no bearer credentials. */
    const char *tok = h + 7 + strspn(h + 7, " ");
    size_t n = strlen(tok);
    while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    struct fo_jwt_claims cl;
    enum fo_auth_reason why;
    int rc = fo_jwt_verify(&a->jwt, tok, n, now_s, &cl, &why);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        fo_jwt_claims_clear(&cl);
        return refuse(f, why, a);
    }
    if (a->jwt.nforward) {
        res->lines = calloc(a->jwt.nforward, sizeof *res->lines);
        rc = res->lines ? fo_jwt_forward_lines(&a->jwt, &cl, res->lines, &res->nlines) : -ENOMEM;
        if (rc < 0) {
            fo_jwt_claims_clear(&cl);
            return rc == -EACCES ? refuse(f, FO_AUTH_CLAIM_VALUE, a) : rc;
        }
    }
    res->claims = cl.text; /* Moves to the result. */
    res->claims_len = cl.text ? strlen(cl.text) : 0;
    rc = res->claims ? claim_texts(res, res->claims) : 0;
    return rc == -ENOMEM ? rc : 0;
}

int fo_auth_check(const struct fo_auth *a, struct MHD_Connection *c, int64_t now_s,
                  struct fo_auth_result *res, struct fo_auth_fail *f)
{
    f->www[0] = '\0';
    if (a->kind == FO_AUTH_KIND_KEYS)
        return check_key(a, c, res, f);
    return check_jwt(a, c, now_s, res, f);
}

/* The header name of a "Name: value" line is 'name' (NUL- or ':'-ended). */
static bool same_name(const char *line, const char *other)
{
    size_t n = strcspn(other, ":");
    return strncasecmp(line, other, n) == 0 && line[n] == ':';
}

int fo_auth_apply(struct fo_auth_result *res, struct fo_plan *p)
{
    if (!res->nlines || !p->n)
        return 0;
    res->call_hdrs = calloc(p->n, sizeof *res->call_hdrs);
    if (!res->call_hdrs)
        return -ENOMEM;
    res->ncalls = p->n;
    for (size_t i = 0; i < p->n; i++) {
        struct fo_call *call = &p->calls[i];
        const char **h = calloc(call->nheaders + res->nlines, sizeof *h);
        if (!h)
            return -ENOMEM;
        res->call_hdrs[i] = h;
        size_t k = 0;
        for (size_t j = 0; j < call->nheaders; j++) {
            bool replaced = false;
            for (size_t l = 0; l < res->nlines && !replaced; l++)
                replaced = same_name(call->headers[j], res->lines[l]);
            if (!replaced)
                h[k++] = call->headers[j];
        }
        for (size_t l = 0; l < res->nlines; l++)
            h[k++] = res->lines[l];
        call->headers = h;
        call->nheaders = k;
    }
    return 0;
}

void fo_auth_result_clear(struct fo_auth_result *res)
{
    for (size_t i = 0; i < res->ncalls; i++)
        free((void *)res->call_hdrs[i]);
    free(res->call_hdrs);
    for (size_t i = 0; i < res->nlines; i++)
        free(res->lines[i]);
    free(res->lines);
    free(res->claims);
    free(res->ctext);
    free(res->cl);
    memset(res, 0, sizeof *res);
}
