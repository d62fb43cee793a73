/*
 * derivatives_sort.c - VJPs and JVPs of the differentiable ops of ops_sort.c (sort,
 * copysign, hypot, logaddexp). Every formula is written with td_gb_* ops, so with
 * create_graph the gradient is differentiable again. Formulas follow PyTorch's
 * tools/autograd/derivatives.yaml:
 *   sort: values = gather(x, dim, indices), so the VJP scatters the values' cotangent back
 *     through indices (a permutation along dim: no collisions) and the JVP gathers the
 *     tangent; the indices are integers and carry no derivative;
 *   copysign(a, b): d/da = copysign(a, b) / a with 0 where a == 0, d/db = 0;
 *   hypot(a, b): d/da = a / h, d/db = b / h with h = hypot(a, b);
 *   logaddexp(a, b): d/da = sigmoid(a - b), d/db = sigmoid(b - a) (the softmax weights of
 *     the two arguments, computed without overflow).
 */
#include "td_derivatives.h"


/* t * w, or NULL (a zero tangent) when t is NULL: integer inputs of the promoting binary
 * ops have no tangent. */
static struct td_tensor *tmul(struct td_gb *b, struct td_tensor *t, struct td_tensor *w)
{
    return t ? MUL(t, w) : NULL;
}

/* x + y where NULL stands for zero. */
static struct td_tensor *tadd(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    return !x ? y : !y ? x : ADD(x, y);
}

/* ---- sort ---- */
static int64_t sort_dim(const struct td_op_ctx *c)
{
    int d = 0;
    struct td_error err;
    const struct td_meta *x = &c->in_meta[0];
    /* The forward's meta function accepted this dim, so normalising cannot fail here. */
    if (x->ndim > 0 && td__norm_dim("sort", td_arg_int(c, "dim"), x->ndim, &d, &err))
        d = 0;
    return d;
}

static void vjp_sort(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    struct td_tensor *in[3] = {td_gb_zeros(b, &v->c->in_meta[0]), td_gb_saved_output(b, 1),
                               v->grad[0]};
    struct td_attr_arg a = TD_A_INT("dim", sort_dim(v->c));
    v->grad_in[0] = td_gb_op(b, TD_OP_scatter, 3, in, 1, &a);
}

static void jvp_sort(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *in[2] = {j->tangent_in[0], j->primal_out[1]};
    struct td_attr_arg a = TD_A_INT("dim", sort_dim(j->c));
    j->tangent_out[0] = td_gb_op(b, TD_OP_gather, 2, in, 1, &a);
}

const struct td_deriv td_deriv_sort = {0, 0x2, vjp_sort, jvp_sort};

/* ---- copysign ---- */
/* copysign(a, b) / a, 0 where a == 0. */
static struct td_tensor *copysign_da(struct td_gb *b, struct td_tensor *x, struct td_tensor *y)
{
    struct td_tensor *r = DIV(td_gb_binary(b, TD_OP_copysign, x, y), x);
    struct td_tensor *z = td_gb_binary(b, TD_OP_eq, x, td_gb_scalar(b, 0.0));
    return where3(b, z, td_gb_scalar(b, 0.0), r);
}

static void vjp_copysign(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], copysign_da(b, IN(0), IN(1)));
    /* d/db is 0 almost everywhere: grad_in[1] stays NULL (a zero gradient). */
}

static void jvp_copysign(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] =
        tmul(b, j->tangent_in[0], copysign_da(b, j->primal_in[0], j->primal_in[1]));
}

const struct td_deriv td_deriv_copysign = {0x3, 0, vjp_copysign, jvp_copysign};

/* ---- hypot ---- */
static void vjp_hypot(struct td_gb *b, struct td_vjp *v)
{
    struct td_tensor *h = td_gb_binary(b, TD_OP_hypot, IN(0), IN(1));
    struct td_tensor *gh = DIV(v->grad[0], h);
    if (v->needs[0])
        v->grad_in[0] = MUL(gh, IN(0));
    if (v->needs[1])
        v->grad_in[1] = MUL(gh, IN(1));
}

static void jvp_hypot(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *x = j->primal_in[0], *y = j->primal_in[1];
    struct td_tensor *h = td_gb_binary(b, TD_OP_hypot, x, y);
    struct td_tensor *num = tadd(b, tmul(b, j->tangent_in[0], x), tmul(b, j->tangent_in[1], y));
    j->tangent_out[0] = num ? DIV(num, h) : NULL;
}

const struct td_deriv td_deriv_hypot = {0x3, 0, vjp_hypot, jvp_hypot};

/* ---- logaddexp ---- */
static void vjp_logaddexp(struct td_gb *b, struct td_vjp *v)
{
    if (v->needs[0])
        v->grad_in[0] = MUL(v->grad[0], td_gb_unary(b, TD_OP_sigmoid, SUB(IN(0), IN(1))));
    if (v->needs[1])
        v->grad_in[1] = MUL(v->grad[0], td_gb_unary(b, TD_OP_sigmoid, SUB(IN(1), IN(0))));
}

static void jvp_logaddexp(struct td_gb *b, struct td_jvp *j)
{
    struct td_tensor *x = j->primal_in[0], *y = j->primal_in[1];
    struct td_tensor *wa = td_gb_unary(b, TD_OP_sigmoid, SUB(x, y));
    struct td_tensor *wb = td_gb_unary(b, TD_OP_sigmoid, SUB(y, x));
    j->tangent_out[0] = tadd(b, tmul(b, j->tangent_in[0], wa), tmul(b, j->tangent_in[1], wb));
}

const struct td_deriv td_deriv_logaddexp = {0x3, 0, vjp_logaddexp, jvp_logaddexp};
