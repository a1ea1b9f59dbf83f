/* config.h -- the service configuration: JSON file -> validated structs.
 *
 * Unknown keys, wrong types and bad values are errors; every error found is
 * reported, one line each, prefixed with its JSON path:
 *     endpoints[0].backends[1]: unknown key "urll"
 * A loaded config is immutable: it is published before the threads that
 * read it start (or swapped whole on reload) and never written again.
 * Ownership: fo_config_parse/load return a config the caller frees with
 * fo_config_destroy; every string and array inside belongs to it.
 * Threads: parse/load/destroy from one thread; a loaded config may be read
 * from any thread. */
#ifndef FO_CONFIG_H
#define FO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "shape.h"
#include "forward.h"
#include "resil_conf.h"
#include "tmpl.h"
#include "deps.h"

struct fo_body_tmpl; /* bodytmpl.h */

struct fo_auth; /* auth.h */
struct fo_cors; /* cors.h */
/* TLS to a backend (https:// URLs): read by transfer.c through fo_call.tls; immutable with
 * its config. Every pointer is NULL when not given (curl's defaults: verification on with
 * the system's CA bundle, no client certificate, the URL's host as the TLS name). */
struct fo_backend_tls {
    char *ca_file;             /* PEM CA bundle to verify the backend with (CURLOPT_CAINFO). */
    char *client_cert_file;    /* PEM client certificate for mutual TLS ... */
    char *client_key_file;     /* ... and its key; both or neither. */
    char *server_name;         /* TLS name (SNI, verification, Host) when the URL's host is
                                  where to connect but not the certificate's name. */
    bool insecure_skip_verify; /* No peer or host verification (warned at start). */
};

/* TLS on the front (listen_tls). */
struct fo_tls_conf {
    char *cert_file; /* PEM certificate chain, read again on SIGHUP. NULL: no TLS. */
    char *key_file;  /* PEM private key, read again on SIGHUP. */
    int min_version; /* 0: TLS 1.2, 1: TLS 1.3 (the "min_version" names, tls_front.h). */
};

/* One backend call of a configured endpoint. */
struct fo_backend_conf {
    char *name;           /* Unique within the endpoint; the key in the result. */
    char *url;            /* Template source text. */
    struct fo_tmpl *tmpl; /* Compiled 'url'. */
    char *method;         /* "GET" unless given; upper-case token. */
    char **headers;       /* "Name: value" lines, nheaders of them; NULL if none. */
    size_t nheaders;
    struct fo_tmpl **htmpl;         /* nheaders: line i compiled when it has placeholders
                                       (else NULL); NULL when no line has any. */
    struct fo_fwd_list fwd_query;   /* Narrows the endpoint's (when given). */
    struct fo_fwd_list fwd_headers; /* Narrows the endpoint's (when given). */
    int64_t timeout_ms;             /* Own cap, 0 = only the request deadline. */
    bool required;                  /* Its failure fails the whole request. */
    bool merge;                     /* Lift an object body's members to the top level. */
    struct fo_shape shape;          /* Shaping, encoding, group, fallback, pass_status. */
    struct fo_resil_conf resil;     /* hosts, retry, hedge, breaker, rate_limit, stale (resil.h). */
    uint64_t def_hash;              /* Of its endpoint's route and its own definition text. */
    /* Its TLS options (ca_file defaults to the top-level one). */
    struct fo_backend_tls tls;
    struct fo_dep dep;         /* depends_on and foreach (deps.h). */
    struct fo_body_tmpl *body; /* Its own JSON body (bodytmpl.h), or NULL. */
};

/* One configured endpoint. */
struct fo_endpoint_conf {
    char *path;                       /* Pattern text, e.g. "/api/dashboard/{id}". */
    struct fo_path *pattern;          /* Compiled 'path'. */
    struct fo_tmpl_scope *scope;      /* The placeholders its backends use (placeholder.h). */
    struct fo_dep_refs *deprefs;      /* From malloc(): its {name.path} and {item} placeholders
                                         (deps.h); an entry's index is its slot's id. */
    bool has_deps;                    /* A backend has depends_on or foreach. */
    struct fo_fwd_list fwd_query;     /* Query parameters passed on (forward.h). */
    struct fo_fwd_list fwd_headers;   /* Header fields passed on (forward.h). */
    bool forward_body;                /* The client's body goes to POST/PUT/PATCH backends. */
    char *method;                     /* "GET" unless given. */
    int64_t timeout_ms;               /* 0 = the global timeout only. */
    bool report;                      /* Add the "_fanout" report. */
    struct fo_backend_conf *backends; /* nbackends >= 1 of them. */
    size_t nbackends;
    struct fo_shape shape;          /* Endpoint ops on the merged document (only 'ops' is used). */
    struct fo_auth *auth;           /* Own "auth" (NULL: none or null), when auth_set. */
    bool auth_set;                  /* "auth" was given: it replaces the top-level one. */
    struct fo_cors *cors;           /* Own "cors" (NULL: none or null), when cors_set. */
    bool cors_set;                  /* "cors" was given: it replaces the top-level one. */
    struct fo_rate_conf rate_limit; /* Requests over it get 503 rate_limited. */
    uint64_t rate_hash;             /* Of its route and its rate_limit text. */
};

/* The ad-hoc batch (POST /aggregate). Off unless allow_hosts is given. */
struct fo_aggregate_conf {
    bool enabled;       /* allow_hosts was given and non-empty. */
    char *path;         /* Default "/aggregate". */
    char **allow_hosts; /* "host:port" entries compared verbatim. */
    size_t nallow;
    size_t max_requests; /* Calls per batch, default 32. */
    int64_t timeout_ms;  /* Cap on the batch's own timeout_ms, default 1000. */
};

struct fo_config {
    char *listen_host;         /* Numeric address to bind, e.g. "127.0.0.1"; NULL: none. */
    uint16_t listen_port;      /* Port to bind. */
    unsigned workers;          /* Backend worker threads; default online CPUs. */
    unsigned server_threads;   /* HTTP front threads; default half the online CPUs (>= 1). */
    int64_t timeout_ms;        /* Global request deadline, default 1000. */
    size_t max_body_bytes;     /* Client request body cap, default 1 MiB. */
    size_t max_response_bytes; /* Backend response body cap, default 8 MiB. */
    unsigned max_json_depth;   /* Nesting cap for any JSON read, default FO_JSON_DEFAULT_DEPTH. */
    struct fo_endpoint_conf *endpoints; /* nendpoints of them (may be 0). */
    size_t nendpoints;
    struct fo_aggregate_conf aggregate;
    struct fo_auth *auth; /* "auth": default of every endpoint and of the batch, or NULL. */
    struct fo_cors *cors; /* "cors": default of every endpoint and of the batch, or NULL. */

    /* Operations. A path of NULL means that route is off. */
    char *health_path;      /* "health_path", default "/health". */
    char *ready_path;       /* "ready_path", default "/ready". */
    char *metrics_path;     /* "metrics_path", default "/metrics". */
    int log_level;          /* "log": {"level"}: enum fo_log_level (log.h), default info. */
    bool access_log;        /* "log": {"access"}: one line per request, default true. */
    bool access_log_probes; /* "log": {"probes"}: also log health/ready/metrics, default false. */
    int64_t drain_ms;       /* "drain_ms": graceful stop budget, default 10000. */

    /* Limits (hardening). */
    size_t max_connections;      /* Open client connections, default 10000. */
    size_t max_header_bytes;     /* Request line + headers, default 8192. */
    size_t max_headers;          /* Header count, default 100. */
    size_t max_url_bytes;        /* Request target length, default 4096. */
    int64_t idle_timeout_ms;     /* Idle keep-alive connection, default 60000. */
    int64_t header_timeout_ms;   /* Whole request head must arrive within, default 10000. */
    size_t max_inflight_calls;   /* Backend calls in flight, all workers, default 10000. */
    size_t max_backend_inflight; /* Calls in flight to one backend, default 4096 (0 = no cap). */
    size_t max_host_connections; /* Connections per worker to one host:port, default 0 (no cap). */
    size_t max_request_response_bytes; /* Body bytes one request may hold, default 16 MiB. */
    size_t max_buffered_bytes;         /* Body and answer bytes of all requests, default 256 MiB. */
    struct fo_retry_budget_conf retry_budget; /* Cap on retries in flight. */

    /* TLS (tls_front.h, tls_back.h). "listen": null leaves listen_host NULL (HTTPS only). */
    char *listen_tls_host;    /* "listen_tls": numeric address of the HTTPS listener, or NULL. */
    uint16_t listen_tls_port; /* Its port. */
    struct fo_tls_conf tls;   /* "tls": the HTTPS listener's certificate (with listen_tls). */
    /* Top-level "ca_file" (the other fields stay NULL): the batch's calls use it, and
     * backends without their own inherit it. */
    struct fo_backend_tls backend_tls;
};

/* Parse and validate config text (n bytes). On success returns 0 and sets
 * *out. Otherwise returns -EINVAL and appends one line per error to
 * 'errors' (each "path: message\n"), or -ENOMEM. */
int fo_config_parse(struct fo_config **out, const char *text, size_t n, struct fo_buf *errors);

/* Read 'path' and parse it. A missing or unreadable file is an error line
 * naming the file and the reason (returns -ENOENT, -EACCES, ... or -EINVAL). */
int fo_config_load(struct fo_config **out, const char *path, struct fo_buf *errors);

/* Free a config. NULL is a no-op. */
void fo_config_destroy(struct fo_config *cfg);

/* Append the JSON Schema (draft 2020-12) of the config file, generated from the same tables
 * fo_config_parse reads with: types, ranges, defaults, descriptions, required keys, no
 * others. Returns 0, -ENOMEM or -E2BIG ('out' full). Thread-safe. */
int fo_config_schema(struct fo_buf *out);

/* The auth and the CORS policy that apply to endpoint 'ep' (NULL: none). */
const struct fo_auth *fo_endpoint_auth(const struct fo_config *cfg,
                                       const struct fo_endpoint_conf *ep);
const struct fo_cors *fo_endpoint_cors(const struct fo_config *cfg,
                                       const struct fo_endpoint_conf *ep);
/* Append one "path: message\n" line per setting that weakens security (a backend with
 * insecure_skip_verify), for --check and the start-up log. Returns 0 or the fo_buf errors. */
int fo_config_warnings(const struct fo_config *cfg, struct fo_buf *out);

/* Parse "host:port", "[v6]:port" or ":port" (any IPv4 address) into a numeric
 * host and a port. Returns 0 or -EINVAL. */
int fo_listen_parse(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif /* FO_CONFIG_H */
