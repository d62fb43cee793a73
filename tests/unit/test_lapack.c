/*
 * test_lapack.c - the LAPACK ops (ops_lapack.c) on hand-computed values and their error
 * paths: inv, solve (vector and matrix B, broadcast batches), det and slogdet (including a
 * singular matrix), cholesky lower and upper, qr, eigh, svd and svdvals; singular input to inv and solve and a
 * non positive-definite matrix for cholesky fail with EINVAL naming the batch element;
 * allocation failures leave nothing behind. Every test runs in the leak-check fixture.
 */
#include "optest.h"

#define F64 TD_FLOAT64
#define F32 TD_FLOAT32

static void test_inv_solve_values(void **state)
{
    (void)state;
    /* [[4, 7], [2, 6]]^-1 = [[0.6, -0.7], [-0.2, 0.4]] (det 10). */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(4, 7, 2, 6));
    struct td_tensor *y = run1(TD_OP_inv, 1, &a, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(0.6, -0.7, -0.2, 0.4), 1e-14);
    td_tensor_release(y);
    /* A x = [1, 2]: x = A^-1 [1, 2] = [0.6 - 1.4, -0.2 + 0.8] = [-0.8, 0.6]. */
    struct td_tensor *bv = mk(F64, 1, SHAPE(2), VALS(1, 2));
    struct td_tensor *in[2] = {a, bv};
    y = run1(TD_OP_solve, 2, in, 0, NULL);
    expect_vals_tol(y, F64, 1, SHAPE(2), VALS(-0.8, 0.6), 1e-14);
    td_tensor_release(y);
    /* Matrix B broadcast over a batch of 2 (second A = 2 I). */
    struct td_tensor *ab = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 7, 2, 6, 2, 0, 0, 2));
    struct td_tensor *bm = mk(F64, 2, SHAPE(2, 1), VALS(1, 2));
    struct td_tensor *in2[2] = {ab, bm};
    y = run1(TD_OP_solve, 2, in2, 0, NULL);
    expect_vals_tol(y, F64, 3, SHAPE(2, 2, 1), VALS(-0.8, 0.6, 0.5, 1.0), 1e-14);
    td_tensor_release(y);
    td_tensor_release(ab);
    td_tensor_release(bm);
    td_tensor_release(bv);
    td_tensor_release(a);
}

static void test_det_slogdet_values(void **state)
{
    (void)state;
    /* det [[4, 7], [2, 6]] = 10; det [[0, 1], [1, 0]] = -1 (a pivot swap); singular 0. */
    struct td_tensor *a = mk(F64, 3, SHAPE(3, 2, 2), VALS(4, 7, 2, 6, 0, 1, 1, 0, 1, 2, 2, 4));
    struct td_tensor *y = run1(TD_OP_det, 1, &a, 0, NULL);
    expect_vals_tol(y, F64, 1, SHAPE(3), VALS(10, -1, 0), 1e-13);
    td_tensor_release(y);
    struct td_tensor *out[2] = {NULL, NULL};
    runn(TD_OP_slogdet, 1, &a, 0, NULL, 2, out);
    expect_vals_tol(out[0], F64, 1, SHAPE(3), VALS(1, -1, 0), 0);
    assert_true(fabs(val(out[1], 0) - log(10.0)) < 1e-14);
    assert_true(fabs(val(out[1], 1)) < 1e-15);
    assert_true(isinf(val(out[1], 2)) && val(out[1], 2) < 0);
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(a);
}

static void test_cholesky_qr_values(void **state)
{
    (void)state;
    /* [[4, 2], [2, 5]] = L L^T with L = [[2, 0], [1, 2]]. */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(4, 2, 2, 5));
    struct td_tensor *y = run1(TD_OP_cholesky, 1, &a, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(2, 0, 1, 2), 1e-15);
    td_tensor_release(y);
    struct td_attr_arg up = a_bool("upper", true);
    y = run1(TD_OP_cholesky, 1, &a, 1, &up);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(2, 1, 0, 2), 1e-15);
    td_tensor_release(y);
    td_tensor_release(a);
    /* [[3, 1], [4, 2]]: LAPACK's Householder gives Q = -[[0.6, -0.8], [0.8, 0.6]] and
     * R = -[[5, 2.2], [0, -0.4]] (R's diagonal -|column norm| first). */
    struct td_tensor *m = mk(F64, 2, SHAPE(2, 2), VALS(3, 1, 4, 2));
    struct td_tensor *qr[2] = {NULL, NULL};
    runn(TD_OP_qr, 1, &m, 0, NULL, 2, qr);
    expect_vals_tol(qr[0], F64, 2, SHAPE(2, 2), VALS(-0.6, -0.8, -0.8, 0.6), 1e-14);
    expect_vals_tol(qr[1], F64, 2, SHAPE(2, 2), VALS(-5, -2.2, 0, 0.4), 1e-14);
    td_tensor_release(qr[0]);
    td_tensor_release(qr[1]);
    struct td_attr_arg mode = a_str("mode", "r");
    runn(TD_OP_qr, 1, &m, 1, &mode, 2, qr);
    expect_shape(qr[0], F64, 1, SHAPE(0));
    expect_vals_tol(qr[1], F64, 2, SHAPE(2, 2), VALS(-5, -2.2, 0, 0.4), 1e-14);
    td_tensor_release(qr[0]);
    td_tensor_release(qr[1]);
    td_tensor_release(m);
}

static void test_eigh_svd_values(void **state)
{
    (void)state;
    /* [[2, 1], [1, 2]]: eigenvalues 1 and 3 with vectors (1, -1)/sqrt2 and (1, 1)/sqrt2 (up
     * to sign); the upper triangle is ignored with UPLO L. */
    struct td_tensor *a = mk(F64, 2, SHAPE(2, 2), VALS(2, 99, 1, 2));
    struct td_tensor *out[3] = {NULL, NULL, NULL};
    runn(TD_OP_eigh, 1, &a, 0, NULL, 2, out);
    expect_vals_tol(out[0], F64, 1, SHAPE(2), VALS(1, 3), 1e-14);
    double r = sqrt(0.5);
    assert_true(fabs(fabs(val(out[1], 0)) - r) < 1e-14 && fabs(fabs(val(out[1], 3)) - r) < 1e-14);
    assert_true(fabs(val(out[1], 0) + val(out[1], 2)) < 1e-14);  /* column 0 ~ (1, -1) */
    assert_true(fabs(val(out[1], 1) - val(out[1], 3)) < 1e-14);  /* column 1 ~ (1, 1) */
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(a);
    /* [[3, 0], [4, 0], [0, 0]] has one nonzero singular value 5 (3 x 2, full U 3 x 3). */
    struct td_tensor *m = mk(F64, 2, SHAPE(3, 2), VALS(3, 0, 4, 0, 0, 0));
    runn(TD_OP_svd, 1, &m, 0, NULL, 3, out);
    expect_shape(out[0], F64, 2, SHAPE(3, 3));
    expect_vals_tol(out[1], F64, 1, SHAPE(2), VALS(5, 0), 1e-14);
    expect_shape(out[2], F64, 2, SHAPE(2, 2));
    /* U[:, 0] = +-(0.6, 0.8, 0), Vh[0] = +-(1, 0), with matching signs. */
    double su = val(out[0], 0) / 0.6, sv = val(out[2], 0);
    assert_true(fabs(fabs(su) - 1) < 1e-14 && fabs(fabs(sv) - 1) < 1e-14 && su * sv > 0);
    assert_true(fabs(val(out[0], 3) - 0.8 * su) < 1e-14 && fabs(val(out[0], 6)) < 1e-14);
    for (int k = 0; k < 3; k++)
        td_tensor_release(out[k]);
    struct td_tensor *sv2 = run1(TD_OP_svdvals, 1, &m, 0, NULL);
    expect_vals_tol(sv2, F64, 1, SHAPE(2), VALS(5, 0), 1e-14);
    td_tensor_release(sv2);
    td_tensor_release(m);
}

static void test_errors(void **state)
{
    (void)state;
    /* Batch element 2 is singular: LU's U[1,1] is 0. */
    struct td_tensor *a = mk(F64, 3, SHAPE(3, 2, 2), VALS(1, 0, 0, 1, 2, 0, 0, 2, 1, 2, 2, 4));
    run_fail(TD_OP_inv, 1, &a, 0, NULL, 1, TD_EINVAL,
             "inv: batch element 2 is singular (U[1,1] = 0)");
    struct td_tensor *b = mk(F64, 2, SHAPE(2, 1), VALS(1, 1));
    struct td_tensor *in[2] = {a, b};
    run_fail(TD_OP_solve, 2, in, 0, NULL, 1, TD_EINVAL, "batch element 2 of A is singular");
    td_tensor_release(a);
    /* Not positive-definite: batch element 1 has a negative second leading minor. */
    struct td_tensor *c = mk(F32, 3, SHAPE(2, 2, 2), VALS(1, 0, 0, 1, 1, 2, 2, 1));
    run_fail(TD_OP_cholesky, 1, &c, 0, NULL, 1, TD_EINVAL,
             "cholesky: batch element 1 is not positive-definite (leading minor of order 2)");
    td_tensor_release(c);
    /* Shape and dtype errors. */
    struct td_tensor *r = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    run_fail(TD_OP_inv, 1, &r, 0, NULL, 1, TD_EINVAL, "square");
    struct td_tensor *v = mk(F64, 1, SHAPE(3), VALS(1, 2, 3));
    run_fail(TD_OP_det, 1, &v, 0, NULL, 1, TD_EINVAL, "at least 2 dims");
    struct td_tensor *sq = mk(F64, 2, SHAPE(2, 2), VALS(1, 0, 0, 1));
    struct td_tensor *in2[2] = {sq, v};
    run_fail(TD_OP_solve, 2, in2, 0, NULL, 1, TD_EINVAL, "do not match");
    struct td_tensor *f = mk(F32, 1, SHAPE(2), VALS(1, 2));
    struct td_tensor *in3[2] = {sq, f};
    run_fail(TD_OP_solve, 2, in3, 0, NULL, 1, TD_EINVAL, "same dtype");
    struct td_attr_arg bad = a_str("mode", "economic");
    run_fail(TD_OP_qr, 1, &r, 1, &bad, 2, TD_EINVAL, "mode must be");
    td_tensor_release(f);
    td_tensor_release(sq);
    td_tensor_release(v);
    td_tensor_release(r);
    td_tensor_release(b);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *a = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 7, 2, 6, 2, 1, 1, 3));
    struct td_tensor *b = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *in[2] = {a, b};
    fault_loop(TD_OP_inv, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_solve, 2, in, 0, NULL, 1);
    fault_loop(TD_OP_det, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_slogdet, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_cholesky, 1, &a, 0, NULL, 1);
    struct td_attr_arg mode = a_str("mode", "complete");
    fault_loop(TD_OP_qr, 1, &b, 1, &mode, 2);
    fault_loop(TD_OP_eigh, 1, &a, 0, NULL, 2);
    fault_loop(TD_OP_eigvalsh, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_svd, 1, &b, 0, NULL, 3);
    fault_loop(TD_OP_svdvals, 1, &b, 0, NULL, 1);
    td_tensor_release(b);
    td_tensor_release(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inv_solve_values, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_det_slogdet_values, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_cholesky_qr_values, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_eigh_svd_values, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_errors, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
