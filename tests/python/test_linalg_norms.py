"""Edge cases of ops_linalg_norms.c beyond op_specs_linalg_norms.py's samples, through the
torch-like wrappers of tensord.linalg: every ord/axis combination of np.linalg.norm with
numeric ords, overflow safety in float32, singular matrices for cond (inf), rank-deficient
matrix_rank and pinv (checked against NumPy and by the Penrose conditions), matrix_exp of
large-norm and nilpotent matrices against scipy.linalg.expm, gradients through the wrappers,
and errors naming the op. References are NumPy/SciPy in float64 on the rounded inputs.
"""
import numpy as np
import pytest
import scipy.linalg

import tensord as td

F32, F64, C64, C128 = td.float32, td.float64, td.complex64, td.complex128
DTYPES = (F32, F64, C64, C128)
RTOL = {F32: 2e-5, C64: 2e-5, F64: 1e-11, C128: 1e-11}
INF = float("inf")


def rnd(rng, d, shape):
    x = rng.standard_normal(shape)
    if d.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(d.numpy_dtype)


def hp(x):
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def close(got, want, d, scale=1.0, what=""):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, "%s: shape %s vs %s" % (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=RTOL[d], atol=RTOL[d] * scale, err_msg=what)


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_vector_ords_every_axis(client, d):
    rng = np.random.default_rng(1)
    x = rnd(rng, d, (3, 4, 5))
    x[0, 1, 2] = 0
    tx = td.tensor(x, dtype=d, client=client)
    for ord in (2, 1, 3, 0.5, 0, -1, -2.5, INF, -INF):
        for axis in (0, 1, 2, -1):
            for keep in (False, True):
                with np.errstate(divide="ignore"):   # 0 ** negative ord is inf
                    want = np.linalg.norm(hp(x), ord=ord, axis=axis, keepdims=keep)
                for got in (td.linalg.vector_norm(tx, ord, dim=axis, keepdim=keep),
                            td.linalg.norm(tx, ord, dim=axis, keepdim=keep)):
                    assert got.dtype == {C64: F32, C128: F64}.get(d, d)
                    close(got.numpy(), want, d, 10.0, "ord %s axis %s" % (ord, axis))
        # dim None: the flattened vector
        with np.errstate(divide="ignore"):
            want = np.linalg.norm(hp(x).ravel(), ord)
        close(td.linalg.vector_norm(tx, ord).numpy(), want, d, 10.0, "ord %s all" % ord)


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_matrix_ords_every_axis_pair(client, d):
    rng = np.random.default_rng(2)
    x = rnd(rng, d, (3, 4, 5))
    tx = td.tensor(x, dtype=d, client=client)
    for ord in ("fro", "nuc", INF, -INF, 1, -1, 2, -2):
        for axes in ((0, 1), (1, 0), (1, 2), (2, 0), (-1, -2)):
            for keep in (False, True):
                want = np.linalg.norm(hp(x), ord=ord, axis=axes, keepdims=keep)
                for got in (td.linalg.matrix_norm(tx, ord, dim=axes, keepdim=keep),
                            td.linalg.norm(tx, ord, dim=axes, keepdim=keep)):
                    close(got.numpy(), want, d, 100.0, "ord %s axes %s" % (ord, axes))
    # 2-d input with a numeric ord and no dim is a matrix norm, as in torch.linalg.norm.
    m = x[0]
    for ord in (1, 2, INF, "nuc"):
        close(td.linalg.norm(td.tensor(m, dtype=d, client=client), ord).numpy(),
              np.linalg.norm(hp(m), ord), d, 100.0, "2-d ord %s" % ord)


def test_norms_do_not_overflow_float32(client):
    x = np.full((4, 3), 1e30, np.float32)
    tx = td.tensor(x, dtype=F32, client=client)
    assert np.isclose(td.linalg.vector_norm(tx).numpy(), np.sqrt(12) * 1e30, rtol=1e-6)
    assert np.isclose(td.linalg.matrix_norm(tx).numpy(), np.sqrt(12) * 1e30, rtol=1e-6)
    assert np.isclose(td.linalg.vector_norm(tx, 3).numpy(), 12 ** (1 / 3) * 1e30, rtol=1e-6)
    tiny = np.full((5,), 1e-30, np.float32)
    got = td.linalg.vector_norm(td.tensor(tiny, dtype=F32, client=client)).numpy()
    assert np.isclose(got, np.sqrt(5) * 1e-30, rtol=1e-6)
    # complex64 with parts near float32's limit: |z| = 2.83e38 is representable (the
    # squares of the parts are not), the 2-norm of three of them (4.9e38) is not.
    z = np.full((3,), 2e38 + 2e38j, np.complex64)
    tz = td.tensor(z, dtype=C64, client=client)
    got = td.linalg.vector_norm(tz, INF).numpy()
    assert np.isclose(got, np.sqrt(8) * 1e38, rtol=1e-6)
    assert np.isclose(td.linalg.vector_norm(tz, -INF).numpy(), np.sqrt(8) * 1e38, rtol=1e-6)
    assert np.isinf(td.linalg.vector_norm(tz).numpy())
    got = td.linalg.vector_norm(td.tensor(z[:1] / 2, dtype=C64, client=client), 2).numpy()
    assert np.isclose(got, np.sqrt(2) * 1e38, rtol=1e-6)


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_cond_of_singular_matrices(client, d):
    a = np.array([[[1, 2, 3], [2, 4, 6], [0, 1, 1]], [[2, 0, 0], [0, 1, 0], [0, 0, 3]]],
                 d.numpy_dtype)
    ta = td.tensor(a, dtype=d, client=client)
    for p in ("fro", "nuc", INF, -INF, 1, -1):
        got = td.linalg.cond(ta, p).numpy()
        assert np.isinf(got[0]) and got[0] > 0, p
        close(got[1], np.linalg.cond(hp(a[1]), p), d, 10.0, "cond p=%s" % p)
    z = np.diag([1.0, 0.0]).astype(d.numpy_dtype)
    assert np.isinf(td.linalg.cond(td.tensor(z, dtype=d, client=client)).numpy())
    close(td.linalg.cond(ta, 2).numpy()[1], 3.0, d, 1.0, "cond 2")
    close(td.linalg.cond(ta, -2).numpy()[1], 1 / 3.0, d, 1.0, "cond -2")


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_rank_and_pinv_of_rank_deficient(client, d):
    rng = np.random.default_rng(3)
    b = rng.integers(-3, 4, (2, 6, 2)).astype(np.float64)
    c = rng.integers(-3, 4, (2, 2, 5)).astype(np.float64)
    a = (b @ c).astype(d.numpy_dtype)              # exactly rank 2 (integers)
    ta = td.tensor(a, dtype=d, client=client)
    r = td.linalg.matrix_rank(ta).numpy()
    assert r.dtype == np.int64 and list(r) == [2, 2]
    for p, want in zip(td.linalg.pinv(ta).numpy(), [np.linalg.pinv(hp(x), rtol=1e-6)
                                                    for x in a]):
        close(p, want, d, 100.0, "pinv of rank 2")
    ha = hp(a[0])
    # Penrose conditions on the first element: A P A = A, P A P = P, (A P)^H = A P.
    p = hp(td.linalg.pinv(ta).numpy()[0])
    tol = 1e-3 if d in (F32, C64) else 1e-9
    assert np.max(np.abs(ha @ p @ ha - ha)) < tol * np.max(np.abs(ha))
    assert np.max(np.abs(p @ ha @ p - p)) < tol * np.max(np.abs(p))
    ap = ha @ p
    assert np.max(np.abs(ap - np.conj(ap.T))) < tol
    # hermitian: |eigenvalues| and the lower triangle only
    h = np.array([[4.0, 99.0, 99.0], [2.0, 1.0, 99.0], [0.0, 0.5, -3.0]], d.numpy_dtype)
    hl = np.tril(hp(h)) + np.tril(hp(h), -1).conj().T
    th = td.tensor(h, dtype=d, client=client)
    assert int(td.linalg.matrix_rank(th, hermitian=True).numpy()) == 3
    w = np.abs(np.linalg.eigvalsh(hl))
    atol = float(np.sort(w)[1]) * 1.01
    assert int(td.linalg.matrix_rank(th, atol=atol, hermitian=True).numpy()) == 1
    close(td.linalg.pinv(th, hermitian=True).numpy(), np.linalg.pinv(hl, hermitian=True), d,
          10.0, "pinv hermitian")


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_matrix_exp_against_scipy(client, d):
    rng = np.random.default_rng(4)
    cases = [rnd(rng, d, (4, 4)) * 12,                              # large norm, scaled
             np.triu(rnd(rng, d, (6, 6)) * 5, 1),                   # nilpotent
             rnd(rng, d, (3, 3)) * 1e-3,                            # tiny: low Pade degree
             (rnd(rng, d, (5, 5)) - 30 * np.eye(5)).astype(d.numpy_dtype),   # decaying
             np.array([[1, 1e6], [0, 2]], d.numpy_dtype)]           # far from normal
    for a in cases:
        a = a.astype(d.numpy_dtype)
        want = scipy.linalg.expm(hp(a))
        got = td.linalg.matrix_exp(td.tensor(a, dtype=d, client=client)).numpy()
        close(got, want, d, max(1.0, float(np.max(np.abs(want)))), "expm %s" % (a.shape,))
    # batched, non-contiguous (a transposed view)
    a = rnd(rng, d, (2, 3, 3))
    t = td.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=d,
                  client=client).transpose(-1, -2)
    want = np.stack([scipy.linalg.expm(hp(x)) for x in a])
    close(td.linalg.matrix_exp(t).numpy(), want, d, 10.0, "expm batch")


def test_gradients_through_the_wrappers(client):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    t = td.tensor(x, dtype=F64, client=client, requires_grad=True)
    (g,) = td.autograd.grad([td.linalg.norm(t, 3, dim=1).sum()], [t])
    n = np.linalg.norm(x, 3, axis=1, keepdims=True)
    np.testing.assert_allclose(g.numpy(), np.sign(x) * np.abs(x) ** 2 / n ** 2, rtol=1e-12)
    (g,) = td.autograd.grad([td.linalg.matrix_norm(t, "nuc")], [t])
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(g.numpy(), u @ vh, rtol=1e-10, atol=1e-12)
    a = rng.standard_normal((3, 3))
    ta = td.tensor(a, dtype=F64, client=client, requires_grad=True)
    (g,) = td.autograd.grad([td.linalg.matrix_exp(ta).sum()], [ta])
    # d/dA sum(expm(A)) = L(A^T, ones): the upper-right block of expm([[A^T, 1], [0, A^T]])
    big = np.block([[a.T, np.ones((3, 3))], [np.zeros((3, 3)), a.T]])
    np.testing.assert_allclose(g.numpy(), scipy.linalg.expm(big)[:3, 3:], rtol=1e-12)


def test_errors_name_the_op(client):
    t = td.tensor(np.ones((2, 3)), dtype=F64, client=client)
    with pytest.raises(td.TensordError, match="matrix_norm: matrix ord"):
        td.linalg.matrix_norm(t, 3).numpy()
    with pytest.raises(td.TensordError, match="cond: p 'fro' needs square"):
        td.linalg.cond(t, "fro").numpy()
    with pytest.raises(td.TensordError, match="norm: with ord and no dim"):
        td.linalg.norm(td.tensor(np.ones((2, 2, 2)), dtype=F64, client=client), 2).numpy()
    with pytest.raises(td.TensordError, match="vector_norm: cannot compute the inf norm"):
        td.linalg.vector_norm(td.tensor(np.ones((0,)), dtype=F64, client=client),
                              INF).numpy()
    with pytest.raises(td.TensordError, match="pinv: hermitian needs square"):
        td.linalg.pinv(t, hermitian=True).numpy()
    with pytest.raises(td.TensordError, match="matrix_exp"):
        td.linalg.matrix_exp(t).numpy()
