/* auth_config.c -- reading an "auth" value of the config and its keys files
 * (see auth.h, auth_conf.h).
 *
 * Part of the config load: errors are "path: message" lines on the config's
 * validation context, a keys file's own mistakes named after the key that
 * names the file ("auth.jwt.keys_file: /etc/fanout/jwks.json: keys[1].n:
 * ..."). Files are read whole, under a cap, when the config is loaded. */
#include "auth_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "config_schema.h"
#include "token.h"

#define MAX_KEYS_FILE (4u << 20)
#define MAX_NAME      128
#define MAX_LEEWAY_S  86400

/* Headers fanout sets or that frame the request: forward_claims may not name them. */
static const char *const reserved_headers[] = {
    "Host",         "Content-Length", "Transfer-Encoding", "Connection", "Expect",
    "Content-Type", "X-Timeout-Ms",   "X-Request-Id",      "Accept",     NULL};

static bool only_keys(struct fo__vctx *c, const cJSON *obj, const char *path,
                      const char *const *keys)
{
    bool ok = true;
    char q[96];
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool known = false;
        for (const char *const *k = keys; *k && !known; k++)
            known = strcmp(*k, m->string) == 0;
        if (!known) {
            fo__errorf(c, path, "unknown key \"%s\"", fo__quote(q, sizeof q, m->string));
            ok = false;
        }
        for (const cJSON *p = obj->child; known && p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0) { /* cJSON keeps both; lookups see one. */
                fo__errorf(c, path, "duplicate key \"%s\"", fo__quote(q, sizeof q, m->string));
                ok = false;
                break;
            }
    }
    return ok;
}

/* Read 'name' (relative to 'dir' unless absolute) whole into 'out'; the path
 * used goes to 'full'. Returns 0 or -errno (-EFBIG past the cap). */
static int read_file(const char *dir, const char *name, char *full, size_t fulllen,
                     struct fo_buf *out)
{
    if (name[0] != '/' && dir && dir[0])
        snprintf(full, fulllen, "%s/%s", dir, name);
    else
        snprintf(full, fulllen, "%s", name);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (;;) {
        char chunk[8192];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        rc = fo_buf_append(out, chunk, (size_t)r);
        if (rc < 0) {
            rc = rc == -E2BIG ? -EFBIG : rc;
            break;
        }
    }
    close(fd);
    return rc;
}

/* A keys file: read it and hand it to 'parse'; errors name 'path'. */
static bool keys_file(struct fo__vctx *c, const cJSON *obj, const char *path, const char *dir,
                      struct fo_auth *a,
                      int (*parse)(struct fo_auth *, const char *, size_t, char *, size_t))
{
    char p[300], full[PATH_MAX + 256], err[512];
    fo__pathf(p, sizeof p, "%s.keys_file", path);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "keys_file");
    if (!f) {
        fo__errorf(c, path, "missing key \"keys_file\"");
        return false;
    }
    if (!cJSON_IsString(f) || !f->valuestring[0]) {
        fo__errorf(c, p, "must be a file name");
        return false;
    }
    struct fo_buf text;
    fo_buf_init(&text, MAX_KEYS_FILE);
    int rc = read_file(dir, f->valuestring, full, sizeof full, &text);
    if (rc == -ENOMEM) {
        c->oom = true;
    } else if (rc == -EFBIG) {
        fo__errorf(c, p, "%s: larger than %u MiB", full, MAX_KEYS_FILE >> 20);
    } else if (rc < 0) {
        fo__errorf(c, p, "cannot read %s: %s", full, strerror(-rc));
    } else {
        rc = parse(a, text.data ? text.data : "", text.len, err, sizeof err);
        if (rc == -ENOMEM)
            c->oom = true;
        else if (rc < 0)
            fo__errorf(c, p, "%s: %s", full, err);
    }
    fo_buf_free(&text);
    return rc == 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A name for logs and headers: 1..MAX_NAME printable ASCII bytes. */
static bool printable_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

int fo__api_keys_parse(struct fo_auth *a, const char *text, size_t n, char *err, size_t errlen)
{
    if (memchr(text, '\0', n)) {
        snprintf(err, errlen, "NUL byte in the text");
        return -EINVAL;
    }
    cJSON *root = cJSON_ParseWithLength(text, n);
    const cJSON *keys = root ? cJSON_GetObjectItemCaseSensitive(root, "keys") : NULL;
    int rc = -EINVAL;
    if (!root) {
        snprintf(err, errlen, "not valid JSON");
        goto out;
    }
    if (!cJSON_IsObject(root) || !cJSON_IsArray(keys) || !keys->child) {
        snprintf(err, errlen, "keys: must be a non-empty array of {\"name\", \"sha256\"}");
        goto out;
    }
    size_t count = (size_t)cJSON_GetArraySize(keys);
    a->keys = calloc(count, sizeof *a->keys);
    if (!a->keys) {
        rc = -ENOMEM;
        goto out;
    }
    for (const cJSON *k = keys->child; k; k = k->next) {
        size_t i = a->nkeys;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(k, "name");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(k, "sha256");
        if (!cJSON_IsObject(k) || cJSON_GetArraySize(k) != 2 || !name || !sha) {
            snprintf(err, errlen, "keys[%zu]: must be {\"name\": ..., \"sha256\": ...}", i);
            goto out;
        }
        if (!cJSON_IsString(name) || !printable_name(name->valuestring)) {
            snprintf(err, errlen, "keys[%zu].name: must be 1 to %d printable ASCII characters", i,
                     MAX_NAME);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->keys[j].name, name->valuestring) == 0) {
                snprintf(err, errlen, "keys[%zu].name: duplicate of keys[%zu].name", i, j);
                goto out;
            }
        struct fo_api_key *e = &a->keys[i];
        const char *h = cJSON_IsString(sha) ? sha->valuestring : "";
        bool hex = strlen(h) == 2 * FO_SHA256_LEN;
        for (size_t b = 0; hex && b < FO_SHA256_LEN; b++) {
            int hi = hexval(h[2 * b]), lo = hexval(h[2 * b + 1]);
            hex = hi >= 0 && lo >= 0;
            if (hex)
                e->sha256[b] = (unsigned char)(hi << 4 | lo);
        }
        if (!hex) {
            snprintf(err, errlen, "keys[%zu].sha256: must be 64 hex digits (SHA-256 of the key)",
                     i);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp(a->keys[j].sha256, e->sha256, FO_SHA256_LEN) == 0) {
                snprintf(err, errlen, "keys[%zu].sha256: the same key as keys[%zu]", i, j);
                goto out;
            }
        e->name = strdup(name->valuestring);
        if (!e->name) {
            rc = -ENOMEM;
            goto out;
        }
        a->nkeys++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static int jwks_parse(struct fo_auth *a, const char *text, size_t n, char *err, size_t errlen)
{
    return fo_jwks_parse(&a->jwt.keys, text, n, err, errlen);
}

static bool parse_api_keys(struct fo__vctx *c, const cJSON *o, const char *path, const char *dir,
                           struct fo_auth *a)
{
    static const char *const keys[] = {"header", "keys_file", NULL};
    char p[300];
    a->kind = FO_AUTH_KIND_KEYS;
    if (!cJSON_IsObject(o)) {
        fo__errorf(c, path, "must be an object {\"header\", \"keys_file\"}");
        return false;
    }
    bool ok = only_keys(c, o, path, keys);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "header");
    const char *name = "X-Api-Key";
    if (h && (!cJSON_IsString(h) || !fo_is_token(h->valuestring, strlen(h->valuestring)))) {
        fo__pathf(p, sizeof p, "%s.header", path);
        fo__errorf(c, p, "must be a header name");
        ok = false;
    } else if (h) {
        name = h->valuestring;
    }
    a->header = fo__strdup(c, name);
    return keys_file(c, o, path, dir, a, fo__api_keys_parse) && ok;
}

/* "alg": a non-empty array of algorithm names; never "none". */
static bool parse_algs(struct fo__vctx *c, const cJSON *v, const char *path, unsigned *algs)
{
    if (!cJSON_IsArray(v) || !v->child) {
        fo__errorf(c, path, "must be a non-empty array of algorithm names");
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char p[300], q[64];
        fo__pathf(p, sizeof p, "%s[%zu]", path, i);
        int a = cJSON_IsString(e) ? fo_jwt_alg_index(e->valuestring, strlen(e->valuestring)) : -1;
        if (cJSON_IsString(e) && strcasecmp(e->valuestring, "none") == 0) {
            fo__errorf(c, p, "\"none\" (unsigned tokens) is never accepted");
            ok = false;
        } else if (a < 0) {
            fo__errorf(c, p, "\"%s\" is not one of RS256, RS384, RS512, ES256, HS256, HS384, HS512",
                       cJSON_IsString(e) ? fo__quote(q, sizeof q, e->valuestring) : "?");
            ok = false;
        } else {
            *algs |= 1u << a;
        }
    }
    return ok;
}

static bool parse_rules(struct fo__vctx *c, const cJSON *v, const char *path,
                        struct fo_jwt_conf *jc)
{
    if (!cJSON_IsObject(v)) {
        fo__errorf(c, path, "must be an object of claim: value or claim: [strings]");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    jc->rules = calloc(n ? n : 1, sizeof *jc->rules);
    if (!jc->rules) {
        c->oom = true;
        return false;
    }
    bool ok = true;
    for (const cJSON *m = v->child; m; m = m->next) {
        char p[300];
        fo__pathf(p, sizeof p, "%s.%s", path, m->string);
        struct fo_jwt_rule *r = &jc->rules[jc->nrules++];
        r->claim = fo__strdup(c, m->string);
        if (cJSON_IsString(m)) {
            r->kind = FO_JSON_STRING;
            r->text = fo__strdup(c, m->valuestring);
        } else if (cJSON_IsNumber(m)) {
            char num[64];
            snprintf(num, sizeof num, "%.17g", m->valuedouble);
            r->kind = FO_JSON_NUMBER;
            r->text = fo__strdup(c, num);
        } else if (cJSON_IsBool(m)) {
            r->kind = cJSON_IsTrue(m) ? FO_JSON_TRUE : FO_JSON_FALSE;
        } else if (cJSON_IsArray(m) && m->child) {
            r->kind = FO_JSON_ARRAY;
            r->members = calloc((size_t)cJSON_GetArraySize(m), sizeof *r->members);
            if (!r->members) {
                c->oom = true;
                return false;
            }
            for (const cJSON *e = m->child; e; e = e->next) {
                if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, ' ')) {
                    fo__errorf(c, p, "list members must be non-empty strings without spaces");
                    ok = false;
                    break;
                }
                r->members[r->nmembers++] = fo__strdup(c, e->valuestring);
            }
        } else {
            fo__errorf(c, p,
                       "must be a string, number or boolean to equal, or a non-empty list "
                       "of strings to contain");
            ok = false;
        }
    }
    return ok;
}

static bool parse_forward(struct fo__vctx *c, const cJSON *v, const char *path,
                          struct fo_jwt_conf *jc)
{
    if (!cJSON_IsObject(v)) {
        fo__errorf(c, path, "must be an object of header name: claim name");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    jc->forward = calloc(n ? n : 1, sizeof *jc->forward);
    if (!jc->forward) {
        c->oom = true;
        return false;
    }
    bool ok = true;
    for (const cJSON *m = v->child; m; m = m->next) {
        char p[300], q[96];
        fo__pathf(p, sizeof p, "%s.%s", path, m->string);
        bool reserved = false;
        for (const char *const *r = reserved_headers; *r && !reserved; r++)
            reserved = strcasecmp(*r, m->string) == 0;
        for (size_t i = 0; i < jc->nforward && !reserved; i++)
            reserved = strcasecmp(jc->forward[i].header, m->string) == 0;
        if (!fo_is_token(m->string, strlen(m->string)) || reserved) {
            fo__errorf(c, path,
                       "\"%s\" cannot be a forwarded header (not a token, a duplicate, "
                       "or one fanout sets itself)",
                       fo__quote(q, sizeof q, m->string));
            ok = false;
            continue;
        }
        if (!cJSON_IsString(m) || !m->valuestring[0]) {
            fo__errorf(c, p, "must be a claim name");
            ok = false;
            continue;
        }
        struct fo_jwt_forward *f = &jc->forward[jc->nforward++];
        f->header = fo__strdup(c, m->string);
        f->claim = fo__strdup(c, m->valuestring);
    }
    return ok;
}

static bool opt_string(struct fo__vctx *c, const cJSON *o, const char *key, const char *path,
                       char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return true;
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        char p[300];
        fo__pathf(p, sizeof p, "%s.%s", path, key);
        fo__errorf(c, p, "must be a non-empty string");
        return false;
    }
    *out = fo__strdup(c, v->valuestring);
    return true;
}

static bool parse_jwt(struct fo__vctx *c, const cJSON *o, const char *path, const char *dir,
                      struct fo_auth *a)
{
    static const char *const keys[] = {"alg",      "keys_file",       "issuer",         "audience",
                                       "leeway_s", "required_claims", "forward_claims", NULL};
    struct fo_jwt_conf *jc = &a->jwt;
    char p[300];
    a->kind = FO_AUTH_KIND_JWT;
    jc->leeway_s = 30;
    if (!cJSON_IsObject(o)) {
        fo__errorf(c, path, "must be an object {\"alg\", \"keys_file\", ...}");
        return false;
    }
    bool ok = only_keys(c, o, path, keys);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "alg");
    fo__pathf(p, sizeof p, "%s.alg", path);
    if (!v) {
        fo__errorf(c, path, "missing key \"alg\"");
        ok = false;
    } else {
        ok = parse_algs(c, v, p, &jc->algs) && ok;
    }
    ok = opt_string(c, o, "issuer", path, &jc->issuer) && ok;
    ok = opt_string(c, o, "audience", path, &jc->audience) && ok;
    v = cJSON_GetObjectItemCaseSensitive(o, "leeway_s");
    if (v && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_LEEWAY_S ||
              v->valuedouble != (double)(int64_t)v->valuedouble)) {
        fo__pathf(p, sizeof p, "%s.leeway_s", path);
        fo__errorf(c, p, "must be an integer from 0 to %d", MAX_LEEWAY_S);
        ok = false;
    } else if (v) {
        jc->leeway_s = (int64_t)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "required_claims");
    fo__pathf(p, sizeof p, "%s.required_claims", path);
    if (v)
        ok = parse_rules(c, v, p, jc) && ok;
    v = cJSON_GetObjectItemCaseSensitive(o, "forward_claims");
    fo__pathf(p, sizeof p, "%s.forward_claims", path);
    if (v)
        ok = parse_forward(c, v, p, jc) && ok;
    if (!keys_file(c, o, path, dir, a, jwks_parse))
        return false;
    if (fo_jwt_cache_create(&jc->verified) < 0) {
        c->oom = true;
        return false;
    }
    /* Each allowed algorithm needs a key it may use. */
    for (int i = 0; ok && i < FO_JWT_NALGS; i++) {
        if (!(jc->algs & (1u << i)))
            continue;
        bool have = false;
        size_t n = fo_jwks_count(jc->keys);
        for (size_t k = 0; k < n && !have; k++) {
            static const enum fo_jwk_kty kty[FO_JWT_NALGS] = {
                FO_JWK_RSA, FO_JWK_RSA, FO_JWK_RSA, FO_JWK_EC, FO_JWK_OCT, FO_JWK_OCT, FO_JWK_OCT};
            const struct fo_jwk *key = fo_jwks_key(jc->keys, k);
            have = key->kty == kty[i] && (!key->alg || strcmp(key->alg, fo_jwt_alg_name(i)) == 0);
        }
        if (!have) {
            fo__pathf(p, sizeof p, "%s.alg", path);
            fo__errorf(c, p, "%s: no key in keys_file may verify it", fo_jwt_alg_name(i));
            ok = false;
        }
    }
    return ok;
}

bool fo__auth_parse(struct fo__vctx *c, const cJSON *v, const char *path, const char *dir,
                    struct fo_auth **out)
{
    *out = NULL;
    if (cJSON_IsNull(v))
        return true;
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 1 ||
        (strcmp(v->child->string, "api_keys") != 0 && strcmp(v->child->string, "jwt") != 0)) {
        fo__errorf(c, path, "must be {\"api_keys\": {...}}, {\"jwt\": {...}} or null");
        return false;
    }
    struct fo_auth *a = calloc(1, sizeof *a);
    if (!a) {
        c->oom = true;
        return false;
    }
    char p[300];
    fo__pathf(p, sizeof p, "%s.%s", path, v->child->string);
    bool ok = strcmp(v->child->string, "jwt") == 0 ? parse_jwt(c, v->child, p, dir, a)
                                                   : parse_api_keys(c, v->child, p, dir, a);
    if (!ok || c->oom) {
        fo_auth_destroy(a);
        return false;
    }
    *out = a;
    return true;
}

void fo_auth_destroy(struct fo_auth *a)
{
    if (!a)
        return;
    free(a->header);
    for (size_t i = 0; i < a->nkeys; i++)
        free(a->keys[i].name);
    free(a->keys);
    fo_jwt_conf_clear(&a->jwt);
    free(a);
}
