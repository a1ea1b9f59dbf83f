"""Metric series follow the configs in use: a reload that drops an endpoint or a backend drops
its series once no request in flight still holds the old config, so /metrics and the process
stay bounded over any number of reloads; series the new config still names keep counting."""

import json
import os
import signal
import threading
import time
import uuid

from blackbox.fanout import backend as be, endpoint as ep, write_config
from blackbox.promparse import parse

RELOADS = 300  # each with new endpoint paths and backend names
SCRAPE_EVERY = 10  # reloads between two checks of /metrics
RSS_GROWTH_KB = 4 * 1024  # plain build; the registry that never dropped a series grew 8.5 MB
KEEP = "GET /keep"


def tag():
    return uuid.uuid4().hex[:12]


def fanout_config(b):  # the module instance is not used: every test spawns its own
    return {"endpoints": []}


def replace_config(fo, config):
    """Write the -c file whole (rename), so a reload never reads half a file."""
    tmp = fo.config_path + ".tmp"
    write_config(tmp, config)
    os.replace(tmp, fo.config_path)


def hup(fo, timeout=10.0):
    """SIGHUP and wait for the next "reloaded" line (stdout holds no access lines here)."""
    needle = '"event":"reloaded"'
    with fo.cond:
        start = len(fo.stdout)
    fo.proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + timeout
    with fo.cond:
        i = start
        while True:
            while i < len(fo.stdout):
                line = fo.stdout[i]
                i += 1
                if needle in line:
                    return json.loads(line)
                assert '"event":"reload_failed"' not in line, line
            left = end - time.monotonic()
            if left <= 0 or fo.proc.poll() is not None:
                raise AssertionError("no reloaded line within %.0f s\n%s"
                                     % (timeout, fo.output()))
            fo.cond.wait(left)


def metrics_text(fo):
    r = fo.get("/metrics")
    assert r.status == 200, r
    return r.body.decode()


def rss_kb(fo):
    with open("/proc/%d/status" % fo.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def endpoints_of(m, family="fanout_requests_total"):
    return {ls["endpoint"] for ls, _ in m.select(family)}


def reload_config(b, i):
    """/keep (backend k in every config, backend v<i> only in this one) and three endpoints
    of three backends each whose paths exist only in config i."""
    keep = ep("/keep", [be("k", b.url(b.route({"k": 1}))), be("v%d" % i, b.url("/json"))])
    gen = [ep("/gen%d/%s" % (i, s), [be("b%d-%d" % (i, k), b.url("/json")) for k in range(3)])
           for s in "abc"]
    return {"timeout_ms": 3000, "workers": 2, "log": {"access": False},
            "endpoints": [keep] + gen}


def test_reloads_keep_metrics_bounded(spawn, backend, variant):
    """RELOADS SIGHUPs, each to a config with new endpoint paths and backend names, while one
    client keeps calling /keep. Every SCRAPE_EVERY reloads the client parks between two
    requests: then only the boot config's and the current config's series are left (polled:
    the last request's completion may trail its answer), /metrics is below twice its size
    after the first reload, and /keep's series, in every config, have counted every request.
    RSS stays flat (plain build)."""
    fo = spawn(reload_config(backend, 0))
    replace_config(fo, reload_config(backend, 1))
    hup(fo)
    first = metrics_text(fo)
    base_bytes = len(first)

    stop = threading.Event()
    run = threading.Event()  # cleared: the client parks between two requests
    parked = threading.Event()  # set by the client while it is parked
    run.set()
    done = {"ok": 0, "bad": []}

    def client():
        conn = fo.connect(timeout=10)
        while not stop.is_set() and done["ok"] < 20000:
            if not run.is_set():
                parked.set()
                run.wait(30)
                continue
            r = fo.request("GET", "/keep", conn=conn)
            if r.status == 200 and r.json().get("k") == {"k": 1}:
                done["ok"] += 1
            else:
                done["bad"].append(repr(r))
                break
        parked.set()
        conn.close()

    def settled(i):
        """/metrics once only configs 0 and i are in use: the client is parked, so no request
        holds an older one once its completion has run (polled, bounded)."""
        want_gens = {"GET /gen%d/%s" % (j, s) for j in (0, i) for s in "abc"}
        want_keep = {"k", "v0", "v%d" % i}
        end = time.monotonic() + 5
        while True:
            text = metrics_text(fo)
            m = parse(text)
            gens = {e for e in endpoints_of(m) if e.startswith("GET /gen")}
            keep = {ls["backend"] for ls, _ in
                    m.select("fanout_backend_calls_total", endpoint=KEEP)}
            if (gens == want_gens and keep == want_keep) or time.monotonic() > end:
                break
            time.sleep(0.02)  # polling interval, not synchronisation
        assert gens == want_gens, "reload %d: endpoints of old configs still there: %s" % (
            i, sorted(gens - want_gens)[:12])
        assert keep == want_keep, "reload %d: /keep backends %s" % (i, sorted(keep))
        return text, m

    th = threading.Thread(target=client, daemon=True)
    rss0 = rss_kb(fo)
    last_req = last_call = 0.0
    sizes = []
    th.start()
    try:
        for i in range(2, RELOADS + 2):
            replace_config(fo, reload_config(backend, i))
            hup(fo)
            if i % SCRAPE_EVERY and i != RELOADS + 1:
                continue
            parked.clear()
            run.clear()
            assert parked.wait(10), "the client never parked"
            assert not done["bad"], done["bad"][:3]
            text, m = settled(i)
            run.set()
            sizes.append(len(text))
            assert len(text) < 2 * base_bytes, (
                "/metrics grew from %d to %d bytes after %d reloads"
                % (base_bytes, len(text), i - 1))
            req = m.get("fanout_requests_total", endpoint=KEEP, code="2xx")
            call = m.get("fanout_backend_calls_total", endpoint=KEEP, backend="k", outcome="ok")
            assert req >= last_req and call >= last_call, (
                "/keep went back from %d/%d to %d/%d at reload %d"
                % (last_req, last_call, req, call, i))
            assert req == done["ok"] and call == done["ok"], (req, call, done["ok"])
            last_req, last_call = req, call
    finally:
        stop.set()
        run.set()
        th.join(15)
    assert not th.is_alive(), "client still running"
    assert not done["bad"], done["bad"][:3]
    fo.check_alive()

    _, m = settled(RELOADS + 1)
    # Every request was counted once into the one /keep series, across all the reloads.
    assert done["ok"] > 0
    assert m.get("fanout_requests_total", endpoint=KEEP, code="2xx") == done["ok"]
    assert m.get("fanout_backend_calls_total", endpoint=KEEP, backend="k", outcome="ok") == \
        done["ok"]
    assert m.get("fanout_config_reloads_total", result="ok") == RELOADS + 1
    growth = rss_kb(fo) - rss0
    print("%s: /metrics %d bytes after 1 reload, %d after %d (max %d); VmRSS +%d kB"
          % (variant, base_bytes, sizes[-1], RELOADS + 1, max(sizes), growth))
    if variant == "plain":  # sanitizer allocators hold freed memory in quarantine
        assert growth < RSS_GROWTH_KB, "VmRSS grew by %d kB over %d reloads" % (growth, RELOADS)


def test_removed_endpoint_series_live_while_a_request_holds_the_config(spawn, backend):
    """A request in flight keeps its config's series: after a reload drops /old/{t} and its
    backends, the series stay (and count that request) until it is answered, then leave
    /metrics; /stay, in both configs, keeps its count."""
    t = tag()
    label = "GET /old/{t}"
    stay = [ep("/stay", [be("s", backend.url(backend.route({"s": 1})))])]
    base = {"timeout_ms": 5000, "log": {"access": False}}
    fo = spawn(dict(base, endpoints=stay))  # the boot config is held for good: keep /old out
    with_old = dict(base, endpoints=stay + [
        ep("/old/{t}", [be("slow", backend.url("/delay/800?tag={t}")),
                        be("fast", backend.url("/json"))])])
    replace_config(fo, with_old)
    hup(fo)
    assert fo.get("/stay").status == 200
    assert fo.get("/old/" + tag()).status == 200
    m = parse(metrics_text(fo))
    assert m.get("fanout_requests_total", endpoint=label, code="2xx") == 1

    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", fo.get("/old/" + t)), daemon=True)
    th.start()
    backend.wait_request(t, 5)
    replace_config(fo, dict(base, endpoints=stay))
    hup(fo)
    assert fo.get("/old/x").status == 404  # the new config has no such route
    m = parse(metrics_text(fo))
    assert label in endpoints_of(m), "series of a config still in use were dropped"
    assert {ls["backend"] for ls, _ in m.select("fanout_backend_calls_total", endpoint=label)} \
        == {"slow", "fast"}
    th.join(10)
    assert not th.is_alive(), "request on the old config never answered"
    r = out["r"]
    assert r.status == 200 and r.json()["slow"] == {"delay": 800}, r

    # The answer is out; the old config is released right after (poll, bounded).
    end = time.monotonic() + 5
    while True:
        m = parse(metrics_text(fo))
        if label not in endpoints_of(m) or time.monotonic() > end:
            break
        time.sleep(0.05)  # polling interval, not synchronisation
    for fam in ("fanout_requests_total", "fanout_request_duration_seconds_count",
                "fanout_backend_calls_total", "fanout_backend_call_duration_seconds_count"):
        assert label not in endpoints_of(m, fam), "%s{endpoint=%r} still there:\n%s" % (
            fam, label, m.text[:3000])
    assert m.get("fanout_requests_total", endpoint="GET /stay", code="2xx") == 1
    assert fo.get("/stay").status == 200
    m = parse(metrics_text(fo))
    assert m.get("fanout_requests_total", endpoint="GET /stay", code="2xx") == 2
    assert m.get("fanout_backend_calls_total", endpoint="GET /stay", backend="s",
                 outcome="ok") == 2
