/*
 * test_rtp.c: RTP/RTCP wire formats and receiver statistics (brg_rtp.h).
 *
 * Table-driven: parse cases with hand-written bytes, every truncation of a
 * packet (each prefix copied into an exactly-sized heap buffer, so ASan
 * catches any over-read), build -> parse round trips, RTCP compound accept
 * and reject cases, and RFC 3550 appendix A statistics scenarios with the
 * jitter estimator checked against values computed by hand.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "brg_rtp.h"

/* Parses a heap copy of exactly @len bytes so over-reads are caught. */
static enum brg_rtp_result parse_copy(struct brg_rtp_packet *p,
                                      const uint8_t *b, size_t len,
                                      uint8_t id, uint8_t **keep)
{
    uint8_t *copy = malloc(len ? len : 1);

    cr_assert(copy);
    if (len)
        memcpy(copy, b, len);
    *keep = copy;
    return brg_rtp_parse(p, copy, len, id);
}

/* ------------------------------------------------------ RTP parsing -- */

#define HDR(b0, b1) b0, b1, 0x12, 0x34, 0, 0, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef

/* Inline arrays, not pointers: Criterion copies parameters into a fresh
 * process, where pointers into this one mean nothing. */
struct parse_case {
    char name[48];
    size_t len;
    uint8_t level_id;
    enum brg_rtp_result result;
    /* checked on OK only */
    size_t payload_off;
    size_t payload_len;
    bool level_present;
    bool vad;
    uint8_t level;
    uint8_t csrc_count;
    uint8_t bytes[64];
};

/* Rows: a rejected packet, or an accepted one with what to check. */
#define REJECT(name, len, id, result, ...) \
    { name, len, id, result, 0, 0, false, false, 0, 0, { __VA_ARGS__ } }
#define GOOD(name, len, id, off, plen, lp, vad, level, cc, ...) \
    { name, len, id, BRG_RTP_OK, off, plen, lp, vad, level, cc, { __VA_ARGS__ } }

static const struct parse_case parse_cases[] = {
    GOOD("minimal", 14, 1, 12, 2, false, false, 127, 0,
        HDR(0x80, 0x6f), 'a', 'b'),
    GOOD("header only", 12, 1, 12, 0, false, false, 127, 0,
        HDR(0x80, 0x6f)),
    REJECT("too short", 11, 1, BRG_RTP_ERR_TOO_SHORT,
        HDR(0x80, 0x6f)),
    REJECT("empty", 0, 1, BRG_RTP_ERR_TOO_SHORT,
        0),
    REJECT("version 0", 13, 1, BRG_RTP_ERR_VERSION,
        HDR(0x00, 0x6f), 1),
    REJECT("version 1", 13, 1, BRG_RTP_ERR_VERSION,
        HDR(0x40, 0x6f), 1),
    REJECT("version 3", 13, 1, BRG_RTP_ERR_VERSION,
        HDR(0xc0, 0x6f), 1),
    GOOD("two CSRCs", 21, 1, 20, 1, false, false, 127, 2,
        HDR(0x82, 0x6f), 0, 0, 0, 1, 0, 0, 0, 2, 'x'),
    REJECT("CSRC count past end", 16, 1, BRG_RTP_ERR_CSRC,
        HDR(0x82, 0x6f), 0, 0, 0, 1),
    REJECT("CSRC count 15, none", 16, 1, BRG_RTP_ERR_CSRC,
        HDR(0x8f, 0x6f), 1, 2, 3, 4),
    GOOD("one-byte level", 21, 1, 20, 1, true, true, 5, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                          0x10, 0x85, 0, 0, 'p'),
    GOOD("one-byte level, V=0, after other id", 24, 1, 24, 0, true, false, 127, 0,
        HDR(0x90, 0x6f),
      0xbe, 0xde, 0, 2, 0x31, 0xaa, 0xbb, 0x10, 0x7f, 0, 0, 0),
    GOOD("one-byte other id only", 20, 1, 20, 0, false, false, 127, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                                  0x20, 0x85, 0, 0),
    GOOD("one-byte configured id 3", 20, 3, 20, 0, true, true, 10, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                                    0x10, 0x05, 0x30, 0x8a),
    GOOD("one-byte lookup disabled", 20, 0, 20, 0, false, false, 127, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                                    0x10, 0x85, 0, 0),
    REJECT("one-byte element past block", 24, 1, BRG_RTP_ERR_EXT_ELEMENT,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                                       0x1f, 0x85, 0, 0, 1, 2, 3, 4),
    GOOD("one-byte id 15 stops walk", 20, 1, 20, 0, false, false, 127, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 1,
                                     0xff, 0x10, 0x85, 0),
    GOOD("one-byte empty block", 17, 1, 16, 1, false, false, 127, 0,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 0, 'z'),
    GOOD("two-byte level", 20, 1, 20, 0, true, true, 5, 0,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                          0x01, 0x01, 0x85, 0),
    GOOD("two-byte appbits, pad, other, level", 24, 1, 24, 0, true, true, 127, 0,
        HDR(0x90, 0x6f),
      0x10, 0x05, 0, 2, 0x00, 0x02, 0x01, 0xaa, 0x01, 0x01, 0xff, 0x00),
    GOOD("two-byte level id 200", 20, 200, 20, 0, true, false, 3, 0,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                                 0xc8, 0x01, 0x03, 0),
    GOOD("two-byte other id only", 20, 1, 20, 0, false, false, 127, 0,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                                  0x02, 0x01, 0x85, 0),
    GOOD("two-byte zero-length level", 20, 1, 20, 0, false, false, 127, 0,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                                      0x01, 0x00, 0x00, 0),
    REJECT("two-byte element past block", 20, 1, BRG_RTP_ERR_EXT_ELEMENT,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                                       0x01, 0x05, 0x85, 0),
    REJECT("two-byte header cut", 20, 1, BRG_RTP_ERR_EXT_ELEMENT,
        HDR(0x90, 0x6f), 0x10, 0x00, 0, 1,
                               0x00, 0x00, 0x00, 0x07),
    GOOD("other profile kept", 21, 1, 20, 1, false, false, 127, 0,
        HDR(0x90, 0x6f), 0x12, 0x34, 0, 1,
                              0x10, 0x85, 0, 0, 'q'),
    REJECT("extension header truncated", 14, 1, BRG_RTP_ERR_EXT_HEADER,
        HDR(0x90, 0x6f), 0xbe, 0xde),
    REJECT("extension length past end", 20, 1, BRG_RTP_ERR_EXT_LENGTH,
        HDR(0x90, 0x6f), 0xbe, 0xde, 0, 5,
                                     0x10, 0x85, 0, 0),
    GOOD("padding ok", 18, 1, 12, 3, false, false, 127, 0,
        HDR(0xa0, 0x6f), 'a', 'b', 'c', 0, 0, 3),
    GOOD("padding is whole payload", 16, 1, 12, 0, false, false, 127, 0,
        HDR(0xa0, 0x6f), 0, 0, 0, 4),
    REJECT("padding count 0", 14, 1, BRG_RTP_ERR_PADDING,
        HDR(0xa0, 0x6f), 'a', 0),
    REJECT("padding past payload", 14, 1, BRG_RTP_ERR_PADDING,
        HDR(0xa0, 0x6f), 'a', 5),
    REJECT("padding into extension", 20, 1, BRG_RTP_ERR_PADDING,
        HDR(0xb0, 0x6f), 0xbe, 0xde, 0, 1,
                                  0x10, 0x85, 0, 2),
    REJECT("padding, header only", 12, 1, BRG_RTP_ERR_PADDING,
        HDR(0xa0, 0x6f)),
    GOOD("padding with extension and CSRC", 28, 1, 24, 2, true, false, 1, 1,
        HDR(0xb1, 0x6f), 0, 0, 0, 9,
      0xbe, 0xde, 0, 1, 0x10, 0x01, 0, 0, 'a', 'b', 0, 2),
};

ParameterizedTestParameters(rtp, parse_table)
{
    return cr_make_param_array(struct parse_case, (void *)parse_cases,
                               sizeof(parse_cases) / sizeof(parse_cases[0]));
}

ParameterizedTest(const struct parse_case *c, rtp, parse_table)
{
    struct brg_rtp_packet p;
    uint8_t *buf;
    enum brg_rtp_result r = parse_copy(&p, c->bytes, c->len, c->level_id, &buf);

    cr_expect_eq(r, c->result, "%s: got '%s', want '%s'", c->name,
                 brg_rtp_result_str(r), brg_rtp_result_str(c->result));
    if (r == BRG_RTP_OK && c->result == BRG_RTP_OK) {
        cr_expect_eq(p.payload, buf + c->payload_off, "%s: payload offset %td",
                     c->name, p.payload - buf);
        cr_expect_eq(p.payload_len, c->payload_len, "%s: payload_len %zu",
                     c->name, p.payload_len);
        cr_expect_eq(p.level_present, c->level_present, "%s: level_present",
                     c->name);
        cr_expect_eq(p.vad, c->vad, "%s: vad", c->name);
        cr_expect_eq(p.level, c->level, "%s: level %u", c->name, p.level);
        cr_expect_eq(p.csrc_count, c->csrc_count, "%s: csrc_count", c->name);
        cr_expect_eq(p.seq, 0x1234);
        cr_expect_eq(p.ts, 0x3c0u);
        cr_expect_eq(p.ssrc, 0xdeadbeefu);
        cr_expect_eq(p.pt, 0x6f);
    }
    free(buf);
}

Test(rtp, header_fields)
{
    static const uint8_t b[] = { 0x82, 0xe0, 0xff, 0xfe, 0x80, 0, 0, 1,
                                 0, 0, 0, 7, 0xca, 0xfe, 0xba, 0xbe,
                                 0, 0, 0, 1 };
    struct brg_rtp_packet p;

    cr_assert_eq(brg_rtp_parse(&p, b, sizeof(b), 1), BRG_RTP_OK);
    cr_expect(p.marker);
    cr_expect_eq(p.pt, 96);
    cr_expect_eq(p.seq, 0xfffe);
    cr_expect_eq(p.ts, 0x80000001u);
    cr_expect_eq(p.ssrc, 7u);
    cr_expect_eq(p.csrc[0], 0xcafebabeu);
    cr_expect_eq(p.csrc[1], 1u);
    cr_expect_not(p.extension);
    cr_expect_eq(p.ext, NULL);
}

/* A packet with CSRC(1) + one-byte extension (1 word) + 4 payload bytes:
 * every prefix has one known outcome. */
Test(rtp, truncated_at_every_length)
{
    static const uint8_t b[] = { HDR(0x91, 0x6f), 1, 2, 3, 4,
                                 0xbe, 0xde, 0, 1, 0x10, 0x85, 0, 0,
                                 'a', 'b', 'c', 'd' };

    for (size_t len = 0; len <= sizeof(b); len++) {
        struct brg_rtp_packet p;
        uint8_t *buf;
        enum brg_rtp_result want =
            len < 12 ? BRG_RTP_ERR_TOO_SHORT :
            len < 16 ? BRG_RTP_ERR_CSRC :
            len < 20 ? BRG_RTP_ERR_EXT_HEADER :
            len < 24 ? BRG_RTP_ERR_EXT_LENGTH : BRG_RTP_OK;
        enum brg_rtp_result r = parse_copy(&p, b, len, 1, &buf);

        cr_expect_eq(r, want, "len %zu: got '%s'", len, brg_rtp_result_str(r));
        if (r == BRG_RTP_OK) {
            cr_expect_eq(p.payload_len, len - 24);
            cr_expect(p.level_present);
        }
        free(buf);
    }
}

/* Every prefix of a padded packet: parsing must stay in bounds; the
 * outcome depends on the byte that happens to be last. */
Test(rtp, truncated_padded_stays_in_bounds)
{
    static const uint8_t b[] = { HDR(0xb2, 0x6f), 1, 2, 3, 4, 5, 6, 7, 8,
                                 0x10, 0x00, 0, 2, 0x01, 0x01, 0x85, 0x00,
                                 0x00, 0x00, 0x00, 0x00,
                                 'a', 'b', 'c', 'd', 0, 0, 0, 4 };

    for (size_t len = 0; len <= sizeof(b); len++) {
        struct brg_rtp_packet p;
        uint8_t *buf;
        enum brg_rtp_result r = parse_copy(&p, b, len, 1, &buf);

        if (r == BRG_RTP_OK) {
            cr_expect(p.payload >= buf);
            cr_expect(p.payload + p.payload_len + p.pad_len == buf + len);
        }
        free(buf);
    }
}

Test(rtp, result_names)
{
    for (int r = 0; r < BRG_RTP_RESULT_COUNT; r++) {
        cr_expect_not_null(brg_rtp_result_str(r));
        cr_expect_str_neq(brg_rtp_result_str(r), "unknown", "result %d", r);
    }
    cr_expect_str_eq(brg_rtp_result_str(BRG_RTP_RESULT_COUNT), "unknown");
    cr_expect_str_eq(brg_rtp_result_str((enum brg_rtp_result)-1), "unknown");
    cr_expect_str_eq(brg_rtp_result_str(BRG_RTP_ERR_PADDING), "bad padding");
}

/* ------------------------------------------------------- RTP build -- */

struct build_case {
    struct brg_rtp_header h;
    size_t payload_len;
};

static const struct build_case build_cases[] = {
    { { .pt = 111, .seq = 1, .ts = 960, .ssrc = 0x11223344 }, 40 },
    { { .pt = 0, .marker = true, .seq = 65535, .ts = 0xffffffff, .ssrc = 1 },
      0 },
    { { .pt = 127, .seq = 7, .ts = 8, .ssrc = 9, .level_present = true,
        .vad = true, .level = 0 }, 3 },
    { { .pt = 96, .seq = 7, .ts = 8, .ssrc = 9, .level_present = true,
        .vad = false, .level = 127, .level_ext_id = 14 }, 160 },
    { { .pt = 8, .seq = 300, .ts = 12345, .ssrc = 0xffffffff,
        .level_present = true, .vad = true, .level = 42,
        .level_ext_id = 5 }, 1 },
};

ParameterizedTestParameters(rtp, build_round_trip)
{
    return cr_make_param_array(struct build_case, (void *)build_cases,
                               sizeof(build_cases) / sizeof(build_cases[0]));
}

ParameterizedTest(const struct build_case *c, rtp, build_round_trip)
{
    uint8_t payload[200], buf[256];
    uint8_t id = c->h.level_ext_id ? c->h.level_ext_id : 1;
    struct brg_rtp_packet p;
    size_t want = 12 + (c->h.level_present ? 8 : 0) + c->payload_len;
    int n;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    n = brg_rtp_build(buf, sizeof(buf), &c->h, payload, c->payload_len);
    cr_assert_eq(n, (int)want);
    cr_assert_eq(brg_rtp_parse(&p, buf, (size_t)n, id), BRG_RTP_OK);
    cr_expect_eq(p.pt, c->h.pt);
    cr_expect_eq(p.marker, c->h.marker);
    cr_expect_eq(p.seq, c->h.seq);
    cr_expect_eq(p.ts, c->h.ts);
    cr_expect_eq(p.ssrc, c->h.ssrc);
    cr_expect_eq(p.level_present, c->h.level_present);
    if (c->h.level_present) {
        cr_expect_eq(p.vad, c->h.vad);
        cr_expect_eq(p.level, c->h.level);
        cr_expect_eq(p.ext_profile, 0xbede);
    }
    cr_expect_eq(p.payload_len, c->payload_len);
    cr_expect_arr_eq(p.payload, payload, c->payload_len);

    /* every capacity below the size is refused */
    for (size_t cap = 0; cap < want; cap++)
        cr_expect_eq(brg_rtp_build(buf, cap, &c->h, payload, c->payload_len),
                     -ENOBUFS, "cap %zu", cap);
}

Test(rtp, build_rejects_bad_fields)
{
    uint8_t buf[64];
    struct brg_rtp_header h = { .pt = 128 };

    cr_expect_eq(brg_rtp_build(buf, sizeof(buf), &h, NULL, 0), -EINVAL);
    h = (struct brg_rtp_header){ .pt = 1, .level_present = true, .level = 128 };
    cr_expect_eq(brg_rtp_build(buf, sizeof(buf), &h, NULL, 0), -EINVAL);
    h = (struct brg_rtp_header){ .pt = 1, .level_present = true,
                                 .level_ext_id = 15 };
    cr_expect_eq(brg_rtp_build(buf, sizeof(buf), &h, NULL, 0), -EINVAL);
    /* fields that matter only with a level are ignored without it */
    h = (struct brg_rtp_header){ .pt = 1, .level = 200, .level_ext_id = 99 };
    cr_expect_eq(brg_rtp_build(buf, sizeof(buf), &h, NULL, 0), 12);
}

/* ------------------------------------------------------------ demux -- */

struct demux_case {
    uint8_t b0, b1;
    size_t len;
    enum brg_pkt_kind kind;
};

Test(rtp, demux)
{
    static const struct demux_case cases[] = {
        { 0x80, 200, 8, BRG_PKT_RTCP },     /* SR */
        { 0x81, 201, 32, BRG_PKT_RTCP },    /* RR */
        { 0x80, 0xc0, 8, BRG_PKT_RTCP },    /* PT 64 with marker = 192 */
        { 0x80, 0xdf, 8, BRG_PKT_RTCP },    /* 223: PT 95 */
        { 0x80, 0x40, 12, BRG_PKT_RTCP },   /* PT 64 */
        { 0x80, 0x5f, 12, BRG_PKT_RTCP },   /* PT 95 */
        { 0x80, 0x3f, 12, BRG_PKT_RTP },    /* PT 63 */
        { 0x80, 0x60, 12, BRG_PKT_RTP },    /* PT 96 */
        { 0x80, 0xe0, 12, BRG_PKT_RTP },    /* PT 96 with marker */
        { 0x80, 111, 12, BRG_PKT_RTP },     /* Opus */
        { 0x90, 0x00, 12, BRG_PKT_RTP },    /* PCMU with extension */
        { 0xbf, 0x00, 12, BRG_PKT_RTP },    /* last RTP first byte (191) */
        { 0x00, 0x01, 20, BRG_PKT_OTHER },  /* STUN binding request */
        { 0x16, 0xfe, 20, BRG_PKT_OTHER },  /* DTLS */
        { 0x40, 111, 12, BRG_PKT_OTHER },   /* version 1 */
        { 0xc0, 111, 12, BRG_PKT_OTHER },   /* version 3 */
        { 0x80, 200, 3, BRG_PKT_OTHER },    /* too short */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[32] = { cases[i].b0, cases[i].b1 };

        cr_expect_eq(brg_rtp_demux(b, cases[i].len), cases[i].kind,
                     "case %zu (%02x %02x)", i, cases[i].b0, cases[i].b1);
    }
    cr_expect_eq(brg_rtp_demux(NULL, 0), BRG_PKT_OTHER);
}

/* ------------------------------------------------------------- RTCP -- */

static const struct brg_rtcp_report_block sample_block = {
    .ssrc = 0xa1b2c3d4, .fraction_lost = 64, .cumulative_lost = 1234,
    .ext_highest_seq = 0x00020005, .jitter = 77, .lsr = 0x23456789,
    .dlsr = 98304,
};

static void expect_block_eq(const struct brg_rtcp_report_block *a,
                            const struct brg_rtcp_report_block *b)
{
    cr_expect_eq(a->ssrc, b->ssrc);
    cr_expect_eq(a->fraction_lost, b->fraction_lost);
    cr_expect_eq(a->cumulative_lost, b->cumulative_lost);
    cr_expect_eq(a->ext_highest_seq, b->ext_highest_seq);
    cr_expect_eq(a->jitter, b->jitter);
    cr_expect_eq(a->lsr, b->lsr);
    cr_expect_eq(a->dlsr, b->dlsr);
}

Test(rtcp, rr_build_parse)
{
    uint8_t buf[128];
    struct brg_rtcp_info info;
    int n = brg_rtcp_build_rr(buf, sizeof(buf), 0x01020304, &sample_block,
                              "chorus@example");

    /* RR 8 + block 24, SDES 4 + 4 + (2 + 14 + 1 -> 20) */
    cr_assert_eq(n, 32 + 28);
    cr_expect_eq(buf[0], 0x81);
    cr_expect_eq(buf[1], 201);
    cr_expect_eq(brg_rtp_demux(buf, (size_t)n), BRG_PKT_RTCP);
    cr_assert_eq(brg_rtcp_parse(&info, buf, (size_t)n), BRG_RTCP_OK);
    cr_expect_eq(info.packets, 2u);
    cr_expect(info.has_rr);
    cr_expect_not(info.has_sr);
    cr_expect_eq(info.rr_ssrc, 0x01020304u);
    cr_assert_eq(info.n_blocks, 1u);
    expect_block_eq(&info.blocks[0], &sample_block);
    cr_expect(info.has_cname);
    cr_expect_eq(info.cname_ssrc, 0x01020304u);
    cr_expect_str_eq(info.cname, "chorus@example");
}

Test(rtcp, rr_without_block_and_cname_lengths)
{
    uint8_t buf[600];
    char cname[300];
    struct brg_rtcp_info info;

    /* every CNAME length 1..255 gives a parseable, 32-bit aligned packet */
    for (size_t len = 1; len <= 255; len++) {
        int n;

        memset(cname, 'a' + (int)(len % 26), len);
        cname[len] = '\0';
        n = brg_rtcp_build_rr(buf, sizeof(buf), 5, NULL, cname);
        cr_assert_gt(n, 0, "len %zu", len);
        cr_expect_eq(n % 4, 0);
        cr_assert_eq(brg_rtcp_parse(&info, buf, (size_t)n), BRG_RTCP_OK,
                     "len %zu", len);
        cr_expect_eq(info.n_blocks, 0u);
        cr_expect_eq(strlen(info.cname), len);
    }
    memset(cname, 'x', 256);
    cname[256] = '\0';
    cr_expect_eq(brg_rtcp_build_rr(buf, sizeof(buf), 5, NULL, cname), -EINVAL);
    cr_expect_eq(brg_rtcp_build_rr(buf, sizeof(buf), 5, NULL, ""), -EINVAL);
    cr_expect_eq(brg_rtcp_build_rr(buf, sizeof(buf), 5, NULL, NULL), -EINVAL);
}

Test(rtcp, build_small_buffer)
{
    uint8_t buf[128];
    int n = brg_rtcp_build_rr(buf, sizeof(buf), 1, &sample_block, "c");

    cr_assert_gt(n, 0);
    for (int cap = 0; cap < n; cap++)
        cr_expect_eq(brg_rtcp_build_rr(buf, (size_t)cap, 1, &sample_block, "c"),
                     -ENOBUFS, "cap %d", cap);
}

Test(rtcp, sr_build_parse)
{
    uint8_t buf[128];
    struct brg_rtcp_info info;
    struct brg_rtcp_sr sr = { .ssrc = 42, .ntp = 0x0123456789abcdefull,
                              .rtp_ts = 48000, .packet_count = 50,
                              .octet_count = 4000 };
    int n = brg_rtcp_build_sr(buf, sizeof(buf), &sr, &sample_block, "b");

    cr_assert_gt(n, 0);
    cr_assert_eq(brg_rtcp_parse(&info, buf, (size_t)n), BRG_RTCP_OK);
    cr_expect(info.has_sr);
    cr_expect_eq(info.sr.ssrc, 42u);
    cr_expect_eq(info.sr.ntp, 0x0123456789abcdefull);
    cr_expect_eq(info.sr.rtp_ts, 48000u);
    cr_expect_eq(info.sr.packet_count, 50u);
    cr_expect_eq(info.sr.octet_count, 4000u);
    cr_assert_eq(info.n_blocks, 1u);
    expect_block_eq(&info.blocks[0], &sample_block);
}

Test(rtcp, cumulative_lost_sign_and_clamp)
{
    static const int32_t in[] = { 0, 1, -1, -5, 0x7fffff, -0x800000,
                                  10000000, -10000000 };
    static const int32_t out[] = { 0, 1, -1, -5, 0x7fffff, -0x800000,
                                   0x7fffff, -0x800000 };

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct brg_rtcp_report_block b = sample_block;
        struct brg_rtcp_info info;
        uint8_t buf[128];
        int n;

        b.cumulative_lost = in[i];
        n = brg_rtcp_build_rr(buf, sizeof(buf), 1, &b, "c");
        cr_assert_eq(brg_rtcp_parse(&info, buf, (size_t)n), BRG_RTCP_OK);
        cr_expect_eq(info.blocks[0].cumulative_lost, out[i], "in %d", in[i]);
        cr_expect_eq(info.blocks[0].fraction_lost, 64);
    }
}

/* Compound: RR(0 blocks) SDES(2 chunks) BYE(1, reason) APP, then padding
 * on the last packet. */
static const uint8_t compound_ok[] = {
    0x80, 201, 0, 1, 0, 0, 0, 9,                         /* RR */
    0x82, 202, 0, 5,                                     /* SDES, 2 chunks */
    0, 0, 0, 9, 1, 3, 'a', 'b', 'c', 0, 0, 0,           /* chunk 1: CNAME */
    0, 0, 0, 7, 2, 1, 'n', 0,                           /* chunk 2: NAME */
    0x81, 203, 0, 2, 0, 0, 0, 9, 3, 'b', 'y', 'e',      /* BYE + reason */
    0xa0, 204, 0, 3, 0, 0, 0, 9, 'n', 'a', 'm', 'e', 0, 0, 0, 4, /* APP */
};

Test(rtcp, compound_accept)
{
    struct brg_rtcp_info info;

    cr_assert_eq(brg_rtcp_parse(&info, compound_ok, sizeof(compound_ok)),
                 BRG_RTCP_OK);
    cr_expect_eq(info.packets, 4u);
    cr_expect_eq(info.skipped, 1u);
    cr_expect(info.has_rr);
    cr_expect_eq(info.rr_ssrc, 9u);
    cr_expect_str_eq(info.cname, "abc");
    cr_expect_eq(info.cname_ssrc, 9u);
    cr_assert_eq(info.n_bye, 1u);
    cr_expect_eq(info.bye[0], 9u);
}

/* Every prefix parses in bounds; it is accepted exactly at the packet
 * boundaries before the padded last packet. */
Test(rtcp, compound_truncated)
{
    for (size_t len = 0; len <= sizeof(compound_ok); len++) {
        struct brg_rtcp_info info;
        uint8_t *copy = malloc(len ? len : 1);
        enum brg_rtcp_result r;
        bool boundary = len == 8 || len == 32 || len == 44 ||
                        len == sizeof(compound_ok);

        memcpy(copy, compound_ok, len);
        r = brg_rtcp_parse(&info, copy, len);
        cr_expect_eq(r == BRG_RTCP_OK, boundary, "len %zu: %s", len,
                     brg_rtcp_result_str(r));
        free(copy);
    }
}

struct rtcp_reject {
    char name[48];
    uint8_t bytes[64];
    size_t len;
    enum brg_rtcp_result result;
};

static const struct rtcp_reject rtcp_rejects[] = {
    { "empty", { 0 }, 0, BRG_RTCP_ERR_TOO_SHORT },
    { "not a multiple of 4", { 0x80, 201, 0, 1, 0, 0 }, 6,
      BRG_RTCP_ERR_TOO_SHORT },
    { "version 1", { 0x40, 201, 0, 1, 0, 0, 0, 1 }, 8, BRG_RTCP_ERR_VERSION },
    { "version 3", { 0xc0, 201, 0, 1, 0, 0, 0, 1 }, 8, BRG_RTCP_ERR_VERSION },
    { "first is SDES", { 0x80, 202, 0, 1, 0, 0, 0, 1 }, 8,
      BRG_RTCP_ERR_FIRST },
    { "first is BYE", { 0x81, 203, 0, 1, 0, 0, 0, 1 }, 8, BRG_RTCP_ERR_FIRST },
    { "first is APP", { 0x80, 204, 0, 2, 0, 0, 0, 1, 'a', 'b', 'c', 'd' }, 12,
      BRG_RTCP_ERR_FIRST },
    { "first is feedback", { 0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2 }, 12,
      BRG_RTCP_ERR_FIRST },
    { "length past end", { 0x80, 201, 0, 2, 0, 0, 0, 1 }, 8,
      BRG_RTCP_ERR_LENGTH },
    { "length huge", { 0x80, 201, 0xff, 0xff, 0, 0, 0, 1 }, 8,
      BRG_RTCP_ERR_LENGTH },
    { "second length past end", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                                  0x80, 202, 0, 5, 0, 0, 0, 1 }, 16,
      BRG_RTCP_ERR_LENGTH },
    { "second version 0", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                            0x00, 202, 0, 1, 0, 0, 0, 1 }, 16,
      BRG_RTCP_ERR_VERSION },
    { "RR blocks past length", { 0x82, 201, 0, 7, 0, 0, 0, 1,
      1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
      32, BRG_RTCP_ERR_COUNT },
    { "RR without sender SSRC", { 0x80, 201, 0, 0 }, 4, BRG_RTCP_ERR_COUNT },
    { "SR shorter than sender info", { 0x80, 200, 0, 1, 0, 0, 0, 1 }, 8,
      BRG_RTCP_ERR_COUNT },
    { "padding on first of two", { 0xa0, 201, 0, 1, 0, 0, 0, 4,
                                   0x80, 202, 0, 0 }, 12,
      BRG_RTCP_ERR_PADDING },
    { "padding count 0", { 0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0 }, 12,
      BRG_RTCP_ERR_PADDING },
    { "padding past body", { 0xa0, 201, 0, 1, 0, 0, 0, 9 }, 8,
      BRG_RTCP_ERR_PADDING },
    { "padding eats sender SSRC", { 0xa0, 201, 0, 1, 0, 0, 0, 4 }, 8,
      BRG_RTCP_ERR_COUNT },
    { "SDES item past end", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                              0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 'a', 0 }, 20,
      BRG_RTCP_ERR_SDES },
    { "SDES without null item", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                                  0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, 'a', 'b' },
      20, BRG_RTCP_ERR_SDES },
    { "SDES chunk count past end", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                                     0x82, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0 },
      20, BRG_RTCP_ERR_SDES },
    { "BYE count past end", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                              0x82, 203, 0, 1, 0, 0, 0, 1 }, 16,
      BRG_RTCP_ERR_COUNT },
    { "BYE reason past end", { 0x80, 201, 0, 1, 0, 0, 0, 1,
                               0x81, 203, 0, 2, 0, 0, 0, 1, 4, 'a', 'b', 'c' },
      20, BRG_RTCP_ERR_BYE },
};

ParameterizedTestParameters(rtcp, reject_table)
{
    return cr_make_param_array(struct rtcp_reject, (void *)rtcp_rejects,
                               sizeof(rtcp_rejects) / sizeof(rtcp_rejects[0]));
}

ParameterizedTest(const struct rtcp_reject *c, rtcp, reject_table)
{
    struct brg_rtcp_info info;
    uint8_t *copy = malloc(c->len ? c->len : 1);
    enum brg_rtcp_result r;

    memcpy(copy, c->bytes, c->len);
    r = brg_rtcp_parse(&info, copy, c->len);
    cr_expect_eq(r, c->result, "%s: got '%s', want '%s'", c->name,
                 brg_rtcp_result_str(r), brg_rtcp_result_str(c->result));
    free(copy);
}

Test(rtcp, many_blocks_are_capped)
{
    /* 2 RRs with 31 blocks each: 31 kept, 31 counted as dropped */
    size_t one = 8 + 31 * 24;
    uint8_t *buf = calloc(2, one);
    struct brg_rtcp_info info;

    for (int k = 0; k < 2; k++) {
        uint8_t *p = buf + (size_t)k * one;

        p[0] = 0x80 | 31;
        p[1] = 201;
        p[2] = (uint8_t)((one / 4 - 1) >> 8);
        p[3] = (uint8_t)(one / 4 - 1);
    }
    cr_assert_eq(brg_rtcp_parse(&info, buf, 2 * one), BRG_RTCP_OK);
    cr_expect_eq(info.n_blocks, 31u);
    cr_expect_eq(info.blocks_dropped, 31u);
    free(buf);
}

Test(rtcp, ntp_conversion)
{
    cr_expect_eq(brg_ntp_from_unix_us(0), 2208988800ull << 32);
    cr_expect_eq(brg_ntp_from_unix_us(1500000),
                 (2208988801ull << 32) | 0x80000000ull);
    cr_expect_eq(brg_ntp_from_unix_us(250000) & 0xffffffffull, 0x40000000ull);
}

/* ------------------------------------------------- receiver stats -- */

struct pkt_in {
    uint16_t seq;
    enum brg_rtp_seq_result want;
};

struct stats_case {
    char name[48];
    struct pkt_in pkts[32];
    size_t n;
    uint32_t ext_max;
    int32_t cum_lost;
    uint8_t fraction;
    uint32_t restarts;
    uint32_t bad;
};

#define OK BRG_RTP_SEQ_OK
#define PROB BRG_RTP_SEQ_PROBATION
#define BAD BRG_RTP_SEQ_BAD
#define RESTART BRG_RTP_SEQ_RESTART

static const struct stats_case stats_cases[] = {
    { "in order", { {100, PROB}, {101, OK}, {102, OK}, {103, OK}, {104, OK},
                    {105, OK}, {106, OK}, {107, OK}, {108, OK}, {109, OK} },
      10, 109, 0, 0, 0, 0 },
    /* 101..109 expected (9), 104 and 105 missing: 2 * 256 / 9 = 56 */
    { "loss", { {100, PROB}, {101, OK}, {102, OK}, {103, OK}, {106, OK},
                {107, OK}, {108, OK}, {109, OK} },
      8, 109, 2, 56, 0, 0 },
    { "reorder", { {100, PROB}, {101, OK}, {102, OK}, {104, OK}, {103, OK},
                   {105, OK} },
      6, 105, 0, 0, 0, 0 },
    /* a duplicate counts as received: loss goes negative (A.3) */
    { "duplicate", { {100, PROB}, {101, OK}, {102, OK}, {102, OK}, {103, OK} },
      5, 103, -1, 0, 0, 0 },
    { "wrap at 65535", { {65533, PROB}, {65534, OK}, {65535, OK}, {0, OK},
                         {1, OK}, {2, OK} },
      6, 65536 + 2, 0, 0, 0, 0 },
    { "late across wrap", { {65534, PROB}, {65535, OK}, {1, OK}, {0, OK},
                            {2, OK} },
      5, 65536 + 2, 0, 0, 0, 0 },
    /* jump confirmed by the next packet: the sender restarted (A.1) */
    { "sender restart", { {100, PROB}, {101, OK}, {102, OK}, {103, OK},
                          {30000, BAD}, {30001, RESTART}, {30002, OK} },
      7, 30002, 0, 0, 1, 1 },
    { "unconfirmed jump ignored", { {100, PROB}, {101, OK}, {102, OK},
                                    {30000, BAD}, {103, OK}, {104, OK} },
      6, 104, 0, 0, 0, 1 },
    /* probation restarts when the second packet is not in sequence */
    { "probation reset", { {100, PROB}, {102, PROB}, {103, OK}, {104, OK} },
      4, 104, 0, 0, 0, 0 },
    /* far behind (more than MAX_MISORDER) is a jump, not a late packet */
    { "very late is bad", { {1000, PROB}, {1001, OK}, {1200, OK}, {1050, BAD} },
      4, 1200, 198, 253, 0, 1 },
    /* within MAX_MISORDER it is a late packet and counts */
    { "late within misorder", { {1000, PROB}, {1001, OK}, {1050, OK},
                                {1000, OK} },
      4, 1050, 47, 240, 0, 0 },
};

ParameterizedTestParameters(rtp_stats, table)
{
    return cr_make_param_array(struct stats_case, (void *)stats_cases,
                               sizeof(stats_cases) / sizeof(stats_cases[0]));
}

ParameterizedTest(const struct stats_case *c, rtp_stats, table)
{
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;

    brg_rtp_stats_init(&s, 0x5555);
    for (size_t i = 0; i < c->n; i++) {
        enum brg_rtp_seq_result r =
            brg_rtp_stats_update(&s, c->pkts[i].seq, 960u * i, 960u * i);

        cr_expect_eq(r, c->pkts[i].want, "%s: packet %zu (seq %u): got %d",
                     c->name, i, c->pkts[i].seq, r);
    }
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.ssrc, 0x5555u);
    cr_expect_eq(rb.ext_highest_seq, c->ext_max, "%s: ext_max %u", c->name,
                 rb.ext_highest_seq);
    cr_expect_eq(rb.cumulative_lost, c->cum_lost, "%s: lost %d", c->name,
                 rb.cumulative_lost);
    cr_expect_eq(rb.fraction_lost, c->fraction, "%s: fraction %u", c->name,
                 rb.fraction_lost);
    cr_expect_eq(s.restarts, c->restarts, "%s: restarts", c->name);
    cr_expect_eq(s.bad, c->bad, "%s: bad", c->name);
}

Test(rtp_stats, fraction_per_interval)
{
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;
    uint16_t seq = 10;

    brg_rtp_stats_init(&s, 1);
    for (int i = 0; i < 11; i++)
        brg_rtp_stats_update(&s, seq++, 0, 0);      /* 11..20 counted */
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.fraction_lost, 0);
    cr_expect_eq(rb.cumulative_lost, 0);

    /* next interval: 21, 23, 24 arrive, 22 lost: 1 of 4 -> 64 */
    brg_rtp_stats_update(&s, 21, 0, 0);
    brg_rtp_stats_update(&s, 23, 0, 0);
    brg_rtp_stats_update(&s, 24, 0, 0);
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.fraction_lost, 64);
    cr_expect_eq(rb.cumulative_lost, 1);

    /* an interval with nothing new: 0 */
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.fraction_lost, 0);
    cr_expect_eq(rb.cumulative_lost, 1);

    /* 22 arrives late: the interval has negative loss, reported as 0 */
    brg_rtp_stats_update(&s, 22, 0, 0);
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.fraction_lost, 0);
    cr_expect_eq(rb.cumulative_lost, 0);

    /* a big loss in one interval: 25..29 lost, 30 received */
    brg_rtp_stats_update(&s, 30, 0, 0);
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.cumulative_lost, 5);        /* 25..29 */
    cr_expect_eq(rb.fraction_lost, 5 * 256 / 6);
}

Test(rtp_stats, report_before_valid)
{
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;

    brg_rtp_stats_init(&s, 77);
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.ssrc, 77u);
    cr_expect_eq(rb.ext_highest_seq, 0u);
    cr_expect_eq(brg_rtp_stats_update(&s, 5, 0, 0), BRG_RTP_SEQ_PROBATION);
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.cumulative_lost, 0);
    cr_expect_eq(rb.jitter, 0u);
}

/* Jitter (A.8) against a hand computation. ts advances 960 per packet;
 * arrival = ts + offset, so transit differences are offset differences.
 * Packet 1 is in probation (not counted), packet 2 sets the transit.
 *   offsets:   -, 0, 100, 40, 40, 300
 *   |D|:             100, 60,  0, 260
 *   J*16:  0 -> 100 -> 100+60-6=154 -> 154+0-10=144 -> 144+260-9=395
 *   reported J = 395 >> 4 = 24 (floating point: 24.696) */
Test(rtp_stats, jitter_hand_computed)
{
    static const uint32_t offset[] = { 5000, 0, 100, 40, 40, 300 };
    static const uint32_t q4[] = { 0, 0, 100, 154, 144, 395 };
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;
    uint32_t base = 0xfffff000u;    /* also exercises timestamp wrap */

    brg_rtp_stats_init(&s, 3);
    for (size_t i = 0; i < 6; i++) {
        uint32_t ts = base + 960u * (uint32_t)i;

        brg_rtp_stats_update(&s, (uint16_t)(500 + i), ts, ts + 7 + offset[i]);
        cr_expect_eq(s.jitter_q4, q4[i], "after packet %zu: %u", i,
                     s.jitter_q4);
    }
    brg_rtp_stats_report(&s, &rb, 0);
    cr_expect_eq(rb.jitter, 24u);
}

Test(rtp_stats, jitter_restart_forgets_transit)
{
    struct brg_rtp_stats s;

    brg_rtp_stats_init(&s, 3);
    brg_rtp_stats_update(&s, 1, 0, 0);
    brg_rtp_stats_update(&s, 2, 960, 960);
    brg_rtp_stats_update(&s, 3, 1920, 1920);
    cr_expect_eq(s.jitter_q4, 0u);
    /* restart with a wholly different timestamp base: no jitter spike */
    brg_rtp_stats_update(&s, 40000, 123456789, 2880);
    cr_expect_eq(brg_rtp_stats_update(&s, 40001, 123457749, 3840),
                 BRG_RTP_SEQ_RESTART);
    brg_rtp_stats_update(&s, 40002, 123458709, 4800);
    cr_expect_eq(s.jitter_q4, 0u);
}

Test(rtp_stats, lsr_dlsr)
{
    struct brg_rtp_stats s;
    struct brg_rtcp_report_block rb;

    brg_rtp_stats_init(&s, 3);
    brg_rtp_stats_report(&s, &rb, 1000000);
    cr_expect_eq(rb.lsr, 0u);
    cr_expect_eq(rb.dlsr, 0u);
    brg_rtp_stats_on_sr(&s, 0x0001234567890000ull, 10000000);
    brg_rtp_stats_report(&s, &rb, 11500000);    /* 1.5 s later */
    cr_expect_eq(rb.lsr, 0x23456789u);
    cr_expect_eq(rb.dlsr, 98304u);              /* 1.5 * 65536 */
    brg_rtp_stats_report(&s, &rb, 9000000);     /* clock went back */
    cr_expect_eq(rb.dlsr, 0u);
}

Test(rtp_stats, arrival_clock)
{
    cr_expect_eq(brg_rtp_arrival(1000000, 48000), 48000u);
    cr_expect_eq(brg_rtp_arrival(1500000, 8000), 12000u);
    cr_expect_eq(brg_rtp_arrival(20000, 48000), 960u);
    cr_expect_eq(brg_rtp_arrival(0, 48000), 0u);
    for (uint64_t us = 1; us < (1ull << 60); us = us * 3 + 17) {
        unsigned __int128 want = (unsigned __int128)us * 48000 / 1000000;

        cr_expect_eq(brg_rtp_arrival(us, 48000), (uint32_t)want, "us %llu",
                     (unsigned long long)us);
    }
}
