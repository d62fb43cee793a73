/*
 * core.c - statuses, error detail, dtype information and promotion, half-precision
 * conversions, the allocator (with accounting and fault injection) and checked arithmetic.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "td_internal.h"

/* ---------------------------------------------------------------------------------------
 * Statuses and errors.
 */
const char *td_strerror(int status)
{
    switch (status) {
#define TD__S(name, val, text, code) \
    case (val):                      \
        return (text);
        TD_STATUS_MAP(TD__S)
#undef TD__S
    default:
        return "unknown status";
    }
}

int td_status_grpc_code(int status)
{
    switch (status) {
#define TD__S(name, val, text, code) \
    case (val):                      \
        return (code);
        TD_STATUS_MAP(TD__S)
#undef TD__S
    default:
        return 2; /* UNKNOWN */
    }
}

int td_error_set(struct td_error *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->status = status;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void td_error_clear(struct td_error *err)
{
    if (err) {
        err->status = 0;
        err->msg[0] = '\0';
    }
}

/* ---------------------------------------------------------------------------------------
 * DTypes.
 */
static const struct {
    const char *name;
    size_t size;
    char kind;
} dtype_info[TD_DTYPE_COUNT] = {
#define TD__D(name, lname, size, kind) {#lname, (size), (kind)},
    TD_DTYPE_MAP(TD__D)
#undef TD__D
};

bool td_dtype_valid(int64_t v)
{
    return v >= 0 && v < TD_DTYPE_COUNT;
}

const char *td_dtype_name(enum td_dtype dt)
{
    return td_dtype_valid(dt) ? dtype_info[dt].name : "?";
}

size_t td_dtype_size(enum td_dtype dt)
{
    return td_dtype_valid(dt) ? dtype_info[dt].size : 0;
}

bool td_dtype_is_complex(enum td_dtype dt)
{
    return td_dtype_valid(dt) && dtype_info[dt].kind == 'c';
}

bool td_dtype_is_floating(enum td_dtype dt)
{
    return td_dtype_valid(dt) && dtype_info[dt].kind == 'f';
}

bool td_dtype_is_integral(enum td_dtype dt, bool include_bool)
{
    if (!td_dtype_valid(dt))
        return false;
    char k = dtype_info[dt].kind;
    return k == 'i' || k == 'u' || (include_bool && k == 'b');
}

enum td_dtype td_dtype_to_real(enum td_dtype dt)
{
    if (dt == TD_COMPLEX64)
        return TD_FLOAT32;
    if (dt == TD_COMPLEX128)
        return TD_FLOAT64;
    return dt;
}

enum td_dtype td_dtype_to_complex(enum td_dtype dt)
{
    if (dt == TD_FLOAT64 || dt == TD_COMPLEX128)
        return TD_COMPLEX128;
    if (dt == TD_COMPLEX64)
        return TD_COMPLEX64;
    return TD_COMPLEX64;
}

/* Rank inside the signed integer ladder (int8 < int16 < int32 < int64). */
static int int_rank(enum td_dtype dt)
{
    switch (dt) {
    case TD_INT8:
        return 1;
    case TD_INT16:
        return 2;
    case TD_INT32:
        return 3;
    case TD_INT64:
        return 4;
    default:
        return 0;
    }
}

/* Rank inside the real floating ladder; float16 and bfloat16 share a rank. */
static int float_rank(enum td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT16:
    case TD_BFLOAT16:
        return 1;
    case TD_FLOAT32:
        return 2;
    case TD_FLOAT64:
        return 3;
    default:
        return 0;
    }
}

enum td_dtype td_promote_types(enum td_dtype a, enum td_dtype b)
{
    if (a == b)
        return a;
    if (a == TD_BOOL)
        return b;
    if (b == TD_BOOL)
        return a;
    bool ca = td_dtype_is_complex(a), cb = td_dtype_is_complex(b);
    if (ca || cb) {
        /* complex128 if either side carries float64 precision or is complex128. */
        if (a == TD_COMPLEX128 || b == TD_COMPLEX128 || a == TD_FLOAT64 || b == TD_FLOAT64)
            return TD_COMPLEX128;
        return TD_COMPLEX64;
    }
    bool fa = td_dtype_is_floating(a), fb = td_dtype_is_floating(b);
    if (fa && fb) {
        int ra = float_rank(a), rb = float_rank(b);
        if (ra == rb) /* float16 with bfloat16 */
            return TD_FLOAT32;
        return ra > rb ? a : b;
    }
    if (fa)
        return a;
    if (fb)
        return b;
    /* Both integers, not equal. */
    if (a == TD_UINT8 || b == TD_UINT8) {
        enum td_dtype other = a == TD_UINT8 ? b : a;
        return other == TD_INT8 ? TD_INT16 : other;
    }
    return int_rank(a) > int_rank(b) ? a : b;
}

/* ---------------------------------------------------------------------------------------
 * Half precision. Bit-level conversions with round-to-nearest-even.
 */
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float td_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf or NaN (payload kept) */
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            /* Subnormal: value = man * 2^-24. */
            float v = (float)man * 5.9604644775390625e-8f;
            u = sign | f32_bits(v);
        }
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    return bits_f32(u);
}

uint16_t td_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) {
        if (abs > 0x7f800000u) /* NaN: keep it quiet, keep top payload bits */
            return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
        return (uint16_t)(sign | 0x7c00u);
    }
    if (abs >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {
        /* Result is subnormal or zero: value / 2^-24, rounded to nearest even. */
        if (abs < 0x33000000u) /* < 2^-25: rounds to zero */
            return sign;
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* so that m >> shift = value * 2^24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    /* Normal: rebias exponent, round mantissa from 23 to 10 bits. */
    uint32_t r = abs - 0x38000000u; /* exponent rebias 127 -> 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

float td_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t td_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet it */
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return (uint16_t)(u >> 16);
}

/* ---------------------------------------------------------------------------------------
 * Allocator. Each block carries a 16-byte header holding its size so live bytes can be
 * counted; storage uses aligned blocks counted the same way (td__aligned_alloc below).
 */
#define HDR 16

static _Atomic long fail_countdown;
static _Atomic uint64_t live_bytes;
static _Atomic uint64_t live_blocks;

void td_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

/* True when fault injection says this allocation must fail. */
static bool inject_failure(void)
{
    long cur = atomic_load(&fail_countdown);
    while (cur > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &cur, cur - 1))
            return cur == 1;
    }
    return false;
}

uint64_t td_alloc_live_bytes(void)
{
    return atomic_load(&live_bytes);
}

uint64_t td_alloc_live_blocks(void)
{
    return atomic_load(&live_blocks);
}

void *td_malloc(size_t n)
{
    size_t total;
    if (!td_add_size(n, HDR, &total) || inject_failure())
        return NULL;
    char *p = malloc(total);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add(&live_bytes, n);
    atomic_fetch_add(&live_blocks, 1);
    return p + HDR;
}

void *td_calloc(size_t count, size_t size)
{
    size_t n;
    if (!td_mul_size(count, size, &n))
        return NULL;
    void *p = td_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *td_realloc(void *p, size_t n)
{
    if (!p)
        return td_malloc(n);
    size_t total;
    if (!td_add_size(n, HDR, &total) || inject_failure())
        return NULL;
    char *base = (char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    char *nb = realloc(base, total);
    if (!nb)
        return NULL;
    memcpy(nb, &n, sizeof n);
    atomic_fetch_sub(&live_bytes, old);
    atomic_fetch_add(&live_bytes, n);
    return nb + HDR;
}

void td_free(void *p)
{
    if (!p)
        return;
    char *base = (char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub(&live_bytes, n);
    atomic_fetch_sub(&live_blocks, 1);
    free(base);
}

char *td_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = td_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------------------------------------------
 * Storage.
 */
/* Charges n bytes to a and every account above it. Returns: NULL, or the account whose limit
 * refused (nothing stays charged then). */
static struct td_account *account_charge(struct td_account *a, size_t n)
{
    for (struct td_account *x = a; x; x = x->parent) {
        uint64_t cur = atomic_fetch_add(&x->bytes, (uint64_t)n) + (uint64_t)n;
        uint64_t limit = atomic_load(&x->limit);
        if (limit && cur > limit) {
            for (struct td_account *y = a; y != x->parent; y = y->parent)
                atomic_fetch_sub(&y->bytes, (uint64_t)n);
            return x;
        }
        uint64_t peak = atomic_load(&x->peak);
        while (cur > peak && !atomic_compare_exchange_weak(&x->peak, &peak, cur)) {
        }
    }
    return NULL;
}

static void account_uncharge(struct td_account *a, uint64_t n)
{
    for (struct td_account *x = a; x; x = x->parent)
        atomic_fetch_sub(&x->bytes, n);
}

/*
 * Large blocks (>= CACHE_MIN bytes) are mapped directly and, when freed, kept in a small
 * cache for reuse by the next allocation of the same size class, like PyTorch's caching
 * allocators: a fresh mapping costs a page fault plus the kernel's zeroing per page, which
 * dominates uploading into new storage. Cached memory holds old contents; that is safe
 * because every storage is fully written (by an upload, a kernel or the zero fill) before it
 * becomes readable, exactly as with malloc's own reuse.
 */
#define CACHE_MIN ((size_t)1 << 20)
#define CACHE_SLOTS 16

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *p;
    size_t size;
} cache[CACHE_SLOTS];
static size_t cache_bytes;
static size_t cache_limit = (size_t)1 << 30;

/* Size classes: multiples of 2 MiB (huge-page sized) so blocks of one class are exchangeable. */
static size_t large_class(size_t n)
{
    size_t gran = (size_t)2 << 20;
    return (n + gran - 1) / gran * gran;
}

static void *large_alloc(size_t size)
{
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].p && cache[i].size == size) {
            void *p = cache[i].p;
            cache[i].p = NULL;
            cache_bytes -= size;
            pthread_mutex_unlock(&cache_mu);
            return p;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, size, MADV_HUGEPAGE);
    return p;
}

static void large_free(void *p, size_t size)
{
    pthread_mutex_lock(&cache_mu);
    if (cache_bytes + size <= cache_limit) {
        for (int i = 0; i < CACHE_SLOTS; i++) {
            if (!cache[i].p) {
                cache[i].p = p;
                cache[i].size = size;
                cache_bytes += size;
                pthread_mutex_unlock(&cache_mu);
                return;
            }
        }
    }
    pthread_mutex_unlock(&cache_mu);
    munmap(p, size);
}

void td_storage_cache_set_limit(size_t nbytes)
{
    pthread_mutex_lock(&cache_mu);
    cache_limit = nbytes;
    bool over = cache_bytes > nbytes;
    pthread_mutex_unlock(&cache_mu);
    if (over)
        td_storage_cache_trim();
}

void td_storage_cache_trim(void)
{
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].p) {
            munmap(cache[i].p, cache[i].size);
            cache[i].p = NULL;
        }
    }
    cache_bytes = 0;
    pthread_mutex_unlock(&cache_mu);
}

size_t td_storage_cache_bytes(void)
{
    pthread_mutex_lock(&cache_mu);
    size_t n = cache_bytes;
    pthread_mutex_unlock(&cache_mu);
    return n;
}

int td_storage_new(size_t nbytes, bool zero, struct td_account *account,
                   struct td_storage **out, struct td_error *err)
{
    struct td_storage *s = NULL;
    void *data = NULL;
    size_t alloc = nbytes ? nbytes : 1;
    size_t rounded;
    int rc = 0;

    if (!td_add_size(alloc, ((size_t)2 << 20) - 1, &rounded)) {
        rc = td_error_set(err, TD_ENOMEM, "storage: %zu bytes is too large", nbytes);
        goto out;
    }
    rounded = alloc >= CACHE_MIN ? large_class(alloc) : (alloc + 63) & ~(size_t)63;
    struct td_account *refused = account_charge(account, nbytes);
    if (refused) {
        rc = td_error_set(err, TD_ENOMEM,
                          "out of memory: %zu bytes would exceed the %s%slimit of %llu bytes",
                          nbytes, refused->name ? refused->name : "",
                          refused->name ? " " : "",
                          (unsigned long long)atomic_load(&refused->limit));
        goto out;
    }
    s = td_calloc(1, sizeof *s);
    if (s && !inject_failure())
        data = rounded >= CACHE_MIN ? large_alloc(rounded) : aligned_alloc(64, rounded);
    if (!data) {
        account_uncharge(account, (uint64_t)nbytes);
        rc = td_error_set(err, TD_ENOMEM, "out of memory allocating %zu bytes", nbytes);
        goto out;
    }
    if (zero)
        memset(data, 0, rounded);
    atomic_fetch_add(&live_bytes, nbytes);
    atomic_fetch_add(&live_blocks, 1);
    atomic_init(&s->refcount, 1);
    atomic_init(&s->version, 0);
    s->data = data;
    s->nbytes = nbytes;
    s->capacity = rounded;
    s->account = account;
    s->device = 0;
    *out = s;
    s = NULL;
out:
    td_free(s);
    return rc;
}

struct td_storage *td_storage_retain(struct td_storage *s)
{
    if (s)
        atomic_fetch_add(&s->refcount, 1);
    return s;
}

void td_storage_release(struct td_storage *s)
{
    if (!s || atomic_fetch_sub(&s->refcount, 1) != 1)
        return;
    account_uncharge(s->account, (uint64_t)s->nbytes);
    atomic_fetch_sub(&live_bytes, s->nbytes);
    atomic_fetch_sub(&live_blocks, 1);
    if (s->capacity >= CACHE_MIN)
        large_free(s->data, s->capacity);
    else
        free(s->data);
    td_free(s);
}

/* ---------------------------------------------------------------------------------------
 * Checked arithmetic.
 */
bool td_mul_size(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool td_add_size(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool td_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}
