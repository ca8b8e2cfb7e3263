/*
 * brg_rtcp.c: compound RTCP parse and build (RFC 3550 §6).
 *
 * Parsing follows the validity checks of RFC 3550 appendix A.2: version 2
 * everywhere, the first packet an SR or RR, padding only on the last
 * packet, and the length fields adding up to the datagram exactly. Inside
 * each packet, report blocks, SDES chunks/items and BYE sources are bound
 * checked against that packet's own length.
 */
#include "brg_rtp.h"
#include "brg_wire.h"

#include <errno.h>
#include <string.h>

enum {
    SR_INFO_LEN = 24,           /* sender SSRC + NTP(8) + RTP ts + counts */
    RR_HEAD_LEN = 4,            /* sender SSRC */
    BLOCK_LEN = 24,             /* one report block */
    SDES_CNAME = 1,             /* SDES item type */
    SDES_END = 0,               /* null item: end of chunk */
    LOST_MAX = 0x7fffff,        /* signed 24-bit cumulative lost */
    LOST_MIN = -0x800000,
};

/* Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (unix epoch). */
static const uint64_t NTP_UNIX_OFFSET = 2208988800u;

static const char *const rtcp_result_names[BRG_RTCP_RESULT_COUNT] = {
    [BRG_RTCP_OK] = "ok",
    [BRG_RTCP_ERR_TOO_SHORT] = "too short",
    [BRG_RTCP_ERR_VERSION] = "bad version",
    [BRG_RTCP_ERR_LENGTH] = "bad length",
    [BRG_RTCP_ERR_FIRST] = "first packet not SR or RR",
    [BRG_RTCP_ERR_PADDING] = "bad padding",
    [BRG_RTCP_ERR_COUNT] = "bad report count",
    [BRG_RTCP_ERR_SDES] = "bad SDES",
    [BRG_RTCP_ERR_BYE] = "bad BYE",
};

/* Returns the name of @r, or "unknown" when @r is out of range. */
const char *brg_rtcp_result_str(enum brg_rtcp_result r)
{
    if ((unsigned)r >= BRG_RTCP_RESULT_COUNT)
        return "unknown";
    return rtcp_result_names[r];
}

/* One RTCP packet of the compound: its type, count field and body (the
 * bytes after the 4-byte common header, padding removed). */
struct pkt {
    uint8_t pt;
    uint8_t count;
    const uint8_t *body;
    size_t len;
};

/* Decodes the report block at @p into @b. */
static void block_read(struct brg_rtcp_report_block *b, const uint8_t *p)
{
    uint32_t lost = brg__get32(p + 4) & 0xffffff;

    b->ssrc = brg__get32(p);
    b->fraction_lost = p[4];
    /* sign-extend the 24-bit two's complement count */
    b->cumulative_lost = (lost & 0x800000) ? (int32_t)lost - 0x1000000
                                           : (int32_t)lost;
    b->ext_highest_seq = brg__get32(p + 8);
    b->jitter = brg__get32(p + 12);
    b->lsr = brg__get32(p + 16);
    b->dlsr = brg__get32(p + 20);
}

/* Reads @count report blocks at @p into @out, keeping what fits. */
static void blocks_read(struct brg_rtcp_info *out, const uint8_t *p,
                        unsigned count)
{
    for (unsigned i = 0; i < count; i++, p += BLOCK_LEN) {
        if (out->n_blocks == BRG_RTCP_MAX_BLOCKS) {
            out->blocks_dropped += count - i;
            return;
        }
        block_read(&out->blocks[out->n_blocks++], p);
    }
}

/* SR (RFC 3550 §6.4.1): sender info, then count report blocks, then
 * possibly profile-specific extensions (ignored). */
static enum brg_rtcp_result parse_sr(struct brg_rtcp_info *out,
                                     const struct pkt *k)
{
    if (k->len < SR_INFO_LEN ||
        (size_t)k->count * BLOCK_LEN > k->len - SR_INFO_LEN)
        return BRG_RTCP_ERR_COUNT;
    if (!out->has_sr) {
        out->has_sr = true;
        out->sr.ssrc = brg__get32(k->body);
        out->sr.ntp = (uint64_t)brg__get32(k->body + 4) << 32 |
                      brg__get32(k->body + 8);
        out->sr.rtp_ts = brg__get32(k->body + 12);
        out->sr.packet_count = brg__get32(k->body + 16);
        out->sr.octet_count = brg__get32(k->body + 20);
    }
    blocks_read(out, k->body + SR_INFO_LEN, k->count);
    return BRG_RTCP_OK;
}

/* RR (RFC 3550 §6.4.2): sender SSRC, then count report blocks. */
static enum brg_rtcp_result parse_rr(struct brg_rtcp_info *out,
                                     const struct pkt *k)
{
    if (k->len < RR_HEAD_LEN ||
        (size_t)k->count * BLOCK_LEN > k->len - RR_HEAD_LEN)
        return BRG_RTCP_ERR_COUNT;
    if (!out->has_rr) {
        out->has_rr = true;
        out->rr_ssrc = brg__get32(k->body);
    }
    blocks_read(out, k->body + RR_HEAD_LEN, k->count);
    return BRG_RTCP_OK;
}

/* Keeps the first CNAME seen: @n bytes at @d from the chunk of @ssrc. */
static void take_cname(struct brg_rtcp_info *out, uint32_t ssrc,
                       const uint8_t *d, size_t n)
{
    const uint8_t *nul = memchr(d, 0, n);

    if (out->has_cname)
        return;
    if (nul)
        n = (size_t)(nul - d);
    out->has_cname = true;
    out->cname_ssrc = ssrc;
    memcpy(out->cname, d, n);   /* n <= 255 < sizeof(out->cname) */
    out->cname[n] = '\0';
}

/* SDES (RFC 3550 §6.5): count chunks, each an SSRC followed by items
 * (type, length, data) and ended by one or more null octets that pad the
 * chunk to a 32-bit boundary. */
static enum brg_rtcp_result parse_sdes(struct brg_rtcp_info *out,
                                       const struct pkt *k)
{
    size_t off = 0;

    for (unsigned c = 0; c < k->count; c++) {
        uint32_t ssrc;

        if (k->len - off < 4)
            return BRG_RTCP_ERR_SDES;
        ssrc = brg__get32(k->body + off);
        off += 4;
        for (;;) {
            uint8_t type, n;

            if (off >= k->len)
                return BRG_RTCP_ERR_SDES;   /* no null item */
            type = k->body[off];
            if (type == SDES_END) {
                /* body starts 32-bit aligned, so align off itself */
                off = (off + 4) & ~(size_t)3;
                if (off > k->len)
                    return BRG_RTCP_ERR_SDES;
                break;
            }
            if (k->len - off < 2)
                return BRG_RTCP_ERR_SDES;
            n = k->body[off + 1];
            if (n > k->len - off - 2)
                return BRG_RTCP_ERR_SDES;
            if (type == SDES_CNAME)
                take_cname(out, ssrc, k->body + off + 2, n);
            off += 2 + (size_t)n;
        }
    }
    return BRG_RTCP_OK;
}

/* BYE (RFC 3550 §6.6): count SSRC/CSRCs, then an optional reason (length
 * octet + text). */
static enum brg_rtcp_result parse_bye(struct brg_rtcp_info *out,
                                      const struct pkt *k)
{
    size_t off = (size_t)k->count * 4;

    if (off > k->len)
        return BRG_RTCP_ERR_COUNT;
    for (unsigned i = 0; i < k->count; i++) {
        if (out->n_bye < BRG_RTCP_MAX_BYE)
            out->bye[out->n_bye++] = brg__get32(k->body + 4 * (size_t)i);
    }
    if (off < k->len && (size_t)k->body[off] > k->len - off - 1)
        return BRG_RTCP_ERR_BYE;
    return BRG_RTCP_OK;
}

/* Dispatches one packet by type; APP (§6.7), feedback and unknown types
 * are counted and skipped. */
static enum brg_rtcp_result parse_one(struct brg_rtcp_info *out,
                                      const struct pkt *k)
{
    switch (k->pt) {
    case BRG_RTCP_PT_SR:
        return parse_sr(out, k);
    case BRG_RTCP_PT_RR:
        return parse_rr(out, k);
    case BRG_RTCP_PT_SDES:
        return parse_sdes(out, k);
    case BRG_RTCP_PT_BYE:
        return parse_bye(out, k);
    default:
        out->skipped++;
        return BRG_RTCP_OK;
    }
}

/* Parses a compound RTCP packet; see brg_rtp.h. */
enum brg_rtcp_result brg_rtcp_parse(struct brg_rtcp_info *out,
                                    const uint8_t *buf, size_t len)
{
    size_t off = 0;

    memset(out, 0, sizeof(*out));
    if (len < BRG_RTCP_HEADER_LEN || len % 4 != 0)
        return BRG_RTCP_ERR_TOO_SHORT;
    while (off < len) {
        const uint8_t *h = buf + off;
        size_t plen = ((size_t)brg__get16(h + 2) + 1) * 4;
        struct pkt k = { .pt = h[1], .count = h[0] & 0x1f, .body = h + 4 };
        enum brg_rtcp_result r;

        if ((h[0] >> 6) != BRG_RTP_VERSION)
            return BRG_RTCP_ERR_VERSION;
        if (plen > len - off)
            return BRG_RTCP_ERR_LENGTH;
        if (off == 0 && k.pt != BRG_RTCP_PT_SR && k.pt != BRG_RTCP_PT_RR)
            return BRG_RTCP_ERR_FIRST;
        k.len = plen - BRG_RTCP_HEADER_LEN;
        if (h[0] & 0x20) {
            /* padding: only on the last packet; the count includes the
             * count octet itself and stays inside this packet's body */
            uint8_t pad = h[plen - 1];

            if (off + plen != len || pad == 0 || pad > k.len)
                return BRG_RTCP_ERR_PADDING;
            k.len -= pad;
        }
        r = parse_one(out, &k);
        if (r != BRG_RTCP_OK)
            return r;
        out->packets++;
        off += plen;
    }
    return BRG_RTCP_OK;
}

/* ------------------------------------------------------------- build -- */

/* Writes the common header: V=2, no padding, @count, @pt, and the length
 * in 32-bit words minus one for a packet of @bytes (a multiple of 4). */
static void header_write(uint8_t *p, uint8_t count, uint8_t pt, size_t bytes)
{
    p[0] = (uint8_t)(BRG_RTP_VERSION << 6 | (count & 0x1f));
    p[1] = pt;
    brg__put16(p + 2, (uint16_t)(bytes / 4 - 1));
}

/* Encodes @b at @p, clamping the cumulative loss to 24 bits signed. */
static void block_write(uint8_t *p, const struct brg_rtcp_report_block *b)
{
    int32_t lost = b->cumulative_lost;

    if (lost > LOST_MAX)
        lost = LOST_MAX;
    if (lost < LOST_MIN)
        lost = LOST_MIN;
    brg__put32(p, b->ssrc);
    brg__put32(p + 4, (uint32_t)b->fraction_lost << 24 |
                      ((uint32_t)lost & 0xffffff));
    brg__put32(p + 8, b->ext_highest_seq);
    brg__put32(p + 12, b->jitter);
    brg__put32(p + 16, b->lsr);
    brg__put32(p + 20, b->dlsr);
}

/* Bytes of the SDES packet for a CNAME of @n bytes: header, SSRC, item
 * (type, length, text), at least one null octet, padded to 32 bits. */
static size_t sdes_size(size_t n)
{
    return BRG_RTCP_HEADER_LEN + 4 + ((2 + n + 1 + 3) & ~(size_t)3);
}

/* Writes the SDES packet with one CNAME chunk for @ssrc at @p (sized with
 * sdes_size). */
static void sdes_write(uint8_t *p, uint32_t ssrc, const char *cname, size_t n)
{
    size_t bytes = sdes_size(n);

    memset(p, 0, bytes);        /* null item and padding */
    header_write(p, 1, BRG_RTCP_PT_SDES, bytes);
    brg__put32(p + 4, ssrc);
    p[8] = SDES_CNAME;
    p[9] = (uint8_t)n;
    memcpy(p + 10, cname, n);
}

/* Shared body of the SR and RR builders: @sr NULL means RR from @ssrc. */
static int build_report(uint8_t *buf, size_t cap, uint32_t ssrc,
                        const struct brg_rtcp_sr *sr,
                        const struct brg_rtcp_report_block *block,
                        const char *cname)
{
    size_t n = cname ? strnlen(cname, BRG_RTCP_CNAME_MAX + 1) : 0;
    size_t head = (sr ? BRG_RTCP_HEADER_LEN + SR_INFO_LEN
                      : BRG_RTCP_HEADER_LEN + RR_HEAD_LEN);
    size_t first = head + (block ? BLOCK_LEN : 0);
    size_t total;

    if (n == 0 || n > BRG_RTCP_CNAME_MAX)
        return -EINVAL;
    total = first + sdes_size(n);
    if (total > cap)
        return -ENOBUFS;

    header_write(buf, block ? 1 : 0, sr ? BRG_RTCP_PT_SR : BRG_RTCP_PT_RR,
                 first);
    brg__put32(buf + 4, ssrc);
    if (sr) {
        brg__put32(buf + 8, (uint32_t)(sr->ntp >> 32));
        brg__put32(buf + 12, (uint32_t)sr->ntp);
        brg__put32(buf + 16, sr->rtp_ts);
        brg__put32(buf + 20, sr->packet_count);
        brg__put32(buf + 24, sr->octet_count);
    }
    if (block)
        block_write(buf + head, block);
    sdes_write(buf + first, ssrc, cname, n);
    return (int)total;
}

/* Builds RR + SDES CNAME; see brg_rtp.h. */
int brg_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc,
                      const struct brg_rtcp_report_block *block,
                      const char *cname)
{
    return build_report(buf, cap, ssrc, NULL, block, cname);
}

/* Builds SR + SDES CNAME; see brg_rtp.h. */
int brg_rtcp_build_sr(uint8_t *buf, size_t cap, const struct brg_rtcp_sr *sr,
                      const struct brg_rtcp_report_block *block,
                      const char *cname)
{
    return build_report(buf, cap, sr->ssrc, sr, block, cname);
}

/* Converts unix microseconds to NTP 32.32; see brg_rtp.h. */
uint64_t brg_ntp_from_unix_us(uint64_t unix_us)
{
    uint64_t sec = unix_us / 1000000 + NTP_UNIX_OFFSET;
    uint64_t frac = ((unix_us % 1000000) << 32) / 1000000;

    return sec << 32 | frac;
}
