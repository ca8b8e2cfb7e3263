/*
 * tsan_engine.c: the mixing engine with real worker threads at real pace,
 * for ThreadSanitizer (CI builds it with -fsanitize=thread) and as a plain
 * test in every other build.
 *
 * A plain program rather than a Criterion test: Criterion 2.4 cannot start
 * under TSan ("Could not initialize inheritable arena").
 *
 * The main thread is the engine's loop thread. For about RUN_MS it plays
 * the network side every 20 ms, at real pace: a packet in for every leg
 * (Opus tones from the talkers, Opus silence with an RFC 6464 level from
 * the others), every packet out, then the events. Between ticks it follows
 * a fixed script that touches every loop -> rt path: legs join and leave,
 * mute, deafen, suspend, gain and exclusions change, rooms change settings
 * (K, forwarding of a lone talker, silence suppression, comfort noise), and
 * halfway through a room is destroyed and another built. Meanwhile a third
 * thread reads the engine's counters (Thread: any) and the wake callback
 * counts calls from the workers.
 *
 * At the end it checks that the workers cycled at about real pace, that
 * every leg got output, that the events it expects arrived (TALKING,
 * RT_PRIORITY per worker, LEG_RELEASED for every leg destroyed,
 * ROOM_RELEASED for the destroyed rooms), then stops and frees the engine
 * with one room still in it. Exit status 0 when all holds, 1 otherwise
 * (with messages on stderr); TSan makes it fail on any race it sees when
 * run with TSAN_OPTIONS=halt_on_error=1 (CI) or exitcode (default 66).
 *
 * Usage: tsan_engine [RUN_MS]   (default 3000)
 */
#include <errno.h>
#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mix_engine.h"
#include "mix_ops.h"

enum {
    WORKERS = 2,
    ROOMS = 3,              /* rooms alive at a time */
    MAX_LEGS = 12,          /* per room */
    START_LEGS = 6,         /* per room at the start, talkers first */
    MIN_LEGS = 3,           /* the script never goes below */
    N_TONES = 3,
    RATE = 48000,
    FRAME_MS = 20,
    FRAME = RATE / 1000 * FRAME_MS,
    LOOP_FRAMES = 25,       /* tone loops of half a second */
    DEFAULT_RUN_MS = 3000,
    DRAIN_MS = 2000,        /* bound on waiting for releases at the end */
    LOSS_EVERY = 23,        /* talkers lose one packet in this many */
};

static const uint64_t MS = 1000000ull;
static const double TONE_HZ[N_TONES] = {440.0, 554.0, 659.0};

struct pkt {
    uint16_t len;
    uint8_t level;
    uint8_t data[MIX_MAX_PACKET];
};

/* Everything the network side sends, encoded once. */
struct traffic {
    struct pkt tone[N_TONES][LOOP_FRAMES];
    struct pkt silence;
};

/* Loop-side state of one leg. */
struct tleg {
    struct mix_leg *leg;    /* NULL when free or destroyed */
    uint32_t id;
    int tone;               /* talker stream, or -1 */
    uint16_t seq;
    uint32_t ts;
    bool muted, deaf, suspended, excluding;
    bool released;          /* LEG_RELEASED seen (for a destroyed leg) */
    bool destroyed;         /* mix_leg_destroy succeeded */
    bool original;          /* one of the room's first legs */
    uint64_t popped;        /* packets and loss records taken */
};

struct troom {
    struct mix_room *room;  /* NULL once destroyed */
    uint32_t id;
    struct mix_room_settings set;
    struct tleg legs[MAX_LEGS];
    bool released;          /* ROOM_RELEASED seen */
};

struct state {
    struct mix_engine *e;
    struct troom rooms[ROOMS + 1]; /* the last slot: the replacement room */
    unsigned nrooms;
    uint32_t next_id;
    uint32_t rng;
    /* results */
    uint64_t ev[MIX_EV_LATE_CYCLE + 1];
    uint64_t legs_destroyed, legs_released, rooms_destroyed, rooms_released;
    uint64_t popped, lost_records, keepalives, pushed, push_refused;
    uint64_t bad_events, bad_packets, cmd_again;
    _Atomic uint64_t wakes;
    _Atomic bool stop_reader;
    _Atomic uint64_t reads;
};

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "tsan_engine: check failed: " __VA_ARGS__);        \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* ---- set-up ---- */

static int encode_traffic(struct traffic *t)
{
    int16_t pcm[FRAME];
    int err, n;
    OpusEncoder *enc;

    for (unsigned i = 0; i < N_TONES; i++) {
        double amp = 32767.0 * pow(10.0, -14.0 / 20.0);

        enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
        if (!enc)
            return -ENOMEM;
        for (unsigned f = 0; f < LOOP_FRAMES; f++) {
            for (unsigned s = 0; s < FRAME; s++)
                pcm[s] = (int16_t)lrint(amp * sin(2.0 * M_PI * TONE_HZ[i] *
                                                  (double)(f * FRAME + s) / RATE));
            n = opus_encode(enc, pcm, FRAME, t->tone[i][f].data, MIX_MAX_PACKET);
            if (n <= 0)
                break;
            t->tone[i][f].len = (uint16_t)n;
            t->tone[i][f].level = mix_ops_level(pcm, FRAME);
        }
        opus_encoder_destroy(enc);
        if (n <= 0)
            return -EIO;
    }
    enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
    if (!enc)
        return -ENOMEM;
    memset(pcm, 0, sizeof(pcm));
    for (int i = 0; i < 5; i++)
        n = opus_encode(enc, pcm, FRAME, t->silence.data, MIX_MAX_PACKET);
    opus_encoder_destroy(enc);
    if (n <= 0)
        return -EIO;
    t->silence.len = (uint16_t)n;
    t->silence.level = MIX_LEVEL_SILENT;
    return 0;
}

static uint32_t rnd(struct state *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    return s->rng;
}

static void on_wake(void *data)
{
    struct state *s = data;

    /* Thread: rt. */
    atomic_fetch_add_explicit(&s->wakes, 1, memory_order_relaxed);
}

/* Thread: the counters reader, not loop nor rt. */
static void *reader_main(void *arg)
{
    struct state *s = arg;
    struct timespec ms = {.tv_nsec = 1000000};

    while (!atomic_load(&s->stop_reader)) {
        struct mix_engine_stats st;

        mix_engine_stats(s->e, &st);
        (void)mix_engine_cycle_percentile_us(&st, 99.0);
        atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);
        nanosleep(&ms, NULL);
    }
    return NULL;
}

/* Adds a leg in a free slot of @r. Returns 0, or a negative errno (-ENOSPC
 * when the room is full). */
static int leg_add(struct state *s, struct troom *r, int tone)
{
    struct mix_leg_config c;

    for (unsigned i = 0; i < MAX_LEGS; i++) {
        struct tleg *l = &r->legs[i];
        int rc;

        if (l->leg || (l->destroyed && !l->released))
            continue;
        memset(l, 0, sizeof(*l));
        mix_leg_config_default(&c);
        c.id = s->next_id++;
        c.user = l;
        rc = mix_leg_new(r->room, &c, &l->leg);
        if (rc)
            return rc;
        l->id = c.id;
        l->tone = tone;
        l->seq = (uint16_t)rnd(s);
        l->ts = rnd(s);
        return 0;
    }
    return -ENOSPC;
}

/* Builds a room whose first @talkers legs talk (1: its listeners are
 * forwarded that talker's packets; 2: the talkers each other's). */
static int room_add(struct state *s, struct troom *r, unsigned talkers)
{
    int rc;

    memset(r, 0, sizeof(*r));
    r->id = s->next_id++;
    mix_room_settings_default(&r->set);
    r->set.forward_single_talker = talkers < 3;
    rc = mix_room_new(s->e, r->id, r, &r->set, &r->room);
    if (rc)
        return rc;
    for (unsigned i = 0; i < START_LEGS && rc == 0; i++) {
        rc = leg_add(s, r, i < talkers ? (int)i : -1);
        r->legs[i].original = rc == 0;
    }
    return rc;
}

/* ---- the loop side ---- */

static unsigned live_legs(const struct troom *r)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MAX_LEGS; i++)
        n += r->legs[i].leg != NULL;
    return n;
}

/* A random live leg of @r, or NULL. */
static struct tleg *pick_leg(struct state *s, struct troom *r)
{
    unsigned n = live_legs(r), k;

    if (n == 0)
        return NULL;
    k = rnd(s) % n;
    for (unsigned i = 0; i < MAX_LEGS; i++)
        if (r->legs[i].leg && k-- == 0)
            return &r->legs[i];
    return NULL;
}

static void note_rc(struct state *s, int rc, const char *what)
{
    if (rc == -EAGAIN) {
        s->cmd_again++;     /* command ring full: allowed, rare */
        return;
    }
    CHECK(rc == 0, "%s: %d", what, rc);
}

static void on_event(const struct mix_event *ev, void *data)
{
    struct state *s = data;
    struct tleg *l = ev->leg_user;
    struct troom *r = ev->room_user;

    if (ev->type < MIX_EV_TALKING || ev->type > MIX_EV_LATE_CYCLE) {
        s->bad_events++;
        return;
    }
    s->ev[ev->type]++;
    switch (ev->type) {
    case MIX_EV_LEG_RELEASED:
        if (!l || !l->destroyed || l->released || l->id != ev->leg_id)
            s->bad_events++;
        else
            l->released = true;
        s->legs_released++;
        break;
    case MIX_EV_ROOM_RELEASED:
        if (!r || r->room || r->released || r->id != ev->room_id)
            s->bad_events++;
        else
            r->released = true;
        s->rooms_released++;
        break;
    case MIX_EV_TALKING:
    case MIX_EV_STOPPED_TALKING:
        if (!l || !r || l->id != ev->leg_id || r->id != ev->room_id)
            s->bad_events++;
        break;
    default:
        break;
    }
}

static void push_all(struct state *s, const struct traffic *t, uint32_t frame)
{
    uint64_t now = mix_engine_now_ns(s->e);

    for (unsigned k = 0; k < s->nrooms; k++) {
        struct troom *r = &s->rooms[k];

        for (unsigned i = 0; r->room && i < MAX_LEGS; i++) {
            struct tleg *l = &r->legs[i];
            const struct pkt *p = l->tone >= 0 ? &t->tone[l->tone][frame % LOOP_FRAMES]
                                               : &t->silence;
            struct mix_in_meta m = {.seq = l->seq++, .ts = l->ts, .arrival_ns = now,
                                    .level = p->level,
                                    .vad = p->level != MIX_LEVEL_SILENT};

            if (!l->leg)
                continue;
            l->ts += FRAME;
            /* Talkers lose a packet now and then, so forwarded listeners
             * get MIX_OUT_LOST records. */
            if (l->tone >= 0 && m.seq % LOSS_EVERY == 0)
                continue;
            if (mix_leg_push(l->leg, &m, p->data, p->len) == 0)
                s->pushed++;
            else
                s->push_refused++;
        }
    }
}

static void pop_all(struct state *s)
{
    uint8_t buf[MIX_MAX_PACKET];
    struct mix_out_meta m;
    int n;

    for (unsigned k = 0; k < s->nrooms; k++) {
        struct troom *r = &s->rooms[k];

        for (unsigned i = 0; r->room && i < MAX_LEGS; i++) {
            struct tleg *l = &r->legs[i];

            while (l->leg && (n = mix_leg_pop(l->leg, &m, buf, sizeof(buf))) != -EAGAIN) {
                if (n < 0 || n != m.len || ((m.flags & MIX_OUT_LOST) && n != 0)) {
                    s->bad_packets++;
                    continue;
                }
                l->popped++;
                s->popped++;
                s->lost_records += (m.flags & MIX_OUT_LOST) != 0;
                s->keepalives += (m.flags & MIX_OUT_KEEPALIVE) != 0;
            }
        }
    }
}

static void leg_destroy(struct state *s, struct tleg *l)
{
    int rc = mix_leg_destroy(l->leg);

    note_rc(s, rc, "mix_leg_destroy");
    if (rc)
        return;
    l->leg = NULL;
    l->destroyed = true;
    s->legs_destroyed++;
}

static void room_destroy(struct state *s, struct troom *r)
{
    int rc = mix_room_destroy(r->room);

    note_rc(s, rc, "mix_room_destroy");
    if (rc)
        return;
    r->room = NULL;
    s->rooms_destroyed++;
    /* Its legs go with it: each gets LEG_RELEASED. */
    for (unsigned i = 0; i < MAX_LEGS; i++) {
        if (r->legs[i].leg) {
            r->legs[i].leg = NULL;
            r->legs[i].destroyed = true;
            s->legs_destroyed++;
        }
    }
}

/* One step of the script: which control changes depends on the tick. */
static void script(struct state *s, uint32_t tick, uint32_t ticks)
{
    struct troom *r = &s->rooms[tick % s->nrooms];
    struct tleg *l, *o;
    int rc;

    if (!r->room)
        return;
    if (tick == ticks / 2) {
        /* Room churn: the first room goes, a new one comes. */
        room_destroy(s, &s->rooms[0]);
        note_rc(s, room_add(s, &s->rooms[s->nrooms], 1), "room_add");
        s->nrooms++;
        return;
    }
    switch (tick % 8) {
    case 0:
        if (live_legs(r) > MIN_LEGS && (l = pick_leg(s, r)))
            leg_destroy(s, l);
        break;
    case 1:
        rc = leg_add(s, r, rnd(s) % 3 == 0 ? (int)(rnd(s) % N_TONES) : -1);
        if (rc != -ENOSPC)  /* the room is full: fine */
            note_rc(s, rc, "leg_add");
        break;
    case 2:
        if ((l = pick_leg(s, r))) {
            l->muted = !l->muted;
            note_rc(s, mix_leg_set_muted(l->leg, l->muted), "mute");
        }
        break;
    case 3:
        if ((l = pick_leg(s, r))) {
            l->deaf = !l->deaf;
            note_rc(s, mix_leg_set_deaf(l->leg, l->deaf), "deaf");
        }
        break;
    case 4:
        if ((l = pick_leg(s, r))) {
            l->suspended = !l->suspended;
            note_rc(s, mix_leg_set_suspended(l->leg, l->suspended), "suspend");
        }
        break;
    case 5:
        if ((l = pick_leg(s, r)))
            note_rc(s, mix_leg_set_gain(l->leg, (float)(rnd(s) % 25) - 18.0f), "gain");
        break;
    case 6:
        if ((l = pick_leg(s, r)) && (o = pick_leg(s, r)) && l != o)
            note_rc(s, mix_leg_exclude(l->leg, o->leg, rnd(s) % 2 == 0), "exclude");
        break;
    default:
        r->set.talkers = 1 + rnd(s) % 4;
        r->set.forward_single_talker = rnd(s) % 2;
        r->set.silence_suppression = rnd(s) % 4 == 0;
        r->set.comfort_noise = rnd(s) % 4 == 0;
        note_rc(s, mix_room_update(r->room, &r->set), "mix_room_update");
        break;
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
                          .tv_nsec = (long)(t % 1000000000ull)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---- checks ---- */

static void check_run(struct state *s, const struct mix_engine_stats *st,
                      uint32_t run_ms)
{
    uint64_t expect_cycles = (uint64_t)WORKERS * run_ms / MIX_CYCLE_MS;

    /* Real pace, with a wide margin for sanitizers and a loaded machine. */
    CHECK(st->cycles >= expect_cycles / 2, "%llu cycles in %u ms with %d workers",
          (unsigned long long)st->cycles, run_ms, WORKERS);
    CHECK(st->cycles <= expect_cycles * 3 / 2 + 20, "%llu cycles: faster than real time",
          (unsigned long long)st->cycles);
    CHECK(st->busy_cycles > 0, "no busy cycle");
    CHECK(st->encodes > 0 && st->decodes > 0, "%llu encodes, %llu decodes",
          (unsigned long long)st->encodes, (unsigned long long)st->decodes);
    CHECK(s->popped >= s->pushed / 4, "%llu packets out for %llu in",
          (unsigned long long)s->popped, (unsigned long long)s->pushed);
    CHECK(s->bad_packets == 0, "%llu malformed output records",
          (unsigned long long)s->bad_packets);
    CHECK(s->bad_events == 0, "%llu events that do not fit", (unsigned long long)s->bad_events);
    CHECK(s->ev[MIX_EV_RT_PRIORITY] == WORKERS, "%llu RT_PRIORITY events",
          (unsigned long long)s->ev[MIX_EV_RT_PRIORITY]);
    CHECK(s->ev[MIX_EV_TALKING] > 0, "no TALKING event");
    CHECK(atomic_load(&s->wakes) > 0, "the wake callback was never called");
    CHECK(atomic_load(&s->reads) > 0, "the counters were never read");
    /* Every leg that was there from the start of the run got output (at
     * least its first frames, before any control changed; deaf and
     * suppressed legs get silence or keep-alives). Legs that joined later
     * may have met a suppressed room with nobody talking, which sends its
     * first keep-alive only after MIX_KEEPALIVE_MS. */
    for (unsigned k = 0; k < ROOMS; k++) {
        const struct troom *r = &s->rooms[k];

        for (unsigned i = 0; r->room && i < MAX_LEGS; i++) {
            const struct tleg *l = &r->legs[i];
            if (l->leg && l->original)
                CHECK(l->popped > 0, "room %u leg %u got no output", r->id, l->id);
        }
    }
}

/* Waits (polling, at most DRAIN_MS) until every destroyed leg and room has
 * been released. */
static void drain(struct state *s)
{
    uint64_t give_up = now_ns() + DRAIN_MS * MS;

    while (now_ns() < give_up &&
           (s->legs_released < s->legs_destroyed || s->rooms_released < s->rooms_destroyed)) {
        pop_all(s);
        mix_engine_poll(s->e, on_event, s);
        sleep_until(now_ns() + 5 * MS);
    }
    CHECK(s->legs_released == s->legs_destroyed, "%llu legs destroyed, %llu released",
          (unsigned long long)s->legs_destroyed, (unsigned long long)s->legs_released);
    CHECK(s->rooms_released == s->rooms_destroyed, "%llu rooms destroyed, %llu released",
          (unsigned long long)s->rooms_destroyed, (unsigned long long)s->rooms_released);
}

int main(int argc, char **argv)
{
    static struct traffic traffic;
    static struct state s;
    struct mix_engine_config cfg = {.workers = WORKERS, .wake = on_wake, .wake_data = &s};
    struct mix_engine_stats st;
    uint32_t run_ms = DEFAULT_RUN_MS, ticks;
    pthread_t reader;
    uint64_t t0;
    int rc;

    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        if (*end || v < 200 || v > 600000) {
            fprintf(stderr, "usage: tsan_engine [RUN_MS]\n");
            return 2;
        }
        run_ms = (uint32_t)v;
    }
    ticks = run_ms / FRAME_MS;
    s.rng = 0x2545f491u;
    s.next_id = 1;
    atomic_init(&s.wakes, 0);
    atomic_init(&s.stop_reader, false);
    atomic_init(&s.reads, 0);
    if ((rc = encode_traffic(&traffic)) != 0) {
        fprintf(stderr, "tsan_engine: encoding the traffic: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = mix_engine_new(&cfg, &s.e)) != 0 || (rc = mix_engine_start(s.e)) != 0) {
        fprintf(stderr, "tsan_engine: starting the engine: %s\n", strerror(-rc));
        return 1;
    }
    for (unsigned k = 0; k < ROOMS; k++) {
        rc = room_add(&s, &s.rooms[k], 1 + k % N_TONES);
        if (rc) {
            fprintf(stderr, "tsan_engine: room %u: %s\n", k, strerror(-rc));
            return 1;
        }
        s.nrooms++;
    }
    rc = pthread_create(&reader, NULL, reader_main, &s);
    if (rc) {
        fprintf(stderr, "tsan_engine: pthread_create: %s\n", strerror(rc));
        return 1;
    }

    t0 = now_ns();
    mix_engine_stats(s.e, &st);
    for (uint32_t tick = 0; tick < ticks; tick++) {
        sleep_until(t0 + (uint64_t)tick * FRAME_MS * MS);
        push_all(&s, &traffic, tick);
        pop_all(&s);
        mix_engine_poll(s.e, on_event, &s);
        script(&s, tick, ticks);
    }
    mix_engine_stats(s.e, &st);
    check_run(&s, &st, run_ms);

    /* Every room but the last goes while the workers run; the last stays in
     * the engine for mix_engine_free to clean up. */
    for (unsigned k = 0; k + 1 < s.nrooms; k++)
        if (s.rooms[k].room)
            room_destroy(&s, &s.rooms[k]);
    drain(&s);
    atomic_store(&s.stop_reader, true);
    pthread_join(reader, NULL);
    mix_engine_stop(s.e);
    mix_engine_free(s.e);

    printf("tsan_engine: %u ms, %d workers: %llu cycles (%llu busy), %llu packets in, %llu out (%llu loss records, %llu keep-alives), %llu legs and %llu rooms released, %llu wakes, %llu counter reads\n",
           run_ms, WORKERS, (unsigned long long)st.cycles, (unsigned long long)st.busy_cycles,
           (unsigned long long)s.pushed, (unsigned long long)s.popped,
           (unsigned long long)s.lost_records, (unsigned long long)s.keepalives,
           (unsigned long long)s.legs_released, (unsigned long long)s.rooms_released,
           (unsigned long long)atomic_load(&s.wakes), (unsigned long long)atomic_load(&s.reads));
    if (failures) {
        fprintf(stderr, "tsan_engine: %d checks failed\n", failures);
        return 1;
    }
    return 0;
}
