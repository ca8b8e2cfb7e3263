/*
 * ovl_harness.h: a tiny simulated network for the secure-session tests.
 * Each node has a deterministic identity and RNG (seeded from one byte),
 * an endpoint and a 6-byte address; messages are handed over by calling
 * ovl_endpoint_recv directly, so a test can drop, replay, reorder or
 * tamper with any of them.
 */
#ifndef OVL_HARNESS_H
#define OVL_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ovl_secure.h"

#define SEC OVL_NS_PER_SEC
#define MS (OVL_NS_PER_SEC / 1000)
/* Simulations start far from 0 so that "now - x" never wraps in tests. */
#define T0 (1000 * SEC)
/* Wall clock at T0: 2024-01-01T00:00:00Z. */
#define WALL0 (1704067200ull * SEC)

enum { BUF = OVL_WIRE_MAX_MSG };

struct node {
    struct ovl_identity id;
    struct ovl_rng_seeded rs;
    struct ovl_endpoint ep;
    struct ovl_hs hs;      /* pending responder handshake */
    uint8_t addr[6];       /* compact address: 4 bytes IPv4 + port */
    uint8_t out[BUF];      /* receive output buffer */
};

/* Identity and RNG from @seed; @cfg may override endpoint settings (its
 * identity and rng fields are ignored). Built-in load detection is off
 * unless @cfg asks for a rate. */
void node_setup(struct node *n, uint8_t seed, bool responder,
                const struct ovl_endpoint_config *cfg);
void node_teardown(struct node *n);

/* Delivers @msg to @to as if sent from address @from (6 bytes; NULL: a
 * stream). Returns ovl_endpoint_recv's result. */
int deliver(struct node *to, const uint8_t *msg, size_t len,
            const uint8_t *from, uint64_t now, struct ovl_rx *rx);

/* Client @c (session @cs, fresh from ovl_session_init with the bridge's
 * key) connects to bridge @b, which accepts into @bs (fresh responder
 * session); the keepalive confirms. Asserts every step. */
void establish(struct node *c, struct ovl_session *cs, struct node *b,
               struct ovl_session *bs, uint64_t now);

/* Runs @s's timers at @now; copies the first datagram (if any) to @out and
 * returns its length (0: none). ORs events into *events (may be NULL). */
size_t run_timers(struct ovl_session *s, uint64_t now, uint8_t *out,
                  uint32_t *events);

/* Seals @text as DATA on @s; returns the message length. */
size_t seal_text(struct ovl_session *s, const char *text, uint64_t now,
                 uint8_t *out);

#endif /* OVL_HARNESS_H */
