"""Response shaping: target, allow/deny, rename, ops, group, collection, encoding, fallback,
pass_status; exact numbers and key order through every stage; order independence; --check."""

import json
import random
import urllib.parse

import pytest

from blackbox.backend import closed_port
from blackbox.fanout import backend as be, endpoint as ep, run_cli

_REFUSED_SOCK, REFUSED_PORT = closed_port()

BIG = b'{"data":{"n":12345678901234567890,"x":1.50,"s":"a\\u00e9\\"q\\n"},"other":1}'
# lura's formatter test sample (proxy/formatter_test.go), in wire order.
LURA = {"supu": 42, "tupu": False, "foo": "bar", "a": {"b": True, "c": 42, "d": "tupu"}}
COLL = [{"id": 1, "name": "a", "x": 1}, {"id": 2, "name": "b", "x": 2}]


def q(v):
    text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
    return urllib.parse.quote(text, safe="")


def fanout_config(b):
    r = b.route
    u = b.url
    return {
        "timeout_ms": 2000,
        "endpoints": [
            ep("/t/big", [be("t", u(r(BIG)), target="data")]),
            ep("/t/null", [be("t", u(r({"data": None})), target="data")]),
            ep("/t/index", [be("t", u(r({"items": [10, {"deep": 7}, 30]})), target="items.1.deep")]),
            ep("/t/miss", [be("t", u(r({"data": 5})), target="data.x"),
                           be("ok", u(r({"fine": 1})))], report=True),
            ep("/t/miss_key", [be("t", u(r({"other": {}})), target="data"),
                               be("ok", u(r({"fine": 1})))]),
            ep("/t/array_by_key", [be("t", u(r({"items": [1, 2]})), target="items.x"),
                                   be("ok", u(r({"fine": 1})))], report=True),
            ep("/t/required", [be("t", u(r({"data": 5})), target="nope", required=True),
                               be("ok", u(r({"fine": 1})))]),
            # allow: the union of the listed paths, whatever their order
            ep("/a/fwd", [be("v", u(r({"a": {"b": 1, "c": 2}, "z": 0})), allow=["a", "a.b"])]),
            ep("/a/rev", [be("v", u(r({"a": {"b": 1, "c": 2}, "z": 0})), allow=["a.b", "a"])]),
            ep("/a/empty", [be("v", u(r({"a": {"b": 1, "c": 2}, "d": {"e": 1}, "f": 3})),
                               allow=["d.x", "a.b"])]),
            ep("/a/array", [be("v", u(r({"items": [{"id": 1, "x": 2}, {"y": 3}, 5], "n": 1})),
                               allow=["items.*.id"])]),
            ep("/a/noarray", [be("v", u(r({"items": [{"id": 1}], "n": 1})),
                                 allow=["items.id", "n"])]),
            ep("/a/lura", [be("v", u(r(LURA)), allow=["supu", "a.b", "a.c", "foo.unknown"])]),
            ep("/a/star_obj", [be("v", u(r({"m": {"k1": {"v": 1, "w": 2}, "k2": {"w": 3}}})),
                                  allow=["m.*.v"])]),
            # deny: every match found first, so list order does not matter
            ep("/d/fwd", [be("v", u(r({"a": 1, "b": {"c": 1, "d": 2}, "arr": [1, 2, 3]})),
                             deny=["b.c", "arr.0", "arr.1", "nope.x"])]),
            ep("/d/rev", [be("v", u(r({"a": 1, "b": {"c": 1, "d": 2}, "arr": [1, 2, 3]})),
                             deny=["nope.x", "arr.1", "arr.0", "b.c"])]),
            ep("/d/emptied", [be("v", u(r({"b": {"c": 1, "d": 2}})), deny=["b.c", "b.d"])]),
            ep("/d/lura", [be("v", u(r(LURA)), deny=["supu", "a.b", "a.c", "foo.unknown"])]),
            # rename: config order, in place
            ep("/r/chain", [be("v", u(r({"a": 1, "b": 2})), rename={"a": "b", "b": "c"})]),
            ep("/r/place", [be("v", u(r({"x": 0, "a": 1, "y": 2})), rename={"a": "z"})]),
            ep("/r/star", [be("v", u(r({"items": [{"old": 1}, {"k": 0, "old": 2}, {"k": 3}]})),
                              rename={"items.*.old": "new"})]),
            ep("/r/lura", [be("v", u(r(LURA)), rename={"supu": "SUPUUUUU", "tupu": "TUPUUUUU",
                                                       "a.b": "BOOOOO"})]),
            ep("/r/big", [be("v", u(r(BIG)), rename={"data.n": "num"})]),
            # ops
            ep("/o/move_bound", [be("v", u(r({"users": [{"id": 1, "name": "a"},
                                                        {"id": 2, "name": "b"}]})),
                                    ops=[{"op": "move", "from": "users.*.name",
                                          "to": "users.*.profile.name"}])]),
            ep("/o/move_two", [be("v", u(r({"g": {"k1": {"v": 1}, "k2": {"v": 2}}})),
                                  ops=[{"op": "move", "from": "g.*.v", "to": "flat.*"}])]),
            ep("/o/move_two_stars", [be("v", u(r({"a": {"x": {"p": 1, "q": 2}, "y": {"p": 3}}})),
                                        ops=[{"op": "move", "from": "a.*.*",
                                              "to": "b.*.in.*"}])]),
            ep("/o/del", [be("v", u(r({"items": [{"id": 1, "s": "x"}, {"id": 2, "s": "y"}],
                                       "keep": True})),
                             ops=[{"op": "del", "path": "items.*.s"}])]),
            ep("/o/append", [be("v", u(r({"a": [1, 2], "b": [3, {"n": 12345678901234567890}]})),
                                ops=[{"op": "append", "from": "b", "to": "a"}])], report=True),
            ep("/o/append_bad", [be("v", u(r({"a": [1], "b": {"x": 1}})),
                                    ops=[{"op": "append", "from": "b", "to": "a"}])],
               report=True),
            ep("/o/overwrite", [be("v", u(r({"a": 1, "b": 2, "c": 3})),
                                   ops=[{"op": "move", "from": "a", "to": "c"}])]),
            ep("/o/into_self", [be("v", u(r({"a": {"b": 1}})),
                                   ops=[{"op": "move", "from": "a", "to": "a.b.c"}])],
               report=True),
            ep("/o/endpoint", [be("u", u(r({"name": "ann", "id": 12345678901234567890}))),
                               be("o", u(r([1, 2])))],
               ops=[{"op": "move", "from": "u.name", "to": "name"},
                    {"op": "del", "path": "u"}], report=True),
            # lura's flatmap-style sample: moves, dels and appends over a collection
            ep("/o/lura", [be("v", u(r({"supu": 42, "tupu": False, "foo": "bar",
                                        "a": {"b": True, "c": 42, "d": "tupu"},
                                        "collection": [{"b": True, "c": 1, "d": "x"},
                                                       {"b": False, "c": 2, "d": "y"}],
                                        "extra": [{"b": None, "c": 3, "d": "z"}]})),
                              ops=[{"op": "move", "from": "supu", "to": "SUPUUUUU"},
                                   {"op": "del", "path": "a.b"},
                                   {"op": "move", "from": "collection.*.c",
                                    "to": "collection.*.C"},
                                   {"op": "del", "path": "collection.*.d"},
                                   {"op": "append", "from": "extra", "to": "collection"},
                                   {"op": "move", "from": "a.d", "to": "a.x.y"}])]),
            # placement
            ep("/g/group", [be("v", u(r(LURA)), target="a", allow=["d"], group="group",
                               rename={"d": "D"})]),
            ep("/g/merged", [be("p", u(r({"a": 1, "b": 1}, delay_ms=60)), group="g",
                                merge=True),
                             be("q", u(r({"b": 2, "c": 2})), group="g", merge=True),
                             be("g2", u(r({"z": 9})))]),
            ep("/g/collection", [be("v", u(r(COLL)), collection="items",
                                    allow=["items.*.id", "items.*.name"],
                                    rename={"items.*.name": "label"})]),
            ep("/g/collection_obj", [be("v", u(r({"x": 1})), collection="items")]),
            # encodings
            ep("/e/text", [be("v", u(r(b'He said "hi"\nthen\tleft \xc3\xa9', content_type="text/plain")),
                              encoding="text")]),
            ep("/e/text_bad", [be("v", u(r(b'bad \xff byte', content_type="text/plain")),
                                  encoding="text"), be("ok", u(r({"fine": 1})))], report=True),
            ep("/e/raw", [be("v", u(r(b'<html>not json</html>\x00\xff',
                                      content_type="text/html; charset=latin1")),
                             encoding="raw")]),
            ep("/e/raw_fail", [be("v", u("/status/500"), encoding="raw")]),
            ep("/e/json_empty", [be("v", u(r(b"", status=200))), be("ok", u(r({"fine": 1})))],
               report=True),
            # fallback and pass_status
            ep("/f/fallback", [be("v", u("/status/500"), fallback={"n": 12345678901234567890,
                                                                   "list": []}),
                               be("ok", u(r({"fine": 1})))], report=True),
            ep("/f/fallback_shape", [be("v", u(r({"x": 1})), target="nope",
                                        fallback=None),
                                     be("ok", u(r({"fine": 1})))], report=True),
            ep("/f/all_fell_back", [be("v", u("/status/500"), fallback=1)]),
            ep("/f/merge_fallback", [be("v", "http://127.0.0.1:%d/" % REFUSED_PORT,
                                        fallback={"flag": False}, merge=True),
                                     be("ok", u(r({"fine": 1})))]),
            ep("/p/404", [be("user", u("/status/404"), required=True, pass_status=[404, 410]),
                          be("slow", u("/hold/ps404"))]),
            ep("/p/500", [be("user", u("/status/500"), required=True, pass_status=[404]),
                          be("ok", u(r({"fine": 1})))]),
            # order independence: delays from the path, so each request picks the arrival order
            ep("/shuf/{d1}/{d2}/{d3}", [
                be("one", u("/delay/{d1}?body=" + q(
                    {"data": {"k": 1, "n": 12345678901234567890, "drop": 0, "sub": {"a": 1}}})),
                   target="data", allow=["k", "n", "sub.a"], rename={"k": "key"}, merge=True),
                be("two", u("/delay/{d2}?body=" + q('{"data":{"key":2,"m":1.50}}')),
                   target="data", deny=["nope"], merge=True),
                be("three", u("/delay/{d3}?body=" + q([{"i": 1}, {"i": 2}])),
                   collection="list", rename={"list.*.i": "j"}),
            ], report=False),
            ep("/shuf2/{d1}/{d2}/{d3}/{d4}", [
                be("p", u("/delay/{d1}?body=" + q('{"a":1,"b":{"x":[1,2]}}')), group="g",
                   merge=True, ops=[{"op": "move", "from": "b.x", "to": "list"}]),
                be("q", u("/delay/{d2}?body=" + q('{"a":2,"more":[3]}')), group="g",
                   merge=True),
                be("f", u("/status/500?d={d3}"), fallback=12345678901234567890),
                be("r", u("/delay/{d4}?body=" + q('{"list":[9],"keep":1.0}')),
                   deny=["keep"]),
            ], ops=[{"op": "append", "from": "g.list", "to": "r.list"}]),
        ],
    }


def test_target_keeps_exact_bytes(fo):
    r = fo.get("/t/big")
    assert r.status == 200, r
    assert r.body == b'{"t":{"n":12345678901234567890,"x":1.50,"s":"a\\u00e9\\"q\\n"}}', r
    assert r.headers["X-Fanout-Complete"] == "true"


def test_target_null_is_a_success(fo):
    r = fo.get("/t/null")
    assert (r.status, r.body, r.headers["X-Fanout-Complete"]) == (200, b'{"t":null}', "true"), r


def test_target_through_an_index(fo):
    r = fo.get("/t/index")
    assert r.body == b'{"t":7}', r


@pytest.mark.parametrize("path", ["/t/miss", "/t/miss_key", "/t/array_by_key"])
def test_target_miss_fails_shape_never_empty_object(fo, path):
    r = fo.get(path)
    assert r.status == 200, r
    assert r.headers["X-Fanout-Complete"] == "false", r
    doc = r.json()
    assert "t" not in doc and doc["ok"] == {"fine": 1}, r
    if "_fanout" in doc:
        rep = doc["_fanout"]["backends"]["t"]
        assert rep["error"] == "shape" and rep["stage"] == "target", r


def test_target_miss_on_required_is_502(fo):
    r = fo.get("/t/required")
    assert r.status == 502, r
    assert r.json()["error"]["backend"] == "t", r
    assert "shape" in r.json()["error"]["message"], r


def test_allow_is_order_independent(fo):
    a, b = fo.get("/a/fwd"), fo.get("/a/rev")
    assert a.body == b.body == b'{"v":{"a":{"b":1,"c":2}}}', (a, b)


def test_allow_removes_emptied_objects_and_keeps_order(fo):
    r = fo.get("/a/empty")
    assert r.body == b'{"v":{"a":{"b":1}}}', r


def test_allow_keeps_array_positions(fo):
    r = fo.get("/a/array")
    assert r.body == b'{"v":{"items":[{"id":1},{},{}]}}', r


def test_allow_does_not_descend_into_arrays_without_star(fo):
    r = fo.get("/a/noarray")
    assert r.body == b'{"v":{"n":1}}', r


def test_allow_lura_whitelist(fo):
    r = fo.get("/a/lura")
    assert r.body == b'{"v":{"supu":42,"a":{"b":true,"c":42}}}', r


def test_allow_star_over_object_keys(fo):
    r = fo.get("/a/star_obj")
    assert r.body == b'{"v":{"m":{"k1":{"v":1}}}}', r


def test_deny_is_order_independent_and_keeps_emptied_objects(fo):
    a, b = fo.get("/d/fwd"), fo.get("/d/rev")
    assert a.body == b.body == b'{"v":{"a":1,"b":{"d":2},"arr":[3]}}', (a, b)
    r = fo.get("/d/emptied")
    assert r.body == b'{"v":{"b":{}}}', r


def test_deny_lura_blacklist(fo):
    r = fo.get("/d/lura")
    assert r.body == b'{"v":{"tupu":false,"foo":"bar","a":{"d":"tupu"}}}', r


def test_rename_chain_in_config_order(fo):
    for _ in range(20):
        r = fo.get("/r/chain")
        assert r.body == b'{"v":{"c":1}}', r


def test_rename_keeps_position_and_star(fo):
    assert fo.get("/r/place").body == b'{"v":{"x":0,"z":1,"y":2}}'
    r = fo.get("/r/star")
    assert r.body == b'{"v":{"items":[{"new":1},{"k":0,"new":2},{"k":3}]}}', r


def test_rename_lura_mapping(fo):
    r = fo.get("/r/lura")
    assert r.body == (b'{"v":{"SUPUUUUU":42,"TUPUUUUU":false,"foo":"bar",'
                      b'"a":{"BOOOOO":true,"c":42,"d":"tupu"}}}'), r


def test_rename_keeps_exact_numbers_and_escapes(fo):
    r = fo.get("/r/big")
    assert r.body == (b'{"v":{"data":{"num":12345678901234567890,"x":1.50,'
                      b'"s":"a\\u00e9\\"q\\n"},"other":1}}'), r


def test_ops_move_binds_stars_by_position(fo):
    r = fo.get("/o/move_bound")
    assert r.body == (b'{"v":{"users":[{"id":1,"profile":{"name":"a"}},'
                      b'{"id":2,"profile":{"name":"b"}}]}}'), r
    r = fo.get("/o/move_two")
    assert r.body == b'{"v":{"g":{"k1":{},"k2":{}},"flat":{"k1":1,"k2":2}}}', r
    r = fo.get("/o/move_two_stars")
    assert r.body == (b'{"v":{"a":{"x":{},"y":{}},'
                      b'"b":{"x":{"in":{"p":1,"q":2}},"y":{"in":{"p":3}}}}}'), r


def test_ops_del_and_append(fo):
    r = fo.get("/o/del")
    assert r.body == b'{"v":{"items":[{"id":1},{"id":2}],"keep":true}}', r
    r = fo.get("/o/append")
    doc = r.json()
    assert r.body.startswith(b'{"v":{"a":[1,2,3,{"n":12345678901234567890}]},'), r
    assert "ops" not in doc["_fanout"]["backends"]["v"], r


def test_ops_append_of_non_arrays_is_noted(fo):
    r = fo.get("/o/append_bad")
    assert r.body.startswith(b'{"v":{"a":[1],"b":{"x":1}},'), r
    assert r.json()["_fanout"]["backends"]["v"]["ops"] == "skipped", r
    assert r.headers["X-Fanout-Complete"] == "true", r


def test_ops_move_overwrites_and_appends(fo):
    assert fo.get("/o/overwrite").body == b'{"v":{"b":2,"c":1}}'


def test_ops_move_into_itself_is_skipped(fo):
    r = fo.get("/o/into_self")
    assert r.body.startswith(b'{"v":{"a":{"b":1}},'), r
    assert r.json()["_fanout"]["backends"]["v"]["ops"] == "skipped", r


def test_endpoint_ops_run_on_the_merged_document_before_the_report(fo):
    r = fo.get("/o/endpoint")
    assert r.status == 200, r
    assert r.body.startswith(b'{"o":[1,2],"name":"ann","_fanout":'), r
    assert list(r.json()["_fanout"]["backends"]) == ["u", "o"], r


def test_ops_lura_flatmap(fo):
    r = fo.get("/o/lura")
    assert r.body == (b'{"v":{"tupu":false,"foo":"bar","a":{"c":42,"x":{"y":"tupu"}},'
                      b'"collection":[{"b":true,"C":1},{"b":false,"C":2},'
                      b'{"b":null,"c":3,"d":"z"}],"SUPUUUUU":42}}'), r


def test_group_target_allow_rename_lura_altogether(fo):
    r = fo.get("/g/group")
    assert r.body == b'{"group":{"D":"tupu"}}', r


def test_group_merges_backends_in_config_order(fo):
    for _ in range(5):
        r = fo.get("/g/merged")
        assert r.body == b'{"g":{"a":1,"b":2,"c":2},"g2":{"z":9}}', r


def test_collection_wraps_top_level_arrays(fo):
    r = fo.get("/g/collection")
    assert r.body == b'{"v":{"items":[{"id":1,"label":"a"},{"id":2,"label":"b"}]}}', r
    assert fo.get("/g/collection_obj").body == b'{"v":{"x":1}}'


def test_encoding_text_quotes_and_newlines(fo):
    r = fo.get("/e/text")
    assert r.status == 200, r
    assert r.json() == {"v": 'He said "hi"\nthen\tleft \u00e9'}, r


def test_encoding_text_refuses_invalid_utf8(fo):
    r = fo.get("/e/text_bad")
    assert r.headers["X-Fanout-Complete"] == "false", r
    assert r.json()["_fanout"]["backends"]["v"]["error"] == "invalid_json", r
    assert b"\xff" not in r.body


def test_encoding_raw_passes_bytes_and_type(fo):
    r = fo.get("/e/raw")
    assert r.status == 200, r
    assert r.body == b'<html>not json</html>\x00\xff', r
    assert r.headers["Content-Type"] == "text/html; charset=latin1", r
    r = fo.get("/e/raw_fail")
    assert r.status == 502 and r.json()["error"]["backend"] == "v", r


def test_encoding_json_empty_body_is_invalid_json(fo):
    r = fo.get("/e/json_empty")
    assert r.json()["_fanout"]["backends"]["v"]["error"] == "invalid_json", r


def test_fallback_on_500_keeps_digits_and_error(fo):
    r = fo.get("/f/fallback")
    assert r.status == 200, r
    assert r.body.startswith(b'{"v":{"n":12345678901234567890,"list":[]},"ok":{"fine":1},'), r
    assert r.headers["X-Fanout-Complete"] == "false", r
    rep = r.json()["_fanout"]["backends"]["v"]
    assert rep["error"] == "status" and rep["status"] == 500 and rep["fallback"] is True, rep


def test_fallback_covers_shape_failures(fo):
    r = fo.get("/f/fallback_shape")
    assert r.body.startswith(b'{"v":null,"ok":{"fine":1},'), r
    rep = r.json()["_fanout"]["backends"]["v"]
    assert rep == {"error": "shape", "stage": "target", "fallback": True, "status": 200,
                   "ms": rep["ms"], "start_ms": rep["start_ms"]}, rep


def test_fallback_counts_as_failure_for_the_status(fo):
    r = fo.get("/f/all_fell_back")
    assert r.status == 502, r


def test_fallback_of_a_merged_backend_is_lifted(fo):
    r = fo.get("/f/merge_fallback")
    assert r.body == b'{"flag":false,"ok":{"fine":1}}', r


def test_pass_status_404_answers_404_and_aborts_the_rest(fo, backend):
    r = fo.get("/p/404")
    assert r.status == 404, r
    err = r.json()["error"]
    assert (err["code"], err["status"], err["backend"]) == ("backend_status", 404, "user"), r
    assert err["message"], r
    assert r.elapsed < 1.5, r  # the held call was aborted, not waited for
    backend.release("ps404")


def test_pass_status_other_codes_are_502(fo):
    r = fo.get("/p/500")
    assert r.status == 502 and r.json()["error"]["code"] == "backend_failed", r


def test_output_is_the_same_whatever_the_arrival_order(fo):
    rnd = random.Random(7)
    seen = set()
    for _ in range(200):
        d = [rnd.randrange(0, 12) for _ in range(3)]
        r = fo.get("/shuf/%d/%d/%d" % tuple(d))
        assert r.status == 200, r
        seen.add(r.body)
    assert seen == {b'{"key":2,"n":12345678901234567890,"sub":{"a":1},"m":1.50,'
                    b'"three":{"list":[{"j":1},{"j":2}]}}'}, seen


def test_groups_ops_fallbacks_are_the_same_whatever_the_arrival_order(fo):
    rnd = random.Random(11)
    seen = set()
    for _ in range(200):
        d = [rnd.randrange(0, 12) for _ in range(4)]
        r = fo.get("/shuf2/%d/%d/%d/%d" % tuple(d))
        assert r.status == 200, r
        seen.add(r.body)
    assert seen == {b'{"g":{"a":2,"b":{},"more":[3]},"f":12345678901234567890,'
                    b'"r":{"list":[9,1,2]}}'}, seen


# ---- --check ----

def check(fanout_bin, tmp_path, backend_extra=None, endpoint_extra=None, nbackends=1):
    bes = [{"name": "b%d" % i, "url": "http://127.0.0.1:9/x"} for i in range(nbackends)]
    bes[0].update(backend_extra or {})
    e = {"path": "/x", "backends": bes}
    e.update(endpoint_extra or {})
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"endpoints": [e]}))
    return run_cli(fanout_bin, ["--check", "-c", str(p)])


@pytest.mark.parametrize("extra,where,what", [
    ({"target": "a..b"}, "endpoints[0].backends[0].target", "empty segment"),
    ({"target": "a.*"}, "endpoints[0].backends[0].target", '"*"'),
    ({"target": ".".join(["k"] * 33)}, "endpoints[0].backends[0].target", "more than 32"),
    ({"allow": ["a", "b*"]}, "endpoints[0].backends[0].allow[1]", '"*"'),
    ({"allow": ["a"], "deny": ["b"]}, "endpoints[0].backends[0]", "both"),
    ({"deny": []}, "endpoints[0].backends[0].deny", "1 to 64"),
    ({"rename": {"a": "b.c"}}, "endpoints[0].backends[0].rename.a", "'.'"),
    ({"rename": {"a": "b*"}}, "endpoints[0].backends[0].rename.a", "'*'"),
    ({"rename": {"a.*": "b"}}, "endpoints[0].backends[0].rename.a.*", "end with a key"),
    ({"ops": [{"op": "move", "from": "a.*", "to": "b"}]},
     "endpoints[0].backends[0].ops[0].to", "as many"),
    ({"ops": [{"op": "copy", "from": "a", "to": "b"}]},
     "endpoints[0].backends[0].ops[0].op", "del"),
    ({"ops": [{"op": "del", "from": "a"}]}, "endpoints[0].backends[0].ops[0]", "unknown key"),
    ({"encoding": "xml"}, "endpoints[0].backends[0].encoding", '"json"'),
    ({"encoding": "text", "target": "a"}, "endpoints[0].backends[0]", "cannot be shaped"),
    ({"fallback": 1, "required": True}, "endpoints[0].backends[0]", "required"),
    ({"pass_status": [404]}, "endpoints[0].backends[0]", "required"),
    ({"pass_status": [500], "required": True}, "endpoints[0].backends[0].pass_status[0]",
     "400 to 499"),
    ({"group": ""}, "endpoints[0].backends[0].group", "non-empty"),
    ({"collection": 3}, "endpoints[0].backends[0].collection", "non-empty"),
])
def test_check_errors_name_the_config_path(fanout_bin, tmp_path, extra, where, what):
    p = check(fanout_bin, tmp_path, extra)
    assert p.returncode == 1, p
    lines = [l for l in p.stderr.splitlines() if where + ":" in l]
    assert any(what in l for l in lines), (where, what, p.stderr)


def test_check_raw_needs_one_backend(fanout_bin, tmp_path):
    p = check(fanout_bin, tmp_path, {"encoding": "raw"}, nbackends=2)
    assert p.returncode == 1 and "endpoints[0].backends[0]: encoding \"raw\"" in p.stderr, p
    p = check(fanout_bin, tmp_path, {"encoding": "raw"}, {"report": True})
    assert p.returncode == 1, p
    assert check(fanout_bin, tmp_path, {"encoding": "raw"}).returncode == 0


def test_check_shared_group_needs_merge(fanout_bin, tmp_path):
    p = tmp_path / "g.json"
    bes = [{"name": "a", "url": "http://127.0.0.1:9/", "group": "g"},
           {"name": "b", "url": "http://127.0.0.1:9/", "group": "g"}]
    p.write_text(json.dumps({"endpoints": [{"path": "/x", "backends": bes}]}))
    r = run_cli(fanout_bin, ["--check", "-c", str(p)])
    assert r.returncode == 1 and "endpoints[0].backends[1]: group \"g\"" in r.stderr, r
    for b in bes:
        b["merge"] = True
    p.write_text(json.dumps({"endpoints": [{"path": "/x", "backends": bes}]}))
    assert run_cli(fanout_bin, ["--check", "-c", str(p)]).returncode == 0


def test_check_endpoint_ops(fanout_bin, tmp_path):
    p = check(fanout_bin, tmp_path, None, {"ops": [{"op": "del"}]})
    assert p.returncode == 1 and "endpoints[0].ops[0]: needs \"path\"" in p.stderr, p


def test_access_log_carries_the_class_and_stage(fo):
    r = fo.get("/t/miss", headers={"X-Request-Id": "shape-log-1"})
    assert r.status == 200, r
    ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("id") == "shape-log-1")
    assert ev["backends"]["t"]["outcome"] == "shape", ev
    assert ev["backends"]["t"]["stage"] == "target", ev
    assert "stage" not in ev["backends"]["ok"], ev
