/*
 * optest.h - helpers shared by the op-family unit tests (test_shape, test_index, test_reduce,
 * test_linalg): build tensors from hand-written values, call ops through td_op_call, and
 * compare results element by element through their own strides, so views are checked as
 * views. Each test file includes this once; everything here is static.
 */
#ifndef TD_OPTEST_H
#define TD_OPTEST_H

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

/* ---------------------------------------------------------------------------------------
 * Helpers: build tensors from hand-written values, call ops, compare element by element
 * through the result's own strides (so views are checked as views).
 */
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define VALS(...) ((const double[]){__VA_ARGS__})

/* New contiguous tensor of dt and shape filled from vals (C order; may be NULL for zero-size). */
static inline struct td_tensor *mk(enum td_dtype dt, int ndim, const int64_t *shape,
                                   const double *vals)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, true, NULL, &t, &err), 0);
    int64_t n = td_tensor_numel(t);
    char *p = td_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        td__store_f64(p + i * (int64_t)td_dtype_size(dt), dt, vals[i]);
    return t;
}

/* 0-d tensor. */
static inline struct td_tensor *mk0(enum td_dtype dt, double v)
{
    return mk(dt, 0, NULL, &v);
}

/* Address of the k-th element in C order of t's logical shape. */
static inline const char *elem(const struct td_tensor *t, int64_t k)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t i = k % t->shape[d];
        k /= t->shape[d];
        off += i * t->strides[d];
    }
    return (const char *)td_tensor_data(t) + off * (int64_t)td_dtype_size(t->dtype);
}

static inline double val(const struct td_tensor *t, int64_t k)
{
    return td__load_f64(elem(t, k), t->dtype);
}

static inline void expect_shape(const struct td_tensor *t, enum td_dtype dt, int ndim,
                                const int64_t *shape)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(t->shape[i], shape[i]);
}

/* Checks dtype, shape and every value (NaN matches NaN; tol is absolute + relative). */
static inline void expect_vals_tol(const struct td_tensor *t, enum td_dtype dt, int ndim,
                                   const int64_t *shape, const double *vals, double tol)
{
    expect_shape(t, dt, ndim, shape);
    int64_t n = td_tensor_numel(t);
    for (int64_t k = 0; k < n; k++) {
        double got = val(t, k), want = vals[k];
        if (isnan(want)) {
            if (!isnan(got))
                fail_msg("element %lld: got %g, want nan", (long long)k, got);
            continue;
        }
        if (isinf(want)) {
            if (got != want)
                fail_msg("element %lld: got %g, want %g", (long long)k, got, want);
            continue;
        }
        if (fabs(got - want) > tol * (1 + fabs(want)))
            fail_msg("element %lld: got %.17g, want %.17g", (long long)k, got, want);
    }
}

static inline void expect_vals(const struct td_tensor *t, enum td_dtype dt, int ndim,
                               const int64_t *shape, const double *vals)
{
    expect_vals_tol(t, dt, ndim, shape, vals, 0);
}

static inline struct td_attr_arg a_int(const char *name, int64_t v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_INT;
    a.value.i = v;
    return a;
}

static inline struct td_attr_arg a_float(const char *name, double v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_FLOAT;
    a.value.f = v;
    return a;
}

static inline struct td_attr_arg a_bool(const char *name, bool v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_BOOL;
    a.value.b = v;
    return a;
}

static inline struct td_attr_arg a_str(const char *name, const char *v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_STR;
    a.value.s = (char *)v;
    return a;
}

static inline struct td_attr_arg a_dtype(const char *name, enum td_dtype v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_DTYPE;
    a.value.dtype = v;
    return a;
}

static inline struct td_attr_arg a_ints(const char *name, int n, const int64_t *v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_INTS;
    a.value.nints = n;
    for (int i = 0; i < n; i++)
        a.value.ints[i] = v[i];
    return a;
}

static inline struct td_attr_arg a_scalar(const char *name, enum td_scalar_kind kind, double re,
                                          double im)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_SCALAR;
    a.value.scalar.kind = kind;
    a.value.scalar.i = (int64_t)re;
    a.value.scalar.re = re;
    a.value.scalar.im = im;
    return a;
}

/* Runs a one-output op; fails the test unless it succeeds. */
static inline struct td_tensor *run1(enum td_op op, int nin, struct td_tensor *const *in, int na,
                                     const struct td_attr_arg *attrs)
{
    struct td_tensor *out = NULL;
    struct td_error err;
    td_error_clear(&err);
    int rc = td_op_call(op, nin, in, na, attrs, 1, &out, NULL, NULL, &err);
    if (rc)
        fail_msg("%s failed: %s", td_op_info_get(op)->name, err.msg);
    return out;
}

/* Runs an op expected to fail with status and a message containing msg. */
/* Runs op (nout outputs into out[]) and fails the test on an error. */
static inline void runn(enum td_op op, int nin, struct td_tensor *const *in, int na,
                        const struct td_attr_arg *a, int nout, struct td_tensor **out)
{
    struct td_error err;
    td_error_clear(&err);
    int rc = td_op_call(op, nin, in, na, a, nout, out, NULL, NULL, &err);
    if (rc)
        fail_msg("%s failed: %s", td_op_info_get(op)->name, err.msg);
}

static inline void run_fail(enum td_op op, int nin, struct td_tensor *const *in, int na,
                            const struct td_attr_arg *attrs, int nout, int status, const char *msg)
{
    struct td_tensor *out[8] = {NULL};
    struct td_error err;
    td_error_clear(&err);
    int rc = td_op_call(op, nin, in, na, attrs, nout, out, NULL, NULL, &err);
    if (rc == 0) {
        for (int i = 0; i < nout; i++)
            td_tensor_release(out[i]);
        fail_msg("%s unexpectedly succeeded", td_op_info_get(op)->name);
    }
    assert_int_equal(rc, status);
    if (msg && !strstr(err.msg, msg))
        fail_msg("error message '%s' lacks '%s'", err.msg, msg);
}

/* Fails the 1st, 2nd, ... allocation of an op call until it succeeds: every failure must be
 * TD_ENOMEM and leave nothing allocated (the teardown checks the block count). */
static inline void fault_loop(enum td_op op, int nin, struct td_tensor *const *in, int na,
                              const struct td_attr_arg *at, int nout)
{
    for (long n = 1; n < 200; n++) {
        struct td_tensor *out[8] = {NULL};
        struct td_error err;
        uint64_t before = td_alloc_live_blocks();
        td_alloc_fail_after(n);
        int rc = td_op_call(op, nin, in, na, at, nout, out, NULL, NULL, &err);
        td_alloc_fail_after(0);
        if (rc == 0) {
            for (int i = 0; i < nout; i++)
                td_tensor_release(out[i]);
            assert_int_equal(td_alloc_live_blocks(), before);
            return;
        }
        if (rc != TD_ENOMEM)
            fail_msg("%s: allocation %ld failed with %d (%s)", td_op_info_get(op)->name, n, rc,
                     err.msg);
        assert_int_equal(td_alloc_live_blocks(), before);
    }
    fail_msg("%s never succeeded under fault injection", td_op_info_get(op)->name);
}

#endif
