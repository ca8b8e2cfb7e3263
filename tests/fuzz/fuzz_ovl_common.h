/*
 * fuzz_ovl_common.h: the deterministic world of the overlay fuzz target,
 * shared with the seed generator (ovl_fuzz_seeds.c) so that seeds are
 * valid messages for exactly this state.
 *
 * State after fz_setup(), all from fixed seeds:
 *  - bridge B (responder endpoint) and client C (initiator endpoint);
 *  - session cs/bs established at FZ_T0 (INIT, RESP, keepalive);
 *  - at FZ_T1 = FZ_T0 + 121 s, C's timers started a rekey: C has a
 *    pending handshake, whose INIT (fz.rekey_init) B has not seen;
 *  - C has one outstanding KEY_REQ (fz.keyreq), B has not seen it.
 */
#ifndef FUZZ_OVL_COMMON_H
#define FUZZ_OVL_COMMON_H

#include <stdint.h>
#include <string.h>

#include "ovl_secure.h"

#define FZ_SEC OVL_NS_PER_SEC
#define FZ_T0 (1000 * FZ_SEC)
#define FZ_T1 (FZ_T0 + 121 * FZ_SEC)
#define FZ_WALL0 (1704067200ull * FZ_SEC)

struct fz {
    struct ovl_identity id_b, id_c;
    struct ovl_rng_seeded rs_b, rs_c;
    struct ovl_endpoint b, c;
    struct ovl_session bs, cs;
    struct ovl_hs hs;
    uint8_t rekey_init[OVL_INIT_MAX];
    size_t rekey_init_len;
    uint8_t keyreq[OVL_KEY_REQ_LEN];
    uint8_t scratch[OVL_WIRE_MAX_MSG];
    uint8_t out[OVL_WIRE_MAX_MSG];
};

static const uint8_t fz_addr_b[6] = {192, 0, 2, 1, 0x1F, 0x90};
static const uint8_t fz_addr_c[6] = {198, 51, 100, 7, 0xC3, 0x50};
static const uint8_t fz_addr_alt[6] = {203, 0, 113, 9, 0x04, 0xD2};

static inline int fz_endpoint(struct ovl_endpoint *ep,
                              struct ovl_identity *id,
                              struct ovl_rng_seeded *rs, uint8_t seed,
                              bool responder)
{
    struct ovl_endpoint_config cfg = {0};
    uint8_t s[32];

    memset(s, seed, sizeof(s));
    if (ovl_identity_from_seed(id, s) != 0)
        return -1;
    s[0] ^= 0xFF;
    ovl_rng_seeded_init(rs, s);
    cfg.identity = id;
    cfg.rng.fn = ovl_rng_seeded_fn;
    cfg.rng.data = rs;
    cfg.responder = responder;
    cfg.max_sessions = 16;
    cfg.max_peers = 16;
    cfg.handshake_rate = 1000;
    cfg.handshake_burst = 100;
    return ovl_endpoint_init(ep, &cfg);
}

static inline int fz_recv(struct fz *f, struct ovl_endpoint *ep,
                          const uint8_t *msg, size_t len,
                          const uint8_t *addr, uint64_t now,
                          struct ovl_rx *rx)
{
    struct ovl_datagram in = {.buf = msg, .len = len, .addr = addr,
                              .addr_len = 6};
    return ovl_endpoint_recv(ep, &in, now, &f->hs, f->out, sizeof(f->out),
                             rx);
}

/* Builds the state described above. Returns 0, or -1 if anything did not
 * go exactly as planned (a bug: the fuzz target aborts). */
static inline int fz_setup(struct fz *f)
{
    struct ovl_rx rx;
    uint32_t ev = 0;
    size_t len;

    memset(f, 0, sizeof(*f));
    if (fz_endpoint(&f->b, &f->id_b, &f->rs_b, 0xB0, true) ||
        fz_endpoint(&f->c, &f->id_c, &f->rs_c, 0xC0, false) ||
        ovl_session_init(&f->bs, &f->b, NULL) ||
        ovl_session_init(&f->cs, &f->c, f->id_b.ed_pk))
        return -1;
    if (ovl_session_connect(&f->cs, fz_addr_b, 6, false,
                            (const uint8_t *)"room=fuzz", 9,
                            FZ_WALL0 + FZ_T0, FZ_T0, f->scratch,
                            sizeof(f->scratch), &len) ||
        fz_recv(f, &f->b, f->scratch, len, fz_addr_c, FZ_T0, &rx) ||
        rx.kind != OVL_RX_HANDSHAKE ||
        ovl_hs_responder_accept(&f->hs, &f->bs, (const uint8_t *)"ok", 2,
                                FZ_T0, f->scratch, sizeof(f->scratch),
                                &len) ||
        fz_recv(f, &f->c, f->scratch, len, fz_addr_b, FZ_T0, &rx) ||
        !(rx.events & OVL_EV_ESTABLISHED) ||
        ovl_session_timers(&f->cs, FZ_T0, f->scratch, sizeof(f->scratch),
                           &len, &ev) ||
        len != OVL_DATA_MIN ||
        fz_recv(f, &f->b, f->scratch, len, fz_addr_c, FZ_T0, &rx) ||
        !(rx.events & OVL_EV_KEY_CONFIRMED))
        return -1;
    /* The rekey INIT, kept for the seeds; B never sees it here. */
    if (ovl_session_timers(&f->cs, FZ_T1, f->rekey_init,
                           sizeof(f->rekey_init), &f->rekey_init_len, &ev) ||
        f->rekey_init_len == 0 || f->rekey_init[0] != OVL_MSG_INIT)
        return -1;
    if (ovl_endpoint_key_request(&f->c, FZ_T1, f->keyreq, sizeof(f->keyreq),
                                 &len))
        return -1;
    return 0;
}

static inline void fz_teardown(struct fz *f)
{
    ovl_session_close(&f->bs);
    ovl_session_close(&f->cs);
    ovl_endpoint_close(&f->b);
    ovl_endpoint_close(&f->c);
}

#endif /* FUZZ_OVL_COMMON_H */
