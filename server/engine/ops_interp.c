/*
 * ops_interp.c - interpolation (ops.def section "interpolation"): F.interpolate's modes and
 * adaptive average pooling, with their adjoints (the *_backward ops).
 *
 * Every mode is separable: along each spatial axis, output index o reads a short list of
 * (input index, weight) pairs, and the whole op is the tensor product of those 1-d maps.
 * A kernel builds one table per axis (struct axis_map), then applies them one axis at a time
 * (the last axis first, like PyTorch's antialiased kernel) on a float64 copy of the input;
 * the backward ops apply the transposed maps (a scatter-add) on the cotangent. So forward and
 * backward share every index rule and are exact adjoints of each other.
 *
 * The index rules are PyTorch's (aten/src/ATen/native/UpSample.h and UpSampleKernel.cpp):
 * - scale: with a scale factor s given (and recompute_scale_factor not True) 1/s, else
 *   in/out (compute_scales_value); align_corners: (in-1)/(out-1), 0 for out == 1
 *   (area_pixel_compute_scale). Computed in the op's math type: float32 for every dtype but
 *   float64 (emulated below by rounding each step to float), float32 always for nearest.
 * - source index: align_corners ? scale*o : scale*(o+0.5)-0.5, clamped at 0 except for cubic
 *   (area_pixel_compute_source_index).
 * - nearest: min(floor(o*scale), in-1), with the shortcuts out == in (copy) and out == 2 in
 *   (o/2); nearest-exact: min(floor((o+0.5)*scale), in-1).
 * - linear: i0 = min(floor(src), in-1), i1 = min(i0+1, in-1), weights 1-l, l with
 *   l = clamp(src-i0, 0, 1); out == in copies (compute_source_index_and_lambda).
 * - cubic: Keys' convolution with A = -0.75 at t = clamp(src-floor(src), 0, 1) on the four
 *   inputs floor(src)-1..floor(src)+2, each clamped to [0, in-1].
 * - antialias (PyTorch's _upsample_bilinear2d_aa/_upsample_bicubic2d_aa = Pillow's
 *   ImagingResample): support = (2 or 4)/2 * max(scale, 1), center = scale*(o+0.5), inputs
 *   [trunc(center-support+0.5), trunc(center+support+0.5)) within [0, in), weights
 *   filter((j-center+0.5)/max(scale,1)) normalised to sum 1; filter: triangle (bilinear) or
 *   Keys' cubic with a = -0.5 (bicubic); an axis whose size does not change is left as is.
 * - area: adaptive average pooling, window [floor(o*in/out), ceil((o+1)*in/out)).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "td_internal.h"

enum imode { M_NEAREST, M_NEAREST_EXACT, M_LINEAR, M_CUBIC, M_AREA };

#define MAX_SP 3

/* An interpolation op's geometry, parsed from its context. */
struct interp {
    const char *op;
    enum imode mode;
    bool align, aa;
    bool single;                 /* index math in float32 (every dtype but float64) */
    int nsp;                     /* spatial dims: 1..3 */
    int nlead;                   /* leading (batch, channel) dims */
    int64_t lead[TD_MAX_NDIM];
    int64_t planes;              /* product of the leading dims */
    int64_t in[MAX_SP], out[MAX_SP];
    bool has_scale[MAX_SP];
    double scale[MAX_SP];
};

/* One axis: out[o] = sum over k in [off[o], off[o+1]) of w[k] * in[idx[k]]. */
struct axis_map {
    int64_t n_in, n_out;
    int64_t *off;
    int64_t *idx;
    double *w;
    bool identity;
};

static const char *const scale_names[MAX_SP] = {"scale_0", "scale_1", "scale_2"};

/* The op's schema has an attribute called name. */
static bool has_attr(const struct td_op_ctx *c, const char *name)
{
    for (int k = 0; k < c->info->nattrs; k++)
        if (strcmp(c->info->attrs[k].name, name) == 0)
            return true;
    return false;
}

static bool is_backward(enum td_op op)
{
    return op == TD_OP_upsample_nearest_backward || op == TD_OP_upsample_linear_backward ||
           op == TD_OP_upsample_bicubic_backward || op == TD_OP_adaptive_avg_pool_backward;
}

static enum imode op_mode(const struct td_op_ctx *c)
{
    switch (c->op) {
    case TD_OP_upsample_nearest:
    case TD_OP_upsample_nearest_backward:
        return td_arg_bool(c, "exact") ? M_NEAREST_EXACT : M_NEAREST;
    case TD_OP_upsample_linear:
    case TD_OP_upsample_linear_backward:
        return M_LINEAR;
    case TD_OP_upsample_bicubic:
    case TD_OP_upsample_bicubic_backward:
        return M_CUBIC;
    default:
        return M_AREA;
    }
}

/* Parses and checks the op's input meta and attributes into p and writes the output meta.
 * Forward ops read the output spatial size from "size" ("output_size" for area) and the
 * input's trailing dims; backward ops read the input spatial size from "input_size" and the
 * cotangent's trailing dims. Returns: 0 or TD_EINVAL naming the op. */
static int interp_parse(const struct td_op_ctx *c, struct interp *p, struct td_meta *om,
                        struct td_error *err)
{
    memset(p, 0, sizeof *p);
    p->op = c->info->name;
    p->mode = op_mode(c);
    bool bwd = is_backward(c->op);
    const struct td_meta *x = &c->in_meta[0];
    p->single = x->dtype != TD_FLOAT64;
    const char *szname = bwd ? "input_size" : (p->mode == M_AREA ? "output_size" : "size");
    int n = 0;
    const int64_t *sz = td_arg_ints(c, szname, &n);
    int maxsp = p->mode == M_CUBIC ? 2 : MAX_SP;
    if (n < 1 || n > maxsp)
        return td_error_set(err, TD_EINVAL, "%s: %s must have 1 to %d entries (one per spatial "
                            "dim), got %d", p->op, szname, maxsp, n);
    if (p->mode == M_CUBIC && n != 2)
        return td_error_set(err, TD_EINVAL, "%s: bicubic interpolation needs 2 spatial dims "
                            "([N, C, H, W] input), got %s of length %d", p->op, szname, n);
    p->nsp = n;
    /* Upsampling takes [N, C, *spatial]; adaptive pooling also an unbatched [C, *spatial]. */
    bool ok_rank = x->ndim == n + 2 || (p->mode == M_AREA && x->ndim == n + 1);
    if (!ok_rank)
        return td_error_set(err, TD_EINVAL, "%s: expected a %d-d input ([N, C] + %d spatial "
                            "dims%s), got %d-d", p->op, n + 2, n,
                            p->mode == M_AREA ? ", or without N" : "", x->ndim);
    p->nlead = x->ndim - n;
    p->planes = 1;
    for (int i = 0; i < p->nlead; i++) {
        p->lead[i] = x->shape[i];
        p->planes *= x->shape[i];
    }
    for (int d = 0; d < n; d++) {
        int64_t have = x->shape[p->nlead + d];
        p->in[d] = bwd ? sz[d] : have;
        p->out[d] = bwd ? have : sz[d];
        bool zero_out_ok = p->mode == M_AREA;
        if (p->in[d] <= 0 || p->out[d] < 0 || (p->out[d] == 0 && !zero_out_ok))
            return td_error_set(err, TD_EINVAL, "%s: input and output sizes should be greater "
                                "than 0, got input %lld and output %lld in spatial dim %d",
                                p->op, (long long)p->in[d], (long long)p->out[d], d);
        int64_t prod;
        if (!td_mul_i64(p->in[d], p->out[d] + 1, &prod))
            return td_error_set(err, TD_EINVAL, "%s: sizes %lld and %lld too large", p->op,
                                (long long)p->in[d], (long long)p->out[d]);
    }
    for (int d = 0; d < MAX_SP; d++) {
        if (!has_attr(c, scale_names[d]) || !td_arg_has(c, scale_names[d]))
            continue;
        double s = td_arg_float(c, scale_names[d]);
        if (d >= n)
            return td_error_set(err, TD_EINVAL, "%s: %s given for a %d-d interpolation",
                                p->op, scale_names[d], n);
        if (!isfinite(s) || s <= 0)
            return td_error_set(err, TD_EINVAL, "%s: %s must be a positive finite scale "
                                "factor, got %g", p->op, scale_names[d], s);
        p->has_scale[d] = true;
        p->scale[d] = s;
    }
    if (has_attr(c, "align_corners"))
        p->align = td_arg_bool(c, "align_corners");
    if (has_attr(c, "antialias"))
        p->aa = td_arg_bool(c, "antialias");
    if (p->aa && n != 2)
        return td_error_set(err, TD_EINVAL, "%s: antialias needs 2 spatial dims ([N, C, H, W] "
                            "input), got %d", p->op, n);
    int64_t shape[TD_MAX_NDIM];
    for (int i = 0; i < p->nlead; i++)
        shape[i] = p->lead[i];
    for (int d = 0; d < n; d++)
        shape[p->nlead + d] = bwd ? p->in[d] : p->out[d];
    td__meta_set(om, x->dtype, x->ndim, shape);
    return td__check_shape(p->op, shape, x->ndim, x->dtype, err);
}

/* ---------------------------------------------------------------------------------------
 * Index and weight rules. R() rounds to the op's math type so that float32 inputs see the
 * same indices as PyTorch's float arithmetic (each step of float math rounded once; double
 * rounding of +, -, *, / through double is exact for float operands).
 */
static double round_f32(bool single, double v)
{
    if (!single)
        return v;
    /* Out of float's range the conversion is undefined in C: saturate to inf like float
     * arithmetic would (trunc_clamp then bounds every index). */
    if (!(fabs(v) <= FLT_MAX))
        return isnan(v) ? v : copysign(INFINITY, v);
    return (double)(float)v;
}

#define R(v) round_f32(p->single, (double)(v))

/* area_pixel_compute_scale. */
static double area_scale(const struct interp *p, int d)
{
    int64_t in = p->in[d], out = p->out[d];
    if (p->align)
        return out > 1 ? R(R(in - 1) / R(out - 1)) : 0.0;
    if (p->has_scale[d])
        return R(1.0 / p->scale[d]);
    return R(R(in) / R(out));
}

/* area_pixel_compute_source_index. */
static double source_index(const struct interp *p, double scale, int64_t o, bool cubic)
{
    if (p->align)
        return R(scale * R(o));
    double s = R(R(scale * R((double)o + 0.5)) - 0.5);
    return (!cubic && s < 0) ? 0.0 : s;
}

/* Keys' cubic convolution kernel pieces (|x| <= 1 and 1 < |x| < 2) with parameter a. */
static double cubic1(const struct interp *p, double x, double a)
{
    return R(R(R(R(R(a + 2) * x) - R(a + 3)) * x) * x) + 1;
}

static double cubic2(const struct interp *p, double x, double a)
{
    return R(R(R(R(R(R(a * x) - R(5 * a)) * x) + R(8 * a)) * x) - R(4 * a));
}

static double aa_filter(const struct interp *p, double x)
{
    x = R(fabs(x));
    if (p->mode == M_LINEAR)
        return x < 1.0 ? R(1.0 - x) : 0.0;
    if (x < 1.0)
        return R(cubic1(p, x, -0.5));
    if (x < 2.0)
        return R(cubic2(p, x, -0.5));
    return 0.0;
}

static int64_t clamp_i(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* v truncated toward zero, clamped to [lo, hi] first (NaN gives lo), so that no float to
 * integer conversion overflows whatever scale a request gives. */
static int64_t trunc_clamp(double v, int64_t lo, int64_t hi)
{
    if (!(v > (double)lo))
        return lo;
    if (v >= (double)hi)
        return hi;
    return (int64_t)v;
}

static double clamp_d(double v, double lo, double hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static void axis_free(struct axis_map *m)
{
    td_free(m->off);
    td_free(m->idx);
    td_free(m->w);
    memset(m, 0, sizeof *m);
}

/* Allocates a map of n_out outputs with room for cap (index, weight) pairs. */
static int axis_alloc(struct axis_map *m, int64_t n_in, int64_t n_out, int64_t cap,
                      const char *op, struct td_error *err)
{
    memset(m, 0, sizeof *m);
    m->n_in = n_in;
    m->n_out = n_out;
    size_t no, nc, b1, b2;
    if (cap < 1)
        cap = 1;
    if (!td_mul_size((size_t)n_out + 1, sizeof(int64_t), &no) ||
        !td_mul_size((size_t)cap, sizeof(int64_t), &nc) ||
        !td_mul_size((size_t)cap, sizeof(double), &b2))
        return td_error_set(err, TD_EINVAL, "%s: interpolation table too large", op);
    b1 = nc;
    m->off = td_malloc(no);
    m->idx = td_malloc(b1);
    m->w = td_malloc(b2);
    if (!m->off || !m->idx || !m->w) {
        axis_free(m);
        return td_error_set(err, TD_ENOMEM, "%s: out of memory for interpolation tables", op);
    }
    m->off[0] = 0;
    return 0;
}

/* Builds axis d's map for p's mode. Returns: 0 or TD_ENOMEM/TD_EINVAL. */
static int axis_build(const struct interp *p, int d, struct axis_map *m, struct td_error *err)
{
    int64_t in = p->in[d], out = p->out[d];
    int64_t per = 1, cap;
    double scale = 0, support = 0, invscale = 1;
    int64_t maxw = 0;
    bool ident = false;
    switch (p->mode) {
    case M_NEAREST:
    case M_NEAREST_EXACT:
        per = 1;
        break;
    case M_LINEAR:
    case M_CUBIC:
        if (p->aa) {
            ident = out == in;
            scale = area_scale(p, d);
            double half = p->mode == M_LINEAR ? 1.0 : 2.0;
            support = scale >= 1.0 ? R(half * scale) : half;
            invscale = scale >= 1.0 ? R(1.0 / scale) : 1.0;
            /* A window never holds more than the whole input. */
            maxw = support < (double)in ? (int64_t)ceil(support) * 2 + 1 : in;
            per = maxw < in ? maxw : in;
        } else {
            per = p->mode == M_LINEAR ? 2 : 4;
        }
        break;
    case M_AREA:
        per = (in + out - 1) / (out ? out : 1) + 1;
        break;
    }
    if (ident)
        per = 1;
    if (!td_mul_i64(out, per, &cap))
        return td_error_set(err, TD_EINVAL, "%s: interpolation table too large", p->op);
    int rc = axis_alloc(m, in, out, cap, p->op, err);
    if (rc)
        return rc;
    int64_t k = 0;
    if (p->mode == M_NEAREST || p->mode == M_NEAREST_EXACT) {
        /* compute_scales_value<float> */
        float s = p->has_scale[d] ? (float)round_f32(true, 1.0 / p->scale[d])
                                  : (float)in / (float)out;
        for (int64_t o = 0; o < out; o++) {
            int64_t src;
            if (p->mode == M_NEAREST_EXACT)
                src = trunc_clamp(floorf((float)round_f32(true, ((double)o + 0.5) * s)), 0,
                                  in - 1);
            else if (out == in)
                src = o;
            else if (out == 2 * in)
                src = o >> 1;
            else
                src = trunc_clamp(floorf((float)o * s), 0, in - 1);
            m->idx[k] = src;
            m->w[k++] = 1.0;
            m->off[o + 1] = k;
        }
    } else if (ident || (p->mode == M_LINEAR && !p->aa && out == in)) {
        for (int64_t o = 0; o < out; o++) {
            m->idx[k] = o;
            m->w[k++] = 1.0;
            m->off[o + 1] = k;
        }
    } else if (p->aa) {
        for (int64_t o = 0; o < out; o++) {
            double center = R(scale * ((double)o + 0.5));
            int64_t xmin = trunc_clamp(R(center - support) + 0.5, 0, in);
            int64_t xmax = trunc_clamp(R(center + support) + 0.5, 0, in);
            int64_t xsize = clamp_i(xmax - xmin, 0, maxw);
            double total = 0;
            int64_t k0 = k;
            for (int64_t j = 0; j < xsize; j++) {
                double w = aa_filter(p, (R((double)(j + xmin) - center) + 0.5) * invscale);
                m->idx[k] = xmin + j;
                m->w[k++] = w;
                total = R(total + w);
            }
            if (total != 0.0)
                for (int64_t j = k0; j < k; j++)
                    m->w[j] = R(m->w[j] / total);
            m->off[o + 1] = k;
        }
    } else if (p->mode == M_LINEAR) {
        scale = area_scale(p, d);
        for (int64_t o = 0; o < out; o++) {
            double src = source_index(p, scale, o, false);
            int64_t i0 = trunc_clamp(floor(src), 0, in - 1);
            double l1 = clamp_d(R(src - (double)i0), 0.0, 1.0);
            int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
            m->idx[k] = i0;
            m->w[k++] = R(1.0 - l1);
            m->idx[k] = i1;
            m->w[k++] = l1;
            m->off[o + 1] = k;
        }
    } else if (p->mode == M_CUBIC) {
        scale = area_scale(p, d);
        const double A = -0.75;
        for (int64_t o = 0; o < out; o++) {
            double src = source_index(p, scale, o, true);
            int64_t i0 = trunc_clamp(floor(src), -1, in - 1);
            double t = clamp_d(R(src - (double)i0), 0.0, 1.0);
            double wc[4] = {cubic2(p, R(t + 1.0), A), cubic1(p, t, A),
                            cubic1(p, R(1.0 - t), A), cubic2(p, R(R(1.0 - t) + 1.0), A)};
            for (int j = 0; j < 4; j++) {
                m->idx[k] = clamp_i(i0 - 1 + j, 0, in - 1);
                m->w[k++] = wc[j];
            }
            m->off[o + 1] = k;
        }
    } else {
        for (int64_t o = 0; o < out; o++) {
            int64_t s = (o * in) / out, e = ((o + 1) * in + out - 1) / out;
            double w = 1.0 / (double)(e - s);
            for (int64_t j = s; j < e; j++) {
                m->idx[k] = j;
                m->w[k++] = w;
            }
            m->off[o + 1] = k;
        }
    }
    m->identity = in == out;
    for (int64_t o = 0; o < out && m->identity; o++)
        m->identity = m->off[o + 1] - m->off[o] == 1 && m->idx[m->off[o]] == o &&
                      m->w[m->off[o]] == 1.0;
    return 0;
}

#undef R

/* ---------------------------------------------------------------------------------------
 * Applying the maps.
 */
struct pass_job {
    const struct axis_map *m;
    const double *src;
    double *dst;
    int64_t inner;
    bool transpose;
};

/* Rows [b, e) of [outer, n, inner]: forward gathers, transpose scatters (each row's output
 * slice is its own, so chunks never write the same element). */
static void pass_rows(int64_t b, int64_t e, void *ctx)
{
    const struct pass_job *j = ctx;
    const struct axis_map *m = j->m;
    int64_t inner = j->inner;
    int64_t nsrc = j->transpose ? m->n_out : m->n_in;
    int64_t ndst = j->transpose ? m->n_in : m->n_out;
    for (int64_t a = b; a < e; a++) {
        const double *src = j->src + a * nsrc * inner;
        double *dst = j->dst + a * ndst * inner;
        memset(dst, 0, sizeof(double) * (size_t)(ndst * inner));
        for (int64_t o = 0; o < m->n_out; o++)
            for (int64_t k = m->off[o]; k < m->off[o + 1]; k++) {
                double w = m->w[k];
                const double *s = j->transpose ? src + o * inner : src + m->idx[k] * inner;
                double *t = j->transpose ? dst + m->idx[k] * inner : dst + o * inner;
                for (int64_t q = 0; q < inner; q++)
                    t[q] += w * s[q];
            }
    }
}

/* A float64 work buffer of n elements, charged to the session's account like a tensor.
 * Returns: 0, TD_EINVAL (too large) or TD_ENOMEM. Ownership: *out owned. */
static int buf_new(int64_t n, struct td_account *acc, struct td_storage **out, const char *op,
                   struct td_error *err)
{
    size_t nb;
    if (n < 0 || !td_mul_size((size_t)(n ? n : 1), sizeof(double), &nb))
        return td_error_set(err, TD_EINVAL, "%s: intermediate too large", op);
    return td_storage_new(nb, false, acc, out, err);
}

/* Loads t (any strides, any float dtype) into a new contiguous float64 buffer. */
static int load_f64(struct td_tensor *t, struct td_account *acc, struct td_storage **out,
                    const char *op, struct td_error *err)
{
    struct td_tensor *ct = NULL;
    struct td_storage *st = NULL;
    int64_t n = td_tensor_numel(t);
    int rc = buf_new(n, acc, &st, op, err);
    if (rc)
        return rc;
    rc = td_tensor_contiguous(t, acc, &ct, err);
    if (rc) {
        td_storage_release(st);
        return rc;
    }
    double *buf = st->data;
    const char *src = td_tensor_data(ct);
    size_t isz = td_dtype_size(ct->dtype);
    if (ct->dtype == TD_FLOAT64)
        memcpy(buf, src, sizeof(double) * (size_t)n);
    else if (ct->dtype == TD_FLOAT32)
        for (int64_t i = 0; i < n; i++)
            buf[i] = ((const float *)(const void *)src)[i];
    else
        for (int64_t i = 0; i < n; i++)
            buf[i] = td__load_f64(src + (size_t)i * isz, ct->dtype);
    td_tensor_release(ct);
    *out = st;
    return 0;
}

static void store_f64(struct td_tensor *o, const double *buf, int64_t n)
{
    char *dst = td_tensor_data(o);
    size_t isz = td_dtype_size(o->dtype);
    if (o->dtype == TD_FLOAT64)
        memcpy(dst, buf, sizeof(double) * (size_t)n);
    else if (o->dtype == TD_FLOAT32)
        for (int64_t i = 0; i < n; i++)
            ((float *)(void *)dst)[i] = (float)buf[i];
    else
        for (int64_t i = 0; i < n; i++)
            td__store_f64(dst + (size_t)i * isz, o->dtype, buf[i]);
}

/* Runs op c: forward ops apply the maps, backward ops their transposes. */
static int interp_run(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct interp p;
    struct td_meta om;
    struct axis_map maps[MAX_SP];
    memset(maps, 0, sizeof maps);
    struct td_storage *cur = NULL;
    int rc = interp_parse(c, &p, &om, err);
    if (rc)
        return rc;
    bool bwd = is_backward(c->op);
    if (td_tensor_numel(out[0]) == 0)
        return 0;
    for (int d = 0; d < p.nsp && !rc; d++)
        rc = axis_build(&p, d, &maps[d], err);
    if (rc)
        goto out;
    rc = load_f64(c->inputs[0], c->account, &cur, p.op, err);
    if (rc)
        goto out;
    /* cur's spatial sizes as the passes go. */
    int64_t size[MAX_SP];
    for (int d = 0; d < p.nsp; d++)
        size[d] = bwd ? p.out[d] : p.in[d];
    /* Axes that shrink go first, so no intermediate is larger than the input or the
     * output (the maps act on distinct axes, so the order does not change the result). */
    int order[MAX_SP];
    for (int d = 0; d < p.nsp; d++)
        order[d] = p.nsp - 1 - d;
    for (int a = 1; a < p.nsp; a++)
        for (int b2 = a; b2 > 0; b2--) {
            int u = order[b2 - 1], v = order[b2];
            double ru = bwd ? (double)p.in[u] / (double)p.out[u]
                            : (double)p.out[u] / (double)p.in[u];
            double rv = bwd ? (double)p.in[v] / (double)p.out[v]
                            : (double)p.out[v] / (double)p.in[v];
            if (rv < ru) {
                order[b2 - 1] = v;
                order[b2] = u;
            }
        }
    for (int s = 0; s < p.nsp; s++) {
        int d = order[s];
        const struct axis_map *m = &maps[d];
        if (m->identity)
            continue;
        int64_t outer = p.planes, inner = 1;
        for (int e = 0; e < d; e++)
            outer *= size[e];
        for (int e = d + 1; e < p.nsp; e++)
            inner *= size[e];
        int64_t nd = bwd ? m->n_in : m->n_out, nn;
        struct td_storage *next = NULL;
        if (!td_mul_i64(outer * inner, nd, &nn)) {
            rc = td_error_set(err, TD_EINVAL, "%s: intermediate too large", p.op);
            goto out;
        }
        rc = buf_new(nn, c->account, &next, p.op, err);
        if (rc)
            goto out;
        struct pass_job j = {m, cur->data, next->data, inner, bwd};
        int64_t work = (m->off[m->n_out] + nd) * inner;
        int64_t grain = TD__PAR_GRAIN / (work > 0 ? work : 1);
        td__parallel_for(outer, grain > 0 ? grain : 1, pass_rows, &j);
        td_storage_release(cur);
        cur = next;
        size[d] = nd;
    }
    store_f64(out[0], cur->data, td_tensor_numel(out[0]));
out:
    if (cur)
        td_storage_release(cur);
    for (int d = 0; d < MAX_SP; d++)
        axis_free(&maps[d]);
    return rc;
}

static int interp_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct interp p;
    return interp_parse(c, &p, out, err);
}

/* ---------------------------------------------------------------------------------------
 * The table's entry points.
 */
#define DEF_INTERP_OP(name)                                                                  \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)     \
    {                                                                                         \
        return interp_meta(c, out, err);                                                      \
    }                                                                                         \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)   \
    {                                                                                         \
        return interp_run(c, out, err);                                                       \
    }

DEF_INTERP_OP(upsample_nearest)
DEF_INTERP_OP(upsample_nearest_backward)
DEF_INTERP_OP(upsample_linear)
DEF_INTERP_OP(upsample_linear_backward)
DEF_INTERP_OP(upsample_bicubic)
DEF_INTERP_OP(upsample_bicubic_backward)
DEF_INTERP_OP(adaptive_avg_pool)
DEF_INTERP_OP(adaptive_avg_pool_backward)
