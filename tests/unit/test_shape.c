/*
 * test_shape.c - shape and view ops against hand-computed results: views share storage,
 * copies do not, errors name the problem, zero-size and 0-d inputs work, nothing leaks.
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

/* x = [[0,1,2],[3,4,5]] float32 and its transpose (a non-contiguous view). */
static struct td_tensor *x23(void)
{
    return mk(TD_FLOAT32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
}

static struct td_tensor *transposed(struct td_tensor *x)
{
    struct td_attr_arg at[] = {a_int("dim0", 0), a_int("dim1", 1)};
    return run1(TD_OP_transpose, 1, &x, 2, at);
}

static void test_reshape_view(void **state)
{
    (void)state;
    struct td_tensor *x = x23();
    struct td_attr_arg at[] = {a_ints("shape", 2, SHAPE(3, -1))};
    struct td_tensor *r = run1(TD_OP_reshape, 1, &x, 1, at);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 2), VALS(0, 1, 2, 3, 4, 5));
    assert_ptr_equal(r->storage, x->storage);
    td_tensor_release(r);

    struct td_attr_arg av[] = {a_ints("shape", 1, SHAPE(6))};
    r = run1(TD_OP_view, 1, &x, 1, av);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(6), VALS(0, 1, 2, 3, 4, 5));
    assert_ptr_equal(r->storage, x->storage);
    td_tensor_release(r);

    /* 0-d <-> [1,1] and [] */
    struct td_tensor *s = mk0(TD_INT64, 7);
    struct td_attr_arg a11[] = {a_ints("shape", 2, SHAPE(1, 1))};
    r = run1(TD_OP_reshape, 1, &s, 1, a11);
    expect_vals(r, TD_INT64, 2, SHAPE(1, 1), VALS(7));
    struct td_attr_arg a0[] = {a_ints("shape", 0, NULL)};
    struct td_tensor *r0 = run1(TD_OP_reshape, 1, &r, 1, a0);
    expect_vals(r0, TD_INT64, 0, NULL, VALS(7));
    td_tensor_release(r0);
    td_tensor_release(r);
    td_tensor_release(s);
    td_tensor_release(x);
}

static void test_reshape_copy_and_errors(void **state)
{
    (void)state;
    struct td_tensor *x = x23();
    struct td_tensor *t = transposed(x);
    expect_vals(t, TD_FLOAT32, 2, SHAPE(3, 2), VALS(0, 3, 1, 4, 2, 5));
    struct td_attr_arg a6[] = {a_ints("shape", 1, SHAPE(6))};
    struct td_tensor *r = run1(TD_OP_reshape, 1, &t, 1, a6);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(6), VALS(0, 3, 1, 4, 2, 5));
    assert_ptr_not_equal(r->storage, x->storage);
    td_tensor_release(r);

    run_fail(TD_OP_view, 1, &t, 1, a6, 1, TD_EINVAL,
             "view: shape [6] is not compatible with the input's strides; use reshape");
    /* A view that is possible on the transpose: splitting a dim. */
    struct td_attr_arg a312[] = {a_ints("shape", 3, SHAPE(3, 2, 1))};
    r = run1(TD_OP_view, 1, &t, 1, a312);
    expect_vals(r, TD_FLOAT32, 3, SHAPE(3, 2, 1), VALS(0, 3, 1, 4, 2, 5));
    td_tensor_release(r);

    struct td_attr_arg bad1[] = {a_ints("shape", 2, SHAPE(4, -1))};
    run_fail(TD_OP_reshape, 1, &x, 1, bad1, 1, TD_EINVAL, "invalid for input of size 6");
    struct td_attr_arg bad2[] = {a_ints("shape", 2, SHAPE(-1, -1))};
    run_fail(TD_OP_reshape, 1, &x, 1, bad2, 1, TD_EINVAL, "only one dimension");
    struct td_attr_arg bad3[] = {a_ints("shape", 2, SHAPE(2, -2))};
    run_fail(TD_OP_reshape, 1, &x, 1, bad3, 1, TD_EINVAL, "invalid size -2");
    struct td_attr_arg bad4[] = {a_ints("shape", 1, SHAPE(7))};
    run_fail(TD_OP_reshape, 1, &x, 1, bad4, 1, TD_EINVAL, NULL);

    /* Zero-size: [0,3] -> [3,0] works, [0,-1] cannot be inferred. */
    struct td_tensor *z = mk(TD_FLOAT32, 2, SHAPE(0, 3), NULL);
    struct td_attr_arg a30[] = {a_ints("shape", 2, SHAPE(3, 0))};
    r = run1(TD_OP_reshape, 1, &z, 1, a30);
    expect_shape(r, TD_FLOAT32, 2, SHAPE(3, 0));
    td_tensor_release(r);
    struct td_attr_arg a0m[] = {a_ints("shape", 2, SHAPE(0, -1))};
    run_fail(TD_OP_reshape, 1, &z, 1, a0m, 1, TD_EINVAL, NULL);
    td_tensor_release(z);
    td_tensor_release(t);
    td_tensor_release(x);
}

static void test_permute_transpose(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_INT32, 3, SHAPE(2, 1, 3), VALS(0, 1, 2, 3, 4, 5));
    struct td_attr_arg ap[] = {a_ints("dims", 3, SHAPE(2, 0, -2))};
    struct td_tensor *r = run1(TD_OP_permute, 1, &x, 1, ap);
    expect_vals(r, TD_INT32, 3, SHAPE(3, 2, 1), VALS(0, 3, 1, 4, 2, 5));
    assert_ptr_equal(r->storage, x->storage);
    td_tensor_release(r);
    struct td_attr_arg bad[] = {a_ints("dims", 3, SHAPE(0, 0, 1))};
    run_fail(TD_OP_permute, 1, &x, 1, bad, 1, TD_EINVAL, "more than once");
    struct td_attr_arg bad2[] = {a_ints("dims", 2, SHAPE(0, 1))};
    run_fail(TD_OP_permute, 1, &x, 1, bad2, 1, TD_EINVAL, NULL);
    struct td_attr_arg at[] = {a_int("dim0", -1), a_int("dim1", 0)};
    r = run1(TD_OP_transpose, 1, &x, 2, at);
    expect_vals(r, TD_INT32, 3, SHAPE(3, 1, 2), VALS(0, 3, 1, 4, 2, 5));
    td_tensor_release(r);
    struct td_attr_arg at3[] = {a_int("dim0", 3), a_int("dim1", 0)};
    run_fail(TD_OP_transpose, 1, &x, 2, at3, 1, TD_EINVAL,
             "transpose: dim 3 out of range for 3-d tensor");
    td_tensor_release(x);
}

static void test_expand_broadcast(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT64, 2, SHAPE(3, 1), VALS(1, 2, 3));
    struct td_attr_arg ae[] = {a_ints("shape", 3, SHAPE(2, -1, 2))};
    struct td_tensor *r = run1(TD_OP_expand, 1, &x, 1, ae);
    expect_vals(r, TD_FLOAT64, 3, SHAPE(2, 3, 2), VALS(1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3));
    assert_int_equal(r->strides[0], 0);
    assert_int_equal(r->strides[2], 0);
    assert_ptr_equal(r->storage, x->storage);
    td_tensor_release(r);
    struct td_attr_arg ab[] = {a_ints("shape", 2, SHAPE(3, 2))};
    r = run1(TD_OP_broadcast_to, 1, &x, 1, ab);
    expect_vals(r, TD_FLOAT64, 2, SHAPE(3, 2), VALS(1, 1, 2, 2, 3, 3));
    td_tensor_release(r);
    struct td_attr_arg a0[] = {a_ints("shape", 2, SHAPE(3, 0))};
    r = run1(TD_OP_expand, 1, &x, 1, a0);
    expect_shape(r, TD_FLOAT64, 2, SHAPE(3, 0));
    td_tensor_release(r);
    struct td_attr_arg bad[] = {a_ints("shape", 2, SHAPE(4, 1))};
    run_fail(TD_OP_expand, 1, &x, 1, bad, 1, TD_EINVAL, "size 3 of dim 0 cannot expand to 4");
    struct td_attr_arg bad2[] = {a_ints("shape", 1, SHAPE(3))};
    run_fail(TD_OP_broadcast_to, 1, &x, 1, bad2, 1, TD_EINVAL, "fewer dims");
    struct td_attr_arg bad3[] = {a_ints("shape", 3, SHAPE(-1, 3, 1))};
    run_fail(TD_OP_expand, 1, &x, 1, bad3, 1, TD_EINVAL, "new leading dim");
    td_tensor_release(x);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_INT16, 3, SHAPE(1, 3, 1), VALS(4, 5, 6));
    struct td_tensor *r = run1(TD_OP_squeeze, 1, &x, 0, NULL);
    expect_vals(r, TD_INT16, 1, SHAPE(3), VALS(4, 5, 6));
    td_tensor_release(r);
    struct td_attr_arg a0[] = {a_ints("dim", 1, SHAPE(0))};
    r = run1(TD_OP_squeeze, 1, &x, 1, a0);
    expect_vals(r, TD_INT16, 2, SHAPE(3, 1), VALS(4, 5, 6));
    td_tensor_release(r);
    /* A listed dim that is not size 1 stays. */
    struct td_attr_arg a1[] = {a_ints("dim", 2, SHAPE(1, -1))};
    r = run1(TD_OP_squeeze, 1, &x, 1, a1);
    expect_vals(r, TD_INT16, 2, SHAPE(1, 3), VALS(4, 5, 6));
    td_tensor_release(r);
    struct td_attr_arg a5[] = {a_ints("dim", 1, SHAPE(3))};
    run_fail(TD_OP_squeeze, 1, &x, 1, a5, 1, TD_EINVAL, "out of range");

    struct td_tensor *v = mk(TD_INT16, 1, SHAPE(3), VALS(4, 5, 6));
    struct td_attr_arg u[] = {a_int("dim", -1)};
    r = run1(TD_OP_unsqueeze, 1, &v, 1, u);
    expect_vals(r, TD_INT16, 2, SHAPE(3, 1), VALS(4, 5, 6));
    td_tensor_release(r);
    struct td_attr_arg u0[] = {a_int("dim", -2)};
    r = run1(TD_OP_unsqueeze, 1, &v, 1, u0);
    expect_vals(r, TD_INT16, 2, SHAPE(1, 3), VALS(4, 5, 6));
    td_tensor_release(r);
    struct td_attr_arg u2[] = {a_int("dim", 2)};
    run_fail(TD_OP_unsqueeze, 1, &v, 1, u2, 1, TD_EINVAL, "unsqueeze: dim 2 out of range");
    struct td_tensor *s = mk0(TD_BOOL, 1);
    struct td_attr_arg z[] = {a_int("dim", 0)};
    r = run1(TD_OP_unsqueeze, 1, &s, 1, z);
    expect_vals(r, TD_BOOL, 1, SHAPE(1), VALS(1));
    td_tensor_release(r);
    td_tensor_release(s);
    td_tensor_release(v);
    td_tensor_release(x);
}

static void test_flatten(void **state)
{
    (void)state;
    struct td_tensor *x =
        mk(TD_FLOAT32, 3, SHAPE(2, 3, 2), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    struct td_attr_arg a[] = {a_int("start_dim", 1)};
    struct td_tensor *r = run1(TD_OP_flatten, 1, &x, 1, a);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 6), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    assert_ptr_equal(r->storage, x->storage);
    td_tensor_release(r);
    struct td_tensor *s = mk0(TD_FLOAT32, 2.5);
    r = run1(TD_OP_flatten, 1, &s, 0, NULL);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(1), VALS(2.5));
    td_tensor_release(r);
    struct td_tensor *y = x23();
    struct td_tensor *t = transposed(y);
    r = run1(TD_OP_flatten, 1, &t, 0, NULL);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(6), VALS(0, 3, 1, 4, 2, 5));
    td_tensor_release(r);
    struct td_attr_arg bad[] = {a_int("start_dim", 2), a_int("end_dim", 1)};
    run_fail(TD_OP_flatten, 1, &x, 2, bad, 1, TD_EINVAL, "start_dim");
    td_tensor_release(t);
    td_tensor_release(y);
    td_tensor_release(s);
    td_tensor_release(x);
}

static void check_slice(struct td_tensor *x, int na, const struct td_attr_arg *at, int64_t n,
                        const double *want)
{
    struct td_tensor *r = run1(TD_OP_slice, 1, &x, na, at);
    expect_vals(r, x->dtype, 1, &n, want);
    td_tensor_release(r);
}

static void test_slice(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_INT64, 1, SHAPE(5), VALS(0, 1, 2, 3, 4));
    struct td_attr_arg a1[] = {a_int("dim", 0), a_int("start", 1), a_int("end", 4)};
    check_slice(x, 3, a1, 3, VALS(1, 2, 3));
    struct td_attr_arg a2[] = {a_int("dim", 0), a_int("step", -1)};
    check_slice(x, 2, a2, 5, VALS(4, 3, 2, 1, 0));
    struct td_attr_arg a3[] = {a_int("dim", 0), a_int("start", -2)};
    check_slice(x, 2, a3, 2, VALS(3, 4));
    struct td_attr_arg a4[] = {a_int("dim", 0), a_int("step", 2)};
    check_slice(x, 2, a4, 3, VALS(0, 2, 4));
    struct td_attr_arg a5[] = {a_int("dim", 0), a_int("start", 3), a_int("end", 0),
                               a_int("step", -2)};
    check_slice(x, 4, a5, 2, VALS(3, 1));
    struct td_attr_arg a6[] = {a_int("dim", 0), a_int("start", 10)};
    check_slice(x, 2, a6, 0, NULL);
    struct td_attr_arg a7[] = {a_int("dim", 0), a_int("start", -100), a_int("end", 100),
                               a_int("step", 3)};
    check_slice(x, 4, a7, 2, VALS(0, 3));
    struct td_attr_arg a8[] = {a_int("dim", 0), a_int("start", 100), a_int("end", -100),
                               a_int("step", -4)};
    check_slice(x, 4, a8, 2, VALS(4, 0));
    struct td_attr_arg a9[] = {a_int("dim", 0), a_int("step", INT64_MIN)};
    check_slice(x, 2, a9, 1, VALS(4));
    struct td_attr_arg bad[] = {a_int("dim", 0), a_int("step", 0)};
    run_fail(TD_OP_slice, 1, &x, 2, bad, 1, TD_EINVAL, "step cannot be zero");

    /* 2-d, negative step on the inner dim, then slicing the resulting view again. */
    struct td_tensor *y = x23();
    struct td_attr_arg b1[] = {a_int("dim", 1), a_int("step", -1)};
    struct td_tensor *r = run1(TD_OP_slice, 1, &y, 2, b1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 3), VALS(2, 1, 0, 5, 4, 3));
    assert_ptr_equal(r->storage, y->storage);
    struct td_attr_arg b2[] = {a_int("dim", -1), a_int("start", 1)};
    struct td_tensor *r2 = run1(TD_OP_slice, 1, &r, 2, b2);
    expect_vals(r2, TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 0, 4, 3));
    td_tensor_release(r2);
    td_tensor_release(r);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_select_narrow(void **state)
{
    (void)state;
    struct td_tensor *x = x23();
    struct td_attr_arg a[] = {a_int("dim", 1), a_int("index", -1)};
    struct td_tensor *r = run1(TD_OP_select, 1, &x, 2, a);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(2), VALS(2, 5));
    td_tensor_release(r);
    struct td_attr_arg a0[] = {a_int("dim", 0), a_int("index", 1)};
    r = run1(TD_OP_select, 1, &x, 2, a0);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(3), VALS(3, 4, 5));
    struct td_attr_arg aa[] = {a_int("dim", 0), a_int("index", 2)};
    struct td_tensor *r0 = run1(TD_OP_select, 1, &r, 2, aa);
    expect_vals(r0, TD_FLOAT32, 0, NULL, VALS(5));
    td_tensor_release(r0);
    struct td_attr_arg bad[] = {a_int("dim", 0), a_int("index", 5)};
    run_fail(TD_OP_select, 1, &r, 2, bad, 1, TD_EINVAL,
             "select: index 5 out of range for dim 0 of size 3");
    struct td_attr_arg bad2[] = {a_int("dim", 0), a_int("index", -4)};
    run_fail(TD_OP_select, 1, &r, 2, bad2, 1, TD_EINVAL, NULL);
    td_tensor_release(r);

    struct td_attr_arg n1[] = {a_int("dim", 1), a_int("start", 1), a_int("length", 2)};
    r = run1(TD_OP_narrow, 1, &x, 3, n1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 2, 4, 5));
    td_tensor_release(r);
    struct td_attr_arg n2[] = {a_int("dim", 1), a_int("start", -1), a_int("length", 1)};
    r = run1(TD_OP_narrow, 1, &x, 3, n2);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 1), VALS(2, 5));
    td_tensor_release(r);
    struct td_attr_arg n3[] = {a_int("dim", 1), a_int("start", 3), a_int("length", 0)};
    r = run1(TD_OP_narrow, 1, &x, 3, n3);
    expect_shape(r, TD_FLOAT32, 2, SHAPE(2, 0));
    td_tensor_release(r);
    struct td_attr_arg nb[] = {a_int("dim", 1), a_int("start", 2), a_int("length", 2)};
    run_fail(TD_OP_narrow, 1, &x, 3, nb, 1, TD_EINVAL, "exceeds");
    td_tensor_release(x);
}

static void call_n(enum td_op op, struct td_tensor *x, int na, const struct td_attr_arg *at,
                   int nout, struct td_tensor **out)
{
    struct td_error err;
    int rc = td_op_call(op, 1, &x, na, at, nout, out, NULL, NULL, &err);
    if (rc)
        fail_msg("%s: %s", td_op_info_get(op)->name, err.msg);
}

static void release_n(struct td_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        td_tensor_release(t[i]);
}

static void test_split_chunk(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 1, SHAPE(5), VALS(0, 1, 2, 3, 4));
    struct td_tensor *o[4] = {NULL};
    struct td_attr_arg s2[] = {a_int("split_size", 2)};
    call_n(TD_OP_split, x, 1, s2, 3, o);
    expect_vals(o[0], TD_FLOAT32, 1, SHAPE(2), VALS(0, 1));
    expect_vals(o[1], TD_FLOAT32, 1, SHAPE(2), VALS(2, 3));
    expect_vals(o[2], TD_FLOAT32, 1, SHAPE(1), VALS(4));
    assert_ptr_equal(o[2]->storage, x->storage);
    release_n(o, 3);
    struct td_attr_arg sec[] = {a_ints("sections", 3, SHAPE(1, 0, 4))};
    call_n(TD_OP_split, x, 1, sec, 3, o);
    expect_vals(o[0], TD_FLOAT32, 1, SHAPE(1), VALS(0));
    expect_shape(o[1], TD_FLOAT32, 1, SHAPE(0));
    expect_vals(o[2], TD_FLOAT32, 1, SHAPE(4), VALS(1, 2, 3, 4));
    release_n(o, 3);
    run_fail(TD_OP_split, 1, &x, 1, s2, 2, TD_EINVAL, "makes 3 pieces but 2 outputs");
    struct td_attr_arg both[] = {a_int("split_size", 2), a_ints("sections", 1, SHAPE(5))};
    run_fail(TD_OP_split, 1, &x, 2, both, 1, TD_EINVAL, "exactly one");
    struct td_attr_arg badsec[] = {a_ints("sections", 2, SHAPE(1, 3))};
    run_fail(TD_OP_split, 1, &x, 1, badsec, 2, TD_EINVAL, "add up to 4");

    /* chunk: ceil(5/4) = 2 per piece, so only 3 pieces. */
    struct td_attr_arg c4[] = {a_int("chunks", 4)};
    call_n(TD_OP_chunk, x, 1, c4, 3, o);
    expect_vals(o[0], TD_FLOAT32, 1, SHAPE(2), VALS(0, 1));
    expect_vals(o[1], TD_FLOAT32, 1, SHAPE(2), VALS(2, 3));
    expect_vals(o[2], TD_FLOAT32, 1, SHAPE(1), VALS(4));
    release_n(o, 3);
    run_fail(TD_OP_chunk, 1, &x, 1, c4, 4, TD_EINVAL, "makes 3 pieces but 4 outputs");
    struct td_attr_arg c0[] = {a_int("chunks", 0)};
    run_fail(TD_OP_chunk, 1, &x, 1, c0, 1, TD_EINVAL, "positive");

    /* 2-d chunk on dim 1 of the transpose (non-contiguous). */
    struct td_tensor *y = x23();
    struct td_tensor *t = transposed(y);
    struct td_attr_arg c2[] = {a_int("chunks", 2), a_int("dim", 1)};
    call_n(TD_OP_chunk, t, 2, c2, 2, o);
    expect_vals(o[0], TD_FLOAT32, 2, SHAPE(3, 1), VALS(0, 1, 2));
    expect_vals(o[1], TD_FLOAT32, 2, SHAPE(3, 1), VALS(3, 4, 5));
    release_n(o, 2);

    /* Zero-size dim: chunk gives `chunks` empty pieces. */
    struct td_tensor *z = mk(TD_FLOAT32, 1, SHAPE(0), NULL);
    struct td_attr_arg c3[] = {a_int("chunks", 3)};
    call_n(TD_OP_chunk, z, 1, c3, 3, o);
    for (int i = 0; i < 3; i++)
        expect_shape(o[i], TD_FLOAT32, 1, SHAPE(0));
    release_n(o, 3);
    td_tensor_release(z);
    td_tensor_release(t);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_contiguous_clone(void **state)
{
    (void)state;
    struct td_tensor *x = x23();
    struct td_tensor *r = run1(TD_OP_contiguous, 1, &x, 0, NULL);
    assert_ptr_equal(r, x);
    td_tensor_release(r);
    struct td_tensor *t = transposed(x);
    r = run1(TD_OP_contiguous, 1, &t, 0, NULL);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 2), VALS(0, 3, 1, 4, 2, 5));
    assert_true(td_tensor_is_contiguous(r));
    assert_ptr_not_equal(r->storage, x->storage);
    td_tensor_release(r);
    r = run1(TD_OP_clone, 1, &t, 0, NULL);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 2), VALS(0, 3, 1, 4, 2, 5));
    assert_ptr_not_equal(r->storage, x->storage);
    td_tensor_release(r);
    r = run1(TD_OP_clone, 1, &x, 0, NULL);
    assert_ptr_not_equal(r->storage, x->storage);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    td_tensor_release(r);
    td_tensor_release(t);
    td_tensor_release(x);
}

static void test_cat_stack(void **state)
{
    (void)state;
    struct td_tensor *in[3];
    in[0] = mk(TD_INT32, 1, SHAPE(2), VALS(1, 2));
    in[1] = mk(TD_FLOAT32, 1, SHAPE(1), VALS(0.5));
    struct td_tensor *r = run1(TD_OP_cat, 2, in, 0, NULL);
    expect_vals(r, TD_FLOAT32, 1, SHAPE(3), VALS(1, 2, 0.5));
    td_tensor_release(r);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);

    struct td_tensor *x = x23();
    in[0] = mk(TD_FLOAT32, 2, SHAPE(3, 1), VALS(9, 8, 7));
    in[1] = transposed(x);      /* [3,2] = [[0,3],[1,4],[2,5]] */
    in[2] = mk(TD_FLOAT32, 2, SHAPE(3, 0), NULL);
    struct td_attr_arg d1[] = {a_int("dim", -1)};
    r = run1(TD_OP_cat, 3, in, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 3), VALS(9, 0, 3, 8, 1, 4, 7, 2, 5));
    td_tensor_release(r);
    run_fail(TD_OP_cat, 3, in, 0, NULL, 1, TD_EINVAL, "cat: input 1 has shape [3,2]");
    td_tensor_release(in[2]);
    in[2] = mk(TD_FLOAT32, 1, SHAPE(0), NULL);
    run_fail(TD_OP_cat, 3, in, 1, d1, 1, TD_EINVAL, NULL);
    td_tensor_release(in[2]);
    in[2] = mk0(TD_FLOAT32, 1);
    run_fail(TD_OP_cat, 3, in, 0, NULL, 1, TD_EINVAL, "0-d");
    td_tensor_release(in[2]);
    td_tensor_release(in[1]);
    td_tensor_release(in[0]);

    in[0] = mk(TD_INT64, 1, SHAPE(2), VALS(1, 2));
    in[1] = mk(TD_INT64, 1, SHAPE(2), VALS(3, 4));
    r = run1(TD_OP_stack, 2, in, 0, NULL);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    td_tensor_release(r);
    r = run1(TD_OP_stack, 2, in, 1, d1);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 2), VALS(1, 3, 2, 4));
    td_tensor_release(r);
    struct td_attr_arg d3[] = {a_int("dim", 2)};
    run_fail(TD_OP_stack, 2, in, 1, d3, 1, TD_EINVAL, "out of range");
    td_tensor_release(in[1]);
    in[1] = mk(TD_INT64, 1, SHAPE(3), VALS(3, 4, 5));
    run_fail(TD_OP_stack, 2, in, 0, NULL, 1, TD_EINVAL, "stack: input 1 has shape [3]");
    td_tensor_release(in[1]);
    td_tensor_release(in[0]);
    in[0] = mk0(TD_BOOL, 1);
    in[1] = mk0(TD_FLOAT64, 2.5);
    r = run1(TD_OP_stack, 2, in, 0, NULL);
    expect_vals(r, TD_FLOAT64, 1, SHAPE(2), VALS(1, 2.5));
    td_tensor_release(r);
    td_tensor_release(in[1]);
    td_tensor_release(in[0]);
    td_tensor_release(x);
}

static void test_flip_roll(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_INT64, 2, SHAPE(2, 3), VALS(0, 1, 2, 3, 4, 5));
    struct td_attr_arg f1[] = {a_ints("dims", 1, SHAPE(1))};
    struct td_tensor *r = run1(TD_OP_flip, 1, &x, 1, f1);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(2, 1, 0, 5, 4, 3));
    td_tensor_release(r);
    struct td_attr_arg f2[] = {a_ints("dims", 2, SHAPE(0, -1))};
    r = run1(TD_OP_flip, 1, &x, 1, f2);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(5, 4, 3, 2, 1, 0));
    td_tensor_release(r);
    struct td_attr_arg f3[] = {a_ints("dims", 2, SHAPE(1, -1))};
    run_fail(TD_OP_flip, 1, &x, 1, f3, 1, TD_EINVAL, "more than once");
    struct td_tensor *z = mk(TD_INT64, 2, SHAPE(0, 2), NULL);
    r = run1(TD_OP_flip, 1, &z, 1, f2);
    expect_shape(r, TD_INT64, 2, SHAPE(0, 2));
    td_tensor_release(r);

    struct td_attr_arg r1[] = {a_ints("shifts", 1, SHAPE(1))};
    r = run1(TD_OP_roll, 1, &x, 1, r1);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(5, 0, 1, 2, 3, 4));
    td_tensor_release(r);
    struct td_attr_arg r2[] = {a_ints("shifts", 1, SHAPE(-1)), a_ints("dims", 1, SHAPE(1))};
    r = run1(TD_OP_roll, 1, &x, 2, r2);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(1, 2, 0, 4, 5, 3));
    td_tensor_release(r);
    struct td_attr_arg r3[] = {a_ints("shifts", 2, SHAPE(1, 7)), a_ints("dims", 2, SHAPE(0, 1))};
    r = run1(TD_OP_roll, 1, &x, 2, r3);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(5, 3, 4, 2, 0, 1));
    td_tensor_release(r);
    /* Non-contiguous input: roll the flipped view's flattened order by -2. */
    struct td_tensor *fl = NULL;
    {
        struct td_attr_arg s[] = {a_int("dim", 1), a_int("step", -1)};
        fl = run1(TD_OP_slice, 1, &x, 2, s);
    }
    struct td_attr_arg r4[] = {a_ints("shifts", 1, SHAPE(-2))};
    r = run1(TD_OP_roll, 1, &fl, 1, r4);
    expect_vals(r, TD_INT64, 2, SHAPE(2, 3), VALS(0, 5, 4, 3, 2, 1));
    td_tensor_release(r);
    r = run1(TD_OP_roll, 1, &z, 1, r1);
    expect_shape(r, TD_INT64, 2, SHAPE(0, 2));
    td_tensor_release(r);
    struct td_attr_arg rb[] = {a_ints("shifts", 2, SHAPE(1, 1)), a_ints("dims", 1, SHAPE(0))};
    run_fail(TD_OP_roll, 1, &x, 2, rb, 1, TD_EINVAL, "2 shifts but 1 dims");
    struct td_attr_arg rb2[] = {a_ints("shifts", 2, SHAPE(1, 1))};
    run_fail(TD_OP_roll, 1, &x, 1, rb2, 1, TD_EINVAL, NULL);
    td_tensor_release(fl);
    td_tensor_release(z);
    td_tensor_release(x);
}

static void test_tril_triu(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT32, 2, SHAPE(3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    struct td_tensor *r = run1(TD_OP_tril, 1, &x, 0, NULL);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 3), VALS(1, 0, 0, 4, 5, 0, 7, 8, 9));
    td_tensor_release(r);
    struct td_attr_arg dm1[] = {a_int("diagonal", -1)};
    r = run1(TD_OP_tril, 1, &x, 1, dm1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 3), VALS(0, 0, 0, 4, 0, 0, 7, 8, 0));
    td_tensor_release(r);
    r = run1(TD_OP_triu, 1, &x, 0, NULL);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 3), VALS(1, 2, 3, 0, 5, 6, 0, 0, 9));
    td_tensor_release(r);
    struct td_attr_arg d1[] = {a_int("diagonal", 1)};
    r = run1(TD_OP_triu, 1, &x, 1, d1);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 3), VALS(0, 2, 3, 0, 0, 6, 0, 0, 0));
    td_tensor_release(r);
    /* Batched, non-square, through a transposed view: y^T = [[0,3],[1,4],[2,5]]. */
    struct td_tensor *y = x23();
    struct td_tensor *t = transposed(y);
    r = run1(TD_OP_triu, 1, &t, 0, NULL);
    expect_vals(r, TD_FLOAT32, 2, SHAPE(3, 2), VALS(0, 3, 0, 4, 0, 0));
    td_tensor_release(r);
    struct td_tensor *b = mk(TD_BOOL, 3, SHAPE(2, 2, 2), VALS(1, 1, 1, 1, 1, 1, 1, 1));
    r = run1(TD_OP_tril, 1, &b, 0, NULL);
    expect_vals(r, TD_BOOL, 3, SHAPE(2, 2, 2), VALS(1, 0, 1, 1, 1, 0, 1, 1));
    td_tensor_release(r);
    struct td_tensor *v = mk(TD_FLOAT32, 1, SHAPE(3), VALS(1, 2, 3));
    run_fail(TD_OP_tril, 1, &v, 0, NULL, 1, TD_EINVAL, "at least 2 dims");
    td_tensor_release(v);
    td_tensor_release(b);
    td_tensor_release(t);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *x = x23();
    struct td_tensor *t = transposed(x);
    struct td_attr_arg a6[] = {a_ints("shape", 1, SHAPE(6))};
    fault_loop(TD_OP_reshape, 1, &t, 1, a6, 1);
    fault_loop(TD_OP_contiguous, 1, &t, 0, NULL, 1);
    struct td_attr_arg s1[] = {a_int("split_size", 1), a_int("dim", 1)};
    fault_loop(TD_OP_split, 1, &x, 2, s1, 3);
    struct td_tensor *in[2] = {x, x};
    fault_loop(TD_OP_cat, 2, in, 0, NULL, 1);
    fault_loop(TD_OP_stack, 2, in, 0, NULL, 1);
    struct td_attr_arg f[] = {a_ints("dims", 1, SHAPE(0))};
    fault_loop(TD_OP_flip, 1, &t, 1, f, 1);
    struct td_attr_arg r1[] = {a_ints("shifts", 1, SHAPE(1))};
    fault_loop(TD_OP_roll, 1, &t, 1, r1, 1);
    td_tensor_release(t);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reshape_view, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_reshape_copy_and_errors, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_permute_transpose, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_expand_broadcast, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_squeeze_unsqueeze, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_flatten, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_slice, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_select_narrow, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_split_chunk, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_contiguous_clone, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_cat_stack, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_flip_roll, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_tril_triu, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
