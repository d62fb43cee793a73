/*
 * server.c - the daemon's lifecycle on the libuv loop: listeners (TCP loopback unless
 * --allow-remote, Unix sockets), accepting connections, signals, and the orderly shutdown
 * that frees every session before the process exits. With --tls-cert every TCP connection
 * speaks TLS (the SSL_CTX is built at start-up, tls.c); Unix sockets stay plain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "tls.h"
#ifdef TD_HAVE_CUDA
#include "td_cuda.h"
#endif

/* ---------------------------------------------------------------------------------------
 * Accepting
 */
static void on_listener_poll(uv_poll_t *h, int status, int events)
{
    struct td_listener *l = h->data;
    (void)events;
    if (status < 0 || l->srv->stopping || td_server_draining(l->srv))
        return;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                TD_LOG(TD_LOG_WARN, "accept failed", "addr=%s err=\"%s\"", l->addr,
                       strerror(errno));
            return;
        }
        char peer[96] = "unix";
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            snprintf(peer, sizeof peer, "%s:%u", ip, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            snprintf(peer, sizeof peer, "[%s]:%u", ip, ntohs(a->sin6_port));
        }
        td_conn_accept(l->srv, fd, peer, l->is_tcp);
    }
}

/* ---------------------------------------------------------------------------------------
 * Listeners
 */
static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            return a->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static int listen_tcp(struct td_listener *l, const char *spec, bool allow_remote)
{
    char host[128], port[16];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec) {
        TD_LOG(TD_LOG_ERROR, "bad listen address", "addr=tcp://%s err=\"want HOST:PORT\"", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    const char *hs = spec;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    if (hl >= sizeof host || strlen(colon + 1) >= sizeof port || colon[1] == '\0') {
        TD_LOG(TD_LOG_ERROR, "bad listen address", "addr=tcp://%s", spec);
        return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        TD_LOG(TD_LOG_ERROR, "bad listen address", "addr=tcp://%s err=\"%s\"", spec,
               gai_strerror(gai));
        return -1;
    }
    int rc = -1;
    if (!allow_remote && !is_loopback(res->ai_addr)) {
        /* config.c accepts --allow-remote only together with a token file. */
        TD_LOG(TD_LOG_ERROR, "refusing non-loopback listener",
               "addr=tcp://%s err=\"pass --allow-remote (which needs --token-file) to listen "
               "beyond loopback\"", spec);
        goto out;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sys_fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        close(fd);
        goto sys_fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        p = ntohs(a->sin_port);
        snprintf(l->addr, sizeof l->addr, "tcp://%s:%u", ip, p);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        p = ntohs(a->sin6_port);
        snprintf(l->addr, sizeof l->addr, "tcp://[%s]:%u", ip, p);
    }
    l->fd = fd;
    l->is_tcp = true;
    rc = 0;
    goto out;
sys_fail:
    TD_LOG(TD_LOG_ERROR, "cannot listen", "addr=tcp://%s err=\"%s\"", spec, strerror(errno));
out:
    freeaddrinfo(res);
    return rc;
}

static int listen_unix(struct td_listener *l, const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path) {
        TD_LOG(TD_LOG_ERROR, "bad listen address", "addr=unix://%s err=\"path empty or longer "
               "than %zu bytes\"", path, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* A socket file left by a daemon that died: remove it unless someone answers. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(probe);
            if (live) {
                TD_LOG(TD_LOG_ERROR, "cannot listen", "addr=unix://%s err=\"a server is "
                       "already listening there\"", path);
                return -1;
            }
            unlink(path);
        }
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0) {
        TD_LOG(TD_LOG_ERROR, "cannot listen", "addr=unix://%s err=\"%s\"", path,
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    l->fd = fd;
    l->is_tcp = false;
    snprintf(l->unix_path, sizeof l->unix_path, "%s", path);
    snprintf(l->addr, sizeof l->addr, "unix://%s", path);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct td_listener *l = h->data;
    close(l->fd);
    l->fd = -1;
}

static void close_listeners(struct td_server *srv)
{
    for (int i = 0; i < srv->nlisteners; i++) {
        struct td_listener *l = &srv->listeners[i];
        if (l->closing || l->fd < 0)
            continue;
        l->closing = true;
        if (l->unix_path[0])
            unlink(l->unix_path);
        uv_close((uv_handle_t *)&l->poll, on_listener_closed);
    }
}

/* ---------------------------------------------------------------------------------------
 * Server lifecycle
 */
static void server_stop(struct td_server *srv, const char *why)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    TD_LOG(TD_LOG_INFO, "shutting down", "signal=%s", why);
    td_notify_send(srv, "STOPPING=1\nSTATUS=stopping");
    td_notify_close(srv);
    td_metrics_close(srv);
    uv_timer_stop(&srv->drain_timer);
    close_listeners(srv);
    td_conn_close_all(srv);
    /* Workers drop the jobs of closed sessions and finish graphs already running. */
    td_pool_stop(&srv->pool);
    td_conn_on_async(&srv->async);  /* release attention requests made while workers finished */
    td_session_expire(srv, 0, true); /* parked sessions: nobody can resume them any more */
    uv_close((uv_handle_t *)&srv->async, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->out_timer, NULL);
    uv_close((uv_handle_t *)&srv->conn_timer, NULL);
    uv_close((uv_handle_t *)&srv->drain_async, NULL);
    uv_close((uv_handle_t *)&srv->drain_timer, NULL);
    uv_close((uv_handle_t *)&srv->park_timer, NULL);
}

/* ---------------------------------------------------------------------------------------
 * Draining: no new connections or requests, finish and answer what was received, stop.
 */

/* Whether c still has work in flight: jobs queued or running, a Put whose data is being
 * received, or replies not yet written. [loop] */
static bool conn_busy(struct td_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool gone = c->closed || c->broken;
    bool busy = c->scheduled || c->qhead || c->ohead;
    bool loop_reads = !c->reader_worker;
    pthread_mutex_unlock(&c->mu);
    /* Requests that reached the socket before the drain and are not parsed yet (only the
     * loop sets reader_worker, so it stays false here). */
    if (loop_reads && (c->cur_job || (c->rstate != TD_R_DEAD && !c->eof &&
                                      td_conn_parsed_offset(c) < c->drain_limit)))
        busy = true;
    return !gone && busy;
}

static void on_drain_timer(uv_timer_t *t)
{
    struct td_server *srv = t->data;
    int busy = 0;
    for (struct td_conn *c = srv->conns; c; c = c->loop_next)
        busy += conn_busy(c);
    if (busy == 0) {
        server_stop(srv, "SIGTERM (drained)");
        return;
    }
    if (srv->drain_deadline_ns && td_now_ns() >= srv->drain_deadline_ns) {
        TD_LOG(TD_LOG_WARN, "drain timed out", "busy_connections=%d drain_timeout_s=%" PRId64,
               busy, srv->cfg->drain_timeout);
        for (struct td_conn *c = srv->conns; c; c = c->loop_next)
            if (conn_busy(c))
                td_metrics_disconnected(srv, "drain-timeout");
        server_stop(srv, "SIGTERM (drain timeout)");
    }
}

static void on_drain_async(uv_async_t *h)
{
    struct td_server *srv = h->data;
    if (srv->stopping || uv_is_active((uv_handle_t *)&srv->drain_timer))
        return;
    int nconns = 0;
    for (struct td_conn *c = srv->conns; c; c = c->loop_next)
        nconns++;
    TD_LOG(TD_LOG_INFO, "draining", "connections=%d drain_timeout_s=%" PRId64, nconns,
           srv->cfg->drain_timeout);
    td_notify_send(srv, "STOPPING=1\nSTATUS=draining");
    close_listeners(srv);
    /* What each client sent before now still runs: everything already read plus what
     * waits in the socket (read FIONREAD first: a byte a worker reads in between is counted
     * twice, which errs on the side of serving it). */
    for (struct td_conn *c = srv->conns; c; c = c->loop_next) {
        int pending = 0;
        if (ioctl(c->fd, FIONREAD, &pending) != 0 || pending < 0)
            pending = 0;
        /* TLS: FIONREAD counts ciphertext (more than its plaintext, erring the same way);
         * plaintext already decrypted into the SSL object is added. */
        if (c->tls)
            pending += (int)td_tls_pending(c);
        c->drain_limit = atomic_load(&c->bytes_in) + (uint64_t)pending;
    }
    atomic_store_explicit(&srv->drain_snapped, true, memory_order_release);
    srv->drain_deadline_ns = srv->cfg->drain_timeout > 0
                                 ? td_now_ns() + (long)srv->cfg->drain_timeout * 1000000000L
                                 : 0;
    uv_timer_start(&srv->drain_timer, on_drain_timer, 0, 10);
}

void td_server_drain(struct td_server *srv)
{
    if (!atomic_exchange(&srv->draining, true))
        uv_async_send(&srv->drain_async);
}

bool td_server_draining(const struct td_server *srv)
{
    return atomic_load(&((struct td_server *)srv)->draining);
}

/* SIGTERM drains (a second one stops at once); SIGINT stops at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    struct td_server *srv = h->data;
    if (signum == SIGTERM && !td_server_draining(srv)) {
        td_server_drain(srv);
        return;
    }
    server_stop(srv, signum == SIGINT ? "SIGINT" : "SIGTERM (second)");
}

static uint64_t phys_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0)
        return 0;
    return (uint64_t)pages * (uint64_t)psize;
}

/* Fills srv->devices: the CPU, then every CUDA device when the daemon was built with CUDA. */
static void find_devices(struct td_server *srv)
{
    struct td_device_desc *cpu = &srv->devices[0];
    snprintf(cpu->name, sizeof cpu->name, "cpu");
    snprintf(cpu->kind, sizeof cpu->kind, "cpu");
    cpu->memory_bytes = srv->phys_mem;
    srv->ndevices = 1;
#ifdef TD_HAVE_CUDA
    struct td_cuda_device gpus[TD_MAX_DEVICES - 1];
    char why[160] = "";
    int n = td_cuda_devices(gpus, TD_MAX_DEVICES - 1, why, sizeof why);
    for (int i = 0; i < n; i++) {
        struct td_device_desc *d = &srv->devices[srv->ndevices++];
        snprintf(d->name, sizeof d->name, "cuda:%d", gpus[i].ordinal);
        snprintf(d->kind, sizeof d->kind, "cuda");
        snprintf(d->model, sizeof d->model, "%s", gpus[i].model);
        d->memory_bytes = gpus[i].memory_bytes;
        TD_LOG(TD_LOG_INFO, "cuda device", "name=%s model=\"%s\" memory=%" PRIu64 " cc=%d.%d",
               d->name, d->model, d->memory_bytes, gpus[i].cc_major, gpus[i].cc_minor);
    }
    if (n == 0)
        TD_LOG(TD_LOG_INFO, "no cuda device", "why=\"%s\"", why);
#endif
}

int td_server_init(struct td_server *srv, const struct td_config *cfg)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    atomic_init(&srv->next_session_id, 1);
    atomic_init(&srv->calls_total, 0);
    atomic_init(&srv->errors_total, 0);
    srv->phys_mem = phys_memory();
    find_devices(srv);
    srv->max_session_bytes = cfg->max_session_bytes > 0 ? (uint64_t)cfg->max_session_bytes
                                                        : srv->phys_mem;
    if (srv->max_session_bytes == 0)
        srv->max_session_bytes = UINT64_C(1) << 40;
    srv->out_soft = (uint64_t)cfg->output_buffer_soft;
    srv->out_hard = (uint64_t)cfg->output_buffer_hard;
    srv->out_soft_ns = (long)cfg->output_buffer_soft_seconds * 1000000000L;
    atomic_init(&srv->out_bytes, 0);
    pthread_mutex_init(&srv->attn_mu, NULL);
    pthread_mutex_init(&srv->reg_mu, NULL);
    pthread_mutex_init(&srv->park_mu, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (td_tls_init(srv) != 0)
        return -1;
    if (td_auth_init(srv) != 0) {
        td_tls_fini(srv);
        return -1;
    }
    if (cfg->allow_remote && !srv->tls_ctx)
        TD_LOG(TD_LOG_WARN, "remote clients without TLS", "err=\"--allow-remote without "
               "--tls-cert: tokens and tensors travel in clear over TCP; set tls_cert and "
               "tls_key or use a TLS tunnel\"");
    if (uv_loop_init(&srv->loop) != 0) {
        td_auth_fini(srv);
        td_tls_fini(srv);
        return -1;
    }
    if (td_handlers_init(srv) != 0) {
        TD_LOG(TD_LOG_ERROR, "cannot build the op list", "err=\"%s\"", "out of memory");
        goto fail_loop;
    }
    uv_async_init(&srv->loop, &srv->async, td_conn_on_async);
    srv->async.data = srv;
    atomic_init(&srv->draining, false);
    atomic_init(&srv->drain_snapped, false);
    uv_async_init(&srv->loop, &srv->drain_async, on_drain_async);
    srv->drain_async.data = srv;
    uv_timer_init(&srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    /* The soft-seconds rule needs a clock that runs while a stalled client causes no I/O:
     * check a few times per allowed period, at least once a second. */
    uv_timer_init(&srv->loop, &srv->out_timer);
    srv->out_timer.data = srv;
    if (srv->out_soft_ns > 0) {
        uint64_t period_ms = (uint64_t)cfg->output_buffer_soft_seconds * 1000 / 4;
        if (period_ms > 1000)
            period_ms = 1000;
        uv_timer_start(&srv->out_timer, td_conn_on_out_timer, period_ms, period_ms);
    }
    /* Idle, auth and read timeouts: checked four times per shortest period, at least once a
     * second. */
    uv_timer_init(&srv->loop, &srv->conn_timer);
    srv->conn_timer.data = srv;
    int64_t shortest = 0;
    const int64_t touts[3] = {cfg->idle_timeout, cfg->auth_timeout, cfg->read_timeout};
    for (int i = 0; i < 3; i++)
        if (touts[i] > 0 && (shortest == 0 || touts[i] < shortest))
            shortest = touts[i];
    if (shortest > 0) {
        uint64_t period_ms = shortest >= 4 ? 1000 : (uint64_t)shortest * 1000 / 4;
        uv_timer_start(&srv->conn_timer, td_conn_on_timeout_timer, period_ms, period_ms);
    }
    /* Parked resumable sessions whose lease ended are freed within a second. */
    uv_timer_init(&srv->loop, &srv->park_timer);
    srv->park_timer.data = srv;
    if (cfg->max_resume_lease > 0)
        uv_timer_start(&srv->park_timer, td_session_on_park_timer, 1000, 1000);
    if (td_metrics_init(srv) != 0 || td_notify_init(srv) != 0)
        goto fail_handles;

    srv->listeners = td_calloc((size_t)cfg->nlisten, sizeof *srv->listeners);
    if (!srv->listeners)
        goto fail_handles;
    for (int i = 0; i < cfg->nlisten; i++) {
        struct td_listener *l = &srv->listeners[i];
        l->srv = srv;
        l->fd = -1;
        const char *a = cfg->listen[i];
        int rc;
        if (strncmp(a, "tcp://", 6) == 0) {
            rc = listen_tcp(l, a + 6, cfg->allow_remote);
        } else if (strncmp(a, "unix://", 7) == 0) {
            rc = listen_unix(l, a + 7);
        } else {
            TD_LOG(TD_LOG_ERROR, "bad listen address",
                   "addr=%s err=\"want tcp://HOST:PORT or unix:///path\"", a);
            rc = -1;
        }
        if (rc != 0)
            goto fail_listeners;
        srv->nlisteners++;
        uv_poll_init(&srv->loop, &l->poll, l->fd);
        l->poll.data = l;
        uv_poll_start(&l->poll, UV_READABLE, on_listener_poll);
    }
    if (td_pool_start(&srv->pool, (int)cfg->threads, td_conn_process) != 0)
        goto fail_listeners;
    for (int i = 0; i < srv->nlisteners; i++) {
        printf("listening %s\n", srv->listeners[i].addr);
        TD_LOG(TD_LOG_INFO, "listening", "addr=%s tls=%s", srv->listeners[i].addr,
               srv->listeners[i].is_tcp && srv->tls_ctx ? "on" : "off");
    }
    fflush(stdout);
    td_notify_send(srv, "READY=1\nSTATUS=serving");
    TD_LOG(TD_LOG_INFO, "started", "version=%s threads=%" PRId64 " max_frame_data=%" PRId64,
           TD_VERSION, cfg->threads, cfg->max_frame_data);
    return 0;

fail_listeners:
    for (int i = 0; i < srv->nlisteners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i].poll, on_listener_closed);
    for (int i = 0; i < cfg->nlisten; i++)
        if (srv->listeners[i].unix_path[0])
            unlink(srv->listeners[i].unix_path);
fail_handles:
    uv_close((uv_handle_t *)&srv->async, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->out_timer, NULL);
    uv_close((uv_handle_t *)&srv->conn_timer, NULL);
    uv_close((uv_handle_t *)&srv->drain_async, NULL);
    uv_close((uv_handle_t *)&srv->drain_timer, NULL);
    uv_close((uv_handle_t *)&srv->park_timer, NULL);
    td_metrics_close(srv);
    td_notify_close(srv);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    td_metrics_fini(srv);
    td_notify_fini(srv);
    td_free(srv->listeners);
    srv->listeners = NULL;
    td_handlers_fini(srv);
fail_loop:
    uv_loop_close(&srv->loop);
    td_auth_fini(srv);
    td_tls_fini(srv);
    return -1;
}

int td_server_run(struct td_server *srv)
{
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return 0;
}

void td_server_fini(struct td_server *srv)
{
    int rc = uv_loop_close(&srv->loop);
    if (rc != 0)
        TD_LOG(TD_LOG_WARN, "loop not closed cleanly", "err=\"%s\"", uv_strerror(rc));
    td_free(srv->listeners);
    td_handlers_fini(srv);
    td_auth_fini(srv);
    td_metrics_fini(srv);
    td_notify_fini(srv);
    td_tls_fini(srv);
    td_session_expire(srv, 0, true);   /* sessions parked while the last connections closed */
    pthread_mutex_destroy(&srv->attn_mu);
    pthread_mutex_destroy(&srv->reg_mu);
    pthread_mutex_destroy(&srv->park_mu);
}
