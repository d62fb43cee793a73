/*
 * gradcheck.h - the one generic derivative checker of the unit tests (test_derivatives_ew,
 * test_derivatives_rest, test_nn): an op's VJP and JVP formulas against float64 central
 * finite differences, never against the formulas' own output.
 *
 * A case (struct gcase) is an op, its inputs (float64 or complex128 where differentiable),
 * attributes and output count. gc_check runs:
 *  1. VJP: autograd.grad of L = Re(sum_k sum(conj(v_k) * f_k(x))) for random v (backward with
 *     grad_outputs v) against (L(x + eps e_j) - L(x - eps e_j)) / 2eps for every element and,
 *     for complex inputs, for its imaginary part too (PyTorch's dL/dx + i dL/dy); each
 *     gradient must have its input's dtype and shape;
 *  2. JVP: the tangent of f at make_dual(x, u) against (f(x + eps u) - f(x - eps u)) / 2eps,
 *     and the two modes against each other to rounding: Re<J^T v, u> == Re<v, J u>;
 *  3. second order: the VJP computed with create_graph, differentiated again with random
 *     weights w, against finite differences of Re(<w, VJP(x)>);
 *  4. forward over reverse: the JVP computed under grad mode, differentiated by backward,
 *     against finite differences of Re(<v, J(x) u>).
 * Checks 3 and 4 are skipped for first_only cases, check 4 alone for no_check4 ones. Every op call
 * starts from ag_rng_start (agtest.h), so random ops (dropout) draw the same numbers at every
 * point.
 */
#ifndef TD_GRADCHECK_H
#define TD_GRADCHECK_H

#include <complex.h>
#include <math.h>
#include <string.h>

#include "agtest.h"
#include "optest.h"

#define GC_EPS 1e-6 /* the finite-difference step */
#define GC_TOL 1e-6 /* default tolerance: |got - want| <= tol * (1 + |want|) */
#define GC_MAXIN 4
#define GC_MAXOUT 4
#define GC_MAXATTR 8

/* Directions and weights: a 64-bit LCG, deterministic across runs. */
static uint64_t gc_rng_state = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1). */
static inline double gc_urand(void)
{
    gc_rng_state = gc_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(gc_rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static inline bool gc_floating(enum td_dtype dt)
{
    return td_dtype_is_floating(dt) || td_dtype_is_complex(dt);
}

static inline double complex cget(const struct td_tensor *t, int64_t k)
{
    return td__load_c128(elem(t, k), t->dtype);
}

static inline void cset(struct td_tensor *t, int64_t k, double complex z)
{
    td__store_c128((char *)elem(t, k), t->dtype, z);
}

/* New contiguous zero-filled tensor of dt and shape. */
static inline struct td_tensor *gc_zeros(enum td_dtype dt, int ndim, const int64_t *shape)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, true, NULL, &t, &err), 0);
    return t;
}

/* Random tensor; values in [-1, 1) (complex: both parts) plus `shift`. */
static inline struct td_tensor *rnd(enum td_dtype dt, int ndim, const int64_t *shape, double shift)
{
    struct td_tensor *t = gc_zeros(dt, ndim, shape);
    for (int64_t k = 0; k < td_tensor_numel(t); k++) {
        double re = gc_urand() + shift;
        cset(t, k, td_dtype_is_complex(dt) ? CMPLX(re, gc_urand()) : re);
    }
    return t;
}

static inline struct td_tensor *rnd_like(const struct td_tensor *x)
{
    return rnd(x->dtype, x->ndim, x->shape, 0);
}

/* A contiguous copy without autograd state (and not a wrapped number). */
static inline struct td_tensor *copy_of(const struct td_tensor *x)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td_tensor_meta(x, &m);
    m.wrapped_number = false;
    assert_int_equal(td_tensor_new(&m, false, NULL, &t, &err), 0);
    assert_int_equal(td_tensor_copy(t, x, &err), 0);
    return t;
}

static inline void release_all(struct td_tensor **t, int n)
{
    for (int i = 0; i < n; i++) {
        td_tensor_release(t[i]);
        t[i] = NULL;
    }
}

/* One case: op on in[] (owned by the case, released by gc_check) with attrs a[]. */
struct gcase {
    const char *name;
    enum td_op op;
    int nin;
    struct td_tensor *in[GC_MAXIN];
    int na;
    struct td_attr_arg a[GC_MAXATTR];
    int nout;
    bool first_only; /* skip the second-order checks (3 and 4) */
    bool no_check4;  /* skip check 4 (the op's JVP formula is not differentiable) */
    /* Bit i: input i is held constant although it is floating (a Python number, a class
     * weight): no gradient, no tangent, never perturbed, passed as given. */
    unsigned nodiff;
    /* Check output `out` alone: the others get no cotangent, weight or tangent check. */
    bool one_output;
    int out;
    /* The first backward must use every differentiable input (allow_unused off), and in
     * checks 3 and 4 the gradients and the tangent must carry history. */
    bool strict;
    double tol, tol2; /* first- and second-order tolerances; 0: GC_TOL */
};

/* A case of op on in[0..nin) (ownership passes to the case) with attrs a[0..na) and nout
 * outputs; the other fields zero. */
static inline struct gcase gc_case(const char *name, enum td_op op, int nin,
                                   struct td_tensor *const *in, int na,
                                   const struct td_attr_arg *a, int nout)
{
    struct gcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.op = op;
    k.nin = nin;
    for (int i = 0; i < nin; i++)
        k.in[i] = in[i];
    k.na = na;
    for (int i = 0; i < na; i++)
        k.a[i] = a[i];
    k.nout = nout;
    return k;
}

/* Attribute lists written in place: A(a_int(...), ...) and their length NA(...). */
#define A(...) ((const struct td_attr_arg[]){__VA_ARGS__})
#define NA(...)                                                                                    \
    (int)(sizeof((const struct td_attr_arg[]){__VA_ARGS__}) / sizeof(struct td_attr_arg))

/* Random [batch..., m, n] plus `shift` on the diagonal (well conditioned for shift ~ n). */
static inline struct td_tensor *gc_shifted(enum td_dtype dt, int ndim, const int64_t *shape,
                                           double shift)
{
    struct td_tensor *t = rnd(dt, ndim, shape, 0);
    int64_t m = shape[ndim - 2], n = shape[ndim - 1], nb = td_tensor_numel(t) / (m * n);
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t i = 0; i < m && i < n; i++) {
            int64_t k = bi * m * n + i * n + i;
            cset(t, k, cget(t, k) + shift);
        }
    return t;
}

static inline bool gc_diff(const struct gcase *k, int i)
{
    return gc_floating(k->in[i]->dtype) && !(k->nodiff & (1u << i));
}

/* Whether output o is checked. */
static inline bool gc_out(const struct gcase *k, int o)
{
    return !k->one_output || o == k->out;
}

static inline void case_free(struct gcase *k)
{
    for (int i = 0; i < k->nin; i++)
        td_tensor_release(k->in[i]);
}

/* The op on in[]: plain (no autograd) unless ag, then through the session in grad mode
 * grad. The generator is reset first. Returns the status. */
static inline int gc_call(const struct gcase *k, bool ag, bool grad, struct td_tensor *const *in,
                          struct td_tensor **out, struct td_error *err)
{
    td_error_clear(err);
    ag_rng_reset();
    if (!ag)
        return td_op_call(k->op, k->nin, in, k->na, k->a, k->nout, out, ag_rng, NULL, err);
    return td_ag_call(&sess, grad, k->op, k->nin, in, k->na, k->a, k->nout, out, err);
}

/* Plain forward (no autograd). */
static inline void gc_fwd(const struct gcase *k, struct td_tensor *const *in,
                          struct td_tensor **out)
{
    struct td_error err;
    if (gc_call(k, false, false, in, out, &err))
        fail_msg("%s: forward failed: %s", k->name, err.msg);
}

/* Re(sum(conj(v) * t)); v NULL or t NULL gives 0. */
static inline double dotre(const struct td_tensor *v, const struct td_tensor *t)
{
    double s = 0;
    if (!v || !t)
        return 0;
    assert_int_equal(td_tensor_numel(v), td_tensor_numel(t));
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        s += creal(conj(cget(v, k)) * cget(t, k));
    return s;
}

/* x + s * u (new tensor). */
static inline struct td_tensor *gc_axpy(const struct td_tensor *x, double s,
                                        const struct td_tensor *u)
{
    struct td_tensor *t = copy_of(x);
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        cset(t, k, cget(x, k) + s * cget(u, k));
    return t;
}

static inline double gc_loss(const struct gcase *k, struct td_tensor *const *in,
                             struct td_tensor **v)
{
    struct td_tensor *out[GC_MAXOUT] = {0};
    gc_fwd(k, in, out);
    double s = 0;
    for (int o = 0; o < k->nout; o++)
        s += dotre(v[o], out[o]);
    release_all(out, k->nout);
    return s;
}

/* Fresh leaves requiring grad for the differentiable inputs; the others are base's own
 * tensors (a wrapped number stays one). */
static inline void gc_make_leaves(const struct gcase *k, struct td_tensor *const *base,
                                  struct td_tensor **leaf)
{
    struct td_error err;
    for (int i = 0; i < k->nin; i++) {
        if (!gc_diff(k, i)) {
            leaf[i] = td_tensor_retain(base[i]);
            continue;
        }
        leaf[i] = copy_of(base[i]);
        assert_int_equal(td__ag_meta_ensure(leaf[i], &err), 0);
        leaf[i]->ag->requires_grad = true;
    }
}

/* grads[i] = gradient of Re(<v, f(x)>) w.r.t. each differentiable input (NULL: zero),
 * computed by autograd at inputs base (outputs with v NULL are not roots); with create,
 * the graph of the gradient is kept and leaf[] (owned by the caller then) are the leaves it
 * hangs on. */
static inline void gc_vjp_at(const struct gcase *k, struct td_tensor *const *base,
                             struct td_tensor **v, bool create, struct td_tensor **leaf,
                             struct td_tensor **grads)
{
    struct td_tensor *out[GC_MAXOUT] = {0}, *roots[GC_MAXOUT], *vs[GC_MAXOUT];
    struct td_tensor *wrt[GC_MAXIN], *g[GC_MAXIN] = {0};
    int idx[GC_MAXIN], nw = 0, nr = 0;
    struct td_error err;
    gc_make_leaves(k, base, leaf);
    if (gc_call(k, true, true, leaf, out, &err))
        fail_msg("%s: recorded forward failed: %s", k->name, err.msg);
    for (int i = 0; i < k->nin; i++) {
        grads[i] = NULL;
        if (gc_diff(k, i)) {
            idx[nw] = i;
            wrt[nw++] = leaf[i];
        }
    }
    for (int o = 0; o < k->nout; o++)
        if (v[o]) {
            roots[nr] = out[o];
            vs[nr++] = v[o];
        }
    if (td_ag_backward(&sess, nr, roots, vs, nw, wrt, create, create, !k->strict, g, &err))
        fail_msg("%s: backward failed: %s", k->name, err.msg);
    for (int j = 0; j < nw; j++) {
        grads[idx[j]] = g[j];
        if (g[j]) {
            const struct td_tensor *x = base[idx[j]];
            if (g[j]->dtype != x->dtype || g[j]->ndim != x->ndim ||
                memcmp(g[j]->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim))
                fail_msg("%s: gradient of input %d has the wrong dtype or shape", k->name, idx[j]);
        }
    }
    release_all(out, k->nout);
}

static inline void gc_expect_close(const char *name, const char *what, int i, int64_t j, double got,
                                   double want, double tol)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("%s: %s of input %d element %lld: got %.12g, finite differences %.12g", name, what,
                 i, (long long)j, got, want);
}

/* d fn / d (element j of input i, real or imaginary part) by central differences. */
typedef double (*gc_scalar_fn)(const struct gcase *k, struct td_tensor *const *in, void *ctx);

static inline double gc_fd(const struct gcase *k, struct td_tensor *const *in, int i, int64_t j,
                           bool imag, gc_scalar_fn fn, void *ctx)
{
    struct td_tensor *p[GC_MAXIN];
    double r[2];
    for (int s = 0; s < 2; s++) {
        memcpy(p, in, sizeof p);
        p[i] = copy_of(in[i]);
        double complex z = cget(p[i], j);
        double h = s == 0 ? GC_EPS : -GC_EPS;
        cset(p[i], j, imag ? z + CMPLX(0, h) : z + h);
        r[s] = fn(k, p, ctx);
        td_tensor_release(p[i]);
    }
    return (r[0] - r[1]) / (2 * GC_EPS);
}

/* Compares autograd's gradient g (w.r.t. every differentiable input) with fd of fn. */
static inline void gc_compare_grads(const struct gcase *k, const char *what, struct td_tensor **g,
                                    gc_scalar_fn fn, void *ctx, double tol)
{
    for (int i = 0; i < k->nin; i++) {
        const struct td_tensor *x = k->in[i];
        if (!gc_diff(k, i))
            continue;
        bool cplx = td_dtype_is_complex(x->dtype);
        for (int64_t j = 0; j < td_tensor_numel(x); j++) {
            double complex got = g[i] ? cget(g[i], j) : 0;
            gc_expect_close(k->name, what, i, j, creal(got), gc_fd(k, k->in, i, j, false, fn, ctx),
                            tol);
            if (cplx)
                gc_expect_close(k->name, what, i, j, cimag(got),
                                gc_fd(k, k->in, i, j, true, fn, ctx), tol);
        }
    }
}

static inline double gc_loss_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    return gc_loss(k, in, ctx);
}

struct gc_second_ctx {
    struct td_tensor **v, **w;
};

/* Re(<w, VJP_v(x)>) with the first-order gradient computed by autograd at x. */
static inline double gc_vjp_dot_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    struct gc_second_ctx *s = ctx;
    struct td_tensor *leaf[GC_MAXIN], *g[GC_MAXIN];
    gc_vjp_at(k, in, s->v, false, leaf, g);
    double r = 0;
    for (int i = 0; i < k->nin; i++)
        r += dotre(s->w[i], g[i]);
    release_all(g, k->nin);
    release_all(leaf, k->nin);
    return r;
}

struct gc_fwd_ctx {
    struct td_tensor **u, **w; /* tangents of the inputs, weights of the outputs */
};

/* Duals of the differentiable inputs (make_dual(base[i], u[i]), recorded when grad) and the
 * op run on them; the caller exits the dual level. */
static inline void gc_run_dual(const struct gcase *k, struct td_tensor *const *base,
                               struct td_tensor **u, bool grad, struct td_tensor **dual,
                               struct td_tensor **out)
{
    struct td_error err;
    td_error_clear(&err);
    for (int i = 0; i < k->nin; i++) {
        if (!u[i]) {
            dual[i] = td_tensor_retain(base[i]);
            continue;
        }
        struct td_tensor *pair[2] = {base[i], u[i]};
        dual[i] = NULL;
        if (td_ag_call(&sess, grad, TD_OP_make_dual, 2, pair, 0, NULL, 1, &dual[i], &err))
            fail_msg("%s: make_dual failed: %s", k->name, err.msg);
    }
    if (gc_call(k, true, grad, dual, out, &err))
        fail_msg("%s: forward with duals failed: %s", k->name, err.msg);
}

/* Re(<w, J(x) u>) from forward mode at x. */
static inline double gc_jvp_dot_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    struct gc_fwd_ctx *f = ctx;
    struct td_tensor *dual[GC_MAXIN], *out[GC_MAXOUT] = {0};
    struct td_error err;
    double r = 0;
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    gc_run_dual(k, in, f->u, false, dual, out);
    for (int o = 0; o < k->nout; o++)
        r += dotre(f->w[o], td_ag_tangent(&sess, out[o]));
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    release_all(out, k->nout);
    release_all(dual, k->nin);
    return r;
}

static inline double gc_tol(double t)
{
    return t > 0 ? t : GC_TOL;
}

/* 1 and 2: VJP and JVP against finite differences, and against each other. */
static inline void gc_check_first(const struct gcase *k, struct td_tensor **out,
                                  struct td_tensor **v, struct td_tensor **u)
{
    struct td_tensor *leaf[GC_MAXIN], *g[GC_MAXIN];
    struct td_error err;
    double tol = gc_tol(k->tol);

    /* 1. VJP. */
    gc_vjp_at(k, k->in, v, false, leaf, g);
    gc_compare_grads(k, "VJP", g, gc_loss_fn, v, tol);
    double vjp_dot = 0, jvp_dot = 0;
    for (int i = 0; i < k->nin; i++)
        vjp_dot += dotre(g[i], u[i]);
    release_all(g, k->nin);
    release_all(leaf, k->nin);

    /* 2. JVP. */
    struct td_tensor *dual[GC_MAXIN], *tout[GC_MAXOUT] = {0}, *xp[GC_MAXIN], *xm[GC_MAXIN];
    struct td_tensor *fp[GC_MAXOUT] = {0}, *fm[GC_MAXOUT] = {0};
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    for (int i = 0; i < k->nin; i++) {
        xp[i] = xm[i] = k->in[i];
        if (u[i]) {
            xp[i] = gc_axpy(k->in[i], GC_EPS, u[i]);
            xm[i] = gc_axpy(k->in[i], -GC_EPS, u[i]);
        }
    }
    gc_run_dual(k, k->in, u, false, dual, tout);
    gc_fwd(k, xp, fp);
    gc_fwd(k, xm, fm);
    for (int o = 0; o < k->nout; o++) {
        if (!gc_floating(out[o]->dtype) || !gc_out(k, o))
            continue;
        struct td_tensor *t = td_ag_tangent(&sess, tout[o]);
        if (!t)
            fail_msg("%s: output %d has no tangent", k->name, o);
        expect_shape(t, out[o]->dtype, out[o]->ndim, out[o]->shape);
        jvp_dot += dotre(v[o], t);
        for (int64_t j = 0; j < td_tensor_numel(t); j++) {
            double complex want = (cget(fp[o], j) - cget(fm[o], j)) / (2 * GC_EPS),
                           got = cget(t, j);
            gc_expect_close(k->name, "JVP (real part)", o, j, creal(got), creal(want), tol);
            gc_expect_close(k->name, "JVP (imaginary part)", o, j, cimag(got), cimag(want), tol);
        }
    }
    /* The two modes agree exactly (up to rounding), not just to finite-difference accuracy:
     * Re<J^T v, u> == Re<v, J u>. This catches constants rounded to float32. */
    if (!(fabs(vjp_dot - jvp_dot) <= 1e-12 * (1 + fabs(vjp_dot))))
        fail_msg("%s: Re<J^T v, u> = %.17g but Re<v, J u> = %.17g", k->name, vjp_dot, jvp_dot);
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    release_all(tout, k->nout);
    release_all(fp, k->nout);
    release_all(fm, k->nout);
    release_all(dual, k->nin);
    for (int i = 0; i < k->nin; i++)
        if (u[i]) {
            td_tensor_release(xp[i]);
            td_tensor_release(xm[i]);
        }
}

/* 3. Second order: differentiate Re(<w, VJP_v(x)>) again, w random. */
static inline void gc_check_second(const struct gcase *k, struct td_tensor **v)
{
    struct td_tensor *leaf[GC_MAXIN], *g[GC_MAXIN], *w[GC_MAXIN] = {0};
    struct td_tensor *roots[GC_MAXIN], *ws[GC_MAXIN], *wrt[GC_MAXIN], *h[GC_MAXIN] = {0};
    struct td_tensor *hh[GC_MAXIN] = {0};
    int idx[GC_MAXIN], nr = 0, nw = 0;
    struct td_error err;
    gc_vjp_at(k, k->in, v, true, leaf, g);
    for (int i = 0; i < k->nin; i++) {
        if (!gc_diff(k, i))
            continue;
        w[i] = rnd_like(k->in[i]);
        idx[nw] = i;
        wrt[nw++] = leaf[i];
        if (g[i] && td_ag_requires_grad(g[i])) {
            roots[nr] = g[i];
            ws[nr++] = w[i];
        }
    }
    if (k->strict && nr == 0)
        fail_msg("%s: no gradient depends on the inputs", k->name);
    if (nr > 0 && td_ag_backward(&sess, nr, roots, ws, nw, wrt, false, false, true, h, &err))
        fail_msg("%s: second-order backward failed: %s", k->name, err.msg);
    for (int j = 0; j < nw; j++)
        hh[idx[j]] = h[j];
    struct gc_second_ctx sc = {v, w};
    gc_compare_grads(k, "second-order VJP", hh, gc_vjp_dot_fn, &sc, gc_tol(k->tol2));
    release_all(hh, k->nin);
    release_all(g, k->nin);
    release_all(leaf, k->nin);
    release_all(w, k->nin);
}

/* 4. Forward over reverse: the JVP computed under grad mode is differentiable in x; its
 * gradient is checked against finite differences of Re(<w, J(x) u>). */
static inline void gc_check_jvp_differentiable(const struct gcase *k, struct td_tensor **u,
                                               struct td_tensor **wout)
{
    struct td_tensor *leaf[GC_MAXIN], *dual[GC_MAXIN], *out[GC_MAXOUT] = {0};
    struct td_tensor *roots[GC_MAXOUT], *ws[GC_MAXOUT], *wrt[GC_MAXIN], *h[GC_MAXIN] = {0};
    struct td_tensor *hh[GC_MAXIN] = {0};
    int idx[GC_MAXIN], nr = 0, nw = 0;
    struct td_error err;
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    gc_make_leaves(k, k->in, leaf);
    gc_run_dual(k, leaf, u, true, dual, out);
    for (int o = 0; o < k->nout; o++) {
        struct td_tensor *t = wout[o] ? td_ag_tangent(&sess, out[o]) : NULL;
        if (t && td_ag_requires_grad(t)) {
            roots[nr] = td_tensor_retain(t);
            ws[nr++] = wout[o];
        } else if (wout[o] && k->strict) {
            fail_msg("%s: the tangent of output %d does not depend on the inputs", k->name, o);
        }
    }
    for (int i = 0; i < k->nin; i++)
        if (u[i]) {
            idx[nw] = i;
            wrt[nw++] = leaf[i];
        }
    if (nr > 0 && td_ag_backward(&sess, nr, roots, ws, nw, wrt, false, false, true, h, &err))
        fail_msg("%s: backward through the JVP failed: %s", k->name, err.msg);
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    for (int j = 0; j < nw; j++)
        hh[idx[j]] = h[j];
    struct gc_fwd_ctx f = {u, wout};
    gc_compare_grads(k, "gradient of the JVP", hh, gc_jvp_dot_fn, &f, gc_tol(k->tol2));
    release_all(hh, k->nin);
    release_all(roots, nr);
    release_all(out, k->nout);
    release_all(dual, k->nin);
    release_all(leaf, k->nin);
}

/* Runs checks 1-4 (1-2 for first_only) on k, then releases its inputs. */
static inline void gc_check(struct gcase *k)
{
    struct td_tensor *out[GC_MAXOUT] = {0}, *v[GC_MAXOUT] = {0}, *u[GC_MAXIN] = {0};

    assert_true(k->nin <= GC_MAXIN && k->nout <= GC_MAXOUT && k->na <= GC_MAXATTR);
    gc_fwd(k, k->in, out);
    for (int o = 0; o < k->nout; o++)
        v[o] = gc_floating(out[o]->dtype) && gc_out(k, o) ? rnd_like(out[o]) : NULL;
    for (int i = 0; i < k->nin; i++)
        u[i] = gc_diff(k, i) ? rnd_like(k->in[i]) : NULL;

    gc_check_first(k, out, v, u);
    if (!k->first_only) {
        gc_check_second(k, v);
        /* 4. The JVP under grad mode, differentiated (forward over reverse); v as weights. */
        if (!k->no_check4)
            gc_check_jvp_differentiable(k, u, v);
    }
    release_all(u, k->nin);
    release_all(v, k->nout);
    release_all(out, k->nout);
    case_free(k);
}

#endif
