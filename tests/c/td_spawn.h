/*
 * td_spawn.h - start and stop a real tensord daemon for integration tests and benchmarks.
 */
#ifndef TD_SPAWN_H
#define TD_SPAWN_H

#include <sys/types.h>

#define TD_SPAWN_MAX_ADDRS 4

struct td_daemon {
    pid_t pid;
    int out_fd;                                 /* read end of the daemon's stdout */
    char dir[64];                               /* private temp dir holding the socket */
    char unix_addr[128];                        /* "unix:///tmp/tdsp.XXXXXX/s.sock" */
    char tcp_addr[128];                         /* "tcp://127.0.0.1:PORT" (real port) */
};

/* Starts bin listening on a private Unix socket and on tcp://127.0.0.1:0, with extra
 * command-line arguments (NULL-terminated, may be NULL), and waits (up to 20 s) until it
 * has printed its two `listening ADDRESS` lines. The child dies with the calling process.
 * Returns: 0 and *d filled, or -1 with a message on stderr. */
int td_spawn_daemon(const char *bin, const char *const *extra, struct td_daemon *d);

/* Sends SIGTERM and waits up to 20 s (then SIGKILL) for the daemon to exit; removes the
 * socket and the temp dir.
 * Returns: the raw wait status (as from waitpid), or -1 when waiting failed. */
int td_spawn_stop(struct td_daemon *d);

#endif
