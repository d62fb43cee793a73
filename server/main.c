/*
 * main.c - tensord: parses the options, sets up logging and the op table, runs the server
 * until SIGINT or SIGTERM, then frees everything and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct td_config cfg;
    char msg[256];
    if (td_config_parse(&cfg, argc, argv, msg, sizeof msg) != 0) {
        fprintf(stderr, "tensord: %s\n", msg);
        return 2;
    }
    if (cfg.help) {
        td_config_usage(argv[0]);
        return 0;
    }
    if (cfg.version) {
        printf("tensord %s\n", TD_VERSION);
        return 0;
    }
    td_log_level_min = cfg.log_level;
    td_blas_select_kernels(argv);
    td_parallel_set_threads((int)cfg.compute_threads);
    if (td_blas_threads_auto())
        td_lapack_set_threads(td_parallel_threads());
    struct td_error err;
    td_error_clear(&err);
    if (td_ops_init(&err) != 0) {
        TD_LOG(TD_LOG_ERROR, "op table invalid", "err=\"%s\"", err.msg);
        return 1;
    }
    struct td_server srv;
    if (td_server_init(&srv, &cfg) != 0)
        return 1;
    td_server_run(&srv);
    td_server_fini(&srv);
    td_parallel_shutdown();
    td_storage_cache_trim();
    TD_LOG(TD_LOG_INFO, "stopped", "version=%s", TD_VERSION);
    return 0;
}
