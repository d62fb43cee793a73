/*
 * td_lapack.h - LAPACKE wrappers dispatched on a tensor dtype (float32/64, complex64/128)
 * and helpers shared by the LAPACK-backed op files. Row-major wrappers unless noted;
 * each returns LAPACK's info (0 ok, < 0 bad argument, > 0 numerical failure).
 */
#ifndef TD_LAPACK_H
#define TD_LAPACK_H

#include "td_internal.h"

int td__lp_getrf(enum td_dtype dt, int m, int n, void *a, int lda, int *ipiv);
int td__lp_getri(enum td_dtype dt, int n, void *a, int lda, const int *ipiv);
/* trans: 'N', 'T' or 'C'. */
int td__lp_getrs(enum td_dtype dt, char trans, int n, int nrhs, const void *a, int lda,
                 const int *ipiv, void *b, int ldb);
int td__lp_potrf(enum td_dtype dt, char uplo, int n, void *a, int lda);
int td__lp_geqrf(enum td_dtype dt, int m, int n, void *a, int lda, void *tau);
/* ?orgqr / ?ungqr. */
int td__lp_orgqr(enum td_dtype dt, int m, int n, int k, void *a, int lda, const void *tau);
/* Column-major ?syevd_work / ?heevd_work (lda = n) with caller workspace; lwork, lrwork
 * and liwork -1 query into work[0], rwork[0] (complex only) and iwork[0]. */
int td__lp_heevd_cm(enum td_dtype dt, char jobz, char uplo, int n, void *a, void *w,
                    void *work, int lwork, void *rwork, int lrwork, int *iwork, int liwork);
/* Column-major ?gesdd with caller workspace (lwork -1: query into work[0]); rwork is used
 * for complex dtypes only. */
int td__lp_gesdd(enum td_dtype dt, char jobz, int m, int n, void *a, int lda, void *s,
                 void *u, int ldu, void *vt, int ldvt, void *work, int lwork, void *rwork,
                 int *iwork);

/* Column-major square LU (?getrf_work, lda = n) and solve (?getrs_work, lda = ldb = n):
 * no layout copies or NaN scans. A C-order matrix is its transpose in column-major. */
int td__lp_getrf_cm(enum td_dtype dt, int n, void *a, int *ipiv);
int td__lp_getrs_cm(enum td_dtype dt, char trans, int n, int nrhs, const void *a,
                    const int *ipiv, void *b);

/* Brackets one LAPACK call on a matrix of `rows` rows: for large ones OpenBLAS runs the
 * threads td_lapack_set_threads allowed until the last such call in flight ends. Returns
 * whether it changed anything; pass that to td__lp_threads_end. */
bool td__lp_threads_begin(int64_t rows);
void td__lp_threads_end(bool began);

/* dst (cols x rows, C order) = transpose of src (rows x cols, C order). */
void td__lp_transpose(char *dst, const char *src, int rows, int cols, size_t isz);
/* True for the four LAPACK dtypes. */
bool td__lp_dtype_ok(enum td_dtype dt);
/* Checks that m is a batch of matrices (ndim >= 2) of a LAPACK dtype, square when square,
 * with dims LAPACK can index; errors name op. */
int td__lp_check_mat(const char *op, const struct td_meta *m, bool square,
                     struct td_error *err);
/* A new contiguous tensor of t's data broadcast to shape (dtype kept). */
int td__lp_dense(struct td_tensor *t, int ndim, const int64_t *shape,
                 struct td_account *account, struct td_tensor **out, struct td_error *err);
/* TD_EINVAL "<op>: <an> is <dtype> but <bn> is <dtype> (same dtype needed)" unless a and b
 * have the same dtype. */
int td__lp_same_dtype(const char *op, const struct td_meta *a, const struct td_meta *b,
                      const char *an, const char *bn, struct td_error *err);
/* torch.linalg.solve's rule: B is a batch of vectors (not matrices) when it is 1-d or when
 * its shape is A's without the last dim. */
bool td__lp_b_is_vec(const struct td_meta *a, const struct td_meta *b);
/* Meta of an op whose output 0 has the shape and dtype of its batch of square matrices a
 * (checked with td__lp_check_mat); with info, output 1 is int32 [batch] (LAPACK's info). */
int td__lp_meta_square(const char *op, const struct td_meta *a, bool info, struct td_meta *out,
                       struct td_error *err);
/* TD_ENOMEM "<op>: out of memory for LAPACK scratch". */
int td__lp_nomem(const char *op, struct td_error *err);
/* td_malloc of n elements of sz bytes (at least one byte); NULL on overflow or no memory. */
void *td__lp_alloc(size_t n, size_t sz);

/* Singular values of the batch a [..., m, n] into s (real, [..., min(m, n)], descending);
 * U and Vh into u and vh unless they are NULL (full or thin as full says). Outputs are
 * preallocated contiguous tensors of the svd op's shapes. Non-convergence is TD_EINVAL
 * naming the batch element. */
int td__lp_svd(const char *op, struct td_tensor *a, struct td_account *account,
               struct td_tensor *u, struct td_tensor *s, struct td_tensor *vh, bool full,
               struct td_error *err);
/* Cholesky factors of the batch in o (a contiguous copy of the input, factored in place):
 * potrf on the upper or lower triangle, the other zeroed. A matrix that is not
 * positive-definite is TD_EINVAL naming the batch element when check; LAPACK's info per
 * element goes into the int32 tensor info when it is not NULL (cholesky_ex). */
int td__lp_cholesky(const char *op, struct td_tensor *o, bool upper, bool check,
                    struct td_tensor *info, struct td_error *err);
/* Eigenvalues (ascending, real) of the Hermitian batch a [..., n, n], reading the uplo
 * triangle, into w; eigenvectors (columns) into v when v is not NULL. */
int td__lp_eigh(const char *op, struct td_tensor *a, char uplo, struct td_account *account,
                struct td_tensor *w, struct td_tensor *v, struct td_error *err);

#endif
