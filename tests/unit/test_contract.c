/*
 * test_contract.c - the contraction ops of ops_contract.c at engine level: hand-computed
 * values of einsum (diagonals, implicit output, broadcasting, integers), cross, multi_dot and
 * matrix_power; error statuses and messages; allocation failures leaking nothing; and the
 * derivative formulas of derivatives_contract.c (einsum with several equations including
 * 'ii->i' and 'ii', cross, multi_dot, matrix_power with positive and negative powers)
 * against float64 central finite differences through gradcheck.h, first and second order.
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"


static const enum td_dtype DTS[2] = {TD_FLOAT64, TD_COMPLEX128};

static struct gcase mkcase(const char *name, enum td_op op, int nin, struct td_tensor **in,
                           int na, const struct td_attr_arg *a)
{
    return gc_case(name, op, nin, in, na, a, 1);
}

static void run(struct gcase k)
{
    gc_check(&k);
}

/* ---- values ---- */

static void test_einsum_values(void **state)
{
    (void)state;
    struct td_tensor *m = mk(TD_FLOAT64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *v = mk(TD_FLOAT64, 1, SHAPE(2), VALS(10, 20));
    struct td_tensor *r;
    /* 'ii->i': the diagonal; 'ii': the trace; 'ij->ji': the transpose. */
    r = run1(TD_OP_einsum, 1, &m, 1, A(a_str("equation", "ii->i")));
    expect_vals(r, TD_FLOAT64, 1, SHAPE(2), VALS(1, 4));
    td_tensor_release(r);
    r = run1(TD_OP_einsum, 1, &m, 1, A(a_str("equation", "ii")));
    expect_vals(r, TD_FLOAT64, 0, NULL, VALS(5));
    td_tensor_release(r);
    r = run1(TD_OP_einsum, 1, &m, 1, A(a_str("equation", " i j -> j i ")));
    expect_vals(r, TD_FLOAT64, 2, SHAPE(2, 2), VALS(1, 3, 2, 4));
    td_tensor_release(r);
    /* 'ij,j' implicit: the matrix-vector product [50, 110]. */
    struct td_tensor *mv[2] = {m, v};
    r = run1(TD_OP_einsum, 2, mv, 1, A(a_str("equation", "ij,j")));
    expect_vals(r, TD_FLOAT64, 1, SHAPE(2), VALS(50, 110));
    td_tensor_release(r);
    /* 'ij,kj->ikj' keeps every letter: products m[i][j] * v[j] per k (k of size 1 here). */
    struct td_tensor *row = mk(TD_FLOAT64, 2, SHAPE(1, 2), VALS(10, 20));
    struct td_tensor *mr[2] = {m, row};
    r = run1(TD_OP_einsum, 2, mr, 1, A(a_str("equation", "ij,kj->ikj")));
    expect_vals(r, TD_FLOAT64, 3, SHAPE(2, 1, 2), VALS(10, 40, 30, 80));
    td_tensor_release(r);
    /* '...j,j->...': ellipsis over a 2-d operand; integers stay integers. */
    struct td_tensor *mi = mk(TD_INT32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *vi = mk(TD_INT64, 1, SHAPE(2), VALS(-1, 1));
    struct td_tensor *iv[2] = {mi, vi};
    r = run1(TD_OP_einsum, 2, iv, 1, A(a_str("equation", "...j,j->...")));
    expect_vals(r, TD_INT64, 1, SHAPE(2), VALS(1, 1));
    td_tensor_release(r);
    /* Three operands: v^T m v = 10*(10+40) + 20*(30+80) = 2700 (with m[i][j] = 1 2; 3 4). */
    struct td_tensor *vmv[3] = {v, m, v};
    r = run1(TD_OP_einsum, 3, vmv, 1, A(a_str("equation", "i,ij,j->")));
    expect_vals(r, TD_FLOAT64, 0, NULL, VALS(10 * (1 * 10 + 2 * 20) + 20 * (3 * 10 + 4 * 20)));
    td_tensor_release(r);
    td_tensor_release(mi);
    td_tensor_release(vi);
    td_tensor_release(row);
    td_tensor_release(m);
    td_tensor_release(v);
}

static void test_other_values(void **state)
{
    (void)state;
    struct td_tensor *x = mk(TD_FLOAT64, 1, SHAPE(3), VALS(1, 0, 0));
    struct td_tensor *y = mk(TD_FLOAT64, 1, SHAPE(3), VALS(0, 1, 0));
    struct td_tensor *xy[2] = {x, y}, *yx[2] = {y, x}, *r;
    r = run1(TD_OP_cross, 2, xy, 0, NULL);
    expect_vals(r, TD_FLOAT64, 1, SHAPE(3), VALS(0, 0, 1));
    td_tensor_release(r);
    r = run1(TD_OP_cross, 2, yx, 0, NULL);
    expect_vals(r, TD_FLOAT64, 1, SHAPE(3), VALS(0, 0, -1));
    td_tensor_release(r);
    /* multi_dot of a row, a matrix and a column: [1 2] [[1 2] [3 4]] [1 1]^T = 7 + 10. */
    struct td_tensor *a = mk(TD_FLOAT64, 1, SHAPE(2), VALS(1, 2));
    struct td_tensor *m = mk(TD_FLOAT64, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_tensor *c = mk(TD_FLOAT64, 1, SHAPE(2), VALS(1, 1));
    struct td_tensor *amc[3] = {a, m, c};
    r = run1(TD_OP_multi_dot, 3, amc, 0, NULL);
    expect_vals(r, TD_FLOAT64, 0, NULL, VALS(17));
    td_tensor_release(r);
    /* [[1 2] [3 4]]^3 = [[37 54] [81 118]]; ^-1 = [[-2 1] [1.5 -0.5]]; ^0 = I. */
    r = run1(TD_OP_matrix_power, 1, &m, 1, A(a_int("n", 3)));
    expect_vals(r, TD_FLOAT64, 2, SHAPE(2, 2), VALS(37, 54, 81, 118));
    td_tensor_release(r);
    r = run1(TD_OP_matrix_power, 1, &m, 1, A(a_int("n", -1)));
    expect_vals_tol(r, TD_FLOAT64, 2, SHAPE(2, 2), VALS(-2, 1, 1.5, -0.5), 1e-12);
    td_tensor_release(r);
    struct td_tensor *mi = mk(TD_INT16, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    r = run1(TD_OP_matrix_power, 1, &mi, 1, A(a_int("n", 0)));
    expect_vals(r, TD_INT16, 2, SHAPE(2, 2), VALS(1, 0, 0, 1));
    td_tensor_release(r);
    r = run1(TD_OP_matrix_power, 1, &mi, 1, A(a_int("n", 2)));
    expect_vals(r, TD_INT16, 2, SHAPE(2, 2), VALS(7, 10, 15, 22));
    td_tensor_release(r);
    /* trace of an int16 matrix sums in int64. */
    r = run1(TD_OP_trace, 1, &mi, 0, NULL);
    expect_vals(r, TD_INT64, 0, NULL, VALS(5));
    td_tensor_release(r);
    td_tensor_release(mi);
    td_tensor_release(a);
    td_tensor_release(m);
    td_tensor_release(c);
    td_tensor_release(x);
    td_tensor_release(y);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *m = mk(TD_FLOAT64, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
    struct td_tensor *mm[2] = {m, m};
    run_fail(TD_OP_einsum, 1, &m, 1, A(a_str("equation", "ii->i")), 1, TD_EINVAL,
             "einsum: subscript 'i' is repeated in operand 0 with sizes 2 and 3");
    run_fail(TD_OP_einsum, 2, mm, 1, A(a_str("equation", "ij,jk->ik")), 1, TD_EINVAL,
             "einsum: operand 1 has size 2 for subscript 'j'");
    run_fail(TD_OP_einsum, 1, &m, 1, A(a_str("equation", "ij->q")), 1, TD_EINVAL,
             "output subscript 'q' does not appear");
    run_fail(TD_OP_einsum, 1, &m, 1, A(a_str("equation", "i$->i")), 1, TD_EINVAL,
             "invalid character '$'");
    run_fail(TD_OP_einsum, 2, mm, 1, A(a_str("equation", "ij->i")), 1, TD_EINVAL,
             "names 1 operand but 2 inputs");
    run_fail(TD_OP_cross, 2, mm, 1, A(a_int("dim", 0)), 1, TD_EINVAL,
             "cross: input 0 has size 2 along dim 0");
    struct td_tensor *sing = mk(TD_FLOAT64, 3, SHAPE(2, 2, 2), VALS(1, 0, 0, 1, 1, 2, 2, 4));
    run_fail(TD_OP_matrix_power, 1, &sing, 1, A(a_int("n", -1)), 1, TD_EINVAL,
             "matrix_power: batch element 1 is singular");
    run_fail(TD_OP_matrix_power, 1, &m, 1, A(a_int("n", 2)), 1, TD_EINVAL, "square");
    run_fail(TD_OP_multi_dot, 2, mm, 0, NULL, 1, TD_EINVAL,
             "multi_dot: input 1 has 2 rows but input 0 has 3 columns");
    td_tensor_release(sing);
    td_tensor_release(m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *a = rnd(TD_FLOAT64, 3, SHAPE(2, 3, 4), 0);
    struct td_tensor *b = rnd(TD_FLOAT64, 2, SHAPE(4, 3), 0);
    struct td_tensor *ab[3] = {a, b, b};
    fault_loop(TD_OP_einsum, 2, ab, 1, A(a_str("equation", "bij,jk->bki")), 1);
    fault_loop(TD_OP_einsum, 1, ab, 1, A(a_str("equation", "bij->j")), 1);
    struct td_tensor *sq = gc_shifted(TD_FLOAT64, 3, SHAPE(2, 3, 3), 3);
    fault_loop(TD_OP_matrix_power, 1, &sq, 1, A(a_int("n", -3)), 1);
    struct td_tensor *m1 = rnd(TD_FLOAT64, 2, SHAPE(3, 3), 0);
    struct td_tensor *chain[3] = {m1, m1, m1};
    fault_loop(TD_OP_multi_dot, 3, chain, 0, NULL, 1);
    td_tensor_release(m1);
    td_tensor_release(sq);
    td_tensor_release(a);
    td_tensor_release(b);
}

/* ---- derivatives ---- */

static void einsum_case(const char *eq, int nin, struct td_tensor **in)
{
    run(mkcase(eq, TD_OP_einsum, nin, in, 1, A(a_str("equation", eq))));
}

static void test_einsum_grad(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        einsum_case("ii->i", 1, (struct td_tensor *[]){rnd(dt, 2, SHAPE(3, 3), 0)});
        einsum_case("ii", 1, (struct td_tensor *[]){rnd(dt, 2, SHAPE(3, 3), 0)});
        einsum_case("iji->ij", 1, (struct td_tensor *[]){rnd(dt, 3, SHAPE(2, 3, 2), 0)});
        einsum_case("ij,jk->ik", 2, (struct td_tensor *[]){rnd(dt, 2, SHAPE(2, 3), 0),
                                                          rnd(dt, 2, SHAPE(3, 2), 0)});
        einsum_case("bij,bkj->bik", 2, (struct td_tensor *[]){rnd(dt, 3, SHAPE(2, 2, 3), 0),
                                                             rnd(dt, 3, SHAPE(2, 2, 3), 0)});
        einsum_case("ij,jk,kl->il", 3, (struct td_tensor *[]){rnd(dt, 2, SHAPE(2, 2), 0),
                                                             rnd(dt, 2, SHAPE(2, 3), 0),
                                                             rnd(dt, 2, SHAPE(3, 2), 0)});
        einsum_case("...ij,...j->...i", 2, (struct td_tensor *[]){
                                               rnd(dt, 3, SHAPE(2, 2, 3), 0),
                                               rnd(dt, 1, SHAPE(3), 0)});
        einsum_case("ij->", 1, (struct td_tensor *[]){rnd(dt, 2, SHAPE(2, 3), 0)});
        einsum_case("ij,ij->ij", 2, (struct td_tensor *[]){rnd(dt, 2, SHAPE(1, 3), 0),
                                                          rnd(dt, 2, SHAPE(2, 3), 0)});
        einsum_case("ii,i->i", 2, (struct td_tensor *[]){rnd(dt, 2, SHAPE(3, 3), 0),
                                                        rnd(dt, 1, SHAPE(3), 0)});
    }
    /* Real times complex: the real operand's gradient keeps the real part. */
    einsum_case("ij,j->i", 2, (struct td_tensor *[]){rnd(TD_FLOAT64, 2, SHAPE(2, 3), 0),
                                                    rnd(TD_COMPLEX128, 1, SHAPE(3), 0)});
}

static void test_other_grads(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(mkcase("cross", TD_OP_cross, 2,
                   (struct td_tensor *[]){rnd(dt, 2, SHAPE(2, 3), 0), rnd(dt, 2, SHAPE(2, 3), 0)},
                   0, NULL));
        run(mkcase("cross dim 0 broadcast", TD_OP_cross, 2,
                   (struct td_tensor *[]){rnd(dt, 2, SHAPE(3, 2), 0), rnd(dt, 2, SHAPE(3, 1), 0)},
                   1, A(a_int("dim", 0))));
        run(mkcase("multi_dot 3", TD_OP_multi_dot, 3,
                   (struct td_tensor *[]){rnd(dt, 2, SHAPE(2, 3), 0), rnd(dt, 2, SHAPE(3, 2), 0),
                                          rnd(dt, 2, SHAPE(2, 2), 0)},
                   0, NULL));
        run(mkcase("multi_dot vec ends", TD_OP_multi_dot, 3,
                   (struct td_tensor *[]){rnd(dt, 1, SHAPE(3), 0), rnd(dt, 2, SHAPE(3, 2), 0),
                                          rnd(dt, 1, SHAPE(2), 0)},
                   0, NULL));
        for (int n = -2; n <= 3; n++)
            run(mkcase("matrix_power", TD_OP_matrix_power, 1,
                       (struct td_tensor *[]){gc_shifted(dt, 3, SHAPE(2, 2, 2), 2)}, 1,
                       A(a_int("n", n))));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AG_TEST(test_einsum_values), AG_TEST(test_other_values), AG_TEST(test_errors),
        AG_TEST(test_alloc_failures), AG_TEST(test_einsum_grad), AG_TEST(test_other_grads),
    };
    return AG_RUN_TESTS(tests);
}
