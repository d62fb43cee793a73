"""systemd Type=notify support: a datagram socket plays the service manager's NOTIFY_SOCKET.

The daemon sends READY=1 once its listeners are open, WATCHDOG=1 every WATCHDOG_USEC/2 when
a watchdog is asked for (and WATCHDOG_PID, if set, names the daemon), and STOPPING=1 when a
drain starts.
"""
import os
import signal
import socket
import time

import pytest


def recv_messages(sock, until, timeout):
    """Receives datagrams until one contains `until` or timeout. Returns the list."""
    msgs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            m = sock.recv(4096).decode()
        except socket.timeout:
            break
        msgs.append(m)
        if until and until in m:
            break
    return msgs


@pytest.fixture(params=["abstract", "path"])
def notify_sock(request, tmp_path, monkeypatch):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "abstract":
        name = f"tensord-test-{os.getpid()}-{time.monotonic_ns()}"
        s.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    else:
        path = str(tmp_path / "notify.sock")
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield s
    s.close()


def test_ready_watchdog_stopping(notify_sock, start_daemon, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")           # ping every 100 ms
    d = start_daemon("--threads", "1")
    msgs = recv_messages(notify_sock, "READY=1", 10)
    assert msgs and "READY=1" in msgs[-1], msgs
    assert "STATUS=serving" in msgs[-1]
    t0 = time.monotonic()
    pings = [m for m in recv_messages(notify_sock, None, 1.0) if m == "WATCHDOG=1"]
    took = time.monotonic() - t0
    # 100 ms period over about a second: 10, with slack for a loaded machine.
    assert 5 <= len(pings) <= 12, (len(pings), took)
    d.proc.send_signal(signal.SIGTERM)
    msgs = recv_messages(notify_sock, "STOPPING=1", 10)
    assert any("STOPPING=1" in m and "STATUS=draining" in m for m in msgs), msgs
    assert d.proc.wait(timeout=30) == 0


def test_no_watchdog_without_usec(notify_sock, start_daemon):
    d = start_daemon("--threads", "1")
    msgs = recv_messages(notify_sock, "READY=1", 10)
    assert "READY=1" in msgs[-1]
    assert recv_messages(notify_sock, None, 0.5) == []
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0


def test_watchdog_for_another_pid_is_ignored(notify_sock, start_daemon, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    d = start_daemon("--threads", "1")
    msgs = recv_messages(notify_sock, "READY=1", 10)
    assert "READY=1" in msgs[-1]
    assert recv_messages(notify_sock, None, 0.5) == []
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0


def test_without_notify_socket(start_daemon, monkeypatch, pb):
    """No NOTIFY_SOCKET (or a relative one, which systemd never sets): nothing breaks."""
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/x")
    d = start_daemon("--threads", "1")
    assert "NOTIFY_SOCKET ignored" in d.stderr()
    monkeypatch.delenv("NOTIFY_SOCKET")
    start_daemon("--threads", "1")
