"""Fan-out and fan-in: concurrency, the merged document, X-Fanout-Complete, the report."""

import re

from blackbox.backend import BIGNUM_BODY, closed_port
from blackbox.fanout import backend as be, endpoint as ep

# Held open for the whole module: connecting to this port is refused.
_REFUSED_SOCK, REFUSED_PORT = closed_port()

NUMS_BODY = (b'[12345678901234567890,-0.000000000000000000001234567890123456789,'
             b'1.5E+300,123456789012345678901234567890,0.10000000000000000000000000001]')
LIFTED_BODY = b'{"huge":98765432109876543210987654321,"tiny":1e-999}'


def fanout_config(b):
    return {
        "timeout_ms": 2000,
        "max_response_bytes": 65536,
        "endpoints": [
            ep("/api/three", [be(n, b.url(b.route({"who": n}, delay_ms=300))) for n in "abc"]),
            # Answers arrive m3, m2, plain, m1: the reverse of config order.
            ep("/api/merge", [
                be("m1", b.url(b.route({"k": "m1", "a": 1, "z": 1}, delay_ms=300)), merge=True),
                be("plain", b.url(b.route([1, 2, 3], delay_ms=200))),
                be("m2", b.url(b.route({"k": "m2", "b": 2, "a": "m2a"}, delay_ms=100)),
                   merge=True),
                be("m3", b.url(b.route("scalar")), merge=True),
            ]),
            ep("/api/named", [
                be("first", b.url(b.route({"n": 1}, delay_ms=200))),
                be("second", b.url(b.route({"n": 2}, delay_ms=100))),
                be("third", b.url(b.route({"n": 3}))),
            ]),
            ep("/api/clash", [
                be("x", b.url(b.route({"v": 1}, delay_ms=100))),
                be("lift", b.url(b.route({"x": "lifted", "y": 2})), merge=True),
            ]),
            ep("/api/bignum", [
                be("big", b.url("/bignum")),
                be("nums", b.url(b.route(NUMS_BODY))),
                be("lifted", b.url(b.route(LIFTED_BODY)), merge=True),
            ]),
            ep("/api/complete", [
                be("a", b.url(b.route({"a": True}))),
                be("b", b.url(b.route({"b": True}, status=201))),
            ]),
            ep("/api/partial", [
                be("ok", b.url(b.route({"fine": 1}))),
                be("bad", b.url("/status/500")),
            ]),
            ep("/api/report", [
                be("ok", b.url(b.route({"fine": 1}))),
                be("created", b.url(b.route({"made": 1}, status=201))),
                be("ws", b.url(b.route(b' \r\n\t{"w": 1} \n'))),
                be("st", b.url("/status/503")),
                be("garbage", b.url("/garbage")),
                be("trailing", b.url(b.route(b'{"a": 1} x'))),
                be("badutf8", b.url(b.route(b'{"a": "\xff\xfe"}'))),
                be("nocontent", b.url(b.route(b"", status=204))),
                be("conn", "http://127.0.0.1:%d/x" % REFUSED_PORT),
                be("reset", b.url("/reset")),
                be("huge", b.url("/big?bytes=200000")),
                be("redir", b.url("/redirect?to=/json")),
                be("slow", b.url("/hang"), timeout_ms=100),
            ], report=True),
            ep("/api/report_ok", [be("a", b.url(b.route({"a": 1})))], report=True),
        ],
    }


def test_health(fo):
    r = fo.get("/health")
    assert r.status == 200, r
    assert r.json() == {"status": "ok"}


def test_three_backends_called_concurrently(fo):
    r = fo.get("/api/three")
    assert r.status == 200, r
    assert r.json() == {"a": {"who": "a"}, "b": {"who": "b"}, "c": {"who": "c"}}
    # Sequential would take >= 900 ms; any two in sequence >= 600 ms.
    assert 0.29 <= r.elapsed < 0.6, "3 x 300 ms backends took %.0f ms" % (r.elapsed * 1000)


def test_success_headers(fo):
    r = fo.get("/api/complete")
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    assert r.pairs() == [("a", {"a": True}), ("b", {"b": True})]


def test_query_string_is_not_part_of_the_path(fo):
    r = fo.get("/api/complete?x=1&y=%2F")
    assert r.status == 200, r
    assert r.keys() == ["a", "b"]


def test_keys_in_config_order_not_arrival_order(fo):
    r = fo.get("/api/named")
    assert r.status == 200, r
    assert r.pairs() == [("first", {"n": 1}), ("second", {"n": 2}), ("third", {"n": 3})]


def test_merge_lifts_members_later_wins_first_position_kept(fo):
    r = fo.get("/api/merge")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    # m1 lifted (k, a, z); plain under its name; m2 lifted: k and a clash -> m2's values in
    # m1's positions, b new; m3 is not an object -> kept under its name.
    assert r.pairs() == [("k", "m2"), ("a", "m2a"), ("z", 1), ("plain", [1, 2, 3]), ("b", 2),
                         ("m3", "scalar")]


def test_merge_clash_with_a_named_result(fo):
    r = fo.get("/api/clash")
    assert r.status == 200, r
    assert r.pairs() == [("x", "lifted"), ("y", 2)]


def test_numbers_byte_exact(fo):
    r = fo.get("/api/bignum")
    assert r.status == 200, r
    assert re.search(rb'"big"\s*:\s*' + re.escape(BIGNUM_BODY), r.body), r
    assert re.search(rb'"nums"\s*:\s*' + re.escape(NUMS_BODY), r.body), r
    assert re.search(rb'"huge"\s*:\s*98765432109876543210987654321\s*[,}]', r.body), r
    assert re.search(rb'"tiny"\s*:\s*1e-999\s*[,}]', r.body), r
    assert r.keys() == ["big", "nums", "huge", "tiny"]


def test_failed_backend_is_absent_and_complete_false(fo):
    r = fo.get("/api/partial")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "false", r
    assert r.pairs() == [("ok", {"fine": 1})]  # no "_fanout" without report: true


def test_report_shape_and_failure_classes(fo):
    r = fo.get("/api/report")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "false", r
    pairs = r.pairs()
    # A 204 has no body by definition: "nocontent" succeeds with the value null.
    assert [k for k, _ in pairs] == ["ok", "created", "ws", "nocontent", "_fanout"], r
    assert dict(pairs)["nocontent"] is None, r
    assert re.search(rb'"ws"\s*:\s*\{"w": 1\}', r.body), r
    assert dict(pairs)["ok"] == {"fine": 1}
    assert dict(pairs)["created"] == {"made": 1}
    rep = r.json()["_fanout"]
    assert set(rep) == {"complete", "elapsed_ms", "backends"}, rep
    assert rep["complete"] is False
    assert isinstance(rep["elapsed_ms"], (int, float)), rep
    # The slowest call is "slow", cut at its own 100 ms.
    assert 90 <= rep["elapsed_ms"] <= r.elapsed * 1000 + 5, (rep, r.elapsed)
    assert r.elapsed < 1.0, r
    backends = rep["backends"]
    names = ["ok", "created", "ws", "st", "garbage", "trailing", "badutf8", "nocontent", "conn",
             "reset", "huge", "redir", "slow"]
    assert list(backends) == names, backends
    for name, b in backends.items():
        assert isinstance(b.get("ms"), (int, float)) and b["ms"] >= 0, (name, b)
    assert backends["ok"] == {"status": 200, "ms": backends["ok"]["ms"], "start_ms": 0} or \
        backends["ok"]["start_ms"] < 100, backends
    assert {k: v for k, v in backends["created"].items() if k != "start_ms"} == \
        {"status": 201, "ms": backends["created"]["ms"]}
    assert backends["st"]["error"] == "status" and backends["st"]["status"] == 503, backends
    assert backends["garbage"]["error"] == "invalid_json", backends
    assert backends["ws"]["status"] == 200 and "error" not in backends["ws"], backends
    assert backends["trailing"]["error"] == "invalid_json", backends
    assert backends["badutf8"]["error"] == "invalid_json", backends
    assert {k: v for k, v in backends["nocontent"].items() if k != "start_ms"} == \
        {"status": 204, "ms": backends["nocontent"]["ms"]}, backends
    assert backends["conn"]["error"] == "connect", backends
    assert backends["reset"]["error"] == "connect", backends
    assert backends["huge"]["error"] == "too_large", backends
    assert backends["redir"]["error"] == "status" and backends["redir"]["status"] == 302, backends
    assert backends["slow"]["error"] == "timeout", backends
    assert 90 <= backends["slow"]["ms"] < 1000, backends
    for name in names[3:]:
        if name != "nocontent":
            assert "error" in backends[name] and name not in dict(pairs), (name, backends)


def test_report_complete_true(fo):
    r = fo.get("/api/report_ok")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    assert r.keys() == ["a", "_fanout"], r
    rep = r.json()["_fanout"]
    assert rep["complete"] is True, rep
    assert list(rep["backends"]) == ["a"], rep
    assert rep["backends"]["a"]["status"] == 200 and "error" not in rep["backends"]["a"], rep
