/*
 * test_autograd.c - the autograd engine's semantics on hand-computed values: accumulation
 * into .grad, freeing saved tensors after backward (and retain_graph), autograd.grad,
 * higher order through create_graph (d^3/dx^3 of x^4), the in-place-after-save error,
 * no_grad, broadcasting gradients, forward-mode tangents, and that a session's teardown
 * frees a create_graph .grad that references its own leaf.
 */
#include <math.h>
#include <string.h>

#include "agtest.h"
#include "optest.h"

static struct td_tensor *op(bool grad, enum td_op o, int nin, struct td_tensor *const *in,
                            int na, const struct td_attr_arg *a)
{
    struct td_tensor *out = NULL;
    struct td_error err;
    int rc = td_ag_call(&sess, grad, o, nin, in, na, a, 1, &out, &err);
    if (rc)
        fail_msg("%s failed: %s", td_op_info_get(o)->name, err.msg);
    return out;
}

static struct td_tensor *bin(enum td_op o, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *in[2] = {x, y};
    return op(true, o, 2, in, 0, NULL);
}

static struct td_tensor *sum_all(struct td_tensor *x)
{
    return op(true, TD_OP_sum, 1, &x, 0, NULL);
}

static struct td_tensor *leaf(int ndim, const int64_t *shape, const double *vals)
{
    struct td_tensor *x = mk(TD_FLOAT64, ndim, shape, vals);
    struct td_error err;
    assert_int_equal(td__ag_meta_ensure(x, &err), 0);
    x->ag->requires_grad = true;
    return x;
}

static int backward(struct td_tensor *root, bool retain, bool create)
{
    struct td_error err;
    return td_ag_backward(&sess, 1, &root, NULL, 0, NULL, retain, create, false, NULL, &err);
}

static void test_accumulate_and_release(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(3), VALS(1, 2, 3));
    struct td_tensor *y = bin(TD_OP_mul, x, x);
    struct td_tensor *s = sum_all(y);
    assert_true(td_ag_requires_grad(s));
    assert_string_equal(td_ag_grad_fn_name(s), "sum");

    assert_int_equal(backward(s, true, false), 0);
    expect_vals(x->ag->grad, TD_FLOAT64, 1, SHAPE(3), VALS(2, 4, 6));
    /* A second backward (graph retained) accumulates. */
    assert_int_equal(backward(s, false, false), 0);
    expect_vals(x->ag->grad, TD_FLOAT64, 1, SHAPE(3), VALS(4, 8, 12));
    /* The saved tensors are gone now: a third backward is a clear error. */
    struct td_error err;
    assert_int_equal(td_ag_backward(&sess, 1, &s, NULL, 0, NULL, false, false, false, NULL, &err),
                     TD_EPRECOND);
    assert_non_null(strstr(err.msg, "second time"));
    td_tensor_release(s);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_grad_does_not_touch_dot_grad(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(2), VALS(3, -1));
    struct td_tensor *w = leaf(1, SHAPE(2), VALS(5, 7));
    struct td_tensor *sq = bin(TD_OP_mul, x, x);
    struct td_tensor *y = sum_all(sq);
    struct td_tensor *g[2] = {NULL, NULL};
    struct td_tensor *inputs[2] = {x, w};
    struct td_error err;
    /* w is not used: an error unless allow_unused. */
    assert_int_equal(td_ag_backward(&sess, 1, &y, NULL, 2, inputs, true, false, false, g, &err),
                     TD_EINVAL);
    assert_non_null(strstr(err.msg, "allow_unused"));
    assert_int_equal(td_ag_backward(&sess, 1, &y, NULL, 2, inputs, false, false, true, g, &err), 0);
    expect_vals(g[0], TD_FLOAT64, 1, SHAPE(2), VALS(6, -2));
    assert_null(g[1]);
    assert_null(x->ag->grad);
    td_tensor_release(g[0]);
    td_tensor_release(y);
    td_tensor_release(sq);
    td_tensor_release(x);
    td_tensor_release(w);
}

/* y = x^4 through mul only; dy/dx = 4x^3, d2 = 12x^2, d3 = 24x, each by create_graph. */
static void test_third_derivative(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(2), VALS(2, -3));
    struct td_tensor *x2 = bin(TD_OP_mul, x, x);
    struct td_tensor *x4 = bin(TD_OP_mul, x2, x2);
    struct td_tensor *cur = sum_all(x4);
    const double want[3][2] = {{32, -108}, {48, 108}, {48, -72}};
    struct td_error err;
    for (int order = 0; order < 3; order++) {
        struct td_tensor *g = NULL;
        assert_int_equal(td_ag_backward(&sess, 1, &cur, NULL, 1, &x, true, true, false, &g, &err),
                         0);
        expect_vals(g, TD_FLOAT64, 1, SHAPE(2), want[order]);
        assert_true(td_ag_requires_grad(g));
        td_tensor_release(cur);
        cur = sum_all(g);
        td_tensor_release(g);
    }
    td_tensor_release(cur);
    td_tensor_release(x4);
    td_tensor_release(x2);
    td_tensor_release(x);
}

static void test_inplace_after_save(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(2), VALS(1, 2));
    struct td_tensor *c = mk(TD_FLOAT64, 1, SHAPE(2), VALS(3, 4));
    struct td_tensor *p = bin(TD_OP_mul, x, c);
    struct td_tensor *y = sum_all(p);
    struct td_tensor *nv = mk(TD_FLOAT64, 1, SHAPE(2), VALS(9, 9));
    struct td_tensor *in[2] = {c, nv};
    struct td_error err;
    /* Writing x itself (a leaf that requires grad) in place is refused under grad mode. */
    struct td_tensor *inx[2] = {x, nv};
    assert_int_equal(td_ag_call(&sess, true, TD_OP_copy_, 2, inx, 0, NULL, 0, NULL, &err),
                     TD_EINVAL);
    /* c is saved by mul; modifying it makes backward fail instead of computing 9, 9. */
    assert_int_equal(td_ag_call(&sess, false, TD_OP_copy_, 2, in, 0, NULL, 0, NULL, &err), 0);
    assert_int_equal(td_ag_backward(&sess, 1, &y, NULL, 0, NULL, false, false, false, NULL, &err),
                     TD_EPRECOND);
    assert_non_null(strstr(err.msg, "modified by an in-place operation"));
    assert_null(x->ag->grad);
    td_tensor_release(y);
    td_tensor_release(p);
    td_tensor_release(nv);
    td_tensor_release(c);
    td_tensor_release(x);
}

static void test_no_grad_and_broadcast(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(3), VALS(1, 2, 3));
    struct td_tensor *z = leaf(2, SHAPE(2, 1), VALS(10, 20));
    struct td_tensor *in[2] = {x, z};
    struct td_tensor *plain = op(false, TD_OP_mul, 2, in, 0, NULL);
    assert_false(td_ag_requires_grad(plain));
    td_tensor_release(plain);
    /* y[i][j] = x[j] * z[i]: dL/dx = sum_i z[i] = 30 each; dL/dz[i] = sum_j x[j] = 6. */
    struct td_tensor *p = op(true, TD_OP_mul, 2, in, 0, NULL);
    struct td_tensor *y = sum_all(p);
    assert_int_equal(backward(y, false, false), 0);
    expect_vals(x->ag->grad, TD_FLOAT64, 1, SHAPE(3), VALS(30, 30, 30));
    expect_vals(z->ag->grad, TD_FLOAT64, 2, SHAPE(2, 1), VALS(6, 6));
    td_tensor_release(y);
    td_tensor_release(p);
    td_tensor_release(x);
    td_tensor_release(z);
}

static void test_forward_mode(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *x = mk(TD_FLOAT64, 1, SHAPE(2), VALS(0, 1));
    struct td_tensor *t = mk(TD_FLOAT64, 1, SHAPE(2), VALS(2, 3));
    struct td_tensor *in[2] = {x, t}, *none = NULL;
    assert_int_equal(td_ag_call(&sess, true, TD_OP_make_dual, 2, in, 0, NULL, 1, &none, &err),
                     TD_EPRECOND);
    assert_null(none);
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), TD_EPRECOND);
    struct td_tensor *d = op(true, TD_OP_make_dual, 2, in, 0, NULL);
    struct td_tensor *e = op(true, TD_OP_exp, 1, &d, 0, NULL);
    struct td_tensor *tan = td_ag_tangent(&sess, e);
    assert_non_null(tan);
    expect_vals_tol(tan, TD_FLOAT64, 1, SHAPE(2), VALS(2, 3 * M_E), 1e-15);
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    assert_null(td_ag_tangent(&sess, e));
    td_tensor_release(e);
    td_tensor_release(d);
    td_tensor_release(t);
    td_tensor_release(x);
}

/* With create_graph, x.grad = 2x records mul(saved x): x -> .grad -> node -> x is a cycle
 * that only the session's teardown can break; the fixture's leak check proves it does. */
static void test_session_breaks_grad_cycle(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(2), VALS(1, 2));
    struct td_tensor *p = bin(TD_OP_mul, x, x);
    struct td_tensor *y = sum_all(p);
    assert_int_equal(backward(y, false, true), 0);
    assert_true(td_ag_requires_grad(x->ag->grad));
    expect_vals(x->ag->grad, TD_FLOAT64, 1, SHAPE(2), VALS(2, 4));
    td_tensor_release(y);
    td_tensor_release(p);
    td_tensor_release(x);
    assert_true(sess.live_nodes > 0);
}

/* A non-differentiable op (grad N) on an input that requires grad: its float output does not
 * require grad, and backward says which op cut the history. */
static void test_nondifferentiable_op_named(void **state)
{
    (void)state;
    struct td_tensor *x = leaf(1, SHAPE(2), VALS(3, 5));
    struct td_tensor *two = mk0(TD_FLOAT64, 2);
    struct td_tensor *q = bin(TD_OP_floor_divide, x, two);
    assert_false(td_ag_requires_grad(q));
    expect_vals(q, TD_FLOAT64, 1, SHAPE(2), VALS(1, 2));
    struct td_tensor *s = sum_all(q);
    struct td_error err;
    assert_int_equal(td_ag_backward(&sess, 1, &s, NULL, 0, NULL, false, false, false, NULL, &err),
                     TD_EINVAL);
    assert_non_null(strstr(err.msg, "does not require grad"));
    td_tensor_release(s);
    /* The op's own output names it. */
    assert_int_equal(td_ag_backward(&sess, 1, &q, NULL, 0, NULL, false, false, false, NULL, &err),
                     TD_EINVAL);
    assert_non_null(strstr(err.msg, "output of floor_divide, which is not differentiable"));
    td_tensor_release(q);
    td_tensor_release(two);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_accumulate_and_release),
        AG_TEST(test_grad_does_not_touch_dot_grad),
        AG_TEST(test_third_derivative),
        AG_TEST(test_inplace_after_save),
        AG_TEST(test_no_grad_and_broadcast),
        AG_TEST(test_forward_mode),
        AG_TEST(test_session_breaks_grad_cycle),
        AG_TEST(test_nondifferentiable_op_named),
    };
    return AG_RUN_TESTS(tests);
}
