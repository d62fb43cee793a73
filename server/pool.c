/*
 * pool.c - the worker pool. A connection with queued jobs (a ready session) waits for a
 * worker; a worker takes it and runs its jobs, so a session is processed by at most one
 * worker at a time while different sessions run in parallel.
 *
 * Fair scheduling across users (--fair-scheduling 1, the default): each user has its own
 * FIFO of ready sessions (struct td_sched, in struct td_user; sessions that have not
 * authenticated yet share the pool's `anon` queue). The users with ready sessions form a
 * ring; a worker serves the first user on the ring that is under --user-max-concurrency,
 * (or the user's own limit, SetQuota's max_concurrency), takes that user's oldest ready
 * session and moves the user to the back of the ring. So a
 * user with many busy sessions gets one turn per round like a user with one request, and
 * while the limit keeps one user's sessions off a worker, another user's request finds it
 * free. A worker hands a session back after a batch of jobs when others are ready
 * (handlers.c), which puts it behind its user's other sessions. --fair-scheduling 0 keeps
 * one FIFO of sessions for everyone and no per-user limit (the earlier behaviour).
 *
 * An idle worker spins briefly before sleeping on the condition variable: a pipelined
 * client's next request usually arrives within microseconds, and waking a sleeping thread
 * costs more than that.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "server.h"

static void spin_wait(struct td_pool *p)
{
    long start = td_now_ns();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&p->nready, memory_order_acquire) > 0)
                return;
            td_cpu_relax();
        }
        if (td_now_ns() - start > TD_POOL_SPIN_NS)
            return;
    }
}

/* Whether a worker may take one of s's sessions now. [p->mu] */
static int sched_limit(const struct td_pool *p, const struct td_sched *s)
{
    return s->max ? s->max : p->user_max;
}

static bool sched_eligible(const struct td_pool *p, const struct td_sched *s)
{
    int max = sched_limit(p, s);
    return s->head && (max == 0 || s->running < max);
}

/* Puts s at the back of the ring. [p->mu] */
static void ring_push(struct td_pool *p, struct td_sched *s)
{
    s->next = NULL;
    s->listed = true;
    if (p->ring_tail)
        p->ring_tail->next = s;
    else
        p->ring_head = s;
    p->ring_tail = s;
}

/* Takes the next session to run: the oldest ready session of the first user on the ring
 * under its concurrency limit; that user moves to the back of the ring (or leaves it when it
 * has no ready session left). Charges the user a running worker. Returns: the session, or
 * NULL when no user may run now. [p->mu] */
static struct td_conn *sched_pick(struct td_pool *p)
{
    struct td_sched *prev = NULL, *s = p->ring_head;
    while (s && !sched_eligible(p, s)) {
        prev = s;
        s = s->next;
    }
    if (!s)
        return NULL;
    struct td_conn *c = s->head;
    s->head = c->ready_next;
    if (!s->head)
        s->tail = NULL;
    c->ready_next = NULL;
    s->running++;
    /* Unlink s from the ring; it goes to the back if it has more ready sessions. */
    if (prev)
        prev->next = s->next;
    else
        p->ring_head = s->next;
    if (p->ring_tail == s)
        p->ring_tail = prev;
    s->next = NULL;
    s->listed = false;
    if (s->head)
        ring_push(p, s);
    atomic_fetch_sub_explicit(&p->nready, 1, memory_order_relaxed);
    return c;
}

/* Whether some ready session could be taken by a worker now. [p->mu] */
static bool any_eligible(const struct td_pool *p)
{
    for (const struct td_sched *s = p->ring_head; s; s = s->next)
        if (sched_eligible(p, s))
            return true;
    return false;
}

static void *worker_main(void *arg)
{
    struct td_pool *p = arg;
    struct td_sched *held = NULL;   /* the queue of the session this worker just ran */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (held) {
            held->running--;
            held = NULL;
            /* Stopping: workers that waited for this user's turn, or for the queues to
             * empty so they may leave, look again. */
            if (p->stop)
                pthread_cond_broadcast(&p->cv);
        }
        struct td_conn *c;
        bool spun = false;
        while (!(c = sched_pick(p))) {
            /* Stopping: leave once nothing is queued. Sessions of a user at its limit are
             * taken by the workers that hold that user's other sessions when they return. */
            if (p->stop && atomic_load_explicit(&p->nready, memory_order_relaxed) == 0)
                break;
            if (!spun && !p->stop) {
                pthread_mutex_unlock(&p->mu);
                spin_wait(p);
                pthread_mutex_lock(&p->mu);
                spun = true;
                continue;
            }
            p->sleepers++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->sleepers--;
        }
        if (!c) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        held = c->sched;
        /* A user this worker's return made eligible again, or work queued while every
         * sleeper was refused: pass the wake-up on. */
        if (p->sleepers > 0 && any_eligible(p))
            pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        p->process(c);
    }
    return NULL;
}

int td_pool_start(struct td_pool *p, int nthreads, void (*process)(struct td_conn *))
{
    /* The pool is the server's (see the contract); its options are the server's config. */
    const struct td_server *srv =
        (const struct td_server *)(const void *)((const char *)p -
                                                 offsetof(struct td_server, pool));
    const struct td_config *cfg = srv->cfg;
    memset(p, 0, sizeof *p);
    p->process = process;
    p->fair = cfg->fair_scheduling != 0;
    if (!p->fair)
        p->user_max = 0;
    else if (cfg->user_max_concurrency >= 0)
        p->user_max = (int)cfg->user_max_concurrency;
    else
        p->user_max = cfg->token_file ? (nthreads > 1 ? nthreads - 1 : 1) : 0;
    TD_LOG(TD_LOG_INFO, "worker pool", "threads=%d fair=%d user_max_concurrency=%d", nthreads,
           (int)p->fair, p->user_max);
    atomic_init(&p->nready, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    p->threads = td_calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads)
        goto fail;
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) {
            TD_LOG(TD_LOG_ERROR, "cannot start worker", "err=\"%s\"", strerror(rc));
            td_pool_stop(p);
            return -1;
        }
        p->nthreads++;
    }
    return 0;
fail:
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    return -1;
}

void td_pool_submit(struct td_pool *p, struct td_conn *c)
{
    struct td_sched *s = &p->all;
    if (p->fair) {
        /* sess.user is set once, under reg_mu, by the read-state owner, which need not be
         * this thread; once set it never changes, so the pool keeps what it read. */
        struct td_user *u = c->sched_user;
        if (!u) {
            pthread_mutex_lock(&c->srv->reg_mu);
            u = c->sess->user;
            pthread_mutex_unlock(&c->srv->reg_mu);
            c->sched_user = u;
        }
        s = u ? &u->sched : &p->anon;
    }
    pthread_mutex_lock(&p->mu);
    c->sched = s;
    c->ready_next = NULL;
    if (s->tail)
        s->tail->ready_next = c;
    else
        s->head = c;
    s->tail = c;
    if (!s->listed)
        ring_push(p, s);
    atomic_fetch_add_explicit(&p->nready, 1, memory_order_release);
    if (p->sleepers > 0 && sched_eligible(p, s))
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool td_pool_run_ready(struct td_pool *p)
{
    bool any = false;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        struct td_conn *c = sched_pick(p);
        pthread_mutex_unlock(&p->mu);
        if (!c)
            return any;
        any = true;
        struct td_sched *held = c->sched;
        p->process(c);
        pthread_mutex_lock(&p->mu);
        held->running--;
        pthread_mutex_unlock(&p->mu);
    }
}

int td_pool_set_user_max(struct td_pool *p, struct td_sched *s, int max)
{
    if (!p->fair)
        return max == 0 ? 0 : -1;
    pthread_mutex_lock(&p->mu);
    s->max = max;
    if (p->sleepers > 0 && any_eligible(p))
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void td_pool_user_state(struct td_pool *p, const struct td_sched *s, int *max, int *running)
{
    pthread_mutex_lock(&p->mu);
    *max = p->fair ? sched_limit(p, s) : 0;
    *running = s->running;
    pthread_mutex_unlock(&p->mu);
}

void td_pool_stop(struct td_pool *p)
{
    if (!p->threads)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    td_free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}
