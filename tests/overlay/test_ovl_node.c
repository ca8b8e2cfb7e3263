/*
 * test_ovl_node.c: one node driven by hand (ovl_node.h): configuration
 * checks, the host cache (capacity, eviction, persistence format and its
 * rejections), the output interface (a PING gets a PONG naming the
 * sender's address; what a supernode sends when it starts), and that
 * garbage from the network is counted, never fatal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "ovl_node.h"

#define NOW (1000ull * OVL_NS_PER_SEC)

static struct ovl_identity ida, idb;

static void setup(void)
{
    uint8_t s[32];

    cr_assert_geq(sodium_init(), 0);
    memset(s, 0x11, 32);
    ovl_identity_from_seed(&ida, s);
    memset(s, 0x22, 32);
    ovl_identity_from_seed(&idb, s);
}

TestSuite(node, .init = setup);

static void contact(struct ovl_contact *c, uint32_t i)
{
    uint8_t pk[32] = {0};

    memset(c, 0, sizeof(*c));
    memcpy(pk, &i, sizeof(i));
    pk[31] = 0x55;
    memcpy(c->identity, pk, 32);
    ovl_node_id(c->node_id, pk);
    ovl_addr_v4(&c->udp, 0x0B000000u + i, 4000);
    c->tcp_port = 4000;
}

Test(node, hostcache_capacity_and_eviction)
{
    static struct ovl_hostcache hc;
    struct ovl_contact c;

    ovl_hc_init(&hc);
    for (uint32_t i = 0; i < 250; i++) {
        contact(&c, i);
        ovl_hc_add(&hc, &c, 1000 + i);
    }
    cr_expect_eq(hc.n, OVL_HOSTCACHE_MAX);
    /* The oldest gave way to the newest. */
    contact(&c, 0);
    cr_expect_null(ovl_hc_find(&hc, c.node_id));
    contact(&c, 249);
    cr_expect_not_null(ovl_hc_find(&hc, c.node_id));
    /* A contact that keeps failing is the first to go. */
    contact(&c, 100);
    for (int i = 0; i < 3; i++)
        ovl_hc_failed(&hc, c.node_id);
    cr_expect_eq(ovl_hc_find(&hc, c.node_id)->fails, 3);
    contact(&c, 500);
    ovl_hc_add(&hc, &c, 10); /* old, but beats a failing one */
    contact(&c, 100);
    cr_expect_null(ovl_hc_find(&hc, c.node_id));
    /* Success clears failures and refreshes. */
    contact(&c, 200);
    ovl_hc_failed(&hc, c.node_id);
    ovl_hc_ok(&hc, c.node_id, 99999);
    cr_expect_eq(ovl_hc_find(&hc, c.node_id)->fails, 0);
    cr_expect_eq(ovl_hc_find(&hc, c.node_id)->last_seen, 99999u);
    /* Re-adding updates the address, keeps the newest time. */
    c.udp.port = 4001;
    ovl_hc_add(&hc, &c, 5);
    cr_expect_eq(ovl_hc_find(&hc, c.node_id)->c.udp.port, 4001);
    cr_expect_eq(ovl_hc_find(&hc, c.node_id)->last_seen, 99999u);
    ovl_hc_remove(&hc, c.node_id);
    cr_expect_null(ovl_hc_find(&hc, c.node_id));
}

Test(node, hostcache_persistence_and_rejections)
{
    static struct ovl_hostcache hc, back, keep;
    static uint8_t buf[OVL_HOSTCACHE_MAX * 68 + 64], bad[sizeof(buf)];
    struct ovl_contact c;
    int len;

    ovl_hc_init(&hc);
    for (uint32_t i = 0; i < 37; i++) {
        contact(&c, i);
        c.flags = i % 2 ? OVL_CF_TCP443 : 0;
        ovl_hc_add(&hc, &c, 1000 + i);
    }
    contact(&c, 3);
    ovl_hc_failed(&hc, c.node_id);
    len = ovl_hc_save(&hc, buf, sizeof(buf));
    cr_assert_eq(len, 20 + 37 * 68);
    cr_expect_eq((size_t)len, ovl_hc_save_size(&hc));
    cr_expect_eq(ovl_hc_save(&hc, buf, (size_t)len - 1), -ENOBUFS);
    cr_assert_eq(ovl_hc_load(&back, buf, (size_t)len), 0);
    cr_assert_eq(back.n, 37);
    for (int i = 0; i < 37; i++) {
        cr_expect_eq(memcmp(back.e[i].c.identity, hc.e[i].c.identity, 32), 0);
        cr_expect_eq(memcmp(back.e[i].c.node_id, hc.e[i].c.node_id, 32), 0);
        cr_expect(ovl_addr_eq(&back.e[i].c.udp, &hc.e[i].c.udp));
        cr_expect_eq(back.e[i].c.flags, hc.e[i].c.flags);
        cr_expect_eq(back.e[i].last_seen, hc.e[i].last_seen);
        cr_expect_eq(back.e[i].fails, hc.e[i].fails);
    }
    /* Rejections leave the target untouched. */
    static const struct {
        size_t off;
        uint8_t val;
        const char *what;
    } cases[] = {
        {0, 'X', "magic"},         {16, 2, "version"},
        {17, 1, "reserved"},       {18, 38, "count too high"},
        {18, 36, "count too low"}, {20 + 32, 9, "address family"},
        {20 + 55, 1, "contact reserved"}, {20 + 65, 1, "entry reserved"},
    };
    ovl_hc_init(&keep);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, buf, (size_t)len);
        bad[cases[i].off] = cases[i].val;
        back = keep;
        cr_expect_eq(ovl_hc_load(&back, bad, (size_t)len), -EBADMSG, "%s",
                     cases[i].what);
        cr_expect_eq(back.n, 0, "%s: untouched", cases[i].what);
    }
    for (int cut = 0; cut < len; cut += 17)
        cr_expect_eq(ovl_hc_load(&back, buf, (size_t)cut), -EBADMSG);
    /* A duplicate entry. */
    memcpy(bad, buf, (size_t)len);
    memcpy(bad + 20 + 68, bad + 20, 68);
    cr_expect_eq(ovl_hc_load(&back, bad, (size_t)len), -EBADMSG);
    /* An empty cache saves and loads. */
    ovl_hc_init(&hc);
    len = ovl_hc_save(&hc, buf, sizeof(buf));
    cr_expect_eq(len, 20);
    cr_expect_eq(ovl_hc_load(&back, buf, (size_t)len), 0);
    cr_expect_eq(back.n, 0);
}

static void config(struct ovl_node_config *c, const struct ovl_identity *id,
                   enum ovl_role_mode mode, bool plain)
{
    memset(c, 0, sizeof(*c));
    c->identity = id;
    c->role_mode = mode;
    ovl_addr_v4(&c->local, 0x0B000001u, 4000);
    c->tcp_port = 4000;
    c->insecure_plaintext = plain;
}

Test(node, config_checks)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    uint8_t cert[OVL_CERT_LEN] = {0};

    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    c.identity = NULL;
    cr_expect_eq(ovl_node_new(&n, &c, NOW), -EINVAL);
    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    c.handle = "has space";
    cr_expect_eq(ovl_node_new(&n, &c, NOW), -EINVAL);
    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    c.local.port = 0;
    cr_expect_eq(ovl_node_new(&n, &c, NOW), -EINVAL);
    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    c.handle = "alice";
    c.cert = cert; /* not a certificate */
    cr_expect_eq(ovl_node_new(&n, &c, NOW), -EINVAL);
    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    c.handle = "alice";
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_expect_eq(ovl_node_role(n), OVL_ROLE_PEER);
    cr_expect(!ovl_node_logged_in(n));
    cr_expect_eq(ovl_node_lookup(n, OVL_R_PRESENCE, "bob", NOW, NULL),
                 -ENOTCONN);
    cr_expect_eq(ovl_node_lookup(n, OVL_R_PRESENCE, "b b", NOW, NULL),
                 -EINVAL);
    cr_expect_eq(ovl_node_buddy_add(n, "bob", NOW), 0);
    cr_expect_eq(ovl_node_buddy_add(n, "bob", NOW), -EEXIST);
    cr_expect_gt(ovl_node_memory(n), sizeof(struct ovl_hostcache));
    ovl_node_free(n);
}

/* With an empty host cache a peer says so at once, and keeps trying. */
Test(node, login_without_supernodes)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_event ev;
    struct ovl_out o;

    config(&c, &ida, OVL_ROLE_MODE_PEER, false);
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    cr_expect_eq(ovl_node_start(n, NOW), -EALREADY);
    cr_assert(ovl_node_event_next(n, &ev));
    cr_expect_eq(ev.kind, OVL_NEV_LOGIN_FAILED);
    cr_expect(strstr(ev.reason, "no supernode known") != NULL, "%s",
              ev.reason);
    cr_expect(!ovl_node_out_next(n, &o));
    ovl_node_timers(n, NOW);
    cr_expect(!ovl_node_out_next(n, &o));
    cr_expect_gt(ovl_node_next_timer(n), NOW);
    cr_expect_leq(ovl_node_next_timer(n), NOW + OVL_NS_PER_SEC);
    ovl_node_free(n);
}

/* Sends a plaintext frame from @from's identity carrying @msg to @to. */
static void plain_to(struct ovl_node *to, const struct ovl_identity *from,
                     const struct ovl_addr *src, struct ovl_msg *m)
{
    uint8_t frame[36 + OVL_MSG_MAX];
    int len;

    memset(frame, 0, 36);
    frame[0] = OVL_PLAIN_TYPE;
    frame[1] = OVL_MSG_VERSION;
    memcpy(frame + 4, from->ed_pk, 32);
    len = ovl_msg_encode(m, frame + 36, OVL_MSG_MAX);
    cr_assert_gt(len, 0);
    ovl_node_udp_recv(to, src, frame, 36 + (size_t)len, NOW);
}

Test(node, ping_pong_and_garbage)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr src;
    struct ovl_msg m, got;
    struct ovl_out o;
    enum ovl_mdrop why;
    int outs = 0;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    /* The first supernode of a network has joined already. */
    cr_expect(ovl_node_logged_in(n));
    ovl_addr_v4(&src, 0x0B000009u, 4321);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_PING;
    m.rid = 77;
    plain_to(n, &idb, &src, &m);
    while (ovl_node_out_next(n, &o)) {
        outs++;
        cr_assert_eq(o.kind, OVL_OUT_UDP_SEND);
        cr_expect(ovl_addr_eq(&o.addr, &src));
        cr_assert_geq(o.len, 36u);
        cr_expect_eq(memcmp(o.data + 4, ida.ed_pk, 32), 0);
        cr_assert_eq(ovl_msg_decode(&got, o.data + 36, o.len - 36, &why), 0);
        cr_expect_eq(got.type, OVL_M_PONG);
        cr_expect_eq(got.rid, 77u);
        cr_expect(ovl_addr_eq(&got.u.pong.observed, &src),
                  "PONG names the address the request came from");
    }
    cr_expect_eq(outs, 1);
    /* Garbage of every kind: counted, never fatal, nothing sent. */
    uint8_t junk[300];
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + (size_t)(i % 299);
        randombytes_buf(junk, len);
        if (i % 3 == 0)
            junk[0] = OVL_PLAIN_TYPE;
        if (i % 3 == 1)
            junk[0] = OVL_MSG_DATA;
        ovl_node_udp_recv(n, &src, junk, len, NOW);
    }
    cr_expect(!ovl_node_out_next(n, &o) || o.kind == OVL_OUT_UDP_SEND);
    cr_expect_gt(ovl_node_stats(n)->dropped +
                     ovl_node_stats(n)->msg_drops[OVL_MD_BAD_VERSION] +
                     ovl_node_stats(n)->msg_drops[OVL_MD_TOO_SHORT],
                 0u);
    /* A peer-only request at a supernode from a stranger: refused. */
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_VALUE;
    m.flags = OVL_MF_SEARCH;
    m.rid = 78;
    while (ovl_node_out_next(n, &o))
        ;
    plain_to(n, &idb, &src, &m);
    cr_assert(ovl_node_out_next(n, &o));
    cr_assert_eq(ovl_msg_decode(&got, o.data + 36, o.len - 36, &why), 0);
    cr_expect_eq(got.type, OVL_M_ERROR);
    cr_expect_eq(got.u.error.code, OVL_MERR_NOT_LOGGED_IN);
    ovl_node_free(n);
}

/* A plaintext frame reaching a node that expects secure sessions (and the
 * reverse) is dropped: the switch cannot be turned on from outside. */
Test(node, plaintext_only_when_configured)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr src;
    struct ovl_msg m;
    struct ovl_out o;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, false);
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    while (ovl_node_out_next(n, &o))
        ;
    ovl_addr_v4(&src, 0x0B000009u, 4321);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_PING;
    m.rid = 5;
    plain_to(n, &idb, &src, &m);
    cr_expect(!ovl_node_out_next(n, &o));
    cr_expect_eq(ovl_node_stats(n)->dropped, 1u);
    ovl_node_free(n);
}
