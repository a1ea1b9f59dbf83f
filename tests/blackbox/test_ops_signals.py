"""Operations, signals: SIGTERM/SIGINT drain (/ready 503 on open connections, requests in
flight answered in full, new connections not left hanging, drain_ms then cancel, exit 0) and
SIGHUP reload (new config for new requests, old one for requests in flight, invalid files
rejected and counted, settings that reload, zero failed requests under steady load)."""

import json
import os
import signal
import threading
import time
import urllib.parse
import uuid

from blackbox.fanout import backend as be, endpoint as ep, write_config
from blackbox.promparse import parse

SLACK = 0.25  # the ASan build on a busy 2-core machine


def tag():
    return uuid.uuid4().hex[:12]


def fanout_config(b):  # the module instance only serves the reload-under-load test
    return load_config(b, "A")


def in_thread(fn):
    """Run fn() in a thread; returns (thread, dict with "r" or "exc")."""
    out = {}

    def run():
        try:
            out["r"] = fn()
        except BaseException as e:  # reported by the test that joins
            out["exc"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def joined(th, out, timeout=10.0):
    th.join(timeout)
    assert not th.is_alive(), "client still waiting after %.0f s" % timeout
    assert "r" in out, "client failed: %r" % out.get("exc")
    return out["r"]


def scrape(fo, conn=None):
    r = fo.request("GET", "/metrics", conn=conn)
    assert r.status == 200, r
    return parse(r.body.decode())


def replace_config(fo, config):
    """Write the -c file whole (rename), so a reload never reads half a file."""
    tmp = fo.config_path + ".tmp"
    write_config(tmp, config)
    os.replace(tmp, fo.config_path)


def count_events(fo, name):
    needle = '"event":"%s"' % name
    with fo.cond:
        return sum(1 for line in fo.stdout if needle in line)


def wait_new_event(fo, name, start, timeout=5.0):
    """The first "event": name line at or after stdout line 'start' (scanned incrementally:
    under load stdout holds thousands of access lines)."""
    needle = '"event":"%s"' % name
    end = time.monotonic() + timeout
    i = start
    with fo.cond:
        while True:
            while i < len(fo.stdout):
                line = fo.stdout[i]
                i += 1
                if needle in line:
                    return json.loads(line)
            left = end - time.monotonic()
            if left <= 0 or fo.proc.poll() is not None:
                raise AssertionError("no new %s line within %.1f s\n%s"
                                     % (name, timeout, fo.output()))
            fo.cond.wait(left)


def hup(fo, event="reloaded"):
    """SIGHUP and wait for the next "reloaded" (or "reload_failed") line."""
    with fo.cond:
        start = len(fo.stdout)
    fo.proc.send_signal(signal.SIGHUP)
    return wait_new_event(fo, event, start)


# ---- drain ---------------------------------------------------------------------------------

def test_sigterm_lets_slow_requests_finish(spawn, backend):
    """3 clients wait on backends held until the test releases them; SIGTERM; /ready and
    /metrics on connections opened before say draining and count the 3 in flight; SIGHUP
    meanwhile changes nothing; after the release all 3 get complete 200 answers and fanout
    exits 0 promptly, without a drain timeout."""
    t = tag()
    fo = spawn({"timeout_ms": 30000, "drain_ms": 30000, "endpoints": [
        ep("/slow/{tag}/{n}", [be("s", backend.url("/hold/{tag}?tag={tag}&n={n}")),
                               be("f", backend.url("/json?tag={tag}"))])]})
    ready_conn, metrics_conn = fo.connect(), fo.connect()
    assert fo.request("GET", "/ready", conn=ready_conn).status == 200
    assert scrape(fo, metrics_conn).get("fanout_ready") == 1
    clients = [in_thread(lambda n=n: fo.get("/slow/%s/%d" % (t, n), timeout=30))
               for n in range(3)]
    try:
        backend.wait_for(lambda: backend.holding(t) == 3, 10, "3 held backend calls")
        fo.proc.send_signal(signal.SIGTERM)
        fo.wait_event(lambda e: e.get("event") == "draining", 5)
        r = fo.request("GET", "/ready", conn=ready_conn)
        assert r.status == 503 and r.json() == {"status": "draining"}, r
        m = scrape(fo, metrics_conn)
        assert m.get("fanout_ready") == 0, m.text[:800]
        assert m.get("fanout_requests_in_flight") == 3, m.text[:800]
        fo.proc.send_signal(signal.SIGHUP)  # ignored or harmless while draining
        # The drain waits for the held calls however long they take.
        assert fo.proc.poll() is None, fo.output()
        assert all(th.is_alive() for th, _ in clients), "answered before the release"
        assert backend.holding(t) == 3
    finally:
        backend.release(t)
    for n, (th, out) in enumerate(clients):
        r = joined(th, out)
        assert r.status == 200, r
        assert r.headers.get("X-Fanout-Complete") == "true", r
        assert r.json() == {"s": {"held": t}, "f": {}}, r
        assert int(r.headers.get("Content-Length", -1)) == len(r.body), r
    # drain_ms is 30 s: exiting within 10 s means the drain ended when the last call did.
    assert fo.wait_exit(10) == 0, fo.output()
    events = [e.get("event") for e in fo.events()]
    assert "drain_timeout" not in events and events[-1] == "stopped", fo.output()
    ready_conn.close()
    metrics_conn.close()


def test_request_on_open_connection_during_drain_is_answered(spawn, backend):
    t = tag()
    fo = spawn({"timeout_ms": 30000, "drain_ms": 30000, "endpoints": [
        ep("/slow/{tag}", [be("s", backend.url("/hold/{tag}?tag={tag}"))]),
        ep("/fast", [be("f", backend.url("/json"))])]})
    conn = fo.connect()
    assert fo.request("GET", "/fast", conn=conn).status == 200
    th, out = in_thread(lambda: fo.get("/slow/" + t, timeout=30))
    try:
        backend.wait_request(t, 5)
        fo.proc.send_signal(signal.SIGTERM)
        fo.wait_event(lambda e: e.get("event") == "draining", 5)
        r = fo.request("GET", "/fast", conn=conn)  # accepted before: must get an answer
        assert r.status in (200, 503), r
        if r.status == 200:
            assert r.json() == {"f": {}}, r
        assert "close" in r.headers.get("Connection", "").lower(), r
        assert th.is_alive(), "the held request was answered before its release"
    finally:
        backend.release(t)
    assert joined(th, out).status == 200
    assert fo.wait_exit(5) == 0, fo.output()
    conn.close()


def test_new_connection_during_drain_not_left_hanging(spawn, backend):
    """After SIGTERM the listener stops accepting: a new client is refused (or answered and
    closed) at once, not parked in the backlog until the drain ends and then reset."""
    t = tag()
    fo = spawn({"timeout_ms": 30000, "drain_ms": 30000, "endpoints": [
        ep("/slow/{tag}", [be("s", backend.url("/hold/{tag}?tag={tag}"))])]})
    th, out = in_thread(lambda: fo.get("/slow/" + t, timeout=30))
    try:
        drain_attempts(fo, backend, t, th)
    finally:
        backend.release(t)
    assert joined(th, out).status == 200
    assert fo.wait_exit(10) == 0, fo.output()


def drain_attempts(fo, backend, t, th):
    """The body of test_new_connection_during_drain_not_left_hanging, while the request
    tagged 't' (thread 'th') is held."""
    backend.wait_request(t, 5)
    fo.proc.send_signal(signal.SIGTERM)
    fo.wait_event(lambda e: e.get("event") == "draining", 5)
    # "draining" may be logged just before the listener is quiesced, so try for a while:
    # every attempt must end quickly, the last ones surely after the quiesce.
    started = time.monotonic()
    attempts = []
    while not attempts or time.monotonic() - started < 0.3:
        t0 = time.monotonic()
        try:
            r = fo.get("/health", timeout=4)
            outcome = "answered %d" % r.status
        except ConnectionRefusedError:
            outcome = "refused"
        except OSError as e:  # reset / closed without an answer / timeout
            outcome = "%s: %s" % (type(e).__name__, e)
        took = time.monotonic() - t0
        attempts.append((round(took, 3), outcome))
        assert took < 0.5 + SLACK, ("a new connection during the drain was left waiting "
                                    "%.2f s (%s) while a held request was in flight; "
                                    "attempts: %s" % (took, outcome, attempts))
        time.sleep(0.05)  # spacing between attempts
    assert th.is_alive(), "the held request was answered before its release"


def test_drain_timeout_cancels_and_answers(spawn, backend):
    """drain_ms 200, backends that take 5 s: SIGTERM -> answers about 200 ms later (502/504
    for a lone backend, a partial 200 next to a fast one), exit 0 well before 5 s."""
    t = tag()
    fo = spawn({"timeout_ms": 8000, "drain_ms": 200, "endpoints": [
        ep("/lone/{tag}", [be("h", backend.url("/delay/5000?tag={tag}&n=lone"))]),
        ep("/pair/{tag}", [be("fast", backend.url("/json")),
                           be("h", backend.url("/delay/5000?tag={tag}&n=pair"))])]})
    lone = in_thread(lambda: fo.get("/lone/" + t, headers={"X-Request-Id": "lone-" + t}))
    pair = in_thread(lambda: fo.get("/pair/" + t, headers={"X-Request-Id": "pair-" + t}))
    backend.wait_for(lambda: len(backend.tagged(t)) == 2, 5, "2 slow backend calls")
    fo.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    r1, r2 = joined(*lone, timeout=6), joined(*pair, timeout=6)
    answered = time.monotonic() - t0
    assert r1.status in (502, 504), r1
    assert r2.status == 200 and r2.headers.get("X-Fanout-Complete") == "false", r2
    assert r2.json() == {"fast": {}}, r2
    assert answered < 0.2 + SLACK + 0.3, "answered %.2f s after SIGTERM (drain_ms 200)" % answered
    rc = fo.wait_exit(5)
    took = time.monotonic() - t0
    assert rc == 0, fo.output()
    assert took < 1.5, "exit %.1f s after SIGTERM" % took
    for q in backend.tagged(t):  # the calls were aborted, not left running
        backend.wait_closed(q.conn_id, 2)
    events = fo.events()
    names = [e.get("event") for e in events]
    assert "draining" in names and "drain_timeout" in names and names[-1] == "stopped", names
    acc = {e["id"]: e for e in events if e.get("event") == "access"}
    for rid in ("lone-" + t, "pair-" + t):
        assert rid in acc, (rid, fo.output())
        assert acc[rid]["backends"]["h"]["outcome"] == "cancelled", acc[rid]


def test_sigint_drains_like_sigterm(spawn, backend):
    t = tag()
    fo = spawn({"endpoints": [ep("/slow/{tag}", [be("s", backend.url("/delay/300?tag={tag}"))])]})
    th, out = in_thread(lambda: fo.get("/slow/" + t))
    backend.wait_request(t, 5)
    fo.proc.send_signal(signal.SIGINT)
    r = joined(th, out)
    assert r.status == 200 and r.json() == {"s": {"delay": 300}}, r
    assert fo.wait_exit(5) == 0, fo.output()
    assert [e.get("event") for e in fo.events()][-1] == "stopped"


# ---- reload --------------------------------------------------------------------------------

def test_reload_new_config_for_new_requests_old_for_in_flight(spawn, backend):
    t = tag()
    old = {"timeout_ms": 30000, "endpoints": [
        ep("/v", [be("v", backend.url(backend.route({"v": 1})))]),
        ep("/gone", [be("g", backend.url("/json"))]),
        ep("/slow/{tag}", [be("s", backend.url("/hold/{tag}?tag={tag}")),
                           be("o", backend.url(backend.route({"cfg": "old"})))]),
    ]}
    new = {"timeout_ms": 3000, "metrics_path": "/m2", "ready_path": None, "endpoints": [
        ep("/v", [be("v", backend.url(backend.route({"v": 2}))),
                  be("w", backend.url(backend.route({"w": 2})))]),
        ep("/slow/{tag}", [be("n", backend.url(backend.route({"cfg": "new"})))]),
        ep("/added/{id}", [be("a", backend.url("/id/{id}"))]),
    ]}
    fo = spawn(old)
    assert fo.get("/v").json() == {"v": {"v": 1}}
    assert fo.get("/added/1").status == 404
    th, out = in_thread(lambda: fo.get("/slow/" + t, timeout=30))
    try:
        backend.wait_for(lambda: backend.holding(t) == 1, 5, "the held call")
        replace_config(fo, new)
        ev = hup(fo)
        assert ev.get("restart_needed_for") == "", ev  # nothing here needs a restart
        assert fo.get("/v").json() == {"v": {"v": 2}, "w": {"w": 2}}
        assert fo.get("/added/7").json() == {"a": {"id": "7"}}
        assert fo.get("/gone").status == 404
        assert fo.get("/ready").status == 404 and fo.get("/metrics").status == 404
        assert th.is_alive(), "the held request was answered before its release"
    finally:
        backend.release(t)
    r = joined(th, out)
    assert r.status == 200 and r.json() == {"s": {"held": t}, "o": {"cfg": "old"}}, r
    assert fo.get("/slow/" + tag()).json() == {"n": {"cfg": "new"}}
    m = parse(fo.get("/m2").body.decode())
    assert m.get("fanout_config_reloads_total", result="ok") == 1
    assert m.get("fanout_config_reloads_total", result="error") == 0


def test_reload_rejects_invalid_files(spawn, backend):
    good = {"endpoints": [ep("/v", [be("v", backend.url(backend.route({"v": "good"})))])]}
    fo = spawn(good)
    bad = [
        '{"endpoints": [',  # truncated
        "",  # empty
        '{"endpoints": [{"path": "/v", "backends": [{"name": "v", "urll": "x"}]}]}',
        '{"endpoints": [{"path": "/v", "backends": []}]}',
        '{"drain_ms": "soon", "endpoints": [{"path": "/v", "backends": '
        '[{"name": "v", "url": "http://127.0.0.1:1/"}]}]}',
    ]
    for n, text in enumerate(bad, 1):
        replace_config(fo, text)
        ev = hup(fo, "reload_failed")
        assert ev.get("level") == "error" and ev.get("errors"), ev
        assert fo.get("/v").json() == {"v": {"v": "good"}}, text
        # fanout logs reload_failed before it counts the failure: wait for the count.
        m = fo.wait_metrics(lambda m: m.get("fanout_config_reloads_total",
                                            result="error") >= n, 5, "%d failed reloads" % n)
        assert m.get("fanout_config_reloads_total", result="error") == n
    os.unlink(fo.config_path)  # a missing file too
    ev = hup(fo, "reload_failed")
    assert ev.get("errors"), ev
    assert fo.get("/v").json() == {"v": {"v": "good"}}
    good["endpoints"][0]["backends"][0]["url"] = backend.url(backend.route({"v": "again"}))
    replace_config(fo, good)
    hup(fo)
    assert fo.get("/v").json() == {"v": {"v": "again"}}
    m = scrape(fo)
    assert m.get("fanout_config_reloads_total", result="error") == len(bad) + 1
    assert m.get("fanout_config_reloads_total", result="ok") == 1


def test_reload_applies_log_settings(spawn, backend):
    cfg = {"log": {"access": True}, "endpoints": [ep("/x/{t}", [be("a", backend.url("/json"))])]}
    fo = spawn(cfg)
    r1 = "before-" + tag()
    assert fo.get("/x/1", headers={"X-Request-Id": r1}).status == 200
    fo.wait_event(lambda e: e.get("id") == r1, 5)
    cfg["log"] = {"access": False}
    replace_config(fo, cfg)
    hup(fo)
    r2 = "after-" + tag()
    assert fo.get("/x/2", headers={"X-Request-Id": r2}).status == 200
    cfg["log"] = {"access": True, "probes": True}
    replace_config(fo, cfg)
    hup(fo)
    r3 = "probe-" + tag()
    assert fo.get("/health", headers={"X-Request-Id": r3}).status == 200
    fo.wait_event(lambda e: e.get("id") == r3, 5, "access line of a probe after the reload")
    assert not [e for e in fo.events() if e.get("id") == r2], "access line with access off"


def test_reload_drain_ms_applies_or_needs_restart(spawn, backend):
    """drain_ms is not in the spec's restart-only list: after a reload from 4000 to 200 either
    the reloaded line names it in restart_needed_for, or the next drain uses 200 ms."""
    t = tag()
    cfg = {"timeout_ms": 8000, "drain_ms": 4000,
           "endpoints": [ep("/slow/{tag}", [be("h", backend.url("/delay/6000?tag={tag}"))])]}
    fo = spawn(cfg)
    cfg["drain_ms"] = 200
    replace_config(fo, cfg)
    ev = hup(fo)
    if "drain_ms" in ev.get("restart_needed_for", ""):
        return
    th, out = in_thread(lambda: fo.get("/slow/" + t, timeout=10))
    backend.wait_request(t, 5)
    fo.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    r = joined(th, out, timeout=10)
    took = time.monotonic() - t0
    assert r.status in (502, 504), r
    assert took < 0.2 + SLACK + 0.3, (
        "reloaded drain_ms 200 (restart_needed_for %r) but the drain lasted %.1f s: the boot "
        "value 4000 was used" % (ev.get("restart_needed_for"), took))
    assert fo.wait_exit(5) == 0, fo.output()


# ---- reload under load ---------------------------------------------------------------------

def load_config(b, which):
    """Two valid configs for one endpoint: B changes a backend's answer and adds one."""
    y = b.url("/delay/15?body=" + urllib.parse.quote(json.dumps({"cfg": which},
                                                                separators=(",", ":"))))
    backends = [be("x", b.url("/id/{n}")), be("y", y)]
    if which == "B":
        backends.append(be("z", b.url("/json?body=%7B%22z%22%3A1%7D")))
    return {"timeout_ms": 3000, "workers": 2,
            "endpoints": [ep("/load/{n}", backends)]}


def expected(which, n):
    doc = {"x": {"id": n}, "y": {"cfg": which}}
    if which == "B":
        doc["z"] = {"z": 1}
    return doc


def test_reload_under_steady_load(fo, backend):
    """20 clients on keep-alive connections for about 3 s while SIGHUP switches between two
    valid configs 5 times: every answer is a complete 200 of one of the two configs, nothing
    fails, every request is counted and logged exactly once."""
    label = "GET /load/{n}"
    configs = {"A": load_config(backend, "A"), "B": load_config(backend, "B")}
    replace_config(fo, configs["A"])
    hup(fo)  # start from A whatever ran before
    m0 = scrape(fo)
    reloaded0 = count_events(fo, "reloaded")
    stop = threading.Event()
    lock = threading.Lock()
    results = []  # (rid, status, which config or None)
    failures = []

    def client(k):
        conn = fo.connect(timeout=10)
        i = 0
        while not stop.is_set():
            n = "%d-%d" % (k, i)
            rid = "ld-%d-%d" % (k, i)
            i += 1
            try:
                r = fo.request("GET", "/load/" + n, {"X-Request-Id": rid}, conn=conn)
            except Exception as e:  # a dropped request: counted as a failure
                with lock:
                    failures.append((rid, repr(e)))
                conn.close()
                conn = fo.connect(timeout=10)
                continue
            which = None
            try:
                doc = r.json()
                which = next((w for w in "AB" if doc == expected(w, n)), None)
            except ValueError:
                pass
            ok = (r.status == 200 and which is not None and
                  r.headers.get("X-Fanout-Complete") == "true" and
                  r.headers.get("X-Request-Id") == rid)
            with lock:
                results.append((rid, r.status, which))
                if not ok:
                    failures.append((rid, repr(r)))
            if "close" in r.headers.get("Connection", "").lower():
                conn.close()
                conn = fo.connect(timeout=10)
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(20)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    try:
        for i, which in enumerate("BABAB"):
            stop.wait(0.45)  # pacing of the reloads, not synchronisation
            replace_config(fo, configs[which])
            hup(fo)
            assert count_events(fo, "reloaded") == reloaded0 + i + 1
        stop.wait(max(0.0, 3.0 - (time.monotonic() - t0)))
    finally:
        stop.set()
        for th in threads:
            th.join(15)
    assert not any(th.is_alive() for th in threads), "clients still running"
    assert not failures, "%d of %d requests failed, first: %s" % (
        len(failures), len(results) + len(failures), failures[:5])
    assert len(results) >= 200, "only %d requests in 3 s" % len(results)
    seen = {w for _, _, w in results}
    assert seen == {"A", "B"}, seen
    fo.check_alive()

    m1 = scrape(fo)
    total = len(results)
    assert m1.get("fanout_config_reloads_total", result="ok") - \
        m0.get("fanout_config_reloads_total", result="ok") == 5
    assert m1.get("fanout_requests_total", endpoint=label, code="2xx") - \
        m0.get("fanout_requests_total", endpoint=label, code="2xx") == total, \
        "counters must survive reloads"
    assert m1.get("fanout_backend_calls_total", endpoint=label, backend="x", outcome="ok") - \
        m0.get("fanout_backend_calls_total", endpoint=label, backend="x", outcome="ok") == total
    nb = sum(1 for _, _, w in results if w == "B")
    assert m1.get("fanout_backend_calls_total", endpoint=label, backend="z", outcome="ok") - \
        (m0.find("fanout_backend_calls_total", endpoint=label, backend="z", outcome="ok")
         or 0) == nb

    # One access line per request, each with its id.
    want = {rid for rid, _, _ in results}
    end = time.monotonic() + 5
    with fo.cond:
        while True:
            ids = [e.get("id") for e in fo.events() if e.get("event") == "access"
                   and str(e.get("id", "")).startswith("ld-")]
            if want <= set(ids) or time.monotonic() > end:
                break
            fo.cond.wait(0.2)
    missing = want - set(ids)
    assert not missing, "%d requests without an access line, e.g. %s" % (
        len(missing), sorted(missing)[:5])
    assert len(ids) == len(set(ids)), "some requests logged twice"
