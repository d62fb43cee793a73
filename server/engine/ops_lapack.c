/*
 * ops_lapack.c - torch.linalg on LAPACKE: inv, solve, det, slogdet, cholesky, qr, eigh,
 * eigvalsh, svd, svdvals (the dtype dispatch and shared helpers are in lapack.c).
 *
 * Inputs are float32/float64/complex64/complex128 tensors whose last two dims are the
 * matrices; leading dims are a batch. Each kernel first makes a contiguous (C-order) copy of
 * its inputs, broadcast to the batch shape where the op broadcasts, and calls LAPACKE with
 * LAPACK_ROW_MAJOR on each batch matrix in turn (LAPACKE makes the column-major copies LAPACK
 * needs). Outputs are the engine's contiguous tensors.
 *
 * Singular input to inv and solve and a matrix that is not positive-definite for cholesky
 * fail with TD_EINVAL naming the batch element (its flat index over the batch dims). det and
 * slogdet of a singular matrix are 0 and (0, -inf), as in torch.
 */
#include <complex.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "td_blas.h"
#include "td_lapack.h"

/* ---- inv ---- */

int meta_inv(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__lp_meta_square("inv", &c->in_meta[0], false, out, err);
}

int cpu_inv(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0];
    int n = (int)o->shape[o->ndim - 1];
    if (td_tensor_numel(o) == 0)
        return 0;
    int rc = td_tensor_copy(o, c->inputs[0], err);
    if (rc)
        return rc;
    int *ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!ipiv)
        return td__lp_nomem("inv", err);
    size_t isz = td_dtype_size(o->dtype);
    int64_t nb = td_tensor_numel(o) / ((int64_t)n * n);
    char *p = td_tensor_data(o);
    for (int64_t bi = 0; bi < nb; bi++, p += (size_t)n * (size_t)n * isz) {
        int info = td__lp_getrf(o->dtype, n, n, p, n, ipiv);
        if (info == 0)
            info = td__lp_getri(o->dtype, n, p, n, ipiv);
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL, "inv: batch element %lld is singular (U[%d,%d] = 0)",
                              (long long)bi, info - 1, info - 1);
            break;
        }
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "inv: LAPACK argument %d invalid", -info);
            break;
        }
    }
    td_free(ipiv);
    return rc;
}

/* ---- solve ---- */

/* torch.linalg.solve's rule: B is a batch of vectors when it is 1-d or when its shape is
 * A's without the last dim; otherwise a batch of n x k matrices. Batch dims broadcast. */
struct solve_plan {
    bool vec;
    int n, k;
    int nbd;                        /* batch dims of the result */
    int64_t bshape[TD_MAX_NDIM];
    int ndim;
    int64_t shape[TD_MAX_NDIM];
};

static int solve_plan(const struct td_meta *a, const struct td_meta *b, struct solve_plan *s,
                      struct td_error *err)
{
    char b1[256], b2[256];
    int rc = td__lp_check_mat("solve", a, true, err);
    if (rc)
        return rc;
    rc = td__lp_same_dtype("solve", a, b, "A", "B", err);
    if (rc)
        return rc;
    if (b->ndim == 0)
        return td_error_set(err, TD_EINVAL, "solve: B must have at least 1 dim");
    s->n = (int)a->shape[a->ndim - 1];
    bool vec = td__lp_b_is_vec(a, b);
    s->vec = vec;
    int64_t bn = vec ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    if (bn != s->n)
        return td_error_set(err, TD_EINVAL, "solve: A %s and B %s do not match",
                            td__shape_str(a->shape, a->ndim, b1, sizeof b1),
                            td__shape_str(b->shape, b->ndim, b2, sizeof b2));
    int64_t k = vec ? 1 : b->shape[b->ndim - 1];
    if (k > INT_MAX / 2 || (s->n > 0 && k > INT_MAX / s->n))
        return td_error_set(err, TD_ELIMIT, "solve: B is too large for LAPACK");
    s->k = (int)k;
    int abat = a->ndim - 2, bbat = b->ndim - (vec ? 1 : 2);
    s->nbd = abat > bbat ? abat : bbat;
    for (int i = 0; i < s->nbd; i++) {
        int ia = i - (s->nbd - abat), ib = i - (s->nbd - bbat);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return td_error_set(err, TD_EINVAL, "solve: batch dims of %s and %s cannot broadcast",
                                td__shape_str(a->shape, a->ndim, b1, sizeof b1),
                                td__shape_str(b->shape, b->ndim, b2, sizeof b2));
        s->bshape[i] = da == 1 ? db : da;
    }
    s->ndim = 0;
    for (int i = 0; i < s->nbd; i++)
        s->shape[s->ndim++] = s->bshape[i];
    s->shape[s->ndim++] = s->n;
    if (!vec)
        s->shape[s->ndim++] = s->k;
    return 0;
}

int meta_solve(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct solve_plan s;
    int rc = solve_plan(&c->in_meta[0], &c->in_meta[1], &s, err);
    if (rc)
        return rc;
    td__meta_set(out, c->in_meta[0].dtype, s.ndim, s.shape);
    return td__check_shape("solve", s.shape, s.ndim, c->in_meta[0].dtype, err);
}

/* Per-batch work of cpu_solve, run in parallel chunks. */
struct solve_job {
    enum td_dtype dt;
    int n, k;
    char *pa, *pb;           /* dense A batch (C order) and the output holding B */
    int *info;               /* per batch element: LAPACK info, or INT_MIN out of memory */
};

/* A C-order matrix is its transpose in column-major, so each element factors A^T with
 * column-major ?getrf and solves (A^T)^T X = B with trans 'T' (a plain transpose for
 * complex too). B (n x k, C order) is transposed into column-major scratch unless k = 1. */
static void solve_chunk(int64_t begin, int64_t end, void *ctx)
{
    const struct solve_job *j = ctx;
    size_t isz = td_dtype_size(j->dt), nn = (size_t)j->n * (size_t)j->n;
    size_t nk = (size_t)j->n * (size_t)j->k;
    int *ipiv = td__lp_alloc((size_t)j->n, sizeof(int));
    char *bt = j->k > 1 ? td__lp_alloc(nk, isz) : NULL;
    for (int64_t bi = begin; bi < end; bi++) {
        if (!ipiv || (j->k > 1 && !bt)) {
            j->info[bi] = INT_MIN;
            continue;
        }
        char *pa = j->pa + (size_t)bi * nn * isz, *pb = j->pb + (size_t)bi * nk * isz;
        int info = td__lp_getrf_cm(j->dt, j->n, pa, ipiv);
        if (info == 0 && j->k == 1) {
            info = td__lp_getrs_cm(j->dt, 'T', j->n, 1, pa, ipiv, pb);
        } else if (info == 0) {
            td__lp_transpose(bt, pb, j->n, j->k, isz);
            info = td__lp_getrs_cm(j->dt, 'T', j->n, j->k, pa, ipiv, bt);
            td__lp_transpose(pb, bt, j->k, j->n, isz);
        }
        j->info[bi] = info;
    }
    td_free(ipiv);
    td_free(bt);
}

int cpu_solve(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct solve_plan s;
    int rc = solve_plan(&c->in_meta[0], &c->in_meta[1], &s, err);
    if (rc)
        return rc;
    struct td_tensor *o = out[0], *ad = NULL;
    if (td_tensor_numel(o) == 0)
        return 0;
    int64_t ashape[TD_MAX_NDIM];
    memcpy(ashape, s.bshape, sizeof(int64_t) * (size_t)s.nbd);
    ashape[s.nbd] = s.n;
    ashape[s.nbd + 1] = s.n;
    rc = td__lp_dense(c->inputs[0], s.nbd + 2, ashape, c->account, &ad, err);
    if (rc)
        return rc;
    int64_t nb = td_shape_numel(s.bshape, s.nbd);
    struct solve_job j = {o->dtype, s.n, s.k, td_tensor_data(ad), td_tensor_data(o), NULL};
    /* B broadcast into the output, then solved in place. A 1-d B or vector batch is a
     * right-aligned broadcast of the output's [.., n]. */
    rc = td_tensor_copy(o, c->inputs[1], err);
    if (rc)
        goto out;
    j.info = td__lp_alloc((size_t)nb, sizeof(int));
    if (!j.info) {
        rc = td__lp_nomem("solve", err);
        goto out;
    }
    /* About 2/3 n^3 + 2 n^2 k flops per element; chunks of at least ~1 Mflop. */
    double work = (double)s.n * s.n * (s.n + 3.0 * s.k);
    int64_t grain = work >= 1.5e6 ? 1 : (int64_t)(1.5e6 / (work + 1.0)) + 1;
    bool big = td__lp_threads_begin(nb == 1 ? s.n : 0);
    td__parallel_for(nb, grain, solve_chunk, &j);
    td__lp_threads_end(big);
    for (int64_t bi = 0; bi < nb && !rc; bi++) {
        int info = j.info[bi];
        if (info == INT_MIN)
            rc = td__lp_nomem("solve", err);
        else if (info > 0)
            rc = td_error_set(err, TD_EINVAL,
                              "solve: batch element %lld of A is singular (U[%d,%d] = 0)",
                              (long long)bi, info - 1, info - 1);
        else if (info < 0)
            rc = td_error_set(err, TD_EINTERNAL, "solve: LAPACK argument %d invalid", -info);
    }
out:
    td_free(j.info);
    td_tensor_release(ad);
    return rc;
}

/* ---- det and slogdet ---- */

/* LU of each batch matrix of t (contiguous copy in lu): per batch element the sign/phase of
 * the determinant (a unit number, 0 when singular) and log|det| (-inf when singular). */
static int lu_logdet(const char *op, struct td_tensor *in, struct td_account *account,
                     double complex *sign, double *logabs, struct td_error *err)
{
    struct td_tensor *lu = NULL;
    int rc = td__lp_dense(in, in->ndim, in->shape, account, &lu, err);
    if (rc)
        return rc;
    int n = (int)in->shape[in->ndim - 1];
    int64_t nb = td_shape_numel(in->shape, in->ndim - 2);
    int *ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!ipiv) {
        td_tensor_release(lu);
        return td__lp_nomem(op, err);
    }
    enum td_dtype dt = in->dtype;
    size_t isz = td_dtype_size(dt);
    char *p = td_tensor_data(lu);
    for (int64_t bi = 0; bi < nb; bi++, p += (size_t)n * (size_t)n * isz) {
        double complex sg = 1;
        double la = 0;
        int info = n > 0 ? td__lp_getrf(dt, n, n, p, n, ipiv) : 0;
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -info);
            break;
        }
        if (info > 0) {
            sg = 0;
            la = -INFINITY;
        } else {
            for (int i = 0; i < n; i++) {
                double complex d = td__load_c128(p + ((size_t)i * (size_t)n + (size_t)i) * isz, dt);
                double ad = cabs(d);
                sg *= d / ad;
                la += log(ad);
                if (ipiv[i] != i + 1)
                    sg = -sg;
            }
            /* Renormalise the accumulated phase. */
            double m = cabs(sg);
            if (m > 0)
                sg /= m;
        }
        sign[bi] = sg;
        logabs[bi] = la;
    }
    td_free(ipiv);
    td_tensor_release(lu);
    return rc;
}

static int meta_square_reduce(const char *op, const struct td_op_ctx *c, enum td_dtype dt,
                              struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat(op, a, true, err);
    if (rc)
        return rc;
    td__meta_set(out, dt, a->ndim - 2, a->shape);
    return 0;
}

int meta_det(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_square_reduce("det", c, c->in_meta[0].dtype, out, err);
}

static int det_common(const char *op, const struct td_op_ctx *c, double complex **sg,
                      double **la, int64_t *nb, struct td_error *err)
{
    const struct td_tensor *a = c->inputs[0];
    *nb = td_shape_numel(a->shape, a->ndim - 2);
    *sg = td__lp_alloc((size_t)*nb, sizeof(double complex));
    *la = td__lp_alloc((size_t)*nb, sizeof(double));
    if (!*sg || !*la)
        return td__lp_nomem(op, err);
    return lu_logdet(op, c->inputs[0], c->account, *sg, *la, err);
}

int cpu_det(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    double complex *sg = NULL;
    double *la = NULL;
    int64_t nb = 0;
    int rc = det_common("det", c, &sg, &la, &nb, err);
    if (rc == 0) {
        struct td_tensor *o = out[0];
        size_t isz = td_dtype_size(o->dtype);
        char *p = td_tensor_data(o);
        for (int64_t i = 0; i < nb; i++)
            td__store_c128(p + (size_t)i * isz, o->dtype, sg[i] * exp(la[i]));
    }
    td_free(sg);
    td_free(la);
    return rc;
}

int meta_slogdet(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int rc = meta_square_reduce("slogdet", c, c->in_meta[0].dtype, &out[0], err);
    if (rc)
        return rc;
    return meta_square_reduce("slogdet", c, td_dtype_to_real(c->in_meta[0].dtype), &out[1],
                              err);
}

int cpu_slogdet(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    double complex *sg = NULL;
    double *la = NULL;
    int64_t nb = 0;
    int rc = det_common("slogdet", c, &sg, &la, &nb, err);
    if (rc == 0) {
        size_t s0 = td_dtype_size(out[0]->dtype), s1 = td_dtype_size(out[1]->dtype);
        char *p0 = td_tensor_data(out[0]), *p1 = td_tensor_data(out[1]);
        for (int64_t i = 0; i < nb; i++) {
            td__store_c128(p0 + (size_t)i * s0, out[0]->dtype, sg[i]);
            td__store_f64(p1 + (size_t)i * s1, out[1]->dtype, la[i]);
        }
    }
    td_free(sg);
    td_free(la);
    return rc;
}

/* ---- cholesky ---- */

int meta_cholesky(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__lp_meta_square("cholesky", &c->in_meta[0], false, out, err);
}

int td__lp_cholesky(const char *op, struct td_tensor *o, bool upper, bool check,
                    struct td_tensor *info, struct td_error *err)
{
    int n = (int)o->shape[o->ndim - 1];
    int64_t nb = td_shape_numel(o->shape, o->ndim - 2);
    size_t isz = td_dtype_size(o->dtype), nn = (size_t)n * (size_t)n;
    char *p = td_tensor_data(o);
    for (int64_t bi = 0; bi < nb; bi++, p += nn * isz) {
        int rc = n > 0 ? td__lp_potrf(o->dtype, upper ? 'U' : 'L', n, p, n) : 0;
        if (rc < 0)
            return td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -rc);
        if (rc > 0 && check)
            return td_error_set(err, TD_EINVAL,
                                "%s: batch element %lld is not positive-definite "
                                "(leading minor of order %d)", op, (long long)bi, rc);
        if (info)
            ((int32_t *)td_tensor_data(info))[bi] = rc;
        /* Zero the triangle LAPACK leaves untouched. */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (upper ? j < i : j > i)
                    memset(p + ((size_t)i * (size_t)n + (size_t)j) * isz, 0, isz);
    }
    return 0;
}

int cpu_cholesky(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0];
    if (td_tensor_numel(o) == 0)
        return 0;
    int rc = td_tensor_copy(o, c->inputs[0], err);
    return rc ? rc : td__lp_cholesky("cholesky", o, td_arg_bool(c, "upper"), true, NULL, err);
}

/* ---- qr ---- */

enum qr_mode { QR_REDUCED, QR_COMPLETE, QR_R };

static int qr_mode(const struct td_op_ctx *c, enum qr_mode *mode, struct td_error *err)
{
    const char *s = td_arg_str(c, "mode");
    if (strcmp(s, "reduced") == 0)
        *mode = QR_REDUCED;
    else if (strcmp(s, "complete") == 0)
        *mode = QR_COMPLETE;
    else if (strcmp(s, "r") == 0)
        *mode = QR_R;
    else
        return td_error_set(err, TD_EINVAL,
                            "qr: mode must be reduced, complete or r, got '%s'", s);
    return 0;
}

int meta_qr(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    enum qr_mode mode = 0;
    int rc = td__lp_check_mat("qr", a, false, err);
    if (rc == 0)
        rc = qr_mode(c, &mode, err);
    if (rc)
        return rc;
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1], k = m < n ? m : n;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
    if (mode == QR_R) {
        int64_t zero = 0;
        td__meta_set(&out[0], a->dtype, 1, &zero);   /* torch returns an empty Q */
    } else {
        shape[nd - 1] = mode == QR_COMPLETE ? m : k;
        td__meta_set(&out[0], a->dtype, nd, shape);
    }
    shape[nd - 2] = mode == QR_COMPLETE ? m : k;
    shape[nd - 1] = n;
    td__meta_set(&out[1], a->dtype, nd, shape);
    return 0;
}

int cpu_qr(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    enum qr_mode mode = 0;
    int rc = qr_mode(c, &mode, err);
    if (rc)
        return rc;
    struct td_tensor *a = c->inputs[0], *ad = NULL;
    enum td_dtype dt = a->dtype;
    size_t isz = td_dtype_size(dt);
    int nd = a->ndim;
    int m = (int)a->shape[nd - 2], n = (int)a->shape[nd - 1], k = m < n ? m : n;
    int rrows = mode == QR_COMPLETE ? m : k, qcols = mode == QR_COMPLETE ? m : k;
    int64_t nb = td_shape_numel(a->shape, nd - 2);
    if (nb == 0)
        return 0;
    rc = td__lp_dense(a, nd, a->shape, c->account, &ad, err);
    if (rc)
        return rc;
    void *tau = td__lp_alloc((size_t)(k > 0 ? k : 1), isz);
    if (!tau) {
        rc = td__lp_nomem("qr", err);
        goto out;
    }
    char *pa = td_tensor_data(ad);
    char *pq = mode == QR_R ? NULL : td_tensor_data(out[0]);
    char *pr = td_tensor_data(out[1]);
    for (int64_t bi = 0; bi < nb; bi++) {
        int info = (m > 0 && n > 0) ? td__lp_geqrf(dt, m, n, pa, n > 0 ? n : 1, tau) : 0;
        if (info != 0) {
            rc = td_error_set(err, TD_EINTERNAL, "qr: geqrf failed (%d) at batch element %lld",
                              info, (long long)bi);
            goto out;
        }
        /* R: the upper triangle of the first rrows rows (rows past k are zero). */
        for (int i = 0; i < rrows; i++)
            for (int j = 0; j < n; j++) {
                char *dst = pr + ((size_t)i * (size_t)n + (size_t)j) * isz;
                if (j >= i && i < k)
                    memcpy(dst, pa + ((size_t)i * (size_t)n + (size_t)j) * isz, isz);
                else
                    memset(dst, 0, isz);
            }
        pr += (size_t)rrows * (size_t)n * isz;
        if (pq && m > 0 && qcols > 0) {
            /* Q: the reflectors (first k columns) into an m x qcols matrix, then ?orgqr. */
            memset(pq, 0, (size_t)m * (size_t)qcols * isz);
            for (int i = 0; i < m; i++)
                memcpy(pq + (size_t)i * (size_t)qcols * isz, pa + (size_t)i * (size_t)n * isz,
                       (size_t)k * isz);
            info = td__lp_orgqr(dt, m, qcols, k, pq, qcols, tau);
            if (info != 0) {
                rc = td_error_set(err, TD_EINTERNAL,
                                  "qr: orgqr failed (%d) at batch element %lld", info,
                                  (long long)bi);
                goto out;
            }
            pq += (size_t)m * (size_t)qcols * isz;
        }
        pa += (size_t)m * (size_t)n * isz;
    }
out:
    td_free(tau);
    td_tensor_release(ad);
    return rc;
}

/* ---- eigh and eigvalsh (?syevd / ?heevd) ---- */

static int uplo_arg(const char *op, const struct td_op_ctx *c, char *uplo, struct td_error *err)
{
    const char *s = td_arg_str(c, "UPLO");
    if (strcmp(s, "L") == 0 || strcmp(s, "U") == 0) {
        *uplo = s[0];
        return 0;
    }
    return td_error_set(err, TD_EINVAL, "%s: UPLO must be L or U, got '%s'", op, s);
}

static int meta_eig_common(const char *op, const struct td_op_ctx *c, struct td_meta *out,
                           bool vectors, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    char uplo;
    int rc = td__lp_check_mat(op, a, true, err);
    if (rc == 0)
        rc = uplo_arg(op, c, &uplo, err);
    if (rc)
        return rc;
    td__meta_set(&out[0], td_dtype_to_real(a->dtype), a->ndim - 1, a->shape);
    if (vectors)
        td__meta_set(&out[1], a->dtype, a->ndim, a->shape);
    return 0;
}

/* Eigenvalues (ascending) into w, eigenvectors (columns) into v when v is non-NULL. */
/* A C-order matrix is its transpose in column-major: for a Hermitian A that is conj(A),
 * whose lower triangle is A's upper one. So each element runs column-major ?heevd on the
 * buffer with the other triangle (no LAPACKE layout copies or NaN scans, one workspace for
 * the batch): the eigenvalues are A's, the eigenvectors conj(V) as columns, i.e. V^H in C
 * order, which one conjugate transpose turns into V. */
int td__lp_eigh(const char *op, struct td_tensor *a, char uplo, struct td_account *account,
                struct td_tensor *w, struct td_tensor *v, struct td_error *err)
{
    struct td_tensor *ad = NULL;
    int rc = 0;
    if (td_tensor_numel(a) == 0)
        return 0;
    if (v) {
        rc = td_tensor_copy(v, a, err);
        ad = td_tensor_retain(v);
    } else {
        rc = td__lp_dense(a, a->ndim, a->shape, account, &ad, err);
    }
    if (rc) {
        td_tensor_release(ad);
        return rc;
    }
    enum td_dtype dt = a->dtype;
    bool cplx = td_dtype_is_complex(dt);
    int n = (int)a->shape[a->ndim - 1];
    size_t isz = td_dtype_size(dt), wsz = td_dtype_size(w->dtype);
    size_t nn = (size_t)n * (size_t)n;
    int64_t nb = td_tensor_numel(a) / ((int64_t)n * n);
    char *pa = td_tensor_data(ad), *pw = td_tensor_data(w);
    char jobz = v ? 'V' : 'N', cuplo = uplo == 'L' ? 'U' : 'L';
    char *work = NULL, *rwork = NULL, *tmp = NULL;
    int *iwork = NULL;
    double complex qw = 0;
    double qr = 0;
    int qi = 0;
    int info = td__lp_heevd_cm(dt, jobz, cuplo, n, pa, pw, &qw, -1, &qr, -1, &qi, -1);
    if (info != 0) {
        rc = td_error_set(err, TD_EINTERNAL, "%s: workspace query failed (%d)", op, info);
        goto out;
    }
    /* The queries wrote one element of dt, of its real type and an int. */
    int lwork = (int)td__load_f64(&qw, dt);
    int lrwork = cplx ? (int)td__load_f64(&qr, w->dtype) : 0, liwork = qi;
    work = td__lp_alloc((size_t)lwork, isz);
    rwork = cplx ? td__lp_alloc((size_t)lrwork, wsz) : NULL;
    iwork = td__lp_alloc((size_t)liwork, sizeof(int));
    tmp = v ? td__lp_alloc(nn, isz) : NULL;
    if (!work || (cplx && !rwork) || !iwork || (v && !tmp)) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    bool big = td__lp_threads_begin(n);
    for (int64_t bi = 0; bi < nb; bi++) {
        info = td__lp_heevd_cm(dt, jobz, cuplo, n, pa, pw, work, lwork, rwork, lrwork, iwork,
                               liwork);
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld did not converge (%d)",
                              op, (long long)bi, info);
            break;
        }
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -info);
            break;
        }
        if (v) {
            td__lp_transpose(tmp, pa, n, n, isz);
            memcpy(pa, tmp, nn * isz);
            if (dt == TD_COMPLEX64)
                for (size_t i = 0; i < nn; i++)
                    ((float *)pa)[2 * i + 1] = -((float *)pa)[2 * i + 1];
            else if (dt == TD_COMPLEX128)
                for (size_t i = 0; i < nn; i++)
                    ((double *)pa)[2 * i + 1] = -((double *)pa)[2 * i + 1];
        }
        pa += nn * isz;
        pw += (size_t)n * wsz;
    }
    td__lp_threads_end(big);
out:
    td_free(work);
    td_free(rwork);
    td_free(iwork);
    td_free(tmp);
    td_tensor_release(ad);
    return rc;
}

int meta_eigh(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_eig_common("eigh", c, out, true, err);
}

int cpu_eigh(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    char uplo = 'L';
    int rc = uplo_arg("eigh", c, &uplo, err);
    return rc ? rc : td__lp_eigh("eigh", c->inputs[0], uplo, c->account, out[0], out[1], err);
}

int meta_eigvalsh(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return meta_eig_common("eigvalsh", c, out, false, err);
}

int cpu_eigvalsh(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    char uplo = 'L';
    int rc = uplo_arg("eigvalsh", c, &uplo, err);
    return rc ? rc : td__lp_eigh("eigvalsh", c->inputs[0], uplo, c->account, out[0], NULL,
                                 err);
}

/* ---- svd and svdvals (?gesdd) ---- */

int meta_svd(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat("svd", a, false, err);
    if (rc)
        return rc;
    bool full = td_arg_bool(c, "full_matrices");
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1], k = m < n ? m : n;
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
    shape[nd - 1] = full ? m : k;
    td__meta_set(&out[0], a->dtype, nd, shape);
    shape[nd - 2] = k;
    td__meta_set(&out[1], td_dtype_to_real(a->dtype), nd - 1, shape);
    shape[nd - 2] = full ? n : k;
    shape[nd - 1] = n;
    td__meta_set(&out[2], a->dtype, nd, shape);
    return 0;
}

int td__lp_svd(const char *op, struct td_tensor *a, struct td_account *account,
               struct td_tensor *u, struct td_tensor *s, struct td_tensor *vh, bool full,
               struct td_error *err)
{
    struct td_tensor *ad = NULL;
    enum td_dtype dt = a->dtype;
    int nd = a->ndim;
    int m = (int)a->shape[nd - 2], n = (int)a->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(a->shape, nd - 2);
    if (nb == 0)
        return 0;
    if (k == 0) {
        /* No singular values; full U and Vh are identities. */
        if (u && full) {
            size_t isz = td_dtype_size(dt);
            char *pu = td_tensor_data(u), *pv = td_tensor_data(vh);
            memset(pu, 0, td_tensor_nbytes(u));
            memset(pv, 0, td_tensor_nbytes(vh));
            for (int64_t bi = 0; bi < nb; bi++) {
                for (int i = 0; i < m; i++)
                    td__store_f64(pu + ((size_t)bi * (size_t)m * (size_t)m +
                                        (size_t)i * (size_t)m + (size_t)i) * isz, dt, 1.0);
                for (int i = 0; i < n; i++)
                    td__store_f64(pv + ((size_t)bi * (size_t)n * (size_t)n +
                                        (size_t)i * (size_t)n + (size_t)i) * isz, dt, 1.0);
            }
        }
        return 0;
    }
    int rc = td__lp_dense(a, nd, a->shape, account, &ad, err);
    if (rc)
        return rc;
    /* Column-major buffers and workspace of our own, each with slack: the complex ?gemv_n
     * kernel this OpenBLAS build runs inside ?gebrd reads past the end of LAPACKE's exactly
     * sized buffers (an ASan SEGV, reproducible outside the daemon), and svdvals also asks
     * for the thin factors, as the values-only path did the same. */
    const size_t pad = 256;
    char jobz = full ? 'A' : 'S';
    int ucols = full ? m : k, vrows = full ? n : k, mx = m > n ? m : n;
    size_t isz = td_dtype_size(dt), ssz = td_dtype_size(s->dtype);
    char *pa = td_tensor_data(ad), *ps = td_tensor_data(s);
    char *pu = u ? td_tensor_data(u) : NULL, *pv = u ? td_tensor_data(vh) : NULL;
    char *ac = td__lp_alloc((size_t)m * (size_t)n + pad, isz);
    char *uc = td__lp_alloc((size_t)m * (size_t)ucols + pad, isz);
    char *vc = td__lp_alloc((size_t)vrows * (size_t)n + pad, isz);
    int *iwork = td__lp_alloc(8 * (size_t)k + pad, sizeof(int));
    size_t nrw = 5 * (size_t)k * (size_t)k + 7 * (size_t)k + 2 * (size_t)mx * (size_t)k +
                 2 * (size_t)k * (size_t)k + pad;
    char *rwork = td__lp_alloc(nrw, ssz);
    char *work = NULL;
    double complex q = 0;
    if (!ac || !uc || !vc || !iwork || !rwork) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    int info = td__lp_gesdd(dt, jobz, m, n, ac, m, ps, uc, m, vc, vrows, &q, -1, rwork, iwork);
    if (info != 0) {
        rc = td_error_set(err, TD_EINTERNAL, "%s: workspace query failed (%d)", op, info);
        goto out;
    }
    /* The query wrote one element of dt; its real part is the size. */
    int lwork = (int)td__load_f64(&q, dt);
    work = td__lp_alloc((size_t)lwork + pad, isz);
    if (!work) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    bool big = td__lp_threads_begin(k);
    for (int64_t bi = 0; bi < nb; bi++) {
        td__lp_transpose(ac, pa, m, n, isz);
        info = td__lp_gesdd(dt, jobz, m, n, ac, m, ps, uc, m, vc, vrows, work, lwork, rwork, iwork);
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld did not converge (%d)",
                              op, (long long)bi, info);
            break;
        }
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -info);
            break;
        }
        pa += (size_t)m * (size_t)n * isz;
        ps += (size_t)k * ssz;
        if (u) {
            /* uc is U column-major (m x ucols): its transpose-copy is U in C order. */
            td__lp_transpose(pu, uc, ucols, m, isz);
            td__lp_transpose(pv, vc, n, vrows, isz);
            pu += (size_t)m * (size_t)ucols * isz;
            pv += (size_t)vrows * (size_t)n * isz;
        }
    }
    td__lp_threads_end(big);
out:
    td_free(ac);
    td_free(uc);
    td_free(vc);
    td_free(iwork);
    td_free(rwork);
    td_free(work);
    td_tensor_release(ad);
    return rc;
}

int cpu_svd(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return td__lp_svd("svd", c->inputs[0], c->account, out[0], out[1], out[2],
                      td_arg_bool(c, "full_matrices"), err);
}

int meta_svdvals(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat("svdvals", a, false, err);
    if (rc)
        return rc;
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1];
    int64_t shape[TD_MAX_NDIM];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
    shape[nd - 2] = m < n ? m : n;
    td__meta_set(out, td_dtype_to_real(a->dtype), nd - 1, shape);
    return 0;
}

int cpu_svdvals(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return td__lp_svd("svdvals", c->inputs[0], c->account, NULL, out[0], NULL, false, err);
}
