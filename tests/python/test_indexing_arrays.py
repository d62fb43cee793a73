"""Integer array indexing (Array API 2024.12, NumPy's rules) of tensord tensors against NumPy:
several integer arrays (tensord tensors, NumPy arrays, nested lists; int32 and int64) that
broadcast together, negative indices, integers and boolean masks among them, adjacent arrays
between slices (result dims in place of the indexed dims) and separated arrays (result dims
first), Ellipsis and None, out-of-range and unbroadcastable indices as IndexError, the
gradient through such an index, and assignment through the same keys."""
import numpy as np
import pytest

import tensord as td

pytestmark = pytest.mark.timeout(300)

SHAPE = (4, 5, 6, 3)


def base(dtype=np.float64):
    return np.arange(np.prod(SHAPE)).reshape(SHAPE).astype(dtype) * 0.5 - 7


def idx(*shape, lo=-3, hi=3, seed=0):
    return np.random.default_rng(seed).integers(lo, hi, shape)


# Keys as NumPy sees them; each is also run with its arrays as tensors, lists and int32.
KEYS = [
    ([0, 2, -1], [1, -5, 4]),                                  # two arrays, same shape
    (idx(2, 1), idx(3)),                                        # broadcasting (2,1) with (3,)
    (idx(2, 3, seed=1), idx(1, seed=2), idx(3, seed=3)),        # three axes
    (idx(2, 2), idx(2, 2, seed=4), idx(2, 2, seed=5), idx(2, 2, lo=-3, hi=3, seed=6)),
    (slice(None), idx(4, seed=7), idx(4, seed=8)),              # leading slice, adjacent
    (slice(1, 3), idx(2, 1, seed=9), idx(1, 3, seed=10), slice(None, None, -1)),
    (Ellipsis, idx(3, seed=11), idx(3, seed=12)),               # ellipsis before
    (idx(3, seed=13), idx(3, seed=14), Ellipsis),               # ellipsis after
    (idx(3, seed=15), slice(None), idx(3, seed=16)),            # separated: dims first
    (idx(2, 2, seed=17), slice(None), slice(None), idx(2, 1, seed=18)),
    (0, slice(None), idx(3, seed=19)),                          # int counts as an array
    (slice(None), 1, idx(2, 2, seed=20)),                       # int adjacent to an array
    (idx(2, seed=21), 2, slice(None), -1),
    (None, idx(3, seed=22), idx(3, seed=23)),                   # None before
    (idx(3, seed=24), None, idx(3, seed=25)),                   # None between: separated
    (np.array(1), np.array([[0, 2]])),                          # a 0-d array
    (np.zeros((0,), np.int64), np.zeros((0,), np.int64)),       # empty arrays
    (idx(2, 0, seed=26), idx(1, seed=27), slice(None)),         # empty broadcast shape
]


def as_kind(key, kind):
    out = []
    for k in key:
        if isinstance(k, np.ndarray) and k.dtype.kind == "i":
            if kind == "tensor":
                k = td.tensor(k.astype(np.int64))
            elif kind == "int32":
                k = td.tensor(k.astype(np.int32))
            elif kind == "np_int32":
                k = k.astype(np.int32)
            elif kind == "list":
                k = k.tolist()
        out.append(k)
    return tuple(out)


def np_key(key):
    return tuple(np.asarray(k) if isinstance(k, list) else k for k in key)


@pytest.mark.parametrize("kind", ["numpy", "np_int32", "tensor", "int32", "list"])
@pytest.mark.parametrize("k", range(len(KEYS)))
def test_getitem_matches_numpy(k, kind):
    a = base()
    key = np_key(KEYS[k])
    want = a[key]
    got = td.tensor(a)[as_kind(key, kind)]
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_getitem_dtypes_and_noncontiguous():
    for dt in (np.int32, np.complex64, np.bool_, np.float32):
        a = (base() % 5).astype(dt)
        key = (idx(2, 1, seed=30), slice(None), idx(3, seed=31))
        np.testing.assert_array_equal(td.tensor(a)[key].numpy(), a[key])
    # A transposed (non-contiguous) tensor.
    a = base()
    t = td.tensor(a).permute(3, 1, 0, 2)
    at = a.transpose(3, 1, 0, 2)
    key = (slice(None), [4, 0, -2], [1, 3, 0])
    np.testing.assert_array_equal(t[key].numpy(), at[key])


def test_masks_with_integer_arrays():
    a = base()
    m = np.array([True, False, True, True, False])
    key = (slice(None), m, [0, 5, -1])
    np.testing.assert_array_equal(td.tensor(a)[key].numpy(), a[key])
    m2 = (np.arange(30).reshape(5, 6) % 4) == 1
    key = ([1, 3, 0, 2, 1, 1, 0, 2][:int(m2.sum())], m2)
    np.testing.assert_array_equal(td.tensor(a)[key].numpy(), a[key])
    # A mask with an integer only (no array) follows NumPy too: dims first when separated.
    key = (slice(None), m, slice(None), 1)
    np.testing.assert_array_equal(td.tensor(a)[key].numpy(), a[key])


def test_hand_checked_values():
    # x = [[0, 1, 2], [3, 4, 5]]; x[[1, 0, -1], [2, -3, 1]] = [5, 0, 4] (no NumPy involved).
    x = td.tensor(np.array([[0, 1, 2], [3, 4, 5]], np.int64))
    assert x[[1, 0, -1], [2, -3, 1]].numpy().tolist() == [5, 0, 4]
    # Broadcast (2, 1) with (2,): [[x[0,0], x[0,2]], [x[1,0], x[1,2]]].
    assert x[[[0], [1]], [0, 2]].numpy().tolist() == [[0, 2], [3, 5]]


def test_errors():
    t = td.tensor(base())
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 5"):
        t[[0, 1], [2, 5]]
    with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 4"):
        t[[0, -5], [2, 1]]
    with pytest.raises(IndexError, match="out of bounds"):
        t[td.tensor(np.array([0, 1])), td.tensor(np.array([0, 9], np.int32)), 1]
    with pytest.raises(IndexError, match="could not be broadcast"):
        t[[0, 1, 2], [0, 1]]
    with pytest.raises(IndexError, match="too many indices"):
        t[[0], [0], [0], [0], [0]]
    with pytest.raises(IndexError):
        t[[0, 1], [0.5, 1.0]]
    t2 = td.tensor(np.ones((3, 3)))
    with pytest.raises(IndexError, match="out of bounds"):
        t2[[0, 1], 3]
    with pytest.raises(IndexError, match="out of bounds"):
        t2[[0, 3], [0, 1]] = 0.0
    np.testing.assert_array_equal(t2.numpy(), np.ones((3, 3)))   # nothing written


def test_gradient_through_array_index():
    a = base()
    x = td.tensor(a).requires_grad_()
    key = (idx(2, 1, seed=40), slice(None), idx(3, seed=41))
    w = np.random.default_rng(42).standard_normal(a[key].shape)
    (x[key] * td.tensor(w)).sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, key, w)   # repeated positions accumulate
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=0, atol=1e-12)


SET_KEYS = [
    ([0, 2, -1], [1, -5, 4]),
    (slice(None), [[0], [2]], [1, -1]),
    ([0, 3], slice(1, 4), [2, 0]),                      # separated: value in dims-first order
    (Ellipsis, [1, 2], [0, -1]),
    (1, slice(None), [0, 4]),
    ([2], None, [3]),
    ([1, 0],),                                          # one array
    (slice(None, None, 2), [0, -1], slice(None), [2, 0]),
]


@pytest.mark.parametrize("k", range(len(SET_KEYS)))
@pytest.mark.parametrize("value", ["scalar", "full", "broadcast"])
def test_setitem_matches_numpy(k, value):
    a = base()
    key = SET_KEYS[k]
    shape = a[key].shape
    rng = np.random.default_rng(k)
    if value == "scalar":
        v = 2.5
    elif value == "full":
        v = rng.standard_normal(shape)
    else:
        v = rng.standard_normal(shape[-1:])
    t = td.tensor(a)
    t[key] = td.tensor(v) if isinstance(v, np.ndarray) else v
    a[key] = v
    np.testing.assert_array_equal(t.numpy(), a)


def test_setitem_through_view_and_dtype():
    # Integer tensor written with float values (cast like NumPy's assignment), through a
    # view of a larger tensor, with int32 tensor indices.
    a = np.arange(40, dtype=np.int32).reshape(5, 8)
    t = td.tensor(a)
    v = t[1:4]
    i = td.tensor(np.array([0, 2], np.int32))
    j = td.tensor(np.array([-1, 3], np.int32))
    v[i, j] = 7.0
    a[1:4][[0, 2], [-1, 3]] = 7
    np.testing.assert_array_equal(t.numpy(), a)
    with pytest.raises(IndexError, match="out of bounds"):
        t[[0, 5], [0, 0]] = 1
    np.testing.assert_array_equal(t.numpy(), a)   # nothing written
