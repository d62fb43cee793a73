"""Binary type promotion over every pair of the 12 dtypes, checked against PyTorch's
promote_types rules written out here independently of the daemon's table (the C table is in
server/engine/core.c), and the values against NumPy computed in the promoted dtype."""
import itertools

import numpy as np
import pytest

import tensord as td
from tensord.client import bf16_bits_to_f32, f32_to_bf16_bits

pytestmark = pytest.mark.timeout(120)

ORDER = [td.bool_, td.uint8, td.int8, td.int16, td.int32, td.int64, td.float16, td.bfloat16,
         td.float32, td.float64, td.complex64, td.complex128]
SIGNED = [td.int8, td.int16, td.int32, td.int64]
FLOATS = [td.float16, td.bfloat16, td.float32, td.float64]


def category(d):
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}[d.kind]


def expected_promotion(a, b):
    """PyTorch's c10::promoteTypes, by its documented rules."""
    if a == b:
        return a
    if a == td.bool_:
        return b
    if b == td.bool_:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        hi, lo = (a, b) if ca > cb else (b, a)
        if hi.kind == "c" and lo == td.float64:
            return td.complex128          # complex64 + float64 keeps double precision
        return hi                         # int + float16 -> float16, int + complex -> complex
    if ca == 1:                           # two different integer types
        if td.uint8 in (a, b):
            other = b if a == td.uint8 else a
            return td.int16 if other == td.int8 else other
        return max(a, b, key=SIGNED.index)
    if ca == 2:
        if {a, b} == {td.float16, td.bfloat16}:
            return td.float32
        return max(a, b, key=FLOATS.index)
    return td.complex128                  # complex64 with complex128


def sample(d, rng):
    if d == td.bool_:
        return np.array([True, False, True, True])
    if d.kind in "iu":
        return rng.integers(1, 9, size=4).astype(d.numpy_dtype)
    vals = rng.uniform(-4, 4, size=4)
    if d.kind == "c":
        return (vals + 1j * rng.uniform(-4, 4, size=4)).astype(d.numpy_dtype)
    if d == td.bfloat16:
        return bf16_bits_to_f32(f32_to_bf16_bits(vals.astype(np.float32)))
    return vals.astype(d.numpy_dtype)


def upload(x, d):
    if d == td.bfloat16:
        return td.tensor(x.astype(np.float32), dtype=td.bfloat16)
    return td.tensor(x, dtype=d)


def test_rules_cover_known_pytorch_results():
    # Spot values quoted from torch.promote_types, guarding the rule function itself.
    assert expected_promotion(td.uint8, td.int8) == td.int16
    assert expected_promotion(td.int64, td.float16) == td.float16
    assert expected_promotion(td.bfloat16, td.float16) == td.float32
    assert expected_promotion(td.complex64, td.float64) == td.complex128
    assert expected_promotion(td.bool_, td.uint8) == td.uint8
    assert expected_promotion(td.int32, td.uint8) == td.int32


@pytest.mark.parametrize("a,b", list(itertools.product(ORDER, ORDER)),
                         ids=lambda d: d.name)
def test_add_promotes_like_pytorch(client, a, b):
    rng = np.random.default_rng(ORDER.index(a) * 12 + ORDER.index(b))
    xa, xb = sample(a, rng), sample(b, rng)
    out = upload(xa, a) + upload(xb, b)
    want = expected_promotion(a, b)
    assert out.dtype == want, f"{a} + {b}: got {out.dtype}, PyTorch gives {want}"
    got = out.numpy()
    if want == td.bool_:
        np.testing.assert_array_equal(got, np.logical_or(xa, xb))
        return
    ref_dtype = np.complex128 if want.kind == "c" else (
        np.float64 if want.kind == "f" else np.int64)
    ref = xa.astype(ref_dtype) + xb.astype(ref_dtype)
    if want.kind in "iu":
        np.testing.assert_array_equal(got, ref.astype(want.numpy_dtype))
    else:
        tol = {"float16": 2e-3, "bfloat16": 1e-2}.get(want.name, 1e-6)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
