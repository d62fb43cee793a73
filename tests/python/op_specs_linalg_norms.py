"""NumPy/SciPy references and sample cases for ops_linalg_norms.c in test_ops.py's SPECS format.

NORMS_SPECS maps an op name to cases(rng, dtype, variant). References are numpy.linalg.norm,
numpy.linalg.cond, singular values from numpy.linalg.svd (matrix_rank, pinv) and
scipy.linalg.expm, all in float64/complex128 on the rounded inputs, never the daemon's output.
test_gradcheck.py reruns these samples in float64/complex128 for the differentiable ops, so
the samples avoid non-differentiable points: entries away from 0 and from ties, matrices with
distinct singular values, full-rank pinv inputs (truncating pinv cases are float32/complex64
only). Singular, overflowing and rank-deficient edge cases are in test_linalg_norms.py.
"""
import numpy as np
import scipy.linalg

import tensord as td
from spec_common import Case, hp, real_of

F32, F64, C64, C128, I64 = td.float32, td.float64, td.complex64, td.complex128, td.int64
INF = float("inf")


def gen(rng, d, shape, lo=0.2, hi=1.0):
    """Entries with magnitude in [lo, hi] and random signs (or phases): away from 0."""
    mag = rng.uniform(lo, hi, shape)
    if d.kind == "c":
        z = mag * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    else:
        z = mag * rng.choice([-1.0, 1.0], shape)
    return np.asarray(z).astype(d.numpy_dtype)


def distinct_sv(rng, d, shape, sv=None):
    """Matrices Q1 diag(s) Q2^H with well separated singular values (3, 2, 1.2, ...)."""
    m, n = shape[-2], shape[-1]
    k = min(m, n)
    out = np.zeros(shape, d.numpy_dtype)
    for idx in np.ndindex(*shape[:-2]):
        s = np.array(sv if sv is not None else [3.0 - 0.9 * i for i in range(k)])
        q1 = np.linalg.qr(hp(gen(rng, d, (m, m))))[0]
        q2 = np.linalg.qr(hp(gen(rng, d, (n, n))))[0]
        out[idx] = (q1[:, :k] * s) @ np.conj(q2[:, :k]).T
    return out


def well_cond(rng, d, shape):
    n = shape[-1]
    return (gen(rng, d, shape) + n * np.eye(n)).astype(d.numpy_dtype)


# ---- vector_norm ---------------------------------------------------------------------------
def np_vector_norm(x, ord, dim, keepdim):
    """np.linalg.norm over the given dims (all when None): the reduced dims are moved last
    and flattened, so any number of them works."""
    x = hp(x)
    nd = x.ndim
    dims = list(range(nd)) if dim is None or len(dim) == 0 else [d % max(nd, 1) for d in dim]
    if nd == 0:
        dims = []
    keep = [i for i in range(nd) if i not in dims]
    y = np.transpose(x, keep + dims) if nd else x.reshape(())
    rshape = [x.shape[i] for i in keep]
    r_len = int(np.prod([x.shape[i] for i in dims])) if nd else 1
    y = y.reshape(rshape + [r_len])
    if y.shape[-1] == 0:
        r = np.zeros(rshape)
    else:
        r = np.linalg.norm(y, ord=ord, axis=-1)
    if keepdim:
        r = r.reshape([1 if i in dims else x.shape[i] for i in range(nd)])
    return np.asarray(r, np.float64)


VN = {
    "basic": [((3, 4), {}), ((3, 4), {"ord": 1.0, "dim": [1]}),
              ((3, 4), {"ord": 3.0, "dim": [0], "keepdim": True}),
              ((2, 3, 2), {"ord": 0.5, "dim": [0, 2]}), ((3, 4), {"ord": -1.0, "dim": [-1]}),
              ((3, 4), {"ord": INF, "dim": [1]}), ((2, 3, 2), {"ord": -INF, "keepdim": True}),
              ((3, 4), {"ord": 0.0, "dim": [1]}), ((4,), {"ord": 2.0, "dim": [0]}),
              ((2, 3), {"ord": -2.5})],
    "noncontig": [((3, 4), {"dim": [0]}), ((2, 3, 4), {"ord": 1.5, "dim": [0, 2]}),
                  ((3, 4), {"ord": INF})],
    "zero": [((0, 3), {}), ((0, 3), {"dim": [1]}), ((3, 0), {"ord": 1.0, "dim": [1],
                                                                "keepdim": True})],
    "0d": [((), {}), ((), {"ord": -1.0}), ((), {"ord": INF, "dim": [0]})],
}


def vector_norm_cases(rng, d, variant):
    res = []
    for shape, at in VN.get(variant, []):
        x = gen(rng, d, shape)
        if at.get("ord") == 0.0 and x.size:
            x.reshape(-1)[::3] = 0    # ord 0 counts nonzeros
        e = np_vector_norm(x, at.get("ord", 2.0), at.get("dim"), at.get("keepdim", False))
        res.append(Case([(x, d)], at, e, real_of(d), mag=max(1.0, float(np.max(e,
                                                                               initial=0)))))
    if variant == "basic" and d in (F32, C64):
        # dtype: computed (and returned) in double precision.
        wide = {F32: F64, C64: C128}[d]
        x = gen(rng, d, (3, 4))
        res.append(Case([(x, d)], {"dim": [1], "dtype": wide},
                         np_vector_norm(x, 2.0, [1], False), real_of(wide)))
    return res


# ---- matrix_norm -------------------------------------------------------------------------
MORD = {"fro": "fro", "nuc": "nuc", "inf": np.inf, "-inf": -np.inf, "1": 1, "-1": -1,
        "2": 2, "-2": -2}


def np_matrix_norm(x, ord, dim=(-2, -1), keepdim=False):
    return np.asarray(np.linalg.norm(hp(x), ord=MORD[ord], axis=tuple(dim), keepdims=keepdim),
                      np.float64)


MN = {
    "basic": [((3, 4), {}), ((3, 3), {"ord": "nuc"}), ((2, 3, 2), {"ord": "2"}),
              ((4, 3), {"ord": "-2"}), ((3, 4), {"ord": "inf"}), ((3, 4), {"ord": "-inf"}),
              ((2, 3, 4), {"ord": "1", "keepdim": True}), ((3, 4), {"ord": "-1"}),
              ((3, 2, 4), {"ord": "fro", "dim": [0, 2]}),
              ((3, 2, 4), {"ord": "inf", "dim": [2, 0], "keepdim": True}),
              ((2, 4, 3), {"ord": "nuc", "dim": [-1, 0]})],
    "noncontig": [((3, 4), {"ord": "2"}), ((2, 3, 3), {"ord": "1"}), ((2, 4, 3), {})],
    "zero": [((0, 3, 3), {"ord": "2"}), ((0, 3), {}), ((3, 0), {"ord": "nuc"}),
             ((3, 0), {"ord": "inf"})],
}


def matrix_norm_cases(rng, d, variant):
    res = []
    for shape, at in MN.get(variant, []):
        dim = at.get("dim", [-2, -1])
        ordn = at.get("ord", "fro")
        if ordn in ("2", "-2", "nuc") and len(shape) >= 2:
            # distinct singular values over the reduced dims
            mv = np.moveaxis(np.zeros(shape), dim, (-2, -1)).shape
            x = np.moveaxis(distinct_sv(rng, d, mv), (-2, -1), dim)
            x = np.ascontiguousarray(x)
        else:
            x = gen(rng, d, shape)
        e = np_matrix_norm(x, ordn, dim, at.get("keepdim", False)) if x.size else \
            np.zeros(np.linalg.norm(np.ones(shape), axis=tuple(dim),
                                    keepdims=at.get("keepdim", False)).shape)
        res.append(Case([(x, d)], at, e, real_of(d), mag=max(1.0, float(np.max(e, initial=0)))))
    if variant == "basic" and d in (F32, C64):
        wide = {F32: F64, C64: C128}[d]
        x = gen(rng, d, (3, 4))
        res.append(Case([(x, d)], {"ord": "inf", "dtype": wide}, np_matrix_norm(x, "inf"),
                         real_of(wide)))
    return res


# ---- norm (torch.linalg.norm's dispatch) -------------------------------------------------
def np_norm(x, ord, dim, keepdim):
    x = hp(x)
    if ord is None:
        return np_vector_norm(x, 2.0, dim, keepdim)
    num = ord not in ("fro", "nuc")
    if num and (dim is not None and len(dim) == 1 or dim is None and x.ndim == 1):
        return np_vector_norm(x, float(ord), dim, keepdim)
    return np_matrix_norm(x, ord, dim if dim is not None else (0, 1), keepdim)


NO = {
    "basic": [((2, 3, 4), {}), ((3, 4), {"dim": [1]}), ((3, 4), {"dim": [0, 1], "keepdim": True}),
              ((4,), {"ord": "3"}), ((4,), {"ord": "-inf"}), ((3, 4), {"ord": "inf"}),
              ((3, 4), {"ord": "1"}), ((3, 3), {"ord": "nuc"}), ((3, 3), {"ord": "-2"}),
              ((2, 3, 4), {"ord": "0.5", "dim": [2]}),
              ((2, 3, 4), {"ord": "-1", "dim": [0, 2]}),
              ((2, 3, 4), {"ord": "fro", "dim": [1, 2], "keepdim": True})],
    "noncontig": [((3, 4), {}), ((3, 4), {"ord": "2"}), ((3, 4), {"ord": "inf", "dim": [0]})],
    "zero": [((0, 3), {}), ((0, 3), {"ord": "fro"})],
    "0d": [((), {})],
}


def norm_cases(rng, d, variant):
    res = []
    for shape, at in NO.get(variant, []):
        ordn, dim = at.get("ord"), at.get("dim")
        mat = ordn is not None and (ordn in ("fro", "nuc") or (dim is not None and len(dim) == 2)
                                    or (dim is None and len(shape) == 2))
        if mat and ordn in ("2", "-2", "nuc"):
            x = distinct_sv(rng, d, shape)
        else:
            x = gen(rng, d, shape)
        e = np_norm(x, ordn, dim, at.get("keepdim", False)) if x.size else np.zeros(())
        res.append(Case([(x, d)], at, e, real_of(d), mag=max(1.0, float(np.max(e, initial=0)))))
    return res


# ---- cond --------------------------------------------------------------------------------
CO = {
    "basic": [((3, 3), None), ((2, 3, 3), "2"), ((3, 3), "-2"), ((4, 2), None), ((2, 4), "-2"),
              ((3, 3), "fro"), ((2, 3, 3), "nuc"), ((3, 3), "inf"), ((3, 3), "-inf"),
              ((3, 3), "1"), ((3, 3), "-1")],
    "noncontig": [((3, 3), None), ((2, 3, 3), "1")],
    "zero": [((0, 3, 3), None), ((0, 0), "fro")],
}


def cond_cases(rng, d, variant):
    res = []
    for shape, p in CO.get(variant, []):
        if p in (None, "2", "-2"):
            x = distinct_sv(rng, d, shape)
        else:
            x = well_cond(rng, d, shape)
        at = {} if p is None else {"p": p}
        if x.size:
            e = np.linalg.cond(hp(x), None if p is None else MORD[p])
        else:
            e = np.zeros(shape[:-2])
        e = np.asarray(e, np.float64)
        res.append(Case([(x, d)], at, e, real_of(d), mag=10.0 * max(1.0, float(np.max(e,
                                                                                 initial=0)))))
    return res


# ---- matrix_rank and pinv ------------------------------------------------------------------
EPS = {F32: np.finfo(np.float32).eps, C64: np.finfo(np.float32).eps,
       F64: np.finfo(np.float64).eps, C128: np.finfo(np.float64).eps}


def np_tol(s, d, m, n, atol, rtol):
    """torch's tolerance rule on singular values s [..., k]."""
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else EPS[d] * max(m, n)
    atol = 0.0 if atol is None else atol
    smax = np.max(np.abs(s), axis=-1, initial=0.0)
    return np.maximum(atol, rtol * smax)


def np_rank(x, d, atol=None, rtol=None, hermitian=False):
    hx = hp(x)
    m, n = x.shape[-2], x.shape[-1]
    if min(m, n) == 0 or hx.size == 0:
        return np.zeros(x.shape[:-2], np.int64)
    s = np.abs(np.linalg.eigvalsh(hx)) if hermitian else np.linalg.svd(hx, compute_uv=False)
    tol = np_tol(s, d, m, n, atol, rtol)
    return np.sum(s > tol[..., None], axis=-1).astype(np.int64)


def np_pinv(x, d, atol=None, rtol=None, hermitian=False):
    hx = hp(x)
    m, n = x.shape[-2], x.shape[-1]
    if hx.size == 0:
        return np.zeros(x.shape[:-2] + (n, m), hx.dtype)
    if hermitian:
        w, v = np.linalg.eigh(hx)
        tol = np_tol(w, d, m, n, atol, rtol)
        inv = np.where(np.abs(w) > tol[..., None], 1.0 / np.where(w == 0, 1, w), 0.0)
        return (v * inv[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    if atol is None and rtol is None:
        return np.linalg.pinv(hx)    # NumPy's own (full-rank samples: same cutoff effect)
    u, s, vh = np.linalg.svd(hx, full_matrices=False)
    tol = np_tol(s, d, m, n, atol, rtol)
    inv = np.where(s > tol[..., None], 1.0 / s, 0.0)
    return np.conj(np.swapaxes(vh, -1, -2)) @ (inv[..., :, None] * np.conj(np.swapaxes(u, -1,
                                                                                          -2)))


def int_lowrank(rng, d, m, n, r, batch=()):
    """Exactly rank-r matrices (small integer factors, exact in every dtype)."""
    b = rng.integers(-3, 4, batch + (m, r)).astype(np.float64)
    c = rng.integers(-3, 4, batch + (r, n)).astype(np.float64)
    if d.kind == "c":
        b = b + 1j * rng.integers(-2, 3, b.shape)
    return (b @ c).astype(d.numpy_dtype)


def herm_of(rng, d, n, eig):
    q = np.linalg.qr(hp(gen(rng, d, (n, n))))[0]
    return ((q * np.array(eig)) @ np.conj(q).T).astype(d.numpy_dtype)


def matrix_rank_cases(rng, d, variant):
    res = []
    if variant == "basic":
        xs = [(int_lowrank(rng, d, 4, 4, 2), {}), (int_lowrank(rng, d, 5, 3, 2, (2,)), {}),
              (int_lowrank(rng, d, 3, 5, 3), {}),
              (distinct_sv(rng, d, (4, 4), [10, 3, 1, 0.1]), {"atol": 0.5}),
              (distinct_sv(rng, d, (4, 4), [10, 3, 1, 0.1]), {"rtol": 0.05}),
              (distinct_sv(rng, d, (4, 4), [10, 3, 1, 0.1]), {"atol": 2.0, "rtol": 0.05}),
              (distinct_sv(rng, d, (4, 4), [10, 3, 1, 0.1]), {"atol": 0.0}),
              (herm_of(rng, d, 4, [5.0, -3.0, 0.02, 1.0]), {"hermitian": True, "atol": 0.5})]
        for x, at in xs:
            res.append(Case([(x, d)], at, np_rank(x, d, at.get("atol"), at.get("rtol"),
                                                   at.get("hermitian", False)), I64))
        b = rng.integers(-3, 4, (4, 2)).astype(np.float64)
        h = (b @ np.diag([1.0, -1.0]) @ b.T).astype(d.numpy_dtype)   # rank 2, indefinite
        res.append(Case([(h, d)], {"hermitian": True}, np_rank(h, d, hermitian=True), I64))
    elif variant == "noncontig":
        x = int_lowrank(rng, d, 4, 3, 2, (2,))
        res.append(Case([(x, d)], {}, np_rank(x, d), I64))
    elif variant == "zero":
        for s in ((0, 3, 3), (3, 0)):
            x = np.zeros(s, d.numpy_dtype)
            res.append(Case([(x, d)], {}, np.zeros(s[:-2], np.int64), I64))
    return res


def pinv_cases(rng, d, variant):
    res = []
    if variant == "basic":
        xs = [(distinct_sv(rng, d, (3, 3)), {}), (distinct_sv(rng, d, (4, 2)), {}),
              (distinct_sv(rng, d, (2, 2, 3)), {}),
              (herm_of(rng, d, 3, [2.0, -1.5, 1.0]), {"hermitian": True})]
        if d in (F32, C64):
            # Truncation changes the rank, where pinv is not differentiable: float32 only.
            xs += [(distinct_sv(rng, d, (4, 4), [10, 3, 1, 0.1]), {"atol": 0.5}),
                   (distinct_sv(rng, d, (3, 4), [10, 3, 0.1]), {"rtol": 0.05}),
                   (herm_of(rng, d, 3, [4.0, -0.01, 1.0]), {"hermitian": True, "atol": 0.1}),
                   (int_lowrank(rng, d, 4, 3, 2), {})]
        for x, at in xs:
            e = np_pinv(x, d, at.get("atol"), at.get("rtol"), at.get("hermitian", False))
            res.append(Case([(x, d)], at, e, d, mag=100.0 * max(1.0, float(np.max(np.abs(e))))))
    elif variant == "noncontig":
        for x in (distinct_sv(rng, d, (3, 4)), distinct_sv(rng, d, (2, 3, 3))):
            res.append(Case([(x, d)], {}, np_pinv(x, d), d, mag=100.0))
    elif variant == "zero":
        for s in ((0, 3, 2), (3, 0)):
            x = np.zeros(s, d.numpy_dtype)
            res.append(Case([(x, d)], {}, np_pinv(x, d), d))
    return res


# ---- matrix_exp -----------------------------------------------------------------------------
def expm_ref(x):
    hx = hp(x)
    if hx.size == 0:
        return hx.copy()
    out = np.empty_like(hx)
    for idx in np.ndindex(*hx.shape[:-2]):
        out[idx] = scipy.linalg.expm(hx[idx])
    return out


def matrix_exp_cases(rng, d, variant):
    res = []
    xs = []
    if variant == "basic":
        xs = [gen(rng, d, (3, 3), 0.0, 0.5), gen(rng, d, (2, 4, 4), 0.0, 0.3),
              gen(rng, d, (1, 1)),
              # Large norm: Pade 13 with scaling and squaring (s > 0).
              (gen(rng, d, (3, 3), 0.5, 1.0) * 3 - 4 * np.eye(3)).astype(d.numpy_dtype),
              # Nilpotent (strictly upper triangular): exp is a finite polynomial.
              np.triu(gen(rng, d, (4, 4)) * 3, 1).astype(d.numpy_dtype),
              # Tiny norm: Pade 3.
              gen(rng, d, (3, 3), 0.0, 0.003)]
    elif variant == "noncontig":
        xs = [gen(rng, d, (3, 3), 0.0, 1.0), gen(rng, d, (2, 3, 3), 0.0, 1.0)]
    elif variant == "zero":
        xs = [np.zeros((0, 3, 3), d.numpy_dtype), np.zeros((0, 0), d.numpy_dtype)]
    for x in xs:
        e = expm_ref(x)
        res.append(Case([(x, d)], {}, e, d, mag=10.0 * max(1.0, float(np.max(np.abs(e),
                                                                               initial=0)))))
    return res


NORMS_SPECS = {
    "vector_norm": vector_norm_cases,
    "matrix_norm": matrix_norm_cases,
    "norm": norm_cases,
    "cond": cond_cases,
    "matrix_rank": matrix_rank_cases,
    "pinv": pinv_cases,
    "matrix_exp": matrix_exp_cases,
}
