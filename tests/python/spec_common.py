"""Pieces shared by test_ops.py and the op_specs_*.py sample modules: the Case record every
sample generator returns, and the small dtype / reference helpers they all use.

The per-module sample generators (gen, well_cond, distinct, ...) stay in their modules: each
draws its own value ranges from the RNG, and test_ops.case_rng seeds one stream per
op/dtype/variant, so moving or merging them would change the generated samples.
"""
import numpy as np

import tensord as td
from tensord.client import bf16_bits_to_f32, f32_to_bf16_bits

F32, F64, C64, C128 = td.float32, td.float64, td.complex64, td.complex128


class Case:
    """One op application: inputs [(array, dtype)], attrs, expected arrays and dtypes.

    expected / out_dtypes may be single values (one output); mag scales the absolute
    tolerance; variadic passes the inputs as one list argument; exact compares bitwise."""

    def __init__(self, inputs, attrs, expected, out_dtypes, mag=1.0, variadic=False,
                 exact=False):
        self.inputs = inputs
        self.attrs = attrs
        self.expected = expected if isinstance(expected, (list, tuple)) else [expected]
        self.out_dtypes = out_dtypes if isinstance(out_dtypes, (list, tuple)) else \
            [out_dtypes] * len(self.expected)
        self.mag = mag
        self.variadic = variadic
        self.exact = exact


def real_of(d):
    """The real dtype of complex d (d itself otherwise)."""
    return {C64: F32, C128: F64}.get(d, d)


def hp(x):
    """float64 / complex128 copy of x for references."""
    x = np.asarray(x)
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def round_to(x, d):
    """x rounded to dtype d, as stored (bfloat16 values in a float32 array)."""
    if d is td.bfloat16:
        return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(x, np.float32)))
    return np.asarray(x).astype(d.numpy_dtype)


def mh(x):
    """Conjugate transpose of the last two axes."""
    return np.conj(np.swapaxes(x, -1, -2))
