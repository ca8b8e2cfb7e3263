/*
 * test_ovl_nat.c: the NAT classifier (ovl_nat) driven through a scripted
 * world: a NAT model (mapping and filtering behaviour, RFC 4787 terms) in
 * front of the client, and an RFC 5780 server made of ovl_stun's own server
 * function on two IPs and two ports, plus an optional second plain server.
 * Simulated time; every datagram takes 20 ms each way.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ovl_nat.h"
#include "ovl_stun.h"

enum map_model { MAP_NONE, MAP_EI, MAP_DEPENDENT };
enum filter_model { FILT_EI, FILT_ADDR, FILT_ADDR_PORT };

enum { HOP_MS = 20, MAX_Q = 32, MAX_LOG = 128,
       PERM_TIMEOUT_MS = 30000 /* Linux conntrack's UDP default */ };

struct sim {
    struct ovl_nat nat;
    struct ovl_nat_config cfg;
    uint64_t now;

    /* The world. */
    enum map_model map;
    enum filter_model filter;
    bool block_udp;           /* the NAT drops all outbound UDP */
    bool rfc5780;             /* the server has the second IP and port */
    bool ignore_change;       /* a broken server: answers CHANGE-REQUEST
                                 from the address it was sent to */
    bool change_420;          /* advertises OTHER-ADDRESS, yet answers
                                 changes with 420 */
    bool second_server;       /* a plain server at 203.0.113.77:3478 */
    int drop_first;           /* lose this many client requests */
    struct ovl_stun_addr local, ext_ip, second;
    struct ovl_stun_server srv, plain;

    /* NAT state. */
    struct { struct ovl_stun_addr dst; uint16_t port; } maps[16];
    int nmaps;
    struct { uint16_t port; struct ovl_stun_addr remote; uint64_t used; } perm[64];
    int nperm;

    /* Datagrams on their way to the client. */
    struct { uint64_t at; uint8_t buf[OVL_STUN_RESP_MAX]; size_t len;
             struct ovl_stun_addr src; } q[MAX_Q];
    int nq;

    /* What the client sent, and when. */
    struct { uint64_t at; struct ovl_stun_addr dst; uint32_t change; } log[MAX_LOG];
    int nlog;
    int events;               /* OR of all event bits seen */
    int done_count;
};

static struct ovl_stun_addr A(const char *text)
{
    struct ovl_stun_addr a;

    cr_assert_eq(ovl_stun_addr_parse(&a, text), 0, "%s", text);
    return a;
}

static const char *fmt(const struct ovl_stun_addr *a)
{
    static char buf[4][OVL_STUN_ADDR_TEXT_MAX];
    static int i;

    i = (i + 1) % 4;
    return ovl_stun_addr_format(buf[i], sizeof(buf[i]), a);
}

static void sim_init(struct sim *s, enum map_model map, enum filter_model filter)
{
    memset(s, 0, sizeof(*s));
    s->map = map;
    s->filter = filter;
    s->rfc5780 = true;
    s->ext_ip = A("198.51.100.1:0");
    s->local = map == MAP_NONE ? A("198.51.100.50:5000") : A("10.0.1.2:5000");
    s->second = A("203.0.113.77:3478");
    s->srv.mapped_address = true;
    s->srv.ip[0] = A("203.0.113.1:0");
    s->srv.ip[1] = A("203.0.113.2:0");
    s->srv.port[0] = 3478;
    s->srv.port[1] = 3479;
    s->plain.mapped_address = true;
    s->cfg.server = A("203.0.113.1:3478");
    s->cfg.local = s->local;
    s->now = 1000;
}

/* Applies the options and starts the classifier. */
static void sim_start(struct sim *s)
{
    s->srv.rfc5780 = s->rfc5780;
    if (s->second_server)
        s->cfg.second = s->second;
    ovl_nat_init(&s->nat, &s->cfg);
    ovl_nat_start(&s->nat, s->now);
}

/* NAT outbound: the external port for a datagram from local to @dst. */
static uint16_t nat_out(struct sim *s, const struct ovl_stun_addr *dst)
{
    uint16_t port = s->local.port;

    if (s->map != MAP_NONE) {
        int i;

        for (i = 0; i < s->nmaps; i++)
            if (s->map == MAP_EI || ovl_stun_addr_eq(&s->maps[i].dst, dst))
                break;
        if (i == s->nmaps) {
            cr_assert_lt(s->nmaps, 16);
            s->maps[i].dst = *dst;
            s->maps[i].port = (uint16_t)(40000 + 7 * i);
            s->nmaps++;
        }
        port = s->maps[i].port;
    }
    for (int i = 0; i < s->nperm; i++) {
        if (s->perm[i].port == port && ovl_stun_addr_eq(&s->perm[i].remote, dst)) {
            s->perm[i].used = s->now;
            return port;
        }
    }
    cr_assert_lt(s->nperm, 64);
    s->perm[s->nperm].port = port;
    s->perm[s->nperm].remote = *dst;
    s->perm[s->nperm].used = s->now;
    s->nperm++;
    return port;
}

/* NAT inbound filter: may @from reach external port @port? */
static bool nat_in(const struct sim *s, uint16_t port, const struct ovl_stun_addr *from)
{
    if (s->filter == FILT_EI)
        return true;
    for (int i = 0; i < s->nperm; i++) {
        if (s->perm[i].port != port || s->now - s->perm[i].used > PERM_TIMEOUT_MS)
            continue;
        if (s->filter == FILT_ADDR ? ovl_stun_addr_ip_eq(&s->perm[i].remote, from)
                                   : ovl_stun_addr_eq(&s->perm[i].remote, from))
            return true;
    }
    return false;
}

/* Which server listens on @dst, as the server function needs it. */
static const struct ovl_stun_server *server_at(struct sim *s, const struct ovl_stun_addr *dst)
{
    if (s->second_server && ovl_stun_addr_eq(dst, &s->second))
        return &s->plain;
    for (unsigned i = 0; i < (s->rfc5780 ? 2u : 1u); i++)
        for (unsigned j = 0; j < (s->rfc5780 ? 2u : 1u); j++)
            if (ovl_stun_addr_ip_eq(dst, &s->srv.ip[i]) && dst->port == s->srv.port[j])
                return &s->srv;
    return NULL;
}

/* One datagram from the client to @dst: through the NAT, the server, and
 * the NAT again. */
static void sim_send(struct sim *s, const uint8_t *buf, size_t len, const struct ovl_stun_addr *dst)
{
    const struct ovl_stun_server *srv = server_at(s, dst);
    struct ovl_stun_server plain_twin;
    struct ovl_stun_addr ext;
    struct ovl_stun_reply reply;
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;
    uint8_t out[OVL_STUN_RESP_MAX];
    uint16_t port;

    cr_assert_eq(ovl_stun_parse(&m, buf, len, &drop), 0, "client sent garbage");
    cr_assert(m.has_fingerprint, "client requests carry FINGERPRINT");
    cr_assert_lt(s->nlog, MAX_LOG);
    s->log[s->nlog].at = s->now;
    s->log[s->nlog].dst = *dst;
    s->log[s->nlog].change = m.has_change_request ? m.change_flags : 0;
    s->nlog++;
    if (s->drop_first > 0) {
        s->drop_first--;
        return;
    }
    if (s->block_udp || srv == NULL)
        return;
    port = nat_out(s, dst);
    ext = s->map == MAP_NONE ? s->local : s->ext_ip;
    ext.port = port;
    if (s->change_420 && m.has_change_request && srv == &s->srv) {
        plain_twin = s->srv;
        plain_twin.rfc5780 = false;
        srv = &plain_twin;
    }
    if (ovl_stun_server_handle(srv, buf, len, &ext, dst, out, sizeof(out), &reply, &drop) != 0)
        return;
    if (srv != &s->srv || !s->rfc5780 || s->ignore_change)
        reply.from = *dst;
    if (!nat_in(s, port, &reply.from))
        return;
    cr_assert_lt(s->nq, MAX_Q);
    s->q[s->nq].at = s->now + 2 * HOP_MS;
    memcpy(s->q[s->nq].buf, out, reply.len);
    s->q[s->nq].len = reply.len;
    s->q[s->nq].src = reply.from;
    s->nq++;
}

static void drain(struct sim *s)
{
    uint8_t buf[OVL_STUN_REQ_MAX];
    struct ovl_stun_addr dst;
    size_t len;
    int rc;

    while ((rc = ovl_nat_next_datagram(&s->nat, s->now, buf, sizeof(buf), &len, &dst)) == 1)
        sim_send(s, buf, len, &dst);
    cr_assert_eq(rc, 0);
}

/* Runs until a run completes (or @limit_ms of simulated time passes).
 * Returns true if a run completed. */
static bool sim_run(struct sim *s, uint64_t limit_ms)
{
    uint64_t end = s->now + limit_ms;
    int done_before = s->done_count;

    for (;;) {
        uint64_t t;
        int ev = 0;

        drain(s);
        if (s->done_count > done_before)
            return true;
        t = ovl_nat_next_timer(&s->nat);
        for (int i = 0; i < s->nq; i++)
            if (s->q[i].at < t)
                t = s->q[i].at;
        if (t == UINT64_MAX || t > end)
            return false;
        if (t > s->now)
            s->now = t;
        for (int i = 0; i < s->nq;) {
            if (s->q[i].at <= s->now) {
                int rc = ovl_nat_recv(&s->nat, s->q[i].buf, s->q[i].len, &s->q[i].src, s->now);

                if (rc > 0)
                    ev |= rc;
                s->q[i] = s->q[--s->nq];
            } else {
                i++;
            }
        }
        if (ovl_nat_next_timer(&s->nat) <= s->now)
            ev |= ovl_nat_timeout(&s->nat, s->now);
        s->events |= ev;
        if (ev & OVL_NAT_EV_DONE)
            s->done_count++;
    }
}

static const struct ovl_nat_result *classify(struct sim *s)
{
    sim_start(s);
    cr_assert(ovl_nat_running(&s->nat));
    cr_assert(sim_run(s, 200000), "no result within 200 s");
    cr_assert(!ovl_nat_running(&s->nat));
    return ovl_nat_result(&s->nat);
}

/* ---- every type ---------------------------------------------------------- */

struct type_case {
    const char *name;
    enum map_model map;
    enum filter_model filter;
    enum ovl_nat_type want;
    enum ovl_nat_mapping want_map;
    enum ovl_nat_filtering want_filter;
};

Test(nat, every_type_with_rfc5780_server)
{
    static const struct type_case cases[] = {
        {"open", MAP_NONE, FILT_EI, OVL_NAT_OPEN, OVL_NAT_MAP_NONE, OVL_NAT_FILTER_INDEPENDENT},
        {"firewall (port)", MAP_NONE, FILT_ADDR_PORT, OVL_NAT_FIREWALLED, OVL_NAT_MAP_NONE,
         OVL_NAT_FILTER_ADDRESS_PORT},
        {"firewall (addr)", MAP_NONE, FILT_ADDR, OVL_NAT_FIREWALLED, OVL_NAT_MAP_NONE,
         OVL_NAT_FILTER_ADDRESS},
        {"full cone", MAP_EI, FILT_EI, OVL_NAT_FULL_CONE, OVL_NAT_MAP_INDEPENDENT,
         OVL_NAT_FILTER_INDEPENDENT},
        {"restricted", MAP_EI, FILT_ADDR, OVL_NAT_RESTRICTED, OVL_NAT_MAP_INDEPENDENT,
         OVL_NAT_FILTER_ADDRESS},
        {"port restricted", MAP_EI, FILT_ADDR_PORT, OVL_NAT_PORT_RESTRICTED,
         OVL_NAT_MAP_INDEPENDENT, OVL_NAT_FILTER_ADDRESS_PORT},
        {"symmetric", MAP_DEPENDENT, FILT_ADDR_PORT, OVL_NAT_SYMMETRIC, OVL_NAT_MAP_DEPENDENT,
         OVL_NAT_FILTER_ADDRESS_PORT},
        {"symmetric, open filter", MAP_DEPENDENT, FILT_EI, OVL_NAT_SYMMETRIC,
         OVL_NAT_MAP_DEPENDENT, OVL_NAT_FILTER_INDEPENDENT},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sim s;
        const struct ovl_nat_result *r;

        sim_init(&s, cases[i].map, cases[i].filter);
        s.cfg.rto_ms = 100;
        s.cfg.rc = 3;
        s.cfg.rm = 4;
        r = classify(&s);
        cr_expect_eq(r->type, cases[i].want, "%s: got %s", cases[i].name,
                     ovl_nat_type_name(r->type));
        cr_expect_eq(r->mapping, cases[i].want_map, "%s: mapping %s", cases[i].name,
                     ovl_nat_mapping_name(r->mapping));
        cr_expect_eq(r->filtering, cases[i].want_filter, "%s: filtering %s", cases[i].name,
                     ovl_nat_filtering_name(r->filtering));
        cr_expect_eq(r->runs, 1u);
        cr_expect(s.events & OVL_NAT_EV_CHANGED);
        if (cases[i].map == MAP_NONE) {
            cr_expect(ovl_stun_addr_eq(&r->reflexive, &s.local), "%s", fmt(&r->reflexive));
        } else {
            struct ovl_stun_addr want = s.ext_ip;

            want.port = 40000;
            cr_expect(ovl_stun_addr_eq(&r->reflexive, &want), "%s: reflexive %s",
                      cases[i].name, fmt(&r->reflexive));
        }
        {
            struct ovl_stun_addr other = A("203.0.113.2:3479");

            cr_expect(ovl_stun_addr_eq(&r->other, &other), "%s: other %s", cases[i].name,
                      fmt(&r->other));
        }
    }
}

Test(nat, udp_blocked_follows_rfc8489_backoff)
{
    /* Defaults: RTO 500 ms, Rc 7, Rm 16: requests at 0, 0.5, 1.5, 3.5,
     * 7.5, 15.5, 31.5 s, give up at 39.5 s. */
    static const uint64_t want[] = {0, 500, 1500, 3500, 7500, 15500, 31500};
    struct sim s;
    const struct ovl_nat_result *r;
    uint64_t t0;

    sim_init(&s, MAP_EI, FILT_ADDR_PORT);
    s.block_udp = true;
    t0 = s.now;
    r = classify(&s);
    cr_expect_eq(r->type, OVL_NAT_UDP_BLOCKED, "got %s", ovl_nat_type_name(r->type));
    cr_expect_eq(r->reflexive.family, OVL_STUN_FAMILY_NONE);
    cr_assert_eq(s.nlog, 7);
    for (int i = 0; i < 7; i++)
        cr_expect_eq(s.log[i].at - t0, want[i], "request %d at %llu", i,
                     (unsigned long long)(s.log[i].at - t0));
    cr_expect_eq(r->completed_ms - t0, 39500u);
}

Test(nat, every_request_is_a_fresh_transaction_retransmitted_as_is)
{
    struct sim s;
    uint8_t a[OVL_STUN_REQ_MAX], b[OVL_STUN_REQ_MAX];
    size_t la, lb;
    struct ovl_stun_addr dst;

    sim_init(&s, MAP_EI, FILT_EI);
    s.cfg.rto_ms = 100;
    sim_start(&s);
    cr_assert_eq(ovl_nat_next_datagram(&s.nat, s.now, a, sizeof(a), &la, &dst), 1);
    cr_expect(ovl_stun_addr_eq(&dst, &s.cfg.server));
    cr_expect_eq(ovl_nat_next_datagram(&s.nat, s.now, b, sizeof(b), &lb, &dst), 0,
                 "nothing more due");
    cr_expect_eq(ovl_nat_next_timer(&s.nat), s.now + 100);
    cr_expect_eq(ovl_nat_timeout(&s.nat, s.now + 99), 0);
    cr_expect_eq(ovl_nat_next_datagram(&s.nat, s.now + 99, b, sizeof(b), &lb, &dst), 0);
    ovl_nat_timeout(&s.nat, s.now + 100);
    cr_assert_eq(ovl_nat_next_datagram(&s.nat, s.now + 100, b, sizeof(b), &lb, &dst), 1);
    cr_expect_eq(la, lb);
    cr_expect_eq(memcmp(a, b, la), 0, "a retransmission is byte-identical");
    cr_expect_eq(ovl_nat_next_timer(&s.nat), s.now + 100 + 200, "RTO doubled");
    cr_expect_eq(ovl_nat_next_datagram(&s.nat, s.now, b, 10, &lb, &dst), 0);
}

Test(nat, lost_requests_are_retransmitted)
{
    struct sim s;
    const struct ovl_nat_result *r;

    sim_init(&s, MAP_EI, FILT_ADDR);
    s.cfg.rto_ms = 100;
    s.drop_first = 2;
    r = classify(&s);
    cr_expect_eq(r->type, OVL_NAT_RESTRICTED, "got %s", ovl_nat_type_name(r->type));
    cr_expect(s.nlog >= 3);
    cr_expect(ovl_stun_addr_eq(&s.log[2].dst, &s.cfg.server));
    cr_expect_eq(s.log[2].at - s.log[0].at, 300u, "100 + 200 ms");
}

/* ---- servers that cannot do it all --------------------------------------- */

Test(nat, single_address_server_and_second_server)
{
    const struct {
        enum map_model map;
        bool second;
        enum ovl_nat_type want;
    } cases[] = {
        {MAP_EI, false, OVL_NAT_UNKNOWN},        /* nothing to compare with */
        {MAP_EI, true, OVL_NAT_CONE},            /* same mapping, filtering unknown */
        {MAP_DEPENDENT, true, OVL_NAT_SYMMETRIC},
        {MAP_NONE, false, OVL_NAT_OPEN},         /* filtering unknown */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sim s;
        const struct ovl_nat_result *r;

        sim_init(&s, cases[i].map, FILT_ADDR_PORT);
        s.rfc5780 = false;
        s.second_server = cases[i].second;
        s.cfg.rto_ms = 100;
        r = classify(&s);
        cr_expect_eq(r->type, cases[i].want, "case %zu: got %s", i, ovl_nat_type_name(r->type));
        cr_expect_eq(r->filtering, OVL_NAT_FILTER_UNKNOWN);
        cr_expect_neq(r->reflexive.family, OVL_STUN_FAMILY_NONE);
        /* No CHANGE-REQUEST was ever sent to a server without OTHER-ADDRESS. */
        for (int k = 0; k < s.nlog; k++)
            cr_expect_eq(s.log[k].change, 0u, "case %zu", i);
    }
}

Test(nat, server_ignoring_change_request_cannot_fake_full_cone)
{
    struct sim s;
    const struct ovl_nat_result *r;

    sim_init(&s, MAP_EI, FILT_EI);
    s.ignore_change = true;
    s.cfg.rto_ms = 100;
    r = classify(&s);
    cr_expect_eq(r->type, OVL_NAT_CONE, "got %s", ovl_nat_type_name(r->type));
    cr_expect_eq(r->filtering, OVL_NAT_FILTER_UNKNOWN);
    cr_expect_eq(r->mapping, OVL_NAT_MAP_INDEPENDENT);
}

Test(nat, change_request_answered_with_420)
{
    struct sim s;
    const struct ovl_nat_result *r;

    sim_init(&s, MAP_DEPENDENT, FILT_EI);
    s.change_420 = true;
    s.cfg.rto_ms = 100;
    r = classify(&s);
    cr_expect_eq(r->type, OVL_NAT_SYMMETRIC, "got %s", ovl_nat_type_name(r->type));
    cr_expect_eq(r->filtering, OVL_NAT_FILTER_UNKNOWN);
}

/* ---- input it must shrug off ---------------------------------------------- */

Test(nat, foreign_and_stale_datagrams_are_ignored)
{
    struct sim s;
    uint8_t req[OVL_STUN_REQ_MAX], out[OVL_STUN_RESP_MAX], junk[40] = {0x00, 0x01};
    size_t len;
    struct ovl_stun_addr dst, src = A("203.0.113.1:3478"), me = A("198.51.100.1:40000");
    struct ovl_stun_reply reply;
    enum ovl_stun_drop drop;
    uint8_t txid[12];
    int n;

    sim_init(&s, MAP_EI, FILT_EI);
    sim_start(&s);
    cr_assert_eq(ovl_nat_next_datagram(&s.nat, s.now, req, sizeof(req), &len, &dst), 1);
    /* A response to a transaction we never started. */
    n = ovl_stun_request_build(req, sizeof(req), NULL, 0, NULL, txid);
    cr_assert_gt(n, 0);
    cr_assert_eq(ovl_stun_server_handle(&s.plain, req, (size_t)n, &me, NULL, out, sizeof(out),
                                        &reply, &drop), 0);
    cr_expect_eq(ovl_nat_recv(&s.nat, out, reply.len, &src, s.now), -ENOENT);
    /* Garbage, a request, nothing. */
    cr_expect_eq(ovl_nat_recv(&s.nat, junk, sizeof(junk), &src, s.now), -ENOENT);
    cr_expect_eq(ovl_nat_recv(&s.nat, req, (size_t)n, &src, s.now), -ENOENT);
    cr_expect_eq(ovl_nat_recv(&s.nat, NULL, 0, &src, s.now), -ENOENT);
    cr_expect_eq(s.nat.ignored, 4u);
    cr_expect(ovl_nat_running(&s.nat));
}

Test(nat, duplicate_answers_after_the_run_are_ignored)
{
    struct sim s;
    const struct ovl_nat_result *r;
    uint8_t req[OVL_STUN_REQ_MAX], out[OVL_STUN_RESP_MAX];
    size_t len;
    struct ovl_stun_addr dst, ext = A("198.51.100.1:40000");
    struct ovl_stun_reply reply;
    enum ovl_stun_drop drop;

    sim_init(&s, MAP_EI, FILT_EI);
    s.cfg.rto_ms = 100;
    sim_start(&s);
    cr_assert_eq(ovl_nat_next_datagram(&s.nat, s.now, req, sizeof(req), &len, &dst), 1);
    s.srv.rfc5780 = true;
    cr_assert_eq(ovl_stun_server_handle(&s.srv, req, len, &ext, &dst, out, sizeof(out),
                                        &reply, &drop), 0);
    cr_assert_eq(ovl_nat_recv(&s.nat, out, reply.len, &dst, s.now), 0,
                 "test I answered: tests II and III next");
    cr_expect_eq(ovl_nat_recv(&s.nat, out, reply.len, &dst, s.now), -ENOENT, "duplicate");
    /* The rest of the run goes through the world. */
    cr_assert(sim_run(&s, 100000));
    r = ovl_nat_result(&s.nat);
    cr_expect_eq(r->type, OVL_NAT_FULL_CONE, "got %s", ovl_nat_type_name(r->type));
}

/* ---- the periodic refresh -------------------------------------------------- */

Test(nat, refresh_reruns_and_reports_changes)
{
    struct sim s;
    const struct ovl_nat_result *r;
    uint64_t done_at;

    sim_init(&s, MAP_EI, FILT_ADDR_PORT);
    s.cfg.rto_ms = 100;
    s.cfg.rc = 3;
    s.cfg.rm = 4;
    s.cfg.refresh_ms = 60000;
    r = classify(&s);
    cr_expect_eq(r->type, OVL_NAT_PORT_RESTRICTED);
    done_at = r->completed_ms;
    cr_expect_eq(ovl_nat_next_timer(&s.nat), done_at + 60000);

    /* Same world: the second run is DONE but not CHANGED. */
    s.events = 0;
    cr_assert(sim_run(&s, 120000));
    cr_expect_eq(r->runs, 2u);
    cr_expect_geq(r->completed_ms, done_at + 60000);
    cr_expect(s.events & OVL_NAT_EV_DONE);
    cr_expect(!(s.events & OVL_NAT_EV_CHANGED));

    /* The router was replaced by a symmetric one: CHANGED. */
    s.map = MAP_DEPENDENT;
    s.nmaps = 0;
    s.nperm = 0;
    s.events = 0;
    cr_assert(sim_run(&s, 120000));
    cr_expect_eq(r->runs, 3u);
    cr_expect_eq(r->type, OVL_NAT_SYMMETRIC, "got %s", ovl_nat_type_name(r->type));
    cr_expect(s.events & OVL_NAT_EV_CHANGED);

    /* And then UDP went away entirely. */
    s.block_udp = true;
    s.events = 0;
    cr_assert(sim_run(&s, 200000));
    cr_expect_eq(r->type, OVL_NAT_UDP_BLOCKED);
    cr_expect(s.events & OVL_NAT_EV_CHANGED);
}

Test(nat, never_refresh)
{
    struct sim s;

    sim_init(&s, MAP_EI, FILT_EI);
    s.cfg.rto_ms = 100;
    s.cfg.refresh_ms = UINT64_MAX;
    classify(&s);
    cr_expect_eq(ovl_nat_next_timer(&s.nat), UINT64_MAX);
    cr_expect_eq(ovl_nat_timeout(&s.nat, UINT64_MAX - 1), 0);
    cr_expect(!ovl_nat_running(&s.nat));
}

Test(nat, names)
{
    for (int t = 0; t < OVL_NAT__COUNT; t++)
        cr_expect_not_null(ovl_nat_type_name((enum ovl_nat_type)t));
    cr_expect_str_eq(ovl_nat_type_name(OVL_NAT_PORT_RESTRICTED), "port-restricted");
    cr_expect_str_eq(ovl_nat_type_name(OVL_NAT_UDP_BLOCKED), "udp-blocked");
    cr_expect_str_eq(ovl_nat_type_name(OVL_NAT__COUNT), "invalid");
    cr_expect_str_eq(ovl_nat_mapping_name(OVL_NAT_MAP_DEPENDENT), "address-dependent");
    cr_expect_str_eq(ovl_nat_filtering_name(OVL_NAT_FILTER_ADDRESS_PORT),
                     "address-and-port-dependent");
}
