/*
 * test_lapack_ext.c - the ops of ops_lapack_ext.c on hand-computed values, their error paths
 * and info outputs, allocation failures, and their derivatives through gradcheck.h (VJP, JVP,
 * second order and forward-over-reverse against float64 central differences):
 * solve_triangular, inv_ex, solve_ex, cholesky_ex, lu_factor, lu_factor_ex, lu, lu_solve,
 * eigvals, lstsq and householder_product (eig's eigenvectors are gauge dependent: its
 * gradient is tested with gauge-invariant functions in tests/python/test_linalg_ext.py).
 */
#include "gradcheck.h"

#define F64 TD_FLOAT64
#define C128 TD_COMPLEX128

static void expect_ints(const struct td_tensor *t, enum td_dtype dt, int n, const int64_t *v)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(td_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(td__load_i64(elem(t, i), dt), v[i]);
}

#define IVALS(...) ((const int64_t[]){__VA_ARGS__})

static void test_triangular_values(void **state)
{
    (void)state;
    /* Lower A = [[2, 0], [1, 4]] (the 7 above the diagonal is ignored): A x = [2, 9] gives
     * x = [1, 2]; x A = [4, 8] gives x = [1, 2]; unit diagonal: [[1, 0], [1, 1]] x = [2, 9]
     * gives [2, 7]. */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(2, 7, 1, 4));
    struct td_tensor *bl = mk(F64, 2, SHAPE(2, 1), VALS(2, 9));
    struct td_tensor *br = mk(F64, 2, SHAPE(1, 2), VALS(4, 8));
    struct td_tensor *in[2] = {a, bl};
    struct td_attr_arg lo[3] = {a_bool("upper", false), a_bool("left", true),
                                a_bool("unitriangular", false)};
    struct td_tensor *y = run1(TD_OP_solve_triangular, 2, in, 3, lo);
    expect_vals_tol(y, F64, 2, SHAPE(2, 1), VALS(1, 2), 1e-15);
    td_tensor_release(y);
    lo[2] = a_bool("unitriangular", true);
    y = run1(TD_OP_solve_triangular, 2, in, 3, lo);
    expect_vals_tol(y, F64, 2, SHAPE(2, 1), VALS(2, 7), 1e-15);
    td_tensor_release(y);
    in[1] = br;
    lo[1] = a_bool("left", false);
    lo[2] = a_bool("unitriangular", false);
    y = run1(TD_OP_solve_triangular, 2, in, 3, lo);
    expect_vals_tol(y, F64, 2, SHAPE(1, 2), VALS(1, 2), 1e-15);
    td_tensor_release(y);
    /* B [2, 1] with left=false does not match. */
    in[1] = bl;
    run_fail(TD_OP_solve_triangular, 2, in, 3, lo, 1, TD_EINVAL, "do not match");
    td_tensor_release(a);
    td_tensor_release(bl);
    td_tensor_release(br);
}

static void test_ex_info(void **state)
{
    (void)state;
    /* Batch element 1 is singular: inv_ex reports info 2 (U[1,1] = 0) and raises only with
     * check_errors. */
    struct td_tensor *a = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 7, 2, 6, 1, 2, 2, 4));
    struct td_tensor *out[3] = {NULL, NULL, NULL};
    runn(TD_OP_inv_ex, 1, &a, 0, NULL, 2, out);
    expect_shape(out[0], F64, 3, SHAPE(2, 2, 2));
    static const double want[4] = {0.6, -0.7, -0.2, 0.4};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(val(out[0], i) - want[i]) < 1e-14);
    expect_ints(out[1], TD_INT32, 2, IVALS(0, 2));
    release_all(out, 2);
    struct td_attr_arg ce = a_bool("check_errors", true);
    run_fail(TD_OP_inv_ex, 1, &a, 1, &ce, 2, TD_EINVAL, "inv_ex: batch element 1 is singular");
    /* solve_ex right: X A = B with A = [[4, 7], [2, 6]], B = [1, 0]: X = first row of A^-1. */
    struct td_tensor *b = mk(F64, 2, SHAPE(1, 2), VALS(1, 0));
    struct td_tensor *in[2] = {a, b};
    struct td_attr_arg right = a_bool("left", false);
    runn(TD_OP_solve_ex, 2, in, 1, &right, 2, out);
    expect_shape(out[0], F64, 3, SHAPE(2, 1, 2));
    assert_true(fabs(val(out[0], 0) - 0.6) < 1e-14 && fabs(val(out[0], 1) + 0.7) < 1e-14);
    expect_ints(out[1], TD_INT32, 2, IVALS(0, 2));
    release_all(out, 2);
    struct td_attr_arg rce[2] = {right, ce};
    run_fail(TD_OP_solve_ex, 2, in, 2, rce, 2, TD_EINVAL, "solve_ex: batch element 1");
    /* cholesky_ex: batch element 1 has a negative second leading minor. */
    struct td_tensor *c = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 2, 2, 5, 1, 2, 2, 1));
    runn(TD_OP_cholesky_ex, 1, &c, 0, NULL, 2, out);
    assert_true(fabs(val(out[0], 0) - 2) < 1e-15 && fabs(val(out[0], 2) - 1) < 1e-15);
    expect_ints(out[1], TD_INT32, 2, IVALS(0, 2));
    release_all(out, 2);
    run_fail(TD_OP_cholesky_ex, 1, &c, 1, &ce, 2, TD_EINVAL,
             "cholesky_ex: batch element 1 is not positive-definite");
    td_tensor_release(c);
    td_tensor_release(b);
    td_tensor_release(a);
}

static void test_lu_values(void **state)
{
    (void)state;
    /* [[1, 2], [3, 4]]: rows swap (pivots [2, 2]), LU = [[3, 4], [1/3, 2/3]]. */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *out[3] = {NULL, NULL, NULL};
    runn(TD_OP_lu_factor, 1, &a, 0, NULL, 2, out);
    expect_vals_tol(out[0], F64, 2, SHAPE(2, 2), VALS(3, 4, 1.0 / 3, 2.0 / 3), 1e-15);
    expect_ints(out[1], TD_INT32, 2, IVALS(2, 2));
    /* lu_solve: A x = [5, 11] gives [1, 2]; A^H x = [7, 10] gives [1, 2]; x A = [7, 10]
     * gives [1, 2]. */
    struct td_tensor *b = mk(F64, 2, SHAPE(2, 1), VALS(5, 11));
    struct td_tensor *in[3] = {out[0], out[1], b};
    struct td_tensor *y = run1(TD_OP_lu_solve, 3, in, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 1), VALS(1, 2), 1e-14);
    td_tensor_release(y);
    struct td_tensor *b2 = mk(F64, 2, SHAPE(2, 1), VALS(7, 10));
    in[2] = b2;
    struct td_attr_arg adj = a_bool("adjoint", true);
    y = run1(TD_OP_lu_solve, 3, in, 1, &adj);
    expect_vals_tol(y, F64, 2, SHAPE(2, 1), VALS(1, 2), 1e-14);
    td_tensor_release(y);
    struct td_tensor *b3 = mk(F64, 2, SHAPE(1, 2), VALS(7, 10));
    in[2] = b3;
    struct td_attr_arg right = a_bool("left", false);
    y = run1(TD_OP_lu_solve, 3, in, 1, &right);
    expect_vals_tol(y, F64, 2, SHAPE(1, 2), VALS(1, 2), 1e-14);
    td_tensor_release(y);
    /* Pivots from the client are range checked. */
    struct td_tensor *bad = mk(TD_INT32, 1, SHAPE(2), VALS(3, 1));
    in[1] = bad;
    in[2] = b;
    run_fail(TD_OP_lu_solve, 3, in, 0, NULL, 1, TD_EINVAL, "pivot 3 is out of range");
    td_tensor_release(bad);
    release_all(out, 2);
    /* lu: P = [[0, 1], [1, 0]], L = [[1, 0], [1/3, 1]], U = [[3, 4], [0, 2/3]]. */
    runn(TD_OP_lu, 1, &a, 0, NULL, 3, out);
    expect_vals_tol(out[0], F64, 2, SHAPE(2, 2), VALS(0, 1, 1, 0), 0);
    expect_vals_tol(out[1], F64, 2, SHAPE(2, 2), VALS(1, 0, 1.0 / 3, 1), 1e-15);
    expect_vals_tol(out[2], F64, 2, SHAPE(2, 2), VALS(3, 4, 0, 2.0 / 3), 1e-15);
    release_all(out, 3);
    /* Without pivoting: L = [[1, 0], [3, 1]], U = [[1, 2], [0, -2]], P empty. */
    struct td_attr_arg np = a_bool("pivot", false);
    runn(TD_OP_lu, 1, &a, 1, &np, 3, out);
    expect_shape(out[0], F64, 1, SHAPE(0));
    expect_vals_tol(out[1], F64, 2, SHAPE(2, 2), VALS(1, 0, 3, 1), 0);
    expect_vals_tol(out[2], F64, 2, SHAPE(2, 2), VALS(1, 2, 0, -2), 0);
    release_all(out, 3);
    /* Rectangular 3 x 2: L 3 x 2, U 2 x 2, P 3 x 3. */
    struct td_tensor *r = mk(F64, 2, SHAPE(3, 2), VALS(1, 0, 0, 1, 4, 0));
    runn(TD_OP_lu, 1, &r, 0, NULL, 3, out);
    expect_shape(out[0], F64, 2, SHAPE(3, 3));
    expect_vals_tol(out[1], F64, 2, SHAPE(3, 2), VALS(1, 0, 0, 1, 0.25, 0), 0);
    expect_vals_tol(out[2], F64, 2, SHAPE(2, 2), VALS(4, 0, 0, 1), 0);
    release_all(out, 3);
    td_tensor_release(r);
    td_tensor_release(b);
    td_tensor_release(b2);
    td_tensor_release(b3);
    td_tensor_release(a);
}

static void test_lu_errors(void **state)
{
    (void)state;
    /* Batch element 1 is singular; element 2 needs a row swap. */
    struct td_tensor *a = mk(F64, 3, SHAPE(3, 2, 2), VALS(2, 1, 1, 2, 1, 2, 2, 4, 0, 1, 1, 0));
    run_fail(TD_OP_lu_factor, 1, &a, 0, NULL, 2, TD_EINVAL,
             "lu_factor: batch element 1: U[1,1] is zero");
    struct td_tensor *out[3] = {NULL, NULL, NULL};
    runn(TD_OP_lu_factor_ex, 1, &a, 0, NULL, 3, out);
    expect_ints(out[2], TD_INT32, 3, IVALS(0, 2, 0));
    release_all(out, 3);
    /* LU itself exists for a singular matrix. */
    runn(TD_OP_lu, 1, &a, 0, NULL, 3, out);
    release_all(out, 3);
    /* Without pivoting, element 2 has a zero pivot at U[0,0]. */
    struct td_attr_arg np = a_bool("pivot", false);
    run_fail(TD_OP_lu, 1, &a, 1, &np, 3, TD_EINVAL, "lu: batch element 1 has a zero pivot");
    struct td_attr_arg npc[2] = {np, a_bool("check_errors", false)};
    runn(TD_OP_lu_factor_ex, 1, &a, 2, npc, 3, out);
    expect_ints(out[2], TD_INT32, 3, IVALS(0, 2, 1));
    expect_ints(out[1], TD_INT32, 6, IVALS(1, 2, 1, 2, 1, 2));
    release_all(out, 3);
    npc[1] = a_bool("check_errors", true);
    run_fail(TD_OP_lu_factor_ex, 1, &a, 2, npc, 3, TD_EINVAL, "batch element 1");
    td_tensor_release(a);
}

static void test_eig_lstsq_householder_values(void **state)
{
    (void)state;
    /* eig of the rotation [[0, -1], [1, 0]]: i and -i with vectors (1, -i)/sqrt2 and
     * (1, i)/sqrt2 (LAPACK's pair form VR[:, 0] +- i VR[:, 1]). */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(0, -1, 1, 0));
    struct td_tensor *out[4] = {NULL, NULL, NULL, NULL};
    runn(TD_OP_eig, 1, &a, 0, NULL, 2, out);
    assert_int_equal(out[0]->dtype, C128);
    assert_true(cabs(cget(out[0], 0) - I) < 1e-15 && cabs(cget(out[0], 1) + I) < 1e-15);
    /* A v = w v, |v| = 1, and the pair is conjugate. */
    for (int j = 0; j < 2; j++) {
        double complex v0 = cget(out[1], j), v1 = cget(out[1], 2 + j), w = cget(out[0], j);
        assert_true(cabs(-v1 - w * v0) < 1e-15 && cabs(v0 - w * v1) < 1e-15);
        assert_true(fabs(cabs(v0) * cabs(v0) + cabs(v1) * cabs(v1) - 1) < 1e-15);
    }
    assert_true(cabs(cget(out[1], 0) - conj(cget(out[1], 1))) < 1e-15);
    release_all(out, 2);
    struct td_tensor *ev = run1(TD_OP_eigvals, 1, &a, 0, NULL);
    assert_true(cabs(cget(ev, 0) - I) < 1e-15 && cabs(cget(ev, 1) + I) < 1e-15);
    td_tensor_release(ev);
    td_tensor_release(a);
    /* lstsq of [1, 1]^T x = [1, 3]: x = 2, residual (1-2)^2 + (3-2)^2 = 2. */
    struct td_tensor *m = mk(F64, 2, SHAPE(2, 1), VALS(1, 1));
    struct td_tensor *b = mk(F64, 2, SHAPE(2, 1), VALS(1, 3));
    struct td_tensor *in[2] = {m, b};
    struct td_attr_arg drv = a_str("driver", "gels");
    runn(TD_OP_lstsq, 2, in, 1, &drv, 4, out);
    expect_vals_tol(out[0], F64, 2, SHAPE(1, 1), VALS(2), 1e-15);
    expect_vals_tol(out[1], F64, 1, SHAPE(1), VALS(2), 1e-14);
    expect_shape(out[2], TD_INT64, 1, SHAPE(0));
    expect_shape(out[3], F64, 1, SHAPE(0));
    release_all(out, 4);
    drv = a_str("driver", "gelsd");
    runn(TD_OP_lstsq, 2, in, 1, &drv, 4, out);
    expect_vals_tol(out[0], F64, 2, SHAPE(1, 1), VALS(2), 1e-15);
    expect_ints(out[2], TD_INT64, 1, IVALS(1));
    expect_vals_tol(out[3], F64, 1, SHAPE(1), VALS(sqrt(2.0)), 1e-15);
    release_all(out, 4);
    /* Default gelsy: no residuals, rank 1. */
    runn(TD_OP_lstsq, 2, in, 0, NULL, 4, out);
    expect_shape(out[1], F64, 1, SHAPE(0));
    expect_ints(out[2], TD_INT64, 1, IVALS(1));
    release_all(out, 4);
    drv = a_str("driver", "gesv");
    run_fail(TD_OP_lstsq, 2, in, 1, &drv, 4, TD_EINVAL, "driver must be");
    /* gels on a rank-deficient matrix names the batch element. gels reports only an exact
     * zero on R's diagonal, so element 1 has a zero column ([[1, 0], [1, 0]]): its QR
     * gives R[1][1] = 0 exactly with any kernels ([[1, 1], [1, 1]] leaves -4.7e-17 with
     * OpenBLAS's AVX-512 kernels, and gels then returns a 3e16 "solution"). */
    struct td_tensor *z = mk(F64, 3, SHAPE(2, 2, 2), VALS(1, 0, 0, 1, 1, 0, 1, 0));
    in[0] = z;
    drv = a_str("driver", "gels");
    run_fail(TD_OP_lstsq, 2, in, 1, &drv, 4, TD_EINVAL, "batch element 1 does not have full");
    td_tensor_release(z);
    /* householder_product of v = (1, 1), tau = 1: H = I - v v^T = [[0, -1], [-1, 0]]. */
    struct td_tensor *tau = mk(F64, 1, SHAPE(1), VALS(1));
    struct td_tensor *hin[2] = {b, tau};
    struct td_tensor *b1 = mk(F64, 2, SHAPE(2, 1), VALS(7, 1));
    hin[0] = b1;
    struct td_tensor *q = run1(TD_OP_householder_product, 2, hin, 0, NULL);
    expect_vals_tol(q, F64, 2, SHAPE(2, 1), VALS(0, -1), 1e-15);
    td_tensor_release(q);
    struct td_tensor *wide = mk(F64, 2, SHAPE(1, 2), VALS(1, 2));
    hin[0] = wide;
    run_fail(TD_OP_householder_product, 2, hin, 0, NULL, 1, TD_EINVAL, "at least as many rows");
    td_tensor_release(wide);
    td_tensor_release(b1);
    td_tensor_release(tau);
    td_tensor_release(m);
    td_tensor_release(b);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *a = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 7, 2, 6, 2, 1, 1, 3));
    struct td_tensor *b = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *t = mk(F64, 1, SHAPE(2), VALS(1.5, 0.5));
    struct td_tensor *in[2] = {a, b};
    struct td_attr_arg up = a_bool("upper", true);
    fault_loop(TD_OP_solve_triangular, 2, in, 1, &up, 1);
    fault_loop(TD_OP_inv_ex, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_solve_ex, 2, in, 0, NULL, 2);
    fault_loop(TD_OP_cholesky_ex, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_lu_factor, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_lu_factor_ex, 1, &a, 0, NULL, 3);
    fault_loop(TD_OP_lu, 1, &b, 0, NULL, 3);
    struct td_attr_arg np = a_bool("pivot", false);
    fault_loop(TD_OP_lu, 1, &a, 1, &np, 3);
    fault_loop(TD_OP_eig, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_eigvals, 1, &a, 0, NULL, 1);
    struct td_attr_arg drv = a_str("driver", "gelsd");
    struct td_tensor *bt = mk(F64, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 7));
    struct td_tensor *lin[2] = {bt, bt};
    fault_loop(TD_OP_lstsq, 2, lin, 1, &drv, 4);
    struct td_tensor *hin[2] = {bt, t};
    fault_loop(TD_OP_householder_product, 2, hin, 0, NULL, 1);
    struct td_tensor *lu[2] = {NULL, NULL};
    runn(TD_OP_lu_factor, 1, &a, 0, NULL, 2, lu);
    struct td_tensor *bb = mk(F64, 2, SHAPE(2, 1), VALS(1, 2));
    struct td_tensor *sin[3] = {lu[0], lu[1], bb};
    struct td_attr_arg right = a_bool("adjoint", true);
    fault_loop(TD_OP_lu_solve, 3, sin, 1, &right, 1);
    release_all(lu, 2);
    td_tensor_release(bb);
    td_tensor_release(bt);
    td_tensor_release(t);
    td_tensor_release(b);
    td_tensor_release(a);
}

/* ---------------------------------------------------------------------------------------
 * Gradients.
 */

static const enum td_dtype DTS[2] = {F64, C128};

static void test_grad_solve_triangular(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        struct td_tensor *in[2] = {gc_shifted(DTS[d], 2, SHAPE(3, 3), 3),
                                   rnd(DTS[d], 2, SHAPE(3, 2), 0)};
        struct gcase k = gc_case("solve_triangular lower left", TD_OP_solve_triangular, 2, in,
                                 NA(a_bool("upper", false)), A(a_bool("upper", false)), 1);
        gc_check(&k);
        /* Upper, right, unit diagonal, with a broadcast batch of B. */
        struct td_tensor *in2[2] = {gc_shifted(DTS[d], 2, SHAPE(3, 3), 3),
                                    rnd(DTS[d], 3, SHAPE(2, 1, 3), 0)};
        k = gc_case("solve_triangular upper right unit", TD_OP_solve_triangular, 2, in2, 3,
                    A(a_bool("upper", true), a_bool("left", false),
                      a_bool("unitriangular", true)), 1);
        gc_check(&k);
    }
}

static void test_grad_ex(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        struct td_tensor *a = gc_shifted(DTS[d], 2, SHAPE(3, 3), 3);
        struct gcase k = gc_case("inv_ex", TD_OP_inv_ex, 1, &a, 0, NULL, 2);
        gc_check(&k);
        struct td_tensor *in[2] = {gc_shifted(DTS[d], 2, SHAPE(3, 3), 3),
                                   rnd(DTS[d], 2, SHAPE(2, 3), 0)};
        k = gc_case("solve_ex right", TD_OP_solve_ex, 2, in, 1, A(a_bool("left", false)), 2);
        gc_check(&k);
        struct td_tensor *in2[2] = {gc_shifted(DTS[d], 2, SHAPE(3, 3), 3),
                                    rnd(DTS[d], 1, SHAPE(3), 0)};
        k = gc_case("solve_ex vector", TD_OP_solve_ex, 2, in2, 0, NULL, 2);
        gc_check(&k);
        /* An SPD matrix (the kernel reads one triangle). */
        struct td_tensor *s = gc_shifted(DTS[d], 2, SHAPE(3, 3), 4);
        k = gc_case("cholesky_ex upper", TD_OP_cholesky_ex, 1, &s, 1, A(a_bool("upper", true)), 2);
        gc_check(&k);
    }
}

static void test_grad_lu(void **state)
{
    (void)state;
    static const int64_t shapes[3][2] = {{3, 3}, {4, 2}, {2, 4}};
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < 3; s++) {
            const int64_t *sh = shapes[s];
            /* A row-permuted well conditioned matrix: pivoting swaps rows. */
            struct td_tensor *a = gc_shifted(DTS[d], 2, sh, 3);
            for (int64_t j = 0; j < sh[1]; j++) {
                double complex t = cget(a, j);
                cset(a, j, cget(a, sh[1] + j));
                cset(a, sh[1] + j, t);
            }
            struct gcase k = gc_case("lu_factor", TD_OP_lu_factor, 1, &a, 0, NULL, 2);
            gc_check(&k);
            struct td_tensor *a2 = gc_shifted(DTS[d], 2, sh, 3), *a3 = copy_of(a2);
            k = gc_case("lu_factor_ex no pivot", TD_OP_lu_factor_ex, 1, &a2, 1,
                        A(a_bool("pivot", false)), 3);
            gc_check(&k);
            k = gc_case("lu", TD_OP_lu, 1, &a3, 0, NULL, 3);
            gc_check(&k);
        }
}

static void test_grad_lu_solve(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 4; c++) {
            bool left = c < 2, adj = c % 2;
            struct td_tensor *a = gc_shifted(DTS[d], 2, SHAPE(3, 3), 3), *f[2] = {NULL, NULL};
            runn(TD_OP_lu_factor, 1, &a, 0, NULL, 2, f);
            td_tensor_release(a);
            struct td_tensor *in[3] = {f[0], f[1],
                                       left ? rnd(DTS[d], 2, SHAPE(3, 2), 0)
                                            : rnd(DTS[d], 3, SHAPE(2, 1, 3), 0)};
            struct gcase k = gc_case("lu_solve", TD_OP_lu_solve, 3, in, 2,
                                     A(a_bool("left", left), a_bool("adjoint", adj)), 1);
            gc_check(&k);
        }
}

static void test_grad_eigvals_lstsq_householder(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        /* Distinct eigenvalues: diag(1, 3, 6) plus a small perturbation. */
        struct td_tensor *e = rnd(DTS[d], 2, SHAPE(3, 3), 0);
        for (int i = 0; i < 3; i++)
            cset(e, 4 * i, cget(e, 4 * i) * 0.1 + (i == 0 ? 1 : i == 1 ? 3 : 6));
        struct gcase k = gc_case("eigvals", TD_OP_eigvals, 1, &e, 0, NULL, 1);
        k.tol2 = 1e-5;
        gc_check(&k);
        static const char *const drv[3] = {"gels", "gelsy", "gelsd"};
        for (int r = 0; r < 3; r++) {
            /* Tall (with residuals for gels and gelsd) and wide (minimum norm). */
            struct td_tensor *in[2] = {gc_shifted(DTS[d], 2, SHAPE(4, 2), 2),
                                       rnd(DTS[d], 2, SHAPE(4, 2), 0)};
            k = gc_case("lstsq tall", TD_OP_lstsq, 2, in, 1, A(a_str("driver", drv[r])), 4);
            gc_check(&k);
            struct td_tensor *in2[2] = {gc_shifted(DTS[d], 2, SHAPE(2, 3), 2),
                                        rnd(DTS[d], 1, SHAPE(2), 0)};
            k = gc_case("lstsq wide vector", TD_OP_lstsq, 2, in2, 1, A(a_str("driver", drv[r])), 4);
            gc_check(&k);
        }
        struct td_tensor *in3[2] = {rnd(DTS[d], 2, SHAPE(4, 3), 0),
                                    rnd(DTS[d], 1, SHAPE(2), 1)};
        k = gc_case("householder_product", TD_OP_householder_product, 2, in3, 0, NULL, 1);
        gc_check(&k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_triangular_values),
        AG_TEST(test_ex_info),
        AG_TEST(test_lu_values),
        AG_TEST(test_lu_errors),
        AG_TEST(test_eig_lstsq_householder_values),
        AG_TEST(test_alloc_failures),
        AG_TEST(test_grad_solve_triangular),
        AG_TEST(test_grad_ex),
        AG_TEST(test_grad_lu),
        AG_TEST(test_grad_lu_solve),
        AG_TEST(test_grad_eigvals_lstsq_householder),
    };
    return AG_RUN_TESTS(tests);
}
