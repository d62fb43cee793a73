/*
 * lapack.c - LAPACKE dispatch by dtype and the helpers every LAPACK-backed op file shares
 * (ops_lapack.c and the other linalg files): dtype and shape checks, dense batch copies,
 * scratch allocation. Declared in td_lapack.h.
 */
#include <complex.h>
#include <pthread.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "td_blas.h"
#include "td_lapack.h"

/* ---- LAPACK dispatch by dtype (row-major, square or general matrices) ---- */

int td__lp_getrf(enum td_dtype dt, int m, int n, void *a, int lda, int *ipiv)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgetrf(LAPACK_ROW_MAJOR, m, n, a, lda, ipiv);
    case TD_FLOAT64:
        return LAPACKE_dgetrf(LAPACK_ROW_MAJOR, m, n, a, lda, ipiv);
    case TD_COMPLEX64:
        return LAPACKE_cgetrf(LAPACK_ROW_MAJOR, m, n, a, lda, ipiv);
    default:
        return LAPACKE_zgetrf(LAPACK_ROW_MAJOR, m, n, a, lda, ipiv);
    }
}

int td__lp_getri(enum td_dtype dt, int n, void *a, int lda, const int *ipiv)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgetri(LAPACK_ROW_MAJOR, n, a, lda, ipiv);
    case TD_FLOAT64:
        return LAPACKE_dgetri(LAPACK_ROW_MAJOR, n, a, lda, ipiv);
    case TD_COMPLEX64:
        return LAPACKE_cgetri(LAPACK_ROW_MAJOR, n, a, lda, ipiv);
    default:
        return LAPACKE_zgetri(LAPACK_ROW_MAJOR, n, a, lda, ipiv);
    }
}

int td__lp_getrs(enum td_dtype dt, char trans, int n, int nrhs, const void *a, int lda,
                 const int *ipiv, void *b, int ldb)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgetrs(LAPACK_ROW_MAJOR, trans, n, nrhs, a, lda, ipiv, b, ldb);
    case TD_FLOAT64:
        return LAPACKE_dgetrs(LAPACK_ROW_MAJOR, trans, n, nrhs, a, lda, ipiv, b, ldb);
    case TD_COMPLEX64:
        return LAPACKE_cgetrs(LAPACK_ROW_MAJOR, trans, n, nrhs, a, lda, ipiv, b, ldb);
    default:
        return LAPACKE_zgetrs(LAPACK_ROW_MAJOR, trans, n, nrhs, a, lda, ipiv, b, ldb);
    }
}

int td__lp_potrf(enum td_dtype dt, char uplo, int n, void *a, int lda)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_spotrf(LAPACK_ROW_MAJOR, uplo, n, a, lda);
    case TD_FLOAT64:
        return LAPACKE_dpotrf(LAPACK_ROW_MAJOR, uplo, n, a, lda);
    case TD_COMPLEX64:
        return LAPACKE_cpotrf(LAPACK_ROW_MAJOR, uplo, n, a, lda);
    default:
        return LAPACKE_zpotrf(LAPACK_ROW_MAJOR, uplo, n, a, lda);
    }
}

int td__lp_geqrf(enum td_dtype dt, int m, int n, void *a, int lda, void *tau)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, a, lda, tau);
    case TD_FLOAT64:
        return LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, n, a, lda, tau);
    case TD_COMPLEX64:
        return LAPACKE_cgeqrf(LAPACK_ROW_MAJOR, m, n, a, lda, tau);
    default:
        return LAPACKE_zgeqrf(LAPACK_ROW_MAJOR, m, n, a, lda, tau);
    }
}

int td__lp_orgqr(enum td_dtype dt, int m, int n, int k, void *a, int lda, const void *tau)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, n, k, a, lda, tau);
    case TD_FLOAT64:
        return LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, n, k, a, lda, tau);
    case TD_COMPLEX64:
        return LAPACKE_cungqr(LAPACK_ROW_MAJOR, m, n, k, a, lda, tau);
    default:
        return LAPACKE_zungqr(LAPACK_ROW_MAJOR, m, n, k, a, lda, tau);
    }
}

/* ---- shared helpers ---- */

bool td__lp_dtype_ok(enum td_dtype dt)
{
    return dt == TD_FLOAT32 || dt == TD_FLOAT64 || dt == TD_COMPLEX64 || dt == TD_COMPLEX128;
}

/* Checks that m is a batch of matrices (ndim >= 2) of a LAPACK dtype, square when square,
 * with dims LAPACK can index. */
int td__lp_check_mat(const char *op, const struct td_meta *m, bool square,
                     struct td_error *err)
{
    char buf[256];
    if (!td__lp_dtype_ok(m->dtype))
        return td_error_set(err, TD_EINVAL, "%s: dtype %s is not supported", op,
                            td_dtype_name(m->dtype));
    if (m->ndim < 2)
        return td_error_set(err, TD_EINVAL, "%s: input must have at least 2 dims, got %s", op,
                            td__shape_str(m->shape, m->ndim, buf, sizeof buf));
    int64_t r = m->shape[m->ndim - 2], cc = m->shape[m->ndim - 1];
    if (square && r != cc)
        return td_error_set(err, TD_EINVAL, "%s: matrices must be square, got %s", op,
                            td__shape_str(m->shape, m->ndim, buf, sizeof buf));
    if (r > INT_MAX / 2 || cc > INT_MAX / 2 || (r > 0 && cc > INT_MAX / r))
        return td_error_set(err, TD_ELIMIT, "%s: matrix %s is too large for LAPACK", op,
                            td__shape_str(m->shape, m->ndim, buf, sizeof buf));
    return 0;
}

/* A new contiguous tensor of t's data broadcast to shape (dtype kept). */
int td__lp_dense(struct td_tensor *t, int ndim, const int64_t *shape,
                 struct td_account *account, struct td_tensor **out, struct td_error *err)
{
    struct td_meta m;
    td__meta_set(&m, t->dtype, ndim, shape);
    return td__tensor_dense(&m, t, account, out, err);
}

int td__lp_same_dtype(const char *op, const struct td_meta *a, const struct td_meta *b,
                      const char *an, const char *bn, struct td_error *err)
{
    if (a->dtype != b->dtype)
        return td_error_set(err, TD_EINVAL, "%s: %s is %s but %s is %s (same dtype needed)", op,
                            an, td_dtype_name(a->dtype), bn, td_dtype_name(b->dtype));
    return 0;
}

bool td__lp_b_is_vec(const struct td_meta *a, const struct td_meta *b)
{
    bool vec = b->ndim == 1;
    if (!vec && b->ndim == a->ndim - 1) {
        vec = true;
        for (int i = 0; i < b->ndim; i++)
            if (b->shape[i] != a->shape[i])
                vec = false;
    }
    return vec;
}

int td__lp_meta_square(const char *op, const struct td_meta *a, bool info, struct td_meta *out,
                       struct td_error *err)
{
    int rc = td__lp_check_mat(op, a, true, err);
    if (rc)
        return rc;
    td__meta_set(&out[0], a->dtype, a->ndim, a->shape);
    if (info)
        td__meta_set(&out[1], TD_INT32, a->ndim - 2, a->shape);
    return 0;
}

int td__lp_nomem(const char *op, struct td_error *err)
{
    return td_error_set(err, TD_ENOMEM, "%s: out of memory for LAPACK scratch", op);
}

/* td_malloc of n elements of sz bytes (at least one byte). */
void *td__lp_alloc(size_t n, size_t sz)
{
    size_t bytes;
    if (!td_mul_size(n ? n : 1, sz, &bytes))
        return NULL;
    return td_malloc(bytes);
}

/* Column-major ?gesdd with caller workspace (lwork -1: query into work[0]). rwork is used
 * for complex dtypes only. */
int td__lp_gesdd(enum td_dtype dt, char jobz, int m, int n, void *a, int lda, void *s,
                 void *u, int ldu, void *vt, int ldvt, void *work, int lwork, void *rwork,
                 int *iwork)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                   work, lwork, iwork);
    case TD_FLOAT64:
        return LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                   work, lwork, iwork);
    case TD_COMPLEX64:
        return LAPACKE_cgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                   work, lwork, rwork, iwork);
    default:
        return LAPACKE_zgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, lda, s, u, ldu, vt, ldvt,
                                   work, lwork, rwork, iwork);
    }
}

/* dst (cols x rows, C order) = transpose of src (rows x cols, C order). */
void td__lp_transpose(char *dst, const char *src, int rows, int cols, size_t isz)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            memcpy(dst + ((size_t)j * (size_t)rows + (size_t)i) * isz,
                   src + ((size_t)i * (size_t)cols + (size_t)j) * isz, isz);
}

/* ---- column-major LU without LAPACKE's layout copies ---- */

int td__lp_getrf_cm(enum td_dtype dt, int n, void *a, int *ipiv)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv);
    case TD_FLOAT64:
        return LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv);
    case TD_COMPLEX64:
        return LAPACKE_cgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv);
    default:
        return LAPACKE_zgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv);
    }
}

int td__lp_getrs_cm(enum td_dtype dt, char trans, int n, int nrhs, const void *a,
                    const int *ipiv, void *b)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_sgetrs_work(LAPACK_COL_MAJOR, trans, n, nrhs, a, n, ipiv, b, n);
    case TD_FLOAT64:
        return LAPACKE_dgetrs_work(LAPACK_COL_MAJOR, trans, n, nrhs, a, n, ipiv, b, n);
    case TD_COMPLEX64:
        return LAPACKE_cgetrs_work(LAPACK_COL_MAJOR, trans, n, nrhs, a, n, ipiv, b, n);
    default:
        return LAPACKE_zgetrs_work(LAPACK_COL_MAJOR, trans, n, nrhs, a, n, ipiv, b, n);
    }
}

/* ---- OpenBLAS threads for large single factorizations ---- */

static struct {
    pthread_mutex_t mu;
    int threads;        /* td_lapack_set_threads; <= 1: never touch OpenBLAS's setting */
    int active;         /* calls inside a td__lp_threads_begin/end pair */
} lp_threads = {.mu = PTHREAD_MUTEX_INITIALIZER};

void td_lapack_set_threads(int n)
{
    pthread_mutex_lock(&lp_threads.mu);
    lp_threads.threads = n;
    pthread_mutex_unlock(&lp_threads.mu);
}

bool td__lp_threads_begin(int64_t rows)
{
    if (rows < 256)
        return false;
    pthread_mutex_lock(&lp_threads.mu);
    bool on = lp_threads.threads > 1;
    if (on && lp_threads.active++ == 0)
        openblas_set_num_threads(lp_threads.threads);
    pthread_mutex_unlock(&lp_threads.mu);
    return on;
}

void td__lp_threads_end(bool began)
{
    if (!began)
        return;
    pthread_mutex_lock(&lp_threads.mu);
    if (--lp_threads.active == 0)
        openblas_set_num_threads(1);
    pthread_mutex_unlock(&lp_threads.mu);
}

int td__lp_heevd_cm(enum td_dtype dt, char jobz, char uplo, int n, void *a, void *w,
                    void *work, int lwork, void *rwork, int lrwork, int *iwork, int liwork)
{
    switch (dt) {
    case TD_FLOAT32:
        return LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, n, w, work, lwork,
                                   iwork, liwork);
    case TD_FLOAT64:
        return LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, n, w, work, lwork,
                                   iwork, liwork);
    case TD_COMPLEX64:
        return LAPACKE_cheevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, n, w, work, lwork,
                                   rwork, lrwork, iwork, liwork);
    default:
        return LAPACKE_zheevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, n, w, work, lwork,
                                   rwork, lrwork, iwork, liwork);
    }
}
