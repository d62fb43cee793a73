/*
 * bench_common.c - see bench_common.h.
 */
#include "bench_common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

int bench_listen(const char *transport, struct bench_listener *l)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (strcmp(transport, "unix") == 0) {
        char dir[] = "/tmp/tdbench.XXXXXX";
        if (!mkdtemp(dir))
            return -1;
        snprintf(l->path, sizeof l->path, "%s/p.sock", dir);
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", l->path);
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            listen(l->fd, 4) != 0)
            return -1;
        snprintf(l->addr, sizeof l->addr, "unix://%s", l->path);
        return 0;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof sa;
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(l->fd, 4) != 0 || getsockname(l->fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    snprintf(l->addr, sizeof l->addr, "tcp://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return 0;
}

void bench_listener_close(struct bench_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->path[0]) {
        unlink(l->path);
        char *slash = strrchr(l->path, '/');
        if (slash) {
            *slash = '\0';
            rmdir(l->path);
        }
        l->path[0] = '\0';
    }
}

static void nodelay(int fd, const struct bench_listener *l)
{
    if (!l->path[0]) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

int bench_connect(const struct bench_listener *l)
{
    int fd;
    if (l->path[0]) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", l->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return -1;
    } else {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        if (getsockname(l->fd, (struct sockaddr *)&sa, &len) != 0)
            return -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return -1;
    }
    nodelay(fd, l);
    return fd;
}

int bench_accept(const struct bench_listener *l)
{
    int fd = accept(l->fd, NULL, NULL);
    if (fd >= 0)
        nodelay(fd, l);
    return fd;
}

int bench_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int bench_read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, MSG_WAITALL);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

const char *bench_daemon_path(int argc, char **argv)
{
    if (argc > 1 && argv[1][0])
        return argv[1];
    return getenv("TENSORD_BIN");
}
