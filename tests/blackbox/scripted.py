"""scripted.py -- loopback backends whose every answer a test scripts in Python.

Scripted(fn) listens on 127.0.0.1 (ephemeral port, HTTP/1.1 keep-alive, a thread per
connection) and answers each request with fn(hit), where hit is the request (method, path,
headers, its 1-based number n on this backend). fn returns (status, body) or
(status, body, headers) and may sleep first; body is bytes or any JSON value. Every request
is recorded (.hits) before fn runs, so a test can count what reached the backend, and
wait_hits() polls for a count instead of sleeping.

refused_port() is a loopback port with nothing listening (connect: refused).
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hit:
    def __init__(self, n, method, path, headers, at, body=b""):
        self.n = n
        self.body = body  # the request body as sent
        self.method = method
        self.path = path
        self.headers = headers  # dict, lower-case names
        self.at = at  # time.monotonic()

    def header(self, name):
        return self.headers.get(name.lower())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # A peer that closed (an aborted hedge, a refused retry) is not news here.


class Scripted:
    def __init__(self, fn):
        self.fn = fn
        self.lock = threading.Condition()
        self.hits = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                # Head and body go in separate writes: without this, Nagle and the peer's
                # delayed ACK add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self):
                n_len = int(self.headers.get("Content-Length") or 0)
                sent = self.rfile.read(n_len) if n_len else b""
                with outer.lock:
                    hit = Hit(len(outer.hits) + 1, self.command, self.path,
                              {k.lower(): v for k, v in self.headers.items()}, time.monotonic(), sent)
                    outer.hits.append(hit)
                    outer.lock.notify_all()
                threading.current_thread().conn = self.connection  # for scripts that watch it
                out = outer.fn(hit)
                status, body = out[0], out[1]
                headers = out[2] if len(out) > 2 else {}
                if not isinstance(body, bytes):
                    body = json.dumps(body, separators=(",", ":")).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def count(self, pred=None):
        with self.lock:
            return sum(1 for h in self.hits if pred is None or pred(h))

    def wait_hits(self, n, timeout=10.0):
        end = time.monotonic() + timeout
        with self.lock:
            while len(self.hits) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend: %d hits, waited for %d" % (len(self.hits), n))
                self.lock.wait(left)

    def wait_count(self, pred, n, timeout):
        """Wait until at least n hits satisfy pred; False after 'timeout' seconds."""
        end = time.monotonic() + timeout
        with self.lock:
            while sum(1 for h in self.hits if pred(h)) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def refused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
