/*
 * ops_lapack_ext.c - more of torch.linalg on LAPACKE: solve_triangular, the *_ex variants
 * (inv_ex, solve_ex, cholesky_ex, lu_factor_ex) that report failures through an int32 info
 * per batch element, lu_factor, lu, lu_solve, eig, eigvals, lstsq and householder_product.
 *
 * Conventions are those of ops_lapack.c: float32/float64/complex64/complex128 inputs whose
 * last two dims are the matrices and whose leading dims are a batch (broadcast where PyTorch
 * broadcasts), a contiguous copy of each input, LAPACKE (row-major) or CBLAS per batch
 * matrix, contiguous outputs. Names, argument names, output order, dtypes and shapes follow
 * torch.linalg; "batch element k" in an error is the flat index over the batch dims.
 *
 * Failure reporting: the *_ex ops put LAPACK's info of each batch element in their last
 * output and raise nothing unless check_errors is true, when the first failure becomes
 * TD_EINVAL naming its batch element. lu_factor raises on an exactly singular U (as
 * torch.linalg.lu_factor does); lu never does with pivoting. LU without pivoting is computed
 * here (LAPACK has none) and a zero pivot is an error naming the batch element (info for
 * lu_factor_ex without check_errors).
 */
#include <complex.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "td_blas.h"
#include "td_lapack.h"

#define LDIM(x) ((x) > 0 ? (x) : 1)

/* ---- LAPACKE / CBLAS wrappers of this file, dispatched on dtype ---- */

/* B = op(A)^-1 B (left) or B op(A)^-1 (right) for triangular A (row-major, no transpose). */
static void bl_trsm(enum td_dtype dt, bool left, bool upper, bool unit, int m, int n,
                    const void *a, int lda, void *b, int ldb)
{
    enum CBLAS_SIDE side = left ? CblasLeft : CblasRight;
    enum CBLAS_UPLO uplo = upper ? CblasUpper : CblasLower;
    enum CBLAS_DIAG diag = unit ? CblasUnit : CblasNonUnit;
    switch (dt) {
    case TD_FLOAT32:
        cblas_strsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, m, n, 1.0f, a, lda, b, ldb);
        break;
    case TD_FLOAT64:
        cblas_dtrsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, m, n, 1.0, a, lda, b, ldb);
        break;
    case TD_COMPLEX64: {
        float complex one = 1;
        cblas_ctrsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, m, n, &one, a, lda, b, ldb);
        break;
    }
    default: {
        double complex one = 1;
        cblas_ztrsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, m, n, &one, a, lda, b, ldb);
        break;
    }
    }
}

/* ?geev without left vectors: real dtypes write wr/wi, complex ones w; vr may be NULL. */
static int lp_geev(enum td_dtype dt, int n, void *a, void *wr, void *wi, void *w, void *vr)
{
    char jv = vr ? 'V' : 'N';
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgeev(LAPACK_ROW_MAJOR, 'N', jv, n, a, LDIM(n), wr, wi, NULL, 1, vr,
                             LDIM(n));
    case TD_FLOAT64:
        return LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', jv, n, a, LDIM(n), wr, wi, NULL, 1, vr,
                             LDIM(n));
    case TD_COMPLEX64:
        return LAPACKE_cgeev(LAPACK_ROW_MAJOR, 'N', jv, n, a, LDIM(n), w, NULL, 1, vr, LDIM(n));
    default:
        return LAPACKE_zgeev(LAPACK_ROW_MAJOR, 'N', jv, n, a, LDIM(n), w, NULL, 1, vr, LDIM(n));
    }
}

enum lsq_driver { LSQ_GELS, LSQ_GELSY, LSQ_GELSD, LSQ_GELSS };

/* One least-squares solve: a (m x n) is destroyed, b (max(m,n) x nrhs, ldb) holds the
 * solution in its first n rows. s (real, min(m,n)) for gelsd/gelss, jpvt (n) for gelsy. */
static int lp_lstsq(enum td_dtype dt, enum lsq_driver drv, int m, int n, int nrhs, void *a,
                    void *b, int ldb, void *s, int *jpvt, double rcond, int *rank)
{
    int lda = LDIM(n);
    lapack_int r = 0, info;
    switch (drv) {
    case LSQ_GELS:
        switch (dt) {
        case TD_FLOAT32:
            return LAPACKE_sgels(LAPACK_ROW_MAJOR, 'N', m, n, nrhs, a, lda, b, ldb);
        case TD_FLOAT64:
            return LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', m, n, nrhs, a, lda, b, ldb);
        case TD_COMPLEX64:
            return LAPACKE_cgels(LAPACK_ROW_MAJOR, 'N', m, n, nrhs, a, lda, b, ldb);
        default:
            return LAPACKE_zgels(LAPACK_ROW_MAJOR, 'N', m, n, nrhs, a, lda, b, ldb);
        }
    case LSQ_GELSY:
        switch (dt) {
        case TD_FLOAT32:
            info = LAPACKE_sgelsy(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda, b, ldb, jpvt,
                                  (float)rcond, &r);
            break;
        case TD_FLOAT64:
            info = LAPACKE_dgelsy(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda, b, ldb, jpvt, rcond, &r);
            break;
        case TD_COMPLEX64:
            info = LAPACKE_cgelsy(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda, b, ldb, jpvt,
                                  (float)rcond, &r);
            break;
        default:
            info = LAPACKE_zgelsy(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda, b, ldb, jpvt, rcond, &r);
            break;
        }
        break;
    default: {
        /* gelsd and gelss take the same arguments. */
        bool ss = drv == LSQ_GELSS;
        switch (dt) {
        case TD_FLOAT32:
            info = (ss ? LAPACKE_sgelss : LAPACKE_sgelsd)(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda,
                                                          b, ldb, s, (float)rcond, &r);
            break;
        case TD_FLOAT64:
            info = (ss ? LAPACKE_dgelss : LAPACKE_dgelsd)(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda,
                                                          b, ldb, s, rcond, &r);
            break;
        case TD_COMPLEX64:
            info = (ss ? LAPACKE_cgelss : LAPACKE_cgelsd)(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda,
                                                          b, ldb, s, (float)rcond, &r);
            break;
        default:
            info = (ss ? LAPACKE_zgelss : LAPACKE_zgelsd)(LAPACK_ROW_MAJOR, m, n, nrhs, a, lda,
                                                          b, ldb, s, rcond, &r);
            break;
        }
        break;
    }
    }
    *rank = (int)r;
    return info;
}

/* ---- small shared helpers ---- */

static const char *shp(const struct td_meta *m, char *buf, size_t n)
{
    return td__shape_str(m->shape, m->ndim, buf, n);
}

/* Broadcasts the batch dims a[0..na) and b[0..nb) into out[0..*nout). */
static int bcast_batch(const char *op, const struct td_meta *ma, int na, const struct td_meta *mb,
                       int nb, int64_t *out, int *nout, struct td_error *err)
{
    char b1[256], b2[256];
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t da = ia >= 0 ? ma->shape[ia] : 1, db = ib >= 0 ? mb->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return td_error_set(err, TD_EINVAL, "%s: batch dims of %s and %s cannot broadcast",
                                op, shp(ma, b1, sizeof b1), shp(mb, b2, sizeof b2));
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return 0;
}

/* Checks op's inputs a (a batch of matrices, square when square) and b (same dtype; a batch
 * of matrices too when b_mat), named an and bn in errors. */
static int check_ab(const char *op, const struct td_meta *a, const struct td_meta *b,
                    const char *an, const char *bn, bool square, bool b_mat,
                    struct td_error *err)
{
    int rc = td__lp_check_mat(op, a, square, err);
    if (rc == 0)
        rc = td__lp_same_dtype(op, a, b, an, bn, err);
    if (rc == 0 && b_mat)
        rc = td__lp_check_mat(op, b, false, err);
    return rc;
}

/* shape = batch[0..nb) followed by up to two more dims (d1 < 0: absent). */
static int mk_shape(int64_t *shape, const int64_t *batch, int nb, int64_t d0, int64_t d1)
{
    int nd = 0;
    for (int i = 0; i < nb; i++)
        shape[nd++] = batch[i];
    if (d0 >= 0)
        shape[nd++] = d0;
    if (d1 >= 0)
        shape[nd++] = d1;
    return nd;
}

static size_t msz(int64_t r, int64_t c)
{
    return (size_t)r * (size_t)c;
}

/* dst (cols x rows) = src^H (rows x cols), both C order. */
static void conj_transpose(char *dst, const char *src, int rows, int cols, enum td_dtype dt)
{
    size_t isz = td_dtype_size(dt);
    td__lp_transpose(dst, src, rows, cols, isz);
    if (!td_dtype_is_complex(dt))
        return;
    for (size_t i = 0; i < msz(rows, cols); i++) {
        char *p = dst + i * isz;
        td__store_c128(p, dt, conj(td__load_c128(p, dt)));
    }
}

static void store_i32(struct td_tensor *t, int64_t i, int v)
{
    ((int32_t *)td_tensor_data(t))[i] = (int32_t)v;
}

/* ---- solve_triangular ---- */

struct tri_plan {
    int n, rows, cols;       /* B's (and X's) matrix dims */
    int nbd;
    int64_t batch[TD_MAX_NDIM];
};

/* Fills p for op(A) X = B (left) or X op(A) = B with A (named an) n x n and B the checked
 * matrices a and b, whose batch dims broadcast. */
static int tri_fill(const char *op, const char *an, const struct td_meta *a,
                    const struct td_meta *b, bool left, struct tri_plan *p, struct td_error *err)
{
    char b1[256], b2[256];
    int64_t n = a->shape[a->ndim - 1];
    int64_t r = b->shape[b->ndim - 2], k = b->shape[b->ndim - 1];
    if ((left ? r : k) != n)
        return td_error_set(err, TD_EINVAL, "%s: %s %s and B %s do not match (left=%s)", op, an,
                            shp(a, b1, sizeof b1), shp(b, b2, sizeof b2),
                            left ? "true" : "false");
    p->n = (int)n;
    p->rows = (int)r;
    p->cols = (int)k;
    return bcast_batch(op, a, a->ndim - 2, b, b->ndim - 2, p->batch, &p->nbd, err);
}

/* X's meta for solve_triangular and lu_solve: the broadcast batch, then B's matrix dims. */
static int tri_meta(const char *op, const struct td_op_ctx *c, const struct tri_plan *p,
                    struct td_meta *out, struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM];
    int nd = mk_shape(shape, p->batch, p->nbd, p->rows, p->cols);
    td__meta_set(out, c->in_meta[0].dtype, nd, shape);
    return td__check_shape(op, shape, nd, out->dtype, err);
}

static int tri_plan(const struct td_op_ctx *c, struct tri_plan *p, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    int rc = check_ab("solve_triangular", a, b, "A", "B", true, true, err);
    return rc ? rc : tri_fill("solve_triangular", "A", a, b, td_arg_bool(c, "left"), p, err);
}

int meta_solve_triangular(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct tri_plan p;
    int rc = tri_plan(c, &p, err);
    return rc ? rc : tri_meta("solve_triangular", c, &p, out, err);
}

int cpu_solve_triangular(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct tri_plan p;
    int rc = tri_plan(c, &p, err);
    if (rc)
        return rc;
    struct td_tensor *o = out[0], *ad = NULL;
    if (td_tensor_numel(o) == 0)
        return 0;
    int64_t ashape[TD_MAX_NDIM];
    int nd = mk_shape(ashape, p.batch, p.nbd, p.n, p.n);
    rc = td__lp_dense(c->inputs[0], nd, ashape, c->account, &ad, err);
    if (rc == 0)
        rc = td_tensor_copy(o, c->inputs[1], err);
    if (rc)
        goto out;
    bool left = td_arg_bool(c, "left"), upper = td_arg_bool(c, "upper");
    bool unit = td_arg_bool(c, "unitriangular");
    size_t isz = td_dtype_size(o->dtype);
    int64_t nb = td_shape_numel(p.batch, p.nbd);
    char *pa = td_tensor_data(ad), *pb = td_tensor_data(o);
    for (int64_t bi = 0; bi < nb; bi++) {
        bl_trsm(o->dtype, left, upper, unit, p.rows, p.cols, pa, LDIM(p.n), pb, LDIM(p.cols));
        pa += msz(p.n, p.n) * isz;
        pb += msz(p.rows, p.cols) * isz;
    }
out:
    td_tensor_release(ad);
    return rc;
}

/* ---- LU solves shared by inv_ex and solve_ex ---- */

/* Solves in place, for each of nb batch elements, A X = B (left) or X A = B (right) with
 * LU = getrf(A) computed from the dense copy pa (destroyed). pb holds B: rows x cols per
 * element (rows = n for left, cols = n for right). info[bi] receives getrf's info. */
static int lu_solve_batch(const char *op, enum td_dtype dt, int64_t nb, int n, char *pa,
                          char *pb, int rows, int cols, bool left, int *info, bool check,
                          struct td_error *err)
{
    size_t isz = td_dtype_size(dt);
    int *ipiv = td__lp_alloc((size_t)LDIM(n), sizeof(int));
    char *tmp = left ? NULL : td__lp_alloc(msz(rows, cols), isz);
    int rc = 0;
    if (!ipiv || (!left && !tmp)) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    for (int64_t bi = 0; bi < nb; bi++) {
        int inf = n > 0 ? td__lp_getrf(dt, n, n, pa, n, ipiv) : 0;
        if (inf < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -inf);
            goto out;
        }
        info[bi] = inf;
        if (inf > 0 && check) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld is singular (U[%d,%d] = 0)",
                              op, (long long)bi, inf - 1, inf - 1);
            goto out;
        }
        /* A singular U still goes through getrs: the result is inf/NaN, as in torch. */
        int r2 = 0;
        if (n > 0 && rows > 0 && cols > 0) {
            if (left) {
                r2 = td__lp_getrs(dt, 'N', n, cols, pa, n, ipiv, pb, cols);
            } else {
                /* X A = B  <=>  A^T X^T = B^T. */
                td__lp_transpose(tmp, pb, rows, cols, isz);
                r2 = td__lp_getrs(dt, 'T', n, rows, pa, n, ipiv, tmp, rows);
                td__lp_transpose(pb, tmp, cols, rows, isz);
            }
        }
        if (r2 != 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: getrs failed (%d)", op, r2);
            goto out;
        }
        pa += msz(n, n) * isz;
        pb += msz(rows, cols) * isz;
    }
out:
    td_free(ipiv);
    td_free(tmp);
    return rc;
}

/* ---- inv_ex: (inverse, info) = solve_ex(A, I) ---- */

int meta_inv_ex(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__lp_meta_square("inv_ex", &c->in_meta[0], true, out, err);
}

int cpu_inv_ex(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *a = c->inputs[0], *o = out[0], *ad = NULL;
    int n = (int)a->shape[a->ndim - 1];
    int64_t nb = td_shape_numel(a->shape, a->ndim - 2);
    if (nb == 0)
        return 0;
    int *info = td__lp_alloc((size_t)nb, sizeof(int));
    int rc = info ? td__lp_dense(a, a->ndim, a->shape, c->account, &ad, err)
                  : td__lp_nomem("inv_ex", err);
    if (rc)
        goto out;
    size_t isz = td_dtype_size(o->dtype);
    char *po = td_tensor_data(o);
    memset(po, 0, td_tensor_nbytes(o));
    for (int64_t bi = 0; bi < nb; bi++)
        for (int i = 0; i < n; i++)
            td__store_f64(po + (msz(bi, msz(n, n)) + msz(i, n) + (size_t)i) * isz, o->dtype, 1.0);
    rc = lu_solve_batch("inv_ex", o->dtype, nb, n, td_tensor_data(ad), po, n, n, true, info,
                        td_arg_bool(c, "check_errors"), err);
    if (rc == 0)
        for (int64_t bi = 0; bi < nb; bi++)
            store_i32(out[1], bi, info[bi]);
out:
    td_free(info);
    td_tensor_release(ad);
    return rc;
}

/* ---- solve_ex ---- */

struct sx_plan {
    bool vec;
    int n, rows, cols;
    int nbd;
    int64_t batch[TD_MAX_NDIM];
    int ndim;
    int64_t shape[TD_MAX_NDIM];
};

static int sx_plan(const struct td_op_ctx *c, struct sx_plan *s, struct td_error *err)
{
    const char *op = "solve_ex";
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    char b1[256], b2[256];
    bool left = td_arg_bool(c, "left");
    int rc = check_ab(op, a, b, "A", "B", true, false, err);
    if (rc)
        return rc;
    if (b->ndim == 0)
        return td_error_set(err, TD_EINVAL, "solve_ex: B must have at least 1 dim");
    int64_t n = a->shape[a->ndim - 1];
    bool vec = td__lp_b_is_vec(a, b);
    if (vec && !left)
        return td_error_set(err, TD_EINVAL, "solve_ex: with left=false B must be a batch of "
                            "matrices [..., k, n], got %s", shp(b, b2, sizeof b2));
    s->vec = vec;
    int64_t r = vec ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t k = vec ? 1 : b->shape[b->ndim - 1];
    if ((left ? r : k) != n)
        return td_error_set(err, TD_EINVAL, "solve_ex: A %s and B %s do not match (left=%s)",
                            shp(a, b1, sizeof b1), shp(b, b2, sizeof b2),
                            left ? "true" : "false");
    if (r > INT_MAX / 2 || k > INT_MAX / 2 || (r > 0 && k > INT_MAX / r))
        return td_error_set(err, TD_ELIMIT, "solve_ex: B is too large for LAPACK");
    s->n = (int)n;
    s->rows = (int)r;
    s->cols = (int)k;
    rc = bcast_batch(op, a, a->ndim - 2, b, b->ndim - (vec ? 1 : 2), s->batch, &s->nbd, err);
    if (rc)
        return rc;
    s->ndim = mk_shape(s->shape, s->batch, s->nbd, r, vec ? -1 : k);
    return 0;
}

int meta_solve_ex(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct sx_plan s;
    int rc = sx_plan(c, &s, err);
    if (rc)
        return rc;
    td__meta_set(&out[0], c->in_meta[0].dtype, s.ndim, s.shape);
    td__meta_set(&out[1], TD_INT32, s.nbd, s.batch);
    return td__check_shape("solve_ex", s.shape, s.ndim, out[0].dtype, err);
}

int cpu_solve_ex(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct sx_plan s;
    int rc = sx_plan(c, &s, err);
    if (rc)
        return rc;
    int64_t nb = td_shape_numel(s.batch, s.nbd);
    if (nb == 0)
        return 0;
    struct td_tensor *ad = NULL, *o = out[0];
    int64_t ashape[TD_MAX_NDIM];
    int nd = mk_shape(ashape, s.batch, s.nbd, s.n, s.n);
    int *info = td__lp_alloc((size_t)nb, sizeof(int));
    rc = info ? td__lp_dense(c->inputs[0], nd, ashape, c->account, &ad, err)
              : td__lp_nomem("solve_ex", err);
    if (rc == 0 && td_tensor_numel(o) > 0)
        rc = td_tensor_copy(o, c->inputs[1], err);
    if (rc == 0)
        rc = lu_solve_batch("solve_ex", o->dtype, nb, s.n, td_tensor_data(ad), td_tensor_data(o),
                            s.rows, s.cols, td_arg_bool(c, "left"), info,
                            td_arg_bool(c, "check_errors"), err);
    if (rc == 0)
        for (int64_t bi = 0; bi < nb; bi++)
            store_i32(out[1], bi, info[bi]);
    td_free(info);
    td_tensor_release(ad);
    return rc;
}

/* ---- cholesky_ex ---- */

int meta_cholesky_ex(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__lp_meta_square("cholesky_ex", &c->in_meta[0], true, out, err);
}

int cpu_cholesky_ex(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0];
    if (td_shape_numel(o->shape, o->ndim - 2) == 0)
        return 0;
    if (td_tensor_numel(o) > 0) {
        int rc = td_tensor_copy(o, c->inputs[0], err);
        if (rc)
            return rc;
    }
    return td__lp_cholesky("cholesky_ex", o, td_arg_bool(c, "upper"),
                           td_arg_bool(c, "check_errors"), out[1], err);
}

/* ---- LU: lu_factor, lu_factor_ex, lu ---- */

/* LU without pivoting of the m x n matrix p (C order) in place, in double precision (Doolittle:
 * L unit lower, U upper, Golub & Van Loan, Matrix Computations, Alg. 3.2.1).
 * Returns 0, or k + 1 when the k-th pivot is exactly zero (elimination stops there). */
static int lu_nopiv(enum td_dtype dt, int m, int n, char *p, double complex *w)
{
    size_t isz = td_dtype_size(dt);
    int k = m < n ? m : n, info = 0;
    for (size_t i = 0; i < msz(m, n); i++)
        w[i] = td__load_c128(p + i * isz, dt);
    for (int j = 0; j < k; j++) {
        double complex piv = w[msz(j, n) + (size_t)j];
        if (piv == 0) {
            info = j + 1;
            break;
        }
        for (int i = j + 1; i < m; i++) {
            double complex l = w[msz(i, n) + (size_t)j] / piv;
            w[msz(i, n) + (size_t)j] = l;
            for (int q = j + 1; q < n; q++)
                w[msz(i, n) + (size_t)q] -= l * w[msz(j, n) + (size_t)q];
        }
    }
    for (size_t i = 0; i < msz(m, n); i++)
        td__store_c128(p + i * isz, dt, w[i]);
    return info;
}

enum lu_mode { LU_FACTOR, LU_FACTOR_EX, LU_FULL };

static const char *lu_name(enum lu_mode mode)
{
    return mode == LU_FACTOR ? "lu_factor" : mode == LU_FACTOR_EX ? "lu_factor_ex" : "lu";
}

static int lu_meta(const struct td_op_ctx *c, enum lu_mode mode, struct td_meta *out,
                   struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat(lu_name(mode), a, false, err);
    if (rc)
        return rc;
    int nd = a->ndim;
    int64_t m = a->shape[nd - 2], n = a->shape[nd - 1], k = m < n ? m : n;
    int64_t shape[TD_MAX_NDIM];
    if (mode == LU_FULL) {
        if (td_arg_bool(c, "pivot")) {
            mk_shape(shape, a->shape, nd - 2, m, m);
            td__meta_set(&out[0], a->dtype, nd, shape);
        } else {
            int64_t zero = 0;
            td__meta_set(&out[0], a->dtype, 1, &zero);   /* torch: P is empty */
        }
        mk_shape(shape, a->shape, nd - 2, m, k);
        td__meta_set(&out[1], a->dtype, nd, shape);
        mk_shape(shape, a->shape, nd - 2, k, n);
        td__meta_set(&out[2], a->dtype, nd, shape);
        return 0;
    }
    td__meta_set(&out[0], a->dtype, nd, a->shape);
    mk_shape(shape, a->shape, nd - 2, k, -1);
    td__meta_set(&out[1], TD_INT32, nd - 1, shape);
    if (mode == LU_FACTOR_EX)
        td__meta_set(&out[2], TD_INT32, nd - 2, a->shape);
    return 0;
}

/* Factors every batch matrix of lu (a contiguous copy of A, in place); pivots (1-based,
 * nb x k) and info (nb) are filled. Errors as the mode says (see the file comment). */
static int lu_run(const struct td_op_ctx *c, enum lu_mode mode, struct td_tensor *lu, int *piv,
                  int *info, struct td_error *err)
{
    const char *op = lu_name(mode);
    bool pivot = td_arg_bool(c, "pivot");
    bool check = mode == LU_FACTOR || (mode == LU_FACTOR_EX && td_arg_bool(c, "check_errors"));
    enum td_dtype dt = lu->dtype;
    int nd = lu->ndim;
    int m = (int)lu->shape[nd - 2], n = (int)lu->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(lu->shape, nd - 2);
    size_t isz = td_dtype_size(dt);
    double complex *w = pivot ? NULL : td__lp_alloc(msz(m, n), sizeof(double complex));
    if (!pivot && !w)
        return td__lp_nomem(op, err);
    int rc = 0;
    char *p = td_tensor_data(lu);
    for (int64_t bi = 0; bi < nb; bi++, p += msz(m, n) * isz) {
        int *pv = piv + bi * k, inf = 0;
        if (k > 0 && pivot) {
            inf = td__lp_getrf(dt, m, n, p, n, pv);
        } else if (k > 0) {
            inf = lu_nopiv(dt, m, n, p, w);
            for (int i = 0; i < k; i++)
                pv[i] = i + 1;
        }
        if (inf < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -inf);
            break;
        }
        info[bi] = inf;
        if (inf > 0 && !pivot && mode != LU_FACTOR_EX) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld has a zero pivot "
                              "U[%d,%d] = 0 and pivot=false: its LU factorization without "
                              "pivoting does not exist", op, (long long)bi, inf - 1, inf - 1);
            break;
        }
        if (inf > 0 && check) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld: U[%d,%d] is zero (the "
                              "matrix is singular%s)", op, (long long)bi, inf - 1, inf - 1,
                              pivot ? "" : " or needs pivoting");
            break;
        }
    }
    td_free(w);
    return rc;
}

static int lu_cpu(const struct td_op_ctx *c, enum lu_mode mode, struct td_tensor **out,
                  struct td_error *err)
{
    struct td_tensor *a = c->inputs[0], *lu = NULL;
    int nd = a->ndim;
    int m = (int)a->shape[nd - 2], n = (int)a->shape[nd - 1], k = m < n ? m : n;
    int64_t nb = td_shape_numel(a->shape, nd - 2);
    if (nb == 0)
        return 0;
    int *piv = td__lp_alloc((size_t)nb * (size_t)LDIM(k), sizeof(int));
    int *info = td__lp_alloc((size_t)nb, sizeof(int));
    int rc = 0;
    if (!piv || !info) {
        rc = td__lp_nomem(lu_name(mode), err);
        goto out;
    }
    if (mode == LU_FULL) {
        rc = td__lp_dense(a, nd, a->shape, c->account, &lu, err);
    } else {
        lu = td_tensor_retain(out[0]);
        if (td_tensor_numel(lu) > 0)
            rc = td_tensor_copy(lu, a, err);
    }
    if (rc == 0)
        rc = lu_run(c, mode, lu, piv, info, err);
    if (rc)
        goto out;
    if (mode != LU_FULL) {
        for (int64_t i = 0; i < nb * k; i++)
            store_i32(out[1], i, piv[i]);
        if (mode == LU_FACTOR_EX)
            for (int64_t bi = 0; bi < nb; bi++)
                store_i32(out[2], bi, info[bi]);
        goto out;
    }
    /* lu: A = P L U with P[perm[i], i] = 1 where perm applies getrf's row swaps in order. */
    enum td_dtype dt = a->dtype;
    size_t isz = td_dtype_size(dt);
    bool pivot = td_arg_bool(c, "pivot");
    char *pl = td_tensor_data(lu), *pP = td_tensor_data(out[0]);
    char *pL = td_tensor_data(out[1]), *pU = td_tensor_data(out[2]);
    int *perm = td__lp_alloc((size_t)LDIM(m), sizeof(int));
    if (!perm) {
        rc = td__lp_nomem("lu", err);
        goto out;
    }
    memset(pL, 0, td_tensor_nbytes(out[1]));
    memset(pU, 0, td_tensor_nbytes(out[2]));
    if (pivot)
        memset(pP, 0, td_tensor_nbytes(out[0]));
    for (int64_t bi = 0; bi < nb; bi++) {
        const char *src = pl + msz(bi, msz(m, n)) * isz;
        char *L = pL + msz(bi, msz(m, k)) * isz, *U = pU + msz(bi, msz(k, n)) * isz;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++) {
                char *d = L + (msz(i, k) + (size_t)j) * isz;
                if (i == j)
                    td__store_f64(d, dt, 1.0);
                else if (i > j)
                    memcpy(d, src + (msz(i, n) + (size_t)j) * isz, isz);
            }
        for (int i = 0; i < k; i++)
            memcpy(U + (msz(i, n) + (size_t)i) * isz, src + (msz(i, n) + (size_t)i) * isz,
                   (size_t)(n - i) * isz);
        if (!pivot)
            continue;
        for (int i = 0; i < m; i++)
            perm[i] = i;
        const int *pv = piv + bi * k;
        for (int i = 0; i < k; i++) {
            int t = perm[i];
            perm[i] = perm[pv[i] - 1];
            perm[pv[i] - 1] = t;
        }
        char *P = pP + msz(bi, msz(m, m)) * isz;
        for (int i = 0; i < m; i++)
            td__store_f64(P + (msz(perm[i], m) + (size_t)i) * isz, dt, 1.0);
    }
    td_free(perm);
out:
    td_free(piv);
    td_free(info);
    td_tensor_release(lu);
    return rc;
}

int meta_lu_factor(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return lu_meta(c, LU_FACTOR, out, err);
}

int cpu_lu_factor(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return lu_cpu(c, LU_FACTOR, out, err);
}

int meta_lu_factor_ex(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return lu_meta(c, LU_FACTOR_EX, out, err);
}

int cpu_lu_factor_ex(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return lu_cpu(c, LU_FACTOR_EX, out, err);
}

int meta_lu(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return lu_meta(c, LU_FULL, out, err);
}

int cpu_lu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return lu_cpu(c, LU_FULL, out, err);
}

/* ---- lu_solve ---- */

static int lus_plan(const struct td_op_ctx *c, struct tri_plan *p, struct td_error *err)
{
    const char *op = "lu_solve";
    const struct td_meta *lu = &c->in_meta[0], *pv = &c->in_meta[1], *b = &c->in_meta[2];
    char b1[256], b2[256];
    int rc = check_ab(op, lu, b, "LU", "B", true, true, err);
    if (rc)
        return rc;
    if (pv->dtype != TD_INT32)
        return td_error_set(err, TD_EINVAL, "lu_solve: pivots must be int32, got %s",
                            td_dtype_name(pv->dtype));
    bool ok = pv->ndim == lu->ndim - 1;
    for (int i = 0; ok && i < pv->ndim; i++)
        ok = pv->shape[i] == lu->shape[i];
    if (!ok)
        return td_error_set(err, TD_EINVAL, "lu_solve: pivots %s must have shape LU.shape[:-1] "
                            "(LU is %s)", shp(pv, b1, sizeof b1), shp(lu, b2, sizeof b2));
    return tri_fill(op, "LU", lu, b, td_arg_bool(c, "left"), p, err);
}

int meta_lu_solve(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct tri_plan p;
    int rc = lus_plan(c, &p, err);
    return rc ? rc : tri_meta("lu_solve", c, &p, out, err);
}

int cpu_lu_solve(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct tri_plan p;
    int rc = lus_plan(c, &p, err);
    if (rc)
        return rc;
    struct td_tensor *o = out[0], *lud = NULL, *pvd = NULL;
    if (td_tensor_numel(o) == 0)
        return 0;
    int64_t shape[TD_MAX_NDIM];
    int nd = mk_shape(shape, p.batch, p.nbd, p.n, p.n);
    char *tmp = NULL;
    rc = td__lp_dense(c->inputs[0], nd, shape, c->account, &lud, err);
    if (rc == 0)
        rc = td__lp_dense(c->inputs[1], nd - 1, shape, c->account, &pvd, err);
    if (rc == 0)
        rc = td_tensor_copy(o, c->inputs[2], err);
    if (rc)
        goto out;
    int64_t nb = td_shape_numel(p.batch, p.nbd);
    const int32_t *pv = td_tensor_data(pvd);
    /* Pivots come from the client: LAPACK would swap rows outside the matrix otherwise. */
    for (int64_t i = 0; i < nb * p.n; i++)
        if (pv[i] < 1 || pv[i] > p.n) {
            rc = td_error_set(err, TD_EINVAL, "lu_solve: batch element %lld: pivot %d is out "
                              "of range [1, %d]", (long long)(i / p.n), (int)pv[i], p.n);
            goto out;
        }
    bool left = td_arg_bool(c, "left"), adj = td_arg_bool(c, "adjoint");
    enum td_dtype dt = o->dtype;
    size_t isz = td_dtype_size(dt);
    tmp = td__lp_alloc(msz(p.rows, p.cols), isz);
    if (!tmp) {
        rc = td__lp_nomem("lu_solve", err);
        goto out;
    }
    char *pa = td_tensor_data(lud), *pb = td_tensor_data(o);
    for (int64_t bi = 0; bi < nb; bi++) {
        const int *ip = (const int *)(pv + bi * p.n);
        int r2;
        if (left) {
            r2 = td__lp_getrs(dt, adj ? 'C' : 'N', p.n, p.cols, pa, p.n, ip, pb, p.cols);
        } else {
            /* X op(A) = B  <=>  op(A)^H X^H = B^H. */
            conj_transpose(tmp, pb, p.rows, p.cols, dt);
            r2 = td__lp_getrs(dt, adj ? 'N' : 'C', p.n, p.rows, pa, p.n, ip, tmp, p.rows);
            conj_transpose(pb, tmp, p.cols, p.rows, dt);
        }
        if (r2 != 0) {
            rc = td_error_set(err, TD_EINTERNAL, "lu_solve: getrs failed (%d)", r2);
            goto out;
        }
        pa += msz(p.n, p.n) * isz;
        pb += msz(p.rows, p.cols) * isz;
    }
out:
    td_free(tmp);
    td_tensor_release(lud);
    td_tensor_release(pvd);
    return rc;
}

/* ---- eig and eigvals (?geev) ---- */

static int eig_meta(const char *op, const struct td_op_ctx *c, struct td_meta *out, bool vecs,
                    struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int rc = td__lp_check_mat(op, a, true, err);
    if (rc)
        return rc;
    enum td_dtype cd = td_dtype_to_complex(a->dtype);
    td__meta_set(&out[0], cd, a->ndim - 1, a->shape);
    if (vecs)
        td__meta_set(&out[1], cd, a->ndim, a->shape);
    return 0;
}

/* Eigenvalues into w and (when v is not NULL) unit-norm right eigenvectors as the columns
 * of v, both complex. A real matrix's complex pair (wr +- i wi) has the vectors
 * VR[:, j] +- i VR[:, j+1] (LAPACK's packed form). */
static int eig_run(const char *op, struct td_tensor *a, struct td_account *account,
                   struct td_tensor *w, struct td_tensor *v, struct td_error *err)
{
    enum td_dtype dt = a->dtype, cd = w->dtype;
    int n = (int)a->shape[a->ndim - 1];
    int64_t nb = td_shape_numel(a->shape, a->ndim - 2);
    if (nb == 0 || n == 0)
        return 0;
    struct td_tensor *ad = NULL;
    int rc = td__lp_dense(a, a->ndim, a->shape, account, &ad, err);
    if (rc)
        return rc;
    size_t isz = td_dtype_size(dt), csz = td_dtype_size(cd);
    bool cplx = td_dtype_is_complex(dt);
    char *wr = td__lp_alloc((size_t)n, isz), *wi = td__lp_alloc((size_t)n, isz);
    char *vr = v ? td__lp_alloc(msz(n, n), isz) : NULL;
    if (!wr || !wi || (v && !vr)) {
        rc = td__lp_nomem(op, err);
        goto out;
    }
    char *pa = td_tensor_data(ad), *pw = td_tensor_data(w), *pv = v ? td_tensor_data(v) : NULL;
    for (int64_t bi = 0; bi < nb; bi++) {
        for (size_t i = 0; i < msz(n, n); i++) {
            double complex z = td__load_c128(pa + i * isz, dt);
            if (!isfinite(creal(z)) || !isfinite(cimag(z))) {
                rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld has non-finite "
                                  "entries", op, (long long)bi);
                goto out;
            }
        }
        int info = cplx ? lp_geev(dt, n, pa, NULL, NULL, pw, pv)
                        : lp_geev(dt, n, pa, wr, wi, NULL, vr);
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL, "%s: batch element %lld did not converge (QR "
                              "iteration failed at eigenvalue %d)", op, (long long)bi, info);
            goto out;
        }
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -info);
            goto out;
        }
        if (!cplx) {
            for (int j = 0; j < n; j++) {
                double re = td__load_f64(wr + (size_t)j * isz, dt);
                double im = td__load_f64(wi + (size_t)j * isz, dt);
                td__store_c128(pw + (size_t)j * csz, cd, CMPLX(re, im));
            }
            for (int j = 0; v && j < n; j++) {
                double im = td__load_f64(wi + (size_t)j * isz, dt);
                bool pair = im != 0 && j + 1 < n;
                for (int i = 0; i < n; i++) {
                    double x = td__load_f64(vr + (msz(i, n) + (size_t)j) * isz, dt);
                    double y = pair ? td__load_f64(vr + (msz(i, n) + (size_t)j + 1) * isz, dt)
                                    : 0.0;
                    td__store_c128(pv + (msz(i, n) + (size_t)j) * csz, cd, CMPLX(x, y));
                    if (pair)
                        td__store_c128(pv + (msz(i, n) + (size_t)j + 1) * csz, cd,
                                       CMPLX(x, -y));
                }
                if (pair)
                    j++;
            }
        }
        pa += msz(n, n) * isz;
        pw += (size_t)n * csz;
        if (pv)
            pv += msz(n, n) * csz;
    }
out:
    td_free(wr);
    td_free(wi);
    td_free(vr);
    td_tensor_release(ad);
    return rc;
}

int meta_eig(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return eig_meta("eig", c, out, true, err);
}

int cpu_eig(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return eig_run("eig", c->inputs[0], c->account, out[0], out[1], err);
}

int meta_eigvals(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return eig_meta("eigvals", c, out, false, err);
}

int cpu_eigvals(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return eig_run("eigvals", c->inputs[0], c->account, out[0], NULL, err);
}

/* ---- lstsq ---- */

struct lsq_plan {
    enum lsq_driver drv;
    bool vec, res;       /* B a batch of vectors; residuals computed */
    int m, n, k;         /* k: columns of B (1 for vectors) */
    int nbd;
    int64_t batch[TD_MAX_NDIM];
};

static int lsq_plan(const struct td_op_ctx *c, struct lsq_plan *s, struct td_error *err)
{
    const char *op = "lstsq";
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    char b1[256], b2[256];
    int rc = check_ab(op, a, b, "A", "B", false, false, err);
    if (rc)
        return rc;
    const char *d = td_arg_str(c, "driver");
    if (!d || strcmp(d, "gelsy") == 0)
        s->drv = LSQ_GELSY;
    else if (strcmp(d, "gels") == 0)
        s->drv = LSQ_GELS;
    else if (strcmp(d, "gelsd") == 0)
        s->drv = LSQ_GELSD;
    else if (strcmp(d, "gelss") == 0)
        s->drv = LSQ_GELSS;
    else
        return td_error_set(err, TD_EINVAL, "lstsq: driver must be gels, gelsy, gelsd or "
                            "gelss, got '%s'", d);
    if (b->ndim == 0)
        return td_error_set(err, TD_EINVAL, "lstsq: B must have at least 1 dim");
    bool vec = td__lp_b_is_vec(a, b);
    s->vec = vec;
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    int64_t bm = vec ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t k = vec ? 1 : b->shape[b->ndim - 1];
    if (bm != m)
        return td_error_set(err, TD_EINVAL, "lstsq: A %s and B %s do not match (A.shape[-2] "
                            "!= B.shape[%d])", shp(a, b1, sizeof b1), shp(b, b2, sizeof b2),
                            vec ? -1 : -2);
    int64_t mx = m > n ? m : n;
    if (k > INT_MAX / 2 || (mx > 0 && k > INT_MAX / mx))
        return td_error_set(err, TD_ELIMIT, "lstsq: B is too large for LAPACK");
    s->m = (int)m;
    s->n = (int)n;
    s->k = (int)k;
    s->res = m > n && s->drv != LSQ_GELSY;
    return bcast_batch(op, a, a->ndim - 2, b, b->ndim - (vec ? 1 : 2), s->batch, &s->nbd, err);
}

/* Outputs (torch.linalg.lstsq on the CPU): solution [..., n(, k)]; residuals [..., k] (real;
 * [..., 1] for a vector B) when m > n and the driver is not gelsy, else empty; rank int64
 * [...] for gelsy/gelsd/gelss, else empty; singular_values [..., min(m, n)] (real) for
 * gelsd/gelss, else empty. Shapes are fixed before computing, so where torch would leave the
 * residuals of a rank-deficient A empty (gelsd/gelss) they are ||A X - B||^2 instead. */
int meta_lstsq(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct lsq_plan s;
    int rc = lsq_plan(c, &s, err);
    if (rc)
        return rc;
    enum td_dtype dt = c->in_meta[0].dtype, rd = td_dtype_to_real(dt);
    int64_t shape[TD_MAX_NDIM], zero = 0;
    int nd = mk_shape(shape, s.batch, s.nbd, s.n, s.vec ? -1 : s.k);
    td__meta_set(&out[0], dt, nd, shape);
    rc = td__check_shape("lstsq", shape, nd, dt, err);
    if (rc)
        return rc;
    if (s.res) {
        nd = mk_shape(shape, s.batch, s.nbd, s.k, -1);
        td__meta_set(&out[1], rd, nd, shape);
    } else {
        td__meta_set(&out[1], rd, 1, &zero);
    }
    if (s.drv != LSQ_GELS)
        td__meta_set(&out[2], TD_INT64, s.nbd, s.batch);
    else
        td__meta_set(&out[2], TD_INT64, 1, &zero);
    if (s.drv == LSQ_GELSD || s.drv == LSQ_GELSS) {
        nd = mk_shape(shape, s.batch, s.nbd, s.m < s.n ? s.m : s.n, -1);
        td__meta_set(&out[3], rd, nd, shape);
    } else {
        td__meta_set(&out[3], rd, 1, &zero);
    }
    return 0;
}

int cpu_lstsq(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct lsq_plan s;
    int rc = lsq_plan(c, &s, err);
    if (rc)
        return rc;
    int64_t nb = td_shape_numel(s.batch, s.nbd);
    if (nb == 0)
        return 0;
    enum td_dtype dt = c->in_meta[0].dtype, rd = td_dtype_to_real(dt);
    size_t isz = td_dtype_size(dt), rsz = td_dtype_size(rd);
    int m = s.m, n = s.n, k = s.k, mn = m < n ? m : n, mx = m > n ? m : n;
    struct td_tensor *ad = NULL, *bd = NULL;
    char *wa = NULL, *wb = NULL, *sv = NULL;
    int *jpvt = NULL;
    int64_t shape[TD_MAX_NDIM];
    int nd = mk_shape(shape, s.batch, s.nbd, m, n);
    rc = td__lp_dense(c->inputs[0], nd, shape, c->account, &ad, err);
    if (rc)
        goto out;
    if (s.vec)
        nd = mk_shape(shape, s.batch, s.nbd, m, -1);
    else
        nd = mk_shape(shape, s.batch, s.nbd, m, k);
    rc = td__lp_dense(c->inputs[1], nd, shape, c->account, &bd, err);
    if (rc)
        goto out;
    wa = td__lp_alloc(msz(m, n), isz);
    wb = td__lp_alloc(msz(mx, LDIM(k)), isz);
    sv = td__lp_alloc((size_t)LDIM(mn), rsz);
    jpvt = td__lp_alloc((size_t)LDIM(n), sizeof(int));
    if (!wa || !wb || !sv || !jpvt) {
        rc = td__lp_nomem("lstsq", err);
        goto out;
    }
    double rcond = td_arg_has(c, "rcond") ? td_arg_float(c, "rcond")
                                          : (rd == TD_FLOAT32 ? FLT_EPSILON : DBL_EPSILON) * mx;
    const char *pa = td_tensor_data(ad), *pb = td_tensor_data(bd);
    char *px = td_tensor_data(out[0]);
    char *pr = s.res ? td_tensor_data(out[1]) : NULL;
    for (int64_t bi = 0; bi < nb; bi++) {
        const char *A = pa + msz(bi, msz(m, n)) * isz, *B = pb + msz(bi, msz(m, k)) * isz;
        memcpy(wa, A, msz(m, n) * isz);
        memset(wb, 0, msz(mx, LDIM(k)) * isz);
        memcpy(wb, B, msz(m, k) * isz);
        memset(jpvt, 0, (size_t)LDIM(n) * sizeof(int));
        int rank = 0, info = 0;
        if (mn > 0)
            info = lp_lstsq(dt, s.drv, m, n, k, wa, wb, LDIM(k), sv, jpvt, rcond, &rank);
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "lstsq: LAPACK argument %d invalid", -info);
            goto out;
        }
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL, s.drv == LSQ_GELS
                              ? "lstsq: batch element %lld does not have full rank (driver gels "
                                "needs it; diagonal %d of R is zero)"
                              : "lstsq: batch element %lld: the SVD did not converge (%d)",
                              (long long)bi, info);
            goto out;
        }
        memcpy(px + msz(bi, msz(n, k)) * isz, wb, msz(n, k) * isz);
        if (s.drv != LSQ_GELS)
            ((int64_t *)td_tensor_data(out[2]))[bi] = rank;
        if (s.drv == LSQ_GELSD || s.drv == LSQ_GELSS)
            memcpy((char *)td_tensor_data(out[3]) + msz(bi, mn) * rsz, sv, (size_t)mn * rsz);
        if (!pr)
            continue;
        /* Residuals: LAPACK leaves them in rows n..m-1 for a full-rank A; otherwise (and
         * for n = 0) they are computed from A X - B. */
        bool tail = s.drv == LSQ_GELS || rank == n;
        for (int j = 0; j < k; j++) {
            double acc = 0;
            for (int i = tail ? n : 0; i < m; i++) {
                double complex r;
                if (tail) {
                    r = td__load_c128(wb + (msz(i, k) + (size_t)j) * isz, dt);
                } else {
                    r = -td__load_c128(B + (msz(i, k) + (size_t)j) * isz, dt);
                    for (int q = 0; q < n; q++)
                        r += td__load_c128(A + (msz(i, n) + (size_t)q) * isz, dt) *
                             td__load_c128(wb + (msz(q, k) + (size_t)j) * isz, dt);
                }
                acc += creal(r) * creal(r) + cimag(r) * cimag(r);
            }
            td__store_f64(pr + (msz(bi, k) + (size_t)j) * rsz, rd, acc);
        }
    }
out:
    td_free(wa);
    td_free(wb);
    td_free(sv);
    td_free(jpvt);
    td_tensor_release(ad);
    td_tensor_release(bd);
    return rc;
}

/* ---- householder_product (?orgqr / ?ungqr) ---- */

int meta_householder_product(const struct td_op_ctx *c, struct td_meta *out,
                             struct td_error *err)
{
    const char *op = "householder_product";
    const struct td_meta *a = &c->in_meta[0], *t = &c->in_meta[1];
    char b1[256], b2[256];
    int rc = check_ab(op, a, t, "A", "tau", false, false, err);
    if (rc)
        return rc;
    int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    if (m < n)
        return td_error_set(err, TD_EINVAL, "householder_product: A %s must have at least as "
                            "many rows as columns", shp(a, b1, sizeof b1));
    bool ok = t->ndim == a->ndim - 1;
    for (int i = 0; ok && i < t->ndim - 1; i++)
        ok = t->shape[i] == a->shape[i];
    if (!ok || t->shape[t->ndim - 1] > n)
        return td_error_set(err, TD_EINVAL, "householder_product: tau %s must have shape "
                            "[..., k] with A's batch dims and k <= %lld (A is %s)",
                            shp(t, b1, sizeof b1), (long long)n, shp(a, b2, sizeof b2));
    td__meta_set(out, a->dtype, a->ndim, a->shape);
    return 0;
}

int cpu_householder_product(const struct td_op_ctx *c, struct td_tensor **out,
                            struct td_error *err)
{
    struct td_tensor *o = out[0], *td = NULL;
    if (td_tensor_numel(o) == 0)
        return 0;
    struct td_tensor *t = c->inputs[1];
    int rc = td_tensor_copy(o, c->inputs[0], err);
    if (rc == 0)
        rc = td__lp_dense(t, t->ndim, t->shape, c->account, &td, err);
    if (rc)
        goto out;
    int m = (int)o->shape[o->ndim - 2], n = (int)o->shape[o->ndim - 1];
    int k = (int)t->shape[t->ndim - 1];
    int64_t nb = td_shape_numel(o->shape, o->ndim - 2);
    size_t isz = td_dtype_size(o->dtype);
    char *pa = td_tensor_data(o), *pt = td_tensor_data(td);
    for (int64_t bi = 0; bi < nb; bi++) {
        int info = td__lp_orgqr(o->dtype, m, n, k, pa, n, pt);
        if (info != 0) {
            rc = td_error_set(err, TD_EINTERNAL, "householder_product: orgqr failed (%d) at "
                              "batch element %lld", info, (long long)bi);
            goto out;
        }
        pa += msz(m, n) * isz;
        pt += (size_t)k * isz;
    }
out:
    td_tensor_release(td);
    return rc;
}
