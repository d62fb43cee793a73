"""Authentication and roles: token file, constant-time token check, lockout after failures,
the pre-authentication frame limit, admin methods and PERMISSION_DENIED for user tokens."""
import subprocess
import time

import numpy as np
import pytest

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, M_HEALTH, M_KILL_SESSION,
                      M_LIST_SESSIONS, M_SET_QUOTA, M_SHUTDOWN, PERMISSION_DENIED,
                      UNAUTHENTICATED, UNAVAILABLE, client, handshake, write_tokens)
from conftest import (M_HANDSHAKE, M_PUT, M_STATS, NOT_FOUND, OK, RESOURCE_EXHAUSTED, TENSORD_BIN,
                      Client)


@pytest.fixture
def authd(start_daemon, tmp_path):
    return start_daemon("--token-file", write_tokens(tmp_path), "--auth-fail-delay-ms", "300")


def test_token_roles_reported(authd, pb):
    for addr in (authd.tcp, authd.unix):
        c = client(pb, addr)
        hs = handshake(c, ALICE_TOKEN)
        assert (hs.user, hs.role) == ("alice", "user")
        c.put(1, np.arange(4, dtype=np.float32))
        np.testing.assert_array_equal(c.get(1), np.arange(4, dtype=np.float32))
        c.close()
    c = client(pb, authd.unix)
    hs = handshake(c, ADMIN_TOKEN)
    assert (hs.user, hs.role) == ("root", "admin")
    c.close()


def test_missing_and_wrong_token_refused_and_closed(authd, pb):
    for token in ("", "not-a-token-0123456789", ALICE_TOKEN[:-1] + "x"):
        c = client(pb, authd.unix)
        hs = handshake(c, token, check=False)
        assert hs.status.code in (UNAUTHENTICATED, UNAVAILABLE), hs.status
        assert c.at_eof()
        c.close()
        time.sleep(1.4)     # let each lockout (0.3, 0.6 s) pass before the next try
    assert "authentication failed" in authd.stderr()


def test_lockout_after_failure_then_recovery(authd, pb):
    c = client(pb, authd.tcp)
    assert handshake(c, "wrong-token-0123456789ab", check=False).status.code == UNAUTHENTICATED
    c.close()
    # The right token right away is refused: the address is locked out (0.3 s).
    c = client(pb, authd.tcp)
    hs = handshake(c, ALICE_TOKEN, check=False)
    assert hs.status.code == UNAVAILABLE and "retry in" in hs.status.message
    c.close()
    # Second failure doubles the lockout: 0.6 s.
    time.sleep(0.4)
    c = client(pb, authd.tcp)
    assert handshake(c, "wrong-token-0123456789ab", check=False).status.code == UNAUTHENTICATED
    c.close()
    time.sleep(0.4)
    c = client(pb, authd.tcp)
    assert handshake(c, ALICE_TOKEN, check=False).status.code == UNAVAILABLE
    c.close()
    time.sleep(0.4)
    c = client(pb, authd.tcp)
    assert handshake(c, ALICE_TOKEN).status.code == OK   # lockout over, success clears it
    c.close()
    c = client(pb, authd.tcp)
    assert handshake(c, "wrong-token-0123456789ab", check=False).status.code == UNAUTHENTICATED
    c.close()
    err = authd.stderr()
    assert "handshake refused during lockout" in err and "failures=2" in err
    assert "lockout_ms=300" in err and "lockout_ms=600" in err


def test_only_handshake_and_health_before_auth(authd, pb):
    c = client(pb, authd.tcp)
    code, msg = c.error_of(M_STATS, pb.StatsRequest())
    assert code == UNAUTHENTICATED and "Handshake" in msg
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[4]), b"\0" * 16)
    assert code == UNAUTHENTICATED
    h, _ = c.call(M_HEALTH, pb.HealthRequest())
    assert h.serving == pb.HealthReply.SERVING
    handshake(c, BOB_TOKEN)
    assert c.stats().status.code == OK


def test_unauth_frame_limit(authd, pb):
    c = client(pb, authd.tcp)
    c.send_raw(Client.frame(M_HANDSHAKE, 5, body_len=65537))
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 5 and r.status.code == RESOURCE_EXHAUSTED
    assert "max_frame_body_unauth" in r.status.message
    assert c.at_eof()
    # Authenticated, the same size is fine (a 100 KiB Put).
    c = client(pb, authd.tcp)
    handshake(c, ALICE_TOKEN)
    a = np.arange(25600, dtype=np.float32)
    c.put(1, a)
    np.testing.assert_array_equal(c.get(1), a)


def test_admin_methods_need_admin(authd, pb):
    u = client(pb, authd.tcp)
    handshake(u, ALICE_TOKEN)
    for m, req in ((M_LIST_SESSIONS, pb.ListSessionsRequest()),
                   (M_KILL_SESSION, pb.KillSessionRequest(session_id=1)),
                   (M_SET_QUOTA, pb.SetQuotaRequest(user="alice", max_bytes=1 << 40)),
                   (M_SHUTDOWN, pb.ShutdownRequest())):
        code, msg = u.error_of(m, req)
        assert code == PERMISSION_DENIED and "alice" in msg and "admin" in msg
    assert u.stats().status.code == OK        # the session is still usable
    assert "admin call refused" in authd.stderr()


def test_list_and_kill_sessions(authd, pb):
    u = client(pb, authd.tcp)
    hs_u = handshake(u, BOB_TOKEN)
    u.put(1, np.zeros(256, dtype=np.float64))   # 2048 bytes
    u.put(2, np.zeros(8, dtype=np.float32))
    a = client(pb, authd.unix)
    hs_a = handshake(a, ADMIN_TOKEN)
    r, _ = a.call(M_LIST_SESSIONS, pb.ListSessionsRequest())
    by_id = {s.id: s for s in r.sessions}
    assert set(by_id) == {hs_u.session_id, hs_a.session_id}
    s = by_id[hs_u.session_id]
    assert (s.user, s.bytes, s.tensors) == ("bob", 2048 + 32, 2)
    assert 0 <= s.age_seconds < 60 and s.peer.startswith("127.0.0.1:")
    assert by_id[hs_a.session_id].user == "root"
    code, _ = a.error_of(M_KILL_SESSION, pb.KillSessionRequest(session_id=999999))
    assert code == NOT_FOUND
    a.call(M_KILL_SESSION, pb.KillSessionRequest(session_id=hs_u.session_id))
    assert u.at_eof()
    deadline = time.monotonic() + 10
    while True:
        r, _ = a.call(M_LIST_SESSIONS, pb.ListSessionsRequest())
        if [x.id for x in r.sessions] == [hs_a.session_id]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert a.stats().server_bytes == 0


def test_shutdown_by_admin(start_daemon, tmp_path, pb):
    d = start_daemon("--token-file", write_tokens(tmp_path))
    a = client(pb, d.tcp)
    handshake(a, ADMIN_TOKEN)
    a.call(M_SHUTDOWN, pb.ShutdownRequest())
    assert d.proc.wait(timeout=30) == 0


def test_without_token_file_local_admin(start_daemon, pb):
    d = start_daemon()
    c = client(pb, d.tcp)
    hs = handshake(c, "")
    assert (hs.user, hs.role) == ("local", "admin")
    r, _ = c.call(M_LIST_SESSIONS, pb.ListSessionsRequest())
    assert [s.user for s in r.sessions] == ["local"]


def test_remote_needs_token_file(tmp_path):
    r = subprocess.run([TENSORD_BIN, "--listen", "tcp://0.0.0.0:0", "--allow-remote"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "--token-file" in r.stderr
    assert "listening" not in r.stdout


@pytest.mark.parametrize("lines,why", [
    (["short user1 user"], "shorter than 16"),
    ([f"{ALICE_TOKEN} alice superuser"], "role must be"),
    ([f"{ALICE_TOKEN} alice"], "TOKEN USER ROLE"),
    ([f"{ALICE_TOKEN} alice user", f"{ALICE_TOKEN} bob user"], "repeated"),
    ([f"{ALICE_TOKEN} alice user", f"{BOB_TOKEN} alice admin"], "two roles"),
    (["# only a comment"], "no tokens"),
])
def test_bad_token_file(tmp_path, lines, why):
    path = write_tokens(tmp_path, lines)
    r = subprocess.run([TENSORD_BIN, "--listen", "tcp://127.0.0.1:0", "--token-file", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and why in r.stderr, r.stderr


def test_token_file_readable_by_others_refused(tmp_path):
    path = write_tokens(tmp_path)
    import os
    os.chmod(path, 0o644)
    r = subprocess.run([TENSORD_BIN, "--listen", "tcp://127.0.0.1:0", "--token-file", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "accessible by other users" in r.stderr


def test_python_client_token(authd, monkeypatch):
    import tensord as td
    from tensord import Unauthenticated
    c = td.connect(authd.tcp, token=ALICE_TOKEN, set_default=False)
    assert (c.user, c.role) == ("alice", "user")
    c.close()
    time.sleep(0.01)
    monkeypatch.setenv("TENSORD_TOKEN", BOB_TOKEN)
    c = td.connect(authd.unix, set_default=False)
    assert c.user == "bob"
    c.close()
    monkeypatch.setenv("TENSORD_TOKEN", "wrong-token-0123456789ab")
    with pytest.raises(Unauthenticated):
        td.connect(authd.unix, set_default=False)
