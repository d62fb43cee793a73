/*
 * bench_transfer.c - bulk upload/download through the client vs a plain socket transfer.
 *
 * Usage: bench_transfer [PATH_TO_TENSORD] [MIB]   (or TENSORD_BIN; MIB defaults to 256)
 *
 * For TCP (127.0.0.1) and a Unix socket, best of 5 each:
 *  - put: td_client_put of a MIB float32 tensor (a fresh id each time, the previous freed first)
 *    vs sending MIB to a forked sink that receives it into a buffer and acknowledges;
 *  - get: td_client_get of that tensor into a prefaulted buffer vs receiving MIB from a
 *    forked source that sends it on request.
 * Prints `transfer TRANSPORT put_gbps=.. plain_gbps=.. ratio=..` and the same for get.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "td_spawn.h"
#include <tensord/client.h>

#define REPS 5

static void die(td_client *c, int rc, const char *what)
{
    fprintf(stderr, "bench_transfer: %s: %s: %s\n", what, td_client_strerror(rc),
            c ? td_client_errmsg(c) : "");
    exit(1);
}

/* Plain peer: for each 8-byte command, 'U' receives n bytes into its buffer and answers one
 * byte; 'D' sends n bytes from its buffer. */
static void plain_peer(const struct bench_listener *l, size_t n)
{
    char *buf = malloc(n);
    if (!buf)
        _exit(1);
    memset(buf, 1, n);
    int fd = bench_accept(l);
    if (fd < 0)
        _exit(1);
    char cmd[8];
    while (bench_read_all(fd, cmd, sizeof cmd) == 0) {
        if (cmd[0] == 'U') {
            if (bench_read_all(fd, buf, n) || bench_write_all(fd, "k", 1))
                break;
        } else if (bench_write_all(fd, buf, n)) {
            break;
        }
    }
    close(fd);
    free(buf);
    _exit(0);
}

static void plain_transfer(const char *transport, char *src, char *dst, size_t n,
                           double *up_s, double *down_s)
{
    struct bench_listener l;
    if (bench_listen(transport, &l) != 0) {
        fprintf(stderr, "bench_transfer: plain listener failed\n");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0)
        plain_peer(&l, n);
    int fd = bench_connect(&l);
    if (fd < 0)
        exit(1);
    *up_s = *down_s = 1e30;
    for (int r = 0; r < REPS; r++) {
        char ack;
        double t0 = bench_now();
        if (bench_write_all(fd, "U-------", 8) || bench_write_all(fd, src, n) ||
            bench_read_all(fd, &ack, 1))
            exit(1);
        double t = bench_now() - t0;
        *up_s = t < *up_s ? t : *up_s;
        t0 = bench_now();
        if (bench_write_all(fd, "D-------", 8) || bench_read_all(fd, dst, n))
            exit(1);
        t = bench_now() - t0;
        *down_s = t < *down_s ? t : *down_s;
    }
    close(fd);
    waitpid(pid, NULL, 0);
    bench_listener_close(&l);
}

static void client_transfer(const char *addr, char *src, char *dst, size_t n, double *up_s,
                            double *down_s)
{
    td_client *c = NULL;
    int rc = td_client_connect(addr, &c);
    if (rc)
        die(NULL, rc, addr);
    const int64_t shape[1] = {(int64_t)(n / 4)};
    *up_s = *down_s = 1e30;
    uint64_t id = 0;
    for (int r = 0; r < REPS; r++) {
        /* Steady state: the previous upload is freed first, so its memory can be reused. */
        if (id && (rc = td_client_free(c, &id, 1, NULL)))
            die(c, rc, "free");
        id = td_client_new_id(c);
        double t0 = bench_now();
        if ((rc = td_client_put(c, id, TD_CLIENT_FLOAT32, 1, shape, src, n)))
            die(c, rc, "put");
        double t = bench_now() - t0;
        *up_s = t < *up_s ? t : *up_s;
    }
    for (int r = 0; r < REPS; r++) {
        struct td_client_tensor_info info;
        double t0 = bench_now();
        if ((rc = td_client_get(c, id, dst, n, &info)))
            die(c, rc, "get");
        double t = bench_now() - t0;
        *down_s = t < *down_s ? t : *down_s;
    }
    if (memcmp(src, dst, n) != 0) {
        fprintf(stderr, "bench_transfer: downloaded bytes differ from the upload\n");
        exit(1);
    }
    td_client_close(c);
}

int main(int argc, char **argv)
{
    const char *bin = bench_daemon_path(argc, argv);
    long mib = argc > 2 ? atol(argv[2]) : 256;
    if (!bin || mib <= 0) {
        fprintf(stderr, "usage: %s PATH_TO_TENSORD [MIB] (or set TENSORD_BIN)\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)mib << 20;
    char *src = malloc(n), *dst = malloc(n);
    if (!src || !dst)
        return 1;
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 131 + (i >> 12));
    memset(dst, 0, n);

    struct td_daemon d;
    const char *extra[] = {"--log-level", "warn", NULL};
    if (td_spawn_daemon(bin, extra, &d) != 0)
        return 1;
    const char *transports[2] = {"tcp", "unix"};
    for (int t = 0; t < 2; t++) {
        double cu, cd, pu, pd;
        client_transfer(t == 0 ? d.tcp_addr : d.unix_addr, src, dst, n, &cu, &cd);
        plain_transfer(transports[t], src, dst, n, &pu, &pd);
        double gb = (double)n / 1e9;
        printf("transfer %s put_gbps=%.2f plain_gbps=%.2f ratio=%.2f mib=%ld\n", transports[t],
               gb / cu, gb / pu, pu / cu, mib);
        printf("transfer %s get_gbps=%.2f plain_gbps=%.2f ratio=%.2f mib=%ld\n", transports[t],
               gb / cd, gb / pd, pd / cd, mib);
        fflush(stdout);
    }
    free(src);
    free(dst);
    int status = td_spawn_stop(&d);
    return status == 0 ? 0 : 1;
}
