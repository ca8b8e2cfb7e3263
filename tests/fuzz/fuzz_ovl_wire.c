/*
 * fuzz_ovl_wire.c: libFuzzer target for the secure-session receive path
 * (ovl_endpoint_recv and what it leads to), with both a responder (the
 * bridge) and an initiator (a client) in the state fuzz_ovl_common.h
 * builds, so that valid seeds reach every message handler.
 *
 * Input: byte 0 selects how the rest (one datagram) is delivered:
 *   bit 0    0: to the bridge B, 1: to the client C
 *   bit 1    B under load (caller's flag)
 *   bit 2    as a stream (TCP) message
 *   bit 3    from another address than the peer's
 *   bit 4    a resulting handshake is accepted (1) or rejected (0)
 *   bits 5-6 time: FZ_T1 + {0, 30 ms, 30 s, 200 s}
 *   bit 7    recompute mac1 of an INIT or RESP for its receiver, as an
 *            attacker can (the key is public): lets mutations get past
 *            the cheap check into the Noise layer
 * Beyond "no crash, no sanitizer report", it checks the contract: a drop
 * has a reason and nothing to do; replies to unauthenticated INIT and
 * KEY_REQ are never larger than the request; payloads lie within bounds;
 * a RESP is never larger than its INIT; timers keep working afterwards.
 *
 * Built as a libFuzzer binary with clang and -DCHORUS_FUZZ=ON; with gcc,
 * tests/fuzz/fuzz_replay.c replays tests/fuzz/corpus/ovl_wire (made by
 * ovl_fuzz_seeds).
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz_ovl_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            abort();                                                          \
    } while (0)

static const uint64_t offsets[4] = {0, 30 * (FZ_SEC / 1000), 30 * FZ_SEC,
                                    200 * FZ_SEC};

static void check_rx(int rc, const struct ovl_rx *rx, const uint8_t *msg,
                     size_t len, bool to_b)
{
    CHECK(rc == 0 || rc == -EBADMSG);
    if (rc) {
        CHECK(rx->kind == OVL_RX_NONE);
        CHECK(rx->drop > OVL_DROP_NONE && rx->drop < OVL_DROP__COUNT);
        return;
    }
    switch (rx->kind) {
    case OVL_RX_REPLY:
        CHECK(rx->reply != NULL && rx->reply_len > 0);
        /* Unauthenticated requests never get more than they sent. */
        if (to_b && (msg[0] == OVL_MSG_INIT || msg[0] == OVL_MSG_KEY_REQ))
            CHECK(rx->reply_len <= len);
        CHECK(rx->reply_len <= OVL_INIT_MAX);
        break;
    case OVL_RX_DATA:
    case OVL_RX_KEEPALIVE:
        CHECK(rx->session != NULL);
        CHECK(rx->data_len + OVL_DATA_OVERHEAD == len);
        CHECK((rx->kind == OVL_RX_DATA) == (rx->data_len > 0));
        break;
    case OVL_RX_HANDSHAKE:
        CHECK(to_b && msg[0] == OVL_MSG_INIT);
        CHECK(rx->data_len + OVL_INIT_MIN == len);
        break;
    case OVL_RX_RESPONSE:
        CHECK(!to_b && msg[0] == OVL_MSG_RESP);
        CHECK(rx->data_len + OVL_RESP_MIN == len);
        CHECK(rx->events & (OVL_EV_ESTABLISHED | OVL_EV_REJECTED));
        break;
    case OVL_RX_KEY_REPLY:
        CHECK(!to_b && msg[0] == OVL_MSG_KEY_REPLY);
        break;
    case OVL_RX_NONE:
        CHECK(msg[0] == OVL_MSG_COOKIE);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz f;
    static uint8_t msg[OVL_WIRE_MAX_MSG];
    struct ovl_datagram in;
    struct ovl_rx rx;
    uint64_t now;
    uint32_t ev = 0;
    size_t len, n;
    bool to_b;
    int rc;

    if (size < 1 || size - 1 > sizeof(msg))
        return 0;
    CHECK(fz_setup(&f) == 0);
    to_b = !(data[0] & 1);
    now = FZ_T1 + offsets[(data[0] >> 5) & 3];
    ovl_endpoint_set_under_load(&f.b, data[0] & 2);
    /* A private copy: the library must not depend on the caller keeping
     * the input around, and ASan sees exact bounds. */
    len = size - 1;
    memcpy(msg, data + 1, len);
    if ((data[0] & 0x80) && len >= OVL_RESP_MIN &&
        (msg[0] == OVL_MSG_INIT || msg[0] == OVL_MSG_RESP)) {
        uint8_t key[32];
        ovl_label_key(key, "mac1----", to_b ? f.id_b.x_pk : f.id_c.x_pk);
        ovl_mac16(msg + len - 32, key, sizeof(key), msg, len - 32);
    }
    in = (struct ovl_datagram){
        .buf = msg,
        .len = len,
        .addr = (data[0] & 8) ? fz_addr_alt : (to_b ? fz_addr_c : fz_addr_b),
        .addr_len = 6,
        .stream = (data[0] & 4) != 0,
    };

    rc = ovl_endpoint_recv(to_b ? &f.b : &f.c, &in, now, &f.hs, f.out,
                           sizeof(f.out), &rx);
    check_rx(rc, &rx, msg, len, to_b);

    if (rc == 0 && rx.kind == OVL_RX_HANDSHAKE) {
        struct ovl_session fresh;
        bool same = memcmp(rx.peer.identity, f.id_c.ed_pk, 32) == 0;
        size_t cap = len - OVL_RESP_MIN; /* largest allowed answer */

        if (data[0] & 0x10) {
            struct ovl_session *s = same ? &f.bs : &fresh;
            if (!same)
                CHECK(ovl_session_init(&fresh, &f.b, NULL) == 0);
            rc = ovl_hs_responder_accept(&f.hs, s, msg, cap > 16 ? 16 : cap,
                                         now, f.scratch, sizeof(f.scratch),
                                         &n);
            CHECK(rc == 0);
            CHECK(n <= len);
            if (!same)
                ovl_session_close(&fresh);
        } else {
            rc = ovl_hs_responder_reject(&f.hs, &f.b, NULL, 0, f.scratch,
                                         sizeof(f.scratch), &n);
            CHECK(rc == 0 && n == OVL_RESP_MIN && n <= len);
        }
    }

    /* Whatever happened, both sessions' timers still run. */
    for (int i = 0; i < 4; i++) {
        CHECK(ovl_session_timers(&f.cs, now, f.scratch, sizeof(f.scratch), &n,
                                 &ev) == 0);
        CHECK(ovl_session_timers(&f.bs, now, f.scratch, sizeof(f.scratch), &n,
                                 &ev) == 0);
    }
    fz_teardown(&f);
    return 0;
}
