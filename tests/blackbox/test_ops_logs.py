"""Operations, logs and request ids: one access line per answered request with the spec's
fields, probes left out by default, log.access / log.level settings (including "off", where
nothing may be written and nothing may break), every stdout line valid JSON even for odd
paths; X-Request-Id kept, forwarded once to every backend call, replaced when junk, generated
and unique when missing."""

import json
import os
import re
import signal
import socket
import threading
import time
import uuid

from blackbox.fanout import (VARIANTS, Fanout, backend as be, endpoint as ep, raw, run_cli,
                             write_config)
from blackbox.promparse import parse

GENERATED_ID = re.compile(r"[0-9a-f]{20}")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
OUTCOMES = {"ok", "timeout", "connect", "status", "invalid_json", "too_large", "cancelled",
            "shape", "circuit_open", "rate_limited", "dependency", "forbidden"}
LEVELS = ["debug", "info", "warn", "error"]


def tag():
    return uuid.uuid4().hex[:12]


def fanout_config(b):
    # No "log" member: the defaults are under test (access on, probes off, level info).
    return {
        "timeout_ms": 2000,
        "aggregate": {"allow_hosts": ["127.0.0.1:%d" % b.port]},
        "endpoints": [
            ep("/l/x/{tag}", [be("a", b.url("/echo?tag={tag}&n=a")),
                              be("b", b.url("/echo?tag={tag}&n=b")),
                              be("c", b.url("/status/503?tag={tag}&n=c"))]),
        ],
    }


def access_lines(fo, rid):
    return [e for e in fo.events() if e.get("event") == "access" and e.get("id") == rid]


def sync_marker(fo):
    """Send a request and wait for its access line: lines of the sequential requests sent
    before it are written by then (each is written when its request completes)."""
    rid = "mark-" + tag()
    assert fo.get("/nope-marker", headers={"X-Request-Id": rid}).status == 404
    fo.wait_event(lambda e: e.get("event") == "access" and e.get("id") == rid, 5,
                  "access line of the marker request")


def check_access_line(ev, rid, method, status, endpoint):
    assert TS.fullmatch(ev.get("ts", "")), ev
    assert ev.get("level") == "info" and ev.get("event") == "access", ev
    assert ev.get("id") == rid and ev.get("method") == method, ev
    assert ev.get("status") == status and ev.get("endpoint") == endpoint, ev
    assert isinstance(ev.get("path"), str) and ev["path"].startswith("/"), ev
    assert isinstance(ev.get("ms"), (int, float)) and ev["ms"] >= 0, ev


# ---- access log ----------------------------------------------------------------------------

def test_one_access_line_per_request(fo, backend):
    t = tag()
    cases = [  # method, path, headers, body, status, endpoint label or None (not checked)
        ("GET", "/l/x/" + t, {}, None, 200, "GET /l/x/{tag}"),
        ("GET", "/nope/" + t, {}, None, 404, "other"),
        ("POST", "/l/x/" + t, {}, b"", 405, None),
        ("GET", "/l/x/..", {}, None, 400, None),
        ("GET", "/l/x/" + t, {"X-Timeout-Ms": "junk"}, None, 400, None),
        ("POST", "/aggregate", {"Content-Type": "application/json"},
         json.dumps({"requests": {"r1": {"url": backend.url("/json?tag=" + t)},
                                  "r2": {"url": backend.url("/garbage?tag=" + t)}}}).encode(),
         200, "POST /aggregate"),
        ("POST", "/aggregate", {"Content-Type": "application/json"},
         json.dumps({"requests": {"r": {"url": "http://127.0.0.2:1/x"}}}).encode(), 403, None),
        ("GET", "/aggregate", {}, None, 405, None),
    ]
    rids = []
    for i, (method, path, headers, body, status, _) in enumerate(cases):
        rid = "acc-%s-%d" % (t, i)
        h = dict(headers)
        h["X-Request-Id"] = rid
        r = fo.request(method, path, h, body)
        assert r.status == status, (method, path, r)
        rids.append((rid, r))
    sync_marker(fo)
    for (rid, r), (method, path, _, _, status, label) in zip(rids, cases):
        lines = access_lines(fo, rid)
        assert len(lines) == 1, "%d access lines for %s %s\n%s" % (len(lines), method, path,
                                                                  fo.output())
        ev = lines[0]
        check_access_line(ev, rid, method, status, label or ev.get("endpoint"))
        assert isinstance(ev["endpoint"], str) and ev["endpoint"], ev
        assert ev["path"].split("?")[0] == path, ev
    fan = access_lines(fo, rids[0][0])[0]
    assert fan["complete"] is False and rids[0][1].headers.get("X-Fanout-Complete") == "false"
    assert list(fan["backends"]) == ["a", "b", "c"], fan
    assert fan["backends"]["a"]["outcome"] == "ok" and fan["backends"]["a"]["status"] == 200
    assert fan["backends"]["c"]["outcome"] == "status" and fan["backends"]["c"]["status"] == 503
    batch = access_lines(fo, rids[5][0])[0]
    assert list(batch["backends"]) == ["r1", "r2"], batch
    assert batch["backends"]["r1"]["outcome"] == "ok", batch
    assert batch["backends"]["r2"]["outcome"] == "invalid_json", batch
    for ev in (fan, batch):
        for b in ev["backends"].values():
            assert b["outcome"] in OUTCOMES and isinstance(b["ms"], (int, float)), ev
    for rid, _ in rids[1:5] + rids[6:]:
        ev = access_lines(fo, rid)[0]
        assert "backends" not in ev and "complete" not in ev, ev


def test_probes_not_logged_by_default(fo):
    rids = ["probe-%s-%d" % (tag(), i) for i in range(3)]
    for rid, path in zip(rids, ("/health", "/ready", "/metrics")):
        assert fo.get(path, headers={"X-Request-Id": rid}).status == 200
    sync_marker(fo)
    for rid in rids:
        assert not [e for e in fo.events() if e.get("id") == rid], "probe logged: %s" % rid


def test_stdout_lines_are_json_for_odd_paths(fo):
    """Quotes, backslashes, control characters and bytes that are not UTF-8 in the request
    path: the access line is still one valid JSON object in UTF-8."""
    t = tag()
    paths = [b'/odd/q"u\\o/' + t.encode(), b"/odd/ctl\x01\x1f/" + t.encode(),
             b"/odd/utf8-\xc3\xa9/" + t.encode(), b"/odd/latin1-\xff\xfe/" + t.encode()]
    # Control bytes make the target malformed (400); the others are just unknown paths.
    statuses = [b"404", b"400", b"404", b"404"]
    for i, p in enumerate(paths):
        out = raw(fo.port, b"GET " + p + b" HTTP/1.1\r\nHost: x\r\nX-Request-Id: odd-" +
                  t.encode() + b"-%d\r\nConnection: close\r\n\r\n" % i)
        assert out.startswith(b"HTTP/1.1 " + statuses[i]), (p, out[:200])
    sync_marker(fo)
    with fo.cond:
        lines = list(fo.stdout)
    for line in lines:
        ev = json.loads(line)
        assert isinstance(ev, dict) and {"ts", "level", "event"} <= set(ev), line
    got = {e["id"]: e["path"] for e in fo.events()
           if e.get("event") == "access" and e.get("id", "").startswith("odd-" + t)}
    assert got.get("odd-%s-0" % t) == '/odd/q"u\\o/' + t, got
    assert got.get("odd-%s-1" % t) == "/odd/ctl\x01\x1f/" + t, got
    assert got.get("odd-%s-2" % t) == "/odd/utf8-\u00e9/" + t, got
    # Bytes that are not UTF-8 become U+FFFD (one per bad byte), so the line stays UTF-8.
    assert got.get("odd-%s-3" % t) == "/odd/latin1-\ufffd\ufffd/" + t, got
    # The reader decodes stdout with errors="replace": a U+FFFD anywhere else would mean bytes
    # that are not UTF-8 reached stdout.
    for line in lines:
        if "odd-%s-3" % t not in line:
            assert "\ufffd" not in line, "stdout line is not valid UTF-8: %r" % line


# ---- request ids ---------------------------------------------------------------------------

def test_client_id_forwarded_to_every_backend_call(fo, backend):
    t, rid = tag(), "client-id:" + tag()
    r = fo.get("/l/x/" + t, headers={"X-Request-Id": rid})
    assert r.status == 200 and r.headers.get("X-Request-Id") == rid, r
    backend.wait_for(lambda: len(backend.tagged(t)) == 3, 5, "3 backend calls")
    for q in backend.tagged(t):
        ids = [v for k, v in q.headers if k.lower() == "x-request-id"]
        assert ids == [rid], (q.line, ids)
    assert access_lines(fo, rid) or fo.wait_event(
        lambda e: e.get("event") == "access" and e.get("id") == rid, 5)


def test_client_id_forwarded_in_batch(fo, backend):
    t, rid = tag(), "batch-" + tag()
    body = {"requests": {"r%d" % i: {"url": backend.url("/echo?tag=%s&n=%d" % (t, i))}
                         for i in range(3)}}
    r = fo.post("/aggregate", body, headers={"X-Request-Id": rid})
    assert r.status == 200 and r.headers.get("X-Request-Id") == rid, r
    backend.wait_for(lambda: len(backend.tagged(t)) == 3, 5, "3 batch calls")
    for q in backend.tagged(t):
        assert [v for k, v in q.headers if k.lower() == "x-request-id"] == [rid], q.line


OWN_HEADERS = ("X-Request-Id", "X-Timeout-Ms")


def header_values(q, name):
    return [v for k, v in q.headers if k.lower() == name.lower()]


def test_own_headers_not_duplicated_by_config(spawn, backend, fanout_bin, tmp_path):
    """A backend whose config "headers" name X-Request-Id or X-Timeout-Ms: either the config
    is refused, or the backend still gets each header once (X-Timeout-Ms the time left)."""
    cfg = {"timeout_ms": 2000, "endpoints": [ep("/cfg/{tag}", [be(
        "h", backend.url("/echo?tag={tag}"),
        headers={"X-Request-Id": "from-config", "X-Timeout-Ms": "99999", "X-Other": "1"})])]}
    path = str(tmp_path / "own-headers.json")
    write_config(path, cfg)
    check = run_cli(fanout_bin, ["--check", "-c", path])
    if check.returncode != 0:  # refused with a reason naming the header: fine
        assert any(h in check.stderr for h in OWN_HEADERS), check.stderr
        return
    fo = spawn(cfg)
    t, rid = tag(), "cfg-" + tag()
    assert fo.get("/cfg/" + t, headers={"X-Request-Id": rid}).status == 200
    q = backend.wait_request(t)
    assert q.header("X-Other") == "1", q.headers
    got = {h: header_values(q, h) for h in OWN_HEADERS}
    assert all(len(v) == 1 for v in got.values()), "backend got %r" % got
    assert 1 <= int(got["X-Timeout-Ms"][0]) <= 2000, got


def test_own_headers_not_duplicated_by_batch(fo, backend):
    """The same for a batch request's "headers" (client input): 400 or each header once."""
    t, rid = tag(), "bh-" + tag()
    r = fo.post("/aggregate", {"timeout_ms": 1000, "requests": {"r": {
        "url": backend.url("/echo?tag=" + t), "method": "POST", "body": {"k": 1},
        "headers": {"X-Request-Id": "from-client", "X-Timeout-Ms": "99999",
                    "Content-Type": "text/plain", "X-Other": "1"}}}},
        headers={"X-Request-Id": rid})
    if r.status == 400:
        return
    assert r.status == 200, r
    q = backend.wait_request(t)
    assert q.header("X-Other") == "1", q.headers
    got = {h: header_values(q, h) for h in OWN_HEADERS + ("Content-Type",)}
    assert all(len(v) == 1 for v in got.values()), "backend got %r" % got
    assert 1 <= int(got["X-Timeout-Ms"][0]) <= 1000, got


def test_junk_id_replaced_and_forwarded(fo, backend):
    for junk in ("x" * 4000, "tab\there", "quote\"d", "{json}", "\u00fcml"):
        t = tag()
        r = fo.get("/l/x/" + t, headers={"X-Request-Id": junk.encode("utf-8").decode("latin-1")})
        assert r.status == 200, r
        got = r.headers.get("X-Request-Id", "")
        assert GENERATED_ID.fullmatch(got), (junk[:20], got)
        backend.wait_for(lambda: len(backend.tagged(t)) == 3, 5, "3 backend calls")
        for q in backend.tagged(t):
            assert [v for k, v in q.headers if k.lower() == "x-request-id"] == [got], q.headers


def test_generated_ids_unique_across_concurrent_requests(fo, backend):
    t = tag()
    out, errors = [], []
    lock = threading.Lock()

    def client(k):
        conn = fo.connect(timeout=15)
        try:
            for i in range(15):
                r = fo.request("GET", "/l/x/%s-%d-%d" % (t, k, i), conn=conn)
                with lock:
                    out.append(("%s-%d-%d" % (t, k, i), r))
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors and len(out) == 150, (errors[:3], len(out))
    ids = [r.headers.get("X-Request-Id", "") for _, r in out]
    assert all(GENERATED_ID.fullmatch(i) for i in ids), [i for i in ids
                                                          if not GENERATED_ID.fullmatch(i)][:5]
    assert len(set(ids)) == 150, "duplicate generated ids"
    backend.wait_for(lambda: sum(1 for q in backend.requests
                                 if (q.param("tag") or "").startswith(t + "-")) == 450, 10,
                     "450 backend calls")
    for tg, r in out:
        sent = {q.header("X-Request-Id") for q in backend.tagged(tg)}
        assert sent == {r.headers["X-Request-Id"]}, (tg, sent, r.headers["X-Request-Id"])


# ---- settings: access off, probes on, levels -----------------------------------------------

def simple_config(b, log, **kw):
    cfg = {"log": log, "timeout_ms": 3000,
           "endpoints": [ep("/s/{tag}", [be("a", b.url("/echo?tag={tag}"))]),
                         ep("/slow/{tag}", [be("s", b.url("/delay/300?tag={tag}"))]),
                         ep("/hang/{tag}", [be("h", b.url("/hang?tag={tag}"))])]}
    cfg.update(kw)
    return cfg


def test_access_off_keeps_lifecycle_lines(spawn, backend):
    fo = spawn(simple_config(backend, {"access": False, "probes": True}))
    assert fo.get("/s/" + tag()).status == 200
    assert fo.get("/nope").status == 404
    assert fo.get("/health").status == 200
    fo.proc.send_signal(signal.SIGHUP)
    fo.wait_event(lambda e: e.get("event") == "reloaded", 5)
    fo.stop()
    events = [e.get("event") for e in fo.events()]
    assert "access" not in events, fo.output()
    assert events[0] == "listening" and events[-1] == "stopped", events


def test_probes_logged_when_enabled(spawn, backend):
    fo = spawn(simple_config(backend, {"probes": True}))
    rids = {}
    for path in ("/health", "/ready", "/metrics"):
        rids[path] = "pr-" + tag()
        assert fo.get(path, headers={"X-Request-Id": rids[path]}).status == 200
    for path, rid in rids.items():
        ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("id") == rid, 5,
                           "access line for " + path)
        assert ev["path"] == path and ev["status"] == 200 and ev["method"] == "GET", ev


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_unlistened(variant, config, workdir, name):
    """Start fanout with a level that hides the "listening" line: pick the port ourselves
    and wait for /health. The caller stops it (Fanout.stop checks exit 0 and sanitizers)."""
    path = os.path.join(workdir, "%s-%s.json" % (name, variant))
    write_config(path, config)
    for _ in range(3):
        port = free_port()
        fo = Fanout([VARIANTS[variant], "-c", path, "--listen", "127.0.0.1:%d" % port], variant)
        fo.port, fo.config_path = port, path
        try:
            fo._wait_healthy()
            return fo
        except AssertionError:
            fo.kill()
            if "cannot listen" not in fo.output():
                raise
    raise AssertionError("could not start fanout on a free port\n" + fo.output())


def finish(fo):
    """After a test on an instance of start_unlistened: kill it if it still runs (the test
    failed before judging the exit), then check for sanitizer reports."""
    if fo.proc.poll() is None:
        fo.kill()
        fo.reaped = True
    fo.stop()


def reloads(fo, result):
    return parse(fo.get("/metrics").body.decode()).get("fanout_config_reloads_total",
                                                       result=result)


def wait_reloads(fo, result, n, timeout=5.0):
    """Poll /metrics until fanout_config_reloads_total{result} == n (no log line to wait for
    at these levels)."""
    end = time.monotonic() + timeout
    while True:
        got = reloads(fo, result)
        if got == n:
            return
        assert time.monotonic() < end, "reloads{result=%s} is %s, want %d" % (result, got, n)
        time.sleep(0.02)  # polling interval


def traffic_and_drain(fo, backend, sig=signal.SIGTERM):
    """Requests of several kinds, a valid and an invalid reload, then a drain with a request
    in flight: everything must work whatever the log level."""
    assert fo.get("/s/" + tag()).status == 200
    assert fo.get("/nope").status == 404
    assert fo.get("/hang/" + tag(), headers={"X-Timeout-Ms": "50"}).status == 504
    with open(fo.config_path) as f:
        good = json.load(f)
    fo.proc.send_signal(signal.SIGHUP)
    wait_reloads(fo, "ok", 1)
    write_config(fo.config_path, '{"endpoints": [{"path": "/s", "oops": 1}]}')
    fo.proc.send_signal(signal.SIGHUP)
    wait_reloads(fo, "error", 1)
    write_config(fo.config_path, good)
    assert fo.get("/s/" + tag()).status == 200
    t = tag()
    res = {}
    th = threading.Thread(target=lambda: res.setdefault("r", fo.get("/slow/" + t)), daemon=True)
    th.start()
    backend.wait_request(t, 5)
    fo.proc.send_signal(sig)
    th.join(10)
    assert res.get("r") is not None and res["r"].status == 200, res
    assert fo.wait_exit(10) == 0, fo.output()


def test_level_off_writes_nothing_and_works(variant, backend, tmp_path):
    fo = start_unlistened(variant, simple_config(backend, {"level": "off", "probes": True}),
                          str(tmp_path), "off")
    try:
        traffic_and_drain(fo, backend)
    finally:
        finish(fo)
    with fo.cond:
        assert fo.stdout == [], fo.output()


def test_level_error_writes_only_errors(variant, backend, tmp_path):
    fo = start_unlistened(variant, simple_config(backend, {"level": "error"}), str(tmp_path),
                          "error")
    try:
        traffic_and_drain(fo, backend, signal.SIGINT)
    finally:
        finish(fo)
    events = fo.events()
    with fo.cond:
        assert len(events) == len(fo.stdout), fo.output()
    assert [e.get("event") for e in events] == ["reload_failed"], fo.output()
    assert events[0].get("level") == "error" and "oops" in json.dumps(events[0]), events


def test_level_warn_hides_info(variant, backend, tmp_path):
    fo = start_unlistened(variant, simple_config(backend, {"level": "warn"}, drain_ms=100),
                          str(tmp_path), "warn")
    try:
        assert fo.get("/s/" + tag()).status == 200
        t = tag()
        res = {}
        th = threading.Thread(target=lambda: res.setdefault("r", fo.get("/hang/" + t)),
                              daemon=True)
        th.start()
        backend.wait_request(t, 5)
        fo.proc.send_signal(signal.SIGTERM)
        th.join(10)
        assert res.get("r") is not None and res["r"].status in (502, 504), res
        assert fo.wait_exit(10) == 0, fo.output()
    finally:
        finish(fo)
    events = fo.events()
    levels = {e.get("level") for e in events}
    assert levels <= {"warn", "error"}, fo.output()
    assert "drain_timeout" in [e.get("event") for e in events], fo.output()
    for e in events:
        assert LEVELS.index(e["level"]) >= LEVELS.index("warn"), e
