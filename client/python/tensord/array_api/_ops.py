"""Indexing, manipulation, searching, set, sorting, statistical and utility functions, and
the top-level linear algebra functions of the standard."""
import builtins
import collections
import operator

import numpy as np

from ..tensor import Tensor
from . import _core
from ._core import run, cast

__all__ = [
    "take", "take_along_axis",
    "broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip", "moveaxis",
    "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack", "tile", "unstack",
    "argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where",
    "unique_all", "unique_counts", "unique_inverse", "unique_values",
    "argsort", "sort",
    "cumulative_prod", "cumulative_sum", "max", "mean", "min", "prod", "std", "sum", "var",
    "all", "any", "diff",
    "matmul", "matrix_transpose", "tensordot", "vecdot",
]

UniqueAllResult = collections.namedtuple("UniqueAllResult",
                                         "values indices inverse_indices counts")
UniqueCountsResult = collections.namedtuple("UniqueCountsResult", "values counts")
UniqueInverseResult = collections.namedtuple("UniqueInverseResult", "values inverse_indices")


def _arr(x, fname, argname="x"):
    return _core.check_array(x, fname, argname)


def _idx(indices, n):
    """Integer indices with negatives counted from the end (as int64)."""
    ind = cast(indices, _core.int64)
    return run("where", run("lt", ind, 0), run("add", ind, n), ind)


# ---- indexing ------------------------------------------------------------------------
def take(x, indices, /, *, axis=None):
    """Elements of x at the 1-D integer indices along axis (optional for 1-D x)."""
    _arr(x, "take")
    _arr(indices, "take", "indices")
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError("take: indices must be a 1-D integer array")
    if axis is None:
        if x.ndim != 1:
            raise ValueError("take: axis is required for arrays of more than one dimension")
        axis = 0
    a = _core.norm_one_axis(axis, x.ndim, "take")
    return run("index_select", x, _idx(indices, x.shape[a]), dim=a)


def take_along_axis(x, indices, /, *, axis=-1):
    """Elements of x at integer indices of x's rank along axis (other dims broadcast)."""
    _arr(x, "take_along_axis")
    _arr(indices, "take_along_axis", "indices")
    if indices.ndim != x.ndim:
        raise ValueError("take_along_axis: x and indices must have the same rank")
    a = _core.norm_one_axis(axis, x.ndim, "take_along_axis")
    xs, ishape = list(x.shape), list(indices.shape)
    bshape = [builtins.max(p, q) if i != a else None for i, (p, q) in
              enumerate(zip(xs, ishape))]
    xb = list(bshape)
    xb[a] = xs[a]
    ib = list(bshape)
    ib[a] = ishape[a]
    xt = run("broadcast_to", x, shape=xb) if xb != xs else x
    it = run("broadcast_to", indices, shape=ib) if ib != ishape else indices
    return run("gather", xt, _idx(it, xs[a]), dim=a)


# ---- manipulation --------------------------------------------------------------------
def _bshape(shapes):
    nd = builtins.max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        for i, v in enumerate(s):
            j = nd - len(s) + i
            if out[j] == 1:
                out[j] = v
            elif v != 1 and v != out[j]:
                raise ValueError("broadcast: shapes %s cannot be broadcast together"
                                 % ", ".join(str(tuple(t)) for t in shapes))
    return out


def broadcast_arrays(*arrays):
    for a in arrays:
        _arr(a, "broadcast_arrays", "arrays")
    shape = _bshape([list(a.shape) for a in arrays])
    return tuple(a if list(a.shape) == shape else run("broadcast_to", a, shape=shape)
                 for a in arrays)


def broadcast_to(x, /, shape):
    _arr(x, "broadcast_to")
    return run("broadcast_to", x, shape=[operator.index(s) for s in shape])


def _common(arrays, fname):
    arrays = list(arrays)
    if not arrays:
        raise ValueError("%s: needs at least one array" % fname)
    for a in arrays:
        _arr(a, fname, "arrays")
    d = arrays[0].dtype
    for a in arrays[1:]:
        d = _core.promote(d, a.dtype)
    return [cast(a, d) for a in arrays]


def concat(arrays, /, *, axis=0):
    arrays = _common(arrays, "concat")
    if axis is None:
        arrays = [_core.reshape(a, [-1]) for a in arrays]
        axis = 0
    else:
        axis = _core.norm_one_axis(axis, arrays[0].ndim, "concat")
    return run("cat", *arrays, dim=axis)


def expand_dims(x, /, *, axis=0):
    _arr(x, "expand_dims")
    n = x.ndim
    a = operator.index(axis)
    if not -n - 1 <= a <= n:
        raise IndexError("expand_dims: axis %d is out of bounds for result dimension %d"
                         % (a, n + 1))
    if a < 0:
        a += n + 1
    return run("unsqueeze", x, dim=a)


def flip(x, /, *, axis=None):
    _arr(x, "flip")
    axes = _core.norm_axis(axis, x.ndim, "flip")
    if axes is None:
        axes = tuple(range(x.ndim))
    if not axes:
        return run("clone", x)
    return run("flip", x, dims=list(axes))


def permute_dims(x, /, axes):
    _arr(x, "permute_dims")
    axes = [operator.index(a) for a in axes]
    if sorted(a % builtins.max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError("permute_dims: axes %s is not a permutation of %d dims"
                         % (axes, x.ndim))
    return run("permute", x, dims=axes)


def moveaxis(x, source, destination, /):
    _arr(x, "moveaxis")
    n = x.ndim
    src = source if isinstance(source, (tuple, list)) else (source,)
    dst = destination if isinstance(destination, (tuple, list)) else (destination,)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    src = [_core.norm_one_axis(s, n, "moveaxis") for s in src]
    dst = [_core.norm_one_axis(s, n, "moveaxis") for s in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError("moveaxis: repeated axis")
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return run("permute", x, dims=order)


def repeat(x, repeats, /, *, axis=None):
    """Each element repeated `repeats` times (an int, or a 1-D integer array with one count
    per element along axis; its values are read, the result's shape depends on them)."""
    _arr(x, "repeat")
    if axis is None:
        x = _core.reshape(x, [-1])
        axis = 0
    a = _core.norm_one_axis(axis, x.ndim, "repeat")
    n = x.shape[a]
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1 or repeats.dtype.kind not in "iu":
            raise ValueError("repeat: repeats must be an int or a 1-D integer array")
        reps = repeats.numpy().astype(np.int64).reshape(-1)
    else:
        reps = np.array([operator.index(repeats)], np.int64)
    if (reps < 0).any():
        raise ValueError("repeat: repeats must be non-negative")
    if reps.size == 1 and not isinstance(repeats, Tensor) or reps.size == 1 and n != 1:
        r = int(reps[0])
        shp = list(x.shape)
        t = run("unsqueeze", x, dim=a + 1)
        big = shp[:a + 1] + [r] + shp[a + 1:]
        t = run("expand", t, shape=big)
        return _core.reshape(run("contiguous", t), shp[:a] + [n * r] + shp[a + 1:])
    if reps.size != n:
        raise ValueError("repeat: repeats has %d entries for an axis of size %d"
                         % (reps.size, n))
    idx = np.repeat(np.arange(n, dtype=np.int64), reps)
    from ._creation import asarray
    return run("index_select", x, asarray(idx), dim=a)


def reshape(x, /, shape, *, copy=None):  # noqa: F811 - the public name
    _arr(x, "reshape")
    shape = [operator.index(s) for s in shape]
    if copy is False:
        return run("view", x, shape=shape)
    t = run("reshape", x, shape=shape)
    return run("clone", t) if copy else t


def roll(x, /, shift, *, axis=None):
    _arr(x, "roll")
    shifts = list(shift) if isinstance(shift, (tuple, list)) else [shift]
    shifts = [operator.index(s) for s in shifts]
    if axis is None:
        if len(shifts) != 1:
            raise ValueError("roll: a tuple shift needs axis")
        return run("roll", x, shifts=shifts)
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    axes = [_core.norm_one_axis(a, x.ndim, "roll") for a in axes]
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise ValueError("roll: shift and axis must have the same length")
    return run("roll", x, shifts=shifts, dims=axes)


def squeeze(x, /, axis):
    _arr(x, "squeeze")
    axes = _core.norm_axis(axis, x.ndim, "squeeze", allow_none=False)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError("squeeze: axis %d has size %d, not 1" % (a, x.shape[a]))
    if not axes:
        return run("alias", x)
    return run("squeeze", x, dim=list(axes))


def stack(arrays, /, *, axis=0):
    arrays = _common(arrays, "stack")
    n = arrays[0].ndim
    a = operator.index(axis)
    if not -n - 1 <= a <= n:
        raise IndexError("stack: axis %d is out of bounds for result dimension %d"
                         % (a, n + 1))
    return run("stack", *arrays, dim=a + n + 1 if a < 0 else a)


def tile(x, repetitions, /):
    _arr(x, "tile")
    reps = [operator.index(r) for r in repetitions]
    shp = list(x.shape)
    nd = builtins.max(len(reps), len(shp))
    reps = [1] * (nd - len(reps)) + reps
    shp = [1] * (nd - len(shp)) + shp
    inter = []
    big = []
    for r, s in zip(reps, shp):
        inter += [1, s]
        big += [r, s]
    t = run("expand", _core.reshape(x, inter), shape=big)
    return _core.reshape(run("contiguous", t), [r * s for r, s in zip(reps, shp)])


def unstack(x, /, *, axis=0):
    _arr(x, "unstack")
    a = _core.norm_one_axis(axis, x.ndim, "unstack")
    return tuple(run("select", x, dim=a, index=i) for i in range(x.shape[a]))


# ---- searching -----------------------------------------------------------------------
def _arg(name, x, axis, keepdims):
    _arr(x, name)
    if x.dtype.kind == "c":
        raise TypeError("%s: x must be real-valued" % name)
    if axis is None:
        r = run(name, x)
        return _core.reshape(r, [1] * x.ndim) if keepdims else r
    a = _core.norm_one_axis(axis, x.ndim, name)
    return run(name, x, dim=a, keepdim=builtins.bool(keepdims))


def argmax(x, /, *, axis=None, keepdims=False):
    return _arg("argmax", x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _arg("argmin", x, axis, keepdims)


def count_nonzero(x, /, *, axis=None, keepdims=False):
    _arr(x, "count_nonzero")
    axes = _core.norm_axis(axis, x.ndim, "count_nonzero")
    if axes == ():
        return cast(run("ne", x, 0), _core.DEFAULT_INDEX)
    dims = None if axes is None else list(axes)
    if _core.has_op("count_nonzero", x, ("dim", "keepdim")):
        r = run("count_nonzero", x, dim=dims, keepdim=builtins.bool(keepdims))
        if keepdims and axes is None and r.ndim != x.ndim:
            r = _core.reshape(r, [1] * x.ndim)
        return cast(r, _core.DEFAULT_INDEX)
    r = run("sum", run("ne", x, 0), dim=dims, keepdim=builtins.bool(keepdims),
            dtype=_core.DEFAULT_INDEX)
    if keepdims and axes is None:
        r = _core.reshape(r, [1] * x.ndim)
    return r


def nonzero(x, /):
    """The indices of the non-zero elements, one int64 array per dimension (row-major
    order). The result's size depends on the data: it reads count_nonzero(x) first."""
    _arr(x, "nonzero")
    if x.ndim == 0:
        raise ValueError("nonzero: 0-d arrays are not supported (use expand_dims)")
    _core.need_op("nonzero", "nonzero", x)
    cnt = int(count_nonzero(x).item())
    out = run("nonzero", x, count=cnt)
    if isinstance(out, tuple):
        return out
    # One [count, ndim] array of coordinates.
    return tuple(run("select", out, dim=1, index=i) for i in range(x.ndim))


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    _arr(x1, "searchsorted", "x1")
    _arr(x2, "searchsorted", "x2")
    if x1.ndim != 1:
        raise ValueError("searchsorted: x1 must be 1-D")
    if side not in ("left", "right"):
        raise ValueError("searchsorted: side must be 'left' or 'right', got %r" % (side,))
    if sorter is not None:
        x1 = take(x1, sorter)
    x1, x2 = _core.binary_operands("searchsorted", x1, x2)
    _core.need_op("searchsorted", "searchsorted", x1)
    return cast(run("searchsorted", x1, x2, right=side == "right"), _core.DEFAULT_INDEX)


def where(condition, x1, x2, /):
    """x1 where condition is true, else x2; x1 or x2 may be a Python scalar."""
    _arr(condition, "where", "condition")
    x1, x2 = _core.binary_operands("where", x1, x2)
    return run("where", condition, x1, x2)


# ---- sets ----------------------------------------------------------------------------
def _unique(x, fname):
    _arr(x, fname)
    _core.need_op("unique", fname, x)
    cnt = int(run("unique_count", x).item())
    return run("unique", x, count=cnt)


def unique_all(x, /):
    v, i, inv, c = _unique(x, "unique_all")
    return UniqueAllResult(v, cast(i, _core.DEFAULT_INDEX),
                           _core.reshape(cast(inv, _core.DEFAULT_INDEX), list(x.shape)),
                           cast(c, _core.DEFAULT_INDEX))


def unique_counts(x, /):
    v, _, _, c = _unique(x, "unique_counts")
    return UniqueCountsResult(v, cast(c, _core.DEFAULT_INDEX))


def unique_inverse(x, /):
    v, _, inv, _ = _unique(x, "unique_inverse")
    inv = _core.reshape(cast(inv, _core.DEFAULT_INDEX), list(x.shape))
    return UniqueInverseResult(v, inv)


def unique_values(x, /):
    return _unique(x, "unique_values")[0]


# ---- sorting -------------------------------------------------------------------------
def argsort(x, /, *, axis=-1, descending=False, stable=True):
    _arr(x, "argsort")
    _core.need_op("argsort", "argsort", x)
    a = _core.norm_one_axis(axis, x.ndim, "argsort") if x.ndim else 0
    return cast(run("argsort", x, dim=a, descending=builtins.bool(descending),
                    stable=builtins.bool(stable)), _core.DEFAULT_INDEX)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    _arr(x, "sort")
    _core.need_op("sort", "sort", x)
    a = _core.norm_one_axis(axis, x.ndim, "sort") if x.ndim else 0
    r = run("sort", x, dim=a, descending=builtins.bool(descending),
            stable=builtins.bool(stable))
    return r[0] if isinstance(r, tuple) else r


# ---- statistics ----------------------------------------------------------------------
def _sum_dtype(x, dtype):
    if dtype is not None:
        return _core.to_dtype(dtype)
    if x.dtype.kind in "biu":
        # Signed, unsigned (the daemon has no uint64) and bool sum in the default int.
        return _core.DEFAULT_INT
    return x.dtype


def _reduce_axes(x, axis, fname):
    axes = _core.norm_axis(axis, x.ndim, fname)
    return axes


def _finish(r, x, axes, keepdims):
    if keepdims and axes is None and r.ndim != x.ndim:
        return _core.reshape(r, [1] * x.ndim)
    return r


def _sumlike(name, x, axis, dtype, keepdims):
    _arr(x, name)
    d = _sum_dtype(x, dtype)
    axes = _reduce_axes(x, axis, name)
    if axes == ():
        return cast(run("clone", x), d) if x.dtype is d else cast(x, d)
    src = x if x.dtype.kind in "biu" or x.dtype is d else cast(x, d)
    r = run(name, src, dim=None if axes is None else list(axes),
            keepdim=builtins.bool(keepdims), dtype=d)
    return _finish(r, x, axes, keepdims)


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    return _sumlike("sum", x, axis, dtype, keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    return _sumlike("prod", x, axis, dtype, keepdims)


def _minmax(fname, opname, x, axis, keepdims):
    _arr(x, fname)
    if x.dtype.kind == "c":
        raise TypeError("%s: x must be real-valued" % fname)
    axes = _reduce_axes(x, axis, fname)
    if axes == ():
        return run("clone", x)
    if 0 in [x.shape[a] for a in (axes if axes is not None else range(x.ndim))]:
        raise ValueError("%s: reduction over a zero-size axis has no identity" % fname)
    r = run(opname, x, dim=None if axes is None else list(axes),
            keepdim=builtins.bool(keepdims))
    return _finish(r, x, axes, keepdims)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _minmax("max", "amax", x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _minmax("min", "amin", x, axis, keepdims)


def _float_only(x, fname):
    _arr(x, fname)
    if x.dtype.kind not in "fc":
        raise TypeError("%s: x must have a floating-point dtype, got %s (use astype)"
                        % (fname, x.dtype.name))


def mean(x, /, *, axis=None, keepdims=False):
    _float_only(x, "mean")
    axes = _reduce_axes(x, axis, "mean")
    if axes == ():
        return run("clone", x)
    r = run("mean", x, dim=None if axes is None else list(axes),
            keepdim=builtins.bool(keepdims))
    return _finish(r, x, axes, keepdims)


def _varstd(name, x, axis, correction, keepdims):
    _float_only(x, name)
    axes = _reduce_axes(x, axis, name)
    dims = None if axes is None else list(axes)
    if axes == ():
        # Over no axes every element is its own mean.
        z = run("abs", run("sub", x, x))
        return run("div", z, run("sub", 1.0, float(correction)))
    r = run(name, x, dim=dims, correction=float(correction),
            keepdim=builtins.bool(keepdims))
    return _finish(r, x, axes, keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _varstd("var", x, axis, correction, keepdims)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _varstd("std", x, axis, correction, keepdims)


def _cumulative(fname, opname, x, axis, dtype, include_initial):
    _arr(x, fname)
    if axis is None:
        if x.ndim > 1:
            raise ValueError("%s: axis is required for arrays of more than one dimension"
                             % fname)
        if x.ndim == 0:
            raise ValueError("%s: x must have at least one dimension" % fname)
        axis = 0
    a = _core.norm_one_axis(axis, x.ndim, fname)
    d = _sum_dtype(x, dtype)
    src = x if x.dtype.kind in "biu" or x.dtype is d else cast(x, d)
    r = run(opname, src, dim=a, dtype=d)
    if include_initial:
        shp = list(x.shape)
        shp[a] = 1
        init = run("zeros" if opname == "cumsum" else "ones", shape=shp, dtype=d)
        r = run("cat", init, r, dim=a)
    return r


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative("cumulative_sum", "cumsum", x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative("cumulative_prod", "cumprod", x, axis, dtype, include_initial)


# ---- utility -------------------------------------------------------------------------
def _allany(name, x, axis, keepdims):
    _arr(x, name)
    axes = _reduce_axes(x, axis, name)
    if axes == ():
        return cast(x, _core.bool) if x.dtype is not _core.bool else run("clone", x)
    r = run(name, x, dim=None if axes is None else list(axes),
            keepdim=builtins.bool(keepdims))
    return _finish(r, x, axes, keepdims)


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _allany("all", x, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _allany("any", x, axis, keepdims)


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """n-th forward difference along axis (not-equal for bool), after prepend/append."""
    _arr(x, "diff")
    if x.ndim == 0:
        raise ValueError("diff: x must have at least one dimension")
    a = _core.norm_one_axis(axis, x.ndim, "diff")
    n = operator.index(n)
    if n < 0:
        raise ValueError("diff: n must be non-negative")
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = concat(parts, axis=a)
    for _ in range(n):
        m = x.shape[a]
        if m == 0:
            break
        hi = run("slice", x, dim=a, start=1)
        lo = run("slice", x, dim=a, end=m - 1)
        x = run("ne", hi, lo) if x.dtype.kind == "b" else run("sub", hi, lo)
    return x


# ---- linear algebra (top level) ------------------------------------------------------
def matmul(x1, x2, /):
    _arr(x1, "matmul", "x1")
    _arr(x2, "matmul", "x2")
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("matmul: 0-d arrays are not allowed")
    x1, x2 = _core.binary_operands("matmul", x1, x2)
    return run("matmul", x1, x2)


def matrix_transpose(x, /):
    _arr(x, "matrix_transpose")
    if x.ndim < 2:
        raise ValueError("matrix_transpose: x must have at least two dimensions")
    return run("transpose", x, dim0=-2, dim1=-1)


def tensordot(x1, x2, /, *, axes=2):
    """Sum of products over axes: an int N (last N of x1 with first N of x2) or two
    sequences of axes."""
    _arr(x1, "tensordot", "x1")
    _arr(x2, "tensordot", "x2")
    x1, x2 = _core.binary_operands("tensordot", x1, x2)
    if isinstance(axes, (tuple, list)):
        if len(axes) != 2:
            raise ValueError("tensordot: axes must be an int or a pair of sequences")
        a1 = [_core.norm_one_axis(a, x1.ndim, "tensordot") for a in axes[0]]
        a2 = [_core.norm_one_axis(a, x2.ndim, "tensordot") for a in axes[1]]
    else:
        k = operator.index(axes)
        if k < 0 or k > x1.ndim or k > x2.ndim:
            raise ValueError("tensordot: axes=%d is out of range" % k)
        a1 = list(range(x1.ndim - k, x1.ndim))
        a2 = list(range(k))
    if len(a1) != len(a2):
        raise ValueError("tensordot: the two axes sequences must have the same length")
    s1, s2 = list(x1.shape), list(x2.shape)
    for p, q in zip(a1, a2):
        if s1[p] != s2[q]:
            raise ValueError("tensordot: contracted axes have sizes %d and %d"
                             % (s1[p], s2[q]))
    free1 = [i for i in range(x1.ndim) if i not in a1]
    free2 = [i for i in range(x2.ndim) if i not in a2]
    k = 1
    for p in a1:
        k *= s1[p]
    m = 1
    for p in free1:
        m *= s1[p]
    n = 1
    for q in free2:
        n *= s2[q]
    t1 = _core.reshape(run("permute", x1, dims=free1 + a1), [m, k])
    t2 = _core.reshape(run("permute", x2, dims=a2 + free2), [k, n])
    out_shape = [s1[i] for i in free1] + [s2[i] for i in free2]
    return _core.reshape(run("matmul", t1, t2), out_shape)


def vecdot(x1, x2, /, *, axis=-1):
    """sum(conj(x1) * x2) along axis, after broadcasting."""
    _arr(x1, "vecdot", "x1")
    _arr(x2, "vecdot", "x2")
    x1, x2 = _core.binary_operands("vecdot", x1, x2)
    nd = len(_bshape([list(x1.shape), list(x2.shape)]))
    axis = operator.index(axis)
    if not -nd <= axis < nd:
        raise ValueError("vecdot: axis %d is out of bounds for %d dimensions" % (axis, nd))
    if axis >= 0:
        axis -= nd
    if axis < -x1.ndim or axis < -x2.ndim or x1.shape[axis] != x2.shape[axis]:
        raise ValueError("vecdot: x1 and x2 must have the same size along axis %d" % axis)
    if _core.has_op("vecdot", x1, ("dim",)):
        return run("vecdot", x1, x2, dim=axis)
    p = run("mul", run("conj", x1), x2)
    return run("sum", p, dim=[axis], dtype=p.dtype if p.dtype.kind in "fc" else None)
