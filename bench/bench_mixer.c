/*
 * bench_mixer.c: in-process benchmark of the mixing engine alone
 * (chorus-bench-mixer). It prints figures; it is not a test.
 *
 * Each case builds a fresh engine with one real worker thread (SCHED_FIFO
 * when the system allows it), starts it, creates the rooms and legs, and
 * then plays the network side on the main thread at real pace: every 20 ms
 * it pushes one packet per leg, drains every leg's output and polls events.
 * Figures come from mix_engine_stats over a measured window that follows a
 * warm-up. Every case runs in three modes:
 *  - topk: the engine's defaults (the K loudest talkers mixed, one shared
 *    encode per encoder group, mix-minus encodes only for the talkers);
 *  - fwd: the same with the room setting forward_single_talker on, so a
 *    listener who hears exactly one talker gets that talker's own packets
 *    (no decode, no encode): it pays off in rooms of one or two talkers;
 *  - naive: the engine's baseline mode (no top-K, every leg summed, one
 *    encode per listener: what Janus AudioBridge and FreeSWITCH do), for a
 *    side-by-side ratio.
 * Note that naive mode, like top-K,
 * does not decode packets whose RFC 6464 level says silence, so with this
 * traffic it decodes only the talkers; decoding is cheap next to encoding.
 *
 * Traffic. The audio is encoded once before any case runs, so the loop side
 * costs little: each talker sends a 1 s loop of a steady tone of its own
 * (Opus, 48 kHz, 20 ms, complexity 10, 32 kb/s, in-band FEC) with the
 * RFC 6464 level measured on the PCM and the V bit set; every other leg
 * sends an Opus-encoded silence frame every 20 ms with level 127 and V clear
 * (continuous sending, as Skype does, rather than DTX). Packets are pushed
 * 5 ms after the worker's even cycles, so that they do not race the
 * playout of the frame they belong to.
 *
 * Thread: the main thread is the engine's "loop" thread throughout.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <opus/opus.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mix_engine.h"
#include "mix_ops.h"

enum {
    RATE = 48000,
    FRAME_MS = 20,
    FRAME = RATE / 1000 * FRAME_MS,     /* samples per frame */
    LOOP_FRAMES = 1000 / FRAME_MS,      /* a 1 s loop of packets */
    N_TONES = 3,                        /* distinct talker streams */
    TX_BITRATE = 32000,
    TX_COMPLEXITY = 10,
    ENGINE_BITRATE = 32000,                /* the engine's default at 48 kHz */
    SILENCE_PRIME_FRAMES = 10,          /* frames before silence is steady */
    SEQ_SPREAD = 7919,                  /* primes: legs start at unrelated */
    TS_SPREAD = 104729,                 /*   RTP sequence numbers and times */
    PUSH_OFFSET_MS = 5,                 /* after the worker's even cycles */
    NAIVE_MAX_TICKS = 50,               /* cap of a naive measured window */
    CREATE_RETRIES = 10000,             /* 1 ms each: command ring full */
    MAX_CASES = 16,
    CPU_NAME = 96,
};

static const uint64_t MS = 1000000ull;
static const double FULL_SCALE = 32767.0;     /* amplitude of a 0 dBFS sine */
static const uint64_t SNAP_WAIT_NS = 2000000000ull;
static const double DEFAULT_SECONDS = 4.0;
static const double QUICK_SECONDS = 1.0;
static const double NAIVE_MAX_SECONDS = 2.0;
static const double WARM_SECONDS = 0.5;
static const double QUICK_WARM_SECONDS = 0.3;

/* Talker streams: frequency (whole Hz, so a 1 s loop is seamless) and level. */
static const double TONE_HZ[N_TONES] = {440.0, 554.0, 659.0};
static const double TONE_DBFS[N_TONES] = {-12.0, -16.0, -20.0};

struct opts {
    bool json;              /* one JSON object per case on stdout */
    bool quick;             /* reduced set for CI smoke runs */
    double seconds;         /* measured window of a top-K case */
    double naive_seconds;   /* cap of a naive window (wall) */
    double warm_seconds;    /* warm-up before the baseline */
    const char *only;       /* run only the cases of this name, or NULL */
};

/* One pre-encoded packet. */
struct pkt {
    uint16_t len;
    uint8_t level;          /* RFC 6464 level sent with it */
    uint8_t data[MIX_MAX_PACKET];
};

/* All the audio the loop side sends, encoded once. */
struct traffic {
    struct pkt tone[N_TONES][LOOP_FRAMES];
    struct pkt silence;
};

enum mode {
    MODE_TOPK = 0,          /* engine defaults */
    MODE_FWD,               /* forward_single_talker on */
    MODE_NAIVE,             /* the engine's baseline mode */
};

struct bench_case {
    const char *name;
    uint32_t rooms;
    uint32_t legs_per_room;
    uint32_t talkers;       /* per room; 0: 1 or 2, alternating by pairs */
    enum mode mode;
    bool goal;              /* the "1,000 legs in one core" case */
};

/* Loop-side state of one leg. */
struct bleg {
    struct mix_leg *leg;
    int tone;               /* talker stream, or -1 for a silent leg */
    uint16_t seq;           /* next RTP sequence number */
    uint32_t ts;            /* next RTP timestamp */
};

/* Sums of mix_leg_stats over every leg of a case. */
struct legsum {
    uint64_t in_dropped, out_dropped, late, lost, concealed;
    uint64_t packets_in, packets_out;
    uint32_t mixed;         /* legs among the K loudest now */
};

struct snap {
    struct mix_engine_stats s;
    struct legsum ls;
    uint64_t ns;
};

struct run {
    struct mix_engine *e;
    const struct bench_case *c;
    struct bleg *legs;
    uint32_t nlegs;
    uint64_t start_ns;      /* about when the worker's cycle 0 began */
    uint64_t late_events;   /* MIX_EV_LATE_CYCLE seen */
    uint64_t talk_events;   /* MIX_EV_TALKING seen */
    int rt;                 /* MIX_EV_RT_PRIORITY value (0: not seen yet) */
    uint64_t popped;        /* packets taken from output rings */
    long rss0_kib;          /* before the legs */
    long rss_created_kib;   /* right after creating them */
    long rss_running_kib;   /* at the end of the warm-up */
    uint8_t buf[MIX_MAX_PACKET];
};

struct result {
    const struct bench_case *c;
    uint32_t legs;
    uint32_t talkers;       /* talkers in all rooms */
    double window_s;        /* wall time measured */
    double speed;           /* audio time mixed / wall time (1: real time) */
    double util;            /* busy time / audio time mixed, fraction of a core */
    double legs_per_core;
    uint64_t p50_us, p99_us, max_us;
    uint64_t missed, missed_total, busy_cycles;
    uint64_t late_events, talk_events, popped; /* whole run */
    double enc_per_tick, dec_per_tick;
    double out_per_in;      /* packets out per packet in, in the window */
    struct legsum ls;       /* whole run, except late/lost/concealed: window */
    double kib_created, kib_running;
    int rt;
    bool goal_pass;
};

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: chorus-bench-mixer [--json] [--quick] [--seconds S] [--case NAME] [--help]\n");
    fprintf(f, "  Benchmarks the mixing engine alone, one line of figures per case:\n");
    fprintf(f, "  one room of 10, 100, 1000 and 2000 legs with 3 talkers, and 200 rooms of\n");
    fprintf(f, "  5 legs with 1-2 talkers each, in three modes: top-K, top-K with a lone\n");
    fprintf(f, "  talker's packets forwarded (fwd), and naive.\n");
    fprintf(f, "  --json       one JSON object per case on stdout, nothing else\n");
    fprintf(f, "  --quick      reduced set (10 and 100 legs, 20 rooms), 1 s each\n");
    fprintf(f, "  --seconds S  measured window of a top-K or fwd case (default 4; naive cases\n");
    fprintf(f, "               stop after at most 2 s or 50 ticks)\n");
    fprintf(f, "  --case NAME  run only the cases called NAME, all modes (for profiling)\n");
}

/* Parses argv into @o. Returns 0, 1 when --help was given, or -EINVAL. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    bool seconds_set = false;

    *o = (struct opts){.seconds = DEFAULT_SECONDS, .warm_seconds = WARM_SECONDS};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            o->only = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            o->seconds = strtod(argv[++i], &end);
            if (*end || !(o->seconds >= 0.1 && o->seconds <= 3600.0))
                return -EINVAL;
            seconds_set = true;
        } else {
            return -EINVAL;
        }
    }
    if (o->quick) {
        o->warm_seconds = QUICK_WARM_SECONDS;
        if (!seconds_set)
            o->seconds = QUICK_SECONDS;
    }
    o->naive_seconds = o->seconds < NAIVE_MAX_SECONDS ? o->seconds : NAIVE_MAX_SECONDS;
    return 0;
}

/* ---- traffic ---- */

static OpusEncoder *tx_encoder(void)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);

    if (!enc)
        return NULL;
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(TX_BITRATE));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(TX_COMPLEXITY));
    opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(10));
    return enc;
}

/* Encodes @pcm (one frame) into @p with @level. Returns 0 or -EIO. */
static int encode_frame(OpusEncoder *enc, const int16_t *pcm, uint8_t level,
                        struct pkt *p)
{
    int n = opus_encode(enc, pcm, FRAME, p->data, MIX_MAX_PACKET);

    if (n <= 0)
        return -EIO;
    p->len = (uint16_t)n;
    p->level = level;
    return 0;
}

/* Encodes a 1 s loop of tone @i. The first second primes the encoder and is
 * thrown away, so the loop wraps around without a restart of the encoder's
 * prediction. Returns 0 or -EIO. */
static int encode_tone(struct traffic *t, unsigned i, OpusEncoder *enc)
{
    double amp = FULL_SCALE * pow(10.0, TONE_DBFS[i] / 20.0);
    int16_t pcm[FRAME];

    for (unsigned f = 0; f < 2 * LOOP_FRAMES; f++) {
        struct pkt *p = &t->tone[i][f % LOOP_FRAMES];
        for (unsigned s = 0; s < FRAME; s++) {
            double x = (double)((f % LOOP_FRAMES) * FRAME + s) / RATE;
            pcm[s] = (int16_t)lrint(amp * sin(2.0 * M_PI * TONE_HZ[i] * x));
        }
        if (encode_frame(enc, pcm, mix_ops_level(pcm, FRAME), p) != 0)
            return -EIO;
    }
    return 0;
}

/* Builds every packet the loop side sends. Returns 0, -ENOMEM or -EIO. */
static int traffic_build(struct traffic *t)
{
    int16_t zeros[FRAME] = {0};
    int rc = 0;

    for (unsigned i = 0; i < N_TONES && rc == 0; i++) {
        OpusEncoder *enc = tx_encoder();
        if (!enc)
            return -ENOMEM;
        rc = encode_tone(t, i, enc);
        opus_encoder_destroy(enc);
    }
    if (rc == 0) {
        OpusEncoder *enc = tx_encoder();
        if (!enc)
            return -ENOMEM;
        /* A steady-state silence frame, not the encoder's first. */
        for (int i = 0; i < SILENCE_PRIME_FRAMES && rc == 0; i++)
            rc = encode_frame(enc, zeros, MIX_LEVEL_SILENT, &t->silence);
        opus_encoder_destroy(enc);
    }
    return rc;
}

/* ---- system ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000ull),
        .tv_nsec = (long)(deadline_ns % 1000000000ull),
    };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Resident set size in KiB, or 0 when /proc is not readable. */
static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The CPU model from /proc/cpuinfo, for tracking figures across machines. */
static void cpu_name(char *out, size_t cap)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, cap, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        snprintf(out, cap, "%s", colon + 2);
        out[strcspn(out, "\n\"\\")] = '\0';
        break;
    }
    fclose(f);
}

/* ---- one case: set-up ---- */

static void on_event(const struct mix_event *ev, void *data)
{
    struct run *r = data;

    switch (ev->type) {
    case MIX_EV_LATE_CYCLE:
        r->late_events++;
        break;
    case MIX_EV_TALKING:
        r->talk_events++;
        break;
    case MIX_EV_RT_PRIORITY:
        r->rt = (int)ev->value;
        break;
    default:
        break;
    }
}

static uint32_t room_talkers(const struct bench_case *c, uint32_t room)
{
    /* Pairs of rooms alternate, so that both frame phases of the worker
     * (the engine picks a room's phase from its id) get both kinds. */
    uint32_t n = c->talkers ? c->talkers : 1 + room / 2 % 2;

    return n < c->legs_per_room ? n : c->legs_per_room;
}

/* Waits for room in the command ring: the worker drains it every 10 ms. */
static bool ring_wait(struct run *r, unsigned *tries)
{
    if (++*tries > CREATE_RETRIES)
        return false;
    mix_engine_poll(r->e, on_event, r);
    sleep_until(now_ns() + MS);
    return true;
}

/* Creates room @i and its legs, the first ones talkers. Returns 0 or a
 * negative errno. */
static int room_build(struct run *r, uint32_t i)
{
    const struct bench_case *c = r->c;
    struct mix_room_settings s;
    struct mix_room *room;
    unsigned tries = 0;
    int rc;

    mix_room_settings_default(&s);
    s.naive = c->mode == MODE_NAIVE;
    s.forward_single_talker = c->mode == MODE_FWD;
    while ((rc = mix_room_new(r->e, i, NULL, &s, &room)) == -EAGAIN)
        if (!ring_wait(r, &tries))
            break;
    if (rc)
        return rc;
    for (uint32_t j = 0; j < c->legs_per_room; j++) {
        struct bleg *b = &r->legs[r->nlegs];
        struct mix_leg_config lc;

        mix_leg_config_default(&lc);
        lc.id = j;
        lc.user = b;
        while ((rc = mix_leg_new(room, &lc, &b->leg)) == -EAGAIN)
            if (!ring_wait(r, &tries))
                break;
        if (rc)
            return rc;
        b->tone = j < room_talkers(c, i) ? (int)j : -1;
        b->seq = (uint16_t)(r->nlegs * SEQ_SPREAD);
        b->ts = r->nlegs * TS_SPREAD;
        r->nlegs++;
    }
    return 0;
}

/* Starts an engine for case @c and creates its rooms and legs. Returns 0 or
 * a negative errno (the caller frees what was built with run_free). */
static int run_setup(struct run *r, const struct bench_case *c)
{
    struct mix_engine_config cfg = {.workers = 1, .realtime = true};
    int rc;

    r->c = c;
    r->legs = calloc((size_t)c->rooms * c->legs_per_room, sizeof(*r->legs));
    if (!r->legs)
        return -ENOMEM;
    rc = mix_engine_new(&cfg, &r->e);
    if (rc)
        return rc;
    rc = mix_engine_start(r->e);
    if (rc)
        return rc;
    r->start_ns = mix_engine_now_ns(r->e);
    r->rss0_kib = rss_kib();
    for (uint32_t i = 0; i < c->rooms && rc == 0; i++)
        rc = room_build(r, i);
    r->rss_created_kib = rss_kib();
    return rc;
}

static void run_free(struct run *r)
{
    if (r->e) {
        mix_engine_stop(r->e);
        mix_engine_free(r->e);
    }
    free(r->legs);
    /* Give freed heap pages back, so the next case's RSS growth is its own. */
    malloc_trim(0);
}

/* ---- one case: the loop side ---- */

/* Thread: loop. Queues this frame's packet of @b. */
static void push_one(struct bleg *b, const struct traffic *t, uint32_t frame,
                     uint64_t arrival_ns)
{
    const struct pkt *p = b->tone >= 0 ? &t->tone[b->tone][frame % LOOP_FRAMES]
                                       : &t->silence;
    struct mix_in_meta m = {
        .seq = b->seq++,
        .ts = b->ts,
        .arrival_ns = arrival_ns,
        .level = p->level,
        .vad = p->level != MIX_LEVEL_SILENT,
    };

    b->ts += FRAME;
    /* -ENOSPC is counted by the engine (in_dropped) and reported. */
    (void)mix_leg_push(b->leg, &m, p->data, p->len);
}

/* Thread: loop. One 20 ms tick of the network side: a packet in per leg,
 * every queued packet out, then the engine's events. */
static void tick(struct run *r, const struct traffic *t, uint32_t frame)
{
    uint64_t arrival = mix_engine_now_ns(r->e);
    struct mix_out_meta m;

    for (uint32_t i = 0; i < r->nlegs; i++)
        push_one(&r->legs[i], t, frame, arrival);
    for (uint32_t i = 0; i < r->nlegs; i++)
        while (mix_leg_pop(r->legs[i].leg, &m, r->buf, sizeof(r->buf)) >= 0)
            r->popped++;
    mix_engine_poll(r->e, on_event, r);
}

static void legs_sum(const struct run *r, struct legsum *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < r->nlegs; i++) {
        struct mix_leg_stats s;

        mix_leg_stats(r->legs[i].leg, &s);
        out->in_dropped += s.in_dropped;
        out->out_dropped += s.out_dropped;
        out->late += s.late;
        out->lost += s.lost;
        out->concealed += s.concealed;
        out->packets_in += s.packets_in;
        out->packets_out += s.packets_out;
        out->mixed += s.mixed;
    }
}

/* Snapshots the counters right after a busy cycle ends. The encode and
 * decode counters move during a cycle while busy_cycles and busy_ns move at
 * its end, so a snapshot taken in the middle of a long (naive) cycle would
 * count part of its encodes against the wrong ticks. busy_ns is written last
 * of the cycle's counters; the next cycle needs its ingest and pull before
 * it encodes, which leaves ample time to read. Spins for at most
 * SNAP_WAIT_NS (then takes the snapshot anyway). */
static void take_snap(const struct run *r, struct snap *s)
{
    struct mix_engine_stats first;
    uint64_t give_up = now_ns() + SNAP_WAIT_NS;

    mix_engine_stats(r->e, &first);
    do {
        mix_engine_stats(r->e, &s->s);
    } while (s->s.busy_ns == first.busy_ns && now_ns() < give_up);
    s->ns = mix_engine_now_ns(r->e);
    legs_sum(r, &s->ls);
}

/* True when the measured window that began at @base is over. */
static bool window_done(const struct opts *o, const struct run *r,
                        const struct snap *base, uint64_t now)
{
    struct mix_engine_stats s;
    bool naive = r->c->mode == MODE_NAIVE;
    double secs = naive ? o->naive_seconds : o->seconds;

    if (now - base->ns >= (uint64_t)(secs * 1e9))
        return true;
    if (!naive)
        return false;
    mix_engine_stats(r->e, &s);
    return s.busy_cycles - base->s.busy_cycles >= NAIVE_MAX_TICKS;
}

/* Thread: loop. Plays the network side at real pace through the warm-up and
 * the measured window, and leaves the snapshots of both ends in @base and
 * @end. */
static void run_loop(const struct opts *o, struct run *r,
                     const struct traffic *t, struct snap *base, struct snap *end)
{
    uint64_t period = FRAME_MS * MS, now = mix_engine_now_ns(r->e);
    /* First push instant: PUSH_OFFSET_MS after an even worker cycle. */
    uint64_t t0 = r->start_ns + ((now - r->start_ns) / period + 1) * period +
                  PUSH_OFFSET_MS * MS;
    uint64_t warm_end = t0 + (uint64_t)(o->warm_seconds * 1e9);
    bool measuring = false;

    for (uint32_t frame = 0;; frame++) {
        sleep_until(t0 + frame * period);
        tick(r, t, frame);
        now = mix_engine_now_ns(r->e);
        if (!measuring && now >= warm_end) {
            take_snap(r, base);
            r->rss_running_kib = rss_kib();
            measuring = true;
        } else if (measuring && window_done(o, r, base, now)) {
            take_snap(r, end);
            return;
        }
    }
}

/* ---- one case: figures ---- */

static double kib_per_leg(long after, long before, uint32_t legs)
{
    return legs ? (double)(after - before) / legs : 0.0;
}

static void result_fill(struct result *res, const struct run *r,
                        const struct snap *b, const struct snap *e)
{
    struct mix_engine_stats d = e->s;
    uint64_t busy = e->s.busy_cycles - b->s.busy_cycles;
    double audio_s = (double)(e->s.cycles - b->s.cycles) * MIX_CYCLE_MS / 1e3;

    for (unsigned i = 0; i < MIX_TICK_BUCKETS; i++)
        d.hist[i] -= b->s.hist[i];
    res->c = r->c;
    res->legs = r->nlegs;
    for (uint32_t i = 0; i < r->nlegs; i++)
        res->talkers += r->legs[i].tone >= 0;
    res->window_s = (double)(e->ns - b->ns) / 1e9;
    res->speed = res->window_s > 0 ? audio_s / res->window_s : 0;
    /* Busy time over the audio time mixed, not over wall time: a naive case
     * that cannot keep up would otherwise show 100 % whatever its cost. */
    res->util = audio_s > 0 ? (double)(e->s.busy_ns - b->s.busy_ns) / (audio_s * 1e9) : 0;
    res->legs_per_core = res->util > 0 ? r->nlegs / res->util : 0;
    res->p50_us = mix_engine_cycle_percentile_us(&d, 50.0);
    res->p99_us = mix_engine_cycle_percentile_us(&d, 99.0);
    res->max_us = e->s.max_cycle_ns / 1000;
    res->missed = e->s.missed - b->s.missed;
    res->missed_total = e->s.missed;
    res->busy_cycles = busy;
    res->late_events = r->late_events;
    res->talk_events = r->talk_events;
    res->popped = r->popped;
    res->enc_per_tick = busy ? (double)(e->s.encodes - b->s.encodes) / busy : 0;
    res->dec_per_tick = busy ? (double)(e->s.decodes - b->s.decodes) / busy : 0;
    if (e->ls.packets_in > b->ls.packets_in)
        res->out_per_in = (double)(e->ls.packets_out - b->ls.packets_out) /
                          (double)(e->ls.packets_in - b->ls.packets_in);
    res->ls = e->ls;
    res->ls.late = e->ls.late - b->ls.late;
    res->ls.lost = e->ls.lost - b->ls.lost;
    res->ls.concealed = e->ls.concealed - b->ls.concealed;
    res->kib_created = kib_per_leg(r->rss_created_kib, r->rss0_kib, r->nlegs);
    res->kib_running = kib_per_leg(r->rss_running_kib, r->rss0_kib, r->nlegs);
    res->rt = r->rt;
    res->goal_pass = r->c->goal && res->missed_total == 0 && res->util < 1.0;
}

/* Runs case @c into @res. Returns 0 or a negative errno. */
static int case_run(const struct opts *o, const struct traffic *t,
                    const struct bench_case *c, struct result *res)
{
    struct run *r = calloc(1, sizeof(*r));
    struct snap base, end;
    int rc;

    if (!r)
        return -ENOMEM;
    rc = run_setup(r, c);
    if (rc == 0) {
        run_loop(o, r, t, &base, &end);
        result_fill(res, r, &base, &end);
    }
    run_free(r);
    free(r);
    return rc;
}

/* ---- output ---- */

static const char *mode_name(const struct bench_case *c)
{
    switch (c->mode) {
    case MODE_FWD:
        return "fwd";
    case MODE_NAIVE:
        return "naive";
    case MODE_TOPK:
        break;
    }
    return "topk";
}

static void print_header(const struct opts *o)
{
    char cpu[CPU_NAME];

    cpu_name(cpu, sizeof(cpu));
    printf("# chorus-bench-mixer: the mixing engine alone, 1 worker thread, %ld CPUs (%s)\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu);
    printf("# rooms: %d Hz, %d ms frames, K=%d; legs: Opus %d Hz, complexity %d, %d b/s out\n",
           RATE, FRAME_MS, MIX_DEFAULT_K, RATE, TX_COMPLEXITY, ENGINE_BITRATE);
    printf("# traffic: talkers send 1 s loops of steady tones (%.0f/%.0f/%.0f dBFS) with the RFC 6464 level\n",
           TONE_DBFS[0], TONE_DBFS[1], TONE_DBFS[2]);
    printf("#   of the PCM; other legs send Opus silence every %d ms with level 127 (continuous sending)\n",
           FRAME_MS);
    printf("# modes: topk = engine defaults; fwd = topk with forward_single_talker (a listener who\n");
    printf("#   hears one talker gets its packets as they came); naive = baseline, one encode per leg\n");
    printf("# window: %.1f s after %.1f s warm-up; naive cases stop at %.1f s or %d ticks\n",
           o->seconds, o->warm_seconds, o->naive_seconds, NAIVE_MAX_TICKS);
    printf("# tick = busy 10 ms worker cycle; p50/p99 = histogram bucket upper bounds (12.5 %%);\n");
    printf("#   max = whole run; util = busy time / audio time mixed; legs/core = legs / util\n");
    printf("#   (linear extrapolation); speed = audio mixed / wall time; out/in = packets sent per\n");
    printf("#   packet received (1.00 when every listener gets every frame; below 1 the jitter buffers\n");
    printf("#   overflow, which mix_leg_stats does not count); drops = ring drops, whole run;\n");
    printf("#   kib/leg = RSS growth per leg after the warm-up\n");
    printf("%-12s %-5s %5s %5s %4s %7s %7s %7s %6s %8s %8s %7s %9s %5s %6s %5s %7s\n",
           "case", "mode", "legs", "rooms", "talk", "p50us", "p99us", "maxus",
           "missed", "enc/tick", "dec/tick", "util%", "legs/core", "speed",
           "out/in", "drops", "kib/leg");
    fflush(stdout);
}

static void print_line(const struct result *r)
{
    printf("%-12s %-5s %5" PRIu32 " %5" PRIu32 " %4" PRIu32 " %7" PRIu64 " %7" PRIu64
           " %7" PRIu64 " %6" PRIu64 " %8.1f %8.1f %7.2f %9.0f %5.2f %6.2f %5" PRIu64 " %7.1f\n",
           r->c->name, mode_name(r->c), r->legs, r->c->rooms, r->talkers,
           r->p50_us, r->p99_us, r->max_us, r->missed, r->enc_per_tick,
           r->dec_per_tick, r->util * 100.0, r->legs_per_core, r->speed,
           r->out_per_in, r->ls.in_dropped + r->ls.out_dropped, r->kib_running);
    fflush(stdout);
}

/* The result of the case called like @r's in mode @mode, or NULL. */
static const struct result *find_mode(const struct result *res, unsigned n,
                                      const struct result *r, enum mode mode)
{
    for (unsigned i = 0; i < n; i++)
        if (res[i].c->mode == mode && strcmp(res[i].c->name, r->c->name) == 0)
            return &res[i];
    return NULL;
}

/* One JSON object for @r. A naive result also carries its ratios to the
 * top-K and fwd results of the same case among @res[0..n), when they ran. */
static void print_json(const struct result *r, const struct result *res,
                       unsigned n, const char *cpu)
{
    const struct result *topk = NULL, *fwd = NULL;

    if (r->c->mode == MODE_NAIVE) {
        topk = find_mode(res, n, r, MODE_TOPK);
        fwd = find_mode(res, n, r, MODE_FWD);
    }
    printf("{\"bench\":\"mixer\",\"unix_time\":%lld,\"cpu\":\"%s\",\"case\":\"%s\","
           "\"mode\":\"%s\",\"legs\":%" PRIu32 ",\"rooms\":%" PRIu32 ",\"talkers\":%" PRIu32 ","
           "\"rate\":%d,\"frame_ms\":%d,\"k\":%d,\"complexity\":%d,\"realtime\":%s,",
           (long long)time(NULL), cpu, r->c->name, mode_name(r->c), r->legs,
           r->c->rooms, r->talkers, RATE, FRAME_MS, MIX_DEFAULT_K, TX_COMPLEXITY,
           r->rt == 1 ? "true" : "false");
    printf("\"window_s\":%.3f,\"speed\":%.3f,\"busy_ticks\":%" PRIu64 ",\"p50_us\":%" PRIu64
           ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64 ",\"missed\":%" PRIu64
           ",\"missed_total\":%" PRIu64 ",\"encodes_per_tick\":%.2f,\"decodes_per_tick\":%.2f,"
           "\"util\":%.5f,\"legs_per_core\":%.0f,",
           r->window_s, r->speed, r->busy_cycles, r->p50_us, r->p99_us, r->max_us,
           r->missed, r->missed_total, r->enc_per_tick, r->dec_per_tick, r->util,
           r->legs_per_core);
    printf("\"out_per_in\":%.4f,\"in_dropped\":%" PRIu64 ",\"out_dropped\":%" PRIu64 ",\"packets_in\":%" PRIu64
           ",\"packets_out\":%" PRIu64 ",\"jb_late\":%" PRIu64 ",\"jb_lost\":%" PRIu64
           ",\"jb_concealed\":%" PRIu64 ",\"packets_popped\":%" PRIu64
           ",\"late_cycle_events\":%" PRIu64 ",\"talking_events\":%" PRIu64
           ",\"talkers_mixed\":%" PRIu32
           ",\"rss_kib_per_leg_created\":%.1f,\"rss_kib_per_leg_running\":%.1f",
           r->out_per_in, r->ls.in_dropped, r->ls.out_dropped, r->ls.packets_in, r->ls.packets_out,
           r->ls.late, r->ls.lost, r->ls.concealed, r->popped, r->late_events,
           r->talk_events, r->ls.mixed, r->kib_created,
           r->kib_running);
    if (topk && r->legs_per_core > 0)
        printf(",\"topk_over_naive\":%.2f", topk->legs_per_core / r->legs_per_core);
    if (fwd && r->legs_per_core > 0)
        printf(",\"fwd_over_naive\":%.2f", fwd->legs_per_core / r->legs_per_core);
    if (r->c->goal)
        printf(",\"goal_pass\":%s", r->goal_pass ? "true" : "false");
    printf("}\n");
    fflush(stdout);
}

/* Prints ", <what> N legs/core (R.Rx)" for @r, R its multiple of naive
 * result @nv; nothing when @r is NULL (that mode did not run). */
static void print_ratio_part(const char *what, const struct result *r,
                             const struct result *nv)
{
    if (!r)
        return;
    printf(", %s %.0f legs/core (%.1fx)", what, r->legs_per_core,
           r->legs_per_core / nv->legs_per_core);
}

/* One line per case: legs per core of each mode and how many times the
 * naive figure the other two are. */
static void print_ratios(const struct result *res, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const struct result *nv = &res[i], *tk, *fw;

        if (nv->c->mode != MODE_NAIVE || nv->legs_per_core <= 0)
            continue;
        tk = find_mode(res, n, nv, MODE_TOPK);
        fw = find_mode(res, n, nv, MODE_FWD);
        if (!tk && !fw)
            continue;
        printf("ratio %-12s naive %.0f legs/core (%.2fx real time)", nv->c->name,
               nv->legs_per_core, nv->speed);
        print_ratio_part("topk", tk, nv);
        print_ratio_part("fwd", fw, nv);
        printf("\n");
    }
}

/* Prints the goal verdict to @f; nothing when the goal case did not run. */
static void print_goal(FILE *f, const struct result *res, unsigned n,
                       const struct opts *o)
{
    for (unsigned i = 0; i < n; i++) {
        const struct result *r = &res[i];
        if (!r->c->goal)
            continue;
        fprintf(f, "goal 1000 legs/3 talkers/1 core/0 missed: %s (util %.1f %%, %" PRIu64
                " missed since start, worker %s)\n",
                r->goal_pass ? "PASS" : "FAIL", r->util * 100.0, r->missed_total,
                r->rt == 1 ? "SCHED_FIFO" : "not realtime");
        return;
    }
    fprintf(f, "goal 1000 legs/3 talkers/1 core/0 missed: not run (%s)\n",
            o->quick ? "--quick" : "--case");
}

static void print_sched(const struct result *res, unsigned n)
{
    bool all_rt = true;

    for (unsigned i = 0; i < n; i++)
        all_rt &= res[i].rt == 1;
    printf("# worker scheduling: %s\n",
           all_rt ? "SCHED_FIFO in every case"
                  : "normal in some cases (SCHED_FIFO refused; figures are noisier)");
}

/* ---- main ---- */

/* Every case in each mode in turn: top-K, then fwd, then naive (slowest). */
static const struct bench_case FULL[] = {
    {"room-10", 1, 10, 3, MODE_TOPK, false},
    {"room-100", 1, 100, 3, MODE_TOPK, false},
    {"room-1000", 1, 1000, 3, MODE_TOPK, true},
    {"room-2000", 1, 2000, 3, MODE_TOPK, false},
    {"rooms-200x5", 200, 5, 0, MODE_TOPK, false},
    {"room-10", 1, 10, 3, MODE_FWD, false},
    {"room-100", 1, 100, 3, MODE_FWD, false},
    {"room-1000", 1, 1000, 3, MODE_FWD, false},
    {"room-2000", 1, 2000, 3, MODE_FWD, false},
    {"rooms-200x5", 200, 5, 0, MODE_FWD, false},
    {"room-10", 1, 10, 3, MODE_NAIVE, false},
    {"room-100", 1, 100, 3, MODE_NAIVE, false},
    {"room-1000", 1, 1000, 3, MODE_NAIVE, false},
    {"room-2000", 1, 2000, 3, MODE_NAIVE, false},
    {"rooms-200x5", 200, 5, 0, MODE_NAIVE, false},
};

static const struct bench_case QUICK[] = {
    {"room-10", 1, 10, 3, MODE_TOPK, false},
    {"room-100", 1, 100, 3, MODE_TOPK, false},
    {"rooms-20x5", 20, 5, 0, MODE_TOPK, false},
    {"room-10", 1, 10, 3, MODE_FWD, false},
    {"room-100", 1, 100, 3, MODE_FWD, false},
    {"rooms-20x5", 20, 5, 0, MODE_FWD, false},
    {"room-10", 1, 10, 3, MODE_NAIVE, false},
    {"room-100", 1, 100, 3, MODE_NAIVE, false},
    {"rooms-20x5", 20, 5, 0, MODE_NAIVE, false},
};

_Static_assert(sizeof(FULL) / sizeof(FULL[0]) <= MAX_CASES, "res[] is too small");
_Static_assert(sizeof(QUICK) / sizeof(QUICK[0]) <= MAX_CASES, "res[] is too small");

int main(int argc, char **argv)
{
    static struct traffic traffic;
    static struct result res[MAX_CASES];
    const struct bench_case *cases;
    unsigned n, nres = 0;
    char cpu[CPU_NAME];
    struct opts o;
    int rc = parse_args(argc, argv, &o);

    if (rc) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    cases = o.quick ? QUICK : FULL;
    n = o.quick ? sizeof(QUICK) / sizeof(QUICK[0]) : sizeof(FULL) / sizeof(FULL[0]);
    rc = traffic_build(&traffic);
    if (rc) {
        fprintf(stderr, "chorus-bench-mixer: encoding the traffic failed: %s\n", strerror(-rc));
        return 1;
    }
    cpu_name(cpu, sizeof(cpu));
    if (!o.json)
        print_header(&o);
    for (unsigned i = 0; i < n; i++) {
        struct result *r = &res[nres];

        if (o.only && strcmp(o.only, cases[i].name) != 0)
            continue;
        rc = case_run(&o, &traffic, &cases[i], r);
        if (rc) {
            fprintf(stderr, "chorus-bench-mixer: case %s (%s) failed: %s\n",
                    cases[i].name, mode_name(&cases[i]), strerror(-rc));
            return 1;
        }
        if (o.json)
            print_json(r, res, nres, cpu);
        else
            print_line(r);
        nres++;
    }
    if (nres == 0) {
        fprintf(stderr, "chorus-bench-mixer: no case called %s\n", o.only);
        return 2;
    }
    if (o.json) {
        print_goal(stderr, res, nres, &o);
        return 0;
    }
    print_ratios(res, nres);
    print_sched(res, nres);
    print_goal(stdout, res, nres, &o);
    return 0;
}
