/*
 * test_core.c - engine core: statuses, dtype promotion (against PyTorch's documented
 * behaviour), half-precision conversions, allocator accounting and fault injection, tensors
 * and views, the iterator (broadcast, coalescing, negative strides) and Philox.
 * Every test checks in its teardown that the allocator's live block count is back where it
 * started.
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
#include "leakcheck.h"

/* A new contiguous tensor of dtype dt holding vals (converted from double). */
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

/* Element i (C order over the tensor's shape, any strides) as double. */
static double at(const struct td_tensor *t, int64_t i)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t idx = i % t->shape[d];
        i /= t->shape[d];
        off += idx * t->strides[d];
    }
    return td__load_f64((char *)t->storage->data + off * (int64_t)td_dtype_size(t->dtype),
                        t->dtype);
}

static struct td_meta meta_of(enum td_dtype dt, int ndim, bool wrapped)
{
    struct td_meta m;
    int64_t shape[2] = {3, 2};
    td__meta_set(&m, dt, ndim, shape);
    m.wrapped_number = wrapped;
    return m;
}

/* ---------------------------------------------------------------------------------------
 * Statuses.
 */
static void test_status_text(void **state)
{
    (void)state;
    assert_string_equal(td_strerror(TD_OK), "ok");
    assert_string_equal(td_strerror(TD_EINVAL), "invalid argument");
    assert_string_equal(td_strerror(TD_ENOMEM), "out of memory");
    assert_string_equal(td_strerror(-999), "unknown status");
    assert_int_equal(td_status_grpc_code(TD_EINVAL), 3);
    assert_int_equal(td_status_grpc_code(TD_ENOTFOUND), 5);
    assert_int_equal(td_status_grpc_code(TD_ENOMEM), 8);
    assert_int_equal(td_status_grpc_code(TD_EINTERNAL), 13);
    assert_int_equal(td_status_grpc_code(TD_EAUTH), 16);
    struct td_error err;
    assert_int_equal(td_error_set(&err, TD_EINVAL, "matmul: inner dims %d != %d", 3, 4),
                     TD_EINVAL);
    assert_int_equal(err.status, TD_EINVAL);
    assert_string_equal(err.msg, "matmul: inner dims 3 != 4");
    td_error_clear(&err);
    assert_int_equal(err.status, 0);
    assert_string_equal(err.msg, "");
}

static void test_dtype_info(void **state)
{
    (void)state;
    assert_string_equal(td_dtype_name(TD_BFLOAT16), "bfloat16");
    assert_string_equal(td_dtype_name((enum td_dtype)99), "?");
    assert_int_equal(td_dtype_size(TD_COMPLEX128), 16);
    assert_int_equal(td_dtype_size(TD_BOOL), 1);
    assert_true(td_dtype_valid(11));
    assert_false(td_dtype_valid(12));
    assert_false(td_dtype_valid(-1));
    assert_true(td_dtype_is_integral(TD_BOOL, true));
    assert_false(td_dtype_is_integral(TD_BOOL, false));
    assert_true(td_dtype_is_floating(TD_FLOAT16));
    assert_false(td_dtype_is_floating(TD_COMPLEX64));
    assert_int_equal(td_dtype_to_real(TD_COMPLEX128), TD_FLOAT64);
    assert_int_equal(td_dtype_to_complex(TD_FLOAT32), TD_COMPLEX64);
    assert_int_equal(td_dtype_to_complex(TD_FLOAT64), TD_COMPLEX128);
}

/* torch.promote_types results, written out by hand. */
static void test_promote_types(void **state)
{
    (void)state;
    static const struct {
        enum td_dtype a, b, r;
    } cases[] = {
        {TD_BOOL, TD_BOOL, TD_BOOL},          {TD_BOOL, TD_UINT8, TD_UINT8},
        {TD_UINT8, TD_INT8, TD_INT16},        {TD_INT8, TD_UINT8, TD_INT16},
        {TD_UINT8, TD_INT16, TD_INT16},       {TD_UINT8, TD_INT64, TD_INT64},
        {TD_INT8, TD_INT32, TD_INT32},        {TD_INT16, TD_INT8, TD_INT16},
        {TD_INT32, TD_FLOAT16, TD_FLOAT16},   {TD_INT64, TD_BFLOAT16, TD_BFLOAT16},
        {TD_FLOAT16, TD_BFLOAT16, TD_FLOAT32}, {TD_BFLOAT16, TD_FLOAT16, TD_FLOAT32},
        {TD_FLOAT16, TD_FLOAT32, TD_FLOAT32}, {TD_FLOAT32, TD_FLOAT64, TD_FLOAT64},
        {TD_INT64, TD_FLOAT32, TD_FLOAT32},   {TD_BOOL, TD_FLOAT16, TD_FLOAT16},
        {TD_COMPLEX64, TD_FLOAT64, TD_COMPLEX128}, {TD_FLOAT64, TD_COMPLEX64, TD_COMPLEX128},
        {TD_COMPLEX64, TD_FLOAT32, TD_COMPLEX64},  {TD_COMPLEX64, TD_INT64, TD_COMPLEX64},
        {TD_COMPLEX64, TD_COMPLEX128, TD_COMPLEX128}, {TD_BOOL, TD_COMPLEX64, TD_COMPLEX64},
        {TD_FLOAT16, TD_COMPLEX64, TD_COMPLEX64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum td_dtype r = td_promote_types(cases[i].a, cases[i].b);
        if (r != cases[i].r)
            fail_msg("promote(%s, %s) = %s, want %s", td_dtype_name(cases[i].a),
                     td_dtype_name(cases[i].b), td_dtype_name(r), td_dtype_name(cases[i].r));
    }
}

/* torch.result_type over tensors (ndim 1), 0-d tensors (ndim 0) and wrapped numbers. */
static void test_result_type(void **state)
{
    (void)state;
    static const struct {
        enum td_dtype a;
        int a_nd;
        bool a_w;
        enum td_dtype b;
        int b_nd;
        bool b_w;
        enum td_dtype r;
    } cases[] = {
        /* int32 tensor + 0-d float64 tensor -> float64 (higher category) */
        {TD_INT32, 1, false, TD_FLOAT64, 0, false, TD_FLOAT64},
        /* int32 tensor + 2.5 -> float32 (default dtype) */
        {TD_INT32, 1, false, TD_FLOAT64, 0, true, TD_FLOAT32},
        {TD_UINT8, 1, false, TD_INT8, 1, false, TD_INT16},
        {TD_FLOAT16, 1, false, TD_BFLOAT16, 1, false, TD_FLOAT32},
        {TD_BOOL, 1, false, TD_BOOL, 1, false, TD_BOOL},
        /* float32 + 1j -> complex64; float64 + 1j -> complex128 */
        {TD_FLOAT32, 1, false, TD_COMPLEX128, 0, true, TD_COMPLEX64},
        {TD_FLOAT64, 1, false, TD_COMPLEX64, 0, true, TD_COMPLEX128},
        /* int64[3] + float16 0-d -> float16 */
        {TD_INT64, 1, false, TD_FLOAT16, 0, false, TD_FLOAT16},
        /* uint8 tensor + 5 -> uint8 */
        {TD_UINT8, 1, false, TD_INT64, 0, true, TD_UINT8},
        /* int32 tensor + 0-d int64 -> int32 (same category, lower tier ignored) */
        {TD_INT32, 1, false, TD_INT64, 0, false, TD_INT32},
        /* float16 tensor + 0-d float64 -> float16 */
        {TD_FLOAT16, 1, false, TD_FLOAT64, 0, false, TD_FLOAT16},
        /* bool tensor + 3 -> int64; bool tensor + 1.5 -> float32 */
        {TD_BOOL, 1, false, TD_INT64, 0, true, TD_INT64},
        {TD_BOOL, 1, false, TD_FLOAT64, 0, true, TD_FLOAT32},
        /* 0-d int64 + 2.5 -> float32; 0-d int32 + 0-d int64 -> int64 */
        {TD_INT64, 0, false, TD_FLOAT64, 0, true, TD_FLOAT32},
        {TD_INT32, 0, false, TD_INT64, 0, false, TD_INT64},
        /* 0-d float64 + 2.5 -> float64 */
        {TD_FLOAT64, 0, false, TD_FLOAT32, 0, true, TD_FLOAT64},
        /* int tensor + 1j -> complex64 */
        {TD_INT64, 1, false, TD_COMPLEX64, 0, true, TD_COMPLEX64},
        /* 0-d complex128 tensor with a float32 tensor -> complex64 */
        {TD_FLOAT32, 1, false, TD_COMPLEX128, 0, false, TD_COMPLEX64},
        /* two wrapped numbers: 2 + 2.5 -> float32 */
        {TD_INT64, 0, true, TD_FLOAT64, 0, true, TD_FLOAT32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct td_meta a = meta_of(cases[i].a, cases[i].a_nd, cases[i].a_w);
        struct td_meta b = meta_of(cases[i].b, cases[i].b_nd, cases[i].b_w);
        const struct td_meta *ms[2] = {&a, &b};
        enum td_dtype r = td_result_type(2, ms);
        if (r != cases[i].r)
            fail_msg("case %zu: result_type = %s, want %s", i, td_dtype_name(r),
                     td_dtype_name(cases[i].r));
        const struct td_meta *rev[2] = {&b, &a};
        assert_int_equal(td_result_type(2, rev), cases[i].r);
    }
}

/* ---------------------------------------------------------------------------------------
 * Half precision.
 */
static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_f16(void **state)
{
    (void)state;
    assert_int_equal(td_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(td_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(td_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(td_f32_to_f16(65519.0f), 0x7bff);  /* below the rounding midpoint */
    assert_int_equal(td_f32_to_f16(65520.0f), 0x7c00);  /* midpoint rounds to inf */
    assert_int_equal(td_f32_to_f16(1e9f), 0x7c00);
    assert_int_equal(td_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(td_f32_to_f16(0x1p-24f), 0x0001);  /* smallest subnormal */
    assert_int_equal(td_f32_to_f16(0x1p-25f), 0x0000);  /* tie rounds to even 0 */
    assert_int_equal(td_f32_to_f16(0x3p-25f), 0x0002);  /* 1.5 ulp ties to even 2 */
    assert_int_equal(td_f32_to_f16(0x1p-14f), 0x0400);  /* smallest normal */
    assert_int_equal(td_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    assert_int_equal(td_f32_to_f16(1.0f + 0x3p-11f), 0x3c02); /* tie to even, upward */
    assert_int_equal(td_f32_to_f16(-0.0f), 0x8000);
    uint16_t qn = td_f32_to_f16(NAN);
    assert_true((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff) != 0);
    assert_true(isnan(td_f16_to_f32(0x7e00)));
    assert_true(td_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(td_f16_to_f32(0x3555) == f32_of_bits(0x3eaaa000)); /* 0.333251953125 */
    /* Every non-NaN half round-trips exactly through float32. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        uint16_t back = td_f32_to_f16(td_f16_to_f32((uint16_t)h));
        if (back != h)
            fail_msg("f16 0x%04x -> %g -> 0x%04x", h, (double)td_f16_to_f32((uint16_t)h), back);
    }
}

static void test_bf16(void **state)
{
    (void)state;
    assert_int_equal(td_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(td_f32_to_bf16(-3.0f), 0xc040);
    assert_int_equal(td_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  /* tie to even */
    assert_int_equal(td_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);  /* tie to even, upward */
    assert_int_equal(td_f32_to_bf16(1.0f + 0x1p-7f + 0x1p-20f), 0x3f81);
    assert_true(isnan(td_bf16_to_f32(td_f32_to_bf16(NAN))));
    assert_true(td_bf16_to_f32(0x4049) == 3.140625f);
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
            continue;
        uint16_t back = td_f32_to_bf16(td_bf16_to_f32((uint16_t)h));
        if (back != h)
            fail_msg("bf16 0x%04x round trip gave 0x%04x", h, back);
    }
}

/* ---------------------------------------------------------------------------------------
 * Allocator and arithmetic.
 */
static void test_checked_arith(void **state)
{
    (void)state;
    size_t s = 7;
    assert_true(td_mul_size(3, 4, &s) && s == 12);
    assert_false(td_mul_size(SIZE_MAX / 2 + 1, 2, &s));
    assert_int_equal(s, 12);
    assert_false(td_add_size(SIZE_MAX, 1, &s));
    int64_t i = 0;
    assert_true(td_mul_i64(-4, 5, &i) && i == -20);
    assert_false(td_mul_i64(INT64_MAX / 2 + 1, 2, &i));
}

static void test_alloc_counts(void **state)
{
    (void)state;
    uint64_t blocks = td_alloc_live_blocks(), bytes = td_alloc_live_bytes();
    char *p = td_malloc(100);
    assert_non_null(p);
    assert_int_equal(td_alloc_live_blocks(), blocks + 1);
    assert_int_equal(td_alloc_live_bytes(), bytes + 100);
    p = td_realloc(p, 300);
    assert_non_null(p);
    assert_int_equal(td_alloc_live_bytes(), bytes + 300);
    char *q = td_strdup("tensor");
    assert_string_equal(q, "tensor");
    td_free(q);
    td_free(p);
    assert_int_equal(td_alloc_live_bytes(), bytes);
    /* The 2nd allocation from now fails, only that one. */
    td_alloc_fail_after(2);
    void *a = td_malloc(8), *b = td_malloc(8), *c = td_malloc(8);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    td_free(a);
    td_free(c);
    assert_null(td_calloc(SIZE_MAX / 2, 4));
}

static void test_account_limit(void **state)
{
    (void)state;
    struct td_account acct = {0};
    acct.limit = 100;
    struct td_storage *s = NULL;
    struct td_error err;
    assert_int_equal(td_storage_new(64, true, &acct, &s, &err), 0);
    assert_int_equal(acct.bytes, 64);
    struct td_storage *s2 = NULL;
    assert_int_equal(td_storage_new(64, false, &acct, &s2, &err), TD_ENOMEM);
    assert_null(s2);
    assert_int_equal(acct.bytes, 64);
    assert_int_equal(((uintptr_t)s->data) % 64, 0);
    assert_int_equal(((unsigned char *)s->data)[63], 0);
    td_storage_retain(s);
    td_storage_release(s);
    assert_int_equal(acct.bytes, 64);
    td_storage_release(s);
    assert_int_equal(acct.bytes, 0);
    assert_int_equal(acct.peak, 64);
}

/* ---------------------------------------------------------------------------------------
 * Tensors, views, copies.
 */
static void test_shape_check(void **state)
{
    (void)state;
    struct td_error err;
    int64_t n = -1;
    int64_t ok[3] = {2, 0, 5};
    assert_int_equal(td_shape_check(ok, 3, TD_FLOAT32, "t", &n, &err), 0);
    assert_int_equal(n, 0);
    int64_t neg[2] = {2, -1};
    assert_int_equal(td_shape_check(neg, 2, TD_FLOAT32, "zeros", NULL, &err), TD_EINVAL);
    assert_non_null(strstr(err.msg, "zeros: negative dimension -1"));
    int64_t big[2] = {1LL << 40, 1LL << 40};
    assert_int_equal(td_shape_check(big, 2, TD_FLOAT32, "t", NULL, &err), TD_EINVAL);
    /* A zero dim must not hide an overflowing product. */
    int64_t big0[3] = {1LL << 40, 0, 1LL << 40};
    assert_int_equal(td_shape_check(big0, 3, TD_FLOAT32, "t", NULL, &err), TD_EINVAL);
    int64_t many[17] = {0};
    assert_int_equal(td_shape_check(many, 17, TD_FLOAT32, "t", NULL, &err), TD_EINVAL);
    assert_int_equal(td_shape_check(ok, 3, (enum td_dtype)40, "t", NULL, &err), TD_EINVAL);
}

static void test_views_and_contiguous(void **state)
{
    (void)state;
    struct td_error err;
    int64_t shape[2] = {2, 3};
    struct td_tensor *t = mk(TD_FLOAT32, 2, shape, NULL); /* [[0,1,2],[3,4,5]] */
    assert_true(td_tensor_is_contiguous(t));
    assert_int_equal(td_tensor_nbytes(t), 24);

    /* Transposed view: shape [3,2], strides [1,3]. */
    int64_t tshape[2] = {3, 2}, tstrides[2] = {1, 3};
    struct td_tensor *v = NULL;
    assert_int_equal(td_tensor_new_view(t, 2, tshape, tstrides, 0, &v, &err), 0);
    assert_ptr_equal(v->storage, t->storage);
    assert_false(td_tensor_is_contiguous(v));
    struct td_tensor *c = NULL;
    assert_int_equal(td_tensor_contiguous(v, NULL, &c, &err), 0);
    assert_ptr_not_equal(c, v);
    assert_true(td_tensor_is_contiguous(c));
    static const double want[6] = {0, 3, 1, 4, 2, 5};
    const float *cd = td_tensor_data(c);
    for (int i = 0; i < 6; i++)
        assert_true(cd[i] == (float)want[i]);
    struct td_tensor *same = NULL;
    assert_int_equal(td_tensor_contiguous(t, NULL, &same, &err), 0);
    assert_ptr_equal(same, t);
    td_tensor_release(same);

    /* Size-1 dims with odd strides are still contiguous. */
    int64_t s1[3] = {1, 2, 3}, st1[3] = {99, 3, 1};
    struct td_tensor *v1 = NULL;
    assert_int_equal(td_tensor_new_view(t, 3, s1, st1, 0, &v1, &err), 0);
    assert_true(td_tensor_is_contiguous(v1));

    /* A view with an offset reads the right element: row 1. */
    int64_t rshape[1] = {3}, rstr[1] = {1};
    struct td_tensor *row = NULL;
    assert_int_equal(td_tensor_new_view(t, 1, rshape, rstr, 3, &row, &err), 0);
    assert_true(((float *)td_tensor_data(row))[0] == 3.0f);

    /* The storage outlives the base tensor while a view holds it. */
    td_tensor_release(t);
    assert_true(at(row, 2) == 5.0);
    td_tensor_release(row);
    td_tensor_release(v1);
    td_tensor_release(v);
    td_tensor_release(c);
}

static void test_copy_conversions(void **state)
{
    (void)state;
    struct td_error err;
    int64_t shape[1] = {6};
    static const double src_vals[6] = {2.7, -2.7, 0.0, 255.0, 1e30, NAN};
    struct td_tensor *src = mk(TD_FLOAT64, 1, shape, src_vals);
    struct td_meta m;
    td__meta_set(&m, TD_INT32, 1, shape);
    struct td_tensor *dst = NULL;
    assert_int_equal(td_tensor_new(&m, false, NULL, &dst, &err), 0);
    assert_int_equal(td_tensor_copy(dst, src, &err), 0);
    const int32_t *d = td_tensor_data(dst);
    assert_int_equal(d[0], 2);
    assert_int_equal(d[1], -2);
    assert_int_equal(d[2], 0);
    assert_int_equal(d[3], 255);
    assert_int_equal(d[4], INT32_MIN); /* out of range, like x86 and NumPy */
    assert_int_equal(d[5], INT32_MIN); /* NaN */
    td_tensor_release(dst);

    td__meta_set(&m, TD_BOOL, 1, shape);
    assert_int_equal(td_tensor_new(&m, false, NULL, &dst, &err), 0);
    assert_int_equal(td_tensor_copy(dst, src, &err), 0);
    const uint8_t *b = td_tensor_data(dst);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[2], 0);
    assert_int_equal(b[5], 1); /* NaN != 0 */
    td_tensor_release(dst);

    /* int64 beyond 2^53 stays exact into int64 and narrows by wrapping into uint8. */
    int64_t one[1] = {1};
    td__meta_set(&m, TD_INT64, 1, one);
    struct td_tensor *big = NULL, *i64 = NULL, *u8 = NULL;
    assert_int_equal(td_tensor_new(&m, false, NULL, &big, &err), 0);
    *(int64_t *)td_tensor_data(big) = (1LL << 60) + 257;
    assert_int_equal(td_tensor_new(&m, false, NULL, &i64, &err), 0);
    assert_int_equal(td_tensor_copy(i64, big, &err), 0);
    assert_true(*(int64_t *)td_tensor_data(i64) == (1LL << 60) + 257);
    td__meta_set(&m, TD_UINT8, 1, one);
    assert_int_equal(td_tensor_new(&m, false, NULL, &u8, &err), 0);
    assert_int_equal(td_tensor_copy(u8, big, &err), 0);
    assert_int_equal(*(uint8_t *)td_tensor_data(u8), 1);

    /* complex -> float takes the real part; float -> complex has zero imaginary part. */
    struct td_tensor *cz = NULL, *fr = NULL;
    td__meta_set(&m, TD_COMPLEX64, 1, one);
    assert_int_equal(td_tensor_new(&m, false, NULL, &cz, &err), 0);
    ((float *)td_tensor_data(cz))[0] = 1.5f;
    ((float *)td_tensor_data(cz))[1] = -4.0f;
    td__meta_set(&m, TD_FLOAT16, 1, one);
    assert_int_equal(td_tensor_new(&m, false, NULL, &fr, &err), 0);
    assert_int_equal(td_tensor_copy(fr, cz, &err), 0);
    assert_int_equal(*(uint16_t *)td_tensor_data(fr), 0x3e00); /* 1.5 in half */

    /* Broadcasting copy: a [1] source fills a [6] destination. */
    assert_int_equal(td_tensor_copy(src, i64, &err), 0);
    for (int i = 0; i < 6; i++)
        assert_true(at(src, i) == (double)((1LL << 60) + 257));
    /* A non-broadcastable source is rejected. */
    int64_t two[1] = {4};
    struct td_tensor *four = mk(TD_FLOAT32, 1, two, NULL);
    assert_int_equal(td_tensor_copy(src, four, &err), TD_EINVAL);

    td_tensor_release(four);
    td_tensor_release(cz);
    td_tensor_release(fr);
    td_tensor_release(big);
    td_tensor_release(i64);
    td_tensor_release(u8);
    td_tensor_release(src);
}

static void test_broadcast_shapes(void **state)
{
    (void)state;
    struct td_error err;
    struct td_meta a, b, c;
    int64_t sa[3] = {4, 1, 3}, sb[2] = {5, 1}, sc[1] = {4};
    td__meta_set(&a, TD_FLOAT32, 3, sa);
    td__meta_set(&b, TD_FLOAT32, 2, sb);
    td__meta_set(&c, TD_FLOAT32, 1, sc);
    const struct td_meta *ab[2] = {&a, &b};
    int nd = 0;
    int64_t out[TD_MAX_NDIM];
    assert_int_equal(td_broadcast_shapes("add", 2, ab, &nd, out, &err), 0);
    assert_int_equal(nd, 3);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], 3);
    const struct td_meta *ac[2] = {&a, &c};
    assert_int_equal(td_broadcast_shapes("add", 2, ac, &nd, out, &err), TD_EINVAL);
    assert_string_equal(err.msg, "add: shapes [4,1,3] and [4] cannot broadcast");
}

/* ---------------------------------------------------------------------------------------
 * Iterator.
 */
struct sum_ctx {
    double acc[64];
    int n;
    int calls;
};

/* Records operand 1's values in visit order and writes 10*value into operand 0. */
static void rec_loop(char **data, const int64_t *strides, int64_t n, void *vctx)
{
    struct sum_ctx *s = vctx;
    s->calls++;
    for (int64_t i = 0; i < n; i++) {
        float v = *(float *)(data[1] + i * strides[1]);
        *(float *)(data[0] + i * strides[0]) = 10 * v;
        if (s->n < 64)
            s->acc[s->n++] = v;
    }
}

static void test_iter_coalesce(void **state)
{
    (void)state;
    struct td_error err;
    int64_t shape[3] = {2, 3, 4};
    struct td_tensor *a = mk(TD_FLOAT32, 3, shape, NULL), *b = mk(TD_FLOAT32, 3, shape, NULL);
    struct td_tensor *ops[2] = {a, b};
    struct td_iter it;
    assert_int_equal(td_iter_init(&it, 2, ops, 3, shape, &err), 0);
    assert_int_equal(it.ndim, 1);
    assert_int_equal(it.shape[0], 24);
    assert_int_equal(it.strides[0][0], 4);
    struct sum_ctx s = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s);
    assert_int_equal(s.calls, 1);
    for (int i = 0; i < 24; i++)
        assert_true(s.acc[i] == (double)i && at(a, i) == 10.0 * i);

    /* Size-1 dims are dropped, then the rest coalesces. */
    int64_t s1[4] = {1, 6, 1, 4};
    struct td_tensor *c = mk(TD_FLOAT32, 4, s1, NULL), *d = mk(TD_FLOAT32, 4, s1, NULL);
    struct td_tensor *ops2[2] = {c, d};
    assert_int_equal(td_iter_init(&it, 2, ops2, 4, s1, &err), 0);
    assert_int_equal(it.ndim, 1);
    assert_int_equal(it.shape[0], 24);
    td_tensor_release(c);
    td_tensor_release(d);
    td_tensor_release(a);
    td_tensor_release(b);
}

static void test_iter_broadcast(void **state)
{
    (void)state;
    struct td_error err;
    int64_t so[2] = {2, 3}, sb[1] = {3}, sc[2] = {2, 1};
    struct td_tensor *o = mk(TD_FLOAT32, 2, so, NULL);
    struct td_tensor *b = mk(TD_FLOAT32, 1, sb, NULL);      /* [0,1,2] */
    struct td_tensor *c = mk(TD_FLOAT32, 2, sc, NULL);      /* [[0],[1]] */
    struct td_tensor *ops[2] = {o, b};
    struct td_iter it;
    assert_int_equal(td_iter_init(&it, 2, ops, 2, so, &err), 0);
    assert_int_equal(it.ndim, 2);
    assert_int_equal(it.strides[0][0], 12);
    assert_int_equal(it.strides[0][1], 4);
    assert_int_equal(it.strides[1][0], 0);
    assert_int_equal(it.strides[1][1], 4);
    struct sum_ctx s = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s);
    static const double want_b[6] = {0, 1, 2, 0, 1, 2};
    for (int i = 0; i < 6; i++)
        assert_true(s.acc[i] == want_b[i]);

    struct td_tensor *ops2[2] = {o, c};
    assert_int_equal(td_iter_init(&it, 2, ops2, 2, so, &err), 0);
    assert_int_equal(it.strides[1][1], 0);
    struct sum_ctx s2 = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s2);
    static const double want_c[6] = {0, 0, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++)
        assert_true(s2.acc[i] == want_c[i] && at(o, i) == 10 * want_c[i]);

    /* Shape [2] does not broadcast to [2,3]. */
    int64_t bad[1] = {2};
    struct td_tensor *e = mk(TD_FLOAT32, 1, bad, NULL);
    struct td_tensor *ops3[2] = {o, e};
    assert_int_equal(td_iter_init(&it, 2, ops3, 2, so, &err), TD_EINVAL);
    /* Zero-size iteration calls nothing. */
    int64_t zs[2] = {0, 3};
    struct td_tensor *z = mk(TD_FLOAT32, 2, zs, NULL);
    struct td_tensor *ops4[2] = {z, b};
    assert_int_equal(td_iter_init(&it, 2, ops4, 2, zs, &err), 0);
    assert_int_equal(it.numel, 0);
    struct sum_ctx s3 = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s3);
    assert_int_equal(s3.calls, 0);
    /* 0-d operands iterate once. */
    struct td_tensor *z0 = mk(TD_FLOAT32, 0, NULL, NULL), *z1 = mk(TD_FLOAT32, 0, NULL, NULL);
    struct td_tensor *ops5[2] = {z0, z1};
    assert_int_equal(td_iter_init(&it, 2, ops5, 0, NULL, &err), 0);
    struct sum_ctx s4 = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s4);
    assert_int_equal(s4.n, 1);
    td_tensor_release(z0);
    td_tensor_release(z1);
    td_tensor_release(z);
    td_tensor_release(e);
    td_tensor_release(o);
    td_tensor_release(b);
    td_tensor_release(c);
}

static void test_iter_negative_strides(void **state)
{
    (void)state;
    struct td_error err;
    int64_t s6[1] = {6};
    struct td_tensor *base = mk(TD_FLOAT32, 1, s6, NULL); /* 0..5 */
    /* Reversed view: offset 5, stride -1 -> 5,4,3,2,1,0. */
    int64_t st[1] = {-1};
    struct td_tensor *rev = NULL;
    assert_int_equal(td_tensor_new_view(base, 1, s6, st, 5, &rev, &err), 0);
    struct td_tensor *o = mk(TD_FLOAT32, 1, s6, NULL);
    struct td_tensor *ops[2] = {o, rev};
    struct td_iter it;
    assert_int_equal(td_iter_init(&it, 2, ops, 1, s6, &err), 0);
    assert_int_equal(it.strides[1][0], -4);
    struct sum_ctx s = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s);
    for (int i = 0; i < 6; i++)
        assert_true(s.acc[i] == 5.0 - i && at(o, i) == 10.0 * (5 - i));

    /* A [2,3] view with negative row stride over the same storage: rows swapped, and the
     * two dims must not coalesce (row stride -3 != 3 * 1). */
    int64_t s23[2] = {2, 3}, st23[2] = {-3, 1};
    struct td_tensor *rv = NULL;
    assert_int_equal(td_tensor_new_view(base, 2, s23, st23, 3, &rv, &err), 0);
    struct td_tensor *o2 = mk(TD_FLOAT32, 2, s23, NULL);
    struct td_tensor *ops2[2] = {o2, rv};
    assert_int_equal(td_iter_init(&it, 2, ops2, 2, s23, &err), 0);
    assert_int_equal(it.ndim, 2);
    struct sum_ctx s2 = {{0}, 0, 0};
    td_iter_run(&it, rec_loop, &s2);
    static const double want[6] = {3, 4, 5, 0, 1, 2};
    for (int i = 0; i < 6; i++)
        assert_true(s2.acc[i] == want[i]);
    td_tensor_release(rv);
    td_tensor_release(o2);
    td_tensor_release(o);
    td_tensor_release(rev);
    td_tensor_release(base);
}

/* ---------------------------------------------------------------------------------------
 * Philox4x32-10 known-answer tests (Random123's kat_vectors).
 */
static void test_philox_kat(void **state)
{
    (void)state;
    uint32_t out[4];
    td_philox4x32(0, 0, 0, out);
    assert_int_equal(out[0], 0x6627e8d5u);
    assert_int_equal(out[1], 0xe169c58du);
    assert_int_equal(out[2], 0xbc57ac4cu);
    assert_int_equal(out[3], 0x9b00dbd8u);
    td_philox4x32(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull, out);
    assert_int_equal(out[0], 0x408f276du);
    assert_int_equal(out[1], 0x41c83b0eu);
    assert_int_equal(out[2], 0xa20bc7c6u);
    assert_int_equal(out[3], 0x6d5451fdu);
    /* ctr = {243f6a88, 85a308d3, 13198a2e, 03707344}, key = {a4093822, 299f31d0} */
    td_philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, out);
    assert_int_equal(out[0], 0xd16cfe09u);
    assert_int_equal(out[1], 0x94fdccebu);
    assert_int_equal(out[2], 0x5001e420u);
    assert_int_equal(out[3], 0x24126ea1u);
}

/* ---------------------------------------------------------------------------------------
 * Fault injection: fail the n-th allocation, for n = 1, 2, ... until the call succeeds;
 * every failure must be TD_ENOMEM and must leave nothing allocated.
 */
static int run_with_faults(enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
                           const struct td_attr_arg *attrs, struct td_rng *rng)
{
    uint64_t base = td_alloc_live_blocks();
    struct td_error err;
    int n;
    for (n = 1; n < 1000; n++) {
        struct td_tensor *out = NULL;
        td_alloc_fail_after(n);
        int rc = td_op_call(op, nin, in, nattrs, attrs, 1, &out, rng, NULL, &err);
        td_alloc_fail_after(0);
        if (rc == 0) {
            assert_non_null(out);
            td_tensor_release(out);
            assert_int_equal(td_alloc_live_blocks(), base);
            return n;
        }
        if (rc != TD_ENOMEM)
            fail_msg("%s: fail_after(%d) gave %d (%s)", td_op_info_get(op)->name, n, rc,
                     err.msg);
        assert_null(out);
        if (td_alloc_live_blocks() != base)
            fail_msg("%s: fail_after(%d) leaked %lld blocks", td_op_info_get(op)->name, n,
                     (long long)(td_alloc_live_blocks() - base));
    }
    fail_msg("never succeeded");
    return n;
}

static void test_fault_injection(void **state)
{
    (void)state;
    int64_t sa[2] = {2, 3}, sb[1] = {3};
    struct td_tensor *a = mk(TD_FLOAT32, 2, sa, NULL), *b = mk(TD_INT32, 1, sb, NULL);
    struct td_tensor *ab[2] = {a, b};
    assert_true(run_with_faults(TD_OP_add, 2, ab, 0, NULL, NULL) > 1);

    struct td_attr_arg ar[1] = {{"end", {.type = TD_ATTR_SCALAR,
                                         .scalar = {TD_SCALAR_INT, 10, 10.0, 0}}}};
    assert_true(run_with_faults(TD_OP_arange, 0, NULL, 1, ar, NULL) > 1);

    struct td_tensor *wh[3] = {b, a, b};
    assert_true(run_with_faults(TD_OP_where, 3, wh, 0, NULL, NULL) > 1);

    struct td_attr_arg ca[1] = {{"dtype", {.type = TD_ATTR_DTYPE, .dtype = TD_FLOAT16}}};
    struct td_tensor *one[1] = {a};
    assert_true(run_with_faults(TD_OP_cast, 1, one, 1, ca, NULL) > 1);

    struct td_rng rng = {42, 0};
    struct td_attr_arg ra[1] = {{"shape", {.type = TD_ATTR_INTS, .nints = 2, .ints = {4, 5}}}};
    assert_true(run_with_faults(TD_OP_randn, 0, NULL, 1, ra, &rng) > 1);

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
        cmocka_unit_test_setup_teardown(test_status_text, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_dtype_info, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_promote_types, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_result_type, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_f16, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_bf16, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_checked_arith, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_counts, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_account_limit, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_shape_check, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_views_and_contiguous, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_copy_conversions, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_shapes, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_iter_coalesce, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_iter_broadcast, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_iter_negative_strides, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_philox_kat, leak_setup, leak_teardown),
        cmocka_unit_test_setup_teardown(test_fault_injection, leak_setup, leak_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
