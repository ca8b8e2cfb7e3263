/*
 * test_ovl_msg.c: the overlay message layer (ovl_msg.h): a round trip of
 * every type, a table of rejections built by mutating valid messages,
 * every truncation of every message, encoder refusals, and a mutation
 * sweep checking that whatever the decoder accepts is canonical (encodes
 * back to the same bytes).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "ovl_msg.h"
#include "ovl_test_util.h"

static uint8_t fake_record[300];
static uint8_t fake_cert[OVL_CERT_LEN];


/* One valid message of each type (index = position in the table). */
static int sample(int i, struct ovl_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->rid = 0x01020304u + (uint32_t)i;
    for (size_t j = 0; j < sizeof(fake_record); j++)
        fake_record[j] = (uint8_t)(j * 7);
    memset(fake_cert, 0xCE, sizeof(fake_cert));
    switch (i) {
    case 0:
        m->type = OVL_M_PING;
        m->flags = OVL_MF_DHT_MEMBER;
        return 1;
    case 1:
        m->type = OVL_M_PONG;
        ovl_addr_v4(&m->u.pong.observed, 0xC0A80001u, 33033);
        return 1;
    case 2:
        m->type = OVL_M_ERROR;
        m->u.error.code = OVL_MERR_NOT_SUPERNODE;
        return 1;
    case 3:
        m->type = OVL_M_LOGIN;
        m->flags = OVL_MF_LOGIN_HAS_CERT;
        strcpy(m->u.login.handle, "alice@example");
        m->u.login.handle_len = 13;
        m->u.login.cert = fake_cert;
        return 1;
    case 4:
        m->type = OVL_M_LOGIN;
        m->flags = OVL_MF_LOGIN_FALLBACK;
        m->u.login.role = OVL_ROLE_PEER;
        return 1; /* anonymous */
    case 5:
        m->type = OVL_M_LOGIN_OK;
        ovl_addr_v4(&m->u.login_ok.observed, 0x01020304u, 9);
        m->u.login_ok.keepalive_s = 15;
        return 1;
    case 6:
        m->type = OVL_M_LOGIN_ERR;
        m->u.login_err.code = OVL_MERR_FULL;
        m->u.login_err.count = 2;
        contact(&m->u.login_err.contacts[0], 1, false);
        contact(&m->u.login_err.contacts[1], 2, true);
        return 1;
    case 7:
        m->type = OVL_M_HOSTCACHE_GET;
        m->u.hostcache_get.max = 16;
        return 1;
    case 8:
        m->type = OVL_M_HOSTCACHE;
        m->u.contacts.count = OVL_CONTACTS_MAX;
        for (int j = 0; j < OVL_CONTACTS_MAX; j++)
            contact(&m->u.contacts.contacts[j], (uint8_t)(j + 3), j % 3 == 0);
        return 1;
    case 9:
        m->type = OVL_M_FIND_NODE;
        m->flags = OVL_MF_DHT_MEMBER;
        memset(m->u.find_node.target, 0xAB, 32);
        return 1;
    case 10:
        m->type = OVL_M_NODES;
        m->u.contacts.count = 8;
        for (int j = 0; j < 8; j++)
            contact(&m->u.contacts.contacts[j], (uint8_t)(j + 40), false);
        return 1;
    case 11:
        m->type = OVL_M_STORE;
        m->flags = OVL_MF_SEARCH;
        m->u.store.record = fake_record;
        m->u.store.record_len = sizeof(fake_record);
        return 1;
    case 12:
        m->type = OVL_M_STORE_OK;
        m->u.store_ok.status = OVL_STORE_OLDER;
        m->u.store_ok.replicas = 7;
        m->u.store_ok.seq = 0x1122334455667788ull;
        return 1;
    case 13:
        m->type = OVL_M_FIND_VALUE;
        m->flags = OVL_MF_SEARCH;
        memset(m->u.find_value.key, 0x5A, 32);
        m->u.find_value.known_seq = 42;
        return 1;
    case 14:
        m->type = OVL_M_VALUE;
        m->u.value.status = OVL_VALUE_FOUND;
        m->u.value.rounds = 3;
        m->u.value.messages = 40;
        m->u.value.record = fake_record;
        m->u.value.record_len = 200;
        return 1;
    case 15:
        m->type = OVL_M_VALUE;
        m->u.value.status = OVL_VALUE_NOT_FOUND;
        m->u.value.count = 3;
        for (int j = 0; j < 3; j++)
            contact(&m->u.value.contacts[j], (uint8_t)(j + 60), false);
        return 1;
    case 16:
        m->type = OVL_M_SUBSCRIBE;
        m->flags = OVL_MF_SEARCH;
        memset(m->u.subscribe.key, 0x77, 32);
        m->u.subscribe.ttl_s = 600;
        return 1;
    case 17:
        m->type = OVL_M_NOTIFY;
        m->rid = 0; /* unsolicited */
        memset(m->u.notify.key, 0x77, 32);
        m->u.notify.record = fake_record;
        m->u.notify.record_len = 150;
        return 1;
    case 18:
        m->type = OVL_M_NOTIFY; /* answer to SUBSCRIBE: nothing known */
        memset(m->u.notify.key, 0x78, 32);
        return 1;
    case 19:
        m->type = OVL_M_REACH_PROBE;
        m->flags = OVL_MF_REACH_RELAY | OVL_MF_DHT_MEMBER;
        contact(&m->u.reach.target, 90, false);
        return 1;
    case 20:
        m->type = OVL_M_REACH_OK;
        contact(&m->u.reach.target, 91, true);
        m->u.reach.result = OVL_REACH_UDP | OVL_REACH_TCP;
        return 1;
    case 21:
        m->type = OVL_M_SUBSCRIBE;
        m->flags = OVL_MF_UNSUBSCRIBE;
        memset(m->u.subscribe.key, 0x79, 32);
        return 1;
    default:
        return 0;
    }
}

static int encode_sample(int i, uint8_t *buf, size_t cap)
{
    struct ovl_msg m;
    int len;

    cr_assert(sample(i, &m));
    len = ovl_msg_encode(&m, buf, cap);
    cr_assert_gt(len, 0, "sample %d (%s): %d", i, ovl_mtype_name(m.type), len);
    return len;
}

Test(msg, round_trip_every_type)
{
    uint8_t buf[OVL_MSG_MAX], again[OVL_MSG_MAX];
    struct ovl_msg in, out;
    enum ovl_mdrop why;
    bool seen[256] = {false};

    cr_assert_geq(sodium_init(), 0);
    for (int i = 0; sample(i, &in); i++) {
        int len = ovl_msg_encode(&in, buf, sizeof(buf)), len2;

        cr_assert_gt(len, 0, "encode %d", i);
        cr_assert_eq(ovl_msg_decode(&out, buf, (size_t)len, &why), 0,
                     "decode %d (%s): %s", i, ovl_mtype_name(in.type),
                     ovl_mdrop_name(why));
        cr_expect_eq(out.type, in.type);
        cr_expect_eq(out.flags, in.flags);
        cr_expect_eq(out.rid, in.rid);
        len2 = ovl_msg_encode(&out, again, sizeof(again));
        cr_assert_eq(len2, len, "re-encode %d", i);
        cr_expect_eq(memcmp(buf, again, (size_t)len), 0, "bytes %d", i);
        seen[in.type] = true;
    }
    /* Field spot checks the byte comparison cannot see (pointers). */
    sample(3, &in);
    ovl_msg_decode(&out, buf, (size_t)ovl_msg_encode(&in, buf, sizeof(buf)),
                   &why);
    cr_expect_str_eq(out.u.login.handle, "alice@example");
    cr_assert_not_null(out.u.login.cert);
    cr_expect_eq(memcmp(out.u.login.cert, fake_cert, OVL_CERT_LEN), 0);
    sample(8, &in);
    ovl_msg_decode(&out, buf, (size_t)ovl_msg_encode(&in, buf, sizeof(buf)),
                   &why);
    cr_expect_eq(memcmp(out.u.contacts.contacts[5].node_id,
                        in.u.contacts.contacts[5].node_id, 32),
                 0, "node id derived from identity");
    cr_expect(ovl_addr_eq(&out.u.contacts.contacts[3].udp,
                          &in.u.contacts.contacts[3].udp));
    sample(14, &in);
    ovl_msg_decode(&out, buf, (size_t)ovl_msg_encode(&in, buf, sizeof(buf)),
                   &why);
    cr_expect_eq(out.u.value.record_len, 200);
    cr_expect_eq(memcmp(out.u.value.record, fake_record, 200), 0);
    cr_expect_eq(out.u.value.rounds, 3);
    cr_expect_eq(out.u.value.messages, 40);
    /* Every type of the protocol has a sample. */
    static const uint8_t all[] = {
        OVL_M_PING, OVL_M_PONG, OVL_M_ERROR, OVL_M_LOGIN, OVL_M_LOGIN_OK,
        OVL_M_LOGIN_ERR, OVL_M_HOSTCACHE_GET, OVL_M_HOSTCACHE,
        OVL_M_FIND_NODE, OVL_M_NODES, OVL_M_STORE, OVL_M_STORE_OK,
        OVL_M_FIND_VALUE, OVL_M_VALUE, OVL_M_SUBSCRIBE, OVL_M_NOTIFY,
        OVL_M_REACH_PROBE, OVL_M_REACH_OK};
    for (size_t i = 0; i < sizeof(all); i++)
        cr_expect(seen[all[i]], "no sample for %s", ovl_mtype_name(all[i]));
}

Test(msg, largest_fits_one_datagram)
{
    uint8_t buf[OVL_MSG_MAX];
    int len = encode_sample(8, buf, sizeof(buf)); /* 16 contacts */

    cr_expect_leq(len, OVL_MSG_MAX);
    cr_expect_eq(len, OVL_MSG_HDR_LEN + 4 + 16 * 56);
    cr_expect_leq(OVL_MSG_MAX + OVL_DATA_OVERHEAD, 1232);
}

/* A mutation of sample @s: write @val at @off; expect @why. */
struct reject_case {
    int s;
    size_t off;
    uint8_t val;
    enum ovl_mdrop why;
    const char *what;
};

Test(msg, rejection_table)
{
    /* Offsets: header 0..7, then the type's fixed part. */
    static const struct reject_case cases[] = {
        {0, 0, 2, OVL_MD_BAD_VERSION, "version 2"},
        {0, 0, 0, OVL_MD_BAD_VERSION, "version 0"},
        {0, 1, 0x04, OVL_MD_BAD_TYPE, "unknown type"},
        {0, 1, 0xFF, OVL_MD_BAD_TYPE, "unknown type ff"},
        {0, 2, 0x01, OVL_MD_BAD_FLAGS, "PING with SEARCH"},
        {1, 2, 0x80, OVL_MD_BAD_FLAGS, "PONG with DHT_MEMBER"},
        {3, 2, 0x06, OVL_MD_BAD_FLAGS, "LOGIN unknown flag 4"},
        {0, 3, 1, OVL_MD_BAD_RESERVED, "header reserved"},
        {0, 4, 0, OVL_MD_NONE, "rid byte zero (rest non-zero)"},
        {1, 8, 5, OVL_MD_BAD_ADDR, "family 5"},
        {1, 9, 1, OVL_MD_BAD_ADDR, "addr reserved"},
        {1, 10, 0, OVL_MD_NONE, "port high byte 0 (low byte set)"},
        {1, 20, 1, OVL_MD_BAD_ADDR, "IPv4 with junk in ip[4..]"},
        {2, 8, 0, OVL_MD_NONE, "error code high byte"},
        {2, 9, 0, OVL_MD_BAD_COUNT, "error code 0"},
        {2, 9, 99, OVL_MD_BAD_COUNT, "error code 99"},
        {2, 10, 1, OVL_MD_BAD_RESERVED, "error reserved"},
        {3, 8, 65, OVL_MD_BAD_COUNT, "handle_len 65"},
        {3, 8, 14, OVL_MD_BAD_NAME, "handle_len +1 eats a cert byte"},
        {3, 8, 12, OVL_MD_TOO_LONG, "handle_len -1 leaves a byte over"},
        {3, 9, 2, OVL_MD_BAD_COUNT, "role 2"},
        {3, 10, 1, OVL_MD_BAD_RESERVED, "login reserved"},
        {3, 12, ' ', OVL_MD_BAD_NAME, "space in handle"},
        {3, 13, 0x7F, OVL_MD_BAD_NAME, "DEL in handle"},
        {5, 30, 1, OVL_MD_BAD_RESERVED, "login_ok reserved"},
        {6, 10, 5, OVL_MD_BAD_COUNT, "login_err count 5"},
        {6, 10, 3, OVL_MD_TOO_SHORT, "login_err count 3 of 2"},
        {6, 11, 1, OVL_MD_BAD_RESERVED, "login_err reserved"},
        {7, 8, 0, OVL_MD_BAD_COUNT, "hostcache_get max 0"},
        {7, 8, 17, OVL_MD_BAD_COUNT, "hostcache_get max 17"},
        {7, 11, 1, OVL_MD_BAD_RESERVED, "hostcache_get reserved"},
        {8, 8, 17, OVL_MD_BAD_COUNT, "hostcache count 17"},
        {8, 8, 15, OVL_MD_TOO_LONG, "hostcache count 15 of 16"},
        {8, 12 + 32, 7, OVL_MD_BAD_ADDR, "contact family 7"},
        {8, 12 + 55, 1, OVL_MD_BAD_ADDR, "contact reserved"},
        {8, 12 + 54, 0x02, OVL_MD_BAD_ADDR, "contact unknown flag"},
        {10, 8, 9, OVL_MD_TOO_SHORT, "nodes count 9 of 8"},
        {11, 8, 0, OVL_MD_BAD_COUNT, "store record_len 44 (< min)"},
        {11, 8, 4, OVL_MD_BAD_COUNT, "store record_len over max"},
        {11, 10, 1, OVL_MD_BAD_RESERVED, "store reserved"},
        {12, 8, 9, OVL_MD_BAD_COUNT, "store_ok status 9"},
        {12, 9, 1, OVL_MD_BAD_RESERVED, "store_ok reserved"},
        {14, 8, 9, OVL_MD_BAD_COUNT, "value status 9"},
        {14, 9, 17, OVL_MD_BAD_COUNT, "value count 17"},
        {14, 9, 1, OVL_MD_TOO_SHORT, "value count 1 missing"},
        {14, 13, 1, OVL_MD_BAD_RESERVED, "value reserved"},
        {15, 10, 1, OVL_MD_BAD_COUNT, "not found with a record length"},
        {16, 8 + 32, 0x0E, OVL_MD_BAD_COUNT, "subscribe ttl 3600+"},
        {16, 8 + 34, 1, OVL_MD_BAD_RESERVED, "subscribe reserved"},
        {17, 8 + 34, 1, OVL_MD_BAD_RESERVED, "notify reserved"},
        {17, 8 + 32, 0x10, OVL_MD_BAD_COUNT, "notify record over max"},
        {19, 8 + 56, 1, OVL_MD_BAD_COUNT, "probe with a result"},
        {20, 8 + 56, 4, OVL_MD_BAD_COUNT, "reach_ok unknown result"},
        {20, 8 + 57, 1, OVL_MD_BAD_RESERVED, "reach reserved"},
        {20, 8 + 32 + 2, 0, OVL_MD_NONE, "reach port high byte zero"},
    };
    uint8_t buf[OVL_MSG_MAX];
    struct ovl_msg m;
    enum ovl_mdrop why;

    cr_assert_geq(sodium_init(), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct reject_case *c = &cases[i];
        int len = encode_sample(c->s, buf, sizeof(buf));
        int rc;

        cr_assert_lt(c->off, (size_t)len, "case %zu offset", i);
        buf[c->off] = c->val;
        rc = ovl_msg_decode(&m, buf, (size_t)len, &why);
        if (c->why == OVL_MD_NONE) {
            cr_expect_eq(rc, 0, "case %zu (%s) should pass: %s", i, c->what,
                         ovl_mdrop_name(why));
        } else {
            cr_expect_eq(rc, -EBADMSG, "case %zu (%s) accepted", i, c->what);
            cr_expect_eq(why, c->why, "case %zu (%s): %s, want %s", i,
                         c->what, ovl_mdrop_name(why),
                         ovl_mdrop_name(c->why));
        }
    }
}

Test(msg, zero_rid_only_for_notify)
{
    uint8_t buf[OVL_MSG_MAX];
    struct ovl_msg m;
    enum ovl_mdrop why;

    for (int i = 0; sample(i, &m); i++) {
        int len = encode_sample(i, buf, sizeof(buf));
        memset(buf + 4, 0, 4);
        int rc = ovl_msg_decode(&m, buf, (size_t)len, &why);
        if (buf[1] == OVL_M_NOTIFY) {
            cr_expect_eq(rc, 0);
        } else {
            cr_expect_eq(rc, -EBADMSG, "sample %d", i);
            cr_expect_eq(why, OVL_MD_BAD_RID);
        }
    }
}

Test(msg, every_truncation_and_extension_rejected)
{
    uint8_t buf[OVL_MSG_MAX + 8];
    struct ovl_msg m;
    enum ovl_mdrop why;

    for (int i = 0; sample(i, &m); i++) {
        int len = encode_sample(i, buf, sizeof(buf));

        for (int cut = 0; cut < len; cut++) {
            cr_expect_eq(ovl_msg_decode(&m, buf, (size_t)cut, &why), -EBADMSG,
                         "sample %d cut to %d accepted", i, cut);
            cr_expect(why == OVL_MD_TOO_SHORT || why == OVL_MD_TOO_LONG ||
                          why == OVL_MD_BAD_COUNT,
                      "sample %d cut %d: %s", i, cut, ovl_mdrop_name(why));
        }
        buf[len] = 0;
        cr_expect_eq(ovl_msg_decode(&m, buf, (size_t)len + 1, &why), -EBADMSG);
        cr_expect_eq(why, OVL_MD_TOO_LONG, "sample %d + 1 byte", i);
    }
    cr_expect_eq(ovl_msg_decode(&m, buf, OVL_MSG_MAX + 1, &why), -EBADMSG);
    cr_expect_eq(why, OVL_MD_TOO_LONG);
    cr_expect_eq(ovl_msg_decode(&m, NULL, 0, &why), -EBADMSG);
}

Test(msg, encoder_refusals)
{
    uint8_t buf[OVL_MSG_MAX];
    struct ovl_msg m;

    sample(0, &m);
    m.rid = 0;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "zero rid");
    sample(0, &m);
    m.flags = OVL_MF_SEARCH;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "bad flag");
    sample(0, &m);
    m.type = 0x99;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "bad type");
    sample(3, &m);
    m.u.login.handle[2] = ' ';
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "name");
    sample(3, &m);
    m.u.login.cert = NULL;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "cert flag");
    sample(8, &m);
    m.u.contacts.count = 17;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "count");
    sample(8, &m);
    m.u.contacts.contacts[4].udp.port = 0;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "port 0");
    sample(11, &m);
    m.u.store.record_len = 10;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "short rec");
    sample(11, &m);
    m.u.store.record_len = OVL_RECORD_MAX + 1;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "long rec");
    sample(2, &m);
    m.u.error.code = 0;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "code 0");
    sample(8, &m);
    cr_expect_eq(ovl_msg_encode(&m, buf, 100), -ENOBUFS, "small buffer");
    sample(19, &m);
    m.u.reach.result = 1;
    cr_expect_eq(ovl_msg_encode(&m, buf, sizeof(buf)), -EINVAL, "probe res");
}

/* Single-byte mutations of every sample: no crash, and anything accepted
 * is canonical (encodes back to the same bytes). */
Test(msg, mutations_accepted_only_if_canonical)
{
    uint8_t buf[OVL_MSG_MAX], mut[OVL_MSG_MAX], again[OVL_MSG_MAX];
    static const uint8_t vals[] = {0x00, 0x01, 0x04, 0x06, 0x10, 0x7F, 0x80,
                                   0xFF};
    struct ovl_msg m;
    enum ovl_mdrop why;
    unsigned accepted = 0, rejected = 0;

    cr_assert_geq(sodium_init(), 0);
    for (int i = 0; sample(i, &m); i++) {
        int len = encode_sample(i, buf, sizeof(buf));

        for (int off = 0; off < len; off++) {
            for (size_t v = 0; v < sizeof(vals); v++) {
                memcpy(mut, buf, (size_t)len);
                mut[off] = vals[v];
                if (ovl_msg_decode(&m, mut, (size_t)len, &why) != 0) {
                    cr_assert(why > OVL_MD_NONE && why < OVL_MD__COUNT);
                    rejected++;
                    continue;
                }
                accepted++;
                cr_assert_eq(ovl_msg_encode(&m, again, sizeof(again)), len,
                             "sample %d off %d val %02x", i, off, vals[v]);
                cr_assert_eq(memcmp(again, mut, (size_t)len), 0,
                             "not canonical: sample %d off %d", i, off);
            }
        }
    }
    cr_expect_gt(accepted, 0u);
    cr_expect_gt(rejected, 0u);
}

Test(msg, addresses)
{
    struct ovl_addr a, b;
    uint8_t c[OVL_ADDR_COMPACT_MAX];
    char text[64];

    ovl_addr_v4(&a, 0x0A000102u, 4000);
    cr_expect_eq(ovl_addr_compact(c, &a), 7u);
    cr_expect_eq(ovl_addr_from_compact(&b, c, 7), 0);
    cr_expect(ovl_addr_eq(&a, &b));
    ovl_addr_to_text(text, sizeof(text), &a);
    cr_expect_str_eq(text, "10.0.1.2:4000");
    memset(&a, 0, sizeof(a));
    a.family = OVL_AF_INET6;
    a.ip[15] = 1;
    a.port = 443;
    cr_expect_eq(ovl_addr_compact(c, &a), 19u);
    cr_expect_eq(ovl_addr_from_compact(&b, c, 19), 0);
    cr_expect(ovl_addr_eq(&a, &b));
    ovl_addr_to_text(text, sizeof(text), &a);
    cr_expect_str_eq(text, "[::1]:443");
    cr_expect_eq(ovl_addr_from_compact(&b, c, 7), -EINVAL);
    cr_expect(ovl_name_valid("alice", 5));
    cr_expect(!ovl_name_valid("al ice", 6));
    cr_expect(!ovl_name_valid("", 0));
    cr_expect(!ovl_name_valid("x", OVL_NAME_MAX + 1));
}
