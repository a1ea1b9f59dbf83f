#!/usr/bin/env python3
"""client.py -- small HTTP/1.1 clients for the benchmark (Python 3 standard library only).

Two jobs wrk cannot do:

  requests  send exactly COUNT requests over a few kept-alive connections and check each answer
            (bench/profile.sh: the instruction count per request needs an exact request count);
  idle      open N keep-alive connections, make one request on each, then hold them all open
            while the caller reads the server's memory (bench.py's idle-connections scenario).

Usage:
  client.py requests --url http://127.0.0.1:PORT/api/d/42 --count 2000 [--conns 4]
                     [--method POST --body-file F] [--expect-status 200]
  client.py idle --host 127.0.0.1 --port PORT --path /api/d/1 --count 10000 --hold 5
"""

import argparse
import http.client
import json
import os
import selectors
import socket
import ssl
import sys
import threading
import time
import urllib.parse


def run_requests(url, count, conns=1, method="GET", body=None, headers=None, expect_status=200):
    """Send exactly 'count' requests to 'url' (http or https) over 'conns' keep-alive
    connections (threads).

    Returns a dict: sent, ok (status == expect_status), bad (other status or error),
    reconnects (connections the server closed under us), seconds, first_error.
    """
    u = urllib.parse.urlsplit(url)
    target = u.path + ("?" + u.query if u.query else "")
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "bad": 0, "reconnects": 0, "first_error": None}

    def take():
        with lock:
            if state["next"] >= count:
                return False
            state["next"] += 1
            return True

    def note(ok, err=None, reconnect=False):
        with lock:
            state["ok" if ok else "bad"] += 1
            if reconnect:
                state["reconnects"] += 1
            if err and state["first_error"] is None:
                state["first_error"] = err

    def connect():
        if u.scheme == "https":  # the bench's own certificate: encrypted, not verified
            return http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=30,
                                               context=ssl._create_unverified_context())
        return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)

    def worker():
        c = connect()
        while take():
            try:
                c.request(method, target, body=body, headers=hdrs)
                r = c.getresponse()
                r.read()
                good = r.status == expect_status
                note(good, None if good else "status %d" % r.status,
                     reconnect=r.will_close)
                if r.will_close:
                    c.close()
            except (OSError, http.client.HTTPException) as e:
                note(False, "%s: %s" % (type(e).__name__, e), reconnect=True)
                c.close()
        c.close()

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker) for _ in range(max(1, conns))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return {"sent": state["next"], "ok": state["ok"], "bad": state["bad"],
            "reconnects": state["reconnects"], "seconds": time.monotonic() - t0,
            "first_error": state["first_error"]}


class IdleConnections:
    """N client connections that each made one keep-alive request and now sit idle.

    open() connects in batches (the listen backlog is finite), sends one request on each
    connection and waits for each complete answer; connections the server closes or refuses
    are counted, not retried. count_open() tells how many are still open. close() closes all.
    """

    def __init__(self, host, port, path, count, batch=250, timeout=5.0):
        self.host = host                  # server address
        self.port = port                  # server port
        self.path = path                  # request target of the one request per connection
        self.count = count                # connections wanted
        self.batch = batch                # connections opened before waiting for answers
        self.timeout = timeout            # seconds to wait for one batch's answers
        self.socks = []                   # connections that got a complete answer and stayed
        self.refused = 0                  # connect() failed
        self.closed_early = 0             # closed by the server before or right after answering
        self.no_answer = 0                # no complete answer within the timeout
        self.status = {}                  # status code -> count
        self.first_error = None           # first connect error text
        self.gave_up_at = None            # connections opened when a whole batch failed

    def _request(self):
        return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n\r\n"
                % (self.path, self.host, self.port)).encode()

    @staticmethod
    def _complete(buf):
        """Return (status, complete?, server_closes?) for the bytes received so far."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None, False, False
        head = buf[:end].decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split()[1])
        except (IndexError, ValueError):
            return None, True, True
        length = None
        chunked = False
        closes = False
        for line in head[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            v = v.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v:
                chunked = True
            elif k == "connection" and v == "close":
                closes = True
        body = buf[end + 4:]
        if chunked:
            return status, body.endswith(b"0\r\n\r\n"), closes
        if length is None:
            return status, False, True
        return status, len(body) >= length, closes

    def open(self):
        req = self._request()
        sel = selectors.DefaultSelector()
        try:
            for start in range(0, self.count, self.batch):
                kept = len(self.socks)
                pending = {}
                for _ in range(start, min(self.count, start + self.batch)):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.settimeout(5.0)
                    try:
                        s.connect((self.host, self.port))
                        s.sendall(req)
                    except OSError as e:
                        self.refused += 1
                        if self.first_error is None:
                            self.first_error = "%s: %s" % (type(e).__name__, e)
                        s.close()
                        continue
                    s.setblocking(False)
                    pending[s.fileno()] = [s, b""]
                    sel.register(s, selectors.EVENT_READ)
                deadline = time.monotonic() + self.timeout
                while pending and time.monotonic() < deadline:
                    for key, _ in sel.select(timeout=0.5):
                        ent = pending.get(key.fd)
                        if ent is None:
                            continue
                        s = ent[0]
                        try:
                            data = s.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            self.closed_early += 1
                            sel.unregister(s)
                            s.close()
                            del pending[key.fd]
                            continue
                        ent[1] += data
                        status, done, closes = self._complete(ent[1])
                        if done:
                            self.status[status] = self.status.get(status, 0) + 1
                            sel.unregister(s)
                            del pending[key.fd]
                            if closes:
                                self.closed_early += 1
                                s.close()
                            else:
                                self.socks.append(s)
                for s, _ in pending.values():
                    self.no_answer += 1
                    sel.unregister(s)
                    s.close()
                if len(self.socks) == kept:
                    self.gave_up_at = start  # a whole batch failed: the server is full
                    break
        finally:
            sel.close()

    def count_open(self):
        """Connections the server has not closed (no EOF or error pending on them)."""
        alive = 0
        for s in self.socks:
            try:
                data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                if data:
                    alive += 1  # unexpected bytes, but still open
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def summary(self):
        return {"wanted": self.count, "answered_open": len(self.socks), "refused": self.refused,
                "closed_early": self.closed_early, "no_answer": self.no_answer,
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "first_error": self.first_error, "gave_up_at": self.gave_up_at}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("requests")
    r.add_argument("--url", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--conns", type=int, default=1)
    r.add_argument("--method", default="GET")
    r.add_argument("--body-file")
    r.add_argument("--expect-status", type=int, default=200)
    i = sub.add_parser("idle")
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--path", default="/health")
    i.add_argument("--count", type=int, default=10000)
    i.add_argument("--hold", type=float, default=5.0)
    a = ap.parse_args(argv)
    if a.cmd == "requests":
        body = None
        if a.body_file:
            with open(a.body_file, "rb") as f:
                body = f.read()
        res = run_requests(a.url, a.count, a.conns, a.method, body, None, a.expect_status)
        print(json.dumps(res))
        return 0 if res["bad"] == 0 else 1
    idle = IdleConnections(a.host, a.port, a.path, a.count)
    idle.open()
    time.sleep(a.hold)
    res = idle.summary()
    res["still_open"] = idle.count_open()
    idle.close()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        os._exit(130)
