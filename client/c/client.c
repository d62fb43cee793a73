/*
 * client.c - libtensord-client: framing, calls and the public API of tensord/client.h.
 *
 * One blocking socket per client. A request is one frame: the 40-byte header and the
 * nanopb-encoded body are built in one send buffer and go out with the caller's tensor
 * bytes in a single sendmsg (gather write), so Put data is never copied. Replies are read
 * through a small receive buffer (one recv usually brings header and body together); a Get
 * reply's data section is read from the socket straight into the caller's buffer.
 *
 * Calls may be pipelined: each frame carries a client-chosen call id and the daemon answers
 * a session's calls in order. A reply that arrives for another outstanding call than the one
 * being waited for is decoded and kept in the pending table until its caller waits for it.
 */
#include "tensord/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "tensord.pb.h"

#define HDR_SIZE 40
#define PROTO_VERSION 1
#define KIND_REQUEST 1
#define KIND_RESPONSE 2

enum method {
    M_HANDSHAKE = 1,
    M_PUT = 2,
    M_GET = 3,
    M_FREE = 4,
    M_RUN = 5,
    M_LIST_OPS = 6,
    M_STATS = 7,
};

#define ERRMSG_MAX 512
#define SBUF_INITIAL 4096
#define RBUF_INITIAL (64 * 1024)
/* Largest reply body accepted; a bigger declared length means a broken stream. */
#define MAX_REPLY_BODY ((size_t)256 << 20)
/* Chunked transfers keep this many chunk calls in flight. */
#define PUT_WINDOW 4
#define GET_WINDOW 2

/* A reply kept for a pipelined call whose caller has not waited for it yet. */
struct pending {
    uint64_t call_id;
    uint32_t method;
    bool done;
    int status;
    char *msg;                            /* owned; set when status != 0 */
    struct td_client_tensor_info *outs;   /* owned */
    size_t nouts;
};

struct td_client {
    int fd;
    bool broken;                /* the byte stream can no longer be trusted */
    uint64_t next_call_id;
    uint64_t next_tensor_id;
    uint64_t max_frame_data;
    uint64_t max_frame_body;
    uint64_t session_id;
    char server_version[64];
    char errmsg[ERRMSG_MAX];
    unsigned char *sbuf;        /* header + body of the frame being sent */
    size_t scap;
    unsigned char *rbuf;        /* received bytes not consumed yet: [rpos, rlen) */
    size_t rcap, rpos, rlen;
    struct pending *pend;
    size_t npend, pcap;
    uint64_t bytes_sent, bytes_received;
};

struct gnode {
    char op[64];
    size_t in_off, nin, out_off, nout, attr_off, nattr;
    bool no_grad;
};

struct td_client_graph {
    struct gnode *nodes;
    size_t nnodes, nodecap;
    uint64_t *ids;              /* inputs and outputs of every node, node by node */
    size_t nids, idcap;
    tensord_v1_Attr *attrs;     /* attrs of every node, node by node */
    size_t nattrs, attrcap;
    uint64_t *discard;
    size_t ndiscard, discap;
};

/* A received frame; body points into the receive buffer until the next read. */
struct frame {
    uint64_t call_id;
    uint32_t method;
    const unsigned char *body;
    size_t body_len;
    uint64_t data_len;
};

/* ---------------------------------------------------------------------------------------
 * Status codes and dtypes.
 */

const char *td_client_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define TD_CLIENT__S(name, val, text) \
    case (val):                       \
        return text;
        TD_CLIENT_ERRNO_MAP(TD_CLIENT__S)
#undef TD_CLIENT__S
    default:
        return "unknown status";
    }
}

static const size_t dtype_sizes[TD_CLIENT_DTYPE_COUNT] = {1, 1, 1, 2, 4, 8, 2, 2, 4, 8, 8, 16};
static const char *const dtype_names[TD_CLIENT_DTYPE_COUNT] = {
    "bool",    "uint8",    "int8",    "int16",   "int32",     "int64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128"};

size_t td_client_dtype_size(int dtype)
{
    if (dtype < 0 || dtype >= TD_CLIENT_DTYPE_COUNT)
        return 0;
    return dtype_sizes[dtype];
}

const char *td_client_dtype_name(int dtype)
{
    if (dtype < 0 || dtype >= TD_CLIENT_DTYPE_COUNT)
        return "?";
    return dtype_names[dtype];
}

/* ---------------------------------------------------------------------------------------
 * Errors.
 */

static int seterr(td_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int seterr(td_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    if (code == TD_CLIENT_EIO || code == TD_CLIENT_ECLOSED || code == TD_CLIENT_EPROTO)
        c->broken = true;
    return code;
}

/* Maps a wire status code to a client status. */
static int wire_status(uint32_t code)
{
    if (code == 0)
        return 0;
    if (code > 16)
        return TD_CLIENT_EUNKNOWN;
    return -(int)code;
}

static int check_usable(td_client *c)
{
    if (c->broken)
        return seterr(c, TD_CLIENT_ECLOSED, "connection unusable after an earlier error");
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Sending.
 */

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int sbuf_reserve(td_client *c, size_t n)
{
    if (n <= c->scap)
        return 0;
    size_t cap = c->scap ? c->scap : SBUF_INITIAL;
    while (cap < n)
        cap *= 2;
    unsigned char *p = realloc(c->sbuf, cap);
    if (!p)
        return seterr(c, TD_CLIENT_ENOMEM, "out of memory (send buffer of %zu bytes)", cap);
    c->sbuf = p;
    c->scap = cap;
    return 0;
}

/* Encodes msg into the send buffer after the header room. Returns: 0 and *body_len. */
static int encode_body(td_client *c, const pb_msgdesc_t *fields, const void *msg,
                       size_t *body_len)
{
    int rc;
    if ((rc = sbuf_reserve(c, SBUF_INITIAL)))
        return rc;
    pb_ostream_t os = pb_ostream_from_buffer(c->sbuf + HDR_SIZE, c->scap - HDR_SIZE);
    if (pb_encode(&os, fields, msg)) {
        *body_len = os.bytes_written;
        return 0;
    }
    /* Too big for the buffer (or a real encoding error): size it and try once more. */
    size_t size;
    if (!pb_get_encoded_size(&size, fields, msg))
        return seterr(c, TD_CLIENT_EUSAGE, "cannot encode request: %s", PB_GET_ERROR(&os));
    if (c->max_frame_body && size > c->max_frame_body)
        return seterr(c, TD_CLIENT_ETOOBIG, "request body of %zu bytes exceeds the daemon's "
                      "limit of %llu", size, (unsigned long long)c->max_frame_body);
    if ((rc = sbuf_reserve(c, HDR_SIZE + size)))
        return rc;
    os = pb_ostream_from_buffer(c->sbuf + HDR_SIZE, size);
    if (!pb_encode(&os, fields, msg))
        return seterr(c, TD_CLIENT_EUSAGE, "cannot encode request: %s", PB_GET_ERROR(&os));
    *body_len = os.bytes_written;
    return 0;
}

/* Sends the frame whose body encode_body left in the send buffer, followed by data. */
static int send_frame(td_client *c, uint32_t method, uint64_t call_id, size_t body_len,
                      const void *data, uint64_t data_len)
{
    unsigned char *h = c->sbuf;
    h[0] = 'T';
    h[1] = 'D';
    h[2] = 'R';
    h[3] = 'P';
    h[4] = PROTO_VERSION & 0xff;
    h[5] = PROTO_VERSION >> 8;
    h[6] = KIND_REQUEST;
    h[7] = 0;
    put_le32(h + 8, method);
    put_le32(h + 12, 0);
    put_le64(h + 16, call_id);
    put_le64(h + 24, body_len);
    put_le64(h + 32, data_len);

    struct iovec iov[2];
    iov[0].iov_base = c->sbuf;
    iov[0].iov_len = HDR_SIZE + body_len;
    iov[1].iov_base = (void *)(uintptr_t)data;
    iov[1].iov_len = (size_t)data_len;
    struct iovec *v = iov;
    int nv = data_len ? 2 : 1;
    while (nv > 0) {
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = v;
        mh.msg_iovlen = (size_t)nv;
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return seterr(c, TD_CLIENT_ECLOSED, "connection closed by the daemon");
            return seterr(c, TD_CLIENT_EIO, "send: %s", strerror(errno));
        }
        c->bytes_sent += (uint64_t)n;
        size_t left = (size_t)n;
        while (nv > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            nv--;
        }
        if (nv > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

/* Encodes and sends one request with a fresh call id. */
static int send_call(td_client *c, uint32_t method, const pb_msgdesc_t *fields,
                     const void *msg, const void *data, uint64_t data_len, uint64_t *call_id)
{
    size_t body_len = 0;
    int rc = encode_body(c, fields, msg, &body_len);
    if (rc)
        return rc;
    uint64_t id = c->next_call_id++;
    if ((rc = send_frame(c, method, id, body_len, data, data_len)))
        return rc;
    *call_id = id;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Receiving.
 */

/* Makes at least need bytes available at rbuf + rpos. */
static int fill(td_client *c, size_t need)
{
    if (c->rlen - c->rpos >= need)
        return 0;
    if (c->rpos + need > c->rcap) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
        if (need > c->rcap) {
            size_t cap = c->rcap;
            while (cap < need)
                cap *= 2;
            unsigned char *p = realloc(c->rbuf, cap);
            if (!p)
                return seterr(c, TD_CLIENT_ENOMEM, "out of memory (receive buffer)");
            c->rbuf = p;
            c->rcap = cap;
        }
    }
    while (c->rlen - c->rpos < need) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            c->bytes_received += (uint64_t)n;
        } else if (n == 0) {
            return seterr(c, TD_CLIENT_ECLOSED, "connection closed by the daemon");
        } else if (errno != EINTR) {
            return seterr(c, TD_CLIENT_EIO, "recv: %s", strerror(errno));
        }
    }
    return 0;
}

/* Reads the next frame's header and body. The body stays valid until the next read. */
static int read_frame(td_client *c, struct frame *f)
{
    int rc = fill(c, HDR_SIZE);
    if (rc)
        return rc;
    const unsigned char *h = c->rbuf + c->rpos;
    if (memcmp(h, "TDRP", 4) != 0)
        return seterr(c, TD_CLIENT_EPROTO, "reply frame has a bad magic");
    unsigned version = (unsigned)h[4] | ((unsigned)h[5] << 8);
    if (version != PROTO_VERSION || h[6] != KIND_RESPONSE)
        return seterr(c, TD_CLIENT_EPROTO, "reply frame has version %u kind %u", version,
                      (unsigned)h[6]);
    f->method = get_le32(h + 8);
    f->call_id = get_le64(h + 16);
    uint64_t body_len = get_le64(h + 24);
    f->data_len = get_le64(h + 32);
    if (body_len > MAX_REPLY_BODY)
        return seterr(c, TD_CLIENT_EPROTO, "reply body of %llu bytes is over the limit",
                      (unsigned long long)body_len);
    if ((rc = fill(c, HDR_SIZE + (size_t)body_len)))
        return rc;
    f->body = c->rbuf + c->rpos + HDR_SIZE;
    f->body_len = (size_t)body_len;
    c->rpos += HDR_SIZE + (size_t)body_len;
    return 0;
}

/* Reads n data-section bytes into dst: what is buffered first, the rest straight from the
 * socket. */
static int read_data(td_client *c, void *dst, uint64_t n)
{
    unsigned char *d = dst;
    size_t avail = c->rlen - c->rpos;
    size_t k = n < avail ? (size_t)n : avail;
    memcpy(d, c->rbuf + c->rpos, k);
    c->rpos += k;
    d += k;
    n -= k;
    while (n > 0) {
        ssize_t r = recv(c->fd, d, (size_t)n, MSG_WAITALL);
        if (r > 0) {
            c->bytes_received += (uint64_t)r;
            d += r;
            n -= (uint64_t)r;
        } else if (r == 0) {
            return seterr(c, TD_CLIENT_ECLOSED, "connection closed by the daemon");
        } else if (errno != EINTR) {
            return seterr(c, TD_CLIENT_EIO, "recv: %s", strerror(errno));
        }
    }
    return 0;
}

/* Reads and drops n data-section bytes. */
static int drain_data(td_client *c, uint64_t n)
{
    while (n > 0) {
        if (c->rpos == c->rlen)
            c->rpos = c->rlen = 0;
        size_t avail = c->rlen - c->rpos;
        if (avail == 0) {
            int rc = fill(c, 1);
            if (rc)
                return rc;
            avail = c->rlen - c->rpos;
        }
        size_t k = n < avail ? (size_t)n : avail;
        c->rpos += k;
        n -= k;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * nanopb callbacks.
 */

struct strbuf {
    char *buf;
    size_t cap;
};

/* Decodes a string field into a fixed buffer, truncating. */
static bool dec_string(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct strbuf *b = *arg;
    size_t n = s->bytes_left;
    size_t k = n < b->cap - 1 ? n : b->cap - 1;
    if (!pb_read(s, (pb_byte_t *)b->buf, k))
        return false;
    b->buf[k] = '\0';
    return n == k || pb_read(s, NULL, n - k);
}

struct idslice {
    const uint64_t *v;
    size_t n;
};

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Encodes a repeated uint64 field, packed. */
static bool enc_ids(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct idslice *ids = *arg;
    if (ids->n == 0)
        return true;
    size_t len = 0;
    for (size_t i = 0; i < ids->n; i++)
        len += varint_size(ids->v[i]);
    if (!pb_encode_tag(s, PB_WT_STRING, f->tag) || !pb_encode_varint(s, len))
        return false;
    for (size_t i = 0; i < ids->n; i++)
        if (!pb_encode_varint(s, ids->v[i]))
            return false;
    return true;
}

struct attrslice {
    const tensord_v1_Attr *v;
    size_t n;
};

static bool enc_attrs(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const struct attrslice *a = *arg;
    for (size_t i = 0; i < a->n; i++) {
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, tensord_v1_Attr_fields, &a->v[i]))
            return false;
    }
    return true;
}

static bool enc_nodes(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const td_client_graph *g = *arg;
    for (size_t i = 0; i < g->nnodes; i++) {
        const struct gnode *n = &g->nodes[i];
        tensord_v1_Node msg = tensord_v1_Node_init_zero;
        struct idslice in = {g->ids + n->in_off, n->nin};
        struct idslice out = {g->ids + n->out_off, n->nout};
        struct attrslice at = {g->attrs + n->attr_off, n->nattr};
        memcpy(msg.op, n->op, sizeof msg.op);
        msg.inputs.funcs.encode = enc_ids;
        msg.inputs.arg = &in;
        msg.outputs.funcs.encode = enc_ids;
        msg.outputs.arg = &out;
        msg.attrs.funcs.encode = enc_attrs;
        msg.attrs.arg = &at;
        msg.no_grad = n->no_grad;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, tensord_v1_Node_fields, &msg))
            return false;
    }
    return true;
}

static void meta_to_info(const tensord_v1_TensorMeta *m, uint64_t id,
                         struct td_client_tensor_info *info)
{
    memset(info, 0, sizeof *info);
    info->id = id;
    info->dtype = (int)m->dtype;
    info->ndim = (int)m->shape_count;
    for (pb_size_t i = 0; i < m->shape_count && i < TD_CLIENT_MAX_NDIM; i++)
        info->shape[i] = m->shape[i];
    info->nbytes = m->nbytes;
}

/* Collects RunReply.outputs into a caller array, or a growing owned one. */
struct outs_sink {
    struct td_client_tensor_info *outs;
    size_t max, n;
    bool grow;      /* realloc outs as needed (kept replies) */
    bool nomem;
};

static bool dec_output(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct outs_sink *k = *arg;
    tensord_v1_OutputInfo o = tensord_v1_OutputInfo_init_zero;
    if (!pb_decode(s, tensord_v1_OutputInfo_fields, &o))
        return false;
    if (k->n >= k->max && k->grow) {
        size_t cap = k->max ? 2 * k->max : 8;
        struct td_client_tensor_info *p = realloc(k->outs, cap * sizeof *p);
        if (!p) {
            k->nomem = true;
            return false;
        }
        k->outs = p;
        k->max = cap;
    }
    if (k->n < k->max) {
        meta_to_info(&o.meta, o.id, &k->outs[k->n]);
        k->outs[k->n].undefined = o.undefined;
        k->outs[k->n].requires_grad = o.requires_grad;
    }
    k->n++;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Replies.
 */

static int decode_body(td_client *c, const struct frame *f, const pb_msgdesc_t *fields,
                       void *msg)
{
    pb_istream_t is = pb_istream_from_buffer(f->body, f->body_len);
    if (!pb_decode(&is, fields, msg))
        return seterr(c, TD_CLIENT_EPROTO, "cannot decode reply to method %u: %s",
                      (unsigned)f->method, PB_GET_ERROR(&is));
    return 0;
}

/* Turns a decoded reply status into the call's result; the message is already in errbuf. */
static int reply_status(td_client *c, uint32_t code)
{
    int st = wire_status(code);
    if (st && c->errmsg[0] == '\0')
        snprintf(c->errmsg, sizeof c->errmsg, "%s", td_client_strerror(st));
    return st;
}

static void status_cb(td_client *c, tensord_v1_Status *st, struct strbuf *sb)
{
    c->errmsg[0] = '\0';
    sb->buf = c->errmsg;
    sb->cap = sizeof c->errmsg;
    st->message.funcs.decode = dec_string;
    st->message.arg = sb;
}

static struct pending *find_pending(td_client *c, uint64_t call_id)
{
    for (size_t i = 0; i < c->npend; i++)
        if (c->pend[i].call_id == call_id)
            return &c->pend[i];
    return NULL;
}

static void remove_pending(td_client *c, struct pending *p)
{
    free(p->msg);
    free(p->outs);
    *p = c->pend[--c->npend];
}

/* Decodes and keeps the reply of a pipelined call that nobody is waiting for yet. */
static int keep_reply(td_client *c, const struct frame *f)
{
    struct pending *p = find_pending(c, f->call_id);
    if (!p || p->done)
        return seterr(c, TD_CLIENT_EPROTO, "reply for unknown call id %llu",
                      (unsigned long long)f->call_id);
    char msgbuf[ERRMSG_MAX] = "";
    struct strbuf sb = {msgbuf, sizeof msgbuf};
    uint32_t code;
    int rc;
    if (p->method == M_RUN) {
        tensord_v1_RunReply r = tensord_v1_RunReply_init_zero;
        struct outs_sink sink = {NULL, 0, 0, true, false};
        r.status.message.funcs.decode = dec_string;
        r.status.message.arg = &sb;
        r.outputs.funcs.decode = dec_output;
        r.outputs.arg = &sink;
        rc = decode_body(c, f, tensord_v1_RunReply_fields, &r);
        if (rc) {
            free(sink.outs);
            if (sink.nomem)
                return seterr(c, TD_CLIENT_ENOMEM, "out of memory keeping a reply");
            return rc;
        }
        p->outs = sink.outs;
        p->nouts = sink.n;
        code = r.status.code;
    } else {
        tensord_v1_ErrorReply r = tensord_v1_ErrorReply_init_zero;
        r.status.message.funcs.decode = dec_string;
        r.status.message.arg = &sb;
        if ((rc = decode_body(c, f, tensord_v1_ErrorReply_fields, &r)))
            return rc;
        code = r.status.code;
    }
    p->status = wire_status(code);
    if (p->status) {
        if (msgbuf[0] == '\0')
            snprintf(msgbuf, sizeof msgbuf, "%s", td_client_strerror(p->status));
        p->msg = strdup(msgbuf);
    }
    p->done = true;
    return drain_data(c, f->data_len);
}

/* Reads replies until the one for call_id arrives, keeping others. Returns: 0 with *f. */
static int next_reply_for(td_client *c, uint64_t call_id, struct frame *f)
{
    for (;;) {
        int rc = read_frame(c, f);
        if (rc)
            return rc;
        if (f->call_id == call_id)
            return 0;
        if ((rc = keep_reply(c, f)))
            return rc;
    }
}

static int no_data(td_client *c, const struct frame *f)
{
    if (f->data_len)
        return seterr(c, TD_CLIENT_EPROTO, "unexpected data section in a reply to method %u",
                      (unsigned)f->method);
    return 0;
}

/* Waits for a reply that carries only a status. */
static int wait_status(td_client *c, uint64_t call_id)
{
    struct frame f;
    int rc = next_reply_for(c, call_id, &f);
    if (rc)
        return rc;
    tensord_v1_ErrorReply r = tensord_v1_ErrorReply_init_zero;
    struct strbuf sb;
    status_cb(c, &r.status, &sb);
    if ((rc = decode_body(c, &f, tensord_v1_ErrorReply_fields, &r)))
        return rc;
    if ((rc = no_data(c, &f)))
        return rc;
    return reply_status(c, r.status.code);
}

/* ---------------------------------------------------------------------------------------
 * Connection.
 */

static int open_socket(const char *address, int *fd_out, char *err, size_t errsz)
{
    int fd = -1;
    if (strncmp(address, "unix://", 7) == 0) {
        const char *path = address + 7;
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path) {
            snprintf(err, errsz, "bad unix socket path in '%s'", address);
            return TD_CLIENT_EADDR;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            snprintf(err, errsz, "connect %s: %s", address, strerror(errno));
            if (fd >= 0)
                close(fd);
            return TD_CLIENT_EIO;
        }
        *fd_out = fd;
        return 0;
    }
    if (strncmp(address, "tcp://", 6) != 0) {
        snprintf(err, errsz, "address '%s' is neither unix:// nor tcp://", address);
        return TD_CLIENT_EADDR;
    }
    char host[256];
    const char *hp = address + 6;
    const char *port;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end || end[1] != ':' || (size_t)(end - hp - 1) >= sizeof host) {
            snprintf(err, errsz, "bad tcp address '%s'", address);
            return TD_CLIENT_EADDR;
        }
        memcpy(host, hp + 1, (size_t)(end - hp - 1));
        host[end - hp - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= sizeof host || colon == hp) {
            snprintf(err, errsz, "bad tcp address '%s' (want tcp://host:port)", address);
            return TD_CLIENT_EADDR;
        }
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = '\0';
        port = colon + 1;
    }
    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port)) {
        snprintf(err, errsz, "bad port in '%s'", address);
        return TD_CLIENT_EADDR;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errsz, "resolve '%s': %s", host, gai_strerror(gai));
        return TD_CLIENT_EADDR;
    }
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errsz, "connect %s: %s", address, strerror(last_errno));
        return TD_CLIENT_EIO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
}

static int handshake(td_client *c, const struct td_client_options *opts)
{
    tensord_v1_HandshakeRequest req = tensord_v1_HandshakeRequest_init_zero;
    req.protocol_version = PROTO_VERSION;
    const char *name = opts && opts->client_name ? opts->client_name : "libtensord-client";
    if (strlen(name) >= sizeof req.client_name ||
        (opts && opts->auth_token && strlen(opts->auth_token) >= sizeof req.auth_token))
        return seterr(c, TD_CLIENT_EUSAGE, "client name or auth token too long");
    strcpy(req.client_name, name);
    if (opts && opts->auth_token)
        strcpy(req.auth_token, opts->auth_token);
    req.seed = opts ? opts->seed : 0;
    uint64_t id = 0;
    int rc = send_call(c, M_HANDSHAKE, tensord_v1_HandshakeRequest_fields, &req, NULL, 0, &id);
    if (rc)
        return rc;
    struct frame f;
    if ((rc = next_reply_for(c, id, &f)))
        return rc;
    tensord_v1_HandshakeReply r = tensord_v1_HandshakeReply_init_zero;
    struct strbuf sb;
    status_cb(c, &r.status, &sb);
    if ((rc = decode_body(c, &f, tensord_v1_HandshakeReply_fields, &r)))
        return rc;
    if ((rc = no_data(c, &f)))
        return rc;
    if ((rc = reply_status(c, r.status.code)))
        return rc;
    if (r.protocol_version != PROTO_VERSION)
        return seterr(c, TD_CLIENT_EPROTO, "daemon speaks protocol version %u, not %u",
                      (unsigned)r.protocol_version, PROTO_VERSION);
    c->session_id = r.session_id;
    snprintf(c->server_version, sizeof c->server_version, "%s", r.server_version);
    c->max_frame_data = r.has_limits ? r.limits.max_frame_data : 0;
    c->max_frame_body = r.has_limits ? r.limits.max_frame_body : 0;
    if (c->max_frame_data == 0)
        return seterr(c, TD_CLIENT_EPROTO, "daemon announced max_frame_data 0");
    return 0;
}

int td_client_connect_opts(const char *address, const struct td_client_options *opts,
                           td_client **out, char *errbuf, size_t errbuf_size)
{
    char err[ERRMSG_MAX] = "";
    int rc;
    int fd = -1;
    td_client *c = NULL;
    if (!address || !out) {
        snprintf(err, sizeof err, "NULL address or out");
        rc = TD_CLIENT_EUSAGE;
        goto out;
    }
    if ((rc = open_socket(address, &fd, err, sizeof err)))
        goto out;
    c = calloc(1, sizeof *c);
    if (c)
        c->rbuf = malloc(RBUF_INITIAL);
    if (!c || !c->rbuf) {
        snprintf(err, sizeof err, "out of memory");
        rc = TD_CLIENT_ENOMEM;
        goto out;
    }
    c->fd = fd;
    fd = -1;
    c->rcap = RBUF_INITIAL;
    c->next_call_id = 1;
    c->next_tensor_id = 1;
    if ((rc = handshake(c, opts))) {
        snprintf(err, sizeof err, "%s", c->errmsg);
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (fd >= 0)
        close(fd);
    td_client_close(c);
    if (rc && errbuf && errbuf_size)
        snprintf(errbuf, errbuf_size, "%s", err);
    return rc;
}

int td_client_connect(const char *address, td_client **out)
{
    return td_client_connect_opts(address, NULL, out, NULL, 0);
}

void td_client_close(td_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    while (c->npend)
        remove_pending(c, &c->pend[0]);
    free(c->pend);
    free(c->sbuf);
    free(c->rbuf);
    free(c);
}

const char *td_client_errmsg(const td_client *c)
{
    return c ? c->errmsg : "no client";
}

uint64_t td_client_max_frame_data(const td_client *c)
{
    return c->max_frame_data;
}

uint64_t td_client_session_id(const td_client *c)
{
    return c->session_id;
}

const char *td_client_server_version(const td_client *c)
{
    return c->server_version;
}

uint64_t td_client_new_id(td_client *c)
{
    return c->next_tensor_id++;
}

void td_client_io_counters(const td_client *c, uint64_t *sent, uint64_t *received)
{
    if (sent)
        *sent = c->bytes_sent;
    if (received)
        *received = c->bytes_received;
}

/* ---------------------------------------------------------------------------------------
 * Put, Get, Free.
 */

/* Sets st to the first error seen while collecting chunk replies. */
static void keep_first(int *st, int rc, char *firstmsg, size_t n, const td_client *c)
{
    if (rc && !*st) {
        *st = rc;
        snprintf(firstmsg, n, "%s", c->errmsg);
    }
}

int td_client_put(td_client *c, uint64_t id, int dtype, int ndim, const int64_t *shape,
                  const void *data, uint64_t nbytes)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    size_t isz = td_client_dtype_size(dtype);
    if (isz == 0)
        return seterr(c, TD_CLIENT_EUSAGE, "put: dtype %d out of range", dtype);
    if (ndim < 0 || ndim > TD_CLIENT_MAX_NDIM || (ndim > 0 && !shape))
        return seterr(c, TD_CLIENT_EUSAGE, "put: ndim %d out of range", ndim);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return seterr(c, TD_CLIENT_EUSAGE, "put: negative dim %lld",
                          (long long)shape[i]);
        if (shape[i] && numel > UINT64_MAX / (uint64_t)shape[i])
            return seterr(c, TD_CLIENT_ETOOBIG, "put: element count overflows");
        numel *= (uint64_t)shape[i];
    }
    if (numel > UINT64_MAX / isz || numel * isz != nbytes)
        return seterr(c, TD_CLIENT_EUSAGE, "put: nbytes %llu does not match shape and dtype",
                      (unsigned long long)nbytes);
    if (nbytes && !data)
        return seterr(c, TD_CLIENT_EUSAGE, "put: NULL data");

    tensord_v1_PutRequest req = tensord_v1_PutRequest_init_zero;
    req.id = id;
    req.dtype = (tensord_v1_DType)dtype;
    req.shape_count = (pb_size_t)ndim;
    for (int i = 0; i < ndim; i++)
        req.shape[i] = shape[i];

    uint64_t mfd = c->max_frame_data;
    uint64_t calls[PUT_WINDOW];
    size_t head = 0, inflight = 0;
    uint64_t off = 0;
    int st = 0;
    char firstmsg[ERRMSG_MAX] = "";
    do {
        uint64_t len = nbytes - off < mfd ? nbytes - off : mfd;
        if (inflight == PUT_WINDOW) {
            rc = wait_status(c, calls[head]);
            head = (head + 1) % PUT_WINDOW;
            inflight--;
            if (c->broken)
                return rc;
            keep_first(&st, rc, firstmsg, sizeof firstmsg, c);
            if (st)
                break;  /* the daemon refused a chunk: stop sending, collect the rest */
        }
        req.offset = off;
        uint64_t cid = 0;
        if ((rc = send_call(c, M_PUT, tensord_v1_PutRequest_fields, &req,
                            (const unsigned char *)data + off, len, &cid)))
            return rc;
        calls[(head + inflight) % PUT_WINDOW] = cid;
        inflight++;
        off += len;
    } while (off < nbytes);
    while (inflight) {
        rc = wait_status(c, calls[head]);
        head = (head + 1) % PUT_WINDOW;
        inflight--;
        if (c->broken)
            return rc;
        keep_first(&st, rc, firstmsg, sizeof firstmsg, c);
    }
    if (st)
        snprintf(c->errmsg, sizeof c->errmsg, "%s", firstmsg);
    return st;
}

/* Waits for one Get reply, expecting bytes [off, off + want) unless first; the data goes
 * to buf + off when it fits in bufsize. */
static int get_reply(td_client *c, uint64_t call_id, bool first, uint64_t off, uint64_t want,
                     unsigned char *buf, uint64_t bufsize, tensord_v1_GetReply *r,
                     bool *dropped, uint64_t *got)
{
    struct frame f;
    int rc = next_reply_for(c, call_id, &f);
    if (rc)
        return rc;
    struct strbuf sb;
    tensord_v1_GetReply zero = tensord_v1_GetReply_init_zero;
    *r = zero;
    status_cb(c, &r->status, &sb);
    if ((rc = decode_body(c, &f, tensord_v1_GetReply_fields, r)))
        return rc;
    if (r->status.code) {
        if ((rc = drain_data(c, f.data_len)))
            return rc;
        return reply_status(c, r->status.code);
    }
    uint64_t nbytes = r->meta.nbytes;
    uint64_t expect = want;
    if (first)
        expect = want < nbytes ? want : nbytes;
    if (r->offset != off || f.data_len > nbytes - (off < nbytes ? off : nbytes) ||
        f.data_len != expect || (first && f.data_len == 0 && nbytes > 0))
        return seterr(c, TD_CLIENT_EPROTO, "get: reply carries %llu bytes at offset %llu, "
                      "expected %llu at %llu of %llu", (unsigned long long)f.data_len,
                      (unsigned long long)r->offset, (unsigned long long)want,
                      (unsigned long long)off, (unsigned long long)nbytes);
    *got = f.data_len;
    if (off + f.data_len > bufsize) {
        *dropped = true;
        return drain_data(c, f.data_len);
    }
    return read_data(c, buf + off, f.data_len);
}

int td_client_get(td_client *c, uint64_t id, void *buf, uint64_t bufsize,
                  struct td_client_tensor_info *info)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (bufsize && !buf)
        return seterr(c, TD_CLIENT_EUSAGE, "get: NULL buffer");
    uint64_t mfd = c->max_frame_data;
    tensord_v1_GetRequest req = tensord_v1_GetRequest_init_zero;
    req.id = id;
    /* The size is unknown until the first reply: ask for "to the end" (length 0), which
     * the daemon caps at max_frame_data. */
    req.offset = 0;
    req.length = 0;
    uint64_t cid = 0;
    if ((rc = send_call(c, M_GET, tensord_v1_GetRequest_fields, &req, NULL, 0, &cid)))
        return rc;
    tensord_v1_GetReply r;
    bool dropped = false;
    uint64_t got = 0, chunk = 0;
    if ((rc = get_reply(c, cid, true, 0, mfd, buf, bufsize, &r, &dropped, &got)))
        return rc;
    uint64_t nbytes = r.meta.nbytes;
    struct td_client_tensor_info meta;
    meta_to_info(&r.meta, id, &meta);
    if (nbytes > bufsize || dropped) {
        if (info)
            *info = meta;
        return seterr(c, TD_CLIENT_EBUFFER, "get: tensor %llu has %llu bytes, buffer %llu",
                      (unsigned long long)id, (unsigned long long)nbytes,
                      (unsigned long long)bufsize);
    }
    /* The first reply brought a prefix; fetch the rest in pipelined chunks. */
    uint64_t next = got;
    uint64_t calls[GET_WINDOW], offs[GET_WINDOW], lens[GET_WINDOW];
    size_t head = 0, inflight = 0;
    int st = 0;
    char firstmsg[ERRMSG_MAX] = "";
    while (got < nbytes || inflight) {
        while (!st && inflight < GET_WINDOW && next < nbytes) {
            size_t slot = (head + inflight) % GET_WINDOW;
            req.offset = next;
            req.length = nbytes - next < mfd ? nbytes - next : mfd;
            if ((rc = send_call(c, M_GET, tensord_v1_GetRequest_fields, &req, NULL, 0,
                                &calls[slot])))
                return rc;
            offs[slot] = next;
            lens[slot] = req.length;
            next += req.length;
            inflight++;
        }
        if (!inflight)
            break;
        rc = get_reply(c, calls[head], false, offs[head], lens[head], buf, bufsize, &r,
                       &dropped, &chunk);
        if (c->broken)
            return rc;
        keep_first(&st, rc, firstmsg, sizeof firstmsg, c);
        if (!rc)
            got += chunk;
        head = (head + 1) % GET_WINDOW;
        inflight--;
    }
    if (st) {
        snprintf(c->errmsg, sizeof c->errmsg, "%s", firstmsg);
        return st;
    }
    if (info)
        *info = meta;
    return 0;
}

int td_client_free(td_client *c, const uint64_t *ids, size_t n, uint64_t *freed)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (n && !ids)
        return seterr(c, TD_CLIENT_EUSAGE, "free: NULL ids");
    tensord_v1_FreeRequest req = tensord_v1_FreeRequest_init_zero;
    struct idslice sl = {ids, n};
    req.ids.funcs.encode = enc_ids;
    req.ids.arg = &sl;
    uint64_t cid = 0;
    if ((rc = send_call(c, M_FREE, tensord_v1_FreeRequest_fields, &req, NULL, 0, &cid)))
        return rc;
    struct frame f;
    if ((rc = next_reply_for(c, cid, &f)))
        return rc;
    tensord_v1_FreeReply r = tensord_v1_FreeReply_init_zero;
    struct strbuf sb;
    status_cb(c, &r.status, &sb);
    if ((rc = decode_body(c, &f, tensord_v1_FreeReply_fields, &r)))
        return rc;
    if ((rc = no_data(c, &f)))
        return rc;
    if ((rc = reply_status(c, r.status.code)))
        return rc;
    if (freed)
        *freed = r.freed;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Graphs.
 */

int td_client_graph_new(td_client_graph **out)
{
    td_client_graph *g = calloc(1, sizeof *g);
    if (!g)
        return TD_CLIENT_ENOMEM;
    *out = g;
    return 0;
}

void td_client_graph_free(td_client_graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->ids);
    free(g->attrs);
    free(g->discard);
    free(g);
}

void td_client_graph_clear(td_client_graph *g)
{
    g->nnodes = g->nids = g->nattrs = g->ndiscard = 0;
}

/* Grows *arr (of elements of size sz, capacity *cap) to hold need elements. */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / sz)
        return TD_CLIENT_ENOMEM;
    void *p = realloc(*arr, nc * sz);
    if (!p)
        return TD_CLIENT_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

int td_client_graph_node(td_client_graph *g, const char *op, const uint64_t *inputs,
                         size_t nin, const uint64_t *outputs, size_t nout)
{
    if (!g || !op || strlen(op) >= sizeof g->nodes[0].op || (nin && !inputs) ||
        (nout && !outputs))
        return TD_CLIENT_EUSAGE;
    if (grow((void **)&g->nodes, &g->nodecap, g->nnodes + 1, sizeof *g->nodes) ||
        grow((void **)&g->ids, &g->idcap, g->nids + nin + nout, sizeof *g->ids))
        return TD_CLIENT_ENOMEM;
    struct gnode *n = &g->nodes[g->nnodes++];
    memset(n, 0, sizeof *n);
    strcpy(n->op, op);
    n->in_off = g->nids;
    n->nin = nin;
    if (nin)
        memcpy(g->ids + g->nids, inputs, nin * sizeof *inputs);
    g->nids += nin;
    n->out_off = g->nids;
    n->nout = nout;
    if (nout)
        memcpy(g->ids + g->nids, outputs, nout * sizeof *outputs);
    g->nids += nout;
    n->attr_off = g->nattrs;
    n->nattr = 0;
    return 0;
}

int td_client_graph_no_grad(td_client_graph *g, int no_grad)
{
    if (!g || g->nnodes == 0)
        return TD_CLIENT_EUSAGE;
    g->nodes[g->nnodes - 1].no_grad = no_grad != 0;
    return 0;
}

/* Appends an attr named name to the last node; *out points to it. */
static int new_attr(td_client_graph *g, const char *name, tensord_v1_Attr **out)
{
    if (!g || g->nnodes == 0 || !name || strlen(name) >= sizeof g->attrs[0].name)
        return TD_CLIENT_EUSAGE;
    if (grow((void **)&g->attrs, &g->attrcap, g->nattrs + 1, sizeof *g->attrs))
        return TD_CLIENT_ENOMEM;
    tensord_v1_Attr *a = &g->attrs[g->nattrs++];
    tensord_v1_Attr zero = tensord_v1_Attr_init_zero;
    *a = zero;
    strcpy(a->name, name);
    g->nodes[g->nnodes - 1].nattr++;
    *out = a;
    return 0;
}

int td_client_graph_attr_int(td_client_graph *g, const char *name, int64_t v)
{
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_i_tag;
    a->value.i = v;
    return 0;
}

int td_client_graph_attr_float(td_client_graph *g, const char *name, double v)
{
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_f_tag;
    a->value.f = v;
    return 0;
}

int td_client_graph_attr_bool(td_client_graph *g, const char *name, int v)
{
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_b_tag;
    a->value.b = v != 0;
    return 0;
}

int td_client_graph_attr_str(td_client_graph *g, const char *name, const char *v)
{
    if (!v || strlen(v) >= sizeof g->attrs[0].value.s)
        return TD_CLIENT_EUSAGE;
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_s_tag;
    strcpy(a->value.s, v);
    return 0;
}

int td_client_graph_attr_ints(td_client_graph *g, const char *name, const int64_t *v,
                              size_t n)
{
    if (n > TD_CLIENT_MAX_NDIM || (n && !v))
        return TD_CLIENT_EUSAGE;
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_ints_tag;
    a->value.ints.values_count = (pb_size_t)n;
    for (size_t i = 0; i < n; i++)
        a->value.ints.values[i] = v[i];
    return 0;
}

int td_client_graph_attr_dtype(td_client_graph *g, const char *name, int dtype)
{
    if (td_client_dtype_size(dtype) == 0)
        return TD_CLIENT_EUSAGE;
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_dtype_tag;
    a->value.dtype = (tensord_v1_DType)dtype;
    return 0;
}

static int new_scalar(td_client_graph *g, const char *name, tensord_v1_Scalar **out)
{
    tensord_v1_Attr *a;
    int rc = new_attr(g, name, &a);
    if (rc)
        return rc;
    a->which_value = tensord_v1_Attr_scalar_tag;
    *out = &a->value.scalar;
    return 0;
}

int td_client_graph_attr_scalar_int(td_client_graph *g, const char *name, int64_t v)
{
    tensord_v1_Scalar *s;
    int rc = new_scalar(g, name, &s);
    if (rc)
        return rc;
    s->which_value = tensord_v1_Scalar_i_tag;
    s->value.i = v;
    return 0;
}

int td_client_graph_attr_scalar_float(td_client_graph *g, const char *name, double v)
{
    tensord_v1_Scalar *s;
    int rc = new_scalar(g, name, &s);
    if (rc)
        return rc;
    s->which_value = tensord_v1_Scalar_f_tag;
    s->value.f = v;
    return 0;
}

int td_client_graph_attr_scalar_complex(td_client_graph *g, const char *name, double re,
                                        double im)
{
    tensord_v1_Scalar *s;
    int rc = new_scalar(g, name, &s);
    if (rc)
        return rc;
    s->which_value = tensord_v1_Scalar_c_tag;
    s->value.c.re = re;
    s->value.c.im = im;
    return 0;
}

int td_client_graph_attr_scalar_bool(td_client_graph *g, const char *name, int v)
{
    tensord_v1_Scalar *s;
    int rc = new_scalar(g, name, &s);
    if (rc)
        return rc;
    s->which_value = tensord_v1_Scalar_b_tag;
    s->value.b = v != 0;
    return 0;
}

int td_client_graph_discard(td_client_graph *g, uint64_t id)
{
    if (!g)
        return TD_CLIENT_EUSAGE;
    if (grow((void **)&g->discard, &g->discap, g->ndiscard + 1, sizeof *g->discard))
        return TD_CLIENT_ENOMEM;
    g->discard[g->ndiscard++] = id;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Run, plan, pipelining.
 */

static int send_run(td_client *c, const td_client_graph *g, bool plan_only, uint64_t *cid)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (!g)
        return seterr(c, TD_CLIENT_EUSAGE, "run: NULL graph");
    tensord_v1_RunRequest req = tensord_v1_RunRequest_init_zero;
    struct idslice disc = {g->discard, g->ndiscard};
    req.nodes.funcs.encode = enc_nodes;
    req.nodes.arg = (void *)(uintptr_t)g;
    req.discard.funcs.encode = enc_ids;
    req.discard.arg = &disc;
    req.plan_only = plan_only;
    return send_call(c, M_RUN, tensord_v1_RunRequest_fields, &req, NULL, 0, cid);
}

static int wait_run(td_client *c, uint64_t cid, struct td_client_tensor_info *outs,
                    size_t max_outs, size_t *nouts, uint64_t *bytes_planned)
{
    struct frame f;
    int rc = next_reply_for(c, cid, &f);
    if (rc)
        return rc;
    tensord_v1_RunReply r = tensord_v1_RunReply_init_zero;
    struct strbuf sb;
    struct outs_sink sink = {outs, outs ? max_outs : 0, 0, false, false};
    status_cb(c, &r.status, &sb);
    r.outputs.funcs.decode = dec_output;
    r.outputs.arg = &sink;
    if ((rc = decode_body(c, &f, tensord_v1_RunReply_fields, &r)))
        return rc;
    if ((rc = no_data(c, &f)))
        return rc;
    if ((rc = reply_status(c, r.status.code)))
        return rc;
    if (nouts)
        *nouts = sink.n;
    if (bytes_planned)
        *bytes_planned = r.bytes_planned;
    return 0;
}

int td_client_run(td_client *c, const td_client_graph *g, struct td_client_tensor_info *outs,
                  size_t max_outs, size_t *nouts)
{
    uint64_t cid = 0;
    int rc = send_run(c, g, false, &cid);
    if (rc)
        return rc;
    return wait_run(c, cid, outs, max_outs, nouts, NULL);
}

int td_client_plan(td_client *c, const td_client_graph *g, struct td_client_tensor_info *outs,
                   size_t max_outs, size_t *nouts, uint64_t *bytes_planned)
{
    uint64_t cid = 0;
    int rc = send_run(c, g, true, &cid);
    if (rc)
        return rc;
    return wait_run(c, cid, outs, max_outs, nouts, bytes_planned);
}

int td_client_run_async(td_client *c, const td_client_graph *g, uint64_t *call_id)
{
    if (grow((void **)&c->pend, &c->pcap, c->npend + 1, sizeof *c->pend))
        return seterr(c, TD_CLIENT_ENOMEM, "out of memory (pending calls)");
    uint64_t cid = 0;
    int rc = send_run(c, g, false, &cid);
    if (rc)
        return rc;
    struct pending *p = &c->pend[c->npend++];
    memset(p, 0, sizeof *p);
    p->call_id = cid;
    p->method = M_RUN;
    *call_id = cid;
    return 0;
}

int td_client_wait(td_client *c, uint64_t call_id, struct td_client_tensor_info *outs,
                   size_t max_outs, size_t *nouts)
{
    struct pending *p = find_pending(c, call_id);
    if (!p)
        return seterr(c, TD_CLIENT_EUSAGE, "wait: call %llu is not outstanding",
                      (unsigned long long)call_id);
    int rc;
    if (p->done) {
        rc = p->status;
        if (rc) {
            snprintf(c->errmsg, sizeof c->errmsg, "%s", p->msg ? p->msg : "");
        } else {
            size_t k = outs ? (p->nouts < max_outs ? p->nouts : max_outs) : 0;
            if (k)
                memcpy(outs, p->outs, k * sizeof *outs);
            if (nouts)
                *nouts = p->nouts;
        }
        remove_pending(c, p);
        return rc;
    }
    if ((rc = check_usable(c)))
        return rc;
    rc = wait_run(c, call_id, outs, max_outs, nouts, NULL);
    /* keep_reply may have moved entries; look the call up again. */
    p = find_pending(c, call_id);
    if (p && !c->broken)
        remove_pending(c, p);
    return rc;
}

size_t td_client_pending(const td_client *c)
{
    return c->npend;
}

/* ---------------------------------------------------------------------------------------
 * ListOps and Stats.
 */

struct ops_sink {
    struct td_client_op_info *ops;
    size_t n, cap;
    bool nomem;
};

static bool dec_dtype(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct td_client_op_info *op = *arg;
    uint64_t v;
    if (!pb_decode_varint(s, &v))
        return false;
    if (op->ndtypes < TD_CLIENT_DTYPE_COUNT)
        op->dtypes[op->ndtypes++] = (int)v;
    return true;
}

static bool dec_flag(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct td_client_op_info *op = *arg;
    char tmp[64];
    struct strbuf sb = {tmp, sizeof tmp};
    void *a = &sb;
    if (!dec_string(s, f, &a))
        return false;
    size_t used = strlen(op->flags);
    snprintf(op->flags + used, sizeof op->flags - used, "%s%s", used ? "," : "", tmp);
    return true;
}

static bool dec_attr_schema(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct td_client_op_info *op = *arg;
    struct td_client_attr_schema scratch, *a = &scratch;
    if (op->nattrs < TD_CLIENT_MAX_ATTRS)
        a = &op->attrs[op->nattrs];
    memset(a, 0, sizeof *a);
    struct strbuf nb = {a->name, sizeof a->name};
    struct strbuf tb = {a->type, sizeof a->type};
    struct strbuf db = {a->default_value, sizeof a->default_value};
    tensord_v1_AttrSchema m = tensord_v1_AttrSchema_init_zero;
    m.name.funcs.decode = dec_string;
    m.name.arg = &nb;
    m.type.funcs.decode = dec_string;
    m.type.arg = &tb;
    m.default_value.funcs.decode = dec_string;
    m.default_value.arg = &db;
    if (!pb_decode(s, tensord_v1_AttrSchema_fields, &m))
        return false;
    a->required = m.required;
    if (op->nattrs < TD_CLIENT_MAX_ATTRS)
        op->nattrs++;
    return true;
}

static bool dec_op(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    struct ops_sink *k = *arg;
    if (grow((void **)&k->ops, &k->cap, k->n + 1, sizeof *k->ops)) {
        k->nomem = true;
        return false;
    }
    struct td_client_op_info *op = &k->ops[k->n];
    memset(op, 0, sizeof *op);
    struct strbuf nb = {op->name, sizeof op->name};
    struct strbuf db = {op->doc, sizeof op->doc};
    tensord_v1_OpSchema m = tensord_v1_OpSchema_init_zero;
    m.name.funcs.decode = dec_string;
    m.name.arg = &nb;
    m.doc.funcs.decode = dec_string;
    m.doc.arg = &db;
    m.attrs.funcs.decode = dec_attr_schema;
    m.attrs.arg = op;
    m.dtypes.funcs.decode = dec_dtype;
    m.dtypes.arg = op;
    m.flags.funcs.decode = dec_flag;
    m.flags.arg = op;
    if (!pb_decode(s, tensord_v1_OpSchema_fields, &m))
        return false;
    op->min_inputs = m.min_inputs;
    op->max_inputs = m.max_inputs;
    op->num_outputs = m.num_outputs;
    k->n++;
    return true;
}

int td_client_list_ops(td_client *c, struct td_client_op_info **ops, size_t *n)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (!ops || !n)
        return seterr(c, TD_CLIENT_EUSAGE, "list_ops: NULL out-parameter");
    tensord_v1_ListOpsRequest req = tensord_v1_ListOpsRequest_init_zero;
    uint64_t cid = 0;
    if ((rc = send_call(c, M_LIST_OPS, tensord_v1_ListOpsRequest_fields, &req, NULL, 0, &cid)))
        return rc;
    struct frame f;
    if ((rc = next_reply_for(c, cid, &f)))
        return rc;
    struct ops_sink sink = {NULL, 0, 0, false};
    tensord_v1_ListOpsReply r = tensord_v1_ListOpsReply_init_zero;
    struct strbuf sb;
    status_cb(c, &r.status, &sb);
    r.ops.funcs.decode = dec_op;
    r.ops.arg = &sink;
    rc = decode_body(c, &f, tensord_v1_ListOpsReply_fields, &r);
    if (rc && sink.nomem)
        rc = seterr(c, TD_CLIENT_ENOMEM, "list_ops: out of memory");
    if (!rc)
        rc = no_data(c, &f);
    if (!rc)
        rc = reply_status(c, r.status.code);
    if (rc) {
        free(sink.ops);
        return rc;
    }
    *ops = sink.ops;
    *n = sink.n;
    return 0;
}

void td_client_ops_free(struct td_client_op_info *ops)
{
    free(ops);
}

int td_client_stats(td_client *c, struct td_client_stats *out)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (!out)
        return seterr(c, TD_CLIENT_EUSAGE, "stats: NULL out");
    tensord_v1_StatsRequest req = tensord_v1_StatsRequest_init_zero;
    uint64_t cid = 0;
    if ((rc = send_call(c, M_STATS, tensord_v1_StatsRequest_fields, &req, NULL, 0, &cid)))
        return rc;
    struct frame f;
    if ((rc = next_reply_for(c, cid, &f)))
        return rc;
    tensord_v1_StatsReply r = tensord_v1_StatsReply_init_zero;
    struct strbuf sb;
    status_cb(c, &r.status, &sb);
    if ((rc = decode_body(c, &f, tensord_v1_StatsReply_fields, &r)))
        return rc;
    if ((rc = no_data(c, &f)))
        return rc;
    if ((rc = reply_status(c, r.status.code)))
        return rc;
    memset(out, 0, sizeof *out);
    out->session_id = r.session_id;
    out->session_tensors = r.session_tensors;
    out->session_bytes = r.session_bytes;
    out->server_sessions = r.server_sessions;
    out->server_bytes = r.server_bytes;
    out->calls_total = r.calls_total;
    out->errors_total = r.errors_total;
    snprintf(out->server_version, sizeof out->server_version, "%s", r.server_version);
    return 0;
}
