/*
 * pool.c - the worker pool. Connections with queued jobs wait in one FIFO; a worker takes a
 * connection and runs its jobs, so a session is processed by at most one worker at a time
 * while different sessions run in parallel. An idle worker spins briefly before sleeping on
 * the condition variable: a pipelined client's next request usually arrives within
 * microseconds, and waking a sleeping thread costs more than that.
 */
#include <errno.h>
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

static void *worker_main(void *arg)
{
    struct td_pool *p = arg;
    for (;;) {
        spin_wait(p);
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop) {
            p->sleepers++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->sleepers--;
        }
        struct td_conn *c = p->head;
        if (!c) {               /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->head = c->ready_next;
        if (!p->head)
            p->tail = NULL;
        c->ready_next = NULL;
        atomic_fetch_sub(&p->nready, 1);
        pthread_mutex_unlock(&p->mu);
        p->process(c);
    }
    return NULL;
}

int td_pool_start(struct td_pool *p, int nthreads, void (*process)(struct td_conn *))
{
    memset(p, 0, sizeof *p);
    p->process = process;
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
    pthread_mutex_lock(&p->mu);
    c->ready_next = NULL;
    if (p->tail)
        p->tail->ready_next = c;
    else
        p->head = c;
    p->tail = c;
    atomic_fetch_add_explicit(&p->nready, 1, memory_order_release);
    if (p->sleepers > 0)
        pthread_cond_signal(&p->cv);
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
