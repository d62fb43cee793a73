/*
 * derivatives_linalg.c - VJPs and JVPs of the LAPACK ops (ops_lapack.c): inv, solve, det,
 * slogdet, cholesky.
 * Written with the td_gb builder from matmul, transpose, conj, inv and solve themselves, so
 * with create_graph the gradients are differentiable again. Complex inputs follow PyTorch's
 * convention (td_autograd.h): the VJP of a holomorphic f is grad * conj(f').
 */
#include "td_derivatives.h"

#define OUT(k) td_gb_saved_output(b, (k))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define SUB(x, y) td_gb_binary(b, TD_OP_sub, (x), (y))
#define MM(x, y) td_gb_binary(b, TD_OP_matmul, (x), (y))
#define NEG(x) td_gb_unary(b, TD_OP_neg, (x))
#define CONJ(x) td_gb_conj(b, (x))

/* x^T over the last two dims. */
static struct td_tensor *mT(struct td_gb *b, struct td_tensor *x)
{
    struct td_attr_arg a[2] = {TD_A_INT("dim0", -1), TD_A_INT("dim1", -2)};
    return td_gb_op(b, TD_OP_transpose, 1, &x, 2, a);
}

/* x^H over the last two dims. */
static struct td_tensor *mH(struct td_gb *b, struct td_tensor *x)
{
    return CONJ(mT(b, x));
}

/* ---- inv: Y = A^-1; dY = -Y dA Y; gA = -Y^H g Y^H ---- */

static void vjp_inv(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *yh = mH(b, OUT(0));
    v->grad_in[0] = NEG(MM(MM(yh, v->grad[0]), yh));
}

static void jvp_inv(struct td_gb *b, struct td_jvp *j)
{
    /* Under grad mode the output is recomputed so the tangent is differentiable. */
    struct td_tensor *y = td_gb_grad_mode(b) ? td_gb_op(b, TD_OP_inv, 1, j->primal_in, 0, NULL)
                                             : j->primal_out[0];
    j->tangent_out[0] = NEG(MM(MM(y, j->tangent_in[0]), y));
}

const struct td_deriv td_deriv_inv = {0, 0x1, vjp_inv, jvp_inv};

/* ---- solve: X = A^-1 B; gB = A^-H g; gA = -gB X^H (vectors: outer products) ---- */

static bool solve_is_vec(const struct td_meta *a, const struct td_meta *bm)
{
    if (bm->ndim == 1)
        return true;
    if (bm->ndim != a->ndim - 1)
        return false;
    for (int i = 0; i < bm->ndim; i++)
        if (bm->shape[i] != a->shape[i])
            return false;
    return true;
}

static void vjp_solve(struct td_gb *b, struct td_vjp *v)
{
    bool vec = solve_is_vec(&v->c->in_meta[0], &v->c->in_meta[1]);
    struct td_tensor *A = IN(0), *g = v->grad[0];
    struct td_tensor *in[2] = {mH(b, A), g};
    struct td_tensor *gb = td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
    if (v->needs[1])
        v->grad_in[1] = gb;
    if (v->needs[0]) {
        struct td_tensor *x = OUT(0);
        if (vec) {
            /* gA = -gB[..., :, None] * conj(X[..., None, :]) */
            struct td_tensor *col = unsqueeze(b, gb, -1);
            struct td_tensor *row = unsqueeze(b, CONJ(x), -2);
            v->grad_in[0] = NEG(MUL(col, row));
        } else {
            v->grad_in[0] = NEG(MM(gb, mH(b, x)));
        }
    }
}

static void jvp_solve(struct td_gb *b, struct td_jvp *j)
{
    bool vec = solve_is_vec(&j->c->in_meta[0], &j->c->in_meta[1]);
    struct td_tensor *x = td_gb_grad_mode(b) ? td_gb_op(b, TD_OP_solve, 2, j->primal_in, 0, NULL)
                                             : j->primal_out[0];
    /* dX = A^-1 (dB - dA X) */
    struct td_tensor *dax;
    if (vec) {
        int64_t last = -1;
        struct td_attr_arg a = td_a_ints("dim", 1, &last);
        struct td_tensor *p = MM(j->tangent_in[0], unsqueeze(b, x, -1));
        dax = td_gb_op(b, TD_OP_squeeze, 1, &p, 1, &a);
    } else {
        dax = MM(j->tangent_in[0], x);
    }
    struct td_tensor *rhs = SUB(j->tangent_in[1], dax);
    struct td_tensor *in[2] = {j->primal_in[0], rhs};
    j->tangent_out[0] = td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
}

const struct td_deriv td_deriv_solve = {0x1, 0x1, vjp_solve, jvp_solve};

/* ---- det: d = det(A); gA = (g conj(d))[..., None, None] A^-H;
 * dd = d trace(A^-1 dA) = d sum(A^-T * dA) ---- */

static void vjp_det(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *A = IN(0);
    struct td_tensor *ainv = td_gb_op(b, TD_OP_inv, 1, &A, 0, NULL);
    struct td_tensor *s = MUL(v->grad[0], CONJ(OUT(0)));
    s = unsqueeze(b, unsqueeze(b, s, -1), -1);
    v->grad_in[0] = MUL(s, mH(b, ainv));
}

static void jvp_det(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *A = j->primal_in[0];
    struct td_tensor *d = td_gb_grad_mode(b) ? td_gb_op(b, TD_OP_det, 1, &A, 0, NULL)
                                             : j->primal_out[0];
    struct td_tensor *ainv = td_gb_op(b, TD_OP_inv, 1, &A, 0, NULL);
    int64_t dims[2] = {-2, -1};
    struct td_tensor *tr = td_gb_sum(b, MUL(mT(b, ainv), j->tangent_in[0]), 2, dims, false);
    j->tangent_out[0] = MUL(d, tr);
}

const struct td_deriv td_deriv_det = {0x1, 0x1, vjp_det, jvp_det};

/* ---- small builders ---- */

#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))

static struct td_tensor *tri(struct td_gb *b, enum td_op op, struct td_tensor *x, int64_t k)
{
    struct td_attr_arg a = TD_A_INT("diagonal", k);
    return td_gb_op(b, op, 1, &x, 1, &a);
}

/* The diagonal part of x as a matrix (zeros elsewhere). */
static struct td_tensor *diag_part(struct td_gb *b, struct td_tensor *x)
{
    return tri(b, TD_OP_triu, tri(b, TD_OP_tril, x, 0), 0);
}

/* x * i for a real or complex x (a complex result). */
static struct td_tensor *times_i(struct td_gb *b, struct td_tensor *x)
{
    struct td_attr_arg a[2] = {td_a_scalar_c("value", 0.0, 1.0), TD_A_BOOL("wrapped", true)};
    struct td_tensor *i = td_gb_op(b, TD_OP_scalar_tensor, 0, NULL, 2, a);
    return MUL(x, i);
}

/* L^-H m via solve (L well conditioned wherever the derivative is defined). */
static struct td_tensor *solve_lh(struct td_gb *b, struct td_tensor *l, struct td_tensor *m)
{
    struct td_tensor *in[2] = {mH(b, l), m};
    return td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
}

/* ---- slogdet: with dL = tr(A^-1 dA): d log|det| = Re dL, d sign = i sign Im dL.
 * VJP: h = g_logabs - i Im(conj(g_sign) sign) (complex; g_logabs for real), gA = h A^-H.
 * The sign of a real matrix is piecewise constant and gets no gradient. ---- */

static void vjp_slogdet(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *A = IN(0);
    struct td_tensor *h = v->grad[1];
    if (td_dtype_is_complex(v->c->in_meta[0].dtype)) {
        struct td_tensor *t = td_gb_unary(b, TD_OP_imag, MUL(CONJ(v->grad[0]), OUT(0)));
        h = SUB(h, times_i(b, t));
    }
    struct td_tensor *ainv = td_gb_op(b, TD_OP_inv, 1, &A, 0, NULL);
    h = unsqueeze(b, unsqueeze(b, h, -1), -1);
    v->grad_in[0] = MUL(h, mH(b, ainv));
}

static void jvp_slogdet(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *A = j->primal_in[0];
    struct td_tensor *ainv = td_gb_op(b, TD_OP_inv, 1, &A, 0, NULL);
    int64_t dims[2] = {-2, -1};
    struct td_tensor *tr = td_gb_sum(b, MUL(mT(b, ainv), j->tangent_in[0]), 2, dims, false);
    j->tangent_out[1] = td_gb_unary(b, TD_OP_real, tr);
    if (td_dtype_is_complex(A->dtype)) {
        struct td_tensor *sg = j->primal_out[0];
        if (td_gb_grad_mode(b)) {
            struct td_tensor *o[2] = {NULL, NULL};
            (void)td_gb_opn(b, TD_OP_slogdet, 1, &A, 0, NULL, 2, o);
            sg = o[0];
        }
        j->tangent_out[0] = MUL(sg, times_i(b, td_gb_unary(b, TD_OP_imag, tr)));
    }
}

const struct td_deriv td_deriv_slogdet = {0x1, 0x1, vjp_slogdet, jvp_slogdet};

/* ---- cholesky. The kernel reads one triangle (lower, or upper when upper) and the real
 * part of the diagonal, so the derivative is taken with respect to that: the matrix used is
 * A_e = tril(A) + tril(A, -1)^H (real diagonal). With L lower, A_e = L L^H:
 *   JVP: dL = L Phi(L^-1 dA_e L^-H), Phi(X) = tril(X, -1) + diag(X) / 2;
 *   VJP: G = L^-H Psi L^-1 with Psi = (tril(X) + tril(X, -1)^H) / 2, X = L^H gL (PyTorch's
 *   formula for the gradient over Hermitian A), H = (G + G^H) / 2, and the gradient on the
 *   read triangle is diag(H) + 2 tril(H, -1) (each off-diagonal entry stands for two).
 * upper: U = L^H, handled through L and gL = gU^H. ---- */

static void vjp_cholesky(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    bool upper = td_arg_bool(v->c, "upper");
    struct td_tensor *l = upper ? mH(b, OUT(0)) : OUT(0);
    struct td_tensor *gl = upper ? mH(b, v->grad[0]) : v->grad[0];
    struct td_tensor *x = tri(b, TD_OP_tril, MM(mH(b, l), gl), 0);
    struct td_tensor *psi = td_gb_scale(b, ADD(x, mH(b, tri(b, TD_OP_tril, x, -1))), 0.5);
    /* G = L^-H psi L^-1 = L^-H (L^-H psi^H)^H */
    struct td_tensor *g = solve_lh(b, l, mH(b, solve_lh(b, l, mH(b, psi))));
    struct td_tensor *h = td_gb_scale(b, ADD(g, mH(b, g)), 0.5);
    struct td_tensor *lo = ADD(diag_part(b, h), td_gb_scale(b, tri(b, TD_OP_tril, h, -1), 2.0));
    v->grad_in[0] = upper ? mH(b, lo) : lo;
}

static void jvp_cholesky(struct td_gb *b, struct td_jvp *j)
{
    bool upper = td_arg_bool(j->c, "upper");
    struct td_tensor *A = j->primal_in[0];
    struct td_tensor *out = td_gb_grad_mode(b) ? same_op(b, j->c, 1, &A) : j->primal_out[0];
    struct td_tensor *l = upper ? mH(b, out) : out;
    struct td_tensor *da = upper ? mH(b, j->tangent_in[0]) : j->tangent_in[0];
    /* dA_e from the lower triangle of da (the upper triangle of the tangent for upper). */
    struct td_tensor *low = tri(b, TD_OP_tril, da, -1);
    struct td_tensor *dae = ADD(ADD(low, mH(b, low)),
                                td_gb_unary(b, TD_OP_real, diag_part(b, da)));
    /* X = L^-1 dA_e L^-H: Y = L^-1 dA_e, then X = (L^-1 Y^H)^H. */
    struct td_tensor *in1[2] = {l, dae};
    struct td_tensor *y = td_gb_op(b, TD_OP_solve, 2, in1, 0, NULL);
    struct td_tensor *in2[2] = {l, mH(b, y)};
    struct td_tensor *x = mH(b, td_gb_op(b, TD_OP_solve, 2, in2, 0, NULL));
    struct td_tensor *phi = ADD(tri(b, TD_OP_tril, x, -1), td_gb_scale(b, diag_part(b, x), 0.5));
    struct td_tensor *dl = MM(l, phi);
    j->tangent_out[0] = upper ? mH(b, dl) : dl;
}

const struct td_deriv td_deriv_cholesky = {0, 0x1, vjp_cholesky, jvp_cholesky};
