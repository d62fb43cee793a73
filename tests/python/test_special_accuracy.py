"""Float64 accuracy regression tests for torch.special ops in the regions where tensord used to
lose relative accuracy (docs/ACCURACY.md): digamma near its positive root, ndtri near p = 1/2,
gammainc/gammaincc for large a (the prefactor x^a e^-x / Gamma(a)) and gammaincc for small a
(1 - P cancelling), plus lgamma near its zeros 1 and 2.

The reference values are not SciPy's: SciPy's gammaln loses up to ~1e4 ULP near 1 and 2 and
its gammainc/gammaincc up to ~1e3 ULP for a > ~30, so every expected value below was
computed with mpmath 1.4 at 50 significant digits and rounded to the nearest double by
generator code equivalent to:

    mp.mp.dps = 50
    digamma:   mp.digamma(x)
    ndtri:     mp.sqrt(2) * mp.erfinv(2 * p - 1)
    lgamma:    mp.loggamma(x)
    gammainc:  mp.gammainc(a, 0, x, regularized=True)
    gammaincc: mp.gammainc(a, x, mp.inf, regularized=True)

(all evaluated at the double arguments as written; for a > 1e6 mpmath's lower function does not
converge and P = 1 - Q there). The a = x = 1e20 values are the asymptote
P(a, a) = 1/2 + 1/(3 sqrt(2 pi a)) + O(a^-3/2) (DLMF 8.12.3 and 8.12.9 at eta = 0), exact to
double precision at that a. Error = |got - ref| / spacing(|ref|);
for ref == 0 the bound applies in units of the smallest subnormal's scale via spacing(tiny).
"""
import numpy as np
import pytest

import tensord as td

DIGAMMA = [
    (1.4616321449683622, -9.241265521729427e-17),
    (1.461632144968362, -3.072790566546293e-16),
    (1.4616321449683625, 1.2245374622004068e-16),
    (1.4616321449683618, -5.221454580919643e-16),
    (1.46158, -5.0460442576862794e-05),
    (1.4616, -3.110625123034165e-05),
    (1.4617, 6.56593922936765e-05),
    (1.45, -0.011316422586445888),
    (1.47, 0.008066489011364869),
    (1.4476967500000002, -0.01357158322549942),
    (1.4712577, 0.009273589000519576),
    (1.399717, -0.061674760116274464),
    (1.2518875, -0.22519593662395526),
    (1.5234469, 0.05818335338242181),
    (1.1981023, -0.291447663416641),
    (1.68701695, 0.19819805414053618),
    (1.9791448, 0.4092454698578794),
    (2.00222695, 0.4242195698648424),
    (0.9703930000000001, -0.626999830040701),
    (0.80255365, -0.9591509167222678),
    (0.4616321449683622, -2.1662269642607637),
    (2.461632144968362, 0.6841666717870694),
    (5.5, 1.6110931485817512),
    (9.75, 2.225109535044576),
]
NDTRI = [
    (0.5, 0.0),
    (0.49999999999999994, -1.3914582123358836e-16),
    (0.5000000000000001, 2.782916424671767e-16),
    (0.499925, -0.0001879971217046988),
    (0.500075, 0.00018799712170483794),
    (0.4985529, -0.003627349730778848),
    (0.501, 0.002506630899571766),
    (0.48877749, -0.028134372031377013),
    (0.51026942, 0.025744462060985802),
    (0.4999999, -2.5066282747031063e-07),
    (0.3, -0.5244005127080408),
    (0.7, 0.5244005127080407),
    (0.26, -0.643345405392917),
]
LGAMMA = [
    (1.00005, -2.885872712763799e-05),
    (0.9999999999999999, 6.408381213480008e-17),
    (1.0000000000000002, -1.2816762426960008e-16),
    (1.9999999999999998, -9.387698065543117e-17),
    (2.0000000000000004, 1.8775396131086244e-16),
    (0.98896645, 0.006469406650842242),
    (1.0112306500000001, -0.006379334697735885),
    (1.9861273000000002, -0.005802920297774957),
    (1.79562475, -0.07232372048025894),
    (0.89420395, 0.07078423154055528),
    (0.7702546, 0.18180146731743793),
]
GAMMAINC = [
    (1000.0, 990.0, 0.3795213785379639),
    (1000.0, 1010.0, 0.6276789447369947),
    (500.0, 480.0, 0.1862819731903246),
    (200.0, 210.0, 0.7639696745011538),
    (923.694, 895.831, 0.1800524470361523),
    (649.927, 560.026, 0.0001119951962913948),
    (150.0, 120.0, 0.004563441304151243),
    (100.0, 100.0, 0.5132987982791487),
    (805.14, 924.103, 0.9999701260102885),
    (166.042, 96.4573, 8.202085724936219e-11),
    (30.713, 17.9645, 0.0038383805622101024),
    (93.1171, 78.7624, 0.06218240532492159),
    (1000.0, 666.0846290809154, 1.3234356352110634e-33),
    (761576.94, 761556.4823, 0.49080099529925325),
    (2000000.0, 2001500.0, 0.8555711425334982),
    (1000000.0, 998000.0, 0.022696114006736802),
    (3000000.0, 2994000.0, 0.00026391438572599625),
    (1e20, 1e20, 0.500000000013298),
]
GAMMAINCC = [
    (1000.0, 990.0, 0.620478621462036),
    (1000.0, 1010.0, 0.3723210552630053),
    (500.0, 480.0, 0.8137180268096754),
    (200.0, 210.0, 0.23603032549884614),
    (923.694, 895.831, 0.8199475529638477),
    (649.927, 560.026, 0.9998880048037087),
    (150.0, 120.0, 0.9954365586958488),
    (100.0, 100.0, 0.48670120172085135),
    (805.14, 924.103, 2.9873989711602298e-05),
    (166.042, 96.4573, 0.9999999999179792),
    (30.713, 17.9645, 0.9961616194377899),
    (93.1171, 78.7624, 0.9378175946750784),
    (1000.0, 666.0846290809154, 1.0),
    (0.0011231045018329515, 0.8161400793251826, 0.00033916521595994263),
    (0.01, 0.5, 0.0056267561939671844),
    (0.1, 1.0, 0.024127343726327778),
    (0.001, 0.1, 0.0018219902620497243),
    (0.3, 1.1, 0.07300504491258748),
    (0.05, 0.9, 0.013613573965436629),
    (0.01, 1.2, 0.0016024593003321358),
    (0.3, 1.3, 0.05519276363373652),
    (0.2086, 1.1765, 0.042266873056745605),
    (0.0144, 1.329, 0.0018984312612140026),
    (0.5, 0.6, 0.27332167829229814),
    (0.001, 3.0, 1.3073139801213742e-05),
    (761576.94, 761556.4823, 0.5091990047007467),
    (2000000.0, 2001500.0, 0.1444288574665018),
    (1000000.0, 998000.0, 0.9773038859932632),
    (3000000.0, 2994000.0, 0.999736085614274),
    (1e20, 1e20, 0.4999999999867019),
]

# ULP bounds (float64). The incomplete gamma functions for large a keep an error of about one
# unit per unit of the exponent -a (t - 1 - log t) = log(result) in the tails, plus that of
# the series/continued fraction near x ~ a (measured up to ~20 ULP for a <= 1000): the bound
# is BOUND + |log(ref)|. Before the prefactor fix these points were 1e3..1e4 ULP off.
BOUND = {"digamma": 4, "ndtri": 4, "lgamma": 2, "gammainc": 32, "gammaincc": 32}
BOUND_SMALL_A = 8


def ulps(got, ref):
    ref = np.asarray(ref, np.float64)
    return np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), np.finfo(np.float64).tiny))


def run(client, name, *cols):
    ts = [td.tensor(np.asarray(c, np.float64), client=client) for c in cols]
    out = td.op(name, *ts, client=client).numpy()
    assert out.dtype == np.float64
    return out


def too_far(name, args, got, ref, bound):
    """The (name, args, got, ref, ulp) of the points whose error exceeds bound."""
    err = ulps(got, ref)
    bound = np.broadcast_to(bound, err.shape)
    return [(name, a, g, r, e) for a, g, r, e, b in zip(args, got, ref, err, bound)
            if not e <= b]


@pytest.mark.parametrize("name, table", [("digamma", DIGAMMA), ("ndtri", NDTRI),
                                         ("lgamma", LGAMMA)])
def test_unary_near_zero_results(client, name, table):
    x = np.array([t[0] for t in table])
    ref = np.array([t[1] for t in table])
    bad = too_far(name, x, run(client, name, x), ref, BOUND[name])
    assert not bad, "errors above %g ULP (name, x, got, ref, ulp): %r" % (BOUND[name], bad)


def test_ndtri_is_odd_about_half(client):
    # ndtri(p) = -ndtri(1 - p) holds exactly for p in [0.5, 0.75] (1 - p is exact there and
    # both go through the same odd function of 2p - 1).
    p = np.linspace(0.5, 0.75, 2001)
    got = run(client, "ndtri", p)
    back = run(client, "ndtri", 1 - p)
    np.testing.assert_array_equal(got, -back)


@pytest.mark.parametrize("name, table", [("gammainc", GAMMAINC), ("gammaincc", GAMMAINCC)])
def test_incomplete_gamma(client, name, table):
    a = np.array([t[0] for t in table])
    x = np.array([t[1] for t in table])
    ref = np.array([t[2] for t in table])
    got = run(client, name, a, x)
    small = a < 1
    bad = too_far(name + " (a >= 1)", list(zip(a[~small], x[~small])), got[~small],
                  ref[~small], BOUND[name] + np.abs(np.log(ref[~small])))
    bad += too_far(name + " (small a)", list(zip(a[small], x[small])), got[small], ref[small],
                   BOUND_SMALL_A)
    assert not bad, "errors above the bound (name, (a, x), got, ref, ulp): %r" % bad
