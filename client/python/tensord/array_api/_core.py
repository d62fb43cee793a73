"""Shared pieces of tensord.array_api: the dtypes of the namespace, the standard's type
promotion table, argument normalisation and the op runner."""
import importlib
import operator

import numpy as np

from .. import client as _client
from ..ops import _pick_client
from ..tensor import Tensor

# tensord.dtypes the module (the package attribute of that name is the dtype tuple).
_dt = importlib.import_module("..dtypes", __package__)

bool = _dt.bool_  # noqa: A001 - the standard's name
int8 = _dt.int8
int16 = _dt.int16
int32 = _dt.int32
int64 = _dt.int64
uint8 = _dt.uint8
float32 = _dt.float32
float64 = _dt.float64
complex64 = _dt.complex64
complex128 = _dt.complex128

# The dtypes this namespace publishes (the daemon has no uint16/uint32/uint64; float16 and
# bfloat16 are tensord extensions outside the standard and are not listed).
DTYPES = (bool, int8, int16, int32, int64, uint8, float32, float64, complex64, complex128)

DEFAULT_FLOAT = float64
DEFAULT_COMPLEX = complex128
DEFAULT_INT = int64
DEFAULT_INDEX = int64

_SIGNED = (int8, int16, int32, int64)
_BITS = {int8: 8, int16: 16, int32: 32, int64: 64, uint8: 8}
_FLOATS = (_dt.float16, _dt.bfloat16, float32, float64)


def is_array(x):
    return isinstance(x, Tensor)


def client_of(*xs):
    """The client of the first Tensor among xs (or inside a list/tuple in xs), else the
    default client."""
    return _pick_client(xs, None)


def run(name, *inputs, noutputs=None, **attrs):
    """Runs daemon op `name` on inputs with attrs (None = absent). Returns: one Tensor, or a
    tuple when the op has several outputs."""
    c = client_of(*inputs)
    outs = c.run_op(name, list(inputs), attrs, noutputs)
    return outs[0] if len(outs) == 1 else tuple(outs)


def has_op(name, x=None, attrs=()):
    """Whether the daemon publishes op `name` (with attributes `attrs`)."""
    c = x._client if isinstance(x, Tensor) else _client.default_client()
    sch = c.schema().get(name)
    return sch is not None and all(a in sch.attr_types for a in attrs)


def need_op(name, fname, x=None):
    if not has_op(name, x):
        raise NotImplementedError(
            "tensord.array_api.%s needs the daemon op %r, which this daemon does not publish"
            % (fname, name))


def check_array(x, fname, argname="x"):
    if not isinstance(x, Tensor):
        raise TypeError("%s: %s must be an array (tensord.Tensor), got %s"
                        % (fname, argname, type(x).__name__))
    return x


def to_dtype(d):
    if d is None:
        return None
    if isinstance(d, _dt.DType):
        return d
    return _dt.to_dtype(d)


def cast(x, d):
    """Returns: x converted to dtype d (x itself when it has it)."""
    if x.dtype is d:
        return x
    return run("cast", x, dtype=d)


def kind_rank(d):
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}[d.kind]


def _int_promote(a, b):
    if a.kind == b.kind:
        return a if _BITS[a] >= _BITS[b] else b
    u, s = (a, b) if a.kind == "u" else (b, a)
    if _BITS[s] > _BITS[u]:
        return s
    # uint8 with int8: the smallest signed type holding both.
    return int16


def promote_defined(a, b):
    """The standard's promotion table. Returns: the result dtype, or None when the standard
    does not define the pair (mixed kinds such as int with float, bool with a number)."""
    if a is b:
        return a
    ka, kb = kind_rank(a), kind_rank(b)
    if ka == 0 or kb == 0:
        return None
    if ka == 1 and kb == 1:
        return _int_promote(a, b)
    if ka >= 2 and kb >= 2:
        if _dt.float16 in (a, b) or _dt.bfloat16 in (a, b):
            return torch_promote(a, b)
        prec64 = float64 in (a, b) or complex128 in (a, b)
        if ka == 3 or kb == 3:
            return complex128 if prec64 else complex64
        return float64 if prec64 else float32
    return None


def torch_promote(a, b):
    """PyTorch's promote_types (what the daemon does for pairs the standard leaves open)."""
    if a is b:
        return a
    if a is bool:
        return b
    if b is bool:
        return a
    ka, kb = kind_rank(a), kind_rank(b)
    if ka != kb:
        hi, lo = (a, b) if ka > kb else (b, a)
        if hi.kind == "c" and lo is float64:
            return complex128
        return hi
    if ka == 1:
        return _int_promote(a, b)
    if ka == 2:
        if {a, b} == {_dt.float16, _dt.bfloat16}:
            return float32
        return max(a, b, key=_FLOATS.index)
    return complex128


def promote(a, b):
    r = promote_defined(a, b)
    return torch_promote(a, b) if r is None else r


def scalar_ok(x):
    return type(x) in (int, float, complex) or isinstance(x, (type(True), np.bool_)) or \
        (isinstance(x, np.generic) and x.ndim == 0)


def scalar_result(d, s):
    """The dtype of array dtype d combined with Python scalar s (scalars are weak: the array's
    dtype wins within its kind)."""
    if isinstance(s, (type(True), np.bool_)):
        return d
    if isinstance(s, (int, np.integer)):
        return d if d.kind != "b" else DEFAULT_INT
    if isinstance(s, (float, np.floating)):
        return d if d.kind in "fc" else float32
    if d.kind == "c":
        return d
    if d is float64:
        return complex128
    return complex64


def binary_operands(fname, x1, x2):
    """Normalises the operands of a binary element-wise function: at least one array; two
    arrays of different dtypes are converted to the standard's promoted dtype (the daemon
    follows PyTorch, which ranks a 0-d array below an n-d one). Returns: (x1, x2)."""
    a1, a2 = isinstance(x1, Tensor), isinstance(x2, Tensor)
    if not (a1 or a2):
        if isinstance(x1, np.ndarray) or isinstance(x2, np.ndarray):
            raise TypeError("%s: NumPy arrays are not tensord arrays; use asarray()" % fname)
        raise TypeError("%s: at least one argument must be an array" % fname)
    for x in (x1, x2):
        if not isinstance(x, Tensor) and not scalar_ok(x):
            raise TypeError("%s: expected an array or a Python scalar, got %s"
                            % (fname, type(x).__name__))
    if a1 and a2:
        d1, d2 = x1.dtype, x2.dtype
        if d1 is not d2:
            r = promote_defined(d1, d2)
            if r is not None:
                x1 = cast(x1, r)
                x2 = cast(x2, r)
    return x1, x2


def norm_axis(axis, ndim, fname, allow_none=True):
    """Returns: a sorted tuple of non-negative axes (None stays None)."""
    if axis is None:
        if allow_none:
            return None
        raise TypeError("%s: axis is required" % fname)
    if isinstance(axis, (tuple, list)):
        axes = [operator.index(a) for a in axis]
    else:
        axes = [operator.index(axis)]
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise IndexError("%s: axis %d is out of bounds for an array of dimension %d"
                             % (fname, a, ndim))
        a = a + ndim if a < 0 else a
        if a in out:
            raise ValueError("%s: repeated axis %d" % (fname, a))
        out.append(a)
    return tuple(sorted(out))


def norm_one_axis(axis, ndim, fname):
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise IndexError("%s: axis %d is out of bounds for an array of dimension %d"
                         % (fname, a, ndim))
    return a + ndim if a < 0 else a


def check_device(device, fname):
    if device is None:
        return
    d = device if isinstance(device, str) else str(device)
    if d not in ("cpu", "cpu:0"):
        raise ValueError("%s: unsupported device %r (tensord.array_api arrays live on the "
                         "daemon's 'cpu' device)" % (fname, device))


def reshape(x, shape):
    return run("reshape", x, shape=[int(s) for s in shape])


def keepdims_shape(shape, axes):
    return [1 if (axes is None or i in axes) else s for i, s in enumerate(shape)]
