"""NumPy/SciPy references and sample cases for ops_lapack_ext.c in test_ops.py's SPECS format.

LAPACK_EXT_SPECS maps an op name to cases(rng, dtype, variant). References are SciPy/NumPy in
float64/complex128 on the rounded inputs (scipy.linalg.solve_triangular, lu_factor, lu;
numpy.linalg.solve, eig, lstsq; Householder products built explicitly from their reflectors),
never the daemon's output. Samples are well conditioned so float32 results are close to the
reference and finite differences (test_gradcheck.py reuses these samples) are accurate.
Residual checks, error cases, info outputs and the dedicated gradient tests (eig, lstsq) are
in test_linalg_ext.py.
"""
import numpy as np
import scipy.linalg as sla

import tensord as td
from op_specs_linalg import gen, well_cond, cond_mag, chol_sample
from spec_common import Case, hp, mh, real_of

F32, F64, C64, C128, I32, I64 = td.float32, td.float64, td.complex64, td.complex128, \
    td.int32, td.int64


def cplx_of(d):
    return {F32: C64, F64: C128}.get(d, d)


def _bmap(f, *arrs, batch):
    """Applies f to each batch element of arrs broadcast over `batch`; stacks the outputs."""
    arrs = [np.broadcast_to(a, batch + a.shape[-2:]) for a in arrs]
    outs = [f(*[a[idx] for a in arrs]) for idx in np.ndindex(*batch)]
    return outs


def _stack(outs, batch, tail, dtype):
    if not outs:
        return np.zeros(batch + tail, dtype)
    return np.stack(outs).reshape(batch + tail)


def _mag(a, x):
    return cond_mag(a) * max(1.0, float(np.max(np.abs(x), initial=0)))


# ---- solve_triangular ------------------------------------------------------------------
TRI = {"basic": [((3, 3), (3, 2)), ((2, 4, 4), (2, 4, 3))],
       "broadcast": [((2, 1, 3, 3), (4, 3, 2)), ((3, 3), (2, 3, 1))],
       "noncontig": [((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 3))],
       "zero": [((0, 3, 3), (0, 3, 2)), ((3, 3), (3, 0))]}


def _tri_ref(a, bm, upper, left, unit):
    if left:
        return sla.solve_triangular(a, bm, lower=not upper, unit_diagonal=unit)
    # X A = B  <=>  A^T X^T = B^T
    return sla.solve_triangular(a, bm.T, trans="T", lower=not upper, unit_diagonal=unit).T


def solve_triangular_cases(rng, d, variant):
    res = []
    for sa, sb in TRI.get(variant, []):
        combos = [(u, l, un) for u in (True, False) for l in (True, False)
                  for un in (False, True)] if sa == (3, 3) and variant == "basic" else \
            [(True, True, False), (False, False, True)]
        for upper, left, unit in combos:
            # The other triangle (and, for unitriangular, the diagonal) must be ignored.
            a = well_cond(rng, d, sa)
            sbb = sb if left else sb[:-2] + (sb[-1], sb[-2])
            bm = gen(rng, d, sbb)
            batch = np.broadcast_shapes(sa[:-2], sbb[:-2])
            ha, hb = hp(a), hp(bm)
            outs = _bmap(lambda x, y: _tri_ref(x, y, upper, left, unit), ha, hb, batch=batch) \
                if ha.size and hb.size else []
            e = _stack(outs, batch, sbb[-2:], ha.dtype)
            tri = np.triu(ha) if upper else np.tril(ha)
            res.append(Case([(a, d), (bm, d)],
                             {"upper": upper, "left": left, "unitriangular": unit},
                             e, d, mag=_mag(tri if ha.size else ha, e)))
    return res


# ---- inv_ex, solve_ex, cholesky_ex -------------------------------------------------------
SQ = {"basic": [(3, 3), (2, 4, 4), (1, 1)], "noncontig": [(3, 3), (2, 3, 3)],
      "zero": [(0, 3, 3), (0, 0)]}


def inv_ex_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = well_cond(rng, d, s)
        e = np.linalg.inv(hp(a)) if a.size else np.zeros(s, hp(a).dtype)
        for ce in (False, True):
            res.append(Case([(a, d)], {"check_errors": ce}, [e, np.zeros(s[:-2], np.int32)],
                             [d, I32], mag=_mag(a, e)))
    return res


def solve_ex_cases(rng, d, variant):
    table = {"basic": [((3, 3), (3,), True), ((3, 3), (3, 2), True), ((2, 4, 4), (2, 4), True),
                       ((3, 3), (2, 3), False), ((2, 4, 4), (2, 1, 4), False)],
             "broadcast": [((2, 1, 3, 3), (4, 3, 2), True), ((3, 3), (2, 4, 3), False)],
             "noncontig": [((3, 3), (3, 2), True), ((2, 3, 3), (2, 3, 3), False)],
             "zero": [((0, 3, 3), (0, 3), True), ((3, 3), (0, 3), False)]}
    res = []
    for sa, sb, left in table.get(variant, []):
        a = well_cond(rng, d, sa)
        b = gen(rng, d, sb)
        ha, hb = hp(a), hp(b)
        vec = left and (len(sb) == 1 or (len(sb) == len(sa) - 1 and sb == sa[:-1]))
        if vec:
            batch = np.broadcast_shapes(sa[:-2], sb[:-1])
            outs = _bmap(lambda x, y: np.linalg.solve(x, y[:, 0]), ha, hb[..., None],
                         batch=batch) if a.size and b.size else []
            e = _stack(outs, batch, (sa[-1],), ha.dtype)
        else:
            batch = np.broadcast_shapes(sa[:-2], sb[:-2])
            f = (lambda x, y: np.linalg.solve(x, y)) if left else \
                (lambda x, y: np.linalg.solve(x.T, y.T).T)
            outs = _bmap(f, ha, hb, batch=batch) if a.size and b.size else []
            e = _stack(outs, batch, sb[-2:], ha.dtype)
        res.append(Case([(a, d), (b, d)], {"left": left}, [e, np.zeros(batch, np.int32)],
                         [d, I32], mag=_mag(a, e)))
    return res


def cholesky_ex_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a, low, mag = chol_sample(rng, d, s)
        info = np.zeros(s[:-2], np.int32)
        res.append(Case([(a, d)], {}, [low, info], [d, I32], mag=mag))
        res.append(Case([(a, d)], {"upper": True, "check_errors": True}, [mh(low), info],
                         [d, I32], mag=mag))
    return res


# ---- LU ------------------------------------------------------------------------------------
LU_SHAPES = {"basic": [(3, 3), (2, 4, 4), (3, 5), (5, 3)], "noncontig": [(3, 3), (2, 4, 3)],
             "zero": [(0, 3, 3), (3, 0)]}


def lu_nopiv_ref(a):
    """Doolittle LU without pivoting (float64/complex128): packed m x n."""
    a = np.array(a, copy=True)
    m, n = a.shape
    for j in range(min(m, n)):
        a[j + 1:, j] /= a[j, j]
        a[j + 1:, j + 1:] -= np.outer(a[j + 1:, j], a[j, j + 1:])
    return a


def _lu_sample(rng, d, s, pivot):
    # Pivoting samples are general (so rows really get swapped); pivot=false samples are
    # diagonally dominant (their LU without pivoting exists and is stable).
    if pivot:
        return gen(rng, d, s)
    k = min(s[-2], s[-1])
    return (gen(rng, d, s) + max(k, 1) * np.eye(s[-2], s[-1])).astype(d.numpy_dtype)


def _lu_ref(ha, pivot):
    """(packed LU, 1-based pivots, P, L, U) of one matrix."""
    m, n = ha.shape
    k = min(m, n)
    if k == 0:
        return (ha.copy(), np.zeros((0,), np.int32), np.eye(m, dtype=ha.dtype),
                np.zeros((m, 0), ha.dtype), np.zeros((0, n), ha.dtype))
    if pivot:
        lu, piv = sla.lu_factor(ha)
        p, l, u = sla.lu(ha)
        return lu, (piv + 1).astype(np.int32), p, l, u
    lu = lu_nopiv_ref(ha)
    l = np.tril(lu, -1)[:, :k] + np.eye(m, k)
    u = np.triu(lu)[:k, :]
    return lu, np.arange(1, k + 1, dtype=np.int32), None, l, u


def _lu_all(ha, s, pivot):
    m, n = s[-2], s[-1]
    k = min(m, n)
    batch = s[:-2]
    refs = [_lu_ref(ha[idx], pivot) for idx in np.ndindex(*batch)]
    dt = ha.dtype

    def st(i, tail, ddt=dt):
        return _stack([r[i] for r in refs], batch, tail, ddt)

    return (st(0, (m, n)), st(1, (k,), np.int32), st(2, (m, m)) if pivot else None,
            st(3, (m, k)), st(4, (k, n)))


def _lu_inputs(rng, d, variant):
    """Yields (shape, pivot, sample, its float64/complex128 copy, _lu_all's references) per LU
    sample; pivot=false samples only in the basic variant."""
    for s in LU_SHAPES.get(variant, []):
        for pivot in (True, False):
            if not pivot and variant != "basic":
                continue
            a = _lu_sample(rng, d, s, pivot)
            ha = hp(a)
            yield s, pivot, a, ha, _lu_all(ha, s, pivot)


def _lu_mag(ha, s, out):
    """Tolerance scale of an LU output with entries like `out`."""
    k = min(s[-2:])
    return 10.0 * _mag(ha[..., :k, :k], out) * max(s[-2:])


def lu_factor_cases(rng, d, variant, ex=False):
    res = []
    for s, pivot, a, ha, (lu, piv, _, _, _) in _lu_inputs(rng, d, variant):
        attrs = {"pivot": pivot}
        exp, dts = [lu, piv], [d, I32]
        if ex:
            exp.append(np.zeros(s[:-2], np.int32))
            dts.append(I32)
            attrs["check_errors"] = pivot
        res.append(Case([(a, d)], attrs, exp, dts, mag=_lu_mag(ha, s, lu)))
    return res


def lu_factor_ex_cases(rng, d, variant):
    return lu_factor_cases(rng, d, variant, ex=True)


def lu_cases(rng, d, variant):
    res = []
    for s, pivot, a, ha, (_, _, p, l, u) in _lu_inputs(rng, d, variant):
        if p is None:
            p = np.zeros((0,), ha.dtype)
        res.append(Case([(a, d)], {"pivot": pivot}, [p, l, u], [d, d, d],
                        mag=_lu_mag(ha, s, u)))
    return res


def lu_solve_cases(rng, d, variant):
    table = {"basic": [((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2))],
             "broadcast": [((2, 1, 3, 3), (4, 3, 2))],
             "noncontig": [((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 3))],
             "zero": [((0, 3, 3), (0, 3, 2)), ((3, 3), (3, 0))]}
    res = []
    for sa, sb in table.get(variant, []):
        combos = [(l, ad) for l in (True, False) for ad in (False, True)] \
            if variant == "basic" else [(True, False), (False, True)]
        for left, adj in combos:
            # A = (random + n I) with a row permutation, so the pivots are not trivial.
            a = gen(rng, d, sa) + sa[-1] * np.eye(sa[-1])[rng.permutation(sa[-1])]
            ha = hp(a.astype(d.numpy_dtype))
            batch_a = sa[:-2]
            lus = [sla.lu_factor(ha[idx]) for idx in np.ndindex(*batch_a)] if ha.size else []
            lu = _stack([x[0] for x in lus], batch_a, sa[-2:], ha.dtype).astype(d.numpy_dtype)
            piv = _stack([(x[1] + 1).astype(np.int32) for x in lus], batch_a, (sa[-1],),
                         np.int32)
            sbb = sb if left else sb[:-2] + (sb[-1], sb[-2])
            bm = gen(rng, d, sbb)
            hb = hp(bm)
            batch = np.broadcast_shapes(sa[:-2], sbb[:-2])

            def f(x, y):
                opx = mh(x) if adj else x
                return np.linalg.solve(opx, y) if left else np.linalg.solve(opx.T, y.T).T

            outs = _bmap(f, ha, hb, batch=batch) if ha.size and hb.size else []
            e = _stack(outs, batch, sbb[-2:], ha.dtype)
            res.append(Case([(lu, d), (piv, I32), (bm, d)], {"left": left, "adjoint": adj},
                             e, d, mag=10.0 * _mag(ha, e)))
    return res


# ---- eig, eigvals --------------------------------------------------------------------------
EIG = {"basic": [(3, 3), (2, 4, 4), (1, 1)], "noncontig": [(3, 3), (2, 3, 3)],
       "zero": [(0, 3, 3), (0, 0)]}


def _eig_sample(rng, d, s):
    """Quasi upper-triangular matrices with well separated eigenvalues (for real input, a
    2 x 2 rotation block gives a complex pair). Their eigenvectors are fixed by LAPACK's
    normalisation (unit norm; the back-substitution's pivot entry or the largest component
    real), so float32 and float64 runs agree on signs and phases and the raw outputs can be
    compared; dense matrices are checked by residuals in test_linalg_ext.py."""
    n = s[-1]
    out = np.zeros(s, np.complex128 if d.kind == "c" else np.float64)
    for idx in np.ndindex(*s[:-2]):
        w = (rng.permutation(n) + 1) * 1.5 * rng.choice([-1.0, 1.0], n)
        m = np.triu(0.5 * rng.uniform(-1, 1, (n, n)), 1) + np.diag(w)
        if d.kind == "c":
            m = m + 1j * (np.triu(0.5 * rng.uniform(-1, 1, (n, n)), 1) +
                          np.diag(rng.uniform(-1, 1, n)))
        elif n >= 2:
            m[1, 0] = -abs(m[0, 1]) - 1.0     # rotation-like block: a complex pair
            m[1, 1] = m[0, 0]
        out[idx] = m
    return out.astype(d.numpy_dtype)


def eig_cases(rng, d, variant, vectors=True):
    res = []
    cd = cplx_of(d)
    for s in EIG.get(variant, []):
        a = _eig_sample(rng, d, s)
        ha = hp(a)
        if ha.size:
            w, v = np.linalg.eig(ha)
        else:
            w, v = np.zeros(s[:-1], np.complex128), np.zeros(s, np.complex128)
        w, v = w.astype(np.complex128), v.astype(np.complex128)
        mag = 10.0 * max(1, s[-1]) * cond_mag(v if v.size else ha) * \
            max(1.0, float(np.max(np.abs(ha), initial=0)))
        if vectors:
            res.append(Case([(a, d)], {}, [w, v], [cd, cd], mag=mag))
        else:
            res.append(Case([(a, d)], {}, w, cd, mag=mag))
    return res


def eigvals_cases(rng, d, variant):
    return eig_cases(rng, d, variant, vectors=False)


# ---- lstsq ---------------------------------------------------------------------------------
LSQ = {"basic": [((5, 3), (5, 2)), ((5, 3), (5,)), ((2, 4), (2, 3)), ((3, 3), (3, 1)),
                 ((2, 4, 2), (2, 4, 2))],
       "broadcast": [((2, 1, 4, 3), (3, 4, 2)), ((4, 2), (3, 4, 1))],
       "noncontig": [((5, 3), (5, 2)), ((2, 4), (2, 3))],
       "zero": [((0, 4, 3), (0, 4, 2))]}


def lstsq_cases(rng, d, variant):
    res = []
    rd = real_of(d)
    for sa, sb in LSQ.get(variant, []):
        drivers = (None, "gels", "gelsy", "gelsd", "gelss") if variant in ("basic", "zero") \
            else (None, "gelsd")
        m, n = sa[-2], sa[-1]
        vec = len(sb) == 1 or (len(sb) == len(sa) - 1 and sb == sa[:-1])
        a = gen(rng, d, sa) + np.eye(m, n) * 2
        a = a.astype(d.numpy_dtype)
        bm = gen(rng, d, sb)
        ha, hb = hp(a), hp(bm)
        hb2 = hb[..., None] if vec else hb
        k = hb2.shape[-1]
        batch = np.broadcast_shapes(sa[:-2], hb2.shape[:-2])
        # With no right-hand side, one zero column still gives rank and singular values.
        hbr = hb2 if k else np.zeros(hb2.shape[:-1] + (1,), hb2.dtype)
        refs = _bmap(lambda x, y: np.linalg.lstsq(x, y, rcond=None), ha, hbr, batch=batch) \
            if ha.size else []
        x = _stack([r[0][:, :k] for r in refs], batch, (n, k), ha.dtype)
        rr = _stack([np.sum(np.abs(y - xx @ r[0][:, :k]) ** 2, axis=0) for r, xx, y in
                     zip(refs, _iter(ha, batch), _iter(hb2, batch))], batch, (k,), np.float64)
        rank = _stack([np.int64(r[2]) for r in refs], batch, (), np.int64) \
            if refs else np.full(batch, min(m, n), np.int64)
        sv = _stack([r[3] for r in refs], batch, (min(m, n),), np.float64) if refs else \
            np.zeros(batch + (min(m, n),))
        if vec:
            x = x[..., 0]
        for drv in drivers:
            attrs = {} if drv is None else {"driver": drv}
            dv = drv or "gelsy"
            empty = np.zeros((0,))
            r_e = rr if m > n and dv != "gelsy" else empty
            rk_e = rank if dv != "gels" else np.zeros((0,), np.int64)
            sv_e = sv if dv in ("gelsd", "gelss") else empty
            mag = 10.0 * _mag(ha[..., :min(m, n), :min(m, n)] if ha.size else ha, x) * \
                max(1.0, float(np.max(np.abs(hb), initial=0)))
            res.append(Case([(a, d), (bm, d)], attrs, [x, r_e, rk_e, sv_e], [d, rd, I64, rd],
                             mag=mag))
    return res


def _iter(a, batch):
    a = np.broadcast_to(a, batch + a.shape[-2:])
    return [a[idx] for idx in np.ndindex(*batch)]


# ---- householder_product -------------------------------------------------------------------
HH = {"basic": [((4, 3), 3), ((4, 3), 2), ((3, 3), 3), ((2, 4, 2), 2)],
      "noncontig": [((4, 3), 3)],
      "zero": [((0, 4, 3), 2), ((3, 0), 0)]}


def householder_ref(a, tau):
    """Q[:, :n] with Q = H_1 ... H_k, H_i = I - tau_i v_i v_i^H built explicitly."""
    m, n = a.shape
    q = np.eye(m, dtype=np.complex128)
    for i in range(tau.shape[-1]):
        v = np.zeros(m, np.complex128)
        v[i] = 1
        v[i + 1:] = a[i + 1:, i]
        q = q @ (np.eye(m) - tau[i] * np.outer(v, np.conj(v)))
    return q[:, :n]


def householder_product_cases(rng, d, variant):
    res = []
    for sa, k in HH.get(variant, []):
        a = gen(rng, d, sa)
        tau = gen(rng, d, sa[:-2] + (k,), 0.5, 1.5)
        ha, ht = hp(a), hp(tau)
        outs = [householder_ref(ha[idx], ht[idx]) for idx in np.ndindex(*sa[:-2])]
        e = _stack(outs, sa[:-2], sa[-2:], np.complex128)
        if d.kind != "c":
            e = e.real
        res.append(Case([(a, d), (tau, d)], {}, e, d, mag=10.0 * max(sa[-2:]) ** 2))
    return res


LAPACK_EXT_SPECS = {
    "solve_triangular": solve_triangular_cases,
    "inv_ex": inv_ex_cases,
    "solve_ex": solve_ex_cases,
    "cholesky_ex": cholesky_ex_cases,
    "lu_factor": lu_factor_cases,
    "lu_factor_ex": lu_factor_ex_cases,
    "lu": lu_cases,
    "lu_solve": lu_solve_cases,
    "eig": eig_cases,
    "eigvals": eigvals_cases,
    "lstsq": lstsq_cases,
    "householder_product": householder_product_cases,
}
