"""Fixtures for the protocol tests: a real tensord process and a raw-frame client.

The daemon binary comes from $TENSORD_BIN (default /work/main/build-s/server/tensord). Each
test gets its own daemon on tcp://127.0.0.1:0 and a Unix socket in a temporary directory;
teardown sends SIGTERM and requires exit code 0 and a stderr free of sanitizer reports.
"""
import importlib
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TENSORD_BIN = os.environ.get(
    "TENSORD_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "server", "tensord"))

HDR = struct.Struct("<4sHBBIIQQQ")
MAGIC = b"TDRP"
M_HANDSHAKE, M_PUT, M_GET, M_FREE, M_RUN, M_LIST_OPS, M_STATS = range(1, 8)

# gRPC codes
OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS = 0, 3, 5, 6
RESOURCE_EXHAUSTED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED = 8, 9, 11, 12

NP_TO_DTYPE = {
    np.dtype(np.bool_): 0, np.dtype(np.uint8): 1, np.dtype(np.int8): 2,
    np.dtype(np.int16): 3, np.dtype(np.int32): 4, np.dtype(np.int64): 5,
    np.dtype(np.float16): 6, np.dtype(np.float32): 8, np.dtype(np.float64): 9,
    np.dtype(np.complex64): 10, np.dtype(np.complex128): 11,
}
DTYPE_TO_NP = {v: k for k, v in NP_TO_DTYPE.items()}

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The Python protobuf module generated from proto/tensord.proto."""
    out = tmp_path_factory.mktemp("pb")
    subprocess.run(["protoc", f"--python_out={out}", f"--proto_path={REPO / 'proto'}",
                    str(REPO / "proto" / "tensord.proto")], check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("tensord_pb2")
    finally:
        sys.path.remove(str(out))


class Daemon:
    def __init__(self, args, tmp_path):
        # Unix socket paths are limited to 107 bytes: keep it short, outside tmp_path.
        self.sock_dir = tempfile.mkdtemp(prefix="td")
        self.sock_path = os.path.join(self.sock_dir, "s.sock")
        self.stderr_path = tmp_path / "tensord.stderr"
        self.stderr_file = open(self.stderr_path, "wb")
        cmd = [TENSORD_BIN, "--listen", "tcp://127.0.0.1:0",
               "--listen", f"unix://{self.sock_path}", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file)
        self.addrs = []
        deadline = time.monotonic() + 30
        buf = b""
        while len(self.addrs) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"tensord did not start: {self.stderr()}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"tensord closed stdout: {self.stderr()}")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                word, addr = line.decode().split(" ", 1)
                assert word == "listening"
                self.addrs.append(addr)
        self.tcp = next(a for a in self.addrs if a.startswith("tcp://"))
        self.unix = next(a for a in self.addrs if a.startswith("unix://"))

    def stderr(self):
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung"
        self.proc.stdout.close()
        self.stderr_file.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        return rc

    def check_clean_exit(self):
        rc = self.stop()
        err = self.stderr()
        assert rc == 0, f"tensord exit code {rc}\n{err}"
        for mark in SANITIZER_MARKS:
            assert mark not in err, f"sanitizer report in stderr:\n{err}"


@pytest.fixture
def start_daemon(tmp_path):
    """Factory: start_daemon(*extra_args) -> Daemon; all are stopped and checked at teardown."""
    started = []

    def start(*args):
        d_dir = tmp_path / f"d{len(started)}"
        d_dir.mkdir()
        d = Daemon(list(args), d_dir)
        started.append(d)
        return d

    yield start
    for d in started:
        d.check_clean_exit()


@pytest.fixture
def daemon(start_daemon):
    return start_daemon("--threads", "2")


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"code {code}: {message}")
        self.code = code
        self.message = message


class Client:
    """A raw-frame client: one connection, one session."""

    def __init__(self, pb, addr, timeout=30.0):
        self.pb = pb
        if addr.startswith("tcp://"):
            host, port = addr[6:].rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(addr[7:])
        self.next_call = 1
        self.reply_types = {
            M_HANDSHAKE: pb.HandshakeReply, M_PUT: pb.PutReply, M_GET: pb.GetReply,
            M_FREE: pb.FreeReply, M_RUN: pb.RunReply, M_LIST_OPS: pb.ListOpsReply,
            M_STATS: pb.StatsReply,
        }

    def close(self):
        self.sock.close()

    # ---- raw frames
    @staticmethod
    def frame(method, call_id, body=b"", data=b"", magic=MAGIC, version=1, kind=1, flags=0,
              reserved=0, body_len=None, data_len=None):
        hdr = HDR.pack(magic, version, kind, flags, method, reserved, call_id,
                       len(body) if body_len is None else body_len,
                       len(data) if data_len is None else data_len)
        return hdr + body + data

    def send_raw(self, raw):
        self.sock.sendall(raw)

    def recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise EOFError(f"connection closed after {got} of {n} bytes")
            got += k
        return bytes(buf)

    def recv_frame(self):
        """Returns (method, call_id, body, data) of the next response frame."""
        magic, version, kind, flags, method, reserved, call_id, blen, dlen = HDR.unpack(
            self.recv_exact(HDR.size))
        assert magic == MAGIC and version == 1 and kind == 2 and flags == 0 and reserved == 0
        body = self.recv_exact(blen)
        data = self.recv_exact(dlen) if dlen else b""
        return method, call_id, body, data

    def at_eof(self, timeout=10.0):
        """True when the server closed the connection (and sent nothing more)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def send_call(self, method, msg=None, data=b"", call_id=None):
        if call_id is None:
            call_id = self.next_call
            self.next_call += 1
        body = msg.SerializeToString() if msg is not None else b""
        self.send_raw(self.frame(method, call_id, body, data))
        return call_id

    def recv_reply(self, method, call_id):
        m, cid, body, data = self.recv_frame()
        assert cid == call_id, f"reply call id {cid}, expected {call_id}"
        assert m == method
        reply = self.reply_types[method]()
        reply.ParseFromString(body)
        return reply, data

    def call(self, method, msg=None, data=b"", check=True):
        cid = self.send_call(method, msg, data)
        reply, rdata = self.recv_reply(method, cid)
        if check and reply.status.code != OK:
            raise RpcError(reply.status.code, reply.status.message)
        return reply, rdata

    def error_of(self, method, msg=None, data=b""):
        """Makes a call that must fail; returns (code, message)."""
        reply, _ = self.call(method, msg, data, check=False)
        assert reply.status.code != OK, "call unexpectedly succeeded"
        return reply.status.code, reply.status.message

    # ---- methods
    def handshake(self, seed=0, version=1):
        return self.call(M_HANDSHAKE, self.pb.HandshakeRequest(
            protocol_version=version, client_name="pytest", seed=seed))[0]

    def put(self, tid, arr, offset=0, data=None):
        arr = np.ascontiguousarray(arr)
        req = self.pb.PutRequest(id=tid, dtype=NP_TO_DTYPE[arr.dtype], shape=list(arr.shape),
                                 offset=offset)
        return self.call(M_PUT, req, arr.tobytes() if data is None else data)[0]

    def get(self, tid):
        reply, data = self.call(M_GET, self.pb.GetRequest(id=tid))
        dt = DTYPE_TO_NP[reply.meta.dtype]
        assert reply.meta.nbytes == len(data)
        return np.frombuffer(data, dtype=dt).reshape(tuple(reply.meta.shape))

    def node(self, op, inputs, outputs, **attrs):
        n = self.pb.Node(op=op, inputs=inputs, outputs=outputs)
        for name, v in attrs.items():
            a = n.attrs.add(name=name)
            if isinstance(v, bool):
                a.b = v
            elif isinstance(v, int):
                a.i = v
            elif isinstance(v, float):
                a.f = v
            elif isinstance(v, str):
                a.s = v
            elif isinstance(v, (list, tuple)):
                a.ints.values.extend(v)
            else:
                raise TypeError(v)
        return n

    def run(self, nodes, discard=(), plan_only=False, check=True):
        req = self.pb.RunRequest(nodes=nodes, discard=list(discard), plan_only=plan_only)
        return self.call(M_RUN, req, check=check)[0]

    def free(self, ids, check=True):
        return self.call(M_FREE, self.pb.FreeRequest(ids=list(ids)), check=check)[0]

    def stats(self):
        return self.call(M_STATS, self.pb.StatsRequest())[0]


@pytest.fixture
def connect(pb):
    clients = []

    def make(addr):
        c = Client(pb, addr)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def good_request(pb, addr):
    """A second client that must be served correctly: handshake, put, run add, get."""
    c = Client(pb, addr)
    try:
        c.handshake()
        rng = np.random.default_rng(7)
        a = rng.standard_normal(4).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        c.put(1, a)
        c.put(2, b)
        r = c.run([c.node("add", [1, 2], [3])])
        assert [o.id for o in r.outputs] == [3]
        assert list(r.outputs[0].meta.shape) == [4]
        got = c.get(3)
        np.testing.assert_array_equal(got, a + b)
    finally:
        c.close()
