/*
 * derivatives_nn.c - VJPs and JVPs of the neural-network ops (ops.def section "neural
 * network", kernels in ops_nn.c). Conventions as in derivatives_elementwise.c: every formula
 * is written with td_gb_* ops, so with create_graph the gradient is itself differentiable.
 *
 * Pairs of adjoint linear ops give each other's VJPs: im2col/col2im, avg_pool2d and its
 * backward, max_pool2d_backward and a gather at the saved indices, embedding and its
 * backward. conv2d's VJPs are the kernels conv2d_backward_input/_weight (the three ops
 * are bilinear and give each other's VJPs); layer_norm's is the usual
 * closed form (dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))).
 */
#include <math.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

#define IN(i) td_gb_saved_input(b, (i))
#define OUT(k) td_gb_saved_output(b, (k))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))
#define SUB(x, y) td_gb_binary(b, TD_OP_add, (x), td_gb_scale(b, (y), -1.0))
#define SCALE(x, v) td_gb_scale(b, (x), (v))
#define CONST(v) td_gb_scalar(b, (v))
#define CONJ(x) td_gb_conj(b, (x))

/* Copies the forward op's attributes named in names (those present) into out. */
static int fwd_attrs(const struct td_op_ctx *c, const char *const *names, int n,
                     struct td_attr_arg *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!td_arg_has(c, names[i]))
            continue;
        for (int a = 0; a < c->info->nattrs; a++)
            if (strcmp(c->info->attrs[a].name, names[i]) == 0) {
                out[k].name = names[i];
                out[k].value = c->attrs[a];
                k++;
                break;
            }
    }
    return k;
}

/* Runs op on inputs with the forward op's attributes named in names plus extra ones. */
static struct td_tensor *op_fwd(struct td_gb *b, const struct td_op_ctx *c, enum td_op op,
                                int nin, struct td_tensor *const *in, const char *const *names,
                                int nnames, int nextra, const struct td_attr_arg *extra)
{
    struct td_attr_arg a[TD_MAX_ATTRS + 2];
    int n = fwd_attrs(c, names, nnames, a);
    for (int i = 0; i < nextra && n < TD_MAX_ATTRS + 2; i++)
        a[n++] = extra[i];
    return td_gb_op(b, op, nin, in, n, a);
}

/* The forward op's full attribute list. */
static struct td_tensor *op_same_attrs(struct td_gb *b, const struct td_op_ctx *c,
                                       enum td_op op, int nin, struct td_tensor *const *in)
{
    struct td_attr_arg a[TD_MAX_ATTRS];
    int n = 0;
    for (int i = 0; i < c->info->nattrs; i++)
        if (c->attrs[i].present) {
            a[n].name = c->info->attrs[i].name;
            a[n].value = c->attrs[i];
            n++;
        }
    return td_gb_op(b, op, nin, in, n, a);
}

/* op_fwd plus, when size is set, the ints attribute size = [h, w]. */
static struct td_tensor *op_sized(struct td_gb *b, const struct td_op_ctx *c, enum td_op op,
                                  int nin, struct td_tensor *const *in,
                                  const char *const *names, int nnames, const char *size,
                                  int64_t h, int64_t w)
{
    int64_t hw[2] = {h, w};
    struct td_attr_arg ex[1] = {td_a_ints(size, 2, hw)};
    return op_fwd(b, c, op, nin, in, names, nnames, size ? 1 : 0, ex);
}

/* Ops linear in input 0 with input 1 held fixed: the tangent is op(t0, p1). */
static void jvp_linear_in0(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[2] = {j->tangent_in[0], j->primal_in[1]};
    j->tangent_out[0] = op_same_attrs(b, j->c, j->c->op, 2, in);
}

static struct td_tensor *transpose(struct td_gb *b, struct td_tensor *x, int d0, int d1)
{
    struct td_attr_arg a[2] = {TD_A_INT("dim0", d0), TD_A_INT("dim1", d1)};
    return td_gb_op(b, TD_OP_transpose, 1, &x, 2, a);
}

static struct td_tensor *matmul(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    return td_gb_binary(b, TD_OP_matmul, x, y);
}

static struct td_tensor *sum_keep(struct td_gb *b, struct td_tensor *x, int d)
{
    int64_t dim = d;
    return td_gb_sum(b, x, 1, &dim, true);
}

/* ---- linear ---- */

static void vjp_linear(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *xm = &v->c->in_meta[0], *wm = &v->c->in_meta[1];
    struct td_tensor *g = v->grad[0];
    int64_t m = 1;
    for (int d = 0; d < xm->ndim - 1; d++)
        m *= xm->shape[d];
    int64_t s2[2] = {m, wm->shape[0]};
    struct td_tensor *g2 = (v->needs[1] || v->needs[2]) ? td_gb_reshape(b, g, 2, s2) : NULL;
    if (v->needs[0])
        v->grad_in[0] = matmul(b, g, CONJ(IN(1)));
    if (v->needs[1]) {
        int64_t x2s[2] = {m, wm->shape[1]};
        struct td_tensor *x2 = td_gb_reshape(b, CONJ(IN(0)), 2, x2s);
        v->grad_in[1] = matmul(b, transpose(b, g2, 0, 1), x2);
    }
    if (v->needs[2]) {
        int64_t d0 = 0;
        v->grad_in[2] = td_gb_sum(b, g2, 1, &d0, false);
    }
}

static void jvp_linear(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *a[2] = {j->tangent_in[0], j->primal_in[1]};
    struct td_tensor *p = td_gb_op(b, TD_OP_linear, 2, a, 0, NULL);
    struct td_tensor *c3[3] = {j->primal_in[0], j->tangent_in[1],
                               j->c->ninputs > 2 ? j->tangent_in[2] : NULL};
    struct td_tensor *q = td_gb_op(b, TD_OP_linear, j->c->ninputs > 2 ? 3 : 2, c3, 0, NULL);
    j->tangent_out[0] = ADD(p, q);
}

const struct td_deriv td_deriv_linear = {0x3, 0, vjp_linear, jvp_linear};

/* ---- conv2d ---- */

static const char *const conv_names[] = {"dilation", "padding", "stride", "groups"};

/* op(a0, a1) with conv2d's attributes, plus size = [h, w] when size is set. */
static struct td_tensor *conv_op(struct td_gb *b, const struct td_op_ctx *c, enum td_op op,
                                 struct td_tensor *a0, struct td_tensor *a1, const char *size,
                                 int64_t h, int64_t w)
{
    struct td_tensor *in[2] = {a0, a1};
    return op_sized(b, c, op, 2, in, conv_names, 4, size, h, w);
}

/* conv2d's gradients are the kernels conv2d_backward_input (w^T g folded back with col2im)
 * and conv2d_backward_weight (g against x's columns), both batching samples into one GEMM
 * per group like the forward. The three ops are bilinear, so each one's VJPs are the other
 * two (see below), and gradients of any order stay in these kernels. */
static void vjp_conv2d(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    const struct td_meta *xm = &c->in_meta[0], *wm = &c->in_meta[1];
    struct td_tensor *g = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = conv_op(b, c, TD_OP_conv2d_backward_input, g, IN(1), "input_size",
                                xm->shape[2], xm->shape[3]);
    if (v->needs[1])
        v->grad_in[1] = conv_op(b, c, TD_OP_conv2d_backward_weight, IN(0), g, "kernel_size",
                                wm->shape[2], wm->shape[3]);
    if (v->needs[2]) {
        int64_t dims[3] = {0, 2, 3};
        v->grad_in[2] = td_gb_sum(b, g, 3, dims, false);
    }
}

static void jvp_conv2d(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *a[2] = {j->tangent_in[0], j->primal_in[1]};
    struct td_tensor *p = op_same_attrs(b, j->c, TD_OP_conv2d, 2, a);
    struct td_tensor *c3[3] = {j->primal_in[0], j->tangent_in[1],
                               j->c->ninputs > 2 ? j->tangent_in[2] : NULL};
    struct td_tensor *q = op_same_attrs(b, j->c, TD_OP_conv2d, j->c->ninputs > 2 ? 3 : 2, c3);
    j->tangent_out[0] = ADD(p, q);
}

const struct td_deriv td_deriv_conv2d = {0x3, 0, vjp_conv2d, jvp_conv2d};

/* conv2d_backward_input(g, w) = gi: <u, gi> = sum_n <im2col(u_n), w^T g_n>, so the VJP for g
 * is conv2d(u, w) and for w conv2d_backward_weight(u, g). */
static void vjp_conv2d_backward_input(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    const struct td_meta *wm = &c->in_meta[1];
    struct td_tensor *u = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = conv_op(b, c, TD_OP_conv2d, u, IN(1), NULL, 0, 0);
    if (v->needs[1])
        v->grad_in[1] = conv_op(b, c, TD_OP_conv2d_backward_weight, u, IN(0), "kernel_size",
                                wm->shape[2], wm->shape[3]);
}

/* Bilinear: the tangent is op(t0, p1) + op(p0, t1). */
static void jvp_bilinear(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *a[2] = {j->tangent_in[0], j->primal_in[1]};
    struct td_tensor *q[2] = {j->primal_in[0], j->tangent_in[1]};
    j->tangent_out[0] = ADD(op_same_attrs(b, j->c, j->c->op, 2, a),
                            op_same_attrs(b, j->c, j->c->op, 2, q));
}

const struct td_deriv td_deriv_conv2d_backward_input = {0x3, 0, vjp_conv2d_backward_input,
                                                        jvp_bilinear};

/* conv2d_backward_weight(x, g) = gw: <u, gw> = sum_n <u^T g_n, im2col(x_n)>, so the VJP for
 * x is conv2d_backward_input(g, u) and for g conv2d(x, u). */
static void vjp_conv2d_backward_weight(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    const struct td_meta *xm = &c->in_meta[0];
    struct td_tensor *u = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = conv_op(b, c, TD_OP_conv2d_backward_input, IN(1), u, "input_size",
                                xm->shape[2], xm->shape[3]);
    if (v->needs[1])
        v->grad_in[1] = conv_op(b, c, TD_OP_conv2d, IN(0), u, NULL, 0, 0);
}

const struct td_deriv td_deriv_conv2d_backward_weight = {0x3, 0, vjp_conv2d_backward_weight,
                                                         jvp_bilinear};

/* ---- im2col / col2im: each is the other's adjoint ---- */

static const char *const unfold_names[] = {"kernel_size", "dilation", "padding", "stride"};

/* VJP of a linear one-input op: g through its adjoint op with the forward's attributes in
 * names, plus size = the input's trailing [H, W] when size is set. */
static void vjp_adjoint(struct td_gb *b, struct td_vjp *v, enum td_op op,
                        const char *const *names, int nnames, const char *size)
{
    if (!v->needs[0])
        return;
    const struct td_meta *xm = &v->c->in_meta[0];
    struct td_tensor *g = v->grad[0];
    v->grad_in[0] = op_sized(b, v->c, op, 1, &g, names, nnames, size,
                             xm->shape[xm->ndim - 2], xm->shape[xm->ndim - 1]);
}

static void vjp_im2col(struct td_gb *b, struct td_vjp *v)
{
    vjp_adjoint(b, v, TD_OP_col2im, unfold_names, 4, "output_size");
}

static void vjp_col2im(struct td_gb *b, struct td_vjp *v)
{
    vjp_adjoint(b, v, TD_OP_im2col, unfold_names, 4, NULL);
}

/* Linear ops: the tangent goes through the op itself. */
static void jvp_self(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = op_same_attrs(b, j->c, j->c->op, 1, &j->tangent_in[0]);
}

const struct td_deriv td_deriv_im2col = {0, 0, vjp_im2col, jvp_self};
const struct td_deriv td_deriv_col2im = {0, 0, vjp_col2im, jvp_self};

/* ---- threshold_backward: linear in g, piecewise constant in x ---- */

static void vjp_threshold_backward(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0]) {
        struct td_tensor *in[2] = {v->grad[0], IN(1)};
        v->grad_in[0] = op_same_attrs(b, v->c, TD_OP_threshold_backward, 2, in);
    }
    if (v->needs[1])
        v->grad_in[1] = td_gb_zeros_like(b, IN(1));
}

const struct td_deriv td_deriv_threshold_backward = {0x2, 0, vjp_threshold_backward,
                                                     jvp_linear_in0};

/* ---- max pooling ---- */

/* t[..., H, W] read at idx[..., Ho, Wo] (indices into each flattened H*W plane). */
static struct td_tensor *gather_plane(struct td_gb *b, struct td_tensor *t, struct td_tensor *idx)
{
    if (!t || !idx)
        return NULL;
    int nd = t->ndim;
    struct td_attr_arg fa[1] = {TD_A_INT("start_dim", nd - 2)};
    struct td_tensor *tf = td_gb_op(b, TD_OP_flatten, 1, &t, 1, fa);
    struct td_tensor *ifl = td_gb_op(b, TD_OP_flatten, 1, &idx, 1, fa);
    struct td_tensor *in[2] = {tf, ifl};
    struct td_attr_arg ga[1] = {TD_A_INT("dim", nd - 2)};
    struct td_tensor *r = td_gb_op(b, TD_OP_gather, 2, in, 1, ga);
    return td_gb_reshape(b, r, idx->ndim, idx->shape);
}

static void vjp_max_pool2d(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *xm = &v->c->in_meta[0];
    int64_t hw[2] = {xm->shape[xm->ndim - 2], xm->shape[xm->ndim - 1]};
    struct td_attr_arg a[1] = {td_a_ints("input_size", 2, hw)};
    struct td_tensor *in[2] = {v->grad[0], OUT(1)};
    v->grad_in[0] = td_gb_op(b, TD_OP_max_pool2d_backward, 2, in, 1, a);
}

static void jvp_max_pool2d(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = gather_plane(b, j->tangent_in[0], j->primal_out[1]);
}

const struct td_deriv td_deriv_max_pool2d = {0, 0x2, vjp_max_pool2d, jvp_max_pool2d};

static void vjp_max_pool2d_backward(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = gather_plane(b, v->grad[0], IN(1));
}

const struct td_deriv td_deriv_max_pool2d_backward = {0x2, 0, vjp_max_pool2d_backward,
                                                      jvp_linear_in0};

/* ---- average pooling ---- */

static const char *const avg_names[] = {"kernel_size", "stride", "padding", "ceil_mode",
                                        "count_include_pad", "divisor_override"};

static void vjp_avg_pool2d(struct td_gb *b, struct td_vjp *v)
{
    vjp_adjoint(b, v, TD_OP_avg_pool2d_backward, avg_names, 6, "input_size");
}

static void vjp_avg_pool2d_backward(struct td_gb *b, struct td_vjp *v)
{
    vjp_adjoint(b, v, TD_OP_avg_pool2d, avg_names, 6, NULL);
}

const struct td_deriv td_deriv_avg_pool2d = {0, 0, vjp_avg_pool2d, jvp_self};
const struct td_deriv td_deriv_avg_pool2d_backward = {0, 0, vjp_avg_pool2d_backward, jvp_self};

/* ---- softmax / log_softmax ---- */

static int softmax_dim(const struct td_op_ctx *c)
{
    int64_t d = td_arg_int(c, "dim");
    int nd = c->in_meta[0].ndim;
    if (nd == 0)
        return 0;
    return (int)(d < 0 ? d + nd : d);
}

/* y * (g - sum(g * y)) */
static void vjp_softmax(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *y = OUT(0), *gy = MUL(v->grad[0], y);
    int d = softmax_dim(v->c);
    v->grad_in[0] = SUB(gy, MUL(y, sum_keep(b, gy, d)));
}

static void jvp_softmax(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *y = j->primal_out[0], *ty = MUL(j->tangent_in[0], y);
    int d = softmax_dim(j->c);
    j->tangent_out[0] = SUB(ty, MUL(y, sum_keep(b, ty, d)));
}

const struct td_deriv td_deriv_softmax = {0, 0x1, vjp_softmax, jvp_softmax};

/* g - exp(y) * sum(g) */
static void vjp_log_softmax(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *g = v->grad[0];
    int d = softmax_dim(v->c);
    v->grad_in[0] = SUB(g, MUL(td_gb_unary(b, TD_OP_exp, OUT(0)), sum_keep(b, g, d)));
}

static void jvp_log_softmax(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *t = j->tangent_in[0];
    int d = softmax_dim(j->c);
    struct td_tensor *p = td_gb_unary(b, TD_OP_exp, j->primal_out[0]);
    j->tangent_out[0] = SUB(t, sum_keep(b, MUL(p, t), d));
}

const struct td_deriv td_deriv_log_softmax = {0, 0x1, vjp_log_softmax, jvp_log_softmax};

/* ---- dropout: out = x * mask / (1 - p) ---- */

static struct td_tensor *dropout_apply(struct td_gb *b, const struct td_op_ctx *c,
                                       struct td_tensor *t, struct td_tensor *mask)
{
    double p = td_arg_float(c, "p");
    if (!td_arg_bool(c, "train") || p == 0)
        return t;
    if (p == 1 || !t)
        return NULL;   /* every element dropped: a zero derivative */
    return SCALE(MUL(t, td_gb_cast(b, mask, t->dtype)), 1.0 / (1.0 - p));
}

static void vjp_dropout(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    bool uses_mask = td_arg_bool(v->c, "train") && td_arg_float(v->c, "p") > 0 &&
                     td_arg_float(v->c, "p") < 1;
    v->grad_in[0] = dropout_apply(b, v->c, v->grad[0], uses_mask ? OUT(1) : NULL);
}

static void jvp_dropout(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = dropout_apply(b, j->c, j->tangent_in[0], j->primal_out[1]);
}

const struct td_deriv td_deriv_dropout = {0, 0x2, vjp_dropout, jvp_dropout};

/* ---- embedding ---- */

static void vjp_embedding(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    static const char *const names[] = {"padding_idx"};
    struct td_attr_arg ex[1] = {TD_A_INT("num_weights", v->c->in_meta[0].shape[0])};
    struct td_tensor *in[2] = {v->grad[0], IN(1)};
    v->grad_in[0] = op_fwd(b, v->c, TD_OP_embedding_backward, 2, in, names, 1, 1, ex);
}

const struct td_deriv td_deriv_embedding = {0x2, 0, vjp_embedding, jvp_linear_in0};

/* d/dg of embedding_backward: the rows of gg at the indices, zero where an index is the
 * padding row (those rows received nothing). */
static void vjp_embedding_backward(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *idx = IN(1);
    struct td_tensor *in[2] = {v->grad[0], idx};
    struct td_tensor *r = td_gb_op(b, TD_OP_embedding, 2, in, 0, NULL);
    if (td_arg_has(v->c, "padding_idx")) {
        int64_t V = td_arg_int(v->c, "num_weights"), p = td_arg_int(v->c, "padding_idx");
        struct td_attr_arg sa[2] = {td_a_scalar_i("value", p < 0 ? p + V : p),
                                    TD_A_BOOL("wrapped", true)};
        struct td_tensor *pv = td_gb_op(b, TD_OP_scalar_tensor, 0, NULL, 2, sa);
        struct td_tensor *m = td_gb_binary(b, TD_OP_eq, idx, pv);
        struct td_attr_arg ua[1] = {TD_A_INT("dim", -1)};
        m = td_gb_op(b, TD_OP_unsqueeze, 1, &m, 1, ua);
        struct td_tensor *mi[2] = {r, m};
        struct td_attr_arg fa[1] = {td_a_scalar_i("value", 0)};
        r = td_gb_op(b, TD_OP_masked_fill, 2, mi, 1, fa);
    }
    v->grad_in[0] = r;
}

const struct td_deriv td_deriv_embedding_backward = {0x2, 0, vjp_embedding_backward,
                                                     jvp_linear_in0};

/* ---- layer_norm ---- */

struct ln_dims {
    int nd, k;
    int64_t dims[TD_MAX_NDIM];   /* the normalized dims */
    int64_t n;                   /* their element count */
};

static void ln_dims_of(const struct td_op_ctx *c, struct ln_dims *d)
{
    int k = 0;
    td_arg_ints(c, "normalized_shape", &k);
    d->nd = c->in_meta[0].ndim;
    d->k = k;
    d->n = 1;
    for (int i = 0; i < k; i++) {
        d->dims[i] = d->nd - k + i;
        d->n *= c->in_meta[0].shape[d->nd - k + i];
    }
}

static struct td_tensor *ln_mean(struct td_gb *b, const struct ln_dims *d, struct td_tensor *x)
{
    return SCALE(td_gb_sum(b, x, d->k, d->dims, true), 1.0 / (double)d->n);
}

/* True unless t is known to be all zeros and untracked (a gradient nobody sent). */
static bool maybe_nonzero(struct td_tensor *t)
{
    if (!t)
        return false;
    if (td_ag_requires_grad(t))
        return true;
    int64_t n = td_tensor_numel(t);
    int64_t k = 0, idx[TD_MAX_NDIM] = {0};
    size_t isz = td_dtype_size(t->dtype);
    for (k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->strides[d];
        if (td__load_f64((const char *)td_tensor_data(t) + off * (int64_t)isz, t->dtype) != 0)
            return true;
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return false;
}

static void vjp_layer_norm(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    struct ln_dims d;
    ln_dims_of(c, &d);
    bool has_w = c->ninputs > 1;
    struct td_tensor *x = IN(0), *mean = OUT(1), *rstd = OUT(2);
    /* With create_graph the saved mean and rstd carry their history (this node's outputs 1
     * and 2), so a second backward reaches x through them via the terms for v->grad[1] and
     * v->grad[2] below. */
    struct td_tensor *g = v->grad[0];
    struct td_tensor *xhat = MUL(SUB(x, mean), rstd);
    if (v->needs[0]) {
        struct td_tensor *dxhat = has_w ? MUL(g, IN(1)) : g;
        struct td_tensor *a = ln_mean(b, &d, dxhat);
        struct td_tensor *bt = ln_mean(b, &d, MUL(dxhat, xhat));
        struct td_tensor *dx = MUL(rstd, SUB(SUB(dxhat, a), MUL(xhat, bt)));
        /* Gradients sent into the mean and rstd outputs: d mean/dx = 1/n,
         * d rstd/dx = -rstd^2 * xhat / n. */
        if (maybe_nonzero(v->grad[1]))
            dx = ADD(dx, SCALE(v->grad[1], 1.0 / (double)d.n));
        if (maybe_nonzero(v->grad[2]))
            dx = SUB(dx, SCALE(MUL(MUL(v->grad[2], MUL(rstd, rstd)), xhat), 1.0 / (double)d.n));
        v->grad_in[0] = dx;
    }
    /* Weight and bias: the engine sums the leading (broadcast) dims away. */
    if (has_w && v->needs[1])
        v->grad_in[1] = MUL(g, xhat);
    if (c->ninputs > 2 && v->needs[2])
        v->grad_in[2] = g;
}

static void jvp_layer_norm(struct td_gb *b, struct td_jvp *j)
{
    const struct td_op_ctx *c = j->c;
    struct ln_dims d;
    ln_dims_of(c, &d);
    struct td_tensor *x = j->primal_in[0], *mean = j->primal_out[1], *rstd = j->primal_out[2];
    struct td_tensor *tx = j->tangent_in[0];
    struct td_tensor *xhat = MUL(SUB(x, mean), rstd);
    struct td_tensor *tm = ln_mean(b, &d, tx);
    struct td_tensor *mxt = ln_mean(b, &d, MUL(xhat, tx));
    struct td_tensor *dxhat = MUL(rstd, SUB(SUB(tx, tm), MUL(xhat, mxt)));
    struct td_tensor *ty = dxhat;
    if (c->ninputs > 1)
        ty = ADD(MUL(dxhat, j->primal_in[1]), MUL(xhat, j->tangent_in[1]));
    if (c->ninputs > 2)
        ty = ADD(ty, j->tangent_in[2]);
    j->tangent_out[0] = ty;
    j->tangent_out[1] = tm;
    j->tangent_out[2] = SCALE(MUL(MUL(rstd, rstd), mxt), -1.0);
}

const struct td_deriv td_deriv_layer_norm = {0x3, 0x6, vjp_layer_norm, jvp_layer_norm};

/* ---- gelu and erf ---- */

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794   /* 1 / sqrt(2 pi) */
#define SQRT_2_PI 0.79788456080286535588      /* sqrt(2 / pi) */
#define TWO_SQRT_PI 1.12837916709551257390    /* 2 / sqrt(pi) */
#define GELU_C 0.044715

/* d gelu / dx at x. none: Phi(x) + x phi(x). tanh: with u = k (x + c x^3), t = tanh(u):
 * 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2). */
static struct td_tensor *gelu_deriv(struct td_gb *b, const struct td_op_ctx *c,
                                    struct td_tensor *x)
{
    const char *a = td_arg_str(c, "approximate");
    struct td_tensor *x2 = MUL(x, x);
    if (a && strcmp(a, "tanh") == 0) {
        struct td_tensor *u = SCALE(ADD(x, SCALE(MUL(x2, x), GELU_C)), SQRT_2_PI);
        struct td_tensor *t = td_gb_unary(b, TD_OP_tanh, u);
        struct td_tensor *left = ADD(SCALE(t, 0.5), CONST(0.5));
        struct td_tensor *sech2 = ADD(SCALE(MUL(t, t), -1.0), CONST(1.0));
        struct td_tensor *inner = ADD(SCALE(x2, 3 * GELU_C), CONST(1.0));
        return ADD(left, MUL(SCALE(x, 0.5 * SQRT_2_PI), MUL(sech2, inner)));
    }
    struct td_tensor *cdf =
        ADD(SCALE(td_gb_unary(b, TD_OP_erf, SCALE(x, SQRT1_2)), 0.5), CONST(0.5));
    struct td_tensor *pdf = SCALE(td_gb_unary(b, TD_OP_exp, SCALE(x2, -0.5)), INV_SQRT_2PI);
    return ADD(cdf, MUL(x, pdf));
}

static void vjp_gelu(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], gelu_deriv(b, v->c, IN(0)));
}

static void jvp_gelu(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = MUL(j->tangent_in[0], gelu_deriv(b, j->c, j->primal_in[0]));
}

const struct td_deriv td_deriv_gelu = {0x1, 0, vjp_gelu, jvp_gelu};

static struct td_tensor *erf_deriv(struct td_gb *b, struct td_tensor *x)
{
    return SCALE(td_gb_unary(b, TD_OP_exp, SCALE(MUL(x, x), -1.0)), TWO_SQRT_PI);
}

static void vjp_erf(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], erf_deriv(b, IN(0)));
}

static void jvp_erf(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = MUL(j->tangent_in[0], erf_deriv(b, j->primal_in[0]));
}

const struct td_deriv td_deriv_erf = {0x1, 0, vjp_erf, jvp_erf};

/* ---- nll_loss ---- */

int td__nll_coef(const struct td_tensor *target, const struct td_tensor *weight,
                 enum td_dtype dt, int64_t nclass, int64_t ignore, bool mean,
                 struct td_account *account, struct td_tensor **coef_out,
                 struct td_tensor **idx_out, struct td_error *err);

/* d loss / d logp[i, k] = coef[i] * g(i) at k = target_i, 0 elsewhere: a scatter of g * coef
 * into zeros, so the gradient is linear (and differentiable) in g. */
static void vjp_nll_loss(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    if (c->ninputs > 2 && v->needs[2]) {
        td_gb_fail(b, TD_EUNIMPL, "nll_loss: the derivative with respect to weight is not "
                   "implemented (as in PyTorch)");
        return;
    }
    if (!v->needs[0])
        return;
    const struct td_meta *xm = &c->in_meta[0];
    struct td_tensor *t = IN(1), *w = c->ninputs > 2 ? IN(2) : NULL;
    if (!t || (c->ninputs > 2 && !w))
        return;
    const char *red = td_arg_str(c, "reduction");
    struct td_ag_session *s = td_gb_session(b);
    struct td_tensor *coef = NULL, *idx = NULL;
    struct td_error err;
    if (td__nll_coef(t, w, xm->dtype, xm->shape[xm->ndim - 1], td_arg_int(c, "ignore_index"),
                     !red || strcmp(red, "mean") == 0, s ? s->account : NULL, &coef, &idx,
                     &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return;
    }
    td_gb_adopt(b, coef);
    td_gb_adopt(b, idx);
    struct td_tensor *src = td_gb_reshape(b, MUL(v->grad[0], coef), idx->ndim, idx->shape);
    struct td_tensor *in[3] = {td_gb_zeros(b, xm), idx, src};
    struct td_attr_arg a[1] = {TD_A_INT("dim", xm->ndim - 1)};
    v->grad_in[0] = td_gb_op(b, TD_OP_scatter, 3, in, 1, a);
}

static void jvp_nll_loss(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[3] = {j->tangent_in[0], j->primal_in[1],
                               j->c->ninputs > 2 ? j->primal_in[2] : NULL};
    j->tangent_out[0] = op_same_attrs(b, j->c, TD_OP_nll_loss, j->c->ninputs, in);
}

const struct td_deriv td_deriv_nll_loss = {0x6, 0, vjp_nll_loss, jvp_nll_loss};
