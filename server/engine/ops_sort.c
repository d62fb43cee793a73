/*
 * ops_sort.c - sorting, searching, sets and the Array API elementwise extras (ops.def section
 * "sorting, searching, sets and Array API elementwise").
 *
 * Ordering. Every real value maps to an unsigned 64-bit key whose integer order is the
 * value order: integers and bool as (uint64)v ^ 2^63, floats (float16/bfloat16/float32 are
 * exact in double) through their IEEE bits with the sign folded (negative: all bits
 * inverted; positive: sign bit set), -0.0 first canonicalised to +0.0 so the two compare
 * equal, and every NaN mapped to UINT64_MAX, above +inf. Ascending order is then NaN last;
 * descending inverts the keys, which puts NaN first (torch.sort) while equal keys still
 * keep their input order.
 *
 * Sorting is a stable bottom-up merge sort of (key, index) pairs: runs of SORT_RUN elements
 * by insertion sort, then log2(n / SORT_RUN) merge passes ping-ponging between two buffers
 * (Knuth, TAOCP vol. 3, 5.2.4, "straight two-way merge"), O(n log n) comparisons in the
 * worst case. The merge takes the left element unless the right one is strictly smaller,
 * which is what makes it stable; merges of already ordered neighbours are plain copies.
 * Rows (all positions of the other dims) are independent and run on the engine's threads;
 * one long row is cut into chunks sorted on the threads and then merged. stable=false is
 * accepted (torch's signature) and gives the same stable order. Dtypes of at most 4 bytes
 * sort one packed word per element ((32-bit key << 32) | index, distinct words, so their order
 * is the stable order); wider dtypes sort (64-bit key, index) pairs. Packed rows of at least
 * RADIX_MIN elements take a stable LSD radix sort on the key half instead (see radix_sort),
 * O(n) per pass (10^6 float32 on one thread: about 19 ms against the merge sort's 77 ms).
 *
 * Data-dependent shapes (nonzero, unique) take their size as an attribute computed first by
 * a counting op (count_nonzero, unique_count) that the client reads, so meta execution
 * knows every shape; a count that differs from the data is TD_EINVAL.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "td_internal.h"

#define SORT_RUN 32

/* ---------------------------------------------------------------------------------------
 * Keys.
 */
static uint64_t key_f64(double d)
{
    if (isnan(d))
        return UINT64_MAX;
    if (d == 0)
        d = 0.0;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return (u >> 63) ? ~u : (u | ((uint64_t)1 << 63));
}

static uint64_t key_i64(int64_t v)
{
    return (uint64_t)v ^ ((uint64_t)1 << 63);
}

/* Keys of n elements of dt starting at p, elements `step` elements apart. as_float: compare
 * in double (used when an integer sequence meets float values in searchsorted). */
static void fill_keys(uint64_t *k, const char *p, int64_t step, int64_t n, enum td_dtype dt,
                      bool as_float, bool desc)
{
    uint64_t flip = desc ? UINT64_MAX : 0;
    if (dt == TD_FLOAT32) {
        const float *x = (const float *)p;
        for (int64_t j = 0; j < n; j++)
            k[j] = key_f64(x[j * step]) ^ flip;
    } else if (dt == TD_FLOAT64) {
        const double *x = (const double *)p;
        for (int64_t j = 0; j < n; j++)
            k[j] = key_f64(x[j * step]) ^ flip;
    } else if (dt == TD_INT64 && !as_float) {
        const int64_t *x = (const int64_t *)p;
        for (int64_t j = 0; j < n; j++)
            k[j] = key_i64(x[j * step]) ^ flip;
    } else if (dt == TD_INT32 && !as_float) {
        const int32_t *x = (const int32_t *)p;
        for (int64_t j = 0; j < n; j++)
            k[j] = key_i64(x[j * step]) ^ flip;
    } else {
        int64_t sz = (int64_t)td_dtype_size(dt);
        bool f = as_float || td_dtype_is_floating(dt);
        for (int64_t j = 0; j < n; j++) {
            const char *e = p + j * step * sz;
            k[j] = (f ? key_f64(td__load_f64(e, dt)) : key_i64(td__load_i64(e, dt))) ^ flip;
        }
    }
}

/* Sortable 32-bit keys for dtypes of at most 4 bytes (same scheme as above). */
static uint32_t key_f32(float f)
{
    if (isnan(f))
        return UINT32_MAX;
    if (f == 0)
        f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u >> 31) ? ~u : (u | ((uint32_t)1 << 31));
}

/* Packed (key32 << 32 | index) words of n elements of dt (itemsize <= 4) starting at p,
 * `step` elements apart, the first one being element j0 of its row (row length < 2^32):
 * their integer order is the (key, index) order, so each word is distinct and the sorted
 * words are the stable order whatever the algorithm. */
static void fill_packed(uint64_t *w, const char *p, int64_t step, int64_t n, enum td_dtype dt,
                        bool desc, int64_t j0)
{
    uint32_t flip = desc ? UINT32_MAX : 0;
    if (dt == TD_FLOAT32) {
        const float *x = (const float *)(const void *)p;
        for (int64_t j = 0; j < n; j++)
            w[j] = ((uint64_t)(key_f32(x[j * step]) ^ flip) << 32) | (uint64_t)(j0 + j);
        return;
    }
    if (dt == TD_INT32) {
        const int32_t *x = (const int32_t *)(const void *)p;
        flip ^= (uint32_t)1 << 31;
        for (int64_t j = 0; j < n; j++)
            w[j] = ((uint64_t)((uint32_t)x[j * step] ^ flip) << 32) | (uint64_t)(j0 + j);
        return;
    }
    int64_t sz = (int64_t)td_dtype_size(dt);
    bool f = td_dtype_is_floating(dt);
    for (int64_t j = 0; j < n; j++) {
        const char *e = p + j * step * sz;
        uint32_t k;
        if (f)
            k = key_f32((float)td__load_f64(e, dt));
        else
            k = (uint32_t)td__load_i64(e, dt) ^ ((uint32_t)1 << 31);
        w[j] = ((uint64_t)(k ^ flip) << 32) | (uint64_t)(j0 + j);
    }
}

/* ---------------------------------------------------------------------------------------
 * Stable bottom-up merge sort, generated for (key, index) pairs and for packed words.
 * msort_<s>(a, tmp, n, chunk): sorts a[0..n) with tmp[0..n) as scratch; chunks of `chunk`
 * elements (a power of two times SORT_RUN) are sorted on the engine's threads first, then
 * merged by the remaining passes. Nested inside another parallel loop the chunks run serially
 * and the result is the same.
 */
struct kv {
    uint64_t k;
    int64_t i;
};

#define KV_KEY(x) ((x).k)
#define WORD_KEY(x) (x)

#define DEF_MSORT(S, T, KEY)                                                                 \
    static void ins_##S(T *a, int64_t n)                                                     \
    {                                                                                        \
        for (int64_t i = 1; i < n; i++) {                                                    \
            T t = a[i];                                                                      \
            int64_t j = i;                                                                   \
            while (j > 0 && KEY(a[j - 1]) > KEY(t)) {                                        \
                a[j] = a[j - 1];                                                             \
                j--;                                                                         \
            }                                                                                \
            a[j] = t;                                                                        \
        }                                                                                    \
    }                                                                                        \
    /* Merges sorted a[0..na) and b[0..nb) into out; ties take a's element first. */        \
    static void merge_##S(const T *a, int64_t na, const T *b, int64_t nb, T *out)            \
    {                                                                                        \
        int64_t i = 0, j = 0, o = 0;                                                         \
        if (na && nb && KEY(a[na - 1]) <= KEY(b[0])) {                                       \
            memcpy(out, a, (size_t)na * sizeof *a);                                          \
            memcpy(out + na, b, (size_t)nb * sizeof *b);                                     \
            return;                                                                          \
        }                                                                                    \
        while (i < na && j < nb) {                                                           \
            int r = KEY(b[j]) < KEY(a[i]);                                                   \
            out[o++] = r ? b[j] : a[i];                                                      \
            j += r;                                                                          \
            i += !r;                                                                         \
        }                                                                                    \
        if (i < na)                                                                          \
            memcpy(out + o, a + i, (size_t)(na - i) * sizeof *a);                            \
        if (j < nb)                                                                          \
            memcpy(out + o, b + j, (size_t)(nb - j) * sizeof *b);                            \
    }                                                                                        \
    /* Merge passes over runs of width w0 (each already sorted); result in a. */             \
    static void passes_##S(T *a, T *tmp, int64_t n, int64_t w0)                              \
    {                                                                                        \
        T *src = a, *dst = tmp;                                                              \
        for (int64_t w = w0; w < n; w *= 2) {                                                \
            for (int64_t s = 0; s < n; s += 2 * w) {                                         \
                int64_t m = s + w < n ? s + w : n, e = s + 2 * w < n ? s + 2 * w : n;        \
                merge_##S(src + s, m - s, src + m, e - m, dst + s);                          \
            }                                                                                \
            T *t = src;                                                                      \
            src = dst;                                                                       \
            dst = t;                                                                         \
        }                                                                                    \
        if (src != a)                                                                        \
            memcpy(a, src, (size_t)n * sizeof *a);                                           \
    }                                                                                        \
    static void seq_##S(T *a, T *tmp, int64_t n)                                             \
    {                                                                                        \
        for (int64_t s = 0; s < n; s += SORT_RUN)                                            \
            ins_##S(a + s, n - s < SORT_RUN ? n - s : SORT_RUN);                             \
        passes_##S(a, tmp, n, SORT_RUN);                                                     \
    }                                                                                        \
    struct chunks_##S {                                                                      \
        T *a, *tmp;                                                                          \
        int64_t n, chunk;                                                                    \
    };                                                                                       \
    static void chunk_fn_##S(int64_t beg, int64_t end, void *ctx)                            \
    {                                                                                        \
        const struct chunks_##S *c = ctx;                                                    \
        for (int64_t q = beg; q < end; q++) {                                                \
            int64_t s = q * c->chunk, len = c->n - s < c->chunk ? c->n - s : c->chunk;       \
            seq_##S(c->a + s, c->tmp + s, len);                                              \
        }                                                                                    \
    }                                                                                        \
    static void msort_##S(T *a, T *tmp, int64_t n, int64_t chunk)                            \
    {                                                                                        \
        struct chunks_##S c = {a, tmp, n, chunk};                                            \
        td__parallel_for((n + chunk - 1) / chunk, 1, chunk_fn_##S, &c);                      \
        passes_##S(a, tmp, n, chunk);                                                        \
    }

DEF_MSORT(kv, struct kv, KV_KEY)
DEF_MSORT(word, uint64_t, WORD_KEY)

/* Chunk size for sorting n elements: about n / threads (a power of two times SORT_RUN),
 * or n itself when the row is too short to be worth splitting. */
static int64_t sort_chunk(int64_t n)
{
    int64_t t = td_parallel_threads();
    if (n < 2 * TD__PAR_GRAIN || t < 2)
        return n > 0 ? n : 1;
    int64_t target = (n + t - 1) / t, chunk = SORT_RUN;
    while (chunk < target)
        chunk *= 2;
    return chunk;
}

/* ---------------------------------------------------------------------------------------
 * Stable LSD radix sort of packed words, used for rows of at least RADIX_MIN elements.
 * Only the key half (bits 32..63) is sorted, in three passes of 11, 11 and 10 bits from the
 * least significant digit up, each pass a stable counting scatter (Knuth, TAOCP vol. 3,
 * 5.2.5, "radix sorting"). The words start in index order, so equal keys end in index
 * order: the same order as the merge sort's full-word comparison, with NaN, -0.0 and
 * descending already in the keys. A pass whose digit is the same in every word is skipped
 * (float32 data of one sign and binade, small integers, bool). A long row is cut into at most
 * RADIX_CHUNKS chunks: each chunk counts its digits on the engine's threads, digit v of
 * chunk q is written after every smaller digit and after digit v of the chunks before q
 * (which keeps the scatter stable), and the chunks scatter in parallel. Nested inside
 * another parallel loop the chunks run serially with the same result; a row sorted in one
 * chunk counts the digits of all three passes in one read.
 */
#define RADIX_MIN 256
#define RADIX_CHUNKS 16
#define RADIX_BITS 11
#define RADIX_BUCKETS (1 << RADIX_BITS)
#define RADIX_PASSES 3

struct radix {
    uint64_t *src, *dst;
    int64_t n, len; /* words; words per chunk */
    int shift;      /* bit position of this pass's digit */
    uint32_t *cnt;  /* RADIX_BUCKETS counts per chunk, then write positions */
};

static void radix_count(int64_t beg, int64_t end, void *ctx)
{
    struct radix *r = ctx;
    const uint64_t *src = r->src;
    int shift = r->shift;
    for (int64_t q = beg; q < end; q++) {
        uint32_t *c = r->cnt + q * RADIX_BUCKETS;
        memset(c, 0, RADIX_BUCKETS * sizeof *c);
        int64_t s = q * r->len, e = s + r->len < r->n ? s + r->len : r->n;
        for (int64_t k = s; k < e; k++)
            c[(src[k] >> shift) & (RADIX_BUCKETS - 1)]++;
    }
}

static void radix_scatter(int64_t beg, int64_t end, void *ctx)
{
    struct radix *r = ctx;
    const uint64_t *src = r->src;
    uint64_t *dst = r->dst;
    int shift = r->shift;
    for (int64_t q = beg; q < end; q++) {
        uint32_t *o = r->cnt + q * RADIX_BUCKETS;
        int64_t s = q * r->len, e = s + r->len < r->n ? s + r->len : r->n;
        for (int64_t k = s; k < e; k++) {
            uint64_t w = src[k];
            dst[o[(w >> shift) & (RADIX_BUCKETS - 1)]++] = w;
        }
    }
}

/* Sorts packed words a[0..n) (0 < n < 2^32, in index order) by their key half with
 * tmp[0..n) and cnt[0..RADIX_CHUNKS * RADIX_BUCKETS) as scratch; the result is in a. */
static void radix_sort(uint64_t *a, uint64_t *tmp, int64_t n, uint32_t *cnt)
{
    struct radix r;
    int64_t nch = n / TD__PAR_GRAIN, t = td_parallel_threads();
    nch = nch < t ? nch : t;
    nch = nch < RADIX_CHUNKS ? nch : RADIX_CHUNKS;
    nch = nch > 1 ? nch : 1;
    r.n = n;
    r.len = (n + nch - 1) / nch;
    nch = (n + r.len - 1) / r.len;
    r.src = a;
    r.dst = tmp;
    if (nch == 1) {
        memset(cnt, 0, RADIX_PASSES * RADIX_BUCKETS * sizeof *cnt);
        for (int64_t k = 0; k < n; k++) {
            uint32_t key = (uint32_t)(a[k] >> 32);
            cnt[key & (RADIX_BUCKETS - 1)]++;
            cnt[RADIX_BUCKETS + ((key >> RADIX_BITS) & (RADIX_BUCKETS - 1))]++;
            cnt[2 * RADIX_BUCKETS + (key >> 2 * RADIX_BITS)]++;
        }
    }
    for (int p = 0; p < RADIX_PASSES; p++) {
        r.shift = 32 + p * RADIX_BITS;
        r.cnt = nch == 1 ? cnt + p * RADIX_BUCKETS : cnt;
        if (nch > 1)
            td__parallel_for(nch, 1, radix_count, &r);
        uint32_t off = 0;
        bool skip = false;
        for (int v = 0; v < RADIX_BUCKETS; v++) {
            uint32_t start = off;
            for (int64_t q = 0; q < nch; q++) {
                uint32_t c = r.cnt[q * RADIX_BUCKETS + v];
                r.cnt[q * RADIX_BUCKETS + v] = off;
                off += c;
            }
            skip = skip || (int64_t)(off - start) == n;
        }
        if (skip)
            continue;
        td__parallel_for(nch, 1, radix_scatter, &r);
        uint64_t *done = r.dst;
        r.dst = r.src;
        r.src = done;
    }
    if (r.src != a)
        memcpy(a, r.src, (size_t)n * sizeof *a);
}

/* Sorts (key, index) pairs of a whole buffer (unique uses it). */
static void kv_sort(struct kv *a, struct kv *tmp, int64_t n)
{
    if (n > 0)
        msort_kv(a, tmp, n, sort_chunk(n));
}

/* Copies element `from` of x to element `to` of y (same dtype of itemsize sz). */
static inline void copy_elem(char *y, int64_t to, const char *x, int64_t from, size_t sz)
{
    switch (sz) {
    case 1:
        y[to] = x[from];
        break;
    case 2:
        ((uint16_t *)(void *)y)[to] = ((const uint16_t *)(const void *)x)[from];
        break;
    case 4:
        ((uint32_t *)(void *)y)[to] = ((const uint32_t *)(const void *)x)[from];
        break;
    case 8:
        ((uint64_t *)(void *)y)[to] = ((const uint64_t *)(const void *)x)[from];
        break;
    default:
        memcpy(y + to * (int64_t)sz, x + from * (int64_t)sz, sz);
        break;
    }
}

/* ---------------------------------------------------------------------------------------
 * sort, argsort.
 */
struct sort_job {
    const char *x;      /* contiguous input */
    char *vals;         /* contiguous values output, or NULL (argsort) */
    int64_t *idx;       /* contiguous int64 indices output */
    enum td_dtype dt;
    size_t sz;
    int64_t n, inner;   /* sorted dim's size; product of the dims after it */
    bool desc;
    _Atomic int failed; /* scratch allocation failed on some thread */
};

/* One row's packing and write-back, cut over the engine's threads when the row is long
 * (serial when the rows themselves run in parallel). */
struct row_io {
    const struct sort_job *j;
    int64_t base;       /* element offset of the row's first element */
    uint64_t *w;        /* packed words */
    const struct kv *a; /* sorted pairs, or NULL when the row was sorted as packed words */
};

static void pack_chunk(int64_t beg, int64_t end, void *ctx)
{
    const struct row_io *o = ctx;
    const struct sort_job *j = o->j;
    const char *x = j->x + (o->base + beg * j->inner) * (int64_t)j->sz;
    fill_packed(o->w + beg, x, j->inner, end - beg, j->dt, j->desc, beg);
}

static void out_chunk(int64_t beg, int64_t end, void *ctx)
{
    const struct row_io *o = ctx;
    const struct sort_job *j = o->j;
    int64_t inner = j->inner, base = o->base;
    if (!o->a && j->sz == 4) {
        const uint32_t *x = (const uint32_t *)(const void *)j->x + base;
        uint32_t *v = j->vals ? (uint32_t *)(void *)j->vals + base : NULL;
        for (int64_t k = beg; k < end; k++) {
            int64_t from = (int64_t)(o->w[k] & UINT32_MAX);
            j->idx[base + k * inner] = from;
            if (v)
                v[k * inner] = x[from * inner];
        }
        return;
    }
    for (int64_t k = beg; k < end; k++) {
        int64_t to = base + k * inner;
        int64_t from = o->a ? o->a[k].i : (int64_t)(o->w[k] & UINT32_MAX);
        j->idx[to] = from;
        if (j->vals)
            copy_elem(j->vals, to, j->x, base + from * inner, j->sz);
    }
}

static void sort_rows(int64_t beg, int64_t end, void *ctx)
{
    struct sort_job *j = ctx;
    int64_t n = j->n, inner = j->inner, chunk = sort_chunk(n);
    bool packed = j->sz <= 4 && n <= (int64_t)UINT32_MAX;
    /* Packed rows need two word buffers; pair rows two pair buffers and one key buffer. */
    size_t per = packed ? 2 * sizeof(uint64_t) : 2 * sizeof(struct kv) + sizeof(uint64_t);
    size_t bytes, cnt_bytes = RADIX_CHUNKS * RADIX_BUCKETS * sizeof(uint32_t);
    bool radix = packed && n >= RADIX_MIN;
    if (!td_mul_size((size_t)n, per, &bytes) || (radix && !td_add_size(bytes, cnt_bytes,
                                                                       &bytes))) {
        atomic_store(&j->failed, 1);
        return;
    }
    struct kv *a = td_malloc(bytes ? bytes : 1);
    if (!a) {
        atomic_store(&j->failed, 1);
        return;
    }
    struct kv *tmp = a + n;
    uint64_t *w = packed ? (uint64_t *)(void *)a + n : (uint64_t *)(void *)(tmp + n);
    uint64_t *wtmp = (uint64_t *)(void *)a;
    for (int64_t r = beg; r < end; r++) {
        struct row_io o = {j, (r / inner) * n * inner + r % inner, w, NULL};
        if (packed) {
            td__parallel_for(n, TD__PAR_GRAIN, pack_chunk, &o);
            if (radix)
                radix_sort(w, wtmp, n, (uint32_t *)(void *)(w + n));
            else
                msort_word(w, wtmp, n, chunk);
        } else {
            fill_keys(w, j->x + o.base * (int64_t)j->sz, inner, n, j->dt, false, j->desc);
            for (int64_t k = 0; k < n; k++) {
                a[k].k = w[k];
                a[k].i = k;
            }
            msort_kv(a, tmp, n, chunk);
            o.a = a;
        }
        td__parallel_for(n, TD__PAR_GRAIN, out_chunk, &o);
    }
    td_free(a);
}

static int sort_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    int d;
    int rc = td__norm_dim(c->info->name, td_arg_int(c, "dim"), x->ndim, &d, err);
    if (rc)
        return rc;
    int k = 0;
    if (c->op == TD_OP_sort)
        td__meta_set(&out[k++], x->dtype, x->ndim, x->shape);
    td__meta_set(&out[k], TD_INT64, x->ndim, x->shape);
    return 0;
}

static int sort_run(const struct td_op_ctx *c, struct td_tensor *vals, struct td_tensor *idx,
                    struct td_error *err)
{
    struct td_tensor *x = NULL;
    int rc = td_tensor_contiguous(c->inputs[0], c->account, &x, err);
    if (rc)
        return rc;
    int d = 0;
    if (x->ndim > 0)
        rc = td__norm_dim(c->info->name, td_arg_int(c, "dim"), x->ndim, &d, err);
    if (rc)
        goto out;
    int64_t n = x->ndim ? x->shape[d] : 1, inner = 1, numel = td_tensor_numel(x);
    for (int k = d + 1; k < x->ndim; k++)
        inner *= x->shape[k];
    if (numel == 0)
        goto out;
    struct sort_job j = {td_tensor_data(x), vals ? td_tensor_data(vals) : NULL,
                         td_tensor_data(idx), x->dtype, td_dtype_size(x->dtype), n, inner,
                         td_arg_bool(c, "descending"), 0};
    int64_t rows = numel / n, grain = TD__PAR_GRAIN / (n * 8) + 1;
    td__parallel_for(rows, grain, sort_rows, &j);
    if (atomic_load(&j.failed))
        rc = td_error_set(err, TD_ENOMEM, "%s: out of memory for the sort buffers",
                          c->info->name);
out:
    td_tensor_release(x);
    return rc;
}

int meta_sort(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return sort_meta(c, out, err);
}

int cpu_sort(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return sort_run(c, out[0], out[1], err);
}

int meta_argsort(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return sort_meta(c, out, err);
}

int cpu_argsort(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    return sort_run(c, NULL, out[0], err);
}

/* ---------------------------------------------------------------------------------------
 * searchsorted: torch.searchsorted without sorter. The sequence is 1-d (shared by every
 * value) or has the values' leading dims (one sequence per row of values).
 */
int meta_searchsorted(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *s = &c->in_meta[0], *v = &c->in_meta[1];
    char b1[96], b2[96];
    if (!(TD_DTM(v->dtype) & TD_DTM_REALB))
        return td_error_set(err, TD_EINVAL, "searchsorted: values dtype %s not supported",
                            td_dtype_name(v->dtype));
    if (s->ndim == 0)
        return td_error_set(err, TD_EINVAL,
                            "searchsorted: sorted_sequence must have at least one dim");
    if (s->ndim > 1) {
        bool ok = v->ndim == s->ndim;
        for (int k = 0; ok && k < s->ndim - 1; k++)
            ok = s->shape[k] == v->shape[k];
        if (!ok)
            return td_error_set(err, TD_EINVAL,
                                "searchsorted: sorted_sequence %s must be 1-d or have the "
                                "leading dims of values %s",
                                td__shape_str(s->shape, s->ndim, b1, sizeof b1),
                                td__shape_str(v->shape, v->ndim, b2, sizeof b2));
    }
    td__meta_set(out, TD_INT64, v->ndim, v->shape);
    return 0;
}

int cpu_searchsorted(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *s = NULL, *v = NULL;
    uint64_t *keys = NULL;
    int rc = td_tensor_contiguous(c->inputs[0], c->account, &s, err);
    if (!rc)
        rc = td_tensor_contiguous(c->inputs[1], c->account, &v, err);
    if (rc)
        goto out;
    bool as_float = !(td_dtype_is_integral(s->dtype, true) &&
                      td_dtype_is_integral(v->dtype, true));
    bool right = td_arg_bool(c, "right");
    int64_t m = s->shape[s->ndim - 1], nv = td_tensor_numel(v);
    int64_t rows = td_tensor_numel(s) / (m ? m : 1);
    if (m == 0)
        rows = s->ndim > 1 ? td_shape_numel(s->shape, s->ndim - 1) : 1;
    int64_t per_row = rows ? nv / rows : 0;   /* values per sequence row */
    if (s->ndim == 1)
        per_row = nv;
    int64_t *y = td_tensor_data(out[0]);
    if (nv == 0)
        goto out;
    size_t bytes;
    if (!td_mul_size((size_t)(m + 1), sizeof *keys, &bytes) || !(keys = td_malloc(bytes))) {
        rc = td_error_set(err, TD_ENOMEM, "searchsorted: out of memory");
        goto out;
    }
    size_t ssz = td_dtype_size(s->dtype), vsz = td_dtype_size(v->dtype);
    const char *sp = td_tensor_data(s), *vp = td_tensor_data(v);
    for (int64_t r = 0; r < rows; r++) {
        fill_keys(keys, sp + r * m * (int64_t)ssz, 1, m, s->dtype, as_float, false);
        for (int64_t q = r * per_row; q < (r + 1) * per_row; q++) {
            uint64_t kv;
            fill_keys(&kv, vp + q * (int64_t)vsz, 1, 1, v->dtype, as_float, false);
            int64_t lo = 0, hi = m;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (right ? keys[mid] <= kv : keys[mid] < kv)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            y[q] = lo;
        }
    }
out:
    td_free(keys);
    td_tensor_release(s);
    td_tensor_release(v);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * count_nonzero: NumPy/Array API semantics; no dim counts over all dims, an empty dim list
 * counts each element on its own (no reduction).
 */
static int reduced_dims(const struct td_op_ctx *c, bool red[TD_MAX_NDIM], struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    int nd = x->ndim;
    for (int k = 0; k < TD_MAX_NDIM; k++)
        red[k] = !td_arg_has(c, "dim");
    if (!td_arg_has(c, "dim"))
        return 0;
    int n;
    const int64_t *dims = td_arg_ints(c, "dim", &n);
    for (int k = 0; k < n; k++) {
        int d;
        int rc = td__norm_dim("count_nonzero", dims[k], nd, &d, err);
        if (rc)
            return rc;
        if (red[d])
            return td_error_set(err, TD_EINVAL, "count_nonzero: dim %lld repeated",
                                (long long)dims[k]);
        red[d] = true;
    }
    return 0;
}

int meta_count_nonzero(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *x = &c->in_meta[0];
    bool red[TD_MAX_NDIM];
    int rc = reduced_dims(c, red, err);
    if (rc)
        return rc;
    bool keep = td_arg_bool(c, "keepdim");
    int64_t shape[TD_MAX_NDIM];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++)
        if (!red[k])
            shape[nd++] = x->shape[k];
        else if (keep)
            shape[nd++] = 1;
    td__meta_set(out, TD_INT64, nd, shape);
    return 0;
}

int cpu_count_nonzero(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    bool red[TD_MAX_NDIM];
    int rc = reduced_dims(c, red, err);
    if (rc)
        return rc;
    struct td_tensor *x = NULL;
    rc = td_tensor_contiguous(c->inputs[0], c->account, &x, err);
    if (rc)
        return rc;
    int64_t *y = td_tensor_data(out[0]);
    int64_t ny = td_tensor_numel(out[0]), n = td_tensor_numel(x);
    memset(y, 0, (size_t)ny * sizeof *y);
    /* Output strides (elements) per input dim; 0 along reduced dims. */
    int64_t ostr[TD_MAX_NDIM], acc = 1;
    for (int k = x->ndim - 1; k >= 0; k--) {
        ostr[k] = red[k] ? 0 : acc;
        if (!red[k])
            acc *= x->shape[k];
    }
    const char *p = td_tensor_data(x);
    size_t sz = td_dtype_size(x->dtype);
    int64_t ix[TD_MAX_NDIM] = {0}, off = 0;
    for (int64_t e = 0; e < n; e++) {
        y[off] += td__load_bool(p + e * (int64_t)sz, x->dtype);
        for (int k = x->ndim - 1; k >= 0; k--) {
            off += ostr[k];
            if (++ix[k] < x->shape[k])
                break;
            off -= ostr[k] * ix[k];
            ix[k] = 0;
        }
    }
    td_tensor_release(x);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * nonzero: [count, ndim] int64 indices of the nonzero elements in C order.
 */
static int count_attr(const struct td_op_ctx *c, int64_t *count, struct td_error *err)
{
    *count = td_arg_int(c, "count");
    if (*count < 0)
        return td_error_set(err, TD_EINVAL, "%s: count must be >= 0, got %lld",
                            c->info->name, (long long)*count);
    return 0;
}

int meta_nonzero(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t count;
    int rc = count_attr(c, &count, err);
    if (rc)
        return rc;
    const int64_t shape[2] = {count, c->in_meta[0].ndim};
    rc = td__check_shape("nonzero", shape, 2, TD_INT64, err);
    if (rc)
        return rc;
    td__meta_set(out, TD_INT64, 2, shape);
    return 0;
}

int cpu_nonzero(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t count;
    int rc = count_attr(c, &count, err);
    if (rc)
        return rc;
    struct td_tensor *x = NULL;
    rc = td_tensor_contiguous(c->inputs[0], c->account, &x, err);
    if (rc)
        return rc;
    const char *p = td_tensor_data(x);
    size_t sz = td_dtype_size(x->dtype);
    int64_t n = td_tensor_numel(x), found = 0;
    for (int64_t e = 0; e < n; e++)
        found += td__load_bool(p + e * (int64_t)sz, x->dtype);
    if (found != count) {
        rc = td_error_set(err, TD_EINVAL,
                          "nonzero: count attribute %lld differs from the %lld nonzero "
                          "elements (take it from count_nonzero)",
                          (long long)count, (long long)found);
        goto out;
    }
    int nd = x->ndim;
    int64_t *y = td_tensor_data(out[0]), ix[TD_MAX_NDIM] = {0}, row = 0;
    for (int64_t e = 0; e < n; e++) {
        if (td__load_bool(p + e * (int64_t)sz, x->dtype)) {
            for (int k = 0; k < nd; k++)
                y[row * nd + k] = ix[k];
            row++;
        }
        for (int k = nd - 1; k >= 0; k--) {
            if (++ix[k] < x->shape[k])
                break;
            ix[k] = 0;
        }
    }
out:
    td_tensor_release(x);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * unique_count, unique: Array API set functions on the flattened input. Equal values (and
 * -0.0 with 0.0) form one group; every NaN is a group of its own (equal_nan=False).
 */
struct uniq {
    struct td_tensor *x;    /* contiguous input */
    struct kv *a;           /* sorted (key, flat index) pairs */
    int64_t n;
    int64_t groups;
    bool floating;
};

static bool uniq_same(const struct uniq *u, int64_t k)
{
    return u->a[k].k == u->a[k - 1].k && !(u->floating && u->a[k].k == UINT64_MAX);
}

static int uniq_build(const struct td_op_ctx *c, struct uniq *u, struct td_error *err)
{
    memset(u, 0, sizeof *u);
    int rc = td_tensor_contiguous(c->inputs[0], c->account, &u->x, err);
    if (rc)
        return rc;
    u->n = td_tensor_numel(u->x);
    u->floating = td_dtype_is_floating(u->x->dtype);
    size_t bytes;
    if (!td_mul_size((size_t)u->n + 1, 2 * sizeof(struct kv) + sizeof(uint64_t), &bytes) ||
        !(u->a = td_malloc(bytes))) {
        td_tensor_release(u->x);
        u->x = NULL;
        return td_error_set(err, TD_ENOMEM, "%s: out of memory", c->info->name);
    }
    struct kv *tmp = u->a + u->n;
    uint64_t *keys = (uint64_t *)(void *)(tmp + u->n);
    fill_keys(keys, td_tensor_data(u->x), 1, u->n, u->x->dtype, false, false);
    for (int64_t k = 0; k < u->n; k++) {
        u->a[k].k = keys[k];
        u->a[k].i = k;
    }
    kv_sort(u->a, tmp, u->n);
    for (int64_t k = 0; k < u->n; k++)
        u->groups += k == 0 || !uniq_same(u, k);
    return 0;
}

static void uniq_fini(struct uniq *u)
{
    td_free(u->a);
    td_tensor_release(u->x);
}

int meta_unique_count(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    (void)c;
    (void)err;
    td__meta_set(out, TD_INT64, 0, NULL);
    return 0;
}

int cpu_unique_count(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct uniq u;
    int rc = uniq_build(c, &u, err);
    if (rc)
        return rc;
    *(int64_t *)td_tensor_data(out[0]) = u.groups;
    uniq_fini(&u);
    return 0;
}

int meta_unique(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    int64_t count;
    int rc = count_attr(c, &count, err);
    if (rc)
        return rc;
    const struct td_meta *x = &c->in_meta[0];
    rc = td__check_shape("unique", &count, 1, x->dtype, err);
    if (rc)
        return rc;
    td__meta_set(&out[0], x->dtype, 1, &count);
    td__meta_set(&out[1], TD_INT64, 1, &count);
    td__meta_set(&out[2], TD_INT64, x->ndim, x->shape);
    td__meta_set(&out[3], TD_INT64, 1, &count);
    return 0;
}

int cpu_unique(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    int64_t count;
    int rc = count_attr(c, &count, err);
    if (rc)
        return rc;
    struct uniq u;
    rc = uniq_build(c, &u, err);
    if (rc)
        return rc;
    if (u.groups != count) {
        rc = td_error_set(err, TD_EINVAL,
                          "unique: count attribute %lld differs from the %lld distinct "
                          "values (take it from unique_count)",
                          (long long)count, (long long)u.groups);
        goto out;
    }
    char *vals = td_tensor_data(out[0]);
    int64_t *first = td_tensor_data(out[1]), *inv = td_tensor_data(out[2]);
    int64_t *counts = td_tensor_data(out[3]), g = -1;
    const char *xp = td_tensor_data(u.x);
    size_t sz = td_dtype_size(u.x->dtype);
    for (int64_t k = 0; k < u.n; k++) {
        if (k == 0 || !uniq_same(&u, k)) {
            g++;
            /* The sort is stable, so a group's first pair is its first occurrence. */
            copy_elem(vals, g, xp, u.a[k].i, sz);
            first[g] = u.a[k].i;
            counts[g] = 0;
        }
        counts[g]++;
        inv[u.a[k].i] = g;
    }
out:
    uniq_fini(&u);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * copysign, hypot, logaddexp, nextafter (binary, broadcast, promoted; bool and integers
 * compute in float32 except for nextafter, which takes floating inputs only) and signbit.
 * Inputs are first rounded to the result dtype (what PyTorch's kernels see), then each
 * element is computed in double and rounded once; nextafter steps in the result's own
 * format (float16/bfloat16 on their bits).
 */
/* log(e^a + e^b) = max + log1p(e^-|a - b|); equal arguments (infinities included) give
 * a + log 2, so logaddexp(inf, inf) = inf and logaddexp(-inf, -inf) = -inf as in NumPy. */
static double logaddexp_d(double a, double b)
{
    if (a == b)
        return a + 0.69314718055994530942;
    double d = a - b;
    if (isnan(d))
        return NAN;
    return (d > 0 ? a : b) + log1p(exp(-fabs(d)));
}

static double binary_d(enum td_op op, double a, double b)
{
    switch (op) {
    case TD_OP_copysign:
        return copysign(a, b);
    case TD_OP_hypot:
        return hypot(a, b);
    case TD_OP_logaddexp:
        return logaddexp_d(a, b);
    default:
        return nextafter(a, b);
    }
}

/* nextafter on the bits of a 16-bit float format (float16 or bfloat16): both are sign,
 * exponent, mantissa, so the neighbour of a finite nonzero value is its bits +- 1. */
static uint16_t nextafter_bits16(uint16_t ab, uint16_t bb, double a, double b, uint16_t nan)
{
    if (isnan(a) || isnan(b))
        return nan;
    if (a == b)
        return bb;
    if (a == 0)
        return (uint16_t)((bb & 0x8000u) | 1u);
    return (a < b) == (a > 0) ? (uint16_t)(ab + 1) : (uint16_t)(ab - 1);
}

struct bin_job {
    enum td_op op;
    enum td_dtype dt;
    const void *a, *b;
    void *y;
};

static void bin_loop(int64_t beg, int64_t end, void *ctx)
{
    const struct bin_job *j = ctx;
    enum td_op op = j->op;
    if (j->dt == TD_FLOAT64) {
        const double *a = j->a, *b = j->b;
        double *y = j->y;
        for (int64_t k = beg; k < end; k++)
            y[k] = binary_d(op, a[k], b[k]);
    } else if (j->dt == TD_FLOAT32) {
        const float *a = j->a, *b = j->b;
        float *y = j->y;
        for (int64_t k = beg; k < end; k++)
            y[k] = op == TD_OP_nextafter ? nextafterf(a[k], b[k])
                                         : (float)binary_d(op, a[k], b[k]);
    } else {
        const uint16_t *a = j->a, *b = j->b;
        uint16_t *y = j->y;
        uint16_t nan = j->dt == TD_FLOAT16 ? 0x7e00 : 0x7fc0;
        for (int64_t k = beg; k < end; k++) {
            double x1 = td__load_f64(&a[k], j->dt), x2 = td__load_f64(&b[k], j->dt);
            if (op == TD_OP_nextafter)
                y[k] = nextafter_bits16(a[k], b[k], x1, x2, nan);
            else
                td__store_f64(&y[k], j->dt, binary_d(op, x1, x2));
        }
    }
}

static int binary_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    const struct td_meta *ms[2] = {&c->in_meta[0], &c->in_meta[1]};
    enum td_dtype dt = td_result_type(2, ms);
    if (!td_dtype_is_floating(dt))
        dt = TD_FLOAT32;
    return td__meta_broadcast(c, dt, out, err);
}

static int binary_run(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *o = out[0], *x[2] = {NULL, NULL};
    struct td_meta m;
    td_tensor_meta(o, &m);
    m.wrapped_number = false;
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        rc = td_tensor_new(&m, false, c->account, &x[i], err);
        if (!rc)
            rc = td_tensor_copy(x[i], c->inputs[i], err);
    }
    if (!rc) {
        struct bin_job j = {c->op, o->dtype, td_tensor_data(x[0]), td_tensor_data(x[1]),
                            td_tensor_data(o)};
        td__parallel_for(td_tensor_numel(o), TD__PAR_GRAIN / 8, bin_loop, &j);
    }
    td_tensor_release(x[0]);
    td_tensor_release(x[1]);
    return rc;
}

#define SORT_BINARY(name)                                                                   \
    int meta_##name(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)  \
    {                                                                                       \
        return binary_meta(c, out, err);                                                    \
    }                                                                                       \
    int cpu_##name(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) \
    {                                                                                       \
        return binary_run(c, out, err);                                                     \
    }

SORT_BINARY(copysign)
SORT_BINARY(hypot)
SORT_BINARY(logaddexp)
SORT_BINARY(nextafter)

int meta_signbit(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err)
{
    return td__meta_broadcast(c, TD_BOOL, out, err);
}

/* signbit: the sign bit of floats (-0.0 and negative NaN included), v < 0 for integers,
 * false for bool. Float inputs widen to double exactly, keeping the sign of zeros and NaNs. */
int cpu_signbit(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err)
{
    struct td_tensor *x = NULL;
    struct td_meta m;
    td_tensor_meta(out[0], &m);
    m.dtype = TD_FLOAT64;
    int rc = td_tensor_new(&m, false, c->account, &x, err);
    if (!rc)
        rc = td_tensor_copy(x, c->inputs[0], err);
    if (!rc) {
        const double *v = td_tensor_data(x);
        bool *y = td_tensor_data(out[0]);
        for (int64_t k = 0, n = td_tensor_numel(x); k < n; k++)
            y[k] = signbit(v[k]) != 0;
    }
    td_tensor_release(x);
    return rc;
}
