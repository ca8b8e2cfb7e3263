/*
 * ovl_node.c: a node's lifecycle, its output and event queues, its timer
 * heap, the inputs, housekeeping and message dispatch (ovl_node.h).
 */
#include "ovl_node_internal.h"

#include <stdlib.h>

#include <sodium.h>

/* Default timing (ovl_node.h documents each). */
#define MS (OVL_NS_PER_SEC / 1000)
#define S OVL_NS_PER_SEC
static const struct ovl_node_timing defaults = {
    .rpc_timeout = 1 * S,
    .probe_timeout = 1500 * MS,
    .tcp_timeout = 4 * S,
    .search_timeout = 12 * S,
    .backoff_min = 1 * S,
    .backoff_max = 60 * S,
    .keepalive = 30 * S,
    .dead_after = 75 * S,
    .peer_timeout = 100 * S,
    .presence_refresh = 20 * 60 * S,
    .room_refresh = 2 * 3600 * S,
    .republish = 30 * 60 * S,
    .bucket_refresh = 60 * 60 * S,
    .hostcache_refresh = 10 * 60 * S,
    .promote_uptime = 3600 * S,
    .link_idle = 120 * S,
    .cache_ttl = 20 * S,
    .neg_cache_ttl = 10 * S,
    .lookup_grace = 400 * MS,
    .subscribe_ttl = 600 * S,
    .accept_timeout = 10 * S,
};

/* Default request limits (ovl_node.h): generous for a person at a
 * client, whose supernode does each of these for it. A peer's own pacing
 * of buddy requests (ovl_peer.c) stays below search and subscribe. */
static const struct ovl_node_rate_limits rate_defaults = {
    .search = {20, 40},
    .store = {5, 20},
    .subscribe = {20, 40},
    .rare = {1, 5},
    .dht = {20, 40},
};

static void fill_timing(struct ovl_node_timing *dst,
                        const struct ovl_node_timing *src)
{
    const uint64_t *s = (const uint64_t *)src, *d = (const uint64_t *)&defaults;
    uint64_t *o = (uint64_t *)dst;

    _Static_assert(sizeof(struct ovl_node_timing) % sizeof(uint64_t) == 0,
                   "timing is an array of uint64_t");
    for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
        o[i] = s[i] ? s[i] : d[i];
    /* Losing a supernode (or, on one, an attached peer) takes more than
     * two missed keep-alives, whatever interval was chosen. */
    if (src->dead_after == 0 && dst->keepalive * 5 / 2 > dst->dead_after)
        dst->dead_after = dst->keepalive * 5 / 2;
    if (src->peer_timeout == 0 && dst->keepalive * 3 > dst->peer_timeout)
        dst->peer_timeout = dst->keepalive * 3;
}

static void fill_rate(struct ovl_rate *dst, const struct ovl_node_rate *src,
                      const struct ovl_node_rate *def)
{
    uint32_t per_s = src->per_s ? src->per_s : def->per_s;

    dst->burst = src->burst ? src->burst : def->burst;
    dst->interval = per_s > OVL_NS_PER_SEC ? 0 : OVL_NS_PER_SEC / per_s;
}

static void fill_rates(struct ovl_node *n, const struct ovl_node_rate_limits *c)
{
    const struct ovl_node_rate_limits *d = &rate_defaults;

    fill_rate(&n->rl[OVL__RL_SEARCH], &c->search, &d->search);
    fill_rate(&n->rl[OVL__RL_STORE], &c->store, &d->store);
    fill_rate(&n->rl[OVL__RL_SUBSCRIBE], &c->subscribe, &d->subscribe);
    fill_rate(&n->rl[OVL__RL_RARE], &c->rare, &d->rare);
    fill_rate(&n->rl[OVL__RL_DHT], &c->dht, &d->dht);
}

uint64_t ovl__wall_s(const struct ovl_node *n, uint64_t now)
{
    return (now + n->wall_offset) / OVL_NS_PER_SEC;
}

uint32_t ovl__random32(struct ovl_node *n)
{
    uint8_t b[4];
    uint32_t v;

    do {
        ovl_rng_bytes(&n->rng, b, sizeof(b));
        v = ovl_load_le32(b);
    } while (v == 0);
    return v;
}

void ovl__self_contact(const struct ovl_node *n, struct ovl_contact *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->identity, n->id->ed_pk, 32);
    memcpy(c->node_id, n->id->node_id, 32);
    c->udp = n->local;
    c->tcp_port = n->tcp_port;
    c->flags = n->tcp443 ? OVL_CF_TCP443 : 0;
}

/* ---- Timer heap (libuv's timer heap, array form) ---------------------------------- */

void ovl__timer_init(struct ovl_timer *t, uint8_t kind)
{
    t->due = OVL_NEVER;
    t->idx = UINT32_MAX;
    t->kind = kind;
}

static void heap_swap(struct ovl_node *n, uint32_t a, uint32_t b)
{
    struct ovl_timer *t = n->heap[a];

    n->heap[a] = n->heap[b];
    n->heap[b] = t;
    n->heap[a]->idx = a;
    n->heap[b]->idx = b;
}

static void heap_up(struct ovl_node *n, uint32_t i)
{
    while (i > 0 && n->heap[(i - 1) / 2]->due > n->heap[i]->due) {
        heap_swap(n, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct ovl_node *n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < n->nheap && n->heap[l]->due < n->heap[m]->due)
            m = l;
        if (r < n->nheap && n->heap[r]->due < n->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(n, i, m);
        i = m;
    }
}

static void heap_remove(struct ovl_node *n, struct ovl_timer *t)
{
    uint32_t i = t->idx;

    n->nheap--;
    if (i != n->nheap) {
        n->heap[i] = n->heap[n->nheap];
        n->heap[i]->idx = i;
        heap_down(n, i);
        heap_up(n, i);
    }
    t->idx = UINT32_MAX;
}

/* Arms @t for @due (OVL_NEVER disarms). Growing the heap can fail only for
 * lack of memory; the timer then stays disarmed, which the periodic
 * housekeeping tolerates (links and RPCs are also swept there). */
void ovl__timer_set(struct ovl_node *n, struct ovl_timer *t, uint64_t due)
{
    if (t->idx != UINT32_MAX) {
        if (due == OVL_NEVER) {
            heap_remove(n, t);
            t->due = OVL_NEVER;
            return;
        }
        t->due = due;
        heap_down(n, t->idx);
        heap_up(n, t->idx);
        return;
    }
    t->due = due;
    if (due == OVL_NEVER)
        return;
    if (n->nheap == n->heapcap) {
        uint32_t cap = n->heapcap ? n->heapcap * 2 : 16;
        struct ovl_timer **h = realloc(n->heap, cap * sizeof(*h));

        if (h == NULL) {
            t->due = OVL_NEVER;
            return;
        }
        n->heap = h;
        n->heapcap = cap;
    }
    t->idx = n->nheap;
    n->heap[n->nheap++] = t;
    heap_up(n, t->idx);
}

void ovl__house_schedule(struct ovl_node *n, uint64_t due)
{
    if (due < n->house.due)
        ovl__timer_set(n, &n->house, due);
}

uint64_t ovl_node_next_timer(const struct ovl_node *n)
{
    return n->nheap ? n->heap[0]->due : OVL_NEVER;
}

/* ---- Output and event queues ------------------------------------------------------- */

/* Appends an output; its data is copied into the arena. On allocation
 * failure the output is lost, like a datagram dropped by a full socket
 * buffer; protocols above recover by their timeouts. */
static void out_push(struct ovl_node *n, const struct ovl_out *o)
{
    struct ovl_outq *q = &n->out;
    struct ovl_out *slot;

    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        struct ovl_out *it = realloc(q->items, cap * sizeof(*it));

        if (it == NULL)
            return;
        q->items = it;
        q->cap = cap;
    }
    if (o->len > q->acap - q->used) {
        size_t cap = q->acap ? q->acap : 2048;
        uint8_t *a;

        while (cap - q->used < o->len)
            cap *= 2;
        a = realloc(q->arena, cap);
        if (a == NULL)
            return;
        q->arena = a;
        q->acap = cap;
    }
    slot = &q->items[q->n++];
    *slot = *o;
    if (o->len) {
        memcpy(q->arena + q->used, o->data, o->len);
        /* Store the offset; out_next turns it back into a pointer (the
         * arena may move while more outputs are queued). */
        slot->data = (const uint8_t *)(uintptr_t)q->used;
        q->used += o->len;
    }
    n->stats.tx_bytes += o->len;
}

void ovl__out_udp(struct ovl_node *n, const struct ovl_addr *to,
                  const uint8_t *data, size_t len)
{
    struct ovl_out o = {.kind = OVL_OUT_UDP_SEND, .addr = *to, .data = data,
                        .len = len};

    out_push(n, &o);
}

void ovl__out_tcp(struct ovl_node *n, enum ovl_out_kind kind, uint32_t conn,
                  const struct ovl_addr *to, const uint8_t *data, size_t len)
{
    struct ovl_out o = {.kind = kind, .conn = conn, .data = data, .len = len};

    if (to)
        o.addr = *to;
    out_push(n, &o);
}

bool ovl_node_out_next(struct ovl_node *n, struct ovl_out *out)
{
    struct ovl_outq *q = &n->out;

    if (q->head == q->n) {
        q->head = q->n = 0;
        q->used = 0;
        return false;
    }
    *out = q->items[q->head++];
    if (out->len)
        out->data = q->arena + (uintptr_t)out->data;
    else
        out->data = NULL;
    return true;
}

struct ovl_event *ovl__event(struct ovl_node *n, enum ovl_event_kind kind)
{
    static struct ovl_event sink; /* when out of memory: written, lost */
    struct ovl_event *ev;

    if (n->nev == n->evcap) {
        uint32_t cap = n->evcap ? n->evcap * 2 : 4;
        struct ovl_event *e = realloc(n->ev, cap * sizeof(*e));

        if (e == NULL) {
            memset(&sink, 0, sizeof(sink));
            return &sink;
        }
        n->ev = e;
        n->evcap = cap;
    }
    ev = &n->ev[n->nev++];
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->role = n->role;
    return ev;
}

bool ovl_node_event_next(struct ovl_node *n, struct ovl_event *ev)
{
    if (n->evhead == n->nev) {
        n->evhead = n->nev = 0;
        /* Events are rare: give back a large queue once drained. */
        if (n->evcap > 64) {
            free(n->ev);
            n->ev = NULL;
            n->evcap = 0;
        }
        return false;
    }
    *ev = n->ev[n->evhead++];
    return true;
}

bool ovl__addr_unspecified(const struct ovl_addr *a)
{
    static const uint8_t zero[16];

    return memcmp(a->ip, zero, sizeof(zero)) == 0;
}

/* The unspecified address (all-zero IP) can never be where a bridge is
 * reached (RFC 1122 3.2.1.3, RFC 4291 2.5.2), so a room record carrying
 * it as its first address cannot be a live one: it is a withdrawal. The
 * record format needs no change, and a node that does not know the rule
 * still stores it over the live version (newer seq). */
bool ovl__room_withdrawn(const struct ovl_record *r)
{
    return r->type == OVL_R_ROOM && r->naddr >= 1 &&
           ovl__addr_unspecified(&r->addrs[0]);
}

void ovl__event_from_record(struct ovl_event *ev, const struct ovl_record *r)
{
    ev->rtype = r->type == OVL_R_ROOM ? OVL_R_ROOM : OVL_R_PRESENCE;
    memcpy(ev->name, r->name, r->name_len + 1u);
    memcpy(ev->owner, r->owner, 32);
    ev->seq = r->seq;
    ev->naddr = r->naddr;
    memcpy(ev->addrs, r->addrs, sizeof(ev->addrs));
    ev->tcp_port = r->tcp_port;
    switch (r->type) {
    case OVL_R_PRESENCE:
        ev->state = OVL_PS_ONLINE;
        ev->owner_supernode = r->supernode;
        break;
    case OVL_R_LASTSEEN:
        ev->state = OVL_PS_OFFLINE;
        ev->last_seen = r->last_seen;
        break;
    default:
        ev->state = OVL_PS_ONLINE;
        if (ovl__room_withdrawn(r)) {
            /* Gone: nothing to reach; owner and seq say who said so. */
            ev->state = OVL_PS_UNKNOWN;
            ev->naddr = 0;
            memset(ev->addrs, 0, sizeof(ev->addrs));
            ev->tcp_port = 0;
        }
        break;
    }
}

/* ---- Lifecycle ---------------------------------------------------------------------- */

static int check_config(const struct ovl_node_config *cfg)
{
    struct ovl_cert c;
    enum ovl_rerr why;

    if (cfg == NULL || cfg->identity == NULL ||
        cfg->role_mode > OVL_ROLE_MODE_PEER ||
        (cfg->local.family != OVL_AF_INET &&
         cfg->local.family != OVL_AF_INET6) ||
        cfg->local.port == 0 || (cfg->nbootstrap && cfg->bootstrap == NULL))
        return -EINVAL;
    if (cfg->handle && !ovl_name_valid(cfg->handle, strlen(cfg->handle)))
        return -EINVAL;
    /* A certificate must at least be well-formed and for this handle and
     * key; its signature is the supernode's business (we may not know the
     * authority). */
    if (cfg->cert) {
        if (cfg->handle == NULL)
            return -EINVAL;
        /* At time 0 a good certificate is "not yet valid": that is the
         * only refusal acceptable here. */
        if (ovl_cert_verify(&c, cfg->cert, OVL_CERT_LEN, NULL, 0, &why) != 0 &&
            why != OVL_RERR_CERT_EXPIRED)
            return -EINVAL;
    }
    return 0;
}

int ovl_node_new(struct ovl_node **out, const struct ovl_node_config *cfg,
                 uint64_t now)
{
    struct ovl_node *n;
    int ret;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if ((ret = check_config(cfg)) != 0)
        return ret;
    if (sodium_init() < 0)
        return -EIO;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    n->id = cfg->identity;
    n->rng = cfg->rng;
    n->mode = cfg->role_mode;
    n->role = cfg->role_mode == OVL_ROLE_MODE_SUPERNODE ? OVL_ROLE_SUPERNODE
                                                        : OVL_ROLE_PEER;
    if (cfg->handle) {
        n->handle_len = (uint8_t)strlen(cfg->handle);
        memcpy(n->handle, cfg->handle, n->handle_len);
    }
    if (cfg->cert) {
        memcpy(n->cert, cfg->cert, OVL_CERT_LEN);
        n->has_cert = true;
    }
    if (cfg->authority) {
        memcpy(n->authority, cfg->authority, 32);
        n->has_authority = true;
    }
    n->local = cfg->local;
    n->tcp_port = cfg->tcp_port;
    n->tcp443 = cfg->tcp443;
    n->wall_offset = cfg->wall_offset;
    n->max_peers = cfg->max_peers ? cfg->max_peers : 1000;
    n->fallbacks = cfg->fallbacks ? cfg->fallbacks : 2;
    n->parallel = cfg->login_parallel ? cfg->login_parallel : 3;
    n->plain = cfg->insecure_plaintext;
    fill_timing(&n->t, &cfg->timing);
    fill_rates(n, &cfg->rate_limits);
    n->max_unauth = cfg->max_unauth_conns ? cfg->max_unauth_conns : 1024;
    n->started_at = now;
    n->links.next = n->links.prev = &n->links;
    n->ops.next = n->ops.prev = &n->ops;
    ovl__timer_init(&n->house, OVL__T_HOUSE);
    ovl_hc_init(&n->hc);
    for (size_t i = 0; i < cfg->nbootstrap; i++)
        ovl_hc_add(&n->hc, &cfg->bootstrap[i], ovl__wall_s(n, now));

    ret = ovl__transport_init(n, cfg->max_sessions, &cfg->session_limits);
    if (ret == 0)
        ret = ovl__super_init(n);
    if (ret == 0) {
        ovl_store_close(&n->store); /* re-init with the configured size */
        ret = ovl_store_init(&n->store, cfg->max_records);
    }
    if (ret) {
        ovl_node_free(n);
        return ret;
    }
    *out = n;
    return 0;
}

void ovl_node_free(struct ovl_node *n)
{
    if (n == NULL)
        return;
    ovl__peer_free(n);
    ovl__super_close(n);
    ovl__transport_close(n);
    free(n->heap);
    free(n->out.items);
    free(n->out.arena);
    free(n->ev);
    free(n->buddies);
    free(n->rooms);
    sodium_memzero(n, sizeof(*n));
    free(n);
}

int ovl_node_start(struct ovl_node *n, uint64_t now)
{
    if (n->pstate != OVL__P_IDLE || n->joined)
        return -EALREADY;
    n->promote_at = n->started_at + n->t.promote_uptime;
    if (n->role == OVL_ROLE_SUPERNODE)
        ovl__super_start(n, now);
    else
        ovl__peer_start(n, now);
    ovl__house_schedule(n, now);
    return 0;
}

/* ---- Inputs ------------------------------------------------------------------------------ */

void ovl_node_udp_recv(struct ovl_node *n, const struct ovl_addr *from,
                       const uint8_t *buf, size_t len, uint64_t now)
{
    n->stats.rx_bytes += len;
    if (from == NULL || buf == NULL || len == 0 || len > OVL__DGRAM_MAX) {
        n->stats.dropped++;
        return;
    }
    ovl__udp_input(n, from, buf, len, now);
}

uint32_t ovl_node_tcp_accepted(struct ovl_node *n, const struct ovl_addr *from,
                               uint64_t now)
{
    if (from == NULL)
        return 0;
    return ovl__conn_accept(n, from, now);
}

void ovl_node_tcp_connected(struct ovl_node *n, uint32_t conn, uint64_t now)
{
    struct ovl_conn *c = ovl__conn_find(n, conn);

    if (c)
        ovl__conn_connected(n, c, now);
}

void ovl_node_tcp_recv(struct ovl_node *n, uint32_t conn, const uint8_t *buf,
                       size_t len, uint64_t now)
{
    struct ovl_conn *c = ovl__conn_find(n, conn);

    n->stats.rx_bytes += len;
    if (c == NULL) {
        n->stats.dropped++;
        return;
    }
    ovl__tcp_input(n, c, buf, len, now);
}

void ovl_node_tcp_closed(struct ovl_node *n, uint32_t conn, uint64_t now)
{
    struct ovl_conn *c = ovl__conn_find(n, conn);

    if (c)
        ovl__conn_closed(n, c, now);
}

/* ---- Timers and housekeeping ------------------------------------------------------------ */

static void house(struct ovl_node *n, uint64_t now)
{
    /* Every duty below re-arms the house timer for its next deadline
     * (ovl__house_schedule keeps the earliest). */
    ovl__timer_set(n, &n->house, OVL_NEVER);
    if (n->role == OVL_ROLE_SUPERNODE)
        ovl__super_house(n, now);
    ovl__peer_house(n, now);
}

void ovl_node_timers(struct ovl_node *n, uint64_t now)
{
    /* Bounded: a timer handler that re-arms for "now" runs once per call,
     * not forever (the caller calls again at next_timer). */
    for (uint32_t budget = n->nheap + 16; budget && n->nheap &&
                                          n->heap[0]->due <= now;
         budget--) {
        struct ovl_timer *t = n->heap[0];

        heap_remove(n, t);
        t->due = OVL_NEVER;
        switch (t->kind) {
        case OVL__T_HOUSE:
            house(n, now);
            break;
        case OVL__T_LINK:
            ovl__link_timer(n, OVL__CONTAINER(t, struct ovl_link, timer), now);
            break;
        case OVL__T_RPC:
            ovl__rpc_timeout(n, OVL__CONTAINER(t, struct ovl_rpc, timer), now);
            break;
        case OVL__T_OP:
            ovl__op_timer(n, OVL__CONTAINER(t, struct ovl_op, timer), now);
            break;
        case OVL__T_CONN:
            ovl__conn_timer(n, OVL__CONTAINER(t, struct ovl_conn, timer),
                            now);
            break;
        default:
            break;
        }
    }
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static void answer_error(struct ovl_node *n, struct ovl_link *l,
                         const struct ovl_msg *req, uint16_t code,
                         uint64_t now)
{
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_ERROR;
    m.rid = req->rid;
    m.u.error.code = code;
    ovl__send_msg(n, l, &m, OVL__OWN_NONE, 0, 0, now);
}

static void answer_ping(struct ovl_node *n, struct ovl_link *l,
                        const struct ovl_msg *req, uint64_t now)
{
    struct ovl_msg m;

    memset(&m, 0, sizeof(m));
    m.type = OVL_M_PONG;
    m.rid = req->rid;
    m.u.pong.observed = l->addr;
    ovl__send_msg(n, l, &m, OVL__OWN_NONE, 0, 0, now);
}

void ovl__dispatch(struct ovl_node *n, struct ovl_link *l, const uint8_t *buf,
                   size_t len, uint64_t now)
{
    struct ovl_msg m;
    enum ovl_mdrop why;
    struct ovl_rpc *r;

    if (ovl_msg_decode(&m, buf, len, &why) != 0) {
        n->stats.msg_drops[why]++;
        return;
    }
    n->stats.rx_msgs++;
    l->last_rx = l->last_app = now;
    if ((m.flags & OVL_MF_DHT_MEMBER) && ovl_mtype_is_request(m.type) &&
        n->role == OVL_ROLE_SUPERNODE && l->conn == NULL)
        ovl__dht_seen(n, l, now);

    if (ovl_mtype_is_request(m.type)) {
        if (m.type == OVL_M_PING) {
            answer_ping(n, l, &m, now);
            return;
        }
        if (n->role != OVL_ROLE_SUPERNODE) {
            answer_error(n, l, &m, OVL_MERR_NOT_SUPERNODE, now);
            return;
        }
        ovl__super_request(n, l, &m, now);
        return;
    }
    if (m.type == OVL_M_NOTIFY && m.rid == 0) {
        /* Unsolicited: from a storage node to a watching supernode, or
         * from our supernode to us. */
        if (l->flags & OVL__LF_SIGNAL)
            ovl__peer_notify(n, l, &m, now);
        else if (n->role == OVL_ROLE_SUPERNODE)
            ovl__super_notify(n, l, &m, now);
        else
            n->stats.dropped++;
        return;
    }
    r = ovl__rpc_take(n, m.rid, l->node_id);
    if (r == NULL) {
        n->stats.dropped++; /* late, duplicate or spoofed */
        return;
    }
    switch (r->owner) {
    case OVL__OWN_OP:
    case OVL__OWN_RTPING:
    case OVL__OWN_RELAY:
    case OVL__OWN_DIAL:
        ovl__super_rpc_done(n, r, &m, now);
        break;
    default:
        ovl__peer_rpc_done(n, r, &m, now);
        break;
    }
    ovl__rpc_free(n, r);
}

/* ---- Application entry points ------------------------------------------------------------- */

int ovl_node_lookup(struct ovl_node *n, uint8_t rtype, const char *name,
                    uint64_t now, uint32_t *token)
{
    uint32_t tok;

    if (name == NULL || !ovl_name_valid(name, strlen(name)) ||
        (rtype != OVL_R_PRESENCE && rtype != OVL_R_ROOM))
        return -EINVAL;
    tok = ++n->next_token;
    if (token)
        *token = tok;
    if (n->role == OVL_ROLE_SUPERNODE)
        return ovl__super_search(n, rtype, name, now, tok);
    return ovl__peer_lookup(n, rtype, name, now, tok);
}

/* ---- Inspection ---------------------------------------------------------------------------- */

enum ovl_role ovl_node_role(const struct ovl_node *n)
{
    return n->role;
}

bool ovl_node_logged_in(const struct ovl_node *n)
{
    return n->role == OVL_ROLE_SUPERNODE ? n->joined
                                         : n->pstate == OVL__P_ATTACHED;
}

const struct ovl_identity *ovl_node_identity(const struct ovl_node *n)
{
    return n->id;
}

void ovl_node_contact(const struct ovl_node *n, struct ovl_contact *c)
{
    ovl__self_contact(n, c);
}

bool ovl_node_supernode(const struct ovl_node *n, struct ovl_contact *c)
{
    if (n->role == OVL_ROLE_SUPERNODE) {
        ovl__self_contact(n, c);
        return n->joined;
    }
    if (n->primary == NULL || n->primary->dead)
        return false;
    if (c) {
        const struct ovl_hc_entry *e = ovl_hc_find(&n->hc, n->primary->node_id);

        if (e) {
            *c = e->c;
        } else {
            memset(c, 0, sizeof(*c));
            memcpy(c->identity, n->primary->identity, 32);
            memcpy(c->node_id, n->primary->node_id, 32);
            c->udp = n->primary->addr;
        }
    }
    return true;
}

const struct ovl_node_stats *ovl_node_stats(const struct ovl_node *n)
{
    return &n->stats;
}

struct ovl_hostcache *ovl_node_hostcache(struct ovl_node *n)
{
    return &n->hc;
}

const struct ovl_rt *ovl_node_routing_table(const struct ovl_node *n)
{
    return &n->rt;
}

const struct ovl_store *ovl_node_store(const struct ovl_node *n)
{
    return &n->store;
}

uint32_t ovl_node_attached(const struct ovl_node *n)
{
    return n->attached;
}

size_t ovl_node_memory(const struct ovl_node *n)
{
    size_t m = sizeof(*n);
    const struct ovl_link *l;

    for (l = n->links.next; l != &n->links; l = l->next) {
        m += sizeof(*l);
        if (l->out)
            m += sizeof(*l->out);
        if (l->in)
            m += sizeof(*l->in);
        if (l->conn)
            m += sizeof(*l->conn);
        m += l->presence_len;
        for (const struct ovl_pending *p = l->pq; p; p = p->next)
            m += sizeof(*p) + p->len;
    }
    m += (size_t)n->nrpc * sizeof(struct ovl_rpc);
    m += ((size_t)n->rpc_mask + 1 + n->udp_mask + 1) * sizeof(void *);
    m += (size_t)n->heapcap * sizeof(void *);
    m += n->out.cap * sizeof(struct ovl_out) + n->out.acap;
    m += (size_t)n->evcap * sizeof(struct ovl_event);
    for (int i = 0; i < OVL_ID_BITS; i++)
        if (n->rt.b[i])
            m += sizeof(*n->rt.b[i]);
    m += ((size_t)n->store.mask + 1) * sizeof(void *) + n->store.bytes +
         (size_t)n->store.count * sizeof(struct ovl_store_entry);
    if (n->cache.e) {
        m += ((size_t)n->cache.set_mask + 1) * OVL_CACHE_WAYS *
             sizeof(struct ovl_cache_entry);
        for (uint32_t i = 0; i < (n->cache.set_mask + 1) * OVL_CACHE_WAYS;
             i++)
            m += n->cache.e[i].len;
    }
    m += (size_t)n->nbuddies * sizeof(struct ovl_buddy);
    m += (size_t)n->rooms_cap * sizeof(struct ovl_room);
    m += ovl__op_memory(n);
    if (n->ep) {
        m += sizeof(*n->ep);
        m += ((size_t)n->ep->idx_mask + 1) * 16 +
             ((size_t)n->ep->ts_set_mask + 1) * 4 * 64 + OVL_ADDR_BUCKETS * 16;
    }
    return m;
}
