"""The tensord wire layer: frames, call ids, pipelining, status codes and exceptions.

A frame is a 40-byte little-endian header (struct '<4sHBBIIQQQ': magic b'TDRP', version 1,
kind 1 request / 2 response, flags 0, method, reserved 0, call_id, body_len, data_len),
then the protobuf body, then raw tensor bytes (docs/PROTOCOL.md). The server runs one
session's calls in order and answers each with the same call id, so a client may send many
requests before it reads any reply.
"""
import collections
import socket
import struct
import threading
import time

from . import tensord_pb2 as pb

HEADER = struct.Struct("<4sHBBIIQQQ")
HEADER_SIZE = HEADER.size
MAGIC = b"TDRP"
VERSION = 1
KIND_REQUEST = 1
KIND_RESPONSE = 2

HANDSHAKE, PUT, GET, FREE, RUN, LIST_OPS, STATS = 1, 2, 3, 4, 5, 6, 7
METHOD_NAMES = {HANDSHAKE: "Handshake", PUT: "Put", GET: "Get", FREE: "Free", RUN: "Run",
                LIST_OPS: "ListOps", STATS: "Stats"}
REPLY_TYPES = {HANDSHAKE: pb.HandshakeReply, PUT: pb.PutReply, GET: pb.GetReply,
               FREE: pb.FreeReply, RUN: pb.RunReply, LIST_OPS: pb.ListOpsReply,
               STATS: pb.StatsReply}
# Administration (docs/PROTOCOL.md, methods 8-13).
LIST_SESSIONS, KILL_SESSION, SET_QUOTA, DRAIN, SHUTDOWN, HEALTH = 8, 9, 10, 11, 12, 13
METHOD_NAMES.update({LIST_SESSIONS: "ListSessions", KILL_SESSION: "KillSession",
                     SET_QUOTA: "SetQuota", DRAIN: "Drain", SHUTDOWN: "Shutdown",
                     HEALTH: "Health"})
REPLY_TYPES.update({LIST_SESSIONS: pb.ListSessionsReply, KILL_SESSION: pb.KillSessionReply,
                    SET_QUOTA: pb.SetQuotaReply, DRAIN: pb.DrainReply,
                    SHUTDOWN: pb.ShutdownReply, HEALTH: pb.HealthReply})
CANCEL, LIST_USERS = 14, 15
METHOD_NAMES.update({CANCEL: "Cancel", LIST_USERS: "ListUsers"})
REPLY_TYPES.update({CANCEL: pb.CancelReply, LIST_USERS: pb.ListUsersReply})

# Requests sent without waiting before the client reads a reply (bounds both peers' buffers).
MAX_OUTSTANDING = 64
# Raw data is sent and received in slices of this size so a progress bar can advance.
IO_SLICE = 4 << 20

CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
              "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
              "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
              "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


class TensordError(Exception):
    """An error reported by the daemon (or a broken connection).

    Attributes: code (gRPC code name, "INVALID_ARGUMENT"), code_value (its number) and
    message (the daemon's text, "node 1 (matmul): inner dims 3 != 4").
    """

    code_value = 2

    def __init__(self, code, message):
        if isinstance(code, str):
            value = CODE_NAMES.index(code) if code in CODE_NAMES else 2
        else:
            value = int(code)
        self.code_value = value
        self.code = CODE_NAMES[value] if 0 <= value < len(CODE_NAMES) else "UNKNOWN"
        self.message = message
        super().__init__("%s: %s" % (self.code, message))


class Cancelled(TensordError):
    pass


class Unknown(TensordError):
    pass


class InvalidArgument(TensordError, ValueError):
    pass


class DeadlineExceeded(TensordError, TimeoutError):
    pass


class NotFound(TensordError, LookupError):
    pass


class AlreadyExists(TensordError):
    pass


class PermissionDenied(TensordError, PermissionError):
    pass


class ResourceExhausted(TensordError, MemoryError):
    pass


class FailedPrecondition(TensordError):
    pass


class Aborted(TensordError):
    pass


class OutOfRange(TensordError, IndexError):
    pass


class Unimplemented(TensordError, NotImplementedError):
    pass


class Internal(TensordError):
    pass


class Unavailable(TensordError, ConnectionError):
    pass


class DataLoss(TensordError):
    pass


class Unauthenticated(TensordError, PermissionError):
    pass


_ERROR_CLASSES = (None, Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
                  AlreadyExists, PermissionDenied, ResourceExhausted, FailedPrecondition,
                  Aborted, OutOfRange, Unimplemented, Internal, Unavailable, DataLoss,
                  Unauthenticated)


def make_error(code, message):
    """Returns: the TensordError subclass instance for a gRPC code number."""
    code = int(code)
    cls = _ERROR_CLASSES[code] if 0 < code < len(_ERROR_CLASSES) else Unknown
    return cls(code, message)


def as_bytes_view(arr):
    """Returns: a flat uint8 memoryview of a C-contiguous NumPy array (no copy)."""
    flat = arr.reshape(-1)
    return memoryview(flat.view("u1"))


class _Pending:
    """One outstanding call. on_reply(p) runs when its reply has been read (p.reply,
    p.error, p.data_len set); it must not send or wait itself."""
    __slots__ = ("call_id", "method", "sink", "on_reply", "reply", "error", "done",
                 "progress", "data_len")

    def __init__(self, call_id, method, sink, on_reply, progress):
        self.call_id = call_id
        self.method = method
        self.sink = sink
        self.on_reply = on_reply
        self.progress = progress
        self.reply = None
        self.data_len = 0
        self.error = None
        self.done = False


class Connection:
    """One framed, pipelined connection. Thread: every public method takes `lock`.

    Replies are read only when the caller waits (wait, drain, read_available) or when more
    than MAX_OUTSTANDING calls are outstanding before a send, so both peers' buffers stay
    bounded and a client that sends many requests without waiting cannot deadlock the
    socket. after_read, when set, is called after every reply was handled (outside the
    reply's own on_reply) and may send requests itself.
    """

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.RLock()
        self._next_call = 1
        self._pending = collections.OrderedDict()
        self._broken = None
        self._hdr = bytearray(HEADER_SIZE)
        self.max_frame_data = 1 << 62
        self.after_read = None
        self.replies_read = 0

    # ---- sending -----------------------------------------------------------------------
    def _sendv(self, head, data, progress=None):
        if data is None or len(data) <= IO_SLICE:
            views = [memoryview(head)]
            if data is not None and len(data):
                views.append(memoryview(data))
            while views:
                n = self.sock.sendmsg(views)
                while n > 0:
                    if n >= len(views[0]):
                        n -= len(views[0])
                        views.pop(0)
                    else:
                        views[0] = views[0][n:]
                        n = 0
            if progress is not None and data is not None:
                progress.update(len(data))
            return
        self.sock.sendall(head)
        mv = memoryview(data)
        for off in range(0, len(mv), IO_SLICE):
            piece = mv[off:off + IO_SLICE]
            self.sock.sendall(piece)
            if progress is not None:
                progress.update(len(piece))

    def send(self, method, msg, data=None, *, sink=None, on_reply=None, progress=None):
        """Sends one request without waiting for its reply.

        data: a bytes-like object (the data section). sink: a writable uint8 memoryview the
        reply's data section is read into. on_reply: called with the _Pending once the
        reply was read (nobody else sees an error of a call nobody waits for).
        Returns: the call's _Pending. Raises TensordError (UNAVAILABLE) on a broken
        connection.
        """
        with self.lock:
            self._check()
            while len(self._pending) >= MAX_OUTSTANDING:
                self._read_one()
                self._check()
            call_id = self._next_call
            self._next_call += 1
            body = msg.SerializeToString()
            dlen = 0 if data is None else len(data)
            hdr = HEADER.pack(MAGIC, VERSION, KIND_REQUEST, 0, method, 0, call_id, len(body),
                              dlen)
            p = _Pending(call_id, method, sink, on_reply, progress)
            self._pending[call_id] = p
            try:
                self._sendv(hdr + body, data, progress)
            except OSError as e:
                self._fail("send failed: %s" % e)
            return p

    # ---- receiving ---------------------------------------------------------------------
    def _recv_into(self, view, progress=None):
        pos = 0
        n = len(view)
        while pos < n:
            try:
                got = self.sock.recv_into(view[pos:pos + IO_SLICE] if n - pos > IO_SLICE
                                          else view[pos:])
            except InterruptedError:
                continue
            except OSError as e:
                self._fail("receive failed: %s" % e)
            if got == 0:
                self._fail("connection closed by the daemon")
            pos += got
            if progress is not None:
                progress.update(got)

    def _discard_bytes(self, n):
        scratch = memoryview(bytearray(min(n, IO_SLICE)))
        while n > 0:
            k = min(n, len(scratch))
            self._recv_into(scratch[:k])
            n -= k

    def _read_one(self):
        hv = memoryview(self._hdr)
        self._recv_into(hv)
        magic, version, kind, _flags, method, _res, call_id, body_len, data_len = \
            HEADER.unpack(self._hdr)
        if magic != MAGIC or version != VERSION or kind != KIND_RESPONSE:
            self._fail("bad reply header (magic %r, version %d, kind %d)" % (magic, version,
                                                                            kind))
        body = bytearray(body_len)
        self._recv_into(memoryview(body))
        p = self._pending.pop(call_id, None)
        if p is None:
            # A reply to no outstanding call: the daemon rejected the framing and is closing.
            msg = pb.ErrorReply()
            try:
                msg.ParseFromString(bytes(body))
                text = "%s (%s)" % (msg.status.message, CODE_NAMES[msg.status.code]
                                    if msg.status.code < len(CODE_NAMES) else msg.status.code)
            except Exception:  # noqa: BLE001 - any decode failure means the same thing
                text = "undecodable reply"
            self._discard_bytes(data_len)
            self._fail("reply for unknown call %d: %s" % (call_id, text))
        reply = REPLY_TYPES.get(p.method, pb.ErrorReply)()
        try:
            reply.ParseFromString(bytes(body))
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others
            self._discard_bytes(data_len)
            self._fail("cannot decode %s reply: %s" % (METHOD_NAMES.get(p.method), e))
        if data_len:
            if p.sink is not None and data_len <= len(p.sink) and reply.status.code == 0:
                self._recv_into(p.sink[:data_len], p.progress)
            else:
                self._discard_bytes(data_len)
        p.reply = reply
        p.data_len = data_len
        if reply.status.code != 0:
            p.error = make_error(reply.status.code, reply.status.message)
        p.done = True
        self.replies_read += 1
        if p.on_reply is not None:
            p.on_reply(p)
        if self.after_read is not None:
            self.after_read()
        return p

    def read_one(self):
        """Reads (blocking) and handles one reply. Returns: its _Pending. Raises
        TensordError (UNAVAILABLE) on a broken connection or when nothing is outstanding."""
        with self.lock:
            self._check()
            if not self._pending:
                raise Unavailable(14, "no outstanding call to wait for")
            return self._read_one()

    def read_available(self):
        """Handles the replies that can be read without blocking on the socket (a reply
        whose first bytes arrived is read to its end). Returns: how many were read."""
        n = 0
        with self.lock:
            while self._pending and self._broken is None:
                try:
                    peek = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    self._fail("receive failed: %s" % e)
                if not peek:
                    self._fail("connection closed by the daemon")
                self._read_one()
                n += 1
        return n

    def wait(self, p):
        """Reads replies until p's (a _Pending from send) has been read.
        Returns: (reply message, data_len). Raises the call's error (a TensordError)."""
        with self.lock:
            while not p.done:
                self._check()
                self._read_one()
            if p.error is not None:
                raise p.error
            return p.reply, p.data_len

    def drain(self):
        """Reads every outstanding reply."""
        with self.lock:
            while self._pending:
                self._check()
                self._read_one()

    @property
    def outstanding(self):
        return len(self._pending)

    def call(self, method, msg, data=None, **kw):
        """Sends one request and waits for its reply. Returns (reply, data_len)."""
        with self.lock:
            return self.wait(self.send(method, msg, data, **kw))

    # ---- state -------------------------------------------------------------------------
    def _check(self):
        if self._broken is not None:
            raise Unavailable(14, self._broken)

    def _fail(self, why):
        self._broken = "connection unusable: " + why
        try:
            self.sock.close()
        except OSError:
            pass
        raise Unavailable(14, self._broken)

    @property
    def broken(self):
        return self._broken is not None

    def close(self, graceful=0.0):
        """Closes the connection. graceful > 0: ends the stream first (shutdown for writing)
        and reads what the daemon still sends until it closes too, for at most that many
        seconds, so the daemon sees a clean end of stream (which ends a resumable session
        instead of parking it) rather than a reset."""
        with self.lock:
            if self._broken is None:
                self._broken = "connection closed"
            if graceful > 0:
                deadline = time.monotonic() + graceful
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                    while True:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self.sock.settimeout(left)
                        if not self.sock.recv(65536):
                            break
                except OSError:
                    pass
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
