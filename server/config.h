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

struct td_config {
    const char *listen[TD_CONFIG_MAX_LISTEN];  /* borrowed from argv */
    int nlisten;
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
    int log_level;
    bool allow_remote;
    bool help;
    bool version;
};

/* Fills cfg with the defaults, then applies argv. On a bad option writes a message to
 * msg (size n). Returns: 0 or -1. Ownership: cfg borrows argv's strings. */
int td_config_parse(struct td_config *cfg, int argc, char **argv, char *msg, size_t n);
/* Prints the option table (for --help) to stdout. */
void td_config_usage(const char *prog);

#endif
