"""SciPy references and sample cases for the torch.special ops (server/engine/ops_special.c), in
test_ops.py's SPECS format: SPECIAL_SPECS maps an op name to cases(rng, dtype, variant)
returning objects with test_ops.Case's fields. References are scipy.special (or NumPy) in
float64 on the values as stored in the input dtype, never the daemon's output. Integer and
bool inputs compute in float32 (like torch). tests/python/accuracy_special.py measures the
ULP errors over wide ranges (docs/ACCURACY.md); these cases check values, dtypes, shapes,
broadcasting, strides and the float64 samples the gradient checks use.
"""
import numpy as np
import scipy.special as sc

import tensord as td
from spec_common import Case, round_to

B = td.bool_
F16, BF16, F32, F64 = td.float16, td.bfloat16, td.float32, td.float64


def special_case(inputs, attrs, expected, out_dtype):
    """A Case with a float64 expected value; mag is its largest finite magnitude (at least 1)."""
    ex = np.asarray(expected, np.float64)
    fin = np.abs(ex[np.isfinite(ex)])
    mag = max(1.0, float(fin.max())) if fin.size else 1.0
    return Case(inputs, attrs, [ex], [out_dtype], mag=mag)


def gen(rng, d, shape, dom):
    lo, hi, ilo, ihi = dom
    if d is B:
        return rng.random(shape) < 0.5
    if d.kind in "iu":
        info = np.iinfo(d.numpy_dtype)
        return rng.integers(max(ilo, info.min), min(ihi, info.max) + 1,
                            shape).astype(d.numpy_dtype)
    return round_to(rng.uniform(lo, hi, shape), d)


def out_dtype(d):
    return F32 if d.kind in "biu" else d


UNARY_SHAPES = {"basic": (3, 4), "noncontig": (3, 4), "zero": (0, 4), "0d": ()}
BINARY_SHAPES = {"basic": [(3, 4), (3, 4)], "broadcast": [(3, 1), (1, 4)],
                 "noncontig": [(3, 4), (3, 4)], "zero": [(0, 4), (4,)], "0d": [(), ()]}


def unary(ref, dom, attrs_list=({},), zero_at=None, bool_true=False):
    """ref(x64, attrs) -> expected. bool_true: bool samples are all true (domain x > 0)."""
    def cases(rng, d, variant):
        shape = UNARY_SHAPES.get(variant)
        if shape is None:
            return []
        x = gen(rng, d, shape, dom)
        if bool_true and d is B:
            x = np.ones(shape, bool)
        if zero_at is not None and variant == "basic" and d.kind == "f":
            x.flat[0] = zero_at
        res = []
        for attrs in attrs_list:
            if bool_true and d is B and attrs.get("p", 1) > 1:
                continue
            with np.errstate(all="ignore"):
                exp = ref(x.astype(np.float64), attrs)
            res.append(special_case([(x, d)], attrs, exp, out_dtype(d)))
        return res
    return cases


def binary(ref, dom_a, dom_b, zero_a=False):
    def cases(rng, d, variant):
        shapes = BINARY_SHAPES.get(variant)
        if shapes is None:
            return []
        a = gen(rng, d, shapes[0], dom_a)
        b = gen(rng, d, shapes[1], dom_b)
        if zero_a and variant == "basic" and d is not B:
            a.flat[0] = 0
        with np.errstate(all="ignore"):
            exp = ref(a.astype(np.float64), b.astype(np.float64))
        res = [special_case([(a, d), (b, d)], {}, exp, out_dtype(d))]
        if variant == "basic" and d is F32:
            # Mixed dtypes promote: float32 with float64 computes in float64.
            b64 = b.astype(np.float64)
            res.append(special_case([(a, F32), (b64, F64)], {}, exp, F64))
        return res
    return cases


def _entr(x, _a):
    return np.where(x > 0, -x * np.log(np.where(x > 0, x, 1)), np.where(x == 0, 0.0, -np.inf))


def _logit(x, a):
    if "eps" in a:
        x = np.clip(x, a["eps"], 1 - a["eps"])
    return sc.logit(x)


SPECIAL_SPECS = {
    "gamma": unary(lambda x, a: sc.gamma(x), (0.1, 5, 1, 5)),
    "lgamma": unary(lambda x, a: sc.gammaln(x), (-3.7, 7, 1, 6)),
    "digamma": unary(lambda x, a: sc.psi(x), (0.2, 6, 1, 6)),
    "polygamma": unary(lambda x, a: sc.polygamma(a["n"], x), (0.3, 5, 1, 5),
                       ({"n": 0}, {"n": 1}, {"n": 2}, {"n": 3})),
    "multigammaln": unary(lambda x, a: np.vectorize(sc.multigammaln, otypes=[np.float64])(x, a["p"]),
                          (1.2, 6, 2, 6), ({"p": 1}, {"p": 3}), bool_true=True),
    "erfc": unary(lambda x, a: sc.erfc(x), (-3, 3, -2, 2)),
    "erfinv": unary(lambda x, a: sc.erfinv(x), (-0.95, 0.95, 0, 1)),
    "erfcx": unary(lambda x, a: sc.erfcx(x), (-2.5, 8, -2, 5)),
    "expit": unary(lambda x, a: sc.expit(x), (-6, 6, -5, 5)),
    "logit": unary(_logit, (0.02, 0.98, 0, 1), ({}, {"eps": 0.1})),
    "i0": unary(lambda x, a: sc.i0(x), (-5, 5, -5, 5)),
    "i0e": unary(lambda x, a: sc.i0e(x), (-30, 30, -5, 5)),
    "i1": unary(lambda x, a: sc.i1(x), (-5, 5, -5, 5)),
    "i1e": unary(lambda x, a: sc.i1e(x), (-30, 30, -5, 5)),
    "ndtr": unary(lambda x, a: sc.ndtr(x), (-4, 4, -3, 3)),
    "ndtri": unary(lambda x, a: sc.ndtri(x), (0.01, 0.99, 0, 1)),
    "log_ndtr": unary(lambda x, a: sc.log_ndtr(x), (-10, 5, -5, 5)),
    "sinc": unary(lambda x, a: np.sinc(x), (-3, 3, -3, 3), zero_at=0.0),
    "entr": unary(_entr, (0.2, 3, 0, 5)),
    "bessel_j0": unary(lambda x, a: sc.j0(x), (-10, 10, -6, 6)),
    "bessel_j1": unary(lambda x, a: sc.j1(x), (-10, 10, -6, 6)),
    "bessel_y0": unary(lambda x, a: sc.y0(x), (0.1, 10, 1, 6)),
    "bessel_y1": unary(lambda x, a: sc.y1(x), (0.1, 10, 1, 6)),
    "xlogy": binary(sc.xlogy, (-2, 2, -3, 3), (0.1, 4, 1, 5), zero_a=True),
    "xlog1py": binary(sc.xlog1py, (-2, 2, -3, 3), (-0.9, 3, 0, 5), zero_a=True),
    "zeta": binary(sc.zeta, (1.5, 5, 2, 5), (0.5, 4, 1, 4)),
    "gammainc": binary(sc.gammainc, (0.5, 5, 1, 5), (0.1, 6, 0, 6)),
    "gammaincc": binary(sc.gammaincc, (0.5, 5, 1, 5), (0.1, 6, 0, 6)),
}
