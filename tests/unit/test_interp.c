/*
 * test_interp.c - the interpolation ops (ops_interp.c) on hand-computed values: linear with
 * and without align_corners, nearest versus nearest-exact, the scale factor's role in the
 * index rule, area windows, bicubic's Keys weights, the antialiased (Pillow) weights, a
 * non-contiguous input, the errors a bad request gets and allocation failures. Then the
 * VJPs and JVPs of bilinear, bicubic (plain and antialiased), area and nearest, and of their
 * *_backward ops, against float64 central differences with gradcheck.h, second order
 * included.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define F64 TD_FLOAT64
#define F32 TD_FLOAT32

static void test_linear_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 3, SHAPE(1, 1, 2), VALS(1, 3));
    /* align_corners=false, 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25. */
    struct td_attr_arg a[1] = {a_ints("size", 1, SHAPE(4))};
    struct td_tensor *y = run1(TD_OP_upsample_linear, 1, &x, 1, a);
    expect_vals_tol(y, F64, 3, SHAPE(1, 1, 4), VALS(1, 1.5, 2.5, 3), 1e-15);
    td_tensor_release(y);
    /* align_corners=true: sources 0, 1/3, 2/3, 1. */
    struct td_attr_arg b[2] = {a_ints("size", 1, SHAPE(4)), a_bool("align_corners", true)};
    y = run1(TD_OP_upsample_linear, 1, &x, 2, b);
    expect_vals_tol(y, F64, 3, SHAPE(1, 1, 4), VALS(1, 5.0 / 3, 7.0 / 3, 3), 1e-15);
    td_tensor_release(y);
    /* With scale_0 = 1.5 given (size 3), the scale is 1/1.5: sources 0, 0.5, 1.1667. */
    struct td_tensor *x3 = mk(F64, 3, SHAPE(1, 1, 2), VALS(0, 6));
    struct td_attr_arg c[2] = {a_ints("size", 1, SHAPE(3)), a_float("scale_0", 1.5)};
    y = run1(TD_OP_upsample_linear, 1, &x3, 2, c);
    expect_vals_tol(y, F64, 3, SHAPE(1, 1, 3), VALS(0, 3, 6), 1e-14);
    td_tensor_release(y);
    /* 2x2 bilinear, align_corners: the centre of a 3x3 output is the mean. */
    struct td_tensor *x2 = mk(F32, 4, SHAPE(1, 1, 2, 2), VALS(1, 2, 3, 4));
    struct td_attr_arg d[2] = {a_ints("size", 2, SHAPE(3, 3)), a_bool("align_corners", true)};
    y = run1(TD_OP_upsample_linear, 1, &x2, 2, d);
    expect_vals_tol(y, F32, 4, SHAPE(1, 1, 3, 3), VALS(1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4), 1e-6);
    td_tensor_release(y);
    struct td_tensor *all[] = {x, x3, x2};
    release_all(all, 3);
}

static void test_nearest_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 3, SHAPE(1, 1, 3), VALS(10, 20, 30));
    /* 3 -> 5, scale 0.6: floor(0, .6, 1.2, 1.8, 2.4) = 0 0 1 1 2. */
    struct td_attr_arg a[1] = {a_ints("size", 1, SHAPE(5))};
    struct td_tensor *y = run1(TD_OP_upsample_nearest, 1, &x, 1, a);
    expect_vals(y, F64, 3, SHAPE(1, 1, 5), VALS(10, 10, 20, 20, 30));
    td_tensor_release(y);
    /* nearest-exact: floor(0.3, 0.9, 1.5, 2.1, 2.7) = 0 0 1 2 2. */
    struct td_attr_arg b[2] = {a_ints("size", 1, SHAPE(5)), a_bool("exact", true)};
    y = run1(TD_OP_upsample_nearest, 1, &x, 2, b);
    expect_vals(y, F64, 3, SHAPE(1, 1, 5), VALS(10, 10, 20, 30, 30));
    td_tensor_release(y);
    /* scale_0 = 1.4 given for size 4 (3 * 1.4 = 4.2): floor(o / 1.4) = 0 0 1 2. */
    struct td_attr_arg c[2] = {a_ints("size", 1, SHAPE(4)), a_float("scale_0", 1.4)};
    y = run1(TD_OP_upsample_nearest, 1, &x, 2, c);
    expect_vals(y, F64, 3, SHAPE(1, 1, 4), VALS(10, 10, 20, 30));
    td_tensor_release(y);
    /* Its adjoint sums the cotangent at the sources. */
    struct td_tensor *g = mk(F64, 3, SHAPE(1, 1, 4), VALS(1, 2, 3, 4));
    struct td_attr_arg cb[2] = {a_ints("input_size", 1, SHAPE(3)), a_float("scale_0", 1.4)};
    y = run1(TD_OP_upsample_nearest_backward, 1, &g, 2, cb);
    expect_vals(y, F64, 3, SHAPE(1, 1, 3), VALS(3, 3, 4));
    td_tensor_release(y);
    td_tensor_release(g);
    td_tensor_release(x);
}

static void test_area_values(void **state)
{
    (void)state;
    /* 5 -> 2: windows [0, 3) and [2, 5); 2-d 2x4 -> 1x3: columns [0,2), [1,3), [2,4). */
    struct td_tensor *x = mk(F64, 3, SHAPE(1, 1, 5), VALS(1, 2, 3, 4, 5));
    struct td_attr_arg a[1] = {a_ints("output_size", 1, SHAPE(2))};
    struct td_tensor *y = run1(TD_OP_adaptive_avg_pool, 1, &x, 1, a);
    expect_vals_tol(y, F64, 3, SHAPE(1, 1, 2), VALS(2, 4), 1e-15);
    td_tensor_release(y);
    struct td_tensor *x2 = mk(F64, 3, SHAPE(1, 2, 4), VALS(1, 2, 3, 4, 5, 6, 7, 8));
    struct td_attr_arg b[1] = {a_ints("output_size", 2, SHAPE(1, 3))};
    y = run1(TD_OP_adaptive_avg_pool, 1, &x2, 1, b);
    expect_vals_tol(y, F64, 3, SHAPE(1, 1, 3), VALS(3.5, 4.5, 5.5), 1e-15);
    td_tensor_release(y);
    /* Backward: g = [1, 1, 1] spreads 1/4 per window element: [.25, .5, .5, .25] per row. */
    struct td_tensor *g = mk(F64, 3, SHAPE(1, 1, 3), VALS(1, 1, 1));
    struct td_attr_arg c[1] = {a_ints("input_size", 2, SHAPE(2, 4))};
    y = run1(TD_OP_adaptive_avg_pool_backward, 1, &g, 1, c);
    expect_vals_tol(y, F64, 3, SHAPE(1, 2, 4), VALS(.25, .5, .5, .25, .25, .5, .5, .25),
                    1e-15);
    td_tensor_release(y);
    struct td_tensor *all[] = {x, x2, g};
    release_all(all, 3);
}

/* Keys' kernel with parameter a at distance x. */
static double keys(double x, double a)
{
    x = fabs(x);
    if (x <= 1)
        return (a + 2) * x * x * x - (a + 3) * x * x + 1;
    if (x < 2)
        return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
    return 0;
}

static void test_bicubic_values(void **state)
{
    (void)state;
    /* 1x4 -> 1x2, align_corners=false: scale 2, sources 0.5 and 2.5 (t = 0.5), taps at
     * -1..2 (clamped to 0) and 1..4 (clamped to 3), Keys weights at 1.5, .5, .5, 1.5. */
    struct td_tensor *x = mk(F64, 4, SHAPE(1, 1, 1, 4), VALS(1, 2, 4, 8));
    struct td_attr_arg a[1] = {a_ints("size", 2, SHAPE(1, 2))};
    struct td_tensor *y = run1(TD_OP_upsample_bicubic, 1, &x, 1, a);
    double w0 = keys(1.5, -0.75), w1 = keys(0.5, -0.75);
    double want[2] = {w0 * 1 + w1 * 1 + w1 * 2 + w0 * 4, w0 * 2 + w1 * 4 + w1 * 8 + w0 * 8};
    expect_vals_tol(y, F64, 4, SHAPE(1, 1, 1, 2), want, 1e-14);
    td_tensor_release(y);
    /* Antialiased bilinear 1x4 -> 1x2 (scale 2, support 2): weights 3/7 3/7 1/7 and
     * 1/7 3/7 3/7, as Pillow computes them. */
    struct td_attr_arg b[2] = {a_ints("size", 2, SHAPE(1, 2)), a_bool("antialias", true)};
    struct td_tensor *x1 = mk(F64, 4, SHAPE(1, 1, 1, 4), VALS(1, 2, 3, 4));
    y = run1(TD_OP_upsample_linear, 1, &x1, 2, b);
    expect_vals_tol(y, F64, 4, SHAPE(1, 1, 1, 2), VALS(12.0 / 7, 23.0 / 7), 1e-14);
    td_tensor_release(y);
    /* Antialiased bicubic 1x4 -> 1x1 (scale 4, support 8): center 2, taps 0..3 at
     * distances (j - 1.5) / 4, Keys a = -0.5, normalised. */
    y = run1(TD_OP_upsample_bicubic, 1, &x1, 2,
             (struct td_attr_arg[]){a_ints("size", 2, SHAPE(1, 1)), a_bool("antialias", true)});
    double s = 0, ws = 0;
    for (int j = 0; j < 4; j++) {
        double w = keys((j - 1.5) / 4, -0.5);
        s += w * (j + 1);
        ws += w;
    }
    expect_vals_tol(y, F64, 4, SHAPE(1, 1, 1, 1), (double[]){s / ws}, 1e-14);
    td_tensor_release(y);
    td_tensor_release(x1);
    td_tensor_release(x);
}

static void test_noncontiguous_input(void **state)
{
    (void)state;
    /* A transposed view of [[1, 2], [3, 4]] is [[1, 3], [2, 4]]; 2x2 -> 2x1 averages the
     * columns with antialias off and align_corners=false (source 0.5 in width). */
    struct td_tensor *base = mk(F64, 4, SHAPE(1, 1, 2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *t = NULL;
    struct td_error err;
    assert_int_equal(td_tensor_new_view(base, 4, SHAPE(1, 1, 2, 2), SHAPE(4, 4, 1, 2), 0, &t,
                                        &err),
                     0);
    struct td_attr_arg a[1] = {a_ints("size", 2, SHAPE(2, 1))};
    struct td_tensor *y = run1(TD_OP_upsample_linear, 1, &t, 1, a);
    expect_vals_tol(y, F64, 4, SHAPE(1, 1, 2, 1), VALS(2, 3), 1e-15);
    td_tensor_release(y);
    td_tensor_release(t);
    td_tensor_release(base);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *x3 = mk(F64, 3, SHAPE(1, 1, 2), VALS(1, 2));
    struct td_tensor *x4 = mk(F64, 4, SHAPE(1, 1, 1, 2), VALS(1, 2));
    struct td_attr_arg s1[1] = {a_ints("size", 1, SHAPE(3))};
    struct td_attr_arg s2[1] = {a_ints("size", 2, SHAPE(3, 3))};
    run_fail(TD_OP_upsample_bicubic, 1, &x3, 1, s1, 1, TD_EINVAL, "upsample_bicubic");
    run_fail(TD_OP_upsample_linear, 1, &x3, 1, s2, 1, TD_EINVAL, "expected a 4-d input");
    run_fail(TD_OP_upsample_nearest, 1, &x4, 1, s1, 1, TD_EINVAL, "upsample_nearest");
    struct td_attr_arg aa[2] = {a_ints("size", 1, SHAPE(3)), a_bool("antialias", true)};
    run_fail(TD_OP_upsample_linear, 1, &x3, 2, aa, 1, TD_EINVAL, "antialias");
    struct td_attr_arg z[1] = {a_ints("size", 1, SHAPE(0))};
    run_fail(TD_OP_upsample_linear, 1, &x3, 1, z, 1, TD_EINVAL, "greater than 0");
    struct td_attr_arg sc[2] = {a_ints("size", 1, SHAPE(3)), a_float("scale_0", -2)};
    run_fail(TD_OP_upsample_linear, 1, &x3, 2, sc, 1, TD_EINVAL, "scale_0");
    struct td_attr_arg sc1[2] = {a_ints("size", 1, SHAPE(3)), a_float("scale_1", 2)};
    run_fail(TD_OP_upsample_nearest, 1, &x3, 2, sc1, 1, TD_EINVAL, "scale_1");
    struct td_attr_arg bi[1] = {a_ints("input_size", 1, SHAPE(-1))};
    run_fail(TD_OP_upsample_linear_backward, 1, &x3, 1, bi, 1, TD_EINVAL, "greater than 0");
    struct td_attr_arg p3[1] = {a_ints("output_size", 3, SHAPE(1, 1, 1))};
    run_fail(TD_OP_adaptive_avg_pool, 1, &x3, 1, p3, 1, TD_EINVAL, "adaptive_avg_pool");
    /* A scale factor far from size/in must not overflow an index computation. */
    struct td_attr_arg big[3] = {a_ints("size", 2, SHAPE(1, 5)), a_float("scale_1", 1e-300),
                                 a_bool("antialias", true)};
    struct td_tensor *y = run1(TD_OP_upsample_bicubic, 1, &x4, 3, big);
    td_tensor_release(y);
    struct td_attr_arg tiny[2] = {a_ints("size", 2, SHAPE(1, 5)), a_float("scale_1", 1e-300)};
    y = run1(TD_OP_upsample_nearest, 1, &x4, 2, tiny);
    td_tensor_release(y);
    y = run1(TD_OP_upsample_linear, 1, &x4, 2, tiny);
    td_tensor_release(y);
    struct td_tensor *x4f = mk(F32, 4, SHAPE(1, 1, 1, 2), VALS(1, 2));
    struct td_attr_arg huge[3] = {a_ints("size", 2, SHAPE(1, 5)), a_float("scale_1", 1e-300),
                                  a_bool("align_corners", false)};
    enum td_op ops[3] = {TD_OP_upsample_nearest, TD_OP_upsample_linear, TD_OP_upsample_bicubic};
    for (int i = 0; i < 3; i++) {
        y = run1(ops[i], 1, &x4f, i == 0 ? 2 : 3, huge);
        td_tensor_release(y);
        y = run1(ops[i], 1, &x4f, i == 0 ? 2 : 3, (struct td_attr_arg[]){
            a_ints("size", 2, SHAPE(1, 5)), a_float("scale_1", 1e300), a_bool("antialias", i)});
        td_tensor_release(y);
    }
    td_tensor_release(x4f);
    /* Allocation failures leave nothing behind. */
    struct td_tensor *x5 = rnd(F32, 4, SHAPE(2, 2, 5, 4), 0);
    struct td_attr_arg f[2] = {a_ints("size", 2, SHAPE(3, 7)), a_bool("antialias", true)};
    fault_loop(TD_OP_upsample_bicubic, 1, &x5, 2, f, 1);
    struct td_attr_arg fb[1] = {a_ints("input_size", 2, SHAPE(3, 2))};
    fault_loop(TD_OP_adaptive_avg_pool_backward, 1, &x5, 1, fb, 1);
    struct td_tensor *all[] = {x3, x4, x5};
    release_all(all, 3);
}

/* ---------------------------------------------------------------------------------------
 * Derivatives against central finite differences (float64), second order included.
 */
static void grad_case(enum td_op op, int ndim, const int64_t *shape, int na,
                      const struct td_attr_arg *a)
{
    struct gcase c;
    memset(&c, 0, sizeof c);
    c.name = td_op_info_get(op)->name;
    c.op = op;
    c.nin = 1;
    c.in[0] = rnd(F64, ndim, shape, 0.1);
    c.na = na;
    for (int i = 0; i < na; i++)
        c.a[i] = a[i];
    c.nout = 1;
    /* Linear ops: the gradient does not depend on x (so not strict); the second-order check
     * then confirms a zero Hessian, and the *_backward cases check the VJP of the VJP. */
    gc_check(&c);
}

static void test_grad_bilinear(void **state)
{
    (void)state;
    struct td_attr_arg a[2] = {a_ints("size", 2, SHAPE(5, 2)), a_bool("align_corners", false)};
    grad_case(TD_OP_upsample_linear, 4, SHAPE(1, 2, 3, 4), 2, a);
    a[1] = a_bool("align_corners", true);
    grad_case(TD_OP_upsample_linear, 4, SHAPE(1, 2, 3, 4), 2, a);
    struct td_attr_arg aa[2] = {a_ints("size", 2, SHAPE(2, 3)), a_bool("antialias", true)};
    grad_case(TD_OP_upsample_linear, 4, SHAPE(1, 1, 5, 7), 2, aa);
    struct td_attr_arg bw[2] = {a_ints("input_size", 2, SHAPE(3, 4)),
                                a_bool("align_corners", true)};
    grad_case(TD_OP_upsample_linear_backward, 4, SHAPE(1, 2, 5, 2), 2, bw);
    struct td_attr_arg tri[2] = {a_ints("size", 3, SHAPE(3, 1, 3)), a_float("scale_0", 1.6)};
    grad_case(TD_OP_upsample_linear, 5, SHAPE(1, 1, 2, 3, 2), 2, tri);
}

static void test_grad_bicubic(void **state)
{
    (void)state;
    struct td_attr_arg a[1] = {a_ints("size", 2, SHAPE(5, 3))};
    grad_case(TD_OP_upsample_bicubic, 4, SHAPE(1, 1, 3, 4), 1, a);
    struct td_attr_arg b[2] = {a_ints("size", 2, SHAPE(2, 5)), a_bool("align_corners", true)};
    grad_case(TD_OP_upsample_bicubic, 4, SHAPE(2, 1, 3, 3), 2, b);
    struct td_attr_arg aa[2] = {a_ints("size", 2, SHAPE(2, 2)), a_bool("antialias", true)};
    grad_case(TD_OP_upsample_bicubic, 4, SHAPE(1, 1, 5, 6), 2, aa);
    struct td_attr_arg bw[2] = {a_ints("input_size", 2, SHAPE(5, 6)),
                                a_bool("antialias", true)};
    grad_case(TD_OP_upsample_bicubic_backward, 4, SHAPE(1, 1, 2, 2), 2, bw);
}

static void test_grad_area_nearest(void **state)
{
    (void)state;
    struct td_attr_arg a[1] = {a_ints("output_size", 2, SHAPE(2, 3))};
    grad_case(TD_OP_adaptive_avg_pool, 4, SHAPE(1, 2, 5, 4), 1, a);
    struct td_attr_arg a3[1] = {a_ints("output_size", 3, SHAPE(2, 1, 2))};
    grad_case(TD_OP_adaptive_avg_pool, 4, SHAPE(1, 3, 2, 3), 1, a3);
    struct td_attr_arg b[1] = {a_ints("input_size", 2, SHAPE(5, 4))};
    grad_case(TD_OP_adaptive_avg_pool_backward, 4, SHAPE(1, 2, 2, 3), 1, b);
    struct td_attr_arg n[2] = {a_ints("size", 1, SHAPE(7)), a_bool("exact", true)};
    grad_case(TD_OP_upsample_nearest, 3, SHAPE(2, 1, 4), 2, n);
    struct td_attr_arg nb[1] = {a_ints("input_size", 1, SHAPE(4))};
    grad_case(TD_OP_upsample_nearest_backward, 3, SHAPE(2, 1, 7), 1, nb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_linear_values),      AG_TEST(test_nearest_values),
        AG_TEST(test_area_values),        AG_TEST(test_bicubic_values),
        AG_TEST(test_noncontiguous_input), AG_TEST(test_errors),
        AG_TEST(test_grad_bilinear),      AG_TEST(test_grad_bicubic),
        AG_TEST(test_grad_area_nearest),
    };
    return AG_RUN_TESTS(tests);
}
