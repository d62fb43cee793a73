"""NumPy references and sample cases for the torch.fft ops (server/engine/ops_fft.c), in
test_ops.py's SPECS format (see op_specs_nn.py): FFT_SPECS maps an op name to
cases(rng, dtype, variant). References are numpy.fft in float64/complex128 (pocketfft, an
implementation independent of the daemon's FFTW); torch.fft and numpy.fft agree on names,
defaults and normalisation. tests/unit/test_fft.c checks FFTW's results against a naive
O(n^2) DFT for lengths 1..64 and round trips.
"""
import numpy as np

import tensord as td
from spec_common import Case, hp

F32, F64, C64, C128 = td.float32, td.float64, td.complex64, td.complex128


def gen(rng, d, shape):
    if d.kind == "c":
        z = rng.uniform(-2, 2, shape) + 1j * rng.uniform(-2, 2, shape)
        return z.astype(d.numpy_dtype)
    if d.kind in "iu":
        return rng.integers(0, 5, shape).astype(d.numpy_dtype)
    return rng.uniform(-2, 2, shape).astype(d.numpy_dtype)


def to_complex(d):
    """Result dtype of a complex transform: integers compute in float32, like torch.fft."""
    return {F64: C128, C64: C64, C128: C128}.get(d, C64)


def to_real(d):
    return {F64: F64, C128: F64}.get(d, F32)


def norm_of(attrs):
    return attrs.get("norm", "backward")


# ---- 1-d transforms ----------------------------------------------------------------------
ONE_D = {
    "basic": [((5,), {}), ((2, 5), {"n": 7}), ((3, 4), {"dim": 0, "norm": "ortho"}),
              ((2, 6), {"n": 4, "norm": "forward"}), ((7,), {"norm": "backward"}),
              ((1,), {}), ((2, 3), {"n": 1})],
    "noncontig": [((3, 4), {"dim": -1}), ((4, 3), {"dim": 0, "n": 5})],
    "zero": [((0, 4), {})],
}
# c2r ops need at least 2 input points for the default n = 2 (m - 1).
ONE_D_C2R = {
    "basic": [((5,), {}), ((2, 5), {"n": 7}), ((3, 4), {"dim": 0, "norm": "ortho"}),
              ((2, 6), {"n": 4, "norm": "forward"}), ((4,), {"n": 9}), ((3,), {"n": 1}),
              ((2, 4), {"n": 3, "norm": "forward"})],
    "noncontig": [((3, 4), {"dim": -1}), ((4, 3), {"dim": 0, "n": 5})],
    "zero": [((0, 4), {})],
}


def one_d(npf, kind):
    """kind: c2c (complex out), r2c (real input only), c2r (real out)."""
    def cases(rng, d, variant):
        table = ONE_D_C2R if kind == "c2r" else ONE_D
        res = []
        for shape, attrs in table.get(variant, []):
            x = gen(rng, d, shape)
            dim = attrs.get("dim", -1)
            exp = npf(hp(x), n=attrs.get("n"), axis=dim, norm=norm_of(attrs))
            out = to_real(d) if kind == "c2r" else to_complex(d)
            n = attrs.get("n", shape[dim])
            res.append(Case([(x, d)], attrs, exp, out, mag=4.0 * max(n, 1)))
        return res
    return cases


# ---- n-d transforms ----------------------------------------------------------------------
ND = {
    "basic": [((3, 4), {}), ((2, 3, 4), {"s": [5, 3], "dim": [0, 2]}),
              ((2, 3, 4), {"s": [4, 6]}), ((3, 4), {"dim": [0], "norm": "ortho"}),
              ((2, 3, 2), {"dim": [2, 0], "norm": "forward"}), ((2, 2, 3), {"s": [3, -1]})],
    "noncontig": [((3, 4), {}), ((4, 3), {"s": [2, 5], "norm": "ortho"})],
    "zero": [((0, 3, 4), {"dim": [1, 2]})],
}


def nd(npf, kind, two=False):
    def cases(rng, d, variant):
        res = []
        for shape, attrs in ND.get(variant, []):
            x = gen(rng, d, shape)
            dims = attrs.get("dim")
            s = attrs.get("s")
            if two and dims is None and s is None:
                dims = [-2, -1]
            if dims is None:
                dims = list(range(len(shape) - len(s), len(shape))) if s else \
                    list(range(len(shape)))
            s_np = None
            if s is not None:
                s_np = [shape[a] if v == -1 else v for a, v in zip(dims, s)]
                if kind == "c2r" and s[-1] == -1:
                    s_np[-1] = 2 * (shape[dims[-1]] - 1)
            exp = npf(hp(x), s=s_np, axes=dims, norm=norm_of(attrs))
            out = to_real(d) if kind == "c2r" else to_complex(d)
            res.append(Case([(x, d)], attrs, exp, out, mag=4.0 * max(x.size, 1) + 16))
        return res
    return cases


# ---- fftfreq, rfftfreq -------------------------------------------------------------------
def freq(npf):
    def cases(rng, d, variant):
        if variant != "basic":
            return []
        res = []
        for n, step in ((1, 1.0), (4, 1.0), (5, 0.5), (8, 0.1), (9, 2.0)):
            attrs = {"n": n, "d": step, "dtype": d}
            res.append(Case([], attrs, npf(n, d=step), d))
        if d is F32:
            res.append(Case([], {"n": 6}, npf(6), F32))
        return res
    return cases


# ---- fftshift, ifftshift -----------------------------------------------------------------
def shift(npf):
    def cases(rng, d, variant):
        import test_ops  # loaded by then (it imports this module at its end of imports)
        table = {"basic": [((5,), None), ((4, 5), None), ((4, 5), [0]), ((2, 3, 4), [-1, 0])],
                 "noncontig": [((4, 5), None), ((3, 4), [1])],
                 "zero": [((0, 3), None)],
                 "0d": [((), None)]}
        res = []
        for shape, dims in table.get(variant, []):
            x = test_ops.gen(rng, d, shape)
            attrs = {} if dims is None else {"dim": dims}
            exp = npf(test_ops.hp(x, d), axes=dims) if x.ndim else test_ops.hp(x, d)
            res.append(Case([(x, d)], attrs, exp, d, exact=True))
        return res
    return cases


def _fft2(f):
    return lambda x, s=None, axes=None, norm=None: f(x, s=s, axes=axes, norm=norm)


FFT_SPECS = {
    "fft": one_d(np.fft.fft, "c2c"),
    "ifft": one_d(np.fft.ifft, "c2c"),
    "rfft": one_d(np.fft.rfft, "r2c"),
    "irfft": one_d(np.fft.irfft, "c2r"),
    "hfft": one_d(np.fft.hfft, "c2r"),
    "ihfft": one_d(np.fft.ihfft, "r2c"),
    "fftn": nd(np.fft.fftn, "c2c"),
    "ifftn": nd(np.fft.ifftn, "c2c"),
    "rfftn": nd(np.fft.rfftn, "r2c"),
    "irfftn": nd(np.fft.irfftn, "c2r"),
    "fft2": nd(_fft2(np.fft.fftn), "c2c", two=True),
    "ifft2": nd(_fft2(np.fft.ifftn), "c2c", two=True),
    "rfft2": nd(_fft2(np.fft.rfftn), "r2c", two=True),
    "irfft2": nd(_fft2(np.fft.irfftn), "c2r", two=True),
    "fftfreq": freq(np.fft.fftfreq),
    "rfftfreq": freq(np.fft.rfftfreq),
    "fftshift": shift(np.fft.fftshift),
    "ifftshift": shift(np.fft.ifftshift),
}
