/*
 * ops_linalg_norms.c - torch.linalg's norms and the matrix functions built on the SVD:
 * vector_norm, matrix_norm, norm, cond, matrix_rank, pinv and matrix_exp.
 *
 * Inputs are float32/float64/complex64/complex128; leading dims are a batch. Every kernel
 * first copies its input into a contiguous tensor whose reduced (or matrix) dims come last,
 * so one loop serves every dim choice and stride. Values are accumulated in double (complex
 * double) whatever the dtype; norms of complex input are real.
 *
 * Vector p-norms scale by the largest magnitude before summing powers (as BLAS nrm2 does),
 * so they neither overflow nor underflow where the result is representable. The spectral
 * and nuclear norms, cond, matrix_rank and pinv use the singular values of LAPACK's gesdd
 * (td__lp_svd), or the eigenvalues of heevd when hermitian. matrix_exp is the scaling and
 * squaring method with Pade approximants and the backward error bounds of
 * N. J. Higham, "The scaling and squaring method for the matrix exponential revisited",
 * SIAM J. Matrix Anal. Appl. 26(4), 2005, and A. H. Al-Mohy and N. J. Higham, "A new
 * scaling and squaring algorithm for the matrix exponential", SIAM J. Matrix Anal. Appl.
 * 31(3), 2009 (Algorithm 5.1, the one scipy.linalg.expm implements).
 */
#include <complex.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "td_derivatives.h"
#include "td_lapack.h"

/* ---------------------------------------------------------------------------------------
 * Shared helpers.
 */

static bool lp_dtype(enum td_dtype dt)
{
    return dt == TD_FLOAT32 || dt == TD_FLOAT64 || dt == TD_COMPLEX64 || dt == TD_COMPLEX128;
}

/* |element| of a contiguous buffer of dtype dt at index k. */
static double abs_at(const char *p, enum td_dtype dt, int64_t k)
{
    switch (dt) {
    case TD_FLOAT32:
        return fabs((double)((const float *)p)[k]);
    case TD_FLOAT64:
        return fabs(((const double *)p)[k]);
    case TD_COMPLEX64: {
        const float *z = (const float *)p + 2 * k;
        return hypot((double)z[0], (double)z[1]);
    }
    default: {
        const double *z = (const double *)p + 2 * k;
        return hypot(z[0], z[1]);
    }
    }
}

/* Parses a whole string as a number ("2", "-1", "0.5", "inf", "-inf"). */
static bool parse_num(const char *s, double *v)
{
    char *end = NULL;
    if (!s || !*s)
        return false;
    double x = strtod(s, &end);
    if (end == s || *end != '\0' || isnan(x))
        return false;
    *v = x;
    return true;
}

int td__norm_mord(const char *s, enum td__mord *mo)
{
    double v;
    if (strcmp(s, "fro") == 0) {
        *mo = TD__MO_FRO;
        return 0;
    }
    if (strcmp(s, "nuc") == 0) {
        *mo = TD__MO_NUC;
        return 0;
    }
    if (!parse_num(s, &v))
        return -1;
    if (v == INFINITY)
        *mo = TD__MO_INF;
    else if (v == -INFINITY)
        *mo = TD__MO_NINF;
    else if (v == 1)
        *mo = TD__MO_1;
    else if (v == -1)
        *mo = TD__MO_N1;
    else if (v == 2)
        *mo = TD__MO_2;
    else if (v == -2)
        *mo = TD__MO_N2;
    else
        return -1;
    return 0;
}

/* The dtype attr: computation dtype cdt for input dtype dt. */
static int norm_dtype(const char *op, const struct td_op_ctx *c, enum td_dtype *cdt,
                      struct td_error *err)
{
    enum td_dtype dt = c->in_meta[0].dtype;
    *cdt = dt;
    if (!td_arg_has(c, "dtype"))
        return 0;
    enum td_dtype want = td_arg_dtype(c, "dtype");
    if (!lp_dtype(want))
        return td_error_set(err, TD_EINVAL, "%s: dtype must be float32, float64, complex64 "
                            "or complex128, got %s", op, td_dtype_name(want));
    if (td_dtype_is_complex(want) != td_dtype_is_complex(dt))
        return td_error_set(err, TD_EINVAL, "%s: dtype %s does not match the %s input (a "
                            "complex input needs a complex dtype and a real one a real dtype)",
                            op, td_dtype_name(want), td_dtype_name(dt));
    *cdt = want;
    return 0;
}

/* Result shape of a reduction over red[]. */
static void reduced_shape(const struct td_meta *m, struct td__norm_plan *p)
{
    p->ndim = 0;
    for (int i = 0; i < m->ndim; i++) {
        if (!p->red[i])
            p->shape[p->ndim++] = m->shape[i];
        else if (p->keepdim)
            p->shape[p->ndim++] = 1;
    }
}

static int plan_vector(const char *op, const struct td_meta *m, double ord, const int64_t *dims,
                       int ndims, struct td__norm_plan *p, struct td_error *err)
{
    p->matrix = false;
    p->p = ord;
    memset(p->red, 0, sizeof p->red);
    if (dims) {
        int rc = td__mark_dims(op, dims, ndims, m->ndim, true, p->red, err);
        if (rc)
            return rc;
    } else {
        for (int i = 0; i < m->ndim; i++)
            p->red[i] = true;
    }
    int64_t cnt = 1;
    p->nred = 0;
    for (int i = 0; i < m->ndim; i++)
        if (p->red[i]) {
            cnt *= m->shape[i];
            p->nred++;
        }
    if (cnt == 0 && (ord < 0 || isinf(ord)))
        return td_error_set(err, TD_EINVAL, "%s: cannot compute the %g norm of an empty "
                            "reduction (the operation has no identity)", op, ord);
    reduced_shape(m, p);
    return 0;
}

static int plan_matrix(const char *op, const struct td_meta *m, const char *ord,
                       const int64_t *dims, int ndims, struct td__norm_plan *p,
                       struct td_error *err)
{
    char buf[128];
    p->matrix = true;
    p->p = 2;
    if (td__norm_mord(ord, &p->mo))
        return td_error_set(err, TD_EINVAL, "%s: matrix ord must be fro, nuc, inf, -inf, 1, "
                            "-1, 2 or -2, got '%s'", op, ord);
    if (m->ndim < 2)
        return td_error_set(err, TD_EINVAL, "%s: a matrix norm needs at least 2 dims, got "
                            "shape %s", op, td__shape_str(m->shape, m->ndim, buf, sizeof buf));
    int64_t def[2] = {-2, -1};
    if (!dims) {
        dims = def;
        ndims = 2;
    }
    if (ndims != 2)
        return td_error_set(err, TD_EINVAL, "%s: a matrix norm needs exactly 2 dims, got %d",
                            op, ndims);
    memset(p->red, 0, sizeof p->red);
    int rc = td__mark_dims(op, dims, 2, m->ndim, true, p->red, err);
    if (rc)
        return rc;
    rc = td__norm_dim(op, dims[0], m->ndim, &p->d0, err);
    if (rc == 0)
        rc = td__norm_dim(op, dims[1], m->ndim, &p->d1, err);
    if (rc)
        return rc;
    p->nred = 2;
    int64_t rows = m->shape[p->d0], cols = m->shape[p->d1];
    int64_t k = rows < cols ? rows : cols;
    bool bad = ((p->mo == TD__MO_INF || p->mo == TD__MO_NINF) && rows == 0) ||
               ((p->mo == TD__MO_1 || p->mo == TD__MO_N1) && cols == 0) ||
               ((p->mo == TD__MO_2 || p->mo == TD__MO_N2) && k == 0);
    if (bad)
        return td_error_set(err, TD_EINVAL, "%s: cannot compute the %s norm of an empty "
                            "matrix", op, ord);
    if (rows > INT_MAX || cols > INT_MAX)
        return td_error_set(err, TD_ELIMIT, "%s: matrix too large for LAPACK", op);
    reduced_shape(m, p);
    return 0;
}

int td__norm_plan(const struct td_op_ctx *c, struct td__norm_plan *p, struct td_error *err)
{
    const char *op = c->info->name;
    const struct td_meta *m = &c->in_meta[0];
    int ndims = 0;
    const int64_t *dims = td_arg_has(c, "dim") ? td_arg_ints(c, "dim", &ndims) : NULL;
    if (ndims == 0)
        dims = NULL;   /* an empty dim list means every dim, as for torch's reductions */
    memset(p, 0, sizeof *p);
    p->keepdim = td_arg_bool(c, "keepdim");
    int rc = norm_dtype(op, c, &p->cdt, err);
    if (rc)
        return rc;
    if (c->op == TD_OP_vector_norm)
        return plan_vector(op, m, td_arg_float(c, "ord"), dims, ndims, p, err);
    if (c->op == TD_OP_matrix_norm)
        return plan_matrix(op, m, td_arg_str(c, "ord"), dims, ndims, p, err);
    /* norm: torch.linalg.norm's dispatch. */
    const char *ord = td_arg_str(c, "ord");
    if (dims && ndims != 1 && ndims != 2)
        return td_error_set(err, TD_EINVAL, "norm: dim must have 1 or 2 entries, got %d",
                            ndims);
    if (!ord)
        return plan_vector(op, m, 2.0, dims, ndims, p, err);
    if (!dims && m->ndim != 1 && m->ndim != 2)
        return td_error_set(err, TD_EINVAL, "norm: with ord and no dim the input must be 1-d "
                            "or 2-d, got %d-d", m->ndim);
    double v;
    bool num = parse_num(ord, &v);
    if (!num && strcmp(ord, "fro") != 0 && strcmp(ord, "nuc") != 0)
        return td_error_set(err, TD_EINVAL, "norm: ord must be a number, fro or nuc, got '%s'",
                            ord);
    bool mat = !num || (dims ? ndims == 2 : m->ndim == 2);
    if (!mat)
        return plan_vector(op, m, v, dims, ndims, p, err);
    if (dims && ndims != 2)
        return td_error_set(err, TD_EINVAL, "norm: ord '%s' is a matrix norm and needs 2 dims",
                            ord);
    int64_t d01[2] = {0, 1};
    return plan_matrix(op, m, ord, dims ? dims : d01, 2, p, err);
}

/* A new contiguous tensor of dtype cdt holding x with its dims reordered: first the dims
 * with red[d] false, then the reduced ones in the order order[0..nord) (or ascending when
 * order is NULL). */
static int group_copy(struct td_tensor *x, const bool *red, const int *order, int nord,
                      enum td_dtype cdt, struct td_account *account, struct td_tensor **out,
                      struct td_error *err)
{
    int perm[TD_MAX_NDIM], n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!red[d])
            perm[n++] = d;
    if (order) {
        for (int i = 0; i < nord; i++)
            perm[n++] = order[i];
    } else {
        for (int d = 0; d < x->ndim; d++)
            if (red[d])
                perm[n++] = d;
    }
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = x->shape[perm[i]];
        strides[i] = x->strides[perm[i]];
    }
    struct td_tensor *v = NULL, *o = NULL;
    struct td_meta m;
    int rc = td_tensor_new_view(x, x->ndim, shape, strides, x->offset, &v, err);
    if (rc)
        return rc;
    td__meta_set(&m, cdt, x->ndim, shape);
    rc = td_tensor_new(&m, false, account, &o, err);
    if (rc == 0 && td_tensor_numel(o) > 0)
        rc = td_tensor_copy(o, v, err);
    td_tensor_release(v);
    if (rc) {
        td_tensor_release(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* The p-norm of n magnitudes a(k) (k < n) read from a contiguous buffer. */
static double vec_norm(const char *p, enum td_dtype dt, int64_t n, double ord)
{
    if (ord == 0) {
        double cnt = 0;
        for (int64_t k = 0; k < n; k++)
            cnt += abs_at(p, dt, k) != 0;
        return cnt;
    }
    double mx = 0, mn = INFINITY;
    bool nan = false;
    for (int64_t k = 0; k < n; k++) {
        double a = abs_at(p, dt, k);
        if (isnan(a))
            nan = true;
        if (a > mx)
            mx = a;
        if (a < mn)
            mn = a;
    }
    if (nan)
        return NAN;
    if (ord == INFINITY)
        return mx;
    if (ord == -INFINITY)
        return mn;
    if (ord > 0) {
        /* Scaled by the largest magnitude: every term is at most 1. */
        if (mx == 0 || isinf(mx))
            return mx;
        double s = 0;
        if (ord == 1) {
            for (int64_t k = 0; k < n; k++)
                s += abs_at(p, dt, k);
            return s;
        }
        for (int64_t k = 0; k < n; k++) {
            double r = abs_at(p, dt, k) / mx;
            s += ord == 2 ? r * r : pow(r, ord);
        }
        return mx * (ord == 2 ? sqrt(s) : pow(s, 1.0 / ord));
    }
    /* Negative ord: scaled by the smallest magnitude (a zero gives 0). */
    if (mn == 0)
        return 0;
    if (isinf(mn))
        return mn;
    double s = 0;
    for (int64_t k = 0; k < n; k++)
        s += pow(abs_at(p, dt, k) / mn, ord);
    return mn * pow(s, 1.0 / ord);
}

/* Singular values of the contiguous batch g [nb, m, n] into a new double array sv[nb * k]. */
static int svals(const char *op, struct td_tensor *g, struct td_account *account, double **sv,
                 struct td_error *err)
{
    int nd = g->ndim;
    int64_t m = g->shape[nd - 2], n = g->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(g->shape, nd - 2);
    struct td_tensor *s = NULL;
    struct td_meta sm;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, g->shape, sizeof(int64_t) * (size_t)(nd - 2));
    shape[nd - 2] = k;
    td__meta_set(&sm, td_dtype_to_real(g->dtype), nd - 1, shape);
    int rc = td_tensor_new(&sm, true, account, &s, err);
    if (rc)
        return rc;
    double *out = td__lp_alloc((size_t)(nb * k), sizeof(double));
    if (!out) {
        td_tensor_release(s);
        return td__lp_nomem(op, err);
    }
    rc = td__lp_svd(op, g, account, NULL, s, NULL, false, err);
    if (rc == 0) {
        const char *ps = td_tensor_data(s);
        for (int64_t i = 0; i < nb * k; i++)
            out[i] = td__load_f64(ps + (size_t)i * td_dtype_size(s->dtype), s->dtype);
        *sv = out;
    } else {
        td_free(out);
    }
    td_tensor_release(s);
    return rc;
}

/* Matrix norms of the contiguous batch g [nb, m, n] into res[nb]. */
static int mat_norms(const char *op, struct td_tensor *g, enum td__mord mo,
                     struct td_account *account, double *res, struct td_error *err)
{
    int nd = g->ndim;
    int64_t m = g->shape[nd - 2], n = g->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(g->shape, nd - 2);
    enum td_dtype dt = g->dtype;
    size_t isz = td_dtype_size(dt);
    const char *p = td_tensor_data(g);
    if (nb == 0)
        return 0;
    if (mo == TD__MO_NUC || mo == TD__MO_2 || mo == TD__MO_N2) {
        double *sv = NULL;
        if (k == 0) {
            for (int64_t b = 0; b < nb; b++)
                res[b] = 0;
            return 0;
        }
        int rc = svals(op, g, account, &sv, err);
        if (rc)
            return rc;
        for (int64_t b = 0; b < nb; b++) {
            const double *s = sv + b * k;
            double r = 0;
            if (mo == TD__MO_2)
                r = s[0];
            else if (mo == TD__MO_N2)
                r = s[k - 1];
            else
                for (int64_t i = 0; i < k; i++)
                    r += s[i];
            res[b] = r;
        }
        td_free(sv);
        return 0;
    }
    for (int64_t b = 0; b < nb; b++) {
        const char *a = p + (size_t)(b * m * n) * isz;
        if (mo == TD__MO_FRO) {
            res[b] = vec_norm(a, dt, m * n, 2.0);
            continue;
        }
        /* inf/-inf: extreme row sum; 1/-1: extreme column sum. */
        bool rows = mo == TD__MO_INF || mo == TD__MO_NINF;
        bool mx = mo == TD__MO_INF || mo == TD__MO_1;
        int64_t outer = rows ? m : n, inner = rows ? n : m;
        double r = mx ? -INFINITY : INFINITY;
        bool nan = false;
        for (int64_t i = 0; i < outer; i++) {
            double s = 0;
            for (int64_t j = 0; j < inner; j++)
                s += abs_at(a, dt, rows ? i * n + j : j * n + i);
            if (isnan(s))
                nan = true;
            r = mx ? fmax(r, s) : fmin(r, s);
        }
        res[b] = nan ? NAN : r;
    }
    return 0;
}

/* Stores res[0..n) into the contiguous real tensor o. */
static void store_all(struct td_tensor *o, const double *res, int64_t n)
{
    char *po = td_tensor_data(o);
    size_t osz = td_dtype_size(o->dtype);
    for (int64_t i = 0; i < n; i++)
        td__store_f64(po + (size_t)i * osz, o->dtype, res[i]);
}

/* ---------------------------------------------------------------------------------------
 * vector_norm, matrix_norm, norm.
 */

static int meta_norm_common(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct td__norm_plan p;
    int rc = td__norm_plan(c, &p, err);
    if (rc)
        return rc;
    td__meta_set(out, td_dtype_to_real(p.cdt), p.ndim, p.shape);
    return 0;
}

static int cpu_norm_common(const struct td_op_ctx *c, struct td_tensor **out,
                           struct td_error *err)
{
    const char *op = c->info->name;
    struct td__norm_plan p;
    struct td_tensor *x = c->inputs[0], *g = NULL;
    int rc = td__norm_plan(c, &p, err);
    if (rc)
        return rc;
    int64_t nout = td_tensor_numel(out[0]);
    if (nout == 0)
        return 0;
    int order[2] = {p.d0, p.d1};
    rc = group_copy(x, p.red, p.matrix ? order : NULL, 2, p.cdt, c->account, &g, err);
    if (rc)
        return rc;
    double *res = td__lp_alloc((size_t)nout, sizeof(double));
    if (!res) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    if (p.matrix) {
        /* g is [kept..., rows, cols]: view it as [nout, rows, cols]. */
        int64_t shp[3] = {nout, x->shape[p.d0], x->shape[p.d1]};
        int64_t str[3];
        td_contiguous_strides(shp, 3, str);
        struct td_tensor *g3 = NULL;
        rc = td_tensor_new_view(g, 3, shp, str, 0, &g3, err);
        if (rc == 0)
            rc = mat_norms(op, g3, p.mo, c->account, res, err);
        td_tensor_release(g3);
    } else {
        int64_t r = nout > 0 ? td_tensor_numel(g) / nout : 0;
        const char *pg = td_tensor_data(g);
        size_t isz = td_dtype_size(p.cdt);
        for (int64_t i = 0; i < nout; i++)
            res[i] = vec_norm(pg + (size_t)(i * r) * isz, p.cdt, r, p.p);
    }
    if (rc == 0)
        store_all(out[0], res, nout);
out:
    td_free(res);
    td_tensor_release(g);
    return rc;
}

int meta_vector_norm(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_norm_common(c, out, err);
}

int cpu_vector_norm(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_norm_common(c, out, err);
}

int meta_matrix_norm(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_norm_common(c, out, err);
}

int cpu_matrix_norm(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_norm_common(c, out, err);
}

int meta_norm(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_norm_common(c, out, err);
}

int cpu_norm(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return cpu_norm_common(c, out, err);
}

/* ---------------------------------------------------------------------------------------
 * cond.
 */

/* p: NULL for the 2-norm ratio. Returns: 0 or -1 (unknown p). */
static int cond_p(const struct td_op_ctx *c, enum td__mord *mo)
{
    const char *s = td_arg_str(c, "p");
    if (!s) {
        *mo = TD__MO_2;
        return 0;
    }
    return td__norm_mord(s, mo);
}

int meta_cond(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    enum td__mord mo;
    int rc = td__lp_check_mat("cond", a, false, err);
    if (rc)
        return rc;
    if (cond_p(c, &mo))
        return td_error_set(err, TD_EINVAL, "cond: p must be fro, nuc, inf, -inf, 1, -1, 2 "
                            "or -2, got '%s'", td_arg_str(c, "p"));
    bool two = mo == TD__MO_2 || mo == TD__MO_N2;
    if (!two && a->shape[a->ndim - 1] != a->shape[a->ndim - 2]) {
        char buf[128];
        return td_error_set(err, TD_EINVAL, "cond: p '%s' needs square matrices, got shape %s",
                            td_arg_str(c, "p"), td__shape_str(a->shape, a->ndim, buf,
                                                              sizeof buf));
    }
    td__meta_set(out, td_dtype_to_real(a->dtype), a->ndim - 2, a->shape);
    return 0;
}

int cpu_cond(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *a = c->inputs[0], *g = NULL;
    enum td__mord mo = TD__MO_2;
    (void)cond_p(c, &mo);
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(a->shape, nd - 2);
    double *res = NULL, *sv = NULL, *ninv = NULL;
    int *ipiv = NULL;
    if (nb == 0)
        return 0;
    res = td__lp_alloc((size_t)nb, sizeof(double));
    if (!res)
        return td__lp_nomem("cond", err);
    int rc = 0;
    if (k == 0) {
        /* As torch (NumPy leaves it undefined): 0 for empty matrices. */
        for (int64_t b = 0; b < nb; b++)
            res[b] = 0;
        goto done;
    }
    rc = td__lp_dense(a, nd, a->shape, c->account, &g, err);
    if (rc)
        goto done;
    if (mo == TD__MO_2 || mo == TD__MO_N2) {
        rc = svals("cond", g, c->account, &sv, err);
        if (rc)
            goto done;
        for (int64_t b = 0; b < nb; b++) {
            double hi = sv[b * k], lo = sv[b * k + k - 1];
            res[b] = mo == TD__MO_2 ? hi / lo : lo / hi;
        }
        goto done;
    }
    /* norm(A, p) * norm(A^-1, p); a singular matrix gives inf. */
    rc = mat_norms("cond", g, mo, c->account, res, err);
    if (rc)
        goto done;
    ninv = td__lp_alloc((size_t)nb, sizeof(double));
    ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!ninv || !ipiv) {
        rc = td__lp_nomem("cond", err);
        goto done;
    }
    size_t isz = td_dtype_size(g->dtype);
    char *pg = td_tensor_data(g);
    for (int64_t b = 0; b < nb; b++) {
        char *p = pg + (size_t)(b * n * n) * isz;
        int info = td__lp_getrf(g->dtype, (int)n, (int)n, p, (int)n, ipiv);
        if (info == 0)
            info = td__lp_getri(g->dtype, (int)n, p, (int)n, ipiv);
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "cond: LAPACK argument %d invalid", -info);
            goto done;
        }
        if (info > 0)
            res[b] = -res[b] - 1;   /* marks a singular element (norms are >= 0) */
    }
    rc = mat_norms("cond", g, mo, c->account, ninv, err);
    if (rc)
        goto done;
    for (int64_t b = 0; b < nb; b++)
        res[b] = res[b] < 0 ? INFINITY : res[b] * ninv[b];
done:
    if (rc == 0)
        store_all(out[0], res, nb);
    td_free(res);
    td_free(sv);
    td_free(ninv);
    td_free(ipiv);
    td_tensor_release(g);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * matrix_rank and pinv: singular values (or |eigenvalues| when hermitian) above
 * tol = max(atol, rtol * largest); rtol defaults to eps(dtype) * max(m, n) when neither is
 * given, and to 0 when only a positive atol is (torch's get_atol_rtol).
 */

struct tol_rule {
    double atol, rtol;
};

static void tol_rule(const struct td_op_ctx *c, const struct td_meta *a, struct tol_rule *t)
{
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1];
    double eps = td_dtype_to_real(a->dtype) == TD_FLOAT32 ? (double)FLT_EPSILON : DBL_EPSILON;
    double def = eps * (double)(m > n ? m : n);
    bool ha = td_arg_has(c, "atol"), hr = td_arg_has(c, "rtol");
    t->atol = ha ? td_arg_float(c, "atol") : 0.0;
    if (hr)
        t->rtol = td_arg_float(c, "rtol");
    else
        t->rtol = ha && t->atol > 0 ? 0.0 : def;
}

static int meta_rank_pinv(const char *op, const struct td_op_ctx *c, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat(op, a, false, err);
    if (rc)
        return rc;
    if (td_arg_bool(c, "hermitian") && a->shape[a->ndim - 1] != a->shape[a->ndim - 2])
        return td_error_set(err, TD_EINVAL, "%s: hermitian needs square matrices", op);
    if ((td_arg_has(c, "atol") && isnan(td_arg_float(c, "atol"))) ||
        (td_arg_has(c, "rtol") && isnan(td_arg_float(c, "rtol"))))
        return td_error_set(err, TD_EINVAL, "%s: atol and rtol must not be NaN", op);
    return 0;
}

/* Spectral data of every batch matrix: values val[nb * k] (singular values descending, or
 * eigenvalues when hermitian) and, when vec, the factors (thin U and Vh, or V) as owned
 * contiguous tensors. */
struct spectral {
    int64_t nb, m, n, k;
    double *val;
    struct td_tensor *u, *vh, *s;   /* hermitian: u = V, vh = NULL, s = w */
};

static void spectral_fini(struct spectral *sp)
{
    td_free(sp->val);
    td_tensor_release(sp->u);
    td_tensor_release(sp->vh);
    td_tensor_release(sp->s);
}

static int spectral_get(const char *op, struct td_tensor *a, bool herm, bool vec,
                        struct td_account *account, struct spectral *sp, struct td_error *err)
{
    int nd = a->ndim;
    memset(sp, 0, sizeof *sp);
    sp->m = a->shape[nd - 2];
    sp->n = a->shape[nd - 1];
    sp->k = sp->m < sp->n ? sp->m : sp->n;
    sp->nb = td_shape_numel(a->shape, nd - 2);
    if (sp->nb == 0 || sp->k == 0)
        return 0;
    struct td_meta mm;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
    enum td_dtype rdt = td_dtype_to_real(a->dtype);
    shape[nd - 2] = sp->k;
    td__meta_set(&mm, rdt, nd - 1, shape);
    int rc = td_tensor_new(&mm, true, account, &sp->s, err);
    if (rc == 0 && vec) {
        shape[nd - 2] = sp->m;
        shape[nd - 1] = sp->k;
        td__meta_set(&mm, a->dtype, nd, shape);
        rc = td_tensor_new(&mm, true, account, &sp->u, err);
        if (rc == 0 && !herm) {
            shape[nd - 2] = sp->k;
            shape[nd - 1] = sp->n;
            td__meta_set(&mm, a->dtype, nd, shape);
            rc = td_tensor_new(&mm, true, account, &sp->vh, err);
        }
    }
    if (rc)
        return rc;
    if (herm)
        rc = td__lp_eigh(op, a, 'L', account, sp->s, sp->u, err);
    else
        rc = td__lp_svd(op, a, account, sp->u, sp->s, sp->vh, false, err);
    if (rc)
        return rc;
    sp->val = td__lp_alloc((size_t)(sp->nb * sp->k), sizeof(double));
    if (!sp->val)
        return td__lp_nomem(op, err);
    const char *ps = td_tensor_data(sp->s);
    for (int64_t i = 0; i < sp->nb * sp->k; i++)
        sp->val[i] = td__load_f64(ps + (size_t)i * td_dtype_size(rdt), rdt);
    return 0;
}

/* The tolerance for batch element b. */
static double spectral_tol(const struct spectral *sp, int64_t b, const struct tol_rule *t)
{
    double mx = 0;
    for (int64_t i = 0; i < sp->k; i++)
        mx = fmax(mx, fabs(sp->val[b * sp->k + i]));
    return fmax(t->atol, t->rtol * mx);
}

int meta_matrix_rank(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = meta_rank_pinv("matrix_rank", c, err);
    if (rc)
        return rc;
    td__meta_set(out, TD_INT64, c->in_meta[0].ndim - 2, c->in_meta[0].shape);
    return 0;
}

int cpu_matrix_rank(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct spectral sp;
    struct tol_rule t;
    bool herm = td_arg_bool(c, "hermitian");
    tol_rule(c, &c->in_meta[0], &t);
    int rc = spectral_get("matrix_rank", c->inputs[0], herm, false, c->account, &sp, err);
    if (rc == 0) {
        int64_t *po = td_tensor_data(out[0]);
        for (int64_t b = 0; b < sp.nb; b++) {
            int64_t r = 0;
            double tol = sp.k ? spectral_tol(&sp, b, &t) : 0;
            for (int64_t i = 0; i < sp.k; i++)
                r += fabs(sp.val[b * sp.k + i]) > tol;
            po[b] = r;
        }
    }
    spectral_fini(&sp);
    return rc;
}

int meta_pinv(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = meta_rank_pinv("pinv", c, err);
    if (rc)
        return rc;
    const struct td_meta *a = &c->in_meta[0];
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    shape[a->ndim - 2] = a->shape[a->ndim - 1];
    shape[a->ndim - 1] = a->shape[a->ndim - 2];
    td__meta_set(out, a->dtype, a->ndim, shape);
    return 0;
}

int cpu_pinv(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct spectral sp;
    struct tol_rule t;
    struct td_tensor *o = out[0];
    bool herm = td_arg_bool(c, "hermitian");
    tol_rule(c, &c->in_meta[0], &t);
    if (td_tensor_numel(o) > 0)
        memset(td_tensor_data(o), 0, td_tensor_nbytes(o));
    int rc = spectral_get("pinv", c->inputs[0], herm, true, c->account, &sp, err);
    if (rc || sp.k == 0 || sp.nb == 0) {
        spectral_fini(&sp);
        return rc;
    }
    enum td_dtype dt = o->dtype;
    size_t isz = td_dtype_size(dt);
    int64_t m = sp.m, n = sp.n, k = sp.k;
    const char *pu = td_tensor_data(sp.u);
    const char *pv = sp.vh ? td_tensor_data(sp.vh) : NULL;
    char *po = td_tensor_data(o);
    double complex *acc = td__lp_alloc((size_t)(n * m), sizeof(double complex));
    if (!acc) {
        spectral_fini(&sp);
        return td__lp_nomem("pinv", err);
    }
    for (int64_t b = 0; b < sp.nb; b++) {
        double tol = spectral_tol(&sp, b, &t);
        const char *ub = pu + (size_t)(b * m * k) * isz;
        const char *vb = pv ? pv + (size_t)(b * k * n) * isz : NULL;
        memset(acc, 0, sizeof(double complex) * (size_t)(n * m));
        for (int64_t i = 0; i < k; i++) {
            double s = sp.val[b * k + i];
            if (!(fabs(s) > tol))
                continue;
            /* SVD: P += conj(Vh[i, :])^T (1/s) conj(U[:, i])^T.
             * eigh: P += V[:, i] (1/w) V[:, i]^H. */
            for (int64_t j = 0; j < n; j++) {
                double complex left = vb ? conj(td__load_c128(vb + (size_t)(i * n + j) * isz, dt))
                                         : td__load_c128(ub + (size_t)(j * k + i) * isz, dt);
                left /= s;
                for (int64_t l = 0; l < m; l++)
                    acc[j * m + l] += left * conj(td__load_c128(ub + (size_t)(l * k + i) * isz,
                                                                dt));
            }
        }
        char *ob = po + (size_t)(b * n * m) * isz;
        for (int64_t q = 0; q < n * m; q++)
            td__store_c128(ob + (size_t)q * isz, dt, acc[q]);
    }
    td_free(acc);
    spectral_fini(&sp);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * matrix_exp: Al-Mohy & Higham (2009), Algorithm 5.1, in complex double (real input keeps a
 * zero imaginary part). For exp(A) ~ r_m(A/2^s)^(2^s), the Pade degree m in {3,5,7,9,13}
 * and s come from eta = max(||A^2p||^(1/2p), ||A^(2p+2)||^(1/(2p+2))) (exact 1-norms of the
 * powers the approximant needs anyway) against theta_m, the largest eta whose backward
 * error bound is below the unit roundoff 2^-53; ell() adds squarings where |A| is far from
 * normal so the bound is not optimistic.
 */

static const double PADE_B[5][14] = {
    {120., 60., 12., 1.},
    {30240., 15120., 3360., 420., 30., 1.},
    {17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.},
    {17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160., 110880.,
     3960., 90., 1.},
    {64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
     129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920., 40840800.,
     960960., 16380., 182., 1.}};
static const int PADE_M[5] = {3, 5, 7, 9, 13};
/* theta_m (Higham 2005 Table 2.3; 4.25 for m = 13 with the 2009 bounds). */
static const double PADE_THETA[5] = {1.495585217958292e-2, 2.539398330063230e-1,
                                     9.504178996162932e-1, 2.097847961257068e0, 4.25};
/* 1 / |c_(2m+1)|, the leading coefficient of the backward error series (Al-Mohy & Higham
 * 2009, eq. (5.1) and scipy's _ell). */
static const double PADE_CINV[5] = {100800., 10059033600., 4487938430976000.,
                                    5914384781877411840000., 113250775606021113483283660800000000.};

static double onenorm(const double complex *a, int n)
{
    double mx = 0;
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += cabs(a[i * n + j]);
        mx = fmax(mx, s);
    }
    return mx;
}

/* c = a @ b (n x n, complex double, row-major). */
static void mm(double complex *c, const double complex *a, const double complex *b, int n)
{
    td__gemm(TD_COMPLEX128, false, false, n, n, n, a, n, b, n, 0.0, c, n);
}

/* ell(m) for a scaled by 2^-s: the extra squarings Algorithm 5.1 needs. |A|^(2m+1) 1-norm
 * is ||1^T |A|^(2m+1)||_inf (a nonnegative matrix), found with 2m+1 vector products. */
static int pade_ell(const double complex *a, int n, double scale, int mi, double *w1, double *w2)
{
    int m = PADE_M[mi];
    for (int j = 0; j < n; j++)
        w1[j] = 1.0;
    for (int p = 0; p < 2 * m + 1; p++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += w1[i] * cabs(a[i * n + j]) * scale;
            w2[j] = s;
        }
        memcpy(w1, w2, sizeof(double) * (size_t)n);
    }
    double nrm = 0;
    for (int j = 0; j < n; j++)
        nrm = fmax(nrm, w1[j]);
    double an = onenorm(a, n) * scale;
    if (nrm == 0 || an == 0)
        return 0;
    double alpha = nrm / (an * PADE_CINV[mi]);
    double v = ceil(log2(alpha / ldexp(1.0, -53)) / (2.0 * m));
    return v > 0 ? (int)v : 0;
}

/* exp of the n x n matrix a (overwritten as scratch) into x. w: workspace of 8 n^2 complex
 * values plus 2n doubles (wd); ipiv n ints. Returns 0, or the getrf info when the
 * denominator is singular (it is not for finite input: its condition is bounded). */
static int expm1_matrix(double complex *a, double complex *x, int n, double complex *w,
                        double *wd, int *ipiv)
{
    size_t nn = (size_t)n * (size_t)n;
    double complex *a2 = w, *a4 = w + nn, *a6 = w + 2 * nn, *a8 = w + 3 * nn;
    double complex *u = w + 4 * nn, *v = w + 5 * nn, *t1 = w + 6 * nn, *t2 = w + 7 * nn;
    double an = onenorm(a, n);
    if (!isfinite(an)) {
        for (size_t i = 0; i < nn; i++)
            x[i] = NAN;
        return 0;
    }
    mm(a2, a, a, n);
    mm(a4, a2, a2, n);
    mm(a6, a2, a4, n);
    double d4 = pow(onenorm(a4, n), 0.25), d6 = pow(onenorm(a6, n), 1.0 / 6);
    double eta1 = fmax(d4, d6);
    int mi = -1, s = 0;
    if (eta1 <= PADE_THETA[0] && pade_ell(a, n, 1.0, 0, wd, wd + n) == 0)
        mi = 0;
    else if (eta1 <= PADE_THETA[1] && pade_ell(a, n, 1.0, 1, wd, wd + n) == 0)
        mi = 1;
    double eta3 = 0;
    if (mi < 0) {
        mm(a8, a4, a4, n);
        double d8 = pow(onenorm(a8, n), 0.125);
        eta3 = fmax(d6, d8);
        if (eta3 <= PADE_THETA[2] && pade_ell(a, n, 1.0, 2, wd, wd + n) == 0)
            mi = 2;
        else if (eta3 <= PADE_THETA[3] && pade_ell(a, n, 1.0, 3, wd, wd + n) == 0)
            mi = 3;
    }
    if (mi < 0) {
        mi = 4;
        mm(t1, a4, a6, n);
        double d8 = pow(onenorm(a8, n), 0.125), d10 = pow(onenorm(t1, n), 0.1);
        double eta5 = fmin(eta3, fmax(d8, d10));
        s = eta5 > 0 ? (int)fmax(ceil(log2(eta5 / PADE_THETA[4])), 0) : 0;
        s += pade_ell(a, n, ldexp(1.0, -s), 4, wd, wd + n);
        if (s > 0) {
            double sc = ldexp(1.0, -s);
            for (size_t i = 0; i < nn; i++) {
                a[i] *= sc;
                a2[i] *= sc * sc;
                a4[i] *= sc * sc * sc * sc;
                a6[i] *= sc * sc * sc * sc * sc * sc;
            }
        }
    }
    const double *bc = PADE_B[mi];
    int m = PADE_M[mi];
    /* U = A * (odd part), V = even part (Higham 2005, Algorithm 2.3). */
    if (m == 13) {
        for (size_t i = 0; i < nn; i++)
            t1[i] = bc[13] * a6[i] + bc[11] * a4[i] + bc[9] * a2[i];
        mm(t2, a6, t1, n);
        for (size_t i = 0; i < nn; i++)
            t2[i] += bc[7] * a6[i] + bc[5] * a4[i] + bc[3] * a2[i];
        for (int i = 0; i < n; i++)
            t2[(size_t)i * (size_t)n + (size_t)i] += bc[1];
        mm(u, a, t2, n);
        for (size_t i = 0; i < nn; i++)
            t1[i] = bc[12] * a6[i] + bc[10] * a4[i] + bc[8] * a2[i];
        mm(v, a6, t1, n);
        for (size_t i = 0; i < nn; i++)
            v[i] += bc[6] * a6[i] + bc[4] * a4[i] + bc[2] * a2[i];
    } else {
        /* Powers A^2 .. A^(m-1) available: a2, a4, a6, a8. */
        const double complex *pw[5] = {NULL, a2, a4, a6, a8};
        memset(t2, 0, sizeof(double complex) * nn);
        memset(v, 0, sizeof(double complex) * nn);
        for (int k = 1; 2 * k <= m - 1; k++)
            for (size_t i = 0; i < nn; i++) {
                t2[i] += bc[2 * k + 1] * pw[k][i];
                v[i] += bc[2 * k] * pw[k][i];
            }
        for (int i = 0; i < n; i++)
            t2[(size_t)i * (size_t)n + (size_t)i] += bc[1];
        mm(u, a, t2, n);
    }
    for (int i = 0; i < n; i++)
        v[(size_t)i * (size_t)n + (size_t)i] += bc[0];
    /* (V - U) X = V + U. */
    for (size_t i = 0; i < nn; i++) {
        t1[i] = v[i] - u[i];
        x[i] = v[i] + u[i];
    }
    int info = td__lp_getrf(TD_COMPLEX128, n, n, t1, n, ipiv);
    if (info == 0)
        info = td__lp_getrs(TD_COMPLEX128, 'N', n, n, t1, n, ipiv, x, n);
    if (info)
        return info;
    for (int k = 0; k < s; k++) {
        mm(t1, x, x, n);
        memcpy(x, t1, sizeof(double complex) * nn);
    }
    return 0;
}

int meta_matrix_exp(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__lp_meta_square("matrix_exp", &c->in_meta[0], false, out, err);
}

int cpu_matrix_exp(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0], *a = c->inputs[0];
    int n = (int)a->shape[a->ndim - 1];
    int64_t nb = td_shape_numel(a->shape, a->ndim - 2);
    if (td_tensor_numel(o) == 0)
        return 0;
    int rc = td_tensor_copy(o, a, err);
    if (rc)
        return rc;
    size_t nn = (size_t)n * (size_t)n;
    double complex *buf = td__lp_alloc(10 * nn, sizeof(double complex));
    double *wd = td__lp_alloc(2 * (size_t)n, sizeof(double));
    int *ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!buf || !wd || !ipiv) {
        rc = td__lp_nomem("matrix_exp", err);
        goto out;
    }
    enum td_dtype dt = o->dtype;
    size_t isz = td_dtype_size(dt);
    char *po = td_tensor_data(o);
    double complex *am = buf, *xm = buf + nn, *w = buf + 2 * nn;
    for (int64_t b = 0; b < nb; b++) {
        char *p = po + (size_t)b * nn * isz;
        for (size_t i = 0; i < nn; i++)
            am[i] = td__load_c128(p + i * isz, dt);
        int info = expm1_matrix(am, xm, n, w, wd, ipiv);
        if (info) {
            rc = td_error_set(err, TD_EINVAL, "matrix_exp: batch element %lld: the Pade "
                              "denominator is singular (%d)", (long long)b, info);
            goto out;
        }
        for (size_t i = 0; i < nn; i++)
            td__store_c128(p + i * isz, dt, xm[i]);
    }
out:
    td_free(buf);
    td_free(wd);
    td_free(ipiv);
    return rc;
}
