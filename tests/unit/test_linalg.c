/*
 * test_linalg.c - matmul against hand-computed products: NumPy's 1-d rules, batch
 * broadcasting, transposed/strided/expanded/negative-stride operands (BLAS in place or
 * through a copy), integer, half and complex dtypes, k = 0, errors and leak checks.
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

static struct td_tensor *mm(struct td_tensor *a, struct td_tensor *b)
{
    struct td_tensor *in[2] = {a, b};
    return run1(TD_OP_matmul, 2, in, 0, NULL);
}

static void check_mm(struct td_tensor *a, struct td_tensor *b, enum td_dtype dt, int ndim,
                     const int64_t *shape, const double *want)
{
    struct td_tensor *r = mm(a, b);
    expect_vals(r, dt, ndim, shape, want);
    td_tensor_release(r);
    td_tensor_release(a);
    td_tensor_release(b);
}

static struct td_tensor *A23(enum td_dtype dt)
{
    return mk(dt, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
}

static struct td_tensor *B32(enum td_dtype dt)
{
    return mk(dt, 2, SHAPE(3, 2), VALS(7, 8, 9, 10, 11, 12));
}

static struct td_tensor *transpose_of(struct td_tensor *x)
{
    struct td_attr_arg at[] = {a_int("dim0", -1), a_int("dim1", -2)};
    struct td_tensor *t = run1(TD_OP_transpose, 1, &x, 2, at);
    td_tensor_release(x);
    return t;
}

static void test_basic(void **state)
{
    (void)state;
    check_mm(A23(TD_FLOAT32), B32(TD_FLOAT32), TD_FLOAT32, 2, SHAPE(2, 2),
             VALS(58, 64, 139, 154));
    check_mm(A23(TD_FLOAT64), B32(TD_FLOAT64), TD_FLOAT64, 2, SHAPE(2, 2),
             VALS(58, 64, 139, 154));
    check_mm(A23(TD_INT32), B32(TD_INT32), TD_INT32, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
    check_mm(A23(TD_INT8), B32(TD_INT64), TD_INT64, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
    check_mm(A23(TD_UINT8), B32(TD_INT8), TD_INT16, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
    check_mm(A23(TD_INT32), B32(TD_FLOAT32), TD_FLOAT32, 2, SHAPE(2, 2),
             VALS(58, 64, 139, 154));
    check_mm(A23(TD_FLOAT16), B32(TD_FLOAT16), TD_FLOAT16, 2, SHAPE(2, 2),
             VALS(58, 64, 139, 154));
    check_mm(A23(TD_BFLOAT16), B32(TD_BFLOAT16), TD_BFLOAT16, 2, SHAPE(2, 2),
             VALS(58, 64, 139, 154));
    /* half result rounds once: 1*0.5 + 3*0.25 + 5*0.125 = 1.875 */
    check_mm(mk(TD_FLOAT16, 1, SHAPE(3), VALS(1, 3, 5)),
             mk(TD_FLOAT16, 1, SHAPE(3), VALS(0.5, 0.25, 0.125)), TD_FLOAT16, 0, NULL,
             VALS(1.875));
    /* int8 results wrap in the result dtype: 100 * 2 = 200 -> -56 */
    check_mm(mk(TD_INT8, 2, SHAPE(1, 1), VALS(100)), mk(TD_INT8, 2, SHAPE(1, 1), VALS(2)),
             TD_INT8, 2, SHAPE(1, 1), VALS(-56));
}

static void test_vectors_and_batches(void **state)
{
    (void)state;
    check_mm(mk(TD_FLOAT32, 1, SHAPE(3), VALS(1, 2, 3)),
             mk(TD_FLOAT32, 1, SHAPE(3), VALS(4, 5, 6)), TD_FLOAT32, 0, NULL, VALS(32));
    check_mm(mk(TD_FLOAT64, 1, SHAPE(2), VALS(1, 2)), A23(TD_FLOAT64), TD_FLOAT64, 1,
             SHAPE(3), VALS(9, 12, 15));
    check_mm(A23(TD_FLOAT64), mk(TD_FLOAT64, 1, SHAPE(3), VALS(1, 0, -1)), TD_FLOAT64, 1,
             SHAPE(2), VALS(-2, -2));
    check_mm(A23(TD_INT64), mk(TD_INT64, 1, SHAPE(3), VALS(1, 0, -1)), TD_INT64, 1, SHAPE(2),
             VALS(-2, -2));
    /* [2,2,2] @ [2,2]: I and 2I times [[1,2],[3,4]] */
    check_mm(mk(TD_FLOAT32, 3, SHAPE(2, 2, 2), VALS(1, 0, 0, 1, 2, 0, 0, 2)),
             mk(TD_FLOAT32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)), TD_FLOAT32, 3, SHAPE(2, 2, 2),
             VALS(1, 2, 3, 4, 2, 4, 6, 8));
    /* [2,1,1,2] @ [3,2,1] -> [2,3,1,1]: a0 = [1,2], a1 = [3,4]; b = [1,1], [1,0], [0,1] */
    check_mm(mk(TD_FLOAT64, 4, SHAPE(2, 1, 1, 2), VALS(1, 2, 3, 4)),
             mk(TD_FLOAT64, 3, SHAPE(3, 2, 1), VALS(1, 1, 1, 0, 0, 1)), TD_FLOAT64, 4,
             SHAPE(2, 3, 1, 1), VALS(3, 1, 2, 7, 3, 4));
    check_mm(mk(TD_INT32, 4, SHAPE(2, 1, 1, 2), VALS(1, 2, 3, 4)),
             mk(TD_INT32, 3, SHAPE(3, 2, 1), VALS(1, 1, 1, 0, 0, 1)), TD_INT32, 4,
             SHAPE(2, 3, 1, 1), VALS(3, 1, 2, 7, 3, 4));
    /* 1-d @ batched: [2] @ [2,2,1] -> [2,1] */
    check_mm(mk(TD_FLOAT32, 1, SHAPE(2), VALS(1, 2)),
             mk(TD_FLOAT32, 3, SHAPE(2, 2, 1), VALS(1, 1, 3, -1)), TD_FLOAT32, 2, SHAPE(2, 1),
             VALS(3, 1));
}

static void test_layouts(void **state)
{
    (void)state;
    /* Transposed operands go to BLAS in place (CblasTrans). */
    struct td_tensor *at = transpose_of(mk(TD_FLOAT32, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    check_mm(at, B32(TD_FLOAT32), TD_FLOAT32, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
    at = transpose_of(mk(TD_FLOAT64, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    struct td_tensor *bt = transpose_of(mk(TD_FLOAT64, 2, SHAPE(2, 3), VALS(7, 9, 11, 8, 10, 12)));
    check_mm(at, bt, TD_FLOAT64, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));
    at = transpose_of(mk(TD_INT16, 2, SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6)));
    check_mm(at, B32(TD_INT16), TD_INT16, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));

    /* Column step 2 (neither dim unit-stride): copied. */
    struct td_tensor *wide =
        mk(TD_FLOAT32, 2, SHAPE(2, 6), VALS(1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0));
    struct td_attr_arg s2[] = {a_int("dim", 1), a_int("step", 2)};
    struct td_tensor *as = run1(TD_OP_slice, 1, &wide, 2, s2);
    td_tensor_release(wide);
    check_mm(as, B32(TD_FLOAT32), TD_FLOAT32, 2, SHAPE(2, 2), VALS(58, 64, 139, 154));

    /* Expanded operand (stride 0): [[1,1],[2,2],[3,3]]. */
    struct td_tensor *col = mk(TD_FLOAT64, 2, SHAPE(3, 1), VALS(1, 2, 3));
    struct td_attr_arg ex[] = {a_ints("shape", 2, SHAPE(3, 2))};
    struct td_tensor *be = run1(TD_OP_expand, 1, &col, 1, ex);
    td_tensor_release(col);
    check_mm(A23(TD_FLOAT64), be, TD_FLOAT64, 2, SHAPE(2, 2), VALS(14, 14, 32, 32));

    /* Negative strides (flipped rows of B): [[11,12],[9,10],[7,8]]. */
    struct td_tensor *b = B32(TD_COMPLEX128);
    struct td_attr_arg fl[] = {a_int("dim", 0), a_int("step", -1)};
    struct td_tensor *bf = run1(TD_OP_slice, 1, &b, 2, fl);
    td_tensor_release(b);
    check_mm(A23(TD_COMPLEX128), bf, TD_COMPLEX128, 2, SHAPE(2, 2), VALS(50, 56, 131, 146));

    /* Batch-broadcast transposed operand: A^T of a [1,3,2] shared by 2 batches of B. */
    struct td_tensor *a3 = transpose_of(mk(TD_FLOAT32, 3, SHAPE(1, 3, 2), VALS(1, 4, 2, 5, 3, 6)));
    check_mm(a3, mk(TD_FLOAT32, 3, SHAPE(2, 3, 1), VALS(1, 1, 1, 1, 0, 0)), TD_FLOAT32, 3,
             SHAPE(2, 2, 1), VALS(6, 15, 1, 4));
}

static void test_complex(void **state)
{
    (void)state;
    /* [1j, 2] @ [1, 1j] = 1j + 2j = 3j; (1+1j)(2-1j) = 3+1j */
    struct td_tensor *a = mk(TD_COMPLEX64, 2, SHAPE(2, 2), VALS(0, 0, 0, 0));
    float *p = td_tensor_data(a);
    const float av[] = {0, 1, 2, 0, 1, 1, 0, 0};   /* [[1j, 2], [1+1j, 0]] */
    memcpy(p, av, sizeof av);
    struct td_tensor *b = mk(TD_COMPLEX64, 1, SHAPE(2), VALS(0, 0));
    const float bv[] = {1, 0, 0, 1};               /* [1, 1j] */
    memcpy(td_tensor_data(b), bv, sizeof bv);
    struct td_tensor *r = mm(a, b);
    expect_shape(r, TD_COMPLEX64, 1, SHAPE(2));
    double complex z0 = td__load_c128(elem(r, 0), r->dtype);
    double complex z1 = td__load_c128(elem(r, 1), r->dtype);
    assert_true(creal(z0) == 0 && cimag(z0) == 3);
    assert_true(creal(z1) == 1 && cimag(z1) == 1);
    td_tensor_release(r);
    /* complex64 @ float64 promotes to complex128 */
    struct td_tensor *f = mk(TD_FLOAT64, 1, SHAPE(2), VALS(2, 0));
    struct td_tensor *in[2] = {a, f};
    r = run1(TD_OP_matmul, 2, in, 0, NULL);
    expect_shape(r, TD_COMPLEX128, 1, SHAPE(2));
    z1 = td__load_c128(elem(r, 1), r->dtype);
    assert_true(creal(z1) == 2 && cimag(z1) == 2);
    td_tensor_release(r);
    td_tensor_release(f);
    td_tensor_release(a);
    td_tensor_release(b);
}

static void test_reference(void **state)
{
    (void)state;
    /* 37x53 @ 53x29 in float64 and int64 against a plain double triple loop. */
    enum { M = 37, K = 53, N = 29 };
    static double av[M * K], bv[K * N], want[M * N];
    for (int i = 0; i < M * K; i++)
        av[i] = (double)((i * 7) % 11 - 5);
    for (int i = 0; i < K * N; i++)
        bv[i] = (double)((i * 5) % 13 - 6);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += av[i * K + k] * bv[k * N + j];
            want[i * N + j] = s;
        }
    check_mm(mk(TD_FLOAT64, 2, SHAPE(M, K), av), mk(TD_FLOAT64, 2, SHAPE(K, N), bv), TD_FLOAT64,
             2, SHAPE(M, N), want);
    check_mm(mk(TD_INT64, 2, SHAPE(M, K), av), mk(TD_INT64, 2, SHAPE(K, N), bv), TD_INT64, 2,
             SHAPE(M, N), want);
    check_mm(mk(TD_FLOAT32, 2, SHAPE(M, K), av), mk(TD_FLOAT32, 2, SHAPE(K, N), bv), TD_FLOAT32,
             2, SHAPE(M, N), want);
}

static void test_zero_size_and_errors(void **state)
{
    (void)state;
    check_mm(mk(TD_FLOAT32, 2, SHAPE(2, 0), NULL), mk(TD_FLOAT32, 2, SHAPE(0, 3), NULL),
             TD_FLOAT32, 2, SHAPE(2, 3), VALS(0, 0, 0, 0, 0, 0));
    check_mm(mk(TD_INT32, 2, SHAPE(2, 0), NULL), mk(TD_INT32, 2, SHAPE(0, 3), NULL), TD_INT32,
             2, SHAPE(2, 3), VALS(0, 0, 0, 0, 0, 0));
    check_mm(mk(TD_FLOAT64, 1, SHAPE(0), NULL), mk(TD_FLOAT64, 1, SHAPE(0), NULL), TD_FLOAT64,
             0, NULL, VALS(0));
    check_mm(mk(TD_FLOAT64, 2, SHAPE(0, 3), NULL), B32(TD_FLOAT64), TD_FLOAT64, 2, SHAPE(0, 2),
             NULL);
    check_mm(mk(TD_FLOAT64, 3, SHAPE(0, 2, 3), NULL), B32(TD_FLOAT64), TD_FLOAT64, 3,
             SHAPE(0, 2, 2), NULL);

    struct td_tensor *in[2] = {A23(TD_FLOAT32),
                               mk(TD_FLOAT32, 2, SHAPE(4, 2), VALS(1, 2, 3, 4, 5, 6, 7, 8))};
    run_fail(TD_OP_matmul, 2, in, 0, NULL, 1, TD_EINVAL, "matmul: inner dims 3 != 4");
    td_tensor_release(in[1]);
    in[1] = mk0(TD_FLOAT32, 2);
    run_fail(TD_OP_matmul, 2, in, 0, NULL, 1, TD_EINVAL, "0-d");
    td_tensor_release(in[1]);
    in[1] = mk(TD_BOOL, 2, SHAPE(3, 1), VALS(1, 0, 1));
    run_fail(TD_OP_matmul, 2, in, 0, NULL, 1, TD_EINVAL, NULL);
    td_tensor_release(in[1]);
    td_tensor_release(in[0]);
    in[0] = mk(TD_FLOAT32, 3, SHAPE(2, 2, 2), VALS(1, 2, 3, 4, 5, 6, 7, 8));
    in[1] = mk(TD_FLOAT32, 3, SHAPE(3, 2, 2), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    run_fail(TD_OP_matmul, 2, in, 0, NULL, 1, TD_EINVAL, "cannot broadcast");
    td_tensor_release(in[1]);
    td_tensor_release(in[0]);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *in[2] = {A23(TD_FLOAT16), B32(TD_FLOAT16)};
    fault_loop(TD_OP_matmul, 2, in, 0, NULL, 1);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);
    in[0] = A23(TD_INT8);
    in[1] = B32(TD_INT64);
    fault_loop(TD_OP_matmul, 2, in, 0, NULL, 1);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);
    struct td_tensor *wide =
        mk(TD_FLOAT32, 2, SHAPE(2, 6), VALS(1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0));
    struct td_attr_arg s2[] = {a_int("dim", 1), a_int("step", 2)};
    in[0] = run1(TD_OP_slice, 1, &wide, 2, s2);
    in[1] = transpose_of(mk(TD_FLOAT32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6)));
    fault_loop(TD_OP_matmul, 2, in, 0, NULL, 1);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);
    td_tensor_release(wide);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_vectors_and_batches, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_layouts, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_complex, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_reference, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_zero_size_and_errors, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
