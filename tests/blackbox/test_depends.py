"""Dependent calls: depends_on, {name.path} placeholders, foreach, the schedule, the classes
dependency and forbidden, the checks of the graph (config and batch), SSRF after substitution.

Backends are scripted per test (scripted.py) and record each arrival (time, request line,
headers, body), so schedules are checked on arrival order and timestamps with wide margins,
not on wall-clock totals.
"""

import json
import socket
import threading
import time
import uuid

import pytest

from blackbox.fanout import backend as be, endpoint as ep, error_code, run_cli, write_config
from blackbox.promparse import parse
from blackbox.scripted import Scripted

B = {}
SLOW = 0.15  # seconds: the delay of the backends whose schedule is checked


def tag():
    return uuid.uuid4().hex[:8]


def slept(delay, body):
    def fn(h):
        time.sleep(delay)
        return 200, body(h) if callable(body) else body
    return fn


class InFlight:
    """A backend that sleeps a random-ish time per item and records the most in flight."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, h):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        n = int(h.path.rsplit("/", 1)[1].split("?")[0] or 0)
        time.sleep(0.05 + (n * 37 % 11) / 100.0)  # shuffled answer order
        with self.lock:
            self.now -= 1
        return 200, {"item": n}


def fanout_config(_backend):
    for s in B.values():
        if hasattr(s, "close"):
            s.close()
    B.clear()

    def mk(name, fn):
        B[name] = Scripted(fn)
        return B[name]

    hotel = mk("hotel", slept(SLOW, {"destination_id": 1034, "secret": "s1"}))
    dest = mk("dest", lambda h: (200, {"dest": h.path}))
    third = mk("third", lambda h: (200, {"third": True}))
    slow = mk("slow", slept(SLOW, lambda h: {"path": h.path, "n": [1, 2]}))
    weird = mk("weird", lambda h: (200, (
        b'{"slash":"a/b?c&d#e%f g","crlf":"x\\r\\nInjected: 1","big":12345678901234567890,'
        b'"uni":"\xc3\xa9\xe6\xbc\xa2","dec":1.50,"flag":true,"list":[1,"two",3],'
        b'"nested":{"x":1},"none":null}')))
    echo = mk("echo", lambda h: (200, {"path": h.path}))
    items = mk("items", lambda h: (200, {"items": [{"id": i % 17} for i in range(20)] +
                                         [{"id": 3}]}))
    many = mk("many", lambda h: (200, {"xs": list(range(12))}))
    inflight = InFlight()
    B["inflight"] = inflight
    per_item = mk("per_item", inflight)
    fail = mk("fail", lambda h: (500, {"e": 1}))

    def u(name, path):
        return B[name].url(path)

    eps = [
        ep("/hotel/{id}", [
            be("hotel", u("hotel", "/hotels/{id}"), deny=["destination_id"]),
            be("dest", u("dest", "/destinations/{hotel.destination_id}"), depends_on=["hotel"],
               headers={"X-From": "{hotel.secret}"}),
            be("third", u("third", "/third")),
        ], report=True),
        ep("/diamond", [
            be("a", u("slow", "/a")),
            be("b", u("slow", "/b/{a.n}"), depends_on=["a"]),
            be("c", u("slow", "/c"), depends_on=["a"]),
            be("d", u("slow", "/d/{b.path}"), depends_on=["b", "c"]),
        ], report=True),
        ep("/chain", [
            be("a", u("slow", "/ca")),
            be("b", u("slow", "/cb"), depends_on=["a"]),
            be("c", u("slow", "/cc"), depends_on=["b"]),
        ], report=True, timeout_ms=int(SLOW * 1000 * 1.6)),
        ep("/values", [
            be("w", u("weird", "/w")),
            be("p", u("echo", "/p/{w.slash}?q={w.slash}&big={w.big}&u={w.uni}&d={w.dec}"
                              "&f={w.flag}&l={w.list}"), depends_on=["w"]),
        ], report=True),
        ep("/crlf", [
            be("w", u("weird", "/w")),
            be("h", u("echo", "/crlf"), depends_on=["w"], headers={"X-V": "{w.crlf}"}),
        ], report=True),
        ep("/body", [
            be("w", u("weird", "/w")),
            be("p", u("echo", "/body"), method="POST", depends_on=["w"],
               body={"big": "{w.big}", "dec": "{w.dec}", "s": "<{w.crlf}>", "l": "{w.list}",
                     "keep": [1.50, "{{not}}"]}),
        ], report=True),
        ep("/missing", [
            be("w", u("weird", "/w")),
            be("none", u("echo", "/none/{w.none}"), depends_on=["w"]),
            be("obj", u("echo", "/obj/{w.nested}"), depends_on=["w"]),
            be("gone", u("echo", "/gone/{w.nothing}"), depends_on=["w"]),
            be("dflt", u("echo", "/dflt/{w.nothing|zero}"), depends_on=["w"]),
        ], report=True),
        ep("/depfail", [
            be("f", u("fail", "/f")),
            be("x", u("echo", "/x"), depends_on=["f"], fallback={"fb": True}),
            be("ok", u("echo", "/ok")),
        ], report=True),
        ep("/depfail-required", [
            be("f", u("fail", "/f")),
            be("x", u("echo", "/x"), depends_on=["f"], required=True),
        ]),
        ep("/each", [
            be("list", u("items", "/list")),
            be("each", u("per_item", "/item/{item.id}"), foreach="list.items.*",
               max_concurrency=4),
        ], report=True),
        ep("/each-object", [
            be("list", u("items", "/list")),
            be("each", u("echo", "/o/{item}"), foreach="list.items.*.id",
               foreach_as="object"),
        ], report=True),
        ep("/each-too-many", [
            be("list", u("many", "/many")),
            be("each", u("echo", "/m/{item}"), foreach="list.xs.*", max_items=10),
        ], report=True),
        ep("/each-empty", [
            be("list", u("many", "/many")),
            be("each", u("echo", "/e/{item}"), foreach="list.nothing_here.*"),
            be("none", u("echo", "/e/{item}"), foreach="list.xs.*.no"),
        ], report=True),
    ]
    return {"listen": "127.0.0.1:0", "timeout_ms": 5000, "endpoints": eps,
            "aggregate": {"allow_hosts": ["127.0.0.1:%d" % B[n].port
                                          for n in ("hotel", "echo", "slow")]}}


@pytest.fixture(scope="module", autouse=True)
def _close_backends():
    yield
    for s in B.values():
        if hasattr(s, "close"):
            s.close()
    B.clear()


def rep(r):
    return r.json()["_fanout"]["backends"]


def rep_or_none(r):
    return r.json().get("_fanout")


def hits(name, part):
    return [h for h in B[name].hits if part in h.path]


# ---- the schedule ------------------------------------------------------------------------

def test_hotel_dependent_gets_the_value_and_the_independent_call_starts_at_once(fo):
    t = tag()
    r = fo.get("/hotel/%s" % t)
    assert r.status == 200, r.body
    assert r.json()["dest"] == {"dest": "/destinations/1034"}
    assert "destination_id" not in r.json()["hotel"]  # denied after its dependents read it
    h = hits("hotel", t)[0]
    d = [x for x in B["dest"].hits if x.at > h.at][-1]
    assert d.path == "/destinations/1034"
    assert d.header("x-from") == "s1"
    third = [x for x in B["third"].hits if x.at >= h.at - 1][-1]
    assert third.at < h.at + SLOW * 0.8, "the independent call waited for the hotel"
    assert d.at >= h.at + SLOW * 0.9, "the dependent started before its dependency answered"
    assert int(d.header("x-timeout-ms")) < int(h.header("x-timeout-ms"))
    b = rep(r)
    assert b["dest"]["start_ms"] >= SLOW * 1000 * 0.9
    assert b["third"]["start_ms"] < SLOW * 1000 * 0.8
    assert b["hotel"]["start_ms"] < SLOW * 1000 * 0.8


def test_diamond_runs_b_and_c_together_then_d(fo):
    r = fo.get("/diamond")
    assert r.status == 200, r.body
    s = {k: v["start_ms"] for k, v in rep(r).items()}
    assert abs(s["b"] - s["c"]) < 100, s
    assert s["b"] >= s["a"] + SLOW * 1000 * 0.9, s
    assert s["d"] >= max(s["b"], s["c"]) + SLOW * 1000 * 0.9, s
    # Three levels, not four: d started well before a fourth serial step would allow.
    assert s["d"] < s["a"] + 3 * SLOW * 1000, s
    assert r.json()["d"]["path"] == "/d/%2Fb%2F1%252C2"


def test_deadline_cuts_the_chain_and_reports_what_never_started(fo):
    r = fo.get("/chain")
    assert r.status in (200, 504), r.body
    b = rep(r) if r.status == 200 else None
    if b is None:
        return
    assert "error" not in b["a"]
    assert b["b"]["error"] == "timeout"
    assert b["c"]["error"] in ("dependency", "cancelled", "timeout")
    assert "start_ms" not in b["c"]


# ---- values --------------------------------------------------------------------------------

def test_values_are_encoded_never_injected(fo):
    r = fo.get("/values")
    assert r.status == 200, r.body
    path = r.json()["p"]["path"]
    seg = "a%2Fb%3Fc%26d%23e%25f%20g"
    assert path == ("/p/%s?q=%s&big=12345678901234567890&u=%%C3%%A9%%E6%%BC%%A2&d=1.50"
                    "&f=true&l=1%%2Ctwo%%2C3" % (seg, seg)), path


def test_header_value_with_crlf_fails_shape_and_sends_nothing(fo):
    before = len(hits("echo", "/crlf"))
    r = fo.get("/crlf")
    assert r.status == 200
    assert rep(r)["h"]["error"] == "shape"
    assert r.headers.get("X-Fanout-Complete") == "false"
    assert len(hits("echo", "/crlf")) == before


def test_body_placeholders_are_exact_json(fo):
    r = fo.get("/body")
    assert r.status == 200, r.body
    h = hits("echo", "/body")[-1]
    assert h.method == "POST"
    assert h.body == (b'{"big":12345678901234567890,"dec":1.50,"s":"<x\\r\\nInjected: 1>",'
                      b'"l":[1,"two",3],"keep":[1.5,"{{not}}"]}'), h.body
    assert h.header("content-type") == "application/json"


def test_missing_null_and_object_values_mean_dependency(fo):
    r = fo.get("/missing")
    assert r.status == 200
    b = rep(r)
    assert b["none"]["error"] == "dependency"
    assert b["obj"]["error"] == "dependency"
    assert b["gone"]["error"] == "dependency"
    assert "start_ms" not in b["gone"]
    assert r.json()["dflt"] == {"path": "/dflt/zero"}
    assert not hits("echo", "/none/") and not hits("echo", "/obj/") and not hits("echo", "/gone/")


def test_failed_dependency_gives_dependency_and_the_fallback(fo):
    r = fo.get("/depfail")
    assert r.status == 200
    assert rep(r)["x"]["error"] == "dependency"
    assert r.json()["x"] == {"fb": True}
    assert r.headers.get("X-Fanout-Complete") == "false"


def test_required_dependent_of_a_failed_call_fails_the_request_naming_it(fo):
    r = fo.get("/depfail-required")
    assert r.status == 502, r.body
    assert r.json()["error"]["backend"] == "x", r.json()
    assert "dependency" in r.json()["error"]["message"]


def test_dependency_outcome_is_counted_in_metrics(fo):
    fo.get("/depfail")
    m = parse(fo.get("/metrics").body.decode())
    got = [v for ls, v in m.select("fanout_backend_calls_total")
           if ls.get("backend") == "x" and ls.get("outcome") == "dependency"]
    assert got and sum(got) >= 1


# ---- foreach -------------------------------------------------------------------------------

def test_foreach_keeps_order_dedups_and_bounds_concurrency(fo):
    B["inflight"].most = 0
    before = len(B["per_item"].hits)
    r = fo.get("/each")
    assert r.status == 200, r.body
    ids = [i % 17 for i in range(20)] + [3]
    assert r.json()["each"] == [{"item": i} for i in ids]
    sent = [h.path for h in B["per_item"].hits[before:]]
    assert sorted(sent) == sorted("/item/%d" % i for i in set(ids))  # duplicates once
    assert B["inflight"].most <= 4, B["inflight"].most
    assert B["inflight"].most >= 2  # it does run items together
    assert rep(r)["each"]["items_failed"] == 0
    assert r.headers.get("X-Fanout-Complete") == "true"


def test_foreach_as_object_keys_by_element(fo):
    r = fo.get("/each-object")
    assert r.status == 200, r.body
    got = r.json()["each"]
    assert list(got) == [str(i) for i in range(17)]
    assert got["5"] == {"path": "/o/5"}


def test_foreach_over_max_items_fails_shape_and_sends_nothing(fo):
    before = len(hits("echo", "/m/"))
    r = fo.get("/each-too-many")
    assert rep(r)["each"]["error"] == "shape"
    assert len(hits("echo", "/m/")) == before


def test_foreach_without_the_container_is_dependency_and_missing_members_are_null(fo):
    r = fo.get("/each-empty")
    b = rep(r)
    assert b["each"]["error"] == "dependency"
    assert r.json()["none"] == [None] * 12
    assert b["none"]["items_failed"] == 12
    assert r.headers.get("X-Fanout-Complete") == "false"


# ---- batch ---------------------------------------------------------------------------------

def test_batch_follows_a_link_but_never_to_a_host_it_may_not_call(fo):
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.settimeout(0.05)
    port = trap.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                c, _ = trap.accept()
                accepted.append(c)
            except OSError:
                pass
    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        body = {"report": True, "requests": {
            "first": {"url": B["hotel"].url("/hotels/link")},
            "next": {"url": "{first.secret}", "depends_on": ["first"]},
            "evil": {"url": "{first.destination_id}", "depends_on": ["first"]},
            "ok": {"url": B["echo"].url("/b/{first.destination_id}"), "depends_on": ["first"]},
        }}
        r = fo.post("/aggregate", body)
        assert r.status == 200, r.body
        b = rep(r)
        assert b["next"]["error"] == "forbidden"
        assert b["evil"]["error"] == "forbidden"
        assert r.json()["ok"] == {"path": "/b/1034"}
        ssrf = {"requests": {
            "first": {"url": B["echo"].url("/x")},
            "go": {"url": "{first.path}", "depends_on": ["first"]},
        }}
        # The echo answers {"path": "/x"}: not a URL; and a real listener it may not call:
        r = fo.post("/aggregate", ssrf)
        assert r.status == 200
        r = fo.post("/aggregate", {"report": True, "requests": {
            "first": {"url": B["echo"].url("/http://127.0.0.1:%d/" % port)},
            "go": {"url": "http://127.0.0.1:%d/{first.path}" % port, "depends_on": ["first"]},
        }})
        assert r.status == 403  # A host not allowed, named before any call.
    finally:
        time.sleep(0.2)
        stop.set()
        th.join(2)
        trap.close()
    assert accepted == []


def test_batch_forbidden_url_makes_no_connection(fo, spawn):
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    port = trap.getsockname()[1]
    link = Scripted(lambda h: (200, {"next": "http://127.0.0.1:%d/meta" % port}))
    try:
        r = fo.post("/aggregate", {"report": True, "requests": {
            "first": {"url": B["echo"].url("/first")},
        }})
        assert r.status == 200
        f = spawn({"listen": "127.0.0.1:0",
                   "aggregate": {"allow_hosts": ["127.0.0.1:%d" % link.port]}})
        r = f.post("/aggregate", {"report": True, "requests": {
            "first": {"url": link.url("/l")},
            "next": {"url": "{first.next}", "depends_on": ["first"]},
        }})
        assert r.status == 200, r.body
        assert rep(r)["next"]["error"] == "forbidden"
        trap.settimeout(0.3)
        with pytest.raises(socket.timeout):
            trap.accept()
    finally:
        trap.close()
        link.close()


def test_batch_dependent_and_foreach(fo):
    r = fo.post("/aggregate", {"requests": {
        "h": {"url": B["hotel"].url("/hotels/b")},
        "d": {"url": B["echo"].url("/d/{h.destination_id}"), "depends_on": ["h"],
              "headers": {"X-Id": "{h.destination_id}"}},
        "e": {"url": B["echo"].url("/e/{item}"), "foreach": "d.path.*"},
    }})
    assert r.status == 200, r.body
    assert r.json()["d"] == {"path": "/d/1034"}
    assert hits("echo", "/d/1034")[-1].header("x-id") == "1034"
    assert rep_or_none(r) is None


@pytest.mark.parametrize("requests, words", [
    ({"a": {"url": "http://127.0.0.1:1/a", "depends_on": ["b"]},
      "b": {"url": "http://127.0.0.1:1/b", "depends_on": ["a"]}}, ["cycle", "a -> b -> a"]),
    ({"a": {"url": "http://127.0.0.1:1/a", "depends_on": ["zz"]}}, ["zz"]),
    ({"a": {"url": "http://127.0.0.1:1/a", "depends_on": ["a"]}}, ["itself"]),
    ({"a": {"url": "http://127.0.0.1:1/a"},
      "b": {"url": "http://127.0.0.1:1/b/{c.x}", "depends_on": ["a"]}}, ["c.x"]),
    ({"a": {"url": "http://127.0.0.1:1/a"},
      "b": {"url": "http://127.0.0.1:1/b", "foreach": "a.x"}}, ["*"]),
])
def test_batch_graph_errors_are_400(fo, requests, words):
    requests = json.loads(json.dumps(requests))  # the parameters are shared by the variants
    for q in requests.values():
        q["url"] = q["url"].replace("127.0.0.1:1", "127.0.0.1:%d" % B["echo"].port)
    r = fo.post("/aggregate", {"requests": requests})
    assert r.status == 400, r.body
    assert error_code(r) == "invalid_batch"
    for w in words:
        assert w in r.json()["error"]["message"], r.json()


# ---- --check -------------------------------------------------------------------------------

def chain(n):
    bs = [be("c0", "http://127.0.0.1:1/0")]
    for i in range(1, n):
        bs.append(be("c%d" % i, "http://127.0.0.1:1/%d" % i, depends_on=["c%d" % (i - 1)]))
    return bs


@pytest.mark.parametrize("backends, words", [
    ([be("a", "http://127.0.0.1:1/a", depends_on=["b"]),
      be("b", "http://127.0.0.1:1/b", depends_on=["a"])],
     ["endpoints[0].backends[0].depends_on", "a cycle: a -> b -> a"]),
    ([be("a", "http://127.0.0.1:1/a", depends_on=["nope"])], ["nope", "depends_on"]),
    ([be("a", "http://127.0.0.1:1/a", depends_on=["a"])], ["itself"]),
    ([be("a", "http://127.0.0.1:1/a"), be("b", "http://127.0.0.1:1/{a.x}")],
     ["endpoints[0].backends[1]", "{a.x}", "depends_on"]),
    ([be("a", "http://127.0.0.1:1/a"), be("b", "http://127.0.0.1:1/b", foreach="a.x.y")],
     ["endpoints[0].backends[1].foreach", "*"]),
    ([be("a", "http://127.0.0.1:1/a"), be("b", "http://127.0.0.1:1/b", foreach="a.*.*")],
     ["exactly one"]),
    ([be("a", "http://127.0.0.1:1/a"), be("b", "http://{a.host}/b", depends_on=["a"])],
     ["endpoints[0].backends[1].url"]),
    (chain(9), ["chain of 9", "at most 8"]),
])
def test_check_refuses_bad_graphs(fanout_bin, tmp_path, backends, words):
    p = str(tmp_path / "c.json")
    write_config(p, {"listen": "127.0.0.1:0", "endpoints": [ep("/x", backends)]})
    out = run_cli(fanout_bin, ["--check", "-c", p])
    assert out.returncode == 1, out.stdout + out.stderr
    for w in words:
        assert w in out.stdout + out.stderr, out.stdout + out.stderr


def test_check_accepts_a_chain_of_8(fanout_bin, tmp_path):
    p = str(tmp_path / "c.json")
    write_config(p, {"listen": "127.0.0.1:0", "endpoints": [ep("/x", chain(8))]})
    out = run_cli(fanout_bin, ["--check", "-c", p])
    assert out.returncode == 0, out.stdout + out.stderr
