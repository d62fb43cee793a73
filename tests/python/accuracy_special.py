"""Measures the accuracy of the torch.special ops of tensord against SciPy (scipy.special in
float64) over wide argument ranges, tails and the neighbourhoods of poles and zeros, and
prints the Markdown table of docs/ACCURACY.md.

    TENSORD_BIN=build/server/tensord python tests/python/accuracy_special.py

Error of a result r against the reference f (SciPy float64): |r - f| / ulp_T(f) in units of
the last place of the output dtype T (float32 or float64), with ulp_T(f) = spacing(max(|f|,
smallest normal of T)). float32 inputs are the float32-rounded sample points, and the
reference is evaluated at those rounded points. Points where the reference is not finite
only check that the daemon gives the same inf/NaN ("special-value mismatches"). Note SciPy
is itself not exact: float64 errors of a few ULP may be SciPy's as much as tensord's. Where
SciPy is known to be far off (gammaln near 1 and 2: ~1e4 ULP; psi near its negative roots:
~2e5 ULP; gammainc/gammaincc for large a: ~1e3 ULP) the reference is mpmath at 40 digits
when mpmath is installed (it is not in scripts/requirements.txt: `pip install mpmath`); the
table's range column says which.
After the table, a second one gives each function's float64 maximum over the points whose
reference is a normal number (the first table counts subnormal results in subnormal steps)
and over those whose reference is at least 1e-3 in magnitude (away from underflowing tails).
"""
import datetime
import os
import sys

import numpy as np
import scipy
import scipy.special as sc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tdtest_daemon  # noqa: E402
import tensord as td  # noqa: E402

N = 20000


def lin(lo, hi, n=N):
    return np.linspace(lo, hi, n)


def logs(lo, hi, n=N, neg=False):
    x = np.logspace(lo, hi, n)
    return np.concatenate([-x[::-1], x]) if neg else x


def cat(*a):
    return np.concatenate(a)


def near(points, width=1e-3, n=200):
    """Points within width of each of points (poles and zeros)."""
    return np.concatenate([p + np.linspace(-width, width, n) for p in points])


def grid(a, b):
    A, B = np.meshgrid(a, b)
    return A.ravel(), B.ravel()


try:
    import mpmath
    mpmath.mp.dps = 40
except ImportError:  # the table then uses SciPy everywhere
    mpmath = None


def mp_vec(f):
    """f(*mpf args) -> mpf, evaluated at float64 arrays, rounded to float64."""
    def g(*arrs):
        arrs = np.broadcast_arrays(*[np.asarray(a, np.float64) for a in arrs])
        out = np.empty(arrs[0].shape)
        for i, args in enumerate(zip(*[a.ravel() for a in arrs])):
            try:
                out.flat[i] = float(f(*[mpmath.mpf(float(v)) for v in args]))
            except (ValueError, ZeroDivisionError):
                out.flat[i] = np.nan
        return out
    return g


def ref_or_scipy(scipy_fn, mp_fn):
    """mpmath's value where mpmath is installed, else SciPy's; returns (fn, label)."""
    if mpmath is None:
        return scipy_fn, "SciPy"
    return mp_vec(mp_fn), "mpmath"


def _mp_lgamma(x):
    if x <= 0 and x == mpmath.floor(x):
        return mpmath.inf
    return mpmath.re(mpmath.loggamma(x)) if x > 0 else mpmath.log(abs(mpmath.gamma(x)))


def _mp_digamma(x):
    if x == 0:  # SciPy's (and tensord's) sign convention at the pole 0 (+0 here)
        return -mpmath.inf
    if x < 0 and x == mpmath.floor(x):
        return mpmath.nan
    return mpmath.digamma(x)


def _mp_gammainc(a, x):
    if a == 0:
        return mpmath.mpf(1) if x > 0 else mpmath.nan
    return mpmath.gammainc(a, 0, x, regularized=True)


def _mp_gammaincc(a, x):
    if a == 0:
        return mpmath.mpf(0) if x > 0 else mpmath.nan
    return mpmath.gammainc(a, x, mpmath.inf, regularized=True)


LGAMMA_REF, LGAMMA_SRC = ref_or_scipy(sc.gammaln, _mp_lgamma)
DIGAMMA_REF, DIGAMMA_SRC = ref_or_scipy(sc.psi, _mp_digamma)
GINC_REF, GINC_SRC = ref_or_scipy(sc.gammainc, _mp_gammainc)
GINCC_REF, GINCC_SRC = ref_or_scipy(sc.gammaincc, _mp_gammaincc)

NEG_POLES = -np.arange(1, 20) + 0.0
J0_ZEROS = [2.404825557695773, 5.520078110286311, 8.653727912911013]
Y0_ZEROS = [0.8935769662791675, 3.957678419314858, 7.086051060301773]

# name: (reference, inputs generator (one array or a pair), attrs, note)
FUNCS = [
    ("gamma", sc.gamma, lambda: cat(lin(-20, 171.5), near(NEG_POLES[:8] + 0.5, 0.49), logs(-30, 0)), {}, "x in [-20, 171.5], near poles, tiny x"),
    ("lgamma", LGAMMA_REF, lambda: cat(lin(-50, 50), logs(-30, 300), near([1.0, 2.0], 1e-2), near(NEG_POLES[:8] + 0.5, 0.49)), {}, "x in [-50, 1e300], near the zeros 1 and 2; reference " + LGAMMA_SRC),
    ("digamma", DIGAMMA_REF, lambda: cat(lin(-20, 50), logs(-30, 300), near([1.4616321449683622], 1e-2), near(NEG_POLES[:8] + 0.5, 0.49), lin(0.01, 10)), {}, "x in [-20, 1e300], near the root 1.4616, (0, 10]; reference " + DIGAMMA_SRC),
    ("polygamma", lambda x: sc.polygamma(1, x), lambda: cat(lin(-10, 50), logs(-5, 10)), {"n": 1}, "n = 1, x in [-10, 1e10]"),
    ("polygamma", lambda x: sc.polygamma(3, x), lambda: cat(lin(-10, 50), logs(-5, 10)), {"n": 3}, "n = 3"),
    ("multigammaln", lambda x: sc.multigammaln(x, 3) if np.ndim(x) == 0 else np.array([sc.multigammaln(v, 3) for v in x]), lambda: cat(lin(1.001, 50, 4000), logs(2, 30, 2000)), {"p": 3}, "p = 3, x in (1, 1e30]"),
    ("erfc", sc.erfc, lambda: cat(lin(-6, 27), logs(-30, 1, neg=True)), {}, "x in [-6, 27] (underflow)"),
    ("erfinv", sc.erfinv, lambda: cat(lin(-1, 1), 1 - logs(-16, 0), logs(-30, 0, neg=True)), {}, "y in [-1, 1], y near +-1"),
    ("erfcx", sc.erfcx, lambda: cat(lin(-26, 50), logs(-30, 300)), {}, "x in [-26, 1e300]"),
    ("expit", sc.expit, lambda: cat(lin(-750, 40), logs(-30, 2, neg=True)), {}, "x in [-750, 40]"),
    ("logit", sc.logit, lambda: cat(lin(0, 1), logs(-300, 0), 1 - logs(-16, 0)), {}, "x in [0, 1], both tails"),
    ("i0", sc.i0, lambda: cat(lin(-700, 700), logs(-30, 2)), {}, "x in [-700, 700]"),
    ("i0e", sc.i0e, lambda: cat(lin(-700, 700), logs(-30, 300, neg=True)), {}, "x in [-1e300, 1e300]"),
    ("i1", sc.i1, lambda: cat(lin(-700, 700), logs(-30, 2, neg=True)), {}, "x in [-700, 700]"),
    ("i1e", sc.i1e, lambda: cat(lin(-700, 700), logs(-30, 300, neg=True)), {}, "x in [-1e300, 1e300]"),
    ("ndtr", sc.ndtr, lambda: cat(lin(-38, 9), logs(-30, 1, neg=True)), {}, "x in [-38, 9]"),
    ("ndtri", sc.ndtri, lambda: cat(lin(0, 1), logs(-300, 0), 1 - logs(-16, 0), near([0.5], 1e-3)), {}, "p in [0, 1], both tails, near 1/2"),
    ("log_ndtr", sc.log_ndtr, lambda: cat(lin(-1e3, 40), logs(-30, 10, neg=True)), {}, "x in [-1e10, 40]"),
    ("sinc", np.sinc, lambda: cat(lin(-50, 50), logs(-30, 1, neg=True)), {}, "x in [-50, 50] (float64 reference is NumPy's sinc)"),
    ("entr", sc.entr, lambda: cat(lin(0, 100), logs(-300, 300)), {}, "x in [0, 1e300]"),
    ("bessel_j0", sc.j0, lambda: cat(lin(-100, 100), logs(-30, 10)), {}, "x in [-100, 100] and up to 1e10"),
    ("bessel_j1", sc.j1, lambda: cat(lin(-100, 100), logs(-30, 10)), {}, "x in [-100, 100] and up to 1e10"),
    ("bessel_y0", sc.y0, lambda: cat(lin(1e-3, 100), logs(-30, 10), near(Y0_ZEROS, 1e-2)), {}, "x in (0, 1e10], near zeros"),
    ("bessel_y1", sc.y1, lambda: cat(lin(1e-3, 100), logs(-30, 10)), {}, "x in (0, 1e10]"),
    ("xlogy", sc.xlogy, lambda: grid(cat(lin(-10, 10, 141), [0.0]), cat(logs(-30, 30, 140), [0.0])), {}, "x in [-10, 10], y in [1e-30, 1e30]"),
    ("xlog1py", sc.xlog1py, lambda: grid(cat(lin(-10, 10, 141), [0.0]), cat(-logs(-30, 0, 70), logs(-30, 30, 70))), {}, "x in [-10, 10], y in (-1, 1e30]"),
    ("zeta", sc.zeta, lambda: grid(cat(lin(1.01, 10, 70), logs(1, 2, 30)), cat(logs(-3, 3, 100), [-2.5, -1.5, -0.5])), {}, "x in (1, 100], q in [1e-3, 1e3]"),
    ("gammainc", GINC_REF, lambda: grid(logs(-3, 3, 120), cat(logs(-3, 3.3, 120), [0.0])), {}, "a, x in [1e-3, 1e3]; reference " + GINC_SRC),
    ("gammaincc", GINCC_REF, lambda: grid(logs(-3, 3, 120), cat(logs(-3, 3.3, 120), [0.0])), {}, "a, x in [1e-3, 1e3]; reference " + GINCC_SRC),
]


def ulp_err(got, ref, dt):
    info = np.finfo(dt)
    r = np.asarray(ref, np.float64)
    fin = np.isfinite(r)
    scale = np.spacing(np.maximum(np.abs(r[fin]), info.tiny).astype(dt)).astype(np.float64)
    err = np.abs(got[fin].astype(np.float64) - r[fin]) / scale
    err[~np.isfinite(got[fin])] = np.inf
    bad = ~fin & ~((np.isnan(r) & np.isnan(got)) | (r == got))
    return err, fin, int(bad.sum())


def measure(c, name, ref, gen, attrs, dt):
    ins = gen()
    ins = list(ins) if isinstance(ins, tuple) else [ins]
    ins = [np.asarray(a, np.float64).astype(dt) for a in ins]
    with np.errstate(all="ignore"):
        ref_v = np.asarray(ref(*[a.astype(np.float64) for a in ins]), np.float64)
        if dt == np.float32:
            # Values beyond float32's range are inf in float32.
            over = np.isfinite(ref_v) & (np.abs(ref_v) > np.finfo(np.float32).max)
            ref_v = np.where(over, np.sign(ref_v) * np.inf, ref_v)
    tds = [td.tensor(a, client=c) for a in ins]
    got = td.op(name, *tds, client=c, **attrs).numpy().astype(np.float64)
    err, fin, bad = ulp_err(got, ref_v, dt)
    if err.size == 0:
        return 0.0, None, bad, [(0.0, None), (0.0, None)]
    k = int(np.argmax(err))
    where = [float(a[fin][k]) for a in ins]
    norm = []
    for lo in (np.finfo(dt).tiny, 1e-3):
        sel = np.abs(ref_v[fin]) >= lo
        if sel.any():
            kn = int(np.argmax(np.where(sel, err, -1)))
            norm.append((float(err[kn]), [float(a[fin][kn]) for a in ins]))
        else:
            norm.append((0.0, None))
    return float(err[k]), where, bad, norm


def fmt(e):
    if not np.isfinite(e):
        return "inf"
    if e < 10:
        return "%.2f" % e
    if e < 1e6:
        return "%.0f" % e
    return "%.1e" % e


def at_str(where):
    return "" if where is None else " (" + ", ".join("%.6g" % w for w in where) + ")"


def main():
    c = td.connect(tdtest_daemon.shared().unix_address, seed=1)
    print("Measured %s with tests/python/accuracy_special.py, SciPy %s, NumPy %s." % (
        datetime.date.today().isoformat(), scipy.__version__, np.__version__))
    print()
    print("| function | range | max ULP float32 (at) | max ULP float64 (at) | special-value mismatches |")
    print("|---|---|---|---|---|")
    normals = []
    try:
        for name, ref, gen, attrs, note in FUNCS:
            cells, bads = [], 0
            for dt in (np.float32, np.float64):
                e, where, bad, norm = measure(c, name, ref, gen, attrs, dt)
                bads += bad
                cells.append(fmt(e) + at_str(where))
            label = name + ("(" + ", ".join("%s=%s" % kv for kv in attrs.items()) + ")"
                            if attrs else "")
            normals.append((label, [fmt(e) + at_str(w) for e, w in norm]))
            print("| %s | %s | %s | %s | %d |" % (label, note, cells[0], cells[1], bads))
            sys.stdout.flush()
        print()
        print("| function | float64: max ULP over normal results (at) | over results >= 1e-3 (at) |")
        print("|---|---|---|")
        for label, cells in normals:
            print("| %s | %s | %s |" % (label, cells[0], cells[1]))
    finally:
        c.close()
        tdtest_daemon.shutdown_shared(check=False)


if __name__ == "__main__":
    main()
