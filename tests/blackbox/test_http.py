"""HTTP surface: routing errors, path parameters reaching backends, keep-alive, connection reuse."""

import concurrent.futures
import re
import string
import urllib.parse

import pytest

from blackbox.backend import Backend, tag
from blackbox.fanout import backend as be, endpoint as ep, error_code, raw


def fanout_config(b):
    return {
        "timeout_ms": 2000,
        "endpoints": [
            ep("/api/param/{tag}/{v}", [be("e", b.url("/echo/{v}?tag={tag}&q={v}"))]),
            ep("/api/ka", [be("a", b.url(b.route({"a": 1})))]),
        ],
    }


def test_unknown_path_is_404(fo):
    for path in ("/nope", "/api", "/api/param/x", "/api/param/x/y/z", "/api/ka/extra",
                 "/api/param/x/", "/api/param//y", "/API/ka"):
        r = fo.get(path)
        assert r.status == 404, (path, r)
        assert error_code(r) == "not_found", (path, r)


def test_wrong_method_is_405_with_allow(fo):
    for method in ("POST", "PUT", "DELETE"):
        r = fo.request(method, "/api/ka", body=b"")
        assert r.status == 405, (method, r)
        assert error_code(r) == "method_not_allowed", r
        assert r.headers.get("Allow") == "GET", r


def test_malformed_request_is_400(fo):
    out = raw(fo.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") or out.startswith(b"HTTP/1.0 400 "), out[:200]


UNRESERVED = string.ascii_letters + string.digits + "-._~"

# (raw segment the client sends, the value it stands for)
PARAMS = [
    ("a%0D%0Ab", b"a\r\nb"),
    ("a&b=c", b"a&b=c"),
    ("a%2Fb", b"a/b"),
    ("a%00b", b"a\x00b"),
    ("x%20y%3F%23", b"x y?#"),
    ("%C3%BC", "\u00fc".encode()),
    ("%7Bv%7D", b"{v}"),
    ("%25zz", b"%zz"),
    ("plain-._~09", b"plain-._~09"),
]


@pytest.mark.parametrize("seg,value", PARAMS, ids=[p[0] for p in PARAMS])
def test_param_reaches_backend_as_one_encoded_value(fo, backend, seg, value):
    t = tag()
    r = fo.get("/api/param/%s/%s" % (t, seg))
    assert r.status == 200, r
    reqs = backend.tagged(t)
    assert len(reqs) == 1, [q.line for q in reqs]
    q = reqs[0]
    parts = q.line.split(" ")
    assert len(parts) == 3 and parts[2] == "HTTP/1.1", q.line
    assert not any(c in q.line for c in "\r\n\x00"), q.line
    # Path: exactly one segment after /echo/, decoding to the value.
    assert q.path.startswith("/echo/"), q.line
    enc = q.path[len("/echo/"):]
    assert "/" not in enc and "?" not in enc, q.line
    assert urllib.parse.unquote_to_bytes(enc) == value, q.line
    # Query: exactly tag and q, q decoding to the value.
    fields = q.query.split("&")
    assert len(fields) == 2 and fields[0] == "tag=" + t and fields[1].startswith("q="), q.line
    assert urllib.parse.unquote_to_bytes(fields[1][2:]) == value, q.line
    # Everything but unreserved characters is encoded.
    for text in (enc, fields[1][2:]):
        assert all(c in UNRESERVED + "%" for c in text), q.line
    assert r.json()["e"]["target"] == q.target


@pytest.mark.parametrize("seg", ["..", ".", "%2E%2E", "%2e", "%zz", "%4", "%", "a%G1"])
def test_bad_param_is_400_and_calls_nothing(fo, backend, seg):
    t = tag()
    r = fo.get("/api/param/%s/%s" % (t, seg))
    assert r.status == 400, (seg, r)
    assert error_code(r) == "invalid_param", (seg, r)
    backend.assert_no_request(t, grace=0.1)


def test_keep_alive_across_answers(fo):
    conn = fo.connect()
    try:
        steps = [("GET", "/api/ka", {}, 200), ("GET", "/nope", {}, 404),
                 ("GET", "/api/ka", {"X-Timeout-Ms": "junk"}, 400),
                 ("POST", "/api/ka", {}, 405), ("GET", "/api/ka", {}, 200)]
        sock = None
        for method, path, headers, status in steps:
            r = fo.request(method, path, headers=headers, body=b"" if method == "POST" else None,
                           conn=conn)
            assert r.status == status, (method, path, r)
            assert "close" not in r.headers.get("Connection", "").lower(), (method, path, r)
            if sock is None:
                sock = conn.sock
            assert sock is not None and conn.sock is sock, \
                "fanout closed the connection after %s %s" % (method, path)
    finally:
        conn.close()


def test_backend_connections_are_reused(spawn):
    b = Backend()
    try:
        fo = spawn({"workers": 2, "endpoints": [ep("/x", [be("a", b.url("/json"))])]})
        n = 20
        for _ in range(n):
            r = fo.get("/x")
            assert r.status == 200, r
        assert b.nrequests() == n
        assert b.nconns() <= 3, "%d requests opened %d backend connections" % (n, b.nconns())
    finally:
        b.close()


def test_reused_transfers_carry_each_calls_own_url(spawn):
    """One worker keeps its transfers, with their parsed URLs, between calls: every call
    still goes to its own URL, when the next call on a transfer has another one (static,
    templated, another endpoint's) and when many run at once."""
    b = Backend()
    try:
        fo = spawn({"workers": 1, "endpoints": [
            ep("/one/{v}", [be("a", b.url("/echo/a?k=1")), be("b", b.url("/echo/b")),
                            be("t", b.url("/echo/t/{v}?v={v}"))]),
            ep("/two/{v}", [be("c", b.url("/echo/c?k=2")), be("t", b.url("/echo/u/{v}"))]),
        ]})
        want = {
            "one": lambda v: {"a": "/echo/a?k=1", "b": "/echo/b", "t": "/echo/t/%s?v=%s" % (v, v)},
            "two": lambda v: {"c": "/echo/c?k=2", "t": "/echo/u/%s" % v},
        }

        def check(i):
            name = "one" if i % 3 else "two"
            v = "v%d" % i
            r = fo.get("/%s/%s" % (name, v))
            assert r.status == 200, r
            got = {k: r.json()[k]["target"] for k in want[name](v)}
            assert got == want[name](v), (i, got)

        for i in range(60):
            check(i)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(check, range(60, 260)))
    finally:
        b.close()


def test_user_agent_is_fanouts_unless_the_call_sets_one(spawn):
    b = Backend()
    try:
        fo = spawn({"endpoints": [
            ep("/plain", [be("e", b.url("/echo"))]),
            ep("/own", [be("e", b.url("/echo"), headers={"user-agent": "mine/1"})]),
        ]})
        for _ in range(3):  # On new and on reused transfers alike.
            for path, want in (("/plain", None), ("/own", "mine/1")):
                r = fo.get(path)
                assert r.status == 200, r
                agents = [v for k, v in r.json()["e"]["headers"] if k.lower() == "user-agent"]
                assert len(agents) == 1, (path, r.json()["e"]["headers"])
                if want:
                    assert agents[0] == want, agents
                else:
                    assert re.fullmatch(r"fanout/[0-9][0-9A-Za-z.+~-]*", agents[0]), agents
    finally:
        b.close()
