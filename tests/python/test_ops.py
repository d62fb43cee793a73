"""Every op the daemon publishes, tested from its schema (ListOps) against NumPy.

SPECS maps each op name to a sample generator: for a dtype and a variant (basic, broadcast,
noncontig, zero, 0d) it yields cases (inputs, attrs, expected NumPy values computed in
float64/complex128/int64, expected result dtypes written out by hand after PyTorch's rules).
An op in the schema without an entry here fails test_every_op_has_samples. Non-contiguous
inputs are made in the daemon (a transposed or stepped view of an upload); random ops are
checked for shape, dtype, range, reproducibility by seed and statistics.
"""
import warnings
import zlib

import numpy as np
import pytest

import tensord as td
from tensord.client import bf16_bits_to_f32, f32_to_bf16_bits

import tdtest_daemon
from spec_common import Case
from op_specs_nn import NN_SPECS
from op_specs_special import SPECIAL_SPECS
from op_specs_fft import FFT_SPECS
from op_specs_lapack_ext import LAPACK_EXT_SPECS
from op_specs_contract import CONTRACT_SPECS
from op_specs_linalg_norms import NORMS_SPECS
from op_specs_interp import INTERP_SPECS
from op_specs_sort import SORT_SPECS
from op_specs_linalg import LINALG_SPECS, test_linalg_residuals, test_linalg_singular_error_names_batch_element, test_linalg_cholesky_not_pd_names_batch_element, test_linalg_slogdet_singular  # noqa: F401,E501

B, U8, I8, I16, I32, I64 = td.bool_, td.uint8, td.int8, td.int16, td.int32, td.int64
F16, BF16, F32, F64, C64, C128 = (td.float16, td.bfloat16, td.float32, td.float64,
                                  td.complex64, td.complex128)
INTS = (U8, I8, I16, I32, I64)
VARIANTS = ("basic", "broadcast", "noncontig", "zero", "0d")

pytestmark = pytest.mark.timeout(120)


# ---- PyTorch's dtype rules, written out ------------------------------------------------
def is_int(d):
    return d.kind in "iu"


def is_intb(d):
    return d.kind in "biu"


def int_to_float(d):
    return F32 if is_intb(d) else d


def to_real(d):
    return {C64: F32, C128: F64}.get(d, d)


def acc64(d):
    return I64 if is_intb(d) else d


def same(d, attrs=None):
    return d


# ---- sample values --------------------------------------------------------------------
class Dom:
    """Value domain: floats in [lo, hi], integers in [ilo, ihi], complex parts in [clo, chi],
    or a finite set of values (`choices`) for comparisons and logic."""

    def __init__(self, lo=-3.0, hi=3.0, ilo=-5, ihi=5, clo=-1.0, chi=1.0, choices=None):
        self.lo, self.hi, self.ilo, self.ihi, self.clo, self.chi = lo, hi, ilo, ihi, clo, chi
        self.choices = choices


DEFAULT = Dom()


def round_to(x, d):
    """Rounds float64 values to what dtype d can hold; returns the storage array."""
    if d is BF16:
        return bf16_bits_to_f32(f32_to_bf16_bits(x.astype(np.float32)))
    return x.astype(d.numpy_dtype)


def gen(rng, d, shape, dom=DEFAULT):
    """Random values of dtype d (as stored: bfloat16 values in a float32 array)."""
    if d is B:
        return rng.random(shape) < 0.5
    if dom.choices is not None:
        ch = [c for c in dom.choices if d.kind == "c" or not isinstance(c, complex)]
        if is_int(d):
            ch = [int(c.real) for c in ch if float(c.real).is_integer()
                  and (d is not U8 or c.real >= 0)]
        vals = np.array(ch)[rng.integers(0, len(ch), shape)]
        return round_to(vals, d) if not is_int(d) else vals.astype(d.numpy_dtype)
    if is_int(d):
        info = np.iinfo(d.numpy_dtype)
        lo, hi = max(dom.ilo, info.min), min(dom.ihi, info.max)
        return rng.integers(lo, hi + 1, shape).astype(d.numpy_dtype)
    if d.kind == "c":
        z = rng.uniform(dom.clo, dom.chi, shape) + 1j * rng.uniform(dom.clo, dom.chi, shape)
        return z.astype(d.numpy_dtype)
    return round_to(rng.uniform(dom.lo, dom.hi, shape), d)


def hp(x, d):
    """High-precision copy for references: int64, float64, complex128 or bool."""
    if d.kind == "c":
        return x.astype(np.complex128)
    if d.kind == "f":
        return x.astype(np.float64)
    if d is B:
        return x.astype(np.bool_)
    return x.astype(np.int64)


def fl(x, d):
    """As floating point (float64 or complex128) for transcendental references."""
    return x.astype(np.complex128 if d.kind == "c" else np.float64)


# Shapes of the inputs of an n-ary elementwise op per variant.
def ew_shapes(variant, n):
    if variant == "basic":
        return [(3, 4)] * n
    if variant == "broadcast":
        return [(3, 1), (1, 4), (4,)][:n] if n > 1 else None
    if variant == "noncontig":
        return [(3, 4)] * n
    if variant == "zero":
        return [(0, 4), (4,), (1, 4)][:n] if n > 1 else [(0, 4)]
    if variant == "0d":
        return [()] * n
    return None


def bshape(shapes):
    return np.broadcast_shapes(*shapes)


# ---- unary elementwise ------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_any(f):
    def g(x):
        with np.errstate(all="ignore"):
            return f(x)
    return g


UNARY_FLOAT = {
    # name: (reference on float64/complex128, domain)
    "exp": (np.exp, Dom(-3, 3, -3, 3)),
    "expm1": (np.expm1, Dom(-3, 3, -3, 3)),
    "log": (np.log, Dom(0.1, 4, 1, 6)),
    "log1p": (np.log1p, Dom(-0.5, 3, 0, 6)),
    "log2": (np.log2, Dom(0.1, 4, 1, 6)),
    "log10": (np.log10, Dom(0.1, 4, 1, 6)),
    "sqrt": (np.sqrt, Dom(0, 4, 0, 9)),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), Dom(0.1, 4, 1, 9)),
    "sin": (np.sin, Dom(-4, 4, -5, 5)),
    "cos": (np.cos, Dom(-4, 4, -5, 5)),
    "tan": (np.tan, Dom(-1.3, 1.3, -1, 1)),
    "asin": (np.arcsin, Dom(-0.95, 0.95, -1, 1)),
    "acos": (np.arccos, Dom(-0.95, 0.95, -1, 1)),
    "atan": (np.arctan, Dom(-4, 4, -5, 5)),
    "sinh": (np.sinh, Dom(-3, 3, -3, 3)),
    "cosh": (np.cosh, Dom(-3, 3, -3, 3)),
    "tanh": (np.tanh, Dom(-3, 3, -3, 3)),
    "asinh": (np.arcsinh, Dom(-4, 4, -5, 5)),
    "acosh": (np.arccosh, Dom(1.05, 4, 1, 6)),
    "atanh": (np.arctanh, Dom(-0.9, 0.9, -1, 1)),
    "sigmoid": (sigmoid, Dom(-4, 4, -5, 5)),
}


def unary_float_cases(name):
    ref, dom = UNARY_FLOAT[name]

    def cases(rng, d, variant):
        shapes = ew_shapes(variant, 1)
        if shapes is None:
            return []
        x = gen(rng, d, shapes[0], dom)
        with np.errstate(all="ignore"):
            exp = ref(fl(x, d))
        return [Case([(x, d)], {}, exp, int_to_float(d))]
    return cases


def unary_cases(ref, out=same, dom=DEFAULT, attrs_list=({},), special=None):
    """ref(hp_x, d, attrs) -> expected; out(d, attrs) -> dtype."""
    def cases(rng, d, variant):
        shapes = ew_shapes(variant, 1)
        if shapes is None:
            return []
        x = gen(rng, d, shapes[0], dom)
        if special is not None:
            x = special(x, d)
        res = []
        for attrs in attrs_list:
            if callable(attrs):
                attrs = attrs(d)
            if attrs is None:
                continue
            with np.errstate(all="ignore"):
                exp = ref(hp(x, d), d, attrs)
            res.append(Case([(x, d)], attrs, exp, out(d, attrs) if callable(out) else out))
        return res
    return cases


def wrap_int(v, d):
    """Expected integer results wrap to d like C/PyTorch."""
    return v.astype(np.int64).astype(d.numpy_dtype) if is_int(d) else v


def with_ties(x, d):
    if d.kind == "f" and x.size >= 5:
        flat = x.reshape(-1)
        flat[:5] = np.array([0.5, 1.5, 2.5, -0.5, -2.5]).astype(flat.dtype)
    return x


def with_specials(x, d):
    if d.kind in "fc" and x.size >= 4:
        flat = x.reshape(-1)
        flat[0] = np.nan
        flat[1] = np.inf
        flat[2] = -np.inf
    return x


def sign_specials(x, d):
    """Zeros, NaN and infinite parts for sign (NumPy 2's complex rules)."""
    if d.kind in "fc" and x.size >= 7:
        flat = x.reshape(-1)
        sp = [0, np.nan, np.inf, -np.inf, -0.0]
        if d.kind == "c":
            sp = [0, complex(np.nan, 1), complex(np.inf, 2), complex(-np.inf, np.inf),
                  complex(np.nan, -np.inf), complex(1, -np.inf), complex(-0.0, 0)]
        flat[:len(sp)] = np.array(sp).astype(flat.dtype)
    return x


def sign_cases(rng, d, variant):
    """sign on random values, plus (basic variant) a case with sign_specials."""
    def ref(x, d, a):
        return np.sign(x) if d is not B else x
    res = unary_cases(ref)(rng, d, variant)
    if variant == "basic":
        res += unary_cases(ref, special=sign_specials)(rng, d, variant)
    return res


def clamp_attrs(d):
    if is_int(d):
        return [{"min": -2, "max": 3}, {"min": 1}, {"max": 2}]
    return [{"min": -0.5, "max": 0.75}, {"min": 0.25}, {"max": -1.0}]


def clamp_ref(x, d, a):
    lo = a.get("min", -np.inf)
    hi = a.get("max", np.inf)
    return np.minimum(np.maximum(x, lo), hi)


def multi(attr_fn, inner):
    """Builds cases for each attr dict attr_fn(d) returns."""
    def cases(rng, d, variant):
        res = []
        for attrs in attr_fn(d):
            res += unary_cases(inner, same, DEFAULT, (attrs,))(rng, d, variant)
        return res
    return cases


def angle_out(d, a):
    return to_real(d) if d.kind == "c" else int_to_float(d)


def cast_cases(rng, d, variant):
    shapes = ew_shapes(variant, 1)
    if shapes is None:
        return []
    x = gen(rng, d, shapes[0], Dom(0, 5, 0, 5, 0, 3))
    if x.size >= 2 and d is not B:
        x.reshape(-1)[1] = 0
    res = []
    for t in td.dtypes:
        v = hp(x, d)
        if t is B:
            exp = v != 0
        elif t.kind == "c":
            exp = v.astype(np.complex128)
        elif t.kind == "f":
            exp = np.real(v).astype(np.float64) if d.kind == "c" else v.astype(np.float64)
        else:
            r = np.real(v) if d.kind == "c" else v
            exp = np.trunc(r.astype(np.float64)).astype(np.int64) if d.kind in "fc" else \
                r.astype(np.int64)
        res.append(Case([(x, d)], {"dtype": t}, exp, t))
    return res


# ---- binary elementwise -----------------------------------------------------------------
def nonzero_gen(rng, d, shape):
    if d is B:
        return rng.random(shape) < 0.5
    if is_int(d):
        mag = rng.integers(1, 6, shape)
        sign = np.ones(shape, np.int64) if d is U8 else rng.choice([-1, 1], shape)
        return (mag * sign).astype(d.numpy_dtype)
    if d.kind == "c":
        return gen(rng, d, shape, Dom(clo=0.3, chi=1.5)) * np.where(
            rng.random(shape) < 0.5, 1, -1).astype(d.numpy_dtype)
    mag = rng.uniform(0.5, 3, shape)
    return round_to(mag * rng.choice([-1.0, 1.0], shape), d)


def binary_cases(ref, out=same, doms=(DEFAULT, DEFAULT), attrs_list=({},), gens=None,
                 nan=False, mag=None):
    """ref(a_hp, b_hp, d, attrs) -> expected."""
    def cases(rng, d, variant):
        shapes = ew_shapes(variant, 2)
        if shapes is None:
            return []
        if gens is not None:
            a = gens[0](rng, d, shapes[0])
            b = gens[1](rng, d, shapes[1])
        else:
            a = gen(rng, d, shapes[0], doms[0])
            b = gen(rng, d, shapes[1], doms[1])
        if nan and d.kind == "f" and a.size > 1 and variant == "basic":
            a.reshape(-1)[0] = np.nan
            b.reshape(-1)[1] = np.nan
        res = []
        for attrs in attrs_list:
            if callable(attrs):
                attrs = attrs(d)
            if attrs is None:
                continue
            with np.errstate(all="ignore"):
                exp = ref(hp(a, d), hp(b, d), d, attrs)
            exp = np.broadcast_to(exp, bshape([shapes[0], shapes[1]]))
            m = 1.0 if mag is None else mag(a, b, d)
            res.append(Case([(a, d), (b, d)], attrs, exp,
                            out(d, attrs) if callable(out) else out, mag=m))
        return res
    return cases


def alpha_attrs(d):
    return None if d is B else {"alpha": 2}


def add_ref(a, b, d, at):
    if d is B:
        return a | b
    return wrap_int(a + at.get("alpha", 1) * b, d)


def sub_ref(a, b, d, at):
    return wrap_int(a - at.get("alpha", 1) * b, d)


def mul_ref(a, b, d, at):
    return a & b if d is B else wrap_int(a * b, d)


def div_ref(a, b, d, at):
    mode = at.get("rounding_mode")
    if mode is None:
        return a.astype(np.float64 if d.kind != "c" else np.complex128) / b
    if is_int(d):
        if mode == "floor":
            return wrap_int(np.floor_divide(a, b), d)
        return wrap_int(np.trunc(a.astype(np.float64) / b).astype(np.int64), d)
    q = a / b
    return np.floor(q) if mode == "floor" else np.trunc(q)


def div_out(d, at):
    return d if at.get("rounding_mode") else int_to_float(d)


def div_attrs(mode):
    def f(d):
        return None if d.kind in "bc" else {"rounding_mode": mode}
    return f


def floordiv_ref(a, b, d, at):
    return wrap_int(np.floor_divide(a, b), d)


def rem_ref(a, b, d, at):
    return wrap_int(np.remainder(a, b), d)


def pow_gens():
    def base(rng, d, shape):
        if is_int(d):
            return gen(rng, d, shape, Dom(ilo=-3, ihi=3))
        if d.kind == "c":
            return gen(rng, d, shape, Dom(clo=-1, chi=1))
        return gen(rng, d, shape, Dom(0.5, 2))

    def expo(rng, d, shape):
        if is_int(d):
            return gen(rng, d, shape, Dom(ilo=0, ihi=3))
        if d.kind == "c":
            return gen(rng, d, shape, Dom(clo=-1, chi=1))
        return gen(rng, d, shape, Dom(-2, 2))
    return (base, expo)


def pow_ref(a, b, d, at):
    if is_int(d):
        return wrap_int(np.power(a, b), d)
    return np.power(a, b)


CMP_DOM = Dom(choices=[-1.0, 0.0, 0.5, 1.0, 2.0, 1 + 1j, -1j])
LOGIC_DOM = Dom(choices=[0.0, 0.0, 1.0, -2.5, 0.5j])


def shift_gens(left):
    def a(rng, d, shape):
        info = np.iinfo(d.numpy_dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000) + 1,
                            shape).astype(d.numpy_dtype)

    def b(rng, d, shape):
        bits = 8 * d.itemsize
        return rng.integers(0, bits + 2 if left else bits, shape).astype(d.numpy_dtype)
    return (a, b)


def shl_ref(a, b, d, at):
    bits = 8 * d.itemsize
    av, bv = np.broadcast_arrays(a, b)
    out = np.empty(av.shape, dtype=object)
    for idx in np.ndindex(av.shape):
        v = (int(av[idx]) << int(bv[idx])) & ((1 << bits) - 1)
        if d is not U8 and v >= 1 << (bits - 1):
            v -= 1 << bits
        out[idx] = v
    return out.astype(d.numpy_dtype)


def shr_ref(a, b, d, at):
    return (a >> b).astype(d.numpy_dtype)


def full_range_gen(rng, d, shape):
    if d is B:
        return rng.random(shape) < 0.5
    info = np.iinfo(d.numpy_dtype)
    lo, hi = max(info.min, -(1 << 40)), min(info.max, 1 << 40)
    return rng.integers(lo, hi + 1, shape).astype(d.numpy_dtype)


def where_cases(rng, d, variant):
    shapes = {"basic": [(3, 4)] * 3, "broadcast": [(3, 1), (1, 4), (4,)],
              "noncontig": [(3, 4)] * 3, "zero": [(0, 4), (0, 4), (4,)],
              "0d": [(), (), ()]}[variant]
    cond = rng.random(shapes[0]) < 0.5
    a = gen(rng, d, shapes[1])
    b = gen(rng, d, shapes[2])
    exp = np.where(cond, hp(a, d), hp(b, d))
    return [Case([(cond, B), (a, d), (b, d)], {}, exp, d)]


# ---- reductions and scans ---------------------------------------------------------------
def red_shape(variant):
    return {"basic": (3, 4), "noncontig": (3, 4), "zero": (0, 4), "0d": ()}.get(variant)


def red_dims(variant, name, intdim=False):
    if variant in ("basic", "noncontig"):
        if intdim:
            return [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}]
        if name == "logsumexp":
            return [{"dim": [1]}, {"dim": [0, 1], "keepdim": True}, {"dim": [-1]}]
        return [{}, {"dim": [1]}, {"dim": [0], "keepdim": True}, {"dim": [0, 1]},
                {"dim": [-1]}]
    if variant == "zero":
        if intdim:
            return [{"dim": 1}]
        base = [{"dim": [1]}, {"dim": [-1], "keepdim": True}]
        if name in ("sum", "prod", "all", "any"):
            base += [{}, {"dim": [0]}]
        return base
    if variant == "0d":
        if name == "logsumexp":
            return [{"dim": [0]}]
        return [{}] if not intdim else [{}]
    return []


def axis_of(attrs, ndim):
    dim = attrs.get("dim")
    if dim is None:
        return None
    if isinstance(dim, int):
        return dim
    return tuple(dim)


def reduce_cases(name, ref, out, dom=DEFAULT, intdim=False, extra=None, magfn=None,
                 nan=False):
    def cases(rng, d, variant):
        shape = red_shape(variant)
        if shape is None:
            return []
        x = gen(rng, d, shape, dom)
        if nan and d.kind == "f" and variant == "basic":
            x[1, 2] = np.nan
        res = []
        attrs_list = list(red_dims(variant, name, intdim))
        if extra is not None:
            attrs_list += [a for a in extra(d, variant) if a is not None]
        for attrs in attrs_list:
            axis = axis_of(attrs, x.ndim)
            if x.ndim == 0 and axis is not None:
                axis = None
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                exp = ref(hp(x, d), axis, attrs.get("keepdim", False), attrs, d)
            exp = np.asarray(exp)
            m = 1.0 if magfn is None else magfn(x, d)
            res.append(Case([(x, d)], attrs, exp, out(d, attrs), mag=m))
        return res
    return cases


def absmax(x, d):
    return float(np.max(np.abs(hp(x, d).astype(np.complex128)))) if x.size else 1.0


def sum_mag(x, d):
    return max(1.0, absmax(x, d) * max(1, x.size))


def np_sum(x, axis, keep, attrs, d):
    if d is B:
        x = x.astype(np.int64)
    r = np.sum(x, axis=axis, keepdims=keep)
    return r


def sum_out(d, attrs):
    t = attrs.get("dtype")
    return t if t is not None else acc64(d)


def np_prod(x, axis, keep, attrs, d):
    if d is B:
        x = x.astype(np.int64)
    return np.prod(x, axis=axis, keepdims=keep)


def np_mean(x, axis, keep, attrs, d):
    return np.mean(x, axis=axis, keepdims=keep)


def np_amax(x, axis, keep, attrs, d):
    return np.max(x, axis=axis, keepdims=keep)


def np_amin(x, axis, keep, attrs, d):
    return np.min(x, axis=axis, keepdims=keep)


def np_argmax(f):
    def g(x, axis, keep, attrs, d):
        if axis is None:
            r = f(x.reshape(-1)) if x.ndim else np.int64(0)
            return np.reshape(r, (1,) * x.ndim) if keep else np.int64(r)
        r = f(x, axis=axis)
        return np.expand_dims(r, axis) if keep else r
    return g


def np_var(std):
    def g(x, axis, keep, attrs, d):
        c = attrs.get("correction", 1)
        v = np.var(x, axis=axis, keepdims=keep, ddof=c)
        return np.sqrt(v) if std else v
    return g


def var_extra(d, variant):
    if variant == "0d":
        return [{"correction": 0}]
    return [{"dim": [1], "correction": 0}, {"dim": [0], "correction": 2, "keepdim": True}]


def np_all(x, axis, keep, attrs, d):
    return np.all(x != 0, axis=axis, keepdims=keep)


def np_any(x, axis, keep, attrs, d):
    return np.any(x != 0, axis=axis, keepdims=keep)


def np_lse(x, axis, keep, attrs, d):
    x = x.astype(np.complex128 if d.kind == "c" else np.float64)
    if x.ndim == 0:
        return x
    if d.kind == "c":
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keep))
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keep else np.squeeze(r, axis=axis)


def sum_extra(d, variant):
    if variant == "basic" and d.kind != "c":
        return [{"dtype": F64}, {"dim": [1], "dtype": F32}]
    return []


def scan_cases(name, npf, dom):
    def cases(rng, d, variant):
        shape = red_shape(variant)
        if shape is None:
            return []
        x = gen(rng, d, shape, dom)
        res = []
        dims = [0, 1, -1] if len(shape) == 2 else [0]
        for dim in dims:
            v = hp(x, d)
            if d is B:
                v = v.astype(np.int64)
            exp = v if v.ndim == 0 else npf(v, axis=dim)
            res.append(Case([(x, d)], {"dim": dim}, exp, acc64(d), mag=sum_mag(x, d)))
        if variant == "basic" and d.kind != "c":
            v = hp(x, d).astype(np.float64)
            res.append(Case([(x, d)], {"dim": 1, "dtype": F64}, npf(v, axis=1), F64,
                            mag=sum_mag(x, d)))
        return res
    return cases


# ---- matmul -------------------------------------------------------------------------------
def matmul_cases(rng, d, variant):
    shapes = {
        "basic": [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,))],
        "broadcast": [((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 4), (4, 5)), ((5,), (2, 5, 3))],
        "noncontig": [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 3))],
        "zero": [((0, 4), (4, 5)), ((3, 0), (0, 5)), ((2, 0, 3), (3, 4))],
    }.get(variant)
    if shapes is None:
        return []
    dom = Dom(-2, 2, -3, 3)
    res = []
    for sa, sb in shapes:
        a = gen(rng, d, sa, dom)
        b = gen(rng, d, sb, dom)
        exp = np.matmul(hp(a, d), hp(b, d))
        if is_int(d):
            exp = wrap_int(exp, d)
        ma = np.abs(hp(a, d).astype(np.complex128))
        mb = np.abs(hp(b, d).astype(np.complex128))
        m = float(np.max(np.matmul(ma, mb), initial=1.0))
        res.append(Case([(a, d), (b, d)], {}, exp, d, mag=m))
    return res


# ---- shapes and views ---------------------------------------------------------------------
def shape_cases(table):
    """table: variant -> list of (input shape, attrs, numpy function of the array)."""
    def cases(rng, d, variant):
        res = []
        for shape, attrs, f in table.get(variant, []):
            x = gen(rng, d, shape)
            res.append(Case([(x, d)], attrs, f(x), d, exact=True))
        return res
    return cases


def S(view_table_basic, **kw):
    t = {"basic": view_table_basic}
    t.update(kw)
    return t


def sl(dim, start=None, end=None, step=1):
    def f(x):
        idx = [slice(None)] * x.ndim
        idx[dim] = slice(start, end, step)
        return x[tuple(idx)]
    return f


def narrow_f(dim, start, length):
    def f(x):
        idx = [slice(None)] * x.ndim
        idx[dim] = slice(start, start + length)
        return x[tuple(idx)]
    return f


def squeeze_f(dims):
    def f(x):
        if dims is None:
            return np.squeeze(x)
        ax = tuple(dd for dd in dims if x.shape[dd] == 1)
        return np.squeeze(x, axis=ax) if ax else x
    return f


def flatten_f(start=0, end=-1):
    def f(x):
        if x.ndim == 0:
            return x.reshape(1)
        s = start % x.ndim
        e = end % x.ndim
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.size else \
            x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])
    return f


def roll_f(shifts, dims):
    def f(x):
        if dims is None:
            return np.roll(x.reshape(-1), shifts[0]).reshape(x.shape)
        return np.roll(x, shifts, axis=dims)
    return f


def tri_f(upper, k):
    return (lambda x: np.triu(x, k)) if upper else (lambda x: np.tril(x, k))


SHAPE_TABLES = {
    "reshape": S([((3, 4), {"shape": [4, 3]}, lambda x: x.reshape(4, 3)),
                  ((3, 4), {"shape": [2, -1]}, lambda x: x.reshape(2, -1)),
                  ((2, 3, 4), {"shape": [24]}, lambda x: x.reshape(24))],
                 noncontig=[((3, 4), {"shape": [12]}, lambda x: x.reshape(12)),
                            ((3, 4), {"shape": [2, 6]}, lambda x: x.reshape(2, 6))],
                 zero=[((0, 4), {"shape": [2, 0, 2]}, lambda x: x.reshape(2, 0, 2))],
                 **{"0d": [((), {"shape": [1, 1]}, lambda x: x.reshape(1, 1)),
                           ((), {"shape": []}, lambda x: x)]}),
    "view": S([((3, 4), {"shape": [4, 3]}, lambda x: x.reshape(4, 3)),
               ((3, 4), {"shape": [-1]}, lambda x: x.reshape(-1))],
              noncontig=[((3, 4), {"shape": [3, 2, 2]}, lambda x: x.reshape(3, 2, 2))],
              zero=[((0, 4), {"shape": [0, 2, 2]}, lambda x: x.reshape(0, 2, 2))],
              **{"0d": [((), {"shape": [1]}, lambda x: x.reshape(1))]}),
    "permute": S([((2, 3, 4), {"dims": [2, 0, 1]}, lambda x: x.transpose(2, 0, 1)),
                  ((2, 3, 4), {"dims": [-1, 0, 1]}, lambda x: x.transpose(2, 0, 1))],
                 noncontig=[((3, 4), {"dims": [1, 0]}, lambda x: x.T)],
                 zero=[((2, 0, 3), {"dims": [1, 2, 0]}, lambda x: x.transpose(1, 2, 0))],
                 **{"0d": [((), {"dims": []}, lambda x: x)]}),
    "transpose": S([((3, 4), {"dim0": 0, "dim1": 1}, lambda x: x.T),
                    ((2, 3, 4), {"dim0": -1, "dim1": 0}, lambda x: np.swapaxes(x, -1, 0))],
                   noncontig=[((3, 4), {"dim0": 1, "dim1": 0}, lambda x: x.T)],
                   zero=[((0, 3), {"dim0": 0, "dim1": 1}, lambda x: x.T)]),
    "expand": S([((3, 1), {"shape": [3, 4]}, lambda x: np.broadcast_to(x, (3, 4))),
                 ((3, 1), {"shape": [-1, 4]}, lambda x: np.broadcast_to(x, (3, 4))),
                 ((3, 1), {"shape": [2, 3, 4]}, lambda x: np.broadcast_to(x, (2, 3, 4)))],
                noncontig=[((1, 4), {"shape": [3, 4]}, lambda x: np.broadcast_to(x, (3, 4)))],
                zero=[((0, 1), {"shape": [0, 4]}, lambda x: np.broadcast_to(x, (0, 4)))],
                **{"0d": [((), {"shape": [2, 3]}, lambda x: np.broadcast_to(x, (2, 3)))]}),
    "broadcast_to": S([((1, 4), {"shape": [3, 4]}, lambda x: np.broadcast_to(x, (3, 4))),
                       ((4,), {"shape": [2, 3, 4]}, lambda x: np.broadcast_to(x, (2, 3, 4)))],
                      noncontig=[((3, 1), {"shape": [2, 3, 5]},
                                  lambda x: np.broadcast_to(x, (2, 3, 5)))],
                      zero=[((0, 1), {"shape": [0, 3]}, lambda x: np.broadcast_to(x, (0, 3)))],
                      **{"0d": [((), {"shape": [2]}, lambda x: np.broadcast_to(x, (2,)))]}),
    "squeeze": S([((3, 1, 4, 1), {}, squeeze_f(None)),
                  ((3, 1, 4, 1), {"dim": [1]}, squeeze_f([1])),
                  ((3, 1, 4, 1), {"dim": [0, 3]}, squeeze_f([0, 3]))],
                 zero=[((0, 1, 4), {}, squeeze_f(None))],
                 **{"0d": [((), {}, lambda x: x)]}),
    "unsqueeze": S([((3, 4), {"dim": 0}, lambda x: x[None]),
                    ((3, 4), {"dim": 2}, lambda x: x[:, :, None]),
                    ((3, 4), {"dim": -1}, lambda x: x[..., None])],
                   noncontig=[((3, 4), {"dim": 1}, lambda x: x[:, None])],
                   zero=[((0, 4), {"dim": 1}, lambda x: x[:, None])],
                   **{"0d": [((), {"dim": 0}, lambda x: x.reshape(1))]}),
    "flatten": S([((2, 3, 4), {}, flatten_f()),
                  ((2, 3, 4), {"start_dim": 1}, flatten_f(1)),
                  ((2, 3, 4), {"start_dim": 0, "end_dim": 1}, flatten_f(0, 1))],
                 noncontig=[((3, 4), {}, flatten_f())],
                 zero=[((2, 0, 3), {}, flatten_f())],
                 **{"0d": [((), {}, flatten_f())]}),
    "slice": S([((5, 6), {"dim": 1, "start": 1, "end": 5, "step": 2}, sl(1, 1, 5, 2)),
                ((5, 6), {"dim": 0, "start": -3}, sl(0, -3)),
                ((5, 6), {"dim": 1, "end": -1}, sl(1, None, -1)),
                ((5, 6), {"dim": 0, "step": -1}, sl(0, None, None, -1)),
                ((5, 6), {"dim": 1, "start": 4, "end": 0, "step": -2}, sl(1, 4, 0, -2)),
                ((5, 6), {"dim": 1, "start": 10, "end": 20}, sl(1, 10, 20))],
               noncontig=[((5, 6), {"dim": 0, "start": 1, "step": 2}, sl(0, 1, None, 2))],
               zero=[((0, 4), {"dim": 1, "start": 1}, sl(1, 1))]),
    "select": S([((3, 4), {"dim": 0, "index": -1}, lambda x: x[-1]),
                 ((3, 4), {"dim": 1, "index": 2}, lambda x: x[:, 2])],
                noncontig=[((3, 4), {"dim": 1, "index": 0}, lambda x: x[:, 0])],
                zero=[((0, 4), {"dim": 1, "index": 3}, lambda x: x[:, 3])]),
    "narrow": S([((3, 5), {"dim": 1, "start": 1, "length": 3}, narrow_f(1, 1, 3)),
                 ((3, 5), {"dim": 0, "start": 0, "length": 0}, narrow_f(0, 0, 0))],
                noncontig=[((3, 5), {"dim": 0, "start": 1, "length": 2}, narrow_f(0, 1, 2))],
                zero=[((0, 5), {"dim": 1, "start": 1, "length": 2}, narrow_f(1, 1, 2))]),
    "flip": S([((3, 4), {"dims": [0]}, lambda x: x[::-1]),
               ((3, 4), {"dims": [0, 1]}, lambda x: x[::-1, ::-1]),
               ((2, 3, 4), {"dims": [-1]}, lambda x: x[..., ::-1])],
              noncontig=[((3, 4), {"dims": [1]}, lambda x: x[:, ::-1])],
              zero=[((0, 4), {"dims": [1]}, lambda x: x[:, ::-1])],
              **{"0d": [((), {"dims": []}, lambda x: x)]}),
    "roll": S([((3, 4), {"shifts": [1], "dims": [0]}, roll_f([1], [0])),
               ((3, 4), {"shifts": [2, -1], "dims": [0, 1]}, roll_f([2, -1], [0, 1])),
               ((3, 4), {"shifts": [3]}, roll_f([3], None)),
               ((3, 4), {"shifts": [-7], "dims": [1]}, roll_f([-7], [1]))],
              noncontig=[((3, 4), {"shifts": [1], "dims": [1]}, roll_f([1], [1]))],
              zero=[((0, 4), {"shifts": [1], "dims": [1]}, roll_f([1], [1]))]),
    "tril": S([((3, 4), {}, tri_f(False, 0)), ((3, 4), {"diagonal": 1}, tri_f(False, 1)),
               ((2, 3, 4), {"diagonal": -1}, tri_f(False, -1))],
              noncontig=[((4, 3), {}, tri_f(False, 0))],
              zero=[((0, 4), {}, tri_f(False, 0))]),
    "triu": S([((3, 4), {}, tri_f(True, 0)), ((3, 4), {"diagonal": 1}, tri_f(True, 1)),
               ((2, 3, 4), {"diagonal": -1}, tri_f(True, -1))],
              noncontig=[((4, 3), {}, tri_f(True, 0))],
              zero=[((0, 4), {}, tri_f(True, 0))]),
    "contiguous": S([((3, 4), {}, lambda x: x)], noncontig=[((3, 4), {}, lambda x: x)],
                    zero=[((0, 4), {}, lambda x: x)], **{"0d": [((), {}, lambda x: x)]}),
    "clone": S([((3, 4), {}, lambda x: x)], noncontig=[((3, 4), {}, lambda x: x)],
               zero=[((0, 4), {}, lambda x: x)], **{"0d": [((), {}, lambda x: x)]}),
}


def cat_cases(stack):
    def cases(rng, d, variant):
        if stack:
            table = {"basic": [([(3, 4), (3, 4)], 0), ([(3, 4), (3, 4), (3, 4)], 2),
                               ([(3, 4)], -1)],
                     "noncontig": [([(3, 4), (3, 4)], 1)],
                     "zero": [([(0, 4), (0, 4)], 1)],
                     "0d": [([(), ()], 0)]}
        else:
            table = {"basic": [([(2, 4), (3, 4)], 0), ([(3, 2), (3, 1), (3, 3)], 1),
                               ([(2, 3)], -1)],
                     "noncontig": [([(3, 4), (2, 4)], 0), ([(3, 4), (3, 2)], -1)],
                     "zero": [([(3, 2), (3, 0)], 1), ([(0, 4), (0, 4)], 0)]}
        res = []
        for shapes, dim in table.get(variant, []):
            xs = [gen(rng, d, s) for s in shapes]
            exp = (np.stack if stack else np.concatenate)([hp(x, d) for x in xs], axis=dim)
            res.append(Case([(x, d) for x in xs], {"dim": dim}, exp, d, variadic=True,
                            exact=True))
        return res
    return cases


def split_cases(rng, d, variant):
    table = {"basic": [((5, 4), {"split_size": 2}, lambda x: np.split(x, [2, 4])),
                       ((5, 4), {"sections": [1, 4]}, lambda x: np.split(x, [1])),
                       ((5, 4), {"split_size": 3, "dim": 1},
                        lambda x: np.split(x, [3], axis=1))],
             "noncontig": [((4, 5), {"split_size": 2, "dim": 1},
                            lambda x: np.split(x, [2, 4], axis=1))],
             "zero": [((0, 4), {"split_size": 2, "dim": 1},
                       lambda x: np.split(x, [2], axis=1))]}
    res = []
    for shape, attrs, f in table.get(variant, []):
        x = gen(rng, d, shape)
        exps = f(x)
        res.append(Case([(x, d)], attrs, exps, d, exact=True))
    return res


def chunk_cases(rng, d, variant):
    table = {"basic": [((5, 4), {"chunks": 3}, lambda x: np.split(x, [2, 4])),
                       ((6, 4), {"chunks": 4}, lambda x: np.split(x, [2, 4])),
                       ((5, 4), {"chunks": 2, "dim": 1}, lambda x: np.split(x, [2], axis=1))],
             "noncontig": [((4, 5), {"chunks": 2, "dim": 1},
                            lambda x: np.split(x, [3], axis=1))],
             "zero": [((0, 4), {"chunks": 2, "dim": 1}, lambda x: np.split(x, [2], axis=1))]}
    res = []
    for shape, attrs, f in table.get(variant, []):
        x = gen(rng, d, shape)
        res.append(Case([(x, d)], attrs, f(x), d, exact=True))
    return res


# ---- indexing ---------------------------------------------------------------------------
def gather_cases(rng, d, variant):
    table = {"basic": [((3, 4), (3, 2), 1), ((3, 4), (2, 4), 0), ((3, 4), (3, 5), -1)],
             "noncontig": [((3, 4), (3, 3), 1)],
             "zero": [((3, 4), (0, 4), 0), ((0, 4), (0, 2), 1)]}
    res = []
    for xs, isz, dim in table.get(variant, []):
        x = gen(rng, d, xs)
        n = xs[dim]
        idx = rng.integers(0, max(n, 1), isz).astype(np.int64)
        exp = np.take_along_axis(hp(x, d), idx, axis=dim) if idx.size else \
            np.zeros(isz, hp(x, d).dtype)
        res.append(Case([(x, d), (idx, I64)], {"dim": dim}, exp, d, exact=True))
    return res


def scatter_ref(x, dim, idx, src, reduce):
    out = x.copy()
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        tgt = tuple(tgt)
        if reduce is None:
            out[tgt] = src[pos]
        elif reduce == "add":
            out[tgt] = out[tgt] + src[pos]
        else:
            out[tgt] = out[tgt] * src[pos]
    return out


def distinct_index(rng, n, shape, dim):
    idx = np.zeros(shape, np.int64)
    other = shape[1 - dim]
    for j in range(other):
        perm = rng.permutation(n)[:shape[dim]]
        if dim == 0:
            idx[:, j] = perm
        else:
            idx[j, :] = perm
    return idx


def scatter_cases(rng, d, variant):
    res = []
    table = {"basic": [((3, 4), (2, 4), (2, 4), 0, None), ((3, 4), (3, 2), (3, 3), 1, None),
                       ((3, 4), (3, 4), (3, 4), 0, "add"),
                       ((3, 4), (2, 4), (2, 4), 1, "multiply")],
             "noncontig": [((3, 4), (3, 4), (3, 4), 0, None)],
             "zero": [((3, 4), (0, 4), (0, 4), 0, None)]}
    for xs, isz, ssz, dim, red in table.get(variant, []):
        if red is not None and d is B:
            continue
        x = gen(rng, d, xs, Dom(-2, 2, -2, 2))
        src = gen(rng, d, ssz, Dom(-2, 2, -2, 2))
        if red is None:
            idx = distinct_index(rng, xs[dim], isz, dim) if isz[0] else \
                np.zeros(isz, np.int64)
        else:
            idx = rng.integers(0, xs[dim], isz).astype(np.int64)
        exp = scatter_ref(hp(x, d), dim, idx, hp(src, d), red)
        if is_int(d):
            exp = wrap_int(exp, d)
        attrs = {"dim": dim}
        if red is not None:
            attrs["reduce"] = red
        res.append(Case([(x, d), (idx, I64), (src, d)], attrs, exp, d, mag=8.0))
    return res


def index_select_cases(rng, d, variant):
    table = {"basic": [((3, 4), [2, 0, 2], 0), ((3, 4), [3, 1], 1), ((2, 3, 4), [0], -1)],
             "noncontig": [((3, 4), [1, 1, 0, 3], 1)],
             "zero": [((0, 4), [1, 0], 1), ((3, 4), [], 0)]}
    res = []
    for xs, idx, dim in table.get(variant, []):
        x = gen(rng, d, xs)
        i = np.array(idx, np.int64)
        exp = np.take(hp(x, d), i, axis=dim)
        res.append(Case([(x, d), (i, I64)], {"dim": dim}, exp, d, exact=True))
    return res


def fill_value(d):
    if d is B:
        return True
    if is_int(d):
        return 7
    if d.kind == "c":
        return 1.5 - 2j
    return 2.5


def masked_fill_cases(rng, d, variant):
    table = {"basic": [((3, 4), (3, 4))], "broadcast": [((3, 4), (4,)), ((3, 4), (3, 1))],
             "noncontig": [((3, 4), (3, 4))], "zero": [((0, 4), (0, 4)), ((0, 4), (4,))],
             "0d": [((), ())]}
    res = []
    for xs, ms in table.get(variant, []):
        x = gen(rng, d, xs)
        m = rng.random(ms) < 0.5
        v = fill_value(d)
        exp = np.where(m, np.array(v).astype(hp(x, d).dtype), hp(x, d))
        res.append(Case([(x, d), (m, B)], {"value": v}, exp, d, exact=True))
    return res


# ---- creation -----------------------------------------------------------------------------
def creation_shape(variant):
    return {"basic": [2, 3], "zero": [0, 3], "0d": []}.get(variant)


def const_cases(value):
    def cases(rng, d, variant):
        shape = creation_shape(variant)
        if shape is None:
            return []
        exp = np.full(shape, value, dtype=np.complex128 if d.kind == "c" else np.float64)
        res = [Case([], {"shape": shape, "dtype": d}, exp, d, exact=True)]
        if d is F32:
            res.append(Case([], {"shape": shape}, exp, F32, exact=True))
        return res
    return cases


def full_cases(rng, d, variant):
    shape = creation_shape(variant)
    if shape is None:
        return []
    v = fill_value(d)
    exp = np.full(shape, v)
    res = [Case([], {"shape": shape, "fill_value": v, "dtype": d}, exp, d, exact=True)]
    inferred = {F32: 2.5, I64: 7, B: True, C64: 1.5 - 2j}
    if d in inferred:
        res.append(Case([], {"shape": shape, "fill_value": inferred[d]},
                        np.full(shape, inferred[d]), d, exact=True))
    return res


def scalar_tensor_cases(rng, d, variant):
    if variant != "0d":
        return []
    v = fill_value(d)
    exp = np.array(v)
    res = [Case([], {"value": v, "dtype": d}, exp, d, exact=True),
           Case([], {"value": v, "dtype": d, "wrapped": True}, exp, d, exact=True)]
    inferred = {F32: 2.5, I64: 7, B: True, C64: 1.5 - 2j}
    if d in inferred:
        res.append(Case([], {"value": inferred[d]}, np.array(inferred[d]), d, exact=True))
    return res


def arange_cases(rng, d, variant):
    res = []
    if variant == "basic":
        res.append(Case([], {"end": 5, "dtype": d}, np.arange(5), d, exact=True))
        res.append(Case([], {"start": 1, "end": 10, "step": 3, "dtype": d},
                        np.arange(1, 10, 3), d, exact=True))
        if d.kind == "f":
            res.append(Case([], {"start": 0.0, "end": 1.0, "step": 0.25, "dtype": d},
                            np.arange(0, 1, 0.25), d))
        if d.kind == "i":
            res.append(Case([], {"start": 5, "end": -1, "step": -2, "dtype": d},
                            np.arange(5, -1, -2), d, exact=True))
        if d is I64:
            res.append(Case([], {"end": 4}, np.arange(4), I64, exact=True))
        if d is F32:
            res.append(Case([], {"start": 0.5, "end": 2}, np.arange(0.5, 2), F32))
    elif variant == "zero":
        res.append(Case([], {"start": 3, "end": 3, "dtype": d}, np.arange(3, 3), d))
    return res


def linspace_cases(rng, d, variant):
    res = []
    if variant == "basic":
        res.append(Case([], {"start": 0, "end": 8, "steps": 5, "dtype": d},
                        np.linspace(0, 8, 5), d))
        res.append(Case([], {"start": 3, "end": 3, "steps": 1, "dtype": d}, np.array([3.0]),
                        d))
        if d.kind in "fc":
            res.append(Case([], {"start": -1.0, "end": 1.0, "steps": 9, "dtype": d},
                            np.linspace(-1, 1, 9), d))
        if d is F32:
            res.append(Case([], {"start": 0, "end": 1, "steps": 3}, np.linspace(0, 1, 3), F32))
    elif variant == "zero":
        res.append(Case([], {"start": 0, "end": 1, "steps": 0, "dtype": d}, np.zeros(0), d))
    return res


def eye_cases(rng, d, variant):
    if variant == "basic":
        return [Case([], {"n": 3, "dtype": d}, np.eye(3), d, exact=True),
                Case([], {"n": 3, "m": 4, "dtype": d}, np.eye(3, 4), d, exact=True),
                Case([], {"n": 4, "m": 2, "dtype": d}, np.eye(4, 2), d, exact=True)]
    if variant == "zero":
        return [Case([], {"n": 0, "dtype": d}, np.eye(0), d, exact=True),
                Case([], {"n": 2, "m": 0, "dtype": d}, np.eye(2, 0), d, exact=True)]
    return []


def like_cases(value):
    def cases(rng, d, variant):
        shape = {"basic": (2, 3), "noncontig": (3, 4), "zero": (0, 3), "0d": ()}.get(variant)
        if shape is None:
            return []
        x = gen(rng, d, shape)
        v = value if value is not None else fill_value(d)
        attrs = {} if value is not None else {"fill_value": v}
        exp = np.full(shape, v)
        res = [Case([(x, d)], dict(attrs), exp, d, exact=True)]
        if d is not F64:
            a2 = dict(attrs)
            a2["dtype"] = F64
            if value is None and d.kind == "c":
                a2["dtype"] = C128
            res.append(Case([(x, d)], a2, exp, a2["dtype"], exact=True))
        return res
    return cases


# ---- the table ---------------------------------------------------------------------------
SPECS = {}
for _n in UNARY_FLOAT:
    SPECS[_n] = unary_float_cases(_n)

SPECS.update({
    "neg": unary_cases(lambda x, d, a: wrap_int(-x, d)),
    "abs": unary_cases(lambda x, d, a: np.abs(x) if d is not B else x,
                       out=lambda d, a: to_real(d)),
    "sign": sign_cases,
    "relu": unary_cases(lambda x, d, a: np.maximum(x, 0)),
    "floor": unary_cases(lambda x, d, a: np.floor(x) if d.kind == "f" else x),
    "ceil": unary_cases(lambda x, d, a: np.ceil(x) if d.kind == "f" else x),
    "trunc": unary_cases(lambda x, d, a: np.trunc(x) if d.kind == "f" else x),
    "round": unary_cases(lambda x, d, a: np.round(x, a.get("decimals", 0))
                         if d.kind == "f" else x,
                         attrs_list=({}, lambda d: {"decimals": 2} if d.kind == "f" else None),
                         special=with_ties),
    "clamp": multi(clamp_attrs, clamp_ref),
    "real": unary_cases(lambda x, d, a: np.real(x), out=lambda d, a: to_real(d)),
    "imag": unary_cases(lambda x, d, a: np.imag(x), out=lambda d, a: to_real(d)),
    "conj": unary_cases(lambda x, d, a: np.conj(x) if d.kind == "c" else x),
    "angle": unary_cases(lambda x, d, a: np.angle(x.astype(np.complex128)
                                                  if d.kind == "c" else x.astype(np.float64)),
                         out=angle_out),
    "logical_not": unary_cases(lambda x, d, a: x == 0, out=B, dom=LOGIC_DOM),
    "bitwise_not": unary_cases(lambda x, d, a: ~x if d is B else wrap_int(~x, d),
                               dom=Dom(ilo=-100, ihi=200)),
    "isnan": unary_cases(lambda x, d, a: np.isnan(x) if d.kind in "fc" else x != x,
                         out=B, special=with_specials),
    "isinf": unary_cases(lambda x, d, a: np.isinf(x) if d.kind in "fc" else
                         np.zeros(x.shape, bool), out=B, special=with_specials),
    "isfinite": unary_cases(lambda x, d, a: np.isfinite(x) if d.kind in "fc" else
                            np.ones(x.shape, bool), out=B, special=with_specials),
    "cast": cast_cases,

    "add": binary_cases(add_ref, attrs_list=({}, alpha_attrs)),
    "sub": binary_cases(sub_ref, attrs_list=({}, alpha_attrs)),
    "mul": binary_cases(mul_ref),
    "div": binary_cases(div_ref, out=div_out, gens=(gen, nonzero_gen),
                        attrs_list=({}, div_attrs("trunc"), div_attrs("floor"))),
    "floor_divide": binary_cases(floordiv_ref, gens=(gen, nonzero_gen)),
    "remainder": binary_cases(rem_ref, gens=(gen, nonzero_gen)),
    "pow": binary_cases(pow_ref, gens=pow_gens()),
    "atan2": binary_cases(lambda a, b, d, at: np.arctan2(a.astype(np.float64),
                                                         b.astype(np.float64)),
                          out=lambda d, a: int_to_float(d)),
    "maximum": binary_cases(lambda a, b, d, at: np.maximum(a, b), nan=True),
    "minimum": binary_cases(lambda a, b, d, at: np.minimum(a, b), nan=True),
    "eq": binary_cases(lambda a, b, d, at: a == b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "ne": binary_cases(lambda a, b, d, at: a != b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "lt": binary_cases(lambda a, b, d, at: a < b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "le": binary_cases(lambda a, b, d, at: a <= b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "gt": binary_cases(lambda a, b, d, at: a > b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "ge": binary_cases(lambda a, b, d, at: a >= b, out=B, doms=(CMP_DOM, CMP_DOM)),
    "logical_and": binary_cases(lambda a, b, d, at: (a != 0) & (b != 0), out=B,
                                doms=(LOGIC_DOM, LOGIC_DOM)),
    "logical_or": binary_cases(lambda a, b, d, at: (a != 0) | (b != 0), out=B,
                               doms=(LOGIC_DOM, LOGIC_DOM)),
    "logical_xor": binary_cases(lambda a, b, d, at: (a != 0) ^ (b != 0), out=B,
                                doms=(LOGIC_DOM, LOGIC_DOM)),
    "bitwise_and": binary_cases(lambda a, b, d, at: (a & b).astype(d.numpy_dtype),
                                gens=(full_range_gen, full_range_gen)),
    "bitwise_or": binary_cases(lambda a, b, d, at: (a | b).astype(d.numpy_dtype),
                               gens=(full_range_gen, full_range_gen)),
    "bitwise_xor": binary_cases(lambda a, b, d, at: (a ^ b).astype(d.numpy_dtype),
                                gens=(full_range_gen, full_range_gen)),
    "bitwise_left_shift": binary_cases(shl_ref, gens=shift_gens(True)),
    "bitwise_right_shift": binary_cases(shr_ref, gens=shift_gens(False)),
    "where": where_cases,

    "sum": reduce_cases("sum", np_sum, sum_out, extra=sum_extra, magfn=sum_mag),
    "mean": reduce_cases("mean", np_mean, lambda d, a: d, magfn=sum_mag),
    "prod": reduce_cases("prod", np_prod, sum_out, dom=Dom(-1.5, 1.5, -3, 3)),
    "amax": reduce_cases("amax", np_amax, lambda d, a: d, nan=True),
    "amin": reduce_cases("amin", np_amin, lambda d, a: d, nan=True),
    "argmax": reduce_cases("argmax", np_argmax(np.argmax), lambda d, a: I64, intdim=True),
    "argmin": reduce_cases("argmin", np_argmax(np.argmin), lambda d, a: I64, intdim=True),
    "var": reduce_cases("var", np_var(False), lambda d, a: to_real(d), extra=var_extra,
                        magfn=lambda x, d: max(1.0, absmax(x, d)) ** 2 * 4),
    "std": reduce_cases("std", np_var(True), lambda d, a: to_real(d), extra=var_extra,
                        magfn=lambda x, d: max(1.0, absmax(x, d)) * 4),
    "all": reduce_cases("all", np_all, lambda d, a: B, dom=LOGIC_DOM),
    "any": reduce_cases("any", np_any, lambda d, a: B, dom=LOGIC_DOM),
    "logsumexp": reduce_cases("logsumexp", np_lse, lambda d, a: int_to_float(d),
                              magfn=lambda x, d: 4.0),
    "cumsum": scan_cases("cumsum", np.cumsum, DEFAULT),
    "cumprod": scan_cases("cumprod", np.cumprod, Dom(-1.5, 1.5, -3, 3)),

    "matmul": matmul_cases,
    "cat": cat_cases(False),
    "stack": cat_cases(True),
    "split": split_cases,
    "chunk": chunk_cases,
    "gather": gather_cases,
    "scatter": scatter_cases,
    "index_select": index_select_cases,
    "masked_fill": masked_fill_cases,

    "zeros": const_cases(0),
    "ones": const_cases(1),
    "empty": const_cases(0),
    "full": full_cases,
    "scalar_tensor": scalar_tensor_cases,
    "arange": arange_cases,
    "linspace": linspace_cases,
    "eye": eye_cases,
    "zeros_like": like_cases(0),
    "ones_like": like_cases(1),
    "empty_like": like_cases(0),
    "full_like": like_cases(None),
})
for _n, _t in SHAPE_TABLES.items():
    SPECS[_n] = shape_cases(_t)

RANDOM_OPS = ("rand", "randn", "randint", "rand_like", "randn_like", "randint_like")
for _n in RANDOM_OPS:
    SPECS[_n] = "random"
SPECS.update(NN_SPECS)
SPECS.update(SPECIAL_SPECS)
SPECS.update(FFT_SPECS)
SPECS.update(LINALG_SPECS)
SPECS.update(LAPACK_EXT_SPECS)
SPECS.update(CONTRACT_SPECS)
SPECS.update(NORMS_SPECS)
SPECS.update(INTERP_SPECS)
SPECS.update(SORT_SPECS)


# ---- running cases ------------------------------------------------------------------------
TOL = {F16: (1e-2, 1e-2), BF16: (2e-2, 2e-2), F32: (2e-5, 1e-5), F64: (1e-10, 1e-12),
       C64: (2e-5, 1e-5), C128: (1e-10, 1e-12)}


def upload(client, arr, d, noncontig):
    """Uploads arr as dtype d; with noncontig, as a transposed or stepped view made in the
    daemon (and checks that it is not contiguous there)."""
    if not noncontig or arr.ndim == 0 or arr.size <= 1:
        return td.tensor(arr, dtype=d, client=client)
    if arr.ndim == 1:
        big = np.zeros((arr.shape[0] * 2,), arr.dtype)
        big[::2] = arr
        t = td.tensor(big, dtype=d, client=client)[::2]
    else:
        t = td.tensor(np.ascontiguousarray(np.swapaxes(arr, -1, -2)), dtype=d,
                      client=client).transpose(-1, -2)
    assert t.shape == arr.shape
    if sum(1 for s in arr.shape if s > 1) >= (2 if arr.ndim > 1 else 1):
        assert not t.is_contiguous(), "noncontig input is contiguous: strides %s" % (
            t.stride(),)
    return t


def check_values(got, exp, d, mag, exact, what):
    assert got.shape == exp.shape, "%s: shape %s, expected %s" % (what, got.shape, exp.shape)
    if d.kind in "biu":
        e = exp.astype(np.int64).astype(d.numpy_dtype) if exp.dtype.kind in "iu" \
            and is_int(d) else exp.astype(d.numpy_dtype)
        np.testing.assert_array_equal(got, e, err_msg=what)
        return
    if exact and d.kind == "f" and d is not F64:
        exp = round_to(np.asarray(exp, np.float64), d)
    rtol, atol = TOL[d]
    if d.kind == "c":
        np.testing.assert_allclose(got.astype(np.complex128), exp.astype(np.complex128),
                                   rtol=rtol, atol=atol * mag, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), np.real(exp).astype(np.float64),
                                   rtol=rtol, atol=atol * mag, equal_nan=True, err_msg=what)


def run_case(client, name, case, variant):
    nc = variant == "noncontig"
    ins = [upload(client, a, d, nc) for a, d in case.inputs]
    if case.variadic:
        out = td.op(name, ins, client=client, **case.attrs)
    else:
        out = td.op(name, *ins, client=client, **case.attrs)
    outs = list(out) if isinstance(out, tuple) else [out]
    what = "%s %s attrs=%s" % (name, variant, case.attrs)
    assert len(outs) == len(case.expected), "%s: %d outputs, expected %d" % (
        what, len(outs), len(case.expected))
    for o, e, d in zip(outs, case.expected, case.out_dtypes):
        assert o.dtype == d, "%s: result dtype %s, expected %s" % (what, o.dtype, d)
        e = np.asarray(e)
        assert o.shape == e.shape, "%s: shape %s, expected %s" % (what, o.shape, e.shape)
        check_values(o.numpy(), e, d, case.mag, case.exact, what)


def case_rng(name, d, variant):
    return np.random.default_rng(zlib.crc32(("%s/%s/%s" % (name, d.name, variant)).encode()))


def all_params():
    params = []
    sch = tdtest_daemon.schema()
    for name in sorted(sch):
        spec = SPECS.get(name)
        if spec is None or spec == "random":
            continue
        for d in sch[name].dtypes:
            for v in VARIANTS:
                if spec(case_rng(name, d, v), d, v):
                    params.append(pytest.param(name, d, v, id="%s-%s-%s" % (name, d.name, v)))
    return params


def random_params():
    sch = tdtest_daemon.schema()
    return [pytest.param(n, d, id="%s-%s" % (n, d.name)) for n in RANDOM_OPS if n in sch
            for d in sch[n].dtypes]


def pytest_generate_tests(metafunc):
    if "op_variant" in metafunc.fixturenames:
        metafunc.parametrize("op_name,dtype,op_variant", all_params())
    if "random_op" in metafunc.fixturenames:
        metafunc.parametrize("random_op,dtype", random_params())


# ---- the tests -----------------------------------------------------------------------------
# Ops that read or change autograd state have no NumPy counterpart; tests/python/
# test_autograd.py covers each of them (and checks that it does).
AUTOGRAD_OPS = {"detach", "alias", "requires_grad_", "grad", "set_grad", "backward",
                "enter_dual_level", "exit_dual_level", "make_dual", "dual_primal",
                "dual_tangent", "copy_",
                # In-place optimizer steps: tests/python/test_optim.py covers them.
                "sgd_step", "adam_step"}


def test_every_op_has_samples(client):
    published = set(client.schema()) - AUTOGRAD_OPS
    assert published == set(SPECS), (
        "ops without samples: %s; samples for unknown ops: %s"
        % (sorted(published - set(SPECS)), sorted(set(SPECS) - published)))


def test_every_op_is_exercised(client):
    # Each non-random op has at least one case with each of its dtypes.
    sch = client.schema()
    for name, spec in SPECS.items():
        if spec == "random":
            continue
        for d in sch[name].dtypes:
            n = sum(len(spec(case_rng(name, d, v), d, v)) for v in VARIANTS)
            assert n > 0, "%s has no case for %s" % (name, d)


def test_op(client, op_name, dtype, op_variant):
    spec = SPECS[op_name]
    cases = spec(case_rng(op_name, dtype, op_variant), dtype, op_variant)
    assert cases
    for case in cases:
        run_case(client, op_name, case, op_variant)


def _random(name, d, shape, client, **kw):
    if name.endswith("_like"):
        base = td.zeros(*shape, dtype=d if name != "randint_like" else d, client=client)
        return td.op(name, base, client=client, **kw)
    return td.op(name, client=client, shape=list(shape), dtype=d, **kw)


def _random_kw(name):
    return {"low": 2, "high": 7} if name.startswith("randint") else {}


def test_random_op(daemon, client, random_op, dtype):
    name, d = random_op, dtype
    kw = _random_kw(name)
    t = _random(name, d, (3, 5), client, **kw)
    assert t.shape == (3, 5) and t.dtype == d
    v = t.numpy()
    parts = [v.real, v.imag] if d.kind == "c" else [v]
    for p in parts:
        assert np.all(np.isfinite(p))
        if name.startswith("randint"):
            assert np.all(p >= 2) and np.all(p < 7) and np.all(p == np.floor(p))
        elif name.startswith("rand") and not name.startswith("randn"):
            assert np.all(p >= 0) and np.all(p < 1)
    # zero-size and 0-d shapes
    assert _random(name, d, (0, 4), client, **kw).numpy().shape == (0, 4)
    z = _random(name, d, (), client, **kw)
    assert z.shape == () and z.dtype == d
    # reproducibility: same seed same values, other seed other values
    with td.Client(daemon.unix_address, seed=42) as c1, \
            td.Client(daemon.unix_address, seed=42) as c2, \
            td.Client(daemon.unix_address, seed=43) as c3:
        a = _random(name, d, (64,), c1, **kw).numpy()
        b = _random(name, d, (64,), c2, **kw).numpy()
        c = _random(name, d, (64,), c3, **kw).numpy()
        a2 = _random(name, d, (64,), c1, **kw).numpy()
        assert c1.seed == 42 and c3.seed == 43
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, a2)
    # statistics over 10^5 samples (float32 / float64 / complex64 / int64 only: cheap)
    if d in (F32, F64, C64, I64):
        s = _random(name, d, (100000,), client, **kw).numpy()
        for p in ([s.real, s.imag] if d.kind == "c" else [s.astype(np.float64)]):
            if name.startswith("randint"):
                mean, std = 4.0, np.sqrt((5 ** 2 - 1) / 12.0)
                assert set(np.unique(p).tolist()) == {2, 3, 4, 5, 6}
            elif name.startswith("randn"):
                mean, std = 0.0, (np.sqrt(0.5) if d.kind == "c" else 1.0)
            else:
                mean, std = 0.5, np.sqrt(1 / 12.0)
            assert abs(p.mean() - mean) < 0.01 * max(std, 0.3) * 3, (p.mean(), mean)
            assert abs(p.std() - std) < 0.02 * std, (p.std(), std)


def test_random_default_dtypes(client):
    assert td.rand(3, client=client).dtype == F32
    assert td.randn(3, client=client).dtype == F32
    assert td.randint(0, 5, (3,), client=client).dtype == I64
    x = td.zeros(2, dtype=F64, client=client)
    assert td.rand_like(x).dtype == F64
    assert td.randint_like(x, 4).dtype == F64
