"""Creation functions of the standard."""
import builtins
import operator

import numpy as np

from .. import client as _client
from ..tensor import Tensor
from . import _core
from ._core import run, _dt

__all__ = ["arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full",
           "full_like", "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros",
           "zeros_like"]


def _shape(shape):
    if hasattr(shape, "__index__"):
        return [operator.index(shape)]
    return [operator.index(s) for s in shape]


def _scalar_default(*values):
    """The default dtype for Python scalars: bool, int64, float64, complex128."""
    vals = [v for v in values if v is not None]
    if any(isinstance(v, (complex, np.complexfloating)) for v in vals):
        return _core.DEFAULT_COMPLEX
    if any(isinstance(v, (float, np.floating)) for v in vals):
        return _core.DEFAULT_FLOAT
    if vals and all(isinstance(v, (builtins.bool, np.bool_)) for v in vals):
        return _core.bool
    return _core.DEFAULT_INT


def _np_default(a):
    """NumPy data from Python objects with the namespace's default dtypes."""
    k = a.dtype.kind
    if k == "f" and a.dtype != np.float32:
        return a.astype(np.float64)
    if k == "c" and a.dtype != np.complex64:
        return a.astype(np.complex128)
    if k in "iu" and a.dtype not in (np.int8, np.int16, np.int32, np.uint8):
        if k == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise OverflowError("asarray: integer value out of int64 range")
        return a.astype(np.int64)
    return a


def _flatten_tensors(obj):
    # Nested sequences that hold arrays: their values (a synchronising download).
    if isinstance(obj, Tensor):
        return obj.numpy()
    if isinstance(obj, (list, tuple)):
        return [_flatten_tensors(o) for o in obj]
    return obj


def _holds_tensor(obj):
    if isinstance(obj, Tensor):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_holds_tensor(o) for o in obj)
    return False


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """An array from obj: an array (returned as is unless a copy or another dtype is asked
    for), a Python scalar, a nested sequence, an object with __dlpack__ or the buffer
    protocol (NumPy arrays keep their dtype). copy=False raises ValueError whenever data
    would have to move into the daemon."""
    _core.check_device(device, "asarray")
    d = _core.to_dtype(dtype)
    if isinstance(obj, Tensor):
        if d is not None and obj.dtype is not d:
            if copy is False:
                raise ValueError("asarray: converting %s to %s needs a copy, but copy=False"
                                 % (obj.dtype.name, d.name))
            return run("cast", obj, dtype=d)
        return run("clone", obj) if copy else obj
    if copy is False:
        raise ValueError("asarray: copy=False, but data outside the daemon must be copied "
                         "into it")
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        a = np.asarray(obj)
    elif hasattr(obj, "__dlpack__") and not isinstance(obj, (list, tuple)):
        a = np.from_dlpack(obj)
    elif _holds_tensor(obj):
        a = _np_default(np.asarray(_flatten_tensors(obj)))
    elif isinstance(obj, (builtins.bool, int, float, complex)):
        dd = d or _scalar_default(obj)
        return run("full", shape=[], fill_value=obj, dtype=dd)
    else:
        try:
            a = np.asarray(memoryview(obj)) if not isinstance(obj, (list, tuple)) else None
        except TypeError:
            a = None
        if a is None:
            a = np.asarray(obj)
            if a.dtype.kind == "O" or a.dtype.kind in "SUV":
                raise TypeError("asarray: cannot make an array from %s" % type(obj).__name__)
            a = _np_default(a)
    if d is None:
        if a.dtype.kind == "f" and a.dtype == np.float16:
            d = _dt.float16
        else:
            d = _dt.to_dtype(a.dtype)
    c = _client.default_client()
    return c.upload(np.ascontiguousarray(a), d)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    _core.check_device(device, "arange")
    if stop is None:
        start, stop = 0, start
    d = _core.to_dtype(dtype) or _scalar_default(start, stop, step)
    if d.kind == "b":
        d = _core.DEFAULT_INT
    if step == 0:
        raise ValueError("arange: step must not be zero")
    return run("arange", start=start, end=stop, step=step, dtype=d)


def _creation(name, shape, dtype, device, fname):
    _core.check_device(device, fname)
    return run(name, shape=_shape(shape), dtype=_core.to_dtype(dtype) or _core.DEFAULT_FLOAT)


def empty(shape, *, dtype=None, device=None):
    return _creation("empty", shape, dtype, device, "empty")


def zeros(shape, *, dtype=None, device=None):
    return _creation("zeros", shape, dtype, device, "zeros")


def ones(shape, *, dtype=None, device=None):
    return _creation("ones", shape, dtype, device, "ones")


def full(shape, fill_value, *, dtype=None, device=None):
    _core.check_device(device, "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    d = _core.to_dtype(dtype) or _scalar_default(fill_value)
    return run("full", shape=_shape(shape), fill_value=fill_value, dtype=d)


def _like(name, x, dtype, device, fname, **attrs):
    _core.check_array(x, fname)
    _core.check_device(device, fname)
    return run(name, x, dtype=_core.to_dtype(dtype), **attrs)


def empty_like(x, /, *, dtype=None, device=None):
    return _like("empty_like", x, dtype, device, "empty_like")


def zeros_like(x, /, *, dtype=None, device=None):
    return _like("zeros_like", x, dtype, device, "zeros_like")


def ones_like(x, /, *, dtype=None, device=None):
    return _like("ones_like", x, dtype, device, "ones_like")


def full_like(x, /, fill_value, *, dtype=None, device=None):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _like("full_like", x, dtype, device, "full_like", fill_value=fill_value)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    """Ones on the k-th diagonal (k > 0 above the main one)."""
    _core.check_device(device, "eye")
    n = operator.index(n_rows)
    m = n if n_cols is None else operator.index(n_cols)
    k = operator.index(k)
    d = _core.to_dtype(dtype) or _core.DEFAULT_FLOAT
    if k == 0:
        return run("eye", n=n, m=m, dtype=d)
    rows = _core.reshape(run("arange", end=n, dtype=_core.int64), [n, 1])
    cols = _core.reshape(run("arange", end=m, dtype=_core.int64), [1, m])
    return run("cast", run("eq", run("add", rows, k), cols), dtype=d)


def from_dlpack(x, /, *, device=None, copy=None):
    """An array from an object with __dlpack__ (its data is copied into the daemon: copy=False
    raises ValueError)."""
    _core.check_device(device, "from_dlpack")
    if copy is False:
        raise ValueError("from_dlpack: the daemon cannot share memory with this process; "
                         "copy=False is impossible")
    if isinstance(x, Tensor):
        return run("clone", x) if copy else x
    if not hasattr(x, "__dlpack__"):
        raise TypeError("from_dlpack: %s does not implement __dlpack__" % type(x).__name__)
    a = np.from_dlpack(x)
    c = _client.default_client()
    return c.upload(np.ascontiguousarray(a), _dt.to_dtype(a.dtype))


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    _core.check_device(device, "linspace")
    num = operator.index(num)
    if num < 0:
        raise ValueError("linspace: num must be non-negative, got %d" % num)
    d = _core.to_dtype(dtype)
    if d is None:
        d = _core.DEFAULT_COMPLEX if isinstance(start, complex) or isinstance(stop, complex) \
            else _core.DEFAULT_FLOAT
    if endpoint:
        return run("linspace", start=start, end=stop, steps=num, dtype=d)
    t = run("linspace", start=start, end=stop, steps=num + 1, dtype=d)
    return run("slice", t, dim=0, end=num)


def meshgrid(*arrays, indexing="xy"):
    """Coordinate arrays from 1-D arrays ('xy': Cartesian, 'ij': matrix indexing).
    Returns: a tuple of arrays of the promoted dtype."""
    if indexing not in ("xy", "ij"):
        raise ValueError("meshgrid: indexing must be 'xy' or 'ij', got %r" % (indexing,))
    if not arrays:
        return ()
    for a in arrays:
        _core.check_array(a, "meshgrid", "arrays")
        if a.ndim != 1:
            raise ValueError("meshgrid: arrays must be 1-D, got %d-D" % a.ndim)
    d = arrays[0].dtype
    for a in arrays[1:]:
        d = _core.promote(d, a.dtype)
    sizes = [a.shape[0] for a in arrays]
    n = len(arrays)
    out_shape = list(sizes)
    if indexing == "xy" and n >= 2:
        out_shape[0], out_shape[1] = out_shape[1], out_shape[0]
    outs = []
    for i, a in enumerate(arrays):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        shp = [1] * n
        shp[pos] = sizes[i]
        t = _core.reshape(_core.cast(a, d), shp)
        outs.append(run("contiguous", run("expand", t, shape=out_shape)))
    return tuple(outs)


def tril(x, /, *, k=0):
    _core.check_array(x, "tril")
    if x.ndim < 2:
        raise ValueError("tril: x must have at least two dimensions")
    return run("tril", x, diagonal=operator.index(k))


def triu(x, /, *, k=0):
    _core.check_array(x, "triu")
    if x.ndim < 2:
        raise ValueError("triu: x must have at least two dimensions")
    return run("triu", x, diagonal=operator.index(k))
