/*
 * session.c - sessions: the id table callbacks the engine's graph runner uses, the
 * server-wide registry of sessions that Stats and ListSessions report, and the charging of
 * a session's tensors to its user's quota.
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
    atomic_init(&s->account.limit, srv->max_session_bytes);
    s->account.name = "session (max_session_bytes)";
    atomic_init(&s->ntensors, 0);
    s->created_ns = td_now_ns();
    td_ag_session_init(&s->ag, &s->account, &s->rng);
}

void td_session_set_user(struct td_session *s, struct td_user *u)
{
    pthread_mutex_lock(&s->srv->reg_mu);
    s->user = u;
    s->account.parent = &u->account;
    pthread_mutex_unlock(&s->srv->reg_mu);
}

int td_session_charge_tensors(struct td_session *s, uint64_t n, struct td_error *err)
{
    struct td_user *u = s->user;
    if (u) {
        uint64_t max = atomic_load(&u->max_tensors);
        uint64_t cur = atomic_fetch_add(&u->tensors, n) + n;
        if (max && cur > max) {
            atomic_fetch_sub(&u->tensors, n);
            return td_error_set(err, TD_ELIMIT, "user '%s' holds %" PRIu64 " tensors, quota "
                                "max_tensors is %" PRIu64, u->name, cur - n, max);
        }
    }
    atomic_fetch_add(&s->ntensors, n);
    return 0;
}

void td_session_release_tensors(struct td_session *s, uint64_t n)
{
    atomic_fetch_sub(&s->ntensors, n);
    if (s->user)
        atomic_fetch_sub(&s->user->tensors, n);
}

void td_session_fini(struct td_session *s)
{
    /* Break autograd cycles (a create_graph .grad whose history saved its own leaf) first,
     * so releasing the table frees everything the session held. */
    td_ag_session_fini(&s->ag);
    td_idtable_fini(&s->ids);
    struct td_user *u = s->user;
    if (u) {
        atomic_fetch_sub(&u->tensors, atomic_load(&s->ntensors));
        if (s->holds_session_quota)
            atomic_fetch_sub(&u->sessions, 1);
    }
    atomic_store(&s->ntensors, 0);
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
    int rc = td_session_charge_tensors(s, 1, err);
    if (rc != 0)
        return rc;
    if (td_idtable_insert(&s->ids, id, t, nbytes, nbytes) != 0) {
        td_session_release_tensors(s, 1);
        return td_error_set(err, TD_ENOMEM, "id table: out of memory");
    }
    return 0;
}

static int tab_remove(void *self, uint64_t id)
{
    struct td_session *s = self;
    if (!td_idtable_remove(&s->ids, id))
        return TD_ENOTFOUND;
    td_session_release_tensors(s, 1);
    return 0;
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
