/*
 * fz_server.h - an in-process tensord for the fuzz targets: a real struct td_server with its
 * libuv loop and a worker pool without threads, and one connection per input over a
 * socketpair. The fuzz target writes bytes to the client end in chunks; fz_pump runs the
 * loop once (the incremental reader), then the queued sessions' jobs on this thread (the
 * handlers), then drains the replies, exactly the code path of the daemon minus the
 * listeners and the threads.
 */
#ifndef TD_FZ_SERVER_H
#define TD_FZ_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

struct fz_limits {
    int64_t max_frame_body;
    int64_t max_frame_data;
    int64_t max_graph_nodes;
    int64_t max_session_ids;
    int64_t max_session_bytes;
    /* true: authentication on, with the token file of FZ_ADMIN_TOKEN (user "root", role
     * admin) and FZ_USER_TOKEN (user "alice", role user); no lockout after failures.
     * false: no token file, every session is the "local" admin, as the daemon without one. */
    bool auth;
};

#define FZ_ADMIN_TOKEN "fz-admin-0123456789abcdef"
#define FZ_USER_TOKEN "fz-alice-0123456789abcdef"


/* Sets up the process-wide server once (op table, loop, handlers, authentication). Drain and
 * Shutdown are harmless here: SIGTERM is ignored and the drain flag is cleared after each
 * session, so every input starts from a serving daemon. Aborts on failure: a harness that
 * cannot start must not report a clean run. Thread: fuzzer thread only. */
struct td_server *fz_server_get(const struct fz_limits *lim);

/* Feeds one byte stream to a fresh connection, split at points chosen from `seed` (1 to
 * about 16 chunks), then half-closes the client side and runs
 * the server until the connection is gone. Every reply is checked to be a well-formed
 * response frame whose body decodes. Aborts when the server stops making progress (a hang)
 * or sends a malformed reply.
 * Returns: the number of complete replies. */
size_t fz_session_run(struct td_server *srv, const uint8_t *stream, size_t len, uint32_t seed);

/* When set, called for every complete reply the client side reads, in order: the reply's
 * method, call id and status code. A target uses it to check what a reply must say. */
extern void (*fz_on_reply)(uint32_t method, uint64_t call_id, int code);

/* Appends one request frame (header, body, data section) to a growing buffer.
 * Returns: 0, or -1 when out of memory. Ownership: *buf is malloc'd; the caller frees it. */
int fz_frame_append(uint8_t **buf, size_t *len, size_t *cap, uint32_t method, uint64_t call_id,
                    const uint8_t *body, size_t body_len, const uint8_t *data, size_t data_len);

#endif
