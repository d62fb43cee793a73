/*
 * session.c - sessions: the id table callbacks the engine's graph runner uses, the
 * server-wide registry of sessions that Stats and ListSessions report, the charging of
 * a session's tensors to its user's quota, and parked resumable sessions.
 *
 * Resumable sessions: a Handshake may ask for a lease (resume_lease_seconds, capped by
 * --max-resume-lease). When such a session's connection is lost (anything but the client
 * closing the stream at a frame boundary), the session is not freed but parked: it keeps its
 * tensors, its quota charges and its user session slot, and waits on srv->parked until a
 * Handshake with its resume token reattaches it to a new connection (auth.c) or its lease
 * ends (park_timer, then it is freed like a closed session). Admins see parked sessions in
 * ListSessions and may kill them; a draining server parks nothing and frees them at exit.
 */
#include <inttypes.h>
#include <string.h>

#include <nettle/memops.h>

#include "log.h"
#include "server.h"

struct td_session *td_session_new(struct td_server *srv)
{
    struct td_session *s = td_malloc(sizeof *s);
    if (s)
        td_session_init(s, srv);
    return s;
}

void td_session_free(struct td_session *s)
{
    if (!s)
        return;
    td_session_fini(s);
    TD_LOG(TD_LOG_DEBUG, "session freed", "session=%" PRIu64 " bytes_left=%" PRIu64, s->id,
           (uint64_t)atomic_load(&s->account.bytes));
    td_free(s);
}

void td_session_release(struct td_session *s, bool clean_eof)
{
    struct td_server *srv = s->srv;
    if (clean_eof || s->lease_s == 0 || !s->handshaken || !s->user ||
        atomic_load(&s->no_park) || atomic_load(&srv->draining) ||
        srv->cfg->max_resume_lease == 0) {
        td_session_free(s);
        return;
    }
    s->resume_pending = false;
    pthread_mutex_lock(&srv->park_mu);
    s->park_deadline_ns = td_now_ns() + (long)s->lease_s * 1000000000L;
    s->park_next = srv->parked;
    srv->parked = s;
    srv->nparked++;
    pthread_mutex_unlock(&srv->park_mu);
    TD_LOG(TD_LOG_INFO, "session parked", "session=%" PRIu64 " user=%s lease_s=%" PRIu32
           " bytes=%" PRIu64 " tensors=%" PRIu64, s->id, s->user->name, s->lease_s,
           (uint64_t)atomic_load(&s->account.bytes), (uint64_t)atomic_load(&s->ntensors));
}

struct td_session *td_session_unpark(struct td_server *srv, const struct td_user *u,
                                     const uint8_t digest[32])
{
    pthread_mutex_lock(&srv->park_mu);
    struct td_session **found = NULL;
    /* Every parked session's digest is compared, so the time taken does not depend on which
     * one (if any) matched. */
    for (struct td_session **l = &srv->parked; *l; l = &(*l)->park_next) {
        int eq = memeql_sec((*l)->resume_digest, digest, 32);
        if (eq && (*l)->user == u)
            found = l;
    }
    struct td_session *s = found ? *found : NULL;
    if (s) {
        *found = s->park_next;
        s->park_next = NULL;
        srv->nparked--;
    }
    pthread_mutex_unlock(&srv->park_mu);
    return s;
}

/* Takes the parked sessions that match off the list into a private one. [park_mu] */
static struct td_session *take_parked(struct td_server *srv, long now_ns, bool all,
                                      uint64_t id)
{
    struct td_session *out = NULL;
    struct td_session **l = &srv->parked;
    while (*l) {
        struct td_session *s = *l;
        bool take = id ? s->id == id : (all || s->park_deadline_ns <= now_ns);
        if (take) {
            *l = s->park_next;
            s->park_next = out;
            out = s;
            srv->nparked--;
        } else {
            l = &s->park_next;
        }
    }
    return out;
}

static int free_list(struct td_session *s, const char *why)
{
    int n = 0;
    while (s) {
        struct td_session *next = s->park_next;
        TD_LOG(TD_LOG_INFO, "parked session freed", "session=%" PRIu64 " user=%s reason=%s",
               s->id, s->user ? s->user->name : "", why);
        td_session_free(s);
        s = next;
        n++;
    }
    return n;
}

int td_session_expire(struct td_server *srv, long now_ns, bool all)
{
    pthread_mutex_lock(&srv->park_mu);
    struct td_session *gone = srv->parked ? take_parked(srv, now_ns, all, 0) : NULL;
    pthread_mutex_unlock(&srv->park_mu);
    return free_list(gone, all ? "shutdown" : "lease-ended");
}

bool td_session_kill_parked(struct td_server *srv, uint64_t id)
{
    pthread_mutex_lock(&srv->park_mu);
    struct td_session *gone = id ? take_parked(srv, 0, false, id) : NULL;
    pthread_mutex_unlock(&srv->park_mu);
    return free_list(gone, "killed") > 0;
}

void td_session_on_park_timer(uv_timer_t *h)
{
    struct td_server *srv = h->data;
    td_session_expire(srv, td_now_ns(), false);
}

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
    atomic_init(&s->no_park, false);
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
        b += atomic_load(&c->sess->account.bytes);
    *sessions = srv->reg_count;
    pthread_mutex_lock(&srv->park_mu);
    for (struct td_session *s = srv->parked; s; s = s->park_next)
        b += atomic_load(&s->account.bytes);
    *sessions += srv->nparked;
    pthread_mutex_unlock(&srv->park_mu);
    pthread_mutex_unlock(&srv->reg_mu);
    *bytes = b;
}
