/*
 * test_nn.c - the neural-network ops (ops_nn.c) on hand-computed values: conv2d with
 * stride, padding, dilation and groups (and a non-contiguous input), linear, im2col/col2im,
 * max/avg pooling with padding and ceil_mode, softmax/log_softmax, layer_norm, embedding
 * (with the bad-index error), nll_loss with weights and ignore_index, dropout's statistics
 * and mask, gelu and erf. Then every differentiable op's VJP and JVP against central finite
 * differences in float64, and second derivatives of the formulas that only use ops with
 * derivatives.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

static const struct td_rng rng0 = {20240601u, 7};
static struct td_rng rng; /* the session's generator (ag_rng), reset to rng0 per op call */

#define F64 TD_FLOAT64
#define I64 TD_INT64

/* Runs an op with n outputs through td_op_call with the test generator (reset first). */
static void runn_rng(enum td_op op, int nin, struct td_tensor *const *in, int na,
                 const struct td_attr_arg *a, int nout, struct td_tensor **out)
{
    struct td_error err;
    rng = rng0;
    int rc = td_op_call(op, nin, in, na, a, nout, out, &rng, NULL, &err);
    if (rc)
        fail_msg("%s failed: %s", td_op_info_get(op)->name, err.msg);
}

static struct td_tensor *run(enum td_op op, int nin, struct td_tensor *const *in, int na,
                             const struct td_attr_arg *a)
{
    struct td_tensor *o = NULL;
    runn_rng(op, nin, in, na, a, 1, &o);
    return o;
}

/* ---------------------------------------------------------------------------------------
 * Forward values.
 */
static void test_conv2d_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_tensor *w = mk(F64, 4, SHAPE(1, 1, 2, 2), VALS(1, 0, 0, 1));
    struct td_tensor *bias = mk(F64, 1, SHAPE(1), VALS(10));
    struct td_tensor *in3[3] = {x, w, bias};
    struct td_tensor *y = run(TD_OP_conv2d, 3, in3, 0, NULL);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(16, 18, 22, 24));
    td_tensor_release(y);

    /* stride 2, padding 1: windows start at (-1,-1), (-1,1), (1,-1), (1,1). */
    struct td_attr_arg a[2] = {a_ints("stride", 1, SHAPE(2)), a_ints("padding", 1, SHAPE(1))};
    y = run(TD_OP_conv2d, 2, in3, 2, a);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(1, 3, 7, 14));
    td_tensor_release(y);

    /* dilation 2 with a 2x2 kernel of ones: the four corners. */
    struct td_tensor *ones = mk(F64, 4, SHAPE(1, 1, 2, 2), VALS(1, 1, 1, 1));
    struct td_tensor *in2[2] = {x, ones};
    struct td_attr_arg ad[1] = {a_ints("dilation", 2, SHAPE(2, 2))};
    y = run(TD_OP_conv2d, 2, in2, 1, ad);
    expect_vals(y, F64, 4, SHAPE(1, 1, 1, 1), VALS(20));
    td_tensor_release(y);

    /* A non-contiguous input: the transpose of stored data equal to x^T. */
    struct td_tensor *xt = mk(F64, 4, SHAPE(1, 1, 3, 3), VALS(1, 4, 7, 2, 5, 8, 3, 6, 9));
    struct td_attr_arg ta[2] = {a_int("dim0", 2), a_int("dim1", 3)};
    struct td_tensor *xv = run(TD_OP_transpose, 1, &xt, 2, ta);
    assert_false(td_tensor_is_contiguous(xv));
    struct td_tensor *inv[3] = {xv, w, bias};
    y = run(TD_OP_conv2d, 3, inv, 0, NULL);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(16, 18, 22, 24));
    td_tensor_release(y);

    /* groups = 2: each channel scaled by its own 1x1 weight; float32. */
    struct td_tensor *xg = mk(TD_FLOAT32, 4, SHAPE(1, 2, 2, 2), VALS(1, 2, 3, 4, 5, 6, 7, 8));
    struct td_tensor *wg = mk(TD_FLOAT32, 4, SHAPE(2, 1, 1, 1), VALS(2, 3));
    struct td_tensor *ing[2] = {xg, wg};
    struct td_attr_arg ag[1] = {a_int("groups", 2)};
    y = run(TD_OP_conv2d, 2, ing, 1, ag);
    expect_vals(y, TD_FLOAT32, 4, SHAPE(1, 2, 2, 2), VALS(2, 4, 6, 8, 15, 18, 21, 24));
    td_tensor_release(y);
    /* groups = 1 on the same input, 2 output channels summing both input channels. */
    struct td_tensor *w12 = mk(TD_FLOAT32, 4, SHAPE(2, 2, 1, 1), VALS(1, 1, 1, -1));
    struct td_tensor *in12[2] = {xg, w12};
    y = run(TD_OP_conv2d, 2, in12, 0, NULL);
    expect_vals(y, TD_FLOAT32, 4, SHAPE(1, 2, 2, 2), VALS(6, 8, 10, 12, -4, -4, -4, -4));
    td_tensor_release(y);

    /* Zero batch; float16 compute. */
    struct td_tensor *x0 = mk(F64, 4, SHAPE(0, 1, 3, 3), NULL);
    struct td_tensor *in0[2] = {x0, w};
    y = run(TD_OP_conv2d, 2, in0, 0, NULL);
    expect_shape(y, F64, 4, SHAPE(0, 1, 2, 2));
    td_tensor_release(y);
    struct td_tensor *xh = mk(TD_FLOAT16, 4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_tensor *wh = mk(TD_FLOAT16, 4, SHAPE(1, 1, 2, 2), VALS(1, 0, 0, 1));
    struct td_tensor *inh[2] = {xh, wh};
    y = run(TD_OP_conv2d, 2, inh, 0, NULL);
    expect_vals(y, TD_FLOAT16, 4, SHAPE(1, 1, 2, 2), VALS(6, 8, 12, 14));
    td_tensor_release(y);

    /* Errors: channel mismatch, mixed dtypes, kernel larger than the input. */
    run_fail(TD_OP_conv2d, 2, ing, 0, NULL, 1, TD_EINVAL, "groups");
    struct td_tensor *mix[2] = {x, wg};
    run_fail(TD_OP_conv2d, 2, mix, 0, NULL, 1, TD_EINVAL, "dtype");
    static const double zeros16[16];
    struct td_tensor *big = mk(F64, 4, SHAPE(1, 1, 4, 4), zeros16);
    struct td_tensor *inb[2] = {x, big};
    run_fail(TD_OP_conv2d, 2, inb, 0, NULL, 1, TD_EINVAL, "smaller");
    fault_loop(TD_OP_conv2d, 3, in3, 2, a, 1);

    struct td_tensor *all[] = {x, w, bias, ones, xt, xv, xg, wg, w12, x0, xh, wh, big};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_linear_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *w = mk(F64, 2, SHAPE(2, 3), VALS(1, 0, -1, 2, 1, 0));
    struct td_tensor *b = mk(F64, 1, SHAPE(2), VALS(10, 20));
    struct td_tensor *in[3] = {x, w, b};
    struct td_tensor *y = run(TD_OP_linear, 3, in, 0, NULL);
    expect_vals(y, F64, 2, SHAPE(2, 2), VALS(8, 24, 8, 33));
    td_tensor_release(y);
    y = run(TD_OP_linear, 2, in, 0, NULL);
    expect_vals(y, F64, 2, SHAPE(2, 2), VALS(-2, 4, -2, 13));
    td_tensor_release(y);
    struct td_tensor *x1 = mk(F64, 1, SHAPE(3), VALS(1, 1, 1));
    struct td_tensor *in1[3] = {x1, w, b};
    y = run(TD_OP_linear, 3, in1, 0, NULL);
    expect_vals(y, F64, 1, SHAPE(2), VALS(10, 23));
    td_tensor_release(y);
    /* Zero in-features: the bias alone. */
    struct td_tensor *x0 = mk(F64, 2, SHAPE(2, 0), NULL), *w0 = mk(F64, 2, SHAPE(2, 0), NULL);
    struct td_tensor *in0[3] = {x0, w0, b};
    y = run(TD_OP_linear, 3, in0, 0, NULL);
    expect_vals(y, F64, 2, SHAPE(2, 2), VALS(10, 20, 10, 20));
    td_tensor_release(y);
    /* complex128: (1+i) * (2-i) = 3 + i. */
    struct td_tensor *xc = mk(TD_COMPLEX128, 2, SHAPE(1, 1), VALS(1));
    struct td_tensor *wc = mk(TD_COMPLEX128, 2, SHAPE(1, 1), VALS(2));
    double complex *px = td_tensor_data(xc), *pw = td_tensor_data(wc);
    px[0] = CMPLX(1, 1);
    pw[0] = CMPLX(2, -1);
    struct td_tensor *inc[2] = {xc, wc};
    y = run(TD_OP_linear, 2, inc, 0, NULL);
    double complex r = *(double complex *)td_tensor_data(y);
    assert_true(creal(r) == 3 && cimag(r) == 1);
    td_tensor_release(y);
    struct td_tensor *bad[2] = {x, x1};
    run_fail(TD_OP_linear, 2, bad, 0, NULL, 1, TD_EINVAL, "2 dims");
    struct td_tensor *all[] = {x, w, b, x1, x0, w0, xc, wc};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_im2col_col2im_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_attr_arg k[1] = {a_ints("kernel_size", 1, SHAPE(2))};
    struct td_tensor *y = run(TD_OP_im2col, 1, &x, 1, k);
    expect_vals(y, F64, 3, SHAPE(1, 4, 4),
                VALS(1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9));
    td_tensor_release(y);
    /* padding 1, stride 2: 2x2 blocks of the padded 5x5 image. */
    struct td_attr_arg kp[3] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("padding", 1, SHAPE(1)),
                                a_ints("stride", 1, SHAPE(2))};
    y = run(TD_OP_im2col, 1, &x, 3, kp);
    expect_vals(y, F64, 3, SHAPE(1, 4, 4),
                VALS(0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9));
    td_tensor_release(y);
    /* col2im of ones counts how many blocks cover each pixel. */
    struct td_tensor *c1 = mk(F64, 2, SHAPE(4, 4), VALS(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                        1, 1));
    struct td_attr_arg f[2] = {a_ints("output_size", 2, SHAPE(3, 3)),
                               a_ints("kernel_size", 1, SHAPE(2))};
    y = run(TD_OP_col2im, 1, &c1, 2, f);
    expect_vals(y, F64, 3, SHAPE(1, 3, 3), VALS(1, 2, 1, 2, 4, 2, 1, 2, 1));
    td_tensor_release(y);
    struct td_attr_arg fb[2] = {a_ints("output_size", 2, SHAPE(4, 4)),
                                a_ints("kernel_size", 1, SHAPE(2))};
    run_fail(TD_OP_col2im, 1, &c1, 2, fb, 1, TD_EINVAL, "blocks");
    struct td_attr_arg kb[1] = {a_ints("kernel_size", 3, SHAPE(1, 2, 3))};
    run_fail(TD_OP_im2col, 1, &x, 1, kb, 1, TD_EINVAL, "1 or 2 values");
    td_tensor_release(c1);
    td_tensor_release(x);
}

static void test_max_pool_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 4, SHAPE(1, 1, 4, 4),
                             VALS(1, 5, 2, 0, 3, 4, 8, 7, 9, 0, 1, 1, 2, 6, 3, 10));
    struct td_tensor *o[2] = {NULL, NULL};
    struct td_attr_arg k2[1] = {a_ints("kernel_size", 1, SHAPE(2))};
    runn_rng(TD_OP_max_pool2d, 1, &x, 1, k2, 2, o);
    expect_vals(o[0], F64, 4, SHAPE(1, 1, 2, 2), VALS(5, 8, 9, 10));
    expect_vals(o[1], I64, 4, SHAPE(1, 1, 2, 2), VALS(1, 6, 8, 15));
    release_all(o, 2);

    struct td_tensor *x3 = mk(F64, 3, SHAPE(1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_attr_arg fl[2] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(2))};
    runn_rng(TD_OP_max_pool2d, 1, &x3, 2, fl, 2, o);
    expect_vals(o[0], F64, 3, SHAPE(1, 1, 1), VALS(5));
    release_all(o, 2);
    struct td_attr_arg ce[3] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(2)),
                                a_bool("ceil_mode", true)};
    runn_rng(TD_OP_max_pool2d, 1, &x3, 3, ce, 2, o);
    expect_vals(o[0], F64, 3, SHAPE(1, 2, 2), VALS(5, 6, 8, 9));
    expect_vals(o[1], I64, 3, SHAPE(1, 2, 2), VALS(4, 5, 7, 8));
    /* Its backward scatters g at the indices. */
    struct td_tensor *g = mk(F64, 3, SHAPE(1, 2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *bi[2] = {g, o[1]};
    struct td_attr_arg is[1] = {a_ints("input_size", 2, SHAPE(3, 3))};
    struct td_tensor *gx = run(TD_OP_max_pool2d_backward, 2, bi, 1, is);
    expect_vals(gx, F64, 3, SHAPE(1, 3, 3), VALS(0, 0, 0, 0, 1, 2, 0, 3, 4));
    td_tensor_release(gx);
    release_all(o, 2);
    /* padding 1, kernel 3, stride 2 */
    struct td_attr_arg pd[3] = {a_ints("kernel_size", 1, SHAPE(3)), a_ints("stride", 1, SHAPE(2)),
                                a_ints("padding", 1, SHAPE(1))};
    runn_rng(TD_OP_max_pool2d, 1, &x3, 3, pd, 2, o);
    expect_vals(o[0], F64, 3, SHAPE(1, 2, 2), VALS(5, 6, 8, 9));
    expect_vals(o[1], I64, 3, SHAPE(1, 2, 2), VALS(4, 5, 7, 8));
    release_all(o, 2);
    /* NaN wins like PyTorch. */
    struct td_tensor *xn = mk(F64, 3, SHAPE(1, 2, 2), VALS(1, NAN, 3, 2));
    runn_rng(TD_OP_max_pool2d, 1, &xn, 1, k2, 2, o);
    expect_vals(o[0], F64, 3, SHAPE(1, 1, 1), VALS(NAN));
    expect_vals(o[1], I64, 3, SHAPE(1, 1, 1), VALS(1));
    release_all(o, 2);

    /* A bad index in the backward is an error, not a write out of bounds. */
    struct td_tensor *badi = mk(I64, 3, SHAPE(1, 2, 2), VALS(0, 1, 9, 2));
    struct td_tensor *bb[2] = {g, badi};
    run_fail(TD_OP_max_pool2d_backward, 2, bb, 1, is, 1, TD_EINVAL, "out of range");
    struct td_attr_arg pbig[2] = {a_ints("kernel_size", 1, SHAPE(2)),
                                  a_ints("padding", 1, SHAPE(2))};
    run_fail(TD_OP_max_pool2d, 1, &x3, 2, pbig, 2, TD_EINVAL, "half");
    struct td_tensor *all[] = {x, x3, g, xn, badi};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_avg_pool_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_attr_arg k[2] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(1))};
    struct td_tensor *y = run(TD_OP_avg_pool2d, 1, &x, 2, k);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(3, 4, 6, 7));
    td_tensor_release(y);
    /* kernel 3, stride 2, padding 1: the (0,0) window holds 1,2,4,5 and 5 padding zeros. */
    struct td_attr_arg p[4] = {a_ints("kernel_size", 1, SHAPE(3)), a_ints("stride", 1, SHAPE(2)),
                               a_ints("padding", 1, SHAPE(1)),
                               a_bool("count_include_pad", true)};
    y = run(TD_OP_avg_pool2d, 1, &x, 4, p);
    expect_vals_tol(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9),
                    1e-15);
    td_tensor_release(y);
    p[3] = a_bool("count_include_pad", false);
    y = run(TD_OP_avg_pool2d, 1, &x, 4, p);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(3, 4, 6, 7));
    td_tensor_release(y);
    p[3] = a_int("divisor_override", 2);
    y = run(TD_OP_avg_pool2d, 1, &x, 4, p);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(6, 8, 12, 14));
    td_tensor_release(y);
    /* ceil_mode: the last windows hang over the edge and divide by their clipped size. */
    struct td_attr_arg c[3] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(2)),
                               a_bool("ceil_mode", true)};
    y = run(TD_OP_avg_pool2d, 1, &x, 3, c);
    expect_vals(y, F64, 4, SHAPE(1, 1, 2, 2), VALS(3, 4.5, 7.5, 9));
    td_tensor_release(y);
    /* The backward of kernel 2 stride 1 with ones spreads 1/4 per covering window. */
    struct td_tensor *g = mk(F64, 4, SHAPE(1, 1, 2, 2), VALS(1, 1, 1, 1));
    struct td_attr_arg kb[3] = {a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(1)),
                                a_ints("input_size", 2, SHAPE(3, 3))};
    y = run(TD_OP_avg_pool2d_backward, 1, &g, 3, kb);
    expect_vals(y, F64, 4, SHAPE(1, 1, 3, 3), VALS(0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25));
    td_tensor_release(y);
    struct td_attr_arg kbad[3] = {a_ints("kernel_size", 1, SHAPE(2)),
                                  a_ints("stride", 1, SHAPE(1)),
                                  a_ints("input_size", 2, SHAPE(4, 4))};
    run_fail(TD_OP_avg_pool2d_backward, 1, &g, 3, kbad, 1, TD_EINVAL, "pools to");
    td_tensor_release(g);
    td_tensor_release(x);
}

static void test_softmax_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 3), VALS(1, 2, 3, 0, 0, 0));
    struct td_attr_arg d1[1] = {a_int("dim", -1)};
    struct td_tensor *y = run(TD_OP_softmax, 1, &x, 1, d1);
    double s = exp(1) + exp(2) + exp(3);
    expect_vals_tol(y, F64, 2, SHAPE(2, 3),
                    VALS(exp(1) / s, exp(2) / s, exp(3) / s, 1.0 / 3, 1.0 / 3, 1.0 / 3), 1e-15);
    for (int r = 0; r < 2; r++)
        assert_true(fabs(val(y, 3 * r) + val(y, 3 * r + 1) + val(y, 3 * r + 2) - 1) < 1e-15);
    td_tensor_release(y);
    y = run(TD_OP_log_softmax, 1, &x, 1, d1);
    expect_vals_tol(y, F64, 2, SHAPE(2, 3),
                    VALS(1 - log(s), 2 - log(s), 3 - log(s), -log(3), -log(3), -log(3)), 1e-15);
    td_tensor_release(y);
    /* Along dim 0 and on a non-contiguous view. */
    struct td_attr_arg d0[1] = {a_int("dim", 0)};
    y = run(TD_OP_softmax, 1, &x, 1, d0);
    double e1 = exp(1) / (exp(1) + 1), e2 = exp(2) / (exp(2) + 1), e3 = exp(3) / (exp(3) + 1);
    expect_vals_tol(y, F64, 2, SHAPE(2, 3), VALS(e1, e2, e3, 1 - e1, 1 - e2, 1 - e3), 1e-15);
    td_tensor_release(y);
    struct td_attr_arg ta[2] = {a_int("dim0", 0), a_int("dim1", 1)};
    struct td_tensor *xt = run(TD_OP_transpose, 1, &x, 2, ta);
    y = run(TD_OP_softmax, 1, &xt, 1, d1);
    expect_vals_tol(y, F64, 2, SHAPE(3, 2), VALS(e1, 1 - e1, e2, 1 - e2, e3, 1 - e3), 1e-15);
    td_tensor_release(y);
    /* Large values do not overflow; float32. */
    struct td_tensor *big = mk(TD_FLOAT32, 1, SHAPE(2), VALS(1000, 1000));
    y = run(TD_OP_softmax, 1, &big, 1, d1);
    expect_vals(y, TD_FLOAT32, 1, SHAPE(2), VALS(0.5, 0.5));
    td_tensor_release(y);
    y = run(TD_OP_log_softmax, 1, &big, 1, d1);
    expect_vals_tol(y, TD_FLOAT32, 1, SHAPE(2), VALS(-log(2), -log(2)), 1e-6);
    td_tensor_release(y);
    struct td_tensor *z = mk(F64, 2, SHAPE(0, 3), NULL);
    y = run(TD_OP_softmax, 1, &z, 1, d1);
    expect_shape(y, F64, 2, SHAPE(0, 3));
    td_tensor_release(y);
    struct td_attr_arg d5[1] = {a_int("dim", 5)};
    run_fail(TD_OP_softmax, 1, &x, 1, d5, 1, TD_EINVAL, "out of range");
    struct td_tensor *all[] = {x, xt, big, z};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_layer_norm_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 2), VALS(1, 3, 2, 2));
    struct td_tensor *w = mk(F64, 1, SHAPE(2), VALS(2, 3));
    struct td_tensor *b = mk(F64, 1, SHAPE(2), VALS(1, 1));
    struct td_tensor *in[3] = {x, w, b}, *o[3] = {NULL, NULL, NULL};
    struct td_attr_arg a[1] = {a_ints("normalized_shape", 1, SHAPE(2))};
    runn_rng(TD_OP_layer_norm, 3, in, 1, a, 3, o);
    double r0 = 1 / sqrt(1 + 1e-5), r1 = 1 / sqrt(1e-5);
    expect_vals_tol(o[0], F64, 2, SHAPE(2, 2), VALS(1 - 2 * r0, 1 + 3 * r0, 1, 1), 1e-15);
    expect_vals(o[1], F64, 2, SHAPE(2, 1), VALS(2, 2));
    expect_vals_tol(o[2], F64, 2, SHAPE(2, 1), VALS(r0, r1), 1e-15);
    release_all(o, 3);
    /* Without affine parameters, over both dims. */
    struct td_attr_arg a2[2] = {a_ints("normalized_shape", 2, SHAPE(2, 2)), a_float("eps", 0)};
    runn_rng(TD_OP_layer_norm, 1, in, 2, a2, 3, o);
    /* mean 2, var (1 + 1 + 0 + 0) / 4 = 0.5 */
    double r = 1 / sqrt(0.5);
    expect_vals_tol(o[0], F64, 2, SHAPE(2, 2), VALS(-r, r, 0, 0), 1e-15);
    expect_vals(o[1], F64, 2, SHAPE(1, 1), VALS(2));
    release_all(o, 3);
    struct td_attr_arg bad[1] = {a_ints("normalized_shape", 1, SHAPE(3))};
    run_fail(TD_OP_layer_norm, 1, in, 1, bad, 3, TD_EINVAL, "trailing");
    struct td_tensor *inb[2] = {x, b};
    struct td_tensor *w3 = mk(F64, 1, SHAPE(3), VALS(1, 1, 1));
    inb[1] = w3;
    run_fail(TD_OP_layer_norm, 2, inb, 1, a, 3, TD_EINVAL, "weight");
    struct td_tensor *all[] = {x, w, b, w3};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_embedding_values(void **state)
{
    (void)state;
    struct td_tensor *w = mk(F64, 2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *ix = mk(I64, 2, SHAPE(2, 2), VALS(2, 0, 1, 2));
    struct td_tensor *in[2] = {w, ix};
    struct td_tensor *y = run(TD_OP_embedding, 2, in, 0, NULL);
    expect_vals(y, F64, 3, SHAPE(2, 2, 2), VALS(5, 6, 1, 2, 3, 4, 5, 6));
    td_tensor_release(y);
    struct td_tensor *i32 = mk(TD_INT32, 1, SHAPE(2), VALS(1, 1));
    in[1] = i32;
    y = run(TD_OP_embedding, 2, in, 0, NULL);
    expect_vals(y, F64, 2, SHAPE(2, 2), VALS(3, 4, 3, 4));
    td_tensor_release(y);
    struct td_tensor *bad = mk(I64, 1, SHAPE(3), VALS(0, 3, 1));
    in[1] = bad;
    run_fail(TD_OP_embedding, 2, in, 0, NULL, 1, TD_EINVAL, "index 3 out of range for 3 rows");
    struct td_tensor *neg = mk(I64, 1, SHAPE(1), VALS(-1));
    in[1] = neg;
    run_fail(TD_OP_embedding, 2, in, 0, NULL, 1, TD_EINVAL, "out of range");
    struct td_tensor *fl = mk(F64, 1, SHAPE(1), VALS(0));
    in[1] = fl;
    run_fail(TD_OP_embedding, 2, in, 0, NULL, 1, TD_EINVAL, "int32 or int64");

    /* The backward counts rows; padding_idx gets nothing. */
    struct td_tensor *g = mk(F64, 3, SHAPE(2, 2, 2), VALS(1, 1, 1, 1, 1, 1, 1, 1));
    struct td_tensor *bi[2] = {g, ix};
    struct td_attr_arg nw[2] = {a_int("num_weights", 3), a_int("padding_idx", -1)};
    y = run(TD_OP_embedding_backward, 2, bi, 1, nw);
    expect_vals(y, F64, 2, SHAPE(3, 2), VALS(1, 1, 1, 1, 2, 2));
    td_tensor_release(y);
    y = run(TD_OP_embedding_backward, 2, bi, 2, nw);
    expect_vals(y, F64, 2, SHAPE(3, 2), VALS(1, 1, 1, 1, 0, 0));
    td_tensor_release(y);
    struct td_attr_arg nw2[1] = {a_int("num_weights", 2)};
    run_fail(TD_OP_embedding_backward, 2, bi, 1, nw2, 1, TD_EINVAL, "out of range");
    struct td_tensor *all[] = {w, ix, i32, bad, neg, fl, g};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_nll_loss_values(void **state)
{
    (void)state;
    struct td_tensor *lp = mk(F64, 2, SHAPE(3, 3),
                              VALS(-1, -2, -3, -0.5, -1.5, -2.5, -0.1, -0.2, -0.3));
    struct td_tensor *t = mk(I64, 1, SHAPE(3), VALS(0, 2, 1));
    struct td_tensor *w = mk(F64, 1, SHAPE(3), VALS(1, 2, 3));
    struct td_tensor *in[3] = {lp, t, w};
    struct td_attr_arg none[1] = {a_str("reduction", "none")};
    struct td_tensor *y = run(TD_OP_nll_loss, 3, in, 1, none);
    expect_vals_tol(y, F64, 1, SHAPE(3), VALS(1, 7.5, 0.4), 1e-15);
    td_tensor_release(y);
    struct td_attr_arg sum[1] = {a_str("reduction", "sum")};
    y = run(TD_OP_nll_loss, 3, in, 1, sum);
    expect_vals_tol(y, F64, 0, NULL, VALS(8.9), 1e-15);
    td_tensor_release(y);
    y = run(TD_OP_nll_loss, 3, in, 0, NULL);
    expect_vals_tol(y, F64, 0, NULL, VALS(8.9 / 6), 1e-15);
    td_tensor_release(y);
    struct td_attr_arg ig[1] = {a_int("ignore_index", 2)};
    y = run(TD_OP_nll_loss, 3, in, 1, ig);
    expect_vals_tol(y, F64, 0, NULL, VALS(1.4 / 3), 1e-15);
    td_tensor_release(y);
    y = run(TD_OP_nll_loss, 2, in, 0, NULL);
    expect_vals_tol(y, F64, 0, NULL, VALS((1 + 2.5 + 0.2) / 3), 1e-15);
    td_tensor_release(y);
    /* A 1-d input with a 0-d target. */
    struct td_tensor *lp1 = mk(F64, 1, SHAPE(3), VALS(-1, -2, -3));
    struct td_tensor *t0 = mk0(I64, 2);
    struct td_tensor *in1[2] = {lp1, t0};
    y = run(TD_OP_nll_loss, 2, in1, 0, NULL);
    expect_vals(y, F64, 0, NULL, VALS(3));
    td_tensor_release(y);
    struct td_tensor *tb = mk(I64, 1, SHAPE(3), VALS(0, 5, 1));
    struct td_tensor *inb[2] = {lp, tb};
    run_fail(TD_OP_nll_loss, 2, inb, 0, NULL, 1, TD_EINVAL, "target 5 out of range");
    struct td_attr_arg badr[1] = {a_str("reduction", "avg")};
    run_fail(TD_OP_nll_loss, 2, in, 1, badr, 1, TD_EINVAL, "reduction");
    struct td_tensor *all[] = {lp, t, w, lp1, t0, tb};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_dropout_values(void **state)
{
    (void)state;
    enum { N = 20000 };
    static double ones[N];
    for (int i = 0; i < N; i++)
        ones[i] = 1.0 + (i % 7);
    struct td_tensor *x = mk(F64, 1, SHAPE(N), ones);
    struct td_tensor *o[2] = {NULL, NULL}, *o2[2] = {NULL, NULL};
    struct td_attr_arg p[1] = {a_float("p", 0.3)};
    struct td_error err;
    struct td_rng r = {99, 0};
    assert_int_equal(td_op_call(TD_OP_dropout, 1, &x, 1, p, 2, o, &r, NULL, &err), 0);
    assert_int_equal(r.offset, N / 4);
    int64_t kept = 0;
    for (int i = 0; i < N; i++) {
        double m = val(o[1], i), v = val(o[0], i);
        assert_true(m == 0 || m == 1);
        kept += m != 0;
        if (m != 0)
            assert_true(fabs(v - ones[i] / 0.7) < 1e-12);
        else
            assert_true(v == 0);
    }
    /* Binomial(N, 0.7): sd = sqrt(N * 0.21) ~ 65; allow 5 sd. */
    assert_true(llabs(kept - (int64_t)(0.7 * N)) < 325);
    /* Same generator state, same mask; the next draw differs. */
    r.offset = 0;
    assert_int_equal(td_op_call(TD_OP_dropout, 1, &x, 1, p, 2, o2, &r, NULL, &err), 0);
    assert_memory_equal(td_tensor_data(o[1]), td_tensor_data(o2[1]), N);
    release_all(o2, 2);
    assert_int_equal(td_op_call(TD_OP_dropout, 1, &x, 1, p, 2, o2, &r, NULL, &err), 0);
    assert_true(memcmp(td_tensor_data(o[1]), td_tensor_data(o2[1]), N) != 0);
    release_all(o2, 2);
    release_all(o, 2);
    /* train = false and p = 0: identity, all-true mask; p = 1: zeros. */
    struct td_attr_arg ev[2] = {a_float("p", 0.5), a_bool("train", false)};
    struct td_tensor *small = mk(F64, 1, SHAPE(3), VALS(1, 2, 3));
    runn_rng(TD_OP_dropout, 1, &small, 2, ev, 2, o);
    expect_vals(o[0], F64, 1, SHAPE(3), VALS(1, 2, 3));
    expect_vals(o[1], TD_BOOL, 1, SHAPE(3), VALS(1, 1, 1));
    release_all(o, 2);
    struct td_attr_arg p1[1] = {a_float("p", 1)};
    runn_rng(TD_OP_dropout, 1, &small, 1, p1, 2, o);
    expect_vals(o[0], F64, 1, SHAPE(3), VALS(0, 0, 0));
    expect_vals(o[1], TD_BOOL, 1, SHAPE(3), VALS(0, 0, 0));
    release_all(o, 2);
    struct td_attr_arg pb[1] = {a_float("p", 1.5)};
    run_fail(TD_OP_dropout, 1, &small, 1, pb, 2, TD_EINVAL, "[0, 1]");
    td_tensor_release(small);
    td_tensor_release(x);
}

static void test_gelu_erf_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 1, SHAPE(3), VALS(0.5, 1, -1));
    struct td_tensor *y = run(TD_OP_erf, 1, &x, 0, NULL);
    expect_vals_tol(y, F64, 1, SHAPE(3),
                    VALS(0.52049987781304654, 0.84270079294971487, -0.84270079294971487), 1e-15);
    td_tensor_release(y);
    y = run(TD_OP_gelu, 1, &x, 0, NULL);
    /* x * Phi(x): Phi(1) = 0.8413447460685429 */
    expect_vals_tol(y, F64, 1, SHAPE(3),
                    VALS(0.5 * 0.69146246127401312, 0.84134474606854293, -0.15865525393145707),
                    1e-14);
    td_tensor_release(y);
    struct td_attr_arg t[1] = {a_str("approximate", "tanh")};
    y = run(TD_OP_gelu, 1, &x, 1, t);
    double k = sqrt(2 / M_PI);
    double want[3];
    for (int i = 0; i < 3; i++) {
        double v = val(x, i);
        want[i] = 0.5 * v * (1 + tanh(k * (v + 0.044715 * v * v * v)));
    }
    expect_vals_tol(y, F64, 1, SHAPE(3), want, 1e-15);
    assert_true(fabs(want[1] - 0.841192) < 1e-6);
    td_tensor_release(y);
    struct td_attr_arg bad[1] = {a_str("approximate", "fast")};
    run_fail(TD_OP_gelu, 1, &x, 1, bad, 1, TD_EINVAL, "approximate");
    td_tensor_release(x);
}

/* ---------------------------------------------------------------------------------------
 * Derivatives against central finite differences (float64).
 */
/* A case of gradcheck.h for op on in[] (retained) that checks output k alone. */
static struct gcase nn_case(enum td_op op, int nin, struct td_tensor *const *in, int na,
                            const struct td_attr_arg *a, int nout, int k)
{
    struct gcase c;
    memset(&c, 0, sizeof c);
    c.name = td_op_info_get(op)->name;
    c.op = op;
    c.nin = nin;
    for (int i = 0; i < nin; i++)
        c.in[i] = td_tensor_retain(in[i]);
    c.na = na;
    for (int i = 0; i < na; i++)
        c.a[i] = a[i];
    c.nout = nout;
    c.one_output = true;
    c.out = k;
    return c;
}

/* Checks output k's VJP and JVP of op against central differences (checks 1 and 2 of
 * gradcheck.h), for the float64 inputs marked in diff. */
static void gradcheck(enum td_op op, int nin, struct td_tensor *const *in, const bool *diff,
                      int na, const struct td_attr_arg *a, int nout, int k)
{
    struct gcase c = nn_case(op, nin, in, na, a, nout, k);
    for (int i = 0; i < nin; i++)
        if (!diff[i])
            c.nodiff |= 1u << i;
    c.first_only = true;
    gc_check(&c);
}

/* A float64 tensor of distinct values (no ties for max pooling). */
static struct td_tensor *distinct(int ndim, const int64_t *shape, double phase)
{
    int64_t n = td_shape_numel(shape, ndim);
    double *v = test_malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = sin(2.3 * (double)i + phase) + 0.01 * (double)i;
    struct td_tensor *t = mk(F64, ndim, shape, v);
    test_free(v);
    return t;
}

static const bool D1[1] = {true};
static const bool D3[3] = {true, true, true};
static const bool D10[2] = {true, false};
static const bool D100[3] = {true, false, false};

static void test_grad_linear_conv(void **state)
{
    (void)state;
    struct td_tensor *x = distinct(3, SHAPE(2, 2, 3), 0), *w = distinct(2, SHAPE(4, 3), 1);
    struct td_tensor *b = distinct(1, SHAPE(4), 2);
    struct td_tensor *in[3] = {x, w, b};
    gradcheck(TD_OP_linear, 3, in, D3, 0, NULL, 1, 0);
    gradcheck(TD_OP_linear, 2, in, D3, 0, NULL, 1, 0);

    struct td_tensor *cx = distinct(4, SHAPE(2, 4, 5, 6), 0.5);
    struct td_tensor *cw = distinct(4, SHAPE(6, 2, 2, 3), 1.5);
    struct td_tensor *cb = distinct(1, SHAPE(6), 2.5);
    struct td_tensor *cin[3] = {cx, cw, cb};
    struct td_attr_arg a[4] = {a_ints("stride", 2, SHAPE(2, 1)), a_ints("padding", 2, SHAPE(1, 0)),
                               a_ints("dilation", 2, SHAPE(1, 2)), a_int("groups", 2)};
    gradcheck(TD_OP_conv2d, 3, cin, D3, 4, a, 1, 0);
    struct td_tensor *cw1 = distinct(4, SHAPE(3, 4, 3, 3), 0.7);
    struct td_tensor *cin1[2] = {cx, cw1};
    struct td_attr_arg a1[1] = {a_ints("padding", 1, SHAPE(1))};
    gradcheck(TD_OP_conv2d, 2, cin1, D3, 1, a1, 1, 0);

    struct td_attr_arg u[3] = {a_ints("kernel_size", 2, SHAPE(2, 3)), a_ints("stride", 1, SHAPE(2)),
                               a_ints("padding", 1, SHAPE(1))};
    gradcheck(TD_OP_im2col, 1, &cx, D1, 3, u, 1, 0);
    struct td_tensor *cols = distinct(3, SHAPE(2, 8, 4), 0.1);
    struct td_attr_arg f[3] = {a_ints("output_size", 2, SHAPE(4, 5)),
                               a_ints("kernel_size", 1, SHAPE(2)), a_ints("stride", 1, SHAPE(2))};
    gradcheck(TD_OP_col2im, 1, &cols, D1, 3, f, 1, 0);
    struct td_tensor *all[] = {x, w, b, cx, cw, cb, cw1, cols};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_grad_pooling(void **state)
{
    (void)state;
    struct td_tensor *x = distinct(4, SHAPE(2, 2, 5, 5), 0.2);
    struct td_attr_arg m[4] = {a_ints("kernel_size", 1, SHAPE(3)), a_ints("stride", 1, SHAPE(2)),
                               a_ints("padding", 1, SHAPE(1)), a_bool("ceil_mode", true)};
    gradcheck(TD_OP_max_pool2d, 1, &x, D1, 4, m, 2, 0);
    struct td_attr_arg md[2] = {a_ints("kernel_size", 1, SHAPE(2)),
                                a_ints("dilation", 1, SHAPE(2))};
    gradcheck(TD_OP_max_pool2d, 1, &x, D1, 2, md, 2, 0);
    /* max_pool2d_backward with indices from a real forward. */
    struct td_tensor *o[2] = {NULL, NULL};
    runn_rng(TD_OP_max_pool2d, 1, &x, 4, m, 2, o);
    struct td_tensor *g = distinct(4, SHAPE(2, 2, 3, 3), 0.9);
    struct td_tensor *bi[2] = {g, o[1]};
    struct td_attr_arg is[1] = {a_ints("input_size", 2, SHAPE(5, 5))};
    gradcheck(TD_OP_max_pool2d_backward, 2, bi, D10, 1, is, 1, 0);
    release_all(o, 2);

    struct td_attr_arg av[5] = {a_ints("kernel_size", 1, SHAPE(3)), a_ints("stride", 1, SHAPE(2)),
                                a_ints("padding", 1, SHAPE(1)), a_bool("ceil_mode", true),
                                a_bool("count_include_pad", false)};
    gradcheck(TD_OP_avg_pool2d, 1, &x, D1, 5, av, 1, 0);
    struct td_attr_arg avb[6] = {a_ints("kernel_size", 1, SHAPE(3)),
                                 a_ints("stride", 1, SHAPE(2)),
                                 a_ints("padding", 1, SHAPE(1)),
                                 a_bool("ceil_mode", true),
                                 a_int("divisor_override", 3),
                                 a_ints("input_size", 2, SHAPE(5, 5))};
    gradcheck(TD_OP_avg_pool2d_backward, 1, &g, D1, 6, avb, 1, 0);
    td_tensor_release(g);
    td_tensor_release(x);
}

static void test_grad_softmax_dropout_misc(void **state)
{
    (void)state;
    struct td_tensor *x = distinct(2, SHAPE(3, 4), 0.4);
    struct td_attr_arg d1[1] = {a_int("dim", 1)}, d0[1] = {a_int("dim", 0)};
    gradcheck(TD_OP_softmax, 1, &x, D1, 1, d1, 1, 0);
    gradcheck(TD_OP_softmax, 1, &x, D1, 1, d0, 1, 0);
    gradcheck(TD_OP_log_softmax, 1, &x, D1, 1, d1, 1, 0);
    gradcheck(TD_OP_log_softmax, 1, &x, D1, 1, d0, 1, 0);
    struct td_attr_arg p[1] = {a_float("p", 0.4)};
    gradcheck(TD_OP_dropout, 1, &x, D1, 1, p, 2, 0);
    gradcheck(TD_OP_erf, 1, &x, D1, 0, NULL, 1, 0);
    gradcheck(TD_OP_gelu, 1, &x, D1, 0, NULL, 1, 0);
    struct td_attr_arg t[1] = {a_str("approximate", "tanh")};
    gradcheck(TD_OP_gelu, 1, &x, D1, 1, t, 1, 0);

    struct td_tensor *w = distinct(2, SHAPE(5, 3), 0.8);
    struct td_tensor *ix = mk(I64, 2, SHAPE(2, 3), VALS(4, 0, 4, 1, 2, 2));
    struct td_tensor *ein[2] = {w, ix};
    gradcheck(TD_OP_embedding, 2, ein, D10, 0, NULL, 1, 0);
    /* Like PyTorch, the padding row gets no gradient although the forward reads it. */
    struct td_attr_arg pi[1] = {a_int("padding_idx", -3)};
    struct td_tensor *wl = copy_of(w), *eo = NULL, *gw = NULL;
    struct td_error err;
    assert_int_equal(td__ag_meta_ensure(wl, &err), 0);
    wl->ag->requires_grad = true;
    struct td_tensor *lin[2] = {wl, ix};
    assert_int_equal(td_ag_call(&sess, true, TD_OP_embedding, 2, lin, 1, pi, 1, &eo, &err), 0);
    struct td_tensor *ones = mk(F64, 3, SHAPE(2, 3, 3),
                                VALS(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
    assert_int_equal(td_ag_backward(&sess, 1, &eo, &ones, 1, &wl, false, false, false, &gw, &err),
                     0);
    expect_vals(gw, F64, 2, SHAPE(5, 3), VALS(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2));
    struct td_tensor *tmp[] = {wl, eo, gw, ones};
    release_all(tmp, 4);
    struct td_tensor *g = distinct(3, SHAPE(2, 3, 3), 0.6);
    struct td_tensor *bin[2] = {g, ix};
    struct td_attr_arg nw[2] = {a_int("num_weights", 5), a_int("padding_idx", 2)};
    gradcheck(TD_OP_embedding_backward, 2, bin, D10, 2, nw, 1, 0);
    gradcheck(TD_OP_embedding_backward, 2, bin, D10, 1, nw, 1, 0);

    struct td_tensor *lp = distinct(2, SHAPE(4, 3), 0.3);
    struct td_tensor *tg = mk(I64, 1, SHAPE(4), VALS(2, 0, -100, 1));
    struct td_tensor *cw = mk(F64, 1, SHAPE(3), VALS(0.5, 2, 1.5));
    struct td_tensor *nin[3] = {lp, tg, cw};
    gradcheck(TD_OP_nll_loss, 3, nin, D100, 0, NULL, 1, 0);
    struct td_attr_arg rn[1] = {a_str("reduction", "none")};
    gradcheck(TD_OP_nll_loss, 3, nin, D100, 1, rn, 1, 0);
    struct td_attr_arg rs[1] = {a_str("reduction", "sum")};
    gradcheck(TD_OP_nll_loss, 2, nin, D100, 1, rs, 1, 0);
    struct td_tensor *all[] = {x, w, ix, g, lp, tg, cw};
    release_all(all, sizeof all / sizeof all[0]);
}

static void test_grad_layer_norm(void **state)
{
    (void)state;
    struct td_tensor *x = distinct(3, SHAPE(2, 3, 4), 0.1);
    struct td_tensor *w = distinct(2, SHAPE(3, 4), 1.2), *b = distinct(2, SHAPE(3, 4), 2.3);
    struct td_tensor *in[3] = {x, w, b};
    struct td_attr_arg a[1] = {a_ints("normalized_shape", 2, SHAPE(3, 4))};
    for (int k = 0; k < 3; k++)
        gradcheck(TD_OP_layer_norm, 3, in, D3, 1, a, 3, k);
    struct td_attr_arg a1[2] = {a_ints("normalized_shape", 1, SHAPE(4)), a_float("eps", 0.1)};
    struct td_tensor *w4 = distinct(1, SHAPE(4), 0.5);
    struct td_tensor *in2[2] = {x, w4};
    gradcheck(TD_OP_layer_norm, 2, in2, D3, 2, a1, 3, 0);
    gradcheck(TD_OP_layer_norm, 1, in2, D3, 2, a1, 3, 2);
    struct td_tensor *all[] = {x, w, b, w4};
    release_all(all, sizeof all / sizeof all[0]);
}

/* The second derivative through each formula: d/dx of <VJP(x; u), v> by create_graph
 * against finite differences of the first-order VJP, and the JVP differentiated again by
 * backward (checks 1 to 4 of gradcheck.h on output 0, the gradient carrying history; second
 * order to 1e-5). Check 4 caught softmax's JVP, built from the op's output, carrying no
 * history back to x before the engine linked outputs to their node first. */
static void gradgradcheck(enum td_op op, struct td_tensor *x0, int na,
                          const struct td_attr_arg *a, int nout)
{
    struct gcase c = nn_case(op, 1, &x0, na, a, nout, 0);
    c.strict = true;
    c.tol2 = 1e-5;
    gc_check(&c);
}

static void test_second_order(void **state)
{
    (void)state;
    struct td_tensor *x = distinct(2, SHAPE(2, 3), 0.4);
    struct td_attr_arg d1[1] = {a_int("dim", 1)};
    gradgradcheck(TD_OP_softmax, x, 1, d1, 1);
    gradgradcheck(TD_OP_log_softmax, x, 1, d1, 1);
    gradgradcheck(TD_OP_gelu, x, 0, NULL, 1);
    gradgradcheck(TD_OP_erf, x, 0, NULL, 1);
    struct td_attr_arg ln[1] = {a_ints("normalized_shape", 1, SHAPE(3))};
    gradgradcheck(TD_OP_layer_norm, x, 1, ln, 3);
    td_tensor_release(x);
}

int main(void)
{
    ag_rng = &rng;
    ag_rng_start = &rng0;
    const struct CMUnitTest tests[] = {
        AG_TEST(test_conv2d_values),
        AG_TEST(test_linear_values),
        AG_TEST(test_im2col_col2im_values),
        AG_TEST(test_max_pool_values),
        AG_TEST(test_avg_pool_values),
        AG_TEST(test_softmax_values),
        AG_TEST(test_layer_norm_values),
        AG_TEST(test_embedding_values),
        AG_TEST(test_nll_loss_values),
        AG_TEST(test_dropout_values),
        AG_TEST(test_gelu_erf_values),
        AG_TEST(test_grad_linear_conv),
        AG_TEST(test_grad_pooling),
        AG_TEST(test_grad_softmax_dropout_misc),
        AG_TEST(test_grad_layer_norm),
        AG_TEST(test_second_order),
    };
    return AG_RUN_TESTS(tests);
}
