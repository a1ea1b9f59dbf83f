"""Resilience: hosts round robin, retries (X-Fanout-Attempt, X-Timeout-Ms, idempotent methods,
Retry-After, the retry budget), hedges (delay, token budget, the loser aborted), breakers
(>= F opens, one probe, kept across SIGHUP), stale on error, --check errors of every key.

Backends are scripted per test (scripted.py): fail N times, slow on a fraction, refuse. The
module's fanout serves one endpoint per rule, each with its own backends, so no test sees
another's state. The heavy statistical hedge tests run on the plain build only.
"""

import json
import os
import select
import signal
import socket
import threading
import time
import uuid

import pytest

from blackbox.fanout import backend as be, endpoint as ep, error_code, run_cli, write_config
from blackbox.promparse import parse
from blackbox.scripted import Scripted, refused_port

B = {}  # name -> Scripted, made by fanout_config, closed at the end of the module
STATE = {"breaker_ok": False, "hedge_closed": []}
REFUSED = refused_port()


def ok_body(name):
    return lambda h: (200, {"host": name, "n": h.n})


def by_tag(script):
    """A backend whose answer depends on how many requests with the same path it saw."""
    seen = {}
    lock = threading.Lock()

    def fn(h):
        with lock:
            seen[h.path] = seen.get(h.path, 0) + 1
            k = seen[h.path]
        return script(h, k)
    return fn


def slow_tail(h):
    if h.n % 20 == 0:  # 5% of requests
        time.sleep(0.4)
    else:
        time.sleep(0.005)
    return 200, {"n": h.n}


def hold_first(h, k):
    """The first attempt of each path hangs (noticing the peer closing), later ones answer."""
    if k == 1:
        conn = threading.current_thread().conn
        end = time.monotonic() + 3
        while time.monotonic() < end:
            r, _, _ = select.select([conn], [], [], 0.05)
            if r:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        STATE["hedge_closed"].append(h.path)
                        return 200, {"late": True}
                except OSError:
                    STATE["hedge_closed"].append(h.path)
                    return 200, {"late": True}
        return 200, {"late": True}
    return 200, {"attempt": h.header("x-fanout-attempt")}


def first_attempt(h):
    return h.header("x-fanout-attempt") in (None, "1")


def budget_503(h):
    """503 after 300 ms; a first attempt waits (up to 10 s) for the test's 100 to be in."""
    if first_attempt(h):
        B["slow503"].wait_count(first_attempt, STATE.get("budget_base", 0) + 100, 10.0)
    time.sleep(0.3)
    return 503, {"e": 1}


def fanout_config(_backend):
    def mk(name, fn):
        B[name] = Scripted(fn)
        return B[name]

    for s in B.values():  # the previous variant's
        s.close()
    B.clear()

    a, b, c = mk("A", ok_body("A")), mk("B", ok_body("B")), mk("C", ok_body("C"))
    b2, c2 = mk("B2", ok_body("B2")), mk("C2", ok_body("C2"))
    def first_503(h, k):
        if k == 1:  # Answered 5 ms later, so the retry's time left is visibly smaller.
            time.sleep(0.005)
            return 503, {"e": k}
        return 200, {"attempt": h.header("x-fanout-attempt"), "timeout": h.header("x-timeout-ms")}
    flaky = mk("flaky", by_tag(first_503))
    post = mk("post", lambda h: (503, {"e": 1}))
    post_i = mk("post_i", lambda h: (503, {"e": 1}))
    slow503 = mk("slow503", budget_503)
    ra = mk("ra", by_tag(lambda h, k: (503, {"e": 1}, {"Retry-After": "30"}) if k == 1 else
                         (200, {"ok": 1})))
    always500 = mk("b500", lambda h: (200, {"ok": 1}) if STATE["breaker_ok"] else
                   (500, {"e": 1}))
    h500 = mk("h500", lambda h: (500, {"e": 1}))
    hok = mk("hok", ok_body("hok"))
    stale = mk("stale", by_tag(lambda h, k: (200, {"v": "first"}) if k == 1 else
                               (500, {"e": k})))
    stale2 = mk("stale2", by_tag(lambda h, k: (200, {"v": "first"}) if k == 1 else
                                 (500, {"e": k})))
    tail = mk("tail", slow_tail)
    tail_off = mk("tail_off", slow_tail)
    slow100 = mk("slow100", lambda h: (time.sleep(0.1), (200, {"n": h.n}))[1])
    held = mk("held", by_tag(hold_first))
    mixed = mk("mixed", lambda h: (503, {"e": 1}) if h.n % 3 == 0 else
               (time.sleep(0.03 if h.n % 7 == 0 else 0), (200, {"n": h.n}))[1])
    hang_first = mk("hang_first", by_tag(lambda h, k: (time.sleep(1.0), (200, {"late": 1}))[1]
                                         if k == 1 else (200, {"attempt": h.header(
                                             "x-fanout-attempt")})))
    p95 = mk("p95", lambda h: (time.sleep(0.3 if h.n % 25 == 0 else 0.02), (200, {"n": h.n}))[1])
    garbage = mk("garbage", lambda h: (200, b"not json"))
    notfound = mk("notfound", lambda h: (404, {"e": 1}))
    hang = mk("hang", lambda h: (time.sleep(0.5), (200, {"late": 1}))[1])
    always503 = mk("always503", lambda h: (503, {"e": 1}))
    hosts3 = [a.origin(), b.origin(), c.origin()]
    return {
        "timeout_ms": 3000,
        "retry_budget": {"percent": 20, "min": 3},
        "endpoints": [
            ep("/rr", [be("x", "http://placeholder.invalid:9/who?k=v", hosts=hosts3)],
               report=True),
            ep("/refuse", [be("x", "http://placeholder.invalid:9/who",
                              hosts=["http://127.0.0.1:%d" % REFUSED, b2.origin(), c2.origin()],
                              retry={"attempts": 2, "backoff_ms": 5})], report=True),
            ep("/flaky/{tag}", [be("x", flaky.url("/f/{tag}"),
                                   retry={"attempts": 2, "backoff_ms": 5})], report=True),
            ep("/post/{tag}", [be("x", post.url("/p/{tag}"), method="POST",
                                  retry={"attempts": 3, "backoff_ms": 1})], report=True),
            ep("/post_idem/{tag}", [be("x", post_i.url("/p/{tag}"), method="POST",
                                       idempotent=True,
                                       retry={"attempts": 3, "backoff_ms": 1})], report=True),
            ep("/budget/{n}", [be("x", slow503.url("/s/{n}"),
                                  retry={"attempts": 2, "backoff_ms": 1})], report=True),
            ep("/retry_after/{tag}", [be("x", ra.url("/r/{tag}"),
                                         retry={"attempts": 2, "backoff_ms": 1})],
               report=True, timeout_ms=1000),
            ep("/breaker", [be("x", always500.url("/b"), breaker={"failures": 3, "open_ms": 1000})],
               report=True),
            ep("/try_timeout/{tag}", [be("x", hang_first.url("/h/{tag}"),
                                         retry={"attempts": 2, "on": ["timeout"],
                                                "try_timeout_ms": 100, "backoff_ms": 1})],
               report=True),
            ep("/no_try_timeout/{tag}", [be("x", hang_first.url("/n/{tag}"), timeout_ms=100,
                                            retry={"attempts": 2, "on": ["timeout"],
                                                   "backoff_ms": 1})], report=True),
            ep("/p95", [be("x", p95.url("/p"), hedge={"after": "p95"})]),
            ep("/br_json", [be("x", garbage.url("/g"), breaker={"failures": 2, "open_ms": 60000})],
               report=True),
            ep("/br_4xx", [be("x", notfound.url("/n"), breaker={"failures": 2, "open_ms": 60000})],
               report=True),
            ep("/br_deadline", [be("x", hang.url("/h"), breaker={"failures": 1, "open_ms": 60000})],
               report=True, timeout_ms=100),
            ep("/br_retry", [be("x", always503.url("/r"), breaker={"failures": 3, "open_ms": 60000},
                                retry={"attempts": 3, "backoff_ms": 1})], report=True),
            ep("/breaker_hosts", [be("x", "http://placeholder.invalid:9/h",
                                     hosts=[h500.origin(), hok.origin()],
                                     breaker={"failures": 2, "open_ms": 60000})], report=True),
            ep("/stale/{tag}", [be("x", stale.url("/s/{tag}"), stale_ms=10000)], report=True),
            ep("/stale_old/{tag}", [be("x", stale2.url("/s/{tag}"), stale_ms=150)],
               report=True),
            ep("/tail", [be("x", tail.url("/t"), hedge={"after_ms": 20})]),
            ep("/tail_off", [be("x", tail_off.url("/t"))]),
            ep("/slow100", [be("x", slow100.url("/s"), hedge={"after_ms": 10})]),
            ep("/held/{tag}", [be("x", held.url("/h/{tag}"), hedge={"after_ms": 30})],
               report=True),
            ep("/mixed/{n}", [
                be("m", "http://placeholder.invalid:9/m/{n}", hosts=[mixed.origin(), a.origin()],
                   retry={"attempts": 3, "backoff_ms": 2, "on": ["503", "connect"]},
                   hedge={"after_ms": 15}, breaker={"failures": 50, "open_ms": 50},
                   stale_ms=1000),
                be("plain", a.url("/p/{n}")),
            ], report=True),
        ],
    }


@pytest.fixture(scope="module", autouse=True)
def _close_backends():
    yield
    for s in B.values():
        s.close()
    B.clear()


def tag():
    return uuid.uuid4().hex[:10]


def report(r, name="x"):
    return r.json()["_fanout"]["backends"][name]


def hits_of(name, path_part):
    return [h for h in B[name].hits if path_part in h.path]


def parallel(n, fn, threads=None):
    """Run fn(i) for i in range(n) on 'threads' client threads; returns the results."""
    out = [None] * n
    idx = iter(range(n))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            out[i] = fn(i)
    ts = [threading.Thread(target=work) for _ in range(threads or n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


# ---- hosts -----------------------------------------------------------------------------------

def test_hosts_round_robin_10_10_10(fo):
    """30 sequential requests over 3 hosts: 10 each, in order from index 0, the path and query
    of url kept, the report naming the host."""
    before = {k: B[k].count() for k in "ABC"}
    seen = []
    for _ in range(30):
        r = fo.get("/rr")
        assert r.status == 200, r
        seen.append(r.json()["x"]["host"])
        assert report(r)["host"] == B[seen[-1]].origin()
    assert {k: B[k].count() - before[k] for k in "ABC"} == {"A": 10, "B": 10, "C": 10}
    assert seen[:3] == ["A", "B", "C"] and seen[3:6] == ["A", "B", "C"]
    assert B["A"].hits[-1].path == "/who?k=v"


def test_refusing_host_is_retried_on_another(fo):
    """Host 1 refuses, attempts 2: every request succeeds, each retry lands on another host,
    and those reports say attempts 2."""
    before = B["B2"].count() + B["C2"].count()
    twos = 0
    for _ in range(30):
        r = fo.get("/refuse")
        assert r.status == 200 and r.headers["X-Fanout-Complete"] == "true", r
        rep = report(r)
        assert rep["host"] in (B["B2"].origin(), B["C2"].origin()), rep
        assert rep["attempts"] in (1, 2)
        twos += rep["attempts"] == 2
    assert B["B2"].count() + B["C2"].count() - before == 30
    # A retry moves the round robin on too, so every second or third request starts there.
    assert 10 <= twos <= 15, twos


# ---- retries ---------------------------------------------------------------------------------

def test_503_then_200_second_attempt_header_and_smaller_timeout(fo):
    t = tag()
    r = fo.get("/flaky/" + t)
    assert r.status == 200 and r.headers["X-Fanout-Complete"] == "true", r
    hits = hits_of("flaky", t)
    assert len(hits) == 2
    assert hits[0].header("x-fanout-attempt") == "1"
    assert hits[1].header("x-fanout-attempt") == "2"
    assert int(hits[1].header("x-timeout-ms")) < int(hits[0].header("x-timeout-ms"))
    assert r.json()["x"]["attempt"] == "2"
    assert report(r)["attempts"] == 2


def test_post_is_not_retried_unless_idempotent(fo):
    t = tag()
    for i in range(5):
        r = fo.get("/post/%s-%d" % (t, i))
        assert r.status == 502, r
        assert report(r)["attempts"] == 1
    assert len(hits_of("post", t)) == 5  # exactly one hit per request
    r = fo.get("/post_idem/" + t)
    assert r.status == 502 and report(r)["attempts"] == 3, r
    assert len(hits_of("post_i", t)) == 3


def test_retry_after_longer_than_time_left_means_no_retry(fo):
    """A 503 with Retry-After: 30 and 1 s left is not retried."""
    t = tag()
    r = fo.get("/retry_after/" + t)
    assert r.status == 502 and report(r)["attempts"] == 1, r
    assert len(hits_of("ra", t)) == 1


def test_retry_budget_caps_retries_of_overlapping_calls(fo):
    """100 concurrent GETs to a backend answering 503 after 300 ms, budget {20, 3},
    attempts 2: between 100 and 125 hits, and some reports say the budget was exhausted.
    The backend holds each first attempt until all 100 have arrived, so the primaries
    overlap even on a slow machine (the budget caps retries in flight, not in total)."""
    STATE["budget_base"] = B["slow503"].count(first_attempt)
    before = B["slow503"].count()
    res = parallel(100, lambda i: fo.get("/budget/%d" % i, timeout=30))
    hits = B["slow503"].count() - before
    assert all(r.status == 502 for r in res), [r for r in res if r.status != 502][:1]
    assert 100 <= hits <= 125, hits
    reps = [report(r) for r in res]
    exhausted = sum(1 for x in reps if x.get("retry_budget") == "exhausted")
    assert exhausted >= 50, exhausted
    assert sum(x["attempts"] - 1 for x in reps) == hits - 100
    m = parse(fo.get("/metrics").body.decode())
    assert m.get("fanout_retries_in_flight") == 0


# ---- hedges ----------------------------------------------------------------------------------

def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def timed(fo, path):
    def one(i):
        r = fo.get(path, timeout=10)
        assert r.status == 200, r
        return r.elapsed
    return one


def test_hedge_cuts_the_slow_tail(fo, variant):
    """5% of answers take 400 ms, the rest 5 ms: hedge off p99 ~400 ms; after_ms 20 takes
    the p99 of 2,000 requests under 60 ms with at most 7% more backend hits."""
    if variant != "plain":
        pytest.skip("statistical timing test: plain build only")
    off = parallel(400, timed(fo, "/tail_off"), threads=4)
    assert pct(off, 99) > 0.35, pct(off, 99)
    before = B["tail"].count()
    on = parallel(2000, timed(fo, "/tail"), threads=4)
    hits = B["tail"].count() - before
    assert pct(on, 99) < 0.060, (pct(on, 99), pct(on, 50))
    assert hits <= 2000 * 1.07, hits


def test_hedge_budget_bounds_extra_load(fo, variant):
    """A backend that always takes 100 ms, after_ms 10: every call wants a hedge, the token
    budget (10 + 5% of calls) allows few: hits <= n x 1.05 + 10."""
    n = 500 if variant == "plain" else 150
    before = B["slow100"].count()
    parallel(n, timed(fo, "/slow100"), threads=20)
    hits = B["slow100"].count() - before
    assert n + 10 <= hits <= n * 1.05 + 10, hits


def test_hedge_first_success_wins_and_loser_is_closed(fo):
    """The first attempt hangs: after 30 ms the hedge goes, answers, wins (winner 2), and the
    first attempt's connection is closed at once."""
    t = tag()
    r = fo.get("/held/" + t)
    assert r.status == 200, r
    assert r.json()["x"] == {"attempt": "2"}
    rep = report(r)
    assert rep["hedged"] is True and rep["winner"] == 2 and rep["attempts"] == 2, rep
    assert r.elapsed < 1.0, r
    deadline = time.monotonic() + 2
    while "/h/" + t not in STATE["hedge_closed"] and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for the backend thread to notice, not synchronisation
    assert "/h/" + t in STATE["hedge_closed"]


# ---- breakers --------------------------------------------------------------------------------

def test_breaker_opens_at_f_probes_once_then_closes(fo):
    """{3, 1000} on an always-500 backend: 3 hits, then requests 4-10 fail circuit_open at
    once without a hit; after 1 s one probe (still failing) re-opens it; once the backend is
    fixed, the next probe closes it and calls flow."""
    STATE["breaker_ok"] = False
    b = B["b500"]
    base = b.count()
    for i in range(10):
        r = fo.get("/breaker")
        assert r.status == 502, r
        rep = report(r)
        if i < 3:
            assert rep["error"] == "status" and rep["status"] == 500, rep
        else:
            assert rep["error"] == "circuit_open", rep
            assert rep["ms"] < 5, rep
            assert r.elapsed < 0.25, r
    assert b.count() - base == 3
    opened = time.monotonic()
    m = parse(fo.get("/metrics").body.decode())
    assert m.get("fanout_breaker_state", endpoint="GET /breaker", backend="x", host="") == 1
    time.sleep(max(0, 1.05 - (time.monotonic() - opened)))
    res = parallel(5, lambda i: fo.get("/breaker"))
    assert b.count() - base == 4  # exactly one probe
    assert sorted(report(r).get("error") for r in res) == ["circuit_open"] * 4 + ["status"]
    STATE["breaker_ok"] = True
    time.sleep(1.05)
    for _ in range(5):
        r = fo.get("/breaker")
        assert r.status == 200, r
    assert b.count() - base == 9
    m = parse(fo.get("/metrics").body.decode())
    assert m.get("fanout_breaker_state", endpoint="GET /breaker", backend="x", host="") == 0
    assert m.get("fanout_breaker_transitions_total", endpoint="GET /breaker", backend="x",
                 host="", to="open") == 2


def test_breaker_per_host_skips_the_open_host(fo):
    """With hosts, each host has its breaker: once the failing host's opens, every call goes
    to the other."""
    for _ in range(6):
        fo.get("/breaker_hosts")
    before = B["h500"].count()
    for _ in range(10):
        r = fo.get("/breaker_hosts")
        assert r.status == 200 and report(r)["host"] == B["hok"].origin(), r
    assert B["h500"].count() == before == 2


def test_timeout_is_retried_only_under_try_timeout_ms(fo):
    """on: [timeout]: a hanging first attempt cut by try_timeout_ms 100 is retried and the
    second answers; without try_timeout_ms the call's own timeout is not retried."""
    t = tag()
    r = fo.get("/try_timeout/" + t)
    assert r.status == 200 and r.json()["x"] == {"attempt": "2"}, r
    assert report(r)["attempts"] == 2
    assert r.elapsed < 0.9, r
    r = fo.get("/no_try_timeout/" + t)
    assert r.status == 504 and report(r)["attempts"] == 1, r
    assert report(r)["error"] == "timeout"


def test_hedge_after_p95_waits_for_100_samples(fo):
    """after: p95 on a backend that takes 20 ms, 300 ms on every 25th request: no hedge while
    the window holds fewer than 100 samples, then the slow ones are hedged."""
    b = B["p95"]
    base = b.count()
    parallel(60, timed(fo, "/p95"), threads=10)
    assert b.count() - base == 60  # fewer than 100 samples: never a hedge
    parallel(150, timed(fo, "/p95"), threads=10)
    m = parse(fo.get("/metrics").body.decode())
    sent = m.get("fanout_backend_hedges_total", endpoint="GET /p95", backend="x")
    assert sent >= 1
    # A hedge counts once it is started; one started just before its primary answers (a 20 ms
    # call a little over the p95 on a slow machine) is cancelled before its request leaves, so
    # the backend sees between one and all of them, and nothing else.
    assert 210 < b.count() - base <= 210 + sent, (b.count() - base, sent)


def test_breaker_counts_invalid_json_not_4xx_nor_the_deadline(fo):
    for _ in range(2):
        assert report(fo.get("/br_json"))["error"] == "invalid_json"
    assert report(fo.get("/br_json"))["error"] == "circuit_open"
    base = B["notfound"].count()
    for _ in range(4):
        assert report(fo.get("/br_4xx"))["error"] == "status"
    assert B["notfound"].count() - base == 4  # never opened
    base = B["hang"].count()
    for _ in range(3):
        assert report(fo.get("/br_deadline"))["error"] == "timeout"
    assert B["hang"].count() - base == 3  # the request's deadline does not count


def test_every_attempt_counts_for_the_breaker(fo):
    """{3, 60000} with 3 attempts on an always-503 backend: one request opens it."""
    r = fo.get("/br_retry")
    assert report(r)["attempts"] == 3 and report(r)["error"] == "status", r
    base = B["always503"].count()
    r = fo.get("/br_retry")
    assert report(r)["error"] == "circuit_open", r
    assert B["always503"].count() == base


def test_retry_and_hedge_metrics_and_access_log_host(fo):
    t = tag()
    fo.get("/flaky/" + t)
    fo.get("/held/" + t)
    m = parse(fo.get("/metrics").body.decode())
    assert m.get("fanout_backend_retries_total", endpoint="GET /flaky/{tag}", backend="x",
                 reason="status") >= 1
    assert m.get("fanout_backend_hedges_total", endpoint="GET /held/{tag}", backend="x") >= 1
    assert m.get("fanout_backend_hedges_won_total", endpoint="GET /held/{tag}", backend="x") >= 1
    fo.get("/rr")
    ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("path") == "/rr")
    assert ev["backends"]["x"]["host"] in (B["A"].origin(), B["B"].origin(), B["C"].origin())
    assert ev["backends"]["x"]["attempts"] == 1


# ---- stale on error --------------------------------------------------------------------------

def test_stale_value_served_when_the_backend_fails(fo):
    t = tag()
    r1 = fo.get("/stale/" + t)
    assert r1.status == 200 and r1.json()["x"] == {"v": "first"}, r1
    r2 = fo.get("/stale/" + t)
    assert r2.status == 200, r2
    assert r2.json()["x"] == {"v": "first"}
    assert r2.headers["X-Fanout-Complete"] == "false"
    rep = report(r2)
    assert rep["stale"] is True and 0 <= rep["age_ms"] < 5000, rep
    assert len(hits_of("stale", t)) == 2
    other = fo.get("/stale/" + tag())  # another URL has no stale value... until it had one
    assert other.status == 200 and "stale" not in report(other)


def test_stale_value_older_than_stale_ms_is_never_served(fo):
    t = tag()
    assert fo.get("/stale_old/" + t).status == 200
    time.sleep(0.3)  # past stale_ms (150): that is the rule under test
    r = fo.get("/stale_old/" + t)
    assert r.status == 502 and "stale" not in report(r), r


# ---- concurrency -----------------------------------------------------------------------------

def test_concurrent_clients_mixed_policies(fo):
    """8 clients x 25 requests through hosts, retries, hedges, breaker and stale at once
    (run under TSan too): every answer well-formed, plain backend always there."""
    def one(i):
        r = fo.get("/mixed/%d" % (i % 17), timeout=10)
        assert r.status == 200, r
        doc = r.json()
        assert "plain" in doc
        assert set(doc["_fanout"]["backends"]) == {"m", "plain"}
        return r
    res = parallel(200, one, threads=8)
    assert sum(1 for r in res if "m" in r.json()) >= 150


# ---- SIGHUP keeps state ----------------------------------------------------------------------

def test_sighup_keeps_breaker_state_of_unchanged_backends(spawn):
    fails = Scripted(lambda h: (500, {"e": 1}))
    try:
        def config(open_ms, extra):
            eps = [ep("/b", [be("x", fails.url("/b"),
                                breaker={"failures": 2, "open_ms": open_ms})], report=True)]
            if extra:
                eps.append(ep("/other", [be("y", fails.url("/o"))]))
            return {"endpoints": eps}
        fo = spawn(config(60000, False))
        for _ in range(2):
            assert report(fo.get("/b"))["error"] == "status"
        assert report(fo.get("/b"))["error"] == "circuit_open"
        n = fails.count()
        # An unrelated change: the breaker stays open across the reload.
        _reload(fo, config(60000, True))
        assert fo.get("/other").status == 502
        for _ in range(3):
            assert report(fo.get("/b"))["error"] == "circuit_open"
        assert fails.count() == n + 1  # only /other's call
        # A change to the backend itself: new state, calls go through again.
        _reload(fo, config(59000, True))
        assert report(fo.get("/b"))["error"] == "status"
        assert fails.count() == n + 2
    finally:
        fails.close()


def test_sighup_under_concurrent_clients(spawn):
    """4 clients through hosts, retries, hedges, a breaker and stale values while 6 reloads
    come in (each alternately changing one backend, so states are freed and made while
    calls use their neighbours'): every answer 200 with both members (and no sanitizer
    report, checked by spawn)."""
    flaky = Scripted(lambda h: (503, {"e": 1}) if h.n % 4 == 0 else (200, {"n": h.n}))
    ok = Scripted(lambda h: (200, {"ok": h.n}))
    try:
        def config(i):
            return {"timeout_ms": 2000, "endpoints": [ep("/m/{n}", [
                be("m", "http://placeholder.invalid:9/m/{n}", hosts=[flaky.origin(), ok.origin()],
                   retry={"attempts": 3, "backoff_ms": 1}, hedge={"after_ms": 5},
                   breaker={"failures": 20, "open_ms": 20}, stale_ms=1000),
                be("v", ok.url("/v/{n}"), retry={"attempts": 2, "backoff_ms": 1 + i % 2}),
            ])]}
        fo = spawn(config(0))
        stop = threading.Event()
        bad = []

        def client(k):
            conn = fo.connect()
            i = 0
            while not stop.is_set():
                r = fo.request("GET", "/m/%d" % (i % 13), conn=conn)
                doc = r.json()
                if r.status != 200 or "v" not in doc or "m" not in doc:
                    bad.append(r)
                i += 1
            conn.close()
        ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        try:
            for i in range(1, 7):
                _reload(fo, config(i))
        finally:
            stop.set()
            for t in ts:
                t.join(20)
        assert not bad, bad[:2]
    finally:
        flaky.close()
        ok.close()


def _reload(fo, config):
    tmp = fo.config_path + ".tmp"
    write_config(tmp, config)
    os.replace(tmp, fo.config_path)
    with fo.cond:
        start = len(fo.stdout)
    fo.proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with fo.cond:
            if any('"event":"reloaded"' in line for line in fo.stdout[start:]):
                return
            fo.cond.wait(0.1)
    raise AssertionError("no reload\n" + fo.output())


# ---- --check ---------------------------------------------------------------------------------

BAD = [
    ({"hosts": "http://a:1"}, "hosts: must be a non-empty array"),
    ({"hosts": ["http://a:1/path"]}, "hosts[0]: an origin has no path, query or fragment"),
    ({"hosts": ["http://a:1?q"]}, "hosts[0]: an origin has no path"),
    ({"hosts": ["ftp://a:1"]}, "hosts[0]: must be an \"http(s)://host:port\" origin"),
    ({"hosts": ["http://a:99999"]}, "hosts[0]: the port must be from 1 to 65535"),
    ({"hosts": ["http://a:1", "http://a:1"]}, "hosts[1]: duplicate of"),
    ({"idempotent": 1}, "idempotent: must be true or false"),
    ({"retry": {"attempts": 1}}, "retry.attempts: must be an integer from 2 to 5"),
    ({"retry": {"attempts": 6}}, "retry.attempts: must be an integer from 2 to 5"),
    ({"retry": {"on": ["connect", "404"]}}, "retry.on[1]: must be one of"),
    ({"retry": {"on": []}}, "retry.on: must be a non-empty array"),
    ({"retry": {"backoff_ms": 0}}, "retry.backoff_ms: must be an integer from 1"),
    ({"retry": {"try_timeout_ms": 0}}, "retry.try_timeout_ms: must be an integer from 1"),
    ({"retry": {"tries": 2}}, "retry: unknown key \"tries\""),
    ({"hedge": {}}, "hedge: give exactly one of \"after_ms\" and \"after\""),
    ({"hedge": {"after_ms": 5, "after": "p95"}}, "hedge: give exactly one of"),
    ({"hedge": {"after": "p100"}}, "hedge.after: must be a percentile"),
    ({"hedge": {"after_ms": 5, "max_extra_percent": 0}},
     "hedge.max_extra_percent: must be an integer from 1 to 100"),
    ({"method": "POST", "hedge": {"after_ms": 5}}, "hedge: needs an idempotent backend"),
    ({"breaker": {"failures": 3}}, "breaker: missing key \"open_ms\""),
    ({"breaker": {"failures": 0, "open_ms": 5}}, "breaker.failures: must be an integer from 1"),
    ({"rate_limit": {"rps": 0}}, "rate_limit.rps: must be an integer from 1"),
    ({"rate_limit": {"rps": 1, "key": "client_ip"}}, "rate_limit: unknown key \"key\""),
    ({"stale_ms": 0}, "stale_ms: must be an integer from 1"),
    ({"method": "POST", "stale_ms": 10}, "stale_ms: only a GET backend keeps stale values"),
    ({"stale_max_entries": 0}, "stale_max_entries: must be an integer from 1"),
    ({"stale_max_bytes": 0}, "stale_max_bytes: must be an integer from 1"),
]


def test_check_names_each_bad_key(fanout_bin, tmp_path):
    for i, (extra, want) in enumerate(BAD):
        b = {"name": "a", "url": "http://127.0.0.1:1/x"}
        b.update(extra)
        path = str(tmp_path / ("bad%d.json" % i))
        write_config(path, {"endpoints": [{"path": "/x", "backends": [
            {"name": "ok", "url": "http://127.0.0.1:1/y"}, b]}]})
        p = run_cli(fanout_bin, ["--check", "-c", path])
        assert p.returncode != 0, (extra, p.stdout)
        assert "endpoints[0].backends[1]." + want in p.stderr, (extra, want, p.stderr)
    for cfg, want in [
        ({"retry_budget": {"percent": 101}}, "retry_budget.percent: must be an integer from 0"),
        ({"retry_budget": {"mn": 1}}, "retry_budget: unknown key \"mn\""),
        ({"endpoints": [{"path": "/x", "rate_limit": {"rps": 1, "key": "cookie"},
                         "backends": [{"name": "a", "url": "http://127.0.0.1:1/"}]}]},
         "endpoints[0].rate_limit.key: must be \"client_ip\" or \"header:<Name>\""),
        ({"endpoints": [{"path": "/x", "rate_limit": {"rps": 1, "max_clients": 0},
                         "backends": [{"name": "a", "url": "http://127.0.0.1:1/"}]}]},
         "endpoints[0].rate_limit.max_clients: must be an integer from 1"),
        ({"endpoints": [{"path": "/x", "rate_limit": {"burst": 3},
                         "backends": [{"name": "a", "url": "http://127.0.0.1:1/"}]}]},
         "endpoints[0].rate_limit: missing key \"rps\""),
    ]:
        path = str(tmp_path / "root.json")
        write_config(path, cfg)
        p = run_cli(fanout_bin, ["--check", "-c", path])
        assert p.returncode != 0 and want in p.stderr, (cfg, p.stderr)
