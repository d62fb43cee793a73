/*
 * derivatives_reduce.c - VJPs and JVPs of reductions, scans and matmul.
 * Conventions as in derivatives_elementwise.c: formulas use td_gb_* calls only, so with
 * create_graph their results are differentiable again; complex inputs follow PyTorch (a
 * holomorphic map's VJP multiplies by the conjugate derivative).
 */
#include <string.h>

#include "td_derivatives.h"


/* The forward's output as a JVP formula may use it. primal_out carries no autograd history
 * while the JVP runs (the node is recorded after it), so a JVP that must itself be
 * differentiable (computed under grad mode: forward over reverse) recomputes the output
 * from the inputs instead. */
static struct td_tensor *jvp_out(struct td_gb *b, const struct td_jvp *j)
{
    if (!td_gb_grad_mode(b))
        return j->primal_out[0];
    return same_op(b, j->c, j->c->ninputs, j->primal_in);
}

/* The dims a reduction reduced (normalised, ascending) and whether it kept them. No dim
 * attribute, or an empty list, means every dim (as the kernels read it). */
static int reduced_dims(const struct td_op_ctx *c, int64_t *dims, bool *keepdim)
{
    int nd = c->in_meta[0].ndim, n = 0;
    int nlist = 0;
    const int64_t *list = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &nlist) : NULL;
    *keepdim = td_arg_bool(c, "keepdim");
    if (!list || nlist == 0) {
        for (int d = 0; d < nd; d++)
            dims[n++] = d;
        return n;
    }
    bool mark[TD_MAX_NDIM] = {0};
    for (int k = 0; k < nlist; k++) {
        int64_t d = list[k] < 0 ? list[k] + nd : list[k];
        if (nd == 0 && (list[k] == 0 || list[k] == -1))
            continue;
        if (d >= 0 && d < nd)
            mark[d] = true;
    }
    for (int d = 0; d < nd; d++)
        if (mark[d])
            dims[n++] = d;
    return n;
}

/* Number of elements each output of the reduction combines. */
static int64_t reduced_count(const struct td_op_ctx *c)
{
    int64_t dims[TD_MAX_NDIM], r = 1;
    bool keep;
    int n = reduced_dims(c, dims, &keep);
    for (int k = 0; k < n; k++)
        r *= c->in_meta[0].shape[dims[k]];
    return r;
}

/* g reshaped so that it broadcasts against the reduction's input (the reduced dims
 * re-inserted with size 1). */
struct td_tensor *td__grad_unreduce(struct td_gb *b, const struct td_op_ctx *c,
                                    struct td_tensor *g);
struct td_tensor *td__grad_unreduce(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *g)
{
    int64_t dims[TD_MAX_NDIM], shape[TD_MAX_NDIM];
    bool keep;
    int n = reduced_dims(c, dims, &keep);
    const struct td_meta *m = &c->in_meta[0];
    if (keep || !g)
        return g;
    memcpy(shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
    for (int k = 0; k < n; k++)
        shape[dims[k]] = 1;
    return td_gb_reshape(b, g, m->ndim, shape);
}

/* sum of x over the reduction's dims, keeping them (shape broadcastable to the input). */
static struct td_tensor *sum_keep(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x,
                                  bool keepdim)
{
    int64_t dims[TD_MAX_NDIM];
    bool keep;
    int n = reduced_dims(c, dims, &keep);
    if (n == 0)
        return x;
    return td_gb_sum(b, x, n, dims, keepdim);
}

/* x reshaped to the reduction's output shape (after a keepdim computation). */
static struct td_tensor *to_out_shape(struct td_gb *b, struct td_tensor *x,
                                      const struct td_tensor *out)
{
    if (!x || !out)
        return NULL;
    if (x->ndim == out->ndim &&
        memcmp(x->shape, out->shape, sizeof(int64_t) * (size_t)out->ndim) == 0)
        return x;
    return td_gb_reshape(b, x, out->ndim, out->shape);
}

/* ---- sum, mean ---- */

/* sum: the gradient broadcasts back over the reduced dims. */
static void vjp_sum(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *m = &v->c->in_meta[0];
    struct td_tensor *g = td__grad_unreduce(b, v->c, v->grad[0]);
    v->grad_in[0] = td_gb_expand(b, g, m->ndim, m->shape);
}

/* sum is linear: the tangent is summed the same way. */
static void jvp_sum(struct td_gb *b, struct td_jvp *j)
{
    struct td_attr_arg a[3];
    int na = 0;
    int nd = 0;
    const int64_t *dims = td_arg_has(j->c, "dim") ? td_arg_ints(j->c, "dim", &nd) : NULL;
    if (dims)
        a[na++] = td_a_ints("dim", nd, dims);
    a[na++] = TD_A_BOOL("keepdim", td_arg_bool(j->c, "keepdim"));
    if (td_arg_has(j->c, "dtype"))
        a[na++] = TD_A_DTYPE("dtype", td_arg_dtype(j->c, "dtype"));
    j->tangent_out[0] = td_gb_op(b, TD_OP_sum, 1, &j->tangent_in[0], na, a);
}

const struct td_deriv td_deriv_sum = {0, 0, vjp_sum, jvp_sum};

/* mean: g / N broadcast back, N the count of elements per output (an empty reduction has an
 * empty input, whose gradient is empty). */
static void vjp_mean(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *m = &v->c->in_meta[0];
    int64_t n = reduced_count(v->c);
    if (n == 0)
        return;
    struct td_tensor *g = td_gb_scale(b, td__grad_unreduce(b, v->c, v->grad[0]), 1.0 / (double)n);
    v->grad_in[0] = td_gb_expand(b, g, m->ndim, m->shape);
}

static void jvp_mean(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

const struct td_deriv td_deriv_mean = {0, 0, vjp_mean, jvp_mean};

/* ---- prod ---- */

/* The reduction's input seen as rows: the kept dims first, the reduced ones merged into one
 * last dim of length r. */
struct rows {
    int ndim;
    int nkeep;
    int64_t perm[TD_MAX_NDIM], inv[TD_MAX_NDIM];
    bool identity;
    int64_t pshape[TD_MAX_NDIM]; /* permuted input shape */
    int64_t rshape[TD_MAX_NDIM]; /* [kept..., r] */
    int64_t gshape[TD_MAX_NDIM]; /* [kept..., 1]: the output as a column */
    int64_t r;
};

static void rows_plan(const struct td_op_ctx *c, struct rows *L)
{
    const struct td_meta *m = &c->in_meta[0];
    int64_t dims[TD_MAX_NDIM];
    bool keep, red[TD_MAX_NDIM] = {0};
    int n = reduced_dims(c, dims, &keep), k = 0;
    for (int i = 0; i < n; i++)
        red[dims[i]] = true;
    L->ndim = m->ndim;
    L->r = 1;
    for (int d = 0; d < m->ndim; d++)
        if (!red[d])
            L->perm[k++] = d;
    L->nkeep = k;
    for (int d = 0; d < m->ndim; d++)
        if (red[d]) {
            L->perm[k++] = d;
            L->r *= m->shape[d];
        }
    L->identity = true;
    for (int i = 0; i < m->ndim; i++) {
        L->inv[L->perm[i]] = i;
        L->pshape[i] = m->shape[L->perm[i]];
        if (L->perm[i] != i)
            L->identity = false;
    }
    for (int i = 0; i < L->nkeep; i++)
        L->rshape[i] = L->gshape[i] = L->pshape[i];
    L->rshape[L->nkeep] = L->r;
    L->gshape[L->nkeep] = 1;
}

static struct td_tensor *to_rows(struct td_gb *b, const struct rows *L, struct td_tensor *x)
{
    if (!L->identity)
        x = permute(b, x, L->ndim, L->perm);
    return td_gb_reshape(b, x, L->nkeep + 1, L->rshape);
}

static struct td_tensor *from_rows(struct td_gb *b, const struct rows *L, struct td_tensor *x)
{
    x = td_gb_reshape(b, x, L->ndim, L->pshape);
    return L->identity ? x : permute(b, x, L->ndim, L->inv);
}

static struct td_tensor *flip(struct td_gb *b, struct td_tensor *x, int64_t dim)
{
    struct td_attr_arg a = td_a_ints("dims", 1, &dim);
    return td_gb_op(b, TD_OP_flip, 1, &x, 1, &a);
}

static struct td_tensor *scan(struct td_gb *b, enum td_op op, struct td_tensor *x, int64_t dim)
{
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, op, 1, &x, 1, &a);
}

/* x shifted by one along dim (length n >= 1): [fill, x_0, ..., x_{n-2}], where fill is ones
 * of x's dtype. */
static struct td_tensor *shift_in_ones(struct td_gb *b, struct td_tensor *x, int64_t dim, int64_t n)
{
    struct td_tensor *one = td_gb_ones_like(b, narrow(b, x, dim, 0, 1));
    if (n == 1)
        return one;
    return cat2(b, one, narrow(b, x, dim, 0, n - 1), dim);
}

/* For rows x ([..., r], r >= 1): out[..., k] = product of x[..., j] over j != k, as the
 * product of an exclusive prefix and an exclusive suffix product. Exact whatever the zeros,
 * and built of differentiable ops. */
static struct td_tensor *prod_of_others(struct td_gb *b, struct td_tensor *x, int64_t r)
{
    if (!x)
        return NULL;
    int64_t last = x->ndim - 1;
    if (r == 1)
        return td_gb_ones_like(b, x);
    struct td_tensor *left = shift_in_ones(b, scan(b, TD_OP_cumprod, x, last), last, r);
    struct td_tensor *rf = scan(b, TD_OP_cumprod, flip(b, x, last), last);
    struct td_tensor *right = flip(b, shift_in_ones(b, rf, last, r), last);
    return MUL(left, right);
}

/* prod: d out / d x_k = product of the others (no division, so zeros are exact). */
static void vjp_prod(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct rows L;
    rows_plan(v->c, &L);
    if (L.r == 0 || td_shape_numel(v->c->in_meta[0].shape, v->c->in_meta[0].ndim) == 0)
        return;
    struct td_tensor *others = prod_of_others(b, to_rows(b, &L, IN(0)), L.r);
    struct td_tensor *g = td_gb_reshape(b, v->grad[0], L.nkeep + 1, L.gshape);
    v->grad_in[0] = from_rows(b, &L, MUL(g, CONJ(others)));
}

static void jvp_prod(struct td_gb *b, struct td_jvp *j)
{
    struct rows L;
    rows_plan(j->c, &L);
    if (L.r == 0 || td_tensor_numel(j->primal_in[0]) == 0)
        return;
    struct td_tensor *others = prod_of_others(b, to_rows(b, &L, j->primal_in[0]), L.r);
    struct td_tensor *t = to_rows(b, &L, j->tangent_in[0]);
    int64_t last = L.nkeep;
    struct td_tensor *s = td_gb_sum(b, MUL(t, others), 1, &last, false);
    j->tangent_out[0] = to_out_shape(b, s, j->primal_out[0]);
}

const struct td_deriv td_deriv_prod = {0x1, 0, vjp_prod, jvp_prod};

/* ---- amax, amin: the gradient is shared evenly among the tied extrema (PyTorch) ---- */

/* (x == out) as x's dtype, and the number of ties per output (keepdim shape). */
static void ext_mask(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x,
                     struct td_tensor *out, struct td_tensor **mask, struct td_tensor **count)
{
    struct td_tensor *eq = td_gb_binary(b, TD_OP_eq, x, td__grad_unreduce(b, c, out));
    *mask = td_gb_cast(b, eq, x ? x->dtype : TD_FLOAT32);
    *count = sum_keep(b, c, *mask, true);
}

static void vjp_ext(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *mask, *count;
    ext_mask(b, v->c, IN(0), OUT(0), &mask, &count);
    struct td_tensor *g = td__grad_unreduce(b, v->c, v->grad[0]);
    v->grad_in[0] = MUL(DIV(g, count), mask);
}

static void jvp_ext(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *mask, *count;
    ext_mask(b, j->c, j->primal_in[0], j->primal_out[0], &mask, &count);
    struct td_tensor *s = sum_keep(b, j->c, MUL(j->tangent_in[0], mask), true);
    j->tangent_out[0] = to_out_shape(b, DIV(s, count), j->primal_out[0]);
}

const struct td_deriv td_deriv_amax = {0x1, 0x1, vjp_ext, jvp_ext};
const struct td_deriv td_deriv_amin = {0x1, 0x1, vjp_ext, jvp_ext};

/* ---- var, std ---- */

/* N - correction, clamped at 0 like the kernel. */
static double var_divisor(const struct td_op_ctx *c)
{
    double div = (double)reduced_count(c) - td_arg_float(c, "correction");
    return div < 0 ? 0 : div;
}

/* x - mean(x) over the reduction's dims (kept). */
static struct td_tensor *centered(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x)
{
    int64_t dims[TD_MAX_NDIM];
    bool keep;
    int n = reduced_dims(c, dims, &keep);
    if (n == 0)
        return td_gb_zeros_like(b, x);
    struct td_attr_arg a[2] = {td_a_ints("dim", n, dims), TD_A_BOOL("keepdim", true)};
    struct td_tensor *mu = td_gb_op(b, TD_OP_mean, 1, &x, 2, a);
    return SUB(x, mu);
}

/* var = sum |x - mean|^2 / D: grad = g * 2 (x - mean) / D (the mean's own dependence on x
 * sums to zero). For complex x this is dL/dre + i dL/dim, as in PyTorch. */
static void vjp_var(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *g = td__grad_unreduce(b, v->c, v->grad[0]);
    v->grad_in[0] = MUL(td_gb_scale(b, g, 2.0 / var_divisor(v->c)), centered(b, v->c, IN(0)));
}

/* Tangent of var: 2 / D * sum Re(conj(x - mean) * t). */
static struct td_tensor *var_tangent(struct td_gb *b, const struct td_op_ctx *c,
                                     struct td_tensor *x, struct td_tensor *t)
{
    struct td_tensor *p = MUL(CONJ(centered(b, c, x)), t);
    if (p && td_dtype_is_complex(p->dtype))
        p = td_gb_unary(b, TD_OP_real, p);
    bool keep = td_arg_bool(c, "keepdim");
    return td_gb_scale(b, sum_keep(b, c, p, keep), 2.0 / var_divisor(c));
}

static void jvp_var(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *t = var_tangent(b, j->c, j->primal_in[0], j->tangent_in[0]);
    j->tangent_out[0] = to_out_shape(b, t, j->primal_out[0]);
}

const struct td_deriv td_deriv_var = {0x1, 0, vjp_var, jvp_var};

/* x / std with 0 where std is 0 (PyTorch: there std is not differentiable, or, for one
 * element with correction 0, constant). */
static struct td_tensor *over_std(struct td_gb *b, struct td_tensor *x, struct td_tensor *sd)
{
    struct td_tensor *zero = td_gb_binary(b, TD_OP_eq, sd, td_gb_scalar(b, 0));
    struct td_tensor *in[3] = {zero, td_gb_scalar(b, 0), DIV(x, sd)};
    return td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
}

/* std = sqrt(var): grad = g * (x - mean) / (D * std). */
static void vjp_std(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *g =
        over_std(b, td__grad_unreduce(b, v->c, v->grad[0]), td__grad_unreduce(b, v->c, OUT(0)));
    v->grad_in[0] = MUL(td_gb_scale(b, g, 1.0 / var_divisor(v->c)), centered(b, v->c, IN(0)));
}

static void jvp_std(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *t = var_tangent(b, j->c, j->primal_in[0], j->tangent_in[0]);
    t = to_out_shape(b, t, j->primal_out[0]);
    j->tangent_out[0] = over_std(b, td_gb_scale(b, t, 0.5), jvp_out(b, j));
}

const struct td_deriv td_deriv_std = {0x1, 0x1, vjp_std, jvp_std};

/* ---- logsumexp: softmax weights exp(x - out) ---- */

static void vjp_logsumexp(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *w = td_gb_unary(b, TD_OP_exp, SUB(IN(0), td__grad_unreduce(b, v->c, OUT(0))));
    v->grad_in[0] = MUL(td__grad_unreduce(b, v->c, v->grad[0]), CONJ(w));
}

static void jvp_logsumexp(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *w =
        td_gb_unary(b, TD_OP_exp, SUB(j->primal_in[0], td__grad_unreduce(b, j->c, jvp_out(b, j))));
    struct td_tensor *s = sum_keep(b, j->c, MUL(j->tangent_in[0], w), td_arg_bool(j->c, "keepdim"));
    j->tangent_out[0] = to_out_shape(b, s, j->primal_out[0]);
}

const struct td_deriv td_deriv_logsumexp = {0x1, 0x1, vjp_logsumexp, jvp_logsumexp};

/* ---- cumsum, cumprod ---- */

/* The scanned dim, normalised; -1 for a 0-d input (a scan of one element: the identity). */
static int64_t scan_dim(const struct td_op_ctx *c)
{
    int nd = c->in_meta[0].ndim;
    int64_t d = td_arg_int(c, "dim");
    if (nd == 0)
        return -1;
    return d < 0 ? d + nd : d;
}

/* Suffix sums along dim: flip, cumsum, flip. */
static struct td_tensor *rev_cumsum(struct td_gb *b, struct td_tensor *x, int64_t dim)
{
    return flip(b, scan(b, TD_OP_cumsum, flip(b, x, dim), dim), dim);
}

/* cumsum: the adjoint of a prefix sum is the suffix sum. */
static void vjp_cumsum(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    int64_t d = scan_dim(v->c);
    v->grad_in[0] = d < 0 ? v->grad[0] : rev_cumsum(b, v->grad[0], d);
}

static void jvp_cumsum(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

const struct td_deriv td_deriv_cumsum = {0, 0, vjp_cumsum, jvp_cumsum};

/* What cumprod's formulas need about the zeros along each line (length n >= 1) of x:
 * before = 1 at positions before the line's first zero (int64), first = 1 at the first zero,
 * safe = x with every position from the first zero on set to 1, x1 = x with the first zero
 * replaced by 1, y1 = cumprod(x1) (the products that skip the first zero) and xz = the
 * first zero's value (0, but a function of x: kept so that derivatives see it). */
struct cp_zeros {
    struct td_tensor *before, *first, *safe, *x1, *y1, *xz;
};

/* Returns true when x has no zero (read from the data: the formulas branch on it as
 * PyTorch's do); false also after a failure. */
static bool no_zeros(struct td_gb *b, struct td_tensor *x, struct td_tensor **nz)
{
    *nz = td_gb_binary(b, TD_OP_ne, x, td_gb_scalar(b, 0));
    struct td_tensor *all = td_gb_unary(b, TD_OP_all, *nz);
    return all && td__load_bool(td_tensor_data(all), all->dtype);
}

static void cp_zeros(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x,
                     struct td_tensor *nz, int64_t dim, int64_t n, struct cp_zeros *z)
{
    z->before = scan(b, TD_OP_cumprod, nz, dim);
    z->first = SUB(shift_in_ones(b, z->before, dim, n), z->before);
    z->safe = where3(b, z->before, x, td_gb_scalar(b, 1));
    z->x1 = where3(b, z->first, td_gb_scalar(b, 1), x);
    z->y1 = same_op(b, c, 1, &z->x1);
    z->xz = td_gb_sum(b, MUL(x, z->first), 1, &dim, true);
}

/* cumprod's VJP at x (y = cumprod(x)) for output gradient g along dim (length n >= 1):
 * grad_k = sum_{i>=k} g_i conj(prod_{j<=i, j!=k} x_j). Without zeros that is
 * suffix_sum(g conj(y))_k / conj(x_k). Otherwise, per line with first zero at z: the same
 * before z; suffix_sum(g conj(y1))_z at z; and for k > z conj(x_z) times this VJP at x1 (the
 * line with x_z replaced by 1), which is 0 in value, so it is only built when the result
 * must be differentiable (each level removes one zero per line, so the recursion ends). */
static struct td_tensor *cumprod_vjp(struct td_gb *b, const struct td_op_ctx *c,
                                     struct td_tensor *x, struct td_tensor *y, struct td_tensor *g,
                                     int64_t d, int64_t n)
{
    struct td_tensor *nz;
    struct td_tensor *a = rev_cumsum(b, MUL(g, CONJ(y)), d);
    if (no_zeros(b, x, &nz) || !td_gb_ok(b))
        return DIV(a, CONJ(x));
    struct cp_zeros z;
    cp_zeros(b, c, x, nz, d, n, &z);
    a = DIV(a, CONJ(z.safe));
    struct td_tensor *a1 = rev_cumsum(b, MUL(g, CONJ(z.y1)), d);
    struct td_tensor *after = td_gb_scalar(b, 0);
    if (td_gb_grad_mode(b))
        after = MUL(CONJ(z.xz), cumprod_vjp(b, c, z.x1, z.y1, g, d, n));
    return where3(b, z.before, a, where3(b, z.first, a1, after));
}

static void vjp_cumprod(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    int64_t d = scan_dim(v->c);
    if (d < 0) {
        v->grad_in[0] = v->grad[0];
        return;
    }
    int64_t n = v->c->in_meta[0].shape[d];
    if (n == 0)
        return;
    v->grad_in[0] = cumprod_vjp(b, v->c, IN(0), OUT(0), v->grad[0], d, n);
}

/* The tangent at x (y = cumprod(x)): without zeros y_i * sum_{k<=i} t_k / x_k. Per line with
 * first zero z: the same before z; from z on t_z * y1_i + x_z * (the tangent at x1 of t with
 * t_z = 0), whose second term is 0 in value and built only when recording. */
static struct td_tensor *cumprod_jvp(struct td_gb *b, const struct td_op_ctx *c,
                                     struct td_tensor *x, struct td_tensor *y, struct td_tensor *t,
                                     int64_t d, int64_t n)
{
    struct td_tensor *nz;
    if (no_zeros(b, x, &nz) || !td_gb_ok(b))
        return MUL(y, scan(b, TD_OP_cumsum, DIV(t, x), d));
    struct cp_zeros z;
    cp_zeros(b, c, x, nz, d, n, &z);
    struct td_tensor *t1 = MUL(y, scan(b, TD_OP_cumsum, DIV(t, z.safe), d));
    struct td_tensor *tz = td_gb_sum(b, MUL(t, z.first), 1, &d, true);
    struct td_tensor *rest = MUL(tz, z.y1);
    if (td_gb_grad_mode(b)) {
        struct td_tensor *t0 = where3(b, z.first, td_gb_scalar(b, 0), t);
        rest = td_gb_binary(b, TD_OP_add, rest, MUL(z.xz, cumprod_jvp(b, c, z.x1, z.y1, t0, d, n)));
    }
    return where3(b, z.before, t1, rest);
}

static void jvp_cumprod(struct td_gb *b, struct td_jvp *j)
{
    int64_t d = scan_dim(j->c);
    if (d < 0) {
        j->tangent_out[0] = j->tangent_in[0];
        return;
    }
    int64_t n = j->primal_in[0]->shape[d];
    if (n == 0)
        return;
    j->tangent_out[0] =
        cumprod_jvp(b, j->c, j->primal_in[0], jvp_out(b, j), j->tangent_in[0], d, n);
}

const struct td_deriv td_deriv_cumprod = {0x1, 0x1, vjp_cumprod, jvp_cumprod};

/* ---- matmul ---- */

static struct td_tensor *squeeze(struct td_gb *b, struct td_tensor *x, int64_t dim)
{
    struct td_attr_arg a = td_a_ints("dim", 1, &dim);
    return td_gb_op(b, TD_OP_squeeze, 1, &x, 1, &a);
}

/* NumPy matmul: a 1-d a is a row [1, k], a 1-d b a column [k, 1], and the added dim is
 * dropped from the result. With those matrices ga = g @ b^H and gb = a^H @ g; the engine
 * sums broadcast batch dims down to each input's shape. */
static void vjp_matmul(struct td_gb *b, struct td_vjp *v)
{
    bool a1 = v->c->in_meta[0].ndim == 1, b1 = v->c->in_meta[1].ndim == 1;
    struct td_tensor *g = v->grad[0];
    if (b1)
        g = unsqueeze(b, g, g ? g->ndim : 0);
    if (a1)
        g = unsqueeze(b, g, g ? g->ndim - 1 : 0);
    if (v->needs[0]) {
        struct td_tensor *y = IN(1);
        if (b1)
            y = unsqueeze(b, y, 1);
        struct td_tensor *ga = td_gb_binary(b, TD_OP_matmul, g, CONJ(mT(b, y)));
        v->grad_in[0] = a1 ? squeeze(b, ga, -2) : ga;
    }
    if (v->needs[1]) {
        struct td_tensor *x = IN(0);
        if (a1)
            x = unsqueeze(b, x, 0);
        struct td_tensor *gb = td_gb_binary(b, TD_OP_matmul, CONJ(mT(b, x)), g);
        v->grad_in[1] = b1 ? squeeze(b, gb, -1) : gb;
    }
}

static void jvp_matmul(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    struct td_tensor *p = ta ? td_gb_binary(b, TD_OP_matmul, ta, j->primal_in[1]) : NULL;
    struct td_tensor *q = tb ? td_gb_binary(b, TD_OP_matmul, j->primal_in[0], tb) : NULL;
    j->tangent_out[0] = (p && q) ? td_gb_binary(b, TD_OP_add, p, q) : (p ? p : q);
}

const struct td_deriv td_deriv_matmul = {0x3, 0, vjp_matmul, jvp_matmul};
