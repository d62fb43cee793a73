"""Client(resume_lease=...) and Client.reconnect(): after the connection is lost (a TCP
reset, as a network failure gives), the same Client object reattaches its parked session and
its Tensors keep working; requests lost in flight fail with Unavailable. Values are checked
against NumPy."""
import time

import numpy as np
import pytest

import tensord as td

import tdtest_daemon

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def own():
    d = tdtest_daemon.Daemon()
    yield d
    d.stop_and_check()


def test_reconnect_keeps_tensors(own):
    c = td.Client(own.tcp_address, resume_lease=60)
    assert c.resume_lease == 60 and len(c.resume_token) == 64
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    x = c.upload(a)
    y = (x * 2).sum(0)
    np.testing.assert_allclose(y.numpy(), (a * 2).sum(0))
    sid, token = c.session_id, c.resume_token
    tdtest_daemon.lose_connection(c)
    with pytest.raises(td.Unavailable):
        (x + 1).numpy()
    c.reconnect()
    assert c.session_id == sid and c.resume_token not in (None, token)
    np.testing.assert_allclose(x.numpy(), a)
    np.testing.assert_allclose(y.numpy(), (a * 2).sum(0))
    np.testing.assert_allclose((x @ x.T).numpy(), a @ a.T)
    # Twice more: the token is renewed each time.
    for _ in range(2):
        tdtest_daemon.lose_connection(c)
        c.reconnect()
        np.testing.assert_allclose((x + y).numpy(), a + (a * 2).sum(0))
    st = c.stats()
    assert st["session_tensors"] >= 2
    c.close()


def test_requests_lost_in_flight_fail(own):
    c = td.Client(own.tcp_address, resume_lease=60, batch=1)
    a = np.ones((4, 4))
    x = c.upload(a)
    c.sync()
    # Sent but never answered: the reply cannot arrive once the socket is gone.
    z = x + 5
    tdtest_daemon.lose_connection(c)
    c.reconnect()
    with pytest.raises(td.Unavailable, match="lost before the reply"):
        z.numpy()
    np.testing.assert_allclose((x + 5).numpy(), a + 5)
    c.close()


def test_reconnect_errors(own):
    c = td.Client(own.tcp_address)            # no lease asked
    assert c.resume_lease == 0 and c.resume_token is None
    with pytest.raises(ValueError, match="not resumable"):
        c.reconnect()
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.reconnect()
    with pytest.raises(ValueError, match="resume_lease"):
        td.Client(own.tcp_address, resume_lease=-1)
    # A clean close() ends the session: nothing is parked for a later reconnect.
    c = td.Client(own.tcp_address, resume_lease=60)
    c.upload(np.ones(3))
    c.sync()
    token, sid = c.resume_token, c.session_id
    c.close()
    c2 = td.Client(own.tcp_address, resume_lease=60)
    # (Once the daemon has read the end of c's stream; the local user is an admin.)
    deadline = time.monotonic() + 10
    while any(s["id"] == sid for s in c2.list_sessions()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(s["id"] == sid for s in c2.list_sessions())
    c2.resume_token = token                     # somebody else's spent token
    tdtest_daemon.lose_connection(c2)
    with pytest.raises(td.NotFound):
        c2.reconnect()
