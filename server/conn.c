/*
 * conn.c - connections and their I/O: the incremental frame reader and the output queue.
 *
 * Sockets are raw non-blocking fds watched with uv_poll_t, so that a worker can write a
 * reply straight to the socket (under the connection's mutex) when nothing is queued ahead
 * of it; only when the socket would block does the reply wait in the connection's output
 * queue, flushed by the loop on UV_WRITABLE. The reader parses frames incrementally:
 * header, then body, then the data section, which for a Put is received directly into the
 * new tensor's storage. The loop reads while a session is idle; once a worker holds the
 * session (jobs queued) the loop hands it the read state (reader_worker), the worker parses
 * the next requests itself and spins briefly for more, then hands reading back. So a
 * pipelined client costs no thread hop per call.
 *
 * Slow readers: the output queue's unsent bytes (obytes, Get data included) are bounded the
 * way Redis bounds a client's output buffer. Above --output-buffer-soft nobody reads the
 * connection's requests (backpressure; the requests already read still run, in order) until
 * the client has read enough of its replies. A client with more than --output-buffer-hard
 * queued, or above the soft limit for --output-buffer-soft-seconds, is disconnected and its
 * session freed. A single reply never counts as over the hard limit on its own.
 *
 * TLS (tls.c): all socket I/O goes through conn_recv and conn_sendv, which call recv/sendmsg
 * on plain connections and SSL_read/SSL_write on TLS ones with the same results, so the code
 * above them does not know which it has. A TLS connection first runs its handshake from the
 * poll events; plaintext that OpenSSL decrypted but nobody read yet gets no poll event, so
 * the loop reads it from the attention list (tls_kick).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "server.h"
#include "tensord.pb-c.h"
#include "tls.h"

#define MAX_IOV 64

static void conn_close(struct td_conn *c);
static void conn_update_events(struct td_conn *c);
static void on_conn_poll(uv_poll_t *h, int status, int events);
static void on_readable(struct td_conn *c);

/* ---------------------------------------------------------------------------------------
 * Jobs
 */
void td_job_free(struct td_job *j)
{
    if (!j)
        return;
    if (j->req)
        protobuf_c_message_free_unpacked(j->req, &td_pb_allocator);
    if (j->put_tensor)
        td_tensor_release(j->put_tensor);
    td_free(j);
}

static struct td_job *job_new(enum td_job_kind kind, uint32_t method, uint64_t call_id)
{
    struct td_job *j = td_malloc(sizeof *j);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->method = method;
    j->call_id = call_id;
    return j;
}

/* Appends a job to the session's FIFO and schedules the session. [loop] */
static void conn_enqueue(struct td_conn *c, struct td_job *j)
{
    bool submit = false;
    if (j->kind != TD_JOB_CLOSE) {
        j->t_enqueue = td_now_ns();
        td_metrics_request_received(c->srv);
    }
    pthread_mutex_lock(&c->mu);
    j->next = NULL;
    if (c->qtail)
        c->qtail->next = j;
    else
        c->qhead = j;
    c->qtail = j;
    c->qlen++;
    if (!c->scheduled) {
        c->scheduled = true;
        submit = true;
        atomic_fetch_add(&c->refcount, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (submit)
        td_pool_submit(&c->srv->pool, c);
}

/* ---------------------------------------------------------------------------------------
 * Connection lifetime
 */
static void pending_clear(struct td_conn *c);

static void conn_free(struct td_conn *c)
{
    td_registry_remove(c->srv, c);
    td_tls_conn_fini(c);
    if (c->fd >= 0)
        close(c->fd);
    pending_clear(c);
    td_job_free(c->cur_job);
    td_free(c->body);
    struct td_job *j = c->qhead;
    while (j) {
        struct td_job *n = j->next;
        td_job_free(j);
        j = n;
    }
    struct td_outframe *o = c->ohead;
    while (o) {
        struct td_outframe *n = o->next;
        if (o->hold)
            td_tensor_release(o->hold);
        td_free(o);
        o = n;
    }
    atomic_fetch_sub(&c->srv->out_bytes, c->obytes);
    td_session_release(c->sess, c->clean_eof);   /* freed, or parked when resumable */
    pthread_mutex_destroy(&c->mu);
    td_free(c->inbuf);
    td_free(c);
}

void td_conn_unref(struct td_conn *c)
{
    if (atomic_fetch_sub(&c->refcount, 1) == 1)
        conn_free(c);
}

void td_conn_attention(struct td_conn *c)
{
    struct td_server *srv = c->srv;
    bool wake = false;
    pthread_mutex_lock(&srv->attn_mu);
    if (!c->in_attention) {
        c->in_attention = true;
        atomic_fetch_add(&c->refcount, 1);
        c->attn_next = srv->attn_head;
        srv->attn_head = c;
        wake = true;
    }
    pthread_mutex_unlock(&srv->attn_mu);
    if (wake)
        uv_async_send(&srv->async);
}

static void pending_clear(struct td_conn *c)
{
    for (size_t i = 0; i < c->npending; i++)
        td_tensor_release(c->pending[i].tensor);
    td_free(c->pending);
    c->pending = NULL;
    c->npending = c->cap_pending = 0;
}

/* The output buffer grew by n bytes: count them and start the soft-seconds clock when it
 * rises above the soft limit. [mu] */
static void obytes_add(struct td_conn *c, uint64_t n)
{
    c->obytes += n;
    atomic_fetch_add_explicit(&c->srv->out_bytes, n, memory_order_relaxed);
    if (c->obytes > c->srv->out_soft && c->over_soft_since == 0)
        c->over_soft_since = td_now_ns();
}

/* n queued bytes were written or dropped; back at or below the soft limit stops the clock.
 * [mu] */
static void obytes_sub(struct td_conn *c, uint64_t n)
{
    c->obytes -= n;
    atomic_fetch_sub_explicit(&c->srv->out_bytes, n, memory_order_relaxed);
    if (c->obytes <= c->srv->out_soft)
        c->over_soft_since = 0;
}

uint64_t td_conn_output_bytes(struct td_conn *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->obytes;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* The fd and the read state go with the last reference (conn_free): a worker may still be
 * reading the socket when the loop closes the poll handle. */
static void on_conn_closed(uv_handle_t *h)
{
    td_conn_unref(h->data);
}

/* Stops I/O on c and drops the loop's reference once the poll handle has closed. Queued
 * jobs are dropped by the worker that holds the session; a graph still running finishes
 * first, and the last reference frees the session. [loop] */
static void conn_close(struct td_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    if (c->tls)
        td_tls_shutdown(c);       /* close_notify, best effort */
    shutdown(c->fd, SHUT_RDWR);   /* the peer sees the end now; a reading worker stops */
    struct td_outframe *o = c->ohead;
    c->ohead = c->otail = NULL;
    c->oframes = 0;
    obytes_sub(c, c->obytes);
    const char *kill_reason = c->kill_reason;
    uint64_t kill_bytes = c->kill_bytes;
    pthread_mutex_unlock(&c->mu);
    if (kill_reason)
        td_metrics_disconnected(c->srv, kill_reason);
    if (kill_reason)
        TD_LOG(TD_LOG_WARN, "slow client disconnected",
               "peer=%s session=%" PRIu64 " queued_bytes=%" PRIu64 " reason=%s soft=%" PRIu64
               " hard=%" PRIu64 " soft_seconds=%ld", c->peer, c->sess->id, kill_bytes,
               kill_reason, c->srv->out_soft, c->srv->out_hard,
               c->srv->out_soft_ns / 1000000000L);
    while (o) {
        struct td_outframe *n = o->next;
        if (o->hold)
            td_tensor_release(o->hold);
        td_free(o);
        o = n;
    }
    c->srv->nconns--;
    if (c->loop_prev)
        c->loop_prev->loop_next = c->loop_next;
    else
        c->srv->conns = c->loop_next;
    if (c->loop_next)
        c->loop_next->loop_prev = c->loop_prev;
    TD_LOG(TD_LOG_DEBUG, "connection closed", "peer=%s session=%" PRIu64, c->peer, c->sess->id);
    uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

/* ---------------------------------------------------------------------------------------
 * Output
 */
static size_t frame_total(const struct td_outframe *o)
{
    return TD_FRAME_HEADER_SIZE + o->body_len + o->data_len;
}

/* Builds the iovecs of o's unsent part. Returns: the number used (<= 3). */
static int frame_iov(const struct td_outframe *o, const uint8_t *body, struct iovec *iov)
{
    const struct {
        const uint8_t *p;
        size_t n;
    } parts[3] = {{o->hdr, TD_FRAME_HEADER_SIZE}, {body, o->body_len}, {o->data, o->data_len}};
    size_t skip = o->sent;
    int k = 0;
    for (int i = 0; i < 3; i++) {
        if (skip >= parts[i].n) {
            skip -= parts[i].n;
            continue;
        }
        iov[k].iov_base = (void *)(parts[i].p + skip);
        iov[k].iov_len = parts[i].n - skip;
        skip = 0;
        k++;
    }
    return k;
}

/* The I/O seam: conn_sendv and conn_recv are the only places that write or read a
 * connection's socket, with sendmsg/recv on plain connections and SSL_write/SSL_read (tls.c)
 * on TLS ones, which answer the same way. */

/* Writes as much as the socket takes. A 0 return must be followed by a retry that offers the
 * same bytes first (TLS keeps the record it could not finish). Returns: bytes written (0 when
 * it would block) or -1 on a hard error. [mu] */
static ssize_t conn_sendv(struct td_conn *c, struct iovec *iov, int n)
{
    if (c->tls)
        return td_tls_sendv(c, iov, n);
    int fd = c->fd;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    for (;;) {
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

/* Flushes the output queue. Returns: true when the queue is now empty. [mu] */
static bool flush_locked(struct td_conn *c)
{
    while (c->ohead && !c->broken) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (struct td_outframe *o = c->ohead; o && n + 3 <= MAX_IOV; o = o->next)
            n += frame_iov(o, o->body, iov + n);
        ssize_t w = conn_sendv(c, iov, n);
        if (w < 0) {
            c->broken = true;
            break;
        }
        if (w == 0)
            return false;
        obytes_sub(c, (uint64_t)w);
        size_t left = (size_t)w;
        while (left > 0 && c->ohead) {
            struct td_outframe *o = c->ohead;
            size_t rest = frame_total(o) - o->sent;
            if (left < rest) {
                o->sent += left;
                left = 0;
                break;
            }
            left -= rest;
            c->ohead = o->next;
            if (!c->ohead)
                c->otail = NULL;
            c->oframes--;
            if (o->hold)
                td_tensor_release(o->hold);
            td_free(o);
        }
    }
    return c->ohead == NULL;
}

void td_conn_send(struct td_conn *c, uint32_t method, uint64_t call_id, const uint8_t *body,
                  size_t body_len, const uint8_t *data, size_t data_len,
                  struct td_tensor *hold, bool close_after)
{
    struct td_outframe head;
    head.sent = 0;
    head.body_len = body_len;
    head.data = data;
    head.data_len = data_len;
    td_frame_encode_response(head.hdr, method, call_id, body_len, data_len);
    bool attention = false;

    pthread_mutex_lock(&c->mu);
    if (c->closed || c->broken)
        goto out_unlock;
    /* More requests are waiting: gather the replies and write them together when the
     * queue runs dry (td_conn_flush), one syscall and one client wakeup for the batch. What
     * is gathered stays under the soft limit, so gathering alone never pauses reading. */
    struct td_server *srv = c->srv;
    bool cork = c->qhead != NULL && !close_after && c->oframes < 64 && data_len < 65536 &&
                c->obytes + frame_total(&head) <= srv->out_soft;
    if (!c->ohead && !cork) {
        struct iovec iov[3];
        int n = frame_iov(&head, body, iov);
        ssize_t w = conn_sendv(c, iov, n);
        if (w < 0) {
            c->broken = true;
            attention = true;
            goto out_unlock;
        }
        head.sent = (size_t)w;
        if (head.sent == frame_total(&head)) {
            if (close_after) {
                c->close_after_flush = true;
                attention = true;
            }
            goto out_unlock;
        }
    }
    /* The socket is busy. Past the hard limit the client is not reading: give up on it
     * rather than hold more (only replies the socket refused count, so gathered ones are
     * written first; one reply alone never trips the limit, --max-frame-data bounds it). */
    uint64_t rest = frame_total(&head) - head.sent;
    if (srv->out_hard && c->ohead && c->obytes + rest > srv->out_hard) {
        if (c->corked)
            flush_locked(c);
        if (c->ohead && c->obytes + rest > srv->out_hard && !c->broken) {
            c->broken = true;
            c->kill_reason = "output-buffer-hard";
            c->kill_bytes = c->obytes + rest;
        }
        if (c->broken) {
            attention = true;
            goto out_unlock;
        }
    }
    /* Queue the rest, copying the body, keeping the data by reference. */
    struct td_outframe *o = td_malloc(sizeof *o + body_len);
    if (!o) {
        c->broken = true;   /* the stream would lose a reply: give up on the connection */
        attention = true;
        goto out_unlock;
    }
    memcpy(o, &head, sizeof head);
    memcpy(o->body, body, body_len);
    o->next = NULL;
    o->hold = hold;
    hold = NULL;
    if (c->otail)
        c->otail->next = o;
    else
        c->ohead = o;
    c->otail = o;
    c->oframes++;
    obytes_add(c, rest);
    if (close_after)
        c->close_after_flush = true;
    if (cork)
        c->corked = true;
    else
        attention = true;    /* the loop must watch for UV_WRITABLE */
out_unlock:
    pthread_mutex_unlock(&c->mu);
    if (hold)
        td_tensor_release(hold);
    if (attention)
        td_conn_attention(c);
}

void td_conn_flush(struct td_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool attention = false;
    if (c->corked) {
        c->corked = false;
        if (!c->closed && !c->broken)
            flush_locked(c);
        /* Also when reading was paused and may resume now. */
        attention = c->ohead != NULL || c->broken || (c->paused && !td_conn_input_full(c));
    }
    pthread_mutex_unlock(&c->mu);
    if (attention)
        td_conn_attention(c);
}

/* ---------------------------------------------------------------------------------------
 * Poll events and the attention list
 */
static void conn_update_events(struct td_conn *c)
{
    if (c->closing)
        return;
    pthread_mutex_lock(&c->mu);
    bool broken = c->broken;
    bool done = c->close_after_flush && !c->ohead;
    bool want_write = c->ohead != NULL;
    bool full = td_conn_input_full(c);
    c->paused = full;
    bool loop_reads = !c->reader_worker;
    pthread_mutex_unlock(&c->mu);
    if (broken || done) {
        conn_close(c);
        return;
    }
    bool want_read = loop_reads && c->rstate != TD_R_DEAD && !c->eof && !full;
    int ev = (want_read ? UV_READABLE : 0) | (want_write ? UV_WRITABLE : 0);
    if (c->tls) {
        if (c->tls_hs_events) {
            ev = c->tls_hs_events;       /* the handshake comes first */
        } else {
            if (loop_reads && atomic_load(&c->tls_read_wants_write))
                ev |= UV_WRITABLE;
            /* Plaintext already decrypted into the SSL object gets no poll event: read it
             * on the next pass of the attention list. */
            if (want_read && !c->tls_kick && td_tls_pending(c) > 0) {
                c->tls_kick = true;
                td_conn_attention(c);
            }
        }
    }
    if (ev == c->poll_events)
        return;
    c->poll_events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, on_conn_poll);
    else
        uv_poll_stop(&c->poll);
}

void td_conn_on_async(uv_async_t *h)
{
    struct td_server *srv = h->data;
    pthread_mutex_lock(&srv->attn_mu);
    struct td_conn *list = srv->attn_head;
    srv->attn_head = NULL;
    pthread_mutex_unlock(&srv->attn_mu);
    while (list) {
        struct td_conn *c = list;
        /* Read the link and clear the flag together: once in_attention is false another
         * thread may list c again, rewriting attn_next. */
        pthread_mutex_lock(&srv->attn_mu);
        list = c->attn_next;
        c->in_attention = false;
        pthread_mutex_unlock(&srv->attn_mu);
        conn_update_events(c);
        if (c->tls_kick && !c->closing) {
            c->tls_kick = false;
            on_readable(c);
        }
        td_conn_unref(c);
    }
}

/* ---------------------------------------------------------------------------------------
 * Input: the incremental frame parser
 */

/* Gives up on a connection from the read path, which may run on a worker: stop parsing and
 * let the loop close it. */
static void conn_fail(struct td_conn *c)
{
    c->rstate = TD_R_DEAD;
    pthread_mutex_lock(&c->mu);
    c->broken = true;
    pthread_mutex_unlock(&c->mu);
    td_conn_attention(c);
}

/* Queues an error reply for the frame in progress. A protocol error also stops reading
 * and closes the connection after the reply. [loop] */
static void queue_error(struct td_conn *c, uint32_t method, uint64_t call_id, int status,
                        bool fatal, const char *fmt, ...) TD_PRINTF(6, 7);
static void queue_error(struct td_conn *c, uint32_t method, uint64_t call_id, int status,
                        bool fatal, const char *fmt, ...)
{
    struct td_job *j = job_new(TD_JOB_ERROR, method, call_id);
    if (fatal) {
        c->rstate = TD_R_DEAD;
        td_job_free(c->cur_job);
        c->cur_job = NULL;
    }
    if (!j) {
        /* Without memory for the reply the stream cannot stay in order. */
        conn_fail(c);
        return;
    }
    j->close_after = fatal;
    j->err.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err.msg, sizeof j->err.msg, fmt, ap);
    va_end(ap);
    if (fatal)
        td_metrics_disconnected(c->srv, "protocol-error");
    if (fatal)
        TD_LOG(TD_LOG_WARN, "protocol error", "peer=%s session=%" PRIu64 " err=\"%s\"", c->peer,
               c->sess->id, j->err.msg);
    conn_enqueue(c, j);
}

static struct td_pending_upload *pending_find(struct td_conn *c, uint64_t id)
{
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].id == id)
            return &c->pending[i];
    return NULL;
}

static void pending_remove(struct td_conn *c, struct td_pending_upload *p)
{
    td_tensor_release(p->tensor);
    *p = c->pending[--c->npending];
}

/* A big upload is received straight into fresh storage, whose page faults would cost more
 * than the copy: ask for transparent huge pages (a hint; ignored where THP is off). */
static void advise_huge(void *data, size_t nbytes)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (nbytes < 2 * huge)
        return;
    uintptr_t start = ((uintptr_t)data + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)data + nbytes) & ~(huge - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
}

/* Validates a Put against everything that needs no session state and prepares the place
 * its data goes to: a new tensor (offset 0) or the pending upload (a later chunk).
 * Returns: 0 with j->put_* and c->data_dst set, or a status with err filled. [loop] */
static int prepare_put(struct td_conn *c, const Tensord__V1__PutRequest *req, uint64_t data_len,
                       struct td_job *j, struct td_error *err)
{
    struct td_server *srv = c->srv;
    if (req->offset == 0) {
        if (!td_dtype_valid((int64_t)req->dtype))
            return td_error_set(err, TD_EINVAL, "put: dtype %d out of range", (int)req->dtype);
        if (req->n_shape > TD_MAX_NDIM)
            return td_error_set(err, TD_EINVAL, "put: %zu dims exceed max_ndim %d",
                                req->n_shape, TD_MAX_NDIM);
        struct td_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.dtype = (enum td_dtype)req->dtype;
        meta.ndim = (int)req->n_shape;
        for (size_t i = 0; i < req->n_shape; i++)
            meta.shape[i] = req->shape[i];
        int64_t numel = 0;
        int rc = td_shape_check(meta.shape, meta.ndim, meta.dtype, "put", &numel, err);
        if (rc != 0)
            return rc;
        uint64_t nbytes = (uint64_t)numel * td_dtype_size(meta.dtype);
        if (nbytes > srv->max_session_bytes)
            return td_error_set(err, TD_ELIMIT,
                                "put: tensor of %" PRIu64 " bytes exceeds the session memory "
                                "limit %" PRIu64, nbytes, srv->max_session_bytes);
        if (data_len > nbytes)
            return td_error_set(err, TD_EINVAL,
                                "put: data beyond nbytes: data_len %" PRIu64 " > nbytes %" PRIu64,
                                data_len, nbytes);
        struct td_pending_upload *old = pending_find(c, req->id);
        if (data_len < nbytes && !old && c->npending >= TD_MAX_PENDING_UPLOADS)
            return td_error_set(err, TD_ELIMIT, "put: %d uploads already in progress",
                                TD_MAX_PENDING_UPLOADS);
        struct td_tensor *t = NULL;
        rc = td_tensor_new(&meta, false, &c->sess->account, &t, err);
        if (rc != 0)
            return rc;
        if (old)
            pending_remove(c, old);
        advise_huge(td_tensor_data(t), nbytes);
        if (data_len < nbytes) {
            if (c->npending == c->cap_pending) {
                size_t ncap = c->cap_pending ? c->cap_pending * 2 : 4;
                struct td_pending_upload *np = td_realloc(c->pending, ncap * sizeof *np);
                if (!np) {
                    td_tensor_release(t);
                    return td_error_set(err, TD_ENOMEM, "put: out of memory");
                }
                c->pending = np;
                c->cap_pending = ncap;
            }
            c->pending[c->npending++] = (struct td_pending_upload){
                .id = req->id, .tensor = td_tensor_retain(t), .next_offset = data_len,
                .nbytes = nbytes};
        }
        j->put_tensor = t;
        j->put_create = true;
        j->put_offset = 0;
        j->put_len = data_len;
        j->put_nbytes = nbytes;
        c->data_dst = td_tensor_data(t);
        return 0;
    }
    struct td_pending_upload *p = pending_find(c, req->id);
    if (!p)
        return td_error_set(err, TD_EPRECOND,
                            "put: id %" PRIu64 " has no upload in progress (offset %" PRIu64
                            " needs an earlier Put with offset 0)", req->id, req->offset);
    if (req->offset != p->next_offset)
        return td_error_set(err, TD_EINVAL,
                            "put: id %" PRIu64 " chunk at offset %" PRIu64 ", expected %" PRIu64,
                            req->id, req->offset, p->next_offset);
    if (data_len > p->nbytes - req->offset)
        return td_error_set(err, TD_EINVAL,
                            "put: data beyond nbytes: offset %" PRIu64 " + data_len %" PRIu64
                            " > nbytes %" PRIu64, req->offset, data_len, p->nbytes);
    j->put_tensor = td_tensor_retain(p->tensor);
    j->put_create = false;
    j->put_offset = req->offset;
    j->put_len = data_len;
    j->put_nbytes = p->nbytes;
    c->data_dst = (uint8_t *)td_tensor_data(p->tensor) + req->offset;
    p->next_offset += data_len;
    if (p->next_offset == p->nbytes)
        pending_remove(c, p);
    return 0;
}

/* Marks the queued or running Run with that call id as cancelled. Returns: whether one was
 * found. [read-state owner] */
static bool cancel_mark(struct td_conn *c, uint64_t call_id)
{
    bool found = false;
    pthread_mutex_lock(&c->mu);
    struct td_job *r = c->running;
    if (r && r->kind == TD_JOB_CALL && r->method == TD_M_RUN && r->call_id == call_id) {
        atomic_store(&r->cancelled, true);
        found = true;
    }
    for (struct td_job *q = c->qhead; q; q = q->next)
        if (q->kind == TD_JOB_CALL && q->method == TD_M_RUN && q->call_id == call_id) {
            atomic_store(&q->cancelled, true);
            found = true;
        }
    pthread_mutex_unlock(&c->mu);
    return found;
}

/* The header and body of a frame are in; decide what the frame becomes and where its data
 * section goes. [loop] */
static void frame_body_done(struct td_conn *c, const uint8_t *body)
{
    const struct td_frame_header *h = &c->hdr;
    struct td_error err;
    td_error_clear(&err);
    c->data_dst = NULL;
    c->data_got = 0;
    bool fatal = false;          /* authentication failed: reply, then close */
    struct td_job *j = job_new(TD_JOB_CALL, h->method, h->call_id);
    if (!j) {
        conn_fail(c);
        return;
    }
    const ProtobufCMessageDescriptor *d = td_request_descriptor(h->method);
    if (td_conn_after_drain(c) && h->method >= TD_M_HANDSHAKE && h->method <= TD_M_LIST_OPS) {
        /* Sent after the drain began: only Stats and the admin/health methods (numbered
         * after it) still run. */
        j->kind = TD_JOB_ERROR;
        td_error_set(&j->err, TD_EUNAVAIL, "%s: the server is draining (shutting down) and "
                     "accepts no new requests; reconnect to a restarted or another server",
                     td_method_name(h->method));
    } else if (!d) {
        j->kind = TD_JOB_ERROR;
        td_error_set(&j->err, TD_EUNIMPL, "unknown method %" PRIu32, h->method);
    } else if (h->method != TD_M_PUT && h->data_len != 0) {
        j->kind = TD_JOB_ERROR;
        td_error_set(&j->err, TD_EINVAL, "%s: data_len must be 0, got %" PRIu64,
                     td_method_name(h->method), h->data_len);
    } else {
        j->req = protobuf_c_message_unpack(d, &td_pb_allocator, (size_t)h->body_len, body);
        if (!j->req) {
            j->kind = TD_JOB_ERROR;
            td_error_set(&j->err, TD_EINVAL, "%s: cannot decode the request body (%" PRIu64
                         " bytes)", td_method_name(h->method), h->body_len);
        } else if (h->method == TD_M_HANDSHAKE) {
            /* Authenticate here, where the frames behind it are parsed, so a pipelined
             * request after a good Handshake gets the authenticated limits. */
            const Tensord__V1__HandshakeRequest *hr = (const void *)j->req;
            if (!c->authed && td_auth_handshake(c, hr->auth_token, hr->resume_token,
                                                &err) != 0) {
                j->kind = TD_JOB_ERROR;
                j->err = err;
                j->close_after = true;
                fatal = true;
            } else {
                c->authed = true;
                atomic_store(&c->auth_done, true);
                if (c->reserved_slot && !(c->sess->user && c->sess->user->admin)) {
                    j->kind = TD_JOB_ERROR;
                    td_error_set(&j->err, TD_EUNAVAIL, "handshake: the server is at "
                                 "max_connections (%" PRId64 "); this Unix-socket connection "
                                 "took a slot reserved for admins and user '%s' is not one",
                                 c->srv->cfg->max_connections,
                                 c->sess->user ? c->sess->user->name : "");
                    j->close_after = true;
                    fatal = true;
                    td_metrics_disconnected(c->srv, "max-connections");
                    TD_LOG(TD_LOG_WARN, "reserved connection refused", "peer=%s session=%"
                           PRIu64 " user=%s", c->peer, c->sess->id,
                           c->sess->user ? c->sess->user->name : "");
                }
            }
            c->handshake_seen = true;
        } else if (!c->authed && h->method != TD_M_HEALTH) {
            /* Before authentication only Handshake (and Health) run. */
            j->kind = TD_JOB_ERROR;
            td_error_set(&j->err, td_auth_enabled(c->srv) ? TD_EAUTH : TD_EPRECOND,
                         "%s: the first call must be Handshake", td_method_name(h->method));
        } else if (h->method == TD_M_CANCEL) {
            /* Marked here, as it is read: the Run may be running on a worker right now. */
            const Tensord__V1__CancelRequest *cr = (const void *)j->req;
            j->cancel_found = cancel_mark(c, cr->call_id);
        } else if (h->method == TD_M_PUT) {
            int rc;
            if (!c->handshake_seen)
                rc = td_error_set(&err, TD_EPRECOND, "Put: the first call must be Handshake");
            else
                rc = prepare_put(c, (const Tensord__V1__PutRequest *)j->req, h->data_len, j,
                                 &err);
            if (rc != 0) {
                j->kind = TD_JOB_ERROR;
                j->err = err;
                c->data_dst = NULL;
            }
        }
    }
    if (j->kind == TD_JOB_ERROR && j->req) {
        protobuf_c_message_free_unpacked(j->req, &td_pb_allocator);
        j->req = NULL;
    }
    atomic_store_explicit(&c->frame_start_ns, 0, memory_order_relaxed);
    if (h->data_len == 0) {
        conn_enqueue(c, j);
        c->rstate = fatal ? TD_R_DEAD : TD_R_HEADER;
        c->hdr_got = 0;
        return;
    }
    atomic_store_explicit(&c->in_data, true, memory_order_relaxed);
    c->cur_job = j;
    c->rstate = TD_R_DATA;
}

static void frame_data_done(struct td_conn *c)
{
    struct td_job *j = c->cur_job;
    c->cur_job = NULL;
    c->data_dst = NULL;
    c->rstate = TD_R_HEADER;
    c->hdr_got = 0;
    atomic_store_explicit(&c->in_data, false, memory_order_relaxed);
    conn_enqueue(c, j);
}

static void header_done(struct td_conn *c)
{
    struct td_error err;
    td_error_clear(&err);
    td_frame_decode(c->hdrbuf, &c->hdr);
    /* Before authentication a frame is small: nobody unauthenticated makes the daemon hold
     * or skip more than --max-frame-body-unauth bytes. */
    const struct td_config *cfg = c->srv->cfg;
    uint64_t max_body = (uint64_t)cfg->max_frame_body, max_data = (uint64_t)cfg->max_frame_data;
    if (!c->authed) {
        if (max_body > (uint64_t)cfg->max_frame_body_unauth)
            max_body = (uint64_t)cfg->max_frame_body_unauth;
        if (max_data > (uint64_t)cfg->max_frame_body_unauth)
            max_data = (uint64_t)cfg->max_frame_body_unauth;
    }
    int rc = td_frame_validate(&c->hdr, max_body, max_data, &err);
    if (rc != 0) {
        queue_error(c, c->hdr.method, c->hdr.call_id, rc, true, "%s%s", err.msg,
                    c->authed ? "" : " (before authentication: max_frame_body_unauth)");
        return;
    }
    c->body_got = 0;
    c->rstate = TD_R_BODY;
}

/* Consumes buffered input. [loop] */
static void process_input(struct td_conn *c)
{
    while (c->rstate != TD_R_DEAD) {
        size_t avail = c->in_end - c->in_start;
        uint8_t *p = c->inbuf + c->in_start;
        switch (c->rstate) {
        case TD_R_HEADER: {
            if (avail == 0)
                return;
            if (c->hdr_got == 0)   /* a frame begins: --read-timeout runs from here */
                atomic_store_explicit(&c->frame_start_ns,
                                      atomic_load_explicit(&c->last_in_ns, memory_order_relaxed),
                                      memory_order_relaxed);
            size_t n = TD_FRAME_HEADER_SIZE - c->hdr_got;
            if (n > avail)
                n = avail;
            memcpy(c->hdrbuf + c->hdr_got, p, n);
            c->hdr_got += n;
            c->in_start += n;
            if (c->hdr_got == TD_FRAME_HEADER_SIZE)
                header_done(c);
            break;
        }
        case TD_R_BODY: {
            size_t blen = (size_t)c->hdr.body_len;
            if (c->body_got == 0 && avail >= blen) {
                /* The whole body is buffered: decode it in place. */
                c->in_start += blen;
                frame_body_done(c, p);
                break;
            }
            if (avail == 0)
                return;
            if (!c->body) {
                c->body = td_malloc(blen);
                if (!c->body) {
                    queue_error(c, c->hdr.method, c->hdr.call_id, TD_ENOMEM, true,
                                "out of memory for a %zu-byte body", blen);
                    return;
                }
            }
            size_t n = blen - c->body_got;
            if (n > avail)
                n = avail;
            memcpy(c->body + c->body_got, p, n);
            c->body_got += n;
            c->in_start += n;
            if (c->body_got == blen) {
                frame_body_done(c, c->body);
                td_free(c->body);
                c->body = NULL;
            }
            break;
        }
        case TD_R_DATA: {
            uint64_t left = c->hdr.data_len - c->data_got;
            if (left == 0) {
                frame_data_done(c);
                break;
            }
            if (avail == 0)
                return;
            size_t n = avail < left ? avail : (size_t)left;
            if (c->data_dst)
                memcpy(c->data_dst + c->data_got, p, n);
            c->data_got += n;
            c->in_start += n;
            break;
        }
        case TD_R_DEAD:
            return;
        }
    }
}

/* Reads up to len bytes. Returns: bytes read (> 0), 0 at the end of the stream, -EAGAIN when
 * nothing is there, or another negative errno. [read-state owner] */
static ssize_t conn_recv(struct td_conn *c, void *buf, size_t len)
{
    if (c->tls)
        return td_tls_recv(c, buf, len);
    for (;;) {
        ssize_t r = recv(c->fd, buf, len, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static void on_eof(struct td_conn *c)
{
    c->eof = true;
    switch (c->rstate) {
    case TD_R_HEADER:
        if (c->hdr_got == 0) {
            c->clean_eof = true;   /* the client is done: its session is not parked */
            struct td_job *j = job_new(TD_JOB_CLOSE, 0, 0);
            if (!j) {
                conn_fail(c);
                return;
            }
            conn_enqueue(c, j);
        } else {
            queue_error(c, 0, 0, TD_EINVAL, true, "truncated frame: got %zu of %d header bytes",
                        c->hdr_got, TD_FRAME_HEADER_SIZE);
        }
        break;
    case TD_R_BODY:
        queue_error(c, c->hdr.method, c->hdr.call_id, TD_EINVAL, true,
                    "truncated frame: got %zu of %" PRIu64 " body bytes", c->body_got,
                    c->hdr.body_len);
        break;
    case TD_R_DATA:
        queue_error(c, c->hdr.method, c->hdr.call_id, TD_EINVAL, true,
                    "truncated frame: got %" PRIu64 " of %" PRIu64 " data bytes", c->data_got,
                    c->hdr.data_len);
        break;
    case TD_R_DEAD:
        break;
    }
    c->rstate = TD_R_DEAD;
}

/* One recv into the input buffer or straight into a Put's tensor, then parsing.
 * Returns: 2 progress and the socket is probably drained, 1 progress, 0 would block,
 * -1 reading is over (EOF handled, error, or a protocol error). [read-state owner] */
static int read_once(struct td_conn *c)
{
    if (c->rstate == TD_R_DEAD)
        return -1;
    ssize_t r;
    if (c->rstate == TD_R_DATA && c->in_start == c->in_end &&
        c->hdr.data_len - c->data_got >= 4096) {
        /* Bulk data goes straight to its destination (a tensor's storage), no copy. */
        uint64_t left = c->hdr.data_len - c->data_got;
        size_t want = left > (uint64_t)SSIZE_MAX ? (size_t)SSIZE_MAX : (size_t)left;
        if (c->data_dst) {
            r = conn_recv(c, c->data_dst + c->data_got, want);
        } else {
            if (want > TD_INBUF_SIZE)
                want = TD_INBUF_SIZE;
            r = conn_recv(c, c->inbuf, want);   /* fixed-size scratch, dropped */
        }
        if (r > 0) {
            atomic_fetch_add_explicit(&c->bytes_in, (uint64_t)r, memory_order_relaxed);
            atomic_store_explicit(&c->last_in_ns, td_now_ns(), memory_order_relaxed);
            c->data_got += (uint64_t)r;
            if (c->data_got == c->hdr.data_len)
                frame_data_done(c);
            return 1;
        }
    } else {
        if (c->in_start == c->in_end)
            c->in_start = c->in_end = 0;
        if (c->in_end == TD_INBUF_SIZE && c->in_start > 0) {
            memmove(c->inbuf, c->inbuf + c->in_start, c->in_end - c->in_start);
            c->in_end -= c->in_start;
            c->in_start = 0;
        }
        size_t want = TD_INBUF_SIZE - c->in_end;
        r = conn_recv(c, c->inbuf + c->in_end, want);
        if (r > 0) {
            atomic_fetch_add_explicit(&c->bytes_in, (uint64_t)r, memory_order_relaxed);
            atomic_store_explicit(&c->last_in_ns, td_now_ns(), memory_order_relaxed);
            c->in_end += (size_t)r;
            process_input(c);
            /* A short TLS read says nothing about the socket: SSL_read returns one record. */
            return (size_t)r < want && !c->tls ? 2 : 1;
        }
    }
    if (r == 0) {
        process_input(c);
        on_eof(c);
        return -1;
    }
    if (r == -EAGAIN)
        return 0;
    TD_LOG(TD_LOG_DEBUG, "read failed", "peer=%s err=\"%s\"", c->peer, strerror((int)-r));
    conn_fail(c);
    return -1;
}

static void on_readable(struct td_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool mine = !c->reader_worker;
    pthread_mutex_unlock(&c->mu);
    if (!mine)
        return;
    for (int iter = 0; iter < 64; iter++) {
        int r = read_once(c);
        if (r <= 0 || r == 2)
            break;
        pthread_mutex_lock(&c->mu);
        bool full = td_conn_input_full(c);
        pthread_mutex_unlock(&c->mu);
        if (full)
            break;
    }
    /* While a worker holds the session it reads the next requests itself: a pipelined
     * client then costs no hop through the loop thread. */
    pthread_mutex_lock(&c->mu);
    if (c->scheduled && !c->worker_busy && !c->closed && c->rstate != TD_R_DEAD && !c->eof &&
        !td_conn_input_full(c))
        c->reader_worker = true;
    pthread_mutex_unlock(&c->mu);
    conn_update_events(c);
}

void td_conn_worker_read(struct td_conn *c)
{
    long start = td_now_ns();
    /* A full queue (jobs, reply frames or reply bytes) stops reading before the next recv:
     * reading goes back to the loop, which resumes once the client has caught up. */
    pthread_mutex_lock(&c->mu);
    bool stop = c->closed || c->broken || td_conn_input_full(c);
    pthread_mutex_unlock(&c->mu);
    while (!stop) {
        int r = read_once(c);
        pthread_mutex_lock(&c->mu);
        bool have = c->qhead != NULL;
        stop = c->closed || c->broken || td_conn_input_full(c);
        pthread_mutex_unlock(&c->mu);
        if (r < 0 || stop)
            break;
        if (have)
            return;            /* keep reading after running what arrived */
        if (r > 0) {
            start = td_now_ns();
            continue;
        }
        if (atomic_load(&c->srv->pool.nready) > 0 || td_now_ns() - start > TD_SPIN_NS)
            break;
        td_cpu_relax();
    }
    pthread_mutex_lock(&c->mu);
    c->reader_worker = false;
    pthread_mutex_unlock(&c->mu);
    td_conn_attention(c);
}

void td_conn_worker_busy(struct td_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool had = c->reader_worker;
    c->worker_busy = true;
    c->reader_worker = false;
    pthread_mutex_unlock(&c->mu);
    if (had)
        td_conn_attention(c);
}

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    struct td_conn *c = h->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->tls_hs_events) {
        /* TLS: no frame is read before the handshake is done. */
        int r = td_tls_handshake(c);
        if (r < 0)
            conn_close(c);
        else if (r == 0)
            conn_update_events(c);
        else
            on_readable(c);     /* the client's first request may already be buffered */
        return;
    }
    if (events & UV_WRITABLE) {
        pthread_mutex_lock(&c->mu);
        flush_locked(c);
        pthread_mutex_unlock(&c->mu);
    }
    bool read_retry = (events & UV_WRITABLE) && c->tls &&
                      atomic_exchange(&c->tls_read_wants_write, false);
    if ((events & UV_READABLE) || read_retry)
        on_readable(c);
    else
        conn_update_events(c);
}

void td_conn_on_out_timer(uv_timer_t *h)
{
    struct td_server *srv = h->data;
    long now = td_now_ns();
    struct td_conn *next;
    for (struct td_conn *c = srv->conns; c; c = next) {
        next = c->loop_next;     /* conn_close unlinks c */
        pthread_mutex_lock(&c->mu);
        bool over = !c->closed && c->over_soft_since != 0 &&
                    now - c->over_soft_since >= srv->out_soft_ns;
        if (over && !c->kill_reason) {
            c->kill_reason = "output-buffer-soft-seconds";
            c->kill_bytes = c->obytes;
        }
        pthread_mutex_unlock(&c->mu);
        if (over)
            conn_close(c);
    }
}

/* Closes c for a timeout: logged and counted by reason, the session freed. [loop] */
static void conn_drop(struct td_conn *c, const char *reason, int64_t seconds)
{
    td_metrics_disconnected(c->srv, reason);
    TD_LOG(TD_LOG_WARN, "connection timed out", "peer=%s session=%" PRIu64 " reason=%s "
           "seconds=%" PRId64, c->peer, c->sess->id, reason, seconds);
    conn_close(c);
}

static long max_ns(long a, long b)
{
    return a > b ? a : b;
}

void td_conn_on_timeout_timer(uv_timer_t *h)
{
    struct td_server *srv = h->data;
    const struct td_config *cfg = srv->cfg;
    const long sec = 1000000000L;
    long idle = (long)cfg->idle_timeout * sec, auth = (long)cfg->auth_timeout * sec;
    long rd = (long)cfg->read_timeout * sec;
    long now = td_now_ns();
    struct td_conn *next;
    for (struct td_conn *c = srv->conns; c; c = next) {
        next = c->loop_next;     /* conn_close unlinks c */
        pthread_mutex_lock(&c->mu);
        bool gone = c->closed || c->broken;
        bool busy = c->scheduled || c->qhead || c->ohead;
        /* Nobody reads while reading is paused (backpressure) or while the worker that holds
         * the read state runs the requests it read. */
        bool paused = c->paused || c->reader_worker;
        pthread_mutex_unlock(&c->mu);
        if (gone)
            continue;
        /* Work in flight and stopped reading stop the clocks: the idle clock restarts once
         * the work is done, the read clock once reading resumes. */
        if (busy)
            c->busy_seen_ns = now;
        if (paused)
            c->paused_seen_ns = now;
        long last = atomic_load_explicit(&c->last_in_ns, memory_order_relaxed);
        long fstart = atomic_load_explicit(&c->frame_start_ns, memory_order_relaxed);
        bool in_data = atomic_load_explicit(&c->in_data, memory_order_relaxed);
        if (auth && !atomic_load(&c->auth_done) && now - c->accepted_ns >= auth)
            conn_drop(c, "auth-timeout", cfg->auth_timeout);
        else if (rd && !paused && fstart && now - max_ns(fstart, c->paused_seen_ns) >= rd)
            conn_drop(c, "read-timeout", cfg->read_timeout);
        else if (rd && !paused && in_data && now - max_ns(last, c->paused_seen_ns) >= rd)
            conn_drop(c, "read-timeout", cfg->read_timeout);
        else if (idle && !busy && now - max_ns(last, c->busy_seen_ns) >= idle)
            conn_drop(c, "idle-timeout", cfg->idle_timeout);
    }
}

/* ---------------------------------------------------------------------------------------
 * Accepting
 */
void td_conn_accept(struct td_server *srv, int fd, const char *peer, bool is_tcp)
{
    /* --max-connections counts TCP and Unix together; Unix sockets have a few more slots
     * that only an admin may keep (checked at the handshake), so an operator can still get
     * in to look and kill sessions when the server is full. */
    uint64_t max = (uint64_t)srv->cfg->max_connections;
    bool reserved = false;
    if (max && srv->nconns >= max) {
        uint64_t extra = is_tcp ? 0 : (uint64_t)srv->cfg->admin_reserved_connections;
        if (srv->nconns >= max + extra) {
            td_metrics_disconnected(srv, "max-connections");
            TD_LOG(TD_LOG_WARN, "connection refused", "peer=%s reason=max-connections "
                   "open=%" PRIu64 " max=%" PRIu64, peer, srv->nconns, max);
            close(fd);
            return;
        }
        reserved = true;
    }
    struct td_conn *c = td_malloc(sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof *c);
    c->inbuf = td_malloc(TD_INBUF_SIZE);
    c->sess = td_session_new(srv);
    if (!c->inbuf || !c->sess || pthread_mutex_init(&c->mu, NULL) != 0) {
        td_free(c->inbuf);
        td_session_free(c->sess);
        td_free(c);
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->is_tcp = is_tcp;
    c->reserved_slot = reserved;
    c->accepted_ns = td_now_ns();
    atomic_init(&c->last_in_ns, c->accepted_ns);
    atomic_init(&c->frame_start_ns, 0);
    atomic_init(&c->in_data, false);
    atomic_init(&c->auth_done, false);
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    atomic_init(&c->refcount, 1);
    if (c->is_tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    /* Every TCP connection speaks TLS when the server has a certificate (--tls-cert). */
    if ((is_tcp && srv->tls_ctx && td_tls_conn_init(c) != 0) ||
        uv_poll_init(&srv->loop, &c->poll, fd) != 0) {
        td_tls_conn_fini(c);
        td_session_free(c->sess);
        pthread_mutex_destroy(&c->mu);
        td_free(c->inbuf);
        td_free(c);
        close(fd);
        return;
    }
    c->poll.data = c;
    td_registry_add(srv, c);
    srv->nconns++;
    c->loop_next = srv->conns;
    if (srv->conns)
        srv->conns->loop_prev = c;
    srv->conns = c;
    TD_LOG(TD_LOG_DEBUG, "connection accepted", "peer=%s session=%" PRIu64, c->peer, c->sess->id);
    conn_update_events(c);
}

void td_conn_close_all(struct td_server *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
}
