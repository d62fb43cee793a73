"""Protocol tests: one test per rule of docs/PROTOCOL.md, each followed by a good request
from a second connection, which must still be served (handshake, put, run add, get)."""
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from conftest import (ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT, M_FREE, M_GET,
                      M_HANDSHAKE, M_LIST_OPS, M_PUT, M_RUN, M_STATS, NOT_FOUND, OK,
                      OUT_OF_RANGE, REPO, RESOURCE_EXHAUSTED, TENSORD_BIN, UNIMPLEMENTED,
                      Client, good_request)


def f32(*vals):
    return np.array(vals, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Framing errors: error reply (with the call id once the header was read), then close.

def test_body_length_over_limit(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.send_raw(Client.frame(M_HANDSHAKE, 77, body_len=(1 << 24) + 1))
    method, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 77
    assert r.status.code == RESOURCE_EXHAUSTED
    assert "max_frame_body" in r.status.message
    assert c.at_eof()
    good_request(pb, daemon.unix)


def test_data_length_over_limit(start_daemon, connect, pb):
    d = start_daemon("--max-frame-data", "4096")
    c = connect(d.unix)
    c.handshake()
    req = pb.PutRequest(id=1, dtype=8, shape=[2048])
    c.send_raw(Client.frame(M_PUT, 5, req.SerializeToString(), data_len=8192))
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 5 and r.status.code == RESOURCE_EXHAUSTED
    assert "data_len 8192 exceeds max_frame_data 4096" in r.status.message
    assert c.at_eof()
    good_request(pb, d.tcp)


def test_truncated_frame(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.send_raw(Client.frame(M_STATS, 9, b"\x00" * 10, body_len=50))
    c.sock.shutdown(socket.SHUT_WR)
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 9
    assert r.status.code == INVALID_ARGUMENT
    assert r.status.message == "truncated frame: got 10 of 50 body bytes"
    assert c.at_eof()
    good_request(pb, daemon.unix)


def test_truncated_put_data(daemon, connect, pb):
    c = connect(daemon.unix)
    c.handshake()
    req = pb.PutRequest(id=1, dtype=8, shape=[100])
    c.send_raw(Client.frame(M_PUT, 4, req.SerializeToString(), b"\x01" * 100, data_len=400))
    c.sock.shutdown(socket.SHUT_WR)
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 4 and r.status.code == INVALID_ARGUMENT
    assert r.status.message == "truncated frame: got 100 of 400 data bytes"
    assert c.at_eof()
    good_request(pb, daemon.tcp)


@pytest.mark.parametrize("field,kwargs,text", [
    ("magic", {"magic": b"XDRP"}, "bad magic"),
    ("version", {"version": 2}, "frame version 2"),
    ("kind", {"kind": 2}, "kind 2"),
    ("flags", {"flags": 1}, "flags"),
    ("reserved", {"reserved": 5}, "reserved"),
])
def test_bad_header_field(daemon, connect, pb, field, kwargs, text):
    c = connect(daemon.tcp)
    body = pb.HandshakeRequest(protocol_version=1).SerializeToString()
    c.send_raw(Client.frame(M_HANDSHAKE, 31, body, **kwargs))
    _, cid, rbody, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(rbody)
    assert cid == 31
    assert r.status.code == INVALID_ARGUMENT
    assert text in r.status.message
    assert c.at_eof()
    good_request(pb, daemon.unix)


# ---------------------------------------------------------------------------------------
# Request errors: error reply, the session goes on.

def test_unknown_method(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.send_raw(Client.frame(42, 1234, b"\x08\x01", b"abcdefgh"))
    method, cid, body, data = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert (method, cid) == (42, 1234)
    assert r.status.code == UNIMPLEMENTED
    assert "42" in r.status.message
    assert data == b""
    # same connection still in sync
    assert c.stats().status.code == OK
    good_request(pb, daemon.unix)


def test_undecodable_body(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.send_raw(Client.frame(M_GET, 8, b"\xff\xff\xff"))
    _, cid, body, _ = c.recv_frame()
    r = pb.ErrorReply()
    r.ParseFromString(body)
    assert cid == 8 and r.status.code == INVALID_ARGUMENT
    assert c.stats().status.code == OK
    good_request(pb, daemon.unix)


def test_call_before_handshake(daemon, connect, pb):
    c = connect(daemon.tcp)
    code, msg = c.error_of(M_STATS, pb.StatsRequest())
    assert code == FAILED_PRECONDITION and "Handshake" in msg
    # a Put before the handshake: its data is skipped and the stream stays in sync
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[4]), f32(1, 2, 3, 4).tobytes())
    assert code == FAILED_PRECONDITION
    hs = c.handshake()
    assert hs.status.code == OK
    c.put(1, f32(1, 2, 3, 4))
    np.testing.assert_array_equal(c.get(1), f32(1, 2, 3, 4))
    good_request(pb, daemon.unix)


def test_handshake_version_mismatch(daemon, connect, pb):
    c = connect(daemon.tcp)
    code, msg = c.error_of(M_HANDSHAKE, pb.HandshakeRequest(protocol_version=2))
    assert code == FAILED_PRECONDITION
    assert "2" in msg and "1" in msg
    assert c.handshake().status.code == OK   # the session is still waiting for a handshake
    code, msg = c.error_of(M_HANDSHAKE, pb.HandshakeRequest(protocol_version=1))
    assert code == FAILED_PRECONDITION       # a second handshake is refused
    good_request(pb, daemon.unix)


def test_handshake_reply(start_daemon, connect, pb):
    d = start_daemon("--max-frame-data", "65536", "--max-graph-nodes", "17",
                     "--max-session-ids", "99")
    c = connect(d.tcp)
    hs = c.handshake(seed=12345)
    assert hs.protocol_version == 1
    assert hs.server_version == subprocess.run([TENSORD_BIN, "--version"], capture_output=True,
                                               text=True).stdout.split()[1]
    assert hs.seed == 12345
    assert hs.limits.max_frame_data == 65536
    assert hs.limits.max_graph_nodes == 17
    assert hs.limits.max_session_ids == 99
    assert hs.limits.max_ndim == 16
    assert hs.devices[0].name == "cpu" and hs.devices[0].kind == "cpu"
    assert hs.devices[0].memory_bytes > 0
    assert all(dv.kind == "cuda" for dv in hs.devices[1:])   # GPUs: see test_devices.py
    c2 = connect(d.unix)
    hs2 = c2.handshake()
    assert hs2.seed != 0                      # picked by the server
    assert hs2.session_id != hs.session_id
    good_request(pb, d.unix)


def test_unknown_op(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(1, f32(1, 2))
    r = c.run([c.node("frobnicate", [1], [2])], check=False)
    assert r.status.code == NOT_FOUND
    assert r.status.message == "node 0: unknown op 'frobnicate'"
    good_request(pb, daemon.unix)


def test_unknown_id(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    code, msg = c.error_of(M_GET, pb.GetRequest(id=777))
    assert code == NOT_FOUND and "777" in msg
    c.put(1, f32(1, 2))
    r = c.run([c.node("add", [1, 778], [3])], check=False)
    assert r.status.code == NOT_FOUND and "778" in r.status.message
    good_request(pb, daemon.unix)


def test_freed_id(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(1, f32(1, 2))
    c.put(2, f32(3, 4))
    assert c.free([1]).freed == 1
    code, msg = c.error_of(M_GET, pb.GetRequest(id=1))
    assert code == NOT_FOUND
    r = c.run([c.node("add", [1, 2], [3])], check=False)
    assert r.status.code == NOT_FOUND
    # unknown ids are reported, the known ones are still freed
    r = c.free([1, 2, 99], check=False)
    assert r.status.code == NOT_FOUND
    assert r.freed == 1
    assert "1" in r.status.message and "99" in r.status.message
    assert c.stats().session_tensors == 0
    # the id can be used again after being freed
    c.put(1, f32(5, 6))
    np.testing.assert_array_equal(c.get(1), f32(5, 6))
    good_request(pb, daemon.unix)


def test_id_reused_while_live(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(5, f32(1, 2, 3))
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=5, dtype=8, shape=[3]), f32(7, 8, 9).tobytes())
    assert code == ALREADY_EXISTS
    assert msg == "put: id 5 is already live"
    np.testing.assert_array_equal(c.get(5), f32(1, 2, 3))
    c.put(6, f32(1, 1, 1))
    r = c.run([c.node("add", [5, 6], [5])], check=False)    # output id live
    assert r.status.code == ALREADY_EXISTS
    np.testing.assert_array_equal(c.get(5), f32(1, 2, 3))
    good_request(pb, daemon.unix)


def test_dtype_out_of_range(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=99, shape=[4]), b"\x00" * 16)
    assert code == INVALID_ARGUMENT
    assert msg == "put: dtype 99 out of range"
    # the 16 data bytes were skipped: the next call on this connection works
    c.put(1, f32(1, 2, 3, 4))
    np.testing.assert_array_equal(c.get(1), f32(1, 2, 3, 4))
    # a dtype attr out of range is refused as well
    n = c.node("cast", [1], [2])
    a = n.attrs.add(name="dtype")
    a.dtype = 77
    r = c.run([n], check=False)
    assert r.status.code == INVALID_ARGUMENT and "77" in r.status.message
    good_request(pb, daemon.unix)


def test_negative_dimension(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[2, -3]))
    assert code == INVALID_ARGUMENT and "-3" in msg
    assert c.stats().session_tensors == 0
    good_request(pb, daemon.unix)


def test_element_count_overflow(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    # 2^32 * 2^32 elements: the count itself overflows 64 bits
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[1 << 32, 1 << 32]))
    assert code == INVALID_ARGUMENT
    # 2^61 float32 elements: the byte size (2^63) overflows
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[1 << 61]))
    assert code == INVALID_ARGUMENT
    # 2^50 bytes fit 64 bits but no session may hold that much
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=1, shape=[1 << 50]))
    assert code == RESOURCE_EXHAUSTED
    # too many dimensions
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=1, shape=[1] * 17))
    assert code == INVALID_ARGUMENT
    assert c.stats().session_bytes == 0
    good_request(pb, daemon.unix)


def test_data_beyond_nbytes(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=1, dtype=8, shape=[2]), b"\x00" * 12)
    assert code == INVALID_ARGUMENT and "beyond" in msg
    c.put(1, f32(1, 2))
    np.testing.assert_array_equal(c.get(1), f32(1, 2))
    good_request(pb, daemon.unix)


def test_max_session_ids(start_daemon, connect, pb):
    d = start_daemon("--max-session-ids", "3")
    c = connect(d.tcp)
    c.handshake()
    for i in range(3):
        c.put(i, f32(i))
    code, msg = c.error_of(M_PUT, pb.PutRequest(id=3, dtype=8, shape=[1]), f32(3).tobytes())
    assert code == RESOURCE_EXHAUSTED
    c.free([0])
    c.put(3, f32(3))
    np.testing.assert_array_equal(c.get(3), f32(3))
    good_request(pb, d.unix)


def test_graph_node_limit(start_daemon, connect, pb):
    d = start_daemon("--max-graph-nodes", "2")
    c = connect(d.tcp)
    c.handshake()
    c.put(1, f32(1))
    nodes = [c.node("add", [1, 1], [10 + i]) for i in range(3)]
    r = c.run(nodes, check=False)
    assert r.status.code == RESOURCE_EXHAUSTED and "max_graph_nodes" in r.status.message
    good_request(pb, d.unix)


def test_shape_mismatch_in_graph(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(1, f32(1, 2, 3, 4))
    c.put(2, f32(1, 2, 3))
    r = c.run([c.node("add", [1, 2], [3])], check=False)
    assert r.status.code == INVALID_ARGUMENT
    assert r.status.message.startswith("node 0 (add)")
    # nothing was created
    code, _ = c.error_of(M_GET, pb.GetRequest(id=3))
    assert code == NOT_FOUND
    good_request(pb, daemon.unix)


def test_graph_work_over_the_limit(daemon, connect, pb):
    # A one-element tensor expanded to 2^40 elements costs no memory; summing it would keep a
    # worker busy for hours. The planner refuses it at once.
    c = connect(daemon.tcp)
    hs = c.handshake()
    assert hs.limits.max_graph_work == 2 ** 36
    c.put(1, f32(2))
    t0 = time.monotonic()
    r = c.run([c.node("expand", [1], [2], shape=[2 ** 20, 2 ** 20]),
               c.node("sum", [2], [3])], check=False)
    assert time.monotonic() - t0 < 5
    assert r.status.code == RESOURCE_EXHAUSTED
    assert r.status.message.startswith("node 1 (sum): the graph needs about 1.1e+12")
    assert "max_graph_work" in r.status.message
    code, _ = c.error_of(M_GET, pb.GetRequest(id=2))     # the graph left nothing behind
    assert code == NOT_FOUND
    # the same graph on a smaller expand runs, and its value is right (2 * 2^20)
    c.run([c.node("expand", [1], [4], shape=[1024, 1024]), c.node("sum", [4], [5])])
    assert float(c.get(5)) == 2.0 * 2 ** 20
    good_request(pb, daemon.unix)


def test_graph_refers_to_later_node(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(1, f32(1, 2))
    nodes = [c.node("add", [1, 11], [10]), c.node("add", [1, 1], [11])]
    r = c.run(nodes, check=False)
    assert r.status.code == INVALID_ARGUMENT
    assert "node 0" in r.status.message and "later" in r.status.message
    for tid in (10, 11):
        code, _ = c.error_of(M_GET, pb.GetRequest(id=tid))
        assert code == NOT_FOUND
    good_request(pb, daemon.unix)


# ---------------------------------------------------------------------------------------
# Calls

def test_pipelined_calls_in_order(daemon, connect, pb):
    c = connect(daemon.tcp)
    a = np.arange(8, dtype=np.float32)
    frames = [Client.frame(M_HANDSHAKE, 1000, pb.HandshakeRequest(protocol_version=1)
                           .SerializeToString())]
    frames.append(Client.frame(M_PUT, 1001, pb.PutRequest(id=1, dtype=8, shape=[8])
                               .SerializeToString(), a.tobytes()))
    ids = []
    for i in range(100):
        cid = 5000 + 7 * i
        run = pb.RunRequest(nodes=[c.node("add", [1, 1 if i == 0 else 100 + i - 1], [100 + i])])
        frames.append(Client.frame(M_RUN, cid, run.SerializeToString()))
        ids.append(cid)
    frames.append(Client.frame(M_GET, 9999, pb.GetRequest(id=199).SerializeToString()))
    c.send_raw(b"".join(frames))
    got = []
    for _ in range(len(frames)):
        method, cid, body, data = c.recv_frame()
        got.append(cid)
        r = pb.ErrorReply()
        r.ParseFromString(body)
        assert r.status.code == OK, r.status.message
    assert got == [1000, 1001] + ids + [9999]
    np.testing.assert_array_equal(np.frombuffer(data, np.float32), a * 101)
    good_request(pb, daemon.unix)


def test_client_half_close_gets_all_replies(daemon, connect, pb):
    c = connect(daemon.unix)
    frames = [Client.frame(M_HANDSHAKE, 1, pb.HandshakeRequest(protocol_version=1)
                           .SerializeToString())]
    frames += [Client.frame(M_STATS, 2 + i) for i in range(20)]
    c.send_raw(b"".join(frames))
    c.sock.shutdown(socket.SHUT_WR)
    for i in range(21):
        _, cid, _, _ = c.recv_frame()
        assert cid == 1 + i
    assert c.at_eof()
    good_request(pb, daemon.tcp)


def test_chunked_put_get(start_daemon, connect, pb):
    d = start_daemon("--max-frame-data", "4096")
    c = connect(d.tcp)
    hs = c.handshake()
    assert hs.limits.max_frame_data == 4096
    x = np.random.default_rng(1).standard_normal((50, 201)).astype(np.float32)  # 40200 bytes
    raw = x.tobytes()
    step = 4096
    # first chunk creates the tensor
    c.put(1, x, offset=0, data=raw[:step])
    code, msg = c.error_of(M_GET, pb.GetRequest(id=1))
    assert code == FAILED_PRECONDITION
    assert msg == f"id 1 is incomplete: 4096 of {len(raw)} bytes"
    r = c.run([c.node("add", [1, 1], [2])], check=False)
    assert r.status.code == FAILED_PRECONDITION and "incomplete" in r.status.message
    # a chunk at the wrong offset is refused
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, offset=3 * step), raw[3 * step:4 * step])
    assert code == INVALID_ARGUMENT
    for off in range(step, len(raw), step):
        c.call(M_PUT, pb.PutRequest(id=1, offset=off), raw[off:off + step])
    # a chunk past the end
    code, _ = c.error_of(M_PUT, pb.PutRequest(id=1, offset=len(raw)), b"\x00" * 4)
    assert code in (INVALID_ARGUMENT, FAILED_PRECONDITION)
    # whole Get is capped at max_frame_data
    reply, data = c.call(M_GET, pb.GetRequest(id=1))
    assert len(data) == step and reply.meta.nbytes == len(raw)
    assert list(reply.meta.shape) == [50, 201]
    # fetch in chunks
    parts = []
    off = 0
    while off < len(raw):
        reply, data = c.call(M_GET, pb.GetRequest(id=1, offset=off, length=3000))
        assert reply.offset == off
        parts.append(data)
        off += len(data)
    got = np.frombuffer(b"".join(parts), np.float32).reshape(50, 201)
    np.testing.assert_array_equal(got, x)
    code, _ = c.error_of(M_GET, pb.GetRequest(id=1, offset=len(raw) + 1))
    assert code == OUT_OF_RANGE
    # usable in a graph once complete
    c.run([c.node("add", [1, 1], [2])])
    reply, data = c.call(M_GET, pb.GetRequest(id=2, offset=0, length=400))
    np.testing.assert_array_equal(np.frombuffer(data, np.float32), (x + x).ravel()[:100])
    good_request(pb, d.unix)


def test_plan_only(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    c.put(1, np.ones((3, 4), np.float32))
    c.put(2, np.ones((4,), np.float64))
    r = c.run([c.node("add", [1, 2], [3])], plan_only=True)
    assert [o.id for o in r.outputs] == [3]
    m = r.outputs[0].meta
    assert m.dtype == 9 and list(m.shape) == [3, 4] and list(m.strides) == [4, 1]
    assert m.nbytes == 96
    assert r.bytes_planned == 96
    code, _ = c.error_of(M_GET, pb.GetRequest(id=3))
    assert code == NOT_FOUND               # nothing was computed
    assert c.stats().session_tensors == 2
    good_request(pb, daemon.unix)


def test_run_outputs_and_discard(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 0.5, np.float32)
    c.put(1, a)
    c.put(2, b)
    r = c.run([c.node("add", [1, 2], [10]), c.node("add", [10, 2], [11])], discard=[10])
    assert [o.id for o in r.outputs] == [11]
    np.testing.assert_array_equal(c.get(11), a + b + b)
    code, _ = c.error_of(M_GET, pb.GetRequest(id=10))
    assert code == NOT_FOUND
    good_request(pb, daemon.unix)


def test_get_non_contiguous_view(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    c.put(1, a)
    r = c.run([c.node("transpose", [1], [2], dim0=0, dim1=1)])
    assert list(r.outputs[0].meta.shape) == [4, 3]
    assert list(r.outputs[0].meta.strides) == [1, 4]     # a view of the input
    np.testing.assert_array_equal(c.get(2), a.T)
    good_request(pb, daemon.unix)


def test_list_ops_schema(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    r, _ = c.call(M_LIST_OPS, pb.ListOpsRequest())
    text = (REPO / "server" / "engine" / "ops.def").read_text()
    rows = re.findall(r"^TD_OP\((\w+),\s*(-?\d+),\s*(-?\d+),\s*(-?\d+),", text, re.M)
    assert rows
    by_name = {o.name: o for o in r.ops}
    assert sorted(by_name) == sorted(name for name, *_ in rows)
    for name, mn, mx, nout in rows:
        o = by_name[name]
        assert (o.min_inputs, o.max_inputs, o.num_outputs) == (int(mn), int(mx), int(nout)), name
        assert o.doc
        assert o.dtypes
    add = by_name["add"]
    assert [(a.name, a.type, a.required) for a in add.attrs] == [("alpha", "scalar", False)]
    assert "elementwise" in add.flags and "promote" in add.flags
    assert sorted(add.dtypes) == list(range(12))
    zeros = by_name["zeros"]
    attrs = {a.name: a for a in zeros.attrs}
    assert attrs["shape"].required and attrs["shape"].type == "ints"
    assert attrs["dtype"].default_value == "float32" and not attrs["dtype"].required
    good_request(pb, daemon.unix)


def test_stats_and_session_freed_on_disconnect(daemon, connect, pb):
    watcher = connect(daemon.unix)
    watcher.handshake()
    base = watcher.stats()
    assert base.server_sessions == 1 and base.session_bytes == 0
    assert base.server_version
    a = connect(daemon.tcp)
    a.handshake()
    big = np.ones(1 << 18, np.float32)       # 1 MiB
    a.put(1, big)
    a.run([a.node("add", [1, 1], [2])])
    sa = a.stats()
    assert sa.session_tensors == 2
    assert sa.session_bytes >= 2 << 20
    s = watcher.stats()
    assert s.server_sessions == 2
    assert s.server_bytes >= base.server_bytes + (2 << 20)
    assert s.calls_total > base.calls_total
    a.close()
    deadline = time.monotonic() + 10
    while True:
        s = watcher.stats()
        if s.server_sessions == 1 and s.server_bytes == base.server_bytes:
            break
        assert time.monotonic() < deadline, f"session not freed: {s}"
        time.sleep(0.02)
    good_request(pb, daemon.tcp)


def test_large_transfer(daemon, connect, pb):
    c = connect(daemon.unix)
    c.handshake()
    x = np.random.default_rng(3).integers(0, 255, size=48 << 20, dtype=np.uint8)
    c.put(1, x)
    np.testing.assert_array_equal(c.get(1), x)
    good_request(pb, daemon.tcp)


def test_sigterm_with_live_sessions(start_daemon, connect, pb):
    d = start_daemon()
    clients = []
    for i in range(4):
        c = connect(d.tcp if i % 2 else d.unix)
        c.handshake()
        c.put(1, np.ones(1000, np.float64))
        clients.append(c)
    # one client leaves calls in flight and a partial upload
    clients[0].send_call(M_PUT, pb.PutRequest(id=9, dtype=8, shape=[1 << 16]), b"\x00" * 1000)
    for _ in range(50):
        clients[1].send_call(M_RUN, pb.RunRequest(nodes=[clients[1].node("add", [1, 1], [2])]))
    good_request(pb, d.unix)
    # the fixture's teardown sends SIGTERM and requires exit code 0 and no leak reports
    assert d.stop() == 0


def test_sigint_exits_zero(start_daemon, connect, pb):
    d = start_daemon()
    c = connect(d.tcp)
    c.handshake()
    c.put(1, f32(1))
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(timeout=30) == 0


def test_help_and_version():
    r = subprocess.run([TENSORD_BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert re.fullmatch(r"tensord \d+\.\d+\.\d+\n", r.stdout)
    r = subprocess.run([TENSORD_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for opt in ("--listen", "--threads", "--max-frame-body", "--max-frame-data",
                "--max-graph-nodes", "--max-session-ids", "--log-level", "--allow-remote",
                "--help", "--version"):
        assert opt in r.stdout
    assert "authentication" in r.stdout
    r = subprocess.run([TENSORD_BIN, "--threads", "0"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "--threads" in r.stderr
    r = subprocess.run([TENSORD_BIN, "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0


def test_non_loopback_refused():
    r = subprocess.run([TENSORD_BIN, "--listen", "tcp://0.0.0.0:0"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert "allow-remote" in r.stderr
    assert "listening" not in r.stdout


def test_disconnect_while_graph_runs(daemon, connect, pb):
    c = connect(daemon.tcp)
    c.handshake()
    a = np.random.default_rng(5).standard_normal((384, 384)).astype(np.float64)
    c.put(1, a)
    nodes = [c.node("matmul", [1, 1 if i == 0 else 10 + i - 1], [10 + i]) for i in range(8)]
    c.send_call(M_RUN, pb.RunRequest(nodes=nodes))
    c.close()              # the session is freed once the worker is done with the graph
    watcher = connect(daemon.unix)
    watcher.handshake()
    deadline = time.monotonic() + 30
    while watcher.stats().server_sessions != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert watcher.stats().server_bytes == 0
    good_request(pb, daemon.unix)


def test_concurrent_sessions(daemon, pb):
    import threading
    errors = []

    def worker(k):
        try:
            c = Client(pb, daemon.tcp if k % 2 else daemon.unix)
            c.handshake()
            a = np.arange(16, dtype=np.float32) * (k + 1)
            c.put(1, a)
            for i in range(30):
                c.send_call(M_RUN, pb.RunRequest(nodes=[c.node("add", [1, 1], [100 + i])]))
            for i in range(30):
                m, cid, body, _ = c.recv_frame()
                r = pb.RunReply()
                r.ParseFromString(body)
                assert r.status.code == OK, r.status.message
            np.testing.assert_array_equal(c.get(129), a + a)
            if k % 3 == 0:
                c.send_call(M_RUN, pb.RunRequest(nodes=[c.node("add", [1, 1], [999])]))
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    good_request(pb, daemon.unix)
