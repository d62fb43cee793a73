/*
 * ops_reduce.c - reductions (sum, mean, prod, amax, amin, argmax, argmin, var, std, all,
 * any, logsumexp) and scans (cumsum, cumprod).
 *
 * A reduction splits the input's dims into kept ("outer") and reduced ("inner") dims, both in
 * their original order. The output is contiguous, so walking the outer dims in C order visits
 * output elements in memory order. The inner dims are coalesced where memory allows and walked
 * as rows (one strided 1-d run each) so typed loops stay simple. Each op supplies an
 * accumulator: init, a row function per pass, and a finish that stores the result.
 *
 * Floating sums accumulate in double with Neumaier's compensated summation (A. Neumaier,
 * "Rundungsfehleranalyse einiger Verfahren zur Summation endlicher Summen", ZAMM 54, 1974), so
 * float32 and float64 sums are at least as accurate as NumPy's pairwise sums. Integer sums and
 * products wrap in 64 bits (computed unsigned: no undefined behaviour).
 *
 * Large reductions run on the engine's threads (td__parallel_for). With several outputs each
 * thread computes whole outputs, in the serial order, so results equal a serial run. With one
 * to RED_SPLIT_MAX_OUT outputs over many elements, each output's elements are cut into up to
 * RED_PARTS contiguous parts (how many depends only on the element count), each part is
 * reduced on its own and the partial results are combined in part order: float sums and
 * products may then differ from a single serial pass in the last bits, but never between
 * thread counts; integer, boolean, min/max and arg results are exact. Scans run their
 * independent lines in parallel.
 */
#include <math.h>
#include <string.h>

#include "td_internal.h"

/* ---------------------------------------------------------------------------------------
 * Dims, metas and the walk.
 */

/* mask[d] = reduce dim d. No dim attribute, or an empty list, means every dim. */
static int red_mask(const char *op, const struct td_op_ctx *c, int ndim, bool *mask,
                    struct td_error *err)
{
    for (int i = 0; i < TD_MAX_NDIM; i++)
        mask[i] = false;
    int n = 0;
    const int64_t *dims = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &n) : NULL;
    if (n == 0) {
        for (int i = 0; i < ndim; i++)
            mask[i] = true;
        return 0;
    }
    return td__mark_dims(op, dims, n, ndim, false, mask, err);
}

/* The same for argmax/argmin's single optional dim. */
static int red_mask_one(const char *op, const struct td_op_ctx *c, int ndim, bool *mask,
                        struct td_error *err)
{
    for (int i = 0; i < TD_MAX_NDIM; i++)
        mask[i] = !td_arg_has(c, "dim") && i < ndim;
    if (!td_arg_has(c, "dim"))
        return 0;
    int d;
    int rc = td__norm_dim(op, td_arg_int(c, "dim"), ndim, &d, err);
    if (rc)
        return rc;
    if (ndim > 0)
        mask[d] = true;
    return 0;
}

static void red_out_meta(const struct td_meta *m, const bool *mask, bool keepdim,
                         enum td_dtype dt, struct td_meta *out)
{
    int64_t shape[TD_MAX_NDIM];
    int n = 0;
    for (int i = 0; i < m->ndim; i++) {
        if (!mask[i])
            shape[n++] = m->shape[i];
        else if (keepdim)
            shape[n++] = 1;
    }
    td__meta_set(out, dt, n, shape);
}

/* TD_EINVAL when a reduced dim is empty (amax, amin, argmax, argmin have no identity). */
static int red_nonempty(const char *op, const struct td_meta *m, const bool *mask,
                        struct td_error *err)
{
    for (int i = 0; i < m->ndim; i++)
        if (mask[i] && m->shape[i] == 0)
            return td_error_set(err, TD_EINVAL,
                                "%s: cannot reduce over dim %d of size 0 (no identity)", op, i);
    return 0;
}

struct red {
    int nouter;
    int64_t oshape[TD_MAX_NDIM], ostr[TD_MAX_NDIM];
    int ninner;
    int64_t ishape[TD_MAX_NDIM], istr[TD_MAX_NDIM];
    int64_t inner_numel;
};

static void red_plan(const struct td_tensor *t, const bool *mask, struct red *r)
{
    r->nouter = 0;
    r->ninner = 0;
    r->inner_numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (!mask[d]) {
            r->oshape[r->nouter] = t->shape[d];
            r->ostr[r->nouter] = t->strides[d];
            r->nouter++;
            continue;
        }
        r->inner_numel *= t->shape[d];
        if (t->shape[d] == 1)
            continue;
        /* Merge with the previous inner dim when together they form one strided run;
         * this keeps C order, which argmax's flat index relies on. */
        int n = r->ninner;
        if (n > 0 && r->istr[n - 1] == t->strides[d] * t->shape[d]) {
            r->ishape[n - 1] *= t->shape[d];
            r->istr[n - 1] = t->strides[d];
        } else {
            r->ishape[n] = t->shape[d];
            r->istr[n] = t->strides[d];
            r->ninner++;
        }
    }
}

static bool idx_next(int64_t *idx, const int64_t *shape, int ndim)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d])
            return true;
        idx[d] = 0;
    }
    return false;
}

enum acc_mode { M_INT, M_BOOL, M_FLOAT, M_COMPLEX };

struct acc {
    enum td_dtype dt;     /* input dtype */
    enum td_dtype odt;    /* output dtype */
    enum acc_mode mode;
    int pass;
    int64_t n;            /* elements reduced per output */
    int64_t pos;          /* flat index of the next element (argmax) */
    uint64_t iv;          /* integer sum/product, wraps */
    bool b;
    double s, sc, si, sci;  /* sum and compensation, real and imaginary */
    bool have, nan;
    int64_t best_i;
    double best_f;
    int64_t best_pos;
    double mean_re, mean_im, shift, correction;
    bool is_max, is_std;
};

struct red_op {
    int passes;
    void (*init)(struct acc *a);
    void (*row)(struct acc *a, const char *p, int64_t sb, int64_t n);
    void (*between)(struct acc *a);   /* after every pass but the last */
    void (*fin)(struct acc *a, char *outp);
    /* Folds a part's accumulator (same pass, later elements) into a. */
    void (*comb)(struct acc *a, const struct acc *part);
};

/* Outputs up to which a large reduction splits each output's elements into parts. */
#define RED_SPLIT_MAX_OUT 4
/* Most parts one output is split into. */
#define RED_PARTS 32

/* Feeds the reduced elements [b, e) of one output (C order over the reduced dims, whose
 * first element is at ob) to op->row, one strided run at a time. a->pos starts at b. */
static void red_walk(const struct red_op *op, struct acc *a, const struct red *r,
                     const char *ob, int64_t isz, int64_t b, int64_t e)
{
    int64_t L = r->ninner ? r->ishape[r->ninner - 1] : 1;
    int64_t S = r->ninner ? r->istr[r->ninner - 1] * isz : 0;
    int nrest = r->ninner ? r->ninner - 1 : 0;
    int64_t iidx[TD_MAX_NDIM] = {0};
    int64_t row = b / L, col = b % L;
    for (int d = nrest - 1; d >= 0; d--) {
        iidx[d] = row % r->ishape[d];
        row /= r->ishape[d];
    }
    a->pos = b;
    for (int64_t pos = b; pos < e;) {
        int64_t off = 0;
        for (int d = 0; d < nrest; d++)
            off += iidx[d] * r->istr[d];
        int64_t cnt = L - col < e - pos ? L - col : e - pos;
        op->row(a, ob + off * isz + col * S, S, cnt);
        pos += cnt;
        col = 0;
        idx_next(iidx, r->ishape, nrest);
    }
}

struct red_job {
    const struct red_op *op;
    const struct acc *proto;
    const struct red *r;
    const char *base;         /* input data */
    char *outp;               /* output data */
    int64_t isz, osz;
    /* Split reductions: the output's first element, the running total and the parts. */
    const char *ob;
    const struct acc *total;
    struct acc *parts;
    int64_t nparts;
};

/* One output reduced serially over all its elements. */
static void red_one(const struct red_job *j, const char *ob, char *outp)
{
    const struct red_op *op = j->op;
    struct acc a = *j->proto;
    op->init(&a);
    for (a.pass = 0; a.pass < op->passes; a.pass++) {
        if (j->r->inner_numel > 0)
            red_walk(op, &a, j->r, ob, j->isz, 0, j->r->inner_numel);
        if (a.pass + 1 < op->passes)
            op->between(&a);
    }
    op->fin(&a, outp);
}

/* Outputs [b, e), in memory order of the contiguous output. */
static void red_out_chunk(int64_t b, int64_t e, void *vj)
{
    const struct red_job *j = vj;
    const struct red *r = j->r;
    int64_t oidx[TD_MAX_NDIM] = {0};
    int64_t k = b;
    for (int d = r->nouter - 1; d >= 0; d--) {
        oidx[d] = k % r->oshape[d];
        k /= r->oshape[d];
    }
    char *outp = j->outp + b * j->osz;
    for (k = b; k < e; k++, outp += j->osz) {
        int64_t ooff = 0;
        for (int d = 0; d < r->nouter; d++)
            ooff += oidx[d] * r->ostr[d];
        red_one(j, j->base + ooff * j->isz, outp);
        idx_next(oidx, r->oshape, r->nouter);
    }
}

/* Parts [b, e) of a split output: each starts from the total's state (carrying the mean or
 * shift of earlier passes) with fresh accumulators. */
static void red_part_chunk(int64_t b, int64_t e, void *vj)
{
    const struct red_job *j = vj;
    int64_t n = j->r->inner_numel, q = n / j->nparts, rem = n % j->nparts;
    for (int64_t p = b; p < e; p++) {
        int64_t lo = p * q + (p < rem ? p : rem);
        int64_t hi = lo + q + (p < rem ? 1 : 0);
        struct acc *a = &j->parts[p];
        *a = *j->total;
        j->op->init(a);
        a->pass = j->total->pass;
        red_walk(j->op, a, j->r, j->ob, j->isz, lo, hi);
    }
}

/* One output whose elements are reduced in parts on the engine's threads, the partial
 * results combined in part order. */
static void red_one_split(struct red_job *j, const char *ob, char *outp)
{
    const struct red_op *op = j->op;
    struct acc parts[RED_PARTS];
    struct acc a = *j->proto;
    op->init(&a);
    int64_t np = j->r->inner_numel / TD__PAR_GRAIN;
    j->nparts = np < 1 ? 1 : np > RED_PARTS ? RED_PARTS : np;
    j->ob = ob;
    j->parts = parts;
    j->total = &a;
    for (a.pass = 0; a.pass < op->passes; a.pass++) {
        td__parallel_for(j->nparts, 1, red_part_chunk, j);
        for (int64_t p = 0; p < j->nparts; p++)
            op->comb(&a, &parts[p]);
        if (a.pass + 1 < op->passes)
            op->between(&a);
    }
    op->fin(&a, outp);
}

/* Runs op over every output element. out is contiguous with the reduced shape. */
static void red_run(const struct red_op *op, struct acc *proto, const struct td_tensor *in,
                    const bool *mask, struct td_tensor *o)
{
    struct red r;
    red_plan(in, mask, &r);
    int64_t nout = td_tensor_numel(o);
    if (nout == 0)
        return;
    proto->n = r.inner_numel;
    struct red_job j;
    memset(&j, 0, sizeof j);
    j.op = op;
    j.proto = proto;
    j.r = &r;
    j.base = td_tensor_data(in);
    j.outp = td_tensor_data(o);
    j.isz = (int64_t)td_dtype_size(in->dtype);
    j.osz = (int64_t)td_dtype_size(o->dtype);
    if (nout <= RED_SPLIT_MAX_OUT && r.inner_numel >= 2 * TD__PAR_GRAIN) {
        int64_t oidx[TD_MAX_NDIM] = {0};
        char *outp = j.outp;
        do {
            int64_t ooff = 0;
            for (int d = 0; d < r.nouter; d++)
                ooff += oidx[d] * r.ostr[d];
            red_one_split(&j, j.base + ooff * j.isz, outp);
            outp += j.osz;
        } while (idx_next(oidx, r.oshape, r.nouter));
        return;
    }
    int64_t inner = r.inner_numel > 0 ? r.inner_numel : 1;
    int64_t grain = TD__PAR_GRAIN / inner;
    td__parallel_for(nout, grain < 1 ? 1 : grain, red_out_chunk, &j);
}

static enum acc_mode mode_of(enum td_dtype dt)
{
    if (dt == TD_BOOL)
        return M_BOOL;
    if (td_dtype_is_integral(dt, false))
        return M_INT;
    if (td_dtype_is_complex(dt))
        return M_COMPLEX;
    return M_FLOAT;
}

/* Loads element p of dtype dt as the integer value it has after a cast to an integer dtype. */
static int64_t ld_i(const char *p, enum td_dtype dt)
{
    return td__load_i64(p, dt);
}

static double ld_f(const char *p, enum td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT32: {
        float v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case TD_FLOAT64: {
        double v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default:
        return td__load_f64(p, dt);
    }
}

/* Neumaier step: adds x to the running sum (*s, compensation *c). */
static inline void neu_add(double *s, double *c, double x)
{
    double t = *s + x;
    if (fabs(*s) >= fabs(x))
        *c += (*s - t) + x;
    else
        *c += (x - t) + *s;
    *s = t;
}

/* The compensated total; an infinite or NaN sum makes the compensation meaningless. */
static inline double neu_total(double s, double c)
{
    return isfinite(s) ? s + c : s;
}

static void acc_zero(struct acc *a)
{
    a->iv = 0;
    a->b = false;
    a->s = a->sc = a->si = a->sci = 0;
    a->have = a->nan = false;
    a->best_i = 0;
    a->best_f = 0;
    a->best_pos = 0;
}

/* ---------------------------------------------------------------------------------------
 * sum, prod, mean.
 */
static void sum_init(struct acc *a)
{
    acc_zero(a);
}

static void sum_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    switch (a->mode) {
    case M_INT:
        for (int64_t j = 0; j < n; j++, p += sb)
            a->iv += (uint64_t)ld_i(p, a->dt);
        break;
    case M_BOOL:
        for (int64_t j = 0; j < n; j++, p += sb)
            a->b = a->b || td__load_bool(p, a->dt);
        break;
    case M_FLOAT:
        if (a->dt == TD_FLOAT32) {
            /* float32 input: plain double accumulation within a row is exact to far below
             * float32's precision for any row length that fits in memory (n * 2^-53), and
             * vectorises; rows still combine with compensation. */
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t j = 0;
            if (sb == (int64_t)sizeof(float)) {
                const float *f = (const float *)(const void *)p;
                for (; j + 4 <= n; j += 4) {
                    s0 += f[j];
                    s1 += f[j + 1];
                    s2 += f[j + 2];
                    s3 += f[j + 3];
                }
                for (; j < n; j++)
                    s0 += f[j];
            } else {
                for (; j < n; j++, p += sb) {
                    float v;
                    memcpy(&v, p, sizeof v);
                    s0 += v;
                }
            }
            neu_add(&a->s, &a->sc, (s0 + s1) + (s2 + s3));
        } else {
            for (int64_t j = 0; j < n; j++, p += sb)
                neu_add(&a->s, &a->sc, ld_f(p, a->dt));
        }
        break;
    case M_COMPLEX:
        for (int64_t j = 0; j < n; j++, p += sb) {
            double complex z = td__load_c128(p, a->dt);
            neu_add(&a->s, &a->sc, creal(z));
            neu_add(&a->si, &a->sci, cimag(z));
        }
        break;
    }
}

static void sum_comb(struct acc *a, const struct acc *p)
{
    switch (a->mode) {
    case M_INT:
        a->iv += p->iv;
        break;
    case M_BOOL:
        a->b = a->b || p->b;
        break;
    case M_FLOAT:
        neu_add(&a->s, &a->sc, p->s);
        a->sc += p->sc;
        break;
    case M_COMPLEX:
        neu_add(&a->s, &a->sc, p->s);
        a->sc += p->sc;
        neu_add(&a->si, &a->sci, p->si);
        a->sci += p->sci;
        break;
    }
}

static void sum_fin(struct acc *a, char *outp)
{
    switch (a->mode) {
    case M_INT:
        td__store_i64(outp, a->odt, (int64_t)a->iv);
        break;
    case M_BOOL:
        td__store_bool(outp, a->odt, a->b);
        break;
    case M_FLOAT:
        td__store_f64(outp, a->odt, neu_total(a->s, a->sc));
        break;
    case M_COMPLEX:
        td__store_c128(outp, a->odt,
                       CMPLX(neu_total(a->s, a->sc), neu_total(a->si, a->sci)));
        break;
    }
}

static void mean_fin(struct acc *a, char *outp)
{
    double n = (double)a->n;
    if (a->mode == M_COMPLEX)
        td__store_c128(outp, a->odt,
                       CMPLX(neu_total(a->s, a->sc) / n, neu_total(a->si, a->sci) / n));
    else
        td__store_f64(outp, a->odt, neu_total(a->s, a->sc) / n);
}

static void prod_init(struct acc *a)
{
    acc_zero(a);
    a->iv = 1;
    a->b = true;
    a->s = 1;
}

static void prod_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    switch (a->mode) {
    case M_INT:
        for (int64_t j = 0; j < n; j++, p += sb)
            a->iv *= (uint64_t)ld_i(p, a->dt);
        break;
    case M_BOOL:
        for (int64_t j = 0; j < n; j++, p += sb)
            a->b = a->b && td__load_bool(p, a->dt);
        break;
    case M_FLOAT:
        for (int64_t j = 0; j < n; j++, p += sb)
            a->s *= ld_f(p, a->dt);
        break;
    case M_COMPLEX: {
        double complex z = CMPLX(a->s, a->si);
        for (int64_t j = 0; j < n; j++, p += sb)
            z *= td__load_c128(p, a->dt);
        a->s = creal(z);
        a->si = cimag(z);
        break;
    }
    }
}

static void prod_comb(struct acc *a, const struct acc *p)
{
    switch (a->mode) {
    case M_INT:
        a->iv *= p->iv;
        break;
    case M_BOOL:
        a->b = a->b && p->b;
        break;
    case M_FLOAT:
        a->s *= p->s;
        break;
    case M_COMPLEX: {
        double complex z = CMPLX(a->s, a->si) * CMPLX(p->s, p->si);
        a->s = creal(z);
        a->si = cimag(z);
        break;
    }
    }
}

static void prod_fin(struct acc *a, char *outp)
{
    switch (a->mode) {
    case M_INT:
        td__store_i64(outp, a->odt, (int64_t)a->iv);
        break;
    case M_BOOL:
        td__store_bool(outp, a->odt, a->b);
        break;
    case M_FLOAT:
        td__store_f64(outp, a->odt, a->s);
        break;
    case M_COMPLEX:
        td__store_c128(outp, a->odt, CMPLX(a->s, a->si));
        break;
    }
}

static void no_between(struct acc *a)
{
    (void)a;
}

static const struct red_op OP_SUM = {1, sum_init, sum_row, no_between, sum_fin, sum_comb};
static const struct red_op OP_MEAN = {1, sum_init, sum_row, no_between, mean_fin, sum_comb};
static const struct red_op OP_PROD = {1, prod_init, prod_row, no_between, prod_fin, prod_comb};

/* Output dtype of sum/prod/cumsum/cumprod: the dtype attr, else int64 for bool and integers. */
static int accum_dtype(const char *op, const struct td_op_ctx *c, enum td_dtype in,
                       enum td_dtype *out, struct td_error *err)
{
    if (td_arg_has(c, "dtype")) {
        enum td_dtype dt = td_arg_dtype(c, "dtype");
        if (td_dtype_is_complex(in) && !td_dtype_is_complex(dt))
            return td_error_set(err, TD_EINVAL, "%s: cannot compute complex input in %s", op,
                                td_dtype_name(dt));
        *out = dt;
        return 0;
    }
    *out = td_dtype_is_integral(in, true) ? TD_INT64 : in;
    return 0;
}

static int mean_dtype(const struct td_op_ctx *c, enum td_dtype in, enum td_dtype *out,
                      struct td_error *err)
{
    if (!td_arg_has(c, "dtype")) {
        *out = in;
        return 0;
    }
    enum td_dtype dt = td_arg_dtype(c, "dtype");
    if (!td_dtype_is_floating(dt) && !td_dtype_is_complex(dt))
        return td_error_set(err, TD_EINVAL, "mean: dtype must be floating or complex, got %s",
                            td_dtype_name(dt));
    if (td_dtype_is_complex(in) && !td_dtype_is_complex(dt))
        return td_error_set(err, TD_EINVAL, "mean: cannot compute complex input in %s",
                            td_dtype_name(dt));
    *out = dt;
    return 0;
}

/* Shared meta/kernel bodies for ops with a dim list and keepdim. */
enum red_kind {
    RK_SUM, RK_MEAN, RK_PROD, RK_AMAX, RK_AMIN, RK_VAR, RK_STD, RK_ALL, RK_ANY, RK_LSE
};

static const char *const RK_NAMES[] = {"sum", "mean", "prod", "amax", "amin",
                                       "var", "std", "all", "any", "logsumexp"};

static int red_dtype(enum red_kind k, const struct td_op_ctx *c, enum td_dtype in,
                     enum td_dtype *out, struct td_error *err)
{
    switch (k) {
    case RK_SUM:
    case RK_PROD:
        return accum_dtype(RK_NAMES[k], c, in, out, err);
    case RK_MEAN:
        return mean_dtype(c, in, out, err);
    case RK_AMAX:
    case RK_AMIN:
        *out = in;
        return 0;
    case RK_VAR:
    case RK_STD:
        *out = td_dtype_to_real(in);
        return 0;
    case RK_ALL:
    case RK_ANY:
        *out = TD_BOOL;
        return 0;
    case RK_LSE:
        *out = td_dtype_is_integral(in, true) ? TD_FLOAT32 : in;
        return 0;
    }
    return td_error_set(err, TD_EINTERNAL, "reduction: unknown kind");
}

static int red_meta(enum red_kind k, const struct td_op_ctx *c, struct td_meta *out,
                    struct td_error *err)
{
    const struct td_meta *m = &c->in_meta[0];
    const char *op = RK_NAMES[k];
    bool mask[TD_MAX_NDIM];
    enum td_dtype dt = TD_FLOAT32;
    int rc = red_mask(op, c, m->ndim, mask, err);
    if (rc)
        return rc;
    if (k == RK_AMAX || k == RK_AMIN) {
        rc = red_nonempty(op, m, mask, err);
        if (rc)
            return rc;
    }
    rc = red_dtype(k, c, m->dtype, &dt, err);
    if (rc)
        return rc;
    red_out_meta(m, mask, td_arg_bool(c, "keepdim"), dt, out);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * amax, amin, argmax, argmin.
 */
static void ext_init(struct acc *a)
{
    acc_zero(a);
}

/* Integers compare exactly as int64, floats as double; the first NaN wins for good. */
static void ext_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    if (a->mode == M_INT || a->mode == M_BOOL) {
        for (int64_t j = 0; j < n; j++, p += sb, a->pos++) {
            int64_t v = ld_i(p, a->dt);
            if (!a->have || (a->is_max ? v > a->best_i : v < a->best_i)) {
                a->best_i = v;
                a->best_pos = a->pos;
                a->have = true;
            }
        }
        return;
    }
    for (int64_t j = 0; j < n; j++, p += sb, a->pos++) {
        if (a->nan)
            continue;
        double v = ld_f(p, a->dt);
        if (isnan(v)) {
            a->nan = true;
            a->best_f = v;
            a->best_pos = a->pos;
        } else if (!a->have || (a->is_max ? v > a->best_f : v < a->best_f)) {
            a->best_f = v;
            a->best_pos = a->pos;
            a->have = true;
        }
    }
}

/* Parts are folded in element order, so the first extreme (and the first NaN) wins exactly
 * as in one pass. */
static void ext_comb(struct acc *a, const struct acc *p)
{
    if (a->mode == M_INT || a->mode == M_BOOL) {
        if (p->have && (!a->have || (a->is_max ? p->best_i > a->best_i : p->best_i < a->best_i))) {
            a->best_i = p->best_i;
            a->best_pos = p->best_pos;
            a->have = true;
        }
        return;
    }
    if (a->nan)
        return;
    if (p->nan) {
        a->nan = true;
        a->best_f = p->best_f;
        a->best_pos = p->best_pos;
    } else if (p->have &&
               (!a->have || (a->is_max ? p->best_f > a->best_f : p->best_f < a->best_f))) {
        a->best_f = p->best_f;
        a->best_pos = p->best_pos;
        a->have = true;
    }
}

static void ext_fin(struct acc *a, char *outp)
{
    if (a->mode == M_INT || a->mode == M_BOOL)
        td__store_i64(outp, a->odt, a->best_i);
    else
        td__store_f64(outp, a->odt, a->best_f);
}

static void arg_fin(struct acc *a, char *outp)
{
    td__store_i64(outp, TD_INT64, a->best_pos);
}

static const struct red_op OP_EXT = {1, ext_init, ext_row, no_between, ext_fin, ext_comb};
static const struct red_op OP_ARG = {1, ext_init, ext_row, no_between, arg_fin, ext_comb};

/* ---------------------------------------------------------------------------------------
 * var, std: two passes (mean, then the sum of squared distances) - the textbook two-pass
 * algorithm, accurate without Welford's per-element division.
 */
static void var_between(struct acc *a)
{
    double n = (double)a->n;
    a->mean_re = neu_total(a->s, a->sc) / n;
    a->mean_im = a->mode == M_COMPLEX ? neu_total(a->si, a->sci) / n : 0;
    a->s = a->sc = 0;
}

static void var_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    if (a->pass == 0) {
        sum_row(a, p, sb, n);
        return;
    }
    if (a->mode == M_COMPLEX) {
        for (int64_t j = 0; j < n; j++, p += sb) {
            double complex z = td__load_c128(p, a->dt);
            double dr = creal(z) - a->mean_re, di = cimag(z) - a->mean_im;
            neu_add(&a->s, &a->sc, dr * dr + di * di);
        }
        return;
    }
    for (int64_t j = 0; j < n; j++, p += sb) {
        double d = ld_f(p, a->dt) - a->mean_re;
        neu_add(&a->s, &a->sc, d * d);
    }
}

static void var_fin(struct acc *a, char *outp)
{
    double div = (double)a->n - a->correction;
    if (div < 0)
        div = 0;
    double v = neu_total(a->s, a->sc) / div;
    td__store_f64(outp, a->odt, a->is_std ? sqrt(v) : v);
}

static const struct red_op OP_VAR = {2, sum_init, var_row, var_between, var_fin, sum_comb};

/* ---------------------------------------------------------------------------------------
 * all, any.
 */
static void all_init(struct acc *a)
{
    acc_zero(a);
    a->b = a->is_max;   /* is_max: all (identity true); else any (identity false) */
}

static void all_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    for (int64_t j = 0; j < n; j++, p += sb) {
        bool v = td__load_bool(p, a->dt);
        a->b = a->is_max ? (a->b && v) : (a->b || v);
    }
}

static void all_comb(struct acc *a, const struct acc *p)
{
    a->b = a->is_max ? (a->b && p->b) : (a->b || p->b);
}

static void all_fin(struct acc *a, char *outp)
{
    td__store_bool(outp, TD_BOOL, a->b);
}

static const struct red_op OP_ALL = {1, all_init, all_row, no_between, all_fin, all_comb};

/* ---------------------------------------------------------------------------------------
 * logsumexp: m = max(x) (real part for complex); shift = m unless m is infinite (then 0, as
 * torch does, so all -inf gives -inf and +inf gives +inf); log(sum(exp(x - shift))) + shift.
 */
static void lse_init(struct acc *a)
{
    acc_zero(a);
    a->best_f = -INFINITY;
}

static void lse_row(struct acc *a, const char *p, int64_t sb, int64_t n)
{
    if (a->pass == 0) {
        for (int64_t j = 0; j < n; j++, p += sb) {
            double v = a->mode == M_COMPLEX ? creal(td__load_c128(p, a->dt)) : ld_f(p, a->dt);
            if (v > a->best_f)
                a->best_f = v;
        }
        return;
    }
    if (a->mode == M_COMPLEX) {
        for (int64_t j = 0; j < n; j++, p += sb) {
            double complex e = cexp(td__load_c128(p, a->dt) - a->shift);
            neu_add(&a->s, &a->sc, creal(e));
            neu_add(&a->si, &a->sci, cimag(e));
        }
        return;
    }
    for (int64_t j = 0; j < n; j++, p += sb)
        neu_add(&a->s, &a->sc, exp(ld_f(p, a->dt) - a->shift));
}

static void lse_between(struct acc *a)
{
    a->shift = isinf(a->best_f) ? 0 : a->best_f;
}

static void lse_comb(struct acc *a, const struct acc *p)
{
    if (a->pass == 0) {
        if (p->best_f > a->best_f)
            a->best_f = p->best_f;
        return;
    }
    sum_comb(a, p);
}

static void lse_fin(struct acc *a, char *outp)
{
    if (a->mode == M_COMPLEX) {
        double complex s = CMPLX(neu_total(a->s, a->sc), neu_total(a->si, a->sci));
        td__store_c128(outp, a->odt, clog(s) + a->shift);
    } else {
        td__store_f64(outp, a->odt, log(neu_total(a->s, a->sc)) + a->shift);
    }
}

static const struct red_op OP_LSE = {2, lse_init, lse_row, lse_between, lse_fin, lse_comb};

/* ---------------------------------------------------------------------------------------
 * The kernels.
 */
static int red_cpu(enum red_kind k, const struct td_op_ctx *c, struct td_tensor **out,
                   struct td_error *err)
{
    const struct td_tensor *in = c->inputs[0];
    bool mask[TD_MAX_NDIM];
    int rc = red_mask(RK_NAMES[k], c, in->ndim, mask, err);
    if (rc)
        return rc;
    struct acc a;
    memset(&a, 0, sizeof a);
    a.dt = in->dtype;
    a.odt = out[0]->dtype;
    const struct red_op *op = NULL;
    switch (k) {
    case RK_SUM:
        op = &OP_SUM;
        a.mode = mode_of(a.odt);
        break;
    case RK_MEAN:
        op = &OP_MEAN;
        a.mode = mode_of(a.odt);
        break;
    case RK_PROD:
        op = &OP_PROD;
        a.mode = mode_of(a.odt);
        break;
    case RK_AMAX:
    case RK_AMIN:
        op = &OP_EXT;
        a.mode = mode_of(a.dt);
        a.is_max = k == RK_AMAX;
        break;
    case RK_VAR:
    case RK_STD:
        op = &OP_VAR;
        a.mode = td_dtype_is_complex(a.dt) ? M_COMPLEX : M_FLOAT;
        a.is_std = k == RK_STD;
        a.correction = td_arg_float(c, "correction");
        break;
    case RK_ALL:
    case RK_ANY:
        op = &OP_ALL;
        a.is_max = k == RK_ALL;
        break;
    case RK_LSE:
        op = &OP_LSE;
        a.mode = td_dtype_is_complex(a.dt) ? M_COMPLEX : M_FLOAT;
        break;
    }
    red_run(op, &a, in, mask, out[0]);
    return 0;
}

/* The reductions' entry points: each op's meta_ and cpu_ functions hand its kind to the
 * shared implementation above. */
#define RED_ENTRY(name, kind)                                                               \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)  \
    {                                                                                      \
        return red_meta(kind, c, out, err);                                                \
    }                                                                                      \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                      \
        return red_cpu(kind, c, out, err);                                                 \
    }

RED_ENTRY(sum, RK_SUM)
RED_ENTRY(mean, RK_MEAN)
RED_ENTRY(prod, RK_PROD)
RED_ENTRY(amax, RK_AMAX)
RED_ENTRY(amin, RK_AMIN)
RED_ENTRY(var, RK_VAR)
RED_ENTRY(std, RK_STD)
RED_ENTRY(all, RK_ALL)
RED_ENTRY(any, RK_ANY)
RED_ENTRY(logsumexp, RK_LSE)
#undef RED_ENTRY

static int arg_meta(const char *op, const struct td_op_ctx *c, struct td_meta *out,
                    struct td_error *err)
{
    const struct td_meta *m = &c->in_meta[0];
    bool mask[TD_MAX_NDIM];
    int rc = red_mask_one(op, c, m->ndim, mask, err);
    if (rc)
        return rc;
    if (td_shape_numel(m->shape, m->ndim) == 0 && !td_arg_has(c, "dim"))
        return td_error_set(err, TD_EINVAL, "%s: cannot reduce an empty tensor", op);
    rc = red_nonempty(op, m, mask, err);
    if (rc)
        return rc;
    red_out_meta(m, mask, td_arg_bool(c, "keepdim"), TD_INT64, out);
    return 0;
}

static int arg_cpu(const char *op, bool is_max, const struct td_op_ctx *c,
                   struct td_tensor **out, struct td_error *err)
{
    const struct td_tensor *in = c->inputs[0];
    bool mask[TD_MAX_NDIM];
    int rc = red_mask_one(op, c, in->ndim, mask, err);
    if (rc)
        return rc;
    struct acc a;
    memset(&a, 0, sizeof a);
    a.dt = in->dtype;
    a.odt = TD_INT64;
    a.mode = mode_of(a.dt);
    a.is_max = is_max;
    red_run(&OP_ARG, &a, in, mask, out[0]);
    return 0;
}

int meta_argmax(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return arg_meta("argmax", c, out, err);
}

int cpu_argmax(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return arg_cpu("argmax", true, c, out, err);
}

int meta_argmin(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return arg_meta("argmin", c, out, err);
}

int cpu_argmin(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return arg_cpu("argmin", false, c, out, err);
}

/* ---------------------------------------------------------------------------------------
 * cumsum, cumprod: each line along dim is scanned with a running accumulator.
 */
static int scan_meta(const char *op, const struct td_op_ctx *c, struct td_meta *out,
                     struct td_error *err)
{
    const struct td_meta *m = &c->in_meta[0];
    int d;
    enum td_dtype dt;
    int rc = td__norm_dim(op, td_arg_int(c, "dim"), m->ndim, &d, err);
    if (rc)
        return rc;
    rc = accum_dtype(op, c, m->dtype, &dt, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, m->ndim, m->shape);
    return 0;
}

struct scan_job {
    bool is_prod;
    enum td_dtype dt, odt;
    enum acc_mode mode;
    const struct td_tensor *in;
    struct td_tensor *o;
    int64_t lshape[TD_MAX_NDIM];   /* the input's shape with the scanned dim set to 1 */
    int64_t n, istep, ostep;       /* line length, byte steps along the line */
};

/* Scans lines [b, e) (C order over lshape). */
static void scan_lines(int64_t b, int64_t e, void *vj)
{
    const struct scan_job *j = vj;
    const struct td_tensor *in = j->in;
    const struct td_tensor *o = j->o;
    enum td_dtype dt = j->dt, odt = j->odt;
    bool is_prod = j->is_prod;
    size_t isz = td_dtype_size(dt), osz = td_dtype_size(odt);
    int nd = in->ndim;
    const char *ib = td_tensor_data(in);
    char *ob = td_tensor_data(o);
    int64_t idx[TD_MAX_NDIM] = {0};
    int64_t r = b;
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = r % j->lshape[k];
        r /= j->lshape[k];
    }
    for (int64_t line = b; line < e; line++, idx_next(idx, j->lshape, nd)) {
        int64_t ioff = 0, ooff = 0;
        for (int k = 0; k < nd; k++) {
            ioff += idx[k] * in->strides[k];
            ooff += idx[k] * o->strides[k];
        }
        const char *p = ib + ioff * (int64_t)isz;
        char *q = ob + ooff * (int64_t)osz;
        uint64_t iv = is_prod ? 1 : 0;
        bool bv = is_prod;
        double s = is_prod ? 1 : 0;
        double complex z = is_prod ? 1 : 0;
        for (int64_t i = 0; i < j->n; i++, p += j->istep, q += j->ostep) {
            switch (j->mode) {
            case M_INT:
                iv = is_prod ? iv * (uint64_t)ld_i(p, dt) : iv + (uint64_t)ld_i(p, dt);
                td__store_i64(q, odt, (int64_t)iv);
                break;
            case M_BOOL:
                bv = is_prod ? (bv && td__load_bool(p, dt)) : (bv || td__load_bool(p, dt));
                td__store_bool(q, odt, bv);
                break;
            case M_FLOAT:
                s = is_prod ? s * ld_f(p, dt) : s + ld_f(p, dt);
                td__store_f64(q, odt, s);
                break;
            case M_COMPLEX:
                z = is_prod ? z * td__load_c128(p, dt) : z + td__load_c128(p, dt);
                td__store_c128(q, odt, z);
                break;
            }
        }
    }
}

static int scan_cpu(const char *op, bool is_prod, const struct td_op_ctx *c,
                    struct td_tensor **out, struct td_error *err)
{
    const struct td_tensor *in = c->inputs[0];
    struct td_tensor *o = out[0];
    int d;
    int rc = td__norm_dim(op, td_arg_int(c, "dim"), in->ndim, &d, err);
    if (rc)
        return rc;
    int64_t numel = td_tensor_numel(in);
    if (numel == 0)
        return 0;
    struct scan_job j;
    memset(&j, 0, sizeof j);
    j.is_prod = is_prod;
    j.dt = in->dtype;
    j.odt = o->dtype;
    j.mode = mode_of(j.odt);
    j.in = in;
    j.o = o;
    /* Lines: every index with idx[d] = 0; a 0-d tensor is one line of one element. They are
     * independent, so they run in parallel, each scanned in order. */
    memcpy(j.lshape, in->shape, sizeof j.lshape);
    j.n = 1;
    if (in->ndim > 0) {
        j.n = in->shape[d];
        j.istep = in->strides[d] * (int64_t)td_dtype_size(j.dt);
        j.ostep = o->strides[d] * (int64_t)td_dtype_size(j.odt);
        j.lshape[d] = 1;
    }
    int64_t grain = TD__PAR_GRAIN / j.n;
    td__parallel_for(numel / j.n, grain < 1 ? 1 : grain, scan_lines, &j);
    return 0;
}

int meta_cumsum(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return scan_meta("cumsum", c, out, err);
}

int cpu_cumsum(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return scan_cpu("cumsum", false, c, out, err);
}

int meta_cumprod(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return scan_meta("cumprod", c, out, err);
}

int cpu_cumprod(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return scan_cpu("cumprod", true, c, out, err);
}
