/*
 * notify.h - systemd's service notification protocol (sd_notify(3)) without libsystemd:
 * datagrams to $NOTIFY_SOCKET (a path, or an abstract socket written with a leading '@').
 * READY=1 once the listeners are open, STOPPING=1 when a drain starts, and WATCHDOG=1 every
 * WATCHDOG_USEC/2 from a loop timer when the service manager asked for a watchdog.
 */
#ifndef TD_SRV_NOTIFY_H
#define TD_SRV_NOTIFY_H

struct td_server;

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and starts the watchdog timer on
 * srv's loop when one is asked for. Without $NOTIFY_SOCKET it does nothing.
 * Returns: 0 or -1 (out of memory; logged). Thread: the loop thread, before it runs. */
int td_notify_init(struct td_server *srv);
/* Sends one notification ("READY=1\nSTATUS=..."); never blocks (a full socket drops it).
 * Does nothing without $NOTIFY_SOCKET. Thread: loop. */
void td_notify_send(struct td_server *srv, const char *msg);
/* Stops the watchdog timer (its handle closes on the loop's next run). Thread: loop. */
void td_notify_close(struct td_server *srv);
/* Frees the state once the loop has closed its handles. */
void td_notify_fini(struct td_server *srv);

#endif
