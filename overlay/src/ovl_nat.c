/*
 * ovl_nat.c: the NAT classification state machine. See ovl_nat.h for the
 * tests and what each outcome means.
 */
#include "ovl_nat.h"

#include <errno.h>
#include <string.h>

enum phase {
    PHASE_IDLE = 0,  /* never started */
    PHASE_T1,        /* test I: where am I? */
    PHASE_FILTER,    /* tests II and III together: who may reach me? */
    PHASE_MAPPING,   /* test IV: same mapping towards S2? */
    PHASE_DONE,      /* result ready; waiting for the refresh */
};

enum { TEST_I = 1, TEST_II, TEST_III, TEST_IV };

enum { RTO_MAX_MS = 60000 }; /* keeps rto << (rc - 1) inside 32 bits */

static const char *const type_names[OVL_NAT__COUNT] = {
    [OVL_NAT_UNKNOWN] = "unknown",
    [OVL_NAT_OPEN] = "open",
    [OVL_NAT_FIREWALLED] = "firewalled",
    [OVL_NAT_FULL_CONE] = "full-cone",
    [OVL_NAT_RESTRICTED] = "restricted",
    [OVL_NAT_PORT_RESTRICTED] = "port-restricted",
    [OVL_NAT_CONE] = "cone",
    [OVL_NAT_SYMMETRIC] = "symmetric",
    [OVL_NAT_UDP_BLOCKED] = "udp-blocked",
};

const char *ovl_nat_type_name(enum ovl_nat_type t)
{
    return (unsigned)t < OVL_NAT__COUNT ? type_names[t] : "invalid";
}

const char *ovl_nat_mapping_name(enum ovl_nat_mapping m)
{
    switch (m) {
    case OVL_NAT_MAP_NONE:
        return "none";
    case OVL_NAT_MAP_INDEPENDENT:
        return "endpoint-independent";
    case OVL_NAT_MAP_DEPENDENT:
        return "address-dependent";
    default:
        return "unknown";
    }
}

const char *ovl_nat_filtering_name(enum ovl_nat_filtering f)
{
    switch (f) {
    case OVL_NAT_FILTER_INDEPENDENT:
        return "endpoint-independent";
    case OVL_NAT_FILTER_ADDRESS:
        return "address-dependent";
    case OVL_NAT_FILTER_ADDRESS_PORT:
        return "address-and-port-dependent";
    default:
        return "unknown";
    }
}

void ovl_nat_init(struct ovl_nat *n, const struct ovl_nat_config *cfg)
{
    memset(n, 0, sizeof(*n));
    n->cfg = *cfg;
    if (n->cfg.rto_ms == 0)
        n->cfg.rto_ms = OVL_NAT_RTO_MS;
    if (n->cfg.rto_ms > RTO_MAX_MS)
        n->cfg.rto_ms = RTO_MAX_MS;
    if (n->cfg.rc == 0)
        n->cfg.rc = OVL_NAT_RC;
    if (n->cfg.rc > OVL_NAT_MAX_RC)
        n->cfg.rc = OVL_NAT_MAX_RC;
    if (n->cfg.rm == 0)
        n->cfg.rm = OVL_NAT_RM;
    if (n->cfg.refresh_ms == 0)
        n->cfg.refresh_ms = OVL_NAT_REFRESH_MS;
    n->phase = PHASE_IDLE;
    n->next_run_ms = UINT64_MAX;
}

bool ovl_nat_running(const struct ovl_nat *n)
{
    return n->phase != PHASE_IDLE && n->phase != PHASE_DONE;
}

const struct ovl_nat_result *ovl_nat_result(const struct ovl_nat *n)
{
    return &n->result;
}

/* Arms probe @slot for @test: its first request is due at once. */
static void probe_start(struct ovl_nat *n, unsigned slot, uint8_t test,
                        const struct ovl_stun_addr *dst, uint32_t change)
{
    struct ovl_nat_probe *p = &n->probe[slot];

    memset(p, 0, sizeof(*p));
    p->active = true;
    p->test = test;
    p->dst = *dst;
    p->change = change;
    p->rto_ms = n->cfg.rto_ms;
    p->deadline_ms = UINT64_MAX;
    p->send_due = true;
    /* One id per transaction; retransmissions reuse it (RFC 8489 6.2.1). */
    ovl_rng_bytes(n->cfg.rng, p->txid, sizeof(p->txid));
}

static bool any_active(const struct ovl_nat *n)
{
    for (unsigned i = 0; i < OVL_NAT_MAX_PROBES; i++)
        if (n->probe[i].active)
            return true;
    return false;
}

void ovl_nat_start(struct ovl_nat *n, uint64_t now_ms)
{
    (void)now_ms;
    memset(n->probe, 0, sizeof(n->probe));
    memset(&n->m1, 0, sizeof(n->m1));
    memset(&n->m2, 0, sizeof(n->m2));
    memset(&n->other, 0, sizeof(n->other));
    n->got_m1 = n->got_m2 = n->ii_ok = n->iii_ok = n->change_ok = false;
    n->phase = PHASE_T1;
    n->next_run_ms = UINT64_MAX;
    probe_start(n, 0, TEST_I, &n->cfg.server, 0);
}

static bool open_addr(const struct ovl_nat *n)
{
    return n->got_m1 && ovl_stun_addr_eq(&n->m1, &n->cfg.local);
}

/* Combines the findings into a type (see the table in ovl_nat.h). */
static void classify(const struct ovl_nat *n, struct ovl_nat_result *r, bool blocked)
{
    r->mapping = OVL_NAT_MAP_UNKNOWN;
    r->filtering = OVL_NAT_FILTER_UNKNOWN;
    r->type = OVL_NAT_UNKNOWN;
    if (!n->got_m1) {
        r->type = blocked ? OVL_NAT_UDP_BLOCKED : OVL_NAT_UNKNOWN;
        return;
    }
    if (n->change_ok)
        r->filtering = n->ii_ok ? OVL_NAT_FILTER_INDEPENDENT
                     : n->iii_ok ? OVL_NAT_FILTER_ADDRESS : OVL_NAT_FILTER_ADDRESS_PORT;
    if (open_addr(n)) {
        r->mapping = OVL_NAT_MAP_NONE;
        r->type = (r->filtering == OVL_NAT_FILTER_ADDRESS ||
                   r->filtering == OVL_NAT_FILTER_ADDRESS_PORT)
                      ? OVL_NAT_FIREWALLED : OVL_NAT_OPEN;
        return;
    }
    if (n->got_m2)
        r->mapping = ovl_stun_addr_eq(&n->m1, &n->m2) ? OVL_NAT_MAP_INDEPENDENT
                                                       : OVL_NAT_MAP_DEPENDENT;
    if (r->mapping == OVL_NAT_MAP_DEPENDENT)
        r->type = OVL_NAT_SYMMETRIC;
    else if (r->filtering == OVL_NAT_FILTER_INDEPENDENT)
        r->type = OVL_NAT_FULL_CONE;
    else if (r->filtering == OVL_NAT_FILTER_ADDRESS)
        r->type = OVL_NAT_RESTRICTED;
    else if (r->filtering == OVL_NAT_FILTER_ADDRESS_PORT)
        r->type = OVL_NAT_PORT_RESTRICTED;
    else if (r->mapping == OVL_NAT_MAP_INDEPENDENT)
        r->type = OVL_NAT_CONE;
}

static int finish(struct ovl_nat *n, uint64_t now_ms, bool blocked)
{
    struct ovl_nat_result r = {0};
    int ev = OVL_NAT_EV_DONE;

    classify(n, &r, blocked);
    r.reflexive = n->m1;
    r.reflexive2 = n->m2;
    r.other = n->other;
    r.completed_ms = now_ms;
    r.runs = n->result.runs + 1;
    if (r.type != n->result.type || !ovl_stun_addr_eq(&r.reflexive, &n->result.reflexive))
        ev |= OVL_NAT_EV_CHANGED;
    /* A run that learnt nothing (UNKNOWN, no address) is still "changed"
     * when the previous one knew something; that is the case above. */
    n->result = r;
    memset(n->probe, 0, sizeof(n->probe));
    n->phase = PHASE_DONE;
    n->next_run_ms = n->cfg.refresh_ms == UINT64_MAX || now_ms > UINT64_MAX - n->cfg.refresh_ms
                         ? UINT64_MAX : now_ms + n->cfg.refresh_ms;
    return ev;
}

/* Where test IV goes: the server's OTHER-ADDRESS, else the second server. */
static const struct ovl_stun_addr *mapping_target(const struct ovl_nat *n)
{
    if (n->other.family != OVL_STUN_FAMILY_NONE && !ovl_stun_addr_eq(&n->other, &n->cfg.server))
        return &n->other;
    if (n->cfg.second.family != OVL_STUN_FAMILY_NONE)
        return &n->cfg.second;
    return NULL;
}

/* After the filtering tests (or instead of them): test IV or the end. */
static int after_filter(struct ovl_nat *n, uint64_t now_ms)
{
    const struct ovl_stun_addr *dst = mapping_target(n);

    if (open_addr(n) || dst == NULL)
        return finish(n, now_ms, false);
    n->phase = PHASE_MAPPING;
    probe_start(n, 0, TEST_IV, dst, 0);
    return 0;
}

/* Test I is over: @r is its answer (NULL: none came). */
static int after_t1(struct ovl_nat *n, const struct ovl_stun_result *r, uint64_t now_ms)
{
    if (r == NULL)
        return finish(n, now_ms, true);
    if (!r->success)
        return finish(n, now_ms, false); /* reachable, but it refused */
    n->m1 = r->mapped;
    n->got_m1 = true;
    n->other = r->other;
    /* RFC 5780 tests need an alternate address that differs in both IP
     * and port from the primary one. */
    n->change_ok = r->other.family == n->cfg.server.family &&
                   !ovl_stun_addr_ip_eq(&r->other, &n->cfg.server) &&
                   r->other.port != n->cfg.server.port;
    if (!n->change_ok)
        return after_filter(n, now_ms);
    n->phase = PHASE_FILTER;
    probe_start(n, 0, TEST_II, &n->cfg.server, OVL_STUN_CHANGE_IP | OVL_STUN_CHANGE_PORT);
    probe_start(n, 1, TEST_III, &n->cfg.server, OVL_STUN_CHANGE_PORT);
    return 0;
}

/* A filtering answer counts only if it really came from the changed
 * address; a server that ignored CHANGE-REQUEST cannot vouch for
 * anything, and neither can one that answers 420. */
static void filter_answer(struct ovl_nat *n, unsigned slot, const struct ovl_stun_result *r,
                          const struct ovl_stun_addr *src)
{
    const struct ovl_stun_addr *s1 = &n->cfg.server;
    bool other_ip = !ovl_stun_addr_ip_eq(src, s1);
    bool other_port = src->port != s1->port;

    if (!r->success) {
        n->change_ok = false;
    } else if (n->probe[slot].test == TEST_II) {
        if (other_ip && other_port)
            n->ii_ok = true;
        else
            n->change_ok = false;
    } else {
        if (!other_ip && other_port)
            n->iii_ok = true;
        else
            n->change_ok = false;
    }
    n->probe[slot].active = false;
    /* Endpoint-independent filtering settles it: III cannot add anything. */
    if (n->ii_ok || !n->change_ok)
        memset(n->probe, 0, sizeof(n->probe));
}

/* Probe @slot ended: answered (@r, from @src) or timed out (@r NULL). */
static int probe_done(struct ovl_nat *n, unsigned slot, const struct ovl_stun_result *r,
                      const struct ovl_stun_addr *src, uint64_t now_ms)
{
    uint8_t test = n->probe[slot].test;

    switch (test) {
    case TEST_I:
        n->probe[slot].active = false;
        return after_t1(n, r, now_ms);
    case TEST_II:
    case TEST_III:
        if (r)
            filter_answer(n, slot, r, src);
        else
            n->probe[slot].active = false;
        return any_active(n) ? 0 : after_filter(n, now_ms);
    case TEST_IV:
        n->probe[slot].active = false;
        if (r && r->success) {
            n->m2 = r->mapped;
            n->got_m2 = true;
        }
        return finish(n, now_ms, false);
    default:
        return 0;
    }
}

int ovl_nat_next_datagram(struct ovl_nat *n, uint64_t now_ms, uint8_t *out, size_t cap,
                          size_t *len, struct ovl_stun_addr *dst)
{
    for (unsigned i = 0; i < OVL_NAT_MAX_PROBES; i++) {
        struct ovl_nat_probe *p = &n->probe[i];
        struct ovl_stun_builder b;
        int rc;

        if (!p->active || !p->send_due)
            continue;
        ovl_stun_build_init(&b, out, cap, OVL_STUN_BINDING_REQUEST, p->txid);
        if (p->change) {
            uint8_t v[4] = {0, 0, 0, (uint8_t)p->change};

            ovl_stun_build_attr(&b, OVL_STUN_ATTR_CHANGE_REQUEST, v, sizeof(v));
        }
        if (n->cfg.software)
            ovl_stun_build_attr(&b, OVL_STUN_ATTR_SOFTWARE, n->cfg.software,
                                strnlen(n->cfg.software, OVL_STUN_SOFTWARE_MAX));
        rc = ovl_stun_build_finish(&b, true);
        if (rc < 0)
            return rc;
        *len = (size_t)rc;
        *dst = p->dst;
        p->send_due = false;
        p->sent++;
        /* RFC 8489 6.2.1: wait RTO, doubling, after each of the first Rc-1
         * requests; after the last, Rm times the initial RTO. */
        if (p->sent < n->cfg.rc) {
            p->deadline_ms = now_ms + p->rto_ms;
            p->rto_ms *= 2;
        } else {
            p->deadline_ms = now_ms + (uint64_t)n->cfg.rm * n->cfg.rto_ms;
        }
        return 1;
    }
    return 0;
}

int ovl_nat_recv(struct ovl_nat *n, const uint8_t *buf, size_t len,
                 const struct ovl_stun_addr *src, uint64_t now_ms)
{
    struct ovl_stun_result r;
    struct ovl_stun_msg m;
    enum ovl_stun_drop drop;

    if (ovl_stun_parse(&m, buf, len, &drop) == 0) {
        for (unsigned i = 0; i < OVL_NAT_MAX_PROBES; i++) {
            struct ovl_nat_probe *p = &n->probe[i];

            if (!p->active || memcmp(p->txid, m.txid, sizeof(p->txid)) != 0)
                continue;
            if (ovl_stun_response_parse(&r, buf, len, p->txid, &drop) != 0)
                break;
            return probe_done(n, i, &r, src, now_ms);
        }
    }
    n->ignored++;
    return -ENOENT;
}

uint64_t ovl_nat_next_timer(const struct ovl_nat *n)
{
    uint64_t t = UINT64_MAX;

    if (n->phase == PHASE_DONE)
        return n->next_run_ms;
    for (unsigned i = 0; i < OVL_NAT_MAX_PROBES; i++) {
        const struct ovl_nat_probe *p = &n->probe[i];

        if (!p->active)
            continue;
        if (p->send_due)
            return 0;
        if (p->deadline_ms < t)
            t = p->deadline_ms;
    }
    return t;
}

int ovl_nat_timeout(struct ovl_nat *n, uint64_t now_ms)
{
    int ev = 0;

    if (n->phase == PHASE_DONE && now_ms >= n->next_run_ms) {
        ovl_nat_start(n, now_ms);
        return 0;
    }
    for (unsigned i = 0; i < OVL_NAT_MAX_PROBES; i++) {
        struct ovl_nat_probe *p = &n->probe[i];

        if (!p->active || p->send_due || now_ms < p->deadline_ms)
            continue;
        if (p->sent < n->cfg.rc) {
            p->send_due = true;
            p->deadline_ms = UINT64_MAX;
        } else {
            /* Probe i gave up; a phase change may re-arm slot 0 (which a
             * later round of this loop then leaves alone: send_due). */
            ev |= probe_done(n, i, NULL, NULL, now_ms);
        }
    }
    return ev;
}
