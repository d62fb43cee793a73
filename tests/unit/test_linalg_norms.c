/*
 * test_linalg_norms.c - ops_linalg_norms.c on hand-computed values and error paths, and the
 * derivatives of vector_norm, matrix_norm (fro), pinv and matrix_exp against float64 central
 * differences (gradcheck.h: first and second order, forward mode, forward over reverse).
 * Every test runs in the autograd leak-check fixture.
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"

#define F64 TD_FLOAT64
#define F32 TD_FLOAT32
#define C128 TD_COMPLEX128

static struct td_tensor *run_a(enum td_op op, struct td_tensor *x, int na,
                               const struct td_attr_arg *a)
{
    return run1(op, 1, &x, na, a);
}

static void expect_scalar(struct td_tensor *y, enum td_dtype dt, double want, double tol)
{
    expect_vals_tol(y, dt, 0, NULL, VALS(want), tol);
    td_tensor_release(y);
}

static void test_vector_norm_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 1, SHAPE(2), VALS(3, -4));
    struct { double ord, want; } t[] = {{2, 5}, {1, 7}, {INFINITY, 4}, {-INFINITY, 3}, {0, 2},
                                        {-1, 12.0 / 7}, {3, cbrt(91.0)}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct td_attr_arg a = a_float("ord", t[i].ord);
        expect_scalar(run_a(TD_OP_vector_norm, x, 1, &a), F64, t[i].want, 1e-14);
    }
    td_tensor_release(x);
    /* Scaling: neither 3e300^2 overflows nor 3e-300^2 underflows. */
    x = mk(F64, 1, SHAPE(2), VALS(3e300, 4e300));
    expect_scalar(run_a(TD_OP_vector_norm, x, 0, NULL), F64, 5e300, 1e286);
    td_tensor_release(x);
    x = mk(F64, 1, SHAPE(2), VALS(3e-300, 4e-300));
    expect_scalar(run_a(TD_OP_vector_norm, x, 0, NULL), F64, 5e-300, 1e-314);
    td_tensor_release(x);
    /* float32 near its limit: 5e37 is representable although 4e37^2 is not. */
    x = mk(F32, 1, SHAPE(2), VALS(3e37, 4e37));
    struct td_tensor *y = run_a(TD_OP_vector_norm, x, 0, NULL);
    assert_true(fabs(val(y, 0) - 5e37) < 5e37 * 1e-6);
    td_tensor_release(y);
    td_tensor_release(x);
    /* dims and keepdim: rows of [[3, 4, 0], [1, 1, 1]] -> [[5], [sqrt 3]]; complex |3+4i|. */
    x = mk(F64, 2, SHAPE(2, 3), VALS(3, 4, 0, 1, 1, 1));
    struct td_attr_arg a2[2] = {a_ints("dim", 1, SHAPE(1)), a_bool("keepdim", true)};
    y = run_a(TD_OP_vector_norm, x, 2, a2);
    expect_vals_tol(y, F64, 2, SHAPE(2, 1), VALS(5, sqrt(3.0)), 1e-15);
    td_tensor_release(y);
    td_tensor_release(x);
    x = mk(C128, 1, SHAPE(1), VALS(0));
    cset(x, 0, CMPLX(3, 4));
    expect_scalar(run_a(TD_OP_vector_norm, x, 0, NULL), F64, 5, 1e-15);
    td_tensor_release(x);
}

static void test_matrix_norm_values(void **state)
{
    (void)state;
    /* A = [[1, -2], [3, 4]]: A^T A = [[10, 10], [10, 20]], eigenvalues 15 +- sqrt(125);
     * nuc^2 = s1^2 + s2^2 + 2 |det A| = 30 + 20. */
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 2), VALS(1, -2, 3, 4));
    struct { const char *ord; double want; } t[] = {
        {"fro", sqrt(30.0)}, {"inf", 7}, {"-inf", 3}, {"1", 6}, {"-1", 4},
        {"2", sqrt(15 + sqrt(125.0))}, {"-2", sqrt(15 - sqrt(125.0))}, {"nuc", sqrt(50.0)}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct td_attr_arg a = a_str("ord", t[i].ord);
        expect_scalar(run_a(TD_OP_matrix_norm, x, 1, &a), F64, t[i].want, 1e-13);
        /* norm with the same ord on a 2-d input is the matrix norm */
        expect_scalar(run_a(TD_OP_norm, x, 1, &a), F64, t[i].want, 1e-13);
    }
    /* norm without ord: the 2-norm of all entries; ord "2" with one dim: vector norms. */
    expect_scalar(run_a(TD_OP_norm, x, 0, NULL), F64, sqrt(30.0), 1e-14);
    struct td_attr_arg a2[2] = {a_str("ord", "1"), a_ints("dim", 1, SHAPE(0))};
    struct td_tensor *y = run_a(TD_OP_norm, x, 2, a2);
    expect_vals_tol(y, F64, 1, SHAPE(2), VALS(4, 6), 1e-15);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_cond_rank_pinv_values(void **state)
{
    (void)state;
    struct td_tensor *d = mk(F64, 2, SHAPE(2, 2), VALS(2, 0, 0, 0.5));
    expect_scalar(run_a(TD_OP_cond, d, 0, NULL), F64, 4, 1e-14);
    struct td_attr_arg p = a_str("p", "fro");
    expect_scalar(run_a(TD_OP_cond, d, 1, &p), F64, 4.25, 1e-14);
    struct td_attr_arg pm = a_str("p", "-2");
    expect_scalar(run_a(TD_OP_cond, d, 1, &pm), F64, 0.25, 1e-14);
    td_tensor_release(d);
    /* [[1, 2], [2, 4]] = v v^T, v = (1, 2): rank 1, pinv = A / |v|^4 = A / 25, cond(1) inf. */
    struct td_tensor *s = mk(F64, 2, SHAPE(2, 2), VALS(1, 2, 2, 4));
    struct td_attr_arg p1 = a_str("p", "1");
    struct td_tensor *y = run_a(TD_OP_cond, s, 1, &p1);
    assert_true(isinf(val(y, 0)) && val(y, 0) > 0);
    td_tensor_release(y);
    y = run_a(TD_OP_matrix_rank, s, 0, NULL);
    assert_int_equal(y->dtype, TD_INT64);
    assert_int_equal(*(int64_t *)td_tensor_data(y), 1);
    td_tensor_release(y);
    y = run_a(TD_OP_pinv, s, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(0.04, 0.08, 0.08, 0.16), 1e-15);
    td_tensor_release(y);
    struct td_attr_arg h = a_bool("hermitian", true);
    y = run_a(TD_OP_pinv, s, 1, &h);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(0.04, 0.08, 0.08, 0.16), 1e-15);
    td_tensor_release(y);
    /* atol above the only singular value 5: rank 0, pinv 0. */
    struct td_attr_arg at = a_float("atol", 6);
    y = run_a(TD_OP_matrix_rank, s, 1, &at);
    assert_int_equal(*(int64_t *)td_tensor_data(y), 0);
    td_tensor_release(y);
    td_tensor_release(s);
    /* Rectangular: pinv of [[1, 0], [0, 2], [0, 0]] is [[1, 0, 0], [0, 0.5, 0]]. */
    struct td_tensor *r = mk(F64, 2, SHAPE(3, 2), VALS(1, 0, 0, 2, 0, 0));
    y = run_a(TD_OP_pinv, r, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 3), VALS(1, 0, 0, 0, 0.5, 0), 1e-15);
    td_tensor_release(y);
    td_tensor_release(r);
}

static void test_matrix_exp_values(void **state)
{
    (void)state;
    /* Nilpotent: exp([[0, 1], [0, 0]]) = I + N. */
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 2), VALS(0, 1, 0, 0));
    struct td_tensor *y = run_a(TD_OP_matrix_exp, x, 0, NULL);
    expect_vals_tol(y, F64, 2, SHAPE(2, 2), VALS(1, 1, 0, 1), 1e-15);
    td_tensor_release(y);
    td_tensor_release(x);
    /* A rotation generator of norm 10 (scaling and squaring) and a diagonal batch entry. */
    double t = 10;
    x = mk(F64, 3, SHAPE(2, 2, 2), VALS(0, -10, 10, 0, 1, 0, 0, 2));
    y = run_a(TD_OP_matrix_exp, x, 0, NULL);
    expect_vals_tol(y, F64, 3, SHAPE(2, 2, 2),
                    VALS(cos(t), -sin(t), sin(t), cos(t), exp(1.0), 0, 0, exp(2.0)), 1e-13);
    td_tensor_release(y);
    td_tensor_release(x);
    /* Complex scalar: exp(i pi) = -1. */
    x = mk(C128, 2, SHAPE(1, 1), VALS(0));
    cset(x, 0, CMPLX(0, M_PI));
    y = run_a(TD_OP_matrix_exp, x, 0, NULL);
    assert_true(cabs(cget(y, 0) + 1) < 1e-15);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *m = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_attr_arg o3 = a_str("ord", "3");
    run_fail(TD_OP_matrix_norm, 1, &m, 1, &o3, 1, TD_EINVAL, "matrix_norm: matrix ord");
    struct td_attr_arg d3 = a_ints("dim", 3, SHAPE(0, 1, 0));
    run_fail(TD_OP_norm, 1, &m, 1, &d3, 1, TD_EINVAL, "norm: dim must have 1 or 2");
    struct td_attr_arg dd = a_ints("dim", 2, SHAPE(1, -1));
    run_fail(TD_OP_vector_norm, 1, &m, 1, &dd, 1, TD_EINVAL, "appears more than once");
    struct td_attr_arg pf = a_str("p", "fro");
    run_fail(TD_OP_cond, 1, &m, 1, &pf, 1, TD_EINVAL, "cond: p 'fro' needs square");
    struct td_attr_arg h = a_bool("hermitian", true);
    run_fail(TD_OP_pinv, 1, &m, 1, &h, 1, TD_EINVAL, "pinv: hermitian needs square");
    run_fail(TD_OP_matrix_exp, 1, &m, 0, NULL, 1, TD_EINVAL, "square");
    struct td_attr_arg dt = a_dtype("dtype", C128);
    run_fail(TD_OP_vector_norm, 1, &m, 1, &dt, 1, TD_EINVAL, "does not match");
    struct td_tensor *v = mk(F64, 1, SHAPE(3), VALS(1, 2, 3));
    run_fail(TD_OP_matrix_norm, 1, &v, 0, NULL, 1, TD_EINVAL, "at least 2 dims");
    struct td_tensor *e = mk(F64, 1, SHAPE(0), VALS(0));
    struct td_attr_arg oi = a_float("ord", INFINITY);
    run_fail(TD_OP_vector_norm, 1, &e, 1, &oi, 1, TD_EINVAL, "empty");
    td_tensor_release(e);
    td_tensor_release(v);
    td_tensor_release(m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *a = mk(F64, 3, SHAPE(2, 2, 2), VALS(4, 7, 2, 6, 2, 1, 1, 3));
    struct td_attr_arg nuc = a_str("ord", "nuc"), p1 = a_str("p", "1");
    struct td_attr_arg h = a_bool("hermitian", true);
    fault_loop(TD_OP_vector_norm, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_matrix_norm, 1, &a, 1, &nuc, 1);
    fault_loop(TD_OP_cond, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_cond, 1, &a, 1, &p1, 1);
    fault_loop(TD_OP_matrix_rank, 1, &a, 1, &h, 1);
    fault_loop(TD_OP_pinv, 1, &a, 0, NULL, 1);
    fault_loop(TD_OP_matrix_exp, 1, &a, 0, NULL, 1);
    td_tensor_release(a);
}

/* ---- gradients ---- */

static struct gcase one(const char *name, enum td_op op, struct td_tensor *x, int na,
                        const struct td_attr_arg *a)
{
    struct gcase k = gc_case(name, op, 1, &x, na, a, 1);
    k.strict = true;
    return k;
}

static void run(struct gcase k)
{
    gc_check(&k);
}

static void test_grad_vector_norm(void **state)
{
    (void)state;
    enum td_dtype dts[2] = {F64, C128};
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = dts[t];
        struct td_attr_arg a1[1] = {a_float("ord", 2)};
        run(one("vector_norm 2", TD_OP_vector_norm, rnd(dt, 2, SHAPE(2, 3), 0.1), 1, a1));
        struct td_attr_arg a2[3] = {a_float("ord", 3), a_ints("dim", 1, SHAPE(1)),
                                    a_bool("keepdim", true)};
        run(one("vector_norm 3 dim", TD_OP_vector_norm, rnd(dt, 2, SHAPE(2, 3), 0.1), 3, a2));
        struct td_attr_arg a3[2] = {a_float("ord", INFINITY), a_ints("dim", 1, SHAPE(0))};
        run(one("vector_norm inf", TD_OP_vector_norm, rnd(dt, 2, SHAPE(3, 2), 0.1), 2, a3));
        struct td_attr_arg a4[1] = {a_float("ord", 0.5)};
        run(one("vector_norm 0.5", TD_OP_vector_norm, rnd(dt, 1, SHAPE(4), 1.5), 1, a4));
    }
}

static void test_grad_matrix_norm_fro(void **state)
{
    (void)state;
    struct td_attr_arg a[1] = {a_str("ord", "fro")};
    run(one("matrix_norm fro", TD_OP_matrix_norm, rnd(F64, 3, SHAPE(2, 2, 3), 0), 1, a));
    struct td_attr_arg b[2] = {a_str("ord", "fro"), a_ints("dim", 2, SHAPE(0, 2))};
    run(one("matrix_norm fro dims", TD_OP_matrix_norm, rnd(C128, 3, SHAPE(2, 2, 2), 0), 2, b));
}

static void test_grad_pinv(void **state)
{
    (void)state;
    /* Full rank: tall, wide and square (hermitian reads the lower triangle). */
    run(one("pinv tall", TD_OP_pinv, rnd(F64, 2, SHAPE(3, 2), 0.5), 0, NULL));
    run(one("pinv wide", TD_OP_pinv, rnd(C128, 2, SHAPE(2, 3), 0.5), 0, NULL));
    struct td_attr_arg h = a_bool("hermitian", true);
    run(one("pinv hermitian", TD_OP_pinv, gc_shifted(C128, 3, SHAPE(1, 2, 2), 2.0), 1, &h));
}

static void test_grad_matrix_exp(void **state)
{
    (void)state;
    run(one("matrix_exp", TD_OP_matrix_exp, rnd(F64, 2, SHAPE(3, 3), 0), 0, NULL));
    run(one("matrix_exp complex", TD_OP_matrix_exp, rnd(C128, 3, SHAPE(2, 2, 2), 0), 0, NULL));
    struct gcase k = one("matrix_exp scaled", TD_OP_matrix_exp,
                         gc_shifted(F64, 3, SHAPE(1, 2, 2), 2.0), 0, NULL);
    k.tol2 = 1e-5;
    run(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_vector_norm_values),
        AG_TEST(test_matrix_norm_values),
        AG_TEST(test_cond_rank_pinv_values),
        AG_TEST(test_matrix_exp_values),
        AG_TEST(test_errors),
        AG_TEST(test_alloc_failures),
        AG_TEST(test_grad_vector_norm),
        AG_TEST(test_grad_matrix_norm_fro),
        AG_TEST(test_grad_pinv),
        AG_TEST(test_grad_matrix_exp),
    };
    return AG_RUN_TESTS(tests);
}
