/*
 * ops_index.c - indexing ops: gather, scatter, index_select, masked_fill.
 *
 * Index values come from clients, so every kernel validates all of them before it writes a
 * single output element: a bad index is an error, never an out-of-bounds access. Negative
 * index values are errors (like torch's gather and index_select).
 */
#include <string.h>

#include "td_internal.h"

static bool idx_next(int64_t *idx, const int64_t *shape, int ndim)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d])
            return true;
        idx[d] = 0;
    }
    return false;
}

static int64_t idx_offset(const int64_t *idx, const int64_t *strides, int ndim)
{
    int64_t off = 0;
    for (int d = 0; d < ndim; d++)
        off += idx[d] * strides[d];
    return off;
}

static int64_t elem_i64(const struct td_tensor *t, const int64_t *idx)
{
    const char *p = td_tensor_data(t);
    return td__load_i64(p + idx_offset(idx, t->strides, t->ndim) *
                                (int64_t)td_dtype_size(t->dtype),
                        t->dtype);
}

/* Checks every value of index lies in [0, size). */
static int check_index_values(const char *op, const struct td_tensor *index, int dim,
                              int64_t size, struct td_error *err)
{
    if (td_tensor_numel(index) == 0)
        return 0;
    int64_t idx[TD_MAX_NDIM] = {0};
    do {
        int64_t v = elem_i64(index, idx);
        if (v < 0 || v >= size)
            return td_error_set(err, TD_EINVAL,
                                "%s: index %lld out of range for dim %d of size %lld", op,
                                (long long)v, dim, (long long)size);
    } while (idx_next(idx, index->shape, index->ndim));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * gather, scatter.
 */
static int gather_checks(const char *op, const struct td_meta *x, const struct td_meta *index,
                         int64_t dim_attr, int *dim, struct td_error *err)
{
    if (index->dtype != TD_INT64)
        return td_error_set(err, TD_EINVAL, "%s: index must be int64, got %s", op,
                            td_dtype_name(index->dtype));
    if (index->ndim != x->ndim)
        return td_error_set(err, TD_EINVAL, "%s: index has %d dims but the input has %d", op,
                            index->ndim, x->ndim);
    int rc = td__norm_dim(op, dim_attr, x->ndim, dim, err);
    if (rc)
        return rc;
    for (int d = 0; d < x->ndim; d++)
        if (d != *dim && index->shape[d] > x->shape[d])
            return td_error_set(err, TD_EINVAL, "%s: index size %lld > input size %lld at dim %d",
                                op, (long long)index->shape[d], (long long)x->shape[d], d);
    return 0;
}

int meta_gather(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int dim;
    const struct td_meta *x = &c->in_meta[0], *index = &c->in_meta[1];
    int rc = gather_checks("gather", x, index, td_arg_int(c, "dim"), &dim, err);
    if (rc)
        return rc;
    td__meta_set(out, x->dtype, index->ndim, index->shape);
    return 0;
}

int cpu_gather(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_tensor *x = c->inputs[0], *index = c->inputs[1];
    int dim;
    struct td_meta mx, mi;
    td_tensor_meta(x, &mx);
    td_tensor_meta(index, &mi);
    int rc = gather_checks("gather", &mx, &mi, td_arg_int(c, "dim"), &dim, err);
    if (rc)
        return rc;
    int64_t size = x->ndim ? x->shape[dim] : 1;
    rc = check_index_values("gather", index, dim, size, err);
    if (rc || td_tensor_numel(index) == 0)
        return rc;
    size_t isz = td_dtype_size(x->dtype);
    const char *src = td_tensor_data(x);
    char *dst = td_tensor_data(out[0]);
    int64_t idx[TD_MAX_NDIM] = {0}, pos[TD_MAX_NDIM];
    do {
        memcpy(pos, idx, sizeof pos);
        if (x->ndim)
            pos[dim] = elem_i64(index, idx);
        memcpy(dst, src + idx_offset(pos, x->strides, x->ndim) * (int64_t)isz, isz);
        dst += isz;
    } while (idx_next(idx, index->shape, index->ndim));
    return 0;
}

enum scatter_reduce { SR_NONE, SR_ADD, SR_MUL };

static int scatter_checks(const struct td_op_ctx *c, const struct td_meta *x,
                          const struct td_meta *index, const struct td_meta *src, int *dim,
                          enum scatter_reduce *red, struct td_error *err)
{
    int rc = gather_checks("scatter", x, index, td_arg_int(c, "dim"), dim, err);
    if (rc)
        return rc;
    if (src->dtype != x->dtype)
        return td_error_set(err, TD_EINVAL, "scatter: src has dtype %s but the input has %s",
                            td_dtype_name(src->dtype), td_dtype_name(x->dtype));
    if (src->ndim != x->ndim)
        return td_error_set(err, TD_EINVAL, "scatter: src has %d dims but the input has %d",
                            src->ndim, x->ndim);
    for (int d = 0; d < x->ndim; d++)
        if (index->shape[d] > src->shape[d])
            return td_error_set(err, TD_EINVAL,
                                "scatter: index size %lld > src size %lld at dim %d",
                                (long long)index->shape[d], (long long)src->shape[d], d);
    const char *r = td_arg_str(c, "reduce");
    if (!r)
        *red = SR_NONE;
    else if (strcmp(r, "add") == 0)
        *red = SR_ADD;
    else if (strcmp(r, "multiply") == 0)
        *red = SR_MUL;
    else
        return td_error_set(err, TD_EINVAL,
                            "scatter: reduce must be \"add\" or \"multiply\", got \"%s\"", r);
    return 0;
}

int meta_scatter(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int dim = 0;
    enum scatter_reduce red = 0;
    int rc = scatter_checks(c, &c->in_meta[0], &c->in_meta[1], &c->in_meta[2], &dim, &red, err);
    if (rc)
        return rc;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

/* dst = dst (op) src for one element of dtype dt. */
static void combine(char *dst, const char *src, enum td_dtype dt, enum scatter_reduce red)
{
    bool add = red == SR_ADD;
    if (dt == TD_BOOL) {
        bool a = td__load_bool(dst, dt), b = td__load_bool(src, dt);
        td__store_bool(dst, dt, add ? (a || b) : (a && b));
    } else if (td_dtype_is_integral(dt, false)) {
        uint64_t a = (uint64_t)td__load_i64(dst, dt), b = (uint64_t)td__load_i64(src, dt);
        td__store_i64(dst, dt, (int64_t)(add ? a + b : a * b));
    } else if (td_dtype_is_complex(dt)) {
        double complex a = td__load_c128(dst, dt), b = td__load_c128(src, dt);
        td__store_c128(dst, dt, add ? a + b : a * b);
    } else {
        double a = td__load_f64(dst, dt), b = td__load_f64(src, dt);
        td__store_f64(dst, dt, add ? a + b : a * b);
    }
}

int cpu_scatter(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_tensor *x = c->inputs[0], *index = c->inputs[1], *src = c->inputs[2];
    struct td_tensor *o = out[0];
    struct td_meta mx, mi, ms;
    td_tensor_meta(x, &mx);
    td_tensor_meta(index, &mi);
    td_tensor_meta(src, &ms);
    int dim = 0;
    enum scatter_reduce red = 0;
    int rc = scatter_checks(c, &mx, &mi, &ms, &dim, &red, err);
    if (rc)
        return rc;
    int64_t size = x->ndim ? x->shape[dim] : 1;
    rc = check_index_values("scatter", index, dim, size, err);
    if (rc)
        return rc;
    if (td_tensor_numel(o) == 0)
        return 0;
    rc = td_tensor_copy(o, x, err);
    if (rc || td_tensor_numel(index) == 0)
        return rc;
    size_t isz = td_dtype_size(x->dtype);
    const char *sp = td_tensor_data(src);
    char *dp = td_tensor_data(o);
    int64_t idx[TD_MAX_NDIM] = {0}, pos[TD_MAX_NDIM];
    do {
        memcpy(pos, idx, sizeof pos);
        if (x->ndim)
            pos[dim] = elem_i64(index, idx);
        char *d = dp + idx_offset(pos, o->strides, o->ndim) * (int64_t)isz;
        const char *s = sp + idx_offset(idx, src->strides, src->ndim) * (int64_t)isz;
        if (red == SR_NONE)
            memcpy(d, s, isz);
        else
            combine(d, s, x->dtype, red);
    } while (idx_next(idx, index->shape, index->ndim));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * index_select.
 */
static int index_select_shape(const struct td_op_ctx *c, const struct td_meta *x,
                              const struct td_meta *index, int *dim, struct td_meta *out,
                              struct td_error *err)
{
    if (index->dtype != TD_INT64 && index->dtype != TD_INT32)
        return td_error_set(err, TD_EINVAL, "index_select: index must be int32 or int64, got %s",
                            td_dtype_name(index->dtype));
    if (index->ndim > 1)
        return td_error_set(err, TD_EINVAL, "index_select: index must be 1-d, got %d dims",
                            index->ndim);
    int rc = td__norm_dim("index_select", td_arg_int(c, "dim"), x->ndim, dim, err);
    if (rc)
        return rc;
    int64_t n = index->ndim ? index->shape[0] : 1;
    td__meta_set(out, x->dtype, x->ndim, x->shape);
    if (x->ndim == 0) {
        if (n != 1)
            return td_error_set(err, TD_EINVAL,
                                "index_select: a 0-d input takes exactly one index, got %lld",
                                (long long)n);
        return 0;
    }
    out->shape[*dim] = n;
    return 0;
}

int meta_index_select(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int dim;
    return index_select_shape(c, &c->in_meta[0], &c->in_meta[1], &dim, out, err);
}

int cpu_index_select(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_tensor *x = c->inputs[0], *index = c->inputs[1];
    struct td_tensor *o = out[0];
    struct td_meta mx, mi, mo;
    td_tensor_meta(x, &mx);
    td_tensor_meta(index, &mi);
    int dim;
    int rc = index_select_shape(c, &mx, &mi, &dim, &mo, err);
    if (rc)
        return rc;
    int64_t size = x->ndim ? x->shape[dim] : 1;
    rc = check_index_values("index_select", index, dim, size, err);
    if (rc || td_tensor_numel(o) == 0)
        return rc;
    size_t isz = td_dtype_size(x->dtype);
    const char *ip = td_tensor_data(index);
    int64_t istride = index->ndim ? index->strides[0] * (int64_t)td_dtype_size(index->dtype) : 0;
    const char *src = td_tensor_data(x);
    char *dst = td_tensor_data(o);
    int64_t idx[TD_MAX_NDIM] = {0}, pos[TD_MAX_NDIM];
    do {
        memcpy(pos, idx, sizeof pos);
        if (x->ndim)
            pos[dim] = td__load_i64(ip + idx[dim] * istride, index->dtype);
        memcpy(dst, src + idx_offset(pos, x->strides, x->ndim) * (int64_t)isz, isz);
        dst += isz;
    } while (idx_next(idx, o->shape, o->ndim));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * masked_fill.
 */
static int masked_fill_checks(const struct td_op_ctx *c, const struct td_meta *x,
                              const struct td_meta *mask, struct td_error *err)
{
    char b1[256], b2[256];
    if (mask->dtype != TD_BOOL)
        return td_error_set(err, TD_EINVAL, "masked_fill: mask must be bool, got %s",
                            td_dtype_name(mask->dtype));
    bool ok = mask->ndim <= x->ndim;
    for (int i = 0; ok && i < mask->ndim; i++) {
        int64_t md = mask->shape[mask->ndim - 1 - i], xd = x->shape[x->ndim - 1 - i];
        if (md != xd && md != 1)
            ok = false;
    }
    if (!ok)
        return td_error_set(err, TD_EINVAL,
                            "masked_fill: mask shape %s does not broadcast to input shape %s",
                            td__shape_str(mask->shape, mask->ndim, b1, sizeof b1),
                            td__shape_str(x->shape, x->ndim, b2, sizeof b2));
    const struct td_scalar *v = td_arg_scalar(c, "value");
    if (v->kind == TD_SCALAR_COMPLEX && !td_dtype_is_complex(x->dtype))
        return td_error_set(err, TD_EINVAL,
                            "masked_fill: cannot fill a %s tensor with a complex value",
                            td_dtype_name(x->dtype));
    return 0;
}

int meta_masked_fill(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = masked_fill_checks(c, &c->in_meta[0], &c->in_meta[1], err);
    if (rc)
        return rc;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

struct fill_ctx {
    size_t isz;
    _Alignas(16) unsigned char value[16];
};

static void fill_loop(char **data, const int64_t *strides, int64_t n, void *ctx)
{
    const struct fill_ctx *f = ctx;
    char *d = data[0];
    const char *m = data[1];
    for (int64_t i = 0; i < n; i++, d += strides[0], m += strides[1])
        if (*m)
            memcpy(d, f->value, f->isz);
}

int cpu_masked_fill(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *x = c->inputs[0], *mask = c->inputs[1], *o = out[0];
    struct td_meta mx, mm;
    td_tensor_meta(x, &mx);
    td_tensor_meta(mask, &mm);
    int rc = masked_fill_checks(c, &mx, &mm, err);
    if (rc || td_tensor_numel(o) == 0)
        return rc;
    rc = td_tensor_copy(o, x, err);
    if (rc)
        return rc;
    struct fill_ctx f;
    memset(&f, 0, sizeof f);
    f.isz = td_dtype_size(o->dtype);
    td__store_scalar(f.value, o->dtype, td_arg_scalar(c, "value"));
    struct td_iter it;
    struct td_tensor *ops[2] = {o, mask};
    rc = td_iter_init(&it, 2, ops, o->ndim, o->shape, err);
    if (rc)
        return rc;
    td_iter_run(&it, fill_loop, &f);
    return 0;
}
