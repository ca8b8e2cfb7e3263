/*
 * brg_metrics.c: the bridge's part of GET /metrics, in the Prometheus text
 * exposition format. The loop renders a snapshot once a second; the API
 * thread copies it under a mutex (brg_backend.c), so a scrape never waits
 * for the loop and never reads loop state.
 *
 * Thread: loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brg.h"
#include "brg_overlay.h"

struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void metric(struct buf *b, const char *name, const char *type,
                   const char *help, uint64_t v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
        (unsigned long long)v);
}

/* The engine's 152-bucket histogram folded into Prometheus buckets. */
static void cycle_histogram(struct buf *b, const struct mix_engine_stats *s)
{
    static const uint64_t le_us[] = {100, 250, 500, 1000, 2000, 5000, 10000, 20000};
    uint64_t total = 0;
    unsigned k = 0;

    put(b, "# HELP chorus_mixer_cycle_seconds Duration of mixing cycles that mixed at least one room.\n"
           "# TYPE chorus_mixer_cycle_seconds histogram\n");
    for (unsigned i = 0; i < sizeof(le_us) / sizeof(le_us[0]); i++) {
        while (k < MIX_TICK_BUCKETS && mix_engine_hist_upper_us(k) <= le_us[i])
            total += s->hist[k++];
        put(b, "chorus_mixer_cycle_seconds_bucket{le=\"%g\"} %llu\n", (double)le_us[i] / 1e6,
            (unsigned long long)total);
    }
    for (; k < MIX_TICK_BUCKETS; k++)
        total += s->hist[k];
    put(b, "chorus_mixer_cycle_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)total);
    put(b, "chorus_mixer_cycle_seconds_sum %g\n", (double)s->busy_ns / 1e9);
    put(b, "chorus_mixer_cycle_seconds_count %llu\n", (unsigned long long)total);
}

/* The overlay node's series; only chorus_overlay_up (0) when it is off. */
static void overlay_metrics(struct buf *o, struct brg *b)
{
    struct ovl_uvnode_status st;
    uint32_t rooms = 0;
    bool up = brg_overlay_status(b, &st, &rooms);
    const struct ovl_node_stats *s;

    metric(o, "chorus_overlay_up", "gauge", "1 while the overlay node runs.", up);
    if (!up || !st.stats)
        return;
    s = st.stats;
    metric(o, "chorus_overlay_logged_in", "gauge", "1 while logged in (peer) or joined (supernode).",
           st.logged_in);
    metric(o, "chorus_overlay_role", "gauge", "Current overlay role: 0 peer, 1 supernode.",
           st.role == OVL_ROLE_SUPERNODE);
    metric(o, "chorus_overlay_hostcache_entries", "gauge", "Supernode contacts in the host cache.",
           st.hostcache);
    metric(o, "chorus_overlay_attached_peers", "gauge", "Peers attached to this supernode.", st.attached);
    metric(o, "chorus_overlay_routing_contacts", "gauge", "Contacts in the DHT routing table.",
           st.rt_contacts);
    metric(o, "chorus_overlay_dht_records", "gauge", "Records this supernode stores for the DHT.",
           st.records);
    metric(o, "chorus_overlay_rooms_published", "gauge", "Rooms of this bridge published in the overlay.",
           rooms);
    metric(o, "chorus_overlay_tcp_connections", "gauge", "Open overlay TCP connections.", st.conns);
    metric(o, "chorus_overlay_memory_bytes", "gauge", "Heap bytes held by the overlay node.", st.memory);
    metric(o, "chorus_overlay_rx_msgs_total", "counter", "Overlay messages received.", s->rx_msgs);
    metric(o, "chorus_overlay_tx_msgs_total", "counter", "Overlay messages sent.", s->tx_msgs);
    metric(o, "chorus_overlay_rx_bytes_total", "counter", "Overlay bytes received (UDP and TCP).", s->rx_bytes);
    metric(o, "chorus_overlay_tx_bytes_total", "counter", "Overlay bytes sent (UDP and TCP).", s->tx_bytes);
    metric(o, "chorus_overlay_rpc_timeouts_total", "counter", "Overlay requests that timed out.",
           s->rpc_timeouts);
    metric(o, "chorus_overlay_dropped_total", "counter", "Overlay messages dropped (unexpected, unknown sender, wrong state).",
           s->dropped);
    metric(o, "chorus_overlay_stun_answered_total", "counter", "STUN Binding requests answered on the overlay port.",
           st.counters.stun_answered);
    metric(o, "chorus_overlay_tcp_refused_total", "counter", "Overlay connections refused by the connection caps.",
           st.counters.tcp_refused_cap);
    metric(o, "chorus_overlay_rate_limited_total", "counter",
           "Overlay requests refused as busy by the per-link request limits.", s->rate_limited);
    metric(o, "chorus_overlay_unauth_closed_total", "counter",
           "Accepted overlay connections closed without an authenticated sender.",
           s->conns_unauth_closed);
}

void brg_metrics_refresh(struct brg *b)
{
    struct buf o = {0};
    struct mix_engine_stats es;
    struct mix_leg_stats ls;
    struct brg_leg *l, *tmp;
    uint64_t lost = 0, late = 0, concealed = 0, fec = 0, jb_sum = 0, n = 0;
    double jitter_max = 0;

    o.cap = 8192;
    o.p = malloc(o.cap);
    if (!o.p)
        return;
    o.p[0] = '\0';
    mix_engine_stats(b->engine, &es);
    HASH_ITER(hh, b->legs, l, tmp) {
        if (!l->mix)
            continue;
        mix_leg_stats(l->mix, &ls);
        lost += ls.lost;
        late += ls.late;
        concealed += ls.concealed;
        fec += ls.fec_recovered;
        jb_sum += ls.jb_depth_ms;
        n++;
        if (l->rx_started) {
            double j = (double)(l->rx.jitter_q4 >> 4) * 1000.0 / l->clock;
            if (j > jitter_max)
                jitter_max = j;
        }
    }

    metric(&o, "chorus_rooms", "gauge", "Rooms hosted.", HASH_COUNT(b->rooms));
    metric(&o, "chorus_legs", "gauge", "Participant legs connected.", b->nlegs);
    metric(&o, "chorus_legs_joined_total", "counter", "Legs that joined.", b->c.legs_joined);
    metric(&o, "chorus_legs_left_total", "counter", "Legs that left or were removed.", b->c.legs_left);
    metric(&o, "chorus_rx_packets_total", "counter", "Media packets received and accepted.", b->c.rx_packets);
    metric(&o, "chorus_rx_bytes_total", "counter", "Media bytes received and accepted.", b->c.rx_bytes);
    metric(&o, "chorus_tx_packets_total", "counter", "Media packets sent.", b->c.tx_packets);
    metric(&o, "chorus_tx_bytes_total", "counter", "Media bytes sent.", b->c.tx_bytes);
    metric(&o, "chorus_rx_invalid_total", "counter", "Malformed or unexpected packets dropped.", b->c.rx_invalid);
    metric(&o, "chorus_rx_unknown_total", "counter", "Packets from unknown sources dropped.", b->c.rx_unknown);
    metric(&o, "chorus_tx_errors_total", "counter", "Packets that could not be sent.", b->c.tx_errors);
    metric(&o, "chorus_handshakes_total", "counter", "Secure-leg handshakes completed.", b->c.handshakes_ok);
    metric(&o, "chorus_handshakes_failed_total", "counter", "Secure-leg handshakes refused.", b->c.handshakes_failed);
    metric(&o, "chorus_lost_packets_total", "counter", "Packets never received in time, over connected legs.", lost);
    metric(&o, "chorus_late_packets_total", "counter", "Packets that arrived after their turn, over connected legs.", late);
    metric(&o, "chorus_concealed_frames_total", "counter", "Frames concealed (PLC), over connected legs.", concealed);
    metric(&o, "chorus_fec_recovered_frames_total", "counter", "Frames rebuilt from in-band FEC, over connected legs.", fec);
    put(&o, "# HELP chorus_jitter_max_ms Largest RFC 3550 interarrival jitter among connected legs.\n"
            "# TYPE chorus_jitter_max_ms gauge\nchorus_jitter_max_ms %.3f\n", jitter_max);
    put(&o, "# HELP chorus_jitter_buffer_avg_ms Mean jitter-buffer depth of connected legs.\n"
            "# TYPE chorus_jitter_buffer_avg_ms gauge\nchorus_jitter_buffer_avg_ms %.1f\n",
        n ? (double)jb_sum / (double)n : 0.0);
    metric(&o, "chorus_mixer_cycles_total", "counter", "Mixing cycles run.", es.cycles);
    metric(&o, "chorus_mixer_missed_deadlines_total", "counter", "Mixing cycles that ended after their deadline.", es.missed);
    metric(&o, "chorus_mixer_encodes_total", "counter", "Encoder calls.", es.encodes);
    metric(&o, "chorus_mixer_decodes_total", "counter", "Decoder calls.", es.decodes);
    metric(&o, "chorus_mixer_encodes_per_tick", "gauge", "Encoder calls in the last busy cycle.", es.last_encodes);
    metric(&o, "chorus_mixer_max_cycle_microseconds", "gauge", "Longest mixing cycle.", es.max_cycle_ns / 1000);
    cycle_histogram(&o, &es);
    overlay_metrics(&o, b);

    if (o.failed) {
        free(o.p);
        return;
    }
    pthread_mutex_lock(&b->metrics_lock);
    free(b->metrics_text);
    b->metrics_text = o.p;
    b->metrics_len = o.len;
    pthread_mutex_unlock(&b->metrics_lock);
}
