/*
 * fz_server.c - the in-process daemon the fuzz targets drive (see fz_server.h).
 */
#include "fz_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tensord.pb-c.h"

/* Rounds without any progress after which the harness calls the connection hung. Each round
 * runs the loop, the queued jobs and a short read spin, so this is a few seconds. */
#define STALL_ROUNDS 20000

static struct td_config cfg;
static struct td_server server;
static bool started;
static bool verbose;   /* TD_FUZZ_VERBOSE=1: print every reply's status (corpus upkeep) */
void (*fz_on_reply)(uint32_t method, uint64_t call_id, int code);
static const char *const user_names[] = {"root", "alice", "local"};

static void die(const char *what)
{
    fprintf(stderr, "fz_server: %s\n", what);
    abort();
}

/* Frees the server at exit, as server_stop and td_server_fini do, so that LeakSanitizer's
 * check at exit sees only what the inputs leaked. */
static void server_teardown(void)
{
    struct td_server *srv = &server;
    td_pool_stop(&srv->pool);
    uv_close((uv_handle_t *)&srv->async, NULL);
    uv_close((uv_handle_t *)&srv->drain_async, NULL);
    uv_run(&srv->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&srv->loop) != 0)
        die("the loop still has handles at exit");
    td_handlers_fini(srv);
    td_auth_fini(srv);
    pthread_mutex_destroy(&srv->attn_mu);
    pthread_mutex_destroy(&srv->reg_mu);
    pthread_mutex_destroy(&srv->park_mu);
    td_storage_cache_trim();
}

/* Drain only sets the flag and wakes the loop; the harness has no listeners to close. */
static void on_drain_async(uv_async_t *h)
{
    (void)h;
}

/* Writes the token file of FZ_ADMIN_TOKEN and FZ_USER_TOKEN (mode 0600, as the daemon
 * requires) into a fresh temporary file. Returns: its path (static storage). */
static const char *write_token_file(void)
{
    static char path[] = "/tmp/tensord-fuzz-tokens-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp failed");
    static const char text[] = FZ_ADMIN_TOKEN " root admin\n" FZ_USER_TOKEN " alice user\n";
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1))
        die("cannot write the token file");
    close(fd);
    return path;
}

/* Frees the sessions an input left parked (it asked for a resume lease and its connection
 * ended mid-frame), puts every user's quotas back to the configured defaults (an input may
 * have called SetQuota) and checks that nothing is charged to a user or the server any
 * more. */
static void users_reset(struct td_server *srv)
{
    td_session_expire(srv, 0, true);
    if (atomic_load(&srv->total.bytes) != 0)
        die("server bytes not back to 0 after the session was freed");
    for (size_t i = 0; i < sizeof user_names / sizeof user_names[0]; i++) {
        struct td_user *u = td_auth_find_user(srv, user_names[i]);
        if (!u)
            continue;
        if (atomic_load(&u->account.bytes) != 0 || atomic_load(&u->tensors) != 0 ||
            atomic_load(&u->sessions) != 0)
            die("a user's bytes, tensors or sessions not back to 0 after the session");
        atomic_store(&u->account.limit, (uint64_t)cfg.user_max_bytes);
        atomic_store(&u->max_tensors, (uint64_t)cfg.user_max_tensors);
        atomic_store(&u->max_sessions, (uint64_t)cfg.user_max_sessions);
        if (td_pool_set_user_max(&srv->pool, &u->sched, 0) != 0)
            die("td_pool_set_user_max failed");
    }
}

struct td_server *fz_server_get(const struct fz_limits *lim)
{
    if (started)
        return &server;
    struct td_error err;
    td_error_clear(&err);
    td_log_level_min = TD_LOG_LEVEL_COUNT;   /* protocol errors are expected: keep quiet */
    const char *v = getenv("TD_FUZZ_VERBOSE");
    verbose = v && *v == '1';
    if (td_ops_init(&err) != 0)
        die(err.msg);
    /* The daemon's defaults for everything the fuzzer does not set itself. */
    char prog[] = "tensord-fuzz", msg[256];
    char *argv[] = {prog, NULL};
    if (td_config_parse(&cfg, 1, argv, msg, sizeof msg) != 0)
        die(msg);
    cfg.threads = 0;
    cfg.max_frame_body = lim->max_frame_body;
    cfg.max_frame_data = lim->max_frame_data;
    cfg.max_graph_nodes = lim->max_graph_nodes;
    cfg.max_session_ids = lim->max_session_ids;
    cfg.max_session_bytes = lim->max_session_bytes;
    cfg.log_level = TD_LOG_LEVEL_COUNT;
    cfg.auth_fail_delay_ms = 0;   /* no lockout: each input starts with a clean peer */
    cfg.token_file = lim->auth ? write_token_file() : NULL;

    /* What td_server_init does, without listeners, signal handlers and worker threads: the
     * fuzzer's thread is the loop thread and the only worker. */
    struct td_server *srv = &server;
    memset(srv, 0, sizeof *srv);
    srv->cfg = &cfg;
    atomic_init(&srv->next_session_id, 1);
    atomic_init(&srv->calls_total, 0);
    atomic_init(&srv->errors_total, 0);
    srv->phys_mem = (uint64_t)lim->max_session_bytes;
    srv->max_session_bytes = (uint64_t)lim->max_session_bytes;
    srv->out_soft = (uint64_t)cfg.output_buffer_soft;
    srv->out_hard = (uint64_t)cfg.output_buffer_hard;
    srv->out_soft_ns = 0; /* no timer: the fuzzer's loop turns are not wall time */
    pthread_mutex_init(&srv->attn_mu, NULL);
    pthread_mutex_init(&srv->reg_mu, NULL);
    pthread_mutex_init(&srv->park_mu, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_IGN);   /* Shutdown signals the process as the daemon's SIGTERM */
    int arc = td_auth_init(srv);
    if (cfg.token_file)
        unlink(cfg.token_file);   /* only the digests are kept */
    if (arc != 0)
        die("td_auth_init failed");
    atomic_init(&srv->draining, false);
    if (uv_loop_init(&srv->loop) != 0)
        die("uv_loop_init failed");
    if (td_handlers_init(srv) != 0)
        die("td_handlers_init failed");
    if (uv_async_init(&srv->loop, &srv->async, td_conn_on_async) != 0)
        die("uv_async_init failed");
    srv->async.data = srv;
    if (uv_async_init(&srv->loop, &srv->drain_async, on_drain_async) != 0)
        die("uv_async_init failed");
    srv->drain_async.data = srv;
    if (td_pool_start(&srv->pool, 0, td_conn_process) != 0)
        die("td_pool_start failed");
    started = true;
    atexit(server_teardown);
    return srv;
}

/* The client's view of the reply stream: every reply must be a well-formed response frame
 * whose body decodes as an ErrorReply (every reply message starts with its Status). */
struct reply_reader {
    uint8_t hdr[TD_FRAME_HEADER_SIZE];
    size_t hdr_got;
    struct td_frame_header h;
    uint8_t *body;
    size_t body_got;
    uint64_t data_left;
    bool in_body, in_data;
    size_t replies;
};

static void reply_done_body(struct td_server *srv, struct reply_reader *rr)
{
    Tensord__V1__ErrorReply *er =
        tensord__v1__error_reply__unpack(NULL, (size_t)rr->h.body_len, rr->body);
    if (!er)
        die("a reply body does not decode as ErrorReply");
    if (fz_on_reply)
        fz_on_reply(rr->h.method, rr->h.call_id, er->status ? (int)er->status->code : 0);
    if (verbose)
        fprintf(stderr, "fz_server: reply call %llu %s: code %d %s\n",
                (unsigned long long)rr->h.call_id, td_method_name(rr->h.method),
                er->status ? (int)er->status->code : -1,
                er->status && er->status->message ? er->status->message : "");
    protobuf_c_message_free_unpacked(&er->base, NULL);
    free(rr->body);
    rr->body = NULL;
    rr->in_body = false;
    rr->data_left = rr->h.data_len;
    if (rr->h.data_len > (uint64_t)srv->cfg->max_frame_data)
        die("a reply's data section exceeds max_frame_data");
    rr->in_data = rr->data_left > 0;
    if (!rr->in_data)
        rr->replies++;
}

static void reply_feed(struct td_server *srv, struct reply_reader *rr, const uint8_t *p,
                       size_t n)
{
    while (n > 0) {
        if (rr->in_data) {
            size_t k = rr->data_left < n ? (size_t)rr->data_left : n;
            rr->data_left -= k;
            p += k;
            n -= k;
            if (rr->data_left == 0) {
                rr->in_data = false;
                rr->replies++;
            }
        } else if (rr->in_body) {
            size_t k = (size_t)rr->h.body_len - rr->body_got;
            if (k > n)
                k = n;
            memcpy(rr->body + rr->body_got, p, k);
            rr->body_got += k;
            p += k;
            n -= k;
            if (rr->body_got == rr->h.body_len)
                reply_done_body(srv, rr);
        } else {
            size_t k = TD_FRAME_HEADER_SIZE - rr->hdr_got;
            if (k > n)
                k = n;
            memcpy(rr->hdr + rr->hdr_got, p, k);
            rr->hdr_got += k;
            p += k;
            n -= k;
            if (rr->hdr_got < TD_FRAME_HEADER_SIZE)
                continue;
            rr->hdr_got = 0;
            td_frame_decode(rr->hdr, &rr->h);
            if (memcmp(rr->h.magic, "TDRP", 4) != 0 || rr->h.version != TD_FRAME_VERSION ||
                rr->h.kind != TD_FRAME_KIND_RESPONSE || rr->h.flags != 0 || rr->h.reserved != 0)
                die("malformed reply header");
            if (rr->h.body_len > (16u << 20))
                die("reply body over 16 MiB");
            rr->body = malloc(rr->h.body_len ? (size_t)rr->h.body_len : 1);
            if (!rr->body)
                die("out of memory");
            rr->body_got = 0;
            rr->in_body = true;
            if (rr->h.body_len == 0)
                reply_done_body(srv, rr);
        }
    }
}

/* Reads what the server replied and checks its framing. Returns: true when bytes arrived. */
static bool drain_client(struct td_server *srv, int fd, struct reply_reader *rr)
{
    static uint8_t sink[1 << 16];
    bool any = false;
    for (;;) {
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r > 0) {
            any = true;
            reply_feed(srv, rr, sink, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return any;
    }
}

/* One round: the loop (reading, attention, closing), the workers' jobs, the replies.
 * Returns: true when something happened. */
static bool pump(struct td_server *srv, int client, struct reply_reader *rr)
{
    uv_run(&srv->loop, UV_RUN_NOWAIT);   /* always has the async handle: no progress signal */
    bool any = td_pool_run_ready(&srv->pool);
    any |= drain_client(srv, client, rr);
    return any;
}

static uint32_t next_rand(uint32_t *s)
{
    /* xorshift32; a zero state would stay zero. */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

size_t fz_session_run(struct td_server *srv, const uint8_t *stream, size_t len, uint32_t seed)
{
    struct reply_reader rr;
    memset(&rr, 0, sizeof rr);
    /* 1..16 chunks on average: each round may spin briefly in the worker's read, so a
     * byte-by-byte split would make an input cost milliseconds. */
    size_t nsplit = 1 + (seed & 15);
    size_t avg = len / nsplit ? len / nsplit : 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair failed");
    td_conn_accept(srv, sv[0], "fuzz", false);
    if (srv->reg_count != 1)
        die("connection not accepted");

    size_t off = 0;
    int stall = 0;
    while (off < len) {
        uint32_t r = next_rand(&seed);
        size_t n = 1 + r % (2 * avg);
        if (n > len - off)
            n = len - off;
        ssize_t w = send(sv[1], stream + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;   /* the server closed the connection (a protocol error) */
        bool progress = w > 0;
        if (w > 0)
            off += (size_t)w;
        progress |= pump(srv, sv[1], &rr);
        if (srv->reg_count == 0)
            break;
        stall = progress ? 0 : stall + 1;
        if (stall > STALL_ROUNDS)
            die("the server stopped reading a connection that is still open");
    }
    shutdown(sv[1], SHUT_WR);
    stall = 0;
    while (srv->reg_count != 0) {
        bool progress = pump(srv, sv[1], &rr);
        stall = progress ? 0 : stall + 1;
        if (stall > STALL_ROUNDS)
            die("the connection did not close after the client's end of stream");
    }
    /* Closing callbacks and attention requests left over from the freed connection. */
    for (int i = 0; i < 4; i++)
        pump(srv, sv[1], &rr);
    close(sv[1]);
    if (srv->conns || srv->pool.ring_head || atomic_load(&srv->pool.nready) || srv->attn_head)
        die("server state left behind after the connection was freed");
    if (rr.in_body || rr.in_data || rr.hdr_got)
        die("the server closed the connection in the middle of a reply");
    users_reset(srv);
    atomic_store(&srv->draining, false);   /* an input's Drain ends with its session */
    free(rr.body);
    return rr.replies;
}

static void wr_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int fz_frame_append(uint8_t **buf, size_t *len, size_t *cap, uint32_t method, uint64_t call_id,
                    const uint8_t *body, size_t body_len, const uint8_t *data, size_t data_len)
{
    size_t need = *len + TD_FRAME_HEADER_SIZE + body_len + data_len;
    if (need > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < need)
            ncap *= 2;
        uint8_t *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    uint8_t *h = *buf + *len;
    memcpy(h, "TDRP", 4);
    wr_le(h + 4, TD_FRAME_VERSION, 2);
    h[6] = TD_FRAME_KIND_REQUEST;
    h[7] = 0;
    wr_le(h + 8, method, 4);
    wr_le(h + 12, 0, 4);
    wr_le(h + 16, call_id, 8);
    wr_le(h + 24, body_len, 8);
    wr_le(h + 32, data_len, 8);
    if (body_len)
        memcpy(h + TD_FRAME_HEADER_SIZE, body, body_len);
    if (data_len)
        memcpy(h + TD_FRAME_HEADER_SIZE + body_len, data, data_len);
    *len = need;
    return 0;
}
