/*
 * test_derivatives_ew.c - the VJP and JVP of every differentiable elementwise op against
 * float64 central finite differences, in float64 and (where the op takes complex) complex128,
 * by the generic checker of gradcheck.h at two random points per case: VJP (L =
 * Re(sum(conj(v) * f(x))), dL/dx + i dL/dy for a complex input), JVP, the two against each
 * other, and for smooth ops the second-order VJP and the gradient of the JVP's tangent
 * (reverse over forward).
 * Binary ops also run with broadcast operands, integer and Python-number (wrapped) operands.
 * Hand-computed cases cover what random points never hit: ties of maximum/minimum, pow at a
 * zero base, abs and angle at 0, relu and clamp at their kinks.
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------------------------------
 * Cases.
 */
enum in_kind {
    IN_X,      /* differentiable, uniform in [lo, hi] (+ i [ilo, ihi] for complex) */
    IN_XS,     /* differentiable, magnitude uniform in [lo, hi] with a random sign */
    IN_BOOL,   /* a random bool condition */
    IN_INT,    /* int64, uniform integers in [lo, hi] */
    IN_WRAP_F, /* a Python float lo (0-d wrapped number) */
    IN_WRAP_I, /* a Python int lo */
};

struct in_spec {
    enum in_kind kind;
    int ndim;
    int64_t shape[2];
    double lo, hi, ilo, ihi;
};

struct attr_spec {
    const char *name;
    char type; /* 'f' float, 'i' int, 'c' complex (v + i im) scalar; 'n' int, 's' str,
                * 'd' dtype */
    double v;
    const char *s;
    double im;
};

#define MAXIN 3
#define MAXN 8

struct ew_case {
    const char *name;
    enum td_op op;
    int nin;
    struct in_spec in[MAXIN];
    int nattrs;
    struct attr_spec attrs[2];
    enum td_dtype dt; /* dtype of the differentiable inputs */
    bool second;      /* check the second derivative too */
};

/* clang-format off */
#define SH6 2, {2, 3}
#define R(lo, hi) {IN_X, SH6, lo, hi, 0, 0}
#define RS(lo, hi) {IN_XS, SH6, lo, hi, 0, 0}
#define C(lo, hi, ilo, ihi) {IN_X, SH6, lo, hi, ilo, ihi}
#define R_ROW(lo, hi) {IN_X, 1, {3}, lo, hi, 0, 0}
#define R_COL(lo, hi) {IN_X, 2, {2, 1}, lo, hi, 0, 0}
#define RS_COL(lo, hi) {IN_XS, 2, {2, 1}, lo, hi, 0, 0}
#define C_ROW(lo, hi, ilo, ihi) {IN_X, 1, {3}, lo, hi, ilo, ihi}
#define R0(lo, hi) {IN_X, 0, {0}, lo, hi, 0, 0}
#define C0(lo, hi, ilo, ihi) {IN_X, 0, {0}, lo, hi, ilo, ihi}
#define COND {IN_BOOL, SH6, 0, 0, 0, 0}
#define INT(lo, hi) {IN_INT, SH6, lo, hi, 0, 0}
#define WRAP_F(v) {IN_WRAP_F, 0, {0}, v, v, 0, 0}
#define WRAP_I(v) {IN_WRAP_I, 0, {0}, v, v, 0, 0}

#define F64 TD_FLOAT64
#define C128 TD_COMPLEX128

#define NOA {0, 0, 0, NULL, 0}
#define ATTR(n, t, v, str, im) {n, t, v, str, im}
#define U1(nm, op, in0, dt, sec) {nm, TD_OP_##op, 1, {in0}, 0, {NOA, NOA}, dt, sec}
#define U1A(nm, op, in0, na, a0, a1, dt, sec) {nm, TD_OP_##op, 1, {in0}, na, {a0, a1}, dt, sec}
#define B2(nm, op, in0, in1, dt, sec) {nm, TD_OP_##op, 2, {in0, in1}, 0, {NOA, NOA}, dt, sec}
#define B2A(nm, op, in0, in1, a0, dt, sec) {nm, TD_OP_##op, 2, {in0, in1}, 1, {a0, NOA}, dt, sec}
#define T3(nm, in0, in1, in2, dt) {nm, TD_OP_where, 3, {in0, in1, in2}, 0, {NOA, NOA}, dt, false}

static const struct ew_case cases[] = {
    /* unary, real */
    U1("neg", neg, R(-2, 2), F64, false),
    U1("abs", abs, RS(0.3, 2), F64, false),
    U1("sign", sign, RS(0.3, 2), F64, false),
    U1("exp", exp, R(-2, 2), F64, true),
    U1("expm1", expm1, R(-2, 2), F64, true),
    U1("log", log, R(0.5, 3), F64, true),
    U1("log1p", log1p, R(-0.5, 2), F64, true),
    U1("log2", log2, R(0.5, 3), F64, true),
    U1("log10", log10, R(0.5, 3), F64, true),
    U1("sqrt", sqrt, R(0.5, 3), F64, true),
    U1("rsqrt", rsqrt, R(0.5, 3), F64, true),
    U1("sin", sin, R(-3, 3), F64, true),
    U1("cos", cos, R(-3, 3), F64, true),
    U1("tan", tan, R(-1.2, 1.2), F64, true),
    U1("asin", asin, R(-0.8, 0.8), F64, true),
    U1("acos", acos, R(-0.8, 0.8), F64, true),
    U1("atan", atan, R(-3, 3), F64, true),
    U1("sinh", sinh, R(-2, 2), F64, true),
    U1("cosh", cosh, R(-2, 2), F64, true),
    U1("tanh", tanh, R(-2, 2), F64, true),
    U1("asinh", asinh, R(-3, 3), F64, true),
    U1("acosh", acosh, R(1.5, 4), F64, true),
    U1("atanh", atanh, R(-0.8, 0.8), F64, true),
    U1("sigmoid", sigmoid, R(-4, 4), F64, true),
    U1("relu", relu, RS(0.2, 2), F64, false),
    U1("floor", floor, R(-3, 3), F64, false),
    U1("ceil", ceil, R(-3, 3), F64, false),
    U1("round", round, R(-3, 3), F64, false),
    U1A("round decimals=1", round, R(-3, 3), 1, ATTR("decimals", 'n', 1, NULL, 0), NOA, F64, false),
    U1("trunc", trunc, R(-3, 3), F64, false),
    U1A("clamp min max", clamp, R(-1, 1), 2, ATTR("min", 'f', -0.5, NULL, 0),
        ATTR("max", 'f', 0.5, NULL, 0), F64, false),
    U1A("clamp min", clamp, R(-1, 1), 1, ATTR("min", 'i', 0, NULL, 0), NOA, F64, false),
    U1A("clamp max", clamp, R(-1, 1), 1, ATTR("max", 'f', 0.25, NULL, 0), NOA, F64, false),
    U1("real", real, R(-2, 2), F64, false),
    U1("conj", conj, R(-2, 2), F64, false),
    U1("angle", angle, RS(0.3, 2), F64, false),
    U1A("cast f64->c128", cast, R(-2, 2), 1, ATTR("dtype", 'd', C128, NULL, 0), NOA, F64, false),
    U1A("cast f64->f64", cast, R(-2, 2), 1, ATTR("dtype", 'd', F64, NULL, 0), NOA, F64, false),
    /* unary, complex */
    U1("sin 0-d", sin, R0(-3, 3), F64, true),
    U1("neg c", neg, C(-2, 2, -2, 2), C128, false),
    U1("abs c", abs, C(-2, 2, -2, 2), C128, true),
    U1("exp c", exp, C(-2, 2, -2, 2), C128, true),
    U1("expm1 c", expm1, C(-2, 2, -2, 2), C128, true),
    U1("log c", log, C(0.5, 3, -1, 1), C128, true),
    U1("log1p c", log1p, C(-0.4, 2, -1, 1), C128, true),
    U1("log2 c", log2, C(0.5, 3, -1, 1), C128, true),
    U1("log10 c", log10, C(0.5, 3, -1, 1), C128, true),
    U1("sqrt c", sqrt, C(0.5, 3, -1, 1), C128, true),
    U1("rsqrt c", rsqrt, C(0.5, 3, -1, 1), C128, true),
    U1("sin c", sin, C(-3, 3, -1, 1), C128, true),
    U1("cos c", cos, C(-3, 3, -1, 1), C128, true),
    U1("tan c", tan, C(-1.2, 1.2, -0.5, 0.5), C128, true),
    U1("asin c", asin, C(-0.8, 0.8, -0.5, 0.5), C128, true),
    U1("acos c", acos, C(-0.8, 0.8, -0.5, 0.5), C128, true),
    U1("atan c", atan, C(-2, 2, -0.5, 0.5), C128, true),
    U1("sinh c", sinh, C(-2, 2, -1, 1), C128, true),
    U1("cosh c", cosh, C(-2, 2, -1, 1), C128, true),
    U1("tanh c", tanh, C(-1, 1, -0.5, 0.5), C128, true),
    U1("asinh c", asinh, C(-2, 2, -0.8, 0.8), C128, true),
    U1("acosh c", acosh, C(1.5, 3, -1, 1), C128, true),
    U1("acosh c, Re z < 0", acosh, C(-3, -1.5, 0.2, 1), C128, true),
    U1("atanh c", atanh, C(-0.8, 0.8, -0.5, 0.5), C128, true),
    U1("sigmoid c", sigmoid, C(-3, 3, -1, 1), C128, true),
    U1("real c", real, C(-2, 2, -2, 2), C128, false),
    U1("imag c", imag, C(-2, 2, -2, 2), C128, false),
    U1("conj c", conj, C(-2, 2, -2, 2), C128, false),
    U1("angle c", angle, C(-2, 2, -2, 2), C128, true),
    U1A("cast c128->f64", cast, C(-2, 2, -2, 2), 1, ATTR("dtype", 'd', F64, NULL, 0), NOA, C128,
        false),
    U1A("cast c128->c128", cast, C(-2, 2, -2, 2), 1, ATTR("dtype", 'd', C128, NULL, 0), NOA, C128,
        false),
    /* binary, real */
    B2("add", add, R(-2, 2), R(-2, 2), F64, false),
    B2("sub", sub, R(-2, 2), R(-2, 2), F64, false),
    B2("sub broadcast", sub, R_ROW(-2, 2), R_COL(-2, 2), F64, false),
    B2A("sub alpha", sub, R(-2, 2), R_ROW(-2, 2), ATTR("alpha", 'f', 2.5, NULL, 0), F64, false),
    B2("mul broadcast", mul, R(-2, 2), R_ROW(-2, 2), F64, true),
    B2("div", div, R(-2, 2), RS(0.5, 2), F64, true),
    B2("div broadcast", div, R_ROW(-2, 2), RS_COL(0.5, 2), F64, true),
    B2("div int numerator", div, INT(-3, 3), RS(0.5, 2), F64, true),
    B2("div by Python float", div, R(-2, 2), WRAP_F(0.75), F64, false),
    B2A("div floor", div, R(-3, 3), RS(0.5, 2), ATTR("rounding_mode", 's', 0, "floor", 0), F64,
        false),
    B2A("div trunc", div, R(-3, 3), RS(0.5, 2), ATTR("rounding_mode", 's', 0, "trunc", 0), F64,
        false),
    B2("div 0-d divisor", div, R(-2, 2), R0(0.5, 2), F64, true),
    B2("remainder", remainder, R(-3, 3), RS(0.5, 2), F64, false),
    B2("remainder broadcast", remainder, R_ROW(-3, 3), RS_COL(0.5, 2), F64, false),
    B2("pow", pow, R(0.5, 2), R(-2, 2), F64, true),
    B2("pow broadcast", pow, R_ROW(0.5, 2), R_COL(-2, 2), F64, true),
    B2("pow int exponent", pow, R(-2, 2), INT(-1, 3), F64, true),
    B2("pow Python float exponent", pow, R(0.5, 2), WRAP_F(2.5), F64, true),
    B2("pow Python int exponent", pow, R(-2, 2), WRAP_I(3), F64, true),
    B2("pow Python float base", pow, WRAP_F(1.5), R(-2, 2), F64, true),
    B2("atan2", atan2, RS(0.3, 2), RS(0.3, 2), F64, true),
    B2("atan2 broadcast", atan2, R_ROW(-2, 2), RS_COL(0.3, 2), F64, true),
    B2("maximum", maximum, R(-2, 2), R(-2, 2), F64, false),
    B2("maximum broadcast", maximum, R_ROW(-2, 2), R_COL(-2, 2), F64, false),
    B2("minimum", minimum, R(-2, 2), R(-2, 2), F64, false),
    B2("minimum broadcast", minimum, R_COL(-2, 2), R_ROW(-2, 2), F64, false),
    B2("maximum 0-d", maximum, R0(-2, 2), R0(-2, 2), F64, false),
    B2("atan2 0-d", atan2, R0(0.5, 2), R(-2, 2), F64, true),
    B2("maximum int operand", maximum, R(-2, 2), INT(-2, 2), F64, false),
    T3("where", COND, R(-2, 2), R(-2, 2), F64),
    T3("where broadcast", COND, R_ROW(-2, 2), R_COL(-2, 2), F64),
    T3("where Python float", COND, R(-2, 2), WRAP_F(0.5), F64),
    /* binary, complex */
    B2A("add c alpha", add, C(-2, 2, -2, 2), C(-2, 2, -2, 2), ATTR("alpha", 'c', 1.5, NULL, -0.5),
        C128, false),
    B2A("sub c alpha", sub, C(-2, 2, -2, 2), C_ROW(-2, 2, -2, 2), ATTR("alpha", 'c', -1.5, NULL, 2),
        C128, false),
    B2("mul c", mul, C(-2, 2, -2, 2), C_ROW(-2, 2, -2, 2), C128, true),
    B2("div c", div, C(-2, 2, -2, 2), C(0.5, 2, 0.5, 2), C128, true),
    B2("div c broadcast", div, C_ROW(-2, 2, -2, 2), C(0.5, 2, -2, -0.5), C128, true),
    B2("pow c", pow, C(0.5, 2, -1, 1), C(-1, 2, -0.5, 0.5), C128, true),
    B2("pow c int exponent", pow, C(0.5, 2, -1, 1), INT(-1, 3), C128, true),
    B2("pow c 0-d exponent", pow, C(0.5, 2, -1, 1), C0(-1, 2, -0.5, 0.5), C128, true),
    B2("pow c Python int exponent", pow, C(-2, 2, -2, 2), WRAP_I(2), C128, true),
    T3("where c", COND, C(-2, 2, -2, 2), C_ROW(-2, 2, -2, 2), C128),
};
/* clang-format on */

/* ---------------------------------------------------------------------------------------
 * A problem instance: the values of the inputs at the base point.
 */
static uint64_t rng_state;

static double urand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * urand();
}

struct inst {
    const struct ew_case *c;
    int64_t n[MAXIN];
    double complex x[MAXIN][MAXN];
};

static bool is_diff(const struct ew_case *c, int i)
{
    return c->in[i].kind == IN_X || c->in[i].kind == IN_XS;
}

static bool cplx(enum td_dtype dt)
{
    return td_dtype_is_complex(dt);
}

static void inst_init(struct inst *p, const struct ew_case *c)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    for (int i = 0; i < c->nin; i++) {
        const struct in_spec *s = &c->in[i];
        int64_t n = 1;
        for (int d = 0; d < s->ndim; d++)
            n *= s->shape[d];
        assert_true(n <= MAXN);
        p->n[i] = n;
        for (int64_t k = 0; k < n; k++) {
            double re = uniform(s->lo, s->hi), im = 0;
            switch (s->kind) {
            case IN_XS:
                re = urand() < 0.5 ? -re : re;
                break;
            case IN_BOOL:
                re = urand() < 0.5 ? 0 : 1;
                break;
            case IN_INT:
                re = floor(uniform(s->lo, s->hi + 1));
                if (re > s->hi)
                    re = s->hi;
                break;
            case IN_WRAP_F:
            case IN_WRAP_I:
                re = s->lo;
                break;
            default:
                break;
            }
            if (is_diff(c, i) && cplx(c->dt))
                im = uniform(s->ilo, s->ihi);
            p->x[i][k] = CMPLX(re, im);
        }
    }
}

static struct td_tensor *tensor_c(enum td_dtype dt, int ndim, const int64_t *shape,
                                  const double complex *v)
{
    struct td_tensor *t = gc_zeros(dt, ndim, shape);
    for (int64_t k = 0; k < td_tensor_numel(t); k++)
        cset(t, k, v[k]);
    return t;
}

static void read_c(const struct td_tensor *t, double complex *out)
{
    int64_t n = td_tensor_numel(t);
    assert_true(n <= MAXN);
    for (int64_t k = 0; k < n; k++)
        out[k] = td__load_c128(elem(t, k), t->dtype);
}

/* Input i of p with values v (an owned tensor). */
static struct td_tensor *make_input(const struct inst *p, int i, const double complex *v)
{
    const struct in_spec *s = &p->c->in[i];
    switch (s->kind) {
    case IN_X:
    case IN_XS:
        return tensor_c(p->c->dt, s->ndim, s->shape, v);
    case IN_BOOL:
        return tensor_c(TD_BOOL, s->ndim, s->shape, v);
    case IN_INT:
        return tensor_c(TD_INT64, s->ndim, s->shape, v);
    default: {
        /* A Python number, as the client sends it: scalar_tensor with wrapped. */
        struct td_attr_arg a[2] = {s->kind == IN_WRAP_F
                                       ? a_scalar("value", TD_SCALAR_FLOAT, s->lo, 0)
                                       : a_scalar("value", TD_SCALAR_INT, s->lo, 0),
                                   a_bool("wrapped", true)};
        return run1(TD_OP_scalar_tensor, 0, NULL, 2, a);
    }
    }
}

static int case_attrs(const struct ew_case *c, struct td_attr_arg *a)
{
    for (int k = 0; k < c->nattrs; k++) {
        const struct attr_spec *s = &c->attrs[k];
        switch (s->type) {
        case 'f':
            a[k] = a_scalar(s->name, TD_SCALAR_FLOAT, s->v, 0);
            break;
        case 'i':
            a[k] = a_scalar(s->name, TD_SCALAR_INT, s->v, 0);
            break;
        case 'c':
            a[k] = a_scalar(s->name, TD_SCALAR_COMPLEX, s->v, s->im);
            break;
        case 'n':
            a[k] = a_int(s->name, (int64_t)s->v);
            break;
        case 's':
            a[k] = a_str(s->name, s->s);
            break;
        default:
            a[k] = a_dtype(s->name, (enum td_dtype)s->v);
            break;
        }
    }
    return c->nattrs;
}

/* The checks of gradcheck.h at p's point: the bool, integer and Python-number inputs are
 * held constant; every differentiable input must be used, and for second-order cases the
 * gradients and the tangent must carry history. */
static void check_inst(const struct inst *p)
{
    const struct ew_case *c = p->c;
    struct gcase k;
    memset(&k, 0, sizeof k);
    k.name = c->name;
    k.op = c->op;
    k.nin = c->nin;
    for (int i = 0; i < c->nin; i++) {
        k.in[i] = make_input(p, i, p->x[i]);
        if (!is_diff(c, i))
            k.nodiff |= 1u << i;
    }
    k.na = case_attrs(c, k.a);
    k.nout = 1;
    k.first_only = !c->second;
    k.strict = true;
    gc_check(&k);
}

static void test_case(void **state)
{
    const struct ew_case *c = *state;
    struct inst p;
    rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)(c - cases) * 0x2545f4914f6cdd1dull;
    gc_rng_state = rng_state;
    for (int round = 0; round < 2; round++) {
        inst_init(&p, c);
        check_inst(&p);
    }
}

/* ---------------------------------------------------------------------------------------
 * Hand-computed points the random ones never hit.
 */
static struct td_tensor *leaf_vals(enum td_dtype dt, int n, const double complex *v)
{
    struct td_error err;
    struct td_tensor *t = tensor_c(dt, 1, (int64_t[]){n}, v);
    assert_int_equal(td__ag_meta_ensure(t, &err), 0);
    t->ag->requires_grad = true;
    return t;
}

/* Gradients of sum(op(in...)) (each input a leaf of 3 elements, or a plain tensor when
 * leaf[i] is false) compared with want[i][]. */
static void expect_grads(enum td_op op, int nin, struct td_tensor **in, int na,
                         const struct td_attr_arg *a, int nw, struct td_tensor **wrt,
                         const double complex want[][3])
{
    struct td_tensor *y = NULL, *s = NULL, *g[3] = {0};
    struct td_error err;
    assert_int_equal(td_ag_call(&sess, true, op, nin, in, na, a, 1, &y, &err), 0);
    struct td_tensor *yr = y;
    if (td_dtype_is_complex(y->dtype))
        assert_int_equal(td_ag_call(&sess, true, TD_OP_real, 1, &y, 0, NULL, 1, &yr, &err), 0);
    assert_int_equal(td_ag_call(&sess, true, TD_OP_sum, 1, &yr, 0, NULL, 1, &s, &err), 0);
    if (td_ag_backward(&sess, 1, &s, NULL, nw, wrt, false, false, false, g, &err))
        fail_msg("%s: %s", td_op_info_get(op)->name, err.msg);
    for (int w = 0; w < nw; w++) {
        double complex got[MAXN];
        read_c(g[w], got);
        for (int k = 0; k < 3; k++)
            if (got[k] != want[w][k] &&
                !(cabs(got[k] - want[w][k]) <= 1e-14 * (1 + cabs(want[w][k]))))
                fail_msg("%s: input %d element %d: got %.17g%+.17gi, want %.17g%+.17gi",
                         td_op_info_get(op)->name, w, k, creal(got[k]), cimag(got[k]),
                         creal(want[w][k]), cimag(want[w][k]));
    }
    release_all(g, nw);
    td_tensor_release(s);
    if (yr != y)
        td_tensor_release(yr);
    td_tensor_release(y);
}

static void test_minmax_ties(void **state)
{
    (void)state;
    struct td_tensor *a = leaf_vals(TD_FLOAT64, 3, (double complex[]){1, 2, 3});
    struct td_tensor *b = leaf_vals(TD_FLOAT64, 3, (double complex[]){1, 5, 0});
    struct td_tensor *in[2] = {a, b};
    expect_grads(TD_OP_maximum, 2, in, 0, NULL, 2, in,
                 (const double complex[][3]){{0.5, 0, 1}, {0.5, 1, 0}});
    expect_grads(TD_OP_minimum, 2, in, 0, NULL, 2, in,
                 (const double complex[][3]){{0.5, 1, 0}, {0.5, 0, 1}});
    release_all(in, 2);
}

/* pow(a, e) at a = 0: d/da is 0 where e = 0 and e 0^(e-1) otherwise; d/de is 0 where a = 0
 * and e >= 0 (PyTorch masks the 0 * log 0 there). */
static void test_pow_zero_base(void **state)
{
    (void)state;
    struct td_tensor *a = leaf_vals(TD_FLOAT64, 3, (double complex[]){0, 0, 2});
    struct td_tensor *e = leaf_vals(TD_FLOAT64, 3, (double complex[]){0, 2, 3});
    struct td_tensor *in[2] = {a, e};
    expect_grads(TD_OP_pow, 2, in, 0, NULL, 2, in,
                 (const double complex[][3]){{0, 0, 12}, {0, 0, 8 * M_LN2}});
    release_all(in, 2);
    /* e = 1 at a = 0: d/da = 1 * 0^0 = 1. */
    a = leaf_vals(TD_FLOAT64, 3, (double complex[]){0, 0, 0});
    e = leaf_vals(TD_FLOAT64, 3, (double complex[]){1, 0.5, 3});
    in[0] = a;
    in[1] = e;
    expect_grads(TD_OP_pow, 2, in, 0, NULL, 1, in, (const double complex[][3]){{1, INFINITY, 0}});
    release_all(in, 2);
}

/* abs, angle and relu at 0, clamp at its bounds: the subgradients PyTorch picks. */
static void test_kinks(void **state)
{
    (void)state;
    struct td_tensor *x = leaf_vals(TD_FLOAT64, 3, (double complex[]){0, -2, 3});
    expect_grads(TD_OP_abs, 1, &x, 0, NULL, 1, &x, (const double complex[][3]){{0, -1, 1}});
    expect_grads(TD_OP_relu, 1, &x, 0, NULL, 1, &x, (const double complex[][3]){{0, 0, 1}});
    expect_grads(TD_OP_angle, 1, &x, 0, NULL, 1, &x, (const double complex[][3]){{0, 0, 0}});
    td_tensor_release(x);

    x = leaf_vals(TD_FLOAT64, 3, (double complex[]){-1, 0.5, 0.7});
    struct td_attr_arg a[2] = {a_scalar("min", TD_SCALAR_FLOAT, -1, 0),
                               a_scalar("max", TD_SCALAR_FLOAT, 0.5, 0)};
    expect_grads(TD_OP_clamp, 1, &x, 2, a, 1, &x, (const double complex[][3]){{1, 1, 0}});
    td_tensor_release(x);

    /* Complex: abs at 0 has gradient 0, elsewhere z / |z|; angle at 0 also 0, elsewhere
     * i z / |z|^2 (for angle(3 + 4i): (-4 + 3i) / 25). */
    x = leaf_vals(TD_COMPLEX128, 3, (double complex[]){0, CMPLX(3, 4), CMPLX(0, -2)});
    expect_grads(TD_OP_abs, 1, &x, 0, NULL, 1, &x,
                 (const double complex[][3]){{0, CMPLX(0.6, 0.8), CMPLX(0, -1)}});
    expect_grads(TD_OP_angle, 1, &x, 0, NULL, 1, &x,
                 (const double complex[][3]){{0, CMPLX(-0.16, 0.12), CMPLX(0.5, 0)}});
    td_tensor_release(x);
}

/* Zero-gradient ops give explicit zeros, so autograd.grad reports 0 and not "unused". */
static void test_zero_grads(void **state)
{
    (void)state;
    struct td_tensor *x = leaf_vals(TD_FLOAT64, 3, (double complex[]){-1.5, 0.2, 2.7});
    const enum td_op ops[] = {TD_OP_sign, TD_OP_floor, TD_OP_ceil, TD_OP_round, TD_OP_trunc};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        expect_grads(ops[k], 1, &x, 0, NULL, 1, &x, (const double complex[][3]){{0, 0, 0}});
    struct td_tensor *d = leaf_vals(TD_FLOAT64, 3, (double complex[]){2, -3, 0.5});
    struct td_tensor *in[2] = {x, d};
    struct td_attr_arg rm = a_str("rounding_mode", "floor");
    expect_grads(TD_OP_div, 2, in, 1, &rm, 2, in,
                 (const double complex[][3]){{0, 0, 0}, {0, 0, 0}});
    release_all(in, 2);
}

/* cast to float32 and back: the gradient is cast back to the input's dtype. */
static void test_cast_float32(void **state)
{
    (void)state;
    struct td_tensor *x = leaf_vals(TD_FLOAT64, 3, (double complex[]){1, 2, 3});
    struct td_tensor *w = tensor_c(TD_FLOAT32, 1, (int64_t[]){3}, (double complex[]){0.5, -2, 4});
    struct td_attr_arg a = a_dtype("dtype", TD_FLOAT32);
    struct td_tensor *y = NULL, *p = NULL, *s = NULL, *g = NULL;
    struct td_error err;
    assert_int_equal(td_ag_call(&sess, true, TD_OP_cast, 1, &x, 1, &a, 1, &y, &err), 0);
    struct td_tensor *in[2] = {y, w};
    assert_int_equal(td_ag_call(&sess, true, TD_OP_mul, 2, in, 0, NULL, 1, &p, &err), 0);
    assert_int_equal(td_ag_call(&sess, true, TD_OP_sum, 1, &p, 0, NULL, 1, &s, &err), 0);
    assert_int_equal(td_ag_backward(&sess, 1, &s, NULL, 1, &x, false, false, false, &g, &err), 0);
    expect_vals(g, TD_FLOAT64, 1, SHAPE(3), VALS(0.5, -2, 4));
    td_tensor_release(g);
    td_tensor_release(s);
    td_tensor_release(p);
    td_tensor_release(y);
    td_tensor_release(w);
    td_tensor_release(x);
}

#define NCASES (sizeof cases / sizeof cases[0])

int main(void)
{
    static struct CMUnitTest tests[NCASES + 5];
    size_t n = 0;
    for (size_t k = 0; k < NCASES; k++) {
        tests[n].name = cases[k].name;
        tests[n].test_func = test_case;
        tests[n].setup_func = ag_setup;
        tests[n].teardown_func = ag_teardown;
        tests[n].initial_state = (void *)&cases[k];
        n++;
    }
    const struct CMUnitTest fixed[] = {
        AG_TEST(test_minmax_ties), AG_TEST(test_pow_zero_base), AG_TEST(test_kinks),
        AG_TEST(test_zero_grads),  AG_TEST(test_cast_float32),
    };
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        tests[n++] = fixed[k];
    return ag_run_tests("derivatives_ew", tests, n);
}
