/*
 * tensor.c - tensors and views, shape checks, element conversions, copies, broadcasting,
 * type promotion (result_type), the strided iterator and the Philox4x32-10 generator.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

/* ---------------------------------------------------------------------------------------
 * Element loads and stores.
 */
int64_t td__f64_to_i64(double v)
{
    /* 2^63 is exactly representable; anything >= it or NaN has no int64 value. */
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)v;
}

int64_t td__load_i64(const void *p, enum td_dtype dt)
{
    switch (dt) {
    case TD_BOOL:
        return *(const uint8_t *)p != 0;
    case TD_UINT8:
        return *(const uint8_t *)p;
    case TD_INT8:
        return *(const int8_t *)p;
    case TD_INT16:
        return *(const int16_t *)p;
    case TD_INT32:
        return *(const int32_t *)p;
    case TD_INT64:
        return *(const int64_t *)p;
    default:
        return td__f64_to_i64(td__load_f64(p, dt));
    }
}

double td__load_f64(const void *p, enum td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT16:
        return td_f16_to_f32(*(const uint16_t *)p);
    case TD_BFLOAT16:
        return td_bf16_to_f32(*(const uint16_t *)p);
    case TD_FLOAT32:
        return *(const float *)p;
    case TD_FLOAT64:
        return *(const double *)p;
    case TD_COMPLEX64:
        return ((const float *)p)[0];
    case TD_COMPLEX128:
        return ((const double *)p)[0];
    default:
        return (double)td__load_i64(p, dt);
    }
}

double complex td__load_c128(const void *p, enum td_dtype dt)
{
    if (dt == TD_COMPLEX64) {
        const float *f = p;
        return CMPLX((double)f[0], (double)f[1]);
    }
    if (dt == TD_COMPLEX128) {
        const double *d = p;
        return CMPLX(d[0], d[1]);
    }
    return CMPLX(td__load_f64(p, dt), 0.0);
}

bool td__load_bool(const void *p, enum td_dtype dt)
{
    switch (dt) {
    case TD_BOOL:
    case TD_UINT8:
    case TD_INT8:
        return *(const uint8_t *)p != 0;
    case TD_INT16:
        return *(const int16_t *)p != 0;
    case TD_INT32:
        return *(const int32_t *)p != 0;
    case TD_INT64:
        return *(const int64_t *)p != 0;
    case TD_COMPLEX64:
    case TD_COMPLEX128: {
        double complex z = td__load_c128(p, dt);
        return creal(z) != 0 || cimag(z) != 0;
    }
    default:
        return td__load_f64(p, dt) != 0;
    }
}

void td__store_i64(void *p, enum td_dtype dt, int64_t v)
{
    switch (dt) {
    case TD_BOOL:
        *(uint8_t *)p = v != 0;
        break;
    case TD_UINT8:
        *(uint8_t *)p = (uint8_t)(uint64_t)v;
        break;
    case TD_INT8:
        *(int8_t *)p = (int8_t)(uint8_t)(uint64_t)v;
        break;
    case TD_INT16:
        *(int16_t *)p = (int16_t)(uint16_t)(uint64_t)v;
        break;
    case TD_INT32:
        *(int32_t *)p = (int32_t)(uint32_t)(uint64_t)v;
        break;
    case TD_INT64:
        *(int64_t *)p = v;
        break;
    default:
        td__store_f64(p, dt, (double)v);
        break;
    }
}

void td__store_f64(void *p, enum td_dtype dt, double v)
{
    switch (dt) {
    case TD_BOOL:
        *(uint8_t *)p = v != 0;
        break;
    case TD_FLOAT16:
        *(uint16_t *)p = td_f32_to_f16((float)v);
        break;
    case TD_BFLOAT16:
        *(uint16_t *)p = td_f32_to_bf16((float)v);
        break;
    case TD_FLOAT32:
        *(float *)p = (float)v;
        break;
    case TD_FLOAT64:
        *(double *)p = v;
        break;
    case TD_COMPLEX64:
        ((float *)p)[0] = (float)v;
        ((float *)p)[1] = 0.0f;
        break;
    case TD_COMPLEX128:
        ((double *)p)[0] = v;
        ((double *)p)[1] = 0.0;
        break;
    case TD_INT64:
        *(int64_t *)p = td__f64_to_i64(v);
        break;
    default: {
        /* Narrow integers convert through int32 like x86's cvttsd2si (and so NumPy):
         * out of range or NaN gives INT32_MIN, then the value wraps to the width. */
        int64_t w = td__f64_to_i64(v);
        if (w < INT32_MIN || w > INT32_MAX)
            w = INT32_MIN;
        td__store_i64(p, dt, w);
        break;
    }
    }
}

void td__store_c128(void *p, enum td_dtype dt, double complex v)
{
    switch (dt) {
    case TD_BOOL:
        *(uint8_t *)p = creal(v) != 0 || cimag(v) != 0;
        break;
    case TD_COMPLEX64:
        ((float *)p)[0] = (float)creal(v);
        ((float *)p)[1] = (float)cimag(v);
        break;
    case TD_COMPLEX128:
        ((double *)p)[0] = creal(v);
        ((double *)p)[1] = cimag(v);
        break;
    default:
        td__store_f64(p, dt, creal(v));
        break;
    }
}

void td__store_bool(void *p, enum td_dtype dt, bool v)
{
    td__store_i64(p, dt, v ? 1 : 0);
}

void td__convert(void *dst, enum td_dtype ddt, const void *src, enum td_dtype sdt)
{
    if (ddt == sdt) {
        memcpy(dst, src, td_dtype_size(ddt));
    } else if (ddt == TD_BOOL) {
        *(uint8_t *)dst = td__load_bool(src, sdt);
    } else if (td_dtype_is_complex(sdt)) {
        td__store_c128(dst, ddt, td__load_c128(src, sdt));
    } else if (td_dtype_is_integral(sdt, true)) {
        td__store_i64(dst, ddt, td__load_i64(src, sdt));
    } else {
        td__store_f64(dst, ddt, td__load_f64(src, sdt));
    }
}

void td__store_scalar(void *p, enum td_dtype dt, const struct td_scalar *s)
{
    switch (s->kind) {
    case TD_SCALAR_BOOL:
    case TD_SCALAR_INT:
        td__store_i64(p, dt, s->i);
        break;
    case TD_SCALAR_FLOAT:
        td__store_f64(p, dt, s->re);
        break;
    case TD_SCALAR_COMPLEX:
        td__store_c128(p, dt, CMPLX(s->re, s->im));
        break;
    }
}

enum td_dtype td__scalar_dtype(const struct td_scalar *s)
{
    switch (s->kind) {
    case TD_SCALAR_BOOL:
        return TD_BOOL;
    case TD_SCALAR_INT:
        return TD_INT64;
    case TD_SCALAR_FLOAT:
        return TD_FLOAT32;
    default:
        return TD_COMPLEX64;
    }
}

/* ---------------------------------------------------------------------------------------
 * Meta helpers.
 */
void td__meta_set(struct td_meta *m, enum td_dtype dt, int ndim, const int64_t *shape)
{
    memset(m, 0, sizeof *m);
    m->dtype = dt;
    m->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        m->shape[i] = shape[i];
    m->wrapped_number = false;
}

int td__norm_dim(const char *op, int64_t dim, int ndim, int *out, struct td_error *err)
{
    int64_t n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n)
        return td_error_set(err, TD_EINVAL, "%s: dim %lld out of range for %d-d tensor", op,
                            (long long)dim, ndim);
    *out = (int)(dim < 0 ? dim + n : dim);
    return 0;
}

int td__mark_dims(const char *op, const int64_t *dims, int n, int ndim, bool as_given,
                  bool *mask, struct td_error *err)
{
    for (int i = 0; i < n; i++) {
        int d;
        int rc = td__norm_dim(op, dims[i], ndim, &d, err);
        if (rc)
            return rc;
        if (ndim == 0)
            continue;
        if (mask[d])
            return td_error_set(err, TD_EINVAL, "%s: dim %lld appears more than once", op,
                                as_given ? (long long)dims[i] : (long long)d);
        mask[d] = true;
    }
    return 0;
}

int td__check_shape(const char *op, const int64_t *shape, int ndim, enum td_dtype dt,
                    struct td_error *err)
{
    return td_shape_check(shape, ndim, dt, op, NULL, err);
}

bool td__meta_equal(const struct td_meta *a, const struct td_meta *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *td__shape_str(const int64_t *shape, int ndim, char *buf, size_t n)
{
    size_t len = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * Tensors.
 */
int td_shape_check(const int64_t *shape, int ndim, enum td_dtype dt, const char *what,
                   int64_t *numel_out, struct td_error *err)
{
    if (!td_dtype_valid(dt))
        return td_error_set(err, TD_EINVAL, "%s: invalid dtype %d", what, (int)dt);
    if (ndim < 0 || ndim > TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "%s: ndim %d out of range (max %d)", what, ndim,
                            TD_MAX_NDIM);
    int64_t numel = 1;
    bool zero = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return td_error_set(err, TD_EINVAL, "%s: negative dimension %lld at index %d", what,
                                (long long)shape[i], i);
        if (shape[i] == 0)
            zero = true;
    }
    /* Check the product of the non-zero dims so a zero dim cannot hide an overflow that
     * strides would still see. */
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            continue;
        if (!td_mul_i64(numel, shape[i], &numel))
            goto too_big;
    }
    int64_t nbytes;
    if (!td_mul_i64(numel, (int64_t)td_dtype_size(dt), &nbytes) || (uint64_t)nbytes > SIZE_MAX)
        goto too_big;
    if (numel_out)
        *numel_out = zero ? 0 : numel;
    return 0;
too_big:
    return td_error_set(err, TD_EINVAL, "%s: shape is too large (element count overflows)",
                        what);
}

int64_t td_shape_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

void td_contiguous_strides(const int64_t *shape, int ndim, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

int td_tensor_new(const struct td_meta *meta, bool zero, struct td_account *account,
                  struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *t = NULL;
    int64_t numel;
    int rc = td_shape_check(meta->shape, meta->ndim, meta->dtype, "tensor", &numel, err);
    if (rc)
        return rc;
    t = td_calloc(1, sizeof *t);
    if (!t)
        return td_error_set(err, TD_ENOMEM, "out of memory allocating a tensor");
    rc = td_storage_new((size_t)numel * td_dtype_size(meta->dtype), zero, account, &t->storage,
                        err);
    if (rc) {
        td_free(t);
        return rc;
    }
    atomic_init(&t->refcount, 1);
    t->dtype = meta->dtype;
    t->ndim = meta->ndim;
    memcpy(t->shape, meta->shape, sizeof(int64_t) * (size_t)meta->ndim);
    td_contiguous_strides(t->shape, t->ndim, t->strides);
    t->offset = 0;
    t->wrapped_number = meta->wrapped_number;
    *out = t;
    return 0;
}

int td_tensor_new_view(struct td_tensor *base, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset, struct td_tensor **out,
                       struct td_error *err)
{
    if (ndim < 0 || ndim > TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "view: ndim %d out of range", ndim);
    struct td_tensor *t = td_calloc(1, sizeof *t);
    if (!t)
        return td_error_set(err, TD_ENOMEM, "out of memory allocating a view");
    atomic_init(&t->refcount, 1);
    t->storage = td_storage_retain(base->storage);
    t->dtype = base->dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    t->offset = offset;
    t->wrapped_number = false;
    *out = t;
    return 0;
}

struct td_tensor *td_tensor_retain(struct td_tensor *t)
{
    if (t)
        atomic_fetch_add(&t->refcount, 1);
    return t;
}

void td_tensor_release(struct td_tensor *t)
{
    if (!t || atomic_fetch_sub(&t->refcount, 1) != 1)
        return;
    if (t->ag)
        td__ag_meta_free(t->ag);
    td_storage_release(t->storage);
    td_free(t);
}

int64_t td_tensor_numel(const struct td_tensor *t)
{
    return td_shape_numel(t->shape, t->ndim);
}

size_t td_tensor_nbytes(const struct td_tensor *t)
{
    return (size_t)td_tensor_numel(t) * td_dtype_size(t->dtype);
}

bool td_tensor_is_contiguous(const struct td_tensor *t)
{
    int64_t expect = 1;
    if (td_tensor_numel(t) == 0)
        return true;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

void *td_tensor_data(const struct td_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)td_dtype_size(t->dtype);
}

void td_tensor_meta(const struct td_tensor *t, struct td_meta *out)
{
    td__meta_set(out, t->dtype, t->ndim, t->shape);
    out->wrapped_number = t->wrapped_number;
}

struct copy_ctx {
    enum td_dtype ddt, sdt;
};

/* Typed conversions for the pairs training and mixed-dtype arithmetic hit (masks to floats,
 * float32 <-> float64, integer indices to floats); C conversions, which is what td__convert
 * does for these pairs too. */
#define CONV_LOOP(NAME, S, D, EXPR)                                                         \
    static void NAME(char *d, const char *s, int64_t ds, int64_t ss, int64_t n)             \
    {                                                                                       \
        for (int64_t i = 0; i < n; i++, d += ds, s += ss) {                                 \
            S v;                                                                            \
            memcpy(&v, s, sizeof v);                                                        \
            D r = (D)(EXPR);                                                                \
            memcpy(d, &r, sizeof r);                                                        \
        }                                                                                   \
    }
CONV_LOOP(conv_b_f32, uint8_t, float, v != 0)
CONV_LOOP(conv_b_f64, uint8_t, double, v != 0)
CONV_LOOP(conv_f32_f64, float, double, v)
CONV_LOOP(conv_f64_f32, double, float, v)
CONV_LOOP(conv_i64_f32, int64_t, float, v)
CONV_LOOP(conv_i64_f64, int64_t, double, v)
CONV_LOOP(conv_i32_f32, int32_t, float, v)
CONV_LOOP(conv_i32_i64, int32_t, int64_t, v)
#undef CONV_LOOP

typedef void (*conv_fn)(char *d, const char *s, int64_t ds, int64_t ss, int64_t n);

static conv_fn typed_conversion(enum td_dtype dst, enum td_dtype src)
{
    static const struct {
        enum td_dtype s, d;
        conv_fn f;
    } tab[] = {
        {TD_BOOL, TD_FLOAT32, conv_b_f32},      {TD_BOOL, TD_FLOAT64, conv_b_f64},
        {TD_FLOAT32, TD_FLOAT64, conv_f32_f64}, {TD_FLOAT64, TD_FLOAT32, conv_f64_f32},
        {TD_INT64, TD_FLOAT32, conv_i64_f32},   {TD_INT64, TD_FLOAT64, conv_i64_f64},
        {TD_INT32, TD_FLOAT32, conv_i32_f32},   {TD_INT32, TD_INT64, conv_i32_i64},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].s == src && tab[i].d == dst)
            return tab[i].f;
    return NULL;
}

static void copy_loop(char **data, const int64_t *strides, int64_t n, void *ctx)
{
    const struct copy_ctx *cc = ctx;
    char *d = data[0];
    const char *s = data[1];
    if (cc->ddt == cc->sdt) {
        size_t sz = td_dtype_size(cc->ddt);
        if (strides[0] == (int64_t)sz && strides[1] == (int64_t)sz) {
            memcpy(d, s, sz * (size_t)n);
            return;
        }
        for (int64_t i = 0; i < n; i++, d += strides[0], s += strides[1])
            memcpy(d, s, sz);
        return;
    }
    conv_fn f = typed_conversion(cc->ddt, cc->sdt);
    if (f) {
        f(d, s, strides[0], strides[1], n);
        return;
    }
    for (int64_t i = 0; i < n; i++, d += strides[0], s += strides[1])
        td__convert(d, cc->ddt, s, cc->sdt);
}

int td_tensor_copy(struct td_tensor *dst, const struct td_tensor *src, struct td_error *err)
{
    struct td_iter it;
    struct td_tensor *ops[2] = {dst, (struct td_tensor *)src};
    int rc = td_iter_init(&it, 2, ops, dst->ndim, dst->shape, err);
    if (rc)
        return rc;
    struct copy_ctx cc = {dst->dtype, src->dtype};
    td_iter_run(&it, copy_loop, &cc);
    return 0;
}

int td_tensor_contiguous(struct td_tensor *t, struct td_account *account,
                         struct td_tensor **out, struct td_error *err)
{
    if (td_tensor_is_contiguous(t)) {
        *out = td_tensor_retain(t);
        return 0;
    }
    struct td_meta m;
    struct td_tensor *c = NULL;
    td_tensor_meta(t, &m);
    int rc = td_tensor_new(&m, false, account, &c, err);
    if (rc)
        return rc;
    rc = td_tensor_copy(c, t, err);
    if (rc) {
        td_tensor_release(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Broadcasting and promotion.
 */
int td_broadcast_shapes(const char *op, int n, const struct td_meta *const *in, int *ndim_out,
                        int64_t *shape_out, struct td_error *err)
{
    int nd = 0;
    int64_t shape[TD_MAX_NDIM];
    for (int k = 0; k < n; k++)
        if (in[k]->ndim > nd)
            nd = in[k]->ndim;
    for (int i = 0; i < nd; i++)
        shape[i] = 1;
    for (int k = 0; k < n; k++) {
        const struct td_meta *m = in[k];
        int lead = nd - m->ndim;
        for (int i = 0; i < m->ndim; i++) {
            int64_t a = shape[lead + i], b = m->shape[i];
            if (a == b || b == 1)
                continue;
            if (a == 1) {
                shape[lead + i] = b;
                continue;
            }
            char s1[256], s2[256];
            /* Name the first shape that set this dim and the offending one. */
            const struct td_meta *first = in[0];
            for (int j = 0; j < k; j++) {
                int l2 = nd - in[j]->ndim;
                int idx = lead + i - l2;
                if (idx >= 0 && in[j]->shape[idx] == a) {
                    first = in[j];
                    break;
                }
            }
            return td_error_set(err, TD_EINVAL, "%s: shapes %s and %s cannot broadcast", op,
                                td__shape_str(first->shape, first->ndim, s1, sizeof s1),
                                td__shape_str(m->shape, m->ndim, s2, sizeof s2));
        }
    }
    *ndim_out = nd;
    memcpy(shape_out, shape, sizeof(int64_t) * (size_t)nd);
    return 0;
}

/* Mirrors c10's ResultTypeState + combine_categories (ATen/native/TypeProperties.cpp). */
static enum td_dtype combine(enum td_dtype higher, enum td_dtype lower, bool lower_set)
{
    if (!lower_set)
        return higher;
    if (td_dtype_is_complex(higher))
        return higher;
    if (td_dtype_is_complex(lower)) {
        /* Preserve value type of higher if it is floating type. */
        if (td_dtype_is_floating(higher))
            return td_dtype_to_complex(higher);
        return lower;
    }
    if (td_dtype_is_floating(higher))
        return higher;
    if (higher == TD_BOOL || td_dtype_is_floating(lower))
        return td_promote_types(higher, lower);
    return higher;
}

enum td_dtype td_result_type(int n, const struct td_meta *const *in)
{
    enum td_dtype tier[3] = {TD_BOOL, TD_BOOL, TD_BOOL};
    bool set[3] = {false, false, false};
    for (int k = 0; k < n; k++) {
        const struct td_meta *m = in[k];
        int t;
        enum td_dtype dt = m->dtype;
        if (m->wrapped_number) {
            t = 2;
            /* A Python float is the default dtype; a complex its complex counterpart. */
            if (td_dtype_is_floating(dt))
                dt = TD_FLOAT32;
            else if (td_dtype_is_complex(dt))
                dt = TD_COMPLEX64;
        } else {
            t = m->ndim > 0 ? 0 : 1;
        }
        tier[t] = set[t] ? td_promote_types(tier[t], dt) : dt;
        set[t] = true;
    }
    if (!set[0] && !set[1] && !set[2])
        return TD_FLOAT32;
    /* combine_categories(dimResult, combine_categories(zeroResult, wrappedResult)) */
    bool lower_set = set[1] || set[2];
    enum td_dtype lower;
    if (set[1])
        lower = combine(tier[1], tier[2], set[2]);
    else
        lower = tier[2];
    if (!set[0])
        return lower;
    return combine(tier[0], lower, lower_set);
}

/* ---------------------------------------------------------------------------------------
 * The iterator.
 */
int td_iter_init(struct td_iter *it, int n, struct td_tensor *const *ops, int ndim,
                 const int64_t *shape, struct td_error *err)
{
    if (n < 1 || n > TD_ITER_MAX)
        return td_error_set(err, TD_EINTERNAL, "iter: %d operands", n);
    if (ndim < 0 || ndim > TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "iter: ndim %d out of range", ndim);
    memset(it, 0, sizeof *it);
    it->noperands = n;
    int64_t sh[TD_MAX_NDIM];
    int64_t st[TD_ITER_MAX][TD_MAX_NDIM];
    int k;
    for (int i = 0; i < ndim; i++)
        sh[i] = shape[i];
    for (k = 0; k < n; k++) {
        const struct td_tensor *t = ops[k];
        int lead = ndim - t->ndim;
        int64_t isz = (int64_t)td_dtype_size(t->dtype);
        if (lead < 0)
            goto bad;
        for (int i = 0; i < ndim; i++) {
            if (i < lead) {
                st[k][i] = 0;
                continue;
            }
            int64_t d = t->shape[i - lead];
            if (d == sh[i])
                st[k][i] = d == 1 ? 0 : t->strides[i - lead] * isz;
            else if (d == 1)
                st[k][i] = 0;
            else
                goto bad;
        }
        it->data[k] = td_tensor_data(t);
    }
    it->numel = td_shape_numel(sh, ndim);
    if (it->numel == 0) {
        it->ndim = 1;
        it->shape[0] = 0;
        for (k = 0; k < n; k++)
            it->strides[k][0] = 0;
        return 0;
    }
    /* Drop size-1 dims, then merge dim i into i+1 when every operand is contiguous
     * across the pair (stride[i] == shape[i+1] * stride[i+1]). */
    int nd = 0;
    for (int i = 0; i < ndim; i++) {
        if (sh[i] == 1)
            continue;
        if (nd > 0) {
            bool merge = true;
            for (k = 0; k < n; k++)
                if (it->strides[k][nd - 1] != sh[i] * st[k][i]) {
                    merge = false;
                    break;
                }
            if (merge) {
                it->shape[nd - 1] *= sh[i];
                for (k = 0; k < n; k++)
                    it->strides[k][nd - 1] = st[k][i];
                continue;
            }
        }
        it->shape[nd] = sh[i];
        for (k = 0; k < n; k++)
            it->strides[k][nd] = st[k][i];
        nd++;
    }
    if (nd == 0) {
        it->shape[0] = 1;
        for (k = 0; k < n; k++)
            it->strides[k][0] = 0;
        nd = 1;
    }
    it->ndim = nd;
    return 0;
bad: {
    char s1[256], s2[256];
    return td_error_set(err, TD_EINVAL, "iter: operand %d of shape %s does not broadcast to %s",
                        k, td__shape_str(ops[k]->shape, ops[k]->ndim, s1, sizeof s1),
                        td__shape_str(shape, ndim, s2, sizeof s2));
}
}

/* Walks elements [begin, end) of the C-order sequence: the first and last rows may be
 * partial, every other call covers one whole row of the innermost dimension. */
static void iter_range(const struct td_iter *it, td_loop_fn fn, void *ctx, int64_t begin,
                       int64_t end)
{
    int n = it->noperands, nd = it->ndim;
    int64_t len = it->shape[nd - 1];
    int64_t idx[TD_MAX_NDIM] = {0};
    char *row[TD_ITER_MAX], *ptr[TD_ITER_MAX];
    int64_t inner[TD_ITER_MAX];
    int64_t r = begin / len, col = begin % len;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = r % it->shape[d];
        r /= it->shape[d];
    }
    for (int k = 0; k < n; k++) {
        inner[k] = it->strides[k][nd - 1];
        row[k] = it->data[k];
        for (int d = 0; d < nd - 1; d++)
            row[k] += idx[d] * it->strides[k][d];
    }
    int64_t pos = begin;
    for (;;) {
        int64_t cnt = len - col < end - pos ? len - col : end - pos;
        for (int k = 0; k < n; k++)
            ptr[k] = row[k] + col * inner[k];
        fn(ptr, inner, cnt, ctx);
        pos += cnt;
        if (pos >= end)
            return;
        col = 0;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < it->shape[d]) {
                for (int k = 0; k < n; k++)
                    row[k] += it->strides[k][d];
                break;
            }
            for (int k = 0; k < n; k++)
                row[k] -= it->strides[k][d] * (it->shape[d] - 1);
            idx[d] = 0;
        }
    }
}

struct iter_job {
    const struct td_iter *it;
    td_loop_fn fn;
    void *ctx;
};

static void iter_chunk(int64_t begin, int64_t end, void *vjob)
{
    const struct iter_job *j = vjob;
    iter_range(j->it, j->fn, j->ctx, begin, end);
}

void td_iter_run(const struct td_iter *it, td_loop_fn fn, void *ctx)
{
    if (it->numel == 0)
        return;
    if (it->numel < 2 * TD__PAR_GRAIN) {
        iter_range(it, fn, ctx, 0, it->numel);
        return;
    }
    struct iter_job j = {it, fn, ctx};
    td__parallel_for(it->numel, TD__PAR_GRAIN, iter_chunk, &j);
}

/* ---------------------------------------------------------------------------------------
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC 2011). Counter words: (lo low, lo high,
 * hi low, hi high); key words: (key low, key high).
 */
void td_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint32_t td__rng_word(const struct td_rng *rng, uint64_t k)
{
    uint32_t w[4];
    td_philox4x32(rng->seed, 0, rng->offset + k / 4, w);
    return w[k % 4];
}
