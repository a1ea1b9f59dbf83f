"""Request shaping, the request side: placeholders in backend URLs and header values.

{param} (path), {query.name}, {header.Name}, each with an optional default; a value is
percent-encoded in a URL and refused (the call fails "shape", nothing is sent) in a header
when it holds CR, LF or NUL; a missing value without a default is 400 missing_parameter
before any backend call. Backends are the session's loopback echo (backend.py): each test
finds its own calls by a tag and reads the request line and headers they carried.
"""

import json
import urllib.parse

from blackbox.backend import tag
from blackbox.fanout import backend as be, endpoint as ep, error_code, run_cli, write_config


def fanout_config(backend):
    echo = backend.url("/echo")
    return {
        "endpoints": [
            ep("/ph/{id}", [
                be("a", echo + "/{id}/{query.seg|none}?tag={query.tag}&page={query.page|1}"
                   "&q={query.q|}&h={header.X-User|anon}",
                   headers={"X-User": "{header.x-user|anon}", "X-Both": "{id}-{query.page|1}",
                            "X-Json": '{{"id":"{id}"}}', "X-Static": "plain"}),
            ]),
            ep("/need", [be("a", echo + "?tag={query.tag}&p={query.page}")]),
            ep("/needh", [be("a", echo + "?tag={query.tag}", headers={"X-T": "{header.X-Token}"}),
                          be("b", echo + "?tag={query.tag}&b=1")]),
            ep("/crlf", [
                be("h", echo + "?tag={query.tag}&who=h", headers={"X-V": "{query.v}"}),
                be("u", echo + "?tag={query.tag}&who=u&v={query.v}"),
            ], report=True),
            ep("/crlf-required", [
                be("h", echo + "?tag={query.tag}&who=h", headers={"X-V": "{query.v}"},
                   required=True),
                be("u", echo + "?tag={query.tag}&who=u"),
            ]),
            ep("/dot", [be("d", echo + "/{query.seg}?tag={query.tag}"),
                        be("e", echo + "?tag={query.tag}&seg={query.seg}")], report=True),
        ]
    }


def q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def header(req, name):
    """Every value of header 'name' the backend received, in order."""
    return [v for k, v in req.headers if k.lower() == name.lower()]


# ---- placeholders ----------------------------------------------------------------------------

def test_placeholders_in_url_and_headers(fo, backend):
    t = tag()
    hostile = "a&b=c#d%e/f g+\u00e9"
    r = fo.get("/ph/42?tag=%s&page=2&q=%s&seg=%s" % (t, q(hostile), q("x/y")))
    assert r.status == 200, r
    req = backend.wait_request(t)
    # The path value stays one segment; the query value stays one parameter.
    assert req.path == "/echo/42/x%2Fy", req.line
    assert req.params() == [("tag", t), ("page", "2"), ("q", hostile), ("h", "anon")], req.line
    assert "&q=a%26b%3Dc%23d%25e%2Ff%20g%2B%C3%A9&" in req.target, req.line
    assert header(req, "X-User") == ["anon"]
    assert header(req, "X-Both") == ["42-2"]
    assert header(req, "X-Json") == ['{"id":"42"}']
    assert header(req, "X-Static") == ["plain"]


def test_defaults_only_when_absent(fo, backend):
    t = tag()
    r = fo.get("/ph/7?tag=%s" % t)
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.path == "/echo/7/none", req.line
    assert req.params() == [("tag", t), ("page", "1"), ("q", ""), ("h", "anon")], req.line
    # Present but empty is a value, not a miss; a bare "?page" too.
    t = tag()
    assert fo.get("/ph/7?tag=%s&page=&seg=s" % t).status == 200
    assert backend.wait_request(t).param("page") == ""
    t = tag()
    assert fo.get("/ph/7?tag=%s&page" % t).status == 200
    assert backend.wait_request(t).param("page") == ""


def test_first_value_when_repeated(fo, backend):
    """Query names are case-sensitive, header names are not; the first value wins."""
    t = tag()
    r = fo.get("/ph/1?tag=%s&Page=9&page=3&page=4" % t,
               headers={"X-USER": "bob"})
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.param("page") == "3" and req.param("h") == "bob", req.line
    assert header(req, "X-User") == ["bob"]
    assert header(req, "X-Both") == ["1-3"]
    # Two header fields of one name: the first.
    t = tag()
    from blackbox.fanout import raw
    out = raw(fo.port, ("GET /ph/1?tag=%s HTTP/1.1\r\nHost: x\r\nX-User: first\r\n"
                        "x-user: second\r\nConnection: close\r\n\r\n" % t).encode())
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    req = backend.wait_request(t)
    assert header(req, "X-User") == ["first"] and req.param("h") == "first", req.headers


def test_missing_query_value_is_400_before_any_call(fo, backend):
    t = tag()
    r = fo.get("/need?tag=%s" % t)
    assert r.status == 400 and error_code(r) == "missing_parameter", r
    assert "{query.page}" in r.json()["error"]["message"], r
    backend.assert_no_request(t)


def test_missing_header_value_is_400_and_no_backend_is_called(fo, backend):
    t = tag()
    r = fo.get("/needh?tag=%s" % t)
    assert r.status == 400 and error_code(r) == "missing_parameter", r
    assert "{header.X-Token}" in r.json()["error"]["message"], r
    backend.assert_no_request(t)
    t = tag()
    r = fo.get("/needh?tag=%s" % t, headers={"x-token": "tok"})
    assert r.status == 200, r
    reqs = backend.wait_for(lambda: len(backend.tagged(t)) == 2 and backend.tagged(t), 5)
    a = [x for x in reqs if x.param("b") is None][0]
    assert header(a, "X-T") == ["tok"], a.headers


def test_crlf_in_a_header_value_fails_that_call_shape(fo, backend):
    """%0d%0a in the query becomes CR LF once decoded: the header call is never sent and
    fails "shape"; the URL call gets the value encoded and succeeds."""
    for evil in ("a%0d%0aX-Evil:%201", "a%0Ab", "a%0Db", "a%00b"):
        t = tag()
        r = fo.get("/crlf?tag=%s&v=%s" % (t, evil))
        assert r.status == 200, r
        assert r.headers.get("X-Fanout-Complete") == "false", r
        doc = r.json()
        assert "h" not in doc and doc["u"]["path"] == "/echo", doc
        assert doc["_fanout"]["backends"]["h"]["error"] == "shape", doc
        reqs = backend.wait_for(lambda: backend.tagged(t), 5)
        assert [x.param("who") for x in backend.tagged(t)] == ["u"], [x.line for x in reqs]
        u = backend.tagged(t)[0]
        assert "X-Evil" not in json.dumps(u.headers), u.headers
        assert u.param("v") == urllib.parse.unquote(evil), u.line


def test_crlf_on_a_required_call_is_502(fo, backend):
    t = tag()
    r = fo.get("/crlf-required?tag=%s&v=a%%0d%%0ab" % t)
    assert r.status == 502 and error_code(r) == "backend_failed", r
    assert "shape" in r.json()["error"]["message"], r
    assert all(x.param("who") != "h" for x in backend.tagged(t))


def test_dot_segments_from_a_value_are_refused_in_the_path(fo, backend):
    for seg in ("..", ".", "%2e%2E"):
        t = tag()
        r = fo.get("/dot?tag=%s&seg=%s" % (t, seg))
        assert r.status == 200, r
        doc = r.json()
        assert doc["_fanout"]["backends"]["d"]["error"] == "shape", doc
        assert doc["e"]["query"].endswith("seg=" + ("." if seg == "." else "..")), doc
        assert [x.param("seg") for x in backend.tagged(t)] == [urllib.parse.unquote(seg)]
    t = tag()
    r = fo.get("/dot?tag=%s&seg=..a" % t)
    assert r.status == 200 and r.json()["d"]["path"] == "/echo/..a", r


# ---- --check -----------------------------------------------------------------------------------

def check(fanout_bin, tmp_path, endpoint):
    path = str(tmp_path / "c.json")
    write_config(path, {"endpoints": [endpoint]})
    p = run_cli(fanout_bin, ["--check", "-c", path])
    return p, path


def assert_check_error(fanout_bin, tmp_path, endpoint, want):
    p, path = check(fanout_bin, tmp_path, endpoint)
    assert p.returncode == 1, p
    lines = [line.split(path + ": ", 1)[-1] for line in p.stderr.splitlines()]
    assert any(want in line for line in lines), (want, p.stderr)


def test_check_placeholder_errors(fanout_bin, tmp_path):
    u = "http://127.0.0.1:9/x"
    cases = [
        (be("a", u + "/{nope.x}"), "endpoints[0].backends[0].url: unknown placeholder "
         "namespace \"nope\" in {nope.x} (known: query, header, auth, jwt)"),
        (be("a", u + "/{query.}"), "endpoints[0].backends[0].url: empty name in {query.}"),
        (be("a", u + "/{query.a&b}"), "endpoints[0].backends[0].url: query name \"a&b\""),
        (be("a", u + "/{header.a@b}"), "endpoints[0].backends[0].url: header name \"a@b\" "
         "is not a token"),
        (be("a", u + "/{query.a"), "endpoints[0].backends[0].url: '{' without a closing '}'"),
        (be("a", u + "/a}"), "endpoints[0].backends[0].url: '}' without '{'"),
        (be("a", "http://{query.host}/x"), "endpoints[0].backends[0].url: placeholders are "
         "not allowed in the scheme or host:port"),
        (be("a", "http://127.0.0.1:{header.Port}/x"), "endpoints[0].backends[0].url: "
         "placeholders are not allowed in the scheme or host:port"),
        (be("a", u + "/{id}"), "endpoints[0].backends[0].url: {id} is not a parameter of the "
         "endpoint path"),
        (be("a", u, headers={"X-A": "{header.X-B"}), "endpoints[0].backends[0].headers: value "
         "of \"X-A\": '{' without a closing '}'"),
        (be("a", u, headers={"X-A": "{cookie.b}"}), "endpoints[0].backends[0].headers: value of "
         "\"X-A\": unknown placeholder namespace \"cookie\""),
        (be("a", u, headers={"X-A": "}"}), "endpoints[0].backends[0].headers: value of \"X-A\": "
         "'}' without '{'"),
    ]
    for b, want in cases:
        assert_check_error(fanout_bin, tmp_path, ep("/x", [b]), want)
    many = "&".join("a%d={query.a%d}" % (i, i) for i in range(17))
    assert_check_error(fanout_bin, tmp_path, ep("/x", [be("a", u + "?" + many)]),
                       "more than 16 distinct placeholders in one endpoint")
    p, _ = check(fanout_bin, tmp_path, ep("/x/{id}", [
        be("a", u + "/{id}?p={query.page|1}&h={header.X-A|}",
           headers={"X-A": "{header.X-B|none} {{literal}}"})]))
    assert p.returncode == 0, p.stderr
