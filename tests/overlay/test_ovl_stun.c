/*
 * test_ovl_stun.c: STUN message parsing and building, the Binding server
 * (RFC 8489, RFC 5780) and the client side. Known answers from RFC 5769;
 * tables of malformed messages; truncation at every length.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ovl_stun.h"
#include "ovl_wire.h"

/* ---- RFC 5769 test vectors (typed in from the RFC text) ------------------ */

/* 2.1 Sample request: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
 * MESSAGE-INTEGRITY, FINGERPRINT. The padding bytes are 0x20 on purpose. */
static const uint8_t rfc5769_request[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* 2.2 Sample IPv4 response: 192.0.2.1 port 32853. */
static const uint8_t rfc5769_resp_v4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* 2.3 Sample IPv6 response: 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
static const uint8_t rfc5769_resp_v6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static const uint8_t rfc5769_txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                         0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* ---- helpers ------------------------------------------------------------- */

static struct ovl_stun_addr addr(const char *text)
{
    struct ovl_stun_addr a;

    cr_assert_eq(ovl_stun_addr_parse(&a, text), 0, "parse %s", text);
    return a;
}

static const char *fmt(const struct ovl_stun_addr *a)
{
    static char buf[4][OVL_STUN_ADDR_TEXT_MAX];
    static int i;

    i = (i + 1) % 4;
    return ovl_stun_addr_format(buf[i], sizeof(buf[i]), a);
}

static void expect_addr(const struct ovl_stun_addr *got, const char *want)
{
    struct ovl_stun_addr w = addr(want);

    cr_expect(ovl_stun_addr_eq(got, &w), "got %s, want %s", fmt(got), want);
}

/* Parses a copy of exactly @len bytes on the heap, so that ASan sees any
 * read past the end. The parsed message points into the copy, so the copy
 * lives until the next call (the static pointer keeps it reachable). */
static int parse_exact(struct ovl_stun_msg *m, const uint8_t *buf, size_t len,
                       enum ovl_stun_drop *drop)
{
    static uint8_t *copy;

    free(copy);
    copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, buf, len);
    return ovl_stun_parse(m, copy, len, drop);
}

static const uint8_t txid_a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* A request with the given extra attributes, FINGERPRINT optional. */
static size_t make_request(uint8_t *buf, size_t cap, uint16_t type, const uint16_t *attrs,
                           size_t n_attrs, bool fp)
{
    struct ovl_stun_builder b;
    static const uint8_t four[4] = {0};
    int n;

    ovl_stun_build_init(&b, buf, cap, type, txid_a);
    for (size_t i = 0; i < n_attrs; i++)
        ovl_stun_build_attr(&b, attrs[i], four, sizeof(four));
    n = ovl_stun_build_finish(&b, fp);
    cr_assert_gt(n, 0);
    return (size_t)n;
}

/* Re-computes FINGERPRINT (assumed last) after a test edited @buf. */
static void refinger(uint8_t *buf, size_t len)
{
    uint32_t crc = ovl_stun_crc32(buf, len - 8) ^ OVL_STUN_FINGERPRINT_XOR;

    buf[len - 4] = (uint8_t)(crc >> 24);
    buf[len - 3] = (uint8_t)(crc >> 16);
    buf[len - 2] = (uint8_t)(crc >> 8);
    buf[len - 1] = (uint8_t)crc;
}

static const struct ovl_stun_server plain_server = {.mapped_address = true};

/* ---- basics -------------------------------------------------------------- */

Test(stun, crc32_known_answer)
{
    cr_expect_eq(ovl_stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
    cr_expect_eq(ovl_stun_crc32(NULL, 0), 0u);
}

Test(stun, message_types)
{
    cr_expect_eq(ovl_stun_type(OVL_STUN_METHOD_BINDING, OVL_STUN_CLASS_REQUEST), 0x0001);
    cr_expect_eq(ovl_stun_type(OVL_STUN_METHOD_BINDING, OVL_STUN_CLASS_INDICATION), 0x0011);
    cr_expect_eq(ovl_stun_type(OVL_STUN_METHOD_BINDING, OVL_STUN_CLASS_SUCCESS), 0x0101);
    cr_expect_eq(ovl_stun_type(OVL_STUN_METHOD_BINDING, OVL_STUN_CLASS_ERROR), 0x0111);
    cr_expect_eq(ovl_stun_type(0x003, OVL_STUN_CLASS_REQUEST), 0x0003); /* TURN Allocate */
    cr_expect_eq(ovl_stun_type(0xFFF, OVL_STUN_CLASS_ERROR), 0x3FFF);

    /* Every method and class survives the trip through a header. */
    for (unsigned m = 0; m < 0x1000; m += 7) {
        for (unsigned c = 0; c < 4; c++) {
            uint8_t buf[OVL_STUN_HDR_LEN];
            struct ovl_stun_builder b;
            struct ovl_stun_msg msg;
            enum ovl_stun_drop drop;

            ovl_stun_build_init(&b, buf, sizeof(buf), ovl_stun_type((uint16_t)m, c), txid_a);
            cr_assert_eq(ovl_stun_build_finish(&b, false), 20);
            cr_assert_eq(ovl_stun_parse(&msg, buf, 20, &drop), 0);
            cr_expect_eq(msg.method, m);
            cr_expect_eq(msg.klass, (enum ovl_stun_class)c);
        }
    }
}

Test(stun, addresses)
{
    struct ovl_stun_addr a, b;
    struct sockaddr_storage ss;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(4000)};
    char buf[OVL_STUN_ADDR_TEXT_MAX];

    a = addr("192.0.2.1:32853");
    cr_expect_eq(a.family, OVL_STUN_FAMILY_IPV4);
    cr_expect_eq(a.port, 32853);
    cr_expect_str_eq(ovl_stun_addr_format(buf, sizeof(buf), &a), "192.0.2.1:32853");
    a = addr("[2001:db8::1]:3478");
    cr_expect_eq(a.family, OVL_STUN_FAMILY_IPV6);
    cr_expect_str_eq(ovl_stun_addr_format(buf, sizeof(buf), &a), "[2001:db8::1]:3478");

    static const char *const bad[] = {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536",
                                      "1.2.3.4:x", "2001:db8::1:80", "[1.2.3.4]:5",
                                      "[2001:db8::1:80", "host:80", ":80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ovl_stun_addr_parse(&a, bad[i]), -EINVAL, "'%s'", bad[i]);

    /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. */
    inet_pton(AF_INET6, "::ffff:198.51.100.7", &in6.sin6_addr);
    cr_assert_eq(ovl_stun_addr_from_sockaddr(&a, (struct sockaddr *)&in6), 0);
    expect_addr(&a, "198.51.100.7:4000");

    b = addr("[2001:db8::2]:9");
    cr_assert_eq(ovl_stun_addr_to_sockaddr(&b, &ss), (int)sizeof(struct sockaddr_in6));
    cr_assert_eq(ovl_stun_addr_from_sockaddr(&a, (struct sockaddr *)&ss), 0);
    cr_expect(ovl_stun_addr_eq(&a, &b));
    a.port = 10;
    cr_expect(!ovl_stun_addr_eq(&a, &b));
    cr_expect(ovl_stun_addr_ip_eq(&a, &b));
    memset(&a, 0, sizeof(a));
    cr_expect(!ovl_stun_addr_ip_eq(&a, &a), "no address equals nothing");
    cr_expect_str_eq(ovl_stun_addr_format(buf, sizeof(buf), &a), "none");
}

/* ---- RFC 5769 known answers --------------------------------------------- */

Test(stun, rfc5769_sample_request)
{
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;

    cr_assert_eq(parse_exact(&m, rfc5769_request, sizeof(rfc5769_request), &drop), 0,
                 "drop %s", ovl_stun_drop_name(drop));
    cr_expect_eq(m.type, OVL_STUN_BINDING_REQUEST);
    cr_expect_eq(m.klass, OVL_STUN_CLASS_REQUEST);
    cr_expect_eq(memcmp(m.txid, rfc5769_txid, 12), 0);
    cr_expect(m.has_fingerprint);
    cr_expect(m.has_integrity);
    cr_assert_eq(m.software_len, 16);
    cr_expect_eq(memcmp(m.software, "STUN test client", 16), 0);
    /* PRIORITY (0x0024) is ICE's, comprehension-required and unknown here;
     * ICE-CONTROLLED (0x8029) is optional and ignored. */
    cr_expect_eq(m.n_unknown, 1);
    cr_expect_eq(m.unknown[0], 0x0024);
}

Test(stun, rfc5769_sample_request_answered_with_420)
{
    uint8_t out[OVL_STUN_RESP_MAX];
    struct ovl_stun_addr src = addr("192.0.2.1:32853");
    struct ovl_stun_reply reply;
    struct ovl_stun_result r;
    enum ovl_stun_drop drop;

    cr_assert_eq(ovl_stun_server_handle(&plain_server, rfc5769_request,
                                        sizeof(rfc5769_request), &src, NULL, out,
                                        sizeof(out), &reply, &drop), 0);
    cr_assert_gt(reply.len, 0);
    cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, rfc5769_txid, &drop), 0);
    cr_expect(!r.success);
    cr_expect_eq(r.error_code, 420);
    cr_expect_eq(r.n_unknown, 1);
    cr_expect_eq(r.unknown[0], 0x0024);
}

Test(stun, rfc5769_ipv4_response)
{
    struct ovl_stun_result r;
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;
    struct ovl_stun_addr want = addr("192.0.2.1:32853");
    struct ovl_stun_builder b;
    uint8_t buf[64];

    cr_assert_eq(parse_exact(&m, rfc5769_resp_v4, sizeof(rfc5769_resp_v4), &drop), 0);
    cr_expect(m.has_fingerprint);
    cr_expect_eq(m.software_len, 11);
    cr_assert_eq(ovl_stun_response_parse(&r, rfc5769_resp_v4, sizeof(rfc5769_resp_v4),
                                         rfc5769_txid, &drop), 0);
    cr_expect(r.success);
    expect_addr(&r.mapped, "192.0.2.1:32853");

    /* Encoding: the same XOR-MAPPED-ADDRESS bytes (offset 36 in the RFC). */
    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, rfc5769_txid);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &want);
    cr_assert_eq(b.len, 32);
    cr_expect_eq(memcmp(buf + 20, rfc5769_resp_v4 + 36, 12), 0);
}

Test(stun, rfc5769_ipv6_response)
{
    struct ovl_stun_result r;
    enum ovl_stun_drop drop;
    struct ovl_stun_addr want = addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    struct ovl_stun_builder b;
    uint8_t buf[64];

    cr_assert_eq(ovl_stun_response_parse(&r, rfc5769_resp_v6, sizeof(rfc5769_resp_v6),
                                         rfc5769_txid, &drop), 0);
    cr_expect(r.success);
    cr_expect(ovl_stun_addr_eq(&r.mapped, &want), "got %s", fmt(&r.mapped));

    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, rfc5769_txid);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &want);
    cr_assert_eq(b.len, 44);
    cr_expect_eq(memcmp(buf + 20, rfc5769_resp_v6 + 36, 24), 0);
}

Test(stun, rfc5769_fingerprint_mismatch)
{
    const struct {
        const uint8_t *msg;
        size_t len;
    } v[] = {
        {rfc5769_request, sizeof(rfc5769_request)},
        {rfc5769_resp_v4, sizeof(rfc5769_resp_v4)},
        {rfc5769_resp_v6, sizeof(rfc5769_resp_v6)},
    };

    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[128];
        struct ovl_stun_msg m;
        enum ovl_stun_drop drop;

        /* Every bit flip after the cookie breaks the CRC, except in
         * FINGERPRINT's own type field: that turns it into an unknown
         * optional attribute, which is legitimately ignored. */
        for (size_t byte = 8; byte < v[i].len; byte++) {
            if (byte == v[i].len - 8 || byte == v[i].len - 7)
                continue;
            memcpy(buf, v[i].msg, v[i].len);
            buf[byte] ^= 0x10;
            cr_expect_eq(ovl_stun_parse(&m, buf, v[i].len, &drop), -EBADMSG,
                         "vector %zu byte %zu", i, byte);
        }
        memcpy(buf, v[i].msg, v[i].len);
        buf[27] = 23; /* inside SOFTWARE: only the CRC can notice */
        cr_expect_eq(ovl_stun_parse(&m, buf, v[i].len, &drop), -EBADMSG);
        cr_expect_eq(drop, OVL_STUN_DROP_BAD_FINGERPRINT, "vector %zu: %s", i,
                     ovl_stun_drop_name(drop));
        cr_expect(ovl_stun_drop_is_malformed(drop));
    }
}

/* ---- malformed input ---------------------------------------------------- */

Test(stun, truncated_at_every_length)
{
    uint8_t resp[OVL_STUN_RESP_MAX];
    struct ovl_stun_addr src = addr("[2001:db8::5]:1234");
    struct ovl_stun_server srv = plain_server;
    uint8_t req[64];
    struct ovl_stun_reply reply;
    enum ovl_stun_drop drop;
    size_t req_len = make_request(req, sizeof(req), OVL_STUN_BINDING_REQUEST, NULL, 0, true);
    struct {
        const uint8_t *msg;
        size_t len;
    } v[] = {
        {rfc5769_request, sizeof(rfc5769_request)},
        {rfc5769_resp_v4, sizeof(rfc5769_resp_v4)},
        {rfc5769_resp_v6, sizeof(rfc5769_resp_v6)},
        {req, req_len},
        {resp, 0}, /* the server's own answer, filled in below */
    };

    srv.software = "chorus test";
    cr_assert_eq(ovl_stun_server_handle(&srv, req, req_len, &src, NULL, resp, sizeof(resp),
                                        &reply, &drop), 0);
    v[4].len = reply.len;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const uint8_t *msg = v[i].msg;
        size_t len = v[i].len;

        for (size_t cut = 0; cut < len; cut++) {
            uint8_t buf[256];
            struct ovl_stun_msg m;
            uint8_t out[OVL_STUN_RESP_MAX];
            struct ovl_stun_reply rep;

            /* As received: the length field no longer matches. */
            cr_expect_eq(parse_exact(&m, msg, cut, &drop), -EBADMSG, "vec %zu cut %zu", i, cut);
            cr_expect(ovl_stun_drop_is_malformed(drop));
            cr_expect_eq(ovl_stun_server_handle(&srv, msg, cut, &src, NULL, out, sizeof(out),
                                                &rep, &drop), -EBADMSG);
            cr_expect_eq(rep.len, 0);
            /* With a length field that agrees: the attribute walk or the
             * fingerprint must notice, never read past the end. */
            if (cut >= 20 && cut % 4 == 0) {
                memcpy(buf, msg, cut);
                ovl_store_be16(buf + 2, (uint16_t)(cut - 20));
                if (parse_exact(&m, buf, cut, &drop) == 0)
                    cr_expect(!m.has_fingerprint, "vec %zu cut %zu kept a fingerprint", i, cut);
            }
        }
    }
}

/* One table row: a message built from a template, then edited. */
struct bad_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    enum ovl_stun_drop want;
};

Test(stun, malformed_table)
{
    /* Header faults. */
    static const uint8_t bad_cookie[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x43};
    static const uint8_t rfc3489[20] = {0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4};
    static const uint8_t top_bits[20] = {0x40, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
    static const uint8_t len_odd[24] = {0x00, 0x01, 0x00, 0x02, 0x21, 0x12, 0xa4, 0x42};
    static const uint8_t len_long[24] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42};
    static const uint8_t len_short[28] = {0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42};
    /* Attribute faults (after a valid 20-byte header). */
#define HDR(l) 0x00, 0x01, 0x00, (l), 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    static const uint8_t attr_overrun[] = {HDR(8), 0x80, 0x22, 0x00, 0x09, 'a', 'b', 'c', 'd'};
    static const uint8_t attr_huge[] = {HDR(4), 0x80, 0x22, 0xff, 0xff};
    static const uint8_t xor_bad_family[] = {HDR(12), 0x00, 0x20, 0x00, 0x08,
                                             0x00, 0x03, 0, 0, 1, 2, 3, 4};
    static const uint8_t xor_bad_len[] = {HDR(12), 0x00, 0x20, 0x00, 0x06,
                                          0x00, 0x01, 0, 0, 1, 2, 0, 0};
    static const uint8_t v6_short[] = {HDR(16), 0x00, 0x01, 0x00, 0x0c, 0x00, 0x02, 0, 0,
                                       1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t change_len[] = {HDR(12), 0x00, 0x03, 0x00, 0x05, 0, 0, 0, 6, 0, 0, 0, 0};
    static const uint8_t err_class7[] = {HDR(8), 0x00, 0x09, 0x00, 0x04, 0, 0, 7, 0};
    static const uint8_t err_num100[] = {HDR(8), 0x00, 0x09, 0x00, 0x04, 0, 0, 4, 100};
    static const uint8_t err_short[] = {HDR(8), 0x00, 0x09, 0x00, 0x03, 0, 0, 4, 0};
    static const uint8_t unk_odd[] = {HDR(8), 0x00, 0x0a, 0x00, 0x03, 0, 1, 0, 0};
    static const uint8_t mi_len[] = {HDR(8), 0x00, 0x08, 0x00, 0x04, 0, 0, 0, 0};
    static const uint8_t fp_len[] = {HDR(12), 0x80, 0x28, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
    /* FINGERPRINT followed by another attribute. */
    static const uint8_t fp_not_last[] = {HDR(16), 0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0,
                                          0x80, 0x22, 0x00, 0x00, 0, 0, 0, 0};
#undef HDR
    const struct bad_case cases[] = {
        {"empty", bad_cookie, 0, OVL_STUN_DROP_TOO_SHORT},
        {"19 bytes", bad_cookie, 19, OVL_STUN_DROP_TOO_SHORT},
        {"bad cookie", bad_cookie, 20, OVL_STUN_DROP_BAD_COOKIE},
        {"RFC 3489 (no cookie)", rfc3489, 20, OVL_STUN_DROP_BAD_COOKIE},
        {"top bits set", top_bits, 20, OVL_STUN_DROP_BAD_TYPE},
        {"length not multiple of 4", len_odd, 24, OVL_STUN_DROP_BAD_LENGTH},
        {"length beyond datagram", len_long, 24, OVL_STUN_DROP_BAD_LENGTH},
        {"trailing bytes", len_short, 28, OVL_STUN_DROP_BAD_LENGTH},
        {"attribute overruns", attr_overrun, sizeof(attr_overrun), OVL_STUN_DROP_BAD_ATTR},
        {"attribute length 65535", attr_huge, sizeof(attr_huge), OVL_STUN_DROP_BAD_ATTR},
        {"xor-mapped family 3", xor_bad_family, sizeof(xor_bad_family), OVL_STUN_DROP_BAD_ATTR},
        {"xor-mapped length 6", xor_bad_len, sizeof(xor_bad_len), OVL_STUN_DROP_BAD_ATTR},
        {"ipv6 mapped, 8 bytes", v6_short, sizeof(v6_short), OVL_STUN_DROP_BAD_ATTR},
        {"change-request length 5", change_len, sizeof(change_len), OVL_STUN_DROP_BAD_ATTR},
        {"error class 7", err_class7, sizeof(err_class7), OVL_STUN_DROP_BAD_ATTR},
        {"error number 100", err_num100, sizeof(err_num100), OVL_STUN_DROP_BAD_ATTR},
        {"error-code 3 bytes", err_short, sizeof(err_short), OVL_STUN_DROP_BAD_ATTR},
        {"unknown-attributes odd", unk_odd, sizeof(unk_odd), OVL_STUN_DROP_BAD_ATTR},
        {"message-integrity 4 bytes", mi_len, sizeof(mi_len), OVL_STUN_DROP_BAD_ATTR},
        {"fingerprint 8 bytes", fp_len, sizeof(fp_len), OVL_STUN_DROP_BAD_ATTR},
        {"fingerprint not last", fp_not_last, sizeof(fp_not_last), OVL_STUN_DROP_BAD_ATTR},
    };
    struct ovl_stun_addr src = addr("192.0.2.9:9");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ovl_stun_msg m;
        enum ovl_stun_drop drop = OVL_STUN_DROP_NONE;
        uint8_t out[OVL_STUN_RESP_MAX];
        struct ovl_stun_reply reply;

        cr_expect_eq(parse_exact(&m, cases[i].bytes, cases[i].len, &drop), -EBADMSG,
                     "%s parsed", cases[i].name);
        cr_expect_eq(drop, cases[i].want, "%s: %s, want %s", cases[i].name,
                     ovl_stun_drop_name(drop), ovl_stun_drop_name(cases[i].want));
        cr_expect(ovl_stun_drop_is_malformed(drop), "%s", cases[i].name);
        /* The server answers none of them. */
        cr_expect_eq(ovl_stun_server_handle(&plain_server, cases[i].bytes, cases[i].len, &src,
                                            NULL, out, sizeof(out), &reply, &drop), -EBADMSG,
                     "%s answered", cases[i].name);
        cr_expect_eq(reply.len, 0);
    }
}

Test(stun, fingerprint_bad_on_request_is_dropped)
{
    uint8_t req[64], out[OVL_STUN_RESP_MAX];
    size_t n = make_request(req, sizeof(req), OVL_STUN_BINDING_REQUEST, NULL, 0, true);
    struct ovl_stun_addr src = addr("192.0.2.9:9");
    struct ovl_stun_reply reply;
    enum ovl_stun_drop drop;

    req[n - 1] ^= 1;
    cr_expect_eq(ovl_stun_server_handle(&plain_server, req, n, &src, NULL, out, sizeof(out),
                                        &reply, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_BAD_FINGERPRINT);
}

Test(stun, padding_bytes_are_not_checked_and_duplicates_ignored)
{
    /* RFC 8489 section 14: padding may hold any value; only the first of
     * several identical attributes counts. */
    struct ovl_stun_builder b;
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;
    uint8_t buf[128];
    struct ovl_stun_addr a1 = addr("192.0.2.1:1"), a2 = addr("192.0.2.2:2");
    int n;

    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_SOFTWARE, "abcde", 5);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &a1);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &a2);
    n = ovl_stun_build_finish(&b, false);
    cr_assert_gt(n, 0);
    buf[20 + 4 + 5] = 0xAA; /* padding after "abcde" */
    buf[20 + 4 + 7] = 0x55;
    cr_assert_eq(ovl_stun_parse(&m, buf, (size_t)n, &drop), 0);
    cr_expect_eq(m.software_len, 5);
    expect_addr(&m.xor_mapped, "192.0.2.1:1");
}

/* ---- server ------------------------------------------------------------- */

Test(stun, server_binding_ipv4_and_ipv6)
{
    const struct {
        const char *src;
        bool mapped;
        const char *software;
        size_t want_len;
    } cases[] = {
        {"203.0.113.11:40000", true, NULL, 52},   /* 20 + 12 + 12 + 8 */
        {"203.0.113.11:40000", false, NULL, 40},
        {"203.0.113.11:40000", true, "chorus", 64},
        {"[2001:db8::7]:5000", true, NULL, 76},   /* 20 + 24 + 24 + 8 */
        {"[2001:db8::7]:5000", false, NULL, 52},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ovl_stun_server srv = {.mapped_address = cases[i].mapped,
                                      .software = cases[i].software};
        struct ovl_stun_addr src = addr(cases[i].src);
        uint8_t req[64], out[OVL_STUN_RESP_MAX];
        size_t n = make_request(req, sizeof(req), OVL_STUN_BINDING_REQUEST, NULL, 0, i % 2);
        struct ovl_stun_reply reply;
        struct ovl_stun_msg m;
        enum ovl_stun_drop drop;

        cr_assert_eq(ovl_stun_server_handle(&srv, req, n, &src, NULL, out, sizeof(out),
                                            &reply, &drop), 0, "case %zu", i);
        cr_expect_eq(reply.len, cases[i].want_len, "case %zu: %zu bytes", i, reply.len);
        cr_expect(!reply.changed);
        cr_expect_eq(reply.from.family, OVL_STUN_FAMILY_NONE);
        cr_assert_eq(ovl_stun_parse(&m, out, reply.len, &drop), 0);
        cr_expect_eq(m.type, OVL_STUN_BINDING_SUCCESS);
        cr_expect_eq(memcmp(m.txid, txid_a, 12), 0);
        cr_expect(m.has_fingerprint, "responses always carry FINGERPRINT");
        cr_expect(ovl_stun_addr_eq(&m.xor_mapped, &src));
        if (cases[i].mapped)
            cr_expect(ovl_stun_addr_eq(&m.mapped, &src));
        else
            cr_expect_eq(m.mapped.family, OVL_STUN_FAMILY_NONE);
        cr_expect_eq(m.other_address.family, OVL_STUN_FAMILY_NONE);
        cr_expect_eq(m.response_origin.family, OVL_STUN_FAMILY_NONE);
    }
}

Test(stun, server_answers_only_binding_requests)
{
    const struct {
        uint16_t type;
        enum ovl_stun_drop want;
    } cases[] = {
        {OVL_STUN_BINDING_INDICATION, OVL_STUN_DROP_NOT_REQUEST},
        {OVL_STUN_BINDING_SUCCESS, OVL_STUN_DROP_NOT_REQUEST},
        {OVL_STUN_BINDING_ERROR, OVL_STUN_DROP_NOT_REQUEST},
        {0x0003, OVL_STUN_DROP_BAD_METHOD},  /* TURN Allocate */
        {0x0004, OVL_STUN_DROP_BAD_METHOD},  /* TURN Refresh */
        {0x0016, OVL_STUN_DROP_NOT_REQUEST}, /* TURN Send indication */
    };
    struct ovl_stun_addr src = addr("192.0.2.9:9");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t req[64], out[OVL_STUN_RESP_MAX];
        size_t n = make_request(req, sizeof(req), cases[i].type, NULL, 0, true);
        struct ovl_stun_reply reply;
        enum ovl_stun_drop drop;

        cr_expect_eq(ovl_stun_server_handle(&plain_server, req, n, &src, NULL, out,
                                            sizeof(out), &reply, &drop), -EBADMSG,
                     "type 0x%04x answered", cases[i].type);
        cr_expect_eq(drop, cases[i].want, "type 0x%04x: %s", cases[i].type,
                     ovl_stun_drop_name(drop));
        cr_expect(!ovl_stun_drop_is_malformed(drop));
        cr_expect_eq(reply.len, 0);
    }
}

Test(stun, server_unknown_attributes_get_420)
{
    const struct {
        uint16_t attrs[12];
        size_t n;
        unsigned want_unknown; /* 0: success expected */
        uint16_t first;
    } cases[] = {
        {{0x0024}, 1, 1, 0x0024},                      /* ICE PRIORITY */
        {{0x0002}, 1, 1, 0x0002},                      /* RESPONSE-ADDRESS */
        {{0x0026}, 1, 1, 0x0026},                      /* PADDING */
        {{0x0027}, 1, 1, 0x0027},                      /* RESPONSE-PORT */
        {{0x8029, 0x802A, 0xC057}, 3, 0, 0},           /* optional: ignored */
        {{0x0006, 0x0024, 0x0025}, 3, 2, 0x0024},      /* USERNAME is known */
        {{0x7000, 0x7001, 0x7002, 0x7003, 0x7004, 0x7005, 0x7006, 0x7007, 0x7008, 0x7009},
         10, OVL_STUN_MAX_UNKNOWN, 0x7000},            /* list capped */
    };
    struct ovl_stun_addr src = addr("192.0.2.9:9");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t req[128], out[OVL_STUN_RESP_MAX];
        size_t n = make_request(req, sizeof(req), OVL_STUN_BINDING_REQUEST, cases[i].attrs,
                                cases[i].n, true);
        struct ovl_stun_reply reply;
        struct ovl_stun_result r;
        enum ovl_stun_drop drop;

        cr_assert_eq(ovl_stun_server_handle(&plain_server, req, n, &src, NULL, out,
                                            sizeof(out), &reply, &drop), 0, "case %zu", i);
        cr_assert_leq(reply.len, OVL_STUN_RESP_MAX);
        cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid_a, &drop), 0);
        if (cases[i].want_unknown == 0) {
            cr_expect(r.success, "case %zu", i);
            continue;
        }
        cr_expect(!r.success, "case %zu", i);
        cr_expect_eq(r.error_code, 420);
        cr_expect_eq(r.n_unknown, cases[i].want_unknown, "case %zu: %u listed", i, r.n_unknown);
        cr_expect_eq(r.unknown[0], cases[i].first);
    }
}

Test(stun, server_ignores_attributes_after_message_integrity)
{
    /* USERNAME, MESSAGE-INTEGRITY, then an unknown comprehension-required
     * attribute, then FINGERPRINT: RFC 8489 14.5 says ignore the third. */
    struct ovl_stun_builder b;
    uint8_t req[128], out[OVL_STUN_RESP_MAX], mi[20] = {0};
    struct ovl_stun_addr src = addr("192.0.2.9:9");
    struct ovl_stun_reply reply;
    struct ovl_stun_result r;
    enum ovl_stun_drop drop;
    int n;

    ovl_stun_build_init(&b, req, sizeof(req), OVL_STUN_BINDING_REQUEST, txid_a);
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_USERNAME, "user", 4);
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_MESSAGE_INTEGRITY, mi, sizeof(mi));
    ovl_stun_build_attr(&b, 0x0024, mi, 4);
    n = ovl_stun_build_finish(&b, true);
    cr_assert_gt(n, 0);
    cr_assert_eq(ovl_stun_server_handle(&plain_server, req, (size_t)n, &src, NULL, out,
                                        sizeof(out), &reply, &drop), 0);
    cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid_a, &drop), 0);
    cr_expect(r.success);
}

static size_t change_request(uint8_t *buf, size_t cap, uint32_t flags)
{
    struct ovl_stun_builder b;
    uint8_t v[4] = {0, 0, 0, (uint8_t)flags};
    int n;

    ovl_stun_build_init(&b, buf, cap, OVL_STUN_BINDING_REQUEST, txid_a);
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_CHANGE_REQUEST, v, sizeof(v));
    n = ovl_stun_build_finish(&b, true);
    cr_assert_gt(n, 0);
    return (size_t)n;
}

Test(stun, server_change_request_without_alternate)
{
    struct ovl_stun_addr src = addr("192.0.2.9:9"), local = addr("203.0.113.1:3478");

    for (uint32_t flags = 0; flags <= 7; flags++) {
        uint8_t req[64], out[OVL_STUN_RESP_MAX];
        size_t n = change_request(req, sizeof(req), flags);
        struct ovl_stun_reply reply;
        struct ovl_stun_result r;
        enum ovl_stun_drop drop;

        cr_assert_eq(ovl_stun_server_handle(&plain_server, req, n, &src, &local, out,
                                            sizeof(out), &reply, &drop), 0);
        cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid_a, &drop), 0);
        if ((flags & OVL_STUN_CHANGE_MASK) == 0) {
            cr_expect(r.success, "flags %u", flags);
        } else {
            /* RFC 5780 6.1: 420, naming CHANGE-REQUEST. */
            cr_expect(!r.success, "flags %u", flags);
            cr_expect_eq(r.error_code, 420);
            cr_expect_eq(r.n_unknown, 1);
            cr_expect_eq(r.unknown[0], OVL_STUN_ATTR_CHANGE_REQUEST);
        }
        cr_expect(!reply.changed);
    }
}

Test(stun, server_rfc5780_four_addresses)
{
    struct ovl_stun_server srv = {.mapped_address = true, .rfc5780 = true,
                                  .port = {3478, 3479}};
    struct ovl_stun_addr src = addr("203.0.113.11:40000");

    srv.ip[0] = addr("203.0.113.1:0");
    srv.ip[1] = addr("203.0.113.2:0");
    for (unsigned li = 0; li < 2; li++) {
        for (unsigned lj = 0; lj < 2; lj++) {
            struct ovl_stun_addr local = srv.ip[li];

            local.port = srv.port[lj];
            for (uint32_t flags = 0; flags <= OVL_STUN_CHANGE_MASK; flags += 2) {
                uint8_t req[64], out[OVL_STUN_RESP_MAX];
                size_t n = change_request(req, sizeof(req), flags);
                struct ovl_stun_reply reply;
                struct ovl_stun_result r;
                enum ovl_stun_drop drop;
                unsigned wi = li ^ ((flags & OVL_STUN_CHANGE_IP) ? 1u : 0u);
                unsigned wj = lj ^ ((flags & OVL_STUN_CHANGE_PORT) ? 1u : 0u);
                struct ovl_stun_addr origin = srv.ip[wi], other = srv.ip[li ^ 1];

                origin.port = srv.port[wj];
                other.port = srv.port[lj ^ 1];
                cr_assert_eq(ovl_stun_server_handle(&srv, req, n, &src, &local, out,
                                                    sizeof(out), &reply, &drop), 0);
                cr_expect_eq(reply.from_ip, wi);
                cr_expect_eq(reply.from_port, wj);
                cr_expect(ovl_stun_addr_eq(&reply.from, &origin), "from %s want %s",
                          fmt(&reply.from), fmt(&origin));
                cr_expect_eq(reply.changed, flags != 0);
                cr_expect_eq(reply.len, 76u, "20 + 4 x 12 + 8");
                cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid_a, &drop), 0);
                cr_expect(r.success);
                cr_expect(ovl_stun_addr_eq(&r.mapped, &src));
                cr_expect(ovl_stun_addr_eq(&r.origin, &origin));
                cr_expect(ovl_stun_addr_eq(&r.other, &other), "other %s want %s",
                          fmt(&r.other), fmt(&other));
            }
        }
    }
    /* Arriving on an address that is not one of the four: single-address
     * behaviour. */
    {
        struct ovl_stun_addr local = addr("198.51.100.1:3478");
        uint8_t req[64], out[OVL_STUN_RESP_MAX];
        size_t n = change_request(req, sizeof(req), OVL_STUN_CHANGE_PORT);
        struct ovl_stun_reply reply;
        struct ovl_stun_result r;
        enum ovl_stun_drop drop;

        cr_assert_eq(ovl_stun_server_handle(&srv, req, n, &src, &local, out, sizeof(out),
                                            &reply, &drop), 0);
        cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid_a, &drop), 0);
        cr_expect_eq(r.error_code, 420);
    }
}

Test(stun, server_buffer_and_source_checks)
{
    uint8_t req[64], out[OVL_STUN_RESP_MAX];
    size_t n = make_request(req, sizeof(req), OVL_STUN_BINDING_REQUEST, NULL, 0, true);
    struct ovl_stun_addr src = addr("192.0.2.9:9"), none = {0};
    struct ovl_stun_reply reply;
    enum ovl_stun_drop drop;

    cr_expect_eq(ovl_stun_server_handle(&plain_server, req, n, &src, NULL, out,
                                        OVL_STUN_RESP_MAX - 1, &reply, &drop), -ENOBUFS);
    cr_expect_eq(ovl_stun_server_handle(&plain_server, req, n, &none, NULL, out, sizeof(out),
                                        &reply, &drop), -EAFNOSUPPORT);
    cr_expect_eq(reply.len, 0);
}

/* The server never answers with more than OVL_STUN_RESP_MAX, and what it
 * sends always parses, whatever a mutated request holds. */
Test(stun, server_mutation_sweep)
{
    struct ovl_stun_server srv = {.mapped_address = true, .rfc5780 = true,
                                  .software = "0123456789abcdef0123456789abcdefXYZ",
                                  .port = {3478, 3479}};
    struct ovl_stun_addr src = addr("[2001:db8::99]:65535"), local;
    uint8_t base[128];
    size_t n = change_request(base, sizeof(base), OVL_STUN_CHANGE_IP);
    uint32_t x = 12345;
    unsigned answered = 0;

    srv.ip[0] = addr("[2001:db8::1]:0");
    srv.ip[1] = addr("[2001:db8::2]:0");
    local = srv.ip[0];
    local.port = 3478;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t req[128], out[OVL_STUN_RESP_MAX];
        struct ovl_stun_reply reply;
        struct ovl_stun_msg m;
        enum ovl_stun_drop drop;
        int rc;

        memcpy(req, base, n);
        for (int k = 0; k < 1 + iter % 3; k++) {
            x = x * 1103515245u + 12345u;
            req[20 + (x >> 8) % (n - 28)] = (uint8_t)(x >> 16);
        }
        if (iter % 2)
            refinger(req, n);
        rc = ovl_stun_server_handle(&srv, req, n, &src, &local, out, sizeof(out), &reply, &drop);
        if (rc != 0) {
            cr_assert_eq(rc, -EBADMSG);
            cr_assert_eq(reply.len, 0);
            continue;
        }
        answered++;
        cr_assert_leq(reply.len, OVL_STUN_RESP_MAX);
        cr_assert_eq(ovl_stun_parse(&m, out, reply.len, &drop), 0, "own reply: %s",
                     ovl_stun_drop_name(drop));
    }
    cr_expect_gt(answered, 100);
}

/* ---- client ------------------------------------------------------------- */

Test(stun, client_request_and_response)
{
    uint8_t seed[32] = {7};
    struct ovl_rng_seeded s;
    struct ovl_rng rng = {ovl_rng_seeded_fn, &s};
    uint8_t req[OVL_STUN_REQ_MAX], req2[OVL_STUN_REQ_MAX], out[OVL_STUN_RESP_MAX];
    uint8_t txid[12], txid2[12];
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;
    struct ovl_stun_addr src = addr("198.51.100.20:5555");
    struct ovl_stun_reply reply;
    struct ovl_stun_result r;
    int n, n2;

    ovl_rng_seeded_init(&s, seed);
    n = ovl_stun_request_build(req, sizeof(req), &rng, 0, NULL, txid);
    cr_assert_eq(n, 28, "header + FINGERPRINT");
    n2 = ovl_stun_request_build(req2, sizeof(req2), &rng, OVL_STUN_CHANGE_IP | OVL_STUN_CHANGE_PORT,
                                "chorus-test", txid2);
    cr_assert_eq(n2, 20 + 8 + 16 + 8);
    cr_expect_neq(memcmp(txid, txid2, 12), 0, "fresh transaction ids");
    cr_assert_eq(ovl_stun_parse(&m, req2, (size_t)n2, &drop), 0);
    cr_expect_eq(m.type, OVL_STUN_BINDING_REQUEST);
    cr_expect(m.has_fingerprint);
    cr_expect(m.has_change_request);
    cr_expect_eq(m.change_flags, 6u);
    cr_expect_eq(m.software_len, 11);
    cr_expect_eq(ovl_wire_classify(req, (size_t)n), OVL_CLASS_STUN);
    cr_expect_eq(ovl_stun_request_build(req, 27, &rng, 0, NULL, txid), -ENOBUFS);

    n = ovl_stun_request_build(req, sizeof(req), &rng, 0, NULL, txid);
    cr_assert_eq(ovl_stun_server_handle(&plain_server, req, (size_t)n, &src, NULL, out,
                                        sizeof(out), &reply, &drop), 0);
    cr_assert_eq(ovl_stun_response_parse(&r, out, reply.len, txid, &drop), 0);
    cr_expect(r.success);
    cr_expect(ovl_stun_addr_eq(&r.mapped, &src));

    /* Not ours, not a response. */
    cr_expect_eq(ovl_stun_response_parse(&r, out, reply.len, txid2, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_TXID_MISMATCH);
    cr_expect_eq(ovl_stun_response_parse(&r, req, (size_t)n, txid, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_NOT_REQUEST);
}

Test(stun, client_response_edge_cases)
{
    struct ovl_stun_builder b;
    uint8_t buf[128];
    struct ovl_stun_result r;
    enum ovl_stun_drop drop;
    struct ovl_stun_addr a = addr("192.0.2.1:1");
    int n;

    /* Success without any address. */
    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    n = ovl_stun_build_finish(&b, true);
    cr_expect_eq(ovl_stun_response_parse(&r, buf, (size_t)n, txid_a, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_NO_ADDRESS);

    /* Only MAPPED-ADDRESS (an old server): accepted. */
    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_MAPPED_ADDRESS, &a);
    n = ovl_stun_build_finish(&b, false);
    cr_assert_eq(ovl_stun_response_parse(&r, buf, (size_t)n, txid_a, &drop), 0);
    expect_addr(&r.mapped, "192.0.2.1:1");

    /* Success with an unknown comprehension-required attribute: discarded. */
    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
    ovl_stun_build_attr(&b, 0x0031, "x", 1);
    n = ovl_stun_build_finish(&b, true);
    cr_expect_eq(ovl_stun_response_parse(&r, buf, (size_t)n, txid_a, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_BAD_ATTR);

    /* Another method's response. */
    ovl_stun_build_init(&b, buf, sizeof(buf), ovl_stun_type(0x003, OVL_STUN_CLASS_SUCCESS), txid_a);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
    n = ovl_stun_build_finish(&b, true);
    cr_expect_eq(ovl_stun_response_parse(&r, buf, (size_t)n, txid_a, &drop), -EBADMSG);
    cr_expect_eq(drop, OVL_STUN_DROP_BAD_METHOD);

    /* An error with a reason phrase. */
    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_ERROR, txid_a);
    ovl_stun_build_error(&b, 400, "Bad Request");
    n = ovl_stun_build_finish(&b, true);
    cr_assert_eq(ovl_stun_response_parse(&r, buf, (size_t)n, txid_a, &drop), 0);
    cr_expect(!r.success);
    cr_expect_eq(r.error_code, 400);
}

Test(stun, builder_overflow_is_sticky)
{
    struct ovl_stun_builder b;
    uint8_t buf[32];
    struct ovl_stun_addr a = addr("[2001:db8::1]:1"), none = {0};

    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_XOR_MAPPED_ADDRESS, &a); /* 24 > 12 left */
    cr_expect(b.overflow);
    ovl_stun_build_attr(&b, OVL_STUN_ATTR_SOFTWARE, "x", 1);
    cr_expect_eq(b.len, 20);
    cr_expect_eq(ovl_stun_build_finish(&b, false), -ENOBUFS);

    ovl_stun_build_init(&b, buf, 10, OVL_STUN_BINDING_SUCCESS, txid_a);
    cr_expect_eq(ovl_stun_build_finish(&b, false), -ENOBUFS);

    ovl_stun_build_init(&b, buf, sizeof(buf), OVL_STUN_BINDING_SUCCESS, txid_a);
    ovl_stun_build_addr(&b, OVL_STUN_ATTR_MAPPED_ADDRESS, &none);
    cr_expect_eq(ovl_stun_build_finish(&b, false), -ENOBUFS, "no address is a caller bug");

    ovl_stun_build_init(&b, buf, 24, OVL_STUN_BINDING_SUCCESS, txid_a);
    cr_expect_eq(ovl_stun_build_finish(&b, true), -ENOBUFS, "no room for FINGERPRINT");
}

Test(stun, drop_names)
{
    for (int d = 0; d < OVL_STUN_DROP__COUNT; d++)
        cr_expect_not_null(ovl_stun_drop_name((enum ovl_stun_drop)d));
    cr_expect_str_eq(ovl_stun_drop_name(OVL_STUN_DROP_BAD_COOKIE), "bad_cookie");
    cr_expect_str_eq(ovl_stun_drop_name(OVL_STUN_DROP__COUNT), "invalid");
}
