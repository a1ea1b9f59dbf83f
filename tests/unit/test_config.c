/* test_config.c -- config parsing, defaults, validation messages, loading. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "demo.h"
#include "json.h"
#include "log.h"

/* The tables write JSON with single quotes; this turns them into double quotes. */
static char *dq(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return d;
}

static struct fo_config *parse_ok(const char *single_quoted)
{
    char *text = dq(single_quoted);
    struct fo_buf errors;
    fo_buf_init(&errors, FO_BUF_UNLIMITED);
    struct fo_config *cfg = NULL;
    int rc = fo_config_parse(&cfg, text, strlen(text), &errors);
    if (rc != 0)
        print_error("config %s:\n%s", text, errors.data ? errors.data : "");
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    assert_int_equal(errors.len, 0);
    fo_buf_free(&errors);
    free(text);
    return cfg;
}

/* Parse text (n bytes) that must fail; compare the error lines exactly. */
static void parse_bad_n(const char *text, size_t n, const char *want)
{
    struct fo_buf errors;
    fo_buf_init(&errors, FO_BUF_UNLIMITED);
    struct fo_config *cfg = (struct fo_config *)0x1;
    int rc = fo_config_parse(&cfg, text, n, &errors);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
    const char *got = errors.data ? errors.data : "";
    if (strcmp(got, want) != 0)
        print_error("config: %.*s\nwant:\n%sgot:\n%s", (int)n, text, want, got);
    assert_string_equal(got, want);
    fo_buf_free(&errors);
}

static void parse_bad(const char *single_quoted, const char *want)
{
    char *text = dq(single_quoted);
    parse_bad_n(text, strlen(text), want);
    free(text);
}

static const char *const example =
    "{"
    " 'listen': '127.0.0.1:8080', 'workers': 2, 'server_threads': 3, 'timeout_ms': 1000,"
    " 'max_body_bytes': 1048576, 'max_response_bytes': 8388608, 'max_json_depth': 64,"
    " 'endpoints': ["
    "  {'path': '/api/dashboard/{id}', 'method': 'GET', 'timeout_ms': 250, 'report': false,"
    "   'backends': ["
    "    {'name': 'user', 'url': 'http://127.0.0.1:9001/users/{id}', 'required': true},"
    "    {'name': 'orders', 'url': 'http://127.0.0.1:9002/orders?user={id}', 'timeout_ms': 100,"
    "     'method': 'GET', 'headers': {'X-Tag': 'a', 'Accept': 'application/json'}},"
    "    {'name': 'flags', 'url': 'http://127.0.0.1:9003/flags', 'merge': true}]},"
    "  {'path': '/api/dashboard/{id}', 'method': 'POST', 'report': true,"
    "   'backends': [{'name': 'w', 'url': 'https://[::1]:9004/w/{id}', 'method': 'PUT'}]}],"
    " 'aggregate': {'path': '/aggregate', 'allow_hosts': ['127.0.0.1:9001', '[::1]:9004'],"
    "  'max_requests': 16, 'timeout_ms': 900}"
    "}";

static void test_example(void **state)
{
    struct fo_config *cfg = parse_ok(example);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->server_threads, 3);
    assert_int_equal(cfg->timeout_ms, 1000);
    assert_int_equal(cfg->max_body_bytes, 1048576);
    assert_int_equal(cfg->max_response_bytes, 8388608);
    assert_int_equal(cfg->max_json_depth, 64);
    assert_int_equal(cfg->nendpoints, 2);

    const struct fo_endpoint_conf *e = &cfg->endpoints[0];
    assert_string_equal(e->path, "/api/dashboard/{id}");
    assert_string_equal(fo_path_pattern(e->pattern), "/api/dashboard/{id}");
    assert_string_equal(e->method, "GET");
    assert_int_equal(e->timeout_ms, 250);
    assert_false(e->report);
    assert_int_equal(e->nbackends, 3);

    const struct fo_backend_conf *b = &e->backends[0];
    assert_string_equal(b->name, "user");
    assert_string_equal(b->url, "http://127.0.0.1:9001/users/{id}");
    assert_non_null(b->tmpl);
    assert_string_equal(b->method, "GET");
    assert_null(b->headers);
    assert_int_equal(b->nheaders, 0);
    assert_int_equal(b->timeout_ms, 0);
    assert_true(b->required);
    assert_false(b->merge);

    b = &e->backends[1];
    assert_string_equal(b->name, "orders");
    assert_int_equal(b->timeout_ms, 100);
    assert_int_equal(b->nheaders, 2);
    assert_string_equal(b->headers[0], "X-Tag: a");
    assert_string_equal(b->headers[1], "Accept: application/json");
    assert_false(b->required);

    b = &e->backends[2];
    assert_string_equal(b->name, "flags");
    assert_true(b->merge);

    /* The compiled pieces work together. */
    struct fo_params params = {0};
    assert_int_equal(fo_path_match(e->pattern, "/api/dashboard/a%20b", 20, &params), 1);
    struct fo_buf url;
    fo_buf_init(&url, FO_BUF_UNLIMITED);
    struct fo_tmpl_vals vals = {.n = 1};
    assert_int_equal(fo_tmpl_scope_slots(e->scope), 1);
    assert_string_equal(fo_tmpl_slot_name(e->scope, 0), "id");
    vals.v[0] = (struct fo_tmpl_val){params.p[0].value, params.p[0].len, false};
    assert_int_equal(fo_tmpl_expand(e->backends[1].tmpl, &vals, &url, NULL), 0);
    assert_string_equal(url.data, "http://127.0.0.1:9002/orders?user=a%20b");
    fo_buf_free(&url);
    fo_params_clear(&params);

    e = &cfg->endpoints[1];
    assert_string_equal(e->method, "POST");
    assert_int_equal(e->timeout_ms, 0);
    assert_true(e->report);
    assert_string_equal(e->backends[0].method, "PUT");

    assert_true(cfg->aggregate.enabled);
    assert_string_equal(cfg->aggregate.path, "/aggregate");
    assert_int_equal(cfg->aggregate.nallow, 2);
    assert_string_equal(cfg->aggregate.allow_hosts[0], "127.0.0.1:9001");
    assert_string_equal(cfg->aggregate.allow_hosts[1], "[::1]:9004");
    assert_int_equal(cfg->aggregate.max_requests, 16);
    assert_int_equal(cfg->aggregate.timeout_ms, 900);
    fo_config_destroy(cfg);
    fo_config_destroy(NULL);
}

static void test_defaults(void **state)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want_threads = cpus < 1 ? 1 : cpus > 256 ? 256 : (unsigned)cpus;
    static const char *const texts[] = {"{}", " \n\t{ }\r\n ", "{'endpoints': []}",
                                        "{'aggregate': {}}", "{'aggregate': {'allow_hosts': []}}"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        struct fo_config *cfg = parse_ok(texts[i]);
        assert_string_equal(cfg->listen_host, "127.0.0.1");
        assert_int_equal(cfg->listen_port, 8080);
        assert_int_equal(cfg->workers, want_threads);
        assert_int_equal(cfg->server_threads, want_threads / 2 > 0 ? want_threads / 2 : 1);
        assert_int_equal(cfg->timeout_ms, 1000);
        assert_int_equal(cfg->max_body_bytes, 1 << 20);
        assert_int_equal(cfg->max_response_bytes, 8 << 20);
        assert_int_equal(cfg->max_json_depth, FO_JSON_DEFAULT_DEPTH);
        assert_int_equal(cfg->nendpoints, 0);
        assert_null(cfg->endpoints);
        assert_false(cfg->aggregate.enabled);
        assert_string_equal(cfg->aggregate.path, "/aggregate");
        assert_int_equal(cfg->aggregate.nallow, 0);
        assert_int_equal(cfg->aggregate.max_requests, 32);
        assert_int_equal(cfg->aggregate.timeout_ms, 1000);
        assert_string_equal(cfg->health_path, "/health");
        assert_string_equal(cfg->ready_path, "/ready");
        assert_string_equal(cfg->metrics_path, "/metrics");
        assert_int_equal(cfg->log_level, FO_LOG_INFO);
        assert_true(cfg->access_log);
        assert_false(cfg->access_log_probes);
        assert_int_equal(cfg->drain_ms, 10000);
        assert_int_equal(cfg->max_connections, 10000);
        assert_int_equal(cfg->max_header_bytes, 8192);
        assert_int_equal(cfg->max_headers, 100);
        assert_int_equal(cfg->max_url_bytes, 4096);
        assert_int_equal(cfg->idle_timeout_ms, 60000);
        assert_int_equal(cfg->header_timeout_ms, 10000);
        assert_int_equal(cfg->max_inflight_calls, 10000);
        assert_int_equal(cfg->max_backend_inflight, 4096);
        assert_int_equal(cfg->max_host_connections, 128);
        fo_config_destroy(cfg);
    }

    /* An empty log object keeps every log default. */
    struct fo_config *lc = parse_ok("{'log': {}}");
    assert_int_equal(lc->log_level, FO_LOG_INFO);
    assert_true(lc->access_log);
    assert_false(lc->access_log_probes);
    fo_config_destroy(lc);

    /* Endpoint and backend defaults. */
    struct fo_config *cfg =
        parse_ok("{'endpoints': [{'path': '/x', 'backends': [{'name': 'a', 'url': 'http://h'}]}]}");
    const struct fo_endpoint_conf *e = &cfg->endpoints[0];
    assert_string_equal(e->method, "GET");
    assert_int_equal(e->timeout_ms, 0);
    assert_false(e->report);
    assert_string_equal(e->backends[0].method, "GET");
    assert_int_equal(e->backends[0].timeout_ms, 0);
    assert_false(e->backends[0].required);
    assert_false(e->backends[0].merge);
    assert_int_equal(e->backends[0].nheaders, 0);
    fo_config_destroy(cfg);
}

static void test_good_variants(void **state)
{
    static const char *const good[] = {
        /* Extreme but valid values. */
        "{'workers': 1, 'server_threads': 256, 'timeout_ms': 1, 'max_body_bytes': 1,"
        " 'max_response_bytes': 9007199254740991, 'max_json_depth': 4096}",
        "{'timeout_ms': 3600000, 'workers': 2.0}",
        "{'listen': '0.0.0.0:0'}",
        "{'listen': '[::]:8080'}",
        "{'listen': ':9000'}",
        /* Same path, other method: not a duplicate. */
        "{'endpoints': [{'path': '/a', 'backends': [{'name': 'a', 'url': 'http://h/'}]},"
        "               {'path': '/a', 'method': 'POST', 'backends': [{'name': 'a', 'url':"
        " 'http://h/'}]}]}",
        /* The aggregate path is free while the aggregate is off. */
        "{'endpoints': [{'path': '/aggregate', 'backends': [{'name': 'a', 'url': 'http://h/'}]}]}",
        "{'endpoints': [{'path': '/aggregate', 'backends': [{'name': 'a', 'url': 'http://h/'}]}],"
        " 'aggregate': {'path': '/batch', 'allow_hosts': ['h:80']}}",
        /* Header tokens and values. */
        "{'endpoints': [{'path': '/a', 'backends': [{'name': 'a', 'url': 'http://h/',"
        " 'headers': {'X-A!#$%&*+.^_`|~1': 'v', 'Empty': '', 'Tab': 'a\\tb', 'U': "
        "'caf\\u00e9'}}]}]}",
        /* Names are free text apart from the reserved one. */
        "{'endpoints': [{'path': '/a', 'backends': [{'name': 'a b', 'url': 'http://h/'},"
        " {'name': '_fanout2', 'url': 'http://h/'}, {'name': 'caf\\u00e9', 'url': 'http://h/'}]}]}",
        /* A literal backslash-u in a string is not a NUL. */
        "{'endpoints': [{'path': '/a', 'backends': [{'name': '\\\\u0000', 'url': 'http://h/'}]}]}",
        /* allow_hosts forms. */
        "{'aggregate': {'allow_hosts': ['127.0.0.1:1', 'localhost:65535', '[::1]:9001',"
        " 'api.example.com:443']}}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        fo_config_destroy(parse_ok(good[i]));

    struct fo_config *cfg = parse_ok("{'listen': '[::]:8080'}");
    assert_string_equal(cfg->listen_host, "::");
    fo_config_destroy(cfg);
    cfg = parse_ok("{'listen': ':9000'}");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9000);
    fo_config_destroy(cfg);
    cfg = parse_ok("{'max_response_bytes': 9007199254740991}");
    assert_int_equal(cfg->max_response_bytes, 9007199254740991ULL);
    fo_config_destroy(cfg);
}

#define EP(backends) "{'endpoints': [{'path': '/a/{id}', 'backends': [" backends "]}]}"
#define BK(extra)    EP("{'name': 'b', 'url': 'http://h/{id}'" extra "}")

static void test_bad_cases(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        /* Root. */
        {"[]", "(root): must be a JSON object\n"},
        {"1", "(root): must be a JSON object\n"},
        {"'x'", "(root): must be a JSON object\n"},
        {"null", "(root): must be a JSON object\n"},
        {"{'foo': 1}", "(root): unknown key \"foo\"\n"},
        {"{'Workers': 1}", "(root): unknown key \"Workers\"\n"},
        {"{'a\\nb': 1}", "(root): unknown key \"a\\x0ab\"\n"},
        {"{'workers': 1, 'workers': 2}", "(root): duplicate key \"workers\"\n"},
        /* Scalars. */
        {"{'timeout_ms': 0}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': 3600001}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': 1.5}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': -1}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': '100'}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': null}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'timeout_ms': 1e400}", "timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'workers': 0}", "workers: must be an integer from 1 to 256\n"},
        {"{'workers': 257}", "workers: must be an integer from 1 to 256\n"},
        {"{'workers': true}", "workers: must be an integer from 1 to 256\n"},
        {"{'server_threads': -1}", "server_threads: must be an integer from 1 to 256\n"},
        {"{'max_body_bytes': 0}", "max_body_bytes: must be an integer from 1 to 2^53-1\n"},
        {"{'max_body_bytes': 9007199254740993}",
         "max_body_bytes: must be an integer from 1 to 2^53-1\n"},
        {"{'max_response_bytes': [1]}",
         "max_response_bytes: must be an integer from 1 to 2^53-1\n"},
        {"{'max_json_depth': 0}", "max_json_depth: must be an integer from 1 to 4096\n"},
        {"{'max_json_depth': 4097}", "max_json_depth: must be an integer from 1 to 4096\n"},
        /* listen. */
        {"{'listen': 8080}", "listen: must be a string or null\n"},
        {"{'listen': 'localhost:8080'}",
         "listen: must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from 0 "
         "to 65535\n"},
        {"{'listen': '127.1:8080'}",
         "listen: must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from 0 "
         "to 65535\n"},
        {"{'listen': '127.0.0.1:65536'}",
         "listen: must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from 0 "
         "to 65535\n"},
        {"{'listen': '::1:80'}",
         "listen: must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port from 0 "
         "to 65535\n"},
        /* endpoints. */
        {"{'endpoints': {}}", "endpoints: must be an array\n"},
        {"{'endpoints': [1]}", "endpoints[0]: must be an object\n"},
        {"{'endpoints': [{'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[0]: missing key \"path\"\n"},
        {"{'endpoints': [{'path': '/a'}]}", "endpoints[0]: missing key \"backends\"\n"},
        {"{'endpoints': [{'path': '/a', 'backends': []}]}",
         "endpoints[0].backends: must be a non-empty array\n"},
        {"{'endpoints': [{'path': '/a', 'backends': {}}]}",
         "endpoints[0].backends: must be a non-empty array\n"},
        {"{'endpoints': [{'path': '/a', 'paht': 1, 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0]: unknown key \"paht\"\n"},
        {"{'endpoints': [{'path': 'a', 'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[0].path: must start with '/'\n"},
        {"{'endpoints': [{'path': 1, 'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[0].path: must be a string\n"},
        {"{'endpoints': [{'path': '/a/{x', 'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[0].path: a placeholder must be a whole segment \"{name}\"\n"},
        {"{'endpoints': [{'path': '/a', 'method': 'get', 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].method: must be an upper-case token such as \"GET\"\n"},
        {"{'endpoints': [{'path': '/a', 'method': 'GE T', 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].method: must be an upper-case token such as \"GET\"\n"},
        {"{'endpoints': [{'path': '/a', 'method': '', 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].method: must be an upper-case token such as \"GET\"\n"},
        {"{'endpoints': [{'path': '/a', 'method': 1, 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].method: must be an upper-case token such as \"GET\"\n"},
        {"{'endpoints': [{'path': '/a', 'report': 1, 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].report: must be true or false\n"},
        {"{'endpoints': [{'path': '/a', 'timeout_ms': 0, 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0].timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'endpoints': [{'path': '/a', 'path': '/b', 'backends': [{'name': 'b', 'url': "
         "'http://h/'}]}]}",
         "endpoints[0]: duplicate key \"path\"\n"},
        /* backends. */
        {EP("1"), "endpoints[0].backends[0]: must be an object\n"},
        {EP("{'name': 'b', 'urll': 'http://h/'}"),
         "endpoints[0].backends[0]: unknown key \"urll\"\n"
         "endpoints[0].backends[0]: missing key \"url\"\n"},
        {EP("{'url': 'http://h/'}"), "endpoints[0].backends[0]: missing key \"name\"\n"},
        {EP("{'name': '', 'url': 'http://h/'}"),
         "endpoints[0].backends[0].name: must not be empty\n"},
        {EP("{'name': 1, 'url': 'http://h/'}"),
         "endpoints[0].backends[0].name: must be a string\n"},
        {EP("{'name': '_fanout', 'url': 'http://h/'}"),
         "endpoints[0].backends[0].name: \"_fanout\" is reserved\n"},
        {EP("{'name': 'b', 'url': 'http://h/'}, {'name': 'c', 'url': 'http://h/'},"
            " {'name': 'b', 'url': 'http://h/'}"),
         "endpoints[0].backends[2].name: duplicate of endpoints[0].backends[0].name\n"},
        {EP("{'name': 'b', 'url': 'ftp://h/'}"),
         "endpoints[0].backends[0].url: must start with http:// or https://\n"},
        {EP("{'name': 'b', 'url': 'http://h:99999/x'}"),
         "endpoints[0].backends[0].url: libcurl cannot use this URL: Port number was not a "
         "decimal number between 0 and 65535\n"},
        {EP("{'name': 'b', 'url': 'http://h/{nope}'}"),
         "endpoints[0].backends[0].url: {nope} is not a parameter of the endpoint path\n"},
        {EP("{'name': 'b', 'url': 'http://{id}/'}"),
         "endpoints[0].backends[0].url: placeholders are not allowed in the scheme or host:port\n"},
        {EP("{'name': 'b', 'url': 'http://h/{id'}"),
         "endpoints[0].backends[0].url: '{' without a closing '}'\n"},
        {EP("{'name': 'b', 'url': 'http://h/ x'}"),
         "endpoints[0].backends[0].url: contains a space or control byte 0x20\n"},
        {EP("{'name': 'b', 'url': 7}"), "endpoints[0].backends[0].url: must be a string\n"},
        {BK(", 'method': 'post'"),
         "endpoints[0].backends[0].method: must be an upper-case token such as \"GET\"\n"},
        {BK(", 'timeout_ms': 0"),
         "endpoints[0].backends[0].timeout_ms: must be an integer from 1 to 3600000\n"},
        {BK(", 'required': 'yes'"), "endpoints[0].backends[0].required: must be true or false\n"},
        {BK(", 'merge': 1"), "endpoints[0].backends[0].merge: must be true or false\n"},
        {BK(", 'headers': []"), "endpoints[0].backends[0].headers: must be an object of strings\n"},
        {BK(", 'headers': 'X: y'"),
         "endpoints[0].backends[0].headers: must be an object of strings\n"},
        {BK(", 'headers': {'X Tag': 'a'}"),
         "endpoints[0].backends[0].headers: invalid header name \"X Tag\"\n"},
        {BK(", 'headers': {'': 'a'}"),
         "endpoints[0].backends[0].headers: invalid header name \"\"\n"},
        {BK(", 'headers': {'X:Y': 'a'}"),
         "endpoints[0].backends[0].headers: invalid header name \"X:Y\"\n"},
        {BK(", 'headers': {'X\\r\\nY': 'a'}"),
         "endpoints[0].backends[0].headers: invalid header name \"X\\x0d\\x0aY\"\n"},
        {BK(", 'headers': {'X-Tag': 'a\\r\\nX-Evil: 1'}"),
         "endpoints[0].backends[0].headers: value of \"X-Tag\" must be a string without CR, LF "
         "or NUL\n"},
        {BK(", 'headers': {'X-Tag': 'a\\n'}"),
         "endpoints[0].backends[0].headers: value of \"X-Tag\" must be a string without CR, LF "
         "or NUL\n"},
        {BK(", 'headers': {'X-Tag': 'a', 'x-tag': 'b', 'X-Tag2': 'c', 'X-TAG': 'd'}"),
         "endpoints[0].backends[0].headers: duplicate header \"x-tag\"\n"
         "endpoints[0].backends[0].headers: duplicate header \"X-TAG\"\n"},
        {BK(", 'headers': {'X-Tag': 1}"),
         "endpoints[0].backends[0].headers: value of \"X-Tag\" must be a string without CR, LF "
         "or NUL\n"},
        /* Cross checks. */
        {"{'endpoints': [{'path': '/a', 'backends': [{'name': 'b', 'url': 'http://h/'}]},"
         " {'path': '/a', 'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[1].path: duplicate of endpoints[0].path\n"},
        {"{'endpoints': [{'path': '/a/{id}', 'backends': [{'name': 'b', 'url': 'http://h/'}]},"
         " {'path': '/b', 'backends': [{'name': 'b', 'url': 'http://h/'}]},"
         " {'path': '/a/{x}', 'method': 'GET', 'backends': [{'name': 'b', 'url': 'http://h/'}]}]}",
         "endpoints[2].path: duplicate of endpoints[0].path\n"},
        {"{'endpoints': [{'path': '/aggregate', 'backends': [{'name': 'b', 'url': 'http://h/'}]}],"
         " 'aggregate': {'allow_hosts': ['h:80']}}",
         "endpoints[0].path: same as aggregate.path\n"},
        /* aggregate. */
        {"{'aggregate': 1}", "aggregate: must be an object\n"},
        {"{'aggregate': {'allow': []}}", "aggregate: unknown key \"allow\"\n"},
        {"{'aggregate': {'path': 'x'}}", "aggregate.path: must start with '/'\n"},
        {"{'aggregate': {'path': '/{id}'}}", "aggregate.path: must not have placeholders\n"},
        {"{'aggregate': {'path': 5}}", "aggregate.path: must be a string\n"},
        {"{'aggregate': {'max_requests': 0}}",
         "aggregate.max_requests: must be an integer from 1 to 1024\n"},
        {"{'aggregate': {'max_requests': 1025}}",
         "aggregate.max_requests: must be an integer from 1 to 1024\n"},
        {"{'aggregate': {'timeout_ms': 0}}",
         "aggregate.timeout_ms: must be an integer from 1 to 3600000\n"},
        {"{'aggregate': {'allow_hosts': 'h:80'}}",
         "aggregate.allow_hosts: must be an array of \"host:port\" strings\n"},
        /* Not JSON. */
        {"", "offset 0: not valid JSON\n"},
        {"   ", "offset 3: not valid JSON\n"},
        {"{", "offset 1: not valid JSON\n"},
        {"{'a': 1} x", "offset 9: not valid JSON\n"},
        {"{'a': 1}{}", "offset 8: not valid JSON\n"},
        {"{'listen': '\\u0000'}", "offset 12: \\u0000 is not allowed in strings\n"},
        {"{'a\\u0000b': 1}", "offset 3: \\u0000 is not allowed in strings\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_bad(bad[i].text, bad[i].want);

    /* A raw NUL byte: cJSON would stop there and ignore the rest. */
    static const char nul[] = "{}\0{'x':1}";
    parse_bad_n(nul, sizeof nul - 1, "offset 2: NUL byte in the text\n");
}

static void test_bad_allow_hosts(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1", "h:0",     "h:65536", ":80",       "a@b:80",         "h:80/x",
        "[::1:80",   "::1:80",  "h :80",   "h:8 0",     "h:+80",          "h:",
        "h%2e:80",   "h\\x:80", "[]:80",   "[::1]x:80", "h:123456",       "h#:80",
        "",          "h?:80",   "a]b:80",  "a[b:80",    "caf\xc3\xa9:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fo_buf text;
        fo_buf_init(&text, FO_BUF_UNLIMITED);
        /* Escape the one backslash case for JSON. */
        fo_buf_puts(&text, "{\"aggregate\": {\"allow_hosts\": [\"ok:1\", \"");
        for (const char *c = bad[i]; *c; c++) {
            if (*c == '\\')
                fo_buf_putc(&text, '\\');
            fo_buf_putc(&text, *c);
        }
        fo_buf_puts(&text, "\"]}}");
        parse_bad_n(
            text.data, text.len,
            "aggregate.allow_hosts[1]: must be \"host:port\" with a port from 1 to 65535\n");
        fo_buf_free(&text);
    }
    parse_bad("{'aggregate': {'allow_hosts': [80]}}",
              "aggregate.allow_hosts[0]: must be \"host:port\" with a port from 1 to 65535\n");
}

/* One pass reports every mistake, in document order, cross checks last. */
static void test_all_errors_collected(void **state)
{
    parse_bad("{'listen': 'x', 'workers': 0, 'bogus': 1, 'timeout_ms': 'x',"
              " 'endpoints': ["
              "  {'path': '/a/{id}', 'method': 'get', 'backends': ["
              "    {'name': 'b', 'urll': 'http://h/'},"
              "    {'name': 'b', 'url': 'http://h/{nope}', 'headers': {'X Y': 'z'}}]},"
              "  {'path': '/a/{other}', 'backends': [{'name': '', 'url': 'gopher://h/'}]},"
              "  {'path': '/a/{x}', 'backends': [{'name': 'c', 'url': 'http://h/'}]},"
              "  {'path': '/aggregate', 'backends': [{'name': 'c', 'url': 'http://h/'}]}],"
              " 'aggregate': {'allow_hosts': ['h:80', 'nope'], 'max_requests': 0}}",
              "(root): unknown key \"bogus\"\n"
              "listen: must be \"host:port\" with a numeric IPv4 or [IPv6] address and a port "
              "from 0 to 65535\n"
              "workers: must be an integer from 1 to 256\n"
              "timeout_ms: must be an integer from 1 to 3600000\n"
              "endpoints[0].method: must be an upper-case token such as \"GET\"\n"
              "endpoints[0].backends[0]: unknown key \"urll\"\n"
              "endpoints[0].backends[0]: missing key \"url\"\n"
              "endpoints[0].backends[1].url: {nope} is not a parameter of the endpoint path\n"
              "endpoints[0].backends[1].headers: invalid header name \"X Y\"\n"
              "endpoints[0].backends[1].name: duplicate of endpoints[0].backends[0].name\n"
              "endpoints[1].backends[0].name: must not be empty\n"
              "endpoints[1].backends[0].url: must start with http:// or https://\n"
              "aggregate.max_requests: must be an integer from 1 to 1024\n"
              "aggregate.allow_hosts[1]: must be \"host:port\" with a port from 1 to 65535\n"
              "endpoints[2].path: duplicate of endpoints[1].path\n"
              "endpoints[3].path: same as aggregate.path\n");

    /* The errors buffer may be NULL (count only) or capped (lines dropped). */
    struct fo_config *cfg = NULL;
    const char *text = "{\"workers\": 0}";
    assert_int_equal(fo_config_parse(&cfg, text, strlen(text), NULL), -EINVAL);
    assert_null(cfg);
    struct fo_buf small;
    fo_buf_init(&small, 4);
    assert_int_equal(fo_config_parse(&cfg, text, strlen(text), &small), -EINVAL);
    assert_int_equal(small.len, 0);
    fo_buf_free(&small);
}

/* The numeric operations and limits keys: value read back from a parsed config. */
static int64_t limit_value(const struct fo_config *cfg, const char *key)
{
    if (strcmp(key, "drain_ms") == 0)
        return cfg->drain_ms;
    if (strcmp(key, "max_connections") == 0)
        return (int64_t)cfg->max_connections;
    if (strcmp(key, "max_header_bytes") == 0)
        return (int64_t)cfg->max_header_bytes;
    if (strcmp(key, "max_headers") == 0)
        return (int64_t)cfg->max_headers;
    if (strcmp(key, "max_url_bytes") == 0)
        return (int64_t)cfg->max_url_bytes;
    if (strcmp(key, "idle_timeout_ms") == 0)
        return cfg->idle_timeout_ms;
    if (strcmp(key, "header_timeout_ms") == 0)
        return cfg->header_timeout_ms;
    if (strcmp(key, "max_inflight_calls") == 0)
        return (int64_t)cfg->max_inflight_calls;
    if (strcmp(key, "max_backend_inflight") == 0)
        return (int64_t)cfg->max_backend_inflight;
    if (strcmp(key, "max_host_connections") == 0)
        return (int64_t)cfg->max_host_connections;
    fail_msg("no field for %s", key);
    return -1;
}

/* Each bound is accepted and stored; one past it is refused with the exact line. */
static void test_limit_bounds(void **state)
{
    static const struct {
        const char *key;
        long long lo, hi;
        const char *with_lo; /* Other keys the low value needs to be valid ("" if none). */
        const char *with_hi;
    } keys[] = {
        {"drain_ms", 0, 600000, "", ""},
        {"max_connections", 1, 1000000, "", ""},
        {"max_header_bytes", 1024, 1048576, ", 'max_url_bytes': 1024", ""},
        {"max_headers", 1, 10000, "", ""},
        {"max_url_bytes", 64, 1048576, "", ", 'max_header_bytes': 1048576"},
        {"idle_timeout_ms", 1000, 3600000, "", ""},
        {"header_timeout_ms", 100, 3600000, "", ""},
        {"max_inflight_calls", 1, 10000000, "", ""},
        {"max_backend_inflight", 0, 10000000, "", ""},
        {"max_host_connections", 0, 100000, "", ""},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char text[256];
        char want[256];
        snprintf(want, sizeof want, "%s: must be an integer from %lld to %lld\n", keys[i].key,
                 keys[i].lo, keys[i].hi);

        snprintf(text, sizeof text, "{'%s': %lld%s}", keys[i].key, keys[i].lo, keys[i].with_lo);
        struct fo_config *cfg = parse_ok(text);
        assert_int_equal(limit_value(cfg, keys[i].key), keys[i].lo);
        fo_config_destroy(cfg);
        snprintf(text, sizeof text, "{'%s': %lld%s}", keys[i].key, keys[i].hi, keys[i].with_hi);
        cfg = parse_ok(text);
        assert_int_equal(limit_value(cfg, keys[i].key), keys[i].hi);
        fo_config_destroy(cfg);

        /* One past each bound, then values of the wrong kind. A wrong value is
         * refused on its own: the companion keys add no line. */
        char below[32];
        char above[32];
        snprintf(below, sizeof below, "%lld", keys[i].lo - 1);
        snprintf(above, sizeof above, "%lld", keys[i].hi + 1);
        const char *const wrong[] = {below, above, "1.5", "'100'", "null", "true", "1e400", "[1]"};
        for (size_t w = 0; w < sizeof wrong / sizeof *wrong; w++) {
            snprintf(text, sizeof text, "{'%s': %s%s}", keys[i].key, wrong[w],
                     w == 0 ? keys[i].with_lo : keys[i].with_hi);
            parse_bad(text, want);
        }
    }
}

static void test_url_within_head(void **state)
{
    struct fo_config *cfg = parse_ok("{'max_header_bytes': 2048, 'max_url_bytes': 2048}");
    assert_int_equal(cfg->max_header_bytes, 2048);
    assert_int_equal(cfg->max_url_bytes, 2048);
    fo_config_destroy(cfg);
    cfg = parse_ok("{'max_url_bytes': 8192}");
    fo_config_destroy(cfg);

    parse_bad("{'max_url_bytes': 8193}",
              "max_url_bytes: 8193 is more than max_header_bytes (8192)\n");
    /* The default target length counts too. */
    parse_bad("{'max_header_bytes': 1024}",
              "max_url_bytes: 4096 is more than max_header_bytes (1024)\n");
    parse_bad("{'max_header_bytes': 4096, 'max_url_bytes': 4097}",
              "max_url_bytes: 4097 is more than max_header_bytes (4096)\n");
    /* A value wrong on its own is not compared. */
    parse_bad("{'max_header_bytes': 1, 'max_url_bytes': 20000}",
              "max_header_bytes: must be an integer from 1024 to 1048576\n");
    parse_bad("{'max_header_bytes': 1024, 'max_url_bytes': 'x'}",
              "max_url_bytes: must be an integer from 64 to 1048576\n");
}

static void test_probe_paths(void **state)
{
    struct fo_config *cfg =
        parse_ok("{'health_path': '/healthz', 'ready_path': '/-/ready', 'metrics_path': '/m'}");
    assert_string_equal(cfg->health_path, "/healthz");
    assert_string_equal(cfg->ready_path, "/-/ready");
    assert_string_equal(cfg->metrics_path, "/m");
    fo_config_destroy(cfg);

    /* null turns one route off and leaves the others. */
    static const char *const keys[] = {"health_path", "ready_path", "metrics_path"};
    for (size_t i = 0; i < 3; i++) {
        char text[64];
        snprintf(text, sizeof text, "{'%s': null}", keys[i]);
        cfg = parse_ok(text);
        assert_true((cfg->health_path == NULL) == (i == 0));
        assert_true((cfg->ready_path == NULL) == (i == 1));
        assert_true((cfg->metrics_path == NULL) == (i == 2));
        fo_config_destroy(cfg);
    }
    cfg = parse_ok("{'health_path': null, 'ready_path': null, 'metrics_path': null}");
    assert_null(cfg->health_path);
    assert_null(cfg->ready_path);
    assert_null(cfg->metrics_path);
    fo_config_destroy(cfg);

    static const char *const good[] = {
        /* A route that is off frees its path for anything else. */
        "{'health_path': null, 'ready_path': '/health'}",
        "{'ready_path': null, 'endpoints': [{'path': '/ready', 'backends': [{'name': 'a', "
        "'url': 'http://h/'}]}]}",
        "{'metrics_path': null, 'aggregate': {'path': '/metrics', 'allow_hosts': ['h:80']}}",
        /* Endpoints with a {param} still serve their other values. */
        "{'endpoints': [{'path': '/{what}', 'backends': [{'name': 'a', 'url': 'http://h/'}]},"
        " {'path': '/health/{id}', 'method': 'POST', 'backends': [{'name': 'a', 'url': "
        "'http://h/'}]}]}",
        /* Literal equality only. */
        "{'endpoints': [{'path': '/health/', 'backends': [{'name': 'a', 'url': 'http://h/'}]},"
        " {'path': '/Health', 'backends': [{'name': 'a', 'url': 'http://h/'}]}]}",
        "{'health_path': '/healthz', 'endpoints': [{'path': '/health', 'backends': [{'name': "
        "'a', 'url': 'http://h/'}]}]}",
        /* The aggregate path is free while the aggregate is off. */
        "{'aggregate': {'path': '/ready'}}",
        "{'health_path': '/aggregate'}",
        /* Root is a path like any other. */
        "{'health_path': '/'}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        fo_config_destroy(parse_ok(good[i]));

    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{'health_path': 'health'}", "health_path: must start with '/'\n"},
        {"{'health_path': ''}", "health_path: must start with '/'\n"},
        {"{'ready_path': '/r/{id}'}", "ready_path: must not have placeholders\n"},
        {"{'metrics_path': '/a//b'}", "metrics_path: empty segment (\"//\")\n"},
        {"{'metrics_path': '/a b'}",
         "metrics_path: invalid byte 0x20 (use printable ASCII, percent-encode the rest)\n"},
        {"{'health_path': '/h?x=1'}",
         "health_path: invalid byte 0x3f (use printable ASCII, percent-encode the rest)\n"},
        {"{'health_path': 1}", "health_path: must be a path string or null\n"},
        {"{'ready_path': false}", "ready_path: must be a path string or null\n"},
        {"{'metrics_path': {}}", "metrics_path: must be a path string or null\n"},
        {"{'health_path': '/a', 'health_path': '/b'}", "(root): duplicate key \"health_path\"\n"},
        /* Probe against probe: reported on the later one. */
        {"{'ready_path': '/health'}", "ready_path: same as health_path\n"},
        {"{'metrics_path': '/health'}", "metrics_path: same as health_path\n"},
        {"{'metrics_path': '/ready'}", "metrics_path: same as ready_path\n"},
        {"{'health_path': '/x', 'ready_path': '/x', 'metrics_path': '/x'}",
         "ready_path: same as health_path\n"
         "metrics_path: same as health_path\n"},
        {"{'health_path': null, 'ready_path': '/x', 'metrics_path': '/x'}",
         "metrics_path: same as ready_path\n"},
        /* Probe against the aggregate, when it is on. */
        {"{'aggregate': {'path': '/health', 'allow_hosts': ['h:80']}}",
         "aggregate.path: same as health_path\n"},
        {"{'metrics_path': '/aggregate', 'aggregate': {'allow_hosts': ['h:80']}}",
         "aggregate.path: same as metrics_path\n"},
        /* Probe against a literal endpoint path, whatever its method. */
        {"{'endpoints': [{'path': '/metrics', 'backends': [{'name': 'a', 'url': 'http://h/'}]}]}",
         "endpoints[0].path: same as metrics_path\n"},
        {"{'endpoints': [{'path': '/x', 'backends': [{'name': 'a', 'url': 'http://h/'}]},"
         " {'path': '/health', 'method': 'POST', 'backends': [{'name': 'a', 'url': "
         "'http://h/'}]}]}",
         "endpoints[1].path: same as health_path\n"},
        {"{'ready_path': '/api/status', 'endpoints': [{'path': '/api/status', 'backends': "
         "[{'name': 'a', 'url': 'http://h/'}]}]}",
         "endpoints[0].path: same as ready_path\n"},
        /* A wrong path is not compared, so it gives one line, not two. */
        {"{'health_path': 'x', 'endpoints': [{'path': '/health', 'backends': [{'name': 'a', "
         "'url': 'http://h/'}]}]}",
         "health_path: must start with '/'\n"},
        {"{'health_path': 7, 'ready_path': '/health'}",
         "health_path: must be a path string or null\n"},
        {"{'aggregate': {'path': 'health', 'allow_hosts': ['h:80']}, 'health_path': 'health'}",
         "aggregate.path: must start with '/'\n"
         "health_path: must start with '/'\n"},
        {"{'aggregate': {'path': 5, 'allow_hosts': ['h:80']}, 'endpoints': [{'path': "
         "'/aggregate', 'backends': [{'name': 'a', 'url': 'http://h/'}]}]}",
         "aggregate.path: must be a string\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_bad(bad[i].text, bad[i].want);
}

static void test_log(void **state)
{
    static const struct {
        const char *name;
        enum fo_log_level level;
    } levels[] = {{"debug", FO_LOG_DEBUG},
                  {"info", FO_LOG_INFO},
                  {"warn", FO_LOG_WARN},
                  {"error", FO_LOG_ERROR},
                  {"off", FO_LOG_OFF}};
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
        char text[64];
        snprintf(text, sizeof text, "{'log': {'level': '%s'}}", levels[i].name);
        struct fo_config *cfg = parse_ok(text);
        assert_int_equal(cfg->log_level, levels[i].level);
        assert_true(cfg->access_log);
        assert_false(cfg->access_log_probes);
        fo_config_destroy(cfg);
    }
    struct fo_config *cfg = parse_ok("{'log': {'level': 'warn', 'access': false, 'probes': true}}");
    assert_int_equal(cfg->log_level, FO_LOG_WARN);
    assert_false(cfg->access_log);
    assert_true(cfg->access_log_probes);
    fo_config_destroy(cfg);

#define LEVELS "must be \"debug\", \"info\", \"warn\", \"error\" or \"off\"\n"
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{'log': 1}", "log: must be an object\n"},
        {"{'log': null}", "log: must be an object\n"},
        {"{'log': []}", "log: must be an object\n"},
        {"{'log': 'debug'}", "log: must be an object\n"},
        {"{'log': {'lvl': 'debug'}}", "log: unknown key \"lvl\"\n"},
        {"{'log': {'level': 'info', 'format': 'json', 'Access': true}}",
         "log: unknown key \"format\"\n"
         "log: unknown key \"Access\"\n"},
        {"{'log': {'level': 'info', 'level': 'warn'}}", "log: duplicate key \"level\"\n"},
        {"{'log': {}, 'log': {}}", "(root): duplicate key \"log\"\n"},
        {"{'log': {'level': 'INFO'}}", "log.level: " LEVELS},
        {"{'log': {'level': 'warning'}}", "log.level: " LEVELS},
        {"{'log': {'level': ''}}", "log.level: " LEVELS},
        {"{'log': {'level': 1}}", "log.level: " LEVELS},
        {"{'log': {'level': null}}", "log.level: " LEVELS},
        {"{'log': {'access': 'yes'}}", "log.access: must be true or false\n"},
        {"{'log': {'access': null}}", "log.access: must be true or false\n"},
        {"{'log': {'probes': 0}}", "log.probes: must be true or false\n"},
        {"{'log': {'x': 1, 'level': 'loud', 'access': 1, 'probes': 'no'}}",
         "log: unknown key \"x\"\n"
         "log.level: " LEVELS "log.access: must be true or false\n"
         "log.probes: must be true or false\n"},
    };
#undef LEVELS
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_bad(bad[i].text, bad[i].want);
}

/* Every new key at once, and every new kind of mistake in one pass. */
static void test_operations_together(void **state)
{
    struct fo_config *cfg = parse_ok(
        "{'health_path': '/hz', 'ready_path': null, 'metrics_path': '/stats',"
        " 'log': {'level': 'error', 'access': false, 'probes': true}, 'drain_ms': 2500,"
        " 'max_connections': 500, 'max_header_bytes': 32768, 'max_headers': 64,"
        " 'max_url_bytes': 4096, 'idle_timeout_ms': 30000, 'header_timeout_ms': 5000,"
        " 'max_inflight_calls': 2000, 'max_backend_inflight': 0,"
        " 'endpoints': [{'path': '/ready', 'backends': [{'name': 'a', 'url': 'http://h/'}]}]}");
    assert_string_equal(cfg->health_path, "/hz");
    assert_null(cfg->ready_path);
    assert_string_equal(cfg->metrics_path, "/stats");
    assert_int_equal(cfg->log_level, FO_LOG_ERROR);
    assert_false(cfg->access_log);
    assert_true(cfg->access_log_probes);
    assert_int_equal(cfg->drain_ms, 2500);
    assert_int_equal(cfg->max_connections, 500);
    assert_int_equal(cfg->max_header_bytes, 32768);
    assert_int_equal(cfg->max_headers, 64);
    assert_int_equal(cfg->max_url_bytes, 4096);
    assert_int_equal(cfg->idle_timeout_ms, 30000);
    assert_int_equal(cfg->header_timeout_ms, 5000);
    assert_int_equal(cfg->max_inflight_calls, 2000);
    assert_int_equal(cfg->max_backend_inflight, 0);
    fo_config_destroy(cfg);

    parse_bad("{'max_headres': 10, 'metrics_path': '/health', 'log': {'level': 'trace'},"
              " 'drain_ms': -1, 'max_connections': 0, 'max_header_bytes': 2048,"
              " 'max_url_bytes': 4096, 'max_backend_inflight': 1.5,"
              " 'endpoints': [{'path': '/health', 'backends': [{'name': 'a', 'url': "
              "'http://h/'}]}],"
              " 'aggregate': {'path': '/metrics', 'allow_hosts': ['h:80']}}",
              "(root): unknown key \"max_headres\"\n"
              "log.level: must be \"debug\", \"info\", \"warn\", \"error\" or \"off\"\n"
              "drain_ms: must be an integer from 0 to 600000\n"
              "max_connections: must be an integer from 1 to 1000000\n"
              "max_backend_inflight: must be an integer from 0 to 10000000\n"
              "max_url_bytes: 4096 is more than max_header_bytes (2048)\n"
              "metrics_path: same as health_path\n"
              "endpoints[0].path: same as health_path\n");
    /* The aggregate at /metrics clashes with nothing: metrics_path moved to /health. */
}

/* The embedded default (service/demo.c) must always parse. */
static void test_demo_config(void **state)
{
    struct fo_demo *demo = NULL;
    assert_int_equal(fo_demo_create(&demo), 0);
    struct fo_buf text;
    fo_buf_init(&text, FO_BUF_UNLIMITED);
    assert_int_equal(fo_demo_config(demo, &text), 0);
    struct fo_buf errors;
    fo_buf_init(&errors, FO_BUF_UNLIMITED);
    struct fo_config *cfg = NULL;
    int rc = fo_config_parse(&cfg, text.data, text.len, &errors);
    if (rc != 0)
        print_error("demo config:\n%s\nerrors:\n%s", text.data, errors.data ? errors.data : "");
    assert_int_equal(rc, 0);
    assert_int_equal(cfg->nendpoints, 1);
    assert_true(cfg->aggregate.enabled);
    assert_string_equal(cfg->health_path, "/health");
    assert_string_equal(cfg->ready_path, "/ready");
    assert_string_equal(cfg->metrics_path, "/metrics");
    fo_config_destroy(cfg);
    fo_buf_free(&errors);
    fo_buf_free(&text);
    fo_demo_destroy(demo);
}

static void test_listen_parse(void **state)
{
    static const struct {
        const char *s;
        const char *host;
        unsigned port;
    } good[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"[::1]:1", "::1", 1},
        {"[::]:65535", "::", 65535},
        {":9000", "0.0.0.0", 9000},
        {"10.1.2.3:080", "10.1.2.3", 80},
        {"[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char host[64] = "";
        uint16_t port = 1234;
        assert_int_equal(fo_listen_parse(good[i].s, host, sizeof host, &port), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    static const char *const bad[] = {
        "",
        ":",
        "127.0.0.1:",
        "127.0.0.1",
        "[::1]",
        "[::1]:",
        "[::1]80",
        "[127.0.0.1]:80",
        "[fe80::1%eth0]:80",
        "1.2.3.4:123456",
        "1.2.3.4:65536",
        "host:80",
        " 1.2.3.4:80",
        "1.2.3.4: 80",
        "1.2.3.4:-1",
        "1.2.3.4:8a",
        "127.1:80",
        "::1:80",
        "[::1:80",
        "1.2.3.4:80:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char host[64];
        uint16_t port;
        if (fo_listen_parse(bad[i], host, sizeof host, &port) != -EINVAL)
            print_error("listen %s accepted\n", bad[i]);
        assert_int_equal(fo_listen_parse(bad[i], host, sizeof host, &port), -EINVAL);
    }
    /* The host must fit. */
    char tiny[9];
    uint16_t port;
    assert_int_equal(fo_listen_parse("127.0.0.1:80", tiny, sizeof tiny, &port), -EINVAL);
    char exact[10];
    assert_int_equal(fo_listen_parse("127.0.0.1:80", exact, sizeof exact, &port), 0);
    assert_string_equal(exact, "127.0.0.1");
}

/* Write 'n' bytes to a new temporary file; returns its path (caller frees). */
static char *temp_file(const char *data, size_t n)
{
    char *path = strdup("/tmp/fo_test_config_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
    return path;
}

static void test_load(void **state)
{
    struct fo_buf errors;
    fo_buf_init(&errors, FO_BUF_UNLIMITED);
    struct fo_config *cfg = NULL;

    /* Missing file. */
    assert_int_equal(fo_config_load(&cfg, "/nonexistent/fanout.json", &errors), -ENOENT);
    assert_null(cfg);
    assert_string_equal(errors.data,
                        "cannot read /nonexistent/fanout.json: No such file or directory\n");
    fo_buf_reset(&errors);

    /* A directory. */
    assert_int_equal(fo_config_load(&cfg, "/tmp", &errors), -EISDIR);
    assert_string_equal(errors.data, "cannot read /tmp: Is a directory\n");
    fo_buf_reset(&errors);

    /* A good file. */
    char *text = dq(example);
    char *path = temp_file(text, strlen(text));
    assert_int_equal(fo_config_load(&cfg, path, &errors), 0);
    assert_non_null(cfg);
    assert_int_equal(cfg->nendpoints, 2);
    assert_int_equal(errors.len, 0);
    fo_config_destroy(cfg);
    cfg = NULL;
    unlink(path);
    free(path);
    free(text);

    /* A bad file: the parse errors come through. */
    path = temp_file("{\"workers\": 0}", 14);
    assert_int_equal(fo_config_load(&cfg, path, &errors), -EINVAL);
    assert_string_equal(errors.data, "workers: must be an integer from 1 to 256\n");
    fo_buf_reset(&errors);
    unlink(path);
    free(path);

    /* An empty file is not JSON. */
    path = temp_file("", 0);
    assert_int_equal(fo_config_load(&cfg, path, &errors), -EINVAL);
    assert_string_equal(errors.data, "offset 0: not valid JSON\n");
    fo_buf_reset(&errors);
    unlink(path);
    free(path);

    /* 16 MiB is read whole (here: valid JSON padded with spaces); one more byte is refused. */
    size_t cap = 16u << 20;
    char *big = malloc(cap + 1);
    assert_non_null(big);
    memset(big, ' ', cap + 1);
    memcpy(big, "{}", 2);
    path = temp_file(big, cap);
    assert_int_equal(fo_config_load(&cfg, path, &errors), 0);
    fo_config_destroy(cfg);
    cfg = NULL;
    unlink(path);
    free(path);
    path = temp_file(big, cap + 1);
    assert_int_equal(fo_config_load(&cfg, path, &errors), -EFBIG);
    assert_null(cfg);
    char want[128];
    snprintf(want, sizeof want, "cannot read %s: larger than 16 MiB\n", path);
    assert_string_equal(errors.data, want);
    unlink(path);
    free(path);
    free(big);
    fo_buf_free(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_variants),
        cmocka_unit_test(test_bad_cases),
        cmocka_unit_test(test_bad_allow_hosts),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_limit_bounds),
        cmocka_unit_test(test_url_within_head),
        cmocka_unit_test(test_probe_paths),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_operations_together),
        cmocka_unit_test(test_demo_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
