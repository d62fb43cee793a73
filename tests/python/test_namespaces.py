"""tensord.fft / tensord.linalg / tensord.special: PyTorch's names (and aliases) reach the
daemon's ops, with torch-like positional and keyword arguments; checked against NumPy/SciPy."""
import types

import numpy as np
import pytest

import tensord as td


def test_fft_namespace_matches_numpy(client):
    x = np.random.default_rng(0).standard_normal((3, 8)) + 0j
    t = td.tensor(x)
    np.testing.assert_allclose(td.fft.fft(t).numpy(), np.fft.fft(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(td.fft.fft(t, 5, 0, "ortho").numpy(),
                               np.fft.fft(x, 5, axis=0, norm="ortho"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(td.fft.rfft(td.tensor(x.real), dim=-1).numpy(),
                               np.fft.rfft(x.real), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(td.fft.fftfreq(6, 0.5).numpy(), np.fft.fftfreq(6, 0.5))
    assert "fft" in dir(td.fft) and callable(td.fft.ifftshift)
    # The namespace module, not the same-named op function connect() adds for other ops.
    assert isinstance(td.fft, types.ModuleType) and isinstance(td.linalg, types.ModuleType)
    with pytest.raises(AttributeError):
        td.fft.not_a_transform


def test_linalg_namespace_matches_numpy(client):
    a = np.random.default_rng(1).standard_normal((2, 4, 4)) + 4 * np.eye(4)
    b = np.random.default_rng(2).standard_normal((2, 4, 3))
    ta, tb = td.tensor(a), td.tensor(b)
    np.testing.assert_allclose(td.linalg.inv(ta).numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(td.linalg.solve(ta, tb).numpy(), np.linalg.solve(a, b),
                               rtol=1e-10)
    np.testing.assert_allclose(td.linalg.det(ta).numpy(), np.linalg.det(a), rtol=1e-10)
    s = td.linalg.svdvals(ta).numpy()
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), rtol=1e-10)


def test_special_namespace_and_aliases(client):
    sp = pytest.importorskip("scipy.special")
    x = np.linspace(0.1, 5, 7)
    t = td.tensor(x)
    np.testing.assert_allclose(td.special.gammaln(t).numpy(), sp.gammaln(x), rtol=1e-13)
    np.testing.assert_allclose(td.special.psi(t).numpy(), sp.psi(x), rtol=1e-12)
    np.testing.assert_allclose(td.special.expit(t).numpy(), sp.expit(x), rtol=1e-14)
    np.testing.assert_allclose(td.special.i0e(t).numpy(), sp.i0e(x), rtol=1e-13)
    np.testing.assert_allclose(td.special.log_softmax(t, 0).numpy(),
                               x - np.log(np.sum(np.exp(x))), rtol=1e-13)


def test_linalg_namespace_has_every_torch_linalg_function(client):
    import scipy.linalg as sla
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    ta = td.tensor(a)
    for name in dir(td.linalg):
        assert callable(getattr(td.linalg, name)), name
    lu, piv = td.linalg.lu_factor(ta)
    want_lu, want_piv = sla.lu_factor(a)
    np.testing.assert_allclose(lu.numpy(), want_lu, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(piv.numpy(), want_piv + 1)    # 1-based, as torch
    np.testing.assert_allclose(td.linalg.matrix_exp(ta).numpy(), sla.expm(a), rtol=1e-12)
    np.testing.assert_allclose(td.linalg.vector_norm(ta, 3).numpy(),
                               np.sum(np.abs(a) ** 3) ** (1 / 3), rtol=1e-12)
    np.testing.assert_allclose(td.linalg.matrix_norm(ta, 2).numpy(), np.linalg.norm(a, 2),
                               rtol=1e-12)
    b = rng.standard_normal((3, 2))
    np.testing.assert_allclose(
        td.linalg.solve_triangular(td.tensor(np.triu(a)), td.tensor(b), upper=True).numpy(),
        sla.solve_triangular(np.triu(a), b), rtol=1e-12)
    mats = [rng.standard_normal(s) for s in [(4,), (4, 5), (5, 2), (2,)]]
    np.testing.assert_allclose(td.linalg.multi_dot([td.tensor(m) for m in mats]).numpy(),
                               np.linalg.multi_dot(mats), rtol=1e-12)


def test_torch_signatures_einsum_diagonal_nonzero_unique(client):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    tx, ty = td.tensor(x), td.tensor(y)
    want = np.einsum("bij,bjk->bik", x, y)
    np.testing.assert_allclose(td.einsum("bij,bjk->bik", tx, ty).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(td.einsum("bij,bjk->bik", [tx, ty]).numpy(), want, rtol=1e-12)
    # torch.diagonal's defaults are dims 0 and 1 (linalg.diagonal's are -2 and -1).
    np.testing.assert_array_equal(td.diagonal(tx).numpy(), np.diagonal(x))
    np.testing.assert_array_equal(td.diagonal(tx, 1, 1, 2).numpy(), np.diagonal(x, 1, 1, 2))
    np.testing.assert_array_equal(td.linalg.diagonal(tx).numpy(), np.diagonal(x, 0, -2, -1))
    m = np.array([[0, 1.5, 0], [2, 0, -1]])
    np.testing.assert_array_equal(td.nonzero(td.tensor(m)).numpy(), np.argwhere(m))
    for got, want in zip(td.nonzero(td.tensor(m), as_tuple=True), np.nonzero(m)):
        np.testing.assert_array_equal(got.numpy(), want)
    u = np.array([[3, 1, 3], [2, 1, 7]])
    vals, inv, counts = td.unique(td.tensor(u), return_inverse=True, return_counts=True)
    wv, winv, wc = np.unique(u, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(vals.numpy(), wv)
    np.testing.assert_array_equal(inv.numpy(), winv.reshape(u.shape))
    np.testing.assert_array_equal(counts.numpy(), wc)
    np.testing.assert_array_equal(td.unique(td.tensor(u)).numpy(), wv)
