/*
 * fuzz_frame.c - libFuzzer target for the framing layer.
 *
 * Input: 2 bytes of split seed, then a byte stream. The first 40 bytes of the stream go
 * through td_frame_decode/td_frame_validate on their own (with invariants checked on the
 * verdict); then the whole stream is fed to a real connection's incremental reader over a
 * socketpair, split at points chosen by the seed, and the requests it yields run through the
 * handlers (Handshake, Put, Get, Free, Run, ListOps, Stats). The server must neither crash,
 * leak, hang, nor send a malformed reply.
 *
 * Work bound: every tensor a session holds is within max_session_bytes, so a graph's work is
 * bounded by its node count, except through stride-0 views (expand, broadcast_to), which
 * give a small tensor a huge logical shape that a later reduction then walks. Such a
 * request can keep a worker busy for hours (a known limit: there are no deadlines yet), so
 * inputs whose Run frames use those ops are skipped rather than reported as hangs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_server.h"
#include "tensord.pb-c.h"

#define MAX_BODY (1 << 20)
#define MAX_DATA (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *buf)
{
    struct td_frame_header h;
    struct td_error err;
    td_error_clear(&err);
    td_frame_decode(buf, &h);
    int rc = td_frame_validate(&h, MAX_BODY, MAX_DATA, &err);
    bool wellformed = memcmp(buf, "TDRP", 4) == 0 && h.version == TD_FRAME_VERSION &&
                      h.kind == TD_FRAME_KIND_REQUEST && h.flags == 0 && h.reserved == 0;
    bool in_limits = h.body_len <= MAX_BODY && h.data_len <= MAX_DATA;
    if (rc == 0 && !(wellformed && in_limits))
        abort();
    if (rc != 0 && ((wellformed && in_limits) || err.msg[0] == '\0' ||
                    (rc != TD_EPROTO && rc != TD_ELIMIT) || (rc == TD_ELIMIT && !wellformed)))
        abort();
    if (td_method_name(h.method) == NULL)
        abort();
    /* The response encoder writes what the decoder reads back. */
    uint8_t out[TD_FRAME_HEADER_SIZE];
    struct td_frame_header r;
    td_frame_encode_response(out, h.method, h.call_id, h.body_len, h.data_len);
    td_frame_decode(out, &r);
    if (memcmp(r.magic, "TDRP", 4) != 0 || r.version != TD_FRAME_VERSION ||
        r.kind != TD_FRAME_KIND_RESPONSE || r.flags != 0 || r.reserved != 0 ||
        r.method != h.method || r.call_id != h.call_id || r.body_len != h.body_len ||
        r.data_len != h.data_len)
        abort();
}

/* Walks the frames of the stream as the server would and looks into each Run body.
 * Returns: true when no Run frame uses a stride-0 view op. */
static bool work_bounded(const uint8_t *p, size_t n)
{
    while (n >= TD_FRAME_HEADER_SIZE) {
        struct td_frame_header h;
        td_frame_decode(p, &h);
        p += TD_FRAME_HEADER_SIZE;
        n -= TD_FRAME_HEADER_SIZE;
        if (h.body_len > n)
            return true;   /* the server reads no further than this frame */
        if (h.method == TD_M_RUN) {
            Tensord__V1__RunRequest *req =
                tensord__v1__run_request__unpack(NULL, (size_t)h.body_len, p);
            bool ok = true;
            for (size_t i = 0; req && ok && i < req->n_nodes; i++) {
                const char *op = req->nodes[i]->op ? req->nodes[i]->op : "";
                ok = strcmp(op, "expand") != 0 && strcmp(op, "broadcast_to") != 0;
            }
            if (req)
                protobuf_c_message_free_unpacked(&req->base, NULL);
            if (!ok)
                return false;
        }
        p += h.body_len;
        n -= (size_t)h.body_len;
        if (h.data_len > n)
            return true;
        p += h.data_len;
        n -= (size_t)h.data_len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fz_limits lim = {
        .max_frame_body = MAX_BODY,
        .max_frame_data = MAX_DATA,
        .max_graph_nodes = 8,
        .max_session_ids = 64,
        .max_session_bytes = 4 << 20,
    };
    struct td_server *srv = fz_server_get(&lim);
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] | ((uint32_t)data[1] << 8);
    data += 2;
    size -= 2;
    if (size >= TD_FRAME_HEADER_SIZE)
        check_header(data);
    if (!work_bounded(data, size))
        return 0;
    fz_session_run(srv, data, size, seed);
    return 0;
}
