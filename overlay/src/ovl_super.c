/*
 * ovl_super.c: the supernode side of a node (docs/protocol.md 2.5-2.10).
 *
 * Handlers answer requests from peers (LOGIN, HOSTCACHE_GET, and the
 * SEARCH-flagged FIND_VALUE, STORE and SUBSCRIBE that a peer sends its
 * own supernode) and from other supernodes (FIND_NODE, FIND_VALUE, STORE,
 * SUBSCRIBE, REACH_PROBE). Work that needs the DHT runs as an operation
 * (struct ovl_op): an iterative lookup (ovl_dht.h) driven by FIND_NODE or
 * FIND_VALUE RPCs, followed for a store by STOREs to the k closest nodes
 * (this one included when it is among them), for a subscription by
 * SUBSCRIBEs to the closest OVL__SUB_REPLICAS.
 *
 * Storage nodes republish each record they hold every `republish` (unless
 * another replica did so meanwhile: Kademlia's optimisation), drop
 * expired records, and NOTIFY subscribed supernodes when a newer version
 * arrives. When an attached peer vanishes without logging out, its
 * supernode stores an attested LASTSEEN ending the peer's presence.
 */
#include "ovl_node_internal.h"

#include <stdlib.h>

static void op_step(struct ovl_node *n, struct ovl_op *op, uint64_t now);
static void op_free(struct ovl_node *n, struct ovl_op *op);
static void store_record(struct ovl_node *n, const uint8_t *rec, size_t len,
                         struct ovl_link *req, uint32_t rid, uint32_t token,
                         uint64_t now);

/* ---- Helpers -------------------------------------------------------------------------- */

int ovl__verify(struct ovl_node *n, struct ovl_record *r, const uint8_t *buf,
                size_t len, uint64_t now)
{
    struct ovl_record_policy pol = {n->has_authority ? n->authority : NULL};
    enum ovl_rerr why;

    if (ovl_record_verify(r, buf, len, &pol, ovl__wall_s(n, now), &why) != 0) {
        n->stats.rec_drops[why]++;
        return -EBADMSG;
    }
    return 0;
}

static void reply(struct ovl_node *n, struct ovl_link *l, struct ovl_msg *m,
                  uint32_t rid, uint64_t now)
{
    if (l == NULL || l->dead)
        return;
    m->rid = rid;
    ovl__send_msg(n, l, m, OVL__OWN_NONE, 0, 0, now);
}

static void reply_error(struct ovl_node *n, struct ovl_link *l, uint32_t rid,
                        uint16_t code, uint64_t now)
{
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_ERROR;
    m.u.error.code = code;
    reply(n, l, &m, rid, now);
}

static void link_contact(const struct ovl_link *l, struct ovl_contact *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->identity, l->identity, 32);
    memcpy(c->node_id, l->node_id, 32);
    c->udp = l->addr;
    /* Supernodes listen on the same port number for UDP and TCP. */
    c->tcp_port = l->addr.port;
}

static uint64_t jitter(struct ovl_node *n, uint64_t span)
{
    return span ? (uint64_t)ovl_rng_uniform(&n->rng, (uint32_t)(span / 1000000u
                                                                + 1)) *
                      1000000u
                : 0;
}

/* ---- Lifecycle ------------------------------------------------------------------------- */

int ovl__super_init(struct ovl_node *n)
{
    ovl_rt_init(&n->rt, n->id->node_id);
    return ovl_store_init(&n->store, 0);
}

void ovl__super_close(struct ovl_node *n)
{
    while (n->ops.next && n->ops.next != &n->ops)
        op_free(n, n->ops.next);
    while (n->subs) {
        struct ovl_sub *s = n->subs;

        n->subs = s->next;
        free(s);
    }
    while (n->watches) {
        struct ovl_watch *w = n->watches;

        n->watches = w->next;
        ovl__link_unref(n, w->peer);
        free(w);
    }
    ovl_rt_close(&n->rt);
    ovl_store_close(&n->store);
    ovl_cache_close(&n->cache);
}

size_t ovl__op_memory(const struct ovl_node *n)
{
    size_t m = 0;

    for (const struct ovl_op *op = n->ops.next; op && op != &n->ops;
         op = op->next)
        m += sizeof(*op) + (op->lk ? sizeof(*op->lk) : 0) + op->rec_len;
    for (const struct ovl_sub *s = n->subs; s; s = s->next)
        m += sizeof(*s);
    for (const struct ovl_watch *w = n->watches; w; w = w->next)
        m += sizeof(*w);
    return m;
}

/* ---- Operations ---------------------------------------------------------------------------- */

static struct ovl_op *op_new(struct ovl_node *n, uint8_t kind, uint64_t now)
{
    struct ovl_op *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    ovl__timer_init(&op->timer, OVL__T_OP);
    op->id = ++n->next_op;
    op->kind = kind;
    op->started = now;
    op->next = &n->ops;
    op->prev = n->ops.prev;
    n->ops.prev->next = op;
    n->ops.prev = op;
    return op;
}

static void op_free(struct ovl_node *n, struct ovl_op *op)
{
    ovl__timer_set(n, &op->timer, OVL_NEVER);
    ovl__rpc_cancel_owner(n, OVL__OWN_OP, op->id);
    ovl__rpc_cancel_owner(n, OVL__OWN_RELAY, op->id);
    ovl__rpc_cancel_owner(n, OVL__OWN_DIAL, op->id);
    op->prev->next = op->next;
    op->next->prev = op->prev;
    if (op->req_link)
        ovl__link_unref(n, op->req_link);
    /* Dial links are left to idle out (120 s): closing them here could
     * cut a session the target also uses for something else. */
    ovl__link_unref(n, op->dial_udp);
    ovl__link_unref(n, op->dial_tcp);
    free(op->lk);
    free(op->rec);
    free(op);
}

static struct ovl_op *op_find(struct ovl_node *n, uint32_t id)
{
    for (struct ovl_op *op = n->ops.next; op != &n->ops; op = op->next)
        if (op->id == id)
            return op;
    return NULL;
}

/* Starts a lookup for @target seeded from the routing table (and the
 * host cache while the table is thin). */
static struct ovl_op *op_lookup(struct ovl_node *n, uint8_t kind,
                                enum ovl_lookup_kind lk,
                                const uint8_t target[32], uint64_t now)
{
    struct ovl_contact seed[2 * OVL_DHT_K];
    struct ovl_op *op = op_new(n, kind, now);
    size_t k;

    if (op == NULL)
        return NULL;
    op->lk = malloc(sizeof(*op->lk));
    if (op->lk == NULL) {
        op_free(n, op);
        return NULL;
    }
    ovl_lookup_init(op->lk, lk, target, n->id->node_id);
    k = ovl_rt_closest(&n->rt, target, seed, 2 * OVL_DHT_K,
                       OVL_RT_FAILS_EVICT);
    for (size_t i = 0; i < k; i++)
        ovl_lookup_add(op->lk, &seed[i]);
    if (n->rt.count < 2 * OVL_DHT_K)
        for (int i = 0; i < n->hc.n; i++)
            ovl_lookup_add(op->lk, &n->hc.e[i].c);
    ovl_rt_touch(&n->rt, target, now);
    return op;
}

static void op_take_link(struct ovl_op *op, struct ovl_link *l, uint32_t rid)
{
    op->req_link = l;
    op->req_rid = rid;
    if (l)
        ovl__link_ref(l);
}

/* ---- Subscriptions (storage side) and watches (peer side) ------------------------------------ */

static void notify_to(struct ovl_node *n, struct ovl_link *l,
                      const uint8_t key[32], const uint8_t *rec, size_t len,
                      uint32_t rid, uint64_t now)
{
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_NOTIFY;
    memcpy(m.u.notify.key, key, 32);
    if (rec && len) {
        m.u.notify.record = rec;
        m.u.notify.record_len = (uint16_t)len;
    }
    m.rid = rid;
    if (ovl__send_msg(n, l, &m, OVL__OWN_NONE, 0, 0, now) == 0)
        n->stats.notifies++;
}

/* A new version of @r's key: tell watching peers attached here. */
static void watches_fire(struct ovl_node *n, const struct ovl_record *r,
                         uint64_t now)
{
    for (struct ovl_watch *w = n->watches; w; w = w->next) {
        if (memcmp(w->key, r->key, 32) != 0 || w->peer->dead ||
            now >= w->expires)
            continue;
        if (r->seq < w->seq || (r->seq == w->seq && r->type != OVL_R_LASTSEEN))
            continue;
        w->seq = r->seq;
        notify_to(n, w->peer, r->key, r->raw, r->raw_len, 0, now);
    }
}

/* A new version stored here: tell subscribed supernodes (and watchers). */
static void subs_fire(struct ovl_node *n, const struct ovl_record *r,
                      uint64_t now)
{
    for (struct ovl_sub *s = n->subs; s; s = s->next) {
        struct ovl_link *l;

        if (memcmp(s->key, r->key, 32) != 0 || now >= s->expires)
            continue;
        if (memcmp(s->who.node_id, n->id->node_id, 32) == 0)
            continue;
        l = ovl__link_udp(n, &s->who, now);
        if (l)
            notify_to(n, l, r->key, r->raw, r->raw_len, 0, now);
    }
    watches_fire(n, r, now);
}

static void sub_add(struct ovl_node *n, const uint8_t key[32],
                    const struct ovl_contact *who, uint64_t expires)
{
    struct ovl_sub *s;
    uint32_t count = 0;

    for (s = n->subs; s; s = s->next, count++)
        if (memcmp(s->key, key, 32) == 0 &&
            memcmp(s->who.node_id, who->node_id, 32) == 0) {
            s->who = *who;
            s->expires = expires;
            return;
        }
    if (count >= 65536 || (s = calloc(1, sizeof(*s))) == NULL)
        return;
    memcpy(s->key, key, 32);
    s->who = *who;
    s->expires = expires;
    s->next = n->subs;
    n->subs = s;
}

static struct ovl_watch *watch_find(struct ovl_node *n, const uint8_t key[32],
                                    const struct ovl_link *peer)
{
    for (struct ovl_watch *w = n->watches; w; w = w->next)
        if (memcmp(w->key, key, 32) == 0 && (peer == NULL || w->peer == peer))
            return w;
    return NULL;
}

static void start_subscribe(struct ovl_node *n, const uint8_t key[32],
                            uint64_t now)
{
    struct ovl_op *op = op_lookup(n, OVL__OP_SUBSCRIBE, OVL_LOOKUP_NODES, key,
                                  now);

    if (op)
        op_step(n, op, now);
}

/* ---- Records arriving ---------------------------------------------------------------------- */

/* Stores a verified record here (as a replica). */
static enum ovl_store_put keep(struct ovl_node *n, const struct ovl_record *r,
                               uint64_t now)
{
    enum ovl_store_put st;

    st = ovl_store_put(&n->store, r, !n->has_authority, now,
                       ovl__wall_s(n, now),
                       now + n->t.republish + jitter(n, n->t.republish / 4),
                       NULL);
    if (st == OVL_PUT_STORED) {
        ovl_cache_saw_seq(&n->cache, r->key, r->seq);
        ovl_cache_put(&n->cache, r->key, r, now);
        subs_fire(n, r, now);
    }
    return st;
}

static uint8_t store_status(enum ovl_store_put st)
{
    switch (st) {
    case OVL_PUT_STORED:
        return OVL_STORE_STORED;
    case OVL_PUT_DUPLICATE:
        return OVL_STORE_DUPLICATE;
    case OVL_PUT_OLDER:
        return OVL_STORE_OLDER;
    case OVL_PUT_OWNER:
        return OVL_STORE_INVALID;
    default:
        return OVL_STORE_FULL;
    }
}

/* The best record known here for @key: stored, else cached. */
static const uint8_t *best_known(struct ovl_node *n, const uint8_t key[32],
                                 uint64_t now, uint16_t *len, uint64_t *seq)
{
    const struct ovl_store_entry *e =
        ovl_store_get(&n->store, key, ovl__wall_s(n, now));
    const struct ovl_cache_entry *c;

    if (e) {
        *len = e->len;
        *seq = e->seq;
        return e->rec;
    }
    c = ovl_cache_get(&n->cache, key, now, ovl__wall_s(n, now));
    if (c && c->len) {
        *len = c->len;
        *seq = c->seq;
        return c->rec;
    }
    *len = 0;
    *seq = 0;
    return NULL;
}

/* ---- Request handlers ------------------------------------------------------------------------- */

static void on_login(struct ovl_node *n, struct ovl_link *l,
                     const struct ovl_msg *m, uint64_t now)
{
    struct ovl_msg a;
    uint16_t code = 0;

    memset(&a, 0, sizeof(a));
    if (!(l->flags & OVL__LF_ATTACHED) && n->attached >= n->max_peers) {
        struct ovl_contact c[OVL_LOGIN_ERR_CONTACTS_MAX];
        size_t k = ovl_rt_closest(&n->rt, l->node_id, c,
                                  OVL_LOGIN_ERR_CONTACTS_MAX, 1);

        a.type = OVL_M_LOGIN_ERR;
        a.u.login_err.code = OVL_MERR_FULL;
        a.u.login_err.count = (uint8_t)k;
        memcpy(a.u.login_err.contacts, c, k * sizeof(c[0]));
        n->stats.logins_refused++;
        reply(n, l, &a, m->rid, now);
        return;
    }
    if (m->u.login.handle_len && n->has_authority) {
        struct ovl_cert c;
        enum ovl_rerr why;

        if (m->u.login.cert == NULL)
            code = OVL_MERR_NOT_CERTIFIED;
        else if (ovl_cert_verify(&c, m->u.login.cert, OVL_CERT_LEN,
                                 n->authority, ovl__wall_s(n, now), &why))
            code = why == OVL_RERR_CERT_EXPIRED ? OVL_MERR_CERT_EXPIRED
                                                : OVL_MERR_NOT_CERTIFIED;
        else if (!ovl_cert_matches(&c, OVL_CERT_HANDLE, m->u.login.handle,
                                   m->u.login.handle_len, l->identity))
            code = OVL_MERR_CERT_MISMATCH;
    }
    if (code) {
        a.type = OVL_M_LOGIN_ERR;
        a.u.login_err.code = code;
        n->stats.logins_refused++;
        reply(n, l, &a, m->rid, now);
        return;
    }
    if (!(l->flags & OVL__LF_ATTACHED)) {
        l->flags |= OVL__LF_ATTACHED;
        n->attached++;
    }
    n->stats.logins_ok++;
    a.type = OVL_M_LOGIN_OK;
    a.u.login_ok.observed = l->addr;
    a.u.login_ok.keepalive_s = (uint16_t)(n->t.keepalive / OVL_NS_PER_SEC);
    reply(n, l, &a, m->rid, now);
    ovl__link_schedule(n, l);
}

static void on_hostcache_get(struct ovl_node *n, struct ovl_link *l,
                             const struct ovl_msg *m, uint64_t now)
{
    struct ovl_contact all[OVL_CONTACTS_MAX * 4];
    uint8_t rnd[32];
    struct ovl_msg a;
    size_t k, want = m->u.hostcache_get.max;

    memset(&a, 0, sizeof(a));
    a.type = OVL_M_HOSTCACHE;
    ovl__self_contact(n, &a.u.contacts.contacts[0]);
    a.u.contacts.count = 1;
    /* Contacts near a random point: a fair sample across the ring. */
    ovl_rng_bytes(&n->rng, rnd, sizeof(rnd));
    k = ovl_rt_closest(&n->rt, rnd, all, want - 1 < OVL_CONTACTS_MAX * 4
                                             ? want - 1
                                             : OVL_CONTACTS_MAX * 4,
                       1);
    for (size_t i = 0; i < k && a.u.contacts.count < want; i++)
        a.u.contacts.contacts[a.u.contacts.count++] = all[i];
    reply(n, l, &a, m->rid, now);
}

static void on_find_node(struct ovl_node *n, struct ovl_link *l,
                         const struct ovl_msg *m, uint64_t now)
{
    struct ovl_msg a;

    memset(&a, 0, sizeof(a));
    a.type = OVL_M_NODES;
    a.u.contacts.count = (uint8_t)ovl_rt_closest(
        &n->rt, m->u.find_node.target, a.u.contacts.contacts, OVL_DHT_K,
        OVL_RT_FAILS_EVICT);
    reply(n, l, &a, m->rid, now);
}

static void answer_value(struct ovl_node *n, struct ovl_link *l, uint32_t rid,
                         const uint8_t *rec, uint16_t len, uint8_t rounds,
                         uint16_t messages, uint64_t now)
{
    struct ovl_msg a;

    memset(&a, 0, sizeof(a));
    a.type = OVL_M_VALUE;
    a.u.value.status = rec ? OVL_VALUE_FOUND : OVL_VALUE_NOT_FOUND;
    a.u.value.record = rec;
    a.u.value.record_len = len;
    a.u.value.rounds = rounds;
    a.u.value.messages = messages;
    reply(n, l, &a, rid, now);
}

static void on_find_value(struct ovl_node *n, struct ovl_link *l,
                          const struct ovl_msg *m, uint64_t now)
{
    const struct ovl_store_entry *e;
    struct ovl_msg a;

    if (m->flags & OVL_MF_SEARCH) {
        const struct ovl_cache_entry *c;
        struct ovl_op *op;

        if (!(l->flags & OVL__LF_ATTACHED)) {
            reply_error(n, l, m->rid, OVL_MERR_NOT_LOGGED_IN, now);
            return;
        }
        n->stats.searches++;
        /* Our own replica is not enough (it may be stale): only a cached
         * search result answers at once; otherwise ask the DHT, our
         * replica being one more answer (search_done). */
        c = ovl_cache_get(&n->cache, m->u.find_value.key, now,
                          ovl__wall_s(n, now));
        if (c) {
            answer_value(n, l, m->rid, c->len ? c->rec : NULL, c->len, 0, 0,
                         now);
            return;
        }
        op = op_lookup(n, OVL__OP_SEARCH, OVL_LOOKUP_VALUE,
                       m->u.find_value.key, now);
        if (op == NULL) {
            reply_error(n, l, m->rid, OVL_MERR_BUSY, now);
            return;
        }
        op_take_link(op, l, m->rid);
        op_step(n, op, now);
        return;
    }
    memset(&a, 0, sizeof(a));
    a.type = OVL_M_VALUE;
    e = ovl_store_get(&n->store, m->u.find_value.key, ovl__wall_s(n, now));
    if (e && m->u.find_value.known_seq && e->seq <= m->u.find_value.known_seq) {
        a.u.value.status = OVL_VALUE_UNCHANGED;
    } else if (e) {
        a.u.value.status = OVL_VALUE_FOUND;
        a.u.value.record = e->rec;
        a.u.value.record_len = e->len;
    } else {
        a.u.value.status = OVL_VALUE_NOT_FOUND;
        a.u.value.count = (uint8_t)ovl_rt_closest(
            &n->rt, m->u.find_value.key, a.u.value.contacts, OVL_DHT_K,
            OVL_RT_FAILS_EVICT);
    }
    reply(n, l, &a, m->rid, now);
}

static void answer_store(struct ovl_node *n, struct ovl_link *l, uint32_t rid,
                         uint8_t status, uint16_t replicas, uint64_t seq,
                         uint64_t now)
{
    struct ovl_msg a;

    memset(&a, 0, sizeof(a));
    a.type = OVL_M_STORE_OK;
    a.u.store_ok.status = status;
    a.u.store_ok.replicas = replicas;
    a.u.store_ok.seq = seq;
    reply(n, l, &a, rid, now);
}

/* Kademlia's responsibility: we keep a key only while we know fewer than
 * k live nodes closer to it than we are. This keeps strays (and junk an
 * attacker sprays at arbitrary nodes) out of the directory. */
static bool responsible(const struct ovl_node *n, const uint8_t key[32])
{
    struct ovl_contact c[OVL_DHT_K];
    size_t k = ovl_rt_closest(&n->rt, key, c, OVL_DHT_K, 1);

    return k < OVL_DHT_K ||
           ovl_id_cmp_dist(key, n->id->node_id, c[k - 1].node_id) < 0;
}

static void on_store(struct ovl_node *n, struct ovl_link *l,
                     const struct ovl_msg *m, uint64_t now)
{
    struct ovl_record r;
    enum ovl_store_put st;
    enum ovl_rerr why;
    struct ovl_record_policy pol = {n->has_authority ? n->authority : NULL};

    if (ovl_record_verify(&r, m->u.store.record, m->u.store.record_len, &pol,
                          ovl__wall_s(n, now), &why) != 0) {
        n->stats.rec_drops[why]++;
        n->stats.stores_refused++;
        answer_store(n, l, m->rid,
                     why == OVL_RERR_EXPIRED        ? OVL_STORE_EXPIRED
                     : why >= OVL_RERR_CERT_MISSING ? OVL_STORE_UNAUTHORIZED
                                                    : OVL_STORE_INVALID,
                     0, 0, now);
        return;
    }
    if (m->flags & OVL_MF_SEARCH) {
        /* A peer publishes its own records only. */
        if (!(l->flags & OVL__LF_ATTACHED) ||
            memcmp(r.owner, l->identity, 32) != 0 ||
            (r.flags & OVL_RF_ATTESTED)) {
            n->stats.stores_refused++;
            answer_store(n, l, m->rid, OVL_STORE_INVALID, 0, 0, now);
            return;
        }
        if (r.type == OVL_R_PRESENCE &&
            memcmp(r.supernode.identity, n->id->ed_pk, 32) == 0) {
            uint8_t *copy = malloc(r.raw_len);

            if (copy) {
                memcpy(copy, r.raw, r.raw_len);
                free(l->presence);
                l->presence = copy;
                l->presence_len = (uint16_t)r.raw_len;
                l->logged_out = false;
            }
        } else if (r.type == OVL_R_LASTSEEN) {
            l->logged_out = true;
        }
        store_record(n, r.raw, r.raw_len, l, m->rid, 0, now);
        return;
    }
    /* A replica that holds the key takes newer versions whatever it now
     * thinks of its rank, or it would keep serving the old one. */
    if (!responsible(n, r.key) &&
        ovl_store_get(&n->store, r.key, ovl__wall_s(n, now)) == NULL) {
        n->stats.stores_refused++;
        answer_store(n, l, m->rid, OVL_STORE_ELSEWHERE, 0, 0, now);
        return;
    }
    st = keep(n, &r, now);
    if (st == OVL_PUT_STORED || st == OVL_PUT_DUPLICATE)
        n->stats.stores_ok++;
    else
        n->stats.stores_refused++;
    {
        const struct ovl_store_entry *e =
            ovl_store_get(&n->store, r.key, ovl__wall_s(n, now));
        answer_store(n, l, m->rid, store_status(st), 0, e ? e->seq : 0, now);
    }
}

static void on_subscribe(struct ovl_node *n, struct ovl_link *l,
                         const struct ovl_msg *m, uint64_t now)
{
    const uint8_t *key = m->u.subscribe.key;
    uint64_t ttl = (uint64_t)m->u.subscribe.ttl_s * OVL_NS_PER_SEC, seq;
    const uint8_t *rec;
    uint16_t len;

    if (m->flags & OVL_MF_SEARCH) {
        struct ovl_watch *w = watch_find(n, key, l);
        bool fresh = watch_find(n, key, NULL) == NULL;

        if (!(l->flags & OVL__LF_ATTACHED)) {
            reply_error(n, l, m->rid, OVL_MERR_NOT_LOGGED_IN, now);
            return;
        }
        if (m->flags & OVL_MF_UNSUBSCRIBE) {
            if (w)
                w->expires = now;
            notify_to(n, l, key, NULL, 0, m->rid, now);
            return;
        }
        if (w == NULL && (w = calloc(1, sizeof(*w))) != NULL) {
            memcpy(w->key, key, 32);
            w->peer = l;
            ovl__link_ref(l);
            w->next = n->watches;
            n->watches = w;
        }
        rec = best_known(n, key, now, &len, &seq);
        if (w) {
            w->expires = now + ttl;
            if (seq > w->seq)
                w->seq = seq;
        }
        notify_to(n, l, key, rec, len, m->rid, now);
        if (fresh)
            start_subscribe(n, key, now);
        return;
    }
    {
        struct ovl_contact who;

        link_contact(l, &who);
        if (!(m->flags & OVL_MF_UNSUBSCRIBE))
            sub_add(n, key, &who, now + ttl);
        rec = best_known(n, key, now, &len, &seq);
        notify_to(n, l, key,
                  ovl_store_get(&n->store, key, ovl__wall_s(n, now)) ? rec
                                                                     : NULL,
                  len, m->rid, now);
    }
}

/* ---- Reach probes ------------------------------------------------------------------------------ */

static void reach_answer(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    struct ovl_msg a;

    memset(&a, 0, sizeof(a));
    a.type = OVL_M_REACH_OK;
    a.u.reach.target = op->target;
    a.u.reach.result = op->result;
    reply(n, op->req_link, &a, op->req_rid, now);
    op_free(n, op);
}

static void on_reach_probe(struct ovl_node *n, struct ovl_link *l,
                           const struct ovl_msg *m, uint64_t now)
{
    struct ovl_op *op = op_new(n, OVL__OP_REACH, now);
    struct ovl_msg q;

    if (op == NULL) {
        reply_error(n, l, m->rid, OVL_MERR_BUSY, now);
        return;
    }
    op_take_link(op, l, m->rid);
    op->target = m->u.reach.target;
    memset(&q, 0, sizeof(q));
    q.type = OVL_M_PING;
    if (!(m->flags & OVL_MF_REACH_RELAY)) {
        /* From an attached peer: another supernode must dial it, from
         * another address, or a NAT that lets us in because the peer
         * talks to us would pass for reachable. */
        struct ovl_contact c[OVL_DHT_K];
        uint8_t rnd[32];
        size_t k;
        struct ovl_link *s2;

        if (!(l->flags & OVL__LF_ATTACHED)) {
            op_free(n, op);
            reply_error(n, l, m->rid, OVL_MERR_NOT_LOGGED_IN, now);
            return;
        }
        /* Its public IP is what we see; its ports are what it says. */
        memcpy(op->target.udp.ip, l->addr.ip, 16);
        op->target.udp.family = l->addr.family;
        op->relay = true;
        ovl_rng_bytes(&n->rng, rnd, sizeof(rnd));
        k = ovl_rt_closest(&n->rt, rnd, c, OVL_DHT_K, 1);
        for (size_t i = 0; i < k; i++) {
            if (memcmp(c[i].node_id, l->node_id, 32) == 0)
                continue;
            s2 = ovl__link_udp(n, &c[i], now);
            memset(&q, 0, sizeof(q));
            q.type = OVL_M_REACH_PROBE;
            q.flags = OVL_MF_REACH_RELAY;
            q.u.reach.target = op->target;
            if (s2 && ovl__send_msg(n, s2, &q, OVL__OWN_RELAY, op->id,
                                    2 * (n->t.probe_timeout +
                                         n->t.tcp_timeout),
                                    now) == 0)
                return;
        }
        reach_answer(n, op, now); /* nobody to ask: not verified */
        return;
    }
    /* We dial: UDP and TCP in parallel, fresh links marked PROBE. */
    op->dial_udp = ovl__link_udp(n, &op->target, now);
    if (op->dial_udp) {
        ovl__link_ref(op->dial_udp);
        if (ovl__send_msg(n, op->dial_udp, &q, OVL__OWN_DIAL, op->id,
                          n->t.probe_timeout, now) == 0)
            op->pending++;
    }
    if (op->target.tcp_port) {
        op->dial_tcp = ovl__link_tcp(n, &op->target, op->target.tcp_port, now);
        if (op->dial_tcp) {
            ovl__link_ref(op->dial_tcp);
            memset(&q, 0, sizeof(q));
            q.type = OVL_M_PING;
            if (ovl__send_msg(n, op->dial_tcp, &q, OVL__OWN_DIAL, op->id,
                              n->t.tcp_timeout, now) == 0)
                op->pending++;
        }
    }
    if (op->pending == 0)
        reach_answer(n, op, now);
}

/*
 * Which of the link's buckets a request draws on (ovl_node_rate_limits,
 * docs/protocol.md 4.13). Work done on a peer's behalf (SEARCH) is
 * limited per kind; direct DHT requests from a node that does not claim
 * membership are limited as a whole. Members' are not: one lookup of
 * theirs sends us up to 64 queries at once, and a direct request is
 * answered from this node's own store and routing table (a STORE costs a
 * signature check, after the cheap ones), never with work on its behalf.
 */
static enum ovl__rl rl_kind(const struct ovl_msg *m)
{
    bool search = (m->flags & OVL_MF_SEARCH) != 0;

    switch (m->type) {
    case OVL_M_LOGIN:
    case OVL_M_HOSTCACHE_GET:
    case OVL_M_REACH_PROBE:
        return OVL__RL_RARE;
    case OVL_M_FIND_VALUE:
        if (search)
            return OVL__RL_SEARCH;
        break;
    case OVL_M_STORE:
        if (search)
            return OVL__RL_STORE;
        break;
    case OVL_M_SUBSCRIBE:
        if (search)
            return OVL__RL_SUBSCRIBE;
        break;
    case OVL_M_FIND_NODE:
        break;
    default:
        return OVL__RL_NONE;
    }
    return (m->flags & OVL_MF_DHT_MEMBER) ? OVL__RL_NONE : OVL__RL_DHT;
}

void ovl__super_request(struct ovl_node *n, struct ovl_link *l,
                        const struct ovl_msg *m, uint64_t now)
{
    enum ovl__rl k = rl_kind(m);

    if (k != OVL__RL_NONE && !ovl__rate_take(&l->rl_tat[k], &n->rl[k], now)) {
        /* Refused before any work (no lookup, no signature check), so a
         * flood costs this node one small answer per request and the
         * flooder's neighbours nothing. */
        n->stats.rate_limited++;
        reply_error(n, l, m->rid, OVL_MERR_BUSY, now);
        return;
    }
    switch (m->type) {
    case OVL_M_LOGIN:
        on_login(n, l, m, now);
        break;
    case OVL_M_HOSTCACHE_GET:
        on_hostcache_get(n, l, m, now);
        break;
    case OVL_M_FIND_NODE:
        on_find_node(n, l, m, now);
        break;
    case OVL_M_FIND_VALUE:
        on_find_value(n, l, m, now);
        break;
    case OVL_M_STORE:
        on_store(n, l, m, now);
        break;
    case OVL_M_SUBSCRIBE:
        on_subscribe(n, l, m, now);
        break;
    case OVL_M_REACH_PROBE:
        on_reach_probe(n, l, m, now);
        break;
    default:
        reply_error(n, l, m->rid, OVL_MERR_BAD_REQUEST, now);
        break;
    }
}

/* ---- Driving operations -------------------------------------------------------------------------- */

static void op_finish(struct ovl_node *n, struct ovl_op *op, uint64_t now);

static void send_query(struct ovl_node *n, struct ovl_op *op,
                       const struct ovl_contact *c, uint64_t now)
{
    struct ovl_link *l = ovl__link_udp(n, c, now);
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    if (op->lk->kind == OVL_LOOKUP_VALUE) {
        m.type = OVL_M_FIND_VALUE;
        memcpy(m.u.find_value.key, op->lk->target, 32);
    } else {
        m.type = OVL_M_FIND_NODE;
        memcpy(m.u.find_node.target, op->lk->target, 32);
    }
    if (l == NULL || ovl__send_msg(n, l, &m, OVL__OWN_OP, op->id,
                                   n->t.rpc_timeout, now) != 0)
        ovl_lookup_failed(op->lk, c->node_id);
}

/*
 * How long a value lookup that found a record waits for the answers
 * still in flight. One holder's word is not enough: a replica that
 * missed an update (the attested LASTSEEN ending a presence, say) may be
 * the closest and the fastest, and its stale version would win and even
 * be cached. Until a second holder has answered, wait for the whole
 * round (each query times out after rpc_timeout); after that, the grace.
 */
static uint64_t found_grace(const struct ovl_node *n, const struct ovl_op *op)
{
    return op->nholders >= 2 ? n->t.lookup_grace : n->t.rpc_timeout;
}

static void op_step(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    struct ovl_contact ask[OVL_LOOKUP_FANOUT_MAX];
    struct ovl_lookup *lk = op->lk;

    for (int guard = 0; guard < OVL_LOOKUP_ROUNDS_MAX + 2; guard++) {
        size_t k;

        if (lk->kind == OVL_LOOKUP_VALUE &&
            ovl_lookup_can_finish(lk, now, found_grace(n, op))) {
            op_finish(n, op, now);
            return;
        }
        if (lk->inflight > 0) {
            /* Final but answers still out: give them the grace period
             * (can_finish was false, so it lies ahead). */
            if (ovl_lookup_final(lk))
                ovl__timer_set(n, &op->timer,
                               lk->found_at + found_grace(n, op));
            return;
        }
        k = ovl_lookup_next(lk, now, ask, OVL_LOOKUP_FANOUT_MAX);
        if (k == 0) {
            op_finish(n, op, now);
            return;
        }
        for (size_t i = 0; i < k; i++)
            send_query(n, op, &ask[i], now);
        /* Sends that failed at once were settled: loop to re-check. */
    }
    op_finish(n, op, now);
}

void ovl__op_timer(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    if (op->lk && op->phase == 0)
        op_step(n, op, now);
}

/* Is this node among the k closest to @key, given @closest (sorted)? */
static bool self_replica(const struct ovl_node *n, const uint8_t key[32],
                         const struct ovl_contact *closest, size_t k)
{
    return k < OVL_DHT_K ||
           ovl_id_cmp_dist(key, n->id->node_id, closest[k - 1].node_id) < 0;
}

static void store_done(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    struct ovl_record r;
    uint64_t seq = 0;

    if (ovl_record_parse(&r, op->rec, op->rec_len) == 0)
        seq = r.seq;
    if (op->req_link) {
        answer_store(n, op->req_link, op->req_rid,
                     op->acks ? OVL_STORE_STORED : OVL_STORE_FAILED, op->acks,
                     seq, now);
    } else if (op->token) {
        struct ovl_event *ev = ovl__event(n, OVL_NEV_PUBLISHED);

        ev->rtype = r.type == OVL_R_ROOM ? OVL_R_ROOM : r.type;
        ev->replicas = op->acks;
        ev->seq = seq;
        ev->status = op->acks ? 0 : -EIO;
        if (n->pstate == OVL__P_LOGGING_OUT && r.type == OVL_R_LASTSEEN) {
            n->logout_deadline = now;
            ovl__house_schedule(n, now);
        }
    }
    op_free(n, op);
}

/* Read repair: holders that answered with an older version get the
 * newest (Kademlia stores a found value at the closest node that lacked
 * it; this heals replicas that missed an update). */
static void read_repair(struct ovl_node *n, struct ovl_op *op,
                        const struct ovl_record *best, uint64_t now)
{
    struct ovl_msg m;

    for (uint8_t i = 0; i < op->nholders; i++) {
        struct ovl_link *l;

        if (op->holders[i].seq > best->seq ||
            (op->holders[i].seq == best->seq &&
             op->holders[i].type == best->type))
            continue;
        l = ovl__link_udp(n, &op->holders[i].c, now);
        memset(&m, 0, sizeof(m));
        m.type = OVL_M_STORE;
        m.u.store.record = best->raw;
        m.u.store.record_len = (uint16_t)best->raw_len;
        if (l)
            ovl__send_msg(n, l, &m, OVL__OWN_NONE, 0, 0, now);
    }
}

static void search_done(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    struct ovl_lookup *lk = op->lk;
    const struct ovl_store_entry *e =
        ovl_store_get(&n->store, lk->target, ovl__wall_s(n, now));
    struct ovl_record r, mine;
    bool have = lk->found && ovl_record_parse(&r, lk->rec, lk->rec_len) == 0;

    /* Our own replica is one more answer. */
    if (e && ovl_record_parse(&mine, e->rec, e->len) == 0 &&
        (!have || ovl_record_newer(&mine, &r))) {
        memcpy(lk->rec, e->rec, e->len);
        lk->rec_len = e->len;
        have = ovl_record_parse(&r, lk->rec, lk->rec_len) == 0;
    }
    if (have) {
        read_repair(n, op, &r, now);
        if (e && ovl_record_newer(&r, &mine))
            keep(n, &r, now);
    }
    ovl_cache_put(&n->cache, lk->target, have ? &r : NULL, now);
    if (op->req_link) {
        answer_value(n, op->req_link, op->req_rid, have ? lk->rec : NULL,
                     have ? lk->rec_len : 0, lk->rounds, lk->messages, now);
    } else if (op->token) {
        struct ovl_event *ev = ovl__event(n, OVL_NEV_LOOKUP);

        ev->token = op->token;
        ev->started = op->started;
        ev->rounds = lk->rounds;
        ev->messages = lk->messages;
        if (have) {
            ovl__event_from_record(ev, &r);
        } else {
            ev->rtype = op->rtype;
            strcpy(ev->name, op->name);
            ev->state = OVL_PS_UNKNOWN;
        }
    }
    op_free(n, op);
}

static void op_finish(struct ovl_node *n, struct ovl_op *op, uint64_t now)
{
    struct ovl_contact c[OVL_DHT_K];
    struct ovl_msg m;
    size_t k;

    ovl__timer_set(n, &op->timer, OVL_NEVER);
    switch (op->kind) {
    case OVL__OP_SEARCH:
        search_done(n, op, now);
        return;
    case OVL__OP_STORE: {
        struct ovl_record r;

        op->phase = 1;
        k = ovl_lookup_closest(op->lk, c, OVL_DHT_K);
        if (self_replica(n, op->lk->target, c, k) &&
            ovl_record_parse(&r, op->rec, op->rec_len) == 0) {
            enum ovl_store_put st = keep(n, &r, now);

            if (st == OVL_PUT_STORED || st == OVL_PUT_DUPLICATE)
                op->acks++;
            if (k == OVL_DHT_K)
                k--; /* we are one of the k */
        }
        for (size_t i = 0; i < k; i++) {
            struct ovl_link *l = ovl__link_udp(n, &c[i], now);

            /* Remember the targets: a lost STORE is sent once more. */
            op->holders[op->nholders++].c = c[i];
            memset(&m, 0, sizeof(m));
            m.type = OVL_M_STORE;
            m.u.store.record = op->rec;
            m.u.store.record_len = op->rec_len;
            if (l && ovl__send_msg(n, l, &m, OVL__OWN_OP, op->id,
                                   n->t.rpc_timeout, now) == 0)
                op->pending++;
        }
        if (op->pending == 0)
            store_done(n, op, now);
        return;
    }
    case OVL__OP_SUBSCRIBE: {
        struct ovl_watch *w = watch_find(n, op->lk->target, NULL);
        uint16_t ttl = (uint16_t)(n->t.subscribe_ttl / OVL_NS_PER_SEC);

        op->phase = 1;
        for (struct ovl_watch *x = n->watches; x; x = x->next)
            if (memcmp(x->key, op->lk->target, 32) == 0)
                x->renew_at = now + n->t.subscribe_ttl / 2;
        k = ovl_lookup_closest(op->lk, c, OVL__SUB_REPLICAS);
        for (size_t i = 0; w && i < k; i++) {
            struct ovl_link *l = ovl__link_udp(n, &c[i], now);

            memset(&m, 0, sizeof(m));
            m.type = OVL_M_SUBSCRIBE;
            memcpy(m.u.subscribe.key, op->lk->target, 32);
            m.u.subscribe.ttl_s = ttl ? ttl : 1;
            if (l && ovl__send_msg(n, l, &m, OVL__OWN_OP, op->id,
                                   n->t.rpc_timeout, now) == 0)
                op->pending++;
        }
        if (op->pending == 0)
            op_free(n, op);
        return;
    }
    case OVL__OP_JOIN: {
        struct ovl_event *ev;
        int closest;
        uint8_t rnd[32], id[32];
        int started = 0;

        n->joined = true;
        ev = ovl__event(n, OVL_NEV_LOGGED_IN);
        ovl__self_contact(n, &ev->supernode);
        k = ovl_lookup_closest(op->lk, c, 1);
        closest = k ? ovl_id_bucket(n->id->node_id, c[0].node_id) : -1;
        op_free(n, op);
        if (n->handle_len)
            ovl__publish_presence(n, now);
        for (uint32_t i = 0; i < n->nrooms; i++)
            n->rooms[i].refresh_at = now;
        ovl__house_schedule(n, now);
        /* Kademlia's join: refresh the buckets beyond our closest
         * neighbour that are not full (a few, the rest fill by use). */
        for (int b = OVL_ID_BITS - 1; b > closest && started < 4; b--) {
            struct ovl_op *r;

            if (n->rt.b[b] && n->rt.b[b]->n >= OVL_DHT_K)
                continue;
            ovl_rng_bytes(&n->rng, rnd, sizeof(rnd));
            ovl_rt_random_id(&n->rt, b, rnd, id);
            r = op_lookup(n, OVL__OP_REFRESH, OVL_LOOKUP_NODES, id, now);
            if (r) {
                op_step(n, r, now);
                started++;
            }
        }
        return;
    }
    default:
        op_free(n, op);
        return;
    }
}

/*
 * A lookup query of a STORE operation timed out: ask once more. One lost
 * datagram would otherwise drop a live node from the replica set, and if
 * it already held an older version (the presence an attested LASTSEEN
 * ends), it stays the closest holder of a stale record that searches,
 * which stop at the closest holder, keep finding. Searches do not retry:
 * they are waited for, and a dead candidate would cost them a second.
 * Returns true if the query was sent again.
 */
static bool query_retry(struct ovl_node *n, struct ovl_op *op,
                        const struct ovl_rpc *r, uint64_t now)
{
    uint32_t id = ovl_load_le32(r->peer_id);
    struct ovl_msg m;

    if (op->kind != OVL__OP_STORE || r->link == NULL || r->link->dead ||
        op->nqretried >= OVL_DHT_K)
        return false;
    for (uint8_t i = 0; i < op->nqretried; i++)
        if (op->qretried[i] == id)
            return false;
    op->qretried[op->nqretried++] = id;
    memset(&m, 0, sizeof(m));
    m.type = OVL_M_FIND_NODE;
    memcpy(m.u.find_node.target, op->lk->target, 32);
    return ovl__send_msg(n, r->link, &m, OVL__OWN_OP, op->id,
                         n->t.rpc_timeout, now) == 0;
}

/* An answer (or a failure) to one of an operation's RPCs. */
static void op_rpc(struct ovl_node *n, struct ovl_op *op, struct ovl_rpc *r,
                   const struct ovl_msg *m, uint64_t now)
{
    if (m == NULL || m->type == OVL_M_ERROR)
        ovl_rt_failed(&n->rt, r->peer_id);
    else if (r->link && !r->link->dead && r->link->conn == NULL)
        ovl__dht_seen(n, r->link, now);

    if (op->phase == 1) {
        if (op->kind == OVL__OP_STORE) {
            if (m == NULL && r->link && !r->link->dead) {
                for (uint8_t i = 0; i < op->nholders; i++) {
                    struct ovl_msg s;

                    if (memcmp(op->holders[i].c.node_id, r->peer_id, 32) != 0 ||
                        (op->retried & (1u << i)))
                        continue;
                    op->retried |= (uint16_t)(1u << i);
                    memset(&s, 0, sizeof(s));
                    s.type = OVL_M_STORE;
                    s.u.store.record = op->rec;
                    s.u.store.record_len = op->rec_len;
                    if (ovl__send_msg(n, r->link, &s, OVL__OWN_OP, op->id,
                                      n->t.rpc_timeout, now) == 0)
                        return; /* still pending */
                }
            }
            if (m && m->type == OVL_M_STORE_OK &&
                m->u.store_ok.status <= OVL_STORE_DUPLICATE)
                op->acks++;
            if (--op->pending == 0)
                store_done(n, op, now);
        } else if (op->kind == OVL__OP_SUBSCRIBE) {
            if (m && m->type == OVL_M_NOTIFY && r->link)
                ovl__super_notify(n, r->link, m, now);
            if (--op->pending == 0)
                op_free(n, op);
        }
        return;
    }
    if (op->lk == NULL)
        return;
    if (m == NULL && query_retry(n, op, r, now))
        return; /* still asked */
    if (m == NULL || m->type == OVL_M_ERROR) {
        ovl_lookup_failed(op->lk, r->peer_id);
    } else if (m->type == OVL_M_NODES) {
        for (int i = 0; i < m->u.contacts.count; i++)
            ovl_lookup_add(op->lk, &m->u.contacts.contacts[i]);
        ovl_lookup_answered(op->lk, r->peer_id);
    } else if (m->type == OVL_M_VALUE) {
        struct ovl_record rec;

        for (int i = 0; i < m->u.value.count; i++)
            ovl_lookup_add(op->lk, &m->u.value.contacts[i]);
        if (m->u.value.status == OVL_VALUE_FOUND &&
            ovl__verify(n, &rec, m->u.value.record, m->u.value.record_len,
                        now) == 0 &&
            memcmp(rec.key, op->lk->target, 32) == 0) {
            ovl_cache_saw_seq(&n->cache, rec.key, rec.seq);
            ovl_lookup_value(op->lk, r->peer_id, &rec, now);
            if (op->nholders < OVL_DHT_K && r->link) {
                link_contact(r->link, &op->holders[op->nholders].c);
                op->holders[op->nholders].seq = rec.seq;
                op->holders[op->nholders].type = rec.type;
                op->nholders++;
            }
        } else {
            /* A forged or misfiled record counts as no answer of value. */
            ovl_lookup_answered(op->lk, r->peer_id);
        }
    } else {
        ovl_lookup_answered(op->lk, r->peer_id);
    }
    op_step(n, op, now);
}

void ovl__super_rpc_done(struct ovl_node *n, struct ovl_rpc *r,
                         const struct ovl_msg *m, uint64_t now)
{
    struct ovl_op *op;

    if (r->owner == OVL__OWN_RTPING) {
        if (m == NULL)
            ovl_rt_failed(&n->rt, r->peer_id);
        else if (r->link && !r->link->dead)
            ovl__dht_seen(n, r->link, now);
        return;
    }
    op = op_find(n, r->owner_id);
    if (op == NULL)
        return;
    switch (r->owner) {
    case OVL__OWN_OP:
        op_rpc(n, op, r, m, now);
        return;
    case OVL__OWN_RELAY:
        if (m && m->type == OVL_M_REACH_OK) {
            op->result = m->u.reach.result & OVL_REACH_KNOWN;
            reach_answer(n, op, now);
            return;
        }
        /* The relay was busy or silent: that says nothing about the
         * peer's reachability, so no verdict; it asks again soon. */
        reply_error(n, op->req_link, op->req_rid, OVL_MERR_BUSY, now);
        op_free(n, op);
        return;
    case OVL__OWN_DIAL:
        if (m && m->type == OVL_M_PONG)
            op->result |= r->link == op->dial_tcp ? OVL_REACH_TCP
                                                  : OVL_REACH_UDP;
        if (op->pending && --op->pending == 0)
            reach_answer(n, op, now);
        return;
    default:
        return;
    }
}

/* ---- Unsolicited NOTIFY from a storage node ---------------------------------------------------- */

void ovl__super_notify(struct ovl_node *n, struct ovl_link *l,
                       const struct ovl_msg *m, uint64_t now)
{
    struct ovl_record r;

    (void)l;
    if (m->u.notify.record == NULL ||
        watch_find(n, m->u.notify.key, NULL) == NULL)
        return;
    if (ovl__verify(n, &r, m->u.notify.record, m->u.notify.record_len, now) !=
            0 ||
        memcmp(r.key, m->u.notify.key, 32) != 0)
        return;
    ovl_cache_saw_seq(&n->cache, r.key, r.seq);
    ovl_cache_put(&n->cache, r.key, &r, now);
    watches_fire(n, &r, now);
}

/* ---- Routing-table upkeep ------------------------------------------------------------------------ */

void ovl__dht_seen(struct ovl_node *n, struct ovl_link *l, uint64_t now)
{
    struct ovl_contact c, lrs;
    const struct ovl_rt_entry *e;

    link_contact(l, &c);
    l->flags |= OVL__LF_DHT;
    switch (ovl_rt_seen(&n->rt, &c, now, &lrs)) {
    case OVL_RT_ADDED:
        ovl_hc_add(&n->hc, &c, ovl__wall_s(n, now));
        break;
    case OVL_RT_PENDING:
        /* Kademlia: check the least recently seen before replacing it. */
        e = ovl_rt_find(&n->rt, lrs.node_id);
        if (e && now > e->last_seen + 60 * OVL_NS_PER_SEC) {
            struct ovl_link *pl = ovl__link_udp(n, &lrs, now);
            struct ovl_msg m;

            memset(&m, 0, sizeof(m));
            m.type = OVL_M_PING;
            if (pl)
                ovl__send_msg(n, pl, &m, OVL__OWN_RTPING, 0, n->t.rpc_timeout,
                              now);
            /* Not again for this entry until the answer or the timeout. */
            ovl_rt_seen(&n->rt, &lrs, now, NULL);
        }
        break;
    default:
        break;
    }
}

/* ---- Local entry points ------------------------------------------------------------------------ */

static void store_record(struct ovl_node *n, const uint8_t *rec, size_t len,
                         struct ovl_link *req, uint32_t rid, uint32_t token,
                         uint64_t now)
{
    struct ovl_record r;
    struct ovl_op *op;

    if (ovl_record_parse(&r, rec, len) != 0)
        return;
    op = op_lookup(n, OVL__OP_STORE, OVL_LOOKUP_NODES, r.key, now);
    if (op == NULL || (op->rec = malloc(len)) == NULL) {
        if (op)
            op_free(n, op);
        if (req)
            answer_store(n, req, rid, OVL_STORE_FULL, 0, 0, now);
        return;
    }
    memcpy(op->rec, rec, len);
    op->rec_len = (uint16_t)len;
    op->token = token;
    op_take_link(op, req, rid);
    op_step(n, op, now);
}

int ovl__super_store(struct ovl_node *n, const uint8_t *rec, size_t len,
                     uint64_t now)
{
    struct ovl_record r;

    if (ovl__verify(n, &r, rec, len, now) != 0)
        return -EINVAL;
    store_record(n, rec, len, NULL, 0, ++n->next_token, now);
    return 0;
}

int ovl__super_search(struct ovl_node *n, uint8_t rtype, const char *name,
                      uint64_t now, uint32_t token)
{
    const struct ovl_cache_entry *c;
    struct ovl_event *ev;
    struct ovl_record r;
    struct ovl_op *op;
    uint8_t key[32];

    ovl_record_key(key, rtype, name, strlen(name));
    n->stats.searches++;
    c = ovl_cache_get(&n->cache, key, now, ovl__wall_s(n, now));
    if (c) {
        ev = ovl__event(n, OVL_NEV_LOOKUP);
        ev->token = token;
        ev->started = now;
        if (c->len && ovl_record_parse(&r, c->rec, c->len) == 0) {
            ovl__event_from_record(ev, &r);
        } else {
            ev->rtype = rtype;
            strcpy(ev->name, name);
            ev->state = OVL_PS_UNKNOWN;
        }
        return 0;
    }
    op = op_lookup(n, OVL__OP_SEARCH, OVL_LOOKUP_VALUE, key, now);
    if (op == NULL)
        return -ENOMEM;
    op->token = token;
    op->rtype = rtype;
    strcpy(op->name, name);
    op_step(n, op, now);
    return 0;
}

void ovl__super_start(struct ovl_node *n, uint64_t now)
{
    struct ovl_op *op;

    if (n->cache.e == NULL &&
        ovl_cache_init(&n->cache, 1024, n->t.cache_ttl, n->t.neg_cache_ttl))
        return;
    n->republish_at = now + n->t.republish / 2 + jitter(n, n->t.republish / 2);
    n->expire_at = now + 60 * OVL_NS_PER_SEC;
    n->refresh_at = now + n->t.bucket_refresh;
    op = op_lookup(n, OVL__OP_JOIN, OVL_LOOKUP_NODES, n->id->node_id, now);
    if (op)
        op_step(n, op, now);
    ovl__house_schedule(n, now);
}

/* ---- Peers leaving ------------------------------------------------------------------------------ */

void ovl__super_link_closed(struct ovl_node *n, struct ovl_link *l,
                            uint64_t now)
{
    struct ovl_watch **p;

    if (!(l->flags & OVL__LF_ATTACHED))
        return;
    l->flags &= (uint8_t)~OVL__LF_ATTACHED;
    if (n->attached)
        n->attached--;
    if (l->presence && !l->logged_out && n->role == OVL_ROLE_SUPERNODE) {
        /* It vanished: "last seen now", signed by us, ending the presence
         * record it gave us. */
        uint8_t rec[OVL_RECORD_MAX];
        int len = ovl_record_attest(rec, sizeof(rec), l->presence,
                                    l->presence_len, ovl__wall_s(n, now),
                                    n->id);

        if (len > 0) {
            n->stats.attests++;
            store_record(n, rec, (size_t)len, NULL, 0, 0, now);
        }
    }
    free(l->presence);
    l->presence = NULL;
    l->presence_len = 0;
    for (p = &n->watches; *p;) {
        struct ovl_watch *w = *p;

        if (w->peer == l) {
            *p = w->next;
            ovl__link_unref(n, w->peer);
            free(w);
        } else {
            p = &w->next;
        }
    }
}

/* ---- Housekeeping --------------------------------------------------------------------------------- */

struct due_ctx {
    struct ovl_node *n;
    uint64_t now;
    int budget;
};

static void republish_one(struct ovl_store_entry *e, void *data)
{
    struct due_ctx *d = data;
    struct ovl_node *n = d->n;

    if (d->budget <= 0)
        return;
    d->budget--;
    e->republish_at = d->now + n->t.republish + jitter(n, n->t.republish / 4);
    store_record(n, e->rec, e->len, NULL, 0, 0, d->now);
}

void ovl__super_house(struct ovl_node *n, uint64_t now)
{
    uint64_t tick = 60 * OVL_NS_PER_SEC;

    if (now >= n->expire_at) {
        struct ovl_sub **ps;
        struct ovl_watch **pw;

        ovl_store_expire(&n->store, ovl__wall_s(n, now));
        for (ps = &n->subs; *ps;) {
            if (now >= (*ps)->expires) {
                struct ovl_sub *s = *ps;
                *ps = s->next;
                free(s);
            } else {
                ps = &(*ps)->next;
            }
        }
        for (pw = &n->watches; *pw;) {
            struct ovl_watch *w = *pw;

            if (now >= w->expires || w->peer->dead) {
                *pw = w->next;
                ovl__link_unref(n, w->peer);
                free(w);
                continue;
            }
            if (now >= w->renew_at && watch_find(n, w->key, NULL) == w) {
                w->renew_at = now + n->t.subscribe_ttl / 2;
                start_subscribe(n, w->key, now);
            }
            pw = &w->next;
        }
        n->expire_at = now + tick;
    }
    if (n->joined && now >= n->republish_at) {
        /* A bounded batch per tick spreads the load. */
        struct due_ctx d = {n, now, 64};

        ovl_store_each_due(&n->store, now, republish_one, &d);
        n->republish_at = now + (d.budget > 0 ? tick : tick / 10);
    }
    if (n->joined && now >= n->refresh_at) {
        int b = ovl_rt_stale_bucket(&n->rt, now - n->t.bucket_refresh);

        if (b >= 0) {
            uint8_t rnd[32], id[32];
            struct ovl_op *op;

            ovl_rng_bytes(&n->rng, rnd, sizeof(rnd));
            ovl_rt_random_id(&n->rt, b, rnd, id);
            op = op_lookup(n, OVL__OP_REFRESH, OVL_LOOKUP_NODES, id, now);
            if (op)
                op_step(n, op, now);
        }
        n->refresh_at = now + (b >= 0 ? tick : n->t.bucket_refresh / 4);
    }
    ovl__house_schedule(n, ovl__tmin(n->expire_at,
                                    n->joined ? ovl__tmin(n->republish_at,
                                                         n->refresh_at)
                                              : OVL_NEVER));
}
