"""backend.py -- a controllable HTTP/1.1 backend for the black-box tests.

A thread-per-connection server on 127.0.0.1 (ephemeral port) written on raw
sockets, so every byte it sends is chosen here and every byte it receives is
recorded. It keeps connections alive like a real backend, so fanout's
connection reuse can be observed.

Behaviour is chosen by path:

    /p/<n>            a preset made with Backend.route(body, status, delay_ms, ...)
    /json?body=J      200 with body J (URL-encoded)
    /delay/<ms>       wait, then 200 {"delay": ms} (or ?body=J)
    /status/<code>    that status with a small JSON body (or ?body=J)
    /garbage          200, Content-Type application/json, body not JSON
    /hang             accept the request and never answer (until the peer closes)
    /hold/<key>       hold the answer until the test calls release(key), then 200
                      {"held": "<key>"} (or ?body=J); notices the peer closing meanwhile
    /reset            part of a status line and headers, then a TCP RST
    /bignum           {"n":12345678901234567890}
    /big?bytes=N      200 with a JSON string of about N bytes
    /redirect?to=P    302 to path P
    /id/<v>           {"id":"<v>"}
    /echo[/...]       the request as JSON: method, target, path, query, headers, body

Over TLS: Backend(ssl_context=ctx) serves the same behaviours over HTTPS
(a server-side ssl.SSLContext from the test; url() then says https). Each
connection's handshake runs on its own thread; a failed one is recorded in
tls_failures and the connection ends. The client certificate a connection
showed is in Conn.peer_cert, and the SNI names clients sent in sni_names
(ctx.sni_callback is set here).

Any query parameter not named above (e.g. tag=...) is ignored, which lets a
test find its own requests among everything recorded.

Records, per request: the raw request line, headers, body, connection id and
arrival time; per connection: when it was opened and when (and by whom) it
was closed. Tests wait for events with wait_for(); nothing here needs a
sleep to synchronise.
"""

import json
import select
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, List, Optional, Tuple

BIGNUM_BODY = b'{"n":12345678901234567890}'
GARBAGE_BODY = b"this is <not> json {"


@dataclass
class Conn:
    """One TCP connection accepted by the backend."""

    id: int
    peer: Tuple[str, int]
    opened_at: float  # time.monotonic()
    closed_at: Optional[float] = None  # set when the connection ended
    closed_by: Optional[str] = None  # "peer" (fanout closed it) or "backend"
    nrequests: int = 0
    peer_cert: Optional[dict] = None  # TLS: the client certificate shown (getpeercert())


@dataclass
class Req:
    """One HTTP request received by the backend."""

    conn_id: int
    at: float  # time.monotonic() when the whole request had arrived
    line: str  # raw request line, e.g. "GET /echo/a%0D%0Ab HTTP/1.1"
    method: str
    target: str  # raw request target as sent
    path: str  # target before '?', still percent-encoded
    query: str  # raw text after '?', "" if none
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """Value of the first header called 'name' (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def params(self) -> List[Tuple[str, str]]:
        """Query parameters, split on '&' and '=' and percent-decoded."""
        out = []
        if not self.query:
            return out
        for part in self.query.split("&"):
            k, _, v = part.partition("=")
            out.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
        return out

    def param(self, name: str) -> Optional[str]:
        for k, v in self.params():
            if k == name:
                return v
        return None


@dataclass
class Route:
    """A preset answer served at /p/<n>."""

    body: bytes
    status: int = 200
    delay_ms: int = 0
    content_type: str = "application/json"
    headers: List[Tuple[str, str]] = field(default_factory=list)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Whatever"


def _as_body(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":")).encode()


class Backend:
    """The server. Create, use .url(...)/.route(...), then .close()."""

    def __init__(self, ssl_context: Optional[ssl.SSLContext] = None):
        self._ssl = ssl_context
        self.tls_failures: List[str] = []  # under cond: handshakes that failed, why
        self.sni_names: List[Optional[str]] = []  # under cond: SNI of each handshake
        if ssl_context is not None:
            ssl_context.sni_callback = self._on_sni
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(256)
        self.port = self._lsock.getsockname()[1]
        self.cond = threading.Condition()
        self.requests: List[Req] = []  # under cond
        self.conns: List[Conn] = []  # under cond
        self._socks = {}  # conn id -> socket, under cond
        self._routes: List[Route] = []  # under cond
        self._released = set()  # /hold keys let go by release(), under cond
        self._holding = {}  # /hold key -> requests waiting on it now, under cond
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, name="backend-accept",
                                        daemon=True)
        self._thread.start()

    # ---- set-up -------------------------------------------------------------

    def url(self, path: str = "") -> str:
        """Absolute URL of 'path' on this backend."""
        return "%s://127.0.0.1:%d%s" % ("https" if self._ssl else "http", self.port, path)

    def route(self, body, status: int = 200, delay_ms: int = 0,
              content_type: str = "application/json", headers=()) -> str:
        """Register a preset answer; returns its path ("/p/<n>").
        'body' is bytes (sent as is) or any other value (sent as compact JSON)."""
        with self.cond:
            self._routes.append(Route(_as_body(body), status, delay_ms, content_type,
                                      list(headers)))
            return "/p/%d" % (len(self._routes) - 1)

    def release(self, *keys: str):
        """Let every /hold/<key> request for these keys answer, now and from now on."""
        with self.cond:
            self._released.update(keys)
            self.cond.notify_all()

    # ---- observation ---------------------------------------------------------

    def holding(self, key: str) -> int:
        """How many /hold/<key> requests are waiting for release(key) right now."""
        with self.cond:
            return self._holding.get(key, 0)

    def wait_for(self, pred: Callable[[], object], timeout: float, what: str = "condition"):
        """Wait until pred() (called under the lock) returns something truthy and return it;
        raise AssertionError after 'timeout' seconds."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend: timed out after %.1f s waiting for %s"
                                         % (timeout, what))
                self.cond.wait(left)

    def tagged(self, tag: str) -> List[Req]:
        """Requests whose query has tag=<tag>."""
        with self.cond:
            return [r for r in self.requests if r.param("tag") == tag]

    def wait_request(self, tag: str, timeout: float = 5.0) -> Req:
        """The first request carrying tag=<tag>, waiting for it to arrive."""
        return self.wait_for(lambda: next((r for r in self.requests
                                           if r.param("tag") == tag), None),
                             timeout, "a request with tag=%s" % tag)

    def assert_no_request(self, tag: str, grace: float = 0.2):
        """Assert no request with tag=<tag> arrives, allowing 'grace' seconds for one that
        was already on its way."""
        end = time.monotonic() + grace
        with self.cond:
            while True:
                got = [r.line for r in self.requests if r.param("tag") == tag]
                assert not got, "backend was called: %s" % got
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def conn(self, conn_id: int) -> Conn:
        with self.cond:
            return self.conns[conn_id]

    def wait_closed(self, conn_id: int, timeout: float) -> Conn:
        """Wait until connection 'conn_id' has ended; returns it."""
        return self.wait_for(lambda: self.conns[conn_id] if self.conns[conn_id].closed_at
                             else None, timeout, "connection %d to close" % conn_id)

    def nconns(self) -> int:
        with self.cond:
            return len(self.conns)

    def nrequests(self) -> int:
        with self.cond:
            return len(self.requests)

    def close(self):
        """Stop accepting and end every connection."""
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

    # ---- server --------------------------------------------------------------

    def _accept_loop(self):
        while True:
            try:
                sock, peer = self._lsock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.cond:
                if self._closing:
                    sock.close()
                    return
                c = Conn(len(self.conns), peer, time.monotonic())
                self.conns.append(c)
                self._socks[c.id] = sock
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(c, sock), name="backend-conn-%d" % c.id,
                             daemon=True).start()

    def _on_sni(self, sslobj, name, ctx):
        with self.cond:
            self.sni_names.append(name)
            self.cond.notify_all()

    def _handshake(self, c: Conn, sock: socket.socket):
        """The TLS side of a new connection, or None when the handshake failed."""
        try:
            sock.settimeout(10)
            tls = self._ssl.wrap_socket(sock, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            with self.cond:
                self.tls_failures.append("%s: %s" % (type(e).__name__, e))
                self.cond.notify_all()
            return None
        with self.cond:
            c.peer_cert = tls.getpeercert() or None
            self._socks[c.id] = tls
        return tls

    def _serve(self, c: Conn, sock: socket.socket):
        closed_by = "peer"
        buf = b""
        if self._ssl is not None:
            raw_sock, sock = sock, self._handshake(c, sock)
            if sock is None:
                sock = raw_sock
                closed_by = "backend"
        try:
            if closed_by == "backend":
                raise OSError("handshake failed")
            while True:
                req, buf = self._read_request(c, sock, buf)
                if req is None:
                    break  # the peer closed the connection
                keep = self._answer(sock, req)
                if keep is None:
                    break  # /hang saw the peer close
                if not keep:
                    closed_by = "backend"
                    break
        except OSError:
            pass  # ECONNRESET and friends: the peer ended it
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self.cond:
                c.closed_at = time.monotonic()
                c.closed_by = closed_by
                self._socks.pop(c.id, None)
                self.cond.notify_all()

    def _read_request(self, c: Conn, sock, buf):
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        line = lines[0]
        headers = []
        for h in lines[1:]:
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        body = b""
        if hmap.get("transfer-encoding", "").lower() == "chunked":
            body, buf = self._read_chunked(sock, buf)
        elif "content-length" in hmap:
            n = int(hmap["content-length"])
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError("eof in body")
                buf += chunk
            body, buf = buf[:n], buf[n:]
        parts = line.split(" ")
        method = parts[0]
        target = parts[1] if len(parts) > 1 else ""
        path, _, query = target.partition("?")
        req = Req(c.id, time.monotonic(), line, method, target, path, query, headers, body)
        with self.cond:
            c.nrequests += 1
            self.requests.append(req)
            self.cond.notify_all()
        return req, buf

    @staticmethod
    def _read_chunked(sock, buf):
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            size_line, buf = buf.split(b"\r\n", 1)
            n = int(size_line.split(b";")[0], 16)
            while len(buf) < n + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError("eof in chunk")
                buf += chunk
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                return body, buf

    @staticmethod
    def _send(sock, status, body: bytes, ctype="application/json", headers=(), close=False):
        head = "HTTP/1.1 %d %s\r\n" % (status, _reason(status))
        if ctype:
            head += "Content-Type: %s\r\n" % ctype
        head += "Content-Length: %d\r\n" % len(body)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        if close:
            head += "Connection: close\r\n"
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)

    @staticmethod
    def _wait(sock, seconds: float) -> bool:
        """Sleep up to 'seconds' but notice the peer closing; False if it did."""
        end = time.monotonic() + seconds
        if isinstance(sock, ssl.SSLSocket):  # No MSG_PEEK through TLS: just wait.
            time.sleep(seconds)
            return True
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            r, _, _ = select.select([sock], [], [], left)
            if r:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not data:
                    return False
                time.sleep(max(0.0, end - time.monotonic()))  # a pipelined request: just wait
                return True

    def _hold(self, sock, key: str) -> bool:
        """Wait until release(key) but notice the peer closing; False if it did."""
        watch = True  # stop watching once a pipelined request is waiting
        with self.cond:
            self._holding[key] = self._holding.get(key, 0) + 1
            self.cond.notify_all()
        try:
            while True:
                with self.cond:
                    if self.cond.wait_for(lambda: key in self._released, 0.05):
                        return True
                if not watch:
                    continue
                r, _, _ = select.select([sock], [], [], 0)
                if r:
                    try:
                        data = sock.recv(1, socket.MSG_PEEK)
                    except OSError:
                        return False
                    if not data:
                        return False
                    watch = False
        finally:
            with self.cond:
                self._holding[key] -= 1
                self.cond.notify_all()

    def _answer(self, sock, req: Req):
        """Serve one request. Returns True to keep the connection, False to close it,
        None when the peer closed it while we were waiting."""
        close = (req.header("Connection") or "").lower() == "close"
        seg = req.path.split("/")  # ["", "delay", "300"]
        kind = seg[1] if len(seg) > 1 else ""
        qbody = req.param("body")
        body = qbody.encode() if qbody is not None else None
        status, ctype, extra, delay = 200, "application/json", [], 0.0

        if kind == "p" and len(seg) == 3:
            with self.cond:
                r = self._routes[int(seg[2])]
            status, body, ctype, extra, delay = (r.status, r.body, r.content_type, r.headers,
                                                 r.delay_ms / 1000.0)
        elif kind == "json":
            body = body if body is not None else b"{}"
        elif kind == "delay":
            delay = int(seg[2]) / 1000.0
            body = body if body is not None else b'{"delay":%d}' % int(seg[2])
        elif kind == "status":
            status = int(seg[2])
            body = body if body is not None else b'{"status":%d}' % status
        elif kind == "garbage":
            body = GARBAGE_BODY
        elif kind == "hold" and len(seg) == 3:
            key = urllib.parse.unquote(seg[2])
            if not self._hold(sock, key):
                return None
            body = body if body is not None else json.dumps(
                {"held": key}, separators=(",", ":")).encode()
        elif kind == "hang":
            while sock.recv(65536):
                pass
            return None
        elif kind == "reset":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif kind == "bignum":
            body = BIGNUM_BODY
        elif kind == "big":
            n = int(req.param("bytes") or "0")
            body = b'"' + b"x" * max(0, n - 2) + b'"'
        elif kind == "redirect":
            status, body = 302, b'{"redirect":true}'
            extra = [("Location", req.param("to") or "/json")]
        elif kind == "id" and len(seg) == 3:
            body = json.dumps({"id": urllib.parse.unquote(seg[2])},
                              separators=(",", ":")).encode()
        elif kind == "echo":
            body = json.dumps({
                "method": req.method,
                "target": req.target,
                "path": req.path,
                "query": req.query,
                "headers": req.headers,
                "body": req.body.decode("utf-8", "replace"),
            }, separators=(",", ":")).encode()
        else:
            status, body = 404, b'{"error":"no such behaviour"}'

        if delay and not self._wait(sock, delay):
            return None
        self._send(sock, status, body, ctype, extra, close)
        return not close


def tag() -> str:
    """A fresh value for a tag=... query parameter."""
    return uuid.uuid4().hex[:12]


def closed_port() -> Tuple[socket.socket, int]:
    """A port on 127.0.0.1 where connecting is refused: bound, never listening.
    Keep the returned socket open for as long as the port must stay refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]
