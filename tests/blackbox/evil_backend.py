"""evil_backend.py -- a misbehaving HTTP backend for the hardening tests.

A thread-per-connection server on raw sockets (127.0.0.1 or ::1, port 0 unless
given) that breaks HTTP in chosen ways. Every connection and every request is
recorded, including how many bytes the server managed to send before the peer
went away, so a test can tell that fanout aborted a transfer instead of
swallowing it.

Behaviour is chosen by the first path segment; query parameters tune it
(any other parameter, e.g. tag=..., is ignored and only recorded):

    /json[?body=J]          200, keep-alive, body J (default {})
    /reset_head             part of a status line and headers, then a TCP RST
    /reset_body             headers (Content-Length 1000), 100 body bytes, RST
    /close_after_head       headers (Content-Length 100), then FIN
    /short_body[?keep=1]    Content-Length 100, a 7-byte body, then FIN
                            (keep=1: stay open until the peer closes)
    /chunk_badsize          chunked, a chunk size that is not hex; stays open
    /chunk_overflow         chunked, a chunk size of 20 hex digits; stays open
    /chunk_short            chunked, chunk size 100 with 10 bytes, then FIN
    /chunk_noterm           chunked, one good chunk, no last chunk, then FIN
    /chunk_nocrlf           chunked, chunk data not followed by CRLF; stays open
    /drip?ms=M&n=N[&part=head]
                            a body of N bytes (Content-Length N), one byte every
                            M ms (part=head: the status line and headers too)
    /big?bytes=N&mode=cl|chunked|close
                            a JSON string of N bytes streamed in 64 KiB pieces,
                            framed by Content-Length, chunks or closing
    /deep?n=N               N nested arrays
    /garbage                not JSON, Content-Type application/json
    /trailing               {"a":1} followed by garbage
    /badutf8?v=ff|overlong|surrogate|truncated
                            JSON whose string holds invalid UTF-8
    /status?code=C[&body=J] that status; 204 and 304 without a body
    /info?codes=100,103     those 1xx answers, then 200 {"info":true}
    /info_only?code=100     one 1xx answer, then FIN
    /redirect?code=C&to=URL a 3xx with Location URL
    /hang                   read, never answer, until the peer closes
    /stray?ms=M[&body=J][&stray=S]
                            200 with body J, then after M ms (0: in the same write) a
                            second, unsolicited 200 with body S; stays open. mark()
                            records ("stray", conn id) once the second answer is out
    /bighead?bytes=N[&line=L]
                            200 {} after about N bytes of header lines of L bytes each
                            (default L = N: one huge header line)

Anything else: 404. never_accepting() gives a port that completes TCP
handshakes (kernel backlog) but never accepts.
"""

import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

CHUNK = 65536


@dataclass
class EConn:
    """One accepted connection."""

    id: int
    opened_at: float
    closed_at: Optional[float] = None
    closed_by: Optional[str] = None  # "peer", "backend" (FIN) or "rst"
    sent: int = 0  # bytes the backend managed to send, all requests
    req: Optional["EReq"] = None  # the request being answered


@dataclass
class EReq:
    """One request as received."""

    conn_id: int
    at: float
    line: str
    method: str
    path: str
    query: str
    headers: List[Tuple[str, str]]
    body: bytes
    params: dict = field(default_factory=dict)
    sent: int = 0  # bytes of the answer the backend managed to send

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def param(self, name: str) -> Optional[str]:
        return self.params.get(name)


class PeerGone(Exception):
    """The peer closed or reset the connection."""


class EvilBackend:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self._lsock = socket.socket(fam, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(512)
        self.port = self._lsock.getsockname()[1]
        self.cond = threading.Condition()
        self.conns: List[EConn] = []
        self.requests: List[EReq] = []
        self._socks = {}
        self._closing = False
        self.marks: List[Tuple[str, int]] = []  # (what, conn id), see mark()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="evil-accept-%d" % self.port)
        self._thread.start()

    # ---- set-up and observation ----

    def hostport(self) -> str:
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (h, self.port)

    def url(self, path: str = "/json") -> str:
        return "http://%s%s" % (self.hostport(), path)

    def wait_for(self, pred: Callable[[], object], timeout: float, what: str = "condition"):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("evil backend: timed out after %.1f s waiting for %s"
                                         % (timeout, what))
                self.cond.wait(left)

    def tagged(self, tag: str) -> List[EReq]:
        with self.cond:
            return [r for r in self.requests if r.params.get("tag") == tag]

    def wait_request(self, tag: str, timeout: float = 5.0) -> EReq:
        return self.wait_for(lambda: next((r for r in self.requests
                                           if r.params.get("tag") == tag), None),
                             timeout, "a request with tag=%s" % tag)

    def wait_requests(self, tag: str, n: int, timeout: float = 5.0) -> List[EReq]:
        return self.wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(
            [r for r in self.requests if r.params.get("tag") == tag]),
            timeout, "%d requests with tag=%s" % (n, tag))

    def assert_no_request(self, tag: str, grace: float = 0.2):
        end = time.monotonic() + grace
        with self.cond:
            while True:
                got = [r.line for r in self.requests if r.params.get("tag") == tag]
                assert not got, "backend was called: %s" % got
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def assert_no_conn(self, since: int = 0, grace: float = 0.2):
        """Assert no connection beyond the first 'since' ones arrives within 'grace' s."""
        end = time.monotonic() + grace
        with self.cond:
            while True:
                assert len(self.conns) <= since, "backend %s got %d connection(s)" % (
                    self.hostport(), len(self.conns) - since)
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def mark(self, what: str, conn_id: int):
        with self.cond:
            self.marks.append((what, conn_id))
            self.cond.notify_all()

    def wait_mark(self, what: str, conn_id: int, timeout: float = 5.0):
        self.wait_for(lambda: (what, conn_id) in self.marks, timeout,
                      "mark %s on connection %d" % (what, conn_id))

    def nconns(self) -> int:
        with self.cond:
            return len(self.conns)

    def conn(self, conn_id: int) -> EConn:
        with self.cond:
            return self.conns[conn_id]

    def wait_closed(self, conn_id: int, timeout: float) -> EConn:
        return self.wait_for(lambda: self.conns[conn_id] if self.conns[conn_id].closed_at
                             else None, timeout, "connection %d to close" % conn_id)

    def close(self):
        with self.cond:
            self._closing = True
            socks = list(self._socks.values())
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)

    # ---- server ----

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self._lsock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.cond:
                if self._closing:
                    sock.close()
                    return
                c = EConn(len(self.conns), time.monotonic())
                self.conns.append(c)
                self._socks[c.id] = sock
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(c, sock), daemon=True,
                             name="evil-conn-%d" % c.id).start()

    def _serve(self, c: EConn, sock: socket.socket):
        how = "peer"
        buf = b""
        try:
            while True:
                req, buf = self._read_request(c, sock, buf)
                if req is None:
                    break
                c.req = req
                how = self._answer(c, sock, req)
                if how != "keep":
                    break
                how = "peer"
        except (PeerGone, OSError):
            how = "peer"
        finally:
            if how == "rst":
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            try:
                sock.close()
            except OSError:
                pass
            with self.cond:
                c.closed_at = time.monotonic()
                c.closed_by = how
                self._socks.pop(c.id, None)
                self.cond.notify_all()

    def _read_request(self, c: EConn, sock, buf):
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(CHUNK)
            if not chunk:
                return None, b""
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for h in lines[1:]:
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        n = int(hmap.get("content-length", "0") or "0")
        while len(buf) < n:
            chunk = sock.recv(CHUNK)
            if not chunk:
                return None, b""
            buf += chunk
        body, buf = buf[:n], buf[n:]
        parts = lines[0].split(" ")
        target = parts[1] if len(parts) > 1 else ""
        path, _, query = target.partition("?")
        params = {}
        for kv in query.split("&") if query else []:
            k, _, v = kv.partition("=")
            params[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
        req = EReq(c.id, time.monotonic(), lines[0], parts[0], path, query, headers, body, params)
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()
        return req, buf

    # ---- sending ----

    def _send(self, c: EConn, sock, data: bytes):
        try:
            sock.sendall(data)
        except OSError as e:
            raise PeerGone() from e
        with self.cond:
            c.sent += len(data)
            if c.req is not None:
                c.req.sent += len(data)

    def _sleep(self, sock, seconds: float):
        """Wait, noticing the peer closing (then raise PeerGone). Request bytes that arrive
        meanwhile are read and dropped."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(left)
            try:
                data = sock.recv(CHUNK)
            except socket.timeout:
                return
            except OSError as e:
                raise PeerGone() from e
            finally:
                sock.settimeout(None)
            if not data:
                raise PeerGone()

    def _wait_peer(self, sock, limit: float = 60.0):
        """Hold the connection until the peer closes it (or 'limit' seconds)."""
        try:
            self._sleep(sock, limit)
        except PeerGone:
            pass
        return "peer"

    @staticmethod
    def _head(status: int, reason: str = "Whatever", headers=(), ctype="application/json"):
        h = "HTTP/1.1 %d %s\r\n" % (status, reason)
        if ctype:
            h += "Content-Type: %s\r\n" % ctype
        for k, v in headers:
            h += "%s: %s\r\n" % (k, v)
        return (h + "\r\n").encode("latin-1")

    def _full(self, c, sock, status, body: bytes, headers=(), reason="OK"):
        self._send(c, sock, self._head(status, reason, [("Content-Length", len(body))]
                                       + list(headers)) + body)
        return "keep"

    def _answer(self, c: EConn, sock, req: EReq) -> str:
        kind = req.path.strip("/").split("/")[0]
        p = req.params
        if kind == "json":
            return self._full(c, sock, 200, (p.get("body") or "{}").encode())
        if kind == "reset_head":
            self._send(c, sock, b"HTTP/1.1 200 OK\r\nContent-Type: applic")
            return "rst"
        if kind == "reset_body":
            self._send(c, sock, self._head(200, "OK", [("Content-Length", 1000)])
                       + b'{"a":"' + b"x" * 94)
            time.sleep(0.02)
            return "rst"
        if kind == "close_after_head":
            self._send(c, sock, self._head(200, "OK", [("Content-Length", 100)]))
            return "backend"
        if kind == "short_body":
            self._send(c, sock, self._head(200, "OK", [("Content-Length", 100)]) + b'{"a":1}')
            return self._wait_peer(sock) if p.get("keep") else "backend"
        if kind.startswith("chunk_"):
            h = self._head(200, "OK", [("Transfer-Encoding", "chunked")])
            if kind == "chunk_badsize":
                self._send(c, sock, h + b"zz\r\n{}\r\n0\r\n\r\n")
                return self._wait_peer(sock)
            if kind == "chunk_overflow":
                self._send(c, sock, h + b"ffffffffffffffffffff\r\n{}")
                return self._wait_peer(sock)
            if kind == "chunk_short":
                self._send(c, sock, h + b"64\r\n" + b'{"a":"xxx')
                return "backend"
            if kind == "chunk_noterm":
                self._send(c, sock, h + b'7\r\n{"a":1}\r\n')
                return "backend"
            if kind == "chunk_nocrlf":
                self._send(c, sock, h + b'7\r\n{"a":1}XX0\r\n\r\n')
                return self._wait_peer(sock)
        if kind == "drip":
            n = int(p.get("n", "200"))
            gap = int(p.get("ms", "100")) / 1000.0
            body = b'{"d":"' + b"x" * max(0, n - 8) + b'"}'
            head = self._head(200, "OK", [("Content-Length", len(body))])
            data = head + body if p.get("part") == "head" else body
            if p.get("part") != "head":
                self._send(c, sock, head)
            for i in range(len(data)):
                self._send(c, sock, data[i:i + 1])
                self._sleep(sock, gap)
            return "keep"
        if kind == "big":
            n = int(p.get("bytes", str(50 << 20)))
            mode = p.get("mode", "cl")
            hdrs = {"cl": [("Content-Length", n)], "chunked": [("Transfer-Encoding", "chunked")],
                    "close": [("Connection", "close")]}[mode]
            self._send(c, sock, self._head(200, "OK", hdrs))
            piece = b"x" * CHUNK
            left = n
            first = True
            while left > 0:
                k = min(CHUNK, left)
                data = piece[:k]
                if first:
                    data = b'"' + data[1:]
                    first = False
                if left == k:
                    data = data[:-1] + b'"'
                if mode == "chunked":
                    data = b"%x\r\n" % k + data + b"\r\n"
                self._send(c, sock, data)
                left -= k
            if mode == "chunked":
                self._send(c, sock, b"0\r\n\r\n")
            return "backend" if mode == "close" else "keep"
        if kind == "deep":
            n = int(p.get("n", "100"))
            return self._full(c, sock, 200, b"[" * n + b"]" * n)
        if kind == "garbage":
            return self._full(c, sock, 200, b"this is <not> json {")
        if kind == "trailing":
            return self._full(c, sock, 200, b'{"a":1} x')
        if kind == "badutf8":
            bad = {"ff": b"\xff", "overlong": b"\xc0\xaf", "surrogate": b"\xed\xa0\x80",
                   "truncated": b"\xe2\x82"}[p.get("v", "ff")]
            return self._full(c, sock, 200, b'{"a":"x' + bad + b'y"}')
        if kind == "status":
            code = int(p.get("code", "500"))
            if code in (204, 304):
                self._send(c, sock, self._head(code, "No Body", [("ETag", '"x"')]))
                return "keep"
            return self._full(c, sock, code, (p.get("body") or '{"s":1}').encode())
        if kind == "info":
            for code in (p.get("codes") or "100").split(","):
                self._send(c, sock, b"HTTP/1.1 %d Info\r\n\r\n" % int(code))
                time.sleep(0.01)
            return self._full(c, sock, 200, b'{"info":true}')
        if kind == "info_only":
            self._send(c, sock, b"HTTP/1.1 %d Info\r\n\r\n" % int(p.get("code", "100")))
            return "backend"
        if kind == "redirect":
            code = int(p.get("code", "302"))
            return self._full(c, sock, code, b'{"redirect":true}',
                              [("Location", p.get("to") or "/json")], reason="Moved")
        if kind == "hang":
            return self._wait_peer(sock)
        if kind == "stray":
            first = (p.get("body") or '{"first":true}').encode()
            stray = (p.get("stray") or '{"stray":true}').encode()
            one = self._head(200, "OK", [("Content-Length", len(first))]) + first
            two = self._head(200, "OK", [("Content-Length", len(stray))]) + stray
            ms = int(p.get("ms", "0"))
            if ms <= 0:
                self._send(c, sock, one + two)
            else:
                self._send(c, sock, one)
                time.sleep(ms / 1000.0)  # not _sleep: a next request must stay unread
                self._send(c, sock, two)
            self.mark("stray", c.id)
            return "keep"
        if kind == "bighead":
            n = int(p.get("bytes", str(200 << 10)))
            line = max(16, int(p.get("line", str(n))))
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            self._send(c, sock, head)
            i = 0
            while n > 0:
                k = min(line, n)
                self._send(c, sock, b"X-Big-%d: " % i + b"b" * max(1, k - 12) + b"\r\n")
                n -= k
                i += 1
            self._send(c, sock, b"\r\n{}")
            return "keep"
        return self._full(c, sock, 404, b'{"error":"no such behaviour"}', reason="Not Found")


def never_accepting() -> Tuple[socket.socket, int]:
    """A listening socket on 127.0.0.1 that never accepts: connections complete in the
    kernel backlog and then nothing happens. Keep the socket open while it is used."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, s.getsockname()[1]


def refused_port() -> Tuple[socket.socket, int]:
    """A bound, never listening port on 127.0.0.1: connecting is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


_SHARED: Optional[EvilBackend] = None
_SHARED_LOCK = threading.Lock()


def shared() -> EvilBackend:
    """One EvilBackend for the whole test session (created on first use)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = EvilBackend()
        return _SHARED
