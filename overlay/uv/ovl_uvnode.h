/*
 * ovl_uvnode.h: runs one sans-I/O overlay node (ovl_node.h) on a libuv
 * loop. This is the thin driver the bridge and chorus-client share; the
 * simulator (overlay/sim) is the other driver of the same core.
 *
 * What the driver owns
 * --------------------
 *  - one UDP socket and, when it serves, a TCP listener on the same port
 *    number (and optionally TCP 443): supernodes are dialled there;
 *  - the TCP connections the node opens or accepts, keyed by the node's
 *    connection ids;
 *  - the node's timer (uv_hrtime() is the node's clock);
 *  - STUN: Binding requests arriving on the UDP port are answered (RFC
 *    8489, ovl_stun.h) while the node is a supernode, so any STUN client
 *    can learn its reflexive address from it;
 *  - NAT discovery: once logged in, a second UDP socket used for nothing
 *    else runs the classifier (ovl_nat.h) against the supernode's STUN
 *    service and a second supernode, and reruns it periodically;
 *  - the host cache file in the state directory (loaded before the node
 *    starts, written every minute when it changed and at close);
 *  - hygiene below the core: accepted connections are capped in total
 *    and per source (an IPv4 address or an IPv6 /64), and a connection
 *    whose unsent output grows past a bound is closed (the core itself
 *    closes accepted connections that do not authenticate in time,
 *    timing.accept_timeout).
 *
 * After calling into ovl_uvnode_node() (a lookup, a room publication ...)
 * call ovl_uvnode_flush() so that what the node produced is sent and its
 * timer re-armed. Events reach the on_event callback, which may call into
 * the node (and flush) and may call ovl_uvnode_close().
 *
 * Thread: the loop's. Nothing here locks.
 */
#ifndef OVL_UVNODE_H
#define OVL_UVNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ovl_nat.h"
#include "ovl_node.h"

struct ovl_uvnode;

typedef void (*ovl_uvnode_event_cb)(struct ovl_uvnode *u,
                                    const struct ovl_event *ev, void *data);
typedef void (*ovl_uvnode_nat_cb)(struct ovl_uvnode *u,
                                  const struct ovl_nat_result *r, void *data);
typedef void (*ovl_uvnode_closed_cb)(void *data);

struct ovl_uvnode_config {
    /*
     * The node's configuration. The driver fills in .local (from the
     * bound socket and advertise_ip), .tcp_port (the listener's port, or
     * 0) and .wall_offset; everything else is the caller's, and what it
     * points to (identity, bootstrap ...) must outlive ovl_uvnode_new.
     */
    struct ovl_node_config node;
    const char *bind_ip;        /* NULL: "0.0.0.0" */
    const char *advertise_ip;   /* the IP others reach us at when bind_ip
                                   is a wildcard; NULL: the first
                                   non-loopback IPv4 of this host, else
                                   127.0.0.1 */
    uint16_t port;              /* UDP and TCP port; 0: an ephemeral one
                                   (the same number for both) */
    bool listen_tcp;            /* accept TCP (supernode-capable nodes) */
    bool listen_443;            /* also accept on TCP 443 (needs root) */
    const char *hostcache_path; /* NULL: the host cache is not kept */
    bool nat_discovery;         /* classify the NAT once logged in */
    uint32_t nat_rto_ms;        /* 0: RFC 8489's 500 ms */
    uint32_t nat_rc;            /* 0: 7 requests */
    uint64_t nat_refresh_ms;    /* 0: 10 minutes */
    uint32_t max_conns;         /* accepted + dialled; 0: 4096 */
    uint32_t max_conns_per_ip;  /* accepted from one IPv4 address or IPv6
                                   /64; 0: 16 */
    const char *software;       /* STUN SOFTWARE attribute, or NULL */
    ovl_uvnode_event_cb on_event;
    ovl_uvnode_nat_cb on_nat;   /* a NAT run ended with a new result */
    void *data;
};

/* Counters the driver keeps (the node's own are in ovl_node_stats). */
struct ovl_uvnode_counters {
    uint64_t stun_answered, stun_dropped;
    uint64_t tcp_accepted, tcp_refused_cap;
    uint64_t tcp_write_dropped;      /* connection closed: send queue full */
    uint64_t udp_send_errors;
};

struct ovl_uvnode_status {
    enum ovl_role role;
    bool logged_in;
    bool has_supernode;
    struct ovl_contact supernode;    /* the primary (peer) */
    struct ovl_contact self;         /* our contact as a supernode */
    uint16_t udp_port, tcp_port;
    uint32_t hostcache;              /* entries */
    uint32_t attached;               /* supernode: attached peers */
    uint32_t rt_contacts;            /* supernode: routing-table entries */
    uint32_t records;                /* supernode: stored records */
    uint32_t conns;                  /* open TCP connections */
    size_t memory;                   /* the node's heap bytes */
    struct ovl_nat_result nat;       /* type UNKNOWN, runs 0: not yet */
    bool nat_running;
    const struct ovl_node_stats *stats;
    struct ovl_uvnode_counters counters;
};

/*
 * Binds the sockets, loads the host cache, creates and starts the node.
 * Returns 0 or a negative errno, with a one-line reason in @err.
 */
int ovl_uvnode_new(struct ovl_uvnode **out, uv_loop_t *loop,
                   const struct ovl_uvnode_config *cfg, char *err,
                   size_t errlen);

/*
 * Stops: with @graceful the node first logs out (an "offline, last seen"
 * record; at most 2 s), then every handle is closed, the host cache is
 * saved and @done(data) runs once everything is freed. Safe to call from
 * the event callback; a second call is ignored.
 */
void ovl_uvnode_close(struct ovl_uvnode *u, bool graceful,
                      ovl_uvnode_closed_cb done, void *data);

/* The node, for the application calls of ovl_node.h; flush afterwards. */
struct ovl_node *ovl_uvnode_node(struct ovl_uvnode *u);
void ovl_uvnode_flush(struct ovl_uvnode *u);

/* The node's clock (ns, monotonic): the `now` for application calls. */
uint64_t ovl_uvnode_now(const struct ovl_uvnode *u);

void ovl_uvnode_status(struct ovl_uvnode *u, struct ovl_uvnode_status *st);

/*
 * "KEY@HOST:PORT" (KEY: the node's Ed25519 public key, 43 base64url
 * characters or 64 hex digits; HOST an IPv4 or bracketed IPv6 literal, or
 * a name resolved now, blocking) into a contact. Returns 0 or -EINVAL.
 */
int ovl_uv_contact_parse(struct ovl_contact *c, const char *text);
/*
 * A comma-separated list of such contacts (blanks around entries and empty
 * entries ignored) into *out (malloc'd, the caller frees; NULL when none)
 * and *n. An entry that does not parse or resolve goes to @bad (if not
 * NULL) and is skipped. Returns 0 or -ENOMEM.
 */
int ovl_uv_contacts_parse(const char *list, struct ovl_contact **out, size_t *n,
                          void (*bad)(const char *entry, void *data), void *data);
/* The same form back; @out needs OVL_UV_CONTACT_TEXT_MAX bytes. */
enum { OVL_UV_CONTACT_TEXT_MAX = 128 };
void ovl_uv_contact_format(char *out, size_t cap, const struct ovl_contact *c);

/* ovl_addr <-> sockaddr, and <-> the STUN module's address. */
int ovl_uv_addr_from_sockaddr(struct ovl_addr *a, const struct sockaddr *sa);
void ovl_uv_addr_to_stun(struct ovl_stun_addr *s, const struct ovl_addr *a);
int ovl_uv_addr_from_stun(struct ovl_addr *a, const struct ovl_stun_addr *s);
int ovl_uv_addr_to_sockaddr(const struct ovl_addr *a,
                            struct sockaddr_storage *ss);

#endif /* OVL_UVNODE_H */
