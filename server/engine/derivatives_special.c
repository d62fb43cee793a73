/*
 * derivatives_special.c - VJPs and JVPs of the torch.special ops (ops.def section "special",
 * kernels in ops_special.c). Conventions as in derivatives_elementwise.c: every formula is
 * written with td_gb_* ops (including the special ops themselves), so with create_graph the
 * gradient is itself differentiable.
 *
 * Unary ops save their input and recompute what the derivative needs from it; the derivative
 * formulas are PyTorch's (tools/autograd/derivatives.yaml):
 *   gamma' = gamma digamma, lgamma' = digamma, digamma' = polygamma(1),
 *   polygamma(n)' = polygamma(n + 1), multigammaln' = sum_j digamma(x - j/2),
 *   erfc' = -2/sqrt(pi) e^-x^2, erfinv' = sqrt(pi)/2 e^(erfinv^2), erfcx' = 2x erfcx - 2/sqrt(pi),
 *   expit' = s (1 - s), logit' = 1 / (x (1 - x)) (0 outside [eps, 1 - eps] with eps),
 *   xlogy: dx = xlogy(x != 0, y), dy = x / y;  xlog1py: dx = xlog1py(x != 0, y), dy = x/(1+y),
 *   i0' = i1, i0e' = i1e - sgn(x) i0e, i1' = i0 - i1/x (1/2 at 0),
 *   i1e' = i0e - i1e (sgn(x) + 1/x) (1/2 at 0), ndtr' = phi(x), ndtri' = sqrt(2 pi) e^(q^2/2),
 *   log_ndtr' = e^(-x^2/2 - log_ndtr(x)) / sqrt(2 pi), sinc' = (cos(pi x) - sinc x) / x (0 at 0),
 *   entr' = -(1 + log x).
 * zeta, gammainc, gammaincc and the Bessel functions J/Y are not differentiable (N), as in
 * PyTorch for the inputs these ops are usually differentiated in.
 */
#include <math.h>

#include "td_autograd.h"
#include "td_internal.h"

#define IN(i) td_gb_saved_input(b, (i))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define DIV(x, y) td_gb_binary(b, TD_OP_div, (x), (y))
#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))
#define SUB(x, y) td_gb_binary(b, TD_OP_add, (x), td_gb_scale(b, (y), -1.0))
#define SCALE(x, v) td_gb_scale(b, (x), (v))
#define CONST(v) td_gb_scalar(b, (v))
#define U(op, x) td_gb_unary(b, TD_OP_##op, (x))

#define D_PI 3.14159265358979323846
#define D_SQRTPI 1.77245385090551602730
#define D_SQRT2PI 2.50662827463100050242

/* where(x == 0, at0, v) */
static struct td_tensor *at_zero(struct td_gb *b, struct td_tensor *x, double at0,
                                 struct td_tensor *v)
{
    struct td_tensor *in[3] = {td_gb_binary(b, TD_OP_eq, x, CONST(0.0)), CONST(at0), v};
    return td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
}

static struct td_tensor *polygamma_n(struct td_gb *b, int64_t n, struct td_tensor *x)
{
    struct td_attr_arg a[1] = {TD_A_INT("n", n)};
    return td_gb_op(b, TD_OP_polygamma, 1, &x, 1, a);
}

/* d op / dx at x for the unary op of c. */
static struct td_tensor *unary_deriv(struct td_gb *b, const struct td_op_ctx *c,
                                     struct td_tensor *x)
{
    switch (c->op) {
    case TD_OP_gamma:
        return MUL(U(gamma, x), U(digamma, x));
    case TD_OP_lgamma:
        return U(digamma, x);
    case TD_OP_digamma:
        return polygamma_n(b, 1, x);
    case TD_OP_polygamma:
        return polygamma_n(b, td_arg_int(c, "n") + 1, x);
    case TD_OP_multigammaln: {
        int64_t p = td_arg_int(c, "p");
        struct td_tensor *s = U(digamma, x);
        for (int64_t j = 1; j < p; j++)
            s = ADD(s, U(digamma, ADD(x, CONST(-0.5 * (double)j))));
        return s;
    }
    case TD_OP_erfc:
        return SCALE(U(exp, SCALE(MUL(x, x), -1.0)), -2 / D_SQRTPI);
    case TD_OP_erfinv: {
        struct td_tensor *y = U(erfinv, x);
        return SCALE(U(exp, MUL(y, y)), D_SQRTPI / 2);
    }
    case TD_OP_erfcx:
        return ADD(SCALE(MUL(x, U(erfcx, x)), 2.0), CONST(-2 / D_SQRTPI));
    case TD_OP_expit: {
        struct td_tensor *s = U(expit, x);
        return MUL(s, ADD(SCALE(s, -1.0), CONST(1.0)));
    }
    case TD_OP_logit: {
        struct td_tensor *d = DIV(CONST(1.0), MUL(x, ADD(SCALE(x, -1.0), CONST(1.0))));
        if (!td_arg_has(c, "eps"))
            return d;
        double eps = td_arg_float(c, "eps");
        struct td_tensor *in[3] = {
            td_gb_binary(b, TD_OP_logical_and, td_gb_binary(b, TD_OP_ge, x, CONST(eps)),
                         td_gb_binary(b, TD_OP_le, x, CONST(1 - eps))),
            d, CONST(0.0)};
        return td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
    }
    case TD_OP_i0:
        return U(i1, x);
    case TD_OP_i0e:
        return SUB(U(i1e, x), MUL(U(sign, x), U(i0e, x)));
    case TD_OP_i1:
        return at_zero(b, x, 0.5, SUB(U(i0, x), DIV(U(i1, x), x)));
    case TD_OP_i1e:
        return at_zero(b, x, 0.5,
                       SUB(U(i0e, x), MUL(U(i1e, x), ADD(U(sign, x), DIV(CONST(1.0), x)))));
    case TD_OP_ndtr:
        return SCALE(U(exp, SCALE(MUL(x, x), -0.5)), 1 / D_SQRT2PI);
    case TD_OP_ndtri: {
        struct td_tensor *q = U(ndtri, x);
        return SCALE(U(exp, SCALE(MUL(q, q), 0.5)), D_SQRT2PI);
    }
    case TD_OP_log_ndtr:
        return SCALE(U(exp, SUB(SCALE(MUL(x, x), -0.5), U(log_ndtr, x))), 1 / D_SQRT2PI);
    case TD_OP_sinc:
        return at_zero(b, x, 0.0,
                       DIV(SUB(U(cos, SCALE(x, D_PI)), U(sinc, x)), x));
    case TD_OP_entr:
        return SCALE(ADD(U(log, x), CONST(1.0)), -1.0);
    default:
        return td_gb_fail(b, TD_EINTERNAL, "special: no derivative for %s", c->info->name);
    }
}

static void vjp_unary(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], unary_deriv(b, v->c, IN(0)));
}

static void jvp_unary(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = MUL(j->tangent_in[0], unary_deriv(b, j->c, j->primal_in[0]));
}

#define SP_DERIV(name) const struct td_deriv td_deriv_##name = {0x1, 0, vjp_unary, jvp_unary};

SP_DERIV(gamma)
SP_DERIV(lgamma)
SP_DERIV(digamma)
SP_DERIV(polygamma)
SP_DERIV(multigammaln)
SP_DERIV(erfc)
SP_DERIV(erfinv)
SP_DERIV(erfcx)
SP_DERIV(expit)
SP_DERIV(logit)
SP_DERIV(i0)
SP_DERIV(i0e)
SP_DERIV(i1)
SP_DERIV(i1e)
SP_DERIV(ndtr)
SP_DERIV(ndtri)
SP_DERIV(log_ndtr)
SP_DERIV(sinc)
SP_DERIV(entr)

/* xlogy / xlog1py: d/dx = op(x != 0, y) (0 where x == 0, as PyTorch), d/dy = x / y or
 * x / (1 + y). */
static struct td_tensor *xlog_dx(struct td_gb *b, enum td_op op, struct td_tensor *x,
                                 struct td_tensor *y)
{
    return td_gb_binary(b, op, U(abs, U(sign, x)), y);
}

static struct td_tensor *xlog_dy(struct td_gb *b, enum td_op op, struct td_tensor *x,
                                 struct td_tensor *y)
{
    return DIV(x, op == TD_OP_xlogy ? y : ADD(y, CONST(1.0)));
}

static void vjp_xlog(struct td_gb *b, struct td_vjp *v)
{
    enum td_op op = v->c->op;
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], xlog_dx(b, op, IN(0), IN(1)));
    if (v->needs[1])
        v->grad_in[1] = MUL(v->grad[0], xlog_dy(b, op, IN(0), IN(1)));
}

static void jvp_xlog(struct td_gb *b, struct td_jvp *j)
{
    enum td_op op = j->c->op;
    struct td_tensor *x = j->primal_in[0], *y = j->primal_in[1];
    j->tangent_out[0] = ADD(MUL(j->tangent_in[0], xlog_dx(b, op, x, y)),
                            MUL(j->tangent_in[1], xlog_dy(b, op, x, y)));
}

const struct td_deriv td_deriv_xlogy = {0x3, 0, vjp_xlog, jvp_xlog};
const struct td_deriv td_deriv_xlog1py = {0x3, 0, vjp_xlog, jvp_xlog};
