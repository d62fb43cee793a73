/*
 * test_derivatives_rest.c - the derivative formulas of the reductions, scans, matmul, shape,
 * view and indexing ops, checked against float64 central finite differences (never against
 * the formulas' own output).
 *
 * One generic checker runs every case (an op, inputs of float64 or complex128 with random
 * values, attributes covering negative dims, keepdim, steps):
 *  1. VJP: autograd.grad of L = Re(sum_k sum(conj(v_k) * f_k(x))) for random v (backward with
 *     grad_outputs v) against (L(x + eps e_j) - L(x - eps e_j)) / 2eps for every element and,
 *     for complex inputs, for its imaginary part too (PyTorch's dL/dx + i dL/dy);
 *  2. JVP: the tangent of f at make_dual(x, u) against (f(x + eps u) - f(x - eps u)) / 2eps,
 *     and the two modes against each other to rounding: Re<J^T v, u> == Re<v, J u>;
 *  3. second order: the VJP computed with create_graph, differentiated again with random
 *     weights w, against finite differences of Re(<w, VJP(x)>);
 *  4. forward over reverse: the JVP computed under grad mode, differentiated by backward,
 *     against finite differences of Re(<v, J(x) u>).
 * Hand-computed cases cover what finite differences cannot: ties of amax, and scatter's
 * reduce="multiply" refusing a second derivative where src has zeros.
 */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "leakcheck.h"
#include "optest.h"
#include "td_autograd.h"

#define EPS 1e-6
#define TOL 1e-6
#define MAXIN 4
#define MAXOUT 4

static struct td_ag_session sess;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static int setup(void **state)
{
    leak_setup(state);
    td_ag_session_init(&sess, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    td_ag_session_fini(&sess);
    return leak_teardown(state);
}

/* Uniform in [-1, 1) from a 64-bit LCG (deterministic across runs). */
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static bool differentiable(enum td_dtype dt)
{
    return td_dtype_is_floating(dt) || td_dtype_is_complex(dt);
}

static double complex cget(const struct td_tensor *t, int64_t k)
{
    return td__load_c128(elem(t, k), t->dtype);
}

static void cset(struct td_tensor *t, int64_t k, double complex z)
{
    td__store_c128((char *)elem(t, k), t->dtype, z);
}

/* Random tensor; values in [-1, 1) (complex: both parts) plus `shift`. */
static struct td_tensor *rnd(enum td_dtype dt, int ndim, const int64_t *shape, double shift)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, true, NULL, &t, &err), 0);
    for (int64_t k = 0; k < td_tensor_numel(t); k++) {
        double re = urand() + shift;
        cset(t, k, td_dtype_is_complex(dt) ? CMPLX(re, urand()) : re);
    }
    return t;
}

static struct td_tensor *rnd_like(const struct td_tensor *x)
{
    return rnd(x->dtype, x->ndim, x->shape, 0);
}

/* A contiguous copy without autograd state. */
static struct td_tensor *copy_of(const struct td_tensor *x)
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

/* x + s * u (new tensor). */
static struct td_tensor *axpy(const struct td_tensor *x, double s, const struct td_tensor *u)
{
    struct td_tensor *t = copy_of(x);
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        cset(t, k, cget(x, k) + s * cget(u, k));
    return t;
}

/* One case: op on in[] (owned by the case) with attrs; diff inputs are float/complex. */
struct gcase {
    const char *name;
    enum td_op op;
    int nin;
    struct td_tensor *in[MAXIN];
    int na;
    struct td_attr_arg a[4];
    int nout;
    bool first_only; /* skip the second-order checks (3 and 4) */
};

static void case_free(struct gcase *k)
{
    for (int i = 0; i < k->nin; i++)
        td_tensor_release(k->in[i]);
}

/* Plain forward (no autograd). */
static void fwd(const struct gcase *k, struct td_tensor *const *in, struct td_tensor **out)
{
    struct td_error err;
    td_error_clear(&err);
    if (td_op_call(k->op, k->nin, in, k->na, k->a, k->nout, out, NULL, NULL, &err))
        fail_msg("%s: forward failed: %s", k->name, err.msg);
}

static void release_all(struct td_tensor **t, int n)
{
    for (int i = 0; i < n; i++) {
        td_tensor_release(t[i]);
        t[i] = NULL;
    }
}

/* Re(sum(conj(v) * t)); v NULL or t NULL gives 0. */
static double dotre(const struct td_tensor *v, const struct td_tensor *t)
{
    double s = 0;
    if (!v || !t)
        return 0;
    assert_int_equal(td_tensor_numel(v), td_tensor_numel(t));
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        s += creal(conj(cget(v, k)) * cget(t, k));
    return s;
}

static double loss(const struct gcase *k, struct td_tensor *const *in, struct td_tensor **v)
{
    struct td_tensor *out[MAXOUT] = {0};
    fwd(k, in, out);
    double s = 0;
    for (int o = 0; o < k->nout; o++)
        s += dotre(v[o], out[o]);
    release_all(out, k->nout);
    return s;
}

/* Fresh leaves requiring grad for the differentiable inputs; others shared. */
static void make_leaves(const struct gcase *k, struct td_tensor *const *base,
                        struct td_tensor **leaf)
{
    struct td_error err;
    for (int i = 0; i < k->nin; i++) {
        leaf[i] = copy_of(base[i]);
        if (differentiable(base[i]->dtype)) {
            assert_int_equal(td__ag_meta_ensure(leaf[i], &err), 0);
            leaf[i]->ag->requires_grad = true;
        }
    }
}

/* grads[i] = gradient of Re(<v, f(x)>) w.r.t. each differentiable input (NULL: zero),
 * computed by autograd at inputs base; with create, the graph of the gradient is kept and
 * leaf[] (owned by the caller then) are the leaves it hangs on. */
static void vjp_at(const struct gcase *k, struct td_tensor *const *base, struct td_tensor **v,
                   bool create, struct td_tensor **leaf, struct td_tensor **grads)
{
    struct td_tensor *out[MAXOUT] = {0}, *wrt[MAXIN], *g[MAXIN] = {0};
    int idx[MAXIN], nw = 0;
    struct td_error err;
    make_leaves(k, base, leaf);
    td_error_clear(&err);
    if (td_ag_call(&sess, true, k->op, k->nin, leaf, k->na, k->a, k->nout, out, &err))
        fail_msg("%s: recorded forward failed: %s", k->name, err.msg);
    for (int i = 0; i < k->nin; i++) {
        grads[i] = NULL;
        if (differentiable(base[i]->dtype)) {
            idx[nw] = i;
            wrt[nw++] = leaf[i];
        }
    }
    if (td_ag_backward(&sess, k->nout, out, v, nw, wrt, create, create, true, g, &err))
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

static void expect_close(const char *name, const char *what, int i, int64_t j, double got,
                         double want)
{
    if (!(fabs(got - want) <= TOL * (1 + fabs(want))))
        fail_msg("%s: %s of input %d element %lld: got %.12g, finite differences %.12g", name, what,
                 i, (long long)j, got, want);
}

/* d fn / d (element j of input i, real or imaginary part) by central differences. */
typedef double (*scalar_fn)(const struct gcase *k, struct td_tensor *const *in, void *ctx);

static double fd(const struct gcase *k, struct td_tensor *const *in, int i, int64_t j, bool imag,
                 scalar_fn fn, void *ctx)
{
    struct td_tensor *p[MAXIN];
    double r[2];
    for (int s = 0; s < 2; s++) {
        memcpy(p, in, sizeof p);
        p[i] = copy_of(in[i]);
        double complex z = cget(p[i], j);
        double h = s == 0 ? EPS : -EPS;
        cset(p[i], j, imag ? z + CMPLX(0, h) : z + h);
        r[s] = fn(k, p, ctx);
        td_tensor_release(p[i]);
    }
    return (r[0] - r[1]) / (2 * EPS);
}

/* Compares autograd's gradient g (w.r.t. every differentiable input) with fd of fn. */
static void compare_grads(const struct gcase *k, const char *what, struct td_tensor **g,
                          scalar_fn fn, void *ctx)
{
    for (int i = 0; i < k->nin; i++) {
        const struct td_tensor *x = k->in[i];
        if (!differentiable(x->dtype))
            continue;
        bool cplx = td_dtype_is_complex(x->dtype);
        for (int64_t j = 0; j < td_tensor_numel(x); j++) {
            double complex got = g[i] ? cget(g[i], j) : 0;
            expect_close(k->name, what, i, j, creal(got), fd(k, k->in, i, j, false, fn, ctx));
            if (cplx)
                expect_close(k->name, what, i, j, cimag(got), fd(k, k->in, i, j, true, fn, ctx));
        }
    }
}

static double loss_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    return loss(k, in, ctx);
}

struct second_ctx {
    struct td_tensor **v, **w;
};

/* Re(<w, VJP_v(x)>) with the first-order gradient computed by autograd at x. */
static double vjp_dot_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    struct second_ctx *s = ctx;
    struct td_tensor *leaf[MAXIN], *g[MAXIN];
    vjp_at(k, in, s->v, false, leaf, g);
    double r = 0;
    for (int i = 0; i < k->nin; i++)
        r += dotre(s->w[i], g[i]);
    release_all(g, k->nin);
    release_all(leaf, k->nin);
    return r;
}

struct fwd_ctx {
    struct td_tensor **u, **w; /* tangents of the inputs, weights of the outputs */
};

/* Duals of the differentiable inputs (make_dual(base[i], u[i]), recorded when grad) and the
 * op run on them; the caller exits the dual level. */
static void run_dual(const struct gcase *k, struct td_tensor *const *base, struct td_tensor **u,
                     bool grad, struct td_tensor **dual, struct td_tensor **out)
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
    if (td_ag_call(&sess, grad, k->op, k->nin, dual, k->na, k->a, k->nout, out, &err))
        fail_msg("%s: forward with duals failed: %s", k->name, err.msg);
}

/* Re(<w, J(x) u>) from forward mode at x. */
static double jvp_dot_fn(const struct gcase *k, struct td_tensor *const *in, void *ctx)
{
    struct fwd_ctx *f = ctx;
    struct td_tensor *dual[MAXIN], *out[MAXOUT] = {0};
    struct td_error err;
    double r = 0;
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    run_dual(k, in, f->u, false, dual, out);
    for (int o = 0; o < k->nout; o++)
        r += dotre(f->w[o], td_ag_tangent(&sess, out[o]));
    assert_int_equal(td_ag_exit_dual_level(&sess, &err), 0);
    release_all(out, k->nout);
    release_all(dual, k->nin);
    return r;
}

/* Forward over reverse: the JVP computed under grad mode is differentiable in x; its
 * gradient is checked against finite differences of Re(<w, J(x) u>). */
static void check_jvp_differentiable(const struct gcase *k, struct td_tensor **u,
                                     struct td_tensor **wout)
{
    struct td_tensor *leaf[MAXIN], *dual[MAXIN], *out[MAXOUT] = {0};
    struct td_tensor *roots[MAXOUT], *ws[MAXOUT], *wrt[MAXIN], *h[MAXIN] = {0}, *hh[MAXIN] = {0};
    int idx[MAXIN], nr = 0, nw = 0;
    struct td_error err;
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    make_leaves(k, k->in, leaf);
    run_dual(k, leaf, u, true, dual, out);
    for (int o = 0; o < k->nout; o++) {
        struct td_tensor *t = wout[o] ? td_ag_tangent(&sess, out[o]) : NULL;
        if (t && td_ag_requires_grad(t)) {
            roots[nr] = td_tensor_retain(t);
            ws[nr++] = wout[o];
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
    struct fwd_ctx f = {u, wout};
    compare_grads(k, "gradient of the JVP", hh, jvp_dot_fn, &f);
    release_all(hh, k->nin);
    release_all(roots, nr);
    release_all(out, k->nout);
    release_all(dual, k->nin);
    release_all(leaf, k->nin);
}

static void check_case(struct gcase *k)
{
    struct td_tensor *out[MAXOUT] = {0}, *v[MAXOUT] = {0}, *leaf[MAXIN], *g[MAXIN];
    struct td_tensor *u[MAXIN] = {0}, *w[MAXIN] = {0};
    struct td_error err;

    fwd(k, k->in, out);
    for (int o = 0; o < k->nout; o++)
        v[o] = differentiable(out[o]->dtype) ? rnd_like(out[o]) : NULL;

    /* 1. VJP. */
    for (int i = 0; i < k->nin; i++)
        u[i] = differentiable(k->in[i]->dtype) ? rnd_like(k->in[i]) : NULL;
    vjp_at(k, k->in, v, false, leaf, g);
    compare_grads(k, "VJP", g, loss_fn, v);
    double vjp_dot = 0, jvp_dot = 0;
    for (int i = 0; i < k->nin; i++)
        vjp_dot += dotre(g[i], u[i]);
    release_all(g, k->nin);
    release_all(leaf, k->nin);

    /* 2. JVP. */
    struct td_tensor *dual[MAXIN], *tout[MAXOUT] = {0}, *xp[MAXIN], *xm[MAXIN];
    struct td_tensor *fp[MAXOUT] = {0}, *fm[MAXOUT] = {0};
    assert_int_equal(td_ag_enter_dual_level(&sess, &err), 0);
    for (int i = 0; i < k->nin; i++) {
        xp[i] = xm[i] = k->in[i];
        dual[i] = td_tensor_retain(k->in[i]);
        if (!differentiable(k->in[i]->dtype))
            continue;
        struct td_tensor *pair[2] = {k->in[i], u[i]};
        td_tensor_release(dual[i]);
        dual[i] = NULL;
        if (td_ag_call(&sess, false, TD_OP_make_dual, 2, pair, 0, NULL, 1, &dual[i], &err))
            fail_msg("%s: make_dual failed: %s", k->name, err.msg);
        xp[i] = axpy(k->in[i], EPS, u[i]);
        xm[i] = axpy(k->in[i], -EPS, u[i]);
    }
    if (td_ag_call(&sess, false, k->op, k->nin, dual, k->na, k->a, k->nout, tout, &err))
        fail_msg("%s: forward with duals failed: %s", k->name, err.msg);
    fwd(k, xp, fp);
    fwd(k, xm, fm);
    for (int o = 0; o < k->nout; o++) {
        if (!differentiable(out[o]->dtype))
            continue;
        struct td_tensor *t = td_ag_tangent(&sess, tout[o]);
        if (!t)
            fail_msg("%s: output %d has no tangent", k->name, o);
        expect_shape(t, out[o]->dtype, out[o]->ndim, out[o]->shape);
        jvp_dot += dotre(v[o], t);
        for (int64_t j = 0; j < td_tensor_numel(t); j++) {
            double complex want = (cget(fp[o], j) - cget(fm[o], j)) / (2 * EPS), got = cget(t, j);
            expect_close(k->name, "JVP (real part)", o, j, creal(got), creal(want));
            expect_close(k->name, "JVP (imaginary part)", o, j, cimag(got), cimag(want));
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
        if (differentiable(k->in[i]->dtype)) {
            td_tensor_release(xp[i]);
            td_tensor_release(xm[i]);
        }

    if (k->first_only) {
        release_all(u, k->nin);
        release_all(v, k->nout);
        release_all(out, k->nout);
        case_free(k);
        return;
    }

    /* 3. Second order: differentiate Re(<w, VJP_v(x)>) again. */
    struct td_tensor *roots[MAXIN], *ws[MAXIN], *wrt[MAXIN], *h[MAXIN] = {0}, *hh[MAXIN] = {0};
    int idx[MAXIN], nr = 0, nw = 0;
    vjp_at(k, k->in, v, true, leaf, g);
    for (int i = 0; i < k->nin; i++) {
        if (!differentiable(k->in[i]->dtype))
            continue;
        w[i] = rnd_like(k->in[i]);
        idx[nw] = i;
        wrt[nw++] = leaf[i];
        if (g[i] && td_ag_requires_grad(g[i])) {
            roots[nr] = g[i];
            ws[nr++] = w[i];
        }
    }
    if (nr > 0 && td_ag_backward(&sess, nr, roots, ws, nw, wrt, false, false, true, h, &err))
        fail_msg("%s: second-order backward failed: %s", k->name, err.msg);
    for (int j = 0; j < nw; j++)
        hh[idx[j]] = h[j];
    struct second_ctx sc = {v, w};
    compare_grads(k, "second-order VJP", hh, vjp_dot_fn, &sc);
    release_all(hh, k->nin);
    release_all(g, k->nin);
    release_all(leaf, k->nin);

    /* 4. The JVP under grad mode, differentiated (forward over reverse); v as weights. */
    check_jvp_differentiable(k, u, v);

    release_all(u, k->nin);
    release_all(w, k->nin);
    release_all(v, k->nout);
    release_all(out, k->nout);
    case_free(k);
}

/* ---------------------------------------------------------------------------------------
 * Case builders.
 */
static struct gcase one(const char *name, enum td_op op, struct td_tensor *x, int na,
                        const struct td_attr_arg *a)
{
    struct gcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.op = op;
    k.nin = 1;
    k.in[0] = x;
    k.na = na;
    for (int i = 0; i < na; i++)
        k.a[i] = a[i];
    k.nout = 1;
    return k;
}

#define A(...) ((const struct td_attr_arg[]){__VA_ARGS__})
#define NA(...)                                                                                    \
    (int)(sizeof((const struct td_attr_arg[]){__VA_ARGS__}) / sizeof(struct td_attr_arg))
#define ONE(name, op, x, ...) one(name, op, x, NA(__VA_ARGS__), A(__VA_ARGS__))

static void run(struct gcase k)
{
    check_case(&k);
}

static const enum td_dtype DTS[2] = {TD_FLOAT64, TD_COMPLEX128};

/* ---- reductions ---- */

static void test_sum_mean(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("sum dim -1 keepdim", TD_OP_sum, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("dim", 1, SHAPE(-1)), a_bool("keepdim", true)));
        run(ONE("mean dims 0,-1", TD_OP_mean, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dim", 2, SHAPE(0, -1))));
        run(ONE("mean all keepdim", TD_OP_mean, rnd(dt, 2, SHAPE(2, 3), 0),
                a_bool("keepdim", true)));
        run(ONE("mean empty dim list", TD_OP_mean, rnd(dt, 2, SHAPE(2, 3), 0),
                a_ints("dim", 0, NULL)));
    }
}

/* Values with exactly the zeros at the listed flat positions. */
static struct td_tensor *with_zeros(struct td_tensor *x, int n, const int64_t *pos)
{
    for (int i = 0; i < n; i++)
        cset(x, pos[i], 0);
    return x;
}

static void test_prod(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("prod dim 1 keepdim", TD_OP_prod, rnd(dt, 3, SHAPE(2, 3, 2), 0.5),
                a_ints("dim", 1, SHAPE(1)), a_bool("keepdim", true)));
        run(ONE("prod dims -1,0", TD_OP_prod, rnd(dt, 3, SHAPE(2, 2, 3), 0.5),
                a_ints("dim", 2, SHAPE(-1, 0))));
        run(ONE("prod all", TD_OP_prod, rnd(dt, 2, SHAPE(2, 3), 0.5), a_bool("keepdim", false)));
        /* Exactly one zero in the whole tensor, then one zero per row, then two in a row. */
        run(ONE("prod all one zero", TD_OP_prod,
                with_zeros(rnd(dt, 2, SHAPE(2, 3), 0.5), 1, SHAPE(4)), a_bool("keepdim", false)));
        run(ONE("prod dim 1 zeros", TD_OP_prod,
                with_zeros(rnd(dt, 2, SHAPE(3, 4), 0.5), 4, SHAPE(1, 4, 6, 10)),
                a_ints("dim", 1, SHAPE(1))));
        run(ONE("prod 0-d", TD_OP_prod, rnd(dt, 0, NULL, 0.5), a_bool("keepdim", false)));
    }
}

static void test_amax_amin(void **state)
{
    (void)state;
    run(ONE("amax dim -1", TD_OP_amax, rnd(TD_FLOAT64, 2, SHAPE(3, 4), 0),
            a_ints("dim", 1, SHAPE(-1))));
    run(ONE("amax dims keepdim", TD_OP_amax, rnd(TD_FLOAT64, 3, SHAPE(2, 3, 2), 0),
            a_ints("dim", 2, SHAPE(0, 2)), a_bool("keepdim", true)));
    run(ONE("amin all", TD_OP_amin, rnd(TD_FLOAT64, 2, SHAPE(3, 2), 0), a_bool("keepdim", false)));
}

/* Ties share the gradient evenly (PyTorch): hand-computed. */
static void test_amax_ties(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *x = mk(TD_FLOAT64, 2, SHAPE(2, 3), VALS(1, 3, 3, 5, 5, 5));
    assert_int_equal(td__ag_meta_ensure(x, &err), 0);
    x->ag->requires_grad = true;
    struct td_attr_arg a = a_ints("dim", 1, SHAPE(1));
    struct td_tensor *y = NULL, *g = NULL;
    assert_int_equal(td_ag_call(&sess, true, TD_OP_amax, 1, &x, 1, &a, 1, &y, &err), 0);
    struct td_tensor *go = mk(TD_FLOAT64, 1, SHAPE(2), VALS(6, 3));
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &x, false, false, false, &g, &err), 0);
    expect_vals_tol(g, TD_FLOAT64, 2, SHAPE(2, 3), VALS(0, 3, 3, 1, 1, 1), 1e-15);
    td_tensor_release(g);
    td_tensor_release(go);
    td_tensor_release(y);
    td_tensor_release(x);
}

static void test_var_std(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("var dim 1", TD_OP_var, rnd(dt, 2, SHAPE(3, 4), 0), a_ints("dim", 1, SHAPE(1))));
        run(ONE("var dims keepdim correction 0", TD_OP_var, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dim", 2, SHAPE(-1, 0)), a_float("correction", 0), a_bool("keepdim", true)));
        run(ONE("var all correction 2", TD_OP_var, rnd(dt, 2, SHAPE(2, 3), 0),
                a_float("correction", 2)));
        run(ONE("std dim 0 keepdim", TD_OP_std, rnd(dt, 2, SHAPE(3, 2), 0),
                a_ints("dim", 1, SHAPE(0)), a_bool("keepdim", true)));
        run(ONE("std all", TD_OP_std, rnd(dt, 2, SHAPE(2, 3), 0), a_float("correction", 1)));
        /* One element, correction 0: std is identically 0, its derivative 0 (not 0/0). */
        run(ONE("std 0-d", TD_OP_std, rnd(dt, 0, NULL, 0), a_float("correction", 0)));
    }
}

static void test_logsumexp(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("logsumexp dim -1", TD_OP_logsumexp, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("dim", 1, SHAPE(-1))));
        run(ONE("logsumexp dims keepdim", TD_OP_logsumexp, rnd(dt, 3, SHAPE(2, 2, 3), 0),
                a_ints("dim", 2, SHAPE(0, 2)), a_bool("keepdim", true)));
    }
}

static void test_scans(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("cumsum dim -1", TD_OP_cumsum, rnd(dt, 2, SHAPE(3, 4), 0), a_int("dim", -1)));
        run(ONE("cumsum dim 0", TD_OP_cumsum, rnd(dt, 3, SHAPE(3, 2, 2), 0), a_int("dim", 0)));
        run(ONE("cumsum 0-d", TD_OP_cumsum, rnd(dt, 0, NULL, 0), a_int("dim", 0)));
        run(ONE("cumprod dim 1", TD_OP_cumprod, rnd(dt, 2, SHAPE(2, 5), 0.3), a_int("dim", 1)));
        run(ONE("cumprod dim -2", TD_OP_cumprod, rnd(dt, 3, SHAPE(4, 2, 2), 0.3),
                a_int("dim", -2)));
        /* Row 0: one zero in the middle; row 1: zeros at 0 and 3; row 2: zero at the end. */
        run(ONE("cumprod zeros", TD_OP_cumprod,
                with_zeros(rnd(dt, 2, SHAPE(3, 5), 0.3), 4, SHAPE(2, 5, 8, 14)), a_int("dim", 1)));
        run(ONE("cumprod 0-d", TD_OP_cumprod, rnd(dt, 0, NULL, 0.3), a_int("dim", -1)));
    }
}

/* ---- matmul ---- */

static struct gcase two(const char *name, enum td_op op, struct td_tensor *x, struct td_tensor *y,
                        int na, const struct td_attr_arg *a)
{
    struct gcase k = one(name, op, x, na, a);
    k.nin = 2;
    k.in[1] = y;
    return k;
}

static void test_matmul(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(two("matmul 2x2", TD_OP_matmul, rnd(dt, 2, SHAPE(3, 4), 0), rnd(dt, 2, SHAPE(4, 2), 0),
                0, NULL));
        run(two("matmul batch broadcast", TD_OP_matmul, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                rnd(dt, 4, SHAPE(2, 1, 2, 2), 0), 0, NULL));
        run(two("matmul 1-d @ 3-d", TD_OP_matmul, rnd(dt, 1, SHAPE(3), 0),
                rnd(dt, 3, SHAPE(2, 3, 2), 0), 0, NULL));
        run(two("matmul 3-d @ 1-d", TD_OP_matmul, rnd(dt, 3, SHAPE(2, 2, 3), 0),
                rnd(dt, 1, SHAPE(3), 0), 0, NULL));
        run(two("matmul 1-d @ 1-d", TD_OP_matmul, rnd(dt, 1, SHAPE(4), 0), rnd(dt, 1, SHAPE(4), 0),
                0, NULL));
    }
    /* Mixed: a real matrix times a complex one (promoted; the real input's gradient is real). */
    run(two("matmul real @ complex", TD_OP_matmul, rnd(TD_FLOAT64, 2, SHAPE(2, 3), 0),
            rnd(TD_COMPLEX128, 2, SHAPE(3, 2), 0), 0, NULL));
}

/* ---- shape and views ---- */

static void test_views(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("reshape", TD_OP_reshape, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("shape", 2, SHAPE(4, -1))));
        run(ONE("view", TD_OP_view, rnd(dt, 2, SHAPE(2, 6), 0),
                a_ints("shape", 3, SHAPE(3, 2, 2))));
        run(ONE("permute", TD_OP_permute, rnd(dt, 3, SHAPE(2, 3, 4), 0),
                a_ints("dims", 3, SHAPE(-1, 0, 1))));
        run(ONE("transpose", TD_OP_transpose, rnd(dt, 3, SHAPE(2, 3, 2), 0), a_int("dim0", 0),
                a_int("dim1", -1)));
        run(ONE("expand", TD_OP_expand, rnd(dt, 2, SHAPE(3, 1), 0),
                a_ints("shape", 3, SHAPE(2, -1, 4))));
        run(ONE("broadcast_to", TD_OP_broadcast_to, rnd(dt, 1, SHAPE(3), 0),
                a_ints("shape", 2, SHAPE(2, 3))));
        run(ONE("squeeze dim", TD_OP_squeeze, rnd(dt, 3, SHAPE(2, 1, 3), 0),
                a_ints("dim", 1, SHAPE(-2))));
        run(one("squeeze all", TD_OP_squeeze, rnd(dt, 4, SHAPE(1, 3, 1, 2), 0), 0, NULL));
        run(ONE("unsqueeze", TD_OP_unsqueeze, rnd(dt, 2, SHAPE(2, 3), 0), a_int("dim", -1)));
        run(ONE("flatten", TD_OP_flatten, rnd(dt, 3, SHAPE(2, 3, 2), 0), a_int("start_dim", 1),
                a_int("end_dim", -1)));
        run(one("contiguous", TD_OP_contiguous, rnd(dt, 2, SHAPE(2, 3), 0), 0, NULL));
        run(one("clone", TD_OP_clone, rnd(dt, 2, SHAPE(2, 3), 0), 0, NULL));
    }
}

static void test_slicing(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        run(ONE("slice step 2", TD_OP_slice, rnd(dt, 2, SHAPE(3, 7), 0), a_int("dim", 1),
                a_int("start", 1), a_int("end", 6), a_int("step", 2)));
        run(ONE("slice negative step", TD_OP_slice, rnd(dt, 2, SHAPE(7, 2), 0), a_int("dim", -2),
                a_int("start", -2), a_int("step", -3)));
        run(ONE("slice reversed whole", TD_OP_slice, rnd(dt, 1, SHAPE(5), 0), a_int("dim", 0),
                a_int("step", -1)));
        run(ONE("slice clamped end", TD_OP_slice, rnd(dt, 2, SHAPE(4, 3), 0), a_int("dim", 0),
                a_int("start", -3), a_int("end", 100)));
        run(ONE("slice empty", TD_OP_slice, rnd(dt, 2, SHAPE(4, 3), 0), a_int("dim", 0),
                a_int("start", 3), a_int("end", 1)));
        run(ONE("select", TD_OP_select, rnd(dt, 3, SHAPE(2, 3, 4), 0), a_int("dim", -1),
                a_int("index", -2)));
        run(ONE("narrow", TD_OP_narrow, rnd(dt, 2, SHAPE(5, 2), 0), a_int("dim", 0),
                a_int("start", -3), a_int("length", 2)));
        run(ONE("flip", TD_OP_flip, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                a_ints("dims", 2, SHAPE(0, -1))));
        run(ONE("roll dims", TD_OP_roll, rnd(dt, 2, SHAPE(3, 4), 0),
                a_ints("shifts", 2, SHAPE(1, -5)), a_ints("dims", 2, SHAPE(0, -1))));
        run(ONE("roll flat", TD_OP_roll, rnd(dt, 2, SHAPE(2, 3), 0),
                a_ints("shifts", 1, SHAPE(4))));
        run(ONE("tril", TD_OP_tril, rnd(dt, 3, SHAPE(2, 3, 4), 0), a_int("diagonal", -1)));
        run(ONE("triu", TD_OP_triu, rnd(dt, 2, SHAPE(4, 3), 0), a_int("diagonal", 1)));
    }
}

static void test_join_split(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        struct gcase k = two("cat", TD_OP_cat, rnd(dt, 2, SHAPE(2, 1), 0),
                             rnd(dt, 2, SHAPE(2, 3), 0), 1, A(a_int("dim", -1)));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(2, 2), 0);
        run(k);
        run(two("stack", TD_OP_stack, rnd(dt, 2, SHAPE(2, 3), 0), rnd(dt, 2, SHAPE(2, 3), 0), 1,
                A(a_int("dim", -1))));
        k = ONE("split size", TD_OP_split, rnd(dt, 2, SHAPE(5, 2), 0), a_int("split_size", 2));
        k.nout = 3;
        run(k);
        k = ONE("split sections", TD_OP_split, rnd(dt, 2, SHAPE(2, 5), 0),
                a_ints("sections", 2, SHAPE(1, 4)), a_int("dim", -1));
        k.nout = 2;
        run(k);
        k = ONE("chunk", TD_OP_chunk, rnd(dt, 2, SHAPE(2, 7), 0), a_int("chunks", 3),
                a_int("dim", 1));
        k.nout = 3;
        run(k);
    }
    /* An integer input of cat has no gradient and a zero tangent. */
    run(two("cat int and float", TD_OP_cat, mk(TD_INT64, 1, SHAPE(2), VALS(4, 5)),
            rnd(TD_FLOAT64, 1, SHAPE(3), 0), 0, NULL));
}

/* ---- indexing ---- */

static void test_indexing(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        /* Repeated indices add up. */
        run(two("gather", TD_OP_gather, rnd(dt, 2, SHAPE(3, 4), 0),
                mk(TD_INT64, 2, SHAPE(2, 3), VALS(0, 3, 3, 2, 2, 1)), 1, A(a_int("dim", -1))));
        /* scatter without reduce: destinations unique; src larger than index. */
        struct gcase k = two("scatter", TD_OP_scatter, rnd(dt, 2, SHAPE(4, 3), 0),
                             mk(TD_INT64, 2, SHAPE(2, 2), VALS(3, 0, 1, 2)), 1, A(a_int("dim", 0)));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(3, 3), 0);
        run(k);
        /* reduce add: duplicates allowed. */
        k = two("scatter add", TD_OP_scatter, rnd(dt, 2, SHAPE(2, 4), 0),
                mk(TD_INT64, 2, SHAPE(2, 3), VALS(1, 1, 3, 0, 2, 2)), 2,
                A(a_int("dim", -1), a_str("reduce", "add")));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(2, 4), 0);
        run(k);
        run(two("index_select int64", TD_OP_index_select, rnd(dt, 2, SHAPE(3, 2), 0),
                mk(TD_INT64, 1, SHAPE(4), VALS(2, 0, 2, 1)), 1, A(a_int("dim", 0))));
        run(two("index_select int32", TD_OP_index_select, rnd(dt, 3, SHAPE(2, 3, 2), 0),
                mk(TD_INT32, 1, SHAPE(2), VALS(1, 1)), 1, A(a_int("dim", -2))));
        run(two("index_select 0-d index", TD_OP_index_select, rnd(dt, 2, SHAPE(2, 3), 0),
                mk0(TD_INT64, 2), 1, A(a_int("dim", 1))));
        run(two("masked_fill", TD_OP_masked_fill, rnd(dt, 2, SHAPE(2, 3), 0),
                mk(TD_BOOL, 1, SHAPE(3), VALS(1, 0, 1)), 1,
                A(a_scalar("value", TD_SCALAR_FLOAT, 2.5, 0))));
    }
}

/* reduce="multiply": repeated destinations multiply; src may be larger than index. */
static void test_scatter_multiply(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        enum td_dtype dt = DTS[t];
        struct gcase k = two("scatter multiply", TD_OP_scatter, rnd(dt, 2, SHAPE(3, 4), 0.5),
                             mk(TD_INT64, 2, SHAPE(2, 3), VALS(1, 1, 3, 0, 1, 1)), 2,
                             A(a_int("dim", 1), a_str("reduce", "multiply")));
        k.nin = 3;
        k.in[2] = rnd(dt, 2, SHAPE(3, 3), 0.5);
        run(k);
        /* Zeros in src: one alone at its destination, one sharing it, two sharing one. */
        k = two("scatter multiply zeros", TD_OP_scatter, rnd(dt, 2, SHAPE(2, 4), 0.5),
                mk(TD_INT64, 2, SHAPE(2, 4), VALS(0, 1, 1, 2, 3, 3, 3, 0)), 2,
                A(a_int("dim", -1), a_str("reduce", "multiply")));
        k.nin = 3;
        k.in[2] = with_zeros(rnd(dt, 2, SHAPE(2, 4), 0.5), 4, SHAPE(0, 1, 4, 5));
        k.first_only = true;
        run(k);
    }
}

/* Where src has zeros the multiply formula is exact but not differentiable again: refused
 * under create_graph, not a wrong second derivative. */
static void test_scatter_multiply_zeros_second_order_refused(void **state)
{
    (void)state;
    struct td_error err;
    struct td_tensor *x = rnd(TD_FLOAT64, 1, SHAPE(3), 0);
    struct td_tensor *src = mk(TD_FLOAT64, 1, SHAPE(2), VALS(0, 2));
    struct td_tensor *idx = mk(TD_INT64, 1, SHAPE(2), VALS(0, 0));
    assert_int_equal(td__ag_meta_ensure(src, &err), 0);
    src->ag->requires_grad = true;
    struct td_tensor *in[3] = {x, idx, src}, *y = NULL, *g = NULL;
    struct td_attr_arg a[2] = {a_int("dim", 0), a_str("reduce", "multiply")};
    assert_int_equal(td_ag_call(&sess, true, TD_OP_scatter, 3, in, 2, a, 1, &y, &err), 0);
    struct td_tensor *go = mk(TD_FLOAT64, 1, SHAPE(3), VALS(1, 1, 1));
    /* First order is fine: d/dsrc0 = x0 * src1 = 2 x0, d/dsrc1 = x0 * src0 = 0. */
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &src, true, false, false, &g, &err), 0);
    expect_vals_tol(g, TD_FLOAT64, 1, SHAPE(2), VALS(2 * val(x, 0), 0), 1e-15);
    td_tensor_release(g);
    g = NULL;
    assert_int_equal(td_ag_backward(&sess, 1, &y, &go, 1, &src, false, true, false, &g, &err),
                     TD_EUNIMPL);
    assert_non_null(strstr(err.msg, "multiply"));
    assert_null(g);
    td_tensor_release(go);
    td_tensor_release(y);
    td_tensor_release(idx);
    td_tensor_release(src);
    td_tensor_release(x);
}

int main(void)
{
    struct td_error err;
    if (td_ops_init(&err))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sum_mean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amax_amin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amax_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_var_std, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logsumexp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slicing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indexing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scatter_multiply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scatter_multiply_zeros_second_order_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
