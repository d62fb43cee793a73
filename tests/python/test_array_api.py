"""tensord.array_api against the Python Array API standard (2024.12): names and signatures
written out from the standard's text, the inspection namespace, the promotion table, creation,
data type functions, the array object (operators, indexing, DLPack) and manipulation,
searching, statistical and utility functions, with NumPy 2 (itself Array API compliant) as
the reference for values. Element-wise special cases are in test_array_api_elementwise.py,
linalg/fft in test_array_api_linalg_fft.py, sorting/sets in test_array_api_sort_sets.py."""
import inspect
import itertools
import math

import numpy as np
import pytest

import tensord.array_api as xp

pytestmark = pytest.mark.timeout(300)

P, K = "P", "K"   # positional-only, keyword-only markers in the table below

# name: parameters as the standard writes them ("/" and "*" as in its signatures).
SIGNATURES = {
    "arange": "start, /, stop=None, step=1, *, dtype=None, device=None",
    "asarray": "obj, /, *, dtype=None, device=None, copy=None",
    "empty": "shape, *, dtype=None, device=None",
    "empty_like": "x, /, *, dtype=None, device=None",
    "eye": "n_rows, n_cols=None, /, *, k=0, dtype=None, device=None",
    "from_dlpack": "x, /, *, device=None, copy=None",
    "full": "shape, fill_value, *, dtype=None, device=None",
    "full_like": "x, /, fill_value, *, dtype=None, device=None",
    "linspace": "start, stop, /, num, *, dtype=None, device=None, endpoint=True",
    "meshgrid": "*arrays, indexing='xy'",
    "ones": "shape, *, dtype=None, device=None",
    "ones_like": "x, /, *, dtype=None, device=None",
    "tril": "x, /, *, k=0",
    "triu": "x, /, *, k=0",
    "zeros": "shape, *, dtype=None, device=None",
    "zeros_like": "x, /, *, dtype=None, device=None",
    "astype": "x, dtype, /, *, copy=True, device=None",
    "can_cast": "from_, to, /",
    "finfo": "type, /",
    "iinfo": "type, /",
    "isdtype": "dtype, kind",
    "result_type": "*arrays_and_dtypes",
    "clip": "x, /, min=None, max=None",
    "take": "x, indices, /, *, axis=None",
    "take_along_axis": "x, indices, /, *, axis=-1",
    "matmul": "x1, x2, /",
    "matrix_transpose": "x, /",
    "tensordot": "x1, x2, /, *, axes=2",
    "vecdot": "x1, x2, /, *, axis=-1",
    "broadcast_arrays": "*arrays",
    "broadcast_to": "x, /, shape",
    "concat": "arrays, /, *, axis=0",
    "expand_dims": "x, /, *, axis=0",
    "flip": "x, /, *, axis=None",
    "moveaxis": "x, source, destination, /",
    "permute_dims": "x, /, axes",
    "repeat": "x, repeats, /, *, axis=None",
    "reshape": "x, /, shape, *, copy=None",
    "roll": "x, /, shift, *, axis=None",
    "squeeze": "x, /, axis",
    "stack": "arrays, /, *, axis=0",
    "tile": "x, repetitions, /",
    "unstack": "x, /, *, axis=0",
    "argmax": "x, /, *, axis=None, keepdims=False",
    "argmin": "x, /, *, axis=None, keepdims=False",
    "count_nonzero": "x, /, *, axis=None, keepdims=False",
    "nonzero": "x, /",
    "searchsorted": "x1, x2, /, *, side='left', sorter=None",
    "where": "condition, x1, x2, /",
    "unique_all": "x, /",
    "unique_counts": "x, /",
    "unique_inverse": "x, /",
    "unique_values": "x, /",
    "argsort": "x, /, *, axis=-1, descending=False, stable=True",
    "sort": "x, /, *, axis=-1, descending=False, stable=True",
    "cumulative_prod": "x, /, *, axis=None, dtype=None, include_initial=False",
    "cumulative_sum": "x, /, *, axis=None, dtype=None, include_initial=False",
    "max": "x, /, *, axis=None, keepdims=False",
    "mean": "x, /, *, axis=None, keepdims=False",
    "min": "x, /, *, axis=None, keepdims=False",
    "prod": "x, /, *, axis=None, dtype=None, keepdims=False",
    "std": "x, /, *, axis=None, correction=0.0, keepdims=False",
    "sum": "x, /, *, axis=None, dtype=None, keepdims=False",
    "var": "x, /, *, axis=None, correction=0.0, keepdims=False",
    "all": "x, /, *, axis=None, keepdims=False",
    "any": "x, /, *, axis=None, keepdims=False",
    "diff": "x, /, *, axis=-1, n=1, prepend=None, append=None",
}
UNARY = ["abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "bitwise_invert", "ceil",
         "conj", "cos", "cosh", "exp", "expm1", "floor", "imag", "isfinite", "isinf", "isnan",
         "log", "log1p", "log2", "log10", "logical_not", "negative", "positive", "real",
         "reciprocal", "round", "sign", "signbit", "sin", "sinh", "square", "sqrt", "tan",
         "tanh", "trunc"]
BINARY = ["add", "atan2", "bitwise_and", "bitwise_left_shift", "bitwise_or",
          "bitwise_right_shift", "bitwise_xor", "copysign", "divide", "equal", "floor_divide",
          "greater", "greater_equal", "hypot", "less", "less_equal", "logaddexp", "logical_and",
          "logical_or", "logical_xor", "maximum", "minimum", "multiply", "nextafter",
          "not_equal", "pow", "remainder", "subtract"]
for _n in UNARY:
    SIGNATURES[_n] = "x, /"
for _n in BINARY:
    SIGNATURES[_n] = "x1, x2, /"

LINALG = {
    "cholesky": "x, /, *, upper=False", "cross": "x1, x2, /, *, axis=-1", "det": "x, /",
    "diagonal": "x, /, *, offset=0", "eigh": "x, /", "eigvalsh": "x, /", "inv": "x, /",
    "matmul": "x1, x2, /", "matrix_norm": "x, /, *, keepdims=False, ord='fro'",
    "matrix_power": "x, n, /", "matrix_rank": "x, /, *, rtol=None",
    "matrix_transpose": "x, /", "outer": "x1, x2, /", "pinv": "x, /, *, rtol=None",
    "qr": "x, /, *, mode='reduced'", "slogdet": "x, /", "solve": "x1, x2, /",
    "svd": "x, /, *, full_matrices=True", "svdvals": "x, /",
    "tensordot": "x1, x2, /, *, axes=2", "trace": "x, /, *, offset=0, dtype=None",
    "vecdot": "x1, x2, /, *, axis=-1",
    "vector_norm": "x, /, *, axis=None, keepdims=False, ord=2",
}
FFT = {}
for _n in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft"):
    FFT[_n] = "x, /, *, n=None, axis=-1, norm='backward'"
for _n in ("fftn", "ifftn", "rfftn", "irfftn"):
    FFT[_n] = "x, /, *, s=None, axes=None, norm='backward'"
FFT["fftfreq"] = FFT["rfftfreq"] = "n, /, *, d=1.0, dtype=None, device=None"
FFT["fftshift"] = FFT["ifftshift"] = "x, /, *, axes=None"


def parse(spec):
    """Returns: [(name, kind, default or inspect.Parameter.empty)] from a standard signature."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    out = []
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if "/" in items:
        kind = inspect.Parameter.POSITIONAL_ONLY
    for it in items:
        if it == "/":
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
            continue
        if it == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        if it.startswith("*"):
            out.append((it[1:], inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.empty))
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        if "=" in it:
            name, d = it.split("=")
            out.append((name, kind, eval(d)))
        else:
            out.append((it, kind, inspect.Parameter.empty))
    return out


def check_signature(fn, spec, name):
    got = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    assert got == parse(spec), "%s: signature %s, the standard has (%s)" % (
        name, inspect.signature(fn), spec)


# ---- names and signatures ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature(name):
    check_signature(getattr(xp, name), SIGNATURES[name], name)


@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_signature(name):
    check_signature(getattr(xp.linalg, name), LINALG[name], "linalg." + name)


@pytest.mark.parametrize("name", sorted(FFT))
def test_fft_signature(name):
    check_signature(getattr(xp.fft, name), FFT[name], "fft." + name)


def test_constants_and_dtypes():
    assert xp.__array_api_version__ == "2024.12"
    assert xp.e == math.e and xp.pi == math.pi and xp.inf == math.inf
    assert math.isnan(xp.nan) and xp.newaxis is None
    for n in ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64",
              "complex64", "complex128"):
        d = getattr(xp, n)
        assert d.name == n and d == d and hash(d) == hash(getattr(xp, n))
    # The daemon has no uint16/uint32/uint64 (docs/ARRAY_API.md).
    for n in ("uint16", "uint32", "uint64"):
        assert not hasattr(xp, n)
    assert xp.float32 != xp.float64


def test_namespace_info():
    info = xp.__array_namespace_info__()
    caps = info.capabilities()
    assert caps["boolean indexing"] is True and caps["data-dependent shapes"] is True
    assert caps["max dimensions"] == 16
    assert info.default_device() == "cpu" and info.devices() == ["cpu"]
    dd = info.default_dtypes()
    assert dd == {"real floating": xp.float64, "complex floating": xp.complex128,
                  "integral": xp.int64, "indexing": xp.int64}
    assert info.default_dtypes(device="cpu") == dd
    allk = info.dtypes()
    assert set(allk) == {"bool", "int8", "int16", "int32", "int64", "uint8", "float32",
                         "float64", "complex64", "complex128"}
    assert set(info.dtypes(kind="signed integer")) == {"int8", "int16", "int32", "int64"}
    assert set(info.dtypes(kind="unsigned integer")) == {"uint8"}
    assert set(info.dtypes(kind="real floating")) == {"float32", "float64"}
    assert set(info.dtypes(kind="complex floating")) == {"complex64", "complex128"}
    assert set(info.dtypes(kind="bool")) == {"bool"}
    assert set(info.dtypes(kind=("bool", "complex floating"))) == \
        {"bool", "complex64", "complex128"}
    assert len(info.dtypes(kind="numeric")) == 9
    # The namespace an array reports.
    a = xp.ones(2)
    assert a.__array_namespace__() is xp
    assert a.__array_namespace__(api_version="2024.12") is xp
    with pytest.raises(ValueError):
        a.__array_namespace__(api_version="2019.01")


# ---- type promotion ------------------------------------------------------------------
NP = {"bool": np.bool_, "int8": np.int8, "int16": np.int16, "int32": np.int32,
      "int64": np.int64, "uint8": np.uint8, "float32": np.float32, "float64": np.float64,
      "complex64": np.complex64, "complex128": np.complex128}
ALL = [getattr(xp, n) for n in NP]


def standard_pair(a, b):
    """The standard's table (written out from its text: same kind, plus real with complex
    floating). Returns: the dtype name or None for pairs it leaves undefined."""
    ints = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
    if a == b:
        return a
    if "bool" in (a, b):
        return None
    if a in ints and b in ints:
        return max(a, b, key=ints.get)
    if "uint8" in (a, b) and (a in ints or b in ints):
        s = b if a == "uint8" else a
        return "int16" if s == "int8" else s
    fl = {"float32": (32, False), "float64": (64, False), "complex64": (32, True),
          "complex128": (64, True)}
    if a in fl and b in fl:
        bits = max(fl[a][0], fl[b][0])
        cplx = fl[a][1] or fl[b][1]
        return ("complex%d" % (2 * bits)) if cplx else "float%d" % bits
    return None


@pytest.mark.parametrize("a,b", list(itertools.product(NP, NP)))
def test_promotion_table(a, b):
    want = standard_pair(a, b)
    if want is None:
        return
    da, db = getattr(xp, a), getattr(xp, b)
    assert xp.result_type(da, db).name == want
    # Both n-d, and a 0-d array with an n-d one (PyTorch ranks 0-d lower; the standard
    # does not): the namespace's functions follow the standard.
    x = xp.ones((3,), dtype=da)
    for y in (xp.ones((3,), dtype=db), xp.ones((), dtype=db)):
        op = xp.logical_and if want == "bool" else xp.add
        assert op(x, y).dtype.name == want
        assert op(y, x).dtype.name == want
        assert xp.equal(x, y).dtype == xp.bool
    # NumPy 2 agrees with the standard on these pairs.
    assert np.result_type(NP[a], NP[b]).name == want
    assert xp.can_cast(da, db) == (want == b)


def test_python_scalars_are_weak():
    for d in (xp.int8, xp.uint8, xp.int16, xp.int32, xp.float32, xp.float64, xp.complex64):
        x = xp.ones((2,), dtype=d)
        assert (x + 1).dtype == d and (1 + x).dtype == d and xp.add(x, 1).dtype == d
        assert xp.multiply(2, x).dtype == d
        assert xp.result_type(x, 1) == d
        if d.kind in "fc":
            assert (x * 2.5).dtype == d and xp.subtract(x, 0.5).dtype == d
    b = xp.asarray([True, False])
    assert (b & True).dtype == xp.bool and xp.logical_or(b, False).dtype == xp.bool
    f = xp.ones(2, dtype=xp.float32)
    assert xp.add(f, 1j).dtype == xp.complex64
    assert xp.result_type(xp.float64, 1j) == xp.complex128
    with pytest.raises(TypeError):
        xp.add(1, 2)
    with pytest.raises(ValueError):
        xp.result_type(1, 2.0)


def test_result_type_many_and_can_cast():
    assert xp.result_type(xp.int8, xp.uint8, xp.int16) == xp.int16
    assert xp.result_type(xp.float32, xp.complex64, xp.float64) == xp.complex128
    assert xp.result_type(xp.ones(2, dtype=xp.int32)) == xp.int32
    assert xp.can_cast(xp.int8, xp.int64) and not xp.can_cast(xp.int64, xp.int8)
    assert xp.can_cast(xp.uint8, xp.int16) and not xp.can_cast(xp.int8, xp.uint8)
    assert xp.can_cast(xp.float32, xp.complex64) and not xp.can_cast(xp.complex64,
                                                                       xp.float64)
    assert xp.can_cast(xp.bool, xp.bool) and not xp.can_cast(xp.bool, xp.int8)
    assert xp.can_cast(xp.ones(2, dtype=xp.int16), xp.int32)


def test_isdtype_finfo_iinfo():
    kinds = {"bool": ["bool"], "signed integer": ["int8", "int16", "int32", "int64"],
             "unsigned integer": ["uint8"], "real floating": ["float32", "float64"],
             "complex floating": ["complex64", "complex128"]}
    for kind, names in kinds.items():
        for n in NP:
            assert xp.isdtype(getattr(xp, n), kind) == (n in names)
    assert xp.isdtype(xp.uint8, "integral") and xp.isdtype(xp.int32, "numeric")
    assert not xp.isdtype(xp.bool, "numeric")
    assert xp.isdtype(xp.float32, xp.float32) and not xp.isdtype(xp.float32, xp.float64)
    assert xp.isdtype(xp.int8, ("bool", xp.int8))
    with pytest.raises(ValueError):
        xp.isdtype(xp.int8, "integer")
    for d, nd in ((xp.float32, np.float32), (xp.float64, np.float64),
                  (xp.complex64, np.float32), (xp.complex128, np.float64)):
        fi, nf = xp.finfo(d), np.finfo(nd)
        assert (fi.bits, fi.eps, fi.max, fi.min, fi.smallest_normal) == \
            (nf.bits, float(nf.eps), float(nf.max), float(nf.min), float(nf.smallest_normal))
        assert fi.dtype.name == np.dtype(nd).name
    assert xp.finfo(xp.ones(2, dtype=xp.float32)).bits == 32
    for n in ("int8", "int16", "int32", "int64", "uint8"):
        ii, ni = xp.iinfo(getattr(xp, n)), np.iinfo(NP[n])
        assert (ii.bits, ii.max, ii.min, ii.dtype.name) == (ni.bits, ni.max, ni.min, n)
    with pytest.raises(ValueError):
        xp.iinfo(xp.float32)
    with pytest.raises(ValueError):
        xp.finfo(xp.int32)


# ---- creation ------------------------------------------------------------------------
def test_asarray_defaults_and_copy():
    assert xp.asarray([1.0, 2.0]).dtype == xp.float64
    assert xp.asarray([1, 2]).dtype == xp.int64
    assert xp.asarray([True]).dtype == xp.bool
    assert xp.asarray([1 + 2j]).dtype == xp.complex128
    assert xp.asarray(3.5).shape == () and xp.asarray(3.5).dtype == xp.float64
    assert xp.asarray(7).dtype == xp.int64 and xp.asarray(False).dtype == xp.bool
    assert xp.asarray(np.arange(3, dtype=np.int16)).dtype == xp.int16
    assert xp.asarray(np.ones(2, np.float32)).dtype == xp.float32
    np.testing.assert_array_equal(xp.asarray([[1, 2], [3, 4]], dtype=xp.float32).numpy(),
                                  np.array([[1, 2], [3, 4]], np.float32))
    a = xp.asarray([1.0, 2.0])
    assert xp.asarray(a) is a
    assert xp.asarray(a, copy=False) is a
    b = xp.asarray(a, copy=True)
    assert b is not a
    b[0] = 9.0
    assert a.numpy()[0] == 1.0                     # a real copy
    c = xp.asarray(a, dtype=xp.float32)
    assert c.dtype == xp.float32
    with pytest.raises(ValueError):
        xp.asarray(a, dtype=xp.float32, copy=False)
    with pytest.raises(ValueError):
        xp.asarray([1, 2], copy=False)             # must move into the daemon
    # Nested sequences holding 0-d arrays, and buffer-protocol objects.
    np.testing.assert_array_equal(xp.asarray([xp.asarray(1.0), 2.0]).numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(xp.asarray(bytearray(b"\x01\x02")).numpy(), [1, 2])


def test_creation_functions():
    for fn, ref in ((xp.zeros, np.zeros), (xp.ones, np.ones)):
        r = fn((2, 3))
        assert r.dtype == xp.float64 and r.shape == (2, 3)
        np.testing.assert_array_equal(r.numpy(), ref((2, 3)))
        assert fn(4, dtype=xp.int8).dtype == xp.int8
    assert xp.empty((0, 2)).shape == (0, 2)
    f = xp.full((2,), 3)
    assert f.dtype == xp.int64 and f.numpy().tolist() == [3, 3]
    assert xp.full((1,), 2.5).dtype == xp.float64
    assert xp.full((1,), True).dtype == xp.bool
    assert xp.full((1,), 1j).dtype == xp.complex128
    x = xp.asarray([[1, 2]], dtype=xp.int16)
    for fn, val in ((xp.zeros_like, 0), (xp.ones_like, 1)):
        r = fn(x)
        assert r.dtype == xp.int16 and r.shape == (1, 2) and (r.numpy() == val).all()
    assert xp.empty_like(x, dtype=xp.float32).dtype == xp.float32
    r = xp.full_like(x, 7)
    assert r.dtype == xp.int16 and r.numpy().tolist() == [[7, 7]]
    for n, m, k in ((3, None, 0), (3, 4, 1), (4, 3, -1), (2, 5, 3), (3, 3, -5)):
        np.testing.assert_array_equal(xp.eye(n, m, k=k).numpy(), np.eye(n, m, k=k))
    assert xp.eye(2, dtype=xp.int32).dtype == xp.int32
    m = np.arange(12.0).reshape(3, 4)
    for k in (-1, 0, 2):
        np.testing.assert_array_equal(xp.tril(xp.asarray(m), k=k).numpy(), np.tril(m, k))
        np.testing.assert_array_equal(xp.triu(xp.asarray(m), k=k).numpy(), np.triu(m, k))
    with pytest.raises(ValueError):
        xp.zeros(2, device="cuda:7")


def test_arange_linspace():
    for args in ((5,), (2, 9), (1, 10, 3), (10, 1, -2), (0.5, 3.0), (0, 1, 0.1), (5, 2)):
        r = xp.arange(*args)
        e = np.arange(*args)
        assert r.dtype.name == e.dtype.name, args
        np.testing.assert_allclose(r.numpy(), e, rtol=1e-12)
    assert xp.arange(3, dtype=xp.float32).dtype == xp.float32
    for start, stop, num, ep in ((0, 1, 5, True), (0, 1, 5, False), (2.0, -3.0, 7, True),
                                 (1, 1, 1, True), (0, 10, 0, True), (0, 1, 1, False)):
        r = xp.linspace(start, stop, num, endpoint=ep)
        e = np.linspace(start, stop, num, endpoint=ep)
        assert r.dtype == xp.float64 and r.shape == e.shape
        np.testing.assert_allclose(r.numpy(), e, rtol=1e-12, atol=1e-15)
    c = xp.linspace(0, 1 + 1j, 3)
    assert c.dtype == xp.complex128
    np.testing.assert_allclose(c.numpy(), np.linspace(0, 1 + 1j, 3))


def test_meshgrid():
    a, b, c = np.arange(3), np.arange(4) * 2, np.arange(2) - 5
    for indexing in ("xy", "ij"):
        got = xp.meshgrid(xp.asarray(a), xp.asarray(b), xp.asarray(c), indexing=indexing)
        want = np.meshgrid(a, b, c, indexing=indexing)
        assert isinstance(got, tuple) and len(got) == 3
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    g = xp.meshgrid(xp.asarray([1, 2], dtype=xp.int8), xp.asarray([1.0], dtype=xp.float32))
    assert all(t.dtype == xp.float32 for t in g)
    with pytest.raises(ValueError):
        xp.meshgrid(xp.ones(2), indexing="yx")


def test_astype():
    x = xp.asarray([1.7, -2.2, 3.0])
    y = xp.astype(x, xp.int32)
    assert y.dtype == xp.int32 and y.numpy().tolist() == [1, -2, 3]
    assert xp.astype(x, xp.float64, copy=False) is x
    z = xp.astype(x, xp.float64)
    assert z is not x and z.dtype == xp.float64
    assert xp.astype(x, xp.complex128).numpy().tolist() == [1.7 + 0j, -2.2 + 0j, 3 + 0j]
    assert xp.astype(x, xp.bool).numpy().tolist() == [True, True, True]


# ---- array object --------------------------------------------------------------------
def test_array_attributes():
    a = xp.asarray(np.arange(24.0).reshape(2, 3, 4))
    assert a.ndim == 3 and a.shape == (2, 3, 4) and a.size == 24 and a.dtype == xp.float64
    assert a.device == "cpu" and a.to_device("cpu") is a
    with pytest.raises(ValueError):
        a.to_device("cuda:9")
    np.testing.assert_array_equal(a.mT.numpy(), np.swapaxes(a.numpy(), -1, -2))
    m = xp.asarray([[1, 2, 3]])
    np.testing.assert_array_equal(m.T.numpy(), [[1], [2], [3]])
    assert xp.zeros(()).size == 1 and xp.zeros((0, 3)).size == 0
    # torch-style calls keep working
    assert a.size() == (2, 3, 4) and a.size(1) == 3


def test_python_scalar_conversions():
    assert bool(xp.asarray(True)) is True and bool(xp.asarray(0.0)) is False
    assert int(xp.asarray(7)) == 7 and float(xp.asarray(2.5)) == 2.5
    assert complex(xp.asarray(1 + 2j)) == 1 + 2j
    assert [10, 20, 30][xp.asarray(1)] == 20
    with pytest.raises(TypeError):
        [1, 2][xp.asarray(1.0)]
    with pytest.raises(TypeError):
        [1, 2][xp.asarray(True)]
    with pytest.raises(OverflowError):
        int(xp.asarray(math.inf))
    with pytest.raises(ValueError):
        int(xp.asarray(math.nan))


def _pairs():
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 5, (3, 4))
    b = rng.uniform(1, 5, (4,))
    return a, b


@pytest.mark.parametrize("op", ["__add__", "__sub__", "__mul__", "__truediv__",
                                "__floordiv__", "__mod__", "__pow__", "__lt__", "__le__",
                                "__gt__", "__ge__", "__eq__", "__ne__"])
def test_operators_match_numpy(op):
    a, b = _pairs()
    ta, tb = xp.asarray(a), xp.asarray(b)
    np.testing.assert_allclose(getattr(ta, op)(tb).numpy(), getattr(a, op)(b), rtol=1e-12)
    rop = "__r" + op[2:] if op not in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__",
                                        "__ne__") else None
    if rop:
        np.testing.assert_allclose(getattr(ta, rop)(2.0).numpy(), getattr(a, rop)(2.0),
                                   rtol=1e-12)


def test_integer_and_bitwise_operators():
    a = np.array([[5, -3, 7], [0, 12, -8]], np.int32)
    b = np.array([2, 3, 1], np.int32)
    ta, tb = xp.asarray(a), xp.asarray(b)
    for op in ("__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "__floordiv__",
               "__mod__", "__add__", "__mul__"):
        r = getattr(ta, op)(tb)
        assert r.dtype == xp.int32, op
        np.testing.assert_array_equal(r.numpy(), getattr(a, op)(b), err_msg=op)
    np.testing.assert_array_equal((~ta).numpy(), ~a)
    np.testing.assert_array_equal((-ta).numpy(), -a)
    np.testing.assert_array_equal((+ta).numpy(), a)
    np.testing.assert_array_equal(abs(ta).numpy(), abs(a))
    np.testing.assert_array_equal((7 & ta).numpy(), 7 & a)
    np.testing.assert_array_equal((1 << tb).numpy(), 1 << b)
    m = xp.asarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal((m @ xp.asarray(np.ones((3, 2)))).numpy(),
                                  np.arange(6.0).reshape(2, 3) @ np.ones((3, 2)))


def test_inplace_operators_write_through_views():
    base = xp.asarray(np.arange(6.0).reshape(2, 3))
    view = base[0]
    ident = id(view)
    view += 10.0
    view *= 2
    view -= 1
    view /= 4
    view **= 2
    view %= 7
    view //= 1
    assert id(view) == ident
    want = np.arange(6.0).reshape(2, 3)
    row = want[0]
    row += 10.0
    row *= 2
    row -= 1
    row /= 4
    row **= 2
    row %= 7
    row //= 1
    np.testing.assert_array_equal(base.numpy(), want)
    i = xp.asarray(np.array([12, 5, 3], np.int64))
    i &= 6
    i |= 1
    i ^= 2
    i <<= 1
    i >>= 1
    j = np.array([12, 5, 3], np.int64)
    j &= 6
    j |= 1
    j ^= 2
    j <<= 1
    j >>= 1
    np.testing.assert_array_equal(i.numpy(), j)
    m = xp.asarray(np.eye(2) * 2)
    m @= xp.asarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(m.numpy(), [[2, 4], [6, 8]])


def test_getitem_rules():
    a = np.arange(60).reshape(3, 4, 5)
    t = xp.asarray(a)
    keys = [0, -1, (1, 2), (1, 2, 3), slice(None), slice(1, None), slice(None, None, -1),
            (slice(0, 3, 2), slice(None), -2), (Ellipsis, 1), (1, Ellipsis),
            (None, 1), (slice(None), None, 2), (Ellipsis, None), (), slice(10, 20),
            (slice(-100, 100), 0), (0, slice(None), slice(1, 4, 2)), Ellipsis]
    for k in keys:
        np.testing.assert_array_equal(t[k].numpy(), a[k], err_msg=repr(k))
    mask = a[:, :, 0] % 2 == 0
    np.testing.assert_array_equal(t[xp.asarray(mask)].numpy(), a[mask])
    m1 = a % 3 == 0
    np.testing.assert_array_equal(t[xp.asarray(m1)].numpy(), a[m1])
    np.testing.assert_array_equal(t[xp.asarray([2, 0])].numpy(), a[[2, 0]])
    # Several integer arrays broadcast together (2024.12); adjacent ones keep their place.
    i, j = np.array([[0], [2]]), np.array([1, -4, 3])
    for k in [(i, j), (slice(None), i, j), (i, j, slice(1, 3)), (Ellipsis, i + 1, j),
              (i, slice(None), j)]:
        xk = tuple(xp.asarray(q) if isinstance(q, np.ndarray) else q for q in k)
        np.testing.assert_array_equal(t[xk].numpy(), a[k], err_msg=repr(k))
    with pytest.raises(IndexError):
        t[xp.asarray([0, 3]), xp.asarray([0, 0])]
    z = xp.asarray(5.0)
    assert z[()].shape == () and float(z[()]) == 5.0 and z[...].shape == ()
    with pytest.raises(IndexError):
        t[3]
    with pytest.raises(IndexError):
        t[0, 0, 0, 0]
    with pytest.raises(IndexError):
        t[..., ...]


def test_setitem_rules():
    a = np.zeros((3, 4))
    t = xp.asarray(a)
    t[1] = 5.0
    a[1] = 5.0
    t[:, 2] = xp.asarray([1.0, 2.0, 3.0])
    a[:, 2] = [1.0, 2.0, 3.0]
    t[0, 1:3] = 7
    a[0, 1:3] = 7
    t[..., -1] = -1.0
    a[..., -1] = -1.0
    np.testing.assert_array_equal(t.numpy(), a)
    m = a > 2
    t[xp.asarray(m)] = 0.5
    a[m] = 0.5
    np.testing.assert_array_equal(t.numpy(), a)
    t[xp.asarray([0, 2]), xp.asarray([-1, 1])] = xp.asarray([8.0, 9.0])
    a[[0, 2], [-1, 1]] = [8.0, 9.0]
    np.testing.assert_array_equal(t.numpy(), a)


def test_dlpack_round_trips():
    a = np.arange(12.0).reshape(3, 4)
    t = xp.asarray(a)
    assert t.__dlpack_device__() == (1, 0)
    np.testing.assert_array_equal(np.from_dlpack(t), a)
    for d in ("int8", "uint8", "int32", "int64", "float32", "complex128", "bool"):
        arr = (np.arange(6) % 2).astype(d).reshape(2, 3)
        back = np.from_dlpack(xp.asarray(arr))
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
        got = xp.from_dlpack(arr)
        assert got.dtype.name == np.dtype(d).name
        np.testing.assert_array_equal(got.numpy(), arr)
    # a strided NumPy view
    v = np.arange(20.0).reshape(4, 5)[::2, 1::2]
    np.testing.assert_array_equal(xp.from_dlpack(v).numpy(), v)
    cap = t.__dlpack__(max_version=(1, 0))
    assert type(cap).__name__ == "PyCapsule"
    with pytest.raises(BufferError):
        t.__dlpack__(copy=False)
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))
    with pytest.raises(ValueError):
        xp.from_dlpack(a, copy=False)
    assert xp.from_dlpack(t) is t


# ---- indexing functions ----------------------------------------------------------------
def test_take_and_take_along_axis():
    a = np.arange(20).reshape(4, 5)
    t = xp.asarray(a)
    idx = np.array([3, 0, -1, 2])
    np.testing.assert_array_equal(xp.take(t, xp.asarray(idx), axis=0).numpy(),
                                  np.take(a, idx, axis=0))
    np.testing.assert_array_equal(xp.take(t, xp.asarray(idx), axis=1).numpy(),
                                  np.take(a, idx, axis=1))
    np.testing.assert_array_equal(xp.take(xp.asarray([5, 6, 7]), xp.asarray([2, 2])).numpy(),
                                  [7, 7])
    with pytest.raises(ValueError):
        xp.take(t, xp.asarray([0]))
    ind = np.array([[0, 4], [1, 1], [3, 2], [4, 0]])
    np.testing.assert_array_equal(
        xp.take_along_axis(t, xp.asarray(ind), axis=1).numpy(),
        np.take_along_axis(a, ind, axis=1))
    ind0 = np.array([[3, 2, 1, 0, 0]])
    np.testing.assert_array_equal(
        xp.take_along_axis(t, xp.asarray(ind0), axis=0).numpy(),
        np.take_along_axis(a, ind0, axis=0))


# ---- manipulation --------------------------------------------------------------------
def test_manipulation_functions():
    a = np.arange(24).reshape(2, 3, 4)
    t = xp.asarray(a)
    chk = np.testing.assert_array_equal
    chk(xp.broadcast_to(xp.asarray([1, 2, 3]), (2, 3)).numpy(),
        np.broadcast_to([1, 2, 3], (2, 3)))
    got = xp.broadcast_arrays(xp.asarray([[1], [2]]), xp.asarray([3, 4, 5]))
    want = np.broadcast_arrays(np.array([[1], [2]]), np.array([3, 4, 5]))
    assert isinstance(got, tuple)
    for g, w in zip(got, want):
        chk(g.numpy(), w)
    chk(xp.concat([t, t], axis=1).numpy(), np.concat([a, a], axis=1))
    chk(xp.concat([t, t], axis=None).numpy(), np.concat([a, a], axis=None))
    c = xp.concat([xp.ones(2, dtype=xp.int8), xp.ones(1, dtype=xp.int16)])
    assert c.dtype == xp.int16
    for ax in (0, 3, -1, -4):
        chk(xp.expand_dims(t, axis=ax).numpy(), np.expand_dims(a, ax))
    with pytest.raises(IndexError):
        xp.expand_dims(t, axis=4)
    for ax in (None, 0, (1, 2), -1):
        chk(xp.flip(t, axis=ax).numpy(), np.flip(a, axis=ax))
    chk(xp.moveaxis(t, 0, -1).numpy(), np.moveaxis(a, 0, -1))
    chk(xp.moveaxis(t, (0, 1), (2, 0)).numpy(), np.moveaxis(a, (0, 1), (2, 0)))
    chk(xp.permute_dims(t, (2, 0, 1)).numpy(), np.permute_dims(a, (2, 0, 1)))
    chk(xp.repeat(t, 2, axis=1).numpy(), np.repeat(a, 2, axis=1))
    chk(xp.repeat(t, 3).numpy(), np.repeat(a, 3))
    chk(xp.repeat(t, xp.asarray([1, 0, 2]), axis=1).numpy(), np.repeat(a, [1, 0, 2], axis=1))
    chk(xp.reshape(t, (4, -1)).numpy(), a.reshape(4, -1))
    r = xp.reshape(t, (24,), copy=True)
    chk(r.numpy(), a.reshape(24))
    for shift, ax in ((2, None), (-1, 0), ((1, 2), (0, 2)), (5, 2)):
        chk(xp.roll(t, shift, axis=ax).numpy(), np.roll(a, shift, axis=ax))
    s = xp.asarray(np.ones((1, 3, 1)))
    assert xp.squeeze(s, axis=0).shape == (3, 1) and xp.squeeze(s, axis=(0, 2)).shape == (3,)
    with pytest.raises(ValueError):
        xp.squeeze(s, axis=1)
    for ax in (0, 1, -1, 3):
        chk(xp.stack([t, t + 1], axis=ax).numpy(), np.stack([a, a + 1], axis=ax))
    for reps in ((2,), (2, 1, 3), (1, 1, 1, 2)):
        chk(xp.tile(t, reps).numpy(), np.tile(a, reps))
    chk(xp.tile(xp.asarray([1, 2]), (2, 2)).numpy(), np.tile([1, 2], (2, 2)))
    for ax in (0, 1, -1):
        got = xp.unstack(t, axis=ax)
        assert isinstance(got, tuple) and len(got) == a.shape[ax]
        for g, w in zip(got, np.unstack(a, axis=ax)):
            chk(g.numpy(), w)


# ---- searching, statistics, utility --------------------------------------------------
def test_argmax_argmin_where_count_nonzero():
    rng = np.random.default_rng(1)
    a = rng.integers(-5, 5, (4, 6)).astype(np.float64)
    t = xp.asarray(a)
    for ax in (None, 0, 1, -1):
        for kd in (False, True):
            for f in ("argmax", "argmin"):
                r = getattr(xp, f)(t, axis=ax, keepdims=kd)
                w = getattr(np, f)(a, axis=ax, keepdims=kd)
                assert r.dtype == xp.int64 and r.shape == w.shape
                np.testing.assert_array_equal(r.numpy(), w)
            r = xp.count_nonzero(t, axis=ax, keepdims=kd)
            w = np.count_nonzero(a, axis=ax, keepdims=kd)
            assert r.dtype == xp.int64
            np.testing.assert_array_equal(r.numpy(), w)
    np.testing.assert_array_equal(xp.count_nonzero(t, axis=(0, 1)).numpy(),
                                  np.count_nonzero(a))
    cond = a > 0
    np.testing.assert_array_equal(xp.where(xp.asarray(cond), t, -t).numpy(),
                                  np.where(cond, a, -a))
    r = xp.where(xp.asarray(cond), t, 0.5)
    assert r.dtype == xp.float64
    np.testing.assert_array_equal(r.numpy(), np.where(cond, a, 0.5))
    r = xp.where(xp.asarray(cond), 1, xp.asarray(a, dtype=xp.float32))
    assert r.dtype == xp.float32
    r = xp.where(xp.asarray(cond), xp.ones(6, dtype=xp.float32), xp.asarray(2.0))
    assert r.dtype == xp.float64                   # standard promotion, 0-d included


def _close(r, w, rtol=1e-12):
    assert r.shape == np.shape(w)
    np.testing.assert_allclose(r.numpy(), w, rtol=rtol, atol=1e-12)


def test_reductions_and_dtypes():
    rng = np.random.default_rng(2)
    a = rng.uniform(-3, 3, (3, 4, 5))
    t = xp.asarray(a)
    for ax in (None, 0, (0, 2), -1, ()):
        for kd in (False, True):
            _close(xp.sum(t, axis=ax, keepdims=kd), np.sum(a, axis=ax, keepdims=kd))
            _close(xp.prod(t, axis=ax, keepdims=kd), np.prod(a, axis=ax, keepdims=kd))
            _close(xp.max(t, axis=ax, keepdims=kd), np.max(a, axis=ax, keepdims=kd))
            _close(xp.min(t, axis=ax, keepdims=kd), np.min(a, axis=ax, keepdims=kd))
            _close(xp.mean(t, axis=ax, keepdims=kd), np.mean(a, axis=ax, keepdims=kd))
            for corr in (0.0, 1.0):
                if ax == () and corr:
                    continue
                _close(xp.var(t, axis=ax, correction=corr, keepdims=kd),
                       np.var(a, axis=ax, ddof=corr, keepdims=kd))
                _close(xp.std(t, axis=ax, correction=corr, keepdims=kd),
                       np.std(a, axis=ax, ddof=corr, keepdims=kd))
    # dtype rules: integers and bool sum/prod in the default integer, floats keep theirs
    i32 = xp.asarray(np.arange(1, 7, dtype=np.int32))
    assert xp.sum(i32).dtype == xp.int64 and int(xp.sum(i32)) == 21
    assert xp.prod(i32).dtype == xp.int64 and int(xp.prod(i32)) == 720
    assert xp.sum(xp.asarray([True, True, False])).dtype == xp.int64
    assert xp.sum(xp.asarray([1, 2], dtype=xp.uint8)).dtype == xp.int64
    f32 = xp.asarray(np.ones(3, np.float32))
    assert xp.sum(f32).dtype == xp.float32 and xp.prod(f32).dtype == xp.float32
    assert xp.sum(f32, dtype=xp.float64).dtype == xp.float64
    assert xp.sum(i32, dtype=xp.int32).dtype == xp.int32
    c = xp.asarray(np.array([1 + 1j, 2 - 1j], np.complex64))
    assert xp.sum(c).dtype == xp.complex64 and complex(xp.sum(c)) == 3 + 0j
    assert xp.mean(c).dtype == xp.complex64
    assert xp.max(i32).dtype == xp.int32
    with pytest.raises(TypeError):
        xp.mean(i32)                                # the standard defines floating input
    with pytest.raises(TypeError):
        xp.var(i32)
    with pytest.raises(ValueError):
        xp.max(xp.zeros((0, 3)))


def test_cumulative():
    a = np.arange(1, 13, dtype=np.int32).reshape(3, 4)
    t = xp.asarray(a)
    for ax in (0, 1, -1):
        r = xp.cumulative_sum(t, axis=ax)
        assert r.dtype == xp.int64
        np.testing.assert_array_equal(r.numpy(), np.cumulative_sum(a, axis=ax))
        r = xp.cumulative_prod(t, axis=ax, include_initial=True)
        np.testing.assert_array_equal(r.numpy(), np.cumulative_prod(a, axis=ax,
                                                                    include_initial=True))
        r = xp.cumulative_sum(t, axis=ax, include_initial=True, dtype=xp.float64)
        assert r.dtype == xp.float64
        np.testing.assert_array_equal(r.numpy(), np.cumulative_sum(
            a, axis=ax, include_initial=True, dtype=np.float64))
    v = xp.asarray([1.5, 2.0, -1.0])
    np.testing.assert_array_equal(xp.cumulative_sum(v).numpy(), [1.5, 3.5, 2.5])
    assert xp.cumulative_sum(v).dtype == xp.float64
    with pytest.raises(ValueError):
        xp.cumulative_sum(t)                       # axis is required for 2-d input


def test_all_any_diff():
    a = np.array([[0, 1, 2], [3, 0, 5]])
    t = xp.asarray(a)
    for ax in (None, 0, 1, (0, 1)):
        for kd in (False, True):
            for f in ("all", "any"):
                r = getattr(xp, f)(t, axis=ax, keepdims=kd)
                assert r.dtype == xp.bool
                np.testing.assert_array_equal(r.numpy(), getattr(np, f)(a, axis=ax,
                                                                        keepdims=kd))
    x = np.array([[1, 4, 9, 16, 25], [2, 3, 5, 7, 11]])
    tx = xp.asarray(x)
    for n in (0, 1, 2, 3):
        for ax in (-1, 0):
            np.testing.assert_array_equal(xp.diff(tx, axis=ax, n=n).numpy(),
                                          np.diff(x, axis=ax, n=n))
    np.testing.assert_array_equal(
        xp.diff(tx, prepend=xp.asarray([[0], [0]]), append=xp.asarray([[1], [1]])).numpy(),
        np.diff(x, prepend=[[0], [0]], append=[[1], [1]]))
    b = np.array([True, True, False, True])
    np.testing.assert_array_equal(xp.diff(xp.asarray(b)).numpy(), np.diff(b))


def test_top_level_linalg():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    _close(xp.matmul(xp.asarray(a), xp.asarray(b)), np.matmul(a, b))
    v = rng.standard_normal(4)
    _close(xp.matmul(xp.asarray(a), xp.asarray(v)), np.matmul(a, v))
    _close(xp.matrix_transpose(xp.asarray(a)), np.matrix_transpose(a))
    with pytest.raises(ValueError):
        xp.matmul(xp.asarray(2.0), xp.asarray(b))
    for axes, bshape in ((0, (2,)), (1, (4, 5, 2)), (2, (3, 4, 2)), (([1, 2], [1, 0]), (4, 3, 2)),
                         (((0,), (1,)), (5, 2))):
        bb = rng.standard_normal(bshape)
        _close(xp.tensordot(xp.asarray(a), xp.asarray(bb), axes=axes),
               np.tensordot(a, bb, axes=axes))
    c1 = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    c2 = rng.standard_normal((4,)) + 1j * rng.standard_normal((4,))
    _close(xp.vecdot(xp.asarray(c1), xp.asarray(c2)), np.vecdot(c1, c2))
    _close(xp.vecdot(xp.asarray(a), xp.asarray(a), axis=0), np.vecdot(a, a, axis=0))
    with pytest.raises(ValueError):
        xp.vecdot(xp.asarray(a), xp.asarray(b))


# ---- an end-to-end script written for NumPy --------------------------------------------
def analysis(xp):
    """Least-squares fit of a noisy sinusoid model, then FFT low-pass filtering; written
    against the standard only."""
    n = 256
    t = xp.linspace(0.0, 1.0, n, endpoint=False)
    clean = 2.0 * xp.sin(2 * xp.pi * 5 * t) + 0.5 * xp.cos(2 * xp.pi * 12 * t)
    noise = 0.3 * xp.sin(2 * xp.pi * 97 * t + 0.3) * xp.cos(2 * xp.pi * 41 * t)
    y = clean + noise + 0.1
    design = xp.stack([xp.ones_like(t), xp.sin(2 * xp.pi * 5 * t),
                       xp.cos(2 * xp.pi * 12 * t), t], axis=1)
    gram = xp.matrix_transpose(design) @ design
    coef = xp.linalg.solve(gram, xp.matrix_transpose(design) @ y)
    resid = y - design @ coef
    rms = xp.sqrt(xp.mean(resid ** 2))
    spec = xp.fft.rfft(y)
    freqs = xp.fft.rfftfreq(n, d=1.0 / n)
    filt = xp.where(freqs <= 20.0, spec, xp.zeros_like(spec))
    smooth = xp.fft.irfft(filt, n=n)
    err = xp.max(xp.abs(smooth - (clean + 0.1)))
    peak = xp.argmax(xp.abs(spec[1:])) + 1
    q, r = xp.linalg.qr(design)
    coef_qr = xp.linalg.solve(r, xp.matrix_transpose(q) @ y)
    return {"coef": coef, "rms": rms, "smooth": smooth, "err": err, "peak": peak,
            "coef_qr": coef_qr, "cumsum": xp.cumulative_sum(y),
            "norm": xp.linalg.vector_norm(resid)}


def test_end_to_end_numpy_script():
    got = analysis(xp)
    want = analysis(np)
    for k, w in want.items():
        g = got[k]
        assert g.__array_namespace__() is xp
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-10, err_msg=k)
    assert int(got["peak"]) == 5
