"""Slow readers: what the daemon buffers for a client that does not read its replies.

The rules (docs/PROTOCOL.md, "Slow readers"): above --output-buffer-soft unsent reply bytes
the daemon stops reading a connection's requests until the client catches up; above
--output-buffer-hard, or above the soft limit for --output-buffer-soft-seconds, it
disconnects the client and frees its session. Every test ends with a good request from a
second client.
"""
import os
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import (HDR, M_GET, M_RUN, M_STATS, OK, TENSORD_BIN, Client, good_request)

SOFT = 65536
HARD = 1 << 20
LIMITS = ("--output-buffer-soft", str(SOFT), "--output-buffer-hard", str(HARD))
TD_QUEUE_HIGH = 1024     # server.h: jobs queued per connection before reading pauses
TD_INBUF_SIZE = 65536    # server.h: one read of the input buffer


@pytest.fixture(autouse=True)
def small_asan_quarantine(monkeypatch):
    """Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) and
    counts in RSS; keep it small so RSS measures what the daemon holds. No effect on a
    build without ASan."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (opts + ":" if opts else "") + "quarantine_size_mb=4")


def vm_rss(pid):
    """The process's resident set size in bytes, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def wait_for(cond, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def session_freed(watcher, base):
    """Waits until only the watcher's session is left and the server holds base's bytes."""
    def done():
        s = watcher.stats()
        ok = s.server_sessions == base.server_sessions and s.server_bytes == base.server_bytes
        return s if ok else None
    return wait_for(done, "the slow client's session to be freed")


def read_until_eof(sock, timeout=20.0):
    """Reads what the server sent until it closed the connection. Returns the bytes."""
    sock.settimeout(timeout)
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def split_frames(buf):
    """Splits complete response frames: [(method, call_id, body, data_len)], leftover bytes."""
    frames, pos = [], 0
    while len(buf) - pos >= HDR.size:
        _, _, _, _, method, _, cid, blen, dlen = HDR.unpack_from(buf, pos)
        end = pos + HDR.size + blen + dlen
        if end > len(buf):
            break
        frames.append((method, cid, buf[pos + HDR.size:pos + HDR.size + blen], dlen))
        pos = end
    return frames, buf[pos:]


def slow_log_lines(daemon):
    return [l for l in daemon.stderr().splitlines() if "slow client disconnected" in l]


# ---------------------------------------------------------------------------------------
# (1) Backpressure: a client pipelines many small Runs without reading. The daemon stops
# reading its requests (the client's send blocks), its output queue and RSS stay bounded,
# and once the client reads, every reply arrives in order.

def test_pipelined_runs_without_reading_are_bounded(start_daemon, connect, pb):
    d = start_daemon("--threads", "2", *LIMITS)
    watcher = connect(d.tcp)
    watcher.handshake()
    c = connect(d.unix)
    c.handshake()
    a = np.arange(4, dtype=np.float32)
    c.put(1, a)
    c.put(2, a)
    rss0 = vm_rss(d.proc.pid)

    # Plan-only Runs whose output id encodes the call: reply i must list id OUT0 + i.
    n = 300000
    out0, cid0 = 1 << 21, 1 << 22
    reqs = []
    for i in range(n):
        req = pb.RunRequest(nodes=[c.node("add", [1, 2], [out0 + i])], plan_only=True)
        reqs.append(Client.frame(M_RUN, cid0 + i, req.SerializeToString()))
    req_len = min(len(r) for r in reqs)
    stream = b"".join(reqs)
    del reqs

    send_error = []

    def sender():
        try:
            c.sock.sendall(stream)
        except OSError as e:       # recorded, reported by the main thread
            send_error.append(e)

    c.sock.settimeout(120)
    t = threading.Thread(target=sender, daemon=True)
    t.start()

    # Wait until the daemon has stopped making progress on this session: calls_total, less
    # the watcher's own Stats calls, stays put while the sender is still blocked in sendall.
    last, stable_since, peak_out, polls = -1, time.monotonic(), 0, 0
    deadline = time.monotonic() + 60
    while True:
        s = watcher.stats()
        polls += 1
        peak_out = max(peak_out, s.server_output_bytes)
        if s.calls_total - polls != last:
            last, stable_since = s.calls_total - polls, time.monotonic()
        elif time.monotonic() - stable_since > 0.5:
            break
        assert time.monotonic() < deadline, "the daemon never stopped reading"
        time.sleep(0.02)
    rss1 = vm_rss(d.proc.pid)
    stalled = watcher.stats()
    assert t.is_alive(), "sendall finished: the daemon read every request without backpressure"
    assert not send_error
    assert stalled.calls_total < n, stalled

    # What is queued is the soft limit plus the replies to requests already read when
    # reading paused: at most a full job queue plus one input buffer of requests, plus the
    # replies gathered (corked) by the worker. Run replies here are under 200 bytes.
    slack = (TD_QUEUE_HIGH + TD_INBUF_SIZE // req_len + 64) * 200
    assert 0 < stalled.server_output_bytes <= SOFT + slack, stalled
    assert peak_out <= SOFT + slack, peak_out
    # Without backpressure the daemon would hold every request and reply: 300000 of each,
    # about 60 MB. Bounded, it holds a few hundred KiB more than before.
    assert rss1 - rss0 < 24 << 20, (rss0, rss1)

    # Now read: every reply, in order, nothing lost.
    c.sock.settimeout(60)
    buf = b""
    got = 0
    while got < n:
        chunk = c.sock.recv(1 << 20)
        assert chunk, f"connection closed after {got} of {n} replies"
        frames, buf = split_frames(buf + chunk)
        for method, cid, body, dlen in frames:
            assert method == M_RUN and dlen == 0
            assert cid == cid0 + got, f"reply {got}: call id {cid}, expected {cid0 + got}"
            r = pb.RunReply()
            r.ParseFromString(body)
            assert r.status.code == OK, r.status.message
            assert [o.id for o in r.outputs] == [out0 + got]
            assert list(r.outputs[0].meta.shape) == [4]
            got += 1
    assert buf == b""
    t.join(60)
    assert not t.is_alive() and not send_error
    # The connection still works, and nothing is left queued anywhere.
    st = c.stats()
    assert st.session_tensors == 2
    s = watcher.stats()
    assert s.server_output_bytes == 0
    assert not slow_log_lines(d)
    good_request(pb, d.tcp)


# ---------------------------------------------------------------------------------------
# (2) Hard limit: many Gets of a 1 MiB tensor, never read. The client is disconnected, the
# log says why, its session is freed, and the daemon goes on serving others.

def test_hard_limit_disconnects_and_frees_session(start_daemon, connect, pb):
    d = start_daemon("--threads", "2", *LIMITS, "--output-buffer-soft-seconds", "0")
    watcher = connect(d.tcp)
    watcher.handshake()
    base = watcher.stats()
    assert base.server_sessions == 1 and base.server_bytes == 0

    c = connect(d.unix)
    sid = c.handshake().session_id
    big = np.arange(1 << 18, dtype=np.float32)          # 1 MiB
    c.put(1, big)
    s = watcher.stats()
    assert s.server_bytes == base.server_bytes + big.nbytes
    ngets = 64
    get = pb.GetRequest(id=1).SerializeToString()
    c.send_raw(b"".join(Client.frame(M_GET, 100 + i, get) for i in range(ngets)))

    session_freed(watcher, base)
    lines = wait_for(lambda: slow_log_lines(d), "the disconnect log line")
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"session={sid} " in line and "reason=output-buffer-hard" in line
    assert "peer=" in line
    queued = int(line.split("queued_bytes=")[1].split()[0])
    assert HARD < queued <= HARD + 2 * (big.nbytes + 4096), line

    # The client gets what had been written (whole replies, in order, then a cut) and EOF.
    data = read_until_eof(c.sock)
    frames, _ = split_frames(data)
    assert len(frames) < ngets
    for i, (method, cid, body, dlen) in enumerate(frames):
        assert method == M_GET and cid == 100 + i and dlen == big.nbytes
    assert len(data) < ngets * big.nbytes
    s = watcher.stats()
    assert s.server_output_bytes == 0
    good_request(pb, d.tcp)


# ---------------------------------------------------------------------------------------
# (3) Soft limit held too long: with no hard limit, a client that keeps more than the soft
# limit queued for --output-buffer-soft-seconds is disconnected; one that reads is not.

def test_soft_seconds_disconnects_a_stalled_client(start_daemon, connect, pb):
    d = start_daemon("--threads", "2", "--output-buffer-soft", str(SOFT),
                     "--output-buffer-hard", "0", "--output-buffer-soft-seconds", "1")
    watcher = connect(d.tcp)
    watcher.handshake()
    base = watcher.stats()
    big = np.arange(1 << 18, dtype=np.float32)          # 1 MiB
    get = pb.GetRequest(id=1).SerializeToString()

    # A client that reads its replies at once keeps its connection past the period.
    ok = connect(d.unix)
    ok.handshake()
    ok.put(1, big)
    for _ in range(3):
        for i in range(4):
            ok.send_raw(Client.frame(M_GET, 10 + i, get))
        for i in range(4):
            r, data = ok.recv_reply(M_GET, 10 + i)
            assert r.status.code == OK
            np.testing.assert_array_equal(np.frombuffer(data, np.float32), big)
        time.sleep(0.6)
    assert ok.stats().session_tensors == 1
    ok.free([1])
    base = watcher.stats()

    # A client that never reads.
    c = connect(d.unix)
    sid = c.handshake().session_id
    c.put(1, big)
    t0 = time.monotonic()
    c.send_raw(b"".join(Client.frame(M_GET, 100 + i, get) for i in range(4)))
    session_freed(watcher, base)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 10.0, elapsed
    lines = slow_log_lines(d)
    assert len(lines) == 1, lines
    assert f"session={sid} " in lines[0]
    assert "reason=output-buffer-soft-seconds" in lines[0]
    queued = int(lines[0].split("queued_bytes=")[1].split()[0])
    assert queued > SOFT
    assert read_until_eof(c.sock) is not None
    assert watcher.stats().server_output_bytes == 0
    # The reading client was not touched.
    assert ok.stats().session_tensors == 0
    good_request(pb, d.tcp)


# ---------------------------------------------------------------------------------------
# (4) A single reply larger than the soft (and hard) limit is still delivered, and with no
# hard limit several pipelined replies larger than the soft limit are too.

def test_reply_larger_than_the_soft_limit(start_daemon, connect, pb):
    d = start_daemon("--threads", "2", *LIMITS)
    c = connect(d.unix)
    c.handshake()
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1 << 20)                    # 8 MiB float64
    c.put(1, x)
    for _ in range(2):
        np.testing.assert_array_equal(c.get(1), x)
    c.run([c.node("neg", [1], [2])])
    np.testing.assert_array_equal(c.get(2), -x)
    assert c.stats().session_output_bytes == 0
    good_request(pb, d.tcp)

    d2 = start_daemon("--threads", "2", "--output-buffer-soft", str(SOFT),
                      "--output-buffer-hard", "0")
    c2 = connect(d2.tcp)
    c2.handshake()
    c2.put(1, x)
    get = pb.GetRequest(id=1).SerializeToString()
    c2.send_raw(b"".join(Client.frame(M_GET, 50 + i, get) for i in range(4)) +
                Client.frame(M_STATS, 60))
    for i in range(4):
        r, data = c2.recv_reply(M_GET, 50 + i)
        assert r.status.code == OK
        np.testing.assert_array_equal(np.frombuffer(data, np.float64), x)
    st, _ = c2.recv_reply(M_STATS, 60)
    assert st.status.code == OK and st.session_tensors == 1
    assert not slow_log_lines(d) and not slow_log_lines(d2)
    good_request(pb, d2.unix)


# ---------------------------------------------------------------------------------------
# The options are in the table, with ranges.

def test_output_buffer_options(start_daemon, pb):
    r = subprocess.run([TENSORD_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for opt, default in (("--output-buffer-soft", "4194304"),
                         ("--output-buffer-hard", "1073741824"),
                         ("--output-buffer-soft-seconds", "60")):
        line = next(l for l in r.stdout.splitlines() if l.strip().startswith(opt + " "))
        assert f"default {default}]" in line, line
    for bad in (("--output-buffer-soft", "100"), ("--output-buffer-hard", "-1"),
                ("--output-buffer-soft-seconds", "-5")):
        r = subprocess.run([TENSORD_BIN, *bad], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and bad[0] in r.stderr
    d = start_daemon("--output-buffer-soft", "4096", "--output-buffer-hard", "0",
                     "--output-buffer-soft-seconds", "0")
    good_request(pb, d.tcp)
