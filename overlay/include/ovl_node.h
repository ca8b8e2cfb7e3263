/*
 * ovl_node.h: one overlay node (ordinary peer or supernode), sans-I/O.
 *
 * What it ties together
 * ---------------------
 * The secure sessions (ovl_secure.h) carry overlay messages (ovl_msg.h)
 * between nodes; supernodes keep the directory (ovl_dht.h) of signed
 * records (ovl_record.h); peers log in to a supernode through the login
 * ladder, keep a signalling session with it and a few fallbacks, and ask
 * it to publish and to search for them. docs/protocol.md part 2 has the
 * state machines in prose.
 *
 * Driving it (the same for a libuv driver and the simulator)
 * ------------------------------------------------------------
 * Inputs, each with the current monotonic time `now` (ns, never going
 * back):
 *   ovl_node_udp_recv      a datagram arrived on the node's UDP socket;
 *   ovl_node_tcp_accepted  a TCP connection was accepted (the node names
 *                          it: returns its connection id, 0 when out of
 *                          memory); one that authenticates nobody within
 *                          timing.accept_timeout is closed (an
 *                          OVL_OUT_TCP_CLOSE), as is the oldest such one
 *                          when max_unauth_conns are waiting;
 *   ovl_node_tcp_connected an outgoing connection (OVL_OUT_TCP_CONNECT)
 *                          completed;
 *   ovl_node_tcp_recv      bytes arrived on a connection (any split);
 *   ovl_node_tcp_closed    a connection closed, was reset, or could not be
 *                          established;
 *   ovl_node_timers        ovl_node_next_timer() has come.
 * After any input (and after ovl_node_new, _start, and the application
 * calls below) the caller drains
 *   ovl_node_out_next      what to send: UDP datagrams, TCP connects,
 *                          writes and closes, in order;
 *   ovl_node_event_next    what happened (logged in, lookup results ...);
 * and re-reads ovl_node_next_timer(). The data an output points to stays
 * valid until the next call into the node other than these two.
 *
 * Nothing here reads a clock, touches a socket, sleeps, starts a thread
 * or logs; randomness comes from the configured hook (ovl_rng.h), so a
 * simulation is reproducible from one seed.
 *
 * Roles
 * -----
 * OVL_ROLE_MODE_PEER never serves; OVL_ROLE_MODE_SUPERNODE always does
 * (it must be reachable on UDP and TCP: the operator says so);
 * OVL_ROLE_MODE_AUTO starts as a peer and becomes a supernode only after
 * it has been up for timing.promote_uptime and another supernode has
 * dialled it from outside over UDP and TCP (REACH_PROBE/REACH_OK).
 *
 * Errors: functions return 0 or a negative errno. Nothing a remote node
 * sends is ever asserted on: bad input is counted (ovl_node_stats) and
 * dropped.
 *
 * Thread: loop. A node is driven by one thread; nothing here locks.
 */
#ifndef OVL_NODE_H
#define OVL_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_dht.h"
#include "ovl_identity.h"
#include "ovl_msg.h"
#include "ovl_record.h"
#include "ovl_rng.h"
#include "ovl_secure.h"

/* ------------------------------------------------------------------------
 * Host cache: up to 200 supernode contacts, persisted by the driver
 * ------------------------------------------------------------------------ */

enum { OVL_HOSTCACHE_MAX = 200 };

struct ovl_hc_entry {
    struct ovl_contact c;
    uint64_t last_seen; /* Unix seconds of the last success (or the time it
                           was learnt) */
    uint8_t fails;      /* consecutive failed login attempts */
};

struct ovl_hostcache {
    uint16_t n;
    struct ovl_hc_entry e[OVL_HOSTCACHE_MAX];
};

void ovl_hc_init(struct ovl_hostcache *hc);

/* Adds or refreshes a contact (matched by node id; the newer address
 * wins). When full, the entry with the most failures, then the oldest,
 * makes room if the new one is fresher. */
void ovl_hc_add(struct ovl_hostcache *hc, const struct ovl_contact *c,
                uint64_t last_seen);
void ovl_hc_ok(struct ovl_hostcache *hc, const uint8_t id[32],
               uint64_t now_s);
void ovl_hc_failed(struct ovl_hostcache *hc, const uint8_t id[32]);
void ovl_hc_remove(struct ovl_hostcache *hc, const uint8_t id[32]);
const struct ovl_hc_entry *ovl_hc_find(const struct ovl_hostcache *hc,
                                       const uint8_t id[32]);

/* Serialised form (struct ovl_hcw_head + entries, ovl_msg.h). Save
 * returns the length, or -ENOBUFS; load returns 0 or -EBADMSG (and then
 * leaves @hc unchanged). */
int ovl_hc_save(const struct ovl_hostcache *hc, uint8_t *out, size_t cap);
int ovl_hc_load(struct ovl_hostcache *hc, const uint8_t *buf, size_t len);
size_t ovl_hc_save_size(const struct ovl_hostcache *hc);

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

enum ovl_role_mode {
    OVL_ROLE_MODE_AUTO = 0,
    OVL_ROLE_MODE_SUPERNODE,
    OVL_ROLE_MODE_PEER,
};

/* Timing (ns). Zero fields take the defaults in parentheses; tests and
 * simulations shrink them. */
struct ovl_node_timing {
    uint64_t rpc_timeout;        /* DHT and other requests (1 s) */
    uint64_t probe_timeout;      /* ladder: UDP probe (1.5 s) */
    uint64_t tcp_timeout;        /* ladder: TCP connect + LOGIN (4 s) */
    uint64_t search_timeout;     /* peer waiting for its supernode (12 s) */
    uint64_t backoff_min;        /* between failed login rounds (1 s) */
    uint64_t backoff_max;        /* (60 s) */
    uint64_t keepalive;          /* PING on signalling sessions (30 s) */
    uint64_t dead_after;         /* silence that loses a supernode (75 s,
                                    or 2.5 keep-alives if longer) */
    uint64_t peer_timeout;       /* supernode: silent attached peer (100 s,
                                    or 3 keep-alives if longer) */
    uint64_t presence_refresh;   /* re-sign own presence (20 min) */
    uint64_t room_refresh;       /* re-sign own room records (2 h) */
    uint64_t republish;          /* supernode: republish stored (30 min) */
    uint64_t bucket_refresh;     /* supernode: refresh idle buckets (60 min) */
    uint64_t hostcache_refresh;  /* peer: HOSTCACHE_GET (10 min) */
    uint64_t promote_uptime;     /* auto: uptime before a reach probe (1 h) */
    uint64_t link_idle;          /* close links idle this long (120 s) */
    uint64_t cache_ttl;          /* supernode: cached lookup result (20 s);
                                    a cached answer can be this stale */
    uint64_t neg_cache_ttl;      /* ... cached "unknown" (10 s) */
    uint64_t lookup_grace;       /* wait for slower holders (400 ms) */
    uint64_t subscribe_ttl;      /* subscriptions (600 s) */
    uint64_t accept_timeout;     /* an accepted TCP connection that has not
                                    authenticated a sender by then is
                                    closed (10 s): silent and slow-loris
                                    connections */
};

/*
 * Supernode: how often one remote node may ask for work done on its
 * behalf, per link (one attachment, or one remote node over UDP or one
 * TCP connection). A token bucket: @burst requests at once, refilled at
 * @per_s a second. Zero fields take the defaults given in struct
 * ovl_node_rate_limits; a per_s of UINT32_MAX (anything over 10^9)
 * removes the limit. A request over its limit is answered with ERROR
 * "busy" (OVL_MERR_BUSY) and counted in ovl_node_stats.rate_limited.
 */
struct ovl_node_rate {
    uint32_t per_s;
    uint32_t burst;
};

struct ovl_node_rate_limits {
    struct ovl_node_rate search;    /* FIND_VALUE with SEARCH: a DHT lookup
                                       for a peer (20/s, burst 40) */
    struct ovl_node_rate store;     /* STORE with SEARCH: a lookup and 8
                                       STOREs for a peer (5/s, burst 20) */
    struct ovl_node_rate subscribe; /* SUBSCRIBE with SEARCH (20/s, 40) */
    struct ovl_node_rate rare;      /* LOGIN, HOSTCACHE_GET, REACH_PROBE
                                       (1/s, burst 5) */
    struct ovl_node_rate dht;       /* FIND_NODE, FIND_VALUE, STORE and
                                       SUBSCRIBE without SEARCH from a node
                                       that does not claim DHT membership
                                       (20/s, burst 40); members are not
                                       limited (a lookup fans out to 64) */
};

struct ovl_node_config {
    const struct ovl_identity *identity; /* must outlive the node */
    struct ovl_rng rng;          /* {NULL, NULL}: libsodium */
    enum ovl_role_mode role_mode;
    const char *handle;          /* NULL: anonymous (no presence record) */
    const uint8_t *cert;         /* OVL_CERT_LEN bytes for the handle, or
                                    NULL (copied) */
    const uint8_t *authority;    /* login authority's key, or NULL (copied):
                                    supernodes then require certificates */
    struct ovl_addr local;       /* our UDP address as we know it (may be
                                    private); its port is the UDP port */
    uint16_t tcp_port;           /* TCP listening port (0: none; a
                                    supernode's must equal the UDP port) */
    bool tcp443;                 /* also listening on TCP 443 */
    uint64_t wall_offset;        /* Unix time in ns = now + wall_offset
                                    (mod 2^64) */
    const struct ovl_contact *bootstrap; /* seeds the host cache (copied) */
    size_t nbootstrap;
    uint32_t max_peers;          /* supernode: attached peers (1000) */
    uint8_t fallbacks;           /* peer: standby supernodes (2) */
    uint8_t login_parallel;      /* peer: candidates per round (3) */
    uint32_t max_records;        /* supernode: stored records (65536) */
    uint32_t max_sessions;       /* secure sessions (peer 16,
                                    supernode 1024) */
    struct ovl_node_timing timing;
    struct ovl_limits session_limits; /* zero: defaults */
    /*
     * SIMULATION ONLY. Replaces secure sessions by unauthenticated
     * plaintext frames (OVL_PLAIN_TYPE, ovl_msg.h) so that a benchmark of
     * tens of thousands of nodes in one process is not dominated by
     * Noise handshakes. Records stay signed and verified. Both ends must
     * agree; production code never sets it.
     */
    bool insecure_plaintext;
    struct ovl_node_rate_limits rate_limits; /* supernode; zero: defaults */
    uint32_t max_unauth_conns;   /* supernode: accepted TCP connections not
                                    yet authenticated (1024, about 1.6 MB;
                                    a login storm after a restart must
                                    fit); a new one beyond it closes the
                                    oldest */
};

/* ------------------------------------------------------------------------
 * Outputs and events
 * ------------------------------------------------------------------------ */

enum ovl_out_kind {
    OVL_OUT_UDP_SEND = 1, /* send data to addr from the node's UDP socket */
    OVL_OUT_TCP_CONNECT,  /* open conn to addr; answer with _tcp_connected
                             or _tcp_closed */
    OVL_OUT_TCP_SEND,     /* write data on conn */
    OVL_OUT_TCP_CLOSE,    /* close conn; no _tcp_closed follows */
};

struct ovl_out {
    enum ovl_out_kind kind;
    uint32_t conn;        /* TCP kinds */
    struct ovl_addr addr; /* UDP_SEND, TCP_CONNECT */
    const uint8_t *data;  /* UDP_SEND, TCP_SEND */
    size_t len;
};

enum ovl_event_kind {
    OVL_NEV_LOGGED_IN = 1,  /* attached to ev.supernode (peer), or joined
                               the DHT (supernode: ev.supernode is self);
                               again after every re-attach */
    OVL_NEV_LOGIN_FAILED,   /* a whole ladder round failed; ev.reason says
                               what was tried; the node keeps trying */
    OVL_NEV_SUPERNODE_LOST, /* ev.supernode went away; re-attaching */
    OVL_NEV_ROLE_CHANGED,   /* ev.role is the new role */
    OVL_NEV_LOOKUP,         /* answer to ovl_node_lookup (ev.token) */
    OVL_NEV_PUBLISHED,      /* own record stored (ev.rtype, ev.replicas,
                               ev.status 0 or negative errno) */
    OVL_NEV_BUDDY,          /* a buddy's state (first resolution, then
                               every change) */
    OVL_NEV_LOGGED_OUT,     /* ovl_node_logout finished */
};

enum ovl_presence_state {
    OVL_PS_UNKNOWN = 0,     /* no record: never seen, or gone for 72 h;
                               or a withdrawn room (then ev.owner and
                               ev.seq are the withdrawal's) */
    OVL_PS_ONLINE,          /* presence record: contact data in ev */
    OVL_PS_OFFLINE,         /* last-seen record: ev.last_seen */
    OVL_PS_FAILED,          /* could not ask (no supernode, timeout:
                               status -ETIMEDOUT; the supernode refused
                               it as busy, over the peer's request
                               limit: status -EAGAIN, ask later) */
};

struct ovl_event {
    enum ovl_event_kind kind;
    uint32_t token;             /* LOOKUP: the token of the request */
    int status;                 /* 0 or negative errno */
    struct ovl_contact supernode;
    enum ovl_role role;
    char reason[128];           /* LOGIN_FAILED: human-readable */
    /* LOOKUP, BUDDY */
    uint8_t rtype;              /* OVL_R_PRESENCE (handles) or OVL_R_ROOM */
    char name[OVL_NAME_MAX + 1];
    enum ovl_presence_state state;
    uint8_t owner[OVL_ED_PK_LEN]; /* the record's owner (node or bridge) */
    uint8_t naddr;
    struct ovl_addr addrs[OVL_PRESENCE_ADDRS_MAX];
    uint16_t tcp_port;          /* ROOM */
    struct ovl_contact owner_supernode; /* ONLINE: where it is attached */
    uint64_t last_seen;         /* OFFLINE: Unix seconds */
    uint64_t seq;
    uint8_t rounds;             /* rounds the supernode's search took (0:
                                   answered from its store or cache) */
    uint16_t messages;          /* queries it sent */
    uint64_t started;           /* now when the lookup was asked */
    uint16_t replicas;          /* PUBLISHED */
};

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

struct ovl_node_stats {
    uint64_t rx_msgs, tx_msgs;          /* overlay messages */
    uint64_t rx_bytes, tx_bytes;        /* datagrams and stream bytes */
    uint64_t msg_drops[OVL_MD__COUNT];  /* decoder refusals */
    uint64_t rec_drops[OVL_RERR__COUNT]; /* records refused */
    uint64_t dropped;                   /* other drops: unexpected, from
                                           unknown, wrong state */
    uint64_t rpc_sent, rpc_timeouts;
    uint64_t handshakes;                /* secure sessions started */
    uint64_t logins_ok, logins_refused; /* supernode side */
    uint64_t stores_ok, stores_refused; /* supernode side, direct STOREs */
    uint64_t searches;                  /* supernode: searches run */
    uint64_t attests;                   /* supernode: last-seen attested */
    uint64_t notifies;                  /* sent */
    uint64_t rate_limited;              /* supernode: requests refused
                                           over a rate limit */
    uint64_t conns_unauth_closed;       /* supernode: accepted connections
                                           closed before authenticating
                                           (timeout or over the cap) */
};

/* ------------------------------------------------------------------------
 * Functions
 * ------------------------------------------------------------------------ */

struct ovl_node;

/* Creates a node. Returns 0, -EINVAL (bad configuration: no identity, a
 * handle that is not a name, a certificate that does not parse) or
 * -ENOMEM. Nothing happens on the network until ovl_node_start. */
int ovl_node_new(struct ovl_node **out, const struct ovl_node_config *cfg,
                 uint64_t now);

/* Frees everything; queued outputs and events are lost. */
void ovl_node_free(struct ovl_node *n);

/* Starts logging in (peer, auto) or joining the DHT (supernode). */
int ovl_node_start(struct ovl_node *n, uint64_t now);

/* Graceful logout: publishes an "offline, last seen now" record, then
 * closes every session (OVL_NEV_LOGGED_OUT when done). */
int ovl_node_logout(struct ovl_node *n, uint64_t now);

/* ---- inputs ---- */
void ovl_node_udp_recv(struct ovl_node *n, const struct ovl_addr *from,
                       const uint8_t *buf, size_t len, uint64_t now);
uint32_t ovl_node_tcp_accepted(struct ovl_node *n,
                               const struct ovl_addr *from, uint64_t now);
void ovl_node_tcp_connected(struct ovl_node *n, uint32_t conn, uint64_t now);
void ovl_node_tcp_recv(struct ovl_node *n, uint32_t conn, const uint8_t *buf,
                       size_t len, uint64_t now);
void ovl_node_tcp_closed(struct ovl_node *n, uint32_t conn, uint64_t now);
void ovl_node_timers(struct ovl_node *n, uint64_t now);
uint64_t ovl_node_next_timer(const struct ovl_node *n);

/* ---- outputs ---- */
bool ovl_node_out_next(struct ovl_node *n, struct ovl_out *out);
bool ovl_node_event_next(struct ovl_node *n, struct ovl_event *ev);

/* ---- application ---- */

/*
 * Looks up a handle (@rtype OVL_R_PRESENCE) or a room (OVL_R_ROOM): a peer
 * asks its supernode, a supernode searches itself. The answer comes as an
 * OVL_NEV_LOOKUP event carrying *token. Returns 0, -EINVAL (bad name),
 * -ENOTCONN (not logged in) or -ENOMEM.
 */
int ovl_node_lookup(struct ovl_node *n, uint8_t rtype, const char *name,
                    uint64_t now, uint32_t *token);

/* Publishes (and keeps refreshing) a room record owned by this node:
 * room @name is served at @addrs (1..4; an unspecified address, 0.0.0.0
 * or ::, is refused: it marks a withdrawal), TCP media port @tcp_port.
 * @cert (OVL_CERT_LEN, kind room) is needed under a login authority.
 * A node keeps up to 4096 rooms, withdrawn ones included until they are
 * forgotten (-ENOSPC beyond). */
int ovl_node_publish_room(struct ovl_node *n, const char *name,
                          const struct ovl_addr *addrs, size_t naddr,
                          uint16_t tcp_port, const uint8_t *cert,
                          uint64_t now);

/*
 * Withdraws room @name published by ovl_node_publish_room: stops
 * refreshing it and publishes a newer record saying the room is gone
 * (docs/protocol.md 4.3, "Withdrawal"), which replaces the live one
 * wherever it is stored or cached; lookups then answer OVL_PS_UNKNOWN
 * (after at most timing.cache_ttl where a result was cached). The
 * withdrawal is kept and re-published as long as an older live record
 * may exist (OVL_ROOM_TTL). Publishing the room again undoes it. Returns
 * 0 (also when already withdrawn), -EINVAL (bad name) or -ENOENT (this
 * node does not publish that room).
 */
int ovl_node_withdraw_room(struct ovl_node *n, const char *name,
                           uint64_t now);

/* Adds a buddy: resolved and subscribed to at every login
 * (OVL_NEV_BUDDY events). Returns 0, -EINVAL, -EEXIST or -ENOSPC. */
int ovl_node_buddy_add(struct ovl_node *n, const char *handle, uint64_t now);

/*
 * NAT discovery hook (STUN is another module): the addresses at which
 * others can reach this node (reflexive, relayed ...), put in its
 * presence record before the addresses the node knows itself; a change
 * re-publishes. At most OVL_PRESENCE_ADDRS_MAX - 1.
 */
int ovl_node_set_public_addrs(struct ovl_node *n, const struct ovl_addr *a,
                              size_t count, uint64_t now);

/* ---- inspection ---- */
enum ovl_role ovl_node_role(const struct ovl_node *n);
bool ovl_node_logged_in(const struct ovl_node *n);
const struct ovl_identity *ovl_node_identity(const struct ovl_node *n);
/* The contact others use for this node (supernodes). */
void ovl_node_contact(const struct ovl_node *n, struct ovl_contact *c);
/* The primary supernode (false when not attached). */
bool ovl_node_supernode(const struct ovl_node *n, struct ovl_contact *c);
const struct ovl_node_stats *ovl_node_stats(const struct ovl_node *n);
struct ovl_hostcache *ovl_node_hostcache(struct ovl_node *n);
const struct ovl_rt *ovl_node_routing_table(const struct ovl_node *n);
const struct ovl_store *ovl_node_store(const struct ovl_node *n);
/* Heap bytes held by the node (approximate: structures it allocated). */
size_t ovl_node_memory(const struct ovl_node *n);
/* Rooms this node publishes now (withdrawn ones not counted). */
uint32_t ovl_node_rooms_published(const struct ovl_node *n);
/* Attached peers (supernode). */
uint32_t ovl_node_attached(const struct ovl_node *n);

#endif /* OVL_NODE_H */
