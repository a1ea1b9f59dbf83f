"""Authentication per endpoint: API keys and JWTs, checked before any backend call.

The module's fanout has a top-level api_keys auth (the default) and endpoints that use it,
turn it off ("auth": null) or replace it with a jwt auth. Keys, JWKS and tokens are made by the
tests (jwtkit.py: openssl command line and the standard library). Every refusal is checked for
its status, its JSON error body, its WWW-Authenticate challenge and the absence of any backend
call: each endpoint's backend URL carries the path parameter as tag=..., so a test names its
own calls.
"""

import json
import os
import signal
import tempfile
import time

import pytest

from blackbox import jwtkit
from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code, run_cli, write_config
from blackbox.metrics import scrape

WORK = tempfile.mkdtemp(prefix="fanout-auth-")
KEYS = {}
API_KEY = "k3y-for-the-mobile-app"

JWT = {"alg": ["RS256", "ES256", "HS256"], "keys_file": os.path.join(WORK, "jwks.json"),
       "issuer": "https://issuer.test", "audience": "fanout-test", "leeway_s": 5,
       "forward_claims": {"X-User": "sub", "X-Scope": "scope"}}


def keys() -> jwtkit.Keys:
    if "k" not in KEYS:
        KEYS["k"] = jwtkit.Keys(WORK)
        write_config(os.path.join(WORK, "jwks.json"), KEYS["k"].jwks())
        write_config(os.path.join(WORK, "keys.json"), {"keys": [
            {"name": "mobile", "sha256": jwtkit.sha256_hex(API_KEY)},
            {"name": "web", "sha256": jwtkit.sha256_hex("another-key")}]})
    return KEYS["k"]


def fanout_config(backend):
    keys()
    echo = backend.url("/echo?tag={t}")
    scoped = dict(JWT, required_claims={"scope": ["read", "write"], "tenant": "acme"})
    return {
        "auth": {"api_keys": {"header": "X-Api-Key", "keys_file": os.path.join(WORK, "keys.json")}},
        "endpoints": [
            ep("/key/{t}", [be("e", echo + "&who={auth.name}",
                               headers={"X-Caller": "{auth.name}"})]),
            ep("/open/{t}", [be("e", echo)], auth=None),
            ep("/jwt/{t}", [be("e", echo + "&sub={jwt.sub}",
                               headers={"X-User": "configured", "X-Tenant": "{jwt.tenant|none}",
                                        "X-Name": "{jwt.name|-}"})], auth={"jwt": JWT}),
            ep("/scoped/{t}", [be("e", echo + "&scope={jwt.scope}")], auth={"jwt": scoped}),
            ep("/fwdall/{t}", [be("e", echo)], forward_headers=["*"]),
            ep("/fwdjwt/{t}", [be("e", echo)], auth={"jwt": JWT}, forward_headers=["*"]),
            ep("/fwdnamed/{t}", [be("e", echo)], auth={"jwt": JWT},
               forward_headers=["Authorization"]),
        ],
    }


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def refused(fo, backend, path, t, headers, status=401, reason=None):
    r = fo.get(path % t, headers)
    assert r.status == status, r
    assert error_code(r) == ("unauthorized" if status == 401 else "forbidden"), r
    assert set(r.json()["error"]) == {"code", "message"}, r
    backend.assert_no_request(t)
    return r


# ---- API keys ------------------------------------------------------------------------------

def test_api_key_right_key_passes_and_the_name_is_logged(fo, backend):
    t = tag()
    r = fo.get("/key/%s" % t, {"X-Api-Key": API_KEY})
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.header("X-Api-Key") is None, "the client's key was forwarded: %r" % req.headers
    assert req.header("X-Caller") == "mobile", req.headers  # {auth.name} in a header
    assert req.param("who") == "mobile", req.target  # ... and in the URL
    ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("path") == "/key/" + t)
    assert ev["auth"] == "mobile", ev
    assert API_KEY not in fo.output(), "the key itself reached the log"


def test_api_key_wrong_key_is_401(fo, backend):
    r = refused(fo, backend, "/key/%s", tag(), {"X-Api-Key": API_KEY + "x"})
    assert r.headers.get("WWW-Authenticate") == 'ApiKey realm="fanout", header="X-Api-Key"', r


def test_api_key_missing_is_401_with_a_challenge_naming_the_header(fo, backend):
    r = refused(fo, backend, "/key/%s", tag(), {})
    assert r.headers.get("WWW-Authenticate") == 'ApiKey realm="fanout", header="X-Api-Key"', r


def test_api_key_twice_is_refused(fo, backend):
    t = tag()
    conn = fo.connect()
    conn.putrequest("GET", "/key/%s" % t)
    conn.putheader("X-Api-Key", API_KEY)
    conn.putheader("X-Api-Key", "another-key")
    conn.endheaders()
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 401
    backend.assert_no_request(t)


def test_auth_null_turns_the_default_off(fo, backend):
    t = tag()
    r = fo.get("/open/%s" % t)
    assert r.status == 200, r
    backend.wait_request(t)


# ---- JWT -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_jwt_valid_token_passes_and_claims_are_forwarded(fo, backend, alg):
    t = tag()
    tok = jwtkit.token(keys(), alg, jwtkit.claims(sub="user-" + alg))
    r = fo.get("/jwt/%s" % t, bearer(tok))
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.header("X-User") == "user-" + alg, req.headers  # replaces the configured one
    assert [k for k, _ in req.headers].count("X-User") == 1, req.headers
    assert req.header("X-Scope") == "read write", req.headers
    assert req.header("Authorization") is None, "Authorization reached a backend: %r" % req.headers
    assert req.param("sub") == "user-" + alg, req.target  # {jwt.sub} in the URL
    assert req.header("X-Tenant") == "none", req.headers  # an absent claim takes the default


def test_jwt_claim_placeholders_are_encoded_and_checked(fo, backend):
    t = tag()
    tok = jwtkit.token(keys(), "HS256", jwtkit.claims(sub="a/b?c=d&e", tenant="t1"))
    r = fo.get("/jwt/%s" % t, bearer(tok))
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert "sub=a%2Fb%3Fc%3Dd%26e" in req.target, req.target  # one value, never a new parameter
    assert req.header("X-Tenant") == "t1"
    # A claim with CR LF in a header placeholder: the call is never sent (outcome shape).
    t = tag()
    tok = jwtkit.token(keys(), "HS256", jwtkit.claims(name="x\r\nX-Evil: 1"))
    r = fo.get("/jwt/%s" % t, bearer(tok))
    assert r.status == 502, r
    backend.assert_no_request(t)


def test_jwt_audience_may_be_an_array(fo, backend):
    t = tag()
    tok = jwtkit.token(keys(), "ES256", jwtkit.claims(aud=["other", "fanout-test"]))
    assert fo.get("/jwt/%s" % t, bearer(tok)).status == 200
    backend.wait_request(t)


def test_jwt_missing_is_401_with_a_bearer_challenge(fo, backend):
    r = refused(fo, backend, "/jwt/%s", tag(), {})
    assert r.headers.get("WWW-Authenticate") == 'Bearer realm="fanout"', r
    r = refused(fo, backend, "/jwt/%s", tag(), {"Authorization": "Basic YTpi"})
    assert r.headers.get("WWW-Authenticate") == 'Bearer realm="fanout"', r


def bad_tokens():
    """(name, token, reason) for every refusal of a token."""
    k = keys()
    now = int(time.time())
    rs = lambda **kw: jwtkit.token(k, "RS256", jwtkit.claims(**kw))  # noqa: E731
    good = rs()
    head, body, sig = good.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    return [
        ("expired", rs(exp=now - 60), "expired"),
        ("not yet valid (nbf)", rs(nbf=now + 60), "not_yet_valid"),
        ("issued in the future (iat)", rs(iat=now + 60), "not_yet_valid"),
        ("wrong issuer", rs(iss="https://evil.test"), "issuer"),
        ("no issuer", rs(iss=None), "issuer"),
        ("wrong audience", rs(aud="someone-else"), "audience"),
        ("wrong audience array", rs(aud=["a", "b"]), "audience"),
        ("unknown kid", jwtkit.token(k, "RS256", jwtkit.claims(), kid="nope"), "unknown_kid"),
        ("alg none", jwtkit.token(k, "none", jwtkit.claims(), header={"alg": "none"}), "alg"),
        ("alg none with a kid", jwtkit.token(k, "none", jwtkit.claims(),
                                             header={"alg": "none", "kid": "rsa1"}) + "AAAA",
         "alg"),
        ("alg not allowed", jwtkit.token(k, "HS256", jwtkit.claims(),
                                         header={"alg": "HS512", "kid": "hs1"}), "alg"),
        # The RSA public key's PEM used as the HMAC secret, kid of the RSA key.
        ("HS256 with the RSA public key", jwtkit.token(k, "HS256", jwtkit.claims(), kid="rsa1",
                                                       hs_key=k.rsa_public_pem), "alg"),
        ("ES256 token naming the RSA key", jwtkit.token(k, "ES256", jwtkit.claims(), kid="rsa1"),
         "alg"),
        ("bad signature", ".".join([head, body, flipped]), "bad_signature"),
        ("claims changed", ".".join([head, jwtkit.b64u(b'{"sub":"root","iss":"https://issuer.test",'
                                                       b'"aud":"fanout-test"}'), sig]),
         "bad_signature"),
        ("HS256 with another secret", jwtkit.token(k, "HS256", jwtkit.claims(),
                                                   hs_key=b"x" * 32), "bad_signature"),
        ("garbage 6 KB", "".join(chr(33 + (i * 7) % 90) for i in range(6 * 1024)), "malformed"),
        ("not base64", "!!!.@@@.###", "malformed"),
        ("two segments", head + "." + body, "malformed"),
        ("four segments", good + ".AAAA", "malformed"),
        ("huge exp", rs(exp=int("9" * 400)), "malformed"),
        ("exp as a string", rs(exp="tomorrow"), "malformed"),
        ("header not JSON", jwtkit.b64u(b"{alg") + "." + body + "." + sig, "malformed"),
        ("duplicate alg", jwtkit.b64u(b'{"alg":"HS256","alg":"RS256","kid":"rsa1"}') + "." + body +
         "." + sig, "malformed"),
        ("crit header", jwtkit.token(k, "HS256", jwtkit.claims(),
                                     header={"alg": "HS256", "kid": "hs1", "crit": ["x"], "x": 1}),
         "malformed"),
    ]


def test_jwt_refusals_each_401_with_its_reason_and_no_call(fo, backend):
    before = scrape(fo)
    want = {}
    for name, tok, reason in bad_tokens():
        t = tag()
        r = fo.get("/jwt/%s" % t, bearer(tok))
        assert r.status == 401, (name, r)
        assert error_code(r) == "unauthorized", (name, r)
        assert r.headers.get("WWW-Authenticate") == \
            'Bearer realm="fanout", error="invalid_token"', (name, r)
        backend.assert_no_request(t, grace=0.05)
        ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("path") == "/jwt/" + t)
        assert ev.get("auth_failed") == reason, (name, ev)
        want[reason] = want.get(reason, 0) + 1
    after = scrape(fo)
    for reason, n in want.items():
        got = after.get("fanout_auth_failures_total", reason=reason) - \
            before.get("fanout_auth_failures_total", reason=reason)
        assert got == n, (reason, got, n)


def test_jwt_longer_than_the_head_cap_is_431(fo, backend):
    t = tag()
    tok = jwtkit.token(keys(), "RS256", jwtkit.claims(pad="x" * 9000))
    r = fo.get("/jwt/%s" % t, bearer(tok))
    assert r.status == 431, r
    backend.assert_no_request(t)


def test_jwt_claim_with_crlf_is_refused(fo, backend):
    for sub in ("alice\r\nX-Evil: 1", "alice\nx", "a\u0000b", "tab\tok"):
        t = tag()
        r = fo.get("/jwt/%s" % t, bearer(jwtkit.token(keys(), "ES256", jwtkit.claims(sub=sub))))
        if sub == "tab\tok":  # HTAB is allowed in a field value
            assert r.status == 200, r
            assert backend.wait_request(t).header("X-User") == sub
            continue
        assert r.status == 401, (sub, r)
        backend.assert_no_request(t)
        ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("path") == "/jwt/" + t)
        # libjwt 1.x cannot read a claims text with \u0000 at all: malformed.
        assert ev.get("auth_failed") == ("malformed" if "\u0000" in sub else "claim_value"), ev


def test_required_claims(fo, backend):
    k = keys()
    ok = [(jwtkit.claims(scope="admin read write", tenant="acme"), "admin read write"),
          (jwtkit.claims(scope=["write", "read"], tenant="acme"), "write read")]
    for c, scope in ok:
        t = tag()
        r = fo.get("/scoped/%s" % t, bearer(jwtkit.token(k, "HS256", c)))
        assert r.status == 200, (c, r)
        assert backend.wait_request(t).param("scope") == scope  # an array joined with spaces
    bad = [jwtkit.claims(scope="read", tenant="acme"),
           jwtkit.claims(scope="read writer", tenant="acme"),
           jwtkit.claims(scope=["read"], tenant="acme"),
           jwtkit.claims(tenant="other"),
           jwtkit.claims(tenant=None)]
    before = scrape(fo).get("fanout_auth_failures_total", reason="claims")
    for c in bad:
        r = refused(fo, backend, "/scoped/%s", tag(), bearer(jwtkit.token(k, "RS256", c)), 403)
        assert r.headers.get("WWW-Authenticate") == \
            'Bearer realm="fanout", error="insufficient_scope"', r
    # An invalid token stays 401 even when its claims would not match.
    refused(fo, backend, "/scoped/%s", tag(),
            bearer(jwtkit.token(k, "RS256", jwtkit.claims(scope="none", exp=1))), 401)
    after = scrape(fo).get("fanout_auth_failures_total", reason="claims")
    assert after - before == len(bad)


def test_forward_headers_star_leaves_the_credentials_out(fo, backend):
    t = tag()
    r = fo.get("/fwdall/%s" % t, {"X-Api-Key": API_KEY, "X-Other": "1"})
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.header("X-Other") == "1", req.headers  # "*" forwards the client's fields ...
    assert req.header("X-Api-Key") is None, req.headers  # ... but not the route's API key
    t = tag()
    tok = jwtkit.token(keys(), "HS256", jwtkit.claims())
    assert fo.get("/fwdjwt/%s" % t, dict(bearer(tok), **{"X-Other": "2"})).status == 200
    req = backend.wait_request(t)
    assert req.header("X-Other") == "2" and req.header("Authorization") is None, req.headers
    # Named, Authorization is forwarded: the endpoint asked for it.
    t = tag()
    assert fo.get("/fwdnamed/%s" % t, bearer(tok)).status == 200
    assert backend.wait_request(t).header("Authorization") == "Bearer " + tok


def test_api_key_does_not_open_a_jwt_endpoint(fo, backend):
    refused(fo, backend, "/jwt/%s", tag(), {"X-Api-Key": API_KEY})


# ---- keys files: reload and --check --------------------------------------------------------

def test_sighup_rereads_the_keys_file(spawn, backend, tmp_path):
    """Also: a relative keys_file is read from the config file's folder."""
    kf = str(tmp_path / "keys.json")
    write_config(kf, {"keys": [{"name": "old", "sha256": jwtkit.sha256_hex("old-key")}]})
    fo = spawn({"auth": {"api_keys": {"header": "X-Key", "keys_file": "keys.json"}},
                "endpoints": [ep("/k/{t}", [be("e", backend.url("/echo?tag={t}"))])]})
    assert fo.get("/k/%s" % tag(), {"X-Key": "old-key"}).status == 200
    write_config(kf, {"keys": [{"name": "new", "sha256": jwtkit.sha256_hex("new-key")}]})
    fo.proc.send_signal(signal.SIGHUP)
    fo.wait_event(lambda e: e.get("event") == "reloaded", 5)
    assert fo.get("/k/%s" % tag(), {"X-Key": "new-key"}).status == 200
    refused(fo, backend, "/k/%s", tag(), {"X-Key": "old-key"})
    # A broken keys file: reload_failed naming it, the running keys stay.
    write_config(kf, {"keys": [{"name": "new", "sha256": "not hex"}]})
    fo.proc.send_signal(signal.SIGHUP)
    ev = fo.wait_event(lambda e: e.get("event") == "reload_failed", 5)
    assert "auth.api_keys.keys_file" in ev["errors"] and kf in ev["errors"], ev
    assert fo.get("/k/%s" % tag(), {"X-Key": "new-key"}).status == 200


def test_top_level_auth_covers_the_batch(spawn, backend, tmp_path):
    kf = str(tmp_path / "keys.json")
    write_config(kf, {"keys": [{"name": "batcher", "sha256": jwtkit.sha256_hex("b-key")}]})
    fo = spawn({"auth": {"api_keys": {"keys_file": kf}},
                "aggregate": {"allow_hosts": ["127.0.0.1:%d" % backend.port]}})
    t = tag()
    body = {"requests": {"a": {"url": backend.url("/json?tag=%s" % t)}}}
    r = fo.post("/aggregate", body)
    assert r.status == 401 and error_code(r) == "unauthorized", r
    assert r.headers.get("WWW-Authenticate") == 'ApiKey realm="fanout", header="X-Api-Key"', r
    backend.assert_no_request(t)
    r = fo.post("/aggregate", body, {"X-Api-Key": "b-key"})
    assert r.status == 200, r
    backend.wait_request(t)
    assert fo.get("/health").status == 200  # probes are never behind an auth


def check_errors(fanout_bin, tmp_path, auth, files):
    for name, doc in files.items():
        write_config(str(tmp_path / name), doc)
    cfg = {"endpoints": [ep("/x", [be("a", "http://127.0.0.1:9/")], auth=auth)]}
    path = str(tmp_path / "cfg.json")
    write_config(path, cfg)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1, p
    return p.stderr


def test_check_names_each_bad_key_or_file(fanout_bin, tmp_path):
    k = keys()
    jwt = lambda **kw: {"jwt": dict({"alg": ["RS256"], "keys_file": "j.json"}, **kw)}  # noqa
    rsa = k.jwk_rsa()
    cases = [
        ({"api_keys": {"keys_file": "missing.json"}}, {},
         "endpoints[0].auth.api_keys.keys_file: cannot read %s/missing.json" % tmp_path),
        ({"api_keys": {"keys_file": "k.json"}}, {"k.json": {"keys": [{"name": "a", "sha256": "ab"}]}},
         "keys[0].sha256: must be 64 hex digits"),
        ({"api_keys": {"keys_file": "k.json"}},
         {"k.json": {"keys": [{"name": "a", "sha256": "a" * 64}, {"name": "a", "sha256": "b" * 64}]}},
         "keys[1].name: duplicate"),
        ({"api_keys": {"keys_file": "k.json", "header": "X Bad"}}, {"k.json": {"keys": []}},
         "endpoints[0].auth.api_keys.header: must be a header name"),
        ({"basic": {}}, {}, "endpoints[0].auth: must be"),
        (jwt(alg=["none"]), {"j.json": {"keys": [rsa]}}, "endpoints[0].auth.jwt.alg[0]: \"none\""),
        (jwt(alg=["RS1"]), {"j.json": {"keys": [rsa]}}, "endpoints[0].auth.jwt.alg[0]:"),
        (jwt(alg=["ES256"]), {"j.json": {"keys": [rsa]}}, "ES256: no key in keys_file"),
        (jwt(), {"j.json": "not json"}, "endpoints[0].auth.jwt.keys_file: %s/j.json: not valid JSON"
         % tmp_path),
        (jwt(), {"j.json": {"keys": [dict(rsa, n=rsa["n"][:200])]}}, "keys[0].n: an RSA key of"),
        (jwt(), {"j.json": {"keys": [dict(rsa, n="***")]}}, "keys[0].n: not base64url"),
        (jwt(), {"j.json": {"keys": [dict(rsa, d="AAAA")]}}, "keys[0].d: a private key member"),
        (jwt(), {"j.json": {"keys": [rsa, dict(rsa)]}}, "keys[1].kid: duplicate"),
        (jwt(), {"j.json": {"keys": [dict(rsa, kid=None)]}}, "keys[0].kid: must be"),
        (jwt(), {"j.json": {"keys": [rsa, {k2: v for k2, v in rsa.items() if k2 != "kid"}]}},
         "keys[1].kid: needed"),
        (jwt(alg=["ES256"]), {"j.json": {"keys": [dict(k.jwk_ec(), y=k.jwk_ec()["x"])]}},
         "keys[0]: x, y is not a point on P-256"),
        (jwt(alg=["HS256"]), {"j.json": {"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}},
         "keys[0].k: a secret of 5 bytes"),
        (jwt(alg=["HS256"]), {"j.json": {"keys": [{"kty": "oct", "k": jwtkit.b64u(b"x" * 32),
                                                    "alg": "RS256"}]}},
         "keys[0].alg: not an algorithm"),
        (jwt(forward_claims={"Host": "sub"}), {"j.json": {"keys": [rsa]}},
         "endpoints[0].auth.jwt.forward_claims: \"Host\" cannot be"),
        (jwt(required_claims={"scope": [1]}), {"j.json": {"keys": [rsa]}},
         "endpoints[0].auth.jwt.required_claims.scope:"),
        (jwt(leeway_s=-1), {"j.json": {"keys": [rsa]}}, "endpoints[0].auth.jwt.leeway_s:"),
        (jwt(extra=1), {"j.json": {"keys": [rsa]}}, "endpoints[0].auth.jwt: unknown key \"extra\""),
        (jwt(forward_claims={"X-A": "sub", "x-a": "iss"}), {"j.json": {"keys": [rsa]}},
         "\"x-a\" cannot be a forwarded header"),
    ]
    for auth, files, want in cases:
        err = check_errors(fanout_bin, tmp_path, auth, files)
        assert want in err, (auth, want, err)
    path = str(tmp_path / "ph.json")
    write_config(path, {"endpoints": [ep("/x", [be("a", "http://127.0.0.1:9/?k={auth.key}")])]})
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1 and "has only {auth.name}" in p.stderr, p
