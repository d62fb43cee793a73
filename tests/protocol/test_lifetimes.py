"""Connection and request lifetimes: --idle-timeout (a silent session is dropped and freed; a
request is a ping; work in flight is not silence), --auth-timeout, --read-timeout (slow
senders), Run deadlines (deadline_ms) and Cancel. See docs/PROTOCOL.md "Timeouts" and
"Deadlines and cancellation".
"""
import socket
import threading
import time

import numpy as np
import pytest

from conftest import (M_HANDSHAKE, M_PUT, M_RUN, M_STATS, NOT_FOUND, OK, Client, RpcError,
                      good_request)
from metrics_util import metrics_port, scrape, value

M_CANCEL = 14
CANCELLED, DEADLINE_EXCEEDED = 1, 4
DISC = "tensord_clients_disconnected_total"

# One sum over XN float32 elements is some milliseconds of work (a fast machine fills 2.5 s
# with fewer than 4096 of them); a chain of them is a graph
# that runs for seconds while holding almost no memory (each output is a scalar).
XN = 1 << 23
X_BYTES = XN * 4


def client(pb, addr):
    c = Client(pb, addr)
    c.reply_types[M_CANCEL] = pb.CancelReply
    return c


def put_x(c):
    x = np.ones(XN, dtype=np.float32)
    c.put(1, x)


def chain(c, n, first=100):
    return [c.node("sum", [1], [first + i]) for i in range(n)]


def run_req(c, n, deadline_ms=0):
    return c.pb.RunRequest(nodes=chain(c, n), deadline_ms=deadline_ms)


def node_seconds(c):
    """Measured seconds per sum node (20 nodes, best of 2), with the outputs freed again."""
    best = None
    for _ in range(2):
        t0 = time.monotonic()
        c.run(chain(c, 20))
        dt = (time.monotonic() - t0) / 20
        c.free(range(100, 120))
        best = dt if best is None else min(best, dt)
    return best


def long_chain_len(c, seconds, cap):
    n = int(seconds / node_seconds(c)) + 1
    assert n <= cap, f"sum is too fast to fill {seconds} s with {cap} nodes"
    return max(n, 50)


def wait_eof(sock, limit):
    """Seconds until the server closed sock (None: still open after `limit`)."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        got = sock.recv(1)
    except socket.timeout:
        return None
    except ConnectionResetError:
        got = b""
    assert got == b"", f"unexpected byte {got!r} from the server"
    return time.monotonic() - t0


def disconnects(d, reason):
    return value(scrape(d.metrics), DISC, reason=reason)


@pytest.fixture
def tdaemon(start_daemon):
    def start(*args):
        d = start_daemon("--threads", "2", "--metrics-listen", "tcp://127.0.0.1:0", *args)
        d.metrics = metrics_port(d)
        return d
    return start


# ---- idle timeout

def test_silent_session_is_dropped_and_freed(tdaemon, pb):
    d = tdaemon("--idle-timeout", "1")
    silent = client(pb, d.tcp)
    silent.handshake()
    silent.put(1, np.arange(1000, dtype=np.float64))
    t_silent = time.monotonic()
    pinger = client(pb, d.unix)
    pinger.handshake()
    st = pinger.stats()
    assert st.server_sessions == 2 and st.server_bytes == 8000
    # The pinger sends a cheap request every 0.3 s and outlives the silent one.
    eof_at = None
    silent.sock.setblocking(False)
    while time.monotonic() - t_silent < 3.5:
        pinger.stats()
        try:
            if silent.sock.recv(1) == b"" and eof_at is None:
                eof_at = time.monotonic() - t_silent
        except BlockingIOError:
            pass
        except ConnectionResetError:
            eof_at = eof_at or time.monotonic() - t_silent
        time.sleep(0.3)
    assert eof_at is not None, "the silent session was not dropped"
    assert 0.9 <= eof_at <= 2.8, eof_at
    st = pinger.stats()
    assert st.server_sessions == 1 and st.server_bytes == 0 and st.session_bytes == 0
    assert disconnects(d, "idle-timeout") == 1
    good_request(pb, d.tcp)
    assert "reason=idle-timeout" in d.stderr()


def test_work_in_flight_is_not_silence(tdaemon, pb):
    d = tdaemon("--idle-timeout", "1")
    c = client(pb, d.tcp)
    c.handshake()
    put_x(c)
    n = long_chain_len(c, 2.5, 4096)
    t0 = time.monotonic()
    r = c.run(chain(c, n))   # silent for longer than the timeout, but busy
    assert time.monotonic() - t0 > 1.5
    assert len(r.outputs) == n
    assert float(c.get(100 + n - 1)) == XN
    assert disconnects(d, "idle-timeout") == 0
    c.close()


# ---- auth timeout

def test_unauthenticated_connection_times_out(tdaemon, pb):
    d = tdaemon("--auth-timeout", "1")
    raw = socket.create_connection(("127.0.0.1", int(d.tcp.rsplit(":", 1)[1])))
    ok = client(pb, d.unix)
    ok.handshake()
    t = wait_eof(raw, 5)
    assert t is not None and 0.9 <= t <= 2.5, t
    raw.close()
    assert disconnects(d, "auth-timeout") == 1
    # The handshaken client outlives its auth timeout.
    time.sleep(1.2)
    assert ok.stats().server_sessions == 1


# ---- read timeout: slow senders

def trickle(sock, data, period, stop):
    for b in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([b]))
        except OSError:
            return
        time.sleep(period)


@pytest.mark.parametrize("where", ["header", "data"])
def test_slow_sender_is_dropped(tdaemon, pb, where):
    d = tdaemon("--read-timeout", "1")
    slow = client(pb, d.tcp)
    slow.handshake()
    x = np.arange(64, dtype=np.float32)
    frame = Client.frame(M_PUT, 99, pb.PutRequest(id=5, dtype=8, shape=[64]).SerializeToString(),
                         x.tobytes())
    stop = threading.Event()
    if where == "header":
        # One byte every 0.25 s: never silent for a second, but the frame takes 20 s.
        th = threading.Thread(target=trickle, args=(slow.sock, frame, 0.25, stop))
    else:
        # Header, body and 10 data bytes at once, then one byte every 1.5 s.
        k = len(frame) - x.nbytes + 10
        slow.send_raw(frame[:k])
        th = threading.Thread(target=trickle, args=(slow.sock, frame[k:], 1.5, stop))
    t0 = time.monotonic()
    th.start()
    try:
        good_request(pb, d.unix)   # served meanwhile
        t = wait_eof(slow.sock, 6)
    finally:
        stop.set()
        th.join()
    assert t is not None, "the slow sender was not dropped"
    assert 0.9 <= time.monotonic() - t0 <= 4.0
    assert disconnects(d, "read-timeout") == 1
    other = client(pb, d.tcp)
    other.handshake()
    st = other.stats()
    assert st.server_sessions == 1 and st.server_bytes == 0


def test_patient_sender_within_timeouts(tdaemon, pb):
    """A frame sent in pieces, each well within the timeouts, is served."""
    d = tdaemon("--read-timeout", "2", "--idle-timeout", "2")
    c = client(pb, d.tcp)
    c.handshake()
    x = np.arange(6, dtype=np.float32)
    frame = Client.frame(M_PUT, 7, pb.PutRequest(id=3, dtype=8, shape=[6]).SerializeToString(),
                         x.tobytes())
    for i in range(0, len(frame), len(frame) // 3 + 1):
        c.send_raw(frame[i:i + len(frame) // 3 + 1])
        time.sleep(0.5)
    reply, _ = c.recv_reply(M_PUT, 7)
    assert reply.status.code == OK
    np.testing.assert_array_equal(c.get(3), x)
    assert disconnects(d, "read-timeout") == 0


def test_long_node_holding_the_reader_is_not_a_slow_sender(tdaemon, pb):
    """While a worker runs one long node nobody reads the connection: a frame the client
    already began sending must not count as slow."""
    d = tdaemon("--read-timeout", "1")
    c = client(pb, d.tcp)
    c.handshake()
    c.put(1, np.ones([1], dtype=np.float64))   # float64: the count is exact

    def one_long_node(n, out):
        # expand is a view (instant); the sum over n stride-0 elements is one long node.
        return c.pb.RunRequest(nodes=[c.node("expand", [1], [out], shape=[n]),
                                      c.node("sum", [out], [out + 1])], discard=[out])
    t0 = time.monotonic()
    c.call(M_RUN, one_long_node(1 << 24, 10))
    per_elem = (time.monotonic() - t0) / (1 << 24)
    n = min(int(2.5 / per_elem), 1 << 34)
    stats = Client.frame(M_STATS, 99, b"")
    c.send_raw(Client.frame(M_RUN, 98, one_long_node(n, 20).SerializeToString()) + stats[:20])
    t0 = time.monotonic()
    r, _ = c.recv_reply(M_RUN, 98)
    assert r.status.code == OK, r.status.message
    assert time.monotonic() - t0 > 1.5, "the node was too short to test anything"
    c.send_raw(stats[20:])
    st, _ = c.recv_reply(M_STATS, 99)
    assert st.status.code == OK
    assert float(c.get(21)) == float(n)
    assert disconnects(d, "read-timeout") == 0


# ---- deadlines

def test_deadline_stops_a_long_graph(tdaemon, pb):
    d = tdaemon("--max-graph-nodes", "100000")
    c = client(pb, d.tcp)
    c.handshake()
    put_x(c)
    base = c.stats()
    assert base.session_bytes == X_BYTES and base.session_tensors == 1
    n = long_chain_len(c, 6.0, 100000)
    t0 = time.monotonic()
    code, msg = c.error_of(M_RUN, run_req(c, n, deadline_ms=300))
    dt = time.monotonic() - t0
    assert code == DEADLINE_EXCEEDED, msg
    assert "deadline_ms 300 exceeded" in msg and "rolled back" in msg
    assert 0.29 <= dt < 2.0, dt
    # Rolled back: no output id survives, memory back to the baseline.
    st = c.stats()
    assert st.session_bytes == X_BYTES and st.session_tensors == 1
    assert c.error_of(3, pb.GetRequest(id=100))[0] == NOT_FOUND
    # The session still works, and a deadline that is long enough changes nothing.
    r = c.run(chain(c, 3))
    assert [o.id for o in r.outputs] == [100, 101, 102]
    assert float(c.get(102)) == XN
    r = c.call(M_RUN, c.pb.RunRequest(nodes=[c.node("sum", [1], [200])], deadline_ms=60000))[0]
    assert [o.id for o in r.outputs] == [200]


def test_deadline_counts_time_queued(tdaemon, pb):
    """A Run queued behind a long one misses a deadline shorter than its wait: it fails before
    node 0 without running."""
    d = tdaemon("--max-graph-nodes", "100000")
    c = client(pb, d.tcp)
    c.handshake()
    put_x(c)
    n = long_chain_len(c, 1.5, 100000)
    a = c.send_call(M_RUN, run_req(c, n))
    b = c.send_call(M_RUN, c.pb.RunRequest(nodes=[c.node("sum", [1], [900000])],
                                            deadline_ms=200))
    ra, _ = c.recv_reply(M_RUN, a)
    assert ra.status.code == OK
    rb, _ = c.recv_reply(M_RUN, b)
    assert rb.status.code == DEADLINE_EXCEEDED
    assert "before node 0 of 1" in rb.status.message
    assert c.error_of(3, pb.GetRequest(id=900000))[0] == NOT_FOUND


# ---- cancel

def cancel(c, call_id):
    return c.send_call(M_CANCEL, c.pb.CancelRequest(call_id=call_id))


def test_cancel_running_graph(tdaemon, pb):
    d = tdaemon("--max-graph-nodes", "100000")
    c = client(pb, d.tcp)
    c.handshake()
    put_x(c)
    base = c.stats()
    n = long_chain_len(c, 8.0, 100000)
    rid = c.send_call(M_RUN, run_req(c, n))
    time.sleep(0.5)
    t0 = time.monotonic()
    cid = cancel(c, rid)
    r, _ = c.recv_reply(M_RUN, rid)
    dt = time.monotonic() - t0
    assert r.status.code == CANCELLED, r.status.message
    assert f"cancelled (call {rid})" in r.status.message
    assert dt < 2.0, dt
    cr, _ = c.recv_reply(M_CANCEL, cid)
    assert cr.status.code == OK and cr.cancelled
    st = c.stats()
    assert st.session_bytes == base.session_bytes and st.session_tensors == 1
    assert c.error_of(3, pb.GetRequest(id=100))[0] == NOT_FOUND
    # Nothing left to cancel: the reply says so; the session still computes.
    cr, _ = c.call(M_CANCEL, pb.CancelRequest(call_id=rid))
    assert cr.status.code == OK and not cr.cancelled
    r = c.run(chain(c, 2))
    assert float(c.get(101)) == XN
    good_request(pb, d.unix)


def test_cancel_queued_graph(tdaemon, pb):
    d = tdaemon("--max-graph-nodes", "100000")
    c = client(pb, d.tcp)
    c.handshake()
    put_x(c)
    n = long_chain_len(c, 4.0, 100000)
    a = c.send_call(M_RUN, run_req(c, n))
    b = c.send_call(M_RUN, c.pb.RunRequest(nodes=[c.node("sum", [1], [900000])]))
    time.sleep(0.3)
    cb = cancel(c, b)
    ca = cancel(c, a)
    ra, _ = c.recv_reply(M_RUN, a)
    rb, _ = c.recv_reply(M_RUN, b)
    assert ra.status.code == CANCELLED and rb.status.code == CANCELLED
    assert "before node 0 of 1" in rb.status.message
    for cid in (cb, ca):
        cr, _ = c.recv_reply(M_CANCEL, cid)
        assert cr.status.code == OK and cr.cancelled
    st = c.stats()
    assert st.session_bytes == X_BYTES and st.session_tensors == 1


def test_cancel_needs_handshake(tdaemon, pb):
    d = tdaemon()
    c = client(pb, d.tcp)
    with pytest.raises(RpcError):
        c.call(M_CANCEL, pb.CancelRequest(call_id=1))


def test_killed_session_stops_its_graph(tdaemon, pb):
    """KillSession (and every close the daemon decides) stops a long graph before its next
    node: the memory comes back long before the graph would have ended."""
    d = tdaemon("--max-graph-nodes", "100000")
    victim = client(pb, d.tcp)
    hs = victim.handshake()
    put_x(victim)
    n = long_chain_len(victim, 8.0, 100000)
    victim.send_call(M_RUN, run_req(victim, n))
    adm = client(pb, d.unix)   # without a token file every client is the local admin
    adm.handshake()
    adm.reply_types[9] = pb.KillSessionReply
    time.sleep(0.5)
    t0 = time.monotonic()
    adm.call(9, pb.KillSessionRequest(session_id=hs.session_id))
    assert wait_eof(victim.sock, 5) is not None
    while adm.stats().server_sessions != 1:
        assert time.monotonic() - t0 < 3.0, "the killed session's graph ran on"
        time.sleep(0.05)
    assert adm.stats().server_bytes == 0
