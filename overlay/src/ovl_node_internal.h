/*
 * ovl_node_internal.h (private): what the node's files share.
 *
 *   ovl_node.c      lifecycle, configuration, the output and event queues,
 *                   the timer heap, the inputs, housekeeping, dispatch
 *   ovl_link.c      links (one per remote node and transport), TCP
 *                   connections, secure sessions or plaintext frames, RPCs
 *   ovl_peer.c      the peer side: login ladder, signalling sessions,
 *                   keep-alives, re-attach, publishing, lookups, buddies,
 *                   promotion
 *   ovl_super.c     the supernode side: logins, the DHT (handlers and
 *                   operations), republish, attestation, subscriptions
 *   ovl_hostcache.c the host cache
 *
 * Cross-file internals carry the ovl__ prefix. Everything is loop-only.
 */
#ifndef OVL_NODE_INTERNAL_H
#define OVL_NODE_INTERNAL_H

#include "ovl_node.h"
#include "ovl_stream.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define OVL__CONTAINER(p, type, member)                                       \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

enum {
    OVL__STREAM_CAP = 1536,   /* largest framed message on a connection */
    OVL__APP_PAD = OVL_HS_APP_MAX, /* INIT payloads are padded to this, so
                                      the RESP may carry any answer */
    OVL__SUB_REPLICAS = 3,    /* storage nodes a subscription is placed on */
    OVL__PENDING_MAX = 32,    /* queued messages per link */
    OVL__BUDDIES_MAX = 256,
    OVL__ROOMS_MAX = 4096,    /* rooms a node publishes (a bridge's) */
    OVL__PUBADDR_MAX = OVL_PRESENCE_ADDRS_MAX - 1,
    OVL__PACE_PER_S = 16,     /* peer: buddy requests to its supernode, a
                                 second, and at once; below the default
                                 search and subscribe limits (20/s, 40)
                                 so a long buddy list is never refused */
    OVL__PACE_BURST = 32,
    OVL__BUSY_RETRY_MS = 2000, /* peer: after a "busy" refusal */
    OVL__DGRAM_MAX = 2048,    /* largest datagram or frame handled: every
                                 overlay message fits (INIT 1208, DATA
                                 1232); larger ones are dropped */
};

static inline uint64_t ovl__tmin(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ---- Rate limits: token buckets kept as one time each (GCRA) ------------------ */

/* A bucket's shape: one token every @interval ns, at most @burst saved. */
struct ovl_rate {
    uint64_t interval;  /* 0: unlimited */
    uint32_t burst;     /* >= 1 */
};

/*
 * Takes one token from the bucket whose state is *@tat: the "theoretical
 * arrival time" of the generic cell rate algorithm (ATM traffic policing,
 * ITU-T I.371). A full bucket is any tat <= now; a token moves it on by
 * @r->interval, and at most burst - 1 intervals may lie ahead of now. One
 * word of state instead of a count and a timestamp, and no division.
 * Returns false, leaving the state alone, when the bucket is empty.
 */
static inline bool ovl__rate_take(uint64_t *tat, const struct ovl_rate *r,
                                  uint64_t now)
{
    uint64_t t = *tat > now ? *tat : now;

    if (t - now > (uint64_t)(r->burst - 1) * r->interval)
        return false;
    *tat = t + r->interval;
    return true;
}

/* When the bucket at *@tat next has a token (now if it has one). */
static inline uint64_t ovl__rate_next(uint64_t tat, const struct ovl_rate *r,
                                      uint64_t now)
{
    uint64_t slack = (uint64_t)(r->burst - 1) * r->interval;

    return tat > now + slack ? tat - slack : now;
}

/* Supernode buckets, one set per link. */
enum ovl__rl {
    OVL__RL_SEARCH = 0,
    OVL__RL_STORE,
    OVL__RL_SUBSCRIBE,
    OVL__RL_RARE,
    OVL__RL_DHT,
    OVL__RL__COUNT,
    OVL__RL_NONE = OVL__RL__COUNT, /* not limited */
};

/* ---- Timers: an intrusive binary min-heap ------------------------------------ */

enum ovl__tkind {
    OVL__T_HOUSE = 1, /* struct ovl_node.house */
    OVL__T_LINK,      /* struct ovl_link.timer */
    OVL__T_RPC,       /* struct ovl_rpc.timer */
    OVL__T_OP,        /* struct ovl_op.timer */
    OVL__T_CONN,      /* struct ovl_conn.timer: accepted, not yet
                         authenticated */
};

struct ovl_timer {
    uint64_t due;     /* OVL_NEVER: not in the heap */
    uint32_t idx;     /* heap position, UINT32_MAX when absent */
    uint8_t kind;     /* enum ovl__tkind */
};

/* ---- Links ------------------------------------------------------------------------ */

struct ovl_link;

/* A secure session with a back-pointer to its link. */
struct ovl_sess {
    struct ovl_session s;
    struct ovl_link *link;
    uint64_t last_rx; /* now of the last message it carried to us */
};

struct ovl_pending {
    struct ovl_pending *next;
    uint16_t len;
    uint8_t msg[];
};

/* Link flags: why we keep it. */
enum {
    OVL__LF_SIGNAL = 0x01,   /* peer side: a login session to a supernode */
    OVL__LF_ATTACHED = 0x02, /* supernode side: a peer logged in over it */
    OVL__LF_DHT = 0x08,      /* remote is a DHT member */
};

struct ovl_conn;

struct ovl_link {
    struct ovl_timer timer;
    struct ovl_link *next, *prev;  /* all links of the node */
    struct ovl_link *hnext;        /* UDP hash chain (by node id) */
    uint32_t refs;                 /* RPCs, ops, attempts holding it */
    bool dead;                     /* closed; freed when refs drop to 0 */
    uint8_t flags;                 /* OVL__LF_* */
    uint8_t node_id[32];
    uint8_t identity[32];
    struct ovl_addr addr;          /* UDP: remote address; TCP: peer addr */
    struct ovl_conn *conn;         /* NULL: UDP */
    struct ovl_sess *out;          /* we initiated (crypto mode) */
    struct ovl_sess *in;           /* they initiated (crypto mode) */
    struct ovl_pending *pq, **pq_tail;
    uint8_t npending;
    uint64_t created, last_rx, last_tx;
    uint64_t init_at;              /* now when our last INIT left (0: never) */
    uint64_t init_not_before;      /* a deferred INIT may leave then */
    uint64_t last_app;             /* last overlay message either way: the
                                      idle rule ignores keepalives and
                                      rekeys, which never stop by
                                      themselves */
    /* signalling (either side) */
    uint64_t ping_due;             /* peer: next keepalive PING */
    uint8_t rpc_fails;             /* RPC timeouts since the last rx */
    uint16_t keepalive_s;          /* peer: as LOGIN_OK said */
    struct ovl_addr observed;      /* peer: our address as it sees it */
    /* supernode side of an attached peer */
    uint8_t *presence;             /* its latest presence naming us */
    uint16_t presence_len;
    bool logged_out;               /* it published its own LASTSEEN */
    uint64_t rl_tat[OVL__RL__COUNT]; /* supernode: its request buckets */
};

/* A TCP connection. Ids are odd for outgoing, even for accepted. */
struct ovl_conn {
    struct ovl_timer timer;        /* accepted: closes it unless a link is
                                      bound by then (accept_timeout) */
    struct ovl_conn *next;
    uint32_t id;
    bool outgoing, connected;
    bool unauth;                   /* accepted, no link bound yet: counted
                                      in ovl_node.nunauth */
    uint64_t accepted;             /* now when accepted */
    struct ovl_addr addr;
    struct ovl_link *link;
    struct ovl_stream st;
    uint8_t buf[OVL__STREAM_CAP];
};

/* ---- RPCs ------------------------------------------------------------------------------ */

/* Who waits for an answer. */
enum ovl__owner {
    OVL__OWN_NONE = 0,
    OVL__OWN_OP,       /* a DHT operation: id = op id */
    OVL__OWN_ATTEMPT,  /* a login attempt: id = attempt id */
    OVL__OWN_KEEPALIVE,/* signalling PING (peer) */
    OVL__OWN_RTPING,   /* routing-table liveness PING (supernode) */
    OVL__OWN_SEARCH,   /* peer: FIND_VALUE SEARCH; id = token */
    OVL__OWN_PUBLISH,  /* peer: STORE SEARCH; id = record type */
    OVL__OWN_HOSTCACHE,/* HOSTCACHE_GET */
    OVL__OWN_SUBSCRIBE,/* peer: SUBSCRIBE SEARCH; id = buddy index */
    OVL__OWN_REACH,    /* peer: REACH_PROBE to its supernode */
    OVL__OWN_RELAY,    /* supernode: relayed REACH_PROBE; id = op id */
    OVL__OWN_DIAL,     /* dialling supernode: probe PING; id = op id */
};

struct ovl_rpc {
    struct ovl_timer timer;
    struct ovl_rpc *hnext;         /* by rid */
    uint32_t rid;
    uint8_t type;                  /* request type */
    uint8_t owner;                 /* enum ovl__owner */
    uint32_t owner_id;
    struct ovl_link *link;         /* holds a reference */
    uint8_t peer_id[32];           /* who must answer */
    uint64_t sent;
};

/* ---- Supernode operations ------------------------------------------------------------ */

enum ovl__op_kind {
    OVL__OP_SEARCH = 1, /* value lookup for a peer, or a local lookup */
    OVL__OP_STORE,      /* node lookup, then STORE to the k closest */
    OVL__OP_SUBSCRIBE,  /* node lookup, then SUBSCRIBE to the closest */
    OVL__OP_JOIN,       /* node lookup for our own id, then refreshes */
    OVL__OP_REFRESH,    /* node lookup for a random id of a bucket */
    OVL__OP_REACH,      /* relay a reach probe, or dial one */
};

struct ovl_op {
    struct ovl_timer timer;
    struct ovl_op *next, *prev;
    uint32_t id;
    uint8_t kind;                  /* enum ovl__op_kind */
    struct ovl_lookup *lk;         /* node or value lookup */
    uint8_t phase;                 /* 0 lookup, 1 storing/subscribing ... */
    uint16_t pending;              /* STORE/SUBSCRIBE RPCs outstanding */
    uint16_t acks;                 /* replicas that took it */
    /* who gets the answer */
    struct ovl_link *req_link;     /* a peer's request (referenced), or */
    uint32_t req_rid;
    uint32_t token;                /* a local request (event token) */
    uint64_t started;
    /* STORE: the record; SEARCH: rtype of a local lookup */
    uint8_t *rec;
    uint16_t rec_len;
    uint8_t rtype;
    char name[OVL_NAME_MAX + 1];
    /* SEARCH: who answered with which version (read repair) */
    struct {
        struct ovl_contact c;
        uint64_t seq;
        uint8_t type;
    } holders[OVL_DHT_K];
    uint8_t nholders;
    uint16_t retried;              /* STORE: targets re-sent once (bits) */
    uint32_t qretried[OVL_DHT_K];  /* STORE: lookup queries re-sent once
                                      (first word of the node id) */
    uint8_t nqretried;
    /* REACH */
    struct ovl_contact target;
    uint8_t result;
    bool relay;                    /* we are the relaying supernode */
    struct ovl_link *dial_udp, *dial_tcp; /* our dials (referenced) */
};

/* Storage side of subscriptions: a supernode that wants NOTIFYs. */
struct ovl_sub {
    struct ovl_sub *next;
    uint8_t key[32];
    struct ovl_contact who;
    uint64_t expires;              /* now (ns) */
};

/* Watcher side: peers attached here that watch a key. */
struct ovl_watch {
    struct ovl_watch *next;
    uint8_t key[32];
    struct ovl_link *peer;         /* referenced */
    uint64_t expires;              /* now (ns) */
    uint64_t renew_at;             /* re-subscribe at the storage nodes */
    uint64_t seq;                  /* newest version forwarded */
};

/* ---- Peer side ------------------------------------------------------------------------- */

enum ovl__att_state {
    OVL__ATT_PROBE_UDP = 1,
    OVL__ATT_TCP_PORT,
    OVL__ATT_TCP_443,
    OVL__ATT_UDP_LOGIN,
    OVL__ATT_DONE,
    OVL__ATT_FAILED,
};

struct ovl_attempt {
    struct ovl_attempt *next;
    uint32_t id;
    uint8_t state;
    bool udp_ok, fallback;
    struct ovl_contact c;
    struct ovl_link *udp;          /* probe link (referenced) */
    struct ovl_link *tcp;          /* login link (referenced) */
    uint16_t err;                  /* LOGIN_ERR code */
};

struct ovl_buddy {
    char name[OVL_NAME_MAX + 1];
    uint8_t key[32];
    uint64_t seq;                  /* newest version reported */
    uint8_t state;                 /* enum ovl_presence_state reported */
    uint64_t renew_at;             /* re-subscribe (paced) */
    bool need_ask;                 /* a resolution is due (paced) */
};

/* A peer's lookup waiting for its supernode's answer. */
struct ovl_plookup {
    uint32_t token;
    uint8_t rtype;
    int16_t buddy;                 /* buddy index, or -1 */
    char name[OVL_NAME_MAX + 1];
    uint8_t key[32];
    uint64_t started;
};

struct ovl_room {
    char name[OVL_NAME_MAX + 1];
    struct ovl_addr addrs[OVL_PRESENCE_ADDRS_MAX];
    uint8_t naddr;
    uint16_t tcp_port;
    uint8_t cert[OVL_CERT_LEN];
    bool has_cert;
    uint64_t refresh_at;
    uint32_t pub_rid;              /* request id of its last STORE sent
                                      to the supernode (0: none) */
    bool withdrawn;                /* publish withdrawals, not the room */
    uint64_t gone_at;              /* withdrawn: forget it then (now, ns):
                                      no live version can exist anymore */
};

enum ovl__pstate {
    OVL__P_IDLE = 0,
    OVL__P_LOGGING_IN,    /* ladder rounds in progress */
    OVL__P_BACKOFF,       /* waiting between rounds */
    OVL__P_ATTACHED,      /* primary supernode chosen */
    OVL__P_LOGGING_OUT,
    OVL__P_OUT,
};

/* ---- The node --------------------------------------------------------------------------- */

struct ovl_outq {
    struct ovl_out *items;
    uint32_t n, cap, head;
    uint8_t *arena;
    size_t used, acap;
};

struct ovl_node {
    /* configuration */
    const struct ovl_identity *id;
    struct ovl_rng rng;
    enum ovl_role_mode mode;
    enum ovl_role role;
    char handle[OVL_NAME_MAX + 1];
    uint8_t handle_len;
    uint8_t cert[OVL_CERT_LEN];
    bool has_cert;
    uint8_t authority[32];
    bool has_authority;
    struct ovl_addr local;
    uint16_t tcp_port;
    bool tcp443;
    uint64_t wall_offset;
    uint32_t max_peers;
    struct ovl_rate rl[OVL__RL__COUNT]; /* supernode: per-link limits */
    uint32_t max_unauth;           /* accepted connections not yet bound */
    uint8_t fallbacks, parallel;
    bool plain;
    struct ovl_node_timing t;
    uint64_t started_at;

    /* transport */
    struct ovl_endpoint *ep;       /* crypto mode */
    struct ovl_hs hs;              /* pending responder handshake */
    struct ovl_link links;         /* list head (sentinel) */
    struct ovl_link **udp_tab;     /* hash of UDP links by node id */
    uint32_t udp_mask, nlinks;
    struct ovl_conn *conns;
    uint32_t next_conn;
    uint32_t nunauth;              /* accepted connections not yet bound */
    struct ovl_rpc **rpc_tab;
    uint32_t rpc_mask, nrpc;
    uint8_t rxbuf[OVL__DGRAM_MAX];
    uint8_t txbuf[OVL_STREAM_PREFIX + OVL__DGRAM_MAX];

    /* timers */
    struct ovl_timer **heap;
    uint32_t nheap, heapcap;
    struct ovl_timer house;

    /* outputs */
    struct ovl_outq out;
    struct ovl_event *ev;
    uint32_t nev, evcap, evhead;

    /* peer side */
    uint8_t pstate;                /* enum ovl__pstate */
    struct ovl_hostcache hc;
    struct ovl_attempt *attempts;
    uint32_t next_attempt_id;
    uint8_t round_tried;
    uint8_t rung_ok;               /* rungs that ever logged us in:
                                      1 << OVL__ATT_* */
    uint64_t backoff, retry_at;
    bool refill_fallbacks;
    struct ovl_link *primary;      /* referenced */
    uint64_t presence_seq, last_seq;
    uint64_t presence_refresh_at;
    uint64_t hostcache_at;
    uint64_t promote_at;
    bool reach_asked;
    struct ovl_addr udp_observed;  /* peer: our UDP socket as a supernode
                                      saw it (the login probe's PONG) */
    struct ovl_addr pub[OVL__PUBADDR_MAX];
    uint8_t npub;
    struct ovl_buddy *buddies;
    uint16_t nbuddies;
    struct ovl_plookup *plk;
    uint32_t nplk, plkcap;
    struct ovl_room *rooms;        /* grown on demand: most nodes have none */
    uint32_t nrooms, rooms_cap;
    uint32_t next_token;
    uint64_t logout_deadline;
    uint64_t pace_tat;             /* peer: bucket pacing buddy requests to
                                      the primary (below its limits) */
    uint64_t pace_hold;            /* ... none before this (it said busy) */

    /* supernode side */
    struct ovl_rt rt;
    struct ovl_store store;
    struct ovl_cache cache;
    struct ovl_op ops;             /* list head (sentinel) */
    uint32_t next_op;
    uint32_t attached;
    struct ovl_sub *subs;
    struct ovl_watch *watches;
    uint64_t republish_at, refresh_at, expire_at;
    bool joined;

    struct ovl_node_stats stats;
};

/* ---- ovl_node.c ------------------------------------------------------------------------ */

uint64_t ovl__wall_s(const struct ovl_node *n, uint64_t now);
void ovl__timer_set(struct ovl_node *n, struct ovl_timer *t, uint64_t due);
void ovl__timer_init(struct ovl_timer *t, uint8_t kind);
void ovl__house_schedule(struct ovl_node *n, uint64_t due);
void ovl__out_udp(struct ovl_node *n, const struct ovl_addr *to,
                  const uint8_t *data, size_t len);
void ovl__out_tcp(struct ovl_node *n, enum ovl_out_kind kind, uint32_t conn,
                  const struct ovl_addr *to, const uint8_t *data, size_t len);
struct ovl_event *ovl__event(struct ovl_node *n, enum ovl_event_kind kind);
uint32_t ovl__random32(struct ovl_node *n);
void ovl__self_contact(const struct ovl_node *n, struct ovl_contact *c);
/* Handles one decoded message that arrived on @l. */
void ovl__dispatch(struct ovl_node *n, struct ovl_link *l, const uint8_t *buf,
                   size_t len, uint64_t now);
/* Fills the record-derived fields of an event from a verified record. */
void ovl__event_from_record(struct ovl_event *ev, const struct ovl_record *r);
/* A ROOM record that says the room is gone (its first address is an
 * unspecified one: docs/protocol.md 4.3). */
bool ovl__room_withdrawn(const struct ovl_record *r);
/* True for 0.0.0.0 and :: (any port), which no live room may give. */
bool ovl__addr_unspecified(const struct ovl_addr *a);

/* ---- ovl_link.c ------------------------------------------------------------------------- */

struct ovl_link *ovl__link_udp(struct ovl_node *n, const struct ovl_contact *c,
                               uint64_t now);
struct ovl_link *ovl__link_find_udp(struct ovl_node *n, const uint8_t id[32]);
struct ovl_link *ovl__link_tcp(struct ovl_node *n,
                               const struct ovl_contact *c, uint16_t port,
                               uint64_t now);
void ovl__link_ref(struct ovl_link *l);
void ovl__link_unref(struct ovl_node *n, struct ovl_link *l);
/* Closes @l: sessions, connection (an output), pending; fails its RPCs;
 * tells the peer and supernode sides. */
void ovl__link_close(struct ovl_node *n, struct ovl_link *l, uint64_t now);
void ovl__link_schedule(struct ovl_node *n, struct ovl_link *l);
void ovl__link_timer(struct ovl_node *n, struct ovl_link *l, uint64_t now);
/* Sends an encoded message (queues it until a session can carry it). */
int ovl__link_send(struct ovl_node *n, struct ovl_link *l,
                   const uint8_t *msg, size_t len, uint64_t now);
/* Encodes @m (with a fresh rid if it is a request, recorded as an RPC of
 * @owner/@owner_id timing out after @timeout) and sends it. Returns 0 or
 * a negative errno; the RPC's rid in *rid (may be NULL). */
int ovl__send_msg(struct ovl_node *n, struct ovl_link *l, struct ovl_msg *m,
                  uint8_t owner, uint32_t owner_id, uint64_t timeout,
                  uint64_t now);
void ovl__udp_input(struct ovl_node *n, const struct ovl_addr *from,
                    const uint8_t *buf, size_t len, uint64_t now);
void ovl__tcp_input(struct ovl_node *n, struct ovl_conn *c,
                    const uint8_t *buf, size_t len, uint64_t now);
struct ovl_conn *ovl__conn_find(struct ovl_node *n, uint32_t id);
void ovl__conn_connected(struct ovl_node *n, struct ovl_conn *c,
                         uint64_t now);
void ovl__conn_closed(struct ovl_node *n, struct ovl_conn *c, uint64_t now);
/* Accepts a connection from @from (ovl_node_tcp_accepted). */
uint32_t ovl__conn_accept(struct ovl_node *n, const struct ovl_addr *from,
                          uint64_t now);
/* The accept timeout of an unauthenticated connection fired. */
void ovl__conn_timer(struct ovl_node *n, struct ovl_conn *c, uint64_t now);
struct ovl_rpc *ovl__rpc_take(struct ovl_node *n, uint32_t rid,
                              const uint8_t from[32]);
void ovl__rpc_free(struct ovl_node *n, struct ovl_rpc *r);
void ovl__rpc_timeout(struct ovl_node *n, struct ovl_rpc *r, uint64_t now);
/* Fails (as timeouts) every RPC whose owner is @owner/@owner_id. */
void ovl__rpc_cancel_owner(struct ovl_node *n, uint8_t owner,
                           uint32_t owner_id);
int ovl__transport_init(struct ovl_node *n, uint32_t max_sessions,
                        const struct ovl_limits *lim);
void ovl__transport_close(struct ovl_node *n);

/* ---- ovl_peer.c -------------------------------------------------------------------------- */

void ovl__peer_start(struct ovl_node *n, uint64_t now);
void ovl__peer_house(struct ovl_node *n, uint64_t now);
void ovl__peer_link_closed(struct ovl_node *n, struct ovl_link *l,
                           uint64_t now);
/* An RPC answer (@m, NULL on timeout) for a peer-side owner. */
void ovl__peer_rpc_done(struct ovl_node *n, struct ovl_rpc *r,
                        const struct ovl_msg *m, uint64_t now);
void ovl__peer_notify(struct ovl_node *n, struct ovl_link *l,
                      const struct ovl_msg *m, uint64_t now);
void ovl__peer_free(struct ovl_node *n);
void ovl__publish_presence(struct ovl_node *n, uint64_t now);
uint64_t ovl__next_seq(struct ovl_node *n, uint64_t now);
int ovl__peer_lookup(struct ovl_node *n, uint8_t rtype, const char *name,
                     uint64_t now, uint32_t token);
void ovl__promote(struct ovl_node *n, uint64_t now);

/* ---- ovl_super.c ------------------------------------------------------------------------- */

int ovl__super_init(struct ovl_node *n);
void ovl__super_close(struct ovl_node *n);
void ovl__super_start(struct ovl_node *n, uint64_t now);
void ovl__super_house(struct ovl_node *n, uint64_t now);
/* A request addressed to the supernode side. */
void ovl__super_request(struct ovl_node *n, struct ovl_link *l,
                        const struct ovl_msg *m, uint64_t now);
void ovl__super_rpc_done(struct ovl_node *n, struct ovl_rpc *r,
                         const struct ovl_msg *m, uint64_t now);
void ovl__super_notify(struct ovl_node *n, struct ovl_link *l,
                       const struct ovl_msg *m, uint64_t now);
void ovl__super_link_closed(struct ovl_node *n, struct ovl_link *l,
                            uint64_t now);
void ovl__op_timer(struct ovl_node *n, struct ovl_op *op, uint64_t now);
/* A DHT member spoke to us (request with OVL_MF_DHT_MEMBER, or answer). */
void ovl__dht_seen(struct ovl_node *n, struct ovl_link *l, uint64_t now);
/* Local operations (this node is a supernode). */
int ovl__super_search(struct ovl_node *n, uint8_t rtype, const char *name,
                      uint64_t now, uint32_t token);
int ovl__super_store(struct ovl_node *n, const uint8_t *rec, size_t len,
                     uint64_t now);
/* Verifies a record under the node's policy, counting refusals. */
int ovl__verify(struct ovl_node *n, struct ovl_record *r, const uint8_t *buf,
                size_t len, uint64_t now);
size_t ovl__op_memory(const struct ovl_node *n);

#endif /* OVL_NODE_INTERNAL_H */
