/*
 * td_core.h - the engine's foundation: statuses and error detail, dtypes, the allocator,
 * storage, strided tensors, type promotion and broadcasting.
 *
 * Everything here is device independent; CPU kernels live in the ops_*.c files.
 * Naming follows ../shared/STYLE.md: td_<module>_<action> public, td__ internal,
 * _new returns an owned reference, _retain/_release count, _get borrows.
 */
#ifndef TD_CORE_H
#define TD_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_WUR __attribute__((warn_unused_result))
#define TD_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---------------------------------------------------------------------------------------
 * Statuses. One list gives the enum, the strerror text and the gRPC canonical code.
 * X(NAME, value, text, grpc_code)
 */
#define TD_STATUS_MAP(X)                                                            \
    X(OK, 0, "ok", 0)                                                               \
    X(EINVAL, -1, "invalid argument", 3)                                            \
    X(ENOTFOUND, -2, "not found", 5)                                                \
    X(EEXIST, -3, "already exists", 6)                                              \
    X(ENOMEM, -4, "out of memory", 8)                                               \
    X(ELIMIT, -5, "limit exceeded", 8)                                              \
    X(EUNIMPL, -6, "not implemented", 12)                                           \
    X(EPRECOND, -7, "failed precondition", 9)                                       \
    X(ERANGE, -8, "out of range", 11)                                               \
    X(ECANCELLED, -9, "cancelled", 1)                                               \
    X(EUNAVAIL, -10, "unavailable", 14)                                             \
    X(EPROTO, -11, "protocol error", 3)                                             \
    X(EINTERNAL, -12, "internal error", 13)                                         \
    X(EPERM, -13, "permission denied", 7)                                           \
    X(EAUTH, -14, "unauthenticated", 16)                                            \
    X(EDEADLINE, -15, "deadline exceeded", 4)

enum td_status {
#define TD__S(name, val, text, code) TD_##name = (val),
    TD_STATUS_MAP(TD__S)
#undef TD__S
};

/* Returns: static text for a status ("invalid argument"); "unknown status" otherwise. */
const char *td_strerror(int status);
/* Returns: the gRPC canonical code (0..16) the wire uses for a status. */
int td_status_grpc_code(int status);

#define TD_ERROR_MSG_MAX 512

/* Error detail: a status plus a formatted message that the reply carries to the user. */
struct td_error {
    int status;
    char msg[TD_ERROR_MSG_MAX];
};

/* Sets err (if non-NULL) and returns status, so callers write `return td_error_set(...)`.
 * The message should name the op and the offending value: "matmul: inner dims 3 != 4". */
int td_error_set(struct td_error *err, int status, const char *fmt, ...) TD_PRINTF(3, 4);
void td_error_clear(struct td_error *err);

/* ---------------------------------------------------------------------------------------
 * DTypes. Values equal the wire enum tensord.v1.DType.
 * X(NAME, lower_name, item_size, kind)  kind: B bool, U unsigned, I signed, F float, C complex
 */
#define TD_DTYPE_MAP(X)                                                             \
    X(BOOL, bool, 1, 'b')                                                           \
    X(UINT8, uint8, 1, 'u')                                                         \
    X(INT8, int8, 1, 'i')                                                           \
    X(INT16, int16, 2, 'i')                                                         \
    X(INT32, int32, 4, 'i')                                                         \
    X(INT64, int64, 8, 'i')                                                         \
    X(FLOAT16, float16, 2, 'f')                                                     \
    X(BFLOAT16, bfloat16, 2, 'f')                                                   \
    X(FLOAT32, float32, 4, 'f')                                                     \
    X(FLOAT64, float64, 8, 'f')                                                     \
    X(COMPLEX64, complex64, 8, 'c')                                                 \
    X(COMPLEX128, complex128, 16, 'c')

enum td_dtype {
#define TD__D(name, lname, size, kind) TD_##name,
    TD_DTYPE_MAP(TD__D)
#undef TD__D
    TD_DTYPE_COUNT
};

/* Bit masks of dtypes, used by the op table to declare what an op accepts. */
#define TD_DTM(dt) (1u << (dt))
#define TD_DTM_BOOL TD_DTM(TD_BOOL)
#define TD_DTM_INT                                                                  \
    (TD_DTM(TD_UINT8) | TD_DTM(TD_INT8) | TD_DTM(TD_INT16) | TD_DTM(TD_INT32) |     \
     TD_DTM(TD_INT64))
#define TD_DTM_FLOAT                                                                \
    (TD_DTM(TD_FLOAT16) | TD_DTM(TD_BFLOAT16) | TD_DTM(TD_FLOAT32) | TD_DTM(TD_FLOAT64))
#define TD_DTM_COMPLEX (TD_DTM(TD_COMPLEX64) | TD_DTM(TD_COMPLEX128))
#define TD_DTM_REAL (TD_DTM_INT | TD_DTM_FLOAT)             /* numbers, no bool, no complex */
#define TD_DTM_NUM (TD_DTM_REAL | TD_DTM_COMPLEX)            /* every number, no bool */
#define TD_DTM_FC (TD_DTM_FLOAT | TD_DTM_COMPLEX)
#define TD_DTM_INTB (TD_DTM_BOOL | TD_DTM_INT)               /* bitwise ops */
#define TD_DTM_REALB (TD_DTM_BOOL | TD_DTM_REAL)
#define TD_DTM_ALL (TD_DTM_BOOL | TD_DTM_NUM)

const char *td_dtype_name(enum td_dtype dt);      /* "float32"; "?" when out of range */
size_t td_dtype_size(enum td_dtype dt);           /* bytes per element; 0 when out of range */
bool td_dtype_valid(int64_t v);                   /* v names a dtype */
bool td_dtype_is_complex(enum td_dtype dt);
bool td_dtype_is_floating(enum td_dtype dt);      /* float16..float64, not complex */
bool td_dtype_is_integral(enum td_dtype dt, bool include_bool);
/* complex64 -> float32, complex128 -> float64, others unchanged. */
enum td_dtype td_dtype_to_real(enum td_dtype dt);
/* float16/bfloat16/float32 -> complex64, float64 -> complex128, complex unchanged. */
enum td_dtype td_dtype_to_complex(enum td_dtype dt);
/* PyTorch's promote_types table (c10/core/ScalarType.cpp semantics):
 * bool < uint8/int8 < ... < float < complex; uint8+int8 -> int16; float16+bfloat16 ->
 * float32; int + float16 -> float16; complex64 + float64 -> complex128. */
enum td_dtype td_promote_types(enum td_dtype a, enum td_dtype b);

/* Element conversions used by kernels and casts: half precision through float32. */
float td_f16_to_f32(uint16_t h);
uint16_t td_f32_to_f16(float f);    /* round to nearest even, overflow to inf, NaN kept */
float td_bf16_to_f32(uint16_t h);
uint16_t td_f32_to_bf16(float f);   /* round to nearest even */

/* ---------------------------------------------------------------------------------------
 * Allocator. All engine memory goes through here so it can be charged to an account and
 * failed on demand in tests (SQLite-style fault injection).
 */
struct td_account {
    _Atomic uint64_t bytes;      /* bytes currently held */
    _Atomic uint64_t peak;
    _Atomic uint64_t limit;      /* 0: unlimited; allocations beyond fail with TD_ENOMEM.
                                    Atomic: the daemon's SetQuota changes it at run time. */
    /* Accounts nest (session -> user -> server): a charge is made to every account up the
     * chain, all before the memory is allocated, and fails if any of them would go over its
     * limit. `parent` is fixed before the first charge; `name` (may be NULL) says which
     * limit refused in the error ("user 'alice'"). Both borrowed. */
    struct td_account *parent;
    const char *name;
};

void *td_malloc(size_t n);               /* NULL on failure (or injected failure) */
void *td_calloc(size_t count, size_t size);
void *td_realloc(void *p, size_t n);
void td_free(void *p);
char *td_strdup(const char *s);
/* Fault injection: the n-th allocation from now fails (n>=1); 0 disables. Thread: global. */
void td_alloc_fail_after(long n);
/* Bytes held by td_malloc'd blocks and by storage, for leak checks in tests. */
uint64_t td_alloc_live_bytes(void);
uint64_t td_alloc_live_blocks(void);

/* Overflow-checked size arithmetic: return false on overflow, *out untouched then. */
bool td_mul_size(size_t a, size_t b, size_t *out);
bool td_add_size(size_t a, size_t b, size_t *out);
bool td_mul_i64(int64_t a, int64_t b, int64_t *out);

/* ---------------------------------------------------------------------------------------
 * Storage: a refcounted byte buffer on one device, charged to an account.
 */
struct td_storage {
    _Atomic int refcount;
    void *data;
    size_t nbytes;
    size_t capacity;              /* bytes actually reserved (size class) */
    struct td_account *account;   /* borrowed; may be NULL */
    int device;                   /* 0: cpu */
    /* Bumped by every in-place write (copy_, optimizer steps, .grad accumulation), shared by
     * all views; autograd compares it with the value a saved tensor had. */
    _Atomic uint64_t version;
};

/* Allocates nbytes (64-byte aligned), charging `account` first; zeroed when `zero`.
 * Returns: 0 or TD_ENOMEM (account over its limit, or the system refused), err filled.
 * Ownership: *out is an owned reference. */
int td_storage_new(size_t nbytes, bool zero, struct td_account *account,
                   struct td_storage **out, struct td_error *err) TD_WUR;
struct td_storage *td_storage_retain(struct td_storage *s);
void td_storage_release(struct td_storage *s);
/* Large freed blocks are cached for reuse (see core.c). Bound the cache (default 1 GiB),
 * release every cached block (at shutdown, or under memory pressure), and read its size.
 * Thread: safe from any thread. */
void td_storage_cache_set_limit(size_t nbytes);
void td_storage_cache_trim(void);
size_t td_storage_cache_bytes(void);

/* ---------------------------------------------------------------------------------------
 * Tensors: storage + dtype + shape + strides (in elements, may be negative or zero) + offset.
 */
#define TD_MAX_NDIM 16

/* Shape-only description of a tensor: what meta functions consume and produce. */
struct td_meta {
    enum td_dtype dtype;
    int ndim;
    int64_t shape[TD_MAX_NDIM];
    bool wrapped_number;   /* a Python scalar turned into a 0-d tensor (weak in promotion) */
};

struct td_tensor {
    _Atomic int refcount;
    struct td_storage *storage;
    enum td_dtype dtype;
    int ndim;
    int64_t shape[TD_MAX_NDIM];
    int64_t strides[TD_MAX_NDIM];  /* elements */
    int64_t offset;                /* elements from storage->data */
    bool wrapped_number;
    struct td_ag_meta *ag;         /* autograd fields (td_autograd.h); NULL when none */
};

/* Checks a shape from the wire: ndim <= TD_MAX_NDIM, no negative dim, numel*itemsize fits.
 * Returns: 0 or TD_EINVAL with a message naming `what`. *numel_out may be NULL. */
int td_shape_check(const int64_t *shape, int ndim, enum td_dtype dt, const char *what,
                   int64_t *numel_out, struct td_error *err) TD_WUR;
int64_t td_shape_numel(const int64_t *shape, int ndim);  /* for shapes already checked */
/* C-order contiguous strides for shape. */
void td_contiguous_strides(const int64_t *shape, int ndim, int64_t *strides);

/* New contiguous tensor of meta's dtype and shape, uninitialised unless zero.
 * Returns: 0, TD_EINVAL (bad shape), TD_ENOMEM. Ownership: *out owned. */
int td_tensor_new(const struct td_meta *meta, bool zero, struct td_account *account,
                  struct td_tensor **out, struct td_error *err) TD_WUR;
/* New tensor struct viewing `base`'s storage with the given geometry (no data copied).
 * The caller guarantees the geometry stays inside the storage. Returns 0 or TD_ENOMEM. */
int td_tensor_new_view(struct td_tensor *base, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset, struct td_tensor **out,
                       struct td_error *err) TD_WUR;
struct td_tensor *td_tensor_retain(struct td_tensor *t);
void td_tensor_release(struct td_tensor *t);
int64_t td_tensor_numel(const struct td_tensor *t);
size_t td_tensor_nbytes(const struct td_tensor *t);      /* numel * itemsize */
bool td_tensor_is_contiguous(const struct td_tensor *t); /* C order */
void *td_tensor_data(const struct td_tensor *t);         /* storage->data + offset*itemsize */
void td_tensor_meta(const struct td_tensor *t, struct td_meta *out);
/* Copies src into dst elementwise with dtype conversion; shapes must broadcast to dst.
 * Returns: 0 or TD_EINVAL. */
int td_tensor_copy(struct td_tensor *dst, const struct td_tensor *src,
                   struct td_error *err) TD_WUR;
/* Returns a contiguous tensor with t's contents: t itself retained when already contiguous. */
int td_tensor_contiguous(struct td_tensor *t, struct td_account *account,
                         struct td_tensor **out, struct td_error *err) TD_WUR;

/* ---------------------------------------------------------------------------------------
 * Broadcasting and type promotion.
 */
/* Broadcasts n shapes (NumPy rules). Returns: 0 or TD_EINVAL ("add: shapes [2,3] and [4]
 * cannot broadcast") where `op` names the caller. */
int td_broadcast_shapes(const char *op, int n, const struct td_meta *const *in, int *ndim_out,
                        int64_t *shape_out, struct td_error *err) TD_WUR;
/* PyTorch's result_type over inputs: dimensioned tensors > 0-d tensors > wrapped numbers,
 * each tier only raising the category (bool < integer < floating < complex). A wrapped float
 * scalar yields float32 (the default dtype), a wrapped complex yields complex64. */
enum td_dtype td_result_type(int n, const struct td_meta *const *in);

/* ---------------------------------------------------------------------------------------
 * The iterator: walks up to TD_ITER_MAX operands of one broadcast shape, calling a typed
 * inner loop over the innermost dimension with byte strides. Dimensions that are contiguous
 * across all operands are coalesced. Operand 0.. are usually outputs first, then inputs.
 */
#define TD_ITER_MAX 8

/* Inner loop: n elements; data[k] points at operand k's first element, strides[k] in bytes. */
typedef void (*td_loop_fn)(char **data, const int64_t *strides, int64_t n, void *ctx);

struct td_iter {
    int noperands;
    int ndim;                             /* after coalescing; >= 1 */
    int64_t shape[TD_MAX_NDIM];           /* innermost is shape[ndim-1] */
    int64_t strides[TD_ITER_MAX][TD_MAX_NDIM];   /* bytes */
    char *data[TD_ITER_MAX];
    int64_t numel;
};

/* Prepares iteration of `n` tensors over `shape` (each operand broadcast to it: size-1 or
 * missing leading dims get stride 0). Returns: 0 or TD_EINVAL if an operand does not
 * broadcast. */
int td_iter_init(struct td_iter *it, int n, struct td_tensor *const *ops, int ndim,
                 const int64_t *shape, struct td_error *err) TD_WUR;
/* Runs fn over every element. Large iterations (see td_parallel_set_threads) are cut into
 * contiguous ranges of the C-order element sequence that run at the same time on the engine's
 * threads, so fn may be called concurrently with disjoint parts of the operands and with
 * rows cut short at a range's edges. fn must treat ctx as read-only (or write it only
 * atomically) and compute each element independently of the others; then the result is
 * the same as a serial walk, bit for bit. */
void td_iter_run(const struct td_iter *it, td_loop_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------
 * Counter-based RNG: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011). A session has a seed and an offset; each random op consumes a block
 * of counters, so results depend only on (seed, offset) and are reproducible.
 */
struct td_rng {
    uint64_t seed;
    uint64_t offset;   /* next unused counter (in 128-bit blocks) */
};
void td_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);

/* ---------------------------------------------------------------------------------------
 * Engine threads. Large elementwise, reduction, scan and random-fill kernels split their work
 * over a pool of helper threads plus the calling thread (server/engine/parallel.c). BLAS
 * calls never run on this pool; OpenBLAS keeps its own threads.
 */
#define TD_PARALLEL_MAX_THREADS 256

/* Sets how many threads (the caller included) one kernel may use: 0 (or negative) means the
 * number of online CPUs, 1 makes every kernel serial, larger values are capped at
 * TD_PARALLEL_MAX_THREADS. The helpers start lazily on the first large kernel; a running
 * pool with another size is stopped and restarts with the new size on next use.
 * No result depends on the count. Elementwise ops, random fills, scans and reductions to
 * many outputs equal a serial run bit for bit; reductions to at most four outputs of 64Ki or
 * more elements each (full sums, say) combine up to 32 partial results in a fixed order, so
 * float sums and products may differ from one serial pass in the last bits.
 * Thread: safe from any thread that is not itself running a kernel chunk; kernels running
 * meanwhile finish on fewer threads. */
void td_parallel_set_threads(int n);
/* Returns: the thread count kernels use (the caller included), after resolving 0. */
int td_parallel_threads(void);
/* Lets OpenBLAS run n threads inside a LAPACK call on one large matrix (eigh, svd and the
 * other factorizations of at least 256 rows), which the engine cannot cut into blocks
 * itself; between such calls OpenBLAS stays single-threaded (see server/blas.c). n <= 1
 * (the default) leaves OpenBLAS's thread count alone: the daemon passes its compute
 * thread count only when it set OPENBLAS_NUM_THREADS=1 itself, never over a user's choice.
 * Thread: call at start-up, before kernels run. */
void td_lapack_set_threads(int n);
/* Stops and joins the helper threads (the daemon calls it at exit so sanitizers see no
 * thread left). A later large kernel starts them again. Thread: safe from any thread that is
 * not itself running a kernel chunk. */
void td_parallel_shutdown(void);

#endif
