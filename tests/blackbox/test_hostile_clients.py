"""Hostile clients on raw sockets: malformed requests, smuggling, disconnects, slow readers,
pipelining, junk X-Timeout-Ms, nasty path parameters, SSRF through the ad-hoc batch.

After each test fanout must still run with a clean stderr (the fo fixture) and answer the
next request (check_next_request).
"""

import json
import select
import signal
import socket
import struct
import threading
import time
import urllib.parse
import uuid

import pytest

from blackbox.evil_backend import EvilBackend, shared
from blackbox.fanout import backend as be, endpoint as ep, error_code

E = shared()
# A real listening backend that is NOT in allow_hosts: SSRF attempts must never reach it.
SENTINEL = EvilBackend()
BIG = 4 << 20  # slow-reader response body


def _sentinel6():
    """A listener on [::1] at E's port, to notice an SSRF via an IPv6 form (None when the
    machine has no IPv6 loopback)."""
    try:
        return EvilBackend("::1", E.port)
    except OSError:
        return None


SENTINEL6 = _sentinel6()


def tag():
    return uuid.uuid4().hex[:12]


def fanout_config(b):
    return {
        "timeout_ms": 3000,
        "aggregate": {"allow_hosts": [E.hostport()], "timeout_ms": 2000},
        "endpoints": [
            ep("/api/ok", [be("ok", E.url("/json?body=" + urllib.parse.quote('{"fine":1}')))]),
            ep("/api/p/{tag}/{v}", [be("e", E.url("/json/{v}?tag={tag}&v={v}"))]),
            ep("/api/id/{v}", [be("a", b.url("/id/{v}"))]),
            ep("/api/slow/{v}", [be("a", b.url("/delay/200?body=" + urllib.parse.quote(
                '{"slow":true}') + "&v={v}"))]),
            ep("/api/hang/{tag}", [be("h", E.url("/hang?tag={tag}"))]),
            ep("/api/big", [be("big", E.url("/big?bytes=%d&mode=cl" % BIG))]),
            ep("/api/redir/{tag}", [be("r", E.url("/redirect?tag={tag}&to=" + urllib.parse.quote(
                SENTINEL.url("/json"), safe="")))], report=True),
        ],
    }


# ---- helpers ---------------------------------------------------------------------------------

def check_next_request(fo):
    r = fo.get("/api/ok")
    assert r.status == 200, "fanout does not answer the next request: %r" % r
    assert r.json() == {"ok": {"fine": 1}}, r


def complete_responses(data: bytes) -> int:
    """How many complete responses (framed by Content-Length) 'data' starts with."""
    n = 0
    while data.startswith(b"HTTP/1."):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        cl = [int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")[1:]
              if h.lower().startswith(b"content-length:")]
        if not cl or len(rest) < cl[0]:
            break
        n += 1
        data = rest[cl[0]:]
    return n


def exchange(port, data: bytes, idle: float = 1.0, total: float = 5.0, shut=False,
             want: int = 0) -> bytes:
    """Send 'data' in one write; collect what comes back until the server closes, or 'total'
    seconds passed, or (want > 0) 'want' complete responses arrived, or (want == 0 only)
    nothing arrived for 'idle' seconds. A test that expects answers passes 'want': a busy
    server's silence is not the end of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=total) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        end = time.monotonic() + total
        while time.monotonic() < end:
            left = max(0.0, end - time.monotonic())
            r, _, _ = select.select([s], [], [], left if want else min(idle, left))
            if not r:
                break
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if want and complete_responses(out) >= want:
                break
        return out


def parse_responses(data: bytes):
    """Split a byte stream into HTTP/1.x responses: [(status, {lower name: value}, body)].
    Bodies are framed by Content-Length (fanout and libmicrohttpd both send it)."""
    out = []
    while data:
        assert data.startswith(b"HTTP/1."), "not a status line: %r" % data[:200]
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, "truncated head: %r" % data[:300]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for h in lines[1:]:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


# ---- malformed requests ----------------------------------------------------------------------

# (id, bytes, may the server just close without an answer?). Each must be refused: no
# backend call, and a 4xx/5xx answer (libmicrohttpd's own page or fanout's JSON). RFC 9110/9112
# require a 400 for most of them: whitespace before the colon, no Host in HTTP/1.1, more than one
# Content-Length, NUL in a field value, an invalid request target.
MALFORMED = [
    ("not_http", b"THIS IS NOT HTTP\r\n\r\n", False),
    ("method_only", b"GET\r\n\r\n", True),
    ("version_9_9", b"GET /api/p/{t}/x HTTP/9.9\r\nHost: x\r\n\r\n", False),
    ("extra_word", b"GET /api/p/{t}/x HTTP/1.1 extra\r\nHost: x\r\n\r\n", False),
    ("no_colon", b"GET /api/p/{t}/x HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n", False),
    ("space_before_colon", b"GET /api/p/{t}/x HTTP/1.1\r\nHost : x\r\n\r\n", False),
    ("no_host", b"GET /api/p/{t}/x HTTP/1.1\r\n\r\n", False),
    ("nul_in_target", b"GET /api/p/{t}/\x00x HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("space_in_target", b"GET /api/p/{t}/x y HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("cl_negative", b"GET /api/p/{t}/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", False),
    ("cl_junk", b"GET /api/p/{t}/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", False),
    ("cl_twice", b"GET /api/p/{t}/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                 b"Content-Length: 2\r\n\r\nab", False),
    ("te_gzip", b"GET /api/p/{t}/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", False),
    ("tls_hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", True),
    ("binary_method", b"\xff\xfe\xfd /api/p/{t}/x HTTP/1.1\r\nHost: x\r\n\r\n", False),
]


def first_status(out: bytes):
    if not out.startswith(b"HTTP/1."):
        return None
    return int(out.split(b" ", 2)[1])


@pytest.mark.parametrize("data,close_ok", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_request_is_refused(fo, data, close_ok):
    t = tag()
    out = exchange(fo.port, data.replace(b"{t}", t.encode()), idle=0.5, want=1)
    status = first_status(out)
    if not (close_ok and out == b""):
        assert status is not None and 400 <= status < 600, \
            "malformed request %r answered %r" % (data, out[:300])
    E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


# libmicrohttpd drops a field line with an empty name, and cuts a value at a NUL, before fanout
# sees the head: these are refused with 400, or served as if the line was never sent, or (the
# timeout cut to "1") answered 504. Whatever happens, nothing from the line reaches a backend.
DROPPED_LINES = [
    ("empty_name", b": empty-name\r\n"),
    ("nul_in_value", b"X-A: a\x00b\r\n"),
    ("nul_in_timeout", b"X-Timeout-Ms: 1\x00\r\n"),
]


@pytest.mark.parametrize("line", [d[1] for d in DROPPED_LINES], ids=[d[0] for d in DROPPED_LINES])
def test_line_the_parser_drops_reaches_no_backend(fo, line):
    t = tag()
    out = exchange(fo.port, b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\n%s\r\n" % (t.encode(), line),
                   idle=1.0, want=1)
    status = first_status(out)
    assert status in (200, 400, 504), out[:300]
    if status == 504:
        assert line.startswith(b"X-Timeout-Ms: 1"), out[:300]
    elif status == 200:
        q = E.wait_request(t, 1)
        assert q.header("X-A") is None, q.headers
        assert not any("empty-name" in k + v for k, v in q.headers), q.headers
        budget = int(q.header("X-Timeout-Ms"))
        # The whole 3 s budget (line dropped), or 1 ms (value cut at the NUL), nothing else.
        assert budget > 100 or (budget == 1 and line.startswith(b"X-Timeout-Ms: 1")), q.headers
    else:
        E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


def test_bare_cr_in_target_injects_nothing(fo):
    """RFC 9112 allows replacing a bare CR with SP instead of refusing; either way nothing may
    reach the backend as a header."""
    t = tag()
    out = exchange(fo.port, b"GET /api/p/%s/a\rX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   % t.encode(), idle=0.5, want=1)
    status = first_status(out)
    assert status is not None, out[:300]
    if status == 200:
        q = E.wait_request(t, 1)
        assert q.header("X-Injected") is None, q.headers
        assert len(q.line.split(" ")) == 3 and "\r" not in q.line, q.line
    else:
        assert 400 <= status < 500, out[:300]
        E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


def test_obs_fold_is_refused_or_unfolded(fo):
    """RFC 9112 5.2: reject obs-fold with 400 or replace it with SP."""
    t = tag()
    out = exchange(fo.port, b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n"
                   b"\tb\r\n\r\n" % t.encode(), idle=0.5, want=1)
    status = first_status(out)
    assert status in (200, 400), out[:300]
    check_next_request(fo)


# ---- request smuggling -----------------------------------------------------------------------

def smuggle_cases(t):
    smug = b"GET /api/p/%s/smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode()
    body = b"0\r\n\r\n" + smug
    te_body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smug), smug)
    head = b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return {
        "cl_te": head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
        + body,
        "te_cl": head + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + te_body,
        "te_cl_order": head + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + te_body,
        "te_twice": head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
                           b"Transfer-Encoding: identity\r\n\r\n" % len(body) + body,
        "te_list": head + b"Content-Length: %d\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                          % len(body) + body,
        "te_xchunked": head + b"Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n\r\n"
                              % len(body) + body,
        "te_space": head + b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n"
                           % len(body) + body,
        "te_tab": head + b"Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n\r\n"
                         % len(body) + body,
        "cl_cl": head + b"Content-Length: 5\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        "cl_list": head + b"Content-Length: 5, %d\r\n\r\n" % len(body) + body,
    }


SMUGGLE = sorted(smuggle_cases("x"))


@pytest.mark.parametrize("case", SMUGGLE)
def test_smuggling_is_not_two_requests(fo, case):
    t = tag()
    data = smuggle_cases(t)[case]
    out = exchange(fo.port, data, idle=5.0)  # until fanout closes: every answer it sends
    # fanout's answers carry X-Request-Id; libmicrohttpd's own error pages do not.
    answers = out.count(b"\r\nX-Request-Id: ")
    E.assert_no_request(t, grace=0.2)  # the smuggled request reached no backend
    assert answers <= 1, "%s: %d answers to one request: %r" % (case, answers, out[:800])
    assert first_status(out) in (None, 400), "%s: %r" % (case, out[:500])
    check_next_request(fo)


# ---- disconnects -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["fin", "rst"])
def test_disconnect_mid_body(fo, how):
    t = tag()
    body = json.dumps({"requests": {"a": {"url": E.url("/json?tag=" + t)}}}).encode()
    body += b" " * 1000
    head = (b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(body) + 1000))
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    s.sendall(head + body)  # 1000 bytes short
    time.sleep(0.05)  # let it arrive in pieces, as a real client would
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    E.assert_no_request(t, grace=0.3)
    check_next_request(fo)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_disconnect_mid_head(fo, how):
    t = tag()
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    s.sendall(b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-A: " % t.encode())
    time.sleep(0.05)
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    E.assert_no_request(t, grace=0.2)
    check_next_request(fo)


def test_reset_mid_wait_aborts_the_call(fo):
    """A reset is a client that is gone: its calls are aborted at once."""
    t = tag()
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    s.sendall(b"GET /api/hang/%s HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode())
    req = E.wait_request(t, 2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    gone = time.monotonic()
    c = E.wait_closed(req.conn_id, 2.0)
    assert c.closed_by == "peer", c
    assert c.closed_at - gone < 1.0, "call aborted %.0f ms after the client left" % (
        (c.closed_at - gone) * 1000)
    check_next_request(fo)


def test_fin_mid_wait_is_not_a_cancellation(fo):
    """A FIN may be a half-close (the client still reads): the call runs on to the request's
    deadline (3 s here) instead of being aborted when the FIN arrives."""
    t = tag()
    s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
    s.sendall(b"GET /api/hang/%s HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode())
    sent = time.monotonic()
    req = E.wait_request(t, 2)
    s.close()
    c = E.wait_closed(req.conn_id, 5.0)
    assert c.closed_by == "peer", c
    assert c.closed_at - sent >= 2.5, "call aborted %.0f ms after the request: a FIN " \
        "cancelled it" % ((c.closed_at - sent) * 1000)
    check_next_request(fo)


def test_abandoned_requests_do_not_hold_up_shutdown(spawn, backend):
    """Requests whose clients left half-way must not stay live: SIGTERM with nothing in
    flight ends the drain at once, not after drain_ms (30 s here)."""
    cfg = fanout_config(backend)
    cfg["drain_ms"] = 30000
    cfg["header_timeout_ms"] = 2000  # bounds how long fanout may keep a head it never gets
    fo = spawn(cfg)
    t = tag()
    abandoned = [
        b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" % t.encode(),
        b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
        % t.encode(),
        b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"requests\"",
        b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-A: " % t.encode(),
    ]
    socks = []
    try:
        for _ in range(3):
            for data in abandoned:
                s = socket.create_connection(("127.0.0.1", fo.port), timeout=5)
                socks.append(s)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
        # Wait until fanout is done with every one of them -- answered and closed it (EOF or
        # RST) -- so nothing is still on its way when SIGTERM comes.
        pending = list(socks)
        end = time.monotonic() + 15
        while pending:
            left = end - time.monotonic()
            assert left > 0, "fanout kept %d of %d abandoned connections open for 15 s " \
                "(header_timeout 2 s)" % (len(pending), len(socks))
            ready, _, _ = select.select(pending, [], [], left)
            for s in ready:
                try:
                    done = s.recv(65536) == b""
                except OSError:  # RST
                    done = True
                if done:
                    pending.remove(s)
    finally:
        for s in socks:
            s.close()
    check_next_request(fo)
    fo.proc.send_signal(signal.SIGTERM)
    rc = fo.wait_exit(10.0)
    events = [e.get("event") for e in fo.events()]
    assert rc == 0 and "drain_timeout" not in events, "SIGTERM with nothing in flight: exit " \
        "%s, events %s (an abandoned request stayed live)\n%s" % (rc, events, fo.output())
    E.assert_no_request(t, grace=0.05)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_half_closed_upload_is_closed(fo, framing):
    """A client that sends half a body and then its FIN can never finish the request;
    libmicrohttpd would wait for the idle timeout, fanout's watchdog closes it within seconds."""
    t = tag()
    if framing == "length":
        head = b"POST /aggregate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"req"
    else:
        head = (b"POST /aggregate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"a\r\n{\"req")
    with socket.create_connection(("127.0.0.1", fo.port), timeout=5) as s:
        s.sendall(head)
        s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        s.settimeout(6)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        took = time.monotonic() - t0
    assert took < 4.0, "half-closed upload kept open %.1f s" % took
    assert got == b"" or first_status(got) is not None, got[:200]
    E.assert_no_request(t, grace=0.05)
    check_next_request(fo)


# ---- slow readers ----------------------------------------------------------------------------

def test_slow_reader_does_not_stall_others(fo):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", fo.port))
    try:
        s.sendall(b"GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        end = time.monotonic() + 1.0
        slow = []
        while time.monotonic() < end:  # read 4 KiB every 50 ms
            got += s.recv(4096)
            time.sleep(0.05)
            t0 = time.monotonic()
            r = fo.get("/api/ok", timeout=5)
            slow.append(time.monotonic() - t0)
            assert r.status == 200, r
        assert len(got) < BIG, "the slow reader was not slow"
        assert max(slow) < 0.5, "others waited up to %.0f ms behind a slow reader" % (
            max(slow) * 1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.settimeout(20)
        while True:  # now read the rest at full speed: the answer is intact
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                head, _, body = got.partition(b"\r\n\r\n")
                n = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                     if h.lower().startswith(b"content-length:")]
                if n and len(body) >= n[0]:
                    break
    finally:
        s.close()
    (status, _, body), = parse_responses(got)
    assert status == 200
    doc = json.loads(body)
    assert len(doc["big"]) == BIG - 2
    check_next_request(fo)


def tcp_queues(local_port: int, remote_port: int):
    """(send queue, receive queue) in bytes of the IPv4 loopback socket local_port ->
    remote_port, from /proc/net/tcp; None if there is none. The send queue counts what the
    peer has not acknowledged: it stays above 0 only while the peer's window is shut."""
    want = ("0100007F:%04X" % local_port, "0100007F:%04X" % remote_port)
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if (cols[1], cols[2]) == want and cols[3] == "01":  # ESTABLISHED
                tx, rx = cols[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def test_clients_that_never_read(fo):
    """Five clients that never read their 4 MiB answers: once fanout's writes to them are
    stuck (their receive buffers full, fanout's send buffers holding the rest), other
    clients are still served, and the five are still stuck afterwards."""
    socks = []
    for _ in range(5):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", fo.port))
        s.sendall(b"GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]

    def stuck():
        """The clients whose buffers are full both ways."""
        out = []
        for p in ports:
            mine, theirs = tcp_queues(p, fo.port), tcp_queues(fo.port, p)
            if mine and theirs and mine[1] > 0 and theirs[0] > 0:
                out.append(p)
        return out

    try:
        end = time.monotonic() + 15
        while len(stuck()) < len(ports):
            assert time.monotonic() < end, "fanout's writes to clients that never read did " \
                "not fill the buffers within 15 s (stuck: %s of %s)" % (stuck(), ports)
            time.sleep(0.02)  # polling interval, not synchronisation
        bound = 0.5 if fo.variant == "plain" else 1.0  # sanitizer builds are slower
        for _ in range(5):
            r = fo.get("/api/ok", timeout=5)
            assert r.status == 200 and r.elapsed < bound, r
        assert stuck() == ports, "the clients that never read were let go (still stuck: %s " \
            "of %s), so the others were not served alongside them" % (stuck(), ports)
    finally:
        for s in socks:
            s.close()
    check_next_request(fo)


# ---- pipelining ------------------------------------------------------------------------------

def test_pipelined_requests_answered_in_order(fo):
    reqs = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in
                    (b"/api/slow/first", b"/api/id/second", b"/nope", b"/api/id/fourth"))
    out = exchange(fo.port, reqs, idle=1.5, total=8, want=4)
    resps = parse_responses(out)
    assert [st for st, _, _ in resps] == [200, 200, 404, 200], out[:1000]
    assert json.loads(resps[0][2]) == {"a": {"slow": True}}
    assert json.loads(resps[1][2]) == {"a": {"id": "second"}}
    assert json.loads(resps[3][2]) == {"a": {"id": "fourth"}}
    check_next_request(fo)


def test_two_requests_in_one_write(fo):
    out = exchange(fo.port, b"GET /api/id/one HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"GET /api/id/two HTTP/1.1\r\nHost: x\r\n\r\n", idle=1.0, want=2)
    resps = parse_responses(out)
    assert [json.loads(b) for _, _, b in resps] == [{"a": {"id": "one"}}, {"a": {"id": "two"}}]


# ---- X-Timeout-Ms ----------------------------------------------------------------------------

JUNK_TIMEOUTS = [b"abc", b"-5", b"-0", b"0", b"", b"1e3", b"+100", b"100ms", b"0x10", b"1.5",
                 b"3600001", b"99999999999999999999999", b"\xef\xbc\x91\xef\xbc\x90", b"100, 200",
                 b"10 0", b"\t"]


@pytest.mark.parametrize("value", JUNK_TIMEOUTS, ids=range(len(JUNK_TIMEOUTS)))
def test_junk_x_timeout_ms_is_400(fo, value):
    t = tag()
    out = exchange(fo.port, b"GET /api/p/%s/x HTTP/1.1\r\nHost: x\r\nX-Timeout-Ms: %s\r\n\r\n"
                   % (t.encode(), value), idle=1.0, want=1)
    resps = parse_responses(out)
    assert len(resps) == 1, out[:500]
    status, headers, body = resps[0]
    assert status == 400, (value, out[:500])
    assert json.loads(body)["error"]["code"] == "invalid_timeout", (value, body)
    E.assert_no_request(t, grace=0.1)


def test_largest_x_timeout_ms_is_accepted(fo):
    t = tag()
    r = fo.get("/api/p/%s/x" % t, headers={"X-Timeout-Ms": "3600000"})
    assert r.status == 200, r
    q = E.wait_request(t, 1)
    assert 1 <= int(q.header("X-Timeout-Ms")) <= 3000, q.headers


# ---- path parameters -------------------------------------------------------------------------

@pytest.mark.parametrize("seg,value", [
    ("a%00b", b"a\x00b"),
    ("a%0D%0AX-Injected:%201", b"a\r\nX-Injected: 1"),
    ("%0D%0A%0D%0AGET%20%2Fx%20HTTP%2F1.1", b"\r\n\r\nGET /x HTTP/1.1"),
    ("..%2F..%2Fetc", b"../../etc"),
    ("x" * 1024, b"x" * 1024),
], ids=["nul", "crlf_header", "crlf_request", "dotdot_slash", "len1024"])
def test_param_reaches_backend_as_one_value(fo, seg, value):
    t = tag()
    r = fo.get("/api/p/%s/%s" % (t, seg))
    assert r.status == 200, r
    reqs = E.tagged(t)
    assert len(reqs) == 1, [q.line for q in reqs]
    q = reqs[0]
    assert q.header("X-Injected") is None, q.headers
    assert len(q.line.split(" ")) == 3, q.line
    assert urllib.parse.unquote_to_bytes(q.path[len("/json/"):]) == value, q.line
    fields = q.query.split("&")
    assert len(fields) == 2 and fields[1].startswith("v="), q.line
    assert urllib.parse.unquote_to_bytes(fields[1][2:]) == value, q.line


@pytest.mark.parametrize("seg", ["..", ".", "%2e%2e", "%2E.", ".%2e", "x" * 1025,
                                 "%41" * 1025],
                         ids=["dotdot", "dot", "enc_dotdot", "enc_dot_dot", "dot_enc_dot",
                              "len1025", "enc_len1025"])
def test_bad_param_is_400(fo, seg):
    t = tag()
    r = fo.get("/api/p/%s/%s" % (t, seg))
    assert r.status == 400, (seg[:40], r)
    assert error_code(r) == "invalid_param", r
    E.assert_no_request(t, grace=0.1)


@pytest.mark.parametrize("seg", ["x" * 5000, "%41" * 1700], ids=["x5000", "enc5100"])
def test_param_over_max_url_bytes_is_414(fo, seg):
    """Over max_url_bytes (default 4096) but within max_header_bytes (8192): fanout's 414."""
    t = tag()
    r = fo.get("/api/p/%s/%s" % (t, seg))
    assert r.status == 414, r
    assert error_code(r) == "uri_too_long", r
    E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


def test_target_over_max_header_bytes_is_refused(fo):
    """A request line longer than the whole head may be: libmicrohttpd refuses it itself."""
    t = tag()
    r = fo.get("/api/p/%s/%s" % (t, "x" * 20000))
    assert r.status in (414, 431), r
    E.assert_no_request(t, grace=0.1)
    check_next_request(fo)


# ---- SSRF through the ad-hoc batch -----------------------------------------------------------

def ssrf_urls():
    p, sp = E.port, SENTINEL.port
    return [
        "http://127.0.0.1:%d/json" % sp,                 # other port on the allowed host
        "http://127.0.0.1:%d/json" % (p + 65536),        # port that wraps to the allowed one
        "http://127.0.0.1:0%d/json" % p,                 # leading zero
        "http://127.0.0.1/json",                         # default port
        "http://127.1:%d/json" % p,
        "http://0x7f.1:%d/json" % p,
        "http://0x7f.0.0.1:%d/json" % p,
        "http://0x7f000001:%d/json" % p,
        "http://2130706433:%d/json" % p,
        "http://017700000001:%d/json" % p,
        "http://0177.0.0.1:%d/json" % p,
        "http://127.000.000.001:%d/json" % p,
        "http://127.0.0.1.:%d/json" % p,
        "http://%%31%%32%%37.0.0.1:%d/json" % p,
        "http://[::1]:%d/json" % p,
        "http://[0:0:0:0:0:0:0:1]:%d/json" % p,
        "http://[::ffff:127.0.0.1]:%d/json" % p,
        "http://[::ffff:7f00:1]:%d/json" % p,
        "http://[::127.0.0.1]:%d/json" % p,
        "http://localhost:%d/json" % p,
        "http://LOCALHOST:%d/json" % p,
        "http://user@127.0.0.1:%d/json" % p,
        "http://user:pw@127.0.0.1:%d/json" % p,
        "http://127.0.0.1:%d@127.0.0.1:%d/json" % (p, sp),
        "http://127.0.0.1:%d%%40127.0.0.1:%d/json" % (p, sp),
        "http://127.0.0.1:%d\\@127.0.0.1:%d/json" % (p, sp),
        "http://127.0.0.1:%d#@127.0.0.1:%d/json" % (sp, p),
        "http://127.0.0.1:%d?@127.0.0.1:%d/json" % (sp, p),
        "http://127.0.0.1:%d /json" % sp,
        "http://127.0.0.1:%d\t/json" % sp,
        "http:/127.0.0.1:%d/json" % p,
        "http:\\\\127.0.0.1:%d/json" % sp,
        "//127.0.0.1:%d/json" % sp,
        "https://127.0.0.1:%d/json" % sp,
        "http://127.0.0.1:%d.127.0.0.1:%d/json" % (p, sp),
    ]


def test_ssrf_forms_are_403_and_reach_nothing(fo):
    before = SENTINEL.nconns()
    before6 = SENTINEL6.nconns() if SENTINEL6 else 0
    bad = []
    for url in ssrf_urls():
        t = tag()
        sep = "&" if "?" in url else "?"
        doc = {"requests": {"ok": {"url": E.url("/json?tag=" + t)},
                            "bad": {"url": url + sep + "tag=" + t}}}
        r = fo.post("/aggregate", doc)
        if r.status not in (400, 403):
            bad.append((url, r))
            continue
        code = error_code(r)
        if code not in ("host_not_allowed", "invalid_batch"):
            bad.append((url, r))
        E.assert_no_request(t, grace=0.02)
    assert not bad, "SSRF forms let through: %r" % bad
    SENTINEL.assert_no_conn(since=before, grace=0.2)
    if SENTINEL6:
        SENTINEL6.assert_no_conn(since=before6, grace=0.05)
    check_next_request(fo)


def test_allowed_host_verbatim_is_called(fo):
    t = tag()
    r = fo.post("/aggregate", {"requests": {"a": {"url": E.url("/json?tag=" + t)}}})
    assert r.status == 200, r
    E.wait_request(t, 1)


def test_redirect_to_forbidden_host_is_not_followed(fo):
    before = SENTINEL.nconns()
    t = tag()
    to = urllib.parse.quote(SENTINEL.url("/json?tag=" + t), safe="")
    for code in (301, 302, 303, 307, 308):
        doc = {"report": True, "requests": {
            "r": {"url": E.url("/redirect?code=%d&tag=%s&to=%s" % (code, t, to))}}}
        r = fo.post("/aggregate", doc)
        assert r.status == 502, r  # the only call failed: "none succeeded"
        assert error_code(r) == "backend_failed", r
    r = fo.post("/aggregate", {"report": True, "requests": {
        "ok": {"url": E.url("/json")},
        "r": {"url": E.url("/redirect?tag=%s&to=%s" % (t, to))}}})
    assert r.status == 200, r
    rep = r.json()["_fanout"]["backends"]["r"]
    assert rep["error"] == "status" and rep["status"] == 302, rep
    # Configured endpoints do not follow redirects either.
    r = fo.get("/api/redir/" + t)
    assert r.status == 502, r
    E.wait_requests(t, 7, 1)
    SENTINEL.assert_no_conn(since=before, grace=0.2)
