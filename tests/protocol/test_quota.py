"""Quotas: per-user bytes, live tensors and sessions (config defaults and SetQuota), the
server-wide byte cap, and isolation of `empty` memory between users."""
import numpy as np
import pytest

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, M_SET_QUOTA, client, handshake,
                      write_tokens)
from conftest import M_RUN, NOT_FOUND, OK, RESOURCE_EXHAUSTED


def test_user_at_byte_quota_refused_other_user_served(start_daemon, tmp_path, pb):
    d = start_daemon("--token-file", write_tokens(tmp_path), "--user-max-bytes", "8192")
    a1, a2, b = client(pb, d.tcp), client(pb, d.unix), client(pb, d.tcp)
    handshake(a1, ALICE_TOKEN)
    handshake(a2, ALICE_TOKEN)
    handshake(b, BOB_TOKEN)
    a1.put(1, np.zeros(1024, dtype=np.float32))          # 4096 of alice's 8192
    a2.put(1, np.zeros(1024, dtype=np.float32))          # 8192: at quota (two sessions)
    code, msg = a2.error_of(4 - 2, pb.PutRequest(id=2, dtype=8, shape=[1]), b"\0" * 4)
    assert code == RESOURCE_EXHAUSTED and "alice" in msg, msg
    # A Run that would allocate is refused as well, before computing.
    r = a1.run([a1.node("add", [1, 1], [5])], check=False)
    assert r.status.code == RESOURCE_EXHAUSTED and "alice" in r.status.message
    # Bob is not affected: he has his own 8192 bytes.
    x = np.arange(1024, dtype=np.float32)
    b.put(1, x)
    b.run([b.node("add", [1, 1], [2])])
    np.testing.assert_array_equal(b.get(2), x + x)
    # The failed requests were single calls: alice's sessions still work, and freeing
    # gives the quota back.
    a1.free([1])
    a2.put(2, np.ones(1024, dtype=np.float32))
    np.testing.assert_array_equal(a2.get(2), np.ones(1024, dtype=np.float32))


def test_tensor_quota_and_set_quota(start_daemon, tmp_path, pb):
    d = start_daemon("--token-file", write_tokens(tmp_path), "--user-max-tensors", "3")
    a, b, adm = client(pb, d.tcp), client(pb, d.tcp), client(pb, d.unix)
    handshake(a, ALICE_TOKEN)
    handshake(b, BOB_TOKEN)
    handshake(adm, ADMIN_TOKEN)
    for i in range(3):
        a.put(i + 1, np.full(2, i, dtype=np.int32))
    code, msg = a.error_of(2, pb.PutRequest(id=9, dtype=4, shape=[1]), b"\0" * 4)
    assert code == RESOURCE_EXHAUSTED and "max_tensors" in msg
    r = a.run([a.node("neg", [1], [10])], check=False)
    assert r.status.code == RESOURCE_EXHAUSTED
    for i in range(3):
        b.put(i + 1, np.zeros(1, dtype=np.int32))       # bob has his own 3
    # The admin raises alice's tensor quota; now she can.
    adm.call(M_SET_QUOTA, pb.SetQuotaRequest(user="alice", max_tensors=5))
    a.run([a.node("neg", [1], [10])])
    np.testing.assert_array_equal(a.get(10), -np.full(2, 0, dtype=np.int32))
    code, _ = adm.error_of(M_SET_QUOTA, pb.SetQuotaRequest(user="nobody", max_tensors=1))
    assert code == NOT_FOUND
    # SetQuota on bytes: alice may hold 16 bytes more at most.
    adm.call(M_SET_QUOTA, pb.SetQuotaRequest(user="alice", max_bytes=4 * 8 + 16))
    code, _ = a.error_of(2, pb.PutRequest(id=11, dtype=8, shape=[5]), b"\0" * 20)
    assert code == RESOURCE_EXHAUSTED
    a.put(11, np.zeros(4, dtype=np.float32))


def test_session_quota(start_daemon, tmp_path, pb):
    d = start_daemon("--token-file", write_tokens(tmp_path), "--user-max-sessions", "2")
    s1, s2, s3 = client(pb, d.tcp), client(pb, d.tcp), client(pb, d.tcp)
    handshake(s1, ALICE_TOKEN)
    handshake(s2, ALICE_TOKEN)
    hs = handshake(s3, ALICE_TOKEN, check=False)
    assert hs.status.code == RESOURCE_EXHAUSTED and "max_sessions" in hs.status.message
    assert s3.at_eof()
    b = client(pb, d.tcp)
    assert handshake(b, BOB_TOKEN).status.code == OK
    s1.close()
    import time
    deadline = time.monotonic() + 10
    while True:                       # the closed session is freed asynchronously
        s4 = client(pb, d.tcp)
        hs = handshake(s4, ALICE_TOKEN, check=False)
        if hs.status.code == OK:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_global_byte_cap(start_daemon, tmp_path, pb):
    d = start_daemon("--token-file", write_tokens(tmp_path), "--max-total-bytes", "10000")
    a, b = client(pb, d.tcp), client(pb, d.tcp)
    handshake(a, ALICE_TOKEN)
    handshake(b, BOB_TOKEN)
    a.put(1, np.zeros(1000, dtype=np.float64))          # 8000 bytes
    code, msg = b.error_of(2, pb.PutRequest(id=1, dtype=9, shape=[500]), b"\0" * 4000)
    assert code == RESOURCE_EXHAUSTED and "max_total_bytes" in msg
    b.put(1, np.zeros(250, dtype=np.float64))           # 2000: exactly at the cap
    a.free([1])
    b.put(2, np.zeros(500, dtype=np.float64))


@pytest.mark.parametrize("n", [256, 1 << 19])           # malloc'd and cached large blocks
def test_empty_never_shows_other_users_data(start_daemon, tmp_path, pb, n):
    d = start_daemon("--token-file", write_tokens(tmp_path))
    a, b = client(pb, d.tcp), client(pb, d.tcp)
    handshake(a, ALICE_TOKEN)
    handshake(b, BOB_TOKEN)
    pattern = (np.arange(n, dtype=np.int64) * 40503 % 65521 + 1).astype(np.int32)   # no zeros
    a.put(1, pattern)
    a.run([a.node("add", [1, 1], [2])])                  # a computed buffer of alice's too
    a.free([1, 2])
    for k in range(3):
        b.call(M_RUN, _empty_req(pb, b, 10 + k, n))
        got = b.get(10 + k)
        assert got.shape == (n,) and not np.any(got), "empty returned non-zero memory"


def _empty_req(pb, c, out, n):
    node = pb.Node(op="empty", inputs=[], outputs=[out])
    node.attrs.add(name="shape").ints.values.extend([n])
    node.attrs.add(name="dtype").dtype = pb.INT32   # the pattern's dtype and size
    return pb.RunRequest(nodes=[node])
