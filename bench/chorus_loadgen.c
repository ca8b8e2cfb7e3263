/*
 * chorus_loadgen.c: chorus-loadgen, a load generator for a running
 * chorus-bridge. It drives N legs into one room at the real packet rate
 * (secure legs over the media port, plain RTP legs created over the REST
 * API, or both), T of them talking and the rest sending encoded silence,
 * receives every leg's mix, and prints one line (or one JSON object) per
 * run: the bridge's CPU per leg (from /proc), loss, jitter, and the
 * latency the bridge adds, timed with markers in the talkers' audio.
 *
 * A run: set-up (room, sockets, identities; plain legs are created over the
 * API by a worker while the loop already runs), join (secure handshakes
 * paced at --join-rate), warm-up, the measured window (--seconds), then
 * goodbyes and the report. The window's edges sample the bridge's CPU
 * (process, loop thread, mixing threads), its /metrics counters and the
 * kernel's UDP drop counters, on libuv's thread pool so that the loop that
 * paces the media never waits for them.
 *
 * See docs/performance.md for how to run it and what the figures mean.
 *
 * Thread: loop (main), plus libuv's pool for the API worker and the edge
 * snapshots (each touches only its own results until its after-callback).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "brg_config.h"
#include "lg.h"

enum {
    EXIT_OK = 0,
    EXIT_RUN = 1,         /* the run did not reach its measured window */
    EXIT_USAGE = 2,
    EXIT_SETUP = 3,       /* bridge, API or sockets unusable */
    FD_RESERVE = 64,      /* descriptors beyond one per leg */
    API_MAX_FAILURES = 10, /* consecutive POST failures before giving up */
};

/* ---- hooks called by lg_legs.c ---- */

void lg_on_joined(struct lg *g, struct lg_leg *l, uint64_t now)
{
    uint64_t phase = g->t0_ns + (uint64_t)l->idx * LG_FRAME_NS / g->n;

    l->state = LG_LEG_JOINED;
    l->joined_ns = now;
    g->joined++;
    if (l->kind == LG_KIND_SECURE && g->n_hs < g->n)
        g->hs_ms[g->n_hs++] = (uint32_t)((now - l->hs_start_ns) / 1000000u);
    /* The leg's send slots sit at its own phase within the 20 ms frame, so
     * the legs' packets are spread over time as real clients' would be. */
    l->next_send_ns = now <= phase ? phase
                                   : phase + (now - phase + LG_FRAME_NS - 1) / LG_FRAME_NS * LG_FRAME_NS;
}

void lg_on_failed(struct lg *g, struct lg_leg *l, const char *why)
{
    if (l->state == LG_LEG_JOINED)
        g->joined--;
    l->state = LG_LEG_FAILED;
    g->failed++;
    if (!g->first_error[0])
        snprintf(g->first_error, sizeof(g->first_error), "leg %u: %s", l->idx, why);
}

void lg_on_marker_sent(struct lg *g, struct lg_leg *l, uint64_t now)
{
    if (g->n_markers >= LG_MAX_MARKERS)
        return;
    g->markers[g->n_markers++] = (struct lg_marker){
        .talker = (uint8_t)l->talker, .number = l->frame_no / LG_PERIOD_FRAMES, .sent_ns = now};
}

void lg_on_marker_heard(struct lg *g, struct lg_leg *l, unsigned talker, uint64_t onset_ns)
{
    /* The talker's latest marker sent before the onset, within a second:
     * markers of one talker are a second apart, so this is unambiguous. */
    for (unsigned i = g->n_markers; i-- > 0;) {
        const struct lg_marker *m = &g->markers[i];

        if (m->sent_ns + 1000000000ull < onset_ns)
            break;
        if (m->talker != talker || m->sent_ns > onset_ns)
            continue;
        if (m->number + 1 <= l->heard[talker] || g->n_samples >= LG_MAX_SAMPLES)
            return; /* already timed */
        l->heard[talker] = m->number + 1;
        g->samples[g->n_samples++] =
            (struct lg_sample){.sent_ns = m->sent_ns, .latency_ns = onset_ns - m->sent_ns};
        return;
    }
}

/* ---- plain legs: the API worker ---- */

static void api_work(uv_work_t *w)
{
    struct lg *g = w->data;
    char err[256];
    unsigned fails = 0;

    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        uint32_t id;
        uint16_t port;

        if (l->kind != LG_KIND_RTP)
            continue;
        if (atomic_load(&g->api_abort))
            break;
        if (fails >= API_MAX_FAILURES ||
            lg_api_participant_add(&g->api, g->o.room, g->bridge_host, l->local_port, &id, &port,
                                   err, sizeof(err)) != 0) {
            if (fails++ == 0)
                fprintf(stderr, "chorus-loadgen: %s\n", err);
            atomic_store_explicit(&l->api_ready, -1, memory_order_release);
            continue;
        }
        fails = 0;
        l->participant = id;
        l->bridge_port = port;
        atomic_store_explicit(&l->api_ready, 1, memory_order_release);
    }
}

static void api_done(uv_work_t *w, int status)
{
    struct lg *g = w->data;

    (void)status;
    g->api_done = true;
}

/* Plain legs whose participant the worker has created (or failed to). */
static void poll_plain(struct lg *g, uint64_t now)
{
    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        int r;

        if (l->kind != LG_KIND_RTP || l->state != LG_LEG_IDLE)
            continue;
        r = atomic_load_explicit(&l->api_ready, memory_order_acquire);
        if (r == 0)
            continue;
        if (r < 0) {
            lg_on_failed(g, l, "the API refused the leg");
            continue;
        }
        if (l->dst.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&l->dst)->sin6_port = htons(l->bridge_port);
        else
            ((struct sockaddr_in *)&l->dst)->sin_port = htons(l->bridge_port);
        lg_on_joined(g, l, now);
    }
}

/* ---- window edges ---- */

static void edge_work(uv_work_t *w)
{
    struct lg *g = w->data;
    struct lg_edge *e = &g->edge[g->edge_idx];

    if (g->o.bridge_pid > 0)
        lg_proc_cpu_sample(g->o.bridge_pid, &e->bridge);
    e->bridge_drops = lg_proc_udp_drops(g->bridge_ports, g->n_bridge_ports);
    e->own_drops = lg_proc_udp_drops(g->own_ports, g->n);
    e->rcvbuf_errors = lg_proc_udp_rcvbuf_errors();
    lg_proc_host_cpu(&e->host_busy_ns, &e->host_total_ns);
    lg_api_metrics(&g->api_edge, &e->m);
}

static void edge_done(uv_work_t *w, int status)
{
    struct lg *g = w->data;

    (void)status;
    g->edge_busy = false;
}

static void edge_start(struct lg *g, unsigned idx, uint64_t now)
{
    g->edge_idx = idx;
    g->edge[idx].wall_ns = now;
    g->edge[idx].self_cpu_ns = lg_proc_self_cpu_ns();
    g->edge_busy = true;
    g->edge_work.data = g;
    if (uv_queue_work(g->loop, &g->edge_work, edge_work, edge_done) != 0) {
        edge_work(&g->edge_work);
        g->edge_busy = false;
    }
}

/* The bridge's ports, for its socket drop counter: the media port and the
 * plain legs' ports. */
static void collect_ports(struct lg *g)
{
    g->n_bridge_ports = 0;
    g->bridge_ports[g->n_bridge_ports++] =
        ntohs(g->bridge.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&g->bridge)->sin6_port
                                              : ((struct sockaddr_in *)&g->bridge)->sin_port);
    for (unsigned i = 0; i < g->n; i++) {
        if (g->legs[i].kind == LG_KIND_RTP && g->legs[i].bridge_port)
            g->bridge_ports[g->n_bridge_ports++] = g->legs[i].bridge_port;
        g->own_ports[i] = g->legs[i].local_port;
    }
}

/* ---- phases ---- */

static void teardown(struct lg *g);
static void leave_start(struct lg *g, uint64_t now);
static void leave_step(struct lg *g, uint64_t now);

/* Key request, then handshakes at --join-rate. */
static void join_step(struct lg *g, uint64_t now)
{
    struct lg_leg *first = NULL;
    uint64_t allowed;

    if (g->n_secure == 0)
        return;
    for (unsigned i = 0; i < g->n && !first; i++)
        first = g->legs[i].kind == LG_KIND_SECURE ? &g->legs[i] : NULL;
    if (!g->have_key) {
        if (now - g->key_sent_ns >= LG_KEY_RETRY_NS || g->key_sent_ns == 0) {
            lg_leg_key_request(first);
            g->key_sent_ns = now;
        }
        return;
    }
    allowed = (uint64_t)((double)(now - g->key_sent_ns) / 1e9 * g->o.join_rate) + 1;
    for (unsigned i = 0; i < g->n && g->hs_started < allowed; i++) {
        struct lg_leg *l = &g->legs[i];
        if (l->kind == LG_KIND_SECURE && l->state == LG_LEG_IDLE && !l->session_up) {
            lg_leg_connect(l, now);
            g->hs_started++;
        }
    }
}

/* The end of the run: plain legs stop sending at once (the API removes
 * them at teardown); secure legs say BYE at --leave-rate. Leaving in one
 * burst is a load test of its own: a bridge must absorb a mass departure,
 * but it is not what this tool measures. */
static void leave_start(struct lg *g, uint64_t now)
{
    g->phase = LG_PH_LEAVE;
    g->leave_start_ns = g->last_bye_ns = now;
    atomic_store(&g->api_abort, true);
    for (unsigned i = 0; i < g->n; i++)
        if (g->legs[i].kind == LG_KIND_RTP)
            lg_leg_bye(&g->legs[i]);
}

static void leave_step(struct lg *g, uint64_t now)
{
    uint64_t allowed = (uint64_t)((double)(now - g->leave_start_ns) / 1e9 * g->o.leave_rate) + 1;
    bool pending = false;

    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        if (l->kind != LG_KIND_SECURE || l->state != LG_LEG_JOINED)
            continue;
        if (g->byes >= allowed) {
            pending = true;
            break;
        }
        lg_leg_bye(l);
        g->byes++;
        g->last_bye_ns = now;
    }
    /* Half a second for the last goodbyes to be read before the sockets
     * close; the API worker must be done with the legs and the API. */
    if (!pending && now - g->last_bye_ns > 500000000ull && (g->n_rtp == 0 || g->api_done))
        teardown(g);
}

/* The join phase is over: legs still waiting count as failed; with no leg
 * in, there is nothing to measure. */
static void join_end(struct lg *g, uint64_t now)
{
    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        if (l->state == LG_LEG_HANDSHAKE)
            lg_on_failed(g, l, "no answer to the handshake in time");
        else if (l->state == LG_LEG_IDLE)
            lg_on_failed(g, l, l->kind == LG_KIND_RTP ? "not created over the API in time"
                               : g->have_key ? "not started in time (raise --join-timeout)"
                                             : "the bridge did not answer the key request");
    }
    g->joined_all_ns = now;
    g->phase = LG_PH_WARMUP;
    if (g->joined == 0)
        leave_start(g, now);
}

static bool all_settled(const struct lg *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        enum lg_leg_state s = g->legs[i].state;
        if (s == LG_LEG_IDLE || s == LG_LEG_HANDSHAKE)
            return false;
    }
    return g->n_rtp == 0 || g->api_done;
}

/* Takes the window's totals at its end, in the loop: the legs go on
 * receiving while the edge snapshot runs. */
static void window_end(struct lg *g, uint64_t now)
{
    struct lg_totals *t = &g->win;
    double secs = (double)(now - g->win_start_ns) / 1e9;

    g->win_end_ns = now;
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        uint64_t e, r;

        if (l->state != LG_LEG_JOINED)
            continue;
        lg_leg_window_counts(l, &e, &r);
        t->expected += e;
        t->received += r;
        t->by_time += (uint64_t)(secs * 1000 / LG_FRAME_MS);
        t->silent_legs += r == 0;
        t->listeners += l->listener != NULL;
        if (l->win_jitter_max_q4 > t->jitter_max_q4)
            t->jitter_max_q4 = l->win_jitter_max_q4;
    }
}

static void phase_step(struct lg *g, uint64_t now)
{
    switch (g->phase) {
    case LG_PH_JOIN:
        if (all_settled(g) || now - g->t0_ns > (uint64_t)(g->o.join_timeout * 1e9))
            join_end(g, now);
        break;
    case LG_PH_WARMUP:
        if (now - g->joined_all_ns >= (uint64_t)(g->o.warmup * 1e9) && !g->edge_busy) {
            collect_ports(g);
            for (unsigned i = 0; i < g->n; i++)
                lg_leg_window_start(&g->legs[i]);
            g->win_start_ns = now;
            g->phase = LG_PH_MEASURE;
            edge_start(g, 0, now);
        }
        break;
    case LG_PH_MEASURE:
        if ((now - g->win_start_ns >= (uint64_t)(g->o.seconds * 1e9) || g->stop_requested) &&
            !g->edge_busy) {
            window_end(g, now);
            g->phase = LG_PH_DRAIN;
            edge_start(g, 1, now);
        }
        break;
    case LG_PH_DRAIN:
        if (!g->edge_busy)
            leave_start(g, now);
        break;
    case LG_PH_LEAVE:
        leave_step(g, now);
        break;
    case LG_PH_DONE:
        break;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct lg *g = t->data;
    uint64_t now = uv_hrtime();

    if (g->phase == LG_PH_DONE)
        return;
    if (g->stop_requested && g->phase < LG_PH_MEASURE)
        leave_start(g, now);
    if (g->phase == LG_PH_JOIN)
        join_step(g, now);
    if (g->n_rtp && g->phase < LG_PH_LEAVE)
        poll_plain(g, now);
    for (unsigned i = 0; i < g->n; i++)
        lg_leg_pace(&g->legs[i], now);
    if (now >= g->next_timers_ns) {
        for (unsigned i = 0; i < g->n; i++)
            if (g->legs[i].kind == LG_KIND_SECURE)
                lg_leg_timers(&g->legs[i], now);
        g->next_timers_ns = now + LG_TIMERS_EVERY_NS;
    }
    phase_step(g, now);
}

/* Removes the plain legs and the room over the API (blocking: the media
 * has stopped), and closes every leg. */
static void teardown(struct lg *g)
{
    g->phase = LG_PH_DONE;
    uv_timer_stop(&g->tick);
    uv_close((uv_handle_t *)&g->tick, NULL);
    uv_close((uv_handle_t *)&g->sigint, NULL);
    for (unsigned i = 0; i < g->n; i++)
        if (g->legs[i].kind == LG_KIND_RTP && g->legs[i].participant)
            lg_api_participant_delete(&g->api, g->o.room, g->legs[i].participant);
    if (g->room_created && !g->o.keep_room)
        lg_api_room_delete(&g->api, g->o.room);
    for (unsigned i = 0; i < g->n; i++)
        lg_leg_close(&g->legs[i]);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    struct lg *g = s->data;

    (void)signum;
    g->stop_requested = true;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chorus-loadgen [options]\n"
            "Drives N legs into one room of a running chorus-bridge at the real packet\n"
            "rate, receives every mix, and prints one line per run: the bridge's CPU per\n"
            "leg, loss, jitter and the latency the bridge adds (markers in the audio).\n\n"
            "  --legs N            legs (default 10; 1..10000)\n"
            "  --talkers T         legs that talk, the others send silence (default 3; 0..16)\n"
            "  --kind K            secure, rtp or mixed (default secure)\n"
            "  --room NAME         room (default loadgen; created if missing, and then\n"
            "                      deleted at the end unless --keep-room)\n"
            "  --bridge HOST:PORT  the bridge's media address (default 127.0.0.1:33033)\n"
            "  --api URL           the REST API (default http://127.0.0.1:8080)\n"
            "  --token TOKEN       API token (default: $CHORUS_TOKEN, else\n"
            "                      <state-dir>/api-token)\n"
            "  --state-dir DIR     the bridge's state directory (default chorus-state)\n"
            "  --seconds S         measured window (default 10)\n"
            "  --warmup S          wait after the last join (default 2)\n"
            "  --join-rate R       secure handshakes per second (default 250)\n"
            "  --join-timeout S    time for all legs to join (default 30 + N/R)\n"
            "  --leave-rate R      secure legs leaving per second at the end (default 1000)\n"
            "  --listeners K       legs that decode their mix to time markers (default 4)\n"
            "  --bridge-pid PID    the bridge process (default: the one named chorus-bridge)\n"
            "  --bitrate BPS       Opus bitrate of the legs (default 32000)\n"
            "  --keep-room         do not delete a room the run created\n"
            "  --json              print one JSON object instead of a line\n"
            "  --help              this text\n\n"
            "Exit status: 0 measured, 1 the window was not reached (interrupted, no leg\n"
            "joined), 2 usage, 3 set-up failed (API, bridge, descriptors).\n");
}

static int num_opt(const char *name, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);

    if (*end || end == v || !(d >= lo && d <= hi)) {
        fprintf(stderr, "chorus-loadgen: --%s: %s is not a number in [%g, %g]\n", name, v, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int kind_opt(const char *v, enum lg_kind *k)
{
    if (strcmp(v, "secure") == 0)
        *k = LG_KIND_SECURE;
    else if (strcmp(v, "rtp") == 0)
        *k = LG_KIND_RTP;
    else if (strcmp(v, "mixed") == 0)
        *k = LG_KIND_MIXED;
    else {
        fprintf(stderr, "chorus-loadgen: --kind: %s is not secure, rtp or mixed\n", v);
        return -1;
    }
    return 0;
}

static void defaults(struct lg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->legs = 10;
    o->talkers = 3;
    o->kind = LG_KIND_SECURE;
    o->room = "loadgen";
    o->bridge = "127.0.0.1:33033";
    o->api = "http://127.0.0.1:8080";
    o->state_dir = "chorus-state";
    o->seconds = 10;
    o->warmup = 2;
    o->join_rate = 250;
    o->leave_rate = 1000;
    o->listeners = 4;
    o->bitrate = 32000;
    o->token = getenv("CHORUS_TOKEN");
}

static int parse(struct lg_opts *o, int argc, char **argv)
{
    enum { O_LEGS = 256, O_TALKERS, O_KIND, O_ROOM, O_BRIDGE, O_API, O_TOKEN, O_STATE, O_SECONDS,
           O_WARMUP, O_RATE, O_JTO, O_LEAVE, O_LISTENERS, O_PID, O_BITRATE, O_KEEP, O_JSON, O_HELP };
    static const struct option lo[] = {
        {"legs", 1, 0, O_LEGS}, {"talkers", 1, 0, O_TALKERS}, {"kind", 1, 0, O_KIND},
        {"room", 1, 0, O_ROOM}, {"bridge", 1, 0, O_BRIDGE}, {"api", 1, 0, O_API},
        {"token", 1, 0, O_TOKEN}, {"state-dir", 1, 0, O_STATE}, {"seconds", 1, 0, O_SECONDS},
        {"warmup", 1, 0, O_WARMUP}, {"join-rate", 1, 0, O_RATE}, {"join-timeout", 1, 0, O_JTO},
        {"leave-rate", 1, 0, O_LEAVE},
        {"listeners", 1, 0, O_LISTENERS}, {"bridge-pid", 1, 0, O_PID},
        {"bitrate", 1, 0, O_BITRATE}, {"keep-room", 0, 0, O_KEEP}, {"json", 0, 0, O_JSON},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0},
    };
    double d;
    int ch, rc = 0;

    defaults(o);
    while (rc == 0 && (ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case O_LEGS: rc = num_opt("legs", optarg, 1, LG_MAX_LEGS, &d); o->legs = (unsigned)d; break;
        case O_TALKERS:
            rc = num_opt("talkers", optarg, 0, LG_MAX_TALKERS, &d);
            o->talkers = (unsigned)d;
            break;
        case O_KIND: rc = kind_opt(optarg, &o->kind); break;
        case O_ROOM: o->room = optarg; break;
        case O_BRIDGE: o->bridge = optarg; break;
        case O_API: o->api = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_STATE: o->state_dir = optarg; break;
        case O_SECONDS: rc = num_opt("seconds", optarg, 0.5, 3600, &o->seconds); break;
        case O_WARMUP: rc = num_opt("warmup", optarg, 0, 600, &o->warmup); break;
        case O_RATE: rc = num_opt("join-rate", optarg, 1, 100000, &o->join_rate); break;
        case O_JTO: rc = num_opt("join-timeout", optarg, 1, 3600, &o->join_timeout); break;
        case O_LEAVE: rc = num_opt("leave-rate", optarg, 1, 100000, &o->leave_rate); break;
        case O_LISTENERS:
            rc = num_opt("listeners", optarg, 0, 64, &d);
            o->listeners = (unsigned)d;
            break;
        case O_PID: rc = num_opt("bridge-pid", optarg, 1, 4194304, &d); o->bridge_pid = (pid_t)d; break;
        case O_BITRATE:
            rc = num_opt("bitrate", optarg, 6000, 510000, &d);
            o->bitrate = (uint32_t)d;
            break;
        case O_KEEP: o->keep_room = true; break;
        case O_JSON: o->json = true; break;
        case O_HELP: usage(stdout); exit(EXIT_OK);
        default: return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "chorus-loadgen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->join_timeout == 0)
        o->join_timeout = 30 + o->legs / o->join_rate;
    return rc;
}

/* ---- set-up ---- */

static char token_buf[256];

static int load_token(struct lg *g)
{
    char path[4096];
    FILE *f;

    if (g->o.token && g->o.token[0])
        return 0;
    snprintf(path, sizeof(path), "%s/api-token", g->o.state_dir);
    if (!(f = fopen(path, "re"))) {
        fprintf(stderr, "chorus-loadgen: no --token and cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!fgets(token_buf, sizeof(token_buf), f))
        token_buf[0] = '\0';
    fclose(f);
    token_buf[strcspn(token_buf, "\r\n")] = '\0';
    g->o.token = token_buf;
    return 0;
}

static int resolve(struct lg *g)
{
    uint16_t port;

    if (brg_config_parse_hostport(g->o.bridge, strlen(g->o.bridge), g->bridge_host,
                                  sizeof(g->bridge_host), &port) != 0 || port == 0) {
        fprintf(stderr, "chorus-loadgen: --bridge: %s is not HOST:PORT\n", g->o.bridge);
        return -1;
    }
    if (uv_ip4_addr(g->bridge_host, port, (struct sockaddr_in *)&g->bridge) != 0 &&
        uv_ip6_addr(g->bridge_host, port, (struct sockaddr_in6 *)&g->bridge) != 0) {
        fprintf(stderr, "chorus-loadgen: --bridge: %s is not an IP address\n", g->bridge_host);
        return -1;
    }
    if (lg_api_parse(&g->api, g->o.api) != 0) {
        fprintf(stderr, "chorus-loadgen: --api: %s is not http://HOST:PORT\n", g->o.api);
        return -1;
    }
    if (load_token(g) != 0)
        return -1;
    g->api.token = g->o.token;
    /* The edge snapshots use a client of their own: the API worker may
     * still be creating legs on the other one. */
    g->api_edge = g->api;
    return 0;
}

/* One socket per leg: raise the soft descriptor limit to what the run
 * needs, within the hard limit. */
static int raise_fd_limit(unsigned legs)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)legs + FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "chorus-loadgen: %u legs need %llu descriptors but the hard limit is %llu "
                        "(raise it, e.g. ulimit -Hn)\n",
                legs, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

static int find_bridge(struct lg *g)
{
    pid_t p;

    if (g->o.bridge_pid)
        return 0;
    p = lg_proc_find("chorus-bridge");
    if (p == -EEXIST) {
        fprintf(stderr, "chorus-loadgen: several chorus-bridge processes run: say which with "
                        "--bridge-pid\n");
        return -1;
    }
    if (p == 0)
        fprintf(stderr, "chorus-loadgen: no chorus-bridge process found here: the bridge's CPU "
                        "will not be reported (--bridge-pid)\n");
    g->o.bridge_pid = p;
    return 0;
}

static int alloc_run(struct lg *g)
{
    g->n = g->o.legs;
    g->legs = calloc(g->n, sizeof(*g->legs));
    g->hs_ms = calloc(g->n, sizeof(*g->hs_ms));
    g->markers = calloc(LG_MAX_MARKERS, sizeof(*g->markers));
    g->samples = calloc(LG_MAX_SAMPLES, sizeof(*g->samples));
    g->bridge_ports = calloc(g->n + 1, sizeof(*g->bridge_ports));
    g->own_ports = calloc(g->n, sizeof(*g->own_ports));
    if (!g->legs || !g->hs_ms || !g->markers || !g->samples || !g->bridge_ports || !g->own_ports)
        return -ENOMEM;
    return 0;
}

static void free_run(struct lg *g)
{
    free(g->legs);
    free(g->hs_ms);
    free(g->markers);
    free(g->samples);
    free(g->bridge_ports);
    free(g->own_ports);
}

/* Kinds, talkers (spread) and listeners (the last silent legs). */
static int make_legs(struct lg *g)
{
    unsigned want = g->o.listeners;
    int rc;

    for (unsigned i = 0; i < g->n; i++) {
        struct lg_leg *l = &g->legs[i];
        l->kind = g->o.kind == LG_KIND_MIXED ? (i % 2 ? LG_KIND_RTP : LG_KIND_SECURE) : g->o.kind;
        g->n_secure += l->kind == LG_KIND_SECURE;
        g->n_rtp += l->kind == LG_KIND_RTP;
        if ((rc = lg_leg_init(g, l, i)) != 0) {
            fprintf(stderr, "chorus-loadgen: leg %u: %s\n", i, uv_strerror(rc));
            return rc;
        }
    }
    /* Talkers are spread over the legs, hence over the send phases (a
     * leg's phase in the frame is its index), so the latency figures see
     * several phases against the mixer's cycle. */
    for (unsigned j = 0; j < g->o.talkers && j < g->n; j++)
        g->legs[(uint64_t)j * g->n / g->o.talkers].talker = (int)j;
    for (unsigned i = g->n; i-- > 0 && want > 0;) {
        struct lg_leg *l = &g->legs[i];
        if (l->talker >= 0)
            continue;
        if (!(l->listener = calloc(1, sizeof(*l->listener))) ||
            lg_listener_init(l->listener, &g->audio) != 0)
            return -ENOMEM;
        want--;
    }
    return 0;
}

static int setup(struct lg *g)
{
    char err[256];
    int rc;

    if (resolve(g) != 0 || find_bridge(g) != 0)
        return -EINVAL;
    if ((rc = raise_fd_limit(g->o.legs)) != 0)
        return rc;
    if ((rc = lg_audio_init(&g->audio, g->o.talkers, g->o.bitrate, 10)) != 0) {
        fprintf(stderr, "chorus-loadgen: cannot pre-encode the audio\n");
        return rc;
    }
    rc = lg_api_room_ensure(&g->api, g->o.room, g->o.legs < 100 ? 100 : g->o.legs,
                            g->o.talkers ? g->o.talkers : 1, &g->room_created, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "chorus-loadgen: %s\n", err);
        return rc;
    }
    if ((rc = alloc_run(g)) != 0)
        return rc;
    return make_legs(g);
}

static int start_loop(struct lg *g)
{
    int rc;

    g->t0_ns = uv_hrtime();
    uv_timer_init(g->loop, &g->tick);
    g->tick.data = g;
    uv_signal_init(g->loop, &g->sigint);
    g->sigint.data = g;
    uv_signal_start(&g->sigint, on_sigint, SIGINT);
    if (g->n_rtp) {
        g->api_work.data = g;
        if ((rc = uv_queue_work(g->loop, &g->api_work, api_work, api_done)) != 0)
            return rc;
    }
    return uv_timer_start(&g->tick, on_tick, LG_TICK_MS, LG_TICK_MS);
}

int main(int argc, char **argv)
{
    static struct lg g;

    signal(SIGPIPE, SIG_IGN);
    /* Timer slack: the pacing timer wants to wake within microseconds. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (parse(&g.o, argc, argv) != 0) {
        fprintf(stderr, "Try 'chorus-loadgen --help'.\n");
        return EXIT_USAGE;
    }
    if (sodium_init() < 0)
        return EXIT_SETUP;
    g.loop = uv_default_loop();
    if (setup(&g) != 0 || start_loop(&g) != 0) {
        if (g.room_created && !g.o.keep_room)
            lg_api_room_delete(&g.api, g.o.room);
        return EXIT_SETUP;
    }
    uv_run(g.loop, UV_RUN_DEFAULT);
    if (g.win_end_ns == 0) {
        fprintf(stderr, "chorus-loadgen: stopped before the measured window%s%s\n",
                g.first_error[0] ? "; first failure: " : "", g.first_error);
        return EXIT_RUN;
    }
    lg_report_print(&g, stdout);
    uv_loop_close(g.loop);
    free_run(&g);
    return g.joined ? EXIT_OK : EXIT_RUN;
}
