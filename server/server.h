/*
 * server.h - the daemon's shared structures: the server, a connection with its session,
 * the jobs a connection queues for the workers, and the reply frames it queues for output.
 *
 * Threads: one libuv loop thread owns listeners, accepting, reading and parsing, and the
 * connection's poll handle; N workers run the jobs (everything that touches a session's id
 * table) and usually write the reply themselves. Fields are annotated with who may touch
 * them: [loop] loop thread only, [mu] under conn->mu, [worker] the one worker that holds the
 * session (a session is scheduled on at most one worker at a time).
 */
#ifndef TD_SRV_SERVER_H
#define TD_SRV_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "config.h"
#include "frame.h"
#include "idtable.h"
#include "td_autograd.h"
#include "td_core.h"
#include "td_ops.h"

#define TD_INBUF_SIZE (64 * 1024)
#define TD_QUEUE_HIGH 1024     /* jobs queued per connection before reading pauses */
#define TD_OUTQ_HIGH 1024      /* reply frames queued per connection before reading pauses */
#define TD_MAX_PENDING_UPLOADS 4096
#define TD_MAX_USER_CONCURRENCY 256  /* SetQuota's max_concurrency; as --user-max-concurrency */

struct td_server;
struct td_conn;
struct td_auth;
struct ssl_st;       /* OpenSSL's SSL (tls.c) */
struct ssl_ctx_st;   /* OpenSSL's SSL_CTX (tls.c) */

/* A user: named by the token file (or "local" without one), with a role and quotas. Users
 * live as long as the server; the quota fields are atomics because SetQuota changes them
 * while workers charge. */
/* A user's place in the pool's fair scheduling (pool.c): its sessions that wait for a
 * worker, and how many workers hold one of its sessions now. [pool->mu] */
struct td_sched {
    struct td_conn *head, *tail;   /* ready sessions, FIFO (linked by ready_next) */
    struct td_sched *next;         /* the pool's ring of users with ready sessions */
    bool listed;                   /* on that ring */
    int running;                   /* workers holding one of the user's sessions */
    int max;                       /* the user's own concurrency limit; 0: the pool's */
};

struct td_user {
    char name[64];
    char label[80];              /* "user 'NAME'", names the quota in errors */
    bool admin;
    struct td_account account;   /* every session's account is a child: bytes per user;
                                    limit = the byte quota (0: unlimited) */
    _Atomic uint64_t max_tensors, tensors;     /* live ids over the user's sessions */
    _Atomic uint64_t max_sessions, sessions;   /* concurrent authenticated sessions */
    struct td_sched sched;       /* [pool->mu] the pool's per-user queue (pool.c) */
};

/* The session: one per connection, heap-allocated so that it can outlive its connection as a
 * parked resumable session (session.c) and be reattached to another. [worker] unless noted. */
struct td_session {
    uint64_t id;                /* immutable */
    struct td_idtable ids;
    struct td_rng rng;
    struct td_account account;  /* atomic counters; the loop charges uploads here too */
    struct td_ag_session ag;    /* autograd: recorded nodes, the dual level */
    bool handshaken;
    struct td_server *srv;
    /* Set once, under srv->reg_mu, when the handshake authenticates (td_session_set_user);
     * the account's parent becomes the user's account at the same time. */
    struct td_user *user;
    bool holds_session_quota;    /* user->sessions counts this session */
    _Atomic uint64_t ntensors;   /* live ids charged to user->tensors */
    long created_ns;             /* td_now_ns() at accept */
    /* Resumable sessions (docs/PROTOCOL.md "Resumable sessions"). */
    uint32_t lease_s;            /* granted lease; 0: freed with its connection [reg_mu] */
    uint8_t resume_digest[32];   /* SHA-256 of the current resume token [reg_mu] */
    bool resume_pending;         /* reattached by the reader; do_handshake answers "resumed" */
    _Atomic bool no_park;        /* killed by an admin: freed at close, never parked */
    long park_deadline_ns;       /* [srv->park_mu] parked until then */
    struct td_session *park_next;  /* [srv->park_mu] */
};

enum td_job_kind {
    TD_JOB_CALL,     /* a decoded request */
    TD_JOB_ERROR,    /* the loop found an error; the worker sends it, in order */
    TD_JOB_CLOSE,    /* the client finished sending: close once earlier replies are out */
};

struct td_job {
    struct td_job *next;
    enum td_job_kind kind;
    uint32_t method;
    uint64_t call_id;
    ProtobufCMessage *req;       /* decoded request (TD_JOB_CALL); owned */
    /* Put: the tensor the loop read the data section into (owned reference). */
    struct td_tensor *put_tensor;
    bool put_create;             /* offset 0: install the id; else append a chunk */
    uint64_t put_offset, put_len, put_nbytes;
    /* TD_JOB_ERROR */
    bool close_after;            /* protocol error: close the connection after the reply */
    struct td_error err;
    long t_enqueue;              /* td_now_ns() when queued: request latency (metrics.c) */
    /* Cancel (conn.c marks it, do_run reads it): a Run whose Cancel arrived. */
    _Atomic bool cancelled;
    bool cancel_found;           /* a Cancel job: it marked a queued or running Run */
};

/* A reply that could not be written at once. The body lives right after the struct. */
struct td_outframe {
    struct td_outframe *next;
    uint8_t hdr[TD_FRAME_HEADER_SIZE];
    size_t body_len;
    const uint8_t *data;
    size_t data_len;
    struct td_tensor *hold;      /* keeps `data` alive until written; owned */
    size_t sent;                 /* bytes of hdr+body+data already written */
    uint8_t body[];
};

/* An upload in progress (a Put of part of a tensor), so later chunks know where to go. [loop] */
struct td_pending_upload {
    uint64_t id;
    struct td_tensor *tensor;    /* owned reference */
    uint64_t next_offset, nbytes;
};

enum td_read_state { TD_R_HEADER, TD_R_BODY, TD_R_DATA, TD_R_DEAD };

struct td_conn {
    struct td_server *srv;
    _Atomic int refcount;        /* loop holds one until the poll handle closed; workers one
                                    while scheduled; the attention list one while listed */
    int fd;
    bool is_tcp;
    char peer[96];

    /* [loop] */
    uv_poll_t poll;
    int poll_events;
    bool closing;
    struct td_conn *loop_prev, *loop_next;
    /* read state: [loop], or the worker's while reader_worker */
    enum td_read_state rstate;
    uint8_t hdrbuf[TD_FRAME_HEADER_SIZE];
    size_t hdr_got;
    struct td_frame_header hdr;
    uint8_t *body;               /* owned when the body did not fit the input buffer */
    size_t body_got;
    uint8_t *inbuf;
    size_t in_start, in_end;
    struct td_job *cur_job;      /* the frame being read, queued once its data arrived */
    uint8_t *data_dst;           /* NULL: discard the data section */
    uint64_t data_got;
    bool eof;
    bool handshake_seen;
    /* Draining: bytes received from the socket so far (written by the read-state owner,
     * read by the loop), and the stream offset up to which the bytes had reached the socket
     * when the drain began (set by the loop before srv->drain_snapped): requests that end
     * within it still run, later ones get UNAVAILABLE. */
    _Atomic uint64_t bytes_in;
    uint64_t drain_limit;
    bool authed;                 /* a Handshake frame passed authentication (auth.c) */
    /* Timeouts (conn.c): written by the read-state owner, read by the loop's timer. */
    _Atomic long last_in_ns;     /* td_now_ns() when bytes last arrived (accept at first) */
    _Atomic long frame_start_ns; /* the header/body being read began arriving; 0: none */
    _Atomic bool in_data;        /* a frame's data section is being read */
    _Atomic bool auth_done;      /* authed, for the timer */
    long accepted_ns;            /* [loop] */
    long busy_seen_ns;           /* [loop] the timer last saw work in flight */
    long paused_seen_ns;         /* [loop] the timer last saw reading paused */
    bool reserved_slot;          /* set at accept: an admin-reserved Unix slot */
    struct td_pending_upload *pending;
    size_t npending, cap_pending;

    /* [mu] */
    pthread_mutex_t mu;
    struct td_job *qhead, *qtail;
    size_t qlen;
    bool scheduled;              /* queued on the pool or held by a worker */
    bool paused;                 /* reading stopped: a queue is full or the output buffer
                                    is over --output-buffer-soft */
    struct td_outframe *ohead, *otail;
    size_t oframes;
    uint64_t obytes;             /* bytes of the queued frames not yet written (Get data
                                    included): the output buffer the limits bound */
    long over_soft_since;        /* td_now_ns() when obytes rose above --output-buffer-soft,
                                    0 while it is at or below */
    const char *kill_reason;     /* an output limit tripped: the loop logs it and closes */
    uint64_t kill_bytes;         /* obytes (with the refused frame) when it tripped */
    bool reader_worker;          /* a worker holding the session reads the socket, not the
                                    loop: the fields marked [loop] under "read state" then
                                    belong to that worker */
    bool closed;                 /* no more writes: the fd is going away */
    bool close_after_flush;
    bool corked;                 /* replies gathered in the queue, written by td_conn_flush */
    bool broken;                 /* a write failed: close */
    struct td_job *running;      /* the job a worker runs now (Cancel finds it) */
    bool worker_busy;            /* a long Run handed reading to the loop: keep it there */

    /* Fields under another lock start a new word: the compiler may load the [mu] flags above
     * with one wide read, which must not overlap what attn_mu guards (ThreadSanitizer saw
     * exactly that when in_attention shared their word). */
    struct td_conn *attn_next;   /* [srv->attn_mu] */
    bool in_attention;           /* [srv->attn_mu] */

    struct td_conn *ready_next;  /* [pool->mu] */
    struct td_sched *sched;      /* [pool->mu] the queue c waits on / is charged to */
    struct td_user *sched_user;  /* [submitter] sess.user as the pool last read it (pool.c) */
    struct td_conn *reg_prev, *reg_next; /* [srv->reg_mu] */

    /* TLS (tls.c), NULL on plain connections. OpenSSL lets one thread at a time use an SSL
     * object while the read-state owner reads and a worker writes at once, so every SSL_*
     * call on it holds tls_mu, for that call only. Lock order: mu before tls_mu. */
    struct ssl_st *tls;
    pthread_mutex_t tls_mu;
    uint8_t *tls_wbuf;           /* [mu] small iovecs gathered into one record (tls.c) */
    int tls_hs_events;           /* [loop] poll events the handshake waits for; 0: done */
    bool tls_kick;               /* [loop] plaintext waits in the SSL object: read it from
                                    the attention list, no poll event will announce it */
    bool tls_failed;             /* [tls_mu] a fatal TLS error: no SSL_shutdown */
    _Atomic bool tls_read_wants_write; /* SSL_read needs the socket writable (rare) */

    /* Replaced only by a resuming Handshake, on the loop thread, under reg_mu and mu, while
     * no job of the connection is queued or running (auth.c td_auth_resume). */
    struct td_session *sess;
    bool clean_eof;              /* the client ended the stream at a frame boundary */
};

/* The worker pool (pool.c). Ready sessions wait in per-user queues (struct td_sched); the
 * users with ready sessions form a ring that workers serve in turn. */
struct td_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct td_sched *ring_head, *ring_tail;  /* users with ready sessions, next turn first */
    struct td_sched anon;        /* sessions with no user yet (before the handshake) */
    struct td_sched all;         /* --fair-scheduling 0: every session in one FIFO */
    bool fair;                   /* --fair-scheduling */
    int user_max;                /* workers one user may hold at once; 0: unlimited */
    _Atomic int nready;          /* sessions waiting for a worker, over every queue */
    int sleepers;
    bool stop;
    int nthreads;
    pthread_t *threads;
    void (*process)(struct td_conn *c);
};

struct td_listener {
    struct td_server *srv;
    uv_poll_t poll;
    int fd;
    bool is_tcp;
    bool closing;
    char addr[160];              /* with the real port */
    char unix_path[108];         /* removed at shutdown; "" for TCP */
};

#define TD_MAX_DEVICES 17   /* the CPU and up to 16 GPUs */

struct td_server {
    const struct td_config *cfg;
    uv_loop_t loop;
    uv_async_t async;
    uv_signal_t sigint, sigterm;
    struct td_listener *listeners;
    int nlisteners;
    struct td_conn *conns;       /* [loop] */
    uint64_t nconns;             /* [loop] open connections (--max-connections) */
    uv_timer_t conn_timer;       /* idle, auth and read timeouts (conn.c) [loop] */
    struct td_pool pool;
    bool stopping;               /* [loop] */
    /* Output buffer limits (--output-buffer-*), fixed at start-up. out_hard 0: none;
     * out_soft_ns 0: no soft-seconds rule (and no out_timer). */
    uint64_t out_soft, out_hard;
    long out_soft_ns;
    uv_timer_t out_timer;        /* checks the soft-seconds rule [loop] */
    _Atomic uint64_t out_bytes;  /* sum of every connection's obytes, for Stats */

    pthread_mutex_t attn_mu;
    struct td_conn *attn_head;

    pthread_mutex_t reg_mu;      /* the session registry, for Stats */
    struct td_conn *reg_head;
    uint64_t reg_count;
    /* Parked resumable sessions (session.c); lock order reg_mu, then park_mu. */
    pthread_mutex_t park_mu;
    struct td_session *parked;
    uint64_t nparked;
    uv_timer_t park_timer;       /* frees parked sessions whose lease ended [loop] */

    _Atomic uint64_t next_session_id;
    _Atomic uint64_t calls_total;
    _Atomic uint64_t errors_total;
    uint64_t max_session_bytes;
    uint64_t phys_mem;
    /* Devices announced in the handshake, found once at start-up (server.c). */
    int ndevices;
    struct td_device_desc {
        char name[32];
        char kind[8];
        char model[256];
        uint64_t memory_bytes;
    } devices[TD_MAX_DEVICES];
    uint8_t *list_ops_body;      /* ListOpsReply packed once at startup */
    size_t list_ops_len;
    /* Authentication, users and quotas (auth.c). `total` is the root of every account:
     * limit --max-total-bytes. */
    struct td_auth *auth;
    struct td_account total;
    /* Draining (server.c): set once by td_server_drain from any thread; the loop then closes
     * the listeners, rejects new requests and stops once the work in flight is done. */
    _Atomic bool draining;
    _Atomic bool drain_snapped;  /* every connection's drain_limit is set (release) */
    uv_async_t drain_async;      /* wakes the loop to start the drain */
    uv_timer_t drain_timer;      /* checks whether the work in flight is done [loop] */
    long drain_deadline_ns;      /* 0: no --drain-timeout [loop] */
    struct td_metrics *metrics;  /* counters and the /metrics server (metrics.c); may be NULL */
    struct td_notify *notify;    /* systemd notification state (notify.c); may be NULL */
    struct ssl_ctx_st *tls_ctx;  /* --tls-cert: every TCP connection speaks TLS (tls.c);
                                    NULL: plain */
};

extern ProtobufCAllocator td_pb_allocator;

/* ---- server lifecycle (conn.c) ---- */
/* Opens every listener, prints "listening <addr>" lines, starts the pool.
 * Returns: 0 or -1 (logged). */
/* Re-executes the daemon once with OPENBLAS_CORETYPE set when OpenBLAS fell back to its
 * generic kernels on a CPU that supports better ones, and with OPENBLAS_NUM_THREADS=1 set
 * when the user left it unset (blas.c). Returns only when no re-exec happened.
 * Thread: call first thing in main, before any thread starts. */
void td_blas_select_kernels(char **argv);
/* Returns: true when td_blas_select_kernels made OpenBLAS single-threaded itself (the user
 * did not set OPENBLAS_NUM_THREADS), so the engine may raise it for large LAPACK calls. */
bool td_blas_threads_auto(void);

int td_server_init(struct td_server *srv, const struct td_config *cfg);
/* Starts a graceful stop: listeners close, requests that arrive from now on get UNAVAILABLE
 * (Stats and the methods numbered above it, admin and health, are still served), the
 * requests already received run and are answered, then the loop exits (td_server_run
 * returns). Connections still busy after --drain-timeout seconds are closed. Idempotent.
 * Thread: any (a worker running an admin Drain call included); the loop does the work. */
void td_server_drain(struct td_server *srv);
/* Returns: true once a drain has started (health checks report NOT_SERVING). Thread: any. */
bool td_server_draining(const struct td_server *srv);
/* Runs the loop until a signal stops the server. */
int td_server_run(struct td_server *srv);
void td_server_fini(struct td_server *srv);

/* ---- connections, on the loop thread (conn.c) ---- */
/* Wraps an accepted non-blocking fd in a connection with a new session. [loop] */
void td_conn_accept(struct td_server *srv, int fd, const char *peer, bool is_tcp);
/* Closes every connection (shutdown). [loop] */
void td_conn_close_all(struct td_server *srv);
/* The async callback: applies what workers asked for (poll events, closing). [loop] */
void td_conn_on_async(uv_async_t *h);
/* The out_timer callback: disconnects every client whose output buffer has stayed above
 * --output-buffer-soft for --output-buffer-soft-seconds. [loop] */
void td_conn_on_out_timer(uv_timer_t *h);
/* The conn_timer callback: closes connections past --idle-timeout, --auth-timeout or
 * --read-timeout. [loop] */
void td_conn_on_timeout_timer(uv_timer_t *h);
/* A long Run is in progress on the worker holding c: hand reading to the loop (if the worker
 * had it) so a Cancel sent meanwhile is read. Thread: the worker holding c. */
void td_conn_worker_busy(struct td_conn *c);
/* Returns: the stream offset just past what the parser consumed. Thread: the read-state
 * owner. */
static inline uint64_t td_conn_parsed_offset(struct td_conn *c)
{
    return atomic_load_explicit(&c->bytes_in, memory_order_relaxed) - (c->in_end - c->in_start);
}
/* Returns: true when the frame whose body the parser just consumed reached the socket after
 * a drain began (it gets UNAVAILABLE). Thread: the read-state owner. */
static inline bool td_conn_after_drain(struct td_conn *c)
{
    return atomic_load_explicit(&c->srv->drain_snapped, memory_order_acquire) &&
           td_conn_parsed_offset(c) > c->drain_limit;
}
/* Returns: the bytes c has queued for output but not yet written. Thread: any. */
uint64_t td_conn_output_bytes(struct td_conn *c);

/* ---- connection, called from workers (conn.c) ---- */
/* Sends one response frame: header, body (copied if it must wait), data (zero copy; `hold`
 * keeps it alive and is released once written). Writes directly when nothing is queued.
 * Thread: any. Ownership: takes `hold`. */
void td_conn_send(struct td_conn *c, uint32_t method, uint64_t call_id, const uint8_t *body,
                  size_t body_len, const uint8_t *data, size_t data_len,
                  struct td_tensor *hold, bool close_after);
/* Writes the replies gathered while more requests were queued. Thread: the worker holding
 * c, when its job queue is empty. */
void td_conn_flush(struct td_conn *c);
/* Asks the loop thread to re-examine c (poll events, close). Thread: any. */
void td_conn_attention(struct td_conn *c);
void td_conn_unref(struct td_conn *c);
/* Reads and parses requests on the worker that holds c (reader_worker set), spinning briefly
 * for the next request so a pipelined client costs no thread hop. Returns once it queued a
 * job, or after handing reading back to the loop. Thread: the worker holding c. */
void td_conn_worker_read(struct td_conn *c);
void td_job_free(struct td_job *j);

/* Whether c must stop reading requests for now: too many jobs or reply frames queued, or
 * more unsent reply bytes than --output-buffer-soft. Thread: any, under c->mu. */
static inline bool td_conn_input_full(const struct td_conn *c)
{
    return c->qlen >= TD_QUEUE_HIGH || c->oframes >= TD_OUTQ_HIGH ||
           c->obytes > c->srv->out_soft;
}

/* ---- spinning helpers ---- */
static inline void td_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline long td_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* How long a worker that holds a session spins reading its socket for the next request, and
 * how long an idle worker spins on the pool before sleeping. The pool spin is short: on a
 * machine with few cores a spinning idle worker takes the CPU from the threads doing work. */
#define TD_SPIN_NS 50000L
#define TD_POOL_SPIN_NS 10000L

/* ---- pool (pool.c) ---- */
/* Starts nthreads workers running `process` on ready sessions. p must be the server's
 * srv->pool (the scheduling options come from srv->cfg: --fair-scheduling and
 * --user-max-concurrency). Returns: 0 or -1 (logged). */
int td_pool_start(struct td_pool *p, int nthreads, void (*process)(struct td_conn *));
/* Queues c behind the other ready sessions of its user (a reference travels with it); the
 * workers take the users in turn. Thread: c's submitter (the thread that set c->scheduled,
 * or the worker holding c). */
void td_pool_submit(struct td_pool *p, struct td_conn *c);
/* Lets the workers finish what is queued, then joins them. */
void td_pool_stop(struct td_pool *p);
/* Runs every ready session on the calling thread, picked and charged as a worker does
 * (for a pool started with 0 threads: the fuzz harness). Returns: whether any ran. */
bool td_pool_run_ready(struct td_pool *p);
/* Sets the user's own limit on workers holding its sessions at once (0: the pool's
 * --user-max-concurrency again) and wakes workers a raised limit lets in. Returns: 0, or -1
 * without fair scheduling (there is no per-user queue to limit). Thread: any. */
int td_pool_set_user_max(struct td_pool *p, struct td_sched *s, int max);
/* Reads the user's effective limit (0: unlimited) and its running workers. Thread: any. */
void td_pool_user_state(struct td_pool *p, const struct td_sched *s, int *max, int *running);

/* ---- sessions (session.c) ---- */
/* Returns: a new empty session (its own id, no user), or NULL out of memory. */
struct td_session *td_session_new(struct td_server *srv);
/* Frees everything the session holds, and the session. NULL is fine. Thread: any, once
 * nothing else uses it. */
void td_session_free(struct td_session *s);
/* The end of a connection's use of s: parks s when it is resumable (a lease, a completed
 * handshake), its connection did not end cleanly (clean_eof: the client closed at a frame
 * boundary, so it is done), no admin killed it and the server is not draining; frees it
 * otherwise. Thread: the last holder of the connection. */
void td_session_release(struct td_session *s, bool clean_eof);
/* Takes the parked session of user u whose resume token hashes to digest off the parked
 * list (compared in constant time). Returns: it, or NULL. Thread: any. */
struct td_session *td_session_unpark(struct td_server *srv, const struct td_user *u,
                                     const uint8_t digest[32]);
/* Frees the parked sessions whose lease ended by now_ns (every one when all). Returns: how
 * many. Thread: any (the loop's park_timer; shutdown). */
int td_session_expire(struct td_server *srv, long now_ns, bool all);
/* Frees the parked session with this id (KillSession). Returns: whether there was one. */
bool td_session_kill_parked(struct td_server *srv, uint64_t id);
/* The loop's park_timer callback. */
void td_session_on_park_timer(uv_timer_t *h);
void td_session_init(struct td_session *s, struct td_server *srv);
void td_session_fini(struct td_session *s);
extern const struct td_idtable_ops td_session_table_ops;
void td_registry_add(struct td_server *srv, struct td_conn *c);
void td_registry_remove(struct td_server *srv, struct td_conn *c);
void td_registry_totals(struct td_server *srv, uint64_t *sessions, uint64_t *bytes);

/* Attaches the authenticated user to s (under srv->reg_mu, so ListSessions may read it) and
 * makes the user's account the parent of the session's. Thread: the read-state owner, before
 * the session allocates anything. */
void td_session_set_user(struct td_session *s, struct td_user *u);
/* Charges n live tensor ids to the session's user. Returns: 0 or TD_ELIMIT (over the user's
 * max_tensors, err filled, nothing charged). Thread: the worker holding the session. */
int td_session_charge_tensors(struct td_session *s, uint64_t n, struct td_error *err) TD_WUR;
void td_session_release_tensors(struct td_session *s, uint64_t n);

/* ---- authentication, users, quotas (auth.c) ---- */
/* Loads --token-file (or makes the one "local" admin user without one), applies the quota
 * defaults and sets up srv->total. Returns: 0 or -1 (logged). */
int td_auth_init(struct td_server *srv);
void td_auth_fini(struct td_server *srv);
/* Whether clients must present a token (a token file was given). */
bool td_auth_enabled(const struct td_server *srv);
/* Authenticates a Handshake's token for connection c: refuses while c's peer address is
 * locked out after failures, compares the token's SHA-256 with every known digest in
 * constant time, logs and counts a failure, then charges the user's session quota and
 * attaches the user to c's session. With a resume token (non-empty `resume`) it instead
 * replaces c's fresh session by the user's parked session the token names (which keeps its
 * session quota); that needs c to have no job queued or running, and a wrong token counts
 * as a failed attempt. Returns: 0, TD_EAUTH (bad token), TD_EUNAVAIL (locked out),
 * TD_ELIMIT (too many sessions), TD_ENOTFOUND (no such parked session) or TD_EPRECOND
 * (resume behind other requests), err filled. Thread: c's read-state owner. */
int td_auth_handshake(struct td_conn *c, const char *token, const char *resume,
                      struct td_error *err) TD_WUR;
/* Makes a resume token: 32 bytes from the kernel's CSPRNG as 64 hex digits in hex, and the
 * SHA-256 of the bytes in digest (what the session keeps). Returns: 0 or -1 (no random
 * bytes). Thread: any. */
int td_auth_new_resume_token(char hex[65], uint8_t digest[32]);
/* Returns: the user called name, or NULL. Thread: any. */
struct td_user *td_auth_find_user(struct td_server *srv, const char *name);
/* Sets *users to the server's users (they live as long as the server). Returns: how many.
 * Thread: any. */
int td_auth_users(struct td_server *srv, struct td_user **users);

/* ---- handlers (handlers.c) ---- */
/* Worker entry: runs the queued jobs of c in order. */
void td_conn_process(struct td_conn *c);
/* Packs the ListOps reply once. Returns: 0 or -1. */
int td_handlers_init(struct td_server *srv);
void td_handlers_fini(struct td_server *srv);
/* Returns: the protobuf descriptor of method's request, NULL for an unknown method. */
const ProtobufCMessageDescriptor *td_request_descriptor(uint32_t method);

/* ---- Run decoding (rundecode.c) ---- */
/* Decodes a RunRequest into g with every count and value range-checked before allocating.
 * Node inputs/outputs and attr names/strings point into req, which must outlive g.
 * Returns: 0 or a status (err names the node). */
int td_run_decode(const void *req, uint64_t max_nodes, struct td_graph *g,
                  struct td_error *err) TD_WUR;
/* Frees what td_run_decode allocated (not req's memory). */
void td_run_graph_free(struct td_graph *g);

#endif
