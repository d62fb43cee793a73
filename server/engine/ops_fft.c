/*
 * ops_fft.c - torch.fft on FFTW 3 (docs/FFT.md says why FFTW and what its licence implies).
 *
 * Every transform op is described by one `struct fft_job` (kind, transformed dims, signal
 * sizes, normalisation) built from the attrs by fft_job_make, which meta and kernel share.
 * The kernel copies the input (any strides, any real/complex dtype) into a zero-padded
 * contiguous buffer of the compute dtype and runs one FFTW guru plan per transformed dim, the
 * other dims as the plan's batch ("howmany") dims. Plans are made with FFTW_ESTIMATE (no
 * measuring at request time) under a mutex (FFTW's planner is not thread-safe) and run with
 * the new-array execute functions; float64/complex128 use fftw3, the rest fftw3f.
 */
#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <fftw3.h>

#include "td_internal.h"

enum fft_kind { FFT_C2C, FFT_R2C, FFT_C2R };

struct fft_job {
    enum fft_kind kind;
    bool inverse;        /* c2c sign +1 */
    bool inverse_norm;   /* scale like an inverse transform (backward: 1/N) */
    bool conj_in;        /* hfft */
    bool conj_out;       /* ihfft */
    int ndims;
    int dims[TD_MAX_NDIM];      /* ascending order as given; the last is the halved one */
    int64_t s[TD_MAX_NDIM];     /* logical signal sizes */
    double scale;
    enum td_dtype out_dtype;
    struct td_meta out;
};

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static bool threads_ok;

static void threads_init(void)
{
    threads_ok = fftw_init_threads() != 0 && fftwf_init_threads() != 0;
}

static bool op_is(const struct td_op_ctx *c, enum td_op a, enum td_op b2)
{
    return c->op == a || c->op == b2;
}

static int parse_norm(const struct td_op_ctx *c, int *mode, struct td_error *err)
{
    const char *n = td_arg_str(c, "norm");
    if (!n || strcmp(n, "backward") == 0)
        *mode = 0;
    else if (strcmp(n, "ortho") == 0)
        *mode = 1;
    else if (strcmp(n, "forward") == 0)
        *mode = 2;
    else
        return td_error_set(err, TD_EINVAL, "%s: norm must be backward, ortho or forward, "
                            "not '%s'", c->info->name, n);
    return 0;
}

/* Builds the job of a transform op from its input meta and attrs.
 * Returns: 0 or TD_EINVAL naming the op. */
static int fft_job_make(const struct td_op_ctx *c, struct fft_job *j, struct td_error *err)
{
    const struct td_meta *m = &c->in_meta[0];
    const char *name = c->info->name;
    memset(j, 0, sizeof(*j));
    enum td_op op = c->op;
    bool one_d = op == TD_OP_fft || op == TD_OP_ifft || op == TD_OP_rfft || op == TD_OP_irfft ||
                 op == TD_OP_hfft || op == TD_OP_ihfft;
    bool two_d = op == TD_OP_fft2 || op == TD_OP_ifft2 || op == TD_OP_rfft2 ||
                 op == TD_OP_irfft2;
    if (op_is(c, TD_OP_rfft, TD_OP_rfftn) || op_is(c, TD_OP_rfft2, TD_OP_ihfft))
        j->kind = FFT_R2C;
    else if (op_is(c, TD_OP_irfft, TD_OP_irfftn) || op_is(c, TD_OP_irfft2, TD_OP_hfft))
        j->kind = FFT_C2R;
    else
        j->kind = FFT_C2C;
    j->inverse = op_is(c, TD_OP_ifft, TD_OP_ifftn) || op == TD_OP_ifft2;
    j->inverse_norm = j->inverse || op_is(c, TD_OP_irfft, TD_OP_irfftn) ||
                      op == TD_OP_irfft2 || op == TD_OP_ihfft;
    j->conj_in = op == TD_OP_hfft;
    j->conj_out = op == TD_OP_ihfft;
    if (m->ndim == 0)
        return td_error_set(err, TD_EINVAL, "%s: input must have at least 1 dimension", name);
    bool given_s[TD_MAX_NDIM] = {0};
    if (one_d) {
        int d;
        int rc = td__norm_dim(name, td_arg_int(c, "dim"), m->ndim, &d, err);
        if (rc)
            return rc;
        j->ndims = 1;
        j->dims[0] = d;
        if (td_arg_has(c, "n")) {
            j->s[0] = td_arg_int(c, "n");
            given_s[0] = true;
        }
    } else {
        int ns = 0, nd = 0;
        const int64_t *s = td_arg_has(c, "s") ? td_arg_ints(c, "s", &ns) : NULL;
        const int64_t *dl = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &nd) : NULL;
        if (s && dl && ns != nd)
            return td_error_set(err, TD_EINVAL, "%s: s has %d entries but dim has %d", name,
                                ns, nd);
        if (dl) {
            j->ndims = nd;
            bool seen[TD_MAX_NDIM] = {0};
            for (int k = 0; k < nd; k++) {
                int rc = td__norm_dim(name, dl[k], m->ndim, &j->dims[k], err);
                if (rc)
                    return rc;
                if (seen[j->dims[k]])
                    return td_error_set(err, TD_EINVAL, "%s: dim %d repeated", name,
                                        j->dims[k]);
                seen[j->dims[k]] = true;
            }
        } else {
            int want = s ? ns : (two_d ? 2 : m->ndim);
            if (want > m->ndim)
                return td_error_set(err, TD_EINVAL, "%s: %d dims to transform but the input "
                                    "has %d", name, want, m->ndim);
            j->ndims = want;
            for (int k = 0; k < want; k++)
                j->dims[k] = m->ndim - want + k;
        }
        for (int k = 0; s && k < ns; k++)
            if (s[k] != -1) {
                j->s[k] = s[k];
                given_s[k] = true;
            }
    }
    if (j->ndims == 0)
        return td_error_set(err, TD_EINVAL, "%s: at least one dim must be transformed", name);
    j->out = *m;
    j->out.wrapped_number = false;
    /* Integers compute in the default float dtype, like torch.fft. */
    enum td_dtype real_dt = td_dtype_is_integral(m->dtype, false) ? TD_FLOAT32
                                                                  : td_dtype_to_real(m->dtype);
    if (j->kind == FFT_R2C && td_dtype_is_complex(m->dtype))
        return td_error_set(err, TD_EINVAL, "%s: expects a real input, got %s", name,
                            td_dtype_name(m->dtype));
    j->out_dtype = j->kind == FFT_C2R ? real_dt : td_dtype_to_complex(real_dt);
    j->out.dtype = j->out_dtype;
    double n_total = 1.0;
    for (int k = 0; k < j->ndims; k++) {
        int d = j->dims[k];
        bool last = k == j->ndims - 1;
        if (!given_s[k])
            j->s[k] = (j->kind == FFT_C2R && last) ? 2 * (m->shape[d] - 1) : m->shape[d];
        if (j->s[k] < 1)
            return td_error_set(err, TD_EINVAL, "%s: invalid number of data points (%lld) "
                                "along dim %d", name, (long long)j->s[k], d);
        if (last && j->kind == FFT_R2C)
            j->out.shape[d] = j->s[k] / 2 + 1;
        else
            j->out.shape[d] = j->s[k];
        n_total *= (double)j->s[k];
    }
    /* The output (and the kernel's buffer, of at most the same bytes) must fit the limits. */
    int rc = td__check_shape(name, j->out.shape, j->out.ndim, j->out.dtype, err);
    if (rc)
        return rc;
    int mode;
    rc = parse_norm(c, &mode, err);
    if (rc)
        return rc;
    if (mode == 1)
        j->scale = 1.0 / sqrt(n_total);
    else if ((mode == 0) == j->inverse_norm)
        j->scale = 1.0 / n_total;
    else
        j->scale = 1.0;
    return 0;
}

#define FFT_META(name)                                                                    \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err) \
    {                                                                                     \
        struct fft_job j;                                                                 \
        int rc = fft_job_make(c, &j, err);                                                \
        if (rc)                                                                           \
            return rc;                                                                    \
        *out = j.out;                                                                     \
        return 0;                                                                         \
    }

/* Copies src into the zeroed contiguous dst over their common extent (per dim the smaller
 * size), converting dtypes. */
static int copy_overlap(struct td_tensor *dst, struct td_tensor *src, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    for (int d = 0; d < dst->ndim; d++)
        shape[d] = src->shape[d] < dst->shape[d] ? src->shape[d] : dst->shape[d];
    if (td_shape_numel(shape, dst->ndim) == 0)
        return 0;
    struct td_tensor *sv = NULL, *dv = NULL;
    int rc = td_tensor_new_view(src, src->ndim, shape, src->strides, src->offset, &sv, err);
    if (!rc)
        rc = td_tensor_new_view(dst, dst->ndim, shape, dst->strides, dst->offset, &dv, err);
    if (!rc)
        rc = td_tensor_copy(dv, sv, err);
    td_tensor_release(sv);
    td_tensor_release(dv);
    return rc;
}

/* The guru dims of a transform along dim d of t (n = logical length): the transform dim and
 * the batch dims (every other dim), with element strides of t for input and of o for
 * output. */
static int guru_dims(const struct td_tensor *t, const struct td_tensor *o, int d, int64_t n,
                     fftw_iodim64 *dim, fftw_iodim64 *howmany)
{
    dim->n = n;
    dim->is = t->strides[d];
    dim->os = o->strides[d];
    int h = 0;
    for (int k = 0; k < t->ndim; k++) {
        if (k == d)
            continue;
        howmany[h].n = t->shape[k];
        howmany[h].is = t->strides[k];
        howmany[h].os = o->strides[k];
        h++;
    }
    return h;
}

enum plan_kind { PK_C2C, PK_R2C, PK_C2R };

/* Plans (under the lock) and runs one transform along dim d. */
static int run_plan(enum plan_kind pk, bool dbl, int sign, struct td_tensor *t, struct td_tensor *o,
                    int d, int64_t n, struct td_error *err)
{
    fftw_iodim64 dim, howmany[TD_MAX_NDIM];
    int h = guru_dims(t, o, d, n, &dim, howmany);
    void *in = td_tensor_data(t), *out = td_tensor_data(o);
    int nthreads = td_parallel_threads();
    if (td_tensor_numel(o) < 32768)
        nthreads = 1;
    pthread_once(&threads_once, threads_init);
    pthread_mutex_lock(&plan_lock);
    void *plan = NULL;
    if (dbl) {
        if (threads_ok)
            fftw_plan_with_nthreads(nthreads);
        if (pk == PK_C2C)
            plan = fftw_plan_guru64_dft(1, &dim, h, howmany, in, out, sign, FFTW_ESTIMATE);
        else if (pk == PK_R2C)
            plan = fftw_plan_guru64_dft_r2c(1, &dim, h, howmany, in, out, FFTW_ESTIMATE);
        else
            plan = fftw_plan_guru64_dft_c2r(1, &dim, h, howmany, in, out, FFTW_ESTIMATE);
    } else {
        if (threads_ok)
            fftwf_plan_with_nthreads(nthreads);
        if (pk == PK_C2C)
            plan = fftwf_plan_guru64_dft(1, &dim, h, howmany, in, out, sign, FFTW_ESTIMATE);
        else if (pk == PK_R2C)
            plan = fftwf_plan_guru64_dft_r2c(1, &dim, h, howmany, in, out, FFTW_ESTIMATE);
        else
            plan = fftwf_plan_guru64_dft_c2r(1, &dim, h, howmany, in, out, FFTW_ESTIMATE);
    }
    pthread_mutex_unlock(&plan_lock);
    if (!plan)
        return td_error_set(err, TD_EINTERNAL, "fft: FFTW could not plan a transform of %lld "
                            "points", (long long)n);
    if (dbl) {
        if (pk == PK_C2C)
            fftw_execute_dft(plan, in, out);
        else if (pk == PK_R2C)
            fftw_execute_dft_r2c(plan, in, out);
        else
            fftw_execute_dft_c2r(plan, in, out);
    } else {
        if (pk == PK_C2C)
            fftwf_execute_dft(plan, in, out);
        else if (pk == PK_R2C)
            fftwf_execute_dft_r2c(plan, in, out);
        else
            fftwf_execute_dft_c2r(plan, in, out);
    }
    pthread_mutex_lock(&plan_lock);
    if (dbl)
        fftw_destroy_plan(plan);
    else
        fftwf_destroy_plan(plan);
    pthread_mutex_unlock(&plan_lock);
    return 0;
}

/* Multiplies (and conjugates) every element of the contiguous t in place. */
static void scale_conj(struct td_tensor *t, double scale, bool conj)
{
    if (scale == 1.0 && !conj)
        return;
    bool cplx = td_dtype_is_complex(t->dtype);
    int64_t n = td_tensor_numel(t) * (cplx ? 2 : 1);   /* float components */
    float sf = (float)scale;
    bool dbl = t->dtype == TD_FLOAT64 || t->dtype == TD_COMPLEX128;
    if (dbl) {
        double *p = td_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            p[i] *= (conj && cplx && (i & 1)) ? -scale : scale;
    } else {
        float *p = td_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            p[i] *= (conj && cplx && (i & 1)) ? -sf : sf;
    }
}

/* The kernel of every transform op: out[0] is the engine-allocated contiguous output of the
 * planned meta. Returns: 0 or a status (err filled). */
static int fft_run(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct fft_job j;
    int rc = fft_job_make(c, &j, err);
    if (rc)
        return rc;
    struct td_tensor *in = c->inputs[0], *o = out[0], *tmp = NULL;
    bool dbl = j.out_dtype == TD_FLOAT64 || j.out_dtype == TD_COMPLEX128;
    if (td_tensor_numel(o) == 0)
        return 0;
    int last = j.dims[j.ndims - 1];
    bool same_shape = true;
    for (int d = 0; d < in->ndim; d++)
        same_shape = same_shape && in->shape[d] == o->shape[d];
    if (j.kind == FFT_C2C && same_shape && in->dtype == o->dtype &&
        td_tensor_is_contiguous(in)) {
        /* Out of place straight from the input (FFTW preserves the input of an out-of-place
         * c2c transform; FFTW_ESTIMATE planning does not touch the arrays). */
        rc = run_plan(PK_C2C, dbl, j.inverse ? FFTW_BACKWARD : FFTW_FORWARD, in, o, j.dims[0],
                      j.s[0], err);
        for (int k = 1; !rc && k < j.ndims; k++)
            rc = run_plan(PK_C2C, dbl, j.inverse ? FFTW_BACKWARD : FFTW_FORWARD, o, o,
                          j.dims[k], j.s[k], err);
    } else if (j.kind == FFT_C2C) {
        if (!same_shape)
            memset(td_tensor_data(o), 0, td_tensor_nbytes(o));
        rc = copy_overlap(o, in, err);
        for (int k = 0; !rc && k < j.ndims; k++)
            rc = run_plan(PK_C2C, dbl, j.inverse ? FFTW_BACKWARD : FFTW_FORWARD, o, o,
                          j.dims[k], j.s[k], err);
    } else if (j.kind == FFT_R2C) {
        struct td_meta tm = j.out;
        tm.dtype = td_dtype_to_real(j.out_dtype);
        tm.shape[last] = j.s[j.ndims - 1];
        rc = td_tensor_new(&tm, true, c->account, &tmp, err);
        if (!rc)
            rc = copy_overlap(tmp, in, err);
        if (!rc)
            rc = run_plan(PK_R2C, dbl, 0, tmp, o, last, j.s[j.ndims - 1], err);
        for (int k = 0; !rc && k < j.ndims - 1; k++)
            rc = run_plan(PK_C2C, dbl, FFTW_FORWARD, o, o, j.dims[k], j.s[k], err);
    } else {
        struct td_meta tm = j.out;
        tm.dtype = td_dtype_to_complex(j.out_dtype);
        tm.shape[last] = j.s[j.ndims - 1] / 2 + 1;
        rc = td_tensor_new(&tm, true, c->account, &tmp, err);
        if (!rc)
            rc = copy_overlap(tmp, in, err);
        if (!rc && j.conj_in)
            scale_conj(tmp, 1.0, true);
        for (int k = 0; !rc && k < j.ndims - 1; k++)
            rc = run_plan(PK_C2C, dbl, FFTW_BACKWARD, tmp, tmp, j.dims[k], j.s[k], err);
        if (!rc)
            rc = run_plan(PK_C2R, dbl, 0, tmp, o, last, j.s[j.ndims - 1], err);
    }
    td_tensor_release(tmp);
    if (rc)
        return rc;
    scale_conj(o, j.scale, j.conj_out);
    return 0;
}

#define FFT_OP(name)                                                                      \
    FFT_META(name)                                                                        \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                     \
        return fft_run(c, out, err);                                                      \
    }

FFT_OP(fft)
FFT_OP(ifft)
FFT_OP(rfft)
FFT_OP(irfft)
FFT_OP(hfft)
FFT_OP(ihfft)
FFT_OP(fftn)
FFT_OP(ifftn)
FFT_OP(rfftn)
FFT_OP(irfftn)
FFT_OP(fft2)
FFT_OP(ifft2)
FFT_OP(rfft2)
FFT_OP(irfft2)

/* ---- fftfreq, rfftfreq ---- */
static int freq_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t n = td_arg_int(c, "n");
    enum td_dtype dt = td_arg_dtype(c, "dtype");
    if (n < 1)
        return td_error_set(err, TD_EINVAL, "%s: n must be positive, got %lld", c->info->name,
                            (long long)n);
    if (dt != TD_FLOAT32 && dt != TD_FLOAT64)
        return td_error_set(err, TD_EINVAL, "%s: dtype must be float32 or float64, not %s",
                            c->info->name, td_dtype_name(dt));
    int64_t len = c->op == TD_OP_rfftfreq ? n / 2 + 1 : n;
    td__meta_set(out, dt, 1, &len);
    return td__check_shape(c->info->name, &len, 1, dt, err);
}

static int freq_cpu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    int64_t n = td_arg_int(c, "n");
    double d = td_arg_float(c, "d");
    struct td_tensor *o = out[0];
    int64_t len = o->shape[0];
    char *p = td_tensor_data(o);
    size_t isz = td_dtype_size(o->dtype);
    for (int64_t i = 0; i < len; i++) {
        int64_t k = (c->op == TD_OP_fftfreq && i >= (n + 1) / 2) ? i - n : i;
        td__store_f64(p + (size_t)i * isz, o->dtype, (double)k / ((double)n * d));
    }
    return 0;
}

int meta_fftfreq(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return freq_meta(c, out, err);
}

int cpu_fftfreq(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return freq_cpu(c, out, err);
}

int meta_rfftfreq(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return freq_meta(c, out, err);
}

int cpu_rfftfreq(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return freq_cpu(c, out, err);
}

/* ---- fftshift, ifftshift: roll by +-(size/2) along dim ---- */
static int shift_dims(const struct td_op_ctx *c, int64_t *dims, int *nd, struct td_error *err)
{
    const struct td_meta *m = &c->in_meta[0];
    int n = 0;
    const int64_t *dl = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &n) : NULL;
    if (!dl) {
        for (int d = 0; d < m->ndim; d++)
            dims[d] = d;
        *nd = m->ndim;
        return 0;
    }
    for (int k = 0; k < n; k++) {
        int d;
        int rc = td__norm_dim(c->info->name, dl[k], m->ndim, &d, err);
        if (rc)
            return rc;
        dims[k] = d;
    }
    *nd = n;
    return 0;
}

static int shift_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t dims[TD_MAX_NDIM];
    int nd;
    int rc = shift_dims(c, dims, &nd, err);
    if (rc)
        return rc;
    *out = c->in_meta[0];
    out->wrapped_number = false;
    return 0;
}

static int shift_cpu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t dims[TD_MAX_NDIM], shifts[TD_MAX_NDIM];
    int nd;
    int rc = shift_dims(c, dims, &nd, err);
    if (rc)
        return rc;
    struct td_tensor *in = c->inputs[0];
    if (nd == 0 || td_tensor_numel(in) == 0)
        return td_tensor_copy(out[0], in, err);
    for (int k = 0; k < nd; k++) {
        int64_t n = in->shape[dims[k]];
        shifts[k] = c->op == TD_OP_fftshift ? n / 2 : -(n / 2);
    }
    struct td_attr_arg a[2];
    a[0].name = "shifts";
    a[0].value.type = TD_ATTR_INTS;
    a[0].value.nints = nd;
    memcpy(a[0].value.ints, shifts, sizeof(int64_t) * (size_t)nd);
    a[1].name = "dims";
    a[1].value.type = TD_ATTR_INTS;
    a[1].value.nints = nd;
    memcpy(a[1].value.ints, dims, sizeof(int64_t) * (size_t)nd);
    struct td_tensor *r = NULL;
    rc = td_op_call(TD_OP_roll, 1, &in, 2, a, 1, &r, NULL, c->account, err);
    if (rc)
        return rc;
    rc = td_tensor_copy(out[0], r, err);
    td_tensor_release(r);
    return rc;
}

int meta_fftshift(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return shift_meta(c, out, err);
}

int cpu_fftshift(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return shift_cpu(c, out, err);
}

int meta_ifftshift(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return shift_meta(c, out, err);
}

int cpu_ifftshift(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return shift_cpu(c, out, err);
}
