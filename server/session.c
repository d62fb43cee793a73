/*
 * session.c - sessions: the id table callbacks the engine's graph runner uses, and the
 * server-wide registry of sessions that Stats reports.
 */
#include <inttypes.h>
#include <string.h>

#include "server.h"

void td_session_init(struct td_session *s, struct td_server *srv)
{
    memset(s, 0, sizeof *s);
    s->srv = srv;
    s->id = atomic_fetch_add(&srv->next_session_id, 1);
    td_idtable_init(&s->ids);
    atomic_init(&s->account.bytes, 0);
    atomic_init(&s->account.peak, 0);
    s->account.limit = srv->max_session_bytes;
    td_ag_session_init(&s->ag, &s->account, &s->rng);
}

void td_session_fini(struct td_session *s)
{
    /* Break autograd cycles (a create_graph .grad whose history saved its own leaf) first,
     * so releasing the table frees everything the session held. */
    td_ag_session_fini(&s->ag);
    td_idtable_fini(&s->ids);
}

/* The engine only sees complete tensors: an id still being uploaded reads as absent (Run
 * checks for incomplete inputs first and reports them by name). */
static struct td_tensor *tab_get(void *self, uint64_t id)
{
    struct td_session *s = self;
    struct td_idtable_entry *e = td_idtable_find(&s->ids, id);
    if (!e || e->received < e->nbytes)
        return NULL;
    return e->tensor;
}

static int tab_put(void *self, uint64_t id, struct td_tensor *t, struct td_error *err)
{
    struct td_session *s = self;
    if (td_idtable_find(&s->ids, id))
        return td_error_set(err, TD_EEXIST, "id %" PRIu64 " is already live", id);
    if (s->ids.count >= (uint64_t)s->srv->cfg->max_session_ids)
        return td_error_set(err, TD_ELIMIT, "session holds %zu ids, max_session_ids is %" PRId64,
                            s->ids.count, s->srv->cfg->max_session_ids);
    uint64_t nbytes = td_tensor_nbytes(t);
    if (td_idtable_insert(&s->ids, id, t, nbytes, nbytes) != 0)
        return td_error_set(err, TD_ENOMEM, "id table: out of memory");
    return 0;
}

static int tab_remove(void *self, uint64_t id)
{
    struct td_session *s = self;
    return td_idtable_remove(&s->ids, id) ? 0 : TD_ENOTFOUND;
}

const struct td_idtable_ops td_session_table_ops = {
    .get = tab_get,
    .put = tab_put,
    .remove = tab_remove,
};

void td_registry_add(struct td_server *srv, struct td_conn *c)
{
    pthread_mutex_lock(&srv->reg_mu);
    c->reg_prev = NULL;
    c->reg_next = srv->reg_head;
    if (srv->reg_head)
        srv->reg_head->reg_prev = c;
    srv->reg_head = c;
    srv->reg_count++;
    pthread_mutex_unlock(&srv->reg_mu);
}

void td_registry_remove(struct td_server *srv, struct td_conn *c)
{
    pthread_mutex_lock(&srv->reg_mu);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else
        srv->reg_head = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    srv->reg_count--;
    pthread_mutex_unlock(&srv->reg_mu);
}

void td_registry_totals(struct td_server *srv, uint64_t *sessions, uint64_t *bytes)
{
    uint64_t b = 0;
    pthread_mutex_lock(&srv->reg_mu);
    for (struct td_conn *c = srv->reg_head; c; c = c->reg_next)
        b += atomic_load(&c->sess.account.bytes);
    *sessions = srv->reg_count;
    pthread_mutex_unlock(&srv->reg_mu);
    *bytes = b;
}
