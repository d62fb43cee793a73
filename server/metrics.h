/*
 * metrics.h - the daemon's Prometheus metrics: counters updated from any thread with relaxed
 * atomics, and a small HTTP/1.1 server on the loop (--metrics-listen) that answers
 * GET /metrics with the text exposition format 0.0.4 and GET /healthz with 200 or, while
 * draining, 503. Every hook accepts a server whose
 * metrics were never set up (srv->metrics NULL, as in the fuzz targets) and does nothing.
 */
#ifndef TD_SRV_METRICS_H
#define TD_SRV_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct td_server;
struct td_job;

/* Upper bounds of the request latency histogram buckets, in seconds (+Inf follows). */
#define TD_METRICS_BUCKETS 16

/* Allocates the counters and, when cfg->metrics_listen is set, opens the HTTP listener on
 * srv's loop and logs its bound address ("metrics listening addr=tcp://127.0.0.1:PORT").
 * Returns: 0 or -1 (logged). Thread: the loop thread, before it runs. */
int td_metrics_init(struct td_server *srv);
/* Closes the listener and every HTTP client (their handles close on the loop's next run).
 * Thread: loop. */
void td_metrics_close(struct td_server *srv);
/* Frees the counters once the loop has closed every handle. */
void td_metrics_fini(struct td_server *srv);

/* A request frame was parsed and queued for a worker. Thread: any. */
void td_metrics_request_received(struct td_server *srv);
/* A worker finished job j (replied): counts it by method, its latency since it was queued
 * and, for Run, the ops of its graph. Thread: the worker. */
void td_metrics_job_done(struct td_server *srv, const struct td_job *j);
/* A request was answered with an error status (TD_E*): counted by reason (the status name,
 * "unavailable" for requests refused while draining). Thread: any. */
void td_metrics_rejected(struct td_server *srv, int status);
/* A client was disconnected by the server for `reason` (an output buffer limit, a
 * protocol error). Thread: any. */
void td_metrics_disconnected(struct td_server *srv, const char *reason);

/* Renders the exposition text into a td_malloc'd buffer. Returns: the buffer (*len set) or
 * NULL when out of memory. Ownership: the caller frees it with td_free. Thread: loop (reads
 * the session registry under its lock). */
char *td_metrics_render(struct td_server *srv, size_t *len);

#endif
