/*
 * test_ovl_dht.c: the DHT's pure parts (ovl_dht.h): XOR distance and
 * buckets, the routing table (ordering, replacement cache, eviction,
 * closest queries against brute force), the record store (sequence and
 * owner rules, expiry, republish scheduling, limits), the lookup state
 * machine (expanding fan-out, termination, correctness against an ideal
 * network with and without dead nodes) and the results cache.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ovl_dht.h"
#include "ovl_rng.h"

#define NOW_S 1704067200ull
#define SEC 1000000000ull

static struct ovl_rng_seeded rs;
static struct ovl_rng rng = {ovl_rng_seeded_fn, &rs};

static void setup(void)
{
    uint8_t seed[32] = {42};

    cr_assert_geq(sodium_init(), 0);
    ovl_rng_seeded_init(&rs, seed);
}

TestSuite(dht, .init = setup);

/* A contact with a random identity (node id = H(identity)). */
static void rand_contact(struct ovl_contact *c)
{
    memset(c, 0, sizeof(*c));
    ovl_rng_bytes(&rng, c->identity, 32);
    ovl_node_id(c->node_id, c->identity);
    ovl_addr_v4(&c->udp, 0x0A000000u | ovl_rng_uniform(&rng, 1u << 24), 4000);
}

/* A contact whose node id is exactly @id (identity unused). */
static void id_contact(struct ovl_contact *c, const uint8_t id[32])
{
    memset(c, 0, sizeof(*c));
    memcpy(c->node_id, id, 32);
    ovl_addr_v4(&c->udp, 0x0A000001u, 4000);
}

Test(dht, distance_and_buckets)
{
    uint8_t a[32] = {0}, b[32] = {0}, t[32] = {0};

    cr_expect_eq(ovl_id_bucket(a, b), -1);
    b[31] = 1;
    cr_expect_eq(ovl_id_bucket(a, b), 0);
    b[31] = 0x80;
    cr_expect_eq(ovl_id_bucket(a, b), 7);
    b[31] = 0;
    b[0] = 0x80;
    cr_expect_eq(ovl_id_bucket(a, b), 255);
    b[0] = 0x01;
    cr_expect_eq(ovl_id_bucket(a, b), 248);
    /* Distance compares as a big-endian number of the XOR. */
    memset(a, 0, 32);
    memset(b, 0, 32);
    t[0] = 0xF0;
    a[0] = 0xF1; /* d = 0x01.. */
    b[0] = 0xE0; /* d = 0x10.. */
    cr_expect_lt(ovl_id_cmp_dist(t, a, b), 0);
    cr_expect_gt(ovl_id_cmp_dist(t, b, a), 0);
    cr_expect_eq(ovl_id_cmp_dist(t, a, a), 0);
}

Test(dht, bucket_fill_replacement_and_eviction)
{
    uint8_t self[32] = {0}, id[32];
    struct ovl_contact c[12], ping;
    struct ovl_rt rt;

    ovl_rt_init(&rt, self);
    /* Twelve ids in bucket 255 (top bit set). */
    for (int i = 0; i < 12; i++) {
        memset(id, 0, 32);
        id[0] = 0x80;
        id[31] = (uint8_t)i;
        id_contact(&c[i], id);
    }
    for (int i = 0; i < OVL_DHT_K; i++)
        cr_expect_eq(ovl_rt_seen(&rt, &c[i], (uint64_t)i, NULL),
                     OVL_RT_ADDED);
    cr_expect_eq(rt.count, (uint32_t)OVL_DHT_K);
    cr_expect_eq(ovl_rt_seen(&rt, &c[3], 100, NULL), OVL_RT_UPDATED);
    /* Full: the ninth waits, and the least recently seen (c[0]) is to be
     * pinged. */
    cr_expect_eq(ovl_rt_seen(&rt, &c[8], 101, &ping), OVL_RT_PENDING);
    cr_expect_eq(memcmp(ping.node_id, c[0].node_id, 32), 0);
    cr_expect_null(ovl_rt_find(&rt, c[8].node_id));
    /* c[0] fails once: kept; twice: replaced by c[8]. */
    cr_expect(!ovl_rt_failed(&rt, c[0].node_id));
    cr_expect_not_null(ovl_rt_find(&rt, c[0].node_id));
    cr_expect(ovl_rt_failed(&rt, c[0].node_id));
    cr_expect_null(ovl_rt_find(&rt, c[0].node_id));
    cr_expect_not_null(ovl_rt_find(&rt, c[8].node_id));
    cr_expect_eq(rt.count, (uint32_t)OVL_DHT_K);
    /* Hearing from an entry forgives its failures. */
    cr_expect(!ovl_rt_failed(&rt, c[1].node_id));
    ovl_rt_seen(&rt, &c[1], 200, NULL);
    cr_expect_eq(ovl_rt_find(&rt, c[1].node_id)->fails, 0);
    /* Without replacements an entry survives until OVL_RT_FAILS_DROP. */
    for (int i = 0; i < OVL_RT_FAILS_DROP - 1; i++)
        cr_expect(!ovl_rt_failed(&rt, c[2].node_id));
    cr_expect(ovl_rt_failed(&rt, c[2].node_id));
    cr_expect_eq(rt.count, (uint32_t)OVL_DHT_K - 1);
    /* The replacement cache keeps the freshest OVL_RT_REPLACEMENTS. */
    ovl_rt_seen(&rt, &c[9], 300, NULL); /* fills the hole */
    cr_expect_eq(rt.count, (uint32_t)OVL_DHT_K);
    for (int i = 10; i < 12; i++)
        cr_expect_eq(ovl_rt_seen(&rt, &c[i], 300, &ping), OVL_RT_PENDING);
    ovl_rt_remove(&rt, c[4].node_id);
    cr_expect_not_null(ovl_rt_find(&rt, c[11].node_id),
                       "removal promotes the freshest replacement");
    cr_expect_eq(ovl_rt_seen(&rt, &c[0], 1, NULL) == OVL_RT_SELF, false);
    cr_expect_eq(ovl_rt_seen(&rt, &(struct ovl_contact){0}, 1, NULL),
                 OVL_RT_SELF);
    ovl_rt_close(&rt);
}

static const uint8_t *sort_target;
static int cmp_contacts(const void *a, const void *b)
{
    return ovl_id_cmp_dist(sort_target, ((const struct ovl_contact *)a)->node_id,
                           ((const struct ovl_contact *)b)->node_id);
}

Test(dht, closest_matches_brute_force)
{
    enum { N = 3000 };
    static struct ovl_contact all[N], sorted[N], got[20];
    struct ovl_contact self;
    struct ovl_rt rt;
    size_t held = 0;

    rand_contact(&self);
    ovl_rt_init(&rt, self.node_id);
    for (int i = 0; i < N; i++) {
        rand_contact(&all[i]);
        ovl_rt_seen(&rt, &all[i], 1, NULL);
    }
    /* What the table holds, sorted by distance to a random target, must
     * be what ovl_rt_closest returns. */
    for (int trial = 0; trial < 20; trial++) {
        uint8_t target[32];
        size_t n;

        ovl_rng_bytes(&rng, target, 32);
        held = 0;
        for (int i = 0; i < N; i++)
            if (ovl_rt_find(&rt, all[i].node_id))
                sorted[held++] = all[i];
        cr_assert_eq(held, rt.count);
        sort_target = target;
        qsort(sorted, held, sizeof(sorted[0]), cmp_contacts);
        n = ovl_rt_closest(&rt, target, got, 20, 0);
        cr_assert_eq(n, 20u);
        for (size_t i = 0; i < n; i++)
            cr_expect_eq(memcmp(got[i].node_id, sorted[i].node_id, 32), 0,
                         "trial %d rank %zu", trial, i);
    }
    /* log2(3000/8) ~ 8.5 full buckets plus partial ones. */
    cr_expect_gt(rt.count, 60u);
    cr_expect_lt(rt.count, 160u);
    ovl_rt_close(&rt);
}

Test(dht, random_id_in_bucket)
{
    uint8_t self[32], rnd[32], out[32];
    struct ovl_rt rt;

    ovl_rng_bytes(&rng, self, 32);
    ovl_rt_init(&rt, self);
    for (int i = 0; i < OVL_ID_BITS; i++) {
        ovl_rng_bytes(&rng, rnd, 32);
        ovl_rt_random_id(&rt, i, rnd, out);
        cr_expect_eq(ovl_id_bucket(self, out), i);
    }
    ovl_rt_close(&rt);
}

/* ---- Store ------------------------------------------------------------------------ */

static struct ovl_identity owner_a, owner_b;
static struct ovl_contact sn_c;

static int rec(uint8_t *buf, const struct ovl_identity *owner, uint64_t seq,
               uint8_t type, uint64_t issued, uint64_t ttl, const char *name)
{
    struct ovl_record_params p = {0};

    p.type = type;
    p.name = name;
    p.name_len = strlen(name);
    p.seq = seq;
    p.issued = issued;
    p.expires = issued + ttl;
    p.supernode = &sn_c;
    p.last_seen = issued;
    return ovl_record_build(buf, OVL_RECORD_MAX, &p, owner);
}

static void owners(void)
{
    uint8_t s[32];

    memset(s, 0xA1, 32);
    ovl_identity_from_seed(&owner_a, s);
    memset(s, 0xB2, 32);
    ovl_identity_from_seed(&owner_b, s);
    rand_contact(&sn_c);
}

Test(dht, store_sequence_and_owner_rules)
{
    uint8_t b[6][OVL_RECORD_MAX];
    struct ovl_record r[6];
    const struct ovl_store_entry *e;
    struct ovl_store st;

    owners();
    cr_assert_eq(ovl_store_init(&st, 0), 0);
    int len[5];

    len[0] = rec(b[0], &owner_a, 5, OVL_R_PRESENCE, NOW_S, 3600, "alice");
    len[1] = rec(b[1], &owner_a, 6, OVL_R_PRESENCE, NOW_S, 3600, "alice");
    len[2] = rec(b[2], &owner_a, 7, OVL_R_LASTSEEN, NOW_S + 10,
                 OVL_LASTSEEN_KEEP, "alice");
    len[3] = rec(b[3], &owner_b, 8, OVL_R_PRESENCE, NOW_S + 20, 3600,
                 "alice");
    len[4] = rec(b[4], &owner_b, 1, OVL_R_PRESENCE, NOW_S, 3600, "bob");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(ovl_record_verify(&r[i], b[i], (size_t)len[i], NULL,
                                       NOW_S + 30, NULL),
                     0, "record %d", i);
    cr_expect_eq(ovl_store_put(&st, &r[0], true, 1, NOW_S, 100, &e),
                 OVL_PUT_STORED);
    cr_expect_eq(e->seq, 5u);
    cr_expect_eq(ovl_store_put(&st, &r[0], true, 2, NOW_S, 200, &e),
                 OVL_PUT_DUPLICATE, "same version again (republish)");
    cr_expect_eq(e->republish_at, 200u, "a duplicate defers our republish");
    cr_expect_eq(ovl_store_put(&st, &r[1], true, 3, NOW_S, 300, &e),
                 OVL_PUT_STORED);
    cr_expect_eq(ovl_store_put(&st, &r[0], true, 4, NOW_S, 400, &e),
                 OVL_PUT_OLDER, "replayed older seq");
    cr_expect_eq(e->seq, 6u);
    cr_expect_eq(ovl_store_put(&st, &r[2], true, 5, NOW_S, 500, &e),
                 OVL_PUT_STORED, "logout");
    cr_expect_eq(e->type, OVL_R_LASTSEEN);
    cr_expect_eq(ovl_store_put(&st, &r[3], true, 6, NOW_S, 600, &e),
                 OVL_PUT_OWNER, "another owner while live (pinned)");
    cr_expect_eq(ovl_store_put(&st, &r[3], false, 6, NOW_S, 600, &e),
                 OVL_PUT_STORED, "not pinned (authority mode)");
    cr_expect_eq(ovl_store_put(&st, &r[4], true, 7, NOW_S, 700, &e),
                 OVL_PUT_STORED);
    cr_expect_eq(st.count, 2u);
    /* Expiry: bob's presence (1 h) goes, alice's newer one too at +1h20. */
    cr_expect_not_null(ovl_store_get(&st, r[4].key, NOW_S + 3599));
    cr_expect_null(ovl_store_get(&st, r[4].key, NOW_S + 3600));
    cr_expect_eq(st.count, 1u);
    cr_expect_eq(ovl_store_expire(&st, NOW_S + 20 + 3600), 1u);
    cr_expect_eq(st.count, 0u);
    cr_expect_eq(st.bytes, 0u);
    ovl_store_close(&st);
}

static void due_cb(struct ovl_store_entry *e, void *data)
{
    (*(int *)data)++;
    e->republish_at += 1000;
}

Test(dht, store_limits_and_republish_schedule)
{
    uint8_t b[OVL_RECORD_MAX];
    struct ovl_record r;
    struct ovl_store st;
    char name[16];
    int due = 0, len;

    owners();
    cr_assert_eq(ovl_store_init(&st, 300), 0);
    for (int i = 0; i < 301; i++) {
        snprintf(name, sizeof(name), "user%d", i);
        len = rec(b, &owner_a, 1, OVL_R_PRESENCE, NOW_S, 3600, name);
        cr_assert_eq(ovl_record_verify(&r, b, (size_t)len, NULL, NOW_S, NULL),
                     0);
        cr_expect_eq(ovl_store_put(&st, &r, true, 1, NOW_S,
                                   (uint64_t)(i % 2 ? 50 : 5000), NULL),
                     i < 300 ? OVL_PUT_STORED : OVL_PUT_FULL, "%d", i);
    }
    cr_expect_eq(st.count, 300u);
    for (int i = 0; i < 300; i++) {
        uint8_t key[32];
        snprintf(name, sizeof(name), "user%d", i);
        ovl_record_key(key, OVL_R_PRESENCE, name, strlen(name));
        cr_expect_not_null(ovl_store_get(&st, key, NOW_S), "%d", i);
    }
    ovl_store_each_due(&st, 100, due_cb, &due);
    cr_expect_eq(due, 150);
    due = 0;
    ovl_store_each_due(&st, 100, due_cb, &due);
    cr_expect_eq(due, 0, "rescheduled");
    ovl_store_close(&st);
}

/* ---- Lookup against an ideal network --------------------------------------------- */

enum { NET = 2000 };
static struct ovl_contact net[NET];
static bool dead[NET];

/* What node @i answers: its K closest to @target among all live nodes
 * (an ideal routing table; dead ones included, as tables lag). */
static size_t ideal_answer(int i, const uint8_t target[32],
                           struct ovl_contact *out)
{
    static struct ovl_contact tmp[NET];
    size_t n = 0;

    for (int j = 0; j < NET; j++)
        if (j != i)
            tmp[n++] = net[j];
    sort_target = target;
    qsort(tmp, n, sizeof(tmp[0]), cmp_contacts);
    memcpy(out, tmp, OVL_DHT_K * sizeof(*out));
    return OVL_DHT_K;
}

static int net_index(const uint8_t id[32])
{
    for (int i = 0; i < NET; i++)
        if (memcmp(net[i].node_id, id, 32) == 0)
            return i;
    return -1;
}

/* Runs a lookup for @target from node 0, knowing @seed_n random nodes.
 * Nodes among the K closest to target "hold" the value (VALUE kind).
 * Returns rounds; fills *found. */
static int run_lookup(enum ovl_lookup_kind kind, const uint8_t target[32],
                      bool holders_exist, size_t seed_n, bool *found,
                      struct ovl_lookup *l, uint16_t *round_sizes)
{
    struct ovl_contact ask[OVL_LOOKUP_FANOUT_MAX], ans[OVL_DHT_K];
    static struct ovl_contact sorted[NET];
    bool holder[NET] = {false};
    size_t n;

    memcpy(sorted, net, sizeof(net));
    sort_target = target;
    qsort(sorted, NET, sizeof(sorted[0]), cmp_contacts);
    if (holders_exist)
        for (int i = 0; i < OVL_DHT_K; i++)
            holder[net_index(sorted[i].node_id)] = true;

    ovl_lookup_init(l, kind, target, net[0].node_id);
    for (size_t i = 0; i < seed_n; i++)
        ovl_lookup_add(l, &net[1 + ovl_rng_uniform(&rng, NET - 1)]);
    while ((n = ovl_lookup_next(l, 0, ask, OVL_LOOKUP_FANOUT_MAX)) > 0) {
        if (round_sizes)
            round_sizes[l->rounds - 1] = (uint16_t)n;
        for (size_t q = 0; q < n; q++) {
            int j = net_index(ask[q].node_id);

            if (dead[j]) {
                ovl_lookup_failed(l, ask[q].node_id);
                continue;
            }
            if (kind == OVL_LOOKUP_VALUE && holder[j]) {
                struct ovl_record r = {0};
                static uint8_t raw[200] = {1};
                r.raw = raw;
                r.raw_len = sizeof(raw);
                r.seq = 1;
                ovl_lookup_value(l, ask[q].node_id, &r, 0);
                continue;
            }
            ideal_answer(j, target, ans);
            for (int a = 0; a < OVL_DHT_K; a++)
                ovl_lookup_add(l, &ans[a]);
            ovl_lookup_answered(l, ask[q].node_id);
        }
    }
    *found = l->found;
    return l->rounds;
}

Test(dht, lookup_fanout_doubles_and_terminates, .timeout = 60)
{
    static struct ovl_lookup l;
    uint16_t sizes[OVL_LOOKUP_ROUNDS_MAX] = {0};
    uint8_t target[32];
    bool found;

    for (int i = 0; i < NET; i++)
        rand_contact(&net[i]);
    memset(dead, 0, sizeof(dead));
    /* Unknown key, every node alive: rounds grow 8, 16, 32 ... and stop
     * once the K closest answered. */
    ovl_rng_bytes(&rng, target, 32);
    int rounds = run_lookup(OVL_LOOKUP_VALUE, target, false, 200, &found, &l,
                            sizes);
    cr_expect(!found);
    cr_expect(l.done);
    cr_expect_geq(rounds, 2);
    cr_expect_leq(rounds, 5);
    cr_expect_eq(sizes[0], 8);
    if (rounds > 1)
        cr_expect_leq(sizes[1], 16);
    /* The nodes lookup returns the true K closest. */
    struct ovl_contact got[OVL_DHT_K];
    static struct ovl_contact sorted[NET];
    memcpy(sorted, net, sizeof(net));
    sort_target = target;
    qsort(sorted, NET, sizeof(sorted[0]), cmp_contacts);
    run_lookup(OVL_LOOKUP_NODES, target, false, 200, &found, &l, NULL);
    cr_assert_eq(ovl_lookup_closest(&l, got, OVL_DHT_K), (size_t)OVL_DHT_K);
    for (int i = 0, s = 0; i < OVL_DHT_K; i++, s++) {
        if (memcmp(sorted[s].node_id, net[0].node_id, 32) == 0)
            s++; /* the searcher itself is never a candidate */
        cr_expect_eq(memcmp(got[i].node_id, sorted[s].node_id, 32), 0,
                     "rank %d", i);
    }
}

Test(dht, lookup_finds_values_despite_dead_nodes, .timeout = 60)
{
    static struct ovl_lookup l;
    int found_n = 0, rounds_sum = 0;
    bool found;

    for (int i = 0; i < NET; i++) {
        rand_contact(&net[i]);
        dead[i] = i > 0 && ovl_rng_uniform(&rng, 100) < 30; /* 30 % gone */
    }
    for (int trial = 0; trial < 100; trial++) {
        uint8_t target[32];

        ovl_rng_bytes(&rng, target, 32);
        rounds_sum += run_lookup(OVL_LOOKUP_VALUE, target, true, 100, &found,
                                 &l, NULL);
        found_n += found;
    }
    /* A value is lost only if all 8 holders are dead: 0.3^8. */
    cr_expect_eq(found_n, 100);
    cr_expect_leq(rounds_sum, 100 * 4, "average rounds %.2f",
                  rounds_sum / 100.0);
}

Test(dht, lookup_candidate_list_bounded)
{
    static struct ovl_lookup l;
    struct ovl_contact c, ask[8];
    uint8_t target[32] = {0};

    ovl_rng_bytes(&rng, target, 32);
    ovl_lookup_init(&l, OVL_LOOKUP_NODES, target, target);
    for (int i = 0; i < 1000; i++) {
        rand_contact(&c);
        ovl_lookup_add(&l, &c);
    }
    cr_expect_eq(l.ncand, OVL_LOOKUP_CANDS);
    for (int i = 1; i < l.ncand; i++)
        cr_expect_lt(ovl_id_cmp_dist(target, l.cand[i - 1].c.node_id,
                                     l.cand[i].c.node_id),
                     0);
    /* Self is never a candidate. */
    id_contact(&c, target);
    ovl_lookup_add(&l, &c);
    cr_expect_neq(memcmp(l.cand[0].c.node_id, target, 32), 0);
    /* A round in flight: next() does nothing; unknown answers ignored. */
    cr_expect_eq(ovl_lookup_next(&l, 0, ask, 8), 8u);
    cr_expect_eq(ovl_lookup_next(&l, 0, ask, 8), 0u);
    cr_expect(!l.done);
    ovl_lookup_answered(&l, c.node_id);
    cr_expect_eq(l.inflight, 8);
    for (int i = 0; i < 8; i++)
        ovl_lookup_failed(&l, ask[i].node_id);
    cr_expect_eq(l.inflight, 0);
    cr_expect_eq(ovl_lookup_next(&l, 0, ask, 8), 8u, "second round");
}

/* ---- Cache ---------------------------------------------------------------------------- */

Test(dht, cache_rules)
{
    uint8_t b5[OVL_RECORD_MAX], b6[OVL_RECORD_MAX];
    struct ovl_record r5, r6;
    struct ovl_cache c;
    const struct ovl_cache_entry *e;
    int l5, l6;

    owners();
    l5 = rec(b5, &owner_a, 5, OVL_R_PRESENCE, NOW_S, 3600, "alice");
    l6 = rec(b6, &owner_a, 6, OVL_R_PRESENCE, NOW_S, 3600, "alice");
    cr_assert_eq(ovl_record_parse(&r5, b5, (size_t)l5), 0);
    cr_assert_eq(ovl_record_parse(&r6, b6, (size_t)l6), 0);
    cr_assert_eq(ovl_cache_init(&c, 64, 60 * SEC, 10 * SEC), 0);
    cr_expect_null(ovl_cache_get(&c, r5.key, 0, NOW_S));
    ovl_cache_put(&c, r5.key, &r5, 0);
    e = ovl_cache_get(&c, r5.key, 59 * SEC, NOW_S);
    cr_assert_not_null(e);
    cr_expect_eq(e->seq, 5u);
    cr_expect_null(ovl_cache_get(&c, r5.key, 60 * SEC, NOW_S), "ttl");
    /* Newer versions replace; older never do. */
    ovl_cache_put(&c, r6.key, &r6, 0);
    ovl_cache_put(&c, r5.key, &r5, 1);
    cr_expect_eq(ovl_cache_get(&c, r5.key, 2, NOW_S)->seq, 6u);
    /* Seeing seq 7 elsewhere invalidates seq 6. */
    ovl_cache_saw_seq(&c, r6.key, 6);
    cr_expect_not_null(ovl_cache_get(&c, r6.key, 3, NOW_S));
    ovl_cache_saw_seq(&c, r6.key, 7);
    cr_expect_null(ovl_cache_get(&c, r6.key, 4, NOW_S));
    cr_expect_eq(c.invalidations, 1u);
    /* Negative entries: shorter TTL, dropped by any version. */
    ovl_cache_put(&c, r5.key, NULL, 0);
    e = ovl_cache_get(&c, r5.key, 9 * SEC, NOW_S);
    cr_assert_not_null(e);
    cr_expect_eq(e->len, 0);
    cr_expect_null(ovl_cache_get(&c, r5.key, 10 * SEC, NOW_S));
    ovl_cache_put(&c, r5.key, NULL, 0);
    ovl_cache_saw_seq(&c, r5.key, 1);
    cr_expect_null(ovl_cache_get(&c, r5.key, 1, NOW_S));
    /* An expired record is not served. */
    ovl_cache_put(&c, r5.key, &r5, 0);
    cr_expect_null(ovl_cache_get(&c, r5.key, 1, NOW_S + 3600));
    /* Many keys: bounded, no crash. */
    for (int i = 0; i < 1000; i++) {
        uint8_t key[32];
        ovl_rng_bytes(&rng, key, 32);
        ovl_cache_put(&c, key, NULL, (uint64_t)i);
    }
    ovl_cache_close(&c);
}
