/*
 * ovl_link.c: how overlay messages travel. A link is this node's view of
 * one remote node over one transport: over UDP (at most one per remote,
 * found by node id) or over one TCP connection. In crypto mode a link has
 * up to two secure sessions (ovl_secure.h): the one we initiated and the
 * one the remote initiated; either carries messages once it can send. In
 * plaintext mode (simulations only) messages travel in OVL_PLAIN_TYPE
 * frames instead. Requests are RPCs with a random id and a timeout.
 *
 * Handshake payloads (docs/protocol.md 2.3): an INIT carries
 * LE16 length || one overlay message || zero padding to OVL__APP_PAD
 * bytes, so that the RESP (never longer than its INIT) can carry the
 * answer: LE16 length || message. Later messages are DATA payloads, one
 * message each.
 */
#include "ovl_node_internal.h"

#include <stdlib.h>

#include <sodium.h>

static void link_flush(struct ovl_node *n, struct ovl_link *l, uint64_t now);
static void conn_bound(struct ovl_node *n, struct ovl_conn *c);

/* ---- Tables --------------------------------------------------------------------- */

static uint32_t id_hash(const uint8_t id[32])
{
    return ovl_load_le32(id);
}

int ovl__transport_init(struct ovl_node *n, uint32_t max_sessions,
                        const struct ovl_limits *lim)
{
    struct ovl_endpoint_config ec;
    int ret;

    n->udp_mask = 15;
    n->udp_tab = calloc(n->udp_mask + 1, sizeof(*n->udp_tab));
    n->rpc_mask = 15;
    n->rpc_tab = calloc(n->rpc_mask + 1, sizeof(*n->rpc_tab));
    if (n->udp_tab == NULL || n->rpc_tab == NULL)
        return -ENOMEM;
    n->next_conn = 1;
    if (n->plain)
        return 0;
    n->ep = calloc(1, sizeof(*n->ep));
    if (n->ep == NULL)
        return -ENOMEM;
    memset(&ec, 0, sizeof(ec));
    ec.identity = n->id;
    ec.rng = n->rng;
    ec.responder = true;
    if (max_sessions == 0)
        max_sessions = n->mode == OVL_ROLE_MODE_PEER ? 16 : 1024;
    ec.max_sessions = max_sessions;
    ec.max_peers = max_sessions;
    if (lim)
        ec.limits = *lim;
    ret = ovl_endpoint_init(n->ep, &ec);
    if (ret) {
        free(n->ep);
        n->ep = NULL;
    }
    return ret;
}

static void sess_free(struct ovl_sess *s)
{
    if (s == NULL)
        return;
    ovl_session_close(&s->s);
    free(s);
}

static void pending_clear(struct ovl_link *l)
{
    while (l->pq) {
        struct ovl_pending *p = l->pq;

        l->pq = p->next;
        free(p);
    }
    l->pq_tail = &l->pq;
    l->npending = 0;
}

static void link_destroy(struct ovl_link *l)
{
    sess_free(l->out);
    sess_free(l->in);
    pending_clear(l);
    free(l->presence);
    free(l);
}

void ovl__transport_close(struct ovl_node *n)
{
    struct ovl_link *l, *next;

    if (n->rpc_tab) {
        for (uint32_t i = 0; i <= n->rpc_mask; i++) {
            while (n->rpc_tab[i]) {
                struct ovl_rpc *r = n->rpc_tab[i];

                n->rpc_tab[i] = r->hnext;
                /* Releases closed links only RPCs still held. */
                ovl__rpc_free(n, r);
            }
        }
        free(n->rpc_tab);
        n->rpc_tab = NULL;
    }
    for (l = n->links.next; l && l != &n->links; l = next) {
        next = l->next;
        link_destroy(l);
    }
    n->links.next = n->links.prev = &n->links;
    while (n->conns) {
        struct ovl_conn *c = n->conns;

        n->conns = c->next;
        free(c);
    }
    free(n->udp_tab);
    n->udp_tab = NULL;
    if (n->ep) {
        ovl_endpoint_close(n->ep);
        free(n->ep);
        n->ep = NULL;
    }
    sodium_memzero(&n->hs, sizeof(n->hs));
}

static void udp_grow(struct ovl_node *n)
{
    uint32_t mask = n->udp_mask * 2 + 1;
    struct ovl_link **t = calloc(mask + 1, sizeof(*t));

    if (t == NULL)
        return;
    for (uint32_t i = 0; i <= n->udp_mask; i++) {
        while (n->udp_tab[i]) {
            struct ovl_link *l = n->udp_tab[i];

            n->udp_tab[i] = l->hnext;
            l->hnext = t[id_hash(l->node_id) & mask];
            t[id_hash(l->node_id) & mask] = l;
        }
    }
    free(n->udp_tab);
    n->udp_tab = t;
    n->udp_mask = mask;
}

struct ovl_link *ovl__link_find_udp(struct ovl_node *n, const uint8_t id[32])
{
    struct ovl_link *l = n->udp_tab[id_hash(id) & n->udp_mask];

    while (l && memcmp(l->node_id, id, 32) != 0)
        l = l->hnext;
    return l;
}

static void udp_unhash(struct ovl_node *n, struct ovl_link *l)
{
    struct ovl_link **p = &n->udp_tab[id_hash(l->node_id) & n->udp_mask];

    while (*p && *p != l)
        p = &(*p)->hnext;
    if (*p)
        *p = l->hnext;
    l->hnext = NULL;
}

/* A fresh link (UDP when @conn is NULL). */
static struct ovl_link *link_new(struct ovl_node *n,
                                 const uint8_t identity[32],
                                 const struct ovl_addr *addr,
                                 struct ovl_conn *conn, uint64_t now)
{
    struct ovl_link *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    ovl__timer_init(&l->timer, OVL__T_LINK);
    memcpy(l->identity, identity, 32);
    ovl_node_id(l->node_id, identity);
    l->addr = *addr;
    l->conn = conn;
    l->pq_tail = &l->pq;
    l->created = l->last_rx = l->last_tx = l->last_app = now;
    l->next = &n->links;
    l->prev = n->links.prev;
    n->links.prev->next = l;
    n->links.prev = l;
    n->nlinks++;
    if (conn) {
        conn->link = l;
        conn_bound(n, conn);
    } else {
        uint32_t h = id_hash(l->node_id) & n->udp_mask;

        l->hnext = n->udp_tab[h];
        n->udp_tab[h] = l;
        if (n->nlinks > (n->udp_mask + 1) * 2)
            udp_grow(n);
    }
    ovl__link_schedule(n, l);
    return l;
}

void ovl__link_ref(struct ovl_link *l)
{
    l->refs++;
}

void ovl__link_unref(struct ovl_node *n, struct ovl_link *l)
{
    (void)n;
    if (l == NULL)
        return;
    if (l->refs)
        l->refs--;
    if (l->refs == 0 && l->dead)
        link_destroy(l);
}

struct ovl_link *ovl__link_udp(struct ovl_node *n, const struct ovl_contact *c,
                               uint64_t now)
{
    struct ovl_link *l = ovl__link_find_udp(n, c->node_id);

    if (l) {
        /* Until we heard from it, the address we were told is all we have;
         * after that, authenticated traffic decides (roaming). */
        if (l->in == NULL && l->out == NULL && !n->plain &&
            l->last_rx == l->created)
            l->addr = c->udp;
        return l;
    }
    return link_new(n, c->identity, &c->udp, NULL, now);
}

/* ---- Connections ------------------------------------------------------------------ */

struct ovl_conn *ovl__conn_find(struct ovl_node *n, uint32_t id)
{
    struct ovl_conn *c;

    for (c = n->conns; c && c->id != id; c = c->next)
        ;
    return c;
}

/* An accepted connection now carries an authenticated sender (a link is
 * bound to it): the accept timeout and the cap no longer apply. */
static void conn_bound(struct ovl_node *n, struct ovl_conn *c)
{
    if (!c->unauth)
        return;
    c->unauth = false;
    n->nunauth--;
    ovl__timer_set(n, &c->timer, OVL_NEVER);
}

static void conn_free(struct ovl_node *n, struct ovl_conn *c)
{
    struct ovl_conn **p = &n->conns;

    conn_bound(n, c); /* leaves the count and the timer heap */
    while (*p && *p != c)
        p = &(*p)->next;
    if (*p)
        *p = c->next;
    free(c);
}

/* Closes an accepted connection that never authenticated anyone. */
static void conn_drop_unauth(struct ovl_node *n, struct ovl_conn *c)
{
    n->stats.conns_unauth_closed++;
    ovl__out_tcp(n, OVL_OUT_TCP_CLOSE, c->id, NULL, NULL, 0);
    conn_free(n, c);
}

/* The unauthenticated accepted connection accepted longest ago. */
static struct ovl_conn *oldest_unauth(struct ovl_node *n)
{
    struct ovl_conn *old = NULL;

    for (struct ovl_conn *c = n->conns; c; c = c->next)
        if (c->unauth && (old == NULL || c->accepted <= old->accepted))
            old = c;
    return old;
}

/*
 * A connection the driver accepted. Until a sender authenticates on it
 * (a link is bound: a verified handshake INIT, or a plaintext frame in
 * simulations) it costs memory and buys nothing, so it is closed after
 * accept_timeout, whether silent or trickling bytes (slow loris), and at
 * most max_unauth of them exist: a newcomer beyond that closes the oldest,
 * so a flood of idle connections cannot lock out real logins for longer
 * than it takes them to complete a handshake.
 */
uint32_t ovl__conn_accept(struct ovl_node *n, const struct ovl_addr *from,
                          uint64_t now)
{
    struct ovl_conn *c;

    if (n->nunauth >= n->max_unauth && (c = oldest_unauth(n)) != NULL)
        conn_drop_unauth(n, c);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return 0;
    /* Accepted connections get even ids, ours odd ones. */
    n->next_conn += 2;
    c->id = n->next_conn & ~1u;
    if (c->id == 0)
        c->id = n->next_conn += 2;
    c->connected = true;
    c->addr = *from;
    c->accepted = now;
    ovl_stream_init(&c->st, c->buf, sizeof(c->buf));
    c->next = n->conns;
    n->conns = c;
    c->unauth = true;
    n->nunauth++;
    ovl__timer_init(&c->timer, OVL__T_CONN);
    ovl__timer_set(n, &c->timer, now + n->t.accept_timeout);
    return c->id;
}

void ovl__conn_timer(struct ovl_node *n, struct ovl_conn *c, uint64_t now)
{
    (void)now;
    if (c->unauth && c->link == NULL)
        conn_drop_unauth(n, c);
}

struct ovl_link *ovl__link_tcp(struct ovl_node *n,
                               const struct ovl_contact *c, uint16_t port,
                               uint64_t now)
{
    struct ovl_conn *conn = calloc(1, sizeof(*conn));
    struct ovl_link *l;

    if (conn == NULL)
        return NULL;
    ovl__timer_init(&conn->timer, OVL__T_CONN); /* never armed: ours */
    conn->id = n->next_conn | 1u;
    n->next_conn += 2;
    conn->outgoing = true;
    conn->addr = c->udp;
    conn->addr.port = port;
    ovl_stream_init(&conn->st, conn->buf, sizeof(conn->buf));
    conn->next = n->conns;
    n->conns = conn;
    l = link_new(n, c->identity, &conn->addr, conn, now);
    if (l == NULL) {
        conn_free(n, conn);
        return NULL;
    }
    ovl__out_tcp(n, OVL_OUT_TCP_CONNECT, conn->id, &conn->addr, NULL, 0);
    return l;
}

void ovl__conn_connected(struct ovl_node *n, struct ovl_conn *c, uint64_t now)
{
    if (!c->outgoing || c->connected)
        return;
    c->connected = true;
    /* What waited for the connection (a LOGIN, a PING) goes out now. */
    if (c->link)
        link_flush(n, c->link, now);
}

void ovl__conn_closed(struct ovl_node *n, struct ovl_conn *c, uint64_t now)
{
    struct ovl_link *l = c->link;

    if (l) {
        c->link = NULL;
        l->conn = NULL; /* no TCP_CLOSE output: it is closed already */
        ovl__link_close(n, l, now);
    }
    conn_free(n, c);
}

/* ---- Sending ------------------------------------------------------------------------- */

/* Puts a secure-session or plaintext message on the link's transport. */
static void transmit(struct ovl_node *n, struct ovl_link *l,
                     const uint8_t *msg, size_t len)
{
    if (l->conn) {
        int flen;

        /* A message built in place behind the prefix only needs the
         * prefix (ovl_stream_frame would memcpy onto itself). */
        if (msg == n->txbuf + OVL_STREAM_PREFIX && len <= OVL_STREAM_MAX) {
            ovl_store_be16(n->txbuf, (uint16_t)len);
            flen = (int)(len + OVL_STREAM_PREFIX);
        } else {
            flen = ovl_stream_frame(n->txbuf, sizeof(n->txbuf), msg, len);
        }
        if (flen > 0)
            ovl__out_tcp(n, OVL_OUT_TCP_SEND, l->conn->id, NULL, n->txbuf,
                         (size_t)flen);
    } else {
        ovl__out_udp(n, &l->addr, msg, len);
    }
}

/* The session to send on: of those that can, the one we last heard on
 * (after a remote restart its new session is the live one). */
static struct ovl_sess *sendable(const struct ovl_link *l, uint64_t now)
{
    bool o = l->out && ovl_session_can_send(&l->out->s, now);
    bool i = l->in && ovl_session_can_send(&l->in->s, now);

    if (o && i)
        return l->in->last_rx > l->out->last_rx ? l->in : l->out;
    return o ? l->out : i ? l->in : NULL;
}

static int queue_msg(struct ovl_link *l, const uint8_t *msg, size_t len)
{
    struct ovl_pending *p;

    if (l->npending >= OVL__PENDING_MAX)
        return -ENOBUFS;
    p = malloc(sizeof(*p) + len);
    if (p == NULL)
        return -ENOMEM;
    p->next = NULL;
    p->len = (uint16_t)len;
    memcpy(p->msg, msg, len);
    *l->pq_tail = p;
    l->pq_tail = &p->next;
    l->npending++;
    return 0;
}

static struct ovl_pending *queue_pop(struct ovl_link *l)
{
    struct ovl_pending *p = l->pq;

    if (p) {
        l->pq = p->next;
        if (l->pq == NULL)
            l->pq_tail = &l->pq;
        l->npending--;
    }
    return p;
}

static uint8_t *tx_area(struct ovl_node *n)
{
    /* Leave room for the TCP prefix in front (transmit copies, but
     * keeping the message at a fixed offset keeps the code simple). */
    return n->txbuf + OVL_STREAM_PREFIX;
}

/* Seals @msg on @s and transmits it. */
static int seal_send(struct ovl_node *n, struct ovl_link *l,
                     struct ovl_sess *s, const uint8_t *msg, size_t len,
                     uint64_t now)
{
    uint8_t sealed[OVL__DGRAM_MAX];
    size_t slen;
    int ret;

    ret = ovl_session_seal(&s->s, msg, len, now, sealed, sizeof(sealed),
                           &slen);
    if (ret)
        return ret;
    transmit(n, l, sealed, slen);
    return 0;
}

/*
 * A responder takes one INIT per initiator key per OVL_INIT_MIN_INTERVAL,
 * with strictly newer (whitened, OVL_TIMESTAMP_GRANULE) timestamps
 * (docs/protocol.md 1.7). A peer's login ladder opens a TCP session right
 * after its UDP probe's handshake to the same supernode; on a LAN that is
 * a millisecond later and the supernode would drop it. So an INIT waits
 * until INIT_SPACING after our last INIT to the same key on another link.
 */
#define INIT_SPACING (OVL_INIT_MIN_INTERVAL + OVL_TIMESTAMP_GRANULE + OVL_NS_PER_SEC / 250)

/* Whether our INIT on @l must wait; if so, l->init_not_before says when. */
static bool init_deferred(struct ovl_node *n, struct ovl_link *l, uint64_t now)
{
    uint64_t last = 0;

    if (l->init_not_before > now)
        return true;
    for (struct ovl_link *o = n->links.next; o && o != &n->links; o = o->next)
        if (o != l && o->init_at > last && memcmp(o->identity, l->identity, 32) == 0)
            last = o->init_at;
    if (last == 0 || now >= last + INIT_SPACING)
        return false;
    l->init_not_before = last + INIT_SPACING;
    return true;
}

/* Starts our session to @l's node, carrying @msg (or nothing) in the INIT. */
static int initiate(struct ovl_node *n, struct ovl_link *l, const uint8_t *msg,
                    size_t len, uint64_t now)
{
    uint8_t app[OVL__APP_PAD], caddr[OVL_ADDR_COMPACT_MAX];
    uint8_t *out = tx_area(n);
    struct ovl_sess *s;
    size_t clen, olen;
    int ret;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->link = l;
    ret = ovl_session_init(&s->s, n->ep, l->identity);
    if (ret) {
        free(s);
        return ret;
    }
    memset(app, 0, sizeof(app));
    if (msg) {
        app[0] = (uint8_t)len;
        app[1] = (uint8_t)(len >> 8);
        memcpy(app + 2, msg, len);
    }
    clen = ovl_addr_compact(caddr, &l->addr);
    ret = ovl_session_connect(&s->s, caddr, clen, l->conn != NULL, app,
                              sizeof(app), now + n->wall_offset, now, out,
                              OVL__DGRAM_MAX, &olen);
    if (ret) {
        sess_free(s);
        return ret;
    }
    l->out = s;
    l->init_at = now;
    n->stats.handshakes++;
    transmit(n, l, out, olen);
    return 0;
}

static void plain_send(struct ovl_node *n, struct ovl_link *l,
                       const uint8_t *msg, size_t len)
{
    uint8_t frame[sizeof(struct ovl_plainw_head) + OVL_MSG_MAX];
    struct ovl_plainw_head *h = (struct ovl_plainw_head *)frame;

    memset(h, 0, sizeof(*h));
    h->type = OVL_PLAIN_TYPE;
    h->version = OVL_MSG_VERSION;
    memcpy(h->sender, n->id->ed_pk, 32);
    memcpy(frame + sizeof(*h), msg, len);
    transmit(n, l, frame, sizeof(*h) + len);
}

int ovl__link_send(struct ovl_node *n, struct ovl_link *l,
                   const uint8_t *msg, size_t len, uint64_t now)
{
    struct ovl_sess *s;
    int ret;

    if (l->dead)
        return -ENOTCONN;
    if (len > OVL_MSG_MAX)
        return -EMSGSIZE;
    n->stats.tx_msgs++;
    l->last_tx = l->last_app = now;
    if (l->conn && !l->conn->connected)
        return queue_msg(l, msg, len);
    if (n->plain) {
        plain_send(n, l, msg, len);
        return 0;
    }
    if (l->npending == 0 && (s = sendable(l, now)) != NULL) {
        ret = seal_send(n, l, s, msg, len, now);
        ovl__link_schedule(n, l);
        return ret;
    }
    /* No session can carry it yet. Start ours unless one is under way in
     * either direction (the remote's will be confirmed shortly). */
    if (l->out == NULL && l->in == NULL) {
        if (init_deferred(n, l, now)) {
            ret = queue_msg(l, msg, len);
            ovl__link_schedule(n, l);
            return ret;
        }
        if (len + 2 <= OVL__APP_PAD)
            ret = initiate(n, l, msg, len, now);
        else if ((ret = queue_msg(l, msg, len)) == 0)
            ret = initiate(n, l, NULL, 0, now);
        ovl__link_schedule(n, l);
        return ret;
    }
    return queue_msg(l, msg, len);
}

/* Sends what waited for a session (or for the connection). */
static void link_flush(struct ovl_node *n, struct ovl_link *l, uint64_t now)
{
    struct ovl_pending *p;
    struct ovl_sess *s;

    if (l->dead || (l->conn && !l->conn->connected))
        return;
    if (n->plain) {
        while ((p = queue_pop(l)) != NULL) {
            plain_send(n, l, p->msg, p->len);
            free(p);
        }
        return;
    }
    if (l->pq && l->out == NULL && l->in == NULL) {
        if (init_deferred(n, l, now)) {
            ovl__link_schedule(n, l);
            return;
        }
        /* Queued while the connection was being set up. */
        p = queue_pop(l);
        if (p->len + 2 <= OVL__APP_PAD) {
            initiate(n, l, p->msg, p->len, now);
        } else {
            l->npending++; /* put it back in front */
            p->next = l->pq;
            l->pq = p;
            if (l->pq_tail == &l->pq)
                l->pq_tail = &p->next;
            initiate(n, l, NULL, 0, now);
            p = NULL;
        }
        free(p);
        ovl__link_schedule(n, l);
        return;
    }
    while (l->pq && (s = sendable(l, now)) != NULL) {
        p = queue_pop(l);
        seal_send(n, l, s, p->msg, p->len, now);
        free(p);
    }
    ovl__link_schedule(n, l);
}

/* ---- RPCs ------------------------------------------------------------------------------ */

static void rpc_grow(struct ovl_node *n)
{
    uint32_t mask = n->rpc_mask * 2 + 1;
    struct ovl_rpc **t = calloc(mask + 1, sizeof(*t));

    if (t == NULL)
        return;
    for (uint32_t i = 0; i <= n->rpc_mask; i++) {
        while (n->rpc_tab[i]) {
            struct ovl_rpc *r = n->rpc_tab[i];

            n->rpc_tab[i] = r->hnext;
            r->hnext = t[r->rid & mask];
            t[r->rid & mask] = r;
        }
    }
    free(n->rpc_tab);
    n->rpc_tab = t;
    n->rpc_mask = mask;
}

static struct ovl_rpc **rpc_slot(struct ovl_node *n, uint32_t rid)
{
    struct ovl_rpc **p = &n->rpc_tab[rid & n->rpc_mask];

    while (*p && (*p)->rid != rid)
        p = &(*p)->hnext;
    return p;
}

static void rpc_unhash(struct ovl_node *n, struct ovl_rpc *r)
{
    struct ovl_rpc **p = rpc_slot(n, r->rid);

    if (*p == r) {
        *p = r->hnext;
        n->nrpc--;
    }
    ovl__timer_set(n, &r->timer, OVL_NEVER);
}

struct ovl_rpc *ovl__rpc_take(struct ovl_node *n, uint32_t rid,
                              const uint8_t from[32])
{
    struct ovl_rpc *r = *rpc_slot(n, rid);

    /* Only the node we asked may answer (the session authenticated it). */
    if (r == NULL || memcmp(r->peer_id, from, 32) != 0)
        return NULL;
    rpc_unhash(n, r);
    return r;
}

void ovl__rpc_free(struct ovl_node *n, struct ovl_rpc *r)
{
    ovl__link_unref(n, r->link);
    free(r);
}

static void rpc_fail(struct ovl_node *n, struct ovl_rpc *r, uint64_t now)
{
    switch (r->owner) {
    case OVL__OWN_OP:
    case OVL__OWN_RTPING:
    case OVL__OWN_RELAY:
    case OVL__OWN_DIAL:
        ovl__super_rpc_done(n, r, NULL, now);
        break;
    case OVL__OWN_NONE:
        break;
    default:
        ovl__peer_rpc_done(n, r, NULL, now);
        break;
    }
}

void ovl__rpc_timeout(struct ovl_node *n, struct ovl_rpc *r, uint64_t now)
{
    struct ovl_link *l = r->link;

    rpc_unhash(n, r);
    n->stats.rpc_timeouts++;
    rpc_fail(n, r, now);
    /* Repeated silence on a link: its session may be stale (the remote
     * restarted); close it so the next message starts afresh. */
    if (l && !l->dead && ++l->rpc_fails >= 3 &&
        !(l->flags & (OVL__LF_SIGNAL | OVL__LF_ATTACHED)))
        ovl__link_close(n, l, now);
    ovl__rpc_free(n, r);
}

void ovl__rpc_cancel_owner(struct ovl_node *n, uint8_t owner,
                           uint32_t owner_id)
{
    for (uint32_t i = 0; i <= n->rpc_mask; i++) {
        struct ovl_rpc **p = &n->rpc_tab[i];

        while (*p) {
            struct ovl_rpc *r = *p;

            if (r->owner == owner && r->owner_id == owner_id) {
                *p = r->hnext;
                n->nrpc--;
                ovl__timer_set(n, &r->timer, OVL_NEVER);
                ovl__rpc_free(n, r);
            } else {
                p = &r->hnext;
            }
        }
    }
}

/* Fails every RPC sent over @l at once (its link is gone). */
static void rpc_fail_link(struct ovl_node *n, struct ovl_link *l,
                          uint64_t now)
{
    for (;;) {
        struct ovl_rpc *found = NULL;

        for (uint32_t i = 0; i <= n->rpc_mask && !found; i++)
            for (struct ovl_rpc *r = n->rpc_tab[i]; r && !found; r = r->hnext)
                if (r->link == l)
                    found = r;
        if (found == NULL)
            return;
        rpc_unhash(n, found);
        rpc_fail(n, found, now);
        ovl__rpc_free(n, found);
    }
}

static bool is_dht_request(const struct ovl_msg *m)
{
    switch (m->type) {
    case OVL_M_PING:
    case OVL_M_HOSTCACHE_GET:
    case OVL_M_FIND_NODE:
    case OVL_M_REACH_PROBE:
        return true;
    case OVL_M_FIND_VALUE:
    case OVL_M_STORE:
    case OVL_M_SUBSCRIBE:
        return !(m->flags & OVL_MF_SEARCH);
    default:
        return false;
    }
}

int ovl__send_msg(struct ovl_node *n, struct ovl_link *l, struct ovl_msg *m,
                  uint8_t owner, uint32_t owner_id, uint64_t timeout,
                  uint64_t now)
{
    uint8_t buf[OVL_MSG_MAX];
    struct ovl_rpc *r = NULL;
    int len, ret;

    if (l == NULL || l->dead)
        return -ENOTCONN;
    if (ovl_mtype_is_request(m->type)) {
        if (n->role == OVL_ROLE_SUPERNODE && is_dht_request(m))
            m->flags |= OVL_MF_DHT_MEMBER;
        do {
            m->rid = ovl__random32(n);
        } while (*rpc_slot(n, m->rid) != NULL);
    }
    len = ovl_msg_encode(m, buf, sizeof(buf));
    if (len < 0)
        return len;
    if (ovl_mtype_is_request(m->type) && owner != OVL__OWN_NONE) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return -ENOMEM;
        ovl__timer_init(&r->timer, OVL__T_RPC);
        r->rid = m->rid;
        r->type = m->type;
        r->owner = owner;
        r->owner_id = owner_id;
        r->link = l;
        ovl__link_ref(l);
        memcpy(r->peer_id, l->node_id, 32);
        r->sent = now;
        r->hnext = n->rpc_tab[r->rid & n->rpc_mask];
        n->rpc_tab[r->rid & n->rpc_mask] = r;
        n->nrpc++;
        if (n->nrpc > (n->rpc_mask + 1) * 2)
            rpc_grow(n);
        ovl__timer_set(n, &r->timer, now + timeout);
        n->stats.rpc_sent++;
    }
    ret = ovl__link_send(n, l, buf, (size_t)len, now);
    if (ret && r) {
        rpc_unhash(n, r);
        ovl__rpc_free(n, r);
    }
    return ret;
}

/* ---- Closing and timers ---------------------------------------------------------------- */

void ovl__link_close(struct ovl_node *n, struct ovl_link *l, uint64_t now)
{
    if (l->dead)
        return;
    l->dead = true;
    ovl__link_ref(l); /* keep it while the owners hear about it */
    ovl__timer_set(n, &l->timer, OVL_NEVER);
    if (l->conn) {
        ovl__out_tcp(n, OVL_OUT_TCP_CLOSE, l->conn->id, NULL, NULL, 0);
        l->conn->link = NULL;
        conn_free(n, l->conn);
        l->conn = NULL;
    } else {
        udp_unhash(n, l);
    }
    sess_free(l->out);
    sess_free(l->in);
    l->out = l->in = NULL;
    pending_clear(l);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = l;
    n->nlinks--;
    rpc_fail_link(n, l, now);
    ovl__peer_link_closed(n, l, now);
    ovl__super_link_closed(n, l, now);
    ovl__link_unref(n, l);
}

void ovl__link_schedule(struct ovl_node *n, struct ovl_link *l)
{
    uint64_t due = OVL_NEVER, last = l->last_app;

    if (l->dead)
        return;
    if (l->out)
        due = ovl__tmin(due, ovl_session_next_timer(&l->out->s));
    if (l->in)
        due = ovl__tmin(due, ovl_session_next_timer(&l->in->s));
    if (l->out == NULL && l->in == NULL && l->pq && l->init_not_before)
        due = ovl__tmin(due, l->init_not_before);
    if (l->flags & OVL__LF_SIGNAL) {
        due = ovl__tmin(due, l->ping_due);
        due = ovl__tmin(due, l->last_rx + n->t.dead_after);
    } else if (l->flags & OVL__LF_ATTACHED) {
        due = ovl__tmin(due, l->last_rx + n->t.peer_timeout);
    } else {
        due = ovl__tmin(due, last + n->t.link_idle);
    }
    if (due != l->timer.due)
        ovl__timer_set(n, &l->timer, due);
}

/* Runs one session's timers; returns false if the session is finished. */
static bool sess_timers(struct ovl_node *n, struct ovl_link *l,
                        struct ovl_sess *s, uint64_t now)
{
    uint8_t out[OVL__DGRAM_MAX];
    uint32_t ev = 0;
    size_t len;

    for (int i = 0; i < 4; i++) {
        len = 0;
        if (ovl_session_timers(&s->s, now, out, sizeof(out), &len, &ev) != 0 ||
            len == 0)
            break;
        if (out[0] == OVL_MSG_INIT) /* a retry or a rekey: spacing counts it */
            l->init_at = now;
        transmit(n, l, out, len);
    }
    return !(ev & (OVL_EV_HANDSHAKE_FAILED | OVL_EV_EXPIRED));
}

void ovl__link_timer(struct ovl_node *n, struct ovl_link *l, uint64_t now)
{
    uint64_t last = l->last_app;

    if (l->dead)
        return;
    if (l->out && !sess_timers(n, l, l->out, now)) {
        sess_free(l->out);
        l->out = NULL;
    }
    if (l->in && !sess_timers(n, l, l->in, now)) {
        sess_free(l->in);
        l->in = NULL;
    }
    /* Sessions gone with messages waiting: start afresh. */
    if (!n->plain && l->out == NULL && l->in == NULL && l->npending &&
        !(l->conn && !l->conn->connected))
        link_flush(n, l, now);
    /* A crypto link whose sessions all ended is useless; so is a quiet
     * link nobody keeps. Signalling links are watched by their owners. */
    if (!n->plain && l->out == NULL && l->in == NULL && l->npending == 0 &&
        now > l->created + OVL_NS_PER_SEC / 10 &&
        !(l->conn && !l->conn->connected)) {
        ovl__link_close(n, l, now);
        return;
    }
    if (l->flags & OVL__LF_SIGNAL) {
        if (now >= l->last_rx + n->t.dead_after) {
            ovl__link_close(n, l, now);
            return;
        }
        if (now >= l->ping_due) {
            struct ovl_msg m;

            memset(&m, 0, sizeof(m));
            m.type = OVL_M_PING;
            l->ping_due = now + n->t.keepalive;
            ovl__send_msg(n, l, &m, OVL__OWN_KEEPALIVE, 0, n->t.rpc_timeout * 5,
                          now);
        }
    } else if (l->flags & OVL__LF_ATTACHED) {
        if (now >= l->last_rx + n->t.peer_timeout) {
            ovl__link_close(n, l, now);
            return;
        }
    } else if (now >= last + n->t.link_idle && l->refs == 0) {
        ovl__link_close(n, l, now);
        return;
    }
    ovl__link_schedule(n, l);
}

/* ---- Receiving ---------------------------------------------------------------------------- */

/* Parses the LE16-length framing of a handshake payload. */
static bool unframe(const uint8_t *app, size_t app_len, const uint8_t **msg,
                    size_t *len)
{
    size_t l;

    *msg = NULL;
    *len = 0;
    if (app_len < 2)
        return app_len == 0;
    l = (size_t)app[0] | (size_t)app[1] << 8;
    if (l > app_len - 2 || l > OVL_MSG_MAX)
        return false;
    /* Padding must be zero: nothing hides in it. */
    if (!sodium_is_zero(app + 2 + l, app_len - 2 - l))
        return false;
    *msg = l ? app + 2 : NULL;
    *len = l;
    return true;
}

static void dispatch_held(struct ovl_node *n, struct ovl_link *l,
                          const uint8_t *msg, size_t len, uint64_t now)
{
    /* The handler may close the link: hold it until we are done. */
    ovl__link_ref(l);
    ovl__dispatch(n, l, msg, len, now);
    if (!l->dead)
        ovl__link_schedule(n, l);
    ovl__link_unref(n, l);
}

/* A responder handshake authenticated: find or make the link, let the
 * first message be handled, and accept, answering in the RESP. */
static void handshake_in(struct ovl_node *n, struct ovl_conn *c,
                         const struct ovl_addr *from, struct ovl_rx *rx,
                         uint64_t now)
{
    const uint8_t *msg;
    size_t mlen, olen, alen = 0;
    uint8_t app[OVL_HS_APP_MAX], *out;
    struct ovl_link *l;
    struct ovl_sess *s;
    struct ovl_pending *p = NULL;
    uint8_t had;

    if (!unframe(rx->data, rx->data_len, &msg, &mlen)) {
        n->stats.msg_drops[OVL_MD_TOO_LONG]++;
        ovl_hs_discard(&n->hs);
        return;
    }
    if (c) {
        l = c->link ? c->link : link_new(n, rx->peer.identity, &c->addr, c,
                                         now);
        if (l && memcmp(l->identity, rx->peer.identity, 32) != 0)
            l = NULL; /* another identity on a bound connection */
    } else {
        l = ovl__link_find_udp(n, rx->peer.node_id);
        if (l == NULL)
            l = link_new(n, rx->peer.identity, from, NULL, now);
    }
    if (l == NULL) {
        ovl_hs_discard(&n->hs);
        return;
    }
    ovl__link_ref(l);
    if (c == NULL)
        l->addr = *from;
    had = l->npending;
    if (msg) {
        /* rx->data lives in the node's scratch buffer: handle a copy. */
        uint8_t copy[OVL_MSG_MAX];

        memcpy(copy, msg, mlen);
        ovl__dispatch(n, l, copy, mlen, now);
    } else {
        l->last_rx = now;
    }
    if (l->dead) {
        ovl_hs_discard(&n->hs);
        goto out;
    }
    /* The first answer queued by the handler rides in the RESP. */
    if (l->npending > had && had == 0 && l->pq->len + 2u <= sizeof(app) &&
        OVL_RESP_MIN + 2u + l->pq->len <= n->hs.init_len) {
        p = queue_pop(l);
        app[0] = (uint8_t)p->len;
        app[1] = (uint8_t)(p->len >> 8);
        memcpy(app + 2, p->msg, p->len);
        alen = 2u + p->len;
    }
    s = l->in;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL || ovl_session_init(&s->s, n->ep, NULL) != 0) {
            free(s);
            ovl_hs_discard(&n->hs);
            goto out;
        }
        s->link = l;
    }
    out = tx_area(n);
    if (ovl_hs_responder_accept(&n->hs, &s->s, app, alen, now, out,
                                OVL__DGRAM_MAX, &olen) != 0) {
        if (s != l->in)
            sess_free(s);
        goto out;
    }
    l->in = s;
    transmit(n, l, out, olen);
    ovl__link_schedule(n, l);
out:
    free(p);
    ovl__link_unref(n, l);
}

/* What ovl_endpoint_recv said about a message from @from / on @c. */
static void handle_rx(struct ovl_node *n, struct ovl_conn *c,
                      const struct ovl_addr *from, struct ovl_rx *rx,
                      uint64_t now)
{
    struct ovl_link *l;
    const uint8_t *msg;
    size_t mlen;

    switch (rx->kind) {
    case OVL_RX_REPLY:
        if (c) {
            int flen = ovl_stream_frame(n->txbuf, sizeof(n->txbuf), rx->reply,
                                        rx->reply_len);
            if (flen > 0)
                ovl__out_tcp(n, OVL_OUT_TCP_SEND, c->id, NULL, n->txbuf,
                             (size_t)flen);
        } else {
            ovl__out_udp(n, from, rx->reply, rx->reply_len);
        }
        return;
    case OVL_RX_HANDSHAKE:
        handshake_in(n, c, from, rx, now);
        return;
    case OVL_RX_RESPONSE:
    case OVL_RX_DATA:
    case OVL_RX_KEEPALIVE:
        break;
    default:
        n->stats.dropped++;
        return;
    }
    l = OVL__CONTAINER(rx->session, struct ovl_sess, s)->link;
    if (l == NULL || l->dead || (c && l->conn != c) || (!c && l->conn)) {
        n->stats.dropped++;
        return;
    }
    OVL__CONTAINER(rx->session, struct ovl_sess, s)->last_rx = now;
    l->last_rx = now;
    l->rpc_fails = 0;
    if ((rx->events & OVL_EV_ADDR_CHANGED) && !c)
        l->addr = *from;
    if (rx->kind == OVL_RX_RESPONSE && (rx->events & OVL_EV_REJECTED)) {
        ovl__link_close(n, l, now);
        return;
    }
    if (rx->kind == OVL_RX_RESPONSE) {
        if (!unframe(rx->data, rx->data_len, &msg, &mlen)) {
            n->stats.msg_drops[OVL_MD_TOO_LONG]++;
            msg = NULL;
        }
        link_flush(n, l, now);
        if (msg)
            dispatch_held(n, l, msg, mlen, now);
        else
            ovl__link_schedule(n, l);
        return;
    }
    if (rx->events & OVL_EV_KEY_CONFIRMED)
        link_flush(n, l, now);
    if (rx->kind == OVL_RX_DATA)
        dispatch_held(n, l, rx->data, rx->data_len, now);
    else
        ovl__link_schedule(n, l);
}

static void plain_input(struct ovl_node *n, struct ovl_conn *c,
                        const struct ovl_addr *from, const uint8_t *buf,
                        size_t len, uint64_t now)
{
    const struct ovl_plainw_head *h = (const struct ovl_plainw_head *)buf;
    uint8_t id[32];
    struct ovl_link *l;

    if (!n->plain || len < sizeof(*h) || h->version != OVL_MSG_VERSION ||
        h->reserved[0] || h->reserved[1]) {
        n->stats.dropped++;
        return;
    }
    ovl_node_id(id, h->sender);
    if (c) {
        l = c->link ? c->link : link_new(n, h->sender, &c->addr, c, now);
        if (l && memcmp(l->identity, h->sender, 32) != 0)
            l = NULL;
    } else {
        l = ovl__link_find_udp(n, id);
        if (l == NULL)
            l = link_new(n, h->sender, from, NULL, now);
        else
            l->addr = *from;
    }
    if (l == NULL) {
        n->stats.dropped++;
        return;
    }
    dispatch_held(n, l, buf + sizeof(*h), len - sizeof(*h), now);
}

static void secure_input(struct ovl_node *n, struct ovl_conn *c,
                         const struct ovl_addr *from, const uint8_t *buf,
                         size_t len, uint64_t now)
{
    uint8_t caddr[OVL_ADDR_COMPACT_MAX];
    struct ovl_datagram in;
    struct ovl_rx rx;

    if (n->ep == NULL || ovl_wire_classify(buf, len) != OVL_CLASS_SECURE) {
        n->stats.dropped++;
        return;
    }
    in.buf = buf;
    in.len = len;
    in.addr = caddr;
    in.addr_len = ovl_addr_compact(caddr, from);
    in.stream = c != NULL;
    if (ovl_endpoint_recv(n->ep, &in, now, &n->hs, n->rxbuf, sizeof(n->rxbuf),
                          &rx) != 0) {
        n->stats.dropped++;
        return;
    }
    handle_rx(n, c, from, &rx, now);
}

void ovl__udp_input(struct ovl_node *n, const struct ovl_addr *from,
                    const uint8_t *buf, size_t len, uint64_t now)
{
    if (buf[0] == OVL_PLAIN_TYPE)
        plain_input(n, NULL, from, buf, len, now);
    else
        secure_input(n, NULL, from, buf, len, now);
}

void ovl__tcp_input(struct ovl_node *n, struct ovl_conn *c,
                    const uint8_t *buf, size_t len, uint64_t now)
{
    uint32_t id = c->id;

    while (len > 0) {
        const uint8_t *msg;
        size_t used, mlen;
        int rc = ovl_stream_feed(&c->st, buf, len, &used, &msg, &mlen);

        if (rc < 0) {
            /* A byte stream cannot be resynchronised. */
            if (c->link)
                ovl__link_close(n, c->link, now);
            else {
                ovl__out_tcp(n, OVL_OUT_TCP_CLOSE, c->id, NULL, NULL, 0);
                conn_free(n, c);
            }
            return;
        }
        buf += used;
        len -= used;
        if (rc == 0)
            break;
        if (msg[0] == OVL_PLAIN_TYPE)
            plain_input(n, c, &c->addr, msg, mlen, now);
        else
            secure_input(n, c, &c->addr, msg, mlen, now);
        /* Handling may have closed the connection. */
        if (ovl__conn_find(n, id) != c)
            return;
    }
}
