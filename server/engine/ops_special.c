/*
 * ops_special.c - torch.special elementwise functions (ops.def section "special").
 *
 * Every kernel computes in double and rounds once to the output dtype (float32 results, and
 * float16/bfloat16 through a float32 scratch); float64 inputs compute in double. Integer and
 * bool inputs promote to float32 like torch. Binary ops broadcast (NumPy rules) and promote
 * with td_result_type. The measured accuracy against SciPy (mpmath where SciPy itself is
 * inexact) is in docs/ACCURACY.md (tests/python/accuracy_special.py).
 *
 * Algorithms (each function below names its source):
 *   gamma, lgamma, erfc, bessel_j0/j1/y0/y1: C99/glibc libm (tgamma, lgamma_r, erfc, j0, ...).
 *     (glibc's lgamma_r keeps relative accuracy near the zeros 1 and 2: < 1 ULP against
 *     mpmath there; SciPy's gammaln is the one that loses it.)
 *   digamma: reflection (A&S 6.3.7) for x < 0; for 0 < x < 10 the recurrence (A&S 6.3.5)
 *     into [1, 2] and a 40-term Taylor series about the positive root x0 = 1.4616...
 *     with x0 split into two doubles (the approach of Cody, Strecok & Thacher, "Chebyshev
 *     approximations for the psi function", Math. Comp. 27 (1973) 123-127, who also expand
 *     about x0; coefficients psi^(n)(x0)/n! from mpmath); the asymptotic series A&S 6.3.18
 *     for x >= 10.
 *   polygamma(n >= 1): (-1)^(n+1) n! zeta(n+1, x), A&S 6.4.10.
 *   zeta (Hurwitz): Euler-Maclaurin summation as in Cephes zeta.c (S. Moshier), with the
 *     large-q asymptote DLMF 25.11.43.
 *   erfinv: M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2010), single
 *     precision polynomial plus two Newton steps on erf, for |y| < 0.5; via ndtri for the tails.
 *   ndtri: sqrt(2) erfinv(2p - 1) for p in (0.25, 0.75) (2p - 1 exact, so the result keeps
 *     relative accuracy near p = 1/2); P. J. Acklam's rational approximation (2003) plus
 *     two Halley steps on erfc in the tails.
 *   erfcx: exp(x^2) erfc(x) with x^2 split exactly (Dekker) for |x| < 10, the Laplace
 *     continued fraction (A&S 7.1.14) beyond.
 *   i0, i0e, i1, i1e: power series A&S 9.6.10 for |x| <= 20, Hankel asymptotic expansion
 *     A&S 9.7.1 beyond.
 *   gammainc, gammaincc: series for P and the Legendre continued fraction for Q (Numerical
 *     Recipes, 3rd ed., 6.2), each found forward and then evaluated backward (Horner, tail
 *     of the fraction first) so rounding errors do not accumulate. Prefactor
 *     x^a e^-x / Gamma(a) as sqrt(a / 2 pi) exp(a log1pmx((x - a)/a)) / gammastar(a) with
 *     Temme's Gamma* from the Stirling series (DiDonato & Morris, "Computation of the
 *     incomplete gamma function ratios and their inverse", ACM TOMS 12 (1986) 377-393;
 *     N. M. Temme, "Special functions", Wiley 1996, ch. 11), or exp(a log x - x - lgamma(a))
 *     for a < 10 where that is more accurate. Q for small a and x < 0.5 by DLMF 8.7.3 with
 *     lgamma(1 + a) from A&S 6.1.33 (as SciPy/Cephes igamc). For a >= 1e6 near x ~ a,
 *     Temme's uniform asymptotic expansion (SIAM J. Math. Anal. 10 (1979); DLMF 8.12)
 *     with two terms.
 *   log_ndtr: log(erfcx(-x/sqrt 2) / 2) - x^2/2 in the lower tail, log1p(-ndtr(-x)) above 0.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "td_internal.h"
#include "td_ops.h"

#define SP_PI 3.14159265358979323846
#define SP_SQRT1_2 0.70710678118654752440
#define SP_SQRT2 1.41421356237309504880
#define SP_SQRTPI 1.77245385090551602730
#define SP_SQRT2PI 2.50662827463100050242
#define SP_LOGPI 1.14472988584940017414
#define SP_EPS 1.1102230246251565e-16

struct sp_par {
    int64_t n;      /* polygamma's n, multigammaln's p */
    double eps;     /* logit's eps */
    bool has_eps;
};

typedef double (*sp_fn1)(double x, const struct sp_par *p);
typedef double (*sp_fn2)(double a, double b, const struct sp_par *p);

/* ---------------------------------------------------------------------------------------
 * Scalar functions.
 */
static double sp_gamma(double x, const struct sp_par *p)
{
    (void)p;
    return tgamma(x);
}

/* LG1[k - 2] = (-1)^k zeta(k) / k, k = 2..31, generated with mpmath 1.4 (60 digits, rounded
 * to the nearest double): A&S 6.1.33, lgamma(1 + z) = -gamma z + sum_k LG1[k - 2] z^k. */
static const double LG1[] = {
    0.8224670334241132, -0.40068563438653143, 0.27058080842778454, -0.20738555102867398,
    0.1695571769974082, -0.1440498967688461, 0.12550966952474304, -0.11133426586956469,
    0.1000994575127818, -0.09095401714582904, 0.083353840546109, -0.0769325164113522,
    0.07143294629536133, -0.06666870588242046, 0.06250095514121304, -0.058823978658684585,
    0.055555767627403614, -0.05263167937961666, 0.05000004769810169, -0.047619070330142226,
    0.04545455629320467, -0.04347826605304026, 0.04166666915034121, -0.04000000119214014,
    0.03846153903467518, -0.037037037312989324, 0.035714285847333355, -0.034482758684919304,
    0.03333333336437758, -0.03225806453115042};

#define SP_EULER 0.5772156649015329

/* z * (c0 + sum_k c[k] z^(k + 1)) by Horner, the sum of the higher terms first. */
static double sp_series(double z, double c0, const double *c, int n)
{
    double s = 0;
    for (int k = n - 1; k >= 0; k--)
        s = s * z + c[k];
    return z * (c0 + z * s);
}

/* lgamma(1 + a) for a > -0.5 without rounding 1 + a for small a: the series above for
 * |a| <= 0.25 (30 terms, truncation below 2^-60 of the result), lgamma_r beyond. */
static double lgamma1p(double a)
{
    if (fabs(a) <= 0.25)
        return sp_series(a, -SP_EULER, LG1, (int)(sizeof LG1 / sizeof LG1[0]));
    int sign;
    return lgamma_r(1 + a, &sign);
}

static double sp_lgamma(double x, const struct sp_par *p)
{
    (void)p;
    int sign;
    return lgamma_r(x, &sign);
}

/* Taylor coefficients of digamma about its positive root x0 = 1.46163214496836234126...:
 * DG[n - 1] = psi^(n)(x0) / n!, n = 1..40, generated with mpmath 1.4 (60 digits; x0 from
 * mpmath.findroot(digamma), the coefficients mpmath.psi(n, x0) / n!) and rounded to the
 * nearest double. x0 = DG_X0_HI + DG_X0_LO to about 106 bits. */
#define DG_X0_HI 1.4616321449683622
#define DG_X0_LO 9.549995429965697e-17
static const double DG[] = {
    0.9676722454476212, -0.4427631689835921, 0.258499760955651, -0.16394270544240652,
    0.10782405069126237, -0.07219956125645471, 0.04880428816414311, -0.03316112647484736,
    0.022597648232218104, -0.01542476590494896, 0.010538791616612175, -0.007204534386356869,
    0.004926781395729853, -0.003369801655439328, 0.002305126326734928,
    -0.0015769367714301972, 0.0010788252019162967, -0.0007380709389960052,
    0.000504953265834602, -0.0003454680251063077, 0.00023635601564027053,
    -0.00016170622091974803, 0.0001106337276874741, -7.569179582195066e-05,
    5.178575795222081e-05, -3.5430070947659604e-05, 2.424006611860132e-05,
    -1.6584242271854135e-05, 1.134638458466385e-05, -7.762817668462094e-06,
    5.3110609208898636e-06, -3.6336507898010456e-06, 2.486022733129538e-06,
    -1.7008538854332607e-06, 1.1636675363548843e-06, -7.96142543124197e-07,
    5.446941930669446e-07, -3.7266161283438227e-07, 2.549626552021554e-07,
    -1.7443695117727745e-07};

/* digamma(x) for 0 < x < 10: the recurrence psi(x + 1) = psi(x) + 1/x (A&S 6.3.5) moves x
 * into [1, 2], where the Taylor series about the root x0 applies (z = x - x0 in
 * [-0.47, 0.54]: the terms shrink by |z| / x0 < 0.37, 40 of them reach 2^-60). z is formed
 * as (x - DG_X0_HI) - DG_X0_LO, the first difference exact (Sterbenz), so psi(x) keeps its
 * relative accuracy at the root, as in Cody, Strecok & Thacher, "Chebyshev approximations
 * for the psi function", Math. Comp. 27 (1973), who also expand about x0. Downward steps
 * add positive terms 1/(x - k) to psi in [1, 2], so no cancellation arises above 2 either. */
static double digamma_mid(double x)
{
    double acc = 0, hi = DG_X0_HI;
    if (x < 1) {
        /* psi(x) = psi(x + 1) - 1/x with x + 1 - x0 = x - (x0 - 1): x + 1 is not rounded. */
        acc = -1 / x;
        hi = DG_X0_HI - 1;
    }
    while (x >= 2) {
        x -= 1; /* exact: 2 <= x < 10 */
        acc += 1 / x;
    }
    double z = (x - hi) - DG_X0_LO;
    return acc + sp_series(z, DG[0], DG + 1, (int)(sizeof DG / sizeof DG[0]) - 1);
}

/* Digamma. Poles: 0 gives -inf (sign of torch), negative integers NaN. */
static double digamma_d(double x)
{
    if (isnan(x) || x == INFINITY)
        return x;
    if (x == -INFINITY)
        return NAN;
    if (x == 0)
        return signbit(x) ? INFINITY : -INFINITY;
    double res = 0;
    if (x < 0) {
        if (x == floor(x))
            return NAN;
        /* Reflection A&S 6.3.7: psi(1 - x) - psi(x) = pi cot(pi x). tan(pi x) with the
         * argument reduced so pi*x keeps its precision. */
        double r = remainder(x, 1.0);
        res = -SP_PI / tan(SP_PI * r);
        x = 1 - x;
    }
    if (x < 10)
        return res + digamma_mid(x);
    /* A&S 6.3.18: ln x - 1/(2x) - sum B_2k / (2k x^2k). */
    static const double c[] = {1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132,
                               -691.0 / 32760, 1.0 / 12};
    double z = 1 / (x * x), s = 0;
    for (int k = 6; k >= 0; k--)
        s = s * z + c[k];
    return res + log(x) - 0.5 / x - s * z;
}

static double sp_digamma(double x, const struct sp_par *p)
{
    (void)p;
    return digamma_d(x);
}

/* Hurwitz zeta(x, q) = sum_k (k + q)^-x: Euler-Maclaurin as in Cephes zeta.c. */
static double zeta_d(double x, double q)
{
    static const double A[] = {12.0, -720.0, 30240.0, -1209600.0, 47900160.0,
                               -1.8924375803183791606e9, 7.47242496e10,
                               -2.950130727918164224e12, 1.1646782814350067249e14,
                               -4.5979787224074726105e15, 1.8152105401943546773e17,
                               -7.1661652561756670113e18};
    if (isnan(x) || isnan(q))
        return NAN;
    if (x == 1)
        return INFINITY;
    if (x < 1)
        return NAN;
    if (q <= 0) {
        if (q == floor(q))
            return INFINITY;
        if (x != floor(x))
            return NAN;
    }
    if (q > 1e8) /* DLMF 25.11.43 */
        return (1 / (x - 1) + 1 / (2 * q)) * pow(q, 1 - x);
    double s = pow(q, -x), a = q, b = 0;
    int i = 0;
    while (i < 9 || a <= 9.0) {
        i++;
        a += 1;
        b = pow(a, -x);
        s += b;
        if (fabs(b / s) < SP_EPS)
            return s;
    }
    double w = a, k = 0, t;
    s += b * w / (x - 1);
    s -= 0.5 * b;
    a = 1;
    for (i = 0; i < 12; i++) {
        a *= x + k;
        b /= w;
        t = a * b / A[i];
        s += t;
        if (fabs(t / s) < SP_EPS)
            break;
        k += 1;
        a *= x + k;
        b /= w;
        k += 1;
    }
    return s;
}

static double sp_zeta(double x, double q, const struct sp_par *p)
{
    (void)p;
    return zeta_d(x, q);
}

static double sp_polygamma(double x, const struct sp_par *p)
{
    if (p->n == 0)
        return digamma_d(x);
    double n = (double)p->n;
    double fact = exp(lgamma(n + 1)); /* n! (exact through tgamma for small n) */
    if (p->n <= 20)
        fact = tgamma(n + 1);
    double z = zeta_d(n + 1, x);
    return ((p->n % 2) ? 1.0 : -1.0) * fact * z;
}

static double sp_erfc(double x, const struct sp_par *p)
{
    (void)p;
    return erfc(x);
}

/* exp(x^2) with x^2 = hi^2 + (2 hi lo + lo^2) split exactly (Dekker): hi has 26 bits. */
static double exp_sq(double x)
{
    double big = x * 134217729.0; /* 2^27 + 1 */
    double hi = big - (big - x), lo = x - hi;
    return exp(hi * hi) * exp(2 * hi * lo + lo * lo);
}

static double erfcx_d(double x)
{
    if (isnan(x))
        return x;
    if (x < 0) {
        if (x < -26.7)
            return INFINITY;
        return 2 * exp_sq(x) - erfcx_d(-x);
    }
    if (x < 10)
        return exp_sq(x) * erfc(x);
    if (x > 1e8)
        return 1 / (SP_SQRTPI * x);
    /* A&S 7.1.14: erfcx(x) = 1/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) */
    double k = x;
    for (int n = 60; n >= 1; n--)
        k = x + (n * 0.5) / k;
    return 1 / (SP_SQRTPI * k);
}

static double sp_erfcx(double x, const struct sp_par *p)
{
    (void)p;
    return erfcx_d(x);
}

/* Acklam's rational approximation of the normal quantile for p in (0, 0.5], refined by two
 * Halley step on 0.5 erfc(-x / sqrt 2) - p (accurate relative to p in the tail). */
static double ndtri_low(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549671010079585e+00,
                               4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double x;
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    for (int it = 0; it < 2; it++) {
        double e = 0.5 * erfc(-x * SP_SQRT1_2) - p;
        double u = e * SP_SQRT2PI * exp(0.5 * x * x);
        x = x - u / (1 + 0.5 * x * u);
    }
    return x;
}

static double erfinv_d(double y);

/* The normal quantile. For p in (0.25, 0.75) the result is near 0 and one absolute error of
 * 0.5 erfc near 1/2 would be a large relative error, so it goes through
 * sqrt(2) erfinv(2p - 1) (2p - 1 is exact there, Sterbenz; erfinv's branch for |y| < 0.5
 * keeps relative accuracy). */
static double ndtri_d(double p)
{
    if (isnan(p) || p < 0 || p > 1)
        return NAN;
    if (p == 0)
        return -INFINITY;
    if (p == 1)
        return INFINITY;
    if (p > 0.25 && p < 0.75)
        return SP_SQRT2 * erfinv_d(2 * p - 1);
    if (p > 0.5)
        return -ndtri_low(1 - p); /* 1 - p is exact for p >= 0.5 */
    return ndtri_low(p);
}

static double sp_ndtri(double x, const struct sp_par *p)
{
    (void)p;
    return ndtri_d(x);
}

static double erfinv_d(double y)
{
    if (isnan(y) || y < -1 || y > 1)
        return NAN;
    if (y == 1)
        return INFINITY;
    if (y == -1)
        return -INFINITY;
    double ay = fabs(y);
    if (ay >= 0.5) {
        /* erf(x) = y  <=>  x = -ndtri((1 - y) / 2) / sqrt 2 (1 - y exact here). */
        double x = -ndtri_low(0.5 * (1 - ay)) * SP_SQRT1_2;
        return copysign(x, y);
    }
    /* Giles (2010), single precision branch w < 5. */
    double w = -log((1 - y) * (1 + y)) - 2.5, pp = 2.81022636e-08;
    pp = 3.43273939e-07 + pp * w;
    pp = -3.5233877e-06 + pp * w;
    pp = -4.39150654e-06 + pp * w;
    pp = 0.00021858087 + pp * w;
    pp = -0.00125372503 + pp * w;
    pp = -0.00417768164 + pp * w;
    pp = 0.246640727 + pp * w;
    pp = 1.50140941 + pp * w;
    double x = pp * y;
    for (int it = 0; it < 2; it++)
        x -= (erf(x) - y) / (2 / SP_SQRTPI * exp(-x * x));
    return x;
}

static double sp_erfinv(double x, const struct sp_par *p)
{
    (void)p;
    return erfinv_d(x);
}

static double sp_expit(double x, const struct sp_par *p)
{
    (void)p;
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

static double sp_logit(double x, const struct sp_par *p)
{
    if (p->has_eps && !isnan(x))
        x = x < p->eps ? p->eps : (x > 1 - p->eps ? 1 - p->eps : x);
    if (x >= 0.25 && x <= 0.75)
        return log1p((2 * x - 1) / (1 - x));
    return log(x / (1 - x));
}

static double sp_xlogy(double x, double y, const struct sp_par *p)
{
    (void)p;
    if (isnan(y))
        return NAN;
    if (x == 0)
        return 0;
    return x * log(y);
}

static double sp_xlog1py(double x, double y, const struct sp_par *p)
{
    (void)p;
    if (isnan(y))
        return NAN;
    if (x == 0)
        return 0;
    return x * log1p(y);
}

/* Modified Bessel functions of order nu = 0, 1, scaled by e^-|x| when scaled. */
static double bessel_i(int nu, double x, bool scaled)
{
    if (isnan(x))
        return x;
    double ax = fabs(x), r;
    if (ax <= 20) {
        /* A&S 9.6.10: I_nu(x) = (x/2)^nu sum_k (x^2/4)^k / (k! (k + nu)!) */
        double q = 0.25 * ax * ax, term = 1, s = 1;
        for (int k = 1; k < 500; k++) {
            term *= q / ((double)k * (double)(k + nu));
            s += term;
            if (term < s * 1e-17)
                break;
        }
        r = nu ? 0.5 * ax * s : s;
        if (scaled)
            r *= exp(-ax);
    } else {
        if (ax == INFINITY)
            return scaled ? copysign(0.0, nu ? x : 1.0) : (nu ? x : INFINITY);
        /* A&S 9.7.1: I_nu(x) ~ e^x / sqrt(2 pi x) sum_k (-1)^k a_k(nu) / x^k with
         * a_k = prod_{j=1..k} (4 nu^2 - (2j - 1)^2) / (k! 8^k). */
        double mu = 4.0 * nu * nu, term = 1, s = 1;
        for (int k = 1; k < 60; k++) {
            double nt = -term * (mu - (2.0 * k - 1) * (2.0 * k - 1)) / (k * 8.0 * ax);
            if (fabs(nt) >= fabs(term))
                break;
            term = nt;
            s += term;
            if (fabs(term) < 1e-17 * fabs(s))
                break;
        }
        r = s / sqrt(2 * SP_PI * ax);
        if (!scaled) {
            /* e^ax split in two halves so e^ax * r does not overflow before it must. */
            double h = exp(0.5 * ax);
            r = r * h * h;
        }
    }
    return (nu && x < 0) ? -r : r;
}

static double sp_i0(double x, const struct sp_par *p)
{
    (void)p;
    return bessel_i(0, x, false);
}

static double sp_i0e(double x, const struct sp_par *p)
{
    (void)p;
    return bessel_i(0, x, true);
}

static double sp_i1(double x, const struct sp_par *p)
{
    (void)p;
    return bessel_i(1, x, false);
}

static double sp_i1e(double x, const struct sp_par *p)
{
    (void)p;
    return bessel_i(1, x, true);
}

static double ndtr_d(double x)
{
    return 0.5 * erfc(-x * SP_SQRT1_2);
}

static double sp_ndtr(double x, const struct sp_par *p)
{
    (void)p;
    return ndtr_d(x);
}

static double sp_log_ndtr(double x, const struct sp_par *p)
{
    (void)p;
    if (isnan(x))
        return x;
    if (x > 0)
        return log1p(-ndtr_d(-x));
    if (x > -1)
        return log(ndtr_d(x));
    if (x == -INFINITY)
        return -INFINITY;
    /* ndtr(x) = 0.5 e^(-x^2/2) erfcx(-x / sqrt 2) */
    return -0.5 * x * x + log(0.5 * erfcx_d(-x * SP_SQRT1_2));
}

/* sin(pi x) with the argument reduced exactly to |s| <= 0.5. */
static double sinpi_d(double x)
{
    double r = remainder(x, 2.0); /* exact, in [-1, 1] */
    if (r > 0.5)
        r = 1 - r;
    else if (r < -0.5)
        r = -1 - r;
    return sin(SP_PI * r);
}

static double sp_sinc(double x, const struct sp_par *p)
{
    (void)p;
    if (x == 0)
        return 1;
    if (isinf(x))
        return 0;
    return sinpi_d(x) / (SP_PI * x);
}

static double sp_entr(double x, const struct sp_par *p)
{
    (void)p;
    if (isnan(x))
        return x;
    if (x > 0)
        return -x * log(x);
    if (x == 0)
        return 0;
    return -INFINITY;
}

static double sp_j0(double x, const struct sp_par *p)
{
    (void)p;
    return j0(x);
}

static double sp_j1(double x, const struct sp_par *p)
{
    (void)p;
    return j1(x);
}

static double sp_y0(double x, const struct sp_par *p)
{
    (void)p;
    return y0(x);
}

static double sp_y1(double x, const struct sp_par *p)
{
    (void)p;
    return y1(x);
}

/* lgamma through the reentrant lgamma_r (lgamma writes the global signgam). */
static double lgam(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

/* log1p(u) - u. For u in [-0.5, 1] through s = u / (2 + u), log1p(u) = 2 atanh(s):
 * log1p(u) - u = -s u + 2 (s^3/3 + s^5/5 + ...), |s| <= 1/3, with no cancellation between
 * -s u (about -u^2/2) and the series as there is in log1p(u) - u for small u. (A wider
 * range, u in [-0.8, 2], measured worse: the longer series costs more than it saves.) */
static double log1pmx(double u)
{
    if (!(u >= -0.5 && u <= 1))
        return log1p(u) - u;
    double s = u / (2 + u), s2 = s * s, p = s * s2, sum = 0;
    for (int k = 3; k < 200; k += 2) {
        double t = p / k;
        sum += t;
        if (fabs(t) <= fabs(sum) * 1e-17)
            break;
        p *= s2;
    }
    return -s * u + 2 * sum;
}

/* Bernoulli terms B_2k / (2k (2k - 1)), k = 1..11, of the Stirling series
 * log gammastar(a) = sum_k B_2k / (2k (2k - 1) a^(2k - 1)) (A&S 6.1.40). */
static const double STIRLING[] = {
    1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188, -691.0 / 360360, 1.0 / 156,
    -3617.0 / 122400, 43867.0 / 244188, -174611.0 / 125400, 77683.0 / 5796};

/* gammastar(a) = Gamma(a) / (sqrt(2 pi / a) (a / e)^a) (Temme's Gamma*), a >= 1. For
 * a >= 10 the Stirling series (its eleventh term is below 1e-20 there); below, the
 * recurrence gammastar(a) = gammastar(a + 1) (1 + 1/a)^(a + 1/2) / e, whose factor is
 * exp((a + 1/2) log1p(1/a) - 1) with an exponent of about 1/(12 a^2): each step costs
 * about one rounding. */
static double gammastar(double a)
{
    double f = 0;
    while (a < 10) {
        f += (a + 0.5) * log1p(1 / a) - 1;
        a += 1;
    }
    double z = 1 / (a * a), s = 0;
    for (int k = (int)(sizeof STIRLING / sizeof STIRLING[0]) - 1; k >= 0; k--)
        s = s * z + STIRLING[k];
    return exp(s / a + f);
}

/* The prefactor x^a e^-x / Gamma(a) of P and Q. As in DiDonato & Morris (ACM TOMS 12, 1986)
 * and Temme, with t = x / a,
 *   x^a e^-x / Gamma(a) = sqrt(a / (2 pi)) exp(-a (t - 1 - log t)) / gammastar(a),
 * where -(t - 1 - log t) = log1pmx(t - 1) is formed from u = (x - a) / a without the
 * cancellation of a log x - x - lgamma(a) (which loses about |a log x| + x + |lgamma(a)|
 * units in the last place). The exponent's own rounding still costs about |exponent| units,
 * so results far in the tails (where the exponent is large, the value tiny) keep that
 * error. For a < 10 the direct form is used where its terms are smaller than the new
 * exponent plus the gammastar recurrence steps; for a < 1 as a x^a e^-x / Gamma(1 + a). */
static double gammainc_pre(double a, double x)
{
    if (a < 1)
        return a * exp(a * log(x) - x - lgamma1p(a));
    double u = (x - a) / a, e;
    if (u >= -0.5 && u <= 1)
        e = a * log1pmx(u);
    else
        e = a * log(x / a) + (a - x);
    if (a < 10) {
        double lx = a * log(x), lg = lgam(a);
        if (fabs(lx) + x + fabs(lg) <= fabs(e) + (10 - a) + 1)
            return exp(lx - x - lg);
    }
    return exp(e) * sqrt(a / (2 * SP_PI)) / gammastar(a);
}

/* Q(a, x) for small a and x < 0.5, where P is near 1 and 1 - P would cancel: DLMF 8.7.3,
 *   Q = 1 - x^a / Gamma(a + 1) - x^a / Gamma(a) sum_{n >= 1} (-x)^n / (n! (a + n)),
 * with 1 - x^a / Gamma(a + 1) = -expm1(a log x - lgamma(1 + a)) as in Cephes/SciPy igamc. */
static double gammaincc_small_a(double a, double x)
{
    double fac = 1, sum = 0;
    for (int n = 1; n < 1000; n++) {
        fac *= -x / n;
        double t = fac / (a + n);
        sum += t;
        if (fabs(t) <= fabs(sum) * SP_EPS)
            break;
    }
    /* x^a / Gamma(a) = a x^a / Gamma(a + 1) = a (1 + em): no separate lgamma(a). */
    double em = expm1(a * log(x) - lgamma1p(a));
    return -em - a * (1 + em) * sum;
}

/* P or Q for a >= 1e6 and |x - a| <= a / 20, where the series and the fraction would need
 * ~sqrt(a) terms (and more than their iteration limit beyond a ~ 1e8): Temme's uniform
 * expansion (N. M. Temme, "The asymptotic expansion of the incomplete gamma functions",
 * SIAM J. Math. Anal. 10 (1979) 757-766; DLMF 8.12.3-8.12.9),
 *   Q = erfc(eta sqrt(a/2)) / 2 + R,  P = erfc(-eta sqrt(a/2)) / 2 - R,
 *   R = exp(-a eta^2 / 2) / sqrt(2 pi a) (c0(eta) + c1(eta) / a + ...),
 *   eta^2 / 2 = t - 1 - log t = -log1pmx(t - 1), sign(eta) = sign(t - 1), t = x / a,
 * with the Taylor coefficients of c0 (DLMF 8.12.9: c0 = 1/(t - 1) - 1/eta) and c1 about
 * eta = 0 (checked against mpmath: c0's 8 terms to 2e-16 for |eta| <= 0.05; the omitted
 * c2 / a^2 term is below 1e-17 of the result for a >= 1e6). */
static double gammainc_temme(double a, double x, bool lower)
{
    static const double C0[] = {-1.0 / 3,    1.0 / 12,          -2.0 / 135,
                                1.0 / 864,   1.0 / 2835,        -139.0 / 777600,
                                1.0 / 25515, -571.0 / 261273600};
    static const double C1[] = {-1.0 / 540, -1.0 / 288, 1.0 / 378};
    double u = (x - a) / a, lm = log1pmx(u);
    double eta = copysign(sqrt(-2 * lm), u), c0 = 0, c1 = 0;
    for (int k = (int)(sizeof C0 / sizeof C0[0]) - 1; k >= 0; k--)
        c0 = c0 * eta + C0[k];
    for (int k = (int)(sizeof C1 / sizeof C1[0]) - 1; k >= 0; k--)
        c1 = c1 * eta + C1[k];
    double r = exp(a * lm) / sqrt(2 * SP_PI * a) * (c0 + c1 / a);
    double z = eta * sqrt(0.5 * a);
    return lower ? 0.5 * erfc(-z) - r : 0.5 * erfc(z) + r;
}

/* Regularized incomplete gamma P(a, x) (lower = true) or Q(a, x): NR 6.2. */
static double gammainc_d(double a, double x, bool lower)
{
    if (isnan(a) || isnan(x) || a < 0 || x < 0)
        return NAN;
    if (a == 0) {
        if (x > 0)
            return lower ? 1 : 0;
        return NAN;
    }
    if (x == 0)
        return lower ? 0 : 1;
    if (isinf(a)) {
        if (isinf(x))
            return NAN;
        return lower ? 0 : 1;
    }
    if (isinf(x))
        return lower ? 1 : 0;
    if (a >= 1e6 && fabs(x - a) <= 0.05 * a)
        return gammainc_temme(a, x, lower);
    /* Q for small a and x < 0.5 (part of the region of Cephes/SciPy igamc_series). */
    if (!lower && x < 0.5 && a <= -0.4 / log(x))
        return gammaincc_small_a(a, x);
    double pre = gammainc_pre(a, x);
    /* Both the series and the continued fraction are summed twice: forward to find how many
     * terms converge, then backward (Horner / from the tail of the fraction), where each
     * step's rounding error is damped instead of accumulated. Forward products of many
     * factors (del *= x / (a + n), Lentz's h *= del) lose up to ~100 ULP for large a near
     * x ~ a and for small a with x near 1. */
    /* The series for P below x = a + 1, the continued fraction for Q above; Q for x in
     * [max(a, 0.5), a + 1) also by the fraction, as 1 - P would cancel where Q is small
     * (small a). Evaluated backward, the fraction stays within ~2 ULP down to x = 0.2. */
    if (x < a + 1 && (lower || x < 0.5 || x < a)) {
        /* P = e^-x x^a / Gamma(a + 1) sum_n x^n / ((a + 1) ... (a + n))
         *   = e^-x x^a / Gamma(a) / a * (1 + x/(a + 1) (1 + x/(a + 2) (1 + ...))) */
        double del = 1, sum = 1;
        int nt = 0;
        while (nt < 100000) {
            nt++;
            del *= x / (a + nt);
            sum += del;
            /* The ratios x / (a + k) decrease: the tail is below del r / (1 - r) with
             * r = x / (a + nt + 1), which near x ~ a is many times del. */
            if (del * x < sum * SP_EPS * (a + nt + 1 - x))
                break;
        }
        double s = 1;
        for (int k = nt; k >= 1; k--)
            s = 1 + s * (x / (a + k));
        double pv = s / a * pre;
        return lower ? pv : 1 - pv;
    }
    /* Q = e^-x x^a / Gamma(a) * 1/(x + 1 - a - 1(1 - a)/(x + 3 - a - ...)) (NR 6.2.7):
     * modified Lentz to find the depth, then evaluated from depth nt + nt/4 + 8 upward. */
    const double tiny = 1e-300;
    double b0 = x + 1 - a, bb = b0, cc = 1 / tiny, dd = 1 / bb;
    int nt = 1;
    for (; nt < 100000; nt++) {
        double an = -nt * (nt - a);
        bb += 2;
        dd = an * dd + bb;
        if (fabs(dd) < tiny)
            dd = tiny;
        cc = bb + an / cc;
        if (fabs(cc) < tiny)
            cc = tiny;
        dd = 1 / dd;
        if (fabs(dd * cc - 1) < SP_EPS)
            break;
    }
    double t = 0;
    for (int i = nt + nt / 4 + 8; i >= 1; i--) {
        double den = b0 + 2.0 * i + t;
        t = -i * (i - a) / (den != 0 ? den : tiny);
    }
    double h = 1 / (b0 + t);
    double qv = pre * h;
    return lower ? 1 - qv : qv;
}

static double sp_gammainc(double a, double x, const struct sp_par *p)
{
    (void)p;
    return gammainc_d(a, x, true);
}

static double sp_gammaincc(double a, double x, const struct sp_par *p)
{
    (void)p;
    return gammainc_d(a, x, false);
}

/* log of the multivariate gamma: p(p-1)/4 log pi + sum_{j=1..p} lgamma(x + (1 - j)/2). */
static double sp_multigammaln(double x, const struct sp_par *p)
{
    double s = (double)p->n * (double)(p->n - 1) * 0.25 * SP_LOGPI;
    int sign;
    for (int64_t j = 1; j <= p->n; j++)
        s += lgamma_r(x + (double)(1 - j) * 0.5, &sign);
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Kernel machinery: inputs converted (and broadcast) into contiguous tensors of the compute
 * dtype (float32 or float64), one scalar function per element, output written through a
 * scratch of the compute dtype when the output dtype differs (float16, bfloat16).
 */
struct sp_job {
    const void *a, *b;
    void *out;
    sp_fn1 f1;
    sp_fn2 f2;
    struct sp_par par;
};

#define DEF_SP_LOOP(T, SUF)                                                                  \
    static void sp_loop_##SUF(int64_t beg, int64_t end, void *ctx)                           \
    {                                                                                        \
        const struct sp_job *j = ctx;                                                        \
        const T *a = j->a, *b = j->b;                                                        \
        T *y = j->out;                                                                       \
        if (j->f1)                                                                           \
            for (int64_t k = beg; k < end; k++)                                              \
                y[k] = (T)j->f1((double)a[k], &j->par);                                      \
        else                                                                                 \
            for (int64_t k = beg; k < end; k++)                                              \
                y[k] = (T)j->f2((double)a[k], (double)b[k], &j->par);                        \
    }

DEF_SP_LOOP(float, f32)
DEF_SP_LOOP(double, f64)

/* Output dtype: the (promoted) input dtype, integers and bool to float32. */
static enum td_dtype sp_out_dtype(const struct td_op_ctx *c)
{
    enum td_dtype dt = c->in_meta[0].dtype;
    if (c->ninputs == 2) {
        const struct td_meta *ms[2] = {&c->in_meta[0], &c->in_meta[1]};
        dt = td_result_type(2, ms);
    }
    if (!td_dtype_is_floating(dt))
        dt = TD_FLOAT32;
    return dt;
}

static int sp_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    for (int i = 0; i < c->ninputs; i++)
        if (td_dtype_is_complex(c->in_meta[i].dtype))
            return td_error_set(err, TD_EINVAL, "%s: complex inputs are not supported",
                                c->info->name);
    return td__meta_broadcast(c, sp_out_dtype(c), out, err);
}

/* A new contiguous tensor of o's shape and dtype dt holding input t broadcast to it. */
static int sp_input(const struct td_op_ctx *c, struct td_tensor *t, const struct td_tensor *o,
                    enum td_dtype dt, struct td_tensor **x, struct td_error *err)
{
    struct td_meta m;
    td_tensor_meta(o, &m);
    m.dtype = dt;
    m.wrapped_number = false;
    int rc = td_tensor_new(&m, false, c->account, x, err);
    if (!rc)
        rc = td_tensor_copy(*x, t, err);
    return rc;
}

static int sp_run(const struct td_op_ctx *c, struct td_tensor **out, sp_fn1 f1, sp_fn2 f2,
                  const struct sp_par *par, struct td_error *err)
{
    struct td_tensor *o = out[0], *x[2] = {NULL, NULL}, *w = NULL;
    enum td_dtype dt = o->dtype == TD_FLOAT64 ? TD_FLOAT64 : TD_FLOAT32;
    int rc = 0;
    for (int i = 0; i < c->ninputs && !rc; i++)
        rc = sp_input(c, c->inputs[i], o, dt, &x[i], err);
    if (rc)
        goto out;
    if (o->dtype == dt && td_tensor_is_contiguous(o)) {
        w = td_tensor_retain(o);
    } else {
        struct td_meta m;
        td_tensor_meta(o, &m);
        m.dtype = dt;
        m.wrapped_number = false;
        rc = td_tensor_new(&m, false, c->account, &w, err);
        if (rc)
            goto out;
    }
    struct sp_job j = {td_tensor_data(x[0]), x[1] ? td_tensor_data(x[1]) : NULL,
                       td_tensor_data(w), f1, f2, *par};
    td__parallel_for(td_tensor_numel(w), TD__PAR_GRAIN / 16,
                     dt == TD_FLOAT64 ? sp_loop_f64 : sp_loop_f32, &j);
    if (w != o)
        rc = td_tensor_copy(o, w, err);
out:
    td_tensor_release(w);
    td_tensor_release(x[0]);
    td_tensor_release(x[1]);
    return rc;
}

static const struct sp_par SP_NOPAR = {0, 0, false};

#define SP_UNARY(name, fn)                                                                  \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)  \
    {                                                                                       \
        return sp_meta(c, out, err);                                                        \
    }                                                                                       \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                       \
        return sp_run(c, out, fn, NULL, &SP_NOPAR, err);                                    \
    }

#define SP_BINARY(name, fn)                                                                 \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)  \
    {                                                                                       \
        return sp_meta(c, out, err);                                                        \
    }                                                                                       \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                       \
        return sp_run(c, out, NULL, fn, &SP_NOPAR, err);                                    \
    }

SP_UNARY(gamma, sp_gamma)
SP_UNARY(lgamma, sp_lgamma)
SP_UNARY(digamma, sp_digamma)
SP_UNARY(erfc, sp_erfc)
SP_UNARY(erfinv, sp_erfinv)
SP_UNARY(erfcx, sp_erfcx)
SP_UNARY(expit, sp_expit)
SP_UNARY(i0, sp_i0)
SP_UNARY(i0e, sp_i0e)
SP_UNARY(i1, sp_i1)
SP_UNARY(i1e, sp_i1e)
SP_UNARY(ndtr, sp_ndtr)
SP_UNARY(ndtri, sp_ndtri)
SP_UNARY(log_ndtr, sp_log_ndtr)
SP_UNARY(sinc, sp_sinc)
SP_UNARY(entr, sp_entr)
SP_UNARY(bessel_j0, sp_j0)
SP_UNARY(bessel_j1, sp_j1)
SP_UNARY(bessel_y0, sp_y0)
SP_UNARY(bessel_y1, sp_y1)
SP_BINARY(xlogy, sp_xlogy)
SP_BINARY(xlog1py, sp_xlog1py)
SP_BINARY(zeta, sp_zeta)
SP_BINARY(gammainc, sp_gammainc)
SP_BINARY(gammaincc, sp_gammaincc)

/* polygamma: n >= 0 (attribute n). */
static int polygamma_par(const struct td_op_ctx *c, struct sp_par *p, struct td_error *err)
{
    *p = SP_NOPAR;
    p->n = td_arg_int(c, "n");
    if (p->n < 0 || p->n > 170)
        return td_error_set(err, TD_EINVAL, "polygamma: n must be in [0, 170], got %lld",
                            (long long)p->n);
    return 0;
}

int meta_polygamma(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct sp_par p;
    int rc = polygamma_par(c, &p, err);
    return rc ? rc : sp_meta(c, out, err);
}

int cpu_polygamma(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct sp_par p;
    int rc = polygamma_par(c, &p, err);
    return rc ? rc : sp_run(c, out, sp_polygamma, NULL, &p, err);
}

/* logit: optional eps clamps x to [eps, 1 - eps] first. */
static struct sp_par logit_par(const struct td_op_ctx *c)
{
    struct sp_par p = SP_NOPAR;
    if (td_arg_has(c, "eps")) {
        p.has_eps = true;
        p.eps = td_arg_float(c, "eps");
    }
    return p;
}

int meta_logit(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return sp_meta(c, out, err);
}

int cpu_logit(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct sp_par p = logit_par(c);
    return sp_run(c, out, sp_logit, NULL, &p, err);
}

/* multigammaln: p >= 1; every element must exceed (p - 1) / 2 (as torch checks). */
static int multigammaln_par(const struct td_op_ctx *c, struct sp_par *p, struct td_error *err)
{
    *p = SP_NOPAR;
    p->n = td_arg_int(c, "p");
    if (p->n < 1 || p->n > 100000)
        return td_error_set(err, TD_EINVAL, "multigammaln: p must be in [1, 100000], got %lld",
                            (long long)p->n);
    return 0;
}

int meta_multigammaln(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct sp_par p;
    int rc = multigammaln_par(c, &p, err);
    return rc ? rc : sp_meta(c, out, err);
}

int cpu_multigammaln(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct sp_par p;
    int rc = multigammaln_par(c, &p, err);
    if (rc)
        return rc;
    struct td_tensor *x = NULL;
    rc = sp_input(c, c->inputs[0], out[0], TD_FLOAT64, &x, err);
    if (rc)
        goto out;
    const double *v = td_tensor_data(x);
    double lim = 0.5 * (double)(p.n - 1);
    for (int64_t k = 0, n = td_tensor_numel(x); k < n; k++)
        if (!(v[k] > lim)) {
            rc = td_error_set(err, TD_EINVAL, "multigammaln: all elements must be greater "
                              "than (p-1)/2 = %g", lim);
            goto out;
        }
    rc = sp_run(c, out, sp_multigammaln, NULL, &p, err);
out:
    td_tensor_release(x);
    return rc;
}
