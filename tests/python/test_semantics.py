"""Edge-case semantics of the daemon's ops, checked against PyTorch's documented behaviour.

test_ops.py checks every op over every dtype with generated samples; this file pins down
the corners those samples do not reach: NaN, inf and -0.0, integer overflow, empty and 0-d
tensors, out-of-range slices, mixed-dtype promotion, creation ranges and complex special
values. Every expected value is written out by hand, or computed with Python's own
arithmetic (int and float operators) or NumPy where their semantics equal PyTorch's; the
comment above each group says which. Torch is not needed (nor imported).

Where tensord deliberately differs from PyTorch (its ops.def docs or a unit test pin the
choice), the test asserts tensord's behaviour and the comment says "tensord choice" and
what torch does.
"""
import math

import numpy as np
import pytest

import tensord as td

pytestmark = pytest.mark.timeout(120)

nan, inf = float("nan"), float("inf")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MIN = -(1 << 31)


# ---- helpers ----------------------------------------------------------------------------
def T(vals, dtype):
    """Uploads vals as a NumPy array of dtype (exact values, signed zeros kept)."""
    return td.tensor(np.array(vals, dtype=dtype))


def op(name, *args, **attrs):
    return td.op(name, *args, **attrs)


def check(t, dtype, shape, want, zero_signs=False):
    """Asserts dtype, shape and values exactly (NaN matches NaN); zero_signs also compares
    the sign bit of every non-NaN element (so -0.0 != 0.0)."""
    got = t.numpy()
    assert t.dtype == dtype, "dtype %s, want %s" % (t.dtype, dtype)
    assert got.shape == tuple(shape), "shape %s, want %s" % (got.shape, tuple(shape))
    w = np.array(want, dtype=got.dtype).reshape(shape)
    np.testing.assert_array_equal(got, w)
    if zero_signs:
        real = ~np.isnan(w.real)     # a NaN's sign bit means nothing
        np.testing.assert_array_equal(np.signbit(got.real)[real], np.signbit(w.real)[real])


def fails(fn, match):
    """The op fails with a TensordError whose message matches `match`."""
    with pytest.raises(td.TensordError, match=match):
        fn().numpy()


def wrap(v, bits, signed=True):
    """v reduced to a two's complement integer of `bits` bits (hand reference for wrap)."""
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


FLOATS = [np.float32, np.float64]
FDT = {np.float32: td.float32, np.float64: td.float64, np.float16: td.float16}


# ---- NaN and inf in max/min and friends (PyTorch propagates NaN) ----------------------------
@pytest.mark.parametrize("f", FLOATS)
def test_maximum_minimum_propagate_nan(f):
    a = T([1.0, nan, 2.0, -inf, nan], f)
    b = T([nan, 1.0, 3.0, inf, nan], f)
    check(op("maximum", a, b), FDT[f], (5,), [nan, nan, 3.0, inf, nan])
    check(op("minimum", a, b), FDT[f], (5,), [nan, nan, 2.0, -inf, nan])


@pytest.mark.parametrize("f", FLOATS + [np.float16])
def test_amax_amin_propagate_nan(f):
    x = T([[1.0, nan], [0.0, 1.0]], f)
    check(op("amax", x), FDT[f], (), nan)
    check(op("amin", x, dim=[1]), FDT[f], (2,), [nan, 0.0])
    check(op("amax", x, dim=[0]), FDT[f], (2,), [1.0, nan])


def test_argmax_argmin_return_the_first_nan():
    # torch.argmax treats NaN as the maximum (and argmin as the minimum): the first NaN wins.
    check(op("argmax", T([1.0, nan, 5.0, nan], np.float32)), td.int64, (), 1)
    check(op("argmin", T([1.0, 5.0, nan, -inf], np.float32)), td.int64, (), 2)
    check(op("argmax", T([[1.0, nan], [nan, 1.0]], np.float64), dim=1), td.int64, (2,),
          [1, 0])
    # Ties: the first occurrence.
    check(op("argmax", T([1, 3, 3, 1], np.int64)), td.int64, (), 1)
    check(op("argmin", T([-inf, -inf], np.float32)), td.int64, (), 0)


def test_argmax_nan_in_a_large_split_reduction():
    # 2^20 elements: the reduction is cut into parts on the engine's threads; the first NaN
    # still wins over a larger later value, and the first of tied maxima is returned.
    x = np.ones(1 << 20, np.float32)
    x[700000], x[900000], x[950000], x[990000] = 5, nan, 7, nan
    check(op("argmax", td.tensor(x)), td.int64, (), 900000)
    check(op("amax", td.tensor(x)), td.float32, (), nan)
    y = np.ones(1 << 20, np.float32)
    y[700000] = y[950000] = 5
    check(op("argmax", td.tensor(y)), td.int64, (), 700000)
    check(op("argmin", td.tensor(-y)), td.int64, (), 700000)


def test_clamp_nan_and_crossed_bounds():
    x = T([nan, -2.0, 5.0, 0.5], np.float32)
    check(op("clamp", x, min=-1.0, max=1.0), td.float32, (4,), [nan, -1.0, 1.0, 0.5])
    # min > max: every element becomes max (torch.clamp's documented rule).
    check(op("clamp", T([1.0, 5.0, 9.0], np.float64), min=6.0, max=2.0), td.float64, (3,),
          [2.0, 2.0, 2.0])
    check(op("clamp", T([1, 5, 9], np.int32), min=6, max=2), td.int32, (3,), [2, 2, 2])
    # A NaN bound with both bounds given: torch fills the result with NaN.
    check(op("clamp", T([1.0, 5.0], np.float32), min=nan, max=2.0), td.float32, (2,),
          [nan, nan])


def test_clamp_integer_input_with_float_bound_keeps_the_dtype():
    # tensord choice (pinned by tests/unit/test_elementwise.c test_clamp): an integer input
    # clamped by a float bound compares in double and keeps its dtype, like torch <= 1.12.
    # torch >= 1.13 promotes to the default float dtype instead (float32 [1., 2.5]).
    check(op("clamp", T([1, 7], np.int64), max=2.5), td.int64, (2,), [1, 2])


def test_sign_of_zeros_infs_and_nan():
    r = op("sign", T([-0.0, 0.0, -inf, inf, -3.5, nan], np.float32))
    # sign(-0.0) is +0.0 in torch and NumPy (the result is (0 < x) - (x < 0)).
    check(r, td.float32, (6,), [0.0, 0.0, -1.0, 1.0, -1.0, nan], zero_signs=True)
    # NaN: tensord choice, NumPy's NaN. torch's CPU kernel computes (0 < x) - (x < 0) and so
    # returns 0 for NaN, which PyTorch's own OpInfo tests mark as a known NumPy mismatch.
    check(op("sign", T([-2, 0, 3], np.int8)), td.int8, (3,), [-1, 0, 1])
    check(op("sign", T([True, False], np.bool_)), td.bool_, (2,), [True, False])


# ---- rounding ----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64, "bf16"])
def test_round_half_to_even(dt):
    vals = [0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -0.25]
    x = T(vals, np.float32).to(td.bfloat16) if dt == "bf16" else T(vals, dt)
    want_dt = td.bfloat16 if dt == "bf16" else FDT[dt]
    check(op("round", x), want_dt, (7,), [0.0, 2.0, 2.0, -0.0, -2.0, 4.0, -0.0],
          zero_signs=True)


def test_round_with_decimals():
    # torch.round(x, decimals=d) = nearbyint(x * 10^d) / 10^d, and for d < 0
    # nearbyint(x / 10^-d) * 10^-d (half to even on the scaled value).
    x = T([0.125, 0.375, -0.125, 1.5, 2.0], np.float64)
    check(op("round", x, decimals=2), td.float64, (5,), [0.12, 0.38, -0.12, 1.5, 2.0])
    check(op("round", T([15.0, 25.0, 35.0, -25.0, 4.9], np.float64), decimals=-1),
          td.float64, (5,), [20.0, 20.0, 40.0, -20.0, 0.0])
    check(op("round", T([250.0, 150.0, 50.0, -350.0], np.float32), decimals=-2), td.float32,
          (4,), [200.0, 200.0, 0.0, -400.0])
    # Integers with decimals >= 0 are unchanged (torch.round returns a copy).
    check(op("round", T([7, -7], np.int32), decimals=2), td.int32, (2,), [7, -7])


def test_round_integers_with_negative_decimals_follow_numpy():
    # tensord choice: integers with negative decimals round half to even like numpy.round
    # (np.round(np.array([15, 25, 35, -25]), -1)); torch rejects decimals for integer dtypes.
    x = np.array([15, 25, 35, -25, 7], np.int64)
    check(op("round", td.tensor(x), decimals=-1), td.int64, (5,), np.round(x, -1))


# ---- floor division and remainder: Python semantics ------------------------------------
FDIV_A = [-7.0, 7.0, -7.0, 7.0, 1.0, -1.0, 0.0, -0.0, -4.0, 4.0, 3.5, -3.5, inf]
FDIV_B = [2.0, -2.0, -2.0, 2.0, inf, inf, -1.0, 1.0, 2.0, -2.0, -inf, 0.5, 2.0]


@pytest.mark.parametrize("f", FLOATS)
def test_float_floor_divide_and_remainder_match_python(f):
    # Reference: Python's float // and %, which torch.floor_divide / torch.remainder follow
    # (quotient rounded toward -inf, remainder with the divisor's sign). Signs of zero
    # follow Python too: -4.0 % 2.0 is +0.0 (torch's fmod-based kernel gives -0.0 there;
    # the values compare equal).
    a, b = T(FDIV_A, f), T(FDIV_B, f)
    q = [x // y for x, y in zip(FDIV_A, FDIV_B)]
    r = [x % y for x, y in zip(FDIV_A, FDIV_B)]
    check(op("floor_divide", a, b), FDT[f], (len(q),), q, zero_signs=True)
    check(op("remainder", a, b), FDT[f], (len(r),), r, zero_signs=True)
    check(op("div", a, b, rounding_mode="floor"), FDT[f], (len(q),), q, zero_signs=True)


def test_float_division_by_zero_is_ieee():
    # torch: floor_divide by 0.0 is the IEEE quotient, remainder by 0.0 is fmod's NaN.
    a, z = T([-1.0, 1.0, 0.0], np.float64), T([0.0, 0.0, 0.0], np.float64)
    check(op("floor_divide", a, z), td.float64, (3,), [-inf, inf, nan])
    check(op("remainder", a, z), td.float64, (3,), [nan, nan, nan])
    check(op("div", a, z, rounding_mode="trunc"), td.float64, (3,), [-inf, inf, nan])


def test_remainder_is_not_fmod():
    # remainder takes the divisor's sign; C fmod (div rounding_mode="trunc") the dividend's.
    a, b = [-7.0, 7.0, -7.5], [2.0, -2.0, 2.0]
    check(op("remainder", T(a, np.float64), T(b, np.float64)), td.float64, (3,),
          [1.0, -1.0, 0.5])
    assert [math.fmod(x, y) for x, y in zip(a, b)] == [-1.0, 1.0, -1.5]
    check(op("div", T(a, np.float64), T(b, np.float64), rounding_mode="trunc"), td.float64,
          (3,), [-3.0, -3.0, -3.0])


@pytest.mark.parametrize("np_dt,dt,bits", [(np.int8, td.int8, 8), (np.int32, td.int32, 32),
                                           (np.int64, td.int64, 64)])
def test_integer_floor_divide_and_remainder_match_python(np_dt, dt, bits):
    lo = -(1 << (bits - 1))
    a = [-7, 7, -7, 7, 0, lo, lo, lo + 1, 5]
    b = [2, -2, -2, 2, -3, -1, 1, -1, 7]
    # Python int // and %, wrapped to the width: INT_MIN // -1 overflows to INT_MIN.
    q = [wrap(x // y, bits) for x, y in zip(a, b)]
    r = [x % y for x, y in zip(a, b)]
    check(op("floor_divide", T(a, np_dt), T(b, np_dt)), dt, (9,), q)
    check(op("remainder", T(a, np_dt), T(b, np_dt)), dt, (9,), r)
    # Truncating division (C semantics): -7 / 2 -> -3.
    t = [wrap((-1 if (x < 0) != (y < 0) else 1) * (abs(x) // abs(y)), bits)
         for x, y in zip(a, b)]
    check(op("div", T(a, np_dt), T(b, np_dt), rounding_mode="trunc"), dt, (9,), t)


def test_integer_division_by_zero_is_an_error():
    # torch raises ZeroDivisionError for integer division by zero on the CPU.
    fails(lambda: op("floor_divide", T([1], np.int64), T([0], np.int64)),
          "integer division by zero")
    fails(lambda: op("remainder", T([1], np.int32), T([0], np.int32)),
          "integer division by zero")
    fails(lambda: op("div", T([1], np.int8), T([0], np.int8), rounding_mode="trunc"),
          "integer division by zero")


# ---- pow -----------------------------------------------------------------------------------
def test_float_pow_special_values():
    # C99 pow (what torch.pow computes): 0**0 = 1, NaN**0 = 1, 1**NaN = 1, a negative base to
    # a non-integer power is NaN, 0**-1 = +inf and (-0.0)**-1 = -inf.
    a = T([0.0, -8.0, nan, 1.0, -2.0, 0.0, -0.0, -2.0], np.float64)
    b = T([0.0, 1.0 / 3.0, 0.0, nan, 0.5, -1.0, -1.0, 3.0], np.float64)
    check(op("pow", a, b), td.float64, (8,), [1.0, nan, 1.0, 1.0, nan, inf, -inf, -8.0],
          zero_signs=True)
    check(op("pow", T([0.0, -0.0], np.float32), -1.0), td.float32, (2,), [inf, -inf])


def test_integer_pow_wraps():
    # Exact powers reduced modulo 2^bits, like torch's integer pow in the narrow type.
    check(op("pow", T([3, 2, -2], np.int32), T([40, 31, 31], np.int32)), td.int32, (3,),
          [wrap(3 ** 40, 32), wrap(2 ** 31, 32), wrap((-2) ** 31, 32)])
    check(op("pow", T([2, 3, -128], np.int8), 7), td.int8, (3,),
          [wrap(2 ** 7, 8), wrap(3 ** 7, 8), wrap((-128) ** 7, 8)])
    check(op("pow", T([3, 0, 0], np.int64), T([41, 0, 5], np.int64)), td.int64, (3,),
          [wrap(3 ** 41, 64), 1, 0])
    # An integer tensor to a float power computes in the default float dtype.
    check(op("pow", T([4], np.int64), 0.5), td.float32, (1,), [2.0])


def test_integer_pow_negative_exponent_is_an_error():
    # torch raises "Integers to negative integer powers are not allowed" for a scalar
    # exponent; tensord (documented in ops.def) raises for tensor exponents as well.
    fails(lambda: op("pow", T([2], np.int64), -1), "negative integer powers")
    fails(lambda: op("pow", T([2], np.int32), T([-1], np.int32)), "negative integer powers")


# ---- casts: never C UB; out-of-range values follow x86's conversions ------------------------
def test_float_to_int_casts_of_out_of_range_values():
    # C leaves these conversions undefined; tensord defines them (and the UBSan build checks
    # it never converts out of range): like x86's cvttsd2si, which torch and NumPy get on
    # x86, NaN, inf and out-of-range values become INT64_MIN (int64) or go through int32
    # (INT32_MIN) for the narrower types, then wrap to the width. In range, values truncate.
    x = T([1e20, -1e20, nan, inf, 300.7, -1.7], np.float64)
    check(op("cast", x, dtype=td.int64), td.int64, (6,), [INT64_MIN] * 4 + [300, -1])
    check(op("cast", x, dtype=td.int32), td.int32, (6,), [INT32_MIN] * 4 + [300, -1])
    check(op("cast", x, dtype=td.uint8), td.uint8, (6,), [0, 0, 0, 0, 44, 255])
    check(op("cast", x, dtype=td.int8), td.int8, (6,), [0, 0, 0, 0, 44, -1])
    check(op("cast", T([3e9, 65504.0], np.float32), dtype=td.int16), td.int16, (2,),
          [0, wrap(65504, 16)])


def test_casts_to_bool_and_from_complex():
    # NaN is true, -0.0 is false (torch: x != 0); complex is true when either part is
    # nonzero; complex to real keeps the real part.
    check(op("cast", T([nan, -0.0, 0.5], np.float32), dtype=td.bool_), td.bool_, (3,),
          [True, False, True])
    check(op("cast", T([2j, 0j], np.complex128), dtype=td.bool_), td.bool_, (2,),
          [True, False])
    check(op("cast", T([1 + 2j], np.complex64), dtype=td.float32), td.float32, (1,), [1.0])
    check(op("cast", T([100000, 2049, -1], np.int64), dtype=td.float16), td.float16, (3,),
          [inf, 2048.0, -1.0])


# ---- integer overflow wraps (two's complement, computed without signed overflow) ---------
def test_elementwise_integer_overflow_wraps():
    check(T([INT64_MAX], np.int64) + T([1], np.int64), td.int64, (1,), [INT64_MIN])
    check(T([INT64_MIN], np.int64) - T([1], np.int64), td.int64, (1,), [INT64_MAX])
    check(T([127], np.int8) + T([1], np.int8), td.int8, (1,), [-128])
    check(T([0], np.uint8) - T([1], np.uint8), td.uint8, (1,), [255])
    check(T([2 ** 31 - 1], np.int32) * T([2], np.int32), td.int32, (1,), [-2])
    check(T([INT64_MAX], np.int64) * T([INT64_MAX], np.int64), td.int64, (1,), [1])
    check(op("add", T([0], np.int64), T([1 << 62], np.int64), alpha=4), td.int64, (1,), [0])
    # A Python int wraps to the tensor's dtype (it does not promote): 1 + 1000 in int8.
    check(T([1], np.int8) + 1000, td.int8, (1,), [wrap(1001, 8)])


def test_negation_and_abs_of_the_most_negative_value():
    # torch: -(-128) and abs(-128) in int8 wrap back to -128; uint8 negation wraps.
    check(-T([-128, 127, 0], np.int8), td.int8, (3,), [-128, -127, 0])
    check(-T([1, 0, 255], np.uint8), td.uint8, (3,), [255, 0, 1])
    check(op("abs", T([-128, -5], np.int8)), td.int8, (2,), [-128, 5])
    check(op("abs", T([-32768], np.int16)), td.int16, (1,), [-32768])
    check(op("abs", T([INT64_MIN], np.int64)), td.int64, (1,), [INT64_MIN])


def test_reduction_and_scan_integer_overflow():
    # Bool and integer sums/products accumulate in int64 (torch's default dtype for them).
    check(op("sum", T([127, 127], np.int8)), td.int64, (), 254)
    check(op("sum", T([INT64_MAX, 1], np.int64)), td.int64, (), INT64_MIN)
    check(op("prod", T([1 << 62, 4], np.int64)), td.int64, (), 0)
    check(op("cumsum", T([INT64_MAX, 1], np.int64), dim=0), td.int64, (2,),
          [INT64_MAX, INT64_MIN])
    check(op("cumprod", T([100, 100, 100], np.int8), dim=0), td.int64, (3,),
          [100, 10000, 1000000])
    # An explicit narrow dtype wraps in that dtype.
    check(op("cumsum", T([100, 100], np.int8), dim=0, dtype=td.int8), td.int8, (2,),
          [100, wrap(200, 8)])
    check(op("prod", T([16, 16], np.int8), dtype=td.int8), td.int8, (), 0)
    n = 1 << 20   # large enough for the split (multi-threaded) reduction path
    check(op("sum", td.tensor(np.full(n, 1 << 62, np.int64))), td.int64, (),
          wrap(n << 62, 64))


def test_integer_matmul_wraps():
    check(T([[1 << 62, 1 << 62]], np.int64) @ T([[2], [2]], np.int64), td.int64, (1, 1),
          [[0]])
    check(T([[1 << 30, 1 << 30]], np.int32) @ T([[2], [2]], np.int32), td.int32, (1, 1),
          [[0]])
    check(T([[100, 100]], np.int8) @ T([[100], [100]], np.int8), td.int8, (1, 1),
          [[wrap(20000, 8)]])


# ---- shifts -------------------------------------------------------------------------------
def test_shift_counts_out_of_range():
    # torch: a negative or >= width right shift keeps only the sign fill (a >> (width-1));
    # a negative or >= width left shift gives 0. (Right shift by a negative count used to
    # return 0 for negative operands: regression test.)
    a8 = T([-8, 8, -1, 127, -128], np.int8)
    check(op("bitwise_right_shift", a8, T([-1, -1, 8, 100, 7], np.int8)), td.int8, (5,),
          [-1, 0, -1, 0, -1])
    check(op("bitwise_left_shift", a8, T([-1, 9, 8, 1, 1], np.int8)), td.int8, (5,),
          [0, 0, 0, wrap(254, 8), 0])
    check(op("bitwise_right_shift", T([-5, -5, 5], np.int64), T([64, -64, 63], np.int64)),
          td.int64, (3,), [-1, -1, 0])
    check(op("bitwise_right_shift", T([255], np.uint8), T([8], np.uint8)), td.uint8, (1,),
          [0])


def test_extreme_integer_attributes_are_defined():
    # Attribute values at the int64 limits: no overflow (the UBSan build checks), results as
    # Python computes them (slicing, range(), % for the roll shift).
    MIN, MAX = INT64_MIN, INT64_MAX
    a = T(np.arange(5), np.int64)
    for start, end, step in ((MIN, MAX, MAX), (MAX, MIN, MIN), (MIN, None, 2)):
        want = list(range(5))[start:end:step]
        check(op("slice", a, dim=0, start=start, end=end, step=step), td.int64, (len(want),),
              want)
    check(op("roll", a, shifts=[MIN]), td.int64, (5,), np.roll(np.arange(5), MIN % 5))
    check(op("roll", a, shifts=[MIN], dims=[0]), td.int64, (5,), np.roll(np.arange(5), MIN % 5))
    ones = T(np.ones((2, 2)), np.int64)
    check(op("tril", ones, diagonal=MIN), td.int64, (2, 2), np.zeros((2, 2)))
    check(op("tril", ones, diagonal=MAX), td.int64, (2, 2), np.ones((2, 2)))
    check(op("triu", ones, diagonal=MAX), td.int64, (2, 2), np.zeros((2, 2)))
    check(op("triu", ones, diagonal=MIN), td.int64, (2, 2), np.ones((2, 2)))
    check(td.arange(MIN, MAX, MAX), td.int64, (3,), list(range(MIN, MAX, MAX)))
    check(td.arange(MAX, MIN, MIN), td.int64, (2,), list(range(MAX, MIN, MIN)))
    check(op("bitwise_left_shift", T([1], np.int64), T([MIN], np.int64)), td.int64, (1,), [0])
    check(op("bitwise_right_shift", T([-1], np.int64), T([MAX], np.int64)), td.int64, (1,),
          [-1])
    check(op("pow", T([-1, 2], np.int64), T([MAX, MAX], np.int64)), td.int64, (2,), [-1, 0])
    check(op("round", T([1.5, -123.0], np.float64), decimals=-300), td.float64, (2,), [0, 0])
    fails(lambda: op("narrow", a, dim=0, start=MIN, length=1), "out of range")
    fails(lambda: op("narrow", a, dim=0, start=1, length=MAX), "exceeds")
    fails(lambda: op("select", a, dim=0, index=MIN), "out of range")
    fails(lambda: op("sum", a, dim=[MIN]), "out of range")
    fails(lambda: op("unsqueeze", a, dim=MIN), "out of range")


# ---- var / std --------------------------------------------------------------------------
@pytest.mark.parametrize("corr,want", [(0, 1.25), (1, 5.0 / 3.0), (2, 2.5)])
def test_var_std_correction(corr, want):
    # [1, 2, 3, 4]: mean 2.5, squared deviations sum to 5; var = 5 / (N - correction).
    x = T([1.0, 2.0, 3.0, 4.0], np.float64)
    check(op("var", x, correction=corr), td.float64, (), want)
    check(op("std", x, correction=corr), td.float64, (), math.sqrt(want))


def test_var_with_n_at_most_correction():
    # torch divides by max(0, N - correction): 0/0 is NaN and s/0 is inf.
    check(op("var", T([5.0], np.float64)), td.float64, (), nan)
    check(op("var", T([1.0, 3.0], np.float64), correction=2), td.float64, (), inf)
    check(op("var", T([1.0, 3.0], np.float64), correction=3), td.float64, (), inf)
    check(op("std", T([1.0, 3.0], np.float32), correction=2), td.float32, (), inf)
    check(op("var", T([2.0, 2.0], np.float64), correction=2), td.float64, (), nan)
    check(op("var", T(np.zeros(0), np.float64)), td.float64, (), nan)
    # complex input: real variance of |x - mean|^2.
    check(op("var", T([1 + 1j, -1 - 1j], np.complex64)), td.float32, (), 4.0)


# ---- empty and identity reductions ------------------------------------------------------
def test_empty_reductions():
    check(op("mean", T(np.zeros(0), np.float32)), td.float32, (), nan)
    check(op("mean", T(np.zeros((0, 3)), np.float64), dim=[0]), td.float64, (3,),
          [nan, nan, nan])
    check(op("sum", T(np.zeros(0), np.int32)), td.int64, (), 0)
    check(op("sum", T(np.zeros(0), np.bool_)), td.int64, (), 0)
    check(op("prod", T(np.zeros(0), np.float32)), td.float32, (), 1.0)
    check(op("prod", T(np.zeros((2, 0)), np.int16), dim=[1]), td.int64, (2,), [1, 1])
    # No identity: amax/argmax over an empty dim are errors, over a non-empty one fine.
    fails(lambda: op("amax", T(np.zeros((0, 3)), np.float32), dim=[0]), "size 0")
    fails(lambda: op("argmax", T(np.zeros(0), np.float32)), "empty")
    check(op("amax", T(np.zeros((0, 3)), np.float32), dim=[1]), td.float32, (0,), [])
    check(op("argmax", T(np.zeros((0, 3)), np.float32), dim=1), td.int64, (0,), [])


def test_prod_of_bool_is_int64():
    check(op("prod", T([True, True, False], np.bool_)), td.int64, (), 0)
    check(op("prod", T([True, True], np.bool_)), td.int64, (), 1)
    check(op("cumsum", T([True, True, False], np.bool_), dim=0), td.int64, (3,), [1, 2, 2])


def test_all_any_read_nan_as_true():
    check(op("all", T([nan, 1.0], np.float32)), td.bool_, (), True)
    check(op("any", T([nan, 0.0], np.float32)), td.bool_, (), True)
    check(op("any", T([0.0, -0.0], np.float64)), td.bool_, (), False)
    check(op("all", T(np.zeros(0), np.float32)), td.bool_, (), True)
    check(op("any", T(np.zeros(0), np.float32)), td.bool_, (), False)
    check(op("any", T([0j, 1j], np.complex64)), td.bool_, (), True)
    check(op("all", td.tensor(np.full(1 << 20, nan, np.float32))), td.bool_, (), True)
    # tensord choice (ops.def: "as bool"): uint8 input gives bool; torch.all/any keep uint8
    # for uint8 input (a legacy exception in torch's docs).
    check(op("all", T([1, 2], np.uint8)), td.bool_, (), True)


def test_logsumexp_infinities():
    # torch shifts by the max unless it is infinite: all -inf gives -inf, +inf gives +inf.
    def lse(v, f=np.float32):
        return op("logsumexp", T(v, f), dim=[0])
    check(lse([-inf, -inf]), td.float32, (), -inf)
    check(lse([inf, 1.0]), td.float32, (), inf)
    check(lse([inf, -inf]), td.float32, (), inf)
    check(lse([nan, 1.0]), td.float32, (), nan)
    check(lse(np.zeros(0)), td.float32, (), -inf)     # log(sum of nothing) = log 0
    check(lse([0, 0], np.int64), td.float32, (), np.float32(math.log(2.0)))
    big = np.full(1 << 20, -inf, np.float32)
    check(op("logsumexp", td.tensor(big), dim=[0]), td.float32, (), -inf)
    big[12345] = inf
    check(op("logsumexp", td.tensor(big), dim=[0]), td.float32, (), inf)


def test_reduction_dims_and_keepdim():
    x = T(np.arange(6.0).reshape(2, 3), np.float32)
    # dim=() / [] reduces every dim (torch's sum(x, dim=[]) and amax(x, dim=())).
    check(op("sum", x, dim=[]), td.float32, (), 15.0)
    check(op("sum", x, dim=[], keepdim=True), td.float32, (1, 1), [[15.0]])
    check(op("amax", x, dim=[]), td.float32, (), 5.0)
    check(op("logsumexp", T(np.zeros((2, 2)), np.float32), dim=[]), td.float32, (),
          np.float32(math.log(4.0)))
    check(op("sum", x, dim=[-1], keepdim=True), td.float32, (2, 1), [[3.0], [12.0]])
    check(op("sum", x, dim=[-2]), td.float32, (3,), [3.0, 5.0, 7.0])
    check(op("argmax", x, keepdim=True), td.int64, (1, 1), [[5]])
    check(op("argmax", x, dim=-1, keepdim=True), td.int64, (2, 1), [[2], [2]])
    fails(lambda: op("sum", x, dim=[0, -2]), "more than once")
    fails(lambda: op("sum", x, dim=[2]), "out of range")
    # A 0-d tensor accepts dim 0 and -1 (torch wraps them as for a 1-d tensor).
    s = T(3.0, np.float32)
    check(op("sum", s, dim=[0]), td.float32, (), 3.0)
    check(op("sum", s, dim=[-1], keepdim=True), td.float32, (), 3.0)
    check(op("argmax", s), td.int64, (), 0)
    check(op("cumsum", T(3, np.int32), dim=0), td.int64, (), 3)
    fails(lambda: op("sum", s, dim=[1]), "out of range")


# ---- shapes -------------------------------------------------------------------------------
def test_reshape_with_zero_size_and_minus_one():
    z = T(np.zeros((0, 3)), np.float32)
    check(op("reshape", z, shape=[-1]), td.float32, (0,), [])
    check(op("reshape", z, shape=[-1, 3]), td.float32, (0, 3), [])
    check(op("reshape", z, shape=[3, -1]), td.float32, (3, 0), np.zeros((3, 0)))
    # torch: "the unspecified dimension size -1 can be any value and is ambiguous".
    fails(lambda: op("reshape", z, shape=[-1, 0]), "invalid")
    fails(lambda: op("reshape", z, shape=[0, -1]), "invalid")
    fails(lambda: op("reshape", z, shape=[-1, -1]), "only one dimension")
    check(op("reshape", T(5.0, np.float32), shape=[-1]), td.float32, (1,), [5.0])
    check(op("reshape", T([5.0], np.float32), shape=[]), td.float32, (), 5.0)


def test_squeeze_expand_transpose_edge_shapes():
    z = T(np.zeros((0, 1, 3)), np.float32)
    check(op("squeeze", z), td.float32, (0, 3), [])
    check(op("squeeze", z, dim=[0]), td.float32, (0, 1, 3), [])   # size 0 is not size 1
    check(op("squeeze", T(3.0, np.float64), dim=[0]), td.float64, (), 3.0)
    s = T(5.0, np.float32)
    check(op("expand", s, shape=[2, 3]), td.float32, (2, 3), np.full((2, 3), 5.0))
    check(op("expand", s, shape=[0]), td.float32, (0,), [])
    # torch: -1 is not allowed for a new leading dim.
    fails(lambda: op("expand", s, shape=[-1]), "not allowed")
    # transpose of 0-d and 1-d tensors with dims 0 / -1 is the identity (torch allows it).
    check(op("transpose", T(3.0, np.float64), dim0=0, dim1=-1), td.float64, (), 3.0)
    check(op("transpose", T([1.0, 2.0], np.float32), dim0=0, dim1=-1), td.float32, (2,),
          [1.0, 2.0])
    fails(lambda: op("transpose", T(3.0, np.float64), dim0=0, dim1=1), "out of range")
    check(op("flatten", T(3.0, np.float64)), td.float64, (1,), [3.0])
    check(op("unsqueeze", T(3.0, np.float64), dim=-1), td.float64, (1,), [3.0])
    fails(lambda: op("select", T(3.0, np.float64), dim=0, index=0), "0-d")


SLICES = [dict(start=10), dict(start=-10), dict(step=-1), dict(start=3, end=0, step=-2),
          dict(step=10), dict(end=-10), dict(start=10, step=-10), dict(start=-2, end=100),
          dict(start=1, end=-1, step=2), dict(start=-1, end=-6, step=-3)]


@pytest.mark.parametrize("kw", SLICES, ids=[str(s) for s in SLICES])
def test_slice_matches_python_slicing(kw):
    # Reference: Python's list slicing (slice.indices clamps out-of-range starts and ends).
    # Negative steps are NumPy's (documented in ops.def; torch rejects negative steps).
    vals = list(range(5))
    want = vals[slice(kw.get("start"), kw.get("end"), kw.get("step"))]
    check(op("slice", T(vals, np.int64), dim=0, **kw), td.int64, (len(want),), want)


def test_cat_with_empty_operands():
    a = T(np.ones((2, 2)), np.float32)
    check(op("cat", [T(np.zeros((0, 2)), np.float32), a], dim=0), td.float32, (2, 2),
          np.ones((2, 2)))
    check(op("cat", [a, T(np.zeros((2, 0)), np.float64), a], dim=-1), td.float64, (2, 4),
          np.ones((2, 4)))
    check(op("cat", [T(np.zeros(0), np.int8), T(np.zeros(0), np.uint8)]), td.int16, (0,), [])
    check(op("cat", [T(np.zeros(0), np.int8), T([1, 2], np.int8)]), td.int8, (2,), [1, 2])
    # An empty operand must still match the other dims.
    fails(lambda: op("cat", [T(np.zeros((0, 3)), np.float32), a], dim=0), "incompatible")
    # tensord choice (pinned by tests/unit/test_shape.c test_cat_stack): every operand has the
    # same rank. torch.cat still skips 1-d tensors of size 0 next to tensors of any rank (a
    # legacy rule it keeps for old code); tensord reports the mismatch instead.
    fails(lambda: op("cat", [T(np.zeros(0), np.float64), a], dim=0), "incompatible")
    fails(lambda: op("cat", [T(np.zeros(0), np.float64), a], dim=1), "out of range")
    fails(lambda: op("cat", [T(1.0, np.float32), T(2.0, np.float32)]), "0-d")


def test_cat_stack_where_type_promotion():
    # torch.result_type rules; cat/stack operands are all dimensioned (stack's 0-d inputs
    # become 1-d slices), so plain promote_types applies.
    check(op("cat", [T([1], np.int32), T([2.5], np.float64), T([True], np.bool_)]),
          td.float64, (3,), [1.0, 2.5, 1.0])
    check(op("cat", [T([1], np.int8), T([200], np.uint8)]), td.int16, (2,), [1, 200])
    check(op("stack", [T(1.0, np.float32), T(2.0, np.float64)]), td.float64, (2,), [1, 2])
    check(op("stack", [T(1, np.int64), T(2.0, np.float16)]), td.float16, (2,), [1, 2])
    check(op("stack", [T([1, 2], np.int64), T([3, 4], np.int64)], dim=-1), td.int64, (2, 2),
          [[1, 3], [2, 4]])
    c = T([True, False], np.bool_)
    check(op("where", c, T([1, 2], np.int32), T([1.5, 2.5], np.float64)), td.float64, (2,),
          [1.0, 2.5])
    # A 0-d operand of a higher category promotes (int32 tensor, float64 0-d -> float64)...
    check(op("where", c, T([1, 2], np.int32), T(2.5, np.float64)), td.float64, (2,),
          [1.0, 2.5])
    # ... one of the same category does not: int8 wins and 300 wraps to 44.
    check(op("where", c, T([1, 2], np.int8), T(300, np.int64)), td.int8, (2,),
          [1, wrap(300, 8)])
    # Python numbers: a float gives the default float dtype, an int keeps int8.
    check(op("where", c, T([1, 2], np.int8), 2.5), td.float32, (2,), [1.0, 2.5])
    check(op("where", c, T([1, 2], np.int8), 5), td.int8, (2,), [1, 5])
    check(op("where", c, T(1, np.int8), T(2.0, np.float64)), td.float64, (2,), [1.0, 2.0])


def test_split_and_chunk_remainders():
    def sizes(outs):
        return [o.numpy().tolist() for o in outs]
    x = T(np.arange(7), np.int64)
    assert sizes(op("split", x, split_size=3, noutputs=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert sizes(op("split", x, sections=[2, 0, 5], noutputs=3)) == \
        [[0, 1], [], [2, 3, 4, 5, 6]]
    assert sizes(op("split", x, split_size=10, noutputs=1)) == [list(range(7))]
    # torch.chunk: pieces of ceil(n / chunks), so possibly fewer than chunks.
    assert sizes(op("chunk", x, chunks=3, noutputs=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert sizes(op("chunk", T(np.arange(6), np.int64), chunks=4, noutputs=3)) == \
        [[0, 1], [2, 3], [4, 5]]
    assert sizes(op("chunk", T(np.arange(5), np.int64), chunks=4, noutputs=3)) == \
        [[0, 1], [2, 3], [4]]
    assert sizes(op("chunk", T(np.zeros(0), np.int64), chunks=3, noutputs=3)) == [[], [], []]


def test_roll_flip_tril_triu():
    x = np.arange(5)
    # NumPy's roll equals torch.roll (shifts wrap modulo the size; no dims = flattened).
    check(op("roll", T(x, np.int64), shifts=[-1]), td.int64, (5,), np.roll(x, -1))
    check(op("roll", T(x, np.int64), shifts=[7], dims=[0]), td.int64, (5,), np.roll(x, 7))
    check(op("roll", T(x, np.int64), shifts=[-12], dims=[-1]), td.int64, (5,),
          np.roll(x, -12))
    m = np.arange(6).reshape(2, 3)
    check(op("roll", T(m, np.int64), shifts=[-4]), td.int64, (2, 3), np.roll(m, -4))
    check(op("roll", T(m, np.int64), shifts=[1, -1], dims=[0, 1]), td.int64, (2, 3),
          np.roll(m, (1, -1), (0, 1)))
    # The same dim twice rolls twice (torch and NumPy both add the shifts).
    check(op("roll", T(x, np.int64), shifts=[1, 1], dims=[0, 0]), td.int64, (5,),
          np.roll(x, 2))
    check(op("flip", T(3.0, np.float64), dims=[0]), td.float64, (), 3.0)
    check(op("flip", T(3.0, np.float64), dims=[]), td.float64, (), 3.0)
    # tril/triu: NumPy's np.tril/np.triu (the last two dims, batches broadcast) equal torch's.
    b = np.arange(1, 25).reshape(2, 3, 4)
    for k in (-10, -1, 0, 2, 10):
        check(op("tril", T(b, np.int64), diagonal=k), td.int64, b.shape, np.tril(b, k))
        check(op("triu", T(b, np.int64), diagonal=k), td.int64, b.shape, np.triu(b, k))


# ---- matmul --------------------------------------------------------------------------------
def test_matmul_dtypes_and_shapes():
    # tensord choice (TD_OPF_PROMOTE in ops.def): mixed dtypes promote like NumPy's matmul
    # (int8 @ uint8 -> int16); torch.matmul requires equal dtypes. 100*200*2 wraps in int16.
    check(T([[100, 100]], np.int8) @ T([[200], [200]], np.uint8), td.int16, (1, 1),
          [[wrap(40000, 16)]])
    fails(lambda: T([[True]], np.bool_) @ T([[True]], np.bool_), "bool")
    # No conjugation: (1j)(1j) = -1.
    check(T([[1j]], np.complex64) @ T([[1j]], np.complex64), td.complex64, (1, 1), [[-1]])
    f = np.float32
    check(T([1, 2], f) @ T([[1, 2, 3], [4, 5, 6]], f), td.float32, (3,), [9, 12, 15])
    check(T([[1, 2], [3, 4]], f) @ T([1, 1], f), td.float32, (2,), [3, 7])
    check(T([1, 2], f) @ T([3, 4], f), td.float32, (), 11)
    check(T([1, 1], f) @ T(np.ones((3, 2, 4)), f), td.float32, (3, 4), np.full((3, 4), 2))
    check(T(np.zeros((2, 0)), f) @ T(np.zeros((0, 3)), f), td.float32, (2, 3),
          np.zeros((2, 3)))
    fails(lambda: T(1.0, f) @ T([1.0], f), "0-d")


# ---- creation -------------------------------------------------------------------------------
def test_arange_lengths_and_values():
    # torch: length = ceil((end - start) / step) in double; element i = start + i * step
    # (in double, then rounded to the dtype).
    r = td.arange(0, 1, 0.1)
    check(r, td.float32, (10,), [np.float32(i * 0.1) for i in range(10)])
    check(td.arange(5, 0, -1.5), td.float32, (4,), [5.0, 3.5, 2.0, 0.5])
    check(td.arange(1, 1.3, 0.1), td.float32, (4,),
          [np.float32(1 + i * 0.1) for i in range(4)])   # (1.3 - 1) / 0.1 = 3.0000000000000004
    check(td.arange(5, 0, -2), td.int64, (3,), [5, 3, 1])
    check(td.arange(5, 0, 1), td.int64, (0,), [])
    check(td.arange(0, 5, dtype=td.int8), td.int8, (5,), [0, 1, 2, 3, 4])
    fails(lambda: td.arange(0, 5, 0), "nonzero")
    fails(lambda: td.arange(0, inf, 1.0), "finite")


def test_linspace_eye_full():
    check(td.linspace(0, 1, 0), td.float32, (0,), [])
    check(td.linspace(2, 5, 1), td.float32, (1,), [2.0])
    check(td.linspace(0, 1, 5), td.float32, (5,), [0, 0.25, 0.5, 0.75, 1])
    # Integer dtypes: computed in double, truncated (torch: start + step * i).
    check(td.linspace(0, 10, 4, dtype=td.int64), td.int64, (4,), [0, 3, 6, 10])
    check(td.linspace(0, 1 + 1j, 3), td.complex64, (3,), [0, 0.5 + 0.5j, 1 + 1j])
    fails(lambda: td.linspace(0, 1, -1), "non-negative")
    # torch.full infers the dtype from the fill value.
    check(td.full((2,), True), td.bool_, (2,), [True, True])
    check(td.full((2,), 7), td.int64, (2,), [7, 7])
    check(td.full((2,), 7.5), td.float32, (2,), [7.5, 7.5])
    check(td.full((2,), 1 + 2j), td.complex64, (2,), [1 + 2j, 1 + 2j])
    check(td.full((2,), 7.9, dtype=td.int32), td.int32, (2,), [7, 7])
    check(td.eye(2, 3), td.float32, (2, 3), np.eye(2, 3))
    check(td.eye(3, 2, dtype=td.int64), td.int64, (3, 2), np.eye(3, 2))
    check(td.eye(0), td.float32, (0, 0), np.zeros((0, 0)))


def test_randint_bounds_per_dtype():
    r = td.randint(-128, 128, (64,), dtype=td.int8).numpy()
    assert r.dtype == np.int8 and r.min() >= -128 and r.max() <= 127
    # torch: "from/to - 1 is out of bounds for <dtype>".
    fails(lambda: td.randint(0, 129, (3,), dtype=td.int8), "does not fit int8")
    fails(lambda: td.randint(-129, 0, (3,), dtype=td.int8), "does not fit int8")
    fails(lambda: td.randint(-1, 5, (3,), dtype=td.uint8), "does not fit uint8")
    fails(lambda: td.randint(5, 5, (3,)), "must be greater")
    # float16 holds integers up to 65504 (regression test: larger bounds gave inf).
    fails(lambda: td.randint(0, 100000, (3,), dtype=td.float16), "does not fit float16")
    h = td.randint(-65504, 65505, (64,), dtype=td.float16).numpy()
    assert np.all(np.isfinite(h)) and np.all(h == np.floor(h))


# ---- complex --------------------------------------------------------------------------------
def test_complex_abs_angle_special_values():
    c = np.complex128
    # C99 Annex G (what std::abs / std::arg give torch): |z| is inf when either part is
    # infinite, even if the other is NaN.
    z = T([complex(inf, nan), complex(nan, inf), complex(nan, 1), complex(3, 4)], c)
    check(op("abs", z), td.float64, (4,), [inf, inf, nan, 5.0])
    z = T([complex(-1, 0), complex(-1, -0.0), complex(inf, inf), complex(nan, 1), 0j], c)
    check(op("angle", z), td.float64, (5,), [math.pi, -math.pi, math.pi / 4, nan, 0.0])
    # Reals: pi for negatives, NaN stays NaN, integers compute in float32.
    check(op("angle", T([-2.0, 0.0, -0.0, nan], np.float64)), td.float64, (4,),
          [math.pi, 0.0, 0.0, nan])
    check(op("angle", T([-3, 3], np.int32)), td.float32, (2,), [np.float32(math.pi), 0.0])


def test_complex_sqrt_log_of_negative_reals():
    c = np.complex128
    # The branch cut follows the sign of the zero imaginary part (csqrt, clog).
    check(op("sqrt", T([complex(-4, 0.0), complex(-4, -0.0)], c)), td.complex128, (2,),
          [2j, -2j])
    check(op("log", T([complex(-1, 0.0), complex(-1, -0.0)], c)), td.complex128, (2,),
          [math.pi * 1j, -math.pi * 1j])
    check(op("log", T([0j], c)), td.complex128, (1,), [complex(-inf, 0)])
    check(op("sqrt", T([-4.0], np.float64)), td.float64, (1,), [nan])
    check(op("log", T([-1.0, 0.0], np.float32)), td.float32, (2,), [nan, -inf])


def test_complex_division_by_zero():
    # c10::complex division (and C99's): a zero divisor divides each part by zero.
    num = T([1 + 1j, 0j, 1 + 0j, 1j], np.complex128)
    den = T([0j, 0j, 0j, 0j], np.complex128)
    check(num / den, td.complex128, (4,),
          [complex(inf, inf), complex(nan, nan), complex(inf, nan), complex(nan, inf)])
    check(T([1 + 0j], np.complex64) / T([complex(inf, 0)], np.complex64), td.complex64, (1,),
          [0j])


def test_complex_comparisons():
    a, b = T([1 + 1j, 1 + 0j], np.complex128), T([1 + 1j, 1 + 1j], np.complex128)
    check(op("eq", a, b), td.bool_, (2,), [True, False])
    check(op("ne", a, b), td.bool_, (2,), [False, True])
    # Ordering is undefined for complex numbers: torch rejects lt/le/gt/ge, maximum.
    for name in ("lt", "le", "gt", "ge", "maximum", "minimum"):
        fails(lambda: op(name, a, b), "not supported")
    # sign of a complex number is z / |z| (torch.sgn, Array API 2024.12, NumPy 2).
    check(op("sign", a), td.complex128, (2,), [0.7071067811865475 + 0.7071067811865475j, 1])
    fails(lambda: op("clamp", a, min=0.0), "not supported")
