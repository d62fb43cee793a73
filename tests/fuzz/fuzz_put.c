/*
 * fuzz_put.c - libFuzzer target for Put: PutRequest decoding and the checks on dtype, shape,
 * offset, data length and session limits that run before the server allocates (prepare_put
 * in conn.c, do_put in handlers.c), including uploads in chunks.
 *
 * Input: 2 bytes of split seed, then up to 8 records, each
 *   u16 body_len (LE), u24 data_len (LE, capped at max_frame_data), body_len bytes of body.
 * The target sends a Handshake, one Put frame per record (the body is the fuzzed PutRequest;
 * the data section is a byte pattern of data_len bytes), then for every record whose body
 * decodes a Get of its id, then one Free of all of them and a Stats. The server must answer
 * every frame with a well-formed reply, and neither crash, leak nor hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fz_server.h"
#include "tensord.pb-c.h"

#define MAX_BODY (1 << 16)
#define MAX_DATA (1 << 18)
#define MAX_RECORDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pattern[MAX_DATA];

static void append(uint8_t **buf, size_t *len, size_t *cap, uint32_t method, uint64_t call_id,
                   const uint8_t *body, size_t body_len, const uint8_t *d, size_t data_len)
{
    if (fz_frame_append(buf, len, cap, method, call_id, body, body_len, d, data_len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fz_limits lim = {
        .max_frame_body = MAX_BODY,
        .max_frame_data = MAX_DATA,
        .max_graph_nodes = 16,
        .max_session_ids = 6,
        .max_session_bytes = 8 << 20,
    };
    struct td_server *srv = fz_server_get(&lim);
    if (pattern[1] == 0)
        for (size_t i = 0; i < sizeof pattern; i++)
            pattern[i] = (uint8_t)(i * 131 + 7);
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] | ((uint32_t)data[1] << 8);
    data += 2;
    size -= 2;

    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, frames = 0;
    uint64_t call = 1;

    Tensord__V1__HandshakeRequest hs = TENSORD__V1__HANDSHAKE_REQUEST__INIT;
    hs.protocol_version = 1;
    hs.seed = 7;
    uint8_t hsbody[64];
    size_t hslen = tensord__v1__handshake_request__pack(&hs, hsbody);
    append(&buf, &len, &cap, TD_M_HANDSHAKE, call++, hsbody, hslen, NULL, 0);
    frames++;

    uint64_t ids[MAX_RECORDS];
    size_t nids = 0;
    for (int rec = 0; rec < MAX_RECORDS && size >= 5; rec++) {
        size_t body_len = (size_t)data[0] | ((size_t)data[1] << 8);
        size_t data_len = (size_t)data[2] | ((size_t)data[3] << 8) | ((size_t)data[4] << 16);
        data += 5;
        size -= 5;
        if (body_len > size)
            body_len = size;
        if (data_len > MAX_DATA)
            data_len = MAX_DATA;
        append(&buf, &len, &cap, TD_M_PUT, call++, data, body_len, pattern, data_len);
        frames++;
        Tensord__V1__PutRequest *req = tensord__v1__put_request__unpack(NULL, body_len, data);
        if (req) {
            ids[nids++] = req->id;
            protobuf_c_message_free_unpacked(&req->base, NULL);
        }
        data += body_len;
        size -= body_len;
    }
    for (size_t i = 0; i < nids; i++) {
        Tensord__V1__GetRequest g = TENSORD__V1__GET_REQUEST__INIT;
        uint8_t gbody[64];
        g.id = ids[i];
        size_t glen = tensord__v1__get_request__pack(&g, gbody);
        append(&buf, &len, &cap, TD_M_GET, call++, gbody, glen, NULL, 0);
        frames++;
    }
    Tensord__V1__FreeRequest fr = TENSORD__V1__FREE_REQUEST__INIT;
    fr.n_ids = nids;
    fr.ids = ids;
    uint8_t fbody[16 + 10 * MAX_RECORDS];
    size_t flen = tensord__v1__free_request__pack(&fr, fbody);
    append(&buf, &len, &cap, TD_M_FREE, call++, fbody, flen, NULL, 0);
    append(&buf, &len, &cap, TD_M_STATS, call++, NULL, 0, NULL, 0);
    frames += 2;

    /* Every frame here is well framed, so every one must get its reply. */
    size_t replies = fz_session_run(srv, buf, len, seed);
    if (replies != frames) {
        fprintf(stderr, "fuzz_put: %zu frames sent, %zu replies\n", frames, replies);
        abort();
    }
    free(buf);
    return 0;
}
