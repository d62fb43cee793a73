/*
 * derivatives_elementwise.c - VJPs and JVPs of the elementwise ops (ops.def rows with grad D
 * in the unary, binary and ternary sections).
 *
 * Conventions (td_autograd.h): a VJP writes v->grad_in[i] for inputs with v->needs[i]; the
 * engine sums broadcast dims away, casts to the input's dtype and keeps the real part for a
 * real input, so formulas may return the broadcast, promoted gradient. Complex inputs follow
 * PyTorch: a holomorphic f has VJP grad * conj(f'(z)); its JVP is f'(z) * tangent.
 * Every formula uses td_gb_* ops only, so with create_graph the gradient is differentiable.
 */
#include "td_autograd.h"
#include "td_internal.h"

#define IN(i) td_gb_saved_input(b, (i))
#define OUT(k) td_gb_saved_output(b, (k))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))
#define CONJ(x) td_gb_conj(b, (x))

/* ---- add / mul / exp: the patterns the other formulas follow ---- */

/* A wrapped 0-d tensor holding alpha (conjugated when conj). */
static struct td_tensor *alpha_of(struct td_gb *b, const struct td_scalar *al, bool conj)
{
    struct td_attr_arg a[2] = {{"value", {.type = TD_ATTR_SCALAR, .scalar = *al}},
                               TD_A_BOOL("wrapped", true)};
    if (conj)
        a[0].value.scalar.im = -a[0].value.scalar.im;
    return td_gb_op(b, TD_OP_scalar_tensor, 0, NULL, 2, a);
}

/* add(a, b, alpha): da = g, db = conj(alpha) * g. */
static void vjp_add(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    const struct td_scalar *al = td_arg_has(v->c, "alpha") ? td_arg_scalar(v->c, "alpha") : NULL;
    if (v->needs[0])
        v->grad_in[0] = g;
    if (v->needs[1])
        v->grad_in[1] = al ? MUL(g, alpha_of(b, al, true)) : g;
}

/* ta + alpha * tb; an integer operand has no tangent (NULL) and contributes nothing. */
static void jvp_add(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    const struct td_scalar *al = td_arg_has(j->c, "alpha") ? td_arg_scalar(j->c, "alpha") : NULL;
    if (tb && al)
        tb = MUL(tb, alpha_of(b, al, false));
    j->tangent_out[0] = (ta && tb) ? ADD(ta, tb) : (ta ? ta : tb);
}

const struct td_deriv td_deriv_add = {0, 0, vjp_add, jvp_add};

/* mul: da = g * conj(b), db = g * conj(a). */
static void vjp_mul(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = MUL(g, CONJ(IN(1)));
    if (v->needs[1])
        v->grad_in[1] = MUL(g, CONJ(IN(0)));
}

static void jvp_mul(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *x = j->primal_in[0], *y = j->primal_in[1];
    struct td_tensor *tx = j->tangent_in[0], *ty = j->tangent_in[1];
    struct td_tensor *p = tx ? MUL(tx, y) : NULL, *q = ty ? MUL(x, ty) : NULL;
    j->tangent_out[0] = (p && q) ? ADD(p, q) : (p ? p : q);
}

const struct td_deriv td_deriv_mul = {0x3, 0, vjp_mul, jvp_mul};

/* exp: d = g * conj(exp(z)), using the saved output. */
static void vjp_exp(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], CONJ(OUT(0)));
}

static void jvp_exp(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = MUL(j->tangent_in[0], j->primal_out[0]);
}

const struct td_deriv td_deriv_exp = {0, 0x1, vjp_exp, jvp_exp};
