"""NumPy references and sample cases for the interpolation ops (server/engine/ops_interp.c),
in test_ops.py's SPECS format: INTERP_SPECS maps an op name to cases(rng, dtype, variant).

The references are written from PyTorch's documented index rules (aten/src/ATen/native/
UpSample.h), not from the daemon: each mode is a dense float64 matrix per spatial axis
(output index x input index) built pixel by pixel from the formulas below, applied with
numpy.tensordot; the *_backward ops are the transposed matrices (their adjoint).

- scale: align_corners ? (in-1)/(out-1) (0 when out == 1) : 1/scale_factor when one is
  given, else in/out; nearest computes its scale and index in float32, like PyTorch.
- nearest: src = min(floor(o * scale), in-1) (o when out == in, o // 2 when out == 2 in);
  nearest-exact: min(floor((o + 0.5) * scale), in-1).
- linear: src = align_corners ? scale*o : max(scale*(o+0.5)-0.5, 0); weights 1-l, l on
  floor(src) and floor(src)+1 (clamped), identity when out == in.
- cubic: Keys' kernel W(x) (A = -0.75) at distances t+1, t, 1-t, 2-t from floor(src)-1 ..
  floor(src)+2, indices clamped to the border; src not clamped at 0.
- antialias: Pillow's resampling (support 1 or 2 times max(scale, 1), triangle or cubic
  a = -0.5 filter, weights normalised); an axis whose size is unchanged is the identity.
- area: mean over [floor(o*in/out), ceil((o+1)*in/out)).
"""
import math

import numpy as np

import tensord as td
from spec_common import Case, hp, round_to

F16, BF16, F32, F64 = td.float16, td.bfloat16, td.float32, td.float64


def gen(rng, d, shape):
    return round_to(rng.uniform(-1.0, 1.0, shape), d)


# ---- per-axis matrices -----------------------------------------------------------------
def area_pixel_scale(n_in, n_out, align, sf):
    if align:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    if sf is not None:
        return 1.0 / sf
    return n_in / n_out


def nearest_matrix(n_in, n_out, sf=None, exact=False):
    f32 = np.float32
    s = f32(1.0 / sf) if sf is not None else f32(n_in) / f32(n_out)
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        if exact:
            src = math.floor(f32((o + 0.5) * float(s)))
        elif n_out == n_in:
            src = o
        elif n_out == 2 * n_in:
            src = o // 2
        else:
            src = math.floor(f32(o) * s)
        m[o, min(src, n_in - 1)] = 1.0
    return m


def linear_matrix(n_in, n_out, align=False, sf=None):
    if n_in == n_out:
        return np.eye(n_in)
    s = area_pixel_scale(n_in, n_out, align, sf)
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = s * o if align else max(s * (o + 0.5) - 0.5, 0.0)
        i0 = min(math.floor(src), n_in - 1)
        lam = min(max(src - i0, 0.0), 1.0)
        i1 = min(i0 + 1, n_in - 1)
        m[o, i0] += 1.0 - lam
        m[o, i1] += lam
    return m


def keys(x, a):
    """Keys' cubic convolution kernel with parameter a."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    if x < 2:
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
    return 0.0


def cubic_matrix(n_in, n_out, align=False, sf=None):
    s = area_pixel_scale(n_in, n_out, align, sf)
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = s * o if align else s * (o + 0.5) - 0.5
        i0 = min(math.floor(src), n_in - 1)
        t = min(max(src - i0, 0.0), 1.0)
        for k, dist in enumerate((t + 1, t, 1 - t, 2 - t)):
            m[o, min(max(i0 - 1 + k, 0), n_in - 1)] += keys(dist, -0.75)
    return m


def aa_matrix(n_in, n_out, cubic, align=False, sf=None):
    """Pillow's ImagingResample weights (PyTorch's _upsample_*_aa)."""
    if n_in == n_out:
        return np.eye(n_in)
    s = area_pixel_scale(n_in, n_out, align, sf)
    fscale = max(s, 1.0)
    support = (2.0 if cubic else 1.0) * fscale
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        center = s * (o + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in)
        w = np.array([keys((j - center + 0.5) / fscale, -0.5) if cubic
                      else max(0.0, 1.0 - abs((j - center + 0.5) / fscale))
                      for j in range(xmin, xmax)])
        if w.sum() != 0:
            w = w / w.sum()
        m[o, xmin:xmax] = w
    return m


def area_matrix(n_in, n_out):
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        a = (o * n_in) // n_out
        b = -((-(o + 1) * n_in) // n_out)
        m[o, a:b] = 1.0 / (b - a)
    return m


def apply_axes(x, mats, transpose=False):
    """Applies mats[k] to the k-th of the last len(mats) axes of x (float64)."""
    x = hp(x)
    nsp = len(mats)
    for k, m in enumerate(mats):
        ax = x.ndim - nsp + k
        mm = m.T if transpose else m
        x = np.moveaxis(np.tensordot(mm, x, axes=([1], [ax])), 0, ax)
    return x


def mats_for(op, n_in, n_out, attrs):
    """The per-axis matrices of op (forward name) for spatial sizes n_in -> n_out."""
    mats = []
    for k, (a, b) in enumerate(zip(n_in, n_out)):
        sf = attrs.get("scale_%d" % k)
        align = attrs.get("align_corners", False)
        aa = attrs.get("antialias", False)
        if op == "upsample_nearest":
            mats.append(nearest_matrix(a, b, sf, attrs.get("exact", False)))
        elif op == "upsample_linear":
            mats.append(aa_matrix(a, b, False, align, sf) if aa
                        else linear_matrix(a, b, align, sf))
        elif op == "upsample_bicubic":
            mats.append(aa_matrix(a, b, True, align, sf) if aa
                        else cubic_matrix(a, b, align, sf))
        else:
            mats.append(area_matrix(a, b))
    return mats


def reference(op, x, attrs):
    """Forward op (or its *_backward) on x, from the matrices above."""
    if op.endswith("_backward"):
        fwd = op[:-len("_backward")]
        n_in = list(attrs["input_size"])
        n_out = list(x.shape[x.ndim - len(n_in):])
        return apply_axes(x, mats_for(fwd, n_in, n_out, attrs), transpose=True)
    key = "output_size" if op == "adaptive_avg_pool" else "size"
    n_out = list(attrs[key])
    n_in = list(x.shape[x.ndim - len(n_out):])
    return apply_axes(x, mats_for(op, n_in, n_out, attrs))


# ---- sample tables: variant -> [(input shape of the FORWARD op, attrs)] -------------------
TABLES = {
    "upsample_nearest": {
        "basic": [((2, 2, 5), {"size": [7]}),
                  ((1, 2, 3, 4), {"size": [5, 3], "exact": True}),
                  ((1, 1, 2, 3, 2), {"size": [3, 4, 3]}),
                  ((1, 2, 3, 2), {"size": [6, 4]}),
                  ((1, 1, 5, 4), {"size": [2, 3], "exact": True, "scale_0": 0.5,
                                  "scale_1": 0.8}),
                  ((1, 1, 3, 5), {"size": [7, 3], "scale_0": 2.5, "scale_1": 0.7})],
        "noncontig": [((1, 2, 4, 3), {"size": [5, 2]}),
                      ((1, 1, 3, 4), {"size": [4, 7], "exact": True})],
        "zero": [((0, 2, 3, 4), {"size": [5, 6]})],
    },
    "upsample_linear": {
        "basic": [((2, 2, 4), {"size": [7]}),
                  ((1, 1, 6), {"size": [4], "align_corners": True}),
                  ((1, 2, 3, 4), {"size": [5, 3]}),
                  ((1, 1, 3, 3), {"size": [5, 7], "align_corners": True}),
                  ((1, 1, 2, 3, 2), {"size": [3, 4, 3]}),
                  ((1, 1, 4, 3), {"size": [6, 5], "scale_0": 1.7, "scale_1": 1.9}),
                  ((1, 1, 6, 5), {"size": [3, 2], "antialias": True}),
                  ((1, 2, 9, 7), {"size": [4, 3], "antialias": True}),
                  ((1, 1, 4, 3), {"size": [7, 2], "antialias": True,
                                  "align_corners": True})],
        "noncontig": [((1, 2, 4, 3), {"size": [5, 2]}),
                      ((1, 1, 8, 6), {"size": [3, 4], "antialias": True})],
        "zero": [((0, 2, 3, 4), {"size": [5, 6]})],
    },
    "upsample_bicubic": {
        "basic": [((1, 1, 4, 5), {"size": [6, 3]}),
                  ((1, 2, 3, 3), {"size": [5, 4], "align_corners": True}),
                  ((1, 1, 4, 4), {"size": [6, 6], "scale_0": 1.6, "scale_1": 1.55}),
                  ((1, 1, 6, 6), {"size": [4, 3], "antialias": True}),
                  ((1, 1, 3, 4), {"size": [6, 9], "antialias": True}),
                  ((2, 1, 9, 8), {"size": [4, 3], "antialias": True})],
        "noncontig": [((1, 2, 4, 3), {"size": [5, 2]}),
                      ((1, 1, 7, 6), {"size": [3, 4], "antialias": True})],
        "zero": [((0, 2, 3, 4), {"size": [5, 6]})],
    },
    "adaptive_avg_pool": {
        "basic": [((2, 3, 7), {"output_size": [3]}),
                  ((1, 2, 5, 4), {"output_size": [3, 3]}),
                  ((2, 5, 6), {"output_size": [4, 3]}),
                  ((1, 1, 3, 4, 5), {"output_size": [2, 3, 2]}),
                  ((1, 1, 3, 4), {"output_size": [5, 6]})],
        "noncontig": [((1, 2, 5, 4), {"output_size": [2, 3]})],
        "zero": [((0, 2, 3, 4), {"output_size": [2, 2]}),
                 ((1, 2, 3, 4), {"output_size": [0, 2]})],
    },
}


def _mag(op, attrs):
    return 2.0 if op == "upsample_bicubic" else 1.0


def fwd_cases(op):
    def cases(rng, d, variant):
        res = []
        for shape, attrs in TABLES[op].get(variant, []):
            x = gen(rng, d, shape)
            res.append(Case([(x, d)], dict(attrs), reference(op, x, attrs), d,
                             mag=_mag(op, attrs)))
        return res
    return cases


def bwd_cases(op):
    size_key = "output_size" if op == "adaptive_avg_pool" else "size"

    def cases(rng, d, variant):
        res = []
        for shape, attrs in TABLES[op].get(variant, []):
            nsp = len(attrs[size_key])
            gshape = tuple(shape[:len(shape) - nsp]) + tuple(attrs[size_key])
            g = gen(rng, d, gshape)
            a = {k: v for k, v in attrs.items() if k != size_key}
            a["input_size"] = list(shape[len(shape) - nsp:])
            name = op + "_backward"
            # The adjoint sums several cotangents into one input: scale the tolerance by the
            # largest column sum.
            mag = max(1.0, float(np.max(np.abs(np.concatenate(
                [m.sum(axis=0) for m in mats_for(op, a["input_size"], list(attrs[size_key]),
                                                 attrs)])))) ** nsp)
            res.append(Case([(g, d)], a, reference(name, g, a), d, mag=2 * mag))
        return res
    return cases


INTERP_SPECS = {}
for _op in TABLES:
    INTERP_SPECS[_op] = fwd_cases(_op)
    INTERP_SPECS[_op + "_backward"] = bwd_cases(_op)
