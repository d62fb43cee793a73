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
#include <complex.h>

#include "td_autograd.h"
#include "td_internal.h"

#define IN(i) td_gb_saved_input(b, (i))
#define OUT(k) td_gb_saved_output(b, (k))
#define MUL(x, y) td_gb_binary(b, TD_OP_mul, (x), (y))
#define ADD(x, y) td_gb_binary(b, TD_OP_add, (x), (y))
#define CONJ(x) td_gb_conj(b, (x))

/* ---- add / mul / exp: the patterns the other formulas follow ---- */

/* The dtype that holds a scalar of kind k exactly (a wrapped tensor of it is still weak in
 * promotion, so float32 * it stays float32, but float64 * it is computed in full precision). */
static enum td_dtype exact_dtype(enum td_scalar_kind k)
{
    switch (k) {
    case TD_SCALAR_BOOL:
        return TD_BOOL;
    case TD_SCALAR_INT:
        return TD_INT64;
    case TD_SCALAR_FLOAT:
        return TD_FLOAT64;
    default:
        return TD_COMPLEX128;
    }
}

/* A wrapped 0-d tensor holding s exactly. */
static struct td_tensor *wrap_scalar(struct td_gb *b, const struct td_scalar *s)
{
    struct td_attr_arg a[3] = {{"value", {.type = TD_ATTR_SCALAR, .scalar = *s}},
                               TD_A_DTYPE("dtype", exact_dtype(s->kind)),
                               TD_A_BOOL("wrapped", true)};
    return td_gb_op(b, TD_OP_scalar_tensor, 0, NULL, 3, a);
}

/* A wrapped 0-d tensor holding alpha (conjugated when conj). */
static struct td_tensor *alpha_of(struct td_gb *b, const struct td_scalar *al, bool conj)
{
    struct td_scalar s = *al;
    if (conj)
        s.im = -s.im;
    return wrap_scalar(b, &s);
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

/* The JVP recomputes exp(x) rather than reading primal_out: the engine computes tangents
 * before it links the outputs to their node, so a tangent built from primal_out would not
 * be differentiable with respect to x (reverse over forward). The other JVPs here do the
 * same. */
static void jvp_exp(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = MUL(j->tangent_in[0], td_gb_unary(b, TD_OP_exp, j->primal_in[0]));
}

const struct td_deriv td_deriv_exp = {0, 0x1, vjp_exp, jvp_exp};

/* ---- helpers ---- */

#define SUB(x, y) td_gb_binary(b, TD_OP_sub, (x), (y))
#define DIV(x, y) td_gb_binary(b, TD_OP_div, (x), (y))
#define U(op, x) td_gb_unary(b, TD_OP_##op, (x))
#define SC(v) fscalar(b, (v))
#define SCALE(x, v) MUL((x), fscalar(b, (v)))

/* Wrapped numbers (weak in promotion) held exactly: a float, a complex re + i im (float64 *
 * it is complex128), an integer (keeps an integer exponent integral in pow's formula). */
static struct td_tensor *fscalar(struct td_gb *b, double v)
{
    struct td_scalar s = {.kind = TD_SCALAR_FLOAT, .re = v};
    return wrap_scalar(b, &s);
}

static struct td_tensor *cscalar(struct td_gb *b, double re, double im)
{
    struct td_scalar s = {.kind = TD_SCALAR_COMPLEX, .re = re, .im = im};
    return wrap_scalar(b, &s);
}

static struct td_tensor *iscalar(struct td_gb *b, int64_t v)
{
    struct td_scalar s = {.kind = TD_SCALAR_INT, .i = v, .re = (double)v};
    return wrap_scalar(b, &s);
}

static struct td_tensor *where3(struct td_gb *b, struct td_tensor *cond, struct td_tensor *x,
                                struct td_tensor *y)
{
    struct td_tensor *in[3] = {cond, x, y};
    return td_gb_op(b, TD_OP_where, 3, in, 0, NULL);
}

/* x with the elements where it is 0 replaced by 1 (a denominator that is safe to divide by,
 * also for the gradient of the division: no 0/0 is formed where the result is masked). */
static struct td_tensor *nonzero_or_one(struct td_gb *b, struct td_tensor *x)
{
    return where3(b, td_gb_binary(b, TD_OP_eq, x, SC(0)), SC(1), x);
}

/* sgn(z) = z / |z| (0 at 0) for complex z; sign(x) for real x. */
static struct td_tensor *sgn(struct td_gb *b, struct td_tensor *z)
{
    if (!z)
        return NULL;
    if (!td_dtype_is_complex(z->dtype))
        return U(sign, z);
    return DIV(z, nonzero_or_one(b, U(abs, z)));
}

/* p + q where either may be NULL (a zero). */
static struct td_tensor *add_opt(struct td_gb *b, struct td_tensor *p, struct td_tensor *q)
{
    return (p && q) ? ADD(p, q) : (p ? p : q);
}

/* ---- unary ops whose derivative is a function f'(x, y) of input x and output y ---- */

/* The output as a JVP may use it: f(x) recomputed from the primal input (with its history),
 * when the formula needs it (see jvp_exp). */
static struct td_tensor *jvp_out(struct td_gb *b, struct td_jvp *j, bool needed)
{
    return needed ? td_gb_unary(b, j->c->op, j->primal_in[0]) : NULL;
}

/* For these f is holomorphic (or real): VJP g * conj(f'), JVP t * f'. The _DIV variants
 * compute 1 / f' and divide, which is as accurate and avoids forming a reciprocal. */
#define UNARY_MUL(name, save_in, save_out)                                                         \
    static void vjp_##name(struct td_gb *b, struct td_vjp *v)                                      \
    {                                                                                              \
        if (v->needs[0])                                                                           \
            v->grad_in[0] =                                                                        \
                MUL(v->grad[0],                                                                    \
                    CONJ(d_##name(b, (save_in) ? IN(0) : NULL, (save_out) ? OUT(0) : NULL)));      \
    }                                                                                              \
    static void jvp_##name(struct td_gb *b, struct td_jvp *j)                                      \
    {                                                                                              \
        if (j->tangent_in[0])                                                                      \
            j->tangent_out[0] =                                                                    \
                MUL(j->tangent_in[0], d_##name(b, j->primal_in[0], jvp_out(b, j, (save_out))));    \
    }                                                                                              \
    const struct td_deriv td_deriv_##name = {(save_in), (save_out), vjp_##name, jvp_##name};

#define UNARY_DIV(name, save_in, save_out)                                                         \
    static void vjp_##name(struct td_gb *b, struct td_vjp *v)                                      \
    {                                                                                              \
        if (v->needs[0])                                                                           \
            v->grad_in[0] =                                                                        \
                DIV(v->grad[0],                                                                    \
                    CONJ(den_##name(b, (save_in) ? IN(0) : NULL, (save_out) ? OUT(0) : NULL)));    \
    }                                                                                              \
    static void jvp_##name(struct td_gb *b, struct td_jvp *j)                                      \
    {                                                                                              \
        if (j->tangent_in[0])                                                                      \
            j->tangent_out[0] =                                                                    \
                DIV(j->tangent_in[0], den_##name(b, j->primal_in[0], jvp_out(b, j, (save_out))));  \
    }                                                                                              \
    const struct td_deriv td_deriv_##name = {(save_in), (save_out), vjp_##name, jvp_##name};

/* expm1' = e^x = y + 1 */
static struct td_tensor *d_expm1(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return ADD(y, SC(1));
}
UNARY_MUL(expm1, 0, 1)

static struct td_tensor *d_sin(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(cos, x);
}
UNARY_MUL(sin, 1, 0)

static struct td_tensor *d_cos(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(neg, U(sin, x));
}
UNARY_MUL(cos, 1, 0)

/* tan' = 1 + tan^2 */
static struct td_tensor *d_tan(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return ADD(MUL(y, y), SC(1));
}
UNARY_MUL(tan, 0, 1)

static struct td_tensor *d_sinh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(cosh, x);
}
UNARY_MUL(sinh, 1, 0)

static struct td_tensor *d_cosh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(sinh, x);
}
UNARY_MUL(cosh, 1, 0)

/* tanh' = 1 - tanh^2 */
static struct td_tensor *d_tanh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return SUB(SC(1), MUL(y, y));
}
UNARY_MUL(tanh, 0, 1)

/* sigmoid' = s (1 - s) */
static struct td_tensor *d_sigmoid(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return MUL(y, SUB(SC(1), y));
}
UNARY_MUL(sigmoid, 0, 1)

/* (x^-1/2)' = -x^-3/2 / 2 = -y^3 / 2 */
static struct td_tensor *d_rsqrt(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return SCALE(MUL(MUL(y, y), y), -0.5);
}
UNARY_MUL(rsqrt, 0, 1)

static struct td_tensor *den_log(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)b;
    (void)y;
    return x;
}
UNARY_DIV(log, 1, 0)

static struct td_tensor *den_log1p(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return ADD(x, SC(1));
}
UNARY_DIV(log1p, 1, 0)

static struct td_tensor *den_log2(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return SCALE(x, 0.69314718055994530942);
}
UNARY_DIV(log2, 1, 0)

static struct td_tensor *den_log10(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return SCALE(x, 2.30258509299404568402);
}
UNARY_DIV(log10, 1, 0)

/* sqrt' = 1 / (2 sqrt(x)) */
static struct td_tensor *den_sqrt(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)x;
    return SCALE(y, 2);
}
UNARY_DIV(sqrt, 0, 1)

/* asin' = 1 / sqrt(1 - x^2); the principal sqrt has asin's branch cuts for complex x. */
static struct td_tensor *den_asin(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(sqrt, SUB(SC(1), MUL(x, x)));
}
UNARY_DIV(asin, 1, 0)

static struct td_tensor *den_acos(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(neg, U(sqrt, SUB(SC(1), MUL(x, x))));
}
UNARY_DIV(acos, 1, 0)

static struct td_tensor *den_atan(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return ADD(MUL(x, x), SC(1));
}
UNARY_DIV(atan, 1, 0)

static struct td_tensor *den_asinh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return U(sqrt, ADD(MUL(x, x), SC(1)));
}
UNARY_DIV(asinh, 1, 0)

/* acosh' = 1 / (sqrt(x - 1) sqrt(x + 1)): acosh(z) = log(z + sqrt(z - 1) sqrt(z + 1)), and
 * this product (not sqrt(z^2 - 1)) is the right branch for complex z with Re z < 0. */
static struct td_tensor *den_acosh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return MUL(U(sqrt, SUB(x, SC(1))), U(sqrt, ADD(x, SC(1))));
}
UNARY_DIV(acosh, 1, 0)

static struct td_tensor *den_atanh(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    (void)y;
    return SUB(SC(1), MUL(x, x));
}
UNARY_DIV(atanh, 1, 0)

/* ---- linear and piecewise unary ops ---- */

static void vjp_neg(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = U(neg, v->grad[0]);
}

static void jvp_neg(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = U(neg, j->tangent_in[0]);
}

const struct td_deriv td_deriv_neg = {0, 0, vjp_neg, jvp_neg};

/* abs: VJP g * sgn(x) (0 at 0, like PyTorch); JVP Re(conj(sgn x) t), real for complex x. */
static void vjp_abs(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], sgn(b, IN(0)));
}

static void jvp_abs(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *x = j->primal_in[0], *t = j->tangent_in[0];
    if (!t)
        return;
    struct td_tensor *d = MUL(CONJ(sgn(b, x)), t);
    j->tangent_out[0] = td_dtype_is_complex(x->dtype) ? U(real, d) : d;
}

const struct td_deriv td_deriv_abs = {0x1, 0, vjp_abs, jvp_abs};

/* Piecewise-constant ops: the gradient is zero (explicit zeros, as in PyTorch, so that
 * autograd.grad reports a zero rather than an unused input); the tangent is zero (NULL). */
static void vjp_zero(struct td_gb *b, struct td_vjp *v)
{
    for (int i = 0; i < v->c->ninputs; i++)
        if (v->needs[i])
            v->grad_in[i] = td_gb_zeros_like(b, v->grad[0]);
}

static void jvp_zero(struct td_gb *b, struct td_jvp *j)
{
    (void)b;
    (void)j;
}

/* sign: zero almost everywhere for real x. For complex z, s = z / |z| and d|z| =
 * Re(conj(s) dz) give ds = (dz - Re(dz conj(s)) s) / |z|: that is the JVP for dz = u, and
 * the VJP, the gradient dL/dx + i dL/dy of Re(conj(g) s), is the same map of g (PyTorch's
 * sgn_backward); both are 0 at z = 0, where sign is 0 around no neighbourhood. */
static struct td_tensor *d_csign(struct td_gb *b, struct td_tensor *z, struct td_tensor *w)
{
    struct td_tensor *r = U(abs, z), *s = sgn(b, z);
    struct td_tensor *d = DIV(SUB(w, MUL(U(real, MUL(w, CONJ(s))), s)), nonzero_or_one(b, r));
    return where3(b, td_gb_binary(b, TD_OP_eq, r, SC(0)), SC(0), d);
}

static void vjp_sign(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0] && td_dtype_is_complex(v->c->in_meta[0].dtype))
        v->grad_in[0] = d_csign(b, IN(0), v->grad[0]);
    else
        vjp_zero(b, v);
}

static void jvp_sign(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0] && td_dtype_is_complex(j->primal_in[0]->dtype))
        j->tangent_out[0] = d_csign(b, j->primal_in[0], j->tangent_in[0]);
}

const struct td_deriv td_deriv_sign = {0x1, 0, vjp_sign, jvp_sign};
const struct td_deriv td_deriv_floor = {0, 0, vjp_zero, jvp_zero};
const struct td_deriv td_deriv_ceil = {0, 0, vjp_zero, jvp_zero};
const struct td_deriv td_deriv_round = {0, 0, vjp_zero, jvp_zero};
const struct td_deriv td_deriv_trunc = {0, 0, vjp_zero, jvp_zero};

/* g where x > 0, else 0: threshold_backward(g, x) in one pass (ops_nn.c; differentiable in
 * g, its own VJP) when g and x share dtype and shape, else g * (x > 0). */
static struct td_tensor *relu_mask(struct td_gb *b, struct td_tensor *g, struct td_tensor *x)
{
    bool same = g && x && g->dtype == x->dtype && g->ndim == x->ndim;
    for (int d = 0; same && d < g->ndim; d++)
        same = g->shape[d] == x->shape[d];
    if (same) {
        struct td_tensor *in[2] = {g, x};
        return td_gb_op(b, TD_OP_threshold_backward, 2, in, 0, NULL);
    }
    return MUL(g, td_gb_binary(b, TD_OP_gt, x, SC(0)));
}

/* relu: the gradient passes where the output is positive (PyTorch's threshold_backward). */
static void vjp_relu(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = relu_mask(b, v->grad[0], OUT(0));
}

/* x > 0 exactly where relu(x) > 0, so the primal input serves as the mask. */
static void jvp_relu(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = relu_mask(b, j->tangent_in[0], j->primal_in[0]);
}

const struct td_deriv td_deriv_relu = {0, 0x1, vjp_relu, jvp_relu};

/* clamp: the gradient passes where min <= x <= max (either bound may be absent). */
static struct td_tensor *clamp_mask(struct td_gb *b, const struct td_op_ctx *c, struct td_tensor *x)
{
    struct td_tensor *lo = NULL, *hi = NULL;
    if (td_arg_has(c, "min"))
        lo = td_gb_binary(b, TD_OP_ge, x, alpha_of(b, td_arg_scalar(c, "min"), false));
    if (td_arg_has(c, "max"))
        hi = td_gb_binary(b, TD_OP_le, x, alpha_of(b, td_arg_scalar(c, "max"), false));
    if (lo && hi)
        return td_gb_binary(b, TD_OP_logical_and, lo, hi);
    if (!lo && !hi)
        return td_gb_fail(b, TD_EINTERNAL, "clamp: no bound recorded");
    return lo ? lo : hi;
}

static void vjp_clamp(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], clamp_mask(b, v->c, IN(0)));
}

static void jvp_clamp(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = MUL(j->tangent_in[0], clamp_mask(b, j->c, j->primal_in[0]));
}

const struct td_deriv td_deriv_clamp = {0x1, 0, vjp_clamp, jvp_clamp};

/* ---- complex parts ---- */

/* real: L depends on x only, so the gradient is g + 0i (the engine casts g to the input's
 * complex dtype); the tangent is Re t. */
static void vjp_real(struct td_gb *b, struct td_vjp *v)
{
    (void)b;
    if (v->needs[0])
        v->grad_in[0] = v->grad[0];
}

static void jvp_real(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *t = j->tangent_in[0];
    if (t)
        j->tangent_out[0] = td_dtype_is_complex(t->dtype) ? U(real, t) : t;
}

const struct td_deriv td_deriv_real = {0, 0, vjp_real, jvp_real};

/* imag: L depends on y only: dL/dx + i dL/dy = i g. */
static void vjp_imag(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], cscalar(b, 0, 1));
}

static void jvp_imag(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = U(imag, j->tangent_in[0]);
}

const struct td_deriv td_deriv_imag = {0, 0, vjp_imag, jvp_imag};

/* conj: for out = x - iy and a real L, dL/dx + i dL/dy = Re g - i Im g = conj(g). */
static void vjp_conj(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = CONJ(v->grad[0]);
}

static void jvp_conj(struct td_gb *b, struct td_jvp *j)
{
    if (j->tangent_in[0])
        j->tangent_out[0] = CONJ(j->tangent_in[0]);
}

const struct td_deriv td_deriv_conj = {0, 0, vjp_conj, jvp_conj};

/* angle(z) = atan2(y, x): d/dx = -y / |z|^2, d/dy = x / |z|^2, so the gradient is
 * g (-y + ix) / |z|^2 = g i z / |z|^2 and the tangent Im(conj(z) t) / |z|^2; both 0 at z = 0
 * (as PyTorch). A real input's angle is piecewise constant: zero gradient. */
static struct td_tensor *abs2_safe(struct td_gb *b, struct td_tensor *z)
{
    struct td_tensor *a = U(abs, z);
    return nonzero_or_one(b, MUL(a, a));
}

static void vjp_angle(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    if (!td_dtype_is_complex(v->c->in_meta[0].dtype)) {
        v->grad_in[0] = td_gb_zeros_like(b, v->grad[0]);
        return;
    }
    struct td_tensor *z = IN(0);
    v->grad_in[0] = DIV(MUL(MUL(v->grad[0], z), cscalar(b, 0, 1)), abs2_safe(b, z));
}

static void jvp_angle(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *z = j->primal_in[0], *t = j->tangent_in[0];
    if (!t || !td_dtype_is_complex(z->dtype))
        return;
    j->tangent_out[0] = DIV(U(imag, MUL(CONJ(z), t)), abs2_safe(b, z));
}

const struct td_deriv td_deriv_angle = {0x1, 0, vjp_angle, jvp_angle};

/* cast: the engine casts the gradient back to the input's dtype (real part for a real
 * input) and the tangent to the output's dtype, which is all the derivative is. */
static void vjp_cast(struct td_gb *b, struct td_vjp *v)
{
    (void)b;
    if (v->needs[0])
        v->grad_in[0] = v->grad[0];
}

static void jvp_cast(struct td_gb *b, struct td_jvp *j)
{
    (void)b;
    j->tangent_out[0] = j->tangent_in[0];
}

const struct td_deriv td_deriv_cast = {0, 0, vjp_cast, jvp_cast};

/* ---- binary and ternary ops ---- */

/* sub(a, b, alpha): da = g, db = -conj(alpha) g. */
static void vjp_sub(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    const struct td_scalar *al = td_arg_has(v->c, "alpha") ? td_arg_scalar(v->c, "alpha") : NULL;
    if (v->needs[0])
        v->grad_in[0] = g;
    if (v->needs[1])
        v->grad_in[1] = U(neg, al ? MUL(g, alpha_of(b, al, true)) : g);
}

static void jvp_sub(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    const struct td_scalar *al = td_arg_has(j->c, "alpha") ? td_arg_scalar(j->c, "alpha") : NULL;
    if (tb && al)
        tb = MUL(tb, alpha_of(b, al, false));
    j->tangent_out[0] = (ta && tb) ? SUB(ta, tb) : (ta ? ta : (tb ? U(neg, tb) : NULL));
}

const struct td_deriv td_deriv_sub = {0, 0, vjp_sub, jvp_sub};

/* div: da = g / conj(b), db = -g conj(a / b^2). With a rounding_mode the result is
 * piecewise constant: zero gradient. */
static void vjp_div(struct td_gb *b, struct td_vjp *v)
{
    if (td_arg_str(v->c, "rounding_mode")) {
        vjp_zero(b, v);
        return;
    }
    struct td_tensor *g = v->grad[0], *y = IN(1);
    if (v->needs[0])
        v->grad_in[0] = DIV(g, CONJ(y));
    if (v->needs[1])
        v->grad_in[1] = U(neg, MUL(g, CONJ(DIV(DIV(IN(0), y), y))));
}

/* (ta - (a / b) tb) / b */
static void jvp_div(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    if (td_arg_str(j->c, "rounding_mode"))
        return;
    struct td_tensor *num = tb ? MUL(DIV(j->primal_in[0], j->primal_in[1]), tb) : NULL;
    num = (ta && num) ? SUB(ta, num) : (ta ? ta : (num ? U(neg, num) : NULL));
    if (num)
        j->tangent_out[0] = DIV(num, j->primal_in[1]);
}

const struct td_deriv td_deriv_div = {0x3, 0, vjp_div, jvp_div};

/* remainder = a - floor(a / b) b: da = g, db = -g floor(a / b). */
static struct td_tensor *floor_div(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *in[2] = {x, y};
    struct td_attr_arg a = TD_A_STR("rounding_mode", "floor");
    return td_gb_op(b, TD_OP_div, 2, in, 1, &a);
}

static void vjp_remainder(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = g;
    if (v->needs[1])
        v->grad_in[1] = U(neg, MUL(g, floor_div(b, IN(0), IN(1))));
}

static void jvp_remainder(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    struct td_tensor *q = tb ? MUL(tb, floor_div(b, j->primal_in[0], j->primal_in[1])) : NULL;
    j->tangent_out[0] = (ta && q) ? SUB(ta, q) : (ta ? ta : (q ? U(neg, q) : NULL));
}

const struct td_deriv td_deriv_remainder = {0x3, 0, vjp_remainder, jvp_remainder};

/* pow(a, e): d/da = e a^(e-1), 0 where e == 0 (so that 0^-1 never meets a zero factor);
 * d/de = a^e log(a), 0 where a == 0 and e >= 0 (real e, or complex e on the non-negative
 * real axis), as PyTorch. An integer exponent stays integral (exact powers). */
static struct td_tensor *minus_one(struct td_gb *b, struct td_tensor *e)
{
    bool integral = td_dtype_is_integral(e->dtype, true);
    if (e->wrapped_number) {
        /* A Python number: e - 1 in double (or exactly), as a Python number again. */
        const void *p = td_tensor_data(e);
        if (integral)
            return iscalar(b, td__load_i64(p, e->dtype) - 1);
        double complex z = td__load_c128(p, e->dtype);
        if (td_dtype_is_complex(e->dtype))
            return cscalar(b, creal(z) - 1, cimag(z));
        return fscalar(b, creal(z) - 1);
    }
    return SUB(e, integral ? iscalar(b, 1) : SC(1));
}

static struct td_tensor *pow_da(struct td_gb *b, struct td_tensor *a, struct td_tensor *e)
{
    if (!e)
        return NULL;
    struct td_tensor *d = MUL(e, td_gb_binary(b, TD_OP_pow, a, minus_one(b, e)));
    return where3(b, td_gb_binary(b, TD_OP_eq, e, SC(0)), SC(0), d);
}

static struct td_tensor *pow_de(struct td_gb *b, struct td_tensor *a, struct td_tensor *e,
                                struct td_tensor *out)
{
    if (!a || !e || !out)
        return NULL;
    /* log in the result's dtype: an integer or Python-number base would compute it in
     * float32, and a real base of a complex result has a complex log. */
    struct td_tensor *la = td_gb_cast(b, a, out->dtype);
    struct td_tensor *e_nonneg;
    if (td_dtype_is_complex(e->dtype))
        e_nonneg = td_gb_binary(b, TD_OP_logical_and, td_gb_binary(b, TD_OP_eq, U(imag, e), SC(0)),
                                td_gb_binary(b, TD_OP_ge, U(real, e), SC(0)));
    else
        e_nonneg = td_gb_binary(b, TD_OP_ge, e, SC(0));
    struct td_tensor *mask =
        td_gb_binary(b, TD_OP_logical_and, td_gb_binary(b, TD_OP_eq, a, SC(0)), e_nonneg);
    return where3(b, mask, SC(0), MUL(out, U(log, la)));
}

static void vjp_pow(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    if (v->needs[0])
        v->grad_in[0] = MUL(g, CONJ(pow_da(b, IN(0), IN(1))));
    if (v->needs[1])
        v->grad_in[1] = MUL(g, CONJ(pow_de(b, IN(0), IN(1), OUT(0))));
}

static void jvp_pow(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *a = j->primal_in[0], *e = j->primal_in[1];
    struct td_tensor *ta = j->tangent_in[0], *te = j->tangent_in[1];
    struct td_tensor *p = ta ? MUL(ta, pow_da(b, a, e)) : NULL;
    struct td_tensor *q = te ? MUL(te, pow_de(b, a, e, td_gb_binary(b, TD_OP_pow, a, e))) : NULL;
    j->tangent_out[0] = add_opt(b, p, q);
}

const struct td_deriv td_deriv_pow = {0x3, 0x1, vjp_pow, jvp_pow};

/* atan2(a, b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2). */
static struct td_tensor *atan2_den(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    return ADD(MUL(x, x), MUL(y, y));
}

static void vjp_atan2(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *x = IN(0), *y = IN(1);
    struct td_tensor *q = DIV(v->grad[0], atan2_den(b, x, y));
    if (v->needs[0])
        v->grad_in[0] = MUL(q, y);
    if (v->needs[1])
        v->grad_in[1] = U(neg, MUL(q, x));
}

static void jvp_atan2(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *x = j->primal_in[0], *y = j->primal_in[1];
    struct td_tensor *tx = j->tangent_in[0], *ty = j->tangent_in[1];
    struct td_tensor *p = tx ? MUL(tx, y) : NULL, *q = ty ? MUL(ty, x) : NULL;
    struct td_tensor *num = (p && q) ? SUB(p, q) : (p ? p : (q ? U(neg, q) : NULL));
    if (num)
        j->tangent_out[0] = DIV(num, atan2_den(b, x, y));
}

const struct td_deriv td_deriv_atan2 = {0x3, 0, vjp_atan2, jvp_atan2};

/* maximum / minimum: the gradient goes to the selected operand; ties split it half and half
 * (PyTorch). wa, wb are the weights (0, 0.5 or 1) of a and b; `loses` is the comparison under
 * which a loses (lt for maximum, gt for minimum). */
static void minmax_weights(struct td_gb *b, enum td_op loses, struct td_tensor *x,
                           struct td_tensor *y, struct td_tensor **wa, struct td_tensor **wb)
{
    struct td_tensor *tie = td_gb_binary(b, TD_OP_eq, x, y);
    struct td_tensor *half_or_one = where3(b, tie, SC(0.5), SC(1));
    *wa = where3(b, td_gb_binary(b, loses, x, y), SC(0), half_or_one);
    *wb = where3(b, td_gb_binary(b, loses, y, x), SC(0), half_or_one);
}

static void vjp_minmax(struct td_gb *b, struct td_vjp *v, enum td_op loses)
{
    struct td_tensor *wa = NULL, *wb = NULL;
    minmax_weights(b, loses, IN(0), IN(1), &wa, &wb);
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], wa);
    if (v->needs[1])
        v->grad_in[1] = MUL(v->grad[0], wb);
}

static void jvp_minmax(struct td_gb *b, struct td_jvp *j, enum td_op loses)
{
    struct td_tensor *wa = NULL, *wb = NULL;
    struct td_tensor *ta = j->tangent_in[0], *tb = j->tangent_in[1];
    minmax_weights(b, loses, j->primal_in[0], j->primal_in[1], &wa, &wb);
    j->tangent_out[0] = add_opt(b, ta ? MUL(ta, wa) : NULL, tb ? MUL(tb, wb) : NULL);
}

static void vjp_maximum(struct td_gb *b, struct td_vjp *v)
{
    vjp_minmax(b, v, TD_OP_lt);
}

static void jvp_maximum(struct td_gb *b, struct td_jvp *j)
{
    jvp_minmax(b, j, TD_OP_lt);
}

static void vjp_minimum(struct td_gb *b, struct td_vjp *v)
{
    vjp_minmax(b, v, TD_OP_gt);
}

static void jvp_minimum(struct td_gb *b, struct td_jvp *j)
{
    jvp_minmax(b, j, TD_OP_gt);
}

const struct td_deriv td_deriv_maximum = {0x3, 0, vjp_maximum, jvp_maximum};
const struct td_deriv td_deriv_minimum = {0x3, 0, vjp_minimum, jvp_minimum};

/* where(cond, a, b): the gradient goes to a where cond holds and to b elsewhere; cond has
 * none. */
static void vjp_where(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *g = v->grad[0];
    if (!v->needs[1] && !v->needs[2])
        return;
    struct td_tensor *c = IN(0);
    if (v->needs[1])
        v->grad_in[1] = where3(b, c, g, SC(0));
    if (v->needs[2])
        v->grad_in[2] = where3(b, c, SC(0), g);
}

static void jvp_where(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *ta = j->tangent_in[1], *tb = j->tangent_in[2];
    if (!ta && !tb)
        return;
    j->tangent_out[0] = where3(b, j->primal_in[0], ta ? ta : SC(0), tb ? tb : SC(0));
}

const struct td_deriv td_deriv_where = {0x1, 0, vjp_where, jvp_where};
