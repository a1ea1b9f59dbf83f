/* stage_decode.c -- an answer's body as the value of its encoding (see pipeline.h).
 *
 * "json" (the default): a 204, or a 2xx answer to a HEAD, has no body by definition and
 * its value is null; any other body must be exactly one valid JSON value (json.h: UTF-8,
 * nesting capped), or the call fails invalid_json; an empty one too.
 * "text": the body becomes one JSON string; bytes that are not UTF-8 fail invalid_json
 * (nothing is replaced behind the client's back).
 * "raw": the bytes are kept as they are, for an endpoint that passes them through. */
#include "pipeline.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "shape.h"

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (c < 0xc2 || c > 0xf4 || i + len > n)
            return false;
        uint32_t cp = c & (0x3f >> (len - 1));
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
    }
    return true;
}

/* Replace the body with 'text' (n bytes, a JSON value fanout wrote). */
static void set_body(struct fo_call *call, char *text, size_t n)
{
    fo_call_drop_body(call);
    call->resp = text;
    call->resp_len = n;
    call->json.p = text;
    call->json.len = n;
    fo_budget_charge(call->budget, n);
}

int fo_stage_decode(const struct fo_stage_env *env, struct fo_call *call)
{
    enum fo_encoding enc = call->shape ? call->shape->encoding : FO_ENC_JSON;
    bool head = call->method && strcmp(call->method, "HEAD") == 0;
    bool none = (call->status == 204 || head) && call->resp_len == 0;
    if (enc == FO_ENC_RAW) {
        call->json.p = call->resp ? call->resp : "";
        call->json.len = call->resp_len;
        return 0;
    }
    if (enc == FO_ENC_TEXT) {
        if (utf8_valid((const unsigned char *)(call->resp ? call->resp : ""), call->resp_len)) {
            struct fo_buf b;
            fo_buf_init(&b, FO_BUF_UNLIMITED);
            if (fo_json_put_string(&b, call->resp ? call->resp : "", call->resp_len) < 0)
                fo_panic("out of memory");
            size_t n;
            char *s = fo_buf_release(&b, &n);
            if (!s)
                fo_panic("out of memory");
            set_body(call, s, n);
            return 0;
        }
    } else {
        if (none)
            set_body(call, fo_xstrdup("null"), 4);
        if (fo_json_validate(call->resp ? call->resp : "", call->resp_len, env->max_json_depth,
                             &call->json) == 0)
            return 0;
    }
    call->outcome = FO_ERR_INVALID_JSON;
    fo_call_drop_body(call);
    return -1;
}
