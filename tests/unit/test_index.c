/*
 * test_index.c - gather, scatter, index_select and masked_fill against hand-computed
 * results; every bad index value is an error; non-contiguous, zero-size and 0-d inputs.
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

static struct td_tensor *call2(enum td_op op, struct td_tensor *a, struct td_tensor *b, int na,
                               const struct td_attr_arg *at)
{
    struct td_tensor *in[2] = {a, b};
    return run1(op, 2, in, na, at);
}

static void fail2(enum td_op op, struct td_tensor *a, struct td_tensor *b, int na,
                  const struct td_attr_arg *at, const char *msg)
{
    struct td_tensor *in[2] = {a, b};
    run_fail(op, 2, in, na, at, 1, TD_EINVAL, msg);
}

static void test_gather(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *i = mk(TD_INT64, 2, SHAPE(2, 2), VALS(0, 0, 1, 0));
    struct td_attr_arg d1[] = {a_int("dim", 1)}, d0[] = {a_int("dim", 0)};
    struct td_tensor *r = call2(TD_OP_gather, x, i, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 1, 4, 3));
    td_tensor_release(r);
    td_tensor_release(i);
    i = mk(TD_INT64, 2, SHAPE(2, 2), VALS(0, 1, 1, 0));
    r = call2(TD_OP_gather, x, i, 1, d0);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 4, 3, 2));
    td_tensor_release(r);
    td_tensor_release(i);
    /* index smaller than x */
    i = mk(TD_INT64, 2, SHAPE(1, 1), VALS(1));
    r = call2(TD_OP_gather, x, i, 1, d0);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(1, 1), VALS(3));
    td_tensor_release(r);
    td_tensor_release(i);
    /* transposed x: [[1,3],[2,4]] */
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, tr);
    i = mk(TD_INT64, 2, SHAPE(2, 1), VALS(1, 0));
    r = call2(TD_OP_gather, t, i, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 1), VALS(3, 2));
    td_tensor_release(r);
    td_tensor_release(i);
    td_tensor_release(t);
    /* zero-size index */
    i = mk(TD_INT64, 2, SHAPE(2, 0), NULL);
    r = call2(TD_OP_gather, x, i, 1, d1);
    expect_shape(r, TD_FLOAT32, 2, SHAPE(2, 0));
    td_tensor_release(r);
    td_tensor_release(i);
    td_tensor_release(x);

    /* errors */
    x = mk(TD_INT32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    i = mk(TD_INT64, 2, SHAPE(1, 2), VALS(0, 7));
    fail2(TD_OP_gather, x, i, 1, d1, "gather: index 7 out of range for dim 1 of size 3");
    td_tensor_release(i);
    i = mk(TD_INT64, 2, SHAPE(1, 2), VALS(-1, 0));
    fail2(TD_OP_gather, x, i, 1, d1, "index -1 out of range");
    td_tensor_release(i);
    i = mk(TD_INT32, 2, SHAPE(1, 2), VALS(0, 0));
    fail2(TD_OP_gather, x, i, 1, d1, "int64");
    td_tensor_release(i);
    i = mk(TD_INT64, 1, SHAPE(2), VALS(0, 0));
    fail2(TD_OP_gather, x, i, 1, d1, "dims");
    td_tensor_release(i);
    i = mk(TD_INT64, 2, SHAPE(3, 1), VALS(0, 0, 0));
    fail2(TD_OP_gather, x, i, 1, d1, "index size 3 > input size 2 at dim 0");
    struct td_attr_arg d2[] = {a_int("dim", 2)};
    fail2(TD_OP_gather, x, i, 1, d2, "out of range");
    td_tensor_release(i);
    td_tensor_release(x);

    /* 0-d */
    x = mk0(TD_FLOAT64, 9);
    i = mk0(TD_INT64, 0);
    r = call2(TD_OP_gather, x, i, 1, d0);
    expect_vals(r, TD_FLOAT64, 0, NULL, VALS(9));
    td_tensor_release(r);
    td_tensor_release(i);
    i = mk0(TD_INT64, 1);
    fail2(TD_OP_gather, x, i, 1, d0, "index 1 out of range for dim 0 of size 1");
    td_tensor_release(i);
    td_tensor_release(x);
}

static struct td_tensor *scatter3(struct td_tensor *x, struct td_tensor *i, struct td_tensor *s,
                                  int na, const struct td_attr_arg *at)
{
    struct td_tensor *in[3] = {x, i, s};
    return run1(TD_OP_scatter, 3, in, na, at);
}

static void test_scatter(void **state)
{
    (void)state;
    /* torch docs: zeros(3,5).scatter(0, [[0,1,2,0]], [[1,2,3,4,5]]) */
    struct td_tensor *x =
        mk(TD_FLOAT32, 2, SHAPE(3, 5), VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    struct td_tensor *i = mk(TD_INT64, 2, SHAPE(1, 4), VALS(0, 1, 2, 0));
    struct td_tensor *s = mk(TD_FLOAT32, 2, SHAPE(1, 5), VALS(1, 2, 3, 4, 5));
    struct td_attr_arg d0[] = {a_int("dim", 0)};
    struct td_tensor *r = scatter3(x, i, s, 1, d0);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 5),
                VALS(1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0));
    expect_vals(x, TD_FLOAT32, 2, SHAPE(3, 5), VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    td_tensor_release(r);
    td_tensor_release(i);
    /* errors: bad value (checked before any write), src dtype, reduce name, index > src */
    struct td_tensor *in[3];
    i = mk(TD_INT64, 2, SHAPE(1, 2), VALS(0, 3));
    in[0] = x, in[1] = i, in[2] = s;
    run_fail(TD_OP_scatter, 3, in, 1, d0, 1, TD_EINVAL,
             "scatter: index 3 out of range for dim 0 of size 3");
    struct td_attr_arg bad[] = {a_int("dim", 0), a_str("reduce", "max")};
    td_tensor_release(i);
    i = mk(TD_INT64, 2, SHAPE(1, 2), VALS(0, 1));
    in[1] = i;
    run_fail(TD_OP_scatter, 3, in, 2, bad, 1, TD_EINVAL, "reduce must be");
    struct td_tensor *s64 = mk(TD_FLOAT64, 2, SHAPE(1, 5), VALS(1, 2, 3, 4, 5));
    in[2] = s64;
    run_fail(TD_OP_scatter, 3, in, 1, d0, 1, TD_EINVAL, "src has dtype float64");
    td_tensor_release(s64);
    struct td_tensor *small = mk(TD_FLOAT32, 2, SHAPE(1, 1), VALS(1));
    in[2] = small;
    run_fail(TD_OP_scatter, 3, in, 1, d0, 1, TD_EINVAL, "index size 2 > src size 1 at dim 1");
    td_tensor_release(small);
    td_tensor_release(i);
    td_tensor_release(s);
    td_tensor_release(x);

    /* reduce add / multiply with repeated indices */
    x = mk(TD_INT64, 1, SHAPE(4), VALS(1, 1, 1, 1));
    i = mk(TD_INT64, 1, SHAPE(4), VALS(0, 1, 0, 1));
    s = mk(TD_INT64, 1, SHAPE(4), VALS(1, 2, 3, 4));
    struct td_attr_arg add[] = {a_int("dim", 0), a_str("reduce", "add")};
    r = scatter3(x, i, s, 2, add);
    expect_vals(r, TD_INT64, 1, SHAPE(4), VALS(5, 7, 1, 1));
    td_tensor_release(r);
    td_tensor_release(x);
    x = mk(TD_INT64, 1, SHAPE(4), VALS(2, 2, 2, 2));
    struct td_attr_arg mul[] = {a_int("dim", 0), a_str("reduce", "multiply")};
    r = scatter3(x, i, s, 2, mul);
    expect_vals(r, TD_INT64, 1, SHAPE(4), VALS(6, 16, 2, 2));
    td_tensor_release(r);
    td_tensor_release(x);
    td_tensor_release(s);
    td_tensor_release(i);

    /* dim 1 into a transposed x: x^T = [[0,2],[1,3]] */
    struct td_tensor *b = mk(TD_FLOAT64, 2, SHAPE(2, 2), VALS(0, 1, 2, 3));
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    x = run1(TD_OP_transpose, 1, &b, 2, tr);
    i = mk(TD_INT64, 2, SHAPE(2, 1), VALS(1, 0));
    s = mk(TD_FLOAT64, 2, SHAPE(2, 1), VALS(9, 8));
    struct td_attr_arg d1[] = {a_int("dim", 1), a_str("reduce", "add")};
    r = scatter3(x, i, s, 2, d1);
    expect_vals(r, TD_FLOAT64, 2, SHAPE(2, 2), VALS(0, 11, 9, 3));
    td_tensor_release(r);
    td_tensor_release(s);
    td_tensor_release(i);
    td_tensor_release(x);
    td_tensor_release(b);
}

static void test_index_select(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *i = mk(TD_INT32, 1, SHAPE(3), VALS(2, 0, 2));
    struct td_attr_arg d1[] = {a_int("dim", 1)}, d0[] = {a_int("dim", 0)};
    struct td_tensor *r = call2(TD_OP_index_select, x, i, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 3), VALS(3, 1, 3, 6, 4, 6));
    td_tensor_release(r);
    td_tensor_release(i);
    i = mk(TD_INT64, 1, SHAPE(1), VALS(1));
    r = call2(TD_OP_index_select, x, i, 1, d0);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(1, 3), VALS(4, 5, 6));
    td_tensor_release(r);
    /* transposed x [[1,4],[2,5],[3,6]], rows picked by dim 1 index [1] */
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, tr);
    r = call2(TD_OP_index_select, t, i, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 1), VALS(4, 5, 6));
    td_tensor_release(r);
    td_tensor_release(t);
    td_tensor_release(i);
    i = mk(TD_INT64, 1, SHAPE(0), NULL);
    r = call2(TD_OP_index_select, x, i, 1, d1);
    expect_shape(r, TD_FLOAT32, 2, SHAPE(2, 0));
    td_tensor_release(r);
    td_tensor_release(i);
    i = mk(TD_INT64, 1, SHAPE(1), VALS(-1));
    fail2(TD_OP_index_select, x, i, 1, d0,
          "index_select: index -1 out of range for dim 0 of size 2");
    td_tensor_release(i);
    i = mk(TD_INT64, 1, SHAPE(1), VALS(3));
    fail2(TD_OP_index_select, x, i, 1, d1, "index 3 out of range for dim 1 of size 3");
    td_tensor_release(i);
    i = mk(TD_FLOAT32, 1, SHAPE(1), VALS(0));
    fail2(TD_OP_index_select, x, i, 1, d0, "int32 or int64");
    td_tensor_release(i);
    i = mk(TD_INT64, 2, SHAPE(1, 1), VALS(0));
    fail2(TD_OP_index_select, x, i, 1, d0, "1-d");
    td_tensor_release(i);
    td_tensor_release(x);
    x = mk0(TD_INT8, 3);
    i = mk(TD_INT64, 1, SHAPE(1), VALS(0));
    r = call2(TD_OP_index_select, x, i, 1, d0);
    expect_vals(r, TD_INT8, 0, NULL, VALS(3));
    td_tensor_release(r);
    td_tensor_release(i);
    td_tensor_release(x);
}

static void test_masked_fill(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *m = mk(TD_BOOL, 1, SHAPE(3), VALS(1, 0, 1));
    struct td_attr_arg v0[] = {a_scalar("value", TD_SCALAR_FLOAT, -0.5, 0)};
    struct td_tensor *r = call2(TD_OP_masked_fill, x, m, 1, v0);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 3), VALS(-0.5, 2, -0.5, -0.5, 5, -0.5));
    td_tensor_release(r);
    /* transposed x [[1,4],[2,5],[3,6]] with a [3,1] mask */
    struct td_attr_arg tr[] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, tr);
    struct td_tensor *m31 = mk(TD_BOOL, 2, SHAPE(3, 1), VALS(0, 1, 0));
    struct td_attr_arg vi[] = {a_scalar("value", TD_SCALAR_INT, 7, 0)};
    r = call2(TD_OP_masked_fill, t, m31, 1, vi);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 2), VALS(1, 4, 7, 7, 3, 6));
    td_tensor_release(r);
    struct td_attr_arg vc[] = {a_scalar("value", TD_SCALAR_COMPLEX, 1, 1)};
    fail2(TD_OP_masked_fill, t, m31, 1, vc, "complex value");
    fail2(TD_OP_masked_fill, x, m31, 1, vi, "does not broadcast");
    struct td_tensor *mi = mk(TD_INT32, 1, SHAPE(3), VALS(1, 0, 1));
    fail2(TD_OP_masked_fill, x, mi, 1, vi, "mask must be bool");
    td_tensor_release(mi);
    td_tensor_release(m31);
    td_tensor_release(t);
    td_tensor_release(x);
    /* an int tensor takes a float value truncated */
    x = mk(TD_INT32, 1, SHAPE(3), VALS(1, 2, 3));
    struct td_attr_arg vf[] = {a_scalar("value", TD_SCALAR_FLOAT, 2.7, 0)};
    r = call2(TD_OP_masked_fill, x, m, 1, vf);
    expect_vals(r, TD_INT32, 1, SHAPE(3), VALS(2, 2, 2));
    td_tensor_release(r);
    td_tensor_release(x);
    /* complex x, complex value: check the element written */
    x = mk(TD_COMPLEX64, 1, SHAPE(3), VALS(1, 2, 3));
    r = call2(TD_OP_masked_fill, x, m, 1, vc);
    double complex z0 = td__load_c128(elem(r, 0), r->dtype);
    double complex z1 = td__load_c128(elem(r, 1), r->dtype);
    assert_true(creal(z0) == 1 && cimag(z0) == 1);
    assert_true(creal(z1) == 2 && cimag(z1) == 0);
    td_tensor_release(r);
    td_tensor_release(x);
    /* zero-size and 0-d */
    x = mk(TD_FLOAT32, 2, SHAPE(0, 3), NULL);
    r = call2(TD_OP_masked_fill, x, m, 1, v0);
    expect_shape(r, TD_FLOAT32, 2, SHAPE(0, 3));
    td_tensor_release(r);
    td_tensor_release(x);
    td_tensor_release(m);
    x = mk0(TD_FLOAT64, 3);
    m = mk0(TD_BOOL, 1);
    r = call2(TD_OP_masked_fill, x, m, 1, v0);
    expect_vals(r, TD_FLOAT64, 0, NULL, VALS(-0.5));
    td_tensor_release(r);
    td_tensor_release(m);
    td_tensor_release(x);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *i = mk(TD_INT64, 2, SHAPE(2, 2), VALS(0, 0, 1, 0));
    struct td_tensor *m = mk(TD_BOOL, 1, SHAPE(2), VALS(1, 0));
    struct td_tensor *i1 = mk(TD_INT64, 1, SHAPE(2), VALS(1, 0));
    struct td_attr_arg d1[] = {a_int("dim", 1), a_str("reduce", "add")};
    struct td_tensor *in[3] = {x, i, x};
    fault_loop(TD_OP_gather, 2, in, 1, d1, 1);
    fault_loop(TD_OP_scatter, 3, in, 2, d1, 1);
    in[1] = i1;
    fault_loop(TD_OP_index_select, 2, in, 1, d1, 1);
    td_tensor_release(i1);
    struct td_attr_arg v[] = {a_scalar("value", TD_SCALAR_INT, 3, 0)};
    in[1] = m;
    fault_loop(TD_OP_masked_fill, 2, in, 1, v, 1);
    td_tensor_release(m);
    td_tensor_release(i);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gather, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_scatter, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_index_select, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_masked_fill, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
