/*
 * notify.c - sd_notify(3) for Type=notify services, written against the documented
 * datagram protocol instead of linking libsystemd: each notification is one datagram of
 * newline-separated KEY=VALUE assignments sent to the AF_UNIX socket named by
 * $NOTIFY_SOCKET ("@name" is the abstract socket "\0name"). Sends use MSG_DONTWAIT so the
 * loop never waits for the service manager.
 */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

struct td_notify {
    int fd;
    struct sockaddr_un sa;
    socklen_t salen;
    uv_timer_t watchdog;
    bool watchdog_on;
    bool closed;
};

/* Returns: the watchdog interval systemd asked for in microseconds, 0 when none (or it is
 * meant for another process, per $WATCHDOG_PID). */
static uint64_t watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC");
    if (!us || !*us)
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid && strtoll(pid, NULL, 10) != (long long)getpid())
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(us, &end, 10);
    if (*end != '\0')
        return 0;
    return (uint64_t)v;
}

static void on_watchdog(uv_timer_t *t)
{
    td_notify_send(t->data, "WATCHDOG=1");
}

int td_notify_init(struct td_server *srv)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        TD_LOG(TD_LOG_WARN, "NOTIFY_SOCKET ignored",
               "addr=\"%.100s\" err=\"want an absolute path or @abstract name\"", path);
        return 0;
    }
    struct td_notify *n = td_calloc(1, sizeof *n);
    if (!n) {
        TD_LOG(TD_LOG_ERROR, "cannot set up systemd notification", "err=\"out of memory\"");
        return -1;
    }
    n->sa.sun_family = AF_UNIX;
    memcpy(n->sa.sun_path, path, len);
    if (path[0] == '@')
        n->sa.sun_path[0] = '\0';
    n->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        TD_LOG(TD_LOG_WARN, "NOTIFY_SOCKET ignored", "err=\"%s\"", strerror(errno));
        td_free(n);
        return 0;
    }
    srv->notify = n;
    uint64_t us = watchdog_usec();
    if (us > 0) {
        uint64_t ms = us / 2000;
        if (ms == 0)
            ms = 1;
        uv_timer_init(&srv->loop, &n->watchdog);
        n->watchdog.data = srv;
        n->watchdog_on = true;
        uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
        TD_LOG(TD_LOG_INFO, "systemd watchdog", "interval_ms=%" PRIu64, ms);
    }
    return 0;
}

void td_notify_send(struct td_server *srv, const char *msg)
{
    struct td_notify *n = srv->notify;
    if (!n || n->closed)
        return;
    ssize_t w;
    do {
        w = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
                   (const struct sockaddr *)&n->sa, n->salen);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        TD_LOG(TD_LOG_WARN, "systemd notification failed", "msg=\"%.32s\" err=\"%s\"", msg,
               strerror(errno));
}

void td_notify_close(struct td_server *srv)
{
    struct td_notify *n = srv->notify;
    if (!n || n->closed)
        return;
    n->closed = true;
    if (n->watchdog_on)
        uv_close((uv_handle_t *)&n->watchdog, NULL);
}

void td_notify_fini(struct td_server *srv)
{
    struct td_notify *n = srv->notify;
    if (!n)
        return;
    close(n->fd);
    td_free(n);
    srv->notify = NULL;
}
