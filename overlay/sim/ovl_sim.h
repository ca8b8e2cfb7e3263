/*
 * ovl_sim.h: a deterministic simulated network for overlay nodes: virtual
 * time, an event queue, per-link latency, UDP loss, NATs, TCP, churn,
 * thousands of ovl_node instances in one process. Used by the tests
 * (tests/overlay/test_ovl_net.c) and the benchmark (bench/bench_overlay.c).
 *
 * Model
 * -----
 *  - Every host has one node, a public IPv4 address (11.x.y.z) and, behind
 *    a NAT, a private one (10.x.y.z). All nodes use UDP port 4000 and TCP
 *    port 4000; supernodes may also listen on TCP 443.
 *  - Latency: each host has a position in a unit square and an access
 *    delay; one-way delay = access(a) + access(b) + distance x
 *    ms_per_unit, plus up to 5 % per-packet jitter (UDP may reorder; TCP
 *    delivers in order). The defaults give round trips of about 10 to
 *    360 ms.
 *  - UDP datagrams are lost with probability `loss`; TCP is reliable.
 *  - NAT types (RFC 4787 terms):
 *      OPEN         public address, everything reaches it;
 *      CONE         endpoint-independent mapping, address-dependent
 *                   filtering: replies from an IP it sent to pass;
 *      SYMMETRIC    endpoint-dependent mapping and filtering: a new
 *                   external port per destination, only that destination
 *                   may answer on it;
 *      UDP_BLOCKED  no UDP at all; TCP out to any port;
 *      TCP443_ONLY  no UDP; TCP out to port 443 only.
 *    Inbound TCP reaches OPEN hosts only. A NAT drops what it does not
 *    let in (the sender times out); an open host not listening on a port
 *    answers a SYN with a reset.
 *  - Churn: a crash frees the node; the host's kernel resets its TCP
 *    connections (the other ends see them close); UDP peers notice only
 *    by timeouts. A logout runs ovl_node_logout first.
 *  - Randomness: everything (identities, node RNGs, latencies, loss)
 *    comes from the seed: the same seed gives the same run.
 *
 * Thread: one. Not thread-safe.
 */
#ifndef OVL_SIM_H
#define OVL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_node.h"

#define OVL_SIM_WALL0 (1704067200ull * 1000000000ull) /* 2024-01-01 */
#define OVL_SIM_T0 (1000ull * 1000000000ull)          /* first instant */

enum ovl_nat {
    OVL_NAT_OPEN = 0,
    OVL_NAT_CONE,
    OVL_NAT_SYMMETRIC,
    OVL_NAT_UDP_BLOCKED,
    OVL_NAT_TCP443_ONLY,
};

struct ovl_sim_config {
    uint8_t seed[32];
    double loss;               /* UDP loss probability (0..1) */
    uint32_t access_min_us;    /* access delay range (2 ms .. 20 ms) */
    uint32_t access_max_us;
    uint32_t us_per_unit;      /* distance cost (100 ms per unit) */
    bool plaintext;            /* nodes use insecure_plaintext frames */
    bool crash_silent;         /* crashes do not reset TCP connections */
    struct ovl_node_timing timing; /* default for every node */
};

struct ovl_sim_node_config {
    enum ovl_role_mode mode;
    enum ovl_nat nat;
    const char *handle;        /* copied */
    const uint8_t *cert;       /* copied */
    const uint8_t *authority;  /* copied */
    bool tcp443;
    const struct ovl_node_timing *timing; /* NULL: the sim's */
    uint8_t fallbacks, login_parallel;
    uint32_t max_peers;
};

struct ovl_sim_stats {
    uint64_t events;
    uint64_t udp_sent, udp_delivered, udp_lost, udp_filtered;
    uint64_t tcp_connects, tcp_refused, tcp_dropped, tcp_bytes;
    uint64_t bytes;
};

struct ovl_sim;

typedef void (*ovl_sim_event_cb)(struct ovl_sim *s, uint32_t host,
                                 const struct ovl_event *ev, void *data);

int ovl_sim_new(struct ovl_sim **out, const struct ovl_sim_config *cfg);
void ovl_sim_free(struct ovl_sim *s);

/* Events of every node go to @cb (may be NULL). */
void ovl_sim_on_event(struct ovl_sim *s, ovl_sim_event_cb cb, void *data);

/* Adds a host with a fresh identity (deterministic); its node is created
 * and started by ovl_sim_start. Returns 0 or -ENOMEM; *host is its index. */
int ovl_sim_add(struct ovl_sim *s, const struct ovl_sim_node_config *c,
                uint32_t *host);

/* Sets the certificate a host's node gets at its next start (identities
 * exist from ovl_sim_add on, so a test can certify them in between). */
void ovl_sim_set_cert(struct ovl_sim *s, uint32_t host, const uint8_t *cert);

/* The bootstrap list given to nodes started from now on (copied). */
int ovl_sim_set_bootstrap(struct ovl_sim *s, const struct ovl_contact *c,
                          size_t n);

/* Creates the host's node (again, after a crash: same identity, empty
 * state) and starts it at the current time. */
int ovl_sim_start(struct ovl_sim *s, uint32_t host);

/* Kills the node at once (see "Churn"). */
void ovl_sim_crash(struct ovl_sim *s, uint32_t host);

/* Logs the node out; it is stopped when it reports OVL_NEV_LOGGED_OUT. */
void ovl_sim_logout(struct ovl_sim *s, uint32_t host);

/* Runs events up to and including time @t (ns). */
void ovl_sim_run_until(struct ovl_sim *s, uint64_t t);

/* Lets the caller act on a node (lookups ...) and then processes what it
 * produced: call ovl_sim_touch after calling into ovl_sim_node(). */
struct ovl_node *ovl_sim_node(struct ovl_sim *s, uint32_t host);
void ovl_sim_touch(struct ovl_sim *s, uint32_t host);

uint64_t ovl_sim_now(const struct ovl_sim *s);
uint32_t ovl_sim_hosts(const struct ovl_sim *s);
bool ovl_sim_alive(const struct ovl_sim *s, uint32_t host);
const struct ovl_identity *ovl_sim_identity(const struct ovl_sim *s,
                                            uint32_t host);
/* The contact of a host's node as a supernode (public address). */
void ovl_sim_contact(const struct ovl_sim *s, uint32_t host,
                     struct ovl_contact *c);
const struct ovl_sim_stats *ovl_sim_stats(const struct ovl_sim *s);
/* Bytes the simulator itself holds (hosts, queues), not the nodes. */
size_t ovl_sim_memory(const struct ovl_sim *s);
/* A value in [0, bound) from the simulation's generator. */
uint32_t ovl_sim_random(struct ovl_sim *s, uint32_t bound);

/*
 * Injects a datagram as if @from_host had sent it to @to_host's UDP port
 * (tests: replays and forgeries). Delivered after the usual latency and
 * through the usual NAT rules.
 */
void ovl_sim_inject_udp(struct ovl_sim *s, uint32_t from_host,
                        uint32_t to_host, const uint8_t *data, size_t len);

#endif /* OVL_SIM_H */
