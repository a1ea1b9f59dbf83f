"""Limits: URL and header caps, slow and idle connections, connection and call caps."""

import socket
import threading
import time

from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code

SLACK = 0.5


def read_until_closed(s, timeout):
    """Read until the peer closes; returns (bytes, seconds waited) or (bytes, None) if it
    did not close within 'timeout'."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, time.monotonic() - t0
            out += chunk
    except ConnectionResetError:
        return out, time.monotonic() - t0
    except socket.timeout:
        return out, None


def fanout_config(b):
    return {"max_url_bytes": 256, "max_headers": 12, "max_header_bytes": 2048,
            "endpoints": [ep("/x", [be("a", b.url("/json"))]),
                          ep("/x/{v}", [be("a", b.url("/json"))])]}


def test_url_under_the_cap(fo):
    assert fo.get("/x?q=" + "a" * 200).status == 200
    assert fo.get("/x/" + "a" * 200).status == 200


def test_long_path_is_414(fo):
    r = fo.get("/x/" + "a" * 400)
    assert r.status == 414, r
    assert error_code(r) == "uri_too_long", r


def test_long_query_is_414(fo):
    r = fo.get("/x?q=" + "a" * 400)  # the request target counts, query included
    assert r.status == 414, r
    assert error_code(r) == "uri_too_long", r


def test_too_many_headers_is_431(fo):
    r = fo.get("/x", headers={"X-H%d" % i: "v" for i in range(8)})
    assert r.status == 200, r
    r = fo.get("/x", headers={"X-H%d" % i: "v" for i in range(20)})
    assert r.status == 431, r
    assert error_code(r) == "too_many_headers", r


def test_head_too_large_is_431(fo):
    r = fo.get("/x", headers={"X-Big": "b" * 3000})
    assert r.status == 431, r  # libmicrohttpd's own answer
    assert fo.get("/x").status == 200


def test_slow_head_and_idle_connections_are_closed(spawn, backend):
    fo = spawn({"header_timeout_ms": 500, "idle_timeout_ms": 1000,
                "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    slow = socket.create_connection(("127.0.0.1", fo.port))
    slow.sendall(b"GET /x HTTP/1.1\r\n")  # never finishes its head
    idle = socket.create_connection(("127.0.0.1", fo.port))
    idle.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    res = {}
    th = threading.Thread(target=lambda: res.setdefault("idle", read_until_closed(idle, 5)))
    th.start()
    out, waited = read_until_closed(slow, 5)
    th.join(6)
    assert waited is not None, "a connection without a complete head stayed open 5 s"
    assert 0.4 <= waited < 0.5 + 1.0 + SLACK, "closed after %.2f s" % waited
    assert b" 200 " not in out, out
    out, waited = res["idle"]
    assert out.startswith(b"HTTP/1.1 200 "), out
    assert waited is not None, "an idle keep-alive connection stayed open 5 s"
    assert 0.9 <= waited < 1.0 + 1.0 + SLACK, "idle connection closed after %.2f s" % waited
    slow.close()
    idle.close()


def test_max_connections(spawn, backend):
    fo = spawn({"max_connections": 3, "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    conns = [fo.connect() for _ in range(3)]
    try:
        for c in conns:
            assert fo.request("GET", "/x", conn=c).status == 200
        extra = socket.create_connection(("127.0.0.1", fo.port))
        try:
            extra.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
        out, waited = read_until_closed(extra, 3)
        extra.close()
        assert waited is not None and out == b"", "connection over the cap: %r after %s" % (
            out[:100], waited)
        for c in conns:
            assert fo.request("GET", "/x", conn=c).status == 200
    finally:
        for c in conns:
            c.close()


def _hold(fo, backend, path, n):
    """Start n requests on 'path' + tag that hang at the backend; wait until all are there."""
    tags = [tag() for _ in range(n)]
    threads = []
    for t in tags:
        th = threading.Thread(target=lambda t=t: fo.get(path + t, headers={"X-Timeout-Ms": "700"}),
                              daemon=True)
        th.start()
        threads.append(th)
    for t in tags:
        backend.wait_request(t, 3)
    return threads


def test_max_inflight_calls(spawn, backend):
    fo = spawn({"max_inflight_calls": 2, "endpoints": [
        ep("/h/{tag}", [be("h", backend.url("/hang?tag={tag}"))]),
        ep("/f", [be("a", backend.url("/json"))])]})
    threads = _hold(fo, backend, "/h/", 2)
    t = tag()
    r = fo.get("/h/" + t)
    assert r.status == 503, r
    assert error_code(r) == "overloaded", r
    assert r.headers.get("Retry-After") == "1", r
    backend.assert_no_request(t, grace=0.1)
    for th in threads:
        th.join(5)
    assert fo.get("/f").status == 200


def test_max_backend_inflight(spawn, backend):
    fo = spawn({"max_backend_inflight": 1, "endpoints": [
        ep("/h/{tag}", [be("h", backend.url("/hang?tag={tag}"))])]})
    threads = _hold(fo, backend, "/h/", 1)
    t = tag()
    r = fo.get("/h/" + t)
    assert r.status == 503, r
    assert error_code(r) == "overloaded", r
    assert r.headers.get("Retry-After") == "1", r
    backend.assert_no_request(t, grace=0.1)
    for th in threads:
        th.join(5)
