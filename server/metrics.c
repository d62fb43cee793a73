/*
 * metrics.c - Prometheus metrics: counters any thread updates with relaxed atomics, and a
 * minimal HTTP/1.1 server on the libuv loop (--metrics-listen) that answers GET /metrics
 * with the text exposition format 0.0.4, GET /healthz with 200 "serving" or, once a drain
 * started, 503 "draining" (for readiness probes), and 404 to anything else.
 *
 * The HTTP side never blocks the loop and bounds what a client can hold: at most
 * MAX_CLIENTS connections (more are closed at once), a request head of at most MAX_REQUEST
 * bytes (431 beyond), and CLIENT_TIMEOUT_MS from accept to close whatever the client does
 * (a slow sender, or a reader that never takes the response). Each response ends the
 * connection (Connection: close): the server half-closes after writing, discards whatever
 * the client still sends (closing with unread input would reset the connection and could
 * destroy the response) and closes on the client's EOF or at the deadline.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "tensord.pb-c.h"

#define MAX_CLIENTS 64
#define MAX_REQUEST 8192
#define CLIENT_TIMEOUT_MS 10000
#define MAX_METHODS 32          /* method numbers below this get latency histograms */
#define NCODES 17               /* gRPC codes 0..16 */
#define MAX_USERS 64

/* Bucket upper bounds in nanoseconds, and the same as text for the le label. */
static const uint64_t bucket_ns[TD_METRICS_BUCKETS] = {
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
    10000000000};
static const char *const bucket_le[TD_METRICS_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

static const char *const code_names[NCODES] = {
    "ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
    "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
    "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss",
    "unauthenticated"};

static const char *const disconnect_reasons[] = {
    "output-buffer-hard", "output-buffer-soft-seconds", "protocol-error", "drain-timeout",
    "idle-timeout", "auth-timeout", "read-timeout", "max-connections", "tls", "other"};
#define NREASONS (sizeof disconnect_reasons / sizeof disconnect_reasons[0])

struct latency {
    _Atomic uint64_t bucket[TD_METRICS_BUCKETS + 1];   /* per bucket, not cumulative */
    _Atomic uint64_t sum_ns;
};

struct http_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t sd;
    struct td_metrics *m;
    struct http_client *prev, *next;
    char *resp;                 /* owned; freed with the client */
    size_t len;                 /* bytes of the request head received */
    bool answered;              /* response queued: discard further input */
    bool closing;
    int open_handles;
    char buf[MAX_REQUEST];
};

struct td_metrics {
    struct td_server *srv;
    uv_tcp_t listener;
    bool listening;
    bool listener_closed;
    struct http_client *clients;
    int nclients;
    _Atomic uint64_t received;
    _Atomic uint64_t scrapes;
    _Atomic uint64_t http_errors;
    struct latency lat[MAX_METHODS];
    _Atomic uint64_t ops[TD_OP_COUNT];
    _Atomic uint64_t rejected[NCODES];
    _Atomic uint64_t disconnected[NREASONS];
};

/* ---------------------------------------------------------------------------------------
 * Counters
 */
void td_metrics_request_received(struct td_server *srv)
{
    if (srv->metrics)
        atomic_fetch_add_explicit(&srv->metrics->received, 1, memory_order_relaxed);
}

void td_metrics_job_done(struct td_server *srv, const struct td_job *j)
{
    struct td_metrics *m = srv->metrics;
    if (!m || j->kind == TD_JOB_CLOSE)
        return;
    if (j->method < MAX_METHODS && j->t_enqueue > 0) {
        long d = td_now_ns() - j->t_enqueue;
        uint64_t ns = d > 0 ? (uint64_t)d : 0;
        int b = 0;
        while (b < TD_METRICS_BUCKETS && ns > bucket_ns[b])
            b++;
        struct latency *l = &m->lat[j->method];
        atomic_fetch_add_explicit(&l->bucket[b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->sum_ns, ns, memory_order_relaxed);
    }
    if (j->kind == TD_JOB_CALL && j->method == TD_M_RUN && j->req) {
        const Tensord__V1__RunRequest *req = (const void *)j->req;
        for (size_t i = 0; i < req->n_nodes; i++) {
            enum td_op op;
            if (req->nodes[i] && req->nodes[i]->op && td_op_lookup(req->nodes[i]->op, &op) == 0)
                atomic_fetch_add_explicit(&m->ops[op], 1, memory_order_relaxed);
        }
    }
}

void td_metrics_rejected(struct td_server *srv, int status)
{
    if (!srv->metrics)
        return;
    int code = td_status_grpc_code(status);
    if (code <= 0 || code >= NCODES)
        code = 2;   /* unknown */
    atomic_fetch_add_explicit(&srv->metrics->rejected[code], 1, memory_order_relaxed);
}

void td_metrics_disconnected(struct td_server *srv, const char *reason)
{
    if (!srv->metrics)
        return;
    size_t i = 0;
    while (i < NREASONS - 1 && strcmp(disconnect_reasons[i], reason) != 0)
        i++;
    atomic_fetch_add_explicit(&srv->metrics->disconnected[i], 1, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------
 * Rendering
 */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) TD_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = td_realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void header(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The user a session belongs to: set by its handshake ("local" without a token file);
 * "unauthenticated" before. Thread: under srv->reg_mu, which guards sess.user. */
static const char *session_user(const struct td_conn *c)
{
    return c->sess->user ? c->sess->user->name : "unauthenticated";
}

/* Writes s as a label value: backslash, double quote and newline escaped. */
static void sb_label(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sb_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *s);
    }
}

struct user_row {
    char name[64];
    uint64_t sessions, bytes, queued;
};

/* The row of user u, added when new. [reg_mu] */
static int user_row(struct user_row *rows, int *n, const char *u)
{
    int k = 0;
    while (k < *n && strcmp(rows[k].name, u) != 0)
        k++;
    if (k == *n) {
        if (*n < MAX_USERS) {
            rows[*n] = (struct user_row){.sessions = 0};
            snprintf(rows[*n].name, sizeof rows[*n].name, "%s", u);
            (*n)++;
        } else {
            k = *n - 1;
        }
    }
    return k;
}

/* Walks the session registry and the parked sessions: per-user sessions, bytes held and
 * queued jobs. Returns: the number of rows; users beyond MAX_USERS are folded into the last
 * row. */
static int collect_users(struct td_server *srv, struct user_row *rows)
{
    int n = 0;
    pthread_mutex_lock(&srv->reg_mu);
    for (struct td_conn *c = srv->reg_head; c; c = c->reg_next) {
        int k = user_row(rows, &n, session_user(c));
        rows[k].sessions++;
        rows[k].bytes += atomic_load(&c->sess->account.bytes);
        pthread_mutex_lock(&c->mu);
        rows[k].queued += c->qlen;
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&srv->park_mu);
    for (struct td_session *s = srv->parked; s; s = s->park_next) {
        int k = user_row(rows, &n, s->user->name);
        rows[k].sessions++;
        rows[k].bytes += atomic_load(&s->account.bytes);
    }
    pthread_mutex_unlock(&srv->park_mu);
    pthread_mutex_unlock(&srv->reg_mu);
    return n;
}

char *td_metrics_render(struct td_server *srv, size_t *len)
{
    struct td_metrics *m = srv->metrics;
    struct sbuf b = {.p = td_malloc(16384), .len = 0, .cap = 16384, .oom = false};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    struct user_row rows[MAX_USERS];
    int nusers = collect_users(srv, rows);
    uint64_t total_bytes = 0, total_sessions = 0, total_queued = 0;
    for (int i = 0; i < nusers; i++) {
        total_bytes += rows[i].bytes;
        total_sessions += rows[i].sessions;
        total_queued += rows[i].queued;
    }

    header(&b, "tensord_build_info", "gauge", "Version of the running daemon (value 1).");
    sb_printf(&b, "tensord_build_info{version=\"%s\"} 1\n", TD_VERSION);
    header(&b, "tensord_draining", "gauge", "1 while the daemon drains (stops after the work "
           "in flight), else 0.");
    sb_printf(&b, "tensord_draining %d\n", td_server_draining(srv) ? 1 : 0);
    header(&b, "tensord_sessions", "gauge", "Sessions (connected, or parked awaiting resume), by user.");
    for (int i = 0; i < nusers; i++) {
        sb_printf(&b, "tensord_sessions{user=\"");
        sb_label(&b, rows[i].name);
        sb_printf(&b, "\"} %" PRIu64 "\n", rows[i].sessions);
    }
    if (nusers == 0)
        sb_printf(&b, "tensord_sessions{user=\"local\"} 0\n");
    header(&b, "tensord_user_bytes", "gauge", "Tensor memory held by the sessions of a user.");
    for (int i = 0; i < nusers; i++) {
        sb_printf(&b, "tensord_user_bytes{user=\"");
        sb_label(&b, rows[i].name);
        sb_printf(&b, "\"} %" PRIu64 "\n", rows[i].bytes);
    }
    if (nusers == 0)
        sb_printf(&b, "tensord_user_bytes{user=\"local\"} 0\n");
    header(&b, "tensord_device_bytes", "gauge", "Tensor memory held by sessions, by device "
           "(tensors live in host memory: all of it is on cpu).");
    sb_printf(&b, "tensord_device_bytes{device=\"cpu\"} %" PRIu64 "\n", total_bytes);
    for (int i = 1; i < srv->ndevices; i++)
        sb_printf(&b, "tensord_device_bytes{device=\"%s\"} 0\n", srv->devices[i].name);
    header(&b, "tensord_device_memory_bytes", "gauge", "Memory of each device.");
    for (int i = 0; i < srv->ndevices; i++)
        sb_printf(&b, "tensord_device_memory_bytes{device=\"%s\"} %" PRIu64 "\n",
                  srv->devices[i].name, srv->devices[i].memory_bytes);
    header(&b, "tensord_storage_cache_bytes", "gauge", "Freed large blocks kept for reuse.");
    sb_printf(&b, "tensord_storage_cache_bytes %zu\n", td_storage_cache_bytes());
    header(&b, "tensord_queue_depth", "gauge", "Requests received and not yet run, over all "
           "sessions.");
    sb_printf(&b, "tensord_queue_depth %" PRIu64 "\n", total_queued);
    header(&b, "tensord_ready_sessions", "gauge", "Sessions waiting for a free worker.");
    sb_printf(&b, "tensord_ready_sessions %d\n", atomic_load(&srv->pool.nready));
    header(&b, "tensord_output_buffer_bytes", "gauge", "Reply bytes queued for clients that "
           "have not read them yet.");
    sb_printf(&b, "tensord_output_buffer_bytes %" PRIu64 "\n", load(&srv->out_bytes));
    header(&b, "tensord_requests_received_total", "counter", "Request frames parsed and "
           "queued (refused ones included).");
    sb_printf(&b, "tensord_requests_received_total %" PRIu64 "\n", load(&m->received));
    header(&b, "tensord_calls_total", "counter", "Requests run by the workers.");
    sb_printf(&b, "tensord_calls_total %" PRIu64 "\n", load(&srv->calls_total));
    header(&b, "tensord_errors_total", "counter", "Requests answered with an error status.");
    sb_printf(&b, "tensord_errors_total %" PRIu64 "\n", load(&srv->errors_total));
    header(&b, "tensord_requests_rejected_total", "counter", "Requests answered with an "
           "error, by reason (the status code; unavailable: refused while draining).");
    for (int i = 1; i < NCODES; i++)
        sb_printf(&b, "tensord_requests_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                  code_names[i], load(&m->rejected[i]));
    header(&b, "tensord_clients_disconnected_total", "counter", "Connections the daemon "
           "closed on its own, by reason.");
    for (size_t i = 0; i < NREASONS; i++)
        sb_printf(&b, "tensord_clients_disconnected_total{reason=\"%s\"} %" PRIu64 "\n",
                  disconnect_reasons[i], load(&m->disconnected[i]));
    header(&b, "tensord_ops_total", "counter", "Nodes of Run requests, by op.");
    for (int op = 0; op < TD_OP_COUNT; op++) {
        uint64_t v = load(&m->ops[op]);
        const struct td_op_info *info = td_op_info_get((enum td_op)op);
        if (v && info)
            sb_printf(&b, "tensord_ops_total{op=\"%s\"} %" PRIu64 "\n", info->name, v);
    }
    header(&b, "tensord_request_duration_seconds", "histogram", "Time from a request's "
           "arrival (queued) to its reply, by method.");
    for (uint32_t meth = 1; meth < MAX_METHODS; meth++) {
        struct latency *l = &m->lat[meth];
        uint64_t cnt[TD_METRICS_BUCKETS + 1], total = 0;
        for (int k = 0; k <= TD_METRICS_BUCKETS; k++) {
            cnt[k] = load(&l->bucket[k]);
            total += cnt[k];
        }
        const char *name = td_method_name(meth);
        if (strcmp(name, "?") == 0 || (total == 0 && meth >= TD_M_COUNT))
            continue;
        uint64_t cum = 0;
        for (int k = 0; k < TD_METRICS_BUCKETS; k++) {
            cum += cnt[k];
            sb_printf(&b, "tensord_request_duration_seconds_bucket{method=\"%s\",le=\"%s\"} %"
                      PRIu64 "\n", name, bucket_le[k], cum);
        }
        sb_printf(&b, "tensord_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %"
                  PRIu64 "\n", name, total);
        uint64_t sum = load(&l->sum_ns);
        sb_printf(&b, "tensord_request_duration_seconds_sum{method=\"%s\"} %" PRIu64 ".%09"
                  PRIu64 "\n", name, sum / 1000000000u, sum % 1000000000u);
        sb_printf(&b, "tensord_request_duration_seconds_count{method=\"%s\"} %" PRIu64 "\n",
                  name, total);
    }
    header(&b, "tensord_metrics_scrapes_total", "counter", "GET /metrics requests served.");
    sb_printf(&b, "tensord_metrics_scrapes_total %" PRIu64 "\n", load(&m->scrapes));
    header(&b, "tensord_metrics_http_errors_total", "counter", "Metrics HTTP requests "
           "answered 4xx or dropped (malformed, too large, timed out, too many clients).");
    sb_printf(&b, "tensord_metrics_http_errors_total %" PRIu64 "\n", load(&m->http_errors));
    (void)total_sessions;
    if (b.oom) {
        td_free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---------------------------------------------------------------------------------------
 * HTTP
 */
static void client_handle_closed(uv_handle_t *h)
{
    struct http_client *cl = h->data;
    if (--cl->open_handles > 0)
        return;
    td_free(cl->resp);
    td_free(cl);
}

static void client_close(struct http_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    struct td_metrics *m = cl->m;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        m->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    m->nclients--;
    uv_close((uv_handle_t *)&cl->timer, client_handle_closed);
    uv_close((uv_handle_t *)&cl->tcp, client_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    struct http_client *cl = t->data;
    if (!cl->answered)
        atomic_fetch_add_explicit(&cl->m->http_errors, 1, memory_order_relaxed);
    client_close(cl);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;   /* the client's EOF or the deadline closes the connection */
}

static void on_written(uv_write_t *req, int status)
{
    struct http_client *cl = req->data;
    if (cl->closing)
        return;
    if (status < 0) {
        client_close(cl);
        return;
    }
    cl->sd.data = cl;
    if (uv_shutdown(&cl->sd, (uv_stream_t *)&cl->tcp, on_shutdown) != 0)
        client_close(cl);
}

/* Queues the response and half-closes once it is written. */
static void respond(struct http_client *cl, int code, const char *reason, const char *ctype,
                    const char *body, size_t body_len)
{
    char head[256];
    int hn = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", code, reason, ctype,
                      body_len);
    cl->answered = true;
    cl->len = 0;
    cl->resp = td_malloc((size_t)hn + body_len);
    if (!cl->resp) {
        client_close(cl);
        return;
    }
    memcpy(cl->resp, head, (size_t)hn);
    if (body_len)
        memcpy(cl->resp + hn, body, body_len);
    uv_buf_t buf = uv_buf_init(cl->resp, (unsigned)((size_t)hn + body_len));
    cl->wr.data = cl;
    if (uv_write(&cl->wr, (uv_stream_t *)&cl->tcp, &buf, 1, on_written) != 0)
        client_close(cl);
}

static void respond_error(struct http_client *cl, int code, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", code, reason);
    atomic_fetch_add_explicit(&cl->m->http_errors, 1, memory_order_relaxed);
    respond(cl, code, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

/* The request head is complete (cl->buf[0..end) ends with CRLF CRLF): answer it. */
static void handle_request(struct http_client *cl, size_t end)
{
    cl->buf[end] = '\0';
    char *eol = strstr(cl->buf, "\r\n");   /* found: the head has no NUL and ends in CRLF */
    if (!eol) {
        respond_error(cl, 400, "Bad Request");
        return;
    }
    *eol = '\0';
    char *meth = cl->buf;
    char *sp1 = strchr(meth, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_error(cl, 400, "Bad Request");
        return;
    }
    *sp1 = *sp2 = '\0';
    const char *target = sp1 + 1;
    size_t tl = strcspn(target, "?");
    if (strcmp(meth, "GET") == 0 && tl == 8 && strncmp(target, "/healthz", 8) == 0) {
        /* For load balancers and readiness probes: not ready once a drain started. */
        if (td_server_draining(cl->m->srv))
            respond(cl, 503, "Service Unavailable", "text/plain; charset=utf-8", "draining\n",
                    9);
        else
            respond(cl, 200, "OK", "text/plain; charset=utf-8", "serving\n", 8);
        return;
    }
    if (strcmp(meth, "GET") != 0 || tl != 8 || strncmp(target, "/metrics", 8) != 0) {
        respond_error(cl, 404, "Not Found");
        return;
    }
    size_t len = 0;
    char *text = td_metrics_render(cl->m->srv, &len);
    if (!text) {
        respond_error(cl, 503, "Service Unavailable");
        return;
    }
    atomic_fetch_add_explicit(&cl->m->scrapes, 1, memory_order_relaxed);
    respond(cl, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len);
    td_free(text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_client *cl = h->data;
    (void)suggested;
    /* Keep one byte for the terminating NUL the parser writes. */
    *buf = uv_buf_init(cl->buf + cl->len, (unsigned)(MAX_REQUEST - 1 - cl->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct http_client *cl = s->data;
    (void)buf;
    if (cl->closing)
        return;
    if (n < 0) {
        if (!cl->answered)
            atomic_fetch_add_explicit(&cl->m->http_errors, 1, memory_order_relaxed);
        client_close(cl);   /* EOF or error */
        return;
    }
    if (cl->answered) {
        cl->len = 0;        /* input after the request is discarded */
        return;
    }
    size_t old = cl->len;
    cl->len += (size_t)n;
    if (memchr(cl->buf + old, '\0', (size_t)n)) {
        respond_error(cl, 400, "Bad Request");
        return;
    }
    /* Look for the blank line, starting a little before the new bytes. */
    size_t from = old >= 3 ? old - 3 : 0;
    for (size_t i = from; i + 4 <= cl->len; i++)
        if (memcmp(cl->buf + i, "\r\n\r\n", 4) == 0) {
            handle_request(cl, i + 2);
            return;
        }
    if (cl->len >= MAX_REQUEST - 1)
        respond_error(cl, 431, "Request Header Fields Too Large");
}

static void on_connection(uv_stream_t *server, int status)
{
    struct td_metrics *m = server->data;
    if (status < 0)
        return;
    struct http_client *cl = td_malloc(sizeof *cl);
    if (!cl)
        return;   /* the connection waits in the backlog; the next one retries */
    memset(cl, 0, sizeof *cl);
    cl->m = m;
    uv_tcp_init(&m->srv->loop, &cl->tcp);
    uv_timer_init(&m->srv->loop, &cl->timer);
    cl->tcp.data = cl->timer.data = cl;
    cl->open_handles = 2;
    cl->next = m->clients;
    if (m->clients)
        m->clients->prev = cl;
    m->clients = cl;
    m->nclients++;
    if (uv_accept(server, (uv_stream_t *)&cl->tcp) != 0) {
        client_close(cl);
        return;
    }
    if (m->nclients > MAX_CLIENTS) {
        atomic_fetch_add_explicit(&m->http_errors, 1, memory_order_relaxed);
        client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, on_timeout, CLIENT_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) != 0)
        client_close(cl);
}

static bool loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
           (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
}

/* Parses tcp://HOST:PORT (HOST may be [v6]) into ss. Returns: 0 or -1. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss)
{
    if (strncmp(spec, "tcp://", 6) != 0)
        return -1;
    spec += 6;
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || colon[1] == '\0')
        return -1;
    char host[64];
    size_t hl = (size_t)(colon - spec);
    const char *hs = spec;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -1;
}

int td_metrics_init(struct td_server *srv)
{
    struct td_metrics *m = td_calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->srv = srv;
    srv->metrics = m;
    const char *spec = srv->cfg->metrics_listen;
    if (!spec)
        return 0;
    struct sockaddr_storage ss;
    if (parse_addr(spec, &ss) != 0) {
        TD_LOG(TD_LOG_ERROR, "bad metrics address",
               "addr=%s err=\"want tcp://HOST:PORT with a numeric IPv4 or [IPv6] host\"", spec);
        return -1;
    }
    if (!srv->cfg->allow_remote && !loopback((struct sockaddr *)&ss)) {
        TD_LOG(TD_LOG_ERROR, "refusing non-loopback metrics listener",
               "addr=%s err=\"pass --allow-remote to listen beyond loopback\"", spec);
        return -1;
    }
    uv_tcp_init(&srv->loop, &m->listener);
    m->listener.data = m;
    m->listening = true;
    int rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, 64, on_connection);
    if (rc != 0) {
        TD_LOG(TD_LOG_ERROR, "cannot listen", "addr=%s err=\"%s\"", spec, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    uv_tcp_getsockname(&m->listener, (struct sockaddr *)&bound, &bl);
    char ip[64] = "?";
    int port = 0;
    if (bound.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&bound;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        TD_LOG(TD_LOG_INFO, "metrics listening", "addr=tcp://%s:%d", ip, port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&bound;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        TD_LOG(TD_LOG_INFO, "metrics listening", "addr=tcp://[%s]:%d", ip, port);
    }
    return 0;
}

void td_metrics_close(struct td_server *srv)
{
    struct td_metrics *m = srv->metrics;
    if (!m)
        return;
    if (m->listening && !m->listener_closed) {
        m->listener_closed = true;
        uv_close((uv_handle_t *)&m->listener, NULL);
    }
    while (m->clients)
        client_close(m->clients);
}

void td_metrics_fini(struct td_server *srv)
{
    td_free(srv->metrics);
    srv->metrics = NULL;
}
