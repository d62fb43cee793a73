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
