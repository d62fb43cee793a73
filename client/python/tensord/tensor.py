"""Tensor: a handle to a tensor living in a tensord daemon session.

Data stays in the daemon; `.numpy()`, `.item()`, `.tolist()` and `repr()` download it.
Operators and methods run ops remotely. Python numbers in operators become 0-d "wrapped"
tensors (op scalar_tensor) inside the same Run request, so PyTorch's type promotion of
Python numbers holds (int32 tensor + 2.5 -> float32).

Autograd lives in the daemon; a Tensor keeps a local copy of requires_grad (set for leaves
by requires_grad_, guessed for op outputs by the rule in client.Graph and settled by the
reply) so that ops never wait. In-place methods (add_, mul_, zero_, x[i] = v ...) run the
out-of-place op and the daemon's `copy_`, which bumps the storage's version counter.
"""
import operator

import numpy as np

from . import client as _client
from . import dtypes as _dt
from . import _wire
from . import tensord_pb2 as pb

__all__ = ["Tensor"]


def _norm_shape(args):
    if len(args) == 1 and not hasattr(args[0], "__index__"):
        return tuple(int(operator.index(s)) for s in args[0])
    return tuple(int(operator.index(s)) for s in args)


class Tensor:
    """A tensor in the daemon: id, dtype, shape, device "cpu".

    An op returns its Tensor at once; the meta (dtype, shape, strides) is pending until the
    reply of the Run that made it is read, which reading any meta does (waiting for that
    reply only). Values move only on an explicit call (numpy, item, tolist, print).
    """

    __slots__ = ("_client", "_id", "_dtype", "_shape", "_strides", "_rec", "_requires_grad",
                 "_rg_exact", "_grad_fn", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None       # NumPy defers to our reflected operators

    def __init__(self, client, tid, dtype, shape, strides=None):
        self._client = client
        self._id = tid
        self._dtype = dtype
        self._shape = tuple(int(s) for s in shape)
        self._strides = tuple(strides) if strides else None
        self._rec = None
        self._requires_grad = False
        self._rg_exact = True
        self._grad_fn = None

    @classmethod
    def _pending(cls, client, tid, rec):
        t = cls.__new__(cls)
        t._client = client
        t._id = tid
        t._dtype = None
        t._shape = None
        t._strides = None
        t._rec = rec
        t._requires_grad = False
        t._rg_exact = True
        t._grad_fn = None
        return t

    @classmethod
    def _from_meta(cls, client, tid, meta):
        return cls(client, tid, _dt.from_code(meta.dtype), tuple(meta.shape),
                   tuple(meta.strides))

    def _set_meta(self, meta):
        self._dtype = _dt.from_code(meta.dtype)
        self._shape = tuple(meta.shape)
        self._strides = tuple(meta.strides)

    def _meta(self):
        # Waits for this tensor's Run reply when its meta is pending; raises its op's error.
        if self._rec is not None:
            self._client._resolve(self)

    def __del__(self):
        try:
            c = self._client
            if c is not None and self._id:
                c._release(self._id, self._rec)
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    # ---- metadata ----------------------------------------------------------------------
    @property
    def id(self):
        return self._id

    @property
    def client(self):
        return self._client

    @property
    def dtype(self):
        if self._rec is not None:
            self._client._resolve(self)
        return self._dtype

    @property
    def shape(self):
        if self._rec is not None:
            self._client._resolve(self)
        return self._shape

    @property
    def device(self):
        return "cpu"

    @property
    def ndim(self):
        return len(self.shape)

    def dim(self):
        return len(self.shape)

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def size(self):
        """The number of elements (the Array API's ``x.size``), also callable the torch way:
        ``x.size()`` is the shape, ``x.size(d)`` one dimension."""
        shape = self.shape
        n = 1
        for s in shape:
            n *= s
        return _Size(n, shape)

    def stride(self, dim=None):
        """Strides in elements, as the daemon reported them (C order for uploads)."""
        shape = self.shape
        st = self._strides
        if st is None:
            st = []
            acc = 1
            for s in reversed(shape):
                st.append(acc)
                acc *= max(s, 1)
            st = tuple(reversed(st))
        return st if dim is None else st[dim]

    def is_contiguous(self):
        exp = 1
        st = self.stride()
        for s, t in zip(reversed(self._shape), reversed(st)):
            if s != 1 and t != exp:
                return False
            exp *= s
        return True

    @property
    def itemsize(self):
        return self.dtype.itemsize

    def element_size(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.numel() * self.dtype.itemsize

    def is_floating_point(self):
        return self.dtype.kind == "f"

    def is_complex(self):
        return self.dtype.kind == "c"

    # ---- data --------------------------------------------------------------------------
    def numpy(self, force=False):
        """Downloads the values (a synchronising call: raises this tensor's error, or the
        first error of any earlier op not raised yet). Like PyTorch, refuses a tensor that
        requires grad unless force. Returns: a new NumPy array (float32 for bfloat16)."""
        if not force and self._requires_grad and self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self._client.download(self)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise ValueError("only one-element tensors can be converted to a Python scalar "
                             "(shape %s)" % (self._shape,))
        return self._client.download(self).reshape(()).item()

    def tolist(self):
        return self._client.download(self).tolist()

    def _describe(self):
        if self._rec is None:
            return "shape=%s, dtype=%s" % (self._shape, self._dtype.name)
        return "meta pending"

    def __repr__(self):
        # Shows values (waiting for them) but never raises: an op's error is shown as text,
        # and an unrelated pending error stays pending for the next synchronising call.
        c = self._client
        if c is None or c.closed or not self._id:
            return "tensor(<unavailable>, id=%d, %s)" % (self._id, self._describe())
        try:
            a = c.download(self, raise_pending=False)
        except Exception as e:  # noqa: BLE001 - repr must not raise
            return "tensor(<error: %s>, %s)" % (e, self._describe())
        return self._format(a)

    def __str__(self):
        # print() is a synchronising call: it raises this tensor's or a pending error.
        return self._format(self._client.download(self))

    def _format(self, a):
        body = np.array2string(a, separator=", ", prefix="tensor(")
        extra = ""
        if self._dtype not in (_dt.float32, _dt.int64, _dt.bool_):
            extra = ", dtype=tensord.%s" % self._dtype.name
        rg, _ = self._rg_state()
        if rg:
            if self._grad_fn is not None:
                extra += ", grad_fn=<%s>" % GradFn(self._grad_fn).name()
            else:
                extra += ", requires_grad=True"
        return "tensor(%s%s)" % (body, extra)

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __iter__(self):
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(shape[0]):
            yield self.select(0, i)

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def __reduce__(self):
        raise TypeError("tensord.Tensor cannot be pickled; use .numpy()")

    # ---- op plumbing -------------------------------------------------------------------
    def _op(self, name, *inputs, **attrs):
        return self._client.run_op(name, (self,) + inputs, attrs)[0]

    def __getattr__(self, name):
        # Any op the daemon publishes is a method: x.<op>(*more_inputs, **attrs); for an
        # op that returns one tensor, x.<op>_(...) is its in-place form (op + copy_).
        if name.startswith("_"):
            raise AttributeError(name)
        c = object.__getattribute__(self, "_client")
        if c is None or c.closed:
            raise AttributeError("'Tensor' object has no attribute %r" % (name,))
        sch = c.schema()
        if name not in sch:
            base = sch.get(name[:-1]) if name.endswith("_") else None
            if base is None or base.num_outputs != 1 or base.max_inputs == 0:
                raise AttributeError("'Tensor' object has no attribute %r" % (name,))
            from . import ops

            def inplace(*args, **kw):
                self._check_inplace()
                return self._inplace(ops.op(base.name, self, *args, **kw), checked=True)
            inplace.__name__ = name
            return inplace
        from . import ops
        fn = ops.make_op_function(name)

        def method(*args, **kw):
            return fn(self, *args, **kw)
        method.__name__ = name
        method.__doc__ = fn.__doc__
        return method

    def __dir__(self):
        names = set(super().__dir__())
        c = self._client
        if c is not None and not c.closed and c._schema is not None:
            names.update(c._schema)
        return sorted(names)

    # ---- operators ---------------------------------------------------------------------
    def _bin(self, name, other, reflected=False):
        if not _operand_ok(other):
            return NotImplemented
        ins = (other, self) if reflected else (self, other)
        return self._client.run_op(name, ins, {})[0]

    def __add__(self, o):
        return self._bin("add", o)

    def __radd__(self, o):
        return self._bin("add", o, True)

    def __sub__(self, o):
        return self._bin("sub", o)

    def __rsub__(self, o):
        return self._bin("sub", o, True)

    def __mul__(self, o):
        return self._bin("mul", o)

    def __rmul__(self, o):
        return self._bin("mul", o, True)

    def __truediv__(self, o):
        return self._bin("div", o)

    def __rtruediv__(self, o):
        return self._bin("div", o, True)

    def __floordiv__(self, o):
        return self._bin("floor_divide", o)

    def __rfloordiv__(self, o):
        return self._bin("floor_divide", o, True)

    def __mod__(self, o):
        return self._bin("remainder", o)

    def __rmod__(self, o):
        return self._bin("remainder", o, True)

    def __pow__(self, o, mod=None):
        if mod is not None:
            return NotImplemented
        return self._bin("pow", o)

    def __rpow__(self, o):
        return self._bin("pow", o, True)

    def __matmul__(self, o):
        return self._bin("matmul", o)

    def __rmatmul__(self, o):
        return self._bin("matmul", o, True)

    def __and__(self, o):
        return self._bin("bitwise_and", o)

    def __rand__(self, o):
        return self._bin("bitwise_and", o, True)

    def __or__(self, o):
        return self._bin("bitwise_or", o)

    def __ror__(self, o):
        return self._bin("bitwise_or", o, True)

    def __xor__(self, o):
        return self._bin("bitwise_xor", o)

    def __rxor__(self, o):
        return self._bin("bitwise_xor", o, True)

    def __lshift__(self, o):
        return self._bin("bitwise_left_shift", o)

    def __rlshift__(self, o):
        return self._bin("bitwise_left_shift", o, True)

    def __rshift__(self, o):
        return self._bin("bitwise_right_shift", o)

    def __rrshift__(self, o):
        return self._bin("bitwise_right_shift", o, True)

    def __eq__(self, o):
        return self._bin("eq", o)

    def __ne__(self, o):
        return self._bin("ne", o)

    def __lt__(self, o):
        return self._bin("lt", o)

    def __le__(self, o):
        return self._bin("le", o)

    def __gt__(self, o):
        return self._bin("gt", o)

    def __ge__(self, o):
        return self._bin("ge", o)

    def __neg__(self):
        return self._op("neg")

    def __pos__(self):
        return self

    def __abs__(self):
        return self._op("abs")

    def __invert__(self):
        return self._op("bitwise_not")

    def __round__(self, ndigits=None):
        return self._op("round", decimals=ndigits or 0)

    # ---- indexing ----------------------------------------------------------------------
    def __getitem__(self, key):
        return _getitem(self, key)

    def __setitem__(self, key, value):
        """x[key] = value for basic keys (ints, slices, None, Ellipsis: written through a
        view), for one boolean mask (a where over the whole tensor) and for keys with
        integer arrays (NumPy's rules, a scatter written back through a view; see
        _setitem_arrays)."""
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, (Tensor, np.ndarray, list)) for k in keys):
            k = keys[0]
            if isinstance(k, Tensor):
                is_mask = k.dtype is _dt.bool_
            else:
                k = np.asarray(k)
                is_mask = k.dtype == np.bool_
            if len(keys) != 1 or not is_mask:
                expanded, _ = _expand_key(self, key)
                self._check_inplace()
                _setitem_arrays(self, expanded, value)
                return
            self._check_inplace()
            out = self._client.run_op("where", (k, value, self), {})[0]
            self._inplace(out, checked=True)
            return
        self._check_inplace()
        view = _getitem(self, key)
        self._client.run_op("copy_", (view, value), {}, noutputs=0)

    # ---- autograd ----------------------------------------------------------------------
    def _rg_state(self):
        """Returns: (requires_grad, exact) without waiting: the reply's value once read,
        else the local guess."""
        if not self._rg_exact:
            r = self._rec
            if r is not None:
                f = r.final(self._id)
                if f.done and f.rg is not None:
                    self._settle_grad_state(self._id in f.rg)
        return self._requires_grad, self._rg_exact

    def _settle_grad_state(self, requires_grad):
        # The daemon's word on an op output whose requires_grad was a guess.
        if self._rg_exact:
            return
        self._requires_grad = bool(requires_grad)
        self._rg_exact = True
        if not requires_grad:
            self._grad_fn = None

    @property
    def requires_grad(self):
        """Whether autograd records ops on this tensor (waits for the op's reply only when
        the local rule could not decide)."""
        rg, exact = self._rg_state()
        if not exact and self._rec is not None:
            self._client._resolve(self)
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Marks a leaf as requiring grad (or not). Returns: self. Raises RuntimeError for a
        non-leaf (unless requires_grad is True) and for a dtype that cannot require grad."""
        want = bool(requires_grad)
        if self._grad_fn is not None and self.requires_grad:
            if want:
                return self
            raise RuntimeError("you can only change requires_grad flags of leaf variables. "
                               "If you want to use a computed variable in a subgraph that "
                               "doesn't require differentiation use var_no_grad = "
                               "var.detach().")
        if want and self._dtype is not None and self._dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients (got %s)" % self._dtype.name)
        self._client.run_op("requires_grad_", (self,), {"requires_grad": want}, noutputs=0)
        self._requires_grad = want
        self._rg_exact = True
        self._grad_fn = None
        return self

    @property
    def is_leaf(self):
        """True for tensors that do not require grad and for those the user marked
        (requires_grad_); False for outputs of recorded ops."""
        return self._grad_fn is None or not self.requires_grad

    @property
    def grad_fn(self):
        """The op that made this tensor (an object with .name()), None for leaves."""
        if self._grad_fn is None or not self.requires_grad:
            return None
        return GradFn(self._grad_fn)

    @property
    def grad(self):
        """The accumulated gradient (a Tensor) or None. A synchronising call: it waits for
        the daemon's answer and raises a pending error (a failed backward)."""
        c = self._client
        (g,) = c.run_op("grad", (self,), {})
        defined = c._resolve_defined(g)
        with c._conn.lock:
            c._raise_pending()
        return g if defined else None

    @grad.setter
    def grad(self, value):
        if value is None:
            self._client.run_op("set_grad", (self,), {}, noutputs=0)
        elif isinstance(value, Tensor):
            self._client.run_op("set_grad", (self, value), {}, noutputs=0)
        else:
            raise TypeError("assigned grad expected to be a Tensor or None but got %s"
                            % type(value).__name__)

    @grad.deleter
    def grad(self):
        self.grad = None

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulates the gradient of this tensor into the .grad of the leaves (see
        tensord.autograd.backward). Queued like any op: errors surface at the next
        synchronising call."""
        from . import autograd
        autograd.backward(self, gradient, retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)

    def detach(self):
        """A tensor on the same data without autograd history (keeps a forward-mode
        tangent, like PyTorch)."""
        return self._op("detach")

    def detach_(self):
        """Detaches this tensor in place (it now names a fresh daemon tensor on the same
        data, without history). Returns: self."""
        if self._grad_fn is None and self._requires_grad:
            raise RuntimeError("detach_: cannot detach a leaf that requires grad in place; "
                               "use requires_grad_(False)")
        d = self._op("detach")
        _swap_handles(self, d)
        return self

    # ---- in place ----------------------------------------------------------------------
    def _check_inplace(self):
        if self._requires_grad and self._rg_exact and _client.is_grad_enabled():
            if self._grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise RuntimeError("in-place operation on a tensor that requires grad (output of "
                               "%s): tensord does not record in-place ops; use the "
                               "out-of-place op, or no_grad()" % self._grad_fn)

    def _inplace(self, out, checked=False):
        """Writes out into self with the daemon's copy_ (which bumps the version counter).
        Returns: self."""
        if not checked:
            self._check_inplace()
        self._client.run_op("copy_", (self, out), {}, noutputs=0)
        return self

    def copy_(self, src):
        """Copies src (a Tensor, array data or a number; broadcast and cast) into self."""
        return self._inplace(src)

    def add_(self, other, alpha=None):
        self._check_inplace()
        return self._inplace(self._client.run_op("add", (self, other), {"alpha": alpha})[0],
                             checked=True)

    def sub_(self, other, alpha=None):
        self._check_inplace()
        return self._inplace(self._client.run_op("sub", (self, other), {"alpha": alpha})[0],
                             checked=True)

    def mul_(self, other):
        self._check_inplace()
        return self._inplace(self._client.run_op("mul", (self, other), {})[0], checked=True)

    def div_(self, other, rounding_mode=None):
        self._check_inplace()
        return self._inplace(self._client.run_op(
            "div", (self, other), {"rounding_mode": rounding_mode})[0], checked=True)

    def zero_(self):
        return self._inplace(0)

    def fill_(self, value):
        return self._inplace(value)

    def clamp_(self, min=None, max=None):
        self._check_inplace()
        return self._inplace(self._op("clamp", min=min, max=max), checked=True)

    clip_ = clamp_

    def _augmented(self, o, name):
        # x op= o: in place (PyTorch) unless autograd is involved; the daemon does not
        # record in-place ops, so then x is rebound to the out-of-place result. The __i*__
        # dunders are set from the table after the class.
        if not _operand_ok(o):
            return NotImplemented
        if _client.is_grad_enabled() and (
                (self._requires_grad and self._grad_fn is not None) or
                (isinstance(o, Tensor) and o._requires_grad)):
            return self._client.run_op(name, (self, o), {})[0]
        self._check_inplace()
        return self._inplace(self._client.run_op(name, (self, o), {})[0], checked=True)

    # ---- hand-written torch-like methods -----------------------------------------------
    @property
    def T(self):
        if self.ndim < 2:
            return self
        return self._op("permute", dims=list(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return self._op("transpose", dim0=-2, dim1=-1)

    @property
    def real(self):
        return self._op("real")

    @property
    def imag(self):
        return self._op("imag")

    def to(self, dtype):
        """Returns: this tensor converted to dtype (itself when it already has it)."""
        if isinstance(dtype, str) and dtype in ("cpu", "cpu:0"):
            return self
        d = _dt.to_dtype(dtype)
        if d is self.dtype:
            return self
        return self._op("cast", dtype=d)

    def astype(self, dtype):
        return self._op("cast", dtype=_dt.to_dtype(dtype))

    def type(self, dtype=None):
        if dtype is None:
            return "tensord." + self.dtype.name
        return self.to(dtype)

    def float(self):
        return self.to(_dt.float32)

    def double(self):
        return self.to(_dt.float64)

    def half(self):
        return self.to(_dt.float16)

    def bfloat16(self):
        return self.to(_dt.bfloat16)

    def int(self):
        return self.to(_dt.int32)

    def long(self):
        return self.to(_dt.int64)

    def bool(self):
        return self.to(_dt.bool_)

    def cpu(self):
        return self

    def reshape(self, *shape):
        return self._op("reshape", shape=list(_norm_shape(shape)))

    def view(self, *shape):
        if len(shape) == 1 and not hasattr(shape[0], "__len__") and \
                not hasattr(shape[0], "__index__"):
            return self.to(shape[0])
        return self._op("view", shape=list(_norm_shape(shape)))

    def permute(self, *dims):
        return self._op("permute", dims=list(_norm_shape(dims)))

    def expand(self, *shape):
        return self._op("expand", shape=list(_norm_shape(shape)))

    def expand_as(self, other):
        return self._op("expand", shape=list(other.shape))

    def reshape_as(self, other):
        return self._op("reshape", shape=list(other.shape))

    def flip(self, *dims):
        return self._op("flip", dims=list(_norm_shape(dims)))

    def split(self, split_size_or_sections, dim=0):
        from . import ops
        return ops.split(self, split_size_or_sections, dim)

    def gather(self, dim, index):
        return self._op("gather", index, dim=dim)

    def scatter(self, dim, index, src, reduce=None):
        return self._op("scatter", index, src, dim=dim, reduce=reduce)

    def index_select(self, dim, index):
        return self._op("index_select", index, dim=dim)

    def where(self, condition, other):
        return self._client.run_op("where", (condition, self, other), {})[0]

    def clip(self, min=None, max=None):
        return self._op("clamp", min=min, max=max)

    def numpy_dtype(self):
        return self.dtype.numpy_dtype

    # ---- Python Array API (tensord.array_api; see docs/ARRAY_API.md) -----------------------
    def __array_namespace__(self, /, *, api_version=None):
        """Returns: the tensord.array_api module (api_version None or 2021.12..2024.12)."""
        if api_version not in (None, "2021.12", "2022.12", "2023.12", "2024.12"):
            raise ValueError("tensord.array_api does not implement Array API version %r"
                             % (api_version,))
        from . import array_api
        return array_api

    def to_device(self, device, /, *, stream=None):
        """Returns: self for the daemon's 'cpu' device; other devices raise ValueError."""
        if stream is not None:
            raise ValueError("to_device: stream is not supported on the cpu device")
        d = device if isinstance(device, str) else str(device)
        if d not in ("cpu", "cpu:0"):
            raise ValueError("to_device: unsupported device %r" % (device,))
        return self

    def __dlpack_device__(self):
        """Returns: (kDLCPU, 0): DLPack export hands over a host copy of the values."""
        return (1, 0)

    def __dlpack__(self, /, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Exports the values as a DLPack capsule. The data lives in the daemon, so this is
        always a fresh host copy: copy=False raises BufferError."""
        if copy is False:
            raise BufferError("__dlpack__: a tensord array lives in the daemon; it can only "
                              "be exported as a copy (copy=False is impossible)")
        if stream is not None and stream != -1:
            raise BufferError("__dlpack__: stream must be None for the cpu device")
        if dl_device is not None and tuple(dl_device) != (1, 0):
            raise BufferError("__dlpack__: cannot export to device %r" % (dl_device,))
        a = self.numpy()
        if not a.flags.writeable:
            a = a.copy()
        if max_version is None:
            return a.__dlpack__()
        return a.__dlpack__(max_version=max_version)


def _augmented_method(dunder, name):
    def method(self, o):
        return self._augmented(o, name)
    method.__name__ = dunder
    method.__qualname__ = "Tensor." + dunder
    method.__doc__ = "x op= o through daemon op %r (see Tensor._augmented)." % name
    return method


# The augmented assignments x op= o: Tensor dunder -> daemon op.
for _dunder, _name in (("__iadd__", "add"), ("__isub__", "sub"), ("__imul__", "mul"),
                       ("__itruediv__", "div"), ("__imod__", "remainder"),
                       ("__ifloordiv__", "floor_divide"), ("__ipow__", "pow"),
                       ("__imatmul__", "matmul"), ("__iand__", "bitwise_and"),
                       ("__ior__", "bitwise_or"), ("__ixor__", "bitwise_xor"),
                       ("__ilshift__", "bitwise_left_shift"),
                       ("__irshift__", "bitwise_right_shift")):
    setattr(Tensor, _dunder, _augmented_method(_dunder, _name))
del _dunder, _name


class _Size(int):
    """Tensor.size: the element count as an int that, called, gives the shape (torch)."""

    def __new__(cls, n, shape):
        self = super().__new__(cls, n)
        self._shape_for_call = shape
        return self

    def __call__(self, dim=None):
        return self._shape_for_call if dim is None else self._shape_for_call[dim]


class GradFn:
    """A tensor's grad_fn as the client knows it: the op that made it."""

    __slots__ = ("op",)

    def __init__(self, op):
        self.op = op

    def name(self):
        """Returns: a PyTorch-style name, "MulBackward0" for mul."""
        return "".join(p[:1].upper() + p[1:] for p in self.op.split("_")) + "Backward0"

    def __repr__(self):
        return "<%s>" % self.name()

    def __eq__(self, other):
        return isinstance(other, GradFn) and other.op == self.op

    def __hash__(self):
        return hash(self.op)


def _swap_handles(a, b):
    # Exchanges what two Tensor objects name (ids, meta, pending reply, autograd state).
    for f in ("_client", "_id", "_dtype", "_shape", "_strides", "_rec", "_requires_grad",
              "_rg_exact", "_grad_fn"):
        va, vb = getattr(a, f), getattr(b, f)
        setattr(a, f, vb)
        setattr(b, f, va)


def _operand_ok(o):
    return isinstance(o, (Tensor, np.ndarray, list, tuple)) or _client.is_scalar(o)


def _attr(**kw):
    ((k, v),) = kw.items()
    if isinstance(v, bool):
        return pb.Attr(name=k, b=v)
    if isinstance(v, int):
        return pb.Attr(name=k, i=v)
    a = pb.Attr(name=k)
    a.ints.SetInParent()
    a.ints.values.extend(list(v))
    return a


def _expand_key(t, key):
    """Normalises an indexing key: arrays and tensors become ("mask", bool ndarray) or
    ("index", int64 ndarray), Python integers ("int", i), and Ellipsis the full slices it
    stands for. Returns: (expanded key, whether t's shape was needed). Reads tensor indices
    (a sync)."""
    if not isinstance(key, tuple):
        key = (key,)
    norm = []
    for k in key:
        if isinstance(k, (Tensor, np.ndarray, list)):
            a = k.numpy() if isinstance(k, Tensor) else np.asarray(k)
            if a.dtype == np.bool_:
                norm.append(("mask", a))
            elif a.dtype.kind in "iu" or (a.size == 0 and isinstance(k, list)):
                # An empty list is an integer index (NumPy's float64 empty array is intp).
                norm.append(("index", a.astype(np.int64)))
            else:
                raise IndexError("tensors used as indices must be integer or bool")
        elif k is None or k is Ellipsis or isinstance(k, slice):
            norm.append(k)
        else:
            try:
                norm.append(("int", operator.index(k)))
            except TypeError:
                raise IndexError("unsupported index %r" % (k,)) from None
    consumed = 0
    for k in norm:
        if isinstance(k, tuple):
            consumed += k[1].ndim if k[0] == "mask" else 1
        elif isinstance(k, slice):
            consumed += 1
    if sum(1 for k in norm if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    # Only integer, array and Ellipsis keys need the shape (bounds checks, normalisation);
    # slices and None alone do not wait for a pending tensor's meta.
    need_shape = any(k is Ellipsis or isinstance(k, tuple) for k in norm) or \
        all(k == slice(None) for k in norm)
    if need_shape and consumed > t.ndim:
        raise IndexError("too many indices for tensor of dimension %d" % t.ndim)
    expanded = []
    for k in norm:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (t.ndim - consumed))
        else:
            expanded.append(k)
    return expanded, need_shape


def _getitem(t, key):
    """Indexing like NumPy: ints (select), slices with steps (slice), None (unsqueeze),
    Ellipsis, and one integer or boolean array/tensor index (index_select, after the
    index is normalised locally). Everything runs as one Run request. Keys of slices and
    None only never wait for t's meta; the others do (bounds checks, normalisation).
    Several advanced indices (integer arrays, with integers and masks among them) follow
    NumPy's rules through _getitem_arrays."""
    from .client import Graph
    expanded, need_shape = _expand_key(t, key)
    kinds = [k[0] for k in expanded if isinstance(k, tuple)]
    if len(kinds) - kinds.count("int") >= 1 and len(kinds) >= 2:
        return _getitem_arrays(t, expanded)
    c = t._client
    g = Graph(c)
    cur = g.input(t)   # registers t's requires_grad, so the result keeps its history
    shape = list(t.shape) if need_shape else None
    dim = 0
    nodes = 0

    def step(op, attrs, extra_inputs=()):
        nonlocal cur, nodes
        if nodes:
            g.discard.append(cur)
        (cur,) = g.add(op, [cur] + list(extra_inputs), attrs)
        nodes += 1

    for k in expanded:
        if k is None:
            step("unsqueeze", [_attr(dim=dim)])
            if shape is not None:
                shape.insert(dim, 1)
            dim += 1
        elif isinstance(k, slice):
            if k != slice(None):
                start, stop, stride = k.start, k.stop, k.step
                attrs = [_attr(dim=dim)]
                if start is not None:
                    attrs.append(pb.Attr(name="start", i=operator.index(start)))
                if stop is not None:
                    attrs.append(pb.Attr(name="end", i=operator.index(stop)))
                if stride is not None:
                    if operator.index(stride) == 0:
                        raise ValueError("slice step cannot be zero")
                    attrs.append(pb.Attr(name="step", i=operator.index(stride)))
                step("slice", attrs)
                if shape is not None:
                    shape[dim] = len(range(*k.indices(shape[dim])))
            dim += 1
        elif k[0] == "int":
            i = k[1]
            n = shape[dim]
            if not -n <= i < n:
                raise IndexError("index %d is out of bounds for dimension %d with size %d"
                                 % (i, dim, n))
            step("select", [_attr(dim=dim), pb.Attr(name="index", i=i)])
            del shape[dim]
        else:
            kind, a = k
            if kind == "mask":
                m = a.ndim
                if tuple(shape[dim:dim + m]) != a.shape:
                    raise IndexError("boolean index of shape %s does not match the indexed "
                                     "dims %s" % (a.shape, tuple(shape[dim:dim + m])))
                idx = np.flatnonzero(a).astype(np.int64)
                if m != 1:
                    new_shape = shape[:dim] + [int(np.prod(a.shape))] + shape[dim + m:]
                    step("reshape", [_attr(shape=new_shape)])
                    shape = new_shape
                step("index_select", [_attr(dim=dim)], [g.input(idx)])
                shape[dim] = idx.size
                dim += 1
            else:
                n = shape[dim]
                if a.size and (a.min() < -n or a.max() >= n):
                    raise IndexError("index out of bounds for dimension %d with size %d"
                                     % (dim, n))
                a = np.where(a < 0, a + n, a)
                step("index_select", [_attr(dim=dim)], [g.input(a.reshape(-1))])
                if a.ndim != 1:
                    new_shape = shape[:dim] + list(a.shape) + shape[dim + 1:]
                    step("reshape", [_attr(shape=new_shape)])
                    shape = new_shape
                    dim += a.ndim
                else:
                    shape[dim] = a.size
                    dim += 1
    if nodes == 0:
        # x[...] or x[:] : a view of the whole tensor.
        if t.ndim:
            step("slice", [_attr(dim=0)])
        else:
            step("reshape", [_attr(shape=[])])
    return g.run()[-1]


def _adv_plan(shape, expanded):
    """Splits a key with several advanced indices (integer arrays; integers, which count as
    0-d arrays; boolean masks, which count as their nonzero() arrays) into NumPy's steps.
    `expanded` is the normalised key without Ellipsis (see _getitem), `shape` t's shape.
    Returns: (basic, mid_shape, pos, flat, adjacent): basic is the key with a full slice in
    place of each advanced index (slices and None only); mid_shape the shape after it; pos
    the dims of mid_shape the advanced indices address, in order; flat the int64 row-major
    index over those dims of the broadcast index arrays (its shape is the broadcast shape);
    adjacent whether the dims are consecutive (the result dims then replace them, else they
    go first). Negative indices are wrapped; out-of-range ones raise IndexError."""
    basic, mid, pos, arrays, sizes = [], [], [], [], []
    d = 0
    for k in expanded:
        if k is None:
            basic.append(None)
            mid.append(1)
            continue
        if isinstance(k, slice):
            basic.append(k)
            mid.append(len(range(*k.indices(shape[d]))))
            d += 1
            continue
        kind, a = k
        if kind == "mask":
            if a.ndim == 0:
                raise IndexError("tensord: a 0-d boolean index cannot be combined with "
                                 "integer array indices")
            if tuple(shape[d:d + a.ndim]) != a.shape:
                raise IndexError("boolean index of shape %s does not match the indexed dims "
                                 "%s" % (a.shape, tuple(shape[d:d + a.ndim])))
            parts = [p.astype(np.int64) for p in np.nonzero(a)]
        else:
            parts = [np.asarray(a, dtype=np.int64)]
        for p in parts:
            n = shape[d]
            bad = p[(p < -n) | (p >= n)]
            if bad.size:
                raise IndexError("index %d is out of bounds for dimension %d with size %d"
                                 % (int(bad.reshape(-1)[0]), d, n))
            arrays.append(np.where(p < 0, p + n, p))
            sizes.append(n)
            pos.append(len(mid))
            basic.append(slice(None))
            mid.append(n)
            d += 1
    mid += list(shape[d:])
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together "
                         "with shapes %s" % " ".join(str(a.shape) for a in arrays)) from None
    flat = np.zeros(arrays[0].shape, dtype=np.int64)
    for a, n in zip(arrays, sizes):
        flat = flat * n + a
    adjacent = pos == list(range(pos[0], pos[0] + len(pos)))
    return basic, mid, pos, flat, adjacent


def _adv_front(t, mid, pos, adjacent):
    """The basically indexed tensor t (shape mid) with the advanced dims pos merged into one
    dim, at pos[0] when adjacent, else first. Returns: (tensor, merged dim, rest shape
    before the merged dim, rest shape after it)."""
    c = t._client
    if not adjacent:
        rest = [i for i in range(len(mid)) if i not in pos]
        t = c.run_op("permute", (t,), {"dims": list(pos) + rest})[0]
        mid = [mid[i] for i in pos] + [mid[i] for i in rest]
        pos = list(range(len(pos)))
    p0, p1 = pos[0], pos[-1] + 1
    merged = 1
    for n in mid[p0:p1]:
        merged *= n
    t = c.run_op("reshape", (t,), {"shape": mid[:p0] + [merged] + mid[p1:]})[0]
    return t, p0, mid[:p0], mid[p1:]


def _getitem_arrays(t, expanded):
    """t[key] for keys with several advanced indices (see _adv_plan), with NumPy's result:
    the basic part of the key as a view, the indexed dims merged into one (moved first
    unless adjacent), one index_select with the flat index, and a reshape to the broadcast
    index shape. Waits for t's shape and reads tensor indices (a sync)."""
    basic, mid, pos, flat, adjacent = _adv_plan(list(t.shape), expanded)
    c = t._client
    v = _getitem(t, tuple(basic))
    v, dim, before, after = _adv_front(v, mid, pos, adjacent)
    v = c.run_op("index_select", (v, flat.reshape(-1)), {"dim": dim})[0]
    return c.run_op("reshape", (v,), {"shape": before + list(flat.shape) + after})[0]


def _setitem_arrays(t, expanded, value):
    """t[key] = value for keys with integer arrays (see _adv_plan): value, broadcast to
    t[key]'s shape and cast to t's dtype, is scattered into the indexed dims merged into one
    (as in _getitem_arrays) and the result is copied back through the view of the basic part
    of the key. A position indexed more than once receives one of its values."""
    basic, mid, pos, flat, adjacent = _adv_plan(list(t.shape), expanded)
    c = t._client
    v = _getitem(t, tuple(basic))
    m, dim, before, after = _adv_front(v, mid, pos, adjacent)
    src_shape = before + [int(flat.size)] + after
    val = c.run_op("broadcast_to", (value,), {"shape": before + list(flat.shape) + after})[0]
    val = c.run_op("cast", (val,), {"dtype": t.dtype})[0]
    val = c.run_op("reshape", (val,), {"shape": src_shape})[0]
    idx = flat.reshape([1] * len(before) + [flat.size] + [1] * len(after))
    idx = c.run_op("expand", (idx,), {"shape": src_shape})[0]
    m = c.run_op("scatter", (m, idx, val), {"dim": dim})[0]
    if adjacent:
        w = c.run_op("reshape", (m,), {"shape": mid})[0]
    else:
        rest = [i for i in range(len(mid)) if i not in pos]
        order = list(pos) + rest
        w = c.run_op("reshape", (m,), {"shape": [mid[i] for i in order]})[0]
        inverse = [order.index(i) for i in range(len(mid))]
        w = c.run_op("permute", (w,), {"dims": inverse})[0]
    c.run_op("copy_", (v, w), {}, noutputs=0)


# Keep _wire referenced for type checkers of the public error classes.
TensordError = _wire.TensordError

# client.py builds Tensors without importing this module at call time.
_client.Tensor = Tensor
