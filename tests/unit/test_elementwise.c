/*
 * test_elementwise.c - creation and elementwise ops through td_op_call, checked against
 * hand-computed values (PyTorch semantics) and against the validation messages.
 */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "td_internal.h"
#include "leakcheck.h"

#define V(...) ((const double[]){__VA_ARGS__})
#define S(...) ((const int64_t[]){__VA_ARGS__})
#define NIN(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A contiguous tensor with vals (or 0, 1, 2, ... when vals is NULL). */
static struct td_tensor *mk(enum td_dtype dt, int ndim, const int64_t *shape, const double *vals)
{
    struct td_meta m;
    struct td_tensor *t = NULL;
    struct td_error err;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, false, NULL, &t, &err), 0);
    int64_t n = td_tensor_numel(t);
    char *p = td_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        td__store_f64(p + i * (int64_t)td_dtype_size(dt), dt, vals ? vals[i] : (double)i);
    return t;
}

/* A complex tensor from (re, im) pairs. */
static struct td_tensor *mkc(enum td_dtype dt, int64_t n, const double *reim)
{
    struct td_meta m;
    struct td_tensor *t = NULL;
    struct td_error err;
    td__meta_set(&m, dt, 1, &n);
    assert_int_equal(td_tensor_new(&m, false, NULL, &t, &err), 0);
    char *p = td_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        td__store_c128(p + i * (int64_t)td_dtype_size(dt), dt,
                       CMPLX(reim[2 * i], reim[2 * i + 1]));
    return t;
}

static struct td_tensor *wrapped(enum td_dtype dt, double v)
{
    struct td_tensor *t = mk(dt, 0, NULL, &v);
    t->wrapped_number = true;
    return t;
}

static char *elem(const struct td_tensor *t, int64_t i)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->strides[d];
        i /= t->shape[d];
    }
    return (char *)t->storage->data + off * (int64_t)td_dtype_size(t->dtype);
}

static struct td_error last_err;

/* Runs op and returns its single output, failing the test on error. */
static struct td_tensor *call(enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
                              const struct td_attr_arg *attrs, struct td_rng *rng)
{
    struct td_tensor *out = NULL;
    int rc = td_op_call(op, nin, in, nattrs, attrs, 1, &out, rng, NULL, &last_err);
    if (rc)
        fail_msg("%s failed: %s", td_op_info_get(op)->name, last_err.msg);
    return out;
}

/* Runs op expecting failure with status `want` and a message containing `msg`. */
static void call_fails(enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
                       const struct td_attr_arg *attrs, int want, const char *msg)
{
    struct td_tensor *out = NULL;
    struct td_rng rng = {1, 0};
    int rc = td_op_call(op, nin, in, nattrs, attrs, 1, &out, &rng, NULL, &last_err);
    if (rc == 0) {
        td_tensor_release(out);
        fail_msg("%s succeeded, expected \"%s\"", td_op_info_get(op)->name, msg);
    }
    assert_null(out);
    assert_int_equal(rc, want);
    if (!strstr(last_err.msg, msg))
        fail_msg("message \"%s\" lacks \"%s\"", last_err.msg, msg);
}

/* Checks dtype, shape and values (NaN equals NaN; tol is absolute+relative). Releases t. */
static void expect(struct td_tensor *t, enum td_dtype dt, int ndim, const int64_t *shape,
                   const double *vals, double tol)
{
    assert_non_null(t);
    if (t->dtype != dt)
        fail_msg("dtype %s, want %s", td_dtype_name(t->dtype), td_dtype_name(dt));
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(t->shape[i], shape[i]);
    int64_t n = td_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double got = td__load_f64(elem(t, i), t->dtype), want = vals[i];
        bool ok = (isnan(want) && isnan(got)) || got == want ||
                  fabs(got - want) <= tol * (1 + fabs(want));
        if (!ok)
            fail_msg("element %lld: got %.17g, want %.17g", (long long)i, got, want);
    }
    td_tensor_release(t);
}

/* Complex variant: vals are (re, im) pairs. */
static void expect_c(struct td_tensor *t, enum td_dtype dt, int64_t n, const double *reim,
                     double tol)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(td_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        double complex z = td__load_c128(elem(t, i), dt);
        if (fabs(creal(z) - reim[2 * i]) > tol || fabs(cimag(z) - reim[2 * i + 1]) > tol)
            fail_msg("element %lld: got %g%+gi, want %g%+gi", (long long)i, creal(z), cimag(z),
                     reim[2 * i], reim[2 * i + 1]);
    }
    td_tensor_release(t);
}

static struct td_attr_arg a_sint(const char *name, int64_t v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR,
                                   .scalar = {TD_SCALAR_INT, v, (double)v, 0}}};
    return a;
}

static struct td_attr_arg a_sfloat(const char *name, double v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR,
                                   .scalar = {TD_SCALAR_FLOAT, 0, v, 0}}};
    return a;
}

static struct td_attr_arg a_sbool(const char *name, bool v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR,
                                   .scalar = {TD_SCALAR_BOOL, v, v, 0}}};
    return a;
}

static struct td_attr_arg a_scplx(const char *name, double re, double im)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_SCALAR,
                                   .scalar = {TD_SCALAR_COMPLEX, 0, re, im}}};
    return a;
}

static struct td_attr_arg a_int(const char *name, int64_t v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_INT, .i = v}};
    return a;
}

static struct td_attr_arg a_bool(const char *name, bool v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_BOOL, .b = v}};
    return a;
}

static struct td_attr_arg a_str(const char *name, const char *v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_STR, .s = (char *)v}};
    return a;
}

static struct td_attr_arg a_dtype(const char *name, enum td_dtype v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_DTYPE, .dtype = v}};
    return a;
}

static struct td_attr_arg a_ints(const char *name, int n, const int64_t *v)
{
    struct td_attr_arg a = {name, {.type = TD_ATTR_INTS, .nints = n}};
    for (int i = 0; i < n && i < TD_MAX_INTS; i++)
        a.value.ints[i] = v[i];
    return a;
}

/* Binary op on two fresh tensors; both inputs released. */
static struct td_tensor *bin(enum td_op op, struct td_tensor *a, struct td_tensor *b, int nattrs,
                             const struct td_attr_arg *attrs)
{
    struct td_tensor *in[2] = {a, b};
    struct td_tensor *o = call(op, 2, in, nattrs, attrs, NULL);
    td_tensor_release(a);
    td_tensor_release(b);
    return o;
}

static struct td_tensor *un(enum td_op op, struct td_tensor *a, int nattrs,
                            const struct td_attr_arg *attrs)
{
    struct td_tensor *in[1] = {a};
    struct td_tensor *o = call(op, 1, in, nattrs, attrs, NULL);
    td_tensor_release(a);
    return o;
}

static void bin_fails(enum td_op op, struct td_tensor *a, struct td_tensor *b, int nattrs,
                      const struct td_attr_arg *attrs, int want, const char *msg)
{
    struct td_tensor *in[2] = {a, b};
    call_fails(op, 2, in, nattrs, attrs, want, msg);
    td_tensor_release(a);
    td_tensor_release(b);
}

/* ---------------------------------------------------------------------------------------
 * Binary arithmetic and promotion.
 */
static void test_add_broadcast(void **state)
{
    (void)state;
    expect(bin(TD_OP_add, mk(TD_INT32, 2, S(2, 3), NULL), mk(TD_INT32, 1, S(3), V(10, 20, 30)),
               0, NULL),
           TD_INT32, 2, S(2, 3), V(10, 21, 32, 13, 24, 35), 0);
    /* float32 with a broadcast [1] operand (the typed loop's scalar branch) */
    expect(bin(TD_OP_add, mk(TD_FLOAT32, 2, S(2, 3), NULL), mk(TD_FLOAT32, 1, S(1), V(0.5)), 0,
               NULL),
           TD_FLOAT32, 2, S(2, 3), V(0.5, 1.5, 2.5, 3.5, 4.5, 5.5), 0);
    /* [3,1] + [1,2] -> [3,2] */
    expect(bin(TD_OP_sub, mk(TD_FLOAT64, 2, S(3, 1), V(1, 2, 3)), mk(TD_FLOAT64, 2, S(1, 2), V(10, 20)),
               0, NULL),
           TD_FLOAT64, 2, S(3, 2), V(-9, -19, -8, -18, -7, -17), 0);
    expect(bin(TD_OP_mul, mk(TD_INT64, 1, S(3), V(1, -2, 3)), mk(TD_INT64, 0, NULL, V(-4)), 0,
               NULL),
           TD_INT64, 1, S(3), V(-4, 8, -12), 0);
    /* zero-size broadcast */
    expect(bin(TD_OP_add, mk(TD_FLOAT32, 2, S(0, 3), NULL), mk(TD_FLOAT32, 1, S(3), NULL), 0,
               NULL),
           TD_FLOAT32, 2, S(0, 3), V(0), 0);
}

static void test_add_alpha(void **state)
{
    (void)state;
    struct td_attr_arg al[1] = {a_sint("alpha", 2)};
    expect(bin(TD_OP_add, mk(TD_FLOAT32, 1, S(2), V(1, 2)), mk(TD_FLOAT32, 1, S(2), V(3, 4)), 1,
               al),
           TD_FLOAT32, 1, S(2), V(7, 10), 0);
    struct td_attr_arg al3[1] = {a_sint("alpha", 3)};
    expect(bin(TD_OP_sub, mk(TD_INT64, 1, S(2), V(1, 2)), mk(TD_INT64, 1, S(2), V(1, 1)), 1, al3),
           TD_INT64, 1, S(2), V(-2, -1), 0);
    struct td_attr_arg alf[1] = {a_sfloat("alpha", 0.5)};
    expect(bin(TD_OP_add, mk(TD_FLOAT64, 1, S(1), V(1)), mk(TD_FLOAT64, 1, S(1), V(3)), 1, alf),
           TD_FLOAT64, 1, S(1), V(2.5), 0);
    bin_fails(TD_OP_add, mk(TD_INT32, 1, S(1), V(1)), mk(TD_INT32, 1, S(1), V(1)), 1, alf,
              TD_EINVAL, "add: alpha must be an integer");
    struct td_attr_arg alc[1] = {a_scplx("alpha", 0, 1)};
    expect_c(bin(TD_OP_add, mkc(TD_COMPLEX64, 1, V(1, 0)), mkc(TD_COMPLEX64, 1, V(2, 0)), 1, alc),
             TD_COMPLEX64, 1, V(1, 2), 1e-6);
}

static void test_int_wrap(void **state)
{
    (void)state;
    expect(bin(TD_OP_add, mk(TD_INT8, 1, S(2), V(100, -100)), mk(TD_INT8, 1, S(2), V(100, -100)),
               0, NULL),
           TD_INT8, 1, S(2), V(-56, 56), 0);
    expect(bin(TD_OP_mul, mk(TD_INT8, 1, S(1), V(16)), mk(TD_INT8, 1, S(1), V(16)), 0, NULL),
           TD_INT8, 1, S(1), V(0), 0);
    expect(bin(TD_OP_add, mk(TD_INT32, 1, S(1), V(2147483647)), mk(TD_INT32, 1, S(1), V(1)), 0,
               NULL),
           TD_INT32, 1, S(1), V(-2147483648.0), 0);
    /* int64 exactness above 2^53 */
    struct td_tensor *a = mk(TD_INT64, 1, S(1), V(0)), *b = mk(TD_INT64, 1, S(1), V(1));
    *(int64_t *)td_tensor_data(a) = (1LL << 60) + 1;
    struct td_tensor *o = bin(TD_OP_add, a, b, 0, NULL);
    assert_true(*(int64_t *)td_tensor_data(o) == (1LL << 60) + 2);
    td_tensor_release(o);
}

static void test_promotion(void **state)
{
    (void)state;
    expect(bin(TD_OP_add, mk(TD_UINT8, 1, S(1), V(200)), mk(TD_INT8, 1, S(1), V(-1)), 0, NULL),
           TD_INT16, 1, S(1), V(199), 0);
    expect(bin(TD_OP_add, mk(TD_INT32, 1, S(2), V(1, 2)), wrapped(TD_FLOAT64, 2.5), 0, NULL),
           TD_FLOAT32, 1, S(2), V(3.5, 4.5), 0);
    expect(bin(TD_OP_add, mk(TD_INT32, 1, S(1), V(1)), mk(TD_FLOAT64, 0, NULL, V(0.1)), 0, NULL),
           TD_FLOAT64, 1, S(1), V(1.1), 1e-15);
    expect(bin(TD_OP_add, mk(TD_FLOAT16, 1, S(1), V(1)), mk(TD_BFLOAT16, 1, S(1), V(2)), 0, NULL),
           TD_FLOAT32, 1, S(1), V(3), 0);
    /* uint8 + 10 stays uint8 and wraps: 250 + 10 = 4 */
    expect(bin(TD_OP_add, mk(TD_UINT8, 1, S(1), V(250)), wrapped(TD_INT64, 10), 0, NULL),
           TD_UINT8, 1, S(1), V(4), 0);
    /* A wrapped int is converted to the tensor's dtype first: uint8 + 300 -> + 44 */
    expect(bin(TD_OP_add, mk(TD_UINT8, 1, S(1), V(1)), wrapped(TD_INT64, 300), 0, NULL),
           TD_UINT8, 1, S(1), V(45), 0);
    /* float32 + wrapped 0.1: the scalar becomes 0.1f, the sum is rounded to float32 */
    expect(bin(TD_OP_add, mk(TD_FLOAT32, 1, S(1), V(0)), wrapped(TD_FLOAT64, 0.1), 0, NULL),
           TD_FLOAT32, 1, S(1), V((double)0.1f), 0);
    /* bool + bool is logical or */
    expect(bin(TD_OP_add, mk(TD_BOOL, 1, S(3), V(1, 1, 0)), mk(TD_BOOL, 1, S(3), V(1, 0, 0)), 0,
               NULL),
           TD_BOOL, 1, S(3), V(1, 1, 0), 0);
    /* int64 tensor * wrapped complex -> complex64 */
    struct td_tensor *wc = mkc(TD_COMPLEX128, 1, V(0, 1));
    wc->ndim = 0;
    wc->wrapped_number = true;
    struct td_tensor *o = bin(TD_OP_mul, mk(TD_INT64, 1, S(1), V(3)), wc, 0, NULL);
    expect_c(o, TD_COMPLEX64, 1, V(0, 3), 0);
}

static void test_division(void **state)
{
    (void)state;
    expect(bin(TD_OP_div, mk(TD_INT32, 1, S(2), V(7, -7)), mk(TD_INT32, 1, S(2), V(2, 2)), 0, NULL),
           TD_FLOAT32, 1, S(2), V(3.5, -3.5), 0);
    struct td_attr_arg tr[1] = {a_str("rounding_mode", "trunc")};
    struct td_attr_arg fl[1] = {a_str("rounding_mode", "floor")};
    expect(bin(TD_OP_div, mk(TD_INT32, 1, S(2), V(7, -7)), mk(TD_INT32, 1, S(2), V(2, 2)), 1, tr),
           TD_INT32, 1, S(2), V(3, -3), 0);
    expect(bin(TD_OP_div, mk(TD_INT32, 1, S(2), V(7, -7)), mk(TD_INT32, 1, S(2), V(2, 2)), 1, fl),
           TD_INT32, 1, S(2), V(3, -4), 0);
    expect(bin(TD_OP_div, mk(TD_FLOAT32, 1, S(2), V(7, -7)), mk(TD_FLOAT32, 1, S(2), V(2, 2)), 1,
               tr),
           TD_FLOAT32, 1, S(2), V(3, -3), 0);
    expect(bin(TD_OP_floor_divide, mk(TD_INT64, 1, S(4), V(7, -7, 7, -7)),
               mk(TD_INT64, 1, S(4), V(2, 2, -2, -2)), 0, NULL),
           TD_INT64, 1, S(4), V(3, -4, -4, 3), 0);
    expect(bin(TD_OP_remainder, mk(TD_INT64, 1, S(4), V(7, -7, 7, -7)),
               mk(TD_INT64, 1, S(4), V(3, 3, -3, -3)), 0, NULL),
           TD_INT64, 1, S(4), V(1, 2, -2, -1), 0);
    expect(bin(TD_OP_floor_divide, mk(TD_FLOAT64, 1, S(3), V(-7.5, 7.5, 1)),
               mk(TD_FLOAT64, 1, S(3), V(2, -2, 0)), 0, NULL),
           TD_FLOAT64, 1, S(3), V(-4, -4, INFINITY), 0);
    struct td_tensor *r = bin(TD_OP_remainder, mk(TD_FLOAT64, 1, S(3), V(-7.5, 7.5, 5)),
                              mk(TD_FLOAT64, 1, S(3), V(2, -2, -5)), 0, NULL);
    assert_true(signbit(*((double *)td_tensor_data(r) + 2))); /* -0.0: sign of the divisor */
    expect(r, TD_FLOAT64, 1, S(3), V(0.5, -0.5, 0), 0);
    expect(bin(TD_OP_div, mk(TD_FLOAT32, 1, S(2), V(1, -1)), mk(TD_FLOAT32, 1, S(2), V(0, 0)), 0,
               NULL),
           TD_FLOAT32, 1, S(2), V(INFINITY, -INFINITY), 0);
    /* Integer division by zero is an error, not a trap. */
    bin_fails(TD_OP_floor_divide, mk(TD_INT32, 1, S(2), V(1, 2)), mk(TD_INT32, 1, S(2), V(1, 0)),
              0, NULL, TD_EINVAL, "floor_divide: integer division by zero");
    bin_fails(TD_OP_remainder, mk(TD_INT8, 1, S(1), V(1)), mk(TD_INT8, 1, S(1), V(0)), 0, NULL,
              TD_EINVAL, "remainder: integer division by zero");
    bin_fails(TD_OP_div, mk(TD_INT64, 1, S(1), V(1)), mk(TD_INT64, 1, S(1), V(0)), 1, tr,
              TD_EINVAL, "div: integer division by zero");
    struct td_attr_arg bad[1] = {a_str("rounding_mode", "ceil")};
    bin_fails(TD_OP_div, mk(TD_INT64, 1, S(1), V(1)), mk(TD_INT64, 1, S(1), V(1)), 1, bad,
              TD_EINVAL, "div: rounding_mode must be 'trunc' or 'floor'");
    /* INT64_MIN // -1 wraps instead of trapping. */
    struct td_tensor *mn = mk(TD_INT64, 1, S(1), V(0));
    *(int64_t *)td_tensor_data(mn) = INT64_MIN;
    struct td_tensor *q = bin(TD_OP_floor_divide, mn, mk(TD_INT64, 1, S(1), V(-1)), 0, NULL);
    assert_true(*(int64_t *)td_tensor_data(q) == INT64_MIN);
    td_tensor_release(q);
}

static void test_pow(void **state)
{
    (void)state;
    struct td_tensor *o = bin(TD_OP_pow, mk(TD_INT64, 1, S(4), V(3, 2, -2, 0)),
                              mk(TD_INT64, 1, S(4), V(4, 62, 3, 0)), 0, NULL);
    const int64_t *p = td_tensor_data(o);
    assert_true(p[0] == 81 && p[1] == (1LL << 62) && p[2] == -8 && p[3] == 1);
    td_tensor_release(o);
    /* 3^3 = 27 in int8; 3^5 = 243 wraps to -13 like int8 arithmetic */
    expect(bin(TD_OP_pow, mk(TD_INT8, 1, S(2), V(3, 3)), mk(TD_INT8, 1, S(2), V(3, 5)), 0, NULL),
           TD_INT8, 1, S(2), V(27, -13), 0);
    bin_fails(TD_OP_pow, mk(TD_INT32, 1, S(1), V(2)), mk(TD_INT32, 1, S(1), V(-1)), 0, NULL,
              TD_EINVAL, "pow: integers to negative integer powers are not allowed");
    expect(bin(TD_OP_pow, mk(TD_FLOAT32, 1, S(2), V(2, 4)), mk(TD_FLOAT32, 1, S(2), V(0.5, -1)),
               0, NULL),
           TD_FLOAT32, 1, S(2), V(1.4142135623730951, 0.25), 1e-7);
    /* int tensor ** wrapped float -> float32 */
    expect(bin(TD_OP_pow, mk(TD_INT32, 1, S(1), V(9)), wrapped(TD_FLOAT64, 0.5), 0, NULL),
           TD_FLOAT32, 1, S(1), V(3), 0);
    expect_c(bin(TD_OP_pow, mkc(TD_COMPLEX128, 1, V(0, 1)), mkc(TD_COMPLEX128, 1, V(2, 0)), 0,
                 NULL),
             TD_COMPLEX128, 1, V(-1, 0), 1e-15);
}

static void test_compare(void **state)
{
    (void)state;
#define CMP(op, want)                                                                   \
    expect(bin(op, mk(TD_FLOAT32, 1, S(3), V(1, NAN, 3)), mk(TD_FLOAT32, 1, S(3), V(1, NAN, 2)), \
               0, NULL),                                                                \
           TD_BOOL, 1, S(3), want, 0)
    CMP(TD_OP_eq, V(1, 0, 0));
    CMP(TD_OP_ne, V(0, 1, 1));
    CMP(TD_OP_lt, V(0, 0, 0));
    CMP(TD_OP_le, V(1, 0, 0));
    CMP(TD_OP_gt, V(0, 0, 1));
    CMP(TD_OP_ge, V(1, 0, 1));
#undef CMP
    /* int64 typed loop and a mixed-dtype generic one */
    expect(bin(TD_OP_lt, mk(TD_INT64, 1, S(3), V(1, 5, -3)), mk(TD_INT64, 1, S(3), V(2, 5, -4)), 0,
               NULL),
           TD_BOOL, 1, S(3), V(1, 0, 0), 0);
    expect(bin(TD_OP_lt, mk(TD_INT32, 1, S(2), V(1, 2)), mk(TD_FLOAT32, 1, S(2), V(1.5, 1.5)), 0,
               NULL),
           TD_BOOL, 1, S(2), V(1, 0), 0);
    expect(bin(TD_OP_eq, mkc(TD_COMPLEX64, 2, V(1, 2, 1, 3)), mkc(TD_COMPLEX64, 2, V(1, 2, 1, 2)),
               0, NULL),
           TD_BOOL, 1, S(2), V(1, 0), 0);
    /* lt on complex is rejected */
    bin_fails(TD_OP_lt, mkc(TD_COMPLEX64, 1, V(1, 2)), mkc(TD_COMPLEX64, 1, V(1, 2)), 0, NULL,
              TD_EINVAL, "lt: dtype complex64 not supported");
}

static void test_max_min(void **state)
{
    (void)state;
    expect(bin(TD_OP_maximum, mk(TD_FLOAT32, 1, S(3), V(1, NAN, -0.5)),
               mk(TD_FLOAT32, 1, S(3), V(2, 0, -1)), 0, NULL),
           TD_FLOAT32, 1, S(3), V(2, NAN, -0.5), 0);
    expect(bin(TD_OP_minimum, mk(TD_FLOAT32, 1, S(3), V(1, 0, -0.5)),
               mk(TD_FLOAT32, 1, S(3), V(2, NAN, -1)), 0, NULL),
           TD_FLOAT32, 1, S(3), V(1, NAN, -1), 0);
    expect(bin(TD_OP_maximum, mk(TD_INT16, 1, S(2), V(-5, 7)), mk(TD_INT16, 1, S(2), V(3, 2)), 0,
               NULL),
           TD_INT16, 1, S(2), V(3, 7), 0);
    expect(bin(TD_OP_atan2, mk(TD_INT32, 1, S(2), V(1, -1)), mk(TD_INT32, 1, S(2), V(-1, -1)), 0,
               NULL),
           TD_FLOAT32, 1, S(2), V(3 * M_PI / 4, -3 * M_PI / 4), 1e-7);
}

static void test_shifts_bitwise(void **state)
{
    (void)state;
    expect(bin(TD_OP_bitwise_left_shift, mk(TD_INT32, 1, S(4), V(1, 1, 1, 3)),
               mk(TD_INT32, 1, S(4), V(31, 32, -1, 2)), 0, NULL),
           TD_INT32, 1, S(4), V(-2147483648.0, 0, 0, 12), 0);
    expect(bin(TD_OP_bitwise_right_shift, mk(TD_INT32, 1, S(4), V(-8, -8, 8, 8)),
               mk(TD_INT32, 1, S(4), V(1, 40, -1, 3)), 0, NULL),
           TD_INT32, 1, S(4), V(-4, -1, 0, 1), 0);
    expect(bin(TD_OP_bitwise_left_shift, mk(TD_INT8, 1, S(2), V(1, 1)),
               mk(TD_INT8, 1, S(2), V(7, 8)), 0, NULL),
           TD_INT8, 1, S(2), V(-128, 0), 0);
    expect(bin(TD_OP_bitwise_right_shift, mk(TD_UINT8, 1, S(1), V(255)),
               mk(TD_UINT8, 1, S(1), V(4)), 0, NULL),
           TD_UINT8, 1, S(1), V(15), 0);
    expect(bin(TD_OP_bitwise_and, mk(TD_INT32, 1, S(1), V(12)), mk(TD_INT32, 1, S(1), V(10)), 0,
               NULL),
           TD_INT32, 1, S(1), V(8), 0);
    expect(bin(TD_OP_bitwise_or, mk(TD_INT32, 1, S(1), V(12)), mk(TD_INT32, 1, S(1), V(10)), 0,
               NULL),
           TD_INT32, 1, S(1), V(14), 0);
    expect(bin(TD_OP_bitwise_xor, mk(TD_BOOL, 1, S(2), V(1, 1)), mk(TD_BOOL, 1, S(2), V(0, 1)),
               0, NULL),
           TD_BOOL, 1, S(2), V(1, 0), 0);
    expect(un(TD_OP_bitwise_not, mk(TD_INT8, 1, S(2), V(5, -1)), 0, NULL), TD_INT8, 1, S(2),
           V(-6, 0), 0);
    expect(un(TD_OP_bitwise_not, mk(TD_BOOL, 1, S(2), V(1, 0)), 0, NULL), TD_BOOL, 1, S(2),
           V(0, 1), 0);
    bin_fails(TD_OP_bitwise_and, mk(TD_FLOAT32, 1, S(1), V(1)), mk(TD_INT32, 1, S(1), V(1)), 0,
              NULL, TD_EINVAL, "bitwise_and: dtype float32 not supported");
}

static void test_logical(void **state)
{
    (void)state;
    expect(bin(TD_OP_logical_and, mk(TD_FLOAT32, 1, S(3), V(0, 1.5, NAN)),
               mk(TD_INT32, 1, S(3), V(3, 0, 1)), 0, NULL),
           TD_BOOL, 1, S(3), V(0, 0, 1), 0);
    expect(bin(TD_OP_logical_or, mk(TD_FLOAT32, 1, S(3), V(0, 1.5, 0)),
               mk(TD_INT32, 1, S(3), V(3, 0, 0)), 0, NULL),
           TD_BOOL, 1, S(3), V(1, 1, 0), 0);
    expect(bin(TD_OP_logical_xor, mk(TD_FLOAT32, 1, S(3), V(0, 1.5, 2)),
               mk(TD_INT32, 1, S(3), V(3, 0, 1)), 0, NULL),
           TD_BOOL, 1, S(3), V(1, 1, 0), 0);
    expect(un(TD_OP_logical_not, mkc(TD_COMPLEX64, 2, V(0, 0, 0, 1)), 0, NULL), TD_BOOL, 1, S(2),
           V(1, 0), 0);
}

/* ---------------------------------------------------------------------------------------
 * Unary.
 */
static void test_unary_math(void **state)
{
    (void)state;
    expect(un(TD_OP_exp, mk(TD_INT32, 1, S(2), V(0, 1)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(1, (double)(float)M_E), 0);
    expect(un(TD_OP_sqrt, mk(TD_FLOAT64, 1, S(3), V(4, 2, -1)), 0, NULL), TD_FLOAT64, 1, S(3),
           V(2, 1.4142135623730951, NAN), 0);
    expect(un(TD_OP_log, mk(TD_FLOAT32, 1, S(3), V(1, 0, -1)), 0, NULL), TD_FLOAT32, 1, S(3),
           V(0, -INFINITY, NAN), 0);
    expect(un(TD_OP_rsqrt, mk(TD_FLOAT32, 1, S(1), V(4)), 0, NULL), TD_FLOAT32, 1, S(1), V(0.5),
           0);
    expect(un(TD_OP_sigmoid, mk(TD_FLOAT32, 1, S(2), V(0, 100)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(0.5, 1), 0);
    expect(un(TD_OP_relu, mk(TD_FLOAT32, 1, S(3), V(-1, 2, NAN)), 0, NULL), TD_FLOAT32, 1, S(3),
           V(0, 2, NAN), 0);
    expect(un(TD_OP_relu, mk(TD_INT64, 1, S(2), V(-1, 2)), 0, NULL), TD_INT64, 1, S(2), V(0, 2),
           0);
    expect(un(TD_OP_sign, mk(TD_FLOAT64, 1, S(4), V(-3, 0, 2, NAN)), 0, NULL), TD_FLOAT64, 1, S(4),
           V(-1, 0, 1, NAN), 0);
    expect(un(TD_OP_sign, mk(TD_INT32, 1, S(3), V(-3, 0, 5)), 0, NULL), TD_INT32, 1, S(3),
           V(-1, 0, 1), 0);
    expect(un(TD_OP_abs, mk(TD_INT32, 1, S(2), V(-3, 4)), 0, NULL), TD_INT32, 1, S(2), V(3, 4), 0);
    expect(un(TD_OP_neg, mk(TD_FLOAT16, 1, S(2), V(1.5, -0.25)), 0, NULL), TD_FLOAT16, 1, S(2),
           V(-1.5, 0.25), 0);
    expect(un(TD_OP_floor, mk(TD_FLOAT32, 1, S(2), V(-1.5, 1.5)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(-2, 1), 0);
    expect(un(TD_OP_ceil, mk(TD_FLOAT32, 1, S(2), V(-1.5, 1.5)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(-1, 2), 0);
    expect(un(TD_OP_trunc, mk(TD_FLOAT32, 1, S(2), V(-1.5, 1.5)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(-1, 1), 0);
    expect(un(TD_OP_floor, mk(TD_INT8, 1, S(1), V(-7)), 0, NULL), TD_INT8, 1, S(1), V(-7), 0);
    expect(un(TD_OP_expm1, mk(TD_FLOAT64, 1, S(1), V(1e-10)), 0, NULL), TD_FLOAT64, 1, S(1),
           V(1.00000000005e-10), 1e-15);
    expect(un(TD_OP_log1p, mk(TD_FLOAT64, 1, S(1), V(1e-10)), 0, NULL), TD_FLOAT64, 1, S(1),
           V(9.9999999995e-11), 1e-15);
    expect(un(TD_OP_atanh, mk(TD_FLOAT64, 1, S(1), V(0.5)), 0, NULL), TD_FLOAT64, 1, S(1),
           V(0.5493061443340549), 1e-15);
    expect(un(TD_OP_log2, mk(TD_UINT8, 1, S(1), V(8)), 0, NULL), TD_FLOAT32, 1, S(1), V(3), 0);
    expect(un(TD_OP_sin, mk(TD_BOOL, 1, S(2), V(0, 1)), 0, NULL), TD_FLOAT32, 1, S(2),
           V(0, (double)(float)sin(1.0)), 0);
    expect(un(TD_OP_angle, mk(TD_FLOAT64, 1, S(3), V(-2, 3, NAN)), 0, NULL), TD_FLOAT64, 1, S(3),
           V(M_PI, 0, NAN), 0);
    expect(un(TD_OP_angle, mk(TD_INT32, 1, S(1), V(-2)), 0, NULL), TD_FLOAT32, 1, S(1),
           V((double)(float)M_PI), 0);
    /* bfloat16 in, bfloat16 out, computed through float */
    expect(un(TD_OP_cos, mk(TD_BFLOAT16, 1, S(1), V(0)), 0, NULL), TD_BFLOAT16, 1, S(1), V(1), 0);
    struct td_tensor *in1[1] = {NULL};
    in1[0] = mk(TD_BOOL, 1, S(1), V(1));
    call_fails(TD_OP_neg, 1, in1, 0, NULL, TD_EINVAL, "neg: dtype bool not supported");
    td_tensor_release(in1[0]);
}

static void test_round(void **state)
{
    (void)state;
    struct td_tensor *r = un(TD_OP_round, mk(TD_FLOAT32, 1, S(5), V(0.5, 1.5, 2.5, -0.5, -1.5)),
                             0, NULL);
    assert_true(signbit(((float *)td_tensor_data(r))[3]));
    expect(r, TD_FLOAT32, 1, S(5), V(0, 2, 2, -0.0, -2), 0);
    struct td_attr_arg d2[1] = {a_int("decimals", 2)};
    expect(un(TD_OP_round, mk(TD_FLOAT64, 1, S(2), V(1.234, -2.5678)), 1, d2), TD_FLOAT64, 1, S(2),
           V(1.23, -2.57), 0);
    expect(un(TD_OP_round, mk(TD_FLOAT32, 1, S(1), V(1.005)), 1, d2), TD_FLOAT32, 1, S(1),
           V((double)1.0f), 0);
    struct td_attr_arg dm1[1] = {a_int("decimals", -1)};
    expect(un(TD_OP_round, mk(TD_FLOAT64, 1, S(3), V(15, 25, 14)), 1, dm1), TD_FLOAT64, 1, S(3),
           V(20, 20, 10), 0);
    expect(un(TD_OP_round, mk(TD_INT64, 1, S(4), V(15, 25, -15, 7)), 1, dm1), TD_INT64, 1, S(4),
           V(20, 20, -20, 10), 0);
    expect(un(TD_OP_round, mk(TD_INT64, 1, S(1), V(17)), 1, d2), TD_INT64, 1, S(1), V(17), 0);
}

static void test_clamp(void **state)
{
    (void)state;
    struct td_attr_arg b[2] = {a_sint("min", 0), a_sint("max", 3)};
    expect(un(TD_OP_clamp, mk(TD_INT32, 1, S(3), V(-5, 1, 5)), 2, b), TD_INT32, 1, S(3),
           V(0, 1, 3), 0);
    struct td_attr_arg lo[1] = {a_sfloat("min", 0.5)};
    expect(un(TD_OP_clamp, mk(TD_FLOAT32, 1, S(3), V(-5, 1, NAN)), 1, lo), TD_FLOAT32, 1, S(3),
           V(0.5, 1, NAN), 0);
    struct td_attr_arg rev[2] = {a_sint("min", 3), a_sint("max", 1)};
    expect(un(TD_OP_clamp, mk(TD_FLOAT64, 1, S(3), V(0, 2, 4)), 2, rev), TD_FLOAT64, 1, S(3),
           V(1, 1, 1), 0);
    struct td_attr_arg hi[1] = {a_sfloat("max", 2.5)};
    expect(un(TD_OP_clamp, mk(TD_INT64, 1, S(2), V(1, 7)), 1, hi), TD_INT64, 1, S(2), V(1, 2), 0);
    struct td_tensor *in[1] = {mk(TD_FLOAT32, 1, S(1), V(1))};
    call_fails(TD_OP_clamp, 1, in, 0, NULL, TD_EINVAL,
               "clamp: at least one of min and max is required");
    td_tensor_release(in[0]);
}

static void test_complex(void **state)
{
    (void)state;
    expect(un(TD_OP_abs, mkc(TD_COMPLEX64, 1, V(3, 4)), 0, NULL), TD_FLOAT32, 1, S(1), V(5), 0);
    expect(un(TD_OP_angle, mkc(TD_COMPLEX128, 1, V(0, 1)), 0, NULL), TD_FLOAT64, 1, S(1),
           V(M_PI / 2), 0);
    expect(un(TD_OP_real, mkc(TD_COMPLEX64, 1, V(1.5, -2)), 0, NULL), TD_FLOAT32, 1, S(1), V(1.5),
           0);
    expect(un(TD_OP_imag, mkc(TD_COMPLEX64, 1, V(1.5, -2)), 0, NULL), TD_FLOAT32, 1, S(1), V(-2),
           0);
    expect(un(TD_OP_real, mk(TD_INT16, 1, S(1), V(-9)), 0, NULL), TD_INT16, 1, S(1), V(-9), 0);
    expect(un(TD_OP_conj, mk(TD_FLOAT32, 1, S(1), V(2)), 0, NULL), TD_FLOAT32, 1, S(1), V(2), 0);
    expect_c(un(TD_OP_conj, mkc(TD_COMPLEX64, 1, V(1, 2)), 0, NULL), TD_COMPLEX64, 1, V(1, -2), 0);
    expect_c(un(TD_OP_exp, mkc(TD_COMPLEX128, 1, V(0, M_PI)), 0, NULL), TD_COMPLEX128, 1,
             V(-1, 0), 1e-15);
    expect_c(un(TD_OP_sqrt, mkc(TD_COMPLEX64, 1, V(-4, 0)), 0, NULL), TD_COMPLEX64, 1, V(0, 2),
             1e-6);
    expect_c(un(TD_OP_rsqrt, mkc(TD_COMPLEX64, 1, V(-4, 0)), 0, NULL), TD_COMPLEX64, 1,
             V(0, -0.5), 1e-6);
    expect_c(un(TD_OP_sigmoid, mkc(TD_COMPLEX64, 1, V(0, 0)), 0, NULL), TD_COMPLEX64, 1, V(0.5, 0),
             1e-7);
    expect_c(un(TD_OP_log, mkc(TD_COMPLEX128, 1, V(-1, 0)), 0, NULL), TD_COMPLEX128, 1,
             V(0, M_PI), 1e-15);
    expect_c(bin(TD_OP_mul, mkc(TD_COMPLEX64, 1, V(1, 2)), mkc(TD_COMPLEX64, 1, V(3, 4)), 0, NULL),
             TD_COMPLEX64, 1, V(-5, 10), 0);
    expect_c(bin(TD_OP_div, mkc(TD_COMPLEX128, 1, V(-5, 10)), mkc(TD_COMPLEX128, 1, V(3, 4)), 0,
                 NULL),
             TD_COMPLEX128, 1, V(1, 2), 1e-15);
    /* complex64 * float64 tensor -> complex128 */
    expect_c(bin(TD_OP_mul, mkc(TD_COMPLEX64, 1, V(1, 1)), mk(TD_FLOAT64, 1, S(1), V(2)), 0, NULL),
             TD_COMPLEX128, 1, V(2, 2), 0);
}

static void test_classify(void **state)
{
    (void)state;
    double v[4] = {1, NAN, INFINITY, -INFINITY};
    expect(un(TD_OP_isnan, mk(TD_FLOAT32, 1, S(4), v), 0, NULL), TD_BOOL, 1, S(4), V(0, 1, 0, 0),
           0);
    expect(un(TD_OP_isinf, mk(TD_FLOAT16, 1, S(4), v), 0, NULL), TD_BOOL, 1, S(4), V(0, 0, 1, 1),
           0);
    expect(un(TD_OP_isfinite, mk(TD_FLOAT64, 1, S(4), v), 0, NULL), TD_BOOL, 1, S(4),
           V(1, 0, 0, 0), 0);
    expect(un(TD_OP_isnan, mk(TD_INT32, 1, S(1), V(3)), 0, NULL), TD_BOOL, 1, S(1), V(0), 0);
    expect(un(TD_OP_isfinite, mk(TD_INT32, 1, S(1), V(3)), 0, NULL), TD_BOOL, 1, S(1), V(1), 0);
    expect(un(TD_OP_isnan, mkc(TD_COMPLEX64, 2, V(0, NAN, 1, 1)), 0, NULL), TD_BOOL, 1, S(2),
           V(1, 0), 0);
}

static void test_cast(void **state)
{
    (void)state;
    struct td_attr_arg i32[1] = {a_dtype("dtype", TD_INT32)};
    expect(un(TD_OP_cast, mk(TD_FLOAT32, 1, S(2), V(2.7, -2.7)), 1, i32), TD_INT32, 1, S(2),
           V(2, -2), 0);
    struct td_attr_arg bl[1] = {a_dtype("dtype", TD_BOOL)};
    expect(un(TD_OP_cast, mk(TD_FLOAT64, 1, S(3), V(0, 0.1, -0.0)), 1, bl), TD_BOOL, 1, S(3),
           V(0, 1, 0), 0);
    struct td_attr_arg h[1] = {a_dtype("dtype", TD_FLOAT16)};
    struct td_tensor *o = un(TD_OP_cast, mk(TD_INT64, 1, S(1), V(3)), 1, h);
    assert_int_equal(*(uint16_t *)td_tensor_data(o), 0x4200);
    td_tensor_release(o);
    struct td_attr_arg f64[1] = {a_dtype("dtype", TD_FLOAT64)};
    expect(un(TD_OP_cast, mkc(TD_COMPLEX64, 1, V(1.5, -4)), 1, f64), TD_FLOAT64, 1, S(1), V(1.5),
           0);
    struct td_attr_arg bad[1] = {a_dtype("dtype", (enum td_dtype)77)};
    struct td_tensor *in[1] = {mk(TD_FLOAT32, 1, S(1), V(1))};
    call_fails(TD_OP_cast, 1, in, 1, bad, TD_EINVAL, "cast: attribute 'dtype': invalid dtype 77");
    call_fails(TD_OP_cast, 1, in, 0, NULL, TD_EINVAL, "cast: missing required attribute 'dtype'");
    td_tensor_release(in[0]);
}

static void test_where(void **state)
{
    (void)state;
    struct td_tensor *in[3] = {mk(TD_UINT8, 2, S(3, 1), V(1, 0, 2)),
                               mk(TD_INT32, 1, S(2), V(1, 2)),
                               mk(TD_FLOAT32, 1, S(1), V(-1))};
    expect(call(TD_OP_where, 3, in, 0, NULL, NULL), TD_FLOAT32, 2, S(3, 2),
           V(1, 2, -1, -1, 1, 2), 0);
    for (int i = 0; i < 3; i++)
        td_tensor_release(in[i]);
}

static void test_half_rounding(void **state)
{
    (void)state;
    /* 1 + 2^-11 ties to even (1); 1 + 3*2^-11 ties up to 1 + 2^-9 */
    expect(bin(TD_OP_add, mk(TD_FLOAT16, 1, S(2), V(1, 1)),
               mk(TD_FLOAT16, 1, S(2), V(0x1p-11, 0x3p-11)), 0, NULL),
           TD_FLOAT16, 1, S(2), V(1, 1 + 0x1p-9), 0);
    expect(bin(TD_OP_mul, mk(TD_BFLOAT16, 1, S(1), V(3)), mk(TD_BFLOAT16, 1, S(1), V(1.5)), 0,
               NULL),
           TD_BFLOAT16, 1, S(1), V(4.5), 0);
}

static void test_noncontiguous(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *base = mk(TD_FLOAT32, 2, S(2, 3), NULL); /* [[0,1,2],[3,4,5]] */
    struct td_tensor *tv = NULL;
    assert_int_equal(td_tensor_new_view(base, 2, S(3, 2), S(1, 3), 0, &tv, &err), 0);
    /* tv = [[0,3],[1,4],[2,5]] + [[10,20],[30,40],[50,60]] */
    expect(bin(TD_OP_add, tv, mk(TD_FLOAT32, 2, S(3, 2), V(10, 20, 30, 40, 50, 60)), 0, NULL),
           TD_FLOAT32, 2, S(3, 2), V(10, 23, 31, 44, 52, 65), 0);
    /* reversed view through exp (generic unary path) */
    struct td_tensor *rv = NULL;
    assert_int_equal(td_tensor_new_view(base, 1, S(3), S(-1), 2, &rv, &err), 0);
    expect(un(TD_OP_neg, rv, 0, NULL), TD_FLOAT32, 1, S(3), V(-2, -1, 0), 0);
    td_tensor_release(base);
}

/* ---------------------------------------------------------------------------------------
 * Creation.
 */
static void test_fill_ops(void **state)
{
    (void)state;
    struct td_attr_arg z[1] = {a_ints("shape", 2, S(2, 2))};
    expect(call(TD_OP_zeros, 0, NULL, 1, z, NULL), TD_FLOAT32, 2, S(2, 2), V(0, 0, 0, 0), 0);
    struct td_attr_arg o[2] = {a_ints("shape", 1, S(3)), a_dtype("dtype", TD_INT8)};
    expect(call(TD_OP_ones, 0, NULL, 2, o, NULL), TD_INT8, 1, S(3), V(1, 1, 1), 0);
    struct td_attr_arg e[1] = {a_ints("shape", 1, S(5))};
    expect(call(TD_OP_empty, 0, NULL, 1, e, NULL), TD_FLOAT32, 1, S(5), V(0, 0, 0, 0, 0), 0);
    struct td_attr_arg fi[2] = {a_ints("shape", 1, S(2)), a_sint("fill_value", 7)};
    expect(call(TD_OP_full, 0, NULL, 2, fi, NULL), TD_INT64, 1, S(2), V(7, 7), 0);
    struct td_attr_arg ff[2] = {a_ints("shape", 1, S(3)), a_sfloat("fill_value", 0.1)};
    expect(call(TD_OP_full, 0, NULL, 2, ff, NULL), TD_FLOAT32, 1, S(3),
           V((double)0.1f, (double)0.1f, (double)0.1f), 0);
    struct td_attr_arg fb[2] = {a_ints("shape", 0, NULL), a_sbool("fill_value", true)};
    expect(call(TD_OP_full, 0, NULL, 2, fb, NULL), TD_BOOL, 0, NULL, V(1), 0);
    struct td_attr_arg fc[2] = {a_ints("shape", 1, S(1)), a_scplx("fill_value", 1, -1)};
    expect_c(call(TD_OP_full, 0, NULL, 2, fc, NULL), TD_COMPLEX64, 1, V(1, -1), 0);
    struct td_attr_arg fd[3] = {a_ints("shape", 1, S(1)), a_sint("fill_value", 3),
                                a_dtype("dtype", TD_FLOAT64)};
    expect(call(TD_OP_full, 0, NULL, 3, fd, NULL), TD_FLOAT64, 1, S(1), V(3), 0);

    /* A wrapped Python float keeps double precision (promotion looks only at its
     * category): float64 * 0.8 must be exactly 0.8 (regression: it was stored as float32). */
    struct td_attr_arg st[2] = {a_sfloat("value", 0.8), a_bool("wrapped", true)};
    struct td_tensor *s = call(TD_OP_scalar_tensor, 0, NULL, 2, st, NULL);
    assert_true(s->wrapped_number);
    struct td_tensor *one64 = mk(TD_FLOAT64, 1, S(1), V(1));
    struct td_tensor *one32 = mk(TD_FLOAT32, 1, S(1), V(1));
    struct td_tensor *pair64[2] = {one64, s}, *pair32[2] = {one32, s};
    expect(call(TD_OP_mul, 2, pair64, 0, NULL, NULL), TD_FLOAT64, 1, S(1), V(0.8), 0);
    expect(call(TD_OP_mul, 2, pair32, 0, NULL, NULL), TD_FLOAT32, 1, S(1), V((float)0.8), 0);
    td_tensor_release(one64);
    td_tensor_release(one32);
    expect(s, TD_FLOAT64, 0, NULL, V(0.8), 0);
    struct td_attr_arg st2[2] = {a_sint("value", -3), a_dtype("dtype", TD_INT16)};
    s = call(TD_OP_scalar_tensor, 0, NULL, 2, st2, NULL);
    assert_false(s->wrapped_number);
    expect(s, TD_INT16, 0, NULL, V(-3), 0);

    struct td_attr_arg neg[1] = {a_ints("shape", 2, S(2, -1))};
    call_fails(TD_OP_zeros, 0, NULL, 1, neg, TD_EINVAL, "zeros: negative dimension -1");
    struct td_attr_arg huge[1] = {a_ints("shape", 3, S(1LL << 30, 1LL << 30, 1LL << 30))};
    call_fails(TD_OP_ones, 0, NULL, 1, huge, TD_EINVAL, "ones: shape is too large");
}

static void test_like_ops(void **state)
{
    (void)state;
    struct td_tensor *x[1] = {mk(TD_INT32, 2, S(1, 2), V(5, 6))};
    expect(call(TD_OP_zeros_like, 1, x, 0, NULL, NULL), TD_INT32, 2, S(1, 2), V(0, 0), 0);
    struct td_attr_arg d[1] = {a_dtype("dtype", TD_FLOAT64)};
    expect(call(TD_OP_ones_like, 1, x, 1, d, NULL), TD_FLOAT64, 2, S(1, 2), V(1, 1), 0);
    expect(call(TD_OP_empty_like, 1, x, 0, NULL, NULL), TD_INT32, 2, S(1, 2), V(0, 0), 0);
    struct td_attr_arg f[1] = {a_sfloat("fill_value", 2.9)};
    expect(call(TD_OP_full_like, 1, x, 1, f, NULL), TD_INT32, 2, S(1, 2), V(2, 2), 0);
    struct td_attr_arg ri[2] = {a_int("low", 5), a_int("high", 6)};
    struct td_rng rng = {3, 0};
    expect(call(TD_OP_randint_like, 1, x, 2, ri, &rng), TD_INT32, 2, S(1, 2), V(5, 5), 0);
    td_tensor_release(x[0]);
}

static void test_arange_linspace_eye(void **state)
{
    (void)state;
    struct td_attr_arg a1[3] = {a_sint("start", 0), a_sint("end", 10), a_sint("step", 3)};
    expect(call(TD_OP_arange, 0, NULL, 3, a1, NULL), TD_INT64, 1, S(4), V(0, 3, 6, 9), 0);
    struct td_attr_arg a2[3] = {a_sint("start", 1), a_sfloat("end", 2.5), a_sfloat("step", 0.5)};
    expect(call(TD_OP_arange, 0, NULL, 3, a2, NULL), TD_FLOAT32, 1, S(3), V(1, 1.5, 2), 0);
    struct td_attr_arg a3[3] = {a_sint("start", 5), a_sint("end", 0), a_sint("step", -2)};
    expect(call(TD_OP_arange, 0, NULL, 3, a3, NULL), TD_INT64, 1, S(3), V(5, 3, 1), 0);
    struct td_attr_arg a4[1] = {a_sint("end", 4)};
    expect(call(TD_OP_arange, 0, NULL, 1, a4, NULL), TD_INT64, 1, S(4), V(0, 1, 2, 3), 0);
    struct td_attr_arg a5[2] = {a_sint("end", 3), a_dtype("dtype", TD_FLOAT64)};
    expect(call(TD_OP_arange, 0, NULL, 2, a5, NULL), TD_FLOAT64, 1, S(3), V(0, 1, 2), 0);
    struct td_attr_arg a6[2] = {a_sint("start", 5), a_sint("end", 0)};
    expect(call(TD_OP_arange, 0, NULL, 2, a6, NULL), TD_INT64, 1, S(0), V(0), 0);
    struct td_attr_arg a7[2] = {a_sint("end", 3), a_sint("step", 0)};
    call_fails(TD_OP_arange, 0, NULL, 2, a7, TD_EINVAL, "arange: step must be nonzero");
    struct td_attr_arg a8[1] = {a_sfloat("end", INFINITY)};
    call_fails(TD_OP_arange, 0, NULL, 1, a8, TD_EINVAL, "arange: start, end and step must be finite");
    struct td_attr_arg a9[2] = {a_sint("end", 3), a_dtype("dtype", TD_BOOL)};
    call_fails(TD_OP_arange, 0, NULL, 2, a9, TD_EINVAL, "arange: dtype bool not supported");
    struct td_attr_arg a10[3] = {a_sint("start", INT64_MIN), a_sint("end", INT64_MAX),
                                 a_sint("step", 1)};
    call_fails(TD_OP_arange, 0, NULL, 3, a10, TD_EINVAL, "arange:");

    struct td_attr_arg l1[3] = {a_sint("start", 0), a_sint("end", 1), a_int("steps", 5)};
    expect(call(TD_OP_linspace, 0, NULL, 3, l1, NULL), TD_FLOAT32, 1, S(5),
           V(0, 0.25, 0.5, 0.75, 1), 0);
    struct td_attr_arg l2[3] = {a_sfloat("start", 2.5), a_sint("end", 9), a_int("steps", 1)};
    expect(call(TD_OP_linspace, 0, NULL, 3, l2, NULL), TD_FLOAT32, 1, S(1), V(2.5), 0);
    struct td_attr_arg l3[3] = {a_sint("start", 0), a_sint("end", 1), a_int("steps", 0)};
    expect(call(TD_OP_linspace, 0, NULL, 3, l3, NULL), TD_FLOAT32, 1, S(0), V(0), 0);
    struct td_attr_arg l4[4] = {a_sint("start", 0), a_sint("end", 10), a_int("steps", 5),
                                a_dtype("dtype", TD_INT64)};
    expect(call(TD_OP_linspace, 0, NULL, 4, l4, NULL), TD_INT64, 1, S(5), V(0, 2, 5, 7, 10), 0);
    struct td_attr_arg l5[3] = {a_sint("start", 0), a_sint("end", 1), a_int("steps", -1)};
    call_fails(TD_OP_linspace, 0, NULL, 3, l5, TD_EINVAL, "linspace: number of steps");

    struct td_attr_arg e1[2] = {a_int("n", 2), a_int("m", 3)};
    expect(call(TD_OP_eye, 0, NULL, 2, e1, NULL), TD_FLOAT32, 2, S(2, 3), V(1, 0, 0, 0, 1, 0), 0);
    struct td_attr_arg e2[2] = {a_int("n", 2), a_dtype("dtype", TD_BOOL)};
    expect(call(TD_OP_eye, 0, NULL, 2, e2, NULL), TD_BOOL, 2, S(2, 2), V(1, 0, 0, 1), 0);
    struct td_attr_arg e3[1] = {a_int("n", -1)};
    call_fails(TD_OP_eye, 0, NULL, 1, e3, TD_EINVAL, "eye: negative dimension");
}

static void test_random(void **state)
{
    (void)state;
    /* rand float32: element k = top 24 bits of word k%4 of block offset + k/4, times 2^-24 */
    struct td_rng rng = {7, 5};
    struct td_attr_arg r1[1] = {a_ints("shape", 1, S(10))};
    struct td_tensor *t = call(TD_OP_rand, 0, NULL, 1, r1, &rng);
    assert_int_equal(rng.offset, 8); /* 10 words -> 3 blocks */
    const float *f = td_tensor_data(t);
    for (int k = 0; k < 10; k++) {
        uint32_t w[4];
        td_philox4x32(7, 0, 5 + (uint64_t)k / 4, w);
        assert_true(f[k] == (float)((double)(w[k % 4] >> 8) * 0x1p-24));
        assert_true(f[k] >= 0 && f[k] < 1);
    }
    td_tensor_release(t);
    /* Same (seed, offset) reproduces; the advanced generator gives something else. */
    struct td_rng again = {7, 5};
    t = call(TD_OP_rand, 0, NULL, 1, r1, &again);
    struct td_tensor *t2 = call(TD_OP_rand, 0, NULL, 1, r1, &again);
    uint32_t w5[4];
    td_philox4x32(7, 0, 5, w5);
    assert_true(((float *)td_tensor_data(t))[0] == (float)((double)(w5[0] >> 8) * 0x1p-24));
    assert_memory_not_equal(td_tensor_data(t), td_tensor_data(t2), 40);
    td_tensor_release(t);
    td_tensor_release(t2);

    /* float64 uses two words per element: 53 bits from (w0 << 32 | w1) >> 11 */
    struct td_rng r64 = {9, 0};
    struct td_attr_arg r2[2] = {a_ints("shape", 1, S(3)), a_dtype("dtype", TD_FLOAT64)};
    t = call(TD_OP_rand, 0, NULL, 2, r2, &r64);
    assert_int_equal(r64.offset, 2);
    uint32_t w[4];
    td_philox4x32(9, 0, 0, w);
    double e0 = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1p-53;
    assert_true(((double *)td_tensor_data(t))[0] == e0);
    td_tensor_release(t);

    /* randn: sample mean and variance of 20000 draws */
    struct td_rng rn = {11, 0};
    struct td_attr_arg r3[1] = {a_ints("shape", 1, S(20000))};
    t = call(TD_OP_randn, 0, NULL, 1, r3, &rn);
    assert_int_equal(rn.offset, 10000);
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        double v = ((float *)td_tensor_data(t))[i];
        sum += v;
        sq += v * v;
    }
    double mean = sum / 20000, var = sq / 20000 - mean * mean;
    assert_true(fabs(mean) < 0.05);
    assert_true(fabs(var - 1) < 0.05);
    td_tensor_release(t);

    /* complex randn: each part has variance 1/2 */
    struct td_attr_arg r4[2] = {a_ints("shape", 1, S(20000)), a_dtype("dtype", TD_COMPLEX64)};
    t = call(TD_OP_randn, 0, NULL, 2, r4, &rn);
    double sre = 0, sim = 0;
    for (int i = 0; i < 20000; i++) {
        const float *z = (const float *)td_tensor_data(t) + 2 * i;
        sre += (double)z[0] * z[0];
        sim += (double)z[1] * z[1];
    }
    assert_true(fabs(sre / 20000 - 0.5) < 0.03 && fabs(sim / 20000 - 0.5) < 0.03);
    td_tensor_release(t);

    /* randint in [3, 7): every value appears, none outside */
    struct td_attr_arg r5[3] = {a_int("low", 3), a_int("high", 7), a_ints("shape", 1, S(1000))};
    t = call(TD_OP_randint, 0, NULL, 3, r5, &rn);
    assert_int_equal(t->dtype, TD_INT64);
    int seen[4] = {0};
    for (int i = 0; i < 1000; i++) {
        int64_t v = ((int64_t *)td_tensor_data(t))[i];
        assert_in_range(v, 3, 6);
        seen[v - 3]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 150);
    td_tensor_release(t);

    struct td_attr_arg r6[2] = {a_int("high", 0), a_ints("shape", 1, S(2))};
    call_fails(TD_OP_randint, 0, NULL, 2, r6, TD_EINVAL, "randint: high (0) must be greater than low (0)");
    struct td_attr_arg r7[3] = {a_int("high", 300), a_ints("shape", 1, S(2)),
                                a_dtype("dtype", TD_INT8)};
    call_fails(TD_OP_randint, 0, NULL, 3, r7, TD_EINVAL, "does not fit int8");
    struct td_attr_arg r8[2] = {a_ints("shape", 1, S(2)), a_dtype("dtype", TD_INT64)};
    call_fails(TD_OP_rand, 0, NULL, 2, r8, TD_EINVAL, "rand: dtype int64 not supported");
    struct td_tensor *out = NULL;
    assert_int_equal(td_op_call(TD_OP_rand, 0, NULL, 1, r1, 1, &out, NULL, NULL, &last_err),
                     TD_EINVAL);
    assert_null(out);
}

/* ---------------------------------------------------------------------------------------
 * Validation messages.
 */
static void test_validation(void **state)
{
    (void)state;
    struct td_tensor *a = mk(TD_FLOAT32, 2, S(2, 3), NULL), *b = mk(TD_FLOAT32, 1, S(4), NULL);
    struct td_tensor *ab[2] = {a, b}, *aa[2] = {a, a};
    call_fails(TD_OP_add, 2, ab, 0, NULL, TD_EINVAL, "add: shapes [2,3] and [4] cannot broadcast");
    call_fails(TD_OP_add, 1, ab, 0, NULL, TD_EINVAL, "add: expects 2 inputs, got 1");
    struct td_attr_arg unk[1] = {a_sint("beta", 1)};
    call_fails(TD_OP_add, 2, aa, 1, unk, TD_EINVAL, "add: unknown attribute 'beta'");
    struct td_attr_arg dup[2] = {a_sint("alpha", 1), a_sint("alpha", 2)};
    call_fails(TD_OP_add, 2, aa, 2, dup, TD_EINVAL, "add: duplicate attribute 'alpha'");
    struct td_attr_arg wrong[1] = {a_str("decimals", "2")};
    call_fails(TD_OP_round, 1, aa, 1, wrong, TD_EINVAL,
               "round: attribute 'decimals' must be int, got str");
    struct td_attr_arg toolong[1] = {a_ints("shape", 1, S(0))};
    toolong[0].value.nints = 17;
    call_fails(TD_OP_zeros, 0, NULL, 1, toolong, TD_EINVAL, "zeros: attribute 'shape' has 17");
    struct td_attr_arg noshape[1] = {a_dtype("dtype", TD_FLOAT32)};
    call_fails(TD_OP_zeros, 0, NULL, 1, noshape, TD_EINVAL,
               "zeros: missing required attribute 'shape'");
    struct td_tensor *bb[2] = {mk(TD_BOOL, 1, S(1), V(1)), mk(TD_BOOL, 1, S(1), V(1))};
    call_fails(TD_OP_sub, 2, bb, 0, NULL, TD_EINVAL, "sub: dtype bool not supported");
    /* A wrong output count. */
    struct td_tensor *outs[2] = {NULL, NULL};
    assert_int_equal(td_op_call(TD_OP_add, 2, aa, 0, NULL, 2, outs, NULL, NULL, &last_err),
                     TD_EINVAL);
    assert_non_null(strstr(last_err.msg, "add: produces 1 output, 2 requested"));
    /* An int attribute is accepted where a float or a scalar is declared. */
    struct td_attr_arg ia[1] = {{"alpha", {.type = TD_ATTR_INT, .i = 2}}};
    expect(call(TD_OP_add, 2, aa, 1, ia, NULL), TD_FLOAT32, 2, S(2, 3), V(0, 3, 6, 9, 12, 15), 0);
    td_tensor_release(bb[0]);
    td_tensor_release(bb[1]);
    td_tensor_release(a);
    td_tensor_release(b);
}

int main(void)
{
    struct td_error err;
    if (td_ops_init(&err)) {
        fprintf(stderr, "td_ops_init: %s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_broadcast, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_add_alpha, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_int_wrap, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_promotion, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_division, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_pow, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_compare, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_max_min, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_shifts_bitwise, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_logical, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_unary_math, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_round, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_clamp, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_complex, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_classify, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_cast, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_where, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_half_rounding, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_noncontiguous, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_fill_ops, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_like_ops, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_arange_linspace_eye, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_random, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_validation, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
