/*
 * test_derivatives_rest.c - the derivative formulas of the reductions, scans, matmul, shape,
 * view and indexing ops, checked against float64 central finite differences (never against
 * the formulas' own output).
 *
 * The generic checker of gradcheck.h runs every case (an op, inputs of float64 or
 * complex128 with random values, attributes covering negative dims, keepdim, steps): VJP and
 * JVP against finite differences and against each other, the second-order VJP, and the JVP
 * differentiated again (forward over reverse).
 * Hand-computed cases cover what finite differences cannot: ties of amax, and scatter's
 * reduce="multiply" refusing a second derivative where src has zeros.
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------------------------------
 * Case builders.
 */
static struct gcase one(const char *name, enum td_op op, struct td_tensor *x, int na,
                        const struct td_attr_arg *a)
{
    return gc_case(name, op, 1, &x, na, a, 1);
}

#define ONE(name, op, x, ...) one(name, op, x, NA(__VA_ARGS__), A(__VA_ARGS__))

static void run(struct gcase k)
{
    gc_check(&k);
}

static const enum td_dtype DTS[2] = {TD_FLOAT64, TD_COMPLEX128};

/* ---- reductions ---- */

static void test_sum_mean(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("sum dim -1 keepdim", TD_OP_sum, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("dim", 1, SHAPE(-1)), a_bool("keepdim", true)));
        run(ONE("mean dims 0,-1", TD_OP_mean, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dim", 2, SHAPE(0, -1))));
        run(ONE("mean all keepdim", TD_OP_mean, rnd(dt, 2, SHAPE(2, 3), 0),
                a_bool("keepdim", true)));
        run(ONE("mean empty dim list", TD_OP_mean, rnd(dt, 2, SHAPE(2, 3), 0),
                a_ints("dim", 0, NULL)));
    }
}

/* Values with exactly the zeros at the listed flat positions. */
static struct td_tensor *with_zeros(struct td_tensor *x, int n, const int64_t *pos)
{
    for (int i = 0; i < n; i++)
        cset(x, pos[i], 0);
    return x;
}

static void test_prod(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("prod dim 1 keepdim", TD_OP_prod, rnd(dt, 3, SHAPE(2, 3, 2), 0.5),
                a_ints("dim", 1, SHAPE(1)), a_bool("keepdim", true)));
        run(ONE("prod dims -1,0", TD_OP_prod, rnd(dt, 3, SHAPE(2, 2, 3), 0.5),
                a_ints("dim", 2, SHAPE(-1, 0))));
        run(ONE("prod all", TD_OP_prod, rnd(dt, 2, SHAPE(2, 3), 0.5), a_bool("keepdim", false)));
        /* Exactly one zero in the whole tensor, then one zero per row, then two in a row. */
        run(ONE("prod all one zero", TD_OP_prod,
                with_zeros(rnd(dt, 2, SHAPE(2, 3), 0.5), 1, SHAPE(4)), a_bool("keepdim", false)));
        run(ONE("prod dim 1 zeros", TD_OP_prod,
                with_zeros(rnd(dt, 2, SHAPE(3, 4), 0.5), 4, SHAPE(1, 4, 6, 10)),
                a_ints("dim", 1, SHAPE(1))));
        run(ONE("prod 0-d", TD_OP_prod, rnd(dt, 0, NULL, 0.5), a_bool("keepdim", false)));
    }
}

static void test_amax_amin(void **state)
{
    (void)state;
    run(ONE("amax dim -1", TD_OP_amax, rnd(TD_FLOAT64, 2, SHAPE(3, 4), 0),
            a_ints("dim", 1, SHAPE(-1))));
    run(ONE("amax dims keepdim", TD_OP_amax, rnd(TD_FLOAT64, 3, SHAPE(2, 3, 2), 0),
            a_ints("dim", 2, SHAPE(0, 2)), a_bool("keepdim", true)));
    run(ONE("amin all", TD_OP_amin, rnd(TD_FLOAT64, 2, SHAPE(3, 2), 0), a_bool("keepdim", false)));
}

/* Ties share the gradient evenly (PyTorch): hand-computed. */
static void test_amax_ties(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *x = mk(TD_FLOAT64, 2, SHAPE(2, 3), VALS(1, 3, 3, 5, 5, 5));
    assert_int_equal(td__ag_meta_ensure(x, &err), 0);
    x->ag->requires_grad = true;
    struct td_attr_arg a = a_ints("dim", 1, SHAPE(1));
    struct td_tensor *y = NULL, *g = NULL;
    assert_int_equal(td_ag_call(&sess, true, TD_OP_amax, 1, &x, 1, &a, 1, &y, &err), 0);
    struct td_tensor *go = mk(TD_FLOAT64, 1, SHAPE(2), VALS(6, 3));
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &x, false, false, false, &g, &err), 0);
    expect_vals_tol(g, TD_FLOAT64, 2, SHAPE(2, 3), VALS(0, 3, 3, 1, 1, 1), 1e-15);
    td_tensor_release(g);
    td_tensor_release(go);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_var_std(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("var dim 1", TD_OP_var, rnd(dt, 2, SHAPE(3, 4), 0), a_ints("dim", 1, SHAPE(1))));
        run(ONE("var dims keepdim correction 0", TD_OP_var, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dim", 2, SHAPE(-1, 0)), a_float("correction", 0), a_bool("keepdim", true)));
        run(ONE("var all correction 2", TD_OP_var, rnd(dt, 2, SHAPE(2, 3), 0),
                a_float("correction", 2)));
        run(ONE("std dim 0 keepdim", TD_OP_std, rnd(dt, 2, SHAPE(3, 2), 0),
                a_ints("dim", 1, SHAPE(0)), a_bool("keepdim", true)));
        run(ONE("std all", TD_OP_std, rnd(dt, 2, SHAPE(2, 3), 0), a_float("correction", 1)));
        /* One element, correction 0: std is identically 0, its derivative 0 (not 0/0). */
        run(ONE("std 0-d", TD_OP_std, rnd(dt, 0, NULL, 0), a_float("correction", 0)));
    }
}

static void test_logsumexp(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("logsumexp dim -1", TD_OP_logsumexp, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("dim", 1, SHAPE(-1))));
        run(ONE("logsumexp dims keepdim", TD_OP_logsumexp, rnd(dt, 3, SHAPE(2, 2, 3), 0),
                a_ints("dim", 2, SHAPE(0, 2)), a_bool("keepdim", true)));
    }
}

static void test_scans(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("cumsum dim -1", TD_OP_cumsum, rnd(dt, 2, SHAPE(3, 4), 0), a_int("dim", -1)));
        run(ONE("cumsum dim 0", TD_OP_cumsum, rnd(dt, 3, SHAPE(3, 2, 2), 0), a_int("dim", 0)));
        run(ONE("cumsum 0-d", TD_OP_cumsum, rnd(dt, 0, NULL, 0), a_int("dim", 0)));
        run(ONE("cumprod dim 1", TD_OP_cumprod, rnd(dt, 2, SHAPE(2, 5), 0.3), a_int("dim", 1)));
        run(ONE("cumprod dim -2", TD_OP_cumprod, rnd(dt, 3, SHAPE(4, 2, 2), 0.3),
                a_int("dim", -2)));
        /* Row 0: one zero in the middle; row 1: zeros at 0 and 3; row 2: zero at the end. */
        run(ONE("cumprod zeros", TD_OP_cumprod,
                with_zeros(rnd(dt, 2, SHAPE(3, 5), 0.3), 4, SHAPE(2, 5, 8, 14)), a_int("dim", 1)));
        run(ONE("cumprod 0-d", TD_OP_cumprod, rnd(dt, 0, NULL, 0.3), a_int("dim", -1)));
    }
}

/* ---- matmul ---- */

static struct gcase two(const char *name, enum td_op op, struct td_tensor *x, struct td_tensor *y,
                        int na, const struct td_attr_arg *a)
{
    struct gcase k = one(name, op, x, na, a);
    k.nin = 2;
    k.in[1] = y;
    return k;
}

static void test_matmul(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(two("matmul 2x2", TD_OP_matmul, rnd(dt, 2, SHAPE(3, 4), 0), rnd(dt, 2, SHAPE(4, 2), 0),
                0, NULL));
        run(two("matmul batch broadcast", TD_OP_matmul, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                rnd(dt, 4, SHAPE(2, 1, 2, 2), 0), 0, NULL));
        run(two("matmul 1-d @ 3-d", TD_OP_matmul, rnd(dt, 1, SHAPE(3), 0),
                rnd(dt, 3, SHAPE(2, 3, 2), 0), 0, NULL));
        run(two("matmul 3-d @ 1-d", TD_OP_matmul, rnd(dt, 3, SHAPE(2, 2, 3), 0),
                rnd(dt, 1, SHAPE(3), 0), 0, NULL));
        run(two("matmul 1-d @ 1-d", TD_OP_matmul, rnd(dt, 1, SHAPE(4), 0), rnd(dt, 1, SHAPE(4), 0),
                0, NULL));
    }
    /* Mixed: a real matrix times a complex one (promoted; the real input's gradient is real). */
    run(two("matmul real @ complex", TD_OP_matmul, rnd(TD_FLOAT64, 2, SHAPE(2, 3), 0),
            rnd(TD_COMPLEX128, 2, SHAPE(3, 2), 0), 0, NULL));
}

/* ---- shape and views ---- */

static void test_views(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("reshape", TD_OP_reshape, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("shape", 2, SHAPE(4, -1))));
        run(ONE("view", TD_OP_view, rnd(dt, 2, SHAPE(2, 6), 0),
                a_ints("shape", 3, SHAPE(3, 2, 2))));
        run(ONE("permute", TD_OP_permute, rnd(dt, 3, SHAPE(2, 3, 4), 0),
                a_ints("dims", 3, SHAPE(-1, 0, 1))));
        run(ONE("transpose", TD_OP_transpose, rnd(dt, 3, SHAPE(2, 3, 2), 0), a_int("dim0", 0),
                a_int("dim1", -1)));
        run(ONE("expand", TD_OP_expand, rnd(dt, 2, SHAPE(3, 1), 0),
                a_ints("shape", 3, SHAPE(2, -1, 4))));
        run(ONE("broadcast_to", TD_OP_broadcast_to, rnd(dt, 1, SHAPE(3), 0),
                a_ints("shape", 2, SHAPE(2, 3))));
        run(ONE("squeeze dim", TD_OP_squeeze, rnd(dt, 3, SHAPE(2, 1, 3), 0),
                a_ints("dim", 1, SHAPE(-2))));
        run(one("squeeze all", TD_OP_squeeze, rnd(dt, 4, SHAPE(1, 3, 1, 2), 0), 0, NULL));
        run(ONE("unsqueeze", TD_OP_unsqueeze, rnd(dt, 2, SHAPE(2, 3), 0), a_int("dim", -1)));
        run(ONE("flatten", TD_OP_flatten, rnd(dt, 3, SHAPE(2, 3, 2), 0), a_int("start_dim", 1),
                a_int("end_dim", -1)));
        run(one("contiguous", TD_OP_contiguous, rnd(dt, 2, SHAPE(2, 3), 0), 0, NULL));
        run(one("clone", TD_OP_clone, rnd(dt, 2, SHAPE(2, 3), 0), 0, NULL));
    }
}

static void test_slicing(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("slice step 2", TD_OP_slice, rnd(dt, 2, SHAPE(3, 7), 0), a_int("dim", 1),
                a_int("start", 1), a_int("end", 6), a_int("step", 2)));
        run(ONE("slice negative step", TD_OP_slice, rnd(dt, 2, SHAPE(7, 2), 0), a_int("dim", -2),
                a_int("start", -2), a_int("step", -3)));
        run(ONE("slice reversed whole", TD_OP_slice, rnd(dt, 1, SHAPE(5), 0), a_int("dim", 0),
                a_int("step", -1)));
        run(ONE("slice clamped end", TD_OP_slice, rnd(dt, 2, SHAPE(4, 3), 0), a_int("dim", 0),
                a_int("start", -3), a_int("end", 100)));
        run(ONE("slice empty", TD_OP_slice, rnd(dt, 2, SHAPE(4, 3), 0), a_int("dim", 0),
                a_int("start", 3), a_int("end", 1)));
        run(ONE("select", TD_OP_select, rnd(dt, 3, SHAPE(2, 3, 4), 0), a_int("dim", -1),
                a_int("index", -2)));
        run(ONE("narrow", TD_OP_narrow, rnd(dt, 2, SHAPE(5, 2), 0), a_int("dim", 0),
                a_int("start", -3), a_int("length", 2)));
        run(ONE("flip", TD_OP_flip, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dims", 2, SHAPE(0, -1))));
        run(ONE("roll dims", TD_OP_roll, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("shifts", 2, SHAPE(1, -5)), a_ints("dims", 2, SHAPE(0, -1))));
        run(ONE("roll flat", TD_OP_roll, rnd(dt, 2, SHAPE(2, 3), 0),
                a_ints("shifts", 1, SHAPE(4))));
        run(ONE("tril", TD_OP_tril, rnd(dt, 3, SHAPE(2, 3, 4), 0), a_int("diagonal", -1)));
        run(ONE("triu", TD_OP_triu, rnd(dt, 2, SHAPE(4, 3), 0), a_int("diagonal", 1)));
    }
}

static void test_join_split(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        struct gcase k = two("cat", TD_OP_cat, rnd(dt, 2, SHAPE(2, 1), 0),
                             rnd(dt, 2, SHAPE(2, 3), 0), 1, A(a_int("dim", -1)));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(2, 2), 0);
        run(k);
        run(two("stack", TD_OP_stack, rnd(dt, 2, SHAPE(2, 3), 0), rnd(dt, 2, SHAPE(2, 3), 0), 1,
                A(a_int("dim", -1))));
        k = ONE("split size", TD_OP_split, rnd(dt, 2, SHAPE(5, 2), 0), a_int("split_size", 2));
        k.nout = 3;
        run(k);
        k = ONE("split sections", TD_OP_split, rnd(dt, 2, SHAPE(2, 5), 0),
                a_ints("sections", 2, SHAPE(1, 4)), a_int("dim", -1));
        k.nout = 2;
        run(k);
        k = ONE("chunk", TD_OP_chunk, rnd(dt, 2, SHAPE(2, 7), 0), a_int("chunks", 3),
                a_int("dim", 1));
        k.nout = 3;
        run(k);
    }
    /* An integer input of cat has no gradient and a zero tangent. */
    run(two("cat int and float", TD_OP_cat, mk(TD_INT64, 1, SHAPE(2), VALS(4, 5)),
            rnd(TD_FLOAT64, 1, SHAPE(3), 0), 0, NULL));
}

/* ---- indexing ---- */

static void test_indexing(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        /* Repeated indices add up. */
        run(two("gather", TD_OP_gather, rnd(dt, 2, SHAPE(3, 4), 0),
                mk(TD_INT64, 2, SHAPE(2, 3), VALS(0, 3, 3, 2, 2, 1)), 1, A(a_int("dim", -1))));
        /* scatter without reduce: destinations unique; src larger than index. */
        struct gcase k = two("scatter", TD_OP_scatter, rnd(dt, 2, SHAPE(4, 3), 0),
                             mk(TD_INT64, 2, SHAPE(2, 2), VALS(3, 0, 1, 2)), 1, A(a_int("dim", 0)));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(3, 3), 0);
        run(k);
        /* reduce add: duplicates allowed. */
        k = two("scatter add", TD_OP_scatter, rnd(dt, 2, SHAPE(2, 4), 0),
                mk(TD_INT64, 2, SHAPE(2, 3), VALS(1, 1, 3, 0, 2, 2)), 2,
                A(a_int("dim", -1), a_str("reduce", "add")));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(2, 4), 0);
        run(k);
        run(two("index_select int64", TD_OP_index_select, rnd(dt, 2, SHAPE(3, 2), 0),
                mk(TD_INT64, 1, SHAPE(4), VALS(2, 0, 2, 1)), 1, A(a_int("dim", 0))));
        run(two("index_select int32", TD_OP_index_select, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                mk(TD_INT32, 1, SHAPE(2), VALS(1, 1)), 1, A(a_int("dim", -2))));
        run(two("index_select 0-d index", TD_OP_index_select, rnd(dt, 2, SHAPE(2, 3), 0),
                mk0(TD_INT64, 2), 1, A(a_int("dim", 1))));
        run(two("masked_fill", TD_OP_masked_fill, rnd(dt, 2, SHAPE(2, 3), 0),
                mk(TD_BOOL, 1, SHAPE(3), VALS(1, 0, 1)), 1,
                A(a_scalar("value", TD_SCALAR_FLOAT, 2.5, 0))));
    }
}

/* reduce="multiply": repeated destinations multiply; src may be larger than index. */
static void test_scatter_multiply(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        struct gcase k = two("scatter multiply", TD_OP_scatter, rnd(dt, 2, SHAPE(3, 4), 0.5),
                             mk(TD_INT64, 2, SHAPE(2, 3), VALS(1, 1, 3, 0, 1, 1)), 2,
                             A(a_int("dim", 1), a_str("reduce", "multiply")));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(3, 3), 0.5);
        run(k);
        /* Zeros in src: one alone at its destination, one sharing it, two sharing one. */
        k = two("scatter multiply zeros", TD_OP_scatter, rnd(dt, 2, SHAPE(2, 4), 0.5),
                mk(TD_INT64, 2, SHAPE(2, 4), VALS(0, 1, 1, 2, 3, 3, 3, 0)), 2,
                A(a_int("dim", -1), a_str("reduce", "multiply")));
        k.nin = 3;
        k.in[2] = with_zeros(rnd(dt, 2, SHAPE(2, 4), 0.5), 4, SHAPE(0, 1, 4, 5));
        k.first_only = true;
        run(k);
    }
}

/* Where src has zeros the multiply formula is exact but not differentiable again: refused
 * under create_graph, not a wrong second derivative. */
static void test_scatter_multiply_zeros_second_order_refused(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *x = rnd(TD_FLOAT64, 1, SHAPE(3), 0);
    struct td_tensor *src = mk(TD_FLOAT64, 1, SHAPE(2), VALS(0, 2));
    struct td_tensor *idx = mk(TD_INT64, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(td__ag_meta_ensure(src, &err), 0);
    src->ag->requires_grad = true;
    struct td_tensor *in[3] = {x, idx, src}, *y = NULL, *g = NULL;
    struct td_attr_arg a[2] = {a_int("dim", 0), a_str("reduce", "multiply")};
    assert_int_equal(td_ag_call(&sess, true, TD_OP_scatter, 3, in, 2, a, 1, &y, &err), 0);
    struct td_tensor *go = mk(TD_FLOAT64, 1, SHAPE(3), VALS(1, 1, 1));
    /* First order is fine: d/dsrc0 = x0 * src1 = 2 x0, d/dsrc1 = x0 * src0 = 0. */
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &src, true, false, false, &g, &err), 0);
    expect_vals_tol(g, TD_FLOAT64, 1, SHAPE(2), VALS(2 * val(x, 0), 0), 1e-15);
    td_tensor_release(g);
    g = NULL;
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &src, false, true, false, &g, &err),
                     TD_EUNIMPL);
    assert_non_null(strstr(err.msg, "multiply"));
    assert_null(g);
    td_tensor_release(go);
    td_tensor_release(y);
    td_tensor_release(idx);
    td_tensor_release(src);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_sum_mean),
        AG_TEST(test_prod),
        AG_TEST(test_amax_amin),
        AG_TEST(test_amax_ties),
        AG_TEST(test_var_std),
        AG_TEST(test_logsumexp),
        AG_TEST(test_scans),
        AG_TEST(test_matmul),
        AG_TEST(test_views),
        AG_TEST(test_slicing),
        AG_TEST(test_join_split),
        AG_TEST(test_indexing),
        AG_TEST(test_scatter_multiply),
        AG_TEST(test_scatter_multiply_zeros_second_order_refused),
    };
    return AG_RUN_TESTS(tests);
}
