/*
 * derivatives_contract.c - VJPs and JVPs of the contraction ops (ops_contract.c): einsum,
 * outer, cross, vecdot, multi_dot, diagonal, trace, matrix_power, tensorsolve, tensorinv.
 *
 * Everything is written with the td_gb builder from einsum, matmul, solve, inv and the shape
 * ops, so with create_graph the gradients are differentiable again. Complex inputs follow
 * PyTorch's convention (td_autograd.h): the VJP of a linear map is its adjoint, so operands
 * other than the one differentiated enter conjugated.
 *
 * einsum: the gradient of operand i is einsum(grad, conj(other operands) -> the letters of
 * operand i that the output or another operand has); letters only operand i has are spread
 * back with a ones vector and a repeated letter (a diagonal, 'ii->i') is written back onto
 * the diagonal by a product with an identity matrix, both inside one more einsum, so no
 * dedicated scatter op is needed. The JVP is the sum over operands of einsum with that
 * operand replaced by its tangent.
 * matrix_power: d(B^m) = sum_k B^k dB B^(m-1-k) is the top-right block of
 * [[B, dB], [0, B]]^m (the same with B^H and the cotangent for the VJP), so both modes take
 * O(log m) products (Higham, "Functions of Matrices", 2008, thm. 3.6 applied to x^m).
 */
#include <stdio.h>
#include <string.h>

#include "td_derivatives.h"


static struct td_tensor *einsum_gb(struct td_gb *b, const char *eq, int n,
                                   struct td_tensor *const *in)
{
    struct td_attr_arg a = TD_A_STR("equation", eq);
    return td_gb_op(b, TD_OP_einsum, n, in, 1, &a);
}

static struct td_tensor *eye_gb(struct td_gb *b, int64_t n, enum td_dtype dt)
{
    struct td_attr_arg a[2] = {TD_A_INT("n", n), TD_A_DTYPE("dtype", dt)};
    return td_gb_op(b, TD_OP_eye, 0, NULL, 2, a);
}

static struct td_tensor *ones_gb(struct td_gb *b, int64_t n, enum td_dtype dt)
{
    struct td_attr_arg a[2] = {td_a_ints("shape", 1, &n), TD_A_DTYPE("dtype", dt)};
    return td_gb_op(b, TD_OP_ones, 0, NULL, 2, a);
}

static struct td_tensor *permute_gb(struct td_gb *b, struct td_tensor *x, int n,
                                    const int *perm)
{
    int64_t p[TD_MAX_NDIM];
    for (int i = 0; i < n; i++)
        p[i] = perm[i];
    struct td_attr_arg a = td_a_ints("dims", n, p);
    return td_gb_op(b, TD_OP_permute, 1, &x, 1, &a);
}

static struct td_tensor *reshape1(struct td_gb *b, struct td_tensor *x, int64_t n)
{
    return td_gb_reshape(b, x, 1, &n);
}

static struct td_tensor *reshape2(struct td_gb *b, struct td_tensor *x, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return td_gb_reshape(b, x, 2, s);
}

/* sum over k of same_op with input k replaced by its tangent (inputs without one skipped). */
static struct td_tensor *jvp_linear_each(struct td_gb *b, struct td_jvp *j)
{
    const struct td_op_ctx *c = j->c;
    int n = c->ninputs;
    struct td_tensor **in = td_calloc((size_t)n, sizeof *in);
    struct td_tensor *sum = NULL;
    if (!in)
        return td_gb_fail(b, TD_ENOMEM, "%s: out of memory", c->info->name);
    for (int i = 0; i < n; i++)
        in[i] = j->primal_in[i];
    for (int i = 0; i < n; i++) {
        if (!j->tangent_in[i])
            continue;
        in[i] = j->tangent_in[i];
        struct td_tensor *t = same_op(b, c, n, in);
        in[i] = j->primal_in[i];
        sum = sum ? ADD(sum, t) : t;
    }
    td_free(in);
    return sum;
}

/* ---- einsum ---- */

static char letter(int l)
{
    return l < 26 ? (char)('A' + l) : (char)('a' + l - 26);
}

struct ein_letters {
    char ch[TD__EIN_NLAB];   /* letter of each label in use */
    bool used[52];
};

/* A letter no label uses yet (marked used), or 0 when all 52 are taken. */
static char fresh(struct ein_letters *L)
{
    for (int l = 0; l < 52; l++)
        if (!L->used[l]) {
            L->used[l] = true;
            return letter(l);
        }
    return 0;
}

static char *put_term(char *p, const struct td__ein_term *t, const struct ein_letters *L)
{
    for (int d = 0; d < t->n; d++)
        *p++ = L->ch[t->lab[d]];
    return p;
}

static bool term_has(const struct td__ein_term *t, int l)
{
    for (int d = 0; d < t->n; d++)
        if (t->lab[d] == l)
            return true;
    return false;
}

/* t (same ndim as m) made m's shape: dims where m has 1 are summed, dims where t has 1
 * (a letter whose only other operands were broadcast) are expanded. */
static struct td_tensor *fit_shape(struct td_gb *b, struct td_tensor *t, const struct td_meta *m)
{
    if (!t)
        return NULL;
    int64_t dims[TD_MAX_NDIM];
    int nd = 0;
    bool expand = false;
    for (int d = 0; d < m->ndim; d++) {
        if (t->shape[d] != 1 && m->shape[d] == 1)
            dims[nd++] = d;
        expand |= t->shape[d] == 1 && m->shape[d] != 1;
    }
    if (nd)
        t = td_gb_sum(b, t, nd, dims, true);
    if (expand)
        t = td_gb_expand(b, t, m->ndim, m->shape);
    return t;
}

/* Gradient of operand i of the parsed equation. */
static struct td_tensor *ein_grad(struct td_gb *b, struct td_vjp *v, int i,
                                  const struct td__ein_term *terms,
                                  const struct td__ein_term *ot, const int64_t *size,
                                  struct ein_letters L, char *eq)
{
    const struct td_op_ctx *c = v->c;
    int nin = c->ninputs;
    struct td_tensor *g = v->grad[0];
    struct td_tensor **in = td_calloc((size_t)nin + 4 * TD_MAX_NDIM, sizeof *in);
    if (!in)
        return td_gb_fail(b, TD_ENOMEM, "einsum: out of memory");
    /* R: distinct labels of operand i that the output or another operand has; S: the rest. */
    const struct td__ein_term *ti = &terms[i];
    int R[TD_MAX_NDIM], S[TD_MAX_NDIM], nr = 0, ns = 0;
    for (int d = 0; d < ti->n; d++) {
        int l = ti->lab[d];
        bool seen = false;
        for (int e = 0; e < d; e++)
            seen |= ti->lab[e] == l;
        if (seen)
            continue;
        bool shared = term_has(ot, l);
        for (int k = 0; k < nin && !shared; k++)
            shared = k != i && term_has(&terms[k], l);
        if (shared)
            R[nr++] = l;
        else
            S[ns++] = l;
    }
    char *p = put_term(eq, ot, &L);
    int n = 0;
    in[n++] = g;
    for (int k = 0; k < nin; k++) {
        if (k == i)
            continue;
        *p++ = ',';
        p = put_term(p, &terms[k], &L);
        in[n++] = CONJ(td_gb_saved_input(b, k));
    }
    *p++ = '-';
    *p++ = '>';
    for (int r = 0; r < nr; r++)
        *p++ = L.ch[R[r]];
    *p = 0;
    struct td_tensor *t = einsum_gb(b, eq, n, in);
    /* Spread over S (ones) and back onto diagonals (identity), in operand i's dim order. */
    bool plain = ns == 0 && nr == ti->n;
    for (int d = 0; plain && d < ti->n; d++)
        plain = ti->lab[d] == R[d];
    if (!plain && t) {
        enum td_dtype dt = t->dtype;
        char outs[TD_MAX_NDIM + 1];
        p = eq;
        for (int r = 0; r < nr; r++)
            *p++ = L.ch[R[r]];
        n = 0;
        in[n++] = t;
        for (int s = 0; s < ns; s++) {
            *p++ = ',';
            *p++ = L.ch[S[s]];
            in[n++] = ones_gb(b, size[S[s]], dt);
        }
        for (int d = 0; d < ti->n; d++) {
            int l = ti->lab[d];
            bool seen = false;
            for (int e = 0; e < d; e++)
                seen |= ti->lab[e] == l;
            if (!seen) {
                outs[d] = L.ch[l];
                continue;
            }
            char x = fresh(&L);
            if (!x) {
                td_free(in);
                return td_gb_fail(b, TD_EUNIMPL,
                                  "einsum: the gradient needs more than 52 subscript letters");
            }
            outs[d] = x;
            *p++ = ',';
            *p++ = L.ch[l];
            *p++ = x;
            in[n++] = eye_gb(b, size[l], dt);
        }
        *p++ = '-';
        *p++ = '>';
        memcpy(p, outs, (size_t)ti->n);
        p[ti->n] = 0;
        t = einsum_gb(b, eq, n, in);
    }
    td_free(in);
    return fit_shape(b, t, &c->in_meta[i]);
}

static void vjp_einsum(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int nin = c->ninputs;
    if (!v->grad[0])
        return;
    struct td__ein_term *terms = td_calloc((size_t)nin, sizeof *terms);
    char *eq = td_malloc((size_t)(nin + 2) * (TD_MAX_NDIM + 2) + 8 * TD_MAX_NDIM);
    struct td__ein_term ot;
    int64_t size[TD__EIN_NLAB];
    struct td_error err;
    struct ein_letters L;
    if (!terms || !eq) {
        td_gb_fail(b, TD_ENOMEM, "einsum: out of memory");
        goto out;
    }
    if (td__einsum_parse(td_arg_str(c, "equation"), nin, c->in_meta, terms, &ot, size, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        goto out;
    }
    memset(&L, 0, sizeof L);
    for (int l = 0; l < 52; l++)
        if (size[l] >= 0) {
            L.ch[l] = letter(l);
            L.used[l] = true;
        }
    for (int l = 52; l < TD__EIN_NLAB; l++)
        if (size[l] >= 0 && !(L.ch[l] = fresh(&L))) {
            td_gb_fail(b, TD_EUNIMPL, "einsum: the gradient needs more than 52 subscript letters");
            goto out;
        }
    for (int i = 0; i < nin; i++)
        if (v->needs[i])
            v->grad_in[i] = ein_grad(b, v, i, terms, &ot, size, L, eq);
out:
    td_free(terms);
    td_free(eq);
}

static void jvp_einsum(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = jvp_linear_each(b, j);
}

const struct td_deriv td_deriv_einsum = {TD_SAVE_ALL_INPUTS, 0, vjp_einsum, jvp_einsum};

/* ---- outer: ga = g conj(b), gb = g^T conj(a) ---- */

static void vjp_outer(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MM(v->grad[0], CONJ(td_gb_saved_input(b, 1)));
    if (v->needs[1])
        v->grad_in[1] = MM(CONJ(td_gb_saved_input(b, 0)), v->grad[0]);
}

static void jvp_outer(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = jvp_linear_each(b, j);
}

const struct td_deriv td_deriv_outer = {TD_SAVE_ALL_INPUTS, 0, vjp_outer, jvp_outer};

/* ---- cross: c = a x b; ga = conj(b) x g, gb = g x conj(a) ---- */

static void vjp_cross(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    if (v->needs[0]) {
        struct td_tensor *in[2] = {CONJ(td_gb_saved_input(b, 1)), v->grad[0]};
        v->grad_in[0] = same_op(b, c, 2, in);
    }
    if (v->needs[1]) {
        struct td_tensor *in[2] = {v->grad[0], CONJ(td_gb_saved_input(b, 0))};
        v->grad_in[1] = same_op(b, c, 2, in);
    }
}

static void jvp_cross(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = jvp_linear_each(b, j);
}

const struct td_deriv td_deriv_cross = {TD_SAVE_ALL_INPUTS, 0, vjp_cross, jvp_cross};

/* ---- vecdot: y = sum(conj(a) b); ga = conj(g) b, gb = g a (g unsqueezed at dim) ---- */

static void vjp_vecdot(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int nd = v->out_meta[0].ndim + 1, dim = 0;
    struct td_error err;
    if (td__norm_dim("vecdot", td_arg_int(c, "dim"), nd, &dim, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return;
    }
    struct td_tensor *g = unsqueeze(b, v->grad[0], dim);
    if (v->needs[0])
        v->grad_in[0] = MUL(CONJ(g), td_gb_saved_input(b, 1));
    if (v->needs[1])
        v->grad_in[1] = MUL(g, td_gb_saved_input(b, 0));
}

static void jvp_vecdot(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = jvp_linear_each(b, j);
}

const struct td_deriv td_deriv_vecdot = {TD_SAVE_ALL_INPUTS, 0, vjp_vecdot, jvp_vecdot};

/* ---- multi_dot: g_i = (A_0..A_{i-1})^H G (A_{i+1}..A_{n-1})^H ---- */

/* Product of mats[i..j] (one matrix: itself). */
static struct td_tensor *chain(struct td_gb *b, struct td_tensor **mats, int i, int j)
{
    if (i == j)
        return mats[i];
    return td_gb_op(b, TD_OP_multi_dot, j - i + 1, mats + i, 0, NULL);
}

static void vjp_multi_dot(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int n = c->ninputs;
    struct td_tensor **mats = td_calloc((size_t)n, sizeof *mats);
    if (!mats) {
        td_gb_fail(b, TD_ENOMEM, "multi_dot: out of memory");
        return;
    }
    const struct td_meta *first = &c->in_meta[0], *last = &c->in_meta[n - 1];
    for (int i = 0; i < n; i++) {
        struct td_tensor *x = td_gb_saved_input(b, i);
        const struct td_meta *m = &c->in_meta[i];
        if (m->ndim == 1)
            x = i == 0 ? reshape2(b, x, 1, m->shape[0]) : reshape2(b, x, m->shape[0], 1);
        mats[i] = x;
    }
    int64_t rows = first->ndim == 1 ? 1 : first->shape[0];
    int64_t cols = last->ndim == 1 ? 1 : last->shape[1];
    struct td_tensor *g = reshape2(b, v->grad[0], rows, cols);
    for (int i = 0; i < n; i++) {
        if (!v->needs[i])
            continue;
        struct td_tensor *gi = g;
        if (i > 0)
            gi = MM(mH(b, chain(b, mats, 0, i - 1)), gi);
        if (i < n - 1)
            gi = MM(gi, mH(b, chain(b, mats, i + 1, n - 1)));
        const struct td_meta *m = &c->in_meta[i];
        v->grad_in[i] = td_gb_reshape(b, gi, m->ndim, m->shape);
    }
    td_free(mats);
}

static void jvp_multi_dot(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = jvp_linear_each(b, j);
}

const struct td_deriv td_deriv_multi_dot = {TD_SAVE_ALL_INPUTS, 0, vjp_multi_dot,
                                            jvp_multi_dot};

/* ---- diagonal and trace: the gradient written back onto the (offset) diagonal ---- */

/* einsum(G, E1, E2) with E1[k, r] = [r == k + r0], E2[k, s] = [s == k + c0]: an array of
 * A's shape holding G's last dim (with_k; else G broadcast along the diagonal) on the offset
 * diagonal of dims d1, d2 and zeros elsewhere. G has A's other dims in order first. */
static struct td_tensor *diag_embed(struct td_gb *b, struct td_tensor *g, const struct td_meta *a,
                                    int64_t offset, int d1, int d2, bool with_k)
{
    int64_t n1 = a->shape[d1], n2 = a->shape[d2];
    int64_t r0 = offset < 0 ? -offset : 0, c0 = offset > 0 ? offset : 0;
    int64_t len = n1 - r0 < n2 - c0 ? n1 - r0 : n2 - c0;
    if (len < 0)
        len = 0;
    if (!g)
        return NULL;
    enum td_dtype dt = g->dtype;
    struct td_tensor *in[3];
    in[0] = g;
    in[1] = narrow(b, eye_gb(b, n1, dt), 0, r0 < n1 ? r0 : n1, len);
    in[2] = narrow(b, eye_gb(b, n2, dt), 0, c0 < n2 ? c0 : n2, len);
    char eq[3 * TD_MAX_NDIM + 16], *p = eq;
    for (int d = 0; d < a->ndim; d++)
        if (d != d1 && d != d2)
            *p++ = (char)('a' + d);
    if (with_k)
        *p++ = 'z';
    p += sprintf(p, ",z%c,z%c->", 'a' + d1, 'a' + d2);
    for (int d = 0; d < a->ndim; d++)
        *p++ = (char)('a' + d);
    *p = 0;
    return einsum_gb(b, eq, 3, in);
}

static void vjp_diagonal(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    const struct td_meta *a = &c->in_meta[0];
    struct td_error err;
    int d1, d2;
    if (!v->needs[0] || !v->grad[0])
        return;
    if (td__norm_dim("diagonal", td_arg_int(c, "dim1"), a->ndim, &d1, &err) ||
        td__norm_dim("diagonal", td_arg_int(c, "dim2"), a->ndim, &d2, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return;
    }
    v->grad_in[0] = diag_embed(b, v->grad[0], a, td_arg_int(c, "offset"), d1, d2, true);
}

static void jvp_same(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

const struct td_deriv td_deriv_diagonal = {0, 0, vjp_diagonal, jvp_same};

static void vjp_trace(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *a = &v->c->in_meta[0];
    if (!v->needs[0] || !v->grad[0])
        return;
    v->grad_in[0] = diag_embed(b, v->grad[0], a, td_arg_int(v->c, "offset"), a->ndim - 2,
                               a->ndim - 1, false);
}

const struct td_deriv td_deriv_trace = {0, 0, vjp_trace, jvp_same};

/* ---- matrix_power ---- */

/* Top-right block of [[p, q], [0, p]]^m = sum_k p^k q p^(m-1-k) (p, q: [..., n, n]). */
static struct td_tensor *power_sum(struct td_gb *b, struct td_tensor *p, struct td_tensor *q,
                                   int64_t m, int64_t n)
{
    struct td_attr_arg dl = TD_A_INT("dim", -1), dr = TD_A_INT("dim", -2);
    struct td_tensor *top[2] = {p, q};
    struct td_tensor *bot[2] = {td_gb_zeros_like(b, q), p};
    struct td_tensor *rows[2];
    rows[0] = td_gb_op(b, TD_OP_cat, 2, top, 1, &dl);
    rows[1] = td_gb_op(b, TD_OP_cat, 2, bot, 1, &dl);
    struct td_tensor *x = td_gb_op(b, TD_OP_cat, 2, rows, 1, &dr);
    struct td_attr_arg pa = TD_A_INT("n", m);
    struct td_tensor *xm = td_gb_op(b, TD_OP_matrix_power, 1, &x, 1, &pa);
    return narrow(b, narrow(b, xm, -2, 0, n), -1, n, n);
}

static void vjp_matrix_power(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    int64_t m = td_arg_int(c, "n");
    const struct td_meta *a = &c->in_meta[0];
    int64_t n = a->shape[a->ndim - 1];
    if (!v->needs[0] || !v->grad[0] || m == 0)
        return;
    struct td_tensor *base = td_gb_saved_input(b, 0);
    if (m < 0)
        base = td_gb_op(b, TD_OP_inv, 1, &base, 0, NULL);
    struct td_tensor *bh = mH(b, base);
    struct td_tensor *g = power_sum(b, bh, v->grad[0], m < 0 ? -m : m, n);
    if (m < 0)
        g = NEG(MM(MM(bh, g), bh));
    v->grad_in[0] = g;
}

static void jvp_matrix_power(struct td_gb *b, struct td_jvp *j)
{
    int64_t m = td_arg_int(j->c, "n");
    struct td_tensor *a = j->primal_in[0], *da = j->tangent_in[0];
    int64_t n = a->shape[a->ndim - 1];
    if (m == 0 || !da)
        return;
    if (m < 0) {
        a = td_gb_op(b, TD_OP_inv, 1, &a, 0, NULL);
        da = NEG(MM(MM(a, da), a));
        m = -m;
    }
    j->tangent_out[0] = power_sum(b, a, da, m, n);
}

const struct td_deriv td_deriv_matrix_power = {0x1, 0, vjp_matrix_power, jvp_matrix_power};

/* ---- tensorsolve: A2 x = b with A2 = A (dims moved) as N x N ---- */

static void inverse_perm(const int *perm, int n, int *inv)
{
    for (int i = 0; i < n; i++)
        inv[perm[i]] = i;
}

/* A (ndim dims) with its dims permuted by perm, as an nsys x nsys matrix of dtype dt. */
static struct td_tensor *ts_matrix(struct td_gb *b, struct td_tensor *a, int ndim,
                                   const int *perm, int64_t nsys, enum td_dtype dt)
{
    return td_gb_cast(b, reshape2(b, permute_gb(b, a, ndim, perm), nsys, nsys), dt);
}

static void vjp_tensorsolve(struct td_gb *b, struct td_vjp *v)
{
    const struct td_op_ctx *c = v->c;
    const struct td_meta *am = &c->in_meta[0], *bm = &c->in_meta[1];
    int perm[TD_MAX_NDIM], inv[TD_MAX_NDIM];
    struct td_error err;
    if (!v->grad[0])
        return;
    if (td__tensorsolve_perm(c, perm, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return;
    }
    int64_t ns = td_shape_numel(bm->shape, bm->ndim);
    enum td_dtype dt = v->out_meta[0].dtype;
    struct td_tensor *a2 = ts_matrix(b, td_gb_saved_input(b, 0), am->ndim, perm, ns, dt);
    struct td_tensor *in[2] = {mH(b, a2), td_gb_cast(b, reshape1(b, v->grad[0], ns), dt)};
    struct td_tensor *gb = td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
    if (v->needs[1])
        v->grad_in[1] = td_gb_reshape(b, gb, bm->ndim, bm->shape);
    if (v->needs[0]) {
        struct td_tensor *x = CONJ(reshape1(b, OUT(0), ns));
        struct td_tensor *o[2] = {gb, x};
        struct td_tensor *ga2 = NEG(td_gb_op(b, TD_OP_outer, 2, o, 0, NULL));
        int64_t pshape[TD_MAX_NDIM];
        for (int d = 0; d < am->ndim; d++)
            pshape[d] = am->shape[perm[d]];
        inverse_perm(perm, am->ndim, inv);
        v->grad_in[0] =
            permute_gb(b, td_gb_reshape(b, ga2, am->ndim, pshape), am->ndim, inv);
    }
}

static void jvp_tensorsolve(struct td_gb *b, struct td_jvp *j)
{
    const struct td_op_ctx *c = j->c;
    int perm[TD_MAX_NDIM];
    struct td_error err;
    if (td__tensorsolve_perm(c, perm, &err)) {
        td_gb_fail(b, err.status, "%s", err.msg);
        return;
    }
    struct td_tensor *bt = j->primal_in[1];
    int64_t ns = td_tensor_numel(bt);
    struct td_tensor *x = td_gb_grad_mode(b) ? same_op(b, c, 2, j->primal_in) : j->primal_out[0];
    if (!x)
        return;
    enum td_dtype dt = x->dtype;
    struct td_tensor *a2 = ts_matrix(b, j->primal_in[0], c->in_meta[0].ndim, perm, ns, dt);
    struct td_tensor *rhs = NULL;
    if (j->tangent_in[1])
        rhs = td_gb_cast(b, reshape1(b, j->tangent_in[1], ns), dt);
    if (j->tangent_in[0]) {
        struct td_tensor *da2 = ts_matrix(b, j->tangent_in[0], c->in_meta[0].ndim, perm, ns, dt);
        struct td_tensor *t = NEG(MM(da2, reshape1(b, x, ns)));
        rhs = rhs ? ADD(rhs, t) : t;
    }
    if (!rhs)
        return;
    struct td_tensor *in[2] = {a2, rhs};
    struct td_tensor *dx = td_gb_op(b, TD_OP_solve, 2, in, 0, NULL);
    j->tangent_out[0] = dx ? td_gb_reshape(b, dx, x->ndim, x->shape) : NULL;
}

const struct td_deriv td_deriv_tensorsolve = {TD_SAVE_ALL_INPUTS, 0x1, vjp_tensorsolve,
                                              jvp_tensorsolve};

/* ---- tensorinv: Y2 = A2^-1; gA2 = -Y2^H G2 Y2^H; dY2 = -Y2 dA2 Y2 ---- */

static void vjp_tensorinv(struct td_gb *b, struct td_vjp *v)
{
    const struct td_meta *am = &v->c->in_meta[0];
    if (!v->needs[0] || !v->grad[0])
        return;
    int64_t ind = td_arg_int(v->c, "ind");
    int64_t ns = td_shape_numel(am->shape, (int)ind);
    struct td_tensor *yh = mH(b, reshape2(b, OUT(0), ns, ns));
    struct td_tensor *g = NEG(MM(MM(yh, reshape2(b, v->grad[0], ns, ns)), yh));
    v->grad_in[0] = td_gb_reshape(b, g, am->ndim, am->shape);
}

static void jvp_tensorinv(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *a = j->primal_in[0];
    int64_t ind = td_arg_int(j->c, "ind");
    int64_t ns = td_shape_numel(a->shape, (int)ind);
    struct td_tensor *y = td_gb_grad_mode(b) ? same_op(b, j->c, 1, j->primal_in)
                                             : j->primal_out[0];
    if (!y || !j->tangent_in[0])
        return;
    struct td_tensor *y2 = reshape2(b, y, ns, ns);
    struct td_tensor *d = NEG(MM(MM(y2, reshape2(b, j->tangent_in[0], ns, ns)), y2));
    j->tangent_out[0] = td_gb_reshape(b, d, y->ndim, y->shape);
}

const struct td_deriv td_deriv_tensorinv = {0, 0x1, vjp_tensorinv, jvp_tensorinv};
