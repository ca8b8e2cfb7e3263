/*
 * brg_plain.c: plain RTP legs, for interoperability with standard tools
 * (GStreamer, ffmpeg, SIP gateways). Created through the API; each gets its
 * own UDP port from the configured range (and the next one for RTCP unless
 * rtcp-mux). Media goes to the remote address given in the request, or, when
 * none was given, to the first source that sends to the port (symmetric RTP,
 * "latching"); after latching only that source is accepted. With a given
 * remote, packets are accepted from its IP address on any port, since many
 * tools send from an ephemeral port. RTCP is accepted and answered with a
 * receiver (or sender) report every 5 s.
 *
 * Thread: loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brg.h"
#include "brg_log.h"
#include "ovl_uv.h"

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
    return false;
}

static uint16_t port_of(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                                    : ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)(void *)ss)->sin_port = htons(port);
}

static size_t sa_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Accepts, latches or refuses the source of a datagram. */
static bool source_ok(struct brg_leg *l, const struct sockaddr *from, bool rtcp)
{
    if (l->remote_given)
        return same_ip(from, &l->remote);
    if (!l->remote_known) {
        if (rtcp)
            return false; /* latch on media only */
        memcpy(&l->remote, from, sa_len(from));
        memcpy(&l->rtcp_remote, from, sa_len(from));
        if (!l->rtcp_mux)
            set_port(&l->rtcp_remote, (uint16_t)(port_of(from) + 1));
        l->remote_known = true;
        BRG_LOGI("bridge.rtp", "participant %u latched to its first source", l->id);
        return true;
    }
    return same_ip(from, &l->remote) &&
           (rtcp ? true : port_of(from) == port_of((const struct sockaddr *)&l->remote));
}

static void rx_rtcp(struct brg *b, struct brg_leg *l, const uint8_t *buf, size_t len)
{
    struct brg_rtcp_info info;
    struct timespec ts;

    if (brg_rtcp_parse(&info, buf, len) != BRG_RTCP_OK) {
        l->rx_invalid++;
        b->c.rx_invalid++;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (info.has_sr && l->rx_started)
        brg_rtp_stats_on_sr(&l->rx, info.sr.ntp,
                            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000);
    for (unsigned i = 0; i < info.n_bye; i++) {
        if (l->rx_started && info.bye[i] == l->rx_ssrc) {
            brg_leg_remove(b, l, "bye");
            return;
        }
    }
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
    struct brg_leg *l = h->data;
    struct brg *b = l->b;
    bool is_rtcp_sock = h == l->rtcp_sock;
    enum brg_pkt_kind kind;

    if (nread <= 0 || !from || l->dying)
        return;
    if (flags & UV_UDP_PARTIAL) {
        b->c.rx_invalid++;
        return;
    }
    kind = brg_rtp_demux((const uint8_t *)buf->base, (size_t)nread);
    if (is_rtcp_sock && kind == BRG_PKT_RTP)
        kind = BRG_PKT_OTHER;
    if (kind == BRG_PKT_OTHER || !source_ok(l, from, kind == BRG_PKT_RTCP)) {
        l->rx_invalid++;
        b->c.rx_unknown++;
        return;
    }
    if (kind == BRG_PKT_RTCP)
        rx_rtcp(b, l, (const uint8_t *)buf->base, (size_t)nread);
    else
        brg_leg_rx_rtp(b, l, (const uint8_t *)buf->base, (size_t)nread);
}

static int bind_port(struct brg *b, uv_udp_t **out, uint16_t port, void *data)
{
    struct sockaddr_storage ss;
    uv_udp_t *u;
    int rc;

    if (uv_ip4_addr(b->cfg->media_addr, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(b->cfg->media_addr, port, (struct sockaddr_in6 *)&ss) != 0)
        return -EINVAL;
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    uv_udp_init(b->loop, u);
    u->data = data;
    rc = uv_udp_bind(u, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(u, ovl_uv_alloc_slab, on_recv);
    if (rc) {
        uv_close((uv_handle_t *)u, (uv_close_cb)free);
        return rc;
    }
    *out = u;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct brg_leg *l = h->data;

    free(h);
    brg_leg_unref(l);
}

static void close_sock(struct brg_leg *l, uv_udp_t **s)
{
    if (!*s)
        return;
    l->pending++;
    uv_close((uv_handle_t *)*s, on_closed);
    *s = NULL;
}

void brg_plain_close(struct brg_leg *l)
{
    close_sock(l, &l->rtp_sock);
    close_sock(l, &l->rtcp_sock);
}

/* Takes the first free port (an even one with its odd neighbour for RTCP
 * when not multiplexed, RFC 3550 §11) in the configured range. */
static int alloc_ports(struct brg *b, struct brg_leg *l)
{
    int step = l->rtcp_mux ? 1 : 2;
    int first = b->cfg->rtp_port_min + (!l->rtcp_mux && (b->cfg->rtp_port_min & 1));

    for (int p = first; p + (step - 1) <= b->cfg->rtp_port_max; p += step) {
        int rc = bind_port(b, &l->rtp_sock, (uint16_t)p, l);
        if (rc)
            continue;
        if (!l->rtcp_mux && bind_port(b, &l->rtcp_sock, (uint16_t)(p + 1), l) != 0) {
            uv_close((uv_handle_t *)l->rtp_sock, (uv_close_cb)free);
            l->rtp_sock = NULL;
            continue;
        }
        l->local_port = (uint16_t)p;
        return 0;
    }
    return -EADDRINUSE;
}

static int parse_remote(const char *s, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 1];
    uint16_t port;

    if (brg_config_parse_hostport(s, strlen(s), host, sizeof(host), &port) != 0 || port == 0)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

int brg_plain_create(struct brg *b, struct brg_room_rt *r, const json_t *body,
                     struct brg_leg **out, struct api_result *res)
{
    const char *codec_s = json_string_value(json_object_get(body, "codec"));
    const char *remote = json_string_value(json_object_get(body, "remote"));
    const char *name = json_string_value(json_object_get(body, "display_name"));
    json_t *v;
    enum mix_codec codec = MIX_CODEC_OPUS;
    struct sockaddr_storage ra;
    uint32_t rate = 48000;
    struct brg_leg *l;
    int rc;

    *out = NULL;
    if (codec_s && strcmp(codec_s, "pcmu") == 0)
        codec = MIX_CODEC_PCMU;
    else if (codec_s && strcmp(codec_s, "pcma") == 0)
        codec = MIX_CODEC_PCMA;
    if ((v = json_object_get(body, "sample_rate")))
        rate = (uint32_t)json_integer_value(v);
    if (remote && parse_remote(remote, &ra) != 0) {
        brg_api_error(res, 422, "remote", "remote must be ip:port or [ipv6]:port");
        return -EINVAL;
    }
    rc = brg_leg_new(b, r, BRG_LEG_RTP, BRG_UDP, codec, rate, &l);
    if (rc == -ENOSPC || rc == -EMFILE) {
        brg_api_error(res, 409, NULL, rc == -ENOSPC ? "the room is full" : "the bridge is full");
        return rc;
    }
    if (rc) {
        brg_api_error(res, 503, NULL, "the participant could not be created: %s", strerror(-rc));
        return rc;
    }
    v = json_object_get(body, "rtcp_mux");
    l->rtcp_mux = v ? json_is_true(v) : true;
    if ((v = json_object_get(body, "payload_type")))
        l->out.pt = (uint8_t)json_integer_value(v);
    l->pt_in = l->out.pt;
    if (name)
        snprintf(l->display_name, sizeof(l->display_name), "%s", name);
    if (remote) {
        l->remote = ra;
        l->rtcp_remote = ra;
        if (!l->rtcp_mux)
            set_port(&l->rtcp_remote, (uint16_t)(port_of((struct sockaddr *)&ra) + 1));
        l->remote_known = l->remote_given = true;
    }
    rc = alloc_ports(b, l);
    if (rc) {
        brg_leg_remove(b, l, "no free port");
        brg_api_error(res, 503, NULL, "no free UDP port in %d-%d", b->cfg->rtp_port_min,
                      b->cfg->rtp_port_max);
        return rc;
    }
    brg_leg_joined(b, l);
    *out = l;
    return 0;
}

int brg_plain_send(struct brg *b, struct brg_leg *l, const uint8_t *pkt, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)pkt, (unsigned)len);
    int rc;

    (void)b;
    if (!l->remote_known || !l->rtp_sock)
        return -ENOTCONN;
    /* try_send: no allocation, no callback; a full socket buffer drops the
     * packet, which is what real-time media wants. */
    rc = uv_udp_try_send(l->rtp_sock, &buf, 1, (const struct sockaddr *)&l->remote);
    return rc < 0 ? rc : 0;
}

void brg_plain_tick(struct brg *b, struct brg_leg *l, uint64_t now_ms)
{
    struct brg_rtcp_report_block rb;
    uint8_t pkt[256];
    struct timespec mono, real;
    uint64_t now_us;
    int len;
    uv_udp_t *s;

    if (!l->remote_known) {
        if (now_ms - l->created_ms > BRG_LATCH_TIMEOUT_MS)
            brg_leg_remove(b, l, "no media");
        return;
    }
    if (now_ms - l->last_rx_ms > BRG_MEDIA_TIMEOUT_MS && l->rx_started) {
        brg_leg_remove(b, l, "media timeout");
        return;
    }
    if (now_ms - l->last_rtcp_ms < BRG_RTCP_INTERVAL_MS)
        return;
    l->last_rtcp_ms = now_ms;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    now_us = (uint64_t)mono.tv_sec * 1000000u + (uint64_t)mono.tv_nsec / 1000;
    memset(&rb, 0, sizeof(rb));
    if (l->rx_started)
        brg_rtp_stats_report(&l->rx, &rb, now_us);
    if (l->out.packets > 0) {
        struct brg_rtcp_sr sr = {
            .ssrc = l->out.ssrc,
            .ntp = brg_ntp_from_unix_us((uint64_t)real.tv_sec * 1000000u +
                                        (uint64_t)real.tv_nsec / 1000),
            /* RFC 3550 §6.4.1: the RTP time of this instant, extrapolated
             * from the last packet sent. */
            .rtp_ts = l->out.last_ts + (uint32_t)((now_ms - l->out.last_ms) * (l->clock / 1000)),
            .packet_count = (uint32_t)l->out.packets,
            .octet_count = (uint32_t)l->out.octets,
        };
        len = brg_rtcp_build_sr(pkt, sizeof(pkt), &sr, l->rx_started ? &rb : NULL, "chorus");
    } else {
        len = brg_rtcp_build_rr(pkt, sizeof(pkt), l->out.ssrc, l->rx_started ? &rb : NULL,
                                "chorus");
    }
    if (len <= 0)
        return;
    s = l->rtcp_mux ? l->rtp_sock : l->rtcp_sock;
    if (s) {
        uv_buf_t buf = uv_buf_init((char *)pkt, (unsigned)len);
        uv_udp_try_send(s, &buf, 1, (const struct sockaddr *)&l->rtcp_remote);
    }
}
