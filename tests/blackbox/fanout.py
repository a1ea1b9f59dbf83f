"""fanout.py -- run the fanout binary under test and talk HTTP to it.

Fanout.start() writes the config, launches the binary with
--listen 127.0.0.1:0, learns the port from the "listening" JSON line on
stdout and polls GET /health. Fanout.stop() sends SIGTERM and checks the exit
code and that no sanitizer wrote a report. Both stdout and stderr are drained
by threads for the whole life of the process, so a chatty server never
blocks on a full pipe and the output is at hand when a test fails.

Also: config builders (endpoint(), backend()) and a small HTTP client
(request(), raw()) that returns status, headers, raw body bytes and the time
the exchange took.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Dict, List, Optional

from blackbox.promparse import parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = {
    "plain": os.path.join(REPO, "build", "fanout"),
    "asan": os.path.join(REPO, "build", "asan", "fanout"),
    "tsan": os.path.join(REPO, "build", "tsan", "fanout"),
}

SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def allow_missing() -> bool:
    return os.environ.get("FANOUT_ALLOW_MISSING") == "1"


def sanitizer_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


# ---- config builders -----------------------------------------------------------------------

def backend(name: str, url: str, **kw) -> dict:
    """One backend entry: backend("user", b.url("/p/0"), required=True, timeout_ms=100)."""
    d = {"name": name, "url": url}
    d.update(kw)
    return d


def write_config(path: str, config) -> None:
    """Write a config file: a dict as JSON, or text as is (for broken configs)."""
    with open(path, "w") as f:
        if isinstance(config, str):
            f.write(config)
        else:
            json.dump(config, f, indent=2)


def endpoint(path: str, backends: List[dict], **kw) -> dict:
    """One endpoint entry: endpoint("/api/x/{id}", [...], timeout_ms=200, report=True)."""
    d = {"path": path, "backends": backends}
    d.update(kw)
    return d


def vm_kb(pid: int, field: str) -> int:
    """A size field of /proc/PID/status (VmRSS, VmHWM, ...) in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


# ---- HTTP client ---------------------------------------------------------------------------

class Resp:
    """A complete HTTP answer."""

    def __init__(self, status: int, headers, body: bytes, elapsed: float):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive .get)
        self.body = body
        self.elapsed = elapsed  # seconds from sending the request to the last body byte

    def json(self):
        return json.loads(self.body)

    def pairs(self):
        """Top-level object as a list of (key, value) in wire order; the values are parsed
        normally (objects become dicts)."""
        class Pairs(list):
            pass

        def plain(v):
            if isinstance(v, Pairs):
                return {k: plain(x) for k, x in v}
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        top = json.loads(self.body, object_pairs_hook=Pairs)
        assert isinstance(top, Pairs), "not a JSON object: %r" % self
        return [(k, plain(v)) for k, v in top]

    def keys(self) -> List[str]:
        return [k for k, _ in self.pairs()]

    def __repr__(self):
        return "<Resp %d %r %.0f ms %r>" % (self.status, dict(self.headers.items()),
                                             self.elapsed * 1000, self.body[:600])


def request(port: int, method: str, path: str, headers: Optional[dict] = None,
            body: Optional[bytes] = None, timeout: float = 15.0,
            conn: Optional[http.client.HTTPConnection] = None) -> Resp:
    """One request. 'path' is sent exactly as given. Reuses 'conn' when passed."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        t0 = time.monotonic()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.headers, data, time.monotonic() - t0)
    finally:
        if own:
            conn.close()


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes, half-close, return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def error_code(r: Resp) -> str:
    """The "code" of an error body, asserting the error shape on the way."""
    assert r.headers.get("Content-Type", "").startswith("application/json"), r
    doc = r.json()
    assert isinstance(doc.get("error"), dict), r
    assert isinstance(doc["error"].get("message"), str), r
    return doc["error"].get("code")


# ---- the process ---------------------------------------------------------------------------

class Fanout:
    """A running fanout process."""

    def __init__(self, argv: List[str], variant: str):
        self.argv = argv
        self.variant = variant
        self.stdout: List[str] = []  # lines, under cond
        self.stderr: List[str] = []  # lines, under cond
        self.cond = threading.Condition()
        self.port: Optional[int] = None
        self.reaped = False  # a test already judged the exit (wait_exit)
        self.config_path: Optional[str] = None  # the -c file, when there is one
        self.health_path: Optional[str] = "/health"  # readiness probe; None = the route is off
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=sanitizer_env(), cwd=REPO)
        self._readers = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout),
                                          daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr),
                                          daemon=True)]
        for t in self._readers:
            t.start()

    @classmethod
    def start(cls, binary: str, variant: str, config: Optional[dict], workdir: str,
              args=(), name: str = "fanout") -> "Fanout":
        argv = [binary]
        path = None
        if config is not None:
            path = os.path.join(workdir, "%s-%s.json" % (name, variant))
            write_config(path, config)
            argv += ["-c", path]
        argv += ["--listen", "127.0.0.1:0"] + list(args)
        fo = cls(argv, variant)
        fo.config_path = path
        if config is not None:
            fo.health_path = config.get("health_path", "/health")
        try:
            fo._wait_listening()
            if fo.health_path is not None:
                fo._wait_healthy()
        except BaseException:
            fo.kill()
            raise
        return fo

    def _drain(self, stream, lines):
        for b in iter(stream.readline, b""):
            with self.cond:
                lines.append(b.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def output(self) -> str:
        with self.cond:
            return ("command: %s\nexit: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                    % (" ".join(self.argv), self.proc.poll(), "\n".join(self.stdout[-80:]),
                       "\n".join(self.stderr[-200:])))

    def events(self) -> List[dict]:
        """The stdout lines that parse as JSON objects."""
        out = []
        with self.cond:
            lines = list(self.stdout)
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                out.append(ev)
        return out

    def wait_event(self, pred, timeout: float = 5.0, what: str = "a log line") -> dict:
        """The first stdout JSON object for which pred(obj) is true, waiting up to 'timeout'."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events():
                    if pred(ev):
                        return ev
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1f s\n%s" % (what, timeout,
                                                                       self.output()))
                self.cond.wait(left)

    def _listening_port(self):
        for ev in self.events():
            if ev.get("event") == "listening":
                return int(ev["port"])
        return None

    def _wait_listening(self):
        end = time.monotonic() + START_TIMEOUT
        with self.cond:
            while True:
                port = self._listening_port()
                if port:
                    self.port = port
                    return
                if self.proc.poll() is not None:
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.1))
        raise AssertionError("fanout gave no \"listening\" line on stdout\n" + self.output())

    def _wait_healthy(self):
        end = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                r = self.get(self.health_path, timeout=2)
                if r.status == 200:
                    assert r.json() == {"status": "ok"}, r
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)  # polling interval for readiness, not synchronisation
        raise AssertionError("GET " + self.health_path + " never answered 200 (last: %r)\n%s"
                             % (last, self.output()))

    # ---- HTTP ----

    def request(self, method, path, headers=None, body=None, timeout=15.0, conn=None) -> Resp:
        return request(self.port, method, path, headers, body, timeout, conn)

    def get(self, path, headers=None, timeout=15.0) -> Resp:
        return self.request("GET", path, headers, timeout=timeout)

    def post(self, path, body, headers=None, timeout=15.0) -> Resp:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, h, body, timeout=timeout)

    def connect(self, timeout=15.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def wait_metrics(self, pred, timeout: float = 10.0, what: str = "a metrics condition",
                     path: str = "/metrics"):
        """Scrape 'path' until pred(exposition) is truthy and return the exposition; raise
        AssertionError with the last scrape after 'timeout' seconds. For gauges that change
        when fanout gets round to it (connections closed, calls ended)."""
        end = time.monotonic() + timeout
        while True:
            r = self.get(path, timeout=5)
            assert r.status == 200, r
            m = parse(r.body.decode())
            if pred(m):
                return m
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError("no %s within %.1f s; last scrape:\n%s\n%s"
                                     % (what, timeout, r.body.decode()[:1500], self.output()))
            time.sleep(0.02)  # polling interval, not synchronisation

    # ---- health of the process ----

    def sanitizer_report(self) -> Optional[str]:
        with self.cond:
            for line in self.stderr:
                if any(m in line for m in SANITIZER_MARKS):
                    return line
        return None

    def check_alive(self):
        """Assert the process still runs and no sanitizer has spoken."""
        assert self.proc.poll() is None, "fanout died\n" + self.output()
        mark = self.sanitizer_report()
        assert mark is None, "sanitizer report: %s\n%s" % (mark, self.output())

    def wait_exit(self, timeout: float) -> Optional[int]:
        """Wait for the process to end by itself; returns its exit code, or kills it and
        returns None after 'timeout' seconds. Either way the test has judged the exit, so
        stop() only checks for sanitizer reports afterwards."""
        self.reaped = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop(self) -> int:
        """SIGTERM, wait, assert exit 0 and no sanitizer report."""
        if self.reaped:
            for t in self._readers:
                t.join(5)
            mark = self.sanitizer_report()
            assert mark is None, "sanitizer report: %s\n%s" % (mark, self.output())
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("fanout did not exit within %.0f s of SIGTERM\n%s"
                                 % (STOP_TIMEOUT, self.output()))
        for t in self._readers:
            t.join(5)
        mark = self.sanitizer_report()
        assert mark is None, "sanitizer report: %s\n%s" % (mark, self.output())
        assert rc == 0, "fanout exited %d after SIGTERM\n%s" % (rc, self.output())
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def run_cli(binary: str, args, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Run the binary to completion (CLI modes); asserts no sanitizer report."""
    p = subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout, env=sanitizer_env(), cwd=REPO)
    for m in SANITIZER_MARKS:
        assert m not in p.stderr, "sanitizer report from %s %s:\n%s" % (binary, args, p.stderr)
    return p
