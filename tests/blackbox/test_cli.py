"""Command line: --version, --help, --check, config errors, the embedded default, signals."""

import json
import re
import signal
import socket

from blackbox.fanout import run_cli

GOOD = {
    "listen": "127.0.0.1:0",
    "timeout_ms": 500,
    "endpoints": [{
        "path": "/api/dashboard/{id}",
        "timeout_ms": 300,
        "report": True,
        "backends": [
            {"name": "user", "url": "http://127.0.0.1:9/users/{id}", "required": True},
            {"name": "orders", "url": "http://127.0.0.1:9/orders?user={id}", "timeout_ms": 100},
            {"name": "flags", "url": "http://127.0.0.1:9/flags", "merge": True},
        ],
    }],
    "aggregate": {"allow_hosts": ["127.0.0.1:9"], "max_requests": 8},
}


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return str(p)


def error_lines(p, path):
    """stderr lines, with an optional "fanout: " and "FILE: " prefix removed."""
    out = []
    for line in p.stderr.splitlines():
        for prefix in ("fanout: ", path + ": "):
            if line.startswith(prefix):
                line = line[len(prefix):]
        out.append(line.strip())
    return out


def test_version(fanout_bin):
    p = run_cli(fanout_bin, ["--version"])
    assert p.returncode == 0, p
    assert re.fullmatch(r"fanout \d+\.\d+\.\d+", p.stdout.strip()), p.stdout


def test_help(fanout_bin):
    p = run_cli(fanout_bin, ["--help"])
    assert p.returncode == 0, p
    assert "usage" in p.stdout.lower(), p.stdout
    assert "--check" in p.stdout and "--listen" in p.stdout, p.stdout


def test_unknown_option_is_exit_2_with_usage(fanout_bin):
    p = run_cli(fanout_bin, ["--no-such-option"])
    assert p.returncode == 2, p
    assert "usage" in p.stderr.lower(), p.stderr


def test_check_good_config(fanout_bin, tmp_path):
    path = write(tmp_path, "good.json", GOOD)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 0, p
    assert p.stdout.strip() == "%s: ok" % path, p.stdout


def test_check_unknown_key_names_json_path(fanout_bin, tmp_path):
    doc = json.loads(json.dumps(GOOD))
    b = doc["endpoints"][0]["backends"][1]
    b["urll"] = b.pop("url")
    path = write(tmp_path, "bad.json", doc)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1, p
    assert 'endpoints[0].backends[1]: unknown key "urll"' in error_lines(p, path), p.stderr
    assert "ok" not in p.stdout, p.stdout


def test_check_reports_every_error_with_its_path(fanout_bin, tmp_path):
    doc = json.loads(json.dumps(GOOD))
    doc["timeout_ms"] = "fast"
    doc["endpoints"][0]["backends"][2]["merge"] = "yes"
    doc["endpoints"][0]["backends"][0]["url"] = "http://127.0.0.1:9/users/{nope}"
    doc["aggregate"]["max_requests"] = -1
    path = write(tmp_path, "bad2.json", doc)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1, p
    lines = error_lines(p, path)
    for prefix in ("timeout_ms: ", "endpoints[0].backends[2].merge: ",
                   "endpoints[0].backends[0]", "aggregate.max_requests: "):
        assert any(line.startswith(prefix) for line in lines), (prefix, p.stderr)


def test_check_duplicate_backend_name_and_bad_path(fanout_bin, tmp_path):
    doc = json.loads(json.dumps(GOOD))
    doc["endpoints"][0]["backends"][1]["name"] = "user"
    doc["endpoints"].append({"path": "no-slash", "backends": [
        {"name": "a", "url": "http://127.0.0.1:9/"}]})
    path = write(tmp_path, "bad3.json", doc)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1, p
    lines = error_lines(p, path)
    assert any(line.startswith("endpoints[0].backends[1]") for line in lines), p.stderr
    assert any(line.startswith("endpoints[1]") for line in lines), p.stderr


def test_check_not_json(fanout_bin, tmp_path):
    path = write(tmp_path, "broken.json", '{"endpoints": [')
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 1, p
    assert p.stderr.strip(), p


def test_missing_config_file(fanout_bin, tmp_path):
    path = str(tmp_path / "nope.json")
    for args in (["-c", path, "--listen", "127.0.0.1:0"], ["--check", "-c", path]):
        p = run_cli(fanout_bin, args)
        assert p.returncode == 1, (args, p)
        assert "cannot read %s: " % path in p.stderr, p.stderr
        assert "No such file or directory" in p.stderr, p.stderr


def test_bad_config_does_not_start(fanout_bin, tmp_path):
    doc = json.loads(json.dumps(GOOD))
    doc["endpoints"][0]["bogus"] = 1
    path = write(tmp_path, "bad4.json", doc)
    p = run_cli(fanout_bin, ["-c", path, "--listen", "127.0.0.1:0"])
    assert p.returncode == 1, p
    assert 'endpoints[0]: unknown key "bogus"' in error_lines(p, path), p.stderr
    assert "listening" not in p.stdout, p.stdout


def test_embedded_default_dashboard(spawn):
    fo = spawn(None)
    r = fo.get("/api/dashboard/42")
    assert r.status == 200, r
    assert r.headers.get("X-Fanout-Complete") == "true", r
    keys = r.keys()
    assert keys[:2] == ["user", "orders"], r
    assert len(keys) >= 3, "flags (merge: true) lifted nothing: %r" % r
    assert "42" in json.dumps(r.json()["user"]), r
    # The demo batch is on: its path exists and only takes POST.
    r = fo.get("/aggregate")
    assert r.status == 405 and r.headers.get("Allow") == "POST", r


def test_sigint_exits_0(spawn):
    fo = spawn(None)
    fo.proc.send_signal(signal.SIGINT)
    assert fo.wait_exit(10) == 0, fo.output()


def test_listen_flag_overrides_config(spawn, backend):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        fo = spawn({"listen": "127.0.0.1:%d" % port,
                    "endpoints": [{"path": "/x", "backends": [
                        {"name": "a", "url": backend.url("/json")}]}]})
        assert fo.port != port
        r = fo.get("/x")
        assert r.status == 200 and r.json() == {"a": {}}, r
    finally:
        busy.close()


def test_stdout_is_json_lines_with_listening_event(spawn):
    fo = spawn(None)
    assert fo.get("/api/dashboard/1").status == 200
    fo.stop()
    events = []
    for line in fo.stdout:
        ev = json.loads(line)
        assert isinstance(ev, dict) and isinstance(ev.get("event"), str), line
        events.append(ev)
    listening = [e for e in events if e["event"] == "listening"]
    assert len(listening) == 1, fo.stdout
    ev = listening[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev.get("ts", "")), ev
    assert ev.get("level") == "info", ev
    assert ev.get("host") == "127.0.0.1" and ev.get("port") == fo.port, ev
