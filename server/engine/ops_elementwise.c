/*
 * ops_elementwise.c - the "elementwise unary" and "elementwise binary and ternary" sections
 * of ops.def, with PyTorch's dtype rules.
 *
 * Every op computes in one of four categories chosen from its compute dtype:
 *   INT    bool and integers, as int64 (results wrap to the output's width when stored,
 *          which equals computing in the narrow type with two's complement wrap-around);
 *   FLOAT  float16..float64, as double. Inputs are first rounded to the compute dtype, so
 *          float32 ops see exactly the operands PyTorch sees; for + - * / sqrt the double
 *          result rounded once to float32/float16 is the correctly rounded narrow result
 *          (double has more than 2p+2 bits), so it matches computing in the narrow type;
 *   COMPLEX complex64/complex128, as double complex with <complex.h>;
 *   TRUTH  logical ops: every input read as a truth value.
 * A generic path loads and stores through td__load_* / td__store_*; the hot binary ops
 * (add, sub, mul, div and comparisons on float32, float64, int32, int64) have typed loops,
 * and so have unary float ops on float32 -> float32 and float64 -> float64. Large tensors are
 * split over the engine's threads by td_iter_run, so loops write the context only atomically.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "td_internal.h"

enum cat { CAT_INT, CAT_FLOAT, CAT_COMPLEX, CAT_TRUTH };

/* Errors a kernel can hit on data; reported after the loop. */
enum { EW_OK, EW_DIV_ZERO, EW_NEG_POW };

struct ew_ctx {
    enum td_op op;
    enum td_dtype out_dt;
    enum td_dtype cdt;               /* compute dtype */
    enum td_dtype in_dt[3];
    int nin;
    enum cat cat;
    int width;                       /* bits of cdt, for shifts */
    int64_t alpha_i;
    double alpha_f;
    double complex alpha_c;
    bool has_alpha;
    int rounding;                    /* div: 0 true, 1 trunc, 2 floor */
    int64_t decimals;
    bool has_lo, has_hi;
    int64_t lo_i, hi_i;
    double lo_f, hi_f;
    _Atomic int errflag;             /* loops may run on several threads at once */
    const struct ew_fns *fns;
};

typedef int64_t (*fn_i1)(int64_t, struct ew_ctx *);
typedef double (*fn_f1)(double, struct ew_ctx *);
typedef double complex (*fn_c1)(double complex, struct ew_ctx *);
typedef int64_t (*fn_i2)(int64_t, int64_t, struct ew_ctx *);
typedef double (*fn_f2)(double, double, struct ew_ctx *);
typedef double complex (*fn_c2)(double complex, double complex, struct ew_ctx *);

struct ew_fns {
    fn_i1 i1;
    fn_f1 f1;
    fn_c1 c1;
    fn_i2 i2;
    fn_f2 f2;
    fn_c2 c2;
};

static enum cat cat_of(enum td_dtype dt)
{
    if (td_dtype_is_complex(dt))
        return CAT_COMPLEX;
    if (td_dtype_is_floating(dt))
        return CAT_FLOAT;
    return CAT_INT;
}

/* ---------------------------------------------------------------------------------------
 * Scalar functions. x is the context (attributes, error flag).
 */
#define I1(name, expr)                                        \
    static int64_t name(int64_t a, struct ew_ctx *x)          \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }
#define F1(name, expr)                                        \
    static double name(double a, struct ew_ctx *x)            \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }
#define C1(name, expr)                                        \
    static double complex name(double complex a, struct ew_ctx *x) \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }
#define I2(name, expr)                                        \
    static int64_t name(int64_t a, int64_t b, struct ew_ctx *x) \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }
#define F2(name, expr)                                        \
    static double name(double a, double b, struct ew_ctx *x)  \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }
#define C2(name, expr)                                        \
    static double complex name(double complex a, double complex b, struct ew_ctx *x) \
    {                                                         \
        (void)x;                                              \
        return (expr);                                        \
    }

/* Wrapping int64 arithmetic (two's complement, no undefined overflow). */
static int64_t wrap_u(uint64_t v)
{
    return (int64_t)v;
}

I1(i_neg, wrap_u(-(uint64_t)a))
F1(f_neg, -a)
C1(c_neg, -a)
I1(i_abs, a < 0 ? wrap_u(-(uint64_t)a) : a)
F1(f_abs, fabs(a))
C1(c_abs, CMPLX(cabs(a), 0))
I1(i_sign, (a > 0) - (a < 0))
F1(f_sign, isnan(a) ? a : (double)((a > 0) - (a < 0)))

/* NumPy 2's np.sign of a complex number: z / |z|, 0 for 0; NaN + NaN i when |z| is NaN;
 * for an infinite |z| the direction of the infinite part (NaN + NaN i when both are). */
static double complex c_sign(double complex a, struct ew_ctx *x)
{
    (void)x;
    double re = creal(a), im = cimag(a), r = hypot(re, im);
    if (isnan(r) || (isinf(re) && isinf(im)))
        return CMPLX(NAN, NAN);
    if (isinf(re))
        return CMPLX(re > 0 ? 1.0 : -1.0, 0.0);
    if (isinf(im))
        return CMPLX(0.0, im > 0 ? 1.0 : -1.0);
    if (r == 0)
        return CMPLX(0.0, 0.0);
    return CMPLX(re / r, im / r);
}
I1(i_id, a)
F1(f_id, a)
F1(f_exp, exp(a))
C1(c_exp, cexp(a))
F1(f_expm1, expm1(a))
C1(c_expm1, cexp(a) - 1.0)
F1(f_log, log(a))
C1(c_log, clog(a))
F1(f_log1p, log1p(a))
C1(c_log1p, clog(1.0 + a))
F1(f_log2, log2(a))
C1(c_log2, clog(a) / M_LN2)
F1(f_log10, log10(a))
C1(c_log10, clog(a) / M_LN10)
F1(f_sqrt, sqrt(a))
C1(c_sqrt, csqrt(a))
F1(f_rsqrt, 1.0 / sqrt(a))
C1(c_rsqrt, 1.0 / csqrt(a))
F1(f_sin, sin(a))
C1(c_sin, csin(a))
F1(f_cos, cos(a))
C1(c_cos, ccos(a))
F1(f_tan, tan(a))
C1(c_tan, ctan(a))
F1(f_asin, asin(a))
C1(c_asin, casin(a))
F1(f_acos, acos(a))
C1(c_acos, cacos(a))
F1(f_atan, atan(a))
C1(c_atan, catan(a))
F1(f_sinh, sinh(a))
C1(c_sinh, csinh(a))
F1(f_cosh, cosh(a))
C1(c_cosh, ccosh(a))
F1(f_tanh, tanh(a))
C1(c_tanh, ctanh(a))
F1(f_asinh, asinh(a))
C1(c_asinh, casinh(a))
F1(f_acosh, acosh(a))
C1(c_acosh, cacosh(a))
F1(f_atanh, atanh(a))
C1(c_atanh, catanh(a))
F1(f_sigmoid, 1.0 / (1.0 + exp(-a)))
C1(c_sigmoid, 1.0 / (1.0 + cexp(-a)))
I1(i_relu, a > 0 ? a : 0)
F1(f_relu, isnan(a) ? a : (a > 0 ? a : 0.0))
F1(f_floor, floor(a))
F1(f_ceil, ceil(a))
F1(f_trunc, trunc(a))
C1(c_real, CMPLX(creal(a), 0))
C1(c_imag, CMPLX(cimag(a), 0))
C1(c_conj, conj(a))
F1(f_angle, isnan(a) ? a : (a < 0 ? M_PI : 0.0))
C1(c_angle, CMPLX(carg(a), 0))
I1(i_lnot, !a)
I1(i_false, 0 * a)
I1(i_true, 1 + 0 * a)
F1(f_isnan, isnan(a) ? 1.0 : 0.0)
C1(c_isnan, (isnan(creal(a)) || isnan(cimag(a))) ? 1.0 : 0.0)
F1(f_isinf, isinf(a) ? 1.0 : 0.0)
C1(c_isinf, (isinf(creal(a)) || isinf(cimag(a))) ? 1.0 : 0.0)
F1(f_isfinite, isfinite(a) ? 1.0 : 0.0)
C1(c_isfinite, (isfinite(creal(a)) && isfinite(cimag(a))) ? 1.0 : 0.0)

static int64_t i_bnot(int64_t a, struct ew_ctx *x)
{
    return x->cdt == TD_BOOL ? !a : ~a;
}

static double pow10_int(int64_t d)
{
    return pow(10.0, (double)d);
}

/* numpy.round: scale by 10^decimals, round half to even, scale back. float32 and the half
 * types scale in float32 like NumPy and PyTorch do. */
static double f_round(double a, struct ew_ctx *x)
{
    int64_t d = x->decimals;
    if (d == 0)
        return nearbyint(a);
    if (x->cdt != TD_FLOAT64) {
        float fa = (float)a;
        if (d > 0) {
            float s = (float)pow10_int(d);
            return (double)(nearbyintf(fa * s) / s);
        }
        float s = (float)pow10_int(-d);
        return (double)(nearbyintf(fa / s) * s);
    }
    if (d > 0) {
        double s = pow10_int(d);
        return nearbyint(a * s) / s;
    }
    double s = pow10_int(-d);
    return nearbyint(a / s) * s;
}

static int64_t i_round(int64_t a, struct ew_ctx *x)
{
    if (x->decimals >= 0)
        return a;
    if (x->decimals < -18)
        return 0;
    int64_t s = 1;
    for (int64_t k = 0; k < -x->decimals; k++)
        s *= 10;
    /* Round half to even on the quotient, like numpy.round on integers. */
    int64_t q = a / s, r = a % s;
    if (r < 0) {
        r += s;
        q -= 1;
    }
    if (2 * r > s || (2 * r == s && (q & 1)))
        q += 1;
    return wrap_u((uint64_t)q * (uint64_t)s);
}

static int64_t i_clamp(int64_t a, struct ew_ctx *x)
{
    if (x->has_lo && a < x->lo_i)
        a = x->lo_i;
    if (x->has_hi && a > x->hi_i)
        a = x->hi_i;
    return a;
}

static double f_clamp(double a, struct ew_ctx *x)
{
    if ((x->has_lo && isnan(x->lo_f)) || (x->has_hi && isnan(x->hi_f)))
        return NAN;
    if (x->has_lo && a < x->lo_f)
        a = x->lo_f;
    if (x->has_hi && a > x->hi_f)
        a = x->hi_f;
    return a;
}

/* Binary. */
static int64_t i_add(int64_t a, int64_t b, struct ew_ctx *x)
{
    uint64_t bb = (uint64_t)b;
    if (x->has_alpha)
        bb *= (uint64_t)x->alpha_i;
    return wrap_u((uint64_t)a + bb);
}

static double f_add(double a, double b, struct ew_ctx *x)
{
    return x->has_alpha ? a + x->alpha_f * b : a + b;
}

static double complex c_add(double complex a, double complex b, struct ew_ctx *x)
{
    return x->has_alpha ? a + x->alpha_c * b : a + b;
}

static int64_t i_sub(int64_t a, int64_t b, struct ew_ctx *x)
{
    uint64_t bb = (uint64_t)b;
    if (x->has_alpha)
        bb *= (uint64_t)x->alpha_i;
    return wrap_u((uint64_t)a - bb);
}

static double f_sub(double a, double b, struct ew_ctx *x)
{
    return x->has_alpha ? a - x->alpha_f * b : a - b;
}

static double complex c_sub(double complex a, double complex b, struct ew_ctx *x)
{
    return x->has_alpha ? a - x->alpha_c * b : a - b;
}

I2(i_mul, wrap_u((uint64_t)a * (uint64_t)b))
F2(f_mul, a *b)
C2(c_mul, a *b)
C2(c_div, a / b)

/* Truncating integer division; division by zero flags an error instead of trapping. */
static int64_t i_div_trunc(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b == 0) {
        atomic_store_explicit(&x->errflag, EW_DIV_ZERO, memory_order_relaxed);
        return 0;
    }
    if (b == -1)
        return wrap_u(-(uint64_t)a);
    return a / b;
}

/* Python floor division. */
static int64_t i_div_floor(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b == 0) {
        atomic_store_explicit(&x->errflag, EW_DIV_ZERO, memory_order_relaxed);
        return 0;
    }
    if (b == -1)
        return wrap_u(-(uint64_t)a);
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Python modulo: the result has the divisor's sign. */
static int64_t i_rem(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b == 0) {
        atomic_store_explicit(&x->errflag, EW_DIV_ZERO, memory_order_relaxed);
        return 0;
    }
    if (b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

/* NumPy's npy_divmod floor quotient (numpy/core/src/npymath/npy_math_internal.h.src). */
static double f_div_floor(double a, double b, struct ew_ctx *x)
{
    (void)x;
    if (b == 0)
        return a / b;
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0)))
        div -= 1.0;
    double fl;
    if (div != 0) {
        fl = floor(div);
        if (div - fl > 0.5)
            fl += 1.0;
    } else {
        fl = copysign(0.0, a / b);
    }
    return fl;
}

static double f_div(double a, double b, struct ew_ctx *x)
{
    if (x->rounding == 1)
        return trunc(a / b);
    if (x->rounding == 2)
        return f_div_floor(a, b, x);
    return a / b;
}

static int64_t i_div(int64_t a, int64_t b, struct ew_ctx *x)
{
    return x->rounding == 1 ? i_div_trunc(a, b, x) : i_div_floor(a, b, x);
}

/* NumPy's npy_remainder: fmod with the result moved to the divisor's sign. */
static double f_rem(double a, double b, struct ew_ctx *x)
{
    (void)x;
    double mod = fmod(a, b);
    if (b == 0)
        return mod;
    if (mod != 0) {
        if ((b < 0) != (mod < 0))
            mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

/* Exact integer power by repeated squaring (wrapping like the narrow type would). */
static int64_t i_pow(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b < 0) {
        atomic_store_explicit(&x->errflag, EW_NEG_POW, memory_order_relaxed);
        return 0;
    }
    uint64_t base = (uint64_t)a, r = 1;
    uint64_t e = (uint64_t)b;
    while (e) {
        if (e & 1)
            r *= base;
        base *= base;
        e >>= 1;
    }
    return wrap_u(r);
}

F2(f_pow, pow(a, b))

static double complex c_pow(double complex a, double complex b, struct ew_ctx *x)
{
    (void)x;
    if (b == 0)
        return 1.0;
    if (a == 0 && cimag(b) == 0 && creal(b) > 0)
        return 0.0;
    return cpow(a, b);
}

F2(f_atan2, atan2(a, b))
I2(i_max, a > b ? a : b)
I2(i_min, a < b ? a : b)
F2(f_max, (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b))
F2(f_min, (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b))
I2(i_eq, a == b)
F2(f_eq, a == b ? 1.0 : 0.0)
C2(c_eq, a == b ? 1.0 : 0.0)
I2(i_ne, a != b)
F2(f_ne, a != b ? 1.0 : 0.0)
C2(c_ne, a != b ? 1.0 : 0.0)
I2(i_lt, a < b)
F2(f_lt, a < b ? 1.0 : 0.0)
I2(i_le, a <= b)
F2(f_le, a <= b ? 1.0 : 0.0)
I2(i_gt, a > b)
F2(f_gt, a > b ? 1.0 : 0.0)
I2(i_ge, a >= b)
F2(f_ge, a >= b ? 1.0 : 0.0)
I2(i_land, a && b)
I2(i_lor, a || b)
I2(i_lxor, (!a) != (!b))
I2(i_band, a &b)
I2(i_bor, a | b)
I2(i_bxor, a ^ b)

static int64_t i_shl(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b < 0 || b >= x->width)
        return 0;
    return wrap_u((uint64_t)a << b);
}

/* Like torch: a negative shift count, or one of the width or more, shifts every bit out,
 * leaving the sign fill (-1 for negative a, else 0). */
static int64_t i_shr(int64_t a, int64_t b, struct ew_ctx *x)
{
    if (b < 0 || b >= x->width)
        return a < 0 ? -1 : 0;
    return a >> b;
}

/* The functions of each op, by category. */
static const struct ew_fns *fns_for(enum td_op op)
{
#define U(i, f, c)                                  \
    do {                                            \
        static const struct ew_fns s = {i, f, c, NULL, NULL, NULL}; \
        return &s;                                  \
    } while (0)
#define B(i, f, c)                                  \
    do {                                            \
        static const struct ew_fns s = {NULL, NULL, NULL, i, f, c}; \
        return &s;                                  \
    } while (0)
    switch (op) {
    case TD_OP_neg: U(i_neg, f_neg, c_neg);
    case TD_OP_abs: U(i_abs, f_abs, c_abs);
    case TD_OP_sign: U(i_sign, f_sign, c_sign);
    case TD_OP_exp: U(NULL, f_exp, c_exp);
    case TD_OP_expm1: U(NULL, f_expm1, c_expm1);
    case TD_OP_log: U(NULL, f_log, c_log);
    case TD_OP_log1p: U(NULL, f_log1p, c_log1p);
    case TD_OP_log2: U(NULL, f_log2, c_log2);
    case TD_OP_log10: U(NULL, f_log10, c_log10);
    case TD_OP_sqrt: U(NULL, f_sqrt, c_sqrt);
    case TD_OP_rsqrt: U(NULL, f_rsqrt, c_rsqrt);
    case TD_OP_sin: U(NULL, f_sin, c_sin);
    case TD_OP_cos: U(NULL, f_cos, c_cos);
    case TD_OP_tan: U(NULL, f_tan, c_tan);
    case TD_OP_asin: U(NULL, f_asin, c_asin);
    case TD_OP_acos: U(NULL, f_acos, c_acos);
    case TD_OP_atan: U(NULL, f_atan, c_atan);
    case TD_OP_sinh: U(NULL, f_sinh, c_sinh);
    case TD_OP_cosh: U(NULL, f_cosh, c_cosh);
    case TD_OP_tanh: U(NULL, f_tanh, c_tanh);
    case TD_OP_asinh: U(NULL, f_asinh, c_asinh);
    case TD_OP_acosh: U(NULL, f_acosh, c_acosh);
    case TD_OP_atanh: U(NULL, f_atanh, c_atanh);
    case TD_OP_sigmoid: U(NULL, f_sigmoid, c_sigmoid);
    case TD_OP_relu: U(i_relu, f_relu, NULL);
    case TD_OP_floor: U(i_id, f_floor, NULL);
    case TD_OP_ceil: U(i_id, f_ceil, NULL);
    case TD_OP_round: U(i_round, f_round, NULL);
    case TD_OP_trunc: U(i_id, f_trunc, NULL);
    case TD_OP_clamp: U(i_clamp, f_clamp, NULL);
    case TD_OP_real: U(i_id, f_id, c_real);
    case TD_OP_imag: U(NULL, NULL, c_imag);
    case TD_OP_conj: U(i_id, f_id, c_conj);
    case TD_OP_angle: U(NULL, f_angle, c_angle);
    case TD_OP_logical_not: U(i_lnot, NULL, NULL);
    case TD_OP_bitwise_not: U(i_bnot, NULL, NULL);
    case TD_OP_isnan: U(i_false, f_isnan, c_isnan);
    case TD_OP_isinf: U(i_false, f_isinf, c_isinf);
    case TD_OP_isfinite: U(i_true, f_isfinite, c_isfinite);
    case TD_OP_add: B(i_add, f_add, c_add);
    case TD_OP_sub: B(i_sub, f_sub, c_sub);
    case TD_OP_mul: B(i_mul, f_mul, c_mul);
    case TD_OP_div: B(i_div, f_div, c_div);
    case TD_OP_floor_divide: B(i_div_floor, f_div_floor, NULL);
    case TD_OP_remainder: B(i_rem, f_rem, NULL);
    case TD_OP_pow: B(i_pow, f_pow, c_pow);
    case TD_OP_atan2: B(NULL, f_atan2, NULL);
    case TD_OP_maximum: B(i_max, f_max, NULL);
    case TD_OP_minimum: B(i_min, f_min, NULL);
    case TD_OP_eq: B(i_eq, f_eq, c_eq);
    case TD_OP_ne: B(i_ne, f_ne, c_ne);
    case TD_OP_lt: B(i_lt, f_lt, NULL);
    case TD_OP_le: B(i_le, f_le, NULL);
    case TD_OP_gt: B(i_gt, f_gt, NULL);
    case TD_OP_ge: B(i_ge, f_ge, NULL);
    case TD_OP_logical_and: B(i_land, NULL, NULL);
    case TD_OP_logical_or: B(i_lor, NULL, NULL);
    case TD_OP_logical_xor: B(i_lxor, NULL, NULL);
    case TD_OP_bitwise_and: B(i_band, NULL, NULL);
    case TD_OP_bitwise_or: B(i_bor, NULL, NULL);
    case TD_OP_bitwise_xor: B(i_bxor, NULL, NULL);
    case TD_OP_bitwise_left_shift: B(i_shl, NULL, NULL);
    case TD_OP_bitwise_right_shift: B(i_shr, NULL, NULL);
    default:
        return NULL;
    }
#undef U
#undef B
}

/* ---------------------------------------------------------------------------------------
 * Dtype rules.
 */
static bool is_cmp(enum td_op op)
{
    return op == TD_OP_eq || op == TD_OP_ne || op == TD_OP_lt || op == TD_OP_le ||
           op == TD_OP_gt || op == TD_OP_ge;
}

static bool is_logical(enum td_op op)
{
    return op == TD_OP_logical_and || op == TD_OP_logical_or || op == TD_OP_logical_xor ||
           op == TD_OP_logical_not;
}

static int parse_rounding(const struct td_op_ctx *c, int *out, struct td_error *err)
{
    *out = 0;
    if (c->op != TD_OP_div)
        return 0;
    const char *m = td_arg_str(c, "rounding_mode");
    if (!m)
        return 0;
    if (strcmp(m, "trunc") == 0)
        *out = 1;
    else if (strcmp(m, "floor") == 0)
        *out = 2;
    else
        return td_error_set(err, TD_EINVAL,
                            "div: rounding_mode must be 'trunc' or 'floor', got '%s'", m);
    return 0;
}

/* Decides the compute and output dtypes of an elementwise op (not cast or where). */
static int ew_dtypes(const struct td_op_ctx *c, enum td_dtype *cdt_out, enum td_dtype *out_dt,
                     struct td_error *err)
{
    const char *name = c->info->name;
    enum td_op op = c->op;
    enum td_dtype cdt, odt;
    if (is_logical(op)) {
        *cdt_out = TD_BOOL;
        *out_dt = TD_BOOL;
        return 0;
    }
    if (c->ninputs == 1) {
        cdt = c->in_meta[0].dtype;
    } else {
        const struct td_meta *ms[2] = {&c->in_meta[0], &c->in_meta[1]};
        cdt = td_result_type(2, ms);
    }
    int rounding = 0;
    int rc = parse_rounding(c, &rounding, err);
    if (rc)
        return rc;
    if ((c->info->flags & TD_OPF_INT_TO_FLOAT) && td_dtype_is_integral(cdt, true) &&
        rounding == 0)
        cdt = TD_FLOAT32;
    if (rounding && td_dtype_is_complex(cdt))
        return td_error_set(err, TD_EINVAL, "%s: rounding_mode is not supported for %s", name,
                            td_dtype_name(cdt));
    if (rounding && cdt == TD_BOOL)
        return td_error_set(err, TD_EINVAL, "%s: rounding_mode is not supported for bool",
                            name);
    /* The promoted dtype must be one the op computes in (bool - bool etc.). */
    if (c->ninputs == 2 && !(c->info->dtypes & TD_DTM(cdt)) &&
        !((c->info->flags & TD_OPF_INT_TO_FLOAT) && td_dtype_is_floating(cdt)))
        return td_error_set(err, TD_EINVAL, "%s: dtype %s not supported", name,
                            td_dtype_name(cdt));
    odt = cdt;
    switch (op) {
    case TD_OP_abs:
    case TD_OP_real:
    case TD_OP_imag:
    case TD_OP_angle:
        odt = td_dtype_to_real(cdt);
        break;
    case TD_OP_isnan:
    case TD_OP_isinf:
    case TD_OP_isfinite:
        odt = TD_BOOL;
        break;
    default:
        if (is_cmp(op))
            odt = TD_BOOL;
        break;
    }
    *cdt_out = cdt;
    *out_dt = odt;
    return 0;
}

/* Attribute checks that depend on the dtypes. */
static int check_attrs(const struct td_op_ctx *c, enum td_dtype cdt, struct td_error *err)
{
    const char *name = c->info->name;
    if ((c->op == TD_OP_add || c->op == TD_OP_sub) && td_arg_has(c, "alpha")) {
        const struct td_scalar *a = td_arg_scalar(c, "alpha");
        if (td_dtype_is_integral(cdt, true) &&
            (a->kind == TD_SCALAR_FLOAT || a->kind == TD_SCALAR_COMPLEX))
            return td_error_set(err, TD_EINVAL,
                                "%s: alpha must be an integer for integral inputs", name);
        if (cdt == TD_BOOL && a->kind != TD_SCALAR_BOOL)
            return td_error_set(err, TD_EINVAL, "%s: alpha must be a bool for bool inputs",
                                name);
        if (!td_dtype_is_complex(cdt) && a->kind == TD_SCALAR_COMPLEX)
            return td_error_set(err, TD_EINVAL, "%s: complex alpha needs complex inputs",
                                name);
    }
    if (c->op == TD_OP_clamp) {
        bool lo = td_arg_has(c, "min"), hi = td_arg_has(c, "max");
        if (!lo && !hi)
            return td_error_set(err, TD_EINVAL, "clamp: at least one of min and max is required");
        if ((lo && td_arg_scalar(c, "min")->kind == TD_SCALAR_COMPLEX) ||
            (hi && td_arg_scalar(c, "max")->kind == TD_SCALAR_COMPLEX))
            return td_error_set(err, TD_EINVAL, "clamp: complex bounds are not supported");
    }
    if (c->op == TD_OP_round) {
        int64_t d = td_arg_int(c, "decimals");
        if (d < -300 || d > 300)
            return td_error_set(err, TD_EINVAL, "round: decimals %lld out of range",
                                (long long)d);
    }
    return 0;
}

static int ew_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    enum td_dtype cdt = TD_FLOAT32, odt = TD_FLOAT32;
    int rc = ew_dtypes(c, &cdt, &odt, err);
    if (rc)
        return rc;
    rc = check_attrs(c, cdt, err);
    if (rc)
        return rc;
    return td__meta_broadcast(c, odt, out, err);
}

/* ---------------------------------------------------------------------------------------
 * Loops.
 */

/* Rounds a loaded value to what it is in the compute dtype (a wrapped 300 into uint8 is 44,
 * a float64 0.1 into float32 is 0.1f). */
static int64_t to_cdt_i(int64_t v, enum td_dtype cdt)
{
    char tmp[16];
    td__store_i64(tmp, cdt, v);
    return td__load_i64(tmp, cdt);
}

static double to_cdt_f(double v, enum td_dtype cdt)
{
    if (cdt == TD_FLOAT64)
        return v;
    char tmp[16];
    td__store_f64(tmp, cdt, v);
    return td__load_f64(tmp, cdt);
}

static double complex to_cdt_c(double complex v, enum td_dtype cdt)
{
    if (cdt == TD_COMPLEX128)
        return v;
    return CMPLX((double)(float)creal(v), (double)(float)cimag(v));
}

static int64_t load_i(const char *p, int k, struct ew_ctx *x)
{
    int64_t v = td__load_i64(p, x->in_dt[k]);
    return x->in_dt[k] == x->cdt ? v : to_cdt_i(v, x->cdt);
}

static double load_f(const char *p, int k, struct ew_ctx *x)
{
    if (td_dtype_is_integral(x->in_dt[k], true))
        return to_cdt_f((double)td__load_i64(p, x->in_dt[k]), x->cdt);
    double v = td__load_f64(p, x->in_dt[k]);
    return x->in_dt[k] == x->cdt ? v : to_cdt_f(v, x->cdt);
}

static double complex load_c(const char *p, int k, struct ew_ctx *x)
{
    double complex v = td__load_c128(p, x->in_dt[k]);
    return x->in_dt[k] == x->cdt ? v : to_cdt_c(v, x->cdt);
}

static void loop_unary(char **d, const int64_t *s, int64_t n, void *vctx)
{
    struct ew_ctx *x = vctx;
    char *o = d[0];
    const char *a = d[1];
    const struct ew_fns *f = x->fns;
    enum td_dtype odt = x->out_dt;
    switch (x->cat) {
    case CAT_INT:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1])
            td__store_i64(o, odt, f->i1(load_i(a, 0, x), x));
        break;
    case CAT_TRUTH:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1])
            td__store_i64(o, odt, f->i1(td__load_bool(a, x->in_dt[0]), x));
        break;
    case CAT_FLOAT:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1])
            td__store_f64(o, odt, f->f1(load_f(a, 0, x), x));
        break;
    case CAT_COMPLEX:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1])
            td__store_c128(o, odt, f->c1(load_c(a, 0, x), x));
        break;
    }
}

/* Unary float ops whose input, compute and output dtypes are all float32 (or all float64):
 * the arithmetic of loop_unary's CAT_FLOAT path (widen, f1 in double, round once) without
 * its per-element dtype switches, so the results are the same bit for bit. */
#define UNARY_FLOAT_LOOP(NAME, T)                                                           \
    static void NAME(char **d, const int64_t *s, int64_t n, void *vctx)                     \
    {                                                                                       \
        struct ew_ctx *x = vctx;                                                            \
        fn_f1 f = x->fns->f1;                                                               \
        if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T)) {                     \
            T *restrict O = (T *)d[0];                                                      \
            const T *restrict A = (const T *)d[1];                                          \
            for (int64_t i = 0; i < n; i++)                                                 \
                O[i] = (T)f((double)A[i], x);                                               \
            return;                                                                         \
        }                                                                                   \
        char *o = d[0];                                                                     \
        const char *a = d[1];                                                               \
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1])                               \
            *(T *)o = (T)f((double)*(const T *)a, x);                                       \
    }

UNARY_FLOAT_LOOP(loop_unary_f32, float)
UNARY_FLOAT_LOOP(loop_unary_f64, double)

static void loop_binary(char **d, const int64_t *s, int64_t n, void *vctx)
{
    struct ew_ctx *x = vctx;
    char *o = d[0];
    const char *a = d[1], *b = d[2];
    const struct ew_fns *f = x->fns;
    enum td_dtype odt = x->out_dt;
    switch (x->cat) {
    case CAT_INT:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1], b += s[2])
            td__store_i64(o, odt, f->i2(load_i(a, 0, x), load_i(b, 1, x), x));
        break;
    case CAT_TRUTH:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1], b += s[2])
            td__store_i64(o, odt,
                          f->i2(td__load_bool(a, x->in_dt[0]), td__load_bool(b, x->in_dt[1]), x));
        break;
    case CAT_FLOAT:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1], b += s[2])
            td__store_f64(o, odt, f->f2(load_f(a, 0, x), load_f(b, 1, x), x));
        break;
    case CAT_COMPLEX:
        for (int64_t i = 0; i < n; i++, o += s[0], a += s[1], b += s[2])
            td__store_c128(o, odt, f->c2(load_c(a, 0, x), load_c(b, 1, x), x));
        break;
    }
}

/* Typed loops for the hot paths: all operands of one dtype T (comparisons: bool output).
 * Integer arithmetic goes through the unsigned type UT so overflow wraps without UB. */
#define FAST_LOOP(NAME, T, OT, EXPR)                                                        \
    static void NAME(char **d, const int64_t *s, int64_t n, void *vctx)                     \
    {                                                                                       \
        (void)vctx;                                                                         \
        char *o = d[0];                                                                     \
        const char *x = d[1], *y = d[2];                                                    \
        if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(T) &&                    \
            s[2] == (int64_t)sizeof(T)) {                                                   \
            OT *restrict O = (OT *)o;                                                       \
            const T *restrict A = (const T *)x, *restrict B = (const T *)y;                 \
            for (int64_t i = 0; i < n; i++) {                                               \
                T a = A[i], b = B[i];                                                       \
                O[i] = (OT)(EXPR);                                                          \
            }                                                                               \
        } else if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(T) && s[2] == 0) { \
            OT *restrict O = (OT *)o;                                                       \
            const T *restrict A = (const T *)x;                                             \
            const T b = *(const T *)y;                                                      \
            for (int64_t i = 0; i < n; i++) {                                               \
                T a = A[i];                                                                 \
                O[i] = (OT)(EXPR);                                                          \
            }                                                                               \
        } else {                                                                            \
            for (int64_t i = 0; i < n; i++, o += s[0], x += s[1], y += s[2]) {              \
                T a = *(const T *)x, b = *(const T *)y;                                     \
                *(OT *)o = (OT)(EXPR);                                                      \
            }                                                                               \
        }                                                                                   \
    }

#define FAST_ARITH_FLOAT(T, SUF)                  \
    FAST_LOOP(fast_add_##SUF, T, T, a + b)        \
    FAST_LOOP(fast_sub_##SUF, T, T, a - b)        \
    FAST_LOOP(fast_mul_##SUF, T, T, a * b)        \
    FAST_LOOP(fast_div_##SUF, T, T, a / b)
#define FAST_ARITH_INT(T, UT, SUF)                                 \
    FAST_LOOP(fast_add_##SUF, T, T, (T)((UT)a + (UT)b))            \
    FAST_LOOP(fast_sub_##SUF, T, T, (T)((UT)a - (UT)b))            \
    FAST_LOOP(fast_mul_##SUF, T, T, (T)((UT)a * (UT)b))
#define FAST_CMP(T, SUF)                           \
    FAST_LOOP(fast_eq_##SUF, T, uint8_t, a == b)   \
    FAST_LOOP(fast_ne_##SUF, T, uint8_t, a != b)   \
    FAST_LOOP(fast_lt_##SUF, T, uint8_t, a < b)    \
    FAST_LOOP(fast_le_##SUF, T, uint8_t, a <= b)   \
    FAST_LOOP(fast_gt_##SUF, T, uint8_t, a > b)    \
    FAST_LOOP(fast_ge_##SUF, T, uint8_t, a >= b)

FAST_ARITH_FLOAT(float, f32)
FAST_ARITH_FLOAT(double, f64)
FAST_ARITH_INT(int32_t, uint32_t, i32)
FAST_ARITH_INT(int64_t, uint64_t, i64)
FAST_CMP(float, f32)
FAST_CMP(double, f64)
FAST_CMP(int32_t, i32)
FAST_CMP(int64_t, i64)

/* A typed loop for (op, dtype) when one exists and no attribute changes the formula. */
static td_loop_fn fast_loop(const struct ew_ctx *x)
{
    if (x->nin != 2 || x->in_dt[0] != x->cdt || x->in_dt[1] != x->cdt || x->has_alpha ||
        x->rounding)
        return NULL;
    int t;
    switch (x->cdt) {
    case TD_FLOAT32:
        t = 0;
        break;
    case TD_FLOAT64:
        t = 1;
        break;
    case TD_INT32:
        t = 2;
        break;
    case TD_INT64:
        t = 3;
        break;
    default:
        return NULL;
    }
#define PICK(op)                                                              \
    do {                                                                      \
        static const td_loop_fn tab[4] = {op##_f32, op##_f64, op##_i32, op##_i64}; \
        return tab[t];                                                        \
    } while (0)
    switch (x->op) {
    case TD_OP_add:
        PICK(fast_add);
    case TD_OP_sub:
        PICK(fast_sub);
    case TD_OP_mul:
        PICK(fast_mul);
    case TD_OP_div:
        return t == 0 ? fast_div_f32 : t == 1 ? fast_div_f64 : NULL;
    case TD_OP_eq:
        PICK(fast_eq);
    case TD_OP_ne:
        PICK(fast_ne);
    case TD_OP_lt:
        PICK(fast_lt);
    case TD_OP_le:
        PICK(fast_le);
    case TD_OP_gt:
        PICK(fast_gt);
    case TD_OP_ge:
        PICK(fast_ge);
    default:
        return NULL;
    }
#undef PICK
}

static void scalar_to_ctx(struct ew_ctx *x, const struct td_scalar *s, int64_t *i, double *f)
{
    (void)x;
    *i = s->kind == TD_SCALAR_FLOAT || s->kind == TD_SCALAR_COMPLEX ? td__f64_to_i64(s->re)
                                                                     : s->i;
    *f = s->re;
}

static int ew_cpu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct ew_ctx x;
    struct td_iter it;
    struct td_tensor *ops[3];
    memset(&x, 0, sizeof x);
    int rc = ew_dtypes(c, &x.cdt, &x.out_dt, err);
    if (rc)
        return rc;
    rc = parse_rounding(c, &x.rounding, err);
    if (rc)
        return rc;
    x.op = c->op;
    x.nin = c->ninputs;
    x.fns = fns_for(c->op);
    x.cat = is_logical(c->op) ? CAT_TRUTH : cat_of(x.cdt);
    x.width = (int)td_dtype_size(x.cdt) * 8;
    ops[0] = out[0];
    for (int k = 0; k < c->ninputs; k++) {
        x.in_dt[k] = c->inputs[k]->dtype;
        ops[k + 1] = c->inputs[k];
    }
    if ((c->op == TD_OP_add || c->op == TD_OP_sub) && td_arg_has(c, "alpha")) {
        const struct td_scalar *a = td_arg_scalar(c, "alpha");
        x.has_alpha = true;
        scalar_to_ctx(&x, a, &x.alpha_i, &x.alpha_f);
        x.alpha_c = CMPLX(a->re, a->im);
    }
    if (c->op == TD_OP_round)
        x.decimals = td_arg_int(c, "decimals");
    if (c->op == TD_OP_clamp) {
        x.has_lo = td_arg_has(c, "min");
        x.has_hi = td_arg_has(c, "max");
        bool float_bound = false;
        if (x.has_lo) {
            const struct td_scalar *s = td_arg_scalar(c, "min");
            scalar_to_ctx(&x, s, &x.lo_i, &x.lo_f);
            float_bound |= s->kind == TD_SCALAR_FLOAT;
        }
        if (x.has_hi) {
            const struct td_scalar *s = td_arg_scalar(c, "max");
            scalar_to_ctx(&x, s, &x.hi_i, &x.hi_f);
            float_bound |= s->kind == TD_SCALAR_FLOAT;
        }
        /* Integer input with a float bound clamps in double, then converts back. */
        if (x.cat == CAT_INT && float_bound)
            x.cat = CAT_FLOAT;
    }
    const struct ew_fns *f = x.fns;
    bool ok = f && ((x.cat == CAT_INT || x.cat == CAT_TRUTH)
                        ? (c->ninputs == 1 ? f->i1 != NULL : f->i2 != NULL)
                    : x.cat == CAT_FLOAT ? (c->ninputs == 1 ? f->f1 != NULL : f->f2 != NULL)
                                         : (c->ninputs == 1 ? f->c1 != NULL : f->c2 != NULL));
    if (!ok)
        return td_error_set(err, TD_EINVAL, "%s: dtype %s not supported", c->info->name,
                            td_dtype_name(x.cdt));
    /* Mixed dtypes (a float32 tensor times a float64 Python number, a mask times a float):
     * convert the odd operand to the computation dtype once, so the typed loop runs instead
     * of the per-element generic one (about 40x slower). The conversion rounds exactly as
     * the generic loop's per-element conversion does. */
    struct td_tensor *conv[2] = {NULL, NULL};
    if (c->ninputs == 2 && x.cat != CAT_TRUTH) {
        struct ew_ctx probe = x;
        probe.in_dt[0] = probe.in_dt[1] = x.cdt;
        for (int k = 0; k < 2 && fast_loop(&probe); k++) {
            struct td_tensor *in = c->inputs[k];
            if (in->dtype == x.cdt)
                continue;
            struct td_meta m;
            td_tensor_meta(in, &m);
            m.dtype = x.cdt;
            m.wrapped_number = false;
            rc = td_tensor_new(&m, false, c->account, &conv[k], err);
            if (!rc)
                rc = td_tensor_copy(conv[k], in, err);
            if (rc)
                goto out;
            ops[k + 1] = conv[k];
            x.in_dt[k] = x.cdt;
        }
    }
    rc = td_iter_init(&it, c->ninputs + 1, ops, out[0]->ndim, out[0]->shape, err);
    if (rc)
        goto out;
    td_loop_fn fn = c->ninputs == 1 ? loop_unary : fast_loop(&x);
    if (!fn)
        fn = loop_binary;
    if (c->ninputs == 1 && x.cat == CAT_FLOAT && x.in_dt[0] == x.cdt && x.out_dt == x.cdt &&
        (x.cdt == TD_FLOAT32 || x.cdt == TD_FLOAT64))
        fn = x.cdt == TD_FLOAT32 ? loop_unary_f32 : loop_unary_f64;
    td_iter_run(&it, fn, &x);
    if (x.errflag == EW_DIV_ZERO)
        rc = td_error_set(err, TD_EINVAL, "%s: integer division by zero", c->info->name);
    else if (x.errflag == EW_NEG_POW)
        rc = td_error_set(err, TD_EINVAL,
                          "%s: integers to negative integer powers are not allowed",
                          c->info->name);
out:
    td_tensor_release(conv[0]);
    td_tensor_release(conv[1]);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * cast and where.
 */
int meta_cast(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)err;
    td__meta_set(out, td_arg_dtype(c, "dtype"), c->in_meta[0].ndim, c->in_meta[0].shape);
    return 0;
}

int cpu_cast(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return td_tensor_copy(out[0], c->inputs[0], err);
}

int meta_where(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *ms[2] = {&c->in_meta[1], &c->in_meta[2]};
    return td__meta_broadcast(c, td_result_type(2, ms), out, err);
}

struct where_ctx {
    enum td_dtype cdt, adt, bdt, odt;
};

static void loop_where(char **d, const int64_t *s, int64_t n, void *vctx)
{
    const struct where_ctx *w = vctx;
    char *o = d[0];
    const char *cnd = d[1], *a = d[2], *b = d[3];
    size_t osz = td_dtype_size(w->odt);
    for (int64_t i = 0; i < n; i++, o += s[0], cnd += s[1], a += s[2], b += s[3]) {
        if (td__load_bool(cnd, w->cdt)) {
            if (w->adt == w->odt)
                memcpy(o, a, osz);
            else
                td__convert(o, w->odt, a, w->adt);
        } else {
            if (w->bdt == w->odt)
                memcpy(o, b, osz);
            else
                td__convert(o, w->odt, b, w->bdt);
        }
    }
}

int cpu_where(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_iter it;
    struct td_tensor *ops[4] = {out[0], c->inputs[0], c->inputs[1], c->inputs[2]};
    int rc = td_iter_init(&it, 4, ops, out[0]->ndim, out[0]->shape, err);
    if (rc)
        return rc;
    struct where_ctx w = {c->inputs[0]->dtype, c->inputs[1]->dtype, c->inputs[2]->dtype,
                          out[0]->dtype};
    td_iter_run(&it, loop_where, &w);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The table's entry points.
 */
#define EW_OP(name)                                                                      \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err) \
    {                                                                                    \
        return ew_meta(c, out, err);                                                     \
    }                                                                                    \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                    \
        return ew_cpu(c, out, err);                                                      \
    }

EW_OP(neg)
EW_OP(abs)
EW_OP(sign)
EW_OP(exp)
EW_OP(expm1)
EW_OP(log)
EW_OP(log1p)
EW_OP(log2)
EW_OP(log10)
EW_OP(sqrt)
EW_OP(rsqrt)
EW_OP(sin)
EW_OP(cos)
EW_OP(tan)
EW_OP(asin)
EW_OP(acos)
EW_OP(atan)
EW_OP(sinh)
EW_OP(cosh)
EW_OP(tanh)
EW_OP(asinh)
EW_OP(acosh)
EW_OP(atanh)
EW_OP(sigmoid)
EW_OP(relu)
EW_OP(floor)
EW_OP(ceil)
EW_OP(round)
EW_OP(trunc)
EW_OP(clamp)
EW_OP(real)
EW_OP(imag)
EW_OP(conj)
EW_OP(angle)
EW_OP(logical_not)
EW_OP(bitwise_not)
EW_OP(isnan)
EW_OP(isinf)
EW_OP(isfinite)
EW_OP(add)
EW_OP(sub)
EW_OP(mul)
EW_OP(div)
EW_OP(floor_divide)
EW_OP(remainder)
EW_OP(pow)
EW_OP(atan2)
EW_OP(maximum)
EW_OP(minimum)
EW_OP(eq)
EW_OP(ne)
EW_OP(lt)
EW_OP(le)
EW_OP(gt)
EW_OP(ge)
EW_OP(logical_and)
EW_OP(logical_or)
EW_OP(logical_xor)
EW_OP(bitwise_and)
EW_OP(bitwise_or)
EW_OP(bitwise_xor)
EW_OP(bitwise_left_shift)
EW_OP(bitwise_right_shift)
