/*
 * lg_report.c: chorus-loadgen's figures, computed once at the end of a run
 * from the window's edges (lg.h) and printed as one line or one JSON
 * object. Percentages of CPU are of one core: 100 means one core busy for
 * the whole window.
 *
 * Thread: loop (after uv_run returned).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

enum {
    MARKER_GRACE_MS = 500, /* markers this close to the window's end may be
                              heard after it: not expected */
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The @p-quantile (0..1) of @n sorted values. */
static uint64_t quantile_u64(const uint64_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)ceil(p * (double)n);
    return v[i ? i - 1 : 0];
}

/* Everything the report prints, computed once. Negative values mean "not
 * measured" and print as null. */
struct lg_report {
    double window_s, join_s;
    double cpu_pct, cpu_us_per_leg, loop_pct, mix_pct, self_pct;
    double host_pct, other_pct;      /* whole host; host minus bridge and us */
    unsigned mix_threads;
    double loss_pct, deficit_pct, jitter_mean_ms, jitter_max_ms;
    double lat_p50, lat_p99, lat_max;
    unsigned lat_n, markers_expected;
    double markers_pct;
    double hs_p50, hs_p99;
    double late_p99_ms, late_max_ms;
    double missed, cycles, max_cycle_us, b_lost, b_late, b_concealed, b_tx_err, b_invalid;
    double b_drops, own_drops, rcvbuf;
    double b_drop_pct;               /* the bridge's socket drops / our sends */
};

static double pct_of(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* The host's busy time over the window, in % of one core, and what of it
 * was neither the bridge nor us (other load skews every figure). */
static void report_host(const struct lg *g, struct lg_report *r)
{
    const struct lg_edge *a = &g->edge[0], *b = &g->edge[1];
    double total = (double)(b->host_total_ns - a->host_total_ns);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    r->host_pct = r->other_pct = -1;
    if (total <= 0 || ncpu <= 0)
        return;
    r->host_pct = 100.0 * (double)(b->host_busy_ns - a->host_busy_ns) / (total / (double)ncpu);
    r->other_pct = r->host_pct - (r->self_pct > 0 ? r->self_pct : 0);
    if (a->bridge.ok && b->bridge.ok)
        r->other_pct -= 100.0 * (double)(b->bridge.total_ns - a->bridge.total_ns) /
                        (double)(b->bridge.wall_ns - a->bridge.wall_ns);
    if (r->other_pct < 0)
        r->other_pct = 0;
}

static void report_cpu(const struct lg *g, struct lg_report *r)
{
    const struct lg_cpu_sample *a = &g->edge[0].bridge, *b = &g->edge[1].bridge;
    double wall = (double)(b->wall_ns - a->wall_ns);
    double self_wall = (double)(g->edge[1].wall_ns - g->edge[0].wall_ns);

    r->cpu_pct = r->cpu_us_per_leg = r->loop_pct = r->mix_pct = -1;
    r->self_pct = self_wall > 0 ? 100.0 * (double)(g->edge[1].self_cpu_ns - g->edge[0].self_cpu_ns) /
                                      self_wall
                                : -1;
    report_host(g, r);
    if (!a->ok || !b->ok || wall <= 0)
        return;
    r->cpu_pct = 100.0 * (double)(b->total_ns - a->total_ns) / wall;
    r->loop_pct = 100.0 * (double)(b->loop_ns - a->loop_ns) / wall;
    r->mix_pct = 100.0 * (double)(b->mix_ns - a->mix_ns) / wall;
    r->mix_threads = b->n_mix;
    if (g->joined)
        r->cpu_us_per_leg = (double)(b->total_ns - a->total_ns) / 1000.0 / (wall / 1e9) / g->joined;
}

static void report_latency(const struct lg *g, struct lg_report *r)
{
    uint64_t *v = calloc(g->n_samples + 1, sizeof(*v));
    uint64_t last = g->win_end_ns - MARKER_GRACE_MS * 1000000ull;
    unsigned n = 0, expected = 0, heard = 0;

    for (unsigned i = 0; i < g->n_markers; i++)
        expected += g->markers[i].sent_ns >= g->win_start_ns && g->markers[i].sent_ns <= last;
    for (unsigned i = 0; v && i < g->n_samples; i++) {
        const struct lg_sample *s = &g->samples[i];
        if (s->sent_ns < g->win_start_ns || s->sent_ns > g->win_end_ns)
            continue;
        v[n++] = s->latency_ns;
        heard += s->sent_ns <= last;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    r->lat_n = n;
    r->lat_p50 = n ? (double)quantile_u64(v, n, 0.50) / 1e6 : -1;
    r->lat_p99 = n ? (double)quantile_u64(v, n, 0.99) / 1e6 : -1;
    r->lat_max = n ? (double)v[n - 1] / 1e6 : -1;
    r->markers_expected = expected * g->win.listeners;
    r->markers_pct = r->markers_expected ? pct_of(heard, r->markers_expected) : -1;
    free(v);
}

static void report_send(const struct lg *g, struct lg_report *r)
{
    uint64_t seen = 0, p99 = (g->win_tx * 99 + 99) / 100;
    bool have_p99 = false;

    r->late_p99_ms = r->late_max_ms = 0;
    for (unsigned i = 0; i <= LG_LATE_BUCKETS; i++) {
        if (!g->win_late[i])
            continue;
        seen += g->win_late[i];
        if (!have_p99 && seen >= p99) {
            r->late_p99_ms = i / 10.0;
            have_p99 = true;
        }
        r->late_max_ms = i / 10.0;
    }
    if (g->n_hs) {
        qsort(g->hs_ms, g->n_hs, sizeof(*g->hs_ms), cmp_u32);
        r->hs_p50 = g->hs_ms[(g->n_hs - 1) / 2];
        r->hs_p99 = g->hs_ms[(size_t)ceil(0.99 * g->n_hs) - 1];
    } else {
        r->hs_p50 = r->hs_p99 = -1;
    }
}

static void report_bridge(const struct lg *g, struct lg_report *r)
{
    const struct lg_metrics *a = &g->edge[0].m, *b = &g->edge[1].m;
    bool ok = a->ok && b->ok;

    r->missed = ok ? b->missed_deadlines - a->missed_deadlines : -1;
    r->cycles = ok ? b->cycles - a->cycles : -1;
    r->max_cycle_us = b->ok ? b->max_cycle_us : -1;
    r->b_lost = ok ? b->lost - a->lost : -1;
    r->b_late = ok ? b->late - a->late : -1;
    r->b_concealed = ok ? b->concealed - a->concealed : -1;
    r->b_tx_err = ok ? b->tx_errors - a->tx_errors : -1;
    r->b_invalid = ok ? (b->rx_invalid - a->rx_invalid) + (b->rx_unknown - a->rx_unknown) : -1;
    r->b_drops = (double)(g->edge[1].bridge_drops - g->edge[0].bridge_drops);
    r->own_drops = (double)(g->edge[1].own_drops - g->edge[0].own_drops);
    r->rcvbuf = (double)(g->edge[1].rcvbuf_errors - g->edge[0].rcvbuf_errors);
    r->b_drop_pct = g->win_tx ? 100.0 * r->b_drops / (double)g->win_tx : -1;
}

static void report_compute(struct lg *g, struct lg_report *r)
{
    memset(r, 0, sizeof(*r));
    r->window_s = (double)(g->win_end_ns - g->win_start_ns) / 1e9;
    r->join_s = (double)(g->joined_all_ns - g->t0_ns) / 1e9;
    report_cpu(g, r);
    r->loss_pct = g->win.expected ? pct_of(g->win.expected > g->win.received
                                               ? g->win.expected - g->win.received : 0,
                                           g->win.expected)
                                  : -1;
    r->deficit_pct = g->win.by_time ? pct_of(g->win.by_time > g->win.received
                                                 ? g->win.by_time - g->win.received : 0,
                                             g->win.by_time)
                                    : -1;
    r->jitter_mean_ms = g->win_jitter_n ? (double)g->win_jitter_sum_q4 / g->win_jitter_n / 16.0 /
                                              (LG_RATE / 1000.0)
                                        : -1;
    r->jitter_max_ms = (double)g->win.jitter_max_q4 / 16.0 / (LG_RATE / 1000.0);
    report_latency(g, r);
    report_send(g, r);
    report_bridge(g, r);
}

static const char *kind_name(enum lg_kind k)
{
    return k == LG_KIND_SECURE ? "secure" : (k == LG_KIND_RTP ? "rtp" : "mixed");
}

/* A number, or null when negative (not measured). */
static void jnum(FILE *f, const char *key, double v, int prec, bool comma)
{
    if (v < 0)
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
    else
        fprintf(f, "\"%s\":%.*f%s", key, prec, v, comma ? "," : "");
}

static void print_json(FILE *f, const struct lg *g, const struct lg_report *r)
{
    fprintf(f, "{\"kind\":\"%s\",\"legs\":%u,\"talkers\":%u,\"room\":\"%s\",\"joined\":%u,"
           "\"failed\":%u,\"gone\":%u,",
           kind_name(g->o.kind), g->n, g->o.talkers, g->o.room, g->joined, g->failed, g->gone);
    jnum(f, "window_s", r->window_s, 2, true);
    jnum(f, "join_s", r->join_s, 2, true);
    jnum(f, "handshake_ms_p50", r->hs_p50, 0, true);
    jnum(f, "handshake_ms_p99", r->hs_p99, 0, true);
    fprintf(f, "\"cookies\":%" PRIu64 ",\"refused\":%" PRIu64 ",", g->cookies, g->refused);
    jnum(f, "bridge_cpu_pct", r->cpu_pct, 1, true);
    jnum(f, "bridge_cpu_us_per_leg_s", r->cpu_us_per_leg, 1, true);
    jnum(f, "bridge_loop_pct", r->loop_pct, 1, true);
    jnum(f, "bridge_mix_pct", r->mix_pct, 1, true);
    fprintf(f, "\"bridge_mix_threads\":%u,", r->mix_threads);
    jnum(f, "loadgen_cpu_pct", r->self_pct, 1, true);
    jnum(f, "host_cpu_pct", r->host_pct, 1, true);
    jnum(f, "host_other_cpu_pct", r->other_pct, 1, true);
    fprintf(f, "\"tx_packets\":%" PRIu64 ",\"tx_errors\":%" PRIu64 ",\"tx_skipped\":%" PRIu64
               ",\"tx_skipped_window\":%" PRIu64 ",",
            g->tx_packets, g->tx_errors, g->tx_skipped, g->win_skipped);
    jnum(f, "send_late_ms_p99", r->late_p99_ms, 1, true);
    jnum(f, "send_late_ms_max", r->late_max_ms, 1, true);
    fprintf(f, "\"rx_expected\":%" PRIu64 ",\"rx_received\":%" PRIu64 ",\"silent_legs\":%u,",
           g->win.expected, g->win.received, g->win.silent_legs);
    jnum(f, "loss_pct", r->loss_pct, 3, true);
    jnum(f, "rx_deficit_pct", r->deficit_pct, 3, true);
    jnum(f, "jitter_ms_mean", r->jitter_mean_ms, 2, true);
    jnum(f, "jitter_ms_max", r->jitter_max_ms, 2, true);
    jnum(f, "latency_ms_p50", r->lat_p50, 1, true);
    jnum(f, "latency_ms_p99", r->lat_p99, 1, true);
    jnum(f, "latency_ms_max", r->lat_max, 1, true);
    fprintf(f, "\"latency_samples\":%u,\"markers_expected\":%u,", r->lat_n, r->markers_expected);
    jnum(f, "markers_heard_pct", r->markers_pct, 1, true);
    jnum(f, "bridge_missed_deadlines", r->missed, 0, true);
    jnum(f, "bridge_mix_cycles", r->cycles, 0, true);
    jnum(f, "bridge_max_cycle_us", r->max_cycle_us, 0, true);
    jnum(f, "bridge_lost", r->b_lost, 0, true);
    jnum(f, "bridge_late", r->b_late, 0, true);
    jnum(f, "bridge_concealed", r->b_concealed, 0, true);
    jnum(f, "bridge_tx_errors", r->b_tx_err, 0, true);
    jnum(f, "bridge_rx_dropped", r->b_invalid, 0, true);
    jnum(f, "bridge_socket_drops", r->b_drops, 0, true);
    jnum(f, "bridge_socket_drop_pct", r->b_drop_pct, 3, true);
    jnum(f, "loadgen_socket_drops", r->own_drops, 0, true);
    jnum(f, "udp_rcvbuf_errors", r->rcvbuf, 0, false);
    if (g->first_error[0]) {
        fprintf(f, ",\"first_error\":\"");
        for (const char *p = g->first_error; *p; p++)
            fprintf(f, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        fprintf(f, "\"");
    }
    fprintf(f, "}\n");
}

/* "-" for a value that was not measured. */
static const char *fmt(char *buf, size_t cap, double v, int prec)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.*f", prec, v);
    return buf;
}

static void print_line(FILE *f, const struct lg *g, const struct lg_report *r)
{
    char a[14][24];

    fprintf(f, "%s legs=%u talkers=%u joined=%u failed=%u window=%.1fs | bridge cpu=%s%% "
               "(%s us/s per leg; loop %s%%, mix %s%%) missed=%s | loss=%s%% deficit=%s%% "
               "jitter mean/max=%s/%.2fms | latency p50=%s p99=%s ms (%u, %s%% of markers) | "
               "loadgen cpu=%s%% late p99=%.1fms skipped=%" PRIu64 " | other load=%s%% | "
               "socket drops bridge=%.0f (%s%%) loadgen=%.0f\n",
            kind_name(g->o.kind), g->n, g->o.talkers, g->joined, g->failed, r->window_s,
            fmt(a[0], 24, r->cpu_pct, 1), fmt(a[1], 24, r->cpu_us_per_leg, 1),
            fmt(a[2], 24, r->loop_pct, 1), fmt(a[3], 24, r->mix_pct, 1),
            fmt(a[4], 24, r->missed, 0), fmt(a[5], 24, r->loss_pct, 3),
            fmt(a[6], 24, r->deficit_pct, 2), fmt(a[7], 24, r->jitter_mean_ms, 2),
            r->jitter_max_ms, fmt(a[8], 24, r->lat_p50, 1), fmt(a[9], 24, r->lat_p99, 1),
            r->lat_n, fmt(a[10], 24, r->markers_pct, 0), fmt(a[11], 24, r->self_pct, 0),
            r->late_p99_ms, g->win_skipped, fmt(a[12], 24, r->other_pct, 0), r->b_drops,
            fmt(a[13], 24, r->b_drop_pct, 2), r->own_drops);
    if (g->first_error[0])
        fprintf(f, "  first failure: %s\n", g->first_error);
}


void lg_report_print(struct lg *g, FILE *f)
{
    struct lg_report r;

    report_compute(g, &r);
    if (g->o.json)
        print_json(f, g, &r);
    else
        print_line(f, g, &r);
}
