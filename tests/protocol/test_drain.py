"""Draining: SIGTERM (or td_server_drain) stops the daemon gracefully.

The rules (docs/OPERATIONS.md, "Stopping, draining and upgrading"): once a drain starts the
listeners close (new connections are refused), requests that reach the daemon from then on
are answered UNAVAILABLE (Stats and the admin/health methods still run), the requests that
had reached it before (parsed, or still waiting in the socket behind a running graph) run
and are answered, then the daemon closes every connection (clients see EOF) and exits 0.
After --drain-timeout seconds the connections still busy are closed anyway.
"""
import os
import signal
import socket
import time

import numpy as np
import pytest

from conftest import M_GET, M_RUN, OK, Client
from metrics_util import histogram, http_get, metrics_port, scrape, value

UNAVAILABLE = 14
N = 700          # matmul size: about 0.1 s per product on one core
NCONN = 5        # connections, two graphs each: 10 graphs in flight
CHAIN = 3        # matmuls per graph


def wait_for(cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def chain_nodes(c, a_id, b_id, first_out):
    """a @ b @ b @ b: CHAIN products; returns (nodes, final id)."""
    nodes, cur = [], a_id
    for k in range(CHAIN):
        out = first_out + k
        nodes.append(c.node("matmul", [cur, b_id], [out]))
        cur = out
    return nodes, cur


def test_sigterm_drains_in_flight_graphs(start_daemon, pb):
    d = start_daemon("--threads", "2", "--compute-threads", "1",
                     "--metrics-listen", "tcp://127.0.0.1:0")
    port = metrics_port(d)
    rng = np.random.default_rng(11)
    clients, expect = [], []
    for i in range(NCONN):
        c = Client(pb, d.tcp if i % 2 == 0 else d.unix, timeout=120)
        clients.append(c)
        c.handshake()
        a = rng.standard_normal((N, N)) / np.sqrt(N)
        b = rng.standard_normal((N, N)) / np.sqrt(N)
        c.put(1, a)
        c.put(2, b)
        ref = a
        refs = []
        for _ in range(CHAIN):
            ref = ref @ b
        refs.append(ref)
        ref2 = b
        for _ in range(CHAIN):
            ref2 = ref2 @ b
        refs.append(ref2)
        expect.append(refs)
    late = Client(pb, d.tcp, timeout=60)       # an open, idle connection
    late.handshake()

    code, _, body = http_get(port, path="/healthz")
    assert (code, body) == (200, b"serving\n")
    base = scrape(port)
    base_runs = histogram(base, "tensord_request_duration_seconds", method="Run")[2]
    # Pipeline Run + Get twice on every connection, without reading.
    pending = []
    for c in clients:
        calls = []
        for g, (src, first) in enumerate(((1, 10), (2, 20))):
            nodes, final = chain_nodes(c, src, 2, first)
            req = pb.RunRequest(nodes=nodes)
            calls.append(("run", c.send_call(M_RUN, req)))
            calls.append(("get", c.send_call(M_GET, pb.GetRequest(id=final))))
        pending.append(calls)
    # The frames are in the daemon's sockets (loopback sends complete at once), though most
    # wait unparsed behind running graphs: they were sent before the drain, so they run.
    before = scrape(port)
    runs_done = histogram(before, "tensord_request_duration_seconds", method="Run")[2] - base_runs
    # Graphs are still running when SIGTERM arrives: the drain must wait for them.
    assert runs_done < 2 * NCONN, "all graphs finished before SIGTERM: make the work bigger"
    d.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: value(scrape(port), "tensord_draining") == 1, "the drain to start")
    assert http_get(port, path="/healthz")[0] == 503

    # New connections are refused: the listeners are closed, the Unix socket removed.
    host, tport = d.tcp[6:].rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(tport)), timeout=5).close()
    assert not os.path.exists(d.unix[7:])

    # A new request on an open connection: UNAVAILABLE, naming the drain.
    code, msg = late.error_of(M_RUN, pb.RunRequest(nodes=[late.node("add", [1, 1], [2])]))
    assert code == UNAVAILABLE
    assert "draining" in msg and "Run" in msg
    # Stats still answers during the drain (admin and health calls do too).
    assert late.stats().status.code == OK

    # Every request received before the drain is answered, with the right result.
    for c, calls, refs in zip(clients, pending, expect):
        for g in range(2):
            (_, run_id), (_, get_id) = calls[2 * g], calls[2 * g + 1]
            r, _ = c.recv_reply(M_RUN, run_id)
            assert r.status.code == OK, r.status.message
            g_reply, data = c.recv_reply(M_GET, get_id)
            assert g_reply.status.code == OK, g_reply.status.message
            got = np.frombuffer(data, dtype=np.float64).reshape(N, N)
            np.testing.assert_allclose(got, refs[g], rtol=1e-9, atol=1e-9)

    # Then the daemon closes every connection and exits 0.
    for c in clients + [late]:
        assert c.at_eof(timeout=30), "connection still open after the drain"
    rc = d.proc.wait(timeout=60)
    assert rc == 0, d.stderr()
    err = d.stderr()
    assert 'msg="draining"' in err and "SIGTERM (drained)" in err
    for c in clients + [late]:
        c.close()


def test_drain_timeout_closes_stuck_clients(start_daemon, pb):
    """A client that never reads a large reply cannot hold the drain past --drain-timeout."""
    d = start_daemon("--threads", "2", "--drain-timeout", "1")
    c = Client(pb, d.tcp, timeout=30)
    c.handshake()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = np.zeros(16 << 20, dtype=np.uint8)            # 16 MiB: far beyond socket buffers
    c.put(1, big)
    for _ in range(4):
        c.send_call(M_GET, pb.GetRequest(id=1))         # replies left unread
    time.sleep(0.5)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=30)
    took = time.monotonic() - t0
    assert rc == 0, d.stderr()
    assert 0.9 <= took < 10, f"drain took {took:.2f}s with --drain-timeout 1"
    assert 'msg="drain timed out" busy_connections=1' in d.stderr()
    c.close()


def test_second_sigterm_stops_at_once(start_daemon, pb):
    d = start_daemon("--threads", "1", "--drain-timeout", "0")
    c = Client(pb, d.tcp, timeout=30)
    c.handshake()
    c.put(1, np.zeros(16 << 20, dtype=np.uint8))
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(4):
        c.send_call(M_GET, pb.GetRequest(id=1))         # keeps the drain waiting forever
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None, "the drain ended although a reply was still unsent"
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    assert "SIGTERM (second)" in d.stderr()
    c.close()


def test_idle_daemon_stops_promptly(start_daemon, pb):
    d = start_daemon("--threads", "2")
    c = Client(pb, d.unix)
    c.handshake()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    assert time.monotonic() - t0 < 5
    assert c.at_eof()
    c.close()
