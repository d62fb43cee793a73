/*
 * test_parallel.c - the engine's parallel-for (server/engine/parallel.c) and the kernels that
 * use it: every index covered exactly once for many sizes, grains and thread counts,
 * concurrent and nested callers, one-thread mode; elementwise ops, reductions over many
 * outputs, scans and random fills identical to a one-thread run and to values computed here;
 * large full reductions against long double references; no leaked blocks.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "td_internal.h"
#include "leakcheck.h"

static int teardown(void **state)
{
    td_parallel_set_threads(0);
    return leak_teardown(state);
}

/* ---------------------------------------------------------------------------------------
 * td__parallel_for itself.
 */
#define COVER_MAX 100003

static _Atomic int cover_hits[COVER_MAX];

struct cover_ctx {
    _Atomic int64_t chunks;
    _Atomic int64_t min_len;
    _Atomic int64_t covered;
};

static void cover_fn(int64_t b, int64_t e, void *vctx)
{
    struct cover_ctx *c = vctx;
    atomic_fetch_add(&c->chunks, 1);
    int64_t len = e - b, cur = atomic_load(&c->min_len);
    while (len < cur && !atomic_compare_exchange_weak(&c->min_len, &cur, len)) {
    }
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&cover_hits[i], 1);
    atomic_fetch_add(&c->covered, len);
}

static void check_cover(int64_t n, int64_t grain, int threads)
{
    for (int64_t i = 0; i < n; i++)
        atomic_store(&cover_hits[i], 0);
    struct cover_ctx c;
    atomic_init(&c.chunks, 0);
    atomic_init(&c.min_len, INT64_MAX);
    atomic_init(&c.covered, 0);
    td__parallel_for(n, grain, cover_fn, &c);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&cover_hits[i]) != 1)
            fail_msg("n=%lld grain=%lld threads=%d: index %lld ran %d times", (long long)n,
                     (long long)grain, threads, (long long)i, atomic_load(&cover_hits[i]));
    assert_int_equal(atomic_load(&c.covered), n);
    int64_t chunks = atomic_load(&c.chunks);
    if (n == 0) {
        assert_int_equal(chunks, 0);
        return;
    }
    /* At most one chunk per thread; every chunk at least `grain` long unless the whole range
     * ran as one chunk; more than one chunk whenever there was room for two. */
    assert_true(chunks >= 1 && chunks <= threads);
    if (chunks > 1)
        assert_true(atomic_load(&c.min_len) >= grain);
    int64_t g = grain < 1 ? 1 : grain;
    if (threads > 1 && n >= 2 * g)
        assert_true(chunks >= 2);
    else
        assert_int_equal(chunks, 1);
}

static void test_cover(void **state)
{
    (void)state;
    static const int threads[] = {1, 2, 3, 4, 7, 16};
    static const int64_t ns[] = {0, 1, 2, 3, 5, 63, 64, 65, 1000, 4097, COVER_MAX};
    static const int64_t grains[] = {0, 1, 3, 64, 1000, 50000};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        td_parallel_set_threads(threads[t]);
        assert_int_equal(td_parallel_threads(), threads[t]);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
                check_cover(ns[i], grains[g], threads[t]);
    }
    /* Stopping the pool and using it again restarts it. */
    td_parallel_shutdown();
    check_cover(5000, 1, 16);
    td_parallel_shutdown();
}

/* The chunks really run at the same time on different threads: the first chunk waits (up
 * to 10 s) until the second has started, which only another thread can do. */
struct meet_ctx {
    _Atomic int started;
    _Atomic int met;
    pthread_t who[2];           /* each chunk writes its own slot */
};

static void meet_fn(int64_t b, int64_t e, void *vctx)
{
    struct meet_ctx *m = vctx;
    (void)e;
    m->who[b] = pthread_self();
    atomic_fetch_add(&m->started, 1);
    if (b != 0)
        return;
    for (long spin = 0; spin < 10000000L; spin++) {
        if (atomic_load(&m->started) >= 2) {
            atomic_store(&m->met, 1);
            return;
        }
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
    }
}

static void test_helpers_run(void **state)
{
    (void)state;
    td_parallel_set_threads(2);
    struct meet_ctx m;
    memset(&m, 0, sizeof m);
    td__parallel_for(2, 1, meet_fn, &m);
    assert_int_equal(atomic_load(&m.started), 2);
    assert_int_equal(atomic_load(&m.met), 1);
    assert_false(pthread_equal(m.who[0], m.who[1]));
    assert_true(pthread_equal(m.who[0], pthread_self()) ||
                pthread_equal(m.who[1], pthread_self()));
}

/* One-thread mode: a single call on the calling thread covering [0, n). */
struct serial_ctx {
    pthread_t caller;
    int calls;
    int64_t b, e;
    bool same_thread;
};

static void serial_fn(int64_t b, int64_t e, void *vctx)
{
    struct serial_ctx *s = vctx;
    s->calls++;
    s->b = b;
    s->e = e;
    s->same_thread = pthread_equal(pthread_self(), s->caller);
}

static void test_one_thread(void **state)
{
    (void)state;
    td_parallel_set_threads(1);
    assert_int_equal(td_parallel_threads(), 1);
    struct serial_ctx s = {pthread_self(), 0, -1, -1, false};
    td__parallel_for(1000000, 1, serial_fn, &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.b, 0);
    assert_int_equal(s.e, 1000000);
    assert_true(s.same_thread);
    /* 0 means the online CPUs: at least one. */
    td_parallel_set_threads(0);
    assert_true(td_parallel_threads() >= 1);
}

/* Several threads calling at once, each with its own counters. */
#define CONC_THREADS 4
#define CONC_N 20000

struct conc_arg {
    _Atomic int hits[CONC_N];
    bool ok;
};

static void conc_fn(int64_t b, int64_t e, void *vctx)
{
    struct conc_arg *a = vctx;
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&a->hits[i], 1);
}

static void *conc_main(void *varg)
{
    struct conc_arg *a = varg;
    a->ok = true;
    for (int rep = 0; rep < 200 && a->ok; rep++) {
        for (int i = 0; i < CONC_N; i++)
            atomic_store(&a->hits[i], 0);
        td__parallel_for(CONC_N, 100 + rep, conc_fn, a);
        for (int i = 0; i < CONC_N; i++)
            if (atomic_load(&a->hits[i]) != 1)
                a->ok = false;
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    static struct conc_arg args[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    td_parallel_set_threads(3);
    for (int t = 0; t < CONC_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, conc_main, &args[t]), 0);
    for (int t = 0; t < CONC_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < CONC_THREADS; t++)
        assert_true(args[t].ok);
}

/* A chunk that calls td__parallel_for again gets one serial call on its own thread. */
#define NEST_OUTER 8

struct nest_ctx {
    _Atomic int inner_calls[NEST_OUTER];
    _Atomic int inner_full[NEST_OUTER];
    _Atomic int inner_same_thread[NEST_OUTER];
    _Atomic int outer_chunks;
};

struct nest_inner {
    pthread_t owner;
    int calls;
    bool full, same;
};

static void nest_inner_fn(int64_t b, int64_t e, void *vctx)
{
    struct nest_inner *in = vctx;
    in->calls++;
    in->full = b == 0 && e == 100000;
    in->same = pthread_equal(pthread_self(), in->owner);
}

static void nest_outer_fn(int64_t b, int64_t e, void *vctx)
{
    struct nest_ctx *c = vctx;
    atomic_fetch_add(&c->outer_chunks, 1);
    for (int64_t i = b; i < e; i++) {
        struct nest_inner in = {pthread_self(), 0, false, false};
        td__parallel_for(100000, 1, nest_inner_fn, &in);
        atomic_store(&c->inner_calls[i], in.calls);
        atomic_store(&c->inner_full[i], in.full);
        atomic_store(&c->inner_same_thread[i], in.same);
    }
}

static void test_reentrant(void **state)
{
    (void)state;
    td_parallel_set_threads(4);
    struct nest_ctx c;
    memset(&c, 0, sizeof c);
    td__parallel_for(NEST_OUTER, 1, nest_outer_fn, &c);
    assert_true(atomic_load(&c.outer_chunks) >= 2);
    for (int i = 0; i < NEST_OUTER; i++) {
        assert_int_equal(atomic_load(&c.inner_calls[i]), 1);
        assert_true(atomic_load(&c.inner_full[i]));
        assert_true(atomic_load(&c.inner_same_thread[i]));
    }
    /* After the nested use the caller is an ordinary caller again: work is split. */
    struct cover_ctx cc;
    atomic_init(&cc.chunks, 0);
    atomic_init(&cc.min_len, INT64_MAX);
    atomic_init(&cc.covered, 0);
    for (int i = 0; i < 1000; i++)
        atomic_store(&cover_hits[i], 0);
    td__parallel_for(1000, 1, cover_fn, &cc);
    assert_true(atomic_load(&cc.chunks) >= 2);
}

/* ---------------------------------------------------------------------------------------
 * Kernels: helpers.
 */
static struct td_tensor *new_tensor(enum td_dtype dt, int ndim, const int64_t *shape)
{
    struct td_meta m;
    struct td_error err;
    struct td_tensor *t = NULL;
    td__meta_set(&m, dt, ndim, shape);
    assert_int_equal(td_tensor_new(&m, false, NULL, &t, &err), 0);
    return t;
}

/* A deterministic, irregular value for element k (no two neighbours alike). */
static double wave(int64_t k)
{
    return sin((double)k * 0.37) * 3.0 + (double)(k % 7) * 0.25 - 1.0;
}

static void fill_wave(struct td_tensor *t, double scale)
{
    int64_t n = td_tensor_numel(t);
    size_t isz = td_dtype_size(t->dtype);
    char *p = td_tensor_data(t);
    for (int64_t k = 0; k < n; k++)
        td__store_f64(p + (size_t)k * isz, t->dtype, wave(k) * scale);
}

/* Element k in C order of t's logical shape, through its strides. */
static const char *elem(const struct td_tensor *t, int64_t k)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (k % t->shape[d]) * t->strides[d];
        k /= t->shape[d];
    }
    return (const char *)td_tensor_data(t) + off * (int64_t)td_dtype_size(t->dtype);
}

static struct td_tensor *run(enum td_op op, int nin, struct td_tensor *const *in, int nattrs,
                             const struct td_attr_arg *attrs, struct td_rng *rng)
{
    struct td_error err;
    struct td_tensor *out = NULL;
    int rc = td_op_call(op, nin, in, nattrs, attrs, 1, &out, rng, NULL, &err);
    if (rc)
        fail_msg("op %d failed: %s", (int)op, err.msg);
    return out;
}

/* Runs op with 1 thread and with `threads` threads; both outputs must be byte-identical.
 * Returns the multi-threaded output (owned). */
static struct td_tensor *run_both(enum td_op op, int nin, struct td_tensor *const *in,
                                  int nattrs, const struct td_attr_arg *attrs, int threads)
{
    td_parallel_set_threads(1);
    struct td_tensor *serial = run(op, nin, in, nattrs, attrs, NULL);
    td_parallel_set_threads(threads);
    struct td_tensor *par = run(op, nin, in, nattrs, attrs, NULL);
    assert_int_equal(serial->dtype, par->dtype);
    assert_int_equal(td_tensor_numel(serial), td_tensor_numel(par));
    assert_true(td_tensor_is_contiguous(serial) && td_tensor_is_contiguous(par));
    if (memcmp(td_tensor_data(serial), td_tensor_data(par), td_tensor_nbytes(par)) != 0)
        fail_msg("op %d: %d-thread result differs from the serial one", (int)op, threads);
    td_tensor_release(serial);
    return par;
}

static struct td_attr_arg a_ints(const char *name, int n, const int64_t *v)
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

static struct td_attr_arg a_int(const char *name, int64_t v)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_INT;
    a.value.i = v;
    return a;
}

static struct td_attr_arg a_dtype(const char *name, enum td_dtype dt)
{
    struct td_attr_arg a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.value.type = TD_ATTR_DTYPE;
    a.value.dtype = dt;
    return a;
}

/* ---------------------------------------------------------------------------------------
 * Elementwise: a transposed input broadcast against a [5,1,257] one, 514000 outputs.
 */
static void test_elementwise(void **state)
{
    (void)state;
    struct td_error err;
    /* x: a [257,400] float32 tensor seen as its transpose [1,400,257] (strides 1 and 400). */
    struct td_tensor *base = new_tensor(TD_FLOAT32, 2, (const int64_t[]){257, 400});
    fill_wave(base, 1.0);
    struct td_tensor *x = NULL;
    assert_int_equal(td_tensor_new_view(base, 3, (const int64_t[]){1, 400, 257},
                                        (const int64_t[]){0, 1, 400}, 0, &x, &err),
                     0);
    struct td_tensor *y = new_tensor(TD_FLOAT32, 3, (const int64_t[]){5, 1, 257});
    fill_wave(y, 0.5);
    struct td_tensor *y64 = new_tensor(TD_FLOAT64, 3, (const int64_t[]){5, 1, 257});
    fill_wave(y64, 0.5);
    struct td_tensor *xy[2] = {x, y}, *xy64[2] = {x, y64};

    struct td_tensor *add = run_both(TD_OP_add, 2, xy, 0, NULL, 4);
    struct td_tensor *mul = run_both(TD_OP_mul, 2, xy, 0, NULL, 3);
    struct td_tensor *mul64 = run_both(TD_OP_mul, 2, xy64, 0, NULL, 4);  /* generic loop */
    struct td_tensor *ex = run_both(TD_OP_exp, 1, &x, 0, NULL, 4);
    assert_int_equal(td_tensor_numel(add), 5 * 400 * 257);
    assert_int_equal(ex->ndim, 3);
    assert_int_equal(ex->shape[0], 1);
    assert_int_equal(mul64->dtype, TD_FLOAT64);
    /* Values from first principles: x[0,i,j] = wave(j*400+i), y[k,0,j] = 0.5*wave(k*257+j). */
    for (int64_t k = 0; k < 5; k++)
        for (int64_t i = 0; i < 400; i++)
            for (int64_t j = 0; j < 257; j++) {
                float xv = (float)wave(j * 400 + i), yv = (float)(wave(k * 257 + j) * 0.5);
                double y64v = wave(k * 257 + j) * 0.5;
                int64_t o = (k * 400 + i) * 257 + j;
                float got_add = ((const float *)td_tensor_data(add))[o];
                float got_mul = ((const float *)td_tensor_data(mul))[o];
                double got_mul64 = ((const double *)td_tensor_data(mul64))[o];
                if (got_add != xv + yv || got_mul != xv * yv || got_mul64 != (double)xv * y64v)
                    fail_msg("element (%lld,%lld,%lld) wrong", (long long)k, (long long)i,
                             (long long)j);
                if (k == 0 && ((const float *)td_tensor_data(ex))[i * 257 + j] !=
                                  (float)exp((double)xv))
                    fail_msg("exp (%lld,%lld) wrong", (long long)i, (long long)j);
            }

    /* Integer division by zero is still reported when the loop runs on several threads. */
    struct td_tensor *num = new_tensor(TD_INT64, 1, (const int64_t[]){200000});
    struct td_tensor *den = new_tensor(TD_INT64, 1, (const int64_t[]){200000});
    for (int64_t k = 0; k < 200000; k++) {
        ((int64_t *)td_tensor_data(num))[k] = k;
        ((int64_t *)td_tensor_data(den))[k] = k == 150001 ? 0 : 3;
    }
    struct td_tensor *nd[2] = {num, den}, *out = NULL;
    td_parallel_set_threads(4);
    assert_int_equal(td_op_call(TD_OP_floor_divide, 2, nd, 0, NULL, 1, &out, NULL, NULL, &err),
                     TD_EINVAL);
    assert_non_null(strstr(err.msg, "division by zero"));
    ((int64_t *)td_tensor_data(den))[150001] = 3;
    out = run_both(TD_OP_floor_divide, 2, nd, 0, NULL, 4);
    for (int64_t k = 0; k < 200000; k++)
        assert_int_equal(((const int64_t *)td_tensor_data(out))[k], k / 3);

    /* A copy through the iterator (cast of the transposed view) is exact too. */
    struct td_attr_arg to64[] = {a_dtype("dtype", TD_FLOAT64)};
    struct td_tensor *big = new_tensor(TD_FLOAT32, 2, (const int64_t[]){600, 400});
    fill_wave(big, 2.0);
    struct td_tensor *bt = NULL;
    assert_int_equal(td_tensor_new_view(big, 2, (const int64_t[]){400, 600},
                                        (const int64_t[]){1, 400}, 0, &bt, &err),
                     0);
    struct td_tensor *cast = run_both(TD_OP_cast, 1, &bt, 1, to64, 4);
    for (int64_t k = 0; k < 400 * 600; k++)
        assert_true(((const double *)td_tensor_data(cast))[k] ==
                    (double)*(const float *)elem(bt, k));

    struct td_tensor *all[] = {base, x,   y,   y64, add, mul, mul64, ex,
                               num,  den, out, big, bt,  cast};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        td_tensor_release(all[i]);
}

/* ---------------------------------------------------------------------------------------
 * Reductions over many outputs and scans: identical to serial and to sums computed here.
 */
static void test_reduce_many_outputs(void **state)
{
    (void)state;
    struct td_error err;
    /* x: [300,1000] view (transpose of a [1000,300] float32 tensor). */
    struct td_tensor *base = new_tensor(TD_FLOAT32, 2, (const int64_t[]){1000, 300});
    fill_wave(base, 1.0);
    struct td_tensor *x = NULL;
    assert_int_equal(td_tensor_new_view(base, 2, (const int64_t[]){300, 1000},
                                        (const int64_t[]){1, 300}, 0, &x, &err),
                     0);
    struct td_attr_arg d1[] = {a_ints("dim", 1, (const int64_t[]){1})};
    struct td_attr_arg d0[] = {a_ints("dim", 1, (const int64_t[]){0})};
    struct td_attr_arg i1[] = {a_int("dim", 1)};
    enum td_op ops[] = {TD_OP_sum, TD_OP_mean, TD_OP_prod, TD_OP_amax, TD_OP_amin,
                        TD_OP_var, TD_OP_std,  TD_OP_all,  TD_OP_any,  TD_OP_logsumexp};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        struct td_tensor *r1 = run_both(ops[k], 1, &x, 1, d1, 4);
        struct td_tensor *r0 = run_both(ops[k], 1, &x, 1, d0, 3);
        assert_int_equal(td_tensor_numel(r1), 300);
        assert_int_equal(td_tensor_numel(r0), 1000);
        td_tensor_release(r1);
        td_tensor_release(r0);
    }
    struct td_tensor *am = run_both(TD_OP_argmax, 1, &x, 1, i1, 4);
    struct td_tensor *s1 = run_both(TD_OP_sum, 1, &x, 1, d1, 4);
    /* x[i,j] = wave(j*300+i): row sums and argmax from a long double reference. */
    for (int64_t i = 0; i < 300; i++) {
        long double ref = 0;
        int64_t best = 0;
        float bestv = -INFINITY;
        for (int64_t j = 0; j < 1000; j++) {
            float v = (float)wave(j * 300 + i);
            ref += v;
            if (v > bestv) {
                bestv = v;
                best = j;
            }
        }
        double got = ((const float *)td_tensor_data(s1))[i];
        if (fabs(got - (double)ref) > 1e-6 * (1 + fabsl(ref)))
            fail_msg("row %lld: sum %.9g, reference %.9Lg", (long long)i, got, ref);
        assert_int_equal(((const int64_t *)td_tensor_data(am))[i], best);
    }
    /* Scans along both dims. */
    struct td_tensor *cs1 = run_both(TD_OP_cumsum, 1, &x, 1, i1, 4);
    struct td_attr_arg i0[] = {a_int("dim", 0)};
    struct td_tensor *cs0 = run_both(TD_OP_cumsum, 1, &x, 1, i0, 4);
    struct td_tensor *cp1 = run_both(TD_OP_cumprod, 1, &x, 1, i1, 4);
    for (int64_t i = 0; i < 300; i += 37) {
        double s = 0;
        for (int64_t j = 0; j < 1000; j++) {
            s += (double)(float)wave(j * 300 + i);
            assert_true(((const float *)td_tensor_data(cs1))[i * 1000 + j] == (float)s);
        }
    }
    for (int64_t j = 0; j < 1000; j += 91) {
        double s = 0;
        for (int64_t i = 0; i < 300; i++) {
            s += (double)(float)wave(j * 300 + i);
            assert_true(((const float *)td_tensor_data(cs0))[i * 1000 + j] == (float)s);
        }
    }
    struct td_tensor *all[] = {base, x, am, s1, cs1, cs0, cp1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        td_tensor_release(all[i]);
}

/* ---------------------------------------------------------------------------------------
 * Full reductions of large tensors: split into parts; compared with references, and the
 * same for every thread count.
 */
#define FULL_N 1000000

static double scalar_of(struct td_tensor *t)
{
    assert_int_equal(td_tensor_numel(t), 1);
    return td__load_f64(td_tensor_data(t), t->dtype);
}

static void test_full_reductions(void **state)
{
    (void)state;
    struct td_tensor *x = new_tensor(TD_FLOAT64, 1, (const int64_t[]){FULL_N});
    double *xp = td_tensor_data(x);
    long double ref = 0;
    for (int64_t k = 0; k < FULL_N; k++) {
        xp[k] = wave(k) * 1e3 + 1.0 / (double)(k + 1);
        ref += xp[k];
    }
    long double mean = ref / FULL_N, ss = 0;
    for (int64_t k = 0; k < FULL_N; k++)
        ss += (xp[k] - mean) * (xp[k] - mean);
    double sums[3];
    static const int counts[3] = {1, 2, 5};
    for (int t = 0; t < 3; t++) {
        td_parallel_set_threads(counts[t]);
        struct td_tensor *s = run(TD_OP_sum, 1, &x, 0, NULL, NULL);
        sums[t] = scalar_of(s);
        td_tensor_release(s);
        if (fabs(sums[t] - (double)ref) > 1e-12 * fabsl(ref))
            fail_msg("%d threads: sum %.17g, reference %.17Lg", counts[t], sums[t], ref);
    }
    assert_true(sums[0] == sums[1] && sums[1] == sums[2]);

    td_parallel_set_threads(4);
    struct td_tensor *m = run(TD_OP_mean, 1, &x, 0, NULL, NULL);
    assert_true(fabs(scalar_of(m) - (double)mean) <= 1e-12 * fabsl(mean));
    struct td_tensor *v = run(TD_OP_var, 1, &x, 0, NULL, NULL);
    double var_ref = (double)(ss / (FULL_N - 1));
    assert_true(fabs(scalar_of(v) - var_ref) <= 1e-12 * var_ref);
    struct td_tensor *sd = run(TD_OP_std, 1, &x, 0, NULL, NULL);
    assert_true(fabs(scalar_of(sd) - sqrt(var_ref)) <= 1e-12 * sqrt(var_ref));

    /* Extremes planted in the last part; the first of two equal maxima wins. */
    xp[777777] = 5000.0;
    xp[999990] = 5000.0;
    xp[123456] = -4000.0;
    struct td_tensor *mx = run(TD_OP_amax, 1, &x, 0, NULL, NULL);
    struct td_tensor *mn = run(TD_OP_amin, 1, &x, 0, NULL, NULL);
    struct td_tensor *ax = run(TD_OP_argmax, 1, &x, 0, NULL, NULL);
    struct td_tensor *an = run(TD_OP_argmin, 1, &x, 0, NULL, NULL);
    assert_true(scalar_of(mx) == 5000.0 && scalar_of(mn) == -4000.0);
    assert_int_equal(*(const int64_t *)td_tensor_data(ax), 777777);
    assert_int_equal(*(const int64_t *)td_tensor_data(an), 123456);
    /* A NaN anywhere wins amax; argmax names the first NaN. */
    xp[900001] = NAN;
    xp[950000] = NAN;
    struct td_tensor *mxn = run(TD_OP_amax, 1, &x, 0, NULL, NULL);
    struct td_tensor *axn = run(TD_OP_argmax, 1, &x, 0, NULL, NULL);
    assert_true(isnan(scalar_of(mxn)));
    assert_int_equal(*(const int64_t *)td_tensor_data(axn), 900001);

    /* all/any with a single deciding element near the end; exact int64 sum. */
    struct td_tensor *b = new_tensor(TD_BOOL, 1, (const int64_t[]){FULL_N});
    memset(td_tensor_data(b), 1, FULL_N);
    ((uint8_t *)td_tensor_data(b))[FULL_N - 3] = 0;
    struct td_tensor *al = run(TD_OP_all, 1, &b, 0, NULL, NULL);
    assert_int_equal(*(const uint8_t *)td_tensor_data(al), 0);
    memset(td_tensor_data(b), 0, FULL_N);
    ((uint8_t *)td_tensor_data(b))[FULL_N - 3] = 1;
    struct td_tensor *ay = run(TD_OP_any, 1, &b, 0, NULL, NULL);
    assert_int_equal(*(const uint8_t *)td_tensor_data(ay), 1);
    struct td_tensor *iv = new_tensor(TD_INT64, 1, (const int64_t[]){FULL_N});
    for (int64_t k = 0; k < FULL_N; k++)
        ((int64_t *)td_tensor_data(iv))[k] = k;
    struct td_tensor *is = run(TD_OP_sum, 1, &iv, 0, NULL, NULL);
    assert_int_equal(*(const int64_t *)td_tensor_data(is), (int64_t)FULL_N * (FULL_N - 1) / 2);

    /* Two outputs of half a million elements each (split per output). */
    struct td_tensor *x2 = NULL;
    struct td_error err;
    xp[900001] = 1.0;
    xp[950000] = 2.0;
    assert_int_equal(td_tensor_new_view(x, 2, (const int64_t[]){2, FULL_N / 2},
                                        (const int64_t[]){FULL_N / 2, 1}, 0, &x2, &err),
                     0);
    struct td_attr_arg d1[] = {a_ints("dim", 1, (const int64_t[]){1})};
    struct td_tensor *s2 = run(TD_OP_sum, 1, &x2, 1, d1, NULL);
    for (int r = 0; r < 2; r++) {
        long double rr = 0;
        for (int64_t k = 0; k < FULL_N / 2; k++)
            rr += xp[r * (FULL_N / 2) + k];
        double got = ((const double *)td_tensor_data(s2))[r];
        assert_true(fabs(got - (double)rr) <= 1e-12 * fabsl(rr));
    }

    struct td_tensor *all[] = {x, m, v, sd, mx, mn, ax, an, mxn, axn, b, al, ay, iv, is, x2, s2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        td_tensor_release(all[i]);
}

/* ---------------------------------------------------------------------------------------
 * Random fills: identical on every thread count, and element k is what Philox gives.
 */
static void test_random(void **state)
{
    (void)state;
    struct td_attr_arg shape_f32[] = {a_ints("shape", 1, (const int64_t[]){300001}),
                                      a_dtype("dtype", TD_FLOAT32)};
    struct td_attr_arg shape_f64[] = {a_ints("shape", 1, (const int64_t[]){300001}),
                                      a_dtype("dtype", TD_FLOAT64)};
    struct td_attr_arg ri[] = {a_ints("shape", 1, (const int64_t[]){300001}),
                               a_dtype("dtype", TD_INT64), a_int("low", -5), a_int("high", 1000)};
    struct {
        enum td_op op;
        struct td_attr_arg *attrs;
        int nattrs;
    } cases[] = {{TD_OP_randn, shape_f32, 2},
                 {TD_OP_randn, shape_f64, 2},
                 {TD_OP_rand, shape_f32, 2},
                 {TD_OP_rand, shape_f64, 2},
                 {TD_OP_randint, ri, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct td_rng r1 = {1234, 17}, r4 = {1234, 17};
        td_parallel_set_threads(1);
        struct td_tensor *a = run(cases[c].op, 0, NULL, cases[c].nattrs, cases[c].attrs, &r1);
        td_parallel_set_threads(4);
        struct td_tensor *b = run(cases[c].op, 0, NULL, cases[c].nattrs, cases[c].attrs, &r4);
        assert_int_equal(td_tensor_numel(a), 300001);
        assert_memory_equal(td_tensor_data(a), td_tensor_data(b), td_tensor_nbytes(a));
        assert_true(r1.offset == r4.offset && r1.offset > 17);
        if (c == 0) {
            /* randn float32, element k: Box-Muller on words 2k, 2k+1 of the stream. */
            for (int64_t k = 0; k < 300001; k += 29989) {
                uint32_t w[4];
                uint64_t j = (uint64_t)k * 2;
                td_philox4x32(1234, 0, 17 + j / 4, w);
                double u1 = ((double)w[j % 4] + 1.0) * 0x1p-32;
                double u2 = (double)w[j % 4 + 1] * 0x1p-32;
                float want = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2));
                assert_true(((const float *)td_tensor_data(b))[k] == want);
            }
        }
        td_tensor_release(a);
        td_tensor_release(b);
    }
}

int main(void)
{
    struct td_error err;
    if (td_ops_init(&err)) {
        fprintf(stderr, "td_ops_init: %s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cover, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_helpers_run, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_thread, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_callers, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_elementwise, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_reduce_many_outputs, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_reductions, leak_setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, leak_setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    td_parallel_shutdown();
    return rc;
}
