/*
 * auth.c - authentication, users and quotas.
 *
 * The token file (--token-file, config key auth_token_file) holds "TOKEN USER ROLE" lines
 * (ROLE user or admin; '#' starts a comment). Only SHA-256 digests of the tokens are kept in
 * memory. A Handshake's token is hashed and compared with every digest using nettle's
 * memeql_sec, so neither the comparison nor the number of entries tried depends on where a
 * guess first differs. Without a token file there is one user, "local", an admin: the daemon
 * then refuses non-loopback TCP listeners (server.c) and --allow-remote (config.c).
 *
 * Failed tokens are rate limited per peer address (the IP without the port; Unix-socket
 * clients by their uid): after the k-th consecutive failure the address is locked out for
 * --auth-fail-delay-ms * 2^(k-1), at most 60 s (exponential back-off). Handshakes during a
 * lockout are refused with UNAVAILABLE without looking at the token, so guessing speed is
 * bounded however many connections an attacker opens. A success clears the address.
 *
 * Quotas: each user has an account (bytes; the parent of its sessions' accounts, so every
 * allocation is charged to session, user and server before it happens), a count of live
 * tensor ids and a count of concurrent sessions.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "log.h"
#include "server.h"

#define PEER_SLOTS 256
#define MAX_DELAY_NS (60L * 1000000000L)
#define MIN_TOKEN_LEN 16

struct token {
    uint8_t digest[SHA256_DIGEST_SIZE];
    struct td_user *user;
};

struct peer {
    char key[sizeof ((struct td_conn *)0)->peer]; /* "" : free */
    uint32_t failures;
    long until_ns, last_ns;
};

struct td_auth {
    bool enabled;
    struct td_user *users;
    int nusers;
    struct token *tokens;
    int ntokens;
    long base_delay_ns;
    pthread_mutex_t mu;          /* peers */
    struct peer peers[PEER_SLOTS];
};

static void digest_of(const char *s, size_t n, uint8_t out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, n, (const uint8_t *)s);
    sha256_digest(&h, SHA256_DIGEST_SIZE, out);
}

static void user_init(struct td_user *u, const char *name, bool admin,
                      const struct td_server *srv)
{
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->admin = admin;
    atomic_init(&u->account.bytes, 0);
    atomic_init(&u->account.peak, 0);
    atomic_init(&u->account.limit, (uint64_t)srv->cfg->user_max_bytes);
    u->account.parent = (struct td_account *)&srv->total;
    snprintf(u->label, sizeof u->label, "user '%s'", u->name);
    u->account.name = u->label;
    atomic_init(&u->max_tensors, (uint64_t)srv->cfg->user_max_tensors);
    atomic_init(&u->tensors, 0);
    atomic_init(&u->max_sessions, (uint64_t)srv->cfg->user_max_sessions);
    atomic_init(&u->sessions, 0);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof ((struct td_user *)0)->name)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.' && *p != '@')
            return false;
    return true;
}

/* Parses the token file into a. Returns: 0 or -1 (logged with the line). */
static int load_tokens(struct td_auth *a, const struct td_server *srv, const char *path)
{
    int rc = -1;
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        TD_LOG(TD_LOG_ERROR, "cannot read the token file", "file=%s err=\"%s\"", path,
               strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH))) {
        TD_LOG(TD_LOG_ERROR, "token file is accessible by other users", "file=%s mode=%04o "
               "err=\"chmod o-rwx it (0600 or 0640)\"", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t got = getline(&line, &cap, f);
        if (got < 0)
            break;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok)
            continue;
        char *user = strtok_r(NULL, " \t\r\n", &save);
        char *role = strtok_r(NULL, " \t\r\n", &save);
        char *extra = strtok_r(NULL, " \t\r\n", &save);
        const char *why = NULL;
        if (!user || !role || extra)
            why = "want TOKEN USER ROLE";
        else if (strlen(tok) < MIN_TOKEN_LEN)
            why = "token shorter than 16 characters";
        else if (!valid_name(user))
            why = "user names are 1-63 of A-Z a-z 0-9 _ - . @";
        else if (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0)
            why = "role must be user or admin";
        if (why) {
            TD_LOG(TD_LOG_ERROR, "bad token file line", "file=%s line=%u err=\"%s\"", path,
                   lineno, why);
            goto out;
        }
        bool admin = role[0] == 'a';
        struct td_user *u = NULL;
        for (int i = 0; i < a->nusers; i++)
            if (strcmp(a->users[i].name, user) == 0)
                u = &a->users[i];
        if (u && u->admin != admin) {
            TD_LOG(TD_LOG_ERROR, "bad token file line", "file=%s line=%u err=\"user %s has "
                   "two roles\"", path, lineno, user);
            goto out;
        }
        uint8_t d[SHA256_DIGEST_SIZE];
        digest_of(tok, strlen(tok), d);
        memset(tok, 0, strlen(tok));
        for (int i = 0; i < a->ntokens; i++)
            if (memcmp(a->tokens[i].digest, d, sizeof d) == 0) {
                TD_LOG(TD_LOG_ERROR, "bad token file line", "file=%s line=%u err=\"token "
                       "repeated\"", path, lineno);
                goto out;
            }
        if (!u) {
            /* users[] must not move once sessions point at it: it only grows while loading,
             * before any session exists. */
            struct td_user *nu = td_realloc(a->users, (size_t)(a->nusers + 1) * sizeof *nu);
            if (!nu)
                goto nomem;
            a->users = nu;
            u = &a->users[a->nusers++];
            user_init(u, user, admin, srv);
        }
        struct token *nt = td_realloc(a->tokens, (size_t)(a->ntokens + 1) * sizeof *nt);
        if (!nt)
            goto nomem;
        a->tokens = nt;
        memcpy(a->tokens[a->ntokens].digest, d, sizeof d);
        a->tokens[a->ntokens].user = (struct td_user *)(uintptr_t)(u - a->users);
        a->ntokens++;
    }
    if (a->ntokens == 0) {
        TD_LOG(TD_LOG_ERROR, "token file has no tokens", "file=%s", path);
        goto out;
    }
    /* Tokens stored user indexes, and account names pointed into users[], while users[]
     * could still move: point them at the final array. */
    for (int i = 0; i < a->ntokens; i++)
        a->tokens[i].user = &a->users[(uintptr_t)a->tokens[i].user];
    for (int i = 0; i < a->nusers; i++)
        a->users[i].account.name = a->users[i].label;
    rc = 0;
    goto out;
nomem:
    TD_LOG(TD_LOG_ERROR, "cannot load the token file", "file=%s err=\"out of memory\"", path);
out:
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

int td_auth_init(struct td_server *srv)
{
    const struct td_config *cfg = srv->cfg;
    atomic_init(&srv->total.bytes, 0);
    atomic_init(&srv->total.peak, 0);
    atomic_init(&srv->total.limit,
                cfg->max_total_bytes > 0 ? (uint64_t)cfg->max_total_bytes : srv->phys_mem);
    srv->total.parent = NULL;
    srv->total.name = "server (max_total_bytes)";
    struct td_auth *a = td_calloc(1, sizeof *a);
    if (!a) {
        TD_LOG(TD_LOG_ERROR, "cannot set up authentication", "err=\"out of memory\"");
        return -1;
    }
    a->base_delay_ns = (long)cfg->auth_fail_delay_ms * 1000000L;
    pthread_mutex_init(&a->mu, NULL);
    srv->auth = a;
    if (cfg->token_file) {
        a->enabled = true;
        if (load_tokens(a, srv, cfg->token_file) != 0) {
            td_auth_fini(srv);
            return -1;
        }
        TD_LOG(TD_LOG_INFO, "authentication on", "file=%s users=%d tokens=%d",
               cfg->token_file, a->nusers, a->ntokens);
        return 0;
    }
    a->users = td_malloc(sizeof *a->users);
    if (!a->users) {
        td_auth_fini(srv);
        return -1;
    }
    a->nusers = 1;
    user_init(&a->users[0], "local", true, srv);
    return 0;
}

void td_auth_fini(struct td_server *srv)
{
    struct td_auth *a = srv->auth;
    if (!a)
        return;
    if (a->tokens)
        memset(a->tokens, 0, (size_t)a->ntokens * sizeof *a->tokens);
    td_free(a->tokens);
    td_free(a->users);
    pthread_mutex_destroy(&a->mu);
    td_free(a);
    srv->auth = NULL;
}

bool td_auth_enabled(const struct td_server *srv)
{
    return srv->auth && srv->auth->enabled;
}

struct td_user *td_auth_find_user(struct td_server *srv, const char *name)
{
    struct td_auth *a = srv->auth;
    for (int i = 0; a && i < a->nusers; i++)
        if (strcmp(a->users[i].name, name) == 0)
            return &a->users[i];
    return NULL;
}

int td_auth_users(struct td_server *srv, struct td_user **users)
{
    struct td_auth *a = srv->auth;
    *users = a ? a->users : NULL;
    return a ? a->nusers : 0;
}

/* The rate-limit key of c's peer: its IP address, or "unix uid N". */
static void peer_key(const struct td_conn *c, char *key, size_t n)
{
    if (!c->is_tcp) {
        struct ucred cr;
        socklen_t len = sizeof cr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
            snprintf(key, n, "unix uid %u", (unsigned)cr.uid);
        else
            snprintf(key, n, "unix");
        return;
    }
    snprintf(key, n, "%s", c->peer);
    char *colon = strrchr(key, ':');
    if (colon)
        *colon = '\0';
}

/* The slot for key, or a free or the least recently used one (reset). [a->mu] */
static struct peer *peer_slot(struct td_auth *a, const char *key, bool create, long now)
{
    struct peer *lru = &a->peers[0];
    for (int i = 0; i < PEER_SLOTS; i++) {
        struct peer *p = &a->peers[i];
        if (p->key[0] && strcmp(p->key, key) == 0)
            return p;
        if (!p->key[0] || (lru->key[0] && p->last_ns < lru->last_ns))
            lru = p;
    }
    if (!create)
        return NULL;
    memset(lru, 0, sizeof *lru);
    snprintf(lru->key, sizeof lru->key, "%s", key);
    lru->last_ns = now;
    return lru;
}

/* Finds the user whose token digest matches, comparing every digest. */
static struct td_user *match_token(const struct td_auth *a, const char *token)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    digest_of(token, strlen(token), d);
    struct td_user *found = NULL;
    for (int i = 0; i < a->ntokens; i++) {
        int eq = memeql_sec(d, a->tokens[i].digest, sizeof d);
        found = eq ? a->tokens[i].user : found;
    }
    return found;
}

/* Counts a failed attempt of the peer `key` and sets its lockout. Returns: the lockout in ns;
 * *failures the peer's count. [not a->mu] */
static long count_failure(struct td_auth *a, const char *key, long now, uint32_t *failures)
{
    pthread_mutex_lock(&a->mu);
    struct peer *p = peer_slot(a, key, true, now);
    p->failures++;
    p->last_ns = now;
    long delay = a->base_delay_ns;
    for (uint32_t k = 1; k < p->failures && delay < MAX_DELAY_NS; k++)
        delay *= 2;
    if (delay > MAX_DELAY_NS)
        delay = MAX_DELAY_NS;
    p->until_ns = now + delay;
    *failures = p->failures;
    pthread_mutex_unlock(&a->mu);
    return delay;
}

/* 64 hex digits -> 32 bytes. Returns: false for anything else. */
static bool parse_resume_token(const char *hex, uint8_t out[32])
{
    if (strlen(hex) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = hex[2 * i + k];
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                d = (unsigned)(ch - 'a' + 10);
            else
                return false;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return true;
}

/* A resume may reach the daemon before it noticed that the session's old connection is dead
 * (a half-open TCP connection, a reset still in flight): closes the live connection whose
 * session has this token, so the session parks and a retry finds it. Returns: the session's
 * id, or 0 when no live connection has it. */
static uint64_t detach_live(struct td_server *srv, const struct td_user *u,
                            const uint8_t digest[32], const struct td_conn *self)
{
    uint64_t id = 0;
    pthread_mutex_lock(&srv->reg_mu);
    for (struct td_conn *o = srv->reg_head; o; o = o->reg_next) {
        struct td_session *s = o->sess;
        int eq = memeql_sec(s->resume_digest, digest, 32);
        if (eq && o != self && s->user == u && s->lease_s > 0 && !id) {
            id = s->id;
            pthread_mutex_lock(&o->mu);
            o->broken = true;
            pthread_mutex_unlock(&o->mu);
            td_conn_attention(o);
        }
    }
    pthread_mutex_unlock(&srv->reg_mu);
    return id;
}

/* Reattaches the parked session `resume` names to c (see td_auth_handshake). */
static int resume_session(struct td_conn *c, struct td_user *u, const char *resume,
                          const char *key, struct td_error *err)
{
    struct td_server *srv = c->srv;
    /* Swapping the session is safe only while nothing else of c uses it: no job queued or
     * running (then this reader is the loop, which also runs c's timers). */
    pthread_mutex_lock(&c->mu);
    bool idle = !c->scheduled && !c->qhead;
    pthread_mutex_unlock(&c->mu);
    if (!idle)
        return td_error_set(err, TD_EPRECOND, "handshake: a resuming Handshake must be the "
                            "connection's first request");
    uint8_t raw[32], d[SHA256_DIGEST_SIZE];
    struct td_session *s = NULL;
    if (parse_resume_token(resume, raw)) {
        digest_of((const char *)raw, sizeof raw, d);
        s = td_session_unpark(srv, u, d);
        uint64_t live = s ? 0 : detach_live(srv, u, d, c);
        if (live) {
            TD_LOG(TD_LOG_INFO, "resume of an attached session", "peer=%s session=%" PRIu64
                   " user=%s: closing its old connection", c->peer, live, u->name);
            return td_error_set(err, TD_EUNAVAIL, "handshake: session %" PRIu64 " is still "
                                "attached to its old connection, which the daemon is closing "
                                "now; retry the resume shortly", live);
        }
    }
    if (!s) {
        uint32_t failures = 0;
        long delay = srv->auth->enabled ? count_failure(srv->auth, key, td_now_ns(),
                                                        &failures) : 0;
        TD_LOG(TD_LOG_WARN, "resume failed", "peer=%s user=%s failures=%" PRIu32
               " lockout_ms=%ld", c->peer, u->name, failures, delay / 1000000L);
        return td_error_set(err, TD_ENOTFOUND, "handshake: no parked session of user '%s' "
                            "has this resume token (its lease ended, it was resumed or "
                            "killed, or it never existed)", u->name);
    }
    pthread_mutex_lock(&srv->reg_mu);
    pthread_mutex_lock(&c->mu);
    struct td_session *fresh = c->sess;
    c->sess = s;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&srv->reg_mu);
    s->resume_pending = true;
    TD_LOG(TD_LOG_INFO, "session resumed", "peer=%s session=%" PRIu64 " user=%s "
           "replaces=%" PRIu64, c->peer, s->id, u->name, fresh->id);
    td_session_free(fresh);   /* never authenticated: holds nothing */
    return 0;
}

int td_auth_handshake(struct td_conn *c, const char *token, const char *resume,
                      struct td_error *err)
{
    struct td_server *srv = c->srv;
    struct td_auth *a = srv->auth;
    struct td_user *u = &a->users[0];
    char key[sizeof c->peer];
    peer_key(c, key, sizeof key);
    if (a->enabled) {
        long now = td_now_ns();
        pthread_mutex_lock(&a->mu);
        struct peer *p = peer_slot(a, key, false, now);
        if (p && p->until_ns > now) {
            long left_ms = (p->until_ns - now) / 1000000L + 1;
            pthread_mutex_unlock(&a->mu);
            TD_LOG(TD_LOG_WARN, "handshake refused during lockout", "peer=%s key=\"%s\" "
                   "retry_ms=%ld", c->peer, key, left_ms);
            return td_error_set(err, TD_EUNAVAIL, "handshake: too many failed authentication "
                                "attempts from %s; retry in %ld ms", key, left_ms);
        }
        pthread_mutex_unlock(&a->mu);
        u = token && token[0] ? match_token(a, token) : NULL;
        if (!u) {
            uint32_t failures;
            long delay = count_failure(a, key, now, &failures);
            TD_LOG(TD_LOG_WARN, "authentication failed", "peer=%s key=\"%s\" failures=%" PRIu32
                   " lockout_ms=%ld token=%s", c->peer, key, failures, delay / 1000000L,
                   token && token[0] ? "wrong" : "missing");
            return td_error_set(err, TD_EAUTH, "handshake: %s", token && token[0] ?
                                "invalid token" : "this daemon requires a token "
                                "(HandshakeRequest.auth_token)");
        }
        pthread_mutex_lock(&a->mu);
        p = peer_slot(a, key, false, now);
        if (p)
            memset(p, 0, sizeof *p);
        pthread_mutex_unlock(&a->mu);
    }
    if (resume && resume[0])
        return resume_session(c, u, resume, key, err);
    uint64_t max = atomic_load(&u->max_sessions);
    uint64_t cur = atomic_fetch_add(&u->sessions, 1) + 1;
    if (max && cur > max) {
        atomic_fetch_sub(&u->sessions, 1);
        return td_error_set(err, TD_ELIMIT, "handshake: user '%s' already has %" PRIu64
                            " sessions, quota max_sessions is %" PRIu64, u->name, cur - 1, max);
    }
    c->sess->holds_session_quota = true;
    td_session_set_user(c->sess, u);
    TD_LOG(TD_LOG_DEBUG, "authenticated", "peer=%s session=%" PRIu64 " user=%s role=%s",
           c->peer, c->sess->id, u->name, u->admin ? "admin" : "user");
    return 0;
}

int td_auth_new_resume_token(char hex[65], uint8_t digest[32])
{
    uint8_t raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            return -1;
    }
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    digest_of((const char *)raw, sizeof raw, digest);
    return 0;
}
