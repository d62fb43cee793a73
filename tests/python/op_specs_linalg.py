"""NumPy references and sample cases for the LAPACK ops (server/engine/ops_lapack.c), in
test_ops.py's SPECS format: LINALG_SPECS maps an op name to cases(rng, dtype, variant).
References are numpy.linalg in float64/complex128 on the rounded inputs, never the daemon's
output. Samples are well conditioned (A = R + n I, SPD = M M^H + n I) so float32 results are
close to the float64 reference and finite differences (tests/python/test_gradcheck.py, which
reuses these samples) are accurate.

test_linalg_residuals checks the results a second way, by residuals scaled by the machine
epsilon of each dtype (A X - B, A A^-1 - I, L L^H - A, Q R - A, Q^H Q - I, A V - V diag(w), U S Vh - A); test_ops.py
imports it so pytest collects it there.
"""
import numpy as np
import pytest

import tensord as td
from spec_common import Case, hp, mh, real_of

F32, F64, C64, C128 = td.float32, td.float64, td.complex64, td.complex128


def gen(rng, d, shape, lo=-1.0, hi=1.0):
    if d.kind == "c":
        z = rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape)
    else:
        z = rng.uniform(lo, hi, shape)
    return np.asarray(z).astype(d.numpy_dtype)


def well_cond(rng, d, shape):
    """R + n I with R uniform in [-1, 1] (diagonally dominant enough to be well conditioned)."""
    n = shape[-1]
    a = gen(rng, d, shape) + n * np.eye(n)
    return a.astype(d.numpy_dtype)


def spd(rng, d, shape):
    n = shape[-1]
    m = gen(rng, d, shape)
    a = m @ np.conj(np.swapaxes(m, -1, -2)) + n * np.eye(n)
    return a.astype(d.numpy_dtype)


def cond_mag(a):
    """Scale for absolute tolerances: condition number times the largest entry size."""
    a = hp(a)
    if a.size == 0:
        return 1.0
    c = float(np.max(np.linalg.cond(a))) if a.shape[-1] > 0 else 1.0
    return max(1.0, c)


# Square-matrix shapes per variant (the noncontig variant uploads transposed views).
SQ = {"basic": [(3, 3), (2, 4, 4), (1, 1)], "noncontig": [(3, 3), (2, 3, 3)],
      "zero": [(0, 3, 3), (0, 0)], "broadcast": [], "0d": []}


def inv_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = well_cond(rng, d, s)
        e = np.linalg.inv(hp(a)) if a.size else np.zeros(s, hp(a).dtype)
        res.append(Case([(a, d)], {}, e, d, mag=cond_mag(a) * max(1.0, np.max(np.abs(e),
                                                                                  initial=0))))
    return res


def det_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = well_cond(rng, d, s)
        e = np.linalg.det(hp(a)) if a.size else np.ones(s[:-2], hp(a).dtype)
        mag = cond_mag(a) * max(1.0, float(np.max(np.abs(e), initial=0))) * max(1, s[-1])
        res.append(Case([(a, d)], {}, e, d, mag=mag))
    if variant == "basic":
        # A singular matrix: det 0 (no error), checked with an absolute tolerance.
        a = np.array([[1, 2], [2, 4]], d.numpy_dtype)
        res.append(Case([(a, d)], {}, np.zeros((), hp(a).dtype), d, mag=10.0))
    return res


def slogdet_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = well_cond(rng, d, s)
        if a.size:
            sg, la = np.linalg.slogdet(hp(a))
        else:
            sg, la = np.ones(s[:-2], hp(a).dtype), np.zeros(s[:-2])
        res.append(Case([(a, d)], {}, [sg, la], [d, real_of(d)],
                         mag=cond_mag(a) * max(1, s[-1])))
    return res


def solve_cases(rng, d, variant):
    table = {"basic": [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 4, 4), (2, 4)),
                       ((2, 4, 4), (2, 4, 1))],
             "broadcast": [((2, 1, 3, 3), (4, 3, 2)), ((3, 3), (2, 3, 1)),
                           ((2, 3, 3), (3,))],
             "noncontig": [((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 3))],
             "zero": [((0, 3, 3), (0, 3)), ((3, 3), (3, 0))]}
    res = []
    for sa, sb in table.get(variant, []):
        a = well_cond(rng, d, sa)
        b = gen(rng, d, sb)
        ha, hb = hp(a), hp(b)
        vec = len(sb) == 1 or (len(sb) == len(sa) - 1 and sb == sa[:-1])
        if vec:
            bb = np.broadcast_to(hb[..., None], np.broadcast_shapes(sa[:-2], sb[:-1])
                                 + (sa[-1], 1))
            e = np.linalg.solve(np.broadcast_to(ha, bb.shape[:-2] + sa[-2:]), bb)[..., 0] \
                if a.size and b.size else np.zeros(np.broadcast_shapes(sa[:-2], sb[:-1])
                                                   + (sa[-1],), ha.dtype)
        else:
            shp = np.broadcast_shapes(sa[:-2], sb[:-2])
            if a.size and b.size:
                e = np.linalg.solve(np.broadcast_to(ha, shp + sa[-2:]),
                                    np.broadcast_to(hb, shp + sb[-2:]))
            else:
                e = np.zeros(shp + (sa[-1], sb[-1]), ha.dtype)
        mag = cond_mag(a) * max(1.0, float(np.max(np.abs(e), initial=0)))
        res.append(Case([(a, d), (b, d)], {}, e, d, mag=mag))
    return res


def chol_sample(rng, d, s):
    """An SPD sample, its lower Cholesky factor (float64/complex128) and tolerance scale."""
    a = spd(rng, d, s)
    ha = hp(a)
    low = np.linalg.cholesky(ha) if a.size else np.zeros(s, ha.dtype)
    mag = cond_mag(a) * max(1.0, float(np.sqrt(np.max(np.abs(ha), initial=0))))
    return a, low, mag


def cholesky_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a, low, mag = chol_sample(rng, d, s)
        res.append(Case([(a, d)], {}, low, d, mag=mag))
        res.append(Case([(a, d)], {"upper": True}, mh(low), d, mag=mag))
    return res


QR_SHAPES = {"basic": [(3, 3), (4, 2), (2, 4), (2, 3, 2)], "noncontig": [(4, 3)],
             "zero": [(0, 3, 2), (3, 0)], "broadcast": [], "0d": []}


def qr_cases(rng, d, variant):
    res = []
    for s in QR_SHAPES.get(variant, []):
        a = well_cond(rng, d, s) if s[-1] == s[-2] else gen(rng, d, s)
        ha = hp(a)
        m, n = s[-2], s[-1]
        k = min(m, n)
        for mode in ("reduced", "complete", "r"):
            if ha.size:
                if mode == "r":
                    r = np.linalg.qr(ha, mode="r")
                    q = np.zeros((0,), ha.dtype)
                else:
                    q, r = np.linalg.qr(ha, mode=mode)
            else:
                qc = m if mode == "complete" else k
                rr = m if mode == "complete" else k
                q = np.zeros((0,), ha.dtype) if mode == "r" else \
                    np.broadcast_to(np.eye(m, qc), s[:-2] + (m, qc)).astype(ha.dtype)
                r = np.zeros(s[:-2] + (rr, n), ha.dtype)
            mag = 10.0 * max(1.0, float(np.max(np.abs(ha), initial=0))) * max(m, n, 1)
            res.append(Case([(a, d)], {"mode": mode}, [q, r], d, mag=mag))
    return res


def herm(rng, d, shape):
    a = gen(rng, d, shape)
    return ((a + mh(a)) / 2).astype(d.numpy_dtype)


def diag_distinct(rng, d, shape, positive=False):
    """Diagonal matrices with distinct entries: their eigen/singular vectors are unique up to
    sign and LAPACK returns them as signed unit vectors, so raw outputs can be compared.
    Dense matrices are checked by residuals in test_linalg_residuals."""
    n = shape[-1]
    k = min(shape[-2], shape[-1])
    out = np.zeros(shape, d.numpy_dtype)
    for idx in np.ndindex(*shape[:-2]):
        v = rng.permutation(np.arange(1, k + 1)) * (1.0 if positive else
                                                     rng.choice([-1.0, 1.0], k))
        m = np.zeros(shape[-2:])
        m[np.arange(k), np.arange(k)] = v + rng.uniform(-0.2, 0.2, k)
        out[idx] = m
    del n
    return out


def eigh_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = diag_distinct(rng, d, s)
        ha = hp(a)
        for uplo in ("L", "U"):
            if ha.size:
                w, v = np.linalg.eigh(ha, UPLO=uplo)
            else:
                w, v = np.zeros(s[:-1]), np.zeros(s, ha.dtype)
            res.append(Case([(a, d)], {"UPLO": uplo}, [w, v], [real_of(d), d],
                             mag=10.0 * max(1, s[-1])))
    return res


def eigvalsh_cases(rng, d, variant):
    res = []
    for s in SQ.get(variant, []):
        a = herm(rng, d, s)
        ha = hp(a)
        for uplo in ("L", "U"):
            # Only the UPLO triangle is read: spoil the other one.
            bad = a.copy()
            if a.size and s[-1] > 1:
                tri = np.triu if uplo == "L" else np.tril
                bad = (a + tri(np.full(s[-2:], 5.0), 1 if uplo == "L" else -1)).astype(
                    d.numpy_dtype)
            w = np.linalg.eigvalsh(ha, UPLO=uplo) if ha.size else np.zeros(s[:-1])
            res.append(Case([(bad, d)], {"UPLO": uplo}, w, real_of(d),
                             mag=10.0 * max(1, s[-1])))
    return res


SV_SHAPES = {"basic": [(3, 3), (4, 2), (2, 4), (2, 3, 2)], "noncontig": [(4, 3)],
             "zero": [(0, 3, 2), (3, 0), (0, 0)], "broadcast": [], "0d": []}


def svd_cases(rng, d, variant):
    res = []
    for s in SV_SHAPES.get(variant, []):
        a = diag_distinct(rng, d, s, positive=True)
        ha = hp(a)
        m, n = s[-2], s[-1]
        k = min(m, n)
        for full in (True, False):
            if ha.size:
                u, sv, vh = np.linalg.svd(ha, full_matrices=full)
            else:
                uc, vr = (m, n) if full else (k, k)
                u = np.broadcast_to(np.eye(m, uc), s[:-2] + (m, uc)).astype(ha.dtype) \
                    if full else np.zeros(s[:-2] + (m, uc), ha.dtype)
                vh = np.broadcast_to(np.eye(vr, n), s[:-2] + (vr, n)).astype(ha.dtype) \
                    if full else np.zeros(s[:-2] + (vr, n), ha.dtype)
                sv = np.zeros(s[:-2] + (k,))
            res.append(Case([(a, d)], {"full_matrices": full}, [u, sv, vh],
                             [d, real_of(d), d], mag=10.0 * max(m, n, 1)))
    return res


def svdvals_cases(rng, d, variant):
    res = []
    for s in SV_SHAPES.get(variant, []):
        a = gen(rng, d, s)
        ha = hp(a)
        sv = np.linalg.svd(ha, compute_uv=False) if ha.size else \
            np.zeros(s[:-2] + (min(s[-2], s[-1]),))
        res.append(Case([(a, d)], {}, sv, real_of(d), mag=10.0 * max(s[-1], s[-2], 1)))
    return res


LINALG_SPECS = {
    "inv": inv_cases,
    "solve": solve_cases,
    "det": det_cases,
    "slogdet": slogdet_cases,
    "cholesky": cholesky_cases,
    "qr": qr_cases,
    "eigh": eigh_cases,
    "eigvalsh": eigvalsh_cases,
    "svd": svd_cases,
    "svdvals": svdvals_cases,
}


# ---- residual checks, in units of the dtype's machine epsilon --------------------------
EPS = {F32: np.finfo(np.float32).eps, C64: np.finfo(np.float32).eps,
       F64: np.finfo(np.float64).eps, C128: np.finfo(np.float64).eps}
# A backward-stable factorisation leaves residuals of a small multiple of n * eps * |A|;
# 30 n eps is generous for n <= 16 yet far below what a wrong result gives (~1).
K = 30.0


def _nrm(x):
    return float(np.max(np.abs(x), initial=0.0))


def test_linalg_residuals(client):
    rng = np.random.default_rng(1234)
    for d in (F32, F64, C64, C128):
        eps = EPS[d]
        for bs in ((), (3,), (2, 2)):
            for n in (1, 2, 5, 16):
                a = gen(rng, d, bs + (n, n)) + n * np.eye(n, dtype=d.numpy_dtype)
                ha = hp(a)
                ta = td.tensor(a, dtype=d, client=client)
                what = "%s batch %s n %d" % (d.name, bs, n)
                lim = K * n * eps * max(1.0, _nrm(ha))
                # inv: A A^-1 - I
                ai = hp(td.op("inv", ta, client=client).numpy())
                assert _nrm(ha @ ai - np.eye(n)) <= lim * _nrm(ai), "inv " + what
                # solve: A X - B, for a matrix and a vector right-hand side
                b = gen(rng, d, bs + (n, 3))
                x = hp(td.op("solve", ta, td.tensor(b, dtype=d, client=client),
                             client=client).numpy())
                assert x.shape == bs + (n, 3)
                assert _nrm(ha @ x - hp(b)) <= lim * max(1.0, _nrm(x)), "solve " + what
                bv = gen(rng, d, bs + (n,))
                xv = hp(td.op("solve", ta, td.tensor(bv, dtype=d, client=client),
                              client=client).numpy())
                assert xv.shape == bs + (n,)
                assert _nrm(np.einsum("...ij,...j->...i", ha, xv) - hp(bv)) <= \
                    lim * max(1.0, _nrm(xv)), "solve vector " + what
                # cholesky: L L^H - A (and L lower triangular with a real positive diagonal)
                s = hp(spd(rng, d, bs + (n, n)))
                lo = hp(td.op("cholesky", td.tensor(s.astype(d.numpy_dtype), dtype=d,
                                                    client=client), client=client).numpy())
                assert np.all(np.triu(lo, 1) == 0), "cholesky triangle " + what
                dg = np.diagonal(lo, axis1=-2, axis2=-1)
                assert np.all(np.real(dg) > 0) and np.all(np.imag(dg) == 0)
                assert _nrm(lo @ mh(lo) - s) <= K * n * eps * _nrm(s), "cholesky " + what
                # qr, reduced and complete, square and tall and wide
                for m2, n2 in ((n, n), (n + 2, n), (n, n + 3)):
                    g = gen(rng, d, bs + (m2, n2))
                    hg = hp(g)
                    tg = td.tensor(g, dtype=d, client=client)
                    for mode in ("reduced", "complete"):
                        q, r = td.op("qr", tg, client=client, mode=mode)
                        q, r = hp(q.numpy()), hp(r.numpy())
                        tol = K * max(m2, n2) * eps
                        assert _nrm(q @ r - hg) <= tol * max(1.0, _nrm(hg)), \
                            "qr %s %s (%d, %d)" % (mode, what, m2, n2)
                        eye = np.eye(q.shape[-1])
                        assert _nrm(mh(q) @ q - eye) <= tol, "qr Q^H Q %s" % what
                        assert np.all(np.tril(r, -1) == 0), "qr R triangle"
                # eigh: A V - V diag(w), V^H V - I; eigvalsh agrees with eigh
                hm = hp(herm(rng, d, bs + (n, n)))
                th = td.tensor(hm.astype(d.numpy_dtype), dtype=d, client=client)
                w, v = td.op("eigh", th, client=client)
                assert w.dtype == real_of(d)
                w, v = hp(w.numpy()), hp(v.numpy())
                tol = K * n * eps * max(1.0, _nrm(hm))
                assert _nrm(hm @ v - v * w[..., None, :]) <= tol, "eigh A V - V w " + what
                assert _nrm(mh(v) @ v - np.eye(n)) <= K * n * eps, "eigh V^H V " + what
                assert np.all(np.diff(w, axis=-1) >= 0)
                wn = np.linalg.eigvalsh(hm)
                assert _nrm(w - wn) <= tol, "eigh vs numpy " + what
                w2 = hp(td.op("eigvalsh", th, client=client).numpy())
                assert _nrm(w2 - wn) <= tol, "eigvalsh " + what
                # svd: U S Vh - A, orthonormal factors, S against numpy, svdvals
                for m2, n2 in ((n, n), (n + 2, n), (n, n + 3)):
                    g = gen(rng, d, bs + (m2, n2))
                    hg = hp(g)
                    tg = td.tensor(g, dtype=d, client=client)
                    sn = np.linalg.svd(hg, compute_uv=False)
                    tol = K * max(m2, n2) * eps
                    for full in (True, False):
                        u, sv, vh = td.op("svd", tg, client=client, full_matrices=full)
                        u, sv, vh = hp(u.numpy()), hp(sv.numpy()), hp(vh.numpy())
                        k = min(m2, n2)
                        rec = (u[..., :, :k] * sv[..., None, :]) @ vh[..., :k, :]
                        assert _nrm(rec - hg) <= tol * max(1.0, _nrm(hg)), \
                            "svd U S Vh %s full=%s (%d, %d)" % (what, full, m2, n2)
                        assert _nrm(mh(u) @ u - np.eye(u.shape[-1])) <= tol
                        assert _nrm(vh @ mh(vh) - np.eye(vh.shape[-2])) <= tol
                        assert _nrm(sv - sn) <= tol * max(1.0, _nrm(sn))
                    s2 = hp(td.op("svdvals", tg, client=client).numpy())
                    assert _nrm(s2 - sn) <= tol * max(1.0, _nrm(sn)), "svdvals " + what
                # det against the product of LU's diagonal done in float64 by NumPy
                dt = hp(td.op("det", ta, client=client).numpy())
                dn = np.linalg.det(ha)
                assert np.all(np.abs(dt - dn) <= K * n * eps * np.abs(dn) * np.linalg.cond(ha)
                              ), "det " + what


@pytest.mark.parametrize("op", ["inv", "solve"])
def test_linalg_singular_error_names_batch_element(client, op):
    a = np.stack([np.eye(3), np.eye(3), np.diag([1.0, 1.0, 0.0])])
    ta = td.tensor(a, dtype=F64, client=client)
    with pytest.raises(td.TensordError) as ei:
        if op == "inv":
            td.op("inv", ta, client=client).numpy()
        else:
            td.op("solve", ta, td.tensor(np.ones((3, 3)), dtype=F64, client=client),
                  client=client).numpy()
    msg = str(ei.value)
    assert "batch element 2" in msg and "singular" in msg and "U[2,2] = 0" in msg, msg


def test_linalg_slogdet_singular(client):
    # Not a SPECS case: gradcheck reuses those, and log|det| has no finite gradient here.
    for d in (F32, F64, C64, C128):
        a = np.array([[[1, 2], [2, 4]], [[2, 0], [0, 3]]], d.numpy_dtype)
        sg, la = td.op("slogdet", td.tensor(a, dtype=d, client=client), client=client)
        np.testing.assert_array_equal(sg.numpy(), np.array([0, 1], d.numpy_dtype))
        la = la.numpy()
        assert la.dtype == real_of(d).numpy_dtype
        assert la[0] == -np.inf and abs(la[1] - np.log(6.0)) < 1e-6


def test_linalg_cholesky_not_pd_names_batch_element(client):
    a = np.stack([np.eye(2), -np.eye(2)])
    with pytest.raises(td.TensordError) as ei:
        td.op("cholesky", td.tensor(a, dtype=F32, client=client), client=client).numpy()
    msg = str(ei.value)
    assert "batch element 1" in msg and "positive-definite" in msg, msg
