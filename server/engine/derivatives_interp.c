/*
 * derivatives_interp.c - VJPs and JVPs of the interpolation ops (ops.def section
 * "interpolation", kernels in ops_interp.c).
 *
 * Every op here is linear in its one input, and each forward op and its *_backward op are
 * adjoints of each other (ops_interp.c applies the same per-axis tables, transposed). So the
 * VJP of a forward op is its backward op with input_size = the input's spatial shape, the VJP
 * of a backward op is the forward op with size = the cotangent's spatial shape, and every JVP
 * is the op itself applied to the tangent. Nothing is saved; second order works because the
 * VJPs are themselves differentiable ops.
 */
#include <string.h>

#include "td_derivatives.h"

/* Runs op on x with the attributes of the recorded op c, except `drop`, plus the ints
 * attribute `add` = the last n dims of c's input, where n is the length of `drop`. */
static struct td_tensor *adjoint_op(struct td_gb *b, const struct td_op_ctx *c, enum td_op op,
                                    struct td_tensor *x, const char *drop, const char *add)
{
    struct td_attr_arg a[TD_MAX_ATTRS + 1];
    int na = 0, nsp = 0;
    for (int k = 0; k < c->info->nattrs; k++) {
        if (!c->attrs[k].present)
            continue;
        if (strcmp(c->info->attrs[k].name, drop) == 0) {
            nsp = c->attrs[k].nints;
            continue;
        }
        a[na].name = c->info->attrs[k].name;
        a[na].value = c->attrs[k];
        na++;
    }
    const struct td_meta *m = &c->in_meta[0];
    if (nsp < 1 || nsp > m->ndim)
        return td_gb_fail(b, TD_EINTERNAL, "%s: derivative without a valid %s",
                          c->info->name, drop);
    a[na++] = td_a_ints(add, nsp, m->shape + (m->ndim - nsp));
    return td_gb_op(b, op, 1, &x, na, a);
}

static void vjp_adjoint(struct td_gb *b, struct td_vjp *v, enum td_op op, const char *drop,
                        const char *add)
{
    if (!v->needs[0])
        return;
    v->grad_in[0] = adjoint_op(b, v->c, op, v->grad[0], drop, add);
}

/* Linear ops: the tangent goes through the op itself, with the recorded attributes. */
static void jvp_self(struct td_gb *b, struct td_jvp *j)
{
    j->tangent_out[0] = same_op(b, j->c, 1, j->tangent_in);
}

#define DEF_PAIR(fwd, size_name)                                                              \
    static void vjp_##fwd(struct td_gb *b, struct td_vjp *v)                                  \
    {                                                                                         \
        vjp_adjoint(b, v, TD_OP_##fwd##_backward, size_name, "input_size");                   \
    }                                                                                         \
    static void vjp_##fwd##_backward(struct td_gb *b, struct td_vjp *v)                       \
    {                                                                                         \
        vjp_adjoint(b, v, TD_OP_##fwd, "input_size", size_name);                              \
    }                                                                                         \
    const struct td_deriv td_deriv_##fwd = {0, 0, vjp_##fwd, jvp_self};                       \
    const struct td_deriv td_deriv_##fwd##_backward = {0, 0, vjp_##fwd##_backward, jvp_self};

DEF_PAIR(upsample_nearest, "size")
DEF_PAIR(upsample_linear, "size")
DEF_PAIR(upsample_bicubic, "size")
DEF_PAIR(adaptive_avg_pool, "output_size")
