/*
 * derivatives_reduce.c - VJPs and JVPs of reductions, scans and matmul.
 * Conventions as in derivatives_elementwise.c.
 */
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

/* The dims a reduction reduced (normalised, ascending) and whether it kept them. */
static int reduced_dims(const struct td_op_ctx *c, int64_t *dims, bool *keepdim)
{
    int nd = c->in_meta[0].ndim, n = 0;
    int nlist = 0;
    const int64_t *list = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &nlist) : NULL;
    *keepdim = td_arg_bool(c, "keepdim");
    if (!list) {
        for (int d = 0; d < nd; d++)
            dims[n++] = d;
        return n;
    }
    bool mark[TD_MAX_NDIM] = {0};
    for (int k = 0; k < nlist; k++) {
        int64_t d = list[k] < 0 ? list[k] + nd : list[k];
        if (nd == 0 && (list[k] == 0 || list[k] == -1))
            continue;
        if (d >= 0 && d < nd)
            mark[d] = true;
    }
    for (int d = 0; d < nd; d++)
        if (mark[d])
            dims[n++] = d;
    return n;
}

/* g reshaped so that it broadcasts against the reduction's input (the reduced dims
 * re-inserted with size 1). */
struct td_tensor *td__grad_unreduce(struct td_gb *b, const struct td_op_ctx *c,
                                    struct td_tensor *g);
struct td_tensor *td__grad_unreduce(struct td_gb *b, const struct td_op_ctx *c,
                                    struct td_tensor *g)
{
    int64_t dims[TD_MAX_NDIM], shape[TD_MAX_NDIM];
    bool keep;
    int n = reduced_dims(c, dims, &keep);
    const struct td_meta *m = &c->in_meta[0];
    if (keep || !g)
        return g;
    memcpy(shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
    for (int k = 0; k < n; k++)
        shape[dims[k]] = 1;
    return td_gb_reshape(b, g, m->ndim, shape);
}

/* sum: the gradient broadcasts back over the reduced dims. */
static void vjp_sum(struct td_gb *b, struct td_vjp *v)
{
    if (!v->needs[0])
        return;
    const struct td_meta *m = &v->c->in_meta[0];
    struct td_tensor *g = td__grad_unreduce(b, v->c, v->grad[0]);
    v->grad_in[0] = td_gb_expand(b, g, m->ndim, m->shape);
}

/* sum is linear: the tangent is summed the same way. */
static void jvp_sum(struct td_gb *b, struct td_jvp *j)
{
    struct td_attr_arg a[3];
    int na = 0;
    int nd = 0;
    const int64_t *dims = td_arg_has(j->c, "dim") ? td_arg_ints(j->c, "dim", &nd) : NULL;
    if (dims)
        a[na++] = td_a_ints("dim", nd, dims);
    a[na++] = TD_A_BOOL("keepdim", td_arg_bool(j->c, "keepdim"));
    if (td_arg_has(j->c, "dtype"))
        a[na++] = TD_A_DTYPE("dtype", td_arg_dtype(j->c, "dtype"));
    j->tangent_out[0] = td_gb_op(b, TD_OP_sum, 1, &j->tangent_in[0], na, a);
}

const struct td_deriv td_deriv_sum = {0, 0, vjp_sum, jvp_sum};
