"""Hostile input on a daemon with a token file: oversized and wrapping lengths, malformed
protobuf, out-of-range enums, forged ids, overflowing shapes, malformed graphs, oversized
attributes and outputs, frees racing a queued graph, and user tokens calling admin methods.

Cases already covered by test_protocol.py / test_auth.py are not repeated here (see the
"Cases tried and results" table in docs/SECURITY.md). After every case a client of another
user must be served (good_request_as) and the daemon's memory must be back to its baseline
(Stats server_bytes 0, one session: the watcher's)."""
import socket
import time

import numpy as np
import pytest

from authutil import (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, M_DRAIN, M_HEALTH, M_KILL_SESSION,
                      M_LIST_SESSIONS, PERMISSION_DENIED, UNAUTHENTICATED, client, handshake,
                      write_tokens)
from conftest import (ALREADY_EXISTS, INVALID_ARGUMENT, M_FREE, M_GET, M_HANDSHAKE, M_PUT,
                      M_RUN, M_STATS, NOT_FOUND, OK, OUT_OF_RANGE, RESOURCE_EXHAUSTED,
                      UNIMPLEMENTED, Client)

GIB = 1 << 30
U64_MAX = (1 << 64) - 1
MAX_BODY, MAX_DATA, MAX_UNAUTH = 16 << 20, 256 << 20, 64 << 10


@pytest.fixture
def tokd(start_daemon, tmp_path):
    return start_daemon("--threads", "2", "--token-file", write_tokens(tmp_path),
                        "--auth-fail-delay-ms", "1")


def f32(*vals):
    return np.array(vals, dtype=np.float32)


def rss_kib(d):
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def good_request_as(pb, addr, token=BOB_TOKEN):
    """Another user's client that must be served: handshake, put, run add, get."""
    c = client(pb, addr)
    try:
        handshake(c, token)
        rng = np.random.default_rng(11)
        a = rng.standard_normal(5).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        c.put(1, a)
        c.put(2, b)
        c.run([c.node("mul", [1, 2], [3])])
        np.testing.assert_array_equal(c.get(3), a * b)
    finally:
        c.close()


def back_to_baseline(pb, d, timeout=10.0):
    """Waits until the admin watcher's Stats show no other session and 0 bytes held."""
    w = client(pb, d.unix)
    try:
        handshake(w, ADMIN_TOKEN)
        deadline = time.monotonic() + timeout
        while True:
            s = w.stats()
            if s.server_sessions == 1 and s.server_bytes == 0:
                return
            assert time.monotonic() < deadline, f"memory not back to baseline: {s}"
            time.sleep(0.01)
    finally:
        w.close()


def after_case(pb, d):
    good_request_as(pb, d.tcp)
    back_to_baseline(pb, d)


def framing_error(pb, c, call_id, code, text):
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == call_id, (cid, r.status)
    assert r.status.code == code, r.status
    assert text in r.status.message, r.status.message
    assert c.at_eof()


# ---------------------------------------------------------------------------------------
# Frame lengths: limit+1, 1 GiB, 2^63, 2^64-1 in body_len and data_len, before and after
# authentication. The header alone is sent: nothing may be allocated or waited for.

@pytest.mark.parametrize("authed", [False, True], ids=["before_auth", "after_auth"])
def test_oversized_frame_lengths(tokd, pb, authed):
    rss0 = rss_kib(tokd)
    lim_body = MAX_BODY if authed else MAX_UNAUTH
    lim_data = MAX_DATA if authed else MAX_UNAUTH
    name_body = "max_frame_body" if authed else "max_frame_body_unauth"
    name_data = "max_frame_data" if authed else "max_frame_body_unauth"
    cases = []
    for v in (lim_body + 1, GIB, 1 << 63, U64_MAX):
        cases.append(("body", v, name_body))
    for v in (lim_data + 1, GIB, 1 << 63, U64_MAX):
        cases.append(("data", v, name_data))
    for k, (field, value, name) in enumerate(cases):
        c = client(pb, tokd.tcp if k % 2 else tokd.unix)
        if authed:
            handshake(c, ALICE_TOKEN)
        kw = {"body_len": value} if field == "body" else {"data_len": value}
        method = M_HANDSHAKE if not authed else M_PUT
        t0 = time.monotonic()
        c.send_raw(Client.frame(method, 900 + k, **kw))
        framing_error(pb, c, 900 + k, RESOURCE_EXHAUSTED, name)
        assert time.monotonic() - t0 < 5
        c.close()
        after_case(pb, tokd)
    # no frame was buffered: the daemon grew by far less than one oversized frame
    assert rss_kib(tokd) - rss0 < 64 << 10


def test_truncated_header_and_frames_before_auth(tokd, pb):
    # 10 bytes of a header, then EOF: the reply carries call id 0
    c = client(pb, tokd.tcp)
    c.send_raw(Client.frame(M_HANDSHAKE, 5)[:10])
    c.sock.shutdown(socket.SHUT_WR)
    framing_error(pb, c, 0, INVALID_ARGUMENT, "truncated frame: got 10 of 40 header bytes")
    c.close()
    after_case(pb, tokd)
    # a Handshake body cut short before authentication
    c = client(pb, tokd.unix)
    body = pb.HandshakeRequest(protocol_version=1, auth_token=ALICE_TOKEN).SerializeToString()
    c.send_raw(Client.frame(M_HANDSHAKE, 6, body[:7], body_len=len(body)))
    c.sock.shutdown(socket.SHUT_WR)
    framing_error(pb, c, 6, INVALID_ARGUMENT, f"got 7 of {len(body)} body bytes")
    c.close()
    after_case(pb, tokd)
    # an authenticated client dies in the middle of a Put's data: the upload is freed
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    req = pb.PutRequest(id=1, dtype=8, shape=[1 << 18]).SerializeToString()
    c.send_raw(Client.frame(M_PUT, 7, req, b"\x01" * 1000, data_len=1 << 20))
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Protobuf bodies

def test_malformed_protobuf_bodies(tokd, pb):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    bodies = {
        # field 1 (id) as an 11-byte varint: longer than any 64-bit value
        "overlong varint": (M_GET, b"\x08" + b"\xff" * 10 + b"\x01"),
        # field 1 (id, a varint) sent as length-delimited
        "wrong wire type": (M_GET, b"\x0a\x02\x01\x02"),
        # field 2 (dtype) as a 64-bit fixed value
        "wrong wire type fixed64": (M_PUT, b"\x11" + b"\x00" * 8),
        # packed ids whose length prefix claims 2^62 bytes
        "huge packed count": (M_FREE, b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x40" + b"\x01" * 8),
        # a RunRequest whose node length prefix claims 2^63 - 1 bytes
        "huge node length": (M_RUN, b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x0a\x03add"),
        # end-group tag without a start
        "stray end group": (M_STATS, b"\x0c"),
        # field number 0
        "field zero": (M_GET, b"\x00\x01"),
    }
    for name, (method, body) in bodies.items():
        cid = c.next_call
        c.next_call += 1
        c.send_raw(Client.frame(method, cid, body))
        _, rcid, rbody, rdata = c.recv_frame()
        r = pb.ErrorReply()
        r.ParseFromString(rbody)
        assert rcid == cid and rdata == b""
        assert r.status.code == INVALID_ARGUMENT, (name, r.status)
        assert "cannot decode" in r.status.message, (name, r.status.message)
    assert c.stats().session_tensors == 0        # the session is still in sync
    c.close()
    after_case(pb, tokd)


def test_huge_repeated_fields(tokd, pb):
    c = client(pb, tokd.unix)
    handshake(c, ALICE_TOKEN)
    c.put(1, f32(1, 2))
    # a million unknown ids (about 3 MB): the known one is freed, the message stays bounded
    ids = [1] + list(range(10 ** 6, 2 * 10 ** 6))
    t0 = time.monotonic()
    r = c.free(ids, check=False)
    assert time.monotonic() - t0 < 20
    assert r.status.code == NOT_FOUND and r.freed == 1
    assert len(r.status.message) < 4096, len(r.status.message)
    # a shape of a million dims
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=2, dtype=8, shape=[1] * 10 ** 6))
    assert code == INVALID_ARGUMENT, msg
    # a million ids in a Run's discard list, none live
    c.put(3, f32(1))
    r = c.run([c.node("neg", [3], [4])], discard=range(10, 10 ** 6 + 10), check=False)
    assert r.status.code != OK
    assert c.stats().session_tensors == 1        # only id 3: the failed run left nothing
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Enum values: -1, max+1, INT32_MAX for dtype (Put and the dtype attr) and for the method
# number of the frame header (the protocol's op code; ops themselves are named by strings).

@pytest.mark.parametrize("value", [-1, 12, 2 ** 31 - 1])
def test_enum_out_of_range(tokd, pb, value):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=value, shape=[4]), b"\0" * 16)
    assert code == INVALID_ARGUMENT and f"dtype {value}" in msg, msg
    c.put(1, f32(1, 2))                          # the 16 data bytes were skipped
    for op in ("cast", "zeros"):
        n = c.node(op, [1] if op == "cast" else [], [2])
        if op == "zeros":
            n.attrs.add(name="shape").ints.values.extend([2])
        n.attrs.add(name="dtype").dtype = value
        r = c.run([n], check=False)
        assert r.status.code == INVALID_ARGUMENT and str(value) in r.status.message, r.status
    c.close()
    after_case(pb, tokd)


@pytest.mark.parametrize("method", [0, 255, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1])
def test_method_number_out_of_range(tokd, pb, method):
    c = client(pb, tokd.unix)
    handshake(c, ALICE_TOKEN)
    c.send_raw(Client.frame(method, 4242, b"\x08\x01", b"abcd"))
    m, cid, body, data = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert (m, cid, data) == (method, 4242, b"")
    assert r.status.code == UNIMPLEMENTED and str(method) in r.status.message
    assert c.stats().status.code == OK
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Forged ids: random, another session's (same user and another user's), 0

def test_forged_ids(tokd, pb):
    a = client(pb, tokd.tcp)
    handshake(a, ALICE_TOKEN)
    x = np.arange(6, dtype=np.float32)
    a.put(5, x)
    a.put(0, f32(9))                             # id 0 is an ordinary id
    for token in (ALICE_TOKEN, BOB_TOKEN):       # same user, other session; another user
        b = client(pb, tokd.unix)
        handshake(b, token)
        rng = np.random.default_rng(3)
        forged = [5, 0] + [int(v) for v in rng.integers(1, 2 ** 63, 8, dtype=np.int64)]
        forged.append(U64_MAX)
        for tid in forged:
            code, _ = b.error_of(M_GET, pb.GetRequest(id=tid))
            assert code == NOT_FOUND
            r = b.run([b.node("neg", [tid], [77])], check=False)
            assert r.status.code == NOT_FOUND and str(tid) in r.status.message
            r = b.free([tid], check=False)
            assert r.status.code == NOT_FOUND and r.freed == 0
            code, _ = b.error_of(M_PUT, pb.PutRequest(id=tid, offset=4), b"\0" * 4)
            assert code != OK                    # no upload of tid in progress here
        b.close()
    np.testing.assert_array_equal(a.get(5), x)   # the owner's tensors are untouched
    np.testing.assert_array_equal(a.get(0), f32(9))
    a.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Offset/length pairs that wrap

def test_wrapping_offsets(tokd, pb):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    x = np.arange(16, dtype=np.float32)          # 64 bytes
    c.put(1, x)
    raw = x.tobytes()
    # offset + length wraps past 2^64: clipped to the end, never read beyond it
    for off, length in ((8, U64_MAX - 3), (8, U64_MAX), (63, 1 << 63)):
        reply, data = c.call(M_GET, pb.GetRequest(id=1, offset=off, length=length))
        assert reply.offset == off and data == raw[off:]
    for off in (65, 1 << 63, U64_MAX):
        code, _ = c.error_of(M_GET, pb.GetRequest(id=1, offset=off, length=16))
        assert code == OUT_OF_RANGE
    # a chunked upload: offsets near 2^64 (offset + data_len wraps) are refused, nothing
    # is written, the upload can still complete
    c.put(2, x, data=raw[:16])
    for off in (U64_MAX - 3, U64_MAX, 1 << 63, 48):
        code, _ = c.error_of(M_PUT, pb.PutRequest(id=2, offset=off), raw[16:32])
        assert code in (INVALID_ARGUMENT, OUT_OF_RANGE), off
    c.call(M_PUT, pb.PutRequest(id=2, offset=16), raw[16:])
    np.testing.assert_array_equal(c.get(2), x)
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Shapes whose byte count overflows, in graphs (Put shapes: test_element_count_overflow)

def test_graph_shapes_overflow(tokd, pb):
    c = client(pb, tokd.unix)
    handshake(c, ALICE_TOKEN)
    c.put(1, f32(1, 2))
    for shape in ([1 << 32, 1 << 32], [1 << 62, 4], [2 ** 63 - 1, 2], [1 << 40, 1 << 40]):
        r = c.run([c.node("zeros", [], [2], shape=shape)], check=False)
        assert r.status.code in (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), (shape, r.status)
        r = c.run([c.node("reshape", [1], [2], shape=shape + [-1])], check=False)
        assert r.status.code == INVALID_ARGUMENT, (shape, r.status)
    assert c.stats().session_tensors == 1
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Malformed graphs

def test_graph_cycle_self_edge_unknown_node(tokd, pb):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    c.put(1, f32(1, 2))
    # a two-node cycle
    r = c.run([c.node("add", [1, 11], [10]), c.node("add", [10, 1], [11])], check=False)
    assert r.status.code == INVALID_ARGUMENT and "later" in r.status.message, r.status
    # a self edge: a node consuming its own output
    r = c.run([c.node("add", [1, 10], [10])], check=False)
    assert r.status.code in (INVALID_ARGUMENT, NOT_FOUND), r.status
    assert "10" in r.status.message
    # a node whose input nobody produces
    r = c.run([c.node("neg", [1], [10]), c.node("add", [10, 12345], [11])], check=False)
    assert r.status.code == NOT_FOUND and "12345" in r.status.message
    # an output id produced twice
    r = c.run([c.node("neg", [1], [10]), c.node("neg", [1], [10])], check=False)
    assert r.status.code == ALREADY_EXISTS
    assert c.stats().session_tensors == 1
    c.close()
    after_case(pb, tokd)


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def test_million_node_chain(start_daemon, tmp_path, pb):
    """10^6 chained nodes (about 17 MB of body, under a 32 MiB max_frame_body): the node
    limit refuses it quickly, neither a hang nor a run of a million graph nodes."""
    tokd = start_daemon("--token-file", write_tokens(tmp_path), "--max-frame-body",
                        str(32 << 20))
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    c.put(1, f32(1))
    parts = []
    for i in range(10 ** 6):
        src = 1 if i == 0 else 100 + i - 1
        ins, outs = _varint(src), _varint(100 + i)
        node = b"\x0a\x03neg" + b"\x12" + _varint(len(ins)) + ins + b"\x1a" + \
            _varint(len(outs)) + outs
        parts.append(b"\x0a" + _varint(len(node)) + node)
    body = b"".join(parts)
    assert MAX_BODY < len(body) < 32 << 20
    t0 = time.monotonic()
    c.send_raw(Client.frame(M_RUN, 55, body))
    _, cid, rbody, _ = c.recv_frame()
    elapsed = time.monotonic() - t0
    r = pb.RunReply()
    r.ParseFromString(rbody)
    assert cid == 55 and r.status.code == RESOURCE_EXHAUSTED, r.status
    assert "max_graph_nodes" in r.status.message
    assert elapsed < 30, elapsed
    assert c.stats().session_tensors == 1
    c.close()
    after_case(pb, tokd)


def test_attr_wrong_type_and_huge(tokd, pb):
    c = client(pb, tokd.unix)
    handshake(c, ALICE_TOKEN)
    c.put(1, np.ones((2, 3), np.float32))
    # wrong types: dim as a string, keepdim as ints, shape as a float
    for node in (c.node("sum", [1], [2], dim="0"),
                 c.node("sum", [1], [2], dim=[1], keepdim=[1]),
                 c.node("reshape", [1], [2], shape=6.0)):
        r = c.run([node], check=False)
        assert r.status.code == INVALID_ARGUMENT, r.status
        assert r.status.message.startswith("node 0"), r.status.message
    # a 1 MiB string attribute, a 1 MiB name, 128 Ki ints
    r = c.run([c.node("div", [1, 1], [2], rounding_mode="x" * (1 << 20))], check=False)
    assert r.status.code == INVALID_ARGUMENT, r.status
    n = c.node("neg", [1], [2])
    n.attrs.add(name="a" * (1 << 20)).i = 1
    r = c.run([n], check=False)
    assert r.status.code == INVALID_ARGUMENT, r.status
    r = c.run([c.node("reshape", [1], [2], shape=[1] * (1 << 17))], check=False)
    assert r.status.code == INVALID_ARGUMENT, r.status
    # an op name of 1 MiB
    r = c.run([c.node("n" * (1 << 20), [1], [2])], check=False)
    assert r.status.code in (INVALID_ARGUMENT, NOT_FOUND), r.status
    assert len(r.status.message) < 4096
    assert c.stats().session_tensors == 1
    c.close()
    after_case(pb, tokd)


def test_million_outputs(tokd, pb):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    c.put(1, np.ones(8, np.float32))
    outs = list(range(100, 100 + 10 ** 6))
    # the per-node limit of 4096 inputs and outputs (the daemon answers RESOURCE_EXHAUSTED;
    # docs/PROTOCOL.md lists it under INVALID_ARGUMENT)
    r = c.run([c.node("split", [1], outs, split_size=1)], check=False)
    assert r.status.code in (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), r.status
    assert "node 0 (split)" in r.status.message and "4096" in r.status.message
    r = c.run([c.node("add", [1] * 10 ** 6, [2])], check=False)
    assert r.status.code in (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), r.status
    assert "node 0 (add)" in r.status.message and "4096" in r.status.message
    assert c.stats().session_tensors == 1
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Free racing a queued graph: calls of one session run in order, so the graph sees the
# tensor and the Free after it frees it; a Free before it makes it fail cleanly.

def test_free_while_graph_queued(tokd, pb):
    c = client(pb, tokd.tcp)
    handshake(c, ALICE_TOKEN)
    a = np.random.default_rng(9).standard_normal((256, 256))
    c.put(1, a)
    nodes = [c.node("matmul", [1, 1 if i == 0 else 10 + i - 1], [10 + i]) for i in range(6)]
    nodes.append(c.node("sum", [15], [20]))
    # Run, then Free of its input and of an intermediate, then Get, all pipelined
    c.send_raw(b"".join([
        Client.frame(M_RUN, 1, pb.RunRequest(nodes=nodes, discard=list(range(10, 15)))
                     .SerializeToString()),
        Client.frame(M_FREE, 2, pb.FreeRequest(ids=[1, 15]).SerializeToString()),
        Client.frame(M_GET, 3, pb.GetRequest(id=20).SerializeToString()),
        Client.frame(M_GET, 4, pb.GetRequest(id=1).SerializeToString()),
    ]))
    replies = [c.recv_frame() for _ in range(4)]
    assert [cid for _, cid, _, _ in replies] == [1, 2, 3, 4]
    run = pb.RunReply()
    run.ParseFromString(replies[0][2])
    assert run.status.code == OK, run.status
    free = pb.FreeReply()
    free.ParseFromString(replies[1][2])
    assert free.status.code == OK and free.freed == 2
    got = np.frombuffer(replies[2][3], np.float64)
    want = np.linalg.matrix_power(a, 7).sum()
    np.testing.assert_allclose(got[0], want, rtol=1e-9)
    get1 = pb.GetReply()
    get1.ParseFromString(replies[3][2])
    assert get1.status.code == NOT_FOUND
    # the reverse order: Free first, then the graph fails and leaves nothing
    c.put(1, a)
    c.send_raw(Client.frame(M_FREE, 5, pb.FreeRequest(ids=[1]).SerializeToString())
               + Client.frame(M_RUN, 6, pb.RunRequest(nodes=nodes[:2]).SerializeToString()))
    c.recv_frame()
    _, cid, body, _ = c.recv_frame()
    r = pb.RunReply()
    r.ParseFromString(body)
    assert cid == 6 and r.status.code == NOT_FOUND
    assert c.stats().session_tensors == 1        # only id 20
    # a client that disconnects with the graph and the Free still queued
    c2 = client(pb, tokd.unix)
    handshake(c2, ALICE_TOKEN)
    c2.put(1, a)
    c2.send_raw(Client.frame(M_RUN, 1, pb.RunRequest(nodes=nodes).SerializeToString())
                + Client.frame(M_FREE, 2, pb.FreeRequest(ids=[1]).SerializeToString()))
    c2.close()
    c.close()
    after_case(pb, tokd)


# ---------------------------------------------------------------------------------------
# Tenancy (ListSessions, KillSession, SetQuota, Shutdown by a user token:
# test_auth.py::test_admin_methods_need_admin)

def test_user_token_drain_and_kill_other_user(tokd, pb):
    victim = client(pb, tokd.tcp)
    hs_v = handshake(victim, BOB_TOKEN)
    victim.put(1, f32(1, 2, 3))
    u = client(pb, tokd.unix)
    handshake(u, ALICE_TOKEN)
    code, msg = u.error_of(M_DRAIN, pb.DrainRequest())
    assert code == PERMISSION_DENIED and "alice" in msg
    code, _ = u.error_of(M_KILL_SESSION, pb.KillSessionRequest(session_id=hs_v.session_id))
    assert code == PERMISSION_DENIED
    h, _ = u.call(M_HEALTH, pb.HealthRequest())
    assert h.serving == pb.HealthReply.SERVING          # no drain started
    np.testing.assert_array_equal(victim.get(1), f32(1, 2, 3))   # not killed
    # before the handshake every admin method is UNAUTHENTICATED
    n = client(pb, tokd.tcp)
    for m in (M_LIST_SESSIONS, M_KILL_SESSION, M_DRAIN):
        code, _ = n.error_of(m, None)
        assert code == UNAUTHENTICATED
    n.close()
    u.close()
    victim.close()
    after_case(pb, tokd)
    assert "admin call refused" in tokd.stderr()


def test_token_edge_cases(tokd, pb):
    """A 60 KiB token, a real token cut by a NUL, a prefix of a real token and a case
    variant are refused like any wrong token; each failure closes the connection. (A real
    token followed by a NUL and more bytes authenticates: the daemon reads the string up to
    the NUL, so it still takes the whole token.)"""
    c = client(pb, tokd.tcp)
    assert handshake(c, ALICE_TOKEN + "\0junk").user == "alice"
    c.close()
    for k, token in enumerate(("t" * (60 << 10), ALICE_TOKEN[:16] + "\0" + ALICE_TOKEN[17:],
                               ALICE_TOKEN[:16], ALICE_TOKEN.upper())):
        time.sleep(0.3)                          # past the lockout of the previous failure
        c = client(pb, tokd.unix if k % 2 else tokd.tcp)
        hs = handshake(c, token, check=False)
        assert hs.status.code in (UNAUTHENTICATED, 14), hs.status
        assert c.at_eof()
        c.close()
    time.sleep(0.3)
    after_case(pb, tokd)
