"""Operations: /ready, /metrics, the access log, request ids, probe paths, drain, reload."""

import json
import re
import signal
import threading
import time

import pytest

from blackbox.backend import Backend, tag
from blackbox.fanout import backend as be, endpoint as ep, error_code, run_cli, write_config
from blackbox.metrics import scrape

SLACK = 0.25
GENERATED_ID = re.compile(r"[0-9a-f]{20}")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def fanout_config(b):
    return {
        "timeout_ms": 2000,
        "log": {"level": "info", "access": True, "probes": False},
        "aggregate": {"allow_hosts": ["127.0.0.1:%d" % b.port]},
        "endpoints": [
            ep("/api/x/{id}", [be("a", b.url("/id/{id}")), be("st", b.url("/status/503"))]),
            ep("/api/echo/{tag}", [be("e", b.url("/echo?tag={tag}"))]),
            ep("/api/hang/{tag}", [be("h", b.url("/hang?tag={tag}"))], timeout_ms=1500),
        ],
    }


def in_thread(fn):
    """Run fn() in a thread; returns (thread, result dict with "r" or "exc")."""
    out = {}

    def run():
        try:
            out["r"] = fn()
        except BaseException as e:  # reported by the test that joins
            out["exc"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


# ---- probes --------------------------------------------------------------------------------

def test_ready(fo):
    r = fo.get("/ready")
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r
    assert r.json() == {"status": "ready"}


def test_probe_paths_configurable_and_off(spawn, backend):
    fo = spawn({"health_path": "/hz", "ready_path": None, "metrics_path": "/m",
                "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    r = fo.get("/hz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    for path in ("/health", "/ready", "/metrics"):
        r = fo.get(path)
        assert r.status == 404, (path, r)
        assert error_code(r) == "not_found", (path, r)
    scrape(fo, "/m")


# ---- metrics -------------------------------------------------------------------------------

SERIES = [
    "fanout_info", "fanout_ready", "fanout_requests_in_flight", "fanout_jobs_queued",
    "fanout_backend_calls_in_flight", "fanout_client_connections",
    "fanout_backend_connections_opened_total", "fanout_config_reloads_total",
    "fanout_requests_total", "fanout_request_duration_seconds_bucket",
    "fanout_request_duration_seconds_sum", "fanout_request_duration_seconds_count",
    "fanout_backend_calls_total", "fanout_backend_call_duration_seconds_bucket",
    "fanout_backend_call_duration_seconds_sum", "fanout_backend_call_duration_seconds_count",
]


def test_metrics_series(fo, fanout_bin):
    assert fo.get("/api/x/1").status == 200
    m = scrape(fo)
    for name in SERIES:
        assert m.has(name), "series %s missing\n%s" % (name, m.text[:3000])
    version = run_cli(fanout_bin, ["--version"]).stdout.split()[-1]
    assert m.get("fanout_info", version=version) == 1, m.text[:500]
    assert m.get("fanout_ready") == 1
    assert m.get("fanout_requests_in_flight") == 0
    assert m.get("fanout_backend_calls_in_flight") == 0
    assert "result" in m.text and m.has("fanout_config_reloads_total")
    assert m.get("fanout_config_reloads_total", result="ok") == 0
    assert m.get("fanout_config_reloads_total", result="error") == 0


def test_metrics_count_requests_and_calls(fo):
    ep_label = "GET /api/x/{id}"
    m0 = scrape(fo)
    for i in range(3):
        assert fo.get("/api/x/%d" % i).status == 200
    assert fo.get("/nope").status == 404
    m1 = scrape(fo)

    def delta(name, **labels):
        return m1.get(name, **labels) - m0.get(name, **labels)

    assert delta("fanout_requests_total", endpoint=ep_label, code="2xx") == 3
    assert delta("fanout_requests_total", endpoint="other", code="4xx") == 1
    assert m1.sum("fanout_requests_total") - m0.sum("fanout_requests_total") == 4
    assert delta("fanout_request_duration_seconds_count", endpoint=ep_label) == 3
    assert m1.get("fanout_request_duration_seconds_bucket", endpoint=ep_label, le="+Inf") == \
        m1.get("fanout_request_duration_seconds_count", endpoint=ep_label)
    assert delta("fanout_request_duration_seconds_sum", endpoint=ep_label) > 0
    assert delta("fanout_backend_calls_total", endpoint=ep_label, backend="a", outcome="ok") == 3
    assert delta("fanout_backend_calls_total", endpoint=ep_label, backend="st",
                 outcome="status") == 3
    assert delta("fanout_backend_call_duration_seconds_count", endpoint=ep_label,
                 backend="a") == 3
    assert m1.get("fanout_backend_call_duration_seconds_bucket", endpoint=ep_label, backend="a",
                  le="+Inf") == m1.get("fanout_backend_call_duration_seconds_count",
                                       endpoint=ep_label, backend="a")


def test_probes_not_counted(fo):
    m0 = scrape(fo)
    for path in ("/health", "/health", "/ready", "/ready"):
        assert fo.get(path).status == 200
    m1 = scrape(fo)
    assert m1.sum("fanout_requests_total") == m0.sum("fanout_requests_total")
    assert m1.sum("fanout_request_duration_seconds_count") == \
        m0.sum("fanout_request_duration_seconds_count")


def test_metrics_batch_labels(fo, backend):
    host = "127.0.0.1:%d" % backend.port
    m0 = scrape(fo)
    r = fo.post("/aggregate", {"requests": {"a": {"url": backend.url("/json")},
                                            "b": {"url": backend.url("/status/500")}}})
    assert r.status == 200, r
    m1 = scrape(fo)
    assert m1.get("fanout_requests_total", endpoint="POST /aggregate", code="2xx") - \
        m0.get("fanout_requests_total", endpoint="POST /aggregate", code="2xx") == 1
    assert m1.get("fanout_backend_calls_total", endpoint="POST /aggregate", backend=host,
                  outcome="ok") - m0.get("fanout_backend_calls_total", endpoint="POST /aggregate",
                                         backend=host, outcome="ok") == 1
    assert m1.get("fanout_backend_calls_total", endpoint="POST /aggregate", backend=host,
                  outcome="status") - m0.get("fanout_backend_calls_total",
                                             endpoint="POST /aggregate", backend=host,
                                             outcome="status") == 1


def test_metrics_gauges_while_a_request_waits(fo, backend):
    t = tag()
    m0 = scrape(fo)
    th, out = in_thread(lambda: fo.get("/api/hang/" + t, headers={"X-Timeout-Ms": "600"}))
    backend.wait_request(t, 2)
    m = scrape(fo)
    assert m.get("fanout_requests_in_flight") >= 1, m.text[:1500]
    assert m.get("fanout_backend_calls_in_flight") >= 1, m.text[:1500]
    assert m.get("fanout_client_connections") >= 2, m.text[:1500]
    th.join(5)
    assert out["r"].status == 504, out
    m1 = scrape(fo)
    assert m1.get("fanout_requests_in_flight") == 0
    assert m1.get("fanout_backend_calls_in_flight") == 0
    assert m1.get("fanout_backend_calls_total", endpoint="GET /api/hang/{tag}", backend="h",
                  outcome="timeout") - m0.get("fanout_backend_calls_total",
                                              endpoint="GET /api/hang/{tag}", backend="h",
                                              outcome="timeout") == 1


def test_metrics_backend_connections_opened(spawn):
    b = Backend()
    try:
        fo = spawn({"endpoints": [ep("/x", [be("a", b.url("/json")), be("b", b.url("/json"))]),
                                  ep("/h", [be("h", b.url("/hang"))], timeout_ms=100)]})
        for path in ("/x", "/h", "/x", "/h", "/x"):
            fo.get(path)
        opened = scrape(fo).get("fanout_backend_connections_opened_total")
        assert opened == b.nconns() and opened >= 3, (opened, b.nconns())
    finally:
        b.close()


# ---- access log ----------------------------------------------------------------------------

def access_line(fo, rid, timeout=5.0):
    return fo.wait_event(lambda e: e.get("event") == "access" and e.get("id") == rid, timeout,
                         "access line for request id %s" % rid)


def test_access_log_fanout_request(fo):
    rid = "t-" + tag()
    r = fo.get("/api/x/7", headers={"X-Request-Id": rid})
    assert r.status == 200, r
    ev = access_line(fo, rid)
    assert TS.fullmatch(ev.get("ts", "")) and ev.get("level") == "info", ev
    assert ev["method"] == "GET" and ev["path"] == "/api/x/7", ev
    assert ev["endpoint"] == "GET /api/x/{id}" and ev["status"] == 200, ev
    assert ev["complete"] is False and isinstance(ev["ms"], (int, float)), ev
    bs = ev["backends"]
    assert list(bs) == ["a", "st"], ev
    assert bs["a"]["outcome"] == "ok" and bs["a"]["status"] == 200, ev
    assert bs["st"]["outcome"] == "status" and bs["st"]["status"] == 503, ev
    assert all(isinstance(b["ms"], (int, float)) for b in bs.values()), ev


def test_access_log_other_request_and_no_probes(fo):
    rid_probe, rid_404 = "p-" + tag(), "n-" + tag()
    assert fo.get("/health", headers={"X-Request-Id": rid_probe}).status == 200
    assert fo.get("/nope?x=1", headers={"X-Request-Id": rid_404}).status == 404
    ev = access_line(fo, rid_404)
    assert ev["status"] == 404 and ev["endpoint"] == "other" and ev["method"] == "GET", ev
    assert ev["path"].startswith("/nope"), ev
    assert "complete" not in ev and "backends" not in ev, ev
    assert not [e for e in fo.events() if e.get("id") == rid_probe], "a probe was access-logged"


def test_access_log_off_and_probes_on(spawn, backend):
    quiet = spawn({"log": {"access": False},
                   "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    chatty = spawn({"log": {"access": True, "probes": True},
                    "endpoints": [ep("/x", [be("a", backend.url("/json"))])]})
    for fo in (quiet, chatty):
        assert fo.get("/x").status == 200
        assert fo.get("/health").status == 200
        fo.stop()  # everything it wrote is in now
    assert not [e for e in quiet.events() if e.get("event") == "access"], quiet.output()
    paths = [e.get("path") for e in chatty.events() if e.get("event") == "access"]
    assert "/x" in paths and "/health" in paths, chatty.output()


# ---- request ids ---------------------------------------------------------------------------

@pytest.mark.parametrize("rid", ["abc", "A.b_c:d-9", "x" * 71])
def test_request_id_kept(fo, backend, rid):
    t = tag()
    r = fo.get("/api/echo/" + t, headers={"X-Request-Id": rid})
    assert r.status == 200, r
    assert r.headers.get("X-Request-Id") == rid, r
    assert backend.wait_request(t).header("X-Request-Id") == rid


@pytest.mark.parametrize("rid", ["", "x" * 72, "has space", "a/b", "a\u00e9", "a,b", "a;b"])
def test_request_id_replaced_when_invalid(fo, backend, rid):
    t = tag()
    r = fo.get("/api/echo/" + t, headers={"X-Request-Id": rid})
    assert r.status == 200, r
    got = r.headers.get("X-Request-Id", "")
    assert GENERATED_ID.fullmatch(got), (rid, got)
    assert backend.wait_request(t).header("X-Request-Id") == got


def test_request_id_on_every_answer(fo):
    ids = set()
    for method, path, status in (("GET", "/api/echo/x", 200), ("GET", "/nope", 404),
                                 ("POST", "/api/x/1", 405), ("GET", "/api/x/..", 400),
                                 ("GET", "/health", 200)):
        r = fo.request(method, path, body=b"" if method == "POST" else None)
        assert r.status == status, (path, r)
        rid = r.headers.get("X-Request-Id", "")
        assert GENERATED_ID.fullmatch(rid), (path, r)
        ids.add(rid)
    assert len(ids) == 5, ids


# ---- drain ---------------------------------------------------------------------------------

def test_sigterm_drains_then_cancels(spawn, backend):
    t = tag()
    fo = spawn({"timeout_ms": 5000, "drain_ms": 400, "endpoints": [
        ep("/slow/{tag}", [be("fast", backend.url("/json")),
                           be("hang", backend.url("/hang?tag={tag}"))])]})
    keep = fo.connect()
    assert fo.request("GET", "/health", conn=keep).status == 200
    th, out = in_thread(lambda: fo.get("/slow/" + t))
    req = backend.wait_request(t, 2)
    fo.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    fo.wait_event(lambda e: e.get("event") == "draining", 2)
    r = fo.request("GET", "/ready", conn=keep)
    assert r.status == 503 and r.json() == {"status": "draining"}, r
    th.join(5)
    r = out.get("r")
    assert r is not None, out
    waited = time.monotonic() - t0
    assert r.status == 200 and r.pairs() == [("fast", {})], r
    assert "close" in r.headers.get("Connection", "").lower(), r
    assert 0.35 <= waited < 0.4 + SLACK + 0.2, "drain_ms 400: answered %.0f ms after SIGTERM" % (
        waited * 1000)
    backend.wait_closed(req.conn_id, 2)
    assert fo.wait_exit(10) == 0, fo.output()
    events = [e.get("event") for e in fo.events()]
    assert "drain_timeout" in events and events[-1] == "stopped", events
    keep.close()


# ---- reload --------------------------------------------------------------------------------

def test_sighup_reload(spawn, backend):
    t = tag()
    old = {"workers": 2, "timeout_ms": 30000, "endpoints": [
        ep("/v", [be("v", backend.url(backend.route({"v": 1})))]),
        ep("/slow", [be("s", backend.url("/hold/%s?tag=%s" % (t, t)))]),
    ]}
    new = {"workers": 2, "endpoints": [
        ep("/v", [be("v", backend.url(backend.route({"v": 2})))]),
        ep("/slow", [be("s", backend.url(backend.route({"s": "new"})))]),
        ep("/new", [be("n", backend.url(backend.route({"n": 1})))]),
    ]}
    fo = spawn(old)
    assert fo.get("/v").json() == {"v": {"v": 1}}
    th, out = in_thread(lambda: fo.get("/slow", timeout=30))
    try:
        backend.wait_for(lambda: backend.holding(t) == 1, 5, "the held call")
        write_config(fo.config_path, new)
        fo.proc.send_signal(signal.SIGHUP)
        fo.wait_event(lambda e: e.get("event") == "reloaded", 5)
        assert fo.get("/v").json() == {"v": {"v": 2}}
        assert fo.get("/new").json() == {"n": {"n": 1}}
        assert th.is_alive(), "the held request was answered before its release"
    finally:
        backend.release(t)
    th.join(10)
    assert out["r"].json() == {"s": {"held": t}}, out  # began on the old config
    assert fo.get("/slow").json() == {"s": {"s": "new"}}
    assert scrape(fo).get("fanout_config_reloads_total", result="ok") == 1

    # A broken file: logged, counted, the running config stays.
    write_config(fo.config_path, '{"endpoints": [{"path": "/v", "bogus": 1}]}')
    fo.proc.send_signal(signal.SIGHUP)
    ev = fo.wait_event(lambda e: e.get("event") == "reload_failed", 5)
    assert "errors" in ev and "bogus" in json.dumps(ev["errors"]), ev
    assert fo.get("/v").json() == {"v": {"v": 2}}
    # fanout logs reload_failed before it counts the failure: wait for the count.
    m = fo.wait_metrics(lambda m: m.get("fanout_config_reloads_total", result="error") >= 1, 5,
                        "the failed reload counted")
    assert m.get("fanout_config_reloads_total", result="error") == 1
    assert m.get("fanout_config_reloads_total", result="ok") == 1

    # A change only a restart can apply is named.
    new["workers"] = 3
    write_config(fo.config_path, new)
    fo.proc.send_signal(signal.SIGHUP)
    ev = fo.wait_event(lambda e: e.get("event") == "reloaded" and "workers" in json.dumps(
        e.get("restart_needed_for")), 5, "reloaded line naming workers")
    assert fo.get("/new").status == 200
