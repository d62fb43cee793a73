/*
 * test_fft.c - the torch.fft ops (ops_fft.c) against a naive float64 O(n^2) DFT for every
 * length 1..512 (primes included), round trips, float32, a multi-threaded large transform,
 * strided input, normalisation modes and errors. NumPy comparisons over all ops and dtypes
 * are in tests/python/op_specs_fft.py.
 */
#include <complex.h>
#include <stdlib.h>

#include "optest.h"

static const double PI = 3.14159265358979323846;

/* Deterministic pseudo-random values in [-1, 1). */
static double rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / (double)(1ull << 52) - 1.0;
}

static struct td_tensor *mk_c128(int64_t n, const double complex *v)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td__meta_set(&m, TD_COMPLEX128, 1, &n);
    assert_int_equal(td_tensor_new(&m, true, NULL, &t, &err), 0);
    double complex *p = td_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = v[i];
    return t;
}

/* X_k = sum_j x_j e^{sign 2 pi i jk/n}, in long double for a reference well below float64's
 * rounding error. */
static void naive_dft(int64_t n, const double complex *x, double complex *out, int sign)
{
    long double *cs = malloc(sizeof(long double) * 2 * (size_t)n);
    assert_non_null(cs);
    for (int64_t k = 0; k < n; k++) {
        long double ang = sign * 2.0L * (long double)PI * (long double)k / (long double)n;
        cs[2 * k] = cosl(ang);
        cs[2 * k + 1] = sinl(ang);
    }
    for (int64_t k = 0; k < n; k++) {
        long double re = 0, im = 0;
        for (int64_t j = 0; j < n; j++) {
            int64_t t = (j * k) % n;
            long double c = cs[2 * t], s = cs[2 * t + 1];
            re += (long double)creal(x[j]) * c - (long double)cimag(x[j]) * s;
            im += (long double)creal(x[j]) * s + (long double)cimag(x[j]) * c;
        }
        out[k] = CMPLX((double)re, (double)im);
    }
    free(cs);
}

static void expect_close_c(const double complex *got, const double complex *want, int64_t n,
                           double tol, const char *what, int64_t len)
{
    for (int64_t i = 0; i < n; i++)
        if (cabs(got[i] - want[i]) > tol)
            fail_msg("%s n=%lld: element %lld is %g%+gi, want %g%+gi", what, (long long)len,
                     (long long)i, creal(got[i]), cimag(got[i]), creal(want[i]),
                     cimag(want[i]));
}

static void test_fft_vs_naive_dft(void **state)
{
    (void)state;
    uint64_t seed = 1;
    double complex *x = malloc(sizeof(double complex) * 512);
    double complex *ref = malloc(sizeof(double complex) * 512);
    double complex *iref = malloc(sizeof(double complex) * 512);
    assert_non_null(x);
    assert_non_null(ref);
    assert_non_null(iref);
    for (int64_t n = 1; n <= 512; n++) {
        for (int64_t i = 0; i < n; i++)
            x[i] = CMPLX(rnd(&seed), rnd(&seed));
        naive_dft(n, x, ref, -1);
        naive_dft(n, x, iref, +1);
        /* |X_k| <= sqrt(n) * |x|_2 typically; FFT error ~ eps * log n * |x|_2 * sqrt(n). */
        double tol = 1e-14 * (double)n + 1e-14;
        struct td_tensor *t = mk_c128(n, x);
        struct td_tensor *f = run1(TD_OP_fft, 1, &t, 0, NULL);
        expect_shape(f, TD_COMPLEX128, 1, SHAPE(n));
        expect_close_c(td_tensor_data(f), ref, n, tol, "fft", n);
        struct td_tensor *fi = run1(TD_OP_ifft, 1, &t, 0, NULL);
        for (int64_t i = 0; i < n; i++)
            iref[i] /= (double)n;
        expect_close_c(td_tensor_data(fi), iref, n, tol, "ifft", n);
        /* Round trip. */
        struct td_tensor *back = run1(TD_OP_ifft, 1, &f, 0, NULL);
        expect_close_c(td_tensor_data(back), x, n, 1e-14 * (double)n + 1e-14, "ifft(fft)", n);
        /* rfft of the real part: the first n/2+1 entries of the DFT of the real signal. */
        struct td_meta rm;
        struct td_tensor *xr = NULL;
        struct td_error err;
        td__meta_set(&rm, TD_FLOAT64, 1, &n);
        assert_int_equal(td_tensor_new(&rm, false, NULL, &xr, &err), 0);
        double *pr = td_tensor_data(xr);
        for (int64_t i = 0; i < n; i++) {
            pr[i] = creal(x[i]);
            x[i] = pr[i];
        }
        naive_dft(n, x, ref, -1);
        struct td_tensor *rf = run1(TD_OP_rfft, 1, &xr, 0, NULL);
        expect_shape(rf, TD_COMPLEX128, 1, SHAPE(n / 2 + 1));
        expect_close_c(td_tensor_data(rf), ref, n / 2 + 1, tol, "rfft", n);
        /* irfft(rfft(x), n) == x, for odd and even n. */
        struct td_attr_arg an = a_int("n", n);
        struct td_tensor *rb = run1(TD_OP_irfft, 1, &rf, 1, &an);
        expect_shape(rb, TD_FLOAT64, 1, SHAPE(n));
        const double *pb = td_tensor_data(rb);
        for (int64_t i = 0; i < n; i++)
            if (fabs(pb[i] - pr[i]) > 1e-14 * (double)n + 1e-14)
                fail_msg("irfft(rfft) n=%lld: element %lld is %g, want %g", (long long)n,
                         (long long)i, pb[i], pr[i]);
        td_tensor_release(t);
        td_tensor_release(f);
        td_tensor_release(fi);
        td_tensor_release(back);
        td_tensor_release(xr);
        td_tensor_release(rf);
        td_tensor_release(rb);
    }
    free(x);
    free(ref);
    free(iref);
}

/* Hand-computed: fft([1, 2, 3, 4]) = [10, -2+2i, -2, -2-2i]; ortho divides by 2, forward by
 * 4; float32 input gives complex64. */
static void test_small_by_hand(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    struct td_tensor *f = run1(TD_OP_fft, 1, &x, 0, NULL);
    expect_shape(f, TD_COMPLEX64, 1, SHAPE(4));
    const float complex *p = td_tensor_data(f);
    const double complex want[4] = {10, CMPLX(-2, 2), -2, CMPLX(-2, -2)};
    for (int i = 0; i < 4; i++)
        assert_true(cabs((double complex)p[i] - want[i]) < 1e-6);
    const char *norms[2] = {"ortho", "forward"};
    const double div[2] = {2, 4};
    for (int k = 0; k < 2; k++) {
        struct td_attr_arg a = a_str("norm", norms[k]);
        struct td_tensor *g = run1(TD_OP_fft, 1, &x, 1, &a);
        const float complex *q = td_tensor_data(g);
        for (int i = 0; i < 4; i++)
            assert_true(cabs((double complex)q[i] - want[i] / div[k]) < 1e-6);
        td_tensor_release(g);
    }
    /* n = 2 truncates to [1, 2]: [3, -1]; n = 6 pads with zeros. */
    struct td_attr_arg a2 = a_int("n", 2);
    struct td_tensor *t2 = run1(TD_OP_fft, 1, &x, 1, &a2);
    p = td_tensor_data(t2);
    assert_true(cabs((double complex)p[0] - 3) < 1e-6 && cabs((double complex)p[1] + 1) < 1e-6);
    /* fftfreq(5, d=0.5) = [0, 0.4, 0.8, -0.8, -0.4]. */
    struct td_attr_arg fa[3] = {a_int("n", 5), a_float("d", 0.5), a_dtype("dtype", TD_FLOAT64)};
    struct td_tensor *fr = run1(TD_OP_fftfreq, 0, NULL, 3, fa);
    expect_vals_tol(fr, TD_FLOAT64, 1, SHAPE(5), VALS(0, 0.4, 0.8, -0.8, -0.4), 1e-15);
    td_tensor_release(x);
    td_tensor_release(f);
    td_tensor_release(t2);
    td_tensor_release(fr);
}

/* A transform along dim 0 of a transposed (strided) batch equals per-column naive DFTs; a
 * complex64 transform of 2^16 points (multi-threaded FFTW when the engine has threads) round
 * trips. */
static void test_strided_and_large(void **state)
{
    (void)state;
    uint64_t seed = 7;
    enum { R = 13, C = 3 };
    double v[R * C];
    for (int i = 0; i < R * C; i++)
        v[i] = rnd(&seed);
    struct td_tensor *x = mk(TD_FLOAT64, 2, SHAPE(C, R), v);
    struct td_tensor *xt = NULL;
    struct td_error err;
    assert_int_equal(td_tensor_new_view(x, 2, SHAPE(R, C), SHAPE(1, R), 0, &xt, &err), 0);
    struct td_attr_arg a = a_int("dim", 0);
    struct td_tensor *f = run1(TD_OP_fft, 1, &xt, 1, &a);
    expect_shape(f, TD_COMPLEX128, 2, SHAPE(R, C));
    const double complex *pf = td_tensor_data(f);
    for (int col = 0; col < C; col++) {
        double complex in[R], ref[R], got[R];
        for (int r = 0; r < R; r++) {
            in[r] = v[col * R + r];
            got[r] = pf[r * C + col];
        }
        naive_dft(R, in, ref, -1);
        expect_close_c(got, ref, R, 1e-12, "strided fft", R);
    }
    td_tensor_release(x);
    td_tensor_release(xt);
    td_tensor_release(f);

    int64_t n = 1 << 16;
    struct td_meta m;
    struct td_tensor *big = NULL;
    td__meta_set(&m, TD_COMPLEX64, 1, &n);
    assert_int_equal(td_tensor_new(&m, false, NULL, &big, &err), 0);
    float complex *pb = td_tensor_data(big);
    for (int64_t i = 0; i < n; i++)
        pb[i] = CMPLXF((float)rnd(&seed), (float)rnd(&seed));
    td_parallel_set_threads(2);
    struct td_tensor *bf = run1(TD_OP_fft, 1, &big, 0, NULL);
    struct td_tensor *bb = run1(TD_OP_ifft, 1, &bf, 0, NULL);
    const float complex *pr = td_tensor_data(bb);
    double maxerr = 0;
    for (int64_t i = 0; i < n; i++)
        maxerr = fmax(maxerr, cabs((double complex)pr[i] - (double complex)pb[i]));
    assert_true(maxerr < 1e-5);
    /* Parseval: sum |X|^2 = n sum |x|^2 (checks the forward transform itself). */
    const float complex *pq = td_tensor_data(bf);
    double e1 = 0, e2 = 0;
    for (int64_t i = 0; i < n; i++) {
        e1 += cabs((double complex)pb[i]) * cabs((double complex)pb[i]);
        e2 += cabs((double complex)pq[i]) * cabs((double complex)pq[i]);
    }
    assert_true(fabs(e2 / ((double)n * e1) - 1.0) < 1e-5);
    td_parallel_set_threads(0);
    td_tensor_release(big);
    td_tensor_release(bf);
    td_tensor_release(bb);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    struct td_attr_arg bad = a_str("norm", "sideways");
    run_fail(TD_OP_fft, 1, &x, 1, &bad, 1, TD_EINVAL, "norm");
    struct td_attr_arg n0 = a_int("n", 0);
    run_fail(TD_OP_fft, 1, &x, 1, &n0, 1, TD_EINVAL, "number of data points");
    struct td_attr_arg d5 = a_int("dim", 5);
    run_fail(TD_OP_rfft, 1, &x, 1, &d5, 1, TD_EINVAL, NULL);
    struct td_tensor *s = mk0(TD_FLOAT32, 1);
    run_fail(TD_OP_fft, 1, &s, 0, NULL, 1, TD_EINVAL, "at least 1 dimension");
    struct td_tensor *one = mk(TD_COMPLEX64, 1, SHAPE(1), VALS(1));
    /* irfft of one point: default n = 0 is refused. */
    run_fail(TD_OP_irfft, 1, &one, 0, NULL, 1, TD_EINVAL, "number of data points");
    struct td_attr_arg sd[2] = {a_ints("s", 2, SHAPE(2, 2)), a_ints("dim", 1, SHAPE(0))};
    run_fail(TD_OP_fftn, 1, &x, 2, sd, 1, TD_EINVAL, "entries");
    /* An n whose output would not fit is refused before anything is allocated. */
    struct td_attr_arg huge = a_int("n", INT64_C(1) << 62);
    run_fail(TD_OP_fft, 1, &x, 1, &huge, 1, TD_EINVAL, NULL);
    struct td_attr_arg dup = a_ints("dim", 2, SHAPE(0, 0));
    run_fail(TD_OP_fftn, 1, &x, 1, &dup, 1, TD_EINVAL, "repeated");
    td_tensor_release(x);
    td_tensor_release(s);
    td_tensor_release(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fft_vs_naive_dft, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_small_by_hand, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_strided_and_large, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_errors, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
