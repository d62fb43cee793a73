"""tensord.array_api.linalg: the standard's linear algebra extension, computed in the daemon
(LAPACK ops; norms, pinv, rank, powers and contractions use the daemon's ops when it
publishes them, else compositions of matmul, svd and reductions)."""
import builtins
import collections
import math
import operator

from ..tensor import Tensor
from . import _core
from ._core import run, cast
from ._ops import matmul, matrix_transpose, tensordot, vecdot

__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
           "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv",
           "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
           "vector_norm"]

EighResult = collections.namedtuple("EighResult", "eigenvalues eigenvectors")
QRResult = collections.namedtuple("QRResult", "Q R")
SlogdetResult = collections.namedtuple("SlogdetResult", "sign logabsdet")
SVDResult = collections.namedtuple("SVDResult", "U S Vh")


def _mat(x, fname, square=False, floating=True):
    _core.check_array(x, fname)
    if x.ndim < 2:
        raise ValueError("linalg.%s: x must have at least two dimensions, got %d"
                         % (fname, x.ndim))
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError("linalg.%s: x must be square, got %s" % (fname, tuple(x.shape)))
    if floating and x.dtype.kind not in "fc":
        raise TypeError("linalg.%s: x must have a floating-point dtype, got %s"
                        % (fname, x.dtype.name))
    return x


def _real_of(d):
    return {_core.complex64: _core.float32, _core.complex128: _core.float64}.get(d, d)


def cholesky(x, /, *, upper=False):
    _mat(x, "cholesky", square=True)
    return run("cholesky", x, upper=builtins.bool(upper))


def cross(x1, x2, /, *, axis=-1):
    """Cross product of 3-element vectors along axis (other dims broadcast)."""
    _core.check_array(x1, "linalg.cross", "x1")
    _core.check_array(x2, "linalg.cross", "x2")
    x1, x2 = _core.binary_operands("linalg.cross", x1, x2)
    a = operator.index(axis)
    if not (-x1.ndim <= a < x1.ndim and -x2.ndim <= a < x2.ndim):
        raise ValueError("linalg.cross: axis %d is out of bounds" % a)
    a1 = a if a < 0 else a - x1.ndim
    a2 = a if a < 0 else a - x2.ndim
    if x1.shape[a1] != 3 or x2.shape[a2] != 3:
        raise ValueError("linalg.cross: the axis must have size 3 in both arrays")
    x1, x2 = _core_broadcast(x1, x2)
    ax = a1 + x1.ndim
    if _core.has_op("cross", x1, ("dim",)):
        return run("cross", x1, x2, dim=ax)

    def c(t, i):
        return run("select", t, dim=ax, index=i)
    parts = []
    for i, j in ((1, 2), (2, 0), (0, 1)):
        parts.append(run("sub", run("mul", c(x1, i), c(x2, j)), run("mul", c(x1, j), c(x2, i))))
    return run("stack", *parts, dim=ax)


def _core_broadcast(x1, x2):
    from ._ops import broadcast_arrays
    return broadcast_arrays(x1, x2)


def det(x, /):
    _mat(x, "det", square=True)
    return run("det", x)


def _diag_index(m, n, offset):
    import numpy as np
    if offset >= 0:
        k = builtins.max(0, builtins.min(m, n - offset))
        i = np.arange(k)
        return i * n + i + offset
    k = builtins.max(0, builtins.min(m + offset, n))
    i = np.arange(k)
    return (i - offset) * n + i


def diagonal(x, /, *, offset=0):
    """The offset-th diagonal of the matrices in the last two dims."""
    _mat(x, "diagonal", floating=False)
    offset = operator.index(offset)
    if _core.has_op("diagonal", x, ("offset", "dim1", "dim2")):
        return run("diagonal", x, offset=offset, dim1=-2, dim2=-1)
    m, n = x.shape[-2], x.shape[-1]
    from ._creation import asarray
    idx = asarray(_diag_index(m, n, offset).astype("int64"))
    flat = _core.reshape(x, list(x.shape[:-2]) + [m * n])
    return run("index_select", flat, idx, dim=x.ndim - 2)


def eigh(x, /):
    _mat(x, "eigh", square=True)
    w, v = run("eigh", x)
    return EighResult(w, v)


def eigvalsh(x, /):
    _mat(x, "eigvalsh", square=True)
    return run("eigvalsh", x)


def inv(x, /):
    _mat(x, "inv", square=True)
    return run("inv", x)


def _sum_abs(x, axis):
    return run("sum", run("abs", x), dim=[axis])


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002 - the standard's name
    """Norm of the matrices in the last two dims: 'fro', 'nuc', 1, -1, 2, -2, inf, -inf."""
    _mat(x, "matrix_norm")
    inf = math.inf
    if ord not in ("fro", "nuc", 1, -1, 2, -2, inf, -inf):
        raise ValueError("linalg.matrix_norm: unsupported ord %r" % (ord,))
    if ord == "fro":
        a = run("abs", x)
        r = run("sqrt", run("sum", run("mul", a, a), dim=[-2, -1]))
    elif ord in ("nuc", 2, -2):
        s = run("svdvals", x)
        r = run("sum", s, dim=[-1]) if ord == "nuc" else \
            run("amax" if ord == 2 else "amin", s, dim=[-1])
    elif ord in (1, -1):
        r = run("amax" if ord == 1 else "amin", _sum_abs(x, -2), dim=[-1])
    else:
        r = run("amax" if ord == inf else "amin", _sum_abs(x, -1), dim=[-1])
    r = cast(r, _real_of(x.dtype))
    if keepdims:
        r = _core.reshape(r, list(x.shape[:-2]) + [1, 1])
    return r


def matrix_power(x, n, /):
    """x raised to the integer power n (n < 0 inverts first; n = 0 gives identities)."""
    _mat(x, "matrix_power", square=True, floating=False)
    n = operator.index(n)
    if _core.has_op("matrix_power", x, ("n",)):
        return run("matrix_power", x, n=n)
    if n == 0:
        eye = run("eye", n=x.shape[-1], m=x.shape[-1], dtype=x.dtype)
        return run("contiguous", run("expand", eye, shape=list(x.shape)))
    base = x if n > 0 else inv(x)
    n = builtins.abs(n)
    result = None
    while True:
        if n & 1:
            result = base if result is None else run("matmul", result, base)
        n >>= 1
        if not n:
            break
        base = run("matmul", base, base)
    return result if result is not x else run("clone", x)


def _default_rtol(x):
    eps = {_core.float32: 1.1920928955078125e-07,
           _core.float64: 2.220446049250313e-16}[_real_of(x.dtype)]
    return builtins.max(x.shape[-2], x.shape[-1]) * eps


def _tol(s, x, rtol):
    """rtol * largest singular value, per matrix, shaped [..., 1]."""
    smax = run("amax", s, dim=[-1], keepdim=True)
    if rtol is None:
        rtol = _default_rtol(x)
    if isinstance(rtol, Tensor):
        rtol = run("unsqueeze", cast(rtol, s.dtype), dim=-1)
    return run("mul", smax, rtol)


def matrix_rank(x, /, *, rtol=None):
    _mat(x, "matrix_rank")
    if _core.has_op("matrix_rank", x, ("rtol",)) and not isinstance(rtol, Tensor):
        return cast(run("matrix_rank", x, rtol=rtol), _core.DEFAULT_INDEX)
    if 0 in x.shape[-2:]:
        return run("zeros", shape=list(x.shape[:-2]), dtype=_core.DEFAULT_INDEX)
    s = run("svdvals", x)
    return run("sum", run("gt", s, _tol(s, x, rtol)), dim=[-1], dtype=_core.DEFAULT_INDEX)


def outer(x1, x2, /):
    _core.check_array(x1, "linalg.outer", "x1")
    _core.check_array(x2, "linalg.outer", "x2")
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError("linalg.outer: x1 and x2 must be 1-D")
    x1, x2 = _core.binary_operands("linalg.outer", x1, x2)
    if _core.has_op("outer", x1):
        return run("outer", x1, x2)
    return run("mul", run("unsqueeze", x1, dim=1), run("unsqueeze", x2, dim=0))


def pinv(x, /, *, rtol=None):
    """Moore-Penrose pseudo-inverse from the SVD: singular values <= rtol * max(S) count as
    zero (default rtol: max(M, N) * eps)."""
    _mat(x, "pinv")
    if _core.has_op("pinv", x, ("rtol",)) and not isinstance(rtol, Tensor):
        return run("pinv", x, rtol=rtol)
    u, s, vh = run("svd", x, full_matrices=False)
    keep = run("gt", s, _tol(s, x, rtol))
    sinv = run("where", keep, run("div", 1, run("where", keep, s, 1)), 0)
    sinv = cast(sinv, x.dtype)
    uh = run("conj", run("transpose", u, dim0=-2, dim1=-1))
    v = run("conj", run("transpose", vh, dim0=-2, dim1=-1))
    return run("matmul", v, run("mul", run("unsqueeze", sinv, dim=-1), uh))


def qr(x, /, *, mode="reduced"):
    _mat(x, "qr")
    if mode not in ("reduced", "complete"):
        raise ValueError("linalg.qr: mode must be 'reduced' or 'complete', got %r" % (mode,))
    q, r = run("qr", x, mode=mode)
    return QRResult(q, r)


def slogdet(x, /):
    _mat(x, "slogdet", square=True)
    s, ld = run("slogdet", x)
    return SlogdetResult(s, ld)


def solve(x1, x2, /):
    """X with x1 X = x2; x2 is a vector only when 1-D, else a stack of matrices (batch
    dims broadcast)."""
    _mat(x1, "solve", square=True)
    _core.check_array(x2, "linalg.solve", "x2")
    x1, x2 = _core.binary_operands("linalg.solve", x1, x2)
    if x2.ndim == 1:
        b = run("unsqueeze", x2, dim=-1)
        batch = list(x1.shape[:-2])
        if batch:
            b = run("expand", b, shape=batch + list(b.shape))
        return run("squeeze", run("solve", x1, b), dim=[-1])
    from ._ops import _bshape
    batch = _bshape([list(x1.shape[:-2]), list(x2.shape[:-2])])
    a = x1 if list(x1.shape[:-2]) == batch else \
        run("expand", x1, shape=batch + list(x1.shape[-2:]))
    b = x2 if list(x2.shape[:-2]) == batch else \
        run("expand", x2, shape=batch + list(x2.shape[-2:]))
    return run("solve", a, b)


def svd(x, /, *, full_matrices=True):
    _mat(x, "svd")
    u, s, vh = run("svd", x, full_matrices=builtins.bool(full_matrices))
    return SVDResult(u, s, vh)


def svdvals(x, /):
    _mat(x, "svdvals")
    return run("svdvals", x)


def trace(x, /, *, offset=0, dtype=None):
    """Sum along the offset-th diagonal; integer input sums in int64."""
    _mat(x, "trace", floating=False)
    d = _core.to_dtype(dtype)
    if d is None:
        d = _core.DEFAULT_INT if x.dtype.kind in "biu" else x.dtype
    dg = diagonal(x, offset=offset)
    if dg.shape[-1] == 0:
        return run("zeros", shape=list(x.shape[:-2]), dtype=d)
    src = dg if dg.dtype.kind in "biu" or dg.dtype is d else cast(dg, d)
    return run("sum", src, dim=[-1], dtype=d)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    """p-norm over axis (None: all elements): ord inf, -inf, 0 (count of non-zeros), or any
    non-zero real p. The result is real floating."""
    _core.check_array(x, "linalg.vector_norm")
    axes = _core.norm_axis(axis, x.ndim, "linalg.vector_norm")
    dims = None if axes is None else list(axes)
    if x.dtype.kind in "biu":
        x = cast(x, _core.DEFAULT_FLOAT)
    rd = _real_of(x.dtype)
    a = run("abs", x)
    if axes == ():
        r = cast(a, rd) if ord != 0 else cast(run("ne", a, 0), rd)
        return r
    inf = math.inf
    if ord == inf:
        r = run("amax", a, dim=dims, keepdim=builtins.bool(keepdims))
    elif ord == -inf:
        r = run("amin", a, dim=dims, keepdim=builtins.bool(keepdims))
    elif ord == 0:
        r = run("sum", run("ne", a, 0), dim=dims, keepdim=builtins.bool(keepdims), dtype=rd)
    elif ord == 1:
        r = run("sum", a, dim=dims, keepdim=builtins.bool(keepdims))
    elif ord == 2:
        # Scaled by the largest magnitude: no overflow for large entries.
        m = run("amax", a, dim=dims, keepdim=True)
        ms = run("where", run("eq", m, 0), 1, m)
        q = run("div", a, ms)
        r = run("mul", run("sqrt", run("sum", run("mul", q, q), dim=dims, keepdim=True)), m)
        r = run("where", run("isinf", m), inf, r)
        if not keepdims:
            r = run("squeeze", r, dim=list(range(x.ndim)) if dims is None else dims)
    else:
        p = float(ord)
        r = run("pow", run("sum", run("pow", a, p), dim=dims, keepdim=builtins.bool(keepdims)),
                1.0 / p)
    r = cast(r, rd)
    if keepdims and axes is None and r.ndim != x.ndim:
        r = _core.reshape(r, [1] * x.ndim)
    return r
