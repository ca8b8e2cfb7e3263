/*
 * lg_legs.c: one load-generator leg: its socket, the secure session
 * (key request, Noise IK handshake with a join request, cookies,
 * retransmissions), paced sending of pre-encoded frames, and receiving the
 * bridge's mix (RTP statistics, and decoding on listener legs). See lg.h.
 *
 * Thread: loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brg_join.h"
#include "lg.h"

enum {
    PKT_MAX = 1500,
    SEAL_MAX = PKT_MAX + OVL_DATA_OVERHEAD,
    LEG_MAX_SESSIONS = 2,    /* an initiator endpoint holds one session */
    LEG_MAX_PEERS = 4,
    MAX_GAP_SKIP = 1000,     /* frames skipped at once, at most */
};

static uint64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static uint8_t slab[65536];

    (void)h;
    (void)hint;
    buf->base = (char *)slab;
    buf->len = sizeof(slab);
}

/* Sends one datagram to the leg's destination (the bridge's media port,
 * or the plain leg's port on the bridge). */
static int send_raw(struct lg_leg *l, const uint8_t *msg, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)msg, (unsigned)len);
    int rc = uv_udp_try_send(&l->udp, &buf, 1, (const struct sockaddr *)&l->dst);

    return rc < 0 ? rc : 0;
}

static int send_sealed(struct lg_leg *l, const uint8_t *plain, size_t len, uint64_t now)
{
    uint8_t out[SEAL_MAX];
    size_t n;
    int rc = ovl_session_seal(l->s, plain, len, now, out, sizeof(out), &n);

    return rc ? rc : send_raw(l, out, n);
}

/* ---- set-up ---- */

static int secure_init(struct lg_leg *l)
{
    struct ovl_endpoint_config ec = {0};

    l->id = calloc(1, sizeof(*l->id));
    l->ep = calloc(1, sizeof(*l->ep));
    l->s = calloc(1, sizeof(*l->s));
    if (!l->id || !l->ep || !l->s)
        return -ENOMEM;
    /* One identity per leg: the bridge allows one INIT per initiator key
     * per 20 ms and wants their timestamps to grow, like separate users. */
    if (ovl_identity_generate(l->id, NULL) != 0)
        return -EIO;
    ec.identity = l->id;
    ec.max_sessions = LEG_MAX_SESSIONS;
    ec.max_peers = LEG_MAX_PEERS;
    return ovl_endpoint_init(l->ep, &ec);
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags);

int lg_leg_init(struct lg *g, struct lg_leg *l, unsigned i)
{
    struct sockaddr_storage any;
    int len = sizeof(any), rc;

    l->g = g;
    l->idx = i;
    l->talker = -1;
    l->dst = g->bridge;
    /* RFC 3550 §5.1: random SSRC, sequence number and timestamp origin. */
    l->ssrc = randombytes_random();
    l->seq = (uint16_t)randombytes_random();
    l->ts = randombytes_random();
    memset(&any, 0, sizeof(any));
    any.ss_family = g->bridge.ss_family;
    if ((rc = uv_udp_init(g->loop, &l->udp)) != 0)
        return rc;
    l->udp.data = l;
    l->udp_open = true;
    if ((rc = uv_udp_bind(&l->udp, (const struct sockaddr *)&any, 0)) != 0 ||
        (rc = uv_udp_getsockname(&l->udp, (struct sockaddr *)&any, &len)) != 0 ||
        (rc = uv_udp_recv_start(&l->udp, on_alloc, on_udp)) != 0)
        return rc;
    l->local_port = ntohs(any.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&any)->sin6_port
                                                    : ((struct sockaddr_in *)&any)->sin_port);
    return l->kind == LG_KIND_SECURE ? secure_init(l) : 0;
}

void lg_leg_close(struct lg_leg *l)
{
    if (l->udp_open) {
        uv_close((uv_handle_t *)&l->udp, NULL);
        l->udp_open = false;
    }
    if (l->session_up)
        ovl_session_close(l->s);
    l->session_up = false;
    if (l->ep && l->id)
        ovl_endpoint_close(l->ep);
    if (l->id)
        ovl_identity_wipe(l->id);
    free(l->s);
    free(l->ep);
    free(l->id);
    l->s = NULL;
    l->ep = NULL;
    l->id = NULL;
    if (l->listener) {
        lg_listener_close(l->listener);
        free(l->listener);
        l->listener = NULL;
    }
}

/* ---- joining ---- */

void lg_leg_key_request(struct lg_leg *l)
{
    uint8_t out[OVL_KEY_REQ_LEN];
    size_t n;

    if (ovl_endpoint_key_request(l->ep, uv_hrtime(), out, sizeof(out), &n) == 0)
        send_raw(l, out, n);
}

void lg_leg_connect(struct lg_leg *l, uint64_t now)
{
    struct brg_join_req req = {.rate = LG_RATE};
    uint8_t app[BRG_JOIN_REQ_PAD], out[OVL_INIT_MAX];
    size_t n;
    int len;

    snprintf(req.room, sizeof(req.room), "%s", l->g->o.room);
    snprintf(req.name, sizeof(req.name), "lg%u", l->idx);
    len = brg_join_req_encode(&req, app, sizeof(app));
    if (len < 0 || ovl_session_init(l->s, l->ep, l->g->bridge_pk) != 0) {
        lg_on_failed(l->g, l, "cannot build the join request");
        return;
    }
    l->session_up = true;
    if (ovl_session_connect(l->s, (const uint8_t *)&l->dst, addr_len(&l->dst), false, app,
                            (size_t)len, wall_ns(), now, out, sizeof(out), &n) != 0) {
        lg_on_failed(l->g, l, "cannot start the handshake");
        return;
    }
    l->state = LG_LEG_HANDSHAKE;
    l->hs_start_ns = now;
    send_raw(l, out, n);
}

void lg_leg_timers(struct lg_leg *l, uint64_t now)
{
    uint8_t out[OVL_INIT_MAX + 64];
    uint32_t ev = 0;
    size_t n = 0;

    /* A failed leg's session stays quiet: no more INITs for it. */
    if (!l->session_up || (l->state != LG_LEG_HANDSHAKE && l->state != LG_LEG_JOINED) ||
        ovl_session_next_timer(l->s) > now)
        return;
    for (int i = 0; i < 4; i++) {
        if (ovl_session_timers(l->s, now, out, sizeof(out), &n, &ev) != 0 || n == 0)
            break;
        send_raw(l, out, n);
    }
    if ((ev & (OVL_EV_HANDSHAKE_FAILED | OVL_EV_EXPIRED)) &&
        (l->state == LG_LEG_HANDSHAKE || l->state == LG_LEG_JOINED)) {
        l->g->hs_failed++;
        lg_on_failed(l->g, l, (ev & OVL_EV_EXPIRED) ? "session expired" : "handshake gave up");
    }
}

static void on_response(struct lg_leg *l, const struct ovl_rx *rx, uint64_t now)
{
    struct brg_join_resp resp;
    char why[BRG_JOIN_ERROR_MAX + 32];

    static const uint8_t bye[] = {BRG_CTRL_BYE, 'l', 'a', 't', 'e'};

    if (l->state == LG_LEG_FAILED && !(rx->events & OVL_EV_REJECTED)) {
        /* Accepted after we gave up on it: leave at once, so the bridge
         * does not keep a leg nobody uses. */
        send_sealed(l, bye, sizeof(bye), now);
        return;
    }
    if (l->state != LG_LEG_HANDSHAKE)
        return; /* a rekey's answer */
    if (brg_join_resp_decode(&resp, rx->data, rx->data_len) != 0) {
        lg_on_failed(l->g, l, "malformed join answer");
        return;
    }
    if ((rx->events & OVL_EV_REJECTED) || !resp.ok) {
        l->g->refused++;
        snprintf(why, sizeof(why), "refused: %s", resp.error[0] ? resp.error : "?");
        lg_on_failed(l->g, l, why);
        return;
    }
    l->participant = resp.id;
    lg_on_joined(l->g, l, now);
}

/* ---- sending ---- */

/* Builds and sends frame l->frame_no. */
static void send_frame(struct lg_leg *l, uint64_t deadline)
{
    struct lg *g = l->g;
    const struct lg_frame *f = lg_audio_frame(&g->audio, l->talker, l->frame_no);
    uint8_t pkt[PKT_MAX];
    struct brg_rtp_header h = {
        .pt = LG_PT_OPUS, .marker = !l->sent_any, .seq = l->seq, .ts = l->ts, .ssrc = l->ssrc,
        .level_present = true, .vad = f->level < LG_LEVEL_SILENT, .level = f->level,
    };
    int len = brg_rtp_build(pkt, sizeof(pkt), &h, f->data, f->len);
    uint64_t now = uv_hrtime();
    int rc;

    if (len < 0)
        return;
    rc = l->kind == LG_KIND_SECURE ? send_sealed(l, pkt, (size_t)len, now)
                                   : send_raw(l, pkt, (size_t)len);
    l->sent_any = true;
    g->tx_packets++;
    if (rc)
        g->tx_errors++;
    if (f->marker && rc == 0)
        lg_on_marker_sent(g, l, now);
    if (g->phase == LG_PH_MEASURE) {
        uint64_t late = (now - deadline) / 100000; /* 0.1 ms */
        g->win_late[late < LG_LATE_BUCKETS ? late : LG_LATE_BUCKETS]++;
        g->win_tx++;
    }
}

static void advance(struct lg_leg *l, uint32_t frames)
{
    l->frame_no += frames;
    l->seq = (uint16_t)(l->seq + frames);
    l->ts += frames * LG_FRAME;
    l->next_send_ns += (uint64_t)frames * LG_FRAME_NS;
}

void lg_leg_pace(struct lg_leg *l, uint64_t now)
{
    if (l->state != LG_LEG_JOINED)
        return;
    while (l->next_send_ns <= now) {
        if (now - l->next_send_ns > LG_CATCHUP_NS) {
            /* Too far behind (we were starved): skip, as a real sender
             * whose frames were lost would; the bridge sees the gap. */
            uint64_t behind = (now - l->next_send_ns) / LG_FRAME_NS;
            uint32_t skip = behind > MAX_GAP_SKIP ? MAX_GAP_SKIP : (uint32_t)behind;
            l->g->tx_skipped += skip;
            if (l->g->phase == LG_PH_MEASURE)
                l->g->win_skipped += skip;
            advance(l, skip);
            continue;
        }
        send_frame(l, l->next_send_ns);
        advance(l, 1);
    }
}

void lg_leg_bye(struct lg_leg *l)
{
    static const uint8_t bye[] = {BRG_CTRL_BYE, 'b', 'y', 'e'};

    if (l->kind == LG_KIND_SECURE && l->state == LG_LEG_JOINED)
        send_sealed(l, bye, sizeof(bye), uv_hrtime());
    if (l->state == LG_LEG_JOINED)
        l->state = LG_LEG_LEFT;
}

/* ---- receiving ---- */

static void on_marker(unsigned talker, uint64_t onset_ns, void *data)
{
    struct lg_leg *l = data;

    lg_on_marker_heard(l->g, l, talker, onset_ns);
}

/* One RTP packet of the mix we hear. */
static void rx_media(struct lg_leg *l, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct brg_rtp_packet p;

    if (brg_rtp_demux(pkt, len) != BRG_PKT_RTP)
        return; /* RTCP reports of plain legs: not measured */
    if (brg_rtp_parse(&p, pkt, len, BRG_RTP_EXT_ID_AUDIO_LEVEL) != BRG_RTP_OK) {
        l->g->rx_invalid++;
        return;
    }
    if (!l->rx_started || p.ssrc != l->rx_ssrc) {
        brg_rtp_stats_init(&l->rx, p.ssrc);
        l->rx_ssrc = p.ssrc;
        l->rx_started = true;
    }
    if (brg_rtp_stats_update(&l->rx, p.seq, p.ts, brg_rtp_arrival(now / 1000, LG_RATE)) >=
        BRG_RTP_SEQ_PROBATION)
        return;
    l->rx_packets++;
    if (l->g->phase == LG_PH_MEASURE) {
        l->g->win_jitter_sum_q4 += l->rx.jitter_q4;
        l->g->win_jitter_n++;
        if (l->rx.jitter_q4 > l->win_jitter_max_q4)
            l->win_jitter_max_q4 = l->rx.jitter_q4;
    }
    if (l->listener && p.payload_len > 0)
        lg_listener_feed(l->listener, p.seq, p.payload, p.payload_len, now, on_marker, l);
}

static void rx_secure(struct lg_leg *l, const uint8_t *buf, size_t len, uint64_t now)
{
    static uint8_t out[65536 + OVL_INIT_MAX];
    struct ovl_datagram in = {.buf = buf, .len = len, .addr = (const uint8_t *)&l->dst,
                              .addr_len = addr_len(&l->dst)};
    struct ovl_rx rx;

    if (ovl_wire_classify(buf, len) != OVL_CLASS_SECURE ||
        ovl_endpoint_recv(l->ep, &in, now, NULL, out, sizeof(out), &rx) != 0) {
        l->g->rx_invalid++;
        return;
    }
    switch (rx.kind) {
    case OVL_RX_KEY_REPLY:
        if (!l->g->have_key) {
            memcpy(l->g->bridge_pk, rx.peer.identity, OVL_ED_PK_LEN);
            l->g->have_key = true;
        }
        break;
    case OVL_RX_REPLY:
        /* The INIT again with mac2, after a COOKIE (the bridge under load). */
        l->g->cookies++;
        send_raw(l, rx.reply, rx.reply_len);
        break;
    case OVL_RX_RESPONSE:
        on_response(l, &rx, now);
        break;
    case OVL_RX_DATA:
        if (rx.data_len > 0 && rx.data[0] == BRG_CTRL_BYE) {
            if (l->state == LG_LEG_JOINED) {
                l->state = LG_LEG_GONE;
                l->g->gone++;
            }
        } else if (l->state == LG_LEG_JOINED) {
            rx_media(l, rx.data, rx.data_len, now);
        }
        break;
    default:
        break;
    }
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct lg_leg *l = h->data;
    uint64_t now;

    (void)from;
    if (nread <= 0 || (flags & UV_UDP_PARTIAL))
        return;
    now = uv_hrtime();
    if (l->kind == LG_KIND_SECURE)
        rx_secure(l, (const uint8_t *)buf->base, (size_t)nread, now);
    else if (l->state == LG_LEG_JOINED)
        rx_media(l, (const uint8_t *)buf->base, (size_t)nread, now);
}

/* ---- the window ---- */

void lg_leg_window_start(struct lg_leg *l)
{
    l->win_started = l->rx_started && l->rx.probation == 0;
    l->win_ext0 = l->win_started ? brg_rtp_stats_ext_max(&l->rx) : 0;
    l->win_recv0 = l->win_started ? l->rx.received : 0;
    l->win_jitter_max_q4 = 0;
}

void lg_leg_window_counts(const struct lg_leg *l, uint64_t *expected, uint64_t *received)
{
    uint32_t ext, recv;

    *expected = *received = 0;
    if (!l->rx_started || l->rx.probation != 0)
        return;
    ext = brg_rtp_stats_ext_max(&l->rx);
    recv = l->rx.received;
    if (!l->win_started || recv < l->win_recv0) {
        /* First packets (or a restart) inside the window: count from the
         * run's base. */
        *expected = ext - l->rx.base_seq + 1;
        *received = recv;
        return;
    }
    *expected = ext - l->win_ext0;
    *received = recv - l->win_recv0;
}
