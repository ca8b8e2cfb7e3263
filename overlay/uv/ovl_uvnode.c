/*
 * ovl_uvnode.c: see ovl_uvnode.h.
 *
 * Shape: everything the node produces goes through flush(), which drains
 * outputs (sockets) and events (callbacks) until both are empty, then
 * re-arms the one timer. Handles are freed in their close callbacks; the
 * driver itself is freed when the last handle has closed.
 */
#include "ovl_uvnode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ovl_identity.h"
#include "ovl_stun.h"
#include "ovl_uv.h"
#include "ovl_wire.h"

enum {
    CONN_BUCKETS = 1024,
    IPC_BUCKETS = 1024,
    DEF_MAX_CONNS = 4096,
    DEF_MAX_CONNS_PER_IP = 16,
    LOGOUT_WAIT_MS = 2000,
    HOSTCACHE_SAVE_MS = 60000,
    HOUSEKEEP_MS = 1000,
    /* A connection whose unsent bytes pass this is too slow to keep: the
     * overlay's messages are small, so this is a peer that stopped
     * reading, and holding its backlog would let it grow our memory. */
    TCP_SENDQ_MAX = 64 * 1024,
    /* ... and all connections together: a crowd of non-readers must not
     * grow the process either. */
    TCP_SENDQ_TOTAL_MAX = 32 * 1024 * 1024,
    /* STUN answers per second, all sources together: a spoofed flood
     * cannot turn a supernode into more than this much reflected
     * traffic (about 76 kB/s at worst). */
    STUN_RATE = 1000,
    STUN_BURST = 2000,
};

/* Accepted connections from one source: an IPv4 address or an IPv6 /64
 * (one subscriber's usual allocation, so one attacker's). */
struct ipc {
    struct ipc *next;
    uint8_t key[9];             /* family, then 4 or 8 address bytes */
    uint32_t n;
};

struct uconn {
    uv_tcp_t tcp;               /* first: handle data points here */
    struct ovl_uvnode *u;
    struct uconn *next;         /* bucket chain */
    uint32_t id;
    bool accepted;
    bool reading;
    bool dead;                  /* closing; the node knows */
    bool counted;               /* accepted: counted in its source's ipc */
    struct ovl_addr peer;
    uv_connect_t creq;
};

struct ovl_uvnode {
    uv_loop_t *loop;
    struct ovl_uvnode_config cfg;
    struct ovl_node *node;
    uv_udp_t udp;
    uv_tcp_t lis, lis443;
    bool has_lis, has_lis443;
    uv_timer_t timer;           /* the node's */
    uv_timer_t house;           /* idle connections, host cache saving */
    /* NAT discovery on its own socket. */
    uv_udp_t nat_udp;
    uv_timer_t nat_timer;
    bool has_nat;
    bool nat_started;
    struct ovl_nat nat;
    struct ovl_stun_addr nat_server;
    struct ovl_contact nat_sn;  /* the supernode the probe runs against */
    bool nat_has_second;        /* test IV had a second server */
    struct uconn *conns[CONN_BUCKETS];
    uint32_t nconns;
    struct ipc *ipcs[IPC_BUCKETS];  /* accepted connections per source */
    size_t sendq_bytes;         /* written to TCP, not yet sent: all conns */
    uint16_t udp_port, tcp_port;
    struct ovl_addr local;
    struct ovl_uvnode_counters ctr;
    unsigned tcp_keepalive_s;   /* SO_KEEPALIVE idle time */
    char *strs[4];              /* our copies of the config's strings */
    double stun_tokens;
    uint64_t stun_refill_ms;
    uint64_t hc_saved_at;       /* node clock */
    size_t hc_saved_len;
    uint8_t hc_saved_hash[16];
    /* Flushing and closing. */
    bool in_flush, flush_again;
    bool closing, logging_out, torn_down, handles_closed;
    bool node_logged_out;       /* the node reported OVL_NEV_LOGGED_OUT */
    int open_handles;
    uv_timer_t logout_timer;
    ovl_uvnode_closed_cb done;
    void *done_data;
};

static void flush(struct ovl_uvnode *u);
static void teardown(struct ovl_uvnode *u);
static void on_nat_timer(uv_timer_t *t);
static void ipc_release(struct ovl_uvnode *u, struct uconn *c);

/* ---- addresses ----------------------------------------------------------- */

void ovl_uv_addr_to_stun(struct ovl_stun_addr *s, const struct ovl_addr *a)
{
    memset(s, 0, sizeof(*s));
    s->family = a->family == OVL_AF_INET    ? OVL_STUN_FAMILY_IPV4
                : a->family == OVL_AF_INET6 ? OVL_STUN_FAMILY_IPV6
                                            : OVL_STUN_FAMILY_NONE;
    s->port = a->port;
    memcpy(s->ip, a->ip, sizeof(s->ip));
}

int ovl_uv_addr_from_stun(struct ovl_addr *a, const struct ovl_stun_addr *s)
{
    memset(a, 0, sizeof(*a));
    if (s->family != OVL_STUN_FAMILY_IPV4 && s->family != OVL_STUN_FAMILY_IPV6)
        return -EAFNOSUPPORT;
    a->family = s->family == OVL_STUN_FAMILY_IPV4 ? OVL_AF_INET : OVL_AF_INET6;
    a->port = s->port;
    memcpy(a->ip, s->ip, sizeof(a->ip));
    return 0;
}

/* Through ovl_stun's conversions, which also turn IPv4-mapped IPv6
 * addresses (a dual-stack socket's view of IPv4 peers) into IPv4. */
int ovl_uv_addr_from_sockaddr(struct ovl_addr *a, const struct sockaddr *sa)
{
    struct ovl_stun_addr s;

    if (ovl_stun_addr_from_sockaddr(&s, sa) != 0) {
        memset(a, 0, sizeof(*a));
        return -EAFNOSUPPORT;
    }
    return ovl_uv_addr_from_stun(a, &s);
}

int ovl_uv_addr_to_sockaddr(const struct ovl_addr *a, struct sockaddr_storage *ss)
{
    struct ovl_stun_addr s;

    ovl_uv_addr_to_stun(&s, a);
    return ovl_stun_addr_to_sockaddr(&s, ss);
}

/* Resolves @host (a literal, or a name: blocking, used at start only). */
static int resolve(const char *host, uint16_t port, struct ovl_addr *a)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_family = AF_INET}, *res = NULL;
    int rc;

    /* IPv4 first: nodes bind 0.0.0.0 by default, and an IPv6 answer to a
     * name that has both would be unreachable from that socket. Literal
     * IPv6 addresses and IPv6-only names still work. */
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        hints.ai_family = AF_UNSPEC;
        res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
            return -EINVAL;
    }
    rc = ovl_uv_addr_from_sockaddr(a, res->ai_addr);
    freeaddrinfo(res);
    if (rc)
        return -EINVAL;
    a->port = port;
    return 0;
}

int ovl_uv_contact_parse(struct ovl_contact *c, const char *text)
{
    char key[80], host[256];
    const char *at = strchr(text, '@'), *hp, *colon;
    unsigned long port;
    char *end;
    size_t klen, hlen;

    memset(c, 0, sizeof(*c));
    if (at == NULL)
        return -EINVAL;
    klen = (size_t)(at - text);
    if (klen == 0 || klen >= sizeof(key))
        return -EINVAL;
    memcpy(key, text, klen);
    key[klen] = '\0';
    if (ovl_pk_from_text(c->identity, key) != 0)
        return -EINVAL;
    hp = at + 1;
    if (*hp == '[') {
        const char *close = strchr(hp, ']');

        if (close == NULL || close[1] != ':')
            return -EINVAL;
        hlen = (size_t)(close - hp - 1);
        hp++;
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - hp);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno || *end != '\0' || end == colon + 1 || port == 0 || port > 65535)
        return -EINVAL;
    if (resolve(host, (uint16_t)port, &c->udp) != 0)
        return -EINVAL;
    c->tcp_port = (uint16_t)port;
    ovl_node_id(c->node_id, c->identity);
    return 0;
}

int ovl_uv_contacts_parse(const char *list, struct ovl_contact **out, size_t *n,
                          void (*bad)(const char *entry, void *data), void *data)
{
    size_t cap = 1;
    char *copy, *save = NULL;

    *out = NULL;
    *n = 0;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    copy = strdup(list);
    *out = calloc(cap, sizeof(**out));
    if (copy == NULL || *out == NULL) {
        free(copy);
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        char *end = e + strlen(e);

        while (*e == ' ' || *e == '\t')
            e++;
        while (end > e && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*e == '\0')
            continue;
        if (ovl_uv_contact_parse(&(*out)[*n], e) == 0)
            (*n)++;
        else if (bad)
            bad(e, data);
    }
    free(copy);
    if (*n == 0) {
        free(*out);
        *out = NULL;
    }
    return 0;
}

void ovl_uv_contact_format(char *out, size_t cap, const struct ovl_contact *c)
{
    char key[OVL_PK_TEXT_LEN], addr[64];

    ovl_pk_to_text(key, c->identity);
    ovl_addr_to_text(addr, sizeof(addr), &c->udp);
    snprintf(out, cap, "%s@%s", key, addr);
}

/* ---- connections --------------------------------------------------------- */

static struct uconn **conn_slot(struct ovl_uvnode *u, uint32_t id)
{
    struct uconn **p = &u->conns[id % CONN_BUCKETS];

    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

static struct uconn *conn_find(struct ovl_uvnode *u, uint32_t id)
{
    return *conn_slot(u, id);
}

static void conn_unlink(struct ovl_uvnode *u, struct uconn *c)
{
    struct uconn **p = conn_slot(u, c->id);

    if (*p == c) {
        *p = c->next;
        u->nconns--;
    }
}

static void free_strs(struct ovl_uvnode *u)
{
    for (size_t i = 0; i < sizeof(u->strs) / sizeof(u->strs[0]); i++)
        free(u->strs[i]);
}

static void free_ipcs(struct ovl_uvnode *u)
{
    for (size_t i = 0; i < IPC_BUCKETS; i++) {
        while (u->ipcs[i]) {
            struct ipc *e = u->ipcs[i];

            u->ipcs[i] = e->next;
            free(e);
        }
    }
}

static void handle_gone(struct ovl_uvnode *u)
{
    u->open_handles--;
    if (u->open_handles == 0 && u->torn_down) {
        ovl_uvnode_closed_cb done = u->done;
        void *data = u->done_data;

        free_strs(u);
        free_ipcs(u);
        free(u);
        if (done)
            done(data);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct uconn *c = (struct uconn *)h;
    struct ovl_uvnode *u = c->u;

    free(c);
    handle_gone(u);
}

/* Closes @c; @tell: the node did not ask for it, so it hears of it. */
static void conn_close(struct ovl_uvnode *u, struct uconn *c, bool tell)
{
    if (c->dead)
        return;
    c->dead = true;
    conn_unlink(u, c);
    ipc_release(u, c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    if (tell && u->node && !u->torn_down) {
        ovl_node_tcp_closed(u->node, c->id, ovl_uvnode_now(u));
        flush(u);
    }
}

static struct uconn *conn_new(struct ovl_uvnode *u, uint32_t id)
{
    struct uconn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (uv_tcp_init(u->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    u->open_handles++;
    c->tcp.data = c;
    c->u = u;
    c->id = id;
    return c;
}

static void conn_insert(struct ovl_uvnode *u, struct uconn *c)
{
    struct uconn **p = &u->conns[c->id % CONN_BUCKETS];

    c->next = *p;
    *p = c;
    u->nconns++;
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct uconn *c = s->data;
    struct ovl_uvnode *u = c->u;

    if (c->dead)
        return;
    if (nread < 0) {
        conn_close(u, c, true);
        return;
    }
    if (nread == 0)
        return;
    ovl_node_tcp_recv(u->node, c->id, (const uint8_t *)buf->base, (size_t)nread,
                      ovl_uvnode_now(u));
    flush(u);
}

static void conn_start_reading(struct ovl_uvnode *u, struct uconn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, ovl_uv_alloc_slab, on_tcp_read) == 0)
        c->reading = true;
    else
        conn_close(u, c, true);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct uconn *c = req->data;
    struct ovl_uvnode *u = c->u;

    if (c->dead)
        return;
    if (status != 0) {
        conn_close(u, c, true);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, u->tcp_keepalive_s);
    ovl_node_tcp_connected(u->node, c->id, ovl_uvnode_now(u));
    flush(u);
    if (!c->dead)
        conn_start_reading(u, c);
}

static void do_connect(struct ovl_uvnode *u, uint32_t id, const struct ovl_addr *to)
{
    struct sockaddr_storage ss;
    struct uconn *c;

    if (u->nconns >= u->cfg.max_conns ||
        ovl_uv_addr_to_sockaddr(to, &ss) < 0 || (c = conn_new(u, id)) == NULL) {
        /* The node expects an answer to every connect. */
        ovl_node_tcp_closed(u->node, id, ovl_uvnode_now(u));
        return;
    }
    conn_insert(u, c);
    c->peer = *to;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&ss, on_connected) != 0)
        conn_close(u, c, true);
}

/* A write request with the bytes it carries behind it. */
struct uwrite {
    uv_write_t req;
    struct ovl_uvnode *u;
    size_t len;
};

static void on_written(uv_write_t *req, int status)
{
    struct uwrite *w = (struct uwrite *)req;

    (void)status;
    w->u->sendq_bytes -= w->len;
    free(w);
}

static void do_send(struct ovl_uvnode *u, uint32_t id, const uint8_t *data, size_t len)
{
    struct uconn *c = conn_find(u, id);
    struct uwrite *w;
    uv_buf_t b;

    if (c == NULL || c->dead)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > TCP_SENDQ_MAX ||
        u->sendq_bytes + len > TCP_SENDQ_TOTAL_MAX)
        goto fail;
    w = malloc(sizeof(*w) + len);
    if (w == NULL)
        goto fail;
    w->u = u;
    w->len = len;
    memcpy(w + 1, data, len);
    b = uv_buf_init((char *)(w + 1), (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(w);
        goto fail;
    }
    u->sendq_bytes += len;
    return;
fail:
    u->ctr.tcp_write_dropped++;
    conn_close(u, c, true);
}

static void ipc_key(uint8_t key[9], const struct ovl_addr *a)
{
    memset(key, 0, 9);
    key[0] = a->family;
    memcpy(key + 1, a->ip, a->family == OVL_AF_INET6 ? 8 : 4);
}

static struct ipc **ipc_slot(struct ovl_uvnode *u, const uint8_t key[9])
{
    uint32_t h = 2166136261u; /* FNV-1a: no secret needed, chains are capped
                                 by the per-source limit anyway */
    struct ipc **p;

    for (int i = 0; i < 9; i++)
        h = (h ^ key[i]) * 16777619u;
    p = &u->ipcs[h % IPC_BUCKETS];
    while (*p && memcmp((*p)->key, key, 9) != 0)
        p = &(*p)->next;
    return p;
}

/* Counts @c against its source; false when the source is at its cap (or
 * out of memory). */
static bool ipc_take(struct ovl_uvnode *u, struct uconn *c, uint32_t max)
{
    uint8_t key[9];
    struct ipc **p;

    ipc_key(key, &c->peer);
    p = ipc_slot(u, key);
    if (*p == NULL) {
        *p = calloc(1, sizeof(**p));
        if (*p == NULL)
            return false;
        memcpy((*p)->key, key, 9);
    }
    if ((*p)->n >= max)
        return false;
    (*p)->n++;
    c->counted = true;
    return true;
}

static void ipc_release(struct ovl_uvnode *u, struct uconn *c)
{
    uint8_t key[9];
    struct ipc **p, *e;

    if (!c->counted)
        return;
    c->counted = false;
    ipc_key(key, &c->peer);
    p = ipc_slot(u, key);
    e = *p;
    if (e && --e->n == 0) {
        *p = e->next;
        free(e);
    }
}

/* Accepts and drops a connection we have no room for: libuv stops
 * watching a listener whose callback did not accept. */
static void refuse_raw(uv_stream_t *lis)
{
    uv_os_fd_t fd;
    int s;

    if (uv_fileno((uv_handle_t *)lis, &fd) == 0 &&
        (s = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(s);
}

static void on_accept(uv_stream_t *lis, int status)
{
    struct ovl_uvnode *u = lis->data;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct uconn *c;

    if (status != 0 || u->closing)
        return;
    c = conn_new(u, 0);
    if (c == NULL) {
        u->ctr.tcp_refused_cap++;
        refuse_raw(lis);
        return;
    }
    if (uv_accept(lis, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) != 0 ||
        ovl_uv_addr_from_sockaddr(&c->peer, (struct sockaddr *)&ss) != 0 ||
        u->nconns >= u->cfg.max_conns || !ipc_take(u, c, u->cfg.max_conns_per_ip))
        goto refuse;
    c->accepted = true;
    c->id = ovl_node_tcp_accepted(u->node, &c->peer, ovl_uvnode_now(u));
    if (c->id == 0) /* the node would not take it */
        goto refuse;
    u->ctr.tcp_accepted++;
    conn_insert(u, c);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, u->tcp_keepalive_s);
    conn_start_reading(u, c);
    flush(u);
    return;
refuse:
    u->ctr.tcp_refused_cap++;
    ipc_release(u, c);
    c->dead = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    flush(u); /* the node may have queued a close for its id */
}

/* ---- UDP ----------------------------------------------------------------- */

static void udp_send(struct ovl_uvnode *u, uv_udp_t *udp, const struct ovl_addr *to,
                     const uint8_t *data, size_t len)
{
    struct sockaddr_storage ss;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

    /* try_send: datagrams are best effort, and a full socket buffer is
     * congestion the protocol's retries already handle. */
    if (ovl_uv_addr_to_sockaddr(to, &ss) < 0 ||
        uv_udp_try_send(udp, &b, 1, (const struct sockaddr *)&ss) < 0)
        u->ctr.udp_send_errors++;
}

/* Takes one token from the STUN answer bucket, if there is one. */
static bool stun_token(struct ovl_uvnode *u)
{
    uint64_t now = uv_now(u->loop);

    u->stun_tokens += (double)(now - u->stun_refill_ms) * STUN_RATE / 1000.0;
    if (u->stun_tokens > STUN_BURST)
        u->stun_tokens = STUN_BURST;
    u->stun_refill_ms = now;
    if (u->stun_tokens < 1.0)
        return false;
    u->stun_tokens -= 1.0;
    return true;
}

static void stun_answer(struct ovl_uvnode *u, const uint8_t *buf, size_t len,
                        const struct sockaddr *from)
{
    struct ovl_stun_server srv = {.software = u->cfg.software, .mapped_address = true};
    enum ovl_stun_drop drop = OVL_STUN_DROP_NONE;
    uint8_t out[OVL_STUN_RESP_MAX];
    struct ovl_stun_reply reply;
    struct ovl_stun_addr src;
    uv_buf_t b;

    /* Only supernodes serve discovery; a peer's port is not a public
     * service. Answers are never larger than OVL_STUN_RESP_MAX and go
     * only to the request's source (docs/protocol.md 5.2 bounds the
     * ratio: at most 3.8x, as for any STUN server). */
    if (ovl_node_role(u->node) != OVL_ROLE_SUPERNODE || !stun_token(u) ||
        ovl_stun_addr_from_sockaddr(&src, from) != 0 ||
        ovl_stun_server_handle(&srv, buf, len, &src, NULL, out, sizeof(out), &reply,
                               &drop) != 0 ||
        reply.len == 0) {
        u->ctr.stun_dropped++;
        return;
    }
    b = uv_buf_init((char *)out, (unsigned)reply.len);
    if (uv_udp_try_send(&u->udp, &b, 1, from) < 0)
        u->ctr.udp_send_errors++;
    else
        u->ctr.stun_answered++;
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct ovl_uvnode *u = h->data;
    struct ovl_addr src;

    (void)flags;
    if (nread <= 0 || from == NULL || u->torn_down)
        return;
    if (ovl_wire_classify((const uint8_t *)buf->base, (size_t)nread) == OVL_CLASS_STUN) {
        stun_answer(u, (const uint8_t *)buf->base, (size_t)nread, from);
        return;
    }
    if (ovl_uv_addr_from_sockaddr(&src, from) != 0)
        return;
    ovl_node_udp_recv(u->node, &src, (const uint8_t *)buf->base, (size_t)nread,
                      ovl_uvnode_now(u));
    flush(u);
}

/* ---- NAT discovery ------------------------------------------------------- */

static void nat_pump(struct ovl_uvnode *u, int evbits)
{
    uint64_t now_ms = uv_now(u->loop), due;
    uint8_t out[OVL_STUN_REQ_MAX];
    struct ovl_stun_addr dst;
    size_t len;

    while (ovl_nat_next_datagram(&u->nat, now_ms, out, sizeof(out), &len, &dst) == 1) {
        struct sockaddr_storage ss;
        uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);

        if (ovl_stun_addr_to_sockaddr(&dst, &ss) < 0 ||
            uv_udp_try_send(&u->nat_udp, &b, 1, (const struct sockaddr *)&ss) < 0)
            u->ctr.udp_send_errors++;
    }
    if ((evbits & OVL_NAT_EV_DONE) && u->cfg.on_nat)
        u->cfg.on_nat(u, ovl_nat_result(&u->nat), u->cfg.data);
    due = ovl_nat_next_timer(&u->nat);
    if (due == UINT64_MAX)
        uv_timer_stop(&u->nat_timer);
    else
        uv_timer_start(&u->nat_timer, on_nat_timer, due > now_ms ? due - now_ms : 0, 0);
}

static void on_nat_timer(uv_timer_t *t)
{
    struct ovl_uvnode *u = t->data;

    nat_pump(u, ovl_nat_timeout(&u->nat, uv_now(u->loop)));
}

static void on_nat_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct ovl_uvnode *u = h->data;
    struct ovl_stun_addr src;
    int ev;

    (void)flags;
    if (nread <= 0 || from == NULL || u->torn_down ||
        ovl_stun_addr_from_sockaddr(&src, from) != 0)
        return;
    ev = ovl_nat_recv(&u->nat, (const uint8_t *)buf->base, (size_t)nread, &src,
                      uv_now(u->loop));
    nat_pump(u, ev < 0 ? 0 : ev);
}

/* Another supernode from the host cache, at another address, for test
 * IV. */
static bool nat_second(struct ovl_uvnode *u, const struct ovl_contact *sn,
                       struct ovl_stun_addr *second)
{
    const struct ovl_hostcache *hc = ovl_node_hostcache(u->node);

    for (uint16_t i = 0; i < hc->n; i++) {
        if (memcmp(hc->e[i].c.node_id, sn->node_id, OVL_NODE_ID_LEN) != 0 &&
            !ovl_addr_eq(&hc->e[i].c.udp, &sn->udp)) {
            if (second)
                ovl_uv_addr_to_stun(second, &hc->e[i].c.udp);
            return true;
        }
    }
    return false;
}

/* (Re)starts discovery against @sn (the supernode we attached to), with a
 * second supernode from the host cache for the mapping test. */
static void nat_start(struct ovl_uvnode *u, const struct ovl_contact *sn)
{
    struct ovl_nat_config nc = {0};
    struct ovl_stun_addr srv;

    if (!u->has_nat || u->closing)
        return;
    ovl_uv_addr_to_stun(&srv, &sn->udp);
    if (u->nat_started && ovl_stun_addr_eq(&srv, &u->nat_server))
        return; /* same server: the periodic refresh carries on */
    nc.server = srv;
    u->nat_has_second = nat_second(u, sn, &nc.second);
    ovl_uv_addr_to_stun(&nc.local, &u->local);
    {
        struct sockaddr_storage ss;
        int sl = sizeof(ss);

        struct ovl_addr na;

        if (uv_udp_getsockname(&u->nat_udp, (struct sockaddr *)&ss, &sl) == 0 &&
            ovl_uv_addr_from_sockaddr(&na, (struct sockaddr *)&ss) == 0)
            nc.local.port = na.port;
    }
    nc.rto_ms = u->cfg.nat_rto_ms;
    nc.rc = u->cfg.nat_rc;
    nc.refresh_ms = u->cfg.nat_refresh_ms;
    nc.software = u->cfg.software;
    ovl_nat_init(&u->nat, &nc);
    u->nat_server = srv;
    u->nat_sn = *sn;
    u->nat_started = true;
    ovl_nat_start(&u->nat, uv_now(u->loop));
    nat_pump(u, 0);
}

/* ---- host cache file ----------------------------------------------------- */

static void hc_load(struct ovl_uvnode *u)
{
    uint8_t *buf = NULL;
    FILE *f;
    long sz;

    if (u->cfg.hostcache_path == NULL)
        return;
    f = fopen(u->cfg.hostcache_path, "rb");
    if (f == NULL)
        return;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) > 0 && sz < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)sz)) != NULL &&
        fread(buf, 1, (size_t)sz, f) == (size_t)sz) {
        /* A corrupt file is ignored: the bootstrap list still seeds. */
        (void)ovl_hc_load(ovl_node_hostcache(u->node), buf, (size_t)sz);
    }
    free(buf);
    fclose(f);
}

/* Writes the host cache (temporary file + rename, so a crash never leaves
 * half a file) when it changed. Small and rare: done on the loop. */
static void hc_save(struct ovl_uvnode *u)
{
    const struct ovl_hostcache *hc;
    uint8_t *buf, h[sizeof(u->hc_saved_hash)];
    char tmp[4096];
    size_t cap;
    int len, fd;
    bool ok = false;

    if (u->cfg.hostcache_path == NULL || u->node == NULL)
        return;
    hc = ovl_node_hostcache(u->node);
    cap = ovl_hc_save_size(hc);
    buf = malloc(cap);
    if (buf == NULL)
        return;
    len = ovl_hc_save(hc, buf, cap);
    if (len <= 0)
        goto out;
    /* last_seen moves every refresh; compare the whole image. */
    crypto_generichash(h, sizeof(h), buf, (size_t)len, NULL, 0);
    if ((size_t)len == u->hc_saved_len && memcmp(h, u->hc_saved_hash, sizeof(h)) == 0)
        goto out;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", u->cfg.hostcache_path) >= (int)sizeof(tmp))
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    ok = write(fd, buf, (size_t)len) == len;
    ok = (close(fd) == 0) && ok;
    if (ok && rename(tmp, u->cfg.hostcache_path) == 0) {
        u->hc_saved_len = (size_t)len;
        memcpy(u->hc_saved_hash, h, sizeof(h));
    } else {
        unlink(tmp);
    }
out:
    free(buf);
}

/* ---- the node's timer, housekeeping, flushing ---------------------------- */

uint64_t ovl_uvnode_now(const struct ovl_uvnode *u)
{
    (void)u;
    return uv_hrtime();
}

static void on_timer(uv_timer_t *t)
{
    struct ovl_uvnode *u = t->data;

    ovl_node_timers(u->node, ovl_uvnode_now(u));
    flush(u);
}

static void on_house(uv_timer_t *t)
{
    struct ovl_uvnode *u = t->data;
    uint64_t now = ovl_uvnode_now(u);

    /* A peer that logged in knowing one supernode could not test its
     * mapping (test IV needs a second server): rerun once the host cache
     * has learnt another, instead of reporting "unknown" until the next
     * refresh. */
    if (u->nat_started && !u->nat_has_second && !ovl_nat_running(&u->nat) &&
        nat_second(u, &u->nat_sn, NULL)) {
        u->nat_started = false;
        nat_start(u, &u->nat_sn);
    }
    if (now - u->hc_saved_at > HOSTCACHE_SAVE_MS * 1000000ull) {
        u->hc_saved_at = now;
        hc_save(u);
    }
}

/* The driver's own reactions, before the application sees @ev. */
static void handle_event(struct ovl_uvnode *u, const struct ovl_event *ev)
{
    if (ev->kind == OVL_NEV_LOGGED_IN && ev->supernode.udp.family != OVL_AF_NONE &&
        ovl_node_role(u->node) == OVL_ROLE_PEER)
        nat_start(u, &ev->supernode);
}

/* ... and after: a graceful close ends once the logout is done. */
static void handle_event_after(struct ovl_uvnode *u, const struct ovl_event *ev)
{
    if (ev->kind == OVL_NEV_LOGGED_OUT)
        u->node_logged_out = true;
    if (ev->kind == OVL_NEV_LOGGED_OUT && u->logging_out) {
        u->logging_out = false;
        teardown(u);
    }
}

static void flush(struct ovl_uvnode *u)
{
    struct ovl_event ev;
    struct ovl_out o;
    uint64_t due, now;
    bool more;

    if (u->torn_down || u->node == NULL)
        return;
    if (u->in_flush) {
        u->flush_again = true;
        return;
    }
    u->in_flush = true;
    do {
        u->flush_again = false;
        more = false;
        while (!u->torn_down && ovl_node_out_next(u->node, &o)) {
            switch (o.kind) {
            case OVL_OUT_UDP_SEND:
                udp_send(u, &u->udp, &o.addr, o.data, o.len);
                break;
            case OVL_OUT_TCP_CONNECT:
                do_connect(u, o.conn, &o.addr);
                break;
            case OVL_OUT_TCP_SEND:
                do_send(u, o.conn, o.data, o.len);
                break;
            case OVL_OUT_TCP_CLOSE: {
                struct uconn *c = conn_find(u, o.conn);

                if (c)
                    conn_close(u, c, false);
                break;
            }
            }
        }
        while (!u->torn_down && ovl_node_event_next(u->node, &ev)) {
            more = true;
            handle_event(u, &ev);
            if (u->cfg.on_event && !u->torn_down)
                u->cfg.on_event(u, &ev, u->cfg.data);
            if (!u->torn_down)
                handle_event_after(u, &ev);
        }
    } while (!u->torn_down && (more || u->flush_again));
    u->in_flush = false;
    if (u->torn_down) {
        teardown(u); /* finish what a callback started */
        return;
    }
    due = ovl_node_next_timer(u->node);
    now = ovl_uvnode_now(u);
    if (due == OVL_NEVER) {
        uv_timer_stop(&u->timer);
        return;
    }
    /* Round up to the loop's millisecond clock so the timer never fires
     * just before the node's deadline and spins. */
    uv_timer_start(&u->timer, on_timer, due > now ? (due - now + 999999) / 1000000 : 0, 0);
}

void ovl_uvnode_flush(struct ovl_uvnode *u)
{
    flush(u);
}

/* ---- setup --------------------------------------------------------------- */

static void pick_advertise(struct ovl_uvnode *u, const struct sockaddr *bound)
{
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;

    ovl_uv_addr_from_sockaddr(&u->local, bound);
    if (u->cfg.advertise_ip) {
        struct ovl_addr a;

        if (resolve(u->cfg.advertise_ip, u->local.port, &a) == 0)
            u->local = a;
        return;
    }
    {
        static const uint8_t zero[16];

        /* A specific address, IPv4 or IPv6, is what others use. */
        if (memcmp(u->local.ip, zero, u->local.family == OVL_AF_INET6 ? 16 : 4) != 0)
            return;
    }
    /* Wildcard: the first non-loopback IPv4, else loopback. */
    ovl_addr_v4(&u->local, 0x7f000001u, u->local.port);
    if (uv_interface_addresses(&ifs, &nifs) != 0)
        return;
    for (int i = 0; i < nifs; i++) {
        if (!ifs[i].is_internal && ifs[i].address.address4.sin_family == AF_INET) {
            ovl_uv_addr_from_sockaddr(&u->local,
                                      (const struct sockaddr *)&ifs[i].address.address4);
            break;
        }
    }
    u->local.port = u->udp_port;
    uv_free_interface_addresses(ifs, nifs);
}

/* Sets @port in a sockaddr_in or sockaddr_in6. */
static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in s4;

        memcpy(&s4, ss, sizeof(s4));
        s4.sin_port = htons(port);
        memcpy(ss, &s4, sizeof(s4));
    } else {
        struct sockaddr_in6 s6;

        memcpy(&s6, ss, sizeof(s6));
        s6.sin6_port = htons(port);
        memcpy(ss, &s6, sizeof(s6));
    }
}

static socklen_t ss_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
}

/*
 * Binds the UDP socket and, when wanted, a TCP socket on the same port
 * number. With port 0 the kernel picks the UDP port, and that number may
 * be taken for TCP; so the pair is bound as plain descriptors first and
 * retried with a new number before libuv adopts them.
 */
static int bind_pair(struct ovl_uvnode *u, const struct sockaddr_storage *want,
                     int *ufd_out, int *tfd_out)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        struct sockaddr_storage ss = *want;
        socklen_t sl = sizeof(ss);
        int ufd, tfd = -1, one = 1, rc;

        ufd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (ufd < 0)
            return -errno;
        if (bind(ufd, (struct sockaddr *)&ss, ss_len(&ss)) != 0 ||
            getsockname(ufd, (struct sockaddr *)&ss, &sl) != 0) {
            rc = -errno;
            close(ufd);
            return rc;
        }
        if (!u->cfg.listen_tcp) {
            *ufd_out = ufd;
            *tfd_out = -1;
            return 0;
        }
        tfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (tfd < 0) {
            rc = -errno;
            close(ufd);
            return rc;
        }
        setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(tfd, (struct sockaddr *)&ss, ss_len(&ss)) == 0) {
            *ufd_out = ufd;
            *tfd_out = tfd;
            return 0;
        }
        rc = -errno;
        close(tfd);
        close(ufd);
        if (rc != -EADDRINUSE || u->cfg.port != 0)
            return rc;
    }
    return -EADDRINUSE;
}

static int bind_sockets(struct ovl_uvnode *u, char *err, size_t errlen)
{
    struct sockaddr_storage ss = {0};
    int sl = sizeof(ss), rc, ufd = -1, tfd = -1;
    const char *ip = u->cfg.bind_ip ? u->cfg.bind_ip : "0.0.0.0";

    if (uv_ip4_addr(ip, u->cfg.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(ip, u->cfg.port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "overlay: bad bind address '%s'", ip);
        return -EINVAL;
    }
    rc = bind_pair(u, &ss, &ufd, &tfd);
    if (rc) {
        snprintf(err, errlen, "overlay: UDP%s %s port %u: %s", u->cfg.listen_tcp ? "+TCP" : "",
                 ip, u->cfg.port, strerror(-rc));
        return rc;
    }
    rc = uv_udp_open(&u->udp, ufd);
    if (rc) {
        close(ufd);
        if (tfd >= 0)
            close(tfd);
        snprintf(err, errlen, "overlay: UDP socket: %s", uv_strerror(rc));
        return rc;
    }
    rc = uv_udp_getsockname(&u->udp, (struct sockaddr *)&ss, &sl);
    if (rc == 0)
        rc = ovl_uv_addr_from_sockaddr(&u->local, (struct sockaddr *)&ss);
    if (rc) {
        if (tfd >= 0)
            close(tfd);
        snprintf(err, errlen, "overlay: UDP socket has no address");
        return rc;
    }
    u->udp_port = u->local.port;
    if (tfd >= 0) {
        rc = uv_tcp_open(&u->lis, tfd);
        if (rc) {
            close(tfd);
        } else {
            rc = uv_listen((uv_stream_t *)&u->lis, 128, on_accept);
        }
        if (rc) {
            snprintf(err, errlen, "overlay: TCP %s port %u: %s", ip, u->udp_port,
                     uv_strerror(rc));
            return rc;
        }
        u->tcp_port = u->udp_port;
    }
    if (u->cfg.listen_443) {
        struct sockaddr_storage s443 = ss;

        set_port(&s443, 443);
        rc = uv_tcp_bind(&u->lis443, (struct sockaddr *)&s443, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&u->lis443, 128, on_accept);
        if (rc) {
            snprintf(err, errlen, "overlay: TCP %s port 443: %s", ip, uv_strerror(rc));
            return rc;
        }
    }
    pick_advertise(u, (const struct sockaddr *)&ss);
    if (u->has_nat) {
        struct sockaddr_storage n = ss;

        set_port(&n, 0);
        rc = uv_udp_bind(&u->nat_udp, (const struct sockaddr *)&n, 0);
        if (rc == 0)
            rc = uv_udp_recv_start(&u->nat_udp, ovl_uv_alloc_slab, on_nat_recv);
        if (rc) {
            snprintf(err, errlen, "overlay: NAT probe socket: %s", uv_strerror(rc));
            return rc;
        }
    }
    return uv_udp_recv_start(&u->udp, ovl_uv_alloc_slab, on_udp_recv);
}

static void init_handle(struct ovl_uvnode *u, uv_handle_t *h)
{
    h->data = u;
    u->open_handles++;
}

int ovl_uvnode_new(struct ovl_uvnode **out, uv_loop_t *loop,
                   const struct ovl_uvnode_config *cfg, char *err, size_t errlen)
{
    struct ovl_node_config nc;
    struct ovl_uvnode *u;
    struct timespec ts;
    uint64_t now;
    int rc;

    *out = NULL;
    snprintf(err, errlen, "overlay: out of memory");
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    u->loop = loop;
    u->cfg = *cfg;
    /* The strings are used for the driver's whole life (the host cache
     * is saved at close): keep copies, not the caller's pointers. */
    {
        const char **fields[] = {&u->cfg.bind_ip, &u->cfg.advertise_ip,
                                 &u->cfg.hostcache_path, &u->cfg.software};

        for (size_t i = 0; i < 4; i++) {
            if (*fields[i] == NULL)
                continue;
            u->strs[i] = strdup(*fields[i]);
            if (u->strs[i] == NULL) {
                free_strs(u);
                free(u);
                return -ENOMEM;
            }
            *fields[i] = u->strs[i];
        }
    }
    u->tcp_keepalive_s = cfg->node.timing.keepalive
                             ? (unsigned)(cfg->node.timing.keepalive / 1000000000ull)
                             : 30;
    if (u->tcp_keepalive_s == 0)
        u->tcp_keepalive_s = 1;
    u->has_nat = cfg->nat_discovery;
    if (u->cfg.max_conns == 0)
        u->cfg.max_conns = DEF_MAX_CONNS;
    if (u->cfg.max_conns_per_ip == 0)
        u->cfg.max_conns_per_ip = DEF_MAX_CONNS_PER_IP;
    u->stun_tokens = STUN_BURST;
    u->stun_refill_ms = uv_now(loop);
    /* Every handle is initialised first, so teardown can close them all
     * whatever failed below. */
    uv_udp_init(loop, &u->udp);
    init_handle(u, (uv_handle_t *)&u->udp);
    uv_timer_init(loop, &u->timer);
    init_handle(u, (uv_handle_t *)&u->timer);
    uv_timer_init(loop, &u->house);
    init_handle(u, (uv_handle_t *)&u->house);
    uv_timer_init(loop, &u->logout_timer);
    init_handle(u, (uv_handle_t *)&u->logout_timer);
    uv_tcp_init(loop, &u->lis);
    init_handle(u, (uv_handle_t *)&u->lis);
    uv_tcp_init(loop, &u->lis443);
    init_handle(u, (uv_handle_t *)&u->lis443);
    uv_udp_init(loop, &u->nat_udp);
    init_handle(u, (uv_handle_t *)&u->nat_udp);
    uv_timer_init(loop, &u->nat_timer);
    init_handle(u, (uv_handle_t *)&u->nat_timer);

    rc = bind_sockets(u, err, errlen);
    if (rc)
        goto fail;
    nc = cfg->node;
    nc.local = u->local;
    nc.tcp_port = u->tcp_port;
    nc.tcp443 = cfg->listen_443;
    now = ovl_uvnode_now(u);
    clock_gettime(CLOCK_REALTIME, &ts);
    nc.wall_offset = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - now;
    rc = ovl_node_new(&u->node, &nc, now);
    if (rc) {
        snprintf(err, errlen, "overlay: bad node configuration (%s)", strerror(-rc));
        goto fail;
    }
    hc_load(u);
    rc = ovl_node_start(u->node, now);
    if (rc) {
        snprintf(err, errlen, "overlay: cannot start (%s)", strerror(-rc));
        goto fail;
    }
    u->hc_saved_at = now;
    uv_timer_start(&u->house, on_house, HOUSEKEEP_MS, HOUSEKEEP_MS);
    flush(u);
    err[0] = '\0';
    *out = u;
    return 0;
fail:
    u->closing = true;
    teardown(u);
    return rc;
}

/* ---- closing ------------------------------------------------------------- */

static void on_logout_timeout(uv_timer_t *t)
{
    struct ovl_uvnode *u = t->data;

    u->logging_out = false;
    teardown(u);
}

static void teardown(struct ovl_uvnode *u)
{
    if (u->in_flush) {
        /* Called from a callback inside flush: finish there. */
        u->torn_down = true;
        return;
    }
    if (u->handles_closed)
        return;
    u->handles_closed = true;
    u->torn_down = true;
    hc_save(u);
    for (size_t i = 0; i < CONN_BUCKETS; i++)
        while (u->conns[i])
            conn_close(u, u->conns[i], false);
    if (u->node) {
        ovl_node_free(u->node);
        u->node = NULL;
    }
    uv_close((uv_handle_t *)&u->udp, on_handle_closed);
    uv_close((uv_handle_t *)&u->timer, on_handle_closed);
    uv_close((uv_handle_t *)&u->house, on_handle_closed);
    uv_close((uv_handle_t *)&u->logout_timer, on_handle_closed);
    uv_close((uv_handle_t *)&u->lis, on_handle_closed);
    uv_close((uv_handle_t *)&u->lis443, on_handle_closed);
    uv_close((uv_handle_t *)&u->nat_udp, on_handle_closed);
    uv_close((uv_handle_t *)&u->nat_timer, on_handle_closed);
}

void ovl_uvnode_close(struct ovl_uvnode *u, bool graceful, ovl_uvnode_closed_cb done,
                      void *data)
{
    int rc;

    if (u == NULL || u->closing)
        return;
    u->closing = true;
    u->done = done;
    u->done_data = data;
    uv_timer_stop(&u->nat_timer);
    /* A logout the application started may still be storing the
     * last-seen record (-EALREADY): wait for it as for our own. */
    if (graceful && u->node && !u->node_logged_out &&
        ((rc = ovl_node_logout(u->node, ovl_uvnode_now(u))) == 0 || rc == -EALREADY)) {
        u->logging_out = true;
        uv_timer_start(&u->logout_timer, on_logout_timeout, LOGOUT_WAIT_MS, 0);
        flush(u);
        return;
    }
    teardown(u);
}

/* ---- inspection ---------------------------------------------------------- */

struct ovl_node *ovl_uvnode_node(struct ovl_uvnode *u)
{
    return u->node;
}

void ovl_uvnode_status(struct ovl_uvnode *u, struct ovl_uvnode_status *st)
{
    const struct ovl_rt *rt;
    const struct ovl_store *store;

    memset(st, 0, sizeof(*st));
    st->counters = u->ctr;
    st->udp_port = u->udp_port;
    st->tcp_port = u->tcp_port;
    st->conns = u->nconns;
    if (u->node == NULL)
        return;
    st->role = ovl_node_role(u->node);
    st->logged_in = ovl_node_logged_in(u->node);
    st->has_supernode = ovl_node_supernode(u->node, &st->supernode);
    ovl_node_contact(u->node, &st->self);
    st->hostcache = ovl_node_hostcache(u->node)->n;
    st->attached = ovl_node_attached(u->node);
    rt = ovl_node_routing_table(u->node);
    store = ovl_node_store(u->node);
    st->rt_contacts = rt ? rt->count : 0;
    st->records = store ? store->count : 0;
    st->memory = ovl_node_memory(u->node);
    st->stats = ovl_node_stats(u->node);
    if (u->nat_started) {
        st->nat = *ovl_nat_result(&u->nat);
        st->nat_running = ovl_nat_running(&u->nat);
    }
}
