/*
 * td_spawn.c - start and stop a real tensord daemon (see td_spawn.h).
 */
#include "td_spawn.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int td_spawn_daemon(const char *bin, const char *const *extra, struct td_daemon *d)
{
    memset(d, 0, sizeof *d);
    d->pid = -1;
    d->out_fd = -1;
    snprintf(d->dir, sizeof d->dir, "/tmp/tdsp.XXXXXX");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "spawn: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char unix_listen[128];
    snprintf(unix_listen, sizeof unix_listen, "unix://%s/s.sock", d->dir);

    const char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "--listen";
    argv[argc++] = unix_listen;
    argv[argc++] = "--listen";
    argv[argc++] = "tcp://127.0.0.1:0";
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int pfd[2];
    if (pipe(pfd) != 0) {
        fprintf(stderr, "spawn: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "spawn: fork: %s\n", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, (char *const *)(uintptr_t)argv);
        fprintf(stderr, "spawn: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    d->pid = pid;
    d->out_fd = pfd[0];

    /* Read `listening ADDR` lines until both listeners are reported. */
    char buf[1024];
    size_t len = 0;
    double deadline = now_s() + 20;
    while (!d->unix_addr[0] || !d->tcp_addr[0]) {
        double left = deadline - now_s();
        struct pollfd p = {d->out_fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
            fprintf(stderr, "spawn: %s did not report its listeners in time\n", bin);
            goto fail;
        }
        ssize_t n = read(d->out_fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0) {
            fprintf(stderr, "spawn: %s exited before listening\n", bin);
            goto fail;
        }
        len += (size_t)n;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            const char *addr = buf + strlen("listening ");
            if (strncmp(buf, "listening ", 10) == 0) {
                if (strncmp(addr, "unix://", 7) == 0)
                    snprintf(d->unix_addr, sizeof d->unix_addr, "%.127s", addr);
                else if (strncmp(addr, "tcp://", 6) == 0)
                    snprintf(d->tcp_addr, sizeof d->tcp_addr, "%.127s", addr);
            }
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, len - used + 1);
            len -= used;
        }
        if (len == sizeof buf - 1)
            len = 0;
    }
    return 0;
fail:
    td_spawn_stop(d);
    return -1;
}

int td_spawn_stop(struct td_daemon *d)
{
    int status = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        double deadline = now_s() + 20;
        for (;;) {
            pid_t r = waitpid(d->pid, &status, WNOHANG);
            if (r == d->pid)
                break;
            if (r < 0) {
                status = -1;
                break;
            }
            if (now_s() > deadline) {
                fprintf(stderr, "spawn: daemon ignored SIGTERM for 20 s; killing it\n");
                kill(d->pid, SIGKILL);
                waitpid(d->pid, &status, 0);
                status = -1;
                break;
            }
            usleep(10000);
        }
        d->pid = -1;
    }
    if (d->out_fd >= 0)
        close(d->out_fd);
    d->out_fd = -1;
    if (d->dir[0]) {
        char path[160];
        snprintf(path, sizeof path, "%s/s.sock", d->dir);
        unlink(path);
        rmdir(d->dir);
        d->dir[0] = '\0';
    }
    return status;
}
