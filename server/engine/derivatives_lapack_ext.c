/*
 * derivatives_lapack_ext.c - VJPs and JVPs of the ops of ops_lapack_ext.c: solve_triangular,
 * inv_ex, solve_ex, cholesky_ex, lu_factor, lu_factor_ex, lu, lu_solve, eig, eigvals,
 * lstsq and householder_product.
 *
 * Everything is written with the td_gb builder from differentiable ops (matmul, transpose,
 * conj, tril/triu, solve, solve_triangular, lu_solve, eig, ...), so with create_graph the
 * gradients are differentiable again. Complex inputs follow PyTorch's convention
 * (td_autograd.h); the formulas are PyTorch's (torch/csrc/autograd/FunctionsManual.cpp:
 * linalg_lu_backward / linalg_lu_jvp, linalg_lu_solve_LU, linalg_eig_backward /
 * linalg_eig_jvp) or derived below where tensord's outputs differ. inv_ex, solve_ex (left)
 * and cholesky_ex reuse the formulas of inv, solve and cholesky (derivatives_linalg.c): their
 * first output is the same function of the inputs, and the info output is an integer.
 */
#include "td_derivatives.h"
#include "td_lapack.h"

#define TRIL(x, k) tri(b, TD_OP_tril, (x), (k))
#define TRIU(x, k) tri(b, TD_OP_triu, (x), (k))

/* solve_triangular(a, x, upper, left, unitriangular). */
static struct td_tensor *stri(struct td_gb *b, struct td_tensor *a, struct td_tensor *x,
                              bool upper, bool left, bool unit)
{
    struct td_tensor *in[2] = {a, x};
    struct td_attr_arg at[3] = {TD_A_BOOL("upper", upper), TD_A_BOOL("left", left),
                                TD_A_BOOL("unitriangular", unit)};
    return td_gb_op(b, TD_OP_solve_triangular, 2, in, 3, at);
}

static struct td_tensor *solve2(struct td_gb *b, struct td_tensor *a, struct td_tensor *x)
{
    struct td_tensor *in[2] = {a, x};
    return td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
}

/* n x m identity (m < 0: square) of dtype dt. */
static struct td_tensor *eye(struct td_gb *b, int64_t n, int64_t m, enum td_dtype dt)
{
    struct td_attr_arg a[3] = {TD_A_INT("n", n), TD_A_DTYPE("dtype", dt), TD_A_INT("m", m)};
    return td_gb_op(b, TD_OP_eye, 0, NULL, m < 0 ? 2 : 3, a);
}

static struct td_tensor *squeeze_last(struct td_gb *b, struct td_tensor *x)
{
    int64_t last = -1;
    struct td_attr_arg a = td_a_ints("dim", 1, &last);
    return td_gb_op(b, TD_OP_squeeze, 1, &x, 1, &a);
}

/* The diagonal of the last two dims as a vector (square x). */
static struct td_tensor *diag_of(struct td_gb *b, struct td_tensor *x, int64_t n)
{
    int64_t last = -1;
    struct td_tensor *e = eye(b, n, -1, x ? x->dtype : TD_FLOAT64);
    return td_gb_sum(b, MUL(x, e), 1, &last, false);
}

/* diag_embed of a vector v [..., n]. */
static struct td_tensor *diag_embed(struct td_gb *b, struct td_tensor *v, int64_t n)
{
    return MUL(unsqueeze(b, v, -1), eye(b, n, -1, v ? v->dtype : TD_FLOAT64));
}

static int64_t dim_of(const struct td_meta *m, int k)
{
    return m->shape[m->ndim + k];
}

/* ---- solve_triangular: X = A^-1 B (left) or B A^-1 (right), A triangular.
 * VJP: gB = A^-H g (left) / g A^-H (right); gA = -gB X^H (left) / -X^H gB (right), kept on
 * the triangle that is read (strictly, for unitriangular).
 * JVP: dX = A^-1 (dB - dA X) (left) / (dB - X dA) A^-1 (right), dA on the read triangle. */

static struct td_tensor *tri_part(struct td_gb *b, struct td_tensor *x, bool upper, bool unit)
{
    return upper ? TRIU(x, unit ? 1 : 0) : TRIL(x, unit ? -1 : 0);
}

static void vjp_solve_triangular(struct td_gb *b, struct td_vjp *v)
{
    bool upper = td_arg_bool(v->c, "upper"), left = td_arg_bool(v->c, "left");
    bool unit = td_arg_bool(v->c, "unitriangular");
    struct td_tensor *A = IN(0);
    struct td_tensor *gb = stri(b, mH(b, A), v->grad[0], !upper, left, unit);
    if (v->needs[1])
        v->grad_in[1] = gb;
    if (v->needs[0]) {
        struct td_tensor *x = OUT(0);
        struct td_tensor *ga = left ? MM(gb, mH(b, x)) : MM(mH(b, x), gb);
        v->grad_in[0] = NEG(tri_part(b, ga, upper, unit));
    }
}

static void jvp_solve_triangular(struct td_gb *b, struct td_jvp *j)
{
    bool upper = td_arg_bool(j->c, "upper"), left = td_arg_bool(j->c, "left");
    bool unit = td_arg_bool(j->c, "unitriangular");
    struct td_tensor *A = j->primal_in[0];
    struct td_tensor *x = td_gb_grad_mode(b) ? same_op(b, j->c, 2, j->primal_in)
                                             : j->primal_out[0];
    struct td_tensor *da = tri_part(b, j->tangent_in[0], upper, unit);
    struct td_tensor *rhs = SUB(j->tangent_in[1], left ? MM(da, x) : MM(x, da));
    j->tangent_out[0] = stri(b, A, rhs, upper, left, unit);
}

const struct td_deriv td_deriv_solve_triangular = {0x1, 0x1, vjp_solve_triangular,
                                                   jvp_solve_triangular};

/* ---- inv_ex: the inverse is inv(A); info is an integer output. ---- */

static void vjp_inv_ex(struct td_gb *b, struct td_vjp *v)
{
    td_deriv_inv.vjp(b, v);
}

static void jvp_inv_ex(struct td_gb *b, struct td_jvp *j)
{
    td_deriv_inv.jvp(b, j);
}

const struct td_deriv td_deriv_inv_ex = {0, 0x1, vjp_inv_ex, jvp_inv_ex};

/* ---- solve_ex: left is solve's formula; right (X = B A^-1):
 * gB = g A^-H, gA = -X^H gB; dX = (dB - X dA) A^-1. ---- */

static struct td_tensor *solve_right(struct td_gb *b, struct td_tensor *a, struct td_tensor *x)
{
    struct td_tensor *in[2] = {a, x}, *o[2] = {NULL, NULL};
    struct td_attr_arg at = TD_A_BOOL("left", false);
    (void)td_gb_opn(b, TD_OP_solve_ex, 2, in, 1, &at, 2, o);
    return o[0];
}

static void vjp_solve_ex(struct td_gb *b, struct td_vjp *v)
{
    if (td_arg_bool(v->c, "left")) {
        td_deriv_solve.vjp(b, v);
        return;
    }
    struct td_tensor *gb = solve_right(b, mH(b, IN(0)), v->grad[0]);
    if (v->needs[1])
        v->grad_in[1] = gb;
    if (v->needs[0])
        v->grad_in[0] = NEG(MM(mH(b, OUT(0)), gb));
}

static void jvp_solve_ex(struct td_gb *b, struct td_jvp *j)
{
    if (td_arg_bool(j->c, "left")) {
        td_deriv_solve.jvp(b, j);
        return;
    }
    struct td_tensor *A = j->primal_in[0];
    struct td_tensor *x = td_gb_grad_mode(b) ? solve_right(b, A, j->primal_in[1])
                                             : j->primal_out[0];
    j->tangent_out[0] = solve_right(b, A, SUB(j->tangent_in[1], MM(x, j->tangent_in[0])));
}

const struct td_deriv td_deriv_solve_ex = {0x1, 0x1, vjp_solve_ex, jvp_solve_ex};

/* ---- cholesky_ex: cholesky's formula. Its JVP re-runs the op under grad mode, so it
 * sees a context of cholesky itself (same first attribute, upper; one output). ---- */

static void vjp_cholesky_ex(struct td_gb *b, struct td_vjp *v)
{
    td_deriv_cholesky.vjp(b, v);
}

static void jvp_cholesky_ex(struct td_gb *b, struct td_jvp *j)
{
    struct td_op_ctx cc = *j->c;
    cc.op = TD_OP_cholesky;
    cc.info = td_op_info_get(TD_OP_cholesky);
    cc.noutputs = 1;
    struct td_jvp jj = *j;
    jj.c = &cc;
    td_deriv_cholesky.jvp(b, &jj);
}

const struct td_deriv td_deriv_cholesky_ex = {0, 0x1, vjp_cholesky_ex, jvp_cholesky_ex};

/* ---- LU: A = P L U, P a constant permutation (none without pivoting), L m x k unit lower,
 * U k x n upper, k = min(m, n). PyTorch's linalg_lu_backward and linalg_lu_jvp, square,
 * wide (m < n) and tall (m > n). ---- */

struct lu_parts {
    struct td_tensor *P, *L, *U;   /* P NULL: no pivoting */
    int64_t m, n, k;
};

static struct td_tensor *lu_ga(struct td_gb *b, const struct lu_parts *f, struct td_tensor *gl,
                               struct td_tensor *gu)
{
    struct td_tensor *L = f->L, *U = f->U, *ga;
    int64_t m = f->m, n = f->n, k = f->k;
    gl = TRIL(gl, -1);
    gu = TRIU(gu, 0);
    if (m == n) {
        /* P L^-H [tril(L^H gL, -1) + triu(gU U^H)] U^-H */
        ga = ADD(TRIL(MM(mH(b, L), gl), -1), TRIU(MM(gu, mH(b, U)), 0));
        ga = stri(b, mH(b, U), ga, false, false, false);
        ga = stri(b, mH(b, L), ga, true, true, true);
    } else if (m < n) {
        /* A1: P L^-H [gU1 + tril(L^H gL - gU U^H, -1) U1^-H]; A2: P L^-H gU2 */
        struct td_tensor *u1 = narrow(b, U, -1, 0, k);
        ga = SUB(MM(mH(b, L), gl), MM(gu, mH(b, U)));
        ga = stri(b, mH(b, u1), TRIL(ga, -1), false, false, false);
        ga = cat2(b, ADD(ga, narrow(b, gu, -1, 0, k)), narrow(b, gu, -1, k, n - k), -1);
        ga = stri(b, mH(b, L), ga, true, true, true);
    } else {
        /* A1: P [gL1 + L1^-H triu(gU U^H - L^H gL)] U^-H; A2: P gL2 U^-H */
        struct td_tensor *l1 = narrow(b, L, -2, 0, k);
        ga = SUB(MM(gu, mH(b, U)), MM(mH(b, L), gl));
        ga = stri(b, mH(b, l1), TRIU(ga, 0), true, true, true);
        ga = cat2(b, ADD(ga, narrow(b, gl, -2, 0, k)), narrow(b, gl, -2, k, m - k), -2);
        ga = stri(b, mH(b, U), ga, false, false, false);
    }
    return f->P ? MM(f->P, ga) : ga;
}

/* dL, dU of A = P L U for the tangent da. */
static void lu_dlu(struct td_gb *b, const struct lu_parts *f, struct td_tensor *da,
                   struct td_tensor **dl, struct td_tensor **du)
{
    struct td_tensor *L = f->L, *U = f->U;
    int64_t m = f->m, n = f->n, k = f->k;
    struct td_tensor *pda = f->P ? MM(mT(b, f->P), da) : da;
    if (m == n) {
        struct td_tensor *dk = stri(b, L, pda, false, true, true);
        dk = stri(b, U, dk, true, false, false);
        *dl = MM(L, TRIL(dk, -1));
        *du = MM(TRIU(dk, 0), U);
    } else if (m < n) {
        struct td_tensor *u1 = narrow(b, U, -1, 0, k), *u2 = narrow(b, U, -1, k, n - k);
        struct td_tensor *dk = stri(b, L, narrow(b, pda, -1, 0, k), false, true, true);
        dk = stri(b, u1, dk, true, false, false);
        struct td_tensor *kl = TRIL(dk, -1);
        *dl = MM(L, kl);
        struct td_tensor *du2 = SUB(stri(b, L, narrow(b, pda, -1, k, n - k), false, true, true),
                                    MM(kl, u2));
        *du = cat2(b, MM(TRIU(dk, 0), u1), du2, -1);
    } else {
        struct td_tensor *l1 = narrow(b, L, -2, 0, k), *l2 = narrow(b, L, -2, k, m - k);
        struct td_tensor *dk = stri(b, l1, narrow(b, pda, -2, 0, k), false, true, true);
        dk = stri(b, U, dk, true, false, false);
        struct td_tensor *ku = TRIU(dk, 0);
        *du = MM(ku, U);
        struct td_tensor *dl2 = SUB(stri(b, U, narrow(b, pda, -2, k, m - k), true, false, false),
                                    MM(l2, ku));
        *dl = cat2(b, MM(l1, TRIL(dk, -1)), dl2, -2);
    }
}

/* P, L, U of A by the lu op (recorded, so L and U are differentiable in A). */
static void lu_parts_of(struct td_gb *b, struct td_tensor *A, bool pivot, const struct td_meta *am,
                        struct lu_parts *f)
{
    struct td_tensor *o[3] = {NULL, NULL, NULL};
    struct td_attr_arg a = TD_A_BOOL("pivot", pivot);
    (void)td_gb_opn(b, TD_OP_lu, 1, &A, 1, &a, 3, o);
    f->P = pivot ? o[0] : NULL;
    f->L = o[1];
    f->U = o[2];
    f->m = dim_of(am, -2);
    f->n = dim_of(am, -1);
    f->k = f->m < f->n ? f->m : f->n;
}

/* The packed LU tangent (m x n) from dL (m x k, strictly lower) and dU (k x n, upper). */
static struct td_tensor *lu_pack(struct td_gb *b, const struct lu_parts *f, struct td_tensor *dl,
                                 struct td_tensor *du, const struct td_meta *am)
{
    struct td_meta zm = *am;
    zm.wrapped_number = false;
    if (f->m > f->n) {
        zm.shape[zm.ndim - 2] = f->m - f->k;
        du = cat2(b, du, td_gb_zeros(b, &zm), -2);
    } else if (f->m < f->n) {
        zm.shape[zm.ndim - 1] = f->n - f->k;
        dl = cat2(b, dl, td_gb_zeros(b, &zm), -1);
    }
    return ADD(dl, du);
}

/* lu_factor and lu_factor_ex: output 0 packs L (strictly lower) and U. */
static void vjp_lu_factor(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct lu_parts f;
    const struct td_meta *am = &v->c->in_meta[0];
    lu_parts_of(b, IN(0), td_arg_bool(v->c, "pivot"), am, &f);
    struct td_tensor *g = v->grad[0];
    struct td_tensor *gl = f.m > f.n ? g : narrow(b, g, -1, 0, f.k);
    struct td_tensor *gu = f.m > f.n ? narrow(b, g, -2, 0, f.k) : g;
    v->grad_in[0] = lu_ga(b, &f, gl, gu);
}

static void jvp_lu_factor(struct td_gb *b, struct td_jvp *j)
{
    struct lu_parts f;
    const struct td_meta *am = &j->c->in_meta[0];
    struct td_tensor *dl = NULL, *du = NULL;
    lu_parts_of(b, j->primal_in[0], td_arg_bool(j->c, "pivot"), am, &f);
    lu_dlu(b, &f, j->tangent_in[0], &dl, &du);
    j->tangent_out[0] = lu_pack(b, &f, dl, du, am);
}

const struct td_deriv td_deriv_lu_factor = {0x1, 0, vjp_lu_factor, jvp_lu_factor};
const struct td_deriv td_deriv_lu_factor_ex = {0x1, 0, vjp_lu_factor, jvp_lu_factor};

/* lu: P is piecewise constant and gets no gradient. */
static void vjp_lu(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *am = &v->c->in_meta[0];
    struct lu_parts f = {td_arg_bool(v->c, "pivot") ? OUT(0) : NULL, OUT(1), OUT(2),
                         dim_of(am, -2), dim_of(am, -1), 0};
    f.k = f.m < f.n ? f.m : f.n;
    v->grad_in[0] = lu_ga(b, &f, v->grad[1], v->grad[2]);
}

static void jvp_lu(struct td_gb *b, struct td_jvp *j)
{
    struct lu_parts f;
    const struct td_meta *am = &j->c->in_meta[0];
    bool pivot = td_arg_bool(j->c, "pivot");
    if (td_gb_grad_mode(b)) {
        lu_parts_of(b, j->primal_in[0], pivot, am, &f);
    } else {
        f.P = pivot ? j->primal_out[0] : NULL;
        f.L = j->primal_out[1];
        f.U = j->primal_out[2];
        f.m = dim_of(am, -2);
        f.n = dim_of(am, -1);
        f.k = f.m < f.n ? f.m : f.n;
    }
    lu_dlu(b, &f, j->tangent_in[0], &j->tangent_out[1], &j->tangent_out[2]);
}

const struct td_deriv td_deriv_lu = {0, 0x7, vjp_lu, jvp_lu};

/* ---- lu_solve(LU, pivots, B): A = P L U with L = tril(LU, -1) + I, U = triu(LU).
 * With op(A) = A or A^H (adjoint) and X = op(A)^-1 B (left) or B op(A)^-1 (right):
 *   gB = lu_solve(LU, pivots, g, left, !adjoint);
 *   gA = -gB X^H (left), -X gB^H (left, adjoint), -X^H gB (right), -gB^H X (right, adjoint);
 *   gLU = tril(P^T gA U^H, -1) + triu(L^H P^T gA)   (from dA = P (dL U + L dU)).
 *   dX = lu_solve(LU, pivots, dB - op(dA) X (left) or dB - X op(dA) (right), left, adjoint).
 * P^T M is lu_solve(I, pivots, M): the permutation alone. ---- */

static struct td_tensor *lus(struct td_gb *b, struct td_tensor *lu, struct td_tensor *piv,
                             struct td_tensor *x, bool left, bool adj)
{
    struct td_tensor *in[3] = {lu, piv, x};
    struct td_attr_arg a[2] = {TD_A_BOOL("left", left), TD_A_BOOL("adjoint", adj)};
    return td_gb_op(b, TD_OP_lu_solve, 3, in, 2, a);
}

/* P^T x for the permutation of pivots (LU's meta lm). */
static struct td_tensor *perm_t(struct td_gb *b, struct td_tensor *piv, struct td_tensor *x,
                                const struct td_meta *lm)
{
    struct td_tensor *e = eye(b, dim_of(lm, -1), -1, lm->dtype);
    return lus(b, td_gb_expand(b, e, lm->ndim, lm->shape), piv, x, true, false);
}

static void vjp_lu_solve(struct td_gb *b, struct td_vjp *v)
{
    bool left = td_arg_bool(v->c, "left"), adj = td_arg_bool(v->c, "adjoint");
    const struct td_meta *lm = &v->c->in_meta[0];
    struct td_tensor *LU = IN(0), *piv = IN(1);
    struct td_tensor *gb = lus(b, LU, piv, v->grad[0], left, !adj);
    if (v->needs[2])
        v->grad_in[2] = gb;
    if (!v->needs[0])
        return;
    struct td_tensor *x = OUT(0), *ga;
    if (left)
        ga = adj ? MM(x, mH(b, gb)) : MM(gb, mH(b, x));
    else
        ga = adj ? MM(mH(b, gb), x) : MM(mH(b, x), gb);
    struct td_tensor *h = NEG(perm_t(b, piv, ga, lm));
    struct td_tensor *L = ADD(TRIL(LU, -1), eye(b, dim_of(lm, -1), -1, lm->dtype));
    struct td_tensor *U = TRIU(LU, 0);
    v->grad_in[0] = ADD(TRIL(MM(h, mH(b, U)), -1), TRIU(MM(mH(b, L), h), 0));
}

static void jvp_lu_solve(struct td_gb *b, struct td_jvp *j)
{
    bool left = td_arg_bool(j->c, "left"), adj = td_arg_bool(j->c, "adjoint");
    const struct td_meta *lm = &j->c->in_meta[0];
    struct td_tensor *LU = j->primal_in[0], *piv = j->primal_in[1];
    struct td_tensor *x = td_gb_grad_mode(b) ? same_op(b, j->c, 3, j->primal_in)
                                             : j->primal_out[0];
    struct td_tensor *dlu = j->tangent_in[0];
    struct td_tensor *L = ADD(TRIL(LU, -1), eye(b, dim_of(lm, -1), -1, lm->dtype));
    struct td_tensor *inner = ADD(MM(TRIL(dlu, -1), TRIU(LU, 0)), MM(L, TRIU(dlu, 0)));
    /* dA = P inner = (P^T inner^T ... ) computed as (P^T)^T inner: P = (P^T I)^T. */
    struct td_tensor *pt = perm_t(b, piv, td_gb_expand(b, eye(b, dim_of(lm, -1), -1, lm->dtype),
                                                       lm->ndim, lm->shape), lm);
    struct td_tensor *da = MM(mT(b, pt), inner);
    if (adj)
        da = mH(b, da);
    struct td_tensor *rhs = SUB(j->tangent_in[2], left ? MM(da, x) : MM(x, da));
    j->tangent_out[0] = lus(b, LU, piv, rhs, left, adj);
}

const struct td_deriv td_deriv_lu_solve = {0x3, 0x1, vjp_lu_solve, jvp_lu_solve};

/* ---- eig: A V = V diag(L), V's columns of unit norm (PyTorch's gauge: Re(v_i^H dv_i) = 0).
 * VJP (linalg_eig_backward): gA = V^-H (diag(gL) + offdiag((V^H gV - V^H V Re(diag(V^H gV)))
 * / conj(E))) V^H with E_ij = L_j - L_i. JVP (linalg_eig_jvp): dP = V^-1 dA V, dL = diag(dP),
 * dV = V C - V Re(diag(V^H V C)), C = offdiag(dP / E). For a real A the engine keeps the real
 * part of gA. ---- */

static void eig_parts(struct td_gb *b, struct td_tensor *A, struct td_tensor **L,
                      struct td_tensor **V)
{
    struct td_tensor *o[2] = {NULL, NULL};
    (void)td_gb_opn(b, TD_OP_eig, 1, &A, 0, NULL, 2, o);
    *L = o[0];
    *V = o[1];
}

/* E_ij = x_j - x_i off the diagonal, 1 on it. */
static struct td_tensor *eig_gaps(struct td_gb *b, struct td_tensor *l, int64_t n)
{
    struct td_tensor *e = SUB(unsqueeze(b, l, -2), unsqueeze(b, l, -1));
    return ADD(e, eye(b, n, -1, l ? l->dtype : TD_COMPLEX128));
}

static struct td_tensor *offdiag(struct td_gb *b, struct td_tensor *x, int64_t n)
{
    return SUB(x, diag_embed(b, diag_of(b, x, n), n));
}

static struct td_tensor *eig_ga(struct td_gb *b, struct td_tensor *L, struct td_tensor *V,
                                struct td_tensor *gl, struct td_tensor *gv, int64_t n)
{
    struct td_tensor *vh = mH(b, V), *inner = diag_embed(b, gl, n);
    if (gv) {
        struct td_tensor *vhgv = MM(vh, gv);
        struct td_tensor *re = td_gb_unary(b, TD_OP_real, diag_of(b, vhgv, n));
        struct td_tensor *r = SUB(vhgv, MM(vh, MUL(V, unsqueeze(b, re, -2))));
        r = DIV(r, eig_gaps(b, CONJ(L), n));
        inner = ADD(inner, offdiag(b, r, n));
    }
    return solve2(b, vh, MM(inner, vh));
}

static void vjp_eig(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    v->grad_in[0] = eig_ga(b, OUT(0), OUT(1), v->grad[0], v->grad[1],
                           dim_of(&v->c->in_meta[0], -1));
}

static void jvp_eig(struct td_gb *b, struct td_jvp *j)
{
    int64_t n = dim_of(&j->c->in_meta[0], -1);
    struct td_tensor *L = j->primal_out[0], *V = j->primal_out[1];
    if (td_gb_grad_mode(b))
        eig_parts(b, j->primal_in[0], &L, &V);
    struct td_tensor *da = td_gb_cast(b, j->tangent_in[0], j->primal_out[1]->dtype);
    struct td_tensor *dp = solve2(b, V, MM(da, V));
    j->tangent_out[0] = diag_of(b, dp, n);
    struct td_tensor *vc = MM(V, offdiag(b, DIV(dp, eig_gaps(b, L, n)), n));
    struct td_tensor *re = td_gb_unary(b, TD_OP_real, diag_of(b, MM(mH(b, V), vc), n));
    j->tangent_out[1] = SUB(vc, MUL(V, unsqueeze(b, re, -2)));
}

const struct td_deriv td_deriv_eig = {0, 0x3, vjp_eig, jvp_eig};

/* eigvals: gA = V^-H diag(gL) V^H, dL = diag(V^-1 dA V), V from eig(A). */
static void vjp_eigvals(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *L = NULL, *V = NULL;
    eig_parts(b, IN(0), &L, &V);
    v->grad_in[0] = eig_ga(b, L, V, v->grad[0], NULL, dim_of(&v->c->in_meta[0], -1));
}

static void jvp_eigvals(struct td_gb *b, struct td_jvp *j)
{
    int64_t n = dim_of(&j->c->in_meta[0], -1);
    struct td_tensor *L = NULL, *V = NULL;
    eig_parts(b, j->primal_in[0], &L, &V);
    struct td_tensor *da = td_gb_cast(b, j->tangent_in[0], j->primal_out[0]->dtype);
    j->tangent_out[0] = diag_of(b, solve2(b, V, MM(da, V)), n);
}

const struct td_deriv td_deriv_eigvals = {0x1, 0, vjp_eigvals, jvp_eigvals};

/* ---- lstsq, for A of full rank (B's vectors as one-column matrices):
 * m >= n: X = G^-1 A^H B, G = A^H A, R = B - A X:
 *   dX = G^-1 (dA^H R + A^H (dB - dA X)); gB = A Y, gA = R Y^H - A Y X^H with Y = G^-1 g.
 * m < n (minimum norm): X = A^H Z, Z = H^-1 B, H = A A^H:
 *   dX = dA^H Z + A^H H^-1 (dB - dA X - A dA^H Z);
 *   gB = W = H^-1 A g, gA = Z g^H - W X^H - Z W^H A.
 * residuals r_j = ||A x_j - b_j||^2 (m > n, A^H (A X - B) = 0):
 *   dr_j = 2 Re sum_i conj(E_ij) (dA X - dB)_ij with E = A X - B; gA = 2 E diag(gr) X^H,
 *   gB = -2 E diag(gr).
 * singular_values (gelsd/gelss): gA = U diag(gS) Vh, dS = Re diag(U^H dA Vh^H), U and Vh
 * from svd. ---- */

static int64_t numel_of(const struct td_meta *m)
{
    return td_shape_numel(m->shape, m->ndim);
}

static void vjp_lstsq(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0], *bm = &v->c->in_meta[1];
    bool vec = td__lp_b_is_vec(am, bm);
    int64_t m = dim_of(am, -2), n = dim_of(am, -1);
    struct td_tensor *A = IN(0), *B = IN(1), *X = OUT(0), *g = v->grad[0];
    if (vec) {
        B = unsqueeze(b, B, -1);
        X = unsqueeze(b, X, -1);
        g = unsqueeze(b, g, -1);
    }
    struct td_tensor *ga, *gb, *ah = mH(b, A);
    if (m >= n) {
        struct td_tensor *y = solve2(b, MM(ah, A), g);
        struct td_tensor *r = SUB(B, MM(A, X));
        gb = MM(A, y);
        ga = SUB(MM(r, mH(b, y)), MM(gb, mH(b, X)));
    } else {
        struct td_tensor *h = MM(A, ah);
        struct td_tensor *z = solve2(b, h, B), *w = solve2(b, h, MM(A, g));
        gb = w;
        ga = SUB(SUB(MM(z, mH(b, g)), MM(w, mH(b, X))), MM(MM(z, mH(b, w)), A));
    }
    if (numel_of(&v->out_meta[1]) > 0) {
        struct td_tensor *e = SUB(MM(A, X), B);
        struct td_tensor *eg = td_gb_scale(b, MUL(e, unsqueeze(b, v->grad[1], -2)), 2.0);
        ga = ADD(ga, MM(eg, mH(b, X)));
        gb = SUB(gb, eg);
    }
    if (numel_of(&v->out_meta[3]) > 0) {
        struct td_tensor *usv[3] = {NULL, NULL, NULL};
        svd_thin(b, A, usv);
        ga = ADD(ga, MM(MUL(usv[0], unsqueeze(b, v->grad[3], -2)), usv[2]));
    }
    if (v->needs[0])
        v->grad_in[0] = ga;
    if (v->needs[1])
        v->grad_in[1] = vec ? squeeze_last(b, gb) : gb;
}

static void jvp_lstsq(struct td_gb *b, struct td_jvp *j)
{
    const struct td_meta *am = &j->c->in_meta[0], *bm = &j->c->in_meta[1];
    bool vec = td__lp_b_is_vec(am, bm);
    int64_t m = dim_of(am, -2), n = dim_of(am, -1);
    struct td_tensor *A = j->primal_in[0], *B = j->primal_in[1], *X = j->primal_out[0];
    struct td_tensor *da = j->tangent_in[0], *db = j->tangent_in[1];
    if (vec) {
        B = unsqueeze(b, B, -1);
        db = unsqueeze(b, db, -1);
    }
    struct td_tensor *ah = mH(b, A), *dx, *z = NULL;
    /* Under grad mode X is rebuilt from differentiable ops (full rank). */
    if (m >= n) {
        if (td_gb_grad_mode(b))
            X = solve2(b, MM(ah, A), MM(ah, B));
        else if (vec)
            X = unsqueeze(b, X, -1);
        struct td_tensor *r = SUB(B, MM(A, X));
        dx = solve2(b, MM(ah, A), ADD(MM(mH(b, da), r), MM(ah, SUB(db, MM(da, X)))));
    } else {
        struct td_tensor *h = MM(A, ah);
        z = solve2(b, h, B);
        if (td_gb_grad_mode(b))
            X = MM(ah, z);
        else if (vec)
            X = unsqueeze(b, X, -1);
        struct td_tensor *rhs = SUB(SUB(db, MM(da, X)), MM(A, MM(mH(b, da), z)));
        dx = ADD(MM(mH(b, da), z), MM(ah, solve2(b, h, rhs)));
    }
    j->tangent_out[0] = vec ? squeeze_last(b, dx) : dx;
    if (j->primal_out[1] && td_tensor_numel(j->primal_out[1]) > 0) {
        int64_t rows = -2;
        struct td_tensor *e = SUB(MM(A, X), B);
        struct td_tensor *s = td_gb_sum(b, MUL(CONJ(e), SUB(MM(da, X), db)), 1, &rows, false);
        j->tangent_out[1] = td_gb_scale(b, td_gb_unary(b, TD_OP_real, s), 2.0);
    }
    if (j->primal_out[3] && td_tensor_numel(j->primal_out[3]) > 0) {
        struct td_tensor *usv[3] = {NULL, NULL, NULL};
        svd_thin(b, A, usv);
        int64_t k = m < n ? m : n;
        struct td_tensor *p = MM(MM(mH(b, usv[0]), da), mH(b, usv[2]));
        j->tangent_out[3] = td_gb_unary(b, TD_OP_real, diag_of(b, p, k));
    }
}

const struct td_deriv td_deriv_lstsq = {TD_SAVE_ALL_INPUTS, 0x1, vjp_lstsq, jvp_lstsq};

/* ---- householder_product: Q = H_1 ... H_k (first n columns), H_i = I - tau_i v_i v_i^H,
 * v_i = e_i + A[i+1:, i] (the strictly lower part of column i). With F_i = H_1 ... H_i and
 * B_i = H_{i+1} ... H_k E (E the first n columns of I), and M_i = F_{i-1}^H g B_i^H:
 *   g tau_i = -v_i^H M_i v_i,  g v_i = -(conj(tau_i) M_i v_i + tau_i M_i^H v_i),
 * and gA keeps the strictly lower part of [g v_1 ... g v_k 0]. The JVP sums
 * F_{i-1} dH_i B_i with dH_i = -(dtau v v^H + tau dv v^H + tau v dv^H). ---- */

struct hh {
    int64_t m, n, k;
    struct td_tensor *V, *Im;        /* reflector columns (m x n), I (m x m) */
};

static struct td_tensor *hh_v(struct td_gb *b, const struct hh *h, int64_t i)
{
    return narrow(b, h->V, -1, i, 1);
}

static struct td_tensor *hh_tau(struct td_gb *b, struct td_tensor *tau, int64_t i)
{
    return unsqueeze(b, narrow(b, tau, -1, i, 1), -1);
}

static struct td_tensor *hh_h(struct td_gb *b, const struct hh *h, struct td_tensor *tau,
                              int64_t i)
{
    struct td_tensor *vi = hh_v(b, h, i);
    return SUB(h->Im, MUL(hh_tau(b, tau, i), MM(vi, mH(b, vi))));
}

static void hh_init(struct td_gb *b, struct hh *h, struct td_tensor *A, const struct td_meta *am,
                    const struct td_meta *tm)
{
    h->m = dim_of(am, -2);
    h->n = dim_of(am, -1);
    h->k = dim_of(tm, -1);
    h->V = ADD(TRIL(A, -1), eye(b, h->m, h->n, am->dtype));
    h->Im = eye(b, h->m, -1, am->dtype);
}

/* bs[i] = H_{i+1} ... H_k E for i = 0..k (bs[k] = E); caller frees bs. */
static struct td_tensor **hh_back(struct td_gb *b, const struct hh *h, struct td_tensor *tau)
{
    struct td_tensor **bs = td_calloc((size_t)h->k + 1, sizeof *bs);
    if (!bs) {
        td_gb_fail(b, TD_ENOMEM, "householder_product: out of memory");
        return NULL;
    }
    bs[h->k] = eye(b, h->m, h->n, h->Im ? h->Im->dtype : TD_FLOAT64);
    for (int64_t i = h->k - 1; i >= 0; i--)
        bs[i] = MM(hh_h(b, h, tau, i), bs[i + 1]);
    return bs;
}

static void vjp_householder_product(struct td_gb *b, struct td_vjp *v)
{
    struct hh h;
    struct td_tensor *A = IN(0), *tau = IN(1), *g = v->grad[0];
    hh_init(b, &h, A, &v->c->in_meta[0], &v->c->in_meta[1]);
    if (h.k == 0)
        return;
    struct td_tensor **bs = hh_back(b, &h, tau);
    if (!bs)
        return;
    struct td_tensor *F = h.Im, *gv = NULL, *gt = NULL;
    for (int64_t i = 0; i < h.k; i++) {
        struct td_tensor *vi = hh_v(b, &h, i), *ti = hh_tau(b, tau, i);
        struct td_tensor *M = MM(MM(mH(b, F), g), mH(b, bs[i + 1]));
        struct td_tensor *mv = MM(M, vi);
        struct td_tensor *gti = NEG(MM(mH(b, vi), mv));
        struct td_tensor *gvi = NEG(ADD(MUL(CONJ(ti), mv), MUL(ti, MM(mH(b, M), vi))));
        gv = gv ? cat2(b, gv, gvi, -1) : gvi;
        gt = gt ? cat2(b, gt, gti, -1) : gti;
        F = MM(F, hh_h(b, &h, tau, i));
    }
    td_free(bs);
    if (v->needs[0]) {
        if (h.k < h.n) {
            struct td_meta zm = v->c->in_meta[0];
            zm.wrapped_number = false;
            zm.shape[zm.ndim - 1] = h.n - h.k;
            gv = cat2(b, gv, td_gb_zeros(b, &zm), -1);
        }
        v->grad_in[0] = TRIL(gv, -1);
    }
    if (v->needs[1]) {
        const struct td_meta *tm = &v->c->in_meta[1];
        v->grad_in[1] = td_gb_reshape(b, gt, tm->ndim, tm->shape);
    }
}

static void jvp_householder_product(struct td_gb *b, struct td_jvp *j)
{
    struct hh h;
    struct td_tensor *A = j->primal_in[0], *tau = j->primal_in[1];
    hh_init(b, &h, A, &j->c->in_meta[0], &j->c->in_meta[1]);
    if (h.k == 0)
        return;
    struct td_tensor **bs = hh_back(b, &h, tau);
    if (!bs)
        return;
    struct td_tensor *dV = TRIL(j->tangent_in[0], -1), *dtau = j->tangent_in[1];
    struct td_tensor *F = h.Im, *acc = NULL;
    for (int64_t i = 0; i < h.k; i++) {
        struct td_tensor *vi = hh_v(b, &h, i), *ti = hh_tau(b, tau, i);
        struct td_tensor *dv = narrow(b, dV, -1, i, 1), *dt = hh_tau(b, dtau, i);
        struct td_tensor *dh = ADD(MUL(dt, MM(vi, mH(b, vi))),
                                   MUL(ti, ADD(MM(dv, mH(b, vi)), MM(vi, mH(b, dv)))));
        struct td_tensor *term = NEG(MM(MM(F, dh), bs[i + 1]));
        acc = acc ? ADD(acc, term) : term;
        F = MM(F, hh_h(b, &h, tau, i));
    }
    td_free(bs);
    j->tangent_out[0] = acc;
}

const struct td_deriv td_deriv_householder_product = {TD_SAVE_ALL_INPUTS, 0,
                                                      vjp_householder_product,
                                                      jvp_householder_product};
