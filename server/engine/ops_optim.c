/*
 * ops_optim.c - optimizer steps (ops.def section "optimizer steps"): sgd_step and
 * adam_step update parameters and their state tensors in place from each parameter's .grad,
 * with exactly the update rules of torch.optim.SGD and torch.optim.Adam/AdamW (the
 * single-tensor, non-capturable implementations in torch/optim/sgd.py and adam.py).
 *
 * A parameter without a .grad is skipped, its state untouched, as in PyTorch. Every tensor
 * written gets its storage version bumped, so autograd notices that a saved tensor changed.
 * Everything is validated (counts, shapes, dtypes, every .grad) before the first write, so a
 * failed step changes nothing. float32 and float64 tensors are updated where they lie when
 * contiguous; others (views, half precision) go through a float32/float64 scratch copy that
 * is written back.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "td_autograd.h"
#include "td_internal.h"

/* Checks that inputs [first, first + n) have the shape and dtype of the params [0, n). */
static int check_state(const struct td_op_ctx *c, int first, int n, const char *what,
                       struct td_error *err)
{
    char b1[96], b2[96];
    for (int i = 0; i < n; i++) {
        const struct td_meta *p = &c->in_meta[i], *s = &c->in_meta[first + i];
        if (!td__meta_equal(p, s))
            return td_error_set(err, TD_EINVAL, "%s: %s %d is %s %s, its parameter is %s %s",
                                c->info->name, what, i, td_dtype_name(s->dtype),
                                td__shape_str(s->shape, s->ndim, b1, sizeof b1),
                                td_dtype_name(p->dtype),
                                td__shape_str(p->shape, p->ndim, b2, sizeof b2));
    }
    return 0;
}

static int check_params(const struct td_op_ctx *c, int64_t nparams, int groups,
                        struct td_error *err)
{
    if (nparams < 1 || nparams * groups != c->ninputs)
        return td_error_set(err, TD_EINVAL, "%s: %d inputs given; expected %d per parameter "
                            "for nparams %lld",
                            c->info->name, c->ninputs, groups, (long long)nparams);
    for (int i = 0; i < nparams; i++)
        if (!td_dtype_is_floating(c->in_meta[i].dtype))
            return td_error_set(err, TD_EINVAL, "%s: parameter %d has dtype %s (floating "
                                "point only)",
                                c->info->name, i, td_dtype_name(c->in_meta[i].dtype));
    return 0;
}

/* A float attribute's allowed range [lo, hi]. */
struct range {
    const char *name;
    double lo, hi;
};

/* Checks every float attribute r[0..n) is within its range (NaN never is). */
static int check_ranges(const struct td_op_ctx *c, const struct range *r, int n,
                        struct td_error *err)
{
    for (int k = 0; k < n; k++) {
        double v = td_arg_float(c, r[k].name);
        if (!(v >= r[k].lo && v <= r[k].hi))
            return td_error_set(err, TD_EINVAL, "%s: %s %g out of range [%g, %g]",
                                c->info->name, r[k].name, v, r[k].lo, r[k].hi);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Working copies: a contiguous float32/float64 view of a tensor to update, written back by
 * work_finish when it is a scratch copy.
 */
struct work {
    struct td_tensor *orig;   /* borrowed */
    struct td_tensor *t;      /* owned: orig retained, or a scratch copy */
};

static enum td_dtype work_dtype(enum td_dtype dt)
{
    return dt == TD_FLOAT64 ? TD_FLOAT64 : TD_FLOAT32;
}

/* A new contiguous tensor of t's shape and dtype dt in *out, holding t's values when
 * copy_in. Returns: 0, or a status with *out NULL. */
static int scratch_new(const struct td_op_ctx *c, const struct td_tensor *t, enum td_dtype dt,
                       bool copy_in, struct td_tensor **out, struct td_error *err)
{
    struct td_meta m;
    td_tensor_meta(t, &m);
    m.dtype = dt;
    m.wrapped_number = false;
    *out = NULL;
    int rc = td_tensor_new(&m, false, c->account, out, err);
    if (!rc && copy_in)
        rc = td_tensor_copy(*out, t, err);
    if (rc) {
        td_tensor_release(*out);
        *out = NULL;
    }
    return rc;
}

static int work_begin(const struct td_op_ctx *c, struct td_tensor *t, bool copy_in,
                      struct work *w, struct td_error *err)
{
    w->orig = t;
    w->t = NULL;
    enum td_dtype dt = work_dtype(t->dtype);
    if (t->dtype == dt && td_tensor_is_contiguous(t)) {
        w->t = td_tensor_retain(t);
        return 0;
    }
    return scratch_new(c, t, dt, copy_in, &w->t, err);
}

/* Writes a scratch copy back (when write) and bumps the version of what was written. */
static int work_finish(struct work *w, bool write, struct td_error *err)
{
    int rc = 0;
    if (!w->t)
        return 0;
    if (write && w->t != w->orig)
        rc = td_tensor_copy(w->orig, w->t, err);
    if (write && !rc)
        atomic_fetch_add(&w->orig->storage->version, 1);
    td_tensor_release(w->t);
    w->t = NULL;
    return rc;
}

/* Ends the works w[0..n) of a step: written back when *rc is 0 (the first failure goes to
 * *rc), dropped unwritten after a failure. */
static void works_end(struct work *w, int n, int *rc, struct td_error *err)
{
    for (int k = 0; k < n; k++) {
        if (!*rc)
            *rc = work_finish(&w[k], true, err);
        else
            work_finish(&w[k], false, err);
    }
}

/* The .grad of parameter i as a contiguous tensor of the working dtype; NULL (and 0) when
 * the parameter has none. */
static int grad_of(const struct td_op_ctx *c, int i, struct td_tensor **out,
                   struct td_error *err)
{
    struct td_tensor *p = c->inputs[i];
    struct td_tensor *g = p->ag ? p->ag->grad : NULL;
    *out = NULL;
    if (!g)
        return 0;
    if (g->ndim != p->ndim || memcmp(g->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim))
        return td_error_set(err, TD_EINVAL, "%s: the .grad of parameter %d has another shape",
                            c->info->name, i);
    enum td_dtype dt = work_dtype(p->dtype);
    if (g->dtype == dt)
        return td_tensor_contiguous(g, c->account, out, err);
    return scratch_new(c, g, dt, true, out, err);
}

/* Validates the .grad of every parameter before a step writes anything. */
static int check_grads(const struct td_op_ctx *c, int np, struct td_error *err)
{
    int rc = 0;
    for (int i = 0; i < np && !rc; i++) {
        struct td_tensor *g = NULL;
        rc = grad_of(c, i, &g, err);
        td_tensor_release(g);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * sgd_step.
 */
int meta_sgd_step(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)out;
    static const struct range ranges[] = {{"lr", 0, INFINITY},
                                          {"momentum", 0, INFINITY},
                                          {"weight_decay", 0, INFINITY},
                                          {"dampening", -INFINITY, INFINITY}};
    int64_t np = td_arg_int(c, "nparams");
    double mom = td_arg_float(c, "momentum");
    int rc = check_ranges(c, ranges, (int)(sizeof ranges / sizeof ranges[0]), err);
    if (!rc)
        rc = check_params(c, np, mom != 0 ? 2 : 1, err);
    if (!rc && mom != 0)
        rc = check_state(c, (int)np, (int)np, "momentum buffer", err);
    if (rc)
        return rc;
    if (td_arg_bool(c, "nesterov") && (mom <= 0 || td_arg_float(c, "dampening") != 0))
        return td_error_set(err, TD_EINVAL, "sgd_step: nesterov momentum requires a momentum "
                            "and zero dampening");
    return 0;
}

struct sgd_job {
    double *pd, *bd;
    const double *gd;
    float *pf, *bf;
    const float *gf;
    double lr, mom, damp, wd;
    bool nesterov, maximize, first;
};

#define DEF_SGD(T, P, B, G)                                                                   \
    static void sgd_##T(int64_t b, int64_t e, void *ctx)                                      \
    {                                                                                         \
        const struct sgd_job *j = ctx;                                                        \
        T *p = j->P, *buf = j->B;                                                             \
        const T *gr = j->G;                                                                   \
        T lr = (T)j->lr, mom = (T)j->mom, damp1 = (T)(1 - j->damp), wd = (T)j->wd;            \
        for (int64_t k = b; k < e; k++) {                                                     \
            T g = j->maximize ? -gr[k] : gr[k];                                               \
            if (j->wd != 0)                                                                   \
                g = g + wd * p[k];                                                            \
            if (j->mom != 0) {                                                                \
                T v = j->first ? g : buf[k] * mom + damp1 * g;                                \
                buf[k] = v;                                                                   \
                g = j->nesterov ? g + mom * v : v;                                            \
            }                                                                                 \
            p[k] = p[k] - lr * g;                                                             \
        }                                                                                     \
    }

DEF_SGD(float, pf, bf, gf)
DEF_SGD(double, pd, bd, gd)

int cpu_sgd_step(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)out;
    int np = (int)td_arg_int(c, "nparams");
    double mom = td_arg_float(c, "momentum");
    bool first = td_arg_bool(c, "first_step");
    int rc = check_grads(c, np, err);
    for (int i = 0; i < np && !rc; i++) {
        struct td_tensor *g = NULL;
        struct work w[2] = {{0}}, *p = &w[0], *buf = &w[1];
        rc = grad_of(c, i, &g, err);
        if (rc || !g)
            goto next;
        rc = work_begin(c, c->inputs[i], true, p, err);
        if (!rc && mom != 0)
            rc = work_begin(c, c->inputs[np + i], !first, buf, err);
        if (rc)
            goto next;
        struct sgd_job j = {.lr = td_arg_float(c, "lr"), .mom = mom,
                            .damp = td_arg_float(c, "dampening"),
                            .wd = td_arg_float(c, "weight_decay"),
                            .nesterov = td_arg_bool(c, "nesterov"),
                            .maximize = td_arg_bool(c, "maximize"), .first = first};
        bool dbl = p->t->dtype == TD_FLOAT64;
        if (dbl) {
            j.pd = td_tensor_data(p->t);
            j.gd = td_tensor_data(g);
            j.bd = buf->t ? td_tensor_data(buf->t) : NULL;
        } else {
            j.pf = td_tensor_data(p->t);
            j.gf = td_tensor_data(g);
            j.bf = buf->t ? td_tensor_data(buf->t) : NULL;
        }
        td__parallel_for(td_tensor_numel(p->t), TD__PAR_GRAIN, dbl ? sgd_double : sgd_float, &j);
    next:
        works_end(w, 2, &rc, err);
        td_tensor_release(g);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * adam_step.
 */
int meta_adam_step(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)out;
    static const struct range ranges[] = {{"lr", 0, INFINITY},
                                          {"beta1", 0, 1},
                                          {"beta2", 0, 1},
                                          {"eps", 0, INFINITY},
                                          {"weight_decay", 0, INFINITY}};
    static const char *const state[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    int64_t np = td_arg_int(c, "nparams");
    bool ams = td_arg_bool(c, "amsgrad");
    int rc = check_ranges(c, ranges, (int)(sizeof ranges / sizeof ranges[0]), err);
    if (!rc)
        rc = check_params(c, np, ams ? 4 : 3, err);
    for (int k = 1; k < (ams ? 4 : 3) && !rc; k++)
        rc = check_state(c, (int)(k * np), (int)np, state[k - 1], err);
    if (rc)
        return rc;
    if (td_arg_float(c, "beta1") >= 1 || td_arg_float(c, "beta2") >= 1)
        return td_error_set(err, TD_EINVAL, "adam_step: betas must be in [0, 1)");
    if (td_arg_int(c, "step") < 1)
        return td_error_set(err, TD_EINVAL, "adam_step: step must be >= 1, got %lld",
                            (long long)td_arg_int(c, "step"));
    return 0;
}

struct adam_job {
    void *p, *m, *v, *vmax;
    const void *g;
    double lr, b1, b2, eps, wd, step_size, bc2_sqrt;
    bool decoupled, maximize;
};

#define DEF_ADAM(T, SQRT)                                                                     \
    static void adam_##T(int64_t b, int64_t e, void *ctx)                                     \
    {                                                                                         \
        const struct adam_job *j = ctx;                                                       \
        T *p = j->p, *m = j->m, *v = j->v, *vmax = j->vmax;                                   \
        const T *gr = j->g;                                                                   \
        T w1 = (T)(1 - j->b1), b2 = (T)j->b2, w2 = (T)(1 - j->b2), wd = (T)j->wd;             \
        T decay = (T)(1 - j->lr * j->wd), eps = (T)j->eps, bc2s = (T)j->bc2_sqrt;             \
        T ss = (T)j->step_size;                                                               \
        for (int64_t k = b; k < e; k++) {                                                     \
            T g = j->maximize ? -gr[k] : gr[k];                                               \
            if (j->wd != 0) {                                                                 \
                if (j->decoupled)                                                             \
                    p[k] = p[k] * decay;                                                      \
                else                                                                          \
                    g = g + wd * p[k];                                                        \
            }                                                                                 \
            /* lerp(m, g, 1 - beta1) as torch computes it */                                  \
            T mk = w1 < (T)0.5 ? m[k] + w1 * (g - m[k]) : g - (g - m[k]) * ((T)1 - w1);        \
            m[k] = mk;                                                                        \
            T vk = v[k] * b2 + w2 * g * g;                                                    \
            v[k] = vk;                                                                        \
            if (vmax) {                                                                       \
                if (vk > vmax[k] || isnan(vk))                                                \
                    vmax[k] = vk;                                                             \
                vk = vmax[k];                                                                 \
            }                                                                                 \
            T denom = SQRT(vk) / bc2s + eps;                                                  \
            p[k] = p[k] - ss * (mk / denom);                                                  \
        }                                                                                     \
    }

DEF_ADAM(float, sqrtf)
DEF_ADAM(double, sqrt)

int cpu_adam_step(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)out;
    int np = (int)td_arg_int(c, "nparams");
    bool ams = td_arg_bool(c, "amsgrad");
    double lr = td_arg_float(c, "lr"), b1 = td_arg_float(c, "beta1");
    double b2 = td_arg_float(c, "beta2");
    double step = (double)td_arg_int(c, "step");
    int rc = check_grads(c, np, err);
    for (int i = 0; i < np && !rc; i++) {
        struct td_tensor *g = NULL;
        struct work w[4] = {{0}};
        int nw = ams ? 4 : 3;
        rc = grad_of(c, i, &g, err);
        if (rc || !g)
            goto next;
        for (int k = 0; k < nw && !rc; k++)
            rc = work_begin(c, c->inputs[k * np + i], true, &w[k], err);
        if (rc)
            goto next;
        struct adam_job j = {
            .p = td_tensor_data(w[0].t), .m = td_tensor_data(w[1].t),
            .v = td_tensor_data(w[2].t), .vmax = ams ? td_tensor_data(w[3].t) : NULL,
            .g = td_tensor_data(g), .lr = lr, .b1 = b1, .b2 = b2,
            .eps = td_arg_float(c, "eps"), .wd = td_arg_float(c, "weight_decay"),
            .step_size = lr / (1 - pow(b1, step)), .bc2_sqrt = sqrt(1 - pow(b2, step)),
            .decoupled = td_arg_bool(c, "decoupled_weight_decay"),
            .maximize = td_arg_bool(c, "maximize")};
        td__parallel_for(td_tensor_numel(w[0].t), TD__PAR_GRAIN,
                         w[0].t->dtype == TD_FLOAT64 ? adam_double : adam_float, &j);
    next:
        works_end(w, 4, &rc, err);
        td_tensor_release(g);
    }
    return rc;
}
