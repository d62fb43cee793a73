/*
 * ops_shape.c - shape and view ops: reshape, view, permute, transpose, expand, broadcast_to,
 * squeeze, unsqueeze, flatten, slice, select, narrow, split, chunk, contiguous (views, the
 * kernel creates its outputs) and cat, stack, flip, roll, tril, triu, clone (copies into the
 * contiguous outputs the engine allocated from the metas).
 *
 * View ops share one description of their result: a geometry (shape, strides in elements,
 * offset). The meta function runs the same geometry code on a contiguous stand-in for the
 * input, so meta and kernel cannot disagree about shapes.
 */
#include <string.h>

#include "td_internal.h"

struct geom {
    int ndim;
    int64_t shape[TD_MAX_NDIM];
    int64_t strides[TD_MAX_NDIM];
    int64_t offset;
};

/* Transforms g (the input's geometry) into the output's; op-specific attrs come from c. */
typedef int (*geom_fn)(const struct td_op_ctx *c, struct geom *g, struct td_error *err);

static void geom_from_meta(const struct td_meta *m, struct geom *g)
{
    g->ndim = m->ndim;
    memcpy(g->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
    td_contiguous_strides(g->shape, g->ndim, g->strides);
    g->offset = 0;
}

static void geom_from_tensor(const struct td_tensor *t, struct geom *g)
{
    g->ndim = t->ndim;
    memcpy(g->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(g->strides, t->strides, sizeof(int64_t) * (size_t)t->ndim);
    g->offset = t->offset;
}

static void geom_remove_dim(struct geom *g, int d)
{
    for (int i = d; i + 1 < g->ndim; i++) {
        g->shape[i] = g->shape[i + 1];
        g->strides[i] = g->strides[i + 1];
    }
    g->ndim--;
}

static int view_meta(const struct td_op_ctx *c, geom_fn fn, struct td_meta *out,
                     struct td_error *err)
{
    struct geom g;
    geom_from_meta(&c->in_meta[0], &g);
    int rc = fn(c, &g, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, g.ndim, g.shape);
    return 0;
}

static int view_cpu(const struct td_op_ctx *c, geom_fn fn, struct td_tensor **out,
                    struct td_error *err)
{
    struct geom g;
    geom_from_tensor(c->inputs[0], &g);
    int rc = fn(c, &g, err);
    if (rc)
        return rc;
    return td_tensor_new_view(c->inputs[0], g.ndim, g.shape, g.strides, g.offset, out, err);
}

/* Advances idx over shape in C order. Returns: false once every index has been visited. */
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

/* Normalises a dim list into a mask; a dim named twice is an error. */
static int dims_mask(const char *op, const int64_t *dims, int n, int ndim, bool *mask,
                     struct td_error *err)
{
    for (int i = 0; i < TD_MAX_NDIM; i++)
        mask[i] = false;
    return td__mark_dims(op, dims, n, ndim, false, mask, err);
}

/* ---------------------------------------------------------------------------------------
 * reshape, view, flatten.
 */

/* Resolves a requested shape (one -1 allowed) against numel. */
static int infer_shape(const char *op, int64_t numel, const int64_t *req, int n, int64_t *shape,
                       struct td_error *err)
{
    char buf[256];
    int infer = -1;
    int64_t prod = 1;
    for (int i = 0; i < n; i++) {
        if (req[i] == -1) {
            if (infer >= 0)
                return td_error_set(err, TD_EINVAL, "%s: only one dimension can be -1", op);
            infer = i;
        } else if (req[i] < 0) {
            return td_error_set(err, TD_EINVAL, "%s: invalid size %lld in shape %s", op,
                                (long long)req[i], td__shape_str(req, n, buf, sizeof buf));
        } else if (!td_mul_i64(prod, req[i], &prod)) {
            return td_error_set(err, TD_EINVAL, "%s: shape %s is too large", op,
                                td__shape_str(req, n, buf, sizeof buf));
        }
        shape[i] = req[i];
    }
    if (infer >= 0) {
        if (prod == 0 || numel % prod != 0)
            return td_error_set(err, TD_EINVAL, "%s: shape %s is invalid for input of size %lld",
                                op, td__shape_str(req, n, buf, sizeof buf), (long long)numel);
        shape[infer] = numel / prod;
    } else if (prod != numel) {
        return td_error_set(err, TD_EINVAL, "%s: shape %s is invalid for input of size %lld", op,
                            td__shape_str(req, n, buf, sizeof buf), (long long)numel);
    }
    return 0;
}

/* Strides that let a tensor of (oshape, ostrides) be viewed as nshape without copying, after
 * PyTorch's computeStride (aten/src/ATen/TensorUtils.cpp): dims are matched in chunks of
 * memory-contiguous dims. Returns: false when no such view exists. */
static bool view_strides(const int64_t *oshape, const int64_t *ostrides, int ondim,
                         const int64_t *nshape, int nndim, int64_t *nstrides)
{
    int64_t numel = td_shape_numel(oshape, ondim);
    if (numel == 0) {
        td_contiguous_strides(nshape, nndim, nstrides);
        return true;
    }
    if (ondim == 0) {
        for (int i = 0; i < nndim; i++)
            nstrides[i] = 1;
        return true;
    }
    int view_d = nndim - 1;
    int64_t chunk_base = ostrides[ondim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int td = ondim - 1; td >= 0; td--) {
        tensor_numel *= oshape[td];
        if (td == 0 ||
            (oshape[td - 1] != 1 && ostrides[td - 1] != tensor_numel * chunk_base)) {
            while (view_d >= 0 && (view_numel < tensor_numel || nshape[view_d] == 1)) {
                nstrides[view_d] = view_numel * chunk_base;
                view_numel *= nshape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (td > 0) {
                chunk_base = ostrides[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

/* Makes out a tensor of shape nshape with in's contents: a view when strides allow, else
 * (allow_copy) a view of a contiguous copy. */
static int reshape_to(const struct td_op_ctx *c, const char *op, const int64_t *nshape,
                      int nndim, bool allow_copy, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *in = c->inputs[0];
    int64_t strides[TD_MAX_NDIM];
    if (view_strides(in->shape, in->strides, in->ndim, nshape, nndim, strides))
        return td_tensor_new_view(in, nndim, nshape, strides, in->offset, out, err);
    if (!allow_copy) {
        char buf[256];
        return td_error_set(err, TD_EINVAL,
                            "%s: shape %s is not compatible with the input's strides; use "
                            "reshape",
                            op, td__shape_str(nshape, nndim, buf, sizeof buf));
    }
    struct td_tensor *tmp = NULL;
    int rc = td_tensor_contiguous(in, c->account, &tmp, err);
    if (rc)
        return rc;
    td_contiguous_strides(nshape, nndim, strides);
    rc = td_tensor_new_view(tmp, nndim, nshape, strides, tmp->offset, out, err);
    td_tensor_release(tmp);
    return rc;
}

static int reshape_shape(const struct td_op_ctx *c, const char *op, const struct td_meta *m,
                         int64_t *shape, int *ndim, struct td_error *err)
{
    int n;
    const int64_t *req = td_arg_ints(c, "shape", &n);
    int rc = infer_shape(op, td_shape_numel(m->shape, m->ndim), req, n, shape, err);
    if (rc)
        return rc;
    *ndim = n;
    return 0;
}

int meta_reshape(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd;
    int rc = reshape_shape(c, "reshape", &c->in_meta[0], shape, &nd, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, nd, shape);
    return 0;
}

int cpu_reshape(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd;
    struct td_meta m;
    td_tensor_meta(c->inputs[0], &m);
    int rc = reshape_shape(c, "reshape", &m, shape, &nd, err);
    if (rc)
        return rc;
    return reshape_to(c, "reshape", shape, nd, true, out, err);
}

int meta_view(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd;
    int rc = reshape_shape(c, "view", &c->in_meta[0], shape, &nd, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, nd, shape);
    return 0;
}

int cpu_view(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd;
    struct td_meta m;
    td_tensor_meta(c->inputs[0], &m);
    int rc = reshape_shape(c, "view", &m, shape, &nd, err);
    if (rc)
        return rc;
    return reshape_to(c, "view", shape, nd, false, out, err);
}

static int flatten_shape(const struct td_op_ctx *c, const struct td_meta *m, int64_t *shape,
                         int *ndim, struct td_error *err)
{
    int s, e;
    int rc = td__norm_dim("flatten", td_arg_int(c, "start_dim"), m->ndim, &s, err);
    if (rc)
        return rc;
    rc = td__norm_dim("flatten", td_arg_int(c, "end_dim"), m->ndim, &e, err);
    if (rc)
        return rc;
    if (m->ndim == 0) {
        shape[0] = 1;
        *ndim = 1;
        return 0;
    }
    if (s > e)
        return td_error_set(err, TD_EINVAL, "flatten: start_dim %d comes after end_dim %d", s,
                            e);
    int n = 0;
    for (int i = 0; i < s; i++)
        shape[n++] = m->shape[i];
    int64_t p = 1;
    for (int i = s; i <= e; i++)
        p *= m->shape[i];   /* cannot overflow: the input's numel is checked */
    shape[n++] = p;
    for (int i = e + 1; i < m->ndim; i++)
        shape[n++] = m->shape[i];
    *ndim = n;
    return 0;
}

int meta_flatten(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd = 0;
    int rc = flatten_shape(c, &c->in_meta[0], shape, &nd, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, nd, shape);
    return 0;
}

int cpu_flatten(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd = 0;
    struct td_meta m;
    td_tensor_meta(c->inputs[0], &m);
    int rc = flatten_shape(c, &m, shape, &nd, err);
    if (rc)
        return rc;
    return reshape_to(c, "flatten", shape, nd, true, out, err);
}

/* ---------------------------------------------------------------------------------------
 * permute, transpose, expand, broadcast_to, squeeze, unsqueeze.
 */
static int geom_permute(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int n;
    const int64_t *dims = td_arg_ints(c, "dims", &n);
    if (n != g->ndim)
        return td_error_set(err, TD_EINVAL,
                            "permute: %d dims given for a %d-d tensor (need a permutation)", n,
                            g->ndim);
    bool seen[TD_MAX_NDIM] = {false};
    struct geom r = *g;
    for (int i = 0; i < n; i++) {
        int d;
        int rc = td__norm_dim("permute", dims[i], g->ndim, &d, err);
        if (rc)
            return rc;
        if (seen[d])
            return td_error_set(err, TD_EINVAL, "permute: dim %d appears more than once", d);
        seen[d] = true;
        r.shape[i] = g->shape[d];
        r.strides[i] = g->strides[d];
    }
    *g = r;
    return 0;
}

int meta_permute(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_permute, out, err);
}

int cpu_permute(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_permute, out, err);
}

static int geom_transpose(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int a, b;
    int rc = td__norm_dim("transpose", td_arg_int(c, "dim0"), g->ndim, &a, err);
    if (rc)
        return rc;
    rc = td__norm_dim("transpose", td_arg_int(c, "dim1"), g->ndim, &b, err);
    if (rc)
        return rc;
    if (g->ndim == 0)
        return 0;
    int64_t t = g->shape[a];
    g->shape[a] = g->shape[b];
    g->shape[b] = t;
    t = g->strides[a];
    g->strides[a] = g->strides[b];
    g->strides[b] = t;
    return 0;
}

int meta_transpose(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_transpose, out, err);
}

int cpu_transpose(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_transpose, out, err);
}

/* expand and broadcast_to: -1 keeps a dim; only size-1 dims grow (stride 0); new leading
 * dims get stride 0. */
static int geom_expand_named(const char *op, const struct td_op_ctx *c, struct geom *g,
                             struct td_error *err)
{
    int n;
    const int64_t *req = td_arg_ints(c, "shape", &n);
    char buf[256];
    if (n < g->ndim)
        return td_error_set(err, TD_EINVAL, "%s: shape %s has fewer dims than the %d-d input",
                            op, td__shape_str(req, n, buf, sizeof buf), g->ndim);
    struct geom r;
    r.ndim = n;
    r.offset = g->offset;
    int lead = n - g->ndim;
    for (int i = 0; i < n; i++) {
        if (i < lead) {
            if (req[i] < 0)
                return td_error_set(err, TD_EINVAL,
                                    "%s: size %lld is not allowed for new leading dim %d", op,
                                    (long long)req[i], i);
            r.shape[i] = req[i];
            r.strides[i] = 0;
            continue;
        }
        int j = i - lead;
        if (req[i] == -1 || req[i] == g->shape[j]) {
            r.shape[i] = g->shape[j];
            r.strides[i] = g->strides[j];
        } else if (g->shape[j] == 1 && req[i] >= 0) {
            r.shape[i] = req[i];
            r.strides[i] = 0;
        } else {
            return td_error_set(err, TD_EINVAL, "%s: size %lld of dim %d cannot expand to %lld",
                                op, (long long)g->shape[j], j, (long long)req[i]);
        }
    }
    int rc = td__check_shape(op, r.shape, r.ndim, TD_FLOAT64, err);
    if (rc)
        return rc;
    *g = r;
    return 0;
}

static int geom_expand(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    return geom_expand_named("expand", c, g, err);
}

static int geom_broadcast_to(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    return geom_expand_named("broadcast_to", c, g, err);
}

int meta_expand(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_expand, out, err);
}

int cpu_expand(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_expand, out, err);
}

int meta_broadcast_to(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_broadcast_to, out, err);
}

int cpu_broadcast_to(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_broadcast_to, out, err);
}

static int geom_squeeze(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    bool mask[TD_MAX_NDIM];
    if (td_arg_has(c, "dim")) {
        int n;
        const int64_t *dims = td_arg_ints(c, "dim", &n);
        int rc = dims_mask("squeeze", dims, n, g->ndim, mask, err);
        if (rc)
            return rc;
    } else {
        for (int i = 0; i < TD_MAX_NDIM; i++)
            mask[i] = true;
    }
    struct geom r = {.ndim = 0, .offset = g->offset};
    for (int i = 0; i < g->ndim; i++) {
        if (mask[i] && g->shape[i] == 1)
            continue;
        r.shape[r.ndim] = g->shape[i];
        r.strides[r.ndim] = g->strides[i];
        r.ndim++;
    }
    *g = r;
    return 0;
}

int meta_squeeze(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_squeeze, out, err);
}

int cpu_squeeze(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_squeeze, out, err);
}

static int geom_unsqueeze(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int64_t dim = td_arg_int(c, "dim");
    if (g->ndim >= TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "unsqueeze: result would exceed %d dims",
                            TD_MAX_NDIM);
    if (dim < -(int64_t)g->ndim - 1 || dim > g->ndim)
        return td_error_set(err, TD_EINVAL, "unsqueeze: dim %lld out of range for %d-d tensor",
                            (long long)dim, g->ndim);
    int d = (int)(dim < 0 ? dim + g->ndim + 1 : dim);
    for (int i = g->ndim; i > d; i--) {
        g->shape[i] = g->shape[i - 1];
        g->strides[i] = g->strides[i - 1];
    }
    g->shape[d] = 1;
    g->strides[d] = d + 1 < g->ndim + 1 ? g->shape[d + 1] * g->strides[d + 1] : 1;
    g->ndim++;
    return 0;
}

int meta_unsqueeze(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_unsqueeze, out, err);
}

int cpu_unsqueeze(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_unsqueeze, out, err);
}

/* ---------------------------------------------------------------------------------------
 * slice, select, narrow.
 */

/* Python's slice.indices: clamps start/end for a dimension of size n and counts the result.
 * Uses unsigned arithmetic for the distance so extreme steps cannot overflow. */
static void slice_indices(int64_t n, bool has_start, int64_t start, bool has_end, int64_t end,
                          int64_t step, int64_t *start_out, int64_t *len_out)
{
    int64_t lower = step > 0 ? 0 : -1;
    int64_t upper = step > 0 ? n : n - 1;
    if (!has_start) {
        start = step > 0 ? lower : upper;
    } else {
        if (start < 0)
            start += n;
        if (start < lower)
            start = lower;
        else if (start > upper)
            start = upper;
    }
    if (!has_end) {
        end = step > 0 ? upper : lower;
    } else {
        if (end < 0)
            end += n;
        if (end < lower)
            end = lower;
        else if (end > upper)
            end = upper;
    }
    uint64_t len = 0;
    if (step > 0 && end > start)
        len = ((uint64_t)(end - start) - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > end)
        len = ((uint64_t)(start - end) - 1) / ((uint64_t)0 - (uint64_t)step) + 1;
    *start_out = start;
    *len_out = (int64_t)len;
}

static int geom_slice(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int d;
    if (g->ndim == 0)
        return td_error_set(err, TD_EINVAL, "slice: cannot slice a 0-d tensor");
    int rc = td__norm_dim("slice", td_arg_int(c, "dim"), g->ndim, &d, err);
    if (rc)
        return rc;
    int64_t step = td_arg_int(c, "step");
    if (step == 0)
        return td_error_set(err, TD_EINVAL, "slice: step cannot be zero");
    int64_t start, len;
    slice_indices(g->shape[d], td_arg_has(c, "start"), td_arg_int(c, "start"),
                  td_arg_has(c, "end"), td_arg_int(c, "end"), step, &start, &len);
    if (len > 0) {
        g->offset += start * g->strides[d];
        int64_t ns;
        if (len > 1) {
            if (!td_mul_i64(g->strides[d], step, &ns))
                return td_error_set(err, TD_EINVAL, "slice: step %lld is too large",
                                    (long long)step);
            g->strides[d] = ns;
        }
    }
    g->shape[d] = len;
    return 0;
}

int meta_slice(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_slice, out, err);
}

int cpu_slice(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_slice, out, err);
}

static int geom_select(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int d;
    if (g->ndim == 0)
        return td_error_set(err, TD_EINVAL, "select: cannot select from a 0-d tensor");
    int rc = td__norm_dim("select", td_arg_int(c, "dim"), g->ndim, &d, err);
    if (rc)
        return rc;
    int64_t index = td_arg_int(c, "index");
    int64_t n = g->shape[d];
    if (index < -n || index >= n)
        return td_error_set(err, TD_EINVAL,
                            "select: index %lld out of range for dim %d of size %lld",
                            (long long)index, d, (long long)n);
    if (index < 0)
        index += n;
    g->offset += index * g->strides[d];
    geom_remove_dim(g, d);
    return 0;
}

int meta_select(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_select, out, err);
}

int cpu_select(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_select, out, err);
}

static int geom_narrow(const struct td_op_ctx *c, struct geom *g, struct td_error *err)
{
    int d;
    if (g->ndim == 0)
        return td_error_set(err, TD_EINVAL, "narrow: cannot narrow a 0-d tensor");
    int rc = td__norm_dim("narrow", td_arg_int(c, "dim"), g->ndim, &d, err);
    if (rc)
        return rc;
    int64_t n = g->shape[d];
    int64_t start = td_arg_int(c, "start"), length = td_arg_int(c, "length");
    if (start < -n || start > n)
        return td_error_set(err, TD_EINVAL,
                            "narrow: start %lld out of range for dim %d of size %lld",
                            (long long)start, d, (long long)n);
    if (start < 0)
        start += n;
    if (length < 0 || length > n - start)
        return td_error_set(err, TD_EINVAL,
                            "narrow: start %lld + length %lld exceeds dim %d of size %lld",
                            (long long)start, (long long)length, d, (long long)n);
    if (length > 0)
        g->offset += start * g->strides[d];
    g->shape[d] = length;
    return 0;
}

int meta_narrow(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return view_meta(c, geom_narrow, out, err);
}

int cpu_narrow(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return view_cpu(c, geom_narrow, out, err);
}

/* ---------------------------------------------------------------------------------------
 * split and chunk: piece k covers [start, start + len) of dim.
 */
struct pieces {
    int dim;
    int64_t size;       /* of dim */
    int64_t count;
    int64_t each;       /* split_size (0 when sections) */
    int nsections;
    const int64_t *sections;
};

static void piece_range(const struct pieces *p, int64_t k, int64_t *start, int64_t *len)
{
    if (p->nsections > 0) {
        int64_t s = 0;
        for (int64_t i = 0; i < k; i++)
            s += p->sections[i];
        *start = s;
        *len = p->sections[k];
        return;
    }
    if (p->each == 0) {
        *start = 0;
        *len = 0;
        return;
    }
    /* k < count = ceil(size / each), so k * each < size. */
    *start = k * p->each;
    *len = p->size - *start < p->each ? p->size - *start : p->each;
}

static int split_plan(const struct td_op_ctx *c, const struct td_meta *m, struct pieces *p,
                      struct td_error *err)
{
    memset(p, 0, sizeof *p);
    if (m->ndim == 0)
        return td_error_set(err, TD_EINVAL, "split: cannot split a 0-d tensor");
    int rc = td__norm_dim("split", td_arg_int(c, "dim"), m->ndim, &p->dim, err);
    if (rc)
        return rc;
    p->size = m->shape[p->dim];
    bool has_size = td_arg_has(c, "split_size"), has_sec = td_arg_has(c, "sections");
    if (has_size == has_sec)
        return td_error_set(err, TD_EINVAL,
                            "split: give exactly one of split_size and sections");
    if (has_size) {
        int64_t s = td_arg_int(c, "split_size");
        if (s < 0)
            return td_error_set(err, TD_EINVAL, "split: split_size %lld is negative",
                                (long long)s);
        if (s == 0 && p->size != 0)
            return td_error_set(err, TD_EINVAL,
                                "split: split_size can be 0 only when dim %d has size 0",
                                p->dim);
        p->each = s;
        p->count = s == 0 ? 1 : p->size / s + (p->size % s != 0);
        if (p->count == 0)
            p->count = 1;
    } else {
        int n;
        p->sections = td_arg_ints(c, "sections", &n);
        if (n == 0)
            return td_error_set(err, TD_EINVAL, "split: sections is empty");
        int64_t total = 0;
        for (int i = 0; i < n; i++) {
            if (p->sections[i] < 0)
                return td_error_set(err, TD_EINVAL, "split: section %d has negative size %lld",
                                    i, (long long)p->sections[i]);
            if (p->sections[i] > p->size - total)
                return td_error_set(err, TD_EINVAL,
                                    "split: sections add up to more than dim %d of size %lld",
                                    p->dim, (long long)p->size);
            total += p->sections[i];
        }
        if (total != p->size)
            return td_error_set(err, TD_EINVAL,
                                "split: sections add up to %lld, not dim %d of size %lld",
                                (long long)total, p->dim, (long long)p->size);
        p->nsections = n;
        p->count = n;
    }
    return 0;
}

static int chunk_plan(const struct td_op_ctx *c, const struct td_meta *m, struct pieces *p,
                      struct td_error *err)
{
    memset(p, 0, sizeof *p);
    if (m->ndim == 0)
        return td_error_set(err, TD_EINVAL, "chunk: cannot chunk a 0-d tensor");
    int rc = td__norm_dim("chunk", td_arg_int(c, "dim"), m->ndim, &p->dim, err);
    if (rc)
        return rc;
    int64_t chunks = td_arg_int(c, "chunks");
    if (chunks <= 0)
        return td_error_set(err, TD_EINVAL, "chunk: chunks must be positive, got %lld",
                            (long long)chunks);
    p->size = m->shape[p->dim];
    if (p->size == 0) {
        p->each = 0;
        p->count = chunks;   /* torch: chunks empty pieces */
    } else {
        p->each = p->size / chunks + (p->size % chunks != 0);
        p->count = p->size / p->each + (p->size % p->each != 0);
    }
    return 0;
}

static int pieces_meta(const char *op, const struct td_op_ctx *c, const struct pieces *p,
                       struct td_meta *out, struct td_error *err)
{
    if (p->count != c->noutputs)
        return td_error_set(err, TD_EINVAL, "%s: makes %lld pieces but %d outputs were requested",
                            op, (long long)p->count, c->noutputs);
    for (int64_t k = 0; k < p->count; k++) {
        int64_t start, len;
        piece_range(p, k, &start, &len);
        out[k] = c->in_meta[0];
        out[k].wrapped_number = false;
        out[k].shape[p->dim] = len;
    }
    return 0;
}

static int pieces_cpu(const char *op, const struct td_op_ctx *c, const struct pieces *p,
                      struct td_tensor **out, struct td_error *err)
{
    if (p->count != c->noutputs)
        return td_error_set(err, TD_EINVAL, "%s: makes %lld pieces but %d outputs were requested",
                            op, (long long)p->count, c->noutputs);
    struct td_tensor *in = c->inputs[0];
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, in->shape, sizeof shape);
    int rc = 0;
    int64_t k;
    for (k = 0; k < p->count; k++)
        out[k] = NULL;
    for (k = 0; k < p->count; k++) {
        int64_t start, len;
        piece_range(p, k, &start, &len);
        shape[p->dim] = len;
        int64_t off = in->offset + (len > 0 ? start * in->strides[p->dim] : 0);
        rc = td_tensor_new_view(in, in->ndim, shape, in->strides, off, &out[k], err);
        if (rc)
            break;
    }
    if (rc) {
        for (int64_t j = 0; j < k; j++) {
            td_tensor_release(out[j]);
            out[j] = NULL;
        }
    }
    return rc;
}

int meta_split(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct pieces p;
    int rc = split_plan(c, &c->in_meta[0], &p, err);
    return rc ? rc : pieces_meta("split", c, &p, out, err);
}

int cpu_split(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct pieces p;
    struct td_meta m;
    td_tensor_meta(c->inputs[0], &m);
    int rc = split_plan(c, &m, &p, err);
    return rc ? rc : pieces_cpu("split", c, &p, out, err);
}

int meta_chunk(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct pieces p;
    int rc = chunk_plan(c, &c->in_meta[0], &p, err);
    return rc ? rc : pieces_meta("chunk", c, &p, out, err);
}

int cpu_chunk(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct pieces p;
    struct td_meta m;
    td_tensor_meta(c->inputs[0], &m);
    int rc = chunk_plan(c, &m, &p, err);
    return rc ? rc : pieces_cpu("chunk", c, &p, out, err);
}

/* ---------------------------------------------------------------------------------------
 * contiguous, clone.
 */
int meta_contiguous(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)err;
    /* The kernel may return the input itself; keeping its wrapped flag means the engine's
     * copy of the planned flag onto the output leaves the input unchanged. */
    *out = c->in_meta[0];
    return 0;
}

int cpu_contiguous(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return td_tensor_contiguous(c->inputs[0], c->account, out, err);
}

int meta_clone(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)err;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

int cpu_clone(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    if (td_tensor_numel(out[0]) == 0)
        return 0;
    return td_tensor_copy(out[0], c->inputs[0], err);
}

/* ---------------------------------------------------------------------------------------
 * cat, stack.
 */
static enum td_dtype inputs_result_type(const struct td_op_ctx *c)
{
    const struct td_meta *ptrs[64];
    if (c->ninputs <= 64) {
        for (int i = 0; i < c->ninputs; i++)
            ptrs[i] = &c->in_meta[i];
        return td_result_type(c->ninputs, ptrs);
    }
    /* Many inputs: fold pairwise; every input of cat/stack has the same rank tier. */
    enum td_dtype dt = c->in_meta[0].dtype;
    for (int i = 1; i < c->ninputs; i++)
        dt = td_promote_types(dt, c->in_meta[i].dtype);
    return dt;
}

int meta_cat(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *m0 = &c->in_meta[0];
    char b1[256], b2[256];
    for (int i = 0; i < c->ninputs; i++)
        if (c->in_meta[i].ndim == 0)
            return td_error_set(err, TD_EINVAL, "cat: input %d is 0-d and cannot be concatenated",
                                i);
    int d;
    int rc = td__norm_dim("cat", td_arg_int(c, "dim"), m0->ndim, &d, err);
    if (rc)
        return rc;
    int64_t total = 0;
    for (int i = 0; i < c->ninputs; i++) {
        const struct td_meta *m = &c->in_meta[i];
        bool ok = m->ndim == m0->ndim;
        for (int j = 0; ok && j < m->ndim; j++)
            if (j != d && m->shape[j] != m0->shape[j])
                ok = false;
        if (!ok)
            return td_error_set(err, TD_EINVAL,
                                "cat: input %d has shape %s, incompatible with %s on dim %d", i,
                                td__shape_str(m->shape, m->ndim, b1, sizeof b1),
                                td__shape_str(m0->shape, m0->ndim, b2, sizeof b2), d);
        if (m->shape[d] > INT64_MAX - total)
            return td_error_set(err, TD_EINVAL, "cat: result is too large");
        total += m->shape[d];
    }
    enum td_dtype dt = inputs_result_type(c);
    td__meta_set(out, dt, m0->ndim, m0->shape);
    out->shape[d] = total;
    return td__check_shape("cat", out->shape, out->ndim, dt, err);
}

int cpu_cat(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0];
    int d;
    int rc = td__norm_dim("cat", td_arg_int(c, "dim"), o->ndim, &d, err);
    if (rc)
        return rc;
    int64_t pos = 0;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, o->shape, sizeof shape);
    for (int i = 0; i < c->ninputs; i++) {
        const struct td_tensor *in = c->inputs[i];
        if (td_tensor_numel(in) == 0) {
            pos += in->shape[d];
            continue;
        }
        struct td_tensor *v = NULL;
        shape[d] = in->shape[d];
        rc = td_tensor_new_view(o, o->ndim, shape, o->strides, o->offset + pos * o->strides[d],
                                &v, err);
        if (rc)
            return rc;
        rc = td_tensor_copy(v, in, err);
        td_tensor_release(v);
        if (rc)
            return rc;
        pos += in->shape[d];
    }
    return 0;
}

int meta_stack(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *m0 = &c->in_meta[0];
    char b1[256], b2[256];
    for (int i = 1; i < c->ninputs; i++) {
        const struct td_meta *m = &c->in_meta[i];
        bool ok = m->ndim == m0->ndim;
        for (int j = 0; ok && j < m->ndim; j++)
            if (m->shape[j] != m0->shape[j])
                ok = false;
        if (!ok)
            return td_error_set(err, TD_EINVAL, "stack: input %d has shape %s, expected %s", i,
                                td__shape_str(m->shape, m->ndim, b1, sizeof b1),
                                td__shape_str(m0->shape, m0->ndim, b2, sizeof b2));
    }
    if (m0->ndim >= TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "stack: result would exceed %d dims", TD_MAX_NDIM);
    int64_t dim = td_arg_int(c, "dim");
    int nd = m0->ndim + 1;
    if (dim < -nd || dim >= nd)
        return td_error_set(err, TD_EINVAL, "stack: dim %lld out of range for %d-d result",
                            (long long)dim, nd);
    int d = (int)(dim < 0 ? dim + nd : dim);
    int64_t shape[TD_MAX_NDIM];
    for (int i = 0, j = 0; i < nd; i++)
        shape[i] = i == d ? c->ninputs : m0->shape[j++];
    enum td_dtype dt = inputs_result_type(c);
    td__meta_set(out, dt, nd, shape);
    return td__check_shape("stack", shape, nd, dt, err);
}

int cpu_stack(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0];
    if (td_tensor_numel(o) == 0)
        return 0;
    int64_t dim = td_arg_int(c, "dim");
    int d = (int)(dim < 0 ? dim + o->ndim : dim);
    struct geom g;
    geom_from_tensor(o, &g);
    int64_t step = g.strides[d];
    geom_remove_dim(&g, d);
    for (int i = 0; i < c->ninputs; i++) {
        struct td_tensor *v = NULL;
        int rc = td_tensor_new_view(o, g.ndim, g.shape, g.strides, o->offset + i * step, &v,
                                    err);
        if (rc)
            return rc;
        rc = td_tensor_copy(v, c->inputs[i], err);
        td_tensor_release(v);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * flip, roll.
 */
int meta_flip(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    bool mask[TD_MAX_NDIM];
    int n;
    const int64_t *dims = td_arg_ints(c, "dims", &n);
    int rc = dims_mask("flip", dims, n, c->in_meta[0].ndim, mask, err);
    if (rc)
        return rc;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

int cpu_flip(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *in = c->inputs[0];
    bool mask[TD_MAX_NDIM];
    int n;
    const int64_t *dims = td_arg_ints(c, "dims", &n);
    int rc = dims_mask("flip", dims, n, in->ndim, mask, err);
    if (rc)
        return rc;
    if (td_tensor_numel(in) == 0)
        return 0;
    struct geom g;
    geom_from_tensor(in, &g);
    for (int i = 0; i < g.ndim; i++) {
        if (!mask[i])
            continue;
        g.offset += (g.shape[i] - 1) * g.strides[i];
        g.strides[i] = -g.strides[i];
    }
    struct td_tensor *v = NULL;
    rc = td_tensor_new_view(in, g.ndim, g.shape, g.strides, g.offset, &v, err);
    if (rc)
        return rc;
    rc = td_tensor_copy(out[0], v, err);
    td_tensor_release(v);
    return rc;
}

static int roll_check(const struct td_op_ctx *c, int ndim, struct td_error *err)
{
    int ns, nd = 0;
    const int64_t *shifts = td_arg_ints(c, "shifts", &ns);
    (void)shifts;
    if (ns == 0)
        return td_error_set(err, TD_EINVAL, "roll: shifts is empty");
    if (!td_arg_has(c, "dims")) {
        if (ns != 1)
            return td_error_set(err, TD_EINVAL,
                                "roll: %d shifts without dims (flattened roll takes one shift)",
                                ns);
        return 0;
    }
    const int64_t *dims = td_arg_ints(c, "dims", &nd);
    if (nd != ns)
        return td_error_set(err, TD_EINVAL, "roll: %d shifts but %d dims", ns, nd);
    for (int i = 0; i < nd; i++) {
        int d;
        int rc = td__norm_dim("roll", dims[i], ndim, &d, err);
        if (rc)
            return rc;
    }
    return 0;
}

int meta_roll(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = roll_check(c, c->in_meta[0].ndim, err);
    if (rc)
        return rc;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

/* ((a % n) + n) % n without overflow for any a and n > 0. */
static int64_t mod_pos(int64_t a, int64_t n)
{
    int64_t r = a % n;
    return r < 0 ? r + n : r;
}

int cpu_roll(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *in = c->inputs[0], *o = out[0];
    int rc = roll_check(c, in->ndim, err);
    if (rc)
        return rc;
    int64_t numel = td_tensor_numel(in);
    if (numel == 0)
        return 0;
    size_t isz = td_dtype_size(in->dtype);
    int ns;
    const int64_t *shifts = td_arg_ints(c, "shifts", &ns);
    if (!td_arg_has(c, "dims")) {
        /* Flattened: out[(i + shift) mod n] = in[i] over the C-order element sequence. */
        struct td_tensor *ct = NULL;
        rc = td_tensor_contiguous(in, c->account, &ct, err);
        if (rc)
            return rc;
        int64_t s = mod_pos(shifts[0], numel);
        const char *src = td_tensor_data(ct);
        char *dst = td_tensor_data(o);
        memcpy(dst + (size_t)s * isz, src, (size_t)(numel - s) * isz);
        memcpy(dst, src + (size_t)(numel - s) * isz, (size_t)s * isz);
        td_tensor_release(ct);
        return 0;
    }
    int nd;
    const int64_t *dims = td_arg_ints(c, "dims", &nd);
    int64_t shift[TD_MAX_NDIM] = {0};
    for (int i = 0; i < nd; i++) {
        int d;
        rc = td__norm_dim("roll", dims[i], in->ndim, &d, err);
        if (rc)
            return rc;
        if (in->ndim == 0)
            continue;
        shift[d] = mod_pos(shift[d] + mod_pos(shifts[i], in->shape[d]), in->shape[d]);
    }
    int64_t idx[TD_MAX_NDIM] = {0};
    const char *src = td_tensor_data(in);
    char *dst = td_tensor_data(o);
    do {
        int64_t off = 0;
        for (int d = 0; d < in->ndim; d++) {
            int64_t j = idx[d] - shift[d];
            if (j < 0)
                j += in->shape[d];
            off += j * in->strides[d];
        }
        memcpy(dst, src + off * (int64_t)isz, isz);
        dst += isz;
    } while (idx_next(idx, in->shape, in->ndim));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * tril, triu.
 */
static int tri_meta(const char *op, const struct td_op_ctx *c, struct td_meta *out,
                    struct td_error *err)
{
    if (c->in_meta[0].ndim < 2)
        return td_error_set(err, TD_EINVAL, "%s: input must have at least 2 dims, got %d", op,
                            c->in_meta[0].ndim);
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

static int tri_cpu(const struct td_op_ctx *c, bool lower, struct td_tensor **out,
                   struct td_error *err)
{
    (void)err;
    struct td_tensor *in = c->inputs[0];
    if (td_tensor_numel(in) == 0)
        return 0;
    int64_t diag = td_arg_int(c, "diagonal");
    size_t isz = td_dtype_size(in->dtype);
    int nd = in->ndim;
    int64_t idx[TD_MAX_NDIM] = {0};
    const char *src = td_tensor_data(in);
    char *dst = td_tensor_data(out[0]);
    do {
        /* col - row cannot overflow: both are in [0, 2^63). */
        int64_t delta = idx[nd - 1] - idx[nd - 2];
        bool keep = lower ? delta <= diag : delta >= diag;
        if (keep)
            memcpy(dst, src + idx_offset(idx, in->strides, nd) * (int64_t)isz, isz);
        else
            memset(dst, 0, isz);
        dst += isz;
    } while (idx_next(idx, in->shape, nd));
    return 0;
}

int meta_tril(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return tri_meta("tril", c, out, err);
}

int cpu_tril(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return tri_cpu(c, true, out, err);
}

int meta_triu(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return tri_meta("triu", c, out, err);
}

int cpu_triu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return tri_cpu(c, false, out, err);
}
