/*
 * ovl_net_util.h: building simulated overlay networks for the tests
 * (supernodes that join one by one, peers with a mix of NATs), recording
 * what each host reports, and running lookups to completion.
 */
#ifndef OVL_NET_UTIL_H
#define OVL_NET_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "ovl_sim.h"

#define NSEC 1000000000ull

/* What one host reported. */
struct host_log {
    uint32_t logged_in, login_failed, lost, role_changed, logged_out;
    uint32_t published, publish_failed;
    enum ovl_role role;
    char last_reason[128];
    struct ovl_event last_buddy;
    uint32_t buddy_events;
    uint32_t lookups;           /* OVL_NEV_LOOKUP events */
    uint32_t lookups_busy;      /* ... refused as busy (-EAGAIN) */
    uint32_t lookups_online;    /* ... that found a live record */
};

/* A finished lookup. */
struct lk_result {
    bool done;
    struct ovl_event ev;
};

struct net {
    struct ovl_sim *sim;
    uint32_t nsn, npeer;       /* hosts [0, nsn) are supernodes */
    struct host_log *log;      /* per host */
    uint32_t cap;
    struct lk_result *lk;      /* indexed by host * LK_PER_HOST + slot */
    uint32_t *lk_tok;          /* tokens, same indexing */
};

enum { LK_PER_HOST = 8 };

struct net_params {
    uint8_t seed;
    bool plaintext;
    double loss;
    uint32_t nsn, npeer;
    bool nat_mix;               /* peers cycle through every NAT type */
    const uint8_t *authority;   /* for every node */
    const struct ovl_node_timing *timing;
};

/* Builds and starts the network; supernodes join 50 ms apart, then the
 * peers (handles "user<i>") start together. Runs @settle_s seconds. */
struct net *net_new(const struct net_params *p, uint32_t settle_s);
void net_free(struct net *n);
void net_run(struct net *n, uint32_t seconds);
/* Adds and starts a host after the fact. */
uint32_t net_add(struct net *n, enum ovl_role_mode mode, enum ovl_nat nat,
                 const char *handle, const uint8_t *cert);
uint32_t net_peer(const struct net *n, uint32_t i); /* host of peer i */
/* Starts a lookup from @host; returns a slot to wait on (-1 on error). */
int net_lookup(struct net *n, uint32_t host, uint8_t rtype, const char *name);
/* Runs until the lookup in @slot finished (at most @max_s seconds). */
const struct lk_result *net_wait(struct net *n, uint32_t host, int slot,
                                 uint32_t max_s);
uint32_t net_logged_in(const struct net *n, uint32_t from, uint32_t to);
uint64_t net_sum_rec_drops(const struct net *n, int reason);

#endif /* OVL_NET_UTIL_H */
