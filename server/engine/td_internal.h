/*
 * td_internal.h - helpers shared by the engine's own files (core, tensor, ops, graph and the
 * ops_*.c kernel families). Not part of the public engine contract: symbols are td__.
 *
 * Element access: every dtype can be loaded as int64, double or complex double and stored
 * from them with C conversion semantics (float -> int truncates; out-of-range and NaN give
 * INT64_MIN then wrap to the narrower type, like x86 and NumPy; float -> bool is x != 0;
 * complex -> real takes the real part; complex -> bool is re != 0 || im != 0).
 */
#ifndef TD_INTERNAL_H
#define TD_INTERNAL_H

#include <complex.h>

/* glibc defines CMPLX only for GCC >= 4.7; clang (which reports GCC 4.2) has the builtin. */
#ifndef CMPLX
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif

#include "td_ops.h"

/* ---------------------------------------------------------------------------------------
 * Element loads and stores. p points at one element of dtype dt.
 */
int64_t td__load_i64(const void *p, enum td_dtype dt);       /* floats truncate, see above */
double td__load_f64(const void *p, enum td_dtype dt);        /* complex: real part */
double complex td__load_c128(const void *p, enum td_dtype dt);
bool td__load_bool(const void *p, enum td_dtype dt);         /* truth value */
void td__store_i64(void *p, enum td_dtype dt, int64_t v);    /* wraps for narrow ints */
void td__store_f64(void *p, enum td_dtype dt, double v);
void td__store_c128(void *p, enum td_dtype dt, double complex v);
void td__store_bool(void *p, enum td_dtype dt, bool v);
/* Converts one element from sdt to ddt exactly where the types allow (int64 stays exact). */
void td__convert(void *dst, enum td_dtype ddt, const void *src, enum td_dtype sdt);
/* double -> int64 with defined results: NaN and out-of-range give INT64_MIN. */
int64_t td__f64_to_i64(double v);

/* Stores a scalar attribute into one element of dt (exact for ints). */
void td__store_scalar(void *p, enum td_dtype dt, const struct td_scalar *s);
/* The dtype a scalar implies on its own: bool, int64, float32, complex64 (torch.full). */
enum td_dtype td__scalar_dtype(const struct td_scalar *s);

/* ---------------------------------------------------------------------------------------
 * Meta helpers.
 */
/* Sets m to a non-wrapped tensor meta of dtype dt and the given shape. */
void td__meta_set(struct td_meta *m, enum td_dtype dt, int ndim, const int64_t *shape);
/* Normalises dim in [-ndim, ndim) (ndim 0 accepts -1 and 0 like torch) to [0, ndim).
 * Returns: 0 or TD_EINVAL "op: dim 5 out of range for 2-d tensor". */
int td__norm_dim(const char *op, int64_t dim, int ndim, int *out, struct td_error *err) TD_WUR;
/* Sets mask[d] for each dim of dims[0..n) normalised by td__norm_dim (mask is not cleared
 * first; nothing is set for ndim 0). Returns: 0, td__norm_dim's error, or TD_EINVAL
 * "op: dim D appears more than once" with D as given when as_given, else normalised. */
int td__mark_dims(const char *op, const int64_t *dims, int n, int ndim, bool as_given,
                  bool *mask, struct td_error *err) TD_WUR;
/* Checks a shape attribute (ndim, non-negative, size limit) for dtype dt.
 * Returns: 0 or TD_EINVAL naming op. */
int td__check_shape(const char *op, const int64_t *shape, int ndim, enum td_dtype dt,
                    struct td_error *err) TD_WUR;
/* Both metas have the same dtype and shape (wrapped_number ignored). */
bool td__meta_equal(const struct td_meta *a, const struct td_meta *b);
/* Formats a shape as "[2,3]" into buf (always terminated). Returns buf. */
const char *td__shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

/* ---------------------------------------------------------------------------------------
 * Op validation shared by td_op_call and the graph planner (ops.c).
 */
/* Fills c (op, info, inputs' metas, attrs with defaults) after checking arity, attribute
 * names, types, duplicates and required attributes, and input dtypes against the op's mask.
 * c->inputs, c->rng and c->account are left NULL for the caller to set.
 * Returns: 0 or TD_EINVAL with a message naming the op. */
int td__op_prepare(enum td_op op, int ninputs, const struct td_meta *in_meta, int nattrs,
                   const struct td_attr_arg *attrs, int noutputs, struct td_op_ctx *c,
                   struct td_error *err) TD_WUR;
/* Runs the op's meta function (c prepared by td__op_prepare). out has c->noutputs slots. */
int td__op_meta(const struct td_op_ctx *c, struct td_meta *out, struct td_error *err) TD_WUR;
/* Runs the op's CPU kernel. */
int td__op_cpu(const struct td_op_ctx *c, struct td_tensor **out, struct td_error *err) TD_WUR;
/* Allocates outputs from the planned metas (not for TD_OPF_VIEW ops; zero-filled for
 * empty/empty_like), runs the kernel and checks that what it produced equals the plan.
 * Returns: 0 with out[0..c->noutputs) owned, or a status with every output released. */
int td__op_exec(const struct td_op_ctx *c, const struct td_meta *planned,
                struct td_tensor **out, struct td_error *err) TD_WUR;
/* Largest output count a node may request (ops with n_out -1). */
#define TD__MAX_NODE_OUTPUTS 4096

/* ---------------------------------------------------------------------------------------
 * Elementwise helpers for kernel families.
 */
/* Meta of a standard elementwise op: broadcasts all inputs, output dtype dt. */
int td__meta_broadcast(const struct td_op_ctx *c, enum td_dtype dt, struct td_meta *out,
                       struct td_error *err) TD_WUR;
/* A new contiguous tensor of meta m holding t's data (broadcast and converted by
 * td_tensor_copy) in *out. Returns: 0 or td_tensor_new's / td_tensor_copy's error. */
int td__tensor_dense(const struct td_meta *m, struct td_tensor *t, struct td_account *account,
                     struct td_tensor **out, struct td_error *err) TD_WUR;
/* t converted to dtype dt as a new contiguous tensor, or t itself retained when it already
 * has dtype dt, in *out. Returns: 0 or td__tensor_dense's error. */
int td__as_dtype(struct td_tensor *t, enum td_dtype dt, struct td_account *account,
                 struct td_tensor **out, struct td_error *err) TD_WUR;
/* Random stream for creation ops: element k of an op uses Philox counter (base + k/4), word
 * k%4. Returns the k-th 32-bit word of the op's stream. */
uint32_t td__rng_word(const struct td_rng *rng, uint64_t k);

/* ---------------------------------------------------------------------------------------
 * GEMM (ops_linalg.c): row-major C = op(A) @ op(B) + beta * C for float32, float64,
 * complex64 and complex128; dims must fit int (callers check). OpenBLAS runs single-threaded
 * in the daemon (server/blas.c): products of at least TD__GEMM_SPLIT multiply-adds are cut
 * into row (or, for few rows, column) blocks that run on the engine's threads, so BLAS never
 * keeps threads of its own spinning between the many small GEMMs of a training step.
 */
#define TD__GEMM_SPLIT ((int64_t)1 << 21)
void td__gemm(enum td_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
              int64_t ldc);

/* ---------------------------------------------------------------------------------------
 * Parallel loops (parallel.c).
 */
/* Elements below which a kernel does not split its work: waking helpers costs more than a
 * cheap loop over this many elements gains. */
#define TD__PAR_GRAIN 32768

/* Runs fn over [0, n) cut into at most td_parallel_threads() contiguous chunks of at least
 * `grain` indices each; chunks run on the pool's helpers and on the caller, and the call
 * returns when all of them are done. Chunk boundaries depend only on n, grain and the thread
 * count. Runs fn(0, n, ctx) directly when n < 2 * grain, with one thread, or when called
 * from inside a chunk (nested use is serial). Never allocates and never fails.
 * Thread: any number of threads may call at once; each waits only for its own chunks. */
void td__parallel_for(int64_t n, int64_t grain,
                      void (*fn)(int64_t begin, int64_t end, void *ctx), void *ctx);

#endif
