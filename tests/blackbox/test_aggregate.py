"""The ad-hoc batch, POST /aggregate: calls, raw bodies, the allow_hosts rule, refusals."""

import json
import socket
import urllib.parse

import pytest

from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code

SLACK = 0.25
MAX_BODY = 4096


def fanout_config(b):
    return {
        "timeout_ms": 2000,
        "max_body_bytes": MAX_BODY,
        "aggregate": {"allow_hosts": ["127.0.0.1:%d" % b.port], "max_requests": 4,
                      "timeout_ms": 500},
        "endpoints": [ep("/api/x", [be("a", b.url("/json"))])],
    }


def batch(fo, doc, **kw):
    return fo.post("/aggregate", doc, **kw)


def test_batch_calls_with_method_headers_and_raw_body(fo, backend):
    t = tag()
    # The body value as the client writes it: odd spacing, a 20-digit number, a trailing zero,
    # an escape and raw UTF-8. It must reach the backend byte for byte.
    raw_value = ('{"n": 12345678901234567890,  "s":"\\u00e9 \u00e9",\n "f": 1.50, "l": []}'
                 .encode())
    text = (b'{"requests": {"z": {"url": "%s", "method": "POST", "headers": {"X-Tag": "a"},'
            b' "body": %s}, "a": {"url": "%s"}}}'
            % (backend.url("/echo?tag=%s&who=z" % t).encode(), raw_value,
               backend.url("/bignum?tag=%s&who=a" % t).encode()))
    r = batch(fo, text)
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    assert r.keys() == ["z", "a"], r
    assert b"12345678901234567890" in r.body
    reqs = {q.param("who"): q for q in backend.tagged(t)}
    z, a = reqs["z"], reqs["a"]
    assert z.method == "POST", z.line
    assert z.header("X-Tag") == "a", z.headers
    assert (z.header("Content-Type") or "").startswith("application/json"), z.headers
    assert z.body == raw_value, z.body
    assert z.header("X-Timeout-Ms") is not None and 1 <= int(z.header("X-Timeout-Ms")) <= 500
    echo = r.json()["z"]
    assert echo["method"] == "POST" and echo["body"] == raw_value.decode(), echo
    assert a.method == "GET" and a.body == b"", a


def test_batch_report_and_merge(fo, backend):
    doc = {"report": True, "requests": {
        "m": {"url": backend.url("/json?body=" + urllib.parse.quote('{"x":1,"y":2}')),
              "merge": True},
        "s": {"url": backend.url("/status/503")},
        "slow": {"url": backend.url("/hang"), "timeout_ms": 100},
    }}
    r = batch(fo, doc)
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "false", r
    assert r.keys() == ["x", "y", "_fanout"], r
    rep = r.json()["_fanout"]
    assert rep["complete"] is False
    assert list(rep["backends"]) == ["m", "s", "slow"], rep
    assert rep["backends"]["m"]["status"] == 200, rep
    assert rep["backends"]["s"]["error"] == "status" and rep["backends"]["s"]["status"] == 503
    assert rep["backends"]["slow"]["error"] == "timeout", rep
    assert r.elapsed < 0.1 + SLACK, r


def test_batch_required_failure_is_502(fo, backend):
    r = batch(fo, {"requests": {"a": {"url": backend.url("/json")},
                                "b": {"url": backend.url("/status/500"), "required": True}}})
    assert r.status == 502, r
    assert error_code(r) == "backend_failed"
    assert r.json()["error"]["backend"] == "b", r


def test_batch_deadline(fo, backend):
    r = batch(fo, {"timeout_ms": 150, "requests": {"a": {"url": backend.url("/json")},
                                                   "h": {"url": backend.url("/hang")}}})
    assert r.status == 200, r
    assert r.pairs() == [("a", {})]
    assert 0.14 <= r.elapsed < 0.15 + SLACK, r


def test_batch_timeout_capped_by_config(fo, backend):
    r = batch(fo, {"timeout_ms": 5000, "requests": {"a": {"url": backend.url("/json")},
                                                    "h": {"url": backend.url("/hang")}}})
    assert r.status == 200, r
    assert 0.49 <= r.elapsed < 0.5 + SLACK, "config caps batches at 500 ms: %.0f ms" % (
        r.elapsed * 1000)


def test_redirect_not_followed(fo, backend):
    t = tag()
    target = "/json?tag=%s-followed" % t
    doc = {"report": True, "requests": {
        "ok": {"url": backend.url("/json")},
        "r": {"url": backend.url("/redirect?tag=%s&to=%s" % (t, urllib.parse.quote(target,
                                                                                   safe="")))},
    }}
    r = batch(fo, doc)
    assert r.status == 200, r
    assert r.keys() == ["ok", "_fanout"], r
    rep = r.json()["_fanout"]["backends"]["r"]
    assert rep["error"] == "status" and rep["status"] == 302, rep
    backend.wait_request(t, 1)
    backend.assert_no_request(t + "-followed", grace=0.2)


def refused_urls(port):
    return [
        "http://127.1:%d/echo" % port,
        "http://0x7f.1:%d/echo" % port,
        "http://0x7f000001:%d/echo" % port,
        "http://2130706433:%d/echo" % port,
        "http://0177.0.0.1:%d/echo" % port,
        "http://127.0.0.1.:%d/echo" % port,
        "http://[::1]:%d/echo" % port,
        "http://[::ffff:127.0.0.1]:%d/echo" % port,
        "http://localhost:%d/echo" % port,
        "http://user@127.0.0.1:%d/echo" % port,
        "http://user:pw@127.0.0.1:%d/echo" % port,
        "http://127.0.0.1:%d@127.0.0.1:%d/echo" % (port, port),
        "http://127.0.0.1:%d/echo" % (port + 1 if port < 65535 else port - 1),
        "http://127.0.0.1:0%d/echo" % port,
        "http://127.0.0.1/echo",
        "https://127.0.0.1:%d/echo" % (port + 1 if port < 65535 else port - 1),
    ]


def test_ssrf_forms_are_403_and_nothing_is_called(fo, backend):
    for url in refused_urls(backend.port):
        t = tag()
        doc = {"requests": {"ok": {"url": backend.url("/json?tag=" + t)},
                            "bad": {"url": url + "?tag=" + t}}}
        r = batch(fo, doc)
        assert r.status == 403, (url, r)
        assert error_code(r) == "host_not_allowed", (url, r)
        backend.assert_no_request(t, grace=0.05)
    backend.assert_no_request("never", grace=0.15)  # a late call would show up in the checks


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:%d/x", "file:///etc/passwd", "gopher://x/",
                                 "127.0.0.1:%d/x", "http:///x", "http://", ""])
def test_non_http_urls_are_refused(fo, backend, url):
    if "%d" in url:
        url = url % backend.port
    t = tag()
    r = batch(fo, {"requests": {"ok": {"url": backend.url("/json?tag=" + t)}, "bad": {"url": url}}})
    assert r.status in (400, 403), (url, r)
    assert error_code(r) in ("invalid_batch", "host_not_allowed"), (url, r)
    backend.assert_no_request(t, grace=0.1)


@pytest.mark.parametrize("body", [b"{", b"not json", b"", b'{"requests": {"a": {"url": "x"}}',
                                  b'{"requests": {}} trailing', b"\xff\xfe{}"])
def test_invalid_json_is_400(fo, body):
    r = batch(fo, body)
    assert r.status == 400, (body, r)
    assert error_code(r) == "invalid_json", (body, r)


def invalid_batches(u):
    return [
        {},
        {"requests": {}},
        {"requests": []},
        {"requests": None},
        {"requests": {"a": {}}},
        {"requests": {"a": {"url": 5}}},
        {"requests": {"a": "http://x"}},
        {"requests": {"a": {"url": u}}, "extra": 1},
        {"requests": {"a": {"url": u, "urll": u}}},
        {"requests": {"a": {"url": u, "method": 5}}},
        {"requests": {"a": {"url": u, "method": "GET /x HTTP/1.1\r\nX:"}}},
        {"requests": {"a": {"url": u, "headers": {"X-A": "a\r\nX-B: b"}}}},
        {"requests": {"a": {"url": u, "headers": {"X-A\r\nX-B": "b"}}}},
        {"requests": {"a": {"url": u, "headers": {"X-A": 1}}}},
        {"requests": {"a": {"url": u, "headers": ["X-A: 1"]}}},
        {"requests": {"a": {"url": u, "timeout_ms": "100"}}},
        {"requests": {"a": {"url": u, "required": "yes"}}},
        {"requests": {"a": {"url": u}}, "timeout_ms": "x"},
        {"requests": {"a": {"url": u}}, "report": 1},
        [{"url": u}],
    ]


def test_invalid_batch_is_400_and_calls_nothing(fo, backend):
    for i in range(len(invalid_batches(""))):
        t = tag()
        doc = invalid_batches(backend.url("/json?tag=" + t))[i]
        r = batch(fo, doc)
        assert r.status == 400, (doc, r)
        assert error_code(r) == "invalid_batch", (doc, r)
        backend.assert_no_request(t, grace=0.02)


def test_duplicate_request_names_are_400(fo, backend):
    t = tag()
    u = json.dumps(backend.url("/json?tag=" + t))
    r = batch(fo, ('{"requests": {"a": {"url": %s}, "a": {"url": %s}}}' % (u, u)).encode())
    assert r.status == 400, r
    assert error_code(r) == "invalid_batch", r
    backend.assert_no_request(t, grace=0.1)


def test_max_requests(fo, backend):
    reqs = {"r%d" % i: {"url": backend.url("/id/%d" % i)} for i in range(4)}
    r = batch(fo, {"requests": reqs})
    assert r.status == 200, r
    assert r.keys() == ["r0", "r1", "r2", "r3"]
    t = tag()
    reqs = {"r%d" % i: {"url": backend.url("/json?tag=" + t)} for i in range(5)}
    r = batch(fo, {"requests": reqs})
    assert r.status == 400, r
    assert error_code(r) == "too_many_requests", r
    backend.assert_no_request(t, grace=0.1)


def test_body_too_large_is_413(fo, backend):
    t = tag()
    doc = {"requests": {"a": {"url": backend.url("/json?tag=" + t), "body": "x" * MAX_BODY}}}
    r = batch(fo, doc)
    assert r.status == 413, r
    assert error_code(r) == "body_too_large", r
    backend.assert_no_request(t, grace=0.1)
    # Just under the cap is fine.
    doc["requests"]["a"]["body"] = "x" * (MAX_BODY - 200)
    r = batch(fo, doc)
    assert r.status == 200, r


def test_body_too_large_refused_before_it_all_arrives(fo):
    head = (b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", fo.port), timeout=3) as s:
        s.sendall(head)
        try:
            s.sendall(b'{"requests": "' + b"x" * (MAX_BODY + 100))
        except OSError:
            pass  # fanout may answer and close before taking all of it
        out = b""
        try:
            while b"\r\n\r\n" not in out:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert out.startswith(b"HTTP/1.1 413 "), "no 413 for a 100 MB body: %r" % out[:300]


def test_wrong_method_is_405_allow_post(fo):
    r = fo.get("/aggregate")
    assert r.status == 405, r
    assert error_code(r) == "method_not_allowed", r
    assert r.headers.get("Allow") == "POST", r


def test_disabled_without_allow_hosts(spawn, backend):
    fo = spawn({"endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    t = tag()
    r = fo.post("/aggregate", {"requests": {"a": {"url": backend.url("/json?tag=" + t)}}})
    assert r.status == 404, r
    assert error_code(r) == "not_found", r
    backend.assert_no_request(t, grace=0.1)


def test_custom_path(spawn, backend):
    fo = spawn({"aggregate": {"path": "/batch", "allow_hosts": ["127.0.0.1:%d" % backend.port]},
                "endpoints": []})
    doc = {"requests": {"a": {"url": backend.url("/id/7")}}}
    r = fo.post("/batch", doc)
    assert r.status == 200, r
    assert r.json() == {"a": {"id": "7"}}
    r = fo.post("/aggregate", doc)
    assert r.status == 404, r


def test_default_max_requests_is_32(spawn, backend):
    fo = spawn({"aggregate": {"allow_hosts": ["127.0.0.1:%d" % backend.port]}, "endpoints": []})
    reqs = {"r%d" % i: {"url": backend.url("/id/%d" % i)} for i in range(32)}
    r = fo.post("/aggregate", {"requests": reqs})
    assert r.status == 200, r
    assert len(r.keys()) == 32, r
    reqs["r32"] = {"url": backend.url("/id/32")}
    r = fo.post("/aggregate", {"requests": reqs})
    assert r.status == 400, r
    assert error_code(r) == "too_many_requests", r
