/*
 * test_lapack_grad.c - the derivatives of the spectral and orthogonal factorizations
 * (derivatives_linalg.c: eigvalsh, svdvals, eigh, svd, qr) and of det at singular matrices,
 * checked against float64 central finite differences, never against the formulas' output.
 *
 * eigvalsh, svdvals, qr (reduced) and det go through gradcheck.h's generic checker (VJP, JVP,
 * second order, forward over reverse). det at a rank n - 1 matrix is also compared with its
 * hand-computed adjugate. Eigenvectors are defined up to a sign (a phase for complex input),
 * so eigh is checked through the gauge-invariant function Y(A) = V diag(L^2) V^H, composed
 * here from recorded ops, against finite differences of the same composition. The cases
 * without a derivative (qr mode='r', qr complete with m > n) must fail at backward
 * with EINVAL naming the op.
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"

#define F64 TD_FLOAT64
#define C128 TD_COMPLEX128

static const enum td_dtype DTS[2] = {F64, C128};

static struct gcase one(const char *name, enum td_op op, struct td_tensor *x, int na,
                        const struct td_attr_arg *a, int nout)
{
    return gc_case(name, op, 1, &x, na, a, nout);
}

/* ---- eigvalsh and svdvals: the generic checks ---- */

static void test_eigvalsh(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        struct td_attr_arg up = a_str("UPLO", "U");
        struct gcase k = one("eigvalsh L", TD_OP_eigvalsh, rnd(DTS[t], 2, SHAPE(3, 3), 0), 0,
                             NULL, 1);
        gc_check(&k);
        k = one("eigvalsh U batched", TD_OP_eigvalsh, rnd(DTS[t], 3, SHAPE(2, 2, 2), 0), 1, &up,
                1);
        gc_check(&k);
    }
}

static void test_svdvals(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        struct gcase k = one("svdvals square", TD_OP_svdvals, rnd(DTS[t], 2, SHAPE(3, 3), 0), 0,
                             NULL, 1);
        gc_check(&k);
        k = one("svdvals tall", TD_OP_svdvals, rnd(DTS[t], 2, SHAPE(4, 2), 0), 0, NULL, 1);
        gc_check(&k);
        k = one("svdvals wide", TD_OP_svdvals, rnd(DTS[t], 2, SHAPE(2, 3), 0), 0, NULL, 1);
        gc_check(&k);
    }
}

static void test_qr_reduced(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        struct gcase k = one("qr tall", TD_OP_qr, rnd(DTS[t], 2, SHAPE(4, 3), 0), 0, NULL, 2);
        gc_check(&k);
        k = one("qr wide", TD_OP_qr, rnd(DTS[t], 2, SHAPE(2, 4), 0), 0, NULL, 2);
        gc_check(&k);
    }
}

/* ---- det at singular matrices ---- */

static void test_det_singular(void **state)
{
    (void)state;
    /* Rank 2 (row 1 = 2 row 0). Cofactors by hand: C00 = det[[4,6],[0,1]] = 4,
     * C01 = -det[[2,6],[1,1]] = 4, C02 = det[[2,4],[1,0]] = -4, C10 = -det[[2,3],[0,1]] = -2,
     * C11 = det[[1,3],[1,1]] = -2, C12 = -det[[1,2],[1,0]] = 2, row 2 all 0 (its minors
     * hold rows 0 and 1). d det / dA = the cofactor matrix. */
    static const double a[9] = {1, 2, 3, 2, 4, 6, 1, 0, 1};
    static const double cof[9] = {4, 4, -4, -2, -2, 2, 0, 0, 0};
    for (int t = 0; t < 2; t++) {
        struct td_tensor *x = mk(DTS[t], 2, SHAPE(3, 3), a), *d = NULL, *g = NULL;
        struct td_tensor *one_ = mk0(DTS[t], 1.0);
        struct td_error err;
        assert_int_equal(td__ag_meta_ensure(x, &err), 0);
        x->ag->requires_grad = true;
        assert_int_equal(td_ag_call(&sess, true, TD_OP_det, 1, &x, 0, NULL, 1, &d, &err), 0);
        assert_true(cabs(cget(d, 0)) < 1e-14);
        assert_int_equal(td_ag_backward(&sess, 1, &d, &one_, 1, &x, false, false, false, &g, &err),
                         0);
        for (int j = 0; j < 9; j++) {
            double complex z = cget(g, j);
            if (!(fabs(creal(z) - cof[j]) < 1e-12 && fabs(cimag(z)) < 1e-12))
                fail_msg("det gradient element %d: got %g%+gi, want %g", j, creal(z), cimag(z),
                         cof[j]);
        }
        td_tensor_release(g);
        td_tensor_release(d);
        td_tensor_release(one_);
        td_tensor_release(x);
        /* Finite differences at the singular point: first order (the complex second
         * derivative divides by the zero singular value), and second order for real input
         * (through svd's derivative). */
        struct gcase k = one("det singular", TD_OP_det, mk(DTS[t], 2, SHAPE(3, 3), a), 0, NULL,
                             1);
        k.first_only = DTS[t] == C128;
        k.tol2 = 1e-5;
        gc_check(&k);
    }
    /* A regular batch too (the inverse path). */
    for (int t = 0; t < 2; t++) {
        struct gcase k = one("det regular", TD_OP_det, rnd(DTS[t], 3, SHAPE(2, 3, 3), 0), 0, NULL,
                             1);
        gc_check(&k);
    }
}

/* ---- eigh through a gauge-invariant function ---- */

static struct td_tensor *call1(bool grad, enum td_op op, int nin, struct td_tensor *const *in,
                               int na, const struct td_attr_arg *a)
{
    struct td_tensor *out = NULL;
    struct td_error err;
    td_error_clear(&err);
    if (td_ag_call(&sess, grad, op, nin, in, na, a, 1, &out, &err))
        fail_msg("%s failed: %s", td_op_info_get(op)->name, err.msg);
    return out;
}

/* Y = V diag(L^2) V^H with (L, V) = eigh(x, UPLO=uplo), recorded when grad. */
static struct td_tensor *eigh_fn(struct td_tensor *x, const char *uplo, bool grad)
{
    struct td_tensor *lv[2] = {NULL, NULL};
    struct td_attr_arg ua = a_str("UPLO", uplo);
    struct td_error err;
    td_error_clear(&err);
    if (td_ag_call(&sess, grad, TD_OP_eigh, 1, &x, 1, &ua, 2, lv, &err))
        fail_msg("eigh failed: %s", err.msg);
    struct td_tensor *in2[2] = {lv[0], lv[0]};
    struct td_tensor *l2 = call1(grad, TD_OP_mul, 2, in2, 0, NULL);
    struct td_attr_arg dim = a_int("dim", -2);
    struct td_tensor *row = call1(grad, TD_OP_unsqueeze, 1, &l2, 1, &dim);
    struct td_tensor *in3[2] = {lv[1], row};
    struct td_tensor *vw = call1(grad, TD_OP_mul, 2, in3, 0, NULL);
    struct td_attr_arg tr[2] = {a_int("dim0", -1), a_int("dim1", -2)};
    struct td_tensor *vt = call1(grad, TD_OP_transpose, 1, &lv[1], 2, tr);
    struct td_tensor *vh = call1(grad, TD_OP_conj, 1, &vt, 0, NULL);
    struct td_tensor *in4[2] = {vw, vh};
    struct td_tensor *y = call1(grad, TD_OP_matmul, 2, in4, 0, NULL);
    struct td_tensor *tmp[7] = {lv[0], lv[1], l2, row, vw, vt, vh};
    release_all(tmp, 7);
    return y;
}

static double eigh_loss(struct td_tensor *x, const char *uplo, struct td_tensor *v)
{
    struct td_tensor *y = eigh_fn(x, uplo, false);
    double s = dotre(v, y);
    td_tensor_release(y);
    return s;
}

static void check_eigh_fn(enum td_dtype dt, const char *uplo)
{
    struct td_tensor *a = rnd(dt, 2, SHAPE(3, 3), 0), *g = NULL, *leaf = copy_of(a);
    struct td_error err;
    assert_int_equal(td__ag_meta_ensure(leaf, &err), 0);
    leaf->ag->requires_grad = true;
    struct td_tensor *y = eigh_fn(leaf, uplo, true);
    struct td_tensor *v = rnd_like(y), *u = rnd_like(a);
    assert_int_equal(td_ag_backward(&sess, 1, &y, &v, 1, &leaf, false, false, false, &g, &err), 0);
    expect_shape(g, dt, 2, SHAPE(3, 3));
    bool cplx = td_dtype_is_complex(dt);
    for (int64_t j = 0; j < 9; j++)
        for (int part = 0; part < (cplx ? 2 : 1); part++) {
            double r[2];
            for (int s = 0; s < 2; s++) {
                struct td_tensor *p = copy_of(a);
                double h = s == 0 ? GC_EPS : -GC_EPS;
                cset(p, j, cget(p, j) + (part ? CMPLX(0, h) : h));
                r[s] = eigh_loss(p, uplo, v);
                td_tensor_release(p);
            }
            double want = (r[0] - r[1]) / (2 * GC_EPS);
            double got = part ? cimag(cget(g, j)) : creal(cget(g, j));
            gc_expect_close("eigh V diag(L^2) V^H", "VJP", 0, j, got, want, 1e-6);
        }
    /* JVP against finite differences, and against the VJP. */
    struct td_tensor *dual = NULL, *xp = gc_axpy(a, GC_EPS, u), *xm = gc_axpy(a, -GC_EPS, u);
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    struct td_tensor *pair[2] = {a, u};
    assert_int_equal(td_ag_call(&sess, false, TD_OP_make_dual, 2, pair, 0, NULL, 1, &dual, &err),
                     0);
    struct td_tensor *yd = eigh_fn(dual, uplo, false);
    struct td_tensor *tan = td_ag_tangent(&sess, yd);
    assert_non_null(tan);
    struct td_tensor *fp = eigh_fn(xp, uplo, false), *fm = eigh_fn(xm, uplo, false);
    for (int64_t j = 0; j < 9; j++) {
        double complex want = (cget(fp, j) - cget(fm, j)) / (2 * GC_EPS), got = cget(tan, j);
        gc_expect_close("eigh V diag(L^2) V^H", "JVP (real part)", 0, j, creal(got), creal(want),
                        1e-6);
        gc_expect_close("eigh V diag(L^2) V^H", "JVP (imaginary part)", 0, j, cimag(got),
                        cimag(want), 1e-6);
    }
    double jv = dotre(v, tan), vj = dotre(g, u);
    if (!(fabs(jv - vj) <= 1e-10 * (1 + fabs(jv))))
        fail_msg("eigh: Re<v, J u> = %.17g but Re<J^T v, u> = %.17g", jv, vj);
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    struct td_tensor *all[11] = {a, g, leaf, y, v, u, dual, xp, xm, yd, fp};
    release_all(all, 11);
    td_tensor_release(fm);
}

static void test_eigh_gauge_invariant(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        check_eigh_fn(DTS[t], "L");
        check_eigh_fn(DTS[t], "U");
    }
}

/* Real eigenvectors have a sign gauge only: LAPACK's choice is locally constant, so the
 * generic checks apply to eigh itself (and to svd) in float64. */
static void test_eigh_svd_real_generic(void **state)
{
    (void)state;
    struct gcase k = one("eigh float64", TD_OP_eigh, rnd(F64, 2, SHAPE(3, 3), 0), 0, NULL, 2);
    gc_check(&k);
    struct td_attr_arg thin = a_bool("full_matrices", false);
    k = one("svd float64 thin tall", TD_OP_svd, rnd(F64, 2, SHAPE(4, 3), 0), 1, &thin, 3);
    gc_check(&k);
    k = one("svd float64 thin wide", TD_OP_svd, rnd(F64, 2, SHAPE(2, 3), 0), 1, &thin, 3);
    gc_check(&k);
}

/* ---- no derivative: clean EINVAL at backward naming the op ---- */

static void expect_backward_fails(enum td_op op, struct td_tensor *x, int na,
                                  const struct td_attr_arg *a, int nout, int which,
                                  const char *needle)
{
    struct td_tensor *out[3] = {NULL, NULL, NULL}, *g = NULL;
    struct td_error err;
    td_error_clear(&err);
    assert_int_equal(td__ag_meta_ensure(x, &err), 0);
    x->ag->requires_grad = true;
    assert_int_equal(td_ag_call(&sess, true, op, 1, &x, na, a, nout, out, &err), 0);
    struct td_tensor *v = rnd_like(out[which]);
    int rc = td_ag_backward(&sess, 1, &out[which], &v, 1, &x, false, false, false, &g, &err);
    assert_int_equal(rc, TD_EINVAL);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not contain '%s'", err.msg, needle);
    assert_null(g);
    td_tensor_release(v);
    release_all(out, nout);
    td_tensor_release(x);
}

static void test_no_derivative_errors(void **state)
{
    (void)state;
    struct td_attr_arg r = a_str("mode", "r"), complete = a_str("mode", "complete");
    expect_backward_fails(TD_OP_qr, rnd(F64, 2, SHAPE(3, 3), 0), 1, &r, 2, 1,
                          "qr: the derivative of linalg.qr depends on Q");
    expect_backward_fails(TD_OP_qr, rnd(F64, 2, SHAPE(4, 2), 0), 1, &complete, 2, 1,
                          "qr: the QR decomposition is not differentiable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_eigvalsh),
        AG_TEST(test_svdvals),
        AG_TEST(test_qr_reduced),
        AG_TEST(test_det_singular),
        AG_TEST(test_eigh_gauge_invariant),
        AG_TEST(test_eigh_svd_real_generic),
        AG_TEST(test_no_derivative_errors),
    };
    return AG_RUN_TESTS(tests);
}
