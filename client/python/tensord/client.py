"""Connections to a tensord daemon: addresses, the embedded daemon, sessions, graphs.

``connect(address)`` opens a session; with no address it starts a private daemon on a
temporary Unix socket and stops it when the client closes or the interpreter exits.
Every op is a small graph whose nodes name session ids that the client picks, so Python
numbers (``scalar_tensor`` nodes) and uploads travel with the op that uses them. Ops are
asynchronous: Client queues their graphs and sends them as one Run (a batch) without
waiting; a _Run records each batch's outcome, which pending Tensors read when their meta
or data is needed. A failed batch is re-sent one op per Run (the daemon undid all of it)
so that errors belong to the op that caused them (see the package doc).
"""
import collections
import contextlib
import functools
import itertools
import math
import numbers
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref

import numpy as np

from . import _wire
from . import dtypes as _dt
from ._progress import Progress
from ._wire import TensordError
from . import tensord_pb2 as pb

__all__ = ["Client", "connect", "default_client", "set_default_client", "OpSchema",
           "is_grad_enabled"]

CLIENT_NAME = "tensord-python/0.1.0"
START_TIMEOUT = 20.0
# Nodes queued before they are sent as one Run (see Client); 1 sends every op at once.
# Measured on a chain of 200 `x * 1.0001 + 0.5` steps: 64 and 256 are within noise of each
# other and ~4x faster than 1; 64 bounds how long a batch's temporaries stay alive.
DEFAULT_BATCH = 64

_default = None
_default_lock = threading.Lock()

# Grad mode (torch.is_grad_enabled): per thread, on by default. Every node queued while it
# is off carries no_grad, so the daemon records no autograd history for it.
_grad_tls = threading.local()


def is_grad_enabled():
    """Returns: whether grad mode is on in this thread (see tensord.no_grad)."""
    return getattr(_grad_tls, "enabled", True)


def _set_grad_enabled(mode):
    """Sets this thread's grad mode. Returns: the previous mode."""
    prev = getattr(_grad_tls, "enabled", True)
    _grad_tls.enabled = bool(mode)
    return prev


def default_client(required=True):
    """Returns: the module-level default client (set by connect()); raises RuntimeError when
    there is none and `required`."""
    c = _default
    if c is None or c.closed:
        if required:
            raise RuntimeError("no tensord connection: call tensord.connect() first")
        return None
    return c


def set_default_client(client):
    """Makes `client` (or None) the default used when no client is given."""
    global _default
    with _default_lock:
        _default = client


def connect(address=None, *, seed=None, set_default=True, **kw):
    """Opens a session with a daemon and makes it the default client.

    address: "unix:///path", "tcp://host:port", "tls://host:port" (TLS), "host:port", or None
    to start a private daemon (binary from $TENSORD_BIN, else `tensord` on PATH). seed: the
    session RNG seed. TLS keywords (see Client): tls, tls_ca, tls_cert, tls_key,
    tls_server_name. Returns: a Client (also a context manager).
    """
    c = Client(address, seed=seed, **kw)
    if set_default:
        set_default_client(c)
        _install_module_functions(c)
    return c


def _install_module_functions(client):
    """Adds a module-level function for every op the daemon publishes that the package does
    not define by hand, so `tensord.<op>` and dir(tensord) follow the daemon's op table."""
    import tensord as _pkg
    from . import ops as _ops
    for name in client.schema():
        if not hasattr(_pkg, name) or getattr(getattr(_pkg, name), "_td_generated", False):
            setattr(_pkg, name, _ops.make_op_function(name))


# ---- addresses and sockets ---------------------------------------------------------------
def parse_address(address):
    """Returns: ("unix", path) or ("tcp", (host, port)); "tls://host:port" is a TCP address
    too (address_wants_tls tells it apart). Raises ValueError."""
    a = address.strip()
    if a.startswith("tls://"):
        a = a[len("tls://"):]
    if a.startswith("unix://"):
        path = a[len("unix://"):]
        if not path:
            raise ValueError("empty unix socket path in %r" % address)
        return "unix", path
    if a.startswith("unix:"):
        return "unix", a[len("unix:"):]
    if a.startswith("/"):
        return "unix", a
    if a.startswith("tcp://"):
        a = a[len("tcp://"):]
    a = a.rstrip("/")
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, sep, port = a.rpartition(":")
        if not sep:
            raise ValueError("address %r has no port (use host:port or unix:///path)"
                             % address)
    try:
        port = int(port)
    except ValueError:
        raise ValueError("bad port in address %r" % address) from None
    return "tcp", (host or "127.0.0.1", port)


def address_wants_tls(address):
    """Returns: whether the address names TLS (the tls:// scheme)."""
    return address is not None and address.strip().startswith("tls://")


def make_tls_context(tls_ca=None, tls_cert=None, tls_key=None):
    """Returns: an ssl.SSLContext for a client, TLS 1.2 or newer, that verifies the daemon's
    certificate against tls_ca (a PEM file of CA certificates; None: the system's CAs) and
    checks the host name; tls_cert (PEM chain) and tls_key (its key, default: in tls_cert)
    present a client certificate to a daemon that asks for one (mutual TLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls_cert:
        ctx.load_cert_chain(tls_cert, tls_key)
    elif tls_key:
        raise ValueError("tls_key needs tls_cert (the client certificate)")
    return ctx


class _TLSSocket:
    """An ssl.SSLSocket with the socket calls _wire.Connection makes: sendmsg (an SSLSocket
    has none) and recv(1, MSG_PEEK | MSG_DONTWAIT), which TLS cannot do: it reads a record
    without blocking into a small buffer that later reads take first. Everything else goes to
    the SSLSocket."""

    def __init__(self, sock):
        self._s = sock
        self._buf = b""

    def __getattr__(self, name):
        return getattr(self._s, name)

    def sendmsg(self, views):
        total = sum(len(v) for v in views)
        if total <= 65536:
            self._s.sendall(b"".join(views))    # header and body in one record
        else:
            for v in views:
                self._s.sendall(v)
        return total

    def sendall(self, data):
        self._s.sendall(data)

    def recv_into(self, view, nbytes=0):
        if self._buf:
            n = min(len(self._buf), nbytes or len(view))
            view[:n] = self._buf[:n]
            self._buf = self._buf[n:]
            return n
        return self._s.recv_into(view, nbytes)

    def recv(self, n, flags=0):
        if not flags & socket.MSG_PEEK:
            if self._buf:
                out, self._buf = self._buf[:n], self._buf[n:]
                return out
            return self._s.recv(n)
        if not self._buf:
            timeout = self._s.gettimeout()
            if flags & socket.MSG_DONTWAIT:
                self._s.setblocking(False)
            try:
                self._buf = self._s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise BlockingIOError("no whole TLS record buffered") from None
            finally:
                self._s.settimeout(timeout)
            if not self._buf:
                return b""
        return self._buf[:n]


def _tls_wrap(raw, host, tls, tls_ca, tls_cert, tls_key, tls_server_name):
    ctx = tls if isinstance(tls, ssl.SSLContext) else make_tls_context(tls_ca, tls_cert,
                                                                        tls_key)
    return _TLSSocket(ctx.wrap_socket(raw, server_hostname=tls_server_name or host))


def open_socket(address, timeout=None, *, tls=None, tls_ca=None, tls_cert=None, tls_key=None,
                tls_server_name=None):
    """Connects to address. TLS is used when tls is true (or an ssl.SSLContext to use), the
    address is tls://host:port, or another tls_* argument is given; see make_tls_context.
    Returns: a connected socket (a TLS wrapper after a verified handshake). Raises OSError
    (ssl.SSLError included) or ValueError."""
    want_tls = bool(tls) or address_wants_tls(address) or any(
        x is not None for x in (tls_ca, tls_cert, tls_key, tls_server_name))
    kind, where = parse_address(address)
    if want_tls and kind == "unix":
        raise ValueError("TLS is for TCP addresses; %r is a Unix socket (plain, local)"
                         % address)
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(where)
        except OSError:
            s.close()
            raise
    else:
        s = socket.create_connection(where, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if want_tls:
            try:
                s = _tls_wrap(s, where[0], tls, tls_ca, tls_cert, tls_key, tls_server_name)
            except BaseException:
                s.close()
                raise
    s.settimeout(None)
    return s


def probe_health(address, timeout=5.0, **tls_kw):
    """Asks a daemon's Health without a handshake (so without a token; docs/PROTOCOL.md).
    tls_kw: open_socket's TLS keywords. Returns: "SERVING" or "NOT_SERVING". Raises
    Unavailable when it cannot be reached or does not answer within `timeout` seconds."""
    try:
        sock = open_socket(address, timeout=timeout, **tls_kw)
    except OSError as e:
        raise _wire.Unavailable(14, "cannot connect to %s: %s" % (address, e)) from None
    sock.settimeout(timeout)
    conn = _wire.Connection(sock)
    try:
        reply, _ = conn.call(_wire.HEALTH, pb.HealthRequest())
    finally:
        conn.close()
    return pb.HealthReply.ServingStatus.Name(reply.serving)


# ---- the embedded daemon -----------------------------------------------------------------
def _find_binary():
    b = os.environ.get("TENSORD_BIN")
    if b:
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            raise FileNotFoundError("TENSORD_BIN=%r is not an executable file" % b)
        return b
    b = shutil.which("tensord")
    if b is None:
        raise FileNotFoundError("tensord daemon not found: set TENSORD_BIN to the binary "
                                "(<build>/server/tensord) or put `tensord` on PATH, or pass "
                                "an address to tensord.connect()")
    return b


def _parent_death_signal():
    # Linux: the daemon gets SIGTERM if this process dies without stopping it.
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def _stop_daemon(proc, tmpdir, timeout=10.0):
    """Stops an embedded daemon (SIGTERM, then SIGKILL after `timeout`) and removes its
    directory. Returns: the exit code."""
    rc = proc.poll()
    if rc is None:
        try:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        except OSError:
            rc = proc.poll()
    shutil.rmtree(tmpdir, ignore_errors=True)
    return rc


def start_daemon(binary=None, extra_args=(), timeout=START_TIMEOUT):
    """Starts a daemon on a Unix socket in a fresh temporary directory.

    Returns: (proc, tmpdir, address). Raises FileNotFoundError (no binary) or RuntimeError
    (the daemon exited or did not print `listening` in time; its stderr is included).
    """
    binary = binary or _find_binary()
    tmpdir = tempfile.mkdtemp(prefix="tensord-")
    sock = os.path.join(tmpdir, "tensord.sock")
    out_path = os.path.join(tmpdir, "stdout")
    err_path = os.path.join(tmpdir, "stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([binary, "--listen", "unix://" + sock] + list(extra_args),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                preexec_fn=_parent_death_signal, close_fds=True)
    deadline = time.monotonic() + timeout
    while True:
        with open(out_path, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                if line.startswith("listening "):
                    return proc, tmpdir, line.split(None, 1)[1].strip()
        rc = proc.poll()
        if rc is not None or time.monotonic() > deadline:
            if rc is None:
                _stop_daemon(proc, tmpdir)
                why = "did not print 'listening' within %.0f s" % timeout
            else:
                why = "exited with status %d" % rc
            with open(err_path, "rb") as f:
                log = f.read().decode(errors="replace")[-4000:]
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise RuntimeError("tensord daemon %s %s; its stderr:\n%s" % (binary, why, log))
        time.sleep(0.01)


# ---- op schema ---------------------------------------------------------------------------
class AttrSchema(collections.namedtuple("AttrSchema", "name type required default")):
    """One attribute of an op: name, type (int, float, bool, str, ints, dtype, scalar),
    required, default (text, "" when none)."""


class OpSchema:
    """An op as the daemon publishes it (ListOps)."""

    def __init__(self, m):
        self.name = m.name
        self.min_inputs = m.min_inputs
        self.max_inputs = m.max_inputs
        self.num_outputs = m.num_outputs
        self.attrs = tuple(AttrSchema(a.name, a.type, a.required, a.default_value)
                           for a in m.attrs)
        self.attr_types = {a.name: a.type for a in self.attrs}
        self.dtypes = tuple(_dt.from_code(d) for d in m.dtypes)
        self.flags = tuple(m.flags)
        self.doc = m.doc
        self.differentiable = bool(getattr(m, "differentiable", False))

    def __repr__(self):
        return "OpSchema(%s, inputs=%d..%d, outputs=%d, attrs=[%s], flags=%s)" % (
            self.name, self.min_inputs, self.max_inputs, self.num_outputs,
            ", ".join("%s:%s" % (a.name, a.type) for a in self.attrs), ",".join(self.flags))


_PLAIN_SCALARS = frozenset((float, int, bool, complex))


def is_scalar(x):
    """Returns: whether x is a Python or NumPy number (not an array, not a Tensor)."""
    if type(x) in _PLAIN_SCALARS:
        return True
    return isinstance(x, (bool, numbers.Number, np.bool_)) and not isinstance(x, np.ndarray)


def encode_scalar(value):
    s = pb.Scalar()
    if isinstance(value, (bool, np.bool_)):
        s.b = bool(value)
    elif isinstance(value, numbers.Integral):
        s.i = int(value)
    elif isinstance(value, numbers.Real):
        s.f = float(value)
    elif isinstance(value, numbers.Complex):
        c = complex(value)
        s.c.re = c.real
        s.c.im = c.imag
    else:
        raise TypeError("expected a number for a scalar attribute, got %r" % (value,))
    return s


def _as_int(op, name, v):
    try:
        return int(v.__index__())
    except (AttributeError, TypeError):
        raise TypeError("%s: attribute %s expects an integer, got %r" % (op, name, v)) from None


def encode_attr(op, name, typ, value):
    """Returns: a pb.Attr for one attribute value of schema type `typ`."""
    a = pb.Attr(name=name)
    if typ == "int":
        a.i = _as_int(op, name, value)
    elif typ == "float":
        a.f = float(value)
    elif typ == "bool":
        a.b = bool(value)
    elif typ == "str":
        if not isinstance(value, str):
            raise TypeError("%s: attribute %s expects a string, got %r" % (op, name, value))
        a.s = value
    elif typ == "ints":
        if hasattr(value, "__index__"):
            vals = [_as_int(op, name, value)]
        else:
            vals = [_as_int(op, name, v) for v in value]
        a.ints.SetInParent()
        a.ints.values.extend(vals)
    elif typ == "dtype":
        a.dtype = _dt.to_dtype(value).code
    elif typ == "scalar":
        if hasattr(value, "item") and not is_scalar(value):
            value = value.item()
        a.scalar.CopyFrom(encode_scalar(value))
    else:
        raise TypeError("%s: attribute %s has unknown type %r" % (op, name, typ))
    return a


def infer_numpy(data):
    """Converts data (array, nested lists, scalar) to a NumPy array with PyTorch's default
    dtypes for Python values: float -> float32, int -> int64, bool, complex -> complex64.
    NumPy arrays keep their dtype."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    k = arr.dtype.kind
    if k == "f":
        return arr.astype(np.float32)
    if k == "c":
        return arr.astype(np.complex64)
    if k in "iu":
        if k == "u" and arr.dtype.itemsize == 8:
            raise OverflowError("integer value out of int64 range")
        return arr.astype(np.int64)
    if k == "b":
        return arr
    if k == "O":
        raise TypeError("cannot make a tensor from %r (ragged or non-numeric data)"
                        % (type(data).__name__,))
    raise TypeError("cannot make a tensor from NumPy dtype %s" % arr.dtype)


def f32_to_bf16_bits(a):
    """Rounds float32 values to bfloat16 (nearest even) and returns the uint16 bit patterns."""
    a = np.asarray(a, dtype=np.float32, order="C")
    u = a.reshape(-1).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[np.isnan(a.reshape(-1))] = 0x7FC0
    return r.reshape(a.shape)


def bf16_bits_to_f32(bits):
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(bits.shape)


class _Segment:
    """The nodes of one op call (or one Graph.run): what a Run request of its own carries.
    outs: the outputs the caller gets as Tensors (not discarded), in node order."""

    __slots__ = ("nodes", "discard", "uploaded", "outs")

    def __init__(self, nodes, discard, uploaded, outs):
        self.nodes = nodes
        self.discard = discard
        self.uploaded = uploaded
        self.outs = outs


class _Run:
    """The progress of one request that creates tensors: a Run (the segments batched into
    it) or an upload (put=True). Pending Tensors refer to it until its reply was read.

    call: the wire _Pending once sent (None while queued). done: the reply was read (or the
    failure decided without a request). error: the TensordError of every output (a failed
    Run). metas: {output id: TensorMeta} of a successful Run. redirect: after a failed Run
    of several segments, {output id: the _Run that re-sent its segment alone}. frees: ids
    released while it was in flight (freed once it succeeded). dropped: outputs released
    while it was still queued (added to its discard list).
    """

    __slots__ = ("segs", "call", "done", "error", "metas", "redirect", "frees", "dropped",
                 "put", "rg", "undef", "inputs", "epoch", "deadline_ms")

    def __init__(self, put=False):
        self.segs = []
        self.call = None
        self.done = False
        self.error = None
        self.metas = None
        self.redirect = None
        self.frees = []
        self.dropped = []
        self.put = put
        self.rg = None          # ids of outputs that require grad (from the reply)
        self.undef = None       # ids of outputs the op left undefined (None); not created
        self.inputs = None      # ids its nodes read (a batch that may be re-sent)
        self.epoch = 0          # the client's re-send count when it was sent
        self.deadline_ms = 0    # RunRequest.deadline_ms it was sent with (0: none)

    def settled(self):
        """Returns: whether this Run and any re-send of its segments have their replies."""
        if not self.done:
            return False
        return self.redirect is None or all(r.settled() for r in set(self.redirect.values()))

    def final(self, tid):
        """Returns: the _Run that decides output `tid` (following re-sent segments)."""
        r = self
        while r.redirect is not None:
            r = r.redirect[tid]
        return r


def _copy_error(err):
    """Returns: a new exception of err's class and message (so one stored error can be
    raised many times without growing its traceback)."""
    return _wire.make_error(err.code_value, err.message)


_WRAPPED = pb.Attr(name="wrapped", b=True)
_NO_GRAD = (False, True)
# Ops whose outputs may require grad whatever the local rule says (the .grad or tangent of
# a create_graph backward): their state is read from the reply.
_GRAD_STATE_OPS = frozenset(("grad", "dual_tangent"))
Tensor = None       # tensord.tensor.Tensor, set when that module is imported (no cycle)


class Graph:
    """Builds one Run request: nodes over session ids, temporaries freed by `discard`.

    Uploads made through input() are sent at once (pipelined) and freed after the Run.
    run() queues the graph like any eager op and returns pending Tensors at once.
    Nodes added while grad mode is off carry no_grad. The graph also guesses which outputs
    require grad (see _out_grad_state) so that ops stay asynchronous; the Run's reply is
    authoritative and replaces the guess once read.
    """

    def __init__(self, client):
        self.client = client
        self.nodes = []
        self.discard = []
        self.uploaded = []
        self._rg = {}           # id -> (requires_grad guess, exact); absent: (False, True)
        self._fn = {}           # id -> name of the op that made it (its grad_fn)

    def input(self, x, wrapped=True):
        """Returns: a session id for x (a Tensor of this client, a number, or array data).
        Raises the original error at once when x is a tensor whose op failed."""
        c = self.client
        if isinstance(x, Tensor):
            if x._client is not c:
                raise ValueError("tensor belongs to a different tensord connection")
            if c._failed:
                c._check_input(x._id)
            st = x._rg_state()
            if st != _NO_GRAD:
                self._rg[x._id] = st
            return x._id
        if is_scalar(x):
            sid = c._new_id()
            attrs = [pb.Attr(name="value", scalar=encode_scalar(x))]
            if wrapped:
                attrs.append(_WRAPPED)
            self.nodes.append(pb.Node(op="scalar_tensor", outputs=[sid], attrs=attrs,
                                      no_grad=not is_grad_enabled()))
            self.discard.append(sid)
            return sid
        arr = infer_numpy(x)
        sid, _ = c._put_array(np.asarray(arr, order="C"), _dt.to_dtype(arr.dtype))
        self.discard.append(sid)
        self.uploaded.append(sid)
        return sid

    def add(self, op, inputs, attrs=(), noutputs=1, temporary=False):
        """Adds a node; inputs are ids, attrs pb.Attr messages. Returns: its output ids."""
        outs = [self.client._new_id() for _ in range(noutputs)]
        attrs = list(attrs)
        grad_on = is_grad_enabled()
        self.nodes.append(pb.Node(op=op, inputs=list(inputs), outputs=outs, attrs=attrs,
                                  no_grad=not grad_on))
        st = self._out_grad_state(op, inputs, attrs, grad_on, noutputs)
        if st != _NO_GRAD:
            for o in outs:
                self._rg[o] = st
                self._fn[o] = op
        if temporary:
            self.discard.extend(outs)
        return outs

    def _out_grad_state(self, op, inputs, attrs, grad_on, noutputs):
        """The local requires_grad rule for op's outputs: grad mode on, some input requires
        grad, the op is differentiable and the output dtype is floating or complex.
        Returns: (guess, exact); a guess that is not exact is settled by the reply."""
        if op == "backward":
            cg = any(a.name == "create_graph" and a.b for a in attrs)
            return (True, False) if cg else _NO_GRAD
        if op in _GRAD_STATE_OPS:
            return (False, False)
        if not grad_on:
            return _NO_GRAD
        states = [self._rg.get(i, _NO_GRAD) for i in inputs]
        exact = all(e for _, e in states)
        if not any(g for g, _ in states):
            return (False, exact)
        sch = self.client.schema().get(op)
        if sch is None or not sch.differentiable:
            return _NO_GRAD
        for a in attrs:
            if a.name == "dtype" and a.WhichOneof("value") == "dtype" and \
                    _dt.from_code(a.dtype).kind not in "fc":
                return _NO_GRAD
        # Several outputs (values and indices) may have different dtypes: ask the reply.
        return (True, exact and noutputs == 1)

    def run(self):
        """Queues the Run without waiting. Returns: pending Tensors of the outputs not
        discarded, in node order (their errors surface later, see the package doc)."""
        c = self.client
        if self.discard:
            gone = set(self.discard)
            outs = [o for n in self.nodes for o in n.outputs if o not in gone]
        else:
            outs = [o for n in self.nodes for o in n.outputs]
        seg = _Segment(self.nodes, self.discard, self.uploaded, outs)
        stateful = c._stateful_ops()
        with c._conn.lock:
            rec = c._enqueue(seg)
            tensors = [Tensor._pending(c, o, rec) for o in outs]
            if stateful and any(n.op in stateful for n in self.nodes):
                # A stateful op (backward, copy_, requires_grad_...) ends its batch: were a
                # later op of the batch to fail, the re-sent ops would apply it twice.
                c._flush()
            else:
                c._after_enqueue()
        if self._rg:
            for t in tensors:
                st = self._rg.get(t._id)
                if st is not None:
                    t._requires_grad, t._rg_exact = st
                    t._grad_fn = self._fn.get(t._id)
        return tensors


class Client:
    """A session with a tensord daemon. Use as a context manager or call close().

    batch: how eager ops travel: up to `batch` nodes are queued and sent as one Run (when
    the queue is full, or at the next call that needs a result or a meta it holds); 1
    sends every op as its own Run at once. Either way no op waits for a reply.

    TLS (a daemon started with --tls-cert): tls=True or a "tls://host:port" address; tls_ca:
    PEM file of the CA that signed the daemon's certificate (default: the system's CAs);
    tls_cert / tls_key: a client certificate for a daemon with --tls-client-ca;
    tls_server_name: the name to verify when it differs from the address's host; tls may also
    be a ready ssl.SSLContext. The certificate and host name are always verified.

    resume_lease: seconds the daemon should keep this session (tensors, quota) after the
    connection is lost without close() (a network failure, a dropped idle connection), so
    that reconnect() can reattach it; the daemon caps it (--max-resume-lease). The granted
    lease is `resume_lease`, 0 when the session is not resumable.
    """

    def __init__(self, address=None, *, seed=None, timeout=30.0, client_name=CLIENT_NAME,
                 auth_token="", token=None, daemon_args=(), batch=DEFAULT_BATCH, tls=None,
                 tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None,
                 resume_lease=None):
        self._proc = None
        self._finalizer = None
        self._closed = True
        self.resume_token = None
        self.resume_lease = 0
        if not isinstance(batch, numbers.Integral) or isinstance(batch, bool) or batch < 1:
            raise ValueError("batch must be a positive int, got %r" % (batch,))
        if address is None:
            proc, tmpdir, address = start_daemon(extra_args=daemon_args)
            self._proc = proc
            self._finalizer = weakref.finalize(self, _stop_daemon, proc, tmpdir)
        self.address = address
        self._open_kw = dict(tls=tls, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                             tls_server_name=tls_server_name)
        self._timeout = timeout
        self._client_name = client_name
        try:
            sock = open_socket(address, timeout=timeout, **self._open_kw)
        except OSError as e:
            if self._finalizer is not None:
                self._finalizer()
            raise _wire.Unavailable(14, "cannot connect to %s: %s" % (address, e)) from None
        self._conn = _wire.Connection(sock)
        self._closed = False
        self._ids = itertools.count(1)
        self._free_queue = collections.deque()
        # Frees wait while a batch that reads the id is in flight: if that batch fails it is
        # re-sent, and the re-sent ops must still find their inputs.
        self._inflight = []           # sent batches of several segments, not settled
        self._held = []               # (id, batch) frees waiting for that batch
        # Failed batches whose ops were re-sent so far: a Run sent before a re-send may
        # have named ids the failed batch would have made (NOT_FOUND); it is re-sent too.
        self._resend_epoch = 0
        self._deadline_ms = 0          # RunRequest.deadline_ms of Runs sent now (deadline())
        self._schema = None
        self._stateful = None
        # Asynchronous execution state (see the package doc).
        self._batch = int(batch)
        self._q_rec = None            # the _Run being filled (not sent yet)
        self._q_nodes = []
        self._q_discard = []
        self._error = None            # first error no synchronising call has raised yet
        self._failed = {}             # id -> error, for tensors whose op failed
        self._dead = []               # failed ids already released (pruned when idle)
        self._resend = collections.deque()   # failed batches to re-send segment by segment
        self._resending = False
        self._conn.after_read = self._after_read
        # token (or its older name auth_token), else $TENSORD_TOKEN: a token of the daemon's
        # token file; "" for a daemon without one.
        if token is None:
            token = auth_token or os.environ.get("TENSORD_TOKEN", "")
        self._token = token
        lease = 0 if resume_lease is None else int(resume_lease)
        if not 0 <= lease < (1 << 32):
            raise ValueError("resume_lease must be 0..2**32-1 seconds, got %r" % (resume_lease,))
        req = pb.HandshakeRequest(protocol_version=_wire.VERSION, client_name=client_name,
                                  auth_token=token, seed=int(seed or 0),
                                  resume_lease_seconds=lease)
        try:
            hs, _ = self._conn.call(_wire.HANDSHAKE, req)
        except BaseException:
            self.close()
            raise
        self.resume_token = hs.resume_token or None
        self.resume_lease = hs.resume_lease_seconds
        self.protocol_version = hs.protocol_version
        self.server_version = hs.server_version
        self.session_id = hs.session_id
        self.user = hs.user
        self.role = hs.role
        self.seed = hs.seed
        self.limits = hs.limits
        self.devices = [d.name for d in hs.devices]
        self.device_info = [{"name": d.name, "kind": d.kind, "memory_bytes": d.memory_bytes,
                             "model": d.model} for d in hs.devices]
        mfd = hs.limits.max_frame_data
        self.max_frame_data = int(mfd) if mfd else (1 << 30)
        mgn = hs.limits.max_graph_nodes
        self._max_nodes = int(mgn) if mgn else 4096
        self._batch = min(self._batch, self._max_nodes)

    # ---- lifetime ----------------------------------------------------------------------
    @property
    def closed(self):
        return self._closed

    def close(self):
        """Closes the session (the daemon frees everything it held; queued ops are dropped)
        and stops an embedded daemon. Returns: the embedded daemon's exit code, or None."""
        rc = None
        if not self._closed:
            self._closed = True
            self._free_queue.clear()
            self._held = []
            self._inflight = []
            self._q_rec = None
            self._q_nodes = []
            self._q_discard = []
            try:
                # A resumable session ends only with a clean end of stream.
                self._conn.close(graceful=5.0 if self.resume_token else 0.0)
            except OSError:
                pass
        if self._finalizer is not None and self._finalizer.alive:
            rc = self._finalizer()
        if _default is self:
            set_default_client(None)
        return rc

    def reconnect(self, timeout=None):
        """Reattaches this client's session over a new connection after the old one was lost
        (needs resume_lease when connecting; see the class doc). Tensors made before stay
        valid. Requests the lost connection had sent but not got a reply for fail with
        Unavailable: whether the daemon ran them is unknown, so their outputs raise it when
        used.
        Raises ValueError for a session that is not resumable, NotFound when the daemon no
        longer has it (the lease ended, or an admin killed it), Unavailable when the daemon
        cannot be reached."""
        if self._closed:
            raise ValueError("reconnect: the client is closed")
        if not self.resume_token:
            raise ValueError("reconnect: the session is not resumable (connect with "
                             "resume_lease=SECONDS on a daemon with --max-resume-lease > 0)")
        old = self._conn
        with old.lock:
            pending = list(old._pending.values())
            old._pending.clear()
            old.close()
            lost = _wire.Unavailable(14, "the connection was lost before the reply: the "
                                     "request may or may not have run")
            for p in pending:
                p.error = lost
                p.done = True
                if p.on_reply is not None:
                    p.on_reply(p)
            # Their outputs raise it when used; it is not also left pending for the next
            # synchronising call (the caller knows the connection was lost).
            if self._error is lost:
                self._error = None
            timeout = self._timeout if timeout is None else timeout
            deadline = time.monotonic() + (timeout if timeout is not None else 30.0)
            while True:
                conn, hs = self._resume_once(timeout)
                if hs is not None:
                    break
                # The daemon had not noticed the old connection's end yet: it closes it
                # now and parks the session; try again shortly.
                if time.monotonic() > deadline:
                    raise conn
                time.sleep(0.05)
            conn.after_read = self._after_read
            self._conn = conn
            self.resume_token = hs.resume_token or None
            self.resume_lease = hs.resume_lease_seconds
            self._flush_frees()

    def _resume_once(self, timeout):
        """One resuming Handshake on a new connection. Returns: (connection, reply), or
        (the Unavailable error, None) when the session is still attached to its old
        connection. Raises any other error."""
        try:
            sock = open_socket(self.address, timeout=timeout, **self._open_kw)
        except OSError as e:
            raise _wire.Unavailable(14, "cannot connect to %s: %s" % (self.address, e)) \
                from None
        conn = _wire.Connection(sock)
        req = pb.HandshakeRequest(protocol_version=_wire.VERSION,
                                  client_name=self._client_name, auth_token=self._token,
                                  resume_token=self.resume_token)
        try:
            hs, _ = conn.call(_wire.HANDSHAKE, req)
        except _wire.Unavailable as e:
            conn.close()
            if "still attached" in e.message:
                return e, None
            raise
        except BaseException:
            conn.close()
            raise
        return conn, hs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<tensord.Client %s session=%s%s>" % (
            self.address, getattr(self, "session_id", "?"), " closed" if self._closed else "")

    @property
    def replies_read(self):
        """Replies read from the daemon so far (a diagnostic: eager ops read none)."""
        return self._conn.replies_read

    # ---- plumbing ----------------------------------------------------------------------
    def _new_id(self):
        return next(self._ids)

    def _check_open(self):
        if self._closed:
            raise _wire.Unavailable(14, "client is closed")

    def _release(self, tid, rec):
        # Called from Tensor.__del__, possibly in the middle of another call: only queue.
        if self._closed:
            return
        if rec is None:
            self._free_queue.append(tid)
            return
        if rec is self._q_rec:
            # Still queued: the batch frees it after running.
            self._q_discard.append(tid)
            rec.dropped.append(tid)
            return
        r = rec.final(tid)
        if not r.done:
            r.frees.append(tid)
        elif r.undef and tid in r.undef:
            pass                      # never created in the daemon
        elif r.error is None or r.put:
            self._free_queue.append(tid)
        if tid in self._failed:
            self._dead.append(tid)

    def _flush_frees(self):
        # Frees never overtake the queued batch (it may read them) and wait for in-flight
        # batches that read them (see _held).
        if self._resending or self._q_rec is not None:
            return
        if not self._free_queue and not self._held:
            return
        if self._inflight:
            self._inflight = [r for r in self._inflight if not r.settled()]
        ids = []
        if self._held:
            keep = []
            for tid, r in self._held:
                if r.settled():
                    ids.append(tid)
                else:
                    keep.append((tid, r))
            self._held = keep
        q = self._free_queue
        inflight = self._inflight
        while q:
            try:
                tid = q.popleft()
            except IndexError:
                break
            for r in inflight:
                if tid in r.inputs:
                    self._held.append((tid, r))
                    break
            else:
                ids.append(tid)
        if ids:
            self._conn.send(_wire.FREE, pb.FreeRequest(ids=ids))

    def _free_ids(self, ids):
        self._free_queue.extend(ids)

    def _send(self, method, msg, data=None, **kw):
        self._check_open()
        with self._conn.lock:
            self._flush_frees()
            return self._conn.send(method, msg, data, **kw)

    def _call(self, method, msg, data=None, **kw):
        with self._conn.lock:
            return self._conn.wait(self._send(method, msg, data, **kw))

    # ---- asynchronous ops --------------------------------------------------------------
    def _check_input(self, tid):
        err = self._failed.get(tid)
        if err is not None:
            self._raise(err)

    def _raise(self, err):
        """Raises a copy of a stored error; a pending error is reported only once."""
        if self._error is err:
            self._error = None
        raise _copy_error(err)

    def _raise_pending(self):
        err = self._error
        if err is not None:
            self._error = None
            raise _copy_error(err)

    def _enqueue(self, seg):
        """Adds a segment to the batch being filled. Returns: the batch's _Run. [lock]"""
        self._check_open()
        if self._q_nodes and len(self._q_nodes) + len(seg.nodes) > self._max_nodes:
            self._flush()
        rec = self._q_rec
        if rec is None:
            rec = self._q_rec = _Run()
        rec.segs.append(seg)
        self._q_nodes.extend(seg.nodes)
        self._q_discard.extend(seg.discard)
        return rec

    def _after_enqueue(self):
        if len(self._q_nodes) >= self._batch:
            self._flush()

    def _flush(self):
        """Sends the queued nodes as one Run, then handles the replies already there and
        sends the frees they allowed. [lock]"""
        rec = self._q_rec
        if rec is None:
            return
        self._q_rec = None            # from here releases of its outputs go to rec.frees
        nodes, discard = self._q_nodes, self._q_discard
        self._q_nodes, self._q_discard = [], []
        rec.epoch = self._resend_epoch
        rec.deadline_ms = self._deadline_ms
        rec.call = self._conn.send(_wire.RUN, pb.RunRequest(nodes=nodes, discard=discard,
                                                            deadline_ms=rec.deadline_ms),
                                   on_reply=functools.partial(self._on_run, rec))
        if len(rec.segs) > 1:
            rec.inputs = frozenset(i for n in nodes for i in n.inputs)
            self._inflight.append(rec)
        if self._conn.outstanding > 1:
            self._conn.read_available()
        self._flush_frees()

    def _on_run(self, rec, p):
        # A Run's reply (inside the reader: no sending, no waiting here).
        if p.error is None:
            outs = p.reply.outputs
            rec.metas = {o.id: o.meta for o in outs}
            rec.rg = frozenset(o.id for o in outs if o.requires_grad)
            rec.undef = frozenset(o.id for o in outs if o.undefined)
            if self._failed:
                for seg in rec.segs:
                    for u in seg.uploaded:
                        self._failed.pop(u, None)
            rec.segs = None
            self._succeeded(rec)
        elif len(rec.segs) == 1 and not (p.error.code_value == 5 and
                                         rec.epoch < self._resend_epoch):
            self._fail_segment(rec, rec.segs[0], p.error)
        elif p.error.code_value in (1, 4, 14):
            # CANCELLED / DEADLINE_EXCEEDED: the time is spent; UNAVAILABLE: the daemon is
            # draining or the connection was lost (reconnect). The batch is not re-sent
            # segment by segment; every output of it fails with that error.
            frees = rec.frees
            for seg in rec.segs:
                rec.frees = list(frees)
                self._fail_segment(rec, seg, p.error)
        else:
            # The daemon undid the whole batch: re-send its segments one by one (from
            # _after_read, before any later request) so each op gets its own outcome.
            # (A one-op Run that missed an id of a batch re-sent after it was sent goes
            # again too: nothing ran, the daemon refused it while planning.)
            self._resend_epoch += 1
            self._resend.append(rec)

    def _succeeded(self, rec):
        rec.done = True
        frees, rec.frees = rec.frees, []
        if rec.undef:
            frees = [f for f in frees if f not in rec.undef]
        self._free_queue.extend(frees)

    def _input_failure(self, seg):
        if not self._failed:
            return None
        for n in seg.nodes:
            for i in n.inputs:
                err = self._failed.get(i)
                if err is not None:
                    return err
        return None

    def _fail_segment(self, rec, seg, err):
        """Marks a segment's outputs failed: with the error of a failed input when it has
        one (propagation), else with err, which becomes pending if none is."""
        orig = self._input_failure(seg)
        if orig is not None:
            err = orig
        elif self._error is None:
            self._error = err
        for u in seg.uploaded:
            self._failed.pop(u, None)
        # The daemon keeps the uploads a failed Run would have discarded.
        self._free_queue.extend(seg.uploaded)
        rec.error = err
        rec.segs = None
        rec.done = True
        gone = set(rec.frees)
        gone.update(rec.dropped)
        rec.frees = []
        for o in seg.outs:
            self._failed[o] = err
            if o in gone:
                self._dead.append(o)

    def _after_read(self):
        """Re-sends the segments of failed batches, each as its own Run, in reply order and
        before anything sent later."""
        if self._resending or not self._resend:
            return
        self._resending = True
        try:
            while self._resend:
                rec = self._resend.popleft()
                redirect = {}
                subs = []
                for seg in rec.segs:
                    sub = _Run()
                    sub.segs.append(seg)
                    subs.append(sub)
                    for n in seg.nodes:
                        for o in n.outputs:
                            redirect[o] = sub
                rec.segs = None
                rec.redirect = redirect
                frees, rec.frees = rec.frees + rec.dropped, []
                for tid in frees:
                    redirect[tid].frees.append(tid)
                rec.done = True
                for sub in subs:
                    seg = sub.segs[0]
                    err = self._input_failure(seg)
                    if err is not None:
                        self._fail_segment(sub, seg, err)
                        continue
                    sub.epoch = self._resend_epoch
                    sub.deadline_ms = rec.deadline_ms
                    sub.call = self._conn.send(
                        _wire.RUN, pb.RunRequest(nodes=seg.nodes, discard=seg.discard,
                                                 deadline_ms=sub.deadline_ms),
                        on_reply=functools.partial(self._on_run, sub))
        finally:
            self._resending = False

    def _wait_run(self, rec, tid):
        """Reads replies until output tid's Run is decided. Returns: its final _Run. [lock]"""
        conn = self._conn
        while True:
            r = rec.final(tid)
            if r.done:
                return r
            if r.call is None:
                if r is self._q_rec:
                    self._flush()
                else:
                    self._check_open()
                    conn._check()
                    self._after_read()
                    if r.call is None and not r.done:
                        raise _wire.Internal(13, "tensor %d: its Run was never sent" % tid)
                continue
            while not r.call.done:
                self._check_open()
                conn.read_one()

    def _resolve(self, t):
        """Fills t's meta from its Run's reply, waiting for that reply only when the meta is
        not known. Raises the op's error when it failed."""
        with self._conn.lock:
            rec = t._rec
            if rec is None:
                return
            r = rec.final(t._id)
            if not r.done:
                if t._dtype is not None:       # an upload: meta known, outcome not yet
                    return
                r = self._wait_run(rec, t._id)
            if r.error is not None:
                self._raise(r.error)
            if t._dtype is None:
                meta = r.metas.get(t._id)
                if meta is None:
                    raise _wire.Internal(13, "the daemon's Run reply has no output %d"
                                         % t._id)
                t._set_meta(meta)
            if r.rg is not None:
                t._settle_grad_state(t._id in r.rg)
            t._rec = None

    def _resolve_defined(self, t):
        """Waits for t's Run reply (raising its op's error). Returns: False when the op
        left t undefined (None in PyTorch terms); t then names no daemon tensor."""
        with self._conn.lock:
            rec = t._rec
            if rec is None:
                return bool(t._id)
            tid = t._id
            self._resolve(t)
            r = rec.final(tid)
            if r.undef and tid in r.undef:
                t._id = 0
                return False
            return True

    def _prune(self):
        # Failed ids that were released can be forgotten once nothing is in flight.
        if self._dead and not self._conn.outstanding and self._q_rec is None:
            for tid in self._dead:
                self._failed.pop(tid, None)
            self._dead = []

    def sync(self):
        """Sends every queued op and waits for every outstanding request; raises the first
        error no synchronising call has raised yet."""
        with self._conn.lock:
            self._check_open()
            self._flush()
            self._conn.drain()
            self._prune()
            self._flush_frees()
            self._raise_pending()

    @contextlib.contextmanager
    def deadline(self, seconds):
        """A block whose ops run under a deadline: each Run sent for them carries
        RunRequest.deadline_ms, so the daemon stops a graph still running `seconds` after it
        received it (checked before each node; what the graph made is rolled back) and its
        outputs raise DeadlineExceeded when used. Ops queued before the block are sent first,
        without the deadline; the block's ops are sent when it ends. Nests (the innermost
        deadline applies)."""
        x = float(seconds)
        if not (x > 0 and math.isfinite(x)):
            raise ValueError("deadline: seconds must be finite and > 0, got %r" % (seconds,))
        ms = max(1, math.ceil(x * 1000))
        with self._conn.lock:
            self._check_open()
            self._flush()
            prev, self._deadline_ms = self._deadline_ms, ms
        try:
            yield self
        finally:
            with self._conn.lock:
                try:
                    if not self._closed:
                        self._flush()
                finally:
                    self._deadline_ms = prev

    def cancel(self):
        """Cancels this client's ops that have not finished: the queued ones are sent first,
        then every Run still waiting for its reply gets a Cancel, so the daemon drops it if
        it is queued and stops it before its next node if it is running (what it made is
        rolled back), and waits for their replies. Their outputs raise Cancelled when used
        (the error is not also left pending for the next synchronising call); a Run that
        finished first keeps its results. Returns: how many Runs the daemon marked
        cancelled."""
        with self._conn.lock:
            self._check_open()
            self._flush()
            runs = [p for p in self._conn._pending.values() if p.method == _wire.RUN]
            marked = []

            def on_cancel(p):
                if p.error is None and p.reply.cancelled:
                    marked.append(p)
            for p in runs:
                self._conn.send(_wire.CANCEL, pb.CancelRequest(call_id=p.call_id),
                                on_reply=on_cancel)
            self._conn.drain()
            if isinstance(self._error, _wire.Cancelled):
                self._error = None
            self._prune()
            self._flush_frees()
        return len(marked)

    # ---- transfers ---------------------------------------------------------------------
    def _on_put(self, rec, tid, last, p):
        if p.error is not None and rec.error is None:
            rec.error = p.error
            self._failed[tid] = p.error
            if self._error is None:
                self._error = p.error
        if last:
            frees = rec.frees
            self._succeeded(rec)       # a failed upload may have left bytes: free it too
            if rec.error is not None and tid in frees:
                self._dead.append(tid)

    def _put_array(self, arr, dtype, tid=None):
        """Uploads a C-contiguous array whose bytes are `dtype`'s layout, in chunks of at
        most max_frame_data, without waiting. Returns: (the new id, its upload _Run)."""
        self._check_open()
        tid = self._new_id() if tid is None else tid
        data = _wire.as_bytes_view(arr)
        n = len(data)
        shape = list(arr.shape)
        chunk = max(1, self.max_frame_data)
        prog = Progress("upload", n)
        rec = _Run(put=True)
        with self._conn.lock:
            off = 0
            while True:
                k = min(chunk, n - off)
                req = pb.PutRequest(id=tid, dtype=dtype.code, shape=shape, offset=off)
                rec.call = self._send(_wire.PUT, req, data[off:off + k], progress=prog,
                                      on_reply=functools.partial(self._on_put, rec, tid,
                                                                 off + k >= n))
                off += k
                if off >= n:
                    break
        prog.close()
        return tid, rec

    def upload(self, data, dtype=None):
        """Uploads array data (see tensord.tensor) without waiting. Returns: a Tensor."""
        from .tensor import Tensor
        arr = infer_numpy(data)
        if dtype is None:
            target = _dt.to_dtype(arr.dtype)
        else:
            target = _dt.to_dtype(dtype)
        if target is _dt.bfloat16:
            # bfloat16 has no NumPy dtype: upload float32, cast in the daemon.
            g = Graph(self)
            src = np.asarray(arr, dtype=np.float32, order="C")
            sid, _ = self._put_array(src, _dt.float32)
            g.discard.append(sid)
            g.uploaded.append(sid)
            g.add("cast", [sid], [pb.Attr(name="dtype", dtype=target.code)])
            return g.run()[0]
        arr = np.asarray(arr, dtype=target.numpy_dtype, order="C")
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        tid, rec = self._put_array(arr, target)
        t = Tensor(self, tid, target, arr.shape)
        t._rec = rec
        return t

    def download(self, t, raise_pending=True):
        """Fetches a tensor's values (chunked Gets into one preallocated array). A
        synchronising call: sends the queued ops, raises t's error if its op failed, else
        (when raise_pending) the first error not raised yet.
        Returns: a NumPy array (float32 for bfloat16)."""
        with self._conn.lock:
            self._check_open()
            self._flush()
            t._meta()
            dt = t._dtype
            shape = t._shape
            n = 1
            for s in shape:
                n *= s
            nbytes = n * dt.itemsize
            if dt is _dt.bfloat16:
                out = np.empty(shape, dtype=np.uint16)
            else:
                out = np.empty(shape, dtype=dt.numpy_dtype)
            view = _wire.as_bytes_view(out)
            chunk = max(1, self.max_frame_data)
            prog = Progress("download", nbytes)
            calls = []
            off = 0
            while True:
                k = min(chunk, nbytes - off)
                if nbytes == 0:
                    k = 0
                req = pb.GetRequest(id=t._id, offset=off, length=k)
                p = self._send(_wire.GET, req, sink=view[off:off + k], progress=prog)
                calls.append((p, off, k))
                off += k
                if off >= nbytes:
                    break
            first_err = None
            for p, off, k in calls:
                try:
                    reply, dlen = self._conn.wait(p)
                except TensordError as e:
                    if first_err is None:
                        first_err = e
                    continue
                if first_err is None and dlen != k:
                    first_err = _wire.DataLoss(15, "Get of id %d at offset %d returned %d "
                                               "bytes, expected %d" % (t._id, off, dlen, k))
            prog.close()
            self._prune()
            self._flush_frees()
            if first_err is not None:
                raise first_err
            if raise_pending:
                self._raise_pending()
        if dt is _dt.bfloat16:
            return bf16_bits_to_f32(out)
        return out

    # ---- ops ---------------------------------------------------------------------------
    def schema(self):
        """Returns: {op name: OpSchema} from the daemon's ListOps (fetched once)."""
        if self._schema is None:
            reply, _ = self._call(_wire.LIST_OPS, pb.ListOpsRequest())
            self._schema = {m.name: OpSchema(m) for m in reply.ops}
        return self._schema

    def _stateful_ops(self):
        """Returns: the names of the ops flagged stateful (empty before the schema was
        fetched: no such op can have been queued yet)."""
        st = self._stateful
        if st is None:
            if self._schema is None:
                return frozenset()
            st = self._stateful = frozenset(
                n for n, sc in self._schema.items() if "stateful" in sc.flags)
        return st

    def op_schema(self, name):
        s = self.schema().get(name)
        if s is None:
            raise AttributeError("the tensord daemon has no op %r" % (name,))
        return s

    def graph(self):
        """Returns: a new Graph builder for a multi-node Run on this client."""
        return Graph(self)

    def run_op(self, name, inputs, attrs=None, noutputs=None):
        """Queues op `name` on inputs (Tensors, numbers, array data) with attrs (a dict of
        Python values, None meaning absent) without waiting. Returns: a list of output
        Tensors whose meta and values arrive later. Raises at once for bad attributes and
        for an input whose op already failed (with that op's error)."""
        sch = self.op_schema(name)
        pattrs = []
        for k, v in (attrs or {}).items():
            if v is None:
                continue
            typ = sch.attr_types.get(k)
            if typ is None:
                raise TypeError("%s() got an unexpected keyword argument %r (attributes: %s)"
                                % (name, k, ", ".join(sch.attr_types) or "none"))
            pattrs.append(encode_attr(name, k, typ, v))
        if noutputs is None:
            noutputs = sch.num_outputs
            if noutputs < 0:
                noutputs = _dynamic_outputs(name, inputs, attrs or {})
        self._check_open()
        g = Graph(self)
        ids = [g.input(x) for x in inputs]
        g.add(name, ids, pattrs, noutputs)
        return g.run()

    def stats(self):
        """Sends the queued ops and frees, waits for every outstanding request, then
        returns the daemon's Stats reply as a dict (pending errors stay pending)."""
        with self._conn.lock:
            self._check_open()
            self._flush()
            self._conn.drain()
            self._prune()
            reply, _ = self._call(_wire.STATS, pb.StatsRequest())
        return {f.name: getattr(reply, f.name) for f in reply.DESCRIPTOR.fields
                if f.name != "status"}

    # ---- administration (admin role; docs/PROTOCOL.md methods 8-13) ----------------------
    def _admin_call(self, method, msg):
        """Sends the queued ops, then one admin request. Returns: its reply. Raises its error
        (PermissionDenied for a session whose role is not admin)."""
        with self._conn.lock:
            self._check_open()
            self._flush()
            reply, _ = self._call(method, msg)
        return reply

    def list_sessions(self):
        """Returns: one dict per session of the daemon (id, user ("" before its
        handshake), bytes, tensors, age_seconds, peer, parked_seconds_left (> 0: a resumable
        session whose connection was lost, kept that much longer; its peer is "")), in the
        daemon's order. Admin only."""
        reply = self._admin_call(_wire.LIST_SESSIONS, pb.ListSessionsRequest())
        return [{"id": s.id, "user": s.user, "bytes": s.bytes, "tensors": s.tensors,
                 "age_seconds": s.age_seconds, "peer": s.peer,
                 "parked_seconds_left": s.parked_seconds_left} for s in reply.sessions]

    def kill_session(self, session_id):
        """Closes another session's connection and frees what it holds. Admin only.
        Raises NotFound (unknown id) or InvalidArgument (this client's own session)."""
        self._admin_call(_wire.KILL_SESSION, pb.KillSessionRequest(session_id=int(session_id)))

    def set_quota(self, user, max_bytes=0, max_tensors=0, max_sessions=0, max_concurrency=0):
        """Replaces the quotas of `user`: max_bytes, max_tensors, max_sessions (0, the default
        of an omitted one, means unlimited) and max_concurrency, the workers its sessions may
        hold at once (0: the daemon's --user-max-concurrency). Admin only. Raises NotFound for
        a user the token file does not name, FailedPrecondition for max_concurrency on a
        daemon without fair scheduling."""
        self._admin_call(_wire.SET_QUOTA, pb.SetQuotaRequest(
            user=user, max_bytes=int(max_bytes), max_tensors=int(max_tensors),
            max_sessions=int(max_sessions), max_concurrency=int(max_concurrency)))

    def list_users(self):
        """Returns: one dict per user of the daemon (name, admin, bytes, max_bytes, peak_bytes,
        tensors, max_tensors, sessions, max_sessions, max_concurrency (effective; 0:
        unlimited), running (workers on its sessions now)). Admin only."""
        reply = self._admin_call(_wire.LIST_USERS, pb.ListUsersRequest())
        keys = ("name", "admin", "bytes", "max_bytes", "peak_bytes", "tensors", "max_tensors",
                "sessions", "max_sessions", "max_concurrency", "running")
        return [{k: getattr(u, k) for k in keys} for u in reply.users]

    def drain(self):
        """Starts a graceful stop of the daemon (as SIGTERM). Admin only."""
        self._admin_call(_wire.DRAIN, pb.DrainRequest())

    def shutdown(self):
        """Stops the daemon as SIGTERM does; it closes this connection afterwards. Admin
        only."""
        self._admin_call(_wire.SHUTDOWN, pb.ShutdownRequest())

    def health(self):
        """Returns: the daemon's serving status, "SERVING" or "NOT_SERVING" (draining).
        Any role."""
        reply = self._admin_call(_wire.HEALTH, pb.HealthRequest())
        return pb.HealthReply.ServingStatus.Name(reply.serving)

    def free(self, *tensors):
        """Frees tensors in the daemon now (otherwise done when they are garbage), after
        their ops ran. Returns: how many the daemon freed."""
        ids = []
        with self._conn.lock:
            self._check_open()
            self._flush()
            for t in tensors:
                if t._client is not self or not t._id:
                    continue
                tid = t._id
                if t._rec is not None:
                    r = self._wait_run(t._rec, tid)
                    if r.error is not None and not r.put:
                        t._id = 0                  # its op failed: nothing to free
                        self._failed.pop(tid, None)
                        continue
                self._failed.pop(tid, None)
                ids.append(tid)
                t._id = 0
            if ids:
                reply, _ = self._call(_wire.FREE, pb.FreeRequest(ids=ids))
                return reply.freed
        return 0


def _dynamic_outputs(name, inputs, attrs):
    """Output count of ops whose count depends on attrs (split, chunk), like PyTorch."""
    from .tensor import Tensor
    x = inputs[0]
    shape = x.shape if isinstance(x, Tensor) else np.shape(x)
    dim = attrs.get("dim")
    dim = 0 if dim is None else int(dim)
    if not shape:
        raise ValueError("%s: expects a tensor with at least one dimension" % name)
    if dim < 0:
        dim += len(shape)
    if not 0 <= dim < len(shape):
        raise IndexError("%s: dim %d out of range for %d dims" % (name, dim, len(shape)))
    n = shape[dim]
    if name == "split":
        if attrs.get("sections") is not None:
            return len(list(attrs["sections"]))
        s = attrs.get("split_size")
        if s is None or int(s) <= 0:
            raise ValueError("split: split_size must be a positive integer")
        return max(1, -(-n // int(s)))
    if name == "chunk":
        c = int(attrs["chunks"])
        if c <= 0:
            raise ValueError("chunk: chunks must be positive")
        size = -(-n // c)
        if size == 0:
            return c
        return -(-n // size)
    raise ValueError("op %s has a variable number of outputs; pass noutputs=" % name)
