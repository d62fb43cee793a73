/*
 * fuzz_admin.c - libFuzzer target for the Handshake token and the administration methods
 * (ListSessions, KillSession, SetQuota, Drain, Shutdown, Health) on a daemon with a token
 * file (fz_server's FZ_ADMIN_TOKEN for "root", role admin, and FZ_USER_TOKEN for "alice",
 * role user).
 *
 * Input: 2 bytes of split seed, 1 mode byte, then up to 16 records, each
 *   u8 method selector, u16 body_len (LE), body_len bytes of body.
 * Mode (low 2 bits): 0 the target first sends a Handshake with the admin token, 1 with the
 * user token, 2 with a wrong token, 3 no Handshake (the records may hold their own, whose
 * fuzzed body carries any auth_token). Each record becomes one frame whose method is
 * selector % 16 + 1 (16 is an unknown method); Run (5) is sent as Stats, since graph work
 * is fuzz_run's. Bodies are the fuzzed protobuf messages, data sections are empty.
 *
 * Checks besides "no crash, leak, hang or malformed reply" (fz_server): an admin method
 * (8-12, 15) never succeeds on a session that authenticated with the user token or did not
 * authenticate at all; after the wrong token the server answers nothing more; after each
 * input every user's bytes, tensors and sessions are back to 0 (fz_server).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fz_server.h"
#include "tensord.pb-c.h"

#define MAX_BODY (1 << 16)
#define MAX_DATA (1 << 16)
#define MAX_RECORDS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MODE_ADMIN, MODE_USER, MODE_WRONG, MODE_NONE };

static int mode;
static bool authed_admin;   /* an OK Handshake reply arrived for a handshake as root */
static bool authed;         /* an OK Handshake reply arrived */
/* The session's role is decided by the first Handshake frame, whatever its reply: the token
 * is checked while the frame is read, before the protocol version, and a later Handshake
 * (a retry after FAILED_PRECONDITION) is not authenticated again. */
static bool first_hs_seen, first_hs_admin;
static size_t replies_after_refusal;
static bool refused;

static void die(const char *what, uint32_t method, int code)
{
    fprintf(stderr, "fuzz_admin: %s (method %u, code %d, mode %d)\n", what, method, code,
            mode);
    abort();
}

static void on_reply(uint32_t method, uint64_t call_id, int code)
{
    (void)call_id;
    if (refused)
        replies_after_refusal++;
    if (method == 1 && call_id == 1 && mode != MODE_NONE) {
        /* the target's own Handshake: its verdict is known in advance */
        if ((mode == MODE_WRONG) != (code != 0))
            die("the Handshake's verdict does not match its token", method, code);
        if (code != 0)
            refused = true;
        authed = code == 0;
        authed_admin = code == 0 && mode == MODE_ADMIN;
        return;
    }
    if (method == 1 && code == 0) {
        if (authed)
            die("a second Handshake succeeded", method, code);
        authed = true;
        authed_admin = first_hs_admin;
        return;
    }
    if (((method >= 8 && method <= 12) || method == TD_M_LIST_USERS) && code == 0 &&
        !authed_admin)
        die("an admin method succeeded without an admin session", method, code);
}

static void append(uint8_t **buf, size_t *len, size_t *cap, uint32_t method, uint64_t call_id,
                   const uint8_t *body, size_t body_len)
{
    if (fz_frame_append(buf, len, cap, method, call_id, body, body_len, NULL, 0) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fz_limits lim = {
        .max_frame_body = MAX_BODY,
        .max_frame_data = MAX_DATA,
        .max_graph_nodes = 16,
        .max_session_ids = 16,
        .max_session_bytes = 4 << 20,
        .auth = true,
    };
    struct td_server *srv = fz_server_get(&lim);
    fz_on_reply = on_reply;
    if (size < 3)
        return 0;
    uint32_t seed = (uint32_t)data[0] | ((uint32_t)data[1] << 8);
    mode = data[2] & 3;
    data += 3;
    size -= 3;
    authed = authed_admin = refused = false;
    replies_after_refusal = 0;
    first_hs_admin = false;
    first_hs_seen = mode != MODE_NONE;

    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    uint64_t call = 1;
    if (mode != MODE_NONE) {
        static const char *const tokens[] = {FZ_ADMIN_TOKEN, FZ_USER_TOKEN,
                                             "fz-wrong-0123456789abcdef"};
        Tensord__V1__HandshakeRequest hs = TENSORD__V1__HANDSHAKE_REQUEST__INIT;
        hs.protocol_version = 1;
        hs.client_name = (char *)"fuzz_admin";
        hs.auth_token = (char *)tokens[mode];
        uint8_t body[256];
        size_t n = tensord__v1__handshake_request__get_packed_size(&hs);
        if (n > sizeof body)
            abort();
        tensord__v1__handshake_request__pack(&hs, body);
        append(&buf, &len, &cap, TD_M_HANDSHAKE, call++, body, n);
    }
    for (int r = 0; r < MAX_RECORDS && size >= 3; r++) {
        uint32_t method = (uint32_t)data[0] % 16 + 1;
        size_t blen = (size_t)data[1] | ((size_t)data[2] << 8);
        data += 3;
        size -= 3;
        if (blen > size)
            blen = size;
        if (method == TD_M_RUN)
            method = TD_M_STATS;
        if (method == TD_M_HANDSHAKE) {
            /* the token the server will read from this body (protobuf-c: last one wins) */
            Tensord__V1__HandshakeRequest *hr =
                tensord__v1__handshake_request__unpack(NULL, blen, data);
            if (hr && !first_hs_seen) {   /* an undecodable body authenticates nothing */
                first_hs_admin = hr->auth_token && strcmp(hr->auth_token, FZ_ADMIN_TOKEN) == 0;
                first_hs_seen = true;
            }
            if (hr)
                protobuf_c_message_free_unpacked(&hr->base, NULL);
        }
        append(&buf, &len, &cap, method, call++, data, blen);
        data += blen;
        size -= blen;
    }
    fz_session_run(srv, buf, len, seed);
    free(buf);
    if (refused && replies_after_refusal)
        die("the server answered calls after refusing the token", 0, 0);
    return 0;
}
