"""Load: 64 concurrent clients (one user) each run TD_LOAD_GRAPHS graphs (default 200; the
issue's figure is 1000: the default; 100 against a sanitizer build) and check every
result, while a 65th client of another user measures the latency of a small request. No
result may be lost or wrong, and the probe's p99 under load must stay within 5x of its p99
against the idle daemon, measured in the same test.

The 64 clients run in a separate process (this file run as a script), one thread driving
every socket with a few graphs in flight each, so the probe's own timing does not share an
interpreter with them. Each graph is sum(x @ x) + g for the client's x and the graph's number g,
then a Get of the result (compared with NumPy) and a Free.
"""
import json
import os
import selectors
import statistics
import subprocess
import sys
import time

import numpy as np

from conftest import TENSORD_BIN


def sanitized(path):
    """Whether the daemon binary is an ASan or TSan build (several times slower)."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:
        return False
    return b"libtsan.so" in blob or b"libasan.so" in blob


CLIENTS = 64
GRAPHS = int(os.environ.get("TD_LOAD_GRAPHS", "100" if sanitized(TENSORD_BIN) else "1000"))
WINDOW = int(os.environ.get("TD_LOAD_WINDOW", "8"))  # graphs in flight per client
SIZE = 128       # x is SIZE x SIZE: a graph is a few tenths of a ms of the daemon's time
M_HANDSHAKE, M_PUT, M_GET, M_FREE, M_RUN = 1, 2, 3, 4, 5


def client_x(i):
    return np.random.default_rng(1000 + i).standard_normal((SIZE, SIZE))


class LoadClient:
    def __init__(self, pb, addr, token, idx, graphs):
        from conftest import Client
        self.c = Client(pb, addr)
        self.pb, self.idx, self.graphs = pb, idx, graphs
        self.c.call(M_HANDSHAKE, pb.HandshakeRequest(protocol_version=1, client_name="load",
                                                     auth_token=token))
        self.x = client_x(idx)
        self.want = (self.x @ self.x).sum()
        self.c.put(1, self.x)
        self.c.sock.setblocking(False)
        self.buf = bytearray()
        self.out = bytearray()
        self.expect = []          # (method, call_id, graph) in order
        self.sent = self.done = 0
        self.errors = []

    def queue_graph(self):
        g, c, pb = self.sent, self.c, self.pb
        nodes = [c.node("matmul", [1, 1], [2]), c.node("sum", [2], [3]),
                 c.node("scalar_tensor", [], [4], value=float(g)), c.node("add", [3, 4], [5])]
        for method, msg in ((M_RUN, pb.RunRequest(nodes=nodes, discard=[2, 3, 4])),
                            (M_GET, pb.GetRequest(id=5)), (M_FREE, pb.FreeRequest(ids=[5]))):
            cid = c.next_call
            c.next_call += 1
            self.out += c.frame(method, cid, msg.SerializeToString())
            self.expect.append((method, cid, g))
        self.sent += 1

    def fill(self):
        while self.sent < self.graphs and self.sent - self.done < WINDOW:
            self.queue_graph()

    def on_frame(self, method, cid, body, data):
        from conftest import DTYPE_TO_NP
        want_method, want_cid, g = self.expect.pop(0)
        if (method, cid) != (want_method, want_cid):
            self.errors.append(f"client {self.idx}: reply {method}/{cid}, "
                               f"expected {want_method}/{want_cid}")
            return
        reply = {M_RUN: self.pb.RunReply, M_GET: self.pb.GetReply,
                 M_FREE: self.pb.FreeReply}[method]()
        reply.ParseFromString(body)
        if reply.status.code != 0:
            self.errors.append(f"client {self.idx} graph {g}: {reply.status.message}")
        elif method == M_GET:
            got = np.frombuffer(data, dtype=DTYPE_TO_NP[reply.meta.dtype])
            want = self.want + g
            if got.shape != (1,) or not np.allclose(got, want, rtol=1e-9, atol=1e-9):
                self.errors.append(f"client {self.idx} graph {g}: wrong result")
        elif method == M_FREE:
            if reply.freed != 1:
                self.errors.append(f"client {self.idx} graph {g}: freed {reply.freed}")
            self.done += 1

    def parse(self):
        from conftest import HDR
        while len(self.buf) >= HDR.size:
            _, _, _, _, method, _, cid, blen, dlen = HDR.unpack_from(self.buf)
            end = HDR.size + blen + dlen
            if len(self.buf) < end:
                return
            body = bytes(self.buf[HDR.size:HDR.size + blen])
            data = bytes(self.buf[HDR.size + blen:end])
            del self.buf[:end]
            self.on_frame(method, cid, body, data)


def run_load(pb_dir, addr, token, graphs):
    """Drives CLIENTS clients to completion; prints a JSON summary."""
    # The clients stand in for other machines: on this one they must not take the CPU from
    # the daemon and the probe, so they get only what those leave.
    os.nice(19)
    sys.path.insert(0, pb_dir)
    import tensord_pb2 as pb
    clients = [LoadClient(pb, addr, token, i, graphs) for i in range(CLIENTS)]
    sel = selectors.DefaultSelector()
    for lc in clients:
        lc.fill()
        sel.register(lc.c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, lc)
    print("ready", flush=True)
    t0 = time.perf_counter()
    active = CLIENTS
    deadline = time.monotonic() + 1800
    while active and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=5):
            lc = key.data
            if ev & selectors.EVENT_WRITE and lc.out:
                try:
                    n = lc.c.sock.send(lc.out)
                    del lc.out[:n]
                except BlockingIOError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    chunk = lc.c.sock.recv(1 << 16)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    lc.errors.append(f"client {lc.idx}: connection closed")
                    lc.done = graphs
                elif chunk:
                    lc.buf += chunk
                    lc.parse()
                    lc.fill()
            if lc.done >= graphs:
                sel.unregister(lc.c.sock)
                active -= 1
            else:
                sel.modify(lc.c.sock, selectors.EVENT_READ |
                           (selectors.EVENT_WRITE if lc.out else 0), lc)
    elapsed = time.perf_counter() - t0
    errors = [e for lc in clients for e in lc.errors]
    print(json.dumps({"graphs_done": sum(lc.done for lc in clients), "errors": errors[:20],
                      "nerrors": len(errors), "seconds": elapsed, "unfinished": active}),
          flush=True)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def probe(c):
    t0 = time.perf_counter()
    r = c.run([c.node("add", [1, 2], [3])], discard=[3])
    dt = time.perf_counter() - t0
    assert r.status.code == 0
    return dt


def test_64_clients_no_lost_results_and_probe_latency(start_daemon, tmp_path, pb):
    from authutil import ALICE_TOKEN, BOB_TOKEN, client, handshake, write_tokens
    d = start_daemon("--threads", "2", "--token-file", write_tokens(tmp_path),
                     *os.environ.get("TD_LOAD_DAEMON_ARGS", "").split())
    b = client(pb, d.tcp)
    handshake(b, BOB_TOKEN)
    b.put(1, np.arange(4, dtype=np.float32))
    b.put(2, np.ones(4, dtype=np.float32))
    for _ in range(20):
        probe(b)
    # Idle p99, paced like the loaded samples below.
    idle = []
    for _ in range(300):
        idle.append(probe(b))
        time.sleep(0.002)
    gen = subprocess.Popen(
        [sys.executable, __file__, os.path.dirname(pb.__file__), d.tcp, ALICE_TOKEN,
         str(GRAPHS)], stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)))
    try:
        assert gen.stdout.readline().strip() == "ready"
        loaded = []
        while gen.poll() is None:
            loaded.append(probe(b))
            time.sleep(0.002)
        summary = json.loads(gen.stdout.read().strip().splitlines()[-1])
    finally:
        if gen.poll() is None:
            gen.kill()
        gen.wait()
    assert gen.returncode == 0
    print(f"\nload: {CLIENTS} clients x {GRAPHS} graphs in {summary['seconds']:.2f} s "
          f"({CLIENTS * GRAPHS / summary['seconds']:.0f} graphs/s); probe idle p50 "
          f"{statistics.median(idle) * 1e3:.3f} ms p99 {p99(idle) * 1e3:.3f} ms; loaded p50 "
          f"{statistics.median(loaded) * 1e3:.3f} ms p99 {p99(loaded) * 1e3:.3f} ms "
          f"({len(loaded)} samples)")
    assert summary["nerrors"] == 0, summary["errors"]
    assert summary["unfinished"] == 0
    assert summary["graphs_done"] == CLIENTS * GRAPHS
    assert len(loaded) >= 50, "too few probe samples under load"
    # Within 5x of the idle p99. The idle p99 counts as at least 2 ms (5 ms for a sanitizer
    # build, whose loop thread parses the 64 clients' frames several times slower): on this
    # 2-core machine, shared with other builds, waking the probe's worker while the loop and
    # another worker hold both cores takes up to a scheduler time slice (a few ms) however
    # the daemon schedules. A starved probe waits behind other sessions' queues instead:
    # with --fair-scheduling 0 its p99 here is 30-50 ms (normal build).
    floor = 0.005 if sanitized(TENSORD_BIN) else 0.002
    bound = 5 * max(p99(idle), floor)
    assert p99(loaded) <= bound, (p99(idle), p99(loaded))
    # The probe's session works and its data is intact.
    b.run([b.node("add", [1, 2], [4])])
    np.testing.assert_array_equal(b.get(4), np.arange(4, dtype=np.float32) + 1)
    b.close()


if __name__ == "__main__":
    run_load(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
