/*
 * parallel.c - the engine's parallel-for: a lazily started pool of helper threads that
 * share large elementwise, reduction and random-fill loops with the thread that calls.
 *
 * A call describes its work as a job on the caller's stack (no allocation): n indices cut
 * into c contiguous chunks. The job is queued; helpers and the caller claim chunks one at a
 * time under the pool mutex, so the caller itself runs every chunk that no helper has
 * claimed yet. The caller then waits only for the chunks helpers are running at that moment,
 * which always finish, so a busy pool (several daemon workers calling at once) slows a call
 * down but never deadlocks it. A chunk that calls td__parallel_for again runs that inner loop
 * serially (a thread-local flag), so nested use cannot wait on itself.
 *
 * Every read and write of a job's bookkeeping happens under the mutex, and the last access a
 * helper makes to a job (counting its chunk done) is under the mutex before the caller can
 * see the job complete, so the job may live on the caller's stack.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "td_internal.h"

#define MAX_HELPERS (TD_PARALLEL_MAX_THREADS - 1)

struct par_job {
    void (*fn)(int64_t begin, int64_t end, void *ctx);
    void *ctx;
    int64_t n;
    int nchunks;
    int next;                  /* next chunk to claim; under pool.mu */
    int done;                  /* chunks finished; under pool.mu */
    struct par_job *qnext;     /* queue link; under pool.mu */
    bool queued;
};

static struct {
    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t work_cv;    /* helpers: a job was queued, or stop */
    pthread_cond_t done_cv;    /* callers: a chunk finished */
    int want;                  /* configured thread count; 0: online CPUs */
    int nhelpers;              /* helper threads running */
    bool stop;                 /* helpers exit as soon as they see it */
    bool started;
    struct par_job *head, *tail;
    pthread_t threads[MAX_HELPERS];
} pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .work_cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};

/* Serialises start-up changes (set_threads, shutdown) so joins never overlap. */
static pthread_mutex_t life_mu = PTHREAD_MUTEX_INITIALIZER;

/* True while this thread runs a chunk (helpers: always). */
static _Thread_local bool in_chunk;

static int resolve_threads(int want)
{
    if (want > 0)
        return want > TD_PARALLEL_MAX_THREADS ? TD_PARALLEL_MAX_THREADS : want;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > TD_PARALLEL_MAX_THREADS ? TD_PARALLEL_MAX_THREADS : (int)n;
}

/* [begin, end) of chunk i of c over n: the first n % c chunks get one index more. */
static void chunk_bounds(int64_t n, int c, int i, int64_t *begin, int64_t *end)
{
    int64_t q = n / c, r = n % c;
    *begin = (int64_t)i * q + (i < r ? i : r);
    *end = *begin + q + (i < r ? 1 : 0);
}

static void dequeue_locked(struct par_job *job)
{
    struct par_job **pp = &pool.head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return;
    *pp = job->qnext;
    if (pool.tail == job)
        pool.tail = prev;
    job->qnext = NULL;
    job->queued = false;
}

/* Claims the next chunk of job, dequeuing it once every chunk is claimed. Returns -1 when
 * none is left. Called with pool.mu held. */
static int claim_locked(struct par_job *job)
{
    if (job->next >= job->nchunks)
        return -1;
    int i = job->next++;
    if (job->next == job->nchunks && job->queued)
        dequeue_locked(job);
    return i;
}

static void run_chunk(struct par_job *job, int i)
{
    int64_t b, e;
    chunk_bounds(job->n, job->nchunks, i, &b, &e);
    job->fn(b, e, job->ctx);
}

static void *helper_main(void *arg)
{
    (void)arg;
    in_chunk = true;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.stop && !pool.head)
            pthread_cond_wait(&pool.work_cv, &pool.mu);
        if (pool.stop)
            break;
        struct par_job *job = pool.head;
        int i = claim_locked(job);
        if (i < 0)
            continue;
        pthread_mutex_unlock(&pool.mu);
        run_chunk(job, i);
        pthread_mutex_lock(&pool.mu);
        if (++job->done == job->nchunks)
            pthread_cond_broadcast(&pool.done_cv);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Starts the helpers for the configured count. Called with pool.mu held; a thread that
 * cannot be created just leaves the pool smaller (one thread = serial). */
static void start_locked(void)
{
    int want = resolve_threads(pool.want) - 1;
    pool.started = true;
    pool.stop = false;
    while (pool.nhelpers < want) {
        if (pthread_create(&pool.threads[pool.nhelpers], NULL, helper_main, NULL) != 0)
            break;
        pool.nhelpers++;
    }
}

/* Stops and joins every helper; the next parallel call starts them again. Callers with
 * queued jobs keep going: they run the unclaimed chunks themselves. */
static void stop_pool(void)
{
    pthread_mutex_lock(&life_mu);
    pthread_mutex_lock(&pool.mu);
    int n = pool.nhelpers;
    pool.stop = true;
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < n; i++)
        pthread_join(pool.threads[i], NULL);
    pthread_mutex_lock(&pool.mu);
    pool.nhelpers = 0;
    pool.started = false;
    pool.stop = false;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&life_mu);
}

void td_parallel_set_threads(int n)
{
    int want = n < 0 ? 0 : n;
    pthread_mutex_lock(&pool.mu);
    bool restart = pool.started && resolve_threads(want) != pool.nhelpers + 1;
    pool.want = want;
    pthread_mutex_unlock(&pool.mu);
    if (restart)
        stop_pool();
}

int td_parallel_threads(void)
{
    pthread_mutex_lock(&pool.mu);
    int n = resolve_threads(pool.want);
    pthread_mutex_unlock(&pool.mu);
    return n;
}

void td_parallel_shutdown(void)
{
    stop_pool();
}

void td__parallel_for(int64_t n, int64_t grain, void (*fn)(int64_t, int64_t, void *),
                      void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (in_chunk || n < 2 * grain) {
        fn(0, n, ctx);
        return;
    }
    struct par_job job = {fn, ctx, n, 0, 0, 0, NULL, false};
    pthread_mutex_lock(&pool.mu);
    if (!pool.started && !pool.stop)
        start_locked();
    int64_t c = n / grain;
    int threads = pool.stop ? 1 : pool.nhelpers + 1;
    if (c > threads)
        c = threads;
    if (c < 2) {
        pthread_mutex_unlock(&pool.mu);
        fn(0, n, ctx);
        return;
    }
    job.nchunks = (int)c;
    job.queued = true;
    if (pool.tail)
        pool.tail->qnext = &job;
    else
        pool.head = &job;
    pool.tail = &job;
    for (int k = 1; k < job.nchunks; k++)
        pthread_cond_signal(&pool.work_cv);
    in_chunk = true;
    for (;;) {
        int i = claim_locked(&job);
        if (i < 0)
            break;
        pthread_mutex_unlock(&pool.mu);
        run_chunk(&job, i);
        pthread_mutex_lock(&pool.mu);
        job.done++;
    }
    in_chunk = false;
    while (job.done < job.nchunks)
        pthread_cond_wait(&pool.done_cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
