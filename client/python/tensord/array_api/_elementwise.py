"""Element-wise functions of the standard. Binary functions accept a Python scalar for one
operand (weak: the array's dtype wins within its kind) and convert two arrays to the
standard's promoted dtype before the daemon's op runs."""
from ..tensor import Tensor
from . import _core
from ._core import run

_UNARY = {
    "abs": "abs", "acos": "acos", "acosh": "acosh", "asin": "asin", "asinh": "asinh",
    "atan": "atan", "atanh": "atanh", "bitwise_invert": "bitwise_not", "ceil": "ceil",
    "conj": "conj", "cos": "cos", "cosh": "cosh", "exp": "exp", "expm1": "expm1",
    "floor": "floor", "isfinite": "isfinite", "isinf": "isinf", "isnan": "isnan",
    "log": "log", "log1p": "log1p", "log2": "log2", "log10": "log10",
    "logical_not": "logical_not", "negative": "neg", "real": "real", "sin": "sin",
    "sinh": "sinh", "sqrt": "sqrt", "tan": "tan", "tanh": "tanh", "trunc": "trunc",
}

_BINARY = {
    "add": "add", "atan2": "atan2", "bitwise_and": "bitwise_and",
    "bitwise_left_shift": "bitwise_left_shift", "bitwise_or": "bitwise_or",
    "bitwise_right_shift": "bitwise_right_shift", "bitwise_xor": "bitwise_xor",
    "divide": "div", "equal": "eq", "floor_divide": "floor_divide", "greater": "gt",
    "greater_equal": "ge", "less": "lt", "less_equal": "le", "logical_and": "logical_and",
    "logical_or": "logical_or", "logical_xor": "logical_xor", "maximum": "maximum",
    "minimum": "minimum", "multiply": "mul", "not_equal": "ne", "pow": "pow",
    "remainder": "remainder", "subtract": "sub",
}

__all__ = sorted(list(_UNARY) + list(_BINARY) + [
    "clip", "copysign", "hypot", "imag", "logaddexp", "nextafter", "positive", "reciprocal",
    "round", "sign", "signbit", "square"])


def _make_unary(fname, opname):
    def f(x, /):
        _core.check_array(x, fname)
        return run(opname, x)
    f.__name__ = f.__qualname__ = fname
    f.__doc__ = "Element-wise %s (daemon op %s)." % (fname, opname)
    return f


def _make_binary(fname, opname):
    def f(x1, x2, /):
        x1, x2 = _core.binary_operands(fname, x1, x2)
        return run(opname, x1, x2)
    f.__name__ = f.__qualname__ = fname
    f.__doc__ = "Element-wise %s (daemon op %s); x1 or x2 may be a Python scalar." % (
        fname, opname)
    return f


for _n, _o in _UNARY.items():
    globals()[_n] = _make_unary(_n, _o)
for _n, _o in _BINARY.items():
    globals()[_n] = _make_binary(_n, _o)
del _n, _o


def imag(x, /):
    _core.check_array(x, "imag")
    if x.dtype.kind != "c":
        raise TypeError("imag: x must have a complex dtype, got %s" % x.dtype.name)
    return run("imag", x)


def positive(x, /):
    _core.check_array(x, "positive")
    return run("alias", x)


def reciprocal(x, /):
    _core.check_array(x, "reciprocal")
    return run("div", 1, x)


def square(x, /):
    _core.check_array(x, "square")
    return run("mul", x, x)


def sign(x, /):
    """-1, 0 or 1 for real x; x / |x| (0 at 0) for complex x."""
    _core.check_array(x, "sign")
    return run("sign", x)


def round(x, /):  # noqa: A001 - the standard's name
    """Round half to even; complex x rounds its real and imaginary parts."""
    _core.check_array(x, "round")
    if x.dtype.kind != "c":
        return run("round", x)
    re = run("cast", run("round", run("real", x)), dtype=x.dtype)
    im = run("cast", run("round", run("imag", x)), dtype=x.dtype)
    return run("add", re, run("mul", im, 1j))


def _signbit_fallback(x):
    # Without the daemon's signbit op: x < 0, and 1/x < 0 for zeros (a NaN's sign bit is
    # not visible this way).
    if x.dtype.kind not in "f":
        return run("lt", x, 0)
    return run("where", run("eq", x, 0), run("lt", run("div", 1, x), 0), run("lt", x, 0))


def signbit(x, /):
    _core.check_array(x, "signbit")
    if _core.has_op("signbit", x):
        return run("signbit", x)
    return _signbit_fallback(x)


def copysign(x1, x2, /):
    x1, x2 = _core.binary_operands("copysign", x1, x2)
    if _core.has_op("copysign", x1 if isinstance(x1, Tensor) else x2):
        return run("copysign", x1, x2)
    if not isinstance(x1, Tensor):
        x1 = run("full_like", x2, fill_value=x1)
    if not isinstance(x2, Tensor):
        x2 = run("full_like", x1, fill_value=x2)
    mag = run("abs", x1)
    return run("where", _signbit_fallback(x2), run("neg", mag), mag)


def hypot(x1, x2, /):
    """sqrt(x1^2 + x2^2) without undue overflow; inf when either is infinite."""
    x1, x2 = _core.binary_operands("hypot", x1, x2)
    if _core.has_op("hypot", x1 if isinstance(x1, Tensor) else x2):
        return run("hypot", x1, x2)
    a, b = run("abs", x1), run("abs", x2)
    hi, lo = run("maximum", a, b), run("minimum", a, b)
    safe = run("where", run("eq", hi, 0), 1, hi)
    r = run("mul", hi, run("sqrt", run("add", 1, run("mul", run("div", lo, safe),
                                                        run("div", lo, safe)))))
    inf = run("logical_or", run("isinf", a), run("isinf", b))
    return run("where", inf, float("inf"), r)


def logaddexp(x1, x2, /):
    """log(exp(x1) + exp(x2)) computed stably."""
    x1, x2 = _core.binary_operands("logaddexp", x1, x2)
    if _core.has_op("logaddexp", x1 if isinstance(x1, Tensor) else x2):
        return run("logaddexp", x1, x2)
    m = run("maximum", x1, x2)
    d = run("abs", run("sub", x1, x2))
    r = run("add", m, run("log1p", run("exp", run("neg", d))))
    # Equal infinities: x1 - x2 is NaN, the answer is that infinity.
    return run("where", run("logical_and", run("isinf", m), run("eq", x1, x2)), m, r)


def nextafter(x1, x2, /):
    x1, x2 = _core.binary_operands("nextafter", x1, x2)
    _core.need_op("nextafter", "nextafter", x1 if isinstance(x1, Tensor) else x2)
    return run("nextafter", x1, x2)


def clip(x, /, min=None, max=None):  # noqa: A002 - the standard's names
    """x limited to [min, max]; min and max are Python scalars or arrays (broadcast to x).
    The result has x's dtype."""
    _core.check_array(x, "clip")
    if min is None and max is None:
        return run("clone", x)
    if not isinstance(min, Tensor) and not isinstance(max, Tensor):
        if x.dtype.kind == "b":
            raise TypeError("clip: x must have a numeric dtype")
        return run("clamp", x, min=min, max=max)
    out = x
    if min is not None:
        out = run("maximum", out, _core.cast(min, x.dtype) if isinstance(min, Tensor) else min)
    if max is not None:
        out = run("minimum", out, _core.cast(max, x.dtype) if isinstance(max, Tensor) else max)
    out = _core.cast(out, x.dtype)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError("clip: min/max of shape must broadcast to x's shape %s"
                         % (tuple(x.shape),))
    return out
