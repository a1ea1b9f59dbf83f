"""Deadlines, required backends, X-Timeout-Ms, aborted calls closing backend connections."""

import signal
import socket
import struct
import threading
import time

import pytest

from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code

# Noise allowance on top of a deadline: ASan build, 2 noisy cores. Still far below the
# next larger timeout in play, so a missed deadline fails.
SLACK = 0.25


def fanout_config(b):
    return {
        "timeout_ms": 3000,
        "endpoints": [
            ep("/api/deadline/{tag}", [
                be("fast", b.url(b.route({"f": 1}))),
                be("hang", b.url("/hang?tag={tag}")),
            ], timeout_ms=200),
            ep("/api/reqfail/{tag}", [
                be("other", b.url("/delay/1500?tag={tag}")),
                be("req", b.url(b.route({"e": 1}, status=500, delay_ms=50)), required=True),
            ]),
            ep("/api/reqfail_report/{tag}", [
                be("other", b.url("/delay/1500?tag={tag}")),
                be("req", b.url(b.route({"e": 1}, status=500, delay_ms=50)), required=True),
                be("ok", b.url(b.route({"o": 1}))),
            ], report=True),
            ep("/api/reqtimeout", [
                be("req", b.url("/hang"), required=True, timeout_ms=100),
                be("other", b.url(b.route({"o": 1}))),
            ]),
            ep("/api/reqdeadline", [
                be("other", b.url(b.route({"o": 1}))),
                be("req", b.url("/hang"), required=True),
            ], timeout_ms=150),
            ep("/api/none", [
                be("a", b.url("/status/500")),
                be("b", b.url("/garbage")),
            ]),
            ep("/api/none_timeout", [
                be("a", b.url("/status/500")),
                be("b", b.url("/hang"), timeout_ms=100),
            ]),
            ep("/api/none_report", [
                be("a", b.url("/status/502")),
            ], report=True),
            ep("/api/xtimeout/{tag}", [
                be("fast", b.url(b.route({"f": 1}))),
                be("hang", b.url("/hang?tag={tag}")),
            ], timeout_ms=1000),
            ep("/api/xtimeout_raise", [
                be("fast", b.url(b.route({"f": 1}))),
                be("hang", b.url("/hang")),
            ], timeout_ms=250),
            ep("/api/fastone", [be("a", b.url(b.route({"a": 1})))]),
            ep("/api/echo_timeout/{tag}", [
                be("e", b.url("/echo?tag={tag}")),
                be("own", b.url("/echo?tag={tag}&own=1"), timeout_ms=100),
            ], timeout_ms=400),
            ep("/api/disconnect/{tag}", [
                be("hang", b.url("/hang?tag={tag}")),
            ]),
        ],
    }


def test_deadline_gives_partial_answer_and_closes_hanging_call(fo, backend):
    t = tag()
    r = fo.get("/api/deadline/" + t)
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "false", r
    assert r.pairs() == [("fast", {"f": 1})]
    assert 0.19 <= r.elapsed < 0.2 + SLACK, "deadline 200 ms, answered after %.0f ms" % (
        r.elapsed * 1000)
    req = backend.wait_request(t, 1)
    c = backend.wait_closed(req.conn_id, 1.0)
    assert c.closed_by == "peer"
    assert c.closed_at - req.at < 0.2 + SLACK, "hanging call closed %.0f ms after it started" % (
        (c.closed_at - req.at) * 1000)


def test_required_failure_is_502_and_fails_fast(fo, backend):
    t = tag()
    r = fo.get("/api/reqfail/" + t)
    assert r.status == 502, r
    assert error_code(r) == "backend_failed"
    assert r.json()["error"]["backend"] == "req", r
    assert r.elapsed < 0.05 + SLACK + 0.2, "required failure at 50 ms answered after %.0f ms" % (
        r.elapsed * 1000)
    # The other call (1.5 s) is aborted: the backend sees its connection closed.
    req = backend.wait_request(t, 1)
    c = backend.wait_closed(req.conn_id, 1.0)
    assert c.closed_by == "peer" and c.closed_at - req.at < 1.0, c


def test_required_failure_report_shows_cancelled_calls(fo, backend):
    t = tag()
    r = fo.get("/api/reqfail_report/" + t)
    assert r.status == 502, r
    doc = r.json()
    assert doc["error"]["code"] == "backend_failed" and doc["error"]["backend"] == "req", r
    rep = doc["_fanout"]
    assert rep["complete"] is False, rep
    bs = rep["backends"]
    assert list(bs) == ["other", "req", "ok"], rep
    assert bs["other"]["error"] == "cancelled", rep
    assert bs["req"]["error"] == "status" and bs["req"]["status"] == 500, rep
    assert bs["ok"]["status"] == 200 and "error" not in bs["ok"], rep
    assert r.elapsed < 0.05 + SLACK + 0.2, r


def test_required_timeout_is_504(fo):
    r = fo.get("/api/reqtimeout")
    assert r.status == 504, r
    assert error_code(r) == "backend_timeout"
    assert r.json()["error"]["backend"] == "req", r
    assert 0.09 <= r.elapsed < 0.1 + SLACK, r


def test_required_cut_by_the_deadline_is_504(fo):
    r = fo.get("/api/reqdeadline")
    assert r.status == 504, r
    assert error_code(r) == "backend_timeout"
    assert r.json()["error"]["backend"] == "req", r
    assert 0.14 <= r.elapsed < 0.15 + SLACK, r


def test_none_succeeded_is_502_naming_the_first_failure(fo):
    r = fo.get("/api/none")
    assert r.status == 502, r
    assert error_code(r) == "backend_failed"
    assert r.json()["error"]["backend"] == "a", r


def test_none_succeeded_with_a_timeout_is_504(fo):
    r = fo.get("/api/none_timeout")
    assert r.status == 504, r
    assert error_code(r) == "backend_timeout"
    assert r.json()["error"]["backend"] == "a", r


def test_none_succeeded_error_carries_report(fo):
    r = fo.get("/api/none_report")
    assert r.status == 502, r
    assert error_code(r) == "backend_failed"
    doc = r.json()
    assert doc["error"]["backend"] == "a", r
    rep = doc["_fanout"]
    assert rep["complete"] is False, rep
    assert rep["backends"]["a"]["error"] == "status" and rep["backends"]["a"]["status"] == 502


def test_client_timeout_lowers_the_deadline(fo, backend):
    t = tag()
    r = fo.get("/api/xtimeout/" + t, headers={"X-Timeout-Ms": "150"})
    assert r.status == 200, r
    assert r.pairs() == [("fast", {"f": 1})]
    assert r.headers.get("X-Fanout-Complete") == "false", r
    assert 0.14 <= r.elapsed < 0.15 + SLACK, "X-Timeout-Ms 150, answered after %.0f ms" % (
        r.elapsed * 1000)
    req = backend.wait_request(t, 1)
    backend.wait_closed(req.conn_id, 1.0)


def test_client_timeout_does_not_raise_the_deadline(fo):
    r = fo.get("/api/xtimeout_raise", headers={"X-Timeout-Ms": "5000"})
    assert r.status == 200, r
    assert r.pairs() == [("fast", {"f": 1})]
    assert 0.24 <= r.elapsed < 0.25 + SLACK, "endpoint 250 ms, answered after %.0f ms" % (
        r.elapsed * 1000)


def test_client_timeout_upper_bound_accepted(fo):
    r = fo.get("/api/fastone", headers={"X-Timeout-Ms": "3600000"})
    assert r.status == 200, r
    assert r.json() == {"a": {"a": 1}}


@pytest.mark.parametrize("value", ["abc", "-5", "0", "", "1.5", "0x10", "10abc", "3600001",
                                   "99999999999999999999", "1e3"])
def test_client_timeout_invalid_is_400(fo, value):
    r = fo.get("/api/fastone", headers={"X-Timeout-Ms": value})
    assert r.status == 400, (value, r)
    assert error_code(r) == "invalid_timeout", (value, r)


def _sent_timeout(req):
    v = req.header("X-Timeout-Ms")
    assert v is not None and v.isdigit(), "X-Timeout-Ms sent to backend: %r (%s)" % (v, req.line)
    return int(v)


def test_timeout_sent_to_backends(fo, backend):
    t = tag()
    r = fo.get("/api/echo_timeout/" + t)
    assert r.status == 200, r
    reqs = {("own" if q.param("own") else "e"): q for q in backend.tagged(t)}
    assert set(reqs) == {"e", "own"}, reqs
    assert 200 <= _sent_timeout(reqs["e"]) <= 400, reqs["e"].headers
    assert 50 <= _sent_timeout(reqs["own"]) <= 100, reqs["own"].headers
    # The echo shows the same header from the backend's side.
    echoed = dict((k.lower(), v) for k, v in r.json()["e"]["headers"])
    assert echoed.get("x-timeout-ms") == reqs["e"].header("X-Timeout-Ms")


def test_timeout_sent_to_backends_follows_client_deadline(fo, backend):
    t = tag()
    # A 300 ms client deadline under the endpoint's 400: "e" is sent at most 300, "own" its
    # own 100 (a budget wide enough that a busy machine still sends the call in time).
    r = fo.get("/api/echo_timeout/" + t, headers={"X-Timeout-Ms": "300"})
    assert r.status == 200, r
    reqs = {("own" if q.param("own") else "e"): q for q in backend.tagged(t)}
    assert set(reqs) == {"e", "own"}, reqs
    assert 150 <= _sent_timeout(reqs["e"]) <= 300, reqs["e"].headers
    assert 1 <= _sent_timeout(reqs["own"]) <= 100, reqs["own"].headers


def test_client_disconnect_aborts_backend_calls(fo, backend):
    t = tag()
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    s.sendall(b"GET /api/disconnect/%s HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode())
    req = backend.wait_request(t, 2)
    # A reset: the client is gone (a FIN alone may be a half-close, see test_hardening2.py).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    closed = time.monotonic()
    c = backend.wait_closed(req.conn_id, 2.5)
    assert c.closed_by == "peer", c
    assert c.closed_at - closed < 1.5, "backend call closed %.0f ms after the client left" % (
        (c.closed_at - closed) * 1000)


def test_client_disconnect_on_a_kept_alive_connection(fo, backend):
    """The connection's socket stays watched across requests: a reset during its third request
    still aborts that request's calls, and an earlier request's end did not unwatch it."""
    t = tag()
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    f = s.makefile("rb")
    for _ in range(2):
        s.sendall(b"GET /api/fastone HTTP/1.1\r\nHost: x\r\n\r\n")
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)
    s.sendall(b"GET /api/disconnect/%s HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode())
    req = backend.wait_request(t, 2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    f.close()
    s.close()
    closed = time.monotonic()
    c = backend.wait_closed(req.conn_id, 2.5)
    assert c.closed_by == "peer", c
    assert c.closed_at - closed < 1.5, "backend call closed %.0f ms after the client left" % (
        (c.closed_at - closed) * 1000)


def test_global_timeout_bounds_everything(spawn, backend):
    fo = spawn({"timeout_ms": 150, "endpoints": [
        ep("/a", [be("fast", backend.url("/json")), be("hang", backend.url("/hang"))]),
        ep("/b", [be("fast", backend.url("/json")), be("hang", backend.url("/hang"))],
           timeout_ms=1000),
    ]})
    for path in ("/a", "/b"):
        r = fo.get(path, headers={"X-Timeout-Ms": "2000"})
        assert r.status == 200, r
        assert r.pairs() == [("fast", {})]
        assert 0.14 <= r.elapsed < 0.15 + SLACK, (path, r)


def test_sigterm_lets_a_request_in_flight_finish(spawn, backend):
    t = tag()
    fo = spawn({"endpoints": [ep("/slow", [be("s", backend.url("/delay/300?tag=" + t))])]})
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", fo.get("/slow")))
    th.start()
    backend.wait_request(t, 2)
    fo.proc.send_signal(signal.SIGTERM)
    th.join(10)
    assert "r" in out, "the request in flight got no answer\n" + fo.output()
    assert out["r"].status == 200, out["r"]
    assert out["r"].json() == {"s": {"delay": 300}}
    assert "close" in out["r"].headers.get("Connection", "").lower(), out["r"]
    assert fo.wait_exit(10) == 0, fo.output()


def test_sigterm_exits_promptly_after_clients_left_mid_request(spawn, backend):
    """Clients that hang up while their calls run leave nothing in flight: a later SIGTERM
    must not wait for them."""
    fo = spawn({"endpoints": [ep("/f/{id}", [be("a", backend.url("/id/{id}"))])]})
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
        s.sendall(b"GET /f/x%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        s.close()
    r = fo.get("/f/last")  # answered after the requests above were taken in
    assert r.status == 200, r
    t0 = time.monotonic()
    fo.proc.send_signal(signal.SIGTERM)
    rc = fo.wait_exit(3)
    assert rc == 0, "SIGTERM with nothing in flight: exit %s after %.1f s\n%s" % (
        rc, time.monotonic() - t0, fo.output())
