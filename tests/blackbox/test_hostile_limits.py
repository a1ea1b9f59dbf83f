"""Limits (issue 6) under attack: each configured limit enforced exactly at its boundary with
the answer server-spec promises (at the cap: served; one over: refused, no backend call), a
flood of idle connections past max_connections, slowloris heads, transfers aborted at
max_response_bytes, the call budgets, and the defaults when nothing is configured.
(test_limits.py has the basic one-per-limit checks.)

The module instance runs with small limits; tests that need a limit that would disturb
others (max_connections, max_inflight_calls, max_backend_inflight) or the defaults spawn
their own instance.
"""

import json
import resource
import selectors
import socket
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from blackbox.backend import Backend
from blackbox.evil_backend import EvilBackend, shared
from blackbox.fanout import backend as be, endpoint as ep, error_code
from blackbox.promparse import parse

E = shared()
E2 = EvilBackend()  # a second backend host:port, for per-backend budgets

MAX_HEADER_BYTES = 4096
MAX_URL = 1024
MAX_HEADERS = 20
MAX_BODY = 4096
MAX_RESPONSE = 65536
MAX_DEPTH = 16
HEADER_TIMEOUT = 0.5
IDLE_TIMEOUT = 1.0
WATCHDOG = 1.5  # header timeouts are checked once a second, plus noise


def tag():
    return uuid.uuid4().hex[:12]


def fanout_config(b):
    return {
        "timeout_ms": 3000,
        "max_header_bytes": MAX_HEADER_BYTES,
        "max_url_bytes": MAX_URL,
        "max_headers": MAX_HEADERS,
        "max_body_bytes": MAX_BODY,
        "max_response_bytes": MAX_RESPONSE,
        "max_json_depth": MAX_DEPTH,
        "header_timeout_ms": int(HEADER_TIMEOUT * 1000),
        "idle_timeout_ms": int(IDLE_TIMEOUT * 1000),
        "aggregate": {"allow_hosts": [E.hostport()], "max_requests": 4},
        "endpoints": [
            ep("/api/ok", [be("ok", E.url("/json?body=" + urllib.parse.quote('{"fine":1}')))]),
            ep("/api/p/{tag}/{v}", [be("e", E.url("/json?tag={tag}"))]),
            ep("/api/resp/{mode}/{n}/{tag}", [
                be("ok", E.url("/json")),
                be("r", E.url("/big?bytes={n}&mode={mode}&tag={tag}")),
            ], report=True),
            ep("/api/deep/{n}", [be("ok", E.url("/json")), be("d", E.url("/deep?n={n}"))],
               report=True),
        ],
    }


# ---- helpers ---------------------------------------------------------------------------------

def check_next_request(fo):
    r = fo.get("/api/ok")
    assert r.status == 200, "fanout does not answer the next request: %r" % r


PROBE = b"GET /api/ok HTTP/1.1\r\nHost: x\r\n\r\n"


def closes_after(s) -> bool:
    """Whether the server closed 's' after its answer: send a probe request on it and see
    whether it is answered (kept open) or met by EOF or RST (closed). Exact however late the
    close comes, and never confused with the idle timeout closing a kept connection."""
    try:
        s.sendall(PROBE)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
            if chunk.startswith(b"HTTP/1."):
                return False
    except (BrokenPipeError, ConnectionResetError):
        return True
    except socket.timeout:
        return False  # neither answered nor closed: left open


def raw_request(port, data: bytes, timeout: float = 5.0):
    """Send one request; return (status, headers {lower: value}, body, closed_after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before taking everything
        out = b""
        closed = False
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                hdrs = {k.strip().lower(): v.strip() for k, _, v in
                        (h.partition(":") for h in lines[1:])}
                if len(body) >= int(hdrs.get("content-length", "0")):
                    closed = closes_after(s)
                    break
    assert out.startswith(b"HTTP/1."), "no answer: %r" % out[:200]
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split(" ")[1]), hdrs, body, closed


def code_of(body: bytes):
    return json.loads(body)["error"]["code"]


# ---- URL, headers, body ----------------------------------------------------------------------

def target_of_len(t, n):
    base = "/api/p/%s/" % t
    return base + "x" * (n - len(base))


def test_url_at_max_is_served_one_over_is_414(fo):
    t = tag()
    r = fo.get(target_of_len(t, MAX_URL))
    assert r.status == 200, r
    E.wait_request(t, 1)
    t = tag()
    r = fo.get(target_of_len(t, MAX_URL + 1))
    assert r.status == 414, r
    assert error_code(r) == "uri_too_long", r
    E.assert_no_request(t, grace=0.1)


def test_query_string_counts_toward_max_url(fo):
    """max_url_bytes is the request target's length, query included."""
    t = tag()
    r = fo.get("/api/p/%s/x?q=%s" % (t, "y" * MAX_URL))
    assert r.status == 414, r
    assert error_code(r) == "uri_too_long", r
    E.assert_no_request(t, grace=0.1)


def head_with_headers(t, n):
    """A GET whose head has exactly n header fields (Host included)."""
    lines = [b"GET /api/p/%s/x HTTP/1.1" % t.encode(), b"Host: x"]
    lines += [b"X-H%d: v" % i for i in range(n - 1)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_max_headers_431(fo):
    t = tag()
    status, _, body, _ = raw_request(fo.port, head_with_headers(t, MAX_HEADERS))
    assert status == 200, body
    E.wait_request(t, 1)
    t = tag()
    status, hdrs, body, _ = raw_request(fo.port, head_with_headers(t, MAX_HEADERS + 1))
    assert status == 431, body
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    assert code_of(body) == "too_many_headers", body
    E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


def test_head_over_max_header_bytes_431_and_close(fo):
    t = tag()
    ok = b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (
        t.encode(), b"a" * (MAX_HEADER_BYTES // 2))
    status, _, body, closed = raw_request(fo.port, ok)
    assert status == 200, body
    assert not closed, "a 200 closed the connection: the close check below tells nothing"
    t = tag()
    big = b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (
        t.encode(), b"a" * (MAX_HEADER_BYTES + 100))
    status, _, body, closed = raw_request(fo.port, big)
    assert status == 431, body
    assert closed, "connection left open after 431"
    E.assert_no_request(t, grace=0.1)
    # Many small headers adding up past the cap: same.
    t = tag()
    many = b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\n" % t.encode() + b"".join(
        b"X-%d: %s\r\n" % (i, b"b" * 400) for i in range(15)) + b"\r\n"
    status, _, body, _ = raw_request(fo.port, many)
    assert status == 431, body
    E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


def batch_body(t, size):
    doc = json.dumps({"requests": {"a": {"url": E.url("/json?tag=" + t)}}}).encode()
    return doc[:-1] + b" " * (size - len(doc)) + b"}"


def test_body_at_max_is_served_one_over_is_413(fo):
    t = tag()
    r = fo.post("/aggregate", batch_body(t, MAX_BODY))
    assert r.status == 200, r
    E.wait_request(t, 1)
    t = tag()
    r = fo.post("/aggregate", batch_body(t, MAX_BODY + 1))
    assert r.status == 413, r
    assert error_code(r) == "body_too_large", r
    E.assert_no_request(t, grace=0.1)


def test_chunked_body_over_max_is_413(fo):
    """No Content-Length to check up front: the cap must hold while the body arrives."""
    t = tag()
    body = batch_body(t, MAX_BODY * 3)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                      for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    status, hdrs, out, _ = raw_request(
        fo.port, b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert status == 413, out
    assert code_of(out) == "body_too_large", out
    E.assert_no_request(t, grace=0.1)
    # Under the cap, chunked works.
    t = tag()
    body = batch_body(t, MAX_BODY - 100)
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, _, out, _ = raw_request(
        fo.port, b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert status == 200, out
    check_next_request(fo)


# ---- backend responses -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["cl", "chunked", "close"])
def test_response_at_max_is_ok_one_over_is_too_large(fo, mode):
    r = fo.get("/api/resp/%s/%d/%s" % (mode, MAX_RESPONSE, tag()))
    assert r.status == 200, r
    rep = r.json()["_fanout"]["backends"]["r"]
    assert rep.get("status") == 200 and "error" not in rep, rep
    assert len(r.json()["r"]) == MAX_RESPONSE - 2
    r = fo.get("/api/resp/%s/%d/%s" % (mode, MAX_RESPONSE + 1, tag()))
    assert r.status == 200, r
    rep = r.json()["_fanout"]["backends"]["r"]
    assert rep.get("error") == "too_large", rep
    assert r.keys() == ["ok", "_fanout"], r


@pytest.mark.parametrize("mode", ["cl", "chunked"])
def test_huge_response_transfer_is_aborted(fo, mode):
    n = 64 << 20
    t = tag()
    r = fo.get("/api/resp/%s/%d/%s" % (mode, n, t))
    assert r.status == 200, r
    assert r.json()["_fanout"]["backends"]["r"].get("error") == "too_large", r
    req = E.wait_request(t, 1)
    c = E.wait_closed(req.conn_id, 5)
    assert c.closed_by == "peer", c
    assert req.sent < 16 << 20, "fanout read %d MB of a 64 MB answer capped at 64 KiB" % (
        req.sent >> 20)


def test_backend_json_depth(fo):
    r = fo.get("/api/deep/%d" % MAX_DEPTH)
    assert r.status == 200, r
    assert r.json()["_fanout"]["backends"]["d"].get("status") == 200, r
    r = fo.get("/api/deep/%d" % (MAX_DEPTH + 1))
    assert r.status == 200, r
    assert r.json()["_fanout"]["backends"]["d"].get("error") == "invalid_json", r


def nested(n):
    return "[" * n + "]" * n


def test_batch_json_depth(fo):
    # {"requests": {"a": {"body": X}}}: three levels around X.
    t = tag()
    doc = ('{"requests": {"a": {"url": "%s", "method": "POST", "body": %s}}}'
           % (E.url("/json?tag=" + t), nested(MAX_DEPTH - 3))).encode()
    r = fo.post("/aggregate", doc)
    assert r.status == 200, r
    E.wait_request(t, 1)
    t = tag()
    doc = ('{"requests": {"a": {"url": "%s", "method": "POST", "body": %s}}}'
           % (E.url("/json?tag=" + t), nested(MAX_DEPTH - 2))).encode()
    r = fo.post("/aggregate", doc)
    assert r.status == 400, r
    assert error_code(r) == "invalid_json", r
    E.assert_no_request(t, grace=0.1)


def test_batch_max_requests(fo):
    t = tag()
    r = fo.post("/aggregate", {"requests": {"r%d" % i: {"url": E.url("/json?tag=" + t)}
                                            for i in range(4)}})
    assert r.status == 200, r
    t = tag()
    r = fo.post("/aggregate", {"requests": {"r%d" % i: {"url": E.url("/json?tag=" + t)}
                                            for i in range(5)}})
    assert r.status == 400, r
    assert error_code(r) == "too_many_requests", r
    E.assert_no_request(t, grace=0.1)


# ---- slowloris: header and idle timeouts -----------------------------------------------------

def time_to_close(port, first: bytes, drip: bytes = b"", gap: float = 0.1, limit: float = 6.0):
    """Connect, send 'first', then one byte of 'drip' every 'gap' s; return seconds until the
    server closes the connection (or 'limit')."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    t0 = time.monotonic()
    try:
        if first:
            s.sendall(first)
        i = 0
        while time.monotonic() - t0 < limit:
            s.settimeout(gap)
            try:
                data = s.recv(65536)
                if not data:
                    return time.monotonic() - t0
            except socket.timeout:
                pass
            except ConnectionResetError:
                return time.monotonic() - t0
            if drip:
                try:
                    s.sendall(drip[i % len(drip):i % len(drip) + 1])
                except OSError:
                    return time.monotonic() - t0
                i += 1
        return limit
    finally:
        s.close()


def test_header_timeout_closes_slow_heads(fo):
    cases = {
        "nothing": (b"", b""),
        "half_line": (b"GET /api/ok HT", b""),
        "half_head": (b"GET /api/ok HTTP/1.1\r\nHost: x\r\nX-A: ", b""),
        "drip": (b"GET /api/ok HTTP/1.1\r\n", b"X-Drip: aaaaaaaaaaaaaaaaaaaa\r\n"),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        got = dict(zip(cases, pool.map(lambda c: time_to_close(fo.port, *c), cases.values())))
    for name, took in got.items():
        assert HEADER_TIMEOUT - 0.05 <= took <= HEADER_TIMEOUT + WATCHDOG, \
            "%s: closed after %.2f s (header_timeout %.1f s)" % (name, took, HEADER_TIMEOUT)
    check_next_request(fo)


def test_idle_keep_alive_closes_after_idle_timeout(fo):
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    try:
        # Busy for longer than header_timeout: requests keep it alive.
        for i in range(4):
            if i:
                time.sleep(0.3)  # a client pausing between requests, not synchronisation
            s.sendall(b"GET /api/ok HTTP/1.1\r\nHost: x\r\n\r\n")
            out = b""
            while b'{"ok":{"fine":1}}' not in out:
                chunk = s.recv(65536)
                assert chunk, "closed while in use"
                out += chunk
        t0 = time.monotonic()  # idle from the last answer on
        s.settimeout(IDLE_TIMEOUT + WATCHDOG + 1)
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - t0
    finally:
        s.close()
    assert data == b"", data
    assert IDLE_TIMEOUT - 0.35 <= took <= IDLE_TIMEOUT + WATCHDOG, \
        "idle connection closed after %.2f s (idle_timeout %.1f s)" % (took, IDLE_TIMEOUT)


# ---- connections -----------------------------------------------------------------------------

def test_max_connections(spawn, backend):
    limit = 500
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(2000, soft - 200)
    assert n > limit + 100, "ulimit -n %d is too low for this test" % soft
    fo = spawn({"max_connections": limit, "endpoints": [
        ep("/api/ok", [be("ok", E.url("/json"))])]})
    keep = fo.connect(timeout=5)
    socks = []
    sel = selectors.DefaultSelector()
    try:
        assert fo.request("GET", "/api/ok", conn=keep).status == 200
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", fo.port))
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
        closed = set()

        def collect(until, want):
            """Note refused connections ending (EOF or RST) until 'want' have or 'until'."""
            while time.monotonic() < until and len(closed) < want:
                for key, _ in sel.select(0.2):
                    try:
                        data = key.fileobj.recv(1)
                    except (ConnectionResetError, BlockingIOError, OSError):
                        data = b""
                    if data == b"":
                        closed.add(key.fileobj)
                        sel.unregister(key.fileobj)

        # Wait until at least all beyond the limit have been refused.
        collect(time.monotonic() + 15, n - limit)
        # Then every connection fanout does not hold (its gauge, scraped on 'keep', which it
        # holds too) must end here as well: the ones still in the backlog are refused too.
        r = fo.request("GET", "/metrics", conn=keep)
        assert r.status == 200, r
        held = int(parse(r.body.decode()).get("fanout_client_connections"))
        collect(time.monotonic() + 15, n + 1 - held)
        assert len(closed) == n + 1 - held, "fanout holds %d connections but %d of the other " \
            "%d did not end" % (held, n + 1 - held - len(closed), n + 1 - held)
        open_ = n - len(closed)
        assert len(closed) >= n - limit, "only %d of %d connections beyond max_connections=%d " \
            "were refused" % (len(closed), n - limit, limit)
        assert open_ >= limit * 0.8, "only %d connections held (max_connections %d)" % (
            open_, limit)
        # The existing keep-alive connection is still served.
        r = fo.request("GET", "/api/ok", conn=keep)
        assert r.status == 200 and r.elapsed < 1.0, r
        # A new one now is refused.
        with socket.create_connection(("127.0.0.1", fo.port), timeout=3) as s:
            s.sendall(b"GET /api/ok HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            assert data == b"", "served beyond max_connections: %r" % data[:100]
    finally:
        keep.close()
        for s in socks:
            s.close()
        sel.close()
    # Room again once the idle ones are gone.
    end = time.monotonic() + 3
    while True:
        try:
            r = fo.get("/api/ok", timeout=2)
            if r.status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < end, "not served again after the idle connections closed"
        time.sleep(0.05)


# ---- overload: backend call budgets ----------------------------------------------------------

def test_inflight_budgets_fail_fast_with_503(spawn, backend):
    fo = spawn({
        "timeout_ms": 5000,
        "max_inflight_calls": 2,
        "max_backend_inflight": 1,
        "aggregate": {"allow_hosts": [E.hostport()]},
        "endpoints": [
            ep("/api/hang/{tag}", [be("h", E.url("/hang?tag={tag}"))], timeout_ms=1500),
            ep("/api/hang2/{tag}", [be("h2", E2.url("/hang?tag={tag}"))], timeout_ms=1500),
            ep("/api/ok/{tag}", [be("ok", backend.url("/json?tag={tag}"))]),
        ]})
    results = {}

    def bg(path):
        results[path] = fo.get(path, timeout=10)

    ta, td = tag(), tag()
    threads = [threading.Thread(target=bg, args=("/api/hang/" + ta,))]
    threads[0].start()
    E.wait_request(ta, 3)
    try:
        # Same backend: over max_backend_inflight (1).
        tb = tag()
        r = fo.get("/api/hang/" + tb)
        assert r.status == 503, r
        assert error_code(r) == "overloaded", r
        assert r.headers.get("Retry-After") == "1", r
        assert r.elapsed < 0.5, r
        E.assert_no_request(tb, grace=0.05)
        # Another backend: fine, and now 2 calls are in flight.
        threads.append(threading.Thread(target=bg, args=("/api/hang2/" + td,)))
        threads[1].start()
        E2.wait_request(td, 3)
        # Over max_inflight_calls (2): any endpoint, and the batch, fail fast.
        tc = tag()
        r = fo.get("/api/ok/" + tc)
        assert r.status == 503, r
        assert error_code(r) == "overloaded", r
        assert r.headers.get("Retry-After") == "1", r
        assert backend.tagged(tc) == []
        r = fo.post("/aggregate", {"requests": {"a": {"url": E.url("/json?tag=" + tc)}}})
        assert r.status == 503, r
        assert error_code(r) == "overloaded", r
        E.assert_no_request(tc, grace=0.05)
    finally:
        for th in threads:
            th.join(10)
    assert results["/api/hang/" + ta].status == 504, results
    assert results["/api/hang2/" + td].status == 504, results
    # Budgets are given back: admitted again.
    t = tag()
    r = fo.get("/api/ok/" + t)
    assert r.status == 200, r
    r = fo.get("/api/hang/" + t, headers={"X-Timeout-Ms": "50"})
    assert r.status == 504, r


# ---- defaults --------------------------------------------------------------------------------

def test_defaults(spawn):
    """Nothing configured: max_headers 100, max_url_bytes 4096, max_body_bytes 1 MiB,
    aggregate.max_requests 32."""
    fo = spawn({"aggregate": {"allow_hosts": [E.hostport()]},
                "endpoints": [ep("/api/p/{tag}/{v}", [be("e", E.url("/json?tag={tag}"))])]})
    t = tag()
    assert raw_request(fo.port, head_with_headers(t, 100))[0] == 200
    status, _, body, _ = raw_request(fo.port, head_with_headers(t, 101))
    assert status == 431 and code_of(body) == "too_many_headers", body
    base = "/api/p/%s/x?q=" % t
    r = fo.get(base + "y" * (4096 - len(base)))
    assert r.status == 200, r
    r = fo.get(base + "y" * (4097 - len(base)))
    assert r.status == 414 and error_code(r) == "uri_too_long", r
    r = fo.post("/aggregate", batch_body(t, 1 << 20))
    assert r.status == 200, r
    body = batch_body(t, (1 << 20) + 1)  # fanout may refuse before taking it all: raw socket
    status, _, out, _ = raw_request(fo.port, b"POST /aggregate HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                    % len(body) + body)
    assert status == 413 and code_of(out) == "body_too_large", out
    r = fo.post("/aggregate", {"requests": {"r%d" % i: {"url": E.url("/json")}
                                            for i in range(32)}})
    assert r.status == 200, r
    r = fo.post("/aggregate", {"requests": {"r%d" % i: {"url": E.url("/json")}
                                            for i in range(33)}})
    assert r.status == 400 and error_code(r) == "too_many_requests", r


# ---- connections per backend host ------------------------------------------------------------

@pytest.mark.parametrize("cap", [0, 1])
def test_max_host_connections(spawn, backend, cap):
    """One worker, two 250 ms calls to one host:port. No cap: two connections, ~250 ms. A cap
    of 1: the second call waits for the first one's connection (~500 ms), inside the deadline,
    and the X-Timeout-Ms it carries is the time left when it was sent, not when it was queued."""
    fo = spawn({
        "workers": 1,
        "timeout_ms": 3000,
        "max_host_connections": cap,
        "endpoints": [ep("/api/two/{tag}", [be("a", backend.url("/delay/250?tag={tag}&n=a")),
                                             be("b", backend.url("/delay/250?tag={tag}&n=b"))],
                         timeout_ms=2000)]})
    # Warm one connection up so that the capped case has exactly one to share.
    warm = tag()
    assert fo.get("/api/two/" + warm).status == 200
    t = tag()
    r = fo.get("/api/two/" + t)
    assert r.status == 200 and r.headers.get("X-Fanout-Complete") == "true", r
    reqs = backend.wait_for(lambda: (lambda q: q if len(q) == 2 else None)(backend.tagged(t)),
                            3.0, "both calls")
    budgets = sorted(int(q.header("X-Timeout-Ms")) for q in reqs)
    if cap == 0:
        assert r.elapsed < 0.48, r  # two in sequence would take 0.5 s
        assert reqs[0].conn_id != reqs[1].conn_id, reqs
        assert budgets[1] - budgets[0] < 100, budgets
    else:
        assert r.elapsed >= 0.48, r
        assert reqs[0].conn_id == reqs[1].conn_id, reqs
        # The second call was sent ~250 ms after the first.
        assert 200 <= budgets[1] - budgets[0] <= 600, budgets


def _waiting(fo) -> int:
    r = fo.get("/metrics")
    assert r.status == 200, r
    return int(parse(r.body.decode()).get("fanout_backend_calls_waiting"))


def test_max_host_connections_order_and_hosts(spawn, backend):
    """A cap of 2, five held calls to one host and one call to another: two of the five go out,
    the other host's call is not held up behind them, three wait (the waiting gauge says so),
    and each slot given back goes to the longest-waiting call of that host, in config order."""
    other = Backend()
    try:
        t = tag()
        fo = spawn({
            "workers": 1, "timeout_ms": 10000, "max_host_connections": 2,
            "endpoints": [ep("/api/five/{tag}",
                             [be("c%d" % i, backend.url("/hold/{tag}-%d?tag={tag}&n=%d" % (i, i)))
                              for i in range(5)] +
                             [be("other", other.url("/json?body=%7B%7D&tag={tag}"))],
                             timeout_ms=8000)]})
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(fo.get, "/api/five/" + t)
            backend.wait_for(lambda: backend.holding("%s-0" % t) and backend.holding("%s-1" % t),
                             5.0, "calls 0 and 1 held")
            other.wait_request(t, 5.0)  # The other host's call went out at once.
            assert sorted(int(q.param("n")) for q in backend.tagged(t)) == [0, 1]
            assert backend.wait_for(lambda: _waiting(fo) == 3 or None, 5.0, "3 waiting")
            order = []
            for done in (1, 0, 2, 3, 4):
                before = len(backend.tagged(t))
                backend.release("%s-%d" % (t, done))
                if before < 5:
                    got = backend.wait_for(
                        lambda: (lambda q: q if len(q) == before + 1 else None)(
                            backend.tagged(t)), 5.0, "the next call")
                    order.append(int(got[-1].param("n")))
                    assert len(got) == before + 1
            r = fut.result(timeout=10)
        assert order == [2, 3, 4], order
        assert r.status == 200 and r.headers.get("X-Fanout-Complete") == "true", r
        assert _waiting(fo) == 0
    finally:
        other.close()


def test_max_host_connections_deadline_while_waiting(spawn, backend):
    """A cap of 1 and three calls to a host that does not answer: the first is sent, the other
    two wait and are never sent; all three end as timeouts at the endpoint's deadline (not
    later), the answer is partial, and nothing is left waiting."""
    t = tag()
    fo = spawn({
        "workers": 1, "timeout_ms": 10000, "max_host_connections": 1,
        "endpoints": [ep("/api/wait/{tag}",
                         [be("h%d" % i, backend.url("/hold/{tag}?tag={tag}&n=%d" % i))
                          for i in range(3)] +
                         [be("ok", backend.url("/json?body=%7B%7D&tag=ok{tag}"))],
                         timeout_ms=1500, report=True)]})
    try:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(fo.get, "/api/wait/" + t)
            backend.wait_for(lambda: backend.holding(t), 5.0, "the first call held")
            # h1 and h2 wait behind h0; "ok" goes to the same host:port and waits too, its
            # turn never comes before the deadline.
            assert backend.wait_for(lambda: _waiting(fo) == 3 or None, 5.0, "3 waiting")
            r = fut.result(timeout=10)
        assert 1.4 <= r.elapsed < 2.0, r
        assert r.status == 504, r  # none succeeded: a timeout
        assert [int(q.param("n")) for q in backend.tagged(t)] == [0]
        assert backend.tagged("ok" + t) == []
        assert _waiting(fo) == 0
    finally:
        backend.release(t)
