/*
 * frame.h - the 40-byte frame header of docs/PROTOCOL.md: encoding, decoding, validation.
 * Pure functions; the incremental reader that uses them lives in conn.c.
 */
#ifndef TD_SRV_FRAME_H
#define TD_SRV_FRAME_H

#include <stdint.h>

#include "td_core.h"

#define TD_FRAME_HEADER_SIZE 40
#define TD_FRAME_VERSION 1
#define TD_FRAME_KIND_REQUEST 1
#define TD_FRAME_KIND_RESPONSE 2

enum td_method {
    TD_M_HANDSHAKE = 1,
    TD_M_PUT = 2,
    TD_M_GET = 3,
    TD_M_FREE = 4,
    TD_M_RUN = 5,
    TD_M_LIST_OPS = 6,
    TD_M_STATS = 7,
    TD_M_LIST_SESSIONS = 8,
    TD_M_KILL_SESSION = 9,
    TD_M_SET_QUOTA = 10,
    TD_M_DRAIN = 11,
    TD_M_SHUTDOWN = 12,
    TD_M_HEALTH = 13,
    TD_M_CANCEL = 14,
    TD_M_LIST_USERS = 15,
    TD_M_COUNT
};

struct td_frame_header {
    uint8_t magic[4];
    uint16_t version;
    uint8_t kind;
    uint8_t flags;
    uint32_t method;
    uint32_t reserved;
    uint64_t call_id;
    uint64_t body_len;
    uint64_t data_len;
};

/* Decodes 40 little-endian bytes. Never fails; validation is separate. */
void td_frame_decode(const uint8_t *buf, struct td_frame_header *h);
/* Encodes a response header into buf[40]. */
void td_frame_encode_response(uint8_t *buf, uint32_t method, uint64_t call_id,
                              uint64_t body_len, uint64_t data_len);
/* Checks a request header against the protocol and the limits, before anything is
 * allocated: magic, version, kind, flags, reserved, body_len, data_len. The method number is
 * not checked here (an unknown method is a request error, not a framing error).
 * Returns: 0, TD_EPROTO (malformed) or TD_ELIMIT (a length over its limit); err says which. */
int td_frame_validate(const struct td_frame_header *h, uint64_t max_body, uint64_t max_data,
                      struct td_error *err) TD_WUR;
/* Returns: "Handshake", "Put", ... or "?" */
const char *td_method_name(uint32_t method);

#endif
