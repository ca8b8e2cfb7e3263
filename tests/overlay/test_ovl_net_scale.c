/*
 * test_ovl_net_scale.c: 200 supernodes and 1000 peers (every NAT type,
 * 1 % UDP loss) in one process. Every peer logs in; every online handle
 * and every room is found by some other peer; unknown handles are
 * unknown; logged-out and crashed peers are offline with a last-seen
 * time. Then a third of the supernodes crash: the peers re-attach and
 * the lookups still succeed. Plaintext frames keep it within the test
 * budget; test_ovl_net.c runs the same scenarios with real sessions at a
 * smaller scale.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovl_net_util.h"

enum { NSN = 200, NPEER = 1000, NROOMS = 10 };

static uint32_t pick_gone(uint32_t i);

struct tally {
    uint32_t asked, done, state[4], wrong_owner;
};

/* Asks, from peer (i * 7 + 3) % NPEER, for handle @pick(i), for i in
 * [0, count); checks owners of online answers against @want_owner. */
static void ask_many(struct net *n, uint32_t count,
                     uint32_t (*pick)(uint32_t), struct tally *t)
{
    struct { uint32_t host; int slot; uint32_t who; } q[NPEER];
    uint32_t nq = 0;
    char name[32];

    memset(t, 0, sizeof(*t));
    for (uint32_t i = 0; i < count; i++) {
        uint32_t from = net_peer(n, (i * 7 + 3) % NPEER), who = pick(i);
        int slot;

        if (!ovl_sim_alive(n->sim, from) ||
            !ovl_node_logged_in(ovl_sim_node(n->sim, from)))
            continue;
        snprintf(name, sizeof(name), "user%u", who);
        slot = net_lookup(n, from, OVL_R_PRESENCE, name);
        if (slot < 0)
            continue;
        q[nq].host = from;
        q[nq].slot = slot;
        q[nq].who = who;
        nq++;
        t->asked++;
    }
    net_run(n, 15);
    for (uint32_t i = 0; i < nq; i++) {
        const struct lk_result *r = net_wait(n, q[i].host, q[i].slot, 10);

        if (!r->done)
            continue;
        if (getenv("OVL_DEBUG") && pick == pick_gone &&
            r->ev.state != OVL_PS_OFFLINE)
            fprintf(stderr, "  user%u (%s, nat %u) state %d\n", q[i].who,
                    q[i].who % 10 ? "crashed" : "logged out", q[i].who % 5,
                    r->ev.state);
        t->done++;
        t->state[r->ev.state]++;
        if (r->ev.state != OVL_PS_UNKNOWN &&
            memcmp(r->ev.owner,
                   ovl_sim_identity(n->sim, net_peer(n, q[i].who))->ed_pk,
                   32) != 0)
            t->wrong_owner++;
    }
}

static uint32_t pick_any(uint32_t i)
{
    return (i * 389 + 17) % NPEER;
}

/* Peers 0, 10, 20 ... log out; 5, 15, 25 ... crash. */
static uint32_t pick_gone(uint32_t i)
{
    return (i % 200) * 5;
}

static uint32_t pick_live(uint32_t i)
{
    uint32_t w = (i * 389 + 17) % NPEER;

    return w % 5 == 0 ? (w + 1) % NPEER : w;
}

Test(scale, two_hundred_supernodes_thousand_peers_with_churn, .timeout = 300)
{
    struct net_params p = {.seed = 42, .nsn = NSN, .npeer = NPEER,
                           .nat_mix = true, .plaintext = true, .loss = 0.01};
    struct net *n = net_new(&p, 60);
    struct tally t;
    struct ovl_addr ra;
    char name[32];

    cr_assert_eq(net_logged_in(n, n->nsn, n->nsn + NPEER), NPEER,
                 "every peer logs in");

    ask_many(n, NPEER, pick_any, &t);
    fprintf(stderr, "online lookups: %u asked, %u answered, %u online, "
                    "%u wrong owner\n",
            t.asked, t.done, t.state[OVL_PS_ONLINE], t.wrong_owner);
    cr_expect_eq(t.asked, NPEER);
    cr_expect_eq(t.state[OVL_PS_ONLINE], t.asked, "every handle found");
    cr_expect_eq(t.wrong_owner, 0u);

    /* Rooms, published by peers acting as bridges. */
    ovl_addr_v4(&ra, 0x0B00FF00u, 33033);
    for (uint32_t i = 0; i < NROOMS; i++) {
        uint32_t h = net_peer(n, i * 97 + 1);

        snprintf(name, sizeof(name), "room%u", i);
        cr_assert_eq(ovl_node_publish_room(ovl_sim_node(n->sim, h), name, &ra,
                                           1, 33033, NULL,
                                           ovl_sim_now(n->sim)),
                     0);
        ovl_sim_touch(n->sim, h);
    }
    net_run(n, 10);
    for (uint32_t i = 0; i < NROOMS; i++) {
        uint32_t from = net_peer(n, i * 13 + 500);
        const struct lk_result *r;
        int slot;

        snprintf(name, sizeof(name), "room%u", i);
        slot = net_lookup(n, from, OVL_R_ROOM, name);
        r = net_wait(n, from, slot, 20);
        cr_expect(r->done && r->ev.state == OVL_PS_ONLINE, "%s", name);
        cr_expect_eq(r->ev.tcp_port, 33033);
    }
    /* Unknown handles. */
    for (uint32_t i = 0; i < 50; i++) {
        uint32_t from = net_peer(n, i * 19 + 2);
        const struct lk_result *r;
        int slot;

        snprintf(name, sizeof(name), "nobody%u", i);
        slot = net_lookup(n, from, OVL_R_PRESENCE, name);
        r = net_wait(n, from, slot, 20);
        cr_expect(r->done && r->ev.state == OVL_PS_UNKNOWN, "%s", name);
    }

    /* 100 log out, 100 crash: offline, last seen. */
    for (uint32_t i = 0; i < NPEER; i += 10) {
        ovl_sim_logout(n->sim, net_peer(n, i));
        ovl_sim_crash(n->sim, net_peer(n, i + 5));
    }
    net_run(n, 30);
    ask_many(n, 200, pick_gone, &t);
    fprintf(stderr, "gone lookups: %u asked, %u offline, %u online, "
                    "%u unknown\n",
            t.asked, t.state[OVL_PS_OFFLINE], t.state[OVL_PS_ONLINE],
            t.state[OVL_PS_UNKNOWN]);
    cr_expect_eq(t.state[OVL_PS_OFFLINE], t.asked);

    /* A third of the supernodes crash. */
    for (uint32_t h = 0; h < NSN; h += 3)
        ovl_sim_crash(n->sim, h);
    net_run(n, 90);
    uint32_t alive = 0, in = 0;
    for (uint32_t i = 0; i < NPEER; i++) {
        uint32_t h = net_peer(n, i);

        if (ovl_sim_alive(n->sim, h)) {
            alive++;
            in += ovl_node_logged_in(ovl_sim_node(n->sim, h));
        }
    }
    for (uint32_t i = 0; getenv("OVL_DEBUG") && i < NPEER; i++) {
        uint32_t h = net_peer(n, i);
        if (ovl_sim_alive(n->sim, h) &&
            !ovl_node_logged_in(ovl_sim_node(n->sim, h)))
            fprintf(stderr, "  user%u nat %u not attached: failed %u lost %u "
                            "%s\n", i, i % 5, n->log[h].login_failed,
                    n->log[h].lost, n->log[h].last_reason);
    }
    fprintf(stderr, "after supernode churn: %u of %u live peers attached\n",
            in, alive);
    cr_expect_eq(in, alive, "every live peer re-attached");
    ask_many(n, NPEER, pick_live, &t);
    fprintf(stderr, "live lookups after churn: %u asked, %u online, "
                    "%u offline, %u unknown, %u unanswered\n",
            t.asked, t.state[OVL_PS_ONLINE], t.state[OVL_PS_OFFLINE],
            t.state[OVL_PS_UNKNOWN], t.asked - t.done);
    cr_expect_geq(t.state[OVL_PS_ONLINE] * 1000u, t.asked * 999u,
                  "at least 99.9 %% of live handles found");
    cr_expect_eq(t.wrong_owner, 0u);
    ask_many(n, 200, pick_gone, &t);
    fprintf(stderr, "gone lookups after churn: %u asked, %u offline, "
                    "%u online, %u unknown\n",
            t.asked, t.state[OVL_PS_OFFLINE], t.state[OVL_PS_ONLINE],
            t.state[OVL_PS_UNKNOWN]);
    cr_expect_geq(t.state[OVL_PS_OFFLINE] * 100u, t.asked * 98u);
    net_free(n);
}
