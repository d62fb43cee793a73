/*
 * config.h - the daemon's options: one table (name, type, min, max, default, help) parsed
 * from the command line. See config.c for the table.
 */
#ifndef TD_SRV_CONFIG_H
#define TD_SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_CONFIG_MAX_LISTEN 16
#define TD_DEFAULT_LISTEN "tcp://127.0.0.1:7878"

#define TD_CONFIG_STRINGS 8192

struct td_config {
    const char *listen[TD_CONFIG_MAX_LISTEN];  /* borrowed from argv or `strings` */
    int nlisten;
    const char *config_file;     /* --config: a YAML file read before the command line */
    const char *token_file;      /* auth_token_file: "token user role" lines; NULL: none */
    int64_t max_frame_body_unauth; /* frame body (and data) limit before authentication */
    int64_t auth_fail_delay_ms;  /* first lockout after a failed token; doubles per failure */
    int64_t user_max_bytes;      /* default per-user quotas; 0: unlimited */
    int64_t user_max_tensors;
    int64_t user_max_sessions;
    int64_t user_max_concurrency; /* workers one user may hold; 0: unlimited, -1: automatic */
    int64_t fair_scheduling;     /* 1: per-user round robin of ready sessions; 0: one FIFO */
    int64_t max_total_bytes;     /* every session's tensors together; 0: physical memory */
    int64_t threads;
    int64_t compute_threads;     /* engine kernel threads; 0: online CPUs */
    int64_t max_frame_body;
    int64_t max_frame_data;
    int64_t max_graph_nodes;
    int64_t max_graph_work;      /* 0: unbounded; see td_graph_plan */
    int64_t max_session_ids;
    int64_t max_session_bytes;   /* 0: physical memory size */
    int64_t output_buffer_soft;  /* reading pauses while a client's unsent replies exceed it */
    int64_t output_buffer_hard;  /* a client over it is disconnected; 0: no limit */
    int64_t output_buffer_soft_seconds; /* ... or over soft this long; 0: no limit */
    const char *metrics_listen;  /* tcp://HOST:PORT for GET /metrics; NULL: none (argv) */
    int64_t drain_timeout;       /* seconds a drain waits for work in flight; 0: no limit */
    int64_t max_resume_lease;    /* seconds a lost connection's session may be kept; 0: never */
    int64_t idle_timeout;        /* seconds of silence (nothing in flight) before a close; 0 */
    int64_t auth_timeout;        /* seconds to an authenticated Handshake; 0: no limit */
    int64_t read_timeout;        /* seconds a frame's header+body may take; 0: no limit */
    int64_t max_connections;     /* TCP and Unix together; 0: no limit */
    int64_t admin_reserved_connections; /* Unix slots past max_connections, admins only */
    /* TLS for every TCP listener (tls.c); NULL: plain TCP. Given together or not at all. */
    const char *tls_cert;        /* PEM certificate chain, the server's certificate first */
    const char *tls_key;         /* PEM private key of that certificate */
    const char *tls_client_ca;   /* PEM CA bundle: require client certificates (mutual TLS) */
    const char *tls_min_version; /* "1.2" (default) or "1.3" */
    const char *tls_ciphers;     /* OpenSSL cipher list for TLS 1.2; NULL: OpenSSL's default */
    int log_level;
    bool allow_remote;
    bool help;
    bool version;
    /* Values read from the config file live here (the struct owns them). */
    char strings[TD_CONFIG_STRINGS];
    size_t strings_used;
};

/* Fills cfg with the defaults, then the file named by --config (YAML, read with libyaml),
 * then argv: a command-line option overrides the file (any --listen replaces the file's
 * list). Unknown keys, bad values and unsafe combinations (allow_remote without a token
 * file) are errors: writes a message naming the option (and the file's line) to msg
 * (size n). Returns: 0 or -1. Ownership: cfg borrows argv's strings. */
int td_config_parse(struct td_config *cfg, int argc, char **argv, char *msg, size_t n);
/* Prints the option table (for --help) to stdout. */
void td_config_usage(const char *prog);

#endif
