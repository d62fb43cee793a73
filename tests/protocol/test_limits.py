"""--max-connections and --admin-reserved-connections: TCP and Unix connections count
together; past the limit a connection is closed at once, except on a Unix socket, where a
few more are accepted that only an admin may keep (a non-admin Handshake there gets
UNAVAILABLE and is closed). See docs/PROTOCOL.md "Connection limits".
"""
import time

import pytest

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, M_LIST_SESSIONS, UNAVAILABLE, client,
                      handshake, write_tokens)
from conftest import OK
from metrics_util import metrics_port, scrape, value

DISC = "tensord_clients_disconnected_total"


def refused(c, timeout=5.0):
    """True when the server closed c without a byte (a refused connection)."""
    return c.at_eof(timeout)


def open_session(pb, addr, token):
    c = client(pb, addr)
    r = handshake(c, token)
    assert r.status.code == OK
    return c


def eventually(pred, limit=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def ldaemon(start_daemon, tmp_path):
    tokens = write_tokens(tmp_path)
    d = start_daemon("--threads", "2", "--token-file", tokens, "--max-connections", "2",
                     "--admin-reserved-connections", "1", "--metrics-listen",
                     "tcp://127.0.0.1:0")
    d.metrics = metrics_port(d)
    return d


def test_limit_and_admin_slot(ldaemon, pb):
    d = ldaemon
    a = open_session(pb, d.tcp, ALICE_TOKEN)
    b = open_session(pb, d.unix, ALICE_TOKEN)
    # Full: a third TCP connection is closed at once.
    c = client(pb, d.tcp)
    assert refused(c)
    c.close()
    # A Unix connection gets the reserved slot, but a non-admin may not keep it.
    u = client(pb, d.unix)
    r = handshake(u, ALICE_TOKEN, check=False)
    assert r.status.code == UNAVAILABLE
    assert "reserved for admins" in r.status.message and "alice" in r.status.message
    assert refused(u)
    u.close()
    # An admin keeps it and can look around while the server is full.
    adm = open_session(pb, d.unix, ADMIN_TOKEN)
    rep = adm.call(M_LIST_SESSIONS, pb.ListSessionsRequest())[0]
    assert sorted(s.user for s in rep.sessions) == ["alice", "alice", "root"]
    # The reserved slot is taken now: one more Unix connection is closed at once too.
    v = client(pb, d.unix)
    assert refused(v)
    v.close()
    # The existing sessions keep working.
    assert a.stats().server_sessions == 3
    assert b.stats().server_sessions == 3
    samples = scrape(d.metrics)
    assert value(samples, DISC, reason="max-connections") == 3
    # Every connection counts toward the limit, the admin's in the reserved slot too: with
    # one TCP session gone two remain, still the limit for TCP.
    a.close()
    assert eventually(lambda: adm.stats().server_sessions == 2)
    f = client(pb, d.tcp)
    assert refused(f)
    f.close()
    # Below it again, TCP is served.
    b.close()
    assert eventually(lambda: adm.stats().server_sessions == 1)
    e = open_session(pb, d.tcp, ALICE_TOKEN)
    assert e.stats().server_sessions == 2
    assert value(scrape(d.metrics), DISC, reason="max-connections") == 4
    for x in (adm, e):
        x.close()


def test_no_limit(start_daemon, pb):
    d = start_daemon("--threads", "2", "--max-connections", "0")
    cs = [client(pb, d.tcp if i % 2 else d.unix) for i in range(40)]
    for c in cs:
        c.handshake()
    assert cs[0].stats().server_sessions == 40
    for c in cs:
        c.close()


def test_unauthenticated_do_not_hold_slots_forever(start_daemon, pb, tmp_path):
    """Connections that never authenticate fill the slots only until --auth-timeout."""
    tokens = write_tokens(tmp_path)
    d = start_daemon("--threads", "2", "--token-file", tokens, "--max-connections", "2",
                     "--admin-reserved-connections", "0", "--auth-timeout", "1")
    idle = [client(pb, d.tcp), client(pb, d.unix)]
    late = client(pb, d.tcp)
    assert refused(late)
    late.close()
    for c in idle:
        assert refused(c, timeout=5)
        c.close()
    assert eventually(lambda: _can_connect(pb, d.tcp))


def _can_connect(pb, addr):
    c = client(pb, addr)
    try:
        r = handshake(c, ALICE_TOKEN, check=False)
        return r.status.code == OK
    except (EOFError, ConnectionError, OSError):
        return False
    finally:
        c.close()
