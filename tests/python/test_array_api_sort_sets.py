"""tensord.array_api sorting, searching and set functions (the daemon's sort, argsort,
searchsorted, count_nonzero/nonzero and unique_count/unique ops) against NumPy 2, including
the standard's rules: stable sorts, NaN sorted last, descending stable order, every NaN a
distinct unique value, inverse indices of x's shape, data-dependent output shapes."""
import math

import numpy as np
import pytest

import tensord.array_api as xp

pytestmark = pytest.mark.timeout(300)


def data():
    r = np.random.default_rng(11)
    return r.integers(-4, 5, (4, 7)).astype(np.float64)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort(axis, descending):
    a = data()
    t = xp.asarray(a)
    s = xp.sort(t, axis=axis, descending=descending)
    want = np.sort(a, axis=axis, stable=True)
    if descending:
        want = np.flip(want, axis=axis)
    np.testing.assert_array_equal(s.numpy(), want)
    i = xp.argsort(t, axis=axis, descending=descending)
    assert i.dtype == xp.int64
    if descending:
        # Stable descending: equal elements keep their input order (not NumPy's flip).
        wi = np.argsort(-a, axis=axis, stable=True)
    else:
        wi = np.argsort(a, axis=axis, stable=True)
    np.testing.assert_array_equal(i.numpy(), wi)


def test_sort_nan_and_dtypes():
    a = np.array([3.0, np.nan, -1.0, 2.0, np.nan, -np.inf])
    np.testing.assert_array_equal(xp.sort(xp.asarray(a)).numpy(), np.sort(a))
    np.testing.assert_array_equal(xp.argsort(xp.asarray(a)).numpy(),
                                  np.argsort(a, stable=True))
    for d in (np.int8, np.uint8, np.int32, np.int64, np.float32):
        v = np.array([5, 1, 4, 1, 0, 3], d)
        got = xp.sort(xp.asarray(v))
        assert got.dtype.name == np.dtype(d).name
        np.testing.assert_array_equal(got.numpy(), np.sort(v))
    b = np.array([True, False, True, False])
    np.testing.assert_array_equal(xp.sort(xp.asarray(b)).numpy(), np.sort(b))


def test_searchsorted():
    seq = np.array([-1.0, 0.0, 0.0, 2.5, 7.0])
    vals = np.array([[-5.0, 0.0, 2.5], [8.0, 1.0, -1.0]])
    for side in ("left", "right"):
        got = xp.searchsorted(xp.asarray(seq), xp.asarray(vals), side=side)
        assert got.dtype == xp.int64
        np.testing.assert_array_equal(got.numpy(), np.searchsorted(seq, vals, side=side))
    unsorted = np.array([7.0, -1.0, 2.5, 0.0])
    sorter = np.argsort(unsorted)
    got = xp.searchsorted(xp.asarray(unsorted), xp.asarray(vals),
                          sorter=xp.asarray(sorter))
    np.testing.assert_array_equal(got.numpy(), np.searchsorted(unsorted, vals, sorter=sorter))
    with pytest.raises(ValueError):
        xp.searchsorted(xp.asarray(seq), xp.asarray(vals), side="middle")


def test_nonzero():
    a = np.array([[0, 3, 0], [4, 0, 5], [0, 0, 0]])
    got = xp.nonzero(xp.asarray(a))
    want = np.nonzero(a)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        assert g.dtype == xp.int64
        np.testing.assert_array_equal(g.numpy(), w)
    got = xp.nonzero(xp.asarray(np.zeros((2, 3, 4))))
    assert len(got) == 3 and all(g.shape == (0,) for g in got)
    b = np.array([True, False, True])
    np.testing.assert_array_equal(xp.nonzero(xp.asarray(b))[0].numpy(), [0, 2])
    with pytest.raises(ValueError):
        xp.nonzero(xp.asarray(1.0))


def test_count_nonzero_with_op():
    a = np.array([[0, 1, 2], [3, 0, 0]])
    for axis in (None, 0, 1, (0, 1), ()):
        for kd in (False, True):
            np.testing.assert_array_equal(
                xp.count_nonzero(xp.asarray(a), axis=axis, keepdims=kd).numpy(),
                np.count_nonzero(a, axis=axis, keepdims=kd))
    c = np.array([0j, 1j, 2 + 0j, 0j])
    assert int(xp.count_nonzero(xp.asarray(c))) == 2


def test_unique_functions():
    a = np.array([[3.0, 1.0, 3.0], [np.nan, 2.0, 1.0], [np.nan, 3.0, -0.0]])
    t = xp.asarray(a)
    u = xp.unique_all(t)
    assert type(u).__name__ == "UniqueAllResult"
    assert u._fields == ("values", "indices", "inverse_indices", "counts")
    w = np.unique_all(a)
    np.testing.assert_array_equal(u.values.numpy(), w.values)        # NaNs each distinct
    assert u.values.shape == (6,)
    np.testing.assert_array_equal(u.counts.numpy(), w.counts)
    assert u.inverse_indices.shape == a.shape
    np.testing.assert_array_equal(u.inverse_indices.numpy(), w.inverse_indices)
    np.testing.assert_array_equal(u.indices.numpy(), w.indices)
    for r in (u.indices, u.inverse_indices, u.counts):
        assert r.dtype == xp.int64
    # values[inverse] rebuilds x (NaNs aside)
    rebuilt = u.values.numpy()[u.inverse_indices.numpy()]
    np.testing.assert_array_equal(rebuilt[~np.isnan(a)], a[~np.isnan(a)])
    c = xp.unique_counts(t)
    assert c._fields == ("values", "counts")
    np.testing.assert_array_equal(c.counts.numpy(), np.unique_counts(a).counts)
    i = xp.unique_inverse(t)
    assert i._fields == ("values", "inverse_indices")
    np.testing.assert_array_equal(i.inverse_indices.numpy(), np.unique_inverse(a).inverse_indices)
    v = xp.unique_values(xp.asarray(np.array([5, 1, 5, 2, 1], np.int16)))
    assert v.dtype == xp.int16
    np.testing.assert_array_equal(v.numpy(), [1, 2, 5])


def test_boolean_mask_data_dependent_shape():
    a = np.arange(12.0).reshape(3, 4)
    t = xp.asarray(a)
    m = xp.asarray(a % 5 == 0)
    got = t[m]
    assert got.shape == (int(xp.sum(m)),)
    np.testing.assert_array_equal(got.numpy(), a[a % 5 == 0])
    assert math.isclose(float(xp.sum(got)), float(np.sum(a[a % 5 == 0])))
