/*
 * bench_rtt.c - round-trip latency of the daemon vs a plain socket ping-pong.
 *
 * Usage: bench_rtt [PATH_TO_TENSORD] [ITERATIONS]   (or TENSORD_BIN in the environment)
 *
 * For TCP (127.0.0.1) and a Unix socket:
 *  - daemon: a Run of one `add` node on two live 4-element float32 tensors whose output is
 *    discarded in the same request, ITERATIONS (default 20000) times synchronously: median
 *    and mean microseconds per call; then the same calls pipelined (32 in flight).
 *  - plain: a forked echo peer on the same transport answering frames of the same sizes as
 *    that request and reply (measured from the client's byte counters), the same number of
 *    times, one blocking send and one blocking receive per call.
 * Prints `rtt TRANSPORT daemon_us=.. plain_us=.. ratio=..` (medians) and details.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "td_spawn.h"
#include <tensord/client.h>

#define PIPELINE_DEPTH 32

struct rtt_result {
    double median_us, mean_us, pipelined_us;
    size_t req_bytes, reply_bytes;
};

static int die(td_client *c, int rc, const char *what)
{
    fprintf(stderr, "bench_rtt: %s: %s: %s\n", what, td_client_strerror(rc),
            c ? td_client_errmsg(c) : "");
    exit(1);
}

static void daemon_rtt(const char *addr, int iters, double *samples, struct rtt_result *res)
{
    td_client *c = NULL;
    int rc = td_client_connect(addr, &c);
    if (rc)
        die(NULL, rc, addr);
    const int64_t shape[1] = {4};
    const float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
    uint64_t ia = td_client_new_id(c), ib = td_client_new_id(c), it = td_client_new_id(c);
    if ((rc = td_client_put(c, ia, TD_CLIENT_FLOAT32, 1, shape, a, sizeof a)) ||
        (rc = td_client_put(c, ib, TD_CLIENT_FLOAT32, 1, shape, b, sizeof b)))
        die(c, rc, "put");
    td_client_graph *g;
    uint64_t in[2] = {ia, ib};
    if ((rc = td_client_graph_new(&g)) || (rc = td_client_graph_node(g, "add", in, 2, &it, 1)) ||
        (rc = td_client_graph_discard(g, it)))
        die(c, rc, "graph");
    for (int i = 0; i < 1000; i++)
        if ((rc = td_client_run(c, g, NULL, 0, NULL)))
            die(c, rc, "warm-up run");
    uint64_t s0, r0, s1, r1;
    td_client_io_counters(c, &s0, &r0);
    if ((rc = td_client_run(c, g, NULL, 0, NULL)))
        die(c, rc, "run");
    td_client_io_counters(c, &s1, &r1);
    res->req_bytes = (size_t)(s1 - s0);
    res->reply_bytes = (size_t)(r1 - r0);

    for (int i = 0; i < iters; i++) {
        double t0 = bench_now();
        rc = td_client_run(c, g, NULL, 0, NULL);
        samples[i] = (bench_now() - t0) * 1e6;
        if (rc)
            die(c, rc, "run");
    }
    res->mean_us = bench_mean(samples, (size_t)iters);
    res->median_us = bench_median(samples, (size_t)iters);

    uint64_t calls[PIPELINE_DEPTH];
    double t0 = bench_now();
    for (int i = 0; i < iters; i++) {
        if (i >= PIPELINE_DEPTH &&
            (rc = td_client_wait(c, calls[i % PIPELINE_DEPTH], NULL, 0, NULL)))
            die(c, rc, "wait");
        if ((rc = td_client_run_async(c, g, &calls[i % PIPELINE_DEPTH])))
            die(c, rc, "run_async");
    }
    for (int i = iters - PIPELINE_DEPTH; i < iters; i++)
        if (i >= 0 && (rc = td_client_wait(c, calls[i % PIPELINE_DEPTH], NULL, 0, NULL)))
            die(c, rc, "wait");
    res->pipelined_us = (bench_now() - t0) * 1e6 / iters;
    td_client_graph_free(g);
    td_client_close(c);
}

/* Echo peer: reads req bytes, answers reply bytes, until EOF. */
static void echo_peer(const struct bench_listener *l, size_t req, size_t reply)
{
    int fd = bench_accept(l);
    if (fd < 0)
        _exit(1);
    char in[4096], out[4096];
    memset(out, 0x5a, sizeof out);
    while (bench_read_all(fd, in, req) == 0)
        if (bench_write_all(fd, out, reply) != 0)
            break;
    close(fd);
    _exit(0);
}

static double plain_rtt(const char *transport, int iters, size_t req, size_t reply,
                        double *samples, double *mean_us)
{
    struct bench_listener l;
    if (bench_listen(transport, &l) != 0 || req > 4096 || reply > 4096) {
        fprintf(stderr, "bench_rtt: plain listener on %s failed\n", transport);
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0)
        echo_peer(&l, req, reply);
    int fd = bench_connect(&l);
    if (fd < 0) {
        fprintf(stderr, "bench_rtt: plain connect failed\n");
        exit(1);
    }
    char out[4096], in[4096];
    memset(out, 0xa5, sizeof out);
    for (int i = 0; i < 1000; i++)
        if (bench_write_all(fd, out, req) || bench_read_all(fd, in, reply))
            exit(1);
    for (int i = 0; i < iters; i++) {
        double t0 = bench_now();
        if (bench_write_all(fd, out, req) || bench_read_all(fd, in, reply))
            exit(1);
        samples[i] = (bench_now() - t0) * 1e6;
    }
    close(fd);
    waitpid(pid, NULL, 0);
    bench_listener_close(&l);
    *mean_us = bench_mean(samples, (size_t)iters);
    return bench_median(samples, (size_t)iters);
}

int main(int argc, char **argv)
{
    const char *bin = bench_daemon_path(argc, argv);
    int iters = argc > 2 ? atoi(argv[2]) : 20000;
    if (!bin || iters <= 0) {
        fprintf(stderr, "usage: %s PATH_TO_TENSORD [ITERATIONS] (or set TENSORD_BIN)\n",
                argv[0]);
        return 2;
    }
    struct td_daemon d;
    const char *extra[] = {"--log-level", "warn", NULL};
    if (td_spawn_daemon(bin, extra, &d) != 0)
        return 1;
    double *samples = malloc((size_t)iters * sizeof *samples);
    if (!samples)
        return 1;
    const char *transports[2] = {"tcp", "unix"};
    for (int t = 0; t < 2; t++) {
        struct rtt_result r;
        daemon_rtt(t == 0 ? d.tcp_addr : d.unix_addr, iters, samples, &r);
        double plain_mean;
        double plain = plain_rtt(transports[t], iters, r.req_bytes, r.reply_bytes, samples,
                                 &plain_mean);
        printf("rtt %s daemon_us=%.2f plain_us=%.2f ratio=%.2f daemon_mean_us=%.2f "
               "plain_mean_us=%.2f pipelined_us=%.2f req_bytes=%zu reply_bytes=%zu "
               "iters=%d\n",
               transports[t], r.median_us, plain, r.median_us / plain, r.mean_us, plain_mean,
               r.pipelined_us, r.req_bytes, r.reply_bytes, iters);
        fflush(stdout);
    }
    free(samples);
    int status = td_spawn_stop(&d);
    return status == 0 ? 0 : 1;
}
