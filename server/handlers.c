/*
 * handlers.c - what the workers do: run a session's queued jobs in order, one handler per
 * method, and encode the replies. Everything that touches a session's id table happens
 * here, on a worker thread.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "server.h"
#include "tensord.pb-c.h"

#define STACK_BODY 4096
#define PROTOCOL_VERSION 1

static void *pb_alloc(void *data, size_t n)
{
    (void)data;
    return td_malloc(n ? n : 1);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    td_free(p);
}

ProtobufCAllocator td_pb_allocator = {.alloc = pb_alloc, .free = pb_free, .allocator_data = NULL};

const ProtobufCMessageDescriptor *td_request_descriptor(uint32_t method)
{
    switch (method) {
    case TD_M_HANDSHAKE:
        return &tensord__v1__handshake_request__descriptor;
    case TD_M_PUT:
        return &tensord__v1__put_request__descriptor;
    case TD_M_GET:
        return &tensord__v1__get_request__descriptor;
    case TD_M_FREE:
        return &tensord__v1__free_request__descriptor;
    case TD_M_RUN:
        return &tensord__v1__run_request__descriptor;
    case TD_M_LIST_OPS:
        return &tensord__v1__list_ops_request__descriptor;
    case TD_M_STATS:
        return &tensord__v1__stats_request__descriptor;
    case TD_M_LIST_SESSIONS:
        return &tensord__v1__list_sessions_request__descriptor;
    case TD_M_KILL_SESSION:
        return &tensord__v1__kill_session_request__descriptor;
    case TD_M_SET_QUOTA:
        return &tensord__v1__set_quota_request__descriptor;
    case TD_M_DRAIN:
        return &tensord__v1__drain_request__descriptor;
    case TD_M_SHUTDOWN:
        return &tensord__v1__shutdown_request__descriptor;
    case TD_M_HEALTH:
        return &tensord__v1__health_request__descriptor;
    case TD_M_CANCEL:
        return &tensord__v1__cancel_request__descriptor;
    case TD_M_LIST_USERS:
        return &tensord__v1__list_users_request__descriptor;
    default:
        return NULL;
    }
}

/* ---------------------------------------------------------------------------------------
 * Replies
 */

/* Packs msg and sends it with an optional data section. Ownership: takes `hold`. */
static void send_msg(struct td_conn *c, const struct td_job *j, const ProtobufCMessage *msg,
                     const uint8_t *data, size_t data_len, struct td_tensor *hold,
                     bool close_after)
{
    uint8_t stack[STACK_BODY];
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = stack;
    if (n > sizeof stack) {
        buf = td_malloc(n);
        if (!buf) {
            /* Say so in a reply that fits on the stack rather than dropping the call. */
            Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
            Tensord__V1__ErrorReply er = TENSORD__V1__ERROR_REPLY__INIT;
            st.code = TENSORD__V1__CODE__RESOURCE_EXHAUSTED;
            st.message = (char *)"out of memory encoding the reply";
            er.status = &st;
            n = tensord__v1__error_reply__pack(&er, stack);
            if (hold)
                td_tensor_release(hold);
            atomic_fetch_add(&c->srv->errors_total, 1);
            td_conn_send(c, j->method, j->call_id, stack, n, NULL, 0, NULL, close_after);
            return;
        }
    }
    size_t packed = protobuf_c_message_pack(msg, buf);
    td_conn_send(c, j->method, j->call_id, buf, packed, data, data_len, hold, close_after);
    if (buf != stack)
        td_free(buf);
}

static void send_error(struct td_conn *c, const struct td_job *j, int status, const char *msg,
                       bool close_after)
{
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__ErrorReply er = TENSORD__V1__ERROR_REPLY__INIT;
    st.code = (Tensord__V1__Code)td_status_grpc_code(status);
    st.message = (char *)msg;
    er.status = &st;
    atomic_fetch_add(&c->srv->errors_total, 1);
    td_metrics_rejected(c->srv, status);
    TD_LOG(TD_LOG_DEBUG, "call failed", "session=%" PRIu64 " method=%s call=%" PRIu64
           " code=%d err=\"%s\"", c->sess->id, td_method_name(j->method), j->call_id,
           (int)st.code, msg);
    send_msg(c, j, &er.base, NULL, 0, NULL, close_after);
}

static void send_err(struct td_conn *c, const struct td_job *j, const struct td_error *err)
{
    send_error(c, j, err->status, err->msg, false);
}

static void meta_fill(Tensord__V1__TensorMeta *m, enum td_dtype dt, int ndim,
                      const int64_t *shape, int64_t *shape_buf, int64_t *strides)
{
    m->dtype = (Tensord__V1__DType)dt;
    m->n_shape = (size_t)ndim;
    memcpy(shape_buf, shape, (size_t)ndim * sizeof *shape);
    m->shape = shape_buf;
    m->n_strides = (size_t)ndim;
    m->strides = strides;
    m->nbytes = (uint64_t)td_shape_numel(shape, ndim) * td_dtype_size(dt);
}

/* ---------------------------------------------------------------------------------------
 * Handshake
 */
static void do_handshake(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__HandshakeRequest *req = (const void *)j->req;
    struct td_session *s = c->sess;
    struct td_server *srv = c->srv;
    struct td_error err;
    bool resumed = s->resume_pending;
    if (s->handshaken && !resumed) {
        td_error_set(&err, TD_EPRECOND, "handshake: already done for session %" PRIu64, s->id);
        send_err(c, j, &err);
        return;
    }
    if (req->protocol_version != PROTOCOL_VERSION) {
        td_error_set(&err, TD_EPRECOND,
                     "handshake: client protocol version %" PRIu32 ", server speaks version %d",
                     req->protocol_version, PROTOCOL_VERSION);
        send_err(c, j, &err);
        return;
    }
    /* A resumable session gets a new resume token at each Handshake (the one that reattached
     * it included), so a token works once. */
    uint32_t lease = resumed ? s->lease_s : req->resume_lease_seconds;
    if ((uint64_t)lease > (uint64_t)srv->cfg->max_resume_lease)
        lease = (uint32_t)srv->cfg->max_resume_lease;
    char token[65] = "";
    uint8_t digest[32] = {0};
    if (lease > 0 && td_auth_new_resume_token(token, digest) != 0) {
        td_error_set(&err, TD_EINTERNAL, "handshake: no random bytes for a resume token");
        send_err(c, j, &err);
        return;
    }
    /* Under reg_mu: a resume on another connection compares live sessions' digests. */
    pthread_mutex_lock(&srv->reg_mu);
    memcpy(s->resume_digest, digest, sizeof digest);
    s->lease_s = lease;
    pthread_mutex_unlock(&srv->reg_mu);
    s->resume_pending = false;
    uint64_t seed = resumed ? s->rng.seed : req->seed;
    while (seed == 0) {
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (s->id << 40);
        }
    }
    if (!resumed) {   /* a resumed session keeps its random stream where it was */
        s->rng.seed = seed;
        s->rng.offset = 0;
    }
    s->handshaken = true;
    TD_LOG(TD_LOG_DEBUG, "handshake", "peer=%s session=%" PRIu64 " client=\"%.64s\"", c->peer,
           s->id, req->client_name ? req->client_name : "");

    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__Limits lim = TENSORD__V1__LIMITS__INIT;
    Tensord__V1__Device dev[TD_MAX_DEVICES];
    Tensord__V1__Device *devs[TD_MAX_DEVICES];
    for (int i = 0; i < srv->ndevices; i++) {
        tensord__v1__device__init(&dev[i]);
        dev[i].name = srv->devices[i].name;
        dev[i].kind = srv->devices[i].kind;
        dev[i].model = srv->devices[i].model;
        dev[i].memory_bytes = srv->devices[i].memory_bytes;
        devs[i] = &dev[i];
    }
    Tensord__V1__HandshakeReply r = TENSORD__V1__HANDSHAKE_REPLY__INIT;
    lim.max_frame_body = (uint64_t)srv->cfg->max_frame_body;
    lim.max_frame_data = (uint64_t)srv->cfg->max_frame_data;
    lim.max_graph_nodes = (uint64_t)srv->cfg->max_graph_nodes;
    lim.max_graph_work = (uint64_t)srv->cfg->max_graph_work;
    lim.max_session_ids = (uint64_t)srv->cfg->max_session_ids;
    lim.max_ndim = TD_MAX_NDIM;
    r.status = &st;
    r.protocol_version = PROTOCOL_VERSION;
    r.server_version = (char *)TD_VERSION;
    r.session_id = s->id;
    r.seed = seed;
    r.limits = &lim;
    r.n_devices = (size_t)srv->ndevices;
    r.devices = devs;
    r.user = s->user ? s->user->name : (char *)"";
    r.role = (char *)(s->user && s->user->admin ? "admin" : "user");
    r.resume_token = token;
    r.resume_lease_seconds = lease;
    r.resumed = resumed;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

/* ---------------------------------------------------------------------------------------
 * Put: the loop already received the data; install or extend the id here, in order.
 */
static void do_put(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__PutRequest *req = (const void *)j->req;
    struct td_session *s = c->sess;
    struct td_error err;
    td_error_clear(&err);
    struct td_idtable_entry *e = td_idtable_find(&s->ids, req->id);
    if (j->put_create) {
        if (e) {
            td_error_set(&err, TD_EEXIST, "put: id %" PRIu64 " is already live", req->id);
        } else if (s->ids.count >= (uint64_t)c->srv->cfg->max_session_ids) {
            td_error_set(&err, TD_ELIMIT,
                         "put: session holds %zu ids, max_session_ids is %" PRId64,
                         s->ids.count, c->srv->cfg->max_session_ids);
        } else if (td_session_charge_tensors(s, 1, &err) != 0) {
            /* err says which quota */
        } else if (td_idtable_insert(&s->ids, req->id, j->put_tensor, j->put_len,
                                     j->put_nbytes) != 0) {
            td_session_release_tensors(s, 1);
            td_error_set(&err, TD_ENOMEM, "put: out of memory for the id table");
        } else {
            j->put_tensor = NULL;   /* the table owns it now */
        }
    } else {
        if (!e || e->tensor != j->put_tensor) {
            td_error_set(&err, TD_EPRECOND,
                         "put: id %" PRIu64 " has no upload in progress at offset %" PRIu64,
                         req->id, j->put_offset);
        } else if (e->received != j->put_offset) {
            td_error_set(&err, TD_EINVAL,
                         "put: id %" PRIu64 " chunk at offset %" PRIu64 ", expected %" PRIu64,
                         req->id, j->put_offset, e->received);
        } else {
            e->received += j->put_len;
        }
    }
    if (err.status != 0) {
        send_err(c, j, &err);
        return;
    }
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__PutReply r = TENSORD__V1__PUT_REPLY__INIT;
    r.status = &st;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

/* Looks up a complete tensor. Returns: the entry or NULL with err set. */
static struct td_idtable_entry *find_complete(struct td_session *s, uint64_t id,
                                              const char *what, struct td_error *err)
{
    struct td_idtable_entry *e = td_idtable_find(&s->ids, id);
    if (!e) {
        td_error_set(err, TD_ENOTFOUND, "%s: id %" PRIu64 " not found", what, id);
        return NULL;
    }
    if (e->received < e->nbytes) {
        td_error_set(err, TD_EPRECOND, "id %" PRIu64 " is incomplete: %" PRIu64 " of %" PRIu64
                     " bytes", id, e->received, e->nbytes);
        return NULL;
    }
    return e;
}

/* ---------------------------------------------------------------------------------------
 * Get: the reply's data section is written straight from the tensor's storage.
 */
static void do_get(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__GetRequest *req = (const void *)j->req;
    struct td_session *s = c->sess;
    struct td_error err;
    td_error_clear(&err);
    struct td_idtable_entry *e = find_complete(s, req->id, "get", &err);
    if (!e) {
        send_err(c, j, &err);
        return;
    }
    struct td_tensor *ct = NULL;
    if (td_tensor_contiguous(e->tensor, &s->account, &ct, &err) != 0) {
        send_err(c, j, &err);
        return;
    }
    uint64_t nbytes = td_tensor_nbytes(ct);
    if (req->offset > nbytes) {
        td_error_set(&err, TD_ERANGE, "get: offset %" PRIu64 " beyond nbytes %" PRIu64,
                     req->offset, nbytes);
        td_tensor_release(ct);
        send_err(c, j, &err);
        return;
    }
    /* [offset, offset+length) clipped to the tensor's end, like read(2). */
    uint64_t len = nbytes - req->offset;
    if (req->length && req->length < len)
        len = req->length;
    if (len > (uint64_t)c->srv->cfg->max_frame_data)
        len = (uint64_t)c->srv->cfg->max_frame_data;
    int64_t shape[TD_MAX_NDIM], strides[TD_MAX_NDIM];
    td_contiguous_strides(ct->shape, ct->ndim, strides);
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__TensorMeta meta = TENSORD__V1__TENSOR_META__INIT;
    Tensord__V1__GetReply r = TENSORD__V1__GET_REPLY__INIT;
    meta_fill(&meta, ct->dtype, ct->ndim, ct->shape, shape, strides);
    r.status = &st;
    r.meta = &meta;
    r.offset = req->offset;
    const uint8_t *data = len ? (const uint8_t *)td_tensor_data(ct) + req->offset : NULL;
    send_msg(c, j, &r.base, data, (size_t)len, ct, false);
}

/* ---------------------------------------------------------------------------------------
 * Free
 */
static void do_free(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__FreeRequest *req = (const void *)j->req;
    struct td_session *s = c->sess;
    uint64_t freed = 0, unknown = 0;
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < req->n_ids; i++) {
        if (td_idtable_remove(&s->ids, req->ids[i])) {
            td_session_release_tensors(s, 1);
            freed++;
            continue;
        }
        unknown++;
        if (used < sizeof list - 32) {
            int n = snprintf(list + used, sizeof list - used, "%s%" PRIu64, unknown > 1 ? ", " : "",
                             req->ids[i]);
            if (n > 0)
                used += (size_t)n;
        } else if (used < sizeof list - 4) {
            memcpy(list + used, ", ...", 6);
            used = sizeof list;
        }
    }
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__FreeReply r = TENSORD__V1__FREE_REPLY__INIT;
    char msg[TD_ERROR_MSG_MAX];
    if (unknown) {
        snprintf(msg, sizeof msg, "free: %" PRIu64 " unknown id%s: %s (freed %" PRIu64 ")",
                 unknown, unknown > 1 ? "s" : "", list, freed);
        st.code = TENSORD__V1__CODE__NOT_FOUND;
        st.message = msg;
        atomic_fetch_add(&c->srv->errors_total, 1);
    }
    r.status = &st;
    r.freed = freed;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

/* ---------------------------------------------------------------------------------------
 * Run
 */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* How long a Run may hold the read state of its connection: after this the worker hands
 * reading to the loop, so that a Cancel sent while the graph runs is read. */
#define RUN_HANDOFF_NS 2000000L

/* What td_graph_run's stop callback needs: the job (its cancelled flag), the deadline. */
struct run_stop {
    struct td_conn *c;
    struct td_job *j;
    int nnodes;
    uint64_t deadline_ms;
    long deadline_ns;            /* 0: none */
    long start_ns;
    bool handed;                 /* reading went to the loop */
};

/* Checked before each node: a Cancel that arrived, the request's deadline. */
static int run_stop(void *arg, int node, struct td_error *err)
{
    struct run_stop *rs = arg;
    if (atomic_load_explicit(&rs->j->cancelled, memory_order_relaxed))
        return td_error_set(err, TD_ECANCELLED, "run: cancelled (call %" PRIu64 ") before node "
                            "%d of %d; the graph was rolled back", rs->j->call_id, node,
                            rs->nnodes);
    if (rs->deadline_ns || !rs->handed) {
        long now = td_now_ns();
        if (rs->deadline_ns && now >= rs->deadline_ns)
            return td_error_set(err, TD_EDEADLINE, "run: deadline_ms %" PRIu64 " exceeded "
                                "before node %d of %d; the graph was rolled back",
                                rs->deadline_ms, node, rs->nnodes);
        if (!rs->handed && now - rs->start_ns > RUN_HANDOFF_NS) {
            rs->handed = true;
            td_conn_worker_busy(rs->c);
        }
    }
    if (rs->handed) {
        /* A long graph of a connection the daemon closed (KillSession, a timeout, an output
         * limit) stops early: nobody will read its reply, and its memory is wanted. */
        pthread_mutex_lock(&rs->c->mu);
        bool gone = rs->c->closed || rs->c->broken;
        pthread_mutex_unlock(&rs->c->mu);
        if (gone)
            return td_error_set(err, TD_ECANCELLED, "run: the connection was closed before "
                                "node %d of %d", node, rs->nnodes);
    }
    return 0;
}

static void do_run(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__RunRequest *req = (const void *)j->req;
    struct td_session *s = c->sess;
    struct td_error err;
    td_error_clear(&err);
    struct td_graph g;
    struct td_graph_output *outs = NULL;
    int nouts = 0;
    uint64_t planned = 0;
    uint64_t *discard = NULL;
    Tensord__V1__OutputInfo *infos = NULL, **info_ptrs = NULL;
    Tensord__V1__TensorMeta *metas = NULL;
    int64_t *dims = NULL;

    int rc = td_run_decode(req, (uint64_t)c->srv->cfg->max_graph_nodes, &g, &err);
    if (rc != 0) {
        send_err(c, j, &err);
        return;
    }
    g.max_work = (uint64_t)c->srv->cfg->max_graph_work;
    /* An id still being uploaded must not be read: say so by name. */
    for (int n = 0; n < g.nnodes && rc == 0; n++)
        for (int k = 0; k < g.nodes[n].ninputs; k++) {
            struct td_idtable_entry *e = td_idtable_find(&s->ids, g.nodes[n].inputs[k]);
            if (e && e->received < e->nbytes) {
                rc = td_error_set(&err, TD_EPRECOND,
                                  "node %d: id %" PRIu64 " is incomplete: %" PRIu64 " of %" PRIu64
                                  " bytes", n, e->id, e->received, e->nbytes);
                break;
            }
        }
    if (rc != 0)
        goto out_err;
    /* A user already at the tensor quota runs nothing (the outputs are charged one by one as
     * the graph installs them; this refuses before any work or allocation). */
    if (!req->plan_only && s->user) {
        uint64_t max = atomic_load(&s->user->max_tensors);
        uint64_t cur = atomic_load(&s->user->tensors);
        if (max && cur >= max) {
            rc = td_error_set(&err, TD_ELIMIT, "run: user '%s' holds %" PRIu64 " tensors, "
                              "quota max_tensors is %" PRIu64, s->user->name, cur, max);
            goto out_err;
        }
    }
    if (req->plan_only)
        rc = td_graph_plan(&g, &td_session_table_ops, s, &outs, &nouts, &planned, &err);
    else
    {
        struct run_stop rs = {.c = c, .j = j, .nnodes = g.nnodes, .deadline_ms = req->deadline_ms,
                              .start_ns = td_now_ns()};
        /* The deadline counts from the request's arrival: time spent queued counts. */
        if (req->deadline_ms) {
            uint64_t ms = req->deadline_ms > INT64_MAX / 2000000 ? INT64_MAX / 2000000
                                                                 : req->deadline_ms;
            rs.deadline_ns = (j->t_enqueue ? j->t_enqueue : rs.start_ns) + (long)ms * 1000000L;
        }
        g.ag = &s->ag;
        rc = td_graph_run_stoppable(&g, &td_session_table_ops, s, &s->rng, &s->account,
                                    run_stop, &rs, &outs, &nouts, &planned, &err);
    }
    if (rc != 0)
        goto out_err;

    /* Reply: every output not discarded, in node order. */
    if (g.ndiscard > 0) {
        discard = td_malloc((size_t)g.ndiscard * sizeof *discard);
        if (!discard)
            goto out_nomem;
        memcpy(discard, g.discard, (size_t)g.ndiscard * sizeof *discard);
        qsort(discard, (size_t)g.ndiscard, sizeof *discard, cmp_u64);
    }
    size_t nkeep = 0;
    if (nouts > 0) {
        infos = td_calloc((size_t)nouts, sizeof *infos);
        info_ptrs = td_calloc((size_t)nouts, sizeof *info_ptrs);
        metas = td_calloc((size_t)nouts, sizeof *metas);
        dims = td_calloc((size_t)nouts * 2 * TD_MAX_NDIM, sizeof *dims);
        if (!infos || !info_ptrs || !metas || !dims)
            goto out_nomem;
    }
    for (int i = 0; i < nouts; i++) {
        const struct td_graph_output *o = &outs[i];
        if (discard && bsearch(&o->id, discard, (size_t)g.ndiscard, sizeof *discard, cmp_u64))
            continue;
        int64_t *shape = dims + nkeep * 2 * TD_MAX_NDIM;
        int64_t *strides = shape + TD_MAX_NDIM;
        struct td_idtable_entry *e = req->plan_only ? NULL : td_idtable_find(&s->ids, o->id);
        if (e)
            memcpy(strides, e->tensor->strides, (size_t)e->tensor->ndim * sizeof *strides);
        else
            td_contiguous_strides(o->meta.shape, o->meta.ndim, strides);
        Tensord__V1__TensorMeta *m = &metas[nkeep];
        Tensord__V1__OutputInfo *info = &infos[nkeep];
        tensord__v1__tensor_meta__init(m);
        tensord__v1__output_info__init(info);
        meta_fill(m, o->meta.dtype, o->meta.ndim, o->meta.shape, shape, strides);
        info->id = o->id;
        info->meta = m;
        info->undefined = o->undefined;
        info->requires_grad = o->requires_grad;
        info_ptrs[nkeep++] = info;
    }
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__RunReply r = TENSORD__V1__RUN_REPLY__INIT;
    r.status = &st;
    r.n_outputs = nkeep;
    r.outputs = info_ptrs;
    r.bytes_planned = planned;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
    goto out;

out_nomem:
    td_error_set(&err, TD_ENOMEM, "run: out of memory building the reply");
out_err:
    send_err(c, j, &err);
out:
    td_free(discard);
    td_free(infos);
    td_free(info_ptrs);
    td_free(metas);
    td_free(dims);
    td_free(outs);
    td_run_graph_free(&g);
}

/* ---------------------------------------------------------------------------------------
 * ListOps: the reply is built from the op table once, at startup.
 */
static void free_schema(Tensord__V1__OpSchema *o)
{
    if (!o)
        return;
    for (size_t k = 0; k < o->n_attrs; k++)
        td_free(o->attrs[k]);
    td_free(o->attrs);
    td_free(o->dtypes);
    for (size_t k = 0; k < o->n_flags; k++)
        td_free(o->flags[k]);
    td_free(o->flags);
    td_free(o);
}

static Tensord__V1__OpSchema *build_schema(enum td_op op, const struct td_op_info *info)
{
    Tensord__V1__OpSchema *o = td_malloc(sizeof *o);
    if (!o)
        return NULL;
    tensord__v1__op_schema__init(o);
    o->name = (char *)info->name;
    o->min_inputs = info->min_inputs;
    o->max_inputs = info->max_inputs;
    o->num_outputs = info->num_outputs;
    o->doc = (char *)(info->doc ? info->doc : "");
    if (info->nattrs > 0) {
        o->attrs = td_calloc((size_t)info->nattrs, sizeof *o->attrs);
        if (!o->attrs)
            goto fail;
        for (int k = 0; k < info->nattrs; k++) {
            Tensord__V1__AttrSchema *a = td_malloc(sizeof *a);
            if (!a)
                goto fail;
            tensord__v1__attr_schema__init(a);
            a->name = (char *)info->attrs[k].name;
            a->type = (char *)td_attr_type_name(info->attrs[k].type);
            a->required = info->attrs[k].required;
            a->default_value =
                (char *)(info->attrs[k].default_text ? info->attrs[k].default_text : "");
            o->attrs[o->n_attrs++] = a;
        }
    }
    o->differentiable = td_op_deriv(op) != NULL;
    o->dtypes = td_calloc(TD_DTYPE_COUNT, sizeof *o->dtypes);
    if (!o->dtypes)
        goto fail;
    for (int dt = 0; dt < TD_DTYPE_COUNT; dt++)
        if (info->dtypes & TD_DTM(dt))
            o->dtypes[o->n_dtypes++] = (Tensord__V1__DType)dt;
    char buf[256];
    const char *names = td_op_flag_names(info->flags, buf, sizeof buf);
    size_t nflags = 0;
    if (names && *names) {
        nflags = 1;
        for (const char *p = names; *p; p++)
            nflags += *p == ',';
    }
    if (nflags > 0) {
        o->flags = td_calloc(nflags, sizeof *o->flags);
        if (!o->flags)
            goto fail;
        const char *p = names;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            char *f = td_malloc(len + 1);
            if (!f)
                goto fail;
            memcpy(f, p, len);
            f[len] = '\0';
            o->flags[o->n_flags++] = f;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return o;
fail:
    free_schema(o);
    return NULL;
}

int td_handlers_init(struct td_server *srv)
{
    int rc = -1;
    Tensord__V1__OpSchema **ops = td_calloc(TD_OP_COUNT, sizeof *ops);
    if (!ops)
        return -1;
    size_t nops = 0;
    for (int i = 0; i < TD_OP_COUNT; i++) {
        const struct td_op_info *info = td_op_info_get((enum td_op)i);
        if (!info)
            continue;
        ops[nops] = build_schema((enum td_op)i, info);
        if (!ops[nops])
            goto out;
        nops++;
    }
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__ListOpsReply r = TENSORD__V1__LIST_OPS_REPLY__INIT;
    r.status = &st;
    r.n_ops = nops;
    r.ops = ops;
    srv->list_ops_len = tensord__v1__list_ops_reply__get_packed_size(&r);
    srv->list_ops_body = td_malloc(srv->list_ops_len ? srv->list_ops_len : 1);
    if (!srv->list_ops_body)
        goto out;
    tensord__v1__list_ops_reply__pack(&r, srv->list_ops_body);
    rc = 0;
out:
    for (size_t i = 0; i < nops; i++)
        free_schema(ops[i]);
    td_free(ops);
    return rc;
}

void td_handlers_fini(struct td_server *srv)
{
    td_free(srv->list_ops_body);
    srv->list_ops_body = NULL;
}

/* ---------------------------------------------------------------------------------------
 * Stats
 */
static void do_stats(struct td_conn *c, struct td_job *j)
{
    struct td_session *s = c->sess;
    struct td_server *srv = c->srv;
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__StatsReply r = TENSORD__V1__STATS_REPLY__INIT;
    r.status = &st;
    r.session_id = s->id;
    r.session_tensors = s->ids.count;
    r.session_bytes = atomic_load(&s->account.bytes);
    r.session_output_bytes = td_conn_output_bytes(c);
    r.server_output_bytes = atomic_load(&srv->out_bytes);
    td_registry_totals(srv, &r.server_sessions, &r.server_bytes);
    r.calls_total = atomic_load(&srv->calls_total);
    r.errors_total = atomic_load(&srv->errors_total);
    r.server_version = (char *)TD_VERSION;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

/* ---------------------------------------------------------------------------------------
 * Administration: admin role only (run_job checks), except Health.
 */
/* Replies OK to a method whose reply holds only its status (KillSession, SetQuota,
 * Shutdown): such a reply encodes exactly like an ErrorReply. */
static void send_ok(struct td_conn *c, struct td_job *j)
{
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__ErrorReply r = TENSORD__V1__ERROR_REPLY__INIT;
    r.status = &st;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

static void do_list_sessions(struct td_conn *c, struct td_job *j)
{
    struct td_server *srv = c->srv;
    struct td_error err;
    long now = td_now_ns();
    pthread_mutex_lock(&srv->reg_mu);
    pthread_mutex_lock(&srv->park_mu);
    size_t n = (size_t)(srv->reg_count + srv->nparked);
    Tensord__V1__SessionInfo *infos = td_calloc(n ? n : 1, sizeof *infos);
    Tensord__V1__SessionInfo **ptrs = td_calloc(n ? n : 1, sizeof *ptrs);
    char (*peers)[96] = td_calloc(n ? n : 1, sizeof *peers);
    size_t k = 0;
    if (infos && ptrs && peers) {
        for (struct td_conn *o = srv->reg_head; o && k < n; o = o->reg_next, k++) {
            Tensord__V1__SessionInfo *si = &infos[k];
            tensord__v1__session_info__init(si);
            si->id = o->sess->id;
            /* user names live as long as the server */
            si->user = o->sess->user ? o->sess->user->name : (char *)"";
            si->bytes = atomic_load(&o->sess->account.bytes);
            si->tensors = atomic_load(&o->sess->ntensors);
            si->age_seconds = (double)(now - o->sess->created_ns) / 1e9;
            memcpy(peers[k], o->peer, sizeof peers[k]);
            si->peer = peers[k];
            ptrs[k] = si;
        }
        for (struct td_session *p = srv->parked; p && k < n; p = p->park_next, k++) {
            Tensord__V1__SessionInfo *si = &infos[k];
            tensord__v1__session_info__init(si);
            si->id = p->id;
            si->user = p->user->name;   /* parked sessions have a user */
            si->bytes = atomic_load(&p->account.bytes);
            si->tensors = atomic_load(&p->ntensors);
            si->age_seconds = (double)(now - p->created_ns) / 1e9;
            si->peer = (char *)"";
            double left = (double)(p->park_deadline_ns - now) / 1e9;
            si->parked_seconds_left = left > 0 ? left : 1e-9;
            ptrs[k] = si;
        }
    }
    pthread_mutex_unlock(&srv->park_mu);
    pthread_mutex_unlock(&srv->reg_mu);
    if (!infos || !ptrs || !peers) {
        td_error_set(&err, TD_ENOMEM, "list_sessions: out of memory");
        send_err(c, j, &err);
    } else {
        Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
        Tensord__V1__ListSessionsReply r = TENSORD__V1__LIST_SESSIONS_REPLY__INIT;
        r.status = &st;
        r.n_sessions = k;
        r.sessions = ptrs;
        send_msg(c, j, &r.base, NULL, 0, NULL, false);
    }
    td_free(infos);
    td_free(ptrs);
    td_free(peers);
}

static void do_kill_session(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__KillSessionRequest *req = (const void *)j->req;
    struct td_server *srv = c->srv;
    struct td_conn *victim = NULL;
    /* Registered connections are alive while reg_mu is held (conn_free unregisters first);
     * the attention reference keeps the victim alive until the loop has closed it. */
    pthread_mutex_lock(&srv->reg_mu);
    for (struct td_conn *o = srv->reg_head; o; o = o->reg_next)
        if (o->sess->id == req->session_id)
            victim = o;
    if (victim && victim != c) {
        atomic_store(&victim->sess->no_park, true);   /* killed: freed, not parked */
        pthread_mutex_lock(&victim->mu);
        victim->broken = true;
        pthread_mutex_unlock(&victim->mu);
        td_conn_attention(victim);
    }
    pthread_mutex_unlock(&srv->reg_mu);
    struct td_error err;
    if (!victim && td_session_kill_parked(srv, req->session_id)) {
        TD_LOG(TD_LOG_WARN, "parked session killed", "session=%" PRIu64 " by_session=%" PRIu64
               " by_user=%s", req->session_id, c->sess->id, c->sess->user->name);
        send_ok(c, j);
        return;
    }
    if (!victim) {
        td_error_set(&err, TD_ENOTFOUND, "kill_session: session %" PRIu64 " not found",
                     req->session_id);
        send_err(c, j, &err);
        return;
    }
    if (victim == c) {
        td_error_set(&err, TD_EINVAL, "kill_session: session %" PRIu64 " is the caller's own "
                     "(close the connection instead)", req->session_id);
        send_err(c, j, &err);
        return;
    }
    TD_LOG(TD_LOG_WARN, "session killed", "session=%" PRIu64 " by_session=%" PRIu64
           " by_user=%s", req->session_id, c->sess->id, c->sess->user->name);
    send_ok(c, j);
}

static void do_set_quota(struct td_conn *c, struct td_job *j)
{
    const Tensord__V1__SetQuotaRequest *req = (const void *)j->req;
    struct td_error err;
    struct td_user *u = td_auth_find_user(c->srv, req->user ? req->user : "");
    if (!u) {
        td_error_set(&err, TD_ENOTFOUND, "set_quota: no user '%.64s' (users come from the "
                     "token file)", req->user ? req->user : "");
        send_err(c, j, &err);
        return;
    }
    /* Checked first, so a refused request changes nothing. */
    if (req->max_concurrency > TD_MAX_USER_CONCURRENCY) {
        td_error_set(&err, TD_EINVAL, "set_quota: max_concurrency %" PRIu32 " is above %d",
                     req->max_concurrency, TD_MAX_USER_CONCURRENCY);
        send_err(c, j, &err);
        return;
    }
    if (td_pool_set_user_max(&c->srv->pool, &u->sched, (int)req->max_concurrency) != 0) {
        td_error_set(&err, TD_EPRECOND, "set_quota: max_concurrency needs fair scheduling "
                     "(the daemon runs with --fair-scheduling 0)");
        send_err(c, j, &err);
        return;
    }
    atomic_store(&u->account.limit, req->max_bytes);
    atomic_store(&u->max_tensors, req->max_tensors);
    atomic_store(&u->max_sessions, req->max_sessions);
    TD_LOG(TD_LOG_INFO, "quota set", "user=%s max_bytes=%" PRIu64 " max_tensors=%" PRIu64
           " max_sessions=%" PRIu64 " max_concurrency=%" PRIu32 " by_user=%s", u->name,
           req->max_bytes, req->max_tensors, req->max_sessions, req->max_concurrency,
           c->sess->user->name);
    send_ok(c, j);
}

static void do_list_users(struct td_conn *c, struct td_job *j)
{
    struct td_user *users;
    size_t n = (size_t)td_auth_users(c->srv, &users);
    Tensord__V1__UserInfo *infos = td_calloc(n ? n : 1, sizeof *infos);
    Tensord__V1__UserInfo **ptrs = td_calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        struct td_error err;
        td_error_set(&err, TD_ENOMEM, "list_users: out of memory");
        send_err(c, j, &err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct td_user *u = &users[i];
        Tensord__V1__UserInfo *ui = &infos[i];
        tensord__v1__user_info__init(ui);
        ui->name = u->name;   /* lives as long as the server */
        ui->admin = u->admin;
        ui->bytes = atomic_load(&u->account.bytes);
        ui->max_bytes = atomic_load(&u->account.limit);
        ui->peak_bytes = atomic_load(&u->account.peak);
        ui->tensors = atomic_load(&u->tensors);
        ui->max_tensors = atomic_load(&u->max_tensors);
        ui->sessions = atomic_load(&u->sessions);
        ui->max_sessions = atomic_load(&u->max_sessions);
        int max, running;
        td_pool_user_state(&c->srv->pool, &u->sched, &max, &running);
        ui->max_concurrency = (uint32_t)max;
        ui->running = (uint32_t)running;
        ptrs[i] = ui;
    }
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__ListUsersReply r = TENSORD__V1__LIST_USERS_REPLY__INIT;
    r.status = &st;
    r.n_users = n;
    r.users = ptrs;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
out:
    td_free(infos);
    td_free(ptrs);
}

static void do_drain(struct td_conn *c, struct td_job *j)
{
    TD_LOG(TD_LOG_WARN, "drain requested", "session=%" PRIu64 " user=%s", c->sess->id,
           c->sess->user->name);
    send_ok(c, j);
    td_server_drain(c->srv);
}

static void do_shutdown(struct td_conn *c, struct td_job *j)
{
    TD_LOG(TD_LOG_WARN, "shutdown requested", "session=%" PRIu64 " user=%s", c->sess->id,
           c->sess->user->name);
    send_ok(c, j);
    /* The loop's signal handler stops the server exactly as for SIGTERM. */
    kill(getpid(), SIGTERM);
}

static void do_health(struct td_conn *c, struct td_job *j)
{
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__HealthReply r = TENSORD__V1__HEALTH_REPLY__INIT;
    r.status = &st;
    r.serving = td_server_draining(c->srv)
                    ? TENSORD__V1__HEALTH_REPLY__SERVING_STATUS__NOT_SERVING
                    : TENSORD__V1__HEALTH_REPLY__SERVING_STATUS__SERVING;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

/* Cancel: the reader already marked the Run (conn.c, cancel_mark); this only answers. */
static void do_cancel(struct td_conn *c, struct td_job *j)
{
    Tensord__V1__Status st = TENSORD__V1__STATUS__INIT;
    Tensord__V1__CancelReply r = TENSORD__V1__CANCEL_REPLY__INIT;
    r.status = &st;
    r.cancelled = j->cancel_found;
    send_msg(c, j, &r.base, NULL, 0, NULL, false);
}

static bool admin_method(uint32_t m)
{
    return m == TD_M_LIST_SESSIONS || m == TD_M_KILL_SESSION || m == TD_M_SET_QUOTA ||
           m == TD_M_DRAIN || m == TD_M_SHUTDOWN || m == TD_M_LIST_USERS;
}

/* ---------------------------------------------------------------------------------------
 * The job runner
 */
static void run_job(struct td_conn *c, struct td_job *j)
{
    if (j->kind == TD_JOB_CLOSE) {
        pthread_mutex_lock(&c->mu);
        c->close_after_flush = true;
        pthread_mutex_unlock(&c->mu);
        td_conn_attention(c);
        return;
    }
    atomic_fetch_add(&c->srv->calls_total, 1);
    if (j->kind == TD_JOB_ERROR) {
        send_error(c, j, j->err.status, j->err.msg, j->close_after);
        return;
    }
    if (j->method == TD_M_HEALTH) {
        do_health(c, j);
        return;
    }
    if (j->method != TD_M_HANDSHAKE && !c->sess->handshaken) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: the first call must be Handshake",
                 td_method_name(j->method));
        send_error(c, j, TD_EPRECOND, msg, false);
        return;
    }
    if (admin_method(j->method) && !(c->sess->user && c->sess->user->admin)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: user '%s' is not an admin", td_method_name(j->method),
                 c->sess->user ? c->sess->user->name : "");
        TD_LOG(TD_LOG_WARN, "admin call refused", "peer=%s session=%" PRIu64 " method=%s "
               "user=%s", c->peer, c->sess->id, td_method_name(j->method),
               c->sess->user ? c->sess->user->name : "");
        send_error(c, j, TD_EPERM, msg, false);
        return;
    }
    switch (j->method) {
    case TD_M_HANDSHAKE:
        do_handshake(c, j);
        break;
    case TD_M_PUT:
        do_put(c, j);
        break;
    case TD_M_GET:
        do_get(c, j);
        break;
    case TD_M_FREE:
        do_free(c, j);
        break;
    case TD_M_RUN:
        do_run(c, j);
        break;
    case TD_M_LIST_OPS:
        td_conn_send(c, j->method, j->call_id, c->srv->list_ops_body, c->srv->list_ops_len,
                     NULL, 0, NULL, false);
        break;
    case TD_M_STATS:
        do_stats(c, j);
        break;
    case TD_M_LIST_SESSIONS:
        do_list_sessions(c, j);
        break;
    case TD_M_KILL_SESSION:
        do_kill_session(c, j);
        break;
    case TD_M_SET_QUOTA:
        do_set_quota(c, j);
        break;
    case TD_M_DRAIN:
        do_drain(c, j);
        break;
    case TD_M_SHUTDOWN:
        do_shutdown(c, j);
        break;
    case TD_M_CANCEL:
        do_cancel(c, j);
        break;
    case TD_M_LIST_USERS:
        do_list_users(c, j);
        break;
    default:
        send_error(c, j, TD_EUNIMPL, "unknown method", false);
        break;
    }
}

#define BATCH 64

void td_conn_process(struct td_conn *c)
{
    int done = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        struct td_job *j = c->qhead;
        if (!j) {
            if (c->corked) {
                pthread_mutex_unlock(&c->mu);
                td_conn_flush(c);
                continue;
            }
            if (c->reader_worker && !c->closed) {
                pthread_mutex_unlock(&c->mu);
                td_conn_worker_read(c);
                continue;
            }
            c->scheduled = false;
            pthread_mutex_unlock(&c->mu);
            td_conn_unref(c);
            return;
        }
        c->qhead = j->next;
        if (!c->qhead)
            c->qtail = NULL;
        c->qlen--;
        c->running = j;
        /* A connection being closed (a failed write, an output limit) runs nothing more. */
        bool closed = c->closed || c->broken;
        /* Resume reading once the job queue is half empty, unless the output queue still
         * holds it back (then its flush resumes reading). */
        bool resume = c->paused && c->qlen < TD_QUEUE_HIGH / 2 && !td_conn_input_full(c);
        if (resume)
            c->paused = false;
        pthread_mutex_unlock(&c->mu);
        if (resume)
            td_conn_attention(c);
        if (!closed)
            run_job(c, j);
        pthread_mutex_lock(&c->mu);
        c->running = NULL;
        c->worker_busy = false;
        pthread_mutex_unlock(&c->mu);
        td_metrics_job_done(c->srv, j);
        td_job_free(j);
        if (++done >= BATCH && atomic_load(&c->srv->pool.nready) > 0) {
            td_conn_flush(c);
            /* Let other sessions have a turn; the reference travels with the resubmission. */
            td_pool_submit(&c->srv->pool, c);
            return;
        }
    }
}
