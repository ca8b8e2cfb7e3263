/*
 * ovl_peer.c: the peer side of a node (docs/protocol.md 2.6-2.9).
 *
 * Login ladder. A round takes up to `login_parallel` candidates from the
 * host cache (fewest failures first, random among equals) and runs this
 * ladder for each, in parallel:
 *
 *   PROBE_UDP   PING over UDP (a secure handshake carrying it)
 *       |         answered or not, go on (remember whether UDP works)
 *   TCP_PORT    connect to the supernode's TCP port, LOGIN over it
 *       |         LOGIN_OK: done; LOGIN_ERR: the candidate refused
 *   TCP_443     the same on port 443 (if the contact listens there)
 *       |
 *   UDP_LOGIN   LOGIN over UDP, if the probe was answered
 *       |
 *   FAILED
 *
 * The first LOGIN_OK makes its supernode the primary: the peer publishes
 * its presence record through it, resolves and subscribes to its
 * buddies, and keeps the session alive with PINGs. Later successes
 * become fallbacks (up to `fallbacks`), the rest are closed. When every
 * attempt of a round failed: OVL_NEV_LOGIN_FAILED with what was tried,
 * then a new round after a backoff doubling from backoff_min to
 * backoff_max. When the primary goes away (connection closed, keepalives
 * unanswered for dead_after), a fallback is promoted at once and the
 * presence re-published; without one, the ladder starts again.
 */
#include "ovl_node_internal.h"

#include <stdio.h>
#include <stdlib.h>

static void start_round(struct ovl_node *n, uint64_t now);
static void become_primary(struct ovl_node *n, struct ovl_link *l,
                           uint64_t now, bool reattach);
static void resolve_buddies(struct ovl_node *n, uint64_t now);

/* ---- Sequence numbers --------------------------------------------------------------- */

/* Newer wins, across restarts too: milliseconds of wall clock, forced
 * increasing within this run. */
uint64_t ovl__next_seq(struct ovl_node *n, uint64_t now)
{
    uint64_t ms = (now + n->wall_offset) / 1000000u;

    n->last_seq = ms > n->last_seq ? ms : n->last_seq + 1;
    return n->last_seq;
}

/* ---- Signalling links ------------------------------------------------------------------ */

static uint8_t count_fallbacks(const struct ovl_node *n)
{
    uint8_t k = 0;

    for (const struct ovl_link *l = n->links.next; l != &n->links;
         l = l->next)
        if ((l->flags & OVL__LF_SIGNAL) && l != n->primary)
            k++;
    return k;
}

static bool in_use(const struct ovl_node *n, const uint8_t id[32])
{
    for (const struct ovl_link *l = n->links.next; l != &n->links;
         l = l->next)
        if ((l->flags & OVL__LF_SIGNAL) && memcmp(l->node_id, id, 32) == 0)
            return true;
    for (const struct ovl_attempt *a = n->attempts; a; a = a->next)
        if (memcmp(a->c.node_id, id, 32) == 0)
            return true;
    return false;
}

static void hc_contact(const struct ovl_node *n, const struct ovl_link *l,
                       struct ovl_contact *c)
{
    const struct ovl_hc_entry *e = ovl_hc_find(&n->hc, l->node_id);

    if (e) {
        *c = e->c;
        return;
    }
    memset(c, 0, sizeof(*c));
    memcpy(c->identity, l->identity, 32);
    memcpy(c->node_id, l->node_id, 32);
    c->udp = l->addr;
}

/* ---- Attempts ------------------------------------------------------------------------- */

static struct ovl_attempt *attempt_find(struct ovl_node *n, uint32_t id)
{
    struct ovl_attempt *a;

    for (a = n->attempts; a && a->id != id; a = a->next)
        ;
    return a;
}

static void attempt_free(struct ovl_node *n, struct ovl_attempt *a,
                         bool keep_tcp, bool keep_udp, uint64_t now)
{
    struct ovl_attempt **p = &n->attempts;

    while (*p && *p != a)
        p = &(*p)->next;
    if (*p)
        *p = a->next;
    ovl__rpc_cancel_owner(n, OVL__OWN_ATTEMPT, a->id);
    if (a->udp) {
        if (!keep_udp && !a->udp->dead && !(a->udp->flags & OVL__LF_SIGNAL) &&
            a->udp->refs == 1)
            ovl__link_close(n, a->udp, now);
        ovl__link_unref(n, a->udp);
    }
    if (a->tcp) {
        if (!keep_tcp && !a->tcp->dead && !(a->tcp->flags & OVL__LF_SIGNAL))
            ovl__link_close(n, a->tcp, now);
        ovl__link_unref(n, a->tcp);
    }
    free(a);
}

static int send_login(struct ovl_node *n, struct ovl_attempt *a,
                      struct ovl_link *l, uint64_t now)
{
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_LOGIN;
    if (a->fallback)
        m.flags |= OVL_MF_LOGIN_FALLBACK;
    m.u.login.role = (uint8_t)n->role;
    m.u.login.handle_len = n->handle_len;
    memcpy(m.u.login.handle, n->handle, n->handle_len);
    if (n->has_cert) {
        m.flags |= OVL_MF_LOGIN_HAS_CERT;
        m.u.login.cert = n->cert;
    }
    return ovl__send_msg(n, l, &m, OVL__OWN_ATTEMPT, a->id, n->t.tcp_timeout,
                         now);
}

static void round_check(struct ovl_node *n, uint64_t now);

static void attempt_failed(struct ovl_node *n, struct ovl_attempt *a,
                           uint64_t now)
{
    ovl_hc_failed(&n->hc, a->c.node_id);
    attempt_free(n, a, false, false, now);
    round_check(n, now);
}

/* Moves @a down the ladder from its current step. */
static void attempt_next(struct ovl_node *n, struct ovl_attempt *a,
                         uint64_t now)
{
    for (;;) {
        uint16_t port = 0;

        switch (a->state) {
        case OVL__ATT_PROBE_UDP:
            a->state = OVL__ATT_TCP_PORT;
            port = a->c.tcp_port;
            break;
        case OVL__ATT_TCP_PORT:
            a->state = OVL__ATT_TCP_443;
            port = (a->c.flags & OVL_CF_TCP443) && a->c.tcp_port != 443
                       ? 443
                       : 0;
            break;
        case OVL__ATT_TCP_443:
            a->state = OVL__ATT_UDP_LOGIN;
            if (a->udp_ok && a->udp && !a->udp->dead &&
                send_login(n, a, a->udp, now) == 0)
                return;
            continue;
        default:
            attempt_failed(n, a, now);
            return;
        }
        if (port == 0)
            continue;
        if (a->tcp) {
            if (!a->tcp->dead)
                ovl__link_close(n, a->tcp, now);
            ovl__link_unref(n, a->tcp);
            a->tcp = NULL;
        }
        a->tcp = ovl__link_tcp(n, &a->c, port, now);
        if (a->tcp == NULL)
            continue;
        ovl__link_ref(a->tcp);
        if (send_login(n, a, a->tcp, now) == 0)
            return;
    }
}

static void attempt_start(struct ovl_node *n, const struct ovl_contact *c,
                          bool fallback, uint64_t now)
{
    struct ovl_attempt *a = calloc(1, sizeof(*a));
    struct ovl_msg m;

    if (a == NULL)
        return;
    a->id = ++n->next_attempt_id;
    a->c = *c;
    a->fallback = fallback;
    a->state = OVL__ATT_PROBE_UDP;
    a->next = n->attempts;
    n->attempts = a;
    a->udp = ovl__link_udp(n, c, now);
    if (a->udp) {
        ovl__link_ref(a->udp);
        memset(&m, 0, sizeof(m));
        m.type = OVL_M_PING;
        if (ovl__send_msg(n, a->udp, &m, OVL__OWN_ATTEMPT, a->id,
                          n->t.probe_timeout, now) == 0)
            return;
    }
    attempt_next(n, a, now);
}

/* The login succeeded on @l (from LOGIN_OK @ok). */
static void attempt_done(struct ovl_node *n, struct ovl_attempt *a,
                         struct ovl_link *l, const struct ovl_msg *ok,
                         uint64_t now)
{
    bool keep = n->pstate == OVL__P_LOGGING_IN ||
                n->pstate == OVL__P_BACKOFF || n->primary == NULL ||
                count_fallbacks(n) < n->fallbacks;

    ovl_hc_ok(&n->hc, a->c.node_id, ovl__wall_s(n, now));
    n->rung_ok |= (uint8_t)(1u << a->state);
    if (!keep || n->pstate == OVL__P_LOGGING_OUT ||
        n->role == OVL_ROLE_SUPERNODE) {
        attempt_free(n, a, false, false, now);
        return;
    }
    l->flags |= OVL__LF_SIGNAL;
    l->keepalive_s = ok->u.login_ok.keepalive_s;
    l->observed = ok->u.login_ok.observed;
    l->ping_due = now + n->t.keepalive;
    attempt_free(n, a, l == a->tcp, l == a->udp, now);
    if (n->primary == NULL)
        become_primary(n, l, now, false);
    ovl__link_schedule(n, l);
    round_check(n, now);
}

/* An answer (or a failure: @m NULL) to one of an attempt's RPCs. */
static void attempt_rpc(struct ovl_node *n, struct ovl_rpc *r,
                        const struct ovl_msg *m, uint64_t now)
{
    struct ovl_attempt *a = attempt_find(n, r->owner_id);

    if (a == NULL)
        return;
    if (r->type == OVL_M_PING) {
        a->udp_ok = m != NULL && m->type == OVL_M_PONG;
        /* The PONG says where our UDP socket is seen from outside: the
         * address to publish even when the login itself ends up on TCP. */
        if (a->udp_ok && m->u.pong.observed.family != OVL_AF_NONE)
            n->udp_observed = m->u.pong.observed;
        attempt_next(n, a, now);
        return;
    }
    if (m && m->type == OVL_M_LOGIN_OK) {
        attempt_done(n, a, r->link, m, now);
        return;
    }
    if (m && m->type == OVL_M_LOGIN_ERR) {
        /* The supernode answered and refused: no point in other routes to
         * it. FULL comes with alternatives for the next round. */
        for (int i = 0; i < m->u.login_err.count; i++)
            ovl_hc_add(&n->hc, &m->u.login_err.contacts[i],
                       ovl__wall_s(n, now));
        a->err = m->u.login_err.code;
        a->state = OVL__ATT_FAILED;
        attempt_failed(n, a, now);
        return;
    }
    /* Timeout, closed connection, or an ERROR: next rung. */
    if (r->link == a->udp && a->state == OVL__ATT_UDP_LOGIN) {
        attempt_failed(n, a, now);
        return;
    }
    attempt_next(n, a, now);
}

/* Whether contact @c could work, given what worked before: a node that
 * only ever got in through TCP 443 (a strict firewall) skips supernodes
 * that do not listen there. */
static bool plausible(const struct ovl_node *n, const struct ovl_contact *c)
{
    return n->rung_ok != (1u << OVL__ATT_TCP_443) || (c->flags & OVL_CF_TCP443);
}

/* Picks up to @want candidates: plausible ones first, then fewest
 * failures, random among equals. */
static size_t pick(struct ovl_node *n, struct ovl_contact *out, size_t want)
{
    size_t got = 0;
    uint8_t taken[OVL_HOSTCACHE_MAX] = {0};
    bool any = false;

    for (int i = 0; i < n->hc.n && !any; i++)
        any = plausible(n, &n->hc.e[i].c) && !in_use(n, n->hc.e[i].c.node_id);
    while (got < want) {
        int best = -1;
        uint32_t best_r = 0;

        for (int i = 0; i < n->hc.n; i++) {
            const struct ovl_hc_entry *e = &n->hc.e[i];
            uint32_t r;

            if (taken[i] || in_use(n, e->c.node_id) ||
                memcmp(e->c.node_id, n->id->node_id, 32) == 0 ||
                (any && !plausible(n, &e->c)))
                continue;
            if (best >= 0 && e->fails > n->hc.e[best].fails)
                continue;
            r = ovl__random32(n);
            if (best < 0 || e->fails < n->hc.e[best].fails || r < best_r) {
                best = i;
                best_r = r;
            }
        }
        if (best < 0)
            break;
        taken[best] = 1;
        out[got++] = n->hc.e[best].c;
    }
    return got;
}

static void start_round(struct ovl_node *n, uint64_t now)
{
    struct ovl_contact c[16];
    size_t k, want = n->parallel < 16 ? n->parallel : 16;

    n->pstate = OVL__P_LOGGING_IN;
    k = pick(n, c, want);
    n->round_tried = (uint8_t)k;
    for (size_t i = 0; i < k; i++)
        attempt_start(n, &c[i], false, now);
    if (k == 0)
        round_check(n, now);
}

/* After an attempt ended: a round with nothing left failed. */
static void round_check(struct ovl_node *n, uint64_t now)
{
    struct ovl_event *ev;

    if (n->attempts != NULL || n->primary != NULL ||
        n->pstate != OVL__P_LOGGING_IN)
        return;
    ev = ovl__event(n, OVL_NEV_LOGIN_FAILED);
    ev->status = -EHOSTUNREACH;
    if (n->hc.n == 0)
        snprintf(ev->reason, sizeof(ev->reason),
                 "no supernode known: the host cache and the bootstrap list "
                 "are empty");
    else
        snprintf(ev->reason, sizeof(ev->reason),
                 "no supernode answered: tried %u of %u known (UDP probe, "
                 "TCP to its port, TCP 443); retrying in %llu ms",
                 n->round_tried, n->hc.n,
                 (unsigned long long)((n->backoff ? n->backoff
                                                  : n->t.backoff_min) /
                                      1000000u));
    n->backoff = n->backoff ? n->backoff * 2 : n->t.backoff_min;
    if (n->backoff > n->t.backoff_max)
        n->backoff = n->t.backoff_max;
    n->pstate = OVL__P_BACKOFF;
    /* Jitter (up to a quarter) keeps a crowd of peers from retrying in
     * lockstep after their supernode vanished. */
    n->retry_at = now + n->backoff -
                  ovl_rng_uniform(&n->rng, (uint32_t)(n->backoff / 4 / 1000u +
                                                      1)) *
                      1000u;
    ovl__house_schedule(n, n->retry_at);
}

void ovl__peer_start(struct ovl_node *n, uint64_t now)
{
    n->backoff = 0;
    start_round(n, now);
}

/* ---- Primary supernode ------------------------------------------------------------------- */

static void become_primary(struct ovl_node *n, struct ovl_link *l,
                           uint64_t now, bool reattach)
{
    struct ovl_event *ev;

    (void)reattach;
    n->primary = l;
    ovl__link_ref(l);
    n->pstate = OVL__P_ATTACHED;
    n->backoff = 0;
    ev = ovl__event(n, OVL_NEV_LOGGED_IN);
    hc_contact(n, l, &ev->supernode);
    ovl__publish_presence(n, now);
    for (uint32_t i = 0; i < n->nrooms; i++)
        n->rooms[i].refresh_at = now;
    resolve_buddies(n, now);
    n->hostcache_at = now + n->t.hostcache_refresh / 8;
    ovl__house_schedule(n, now);
}

void ovl__peer_link_closed(struct ovl_node *n, struct ovl_link *l,
                           uint64_t now)
{
    struct ovl_event *ev;
    struct ovl_link *f;

    if (!(l->flags & OVL__LF_SIGNAL))
        return;
    l->flags &= (uint8_t)~OVL__LF_SIGNAL;
    if (l != n->primary) {
        ovl__house_schedule(n, now); /* refill the fallbacks */
        return;
    }
    n->primary = NULL;
    if (n->pstate == OVL__P_LOGGING_OUT || n->pstate == OVL__P_OUT ||
        n->role == OVL_ROLE_SUPERNODE) {
        ovl__link_unref(n, l);
        return;
    }
    ovl_hc_failed(&n->hc, l->node_id);
    ev = ovl__event(n, OVL_NEV_SUPERNODE_LOST);
    hc_contact(n, l, &ev->supernode);
    ovl__link_unref(n, l);
    for (f = n->links.next; f != &n->links; f = f->next)
        if ((f->flags & OVL__LF_SIGNAL) && !f->dead)
            break;
    if (f != &n->links) {
        become_primary(n, f, now, true);
        return;
    }
    n->backoff = 0;
    start_round(n, now);
}

/* ---- Publishing -------------------------------------------------------------------------- */

static size_t own_addrs(const struct ovl_node *n, struct ovl_addr *out)
{
    size_t k = 0;

    for (uint8_t i = 0; i < n->npub && k < OVL_PRESENCE_ADDRS_MAX; i++)
        out[k++] = n->pub[i];
    /* Our UDP mapping as a supernode saw it: LOGIN_OK's view when the
     * primary link is UDP, else the login probe's PONG (over TCP the
     * supernode sees the connection's ephemeral source port, which nobody
     * can reach). */
    {
        const struct ovl_addr *seen = NULL;

        if (n->primary && n->primary->conn == NULL &&
            n->primary->observed.family != OVL_AF_NONE)
            seen = &n->primary->observed;
        else if (n->udp_observed.family != OVL_AF_NONE)
            seen = &n->udp_observed;
        if (seen && k < OVL_PRESENCE_ADDRS_MAX) {
            bool dup = false;

            for (size_t i = 0; i < k; i++)
                dup |= ovl_addr_eq(&out[i], seen);
            if (!dup)
                out[k++] = *seen;
        }
    }
    if (k < OVL_PRESENCE_ADDRS_MAX) {
        bool dup = false;

        for (size_t i = 0; i < k; i++)
            dup |= ovl_addr_eq(&out[i], &n->local);
        if (!dup)
            out[k++] = n->local;
    }
    return k;
}

/* Publishes @rec (our own record) through the supernode, or directly.
 * Returns the request id of the STORE sent to the supernode (0 when
 * stored directly or not sent), so that a refusal can be matched. */
static uint32_t publish(struct ovl_node *n, const uint8_t *rec, size_t len,
                        uint8_t rtype, uint64_t now)
{
    struct ovl_msg m;

    if (n->role == OVL_ROLE_SUPERNODE) {
        ovl__super_store(n, rec, len, now);
        return 0;
    }
    if (n->primary == NULL || n->primary->dead)
        return 0;
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_STORE;
    m.flags = OVL_MF_SEARCH;
    m.u.store.record = rec;
    m.u.store.record_len = (uint16_t)len;
    if (ovl__send_msg(n, n->primary, &m, OVL__OWN_PUBLISH, rtype,
                      n->t.search_timeout, now) != 0)
        return 0;
    return m.rid;
}

void ovl__publish_presence(struct ovl_node *n, uint64_t now)
{
    uint8_t rec[OVL_RECORD_MAX];
    struct ovl_addr addrs[OVL_PRESENCE_ADDRS_MAX];
    struct ovl_record_params p;
    struct ovl_contact sn;
    uint64_t wall = ovl__wall_s(n, now);
    int len;

    n->presence_refresh_at = now + n->t.presence_refresh;
    if (n->handle_len == 0)
        return;
    if (n->role == OVL_ROLE_SUPERNODE)
        ovl__self_contact(n, &sn);
    else if (n->primary)
        hc_contact(n, n->primary, &sn);
    else
        return;
    memset(&p, 0, sizeof(p));
    p.type = OVL_R_PRESENCE;
    p.name = n->handle;
    p.name_len = n->handle_len;
    p.seq = n->presence_seq = ovl__next_seq(n, now);
    p.issued = wall;
    p.expires = wall + OVL_PRESENCE_TTL;
    p.cert = n->has_cert ? n->cert : NULL;
    p.supernode = &sn;
    p.role = (uint8_t)n->role;
    p.addrs = addrs;
    p.naddr = (uint8_t)own_addrs(n, addrs);
    len = ovl_record_build(rec, sizeof(rec), &p, n->id);
    if (len > 0)
        publish(n, rec, (size_t)len, OVL_R_PRESENCE, now);
    ovl__house_schedule(n, n->presence_refresh_at);
}

/*
 * Signs and publishes @room's record: where it is served or, once
 * withdrawn, that it is gone. A withdrawal is an ordinary ROOM record
 * (newer seq, so it replaces the live one in every store and cache) whose
 * only address is the unspecified 0.0.0.0 (ovl__room_withdrawn), port 9
 * (discard). It lives as long as a live record (OVL_ROOM_TTL): a shorter
 * life would let a replica that missed it resurrect the older live
 * version by republishing it once the withdrawal expired.
 */
static void publish_room(struct ovl_node *n, struct ovl_room *room,
                         uint64_t now)
{
    uint8_t rec[OVL_RECORD_MAX];
    struct ovl_record_params p;
    struct ovl_addr gone;
    uint64_t wall = ovl__wall_s(n, now);
    int len;

    room->refresh_at = now + n->t.room_refresh;
    memset(&p, 0, sizeof(p));
    p.type = OVL_R_ROOM;
    p.name = room->name;
    p.name_len = strlen(room->name);
    p.seq = ovl__next_seq(n, now);
    p.issued = wall;
    p.expires = wall + OVL_ROOM_TTL;
    p.cert = room->has_cert ? room->cert : NULL;
    p.addrs = room->addrs;
    p.naddr = room->naddr;
    p.tcp_port = room->tcp_port;
    if (room->withdrawn) {
        ovl_addr_v4(&gone, 0, 9);
        p.addrs = &gone;
        p.naddr = 1;
        p.tcp_port = 0;
    }
    len = ovl_record_build(rec, sizeof(rec), &p, n->id);
    if (len > 0)
        room->pub_rid = publish(n, rec, (size_t)len, OVL_R_ROOM, now);
}

uint32_t ovl_node_rooms_published(const struct ovl_node *n)
{
    uint32_t live = 0;

    for (uint32_t i = 0; i < n->nrooms; i++)
        live += !n->rooms[i].withdrawn;
    return live;
}

static struct ovl_room *room_find(struct ovl_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->nrooms; i++)
        if (strcmp(n->rooms[i].name, name) == 0)
            return &n->rooms[i];
    return NULL;
}

/* A slot for a new room: a free one, else the withdrawal that is due to
 * be forgotten first (it has been published; it only keeps healing). */
static struct ovl_room *room_slot(struct ovl_node *n)
{
    struct ovl_room *best = NULL;

    if (n->nrooms == n->rooms_cap && n->rooms_cap < OVL__ROOMS_MAX) {
        uint32_t cap = n->rooms_cap ? 2 * n->rooms_cap : 4;
        struct ovl_room *r;

        if (cap > OVL__ROOMS_MAX)
            cap = OVL__ROOMS_MAX;
        r = realloc(n->rooms, cap * sizeof(*r));
        if (r != NULL) {
            n->rooms = r;
            n->rooms_cap = cap;
        }
    }
    if (n->nrooms < n->rooms_cap)
        return &n->rooms[n->nrooms++];
    for (uint32_t i = 0; i < n->nrooms; i++)
        if (n->rooms[i].withdrawn &&
            (best == NULL || n->rooms[i].gone_at < best->gone_at))
            best = &n->rooms[i];
    return best;
}

/* Forgets withdrawn rooms whose last live record has expired everywhere,
 * and publishes the rooms that are due. Returns the next deadline. */
static uint64_t rooms_house(struct ovl_node *n, uint64_t now)
{
    uint64_t next = OVL_NEVER;
    bool live = ovl_node_logged_in(n) || n->role == OVL_ROLE_SUPERNODE;

    for (uint32_t i = 0; i < n->nrooms;) {
        struct ovl_room *r = &n->rooms[i];

        if (r->withdrawn && now >= r->gone_at) {
            *r = n->rooms[--n->nrooms];
            continue;
        }
        if (live && now >= r->refresh_at)
            publish_room(n, r, now);
        if (live)
            next = ovl__tmin(next, r->refresh_at);
        if (r->withdrawn)
            next = ovl__tmin(next, r->gone_at);
        i++;
    }
    return next;
}

int ovl_node_publish_room(struct ovl_node *n, const char *name,
                          const struct ovl_addr *addrs, size_t naddr,
                          uint16_t tcp_port, const uint8_t *cert,
                          uint64_t now)
{
    struct ovl_room *room;
    uint8_t tmp[20];

    if (name == NULL || !ovl_name_valid(name, strlen(name)) || naddr == 0 ||
        naddr > OVL_PRESENCE_ADDRS_MAX || addrs == NULL)
        return -EINVAL;
    for (size_t i = 0; i < naddr; i++)
        if (ovl_addr_encode(tmp, &addrs[i], false) != 0 ||
            ovl__addr_unspecified(&addrs[i]))
            return -EINVAL;
    room = room_find(n, name);
    if (room == NULL && (room = room_slot(n)) == NULL)
        return -ENOSPC;
    memset(room, 0, sizeof(*room));
    strcpy(room->name, name);
    memcpy(room->addrs, addrs, naddr * sizeof(*addrs));
    room->naddr = (uint8_t)naddr;
    room->tcp_port = tcp_port;
    if (cert) {
        memcpy(room->cert, cert, OVL_CERT_LEN);
        room->has_cert = true;
    }
    if (ovl_node_logged_in(n))
        publish_room(n, room, now);
    else
        room->refresh_at = now;
    return 0;
}

int ovl_node_withdraw_room(struct ovl_node *n, const char *name,
                           uint64_t now)
{
    struct ovl_room *room;

    if (name == NULL || !ovl_name_valid(name, strlen(name)))
        return -EINVAL;
    room = room_find(n, name);
    if (room == NULL)
        return -ENOENT;
    if (room->withdrawn)
        return 0;
    room->withdrawn = true;
    /* Every live version was issued before now and expires within
     * OVL_ROOM_TTL of its issue: after that, nothing is left to replace. */
    room->gone_at = now + OVL_ROOM_TTL * OVL_NS_PER_SEC;
    if (ovl_node_logged_in(n))
        publish_room(n, room, now);
    else
        room->refresh_at = now; /* at the next login */
    ovl__house_schedule(n, ovl__tmin(room->refresh_at, room->gone_at));
    return 0;
}

int ovl_node_set_public_addrs(struct ovl_node *n, const struct ovl_addr *a,
                              size_t count, uint64_t now)
{
    uint8_t tmp[20];

    if (count > OVL__PUBADDR_MAX || (count && a == NULL))
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (ovl_addr_encode(tmp, &a[i], false) != 0)
            return -EINVAL;
    if (count == n->npub &&
        (count == 0 || memcmp(n->pub, a, count * sizeof(*a)) == 0))
        return 0;
    memcpy(n->pub, a, count * sizeof(*a));
    n->npub = (uint8_t)count;
    if (ovl_node_logged_in(n))
        ovl__publish_presence(n, now);
    return 0;
}

/* ---- Lookups and buddies ------------------------------------------------------------------- */

static struct ovl_plookup *plk_add(struct ovl_node *n)
{
    if (n->nplk == n->plkcap) {
        uint32_t cap = n->plkcap ? n->plkcap * 2 : 4;
        struct ovl_plookup *p = realloc(n->plk, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        n->plk = p;
        n->plkcap = cap;
    }
    return &n->plk[n->nplk++];
}

static int plk_find(const struct ovl_node *n, uint32_t token)
{
    for (uint32_t i = 0; i < n->nplk; i++)
        if (n->plk[i].token == token)
            return (int)i;
    return -1;
}

static int ask(struct ovl_node *n, uint8_t rtype, const char *name,
               int buddy, uint64_t now, uint32_t token)
{
    struct ovl_plookup *p;
    struct ovl_msg m;
    int ret;

    if (n->primary == NULL || n->primary->dead)
        return -ENOTCONN;
    p = plk_add(n);
    if (p == NULL)
        return -ENOMEM;
    p->token = token;
    p->rtype = rtype;
    p->buddy = (int16_t)buddy;
    strcpy(p->name, name);
    ovl_record_key(p->key, rtype, name, strlen(name));
    p->started = now;
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_VALUE;
    m.flags = OVL_MF_SEARCH;
    memcpy(m.u.find_value.key, p->key, 32);
    ret = ovl__send_msg(n, n->primary, &m, OVL__OWN_SEARCH, token,
                        n->t.search_timeout, now);
    if (ret)
        n->nplk--;
    return ret;
}

int ovl__peer_lookup(struct ovl_node *n, uint8_t rtype, const char *name,
                     uint64_t now, uint32_t token)
{
    return ask(n, rtype, name, -1, now, token);
}

/* Reports a buddy's state if it changed. */
static void buddy_report(struct ovl_node *n, struct ovl_buddy *b,
                         const struct ovl_record *r, enum ovl_presence_state st)
{
    struct ovl_event *ev;

    if (r && b->state != OVL_PS_UNKNOWN && r->seq <= b->seq &&
        !(r->seq == b->seq && r->type == OVL_R_LASTSEEN &&
          b->state == OVL_PS_ONLINE))
        return;
    if (r == NULL && b->state == st && st != OVL_PS_UNKNOWN)
        return;
    ev = ovl__event(n, OVL_NEV_BUDDY);
    if (r) {
        ovl__event_from_record(ev, r);
        b->seq = r->seq;
        st = ev->state;
    } else {
        ev->rtype = OVL_R_PRESENCE;
        strcpy(ev->name, b->name);
        ev->state = st;
    }
    b->state = (uint8_t)st;
}

/* True if @m refuses a request for now (over the supernode's limits, or
 * out of resources there): worth asking again later. */
static bool is_busy(const struct ovl_msg *m)
{
    return m && m->type == OVL_M_ERROR && m->u.error.code == OVL_MERR_BUSY;
}

/* The supernode said busy: no paced request before the retry delay. */
static void hold_pace(struct ovl_node *n, uint64_t now)
{
    n->pace_hold = now + (uint64_t)OVL__BUSY_RETRY_MS * 1000000u;
    ovl__house_schedule(n, n->pace_hold);
}

static void lookup_answer(struct ovl_node *n, struct ovl_rpc *r,
                          const struct ovl_msg *m, uint64_t now)
{
    int i = plk_find(n, r->owner_id);
    struct ovl_plookup p;
    struct ovl_record rec;
    struct ovl_event *ev;
    bool have = false;

    if (i < 0)
        return;
    p = n->plk[i];
    n->plk[i] = n->plk[--n->nplk];
    if (m && m->type == OVL_M_VALUE && m->u.value.status == OVL_VALUE_FOUND) {
        /* The supernode is trusted to search, not to say what records
         * say: verify, and check it is the record we asked for. */
        have = ovl__verify(n, &rec, m->u.value.record, m->u.value.record_len,
                           now) == 0 &&
               memcmp(rec.key, p.key, 32) == 0;
    }
    if (p.buddy >= 0) {
        if (p.buddy < n->nbuddies && is_busy(m)) {
            n->buddies[p.buddy].need_ask = true; /* not a failure yet */
            hold_pace(n, now);
        } else if (p.buddy < n->nbuddies) {
            buddy_report(n, &n->buddies[p.buddy], have ? &rec : NULL,
                         m && m->type == OVL_M_VALUE ? OVL_PS_UNKNOWN
                                                     : OVL_PS_FAILED);
        }
        return;
    }
    ev = ovl__event(n, OVL_NEV_LOOKUP);
    ev->token = p.token;
    ev->started = p.started;
    if (have) {
        ovl__event_from_record(ev, &rec);
    } else {
        ev->rtype = p.rtype;
        strcpy(ev->name, p.name);
        ev->state = m && m->type == OVL_M_VALUE ? OVL_PS_UNKNOWN
                                                 : OVL_PS_FAILED;
        ev->status = ev->state == OVL_PS_UNKNOWN ? 0
                     : is_busy(m)                ? -EAGAIN
                                                 : -ETIMEDOUT;
    }
    if (m && m->type == OVL_M_VALUE) {
        ev->rounds = m->u.value.rounds;
        ev->messages = m->u.value.messages;
    }
}

static void subscribe(struct ovl_node *n, int bi, uint64_t now)
{
    struct ovl_buddy *b = &n->buddies[bi];
    struct ovl_msg m;

    b->renew_at = now + n->t.subscribe_ttl / 2;
    if (n->primary == NULL || n->primary->dead)
        return;
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_SUBSCRIBE;
    m.flags = OVL_MF_SEARCH;
    memcpy(m.u.subscribe.key, b->key, 32);
    m.u.subscribe.ttl_s = (uint16_t)(n->t.subscribe_ttl / OVL_NS_PER_SEC);
    if (m.u.subscribe.ttl_s == 0)
        m.u.subscribe.ttl_s = 1;
    ovl__send_msg(n, n->primary, &m, OVL__OWN_SUBSCRIBE, (uint32_t)bi,
                  n->t.search_timeout, now);
}

/* The pace of buddy requests to the primary (docs/protocol.md 4.13). */
static const struct ovl_rate pace = {OVL_NS_PER_SEC / OVL__PACE_PER_S,
                                     OVL__PACE_BURST};

/* Takes a token for one buddy request, unless the pace (or a "busy"
 * answer) says wait. */
static bool pace_take(struct ovl_node *n, uint64_t now)
{
    return now >= n->pace_hold && ovl__rate_take(&n->pace_tat, &pace, now);
}

/* When pace_take can next succeed. */
static uint64_t pace_next(const struct ovl_node *n, uint64_t now)
{
    uint64_t t = ovl__rate_next(n->pace_tat, &pace, now);

    return t > n->pace_hold ? t : n->pace_hold;
}

/*
 * Sends the buddy requests that are due (a resolution, a subscription or
 * its renewal), paced below the supernode's default limits: a peer with
 * hundreds of buddies would otherwise be refused most of them at every
 * login. Returns when it has more to do (OVL_NEVER: nothing).
 */
static uint64_t buddies_pump(struct ovl_node *n, uint64_t now)
{
    uint64_t next = OVL_NEVER;

    if (n->pstate != OVL__P_ATTACHED || n->primary == NULL ||
        n->role == OVL_ROLE_SUPERNODE)
        return OVL_NEVER;
    for (int i = 0; i < n->nbuddies; i++) {
        struct ovl_buddy *b = &n->buddies[i];

        if (b->need_ask) {
            if (!pace_take(n, now))
                return pace_next(n, now);
            b->need_ask = false;
            ask(n, OVL_R_PRESENCE, b->name, i, now, ++n->next_token);
        }
        if (now >= b->renew_at) {
            if (!pace_take(n, now))
                return pace_next(n, now);
            subscribe(n, i, now);
        }
        next = ovl__tmin(next, b->renew_at);
    }
    return next;
}

/* Every buddy is resolved and subscribed to afresh (a new primary). */
static void resolve_buddies(struct ovl_node *n, uint64_t now)
{
    for (int i = 0; i < n->nbuddies; i++) {
        n->buddies[i].need_ask = true;
        n->buddies[i].renew_at = now;
    }
    ovl__house_schedule(n, buddies_pump(n, now));
}

int ovl_node_buddy_add(struct ovl_node *n, const char *handle, uint64_t now)
{
    struct ovl_buddy *b;

    if (handle == NULL || !ovl_name_valid(handle, strlen(handle)))
        return -EINVAL;
    for (int i = 0; i < n->nbuddies; i++)
        if (strcmp(n->buddies[i].name, handle) == 0)
            return -EEXIST;
    if (n->nbuddies == OVL__BUDDIES_MAX)
        return -ENOSPC;
    b = realloc(n->buddies, (n->nbuddies + 1u) * sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    n->buddies = b;
    b = &n->buddies[n->nbuddies++];
    memset(b, 0, sizeof(*b));
    strcpy(b->name, handle);
    ovl_record_key(b->key, OVL_R_PRESENCE, handle, strlen(handle));
    b->need_ask = true;
    b->renew_at = now;
    ovl__house_schedule(n, buddies_pump(n, now));
    return 0;
}

/* A NOTIFY from our supernode (unsolicited, or answering a SUBSCRIBE). */
void ovl__peer_notify(struct ovl_node *n, struct ovl_link *l,
                      const struct ovl_msg *m, uint64_t now)
{
    struct ovl_record rec;

    if (l != n->primary || m->u.notify.record == NULL)
        return;
    if (ovl__verify(n, &rec, m->u.notify.record, m->u.notify.record_len,
                    now) != 0)
        return;
    for (int i = 0; i < n->nbuddies; i++)
        if (memcmp(n->buddies[i].key, m->u.notify.key, 32) == 0 &&
            memcmp(rec.key, m->u.notify.key, 32) == 0)
            buddy_report(n, &n->buddies[i], &rec, OVL_PS_UNKNOWN);
}

/* ---- Logout and promotion -------------------------------------------------------------------- */

static void logout_finish(struct ovl_node *n, uint64_t now)
{
    struct ovl_link *l, *next;

    n->pstate = OVL__P_OUT;
    while (n->attempts)
        attempt_free(n, n->attempts, false, false, now);
    if (n->primary) {
        l = n->primary;
        n->primary = NULL;
        ovl__link_unref(n, l);
    }
    for (l = n->links.next; l != &n->links; l = next) {
        next = l->next;
        ovl__link_close(n, l, now);
    }
    ovl__event(n, OVL_NEV_LOGGED_OUT);
}

int ovl_node_logout(struct ovl_node *n, uint64_t now)
{
    uint8_t rec[OVL_RECORD_MAX];
    struct ovl_record_params p;
    uint64_t wall = ovl__wall_s(n, now);
    int len;

    if (n->pstate == OVL__P_LOGGING_OUT || n->pstate == OVL__P_OUT)
        return -EALREADY;
    if (n->handle_len == 0 || !ovl_node_logged_in(n)) {
        logout_finish(n, now);
        return 0;
    }
    memset(&p, 0, sizeof(p));
    p.type = OVL_R_LASTSEEN;
    p.name = n->handle;
    p.name_len = n->handle_len;
    p.seq = ovl__next_seq(n, now);
    p.issued = wall;
    p.expires = wall + OVL_LASTSEEN_KEEP;
    p.last_seen = wall;
    p.cert = n->has_cert ? n->cert : NULL;
    len = ovl_record_build(rec, sizeof(rec), &p, n->id);
    n->pstate = OVL__P_LOGGING_OUT;
    n->logout_deadline = now + n->t.search_timeout;
    ovl__house_schedule(n, n->logout_deadline);
    if (len > 0)
        publish(n, rec, (size_t)len, OVL_R_LASTSEEN, now);
    if (n->role == OVL_ROLE_SUPERNODE)
        n->logout_deadline = now + 2 * n->t.rpc_timeout;
    return 0;
}

void ovl__promote(struct ovl_node *n, uint64_t now)
{
    struct ovl_link *l, *next;
    struct ovl_event *ev;

    if (n->role == OVL_ROLE_SUPERNODE)
        return;
    n->role = OVL_ROLE_SUPERNODE;
    n->pstate = OVL__P_IDLE;
    ev = ovl__event(n, OVL_NEV_ROLE_CHANGED);
    ev->role = OVL_ROLE_SUPERNODE;
    while (n->attempts)
        attempt_free(n, n->attempts, false, false, now);
    if (n->primary) {
        l = n->primary;
        n->primary = NULL;
        ovl__link_unref(n, l);
    }
    for (l = n->links.next; l != &n->links; l = next) {
        next = l->next;
        if (l->flags & OVL__LF_SIGNAL)
            ovl__link_close(n, l, now);
    }
    ovl__super_start(n, now);
}

/* ---- RPC answers ------------------------------------------------------------------------------ */

/* The supernode refused a publication as busy: sign and send it again
 * after the retry delay (presence, or the room that STORE carried). */
static void publish_retry(struct ovl_node *n, const struct ovl_rpc *r,
                          uint64_t now)
{
    uint64_t at = now + (uint64_t)OVL__BUSY_RETRY_MS * 1000000u;

    if (r->owner_id == OVL_R_PRESENCE && at < n->presence_refresh_at)
        n->presence_refresh_at = at;
    for (uint32_t i = 0; i < n->nrooms; i++)
        if (r->owner_id == OVL_R_ROOM && n->rooms[i].pub_rid == r->rid &&
            at < n->rooms[i].refresh_at)
            n->rooms[i].refresh_at = at;
    ovl__house_schedule(n, at);
}

void ovl__peer_rpc_done(struct ovl_node *n, struct ovl_rpc *r,
                        const struct ovl_msg *m, uint64_t now)
{
    switch (r->owner) {
    case OVL__OWN_ATTEMPT:
        attempt_rpc(n, r, m, now);
        return;
    case OVL__OWN_KEEPALIVE:
        return; /* any traffic counts; silence is judged by dead_after */
    case OVL__OWN_SEARCH:
        lookup_answer(n, r, m, now);
        return;
    case OVL__OWN_PUBLISH: {
        struct ovl_event *ev;

        if (n->pstate == OVL__P_LOGGING_OUT && r->owner_id == OVL_R_LASTSEEN) {
            logout_finish(n, now);
            return;
        }
        ev = ovl__event(n, OVL_NEV_PUBLISHED);
        ev->rtype = (uint8_t)r->owner_id;
        if (m && m->type == OVL_M_STORE_OK &&
            m->u.store_ok.status <= OVL_STORE_DUPLICATE) {
            ev->replicas = m->u.store_ok.replicas;
            ev->seq = m->u.store_ok.seq;
        } else if (is_busy(m)) {
            ev->status = -EAGAIN;
            publish_retry(n, r, now);
        } else {
            ev->status = m == NULL ? -ETIMEDOUT
                         : m->type == OVL_M_STORE_OK &&
                                 m->u.store_ok.status == OVL_STORE_UNAUTHORIZED
                             ? -EPERM
                             : -EIO;
        }
        return;
    }
    case OVL__OWN_HOSTCACHE:
        if (m && m->type == OVL_M_HOSTCACHE)
            for (int i = 0; i < m->u.contacts.count; i++)
                ovl_hc_add(&n->hc, &m->u.contacts.contacts[i],
                           ovl__wall_s(n, now));
        return;
    case OVL__OWN_SUBSCRIBE:
        if (m && m->type == OVL_M_NOTIFY && r->link == n->primary)
            ovl__peer_notify(n, r->link, m, now);
        if (is_busy(m) && r->owner_id < n->nbuddies) {
            n->buddies[r->owner_id].renew_at = now;
            hold_pace(n, now);
        }
        return;
    case OVL__OWN_REACH:
        if (m && m->type == OVL_M_REACH_OK &&
            (m->u.reach.result & OVL_REACH_KNOWN) == OVL_REACH_KNOWN) {
            ovl__promote(n, now);
            return;
        }
        /* Not reachable: ask again after another period. No verdict (a
         * busy or silent supernode): ask again in a minute. */
        n->reach_asked = false;
        n->promote_at = now + (m == NULL || is_busy(m)
                                   ? ovl__tmin(n->t.promote_uptime, 60 * OVL_NS_PER_SEC)
                                   : n->t.promote_uptime);
        ovl__house_schedule(n, n->promote_at);
        return;
    default:
        return;
    }
}

/* ---- Housekeeping ------------------------------------------------------------------------------ */

static void ask_reach(struct ovl_node *n, uint64_t now)
{
    struct ovl_msg m;

    n->reach_asked = true;
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_REACH_PROBE;
    ovl__self_contact(n, &m.u.reach.target);
    ovl__send_msg(n, n->primary, &m, OVL__OWN_REACH, 0,
                  2 * (n->t.probe_timeout + n->t.tcp_timeout) +
                      n->t.rpc_timeout,
                  now);
}

void ovl__peer_house(struct ovl_node *n, uint64_t now)
{
    uint64_t next = OVL_NEVER;

    if (n->pstate == OVL__P_LOGGING_OUT) {
        if (now >= n->logout_deadline)
            logout_finish(n, now);
        else
            next = n->logout_deadline;
    } else if (n->role == OVL_ROLE_SUPERNODE) {
        /* A supernode's own records: refreshed here, stored directly. */
        if (n->joined && n->handle_len) {
            if (now >= n->presence_refresh_at)
                ovl__publish_presence(n, now);
            next = n->presence_refresh_at;
        }
    } else if (n->pstate == OVL__P_BACKOFF) {
        if (now >= n->retry_at)
            start_round(n, now);
        else
            next = n->retry_at;
    } else if (n->pstate == OVL__P_ATTACHED && n->primary) {
        if (now >= n->presence_refresh_at)
            ovl__publish_presence(n, now);
        next = ovl__tmin(next, n->presence_refresh_at);
        if (now >= n->hostcache_at) {
            struct ovl_msg m;

            memset(&m, 0, sizeof(m));
            m.type = OVL_M_HOSTCACHE_GET;
            m.u.hostcache_get.max = OVL_CONTACTS_MAX;
            ovl__send_msg(n, n->primary, &m, OVL__OWN_HOSTCACHE, 0,
                          n->t.rpc_timeout * 3, now);
            n->hostcache_at = now + n->t.hostcache_refresh;
        }
        next = ovl__tmin(next, n->hostcache_at);
        next = ovl__tmin(next, buddies_pump(n, now));
        if (n->attempts == NULL && count_fallbacks(n) < n->fallbacks) {
            if (now >= n->retry_at) {
                struct ovl_contact c;

                if (pick(n, &c, 1) == 1)
                    attempt_start(n, &c, true, now);
                /* Refill slowly: one candidate per backoff_max / 4. */
                n->retry_at = now + n->t.backoff_max / 4;
            }
            next = ovl__tmin(next, n->retry_at);
        }
        if (n->mode == OVL_ROLE_MODE_AUTO && !n->reach_asked) {
            if (now >= n->promote_at)
                ask_reach(n, now);
            else
                next = ovl__tmin(next, n->promote_at);
        }
    }
    next = ovl__tmin(next, rooms_house(n, now));
    if (next != OVL_NEVER)
        ovl__house_schedule(n, next);
}

void ovl__peer_free(struct ovl_node *n)
{
    while (n->attempts) {
        struct ovl_attempt *a = n->attempts;

        n->attempts = a->next;
        ovl__link_unref(n, a->udp);
        ovl__link_unref(n, a->tcp);
        free(a);
    }
    if (n->primary) {
        ovl__link_unref(n, n->primary);
        n->primary = NULL;
    }
    free(n->plk);
    n->plk = NULL;
}
