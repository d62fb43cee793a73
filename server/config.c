/*
 * config.c - the option table and the command-line parser (Redis style: one row per option
 * with its type, range and default; parsing and --help both read the table).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum opt_type { OPT_INT, OPT_LISTEN, OPT_LEVEL, OPT_FLAG };

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
    {"output-buffer-soft", OPT_INT, 4096, INT64_C(1) << 40, "4194304", OFF(output_buffer_soft),
     "bytes of unsent replies (Get data included) above which the daemon stops reading a "
     "client's requests until it reads its replies (backpressure)"},
    {"output-buffer-hard", OPT_INT, 0, INT64_MAX, "1073741824", OFF(output_buffer_hard),
     "bytes of unsent replies above which a client is disconnected and its session freed; one "
     "reply alone never counts as over (0: no limit)"},
    {"output-buffer-soft-seconds", OPT_INT, 0, 1 << 30, "60", OFF(output_buffer_soft_seconds),
     "seconds a client's unsent replies may stay above --output-buffer-soft before it is "
     "disconnected and its session freed (0: no limit)"},
    {"log-level", OPT_LEVEL, 0, 0, "info", OFF(log_level), "debug, info, warn or error"},
    {"allow-remote", OPT_FLAG, 0, 0, NULL, OFF(allow_remote),
     "permit TCP listeners on non-loopback addresses; there is no authentication yet "
     "(it comes in a later release), so anyone who can reach the port can use the daemon"},
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
    }
    return -1;
}

int td_config_parse(struct td_config *cfg, int argc, char **argv, char *msg, size_t n)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def && apply(cfg, &opts[i], opts[i].def, msg, n) != 0)
            return -1;
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
        if (apply(cfg, o, val, msg, n) != 0)
            return -1;
    }
    if (cfg->nlisten == 0)
        cfg->listen[cfg->nlisten++] = TD_DEFAULT_LISTEN;
    return 0;
}

void td_config_usage(const char *prog)
{
    printf("usage: %s [options]\n\ntensord serves tensor computations over TCP and Unix "
           "sockets.\nTCP listeners bind loopback only unless --allow-remote is given; "
           "authentication\nis not implemented yet (a later release adds it).\n\noptions:\n",
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
        case OPT_FLAG:
            snprintf(left, sizeof left, "--%s", o->name);
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
