"""Resumable sessions (docs/PROTOCOL.md "Resumable sessions"): a Handshake with
resume_lease_seconds gets a resume token; when the connection is lost (reset, or cut
mid-frame) the session is parked with its tensors and quota charges, and a Handshake with the
token on a new connection reattaches it. A client that closes its stream cleanly ends the
session; a lease ends with the memory freed; admins list and kill parked sessions.

Expected values: the data the test uploaded (NumPy), the byte counts it computed, the
daemon's ListUsers/ListSessions numbers before the loss."""
import socket
import struct
import time

import numpy as np

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, M_KILL_SESSION, M_LIST_SESSIONS,
                      M_LIST_USERS, M_SET_QUOTA, client, write_tokens)
from conftest import M_GET, M_HANDSHAKE

NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE = 5, 8, 14


def hs(c, token, lease=0, resume="", check=True):
    req = c.pb.HandshakeRequest(protocol_version=1, client_name="pytest", auth_token=token,
                                resume_lease_seconds=lease, resume_token=resume)
    return c.call(M_HANDSHAKE, req, check=check)[0]


def reset(c):
    """Loses the connection the way a network failure does: a TCP reset (SO_LINGER 0)."""
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()


def cut_mid_frame(c):
    """A client that dies in the middle of a frame: half a header, then the end."""
    c.send_raw(c.frame(M_GET, 99, b"\x08\x01")[:20])
    c.sock.shutdown(socket.SHUT_WR)
    c.sock.close()


def user(adm, name):
    r, _ = adm.call(M_LIST_USERS, adm.pb.ListUsersRequest())
    (u,) = [u for u in r.users if u.name == name]
    return u


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


def setup(start_daemon, tmp_path, pb, *args):
    d = start_daemon("--token-file", write_tokens(tmp_path), *args)
    adm = client(pb, d.tcp)
    hs(adm, ADMIN_TOKEN)
    return d, adm


def test_resume_after_reset_keeps_tensors(start_daemon, tmp_path, pb):
    # (A short lockout: the test tries a spent token once, which counts as a failure.)
    d, adm = setup(start_daemon, tmp_path, pb, "--auth-fail-delay-ms", "1")
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=30)
    assert r.resume_lease_seconds == 30 and len(r.resume_token) == 64 and not r.resumed
    sid, token = r.session_id, r.resume_token
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 32))
    b = np.arange(10, dtype=np.int32)
    c.put(1, a)
    c.put(2, b)
    c.run([c.node("mul", [1, 1], [3])])
    want_bytes = a.nbytes * 2 + b.nbytes
    assert user(adm, "alice").bytes == want_bytes
    reset(c)
    # Parked: still charged, listed without a peer and with its lease running.
    parked = wait_for(lambda: [s for s in adm.call(M_LIST_SESSIONS, pb.ListSessionsRequest())[0]
                               .sessions if s.id == sid and s.parked_seconds_left > 0])
    assert parked and parked[0].peer == "" and parked[0].bytes == want_bytes
    assert parked[0].tensors == 3 and 25 < parked[0].parked_seconds_left <= 30
    u = user(adm, "alice")
    assert (u.bytes, u.tensors, u.sessions) == (want_bytes, 3, 1)

    c2 = client(pb, d.tcp)
    r2 = hs(c2, ALICE_TOKEN, resume=token)
    assert r2.resumed and r2.session_id == sid and r2.user == "alice"
    assert r2.resume_lease_seconds == 30 and r2.resume_token not in ("", token)
    np.testing.assert_array_equal(c2.get(1), a)
    np.testing.assert_array_equal(c2.get(2), b)
    np.testing.assert_array_equal(c2.get(3), a * a)
    c2.run([c2.node("add", [1, 3], [4])])
    np.testing.assert_allclose(c2.get(4), a + a * a)
    assert user(adm, "alice").sessions == 1
    # A resume token works once: the old one names nothing now.
    c3 = client(pb, d.tcp)
    r3 = hs(c3, ALICE_TOKEN, resume=token, check=False)
    assert r3.status.code == NOT_FOUND and "resume token" in r3.status.message
    assert c3.at_eof()
    # The session, cut mid-frame this time, parks again and resumes with the new token.
    cut_mid_frame(c2)
    wait_for(lambda: user(adm, "alice").sessions == 1 and
             any(s.parked_seconds_left > 0 for s in
                 adm.call(M_LIST_SESSIONS, pb.ListSessionsRequest())[0].sessions))
    time.sleep(0.05)
    c4 = client(pb, d.tcp)
    r4 = hs(c4, ALICE_TOKEN, resume=r2.resume_token)
    assert r4.resumed and r4.session_id == sid
    np.testing.assert_allclose(c4.get(4), a + a * a)
    # A clean close ends it: everything is freed at once.
    c4.close()
    wait_for(lambda: user(adm, "alice").bytes == 0)
    u = user(adm, "alice")
    assert (u.bytes, u.tensors, u.sessions) == (0, 0, 0)


def test_clean_close_and_no_lease_are_not_parked(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb)
    c = client(pb, d.tcp)
    hs(c, ALICE_TOKEN, lease=30)
    c.put(1, np.ones(100))
    c.close()                                    # clean end of stream: done
    assert wait_for(lambda: user(adm, "alice").sessions == 0)
    assert user(adm, "alice").bytes == 0
    c = client(pb, d.tcp)
    r = hs(c, BOB_TOKEN)                         # no lease asked
    assert r.resume_token == "" and r.resume_lease_seconds == 0
    c.put(1, np.ones(100))
    reset(c)
    assert wait_for(lambda: user(adm, "bob").sessions == 0)
    assert user(adm, "bob").bytes == 0


def test_lease_ends_and_frees(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb, "--max-resume-lease", "1")
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=3600)
    assert r.resume_lease_seconds == 1           # capped by --max-resume-lease
    c.put(1, np.ones(1000))
    reset(c)
    assert wait_for(lambda: user(adm, "alice").sessions == 1)
    t0 = time.monotonic()
    assert wait_for(lambda: user(adm, "alice").sessions == 0, timeout=10)
    took = time.monotonic() - t0
    assert user(adm, "alice").bytes == 0 and user(adm, "alice").tensors == 0
    assert took < 3.5, took                      # 1 s lease + a 1 s timer tick
    c2 = client(pb, d.tcp)
    r2 = hs(c2, ALICE_TOKEN, resume=r.resume_token, check=False)
    assert r2.status.code == NOT_FOUND
    assert "parked session freed" in d.stderr() and "reason=lease-ended" in d.stderr()


def test_resume_disabled(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb, "--max-resume-lease", "0")
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=60)
    assert r.resume_token == "" and r.resume_lease_seconds == 0
    c.put(1, np.ones(10))
    reset(c)
    assert wait_for(lambda: user(adm, "alice").sessions == 0)


def test_resume_needs_the_same_user_and_a_real_token(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb, "--auth-fail-delay-ms", "1")
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=30)
    c.put(1, np.full(5, 7.0))
    reset(c)
    assert wait_for(lambda: user(adm, "alice").sessions == 1)
    for token, resume in [(BOB_TOKEN, r.resume_token),          # another user
                          (ALICE_TOKEN, "00" * 32),             # unknown token
                          (ALICE_TOKEN, r.resume_token[:-1]),   # malformed
                          (ALICE_TOKEN, r.resume_token.upper())]:
        time.sleep(0.2)                                         # past the lockout
        x = client(pb, d.tcp)
        rx = hs(x, token, resume=resume, check=False)
        assert rx.status.code == NOT_FOUND, (token, resume, rx.status)
        assert x.at_eof()
    assert "resume failed" in d.stderr()
    # Still parked and intact for alice.
    time.sleep(0.2)
    ok = client(pb, d.tcp)
    assert hs(ok, ALICE_TOKEN, resume=r.resume_token).resumed
    np.testing.assert_array_equal(ok.get(1), np.full(5, 7.0))


def test_failed_resumes_are_rate_limited(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb, "--auth-fail-delay-ms", "2000")
    x = client(pb, d.tcp)
    assert hs(x, ALICE_TOKEN, resume="ab" * 32, check=False).status.code == NOT_FOUND
    y = client(pb, d.tcp)
    ry = hs(y, ALICE_TOKEN, resume="ab" * 32, check=False)
    assert ry.status.code == UNAVAILABLE and "too many failed" in ry.status.message


def test_parked_session_counts_toward_max_sessions_and_can_be_killed(start_daemon, tmp_path,
                                                                      pb):
    d, adm = setup(start_daemon, tmp_path, pb, "--auth-fail-delay-ms", "1")
    adm.call(M_SET_QUOTA, pb.SetQuotaRequest(user="alice", max_sessions=1))
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=60)
    c.put(1, np.ones(256))
    reset(c)
    assert wait_for(lambda: [s for s in adm.call(M_LIST_SESSIONS, pb.ListSessionsRequest())[0]
                             .sessions if s.parked_seconds_left > 0])
    # The parked session holds alice's only session slot...
    x = client(pb, d.tcp)
    assert hs(x, ALICE_TOKEN, check=False).status.code == RESOURCE_EXHAUSTED
    # ...until an admin kills it: freed at once, and its token is dead.
    adm.call(M_KILL_SESSION, pb.KillSessionRequest(session_id=r.session_id))
    u = user(adm, "alice")
    assert (u.bytes, u.tensors, u.sessions) == (0, 0, 0)
    y = client(pb, d.tcp)
    assert hs(y, ALICE_TOKEN, resume=r.resume_token, check=False).status.code == NOT_FOUND
    time.sleep(0.05)
    z = client(pb, d.tcp)
    hs(z, ALICE_TOKEN)                         # the slot is free again
    assert "parked session killed" in d.stderr()


def test_killed_session_is_not_parked(start_daemon, tmp_path, pb):
    d, adm = setup(start_daemon, tmp_path, pb)
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=60)
    c.put(1, np.ones(64))
    adm.call(M_KILL_SESSION, pb.KillSessionRequest(session_id=r.session_id))
    assert c.at_eof()
    assert wait_for(lambda: user(adm, "alice").sessions == 0)
    assert user(adm, "alice").bytes == 0


def test_parked_sessions_freed_at_shutdown(start_daemon, tmp_path, pb):
    # The fixture's teardown checks the exit status and sanitizer reports (a leak of the
    # parked session's tensors would be one).
    d, adm = setup(start_daemon, tmp_path, pb)
    c = client(pb, d.tcp)
    hs(c, ALICE_TOKEN, lease=600)
    c.put(1, np.ones((128, 128)))
    reset(c)
    assert wait_for(lambda: user(adm, "alice").sessions == 1)


def test_resume_while_old_connection_still_open(start_daemon, tmp_path, pb):
    """The client gave up on a connection the daemon still thinks is alive (half-open): the
    resume closes that connection, is told to retry, and the retry reattaches the session."""
    d, adm = setup(start_daemon, tmp_path, pb)
    c = client(pb, d.tcp)
    r = hs(c, ALICE_TOKEN, lease=30)
    c.put(1, np.arange(6.0))
    x = client(pb, d.tcp)
    rx = hs(x, ALICE_TOKEN, resume=r.resume_token, check=False)
    assert rx.status.code == UNAVAILABLE and "still attached" in rx.status.message
    assert c.at_eof()                              # the old connection was closed
    assert wait_for(lambda: user(adm, "alice").sessions == 1 and
                    any(s.parked_seconds_left > 0 for s in
                        adm.call(M_LIST_SESSIONS, pb.ListSessionsRequest())[0].sessions))
    y = client(pb, d.tcp)
    ry = hs(y, ALICE_TOKEN, resume=r.resume_token)
    assert ry.resumed and ry.session_id == r.session_id
    np.testing.assert_array_equal(y.get(1), np.arange(6.0))
