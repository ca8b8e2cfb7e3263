/*
 * brg_join.h: the application payloads of a secure leg's handshake, shared
 * by the bridge and chorus-client (docs/protocol.md, "Joining a room").
 *
 * The initiator's INIT carries a join request, the responder's RESP the
 * verdict; both are small UTF-8 JSON objects. Because a responder never
 * answers with more bytes than it received (no amplification), the request
 * is padded to BRG_JOIN_REQ_PAD bytes, which leaves room for any answer.
 *
 * Inside an established session, a DATA payload whose first byte is
 * 0x80..0xBF is RTP or RTCP; BRG_CTRL_BYE (0x01) followed by a UTF-8 reason
 * says the sender is leaving (or, from the bridge, that the leg was
 * removed: kicked, room deleted, shutdown).
 *
 * Thread: any (pure functions).
 */
#ifndef BRG_JOIN_H
#define BRG_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    BRG_JOIN_VERSION = 1,
    BRG_JOIN_REQ_PAD = 384,      /* request size on the wire, bytes */
    BRG_JOIN_FIELD_MAX = 64,     /* room, pin, name: bytes without NUL */
    BRG_JOIN_ERROR_MAX = 127,
    BRG_CTRL_BYE = 0x01,
};

struct brg_join_req {
    char room[BRG_JOIN_FIELD_MAX + 1];
    char pin[BRG_JOIN_FIELD_MAX + 1];   /* "" when none */
    char name[BRG_JOIN_FIELD_MAX + 1];  /* display name, may be "" */
    uint32_t rate;                      /* Opus rate the client decodes at */
};

struct brg_join_resp {
    bool ok;
    uint32_t id;                        /* participant id, when ok */
    uint32_t sample_rate, frame_ms;     /* the room's, when ok */
    char error[BRG_JOIN_ERROR_MAX + 1]; /* why not, when !ok */
};

/* Encode into @out (@cap >= BRG_JOIN_REQ_PAD). Returns the length or a
 * negative errno. */
int brg_join_req_encode(const struct brg_join_req *req, uint8_t *out, size_t cap);
/* Returns 0, or -EINVAL for anything malformed, oversized or unknown. */
int brg_join_req_decode(struct brg_join_req *req, const uint8_t *buf, size_t len);

int brg_join_resp_encode(const struct brg_join_resp *resp, uint8_t *out, size_t cap);
int brg_join_resp_decode(struct brg_join_resp *resp, const uint8_t *buf, size_t len);

#endif /* BRG_JOIN_H */
