"""NumPy references and sample cases for the contraction ops (server/engine/ops_contract.c) in
test_ops.py's SPECS format: CONTRACT_SPECS maps an op name to cases(rng, dtype, variant).

References are NumPy (np.einsum, np.outer, np.cross, np.linalg.multi_dot, np.diagonal,
np.trace, np.linalg.matrix_power, np.linalg.tensorsolve, np.linalg.tensorinv) evaluated in
int64 / float64 / complex128 on the inputs as stored, never the daemon's output. Integer
results wrap like the daemon's (and PyTorch's) fixed-width arithmetic: the checker casts the
int64 reference to the result dtype. test_gradcheck.py reuses the float64 and complex128
cases (those with at most 48 real degrees of freedom) for first- and second-order checks.
"""
import numpy as np

import tensord as td
from spec_common import Case, round_to

B, U8 = td.bool_, td.uint8
F16, BF16, F32, F64, C64, C128 = (td.float16, td.bfloat16, td.float32, td.float64,
                                  td.complex64, td.complex128)
LAPACK = (F32, F64, C64, C128)


def is_int(d):
    return d.kind in "iu"


def gen(rng, d, shape, lo=-1.5, hi=1.5):
    """Random values of dtype d as stored (bfloat16 in a float32 array)."""
    if d is B:
        return rng.random(shape) < 0.5
    if is_int(d):
        return rng.integers(0 if d is U8 else -3, 4, shape).astype(d.numpy_dtype)
    if d.kind == "c":
        z = rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape)
        return np.asarray(z).astype(d.numpy_dtype)
    return round_to(rng.uniform(lo, hi, shape), d)


def hp(x, d):
    """int64 / float64 / complex128 / bool copy for references."""
    if d.kind == "c":
        return np.asarray(x).astype(np.complex128)
    if d.kind == "f":
        return np.asarray(x).astype(np.float64)
    if d is B:
        return np.asarray(x).astype(np.bool_)
    return np.asarray(x).astype(np.int64)


def absmag(f, arrays, d):
    """Scale for absolute tolerances: f evaluated on |inputs| (a bound on each output's
    accumulated magnitude)."""
    ab = [np.abs(hp(a, d)).astype(np.float64) for a in arrays]
    v = f(*ab)
    return max(1.0, float(np.max(np.abs(v), initial=0.0)))


# ---- einsum --------------------------------------------------------------------------------
EINSUM = {
    "basic": [
        ("ij,jk->ik", [(3, 4), (4, 2)]),
        ("ij,jk", [(2, 3), (3, 2)]),                       # implicit output 'ik'
        ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
        ("ii->i", [(3, 3)]),
        ("ii", [(3, 3)]),                                  # trace, implicit scalar
        ("iji->j", [(2, 3, 2)]),                           # repeated within one operand
        ("ij->", [(2, 3)]),
        ("ij->ji", [(2, 3)]),
        ("i,i->", [(4,), (4,)]),
        ("i,j->ij", [(3,), (2,)]),
        ("ijk,jil->kl", [(2, 3, 2), (3, 2, 2)]),
        ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
        ("ab,bc,cd,de->ae", [(2, 2), (2, 2), (2, 2), (2, 2)]),
        ("bn,anm,bm->ba", [(2, 2), (2, 2, 3), (2, 3)]),
        (" i j , j k -> i k ", [(2, 3), (3, 2)]),          # spaces
        ("Ab,ba", [(2, 3), (3, 2)]),                       # upper case sorts first
        ("ij,j->", [(2, 3), (3,)]),
        ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
        ("...i,...i->...", [(2, 3), (2, 3)]),
        ("i...->...", [(3, 2, 2)]),
        ("i...i", [(2, 3, 2)]),                            # diagonal plus implicit ellipsis
        ("ij,ik,il->jkl", [(2, 2), (2, 2), (2, 2)]),
    ],
    "broadcast": [
        ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
        ("ij,ij->ij", [(1, 3), (2, 3)]),                   # size-1 broadcasting of a letter
        ("ij,jk", [(2, 3), (1, 2)]),                       # summed letter of size 1 on one side
        ("...,...->...", [(2, 3), (3,)]),
        ("ii,i->i", [(1, 1), (3,)]),
    ],
    "noncontig": [
        ("ij,jk->ik", [(3, 4), (4, 2)]),
        ("bij,bkj->bik", [(2, 3, 2), (2, 2, 2)]),
        ("ii->i", [(3, 3)]),
        ("ij,ij->", [(2, 3), (2, 3)]),
        ("ji,jk->ik", [(3, 2), (3, 2)]),
    ],
    "zero": [
        ("ij,jk->ik", [(0, 3), (3, 2)]),
        ("ij,jk->ik", [(2, 0), (0, 3)]),                   # empty sum: zeros
        ("ii->i", [(0, 0)]),
        ("ij->", [(0, 3)]),
    ],
    "0d": [
        (",->", [(), ()]),
        ("->", [()]),
        (",i->i", [(), (3,)]),
        ("...,...", [(), (2,)]),
    ],
}


def einsum_cases(rng, d, variant):
    res = []
    for eq, shapes in EINSUM.get(variant, []):
        arrs = [gen(rng, d, s) for s in shapes]
        exp = np.einsum(eq, *[hp(a, d) for a in arrs])
        mag = absmag(lambda *x, eq=eq: np.einsum(eq, *x), arrs, d)
        res.append(Case([(a, d) for a in arrs], {"equation": eq}, exp, d, mag=mag,
                         variadic=True))
    return res


# ---- outer, cross, vecdot ----------------------------------------------------------------
def outer_cases(rng, d, variant):
    shapes = {"basic": [((3,), (4,)), ((1,), (2,))], "noncontig": [((3,), (2,))],
              "zero": [((0,), (3,)), ((2,), (0,))]}.get(variant, [])
    res = []
    for sa, sb in shapes:
        a, b = gen(rng, d, sa), gen(rng, d, sb)
        res.append(Case([(a, d), (b, d)], {}, np.outer(hp(a, d), hp(b, d)), d,
                         mag=absmag(np.outer, [a, b], d)))
    return res


CROSS = {
    "basic": [((3,), (3,), {}), ((2, 3), (2, 3), {}), ((3, 2), (3, 2), {"dim": 0}),
              ((2, 3, 2), (2, 3, 2), {"dim": -2})],
    "broadcast": [((2, 1, 3), (4, 3), {}), ((3,), (2, 3), {"dim": -1})],
    "noncontig": [((2, 3), (2, 3), {}), ((3, 2), (3, 2), {"dim": 0})],
    "zero": [((0, 3), (0, 3), {})],
}


def _cross_ref(a, b, dim):
    a, b = np.broadcast_arrays(a, b)
    a, b = np.moveaxis(a, dim, -1), np.moveaxis(b, dim, -1)
    r = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                  a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                  a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)
    return np.moveaxis(r, -1, dim)


def cross_cases(rng, d, variant):
    res = []
    for sa, sb, at in CROSS.get(variant, []):
        a, b = gen(rng, d, sa), gen(rng, d, sb)
        dim = at.get("dim", -1)
        exp = _cross_ref(hp(a, d), hp(b, d), dim)
        if d.kind in "fc" and exp.size:
            # The vector form agrees with NumPy's own cross product.
            assert np.allclose(exp, np.cross(hp(a, d), hp(b, d), axis=dim))
        res.append(Case([(a, d), (b, d)], at, exp, d, mag=4.0 * absmag(
            lambda x, y: np.sum(x, axis=dim, keepdims=True) * np.sum(y, axis=dim,
                                                                       keepdims=True),
            [a, b], d)))
    return res


VECDOT = {
    "basic": [((4,), (4,), {}), ((2, 3), (2, 3), {}), ((3, 2), (3, 2), {"dim": 0})],
    "broadcast": [((2, 1, 3), (4, 3), {}), ((3,), (2, 3), {"dim": -1})],
    "noncontig": [((2, 3), (2, 3), {}), ((3, 2), (3, 2), {"dim": -2})],
    "zero": [((0, 3), (0, 3), {}), ((2, 0), (2, 0), {})],
}


def vecdot_cases(rng, d, variant):
    res = []
    for sa, sb, at in VECDOT.get(variant, []):
        a, b = gen(rng, d, sa), gen(rng, d, sb)
        dim = at.get("dim", -1)
        ha, hb = np.broadcast_arrays(hp(a, d), hp(b, d))
        # np.vdot semantics (conjugate the first) along one axis of broadcast operands.
        exp = np.sum(np.conj(ha) * hb, axis=dim)
        if ha.ndim == 1:
            assert np.allclose(exp, np.vdot(ha, hb))
        mag = absmag(lambda x, y: np.sum(x * y, axis=dim), [a, b], d)
        res.append(Case([(a, d), (b, d)], at, exp, d, mag=mag))
    return res


# ---- multi_dot -----------------------------------------------------------------------------
MULTI = {
    "basic": [[(2, 3), (3, 4), (4, 2)], [(3,), (3, 4), (4,)], [(3,), (3, 2)], [(2, 3), (3,)],
              [(3,), (3,)], [(4, 2), (2, 5), (5, 1), (1, 3)]],
    "noncontig": [[(2, 3), (3, 2), (2, 2)], [(3,), (3, 2), (2,)]],
    "zero": [[(0, 3), (3, 2)], [(2, 0), (0, 3)], [(2, 3), (3, 0), (0, 2)]],
}


def multi_dot_cases(rng, d, variant):
    res = []
    for shapes in MULTI.get(variant, []):
        arrs = [gen(rng, d, s) for s in shapes]
        exp = np.linalg.multi_dot([hp(a, d) for a in arrs])
        mag = absmag(lambda *x: np.linalg.multi_dot(list(x)), arrs, d)
        res.append(Case([(a, d) for a in arrs], {}, exp, d, mag=mag, variadic=True))
    return res


# ---- diagonal, trace -----------------------------------------------------------------------
DIAG = {
    "basic": [((3, 4), {}), ((3, 4), {"offset": 1}), ((4, 3), {"offset": -2}),
              ((2, 3, 4), {"dim1": 0, "dim2": 2}), ((2, 3, 4), {"dim1": -1, "dim2": -2}),
              ((3, 3), {"offset": 5})],
    "noncontig": [((3, 4), {}), ((2, 3, 3), {"offset": -1})],
    "zero": [((0, 3), {}), ((2, 0, 3), {"dim1": 0, "dim2": 2})],
}


def diagonal_cases(rng, d, variant):
    res = []
    for s, at in DIAG.get(variant, []):
        a = gen(rng, d, s)
        exp = np.diagonal(hp(a, d), at.get("offset", 0), at.get("dim1", -2), at.get("dim2", -1))
        res.append(Case([(a, d)], at, exp, d))
    return res


TRACE = {
    "basic": [((3, 3), {}), ((3, 4), {"offset": 1}), ((4, 3), {"offset": -1}),
              ((2, 3, 3), {}), ((3, 3), {"offset": 4})],
    "noncontig": [((3, 4), {}), ((2, 3, 3), {"offset": -1})],
    "zero": [((0, 3, 3), {}), ((0, 0), {})],
}


def trace_cases(rng, d, variant):
    res = []
    for s, at in TRACE.get(variant, []):
        a = gen(rng, d, s)
        exp = np.trace(hp(a, d), at.get("offset", 0), axis1=-2, axis2=-1)
        od = td.int64 if is_int(d) else d
        res.append(Case([(a, d)], at, exp, od, mag=float(max(s[-1], 1))))
    return res


# ---- matrix_power ------------------------------------------------------------------------
def _well(rng, d, shape):
    """(R + n I) / n with R uniform in [-1, 1]: well conditioned, inverse entries ~1."""
    n = shape[-1]
    r = hp(gen(rng, d, shape, -1.0, 1.0), d) + n * np.eye(n)
    return round_to(r / n, d)


def matrix_power_cases(rng, d, variant):
    shapes = {"basic": [(3, 3), (2, 2, 2)], "noncontig": [(3, 3)], "zero": [(0, 2, 2), (0, 0)],
              "broadcast": [], "0d": []}.get(variant, [])
    ns = [0, 1, 2, 3, 5]
    if d in LAPACK:
        ns += [-1, -3]
    if variant != "basic":
        ns = [0, 2] + ([-2] if d in LAPACK else [])
    res = []
    for s in shapes:
        for n in ns:
            a = gen(rng, d, s) if is_int(d) else _well(rng, d, s)
            ha = hp(a, d)
            exp = np.linalg.matrix_power(ha, n) if ha.size else np.zeros(s, ha.dtype)
            m = max(1.0, float(np.max(np.abs(exp), initial=0)))
            m *= max(1.0, float(np.max(np.linalg.cond(ha)))) if (n < 0 and ha.size) else 1.0
            res.append(Case([(a, d)], {"n": n}, exp, d, mag=m * max(abs(n), 1) * s[-1]))
    return res


# ---- tensorsolve, tensorinv --------------------------------------------------------------
def _sq(rng, d, n):
    return hp(_well(rng, d, (n, n)), d) * n


def tensorsolve_cases(rng, d, variant):
    if d not in LAPACK:
        return []
    table = {"basic": [((2, 3), (2, 3), None), ((6,), (2, 3), None), ((2, 2), (2, 2), [0]),
                       ((3,), (3,), None)],
             "noncontig": [((2, 3), (2, 3), None), ((4,), (2, 2), [1])],
             "zero": [((0,), (0,), None)]}.get(variant, [])
    res = []
    for bs, xs, dims in table:
        n = int(np.prod(bs))
        m = _sq(rng, d, n).reshape(bs + xs)
        if dims is not None:
            # Store A with the solution's first dim moved to the front; dims moves it back.
            m = np.moveaxis(m, len(bs), dims[0])
        a = m.astype(d.numpy_dtype)
        b = gen(rng, d, bs)
        if n:
            exp = np.linalg.tensorsolve(hp(a, d), hp(b, d), axes=dims)
        else:
            exp = np.zeros(xs, hp(a, d).dtype)
        mag = max(1.0, float(np.max(np.abs(exp), initial=0))) * 10 * max(n, 1)
        at = {} if dims is None else {"dims": dims}
        res.append(Case([(a, d), (b, d)], at, exp, d, mag=mag))
    return res


def tensorinv_cases(rng, d, variant):
    if d not in LAPACK:
        return []
    table = {"basic": [((2, 3, 6), 2), ((6, 2, 3), 1), ((2, 2, 2, 2), 2), ((3, 3), 1)],
             "noncontig": [((2, 2, 4), 2)],
             "zero": [((0, 0), 1)]}.get(variant, [])
    res = []
    for s, ind in table:
        n = int(np.prod(s[:ind]))
        a = _sq(rng, d, n).reshape(s).astype(d.numpy_dtype)
        if n:
            exp = np.linalg.tensorinv(hp(a, d), ind=ind)
        else:
            exp = np.zeros(s[ind:] + s[:ind], hp(a, d).dtype)
        mag = max(1.0, float(np.max(np.abs(exp), initial=0))) * 10 * max(n, 1)
        res.append(Case([(a, d)], {"ind": ind}, exp, d, mag=mag))
    return res


CONTRACT_SPECS = {
    "einsum": einsum_cases,
    "outer": outer_cases,
    "cross": cross_cases,
    "vecdot": vecdot_cases,
    "multi_dot": multi_dot_cases,
    "diagonal": diagonal_cases,
    "trace": trace_cases,
    "matrix_power": matrix_power_cases,
    "tensorsolve": tensorsolve_cases,
    "tensorinv": tensorinv_cases,
}
