"""NumPy references and sample cases for ops_sort.c (sorting, searching, sets and the Array API
elementwise extras) in test_ops.py's SPECS format: SORT_SPECS maps an op name to
cases(rng, dtype, variant) returning objects with test_ops.Case's fields.

References are NumPy on the values as stored in the input dtype, never the daemon's output:
np.argsort(kind="stable") for sort/argsort (descending: the stable ascending order of the
reversed input, reversed, which keeps ties in input order and puts NaN first, like
torch.sort(descending=True, stable=True)), np.searchsorted(side=left/right) row by row,
np.count_nonzero, np.argwhere, np.unique(return_index, return_inverse, return_counts,
equal_nan=False) (the Array API rules: every NaN distinct, -0.0 equal to 0.0), np.copysign,
np.hypot, np.logaddexp, np.nextafter (on the bits for bfloat16) and np.signbit.

Samples include ties, NaN, +-inf and -0.0 where the dtype has them. Cases whose first
floating input is tie-free and finite (the first case of each variant of sort) are the ones
test_gradcheck.py differentiates; the tie cases carry a NaN or inf so the gradient checks
skip them.
"""
import numpy as np

import tensord as td
from tensord.client import bf16_bits_to_f32, f32_to_bf16_bits
from spec_common import Case, round_to

B, U8, I8, I16, I32, I64 = td.bool_, td.uint8, td.int8, td.int16, td.int32, td.int64
F16, BF16, F32, F64 = td.float16, td.bfloat16, td.float32, td.float64
C64, C128 = td.complex64, td.complex128


# ---- sample values ------------------------------------------------------------------------
def rnd(x, d):
    """float64 values rounded to dtype d, as stored (bfloat16 in a float32 array)."""
    return round_to(np.asarray(x, np.float64), d)


def gen(rng, d, shape):
    """Random values of d: floats in [-3, 3], integers in [-5, 5] ([0, 10] for uint8)."""
    if d is B:
        return rng.random(shape) < 0.5
    if d.kind in "iu":
        lo = 0 if d is U8 else -5
        return rng.integers(lo, lo + 11, shape).astype(d.numpy_dtype)
    if d.kind == "c":
        z = rng.uniform(-2, 2, shape) + 1j * rng.uniform(-2, 2, shape)
        return z.astype(d.numpy_dtype)
    return rnd(rng.uniform(-3, 3, shape), d)


def distinct(rng, d, shape):
    """Values without ties, 0.25 apart (exact in every float dtype), in random order."""
    n = int(np.prod(shape))
    p = rng.permutation(n)
    if d is B:
        return (p.reshape(shape) % 2).astype(bool)
    if d.kind in "iu":
        return (p - (0 if d is U8 else n // 2)).reshape(shape).astype(d.numpy_dtype)
    return rnd(((p - n // 2) * 0.25 + 0.125).reshape(shape), d)


SPECIAL_FLOATS = [-1.5, -0.0, 0.0, 0.5, 2.0, np.inf, -np.inf, np.nan]


def with_ties(rng, d, shape):
    """Values drawn from a small set (many ties); floats include NaN, +-inf, -0.0 and 0.0 and
    always hold at least one NaN (so gradient checks skip the case)."""
    if d is B:
        return rng.random(shape) < 0.5
    if d.kind in "iu":
        ch = [0, 1, 2, 7] if d is U8 else [-3, 0, 2, 7]
        return np.array(ch)[rng.integers(0, len(ch), shape)].astype(d.numpy_dtype)
    x = np.array(SPECIAL_FLOATS)[rng.integers(0, len(SPECIAL_FLOATS), shape)]
    if x.size:
        x.flat[0] = np.nan
    return rnd(x, d)


def hp(x, d):
    if d.kind == "f":
        return np.asarray(x, np.float64)
    if d.kind == "c":
        return np.asarray(x, np.complex128)
    return np.asarray(x)


# ---- sort, argsort ------------------------------------------------------------------------
def np_sort(x, dim, desc):
    """(values, indices) of a stable sort along dim; descending keeps ties in input order and
    puts NaN first."""
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    xm = np.moveaxis(x, dim, -1)
    n = xm.shape[-1]
    if desc:
        idx = n - 1 - np.argsort(xm[..., ::-1], axis=-1, kind="stable")[..., ::-1]
    else:
        idx = np.argsort(xm, axis=-1, kind="stable")
    vals = np.take_along_axis(xm, idx, -1)
    return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim).astype(np.int64)


SORT_ATTRS = [{}, {"dim": 0}, {"descending": True}, {"dim": 0, "descending": True},
              {"dim": -1, "stable": False}]


def sort_cases(argsort):
    def cases(rng, d, variant):
        res = []

        def add(x, attrs):
            ndim = x.ndim
            dim = attrs.get("dim", -1) if ndim else 0
            v, i = np_sort(x, dim, attrs.get("descending", False))
            if argsort:
                res.append(Case([(x, d)], dict(attrs), [i], [I64]))
            else:
                res.append(Case([(x, d)], dict(attrs), [hp(v, d), i], [d, I64]))

        if variant in ("basic", "noncontig"):
            shape = (3, 5) if variant == "basic" else (4, 5)
            # Tie-free first (the gradient checks use it), then ties and specials.
            add(distinct(rng, d, shape), {})
            add(distinct(rng, d, shape), {"dim": 0, "descending": True})
            for attrs in SORT_ATTRS:
                add(with_ties(rng, d, shape), attrs)
            if variant == "basic":
                add(with_ties(rng, d, (2, 3, 4)), {"dim": 1})
                add(with_ties(rng, d, (40,)), {"descending": True})
                add(with_ties(rng, d, (130,)), {})   # longer than one insertion-sort run
        elif variant == "zero":
            add(gen(rng, d, (0, 4)), {})
            add(gen(rng, d, (3, 0)), {"dim": 0})
        elif variant == "0d":
            add(distinct(rng, d, ()), {})
            add(gen(rng, d, ()), {"dim": 0, "descending": True})
        return res
    return cases


# ---- searchsorted -------------------------------------------------------------------------
def np_searchsorted(seq, vals, right):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return np.searchsorted(seq, vals, side=side).astype(np.int64)
    rows = int(np.prod(seq.shape[:-1]))
    s2 = seq.reshape(rows, seq.shape[-1])
    v2 = vals.reshape(rows, vals.shape[-1])
    out = np.stack([np.searchsorted(s, v, side=side) for s, v in zip(s2, v2)]) \
        if s2.shape[0] else np.zeros(v2.shape, np.int64)
    return out.reshape(vals.shape).astype(np.int64)


def sorted_seq(rng, d, shape):
    x = with_ties(rng, d, shape) if d.kind != "f" else gen(rng, d, shape)
    if d.kind == "f" and x.size >= 4:
        x.flat[0], x.flat[1], x.flat[2], x.flat[3] = np.nan, np.inf, -0.0, x.flat[4 % x.size]
    return np.sort(x, axis=-1)


def search_values(rng, d, shape, seq):
    """Values that hit the sequence's own elements (ties) and fall between and outside."""
    v = gen(rng, d, shape)
    flat = seq.reshape(-1)
    if flat.size and v.size:
        take = rng.random(v.shape) < 0.5
        v = np.where(take, flat[rng.integers(0, flat.size, v.shape)], v).astype(v.dtype)
        if d.kind == "f":
            v.flat[0] = np.nan
            if v.size > 1:
                v.flat[1] = 0.0
    return v


def searchsorted_cases(rng, d, variant):
    res = []

    def add(seq, vals, right, vd=None):
        vd = vd or d
        exp = np_searchsorted(hp(seq, d), hp(vals, vd), right)
        res.append(Case([(seq, d), (vals, vd)], {"right": right} if right is not None else {},
                         exp, I64))

    if variant in ("basic", "noncontig"):
        s1 = sorted_seq(rng, d, (9,))
        for right in (None, True, False):
            add(s1, search_values(rng, d, (3, 4), s1), right)
        sb = sorted_seq(rng, d, (3, 6))
        add(sb, search_values(rng, d, (3, 4), sb), None)
        add(sb, search_values(rng, d, (3, 4), sb), True)
        if variant == "basic" and d.kind in "iu":
            # An integer sequence searched with float64 values compares as floats.
            fv = np.array([[-3.5, 0.0, 0.5, 2.0], [7.0, 7.5, -10.0, np.nan]])
            add(s1, fv, True, F64)
            add(s1, fv, False, F64)
    elif variant == "zero":
        add(sorted_seq(rng, d, (0,)), gen(rng, d, (3,)), None)
        add(sorted_seq(rng, d, (5,)), gen(rng, d, (0, 2)), True)
        add(sorted_seq(rng, d, (2, 0)), gen(rng, d, (2, 3)), None)
    elif variant == "0d":
        s1 = sorted_seq(rng, d, (6,))
        add(s1, search_values(rng, d, (), s1), None)
        add(s1, search_values(rng, d, (), s1), True)
    return res


# ---- count_nonzero, nonzero ---------------------------------------------------------------
def nz_values(rng, d, shape):
    """About half zeros; floats include NaN (nonzero) and -0.0 (zero); complex values with
    only one nonzero part."""
    if d is B:
        return rng.random(shape) < 0.5
    if d.kind == "c":
        ch = np.array([0, 1, 1j, -2 + 0.5j, 0, 0])
        return ch[rng.integers(0, len(ch), shape)].astype(d.numpy_dtype)
    if d.kind in "iu":
        ch = [0, 0, 1, 3]
        return np.array(ch)[rng.integers(0, len(ch), shape)].astype(d.numpy_dtype)
    ch = [0.0, -0.0, 0.0, 1.5, -2.0, np.nan, np.inf]
    return rnd(np.array(ch)[rng.integers(0, len(ch), shape)], d)


CNZ_DIMS = [None, [0], [1], [0, 1], [-1, 0], []]


def count_nonzero_cases(rng, d, variant):
    res = []

    def add(x, dims, keep):
        attrs = {}
        if dims is not None:
            attrs["dim"] = dims
        if keep:
            attrs["keepdim"] = True
        axis = None if dims is None else tuple(dims)
        exp = np.count_nonzero(x, axis=axis, keepdims=keep) if axis != () else \
            (x != 0).astype(np.int64)
        res.append(Case([(x, d)], attrs, np.asarray(exp, np.int64), I64))

    if variant in ("basic", "noncontig"):
        x = nz_values(rng, d, (3, 4))
        for dims in CNZ_DIMS:
            add(x, dims, False)
        add(x, [1], True)
        add(x, None, True)
        if variant == "basic":
            add(nz_values(rng, d, (2, 3, 4)), [0, 2], False)
            add(nz_values(rng, d, (2, 3, 4)), [1], True)
    elif variant == "zero":
        x = nz_values(rng, d, (0, 4))
        add(x, None, False)
        add(x, [0], False)
        add(x, [1], True)
    elif variant == "0d":
        add(nz_values(rng, d, ()), None, False)
        one = np.ones((), d.numpy_dtype) if d is not BF16 else rnd(1.0, d)
        for dims in ([0], [-1]):
            # NumPy has no axis 0 on a 0-d array; torch (and the op) accept 0 and -1.
            res.append(Case([(one, d)], {"dim": dims, "keepdim": True},
                             np.ones((), np.int64), I64))
    return res


def nonzero_cases(rng, d, variant):
    shapes = {"basic": [(3, 4), (2, 3, 4), (7,)], "noncontig": [(3, 4)],
              "zero": [(0, 4), (3, 0)], "0d": [()]}.get(variant)
    if shapes is None:
        return []
    res = []
    for shape in shapes:
        x = nz_values(rng, d, shape)
        exp = np.argwhere(x).astype(np.int64)
        if not shape:
            exp = np.zeros((int(np.count_nonzero(x)), 0), np.int64)
        res.append(Case([(x, d)], {"count": int(np.count_nonzero(x))}, exp, I64))
    if variant == "0d":
        x = np.zeros((), d.numpy_dtype) if d is not BF16 else rnd(0.0, d)
        res.append(Case([(x, d)], {"count": 0}, np.zeros((0, 0), np.int64), I64))
    return res


# ---- unique_count, unique -----------------------------------------------------------------
def np_unique(x):
    """(values, first indices, inverse of x's shape, counts), every NaN distinct."""
    v, idx, inv, cnt = np.unique(x.reshape(-1), return_index=True, return_inverse=True,
                                 return_counts=True, equal_nan=False)
    return v, idx.astype(np.int64), inv.reshape(x.shape).astype(np.int64), \
        cnt.astype(np.int64)


def unique_inputs(rng, d, variant):
    return {"basic": [with_ties(rng, d, (3, 4)), gen(rng, d, (2, 3, 4)),
                      distinct(rng, d, (6,))],
            "noncontig": [with_ties(rng, d, (4, 5))],
            "zero": [gen(rng, d, (0, 3))],
            "0d": [gen(rng, d, ())]}.get(variant, [])


def unique_count_cases(rng, d, variant):
    res = []
    for x in unique_inputs(rng, d, variant):
        n = np_unique(x)[0].size
        res.append(Case([(x, d)], {}, np.asarray(n, np.int64), I64))
    return res


def unique_cases(rng, d, variant):
    res = []
    for x in unique_inputs(rng, d, variant):
        v, idx, inv, cnt = np_unique(x)
        res.append(Case([(x, d)], {"count": int(v.size)}, [hp(v, d), idx, inv, cnt],
                         [d, I64, I64, I64]))
    return res


# ---- copysign, hypot, logaddexp, nextafter, signbit --------------------------------------
EW_SHAPES = {"basic": [(3, 4), (3, 4)], "broadcast": [(3, 1), (1, 4)],
             "noncontig": [(3, 4), (3, 4)], "zero": [(0, 4), (4,)], "0d": [(), ()]}


def out_float(d):
    return F32 if d.kind in "biu" else d


def ew_special(d):
    """Pairs (a, b) with the edge cases of each function, for float dtypes."""
    sp = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan]
    a, b = np.meshgrid(sp, sp)
    return rnd(a.reshape(-1), d), rnd(b.reshape(-1), d)


def nextafter_ref(a, b, d):
    """np.nextafter in d's own format; bfloat16 stepped on its bits."""
    if d is not BF16:
        return np.nextafter(a.astype(d.numpy_dtype), b.astype(d.numpy_dtype))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    bits = f32_to_bf16_bits(a32).astype(np.int32)
    bb = f32_to_bf16_bits(b32).astype(np.int32)
    up = (a32 < b32) == (a32 > 0)
    step = np.where(up, bits + 1, bits - 1)
    res = np.where(a32 == 0, (bb & 0x8000) | 1, step)
    res = np.where(a32 == b32, bb, res)
    out = bf16_bits_to_f32(res.astype(np.uint16))
    out = np.where(np.isnan(a32) | np.isnan(b32), np.nan, out)
    return out.astype(np.float32)


BINARY_REFS = {
    "copysign": lambda a, b, d: np.copysign(a, b),
    "hypot": lambda a, b, d: np.hypot(a, b),
    "logaddexp": lambda a, b, d: np.logaddexp(a, b),
    "nextafter": nextafter_ref,
}


def binary_cases(name):
    ref = BINARY_REFS[name]

    def cases(rng, d, variant):
        shapes = EW_SHAPES.get(variant)
        if shapes is None:
            return []
        res = []

        def add(a, b, da, db, od):
            with np.errstate(all="ignore"):
                if name == "nextafter":
                    exp = ref(a, b, od)
                else:
                    exp = ref(hp(a, da).astype(np.float64), hp(b, db).astype(np.float64), od)
            fin = np.abs(exp[np.isfinite(exp)])
            mag = max(1.0, float(fin.max())) if fin.size else 1.0
            res.append(Case([(a, da), (b, db)], {}, np.asarray(exp, np.float64), od,
                             mag=mag, exact=name in ("copysign", "nextafter")))

        add(gen(rng, d, shapes[0]), gen(rng, d, shapes[1]), d, d, out_float(d))
        if variant == "basic" and d.kind == "f":
            a, b = ew_special(d)
            add(a, b, d, d, d)
        if variant == "basic" and d.kind in "biu" and name != "nextafter":
            # An integer tensor with a float64 one promotes to float64.
            add(gen(rng, d, (3, 4)), gen(rng, F64, (3, 4)), d, F64, F64)
        return res
    return cases


def signbit_cases(rng, d, variant):
    shape = {"basic": (3, 4), "noncontig": (3, 4), "zero": (0, 4), "0d": ()}.get(variant)
    if shape is None:
        return []
    x = gen(rng, d, shape)
    res = [Case([(x, d)], {}, np.signbit(x.astype(np.float64)) if d is not B else
                 np.zeros(shape, bool), B)]
    if variant == "basic" and d.kind == "f":
        s = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan])
        xs = rnd(s, d)
        res.append(Case([(xs, d)], {}, np.signbit(xs.astype(np.float64)), B))
    return res


SORT_SPECS = {
    "sort": sort_cases(False),
    "argsort": sort_cases(True),
    "searchsorted": searchsorted_cases,
    "count_nonzero": count_nonzero_cases,
    "nonzero": nonzero_cases,
    "unique_count": unique_count_cases,
    "unique": unique_cases,
    "copysign": binary_cases("copysign"),
    "hypot": binary_cases("hypot"),
    "logaddexp": binary_cases("logaddexp"),
    "nextafter": binary_cases("nextafter"),
    "signbit": signbit_cases,
}
