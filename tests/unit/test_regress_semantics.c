/*
 * test_regress_semantics.c - regression tests for op semantics that differed from PyTorch's
 * (found by the edge-case audit in tests/python/test_semantics.py). Expected values are
 * written out by hand from PyTorch's documented behaviour.
 */
#include "optest.h"

/* bitwise_right_shift by a negative count: torch shifts every bit out, leaving the sign fill
 * (-1 for a negative operand). It used to return 0 for every operand. */
static void test_right_shift_negative_count(void **state)
{
    (void)state;
    struct td_tensor *in[2] = {mk(TD_INT8, 1, SHAPE(4), VALS(-8, 8, -1, 127)),
                               mk(TD_INT8, 1, SHAPE(4), VALS(-1, -1, -100, -5))};
    struct td_tensor *o = run1(TD_OP_bitwise_right_shift, 2, in, 0, NULL);
    expect_vals(o, TD_INT8, 1, SHAPE(4), VALS(-1, 0, -1, 0));
    td_tensor_release(o);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);

    /* int64: counts of 64 and more, and negative ones, fill with the sign. */
    struct td_tensor *in64[2] = {mk(TD_INT64, 1, SHAPE(4), VALS(-5, -5, 5, -5)),
                                 mk(TD_INT64, 1, SHAPE(4), VALS(63, 64, -1, -64))};
    o = run1(TD_OP_bitwise_right_shift, 2, in64, 0, NULL);
    expect_vals(o, TD_INT64, 1, SHAPE(4), VALS(-1, -1, 0, -1));
    td_tensor_release(o);
    td_tensor_release(in64[0]);
    td_tensor_release(in64[1]);
}

/* randint into float16: torch refuses bounds beyond float16's largest finite value 65504
 * ("to - 1 is out of bounds for Half"); values above it used to come back as inf. */
static void test_randint_float16_range(void **state)
{
    (void)state;
    struct td_attr_arg big[4] = {a_int("low", 0), a_int("high", 100000),
                                 a_ints("shape", 1, SHAPE(3)), a_dtype("dtype", TD_FLOAT16)};
    run_fail(TD_OP_randint, 0, NULL, 4, big, 1, TD_EINVAL, "does not fit float16");
    struct td_attr_arg neg[4] = {a_int("low", -65505), a_int("high", 0),
                                 a_ints("shape", 1, SHAPE(3)), a_dtype("dtype", TD_FLOAT16)};
    run_fail(TD_OP_randint, 0, NULL, 4, neg, 1, TD_EINVAL, "does not fit float16");
    /* The edges themselves are allowed: [-65504, 65505) passes validation. */
    struct td_tensor *x = mk(TD_FLOAT16, 1, SHAPE(2), VALS(0, 0));
    struct td_tensor *out = NULL;
    struct td_error err;
    struct td_attr_arg edge[2] = {a_int("low", -65504), a_int("high", 65505)};
    struct td_rng rng;
    memset(&rng, 0, sizeof rng);
    rng.seed = 7;
    assert_int_equal(td_op_call(TD_OP_randint_like, 1, &x, 2, edge, 1, &out, &rng, NULL, &err),
                     0);
    for (int64_t k = 0; k < 2; k++) {
        double v = val(out, k);
        assert_true(v >= -65504 && v <= 65504 && v == floor(v));
    }
    td_tensor_release(out);
    td_tensor_release(x);
}

int main(void)
{
    struct td_error err;
    if (td_ops_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_right_shift_negative_count, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_randint_float16_range, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
