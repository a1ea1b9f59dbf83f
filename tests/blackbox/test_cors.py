"""CORS: preflights answered by fanout (204, no backend call, no auth), actual answers with
Access-Control-Allow-Origin for allowed origins only, Vary: Origin under every policy, the
per-endpoint override ("cors": null turns the default off), and the --check errors."""

import os
import tempfile

from blackbox import jwtkit
from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, run_cli, write_config

WORK = tempfile.mkdtemp(prefix="fanout-cors-")
APP = "https://app.test"
CORS = {"allow_origins": [APP, "http://localhost:3000"], "allow_headers": ["Authorization", "X-Api-Key"],
        "expose_headers": ["X-Request-Id", "X-Fanout-Complete"], "allow_credentials": True,
        "max_age_s": 600}


def fanout_config(backend):
    echo = backend.url("/echo?tag={t}")
    keys = os.path.join(WORK, "keys.json")
    write_config(keys, {"keys": [{"name": "k", "sha256": jwtkit.sha256_hex("the-key")}]})
    return {
        "cors": CORS,
        "endpoints": [
            ep("/c/{t}", [be("e", echo)]),
            ep("/c/{t}", [be("e", echo)], method="POST"),
            ep("/star/{t}", [be("e", echo)],
               cors={"allow_origins": ["*"], "allow_methods": ["GET", "PUT"],
                     "allow_headers": ["*"]}),
            ep("/none/{t}", [be("e", echo)], cors=None),
            ep("/authd/{t}", [be("e", echo)],
               auth={"api_keys": {"header": "X-Api-Key", "keys_file": keys}}),
        ],
    }


def preflight(fo, path, origin, method="GET", headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return fo.request("OPTIONS", path, h)


def cors_headers(r):
    return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def varies_on_origin(r):
    return "origin" in [v.strip().lower() for v in ",".join(r.headers.get_all("Vary") or []).split(",")]


def test_preflight_allowed_origin_is_answered_by_fanout(fo, backend):
    t = tag()
    r = preflight(fo, "/c/%s" % t, APP, "POST", "authorization")
    assert r.status == 204, r
    assert r.body == b""
    h = cors_headers(r)
    assert h == {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true",
                 "Access-Control-Allow-Methods": "GET, POST",
                 "Access-Control-Allow-Headers": "Authorization, X-Api-Key",
                 "Access-Control-Max-Age": "600"}, h
    assert varies_on_origin(r), r
    backend.assert_no_request(t)


def test_preflight_disallowed_origin_gets_no_cors_headers(fo, backend):
    t = tag()
    for origin in ("https://evil.test", "https://app.test.evil.test", "https://APP.test", "null",
                   APP + "/"):
        r = preflight(fo, "/c/%s" % t, origin)
        assert r.status == 204, r
        assert cors_headers(r) == {}, (origin, r)
        assert varies_on_origin(r), r
    backend.assert_no_request(t)


def test_simple_request_allowed_origin(fo, backend):
    t = tag()
    r = fo.get("/c/%s" % t, {"Origin": "http://localhost:3000"})
    assert r.status == 200, r
    h = cors_headers(r)
    assert h == {"Access-Control-Allow-Origin": "http://localhost:3000",
                 "Access-Control-Allow-Credentials": "true",
                 "Access-Control-Expose-Headers": "X-Request-Id, X-Fanout-Complete"}, h
    assert varies_on_origin(r)
    req = backend.wait_request(t)
    assert req.header("Origin") is None  # client headers are not forwarded


def test_simple_request_disallowed_or_no_origin(fo, backend):
    for headers in ({"Origin": "https://evil.test"}, {}):
        t = tag()
        r = fo.get("/c/%s" % t, headers)
        assert r.status == 200, r
        assert cors_headers(r) == {}, r
        assert varies_on_origin(r), "the answer depends on Origin: Vary must say so even without one"
        backend.wait_request(t)


def test_wildcard_policy(fo, backend):
    t = tag()
    r = preflight(fo, "/star/%s" % t, "https://anyone.test", "PUT", "x-custom, content-type")
    assert r.status == 204, r
    assert cors_headers(r) == {"Access-Control-Allow-Origin": "*",
                               "Access-Control-Allow-Methods": "GET, PUT",
                               "Access-Control-Allow-Headers": "x-custom, content-type"}, r
    r = fo.get("/star/%s" % t, {"Origin": "https://anyone.test"})
    assert r.headers.get("Access-Control-Allow-Origin") == "*", r
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_cors_null_keeps_the_405(fo, backend):
    t = tag()
    r = preflight(fo, "/none/%s" % t, APP)
    assert r.status == 405, r
    assert cors_headers(r) == {}
    r = fo.get("/none/%s" % t, {"Origin": APP})
    assert r.status == 200 and cors_headers(r) == {} and not varies_on_origin(r), r


def test_preflight_needs_no_credentials_but_the_call_does(fo, backend):
    t = tag()
    r = preflight(fo, "/authd/%s" % t, APP, "GET", "x-api-key")
    assert r.status == 204 and r.headers.get("Access-Control-Allow-Origin") == APP, r
    r = fo.get("/authd/%s" % t, {"Origin": APP})
    assert r.status == 401, r
    # The browser may read the refusal: it carries the CORS headers too.
    assert r.headers.get("Access-Control-Allow-Origin") == APP, r
    backend.assert_no_request(t)
    r = fo.get("/authd/%s" % t, {"Origin": APP, "X-Api-Key": "the-key"})
    assert r.status == 200 and r.headers.get("Access-Control-Allow-Origin") == APP, r


def test_options_without_a_preflight_is_not_one(fo, backend):
    t = tag()
    r = fo.request("OPTIONS", "/c/%s" % t, {"Origin": APP})  # no Access-Control-Request-Method
    assert r.status == 405, r


def test_check_errors(fanout_bin, tmp_path):
    cases = [
        ({"allow_origins": ["*"], "allow_credentials": True},
         "cors.allow_credentials: cannot be true with \"*\""),
        ({"allow_origins": ["https://App.test"]}, "cors.allow_origins[0]: must be"),
        ({"allow_origins": ["https://app.test/"]}, "cors.allow_origins[0]: must be"),
        ({"allow_origins": []}, "cors.allow_origins: must be a non-empty array"),
        ({}, "cors: missing key \"allow_origins\""),
        ({"allow_origins": ["*"], "allow_methods": ["get"]}, "cors.allow_methods[0]:"),
        ({"allow_origins": ["*"], "allow_headers": ["a b"]}, "cors.allow_headers[0]:"),
        ({"allow_origins": ["*"], "max_age_s": 1e9}, "cors.max_age_s: must be an integer"),
        ({"allow_origins": ["*"], "bogus": 1}, "cors: unknown key \"bogus\""),
    ]
    for cors, want in cases:
        path = str(tmp_path / "c.json")
        write_config(path, {"cors": cors, "endpoints": [ep("/x", [be("a", "http://127.0.0.1:9/")])]})
        p = run_cli(fanout_bin, ["--check", "-c", path])
        assert p.returncode == 1, (cors, p)
        assert want in p.stderr, (cors, want, p.stderr)
