/*
 * derivatives_linalg.c - VJPs and JVPs of the LAPACK ops (ops_lapack.c): inv, solve, det,
 * slogdet, cholesky, and the spectral and orthogonal factorizations qr, eigh, eigvalsh, svd,
 * svdvals.
 * Written with the td_gb builder from matmul, transpose, conj, inv, solve, svd and eigh
 * themselves, so with create_graph the gradients are differentiable again. Complex inputs
 * follow PyTorch's convention (td_autograd.h): the VJP of a holomorphic f is grad * conj(f').
 * The factorization formulas are PyTorch's (torch/csrc/autograd/FunctionsManual.cpp:
 * linalg_qr_backward / linalg_qr_jvp, linalg_eig_backward / linalg_eig_jvp for the Hermitian
 * case, svd_backward / linalg_svd_jvp, linalg_det_backward), with the same conventions for
 * where a derivative exists: eigenvectors and singular vectors are defined up to a sign
 * (a phase e^{i phi} for complex), so only losses invariant under that gauge have a
 * gradient; QR assumes R has a real diagonal (as LAPACK's Householder QR returns it).
 */
#include <math.h>
#include <string.h>

#include "td_derivatives.h"
#include "td_lapack.h"


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

static void vjp_solve(struct td_gb *b, struct td_vjp *v)
{
    bool vec = td__lp_b_is_vec(&v->c->in_meta[0], &v->c->in_meta[1]);
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
    bool vec = td__lp_b_is_vec(&j->c->in_meta[0], &j->c->in_meta[1]);
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

/* ---- small builders ---- */


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

/* ---- helpers of the factorization formulas ---- */

#define REAL(x) td_gb_unary(b, TD_OP_real, (x))
#define IMAG(x) td_gb_unary(b, TD_OP_imag, (x))

/* The n x n identity in the real dtype of dt. */
static struct td_tensor *eye(struct td_gb *b, int64_t n, enum td_dtype dt)
{
    struct td_attr_arg a[2] = {TD_A_INT("n", n), TD_A_DTYPE("dtype", td_dtype_to_real(dt))};
    return td_gb_op(b, TD_OP_eye, 0, NULL, 2, a);
}

/* 1 off the diagonal, 0 on it (n x n, real dtype of dt). */
static struct td_tensor *offdiag_ones(struct td_gb *b, int64_t n, enum td_dtype dt)
{
    return SUB(td_gb_scalar(b, 1.0), eye(b, n, dt));
}

/* diag_embed: s [..., k] -> [..., k, k] with s on the diagonal. */
static struct td_tensor *diag_embed(struct td_gb *b, struct td_tensor *s)
{
    if (!s)
        return NULL;
    return MUL(unsqueeze(b, s, -1), eye(b, s->shape[s->ndim - 1], s->dtype));
}

/* The diagonal of the square batch x [..., k, k] as [..., k]. */
static struct td_tensor *diagonal(struct td_gb *b, struct td_tensor *x)
{
    if (!x)
        return NULL;
    int64_t last = -1;
    return td_gb_sum(b, MUL(x, eye(b, x->shape[x->ndim - 1], x->dtype)), 1, &last, false);
}

/* x y^-1 for square y: (y^-H x^H)^H. */
static struct td_tensor *rsolve(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *in[2] = {mH(b, y), mH(b, x)};
    return mH(b, td_gb_op(b, TD_OP_solve, 2, in, 0, NULL));
}

/* x y^-H for square y: (y^-1 x^H)^H. */
static struct td_tensor *rsolve_h(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *in[2] = {y, mH(b, x)};
    return mH(b, td_gb_op(b, TD_OP_solve, 2, in, 0, NULL));
}

/* Whether the batch m holds no element (then every derivative is an empty zero). */
static bool empty_batch(const struct td_meta *m)
{
    return td_shape_numel(m->shape, m->ndim) == 0;
}

/* Reads the boolean 0-d tensor t (false after a failure). */
static bool read_bool(struct td_tensor *t)
{
    return t && td__load_bool(td_tensor_data(t), t->dtype);
}

/* PyTorch's at::allclose(x, y, rtol 1e-2, atol 1e-2) for real x, y (true after a failure,
 * which the scope reports by itself). */
static bool loose_allclose(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *lhs = td_gb_unary(b, TD_OP_abs, SUB(x, y));
    struct td_tensor *rhs = ADD(td_gb_scale(b, td_gb_unary(b, TD_OP_abs, y), 1e-2),
                                td_gb_scalar(b, 1e-2));
    struct td_tensor *all = td_gb_unary(b, TD_OP_all, td_gb_binary(b, TD_OP_le, lhs, rhs));
    return !td_gb_ok(b) || read_bool(all);
}

/* ---- det: with C = d A^-T the cofactor matrix (d = det A), dd = sum(C * dA) and
 * gA = g conj(C). C is computed as d A^-T where A is safely invertible and, as PyTorch's
 * linalg_det_backward does for singular matrices, from the SVD A = U diag(S) Vh otherwise:
 * C = conj(conj(a) U diag(p) Vh) with a = det(U) det(Vh) and p_i = prod_{j != i} S_j (the
 * adjugate without any division, exact at rank n - 1). "Safely invertible": every batch
 * element has |d| above sqrt(eps) times the Hadamard bound prod_j |A[:, j]| (below it the
 * inverse loses more than half the digits). Both paths are differentiable again. ---- */

static bool det_near_singular(struct td_gb *b, struct td_tensor *A, struct td_tensor *d)
{
    double thr = sqrt(td_dtype_to_real(A->dtype) == TD_FLOAT32 ? 1.1920929e-07
                                                                : 2.220446049250313e-16);
    int64_t rows = -2, last = -1;
    struct td_tensor *aa = td_gb_unary(b, TD_OP_abs, A);
    struct td_tensor *norms = td_gb_unary(b, TD_OP_sqrt, td_gb_sum(b, MUL(aa, aa), 1, &rows,
                                                                   false));
    struct td_attr_arg pa = td_a_ints("dim", 1, &last);
    struct td_tensor *bound = td_gb_op(b, TD_OP_prod, 1, &norms, 1, &pa);
    struct td_tensor *small = td_gb_binary(b, TD_OP_le, td_gb_unary(b, TD_OP_abs, d),
                                           td_gb_scale(b, bound, thr));
    return read_bool(td_gb_unary(b, TD_OP_any, small));
}

/* The cofactor matrix of the square batch A (n >= 1) whose determinants are d. */
static struct td_tensor *det_cofactor(struct td_gb *b, struct td_tensor *A, struct td_tensor *d)
{
    if (!td_gb_ok(b))
        return NULL;
    int64_t n = A->shape[A->ndim - 1];
    if (!det_near_singular(b, A, d)) {
        struct td_tensor *ainv = td_gb_op(b, TD_OP_inv, 1, &A, 0, NULL);
        return MUL(unsqueeze(b, unsqueeze(b, d, -1), -1), mT(b, ainv));
    }
    struct td_attr_arg full = TD_A_BOOL("full_matrices", false);
    struct td_tensor *o[3] = {NULL, NULL, NULL};
    (void)td_gb_opn(b, TD_OP_svd, 1, &A, 1, &full, 3, o);
    struct td_tensor *alpha = MUL(td_gb_op(b, TD_OP_det, 1, &o[0], 0, NULL),
                                  td_gb_op(b, TD_OP_det, 1, &o[2], 0, NULL));
    /* rows i of m: S with S_i replaced by 1; p = prod over the row. */
    struct td_tensor *m = ADD(MUL(unsqueeze(b, o[1], -2), offdiag_ones(b, n, A->dtype)),
                              eye(b, n, A->dtype));
    int64_t last = -1;
    struct td_attr_arg pa = td_a_ints("dim", 1, &last);
    struct td_tensor *p = td_gb_op(b, TD_OP_prod, 1, &m, 1, &pa);
    struct td_tensor *udv = MM(MUL(o[0], unsqueeze(b, p, -2)), o[2]);
    alpha = unsqueeze(b, unsqueeze(b, CONJ(alpha), -1), -1);
    return CONJ(MUL(alpha, udv));
}

static void vjp_det(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0];
    if (!v->needs[0] || empty_batch(am))
        return;
    struct td_tensor *C = det_cofactor(b, IN(0), OUT(0));
    struct td_tensor *g = unsqueeze(b, unsqueeze(b, v->grad[0], -1), -1);
    v->grad_in[0] = MUL(g, CONJ(C));
}

static void jvp_det(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *A = j->primal_in[0];
    if (empty_batch(&j->c->in_meta[0]))
        return;
    struct td_tensor *d = td_gb_grad_mode(b) ? td_gb_op(b, TD_OP_det, 1, &A, 0, NULL)
                                             : j->primal_out[0];
    struct td_tensor *C = det_cofactor(b, A, d);
    int64_t dims[2] = {-2, -1};
    j->tangent_out[0] = td_gb_sum(b, MUL(C, j->tangent_in[0]), 2, dims, false);
}

const struct td_deriv td_deriv_det = {0x1, 0x1, vjp_det, jvp_det};

/* ---- qr: A = Q R (R with a real diagonal, as LAPACK returns it). With C = Q^H dA R^-1
 * (m >= n) the JVP is dR = T(C) R, dQ = dA R^-1 - Q T(C) with
 * T(C) = triu(C, 1) + tril(C, -1)^H + Re diag(C); for m < n (A = [X | Y], R = [R1 | R2])
 * C = Q^H dX R1^-1, Om = C - T(C), dQ = Q Om, dR = Q^H dA - Om R.
 * VJP (its adjoint): M = gR R^H - Q^H gQ, N = triu(M, 1) + triu(M, 1)^H + Re diag(M);
 * m >= n: gA = (gQ + Q N) R^-H; m < n: gX = (gQ - Q gR2 R2^H + Q N) R1^-H, gY = Q gR2.
 * mode='r' (no Q) and mode='complete' with m > n (Q's last m - n columns are an arbitrary
 * basis) have no derivative, as in PyTorch. ---- */

static bool qr_check(struct td_gb *b, const struct td_op_ctx *c)
{
    const char *mode = td_arg_str(c, "mode");
    const struct td_meta *a = &c->in_meta[0];
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    if (mode && strcmp(mode, "r") == 0) {
        td_gb_fail(b, TD_EINVAL,
                   "qr: the derivative of linalg.qr depends on Q, which is not computed when "
                   "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                   "differentiate through linalg.qr");
        return false;
    }
    if (mode && strcmp(mode, "complete") == 0 && m > n) {
        td_gb_fail(b, TD_EINVAL,
                   "qr: the QR decomposition is not differentiable when mode='complete' and "
                   "nrows > ncols (%lld > %lld)", (long long)m, (long long)n);
        return false;
    }
    return true;
}

/* T(C) = triu(C, 1) + tril(C, -1)^H + Re diag(C). */
static struct td_tensor *qr_tri(struct td_gb *b, struct td_tensor *x)
{
    return ADD(ADD(tri(b, TD_OP_triu, x, 1), mH(b, tri(b, TD_OP_tril, x, -1))),
               REAL(diag_part(b, x)));
}

/* T's adjoint: N = triu(M, 1) + triu(M, 1)^H + Re diag(M). */
static struct td_tensor *qr_tri_adj(struct td_gb *b, struct td_tensor *x)
{
    struct td_tensor *up = tri(b, TD_OP_triu, x, 1);
    return ADD(ADD(up, mH(b, up)), REAL(diag_part(b, x)));
}

static void vjp_qr(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0];
    if (!v->needs[0] || !qr_check(b, v->c) || empty_batch(am))
        return;
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1];
    struct td_tensor *Q = OUT(0), *R = OUT(1), *gQ = v->grad[0], *gR = v->grad[1];
    struct td_tensor *M = SUB(MM(gR, mH(b, R)), MM(mH(b, Q), gQ));
    struct td_tensor *N = qr_tri_adj(b, M);
    if (m >= n) {
        v->grad_in[0] = rsolve_h(b, ADD(gQ, MM(Q, N)), R);
        return;
    }
    struct td_tensor *R1 = narrow(b, R, -1, 0, m), *R2 = narrow(b, R, -1, m, n - m);
    struct td_tensor *gR2 = narrow(b, gR, -1, m, n - m);
    struct td_tensor *gx = ADD(SUB(gQ, MM(MM(Q, gR2), mH(b, R2))), MM(Q, N));
    struct td_tensor *parts[2] = {rsolve_h(b, gx, R1), MM(Q, gR2)};
    struct td_attr_arg a = TD_A_INT("dim", -1);
    v->grad_in[0] = td_gb_op(b, TD_OP_cat, 2, parts, 1, &a);
}

static void jvp_qr(struct td_gb *b, struct td_jvp *j)
{
    const struct td_meta *am = &j->c->in_meta[0];
    if (!qr_check(b, j->c) || empty_batch(am))
        return;
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1];
    struct td_tensor *qr[2] = {j->primal_out[0], j->primal_out[1]};
    if (td_gb_grad_mode(b))
        same_opn(b, j->c, 1, j->primal_in, 2, qr);
    struct td_tensor *Q = qr[0], *R = qr[1], *dA = j->tangent_in[0];
    if (m >= n) {
        struct td_tensor *dar = rsolve(b, dA, R);
        struct td_tensor *T = qr_tri(b, MM(mH(b, Q), dar));
        j->tangent_out[1] = MM(T, R);
        j->tangent_out[0] = SUB(dar, MM(Q, T));
        return;
    }
    struct td_tensor *R1 = narrow(b, R, -1, 0, m);
    struct td_tensor *C = rsolve(b, MM(mH(b, Q), narrow(b, dA, -1, 0, m)), R1);
    struct td_tensor *om = SUB(C, qr_tri(b, C));
    j->tangent_out[0] = MM(Q, om);
    j->tangent_out[1] = SUB(MM(mH(b, Q), dA), MM(om, R));
}

const struct td_deriv td_deriv_qr = {0, 0x3, vjp_qr, jvp_qr};

/* ---- eigh and eigvalsh. The kernel reads one triangle (UPLO) and the real part of the
 * diagonal, so, as for cholesky, the derivative is taken with respect to the Hermitian
 * matrix A_e built from that triangle: dA_e = low + low^H + Re diag(dA) with low the strict
 * read triangle of dA; a Hermitian gradient H over A_e becomes Re diag(H) + 2 (strict read
 * triangle of H) on the input.
 * With A_e = V diag(L) V^H, P = V^H dA_e V and F_ij = 1 / (L_j - L_i) (0 on the diagonal):
 *   JVP: dL = Re diag(P), dV = V (F * P) (the gauge Im diag(V^H dV) = 0);
 *   VJP: H = V (diag(gL) + F * (X - X^H) / 2) V^H with X = V^H gV. For complex input
 *   Im diag(X) is the derivative along the phase of the eigenvectors: as PyTorch, a loss
 *   that depends on it has no derivative and backward fails.
 * eigvalsh: H = V diag(gL) V^H, V from eigh (recomputed). ---- */

static char uplo_of(const struct td_op_ctx *c)
{
    const char *s = td_arg_str(c, "UPLO");
    return (s && (s[0] == 'U' || s[0] == 'u')) ? 'U' : 'L';
}

/* The gradient on the input from the Hermitian gradient h over A_e. */
static struct td_tensor *herm_grad_to_tri(struct td_gb *b, struct td_tensor *h, char uplo)
{
    struct td_tensor *strict = uplo == 'U' ? tri(b, TD_OP_triu, h, 1) : tri(b, TD_OP_tril, h, -1);
    return ADD(REAL(diag_part(b, h)), td_gb_scale(b, strict, 2.0));
}

/* dA_e from the tangent t of the input. */
static struct td_tensor *tri_tangent_to_herm(struct td_gb *b, struct td_tensor *t, char uplo)
{
    struct td_tensor *low = uplo == 'U' ? tri(b, TD_OP_triu, t, 1) : tri(b, TD_OP_tril, t, -1);
    return ADD(ADD(low, mH(b, low)), REAL(diag_part(b, t)));
}

/* F_ij = 1 / (l_j - l_i), 0 on the diagonal, for l [..., n]. */
static struct td_tensor *eig_f(struct td_gb *b, struct td_tensor *l)
{
    if (!l)
        return NULL;
    int64_t n = l->shape[l->ndim - 1];
    struct td_tensor *e = ADD(SUB(unsqueeze(b, l, -2), unsqueeze(b, l, -1)), eye(b, n, l->dtype));
    return DIV(offdiag_ones(b, n, l->dtype), e);
}

/* eigh on x with the UPLO of c: values into out[0], vectors into out[1]. */
static void eigh_of(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x,
                    struct td_tensor **out)
{
    char u[2] = {uplo_of(c), 0};
    struct td_attr_arg a = TD_A_STR("UPLO", u);
    (void)td_gb_opn(b, TD_OP_eigh, 1, &x, 1, &a, 2, out);
}

static void vjp_eigh(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0];
    if (!v->needs[0] || empty_batch(am))
        return;
    struct td_tensor *L = OUT(0), *V = OUT(1);
    struct td_tensor *X = MM(mH(b, V), v->grad[1]);
    if (td_dtype_is_complex(am->dtype)) {
        struct td_tensor *im = IMAG(diagonal(b, X));
        if (!loose_allclose(b, im, td_gb_zeros_like(b, im))) {
            td_gb_fail(b, TD_EINVAL,
                       "eigh: the eigenvectors in the complex case are specified up to "
                       "multiplication by e^{i phi}. The specified loss function depends on "
                       "this phase term, making it ill-defined");
            return;
        }
    }
    struct td_tensor *sk = td_gb_scale(b, SUB(X, mH(b, X)), 0.5);
    struct td_tensor *G = ADD(MUL(sk, eig_f(b, L)), diag_embed(b, v->grad[0]));
    struct td_tensor *H = MM(MM(V, G), mH(b, V));
    v->grad_in[0] = herm_grad_to_tri(b, H, uplo_of(v->c));
}

static void jvp_eigh(struct td_gb *b, struct td_jvp *j)
{
    if (empty_batch(&j->c->in_meta[0]))
        return;
    struct td_tensor *lv[2] = {j->primal_out[0], j->primal_out[1]};
    if (td_gb_grad_mode(b))
        same_opn(b, j->c, 1, j->primal_in, 2, lv);
    struct td_tensor *V = lv[1];
    struct td_tensor *dae = tri_tangent_to_herm(b, j->tangent_in[0], uplo_of(j->c));
    struct td_tensor *P = MM(MM(mH(b, V), dae), V);
    j->tangent_out[0] = REAL(diagonal(b, P));
    j->tangent_out[1] = MM(V, MUL(P, eig_f(b, lv[0])));
}

const struct td_deriv td_deriv_eigh = {0, 0x3, vjp_eigh, jvp_eigh};

static void vjp_eigvalsh(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0] || empty_batch(&v->c->in_meta[0]))
        return;
    struct td_tensor *lv[2] = {NULL, NULL};
    eigh_of(b, v->c, IN(0), lv);
    struct td_tensor *V = lv[1];
    struct td_tensor *H = MM(MUL(V, unsqueeze(b, v->grad[0], -2)), mH(b, V));
    v->grad_in[0] = herm_grad_to_tri(b, H, uplo_of(v->c));
}

static void jvp_eigvalsh(struct td_gb *b, struct td_jvp *j)
{
    if (empty_batch(&j->c->in_meta[0]))
        return;
    struct td_tensor *lv[2] = {NULL, NULL};
    eigh_of(b, j->c, j->primal_in[0], lv);
    struct td_tensor *V = lv[1];
    struct td_tensor *dae = tri_tangent_to_herm(b, j->tangent_in[0], uplo_of(j->c));
    j->tangent_out[0] = REAL(diagonal(b, MM(MM(mH(b, V), dae), V)));
}

const struct td_deriv td_deriv_eigvalsh = {0x1, 0, vjp_eigvalsh, jvp_eigvalsh};

/* ---- svd and svdvals. A = U diag(S) Vh (m x n, k = min(m, n), thin factors), V = Vh^H,
 * E_ij = S_j^2 - S_i^2 (1 on the diagonal), sym(X) = X + X^H, skew(X) = X - X^H.
 * JVP: dP = U^H dA V, dS = Re diag(dP), dX = dP - diag(dS),
 *   dU = U (sym(dX S) / E + i Im diag(dP) / 2S) [+ (I - U U^H) dA V S^-1 when m > n],
 *   dVh = (sym(-S dX) / E + i Im diag(dP) / 2S) Vh [+ S^-1 U^H dA (I - V V^H) when m < n].
 * VJP (PyTorch's svd_backward): with UhgU = skew(U^H gU), VhgV = skew(Vh gVh^H),
 *   G = (UhgU S + S VhgV) / E + diag(gS) [+ diag(diag(UhgU) / 2S) for complex],
 *   gA = U G Vh [+ (I - U U^H) gU S^-1 Vh when m > n] [+ U S^-1 gVh (I - V V^H) when m < n].
 * A complex loss must not depend on the phases of the singular vectors (U -> U D, Vh -> D^H Vh
 * for a diagonal unitary D): as PyTorch, backward fails unless Im diag(UhgU) is close to
 * -Im diag(VhgV), the condition for that invariance.
 * full_matrices=True with m != n: as PyTorch, the VJP uses the first k columns of U and rows
 * of Vh and ignores the cotangents of the others (an arbitrary basis of the complement); the
 * JVP is refused. svdvals: gA = U diag(gS) Vh, dS = Re diag(U^H dA V). ---- */

/* The JVP of svd with full_matrices=True and m != n is not defined (the extra columns of U
 * or rows of Vh are an arbitrary basis of the complement). */
static bool svd_full_check(struct td_gb *b, const struct td_op_ctx *c)
{
    const struct td_meta *a = &c->in_meta[0];
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    if (td_arg_bool(c, "full_matrices") && m != n) {
        td_gb_fail(b, TD_EINVAL,
                   "svd: forward-mode derivative of svd with full_matrices=True is not defined "
                   "for a non-square input (%lld x %lld): the extra singular vectors are an "
                   "arbitrary basis. Please use svd(A, full_matrices=False)",
                   (long long)m, (long long)n);
        return false;
    }
    return true;
}

/* length entries of x from 0 along dim. */
static struct td_tensor *first_k(struct td_gb *b, struct td_tensor *x, int dim, int64_t k)
{
    struct td_attr_arg a[3] = {TD_A_INT("dim", dim), TD_A_INT("start", 0),
                               TD_A_INT("length", k)};
    return x ? td_gb_op(b, TD_OP_narrow, 1, &x, 3, a) : NULL;
}

/* E of S [..., k]. */
static struct td_tensor *svd_e(struct td_gb *b, struct td_tensor *s)
{
    if (!s)
        return NULL;
    struct td_tensor *s2 = MUL(s, s);
    return ADD(SUB(unsqueeze(b, s2, -2), unsqueeze(b, s2, -1)),
               eye(b, s->shape[s->ndim - 1], s->dtype));
}

static void vjp_svd(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0];
    if (!v->needs[0] || empty_batch(am))
        return;
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1], k = m < n ? m : n;
    bool cplx = td_dtype_is_complex(am->dtype);
    struct td_tensor *U = OUT(0), *S = OUT(1), *Vh = OUT(2);
    struct td_tensor *gU = v->grad[0], *gS = v->grad[1], *gVh = v->grad[2];
    if (td_arg_bool(v->c, "full_matrices") && m != n) {
        U = first_k(b, U, -1, k);
        gU = first_k(b, gU, -1, k);
        Vh = first_k(b, Vh, -2, k);
        gVh = first_k(b, gVh, -2, k);
    }
    struct td_tensor *x = MM(mH(b, U), gU), *y = MM(Vh, mH(b, gVh));
    struct td_tensor *uhgu = SUB(x, mH(b, x)), *vhgv = SUB(y, mH(b, y));
    if (cplx && !loose_allclose(b, IMAG(diagonal(b, uhgu)), NEG(IMAG(diagonal(b, vhgv))))) {
        td_gb_fail(b, TD_EINVAL,
                   "svd: the singular vectors in the complex case are specified up to "
                   "multiplication by e^{i phi}. The specified loss function depends on this "
                   "phase term, making it ill-defined");
        return;
    }
    struct td_tensor *sc = unsqueeze(b, S, -2), *sr = unsqueeze(b, S, -1);
    struct td_tensor *G = DIV(ADD(MUL(uhgu, sc), MUL(sr, vhgv)), svd_e(b, S));
    G = ADD(G, diag_embed(b, gS));
    if (cplx)
        G = ADD(G, diag_embed(b, DIV(diagonal(b, uhgu), td_gb_scale(b, S, 2.0))));
    if (m > n) {
        struct td_tensor *gus = DIV(gU, sc);
        struct td_tensor *ga = ADD(MM(U, G), SUB(gus, MM(U, MM(mH(b, U), gus))));
        v->grad_in[0] = MM(ga, Vh);
    } else if (m < n) {
        struct td_tensor *sgv = DIV(gVh, sr);
        struct td_tensor *ga = ADD(MM(G, Vh), SUB(sgv, MM(MM(sgv, mH(b, Vh)), Vh)));
        v->grad_in[0] = MM(U, ga);
    } else {
        v->grad_in[0] = MM(MM(U, G), Vh);
    }
}

static void jvp_svd(struct td_gb *b, struct td_jvp *j)
{
    const struct td_meta *am = &j->c->in_meta[0];
    if (!svd_full_check(b, j->c) || empty_batch(am))
        return;
    int64_t m = am->shape[am->ndim - 2], n = am->shape[am->ndim - 1];
    struct td_tensor *o[3] = {j->primal_out[0], j->primal_out[1], j->primal_out[2]};
    if (td_gb_grad_mode(b))
        same_opn(b, j->c, 1, j->primal_in, 3, o);
    struct td_tensor *U = o[0], *S = o[1], *Vh = o[2], *dA = j->tangent_in[0];
    struct td_tensor *V = mH(b, Vh);
    struct td_tensor *dP = MM(MM(mH(b, U), dA), V);
    struct td_tensor *dS = REAL(diagonal(b, dP));
    struct td_tensor *dX = SUB(dP, diag_embed(b, dS));
    struct td_tensor *E = svd_e(b, S);
    struct td_tensor *sc = unsqueeze(b, S, -2), *sr = unsqueeze(b, S, -1);
    struct td_tensor *xs = MUL(dX, sc), *sx = NEG(MUL(sr, dX));
    struct td_tensor *du = DIV(ADD(xs, mH(b, xs)), E), *dv = DIV(ADD(sx, mH(b, sx)), E);
    if (td_dtype_is_complex(am->dtype)) {
        struct td_tensor *d = diag_embed(b, DIV(diagonal(b, dX), td_gb_scale(b, S, 2.0)));
        du = ADD(du, d);
        dv = ADD(dv, d);
    }
    du = MM(U, du);
    if (m > n) {
        struct td_tensor *davs = MM(dA, DIV(V, sc));
        du = ADD(du, SUB(davs, MM(U, MM(mH(b, U), davs))));
    }
    dv = MM(dv, Vh);
    if (m < n) {
        struct td_tensor *suda = MM(DIV(mH(b, U), sr), dA);
        dv = ADD(dv, SUB(suda, MM(MM(suda, V), Vh)));
    }
    j->tangent_out[0] = du;
    j->tangent_out[1] = dS;
    j->tangent_out[2] = dv;
}

const struct td_deriv td_deriv_svd = {0, 0x7, vjp_svd, jvp_svd};

static void vjp_svdvals(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0] || empty_batch(&v->c->in_meta[0]))
        return;
    struct td_tensor *o[3] = {NULL, NULL, NULL};
    svd_thin(b, IN(0), o);
    v->grad_in[0] = MM(MUL(o[0], unsqueeze(b, v->grad[0], -2)), o[2]);
}

static void jvp_svdvals(struct td_gb *b, struct td_jvp *j)
{
    if (empty_batch(&j->c->in_meta[0]))
        return;
    struct td_tensor *o[3] = {NULL, NULL, NULL};
    svd_thin(b, j->primal_in[0], o);
    struct td_tensor *dP = MM(MM(mH(b, o[0]), j->tangent_in[0]), mH(b, o[2]));
    j->tangent_out[0] = REAL(diagonal(b, dP));
}

const struct td_deriv td_deriv_svdvals = {0x1, 0, vjp_svdvals, jvp_svdvals};
