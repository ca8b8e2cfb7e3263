/*
 * test_ovl_wire.c: the pure parts of the secure-session layer: first-byte
 * classification, the common header check, the replay window and the TCP
 * de-framer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ovl_secure.h"
#include "ovl_stream.h"
#include "ovl_wire.h"

/* ---- ovl_wire_classify ------------------------------------------------- */

Test(wire, classify_table)
{
    /* A STUN Binding request: type 0x0001, length 0, magic cookie, id. */
    static const uint8_t stun[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12,
                                     0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8,
                                     9, 10, 11, 12};
    uint8_t buf[64];
    static const struct {
        uint8_t first;
        size_t len;
        enum ovl_wire_class want;
    } cases[] = {
        {0x80, 12, OVL_CLASS_RTP},     /* RTP v2, no CSRC */
        {0x90, 12, OVL_CLASS_RTP},     /* RTP with extension */
        {0xBF, 8, OVL_CLASS_RTP},      /* RTCP-sized */
        {0x80, 7, OVL_CLASS_UNKNOWN},  /* too short for RTP or RTCP */
        {0xC0, 12, OVL_CLASS_UNKNOWN}, /* version 3 */
        {0x7F, 12, OVL_CLASS_UNKNOWN},
        {0x50, 4, OVL_CLASS_SECURE},
        {0x51, 184, OVL_CLASS_SECURE},
        {0x54, 32, OVL_CLASS_SECURE},
        {0x5F, 4, OVL_CLASS_SECURE},
        {0x54, 3, OVL_CLASS_UNKNOWN},  /* shorter than any header */
        {0x4F, 40, OVL_CLASS_UNKNOWN}, /* TURN channel range */
        {0x60, 40, OVL_CLASS_UNKNOWN},
        {0x16, 40, OVL_CLASS_UNKNOWN}, /* DTLS handshake */
        {0x10, 40, OVL_CLASS_UNKNOWN}, /* ZRTP */
        {0x00, 19, OVL_CLASS_UNKNOWN}, /* STUN-like but short */
        {0xFF, 40, OVL_CLASS_UNKNOWN},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 0, sizeof(buf));
        buf[0] = cases[i].first;
        cr_expect_eq(ovl_wire_classify(buf, cases[i].len), cases[i].want,
                     "case %zu (0x%02x, %zu bytes)", i, cases[i].first,
                     cases[i].len);
    }

    cr_expect_eq(ovl_wire_classify(stun, sizeof(stun)), OVL_CLASS_STUN);
    memcpy(buf, stun, sizeof(stun));
    buf[0] = 0x01; /* a STUN success response class */
    cr_expect_eq(ovl_wire_classify(buf, 20), OVL_CLASS_STUN);
    buf[7] ^= 1; /* wrong magic cookie */
    cr_expect_eq(ovl_wire_classify(buf, 20), OVL_CLASS_UNKNOWN);
    memcpy(buf, stun, sizeof(stun));
    buf[3] = 2; /* length not a multiple of 4 */
    cr_expect_eq(ovl_wire_classify(buf, 20), OVL_CLASS_UNKNOWN);
    cr_expect_eq(ovl_wire_classify(NULL, 20), OVL_CLASS_UNKNOWN);
    cr_expect_eq(ovl_wire_classify(stun, 0), OVL_CLASS_UNKNOWN);
    /* Every secure-session type byte classifies as SECURE. */
    for (int t = OVL_MSG_INIT; t <= OVL_MSG_KEY_REPLY; t++) {
        buf[0] = (uint8_t)t;
        cr_expect_eq(ovl_wire_classify(buf, 44), OVL_CLASS_SECURE);
    }
}

/* ---- ovl_wire_check ------------------------------------------------------- */

Test(wire, header_check_table)
{
    static uint8_t buf[OVL_WIRE_MAX_MSG + 1];
    static const struct {
        uint8_t type;
        size_t len;
        enum ovl_drop want;
    } cases[] = {
        {OVL_MSG_INIT, OVL_INIT_MIN, OVL_DROP_NONE},
        {OVL_MSG_INIT, OVL_INIT_MAX, OVL_DROP_NONE},
        {OVL_MSG_INIT, OVL_INIT_MIN - 1, OVL_DROP_TOO_SHORT},
        {OVL_MSG_INIT, OVL_INIT_MAX + 1, OVL_DROP_TOO_LONG},
        {OVL_MSG_RESP, OVL_RESP_MIN, OVL_DROP_NONE},
        {OVL_MSG_RESP, OVL_RESP_MIN - 1, OVL_DROP_TOO_SHORT},
        {OVL_MSG_RESP, OVL_RESP_MAX + 1, OVL_DROP_TOO_LONG},
        {OVL_MSG_COOKIE, OVL_COOKIE_LEN, OVL_DROP_NONE},
        {OVL_MSG_COOKIE, OVL_COOKIE_LEN - 1, OVL_DROP_TOO_SHORT},
        {OVL_MSG_COOKIE, OVL_COOKIE_LEN + 1, OVL_DROP_TOO_LONG},
        {OVL_MSG_DATA, OVL_DATA_MIN, OVL_DROP_NONE},
        {OVL_MSG_DATA, OVL_WIRE_MAX_MSG, OVL_DROP_NONE},
        {OVL_MSG_DATA, OVL_DATA_MIN - 1, OVL_DROP_TOO_SHORT},
        {OVL_MSG_DATA, OVL_WIRE_MAX_MSG + 1, OVL_DROP_TOO_LONG},
        {OVL_MSG_KEY_REQ, OVL_KEY_REQ_LEN, OVL_DROP_NONE},
        {OVL_MSG_KEY_REQ, OVL_KEY_REPLY_LEN, OVL_DROP_TOO_SHORT},
        {OVL_MSG_KEY_REPLY, OVL_KEY_REPLY_LEN, OVL_DROP_NONE},
        {OVL_MSG_KEY_REPLY, OVL_KEY_REQ_LEN, OVL_DROP_TOO_LONG},
        {0x50, 64, OVL_DROP_BAD_TYPE},
        {0x57, 64, OVL_DROP_BAD_TYPE},
        {0x5F, 64, OVL_DROP_BAD_TYPE},
        {0x80, 64, OVL_DROP_BAD_TYPE},
        {OVL_MSG_DATA, 3, OVL_DROP_TOO_SHORT},
        {OVL_MSG_DATA, 0, OVL_DROP_TOO_SHORT},
    };
    enum ovl_msg_type type;
    enum ovl_drop drop;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 0, 8);
        buf[0] = cases[i].type;
        buf[1] = OVL_WIRE_VERSION;
        int rc = ovl_wire_check(buf, cases[i].len, &type, &drop);
        cr_expect_eq(drop, cases[i].want, "case %zu: %s", i,
                     ovl_drop_name(drop));
        cr_expect_eq(rc, cases[i].want == OVL_DROP_NONE ? 0 : -EBADMSG);
        if (rc == 0)
            cr_expect_eq(type, cases[i].type);
    }

    ovl_wire_put_hdr(buf, OVL_MSG_DATA);
    buf[1] = 2;
    cr_expect_eq(ovl_wire_check(buf, 64, &type, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_DROP_BAD_VERSION);
    buf[1] = 0;
    cr_expect_eq(ovl_wire_check(buf, 64, &type, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_DROP_BAD_VERSION);
    buf[1] = OVL_WIRE_VERSION;
    for (int r = 2; r < 4; r++) {
        buf[r] = 0x80;
        cr_expect_eq(ovl_wire_check(buf, 64, &type, &drop), -EBADMSG);
        cr_expect_eq(drop, OVL_DROP_BAD_HEADER);
        buf[r] = 0;
    }
    cr_expect_eq(ovl_wire_check(NULL, 64, &type, &drop), -EBADMSG);
    cr_expect_str_eq(ovl_drop_name(OVL_DROP_BAD_MAC1), "bad_mac1");
    cr_expect_str_eq(ovl_drop_name(OVL_DROP__COUNT), "invalid");
    for (int d = 0; d < OVL_DROP__COUNT; d++)
        cr_expect_not_null(ovl_drop_name((enum ovl_drop)d));
}

Test(wire, byte_order_helpers)
{
    uint8_t b[8];

    ovl_store_le32(b, 0x01020304);
    cr_expect(b[0] == 4 && b[3] == 1);
    cr_expect_eq(ovl_load_le32(b), 0x01020304u);
    ovl_store_le64(b, 0x0102030405060708ull);
    cr_expect(b[0] == 8 && b[7] == 1);
    cr_expect_eq(ovl_load_le64(b), 0x0102030405060708ull);
    ovl_store_be16(b, 0xABCD);
    cr_expect(b[0] == 0xAB && b[1] == 0xCD);
    cr_expect_eq(ovl_load_be16(b), 0xABCD);
}

/* ---- Replay window: WireGuard's counter.c self-test cases ------------------ */

/*
 * The numbered cases and the window sweeps below are those of WireGuard's
 * src/selftest/counter.c (wireguard-monolithic-historical), with
 * COUNTER_WINDOW_SIZE = OVL_REPLAY_WINDOW and REJECT_AFTER_MESSAGES =
 * OVL_REJECT_AFTER_MESSAGES, since the algorithm is the same.
 */
#define T_LIM ((uint64_t)OVL_REPLAY_WINDOW + 1)
#define REJ OVL_REJECT_AFTER_MESSAGES

Test(replay, wireguard_table)
{
    static const struct {
        uint64_t n;
        bool ok;
    } t[] = {
        /*  1 */ {0, true},
        /*  2 */ {1, true},
        /*  3 */ {1, false},
        /*  4 */ {9, true},
        /*  5 */ {8, true},
        /*  6 */ {7, true},
        /*  7 */ {7, false},
        /*  8 */ {T_LIM, true},
        /*  9 */ {T_LIM - 1, true},
        /* 10 */ {T_LIM - 1, false},
        /* 11 */ {T_LIM - 2, true},
        /* 12 */ {2, true},
        /* 13 */ {2, false},
        /* 14 */ {T_LIM + 16, true},
        /* 15 */ {3, false},
        /* 16 */ {T_LIM + 16, false},
        /* 17 */ {T_LIM * 4, true},
        /* 18 */ {T_LIM * 4 - (T_LIM - 1), true},
        /* 19 */ {10, false},
        /* 20 */ {T_LIM * 4 - T_LIM, false},
        /* 21 */ {T_LIM * 4 - (T_LIM + 1), false},
        /* 22 */ {T_LIM * 4 - (T_LIM - 2), true},
        /* 23 */ {T_LIM * 4 + 1 - T_LIM, false},
        /* 24 */ {0, false},
        /* 25 */ {REJ, false},
        /* 26 */ {REJ - 1, true},
        /* 27 */ {REJ, false},
        /* 28 */ {REJ - 1, false},
        /* 29 */ {REJ - 2, true},
        /* 30 */ {REJ + 1, false},
        /* 31 */ {REJ + 2, false},
        /* 32 */ {REJ - 2, false},
        /* 33 */ {REJ - 3, true},
        /* 34 */ {0, false},
    };
    struct ovl_replay r;

    ovl_replay_init(&r);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        cr_expect_eq(ovl_replay_check(&r, t[i].n), t[i].ok,
                     "case %zu: counter %llu", i + 1,
                     (unsigned long long)t[i].n);
    /* Wrapping to the maximum: after the limit nothing is accepted. */
    cr_expect_not(ovl_replay_check(&r, UINT64_MAX));
}

Test(replay, window_sweeps)
{
    struct ovl_replay r;
    uint64_t i;

    /* Fill the window from 1 up: 0 is still just inside. */
    ovl_replay_init(&r);
    for (i = 1; i <= OVL_REPLAY_WINDOW; i++)
        cr_assert(ovl_replay_check(&r, i), "%llu", (unsigned long long)i);
    cr_expect(ovl_replay_check(&r, 0));
    cr_expect_not(ovl_replay_check(&r, 0));

    /* One further: 1 is the oldest still judged, 0 fell out. */
    ovl_replay_init(&r);
    for (i = 2; i <= OVL_REPLAY_WINDOW + 1; i++)
        cr_assert(ovl_replay_check(&r, i));
    cr_expect(ovl_replay_check(&r, 1));
    cr_expect_not(ovl_replay_check(&r, 0));

    /* Descending order is fine within the window. */
    ovl_replay_init(&r);
    for (i = OVL_REPLAY_WINDOW + 1; i-- > 0;)
        cr_assert(ovl_replay_check(&r, i), "%llu", (unsigned long long)i);

    ovl_replay_init(&r);
    for (i = OVL_REPLAY_WINDOW + 2; i-- > 1;)
        cr_assert(ovl_replay_check(&r, i));
    cr_expect_not(ovl_replay_check(&r, 0));

    ovl_replay_init(&r);
    for (i = OVL_REPLAY_WINDOW + 1; i-- > 1;)
        cr_assert(ovl_replay_check(&r, i));
    cr_expect(ovl_replay_check(&r, OVL_REPLAY_WINDOW + 1));
    cr_expect_not(ovl_replay_check(&r, 0));

    ovl_replay_init(&r);
    for (i = OVL_REPLAY_WINDOW + 1; i-- > 1;)
        cr_assert(ovl_replay_check(&r, i));
    cr_expect(ovl_replay_check(&r, 0));
    cr_expect(ovl_replay_check(&r, OVL_REPLAY_WINDOW + 1));
}

Test(replay, huge_jump_clears_everything)
{
    struct ovl_replay r;

    ovl_replay_init(&r);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert(ovl_replay_check(&r, i));
    /* A jump far beyond the window: the old counters are now too old, and
     * nothing stale survives in the reused words. */
    cr_expect(ovl_replay_check(&r, 1000000));
    cr_expect_not(ovl_replay_check(&r, 99));
    cr_expect(ovl_replay_check(&r, 1000000 - OVL_REPLAY_WINDOW));
    cr_expect_not(ovl_replay_check(&r, 1000000 - OVL_REPLAY_WINDOW - 1));
    for (uint64_t i = 1000000 - 64; i < 1000000; i++)
        cr_expect(ovl_replay_check(&r, i), "%llu", (unsigned long long)i);
    cr_expect_not(ovl_replay_check(&r, 1000000));
}

/* ---- Stream de-framer ------------------------------------------------------- */

/* Three messages of lengths 1, 300 and 70, framed back to back. */
static size_t make_stream(uint8_t *out, size_t cap, uint8_t msgs[3][300],
                          size_t lens[3])
{
    size_t off = 0;

    lens[0] = 1;
    lens[1] = 300;
    lens[2] = 70;
    for (int m = 0; m < 3; m++) {
        for (size_t i = 0; i < lens[m]; i++)
            msgs[m][i] = (uint8_t)(m * 37 + i);
        int n = ovl_stream_frame(out + off, cap - off, msgs[m], lens[m]);
        cr_assert_gt(n, 0);
        off += (size_t)n;
    }
    return off;
}

/* Feeds @data in pieces at @cuts; checks the three messages come out. */
static void feed_and_check(const uint8_t *data, size_t len,
                           const size_t *cuts, int ncuts,
                           uint8_t msgs[3][300], const size_t lens[3])
{
    uint8_t storage[512];
    struct ovl_stream st;
    size_t start = 0, got = 0;

    cr_assert_eq(ovl_stream_init(&st, storage, sizeof(storage)), 0);
    for (int c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        const uint8_t *p = data + start;
        size_t left = end - start;

        while (left) {
            const uint8_t *msg = NULL;
            size_t msg_len = 0, used = 0;
            int rc = ovl_stream_feed(&st, p, left, &used, &msg, &msg_len);
            cr_assert_geq(rc, 0);
            cr_assert_leq(used, left);
            p += used;
            left -= used;
            if (rc == 1) {
                cr_assert_lt(got, 3);
                cr_assert_eq(msg_len, lens[got]);
                cr_assert_arr_eq(msg, msgs[got], msg_len);
                got++;
            } else {
                cr_assert_eq(left, 0u);
            }
        }
        start = end;
    }
    cr_expect_eq(got, 3u);
    cr_expect_eq(st.messages, 3u);
}

Test(stream, split_at_every_boundary)
{
    uint8_t data[512], msgs[3][300];
    size_t lens[3], len = make_stream(data, sizeof(data), msgs, lens);

    /* Whole; one cut at every position; two cuts at every pair of
     * positions near the frame boundaries; and one byte at a time. */
    feed_and_check(data, len, NULL, 0, msgs, lens);
    for (size_t a = 1; a < len; a++)
        feed_and_check(data, len, &a, 1, msgs, lens);
    for (size_t a = 1; a < 8; a++)
        for (size_t b = a + 1; b < len; b++) {
            size_t cuts[2] = {a, b};
            feed_and_check(data, len, cuts, 2, msgs, lens);
        }
    {
        size_t cuts[511];
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        feed_and_check(data, len, cuts, (int)len - 1, msgs, lens);
    }
}

Test(stream, whole_message_is_not_copied)
{
    uint8_t storage[64], data[16], msg_in[10] = "abcdefghi";
    const uint8_t *msg;
    size_t used, msg_len;
    struct ovl_stream st;

    cr_assert_eq(ovl_stream_init(&st, storage, sizeof(storage)), 0);
    cr_assert_eq(ovl_stream_frame(data, sizeof(data), msg_in, 10), 12);
    cr_expect_eq(ovl_stream_feed(&st, data, 12, &used, &msg, &msg_len), 1);
    cr_expect_eq(msg, data + 2, "points into the input");
    cr_expect_eq(msg_len, 10u);
    cr_expect_eq(used, 12u);
}

Test(stream, oversize_fails_for_good)
{
    uint8_t storage[100], data[4] = {0x00, 101, 0, 0};
    const uint8_t *msg;
    size_t used, msg_len;
    struct ovl_stream st;

    cr_assert_eq(ovl_stream_init(&st, storage, sizeof(storage)), 0);
    cr_expect_eq(ovl_stream_feed(&st, data, 4, &used, &msg, &msg_len),
                 -EMSGSIZE);
    cr_expect_eq(used, 2u);
    cr_expect_eq(st.oversize, 1u);
    data[1] = 5;
    cr_expect_eq(ovl_stream_feed(&st, data, 4, &used, &msg, &msg_len),
                 -EMSGSIZE);
    cr_expect_eq(used, 0u);

    /* Exactly the limit is fine; 0xFFFF with a full-size buffer too. */
    cr_assert_eq(ovl_stream_init(&st, storage, sizeof(storage)), 0);
    data[0] = 0;
    data[1] = 100;
    cr_expect_eq(ovl_stream_feed(&st, data, 2, &used, &msg, &msg_len), 0);
    cr_expect_eq(used, 2u);

    cr_expect_eq(ovl_stream_init(&st, storage, 0), -EINVAL);
    cr_expect_eq(ovl_stream_init(&st, storage, OVL_STREAM_MAX + 1), -EINVAL);
    cr_expect_eq(ovl_stream_frame(data, 4, storage, 3), -ENOBUFS);
    cr_expect_eq(ovl_stream_frame(data, 4, storage, OVL_STREAM_MAX + 1),
                 -EMSGSIZE);
}

Test(stream, empty_frames_are_skipped)
{
    uint8_t storage[16], data[] = {0, 0, 0, 0, 0, 2, 'h', 'i', 0, 0};
    const uint8_t *msg;
    size_t used, msg_len;
    struct ovl_stream st;

    cr_assert_eq(ovl_stream_init(&st, storage, sizeof(storage)), 0);
    cr_expect_eq(ovl_stream_feed(&st, data, sizeof(data), &used, &msg,
                                 &msg_len), 1);
    cr_expect_eq(msg_len, 2u);
    cr_expect_arr_eq(msg, "hi", 2);
    cr_expect_eq(used, 8u);
    cr_expect_eq(ovl_stream_feed(&st, data + used, sizeof(data) - used, &used,
                                 &msg, &msg_len), 0);
    cr_expect_eq(st.empty, 3u);
}
