/*
 * ops_autograd.c - ops that read or change autograd state: detach, alias, requires_grad_,
 * grad, set_grad, backward, the forward-mode dual ops and copy_ (the one in-place write).
 * The machinery itself is autograd.c.
 */
#include <stdatomic.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

static int need_session(const struct td_op_ctx *c, struct td_error *err)
{
    if (!c->ag)
        return td_error_set(err, TD_EPRECOND, "%s: needs a session's autograd state",
                            c->info->name);
    return 0;
}

/* A new tensor object on t's data, without autograd fields. */
static int alias_of(struct td_tensor *t, struct td_tensor **out, struct td_error *err)
{
    int rc = td_tensor_new_view(t, t->ndim, t->shape, t->strides, t->offset, out, err);
    if (!rc)
        (*out)->dtype = t->dtype;
    return rc;
}

static int meta_same(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)err;
    out[0] = c->in_meta[0];
    out[0].wrapped_number = false;
    return 0;
}

static int meta_none(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)c;
    (void)out;
    (void)err;
    return 0;
}

/* ---- detach / alias ---- */
int meta_detach(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_same(c, out, err);
}

int cpu_detach(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *t = NULL;
    int rc = alias_of(c->inputs[0], &t, err);
    if (rc)
        return rc;
    struct td_tensor *tan = td_ag_tangent(c->ag, c->inputs[0]);
    if (tan) {
        rc = td__ag_meta_ensure(t, err);
        if (rc) {
            td_tensor_release(t);
            return rc;
        }
        t->ag->tangent = td_tensor_retain(tan);
        t->ag->tangent_level = c->ag->fw_level;
    }
    out[0] = t;
    return 0;
}

int meta_alias(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_same(c, out, err);
}

int cpu_alias(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return alias_of(c->inputs[0], &out[0], err);
}

static void vjp_identity(struct td_gb *b, struct td_vjp *v)
{
    (void)b;
    v->grad_in[0] = v->grad[0];
}

static void jvp_identity(struct td_gb *b, struct td_jvp *j)
{
    (void)b;
    j->tangent_out[0] = j->tangent_in[0];
}

const struct td_deriv td_deriv_alias = {0, 0, vjp_identity, jvp_identity};
/* make_dual and dual_primal pass reverse-mode gradients to the primal; autograd.c gives
 * them no forward-mode propagation (their kernels set the tangent themselves). */
const struct td_deriv td_deriv_make_dual = {0, 0, vjp_identity, jvp_identity};
const struct td_deriv td_deriv_dual_primal = {0, 0, vjp_identity, jvp_identity};

/* ---- requires_grad_ ---- */
int meta_requires_grad_(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    if (td_arg_bool(c, "requires_grad") && !td_dtype_is_floating(c->in_meta[0].dtype) &&
        !td_dtype_is_complex(c->in_meta[0].dtype))
        return td_error_set(err, TD_EINVAL,
                            "requires_grad_: only tensors of floating point and complex dtype "
                            "can require gradients (got %s)",
                            td_dtype_name(c->in_meta[0].dtype));
    return meta_none(c, out, err);
}

int cpu_requires_grad_(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *x = c->inputs[0];
    bool want = td_arg_bool(c, "requires_grad");
    (void)out;
    if (!td_ag_is_leaf(x)) {
        if (want)
            return 0;
        return td_error_set(err, TD_EINVAL,
                            "requires_grad_: you can only change requires_grad flags of leaf "
                            "tensors (this one is the output of %s); use detach()",
                            td_ag_grad_fn_name(x));
    }
    if (!want && !x->ag)
        return 0;
    int rc = td__ag_meta_ensure(x, err);
    if (rc)
        return rc;
    x->ag->requires_grad = want;
    return 0;
}

/* ---- grad / set_grad ---- */
int meta_grad(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_same(c, out, err);
}

int cpu_grad(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    struct td_tensor *x = c->inputs[0];
    out[0] = (x->ag && x->ag->grad) ? td_tensor_retain(x->ag->grad) : NULL;
    return 0;
}

int meta_set_grad(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    if (c->ninputs == 2 && !td__meta_equal(&c->in_meta[0], &c->in_meta[1])) {
        char b1[96], b2[96];
        return td_error_set(err, TD_EINVAL,
                            "set_grad: assigned grad %s%s does not match the tensor's %s%s",
                            td_dtype_name(c->in_meta[1].dtype),
                            td__shape_str(c->in_meta[1].shape, c->in_meta[1].ndim, b1, sizeof b1),
                            td_dtype_name(c->in_meta[0].dtype),
                            td__shape_str(c->in_meta[0].shape, c->in_meta[0].ndim, b2,
                                          sizeof b2));
    }
    return meta_none(c, out, err);
}

int cpu_set_grad(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *x = c->inputs[0];
    (void)out;
    if (c->ninputs == 1) {
        if (x->ag) {
            td_tensor_release(x->ag->grad);
            x->ag->grad = NULL;
        }
        return 0;
    }
    if (c->inputs[1] == x)
        return td_error_set(err, TD_EINVAL, "set_grad: a tensor cannot be its own grad");
    int rc = td__ag_meta_ensure(x, err);
    if (rc)
        return rc;
    struct td_tensor *old = x->ag->grad;
    x->ag->grad = td_tensor_retain(c->inputs[1]);
    td_tensor_release(old);
    return 0;
}

/* ---- backward ---- */
static int backward_counts(const struct td_op_ctx *c, int *nroots, int *ngrad, int *nin,
                           struct td_error *err)
{
    int64_t r = td_arg_int(c, "nroots"), g = td_arg_int(c, "ngrad");
    if (r < 1 || r > c->ninputs)
        return td_error_set(err, TD_EINVAL, "backward: nroots %lld out of range for %d inputs",
                            (long long)r, c->ninputs);
    if (g != 0 && g != r)
        return td_error_set(err, TD_EINVAL, "backward: ngrad must be 0 or nroots (%lld), got "
                            "%lld", (long long)r, (long long)g);
    if (r + g > c->ninputs)
        return td_error_set(err, TD_EINVAL, "backward: %lld roots and %lld grad_outputs need "
                            "more than the %d inputs given",
                            (long long)r, (long long)g, c->ninputs);
    *nroots = (int)r;
    *ngrad = (int)g;
    *nin = c->ninputs - (int)(r + g);
    return 0;
}

int meta_backward(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int nr = 0, ng = 0, ni = 0;
    int rc = backward_counts(c, &nr, &ng, &ni, err);
    if (rc)
        return rc;
    if (c->noutputs != ni)
        return td_error_set(err, TD_EINVAL, "backward: %d tensors to differentiate need %d "
                            "outputs, the node has %d",
                            ni, ni, c->noutputs);
    for (int r = 0; r < ng; r++) {
        const struct td_meta *root = &c->in_meta[r], *go = &c->in_meta[nr + r];
        if (root->ndim != go->ndim ||
            memcmp(root->shape, go->shape, sizeof(int64_t) * (size_t)root->ndim)) {
            char b1[96], b2[96];
            return td_error_set(err, TD_EINVAL,
                                "backward: mismatch in shape: grad_output[%d] has a shape of %s "
                                "and output[%d] has a shape of %s",
                                r, td__shape_str(go->shape, go->ndim, b1, sizeof b1), r,
                                td__shape_str(root->shape, root->ndim, b2, sizeof b2));
        }
    }
    for (int i = 0; i < ni; i++) {
        out[i] = c->in_meta[nr + ng + i];
        out[i].wrapped_number = false;
    }
    return 0;
}

int cpu_backward(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int nr = 0, ng = 0, ni = 0;
    int rc = need_session(c, err);
    if (!rc)
        rc = backward_counts(c, &nr, &ng, &ni, err);
    if (rc)
        return rc;
    return td_ag_backward(c->ag, nr, c->inputs, ng ? c->inputs + nr : NULL, ni,
                          ni ? c->inputs + nr + ng : NULL, td_arg_bool(c, "retain_graph"),
                          td_arg_bool(c, "create_graph"), td_arg_bool(c, "allow_unused"), out,
                          err);
}

/* ---- dual levels ---- */
int meta_enter_dual_level(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_none(c, out, err);
}

int cpu_enter_dual_level(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)out;
    int rc = need_session(c, err);
    return rc ? rc : td_ag_enter_dual_level(c->ag, err);
}

int meta_exit_dual_level(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_none(c, out, err);
}

int cpu_exit_dual_level(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)out;
    int rc = need_session(c, err);
    return rc ? rc : td_ag_exit_dual_level(c->ag, err);
}

int meta_make_dual(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    if (!td__meta_equal(&c->in_meta[0], &c->in_meta[1])) {
        char b1[96], b2[96];
        return td_error_set(err, TD_EINVAL,
                            "make_dual: the tangent (%s%s) must have the primal's dtype and "
                            "shape (%s%s)",
                            td_dtype_name(c->in_meta[1].dtype),
                            td__shape_str(c->in_meta[1].shape, c->in_meta[1].ndim, b1, sizeof b1),
                            td_dtype_name(c->in_meta[0].dtype),
                            td__shape_str(c->in_meta[0].shape, c->in_meta[0].ndim, b2,
                                          sizeof b2));
    }
    return meta_same(c, out, err);
}

int cpu_make_dual(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int rc = need_session(c, err);
    if (rc)
        return rc;
    if (!c->ag->fw_level)
        return td_error_set(err, TD_EPRECOND,
                            "make_dual: no dual level is active (enter one with dual_level)");
    struct td_tensor *t = NULL;
    rc = alias_of(c->inputs[0], &t, err);
    if (!rc)
        rc = td__ag_meta_ensure(t, err);
    if (rc) {
        td_tensor_release(t);
        return rc;
    }
    t->ag->tangent = td_tensor_retain(c->inputs[1]);
    t->ag->tangent_level = c->ag->fw_level;
    out[0] = t;
    return 0;
}

int meta_dual_primal(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_same(c, out, err);
}

int cpu_dual_primal(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return alias_of(c->inputs[0], &out[0], err);
}

int meta_dual_tangent(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_same(c, out, err);
}

int cpu_dual_tangent(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    struct td_tensor *t = td_ag_tangent(c->ag, c->inputs[0]);
    out[0] = t ? td_tensor_retain(t) : NULL;
    return 0;
}

/* ---- copy_ ---- */
int meta_copy_(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *ms[2] = {&c->in_meta[0], &c->in_meta[1]};
    int64_t shape[TD_MAX_NDIM];
    int nd;
    int rc = td_broadcast_shapes("copy_", 2, ms, &nd, shape, err);
    if (rc)
        return rc;
    if (nd != ms[0]->ndim || memcmp(shape, ms[0]->shape, sizeof(int64_t) * (size_t)nd)) {
        char b1[96], b2[96];
        return td_error_set(err, TD_EINVAL, "copy_: source shape %s does not broadcast to the "
                            "destination's %s",
                            td__shape_str(ms[1]->shape, ms[1]->ndim, b1, sizeof b1),
                            td__shape_str(ms[0]->shape, ms[0]->ndim, b2, sizeof b2));
    }
    return meta_none(c, out, err);
}

int cpu_copy_(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *dst = c->inputs[0], *src = c->inputs[1], *tmp = NULL;
    int rc;
    (void)out;
    if (c->grad_mode && (td_ag_requires_grad(dst) || td_ag_requires_grad(src))) {
        if (td_ag_requires_grad(dst) && td_ag_is_leaf(dst))
            return td_error_set(err, TD_EINVAL,
                                "copy_: a leaf tensor that requires grad is being used in an "
                                "in-place operation (wrap it in no_grad)");
        return td_error_set(err, TD_EUNIMPL,
                            "copy_: in-place writes that autograd would have to record are not "
                            "supported; use the out-of-place op, or no_grad");
    }
    if (c->ag && td_ag_tangent(c->ag, src))
        return td_error_set(err, TD_EUNIMPL,
                            "copy_: in-place writes of dual tensors are not supported");
    /* Overlapping storage (x.copy_(x.flip(0))): read from a private copy. */
    if (src->storage == dst->storage) {
        struct td_meta m;
        td_tensor_meta(src, &m);
        m.wrapped_number = false;
        rc = td_tensor_new(&m, false, c->account, &tmp, err);
        if (rc)
            return rc;
        rc = td_tensor_copy(tmp, src, err);
        if (rc)
            goto out;
        src = tmp;
    }
    rc = td_tensor_copy(dst, src, err);
    if (!rc)
        atomic_fetch_add(&dst->storage->version, 1);
out:
    td_tensor_release(tmp);
    return rc;
}
