/*
 * derivatives_linalg_norms.c - VJPs and JVPs of ops_linalg_norms.c: vector_norm,
 * matrix_norm, norm, cond, pinv and matrix_exp (matrix_rank is not differentiable).
 *
 * A real norm n(x) of a real or complex x has dn = Re<w, dx> = Re(sum(conj(w) * dx)) for a
 * weight w shaped like x; in PyTorch's convention the VJP is then g * w and the JVP
 * sum(Re(conj(w) * dx)). Each formula builds w with the td_gb builder from differentiable
 * ops (abs, pow, div, where, matmul, svd, inv, the norms themselves), so with create_graph
 * the gradients are differentiable again; the weights through singular vectors (2, -2 and
 * nuc norms, cond) are second-order differentiable once svd is.
 * At non-differentiable points the choice is PyTorch's (norm_backward): the sign of 0 is 0,
 * ties of the inf norms share the gradient evenly, a zero norm has a zero gradient.
 */
#include <math.h>
#include <string.h>

#include "td_derivatives.h"

#define ABS(x) td_gb_unary(b, TD_OP_abs, (x))
#define REAL(x) td_gb_unary(b, TD_OP_real, (x))
#define SCAL(v) td_gb_scalar(b, (v))

static const char *const MORD_NAME[] = {"fro", "nuc", "inf", "-inf", "1", "-1", "2", "-2"};

static struct td_tensor *eq_zero(struct td_gb *b, struct td_tensor *x)
{
    return td_gb_binary(b, TD_OP_eq, x, SCAL(0));
}

/* x with its zeros replaced by 1 (a safe denominator). */
static struct td_tensor *nonzero(struct td_gb *b, struct td_tensor *x)
{
    return where3(b, eq_zero(b, x), SCAL(1), x);
}

/* PyTorch's sgn: sign for real x, x / |x| for complex (0 at 0). */
static struct td_tensor *sgn(struct td_gb *b, struct td_tensor *x)
{
    if (!x || !td_dtype_is_complex(x->dtype))
        return td_gb_unary(b, TD_OP_sign, x);
    return DIV(x, nonzero(b, ABS(x)));
}

static struct td_tensor *reduce(struct td_gb *b, enum td_op op, struct td_tensor *x, int nd,
                                const int64_t *dims, bool keepdim)
{
    struct td_attr_arg a[2] = {td_a_ints("dim", nd, dims), TD_A_BOOL("keepdim", keepdim)};
    return td_gb_op(b, op, 1, &x, 2, a);
}

/* The weight of the vector ord-norm over dims[0..nd) at x (NULL: zero). */
static struct td_tensor *vec_weight(struct td_gb *b, struct td_tensor *x, double ord, int nd,
                                    const int64_t *dims)
{
    if (ord == 0)
        return NULL;
    if (nd == 0 || ord == 1)
        return sgn(b, x);   /* a norm of one element is |x| */
    if (isinf(ord)) {
        struct td_tensor *a = ABS(x);
        if (!a)
            return NULL;
        struct td_tensor *e = reduce(b, ord > 0 ? TD_OP_amax : TD_OP_amin, a, nd, dims, true);
        struct td_tensor *mask = td_gb_cast(b, td_gb_binary(b, TD_OP_eq, a, e), a->dtype);
        struct td_tensor *cnt = td_gb_sum(b, mask, nd, dims, true);
        return MUL(sgn(b, x), DIV(mask, cnt));
    }
    struct td_attr_arg na[3] = {TD_A_FLOAT("ord", ord), td_a_ints("dim", nd, dims),
                                TD_A_BOOL("keepdim", true)};
    struct td_tensor *n = td_gb_op(b, TD_OP_vector_norm, 1, &x, 3, na);
    if (ord == 2)
        return DIV(x, nonzero(b, n));
    struct td_tensor *a = ABS(x);
    if (ord < 1) {
        struct td_tensor *z = eq_zero(b, a);
        struct td_tensor *t = td_gb_binary(b, TD_OP_pow, nonzero(b, a), SCAL(ord - 1));
        t = where3(b, z, SCAL(0), t);
        return MUL(MUL(sgn(b, x), t), td_gb_binary(b, TD_OP_pow, n, SCAL(1 - ord)));
    }
    struct td_tensor *t = DIV(td_gb_binary(b, TD_OP_pow, a, SCAL(ord - 1)),
                              td_gb_binary(b, TD_OP_pow, nonzero(b, n), SCAL(ord - 1)));
    return MUL(sgn(b, x), t);
}

/* Moves dims d0, d1 of x (ndim nd) last: the permutation and its inverse. */
static void last_two(int nd, int d0, int d1, int64_t *perm, int64_t *inv)
{
    int k = 0;
    for (int d = 0; d < nd; d++)
        if (d != d0 && d != d1)
            perm[k++] = d;
    perm[k++] = d0;
    perm[k++] = d1;
    for (int i = 0; i < nd; i++)
        inv[perm[i]] = i;
}

/* u_i v_i^H from thin U [..., m, k] and Vh [..., k, n]. */
static struct td_tensor *sv_outer(struct td_gb *b, struct td_tensor *u, struct td_tensor *vh,
                                  int64_t i)
{
    return MM(narrow(b, u, -1, i, 1), narrow(b, vh, -2, i, 1));
}

/* The weight of the matrix norm mo over dims (d0, d1) of x. */
static struct td_tensor *mat_weight(struct td_gb *b, struct td_tensor *x, enum td__mord mo,
                                    int d0, int d1)
{
    if (!x)
        return NULL;
    int nd = x->ndim;
    int64_t dd[2] = {d0, d1};
    switch (mo) {
    case TD__MO_FRO:
        return vec_weight(b, x, 2.0, 2, dd);
    case TD__MO_INF:
    case TD__MO_NINF:
    case TD__MO_1:
    case TD__MO_N1: {
        bool rows = mo == TD__MO_INF || mo == TD__MO_NINF;
        bool mx = mo == TD__MO_INF || mo == TD__MO_1;
        int64_t sdim = rows ? d1 : d0, edim = rows ? d0 : d1;
        struct td_tensor *rs = td_gb_sum(b, ABS(x), 1, &sdim, true);
        if (!rs)
            return NULL;
        struct td_tensor *e = reduce(b, mx ? TD_OP_amax : TD_OP_amin, rs, 1, &edim, true);
        struct td_tensor *mask = td_gb_cast(b, td_gb_binary(b, TD_OP_eq, rs, e), rs->dtype);
        struct td_tensor *cnt = td_gb_sum(b, mask, 1, &edim, true);
        return MUL(sgn(b, x), DIV(mask, cnt));
    }
    default: {
        int64_t perm[TD_MAX_NDIM], inv[TD_MAX_NDIM];
        last_two(nd, d0, d1, perm, inv);
        struct td_tensor *usv[3] = {NULL, NULL, NULL};
        svd_thin(b, permute(b, x, nd, perm), usv);
        if (!usv[0])
            return NULL;
        int64_t k = usv[1]->shape[usv[1]->ndim - 1];
        struct td_tensor *w;
        if (mo == TD__MO_NUC)
            w = MM(usv[0], usv[2]);
        else
            w = sv_outer(b, usv[0], usv[2], mo == TD__MO_2 ? 0 : k - 1);
        return permute(b, w, nd, inv);
    }
    }
}

/* The norm op's input in its computation dtype. */
static struct td_tensor *as_cdt(struct td_gb *b, struct td_tensor *x,
                                const struct td__norm_plan *p)
{
    if (!x || x->dtype == p->cdt)
        return x;
    return td_gb_cast(b, x, p->cdt);
}

/* Reduced dims in ascending order; returns their count. */
static int plan_dims(const struct td__norm_plan *p, int ndim, int64_t *dims)
{
    int n = 0;
    for (int d = 0; d < ndim; d++)
        if (p->red[d])
            dims[n++] = d;
    return n;
}

static struct td_tensor *norm_weight(struct td_gb *b, struct td_tensor *x,
                                     const struct td__norm_plan *p)
{
    int64_t dims[TD_MAX_NDIM];
    int nd = plan_dims(p, x ? x->ndim : 0, dims);
    if (p->matrix)
        return mat_weight(b, x, p->mo, p->d0, p->d1);
    return vec_weight(b, x, p->p, nd, dims);
}

/* g (the result's shape) with the reduced dims put back as size 1. */
static struct td_tensor *unreduce(struct td_gb *b, struct td_tensor *g,
                                  const struct td__norm_plan *p, int ndim)
{
    if (p->keepdim)
        return g;
    for (int d = 0; d < ndim; d++)
        if (p->red[d])
            g = unsqueeze(b, g, d);
    return g;
}

static bool plan_of(struct td_gb *b, const struct td_op_ctx *c, struct td__norm_plan *p)
{
    struct td_error err;
    if (td__norm_plan(c, p, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return false;
    }
    return true;
}

static void vjp_norms(struct td_gb *b, struct td_vjp *v)
{
    struct td__norm_plan p;
    if (!v->needs[0] || !plan_of(b, v->c, &p))
        return;
    struct td_tensor *x = as_cdt(b, IN(0), &p);
    struct td_tensor *w = norm_weight(b, x, &p);
    if (w)
        v->grad_in[0] = MUL(unreduce(b, v->grad[0], &p, v->c->in_meta[0].ndim), w);
}

static void jvp_norms(struct td_gb *b, struct td_jvp *j)
{
    struct td__norm_plan p;
    if (!plan_of(b, j->c, &p))
        return;
    struct td_tensor *x = as_cdt(b, j->primal_in[0], &p);
    struct td_tensor *w = norm_weight(b, x, &p);
    if (!w)
        return;
    int64_t dims[TD_MAX_NDIM];
    int nd = plan_dims(&p, x->ndim, dims);
    struct td_tensor *t = REAL(MUL(CONJ(w), as_cdt(b, j->tangent_in[0], &p)));
    j->tangent_out[0] = nd ? td_gb_sum(b, t, nd, dims, p.keepdim) : t;
}

const struct td_deriv td_deriv_vector_norm = {0x1, 0, vjp_norms, jvp_norms};
const struct td_deriv td_deriv_matrix_norm = {0x1, 0, vjp_norms, jvp_norms};
const struct td_deriv td_deriv_norm = {0x1, 0, vjp_norms, jvp_norms};

/* ---- cond. p 2 (default): c = s_0 / s_k, dc = ds_0 / s_k - s_0 ds_k / s_k^2 with
 * ds_i = Re<u_i v_i^H, dA> (-2 the reciprocal); other p: c = N(A) N(A^-1) and
 * dN(A^-1) = Re<-A^-H w(A^-1) A^-H, dA>. ---- */

static struct td_tensor *cond_weight(struct td_gb *b, const struct td_op_ctx *c,
                                     struct td_tensor *a)
{
    const char *ps = td_arg_str(c, "p");
    enum td__mord mo = TD__MO_2;
    if (ps && td__norm_mord(ps, &mo))
        return td_gb_fail(b, TD_EINVAL, "cond: bad p '%s'", ps);
    if (!a)
        return NULL;
    int nd = a->ndim;
    if (mo == TD__MO_2 || mo == TD__MO_N2) {
        struct td_tensor *usv[3] = {NULL, NULL, NULL};
        svd_thin(b, a, usv);
        if (!usv[1])
            return NULL;
        int64_t k = usv[1]->shape[usv[1]->ndim - 1];
        int64_t hi = mo == TD__MO_2 ? 0 : k - 1, lo = mo == TD__MO_2 ? k - 1 : 0;
        struct td_tensor *sh = unsqueeze(b, narrow(b, usv[1], -1, hi, 1), -1);
        struct td_tensor *sl = unsqueeze(b, narrow(b, usv[1], -1, lo, 1), -1);
        struct td_tensor *wh = sv_outer(b, usv[0], usv[2], hi);
        struct td_tensor *wl = sv_outer(b, usv[0], usv[2], lo);
        return SUB(DIV(wh, sl), MUL(DIV(sh, MUL(sl, sl)), wl));
    }
    int64_t dd[2] = {-2, -1};
    struct td_attr_arg na[3] = {TD_A_STR("ord", MORD_NAME[mo]), td_a_ints("dim", 2, dd),
                                TD_A_BOOL("keepdim", true)};
    struct td_tensor *ai = td_gb_op(b, TD_OP_inv, 1, &a, 0, NULL);
    struct td_tensor *n1 = td_gb_op(b, TD_OP_matrix_norm, 1, &a, 3, na);
    struct td_tensor *n2 = td_gb_op(b, TD_OP_matrix_norm, 1, &ai, 3, na);
    struct td_tensor *w1 = mat_weight(b, a, mo, nd - 2, nd - 1);
    struct td_tensor *w2 = mat_weight(b, ai, mo, nd - 2, nd - 1);
    struct td_tensor *aih = mH(b, ai);
    return SUB(MUL(n2, w1), MUL(n1, MM(MM(aih, w2), aih)));
}

static void vjp_cond(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *w = cond_weight(b, v->c, IN(0));
    struct td_tensor *g = unsqueeze(b, unsqueeze(b, v->grad[0], -1), -1);
    v->grad_in[0] = MUL(g, w);
}

static void jvp_cond(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *w = cond_weight(b, j->c, j->primal_in[0]);
    int64_t dd[2] = {-2, -1};
    j->tangent_out[0] = td_gb_sum(b, REAL(MUL(CONJ(w), j->tangent_in[0])), 2, dd, false);
}

const struct td_deriv td_deriv_cond = {0x1, 0, vjp_cond, jvp_cond};

/* ---- pinv: PyTorch's closed forms (pinv_backward, pinv_jvp; Golub & Pereyra 1973) in
 * terms of A and P = pinv(A), valid where the rank is locally constant. hermitian reads the
 * lower triangle and the real diagonal: the derivative is taken at
 * A_e = tril(A, -1) + tril(A, -1)^H + Re(diag(A)) and mapped back onto that triangle. ---- */

static struct td_tensor *herm_lower(struct td_gb *b, struct td_tensor *x)
{
    struct td_tensor *l = tri(b, TD_OP_tril, x, -1);
    return ADD(ADD(l, mH(b, l)), REAL(diag_part(b, x)));
}

static struct td_tensor *pinv_vjp_at(struct td_gb *b, struct td_tensor *g, struct td_tensor *p,
                                     struct td_tensor *a, int64_t m, int64_t n)
{
    struct td_tensor *ph = mH(b, p), *gh = mH(b, g);
    if (m <= n) {
        struct td_tensor *k = MM(gh, p);
        struct td_tensor *kph = MM(k, ph);
        struct td_tensor *r = SUB(kph, mH(b, MM(p, k)));
        r = SUB(r, MM(MM(a, p), kph));
        return ADD(r, MM(MM(ph, p), SUB(gh, MM(k, a))));
    }
    struct td_tensor *k = MM(p, gh);
    struct td_tensor *phk = MM(ph, k);
    struct td_tensor *r = NEG(mH(b, MM(k, p)));
    r = ADD(r, MM(MM(SUB(gh, MM(a, k)), p), ph));
    r = ADD(r, phk);
    return SUB(r, MM(MM(phk, p), a));
}

static struct td_tensor *pinv_jvp_at(struct td_gb *b, struct td_tensor *a, struct td_tensor *p,
                                     struct td_tensor *da, int64_t m, int64_t n)
{
    struct td_tensor *dah = mH(b, da), *ph = mH(b, p);
    if (m <= n) {
        struct td_tensor *k = MM(ph, dah);
        struct td_tensor *l = SUB(SUB(k, mH(b, k)), MM(k, MM(a, p)));
        return ADD(MM(p, l), MM(SUB(dah, MM(p, MM(a, dah))), MM(ph, p)));
    }
    struct td_tensor *k = MM(p, da);
    struct td_tensor *kh = mH(b, k);
    struct td_tensor *l = SUB(SUB(kh, k), MM(MM(p, a), kh));
    return ADD(MM(l, p), MM(MM(p, ph), SUB(dah, MM(MM(dah, a), p))));
}

static void vjp_pinv(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *am = &v->c->in_meta[0];
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1];
    bool herm = td_arg_bool(v->c, "hermitian");
    struct td_tensor *a = herm ? herm_lower(b, IN(0)) : IN(0);
    struct td_tensor *g = pinv_vjp_at(b, v->grad[0], td_gb_saved_output(b, 0), a, m, n);
    if (herm)
        g = ADD(tri(b, TD_OP_tril, ADD(g, mH(b, g)), -1), REAL(diag_part(b, g)));
    v->grad_in[0] = g;
}

static void jvp_pinv(struct td_gb *b, struct td_jvp *j)
{
    const struct td_meta *am = &j->c->in_meta[0];
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1];
    bool herm = td_arg_bool(j->c, "hermitian");
    struct td_tensor *a0 = j->primal_in[0];
    struct td_tensor *p = td_gb_grad_mode(b) ? same_op(b, j->c, 1, &a0) : j->primal_out[0];
    struct td_tensor *a = herm ? herm_lower(b, a0) : a0;
    struct td_tensor *da = herm ? herm_lower(b, j->tangent_in[0]) : j->tangent_in[0];
    j->tangent_out[0] = pinv_jvp_at(b, a, p, da, m, n);
}

const struct td_deriv td_deriv_pinv = {0x1, 0x1, vjp_pinv, jvp_pinv};

/* ---- matrix_exp: the Frechet derivative L(A, E) is the upper-right block of
 * exp([[A, E], [0, A]]) (Higham, Functions of Matrices, 2008, Theorem 3.6); the VJP is its
 * adjoint L(A^H, G). Both run matrix_exp itself, so every order composes. ---- */

static struct td_tensor *expm_frechet(struct td_gb *b, struct td_tensor *a, struct td_tensor *e,
                                      int64_t n)
{
    struct td_tensor *top = cat2(b, a, e, -1);
    struct td_tensor *bot = cat2(b, td_gb_zeros_like(b, e), a, -1);
    struct td_tensor *mx = cat2(b, top, bot, -2);
    struct td_tensor *ex = td_gb_op(b, TD_OP_matrix_exp, 1, &mx, 0, NULL);
    return narrow(b, narrow(b, ex, -2, 0, n), -1, n, n);
}

static void vjp_matrix_exp(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *am = &v->c->in_meta[0];
    int64_t n = am->shape[am->ndim - 1];
    struct td_tensor *g = v->grad[0];
    struct td_tensor *ah = mH(b, IN(0));
    if (g && ah && g->dtype != ah->dtype)
        ah = td_gb_cast(b, ah, g->dtype);
    v->grad_in[0] = expm_frechet(b, ah, g, n);
}

static void jvp_matrix_exp(struct td_gb *b, struct td_jvp *j)
{
    const struct td_meta *am = &j->c->in_meta[0];
    int64_t n = am->shape[am->ndim - 1];
    j->tangent_out[0] = expm_frechet(b, j->primal_in[0], j->tangent_in[0], n);
}

const struct td_deriv td_deriv_matrix_exp = {0x1, 0, vjp_matrix_exp, jvp_matrix_exp};
