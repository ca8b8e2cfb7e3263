/*
 * ovl_wire.c: demultiplexing and the common header check. See ovl_wire.h.
 */
#include "ovl_wire.h"

#include <errno.h>

enum {
    STUN_HDR_LEN = 20,
    STUN_MAGIC = 0x2112A442,
    RTP_MIN_LEN = 8,   /* RTCP's smallest packet: header + SSRC */
    RTP_FIRST_MIN = 0x80,
    RTP_FIRST_MAX = 0xBF,
};

enum ovl_wire_class ovl_wire_classify(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return OVL_CLASS_UNKNOWN;
    /* RFC 8489 section 5: the two most significant bits are zero, the
     * length excludes the 20-byte header and is a multiple of 4, and the
     * magic cookie follows. */
    if (buf[0] <= 0x03) {
        uint32_t cookie;

        if (len < STUN_HDR_LEN || (ovl_load_be16(buf + 2) & 3) != 0)
            return OVL_CLASS_UNKNOWN;
        cookie = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
                 (uint32_t)buf[6] << 8 | buf[7];
        return cookie == STUN_MAGIC ? OVL_CLASS_STUN : OVL_CLASS_UNKNOWN;
    }
    /* RFC 7983 section 7: 128..191 is RTP/RTCP (version 2). */
    if (buf[0] >= RTP_FIRST_MIN && buf[0] <= RTP_FIRST_MAX)
        return len >= RTP_MIN_LEN ? OVL_CLASS_RTP : OVL_CLASS_UNKNOWN;
    if (buf[0] >= OVL_MSG_FIRST_BYTE_MIN && buf[0] <= OVL_MSG_FIRST_BYTE_MAX)
        return len >= sizeof(struct ovl_wire_hdr) ? OVL_CLASS_SECURE
                                                  : OVL_CLASS_UNKNOWN;
    return OVL_CLASS_UNKNOWN;
}

static const char *const drop_names[OVL_DROP__COUNT] = {
    [OVL_DROP_NONE] = "none",
    [OVL_DROP_TOO_SHORT] = "too_short",
    [OVL_DROP_TOO_LONG] = "too_long",
    [OVL_DROP_BAD_TYPE] = "bad_type",
    [OVL_DROP_BAD_VERSION] = "bad_version",
    [OVL_DROP_BAD_HEADER] = "bad_header",
    [OVL_DROP_BAD_MAC1] = "bad_mac1",
    [OVL_DROP_MAC2_NEEDED] = "mac2_needed",
    [OVL_DROP_BAD_MAC2] = "bad_mac2",
    [OVL_DROP_RATE_LIMITED] = "rate_limited",
    [OVL_DROP_BAD_KEY] = "bad_key",
    [OVL_DROP_DECRYPT] = "decrypt",
    [OVL_DROP_IDENTITY] = "identity",
    [OVL_DROP_STALE_TIMESTAMP] = "stale_timestamp",
    [OVL_DROP_REPLAY] = "replay",
    [OVL_DROP_UNKNOWN_INDEX] = "unknown_index",
    [OVL_DROP_KEY_EXPIRED] = "key_expired",
    [OVL_DROP_UNEXPECTED] = "unexpected",
    [OVL_DROP_NO_SPACE] = "no_space",
};

const char *ovl_drop_name(enum ovl_drop d)
{
    if ((unsigned)d >= OVL_DROP__COUNT)
        return "invalid";
    return drop_names[d];
}

/* Fixed length bounds of each type: [min, max]. */
static bool type_bounds(uint8_t type, size_t *min, size_t *max)
{
    switch (type) {
    case OVL_MSG_INIT:
        *min = OVL_INIT_MIN;
        *max = OVL_INIT_MAX;
        return true;
    case OVL_MSG_RESP:
        *min = OVL_RESP_MIN;
        *max = OVL_RESP_MAX;
        return true;
    case OVL_MSG_COOKIE:
        *min = *max = OVL_COOKIE_LEN;
        return true;
    case OVL_MSG_DATA:
        *min = OVL_DATA_MIN;
        *max = OVL_WIRE_MAX_MSG;
        return true;
    case OVL_MSG_KEY_REQ:
        *min = *max = OVL_KEY_REQ_LEN;
        return true;
    case OVL_MSG_KEY_REPLY:
        *min = *max = OVL_KEY_REPLY_LEN;
        return true;
    default:
        return false;
    }
}

int ovl_wire_check(const uint8_t *buf, size_t len, enum ovl_msg_type *type,
                   enum ovl_drop *drop)
{
    size_t min, max;

    if (buf == NULL || len < sizeof(struct ovl_wire_hdr)) {
        *drop = OVL_DROP_TOO_SHORT;
        return -EBADMSG;
    }
    if (!type_bounds(buf[0], &min, &max)) {
        *drop = OVL_DROP_BAD_TYPE;
        return -EBADMSG;
    }
    if (buf[1] != OVL_WIRE_VERSION) {
        *drop = OVL_DROP_BAD_VERSION;
        return -EBADMSG;
    }
    if (buf[2] != 0 || buf[3] != 0) {
        *drop = OVL_DROP_BAD_HEADER;
        return -EBADMSG;
    }
    if (len < min) {
        *drop = OVL_DROP_TOO_SHORT;
        return -EBADMSG;
    }
    if (len > max) {
        *drop = OVL_DROP_TOO_LONG;
        return -EBADMSG;
    }
    *type = (enum ovl_msg_type)buf[0];
    *drop = OVL_DROP_NONE;
    return 0;
}

void ovl_wire_put_hdr(uint8_t *buf, enum ovl_msg_type type)
{
    buf[0] = (uint8_t)type;
    buf[1] = OVL_WIRE_VERSION;
    buf[2] = 0;
    buf[3] = 0;
}
