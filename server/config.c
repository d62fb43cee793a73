/*
 * config.c - the option table, the command-line parser and the config file reader (Redis
 * style: one row per option with its type, range and default; parsing, the file reader and
 * --help all read the table).
 *
 * The config file is YAML (one mapping of option keys to values), read with libyaml: a small,
 * long-maintained C library packaged in Debian (libyaml-dev) whose event parser reports exact
 * line numbers and never evaluates anything, in a format every deployment tool can write.
 * Keys are the option names with '_' for '-' (max_frame_body); `listen` takes a string or a
 * list of strings; flags take true or false. See deploy/tensord.conf.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "log.h"

enum opt_type { OPT_INT, OPT_LISTEN, OPT_LEVEL, OPT_FLAG, OPT_STR, OPT_PATH };

struct opt {
    const char *name;
    enum opt_type type;
    int64_t min, max;
    const char *def;         /* default as text (applied through the same parser) */
    size_t off;              /* offset of the field in struct td_config */
    const char *help;
};

#define OFF(f) offsetof(struct td_config, f)

static const struct opt opts[] = {
    {"config", OPT_PATH, 0, 0, NULL, OFF(config_file),
     "read options from this YAML file first (keys: the option names with '_' for '-'; see "
     "deploy/tensord.conf); command-line options override it"},
    {"listen", OPT_LISTEN, 0, 0, NULL, OFF(listen),
     "address to listen on, repeatable: tcp://HOST:PORT (port 0 picks one) or "
     "unix:///path (default " TD_DEFAULT_LISTEN ")"},
    {"threads", OPT_INT, 1, 256, "2", OFF(threads), "worker threads that run requests"},
    {"compute-threads", OPT_INT, 0, 256, "0", OFF(compute_threads),
     "threads one large elementwise or reduction kernel may use, the calling worker "
     "included (0: the number of online CPUs, 1: serial)"},
    {"max-frame-body", OPT_INT, 64, INT64_C(1) << 30, "16777216", OFF(max_frame_body),
     "largest protobuf body of one frame, bytes"},
    {"max-frame-data", OPT_INT, 1, INT64_C(1) << 40, "268435456", OFF(max_frame_data),
     "largest raw data section of one frame, bytes (bigger tensors travel in chunks)"},
    {"max-graph-nodes", OPT_INT, 1, 1 << 20, "4096", OFF(max_graph_nodes),
     "most nodes in one Run request"},
    {"max-graph-work", OPT_INT, 0, INT64_MAX, "68719476736", OFF(max_graph_work),
     "most estimated element operations in one Run request (about a minute of one core's "
     "generic kernel work by default; matmul counts multiply-adds / 32; 0: unbounded)"},
    {"max-session-ids", OPT_INT, 1, INT64_C(1) << 32, "1048576", OFF(max_session_ids),
     "most live tensor ids per session"},
    {"max-session-bytes", OPT_INT, 0, INT64_MAX, "0", OFF(max_session_bytes),
     "memory one session may hold, bytes (0: the machine's physical memory)"},
    {"max-frame-body-unauth", OPT_INT, 64, INT64_C(1) << 30, "65536",
     OFF(max_frame_body_unauth),
     "largest body (and data section) of a frame before the handshake authenticated the "
     "client, bytes"},
    {"max-total-bytes", OPT_INT, 0, INT64_MAX, "0", OFF(max_total_bytes),
     "memory all sessions together may hold, bytes (0: the machine's physical memory)"},
    {"user-max-bytes", OPT_INT, 0, INT64_MAX, "0", OFF(user_max_bytes),
     "default quota: memory one user's sessions may hold together, bytes (0: unlimited; "
     "SetQuota changes it per user)"},
    {"user-max-tensors", OPT_INT, 0, INT64_MAX, "0", OFF(user_max_tensors),
     "default quota: live tensor ids over one user's sessions (0: unlimited)"},
    {"user-max-sessions", OPT_INT, 0, INT64_C(1) << 32, "0", OFF(user_max_sessions),
     "default quota: concurrent sessions of one user (0: unlimited)"},
    {"user-max-concurrency", OPT_INT, -1, 256, "-1", OFF(user_max_concurrency),
     "workers one user's sessions may occupy at once, so other users find a free worker "
     "(0: unlimited; -1: threads - 1, at least 1, with --token-file, unlimited without one, "
     "where every client is the one local user)"},
    {"fair-scheduling", OPT_INT, 0, 1, "1", OFF(fair_scheduling),
     "1: workers serve the users with ready sessions in turn (round robin; a user's sessions "
     "queue behind each other) and --user-max-concurrency applies; 0: one FIFO of sessions "
     "for everyone, no per-user limit"},
    {"token-file", OPT_PATH, 0, 0, NULL, OFF(token_file),
     "authentication: a file of 'TOKEN USER ROLE' lines (ROLE user or admin; must not be "
     "readable by others; config key auth_token_file); clients send a token in the "
     "Handshake. Without it every client is the local admin and TCP stays on loopback"},
    {"auth-fail-delay-ms", OPT_INT, 0, 60000, "200", OFF(auth_fail_delay_ms),
     "after a failed token that peer address is refused for this long, doubling with each "
     "further failure up to 60 s"},
    {"output-buffer-soft", OPT_INT, 4096, INT64_C(1) << 40, "4194304", OFF(output_buffer_soft),
     "bytes of unsent replies (Get data included) above which the daemon stops reading a "
     "client's requests until it reads its replies (backpressure)"},
    {"output-buffer-hard", OPT_INT, 0, INT64_MAX, "1073741824", OFF(output_buffer_hard),
     "bytes of unsent replies above which a client is disconnected and its session freed; one "
     "reply alone never counts as over (0: no limit)"},
    {"output-buffer-soft-seconds", OPT_INT, 0, 1 << 30, "60", OFF(output_buffer_soft_seconds),
     "seconds a client's unsent replies may stay above --output-buffer-soft before it is "
     "disconnected and its session freed (0: no limit)"},
    {"metrics-listen", OPT_STR, 0, 0, NULL, OFF(metrics_listen),
     "serve Prometheus metrics over HTTP at GET /metrics on tcp://HOST:PORT (port 0 picks "
     "one; the bound address is logged); loopback only unless --allow-remote"},
    {"max-resume-lease", OPT_INT, 0, 7 * 24 * 3600, "600", OFF(max_resume_lease),
     "longest lease, in seconds, a client may ask for its session to be kept after its "
     "connection is lost (Handshake resume_lease_seconds; the session keeps its tensors and "
     "quota charges until resumed with its resume token or the lease ends; 0: sessions are "
     "never resumable)"},
    {"drain-timeout", OPT_INT, 0, 1 << 30, "60", OFF(drain_timeout),
     "seconds a drain (SIGTERM) waits for queued requests and unsent replies before it closes "
     "the remaining connections (0: wait as long as it takes)"},
    {"idle-timeout", OPT_INT, 0, 1 << 30, "0", OFF(idle_timeout),
     "seconds a connection may send nothing while no request of it runs and no reply waits "
     "before it is closed and its session freed (any request, Health or Stats, keeps it "
     "alive; 0: never)"},
    {"auth-timeout", OPT_INT, 0, 1 << 30, "10", OFF(auth_timeout),
     "seconds a new connection has to complete an authenticated Handshake before it is "
     "closed (0: no limit)"},
    {"read-timeout", OPT_INT, 0, 1 << 30, "30", OFF(read_timeout),
     "seconds a frame's header and body may take to arrive once its first byte did, and the "
     "longest pause within a frame's data section, before the connection is closed (slow "
     "senders; time spent paused by backpressure does not count; 0: no limit)"},
    {"max-connections", OPT_INT, 0, 1 << 24, "1024", OFF(max_connections),
     "most client connections at once, TCP and Unix together; one more is closed at once "
     "(0: no limit)"},
    {"admin-reserved-connections", OPT_INT, 0, 1024, "1", OFF(admin_reserved_connections),
     "Unix-socket connections accepted beyond --max-connections that only an admin may keep: "
     "a non-admin Handshake there gets UNAVAILABLE and is closed"},
    {"tls-cert", OPT_PATH, 0, 0, NULL, OFF(tls_cert),
     "serve TLS on every TCP listener with this PEM certificate chain (server certificate "
     "first); needs --tls-key. Unix sockets stay plain"},
    {"tls-key", OPT_PATH, 0, 0, NULL, OFF(tls_key),
     "the PEM private key of --tls-cert (keep it readable by the daemon only)"},
    {"tls-client-ca", OPT_PATH, 0, 0, NULL, OFF(tls_client_ca),
     "mutual TLS: require a client certificate signed by a CA in this PEM bundle (the token "
     "is still checked)"},
    {"tls-min-version", OPT_STR, 0, 0, "1.2", OFF(tls_min_version),
     "oldest TLS version accepted: 1.2 or 1.3"},
    {"tls-ciphers", OPT_STR, 0, 0, NULL, OFF(tls_ciphers),
     "OpenSSL cipher list for TLS 1.2 connections (TLS 1.3 suites stay OpenSSL's default; "
     "default: OpenSSL's)"},
    {"log-level", OPT_LEVEL, 0, 0, "info", OFF(log_level), "debug, info, warn or error"},
    {"allow-remote", OPT_FLAG, 0, 0, NULL, OFF(allow_remote),
     "permit TCP listeners on non-loopback addresses; needs --token-file (authentication)"},
    {"help", OPT_FLAG, 0, 0, NULL, OFF(help), "print this help and exit"},
    {"version", OPT_FLAG, 0, 0, NULL, OFF(version), "print the version and exit"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static int apply(struct td_config *cfg, const struct opt *o, const char *val, char *msg, size_t n)
{
    char *base = (char *)cfg;
    switch (o->type) {
    case OPT_INT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end != '\0') {
            snprintf(msg, n, "--%s: '%s' is not an integer", o->name, val);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(msg, n, "--%s: %lld out of range [%" PRId64 ", %" PRId64 "]", o->name, v,
                     o->min, o->max);
            return -1;
        }
        *(int64_t *)(void *)(base + o->off) = (int64_t)v;
        return 0;
    }
    case OPT_LISTEN:
        if (cfg->nlisten >= TD_CONFIG_MAX_LISTEN) {
            snprintf(msg, n, "--listen: at most %d addresses", TD_CONFIG_MAX_LISTEN);
            return -1;
        }
        cfg->listen[cfg->nlisten++] = val;
        return 0;
    case OPT_LEVEL: {
        int l = td_log_level_parse(val);
        if (l < 0) {
            snprintf(msg, n, "--%s: '%s' is not one of debug, info, warn, error", o->name, val);
            return -1;
        }
        *(int *)(void *)(base + o->off) = l;
        return 0;
    }
    case OPT_FLAG:
        *(bool *)(void *)(base + o->off) = true;
        return 0;
    case OPT_STR:
        *(const char **)(void *)(base + o->off) = val;
        return 0;
    case OPT_PATH:
        if (val[0] == '\0') {
            snprintf(msg, n, "--%s: empty path", o->name);
            return -1;
        }
        *(const char **)(void *)(base + o->off) = val;
        return 0;
    }
    return -1;
}

/* Options that only the command line sets. */
static bool cmdline_only(const struct opt *o)
{
    return o->off == OFF(config_file) || o->off == OFF(help) || o->off == OFF(version);
}

/* The config-file key of o ("max_frame_body"; "auth_token_file" for --token-file). */
static void file_key(const struct opt *o, char *key, size_t n)
{
    if (o->off == OFF(token_file)) {
        snprintf(key, n, "auth_token_file");
        return;
    }
    snprintf(key, n, "%s", o->name);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
}

/* Copies a value read from the config file into cfg->strings. Returns: the copy or NULL. */
static const char *keep_string(struct td_config *cfg, const char *v, size_t len)
{
    if (len + 1 > sizeof cfg->strings - cfg->strings_used)
        return NULL;
    char *p = cfg->strings + cfg->strings_used;
    memcpy(p, v, len);
    p[len] = '\0';
    cfg->strings_used += len + 1;
    return p;
}

/* Applies one scalar from the config file to option o. Returns: 0 or -1 (msg filled). */
static int apply_file_value(struct td_config *cfg, const struct opt *o, const yaml_event_t *ev,
                            const char *file, char *msg, size_t n)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    unsigned line = (unsigned)ev->start_mark.line + 1;
    char key[64], sub[200];
    file_key(o, key, sizeof key);
    if (strlen(v) != len) {
        snprintf(msg, n, "%s:%u: %s: NUL byte in the value", file, line, key);
        return -1;
    }
    if (o->type == OPT_FLAG) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            snprintf(msg, n, "%s:%u: %s: '%.64s' is not true or false", file, line, key, v);
            return -1;
        }
        *(bool *)(void *)((char *)cfg + o->off) = v[0] == 't';
        return 0;
    }
    const char *val = v;
    if (o->type == OPT_LISTEN || o->type == OPT_PATH || o->type == OPT_STR) {
        val = keep_string(cfg, v, len);
        if (!val) {
            snprintf(msg, n, "%s:%u: %s: the file's strings exceed %d bytes", file, line, key,
                     TD_CONFIG_STRINGS);
            return -1;
        }
    }
    if (apply(cfg, o, val, sub, sizeof sub) != 0) {
        snprintf(msg, n, "%s:%u: %s (key %s)", file, line, sub, key);
        return -1;
    }
    return 0;
}

static const char *event_name(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "something else";
    }
}

/* Reads a YAML file holding one mapping of option keys to values into cfg.
 * Returns: 0 or -1 (msg names the file, line and key). */
static int load_file(struct td_config *cfg, const char *file, char *msg, size_t n)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(msg, n, "--config %s: %s", file, strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = -1;
    bool have_ev = false, in_map = false, in_list = false, seen[NOPTS];
    const struct opt *key = NULL;    /* the option whose value comes next */
    char kname[64] = "";
    memset(seen, 0, sizeof seen);
    if (!yaml_parser_initialize(&p)) {
        snprintf(msg, n, "--config %s: out of memory", file);
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&p, f);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(msg, n, "%s:%u: YAML error: %s", file, (unsigned)p.problem_mark.line + 1,
                     p.problem ? p.problem : "unknown");
            goto out;
        }
        have_ev = true;
        unsigned line = (unsigned)ev.start_mark.line + 1;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT) {
            /* framing only */
        } else if (!in_map) {
            if (t != YAML_MAPPING_START_EVENT) {
                snprintf(msg, n, "%s:%u: want 'option: value' lines at the top level, got %s",
                         file, line, event_name(t));
                goto out;
            }
            in_map = true;
        } else if (in_list) {
            if (t == YAML_SEQUENCE_END_EVENT) {
                in_list = false;
                key = NULL;
            } else if (t != YAML_SCALAR_EVENT) {
                snprintf(msg, n, "%s:%u: %s: list items must be strings", file, line, kname);
                goto out;
            } else if (apply_file_value(cfg, key, &ev, file, msg, n) != 0) {
                goto out;
            }
        } else if (!key) {
            if (t == YAML_MAPPING_END_EVENT) {
                in_map = false;
            } else if (t != YAML_SCALAR_EVENT) {
                snprintf(msg, n, "%s:%u: want an option name, got %s", file, line,
                         event_name(t));
                goto out;
            } else {
                const char *k = (const char *)ev.data.scalar.value;
                for (size_t i = 0; i < NOPTS && !key; i++) {
                    file_key(&opts[i], kname, sizeof kname);
                    if (!cmdline_only(&opts[i]) && strcmp(kname, k) == 0)
                        key = &opts[i];
                }
                if (!key) {
                    snprintf(msg, n, "%s:%u: unknown option '%.64s' (keys are the --help "
                             "names with '_' for '-')", file, line, k);
                    goto out;
                }
                if (seen[key - opts]) {
                    snprintf(msg, n, "%s:%u: %s given twice", file, line, kname);
                    goto out;
                }
                seen[key - opts] = true;
            }
        } else if (t == YAML_SEQUENCE_START_EVENT && key->type == OPT_LISTEN) {
            in_list = true;
        } else if (t != YAML_SCALAR_EVENT) {
            snprintf(msg, n, "%s:%u: %s: want a single value, got %s", file, line, kname,
                     event_name(t));
            goto out;
        } else {
            if (apply_file_value(cfg, key, &ev, file, msg, n) != 0)
                goto out;
            key = NULL;
        }
        yaml_event_delete(&ev);
        have_ev = false;
    }
    rc = 0;
out:
    if (have_ev)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

/* Finds the option named by "name" or "name=value" (arg without the dashes). */
static const struct opt *find_opt(const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t k = 0; k < NOPTS; k++)
        if (strlen(opts[k].name) == len && strncmp(opts[k].name, arg, len) == 0)
            return &opts[k];
    return NULL;
}

/* Reads the file named by --config, if any, into cfg. Returns: 0 or -1 (msg filled). */
static int load_config_arg(struct td_config *cfg, int argc, char **argv, char *msg, size_t n)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        const struct opt *o = find_opt(argv[i] + 2);
        if (!o || o->type == OPT_FLAG)
            continue;
        const char *eq = strchr(argv[i], '=');
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!eq)
            i++;
        if (o->off != OFF(config_file) || !val)
            continue;
        if (cfg->config_file) {
            snprintf(msg, n, "--config given twice");
            return -1;
        }
        cfg->config_file = val;
    }
    return cfg->config_file ? load_file(cfg, cfg->config_file, msg, n) : 0;
}

int td_config_parse(struct td_config *cfg, int argc, char **argv, char *msg, size_t n)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def && apply(cfg, &opts[i], opts[i].def, msg, n) != 0)
            return -1;
    if (load_config_arg(cfg, argc, argv, msg, n) != 0)
        return -1;
    bool cmdline_listen = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(msg, n, "unexpected argument '%s'", arg);
            return -1;
        }
        arg += 2;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct opt *o = NULL;
        for (size_t k = 0; k < NOPTS; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, arg, len) == 0)
                o = &opts[k];
        if (!o) {
            snprintf(msg, n, "unknown option '%s' (see --help)", argv[i]);
            return -1;
        }
        const char *val = NULL;
        if (o->type == OPT_FLAG) {
            if (eq) {
                snprintf(msg, n, "--%s takes no value", o->name);
                return -1;
            }
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(msg, n, "--%s needs a value", o->name);
            return -1;
        }
        if (o->type == OPT_LISTEN && !cmdline_listen) {
            cmdline_listen = true;   /* the command line's addresses replace the file's */
            cfg->nlisten = 0;
        }
        if (o->off == OFF(config_file)) {
            continue;                /* read above */
        }
        if (apply(cfg, o, val, msg, n) != 0)
            return -1;
    }
    if (cfg->nlisten == 0)
        cfg->listen[cfg->nlisten++] = TD_DEFAULT_LISTEN;
    if (!cfg->tls_cert != !cfg->tls_key) {
        snprintf(msg, n, "--%s is given without --%s (tls_cert and tls_key go together: the "
                 "certificate chain and its private key)", cfg->tls_cert ? "tls-cert" : "tls-key",
                 cfg->tls_cert ? "tls-key" : "tls-cert");
        return -1;
    }
    if ((cfg->tls_client_ca || cfg->tls_ciphers) && !cfg->tls_cert) {
        snprintf(msg, n, "--%s needs --tls-cert and --tls-key (TLS is off without them)",
                 cfg->tls_client_ca ? "tls-client-ca" : "tls-ciphers");
        return -1;
    }
    if (strcmp(cfg->tls_min_version, "1.2") != 0 && strcmp(cfg->tls_min_version, "1.3") != 0) {
        snprintf(msg, n, "--tls-min-version: '%.32s' is not 1.2 or 1.3", cfg->tls_min_version);
        return -1;
    }
    if (cfg->allow_remote && !cfg->token_file && !cfg->help && !cfg->version) {
        snprintf(msg, n, "--allow-remote needs --token-file (auth_token_file): without "
                 "authentication anyone who can reach the port could use the daemon");
        return -1;
    }
    return 0;
}

void td_config_usage(const char *prog)
{
    printf("usage: %s [options]\n\ntensord serves tensor computations over TCP and Unix "
           "sockets.\nTCP listeners bind loopback only unless --allow-remote is given, which needs "
           "token\nauthentication (--token-file). Every option but --config, --help and "
           "--version can\nalso be set in the --config file.\n\noptions:\n",
           prog);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char left[64];
        switch (o->type) {
        case OPT_INT:
            snprintf(left, sizeof left, "--%s N", o->name);
            break;
        case OPT_LISTEN:
            snprintf(left, sizeof left, "--%s ADDR", o->name);
            break;
        case OPT_LEVEL:
            snprintf(left, sizeof left, "--%s LEVEL", o->name);
            break;
        case OPT_PATH:
            snprintf(left, sizeof left, "--%s FILE", o->name);
            break;
        case OPT_FLAG:
            snprintf(left, sizeof left, "--%s", o->name);
            break;
        case OPT_STR:
            snprintf(left, sizeof left, "--%s VALUE", o->name);
            break;
        }
        printf("  %-24s %s", left, o->help);
        if (o->type == OPT_INT)
            printf(" [%" PRId64 "..%" PRId64 ", default %s]", o->min, o->max, o->def);
        else if (o->def)
            printf(" [default %s]", o->def);
        printf("\n");
    }
}
