/*
 * ovl_harness.c: see ovl_harness.h.
 */
#include "ovl_harness.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

void node_setup(struct node *n, uint8_t seed, bool responder,
                const struct ovl_endpoint_config *cfg)
{
    struct ovl_endpoint_config c = {0};
    uint8_t s[32];

    cr_assert_geq(sodium_init(), 0);
    memset(n, 0, sizeof(*n));
    memset(s, seed, sizeof(s));
    cr_assert_eq(ovl_identity_from_seed(&n->id, s), 0);
    s[0] ^= 0xFF; /* RNG seed differs from the identity seed */
    ovl_rng_seeded_init(&n->rs, s);
    if (cfg)
        c = *cfg;
    c.identity = &n->id;
    c.rng.fn = ovl_rng_seeded_fn;
    c.rng.data = &n->rs;
    c.responder = responder;
    if (c.handshake_rate == 0)
        c.handshake_rate = UINT32_MAX;
    cr_assert_eq(ovl_endpoint_init(&n->ep, &c), 0);
    n->addr[0] = 10;
    n->addr[3] = seed;
    n->addr[4] = 0x1F;
    n->addr[5] = 0x90;
}

void node_teardown(struct node *n)
{
    ovl_endpoint_close(&n->ep);
    ovl_identity_wipe(&n->id);
}

int deliver(struct node *to, const uint8_t *msg, size_t len,
            const uint8_t *from, uint64_t now, struct ovl_rx *rx)
{
    struct ovl_datagram in = {
        .buf = msg,
        .len = len,
        .addr = from,
        .addr_len = from ? 6 : 0,
        .stream = from == NULL,
    };
    return ovl_endpoint_recv(&to->ep, &in, now, &to->hs, to->out,
                             sizeof(to->out), rx);
}

void establish(struct node *c, struct ovl_session *cs, struct node *b,
               struct ovl_session *bs, uint64_t now)
{
    static uint8_t msg[BUF];
    struct ovl_rx rx;
    size_t len;

    cr_assert_eq(ovl_session_connect(cs, b->addr, 6, false,
                                     (const uint8_t *)"join", 4, WALL0 + now,
                                     now, msg, sizeof(msg), &len),
                 0);
    cr_assert_eq(deliver(b, msg, len, c->addr, now, &rx), 0, "INIT: %s",
                 ovl_drop_name(rx.drop));
    cr_assert_eq(rx.kind, OVL_RX_HANDSHAKE);
    cr_assert_eq(ovl_hs_responder_accept(&b->hs, bs, (const uint8_t *)"ok", 2,
                                         now, msg, sizeof(msg), &len),
                 0);
    cr_assert_eq(deliver(c, msg, len, b->addr, now, &rx), 0, "RESP: %s",
                 ovl_drop_name(rx.drop));
    cr_assert_eq(rx.kind, OVL_RX_RESPONSE);
    cr_assert(rx.events & OVL_EV_ESTABLISHED);
    len = run_timers(cs, now, msg, NULL);
    cr_assert_eq(len, (size_t)OVL_DATA_MIN, "confirmation keepalive");
    cr_assert_eq(deliver(b, msg, len, c->addr, now, &rx), 0);
    cr_assert_eq(rx.kind, OVL_RX_KEEPALIVE);
    cr_assert(rx.events & OVL_EV_KEY_CONFIRMED);
    cr_assert(ovl_session_can_send(bs, now));
}

size_t run_timers(struct ovl_session *s, uint64_t now, uint8_t *out,
                  uint32_t *events)
{
    static uint8_t buf[BUF];
    uint32_t ev = 0;
    size_t len = 0;

    cr_assert_eq(ovl_session_timers(s, now, buf, sizeof(buf), &len, &ev), 0);
    if (len && out)
        memcpy(out, buf, len);
    if (events)
        *events |= ev;
    return len;
}

size_t seal_text(struct ovl_session *s, const char *text, uint64_t now,
                 uint8_t *out)
{
    size_t len = 0;

    cr_assert_eq(ovl_session_seal(s, (const uint8_t *)text, strlen(text), now,
                                  out, BUF, &len),
                 0);
    return len;
}
