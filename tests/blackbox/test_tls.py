"""TLS: the HTTPS listener in front (listen_tls, tls) and TLS to backends.

Every certificate is made here with the openssl command in a temporary folder: a throwaway
CA, server certificates for 127.0.0.1/localhost (two, to see a swap), a client certificate,
an expired one, one for another host name, and a self-signed one. TLS backends are
blackbox.backend.Backend with a server-side ssl.SSLContext.

Front:
- a client that trusts the CA gets 200 over HTTPS (an endpoint, /health); /health answers on
  the plain listener too; with "listen": null only HTTPS listens;
- TLS 1.0 and 1.1 never complete a handshake (min_version 1.2), TLS 1.2 neither with
  min_version 1.3;
- certificate swapped on disk + SIGHUP: new connections see the new certificate (its serial)
  while a request held on a connection made before completes there, with the old one; an
  unreadable certificate, or a key that does not match it, + SIGHUP: reload_failed, the old
  certificate stays;
- a client that opens TCP to the HTTPS port and never completes its handshake is closed within
  header_timeout_ms.
Backends:
- a self-signed backend fails "connect" unless ca_file (per backend or top-level, also for the
  ad-hoc batch) names its certificate; an expired certificate fails; a certificate for
  another name fails unless server_name names it (then SNI and Host carry that name);
- a backend that requires a client certificate fails without one, succeeds with
  client_cert_file/client_key_file (and sees that certificate);
- insecure_skip_verify: the call succeeds, the start log warns, --check prints it;
- TLS handshakes per backend are counted in /metrics and stay near 0 per request over 1,000
  requests (connection reuse).
Config: --check names every bad TLS key.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings

import pytest

from blackbox.backend import Backend, tag
from blackbox.fanout import Fanout, VARIANTS, backend, endpoint, run_cli, vm_kb, write_config


# ---- certificates -----------------------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


class PKI:
    """Certificates in 'd': ca.pem; srv_a/srv_b (127.0.0.1, localhost); client; expired;
    other (backend.test only); self (self-signed for 127.0.0.1). Each X has X.pem, X.key."""

    def __init__(self, d):
        self.d = d
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=fanout test CA", cwd=d)
        local = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        self._leaf("srv_a", "/CN=localhost", local + "\nextendedKeyUsage=serverAuth", 2, 1001)
        self._leaf("srv_b", "/CN=localhost", local + "\nextendedKeyUsage=serverAuth", 2, 1002)
        self._leaf("client", "/CN=fanout-client", "extendedKeyUsage=clientAuth", 2, 1003)
        self._leaf("expired", "/CN=localhost", local, -1, 1004)
        self._leaf("other", "/CN=backend.test", "subjectAltName=DNS:backend.test", 2, 1005)
        with open(os.path.join(d, "self.cnf"), "w") as f:
            f.write("[req]\ndistinguished_name=dn\n[dn]\n[ext]\n%s\n" % local)
        _openssl("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
                 "-subj", "/CN=self-signed", "-config", "self.cnf", "-extensions", "ext", cwd=d)

    def _leaf(self, name, subj, ext, days, serial):
        d = self.d
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", str(serial), "-days", str(days), "-extfile", name + ".ext",
                 "-out", name + ".pem", cwd=d)

    def path(self, name):
        return os.path.join(self.d, name)

    def server_ctx(self, name, client_ca=False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path(name + ".pem"), self.path(name + ".key"))
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.path("ca.pem"))
        return ctx

    def client_ctx(self):
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        return ctx


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="fanout-pki-")
    yield PKI(d)
    shutil.rmtree(d, ignore_errors=True)


# ---- helpers ----------------------------------------------------------------------------------

def tls_port(fo):
    ev = fo.wait_event(lambda e: e.get("event") == "listening_tls", what="listening_tls")
    return int(ev["port"])


def https(port, ctx, method, path, timeout=15.0, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read(), conn
    finally:
        if own:
            conn.close()


def peer_serial(conn):
    """Serial of the certificate the server showed on an open HTTPSConnection."""
    der = conn.sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return int(out.strip().split("=")[1], 16)


def handshake_fails(port, **ctx_kw):
    """True when no TLS handshake completes with a client limited by ctx_kw."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            for k, v in ctx_kw.items():
                setattr(ctx, k, v)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return True  # the local OpenSSL cannot even offer it
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s) as t:
                return t.version() is None
    except (ssl.SSLError, OSError):
        return True


def s_client_cipher(port, *args):
    """The cipher openssl s_client negotiated with 'args', or "(NONE)"."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input="", text=True, capture_output=True, timeout=20)
    for line in p.stdout.splitlines():
        if "Cipher is" in line:
            return line.rsplit("Cipher is", 1)[1].strip()
    return "(NONE)"


def tls_front_config(pki, be, workdir, **kw):
    cert = os.path.join(workdir, "front.pem")
    key = os.path.join(workdir, "front.key")
    shutil.copy(pki.path("srv_a.pem"), cert)
    shutil.copy(pki.path("srv_a.key"), key)
    cfg = {
        "listen_tls": "127.0.0.1:0",
        "tls": {"cert_file": cert, "key_file": key},
        "endpoints": [
            endpoint("/api/x", [backend("a", be.url("/json?body=%7B%22v%22%3A1%7D"))]),
            endpoint("/api/hold/{k}", [backend("h", be.url("/hold/{k}"))], timeout_ms=20000),
        ],
        "timeout_ms": 20000,
        "log": {"level": "info", "access": False},
    }
    cfg.update(kw)
    return cfg, cert, key


# ---- the front --------------------------------------------------------------------------------

def test_https_listener_serves_routes_and_health(spawn, backend, pki, tmp_path):
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path))
    fo = spawn(cfg)
    port = tls_port(fo)
    ctx = pki.client_ctx()
    status, body, _ = https(port, ctx, "GET", "/api/x")
    assert status == 200 and json.loads(body) == {"a": {"v": 1}}, body
    status, body, _ = https(port, ctx, "GET", "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert fo.get("/health").status == 200  # the plain listener, same routes
    assert fo.get("/api/x").json() == {"a": {"v": 1}}
    # curl with the CA, by name (localhost is in the certificate).
    p = subprocess.run(["curl", "-sS", "--cacert", pki.path("ca.pem"), "-o", "/dev/null",
                        "-w", "%{http_code}", "https://localhost:%d/health" % port],
                       capture_output=True, text=True, timeout=20)
    assert p.stdout == "200", p
    # A client that does not trust the CA fails the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        https(port, ssl.create_default_context(), "GET", "/health")


def test_max_connections_counts_both_listeners(spawn, backend, pki, tmp_path):
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path), max_connections=3)
    fo = spawn(cfg)
    port = tls_port(fo)
    ctx = pki.client_ctx()
    plain = fo.connect()
    assert fo.request("GET", "/health", conn=plain).status == 200
    held = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    assert https(port, ctx, "GET", "/health", conn=held)[0] == 200

    def third_ok():
        try:
            status, _, _ = https(port, ctx, "GET", "/health", timeout=5)
            return status == 200
        except (OSError, http.client.HTTPException):
            return False

    # Two held (one per listener) and one more: the 4th, over HTTPS, is closed at once.
    end = time.monotonic() + 10
    while True:  # polling: the slot of the last probe's connection comes back when it closes
        other = fo.connect()
        try:
            if fo.request("GET", "/health", conn=other).status == 200:
                break
        except (OSError, http.client.HTTPException):
            other.close()
        assert time.monotonic() < end, "the third connection was never admitted"
        time.sleep(0.05)
    assert not third_ok()
    other.close()
    end = time.monotonic() + 10
    while not third_ok():  # polling until the slot is given back
        assert time.monotonic() < end, "no HTTPS connection admitted after one closed"
        time.sleep(0.05)
    plain.close()
    held.close()


def test_https_only(pki, backend, variant, tmp_path):
    """"listen": null: only the HTTPS listener (fanout.py always adds --listen, so this test
    starts the process itself)."""
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path), listen=None)
    path = str(tmp_path / "only.json")
    write_config(path, cfg)
    fo = Fanout([VARIANTS[variant], "-c", path], variant)
    try:
        port = tls_port(fo)
        end = time.monotonic() + 10
        while True:  # polling for readiness
            try:
                status, _, _ = https(port, pki.client_ctx(), "GET", "/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < end, fo.output()
                time.sleep(0.05)
        assert status == 200
        assert not any(e.get("event") == "listening" for e in fo.events()), fo.output()
    finally:
        fo.proc.send_signal(signal.SIGTERM)
        assert fo.wait_exit(10) == 0, fo.output()
        assert fo.sanitizer_report() is None, fo.output()


def test_old_tls_versions_refused(spawn, backend, pki, tmp_path):
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path))
    fo = spawn(cfg)
    port = tls_port(fo)
    assert handshake_fails(port, maximum_version=ssl.TLSVersion.TLSv1)
    assert handshake_fails(port, maximum_version=ssl.TLSVersion.TLSv1_1)
    for flag in ("-tls1", "-tls1_1"):
        assert s_client_cipher(port, flag) == "(NONE)"
    # No legacy suites on TLS 1.2: CBC and static-RSA key exchange are refused, AEAD is fine.
    assert s_client_cipher(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA") == "(NONE)"
    assert s_client_cipher(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256") == "(NONE)"
    assert s_client_cipher(port, "-tls1_2") != "(NONE)"
    assert not handshake_fails(port, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert not handshake_fails(port, minimum_version=ssl.TLSVersion.TLSv1_3)

    d13 = tmp_path / "v13"
    d13.mkdir()
    cfg13, _, _ = tls_front_config(pki, backend, str(d13))
    cfg13["tls"]["min_version"] = "1.3"
    fo13 = spawn(cfg13)
    port13 = tls_port(fo13)
    assert handshake_fails(port13, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert not handshake_fails(port13, minimum_version=ssl.TLSVersion.TLSv1_3)


def test_sighup_swaps_certificate_without_losing_a_request(spawn, backend, pki, tmp_path):
    cfg, cert, key = tls_front_config(pki, backend, str(tmp_path))
    fo = spawn(cfg)
    port = tls_port(fo)
    ctx = pki.client_ctx()
    k = tag()
    old = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=ctx)
    old.request("GET", "/api/hold/" + k)  # held by the backend until release(k)
    backend.wait_for(lambda: backend.holding(k) == 1, 10, "the held call")
    assert peer_serial(old) == 1001
    threads = len(os.listdir("/proc/%d/task" % fo.proc.pid))

    shutil.copy(pki.path("srv_b.pem"), cert)
    shutil.copy(pki.path("srv_b.key"), key)
    fo.proc.send_signal(signal.SIGHUP)
    fo.wait_event(lambda e: e.get("event") == "reloaded", what="reloaded")
    assert any(e.get("event") == "tls_reloaded" for e in fo.events())
    status, _, c = https(port, ctx, "GET", "/health", conn=http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=ctx))
    assert status == 200 and peer_serial(c) == 1002
    c.close()

    backend.release(k)
    r = old.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {"h": {"held": k}}
    old.close()

    # A certificate file that is not one: the reload fails and the new certificate stays.
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    fo.proc.send_signal(signal.SIGHUP)
    ev = fo.wait_event(lambda e: e.get("event") == "reload_failed", what="reload_failed")
    assert "tls.cert_file" in ev["errors"], ev
    # A valid PEM certificate with the key of another one: GnuTLS refuses the pair.
    shutil.copy(pki.path("srv_a.pem"), cert)
    shutil.copy(pki.path("client.key"), key)
    fo.proc.send_signal(signal.SIGHUP)
    fo.wait_event(lambda e: e.get("event") == "reload_failed" and "refused" in e["errors"],
                  what="reload_failed for a mismatched key")
    # Unreadable: gone.
    os.unlink(cert)
    fo.proc.send_signal(signal.SIGHUP)
    fo.wait_event(lambda e: e.get("event") == "reload_failed" and "No such file" in e["errors"],
                  what="reload_failed for a missing file")
    status, _, c = https(port, ctx, "GET", "/health", conn=http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=ctx))
    assert status == 200 and peer_serial(c) == 1002
    c.close()
    assert sum(e.get("event") == "tls_reloaded" for e in fo.events()) == 1
    # The old daemon was stopped once its connection was gone: as many threads as before.
    end = time.monotonic() + 10
    while len(os.listdir("/proc/%d/task" % fo.proc.pid)) != threads:
        assert time.monotonic() < end, "the retired HTTPS daemon's threads are still there"
        time.sleep(0.05)  # polling: the watchdog stops it within a second or two

    # listen_tls itself needs a restart: named in the reloaded line; the certificate reloads.
    shutil.copy(pki.path("srv_a.pem"), cert)
    shutil.copy(pki.path("srv_a.key"), key)
    cfg["listen_tls"] = "127.0.0.1:1"
    write_config(fo.config_path, cfg)
    fo.proc.send_signal(signal.SIGHUP)
    ev = fo.wait_event(lambda e: e.get("event") == "reloaded" and e["restart_needed_for"],
                       what="reloaded with restart_needed_for")
    assert ev["restart_needed_for"] == "listen_tls", ev
    status, _, c = https(port, ctx, "GET", "/health", conn=http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=ctx))
    assert status == 200 and peer_serial(c) == 1001
    c.close()


def test_stalled_handshake_is_closed_by_header_timeout(spawn, backend, pki, tmp_path):
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path), header_timeout_ms=500)
    fo = spawn(cfg)
    port = tls_port(fo)
    for hello in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):  # none, half a hello
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(hello)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            took = time.monotonic() - t0
        assert 0.4 <= took < 5.0, took
    status, _, _ = https(port, pki.client_ctx(), "GET", "/health")
    assert status == 200


def test_tls_connection_memory(spawn, backend, pki, tmp_path, variant):
    """VmRSS per idle HTTPS connection (handshake done, no request), for README's limits."""
    if variant != "plain":
        pytest.skip("a memory figure of the plain build only")
    cfg, _, _ = tls_front_config(pki, backend, str(tmp_path), header_timeout_ms=120000,
                                 idle_timeout_ms=120000)
    fo = spawn(cfg)
    port = tls_port(fo)
    ctx = pki.client_ctx()
    n = 1000
    socks = []
    try:
        https(port, ctx, "GET", "/health")
        before = vm_kb(fo.proc.pid, "VmRSS")
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(ctx.wrap_socket(s, server_hostname="localhost"))
        fo.wait_metrics(lambda m: m.get("fanout_client_connections") >= n, 20,
                        what="%d connections" % n)
        after = vm_kb(fo.proc.pid, "VmRSS")
    finally:
        for s in socks:
            s.close()
    per_conn = (after - before) * 1024 / n
    print("\nTLS idle connection: %.1f KiB VmRSS each (%d -> %d kB for %d)"
          % (per_conn / 1024, before, after, n))
    assert per_conn < 64 * 1024, per_conn


# ---- backends ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_backends(pki, variant):  # one set per variant: counts start at 0
    bs = {
        "good": Backend(pki.server_ctx("srv_a")),
        "self": Backend(pki.server_ctx("self")),
        "mtls": Backend(pki.server_ctx("srv_a", client_ca=True)),
        "expired": Backend(pki.server_ctx("expired")),
        "other": Backend(pki.server_ctx("other")),
        "many": Backend(pki.server_ctx("srv_a")),  # called by /many only
    }
    yield bs
    for b in bs.values():
        b.close()


def backends_config(pki, tb):
    def ep(path, **kw):
        return endpoint(path, [backend("b", kw.pop("url"), **kw)], report=True)

    echo = "/echo?x=1"
    return {
        "ca_file": pki.path("ca.pem"),  # top-level: every backend without its own
        "endpoints": [
            ep("/good", url=tb["good"].url(echo)),
            ep("/self", url=tb["self"].url(echo)),
            ep("/self_ca", url=tb["self"].url(echo), ca_file=pki.path("self.pem")),
            ep("/self_insecure", url=tb["self"].url(echo), insecure_skip_verify=True),
            ep("/mtls_none", url=tb["mtls"].url(echo)),
            ep("/mtls_cert", url=tb["mtls"].url(echo), client_cert_file=pki.path("client.pem"),
               client_key_file=pki.path("client.key")),
            ep("/expired", url=tb["expired"].url(echo)),
            ep("/other", url=tb["other"].url(echo)),
            ep("/other_named", url=tb["other"].url(echo), server_name="backend.test"),
            endpoint("/many", [backend("m", tb["many"].url("/json?body=1"))]),
        ],
        "aggregate": {"allow_hosts": ["127.0.0.1:%d" % tb["good"].port,
                                      "127.0.0.1:%d" % tb["self"].port]},
        "workers": 2,
        "log": {"level": "info", "access": False},
    }


@pytest.fixture(scope="module")
def bfo(variant, pki, tls_backends, tmp_path_factory):
    fo = Fanout.start(VARIANTS[variant], variant, backends_config(pki, tls_backends),
                      str(tmp_path_factory.mktemp("tlsb")), name="tls-backends")
    yield fo
    fo.stop()


def outcome(r):
    return r.json()["_fanout"]["backends"]["b"].get("error")


def test_backend_verification(bfo, tls_backends):
    r = bfo.get("/good")
    assert r.status == 200 and outcome(r) is None, r
    assert r.json()["b"]["method"] == "GET"
    for path in ("/self", "/expired", "/other"):
        r = bfo.get(path)
        assert r.status == 502 and outcome(r) == "connect", (path, r)
    r = bfo.get("/self_ca")
    assert r.status == 200 and outcome(r) is None, r
    bfo.check_alive()


def test_backend_mutual_tls(bfo, tls_backends):
    mtls = tls_backends["mtls"]
    r = bfo.get("/mtls_none")
    assert r.status == 502 and outcome(r) == "connect", r
    r = bfo.get("/mtls_cert")
    assert r.status == 200 and outcome(r) is None, r
    with mtls.cond:
        seen = [c.peer_cert for c in mtls.conns if c.peer_cert]
    assert seen and dict(x[0] for x in seen[-1]["subject"])["commonName"] == "fanout-client"


def test_backend_server_name(bfo, tls_backends):
    other = tls_backends["other"]
    r = bfo.get("/other_named")
    assert r.status == 200 and outcome(r) is None, r
    headers = dict((k.lower(), v) for k, v in r.json()["b"]["headers"])
    assert headers["host"] == "backend.test:%d" % other.port, headers
    with other.cond:
        assert "backend.test" in other.sni_names, other.sni_names


def test_insecure_skip_verify_is_warned(bfo, tls_backends):
    r = bfo.get("/self_insecure")
    assert r.status == 200 and outcome(r) is None, r
    ev = bfo.wait_event(lambda e: e.get("event") == "insecure_config", what="the warning")
    assert ev["level"] == "warn"
    assert "endpoints[3].backends[0].insecure_skip_verify" in ev["warning"], ev
    p = run_cli(bfo.argv[0], ["--check", "-c", bfo.config_path])
    assert p.returncode == 0, p
    assert "warning: endpoints[3].backends[0].insecure_skip_verify" in p.stderr, p


def test_batch_uses_top_level_ca_file(bfo, tls_backends):
    good, selfb = tls_backends["good"], tls_backends["self"]
    r = bfo.post("/aggregate", {"requests": {
        "g": {"url": good.url("/json?body=2")},
        "s": {"url": selfb.url("/json?body=3")}}, "report": True})
    assert r.status == 200, r
    doc = r.json()
    assert doc["g"] == 2 and "s" not in doc, doc
    assert doc["_fanout"]["backends"]["s"]["error"] == "connect", doc


def test_tls_handshakes_per_request_near_zero(bfo, tls_backends, variant):
    n = 1000 if variant == "plain" else 200

    def handshakes(m):
        return m.get("fanout_backend_tls_handshakes_total", endpoint="GET /many", backend="m")

    before = handshakes(bfo.wait_metrics(lambda m: True))
    conn = bfo.connect()
    try:
        for _ in range(n):
            r = bfo.request("GET", "/many", conn=conn)
            assert r.status == 200, r
    finally:
        conn.close()
    m = bfo.wait_metrics(lambda m: True)
    new = handshakes(m) - before
    calls = m.get("fanout_backend_calls_total", endpoint="GET /many", backend="m", outcome="ok")
    assert calls >= n
    # The first call's handshake, then reuse: one connection per worker at most, whatever n.
    assert 1 <= new + before <= 2 and new <= 2, (before, new, n)
    assert new + before == tls_backends["many"].nconns()
    print("\nTLS handshakes: %d new over %d requests (%.4f per request)" % (new, n, new / n))


# ---- configuration ----------------------------------------------------------------------------

def test_check_names_every_bad_tls_key(fanout_bin, pki, tmp_path):
    ep_https = "https://127.0.0.1:9/x"
    missing = str(tmp_path / "missing.pem")

    def be(**kw):
        return {"endpoints": [endpoint("/x", [backend("b", kw.pop("url", ep_https), **kw)])]}

    tls_ok = {"cert_file": pki.path("srv_a.pem"), "key_file": pki.path("srv_a.key")}
    cases = [
        ({"listen_tls": "127.0.0.1:0"}, "listen_tls: needs \"tls\""),
        ({"tls": tls_ok}, "tls: needs \"listen_tls\""),
        ({"listen": None}, "listen: is null and there is no listen_tls"),
        ({"listen": 5}, "listen: must be a string or null"),
        ({"listen_tls": "localhost:443", "tls": tls_ok}, "listen_tls: must be \"host:port\""),
        ({"listen_tls": "127.0.0.1:0", "tls": dict(tls_ok, min_version="1.1")},
         "tls.min_version: must be \"1.2\" or \"1.3\""),
        ({"listen_tls": "127.0.0.1:0", "tls": {"cert_file": pki.path("srv_a.pem")}},
         "tls: missing key \"key_file\""),
        ({"listen_tls": "127.0.0.1:0", "tls": dict(tls_ok, cert_file=missing)},
         "tls.cert_file: cannot read"),
        ({"listen_tls": "127.0.0.1:0", "tls": dict(tls_ok, key_file=pki.path("srv_a.pem"))},
         "tls.key_file: \"%s\" holds no PEM private key" % pki.path("srv_a.pem")),
        ({"listen_tls": "127.0.0.1:0", "tls": dict(tls_ok, cert_file=pki.path("srv_a.key"))},
         "holds no PEM certificate"),
        ({"listen_tls": "127.0.0.1:0", "tls": dict(tls_ok, ciphers="x")},
         "tls: unknown key \"ciphers\""),
        ({"ca_file": missing}, "ca_file: cannot read"),
        ({"ca_file": str(tmp_path)}, "ca_file: cannot read \"%s\": not a regular file"
         % tmp_path),
        (be(ca_file=missing), "endpoints[0].backends[0].ca_file: cannot read"),
        (be(client_cert_file=pki.path("client.pem")),
         "endpoints[0].backends[0].client_key_file: missing"),
        (be(client_key_file=pki.path("client.key")),
         "endpoints[0].backends[0].client_cert_file: missing"),
        (be(client_cert_file=pki.path("client.key"), client_key_file=pki.path("client.key")),
         "endpoints[0].backends[0].client_cert_file: \"%s\" holds no PEM certificate"
         % pki.path("client.key")),
        (be(server_name="10.0.0.1"), "endpoints[0].backends[0].server_name: must be a DNS"),
        (be(server_name="a..b"), "endpoints[0].backends[0].server_name: must be a DNS"),
        (be(insecure_skip_verify="yes"),
         "endpoints[0].backends[0].insecure_skip_verify: must be true or false"),
        (be(insecure_skip_verify=True, ca_file=pki.path("ca.pem")),
         "endpoints[0].backends[0].insecure_skip_verify: verification is off"),
        (be(url="http://127.0.0.1:9/x", server_name="a.test"),
         "endpoints[0].backends[0]: TLS keys"),
    ]
    for i, (cfg, want) in enumerate(cases):
        path = str(tmp_path / ("bad%d.json" % i))
        write_config(path, cfg)
        p = run_cli(fanout_bin, ["--check", "-c", path])
        assert p.returncode != 0 and want in p.stderr, (cfg, want, p.stderr)
    good = dict(be(ca_file=pki.path("ca.pem"), client_cert_file=pki.path("client.pem"),
                   client_key_file=pki.path("client.key"), server_name="api.internal"),
                listen=None, listen_tls="127.0.0.1:0", tls=dict(tls_ok, min_version="1.3"),
                ca_file=pki.path("ca.pem"))
    path = str(tmp_path / "good.json")
    write_config(path, good)
    p = run_cli(fanout_bin, ["--check", "-c", path])
    assert p.returncode == 0 and p.stderr == "", p
