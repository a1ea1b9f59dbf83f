"""Hostile backends, part 2: what one backend sends can never reach the wrong call.

- Stray bytes: a backend that writes an unsolicited second answer after a real one leaves bytes
  in a kept-alive connection. The next call must not take them as its answer (that call may be
  another user's, on another endpoint): fanout discards such a connection before it would carry
  a new request, and makes the call on a fresh one.
- A response head over 100 KiB is `too_large`, not `connect`.
- Batch headers: control bytes are refused, `Expect` is never sent, an empty value is sent as
  an empty header.

One worker, so every call shares one connection cache: reuse is what the stray tests provoke.
"""

import json
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from blackbox.evil_backend import shared
from blackbox.fanout import backend as be, endpoint as ep, error_code

E = shared()
STRAY_DEADLINE = 2000  # ms
FAST_BOUND = 1.0       # s: no case here may wait anything out


def tag():
    return uuid.uuid4().hex[:12]


def q(s):
    return urllib.parse.quote(s, safe="")


def secret(who):
    return json.dumps({"who": who, "secret": "secret-of-" + who}, separators=(",", ":"))


def fanout_config(b):
    eps = [
        # Alice's answer is followed by a second answer nobody asked for.
        ep("/api/alice/{ms}/{tag}", [
            be("alice", E.url("/stray?ms={ms}&tag={tag}&body=" + q(secret("alice"))
                              + "&stray=" + q(secret("stray")))),
        ], report=True, timeout_ms=STRAY_DEADLINE),
        # Other endpoints, other backend names, the same host:port.
        ep("/api/bob/{tag}", [be("bob", E.url("/json?tag={tag}&body=" + q(secret("bob"))))],
           report=True, timeout_ms=STRAY_DEADLINE),
        ep("/api/carol/{tag}", [
            be("carol", E.url("/json?tag={tag}&body=" + q(secret("carol")))),
            be("dave", E.url("/json?tag={tag}&body=" + q(secret("dave")))),
        ], report=True, timeout_ms=STRAY_DEADLINE),
        ep("/api/bighead/{bytes}/{line}/{tag}", [
            be("ok", E.url("/json?body=" + q('{"fine":1}'))),
            be("victim", E.url("/bighead?bytes={bytes}&line={line}&tag={tag}")),
        ], report=True, timeout_ms=STRAY_DEADLINE),
        ep("/api/conf_headers/{tag}", [
            be("h", b.url("/echo?tag={tag}"),
               headers={"Expect": "100-continue", "User-Agent": "", "X-Empty": ""}),
        ]),
    ]
    return {
        "workers": 1,
        "timeout_ms": 5000,
        "aggregate": {"allow_hosts": ["127.0.0.1:%d" % b.port], "timeout_ms": 3000},
        "endpoints": eps,
    }


def own_answer(r, names):
    """The answer carries exactly the named backends, each with its own secret."""
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    body = r.json()
    for n in names:
        assert body.get(n) == json.loads(secret(n)), "%s got someone else's answer: %r" % (n, r)
    assert b"secret-of-stray" not in r.body, "the unsolicited answer was served: %r" % r


def reqs_after(first):
    """Requests the connection of 'first' carried after it."""
    with E.cond:
        i = next(i for i, x in enumerate(E.requests) if x is first)
        return [x.line for x in E.requests[i + 1:] if x.conn_id == first.conn_id]


@pytest.mark.parametrize("ms", [0, 30])
def test_stray_answer_is_never_served_to_the_next_call(fo, ms):
    """ms=30: the second answer arrives after curl read the first (it waits in the socket);
    ms=0: both arrive in one write. Either way the next calls, on other endpoints and backend
    names, get their own backends' answers, and the connection that carried the stray bytes
    never carries another request: fanout closes it."""
    t = tag()
    r = fo.get("/api/alice/%d/%s" % (ms, t))
    own_answer(r, ["alice"])
    first = E.wait_request(t, 1)
    E.wait_mark("stray", first.conn_id)  # the stray bytes are in the connection now

    for i in range(3):
        t2 = tag()
        r = fo.get("/api/bob/" + t2)
        own_answer(r, ["bob"])
        t3 = tag()
        r = fo.get("/api/carol/" + t3)
        own_answer(r, ["carol", "dave"])

    later = reqs_after(first)
    assert not later, "the connection holding stray bytes carried more requests: %r" % later
    c = E.wait_closed(first.conn_id, 2.0)
    assert c.closed_by == "peer", c
    # Reuse of clean connections still works: the six calls above did not need six connections.
    with E.cond:
        conns = {x.conn_id for x in E.requests if x.params.get("tag") in (t2, t3)}
    assert len(conns) <= 2, conns


def test_stray_answer_with_concurrent_calls(fo):
    """Several connections in the cache (concurrent requests opened them), one of them dirty:
    whichever calls land on it, every answer is its own."""
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: own_answer(fo.get("/api/carol/" + tag()), ["carol", "dave"]),
                      range(8)))
    t = tag()
    own_answer(fo.get("/api/alice/30/" + t), ["alice"])
    first = E.wait_request(t, 1)
    E.wait_mark("stray", first.conn_id)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: own_answer(fo.get("/api/carol/" + tag()), ["carol", "dave"]),
                      range(8)))
    for _ in range(4):
        own_answer(fo.get("/api/bob/" + tag()), ["bob"])
    assert not reqs_after(first)
    assert E.wait_closed(first.conn_id, 2.0).closed_by == "peer"


def metric(fo, name):
    r = fo.get("/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.parametrize("size,line", [(200 << 10, 200 << 10), (200 << 10, 1024)])
def test_huge_response_head_is_too_large(fo, size, line):
    """~200 KiB of response head, as one line or as 200 lines of 1 KiB: `too_large`, answered
    at once, the connection closed by fanout."""
    t = tag()
    r = fo.get("/api/bighead/%d/%d/%s" % (size, line, t))
    assert r.status == 200, r
    rep = r.json()["_fanout"]["backends"]
    assert rep["ok"]["status"] == 200, rep
    assert rep["victim"].get("error") == "too_large", rep
    assert r.elapsed < FAST_BOUND, r
    req = E.wait_request(t, 1)
    assert E.wait_closed(req.conn_id, 2.0).closed_by == "peer"


def test_response_head_under_the_cap_is_fine(fo):
    t = tag()
    r = fo.get("/api/bighead/%d/%d/%s" % (60 << 10, 1024, t))
    rep = r.json()["_fanout"]["backends"]
    assert "error" not in rep["victim"] and rep["victim"]["status"] == 200, rep


# ---- batch and configured headers ----

def batch_one(fo, backend, headers, t, **req):
    doc = {"requests": {"one": dict({"url": backend.url("/echo?tag=" + t), "headers": headers},
                                    **req)}}
    return fo.post("/aggregate", json.dumps(doc).encode())


@pytest.mark.parametrize("byte", ["\x0b", "\x0c", "\x01", "\x7f", "\x1f", "\x00"])
def test_batch_header_control_bytes_are_refused(fo, backend, byte):
    t = tag()
    r = batch_one(fo, backend, {"X-Ok": "fine", "X-Tag": "a" + byte + "b"}, t)
    assert r.status == 400, r
    assert error_code(r) == "invalid_batch", r
    msg = r.json()["error"]["message"]
    assert '"one"' in msg and "X-Tag" in msg, msg
    backend.assert_no_request(t, grace=0.1)


def test_batch_header_htab_and_high_bytes_pass(fo, backend):
    t = tag()
    r = batch_one(fo, backend, {"X-Tag": "a\tb", "X-Utf8": "\u00e9"}, t)
    assert r.status == 200, r
    got = backend.wait_request(t, 1)
    assert got.header("X-Tag") == "a\tb", got.headers


def test_batch_expect_is_never_sent(fo, backend):
    """A batch POST with "Expect: 100-continue" would stall 1 s waiting for a 100 the backend
    never sends: the header is dropped, the call is answered at once."""
    t = tag()
    r = batch_one(fo, backend, {"Expect": "100-continue", "X-Tag": "a"}, t, method="POST",
                  body={"k": "v" * 2000})
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    assert r.elapsed < 0.5, "the call waited for a 100 Continue: %r" % r
    got = backend.wait_request(t, 1)
    assert got.header("Expect") is None, got.headers
    assert got.header("X-Tag") == "a", got.headers
    assert json.loads(got.body) == {"k": "v" * 2000}


def test_batch_empty_header_value_is_sent_empty(fo, backend):
    t = tag()
    r = batch_one(fo, backend, {"User-Agent": "", "X-Empty": "", "X-Tag": "a"}, t)
    assert r.status == 200, r
    got = backend.wait_request(t, 1)
    names = [k.lower() for k, _ in got.headers]
    assert names.count("user-agent") == 1, got.headers
    assert got.header("User-Agent") == "", got.headers
    assert got.header("X-Empty") == "", got.headers
    assert got.header("X-Tag") == "a", got.headers


def test_configured_expect_and_empty_headers(fo, backend):
    t = tag()
    r = fo.get("/api/conf_headers/" + t)
    assert r.status == 200, r
    got = backend.wait_request(t, 1)
    assert got.header("Expect") is None, got.headers
    assert got.header("User-Agent") == "", got.headers
    assert got.header("X-Empty") == "", got.headers
