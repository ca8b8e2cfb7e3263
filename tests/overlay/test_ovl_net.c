/*
 * test_ovl_net.c: whole overlay networks in the simulator (ovl_sim.h),
 * with real secure sessions unless a case needs to forge traffic:
 * logging in through every NAT type, lookups (online, offline with the
 * last-seen time, unknown, rooms), re-attaching after the supernode dies,
 * buddies and their notifications, the login ladder's failure report,
 * promotion of reachable auto nodes, the login authority, forged and
 * replayed records, and determinism.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ovl_net_util.h"
#include "ovl_record.h"

static void name_of(char *out, uint32_t i)
{
    snprintf(out, 32, "user%u", i);
}

static bool is_supernode(const struct net *n, const uint8_t id[32])
{
    for (uint32_t h = 0; h < n->nsn; h++)
        if (memcmp(ovl_sim_identity(n->sim, h)->ed_pk, id, 32) == 0)
            return true;
    return false;
}

Test(net, login_lookup_logout_crypto, .timeout = 120)
{
    struct net_params p = {.seed = 1, .nsn = 24, .npeer = 100,
                           .nat_mix = true, .loss = 0.01};
    struct net *n = net_new(&p, 40);
    const struct lk_result *r;
    struct ovl_addr room_addr;
    char name[32];
    int slot;

    /* Every peer is in, whatever its NAT (UDP blocked, TCP 443 only ...). */
    cr_assert_eq(net_logged_in(n, n->nsn, n->nsn + n->npeer), n->npeer);
    cr_expect_eq(net_logged_in(n, 0, n->nsn), n->nsn);

    /* Online handles are found with their owner and supernode. */
    for (uint32_t i = 0; i < 30; i++) {
        uint32_t who = (i * 37 + 11) % n->npeer, from = net_peer(n, i);

        name_of(name, who);
        slot = net_lookup(n, from, OVL_R_PRESENCE, name);
        cr_assert_geq(slot, 0);
        r = net_wait(n, from, slot, 20);
        cr_assert(r->done, "lookup %s", name);
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE, "%s: state %d", name,
                     r->ev.state);
        cr_expect_eq(memcmp(r->ev.owner,
                            ovl_sim_identity(n->sim, net_peer(n, who))->ed_pk,
                            32),
                     0);
        cr_expect(is_supernode(n, r->ev.owner_supernode.identity));
        cr_expect_geq(r->ev.naddr, 1);
    }
    /* Unknown stays unknown. */
    slot = net_lookup(n, net_peer(n, 1), OVL_R_PRESENCE, "nobody");
    r = net_wait(n, net_peer(n, 1), slot, 20);
    cr_assert(r->done);
    cr_expect_eq(r->ev.state, OVL_PS_UNKNOWN);

    /* Rooms: one published by a supernode, one by a peer (a bridge). */
    ovl_addr_v4(&room_addr, 0x0B0000FEu, 33033);
    cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, 3), "standup",
                                       &room_addr, 1, 33033, NULL,
                                       ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, 3);
    cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, net_peer(n, 7)),
                                       "retro", &room_addr, 1, 443, NULL,
                                       ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, net_peer(n, 7));
    net_run(n, 10);
    slot = net_lookup(n, net_peer(n, 20), OVL_R_ROOM, "standup");
    r = net_wait(n, net_peer(n, 20), slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    cr_expect_eq(r->ev.rtype, OVL_R_ROOM);
    cr_expect_eq(r->ev.tcp_port, 33033);
    cr_expect(ovl_addr_eq(&r->ev.addrs[0], &room_addr));
    slot = net_lookup(n, 5, OVL_R_ROOM, "retro"); /* from a supernode */
    r = net_wait(n, 5, slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    cr_expect_eq(r->ev.tcp_port, 443);
    slot = net_lookup(n, net_peer(n, 20), OVL_R_PRESENCE, "standup");
    r = net_wait(n, net_peer(n, 20), slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_UNKNOWN, "a room is not a handle");

    /* Logged out: offline, last seen then. Crashed: offline too (its
     * supernode attests). */
    uint64_t t_out = ovl_sim_now(n->sim);
    ovl_sim_logout(n->sim, net_peer(n, 5));
    ovl_sim_crash(n->sim, net_peer(n, 6));
    net_run(n, 15);
    cr_expect_eq(n->log[net_peer(n, 5)].logged_out, 1u);
    cr_expect(!ovl_sim_alive(n->sim, net_peer(n, 5)));
    for (uint32_t who = 5; who <= 6; who++) {
        name_of(name, who);
        slot = net_lookup(n, net_peer(n, 30), OVL_R_PRESENCE, name);
        r = net_wait(n, net_peer(n, 30), slot, 20);
        cr_assert(r->done);
        cr_expect_eq(r->ev.state, OVL_PS_OFFLINE, "%s: state %d", name,
                     r->ev.state);
        cr_expect_geq(r->ev.last_seen, (OVL_SIM_WALL0 + t_out - OVL_SIM_T0) /
                                           NSEC);
        cr_expect_leq(r->ev.last_seen, (OVL_SIM_WALL0 + t_out - OVL_SIM_T0) /
                                               NSEC + 5);
    }
    net_free(n);
}

Test(net, reattach_after_supernode_loss, .timeout = 60)
{
    struct net_params p = {.seed = 2, .nsn = 12, .npeer = 30};
    struct net *n = net_new(&p, 30);
    struct ovl_contact sn, sn2;
    const struct lk_result *r;
    uint32_t peer = net_peer(n, 0), victim = UINT32_MAX;
    int slot;

    cr_assert(ovl_node_supernode(ovl_sim_node(n->sim, peer), &sn));
    for (uint32_t h = 0; h < n->nsn; h++)
        if (memcmp(ovl_sim_identity(n->sim, h)->ed_pk, sn.identity, 32) == 0)
            victim = h;
    cr_assert_neq(victim, UINT32_MAX);
    uint32_t before = n->log[peer].logged_in;
    ovl_sim_crash(n->sim, victim);
    net_run(n, 5);
    cr_expect_eq(n->log[peer].lost, 1u);
    cr_expect_eq(n->log[peer].logged_in, before + 1, "re-attached at once");
    cr_assert(ovl_node_supernode(ovl_sim_node(n->sim, peer), &sn2));
    cr_expect_neq(memcmp(sn.identity, sn2.identity, 32), 0);
    net_run(n, 5);
    /* Others find it at its new supernode. */
    slot = net_lookup(n, net_peer(n, 9), OVL_R_PRESENCE, "user0");
    r = net_wait(n, net_peer(n, 9), slot, 20);
    cr_assert(r->done);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    cr_expect_eq(memcmp(r->ev.owner_supernode.identity, sn2.identity, 32), 0);
    /* Everyone attached to the victim is back. */
    net_run(n, 20);
    cr_expect_eq(net_logged_in(n, n->nsn, n->nsn + n->npeer), n->npeer);
    net_free(n);
}

Test(net, buddies_follow_logout_and_login, .timeout = 60)
{
    struct net_params p = {.seed = 3, .nsn = 12, .npeer = 20};
    struct net *n = net_new(&p, 30);
    uint32_t a = net_peer(n, 0), b = net_peer(n, 4);
    struct host_log *la = &n->log[a];

    /* First resolution: one event per buddy. */
    cr_assert_eq(ovl_node_buddy_add(ovl_sim_node(n->sim, a), "ghost",
                                    ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, a);
    net_run(n, 5);
    cr_expect_eq(la->buddy_events, 1u);
    cr_expect_str_eq(la->last_buddy.name, "ghost");
    cr_expect_eq(la->last_buddy.state, OVL_PS_UNKNOWN);
    la->buddy_events = 0;
    cr_assert_eq(ovl_node_buddy_add(ovl_sim_node(n->sim, a), "user4",
                                    ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, a);
    net_run(n, 5);
    cr_expect_eq(la->buddy_events, 1u, "user4 online");
    cr_expect_str_eq(la->last_buddy.name, "user4");
    cr_expect_eq(la->last_buddy.state, OVL_PS_ONLINE);

    ovl_sim_logout(n->sim, b);
    net_run(n, 10);
    cr_expect_eq(la->buddy_events, 2u);
    cr_expect_eq(la->last_buddy.state, OVL_PS_OFFLINE, "notified of logout");

    cr_assert_eq(ovl_sim_start(n->sim, b), 0);
    net_run(n, 15);
    cr_expect_eq(la->buddy_events, 3u);
    cr_expect_eq(la->last_buddy.state, OVL_PS_ONLINE, "notified of login");

    ovl_sim_crash(n->sim, b);
    net_run(n, 15);
    cr_expect_eq(la->last_buddy.state, OVL_PS_OFFLINE, "notified of crash");
    net_free(n);
}

Test(net, ladder_reports_failure_and_backs_off, .timeout = 30)
{
    struct net_params p = {.seed = 4, .nsn = 4, .npeer = 0};
    struct net *n = net_new(&p, 5);
    struct ovl_contact ghost;
    uint32_t h;

    /* A bootstrap list naming a supernode that does not exist. */
    memset(&ghost, 0, sizeof(ghost));
    memset(ghost.identity, 0x77, 32);
    ovl_node_id(ghost.node_id, ghost.identity);
    ovl_addr_v4(&ghost.udp, 0x0B00FFFFu, 4000);
    ghost.tcp_port = 4000;
    ghost.flags = OVL_CF_TCP443;
    ovl_sim_set_bootstrap(n->sim, &ghost, 1);
    h = net_add(n, OVL_ROLE_MODE_PEER, OVL_NAT_CONE, "lonely", NULL);
    net_run(n, 60);
    cr_expect_eq(n->log[h].logged_in, 0u);
    cr_expect_geq(n->log[h].login_failed, 3u);
    cr_expect_leq(n->log[h].login_failed, 8u, "backoff between rounds");
    cr_expect(strstr(n->log[h].last_reason, "no supernode answered") != NULL,
              "%s", n->log[h].last_reason);
    net_free(n);
}

Test(net, auto_promotion_needs_reachability, .timeout = 60)
{
    struct ovl_node_timing t = {.promote_uptime = 5 * NSEC};
    struct net_params p = {.seed = 5, .nsn = 10, .npeer = 5, .timing = &t};
    struct net *n = net_new(&p, 10);
    uint32_t open, natted;
    const struct lk_result *r;
    int slot;

    open = net_add(n, OVL_ROLE_MODE_AUTO, OVL_NAT_OPEN, "candidate", NULL);
    natted = net_add(n, OVL_ROLE_MODE_AUTO, OVL_NAT_CONE, "behindnat", NULL);
    net_run(n, 40);
    cr_expect_eq(n->log[open].role_changed, 1u);
    cr_expect_eq(ovl_node_role(ovl_sim_node(n->sim, open)), OVL_ROLE_SUPERNODE);
    cr_expect(ovl_node_logged_in(ovl_sim_node(n->sim, open)), "joined");
    cr_expect_eq(n->log[natted].role_changed, 0u);
    cr_expect_eq(ovl_node_role(ovl_sim_node(n->sim, natted)), OVL_ROLE_PEER);
    cr_expect(ovl_node_logged_in(ovl_sim_node(n->sim, natted)));
    /* The new supernode serves: its own handle is found, attached to it. */
    slot = net_lookup(n, net_peer(n, 2), OVL_R_PRESENCE, "candidate");
    r = net_wait(n, net_peer(n, 2), slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    cr_expect_eq(memcmp(r->ev.owner_supernode.identity,
                        ovl_sim_identity(n->sim, open)->ed_pk, 32),
                 0);
    net_free(n);
}

static void make_cert(uint8_t *out, const struct ovl_identity *auth,
                      const char *name, const struct ovl_identity *subject)
{
    struct ovl_cert c = {0};
    uint64_t now = OVL_SIM_WALL0 / NSEC;

    c.kind = OVL_CERT_HANDLE;
    c.name_len = (uint8_t)strlen(name);
    strcpy(c.name, name);
    memcpy(c.subject, subject->ed_pk, 32);
    c.not_before = now - 60;
    c.not_after = now + 86400;
    cr_assert_eq(ovl_cert_sign(out, auth, &c), 0);
}

Test(net, login_authority, .timeout = 60)
{
    struct ovl_identity auth;
    uint8_t seed[32] = {0xA5}, cert[OVL_CERT_LEN];
    struct net_params p = {.seed = 6, .nsn = 10, .npeer = 0};
    struct ovl_sim_node_config c = {0};
    const struct lk_result *r;
    uint32_t good, bare, other;
    struct net *n;
    int slot;

    cr_assert_eq(ovl_identity_from_seed(&auth, seed), 0);
    p.authority = auth.ed_pk;
    n = net_new(&p, 5);
    c.mode = OVL_ROLE_MODE_PEER;
    c.nat = OVL_NAT_CONE;
    c.handle = "alice";
    cr_assert_eq(ovl_sim_add(n->sim, &c, &good), 0);
    c.handle = "bob";
    cr_assert_eq(ovl_sim_add(n->sim, &c, &bare), 0);
    c.handle = "carol";
    cr_assert_eq(ovl_sim_add(n->sim, &c, &other), 0);
    make_cert(cert, &auth, "alice", ovl_sim_identity(n->sim, good));
    ovl_sim_set_cert(n->sim, good, cert);
    /* Carol presents Alice's certificate: bound to another key. */
    make_cert(cert, &auth, "carol", ovl_sim_identity(n->sim, good));
    ovl_sim_set_cert(n->sim, other, cert);
    for (uint32_t h = good; h <= other; h++)
        cr_assert_eq(ovl_sim_start(n->sim, h), 0);
    net_run(n, 30);
    cr_expect(ovl_node_logged_in(ovl_sim_node(n->sim, good)));
    cr_expect(!ovl_node_logged_in(ovl_sim_node(n->sim, bare)),
              "an uncertified handle cannot register");
    cr_expect_geq(n->log[bare].login_failed, 1u);
    cr_expect(!ovl_node_logged_in(ovl_sim_node(n->sim, other)),
              "a certificate for another key does not count");
    cr_expect_geq(n->log[other].login_failed, 1u);
    slot = net_lookup(n, 2, OVL_R_PRESENCE, "alice");
    r = net_wait(n, 2, slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    cr_expect_eq(memcmp(r->ev.owner, ovl_sim_identity(n->sim, good)->ed_pk,
                        32),
                 0);
    slot = net_lookup(n, 2, OVL_R_PRESENCE, "bob");
    r = net_wait(n, 2, slot, 20);
    cr_expect_eq(r->ev.state, OVL_PS_UNKNOWN);
    net_free(n);
}

/* ---- Forged and replayed records (plaintext frames, so the test can
 * speak for an attacker; what is tested is record verification) ---- */

static void inject_store(struct net *n, uint32_t attacker, const uint8_t *rec,
                         size_t len)
{
    uint8_t frame[36 + OVL_MSG_MAX];
    struct ovl_msg m;
    int mlen;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_STORE;
    m.flags = OVL_MF_DHT_MEMBER;
    m.rid = 0x1234567u;
    m.u.store.record = rec;
    m.u.store.record_len = (uint16_t)len;
    memset(frame, 0, 36);
    frame[0] = OVL_PLAIN_TYPE;
    frame[1] = OVL_MSG_VERSION;
    memcpy(frame + 4, ovl_sim_identity(n->sim, attacker)->ed_pk, 32);
    mlen = ovl_msg_encode(&m, frame + 36, OVL_MSG_MAX);
    cr_assert_gt(mlen, 0);
    for (uint32_t h = 0; h < n->nsn; h++)
        ovl_sim_inject_udp(n->sim, attacker, h, frame, 36 + (size_t)mlen);
}

static int presence_for(uint8_t *out, const struct ovl_identity *signer,
                        const char *name, uint64_t seq, uint64_t issued,
                        const struct ovl_contact *sn)
{
    struct ovl_record_params p = {0};

    p.type = OVL_R_PRESENCE;
    p.name = name;
    p.name_len = strlen(name);
    p.seq = seq;
    p.issued = issued;
    p.expires = issued + OVL_PRESENCE_TTL;
    p.supernode = sn;
    return ovl_record_build(out, OVL_RECORD_MAX, &p, signer);
}

Test(net, forged_and_replayed_records_rejected, .timeout = 60)
{
    struct net_params p = {.seed = 7, .nsn = 16, .npeer = 20,
                           .plaintext = true};
    struct net *n = net_new(&p, 30);
    uint32_t mallory = net_add(n, OVL_ROLE_MODE_PEER, OVL_NAT_OPEN, NULL, NULL);
    const struct ovl_identity *m_id = ovl_sim_identity(n->sim, mallory);
    const struct ovl_identity *u3 = ovl_sim_identity(n->sim, net_peer(n, 3));
    const struct ovl_identity *u4 = ovl_sim_identity(n->sim, net_peer(n, 4));
    uint64_t wall = (OVL_SIM_WALL0 + ovl_sim_now(n->sim) - OVL_SIM_T0) / NSEC;
    uint8_t rec[OVL_RECORD_MAX];
    struct ovl_contact fake_sn;
    const struct lk_result *r;
    uint64_t sig0, exp0, refused0 = 0, refused1 = 0;
    int len, slot;

    net_run(n, 5);
    ovl_sim_contact(n->sim, mallory, &fake_sn);
    for (uint32_t h = 0; h < n->nsn; h++)
        refused0 += ovl_node_stats(ovl_sim_node(n->sim, h))->stores_refused;
    sig0 = net_sum_rec_drops(n, OVL_RERR_SIGNATURE);
    exp0 = net_sum_rec_drops(n, OVL_RERR_EXPIRED);

    /* 1. Forged: claims user3's key as owner, signed by Mallory. */
    len = presence_for(rec, m_id, "user3", UINT64_MAX / 2, wall, &fake_sn);
    memcpy(rec + offsetof(struct ovl_recw_head, owner), u3->ed_pk, 32);
    inject_store(n, mallory, rec, (size_t)len);
    /* 2. Hijack: Mallory's own valid record for user3's handle, newer. */
    len = presence_for(rec, m_id, "user3", UINT64_MAX / 2, wall, &fake_sn);
    inject_store(n, mallory, rec, (size_t)len);
    /* 3. Replayed: a genuine, older record of user4 (seq 1). */
    len = presence_for(rec, u4, "user4", 1, wall, &fake_sn);
    inject_store(n, mallory, rec, (size_t)len);
    /* 4. Replayed long after: genuine but expired. */
    len = presence_for(rec, u4, "user4", UINT64_MAX / 2, wall - 2 * 3600,
                       &fake_sn);
    inject_store(n, mallory, rec, (size_t)len);
    net_run(n, 5);

    cr_expect_geq(net_sum_rec_drops(n, OVL_RERR_SIGNATURE) - sig0, n->nsn,
                  "the forgery failed its signature everywhere");
    cr_expect_geq(net_sum_rec_drops(n, OVL_RERR_EXPIRED) - exp0, n->nsn,
                  "the expired replay was refused everywhere");
    for (uint32_t h = 0; h < n->nsn; h++)
        refused1 += ovl_node_stats(ovl_sim_node(n->sim, h))->stores_refused;
    cr_expect_geq(refused1 - refused0, 4u * n->nsn - n->nsn,
                  "refused: %llu", (unsigned long long)(refused1 - refused0));
    /* The genuine records still answer. */
    for (uint32_t who = 3; who <= 4; who++) {
        char name[32];

        name_of(name, who);
        slot = net_lookup(n, net_peer(n, 10), OVL_R_PRESENCE, name);
        r = net_wait(n, net_peer(n, 10), slot, 20);
        cr_assert(r->done);
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
        cr_expect_eq(memcmp(r->ev.owner, who == 3 ? u3->ed_pk : u4->ed_pk, 32),
                     0, "%s: genuine owner", name);
        cr_expect_gt(r->ev.seq, 1u);
        cr_expect_lt(r->ev.seq, UINT64_MAX / 2);
    }
    net_free(n);
}

Test(net, same_seed_same_run, .timeout = 30)
{
    struct net_params p = {.seed = 8, .nsn = 10, .npeer = 20,
                           .nat_mix = true, .plaintext = true, .loss = 0.02};
    struct net *a = net_new(&p, 20), *b = net_new(&p, 20);
    uint8_t ha[20000], hb[20000];
    int la, lb;

    cr_expect_eq(memcmp(ovl_sim_stats(a->sim), ovl_sim_stats(b->sim),
                        sizeof(struct ovl_sim_stats)),
                 0);
    la = ovl_hc_save(ovl_node_hostcache(ovl_sim_node(a->sim, 12)), ha,
                     sizeof(ha));
    lb = ovl_hc_save(ovl_node_hostcache(ovl_sim_node(b->sim, 12)), hb,
                     sizeof(hb));
    cr_assert_gt(la, 0);
    cr_expect_eq(la, lb);
    cr_expect_eq(memcmp(ha, hb, (size_t)la), 0);
    p.seed = 9;
    struct net *c = net_new(&p, 20);
    cr_expect_neq(memcmp(ovl_sim_stats(a->sim), ovl_sim_stats(c->sim),
                         sizeof(struct ovl_sim_stats)),
                  0);
    net_free(a);
    net_free(b);
    net_free(c);
}

/* ---- Abuse and withdrawal --------------------------------------------------------- */

static uint32_t supernode_host(const struct net *n, uint32_t peer)
{
    struct ovl_contact sn;

    cr_assert(ovl_node_supernode(ovl_sim_node(n->sim, peer), &sn));
    for (uint32_t h = 0; h < n->nsn; h++)
        if (memcmp(ovl_sim_identity(n->sim, h)->ed_pk, sn.identity, 32) == 0)
            return h;
    cr_assert_fail("supernode of host %u not found", peer);
    return UINT32_MAX;
}

static uint64_t sum_rate_limited(const struct net *n)
{
    uint64_t k = 0;

    for (uint32_t h = 0; h < ovl_sim_hosts(n->sim); h++)
        if (ovl_sim_node(n->sim, h))
            k += ovl_node_stats(ovl_sim_node(n->sim, h))->rate_limited;
    return k;
}

/* One peer floods its supernode with 2000 searches at once: the
 * supernode refuses what is over the peer's limit (burst 40, 20/s) before
 * doing any work, so the DHT sees a few dozen searches, and the other
 * peers of the same supernode, asking at the same time, all get their
 * answers. Once its bucket has refilled the flooder is served again. */
Test(net, search_flood_is_refused_others_served, .timeout = 120)
{
    struct net_params p = {.seed = 12, .nsn = 10, .npeer = 60};
    struct net *n = net_new(&p, 30);
    uint32_t flooder = net_peer(n, 0), sn = supernode_host(n, flooder);
    struct { uint32_t host; int slot; } q[16];
    const struct ovl_node_stats *st = ovl_node_stats(ovl_sim_node(n->sim, sn));
    uint64_t searches0 = st->searches, limited0 = st->rate_limited;
    uint32_t nq = 0, same_sn = 0, busy;
    char name[32];

    cr_assert_eq(net_logged_in(n, n->nsn, n->nsn + n->npeer), n->npeer);
    for (uint32_t i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "flood%u", i);
        cr_assert_eq(ovl_node_lookup(ovl_sim_node(n->sim, flooder),
                                     OVL_R_PRESENCE, name,
                                     ovl_sim_now(n->sim), NULL),
                     0);
    }
    ovl_sim_touch(n->sim, flooder);
    /* Meanwhile, others ask: up to 8 peers of the same supernode, and 8
     * of other supernodes. */
    for (uint32_t i = 1; i < n->npeer && nq < 16; i++) {
        uint32_t h = net_peer(n, i);
        bool mine = supernode_host(n, h) == sn;

        if (mine ? same_sn == 8 : nq - same_sn == 8)
            continue;
        snprintf(name, sizeof(name), "user%u", (i * 7 + 1) % n->npeer);
        q[nq].host = h;
        q[nq].slot = net_lookup(n, h, OVL_R_PRESENCE, name);
        cr_assert_geq(q[nq].slot, 0);
        same_sn += mine;
        nq++;
    }
    cr_assert_geq(same_sn, 3, "victims share the flooder's supernode");
    net_run(n, 15);
    for (uint32_t i = 0; i < nq; i++) {
        const struct lk_result *r = net_wait(n, q[i].host, q[i].slot, 10);

        cr_assert(r->done, "lookup from host %u answered", q[i].host);
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE, "host %u: state %d",
                     q[i].host, r->ev.state);
    }
    busy = n->log[flooder].lookups_busy;
    fprintf(stderr, "flood: 2000 asked, %u answered, %u refused as busy; "
                    "supernode ran %llu searches, refused %llu; %u others "
                    "(%u on that supernode) asked meanwhile\n",
            n->log[flooder].lookups, busy,
            (unsigned long long)(st->searches - searches0),
            (unsigned long long)(st->rate_limited - limited0), nq, same_sn);
    cr_expect_eq(n->log[flooder].lookups, 2000u, "every lookup answered");
    cr_expect_geq(busy, 1900u, "the flood is refused");
    cr_expect_eq(st->rate_limited - limited0, busy);
    cr_expect_leq(st->searches - searches0, 2000u - busy + nq,
                  "refused searches cost no DHT work");
    /* The bucket refills: the flooder is served again. */
    net_run(n, 3);
    int slot = net_lookup(n, flooder, OVL_R_PRESENCE, "user5");
    const struct lk_result *r = net_wait(n, flooder, slot, 15);
    cr_assert(r->done);
    cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    net_free(n);
}

/* A peer with a long buddy list paces its requests below its supernode's
 * limits: every buddy is resolved at login and nothing is refused. */
Test(net, many_buddies_paced_below_limits, .timeout = 120)
{
    struct net_params p = {.seed = 13, .nsn = 10, .npeer = 130};
    struct net *n = net_new(&p, 30);
    uint32_t a = net_add(n, OVL_ROLE_MODE_PEER, OVL_NAT_CONE, "popular",
                         NULL);
    uint64_t limited0 = sum_rate_limited(n);
    char name[32];

    for (uint32_t i = 0; i < 120; i++) {
        snprintf(name, sizeof(name), "user%u", i);
        cr_assert_eq(ovl_node_buddy_add(ovl_sim_node(n->sim, a), name,
                                        ovl_sim_now(n->sim)),
                     0);
    }
    net_run(n, 40);
    cr_assert(ovl_node_logged_in(ovl_sim_node(n->sim, a)));
    cr_expect_eq(n->log[a].buddy_events, 120u, "every buddy resolved once");
    cr_expect_eq(sum_rate_limited(n) - limited0, 0u, "nothing refused");
    net_free(n);
}

static const struct lk_result *lookup_room(struct net *n, uint32_t from,
                                           const char *room)
{
    int slot = net_lookup(n, from, OVL_R_ROOM, room);

    cr_assert_geq(slot, 0);
    return net_wait(n, from, slot, 20);
}

/* A room is published, found, withdrawn (then unknown everywhere once
 * cached results have aged), and published again under the same name;
 * by a bridge attached as a peer, and by a supernode. */
Test(net, room_withdrawal, .timeout = 120)
{
    struct net_params p = {.seed = 14, .nsn = 12, .npeer = 20};
    struct net *n = net_new(&p, 30);
    uint32_t bridge = net_peer(n, 3), sbridge = 4;
    uint32_t askers[3] = {net_peer(n, 10), net_peer(n, 15), 7};
    struct ovl_addr addr, addr2, unspec;
    const struct lk_result *r;
    uint64_t live_seq;

    ovl_addr_v4(&addr, 0x0B0000FEu, 33033);
    ovl_addr_v4(&addr2, 0x0B0000FDu, 33034);
    ovl_addr_v4(&unspec, 0, 33033);
    cr_expect_eq(ovl_node_publish_room(ovl_sim_node(n->sim, bridge), "hall",
                                       &unspec, 1, 0, NULL,
                                       ovl_sim_now(n->sim)),
                 -EINVAL, "the unspecified address means withdrawn");
    cr_expect_eq(ovl_node_withdraw_room(ovl_sim_node(n->sim, bridge), "hall",
                                        ovl_sim_now(n->sim)),
                 -ENOENT);
    cr_expect_eq(ovl_node_withdraw_room(ovl_sim_node(n->sim, bridge), "a b",
                                        ovl_sim_now(n->sim)),
                 -EINVAL);
    cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, bridge), "hall",
                                       &addr, 1, 33033, NULL,
                                       ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, bridge);
    cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, sbridge), "deck",
                                       &addr, 1, 33033, NULL,
                                       ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, sbridge);
    net_run(n, 5);
    for (int i = 0; i < 3; i++) {
        r = lookup_room(n, askers[i], "hall");
        cr_assert(r->done);
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
        cr_expect_eq(r->ev.tcp_port, 33033);
        r = lookup_room(n, askers[i], "deck");
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
    }
    live_seq = r->ev.seq;

    /* Withdrawn: caches that answered above may say "online" for up to
     * cache_ttl (20 s); after that every lookup says unknown. */
    cr_assert_eq(ovl_node_withdraw_room(ovl_sim_node(n->sim, bridge), "hall",
                                        ovl_sim_now(n->sim)),
                 0);
    cr_expect_eq(ovl_node_withdraw_room(ovl_sim_node(n->sim, bridge), "hall",
                                        ovl_sim_now(n->sim)),
                 0, "withdrawing twice is harmless");
    ovl_sim_touch(n->sim, bridge);
    cr_assert_eq(ovl_node_withdraw_room(ovl_sim_node(n->sim, sbridge),
                                        "deck", ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, sbridge);
    net_run(n, 21);
    for (int i = 0; i < 3; i++) {
        r = lookup_room(n, askers[i], "hall");
        cr_assert(r->done);
        cr_expect_eq(r->ev.state, OVL_PS_UNKNOWN, "host %u: state %d",
                     askers[i], r->ev.state);
        cr_expect_eq(r->ev.status, 0);
        cr_expect_eq(r->ev.naddr, 0);
        cr_expect_eq(memcmp(r->ev.owner,
                            ovl_sim_identity(n->sim, bridge)->ed_pk, 32),
                     0, "the owner said so");
        r = lookup_room(n, askers[i], "deck");
        cr_expect_eq(r->ev.state, OVL_PS_UNKNOWN);
        cr_expect_gt(r->ev.seq, live_seq);
    }

    /* Published again: the newer record wins over the withdrawal. */
    cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, bridge), "hall",
                                       &addr2, 1, 33034, NULL,
                                       ovl_sim_now(n->sim)),
                 0);
    ovl_sim_touch(n->sim, bridge);
    net_run(n, 21);
    for (int i = 0; i < 3; i++) {
        r = lookup_room(n, askers[i], "hall");
        cr_expect_eq(r->ev.state, OVL_PS_ONLINE);
        cr_expect_eq(r->ev.tcp_port, 33034);
        cr_expect(ovl_addr_eq(&r->ev.addrs[0], &addr2));
    }
    net_free(n);
}
