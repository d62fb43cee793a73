/*
 * ops_contract.c - contractions and matrix functions of shape: einsum, outer, cross, vecdot,
 * multi_dot, diagonal, trace, matrix_power, tensorsolve, tensorinv.
 *
 * einsum follows numpy.einsum / torch.einsum: explicit ("ij,jk->ik") and implicit ("ij,jk":
 * the letters appearing once, sorted) output, one "..." per operand whose dims broadcast
 * right-aligned, size-1 broadcasting of lettered dims, repeated letters in one operand
 * (diagonals), letters summed away, spaces ignored; an explicit output without "..." sums
 * the ellipsis dims (NumPy refuses that equation). It computes by
 *  1. a strided view of every operand with one dim per distinct letter (a repeated letter
 *     takes the sum of its strides, a broadcast dim stride 0), converted to the compute
 *     dtype (int64 for integers, float32 for half precision);
 *  2. summing each letter that neither the output nor another operand has;
 *  3. contracting two operands at a time, greedily the pair whose result is smallest (the
 *     "greedy" order of numpy.einsum_path; left to right beyond 32 operands): letters of
 *     both operands that are still needed are batch dims, the others are contracted, so
 *     each step is a batch of GEMMs
 *     [batch, m, k] x [batch, k, n] run by td__gemm (BLAS) for float and complex and by a
 *     64-bit wrapping loop for integers. An operand already laid out as a (possibly
 *     transposed) batch of matrices is passed as it is; otherwise it is copied once;
 *  4. a permuted copy into the output (skipped when the last GEMM already wrote it).
 * outer and vecdot run through the same code with fixed equations; multi_dot picks the
 * cheapest parenthesisation by the classic O(n^3) dynamic programme (Cormen et al.,
 * "Introduction to Algorithms", 15.2) and multiplies with matmul. matrix_power squares
 * repeatedly (Knuth, TAOCP vol. 2, 4.6.3); negative powers invert with LAPACK getrf/getri.
 * tensorsolve and tensorinv reshape to one square system (numpy.linalg semantics) solved with
 * getrf/getrs and getri.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "td_derivatives.h"
#include "td_lapack.h"

/* ---------------------------------------------------------------------------------------
 * Small helpers.
 */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Compute dtype of a result of dtype dt: int64 for integers, float32 for half precision. */
static enum td_dtype compute_dtype(enum td_dtype dt)
{
    if (td_dtype_is_integral(dt, true))
        return TD_INT64;
    if (dt == TD_FLOAT16 || dt == TD_BFLOAT16)
        return TD_FLOAT32;
    return dt;
}

static struct td_attr_arg ints_attr(const char *name, int n, const int64_t *v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_INTS;
    a.value.nints = n;
    for (int i = 0; i < n; i++)
        a.value.ints[i] = v[i];
    return a;
}

/* sum of t over dims[0..n) (no keepdim) into a new tensor. */
static int sum_dims(struct td_tensor *t, int n, const int64_t *dims, struct td_account *account,
                    struct td_tensor **out, struct td_error *err)
{
    struct td_attr_arg a = ints_attr("dim", n, dims);
    return td_op_call(TD_OP_sum, 1, &t, 1, &a, 1, out, NULL, account, err);
}

static int matmul_call(struct td_tensor *a, struct td_tensor *b, struct td_account *account,
                       struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *in[2] = {a, b};
    return td_op_call(TD_OP_matmul, 2, in, 0, NULL, 1, out, NULL, account, err);
}

/* ---------------------------------------------------------------------------------------
 * einsum equations.
 */

static char lab_char(int l)
{
    return l < 26 ? (char)('A' + l) : l < 52 ? (char)('a' + l - 26) : '.';
}

static int lab_of(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return 26 + ch - 'a';
    return -1;
}

static int bad_char(const char *op, char ch, struct td_error *err)
{
    unsigned char u = (unsigned char)ch;
    if (u > 32 && u < 127)
        return td_error_set(err, TD_EINVAL,
                            "%s: invalid character '%c' in the equation (subscripts are the "
                            "letters a-z and A-Z, '...', ',' and '->')", op, ch);
    return td_error_set(err, TD_EINVAL, "%s: invalid character (code %u) in the equation", op,
                        (unsigned)u);
}

/* Parses one term [s, e) into labels: letters, and the ellipsis as TD_MAX_NDIM - nell ..
 * TD_MAX_NDIM - 1 offset by 52 where nell = ndim - letters (ndim < 0: output, nell given).
 * Returns the label count in *n, or an error. */
static int parse_term(const char *op, const char *s, const char *e, int ndim, int out_ell,
                      int k, int8_t *lab, int *n, struct td_error *err)
{
    int nl = 0;
    bool ell = false;
    for (const char *p = s; p < e; p++) {
        if (*p == '.') {
            if (e - p < 3 || p[1] != '.' || p[2] != '.')
                return td_error_set(err, TD_EINVAL, "%s: '.' must be part of an ellipsis '...'",
                                    op);
            if (ell)
                return td_error_set(err, TD_EINVAL, "%s: %s %d has more than one ellipsis",
                                    op, ndim < 0 ? "output" : "operand", ndim < 0 ? 0 : k);
            ell = true;
            p += 2;
            continue;
        }
        if (lab_of(*p) < 0)
            return bad_char(op, *p, err);
        nl++;
    }
    int nell = 0;
    if (ndim >= 0) {
        if (ell ? nl > ndim : nl != ndim)
            return td_error_set(err, TD_EINVAL,
                                "%s: operand %d has %d dims but its subscripts '%.*s' give %s%d",
                                op, k, ndim, (int)(e - s), s, ell ? "at least " : "", nl);
        nell = ndim - nl;
    } else {
        if (nl + (ell ? out_ell : 0) > TD_MAX_NDIM)
            return td_error_set(err, TD_EINVAL, "%s: output has more than %d dims", op,
                                TD_MAX_NDIM);
        nell = ell ? out_ell : 0;
    }
    int m = 0;
    for (const char *p = s; p < e; p++) {
        if (*p == '.') {
            for (int t = 0; t < nell; t++)
                lab[m++] = (int8_t)(52 + TD_MAX_NDIM - nell + t);
            p += 2;
            continue;
        }
        lab[m++] = (int8_t)lab_of(*p);
    }
    *n = m;
    return 0;
}

int td__einsum_parse(const char *eq, int nin, const struct td_meta *in,
                     struct td__ein_term *terms, struct td__ein_term *outt, int64_t *size,
                     struct td_error *err)
{
    const char *op = "einsum";
    char buf[1024];
    size_t n = 0;
    if (!eq)
        return td_error_set(err, TD_EINVAL, "%s: the equation is missing", op);
    for (const char *p = eq; *p; p++) {
        if (*p == ' ')
            continue;
        if (n + 1 >= sizeof buf)
            return td_error_set(err, TD_EINVAL, "%s: equation longer than %zu characters", op,
                                sizeof buf - 1);
        buf[n++] = *p;
    }
    buf[n] = 0;
    char *arrow = strstr(buf, "->");
    const char *rhs = NULL;
    if (arrow) {
        *arrow = 0;
        rhs = arrow + 2;
        if (strchr(rhs, '-') || strchr(rhs, '>'))
            return td_error_set(err, TD_EINVAL, "%s: the equation has more than one '->'", op);
        if (strchr(rhs, ','))
            return td_error_set(err, TD_EINVAL, "%s: the output subscripts may not contain ','",
                                op);
    }
    int nterms = 1;
    for (const char *p = buf; *p; p++) {
        if (*p == ',')
            nterms++;
        else if (*p == '-' || *p == '>')
            return td_error_set(err, TD_EINVAL, "%s: misplaced '%c' in the equation", op, *p);
    }
    if (nterms != nin)
        return td_error_set(err, TD_EINVAL,
                            "%s: the equation names %d operand%s but %d input%s given", op,
                            nterms, nterms == 1 ? "" : "s", nin, nin == 1 ? " was" : "s were");
    for (int l = 0; l < TD__EIN_NLAB; l++)
        size[l] = -1;
    const char *s = buf;
    int maxell = 0;
    for (int k = 0; k < nin; k++) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        int rc = parse_term(op, s, e, in[k].ndim, 0, k, terms[k].lab, &terms[k].n, err);
        if (rc)
            return rc;
        for (int d = 0; d < terms[k].n; d++) {
            int l = terms[k].lab[d];
            int64_t sz = in[k].shape[d];
            if (l >= 52 && TD_MAX_NDIM - (l - 52) > maxell)
                maxell = TD_MAX_NDIM - (l - 52);
            for (int d2 = 0; d2 < d; d2++)
                if (terms[k].lab[d2] == l && in[k].shape[d2] != sz)
                    return td_error_set(err, TD_EINVAL,
                                        "%s: subscript '%c' is repeated in operand %d with "
                                        "sizes %lld and %lld", op, lab_char(l), k,
                                        (long long)in[k].shape[d2], (long long)sz);
            if (size[l] < 0 || size[l] == 1)
                size[l] = sz;
            else if (sz != size[l] && sz != 1) {
                if (l >= 52)
                    return td_error_set(err, TD_EINVAL,
                                        "%s: the ellipsis dims of operand %d (size %lld) do "
                                        "not broadcast with the others (size %lld)", op, k,
                                        (long long)sz, (long long)size[l]);
                return td_error_set(err, TD_EINVAL,
                                    "%s: operand %d has size %lld for subscript '%c' but an "
                                    "earlier operand has %lld", op, k, (long long)sz,
                                    lab_char(l), (long long)size[l]);
            }
        }
        s = *e ? e + 1 : e;
    }
    if (rhs) {
        int rc = parse_term(op, rhs, rhs + strlen(rhs), -1, maxell, 0, outt->lab, &outt->n,
                            err);
        if (rc)
            return rc;
        for (int d = 0; d < outt->n; d++) {
            int l = outt->lab[d];
            if (size[l] < 0)
                return td_error_set(err, TD_EINVAL,
                                    "%s: output subscript '%c' does not appear in the inputs",
                                    op, lab_char(l));
            for (int d2 = 0; d2 < d; d2++)
                if (outt->lab[d2] == l)
                    return td_error_set(err, TD_EINVAL,
                                        "%s: output subscript '%c' appears more than once", op,
                                        lab_char(l));
        }
        return 0;
    }
    /* Implicit output: the ellipsis dims, then the letters seen exactly once, sorted. */
    int count[TD__EIN_NLAB] = {0};
    for (int k = 0; k < nin; k++)
        for (int d = 0; d < terms[k].n; d++)
            count[terms[k].lab[d]]++;
    int m = 0;
    for (int t = 0; t < maxell; t++)
        outt->lab[m++] = (int8_t)(52 + TD_MAX_NDIM - maxell + t);
    for (int l = 0; l < 52; l++)
        if (count[l] == 1) {
            if (m == TD_MAX_NDIM)
                return td_error_set(err, TD_EINVAL, "%s: output has more than %d dims", op,
                                    TD_MAX_NDIM);
            outt->lab[m++] = (int8_t)l;
        }
    outt->n = m;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * einsum execution.
 */

/* An operand during contraction: tensor of the compute dtype, one dim per distinct label. */
struct eop {
    struct td_tensor *t;
    int n;
    int lab[TD_MAX_NDIM];
};

static bool has_lab(const int *labs, int n, int l)
{
    for (int i = 0; i < n; i++)
        if (labs[i] == l)
            return true;
    return false;
}

/* Collapses dims[0..nd) of t into one (count, stride) when their strides nest. */
static bool group_of(const struct td_tensor *t, const int *dims, int nd, int64_t *count,
                     int64_t *stride)
{
    int64_t cnt = 1, st = 1, prev_st = 0;
    bool any = false;
    for (int i = 0; i < nd; i++) {
        int64_t sz = t->shape[dims[i]];
        cnt *= sz;
        if (sz == 1)
            continue;
        if (any && prev_st != t->strides[dims[i]] * sz)
            return false;
        prev_st = t->strides[dims[i]];
        st = prev_st;
        any = true;
    }
    *count = cnt;
    *stride = st;
    return true;
}

/* A rows x cols matrix with element strides (srow, scol) as a row-major BLAS operand, maybe
 * transposed. Returns false when BLAS cannot read it in place. */
static bool blas_mat(int64_t rows, int64_t cols, int64_t srow, int64_t scol, bool *trans,
                     int64_t *ld)
{
    if (cols <= 1 || scol == 1) {
        int64_t l = rows <= 1 ? max64(cols, 1) : srow;
        if (l >= max64(cols, 1) && l <= INT_MAX) {
            *trans = false;
            *ld = l;
            return true;
        }
    }
    if (rows <= 1 || srow == 1) {
        int64_t l = cols <= 1 ? max64(rows, 1) : scol;
        if (l >= max64(rows, 1) && l <= INT_MAX) {
            *trans = true;
            *ld = l;
            return true;
        }
    }
    return false;
}

/* The geometry of one GEMM operand: batch, rows, cols groups of dims of t. */
struct gop {
    struct td_tensor *t;   /* owned: t itself or a contiguous copy */
    int64_t nb, rows, cols, sb, sr, sc;
    bool trans;
    int64_t ld;
};

/* Lays operand t (dims bd | rd | cd) out for GEMM: in place when strides allow (for BLAS: a
 * unit stride on rows or cols), else as a contiguous copy. */
static int gop_init(struct td_tensor *t, const int *bd, int nbd, const int *rd, int nrd,
                    const int *cd, int ncd, bool blas, struct td_account *account,
                    struct gop *g, struct td_error *err)
{
    bool ok = group_of(t, bd, nbd, &g->nb, &g->sb) && group_of(t, rd, nrd, &g->rows, &g->sr) &&
              group_of(t, cd, ncd, &g->cols, &g->sc);
    if (ok && blas)
        ok = blas_mat(g->rows, g->cols, g->sr, g->sc, &g->trans, &g->ld);
    if (ok) {
        g->t = td_tensor_retain(t);
        return 0;
    }
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    int nd = 0;
    for (int i = 0; i < nbd; i++, nd++) {
        shape[nd] = t->shape[bd[i]];
        strides[nd] = t->strides[bd[i]];
    }
    for (int i = 0; i < nrd; i++, nd++) {
        shape[nd] = t->shape[rd[i]];
        strides[nd] = t->strides[rd[i]];
    }
    for (int i = 0; i < ncd; i++, nd++) {
        shape[nd] = t->shape[cd[i]];
        strides[nd] = t->strides[cd[i]];
    }
    struct td_tensor *v = NULL;
    int rc = td_tensor_new_view(t, nd, shape, strides, t->offset, &v, err);
    if (rc)
        return rc;
    rc = td_tensor_contiguous(v, account, &g->t, err);
    td_tensor_release(v);
    if (rc)
        return rc;
    g->nb = 1;
    for (int i = 0; i < nbd; i++)
        g->nb *= shape[i];
    g->rows = 1;
    for (int i = nbd; i < nbd + nrd; i++)
        g->rows *= shape[i];
    g->cols = 1;
    for (int i = nbd + nrd; i < nd; i++)
        g->cols *= shape[i];
    g->sb = g->rows * g->cols;
    g->sr = g->cols;
    g->sc = 1;
    g->trans = false;
    g->ld = max64(g->cols, 1);
    return 0;
}

/* C[b] = A[b] @ B[b] for int64 (wrapping, computed unsigned). */
static void gemm_int(const struct gop *a, const struct gop *b, int64_t nb, int64_t m, int64_t n,
                     int64_t k, int64_t *c)
{
    const int64_t *pa = td_tensor_data(a->t), *pb = td_tensor_data(b->t);
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t i = 0; i < m; i++) {
            uint64_t *row = (uint64_t *)(c + (bi * m + i) * n);
            for (int64_t j = 0; j < n; j++)
                row[j] = 0;
            for (int64_t p = 0; p < k; p++) {
                uint64_t av = (uint64_t)pa[bi * a->sb + i * a->sr + p * a->sc];
                if (av == 0)
                    continue;
                const int64_t *bp = pb + bi * b->sb + p * b->sr;
                for (int64_t j = 0; j < n; j++)
                    row[j] += av * (uint64_t)bp[j * b->sc];
            }
        }
}

/* Contracts x and y into *res (labels batch | x-only | y-only), keeping the labels in
 * keep[]. dst (may be NULL) is used as the result when its dtype and label order fit. */
static int contract(const struct eop *x, const struct eop *y, const bool *keep,
                    const int64_t *size, struct td_tensor *dst, const struct td__ein_term *ot,
                    struct td_account *account, struct eop *res, bool *wrote_dst,
                    struct td_error *err)
{
    int xb[TD_MAX_NDIM], yb[TD_MAX_NDIM], xm[TD_MAX_NDIM], xk[TD_MAX_NDIM], yk[TD_MAX_NDIM];
    int yn[TD_MAX_NDIM];
    int nb = 0, nm = 0, nk = 0, nn = 0;
    int rlab[2 * TD_MAX_NDIM];
    int nr = 0;
    int64_t rshape[2 * TD_MAX_NDIM];
    for (int i = 0; i < x->n; i++) {
        int l = x->lab[i];
        int j = 0;
        while (j < y->n && y->lab[j] != l)
            j++;
        if (j < y->n && keep[l]) {
            xb[nb] = i;
            yb[nb++] = j;
        } else if (j < y->n) {
            xk[nk] = i;
            yk[nk++] = j;
        } else {
            xm[nm++] = i;
        }
    }
    for (int j = 0; j < y->n; j++)
        if (!has_lab(x->lab, x->n, y->lab[j]))
            yn[nn++] = j;
    for (int i = 0; i < nb; i++)
        rlab[nr++] = x->lab[xb[i]];
    for (int i = 0; i < nm; i++)
        rlab[nr++] = x->lab[xm[i]];
    for (int i = 0; i < nn; i++)
        rlab[nr++] = y->lab[yn[i]];
    if (nr > TD_MAX_NDIM)
        return td_error_set(err, TD_EINVAL,
                            "einsum: an intermediate result would have %d dims (at most %d); "
                            "reorder the operands", nr, TD_MAX_NDIM);
    for (int i = 0; i < nr; i++)
        rshape[i] = size[rlab[i]];
    enum td_dtype cdt = x->t->dtype;
    bool blas = cdt != TD_INT64;
    struct gop ga = {0}, gb = {0};
    struct td_tensor *r = NULL;
    int rc = 0;
    bool use_dst = dst && dst->dtype == cdt && ot->n == nr;
    for (int i = 0; use_dst && i < nr; i++)
        use_dst = ot->lab[i] == rlab[i];
    if (use_dst) {
        r = td_tensor_retain(dst);
    } else {
        struct td_meta m;
        td__meta_set(&m, cdt, nr, rshape);
        if ((rc = td_tensor_new(&m, false, account, &r, err)) != 0)
            goto out;
    }
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < nb; i++)
        B *= size[x->lab[xb[i]]];
    for (int i = 0; i < nm; i++)
        M *= size[x->lab[xm[i]]];
    for (int i = 0; i < nn; i++)
        N *= size[y->lab[yn[i]]];
    for (int i = 0; i < nk; i++)
        K *= size[x->lab[xk[i]]];
    size_t isz = td_dtype_size(cdt);
    if (B * M * N == 0)
        goto done;
    if (K == 0) {
        memset(td_tensor_data(r), 0, (size_t)(B * M * N) * isz);
        goto done;
    }
    if (blas && (M > INT_MAX || N > INT_MAX || K > INT_MAX)) {
        rc = td_error_set(err, TD_ELIMIT, "einsum: a dimension exceeds the BLAS limit %d",
                          INT_MAX);
        goto out;
    }
    if ((rc = gop_init(x->t, xb, nb, xm, nm, xk, nk, blas, account, &ga, err)) != 0 ||
        (rc = gop_init(y->t, yb, nb, yk, nk, yn, nn, blas, account, &gb, err)) != 0)
        goto out;
    char *pc = td_tensor_data(r);
    if (!blas) {
        gemm_int(&ga, &gb, B, M, N, K, (int64_t *)(void *)pc);
        goto done;
    }
    const char *pa = td_tensor_data(ga.t), *pb = td_tensor_data(gb.t);
    for (int64_t bi = 0; bi < B; bi++)
        td__gemm(cdt, ga.trans, gb.trans, M, N, K, pa + (size_t)(bi * ga.sb) * isz, ga.ld,
                 pb + (size_t)(bi * gb.sb) * isz, gb.ld, 0.0, pc + (size_t)(bi * M * N) * isz,
                 max64(N, 1));
done:
    res->t = r;
    r = NULL;
    res->n = nr;
    for (int i = 0; i < nr; i++)
        res->lab[i] = rlab[i];
    *wrote_dst = use_dst;
out:
    td_tensor_release(r);
    td_tensor_release(ga.t);
    td_tensor_release(gb.t);
    return rc;
}

/* Sums the labels of o that keep[] does not hold (in place: o->t replaced). */
static int presum(struct eop *o, const bool *keep, struct td_account *account,
                  struct td_error *err)
{
    int64_t dims[TD_MAX_NDIM];
    int nd = 0, m = 0;
    for (int i = 0; i < o->n; i++) {
        if (keep[o->lab[i]])
            o->lab[m++] = o->lab[i];
        else
            dims[nd++] = i;
    }
    if (nd == 0)
        return 0;
    struct td_tensor *r = NULL;
    int rc = sum_dims(o->t, nd, dims, account, &r, err);
    if (rc)
        return rc;
    td_tensor_release(o->t);
    o->t = r;
    o->n = m;
    return 0;
}

/* Which labels are needed beyond operands i and j (j < 0: beyond i alone). */
static void needed(const struct eop *ops, int nops, int i, int j, const struct td__ein_term *ot,
                   bool *keep)
{
    memset(keep, 0, sizeof(bool) * TD__EIN_NLAB);
    for (int d = 0; d < ot->n; d++)
        keep[ot->lab[d]] = true;
    for (int k = 0; k < nops; k++)
        if (k != i && k != j)
            for (int d = 0; d < ops[k].n; d++)
                keep[ops[k].lab[d]] = true;
}

#define EIN_GREEDY_MAX 32

/* out = einsum over the parsed terms of in[0..nin) (any dtypes; out's dtype is the result). */
static int ein_exec(int nin, struct td_tensor *const *in, const struct td__ein_term *terms,
                    const struct td__ein_term *ot, const int64_t *size, struct td_tensor *out,
                    struct td_account *account, struct td_error *err)
{
    if (td_tensor_numel(out) == 0)
        return 0;
    enum td_dtype cdt = compute_dtype(out->dtype);
    struct eop *ops = td_calloc((size_t)nin, sizeof *ops);
    if (!ops)
        return td_error_set(err, TD_ENOMEM, "einsum: out of memory");
    int nops = 0, rc = 0;
    bool keep[TD__EIN_NLAB];
    bool wrote = false;
    struct td_tensor *fin = NULL;
    for (int k = 0; k < nin; k++, nops++) {
        struct td_tensor *t = NULL;
        if ((rc = td__as_dtype(in[k], cdt, account, &t, err)) != 0)
            goto out;
        int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
        struct eop *o = &ops[k];
        o->n = 0;
        for (int d = 0; d < terms[k].n; d++) {
            int l = terms[k].lab[d];
            int64_t st = (t->shape[d] == 1 && size[l] != 1) ? 0 : t->strides[d];
            int u = 0;
            while (u < o->n && o->lab[u] != l)
                u++;
            if (u == o->n) {
                o->lab[o->n] = l;
                shape[o->n] = size[l];
                strides[o->n++] = st;
            } else {
                strides[u] += st;
            }
        }
        rc = td_tensor_new_view(t, o->n, shape, strides, t->offset, &o->t, err);
        td_tensor_release(t);
        if (rc)
            goto out;
    }
    for (int k = 0; k < nops; k++) {
        needed(ops, nops, k, -1, ot, keep);
        if ((rc = presum(&ops[k], keep, account, err)) != 0)
            goto out;
    }
    while (nops > 1) {
        int bi = 0, bj = 1;
        double best = -1;
        /* The greedy search costs O(nops^3) per step: long chains go left to right. */
        for (int i = 0; i < nops && nops <= EIN_GREEDY_MAX; i++)
            for (int j = i + 1; j < nops; j++) {
                needed(ops, nops, i, j, ot, keep);
                double sz = 1;
                for (int l = 0; l < TD__EIN_NLAB; l++)
                    if (keep[l] && (has_lab(ops[i].lab, ops[i].n, l) ||
                                    has_lab(ops[j].lab, ops[j].n, l)))
                        sz *= (double)size[l];
                if (best < 0 || sz < best) {
                    best = sz;
                    bi = i;
                    bj = j;
                }
            }
        needed(ops, nops, bi, bj, ot, keep);
        struct eop r;
        rc = contract(&ops[bi], &ops[bj], keep, size, nops == 2 ? out : NULL, ot, account, &r,
                      &wrote, err);
        if (rc)
            goto out;
        td_tensor_release(ops[bi].t);
        td_tensor_release(ops[bj].t);
        ops[bi] = r;
        for (int k = bj; k + 1 < nops; k++)
            ops[k] = ops[k + 1];
        ops[--nops].t = NULL;
    }
    if (wrote)
        goto out;
    /* Every label left is an output label: copy in the output's order. */
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    for (int d = 0; d < ot->n; d++) {
        int u = 0;
        while (u < ops[0].n && ops[0].lab[u] != ot->lab[d])
            u++;
        if (u == ops[0].n) {
            rc = td_error_set(err, TD_EINTERNAL, "einsum: output label lost");
            goto out;
        }
        shape[d] = ops[0].t->shape[u];
        strides[d] = ops[0].t->strides[u];
    }
    if ((rc = td_tensor_new_view(ops[0].t, ot->n, shape, strides, ops[0].t->offset, &fin,
                                 err)) != 0)
        goto out;
    rc = td_tensor_copy(out, fin, err);
out:
    td_tensor_release(fin);
    for (int k = 0; k < nops; k++)
        td_tensor_release(ops[k].t);
    td_free(ops);
    return rc;
}

/* Parses eq for metas in[] (allocating the terms) and runs meta or compute. */
static int ein_run(const char *eq, int nin, const struct td_meta *in_meta,
                   struct td_tensor *const *in, enum td_dtype dt, struct td_meta *out_meta,
                   struct td_tensor *out, struct td_account *account, struct td_error *err)
{
    struct td__ein_term *terms = td_calloc((size_t)(nin > 0 ? nin : 1), sizeof *terms);
    struct td__ein_term ot;
    int64_t size[TD__EIN_NLAB];
    if (!terms)
        return td_error_set(err, TD_ENOMEM, "einsum: out of memory");
    int rc = td__einsum_parse(eq, nin, in_meta, terms, &ot, size, err);
    if (rc)
        goto out;
    if (out_meta) {
        int64_t shape[TD_MAX_NDIM];
        for (int d = 0; d < ot.n; d++)
            shape[d] = size[ot.lab[d]];
        td__meta_set(out_meta, dt, ot.n, shape);
        rc = td__check_shape("einsum", shape, ot.n, dt, err);
    }
    if (!rc && out)
        rc = ein_exec(nin, in, terms, &ot, size, out, account, err);
out:
    td_free(terms);
    return rc;
}

static enum td_dtype result_type_of(const struct td_op_ctx *c)
{
    const struct td_meta *ins[TD_ITER_MAX];
    if (c->ninputs <= TD_ITER_MAX) {
        for (int i = 0; i < c->ninputs; i++)
            ins[i] = &c->in_meta[i];
        return td_result_type(c->ninputs, ins);
    }
    enum td_dtype dt = c->in_meta[0].dtype;
    for (int i = 1; i < c->ninputs; i++)
        dt = td_promote_types(dt, c->in_meta[i].dtype);
    return dt;
}

int meta_einsum(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return ein_run(td_arg_str(c, "equation"), c->ninputs, c->in_meta, NULL, result_type_of(c),
                   out, NULL, NULL, err);
}

int cpu_einsum(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return ein_run(td_arg_str(c, "equation"), c->ninputs, c->in_meta, c->inputs, out[0]->dtype,
                   NULL, out[0], c->account, err);
}

/* ---- outer ---- */

int meta_outer(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    if (a->ndim != 1 || b->ndim != 1)
        return td_error_set(err, TD_EINVAL, "outer: inputs must be 1-d (got %d-d and %d-d)",
                            a->ndim, b->ndim);
    int64_t shape[2] = {a->shape[0], b->shape[0]};
    enum td_dtype dt = result_type_of(c);
    td__meta_set(out, dt, 2, shape);
    return td__check_shape("outer", shape, 2, dt, err);
}

int cpu_outer(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return ein_run("i,j->ij", 2, c->in_meta, c->inputs, out[0]->dtype, NULL, out[0],
                   c->account, err);
}

/* ---- vecdot and cross: broadcasting with a dim ---- */

/* Broadcast shape of the two inputs and dim normalised against it. */
static int bcast_dim(const char *op, const struct td_op_ctx *c, int *ndim, int64_t *shape,
                     int *dim, struct td_error *err)
{
    const struct td_meta *ins[2] = {&c->in_meta[0], &c->in_meta[1]};
    int rc = td_broadcast_shapes(op, 2, ins, ndim, shape, err);
    if (rc)
        return rc;
    if (*ndim == 0)
        return td_error_set(err, TD_EINVAL, "%s: inputs must have at least 1 dim", op);
    return td__norm_dim(op, td_arg_int(c, "dim"), *ndim, dim, err);
}

/* Letters for the broadcast dims of an input of ndim dims among nd. */
static void bc_letters(int nd, int ndim, int skip_dim, char *dst, char dimch)
{
    int m = 0;
    for (int d = nd - ndim; d < nd; d++)
        dst[m++] = d == skip_dim ? dimch : (char)('a' + d);
    dst[m] = 0;
}

int meta_vecdot(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int nd, dim;
    int64_t shape[TD_MAX_NDIM];
    int rc = bcast_dim("vecdot", c, &nd, shape, &dim, err);
    if (rc)
        return rc;
    for (int d = dim; d + 1 < nd; d++)
        shape[d] = shape[d + 1];
    td__meta_set(out, result_type_of(c), nd - 1, shape);
    return 0;
}

int cpu_vecdot(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int nd, dim;
    int64_t shape[TD_MAX_NDIM];
    int rc = bcast_dim("vecdot", c, &nd, shape, &dim, err);
    if (rc)
        return rc;
    char eq[3 * TD_MAX_NDIM + 8], ta[TD_MAX_NDIM + 1], tb[TD_MAX_NDIM + 1], to[TD_MAX_NDIM + 1];
    bc_letters(nd, c->in_meta[0].ndim, dim, ta, 'z');
    bc_letters(nd, c->in_meta[1].ndim, dim, tb, 'z');
    bc_letters(nd, nd, dim, to, 'z');
    char *z = strchr(to, 'z');
    memmove(z, z + 1, strlen(z));
    snprintf(eq, sizeof eq, "%s,%s->%s", ta, tb, to);
    struct td_tensor *in[2] = {c->inputs[0], c->inputs[1]};
    struct td_tensor *cj = NULL;
    if (td_dtype_is_complex(in[0]->dtype)) {
        if ((rc = td_op_call(TD_OP_conj, 1, in, 0, NULL, 1, &cj, NULL, c->account, err)) != 0)
            return rc;
        in[0] = cj;
    }
    rc = ein_run(eq, 2, c->in_meta, in, out[0]->dtype, NULL, out[0], c->account, err);
    td_tensor_release(cj);
    return rc;
}

int meta_cross(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int nd, dim;
    int64_t shape[TD_MAX_NDIM];
    int rc = bcast_dim("cross", c, &nd, shape, &dim, err);
    if (rc)
        return rc;
    for (int i = 0; i < 2; i++) {
        const struct td_meta *m = &c->in_meta[i];
        int d = dim - (nd - m->ndim);
        int64_t sz = d >= 0 ? m->shape[d] : 1;
        if (sz != 3)
            return td_error_set(err, TD_EINVAL,
                                "cross: input %d has size %lld along dim %d (must be 3)", i,
                                (long long)sz, dim);
    }
    td__meta_set(out, result_type_of(c), nd, shape);
    return 0;
}

/* Element strides (bytes) of t broadcast to shape[0..nd). */
static void bstrides(const struct td_tensor *t, int nd, const int64_t *shape, int64_t *st)
{
    size_t isz = td_dtype_size(t->dtype);
    for (int d = 0; d < nd; d++) {
        int td = d - (nd - t->ndim);
        st[d] = (td < 0 || (t->shape[td] == 1 && shape[d] != 1)) ? 0
                                                                  : t->strides[td] * (int64_t)isz;
    }
}

int cpu_cross(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0], *a = c->inputs[0], *b = c->inputs[1];
    int nd, dim;
    int64_t shape[TD_MAX_NDIM];
    int rc = bcast_dim("cross", c, &nd, shape, &dim, err);
    if (rc || td_tensor_numel(o) == 0)
        return rc;
    int64_t sa[TD_MAX_NDIM], sb[TD_MAX_NDIM], so[TD_MAX_NDIM];
    bstrides(a, nd, shape, sa);
    bstrides(b, nd, shape, sb);
    bstrides(o, nd, shape, so);
    const char *pa0 = td_tensor_data(a), *pb0 = td_tensor_data(b);
    char *po0 = td_tensor_data(o);
    bool integral = td_dtype_is_integral(o->dtype, true);
    int64_t idx[TD_MAX_NDIM] = {0};
    int64_t iter_shape[TD_MAX_NDIM];
    memcpy(iter_shape, shape, sizeof iter_shape);
    iter_shape[dim] = 1;
    for (;;) {
        int64_t oa = 0, ob = 0, oo = 0;
        for (int d = 0; d < nd; d++) {
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
            oo += idx[d] * so[d];
        }
        const char *pa[3], *pb[3];
        char *po[3];
        for (int k = 0; k < 3; k++) {
            pa[k] = pa0 + oa + k * sa[dim];
            pb[k] = pb0 + ob + k * sb[dim];
            po[k] = po0 + oo + k * so[dim];
        }
        for (int k = 0; k < 3; k++) {
            int k1 = (k + 1) % 3, k2 = (k + 2) % 3;
            if (integral) {
                uint64_t v = (uint64_t)td__load_i64(pa[k1], a->dtype) *
                                 (uint64_t)td__load_i64(pb[k2], b->dtype) -
                             (uint64_t)td__load_i64(pa[k2], a->dtype) *
                                 (uint64_t)td__load_i64(pb[k1], b->dtype);
                td__store_i64(po[k], o->dtype, (int64_t)v);
            } else {
                double complex v = td__load_c128(pa[k1], a->dtype) *
                                       td__load_c128(pb[k2], b->dtype) -
                                   td__load_c128(pa[k2], a->dtype) *
                                       td__load_c128(pb[k1], b->dtype);
                td__store_c128(po[k], o->dtype, v);
            }
        }
        int d = nd - 1;
        while (d >= 0 && ++idx[d] >= iter_shape[d])
            idx[d--] = 0;
        if (d < 0)
            break;
    }
    return 0;
}

/* ---- multi_dot ---- */

/* Matrix dims p[0..n] of the chain (1-d first: a row, 1-d last: a column). */
static int md_dims(const struct td_op_ctx *c, int64_t *p, struct td_error *err)
{
    int n = c->ninputs;
    if (n < 2)
        return td_error_set(err, TD_EINVAL, "multi_dot: needs at least 2 inputs (got %d)", n);
    for (int i = 0; i < n; i++) {
        const struct td_meta *m = &c->in_meta[i];
        bool ok = m->ndim == 2 || (m->ndim == 1 && (i == 0 || i == n - 1));
        if (!ok)
            return td_error_set(err, TD_EINVAL,
                                "multi_dot: input %d is %d-d (the first and last may be 1-d or "
                                "2-d, the others must be 2-d)", i, m->ndim);
        int64_t rows = m->ndim == 1 ? (i == 0 ? 1 : m->shape[0]) : m->shape[0];
        int64_t cols = m->ndim == 1 ? (i == 0 ? m->shape[0] : 1) : m->shape[1];
        if (i > 0 && p[i] != rows)
            return td_error_set(err, TD_EINVAL,
                                "multi_dot: input %d has %lld rows but input %d has %lld "
                                "columns", i, (long long)rows, i - 1, (long long)p[i]);
        p[i] = rows;
        p[i + 1] = cols;
    }
    return 0;
}

int meta_multi_dot(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int n = c->ninputs;
    int64_t *p = td_calloc((size_t)n + 1, sizeof *p);
    if (!p)
        return td_error_set(err, TD_ENOMEM, "multi_dot: out of memory");
    int rc = md_dims(c, p, err);
    if (!rc) {
        int64_t shape[2];
        int nd = 0;
        if (c->in_meta[0].ndim == 2)
            shape[nd++] = p[0];
        if (c->in_meta[n - 1].ndim == 2)
            shape[nd++] = p[n];
        td__meta_set(out, result_type_of(c), nd, shape);
    }
    td_free(p);
    return rc;
}

struct md_ctx {
    struct td_tensor **mats;
    const int *split;
    int n;
    struct td_account *account;
};

/* Product of mats[i..j] with the optimal split table. */
static int md_mul(const struct md_ctx *m, int i, int j, struct td_tensor **out,
                  struct td_error *err)
{
    if (i == j) {
        *out = td_tensor_retain(m->mats[i]);
        return 0;
    }
    int s = m->split[i * m->n + j];
    struct td_tensor *l = NULL, *r = NULL;
    int rc = md_mul(m, i, s, &l, err);
    if (!rc)
        rc = md_mul(m, s + 1, j, &r, err);
    if (!rc)
        rc = matmul_call(l, r, m->account, out, err);
    td_tensor_release(l);
    td_tensor_release(r);
    return rc;
}

int cpu_multi_dot(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int n = c->ninputs, rc;
    struct td_tensor *o = out[0], *res = NULL, *v = NULL;
    int64_t *p = td_calloc((size_t)n + 1, sizeof *p);
    double *cost = td_calloc((size_t)n * (size_t)n, sizeof *cost);
    int *split = td_calloc((size_t)n * (size_t)n, sizeof *split);
    struct td_tensor **mats = td_calloc((size_t)n, sizeof *mats);
    if (!p || !cost || !split || !mats) {
        rc = td_error_set(err, TD_ENOMEM, "multi_dot: out of memory");
        goto out;
    }
    if ((rc = md_dims(c, p, err)) != 0)
        goto out;
    for (int i = 0; i < n; i++) {
        struct td_tensor *t = NULL;
        if ((rc = td__as_dtype(c->inputs[i], o->dtype, c->account, &t, err)) != 0)
            goto out;
        int64_t shape[2] = {p[i], p[i + 1]}, strides[2];
        if (t->ndim == 1) {
            strides[0] = i == 0 ? 0 : t->strides[0];
            strides[1] = i == 0 ? t->strides[0] : 0;
        } else {
            strides[0] = t->strides[0];
            strides[1] = t->strides[1];
        }
        rc = td_tensor_new_view(t, 2, shape, strides, t->offset, &mats[i], err);
        td_tensor_release(t);
        if (rc)
            goto out;
    }
    /* cost[i][j]: fewest multiply-adds for mats[i..j]; split[i][j]: where to cut. */
    for (int len = 1; len < n; len++)
        for (int i = 0; i + len < n; i++) {
            int j = i + len;
            cost[i * n + j] = -1;
            for (int s = i; s < j; s++) {
                double q = cost[i * n + s] + cost[(s + 1) * n + j] +
                           (double)p[i] * (double)p[s + 1] * (double)p[j + 1];
                if (cost[i * n + j] < 0 || q < cost[i * n + j]) {
                    cost[i * n + j] = q;
                    split[i * n + j] = s;
                }
            }
        }
    struct md_ctx m = {mats, split, n, c->account};
    if ((rc = md_mul(&m, 0, n - 1, &res, err)) != 0)
        goto out;
    int64_t st[TD_MAX_NDIM];
    td_contiguous_strides(o->shape, o->ndim, st);
    if (!td_tensor_is_contiguous(res)) {
        rc = td_error_set(err, TD_EINTERNAL, "multi_dot: matmul result not contiguous");
        goto out;
    }
    if ((rc = td_tensor_new_view(res, o->ndim, o->shape, st, res->offset, &v, err)) != 0)
        goto out;
    if (td_tensor_numel(o) > 0)
        rc = td_tensor_copy(o, v, err);
out:
    td_tensor_release(v);
    td_tensor_release(res);
    for (int i = 0; mats && i < n; i++)
        td_tensor_release(mats[i]);
    td_free(mats);
    td_free(split);
    td_free(cost);
    td_free(p);
    return rc;
}

/* ---- diagonal and trace ---- */

struct diag_geom {
    int d1, d2;
    int64_t r0, c0, len;
};

static int diag_plan(const char *op, const struct td_meta *a, int64_t offset, int64_t dim1,
                     int64_t dim2, struct diag_geom *g, struct td_error *err)
{
    if (a->ndim < 2)
        return td_error_set(err, TD_EINVAL, "%s: input must have at least 2 dims (got %d)", op,
                            a->ndim);
    int rc = td__norm_dim(op, dim1, a->ndim, &g->d1, err);
    if (!rc)
        rc = td__norm_dim(op, dim2, a->ndim, &g->d2, err);
    if (rc)
        return rc;
    if (g->d1 == g->d2)
        return td_error_set(err, TD_EINVAL, "%s: dim1 and dim2 are the same dim (%d)", op,
                            g->d1);
    int64_t n1 = a->shape[g->d1], n2 = a->shape[g->d2];
    if (offset > INT64_MAX / 2 || offset < -(INT64_MAX / 2))
        return td_error_set(err, TD_EINVAL, "%s: offset %lld out of range", op,
                            (long long)offset);
    g->r0 = offset < 0 ? -offset : 0;
    g->c0 = offset > 0 ? offset : 0;
    int64_t len = n1 - g->r0 < n2 - g->c0 ? n1 - g->r0 : n2 - g->c0;
    g->len = len > 0 ? len : 0;
    return 0;
}

/* The diagonal as a view of t: other dims in order, then the diagonal. */
static int diag_view(struct td_tensor *t, const struct diag_geom *g, struct td_tensor **out,
                     struct td_error *err)
{
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    int nd = 0;
    for (int d = 0; d < t->ndim; d++)
        if (d != g->d1 && d != g->d2) {
            shape[nd] = t->shape[d];
            strides[nd++] = t->strides[d];
        }
    shape[nd] = g->len;
    strides[nd++] = t->strides[g->d1] + t->strides[g->d2];
    int64_t off = t->offset;
    if (g->len > 0)
        off += g->r0 * t->strides[g->d1] + g->c0 * t->strides[g->d2];
    return td_tensor_new_view(t, nd, shape, strides, off, out, err);
}

int meta_diagonal(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    struct diag_geom g;
    int rc = diag_plan("diagonal", a, td_arg_int(c, "offset"), td_arg_int(c, "dim1"),
                       td_arg_int(c, "dim2"), &g, err);
    if (rc)
        return rc;
    int64_t shape[TD_MAX_NDIM];
    int nd = 0;
    for (int d = 0; d < a->ndim; d++)
        if (d != g.d1 && d != g.d2)
            shape[nd++] = a->shape[d];
    shape[nd++] = g.len;
    td__meta_set(out, a->dtype, nd, shape);
    return 0;
}

int cpu_diagonal(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct diag_geom g;
    struct td_tensor *v = NULL;
    int rc = diag_plan("diagonal", &c->in_meta[0], td_arg_int(c, "offset"),
                       td_arg_int(c, "dim1"), td_arg_int(c, "dim2"), &g, err);
    if (rc || td_tensor_numel(out[0]) == 0)
        return rc;
    if ((rc = diag_view(c->inputs[0], &g, &v, err)) != 0)
        return rc;
    rc = td_tensor_copy(out[0], v, err);
    td_tensor_release(v);
    return rc;
}

int meta_trace(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    struct diag_geom g;
    int rc = diag_plan("trace", a, td_arg_int(c, "offset"), -2, -1, &g, err);
    if (rc)
        return rc;
    enum td_dtype dt = td_dtype_is_integral(a->dtype, true) ? TD_INT64 : a->dtype;
    td__meta_set(out, dt, a->ndim - 2, a->shape);
    return 0;
}

int cpu_trace(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct diag_geom g;
    struct td_tensor *v = NULL, *s = NULL;
    int rc = diag_plan("trace", &c->in_meta[0], td_arg_int(c, "offset"), -2, -1, &g, err);
    if (rc || td_tensor_numel(out[0]) == 0)
        return rc;
    if ((rc = diag_view(c->inputs[0], &g, &v, err)) != 0)
        return rc;
    int64_t dim = -1;
    rc = sum_dims(v, 1, &dim, c->account, &s, err);
    if (!rc)
        rc = td_tensor_copy(out[0], s, err);
    td_tensor_release(v);
    td_tensor_release(s);
    return rc;
}

/* ---- matrix_power ---- */

static bool lapack_dtype(enum td_dtype dt)
{
    return dt == TD_FLOAT32 || dt == TD_FLOAT64 || dt == TD_COMPLEX64 || dt == TD_COMPLEX128;
}

int meta_matrix_power(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    if (a->ndim < 2 || a->shape[a->ndim - 1] != a->shape[a->ndim - 2])
        return td_error_set(err, TD_EINVAL,
                            "matrix_power: input must be a batch of square matrices [..., n, n]");
    if (td_arg_int(c, "n") < 0 && !lapack_dtype(a->dtype))
        return td_error_set(err, TD_EINVAL,
                            "matrix_power: negative n needs a float32, float64 or complex "
                            "input (got %s)", td_dtype_name(a->dtype));
    if (td_arg_int(c, "n") < 0 && a->shape[a->ndim - 1] > INT_MAX)
        return td_error_set(err, TD_EINVAL, "matrix_power: matrix too large for LAPACK");
    td__meta_set(out, a->dtype, a->ndim, a->shape);
    return 0;
}

/* Inverts every matrix of the contiguous batch t in place (n x n each). */
static int batch_inverse(const char *op, struct td_tensor *t, struct td_error *err)
{
    int n = (int)t->shape[t->ndim - 1];
    if (td_tensor_numel(t) == 0)
        return 0;
    int *ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!ipiv)
        return td__lp_nomem(op, err);
    size_t isz = td_dtype_size(t->dtype);
    int64_t nb = td_tensor_numel(t) / ((int64_t)n * n);
    char *p = td_tensor_data(t);
    int rc = 0;
    for (int64_t bi = 0; bi < nb; bi++, p += (size_t)n * (size_t)n * isz) {
        int info = td__lp_getrf(t->dtype, n, n, p, n, ipiv);
        if (info == 0)
            info = td__lp_getri(t->dtype, n, p, n, ipiv);
        if (info > 0) {
            rc = td_error_set(err, TD_EINVAL,
                              "%s: batch element %lld is singular (U[%d,%d] = 0)", op,
                              (long long)bi, info - 1, info - 1);
            break;
        }
        if (info < 0) {
            rc = td_error_set(err, TD_EINTERNAL, "%s: LAPACK argument %d invalid", op, -info);
            break;
        }
    }
    td_free(ipiv);
    return rc;
}

int cpu_matrix_power(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0], *base = NULL, *acc = NULL, *tmp = NULL;
    int64_t n = td_arg_int(c, "n");
    int rc = 0;
    if (td_tensor_numel(o) == 0)
        return 0;
    if (n == 0) {
        int64_t m = o->shape[o->ndim - 1], nb = td_tensor_numel(o) / (m * m);
        size_t isz = td_dtype_size(o->dtype);
        char *p = td_tensor_data(o);
        memset(p, 0, td_tensor_nbytes(o));
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = 0; i < m; i++)
                td__store_i64(p + (size_t)((b * m + i) * m + i) * isz, o->dtype, 1);
        return 0;
    }
    if (n < 0) {
        struct td_meta mt;
        td_tensor_meta(o, &mt);
        if ((rc = td_tensor_new(&mt, false, c->account, &base, err)) != 0 ||
            (rc = td_tensor_copy(base, c->inputs[0], err)) != 0 ||
            (rc = batch_inverse("matrix_power", base, err)) != 0)
            goto out;
        n = -n;
    } else {
        base = td_tensor_retain(c->inputs[0]);
    }
    /* Right-to-left binary powering: acc *= base for each set bit, base squared each step. */
    for (;;) {
        if (n & 1) {
            if (!acc) {
                acc = td_tensor_retain(base);
            } else {
                if ((rc = matmul_call(acc, base, c->account, &tmp, err)) != 0)
                    goto out;
                td_tensor_release(acc);
                acc = tmp;
                tmp = NULL;
            }
        }
        n >>= 1;
        if (!n)
            break;
        if ((rc = matmul_call(base, base, c->account, &tmp, err)) != 0)
            goto out;
        td_tensor_release(base);
        base = tmp;
        tmp = NULL;
    }
    rc = td_tensor_copy(o, acc, err);
out:
    td_tensor_release(base);
    td_tensor_release(acc);
    td_tensor_release(tmp);
    return rc;
}

/* ---- tensorsolve and tensorinv ---- */

/* A's dims after moving dims[] to the end (numpy.linalg.tensorsolve's axes). */
static int ts_perm(const struct td_op_ctx *c, int *perm, struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int nd = a->ndim, nmoved = 0;
    bool moved[TD_MAX_NDIM] = {false};
    int tail[TD_MAX_NDIM];
    int n = 0;
    const int64_t *dims = td_arg_has(c, "dims") ? td_arg_ints(c, "dims", &n) : NULL;
    for (int i = 0; i < n; i++) {
        int d;
        int rc = td__norm_dim("tensorsolve", dims[i], nd, &d, err);
        if (rc)
            return rc;
        if (moved[d])
            return td_error_set(err, TD_EINVAL, "tensorsolve: dim %d is listed twice in dims",
                                d);
        moved[d] = true;
        tail[nmoved++] = d;
    }
    int m = 0;
    for (int d = 0; d < nd; d++)
        if (!moved[d])
            perm[m++] = d;
    for (int i = 0; i < nmoved; i++)
        perm[m++] = tail[i];
    return 0;
}

int td__tensorsolve_perm(const struct td_op_ctx *c, int *perm, struct td_error *err)
{
    return ts_perm(c, perm, err);
}

static int ts_plan(const struct td_op_ctx *c, int *perm, int64_t *nsys, struct td_meta *out,
                   struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0], *b = &c->in_meta[1];
    int rc = ts_perm(c, perm, err);
    if (rc)
        return rc;
    if (a->ndim < b->ndim)
        return td_error_set(err, TD_EINVAL,
                            "tensorsolve: A has %d dims, fewer than B's %d", a->ndim, b->ndim);
    int64_t lead = 1, rest = 1, shape[TD_MAX_NDIM];
    int nr = 0;
    for (int d = 0; d < a->ndim; d++) {
        int64_t s = a->shape[perm[d]];
        if (d < b->ndim) {
            lead *= s;
        } else {
            rest *= s;
            shape[nr++] = s;
        }
    }
    if (lead != rest)
        return td_error_set(err, TD_EINVAL,
                            "tensorsolve: A (dims moved) must satisfy prod(A.shape[B.ndim:]) == "
                            "prod(A.shape[:B.ndim]) (%lld != %lld)", (long long)rest,
                            (long long)lead);
    if (td_shape_numel(b->shape, b->ndim) != lead)
        return td_error_set(err, TD_EINVAL, "tensorsolve: B has %lld elements, expected %lld",
                            (long long)td_shape_numel(b->shape, b->ndim), (long long)lead);
    if (lead > INT_MAX)
        return td_error_set(err, TD_EINVAL, "tensorsolve: system of %lld unknowns too large",
                            (long long)lead);
    *nsys = lead;
    const struct td_meta *ins[2] = {a, b};
    td__meta_set(out, td_result_type(2, ins), nr, shape);
    return 0;
}

int meta_tensorsolve(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int perm[TD_MAX_NDIM];
    int64_t n;
    return ts_plan(c, perm, &n, out, err);
}

int cpu_tensorsolve(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int perm[TD_MAX_NDIM];
    int64_t n64 = 0;
    struct td_meta om;
    struct td_tensor *o = out[0], *pa = NULL, *am = NULL, *x = NULL;
    int *ipiv = NULL;
    int rc = ts_plan(c, perm, &n64, &om, err);
    if (rc || n64 == 0)
        return rc;
    struct td_tensor *a = c->inputs[0];
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    for (int d = 0; d < a->ndim; d++) {
        shape[d] = a->shape[perm[d]];
        strides[d] = a->strides[perm[d]];
    }
    int n = (int)n64;
    struct td_meta mm;
    td__meta_set(&mm, o->dtype, a->ndim, shape);
    if ((rc = td_tensor_new_view(a, a->ndim, shape, strides, a->offset, &pa, err)) != 0 ||
        (rc = td_tensor_new(&mm, false, c->account, &am, err)) != 0 ||
        (rc = td_tensor_copy(am, pa, err)) != 0)
        goto out;
    /* B (any shape, n elements) into the contiguous output, then solved in place. */
    struct td_tensor *bin = c->inputs[1];
    if ((rc = td__as_dtype(bin, o->dtype, c->account, &x, err)) != 0)
        goto out;
    {
        struct td_tensor *xc = NULL;
        if ((rc = td_tensor_contiguous(x, c->account, &xc, err)) != 0)
            goto out;
        td_tensor_release(x);
        x = xc;
    }
    memcpy(td_tensor_data(o), td_tensor_data(x), (size_t)n64 * td_dtype_size(o->dtype));
    ipiv = td__lp_alloc((size_t)n, sizeof(int));
    if (!ipiv) {
        rc = td__lp_nomem("tensorsolve", err);
        goto out;
    }
    int info = td__lp_getrf(o->dtype, n, n, td_tensor_data(am), n, ipiv);
    if (info > 0) {
        rc = td_error_set(err, TD_EINVAL,
                          "tensorsolve: the reshaped %d x %d system is singular (U[%d,%d] = 0)",
                          n, n, info - 1, info - 1);
        goto out;
    }
    if (info == 0)
        info = td__lp_getrs(o->dtype, 'N', n, 1, td_tensor_data(am), n, ipiv,
                            td_tensor_data(o), 1);
    if (info < 0)
        rc = td_error_set(err, TD_EINTERNAL, "tensorsolve: LAPACK argument %d invalid", -info);
out:
    td_free(ipiv);
    td_tensor_release(pa);
    td_tensor_release(am);
    td_tensor_release(x);
    return rc;
}

static int ti_plan(const struct td_op_ctx *c, int64_t *nsys, struct td_meta *out,
                   struct td_error *err)
{
    const struct td_meta *a = &c->in_meta[0];
    int64_t ind = td_arg_int(c, "ind");
    if (ind <= 0 || ind > a->ndim)
        return td_error_set(err, TD_EINVAL,
                            "tensorinv: ind must be in [1, %d] for a %d-d input (got %lld)",
                            a->ndim, a->ndim, (long long)ind);
    int64_t lead = td_shape_numel(a->shape, (int)ind);
    int64_t rest = td_shape_numel(a->shape + ind, a->ndim - (int)ind);
    if (lead != rest)
        return td_error_set(err, TD_EINVAL,
                            "tensorinv: prod(A.shape[:ind]) must equal prod(A.shape[ind:]) "
                            "(%lld != %lld)", (long long)lead, (long long)rest);
    if (lead > INT_MAX)
        return td_error_set(err, TD_EINVAL, "tensorinv: %lld x %lld matrix too large",
                            (long long)lead, (long long)lead);
    int64_t shape[TD_MAX_NDIM];
    int m = 0;
    for (int d = (int)ind; d < a->ndim; d++)
        shape[m++] = a->shape[d];
    for (int d = 0; d < (int)ind; d++)
        shape[m++] = a->shape[d];
    *nsys = lead;
    td__meta_set(out, a->dtype, a->ndim, shape);
    return 0;
}

int meta_tensorinv(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t n = 0;
    return ti_plan(c, &n, out, err);
}

int cpu_tensorinv(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t n = 0;
    struct td_meta om;
    struct td_tensor *o = out[0], *v = NULL;
    int rc = ti_plan(c, &n, &om, err);
    if (rc || n == 0)
        return rc;
    /* The input in C order is the n x n matrix; invert a copy laid out as o. */
    int64_t shape[2] = {n, n}, st[2] = {n, 1};
    struct td_tensor *a = NULL;
    if ((rc = td_tensor_contiguous(c->inputs[0], c->account, &a, err)) != 0)
        return rc;
    if ((rc = td_tensor_new_view(a, 2, shape, st, a->offset, &v, err)) != 0)
        goto out;
    memcpy(td_tensor_data(o), td_tensor_data(v), (size_t)(n * n) * td_dtype_size(o->dtype));
    {
        struct td_tensor *ov = NULL;
        if ((rc = td_tensor_new_view(o, 2, shape, st, o->offset, &ov, err)) != 0)
            goto out;
        rc = batch_inverse("tensorinv", ov, err);
        td_tensor_release(ov);
    }
out:
    td_tensor_release(v);
    td_tensor_release(a);
    return rc;
}
