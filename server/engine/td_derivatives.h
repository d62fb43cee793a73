/*
 * td_derivatives.h - helpers shared by the derivative formulas of derivatives_reduce.c and
 * derivatives_shape.c: the saved-input shorthand, replaying the recorded op on other tensors
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

/* unsqueeze(x, dim). */
static inline struct td_tensor *unsqueeze(struct td_gb *b, struct td_tensor *x, int64_t dim)
{
    struct td_attr_arg a = TD_A_INT("dim", dim);
    return td_gb_op(b, TD_OP_unsqueeze, 1, &x, 1, &a);
}

#endif
