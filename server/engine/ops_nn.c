/*
 * ops_nn.c - the "neural network" section of ops.def: linear, conv2d (im2col + GEMM) and its
 * two gradient kernels, im2col/col2im (F.unfold/F.fold), threshold_backward (relu's VJP),
 * max and average pooling with their adjoints, softmax and log_softmax, dropout, embedding
 * and its adjoint, layer_norm, gelu, erf and nll_loss.
 *
 * Every kernel reads its inputs through td_tensor_contiguous (or a converting copy), so any
 * strides work; float16/bfloat16 compute in float32 and round once into the output. GEMM
 * goes to OpenBLAS (cblas ?gemm); long independent loops (planes, rows, elements) are split
 * over the engine's threads with td__parallel_for, never around a BLAS call.
 * Semantics follow PyTorch's CPU kernels (aten/src/ATen/native): output sizes of pooling
 * (pooling_output_shape with ceil_mode), max pooling's NaN rule and index layout, avg
 * pooling's divisor rules, nll_loss's weighted mean.
 */
#include <complex.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "td_blas.h"
#include "td_internal.h"

/* ---------------------------------------------------------------------------------------
 * Shared helpers.
 */

/* The dtype a kernel computes in: float64 and complex stay, the rest compute in float32. */
static enum td_dtype compute_dtype(enum td_dtype dt)
{
    if (dt == TD_FLOAT64 || dt == TD_COMPLEX64 || dt == TD_COMPLEX128)
        return dt;
    return TD_FLOAT32;
}

/* A contiguous tensor of dtype dt holding t's values (t itself when it already is one).
 * Ownership: *o owned. */
static int in_as(const struct td_op_ctx *c, struct td_tensor *t, enum td_dtype dt,
                 struct td_tensor **o, struct td_error *err)
{
    *o = NULL;
    if (t->dtype == dt)
        return td_tensor_contiguous(t, c->account, o, err);
    struct td_meta m;
    td_tensor_meta(t, &m);
    m.dtype = dt;
    m.wrapped_number = false;
    int rc = td_tensor_new(&m, false, c->account, o, err);
    if (rc)
        return rc;
    rc = td_tensor_copy(*o, t, err);
    if (rc) {
        td_tensor_release(*o);
        *o = NULL;
    }
    return rc;
}

/* Where a kernel writes output o in dtype dt: o itself (retained) or a zeroed scratch of o's
 * shape. out_finish copies the scratch into o and releases it. */
static int out_as(const struct td_op_ctx *c, struct td_tensor *o, enum td_dtype dt,
                  struct td_tensor **w, struct td_error *err)
{
    if (o->dtype == dt) {
        *w = td_tensor_retain(o);
        return 0;
    }
    struct td_meta m;
    td_tensor_meta(o, &m);
    m.dtype = dt;
    m.wrapped_number = false;
    return td_tensor_new(&m, true, c->account, w, err);
}

static int out_finish(struct td_tensor *o, struct td_tensor *w, struct td_error *err)
{
    int rc = 0;
    if (w && w != o)
        rc = td_tensor_copy(o, w, err);
    td_tensor_release(w);
    return rc;
}

/* Ends a kernel that wrote through w (from out_as): on success out_finish, else releases w.
 * Returns: rc, or out_finish's status when rc is 0. */
static int out_end(int rc, struct td_tensor *o, struct td_tensor *w, struct td_error *err)
{
    if (rc) {
        td_tensor_release(w);
        return rc;
    }
    return out_finish(o, w, err);
}

/* in_as for input i into *x, then out_as for o into *w. Ownership: *x and *w owned (released
 * by the caller also on failure). */
static int in_out_as(const struct td_op_ctx *c, int i, struct td_tensor *o, enum td_dtype dt,
                     struct td_tensor **x, struct td_tensor **w, struct td_error *err)
{
    int rc = in_as(c, c->inputs[i], dt, x, err);
    return rc ? rc : out_as(c, o, dt, w, err);
}

/* Largest value accepted for a size-like attribute (kernel, stride, padding, dilation):
 * keeps every product of two of them inside int64. */
#define ATTR_MAX ((int64_t)1 << 30)

/* Reads an ints attribute of 1 value (both dims) or 2 values; def when absent.
 * Returns: 0 or TD_EINVAL naming the op and attribute. */
static int pair_attr(const struct td_op_ctx *c, const char *name, int64_t def, int64_t minv,
                     int64_t v[2], struct td_error *err)
{
    if (!td_arg_has(c, name)) {
        v[0] = v[1] = def;
        return 0;
    }
    int n = 0;
    const int64_t *a = td_arg_ints(c, name, &n);
    if (n == 1) {
        v[0] = v[1] = a[0];
    } else if (n == 2) {
        v[0] = a[0];
        v[1] = a[1];
    } else {
        return td_error_set(err, TD_EINVAL, "%s: %s must have 1 or 2 values, got %d",
                            c->info->name, name, n);
    }
    for (int i = 0; i < 2; i++)
        if (v[i] < minv || v[i] > ATTR_MAX)
            return td_error_set(err, TD_EINVAL, "%s: %s value %lld out of range [%lld, %lld]",
                                c->info->name, name, (long long)v[i], (long long)minv,
                                (long long)ATTR_MAX);
    return 0;
}

static int same_dtype(const struct td_op_ctx *c, int i, struct td_error *err)
{
    if (c->in_meta[i].dtype != c->in_meta[0].dtype)
        return td_error_set(err, TD_EINVAL, "%s: input %d has dtype %s, expected %s like input 0",
                            c->info->name, i, td_dtype_name(c->in_meta[i].dtype),
                            td_dtype_name(c->in_meta[0].dtype));
    return 0;
}

static int64_t prod_dims(const int64_t *shape, int from, int to)
{
    int64_t n = 1;
    for (int d = from; d < to; d++)
        n *= shape[d];
    return n;
}

/* floor(a / b) for b > 0. */
static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Grain (in work items) so that each chunk does about TD__PAR_GRAIN element operations. */
static int64_t grain_for(int64_t per_item)
{
    if (per_item < 1)
        per_item = 1;
    int64_t g = TD__PAR_GRAIN / per_item;
    return g < 1 ? 1 : g;
}

/* a when t is 0, b when t is 1, by bit masks: compilers turn a float select into a branch,
 * and on random data that branch mispredicts about half the time. */
static inline float sel_f32(float a, float b, int t)
{
    uint32_t x, y, mk = (uint32_t)0 - (uint32_t)t;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x = (x & ~mk) | (y & mk);
    memcpy(&a, &x, sizeof a);
    return a;
}

static inline double sel_f64(double a, double b, int t)
{
    uint64_t x, y, mk = (uint64_t)0 - (uint64_t)t;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x = (x & ~mk) | (y & mk);
    memcpy(&a, &x, sizeof a);
    return a;
}

/* Row-major C = A(op) @ B(op) + beta * C for float32/float64/complex. Dims must fit int
 * (checked by callers). */
static void gemm(enum td_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                 int64_t ldc)
{
    td__gemm(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

static int check_blas_dims(const char *op, int64_t m, int64_t n, int64_t k, struct td_error *err)
{
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return td_error_set(err, TD_ELIMIT, "%s: a dimension exceeds the BLAS limit %d", op,
                            INT_MAX);
    return 0;
}

/* Fills rows x n (row-major, element size isz) with the n-element vector v in every row. */
static void fill_rows(char *dst, const char *v, int64_t rows, int64_t n, size_t isz)
{
    size_t rb = (size_t)n * isz;
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * rb, v, rb);
}

/* row[0..n) += *v for the compute dtypes (float32/float64/complex64/complex128). */
static void add_bias_row(enum td_dtype dt, char *row, const char *v, int64_t n)
{
    switch (dt) {
    case TD_FLOAT32: {
        float bv, *r = (float *)(void *)row;
        memcpy(&bv, v, sizeof bv);
        for (int64_t i = 0; i < n; i++)
            r[i] += bv;
        break;
    }
    case TD_FLOAT64: {
        double bv, *r = (double *)(void *)row;
        memcpy(&bv, v, sizeof bv);
        for (int64_t i = 0; i < n; i++)
            r[i] += bv;
        break;
    }
    default: {
        /* complex: interleaved (re, im) pairs of the real type */
        if (dt == TD_COMPLEX64) {
            float bv[2], *r = (float *)(void *)row;
            memcpy(bv, v, sizeof bv);
            for (int64_t i = 0; i < n; i++) {
                r[2 * i] += bv[0];
                r[2 * i + 1] += bv[1];
            }
        } else {
            double bv[2], *r = (double *)(void *)row;
            memcpy(bv, v, sizeof bv);
            for (int64_t i = 0; i < n; i++) {
                r[2 * i] += bv[0];
                r[2 * i + 1] += bv[1];
            }
        }
        break;
    }
    }
}

/* same_dtype for every input after the first. */
static int same_dtypes(const struct td_op_ctx *c, struct td_error *err)
{
    int rc = 0;
    for (int i = 1; i < c->ninputs && !rc; i++)
        rc = same_dtype(c, i, err);
    return rc;
}

/* The optional input 2 (what: its name in the message) must be [n] when present. */
static int vec_check(const struct td_op_ctx *c, const char *what, int64_t n,
                     struct td_error *err)
{
    char b1[96];
    if (c->ninputs <= 2)
        return 0;
    const struct td_meta *b = &c->in_meta[2];
    if (b->ndim != 1 || b->shape[0] != n)
        return td_error_set(err, TD_EINVAL, "%s: %s shape %s, expected [%lld]", c->info->name,
                            what, td__shape_str(b->shape, b->ndim, b1, sizeof b1),
                            (long long)n);
    return 0;
}

/* Converts x, w and the optional bias b (inputs 0, 1, 2) to dt and points *o at where output
 * o_out is written (out_as). Ownership: all owned, released by the caller also on failure. */
static int xwb_as(const struct td_op_ctx *c, struct td_tensor *o_out, enum td_dtype dt,
                  struct td_tensor **x, struct td_tensor **w, struct td_tensor **b,
                  struct td_tensor **o, struct td_error *err)
{
    int rc = in_as(c, c->inputs[0], dt, x, err);
    if (!rc)
        rc = in_as(c, c->inputs[1], dt, w, err);
    if (!rc && c->ninputs > 2)
        rc = in_as(c, c->inputs[2], dt, b, err);
    return rc ? rc : out_as(c, o_out, dt, o, err);
}

/* ---------------------------------------------------------------------------------------
 * linear(x, w, [b]) = x @ w^T + b.
 */
int meta_linear(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0], *w = &c->in_meta[1];
    char b1[96], b2[96];
    int rc = same_dtypes(c, err);
    if (rc)
        return rc;
    if (x->ndim < 1 || w->ndim != 2)
        return td_error_set(err, TD_EINVAL, "linear: x must have >= 1 dim and w 2 dims, got "
                            "%d and %d", x->ndim, w->ndim);
    if (x->shape[x->ndim - 1] != w->shape[1])
        return td_error_set(err, TD_EINVAL, "linear: x %s and w %s: in features %lld != %lld",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1),
                            td__shape_str(w->shape, w->ndim, b2, sizeof b2),
                            (long long)x->shape[x->ndim - 1], (long long)w->shape[1]);
    rc = vec_check(c, "bias", w->shape[0], err);
    if (rc)
        return rc;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = w->shape[0];
    td__meta_set(out, x->dtype, x->ndim, shape);
    return td__check_shape("linear", shape, x->ndim, x->dtype, err);
}

int cpu_linear(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0], *wm = &c->in_meta[1];
    enum td_dtype dt = compute_dtype(xm->dtype);
    int64_t in = wm->shape[1], nout = wm->shape[0];
    int64_t m = prod_dims(xm->shape, 0, xm->ndim - 1);
    struct td_tensor *x = NULL, *w = NULL, *b = NULL, *o = NULL;
    int rc = check_blas_dims("linear", m, nout, in, err);
    if (!rc)
        rc = xwb_as(c, out[0], dt, &x, &w, &b, &o, err);
    if (rc)
        goto out;
    size_t isz = td_dtype_size(dt);
    char *op = td_tensor_data(o);
    if (m == 0 || nout == 0)
        goto out;
    if (b)
        fill_rows(op, td_tensor_data(b), m, nout, isz);
    else if (in == 0)
        memset(op, 0, (size_t)(m * nout) * isz);
    if (in > 0)
        gemm(dt, false, true, m, nout, in, td_tensor_data(x), in, td_tensor_data(w), in,
             b ? 1.0 : 0.0, op, nout);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    td_tensor_release(w);
    td_tensor_release(b);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Sliding-window geometry shared by conv2d, im2col and col2im.
 */
struct win {
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t H, W, Ho, Wo;
};

/* Output extent of a window sweep; <= 0 when the input is too small. */
static int64_t win_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1;
    return num < 0 ? 0 : num / s + 1;
}

/* Reads stride/padding/dilation (and kernel_size when kattr) and computes Ho, Wo from H, W.
 * Returns: 0 or TD_EINVAL. */
static int win_init(const struct td_op_ctx *c, bool kattr, int64_t H, int64_t W, struct win *g,
                    struct td_error *err)
{
    int64_t k[2] = {g->kh, g->kw}, s[2] = {0, 0}, p[2] = {0, 0}, d[2] = {0, 0};
    int rc = 0;
    if (kattr)
        rc = pair_attr(c, "kernel_size", 1, 1, k, err);
    if (!rc)
        rc = pair_attr(c, "stride", 1, 1, s, err);
    if (!rc)
        rc = pair_attr(c, "padding", 0, 0, p, err);
    if (!rc)
        rc = pair_attr(c, "dilation", 1, 1, d, err);
    if (rc)
        return rc;
    g->kh = k[0], g->kw = k[1], g->sh = s[0], g->sw = s[1];
    g->ph = p[0], g->pw = p[1], g->dh = d[0], g->dw = d[1];
    g->H = H, g->W = W;
    g->Ho = win_out(H, g->kh, g->sh, g->ph, g->dh);
    g->Wo = win_out(W, g->kw, g->sw, g->pw, g->dw);
    if (g->Ho <= 0 || g->Wo <= 0)
        return td_error_set(err, TD_EINVAL,
                            "%s: input %lldx%lld (padding %lld,%lld) is smaller than the "
                            "dilated kernel %lldx%lld",
                            c->info->name, (long long)H, (long long)W, (long long)g->ph,
                            (long long)g->pw, (long long)(g->dh * (g->kh - 1) + 1),
                            (long long)(g->dw * (g->kw - 1) + 1));
    return 0;
}

/* The outputs o in [0, n) of a window sweep whose input index o * s + off lies in [0, in):
 * [*lo, *hi), possibly empty (lo == hi). s >= 1. */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t n, int64_t *lo,
                        int64_t *hi)
{
    /* o * s + off >= 0  <=>  o >= ceil(-off / s);  o * s + off < in  <=>  o <= (in-1-off)/s */
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
    if (h > n)
        h = n;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Elements of the column (and result) buffers conv2d and its gradients fill per batch of
 * samples: enough to amortise a GEMM call, small enough to stay in the L2 cache between
 * im2col writing the columns and the GEMM reading them. */
#ifndef CONV_BATCH_ELEMS
#define CONV_BATCH_ELEMS ((int64_t)1 << 16)
#endif

/* Largest zero-padded channel plane (bytes) the im2col/col2im kernels keep on the stack. */
#define PAD_PLANE_BYTES 16384

/* Copy and zero-fill of n elements for the short rows of small images: a library call per
 * row of a few elements costs more than the copy itself, so blocks of 4 and the tail are
 * fixed-size copies the compiler inlines. */
#define DEF_SMALL_MOVES(T, SUF)                                                               \
    static inline void copy_small_##SUF(T *d, const T *s, int64_t n)                          \
    {                                                                                         \
        if (n > 32) {                                                                         \
            memcpy(d, s, sizeof(T) * (size_t)n);                                              \
            return;                                                                           \
        }                                                                                     \
        for (; n >= 4; n -= 4, d += 4, s += 4)                                                \
            memcpy(d, s, 4 * sizeof(T));                                                      \
        switch (n) {                                                                          \
        case 3:                                                                               \
            d[2] = s[2];                                                                      \
            /* fall through */                                                                \
        case 2:                                                                               \
            d[1] = s[1];                                                                      \
            /* fall through */                                                                \
        case 1:                                                                               \
            d[0] = s[0];                                                                      \
            /* fall through */                                                                \
        default:                                                                              \
            break;                                                                            \
        }                                                                                     \
    }                                                                                         \
    static inline void zero_small_##SUF(T *d, int64_t n)                                      \
    {                                                                                         \
        if (n > 4)                                                                            \
            memset(d, 0, sizeof(T) * (size_t)n);                                              \
        else                                                                                  \
            for (int64_t k = 0; k < n; k++)                                                   \
                memset(&d[k], 0, sizeof(T));                                                  \
    }

/* im2col of one image: src [C, H, W] -> dst [C*kh*kw, Ho*Wo] with rows ld elements apart,
 * zeros where the window reads padding. Typed by element size (data movement only). The
 * valid output rows and columns of each kernel tap are computed once, so the inner loops
 * are plain copies (zero is all-zero bits for every type). */
#define DEF_IM2COL(T, SUF)                                                                    \
    /* Rows of channel plane p (pitch Wp, padding already in it) for every kernel tap. */     \
    static void im2col_plane_##SUF(const T *p, int64_t Wp, T *dst, const struct win *g,       \
                                   int64_t ld)                                                \
    {                                                                                         \
        const int64_t Ho = g->Ho, Wo = g->Wo, sw = g->sw, sh = g->sh;                         \
        for (int64_t i = 0; i < g->kh; i++)                                                   \
            for (int64_t j = 0; j < g->kw; j++) {                                             \
                T *row = dst + (i * g->kw + j) * ld;                                          \
                const T *base = p + i * g->dh * Wp + j * g->dw;                               \
                for (int64_t oh = 0; oh < Ho; oh++) {                                         \
                    const T *s = base + oh * sh * Wp;                                         \
                    T *d = row + oh * Wo;                                                     \
                    if (sw != 1)                                                              \
                        for (int64_t ow = 0; ow < Wo; ow++)                                   \
                            d[ow] = s[ow * sw];                                               \
                    else if (Wo == 4)                                                         \
                        memcpy(d, s, 4 * sizeof(T));                                          \
                    else if (Wo == 8)                                                         \
                        memcpy(d, s, 8 * sizeof(T));                                          \
                    else                                                                      \
                        copy_small_##SUF(d, s, Wo);                                           \
                }                                                                             \
            }                                                                                 \
    }                                                                                         \
                                                                                              \
    static void im2col_##SUF(const T *src, T *dst, int64_t C, const struct win *g,            \
                             int64_t ld)                                                      \
    {                                                                                         \
        const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw, sh = g->sh;     \
        const int64_t kh = g->kh, kw = g->kw;                                                 \
        const int64_t Hp = H + 2 * g->ph, Wp = W + 2 * g->pw;                                 \
        if (g->ph == 0 && g->pw == 0) {                                                       \
            for (int64_t ch = 0; ch < C; ch++)                                                \
                im2col_plane_##SUF(src + ch * H * W, W, dst + ch * kh * kw * ld, g, ld);      \
            return;                                                                           \
        }                                                                                     \
        if (Hp <= PAD_PLANE_BYTES && Wp <= PAD_PLANE_BYTES &&                                 \
            Hp * Wp <= (int64_t)(PAD_PLANE_BYTES / sizeof(T))) {                              \
            /* Small images: the channel copied into a zero-bordered plane, so every tap   \
             * reads whole rows without bounds checks. */                                     \
            T pad[PAD_PLANE_BYTES / sizeof(T)];                                               \
            memset(pad, 0, sizeof(T) * (size_t)(Hp * Wp));                                    \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                for (int64_t h = 0; h < H; h++)                                               \
                    copy_small_##SUF(pad + (h + g->ph) * Wp + g->pw, src + (ch * H + h) * W,  \
                                     W);                                                      \
                im2col_plane_##SUF(pad, Wp, dst + ch * kh * kw * ld, g, ld);                  \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        for (int64_t i = 0; i < kh; i++) {                                                    \
            int64_t ih0 = i * g->dh - g->ph, oh0, oh1;                                        \
            valid_range(ih0, sh, H, Ho, &oh0, &oh1);                                          \
            for (int64_t j = 0; j < kw; j++) {                                                \
                int64_t iw0 = j * g->dw - g->pw, ow0, ow1;                                    \
                valid_range(iw0, sw, W, Wo, &ow0, &ow1);                                      \
                int64_t nv = ow1 - ow0;                                                       \
                for (int64_t ch = 0; ch < C; ch++) {                                          \
                    T *row = dst + ((ch * kh + i) * kw + j) * ld;                             \
                    const T *plane = src + ch * H * W;                                        \
                    memset(row, 0, sizeof(T) * (size_t)(oh0 * Wo));                           \
                    memset(row + oh1 * Wo, 0, sizeof(T) * (size_t)((Ho - oh1) * Wo));         \
                    for (int64_t oh = oh0; oh < oh1; oh++) {                                  \
                        T *r = row + oh * Wo;                                                 \
                        const T *line = plane + (oh * sh + ih0) * W;                          \
                        zero_small_##SUF(r, ow0);                                             \
                        if (sw == 1)                                                          \
                            copy_small_##SUF(r + ow0, line + iw0 + ow0, nv);                  \
                        else                                                                  \
                            for (int64_t ow = ow0; ow < ow1; ow++)                            \
                                r[ow] = line[iw0 + ow * sw];                                  \
                        zero_small_##SUF(r + ow1, Wo - ow1);                                  \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

struct c16 {
    uint64_t a, b;
};
DEF_SMALL_MOVES(uint16_t, 2)
DEF_SMALL_MOVES(uint32_t, 4)
DEF_SMALL_MOVES(uint64_t, 8)
DEF_SMALL_MOVES(struct c16, 16)
DEF_IM2COL(uint16_t, 2)
DEF_IM2COL(uint32_t, 4)
DEF_IM2COL(uint64_t, 8)
DEF_IM2COL(struct c16, 16)

static void im2col_any(const void *src, void *dst, int64_t C, const struct win *g, size_t isz,
                       int64_t ld)
{
    switch (isz) {
    case 2:
        im2col_2(src, dst, C, g, ld);
        break;
    case 4:
        im2col_4(src, dst, C, g, ld);
        break;
    case 8:
        im2col_8(src, dst, C, g, ld);
        break;
    default:
        im2col_16(src, dst, C, g, ld);
        break;
    }
}

/* col2im of one image: dst [C, H, W] (zeroed here) += src [C*kh*kw, Ho*Wo] with rows ld
 * elements apart. nc components per element (2 for complex). Valid ranges as in im2col: no
 * bounds test per element. */
#define DEF_COL2IM(T)                                                                         \
    static void col2im_##T(const T *src, T *dst, int64_t C, const struct win *g, int nc,      \
                           int64_t ld)                                                        \
    {                                                                                         \
        const int64_t H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw, sh = g->sh;     \
        const int64_t kh = g->kh, kw = g->kw;                                                 \
        const int64_t Hp = H + 2 * g->ph, Wp = W + 2 * g->pw;                                 \
        if (nc == 1 && Hp <= PAD_PLANE_BYTES && Wp <= PAD_PLANE_BYTES &&                      \
            Hp * Wp <= (int64_t)(PAD_PLANE_BYTES / sizeof(T))) {                              \
            /* Small images: sums into a zero-bordered plane (no bounds checks), whose        \
             * interior is then the channel. */                                               \
            T pad[PAD_PLANE_BYTES / sizeof(T)];                                               \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                memset(pad, 0, sizeof(T) * (size_t)(Hp * Wp));                                \
                for (int64_t i = 0; i < kh; i++)                                              \
                    for (int64_t j = 0; j < kw; j++) {                                        \
                        const T *row = src + ((ch * kh + i) * kw + j) * ld;                   \
                        T *base = pad + i * g->dh * Wp + j * g->dw;                           \
                        for (int64_t oh = 0; oh < Ho; oh++) {                                 \
                            T *d = base + oh * sh * Wp;                                       \
                            const T *r = row + oh * Wo;                                       \
                            if (sw == 1 && Wo == 4) {                                         \
                                d[0] += r[0];                                                 \
                                d[1] += r[1];                                                 \
                                d[2] += r[2];                                                 \
                                d[3] += r[3];                                                 \
                            } else {                                                          \
                                for (int64_t ow = 0; ow < Wo; ow++)                           \
                                    d[ow * sw] += r[ow];                                      \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
                for (int64_t h = 0; h < H; h++)                                               \
                    memcpy(dst + (ch * H + h) * W, pad + (h + g->ph) * Wp + g->pw,            \
                           sizeof(T) * (size_t)W);                                            \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        memset(dst, 0, sizeof(T) * (size_t)(C * H * W * nc));                                 \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            T *plane = dst + ch * H * W * nc;                                                 \
            for (int64_t i = 0; i < kh; i++) {                                                \
                int64_t ih0 = i * g->dh - g->ph, oh0, oh1;                                    \
                valid_range(ih0, sh, H, Ho, &oh0, &oh1);                                      \
                for (int64_t j = 0; j < kw; j++) {                                            \
                    int64_t iw0 = j * g->dw - g->pw, ow0, ow1;                                \
                    valid_range(iw0, sw, W, Wo, &ow0, &ow1);                                  \
                    const T *row = src + ((ch * kh + i) * kw + j) * ld * nc;                  \
                    for (int64_t oh = oh0; oh < oh1; oh++) {                                  \
                        const T *r = row + oh * Wo * nc;                                      \
                        T *line = plane + (oh * sh + ih0) * W * nc;                           \
                        if (nc == 1 && sw == 1) {                                             \
                            T *l = line + iw0 + ow0;                                          \
                            const T *rr = r + ow0;                                            \
                            for (int64_t k = 0; k < ow1 - ow0; k++)                           \
                                l[k] += rr[k];                                                \
                        } else {                                                              \
                            for (int64_t ow = ow0; ow < ow1; ow++)                            \
                                for (int q = 0; q < nc; q++)                                  \
                                    line[(iw0 + ow * sw) * nc + q] += r[ow * nc + q];         \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

DEF_COL2IM(float)
DEF_COL2IM(double)

/* im2col of samples [b, e) of a batch into one column buffer (sample k at column k*L, rows
 * ld apart), or col2im of them back into images; split over the engine's threads by
 * td__parallel_for. */
struct cols_job {
    const char *x;           /* the batch's first image (im2col) */
    char *img;               /* the batch's first output image (col2im) */
    char *col;
    const struct win *g;
    int64_t C, ld;
    size_t isz;
};

static void im2col_chunk(int64_t b, int64_t e, void *ctx)
{
    const struct cols_job *j = ctx;
    int64_t img = j->C * j->g->H * j->g->W, L = j->g->Ho * j->g->Wo;
    for (int64_t k = b; k < e; k++)
        im2col_any(j->x + (size_t)(k * img) * j->isz, j->col + (size_t)(k * L) * j->isz, j->C,
                   j->g, j->isz, j->ld);
}

static void col2im_chunk(int64_t b, int64_t e, void *ctx)
{
    const struct cols_job *j = ctx;
    int64_t img = j->C * j->g->H * j->g->W, L = j->g->Ho * j->g->Wo;
    for (int64_t k = b; k < e; k++) {
        const char *src = j->col + (size_t)(k * L) * j->isz;
        char *dst = j->img + (size_t)(k * img) * j->isz;
        if (j->isz == sizeof(double))
            col2im_double((const double *)(const void *)src, (double *)(void *)dst, j->C, j->g,
                          1, j->ld);
        else
            col2im_float((const float *)(const void *)src, (float *)(void *)dst, j->C, j->g, 1,
                         j->ld);
    }
}

/* Columns of cnt images at x (C channels each) into col with rows ld apart. */
static void im2col_batch(const char *x, char *col, int64_t cnt, int64_t C, const struct win *g,
                         size_t isz, int64_t ld)
{
    struct cols_job j = {x, NULL, col, g, C, ld, isz};
    td__parallel_for(cnt, grain_for(C * g->kh * g->kw * g->Ho * g->Wo), im2col_chunk, &j);
}

/* ---------------------------------------------------------------------------------------
 * conv2d(x, w, [b]).
 */
int meta_conv2d(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0], *w = &c->in_meta[1];
    char b1[96], b2[96];
    int rc = same_dtypes(c, err);
    if (rc)
        return rc;
    if (x->ndim != 4 || w->ndim != 4)
        return td_error_set(err, TD_EINVAL, "conv2d: x and w must be 4-d ([N,C,H,W] and "
                            "[O,C/groups,kh,kw]), got %s and %s",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1),
                            td__shape_str(w->shape, w->ndim, b2, sizeof b2));
    int64_t groups = td_arg_int(c, "groups");
    if (groups < 1 || groups > ATTR_MAX)
        return td_error_set(err, TD_EINVAL, "conv2d: groups must be >= 1, got %lld",
                            (long long)groups);
    int64_t C = x->shape[1], O = w->shape[0];
    if (C % groups || O % groups || w->shape[1] != C / groups)
        return td_error_set(err, TD_EINVAL, "conv2d: x %s, w %s and groups %lld do not agree "
                            "(need C %% groups == 0, O %% groups == 0, w.shape[1] == C/groups)",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1),
                            td__shape_str(w->shape, w->ndim, b2, sizeof b2), (long long)groups);
    if (w->shape[2] < 1 || w->shape[3] < 1)
        return td_error_set(err, TD_EINVAL, "conv2d: kernel size %lldx%lld must be positive",
                            (long long)w->shape[2], (long long)w->shape[3]);
    struct win g = {.kh = w->shape[2], .kw = w->shape[3]};
    rc = vec_check(c, "bias", O, err);
    if (!rc)
        rc = win_init(c, false, x->shape[2], x->shape[3], &g, err);
    if (rc)
        return rc;
    int64_t shape[4] = {x->shape[0], O, g.Ho, g.Wo};
    td__meta_set(out, x->dtype, 4, shape);
    return td__check_shape("conv2d", shape, 4, x->dtype, err);
}

int cpu_conv2d(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0], *wm = &c->in_meta[1];
    enum td_dtype dt = compute_dtype(xm->dtype);
    size_t isz = td_dtype_size(dt);
    struct win g = {.kh = wm->shape[2], .kw = wm->shape[3]};
    struct td_tensor *x = NULL, *w = NULL, *b = NULL, *o = NULL;
    char *col = NULL;
    int rc = win_init(c, false, xm->shape[2], xm->shape[3], &g, err);
    if (rc)
        return rc;
    int64_t N = xm->shape[0], C = xm->shape[1], O = wm->shape[0];
    int64_t G = td_arg_int(c, "groups"), Cg = C / G, Og = O / G;
    int64_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W;
    bool direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
    rc = check_blas_dims("conv2d", Og, L, K, err);
    if (!rc)
        rc = xwb_as(c, out[0], dt, &x, &w, &b, &o, err);
    if (rc)
        goto out;
    if (N == 0 || O == 0 || L == 0)
        goto out;
    const char *xp = td_tensor_data(x), *wp = td_tensor_data(w);
    char *op = td_tensor_data(o);
    if (direct || K == 0) {
        /* 1x1 stride-1 kernels read the image itself: one GEMM per sample and group. */
        for (int64_t n = 0; n < N; n++) {
            const char *xin = xp + (size_t)(n * C * HW) * isz;
            char *on = op + (size_t)(n * O * L) * isz;
            for (int64_t gi = 0; gi < G; gi++) {
                char *og = on + (size_t)(gi * Og * L) * isz;
                if (b)
                    for (int64_t oc = 0; oc < Og; oc++)
                        fill_rows(og + (size_t)(oc * L) * isz,
                                  (const char *)td_tensor_data(b) +
                                      (size_t)(gi * Og + oc) * isz,
                                  L, 1, isz);
                else if (K == 0)
                    memset(og, 0, (size_t)(Og * L) * isz);
                if (K == 0 || Og == 0)
                    continue;
                gemm(dt, false, false, Og, L, K, wp + (size_t)(gi * Og * K) * isz, K,
                     xin + (size_t)(gi * Cg * HW) * isz, HW, b ? 1.0 : 0.0, og, L);
            }
        }
        goto out;
    }
    /* Batches of nb samples share one GEMM per group: the columns of all nb images sit side
     * by side ([G*K, nb*L]), so small images do not pay a BLAS call per sample. nb is bounded
     * so the buffers stay near CONV_BATCH_ELEMS. */
    int64_t per = G * K * L + Og * L, nb = per > 0 ? CONV_BATCH_ELEMS / per : N;
    if (nb < 1)
        nb = 1;
    if (nb > N)
        nb = N;
    rc = check_blas_dims("conv2d", Og, nb * L, K, err);
    if (rc)
        goto out;
    {
        size_t n1, n2;
        if (!td_mul_size((size_t)(G * K), (size_t)(nb * L), &n1) ||
            !td_mul_size((size_t)Og, (size_t)(nb * L), &n2) || !td_add_size(n1, n2, &n1) ||
            !td_mul_size(n1, isz, &n1) || !(col = td_malloc(n1 ? n1 : 1))) {
            rc = td_error_set(err, TD_ENOMEM, "conv2d: no memory for the im2col buffer");
            goto out;
        }
    }
    char *res = col + (size_t)(G * K * nb * L) * isz;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, ld = cnt * L;
        im2col_batch(xp + (size_t)(n0 * C * HW) * isz, col, cnt, C, &g, isz, ld);
        for (int64_t gi = 0; gi < G; gi++) {
            if (Og == 0)
                continue;
            gemm(dt, false, false, Og, ld, K, wp + (size_t)(gi * Og * K) * isz, K,
                 col + (size_t)(gi * K * ld) * isz, ld, 0.0, res, ld);
            /* res [Og, cnt*L] -> out[n0+k, gi*Og + oc, :], plus the bias. */
            for (int64_t k = 0; k < cnt; k++)
                for (int64_t oc = 0; oc < Og; oc++) {
                    char *dst = op + (size_t)(((n0 + k) * O + gi * Og + oc) * L) * isz;
                    const char *src = res + (size_t)(oc * ld + k * L) * isz;
                    memcpy(dst, src, (size_t)L * isz);
                    if (b)
                        add_bias_row(dt, dst, (const char *)td_tensor_data(b) +
                                                  (size_t)(gi * Og + oc) * isz, L);
                }
        }
    }
out:
    td_free(col);
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    td_tensor_release(w);
    td_tensor_release(b);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * conv2d_backward_input(g, w) and conv2d_backward_weight(x, g): conv2d's gradients as single
 * kernels. Like the forward, nb samples at a time share one GEMM per group: g's rows are
 * gathered into gb [O, nb*L] (sample k's L columns at k*L) and the columns into
 * col [G*K, nb*L], so no permuted copies are needed.
 */

/* Checks the 4-d shapes, dtypes and groups shared by both ops: a is [N, ...] 4-d, b 4-d. */
static int conv_bwd_common(const struct td_op_ctx *c, int64_t *groups, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    char b1[96], b2[96];
    int rc = same_dtype(c, 1, err);
    if (rc)
        return rc;
    if (a->ndim != 4 || b->ndim != 4)
        return td_error_set(err, TD_EINVAL, "%s: both inputs must be 4-d, got %s and %s",
                            c->info->name, td__shape_str(a->shape, a->ndim, b1, sizeof b1),
                            td__shape_str(b->shape, b->ndim, b2, sizeof b2));
    *groups = td_arg_int(c, "groups");
    if (*groups < 1 || *groups > ATTR_MAX)
        return td_error_set(err, TD_EINVAL, "%s: groups must be >= 1, got %lld", c->info->name,
                            (long long)*groups);
    return 0;
}

/* Geometry of conv2d_backward_input: C and the window for input_size and w's kernel; the
 * window's output must be g's spatial size. */
static int conv_bwd_input_geom(const struct td_op_ctx *c, struct win *g, int64_t *C,
                               struct td_error *err)
{
    const struct td_meta *gm = &c->in_meta[0], *wm = &c->in_meta[1];
    char b1[96], b2[96];
    int64_t G = 0, hw[2] = {0, 0};
    int rc = conv_bwd_common(c, &G, err);
    if (!rc)
        rc = pair_attr(c, "input_size", 1, 1, hw, err);
    if (rc)
        return rc;
    int64_t O = wm->shape[0];
    if (O % G || gm->shape[1] != O || wm->shape[2] < 1 || wm->shape[3] < 1 ||
        wm->shape[1] > ATTR_MAX)
        return td_error_set(err, TD_EINVAL, "%s: g %s, w %s and groups %lld do not agree (need "
                            "g.shape[1] == w.shape[0], a multiple of groups, and a positive "
                            "kernel)",
                            c->info->name, td__shape_str(gm->shape, 4, b1, sizeof b1),
                            td__shape_str(wm->shape, 4, b2, sizeof b2), (long long)G);
    *g = (struct win){.kh = wm->shape[2], .kw = wm->shape[3]};
    rc = win_init(c, false, hw[0], hw[1], g, err);
    if (rc)
        return rc;
    if (g->Ho != gm->shape[2] || g->Wo != gm->shape[3])
        return td_error_set(err, TD_EINVAL, "%s: input_size %lldx%lld gives a %lldx%lld output, "
                            "g is %lldx%lld",
                            c->info->name, (long long)hw[0], (long long)hw[1], (long long)g->Ho,
                            (long long)g->Wo, (long long)gm->shape[2], (long long)gm->shape[3]);
    *C = wm->shape[1] * G;
    return 0;
}

int meta_conv2d_backward_input(const struct td_op_ctx *c, struct td_meta *out,
                               struct td_error *err)
{
    struct win g = {0};
    int64_t C = 0;
    int rc = conv_bwd_input_geom(c, &g, &C, err);
    if (rc)
        return rc;
    int64_t shape[4] = {c->in_meta[0].shape[0], C, g.H, g.W};
    td__meta_set(out, c->in_meta[0].dtype, 4, shape);
    return td__check_shape(c->info->name, shape, 4, c->in_meta[0].dtype, err);
}

/* Geometry of conv2d_backward_weight: the window for x and kernel_size, whose output must
 * be g's spatial size; x's channels and g's must divide by groups. */
static int conv_bwd_weight_geom(const struct td_op_ctx *c, struct win *g, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0], *gm = &c->in_meta[1];
    char b1[96], b2[96];
    int64_t G = 0;
    int rc = conv_bwd_common(c, &G, err);
    if (rc)
        return rc;
    if (xm->shape[1] % G || gm->shape[1] % G || xm->shape[0] != gm->shape[0])
        return td_error_set(err, TD_EINVAL, "%s: x %s, g %s and groups %lld do not agree (need "
                            "the same N and channels divisible by groups)",
                            c->info->name, td__shape_str(xm->shape, 4, b1, sizeof b1),
                            td__shape_str(gm->shape, 4, b2, sizeof b2), (long long)G);
    rc = win_init(c, true, xm->shape[2], xm->shape[3], g, err);
    if (rc)
        return rc;
    if (g->Ho != gm->shape[2] || g->Wo != gm->shape[3])
        return td_error_set(err, TD_EINVAL, "%s: x gives a %lldx%lld output with this kernel, "
                            "g is %lldx%lld",
                            c->info->name, (long long)g->Ho, (long long)g->Wo,
                            (long long)gm->shape[2], (long long)gm->shape[3]);
    return 0;
}

int meta_conv2d_backward_weight(const struct td_op_ctx *c, struct td_meta *out,
                                struct td_error *err)
{
    struct win g;
    int rc = conv_bwd_weight_geom(c, &g, err);
    if (rc)
        return rc;
    int64_t G = td_arg_int(c, "groups");
    int64_t shape[4] = {c->in_meta[1].shape[1], c->in_meta[0].shape[1] / G, g.kh, g.kw};
    td__meta_set(out, c->in_meta[0].dtype, 4, shape);
    return td__check_shape(c->info->name, shape, 4, c->in_meta[0].dtype, err);
}

/* Samples per batch for buffers of rows x (nb*L) elements: near CONV_BATCH_ELEMS, in [1, N]. */
static int64_t conv_batch(int64_t rows, int64_t L, int64_t N)
{
    int64_t per = rows * L, nb = per > 0 ? CONV_BATCH_ELEMS / per : N;
    if (nb < 1)
        nb = 1;
    return nb > N ? N : nb;
}

/* One buffer of (cols + grows) x (nb*L) elements of size isz; *gb points at the second
 * part. Returns: the buffer or NULL (TD_ENOMEM set). */
static char *conv_buffers(const char *op, int64_t cols, int64_t grows, int64_t nbL, size_t isz,
                          char **gb, struct td_error *err)
{
    size_t n1, n2;
    char *p = NULL;
    if (td_mul_size((size_t)cols, (size_t)nbL, &n1) &&
        td_mul_size((size_t)grows, (size_t)nbL, &n2) && td_add_size(n1, n2, &n2) &&
        td_mul_size(n2, isz, &n2))
        p = td_malloc(n2 ? n2 : 1);
    if (!p) {
        td_error_set(err, TD_ENOMEM, "%s: no memory for the column buffers", op);
        return NULL;
    }
    *gb = p + n1 * isz;
    return p;
}

/* gb [O, cnt*L] <- g[n0 .. n0+cnt) ([N, O, L] contiguous). */
static void gather_rows(char *gb, const char *g, int64_t n0, int64_t cnt, int64_t O, int64_t L,
                        size_t isz)
{
    int64_t ld = cnt * L;
    for (int64_t k = 0; k < cnt; k++)
        for (int64_t oc = 0; oc < O; oc++)
            memcpy(gb + (size_t)(oc * ld + k * L) * isz,
                   g + (size_t)(((n0 + k) * O + oc) * L) * isz, (size_t)L * isz);
}

int cpu_conv2d_backward_input(const struct td_op_ctx *c, struct td_tensor **out,
                              struct td_error *err)
{
    const struct td_meta *gm = &c->in_meta[0], *wm = &c->in_meta[1];
    enum td_dtype dt = compute_dtype(gm->dtype);
    size_t isz = td_dtype_size(dt);
    struct win g = {0};
    int64_t C = 0;
    struct td_tensor *gt = NULL, *w = NULL, *o = NULL;
    char *col = NULL, *gb = NULL;
    int rc = conv_bwd_input_geom(c, &g, &C, err);
    if (rc)
        return rc;
    int64_t N = gm->shape[0], O = wm->shape[0], G = td_arg_int(c, "groups");
    int64_t Og = O / G, K = wm->shape[1] * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W;
    rc = in_as(c, c->inputs[0], dt, &gt, err);
    if (!rc)
        rc = in_out_as(c, 1, out[0], dt, &w, &o, err);
    if (rc)
        goto out;
    char *op = td_tensor_data(o);
    if (N == 0 || C == 0)
        goto out;
    if (O == 0) {
        memset(op, 0, (size_t)(N * C * HW) * isz);
        goto out;
    }
    int64_t nb = conv_batch(G * K + O, L, N);
    rc = check_blas_dims(c->info->name, K, nb * L, Og, err);
    if (rc)
        goto out;
    col = conv_buffers(c->info->name, G * K, O, nb * L, isz, &gb, err);
    if (!col) {
        rc = TD_ENOMEM;
        goto out;
    }
    const char *gp = td_tensor_data(gt), *wp = td_tensor_data(w);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, ld = cnt * L;
        gather_rows(gb, gp, n0, cnt, O, L, isz);
        for (int64_t gi = 0; gi < G; gi++)
            gemm(dt, true, false, K, ld, Og, wp + (size_t)(gi * Og * K) * isz, K,
                 gb + (size_t)(gi * Og * ld) * isz, ld, 0.0, col + (size_t)(gi * K * ld) * isz,
                 ld);
        struct cols_job j = {NULL, op + (size_t)(n0 * C * HW) * isz, col, &g, C, ld, isz};
        td__parallel_for(cnt, grain_for(C * (g.kh * g.kw * L + HW)), col2im_chunk, &j);
    }
out:
    td_free(col);
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(gt);
    td_tensor_release(w);
    return rc;
}

int cpu_conv2d_backward_weight(const struct td_op_ctx *c, struct td_tensor **out,
                               struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0], *gm = &c->in_meta[1];
    enum td_dtype dt = compute_dtype(xm->dtype);
    size_t isz = td_dtype_size(dt);
    struct win g;
    struct td_tensor *x = NULL, *gt = NULL, *o = NULL;
    char *col = NULL, *gb = NULL;
    int rc = conv_bwd_weight_geom(c, &g, err);
    if (rc)
        return rc;
    int64_t N = xm->shape[0], C = xm->shape[1], O = gm->shape[1], G = td_arg_int(c, "groups");
    int64_t Og = O / G, Cg = C / G, K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W;
    rc = in_as(c, c->inputs[0], dt, &x, err);
    if (!rc)
        rc = in_out_as(c, 1, out[0], dt, &gt, &o, err);
    if (rc)
        goto out;
    char *op = td_tensor_data(o);
    if (O == 0 || K == 0)
        goto out;
    if (N == 0) {
        memset(op, 0, (size_t)(O * K) * isz);
        goto out;
    }
    int64_t nb = conv_batch(G * K + O, L, N);
    rc = check_blas_dims(c->info->name, Og, K, nb * L, err);
    if (rc)
        goto out;
    col = conv_buffers(c->info->name, G * K, O, nb * L, isz, &gb, err);
    if (!col) {
        rc = TD_ENOMEM;
        goto out;
    }
    const char *xp = td_tensor_data(x), *gp = td_tensor_data(gt);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t cnt = N - n0 < nb ? N - n0 : nb, ld = cnt * L;
        im2col_batch(xp + (size_t)(n0 * C * HW) * isz, col, cnt, C, &g, isz, ld);
        gather_rows(gb, gp, n0, cnt, O, L, isz);
        for (int64_t gi = 0; gi < G; gi++)
            gemm(dt, false, true, Og, K, ld, gb + (size_t)(gi * Og * ld) * isz, ld,
                 col + (size_t)(gi * K * ld) * isz, ld, n0 == 0 ? 0.0 : 1.0,
                 op + (size_t)(gi * Og * K) * isz, K);
    }
out:
    td_free(col);
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    td_tensor_release(gt);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * im2col (F.unfold) and col2im (F.fold).
 */
int meta_im2col(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    char b1[96];
    if (x->ndim != 3 && x->ndim != 4)
        return td_error_set(err, TD_EINVAL, "im2col: input must be 3-d or 4-d, got %s",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1));
    int nd = x->ndim;
    struct win g = {0};
    int rc = win_init(c, true, x->shape[nd - 2], x->shape[nd - 1], &g, err);
    if (rc)
        return rc;
    int64_t rows, L;
    if (!td_mul_i64(x->shape[nd - 3], g.kh * g.kw, &rows) || !td_mul_i64(g.Ho, g.Wo, &L))
        return td_error_set(err, TD_EINVAL, "im2col: output too large");
    int64_t shape[3] = {x->shape[0], rows, L};
    int ond = nd - 1;
    if (nd == 3)
        shape[0] = rows, shape[1] = L;
    td__meta_set(out, x->dtype, ond, shape);
    return td__check_shape("im2col", shape, ond, x->dtype, err);
}

int cpu_im2col(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    int nd = xm->ndim;
    struct win g;
    struct td_tensor *x = NULL;
    int rc = win_init(c, true, xm->shape[nd - 2], xm->shape[nd - 1], &g, err);
    if (!rc)
        rc = td_tensor_contiguous(c->inputs[0], c->account, &x, err);
    if (rc)
        return rc;
    int64_t N = nd == 4 ? xm->shape[0] : 1, C = xm->shape[nd - 3];
    size_t isz = td_dtype_size(xm->dtype);
    int64_t in_img = C * g.H * g.W, out_img = C * g.kh * g.kw * g.Ho * g.Wo;
    const char *xp = td_tensor_data(x);
    char *op = td_tensor_data(out[0]);
    for (int64_t n = 0; n < N && out_img > 0; n++)
        im2col_any(xp + (size_t)(n * in_img) * isz, op + (size_t)(n * out_img) * isz, C, &g,
                   isz, g.Ho * g.Wo);
    td_tensor_release(x);
    return 0;
}

/* col2im geometry: from the input meta and output_size. */
static int col2im_geom(const struct td_op_ctx *c, struct win *g, int64_t *C,
                       struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    char b1[96];
    if (x->ndim != 2 && x->ndim != 3)
        return td_error_set(err, TD_EINVAL, "col2im: input must be 2-d or 3-d, got %s",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1));
    int64_t osz[2] = {0, 0};
    int rc = pair_attr(c, "output_size", 1, 1, osz, err);
    if (!rc)
        rc = win_init(c, true, osz[0], osz[1], g, err);
    if (rc)
        return rc;
    int nd = x->ndim;
    int64_t rows = x->shape[nd - 2], L = x->shape[nd - 1], kk = g->kh * g->kw;
    if (rows % kk)
        return td_error_set(err, TD_EINVAL, "col2im: %lld rows is not a multiple of the kernel's "
                            "%lld elements", (long long)rows, (long long)kk);
    if (L != g->Ho * g->Wo)
        return td_error_set(err, TD_EINVAL, "col2im: %lld blocks given, output_size %lldx%lld "
                            "with this kernel gives %lld",
                            (long long)L, (long long)osz[0], (long long)osz[1],
                            (long long)(g->Ho * g->Wo));
    *C = rows / kk;
    return 0;
}

int meta_col2im(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    struct win g = {0};
    int64_t C = 0;
    int rc = col2im_geom(c, &g, &C, err);
    if (rc)
        return rc;
    int64_t shape[4] = {x->shape[0], C, g.H, g.W};
    int ond = x->ndim + 1;
    if (x->ndim == 2)
        shape[0] = C, shape[1] = g.H, shape[2] = g.W;
    td__meta_set(out, x->dtype, ond, shape);
    return td__check_shape("col2im", shape, ond, x->dtype, err);
}

int cpu_col2im(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    struct win g = {0};
    int64_t C = 0;
    enum td_dtype dt = compute_dtype(xm->dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int rc = col2im_geom(c, &g, &C, err);
    if (!rc)
        rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    int64_t N = xm->ndim == 3 ? xm->shape[0] : 1;
    int64_t in_img = C * g.kh * g.kw * g.Ho * g.Wo, out_img = C * g.H * g.W;
    bool dbl = dt == TD_FLOAT64 || dt == TD_COMPLEX128;
    int nc = td_dtype_is_complex(dt) ? 2 : 1;
#define COL2IM_SAMPLE(T)                                                                      \
    col2im_##T((const T *)td_tensor_data(x) + n * in_img * nc,                                \
               (T *)td_tensor_data(o) + n * out_img * nc, C, &g, nc, g.Ho * g.Wo)
    for (int64_t n = 0; n < N; n++) {
        if (dbl)
            COL2IM_SAMPLE(double);
        else
            COL2IM_SAMPLE(float);
    }
#undef COL2IM_SAMPLE
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * threshold_backward(g, x) = g where x > threshold, else 0: relu's VJP (x its output or
 * input) as one pass instead of a comparison and a product, and exactly zero where x is
 * at or below the threshold even when g is infinite or NaN (PyTorch's threshold_backward).
 */
int meta_threshold_backward(const struct td_op_ctx *c, struct td_meta *out,
                            struct td_error *err)
{
    const struct td_meta *g = &c->in_meta[0], *x = &c->in_meta[1];
    char b1[96], b2[96];
    int rc = same_dtype(c, 1, err);
    if (rc)
        return rc;
    if (g->ndim != x->ndim || memcmp(g->shape, x->shape, sizeof(int64_t) * (size_t)g->ndim))
        return td_error_set(err, TD_EINVAL, "threshold_backward: g %s and x %s must have one "
                            "shape",
                            td__shape_str(g->shape, g->ndim, b1, sizeof b1),
                            td__shape_str(x->shape, x->ndim, b2, sizeof b2));
    td__meta_set(out, g->dtype, g->ndim, g->shape);
    return 0;
}

struct thr_job {
    const void *g, *x;
    void *out;
    double th;
};

#define DEF_THRESHOLD_BWD(T, SUF)                                                             \
    static void thr_bwd_##SUF(int64_t b, int64_t e, void *ctx)                                \
    {                                                                                         \
        const struct thr_job *j = ctx;                                                        \
        const T *g = j->g, *x = j->x;                                                         \
        T *o = j->out, th = (T)j->th;                                                         \
        for (int64_t k = b; k < e; k++)                                                       \
            o[k] = sel_##SUF((T)0, g[k], x[k] > th);                                          \
    }

DEF_THRESHOLD_BWD(float, f32)
DEF_THRESHOLD_BWD(double, f64)

int cpu_threshold_backward(const struct td_op_ctx *c, struct td_tensor **out,
                           struct td_error *err)
{
    enum td_dtype dt = compute_dtype(c->in_meta[0].dtype);
    struct td_tensor *g = NULL, *x = NULL, *o = NULL;
    int rc = in_as(c, c->inputs[0], dt, &g, err);
    if (!rc)
        rc = in_out_as(c, 1, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    struct thr_job j = {td_tensor_data(g), td_tensor_data(x), td_tensor_data(o),
                        td_arg_float(c, "threshold")};
    td__parallel_for(td_tensor_numel(o), TD__PAR_GRAIN,
                     dt == TD_FLOAT64 ? thr_bwd_f64 : thr_bwd_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(g);
    td_tensor_release(x);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Pooling geometry (PyTorch's pooling_output_shape and pool2d_shape_check).
 */
struct pool {
    int64_t planes, H, W, Ho, Wo;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    bool ceil_mode;
};

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode)
{
    int64_t o = floordiv(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

/* Reads the pooling attrs for an input of spatial size H x W (the input's for max/avg pool;
 * input_size for the backward ops). dil: the op has a dilation attr. */
static int pool_init(const struct td_op_ctx *c, bool dil, int64_t H, int64_t W, struct pool *p,
                     struct td_error *err)
{
    int64_t k[2], s[2], pd[2], d[2] = {1, 1};
    int rc = pair_attr(c, "kernel_size", 1, 1, k, err);
    if (!rc)
        rc = pair_attr(c, "stride", 0, 1, s, err);
    if (!rc)
        rc = pair_attr(c, "padding", 0, 0, pd, err);
    if (!rc && dil)
        rc = pair_attr(c, "dilation", 1, 1, d, err);
    if (rc)
        return rc;
    if (!td_arg_has(c, "stride"))
        s[0] = k[0], s[1] = k[1];
    p->kh = k[0], p->kw = k[1], p->sh = s[0], p->sw = s[1];
    p->ph = pd[0], p->pw = pd[1], p->dh = d[0], p->dw = d[1];
    p->ceil_mode = td_arg_bool(c, "ceil_mode");
    if (p->ph > p->kh / 2 || p->pw > p->kw / 2)
        return td_error_set(err, TD_EINVAL, "%s: padding %lld,%lld must be at most half of the "
                            "kernel size %lld,%lld",
                            c->info->name, (long long)p->ph, (long long)p->pw, (long long)p->kh,
                            (long long)p->kw);
    p->H = H, p->W = W;
    p->Ho = pool_out(H, p->kh, p->sh, p->ph, p->dh, p->ceil_mode);
    p->Wo = pool_out(W, p->kw, p->sw, p->pw, p->dw, p->ceil_mode);
    if (p->Ho < 1 || p->Wo < 1)
        return td_error_set(err, TD_EINVAL, "%s: input %lldx%lld gives output %lldx%lld, too "
                            "small",
                            c->info->name, (long long)H, (long long)W, (long long)p->Ho,
                            (long long)p->Wo);
    return 0;
}

/* The input_size attr of the backward ops (1 or 2 positive values). */
static int input_size_attr(const struct td_op_ctx *c, int64_t hw[2], struct td_error *err)
{
    return pair_attr(c, "input_size", 1, 1, hw, err);
}

static int pool_input_dims(const struct td_op_ctx *c, const struct td_meta *m,
                           struct td_error *err)
{
    char b1[96];
    if (m->ndim != 3 && m->ndim != 4)
        return td_error_set(err, TD_EINVAL, "%s: input must be 3-d [C,H,W] or 4-d [N,C,H,W], "
                            "got %s",
                            c->info->name, td__shape_str(m->shape, m->ndim, b1, sizeof b1));
    return 0;
}

/* shape = m's shape (3-d or 4-d) with its last two dims set to h, w. */
static void with_hw(int64_t shape[4], const struct td_meta *m, int64_t h, int64_t w)
{
    memcpy(shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
    shape[m->ndim - 2] = h;
    shape[m->ndim - 1] = w;
}

/* Checks that g's (and the indices') trailing dims are [Ho, Wo] for input_size and sets the
 * output shape (leading dims of g + input_size). */
static int pool_backward_meta(const struct td_op_ctx *c, bool dil, struct pool *p,
                              struct td_meta *out, struct td_error *err)
{
    const struct td_meta *g = &c->in_meta[0];
    int64_t hw[2];
    int rc = pool_input_dims(c, g, err);
    if (!rc)
        rc = input_size_attr(c, hw, err);
    if (!rc)
        rc = pool_init(c, dil, hw[0], hw[1], p, err);
    if (rc)
        return rc;
    int nd = g->ndim;
    if (g->shape[nd - 2] != p->Ho || g->shape[nd - 1] != p->Wo)
        return td_error_set(err, TD_EINVAL, "%s: gradient is %lldx%lld, input_size %lldx%lld "
                            "pools to %lldx%lld",
                            c->info->name, (long long)g->shape[nd - 2],
                            (long long)g->shape[nd - 1], (long long)hw[0], (long long)hw[1],
                            (long long)p->Ho, (long long)p->Wo);
    int64_t shape[4];
    with_hw(shape, g, hw[0], hw[1]);
    p->planes = prod_dims(g->shape, 0, nd - 2);
    td__meta_set(out, g->dtype, nd, shape);
    return td__check_shape(c->info->name, shape, nd, g->dtype, err);
}

/* ---------------------------------------------------------------------------------------
 * max_pool2d and max_pool2d_backward.
 */
int meta_max_pool2d(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    struct pool p;
    int rc = pool_input_dims(c, x, err);
    if (!rc)
        rc = pool_init(c, true, x->shape[x->ndim - 2], x->shape[x->ndim - 1], &p, err);
    if (rc)
        return rc;
    int64_t shape[4];
    with_hw(shape, x, p.Ho, p.Wo);
    td__meta_set(&out[0], x->dtype, x->ndim, shape);
    td__meta_set(&out[1], TD_INT64, x->ndim, shape);
    rc = td__check_shape("max_pool2d", shape, x->ndim, x->dtype, err);
    if (!rc)
        rc = td__check_shape("max_pool2d", shape, x->ndim, TD_INT64, err);
    return rc;
}

struct pool_job {
    const struct pool *p;
    const void *in;
    void *out;
    int64_t *idx;
    const int64_t *cidx;
    bool count_include_pad;
    int64_t divisor;         /* 0: none */
};

/* The struct's fields are copied into locals first: the int64 index stores could alias
 * them, so the compiler would otherwise reload every one per element. Kernel 2, stride 2,
 * no padding or dilation and whole windows (floor mode) take an unrolled path with the
 * same comparison order (first maximum wins, a NaN wins and the last NaN stays). */
#define MAXPOOL_TAKE(T, v, at)                                                                \
    do {                                                                                      \
        T v_ = (v);                                                                           \
        if (v_ > m || isnan(v_)) {                                                            \
            m = v_;                                                                           \
            best = (at);                                                                      \
        }                                                                                     \
    } while (0)

/* MAXPOOL_TAKE without branches, recording the tap number k in sel. */
#define MAXPOOL_SEL(SUF, v, k)                                                                \
    do {                                                                                      \
        int t_ = ((v) > m) | ((v) != (v));                                                    \
        m = sel_##SUF(m, (v), t_);                                                            \
        sel += t_ * ((k) - sel);                                                              \
    } while (0)

#define DEF_MAXPOOL(T, SUF)                                                                   \
    static void maxpool_##SUF(int64_t b, int64_t e, void *ctx)                                \
    {                                                                                         \
        const struct pool_job *j = ctx;                                                       \
        const struct pool *p = j->p;                                                          \
        const int64_t H = p->H, W = p->W, Ho = p->Ho, Wo = p->Wo;                             \
        const int64_t kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;                         \
        const int64_t ph = p->ph, pw = p->pw, dh = p->dh, dw = p->dw;                         \
        const T *in0 = j->in;                                                                 \
        T *out0 = j->out;                                                                     \
        int64_t *ix0 = j->idx;                                                                \
        bool k2 = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 &&           \
                  dh == 1 && dw == 1 && 2 * Ho <= H && 2 * Wo <= W;                           \
        for (int64_t pl = b; pl < e; pl++) {                                                  \
            const T *in = in0 + pl * H * W;                                                   \
            T *out = out0 + pl * Ho * Wo;                                                     \
            int64_t *ix = ix0 + pl * Ho * Wo;                                                 \
            if (k2) {                                                                         \
                for (int64_t oh = 0; oh < Ho; oh++) {                                         \
                    const T *r0 = in + 2 * oh * W, *r1 = r0 + W;                              \
                    const int64_t offs[4] = {0, 1, W, W + 1};                                 \
                    int64_t base = 2 * oh * W;                                                \
                    for (int64_t ow = 0; ow < Wo; ow++) {                                     \
                        int64_t c0 = 2 * ow;                                                  \
                        T v0 = r0[c0], v1 = r0[c0 + 1], v2 = r1[c0], v3 = r1[c0 + 1];         \
                        T m = v0;                                                             \
                        int sel = 0;                                                          \
                        if ((v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)) {              \
                            MAXPOOL_SEL(SUF, v1, 1);                                          \
                            MAXPOOL_SEL(SUF, v2, 2);                                          \
                            MAXPOOL_SEL(SUF, v3, 3);                                          \
                        } else {                                                              \
                            /* No NaN: the maximum (ties keep the earlier value), then        \
                             * the first tap holding it, both without branches. */            \
                            m = v1 > m ? v1 : m;                                              \
                            m = v2 > m ? v2 : m;                                              \
                            m = v3 > m ? v3 : m;                                              \
                            int n0 = v0 != m, n1 = v1 != m, n2 = v2 != m;                     \
                            sel = n0 * (1 + n1 * (1 + n2));                                   \
                        }                                                                     \
                        out[oh * Wo + ow] = m;                                                \
                        ix[oh * Wo + ow] = base + c0 + offs[sel];                             \
                    }                                                                         \
                }                                                                             \
                continue;                                                                     \
            }                                                                                 \
            for (int64_t oh = 0; oh < Ho; oh++) {                                             \
                int64_t hs = oh * sh - ph;                                                    \
                int64_t he = hs + (kh - 1) * dh + 1;                                          \
                if (he > H)                                                                   \
                    he = H;                                                                   \
                while (hs < 0)                                                                \
                    hs += dh;                                                                 \
                for (int64_t ow = 0; ow < Wo; ow++) {                                         \
                    int64_t ws = ow * sw - pw;                                                \
                    int64_t we = ws + (kw - 1) * dw + 1;                                      \
                    if (we > W)                                                               \
                        we = W;                                                               \
                    while (ws < 0)                                                            \
                        ws += dw;                                                             \
                    int64_t best = hs * W + ws;                                               \
                    T m = -(T)INFINITY;                                                       \
                    for (int64_t h = hs; h < he; h += dh)                                     \
                        for (int64_t w = ws; w < we; w += dw)                                 \
                            MAXPOOL_TAKE(T, in[h * W + w], h * W + w);                        \
                    out[oh * Wo + ow] = m;                                                    \
                    ix[oh * Wo + ow] = best;                                                  \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

DEF_MAXPOOL(float, f32)
DEF_MAXPOOL(double, f64)

int cpu_max_pool2d(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    struct pool p;
    enum td_dtype dt = compute_dtype(xm->dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int rc = pool_init(c, true, xm->shape[xm->ndim - 2], xm->shape[xm->ndim - 1], &p, err);
    if (!rc)
        rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    p.planes = prod_dims(xm->shape, 0, xm->ndim - 2);
    struct pool_job j = {&p, td_tensor_data(x), td_tensor_data(o), td_tensor_data(out[1]),
                         NULL, false, 0};
    td__parallel_for(p.planes, grain_for(p.Ho * p.Wo * p.kh * p.kw),
                     dt == TD_FLOAT64 ? maxpool_f64 : maxpool_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

int meta_max_pool2d_backward(const struct td_op_ctx *c, struct td_meta *out,
                             struct td_error *err)
{
    const struct td_meta *g = &c->in_meta[0], *ix = &c->in_meta[1];
    char b1[96], b2[96];
    int rc = pool_input_dims(c, g, err);
    if (rc)
        return rc;
    if (ix->dtype != TD_INT64 || !(ix->ndim == g->ndim &&
                                   !memcmp(ix->shape, g->shape, sizeof(int64_t) * (size_t)g->ndim)))
        return td_error_set(err, TD_EINVAL, "max_pool2d_backward: indices must be int64 of the "
                            "gradient's shape %s, got %s %s",
                            td__shape_str(g->shape, g->ndim, b1, sizeof b1),
                            td_dtype_name(ix->dtype),
                            td__shape_str(ix->shape, ix->ndim, b2, sizeof b2));
    int64_t hw[2];
    rc = input_size_attr(c, hw, err);
    if (rc)
        return rc;
    int64_t shape[4];
    with_hw(shape, g, hw[0], hw[1]);
    td__meta_set(out, g->dtype, g->ndim, shape);
    return td__check_shape("max_pool2d_backward", shape, g->ndim, g->dtype, err);
}

#define DEF_MAXPOOL_BWD(T, SUF)                                                               \
    static void maxpool_bwd_##SUF(int64_t b, int64_t e, void *ctx)                            \
    {                                                                                         \
        const struct pool_job *j = ctx;                                                       \
        const struct pool *p = j->p;                                                          \
        for (int64_t pl = b; pl < e; pl++) {                                                  \
            const T *g = (const T *)j->in + pl * p->Ho * p->Wo;                               \
            const int64_t *ix = j->cidx + pl * p->Ho * p->Wo;                                 \
            T *out = (T *)j->out + pl * p->H * p->W;                                          \
            memset(out, 0, sizeof(T) * (size_t)(p->H * p->W));                                \
            for (int64_t k = 0; k < p->Ho * p->Wo; k++)                                       \
                out[ix[k]] += g[k];                                                           \
        }                                                                                     \
    }

DEF_MAXPOOL_BWD(float, f32)
DEF_MAXPOOL_BWD(double, f64)

int cpu_max_pool2d_backward(const struct td_op_ctx *c, struct td_tensor **out,
                            struct td_error *err)
{
    const struct td_meta *gm = &c->in_meta[0];
    enum td_dtype dt = compute_dtype(gm->dtype);
    struct td_tensor *g = NULL, *ix = NULL, *o = NULL;
    int64_t hw[2];
    int rc = input_size_attr(c, hw, err);
    if (rc)
        return rc;
    struct pool p = {.H = hw[0], .W = hw[1], .Ho = gm->shape[gm->ndim - 2],
                     .Wo = gm->shape[gm->ndim - 1]};
    p.planes = prod_dims(gm->shape, 0, gm->ndim - 2);
    rc = in_as(c, c->inputs[0], dt, &g, err);
    if (!rc)
        rc = td_tensor_contiguous(c->inputs[1], c->account, &ix, err);
    if (!rc)
        rc = out_as(c, out[0], dt, &o, err);
    if (rc)
        goto out;
    const int64_t *ip = td_tensor_data(ix);
    int64_t n = td_tensor_numel(ix), lim = p.H * p.W;
    for (int64_t k = 0; k < n; k++)
        if (ip[k] < 0 || ip[k] >= lim) {
            rc = td_error_set(err, TD_EINVAL, "max_pool2d_backward: index %lld out of range "
                              "for a %lldx%lld plane",
                              (long long)ip[k], (long long)p.H, (long long)p.W);
            goto out;
        }
    struct pool_job j = {&p, td_tensor_data(g), td_tensor_data(o), NULL, ip, false, 0};
    td__parallel_for(p.planes, grain_for(p.Ho * p.Wo + p.H * p.W),
                     dt == TD_FLOAT64 ? maxpool_bwd_f64 : maxpool_bwd_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(g);
    td_tensor_release(ix);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * avg_pool2d and avg_pool2d_backward. For output (oh, ow) the window is rows
 * [oh*sh - ph, min(that + kh, H + ph)) clipped to [0, H) (columns alike); the divisor is
 * divisor_override, else the unclipped window's size (count_include_pad) or the clipped one.
 */
static int avg_divisor_attr(const struct td_op_ctx *c, int64_t *div, struct td_error *err)
{
    *div = 0;
    if (td_arg_has(c, "divisor_override")) {
        *div = td_arg_int(c, "divisor_override");
        if (*div == 0)
            return td_error_set(err, TD_EINVAL, "%s: divisor_override must be non-zero",
                                c->info->name);
    }
    return 0;
}

/* The window of output (oh, ow): clipped bounds and divisor. */
static void avg_window(const struct pool_job *j, int64_t oh, int64_t ow, int64_t *hs,
                       int64_t *he, int64_t *ws, int64_t *we, double *div)
{
    const struct pool *p = j->p;
    int64_t h0 = oh * p->sh - p->ph, w0 = ow * p->sw - p->pw;
    int64_t h1 = h0 + p->kh, w1 = w0 + p->kw;
    if (h1 > p->H + p->ph)
        h1 = p->H + p->ph;
    if (w1 > p->W + p->pw)
        w1 = p->W + p->pw;
    int64_t pool_size = (h1 - h0) * (w1 - w0);
    if (h0 < 0)
        h0 = 0;
    if (w0 < 0)
        w0 = 0;
    if (h1 > p->H)
        h1 = p->H;
    if (w1 > p->W)
        w1 = p->W;
    *hs = h0, *he = h1, *ws = w0, *we = w1;
    if (j->divisor)
        *div = (double)j->divisor;
    else if (j->count_include_pad)
        *div = (double)pool_size;
    else
        *div = (double)((h1 - h0) * (w1 - w0));
}

#define DEF_AVGPOOL(T, SUF)                                                                   \
    static void avgpool_##SUF(int64_t b, int64_t e, void *ctx)                                \
    {                                                                                         \
        const struct pool_job *j = ctx;                                                       \
        const struct pool *p = j->p;                                                          \
        for (int64_t pl = b; pl < e; pl++) {                                                  \
            const T *in = (const T *)j->in + pl * p->H * p->W;                                \
            T *out = (T *)j->out + pl * p->Ho * p->Wo;                                        \
            for (int64_t oh = 0; oh < p->Ho; oh++)                                            \
                for (int64_t ow = 0; ow < p->Wo; ow++) {                                      \
                    int64_t hs, he, ws, we;                                                   \
                    double div;                                                               \
                    avg_window(j, oh, ow, &hs, &he, &ws, &we, &div);                          \
                    double s = 0;                                                             \
                    for (int64_t h = hs; h < he; h++)                                         \
                        for (int64_t w = ws; w < we; w++)                                     \
                            s += in[h * p->W + w];                                            \
                    out[oh * p->Wo + ow] = (hs < he && ws < we) ? (T)(s / div) : (T)0;        \
                }                                                                             \
        }                                                                                     \
    }

#define DEF_AVGPOOL_BWD(T, SUF)                                                               \
    static void avgpool_bwd_##SUF(int64_t b, int64_t e, void *ctx)                            \
    {                                                                                         \
        const struct pool_job *j = ctx;                                                       \
        const struct pool *p = j->p;                                                          \
        for (int64_t pl = b; pl < e; pl++) {                                                  \
            const T *g = (const T *)j->in + pl * p->Ho * p->Wo;                               \
            T *out = (T *)j->out + pl * p->H * p->W;                                          \
            memset(out, 0, sizeof(T) * (size_t)(p->H * p->W));                                \
            for (int64_t oh = 0; oh < p->Ho; oh++)                                            \
                for (int64_t ow = 0; ow < p->Wo; ow++) {                                      \
                    int64_t hs, he, ws, we;                                                   \
                    double div;                                                               \
                    avg_window(j, oh, ow, &hs, &he, &ws, &we, &div);                          \
                    T v = (T)(g[oh * p->Wo + ow] / div);                                      \
                    for (int64_t h = hs; h < he; h++)                                         \
                        for (int64_t w = ws; w < we; w++)                                     \
                            out[h * p->W + w] += v;                                           \
                }                                                                             \
        }                                                                                     \
    }

DEF_AVGPOOL(float, f32)
DEF_AVGPOOL(double, f64)
DEF_AVGPOOL_BWD(float, f32)
DEF_AVGPOOL_BWD(double, f64)

int meta_avg_pool2d(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    struct pool p;
    int64_t div;
    int rc = pool_input_dims(c, x, err);
    if (!rc)
        rc = avg_divisor_attr(c, &div, err);
    if (!rc)
        rc = pool_init(c, false, x->shape[x->ndim - 2], x->shape[x->ndim - 1], &p, err);
    if (rc)
        return rc;
    int64_t shape[4];
    with_hw(shape, x, p.Ho, p.Wo);
    td__meta_set(out, x->dtype, x->ndim, shape);
    return td__check_shape("avg_pool2d", shape, x->ndim, x->dtype, err);
}

int cpu_avg_pool2d(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    struct pool p;
    int64_t div;
    enum td_dtype dt = compute_dtype(xm->dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int rc = avg_divisor_attr(c, &div, err);
    if (!rc)
        rc = pool_init(c, false, xm->shape[xm->ndim - 2], xm->shape[xm->ndim - 1], &p, err);
    if (!rc)
        rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    p.planes = prod_dims(xm->shape, 0, xm->ndim - 2);
    struct pool_job j = {&p, td_tensor_data(x), td_tensor_data(o), NULL, NULL,
                         td_arg_bool(c, "count_include_pad"), div};
    td__parallel_for(p.planes, grain_for(p.Ho * p.Wo * p.kh * p.kw),
                     dt == TD_FLOAT64 ? avgpool_f64 : avgpool_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

int meta_avg_pool2d_backward(const struct td_op_ctx *c, struct td_meta *out,
                             struct td_error *err)
{
    struct pool p;
    int64_t div;
    int rc = avg_divisor_attr(c, &div, err);
    if (rc)
        return rc;
    return pool_backward_meta(c, false, &p, out, err);
}

int cpu_avg_pool2d_backward(const struct td_op_ctx *c, struct td_tensor **out,
                            struct td_error *err)
{
    struct pool p;
    struct td_meta om;
    int64_t div;
    enum td_dtype dt = compute_dtype(c->in_meta[0].dtype);
    struct td_tensor *g = NULL, *o = NULL;
    int rc = avg_divisor_attr(c, &div, err);
    if (!rc)
        rc = pool_backward_meta(c, false, &p, &om, err);
    if (!rc)
        rc = in_out_as(c, 0, out[0], dt, &g, &o, err);
    if (rc)
        goto out;
    struct pool_job j = {&p, td_tensor_data(g), td_tensor_data(o), NULL, NULL,
                         td_arg_bool(c, "count_include_pad"), div};
    td__parallel_for(p.planes, grain_for(p.Ho * p.Wo * p.kh * p.kw + p.H * p.W),
                     dt == TD_FLOAT64 ? avgpool_bwd_f64 : avgpool_bwd_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(g);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * softmax and log_softmax along dim: the tensor is seen as [outer, n, inner].
 */
struct sm_job {
    const void *in;
    void *out;
    int64_t n, inner;
    bool log;
};

#define DEF_SOFTMAX(T, SUF, EXP)                                                         \
    static void softmax_##SUF(int64_t b, int64_t e, void *ctx)                                \
    {                                                                                         \
        const struct sm_job *j = ctx;                                                         \
        int64_t n = j->n, st = j->inner;                                                      \
        for (int64_t r = b; r < e; r++) {                                                     \
            int64_t o = r / st, i = r % st;                                                   \
            const T *x = (const T *)j->in + o * n * st + i;                                   \
            T *y = (T *)j->out + o * n * st + i;                                              \
            T m = -(T)INFINITY;                                                               \
            for (int64_t k = 0; k < n; k++)                                                   \
                if (x[k * st] > m || isnan(x[k * st]))                                        \
                    m = x[k * st];                                                            \
            if (isinf(m) && m < 0)                                                            \
                m = 0;                                                                        \
            double s = 0;                                                                     \
            if (j->log) {                                                                     \
                for (int64_t k = 0; k < n; k++)                                               \
                    s += EXP(x[k * st] - m);                                                  \
                T ls = (T)log(s);                                                             \
                for (int64_t k = 0; k < n; k++)                                               \
                    y[k * st] = (x[k * st] - m) - ls;                                         \
            } else {                                                                          \
                for (int64_t k = 0; k < n; k++) {                                             \
                    T v = EXP(x[k * st] - m);                                                 \
                    y[k * st] = v;                                                            \
                    s += v;                                                                   \
                }                                                                             \
                T inv = (T)(1.0 / s);                                                         \
                for (int64_t k = 0; k < n; k++)                                               \
                    y[k * st] *= inv;                                                         \
            }                                                                                 \
        }                                                                                     \
    }

DEF_SOFTMAX(float, f32, expf)
DEF_SOFTMAX(double, f64, exp)

static int meta_softmax_any(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    int d;
    int rc = td__norm_dim(c->info->name, td_arg_int(c, "dim"), x->ndim, &d, err);
    if (rc)
        return rc;
    td__meta_set(out, x->dtype, x->ndim, x->shape);
    return 0;
}

static int cpu_softmax_any(const struct td_op_ctx *c, struct td_tensor **out, bool log,
                           struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    enum td_dtype dt = compute_dtype(xm->dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int d;
    int rc = td__norm_dim(c->info->name, td_arg_int(c, "dim"), xm->ndim, &d, err);
    if (!rc)
        rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    int64_t n = xm->ndim ? xm->shape[d] : 1;
    int64_t outer = xm->ndim ? prod_dims(xm->shape, 0, d) : 1;
    int64_t inner = xm->ndim ? prod_dims(xm->shape, d + 1, xm->ndim) : 1;
    if (n == 0 || outer * inner == 0)
        goto out;
    struct sm_job j = {td_tensor_data(x), td_tensor_data(o), n, inner, log};
    td__parallel_for(outer * inner, grain_for(3 * n),
                     dt == TD_FLOAT64 ? softmax_f64 : softmax_f32, &j);
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

int meta_softmax(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_softmax_any(c, out, err);
}

int cpu_softmax(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_softmax_any(c, out, false, err);
}

int meta_log_softmax(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_softmax_any(c, out, err);
}

int cpu_log_softmax(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_softmax_any(c, out, true, err);
}

/* ---------------------------------------------------------------------------------------
 * dropout: element k keeps its value when u_k < 1 - p, u_k = word k of the op's Philox
 * stream / 2^32 (the stream of ops_creation.c: counter offset + k/4, word k%4); the
 * generator advances by ceil(numel / 4) blocks. p = 0 and train = false draw nothing.
 */
int meta_dropout(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    double p = td_arg_float(c, "p");
    if (!(p >= 0 && p <= 1))
        return td_error_set(err, TD_EINVAL, "dropout: p must be in [0, 1], got %g", p);
    td__meta_set(&out[0], x->dtype, x->ndim, x->shape);
    td__meta_set(&out[1], TD_BOOL, x->ndim, x->shape);
    return 0;
}

struct drop_job {
    const void *in;
    void *out;
    bool *mask;
    const struct td_rng *rng;
    uint32_t thresh;        /* keep when word < thresh (thresh = (1 - p) * 2^32) */
    double scale;
};

#define DEF_DROPOUT(T, SUF)                                                                   \
    static void dropout_##SUF(int64_t b, int64_t e, void *ctx)                                \
    {                                                                                         \
        const struct drop_job *j = ctx;                                                       \
        const T *x = j->in;                                                                   \
        T *y = j->out;                                                                        \
        T s = (T)j->scale;                                                                    \
        uint32_t w[4];                                                                        \
        int64_t k = b;                                                                        \
        while (k < e) {                                                                       \
            uint64_t blk = (uint64_t)k / 4;                                                   \
            td_philox4x32(j->rng->seed, 0, j->rng->offset + blk, w);                          \
            for (int q = (int)(k % 4); q < 4 && k < e; q++, k++) {                            \
                bool keep = w[q] < j->thresh;                                                 \
                j->mask[k] = keep;                                                            \
                y[k] = keep ? x[k] * s : (T)0;                                                \
            }                                                                                 \
        }                                                                                     \
    }

DEF_DROPOUT(float, f32)
DEF_DROPOUT(double, f64)

int cpu_dropout(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    double p = td_arg_float(c, "p");
    bool train = td_arg_bool(c, "train");
    int64_t n = td_tensor_numel(out[0]);
    bool *mask = td_tensor_data(out[1]);
    if (!train || p == 0) {
        memset(mask, 1, (size_t)n);
        return td_tensor_copy(out[0], c->inputs[0], err);
    }
    if (p == 1) {
        memset(mask, 0, (size_t)n);
        memset(td_tensor_data(out[0]), 0, td_tensor_nbytes(out[0]));
        return 0;
    }
    if (!c->rng)
        return td_error_set(err, TD_EINVAL, "dropout: no random generator");
    enum td_dtype dt = compute_dtype(xm->dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (rc)
        goto out;
    double keep = 1 - p;
    double th = ldexp(keep, 32);
    struct drop_job j = {td_tensor_data(x), td_tensor_data(o), mask, c->rng,
                         th >= 4294967295.0 ? UINT32_MAX : (uint32_t)th, 1.0 / keep};
    td__parallel_for(n, TD__PAR_GRAIN, dt == TD_FLOAT64 ? dropout_f64 : dropout_f32, &j);
    c->rng->offset += ((uint64_t)n + 3) / 4;
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * embedding and embedding_backward.
 */
/* padding_idx normalised against num rows (negative counts from the end); -1 when absent. */
static int padding_idx(const struct td_op_ctx *c, int64_t rows, int64_t *out,
                       struct td_error *err)
{
    *out = -1;
    if (!td_arg_has(c, "padding_idx"))
        return 0;
    int64_t p = td_arg_int(c, "padding_idx");
    if (p < -rows || p >= rows)
        return td_error_set(err, TD_EINVAL, "%s: padding_idx %lld out of range for %lld rows",
                            c->info->name, (long long)p, (long long)rows);
    *out = p < 0 ? p + rows : p;
    return 0;
}

static int check_indices(const struct td_op_ctx *c, int i, struct td_error *err)
{
    enum td_dtype dt = c->in_meta[i].dtype;
    if (dt != TD_INT32 && dt != TD_INT64)
        return td_error_set(err, TD_EINVAL, "%s: indices must be int32 or int64, got %s",
                            c->info->name, td_dtype_name(dt));
    return 0;
}

/* Reads index k of a contiguous int32/int64 tensor. */
static int64_t index_at(const void *p, enum td_dtype dt, int64_t k)
{
    return dt == TD_INT32 ? ((const int32_t *)p)[k] : ((const int64_t *)p)[k];
}

/* Index k of a contiguous int32/int64 tensor as a row in [0, V).
 * Returns: 0 or TD_EINVAL naming the op. */
static int row_at(const struct td_op_ctx *c, const void *ip, enum td_dtype dt, int64_t k,
                  int64_t V, int64_t *r, struct td_error *err)
{
    *r = index_at(ip, dt, k);
    if (*r < 0 || *r >= V)
        return td_error_set(err, TD_EINVAL, "%s: index %lld out of range for %lld rows",
                            c->info->name, (long long)*r, (long long)V);
    return 0;
}

int meta_embedding(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *w = &c->in_meta[0], *ix = &c->in_meta[1];
    char b1[96];
    int64_t pad;
    int rc = check_indices(c, 1, err);
    if (rc)
        return rc;
    if (w->ndim != 2)
        return td_error_set(err, TD_EINVAL, "embedding: weight must be 2-d [num, dim], got %s",
                            td__shape_str(w->shape, w->ndim, b1, sizeof b1));
    if (ix->ndim + 1 > TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL, "embedding: indices have too many dims (%d)",
                            ix->ndim);
    rc = padding_idx(c, w->shape[0], &pad, err);
    if (rc)
        return rc;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, ix->shape, sizeof(int64_t) * (size_t)ix->ndim);
    shape[ix->ndim] = w->shape[1];
    td__meta_set(out, w->dtype, ix->ndim + 1, shape);
    return td__check_shape("embedding", shape, ix->ndim + 1, w->dtype, err);
}

int cpu_embedding(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *w = NULL, *ix = NULL;
    int rc = td_tensor_contiguous(c->inputs[0], c->account, &w, err);
    if (!rc)
        rc = td_tensor_contiguous(c->inputs[1], c->account, &ix, err);
    if (rc)
        goto out;
    int64_t V = w->shape[0], D = w->shape[1], n = td_tensor_numel(ix);
    size_t rb = (size_t)D * td_dtype_size(w->dtype);
    const char *wp = td_tensor_data(w);
    char *op = td_tensor_data(out[0]);
    const void *ip = td_tensor_data(ix);
    for (int64_t k = 0; k < n; k++) {
        int64_t r;
        rc = row_at(c, ip, ix->dtype, k, V, &r, err);
        if (rc)
            goto out;
        if (rb)
            memcpy(op + (size_t)k * rb, wp + (size_t)r * rb, rb);
    }
out:
    td_tensor_release(w);
    td_tensor_release(ix);
    return rc;
}

int meta_embedding_backward(const struct td_op_ctx *c, struct td_meta *out,
                            struct td_error *err)
{
    const struct td_meta *g = &c->in_meta[0], *ix = &c->in_meta[1];
    char b1[96], b2[96];
    int64_t pad;
    int rc = check_indices(c, 1, err);
    if (rc)
        return rc;
    if (g->ndim != ix->ndim + 1 ||
        memcmp(g->shape, ix->shape, sizeof(int64_t) * (size_t)ix->ndim))
        return td_error_set(err, TD_EINVAL, "embedding_backward: gradient %s must be the "
                            "indices' shape %s plus [dim]",
                            td__shape_str(g->shape, g->ndim, b1, sizeof b1),
                            td__shape_str(ix->shape, ix->ndim, b2, sizeof b2));
    int64_t V = td_arg_int(c, "num_weights");
    if (V < 0)
        return td_error_set(err, TD_EINVAL, "embedding_backward: num_weights %lld < 0",
                            (long long)V);
    rc = padding_idx(c, V, &pad, err);
    if (rc)
        return rc;
    int64_t shape[2] = {V, g->shape[g->ndim - 1]};
    td__meta_set(out, g->dtype, 2, shape);
    return td__check_shape("embedding_backward", shape, 2, g->dtype, err);
}

int cpu_embedding_backward(const struct td_op_ctx *c, struct td_tensor **out,
                           struct td_error *err)
{
    enum td_dtype dt = compute_dtype(c->in_meta[0].dtype);
    struct td_tensor *g = NULL, *ix = NULL, *o = NULL;
    int64_t V = td_arg_int(c, "num_weights"), pad;
    int rc = padding_idx(c, V, &pad, err);
    if (!rc)
        rc = in_as(c, c->inputs[0], dt, &g, err);
    if (!rc)
        rc = td_tensor_contiguous(c->inputs[1], c->account, &ix, err);
    if (!rc)
        rc = out_as(c, out[0], dt, &o, err);
    if (rc)
        goto out;
    int64_t D = out[0]->shape[1], n = td_tensor_numel(ix);
    int nc = td_dtype_is_complex(dt) ? 2 : 1;
    bool dbl = dt == TD_FLOAT64 || dt == TD_COMPLEX128;
    memset(td_tensor_data(o), 0, td_tensor_nbytes(o));
    const void *ip = td_tensor_data(ix);
    int64_t rl = D * nc;
    for (int64_t k = 0; k < n; k++) {
        int64_t r;
        rc = row_at(c, ip, ix->dtype, k, V, &r, err);
        if (rc)
            goto out;
        if (r == pad)
            continue;
#define ACC_ROW(T)                                                                            \
    do {                                                                                      \
        T *dst = (T *)td_tensor_data(o) + r * rl;                                             \
        const T *src = (const T *)td_tensor_data(g) + k * rl;                                 \
        for (int64_t q = 0; q < rl; q++)                                                      \
            dst[q] += src[q];                                                                 \
    } while (0)
        if (dbl)
            ACC_ROW(double);
        else
            ACC_ROW(float);
#undef ACC_ROW
    }
out:
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(g);
    td_tensor_release(ix);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * layer_norm over the trailing normalized_shape dims: rows of N elements; mean and biased
 * variance accumulated in double (two passes), rstd = 1 / sqrt(var + eps).
 */
static int ln_geom(const struct td_op_ctx *c, int *k, int64_t *rows, int64_t *n,
                   struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    char b1[96], b2[96];
    int nk = 0;
    const int64_t *ns = td_arg_ints(c, "normalized_shape", &nk);
    if (nk < 1 || nk > x->ndim ||
        memcmp(ns, x->shape + x->ndim - nk, sizeof(int64_t) * (size_t)nk))
        return td_error_set(err, TD_EINVAL, "layer_norm: normalized_shape %s must be the "
                            "trailing dims of the input %s",
                            td__shape_str(ns, nk, b1, sizeof b1),
                            td__shape_str(x->shape, x->ndim, b2, sizeof b2));
    for (int i = 1; i < c->ninputs; i++) {
        const struct td_meta *p = &c->in_meta[i];
        int rc = same_dtype(c, i, err);
        if (rc)
            return rc;
        if (p->ndim != nk || memcmp(p->shape, ns, sizeof(int64_t) * (size_t)nk))
            return td_error_set(err, TD_EINVAL, "layer_norm: %s has shape %s, expected %s",
                                i == 1 ? "weight" : "bias",
                                td__shape_str(p->shape, p->ndim, b1, sizeof b1),
                                td__shape_str(ns, nk, b2, sizeof b2));
    }
    *k = nk;
    *rows = prod_dims(x->shape, 0, x->ndim - nk);
    *n = prod_dims(x->shape, x->ndim - nk, x->ndim);
    return 0;
}

int meta_layer_norm(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    int k;
    int64_t rows, n;
    int rc = ln_geom(c, &k, &rows, &n, err);
    if (rc)
        return rc;
    if (!(td_arg_float(c, "eps") >= 0))
        return td_error_set(err, TD_EINVAL, "layer_norm: eps must be >= 0");
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    for (int d = x->ndim - k; d < x->ndim; d++)
        shape[d] = 1;
    td__meta_set(&out[0], x->dtype, x->ndim, x->shape);
    td__meta_set(&out[1], x->dtype, x->ndim, shape);
    td__meta_set(&out[2], x->dtype, x->ndim, shape);
    return 0;
}

struct ln_job {
    const void *x, *w, *b;
    void *y, *mean, *rstd;
    int64_t n;
    double eps;
};

#define DEF_LN(T, SUF)                                                                        \
    static void ln_##SUF(int64_t b, int64_t e, void *ctx)                                     \
    {                                                                                         \
        const struct ln_job *j = ctx;                                                         \
        int64_t n = j->n;                                                                     \
        const T *w = j->w, *bb = j->b;                                                        \
        for (int64_t r = b; r < e; r++) {                                                     \
            const T *x = (const T *)j->x + r * n;                                             \
            T *y = (T *)j->y + r * n;                                                         \
            double s = 0, v = 0;                                                              \
            for (int64_t k = 0; k < n; k++)                                                   \
                s += x[k];                                                                    \
            double m = n ? s / (double)n : NAN;                                               \
            for (int64_t k = 0; k < n; k++) {                                                 \
                double d = x[k] - m;                                                          \
                v += d * d;                                                                   \
            }                                                                                 \
            double rs = 1.0 / sqrt((n ? v / (double)n : NAN) + j->eps);                       \
            T mt = (T)m, rt = (T)rs;                                                          \
            for (int64_t k = 0; k < n; k++) {                                                 \
                T h = (x[k] - mt) * rt;                                                       \
                if (w)                                                                        \
                    h *= w[k];                                                                \
                if (bb)                                                                       \
                    h += bb[k];                                                               \
                y[k] = h;                                                                     \
            }                                                                                 \
            ((T *)j->mean)[r] = mt;                                                           \
            ((T *)j->rstd)[r] = rt;                                                           \
        }                                                                                     \
    }

DEF_LN(float, f32)
DEF_LN(double, f64)

int cpu_layer_norm(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    enum td_dtype dt = compute_dtype(c->in_meta[0].dtype);
    struct td_tensor *in[3] = {NULL, NULL, NULL}, *o[3] = {NULL, NULL, NULL};
    int k;
    int64_t rows, n;
    int rc = ln_geom(c, &k, &rows, &n, err);
    for (int i = 0; i < c->ninputs && !rc; i++)
        rc = in_as(c, c->inputs[i], dt, &in[i], err);
    for (int i = 0; i < 3 && !rc; i++)
        rc = out_as(c, out[i], dt, &o[i], err);
    if (rc)
        goto out;
    struct ln_job j = {td_tensor_data(in[0]), in[1] ? td_tensor_data(in[1]) : NULL,
                       in[2] ? td_tensor_data(in[2]) : NULL, td_tensor_data(o[0]),
                       td_tensor_data(o[1]), td_tensor_data(o[2]), n, td_arg_float(c, "eps")};
    td__parallel_for(rows, grain_for(4 * n), dt == TD_FLOAT64 ? ln_f64 : ln_f32, &j);
out:
    for (int i = 0; i < 3; i++) {
        rc = out_end(rc, out[i], o[i], err);
        o[i] = NULL;
        td_tensor_release(in[i]);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * gelu and erf (elementwise).
 */
struct ew_job {
    const void *in;
    void *out;
    int kind;      /* 0 erf, 1 gelu (erf form), 2 gelu (tanh form) */
};

#define SQRT1_2 0.70710678118654752440
#define SQRT_2_PI 0.79788456080286535588   /* sqrt(2 / pi) */

#define DEF_EW(T, SUF, ERF, TANH)                                                             \
    static void ew_##SUF(int64_t b, int64_t e, void *ctx)                                     \
    {                                                                                         \
        const struct ew_job *j = ctx;                                                         \
        const T *x = j->in;                                                                   \
        T *y = j->out;                                                                        \
        if (j->kind == 0)                                                                     \
            for (int64_t k = b; k < e; k++)                                                   \
                y[k] = ERF(x[k]);                                                             \
        else if (j->kind == 1)                                                                \
            for (int64_t k = b; k < e; k++)                                                   \
                y[k] = (T)0.5 * x[k] * ((T)1 + ERF(x[k] * (T)SQRT1_2));                       \
        else                                                                                  \
            for (int64_t k = b; k < e; k++) {                                                 \
                T v = x[k];                                                                   \
                T u = (T)SQRT_2_PI * (v + (T)0.044715 * v * v * v);                           \
                y[k] = (T)0.5 * v * ((T)1 + TANH(u));                                         \
            }                                                                                 \
    }

DEF_EW(float, f32, erff, tanhf)
DEF_EW(double, f64, erf, tanh)

static int gelu_kind(const struct td_op_ctx *c, int *kind, struct td_error *err)
{
    const char *a = td_arg_str(c, "approximate");
    if (!a || strcmp(a, "none") == 0)
        *kind = 1;
    else if (strcmp(a, "tanh") == 0)
        *kind = 2;
    else
        return td_error_set(err, TD_EINVAL, "gelu: approximate must be 'none' or 'tanh', got "
                            "'%s'", a);
    return 0;
}

static int cpu_ew(const struct td_op_ctx *c, struct td_tensor **out, int kind,
                  struct td_error *err)
{
    enum td_dtype dt = compute_dtype(c->in_meta[0].dtype);
    struct td_tensor *x = NULL, *o = NULL;
    int rc = in_out_as(c, 0, out[0], dt, &x, &o, err);
    if (!rc) {
        struct ew_job j = {td_tensor_data(x), td_tensor_data(o), kind};
        td__parallel_for(td_tensor_numel(x), TD__PAR_GRAIN / 8,
                         dt == TD_FLOAT64 ? ew_f64 : ew_f32, &j);
    }
    rc = out_end(rc, out[0], o, err);
    td_tensor_release(x);
    return rc;
}

int meta_gelu(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int kind = 0;
    int rc = gelu_kind(c, &kind, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, c->in_meta[0].ndim, c->in_meta[0].shape);
    return 0;
}

int cpu_gelu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int kind = 0;
    int rc = gelu_kind(c, &kind, err);
    return rc ? rc : cpu_ew(c, out, kind, err);
}

int meta_erf(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)err;
    td__meta_set(out, c->in_meta[0].dtype, c->in_meta[0].ndim, c->in_meta[0].shape);
    return 0;
}

int cpu_erf(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_ew(c, out, 0, err);
}

/* ---------------------------------------------------------------------------------------
 * nll_loss.
 */
enum { NLL_NONE, NLL_MEAN, NLL_SUM };

static int nll_reduction(const struct td_op_ctx *c, int *r, struct td_error *err)
{
    const char *s = td_arg_str(c, "reduction");
    if (!s || strcmp(s, "mean") == 0)
        *r = NLL_MEAN;
    else if (strcmp(s, "sum") == 0)
        *r = NLL_SUM;
    else if (strcmp(s, "none") == 0)
        *r = NLL_NONE;
    else
        return td_error_set(err, TD_EINVAL, "nll_loss: reduction must be none, mean or sum, "
                            "got '%s'", s);
    return 0;
}

int meta_nll_loss(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0], *t = &c->in_meta[1];
    char b1[96], b2[96];
    int red = 0;
    int rc = nll_reduction(c, &red, err);
    if (rc)
        return rc;
    if (t->dtype != TD_INT64)
        return td_error_set(err, TD_EINVAL, "nll_loss: target must be int64, got %s",
                            td_dtype_name(t->dtype));
    if (!((x->ndim == 2 && t->ndim == 1 && t->shape[0] == x->shape[0]) ||
          (x->ndim == 1 && t->ndim == 0)))
        return td_error_set(err, TD_EINVAL, "nll_loss: input %s and target %s: expected [N,C] "
                            "and [N], or [C] and []",
                            td__shape_str(x->shape, x->ndim, b1, sizeof b1),
                            td__shape_str(t->shape, t->ndim, b2, sizeof b2));
    if (c->ninputs > 2)
        rc = same_dtype(c, 2, err);
    if (!rc)
        rc = vec_check(c, "weight", x->shape[x->ndim - 1], err);
    if (rc)
        return rc;
    if (red == NLL_NONE)
        td__meta_set(out, x->dtype, t->ndim, t->shape);
    else
        td__meta_set(out, x->dtype, 0, NULL);
    return 0;
}

/* Per-sample coefficients of nll_loss: coef[i] = -weight[target_i] (0 for ignored targets),
 * divided by the summed weight of the non-ignored targets for mean; idx[i] = target_i (0 for
 * ignored targets). Shared with the VJP (derivatives_nn.c). coef has logp's dtype and the
 * target's shape; idx is int64 [N, 1] ([1] for a 1-d logp).
 * Returns: 0, TD_EINVAL (a target out of range), TD_ENOMEM. Ownership: both owned. */
int td__nll_coef(const struct td_tensor *target, const struct td_tensor *weight,
                 enum td_dtype dt, int64_t nclass, int64_t ignore, bool mean,
                 struct td_account *account, struct td_tensor **coef_out,
                 struct td_tensor **idx_out, struct td_error *err);
int td__nll_coef(const struct td_tensor *target, const struct td_tensor *weight,
                 enum td_dtype dt, int64_t nclass, int64_t ignore, bool mean,
                 struct td_account *account, struct td_tensor **coef_out,
                 struct td_tensor **idx_out, struct td_error *err)
{
    struct td_tensor *t = NULL, *w = NULL, *coef = NULL, *idx = NULL;
    struct td_meta m;
    int rc = td_tensor_contiguous((struct td_tensor *)target, account, &t, err);
    if (!rc && weight)
        rc = td_tensor_contiguous((struct td_tensor *)weight, account, &w, err);
    if (rc)
        goto out;
    int64_t n = td_tensor_numel(t);
    td__meta_set(&m, dt, t->ndim, t->shape);
    rc = td_tensor_new(&m, false, account, &coef, err);
    if (rc)
        goto out;
    int64_t ishape[2] = {n, 1};
    if (t->ndim == 0)
        td__meta_set(&m, TD_INT64, 1, ishape + 1);
    else
        td__meta_set(&m, TD_INT64, 2, ishape);
    rc = td_tensor_new(&m, false, account, &idx, err);
    if (rc)
        goto out;
    const int64_t *tp = td_tensor_data(t);
    int64_t *ip = td_tensor_data(idx);
    size_t isz = td_dtype_size(dt);
    char *cp = td_tensor_data(coef);
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = tp[i];
        double wk = 0;
        if (k != ignore) {
            if (k < 0 || k >= nclass) {
                rc = td_error_set(err, TD_EINVAL, "nll_loss: target %lld out of range for %lld "
                                  "classes",
                                  (long long)k, (long long)nclass);
                goto out;
            }
            const char *wp = w ? td_tensor_data(w) : NULL;
            wk = wp ? td__load_f64(wp + (size_t)k * td_dtype_size(w->dtype), w->dtype) : 1.0;
        }
        ip[i] = k != ignore ? k : 0;
        total += wk;
        td__store_f64(cp + (size_t)i * isz, dt, -wk);
    }
    if (mean)
        for (int64_t i = 0; i < n; i++)
            td__store_f64(cp + (size_t)i * isz, dt, td__load_f64(cp + (size_t)i * isz, dt) / total);
    *coef_out = coef;
    *idx_out = idx;
    coef = idx = NULL;
out:
    td_tensor_release(t);
    td_tensor_release(w);
    td_tensor_release(coef);
    td_tensor_release(idx);
    return rc;
}

int cpu_nll_loss(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    const struct td_meta *xm = &c->in_meta[0];
    int red = 0;
    struct td_tensor *x = NULL, *coef = NULL, *idx = NULL;
    int rc = nll_reduction(c, &red, err);
    if (!rc)
        rc = in_as(c, c->inputs[0], TD_FLOAT64, &x, err);
    if (!rc)
        rc = td__nll_coef(c->inputs[1], c->ninputs > 2 ? c->inputs[2] : NULL, TD_FLOAT64,
                          xm->shape[xm->ndim - 1], td_arg_int(c, "ignore_index"),
                          red == NLL_MEAN, c->account, &coef, &idx, err);
    if (rc)
        goto out;
    int64_t n = td_tensor_numel(coef), C = xm->shape[xm->ndim - 1];
    const double *xp = td_tensor_data(x), *cp = td_tensor_data(coef);
    const int64_t *ip = td_tensor_data(idx);
    char *op = td_tensor_data(out[0]);
    size_t osz = td_dtype_size(out[0]->dtype);
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = cp[i] == 0 ? 0.0 : cp[i] * xp[i * C + ip[i]];
        if (red == NLL_NONE)
            td__store_f64(op + (size_t)i * osz, out[0]->dtype, v);
        else
            total += v;
    }
    if (red == NLL_MEAN && n > 0 && isnan(cp[0]))
        total = NAN;
    if (red == NLL_MEAN && n == 0)
        total = NAN;
    if (red != NLL_NONE)
        td__store_f64(op, out[0]->dtype, total);
out:
    td_tensor_release(x);
    td_tensor_release(coef);
    td_tensor_release(idx);
    return rc;
}
