/*
 * brg_rtp.c: RTP packet parse and build (RFC 3550 §5.1), RFC 8285 header
 * extensions, the RFC 6464 client-to-mixer audio level, and the rtcp-mux
 * demultiplexer (RFC 5761 §4).
 *
 * Every read is preceded by a bound check against the bytes that remain;
 * the packet is input from the network and is never trusted.
 */
#include "brg_rtp.h"
#include "brg_wire.h"

#include <errno.h>
#include <string.h>

enum {
    EXT_HDR_LEN = 4,            /* profile (16) + length in words (16) */
    EXT_ONE_BYTE = 0xBEDE,      /* RFC 8285 §4.2 */
    EXT_TWO_BYTE_MASK = 0xFFF0, /* RFC 8285 §4.3: 0x100 + 4 appbits */
    EXT_TWO_BYTE = 0x1000,
    EXT_ONE_BYTE_STOP = 15,     /* RFC 8285 §4.2: reserved id, stop */
    EXT_ONE_BYTE_ID_MAX = 14,
    LEVEL_EXT_LEN = 8,          /* 0xBEDE header + 1 element + 2 pad */
};

static const char *const rtp_result_names[BRG_RTP_RESULT_COUNT] = {
    [BRG_RTP_OK] = "ok",
    [BRG_RTP_ERR_TOO_SHORT] = "too short",
    [BRG_RTP_ERR_VERSION] = "bad version",
    [BRG_RTP_ERR_CSRC] = "bad CSRC count",
    [BRG_RTP_ERR_EXT_HEADER] = "truncated extension header",
    [BRG_RTP_ERR_EXT_LENGTH] = "bad extension length",
    [BRG_RTP_ERR_EXT_ELEMENT] = "bad extension element",
    [BRG_RTP_ERR_PADDING] = "bad padding",
};

/* Returns the name of @r, or "unknown" when @r is out of range. */
const char *brg_rtp_result_str(enum brg_rtp_result r)
{
    if ((unsigned)r >= BRG_RTP_RESULT_COUNT)
        return "unknown";
    return rtp_result_names[r];
}

/* Records the RFC 6464 element data @d of @len bytes in @p. The level
 * element is one byte (V bit, 7-bit level); an empty element carries no
 * level and is ignored. */
static void take_level(struct brg_rtp_packet *p, const uint8_t *d, size_t len)
{
    if (len < 1)
        return;
    p->level_present = true;
    p->vad = (d[0] & 0x80) != 0;
    p->level = d[0] & 0x7f;
}

/* Walks the RFC 8285 one-byte-header elements (§4.2) of @p->ext, looking
 * for @id. Returns BRG_RTP_OK or BRG_RTP_ERR_EXT_ELEMENT when an element
 * runs past the block. */
static enum brg_rtp_result walk_one_byte(struct brg_rtp_packet *p, uint8_t id)
{
    const uint8_t *d = p->ext;
    size_t n = p->ext_len;
    size_t i = 0;

    while (i < n) {
        uint8_t eid = d[i] >> 4;
        size_t elen = (size_t)(d[i] & 0x0f) + 1;

        if (eid == 0) {         /* padding byte */
            i++;
            continue;
        }
        if (eid == EXT_ONE_BYTE_STOP)
            break;
        if (elen > n - i - 1)
            return BRG_RTP_ERR_EXT_ELEMENT;
        if (eid == id && !p->level_present)
            take_level(p, d + i + 1, elen);
        i += 1 + elen;
    }
    return BRG_RTP_OK;
}

/* Walks the RFC 8285 two-byte-header elements (§4.3) of @p->ext, looking
 * for @id. Returns BRG_RTP_OK or BRG_RTP_ERR_EXT_ELEMENT. */
static enum brg_rtp_result walk_two_byte(struct brg_rtp_packet *p, uint8_t id)
{
    const uint8_t *d = p->ext;
    size_t n = p->ext_len;
    size_t i = 0;

    while (i < n) {
        uint8_t eid = d[i];
        size_t elen;

        if (eid == 0) {         /* padding byte */
            i++;
            continue;
        }
        if (n - i < 2)
            return BRG_RTP_ERR_EXT_ELEMENT;
        elen = d[i + 1];
        if (elen > n - i - 2)
            return BRG_RTP_ERR_EXT_ELEMENT;
        if (eid == id && !p->level_present)
            take_level(p, d + i + 2, elen);
        i += 2 + elen;
    }
    return BRG_RTP_OK;
}

/* Parses the header extension starting at @buf + *@off (X bit set),
 * advancing *@off past it. Returns BRG_RTP_OK or the rejection reason. */
static enum brg_rtp_result parse_ext(struct brg_rtp_packet *p,
                                     const uint8_t *buf, size_t len,
                                     size_t *off, uint8_t level_id)
{
    size_t words_len;

    if (len - *off < EXT_HDR_LEN)
        return BRG_RTP_ERR_EXT_HEADER;
    p->ext_profile = brg__get16(buf + *off);
    words_len = (size_t)brg__get16(buf + *off + 2) * 4;
    *off += EXT_HDR_LEN;
    if (words_len > len - *off)
        return BRG_RTP_ERR_EXT_LENGTH;
    p->ext = buf + *off;
    p->ext_len = words_len;
    *off += words_len;

    if (level_id == 0)
        return BRG_RTP_OK;
    if (p->ext_profile == EXT_ONE_BYTE) {
        if (level_id > EXT_ONE_BYTE_ID_MAX)
            return walk_one_byte(p, 0);  /* validate only */
        return walk_one_byte(p, level_id);
    }
    if ((p->ext_profile & EXT_TWO_BYTE_MASK) == EXT_TWO_BYTE)
        return walk_two_byte(p, level_id);
    return BRG_RTP_OK;
}

/* Parses an RTP packet; see brg_rtp.h. Layout (RFC 3550 §5.1):
 * V(2) P(1) X(1) CC(4) | M(1) PT(7) | seq(16) | ts(32) | ssrc(32) |
 * CSRC[CC] | [extension] | payload | [padding, last byte = count]. */
enum brg_rtp_result brg_rtp_parse(struct brg_rtp_packet *out,
                                  const uint8_t *buf, size_t len,
                                  uint8_t level_ext_id)
{
    enum brg_rtp_result r;
    size_t off = BRG_RTP_HEADER_LEN;
    size_t end = len;

    memset(out, 0, sizeof(*out));
    out->level = BRG_RTP_LEVEL_MAX;
    if (len < BRG_RTP_HEADER_LEN)
        return BRG_RTP_ERR_TOO_SHORT;
    out->version = buf[0] >> 6;
    if (out->version != BRG_RTP_VERSION)
        return BRG_RTP_ERR_VERSION;
    out->padding = (buf[0] & 0x20) != 0;
    out->extension = (buf[0] & 0x10) != 0;
    out->csrc_count = buf[0] & 0x0f;
    out->marker = (buf[1] & 0x80) != 0;
    out->pt = buf[1] & 0x7f;
    out->seq = brg__get16(buf + 2);
    out->ts = brg__get32(buf + 4);
    out->ssrc = brg__get32(buf + 8);

    if ((size_t)out->csrc_count * 4 > len - off)
        return BRG_RTP_ERR_CSRC;
    for (unsigned i = 0; i < out->csrc_count; i++, off += 4)
        out->csrc[i] = brg__get32(buf + off);

    if (out->extension) {
        r = parse_ext(out, buf, len, &off, level_ext_id);
        if (r != BRG_RTP_OK)
            return r;
    }

    /* The pad count includes itself, so 0 is invalid, and it may not eat
     * into the headers (RFC 3550 §5.1, P bit). */
    if (out->padding) {
        uint8_t pad = buf[len - 1];

        if (pad == 0 || pad > len - off)
            return BRG_RTP_ERR_PADDING;
        out->pad_len = pad;
        end = len - pad;
    }
    out->payload = buf + off;
    out->payload_len = end - off;
    return BRG_RTP_OK;
}

/* Builds an RTP packet; see brg_rtp.h. */
int brg_rtp_build(uint8_t *buf, size_t cap, const struct brg_rtp_header *h,
                  const uint8_t *payload, size_t payload_len)
{
    uint8_t id = h->level_ext_id ? h->level_ext_id : BRG_RTP_EXT_ID_AUDIO_LEVEL;
    size_t ext = h->level_present ? LEVEL_EXT_LEN : 0;
    size_t total;
    uint8_t *p = buf;

    if (h->pt > 127 || (h->level_present &&
                        (h->level > BRG_RTP_LEVEL_MAX ||
                         id > EXT_ONE_BYTE_ID_MAX)))
        return -EINVAL;
    if (payload_len > cap || cap - payload_len < BRG_RTP_HEADER_LEN + ext)
        return -ENOBUFS;
    total = BRG_RTP_HEADER_LEN + ext + payload_len;
    if (total > INT32_MAX)
        return -ENOBUFS;

    p[0] = (uint8_t)(BRG_RTP_VERSION << 6 | (ext ? 0x10 : 0));
    p[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->pt);
    brg__put16(p + 2, h->seq);
    brg__put32(p + 4, h->ts);
    brg__put32(p + 8, h->ssrc);
    p += BRG_RTP_HEADER_LEN;
    if (ext) {
        /* RFC 8285 §4.2: id in the high nibble, length - 1 (0) in the low;
         * two zero padding bytes fill the 32-bit word. */
        brg__put16(p, EXT_ONE_BYTE);
        brg__put16(p + 2, 1);
        p[4] = (uint8_t)(id << 4);
        p[5] = (uint8_t)((h->vad ? 0x80 : 0) | h->level);
        p[6] = 0;
        p[7] = 0;
        p += ext;
    }
    if (payload_len)
        memcpy(p, payload, payload_len);
    return (int)total;
}

/* Classifies a datagram; see brg_rtp.h. RFC 7983 puts RTP/RTCP at first
 * bytes 128..191; RFC 5761 §4 tells RTCP by PT 64..95 once the marker bit
 * is masked (RTCP packet types 192..223). */
enum brg_pkt_kind brg_rtp_demux(const uint8_t *buf, size_t len)
{
    uint8_t pt;

    if (len < BRG_RTCP_HEADER_LEN || buf[0] < 128 || buf[0] > 191)
        return BRG_PKT_OTHER;
    pt = buf[1] & 0x7f;
    if (pt >= 64 && pt <= 95)
        return BRG_PKT_RTCP;
    return BRG_PKT_RTP;
}
