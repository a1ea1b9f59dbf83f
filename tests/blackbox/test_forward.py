"""Request shaping, the request side: placeholders, forward_query/forward_headers, forward_body.

Placeholders: {param} (path), {query.name}, {header.Name}, each with an optional default; a
value is percent-encoded in a URL and refused (the call fails "shape", nothing is sent) in a
header when it holds CR, LF or NUL; a missing value without a default is 400 missing_parameter
before any backend call. Forwarding: nothing by default, names or "*", a backend narrows its
endpoint; hop-by-hop fields, fields the client's Connection names, Host, Content-Length and
the client's X-Timeout-Ms never go; X-Request-Id goes once; Authorization only when named;
X-Forwarded-For/-Proto/-Host are fanout's. Backends are the session's loopback echo (backend.py): each test
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
            ep("/fw", [
                be("all", echo + "?fixed=1"),
                be("narrow", echo + "/n", forward_query=["tag", "a"], forward_headers=["X-A"]),
                be("all2", echo + "/2"),
            ], forward_query=["*"], forward_headers=["*"]),
            ep("/fwn", [
                be("x", echo + "/x"),
                be("y", echo + "/y?", forward_headers=[]),
                be("z", echo + "/z?own=1&", forward_query=["tag"], forward_headers=["x-a"]),
            ], forward_query=["tag", "a", "b"],
               forward_headers=["X-A", "authorization", "X-Forwarded-For", "X-Conn"]),
            ep("/fwb", [
                be("p", echo + "/p", method="POST"),
                be("u", echo + "/u", method="PUT"),
                be("g", echo + "/g"),
            ], method="POST", forward_body=True, forward_query=["tag"], report=True),
            ep("/nobody", [be("p", echo + "/p", method="POST")], method="POST",
               forward_query=["tag"]),
            ep("/api/search", [
                be("items", echo + "/search?limit=20"),
                be("ads", echo + "/ads", forward_headers=["Accept-Language"]),
            ], forward_query=["q", "page", "tag"],
               forward_headers=["Accept-Language", "Authorization"]),
            ep("/fwcrlf", [be("h", echo + "/h", headers={"X-V": "{header.X-In}"}),
                           be("f", echo + "/f")],
               forward_query=["tag"], forward_headers=["X-In"], report=True),
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


def test_shape_is_in_the_access_log(fo, backend):
    t, rid = tag(), "shape-" + tag()
    r = fo.get("/crlf?tag=%s&v=a%%0d%%0ab" % t, headers={"X-Request-Id": rid})
    assert r.status == 200, r
    ev = fo.wait_event(lambda e: e.get("event") == "access" and e.get("id") == rid, 5,
                       "the access line")
    assert ev["backends"]["h"]["outcome"] == "shape" and ev["backends"]["h"]["status"] == 0, ev
    assert ev["backends"]["u"]["outcome"] == "ok", ev


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


# ---- forwarding --------------------------------------------------------------------------------

def raw_get(fo, target: bytes, fields) -> bytes:
    """GET 'target' (bytes, sent as is) with the header lines 'fields' (name, value)."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % fo.port
    for k, v in fields:
        head += k.encode() + b": " + v.encode("latin-1") + b"\r\n"
    from blackbox.fanout import raw
    out = raw(fo.port, head + b"Connection: close\r\n\r\n")
    if out.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):  # For "Expect: 100-continue".
        out = out[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    return out


def calls(backend, t, n):
    """The n calls tagged t, by path."""
    reqs = backend.wait_for(lambda: len(backend.tagged(t)) >= n and backend.tagged(t), 5,
                            "%d calls tagged %s" % (n, t))
    out = {}
    for r in reqs:
        out[r.path] = r
    return out


def test_nothing_is_forwarded_by_default(fo, backend):
    t = tag()
    r = fo.get("/ph/1?tag=%s&extra=1" % t, headers={"X-A": "a", "X-Forwarded-For": "9.9.9.9"})
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.param("extra") is None, req.line
    for name in ("X-A", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert header(req, name) == [], (name, req.headers)


def test_forward_query_order_encoding_and_narrowing(fo, backend):
    t = tag()
    target = ("/fw?tag=%s&a=1&b=x%%26y%%23z&a=2&A=3&u=%%C3%%A9&raw=\u00e9&p=a+b&bad=%%zz%%4"
              "&s=/?:@!$'()*,;=&flag&empty=&sl=%%2F" % t).encode("utf-8")
    raw_get(fo, target, [])
    got = calls(backend, t, 3)
    # Each parameter as the client wrote it where valid, encoded where not, in order.
    assert got["/echo"].query == (
        "fixed=1&tag=%s&a=1&b=x%%26y%%23z&a=2&A=3&u=%%C3%%A9&raw=%%C3%%A9&p=a+b&bad=%%25zz%%254"
        "&s=/?:@!$'()*,;=&flag&empty=&sl=%%2F" % t), got["/echo"].line
    # The backend's list narrows: case-sensitive names, repeated values kept in order.
    assert got["/echo/n"].query == "tag=%s&a=1&a=2" % t, got["/echo/n"].line


def test_forward_query_joins_the_url_query(fo, backend):
    t = tag()
    assert fo.get("/fwn?tag=%s&a=1&c=no" % t).status == 200
    got = calls(backend, t, 3)
    assert got["/echo/x"].query == "tag=%s&a=1" % t, got["/echo/x"].line
    assert got["/echo/y"].query == "tag=%s&a=1" % t, got["/echo/y"].line  # after a bare '?'
    assert got["/echo/z"].query == "own=1&tag=%s" % t, got["/echo/z"].line  # after '&'


HOSTILE = [
    ("Connection", "close, X-Foo"),
    ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"),
    ("Trailer", "X-Bar"),
    ("Upgrade", "h2c"),
    ("Proxy-Authorization", "Basic eA=="),
    ("Proxy-Foo", "1"),
    ("X-Timeout-Ms", "99999"),
    ("X-Request-Id", "client-id.1"),
    ("Authorization", "Bearer secret"),
    ("X-Foo", "hop"),
    ("X-Bar", "2"),
    ("X-A", "a1"),
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-A", "a2"),
    ("X-Forwarded-For", "5.6.7.8"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "gopher"),
    ("Expect", "100-continue"),
    ("Cookie", "c=1"),
    ("Accept-Encoding", "gzip"),
]


def test_forward_headers_star_never_sends_what_it_must_not(fo, backend):
    t = tag()
    out = raw_get(fo, b"/fw?tag=" + t.encode(), HOSTILE)
    assert b"\r\nX-Request-Id: client-id.1\r\n" in out, out[:400]
    got = calls(backend, t, 3)
    # Two backends with the endpoint's list get the same fields.
    same = [(k, v) for k, v in got["/echo/2"].headers if k not in ("X-Timeout-Ms",)]
    assert same == [(k, v) for k, v in got["/echo"].headers if k not in ("X-Timeout-Ms",)]
    req = got["/echo"]
    names = [k.lower() for k, _ in req.headers]
    for never in ("connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                  "proxy-foo", "authorization", "x-foo", "expect", "accept-encoding"):
        assert never not in names, (never, req.headers)
    # Fanout's own, once each.
    assert len(header(req, "X-Timeout-Ms")) == 1 and int(header(req, "X-Timeout-Ms")[0]) <= 1000
    assert header(req, "X-Request-Id") == ["client-id.1"], req.headers
    assert header(req, "X-Forwarded-For") == ["1.2.3.4, 5.6.7.8, 127.0.0.1"], req.headers
    assert header(req, "X-Forwarded-Proto") == ["http"], req.headers
    assert header(req, "X-Forwarded-Host") == ["127.0.0.1:%d" % fo.port], req.headers
    assert header(req, "Host") == ["127.0.0.1:%d" % backend.port], req.headers
    # What is forwarded keeps the client's order, repeated fields too.
    fwd = [(k, v) for k, v in req.headers if k in ("X-Bar", "X-A", "Cookie")]
    assert fwd == [("X-Bar", "2"), ("X-A", "a1"), ("X-A", "a2"), ("Cookie", "c=1")], req.headers
    # "Connection: close" was not passed on: the backend kept the connection.
    assert backend.conn(req.conn_id).closed_at is None or \
        backend.conn(req.conn_id).closed_by != "backend"
    # The narrowing backend: X-A only; X-Forwarded-For is the address alone (not forwarded).
    n = got["/echo/n"]
    assert [(k, v) for k, v in n.headers if k in ("X-Bar", "X-A", "Cookie")] == [
        ("X-A", "a1"), ("X-A", "a2")], n.headers
    assert header(n, "X-Forwarded-For") == ["127.0.0.1"], n.headers
    assert header(n, "X-Request-Id") == ["client-id.1"], n.headers


def test_authorization_only_when_named_and_connection_names_win(fo, backend):
    t = tag()
    raw_get(fo, b"/fwn?tag=" + t.encode(), [("Authorization", "Bearer s"), ("X-A", "1"),
                                           ("X-Conn", "c"), ("Connection", "X-Conn"),
                                           ("X-Forwarded-For", "10.0.0.1")])
    got = calls(backend, t, 3)
    x = got["/echo/x"]
    assert header(x, "Authorization") == ["Bearer s"], x.headers
    assert header(x, "X-A") == ["1"], x.headers
    assert header(x, "X-Conn") == [], x.headers  # Listed, but the client's Connection names it.
    assert header(x, "X-Forwarded-For") == ["10.0.0.1, 127.0.0.1"], x.headers
    y = got["/echo/y"]  # forward_headers: [] -- nothing, and no X-Forwarded-*.
    for name in ("Authorization", "X-A", "X-Forwarded-For", "X-Forwarded-Proto",
                 "X-Forwarded-Host"):
        assert header(y, name) == [], (name, y.headers)
    z = got["/echo/z"]  # ["x-a"]: names compare without case; Authorization is not named.
    assert header(z, "X-A") == ["1"] and header(z, "Authorization") == [], z.headers


def test_the_readme_example(fo, backend):
    """README, Forwarding: the before/after example, as written there."""
    t = tag()
    raw_get(fo, b"/api/search?q=caf%C3%A9+au+lait&page=2&debug=1&tag=" + t.encode(),
            [("Accept-Language", "fr"), ("Authorization", "Bearer t0k3n"), ("Cookie", "session=1"),
             ("Connection", "keep-alive, Accept-Language")])
    got = calls(backend, t, 2)
    items, ads = got["/echo/search"], got["/echo/ads"]
    assert items.target == "/echo/search?limit=20&q=caf%C3%A9+au+lait&page=2&tag=" + t
    assert ads.target == "/echo/ads?q=caf%C3%A9+au+lait&page=2&tag=" + t
    assert header(items, "Authorization") == ["Bearer t0k3n"] and header(ads, "Authorization") == []
    for req in (items, ads):
        assert header(req, "Accept-Language") == [] and header(req, "Cookie") == [], req.headers
        assert header(req, "X-Forwarded-For") == ["127.0.0.1"], req.headers
        assert header(req, "X-Forwarded-Proto") == ["http"], req.headers
        assert header(req, "X-Forwarded-Host") == ["127.0.0.1:%d" % fo.port], req.headers


def test_x_request_id_is_fanouts_once_when_the_clients_is_invalid(fo, backend):
    t = tag()
    out = raw_get(fo, b"/fw?tag=" + t.encode(), [("X-Request-Id", "bad id!")])
    ours = [ln.split(b": ", 1)[1].decode() for ln in out.split(b"\r\n")
            if ln.lower().startswith(b"x-request-id: ")]
    assert len(ours) == 1 and ours[0] != "bad id!", out[:400]
    got = calls(backend, t, 3)
    for req in got.values():
        assert header(req, "X-Request-Id") == ours, req.headers


def test_forward_body_goes_to_methods_with_a_body(fo, backend):
    t = tag()
    body = b'{"k":"\xc3\xa9","n":12345678901234567890}'
    r = fo.request("POST", "/fwb?tag=%s" % t, body=body,
                   headers={"Content-Type": "application/vnd.x+json; charset=utf-8"})
    assert r.status == 200, r
    got = calls(backend, t, 3)
    for path in ("/echo/p", "/echo/u"):
        assert got[path].body == body, got[path]
        assert header(got[path], "Content-Type") == ["application/vnd.x+json; charset=utf-8"]
    g = got["/echo/g"]
    assert g.method == "GET" and g.body == b"" and header(g, "Content-Type") == [], g.headers
    # Without a Content-Type from the client, none is sent (not curl's form type).
    t = tag()
    assert fo.request("POST", "/fwb?tag=%s" % t, body=b"plain").status == 200
    got = calls(backend, t, 3)
    assert got["/echo/p"].body == b"plain" and header(got["/echo/p"], "Content-Type") == []
    # An empty body is an empty body.
    t = tag()
    assert fo.request("POST", "/fwb?tag=%s" % t, body=b"").status == 200
    got = calls(backend, t, 3)
    assert got["/echo/p"].body == b"" and header(got["/echo/p"], "Content-Length") == ["0"]


def test_no_body_without_forward_body(fo, backend):
    t = tag()
    r = fo.request("POST", "/nobody?tag=%s" % t, body=b'{"secret":1}',
                   headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    req = backend.wait_request(t)
    assert req.body == b"" and header(req, "Content-Length") == ["0"], req.headers


def test_forwarded_field_into_a_placeholder_with_crlf(fo, backend):
    """A header placeholder fed from a forwarded field: a value that cannot arrive with CR
    or LF (libmicrohttpd refuses the head) is placed as it is; the sibling still goes."""
    t = tag()
    r = fo.get("/fwcrlf?tag=%s" % t, headers={"X-In": "v1"})
    assert r.status == 200, r
    got = calls(backend, t, 2)
    assert header(got["/echo/h"], "X-V") == ["v1"] and header(got["/echo/f"], "X-In") == ["v1"]
    from blackbox.fanout import raw
    out = raw(fo.port, b"GET /fwcrlf?tag=x HTTP/1.1\r\nHost: h\r\nX-In: a\rb\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:200]


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
        (be("a", u + "/{nope.x}"), "endpoints[0].backends[0]: {nope.x}: \"nope\" is neither a "
         "placeholder namespace nor in depends_on (namespaces: query, header, auth, jwt)"),
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
        (be("a", u, headers={"X-A": "{cookie.b}"}), "endpoints[0].backends[0]: {cookie.b}: "
         "\"cookie\" is neither a placeholder namespace nor in depends_on"),
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


def test_check_forward_errors(fanout_bin, tmp_path):
    u = "http://127.0.0.1:9/x"
    cases = [
        (ep("/x", [be("a", u, forward_headers=["X-B"])], forward_headers=["X-A"]),
         "endpoints[0].backends[0]: forward_headers: \"X-B\" is not forwarded by the "
         "endpoint's forward_headers"),
        (ep("/x", [be("a", u, forward_query=["b"])]),
         "endpoints[0].backends[0]: forward_query: \"b\" is not forwarded by the endpoint's "
         "forward_query"),
        (ep("/x", [be("a", u, forward_query=["B"])], forward_query=["b"]),
         "forward_query: \"B\" is not forwarded"),
        (ep("/x", [be("a", u, forward_headers=["*"])], forward_headers=["X-A"]),
         "endpoints[0].backends[0]: forward_headers: \"*\" needs \"*\" in the endpoint's "
         "forward_headers"),
        (ep("/x", [be("a", u, forward_headers=["Authorization"])], forward_headers=["*"]),
         "forward_headers: \"Authorization\" is not forwarded by the endpoint's"),
        (ep("/x", [be("a", u)], forward_headers=["Host"]),
         "endpoints[0].forward_headers[0]: \"Host\" is never forwarded"),
        (ep("/x", [be("a", u)], forward_headers=["connection"]),
         "endpoints[0].forward_headers[0]: \"connection\" is never forwarded (a hop-by-hop "
         "field)"),
        (ep("/x", [be("a", u)], forward_headers=["X-A", "Proxy-Authorization"]),
         "endpoints[0].forward_headers[1]: \"Proxy-Authorization\" is never forwarded"),
        (ep("/x", [be("a", u)], forward_headers=["X-Timeout-Ms"]),
         "\"X-Timeout-Ms\" is never forwarded (set by fanout)"),
        (ep("/x", [be("a", u)], forward_headers=["Content-Length"]),
         "\"Content-Length\" is never forwarded"),
        (ep("/x", [be("a", u)], forward_headers=["accept-encoding"]),
         "\"accept-encoding\" is never forwarded (fanout reads the answer"),
        (ep("/x", [be("a", u)], forward_headers=["X-A", "x-a"]),
         "endpoints[0].forward_headers[1]: \"x-a\" is listed twice"),
        (ep("/x", [be("a", u)], forward_headers=["X A"]),
         "endpoints[0].forward_headers[0]: \"X A\" is not a header field name"),
        (ep("/x", [be("a", u)], forward_query=["a&b"]),
         "endpoints[0].forward_query[0]: \"a&b\" a query name holds no"),
        (ep("/x", [be("a", u)], forward_query=[""]),
         "endpoints[0].forward_query[0]: \"\" must be a non-empty string"),
        (ep("/x", [be("a", u)], forward_query="*"),
         "endpoints[0].forward_query: must be an array of names, or [\"*\"]"),
        (ep("/x", [be("a", u)], forward_query=["*", "*"]),
         "endpoints[0].forward_query[1]: \"*\" \"*\" twice"),
        (ep("/x", [be("a", u + "#frag")], forward_query=["a"]),
         "endpoints[0].backends[0].url: a URL with a #fragment cannot take forward_query"),
        (ep("/x", [be("a", u)], forward_body="yes"),
         "endpoints[0].forward_body: must be true or false"),
    ]
    for e, want in cases:
        assert_check_error(fanout_bin, tmp_path, e, want)
    p, _ = check(fanout_bin, tmp_path, ep("/x", [
        be("a", u, forward_headers=["X-A", "authorization"], forward_query=[]),
        be("b", u + "#f", forward_query=[], forward_headers=["*"])],
        forward_query=["*"], forward_headers=["*", "Authorization", "X-A"], forward_body=True))
    assert p.returncode == 0, p.stderr
