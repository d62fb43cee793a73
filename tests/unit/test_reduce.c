/*
 * test_reduce.c - reductions and scans against hand-computed results, including dtype rules,
 * NaN handling, non-contiguous inputs, zero-size and 0-d inputs, errors, and leak checks.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "td_internal.h"

#include "optest.h"

static struct td_tensor *x23(enum td_dtype dt)
{
    return mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
}

/* Runs op on x with the given attrs and checks the result. */
static void check(enum td_op op, struct td_tensor *x, int na, const struct td_attr_arg *at,
                  enum td_dtype dt, int ndim, const int64_t *shape, const double *want,
                  double tol)
{
    struct td_tensor *r = run1(op, 1, &x, na, at);
    expect_vals_tol(r, dt, ndim, shape, want, tol);
    td_tensor_release(r);
}

static void test_sum(void **state)
{
    (void)state;
    struct td_tensor *x = x23(TD_FLOAT32);
    check(TD_OP_sum, x, 0, NULL, TD_FLOAT32, 0, NULL, VALS(21), 0);
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    check(TD_OP_sum, x, 1, d0, TD_FLOAT32, 1, SHAPE(3), VALS(5, 7, 9), 0);
    struct td_attr_arg d1k[] = {a_ints("dim", 1, SHAPE(1)), a_bool("keepdim", true)};
    check(TD_OP_sum, x, 2, d1k, TD_FLOAT32, 2, SHAPE(2, 1), VALS(6, 15), 0);
    struct td_attr_arg dall[] = {a_ints("dim", 2, SHAPE(-1, 0)), a_bool("keepdim", true)};
    check(TD_OP_sum, x, 2, dall, TD_FLOAT32, 2, SHAPE(1, 1), VALS(21), 0);
    struct td_attr_arg dup[] = {a_ints("dim", 2, SHAPE(1, -1))};
    run_fail(TD_OP_sum, 1, &x, 1, dup, 1, TD_EINVAL, "appears more than once");
    struct td_attr_arg d3[] = {a_ints("dim", 1, SHAPE(3))};
    run_fail(TD_OP_sum, 1, &x, 1, d3, 1, TD_EINVAL, "sum: dim 3 out of range for 2-d tensor");

    /* Non-contiguous: transpose of x is [[1,4],[2,5],[3,6]]. */
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, tr);
    struct td_attr_arg e1[] = {a_ints("dim", 1, SHAPE(1))};
    check(TD_OP_sum, t, 1, e1, TD_FLOAT32, 1, SHAPE(3), VALS(5, 7, 9), 0);
    check(TD_OP_sum, t, 1, d0, TD_FLOAT32, 1, SHAPE(2), VALS(6, 15), 0);
    td_tensor_release(t);
    td_tensor_release(x);

    /* Integers and bool accumulate in int64; the dtype attr computes in that dtype. */
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(2), VALS(100, 100));
    check(TD_OP_sum, i, 0, NULL, TD_INT64, 0, NULL, VALS(200), 0);
    struct td_attr_arg i8[] = {a_dtype("dtype", TD_INT8)};
    check(TD_OP_sum, i, 1, i8, TD_INT8, 0, NULL, VALS(-56), 0);
    struct td_attr_arg f64[] = {a_dtype("dtype", TD_FLOAT64)};
    check(TD_OP_sum, i, 1, f64, TD_FLOAT64, 0, NULL, VALS(200), 0);
    td_tensor_release(i);
    struct td_tensor *b = mk(TD_BOOL, 1, SHAPE(4), VALS(1, 0, 1, 1));
    check(TD_OP_sum, b, 0, NULL, TD_INT64, 0, NULL, VALS(3), 0);
    td_tensor_release(b);
    struct td_tensor *big = mk(TD_INT64, 1, SHAPE(2), VALS(0, 0));
    ((int64_t *)td_tensor_data(big))[0] = INT64_MAX;
    ((int64_t *)td_tensor_data(big))[1] = 1;
    struct td_tensor *r = run1(TD_OP_sum, 1, &big, 0, NULL);
    assert_true(((int64_t *)td_tensor_data(r))[0] == INT64_MIN);   /* wraps like torch */
    td_tensor_release(r);
    td_tensor_release(big);

    /* float32 accumulates in double: naive float32 summation would give 0. */
    struct td_tensor *acc = mk(TD_FLOAT32, 1, SHAPE(6), VALS(1e8, 1, 1, 1, 1, -1e8));
    check(TD_OP_sum, acc, 0, NULL, TD_FLOAT32, 0, NULL, VALS(4), 0);
    td_tensor_release(acc);
    struct td_tensor *h = mk(TD_FLOAT16, 1, SHAPE(3), VALS(0.5, 0.25, 2048));
    check(TD_OP_sum, h, 0, NULL, TD_FLOAT16, 0, NULL, VALS(2048), 0);   /* 2048.75 rounds */
    td_tensor_release(h);
    struct td_tensor *cx = mk(TD_COMPLEX64, 1, SHAPE(2), VALS(1, 2));
    run_fail(TD_OP_sum, 1, &cx, 1, f64, 1, TD_EINVAL, "complex");
    td_tensor_release(cx);

    /* Zero-size and 0-d. */
    struct td_tensor *z = mk(TD_FLOAT32, 2, SHAPE(0, 3), NULL);
    check(TD_OP_sum, z, 1, d0, TD_FLOAT32, 1, SHAPE(3), VALS(0, 0, 0), 0);
    check(TD_OP_sum, z, 1, e1, TD_FLOAT32, 1, SHAPE(0), NULL, 0);
    check(TD_OP_prod, z, 1, d0, TD_FLOAT32, 1, SHAPE(3), VALS(1, 1, 1), 0);
    check(TD_OP_mean, z, 0, NULL, TD_FLOAT32, 0, NULL, VALS(NAN), 0);
    check(TD_OP_all, z, 0, NULL, TD_BOOL, 0, NULL, VALS(1), 0);
    check(TD_OP_any, z, 0, NULL, TD_BOOL, 0, NULL, VALS(0), 0);
    td_tensor_release(z);
    struct td_tensor *s = mk0(TD_INT16, 5);
    struct td_attr_arg m1[] = {a_ints("dim", 1, SHAPE(-1)), a_bool("keepdim", true)};
    check(TD_OP_sum, s, 1, m1, TD_INT64, 0, NULL, VALS(5), 0);
    run_fail(TD_OP_sum, 1, &s, 1, e1, 1, TD_EINVAL, "sum: dim 1 out of range for 0-d tensor");
    td_tensor_release(s);
}

static void test_prod_mean(void **state)
{
    (void)state;
    struct td_tensor *x = x23(TD_FLOAT64);
    check(TD_OP_prod, x, 0, NULL, TD_FLOAT64, 0, NULL, VALS(720), 0);
    struct td_attr_arg d1[] = {a_ints("dim", 1, SHAPE(1))};
    check(TD_OP_prod, x, 1, d1, TD_FLOAT64, 1, SHAPE(2), VALS(6, 120), 0);
    check(TD_OP_mean, x, 0, NULL, TD_FLOAT64, 0, NULL, VALS(3.5), 0);
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    check(TD_OP_mean, x, 1, d0, TD_FLOAT64, 1, SHAPE(3), VALS(2.5, 3.5, 4.5), 0);
    struct td_attr_arg f32[] = {a_dtype("dtype", TD_FLOAT32)};
    check(TD_OP_mean, x, 1, f32, TD_FLOAT32, 0, NULL, VALS(3.5), 0);
    struct td_attr_arg i32[] = {a_dtype("dtype", TD_INT32)};
    run_fail(TD_OP_mean, 1, &x, 1, i32, 1, TD_EINVAL, "floating or complex");
    td_tensor_release(x);

    struct td_tensor *i = mk(TD_INT8, 1, SHAPE(3), VALS(-2, 3, 4));
    check(TD_OP_prod, i, 0, NULL, TD_INT64, 0, NULL, VALS(-24), 0);
    run_fail(TD_OP_mean, 1, &i, 0, NULL, 1, TD_EINVAL, "not supported");
    td_tensor_release(i);
    struct td_tensor *b = mk(TD_BOOL, 1, SHAPE(2), VALS(1, 1));
    check(TD_OP_prod, b, 0, NULL, TD_INT64, 0, NULL, VALS(1), 0);
    td_tensor_release(b);

    /* complex64 [1+1j, 3-1j]: mean 2+0j, prod (1+1j)(3-1j) = 4+2j. */
    struct td_tensor *c = mk(TD_COMPLEX64, 1, SHAPE(2), VALS(0, 0));
    float *cp = td_tensor_data(c);
    cp[0] = 1, cp[1] = 1, cp[2] = 3, cp[3] = -1;
    struct td_tensor *r = run1(TD_OP_mean, 1, &c, 0, NULL);
    assert_int_equal(r->dtype, TD_COMPLEX64);
    double complex z = td__load_c128(td_tensor_data(r), r->dtype);
    assert_true(creal(z) == 2 && cimag(z) == 0);
    td_tensor_release(r);
    r = run1(TD_OP_prod, 1, &c, 0, NULL);
    z = td__load_c128(td_tensor_data(r), r->dtype);
    assert_true(creal(z) == 4 && cimag(z) == 2);
    td_tensor_release(r);
    td_tensor_release(c);
}

static void test_amax_argmax(void **state)
{
    (void)state;
    struct td_tensor *x = x23(TD_FLOAT32);
    check(TD_OP_amax, x, 0, NULL, TD_FLOAT32, 0, NULL, VALS(6), 0);
    struct td_attr_arg d1[] = {a_ints("dim", 1, SHAPE(1))};
    check(TD_OP_amin, x, 1, d1, TD_FLOAT32, 1, SHAPE(2), VALS(1, 4), 0);
    td_tensor_release(x);
    struct td_tensor *n = mk(TD_FLOAT64, 1, SHAPE(4), VALS(1, NAN, 3, NAN));
    check(TD_OP_amax, n, 0, NULL, TD_FLOAT64, 0, NULL, VALS(NAN), 0);
    check(TD_OP_amin, n, 0, NULL, TD_FLOAT64, 0, NULL, VALS(NAN), 0);
    check(TD_OP_argmax, n, 0, NULL, TD_INT64, 0, NULL, VALS(1), 0);
    check(TD_OP_argmin, n, 0, NULL, TD_INT64, 0, NULL, VALS(1), 0);
    td_tensor_release(n);

    /* int64 extremes compare exactly (a double would round them together). */
    struct td_tensor *big = mk(TD_INT64, 1, SHAPE(2), VALS(0, 0));
    ((int64_t *)td_tensor_data(big))[0] = INT64_MAX - 1;
    ((int64_t *)td_tensor_data(big))[1] = INT64_MAX;
    struct td_tensor *r = run1(TD_OP_amax, 1, &big, 0, NULL);
    assert_true(((int64_t *)td_tensor_data(r))[0] == INT64_MAX);
    td_tensor_release(r);
    check(TD_OP_argmax, big, 0, NULL, TD_INT64, 0, NULL, VALS(1), 0);
    td_tensor_release(big);
    struct td_tensor *bl = mk(TD_BOOL, 1, SHAPE(3), VALS(0, 1, 0));
    check(TD_OP_amax, bl, 0, NULL, TD_BOOL, 0, NULL, VALS(1), 0);
    run_fail(TD_OP_argmax, 1, &bl, 0, NULL, 1, TD_EINVAL, "not supported");
    td_tensor_release(bl);

    struct td_tensor *y = mk(TD_INT32, 2, SHAPE(2, 3), VALS(1, 5, 5, 7, 0, 7));
    check(TD_OP_argmax, y, 0, NULL, TD_INT64, 0, NULL, VALS(3), 0);
    struct td_attr_arg a1[] = {a_int("dim", 1)};
    check(TD_OP_argmax, y, 1, a1, TD_INT64, 1, SHAPE(2), VALS(1, 0), 0);
    struct td_attr_arg a0k[] = {a_int("dim", -2), a_bool("keepdim", true)};
    check(TD_OP_argmin, y, 2, a0k, TD_INT64, 2, SHAPE(1, 3), VALS(0, 1, 0), 0);
    struct td_attr_arg kd[] = {a_bool("keepdim", true)};
    check(TD_OP_argmin, y, 1, kd, TD_INT64, 2, SHAPE(1, 1), VALS(4), 0);
    /* Through a transposed view [[1,7],[5,0],[5,7]]: flat argmax is 1, per-row argmax. */
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &y, 2, tr);
    check(TD_OP_argmax, t, 0, NULL, TD_INT64, 0, NULL, VALS(1), 0);
    check(TD_OP_argmax, t, 1, a1, TD_INT64, 1, SHAPE(3), VALS(1, 0, 1), 0);
    check(TD_OP_amax, t, 1, d1, TD_INT32, 1, SHAPE(3), VALS(7, 5, 7), 0);
    td_tensor_release(t);
    td_tensor_release(y);

    struct td_tensor *z = mk(TD_FLOAT32, 2, SHAPE(0, 3), NULL);
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    run_fail(TD_OP_amax, 1, &z, 1, d0, 1, TD_EINVAL, "size 0");
    run_fail(TD_OP_amin, 1, &z, 0, NULL, 1, TD_EINVAL, "size 0");
    check(TD_OP_amax, z, 1, d1, TD_FLOAT32, 1, SHAPE(0), NULL, 0);
    run_fail(TD_OP_argmax, 1, &z, 0, NULL, 1, TD_EINVAL, "empty");
    struct td_attr_arg ad0[] = {a_int("dim", 0)};
    run_fail(TD_OP_argmin, 1, &z, 1, ad0, 1, TD_EINVAL, "size 0");
    td_tensor_release(z);
    struct td_tensor *s = mk0(TD_FLOAT32, -3);
    check(TD_OP_argmax, s, 0, NULL, TD_INT64, 0, NULL, VALS(0), 0);
    check(TD_OP_amin, s, 0, NULL, TD_FLOAT32, 0, NULL, VALS(-3), 0);
    td_tensor_release(s);
}

static void test_var_std(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    check(TD_OP_var, x, 0, NULL, TD_FLOAT32, 0, NULL, VALS(5.0 / 3.0), 1e-7);
    struct td_attr_arg c0[] = {a_float("correction", 0)};
    check(TD_OP_var, x, 1, c0, TD_FLOAT32, 0, NULL, VALS(1.25), 0);
    check(TD_OP_std, x, 1, c0, TD_FLOAT32, 0, NULL, VALS(1.1180339887498949), 1e-7);
    struct td_attr_arg c5[] = {a_float("correction", 5)};
    check(TD_OP_var, x, 1, c5, TD_FLOAT32, 0, NULL, VALS(INFINITY), 0);
    td_tensor_release(x);
    struct td_tensor *y = x23(TD_FLOAT64);
    struct td_attr_arg d1[] = {a_ints("dim", 1, SHAPE(1)), a_bool("keepdim", true)};
    check(TD_OP_var, y, 2, d1, TD_FLOAT64, 2, SHAPE(2, 1), VALS(1, 1), 1e-15);
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    check(TD_OP_std, y, 1, d0, TD_FLOAT64, 1, SHAPE(3),
          VALS(2.1213203435596424, 2.1213203435596424, 2.1213203435596424), 1e-15);
    td_tensor_release(y);
    struct td_tensor *one = mk(TD_FLOAT64, 1, SHAPE(1), VALS(3));
    check(TD_OP_var, one, 0, NULL, TD_FLOAT64, 0, NULL, VALS(NAN), 0);
    td_tensor_release(one);
    /* complex [1+1j, -1-1j]: mean 0, |x - mean|^2 = 2 each, 4 / (2 - 1) = 4, real dtype. */
    struct td_tensor *c = mk(TD_COMPLEX64, 1, SHAPE(2), VALS(0, 0));
    float *cp = td_tensor_data(c);
    cp[0] = 1, cp[1] = 1, cp[2] = -1, cp[3] = -1;
    check(TD_OP_var, c, 0, NULL, TD_FLOAT32, 0, NULL, VALS(4), 0);
    check(TD_OP_std, c, 0, NULL, TD_FLOAT32, 0, NULL, VALS(2), 0);
    td_tensor_release(c);
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(2), VALS(1, 2));
    run_fail(TD_OP_var, 1, &i, 0, NULL, 1, TD_EINVAL, "not supported");
    td_tensor_release(i);
}

static void test_all_any(void **state)
{
    (void)state;
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(3), VALS(1, 0, 2));
    check(TD_OP_all, i, 0, NULL, TD_BOOL, 0, NULL, VALS(0), 0);
    check(TD_OP_any, i, 0, NULL, TD_BOOL, 0, NULL, VALS(1), 0);
    td_tensor_release(i);
    struct td_tensor *m = mk(TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, NAN, 0, 1));
    struct td_attr_arg d1[] = {a_ints("dim", 1, SHAPE(1))};
    check(TD_OP_all, m, 1, d1, TD_BOOL, 1, SHAPE(2), VALS(1, 0), 0);
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    check(TD_OP_any, m, 1, d0, TD_BOOL, 1, SHAPE(2), VALS(1, 1), 0);
    td_tensor_release(m);
}

static void test_logsumexp(void **state)
{
    (void)state;
    struct td_attr_arg d0[] = {a_ints("dim", 1, SHAPE(0))};
    struct td_tensor *x = mk(TD_FLOAT64, 2, SHAPE(2, 2), VALS(0, 1000, 0, 1000));
    check(TD_OP_logsumexp, x, 1, d0, TD_FLOAT64, 1, SHAPE(2),
          VALS(0.69314718055994531, 1000.6931471805599), 1e-15);
    td_tensor_release(x);
    struct td_tensor *n = mk(TD_FLOAT32, 2, SHAPE(2, 2), VALS(-INFINITY, 1, -INFINITY, INFINITY));
    check(TD_OP_logsumexp, n, 1, d0, TD_FLOAT32, 1, SHAPE(2), VALS(-INFINITY, INFINITY), 0);
    td_tensor_release(n);
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(2), VALS(1, 2));
    /* log(e + e^2) = 2 + log(1 + 1/e) */
    check(TD_OP_logsumexp, i, 1, d0, TD_FLOAT32, 0, NULL, VALS(2.3132616875182228), 1e-7);
    run_fail(TD_OP_logsumexp, 1, &i, 0, NULL, 1, TD_EINVAL, "missing required attribute");
    td_tensor_release(i);
    struct td_tensor *z = mk(TD_FLOAT32, 1, SHAPE(0), NULL);
    check(TD_OP_logsumexp, z, 1, d0, TD_FLOAT32, 0, NULL, VALS(-INFINITY), 0);
    td_tensor_release(z);
}

static void test_cumsum_cumprod(void **state)
{
    (void)state;
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(3), VALS(1, 2, 3));
    struct td_attr_arg d0[] = {a_int("dim", 0)};
    check(TD_OP_cumsum, i, 1, d0, TD_INT64, 1, SHAPE(3), VALS(1, 3, 6), 0);
    struct td_attr_arg f[] = {a_int("dim", 0), a_dtype("dtype", TD_FLOAT64)};
    check(TD_OP_cumprod, i, 2, f, TD_FLOAT64, 1, SHAPE(3), VALS(1, 2, 6), 0);
    td_tensor_release(i);
    struct td_tensor *x = x23(TD_FLOAT32);
    struct td_attr_arg d1[] = {a_int("dim", -1)};
    check(TD_OP_cumsum, x, 1, d1, TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 3, 6, 4, 9, 15), 0);
    check(TD_OP_cumsum, x, 1, d0, TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 2, 3, 5, 7, 9), 0);
    check(TD_OP_cumprod, x, 1, d1, TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 2, 6, 4, 20, 120), 0);
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, tr);
    check(TD_OP_cumsum, t, 1, d0, TD_FLOAT32, 2, SHAPE(3, 2), VALS(1, 4, 3, 9, 6, 15), 0);
    struct td_attr_arg d2[] = {a_int("dim", 2)};
    run_fail(TD_OP_cumsum, 1, &x, 1, d2, 1, TD_EINVAL, "cumsum: dim 2 out of range");
    td_tensor_release(t);
    td_tensor_release(x);
    struct td_tensor *b = mk(TD_BOOL, 1, SHAPE(3), VALS(1, 0, 1));
    check(TD_OP_cumsum, b, 1, d0, TD_INT64, 1, SHAPE(3), VALS(1, 1, 2), 0);
    td_tensor_release(b);
    struct td_tensor *z = mk(TD_FLOAT64, 2, SHAPE(2, 0), NULL);
    check(TD_OP_cumsum, z, 1, d0, TD_FLOAT64, 2, SHAPE(2, 0), NULL, 0);
    td_tensor_release(z);
    struct td_tensor *s = mk0(TD_FLOAT64, 4);
    check(TD_OP_cumprod, s, 1, d1, TD_FLOAT64, 0, NULL, VALS(4), 0);
    td_tensor_release(s);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *x = x23(TD_FLOAT16);
    struct td_attr_arg d1[] = {a_ints("dim", 1, SHAPE(1))};
    fault_loop(TD_OP_sum, 1, &x, 1, d1, 1);
    fault_loop(TD_OP_var, 1, &x, 0, NULL, 1);
    struct td_attr_arg a1[] = {a_int("dim", 1)};
    fault_loop(TD_OP_argmax, 1, &x, 1, a1, 1);
    fault_loop(TD_OP_cumsum, 1, &x, 1, a1, 1);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sum, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_prod_mean, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_amax_argmax, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_var_std, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_all_any, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_logsumexp, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_cumsum_cumprod, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
