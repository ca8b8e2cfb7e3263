/*
 * test_ovl_session.c: transport and timers: data tampering and replay,
 * rekeying after time and after messages (old keys accepted until the new
 * ones are confirmed), rejection after time and messages, retransmission
 * and giving up, keepalives, roaming, and the whole thing over a TCP byte
 * stream split at every boundary.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "ovl_harness.h"
#include "ovl_stream.h"

static struct node C, B;
static struct ovl_session cs, bs;
static uint8_t msg[BUF], msg2[BUF];

static void setup_with(const struct ovl_endpoint_config *cfg)
{
    node_setup(&C, 1, false, cfg);
    node_setup(&B, 2, true, cfg);
    cr_assert_eq(ovl_session_init(&cs, &C.ep, B.id.ed_pk), 0);
    cr_assert_eq(ovl_session_init(&bs, &B.ep, NULL), 0);
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    ovl_session_close(&cs);
    ovl_session_close(&bs);
    node_teardown(&C);
    node_teardown(&B);
}

TestSuite(session, .init = setup, .fini = teardown);

/* Re-creates both nodes with @cfg's limits. */
static void reset_with(const struct ovl_endpoint_config *cfg)
{
    teardown();
    setup_with(cfg);
}

Test(session, data_tampered_at_every_byte_or_replayed_is_dropped)
{
    struct ovl_rx rx;
    size_t len;

    establish(&C, &cs, &B, &bs, T0);
    len = seal_text(&cs, "audio frame 1", T0, msg2);
    for (size_t i = 0; i < len; i++) {
        memcpy(msg, msg2, len);
        msg[i] ^= 0x80;
        cr_expect_eq(deliver(&B, msg, len, C.addr, T0, &rx), -EBADMSG,
                     "byte %zu", i);
        cr_expect_neq(rx.kind, OVL_RX_DATA);
    }
    /* Truncated and extended copies too. */
    cr_expect_eq(deliver(&B, msg2, len - 1, C.addr, T0, &rx), -EBADMSG);
    memcpy(msg, msg2, len);
    msg[len] = 0;
    cr_expect_eq(deliver(&B, msg, len + 1, C.addr, T0, &rx), -EBADMSG);
    cr_expect_eq(B.ep.counters.drops[OVL_DROP_DECRYPT], len - 8 + 2);

    cr_assert_eq(deliver(&B, msg2, len, C.addr, T0, &rx), 0);
    cr_expect_eq(rx.kind, OVL_RX_DATA);
    cr_expect_eq(deliver(&B, msg2, len, C.addr, T0, &rx), -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_REPLAY);
}

Test(session, reordering_within_the_window_is_fine)
{
    static uint8_t pkts[40][64];
    size_t lens[40];
    struct ovl_rx rx;

    establish(&C, &cs, &B, &bs, T0);
    for (int i = 0; i < 40; i++)
        lens[i] = seal_text(&cs, "frame", T0, pkts[i]);
    /* Deliver in reverse: all accepted once. */
    for (int i = 39; i >= 0; i--) {
        cr_expect_eq(deliver(&B, pkts[i], lens[i], C.addr, T0, &rx), 0);
        cr_expect_eq(rx.kind, OVL_RX_DATA);
    }
    for (int i = 0; i < 40; i++)
        cr_expect_eq(deliver(&B, pkts[i], lens[i], C.addr, T0, &rx),
                     -EBADMSG);
}

Test(session, keepalive_follows_received_data)
{
    struct ovl_rx rx;
    size_t len;
    uint64_t now = T0;

    establish(&C, &cs, &B, &bs, now);
    /* Nothing due on either side right after the handshake. */
    cr_expect_gt(ovl_session_next_timer(&bs), now);
    len = seal_text(&cs, "talk", now, msg);
    cr_assert_eq(deliver(&B, msg, len, C.addr, now, &rx), 0);
    /* The bridge owes an answer within KEEPALIVE_TIMEOUT. */
    cr_expect_eq(ovl_session_next_timer(&bs), now + OVL_KEEPALIVE_TIMEOUT);
    cr_expect_eq(run_timers(&bs, now + OVL_KEEPALIVE_TIMEOUT - 1, msg, NULL),
                 0u);
    len = run_timers(&bs, now + OVL_KEEPALIVE_TIMEOUT, msg, NULL);
    cr_assert_eq(len, (size_t)OVL_DATA_MIN);
    cr_assert_eq(deliver(&C, msg, len, B.addr, now + OVL_KEEPALIVE_TIMEOUT,
                         &rx),
                 0);
    cr_expect_eq(rx.kind, OVL_RX_KEEPALIVE);
    /* Sending data cancels a due keepalive. */
    len = seal_text(&cs, "talk", now + 11 * SEC, msg);
    cr_assert_eq(deliver(&B, msg, len, C.addr, now + 11 * SEC, &rx), 0);
    len = seal_text(&bs, "mix", now + 12 * SEC, msg);
    cr_expect_eq(run_timers(&bs, now + 21 * SEC, msg, NULL), 0u);
}

Test(session, rekey_after_time_keeps_old_keys_until_confirmed)
{
    static uint8_t old_from_client[BUF], old_from_bridge[BUF];
    size_t len, ocl, obl;
    struct ovl_rx rx;
    uint32_t ev = 0;
    uint64_t now = T0;

    establish(&C, &cs, &B, &bs, now);
    /* The initiator's deadline is the rekey (keepalives aside). */
    cr_expect_eq(ovl_session_next_timer(&cs), now + OVL_REKEY_AFTER_TIME);
    cr_expect_eq(run_timers(&cs, now + OVL_REKEY_AFTER_TIME - 1, msg, &ev),
                 0u);

    now += OVL_REKEY_AFTER_TIME;
    /* Packets sealed under the old keys, delivered after the rekey. */
    ocl = seal_text(&cs, "old c", now, old_from_client);
    obl = seal_text(&bs, "old b", now, old_from_bridge);

    len = run_timers(&cs, now, msg, &ev);
    cr_assert_gt(len, 0u);
    cr_assert_eq(msg[0], OVL_MSG_INIT);
    cr_assert_eq(deliver(&B, msg, len, C.addr, now, &rx), 0);
    cr_assert_eq(rx.kind, OVL_RX_HANDSHAKE);
    cr_expect(rx.peer.flags & OVL_INIT_FLAG_REKEY);
    cr_expect_eq(rx.data_len, 0u, "a rekey repeats no join payload");
    /* The app recognises the peer and accepts into the same session. */
    cr_assert_arr_eq(rx.peer.identity, ovl_session_remote_identity(&bs), 32);
    cr_assert_eq(ovl_hs_responder_accept(&B.hs, &bs, NULL, 0, now, msg,
                                         sizeof(msg), &len),
                 0);
    /* Until confirmed, the bridge still sends with the old keys ... */
    cr_expect(ovl_session_can_send(&bs, now));
    cr_assert_eq(deliver(&C, msg, len, B.addr, now, &rx), 0);
    cr_expect(rx.events & OVL_EV_ESTABLISHED);

    /* ... and the client, already on the new keys, still accepts them. */
    len = seal_text(&bs, "still old", now, msg);
    cr_expect_eq(deliver(&C, msg, len, B.addr, now, &rx), 0);
    cr_expect_eq(rx.kind, OVL_RX_DATA);
    cr_expect_eq(deliver(&C, old_from_bridge, obl, B.addr, now, &rx), 0);
    /* Old packets from the client are accepted by the bridge as well. */
    cr_expect_eq(deliver(&B, old_from_client, ocl, C.addr, now, &rx), 0);
    cr_expect_eq(rx.kind, OVL_RX_DATA);
    cr_expect_not(rx.events & OVL_EV_KEY_CONFIRMED);

    /* The client's confirmation keepalive switches the bridge over. */
    len = run_timers(&cs, now, msg, &ev);
    cr_assert_eq(len, (size_t)OVL_DATA_MIN);
    cr_assert_eq(deliver(&B, msg, len, C.addr, now, &rx), 0);
    cr_expect(rx.events & OVL_EV_KEY_CONFIRMED);
    len = seal_text(&bs, "new", now, msg);
    cr_expect_eq(deliver(&C, msg, len, B.addr, now, &rx), 0);
    /* Its index is the new keypair's, not the old one's. */
    cr_expect_neq(ovl_load_le32(msg + 4), ovl_load_le32(old_from_bridge + 4));

    /* The previous keys die REJECT_AFTER_TIME after their birth. */
    cr_expect_eq(deliver(&B, old_from_client, ocl, C.addr, now, &rx),
                 -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_REPLAY);
    run_timers(&cs, T0 + OVL_REJECT_AFTER_TIME, msg, &ev);
    run_timers(&bs, T0 + OVL_REJECT_AFTER_TIME, msg, &ev);
    cr_expect_eq(deliver(&C, old_from_bridge, obl, B.addr,
                         T0 + OVL_REJECT_AFTER_TIME, &rx),
                 -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_UNKNOWN_INDEX);
    cr_expect_not(ev & OVL_EV_EXPIRED);
    cr_expect(ovl_session_can_send(&cs, T0 + OVL_REJECT_AFTER_TIME));
    cr_expect(ovl_session_can_send(&bs, T0 + OVL_REJECT_AFTER_TIME));
}

Test(session, rekey_after_messages)
{
    struct ovl_endpoint_config cfg = {
        .limits = {.rekey_after_messages = 10, .reject_after_messages = 15}};
    struct ovl_rx rx;
    size_t len;
    int i;
    uint64_t now = T0;

    reset_with(&cfg);
    establish(&C, &cs, &B, &bs, now);
    now += SEC; /* past the responder's per-initiator flood limit */
    /* The confirmation keepalive used counter 0. */
    for (i = 1; i < 9; i++)
        seal_text(&cs, "x", now, msg);
    cr_expect_gt(ovl_session_next_timer(&cs), now, "9 sent: not yet");
    seal_text(&cs, "x", now, msg);
    cr_expect_leq(ovl_session_next_timer(&cs), now, "10 sent: rekey due");
    len = run_timers(&cs, now, msg, NULL);
    cr_assert_gt(len, 0u);
    cr_expect_eq(msg[0], OVL_MSG_INIT);
    /* The old keys keep working while the handshake runs, up to the
     * reject limit: counters 10..14 are allowed, 15 is not. */
    for (i = 10; i < 15; i++)
        cr_expect_eq(ovl_session_seal(&cs, (const uint8_t *)"y", 1, now, msg2,
                                      sizeof(msg2), &len),
                     0, "counter %d", i);
    cr_expect_eq(ovl_session_seal(&cs, (const uint8_t *)"y", 1, now, msg2,
                                  sizeof(msg2), &len),
                 -ENOTCONN);
    /* Complete the rekey: the new keys send again. */
    cr_assert_eq(deliver(&B, msg, OVL_INIT_MIN, C.addr, now, &rx), 0);
    cr_assert_eq(ovl_hs_responder_accept(&B.hs, &bs, NULL, 0, now, msg,
                                         sizeof(msg), &len),
                 0);
    cr_assert_eq(deliver(&C, msg, len, B.addr, now, &rx), 0);
    cr_expect(ovl_session_can_send(&cs, now));
    len = seal_text(&cs, "again", now, msg);
    cr_expect_eq(deliver(&B, msg, len, C.addr, now, &rx), 0);
    cr_expect(rx.events & OVL_EV_KEY_CONFIRMED);
}

Test(session, counters_past_the_limit_are_refused_both_ends)
{
    struct ovl_endpoint_config cfg = {.limits = {.reject_after_messages = 5}};
    struct ovl_rx rx;
    size_t len;

    /* Only the bridge has the low limit: the client keeps sending, the
     * bridge refuses counter 5 and beyond. */
    teardown();
    node_setup(&C, 1, false, NULL);
    node_setup(&B, 2, true, &cfg);
    cr_assert_eq(ovl_session_init(&cs, &C.ep, B.id.ed_pk), 0);
    cr_assert_eq(ovl_session_init(&bs, &B.ep, NULL), 0);
    establish(&C, &cs, &B, &bs, T0); /* keepalive: counter 0 */
    for (int i = 1; i < 5; i++) {
        len = seal_text(&cs, "x", T0, msg);
        cr_expect_eq(deliver(&B, msg, len, C.addr, T0, &rx), 0, "%d", i);
    }
    len = seal_text(&cs, "x", T0, msg);
    cr_expect_eq(deliver(&B, msg, len, C.addr, T0, &rx), -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_KEY_EXPIRED);

    /* And a sender stops by itself at its own limit. */
    for (int i = 0; i < 5; i++)
        if (ovl_session_seal(&bs, (const uint8_t *)"y", 1, T0, msg,
                             sizeof(msg), &len) != 0)
            break;
    cr_expect_eq(ovl_session_seal(&bs, (const uint8_t *)"y", 1, T0, msg,
                                  sizeof(msg), &len),
                 -ENOTCONN);
}

Test(session, reject_after_time_and_expiry)
{
    static uint8_t late[BUF];
    struct ovl_rx rx;
    uint32_t ev = 0;
    size_t len, ll;
    uint64_t now = T0;

    establish(&C, &cs, &B, &bs, now);
    ll = seal_text(&cs, "late", now, late);
    /* The bridge's session never hears a rekey (the client vanished). */
    now += OVL_REJECT_AFTER_TIME - 1;
    cr_expect(ovl_session_can_send(&bs, now));
    cr_expect_eq(deliver(&B, late, ll, C.addr, now, &rx), 0);
    ll = seal_text(&cs, "later", T0, late); /* sealed at T0, counter 2 */
    now += 1;
    cr_expect_not(ovl_session_can_send(&bs, now));
    cr_expect_eq(ovl_session_seal(&bs, (const uint8_t *)"x", 1, now, msg,
                                  sizeof(msg), &len),
                 -ENOTCONN);
    cr_expect_eq(deliver(&B, late, ll, C.addr, now, &rx), -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_KEY_EXPIRED);
    cr_expect_leq(ovl_session_next_timer(&bs), now);
    run_timers(&bs, now, msg, &ev);
    cr_expect(ev & OVL_EV_EXPIRED);
    cr_expect_eq(ovl_session_next_timer(&bs), OVL_NEVER);
    /* Reported once. */
    ev = 0;
    run_timers(&bs, now + SEC, msg, &ev);
    cr_expect_eq(ev, 0u);
}

Test(session, retransmits_then_gives_up)
{
    uint32_t ev = 0;
    size_t len;
    uint64_t now = T0, deadline;
    uint32_t first_index, index;
    int inits = 1;
    struct ovl_rx rx;

    cr_assert_eq(ovl_session_connect(&cs, B.addr, 6, false,
                                     (const uint8_t *)"join", 4, WALL0, now,
                                     msg, sizeof(msg), &len),
                 0);
    first_index = ovl_load_le32(msg + 4);
    /* Retransmission after REKEY_TIMEOUT plus up to 1/3 s of jitter. */
    deadline = ovl_session_next_timer(&cs);
    cr_expect_geq(deadline, now + OVL_REKEY_TIMEOUT);
    cr_expect_lt(deadline, now + OVL_REKEY_TIMEOUT + OVL_REKEY_TIMEOUT_JITTER);
    cr_expect_eq(run_timers(&cs, deadline - 1, msg, &ev), 0u);
    len = run_timers(&cs, deadline, msg, &ev);
    cr_assert_eq(len, OVL_INIT_MIN + 4u, "the join payload is repeated");
    inits++;
    index = ovl_load_le32(msg + 4);
    cr_expect_neq(index, first_index, "fresh index each time");
    /* The bridge answers the retransmission; the first INIT's index is
     * gone, so an answer to it would be dropped. */
    cr_assert_eq(deliver(&B, msg, len, C.addr, deadline, &rx), 0);
    cr_assert_eq(rx.kind, OVL_RX_HANDSHAKE);
    cr_expect_arr_eq(rx.data, "join", 4);
    ovl_hs_discard(&B.hs);

    /* Keep not answering: INITs every ~5 s until REKEY_ATTEMPT_TIME. */
    now = deadline;
    while (!(ev & OVL_EV_HANDSHAKE_FAILED)) {
        now = ovl_session_next_timer(&cs);
        cr_assert_lt(now, T0 + OVL_REKEY_ATTEMPT_TIME + OVL_REKEY_TIMEOUT +
                              OVL_REKEY_TIMEOUT_JITTER);
        if (run_timers(&cs, now, msg, &ev))
            inits++;
    }
    cr_expect_geq(now, T0 + OVL_REKEY_ATTEMPT_TIME);
    /* One INIT at 0 s, then one every 5..5.33 s while under 90 s. */
    cr_expect_geq(inits, 17);
    cr_expect_leq(inits, 18);
    cr_expect(ev & OVL_EV_EXPIRED, "never established: dead at once");
    cr_expect_eq(C.ep.counters.hs_failed, 1u);
    cr_expect_eq(ovl_session_next_timer(&cs), OVL_NEVER);
}

Test(session, unanswered_data_triggers_a_new_handshake)
{
    uint32_t ev = 0;
    size_t len;
    uint64_t now = T0;

    establish(&C, &cs, &B, &bs, now);
    now += SEC;
    seal_text(&cs, "anyone there?", now, msg);
    /* Nothing comes back: after KEEPALIVE + REKEY_TIMEOUT, a handshake. */
    cr_expect_eq(ovl_session_next_timer(&cs),
                 now + OVL_KEEPALIVE_TIMEOUT + OVL_REKEY_TIMEOUT);
    len = run_timers(&cs, now + OVL_KEEPALIVE_TIMEOUT + OVL_REKEY_TIMEOUT, msg,
                     &ev);
    cr_assert_gt(len, 0u);
    cr_expect_eq(msg[0], OVL_MSG_INIT);
}

Test(session, persistent_keepalive)
{
    struct ovl_endpoint_config cfg = {
        .limits = {.persistent_keepalive = 25 * SEC}};
    size_t len;
    uint64_t now = T0;

    reset_with(&cfg);
    establish(&C, &cs, &B, &bs, now);
    cr_expect_eq(ovl_session_next_timer(&cs), now + 25 * SEC);
    len = run_timers(&cs, now + 25 * SEC, msg, NULL);
    cr_expect_eq(len, (size_t)OVL_DATA_MIN);
    cr_expect_eq(ovl_session_next_timer(&cs), now + 50 * SEC);
}

Test(session, roaming_is_reported_on_authenticated_packets)
{
    static const uint8_t new_addr[6] = {192, 168, 1, 7, 0xC3, 0x50};
    const uint8_t *a;
    struct ovl_rx rx;
    size_t len, alen;

    establish(&C, &cs, &B, &bs, T0);
    a = ovl_session_addr(&bs, &alen);
    cr_expect_eq(alen, 6u);
    cr_expect_arr_eq(a, C.addr, 6);
    /* A forged packet from elsewhere changes nothing. */
    len = seal_text(&cs, "from the new network", T0, msg);
    memcpy(msg2, msg, len);
    msg2[len - 1] ^= 1;
    cr_expect_eq(deliver(&B, msg2, len, new_addr, T0, &rx), -EBADMSG);
    a = ovl_session_addr(&bs, &alen);
    cr_expect_arr_eq(a, C.addr, 6);
    /* The real one moves the session. */
    cr_assert_eq(deliver(&B, msg, len, new_addr, T0, &rx), 0);
    cr_expect(rx.events & OVL_EV_ADDR_CHANGED);
    a = ovl_session_addr(&bs, &alen);
    cr_expect_arr_eq(a, new_addr, 6);
    cr_expect_eq(B.ep.counters.addr_changes, 1u);
    len = seal_text(&cs, "again", T0, msg);
    cr_assert_eq(deliver(&B, msg, len, new_addr, T0, &rx), 0);
    cr_expect_not(rx.events & OVL_EV_ADDR_CHANGED);
}

Test(session, session_open_for_a_known_session)
{
    struct ovl_datagram in;
    struct ovl_rx rx;
    size_t len;

    establish(&C, &cs, &B, &bs, T0);
    len = seal_text(&cs, "direct", T0, msg);
    in = (struct ovl_datagram){.buf = msg, .len = len, .addr = C.addr,
                               .addr_len = 6};
    cr_assert_eq(ovl_session_open(&bs, &in, T0, msg2, sizeof(msg2), &rx), 0);
    cr_expect_eq(rx.kind, OVL_RX_DATA);
    cr_expect_arr_eq(rx.data, "direct", 6);
    /* A packet for another session's index is not this one's. */
    cr_expect_eq(ovl_session_open(&cs, &in, T0, msg2, sizeof(msg2), &rx),
                 -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_UNKNOWN_INDEX);
}

Test(session, close_unregisters_indices)
{
    struct ovl_rx rx;
    size_t len;

    establish(&C, &cs, &B, &bs, T0);
    len = seal_text(&cs, "bye", T0, msg);
    cr_expect_eq(B.ep.idx_count, 1u);
    ovl_session_close(&bs);
    cr_expect_eq(B.ep.idx_count, 0u);
    cr_expect_eq(deliver(&B, msg, len, C.addr, T0, &rx), -EBADMSG);
    cr_expect_eq(rx.drop, OVL_DROP_UNKNOWN_INDEX);
    cr_assert_eq(ovl_session_init(&bs, &B.ep, NULL), 0);
}

Test(session, many_sessions_share_one_endpoint)
{
    enum { N = 64 };
    static struct node clients[N];
    static struct ovl_session ccs[N], bss[N];
    struct ovl_rx rx;
    size_t len;

    for (int i = 0; i < N; i++) {
        node_setup(&clients[i], (uint8_t)(10 + i), false, NULL);
        cr_assert_eq(ovl_session_init(&ccs[i], &clients[i].ep, B.id.ed_pk),
                     0);
        cr_assert_eq(ovl_session_init(&bss[i], &B.ep, NULL), 0);
        establish(&clients[i], &ccs[i], &B, &bss[i], T0 + (uint64_t)i * SEC);
    }
    /* Every client's data lands in its own session. */
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "client %d", i);
        len = seal_text(&ccs[i], text, T0 + N * SEC, msg);
        cr_assert_eq(deliver(&B, msg, len, clients[i].addr, T0 + N * SEC,
                             &rx),
                     0);
        cr_expect_eq(rx.session, &bss[i]);
        cr_expect_arr_eq(rx.data, text, strlen(text));
    }
    /* Closing some keeps the index table consistent for the rest. */
    for (int i = 0; i < N; i += 2)
        ovl_session_close(&bss[i]);
    for (int i = 1; i < N; i += 2) {
        len = seal_text(&ccs[i], "still here", T0 + N * SEC, msg);
        cr_assert_eq(deliver(&B, msg, len, clients[i].addr, T0 + N * SEC,
                             &rx),
                     0);
        cr_expect_eq(rx.session, &bss[i]);
    }
    for (int i = 0; i < N; i++) {
        ovl_session_close(&bss[i]);
        ovl_session_close(&ccs[i]);
        node_teardown(&clients[i]);
    }
    cr_expect_eq(B.ep.idx_count, 0u);
}

/* The whole exchange over TCP: every message framed, the byte stream cut
 * into two pieces at every possible position before reaching the peer. */
Test(session, over_a_tcp_stream_split_everywhere)
{
    static uint8_t wire[BUF], store[BUF];
    struct ovl_stream st;
    struct ovl_rx rx;
    size_t len, wlen;
    int n;

    cr_assert_eq(ovl_session_connect(&cs, NULL, 0, true,
                                     (const uint8_t *)"tcp join", 8, WALL0,
                                     T0, msg, sizeof(msg), &len),
                 0);
    n = ovl_stream_frame(wire, sizeof(wire), msg, len);
    cr_assert_gt(n, 0);
    wlen = (size_t)n;
    /* One INIT, cut at every position; only the first complete one is a
     * handshake (the copies are replays of the same timestamp). */
    for (size_t cut = 1; cut < wlen; cut++) {
        const uint8_t *m;
        size_t used, ml, off = 0;
        int got = 0;
        cr_assert_eq(ovl_stream_init(&st, store, sizeof(store)), 0);
        for (int piece = 0; piece < 2; piece++) {
            size_t end = piece ? wlen : cut;
            while (off < end) {
                int rc = ovl_stream_feed(&st, wire + off, end - off, &used,
                                         &m, &ml);
                cr_assert_geq(rc, 0);
                off += used;
                if (rc == 1) {
                    cr_assert_eq(ml, len);
                    cr_assert_arr_eq(m, msg, len);
                    got++;
                }
            }
        }
        cr_assert_eq(got, 1, "cut %zu", cut);
    }
    cr_assert_eq(deliver(&B, msg, len, NULL, T0, &rx), 0);
    cr_assert_eq(rx.kind, OVL_RX_HANDSHAKE);
    cr_assert_eq(ovl_hs_responder_accept(&B.hs, &bs, NULL, 0, T0, msg,
                                         sizeof(msg), &len),
                 0);
    cr_assert_eq(deliver(&C, msg, len, NULL, T0, &rx), 0);
    cr_expect(rx.events & OVL_EV_ESTABLISHED);

    /* Ten DATA messages in one stream, delivered in awkward pieces. */
    wlen = 0;
    for (int i = 0; i < 10; i++) {
        len = seal_text(&cs, "tcp media frame", T0, msg);
        n = ovl_stream_frame(wire + wlen, sizeof(wire) - wlen, msg, len);
        wlen += (size_t)n;
    }
    cr_assert_eq(ovl_stream_init(&st, store, sizeof(store)), 0);
    {
        size_t off = 0, step = 7, got = 0;
        while (off < wlen) {
            size_t end = off + step < wlen ? off + step : wlen;
            while (off < end) {
                const uint8_t *m;
                size_t used, ml;
                int rc = ovl_stream_feed(&st, wire + off, end - off, &used,
                                         &m, &ml);
                cr_assert_geq(rc, 0);
                off += used;
                if (rc == 1) {
                    memcpy(msg2, m, ml);
                    cr_assert_eq(deliver(&B, msg2, ml, NULL, T0, &rx), 0);
                    cr_expect_eq(rx.kind, OVL_RX_DATA);
                    cr_expect_arr_eq(rx.data, "tcp media frame", 15);
                    got++;
                }
            }
            step = step * 3 % 41 + 1;
        }
        cr_expect_eq(got, 10u);
    }
}
