/*
 * derivatives_shape.c - VJPs and JVPs of the shape, view and indexing ops (ops.def sections
 * "shape and views" and "indexing").
 *
 * Every op here is linear in its differentiable inputs, so each JVP is the op itself applied
 * to the tangents (same attributes), and each VJP is the op's adjoint: a view's inverse
 * (reshape back, inverse permutation), a sum over what was replicated (expand), zeros with
 * the gradient written where the elements were taken from (slice, select, narrow, gather,
 * index_select), or the pieces put back together (split, chunk, cat, stack). The adjoints
 * need only the inputs' metas (c->in_meta), plus the integer index or bool mask where one
 * decides the positions. Conventions as in derivatives_elementwise.c.
 */
#include <string.h>

#include "td_derivatives.h"

/* The JVP of every single-input op here. */
static void jvp_same(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

/* The JVP of ops whose input 1 is an index or mask: the op on (tangent, index). */
static void jvp_same_indexed(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[2] = {j->tangent_in[0], j->primal_in[1]};
    j->tangent_out[0] = same_op(b, j->c, 2, in);
}

/* dim normalised against ndim (callers pass dims the forward op accepted). */
static int64_t norm_dim(int64_t d, int ndim)
{
    if (ndim == 0)
        return 0;
    return d < 0 ? d + ndim : d;
}

/* ---- reshape, view, flatten, squeeze, unsqueeze: reshape back ---- */

static void vjp_reshape_back(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *m = &v->c->in_meta[0];
    if (v->needs[0])
        v->grad_in[0] = td_gb_reshape(b, v->grad[0], m->ndim, m->shape);
}

/* reshape rather than the op itself: a tangent need not have strides that allow a view. */
static void jvp_reshape_fwd(struct td_gb *b, struct td_jvp *j)
{
    const struct td_tensor *o = j->primal_out[0];
    j->tangent_out[0] = td_gb_reshape(b, j->tangent_in[0], o->ndim, o->shape);
}

const struct td_deriv td_deriv_reshape = {0, 0, vjp_reshape_back, jvp_reshape_fwd};
const struct td_deriv td_deriv_view = {0, 0, vjp_reshape_back, jvp_reshape_fwd};
const struct td_deriv td_deriv_flatten = {0, 0, vjp_reshape_back, jvp_reshape_fwd};
const struct td_deriv td_deriv_squeeze = {0, 0, vjp_reshape_back, jvp_reshape_fwd};
const struct td_deriv td_deriv_unsqueeze = {0, 0, vjp_reshape_back, jvp_reshape_fwd};

/* ---- contiguous, clone: identity ---- */

static void vjp_identity(struct td_gb *b, struct td_vjp *v)
{
    (void)b;
    if (v->needs[0])
        v->grad_in[0] = v->grad[0];
}

const struct td_deriv td_deriv_contiguous = {0, 0, vjp_identity, jvp_same};
const struct td_deriv td_deriv_clone = {0, 0, vjp_identity, jvp_same};

/* ---- permute, transpose ---- */

static void vjp_permute(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    int n, nd = v->c->in_meta[0].ndim;
    const int64_t *dims = td_arg_ints(v->c, "dims", &n);
    int64_t inv[TD_MAX_NDIM];
    for (int i = 0; i < n && i < TD_MAX_NDIM; i++)
        inv[norm_dim(dims[i], nd)] = i;
    struct td_attr_arg a = td_a_ints("dims", n, inv);
    v->grad_in[0] = td_gb_op(b, TD_OP_permute, 1, &v->grad[0], 1, &a);
}

const struct td_deriv td_deriv_permute = {0, 0, vjp_permute, jvp_same};

/* A transposition is its own inverse; flip too; tril/triu are projections. */
static void vjp_self_adjoint(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = same_op(b, v->c, 1, v->grad);
}

const struct td_deriv td_deriv_transpose = {0, 0, vjp_self_adjoint, jvp_same};
const struct td_deriv td_deriv_flip = {0, 0, vjp_self_adjoint, jvp_same};
const struct td_deriv td_deriv_tril = {0, 0, vjp_self_adjoint, jvp_same};
const struct td_deriv td_deriv_triu = {0, 0, vjp_self_adjoint, jvp_same};

/* ---- expand, broadcast_to: sum over the replicated dims ---- */

static void vjp_expand(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = td_gb_sum_to(b, v->grad[0], &v->c->in_meta[0]);
}

const struct td_deriv td_deriv_expand = {0, 0, vjp_expand, jvp_same};
const struct td_deriv td_deriv_broadcast_to = {0, 0, vjp_expand, jvp_same};

/* ---- slice, select, narrow: zeros with g written at the taken positions ---- */

/* Zeros of m's shape (g's dtype) with g (m's shape except len along dim) written at
 * positions start, start + step, ... along dim: a scatter with an arange index. */
static struct td_tensor *embed(struct td_gb *b, struct td_tensor *g, const struct td_meta *m,
                               int64_t dim, int64_t start, int64_t step, int64_t len)
{
    if (!g || len == 0 || td_tensor_numel(g) == 0)
        return NULL;
    struct td_attr_arg ar[4] = {
        td_a_scalar_i("start", start),
        td_a_scalar_i("end", start + (len - 1) * step + (step > 0 ? 1 : -1)),
        td_a_scalar_i("step", step), TD_A_DTYPE("dtype", TD_INT64)};
    struct td_tensor *idx = td_gb_op(b, TD_OP_arange, 0, NULL, 4, ar);
    int64_t shape[TD_MAX_NDIM];
    for (int d = 0; d < g->ndim; d++)
        shape[d] = d == dim ? len : 1;
    idx = td_gb_expand(b, td_gb_reshape(b, idx, g->ndim, shape), g->ndim, g->shape);
    struct td_meta zm;
    td__meta_set(&zm, g->dtype, m->ndim, m->shape);
    struct td_tensor *in[3] = {td_gb_zeros(b, &zm), idx, g};
    struct td_attr_arg a = TD_A_INT("dim", dim);
    if (!in[0] || !in[1])
        return NULL;
    return td_gb_op(b, TD_OP_scatter, 3, in, 1, &a);
}

/* Python's slice.indices for a dim of size n (as the slice kernel computes it). */
static void slice_range(int64_t n, bool has_start, int64_t start, bool has_end, int64_t end,
                        int64_t step, int64_t *start_out, int64_t *len_out)
{
    int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? n : n - 1;
    if (!has_start) {
        start = step > 0 ? lower : upper;
    } else {
        if (start < 0)
            start += n;
        start = start < lower ? lower : (start > upper ? upper : start);
    }
    if (!has_end) {
        end = step > 0 ? upper : lower;
    } else {
        if (end < 0)
            end += n;
        end = end < lower ? lower : (end > upper ? upper : end);
    }
    uint64_t len = 0;
    if (step > 0 && end > start)
        len = ((uint64_t)(end - start) - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > end)
        len = ((uint64_t)(start - end) - 1) / ((uint64_t)0 - (uint64_t)step) + 1;
    *start_out = start;
    *len_out = (int64_t)len;
}

static void vjp_slice(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_op_ctx *c = v->c;
    const struct td_meta *m = &c->in_meta[0];
    int64_t d = norm_dim(td_arg_int(c, "dim"), m->ndim), step = td_arg_int(c, "step");
    int64_t start, len;
    slice_range(m->shape[d], td_arg_has(c, "start"), td_arg_int(c, "start"), td_arg_has(c, "end"),
                td_arg_int(c, "end"), step, &start, &len);
    v->grad_in[0] = embed(b, v->grad[0], m, d, start, step, len);
}

const struct td_deriv td_deriv_slice = {0, 0, vjp_slice, jvp_same};

/* select (g, with dim put back, at position index) and narrow (g at start .. start +
 * length): the same embedding with one step. */
static void vjp_select_narrow(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_op_ctx *c = v->c;
    const struct td_meta *m = &c->in_meta[0];
    bool select = c->op == TD_OP_select;
    int64_t d = norm_dim(td_arg_int(c, "dim"), m->ndim);
    int64_t pos = td_arg_int(c, select ? "index" : "start");
    if (pos < 0)
        pos += m->shape[d];
    struct td_tensor *g = select ? unsqueeze(b, v->grad[0], d) : v->grad[0];
    v->grad_in[0] = embed(b, g, m, d, pos, 1, select ? 1 : td_arg_int(c, "length"));
}

const struct td_deriv td_deriv_select = {0, 0, vjp_select_narrow, jvp_same};
const struct td_deriv td_deriv_narrow = {0, 0, vjp_select_narrow, jvp_same};

/* ---- cat, stack, split, chunk ---- */

static void vjp_cat(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int64_t d = norm_dim(td_arg_int(c, "dim"), c->in_meta[0].ndim), off = 0;
    for (int i = 0; i < c->ninputs; i++) {
        int64_t len = c->in_meta[i].shape[d];
        if (v->needs[i] && len > 0)
            v->grad_in[i] = narrow(b, v->grad[0], d, off, len);
        off += len;
    }
}

static void vjp_stack(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int64_t d = norm_dim(td_arg_int(c, "dim"), c->in_meta[0].ndim + 1);
    for (int i = 0; i < c->ninputs; i++) {
        if (!v->needs[i])
            continue;
        struct td_attr_arg a[2] = {TD_A_INT("dim", d), TD_A_INT("index", i)};
        v->grad_in[i] = td_gb_op(b, TD_OP_select, 1, &v->grad[0], 2, a);
    }
}

/* The op on every input's tangent; an integer or bool input has none and contributes
 * zeros (the result is promoted like the forward's). */
static void jvp_join(struct td_gb *b, struct td_jvp *j)
{
    int n = j->c->ninputs;
    if (n > 64) {
        td_gb_fail(b, TD_EUNIMPL, "%s: forward-mode AD supports at most 64 inputs",
                   j->c->info->name);
        return;
    }
    struct td_tensor *t[64];
    for (int i = 0; i < n; i++)
        t[i] = j->tangent_in[i] ? j->tangent_in[i] : td_gb_zeros_like(b, j->primal_in[i]);
    if (td_gb_ok(b))
        j->tangent_out[0] = same_op(b, j->c, n, t);
}

const struct td_deriv td_deriv_cat = {0, 0, vjp_cat, jvp_join};
const struct td_deriv td_deriv_stack = {0, 0, vjp_stack, jvp_join};

/* split, chunk: the pieces' gradients concatenated back along dim. */
static void vjp_pieces(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    if (!v->needs[0])
        return;
    int n = c->noutputs;
    if (n > 64) {
        td_gb_fail(b, TD_EUNIMPL, "%s: backward supports at most 64 pieces", c->info->name);
        return;
    }
    struct td_tensor *g[64];
    for (int k = 0; k < n; k++)
        g[k] = v->grad[k] ? v->grad[k] : td_gb_zeros(b, &v->out_meta[k]);
    struct td_attr_arg a = TD_A_INT("dim", norm_dim(td_arg_int(c, "dim"), c->in_meta[0].ndim));
    if (td_gb_ok(b))
        v->grad_in[0] = td_gb_op(b, TD_OP_cat, n, g, 1, &a);
}

static void jvp_pieces(struct td_gb *b, struct td_jvp *j)
{
    same_opn(b, j->c, 1, j->tangent_in, j->c->noutputs, j->tangent_out);
}

const struct td_deriv td_deriv_split = {0, 0, vjp_pieces, jvp_pieces};
const struct td_deriv td_deriv_chunk = {0, 0, vjp_pieces, jvp_pieces};

/* ---- roll: roll back ---- */

static void vjp_roll(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_op_ctx *c = v->c;
    const struct td_meta *m = &c->in_meta[0];
    int ns, nd = 0;
    const int64_t *shifts = td_arg_ints(c, "shifts", &ns);
    const int64_t *dims = td_arg_has(c, "dims") ? td_arg_ints(c, "dims", &nd) : NULL;
    int64_t back[TD_MAX_INTS];
    struct td_attr_arg a[2];
    int na = 0;
    for (int i = 0; i < ns && i < TD_MAX_INTS; i++) {
        int64_t n = dims ? (m->ndim ? m->shape[norm_dim(dims[i], m->ndim)] : 1)
                         : td_shape_numel(m->shape, m->ndim);
        back[i] = n > 0 ? -(shifts[i] % n) : 0; /* |shift % n| < n: no overflow */
    }
    a[na++] = td_a_ints("shifts", ns, back);
    if (dims)
        a[na++] = td_a_ints("dims", nd, dims);
    v->grad_in[0] = td_gb_op(b, TD_OP_roll, 1, &v->grad[0], na, a);
}

const struct td_deriv td_deriv_roll = {0, 0, vjp_roll, jvp_same};

/* ---- gather, scatter, index_select, masked_fill ---- */

static struct td_tensor *scatter_add_into_zeros(struct td_gb *b, const struct td_meta *m,
                                                int64_t dim, struct td_tensor *idx,
                                                struct td_tensor *g)
{
    if (!g)
        return NULL;
    struct td_meta zm;
    td__meta_set(&zm, g->dtype, m->ndim, m->shape);
    struct td_tensor *in[3] = {td_gb_zeros(b, &zm), idx, g};
    struct td_attr_arg a[2] = {TD_A_INT("dim", dim), TD_A_STR("reduce", "add")};
    if (!in[0] || !idx)
        return NULL;
    return td_gb_op(b, TD_OP_scatter, 3, in, 2, a);
}

/* gather: every output element came from one input position; repeated positions add up. */
static void vjp_gather(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    v->grad_in[0] =
        scatter_add_into_zeros(b, &v->c->in_meta[0], td_arg_int(v->c, "dim"), IN(1), v->grad[0]);
}

const struct td_deriv td_deriv_gather = {0x2, 0, vjp_gather, jvp_same_indexed};

/* x padded with zeros at the end of each dim up to shape (x no larger anywhere). */
static struct td_tensor *pad_to(struct td_gb *b, struct td_tensor *x, const int64_t *shape)
{
    for (int d = 0; x && d < x->ndim; d++) {
        if (x->shape[d] >= shape[d])
            continue;
        struct td_meta zm;
        td__meta_set(&zm, x->dtype, x->ndim, x->shape);
        zm.shape[d] = shape[d] - x->shape[d];
        struct td_tensor *in[2] = {x, td_gb_zeros(b, &zm)};
        struct td_attr_arg a = TD_A_INT("dim", d);
        if (!in[1])
            return NULL;
        x = td_gb_op(b, TD_OP_cat, 2, in, 1, &a);
    }
    return x;
}

static bool scatter_multiplies(const struct td_op_ctx *c)
{
    const char *r = td_arg_str(c, "reduce");
    return r && strcmp(r, "multiply") == 0;
}

static struct td_tensor *scatter4(struct td_gb *b, struct td_tensor *x, struct td_tensor *idx,
                                  struct td_tensor *src, int64_t dim, const char *reduce)
{
    struct td_tensor *in[3] = {x, idx, src};
    struct td_attr_arg a[2] = {TD_A_INT("dim", dim), TD_A_STR("reduce", reduce)};
    return td_gb_op(b, TD_OP_scatter, 3, in, reduce ? 2 : 1, a);
}

static struct td_tensor *gather2(struct td_gb *b, struct td_tensor *x, struct td_tensor *idx,
                                 int64_t dim)
{
    struct td_tensor *in[2] = {x, idx};
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, TD_OP_gather, 2, in, 1, &a);
}

/* The part of src that scatter reads: its leading corner of index's shape. */
static struct td_tensor *crop_to(struct td_gb *b, struct td_tensor *x, const struct td_tensor *idx)
{
    for (int d = 0; x && idx && d < x->ndim; d++) {
        if (x->shape[d] == idx->shape[d])
            continue;
        x = narrow(b, x, d, 0, idx->shape[d]);
    }
    return x;
}

/* scatter with reduce="multiply": out[p] = x[p] * P[p], P[p] the product of the src elements
 * sent to p. Sets *prod = P and *excl[k] = the product of the other src elements sent to the
 * same place as src element k (index shape). Without zeros excl = P[p] / src_k, exact and
 * differentiable; with zeros (counted per destination) excl is exact in value but not
 * differentiable at those zeros, so that case fails under grad mode. */
static void scatter_mul_parts(struct td_gb *b, struct td_tensor *x, struct td_tensor *idx,
                              struct td_tensor *srcu, int64_t dim, struct td_tensor **prod,
                              struct td_tensor **excl)
{
    struct td_tensor *ones = td_gb_ones_like(b, x);
    *prod = scatter4(b, ones, idx, srcu, dim, "multiply");
    *excl = NULL;
    struct td_tensor *zero = td_gb_binary(b, TD_OP_eq, srcu, td_gb_scalar(b, 0));
    struct td_tensor *any = td_gb_unary(b, TD_OP_any, zero);
    if (!any)
        return;
    if (!td__load_bool(td_tensor_data(any), any->dtype)) {
        *excl = td_gb_binary(b, TD_OP_div, gather2(b, *prod, idx, dim), srcu);
        return;
    }
    if (td_gb_grad_mode(b)) {
        td_gb_fail(b, TD_EUNIMPL,
                   "scatter: the derivative of reduce=\"multiply\" is not "
                   "differentiable again where src has zeros");
        return;
    }
    struct td_meta zm;
    td__meta_set(&zm, TD_INT64, x->ndim, x->shape);
    struct td_tensor *nzero =
        scatter4(b, td_gb_zeros(b, &zm), idx, td_gb_cast(b, zero, TD_INT64), dim, "add");
    struct td_tensor *nz_at = gather2(b, nzero, idx, dim);
    struct td_tensor *s1 = where3(b, zero, td_gb_scalar(b, 1), srcu);
    struct td_tensor *pnz = gather2(b, scatter4(b, ones, idx, s1, dim, "multiply"), idx, dim);
    struct td_tensor *none = td_gb_binary(b, TD_OP_eq, nz_at, td_gb_scalar(b, 0));
    struct td_tensor *one = td_gb_binary(b, TD_OP_logical_and, zero,
                                         td_gb_binary(b, TD_OP_eq, nz_at, td_gb_scalar(b, 1)));
    *excl = where3(b, none, td_gb_binary(b, TD_OP_div, pnz, s1),
                   where3(b, one, pnz, td_gb_scalar(b, 0)));
}

/* scatter(x, index, src): without reduce, x's gradient is g with the overwritten positions
 * zeroed, and src's is g gathered at index (src positions beyond index's extent were not
 * used: zeros). With reduce="add", x's gradient is g itself. With "multiply", x's is
 * g * conj(P) and src element k's is g[p] * conj(x[p] * excl_k) (scatter_mul_parts). */
static void vjp_scatter(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    struct td_tensor *g = v->grad[0];
    const char *reduce = td_arg_str(c, "reduce");
    struct td_tensor *idx = IN(1);
    int64_t dim = td_arg_int(c, "dim");
    if (!idx || !g)
        return;
    if (scatter_multiplies(c)) {
        struct td_tensor *x = IN(0), *prod, *excl;
        scatter_mul_parts(b, x, idx, crop_to(b, IN(2), idx), dim, &prod, &excl);
        if (v->needs[0])
            v->grad_in[0] = td_gb_binary(b, TD_OP_mul, g, td_gb_conj(b, prod));
        if (v->needs[2]) {
            struct td_tensor *gx =
                gather2(b, td_gb_binary(b, TD_OP_mul, g, td_gb_conj(b, x)), idx, dim);
            struct td_tensor *gs = td_gb_binary(b, TD_OP_mul, gx, td_gb_conj(b, excl));
            v->grad_in[2] = pad_to(b, gs, c->in_meta[2].shape);
        }
        return;
    }
    if (v->needs[0]) {
        if (reduce) {
            v->grad_in[0] = g;
        } else {
            struct td_meta zm;
            td__meta_set(&zm, g->dtype, idx->ndim, idx->shape);
            v->grad_in[0] = scatter4(b, g, idx, td_gb_zeros(b, &zm), dim, NULL);
        }
    }
    if (v->needs[2])
        v->grad_in[2] = pad_to(b, gather2(b, g, idx, dim), c->in_meta[2].shape);
}

/* Linear without reduce and with "add": the op on the tangents. With "multiply":
 * tx * P + x * (sum over the src elements sent to p of tsrc_k * excl_k). */
static void jvp_scatter(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[3] = {j->tangent_in[0], j->primal_in[1], j->tangent_in[2]};
    if (!scatter_multiplies(j->c)) {
        j->tangent_out[0] = same_op(b, j->c, 3, in);
        return;
    }
    struct td_tensor *x = j->primal_in[0], *idx = j->primal_in[1], *prod, *excl;
    int64_t dim = td_arg_int(j->c, "dim");
    scatter_mul_parts(b, x, idx, crop_to(b, j->primal_in[2], idx), dim, &prod, &excl);
    struct td_tensor *ts = td_gb_binary(b, TD_OP_mul, crop_to(b, in[2], idx), excl);
    struct td_tensor *sum = scatter4(b, td_gb_zeros_like(b, x), idx, ts, dim, "add");
    j->tangent_out[0] = td_gb_binary(b, TD_OP_add, td_gb_binary(b, TD_OP_mul, in[0], prod),
                                     td_gb_binary(b, TD_OP_mul, x, sum));
}

/* x and src are saved for reduce="multiply"; the other modes read only index (a saved
 * tensor is version-checked only when read). */
const struct td_deriv td_deriv_scatter = {0x7, 0, vjp_scatter, jvp_scatter};

/* index_select: scatter-add of g into zeros along dim, at the selected positions. */
static void vjp_index_select(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *m = &v->c->in_meta[0];
    struct td_tensor *g = v->grad[0];
    if (m->ndim == 0) {
        v->grad_in[0] = g;
        return;
    }
    int64_t d = norm_dim(td_arg_int(v->c, "dim"), m->ndim);
    struct td_tensor *idx = td_gb_cast(b, IN(1), TD_INT64);
    int64_t shape[TD_MAX_NDIM];
    for (int k = 0; k < m->ndim; k++)
        shape[k] = k == d ? (idx ? td_tensor_numel(idx) : 0) : 1;
    idx = td_gb_reshape(b, idx, m->ndim, shape);
    if (g)
        idx = td_gb_expand(b, idx, g->ndim, g->shape);
    v->grad_in[0] = scatter_add_into_zeros(b, m, d, idx, g);
}

const struct td_deriv td_deriv_index_select = {0x2, 0, vjp_index_select, jvp_same_indexed};

/* masked_fill: the filled positions no longer depend on x; value is a constant. */
static void vjp_masked_fill(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *in[3] = {IN(1), td_gb_scalar(b, 0), v->grad[0]};
    v->grad_in[0] = td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
}

static void jvp_masked_fill(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[2] = {j->tangent_in[0], j->primal_in[1]};
    struct td_attr_arg a = td_a_scalar_i("value", 0);
    j->tangent_out[0] = td_gb_op(b, TD_OP_masked_fill, 2, in, 1, &a);
}

const struct td_deriv td_deriv_masked_fill = {0x2, 0, vjp_masked_fill, jvp_masked_fill};
