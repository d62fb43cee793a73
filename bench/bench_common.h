/*
 * bench_common.h - helpers shared by the C benchmarks: clocks, statistics, and plain
 * socket peers (listeners on the same transports the daemon uses).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

double bench_now(void);                       /* monotonic seconds */
double bench_median(double *v, size_t n);     /* sorts v */
double bench_mean(const double *v, size_t n);

/* A listening socket for a plain peer: "tcp" on 127.0.0.1 (port picked by the kernel) or
 * "unix" in a fresh temp dir. addr receives the address in the client's syntax. */
struct bench_listener {
    int fd;
    char addr[160];
    char path[128];   /* unix socket path, "" for tcp */
};
int bench_listen(const char *transport, struct bench_listener *l);
void bench_listener_close(struct bench_listener *l);

/* Connects a plain blocking socket (TCP_NODELAY for tcp). Returns: fd or -1. */
int bench_connect(const struct bench_listener *l);
/* Accepts one connection (TCP_NODELAY for tcp). Returns: fd or -1. */
int bench_accept(const struct bench_listener *l);

/* Blocking exact-size I/O. Return: 0, or -1 on error or EOF. */
int bench_write_all(int fd, const void *p, size_t n);
int bench_read_all(int fd, void *p, size_t n);

/* Daemon binary: argv[1] when given, else $TENSORD_BIN. NULL when neither. */
const char *bench_daemon_path(int argc, char **argv);

#endif
