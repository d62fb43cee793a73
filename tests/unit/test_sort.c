/*
 * test_sort.c - the ops of ops_sort.c on hand-computed values: sort/argsort stability and
 * NaN order (ascending NaN last, descending NaN first, -0.0 tied with 0.0) on every key path
 * (packed 32-bit words, 64-bit pairs, several threads), searchsorted left/right with NaN and
 * batched sequences, count_nonzero and nonzero (including the count mismatch error), unique
 * with first indices, inverse and counts (every NaN distinct), the exact bits of nextafter in
 * float16/bfloat16/float32/float64, the infinities of logaddexp, and error and
 * allocation-failure paths. The radix sort of long packed rows is checked on hand-computed
 * orders (ties, NaN, -0.0, descending, skipped passes) and against the merge sort of the same
 * values in 64-bit dtypes. Every test runs in the leak-check fixture.
 */
#include <stdlib.h>
#include <string.h>

#include "optest.h"

#define F64 TD_FLOAT64
#define F32 TD_FLOAT32
#define I64 TD_INT64

/* Element k as int64 (indices). */
static int64_t ival(const struct td_tensor *t, int64_t k)
{
    return td__load_i64(elem(t, k), t->dtype);
}

static void expect_ints(const struct td_tensor *t, int ndim, const int64_t *shape,
                        const int64_t *want)
{
    expect_shape(t, I64, ndim, shape);
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        if (ival(t, k) != want[k])
            fail_msg("index %lld: got %lld, want %lld", (long long)k, (long long)ival(t, k),
                     (long long)want[k]);
}

#define IDX(...) ((const int64_t[]){__VA_ARGS__})

/* sort of x (1-d, 9 elements) with descending = desc in dtype dt: values and indices. */
static void check_sort9(enum td_dtype dt, bool desc, const double *vals, const int64_t *idx)
{
    struct td_tensor *x = mk(dt, 1, SHAPE(9), VALS(3, NAN, -0.0, 1, 0.0, -INFINITY, 1, NAN, 2));
    struct td_tensor *out[2] = {NULL, NULL};
    struct td_attr_arg a = a_bool("descending", desc);
    runn(TD_OP_sort, 1, &x, 1, &a, 2, out);
    expect_vals(out[0], dt, 1, SHAPE(9), vals);
    expect_ints(out[1], 1, SHAPE(9), idx);
    /* The tie -0.0 / 0.0 keeps input order: the -0.0 (index 2) comes first either way. */
    int64_t at = desc ? 6 : 1;
    assert_true(signbit(val(out[0], at)));
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(x);
}

static void test_sort_nan_order_and_ties(void **state)
{
    (void)state;
    /* Input [3, nan, -0, 1, 0, -inf, 1, nan, 2] (indices 0..8). */
    const double asc[] = {-INFINITY, -0.0, 0.0, 1, 1, 2, 3, NAN, NAN};
    const int64_t asc_i[] = {5, 2, 4, 3, 6, 8, 0, 1, 7};
    const double dsc[] = {NAN, NAN, 3, 2, 1, 1, -0.0, 0.0, -INFINITY};
    const int64_t dsc_i[] = {1, 7, 0, 8, 3, 6, 2, 4, 5};
    /* float32 and float16 take the packed 32-bit path, float64 the 64-bit pairs. */
    enum td_dtype dts[] = {F32, F64, TD_FLOAT16, TD_BFLOAT16};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        check_sort9(dts[k], false, asc, asc_i);
        check_sort9(dts[k], true, dsc, dsc_i);
    }
}

static void test_sort_ints_dims(void **state)
{
    (void)state;
    /* argsort of [2, 5, 2, 5, 1] descending: 5 (1), 5 (3), 2 (0), 2 (2), 1 (4). */
    enum td_dtype dts[] = {TD_INT8, TD_INT64, TD_UINT8, TD_INT32};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        struct td_tensor *x = mk(dts[k], 1, SHAPE(5), VALS(2, 5, 2, 5, 1));
        struct td_attr_arg a = a_bool("descending", true);
        struct td_tensor *y = run1(TD_OP_argsort, 1, &x, 1, &a);
        expect_ints(y, 1, SHAPE(5), IDX(1, 3, 0, 2, 4));
        td_tensor_release(y);
        y = run1(TD_OP_argsort, 1, &x, 0, NULL);
        expect_ints(y, 1, SHAPE(5), IDX(4, 0, 2, 1, 3));
        td_tensor_release(y);
        td_tensor_release(x);
    }
    /* int64 beyond 2^53 must not collapse in a double: 2^62+1 > 2^62. */
    struct td_tensor *big = mk(I64, 1, SHAPE(2), VALS(0, 0));
    int64_t *bp = td_tensor_data(big);
    bp[0] = ((int64_t)1 << 62) + 1;
    bp[1] = (int64_t)1 << 62;
    struct td_tensor *y = run1(TD_OP_argsort, 1, &big, 0, NULL);
    expect_ints(y, 1, SHAPE(2), IDX(1, 0));
    td_tensor_release(y);
    td_tensor_release(big);
    /* bool: false before true, ties in order. */
    struct td_tensor *bx = mk(TD_BOOL, 1, SHAPE(4), VALS(1, 0, 1, 0));
    y = run1(TD_OP_argsort, 1, &bx, 0, NULL);
    expect_ints(y, 1, SHAPE(4), IDX(1, 3, 0, 2));
    td_tensor_release(y);
    td_tensor_release(bx);
    /* 2-d along dim 0: [[3, 1], [1, 1], [2, 0]]: column 0 -> 1 (1), 2 (2), 3 (0); column 1
     * -> 0 (2), 1 (0), 1 (1). */
    struct td_tensor *m = mk(F64, 2, SHAPE(3, 2), VALS(3, 1, 1, 1, 2, 0));
    struct td_tensor *out[2] = {NULL, NULL};
    struct td_attr_arg d0 = a_int("dim", 0);
    runn(TD_OP_sort, 1, &m, 1, &d0, 2, out);
    expect_vals(out[0], F64, 2, SHAPE(3, 2), VALS(1, 0, 2, 1, 3, 1));
    expect_ints(out[1], 2, SHAPE(3, 2), IDX(1, 2, 2, 0, 0, 1));
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(m);
    /* 0-d: itself, index 0. */
    struct td_tensor *s = mk0(F32, 4.5);
    runn(TD_OP_sort, 1, &s, 0, NULL, 2, out);
    expect_vals(out[0], F32, 0, NULL, VALS(4.5));
    expect_ints(out[1], 0, NULL, IDX(0));
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(s);
}

/* A long row with many ties on several threads (chunks sorted in parallel, then merged):
 * the result must be ordered, a permutation, hold x[idx], and keep ties in input order. */
static void check_long_stable(enum td_dtype dt, bool desc)
{
    const int64_t n = 200003;
    struct td_meta m;
    struct td_error err;
    struct td_tensor *x = NULL;
    td__meta_set(&m, dt, 1, &n);
    assert_int_equal(td_tensor_new(&m, false, NULL, &x, &err), 0);
    char *p = td_tensor_data(x);
    size_t sz = td_dtype_size(dt);
    for (int64_t k = 0; k < n; k++)
        td__store_f64(p + k * (int64_t)sz, dt, (double)((k * 7919) % 1000) - 500);
    struct td_tensor *out[2] = {NULL, NULL};
    struct td_attr_arg a = a_bool("descending", desc);
    runn(TD_OP_sort, 1, &x, 1, &a, 2, out);
    bool *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    const int64_t *idx = td_tensor_data(out[1]);
    for (int64_t k = 0; k < n; k++) {
        double v = val(out[0], k);
        assert_true(idx[k] >= 0 && idx[k] < n && !seen[idx[k]]);
        seen[idx[k]] = true;
        assert_true(v == val(x, idx[k]));
        if (k > 0) {
            double u = val(out[0], k - 1);
            if (desc ? u < v : u > v)
                fail_msg("%s: out of order at %lld", td_dtype_name(dt), (long long)k);
            if (u == v && idx[k - 1] >= idx[k])
                fail_msg("%s: tie order broken at %lld", td_dtype_name(dt), (long long)k);
        }
    }
    free(seen);
    td_tensor_release(out[0]);
    td_tensor_release(out[1]);
    td_tensor_release(x);
}

static void test_sort_long_rows_stable(void **state)
{
    (void)state;
    td_parallel_set_threads(3);
    check_long_stable(F32, false);
    check_long_stable(F64, true);
    check_long_stable(TD_INT16, true);
    check_long_stable(I64, false);
    td_parallel_set_threads(0);
}

/* ---------------------------------------------------------------------------------------
 * Radix sort (packed rows of at least 256 elements).
 */
/* A 1-d tensor of dt with n elements, element k = v[k]. */
static struct td_tensor *mk_n(enum td_dtype dt, int64_t n, const double *v)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *x = NULL;
    td__meta_set(&m, dt, 1, &n);
    assert_int_equal(td_tensor_new(&m, false, NULL, &x, &err), 0);
    size_t sz = td_dtype_size(dt);
    for (int64_t k = 0; k < n; k++)
        td__store_f64((char *)td_tensor_data(x) + k * (int64_t)sz, dt, v[k]);
    return x;
}

/* Row of 300: [3, nan, -0, 1, 0, -inf, 1, nan, 2] then 291 times 1.5 (indices 9..299).
 * Ascending: -inf (5), -0 (2), 0 (4), 1 (3), 1 (6), 1.5 (9..299), 2 (8), 3 (0), nan (1),
 * nan (7). Descending: nan (1), nan (7), 3 (0), 2 (8), 1.5 (9..299), 1 (3), 1 (6), -0 (2),
 * 0 (4), -inf (5). */
static void test_sort_radix_hand(void **state)
{
    (void)state;
    enum { N = 300 };
    double v[N];
    const double head[9] = {3, NAN, -0.0, 1, 0.0, -INFINITY, 1, NAN, 2};
    for (int k = 0; k < N; k++)
        v[k] = k < 9 ? head[k] : 1.5;
    int64_t asc[N], dsc[N];
    const int64_t asc_lo[5] = {5, 2, 4, 3, 6}, asc_hi[4] = {8, 0, 1, 7};
    const int64_t dsc_lo[4] = {1, 7, 0, 8}, dsc_hi[5] = {3, 6, 2, 4, 5};
    for (int k = 0; k < 5; k++)
        asc[k] = asc_lo[k];
    for (int k = 0; k < 291; k++) {
        asc[5 + k] = 9 + k;
        dsc[4 + k] = 9 + k;
    }
    for (int k = 0; k < 4; k++) {
        asc[296 + k] = asc_hi[k];
        dsc[k] = dsc_lo[k];
    }
    for (int k = 0; k < 5; k++)
        dsc[295 + k] = dsc_hi[k];
    enum td_dtype dts[] = {F32, TD_FLOAT16, TD_BFLOAT16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        struct td_tensor *x = mk_n(dts[d], N, v);
        for (int desc = 0; desc < 2; desc++) {
            struct td_tensor *out[2] = {NULL, NULL};
            struct td_attr_arg a = a_bool("descending", desc);
            runn(TD_OP_sort, 1, &x, 1, &a, 2, out);
            const int64_t *want = desc ? dsc : asc;
            expect_ints(out[1], 1, SHAPE(N), want);
            for (int k = 0; k < N; k++) {
                double got = val(out[0], k), w = v[want[k]];
                assert_true(isnan(w) ? isnan(got) : got == w && !signbit(got) == !signbit(w));
            }
            td_tensor_release(out[0]);
            td_tensor_release(out[1]);
        }
        td_tensor_release(x);
    }
    /* Integers with ties, most passes skipped (every key in one top digit): [2, m, 2, 0, m]
     * repeating over 260 elements, m = -1 (255 for uint8); ascending -1s (1, 4, 6, 9, ...),
     * then 0s, then 2s, each in index order; descending 2s, 0s, -1s (uint8: 0s, 2s, 255s
     * ascending). */
    enum { M = 260 };
    enum td_dtype its[] = {TD_INT8, TD_INT16, TD_INT32, TD_UINT8};
    for (size_t d = 0; d < sizeof its / sizeof its[0]; d++) {
        double m = its[d] == TD_UINT8 ? 255 : -1, iv[M];
        const double pat[5] = {2, m, 2, 0, m};
        for (int k = 0; k < M; k++)
            iv[k] = pat[k % 5];
        for (int desc = 0; desc < 2; desc++) {
            const double order[4][3] = {{-1, 0, 2}, {2, 0, -1}, {0, 2, 255}, {255, 2, 0}};
            const double *ord = order[(m > 0 ? 2 : 0) + desc];
            int64_t want[M];
            int w = 0;
            for (int g = 0; g < 3; g++)
                for (int k = 0; k < M; k++)
                    if (iv[k] == ord[g])
                        want[w++] = k;
            assert_int_equal(w, M);
            struct td_tensor *x = mk_n(its[d], M, iv);
            struct td_attr_arg a = a_bool("descending", desc);
            struct td_tensor *y = run1(TD_OP_argsort, 1, &x, 1, &a);
            expect_ints(y, 1, SHAPE(M), want);
            td_tensor_release(y);
            td_tensor_release(x);
        }
    }
    /* Every key equal (all passes skipped): the identity permutation. */
    double same[N];
    int64_t ident[N];
    for (int k = 0; k < N; k++) {
        same[k] = -7;
        ident[k] = k;
    }
    struct td_tensor *x = mk_n(TD_INT32, N, same);
    struct td_attr_arg a = a_bool("descending", true);
    struct td_tensor *y = run1(TD_OP_argsort, 1, &x, 1, &a);
    expect_ints(y, 1, SHAPE(N), ident);
    td_tensor_release(y);
    td_tensor_release(x);
}

/* The radix path (float32, int32) against the merge sort of (64-bit key, index) pairs
 * (the same values in float64, int64): equal values and orders give equal argsorts. The
 * data mixes NaN, infinities, both zeros, subnormals, many ties and wide exponents. */
static void radix_vs_merge(int64_t n, int ndim)
{
    double *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    uint64_t s = 88172645463325252ull;
    for (int64_t k = 0; k < n; k++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        uint32_t r = (uint32_t)(s >> 32);
        switch (r % 8) {
        case 0: {
            const double sp[6] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 0x1p-140};
            v[k] = sp[(r >> 8) % 6];
            break;
        }
        case 1:
            v[k] = (double)((int)(r >> 8) % 5) - 2;   /* ties */
            break;
        default: {
            float f;
            uint32_t bits = (uint32_t)(s & 0xffffffffu);
            memcpy(&f, &bits, sizeof f);
            v[k] = isnan(f) ? 1.25 : f;
            break;
        }
        }
    }
    struct td_tensor *x32 = mk_n(F32, n, v), *x64 = mk_n(F64, n, v);
    for (int64_t k = 0; k < n; k++)
        v[k] = isnan(v[k]) || isinf(v[k]) ? 3 : fmax(fmin(v[k], 2e9), -2e9);
    struct td_tensor *i32 = mk_n(TD_INT32, n, v), *i64 = mk_n(I64, n, v);
    free(v);
    struct td_tensor *pairs[2][2] = {{x32, x64}, {i32, i64}};
    for (int p = 0; p < 2; p++) {
        struct td_tensor *a = pairs[p][0], *b = pairs[p][1];
        if (ndim == 2) {   /* sort along dim 0 of [n/4, 4]: strided rows */
            struct td_tensor *ra = NULL, *rb = NULL;
            struct td_attr_arg sh = a_ints("shape", 2, SHAPE(n / 4, 4));
            ra = run1(TD_OP_reshape, 1, &a, 1, &sh);
            rb = run1(TD_OP_reshape, 1, &b, 1, &sh);
            a = ra;
            b = rb;
        }
        for (int desc = 0; desc < 2; desc++) {
            struct td_attr_arg at[2] = {a_bool("descending", desc), a_int("dim", 0)};
            struct td_tensor *ya = run1(TD_OP_argsort, 1, &a, 2, at);
            struct td_tensor *yb = run1(TD_OP_argsort, 1, &b, 2, at);
            const int64_t *pa = td_tensor_data(ya), *pb = td_tensor_data(yb);
            for (int64_t k = 0; k < td_tensor_numel(ya); k++)
                if (pa[k] != pb[k])
                    fail_msg("%s n=%lld desc=%d: index %lld: radix %lld, merge %lld",
                             td_dtype_name(a->dtype), (long long)n, desc, (long long)k,
                             (long long)pa[k], (long long)pb[k]);
            td_tensor_release(ya);
            td_tensor_release(yb);
        }
        if (ndim == 2) {
            td_tensor_release(a);
            td_tensor_release(b);
        }
    }
    td_tensor_release(x32);
    td_tensor_release(x64);
    td_tensor_release(i32);
    td_tensor_release(i64);
}

static void test_sort_radix_vs_merge(void **state)
{
    (void)state;
    const int threads[2] = {1, 3};
    for (int t = 0; t < 2; t++) {
        td_parallel_set_threads(threads[t]);
        radix_vs_merge(256, 1);
        radix_vs_merge(5000, 1);
        radix_vs_merge(4 * 1200, 2);
        radix_vs_merge(250007, 1);   /* several chunks with 3 threads */
    }
    td_parallel_set_threads(0);
}

static void test_searchsorted(void **state)
{
    (void)state;
    struct td_tensor *s = mk(F64, 1, SHAPE(5), VALS(1, 2, 2, 3, NAN));
    struct td_tensor *v = mk(F32, 1, SHAPE(6), VALS(2, 0, 5, NAN, 2.5, -0.0));
    struct td_tensor *in[2] = {s, v};
    struct td_tensor *y = run1(TD_OP_searchsorted, 2, in, 0, NULL);
    expect_ints(y, 1, SHAPE(6), IDX(1, 0, 4, 4, 3, 0));
    td_tensor_release(y);
    struct td_attr_arg r = a_bool("right", true);
    y = run1(TD_OP_searchsorted, 2, in, 1, &r);
    expect_ints(y, 1, SHAPE(6), IDX(3, 0, 4, 5, 3, 0));
    td_tensor_release(y);
    td_tensor_release(v);
    td_tensor_release(s);
    /* One sequence per row: [[1, 3], [2, 4]] with [[3, 0], [4, 5]]. */
    s = mk(I64, 2, SHAPE(2, 2), VALS(1, 3, 2, 4));
    v = mk(I64, 2, SHAPE(2, 2), VALS(3, 0, 4, 5));
    struct td_tensor *in2[2] = {s, v};
    y = run1(TD_OP_searchsorted, 2, in2, 0, NULL);
    expect_ints(y, 2, SHAPE(2, 2), IDX(1, 0, 1, 2));
    td_tensor_release(y);
    td_tensor_release(v);
    /* Leading dims must match. */
    v = mk(I64, 2, SHAPE(3, 2), VALS(0, 0, 0, 0, 0, 0));
    in2[1] = v;
    run_fail(TD_OP_searchsorted, 2, in2, 0, NULL, 1, TD_EINVAL, "searchsorted");
    td_tensor_release(v);
    td_tensor_release(s);
}

static void test_count_nonzero_nonzero(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 3), VALS(0, 1, NAN, 0, 0, -0.0));
    struct td_tensor *y = run1(TD_OP_count_nonzero, 1, &x, 0, NULL);
    expect_ints(y, 0, NULL, IDX(2));
    td_tensor_release(y);
    struct td_attr_arg d0[2] = {a_ints("dim", 1, SHAPE(0)), a_bool("keepdim", true)};
    y = run1(TD_OP_count_nonzero, 1, &x, 2, d0);
    expect_ints(y, 2, SHAPE(1, 3), IDX(0, 1, 1));
    td_tensor_release(y);
    struct td_attr_arg d1 = a_ints("dim", 1, SHAPE(-1));
    y = run1(TD_OP_count_nonzero, 1, &x, 1, &d1);
    expect_ints(y, 1, SHAPE(2), IDX(2, 0));
    td_tensor_release(y);
    struct td_attr_arg dd = a_ints("dim", 2, SHAPE(1, -1));
    run_fail(TD_OP_count_nonzero, 1, &x, 1, &dd, 1, TD_EINVAL, "count_nonzero");

    struct td_attr_arg c2 = a_int("count", 2);
    y = run1(TD_OP_nonzero, 1, &x, 1, &c2);
    expect_ints(y, 2, SHAPE(2, 2), IDX(0, 1, 0, 2));
    td_tensor_release(y);
    struct td_attr_arg c3 = a_int("count", 3);
    run_fail(TD_OP_nonzero, 1, &x, 1, &c3, 1, TD_EINVAL, "nonzero: count attribute 3");
    struct td_attr_arg cneg = a_int("count", -1);
    run_fail(TD_OP_nonzero, 1, &x, 1, &cneg, 1, TD_EINVAL, "nonzero");
    td_tensor_release(x);

    /* Complex: nonzero when either part is. */
    struct td_tensor *z = mk(TD_COMPLEX128, 1, SHAPE(3), VALS(0, 0, 0));
    double *zp = td_tensor_data(z);
    zp[3] = 1.0;   /* element 1 = 0 + 1i */
    zp[4] = 2.0;   /* element 2 = 2 + 0i */
    y = run1(TD_OP_count_nonzero, 1, &z, 0, NULL);
    expect_ints(y, 0, NULL, IDX(2));
    td_tensor_release(y);
    y = run1(TD_OP_nonzero, 1, &z, 1, &c2);
    expect_ints(y, 2, SHAPE(2, 1), IDX(1, 2));
    td_tensor_release(y);
    td_tensor_release(z);
}

static void test_unique(void **state)
{
    (void)state;
    /* [2, nan, -0, 2, 0, nan, 1]: groups {-0 (2), 0 (4)}, {1 (6)}, {2 (0), 2 (3)}, nan (1),
     * nan (5). */
    enum td_dtype dts[] = {F64, F32, TD_BFLOAT16};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        struct td_tensor *x = mk(dts[k], 2, SHAPE(1, 7), VALS(2, NAN, -0.0, 2, 0.0, NAN, 1));
        struct td_tensor *n = run1(TD_OP_unique_count, 1, &x, 0, NULL);
        expect_ints(n, 0, NULL, IDX(5));
        td_tensor_release(n);
        struct td_attr_arg c = a_int("count", 5);
        struct td_tensor *out[4] = {NULL};
        runn(TD_OP_unique, 1, &x, 1, &c, 4, out);
        expect_vals(out[0], dts[k], 1, SHAPE(5), VALS(0, 1, 2, NAN, NAN));
        assert_true(signbit(val(out[0], 0)));   /* the first occurrence, -0.0 */
        expect_ints(out[1], 1, SHAPE(5), IDX(2, 6, 0, 1, 5));
        expect_ints(out[2], 2, SHAPE(1, 7), IDX(2, 3, 0, 2, 0, 4, 1));
        expect_ints(out[3], 1, SHAPE(5), IDX(2, 1, 2, 1, 1));
        for (int i = 0; i < 4; i++)
            td_tensor_release(out[i]);
        struct td_attr_arg c4 = a_int("count", 4);
        run_fail(TD_OP_unique, 1, &x, 1, &c4, 4, TD_EINVAL, "unique: count attribute 4");
        td_tensor_release(x);
    }
    /* Integers: [3, -1, 3, 3] -> values [-1, 3], indices [1, 0], counts [1, 3]. */
    struct td_tensor *xi = mk(TD_INT32, 1, SHAPE(4), VALS(3, -1, 3, 3));
    struct td_attr_arg c = a_int("count", 2);
    struct td_tensor *out[4] = {NULL};
    runn(TD_OP_unique, 1, &xi, 1, &c, 4, out);
    expect_vals(out[0], TD_INT32, 1, SHAPE(2), VALS(-1, 3));
    expect_ints(out[1], 1, SHAPE(2), IDX(1, 0));
    expect_ints(out[2], 1, SHAPE(4), IDX(1, 0, 1, 1));
    expect_ints(out[3], 1, SHAPE(2), IDX(1, 3));
    for (int i = 0; i < 4; i++)
        td_tensor_release(out[i]);
    td_tensor_release(xi);
}

/* Bits of element 0 of a 16-bit tensor. */
static uint16_t bits16(const struct td_tensor *t)
{
    return *(const uint16_t *)td_tensor_data(t);
}

static struct td_tensor *bin(enum td_op op, enum td_dtype dt, double a, double b)
{
    struct td_tensor *in[2] = {mk0(dt, a), mk0(dt, b)};
    struct td_tensor *y = run1(op, 2, in, 0, NULL);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);
    return y;
}

static void test_nextafter_bits(void **state)
{
    (void)state;
    struct td_tensor *y = bin(TD_OP_nextafter, F32, 1, 2);
    assert_true(*(float *)td_tensor_data(y) == 1.0f + 0x1p-23f);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, F32, 0, -1);
    assert_true(*(float *)td_tensor_data(y) == -0x1p-149f);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, F64, 1, 0);
    assert_true(*(double *)td_tensor_data(y) == 1.0 - 0x1p-53);
    td_tensor_release(y);
    /* float16: 1 = 0x3c00, next up 0x3c01; 0 toward 1 is the smallest subnormal 0x0001;
     * the largest finite 65504 (0x7bff) toward inf is inf (0x7c00); -1 (0xbc00) toward 0 is
     * 0xbbff. */
    y = bin(TD_OP_nextafter, TD_FLOAT16, 1, 2);
    assert_int_equal(bits16(y), 0x3c01);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_FLOAT16, 0, 1);
    assert_int_equal(bits16(y), 0x0001);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_FLOAT16, 65504, INFINITY);
    assert_int_equal(bits16(y), 0x7c00);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_FLOAT16, -1, 0);
    assert_int_equal(bits16(y), 0xbbff);
    td_tensor_release(y);
    /* bfloat16: 1 = 0x3f80; up 0x3f81 (1 + 2^-7), down 0x3f7f (1 - 2^-8); equal gives b. */
    y = bin(TD_OP_nextafter, TD_BFLOAT16, 1, 2);
    assert_int_equal(bits16(y), 0x3f81);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_BFLOAT16, 1, 0);
    assert_int_equal(bits16(y), 0x3f7f);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_BFLOAT16, 0, -0.0);
    assert_int_equal(bits16(y), 0x8000);
    td_tensor_release(y);
    y = bin(TD_OP_nextafter, TD_BFLOAT16, NAN, 1);
    assert_true(isnan(val(y, 0)));
    td_tensor_release(y);
}

static void test_binary_values(void **state)
{
    (void)state;
    struct {
        enum td_op op;
        double a, b, want;
    } cases[] = {
        {TD_OP_logaddexp, INFINITY, INFINITY, INFINITY},
        {TD_OP_logaddexp, -INFINITY, -INFINITY, -INFINITY},
        {TD_OP_logaddexp, INFINITY, -INFINITY, INFINITY},
        {TD_OP_logaddexp, 0, 0, 0.69314718055994530942},
        {TD_OP_logaddexp, 1000, 1000, 1000.69314718055994530942},
        {TD_OP_logaddexp, -1000, 0, 0},
        {TD_OP_logaddexp, NAN, 1, NAN},
        {TD_OP_hypot, 3, 4, 5},
        {TD_OP_hypot, 1e300, 1e300, 1.4142135623730951e300},
        {TD_OP_hypot, NAN, INFINITY, INFINITY},
        {TD_OP_copysign, 2, -0.0, -2},
        {TD_OP_copysign, -3, 1, 3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct td_tensor *y = bin(cases[k].op, F64, cases[k].a, cases[k].b);
        expect_vals_tol(y, F64, 0, NULL, &cases[k].want, 1e-15);
        td_tensor_release(y);
    }
    /* Integer inputs compute in float32. */
    struct td_tensor *in[2] = {mk0(TD_INT32, 3), mk0(TD_INT32, 4)};
    struct td_tensor *y = run1(TD_OP_hypot, 2, in, 0, NULL);
    expect_vals(y, F32, 0, NULL, VALS(5));
    td_tensor_release(y);
    td_tensor_release(in[0]);
    td_tensor_release(in[1]);
    /* signbit: -0.0 and -nan set, ints negative, bool never. */
    struct td_tensor *x = mk(F64, 1, SHAPE(4), VALS(-0.0, 0.0, -NAN, 1));
    y = run1(TD_OP_signbit, 1, &x, 0, NULL);
    expect_vals(y, TD_BOOL, 1, SHAPE(4), VALS(1, 0, 1, 0));
    td_tensor_release(y);
    td_tensor_release(x);
    x = mk(TD_INT8, 1, SHAPE(3), VALS(-1, 0, 5));
    y = run1(TD_OP_signbit, 1, &x, 0, NULL);
    expect_vals(y, TD_BOOL, 1, SHAPE(3), VALS(1, 0, 0));
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    struct td_tensor *z = mk(TD_COMPLEX64, 1, SHAPE(2), VALS(1, 2));
    run_fail(TD_OP_sort, 1, &z, 0, NULL, 2, TD_EINVAL, "sort: dtype complex64 not supported");
    run_fail(TD_OP_unique_count, 1, &z, 0, NULL, 1, TD_EINVAL, "unique_count");
    td_tensor_release(z);
    struct td_tensor *x = mk(F32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    struct td_attr_arg d = a_int("dim", 2);
    run_fail(TD_OP_sort, 1, &x, 1, &d, 2, TD_EINVAL, "sort: dim 2");
    run_fail(TD_OP_argsort, 1, &x, 1, &d, 1, TD_EINVAL, "argsort");
    struct td_tensor *s0 = mk0(F32, 1);
    struct td_tensor *in[2] = {s0, x};
    run_fail(TD_OP_searchsorted, 2, in, 0, NULL, 1, TD_EINVAL, "searchsorted");
    td_tensor_release(s0);
    struct td_tensor *i32 = mk(TD_INT32, 1, SHAPE(2), VALS(1, 2));
    struct td_tensor *in2[2] = {i32, i32};
    run_fail(TD_OP_nextafter, 2, in2, 0, NULL, 1, TD_EINVAL, "nextafter");
    td_tensor_release(i32);
    td_tensor_release(x);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct td_tensor *x = mk(F64, 2, SHAPE(2, 3), VALS(3, 1, NAN, 1, 0, 2));
    struct td_tensor *f = mk(F32, 1, SHAPE(3), VALS(3, 1, 2));
    fault_loop(TD_OP_sort, 1, &x, 0, NULL, 2);
    fault_loop(TD_OP_sort, 1, &f, 0, NULL, 2);
    fault_loop(TD_OP_argsort, 1, &x, 0, NULL, 1);
    fault_loop(TD_OP_unique_count, 1, &x, 0, NULL, 1);
    struct td_attr_arg c = a_int("count", 5);
    fault_loop(TD_OP_unique, 1, &x, 1, &c, 4);
    fault_loop(TD_OP_nonzero, 1, &x, 1, &c, 1);   /* 5 nonzeros: NaN counts, 0 does not */
    fault_loop(TD_OP_count_nonzero, 1, &x, 0, NULL, 1);
    struct td_tensor *in[2] = {f, x};
    fault_loop(TD_OP_searchsorted, 2, in, 0, NULL, 1);
    struct td_tensor *in2[2] = {x, f};
    fault_loop(TD_OP_logaddexp, 2, in2, 0, NULL, 1);
    fault_loop(TD_OP_signbit, 1, &x, 0, NULL, 1);
    td_tensor_release(f);
    td_tensor_release(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sort_nan_order_and_ties, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_sort_ints_dims, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_sort_long_rows_stable, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_sort_radix_hand, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_sort_radix_vs_merge, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_searchsorted, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_count_nonzero_nonzero, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_unique, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_nextafter_bits, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_binary_values, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_errors, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, leak_setup, leak_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    td_parallel_shutdown();
    return rc;
}
