"""Faults: client processes killed with SIGKILL while holding tensors.

Each cycle forks a client process that authenticates as bob, uploads 100 tensors (every
Put acknowledged), then pipelines a Run and the first chunk of an upload, and is killed with
SIGKILL. Within 1 s the daemon must have freed everything: Stats (as admin) shows 0 bytes
and only the watcher's session. At the end bob's quota is set to exactly what 100 tensors
need: a new session must fit 100 tensors and be refused the 101st, so the user's byte and
tensor counts did not drift by a single byte or id; the metrics show 0 bytes for bob, and
a good request of another user is served.

TD_FAULT_CYCLES sets the number of cycles (default 150, about 15 s here; the issue's figure
is 1000, see docs/SECURITY.md)."""
import os
import signal
import socket
import time

import numpy as np

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, M_SET_QUOTA, client, handshake,
                      write_tokens)
from conftest import HDR, M_HANDSHAKE, M_PUT, M_RUN, MAGIC, OK, RESOURCE_EXHAUSTED, Client
from metrics_util import metrics_port, scrape, value

CYCLES = int(os.environ.get("TD_FAULT_CYCLES", "150"))
NTENSORS = 100


def sizes():
    """Element counts of the 100 float32 tensors: 1 to 2000, fixed."""
    return [1 + (i * 397) % 2000 for i in range(NTENSORS)]


def client_frames(pb):
    """The killed client's requests, encoded before the fork."""
    hs = pb.HandshakeRequest(protocol_version=1, client_name="doomed", auth_token=BOB_TOKEN)
    puts = [Client.frame(M_HANDSHAKE, 1, hs.SerializeToString())]
    for i, n in enumerate(sizes()):
        body = pb.PutRequest(id=i + 1, dtype=8, shape=[n]).SerializeToString()
        puts.append(Client.frame(M_PUT, 2 + i, body, np.full(n, i, np.float32).tobytes()))
    run = pb.RunRequest(nodes=[pb.Node(op="add", inputs=[1, 2], outputs=[500])])
    tail = Client.frame(M_RUN, 900, run.SerializeToString())
    part = pb.PutRequest(id=600, dtype=8, shape=[1 << 16]).SerializeToString()
    tail += Client.frame(M_PUT, 901, part, b"\x07" * 4096, data_len=1 << 18)
    return b"".join(puts), len(puts), tail


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def child(pb, addr, frames, nreplies, tail, wfd):
    """Runs in the forked process: never returns."""
    try:
        if addr.startswith("tcp://"):
            host, port = addr[6:].rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=30)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(addr[7:])
        s.sendall(frames)
        ok = 0
        for _ in range(nreplies):
            magic, _, _, _, _, _, _, blen, dlen = HDR.unpack(recv_exact(s, HDR.size))
            er = pb.ErrorReply()
            er.ParseFromString(recv_exact(s, blen))
            recv_exact(s, dlen)
            ok += magic == MAGIC and er.status.code == OK
        s.sendall(tail)
        os.write(wfd, b"k" if ok == nreplies else b"e")
        time.sleep(60)          # holding the tensors until the parent's SIGKILL
    except BaseException:       # noqa: BLE001 - the parent sees the missing byte
        pass
    os._exit(1)


def test_sigkill_cycles_free_everything(start_daemon, tmp_path, pb):
    d = start_daemon("--threads", "2", "--token-file", write_tokens(tmp_path),
                     "--metrics-listen", "tcp://127.0.0.1:0")
    port = metrics_port(d)
    frames, nreplies, tail = client_frames(pb)
    need = sum(sizes()) * 4
    w = client(pb, d.unix)
    assert handshake(w, ADMIN_TOKEN).role == "admin"
    assert w.stats().server_bytes == 0
    worst = 0.0
    t_start = time.monotonic()
    for cycle in range(CYCLES):
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            child(pb, d.tcp if cycle % 2 else d.unix, frames, nreplies, tail, wfd)
        os.close(wfd)
        with os.fdopen(r, "rb") as rf:
            verdict = rf.read(1)
        assert verdict == b"k", f"cycle {cycle}: the client's puts failed ({verdict!r})"
        s = w.stats()
        assert s.server_bytes >= need, f"cycle {cycle}: {s.server_bytes} < {need}"
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        os.waitpid(pid, 0)
        while True:
            s = w.stats()
            if s.server_bytes == 0 and s.server_sessions == 1:
                break
            assert time.monotonic() - t_kill < 1.0, \
                f"cycle {cycle}: not freed within 1 s: {s}"
            time.sleep(0.002)
        worst = max(worst, time.monotonic() - t_kill)
    elapsed = time.monotonic() - t_start
    print(f"\n{CYCLES} SIGKILL cycles in {elapsed:.1f} s; slowest release {worst * 1e3:.1f} ms")

    # zero drift: bob's quota set to exactly 100 tensors of these sizes
    w.call(M_SET_QUOTA, pb.SetQuotaRequest(user="bob", max_bytes=need, max_tensors=NTENSORS))
    b = client(pb, d.tcp)
    handshake(b, BOB_TOKEN)
    for i, n in enumerate(sizes()):
        b.put(i + 1, np.full(n, i, np.float32))
    code, msg = b.error_of(M_PUT, pb.PutRequest(id=1000, dtype=1, shape=[1]), b"\x01")
    assert code == RESOURCE_EXHAUSTED and "bob" in msg, msg
    np.testing.assert_array_equal(b.get(100), np.full(sizes()[99], 99, np.float32))
    b.close()
    deadline = time.monotonic() + 1.0
    while w.stats().server_bytes != 0:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    samples = scrape(port)
    assert value(samples, "tensord_user_bytes", user="bob") == 0
    # another user is served
    a = client(pb, d.unix)
    handshake(a, ALICE_TOKEN)
    x = np.arange(10, dtype=np.float64)
    a.put(1, x)
    a.run([a.node("mul", [1, 1], [2])])
    np.testing.assert_array_equal(a.get(2), x * x)
    assert a.stats().status.code == OK
    a.close()
    w.close()
