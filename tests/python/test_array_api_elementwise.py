"""tensord.array_api element-wise functions: every function against NumPy 2 (which implements
the standard's names) on grids that include the special values (+-0, +-inf, NaN, +-1, halves),
plus the special-case lists of the standard's text written out by hand (signed zeros,
pow/atan2/floor_divide/remainder cases, division by zero, complex exp/log/sqrt cases)."""
import itertools
import math
import warnings

import numpy as np
import pytest

import tensord.array_api as xp

pytestmark = pytest.mark.timeout(300)

INF, NAN = math.inf, math.nan
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.0, -3.0, 0.25, 7.0,
           -7.5, 1e-310, 1e300, -1e300, INF, -INF, NAN]

UNARY_F = ["abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh",
           "exp", "expm1", "floor", "isfinite", "isinf", "isnan", "log", "log1p", "log2",
           "log10", "negative", "positive", "reciprocal", "round", "sign", "signbit", "sin",
           "sinh", "square", "sqrt", "tan", "tanh", "trunc"]
BINARY_F = ["add", "atan2", "copysign", "divide", "equal", "floor_divide", "greater",
            "greater_equal", "hypot", "less", "less_equal", "logaddexp", "maximum", "minimum",
            "multiply", "nextafter", "not_equal", "pow", "remainder", "subtract"]
RTOL = {np.float32: 4e-6, np.float64: 2e-14}


def grid(dtype):
    with np.errstate(over="ignore"):        # 1e300 is inf in float32
        return np.array(SPECIAL, dtype=dtype)


def ref(name):
    return getattr(np, name)


def same_values(got, want, rtol, what):
    """Equal up to rtol, NaN where NaN, and exact sign of every zero and infinity."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, what
    if want.dtype.kind == "b":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    if want.dtype.kind == "c":
        same_values(got.real, want.real, rtol, what + " (real)")
        same_values(got.imag, want.imag, rtol, what + " (imag)")
        return
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=what + ": NaNs")
    exact = (w == 0) | np.isinf(w)
    np.testing.assert_array_equal(g[exact], w[exact], err_msg=what + ": zeros/infinities")
    np.testing.assert_array_equal(np.signbit(g[exact]), np.signbit(w[exact]),
                                  err_msg=what + ": sign of zeros")
    ok = ~np.isnan(w) & ~exact
    np.testing.assert_allclose(g[ok], w[ok], rtol=rtol, atol=0, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", UNARY_F)
def test_unary_float_against_numpy(name, dtype):
    v = grid(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(name)(v)
    got = getattr(xp, name)(xp.asarray(v))
    assert got.dtype.name == want.dtype.name
    same_values(got.numpy(), want, RTOL[dtype], "%s(%s)" % (name, dtype.__name__))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BINARY_F)
def test_binary_float_against_numpy(name, dtype):
    a, b = np.meshgrid(grid(dtype), grid(dtype), indexing="ij")
    a, b = a.ravel(), b.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(name)(a, b)
    got = getattr(xp, name)(xp.asarray(a), xp.asarray(b))
    assert got.dtype.name == want.dtype.name
    if name in ("maximum", "minimum"):
        # The standard leaves the sign of max(+0, -0) unspecified.
        zero = (a == 0) & (b == 0)
        want = np.where(zero, 0.0, want).astype(want.dtype)
        got = np.where(zero, 0.0, got.numpy()).astype(want.dtype)
    else:
        got = got.numpy()
    same_values(got, want, RTOL[dtype], "%s(%s)" % (name, dtype.__name__))


CVALS = [complex(r, i) for r, i in itertools.product([0.0, -0.0, 1.5, -2.0, 0.5],
                                                     [0.0, -0.0, 1.0, -0.75])]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("name", ["abs", "conj", "cos", "cosh", "exp", "expm1", "log",
                                  "log1p", "negative", "real", "imag", "sin", "sinh", "sqrt",
                                  "square", "tan", "tanh", "acos", "asin", "atan", "asinh",
                                  "acosh", "atanh", "sign", "reciprocal"])
def test_unary_complex_against_numpy(name, dtype):
    v = np.array(CVALS, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(name)(v)
    got = getattr(xp, name)(xp.asarray(v))
    assert got.dtype.name == want.dtype.name
    rtol = 2e-5 if dtype == np.complex64 else 1e-12
    g = got.numpy()
    finite = np.isfinite(want)
    if name in ("log", "log1p", "reciprocal", "atanh"):
        # Poles (log(0), 1/0): compare the finite results only; the infinite ones below.
        assert np.array_equal(np.isfinite(g), finite), name
    np.testing.assert_allclose(g[finite], want[finite], rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow", "equal",
                                  "not_equal"])
def test_binary_complex_against_numpy(name):
    a, b = np.meshgrid(np.array(CVALS[4:], np.complex128), np.array(CVALS[5:], np.complex128))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(name)(a, b)
    got = getattr(xp, name)(xp.asarray(a), xp.asarray(b)).numpy()
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-12)


# ---- special cases from the standard's text, written out by hand ----------------------
def one(name, *args):
    arrs = [xp.asarray(np.array([a], np.float64)) for a in args]
    return getattr(xp, name)(*arrs).numpy()[0]


def is_(v, want):
    if isinstance(want, float) and math.isnan(want):
        return math.isnan(v)
    return v == want and math.copysign(1, v) == math.copysign(1, want)


HAND = [
    # sqrt
    ("sqrt", (-0.0,), -0.0), ("sqrt", (0.0,), 0.0), ("sqrt", (-1.0,), NAN),
    ("sqrt", (INF,), INF), ("sqrt", (NAN,), NAN),
    # pow
    ("pow", (NAN, 0.0), 1.0), ("pow", (NAN, -0.0), 1.0), ("pow", (1.0, NAN), 1.0),
    ("pow", (2.0, NAN), NAN), ("pow", (NAN, 1.0), NAN), ("pow", (0.5, INF), 0.0),
    ("pow", (2.0, INF), INF), ("pow", (2.0, -INF), 0.0), ("pow", (-1.0, INF), 1.0),
    ("pow", (0.0, -1.0), INF), ("pow", (-0.0, -3.0), -INF), ("pow", (-0.0, -2.0), INF),
    ("pow", (-0.0, 3.0), -0.0), ("pow", (-0.0, 2.0), 0.0), ("pow", (-INF, 3.0), -INF),
    ("pow", (-INF, 2.0), INF), ("pow", (-INF, -3.0), -0.0), ("pow", (-2.0, 0.5), NAN),
    # atan2 signed zeros and infinities
    ("atan2", (0.0, 0.0), 0.0), ("atan2", (0.0, -0.0), math.pi),
    ("atan2", (-0.0, 0.0), -0.0), ("atan2", (-0.0, -0.0), -math.pi),
    ("atan2", (0.0, -1.0), math.pi), ("atan2", (-0.0, -1.0), -math.pi),
    ("atan2", (1.0, 0.0), math.pi / 2), ("atan2", (-1.0, -0.0), -math.pi / 2),
    ("atan2", (INF, INF), math.pi / 4), ("atan2", (INF, -INF), 3 * math.pi / 4),
    ("atan2", (-INF, -INF), -3 * math.pi / 4), ("atan2", (1.0, INF), 0.0),
    ("atan2", (-1.0, INF), -0.0), ("atan2", (1.0, -INF), math.pi),
    ("atan2", (-1.0, -INF), -math.pi), ("atan2", (NAN, 1.0), NAN),
    # divide by zero
    ("divide", (1.0, 0.0), INF), ("divide", (1.0, -0.0), -INF), ("divide", (-1.0, 0.0), -INF),
    ("divide", (0.0, 0.0), NAN), ("divide", (INF, INF), NAN), ("divide", (1.0, INF), 0.0),
    ("divide", (-1.0, INF), -0.0), ("divide", (0.0, -1.0), -0.0),
    # floor_divide and remainder signs
    ("floor_divide", (7.0, 2.0), 3.0), ("floor_divide", (-7.0, 2.0), -4.0),
    ("floor_divide", (7.0, -2.0), -4.0), ("floor_divide", (-7.0, -2.0), 3.0),
    ("floor_divide", (1.0, 0.0), INF), ("floor_divide", (-1.0, 0.0), -INF),
    ("floor_divide", (NAN, 1.0), NAN),
    ("remainder", (7.0, 2.0), 1.0), ("remainder", (-7.0, 2.0), 1.0),
    ("remainder", (7.0, -2.0), -1.0), ("remainder", (-7.0, -2.0), -1.0),
    ("remainder", (1.0, 0.0), NAN), ("remainder", (INF, 2.0), NAN),
    ("remainder", (0.0, -2.0), -0.0), ("remainder", (-0.0, 2.0), 0.0),
    # exp/log family
    ("exp", (-INF,), 0.0), ("exp", (0.0,), 1.0), ("exp", (-0.0,), 1.0),
    ("expm1", (-0.0,), -0.0), ("expm1", (-INF,), -1.0), ("log", (0.0,), -INF),
    ("log", (-0.0,), -INF), ("log", (-1.0,), NAN), ("log", (1.0,), 0.0),
    ("log1p", (-1.0,), -INF), ("log1p", (-0.0,), -0.0), ("log1p", (-2.0,), NAN),
    ("log2", (0.0,), -INF), ("log10", (INF,), INF),
    # trigonometric and hyperbolic signed zeros
    ("sin", (-0.0,), -0.0), ("tan", (-0.0,), -0.0), ("asin", (-0.0,), -0.0),
    ("atan", (-0.0,), -0.0), ("atan", (INF,), math.pi / 2), ("sinh", (-0.0,), -0.0),
    ("tanh", (-0.0,), -0.0), ("tanh", (INF,), 1.0), ("tanh", (-INF,), -1.0),
    ("asinh", (-0.0,), -0.0), ("atanh", (-0.0,), -0.0), ("atanh", (1.0,), INF),
    ("atanh", (-1.0,), -INF), ("acosh", (1.0,), 0.0), ("acosh", (0.5,), NAN),
    ("cos", (INF,), NAN), ("cosh", (-INF,), INF), ("acos", (1.0,), 0.0),
    ("acos", (2.0,), NAN),
    # rounding keeps signed zeros and halves go to even
    ("round", (0.5,), 0.0), ("round", (1.5,), 2.0), ("round", (2.5,), 2.0),
    ("round", (-0.5,), -0.0), ("round", (-2.5,), -2.0), ("ceil", (-0.5,), -0.0),
    ("floor", (-0.0,), -0.0), ("trunc", (-0.7,), -0.0), ("trunc", (INF,), INF),
    # misc
    ("abs", (-0.0,), 0.0), ("abs", (-INF,), INF), ("negative", (0.0,), -0.0),
    ("square", (-0.0,), 0.0), ("reciprocal", (-0.0,), -INF), ("sign", (NAN,), NAN),
    ("sign", (-3.0,), -1.0), ("signbit", (-0.0,), True), ("signbit", (0.0,), False),
    ("signbit", (-INF,), True),
    ("copysign", (2.0, -0.0), -2.0), ("copysign", (-2.0, 0.0), 2.0),
    ("copysign", (INF, -1.0), -INF), ("copysign", (NAN, -1.0), NAN),
    ("hypot", (INF, NAN), INF), ("hypot", (NAN, -INF), INF), ("hypot", (3.0, -4.0), 5.0),
    ("hypot", (1e300, 1e300), 1e300 * math.sqrt(2)), ("hypot", (0.0, -0.0), 0.0),
    ("logaddexp", (-INF, -INF), -INF), ("logaddexp", (INF, INF), INF),
    ("logaddexp", (INF, -INF), INF), ("logaddexp", (NAN, 1.0), NAN),
    ("logaddexp", (1000.0, 1000.0), 1000.0 + math.log(2)),
    ("nextafter", (1.0, 2.0), 1.0 + 2.0 ** -52), ("nextafter", (0.0, -1.0), -5e-324),
    ("nextafter", (1.0, NAN), NAN), ("nextafter", (-0.0, 0.0), 0.0),
    ("maximum", (NAN, 1.0), NAN), ("minimum", (1.0, NAN), NAN),
    ("maximum", (-INF, 3.0), 3.0), ("minimum", (-INF, 3.0), -INF),
]


@pytest.mark.parametrize("name,args,want", HAND,
                         ids=["%s%s" % (n, a) for n, a, _ in HAND])
def test_special_case(name, args, want):
    got = one(name, *args)
    if isinstance(want, bool):
        assert bool(got) is want
    elif name in ("hypot", "logaddexp") and math.isfinite(want) and want != 0:
        assert math.isclose(got, want, rel_tol=1e-15), (got, want)
    else:
        assert is_(float(got), float(want)), "%s%s = %r, the standard says %r" % (
            name, args, got, want)


def test_signbit_of_negative_nan():
    # Sign bit of NaN itself (the standard's signbit/copysign cases for NaN with sign set).
    neg_nan = np.copysign(np.float64(np.nan), -1.0)
    assert bool(xp.signbit(xp.asarray(np.array([neg_nan]))).numpy()[0])
    assert float(xp.copysign(xp.asarray([3.0]), xp.asarray(np.array([neg_nan]))).numpy()[0]) \
        == -3.0


COMPLEX_HAND = [
    # exp
    ("exp", complex(0.0, 0.0), complex(1.0, 0.0)),
    ("exp", complex(-0.0, 0.0), complex(1.0, 0.0)),
    ("exp", complex(-INF, 0.0), complex(0.0, 0.0)),
    ("exp", complex(INF, 0.0), complex(INF, 0.0)),
    ("exp", complex(NAN, 0.0), complex(NAN, 0.0)),
    # log
    ("log", complex(-0.0, 0.0), complex(-INF, math.pi)),
    ("log", complex(0.0, 0.0), complex(-INF, 0.0)),
    ("log", complex(1.0, INF), complex(INF, math.pi / 2)),
    ("log", complex(-INF, 1.0), complex(INF, math.pi)),
    ("log", complex(INF, 1.0), complex(INF, 0.0)),
    # sqrt
    ("sqrt", complex(0.0, 0.0), complex(0.0, 0.0)),
    ("sqrt", complex(-0.0, 0.0), complex(0.0, 0.0)),
    ("sqrt", complex(1.0, INF), complex(INF, INF)),
    ("sqrt", complex(-INF, 1.0), complex(0.0, INF)),
    ("sqrt", complex(INF, 1.0), complex(INF, 0.0)),
    ("sqrt", complex(-4.0, 0.0), complex(0.0, 2.0)),
    ("sqrt", complex(-4.0, -0.0), complex(0.0, -2.0)),
    # expm1 (NumPy differs here: the standard's +0 for a = -0)
    ("expm1", complex(-0.0, 0.0), complex(0.0, 0.0)),
    ("expm1", complex(INF, 0.0), complex(INF, 0.0)),
    ("expm1", complex(-INF, 0.0), complex(-1.0, 0.0)),
    # sinh/tanh odd in the real part
    ("sinh", complex(0.0, 0.0), complex(0.0, 0.0)),
    ("tanh", complex(INF, 1.0), complex(1.0, 0.0)),
]


@pytest.mark.parametrize("name,z,want", COMPLEX_HAND,
                         ids=["%s(%r)" % (n, z) for n, z, _ in COMPLEX_HAND])
def test_complex_special_case(name, z, want):
    got = complex(getattr(xp, name)(xp.asarray(np.array([z], np.complex128))).numpy()[0])
    for g, w in ((got.real, want.real), (got.imag, want.imag)):
        if math.isnan(w):
            assert math.isnan(g), (name, z, got)
        else:
            assert math.isclose(g, w, rel_tol=1e-15) and \
                math.copysign(1, g) == math.copysign(1, w), (name, z, got, want)


# ---- integers and bools --------------------------------------------------------------
INTS = np.array([-7, -3, -1, 0, 1, 2, 5, 100], np.int32)


@pytest.mark.parametrize("name", ["abs", "negative", "positive", "square", "sign", "ceil",
                                  "floor", "round", "trunc", "bitwise_invert"])
def test_unary_int(name):
    got = getattr(xp, name)(xp.asarray(INTS))
    want = ref(name)(INTS)
    assert got.dtype == xp.int32
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "floor_divide", "remainder",
                                  "bitwise_and", "bitwise_or", "bitwise_xor", "maximum",
                                  "minimum", "equal", "less", "greater_equal"])
def test_binary_int(name):
    a, b = np.meshgrid(INTS, INTS[INTS != 0])
    got = getattr(xp, name)(xp.asarray(a), xp.asarray(b))
    want = ref(name)(a, b)
    assert got.dtype.name == want.dtype.name
    np.testing.assert_array_equal(got.numpy(), want)


def test_int_pow_and_shifts():
    a = np.array([2, -3, 5, 0], np.int64)
    b = np.array([3, 2, 0, 4], np.int64)
    np.testing.assert_array_equal(xp.pow(xp.asarray(a), xp.asarray(b)).numpy(), a ** b)
    s = np.array([1, 4, 0, 2], np.int64)
    np.testing.assert_array_equal(xp.bitwise_left_shift(xp.asarray(a), xp.asarray(s)).numpy(),
                                  a << s)
    np.testing.assert_array_equal(
        xp.bitwise_right_shift(xp.asarray(a), xp.asarray(s)).numpy(), a >> s)
    u = np.array([200, 3, 255], np.uint8)
    np.testing.assert_array_equal(xp.add(xp.asarray(u), 100).numpy(), u + np.uint8(100))


def test_logical_functions():
    p, q = np.meshgrid([True, False], [True, False])
    for name in ("logical_and", "logical_or", "logical_xor"):
        r = getattr(xp, name)(xp.asarray(p), xp.asarray(q))
        assert r.dtype == xp.bool
        np.testing.assert_array_equal(r.numpy(), ref(name)(p, q))
    np.testing.assert_array_equal(xp.logical_not(xp.asarray(p)).numpy(), ~p)
    np.testing.assert_array_equal(xp.bitwise_invert(xp.asarray(p)).numpy(), ~p)


def test_clip():
    a = np.array([-3.0, -1.0, 0.0, 2.0, 5.0, np.nan])
    t = xp.asarray(a)
    np.testing.assert_array_equal(xp.clip(t, -1.0, 2.0).numpy(), np.clip(a, -1.0, 2.0))
    np.testing.assert_array_equal(xp.clip(t, min=0.0).numpy(), np.clip(a, 0.0, None))
    np.testing.assert_array_equal(xp.clip(t, max=1).numpy(), np.clip(a, None, 1))
    np.testing.assert_array_equal(xp.clip(t).numpy(), a)
    lo = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(xp.clip(t, xp.asarray(lo), 3.0).numpy(),
                                  np.clip(a, lo, 3.0))
    i = xp.asarray(np.array([1, 50, 200], np.uint8))
    r = xp.clip(i, 10, 100)
    assert r.dtype == xp.uint8 and r.numpy().tolist() == [10, 50, 100]
    r = xp.clip(xp.asarray([1, 5, 9], dtype=xp.int16), xp.asarray(3, dtype=xp.int64), 7)
    assert r.dtype == xp.int16 and r.numpy().tolist() == [3, 5, 7]


def test_complex_helpers():
    z = np.array([3 + 4j, -1 - 1j, 0j, 2.5 - 0.5j])
    t = xp.asarray(z)
    np.testing.assert_allclose(xp.sign(t).numpy(), np.sign(z))
    np.testing.assert_array_equal(xp.round(t).numpy(), np.round(z))
    np.testing.assert_array_equal(xp.conj(t).numpy(), np.conj(z))
    r = xp.real(t)
    assert r.dtype == xp.float64
    np.testing.assert_array_equal(r.numpy(), z.real)
    np.testing.assert_array_equal(xp.imag(t).numpy(), z.imag)
    np.testing.assert_allclose(xp.abs(t).numpy(), np.abs(z), rtol=1e-15)
    assert xp.abs(t).dtype == xp.float64
    assert xp.abs(xp.asarray(z.astype(np.complex64))).dtype == xp.float32
