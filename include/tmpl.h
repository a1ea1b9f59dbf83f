/* tmpl.h -- templates with placeholders (backend URLs, header values); endpoint path
 * patterns are path.h's (included here, since a path's parameters are a namespace of
 * templates).
 *
 * A template -- a backend URL such as "http://h:1/orders?user={id}&p={query.page|1}"
 * or a header line such as "X-User: {header.X-User}" -- is compiled once
 * against its endpoint's scope of placeholder namespaces (below) and expanded
 * per call: in a URL each value is percent-encoded (everything but RFC 3986
 * unreserved characters), so it can never add a path segment, a query
 * parameter or a header line; in a header a value is placed as it is, and
 * one holding CR, LF or NUL is refused.
 * Ownership: compiled templates and scopes own their memory (free with the
 * _destroy); fo_tmpl_vals borrows every value from the request it was resolved for.
 * Threads: compiled templates and scopes are immutable once the config is loaded and
 * may be shared; fo_tmpl_vals belong to one thread. */
#ifndef FO_TMPL_H
#define FO_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "path.h"

/* ---- Templates: backend URLs and header values with placeholders ----
 *
 * A placeholder is "{name}" (a path parameter) or "{ns.name}" (a value from
 * namespace 'ns': "query", "header", ...), optionally with a default:
 * "{query.page|1}". The template module knows no namespace itself: a scope
 * (one per endpoint) is given a table of them, each with a compile-time
 * 'bind' (is this a name of mine?) and a request-side 'lookup' (its value in
 * this request). Compiling a template registers each distinct placeholder
 * of the endpoint as one slot of its scope; per request the caller resolves
 * every slot once (fo_tmpl_resolve) and expands each template from those
 * values, with no allocation but the expanded text. */

/* Distinct placeholders (slots) one endpoint may use. */
#define FO_TMPL_MAX_SLOTS 16

/* Where a template's text goes, which decides how a value is placed. */
enum fo_tmpl_kind {
    FO_TMPL_URL,    /* Absolute http(s) URL: values percent-encoded (all but
                       unreserved); none in the scheme or host:port; a value
                       "." or ".." in the path is refused. */
    FO_TMPL_HEADER, /* A "Name: value" line: values as they are; one holding
                       CR, LF or NUL is refused. "{{" and "}}" are literal
                       braces. */
    FO_TMPL_TEXT,   /* Text (a JSON body's string, before it is escaped): values as they
                       are, any byte; "{{" and "}}" are literal braces. */
};

/* One placeholder's value in one request. */
struct fo_tmpl_val {
    const char *p; /* Borrowed from the request; NULL when absent. */
    size_t len;
    bool pct; /* 'p' is percent-encoded text (a raw query value): each valid
                 %XX is decoded before the value is placed. */
};

/* A placeholder namespace. The bare form "{name}" is the namespace whose
 * name is "". */
struct fo_tmpl_ns {
    const char *name; /* "query", "header", ...; "" for the bare form; "*" for what no other
                         takes (an unknown namespace, a bare name that is no parameter): its
                         bind sees the whole "ns.name" and returns -ENOENT when not its. */
    bool fold_case;   /* Names compare without case (two spellings, one slot). */
    /* Compile time: is [s, s+n) a name of this namespace for the scope's
     * 'arg'? Returns an id >= 0 handed back to 'lookup', or -EINVAL with a
     * reason in err. */
    int (*bind)(const void *arg, const char *s, size_t n, char *err, size_t errlen);
    /* Request time: the value of the name bound as 'id' in request 'req'
     * (what the caller gives fo_tmpl_resolve); leaves *out absent if none. */
    void (*lookup)(const void *req, const char *s, size_t n, int id, struct fo_tmpl_val *out);
};

struct fo_tmpl_scope; /* Opaque: the namespaces and the slots of one endpoint. */

/* The values of every slot of a scope in one request. */
struct fo_tmpl_vals {
    size_t n;
    struct fo_tmpl_val v[FO_TMPL_MAX_SLOTS];
};

/* A scope over 'ns' (nns entries, borrowed: must outlive the scope) whose
 * binds get 'arg' (borrowed). Returns 0 or -ENOMEM. */
int fo_tmpl_scope_create(struct fo_tmpl_scope **out, const struct fo_tmpl_ns *ns, size_t nns,
                         const void *arg);
void fo_tmpl_scope_destroy(struct fo_tmpl_scope *s);

/* Slots registered so far. */
size_t fo_tmpl_scope_slots(const struct fo_tmpl_scope *s);

/* Slot i as written in a template, without braces or default: "query.page",
 * "id". Borrowed from the scope. */
const char *fo_tmpl_slot_name(const struct fo_tmpl_scope *s, size_t i);

/* Look up every slot of 's' in request 'req' (passed to each lookup as is).
 * Request thread; reads the scope only. */
void fo_tmpl_resolve(const struct fo_tmpl_scope *s, const void *req, struct fo_tmpl_vals *out);

/* Compile 'text' as a template of 'kind', registering its placeholders in
 * 'scope' (may be NULL: then no placeholder is allowed). Returns 0, or
 * -EINVAL with a reason in err (unknown namespace, bad name, unterminated
 * brace, a placeholder in the scheme or host:port, too many slots), or
 * -ENOMEM. Config thread; the scope must not be resolved meanwhile. */
int fo_tmpl_compile(struct fo_tmpl **out, const char *text, enum fo_tmpl_kind kind,
                    struct fo_tmpl_scope *scope, char *err, size_t errlen);
void fo_tmpl_destroy(struct fo_tmpl *t);

/* The template has no placeholder: its expansion is its text. */
bool fo_tmpl_is_static(const struct fo_tmpl *t);

/* The source text. */
const char *fo_tmpl_text(const struct fo_tmpl *t);

/* Append 't' with every placeholder replaced by its value from 'vals' (as
 * fo_tmpl_resolve filled it for the template's scope) or its default.
 * Returns 0; -ENOENT when a value is absent and has no default; -EILSEQ when
 * a value cannot be placed (CR, LF or NUL in a header; "." or ".." in a URL
 * path); *slot (may be NULL) then names the placeholder. Or the
 * fo_buf_append errors. On error nothing is appended. */
int fo_tmpl_expand(const struct fo_tmpl *t, const struct fo_tmpl_vals *vals, struct fo_buf *out,
                   size_t *slot);

/* The distinct slots template 't' uses, at most 'max' into 'out'. Returns how many. */
size_t fo_tmpl_slots(const struct fo_tmpl *t, unsigned *out, size_t max);

/* What the bind of slot i returned, and whether its namespace is 'ns'. */
unsigned fo_tmpl_slot_id(const struct fo_tmpl_scope *s, size_t i);
bool fo_tmpl_slot_in(const struct fo_tmpl_scope *s, size_t i, const char *ns);

/* Percent-decode n bytes of 's' into 'dst' (room for n bytes): each valid
 * %XX becomes its byte, every other byte is copied. Returns the length. */
size_t fo_url_decode(char *dst, const char *s, size_t n);

/* Percent-encode n bytes of 's' (all but unreserved) onto 'out'. */
int fo_url_encode(struct fo_buf *out, const char *s, size_t n);

#endif /* FO_TMPL_H */
