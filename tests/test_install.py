"""Installing fanout like a C server: make install, the man pages, the systemd unit, sd_notify.

- `make install DESTDIR=... PREFIX=...` puts every file where README's Install section says,
  the unit's ExecStart names the installed binary, and `make uninstall` removes them all;
- fanout(1) and fanout.json(5) render with `groff -ww -z -man` (and `man -l --warnings`)
  without one warning, and fanout.json(5) has a definition line for every config key of
  README's Configuration and Limits tables (and of `fanout --schema`, when the binary has it);
- the unit passes `systemd-analyze verify` (skipped where systemd-analyze is absent);
- READY=1 arrives on a NOTIFY_SOCKET the test binds (a path and an abstract '@' name) before
  the first request is answered, and STOPPING=1 on SIGTERM, before fanout exits 0.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request

import pytest

from blackbox.fanout import SANITIZER_MARKS, sanitizer_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
MAN_PAGES = ("fanout.1", "fanout.json.5")


def make(*args, **kw):
    p = subprocess.run(["make", "-s", "-C", REPO] + list(args), capture_output=True, text=True,
                       timeout=300, **kw)
    assert p.returncode == 0, "make %s:\n%s%s" % (" ".join(args), p.stdout, p.stderr)
    return p


def readme_section(title):
    text = open(README).read()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), text, re.S | re.M)
    assert m, "README has no '## %s' section" % title
    return m.group(1)


# ---- make install ----------------------------------------------------------------------------

# PREFIX-relative path -> mode. README's Install section must name each one.
INSTALLED = {
    "bin/fanout": 0o755,
    "share/man/man1/fanout.1": 0o644,
    "share/man/man5/fanout.json.5": 0o644,
    "lib/systemd/system/fanout.service": 0o644,
    "share/doc/fanout/fanout.json": 0o644,
}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """make install into a fresh DESTDIR with the default PREFIX (/usr/local)."""
    dest = str(tmp_path_factory.mktemp("destdir"))
    make("install", "DESTDIR=" + dest)
    return dest


def test_readme_names_every_installed_file():
    section = readme_section("Install")
    for rel in INSTALLED:
        assert "$PREFIX/" + rel in section or "/usr/local/" + rel in section, rel
    assert "/etc/fanout/fanout.json" in section


def test_make_install_puts_every_file_in_place(staged):
    prefix = staged + "/usr/local"
    found = sorted(os.path.relpath(os.path.join(d, f), prefix)
                   for d, _, files in os.walk(staged) for f in files)
    assert found == sorted(INSTALLED), found
    for rel, mode in INSTALLED.items():
        st = os.stat(os.path.join(prefix, rel))
        assert st.st_mode & 0o777 == mode, (rel, oct(st.st_mode))
    p = subprocess.run([prefix + "/bin/fanout", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("fanout "), p
    p = subprocess.run([prefix + "/bin/fanout", "--check", "-c",
                        prefix + "/share/doc/fanout/fanout.json"], capture_output=True, text=True)
    assert p.returncode == 0, p
    unit = open(prefix + "/lib/systemd/system/fanout.service").read()
    assert "\nExecStart=/usr/local/bin/fanout -c /etc/fanout/fanout.json\n" in unit, unit
    assert "\nExecStartPre=/usr/local/bin/fanout --check -c /etc/fanout/fanout.json\n" in unit


def test_make_install_honours_prefix_and_uninstall_removes_all(tmp_path):
    dest = str(tmp_path)
    make("install", "DESTDIR=" + dest, "PREFIX=/opt/fo")
    for rel in INSTALLED:
        assert os.path.isfile(os.path.join(dest, "opt/fo", rel)), rel
    unit = open(os.path.join(dest, "opt/fo/lib/systemd/system/fanout.service")).read()
    assert "ExecStart=/opt/fo/bin/fanout " in unit
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/opt/fo")
    left = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files]
    assert left == [], left


# ---- man pages -------------------------------------------------------------------------------

def test_man_pages_render_without_warnings(staged):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff)")
    for page in MAN_PAGES:
        path = os.path.join(REPO, "build", "man", page)
        p = subprocess.run(["groff", "-ww", "-z", "-man", path], capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)
        if shutil.which("man"):
            p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING=""))
            assert p.returncode == 0 and p.stderr == "", (page, p.stderr)
            assert "fanout" in p.stdout


def readme_config_keys():
    """Every key of README's Configuration and Limits tables, as README spells it."""
    keys = set()
    cfg = readme_section("Configuration")
    for line in cfg.splitlines():
        if not line.startswith("| `") and not line.startswith("| limits |"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        keys.update(re.findall(r"`([^`]+)`", cells[0]))
        if cells[0] == "limits":
            keys.update(re.findall(r"`([^`]+)`", cells[2]))
    for line in readme_section("Limits").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`[^`]+`", cells[1]):
            keys.add(cells[1].strip("`"))
    return keys


def schema_keys():
    """The properties of `build/fanout --schema`, flattened to README's spelling, or None."""
    binary = os.path.join(REPO, "build", "fanout")
    p = subprocess.run([binary, "--schema"], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    out = set()

    def walk(node, prefix):
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        for name, sub in props.items():
            key = prefix + name
            out.add(key)
            if sub.get("type") == "array" or "items" in sub:
                walk(sub.get("items", {}), key + "[].")
            else:
                walk(sub, key + ".")

    walk(json.loads(p.stdout), "")
    return out


def man_terms(page):
    """The definition terms of a rendered page (lines indented 7, the key the first word)."""
    p = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", "-rLL=100n",
                        os.path.join(REPO, "build", "man", page)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return {line.strip() for line in p.stdout.splitlines()
            if re.fullmatch(r" {7}\S+", line)}


def covered(key, terms):
    return key in terms or any(t.endswith("." + key) for t in terms)


def test_config_page_names_every_config_key(staged):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff)")
    terms = man_terms("fanout.json.5")
    keys = readme_config_keys()
    assert {"listen", "backends[].url", "aggregate.allow_hosts", "max_host_connections",
            "metrics_path"} <= keys, keys  # the README parse found the tables
    missing = sorted(k for k in keys if not covered(k, terms))
    assert missing == [], "fanout.json(5) has no line for %s" % missing
    schema = schema_keys()
    if schema is not None:
        missing = sorted(k for k in schema if not covered(k, terms))
        assert missing == [], "fanout.json(5) has no line for schema keys %s" % missing


def test_command_page_names_every_option(staged):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff)")
    p = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou",
                        os.path.join(REPO, "build", "man", "fanout.1")],
                       capture_output=True, text=True)
    text = p.stdout
    for word in ("-c, --config", "--check", "--listen", "--version", "--help", "--schema",
                 "SIGTERM", "SIGINT", "SIGHUP", "NOTIFY_SOCKET", "EXIT STATUS", "FILES",
                 "ENVIRONMENT", "/etc/fanout/fanout.json"):
        assert word in text, word
    status = text.split("EXIT STATUS", 1)[1].split("FILES", 1)[0]
    for code in ("0", "1", "2"):
        assert re.search(r"^ {7}%s$" % code, status, re.M), code


# ---- systemd unit ----------------------------------------------------------------------------

def test_unit_passes_systemd_analyze_verify(staged, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    prefix = staged + "/usr/local"
    unit = open(prefix + "/lib/systemd/system/fanout.service").read()
    for want in ("Type=notify", "ExecReload=kill -HUP $MAINPID", "DynamicUser=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "NoNewPrivileges=yes", "\nCapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"):
        assert want in unit, want
    assert "WantedBy=multi-user.target" in unit
    # verify checks that the commands exist: point them at the staged binary.
    path = tmp_path / "fanout.service"
    path.write_text(unit.replace("/usr/local/bin/fanout", prefix + "/bin/fanout"))
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=prefix + "/share/man"), timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr


# ---- sd_notify -------------------------------------------------------------------------------

class Started:
    """fanout on the embedded default with NOTIFY_SOCKET set; stdout read by a thread."""

    def __init__(self, binary, notify_name):
        env = sanitizer_env()
        env["NOTIFY_SOCKET"] = notify_name
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], env=env, cwd=REPO,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        self.listening = threading.Event()
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if '"event":"listening"' in line:
                self.port = json.loads(line)["port"]
                self.listening.set()

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=5) as r:
            return r.status, r.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def recv_states(sock, timeout):
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return data.split("\n")


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_before_first_answer_and_stopping_on_sigterm(fanout_bin, tmp_path, kind):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "path":
        name = str(tmp_path / "notify.sock")
        sock.bind(name)
    else:
        name = "@fanout-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
        sock.bind("\0" + name[1:])
    fo = Started(fanout_bin, name)
    try:
        # The first datagram is READY=1, and by then the port is already served.
        assert recv_states(sock, 30) == ["READY=1"]
        assert fo.listening.wait(5), "READY=1 came but no listening line: %s" % fo.lines
        status, body = fo.get("/health")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = fo.get("/api/dashboard/42")
        assert status == 200 and json.loads(body)["user"]["id"] == "42"

        fo.proc.send_signal(signal.SIGTERM)
        assert recv_states(sock, 10) == ["STOPPING=1"]
        assert fo.proc.wait(timeout=15) == 0
    finally:
        fo.kill()
        sock.close()
    assert any('"event":"stopped"' in line for line in fo.lines), fo.lines
    err = "".join(fo.err)
    for m in SANITIZER_MARKS:
        assert m not in err, err


def test_bad_notify_socket_is_ignored(fanout_bin, tmp_path):
    """A relative or dead NOTIFY_SOCKET does not stop fanout from serving."""
    for name in ("relative.sock", str(tmp_path / "nobody-listens.sock")):
        fo = Started(fanout_bin, name)
        try:
            assert fo.listening.wait(30), fo.lines
            assert fo.get("/health")[0] == 200
            fo.proc.send_signal(signal.SIGTERM)
            assert fo.proc.wait(timeout=15) == 0
        finally:
            fo.kill()


# ---- the minimal image (built and run for real by docker/test.sh) ----------------------------

def test_minimal_image_and_k8s_use_it():
    with open(os.path.join(REPO, "docker", "Dockerfile.minimal")) as f:
        text = f.read()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms[-1] == "scratch", froms
    final = text.rsplit("\nFROM scratch", 1)[1]
    assert re.findall(r"^COPY --from=rootfs /rootfs/ /$", final, re.M), final
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert re.search(r"^EXPOSE 8080$", final, re.M)
    assert re.search(r'^    CMD \["/usr/bin/curl", .*"http://127.0.0.1:8080/health"\]$', final, re.M)
    assert re.search(r'^ENTRYPOINT \["/usr/bin/fanout"\]$', final, re.M)
    assert "ldd " in text and "ca-certificates.crt" in text
    import yaml
    with open(os.path.join(REPO, "deploy", "k8s", "deployment.yaml")) as f:
        dep = yaml.safe_load(f)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"].startswith("fanout-minimal:"), c["image"]
    assert c["args"][:2] == ["-c", "/etc/fanout/fanout.json"], c["args"]
    # No shell or sleep binary in the image: only the kubelet's own actions.
    assert "exec" not in c["lifecycle"]["preStop"], c["lifecycle"]
