/*
 * ops_creation.c - the "creation" section of ops.def: constant fills, ranges, identity,
 * and random tensors from the session's Philox4x32-10 generator.
 *
 * Random streams. An op's elements draw 32-bit words from the generator: word j of an op is
 * word j % 4 of the Philox block at counter (rng->offset + j / 4) under key rng->seed.
 * Element k uses the words [k*w, (k+1)*w), where w is the words per element:
 *   rand:    float16/bfloat16/float32 1 (11, 8 and 24 high bits), float64 2 (53 bits),
 *            complex64 2 and complex128 4 (real then imaginary part, each uniform [0, 1));
 *   randn:   2 per real value (Box-Muller, u1 = (w0 + 1) / 2^32 in (0, 1], u2 = w1 / 2^32,
 *            z = sqrt(-2 ln u1) cos(2 pi u2)); complex 4, each part scaled by 1/sqrt(2) so
 *            that E|z|^2 = 1 like torch.randn;
 *   randint: 2 (one 64-bit draw reduced modulo high - low).
 * With w = 1 this is exactly "element k uses counter offset + k/4 and word k%4". After the
 * op, rng->offset advances by the blocks it touched, ceil(numel * w / 4).
 */
#include <math.h>
#include <string.h>

#include "td_internal.h"

#define PI 3.14159265358979323846

/* ---------------------------------------------------------------------------------------
 * Shared helpers.
 */

/* Checks that the creation op may produce dtype dt (its ops.def mask). */
static int check_out_dtype(const struct td_op_ctx *c, enum td_dtype dt, struct td_error *err)
{
    if (!td_dtype_valid(dt) || !(c->info->dtypes & TD_DTM(dt)))
        return td_error_set(err, TD_EINVAL, "%s: dtype %s not supported", c->info->name,
                            td_dtype_name(dt));
    return 0;
}

/* Output meta from the "shape" attribute and the given dtype. */
static int meta_from_shape_attr(const struct td_op_ctx *c, enum td_dtype dt,
                                struct td_meta *out, struct td_error *err)
{
    int n;
    const int64_t *shape = td_arg_ints(c, "shape", &n);
    int rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    rc = td__check_shape(c->info->name, shape, n, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, n, shape);
    return 0;
}

/* Output meta with the input's shape and the dtype attribute or the input's dtype. */
static int meta_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    enum td_dtype dt = td_arg_has(c, "dtype") ? td_arg_dtype(c, "dtype") : c->in_meta[0].dtype;
    int rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, c->in_meta[0].ndim, c->in_meta[0].shape);
    return 0;
}

/* Fills a contiguous tensor with one value: the first element is written, then doubled. */
static void fill_scalar(struct td_tensor *t, const struct td_scalar *s)
{
    size_t isz = td_dtype_size(t->dtype);
    size_t total = td_tensor_nbytes(t);
    char *p = td_tensor_data(t);
    if (total == 0)
        return;
    td__store_scalar(p, t->dtype, s);
    size_t done = isz;
    while (done < total) {
        size_t n = done <= total - done ? done : total - done;
        memcpy(p + done, p, n);
        done += n;
    }
}

static struct td_scalar scalar_int(int64_t v)
{
    struct td_scalar s = {TD_SCALAR_INT, v, (double)v, 0};
    return s;
}

static int need_rng(const struct td_op_ctx *c, struct td_error *err)
{
    if (!c->rng)
        return td_error_set(err, TD_EINVAL, "%s: no random generator", c->info->name);
    return 0;
}

/* Advances the generator past the words an op used. */
static void rng_advance(struct td_rng *rng, uint64_t words)
{
    rng->offset += (words + 3) / 4;
}

/* Fetches words [j, j+n) of the op's stream into w, computing each block once. */
struct word_stream {
    const struct td_rng *rng;
    uint64_t block;
    uint32_t buf[4];
    bool valid;
};

static uint32_t stream_word(struct word_stream *ws, uint64_t j)
{
    uint64_t b = j / 4;
    if (!ws->valid || ws->block != b) {
        td_philox4x32(ws->rng->seed, 0, ws->rng->offset + b, ws->buf);
        ws->block = b;
        ws->valid = true;
    }
    return ws->buf[j % 4];
}

/* ---------------------------------------------------------------------------------------
 * zeros, ones, empty, full, scalar_tensor.
 */
int meta_zeros(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_from_shape_attr(c, td_arg_dtype(c, "dtype"), out, err);
}

int cpu_zeros(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)c;
    (void)err;
    memset(td_tensor_data(out[0]), 0, td_tensor_nbytes(out[0]));
    return 0;
}

int meta_ones(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_from_shape_attr(c, td_arg_dtype(c, "dtype"), out, err);
}

int cpu_ones(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)c;
    (void)err;
    struct td_scalar one = scalar_int(1);
    fill_scalar(out[0], &one);
    return 0;
}

int meta_empty(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_from_shape_attr(c, td_arg_dtype(c, "dtype"), out, err);
}

int cpu_empty(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    /* The engine allocated the output zero-filled; clear again for callers that did not. */
    (void)c;
    (void)err;
    memset(td_tensor_data(out[0]), 0, td_tensor_nbytes(out[0]));
    return 0;
}

int meta_full(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_scalar *s = td_arg_scalar(c, "fill_value");
    enum td_dtype dt = td_arg_has(c, "dtype") ? td_arg_dtype(c, "dtype") : td__scalar_dtype(s);
    return meta_from_shape_attr(c, dt, out, err);
}

int cpu_full(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    fill_scalar(out[0], td_arg_scalar(c, "fill_value"));
    return 0;
}

int meta_scalar_tensor(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_scalar *s = td_arg_scalar(c, "value");
    bool wrapped = td_arg_bool(c, "wrapped");
    enum td_dtype dt = td_arg_has(c, "dtype") ? td_arg_dtype(c, "dtype") : td__scalar_dtype(s);
    /* A wrapped Python number keeps double precision (as PyTorch's wrapped numbers do):
     * float64 * 0.8 must see 0.8, not float32's 0.800000011920929. Promotion treats a
     * wrapped number by category only, so its storage dtype changes no result dtype. */
    if (wrapped && !td_arg_has(c, "dtype")) {
        if (dt == TD_FLOAT32)
            dt = TD_FLOAT64;
        else if (dt == TD_COMPLEX64)
            dt = TD_COMPLEX128;
    }
    int rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, 0, NULL);
    out->wrapped_number = wrapped;
    return 0;
}

int cpu_scalar_tensor(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    fill_scalar(out[0], td_arg_scalar(c, "value"));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * arange, linspace, eye.
 */
struct arange_args {
    bool ints;          /* start, end and step are all integers: compute exactly */
    int64_t is, ie, ist;
    double fs, fe, fst;
    int64_t n;
};

static int arange_args(const struct td_op_ctx *c, struct arange_args *a, struct td_error *err)
{
    const char *op = c->info->name;
    struct td_scalar start = scalar_int(0), step = scalar_int(1);
    const struct td_scalar *end = td_arg_scalar(c, "end");
    if (td_arg_has(c, "start"))
        start = *td_arg_scalar(c, "start");
    if (td_arg_has(c, "step"))
        step = *td_arg_scalar(c, "step");
    if (start.kind == TD_SCALAR_COMPLEX || end->kind == TD_SCALAR_COMPLEX ||
        step.kind == TD_SCALAR_COMPLEX)
        return td_error_set(err, TD_EINVAL, "%s: complex bounds are not supported", op);
    a->ints = start.kind != TD_SCALAR_FLOAT && end->kind != TD_SCALAR_FLOAT &&
              step.kind != TD_SCALAR_FLOAT;
    a->is = start.i;
    a->ie = end->i;
    a->ist = step.i;
    a->fs = start.re;
    a->fe = end->re;
    a->fst = step.re;
    if (a->ints) {
        if (a->ist == 0)
            return td_error_set(err, TD_EINVAL, "%s: step must be nonzero", op);
        uint64_t udiff = 0, ust = 0, n = 0;
        if (a->ist > 0 && a->ie > a->is) {
            udiff = (uint64_t)a->ie - (uint64_t)a->is;
            ust = (uint64_t)a->ist;
        } else if (a->ist < 0 && a->ie < a->is) {
            udiff = (uint64_t)a->is - (uint64_t)a->ie;
            ust = -(uint64_t)a->ist;
        }
        if (ust)
            n = udiff / ust + (udiff % ust != 0);
        if (n > INT64_MAX)
            return td_error_set(err, TD_EINVAL, "%s: too many elements", op);
        a->n = (int64_t)n;
        return 0;
    }
    if (!isfinite(a->fs) || !isfinite(a->fe) || !isfinite(a->fst))
        return td_error_set(err, TD_EINVAL, "%s: start, end and step must be finite", op);
    if (a->fst == 0)
        return td_error_set(err, TD_EINVAL, "%s: step must be nonzero", op);
    double len = ceil((a->fe - a->fs) / a->fst);
    if (!(len > 0))
        len = 0;
    if (len >= 9.2e18)
        return td_error_set(err, TD_EINVAL, "%s: too many elements", op);
    a->n = (int64_t)len;
    return 0;
}

int meta_arange(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct arange_args a;
    int rc = arange_args(c, &a, err);
    if (rc)
        return rc;
    enum td_dtype dt = td_arg_has(c, "dtype") ? td_arg_dtype(c, "dtype")
                                              : (a.ints ? TD_INT64 : TD_FLOAT32);
    rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    rc = td__check_shape(c->info->name, &a.n, 1, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, 1, &a.n);
    return 0;
}

int cpu_arange(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct arange_args a;
    int rc = arange_args(c, &a, err);
    if (rc)
        return rc;
    struct td_tensor *t = out[0];
    char *p = td_tensor_data(t);
    size_t isz = td_dtype_size(t->dtype);
    for (int64_t i = 0; i < a.n; i++, p += isz) {
        if (a.ints) /* exact: the true value lies in [start, end), so the modular sum is it */
            td__store_i64(p, t->dtype,
                          (int64_t)((uint64_t)a.is + (uint64_t)i * (uint64_t)a.ist));
        else
            td__store_f64(p, t->dtype, a.fs + (double)i * a.fst);
    }
    return 0;
}

int meta_linspace(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_scalar *s = td_arg_scalar(c, "start"), *e = td_arg_scalar(c, "end");
    int64_t steps = td_arg_int(c, "steps");
    if (steps < 0)
        return td_error_set(err, TD_EINVAL, "%s: number of steps must be non-negative, got %lld",
                            c->info->name, (long long)steps);
    bool cplx = s->kind == TD_SCALAR_COMPLEX || e->kind == TD_SCALAR_COMPLEX;
    enum td_dtype dt = td_arg_has(c, "dtype") ? td_arg_dtype(c, "dtype")
                                              : (cplx ? TD_COMPLEX64 : TD_FLOAT32);
    int rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    rc = td__check_shape(c->info->name, &steps, 1, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, 1, &steps);
    return 0;
}

int cpu_linspace(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)err;
    const struct td_scalar *s = td_arg_scalar(c, "start"), *e = td_arg_scalar(c, "end");
    int64_t steps = td_arg_int(c, "steps");
    struct td_tensor *t = out[0];
    char *p = td_tensor_data(t);
    size_t isz = td_dtype_size(t->dtype);
    double complex a = CMPLX(s->re, s->im), b = CMPLX(e->re, e->im);
    if (steps == 1) {
        td__store_c128(p, t->dtype, a);
        return 0;
    }
    /* Like ATen: the first half counts up from start, the second half down from end, so
     * both ends are exact and the sequence is symmetric. */
    double complex step = steps > 1 ? (b - a) / (double)(steps - 1) : 0;
    int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; i++, p += isz) {
        double complex v = i < half ? a + step * (double)i : b - step * (double)(steps - i - 1);
        if (td_dtype_is_complex(t->dtype))
            td__store_c128(p, t->dtype, v);
        else
            td__store_f64(p, t->dtype, creal(v));
    }
    return 0;
}

int meta_eye(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t shape[2] = {td_arg_int(c, "n"), 0};
    shape[1] = td_arg_has(c, "m") ? td_arg_int(c, "m") : shape[0];
    enum td_dtype dt = td_arg_dtype(c, "dtype");
    int rc = check_out_dtype(c, dt, err);
    if (rc)
        return rc;
    rc = td__check_shape(c->info->name, shape, 2, dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, 2, shape);
    return 0;
}

int cpu_eye(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    (void)c;
    (void)err;
    struct td_tensor *t = out[0];
    char *p = td_tensor_data(t);
    size_t isz = td_dtype_size(t->dtype);
    int64_t n = t->shape[0], m = t->shape[1];
    memset(p, 0, td_tensor_nbytes(t));
    for (int64_t i = 0; i < n && i < m; i++)
        td__store_i64(p + (size_t)(i * m + i) * isz, t->dtype, 1);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Random.
 */
static int rand_words_per_elem(enum td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT64:
    case TD_COMPLEX64:
        return 2;
    case TD_COMPLEX128:
        return 4;
    default:
        return 1;
    }
}

/* Uniform [0, 1) with as many random bits as dt's significand holds. */
static double uniform_bits(struct word_stream *ws, uint64_t j, enum td_dtype real_dt)
{
    uint32_t w = stream_word(ws, j);
    switch (real_dt) {
    case TD_FLOAT16:
        return (double)(w >> 21) * 0x1p-11;
    case TD_BFLOAT16:
        return (double)(w >> 24) * 0x1p-8;
    case TD_FLOAT32:
        return (double)(w >> 8) * 0x1p-24;
    default: {
        uint64_t v = ((uint64_t)w << 32) | stream_word(ws, j + 1);
        return (double)(v >> 11) * 0x1p-53;
    }
    }
}

/* A random fill split over the engine's threads: element k depends only on the stream and
 * k, so any split gives the same tensor. */
struct rand_job {
    struct td_tensor *t;
    const struct td_rng *rng;
    int64_t low, high;             /* randint */
};

static void rand_chunk(int64_t b, int64_t e, void *vj)
{
    const struct rand_job *rj = vj;
    struct td_tensor *t = rj->t;
    struct word_stream ws = {rj->rng, 0, {0}, false};
    enum td_dtype dt = t->dtype, rdt = td_dtype_to_real(dt);
    uint64_t w = (uint64_t)rand_words_per_elem(dt);
    size_t isz = td_dtype_size(dt);
    char *p = (char *)td_tensor_data(t) + (size_t)b * isz;
    for (int64_t k = b; k < e; k++, p += isz) {
        uint64_t j = (uint64_t)k * w;
        if (td_dtype_is_complex(dt)) {
            uint64_t half = w / 2;
            double re = uniform_bits(&ws, j, rdt), im = uniform_bits(&ws, j + half, rdt);
            td__store_c128(p, dt, CMPLX(re, im));
        } else {
            td__store_f64(p, dt, uniform_bits(&ws, j, rdt));
        }
    }
}

static void fill_rand(struct td_tensor *t, struct td_rng *rng)
{
    struct rand_job rj = {t, rng, 0, 0};
    int64_t n = td_tensor_numel(t);
    td__parallel_for(n, TD__PAR_GRAIN, rand_chunk, &rj);
    rng_advance(rng, (uint64_t)n * (uint64_t)rand_words_per_elem(t->dtype));
}

/* One standard normal from words j, j+1 (Box-Muller, cosine branch). */
static double normal_at(struct word_stream *ws, uint64_t j)
{
    double u1 = ((double)stream_word(ws, j) + 1.0) * 0x1p-32;
    double u2 = (double)stream_word(ws, j + 1) * 0x1p-32;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

static void randn_chunk(int64_t b, int64_t e, void *vj)
{
    const struct rand_job *rj = vj;
    struct td_tensor *t = rj->t;
    struct word_stream ws = {rj->rng, 0, {0}, false};
    enum td_dtype dt = t->dtype;
    bool cplx = td_dtype_is_complex(dt);
    uint64_t w = cplx ? 4 : 2;
    size_t isz = td_dtype_size(dt);
    char *p = (char *)td_tensor_data(t) + (size_t)b * isz;
    for (int64_t k = b; k < e; k++, p += isz) {
        uint64_t j = (uint64_t)k * w;
        if (cplx)
            td__store_c128(p, dt,
                           CMPLX(normal_at(&ws, j) * M_SQRT1_2, normal_at(&ws, j + 2) * M_SQRT1_2));
        else
            td__store_f64(p, dt, normal_at(&ws, j));
    }
}

static void fill_randn(struct td_tensor *t, struct td_rng *rng)
{
    struct rand_job rj = {t, rng, 0, 0};
    int64_t n = td_tensor_numel(t);
    td__parallel_for(n, TD__PAR_GRAIN, randn_chunk, &rj);
    rng_advance(rng, (uint64_t)n * (td_dtype_is_complex(t->dtype) ? 4 : 2));
}

/* Checks [low, high) for randint: non-empty and representable in dt (integers: the dtype's
 * range; float16: +-65504, its largest finite value, as torch checks). */
static int randint_check(const struct td_op_ctx *c, int64_t low, int64_t high, enum td_dtype dt,
                         struct td_error *err)
{
    if (high <= low)
        return td_error_set(err, TD_EINVAL, "%s: high (%lld) must be greater than low (%lld)",
                            c->info->name, (long long)high, (long long)low);
    if (td_dtype_is_integral(dt, false) && dt != TD_INT64) {
        int64_t lo, hi;
        switch (dt) {
        case TD_UINT8:
            lo = 0, hi = 255;
            break;
        case TD_INT8:
            lo = -128, hi = 127;
            break;
        case TD_INT16:
            lo = INT16_MIN, hi = INT16_MAX;
            break;
        default:
            lo = INT32_MIN, hi = INT32_MAX;
            break;
        }
        if (low < lo || high - 1 > hi)
            return td_error_set(err, TD_EINVAL, "%s: range [%lld, %lld) does not fit %s",
                                c->info->name, (long long)low, (long long)high,
                                td_dtype_name(dt));
    }
    if (dt == TD_FLOAT16 && (low < -65504 || high - 1 > 65504))
        return td_error_set(err, TD_EINVAL, "%s: range [%lld, %lld) does not fit float16",
                            c->info->name, (long long)low, (long long)high);
    return 0;
}

static void randint_chunk(int64_t b, int64_t e, void *vj)
{
    const struct rand_job *rj = vj;
    struct td_tensor *t = rj->t;
    struct word_stream ws = {rj->rng, 0, {0}, false};
    uint64_t range = (uint64_t)rj->high - (uint64_t)rj->low;
    size_t isz = td_dtype_size(t->dtype);
    char *p = (char *)td_tensor_data(t) + (size_t)b * isz;
    for (int64_t k = b; k < e; k++, p += isz) {
        uint64_t j = (uint64_t)k * 2;
        uint64_t v = ((uint64_t)stream_word(&ws, j) << 32) | stream_word(&ws, j + 1);
        int64_t r = (int64_t)((uint64_t)rj->low + v % range);
        td__store_i64(p, t->dtype, r);
    }
}

static void fill_randint(struct td_tensor *t, struct td_rng *rng, int64_t low, int64_t high)
{
    struct rand_job rj = {t, rng, low, high};
    int64_t n = td_tensor_numel(t);
    td__parallel_for(n, TD__PAR_GRAIN, randint_chunk, &rj);
    rng_advance(rng, (uint64_t)n * 2);
}

int meta_rand(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_from_shape_attr(c, td_arg_dtype(c, "dtype"), out, err);
}

int cpu_rand(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int rc = need_rng(c, err);
    if (rc)
        return rc;
    fill_rand(out[0], c->rng);
    return 0;
}

int meta_randn(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_from_shape_attr(c, td_arg_dtype(c, "dtype"), out, err);
}

int cpu_randn(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int rc = need_rng(c, err);
    if (rc)
        return rc;
    fill_randn(out[0], c->rng);
    return 0;
}

int meta_randint(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    enum td_dtype dt = td_arg_dtype(c, "dtype");
    int rc = randint_check(c, td_arg_int(c, "low"), td_arg_int(c, "high"), dt, err);
    if (rc)
        return rc;
    return meta_from_shape_attr(c, dt, out, err);
}

int cpu_randint(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int rc = need_rng(c, err);
    if (rc)
        return rc;
    fill_randint(out[0], c->rng, td_arg_int(c, "low"), td_arg_int(c, "high"));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * *_like.
 */
int meta_zeros_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_zeros_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_zeros(c, out, err);
}

int meta_ones_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_ones_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_ones(c, out, err);
}

int meta_empty_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_empty_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_empty(c, out, err);
}

int meta_full_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_full_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_full(c, out, err);
}

int meta_rand_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_rand_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_rand(c, out, err);
}

int meta_randn_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_like(c, out, err);
}

int cpu_randn_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_randn(c, out, err);
}

int meta_randint_like(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = meta_like(c, out, err);
    if (rc)
        return rc;
    return randint_check(c, td_arg_int(c, "low"), td_arg_int(c, "high"), out->dtype, err);
}

int cpu_randint_like(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_randint(c, out, err);
}
