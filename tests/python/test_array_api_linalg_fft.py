"""tensord.array_api.linalg and .fft against NumPy 2 (numpy.linalg / numpy.fft implement the
standard's extensions): values, result dtypes, namedtuple results and keyword behaviour."""
import math

import numpy as np
import pytest

import tensord.array_api as xp

pytestmark = pytest.mark.timeout(300)
la = xp.linalg


def rng():
    return np.random.default_rng(7)


def close(got, want, rtol=1e-10, atol=1e-10):
    assert tuple(got.shape) == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)


def spd(r, n, batch=()):
    a = r.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_decompositions():
    r = rng()
    a = r.standard_normal((2, 4, 4))
    s = spd(r, 4, (2,))
    close(la.cholesky(xp.asarray(s)), np.linalg.cholesky(s))
    close(la.cholesky(xp.asarray(s), upper=True), np.linalg.cholesky(s, upper=True))
    close(la.det(xp.asarray(a)), np.linalg.det(a))
    close(la.inv(xp.asarray(a)), np.linalg.inv(a))
    sd = la.slogdet(xp.asarray(a))
    ws = np.linalg.slogdet(a)
    assert type(sd).__name__ == "SlogdetResult" and sd._fields == ("sign", "logabsdet")
    close(sd.sign, ws.sign)
    close(sd.logabsdet, ws.logabsdet)
    e = la.eigh(xp.asarray(s))
    assert e._fields == ("eigenvalues", "eigenvectors")
    we = np.linalg.eigh(s)
    close(e.eigenvalues, we.eigenvalues)
    # eigenvectors up to sign: check A v = w v
    v = e.eigenvectors.numpy()
    np.testing.assert_allclose(s @ v, v * e.eigenvalues.numpy()[..., None, :], atol=1e-9)
    close(la.eigvalsh(xp.asarray(s)), np.linalg.eigvalsh(s))
    m = r.standard_normal((3, 5, 3))
    for mode in ("reduced", "complete"):
        q, rr = la.qr(xp.asarray(m), mode=mode)
        wq, wr = np.linalg.qr(m, mode=mode)
        assert q.shape == wq.shape and rr.shape == wr.shape
        np.testing.assert_allclose((q @ rr).numpy(), m, atol=1e-10)
        np.testing.assert_allclose(np.abs(rr.numpy()), np.abs(wr), atol=1e-10)
    res = la.qr(xp.asarray(m))
    assert res._fields == ("Q", "R")
    for fm in (True, False):
        u, sv, vh = la.svd(xp.asarray(m), full_matrices=fm)
        wu, wsv, wvh = np.linalg.svd(m, full_matrices=fm)
        assert (u.shape, sv.shape, vh.shape) == (wu.shape, wsv.shape, wvh.shape)
        close(sv, wsv)
    assert la.svd(xp.asarray(m))._fields == ("U", "S", "Vh")
    close(la.svdvals(xp.asarray(m)), np.linalg.svdvals(m))


def test_solve_vector_and_matrix_rhs():
    r = rng()
    a = r.standard_normal((2, 3, 3))
    b1 = r.standard_normal(3)
    close(la.solve(xp.asarray(a), xp.asarray(b1)), np.linalg.solve(a, b1[None, :, None])[..., 0])
    # x2 of shape (3, 3) is a matrix (the standard: a vector only when 1-D), broadcast
    b2 = r.standard_normal((3, 3))
    close(la.solve(xp.asarray(a), xp.asarray(b2)), np.linalg.solve(a, b2))
    b3 = r.standard_normal((4, 1, 3, 2))
    close(la.solve(xp.asarray(a), xp.asarray(b3)), np.linalg.solve(a, b3))
    f32 = la.solve(xp.asarray(a[0], dtype=xp.float32), xp.asarray(b1))
    assert f32.dtype == xp.float64                 # promoted per the standard


def test_products_and_norms():
    r = rng()
    a = r.standard_normal((2, 3, 4))
    x = xp.asarray(a)
    close(la.matmul(x, xp.asarray(a.swapaxes(-1, -2))), a @ a.swapaxes(-1, -2))
    close(la.matrix_transpose(x), np.linalg.matrix_transpose(a))
    close(la.tensordot(x, xp.asarray(a), axes=([1, 2], [1, 2])),
          np.linalg.tensordot(a, a, axes=([1, 2], [1, 2])))
    close(la.vecdot(x, x), np.linalg.vecdot(a, a))
    u, v = r.standard_normal(4), r.standard_normal(5)
    close(la.outer(xp.asarray(u), xp.asarray(v)), np.linalg.outer(u, v))
    p, q = r.standard_normal((2, 3)), r.standard_normal((4, 1, 3))
    close(la.cross(xp.asarray(p), xp.asarray(q)), np.linalg.cross(p, q))
    p0, q0 = r.standard_normal((3, 2)), r.standard_normal((3, 2))
    close(la.cross(xp.asarray(p0), xp.asarray(q0), axis=0), np.cross(p0, q0, axis=0))
    for off in (-2, -1, 0, 1, 3, 5):
        close(la.diagonal(x, offset=off), np.linalg.diagonal(a, offset=off))
        close(la.trace(x, offset=off), np.linalg.trace(a, offset=off))
    ti = la.trace(xp.asarray(np.arange(9, dtype=np.int32).reshape(3, 3)))
    assert ti.dtype == xp.int64 and int(ti) == 12
    for ord_ in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        for kd in (False, True):
            close(la.matrix_norm(x, ord=ord_, keepdims=kd),
                  np.linalg.matrix_norm(a, ord=ord_, keepdims=kd))
    c = a + 1j * r.standard_normal(a.shape)
    n = la.matrix_norm(xp.asarray(c))
    assert n.dtype == xp.float64
    close(n, np.linalg.matrix_norm(c))
    for ord_ in (2, 1, 0, math.inf, -math.inf, 3, 0.5, -1):
        for axis in (None, 1, (0, 2), -1):
            for kd in (False, True):
                close(la.vector_norm(x, ord=ord_, axis=axis, keepdims=kd),
                      np.linalg.vector_norm(a, ord=ord_, axis=axis, keepdims=kd))
    big = xp.asarray([1e200, 1e200])
    assert math.isclose(float(la.vector_norm(big)), 1e200 * math.sqrt(2), rel_tol=1e-14)
    cv = la.vector_norm(xp.asarray(np.array([3 + 4j, 0j], np.complex64)))
    assert cv.dtype == xp.float32 and math.isclose(float(cv), 5.0, rel_tol=1e-6)


def test_power_rank_pinv():
    r = rng()
    a = r.standard_normal((2, 3, 3))
    x = xp.asarray(a)
    for n in (0, 1, 2, 5, -1, -3):
        close(la.matrix_power(x, n), np.linalg.matrix_power(a, n), rtol=1e-8)
    ip = la.matrix_power(xp.asarray(np.array([[1, 1], [0, 1]])), 4)
    assert ip.dtype == xp.int64 and ip.numpy().tolist() == [[1, 4], [0, 1]]
    low = r.standard_normal((3, 5, 2)) @ r.standard_normal((3, 2, 4))
    close(la.matrix_rank(xp.asarray(low)), np.linalg.matrix_rank(low))
    assert la.matrix_rank(xp.asarray(low)).dtype == xp.int64
    close(la.matrix_rank(xp.asarray(a)), np.linalg.matrix_rank(a))
    close(la.matrix_rank(xp.asarray(low), rtol=0.5), np.linalg.matrix_rank(low, rtol=0.5))
    close(la.pinv(xp.asarray(low)), np.linalg.pinv(low), rtol=1e-8, atol=1e-9)
    m = r.standard_normal((4, 6))
    close(la.pinv(xp.asarray(m)), np.linalg.pinv(m), rtol=1e-8, atol=1e-10)
    close(la.pinv(xp.asarray(m), rtol=0.9), np.linalg.pinv(m, rtol=0.9), atol=1e-10)


def test_linalg_errors():
    with pytest.raises(ValueError):
        la.inv(xp.ones(3))
    with pytest.raises(ValueError):
        la.det(xp.ones((2, 3)))
    with pytest.raises(ValueError):
        la.cross(xp.ones(2), xp.ones(2))
    with pytest.raises(ValueError):
        la.outer(xp.ones((2, 2)), xp.ones(2))
    with pytest.raises(ValueError):
        la.qr(xp.ones((2, 2)), mode="r")


# ---- fft -----------------------------------------------------------------------------
def signal(r, shape, cplx):
    s = r.standard_normal(shape)
    return s + 1j * r.standard_normal(shape) if cplx else s


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"])
def test_fft_one_axis(name):
    r = rng()
    cplx = name in ("fft", "ifft", "irfft", "hfft")
    a = signal(r, (3, 8), cplx)
    f, g = getattr(xp.fft, name), getattr(np.fft, name)
    for n in (None, 5, 12):
        for axis in (-1, 0):
            for norm in ("backward", "ortho", "forward"):
                got = f(xp.asarray(a), n=n, axis=axis, norm=norm)
                want = g(a, n=n, axis=axis, norm=norm)
                assert got.dtype.name == want.dtype.name
                close(got, want)
    c64 = f(xp.asarray(a.astype(np.complex64 if cplx else np.float32)))
    assert c64.dtype.name == g(a.astype(np.complex64 if cplx else np.float32)).dtype.name
    with pytest.raises(ValueError):
        f(xp.asarray(a), norm="none")


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_fft_many_axes(name):
    r = rng()
    cplx = name in ("fftn", "ifftn", "irfftn")
    a = signal(r, (4, 6, 5), cplx)
    f, g = getattr(xp.fft, name), getattr(np.fft, name)
    for s, axes in ((None, None), ((4, 8), (0, 2)), (None, (1,)), ((3, -1), (-1, 1)),
                    ((6, 6), None)):
        for norm in ("backward", "ortho", "forward"):
            got = f(xp.asarray(a), s=s, axes=axes, norm=norm)
            if s is not None:
                ax = axes if axes is not None else range(a.ndim - len(s), a.ndim)
                s_np = [a.shape[x] if v == -1 else v for v, x in zip(s, ax)]
                ax = list(ax)
            else:
                s_np, ax = None, axes
            want = g(a, s=s_np, axes=ax, norm=norm)
            close(got, want)


def test_fftfreq_and_shift():
    for n in (1, 7, 8):
        for d in (1.0, 0.25):
            got = xp.fft.fftfreq(n, d=d)
            assert got.dtype == xp.float64
            close(got, np.fft.fftfreq(n, d=d), rtol=1e-15)
            close(xp.fft.rfftfreq(n, d=d), np.fft.rfftfreq(n, d=d), rtol=1e-15)
    assert xp.fft.fftfreq(4, dtype=xp.float32).dtype == xp.float32
    a = np.arange(30.0).reshape(5, 6)
    for axes in (None, 0, (1,), (0, 1)):
        close(xp.fft.fftshift(xp.asarray(a), axes=axes), np.fft.fftshift(a, axes=axes))
        close(xp.fft.ifftshift(xp.asarray(a), axes=axes), np.fft.ifftshift(a, axes=axes))
