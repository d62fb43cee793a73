/* frame.c - frame header encoding and validation (docs/PROTOCOL.md, "Frames"). */
#include "frame.h"

#include <inttypes.h>
#include <string.h>

static const uint8_t magic[4] = {'T', 'D', 'R', 'P'};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void td_frame_decode(const uint8_t *buf, struct td_frame_header *h)
{
    memcpy(h->magic, buf, 4);
    h->version = rd16(buf + 4);
    h->kind = buf[6];
    h->flags = buf[7];
    h->method = rd32(buf + 8);
    h->reserved = rd32(buf + 12);
    h->call_id = rd64(buf + 16);
    h->body_len = rd64(buf + 24);
    h->data_len = rd64(buf + 32);
}

void td_frame_encode_response(uint8_t *buf, uint32_t method, uint64_t call_id,
                              uint64_t body_len, uint64_t data_len)
{
    memcpy(buf, magic, 4);
    wr16(buf + 4, TD_FRAME_VERSION);
    buf[6] = TD_FRAME_KIND_RESPONSE;
    buf[7] = 0;
    wr32(buf + 8, method);
    wr32(buf + 12, 0);
    wr64(buf + 16, call_id);
    wr64(buf + 24, body_len);
    wr64(buf + 32, data_len);
}

int td_frame_validate(const struct td_frame_header *h, uint64_t max_body, uint64_t max_data,
                      struct td_error *err)
{
    if (memcmp(h->magic, magic, 4) != 0)
        return td_error_set(err, TD_EPROTO, "bad magic %02x %02x %02x %02x (want 54 44 52 50)",
                            h->magic[0], h->magic[1], h->magic[2], h->magic[3]);
    if (h->version != TD_FRAME_VERSION)
        return td_error_set(err, TD_EPROTO, "frame version %u not supported (server speaks %d)",
                            h->version, TD_FRAME_VERSION);
    if (h->kind != TD_FRAME_KIND_REQUEST)
        return td_error_set(err, TD_EPROTO, "frame kind %u is not a request (1)", h->kind);
    if (h->flags != 0)
        return td_error_set(err, TD_EPROTO, "frame flags 0x%02x must be 0", h->flags);
    if (h->reserved != 0)
        return td_error_set(err, TD_EPROTO, "frame reserved field 0x%08" PRIx32 " must be 0",
                            h->reserved);
    if (h->body_len > max_body)
        return td_error_set(err, TD_ELIMIT,
                            "frame body_len %" PRIu64 " exceeds max_frame_body %" PRIu64,
                            h->body_len, max_body);
    if (h->data_len > max_data)
        return td_error_set(err, TD_ELIMIT,
                            "frame data_len %" PRIu64 " exceeds max_frame_data %" PRIu64,
                            h->data_len, max_data);
    return 0;
}

const char *td_method_name(uint32_t method)
{
    static const char *const names[TD_M_COUNT] = {
        "?", "Handshake", "Put", "Get", "Free", "Run", "ListOps", "Stats", "ListSessions",
        "KillSession", "SetQuota", "Drain", "Shutdown", "Health", "Cancel",
        "ListUsers"};
    if (method >= TD_M_COUNT)
        return "?";
    return names[method];
}
