"""TLS on the TCP listeners (--tls-cert, --tls-key, --tls-client-ca, --tls-min-version).

A session fixture makes throwaway certificates with the openssl CLI: a CA, a server
certificate for 127.0.0.1/localhost, one for another host name, a client certificate, and a
second CA with its own client certificate. Each test starts a real daemon with a token file
and talks to it with the real Python client (tensord.Client, tls:// addresses); every bad
case is followed by a good request that must still be served. The daemon's exit status and
stderr (sanitizer reports) are checked at teardown by conftest.
"""
import os
import socket
import ssl
import subprocess
import threading
import time

import numpy as np
import pytest

import tensord
from tensord._wire import TensordError, Unauthenticated, Unavailable

from authutil import ALICE_TOKEN, BOB_TOKEN, write_tokens
from conftest import TENSORD_BIN


def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    cnf = d / "openssl.cnf"
    cnf.write_text("[req]\ndistinguished_name = dn\n[dn]\n[v3]\n"
                   "basicConstraints = critical,CA:TRUE\n"
                   "keyUsage = critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier = hash\n")

    def ca(name):
        _openssl(d, "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem",
                 "-days", "2", "-subj", f"/CN=tensord test {name}", "-config", str(cnf),
                 "-extensions", "v3")

    def leaf(name, ca_name, san=None, client=False):
        _openssl(d, "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=tensord test {name}", "-config", str(cnf))
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature",
                 "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"),
                 "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        if san:
            lines.append("subjectAltName=" + san)
        (d / f"{name}.ext").write_text("\n".join(lines) + "\n")
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca_name}.pem",
                 "-CAkey", f"{ca_name}.key", "-CAcreateserial", "-days", "2",
                 "-extfile", f"{name}.ext", "-out", f"{name}.pem")

    ca("ca")
    ca("otherca")
    leaf("server", "ca", "IP:127.0.0.1,DNS:localhost")
    leaf("wronghost", "ca", "DNS:elsewhere.example")
    leaf("client", "ca", client=True)
    leaf("otherclient", "otherca", client=True)
    for f in d.glob("*.key"):
        os.chmod(f, 0o600)
    return {p.name: str(p) for p in d.iterdir()}


def tls_addr(d):
    return "tls://" + d.tcp[len("tcp://"):]


def start_tls(start_daemon, tmp_path, certs, *extra, cert="server"):
    tokens = write_tokens(tmp_path)
    d = start_daemon("--threads", "2", "--token-file", tokens,
                     "--tls-cert", certs[f"{cert}.pem"], "--tls-key", certs[f"{cert}.key"],
                     *extra)
    d.tls = tls_addr(d)
    return d


def good_request(d, certs, **kw):
    """A TLS client with the right CA (and whatever kw adds) is served: add and Get."""
    with tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"], **kw) as c:
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        t = c.upload(a)
        (s,) = c.run_op("add", [t, t])
        np.testing.assert_array_equal(c.download(s), a * 2)


def handshake_failed_logged(d, n=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.stderr().count("TLS handshake failed") >= n:
            return True
        time.sleep(0.05)
    return False


def client_hello():
    """The first flight of a real TLS client (a ClientHello record), made with a memory BIO."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100   # handshake record
    return hello


def raw_connect(d):
    host, port = d.tcp[len("tcp://"):].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_server(s, timeout=10.0):
    """Reads (and drops) what the server sends until it closes; True when it closed."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# ---- the good path -----------------------------------------------------------------------
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_round_trip(start_daemon, tmp_path, certs, version):
    # 1 MB frames: the 4 MB tensor travels in 4 Puts and 4 Gets.
    d = start_tls(start_daemon, tmp_path, certs, "--max-frame-data", "1048576")
    ctx = tensord.client.make_tls_context(certs["ca.pem"])
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    rng = np.random.default_rng(5)
    a = rng.standard_normal(512 * 1024)               # 4 MB of float64
    b = rng.standard_normal(512 * 1024)
    with tensord.Client(d.tls, token=ALICE_TOKEN, tls=ctx) as c:
        assert c._conn.sock.version() == version.replace("_", ".")
        assert c.user == "alice"
        ta, tb = c.upload(a), c.upload(b)
        np.testing.assert_array_equal(c.download(ta), a)
        (s,) = c.run_op("add", [ta, tb])
        np.testing.assert_array_equal(c.download(s), a + b)
        (m,) = c.run_op("matmul", [c.upload(a[:64 * 64].reshape(64, 64)),
                                   c.upload(b[:64 * 64].reshape(64, 64))])
        np.testing.assert_allclose(c.download(m), a[:4096].reshape(64, 64) @
                                   b[:4096].reshape(64, 64), rtol=1e-12, atol=1e-12)
        # Eager ops queue and read replies as they come (the client's non-blocking peek,
        # emulated over TLS by _TLSSocket).
        y = c.upload(np.zeros(3))
        for _ in range(300):
            (y,) = c.run_op("add", [y, 1.0])
        assert c._conn.replies_read > 0
        np.testing.assert_array_equal(c.download(y), [300.0] * 3)
    # The Unix socket next to the TLS listener stays plain.
    with tensord.Client(d.unix, token=BOB_TOKEN) as c:
        t = c.upload(np.array([1.5, 2.5]))
        (s,) = c.run_op("add", [t, t])
        np.testing.assert_array_equal(c.download(s), [3.0, 5.0])
    good_request(d, certs)


def test_tls_min_version_13_refuses_12(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs, "--tls-min-version", "1.3")
    ctx = tensord.client.make_tls_context(certs["ca.pem"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(TensordError, match="(?i)version|alert"):
        tensord.Client(d.tls, token=ALICE_TOKEN, tls=ctx)
    assert handshake_failed_logged(d)
    good_request(d, certs)


def test_tensordctl_over_tls(start_daemon, tmp_path, certs):
    from authutil import ADMIN_TOKEN
    d = start_tls(start_daemon, tmp_path, certs)
    tok = tmp_path / "admin.token"
    tok.write_text(ADMIN_TOKEN + "\n")
    os.chmod(tok, 0o600)
    from tensord import ctl
    assert ctl.main(["--address", d.tls, "--tls-ca", certs["ca.pem"], "health"]) == 0
    assert ctl.main(["--address", d.tls, "--tls-ca", certs["ca.pem"], "--token-file",
                     str(tok), "--json", "sessions"]) == 0
    # Without the CA the daemon's certificate cannot be verified: exit 1, not a crash.
    assert ctl.main(["--address", d.tls, "--token-file", str(tok), "sessions"]) == 1
    good_request(d, certs)


# ---- bad clients ---------------------------------------------------------------------------
def test_plaintext_client_on_tls_port(start_daemon, tmp_path, certs):
    from metrics_util import metrics_port, scrape, value
    d = start_tls(start_daemon, tmp_path, certs, "--metrics-listen", "tcp://127.0.0.1:0")
    port = metrics_port(d)
    reason = dict(name="tensord_clients_disconnected_total", reason="tls")
    assert value(scrape(port), **reason) == 0
    with pytest.raises(Unavailable, match="closed"):
        tensord.Client(d.tcp, token=ALICE_TOKEN, timeout=10)
    assert handshake_failed_logged(d)
    assert "peer=127.0.0.1:" in d.stderr()
    # Counted under its own reason in the metrics.
    assert value(scrape(port), **reason) == 1
    good_request(d, certs)


@pytest.mark.parametrize("junk", [b"\x00" * 7, os.urandom(3000),
                                  b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                  b"\x16\x03\x01\x00\x05hello" + os.urandom(64)])
def test_garbage_bytes(start_daemon, tmp_path, certs, junk):
    d = start_tls(start_daemon, tmp_path, certs)
    s = raw_connect(d)
    s.sendall(junk)
    if len(junk) > 7:
        assert closed_by_server(s)
    s.close()
    good_request(d, certs)


def test_stalled_handshake_dropped_by_auth_timeout(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs, "--auth-timeout", "1")
    hello = client_hello()
    s = raw_connect(d)
    t0 = time.monotonic()
    s.sendall(hello[:len(hello) // 2])
    assert closed_by_server(s, timeout=10)
    waited = time.monotonic() - t0
    s.close()
    assert 0.8 <= waited < 5, waited
    assert "reason=auth-timeout" in d.stderr()
    good_request(d, certs)


def test_client_closes_mid_handshake(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs)
    for _ in range(5):
        s = raw_connect(d)
        s.sendall(client_hello())
        s.settimeout(10)
        first = s.recv(5)                  # the ServerHello record starts
        assert first[:1] == b"\x16", first
        s.close()
    s = raw_connect(d)                      # and one that closes before sending anything
    s.close()
    good_request(d, certs)


def test_wrong_ca_and_wrong_host(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs)
    with pytest.raises(TensordError, match="CERTIFICATE_VERIFY_FAILED"):
        tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["otherca.pem"])
    with pytest.raises(TensordError, match="CERTIFICATE_VERIFY_FAILED"):
        tensord.Client(d.tls, token=ALICE_TOKEN)     # the system CAs do not know it
    # The name is checked: the certificate names 127.0.0.1 and localhost, not this.
    with pytest.raises(TensordError, match="CERTIFICATE_VERIFY_FAILED"):
        tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"],
                       tls_server_name="elsewhere.example")
    port = d.tcp.rsplit(":", 1)[1]
    good_request(d, certs)
    with tensord.Client(f"tls://localhost:{port}", token=ALICE_TOKEN,
                        tls_ca=certs["ca.pem"]) as c:
        assert c.user == "alice"

    (tmp_path / "wh").mkdir()
    d2 = start_tls(start_daemon, tmp_path / "wh", certs, cert="wronghost")
    with pytest.raises(TensordError, match="CERTIFICATE_VERIFY_FAILED"):
        tensord.Client(d2.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"])
    good_request(d2, certs, tls_server_name="elsewhere.example")


def test_mutual_tls(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs, "--tls-client-ca", certs["ca.pem"])
    with pytest.raises(TensordError):
        with tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"]) as c:
            c.stats()
    with pytest.raises(TensordError):
        with tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"],
                            tls_cert=certs["otherclient.pem"],
                            tls_key=certs["otherclient.key"]) as c:
            c.stats()
    assert handshake_failed_logged(d, 2)
    assert "client certificate" in d.stderr()
    good_request(d, certs, tls_cert=certs["client.pem"], tls_key=certs["client.key"])
    # A good certificate does not replace the token.
    with pytest.raises(Unauthenticated):
        tensord.Client(d.tls, token="wrong-token-0123456789", tls_ca=certs["ca.pem"],
                       tls_cert=certs["client.pem"], tls_key=certs["client.key"])


# ---- start-up errors -----------------------------------------------------------------------
def run_daemon(*args):
    return subprocess.run([TENSORD_BIN, "--listen", "tcp://127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=60)


def test_startup_errors(tmp_path, certs):
    cases = [
        (["--tls-cert", certs["server.pem"]], ["tls-cert", "without", "tls-key"]),
        (["--tls-key", certs["server.key"]], ["tls-key", "without", "tls-cert"]),
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", certs["server.key"]],
         ["missing.pem", "No such file"]),
        (["--tls-cert", certs["server.pem"], "--tls-key", str(tmp_path / "nokey.pem")],
         ["nokey.pem", "No such file"]),
        (["--tls-cert", certs["server.pem"], "--tls-key", certs["client.key"]],
         ["client.key", "does not match"]),
        (["--tls-cert", certs["server.key"], "--tls-key", certs["server.key"]],
         ["tls-cert", "server.key", "cannot load"]),
        (["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"],
          "--tls-min-version", "1.1"], ["tls-min-version", "1.1"]),
        (["--tls-client-ca", certs["ca.pem"]], ["tls-client-ca", "needs --tls-cert"]),
        (["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"],
          "--tls-client-ca", certs["server.key"]], ["tls-client-ca", "server.key"]),
        (["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"],
          "--tls-ciphers", "NO-SUCH-CIPHER"], ["tls-ciphers", "NO-SUCH-CIPHER"]),
    ]
    for args, words in cases:
        r = run_daemon(*args)
        assert r.returncode not in (0, None) and r.returncode > 0, (args, r.returncode, r.stderr)
        for w in words:
            assert w in r.stderr, (args, w, r.stderr)
        for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer"):
            assert mark not in r.stderr, r.stderr


def test_allow_remote_without_tls_warns(start_daemon, tmp_path):
    tokens = write_tokens(tmp_path)
    d = start_daemon("--allow-remote", "--token-file", tokens)
    assert "tokens and tensors travel in clear" in d.stderr()
    with tensord.Client(d.tcp, token=ALICE_TOKEN) as c:
        assert c.user == "alice"


def test_config_file_keys(start_daemon, tmp_path, certs):
    conf = tmp_path / "t.conf"
    conf.write_text(f"tls_cert: {certs['server.pem']}\ntls_key: {certs['server.key']}\n"
                    f"tls_client_ca: {certs['ca.pem']}\ntls_min_version: '1.3'\n")
    d = start_tls(start_daemon, tmp_path, certs, "--config", str(conf))
    assert "client_certificates=required" in d.stderr() and "min_version=1.3" in d.stderr()
    good_request(d, certs, tls_cert=certs["client.pem"], tls_key=certs["client.key"])


# ---- load: loop reads while workers write ------------------------------------------------
def test_concurrent_tls_clients_and_big_transfer(start_daemon, tmp_path, certs):
    d = start_tls(start_daemon, tmp_path, certs)
    errors = []
    runs = 200

    def small(i):
        try:
            with tensord.Client(d.tls, token=ALICE_TOKEN, tls_ca=certs["ca.pem"],
                                batch=1) as c:
                x = np.random.default_rng(i).standard_normal(16)
                t = c.upload(x)
                for k in range(runs):
                    (y,) = c.run_op("add", [t, float(k)])
                    got = c.download(y)
                    if not np.array_equal(got, x + k):
                        errors.append(f"client {i} run {k}: wrong result")
                        return
                    c.free(y)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {e!r}")

    def big():
        try:
            with tensord.Client(d.tls, token=BOB_TOKEN, tls_ca=certs["ca.pem"]) as c:
                a = np.random.default_rng(99).standard_normal(8 << 20)   # 64 MB
                for _ in range(2):
                    t = c.upload(a)
                    got = c.download(t)
                    if not np.array_equal(got, a):
                        errors.append("64 MB round trip differs")
                    c.free(t)
        except Exception as e:  # noqa: BLE001
            errors.append(f"big client: {e!r}")

    threads = [threading.Thread(target=small, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=big))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, errors
    good_request(d, certs)


def test_pipelined_big_replies_over_tls(start_daemon, tmp_path, certs, pb):
    """40 Gets of 1 MB and 40 small Runs sent before reading any reply: the daemon's output
    queue goes over --output-buffer-soft, SSL_write would block mid-record again and again and
    is retried from the queue (from a copy of a reply first offered from a worker's memory),
    while the loop and the worker share the SSL object."""
    from conftest import Client as RawClient, M_GET, M_HANDSHAKE, M_RUN
    d = start_tls(start_daemon, tmp_path, certs)
    c = RawClient(pb, d.tcp)
    ctx = tensord.client.make_tls_context(certs["ca.pem"])
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    try:
        c.call(M_HANDSHAKE, pb.HandshakeRequest(protocol_version=1, client_name="pytest",
                                                auth_token=ALICE_TOKEN))
        x = np.random.default_rng(3).standard_normal(128 * 1024)      # 1 MB
        c.put(1, x)
        expect = []
        for k in range(40):
            expect.append((M_GET, c.send_call(M_GET, pb.GetRequest(id=1)), None))
            cid = c.send_call(M_RUN, pb.RunRequest(nodes=[c.node("add", [1, 1], [100 + k])],
                                                   discard=[]))
            expect.append((M_RUN, cid, k))
        for method, cid, k in expect:
            reply, data = c.recv_reply(method, cid)
            assert reply.status.code == 0, reply.status.message
            if method == M_GET:
                np.testing.assert_array_equal(np.frombuffer(data, dtype=np.float64), x)
        np.testing.assert_array_equal(c.get(139), x + x)
    finally:
        c.close()
    good_request(d, certs)


def test_k8s_configmap_config(start_daemon, tmp_path, certs):
    """deploy/k8s/configmap.yaml's tensord.conf is accepted and turns TLS on; its paths (the
    mounted Secrets) and addresses are replaced by command-line flags, which override it."""
    import textwrap
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "deploy", "k8s", "configmap.yaml")) as f:
        lines = f.read().split("\n")
    # The block scalar under "tensord.conf: |": the indented lines that follow it.
    start = lines.index("  tensord.conf: |") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line)
    text = textwrap.dedent("\n".join(block))
    assert "tls_cert: /etc/tensord/tls/tls.crt" in text.split("\n")
    assert "tls_key: /etc/tensord/tls/tls.key" in text.split("\n")
    path = tmp_path / "k8s.conf"
    path.write_text(text)
    d = start_tls(start_daemon, tmp_path, certs, "--config", str(path),
                  "--metrics-listen", "tcp://127.0.0.1:0")
    assert "tls=on" in d.stderr()
    good_request(d, certs)
