"""Data type functions and the inspection namespace (__array_namespace_info__)."""
import collections

import numpy as np

from ..tensor import Tensor
from . import _core
from ._core import run, _dt

__all__ = ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type",
           "__array_namespace_info__"]

finfo_object = collections.namedtuple("finfo_object",
                                      "bits eps max min smallest_normal dtype")
iinfo_object = collections.namedtuple("iinfo_object", "bits max min dtype")


def astype(x, dtype, /, *, copy=True, device=None):
    """Copies (or, with copy=False and the same dtype, returns) x as dtype."""
    _core.check_array(x, "astype")
    _core.check_device(device, "astype")
    d = _core.to_dtype(dtype)
    if x.dtype is d:
        return run("clone", x) if copy else x
    return run("cast", x, dtype=d)


def _as_dtype(x, fname):
    if isinstance(x, Tensor):
        return x.dtype
    if isinstance(x, _dt.DType):
        return x
    raise TypeError("%s: expected a dtype or an array, got %r" % (fname, x))


def can_cast(from_, to, /):
    """Whether from_ (a dtype or array) promotes to `to` by the standard's table."""
    a = _as_dtype(from_, "can_cast")
    b = _as_dtype(to, "can_cast")
    if a is b:
        return True
    return _core.promote_defined(a, b) is b


def finfo(type, /):  # noqa: A002 - the standard's name
    d = _as_dtype(type, "finfo")
    if d.kind not in "fc":
        raise ValueError("finfo: %s is not a floating-point dtype" % d.name)
    real = {_dt.complex64: _dt.float32, _dt.complex128: _dt.float64}.get(d, d)
    f = np.finfo(real.numpy_dtype) if real is not _dt.bfloat16 else None
    if f is None:
        return finfo_object(16, 2.0 ** -7, 3.3895313892515355e38, -3.3895313892515355e38,
                            1.1754943508222875e-38, real)
    return finfo_object(int(f.bits), float(f.eps), float(f.max), float(f.min),
                        float(f.smallest_normal), real)


def iinfo(type, /):  # noqa: A002 - the standard's name
    d = _as_dtype(type, "iinfo")
    if d.kind not in "iu":
        raise ValueError("iinfo: %s is not an integer dtype" % d.name)
    f = np.iinfo(d.numpy_dtype)
    return iinfo_object(int(f.bits), int(f.max), int(f.min), d)


_KINDS = {
    "bool": lambda d: d.kind == "b",
    "signed integer": lambda d: d.kind == "i",
    "unsigned integer": lambda d: d.kind == "u",
    "integral": lambda d: d.kind in "iu",
    "real floating": lambda d: d.kind == "f",
    "complex floating": lambda d: d.kind == "c",
    "numeric": lambda d: d.kind in "iufc",
}


def isdtype(dtype, kind):
    """Whether dtype is of kind: a dtype, one of the standard's kind names, or a tuple."""
    if not isinstance(dtype, _dt.DType):
        raise TypeError("isdtype: expected a dtype, got %r" % (dtype,))
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, _dt.DType):
        return dtype is kind
    if isinstance(kind, str):
        f = _KINDS.get(kind)
        if f is None:
            raise ValueError("isdtype: unknown kind %r (one of %s)" % (kind, ", ".join(_KINDS)))
        return f(dtype)
    raise TypeError("isdtype: kind must be a dtype, a kind name or a tuple, got %r" % (kind,))


def result_type(*arrays_and_dtypes):
    """The dtype of an operation on the arguments (arrays, dtypes and Python scalars; at
    least one array or dtype). Pairs the standard leaves undefined (int with float, bool
    with int...) follow PyTorch's promote_types, which is what tensord's ops do."""
    ds = []
    scalars = []
    for a in arrays_and_dtypes:
        if isinstance(a, Tensor):
            ds.append(a.dtype)
        elif isinstance(a, _dt.DType):
            ds.append(a)
        elif _core.scalar_ok(a):
            scalars.append(a)
        else:
            raise TypeError("result_type: expected arrays, dtypes or scalars, got %r" % (a,))
    if not ds:
        raise ValueError("result_type: at least one array or dtype is required")
    r = ds[0]
    for d in ds[1:]:
        r = _core.promote(r, d)
    for s in scalars:
        r = _core.scalar_result(r, s)
    return r


class _Info:
    """What __array_namespace_info__() returns: the namespace's capabilities, devices and
    dtypes."""

    __module__ = "tensord.array_api"

    def capabilities(self):
        return {"boolean indexing": True, "data-dependent shapes": True,
                "max dimensions": 16}

    def default_device(self):
        return "cpu"

    def devices(self):
        return ["cpu"]

    def default_dtypes(self, *, device=None):
        _core.check_device(device, "default_dtypes")
        return {"real floating": _core.DEFAULT_FLOAT, "complex floating": _core.DEFAULT_COMPLEX,
                "integral": _core.DEFAULT_INT, "indexing": _core.DEFAULT_INDEX}

    def dtypes(self, *, device=None, kind=None):
        _core.check_device(device, "dtypes")
        out = {}
        for d in _core.DTYPES:
            if kind is None or isdtype(d, kind):
                out[d.name] = d
        return out


def __array_namespace_info__():
    return _Info()
