/*
 * td_derivatives.h - helpers shared by the derivative formulas of the derivatives_*.c
 * files: the saved-input shorthand, replaying the recorded op on other tensors
 * (the JVP of a linear op is the op applied to the tangents), and the small attribute-taking
 * ops the formulas build with. Everything here goes through the td_gb builder, so with
 * create_graph the results are differentiable again. Internal: include it only from a
 * derivatives_*.c file that names a struct td_gb `b`; everything here is static.
 */
#ifndef TD_DERIVATIVES_H
#define TD_DERIVATIVES_H

#include "td_autograd.h"
#include "td_internal.h"

/* Input i of the node, as saved at record time (version-checked when read). */
#define IN(i) td_gb_saved_input(b, (i))
/* Output k of the node, as saved at record time. */
#define OUT(k) td_gb_saved_output(b, (k))
/* Builder shorthands: arithmetic, matrix product and conjugation of builder tensors. */
#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))
#define SUB(x, y) td_gb_binary(b, TD_OP_sub, (x), (y))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define DIV(x, y) td_gb_binary(b, TD_OP_div, (x), (y))
#define MM(x, y) td_gb_binary(b, TD_OP_matmul, (x), (y))
#define NEG(x) td_gb_unary(b, TD_OP_neg, (x))
#define CONJ(x) td_gb_conj(b, (x))

/* Runs the forward op c again, with the attributes it was recorded with, on in[] and
 * returns its nout outputs in out[] (NULL where the builder has failed). */
static inline void same_opn(struct td_gb *b, const struct td_op_ctx *c, int nin,
                            struct td_tensor *const *in, int nout, struct td_tensor **out)
{
    struct td_attr_arg a[TD_MAX_ATTRS];
    int na = 0;
    for (int k = 0; k < c->info->nattrs; k++) {
        if (!c->attrs[k].present)
            continue;
        a[na].name = c->info->attrs[k].name;
        a[na].value = c->attrs[k];
        na++;
    }
    (void)td_gb_opn(b, c->op, nin, in, na, a, nout, out);
}

/* same_opn for a one-output op: returns output 0 or NULL. */
static inline struct td_tensor *same_op(struct td_gb *b, const struct td_op_ctx *c, int nin,
                                        struct td_tensor *const *in)
{
    struct td_tensor *out = NULL;
    same_opn(b, c, nin, in, 1, &out);
    return out;
}

/* where(cond, x, y). */
static inline struct td_tensor *where3(struct td_gb *b, struct td_tensor *cond, struct td_tensor *x,
                                       struct td_tensor *y)
{
    struct td_tensor *in[3] = {cond, x, y};
    return td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
}

/* narrow(x, dim, start, len). */
static inline struct td_tensor *narrow(struct td_gb *b, struct td_tensor *x, int64_t dim,
                                       int64_t start, int64_t len)
{
    struct td_attr_arg a[3] = {TD_A_INT("dim", dim), TD_A_INT("start", start),
                               TD_A_INT("length", len)};
    return td_gb_op(b, TD_OP_narrow, 1, &x, 3, a);
}

/* The norm ops of ops_linalg_norms.c (vector_norm, matrix_norm, norm) resolved to one form,
 * shared with their derivatives (derivatives_linalg_norms.c). Matrix ords are
 * fro, nuc, inf, -inf, 1, -1, 2, -2. */
enum td__mord { TD__MO_FRO, TD__MO_NUC, TD__MO_INF, TD__MO_NINF, TD__MO_1, TD__MO_N1,
                TD__MO_2, TD__MO_N2 };
struct td__norm_plan {
    bool matrix;              /* a matrix norm over dims d0 (rows), d1 (columns) */
    double p;                 /* vector ord (any real, +-inf) */
    enum td__mord mo;         /* matrix ord */
    int d0, d1;
    bool red[TD_MAX_NDIM];    /* reduced input dims */
    int nred;
    bool keepdim;
    enum td_dtype cdt;        /* dtype computed in (the input cast by the dtype attr) */
    int ndim;                 /* result shape */
    int64_t shape[TD_MAX_NDIM];
};
/* Resolves the attrs of vector_norm, matrix_norm or norm (c->op) for c->in_meta[0].
 * Returns: 0 or TD_EINVAL naming the op. */
int td__norm_plan(const struct td_op_ctx *c, struct td__norm_plan *p, struct td_error *err);
/* Parses a matrix ord ("fro", "nuc" or a number among +-1, +-2, +-inf). Returns: 0 or -1. */
int td__norm_mord(const char *s, enum td__mord *mo);

/* unsqueeze(x, dim). */
static inline struct td_tensor *unsqueeze(struct td_gb *b, struct td_tensor *x, int64_t dim)
{
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, TD_OP_unsqueeze, 1, &x, 1, &a);
}

/* ---- matrix shorthands of the linalg derivative files ---- */

/* x^T over the last two dims. */
static inline struct td_tensor *mT(struct td_gb *b, struct td_tensor *x)
{
    struct td_attr_arg a[2] = {TD_A_INT("dim0", -1), TD_A_INT("dim1", -2)};
    return td_gb_op(b, TD_OP_transpose, 1, &x, 2, a);
}

/* x^H over the last two dims. */
static inline struct td_tensor *mH(struct td_gb *b, struct td_tensor *x)
{
    return td_gb_conj(b, mT(b, x));
}

/* tril or triu (op) of x with diagonal offset k. */
static inline struct td_tensor *tri(struct td_gb *b, enum td_op op, struct td_tensor *x,
                                    int64_t k)
{
    struct td_attr_arg a = TD_A_INT("diagonal", k);
    return td_gb_op(b, op, 1, &x, 1, &a);
}

/* The diagonal part of x as a matrix (zeros elsewhere). */
static inline struct td_tensor *diag_part(struct td_gb *b, struct td_tensor *x)
{
    return tri(b, TD_OP_triu, tri(b, TD_OP_tril, x, 0), 0);
}

/* cat([x, y], dim). */
static inline struct td_tensor *cat2(struct td_gb *b, struct td_tensor *x, struct td_tensor *y,
                                     int64_t dim)
{
    struct td_tensor *in[2] = {x, y};
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, TD_OP_cat, 2, in, 1, &a);
}

/* permute(x, dims[0..n)). */
static inline struct td_tensor *permute(struct td_gb *b, struct td_tensor *x, int n,
                                        const int64_t *dims)
{
    struct td_attr_arg a = td_a_ints("dims", n, dims);
    return td_gb_op(b, TD_OP_permute, 1, &x, 1, &a);
}

/* The thin svd of x: out[0..3) = U, S, Vh. */
static inline void svd_thin(struct td_gb *b, struct td_tensor *x, struct td_tensor **out)
{
    struct td_attr_arg a = TD_A_BOOL("full_matrices", false);
    (void)td_gb_opn(b, TD_OP_svd, 1, &x, 1, &a, 3, out);
}

/* ---- shared by ops_contract.c and derivatives_contract.c ---- */

/* einsum labels: 'A'..'Z' = 0..25, 'a'..'z' = 26..51, ellipsis dims 52..52+TD_MAX_NDIM-1
 * (right-aligned: the last ellipsis dim of every operand is label 52 + TD_MAX_NDIM - 1). */
#define TD__EIN_NLAB (52 + TD_MAX_NDIM)
struct td__ein_term {
    int n;                        /* dims */
    int8_t lab[TD_MAX_NDIM];      /* label of each dim */
};
/* Parses an einsum equation for nin operands of metas in[]: terms[0..nin) (caller storage)
 * receive each operand's labels, *outt the output's (implicit mode filled in), size[l] the
 * broadcast size of label l (-1 when unused; size[] has TD__EIN_NLAB entries).
 * Returns: 0 or TD_EINVAL naming einsum and what is wrong. */
int td__einsum_parse(const char *eq, int nin, const struct td_meta *in,
                     struct td__ein_term *terms, struct td__ein_term *outt, int64_t *size,
                     struct td_error *err) TD_WUR;
/* tensorsolve: perm[0..A.ndim) = A's dims with the `dims` attribute moved to the end.
 * Returns: 0 or TD_EINVAL. */
int td__tensorsolve_perm(const struct td_op_ctx *c, int *perm, struct td_error *err) TD_WUR;

#endif
