/*
 * ops_linalg.c - matmul with NumPy's rules: a 1-d left operand gets a leading 1 and a 1-d
 * right operand a trailing 1, both removed from the result; batch dims broadcast.
 *
 * float32/float64/complex64/complex128 go to OpenBLAS ?gemm once per batch matrix. An operand
 * whose matrix has unit stride along either of its two dims is passed as it is (row-major,
 * transposed or not, with its leading dimension); only other layouts (broadcast, negative or
 * general strides) are copied into a contiguous scratch matrix. float16/bfloat16 compute in
 * float32 and round once at the end. Integers use an i-k-j triple loop accumulating in
 * 64 bits (wrapping, computed unsigned) and store into the promoted integer dtype.
 */
#include <complex.h>
#include <limits.h>
#include <string.h>

#include "td_blas.h"
#include "td_internal.h"

struct mm_shape {
    int nb;                    /* batch dims of the result */
    int64_t bshape[TD_MAX_NDIM];
    int64_t m, k, n;
    int ndim;                  /* result */
    int64_t shape[TD_MAX_NDIM];
};

static int mm_plan(const struct td_meta *a, const struct td_meta *b, struct mm_shape *s,
                   struct td_error *err)
{
    char b1[256], b2[256];
    if (a->ndim == 0 || b->ndim == 0)
        return td_error_set(err, TD_EINVAL, "matmul: input %d is 0-d (use mul for scalars)",
                            a->ndim == 0 ? 0 : 1);
    if (a->dtype == TD_BOOL || b->dtype == TD_BOOL)
        return td_error_set(err, TD_EINVAL, "matmul: bool inputs are not supported");
    int64_t ka = a->shape[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    if (ka != kb)
        return td_error_set(err, TD_EINVAL, "matmul: inner dims %lld != %lld", (long long)ka,
                            (long long)kb);
    s->k = ka;
    s->m = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    s->n = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    int abat = a->ndim > 2 ? a->ndim - 2 : 0, bbat = b->ndim > 2 ? b->ndim - 2 : 0;
    s->nb = abat > bbat ? abat : bbat;
    for (int i = 0; i < s->nb; i++) {
        int ia = i - (s->nb - abat), ib = i - (s->nb - bbat);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return td_error_set(err, TD_EINVAL,
                                "matmul: batch dims of %s and %s cannot broadcast",
                                td__shape_str(a->shape, a->ndim, b1, sizeof b1),
                                td__shape_str(b->shape, b->ndim, b2, sizeof b2));
        s->bshape[i] = da == 1 ? db : da;
    }
    s->ndim = 0;
    for (int i = 0; i < s->nb; i++)
        s->shape[s->ndim++] = s->bshape[i];
    if (a->ndim > 1)
        s->shape[s->ndim++] = s->m;
    if (b->ndim > 1)
        s->shape[s->ndim++] = s->n;
    return 0;
}

int meta_matmul(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    struct mm_shape s;
    int rc = mm_plan(&c->in_meta[0], &c->in_meta[1], &s, err);
    if (rc)
        return rc;
    const struct td_meta *ins[2] = {&c->in_meta[0], &c->in_meta[1]};
    enum td_dtype dt = td_result_type(2, ins);
    td__meta_set(out, dt, s.ndim, s.shape);
    return td__check_shape("matmul", s.shape, s.ndim, dt, err);
}

/* Matrix geometry of one operand: rows x cols with element strides, plus batch strides
 * aligned with the result's batch dims (0 where the operand broadcasts). */
struct mm_operand {
    const char *data;
    int64_t rows, cols, srow, scol;
    int64_t bstr[TD_MAX_NDIM];
};

static void mm_operand_init(const struct td_tensor *t, bool left, const struct mm_shape *s,
                            struct mm_operand *o)
{
    o->data = td_tensor_data(t);
    int nd = t->ndim;
    if (nd == 1) {
        if (left) {   /* [k] -> [1, k] */
            o->rows = 1;
            o->cols = t->shape[0];
            o->srow = 0;
            o->scol = t->strides[0];
        } else {      /* [k] -> [k, 1] */
            o->rows = t->shape[0];
            o->cols = 1;
            o->srow = t->strides[0];
            o->scol = 0;
        }
    } else {
        o->rows = t->shape[nd - 2];
        o->cols = t->shape[nd - 1];
        o->srow = t->strides[nd - 2];
        o->scol = t->strides[nd - 1];
    }
    int bat = nd > 2 ? nd - 2 : 0;
    for (int i = 0; i < s->nb; i++) {
        int j = i - (s->nb - bat);
        o->bstr[i] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j];
    }
}

/* Can BLAS read this matrix in place? Sets the transpose flag and leading dimension. Strides
 * of size-1 dims do not matter and are normalised first. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t srow, int64_t scol,
                        enum CBLAS_TRANSPOSE *tr, int *ld)
{
    int64_t minr = rows > 1 ? rows : 1, minc = cols > 1 ? cols : 1;
    if (cols == 1)
        scol = 1;
    if (rows == 1)
        srow = minc;
    if (scol == 1 && srow >= minc && srow <= INT_MAX) {
        *tr = CblasNoTrans;
        *ld = (int)srow;
        return true;
    }
    if (srow == 1 && scol >= minr && scol <= INT_MAX) {
        *tr = CblasTrans;
        *ld = (int)scol;
        return true;
    }
    return false;
}

/* Copies a strided rows x cols matrix into dst (row-major, contiguous). */
static void copy_matrix(char *dst, const char *src, int64_t rows, int64_t cols, int64_t srow,
                        int64_t scol, size_t isz)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++, dst += isz)
            memcpy(dst, src + (i * srow + j * scol) * (int64_t)isz, isz);
}

/* One BLAS call, no splitting. */
static void gemm_one(enum td_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                     const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                     void *c, int64_t ldc)
{
    enum CBLAS_TRANSPOSE A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
    switch (dt) {
    case TD_FLOAT32:
        cblas_sgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                    (float)beta, c, (int)ldc);
        break;
    case TD_FLOAT64:
        cblas_dgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb,
                    beta, c, (int)ldc);
        break;
    case TD_COMPLEX64: {
        const float complex one = 1, be = (float)beta;
        cblas_cgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, &one, a, (int)lda, b, (int)ldb,
                    &be, c, (int)ldc);
        break;
    }
    default: {
        const double complex one = 1, be = beta;
        cblas_zgemm(CblasRowMajor, A, B, (int)m, (int)n, (int)k, &one, a, (int)lda, b, (int)ldb,
                    &be, c, (int)ldc);
        break;
    }
    }
}

struct gemm_job {
    enum td_dtype dt;
    bool ta, tb, by_rows;
    int64_t m, n, k, lda, ldb, ldc;
    const char *a, *b;
    char *c;
    double beta;
    size_t isz;
};

/* Rows [r0, r1) of C (by_rows) or columns [r0, r1). Row i of op(A) starts at a + i*lda
 * (not transposed) or a + i (transposed); column j of op(B) at b + j or b + j*ldb. */
static void gemm_block(int64_t r0, int64_t r1, void *ctx)
{
    const struct gemm_job *j = ctx;
    if (j->by_rows)
        gemm_one(j->dt, j->ta, j->tb, r1 - r0, j->n, j->k,
                 j->a + (size_t)(j->ta ? r0 : r0 * j->lda) * j->isz, j->lda, j->b, j->ldb,
                 j->beta, j->c + (size_t)(r0 * j->ldc) * j->isz, j->ldc);
    else
        gemm_one(j->dt, j->ta, j->tb, j->m, r1 - r0, j->k, j->a, j->lda,
                 j->b + (size_t)(j->tb ? r0 * j->ldb : r0) * j->isz, j->ldb, j->beta,
                 j->c + (size_t)r0 * j->isz, j->ldc);
}

void td__gemm(enum td_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
              int64_t ldc)
{
    double work = (double)m * (double)n * (double)k;
    int threads = td_parallel_threads();
    if (threads < 2 || work < (double)TD__GEMM_SPLIT || (m < 2 && n < 2)) {
        gemm_one(dt, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    struct gemm_job j = {dt, ta, tb, m >= n || m >= 64, m, n, k, lda, ldb, ldc,
                         a, b, c, beta, td_dtype_size(dt)};
    int64_t extent = j.by_rows ? m : n;
    /* Blocks of at least 16 rows (BLAS kernels work in panels), one per thread at most. */
    int64_t grain = extent / threads;
    if (grain < 16)
        grain = 16;
    td__parallel_for(extent, grain, gemm_block, &j);
}

static void gemm(enum td_dtype dt, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, const void *a, int lda, const void *b, int ldb, void *c, int ldc)
{
    td__gemm(dt, ta == CblasTrans, tb == CblasTrans, m, n, k, a, lda, b, ldb, 0.0, c, ldc);
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

/* out (contiguous, dtype dt in float32/float64/complex) = a @ b, a and b of dtype dt. */
static int mm_blas(const struct mm_shape *s, const struct td_tensor *a,
                   const struct td_tensor *b, struct td_tensor *out, struct td_error *err)
{
    enum td_dtype dt = out->dtype;
    size_t isz = td_dtype_size(dt);
    struct mm_operand oa, ob;
    mm_operand_init(a, true, s, &oa);
    mm_operand_init(b, false, s, &ob);
    if (s->m > INT_MAX || s->n > INT_MAX || s->k > INT_MAX)
        return td_error_set(err, TD_ELIMIT, "matmul: a dimension exceeds the BLAS limit %d",
                            INT_MAX);
    enum CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int lda = 0, ldb = 0;
    bool da = blas_layout(oa.rows, oa.cols, oa.srow, oa.scol, &ta, &lda);
    bool db = blas_layout(ob.rows, ob.cols, ob.srow, ob.scol, &tb, &ldb);
    char *sa = NULL, *sb = NULL;
    size_t na = 0, nb = 0;
    int rc = 0;
    if (!da) {
        if (!td_mul_size((size_t)s->m * (size_t)s->k, isz, &na) || !(sa = td_malloc(na))) {
            rc = td_error_set(err, TD_ENOMEM, "matmul: out of memory for a scratch matrix");
            goto out;
        }
        ta = CblasNoTrans;
        lda = s->k > 1 ? (int)s->k : 1;
    }
    if (!db) {
        if (!td_mul_size((size_t)s->k * (size_t)s->n, isz, &nb) || !(sb = td_malloc(nb))) {
            rc = td_error_set(err, TD_ENOMEM, "matmul: out of memory for a scratch matrix");
            goto out;
        }
        tb = CblasNoTrans;
        ldb = s->n > 1 ? (int)s->n : 1;
    }
    char *op = td_tensor_data(out);
    int64_t mn = s->m * s->n;
    int64_t bidx[TD_MAX_NDIM] = {0};
    do {
        int64_t aoff = 0, boff = 0;
        for (int i = 0; i < s->nb; i++) {
            aoff += bidx[i] * oa.bstr[i];
            boff += bidx[i] * ob.bstr[i];
        }
        const char *pa = oa.data + aoff * (int64_t)isz;
        const char *pb = ob.data + boff * (int64_t)isz;
        if (!da) {
            copy_matrix(sa, pa, oa.rows, oa.cols, oa.srow, oa.scol, isz);
            pa = sa;
        }
        if (!db) {
            copy_matrix(sb, pb, ob.rows, ob.cols, ob.srow, ob.scol, isz);
            pb = sb;
        }
        gemm(dt, ta, tb, (int)s->m, (int)s->n, (int)s->k, pa, lda, pb, ldb, op,
             s->n > 1 ? (int)s->n : 1);
        op += mn * (int64_t)isz;
    } while (idx_next(bidx, s->bshape, s->nb));
out:
    td_free(sa);
    td_free(sb);
    return rc;
}

/* out (contiguous, integer dtype) = a @ b with a and b int64. */
static int mm_int(const struct mm_shape *s, const struct td_tensor *a,
                  const struct td_tensor *b, struct td_tensor *out, struct td_error *err)
{
    struct mm_operand oa, ob;
    mm_operand_init(a, true, s, &oa);
    mm_operand_init(b, false, s, &ob);
    size_t nbytes;
    if (!td_mul_size((size_t)s->n, sizeof(uint64_t), &nbytes))
        return td_error_set(err, TD_ENOMEM, "matmul: result row too large");
    uint64_t *acc = td_malloc(nbytes);
    if (!acc)
        return td_error_set(err, TD_ENOMEM, "matmul: out of memory for a row buffer");
    enum td_dtype odt = out->dtype;
    size_t osz = td_dtype_size(odt);
    char *op = td_tensor_data(out);
    const int64_t *A = (const int64_t *)(const void *)oa.data;
    const int64_t *B = (const int64_t *)(const void *)ob.data;
    int64_t bidx[TD_MAX_NDIM] = {0};
    do {
        int64_t aoff = 0, boff = 0;
        for (int i = 0; i < s->nb; i++) {
            aoff += bidx[i] * oa.bstr[i];
            boff += bidx[i] * ob.bstr[i];
        }
        for (int64_t i = 0; i < s->m; i++) {
            memset(acc, 0, nbytes);
            for (int64_t p = 0; p < s->k; p++) {
                uint64_t av = (uint64_t)A[aoff + i * oa.srow + p * oa.scol];
                if (av == 0)
                    continue;
                const int64_t *brow = B + boff + p * ob.srow;
                for (int64_t j = 0; j < s->n; j++)
                    acc[j] += av * (uint64_t)brow[j * ob.scol];
            }
            for (int64_t j = 0; j < s->n; j++, op += osz)
                td__store_i64(op, odt, (int64_t)acc[j]);
        }
    } while (idx_next(bidx, s->bshape, s->nb));
    td_free(acc);
    return 0;
}

int cpu_matmul(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0], *a = NULL, *b = NULL, *tmp = NULL;
    struct mm_shape s;
    struct td_meta ma, mb;
    td_tensor_meta(c->inputs[0], &ma);
    td_tensor_meta(c->inputs[1], &mb);
    int rc = mm_plan(&ma, &mb, &s, err);
    if (rc)
        return rc;
    if (td_tensor_numel(o) == 0)
        return 0;
    if (s.k == 0) {
        memset(td_tensor_data(o), 0, td_tensor_nbytes(o));
        return 0;
    }
    enum td_dtype dt = o->dtype;
    bool integral = td_dtype_is_integral(dt, false);
    enum td_dtype cdt = integral ? TD_INT64
                        : (dt == TD_FLOAT16 || dt == TD_BFLOAT16) ? TD_FLOAT32
                                                                  : dt;
    rc = td__as_dtype(c->inputs[0], cdt, c->account, &a, err);
    if (rc)
        goto out;
    rc = td__as_dtype(c->inputs[1], cdt, c->account, &b, err);
    if (rc)
        goto out;
    if (integral) {
        rc = mm_int(&s, a, b, o, err);
        goto out;
    }
    if (cdt == dt) {
        rc = mm_blas(&s, a, b, o, err);
        goto out;
    }
    struct td_meta mt;
    td_tensor_meta(o, &mt);
    mt.dtype = cdt;
    rc = td_tensor_new(&mt, false, c->account, &tmp, err);
    if (rc)
        goto out;
    rc = mm_blas(&s, a, b, tmp, err);
    if (rc)
        goto out;
    rc = td_tensor_copy(o, tmp, err);
out:
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(tmp);
    return rc;
}
