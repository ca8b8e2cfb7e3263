/*
 * ovl_sim.c: the simulated network (ovl_sim.h).
 *
 * One binary heap of events ordered by (time, sequence number) drives
 * everything. After every call into a node the simulator drains the
 * node's outputs (turning them into future events) and its events (to
 * the callback) and re-arms the node's timer event. Timer events made
 * stale by a later re-arm are recognised and skipped on pop.
 */
#include "ovl_sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

enum {
    SIM_PORT = 4000,
    IP_PUBLIC = 0x0B000001u, /* 11.0.0.1 + host */
    IP_PRIVATE = 0x0A000001u,
};

enum ev_kind {
    EV_TIMER = 1,
    EV_UDP,
    EV_TCP_ACCEPT,    /* SYN reaches side 1 */
    EV_TCP_CONNECTED, /* SYN-ACK reaches side 0 */
    EV_TCP_DATA,
    EV_TCP_CLOSE,     /* FIN or RST reaches a side */
};

struct pkt {
    struct ovl_addr src;
    uint16_t dport;
    uint32_t len;
    uint8_t data[];
};

struct sev {
    uint64_t t, seq;
    uint32_t host;    /* EV_TIMER, EV_UDP */
    uint32_t gen;     /* host incarnation (timer) or tcp slot generation */
    uint32_t tcp;     /* TCP events: slot */
    uint8_t kind;
    uint8_t side;     /* TCP: which end receives */
    struct pkt *p;
};

struct natmap {
    uint32_t rip;     /* remote IP */
    uint16_t rport;   /* remote port (symmetric) */
    uint16_t eport;   /* external port (symmetric) */
};

/* What a node keeps pointers to: allocated apart from the host array,
 * which moves as it grows. */
struct hstable {
    struct ovl_identity id;
    struct ovl_rng_seeded rs;
};

struct shost {
    struct ovl_node *node;
    struct hstable *st;
    uint32_t gen;
    uint64_t timer_due;
    uint32_t pub_ip, priv_ip;
    uint8_t nat;
    uint16_t ext_port;        /* CONE mapping */
    float x, y;
    uint32_t access_us;
    struct natmap *maps;
    uint32_t nmaps, capmaps;
    uint32_t *tcps;           /* open TCP slots involving this host */
    uint32_t ntcps, captcps;
    /* configuration, for (re)starts */
    uint8_t mode;
    char handle[OVL_NAME_MAX + 1];
    uint8_t cert[OVL_CERT_LEN], authority[32];
    bool has_cert, has_auth, tcp443;
    struct ovl_node_timing timing;
    uint8_t fallbacks, parallel;
    uint32_t max_peers;
    bool logging_out, stop_pending;
};

struct stcp {
    uint32_t h[2];
    uint32_t hgen[2];
    uint32_t conn[2];
    uint64_t last[2];   /* last delivery time towards side i */
    bool open[2];
    bool used;
    uint32_t gen;       /* slot generation */
    struct ovl_addr seen; /* side 0 as side 1 sees it */
};

struct tmap_ent {
    uint64_t key;       /* host << 32 | conn; 0 empty; ~0 deleted */
    uint32_t tcp;
};

struct ovl_sim {
    struct ovl_sim_config cfg;
    struct ovl_rng_seeded rs;
    struct ovl_rng rng;
    uint64_t now, seq;
    struct sev *heap;
    size_t nheap, capheap;
    struct shost *hosts;
    uint32_t nhosts, caphosts;
    struct stcp *tcps;
    uint32_t ntcps, captcps, *free_tcp, nfree;
    struct tmap_ent *tmap;
    uint32_t tmask, tused;
    struct ovl_contact *boot;
    size_t nboot;
    ovl_sim_event_cb cb;
    void *cb_data;
    struct ovl_sim_stats stats;
};

static void after(struct ovl_sim *s, uint32_t h);

/* ---- Helpers -------------------------------------------------------------------------- */

uint32_t ovl_sim_random(struct ovl_sim *s, uint32_t bound)
{
    return bound ? ovl_rng_uniform(&s->rng, bound) : 0;
}

static double unit(struct ovl_sim *s)
{
    return ovl_rng_uniform(&s->rng, 1u << 30) / (double)(1u << 30);
}

static uint64_t owd(const struct ovl_sim *s, uint32_t a, uint32_t b)
{
    const struct shost *x = &s->hosts[a], *y = &s->hosts[b];
    double dx = x->x - y->x, dy = x->y - y->y;
    double us = x->access_us + y->access_us +
                sqrt(dx * dx + dy * dy) * s->cfg.us_per_unit;

    return (uint64_t)(us * 1000.0);
}

static uint64_t owd_jitter(struct ovl_sim *s, uint32_t a, uint32_t b)
{
    uint64_t d = owd(s, a, b);

    return d + (uint64_t)(d * 0.05 * unit(s));
}

static int host_by_ip(const struct ovl_sim *s, const struct ovl_addr *a)
{
    uint32_t ip;

    if (a->family != OVL_AF_INET)
        return -1;
    ip = (uint32_t)a->ip[0] << 24 | (uint32_t)a->ip[1] << 16 |
         (uint32_t)a->ip[2] << 8 | a->ip[3];
    if (ip < IP_PUBLIC || ip - IP_PUBLIC >= s->nhosts)
        return -1;
    return (int)(ip - IP_PUBLIC);
}

static uint32_t addr_ip(const struct ovl_addr *a)
{
    return (uint32_t)a->ip[0] << 24 | (uint32_t)a->ip[1] << 16 |
           (uint32_t)a->ip[2] << 8 | a->ip[3];
}

/* ---- Event heap --------------------------------------------------------------------------- */

static bool ev_less(const struct sev *a, const struct sev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct ovl_sim *s, struct sev *e)
{
    size_t i;

    if (s->nheap == s->capheap) {
        size_t cap = s->capheap ? s->capheap * 2 : 4096;
        struct sev *h = realloc(s->heap, cap * sizeof(*h));

        if (h == NULL) {
            free(e->p);
            return;
        }
        s->heap = h;
        s->capheap = cap;
    }
    e->seq = s->seq++;
    i = s->nheap++;
    while (i > 0 && ev_less(e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = *e;
}

static struct sev pop(struct ovl_sim *s)
{
    struct sev top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;

        if (l >= s->nheap)
            break;
        if (r < s->nheap && ev_less(&s->heap[r], &s->heap[l]))
            m = r;
        if (!ev_less(&s->heap[m], &last))
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->nheap)
        s->heap[i] = last;
    return top;
}

/* ---- TCP map ---------------------------------------------------------------------------------- */

static uint64_t tkey(uint32_t host, uint32_t conn)
{
    return (uint64_t)(host + 1) << 32 | conn;
}

static struct tmap_ent *tmap_slot(struct ovl_sim *s, uint64_t key, bool insert)
{
    uint32_t i = (uint32_t)(key * 0x9E3779B97F4A7C15ull >> 40) & s->tmask;
    struct tmap_ent *tomb = NULL;

    for (;; i = (i + 1) & s->tmask) {
        struct tmap_ent *e = &s->tmap[i];

        if (e->key == key)
            return e;
        if (e->key == UINT64_MAX && tomb == NULL)
            tomb = e;
        if (e->key == 0)
            return insert ? (tomb ? tomb : e) : NULL;
    }
}

static void tmap_grow(struct ovl_sim *s)
{
    struct tmap_ent *old = s->tmap;
    uint32_t omask = s->tmask;

    s->tmask = s->tmask ? s->tmask * 2 + 1 : 1023;
    s->tmap = calloc((size_t)s->tmask + 1, sizeof(*s->tmap));
    if (s->tmap == NULL)
        abort(); /* the simulator's own policy: out of memory is fatal */
    s->tused = 0;
    for (uint32_t i = 0; old && i <= omask; i++)
        if (old[i].key && old[i].key != UINT64_MAX) {
            *tmap_slot(s, old[i].key, true) = old[i];
            s->tused++;
        }
    free(old);
}

static void tmap_put(struct ovl_sim *s, uint32_t host, uint32_t conn,
                     uint32_t tcp)
{
    struct tmap_ent *e;

    if ((s->tused + 1) * 2 > s->tmask + 1)
        tmap_grow(s);
    e = tmap_slot(s, tkey(host, conn), true);
    if (e->key == 0 || e->key == UINT64_MAX)
        s->tused++;
    e->key = tkey(host, conn);
    e->tcp = tcp;
}

static int tmap_get(struct ovl_sim *s, uint32_t host, uint32_t conn)
{
    struct tmap_ent *e = s->tmask ? tmap_slot(s, tkey(host, conn), false)
                                  : NULL;

    return e ? (int)e->tcp : -1;
}

static void tmap_del(struct ovl_sim *s, uint32_t host, uint32_t conn)
{
    struct tmap_ent *e = s->tmask ? tmap_slot(s, tkey(host, conn), false)
                                  : NULL;

    if (e)
        e->key = UINT64_MAX;
}

static void host_tcp_add(struct shost *h, uint32_t tcp)
{
    if (h->ntcps == h->captcps) {
        uint32_t cap = h->captcps ? h->captcps * 2 : 4;
        uint32_t *t = realloc(h->tcps, cap * sizeof(*t));

        if (t == NULL)
            abort();
        h->tcps = t;
        h->captcps = cap;
    }
    h->tcps[h->ntcps++] = tcp;
}

static void host_tcp_del(struct shost *h, uint32_t tcp)
{
    for (uint32_t i = 0; i < h->ntcps; i++)
        if (h->tcps[i] == tcp) {
            h->tcps[i] = h->tcps[--h->ntcps];
            return;
        }
}

static uint32_t tcp_alloc(struct ovl_sim *s)
{
    uint32_t i;

    if (s->nfree) {
        i = s->free_tcp[--s->nfree];
    } else {
        if (s->ntcps == s->captcps) {
            uint32_t cap = s->captcps ? s->captcps * 2 : 1024;
            struct stcp *t = realloc(s->tcps, cap * sizeof(*t));
            uint32_t *f = realloc(s->free_tcp, cap * sizeof(*f));

            if (t == NULL || f == NULL)
                abort();
            s->tcps = t;
            s->free_tcp = f;
            s->captcps = cap;
        }
        i = s->ntcps++;
        s->tcps[i].gen = 0;
    }
    {
        uint32_t gen = s->tcps[i].gen + 1;

        memset(&s->tcps[i], 0, sizeof(s->tcps[i]));
        s->tcps[i].gen = gen;
        s->tcps[i].used = true;
    }
    return i;
}

/* Side @side of @tcp is gone: unmap it; free the slot when both are. */
static void tcp_side_closed(struct ovl_sim *s, uint32_t tcp, int side)
{
    struct stcp *t = &s->tcps[tcp];

    if (!t->open[side])
        return;
    t->open[side] = false;
    tmap_del(s, t->h[side], t->conn[side]);
    host_tcp_del(&s->hosts[t->h[side]], tcp);
    if (!t->open[0] && !t->open[1]) {
        t->used = false;
        s->free_tcp[s->nfree++] = tcp;
    }
}

static void tcp_event(struct ovl_sim *s, uint32_t tcp, int side, uint8_t kind,
                      uint64_t at, struct pkt *p)
{
    struct sev e = {0};

    e.t = at;
    e.kind = kind;
    e.tcp = tcp;
    e.gen = s->tcps[tcp].gen;
    e.side = (uint8_t)side;
    e.p = p;
    push(s, &e);
}

/* ---- Outputs of a node ----------------------------------------------------------------------- */

static void udp_send(struct ovl_sim *s, uint32_t from, const struct ovl_addr *to,
                     const uint8_t *data, size_t len)
{
    struct shost *h = &s->hosts[from];
    struct ovl_addr src;
    struct sev e = {0};
    struct pkt *p;
    int dst;

    s->stats.udp_sent++;
    if (h->nat == OVL_NAT_UDP_BLOCKED || h->nat == OVL_NAT_TCP443_ONLY) {
        s->stats.udp_filtered++;
        return;
    }
    ovl_addr_v4(&src, h->pub_ip, SIM_PORT);
    if (h->nat == OVL_NAT_CONE || h->nat == OVL_NAT_SYMMETRIC) {
        uint32_t rip = addr_ip(to), i;
        uint16_t rport = h->nat == OVL_NAT_SYMMETRIC ? to->port : 0;

        for (i = 0; i < h->nmaps; i++)
            if (h->maps[i].rip == rip && h->maps[i].rport == rport)
                break;
        if (i == h->nmaps) {
            if (h->nmaps == h->capmaps) {
                uint32_t cap = h->capmaps ? h->capmaps * 2 : 4;
                struct natmap *m = realloc(h->maps, cap * sizeof(*m));

                if (m == NULL)
                    return;
                h->maps = m;
                h->capmaps = cap;
            }
            h->maps[i].rip = rip;
            h->maps[i].rport = rport;
            h->maps[i].eport = (uint16_t)(20000 + ovl_sim_random(s, 40000));
            h->nmaps++;
        }
        src.port = h->nat == OVL_NAT_CONE ? h->ext_port : h->maps[i].eport;
    }
    dst = host_by_ip(s, to);
    if (dst < 0) {
        s->stats.udp_filtered++;
        return;
    }
    if (s->cfg.loss > 0 && unit(s) < s->cfg.loss) {
        s->stats.udp_lost++;
        return;
    }
    p = malloc(sizeof(*p) + len);
    if (p == NULL)
        return;
    p->src = src;
    p->dport = to->port;
    p->len = (uint32_t)len;
    memcpy(p->data, data, len);
    e.t = s->now + owd_jitter(s, from, (uint32_t)dst);
    e.kind = EV_UDP;
    e.host = (uint32_t)dst;
    e.p = p;
    s->stats.bytes += len;
    push(s, &e);
}

static bool udp_allowed(const struct shost *h, const struct pkt *p)
{
    uint32_t rip = addr_ip(&p->src);

    switch (h->nat) {
    case OVL_NAT_OPEN:
        return p->dport == SIM_PORT;
    case OVL_NAT_CONE:
        if (p->dport != h->ext_port)
            return false;
        for (uint32_t i = 0; i < h->nmaps; i++)
            if (h->maps[i].rip == rip)
                return true;
        return false;
    case OVL_NAT_SYMMETRIC:
        for (uint32_t i = 0; i < h->nmaps; i++)
            if (h->maps[i].eport == p->dport && h->maps[i].rip == rip &&
                h->maps[i].rport == p->src.port)
                return true;
        return false;
    default:
        return false;
    }
}

static void tcp_connect(struct ovl_sim *s, uint32_t from, uint32_t conn,
                        const struct ovl_addr *to)
{
    struct shost *h = &s->hosts[from], *d;
    uint32_t tcp;
    struct stcp *t;
    int dst;
    bool listening;

    s->stats.tcp_connects++;
    tcp = tcp_alloc(s);
    t = &s->tcps[tcp];
    t->h[0] = from;
    t->hgen[0] = h->gen;
    t->conn[0] = conn;
    t->open[0] = true;
    tmap_put(s, from, conn, tcp);
    host_tcp_add(h, tcp);
    dst = host_by_ip(s, to);
    if ((h->nat == OVL_NAT_TCP443_ONLY && to->port != 443) || dst < 0) {
        s->stats.tcp_dropped++; /* a firewall drops: the caller times out */
        return;
    }
    d = &s->hosts[dst];
    t->h[1] = (uint32_t)dst;
    if (d->nat != OVL_NAT_OPEN) {
        s->stats.tcp_dropped++;
        return;
    }
    listening = d->node && (to->port == SIM_PORT ||
                            (to->port == 443 && d->tcp443));
    if (!listening) {
        s->stats.tcp_refused++;
        tcp_event(s, tcp, 0, EV_TCP_CLOSE,
                  s->now + 2 * owd(s, from, (uint32_t)dst), NULL);
        return;
    }
    ovl_addr_v4(&t->seen, h->pub_ip,
                (uint16_t)(30000 + ovl_sim_random(s, 30000)));
    tcp_event(s, tcp, 1, EV_TCP_ACCEPT, s->now + owd(s, from, (uint32_t)dst),
              NULL);
}

static int side_of(const struct stcp *t, uint32_t host, uint32_t conn)
{
    if (t->open[0] && t->h[0] == host && t->conn[0] == conn)
        return 0;
    return 1;
}

static void tcp_send(struct ovl_sim *s, uint32_t from, uint32_t conn,
                     const uint8_t *data, size_t len)
{
    int tcp = tmap_get(s, from, conn), side, other;
    struct stcp *t;
    struct pkt *p;
    uint64_t at;

    if (tcp < 0)
        return;
    t = &s->tcps[tcp];
    side = side_of(t, from, conn);
    other = 1 - side;
    if (!t->open[other])
        return; /* not accepted yet, or closed: lost */
    p = malloc(sizeof(*p) + len);
    if (p == NULL)
        return;
    memset(&p->src, 0, sizeof(p->src));
    p->len = (uint32_t)len;
    memcpy(p->data, data, len);
    at = s->now + owd(s, from, t->h[other]);
    if (at < t->last[other])
        at = t->last[other];
    t->last[other] = at;
    s->stats.tcp_bytes += len;
    s->stats.bytes += len;
    tcp_event(s, (uint32_t)tcp, other, EV_TCP_DATA, at, p);
}

static void tcp_close(struct ovl_sim *s, uint32_t from, uint32_t conn)
{
    int tcp = tmap_get(s, from, conn), side, other;
    struct stcp *t;

    if (tcp < 0)
        return;
    t = &s->tcps[tcp];
    side = side_of(t, from, conn);
    other = 1 - side;
    if (t->open[other]) {
        uint64_t at = s->now + owd(s, from, t->h[other]);

        if (at < t->last[other])
            at = t->last[other];
        tcp_event(s, (uint32_t)tcp, other, EV_TCP_CLOSE, at, NULL);
    }
    tcp_side_closed(s, (uint32_t)tcp, side);
}

static void stop_node(struct ovl_sim *s, uint32_t h, bool reset_tcp)
{
    struct shost *x = &s->hosts[h];

    if (x->node == NULL)
        return;
    while (x->ntcps) {
        uint32_t tcp = x->tcps[x->ntcps - 1];
        struct stcp *t = &s->tcps[tcp];
        int side = t->h[0] == h && t->open[0] ? 0 : 1;

        if (reset_tcp && t->open[1 - side])
            tcp_event(s, tcp, 1 - side, EV_TCP_CLOSE,
                      s->now + owd(s, h, t->h[1 - side]), NULL);
        tcp_side_closed(s, tcp, side);
        if (x->ntcps && x->tcps[x->ntcps - 1] == tcp)
            x->ntcps--; /* defensive: never loop on one slot */
    }
    ovl_node_free(x->node);
    x->node = NULL;
    x->gen++;
    x->timer_due = OVL_NEVER;
    x->logging_out = x->stop_pending = false;
}

/* Drains @h's outputs and events and re-arms its timer. */
static void after(struct ovl_sim *s, uint32_t h)
{
    struct shost *x = &s->hosts[h];
    struct ovl_node *node = x->node;
    struct ovl_event ev;
    struct ovl_out o;
    uint64_t due;

    if (node == NULL)
        return;
    while (ovl_node_out_next(node, &o)) {
        switch (o.kind) {
        case OVL_OUT_UDP_SEND:
            udp_send(s, h, &o.addr, o.data, o.len);
            break;
        case OVL_OUT_TCP_CONNECT:
            tcp_connect(s, h, o.conn, &o.addr);
            break;
        case OVL_OUT_TCP_SEND:
            tcp_send(s, h, o.conn, o.data, o.len);
            break;
        case OVL_OUT_TCP_CLOSE:
            tcp_close(s, h, o.conn);
            break;
        }
    }
    while (x->node == node && ovl_node_event_next(node, &ev)) {
        if (ev.kind == OVL_NEV_LOGGED_OUT && x->logging_out)
            x->stop_pending = true;
        if (s->cb)
            s->cb(s, h, &ev, s->cb_data);
    }
    if (x->node != node)
        return; /* the callback crashed it */
    if (x->stop_pending) {
        stop_node(s, h, true);
        return;
    }
    due = ovl_node_next_timer(node);
    if (due == OVL_NEVER) {
        x->timer_due = OVL_NEVER;
        return;
    }
    if (due < s->now)
        due = s->now;
    if (due != x->timer_due) {
        struct sev e = {0};

        x->timer_due = due;
        e.t = due;
        e.kind = EV_TIMER;
        e.host = h;
        e.gen = x->gen;
        push(s, &e);
    }
}

/* ---- Delivering events ---------------------------------------------------------------------- */

static bool tcp_side_live(struct ovl_sim *s, const struct sev *e)
{
    const struct stcp *t = &s->tcps[e->tcp];
    const struct shost *x;

    if (!t->used || t->gen != e->gen)
        return false;
    x = &s->hosts[t->h[e->side]];
    return x->node != NULL &&
           (e->kind == EV_TCP_ACCEPT ||
            (t->open[e->side] && t->hgen[e->side] == x->gen));
}

static void deliver(struct ovl_sim *s, struct sev *e)
{
    struct shost *x;
    struct stcp *t;

    switch (e->kind) {
    case EV_TIMER:
        x = &s->hosts[e->host];
        if (x->node == NULL || e->gen != x->gen || e->t != x->timer_due)
            return;
        x->timer_due = OVL_NEVER;
        ovl_node_timers(x->node, s->now);
        after(s, e->host);
        return;
    case EV_UDP:
        x = &s->hosts[e->host];
        if (x->node == NULL || !udp_allowed(x, e->p)) {
            s->stats.udp_filtered++;
            return;
        }
        s->stats.udp_delivered++;
        ovl_node_udp_recv(x->node, &e->p->src, e->p->data, e->p->len, s->now);
        after(s, e->host);
        return;
    default:
        break;
    }
    t = &s->tcps[e->tcp];
    if (!tcp_side_live(s, e)) {
        /* A SYN to a host that crashed meanwhile: reset the caller. */
        if (e->kind == EV_TCP_ACCEPT && t->used && t->gen == e->gen &&
            t->open[0])
            tcp_event(s, e->tcp, 0, EV_TCP_CLOSE,
                      s->now + owd(s, t->h[1], t->h[0]), NULL);
        return;
    }
    x = &s->hosts[t->h[e->side]];
    switch (e->kind) {
    case EV_TCP_ACCEPT:
        t->conn[1] = ovl_node_tcp_accepted(x->node, &t->seen, s->now);
        t->hgen[1] = x->gen;
        t->open[1] = true;
        tmap_put(s, t->h[1], t->conn[1], e->tcp);
        host_tcp_add(x, e->tcp);
        after(s, t->h[1]);
        tcp_event(s, e->tcp, 0, EV_TCP_CONNECTED,
                  s->now + owd(s, t->h[1], t->h[0]), NULL);
        return;
    case EV_TCP_CONNECTED:
        ovl_node_tcp_connected(x->node, t->conn[0], s->now);
        after(s, t->h[0]);
        return;
    case EV_TCP_DATA: {
        uint32_t h = t->h[e->side];

        ovl_node_tcp_recv(x->node, t->conn[e->side], e->p->data, e->p->len,
                          s->now);
        after(s, h);
        return;
    }
    case EV_TCP_CLOSE: {
        uint32_t h = t->h[e->side], conn = t->conn[e->side];

        tcp_side_closed(s, e->tcp, e->side);
        ovl_node_tcp_closed(x->node, conn, s->now);
        after(s, h);
        return;
    }
    default:
        return;
    }
}

void ovl_sim_run_until(struct ovl_sim *s, uint64_t t)
{
    while (s->nheap && s->heap[0].t <= t) {
        struct sev e = pop(s);

        s->now = e.t;
        s->stats.events++;
        deliver(s, &e);
        free(e.p);
    }
    if (t > s->now)
        s->now = t;
}

/* ---- Hosts ------------------------------------------------------------------------------------ */

int ovl_sim_new(struct ovl_sim **out, const struct ovl_sim_config *cfg)
{
    struct ovl_sim *s;

    if (sodium_init() < 0)
        return -EIO;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.access_max_us == 0) {
        s->cfg.access_min_us = 2000;
        s->cfg.access_max_us = 20000;
    }
    if (s->cfg.us_per_unit == 0)
        s->cfg.us_per_unit = 100000;
    ovl_rng_seeded_init(&s->rs, cfg->seed);
    s->rng.fn = ovl_rng_seeded_fn;
    s->rng.data = &s->rs;
    s->now = OVL_SIM_T0;
    tmap_grow(s);
    *out = s;
    return 0;
}

void ovl_sim_free(struct ovl_sim *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->nhosts; i++) {
        if (s->hosts[i].node)
            ovl_node_free(s->hosts[i].node);
        if (s->hosts[i].st)
            ovl_identity_wipe(&s->hosts[i].st->id);
        free(s->hosts[i].st);
        free(s->hosts[i].maps);
        free(s->hosts[i].tcps);
    }
    for (size_t i = 0; i < s->nheap; i++)
        free(s->heap[i].p);
    free(s->heap);
    free(s->hosts);
    free(s->tcps);
    free(s->free_tcp);
    free(s->tmap);
    free(s->boot);
    free(s);
}

void ovl_sim_on_event(struct ovl_sim *s, ovl_sim_event_cb cb, void *data)
{
    s->cb = cb;
    s->cb_data = data;
}

int ovl_sim_add(struct ovl_sim *s, const struct ovl_sim_node_config *c,
                uint32_t *host)
{
    struct shost *x;
    uint8_t seed[32];

    if (s->nhosts == s->caphosts) {
        uint32_t cap = s->caphosts ? s->caphosts * 2 : 256;
        struct shost *h = realloc(s->hosts, cap * sizeof(*h));

        if (h == NULL)
            return -ENOMEM;
        s->hosts = h;
        s->caphosts = cap;
    }
    x = &s->hosts[s->nhosts];
    memset(x, 0, sizeof(*x));
    x->st = calloc(1, sizeof(*x->st));
    if (x->st == NULL)
        return -ENOMEM;
    ovl_rng_bytes(&s->rng, seed, sizeof(seed));
    if (ovl_identity_from_seed(&x->st->id, seed) != 0) {
        free(x->st);
        return -EINVAL;
    }
    ovl_rng_bytes(&s->rng, seed, sizeof(seed));
    ovl_rng_seeded_init(&x->st->rs, seed);
    x->timer_due = OVL_NEVER;
    x->pub_ip = IP_PUBLIC + s->nhosts;
    x->priv_ip = IP_PRIVATE + s->nhosts;
    x->nat = (uint8_t)c->nat;
    x->ext_port = (uint16_t)(20000 + ovl_sim_random(s, 40000));
    x->x = (float)unit(s);
    x->y = (float)unit(s);
    x->access_us = s->cfg.access_min_us +
                   ovl_sim_random(s, s->cfg.access_max_us -
                                         s->cfg.access_min_us + 1);
    x->mode = (uint8_t)c->mode;
    if (c->handle)
        strncpy(x->handle, c->handle, OVL_NAME_MAX);
    if (c->cert) {
        memcpy(x->cert, c->cert, OVL_CERT_LEN);
        x->has_cert = true;
    }
    if (c->authority) {
        memcpy(x->authority, c->authority, 32);
        x->has_auth = true;
    }
    x->tcp443 = c->tcp443;
    x->timing = c->timing ? *c->timing : s->cfg.timing;
    x->fallbacks = c->fallbacks;
    x->parallel = c->login_parallel;
    x->max_peers = c->max_peers;
    *host = s->nhosts++;
    return 0;
}

void ovl_sim_set_cert(struct ovl_sim *s, uint32_t h, const uint8_t *cert)
{
    struct shost *x = &s->hosts[h];

    x->has_cert = cert != NULL;
    if (cert)
        memcpy(x->cert, cert, OVL_CERT_LEN);
}

int ovl_sim_set_bootstrap(struct ovl_sim *s, const struct ovl_contact *c,
                          size_t n)
{
    struct ovl_contact *b = n ? malloc(n * sizeof(*b)) : NULL;

    if (n && b == NULL)
        return -ENOMEM;
    if (n)
        memcpy(b, c, n * sizeof(*b));
    free(s->boot);
    s->boot = b;
    s->nboot = n;
    return 0;
}

int ovl_sim_start(struct ovl_sim *s, uint32_t h)
{
    struct shost *x = &s->hosts[h];
    struct ovl_node_config nc;
    int ret;

    if (x->node)
        return -EALREADY;
    memset(&nc, 0, sizeof(nc));
    nc.identity = &x->st->id;
    nc.rng.fn = ovl_rng_seeded_fn;
    nc.rng.data = &x->st->rs;
    nc.role_mode = (enum ovl_role_mode)x->mode;
    nc.handle = x->handle[0] ? x->handle : NULL;
    nc.cert = x->has_cert ? x->cert : NULL;
    nc.authority = x->has_auth ? x->authority : NULL;
    ovl_addr_v4(&nc.local, x->nat == OVL_NAT_OPEN ? x->pub_ip : x->priv_ip,
                SIM_PORT);
    nc.tcp_port = SIM_PORT;
    nc.tcp443 = x->tcp443;
    nc.wall_offset = OVL_SIM_WALL0 - OVL_SIM_T0;
    nc.bootstrap = s->boot;
    nc.nbootstrap = s->nboot;
    nc.max_peers = x->max_peers;
    nc.fallbacks = x->fallbacks;
    nc.login_parallel = x->parallel;
    nc.timing = x->timing;
    nc.insecure_plaintext = s->cfg.plaintext;
    ret = ovl_node_new(&x->node, &nc, s->now);
    if (ret)
        return ret;
    ret = ovl_node_start(x->node, s->now);
    after(s, h);
    return ret;
}

void ovl_sim_crash(struct ovl_sim *s, uint32_t h)
{
    stop_node(s, h, !s->cfg.crash_silent);
}

void ovl_sim_logout(struct ovl_sim *s, uint32_t h)
{
    struct shost *x = &s->hosts[h];

    if (x->node == NULL)
        return;
    x->logging_out = true;
    ovl_node_logout(x->node, s->now);
    after(s, h);
}

struct ovl_node *ovl_sim_node(struct ovl_sim *s, uint32_t h)
{
    return h < s->nhosts ? s->hosts[h].node : NULL;
}

void ovl_sim_touch(struct ovl_sim *s, uint32_t h)
{
    after(s, h);
}

uint64_t ovl_sim_now(const struct ovl_sim *s)
{
    return s->now;
}

uint32_t ovl_sim_hosts(const struct ovl_sim *s)
{
    return s->nhosts;
}

bool ovl_sim_alive(const struct ovl_sim *s, uint32_t h)
{
    return h < s->nhosts && s->hosts[h].node != NULL;
}

const struct ovl_identity *ovl_sim_identity(const struct ovl_sim *s,
                                            uint32_t h)
{
    return &s->hosts[h].st->id;
}

void ovl_sim_contact(const struct ovl_sim *s, uint32_t h, struct ovl_contact *c)
{
    const struct shost *x = &s->hosts[h];

    memset(c, 0, sizeof(*c));
    memcpy(c->identity, x->st->id.ed_pk, 32);
    memcpy(c->node_id, x->st->id.node_id, 32);
    ovl_addr_v4(&c->udp, x->pub_ip, SIM_PORT);
    c->tcp_port = SIM_PORT;
    c->flags = x->tcp443 ? OVL_CF_TCP443 : 0;
}

const struct ovl_sim_stats *ovl_sim_stats(const struct ovl_sim *s)
{
    return &s->stats;
}

size_t ovl_sim_memory(const struct ovl_sim *s)
{
    size_t m = sizeof(*s) + s->capheap * sizeof(struct sev) +
               (size_t)s->caphosts * sizeof(struct shost) +
               (size_t)s->captcps * (sizeof(struct stcp) + 4) +
               ((size_t)s->tmask + 1) * sizeof(struct tmap_ent);

    for (uint32_t i = 0; i < s->nhosts; i++)
        m += sizeof(struct hstable) +
             s->hosts[i].capmaps * sizeof(struct natmap) +
             s->hosts[i].captcps * sizeof(uint32_t);
    for (size_t i = 0; i < s->nheap; i++)
        if (s->heap[i].p)
            m += sizeof(struct pkt) + s->heap[i].p->len;
    return m;
}

void ovl_sim_inject_udp(struct ovl_sim *s, uint32_t from, uint32_t to,
                        const uint8_t *data, size_t len)
{
    struct ovl_contact c;

    ovl_sim_contact(s, to, &c);
    if (s->hosts[to].nat == OVL_NAT_CONE)
        c.udp.port = s->hosts[to].ext_port;
    udp_send(s, from, &c.udp, data, len);
}
