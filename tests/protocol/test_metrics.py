"""Prometheus metrics (--metrics-listen): GET /metrics in text format 0.0.4, 404 for anything
else, counters that follow the requests clients make, cumulative monotonic histograms, and
an HTTP server that survives slow and malformed clients without blocking the daemon.
"""
import socket
import subprocess
import time

import numpy as np
import pytest

from conftest import M_GET, M_PUT, NOT_FOUND, INVALID_ARGUMENT, TENSORD_BIN, Client, good_request
from metrics_util import histogram, http_get, metrics_port, parse_exposition, scrape, value

LAT = "tensord_request_duration_seconds"


@pytest.fixture
def mdaemon(start_daemon):
    d = start_daemon("--threads", "2", "--metrics-listen", "tcp://127.0.0.1:0")
    d.metrics = metrics_port(d)
    return d


def check_histogram(samples, method):
    buckets, total_sum, count = histogram(samples, LAT, method=method)
    les = [le for le, _ in buckets]
    assert les == sorted(les) and les[-1] == float("inf") and len(les) == 17
    counts = [v for _, v in buckets]
    assert all(a <= b for a, b in zip(counts, counts[1:])), f"{method}: not cumulative"
    assert counts[-1] == count
    assert total_sum >= 0
    return buckets, total_sum, count


def test_counters_follow_requests(mdaemon, pb):
    port = mdaemon.metrics
    s0 = scrape(port)
    assert value(s0, "tensord_sessions", user="local") == 0
    assert value(s0, "tensord_draining") == 0

    c = Client(pb, mdaemon.tcp)
    c.handshake()
    a = np.arange(3, dtype=np.float64)
    b = np.array([0.5, -1.0, 2.0])
    c.put(1, a)
    c.put(2, b)
    t0 = time.monotonic()
    c.run([c.node("add", [1, 2], [3]), c.node("mul", [3, 2], [4]), c.node("add", [4, 4], [5])],
          discard=[5])
    run_wall = time.monotonic() - t0
    np.testing.assert_array_equal(c.get(4), (a + b) * b)
    assert c.error_of(M_GET, pb.GetRequest(id=99))[0] == NOT_FOUND
    assert c.error_of(M_PUT, pb.PutRequest(id=7, dtype=99, shape=[1]))[0] == INVALID_ARGUMENT
    # 7 calls: Handshake, 2 Put, Run, Get, failing Get, failing Put. A worker records a
    # call's latency just after writing its reply, so wait (briefly) for the last one; the
    # session's calls run in order, so the earlier ones are recorded by then.
    put0 = histogram(s0, LAT, method="Put")[2]
    deadline = time.monotonic() + 5
    while True:
        s1 = scrape(port)
        if histogram(s1, LAT, method="Put")[2] - put0 >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.01)

    def delta(name, **labels):
        return value(s1, name, **labels) - value(s0, name, **labels)

    assert delta("tensord_requests_received_total") == 7
    assert delta("tensord_calls_total") == 7
    assert delta("tensord_errors_total") == 2
    assert delta("tensord_requests_rejected_total", reason="not_found") == 1
    assert delta("tensord_requests_rejected_total", reason="invalid_argument") == 1
    assert delta("tensord_requests_rejected_total", reason="unavailable") == 0
    assert delta("tensord_ops_total", op="add") == 2
    assert delta("tensord_ops_total", op="mul") == 1
    assert value(s1, "tensord_ops_total", op="matmul") == 0
    for method, n in (("Handshake", 1), ("Put", 3), ("Run", 1), ("Get", 2)):
        _, _, cnt1 = check_histogram(s1, method)
        _, _, cnt0 = check_histogram(s0, method)
        assert cnt1 - cnt0 == n, method
    # The one Run observation: its bucket is the first bound >= its value (the sum), and the
    # value is about the client's round trip (the worker records it just after writing the
    # reply, so a preempted worker may add a little: allow a second).
    buckets, run_sum, _ = check_histogram(s1, "Run")
    assert 0 < run_sum <= run_wall + 1.0
    first = next(le for le, v in buckets if v == 1)
    assert first == next(le for le, _ in buckets if le >= run_sum)
    # Session state: ids 1, 2, 3, 4 live, 3 float64 each (5 was discarded) = 96 bytes.
    assert value(s1, "tensord_sessions", user="local") == 1
    assert value(s1, "tensord_user_bytes", user="local") == 4 * 3 * 8
    assert value(s1, "tensord_device_bytes", device="cpu") == 4 * 3 * 8
    assert value(s1, "tensord_queue_depth") == 0
    assert value(s1, "tensord_device_memory_bytes", device="cpu") > 0

    # Counters and buckets never go down; the session gauge follows the close.
    c.close()
    deadline = time.monotonic() + 10
    while True:
        s2 = scrape(port)
        if value(s2, "tensord_sessions", user="local") == 0:
            break
        assert time.monotonic() < deadline, "session not freed"
        time.sleep(0.02)
    assert value(s2, "tensord_user_bytes", user="local") == 0
    for (name, lab), v in s1.items():
        if name.endswith(("_total", "_bucket", "_count", "_sum")) and "scrapes" not in name:
            assert s2.get((name, lab), 0) >= v, (name, lab)
    assert value(s2, "tensord_metrics_scrapes_total") > value(s1, "tensord_metrics_scrapes_total")


def test_queue_depth_counts_waiting_requests(start_daemon, pb):
    """With one worker busy on a long graph, other sessions' requests wait in the queue:
    tensord_queue_depth and tensord_ready_sessions count them, and fall back to 0."""
    d = start_daemon("--threads", "1", "--compute-threads", "1",
                     "--metrics-listen", "tcp://127.0.0.1:0")
    port = metrics_port(d)
    busy = Client(pb, d.tcp, timeout=60)
    busy.handshake()
    n = 700
    x = np.random.default_rng(1).standard_normal((n, n)) / np.sqrt(n)
    busy.put(1, x)
    waiters = [Client(pb, d.unix, timeout=60) for _ in range(3)]
    for w in waiters:
        w.handshake()
    nodes = [busy.node("matmul", [1, 1], [2])] + [
        busy.node("matmul", [k, 1], [k + 1]) for k in range(2, 40)]    # about a second
    run_id = busy.send_call(5, pb.RunRequest(nodes=nodes))
    time.sleep(0.1)                      # the worker is inside the graph now
    ids = [w.send_call(7, pb.StatsRequest()) for w in waiters]
    depth = ready = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (depth < 3 or ready < 3):
        sm = scrape(port)
        depth = max(depth, value(sm, "tensord_queue_depth"))
        ready = max(ready, value(sm, "tensord_ready_sessions"))
    r, _ = busy.recv_reply(5, run_id)
    assert r.status.code == 0
    for w, i in zip(waiters, ids):
        w.recv_reply(7, i)
    assert depth == 3, "three Stats calls waited behind the graph"
    assert ready == 3, "three sessions waited for the one worker"
    sm = scrape(port)
    assert value(sm, "tensord_queue_depth") == 0
    assert value(sm, "tensord_ready_sessions") == 0
    for c in waiters + [busy]:
        c.close()


def test_not_found_and_malformed(mdaemon, pb):
    port = mdaemon.metrics
    assert http_get(port, path="/")[0] == 404
    assert http_get(port, path="/metricsx")[0] == 404
    assert http_get(port, path="/metrics/x")[0] == 404
    assert http_get(port, raw=b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")[0] == 404
    assert http_get(port, path="/metrics?x=1")[0] == 200
    assert http_get(port, raw=b"GARBAGE\r\n\r\n")[0] == 400
    assert http_get(port, raw=b"GET /metrics SPDY/3\r\n\r\n")[0] == 400
    assert http_get(port, raw=b"GET /metrics HTTP/1.1\x00\r\n\r\n")[0] == 400
    # Request head beyond the 8 KiB bound: 431, connection closed.
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"
    code, _, _ = http_get(port, raw=big)
    assert code == 431
    # Extra bytes after the request head (a body, a pipelined request) do not destroy the
    # response.
    code, _, body = http_get(port, raw=b"GET /metrics HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    assert code == 200 and b"tensord_calls_total" in body
    s = scrape(port)
    assert value(s, "tensord_metrics_http_errors_total") >= 8
    good_request(pb, mdaemon.tcp)


def test_slow_clients_do_not_block(mdaemon, pb):
    port = mdaemon.metrics
    # A client that sends half a request and stalls, one that sends nothing, one that trickles.
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"GET /metr")
    silent = socket.create_connection(("127.0.0.1", port))
    trickle = socket.create_connection(("127.0.0.1", port))
    # Meanwhile scrapes and the daemon itself answer at once.
    t0 = time.monotonic()
    for _ in range(5):
        scrape(port)
        trickle.sendall(b"X")
    good_request(pb, mdaemon.unix)
    assert time.monotonic() - t0 < 5
    # The server closes all three at its 10 s deadline.
    for s in (stalled, silent, trickle):
        s.settimeout(20)
        assert s.recv(100) == b""
        s.close()
    assert time.monotonic() - t0 < 20


def test_connection_limit(mdaemon, pb):
    port = mdaemon.metrics
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(10)
    assert extra.recv(100) == b"", "the 65th client should be closed at once"
    extra.close()
    for s in idle:
        s.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            scrape(port)
            break
        except (AssertionError, ValueError, ConnectionError):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_bad_metrics_address(tmp_path):
    for addr, why in (("tcp://10.1.2.3:0", "refusing non-loopback metrics listener"),
                      ("http://127.0.0.1:0", "bad metrics address"),
                      ("tcp://127.0.0.1:99999", "bad metrics address")):
        p = subprocess.run([TENSORD_BIN, "--listen", "tcp://127.0.0.1:0", "--metrics-listen",
                            addr], capture_output=True, timeout=60)
        assert p.returncode == 1, addr
        assert why in p.stderr.decode(), p.stderr.decode()


def test_exposition_parser_rejects_bad_text():
    """The parser the other tests rely on must itself fail on malformed text."""
    good = "# TYPE a counter\na 1\n"
    assert parse_exposition(good)[0]
    for bad in ("a 1\n", "# TYPE a counter\na{x=1} 1\n", "# TYPE a counter\na 1",
                "# TYPE a counter\na 1 2 3\n", "# TYPE a wrong\na 1\n"):
        with pytest.raises((AssertionError, ValueError)):
            parse_exposition(bad)
