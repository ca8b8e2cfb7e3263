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

/* ---- Accepted connections that never authenticate ---------------------------- */

/* Collects the connections closed by the node's outputs into @closed. */
static int drain_closes(struct ovl_node *n, uint32_t *closed, int cap)
{
    struct ovl_out o;
    int k = 0;

    while (ovl_node_out_next(n, &o))
        if (o.kind == OVL_OUT_TCP_CLOSE && k < cap)
            closed[k++] = o.conn;
    return k;
}

/* A plaintext frame carrying @m from @from, with the TCP length prefix. */
static size_t tcp_frame(uint8_t *out, const struct ovl_identity *from,
                        struct ovl_msg *m)
{
    int len;

    memset(out, 0, 38);
    out[2] = OVL_PLAIN_TYPE;
    out[3] = OVL_MSG_VERSION;
    memcpy(out + 6, from->ed_pk, 32);
    len = ovl_msg_encode(m, out + 38, OVL_MSG_MAX);
    cr_assert_gt(len, 0);
    out[0] = (uint8_t)((36 + len) >> 8);
    out[1] = (uint8_t)(36 + len);
    return 38 + (size_t)len;
}

/* Silent and slow-loris connections are closed after accept_timeout; one
 * that authenticated a sender (here: a plaintext frame) stays. */
Test(node, unauthenticated_connections_time_out)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr src;
    struct ovl_msg m;
    uint8_t frame[64 + OVL_MSG_MAX];
    uint32_t silent, loris, good, closed[8];
    uint64_t t;
    size_t len;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    drain_closes(n, closed, 8);
    ovl_addr_v4(&src, 0x0B000009u, 4321);
    silent = ovl_node_tcp_accepted(n, &src, NOW);
    loris = ovl_node_tcp_accepted(n, &src, NOW);
    good = ovl_node_tcp_accepted(n, &src, NOW);
    cr_assert(silent && loris && good);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_PING;
    m.rid = 9;
    len = tcp_frame(frame, &idb, &m);
    ovl_node_tcp_recv(n, good, frame, len, NOW + OVL_NS_PER_SEC);
    /* The slow loris sends one byte of a frame every 2 s. */
    for (t = NOW; t < NOW + 10 * OVL_NS_PER_SEC; t += 2 * OVL_NS_PER_SEC) {
        ovl_node_tcp_recv(n, loris, frame + (t - NOW) / (2 * OVL_NS_PER_SEC),
                          1, t);
        if (ovl_node_next_timer(n) <= t)
            ovl_node_timers(n, t);
        cr_expect_eq(drain_closes(n, closed, 8), 0, "nothing closed at %llu",
                     (unsigned long long)(t - NOW));
    }
    t = NOW + 10 * OVL_NS_PER_SEC;
    cr_assert_leq(ovl_node_next_timer(n), t);
    ovl_node_timers(n, t);
    cr_assert_eq(drain_closes(n, closed, 8), 2);
    cr_expect((closed[0] == silent && closed[1] == loris) ||
              (closed[0] == loris && closed[1] == silent));
    cr_expect_eq(ovl_node_stats(n)->conns_unauth_closed, 2u);
    /* The authenticated one still works; the closed ones are gone. */
    ovl_node_tcp_recv(n, good, frame, len, t);
    cr_expect_eq(ovl_node_stats(n)->rx_msgs, 2u);
    uint64_t dropped = ovl_node_stats(n)->dropped;
    ovl_node_tcp_recv(n, silent, frame, len, t);
    cr_expect_eq(ovl_node_stats(n)->dropped, dropped + 1);
    ovl_node_free(n);
}

/* The timeout is configurable, also in crypto mode; and at most
 * max_unauth_conns wait at once: a newcomer closes the oldest. */
Test(node, unauthenticated_connections_capped)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr src;
    struct ovl_msg m;
    uint8_t frame[64 + OVL_MSG_MAX];
    uint32_t ids[8], closed[8], bound;
    size_t len;
    int k;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, false);
    c.timing.accept_timeout = 3 * OVL_NS_PER_SEC;
    c.max_unauth_conns = 4;
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    drain_closes(n, closed, 8);
    ovl_addr_v4(&src, 0x0B000009u, 4321);
    for (int i = 0; i < 6; i++) {
        ids[i] = ovl_node_tcp_accepted(n, &src, NOW + (uint64_t)i);
        cr_assert_neq(ids[i], 0u);
        k = drain_closes(n, closed, 8);
        cr_assert_eq(k, i < 4 ? 0 : 1, "accept %d", i);
        if (k)
            cr_expect_eq(closed[0], ids[i - 4], "the oldest gives way");
    }
    cr_expect_eq(ovl_node_stats(n)->conns_unauth_closed, 2u);
    ovl_node_timers(n, NOW + 3 * OVL_NS_PER_SEC - 1);
    cr_expect_eq(drain_closes(n, closed, 8), 0);
    ovl_node_timers(n, NOW + 3 * OVL_NS_PER_SEC + 5);
    cr_expect_eq(drain_closes(n, closed, 8), 4, "configured timeout");
    ovl_node_free(n);

    /* A bound connection does not count against the cap. */
    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    c.max_unauth_conns = 2;
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    drain_closes(n, closed, 8);
    bound = ovl_node_tcp_accepted(n, &src, NOW);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_PING;
    m.rid = 9;
    len = tcp_frame(frame, &idb, &m);
    ovl_node_tcp_recv(n, bound, frame, len, NOW);
    drain_closes(n, closed, 8);
    for (int i = 0; i < 3; i++)
        ids[i] = ovl_node_tcp_accepted(n, &src, NOW + 1 + (uint64_t)i);
    cr_assert_eq(drain_closes(n, closed, 8), 1);
    cr_expect_eq(closed[0], ids[0]);
    ovl_node_timers(n, NOW + 60 * OVL_NS_PER_SEC);
    k = drain_closes(n, closed, 8);
    cr_expect_eq(k, 2);
    for (int i = 0; i < k; i++)
        cr_expect_neq(closed[i], bound, "the bound connection stays");
    ovl_node_free(n);
}

/* ---- Per-link request limits --------------------------------------------------------- */

/* Sends @m from @from (UDP) and counts the answers by kind. */
static void ask_count(struct ovl_node *n, const struct ovl_identity *from,
                      struct ovl_msg *m, uint64_t now, int *busy, int *other)
{
    uint8_t frame[36 + OVL_MSG_MAX];
    struct ovl_addr src;
    struct ovl_msg got;
    enum ovl_mdrop why;
    struct ovl_out o;
    int len;

    ovl_addr_v4(&src, 0x0B000009u, 4321);
    memset(frame, 0, 36);
    frame[0] = OVL_PLAIN_TYPE;
    frame[1] = OVL_MSG_VERSION;
    memcpy(frame + 4, from->ed_pk, 32);
    len = ovl_msg_encode(m, frame + 36, OVL_MSG_MAX);
    cr_assert_gt(len, 0);
    ovl_node_udp_recv(n, &src, frame, 36 + (size_t)len, now);
    while (ovl_node_out_next(n, &o)) {
        if (o.kind != OVL_OUT_UDP_SEND || !ovl_addr_eq(&o.addr, &src) ||
            ovl_msg_decode(&got, o.data + 36, o.len - 36, &why) != 0 ||
            got.rid != m->rid)
            continue;
        if (got.type == OVL_M_ERROR && got.u.error.code == OVL_MERR_BUSY)
            (*busy)++;
        else
            (*other)++;
    }
}

/* Each kind of request has its own bucket per link: burst, refill, the
 * configured shape, refusals answered "busy" and counted; DHT members are
 * not limited, other senders' FIND_NODEs are. */
Test(node, rate_limits_per_link)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_msg m;
    int busy = 0, other = 0;
    uint32_t rid = 1;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    c.rate_limits.search.per_s = 2;
    c.rate_limits.search.burst = 3;
    c.rate_limits.dht.per_s = UINT32_MAX; /* unlimited */
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_LOGIN;
    m.rid = rid++;
    ask_count(n, &idb, &m, NOW, &busy, &other);
    cr_assert_eq(other, 1);
    cr_assert_eq(ovl_node_attached(n), 1u);

    /* Searches: 3 at once, then 2 a second. */
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_VALUE;
    m.flags = OVL_MF_SEARCH;
    busy = other = 0;
    for (int i = 0; i < 10; i++) {
        m.rid = rid++;
        memset(m.u.find_value.key, i, 32);
        ask_count(n, &idb, &m, NOW, &busy, &other);
    }
    cr_expect_eq(other, 3);
    cr_expect_eq(busy, 7);
    cr_expect_eq(ovl_node_stats(n)->rate_limited, 7u);
    busy = other = 0;
    for (int i = 0; i < 10; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW + OVL_NS_PER_SEC, &busy, &other);
    }
    cr_expect_eq(other, 2, "refilled at 2/s");
    /* Subscriptions have their own bucket (default burst 40). */
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_SUBSCRIBE;
    m.flags = OVL_MF_SEARCH;
    m.u.subscribe.ttl_s = 60;
    busy = other = 0;
    for (int i = 0; i < 45; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW + OVL_NS_PER_SEC, &busy, &other);
    }
    cr_expect_eq(other, 40, "subscribe: default burst 40");
    /* FIND_NODE: unlimited here as configured for non-members. */
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_NODE;
    busy = other = 0;
    for (int i = 0; i < 100; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW + OVL_NS_PER_SEC, &busy, &other);
    }
    cr_expect_eq(busy, 0);
    ovl_node_free(n);

    /* Defaults: a non-member's FIND_NODEs are limited (burst 40), a
     * member's are not; HOSTCACHE_GET is rare (burst 5). */
    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_NODE;
    busy = other = 0;
    for (int i = 0; i < 50; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW, &busy, &other);
    }
    cr_expect_eq(other, 40);
    cr_expect_eq(busy, 10);
    m.flags = OVL_MF_DHT_MEMBER;
    busy = other = 0;
    for (int i = 0; i < 200; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW, &busy, &other);
    }
    cr_expect_eq(busy, 0, "DHT members are not limited");
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_HOSTCACHE_GET;
    m.u.hostcache_get.max = 4;
    busy = other = 0;
    for (int i = 0; i < 8; i++) {
        m.rid = rid++;
        ask_count(n, &idb, &m, NOW, &busy, &other);
    }
    cr_expect_eq(other, 5);
    cr_expect_eq(busy, 3);
    ovl_node_free(n);
}

/* ---- Room withdrawal, locally ----------------------------------------------------------- */

/* A lone supernode (joined at once) withdraws a room: the withdrawal is
 * published, re-published while an older live record may exist, then
 * forgotten after OVL_ROOM_TTL; a lookup says unknown meanwhile. */
Test(node, room_withdrawal_lifecycle)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr a;
    struct ovl_event ev;
    uint32_t tok;
    uint64_t t;
    int published = 0;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    c.wall_offset = 1704067200ull * OVL_NS_PER_SEC;
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    ovl_addr_v4(&a, 0x0B0000FEu, 33033);
    cr_assert_eq(ovl_node_publish_room(n, "solo", &a, 1, 33033, NULL, NOW), 0);
    cr_assert_eq(ovl_node_withdraw_room(n, "solo", NOW + 1), 0);
    while (ovl_node_event_next(n, &ev))
        published += ev.kind == OVL_NEV_PUBLISHED && ev.status == 0;
    cr_expect_eq(published, 2, "the room, then its withdrawal");
    /* Stored here (the only replica): the lookup answers from the DHT. */
    cr_assert_eq(ovl_node_lookup(n, OVL_R_ROOM, "solo", NOW + 2, &tok), 0);
    ovl_node_timers(n, NOW + 3 * OVL_NS_PER_SEC);
    bool seen = false;
    while (ovl_node_event_next(n, &ev))
        if (ev.kind == OVL_NEV_LOOKUP && ev.token == tok) {
            seen = true;
            cr_expect_eq(ev.state, OVL_PS_UNKNOWN);
            cr_expect_eq(ev.naddr, 0);
            cr_expect_eq(memcmp(ev.owner, ida.ed_pk, 32), 0);
        }
    cr_expect(seen);
    /* Re-published every room_refresh (2 h) until 6 h, then forgotten. */
    published = 0;
    for (t = NOW; t < NOW + 6 * 3600 * OVL_NS_PER_SEC;
         t += 60 * OVL_NS_PER_SEC) {
        ovl_node_timers(n, t);
        while (ovl_node_event_next(n, &ev))
            published += ev.kind == OVL_NEV_PUBLISHED && ev.rtype == OVL_R_ROOM;
    }
    cr_expect_eq(published, 2, "at 2 h and 4 h");
    cr_expect_eq(ovl_node_withdraw_room(n, "solo", t), 0, "still kept");
    t = NOW + 1 + 6 * 3600 * OVL_NS_PER_SEC;
    cr_assert_leq(ovl_node_next_timer(n), t, "housekeeping due to forget it");
    ovl_node_timers(n, t);
    cr_expect_eq(ovl_node_withdraw_room(n, "solo", t), -ENOENT, "forgotten");
    ovl_node_free(n);
}

/* A bridge hosts many rooms: all are kept and counted, withdrawals are not
 * counted, and the hard limit answers -ENOSPC. */
Test(node, many_rooms_counted)
{
    struct ovl_node_config c;
    struct ovl_node *n;
    struct ovl_addr a;
    struct ovl_event ev;
    char name[32];
    int stored = 0;

    config(&c, &ida, OVL_ROLE_MODE_SUPERNODE, true);
    c.wall_offset = 1704067200ull * OVL_NS_PER_SEC;
    cr_assert_eq(ovl_node_new(&n, &c, NOW), 0);
    cr_assert_eq(ovl_node_start(n, NOW), 0);
    ovl_addr_v4(&a, 0x0B0000FEu, 33033);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        cr_assert_eq(ovl_node_publish_room(n, name, &a, 1, 33033, NULL, NOW), 0, "%s", name);
    }
    while (ovl_node_event_next(n, &ev))
        stored += ev.kind == OVL_NEV_PUBLISHED && ev.status == 0 && ev.rtype == OVL_R_ROOM;
    cr_expect_eq(stored, 300, "every room stored (a lone supernode keeps them itself)");
    cr_expect_eq(ovl_node_rooms_published(n), 300);
    cr_assert_eq(ovl_node_withdraw_room(n, "room-7", NOW + 1), 0);
    cr_assert_eq(ovl_node_withdraw_room(n, "room-7", NOW + 2), 0, "twice is fine");
    cr_expect_eq(ovl_node_rooms_published(n), 299, "a withdrawal is not a room");
    cr_assert_eq(ovl_node_publish_room(n, "room-7", &a, 1, 33033, NULL, NOW + 3), 0);
    cr_expect_eq(ovl_node_rooms_published(n), 300, "republished");
    for (int i = 300; i < 4096; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        cr_assert_eq(ovl_node_publish_room(n, name, &a, 1, 33033, NULL, NOW + 4), 0, "%s", name);
        while (ovl_node_event_next(n, &ev))
            ;
    }
    cr_expect_eq(ovl_node_publish_room(n, "one-too-many", &a, 1, 33033, NULL, NOW + 5), -ENOSPC);
    ovl_node_free(n);
}
