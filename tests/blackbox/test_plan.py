"""One request, one plan: the defects fixed with the plan, the fan-in and the pipeline.

Each test starts its own fanout (spawn); backends are the session's loopback Backend.
"""

import json
import socket
import threading
import time

from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code
from blackbox.metrics import scrape


def test_max_connections_holds_under_a_burst(spawn, backend):
    """Connections are counted when accepted, so a burst cannot pass max_connections before
    the connections' records exist."""
    fo = spawn({"max_connections": 10, "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    socks = []
    barrier = threading.Barrier(4)

    def burst():
        barrier.wait()
        for _ in range(15):
            try:
                socks.append(socket.create_connection(("127.0.0.1", fo.port), timeout=5))
            except OSError:
                pass
    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served = 0
    for s in socks:
        try:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                served += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    assert 1 <= served <= 10, "%d of %d connections were served with max_connections 10" % (
        served, len(socks))


def test_allow_lists_every_method_however_long(spawn, backend):
    methods = ["M%s" % chr(ord("A") + i) * 8 for i in range(20)]  # 20 x 9 bytes: > 128
    fo = spawn({"endpoints": [ep("/m", [be("a", backend.url("/json"))], method=m)
                              for m in methods]})
    r = fo.get("/m")
    assert r.status == 405, r
    assert r.headers.get("Allow") == ", ".join(methods), r.headers.get("Allow")


def test_batch_calls_count_under_the_entry_that_admitted_them(spawn, backend):
    first, second = "127.0.0.1:%d" % backend.port, "localhost:%d" % backend.port
    fo = spawn({"aggregate": {"allow_hosts": [first, second]}})
    body = json.dumps({"requests": {"a": {"url": "http://%s/json" % second}}})
    assert fo.post("/aggregate", body.encode()).status == 200
    m = scrape(fo)
    assert m.get("fanout_backend_calls_total", endpoint="POST /aggregate", backend=second,
                 outcome="ok") == 1
    assert m.get("fanout_backend_calls_total", endpoint="POST /aggregate", backend=first,
                 outcome="ok") == 0


def test_json_depth_is_the_start_up_one_for_batches_too(spawn, backend):
    """max_json_depth needs a restart, for batch bodies as for backend bodies: a reload that
    raises it changes neither, and says so."""
    cfg = {"max_json_depth": 4, "aggregate": {"allow_hosts": ["127.0.0.1:%d" % backend.port]}}
    fo = spawn(cfg)
    deep = {"requests": {"a": {"url": backend.url("/json"), "body": [[[[[1]]]]]}}}
    r = fo.post("/aggregate", json.dumps(deep).encode())
    assert r.status == 400 and error_code(r) == "invalid_json", r
    cfg["max_json_depth"] = 64
    with open(fo.config_path, "w") as f:
        json.dump(cfg, f)
    n = sum(1 for e in fo.events() if e.get("event") == "reloaded")
    fo.proc.send_signal(1)  # SIGHUP
    ev = fo.wait_event(lambda e: e.get("event") == "reloaded" and
                       sum(1 for x in fo.events() if x.get("event") == "reloaded") > n, 5)
    assert "max_json_depth" in ev.get("restart_needed_for", ""), ev
    r = fo.post("/aggregate", json.dumps(deep).encode())
    assert r.status == 400 and error_code(r) == "invalid_json", r


def test_bodyless_post_backend_sends_content_length_zero(spawn, backend):
    t = tag()
    fo = spawn({"endpoints": [ep("/p", [be("p", backend.url("/echo?tag=" + t), method="POST")])]})
    r = fo.get("/p")
    assert r.status == 200, r
    seen = backend.wait_request(t, 5)
    assert seen.header("Content-Length") == "0", seen.headers
    assert seen.header("Content-Type") is None, seen.headers


def test_head_backend_succeeds_as_null(spawn, backend):
    fo = spawn({"endpoints": [ep("/h", [be("h", backend.url("/json"), method="HEAD")])]})
    r = fo.get("/h")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    assert r.json() == {"h": None}, r
