/*
 * test_engine.c: behaviour of the mixing engine, judged by listening.
 *
 * The engine runs in manual mode (never started): each step of the harness
 * pushes what the legs "send" for that 10 ms cycle, runs one cycle, pops
 * every leg's output, decodes it with a decoder of the test's own, and
 * collects events. Talkers send phase-continuous tones, one frequency per
 * leg, Opus-encoded by a real encoder, so what a leg hears can be judged
 * with Goertzel filters: a tone is "present" when it comes out within a few
 * dB of the level it was sent at, and "absent" when it is at least 30 dB
 * below that. Every check is two-sided, so each test can fail.
 *
 * The harness's virtual clock starts at 1 s and advances 10 ms per cycle,
 * like the manual-mode engine's, and stamps every pushed packet with it.
 *
 * Set CHORUS_TEST_WAV_DIR to a directory to get every leg's decoded audio
 * as WAV files, to listen to a failing case, and CHORUS_TEST_VERBOSE=1 to
 * print every level measured (to see the margins, not only failures).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "mix_engine.h"
#include "mix_ops.h"

enum {
    H_MAX_LEGS = 32,
    H_MAX_EVENTS = 4096,
    H_CYCLE_NS = MIX_CYCLE_MS * 1000000,
    H_FRAME_MS = 20,
    SKIP_MS = 300,          /* start-up discarded before analysis */
    SETTLE_MS = 300,        /* after a change, before judging its effect */
    ROOM_ID = 7,
};

/* A tone is present when it measures no more than this below its nominal
 * level (two Opus generations and the mix in between). */
static const double PRESENT_TOL_DB = 3.0;
/* A tone is absent when it measures at least this far below the level it
 * would have if it were heard. */
static const double ABSENT_MARGIN_DB = 30.0;
static const double TONE_DB = -12.0;

enum send_mode {
    SEND_NONE = 0,  /* sends nothing */
    SEND_OPUS,      /* Opus frames of its tone (or of silence when off) */
    SEND_PCMU,      /* G.711 mu-law frames of its tone */
};

/* One leg as the test sees it: what it sends and what it has heard. */
struct hleg {
    struct mix_leg *leg;        /* NULL once destroyed */
    struct mix_leg_config cfg;  /* as created (id 100 + index, user = this) */
    char name[16];              /* for messages and WAV file names */

    enum send_mode send;
    uint32_t packet_ms;         /* audio per packet sent: 10, 20 or 40 ms */
    bool send_level;            /* attaches an RFC 6464 level to its packets */
    bool no_pop;                /* the network side stops reading its output */
    bool tone_on;               /* sends its tone, else digital silence */
    double freq, db;            /* the tone */
    struct ta_sine sine;
    struct ta_tx *tx;           /* Opus sender */
    uint16_t seq;               /* G.711 sender state */
    uint32_t ts;

    struct ta_rx *rx;           /* Opus receiver */
    bool conceal;               /* rx conceals lost packets like a real
                                   receiver (ta_rx_receive), else it plays
                                   silence for them (ta_rx_decode) */
    uint16_t rtp_seq;           /* RTP sequence number of the next record
                                   the network side sends to this leg */
    uint64_t lost_records;      /* MIX_OUT_LOST records popped */
    struct ta_pcm g711;         /* G.711 receiver output */
    bool g711_started;
    uint32_t g711_next_ts;

    uint64_t packets, keepalives, markers;  /* popped, by kind */
    uint64_t decode_errors;     /* popped packets our decoder rejected */
    bool have_last;             /* "last" is valid */
    struct mix_out_meta last;   /* last packet popped */
    uint32_t ts_step_bad;       /* media packets whose ts step was odd */
};

/* One engine with one room, driven cycle by cycle. */
struct harness {
    const char *name;           /* test name, for messages and WAV files */
    struct mix_engine *e;
    struct mix_room *room;      /* id ROOM_ID, user = the harness */
    uint64_t now_ns;            /* virtual clock: arrival time of pushes */
    uint64_t cycle;             /* cycles run so far */
    unsigned n;                 /* legs[] used (destroyed ones included) */
    struct hleg legs[H_MAX_LEGS];
    struct mix_event ev[H_MAX_EVENTS]; /* every event polled, in order */
    uint64_t ev_cycle[H_MAX_EVENTS];   /* the cycle each was polled after */
    unsigned nev;
    uint32_t packet_ms;         /* packet duration for legs added next (20) */
    /* Optional: sees every popped packet just after it has been decoded
     * (so h_pos() is the position after its audio) and before the leg's
     * "last" packet is updated; also every MIX_OUT_LOST record (len 0),
     * which is neither decoded nor "last". */
    void (*on_packet)(struct harness *h, unsigned leg,
                      const struct mix_out_meta *m, const uint8_t *pkt,
                      int len);
    /* Optional: sees every packet a leg sends before it is pushed; returning
     * false loses it on the way (it is never pushed). */
    bool (*on_send)(struct harness *h, unsigned leg,
                    const struct mix_in_meta *m, const uint8_t *pkt, int len);
    void *data;                 /* for on_packet and on_send */
};

/* ---- harness ---- */

static void h_init_settings(struct harness *h, const char *name,
                            const struct mix_room_settings *s)
{
    struct mix_engine_config ec = {.workers = 1};

    memset(h, 0, sizeof(*h));
    h->name = name;
    h->now_ns = 1000000000ull;
    cr_assert_eq(mix_engine_new(&ec, &h->e), 0);
    cr_assert_eq(mix_room_new(h->e, ROOM_ID, h, s, &h->room), 0);
}

static void h_init(struct harness *h, const char *name)
{
    struct mix_room_settings s;

    mix_room_settings_default(&s);
    h_init_settings(h, name, &s);
}

/* A room with forward_single_talker on, otherwise default. */
static void h_init_fwd(struct harness *h, const char *name)
{
    struct mix_room_settings s;

    mix_room_settings_default(&s);
    s.forward_single_talker = true;
    h_init_settings(h, name, &s);
}

/* Adds a leg. @send says what it sends, @freq/@db its tone (a tone of
 * TA_DB_FLOOR is silence). Returns its index. */
static unsigned h_leg_cfg(struct harness *h, const char *name,
                          const struct mix_leg_config *c, enum send_mode send,
                          double freq, double db)
{
    unsigned i = h->n++;
    struct hleg *L = &h->legs[i];
    uint32_t rate = c->codec == MIX_CODEC_OPUS ? c->rate : 8000;

    cr_assert_lt(i, (unsigned)H_MAX_LEGS);
    memset(L, 0, sizeof(*L));
    L->cfg = *c;
    L->cfg.id = 100 + i;
    L->cfg.user = L;
    snprintf(L->name, sizeof(L->name), "%s", name);
    L->send = send;
    L->packet_ms = h->packet_ms ? h->packet_ms : H_FRAME_MS;
    L->freq = freq;
    L->db = db;
    L->tone_on = db > TA_DB_FLOOR;
    ta_sine_init(&L->sine, freq > 0 ? freq : 1000.0, rate,
                 db > TA_DB_FLOOR ? db : -100.0);
    if (send == SEND_OPUS)
        cr_assert_eq(ta_tx_new(&L->tx, rate, L->packet_ms, 0,
                               (uint16_t)(1000 * i), 12345u * i), 0);
    L->seq = (uint16_t)(500 * i);
    L->ts = 777u * i;
    if (c->codec == MIX_CODEC_OPUS)
        cr_assert_eq(ta_rx_new(&L->rx, rate), 0);
    else
        ta_pcm_init(&L->g711, 8000);
    cr_assert_eq(mix_leg_new(h->room, &L->cfg, &L->leg), 0, "leg %s", name);
    return i;
}

static unsigned h_leg(struct harness *h, const char *name, enum send_mode send,
                      double freq, double db)
{
    struct mix_leg_config c;

    mix_leg_config_default(&c);
    return h_leg_cfg(h, name, &c, send, freq, db);
}

static struct ta_pcm *h_pcm(struct harness *h, unsigned i)
{
    struct hleg *L = &h->legs[i];

    return L->rx ? ta_rx_pcm(L->rx) : &L->g711;
}

static void h_dump(struct harness *h)
{
    char name[128];

    for (unsigned i = 0; i < h->n; i++) {
        snprintf(name, sizeof(name), "%s-%s", h->name, h->legs[i].name);
        ta_wav_dump(name, h_pcm(h, i));
    }
}

static void h_free(struct harness *h)
{
    h_dump(h);
    mix_engine_stop(h->e);
    mix_engine_free(h->e);
    for (unsigned i = 0; i < h->n; i++) {
        ta_tx_free(h->legs[i].tx);
        ta_rx_free(h->legs[i].rx);
        ta_pcm_free(&h->legs[i].g711);
    }
}

/* Sends one packet of leg @i. */
static void h_send(struct harness *h, unsigned i)
{
    struct hleg *L = &h->legs[i];
    struct mix_in_meta m = {.arrival_ns = h->now_ns, .level = 0xff};
    int16_t pcm[MIX_MAX_FRAME_48K];
    uint8_t pkt[TA_MAX_PACKET];
    uint32_t n;
    int len;

    if (L->send == SEND_OPUS) {
        n = ta_tx_frame_samples(L->tx);
        if (L->tone_on)
            ta_sine_fill(&L->sine, pcm, n);
        else
            memset(pcm, 0, n * sizeof(pcm[0]));
        len = ta_tx_encode(L->tx, pcm, pkt, sizeof(pkt), &m.seq, &m.ts);
        cr_assert_gt(len, 0);
        if (L->send_level) {
            /* What a client's RFC 6464 extension would carry. */
            m.level = mix_ops_level(pcm, n);
            m.vad = m.level <= 45;
        }
    } else {
        n = 8 * L->packet_ms;
        if (L->tone_on)
            ta_sine_fill(&L->sine, pcm, n);
        else
            memset(pcm, 0, n * sizeof(pcm[0]));
        for (uint32_t k = 0; k < n; k++)
            pkt[k] = mix_g711_ulaw_encode(pcm[k]);
        len = (int)n;
        m.seq = L->seq++;
        m.ts = L->ts;
        L->ts += n;
    }
    if (h->on_send && !h->on_send(h, i, &m, pkt, len))
        return;
    cr_assert_eq(mix_leg_push(L->leg, &m, pkt, (uint32_t)len), 0, "push %s",
                 L->name);
}

static void g711_receive(struct hleg *L, const struct mix_out_meta *m,
                         const uint8_t *pkt, int len)
{
    int16_t pcm[MIX_MAX_PACKET];
    int32_t gap = (int32_t)(m->ts - L->g711_next_ts);

    /* Keep the timeline, as ta_rx does for Opus. */
    if (L->g711_started && gap > 0 && gap < 8000 * 10)
        cr_assert_eq(ta_pcm_append(&L->g711, NULL, (size_t)gap), 0);
    for (int k = 0; k < len; k++)
        pcm[k] = L->cfg.codec == MIX_CODEC_PCMA ? mix_g711_alaw_decode(pkt[k])
                                                : mix_g711_ulaw_decode(pkt[k]);
    cr_assert_eq(ta_pcm_append(&L->g711, pcm, (size_t)len), 0);
    L->g711_started = true;
    L->g711_next_ts = m->ts + (uint32_t)len;
}

static void h_receive(struct harness *h, unsigned i)
{
    struct hleg *L = &h->legs[i];
    struct mix_out_meta m;
    uint8_t pkt[MIX_MAX_PACKET];
    int len;

    while ((len = mix_leg_pop(L->leg, &m, pkt, sizeof(pkt))) != -EAGAIN) {
        uint16_t seq = L->rtp_seq++;
        int rc;

        cr_assert_geq(len, 0, "pop %s: %d", L->name, len);
        cr_assert_eq((uint32_t)len, m.len);
        if (m.flags & MIX_OUT_LOST) {
            /* Nothing is sent; the receiver sees a gap in sequence
             * numbers. */
            cr_assert_eq(len, 0, "%s: lost record with %d bytes", L->name, len);
            L->lost_records++;
            if (h->on_packet)
                h->on_packet(h, i, &m, pkt, len);
            continue;
        }
        L->packets++;
        if (m.flags & MIX_OUT_KEEPALIVE)
            L->keepalives++;
        if (m.flags & MIX_OUT_MARKER)
            L->markers++;
        if (L->rx) {
            rc = L->conceal ? ta_rx_receive(L->rx, seq, m.ts, pkt, (uint32_t)len)
                            : ta_rx_decode(L->rx, m.ts, pkt, (uint32_t)len);
            if (rc < 0)
                L->decode_errors++;
        } else {
            g711_receive(L, &m, pkt, len);
        }
        if (h->on_packet)
            h->on_packet(h, i, &m, pkt, len);
        L->last = m;
        L->have_last = true;
    }
}

static void h_on_event(const struct mix_event *ev, void *data)
{
    struct harness *h = data;

    cr_assert_lt(h->nev, (unsigned)H_MAX_EVENTS);
    h->ev[h->nev] = *ev;
    h->ev_cycle[h->nev] = h->cycle;
    h->nev++;
}

/* One 10 ms cycle: legs send when a packet's worth of time has passed
 * (every other cycle for 20 ms packets), the engine mixes, every leg's
 * output is taken and decoded, events polled. */
static void h_step(struct harness *h)
{
    for (unsigned i = 0; i < h->n; i++) {
        struct hleg *L = &h->legs[i];

        if (L->leg && L->send != SEND_NONE &&
            h->cycle % (L->packet_ms / MIX_CYCLE_MS) == 0)
            h_send(h, i);
    }
    cr_assert_eq(mix_engine_run_cycle(h->e, 0), 0);
    for (unsigned i = 0; i < h->n; i++)
        if (h->legs[i].leg && !h->legs[i].no_pop)
            h_receive(h, i);
    mix_engine_poll(h->e, h_on_event, h);
    h->cycle++;
    h->now_ns += H_CYCLE_NS;
}

static void h_run_ms(struct harness *h, uint32_t ms)
{
    for (uint32_t c = 0; c < ms / MIX_CYCLE_MS; c++)
        h_step(h);
}

/* Decoded position of leg @i now, in samples. */
static size_t h_pos(struct harness *h, unsigned i)
{
    return h_pcm(h, i)->n;
}

static void h_destroy_leg(struct harness *h, unsigned i)
{
    cr_assert_eq(mix_leg_destroy(h->legs[i].leg), 0);
    h->legs[i].leg = NULL;
}

static uint32_t xorshift(uint32_t *s);

/* ---- analysis ---- */

static bool verbose(void)
{
    const char *v = getenv("CHORUS_TEST_VERBOSE");

    return v && *v && *v != '0';
}

/* Level of @freq heard by leg @i from sample @from (plus @skip_ms) to now. */
static double heard(struct harness *h, unsigned i, size_t from, uint32_t skip_ms,
                    double freq)
{
    struct ta_pcm *p = h_pcm(h, i);
    size_t a = from + (size_t)skip_ms * p->rate / 1000;

    if (a + p->rate / 10 > p->n)
        return TA_DB_FLOOR;     /* less than 100 ms to judge: nothing heard */
    return ta_tone_db(p->s + a, p->n - a, freq, p->rate);
}

static double rms_since(struct harness *h, unsigned i, size_t from,
                        uint32_t skip_ms)
{
    struct ta_pcm *p = h_pcm(h, i);
    size_t a = from + (size_t)skip_ms * p->rate / 1000;

    if (a >= p->n)
        return TA_DB_FLOOR;
    return ta_rms_db(p->s + a, p->n - a);
}

static void expect_present_at(struct harness *h, unsigned listener, size_t from,
                              double freq, double nominal, double tol,
                              const char *why)
{
    double db = heard(h, listener, from, SETTLE_MS, freq);

    if (verbose())
        fprintf(stderr, "%s: %s hears %.1f Hz at %.1f dBFS (nominal %.1f, present)\n",
                h->name, h->legs[listener].name, freq, db, nominal);
    cr_expect(db >= nominal - tol,
              "%s: %s should hear %.1f Hz at ~%.1f dBFS, measured %.1f (%s)",
              h->name, h->legs[listener].name, freq, nominal, db, why);
}

static void expect_absent_at(struct harness *h, unsigned listener, size_t from,
                             double freq, double nominal, const char *why)
{
    double db = heard(h, listener, from, SETTLE_MS, freq);

    if (verbose())
        fprintf(stderr, "%s: %s hears %.1f Hz at %.1f dBFS (nominal %.1f, absent)\n",
                h->name, h->legs[listener].name, freq, db, nominal);
    cr_expect(db <= nominal - ABSENT_MARGIN_DB,
              "%s: %s should not hear %.1f Hz (would be %.1f dBFS), measured %.1f (%s)",
              h->name, h->legs[listener].name, freq, nominal, db, why);
}

/* Leg @listener hears talker @talker (at its nominal level) since @from. */
static void expect_hears(struct harness *h, unsigned listener, unsigned talker,
                         size_t from)
{
    expect_present_at(h, listener, from, h->legs[talker].freq,
                      h->legs[talker].db, PRESENT_TOL_DB, h->legs[talker].name);
}

static void expect_not_hears(struct harness *h, unsigned listener,
                             unsigned talker, size_t from)
{
    expect_absent_at(h, listener, from, h->legs[talker].freq,
                     h->legs[talker].db, h->legs[talker].name);
}

/* Leg @i hears one tone of @freq, and little else, after SKIP_MS. */
static void expect_clean_tone(struct harness *h, unsigned i, double freq,
                              double min_snr)
{
    struct ta_pcm *p = h_pcm(h, i);
    size_t from = ta_pcm_index_ms(p, SKIP_MS);
    double snr;

    cr_assert_gt(p->n, from + p->rate / 2, "%s: only %zu samples", h->legs[i].name,
                 p->n);
    snr = ta_snr_db(p->s + from, p->n - from, p->rate, &freq, 1);
    if (verbose())
        fprintf(stderr, "%s: %s hears %.1f Hz with SNR %.1f dB\n", h->name,
                h->legs[i].name, freq, snr);
    cr_expect_geq(snr, min_snr, "%s: %s hears %.1f Hz with SNR %.1f dB", h->name,
                  h->legs[i].name, freq, snr);
}

static void expect_clean_decode(struct harness *h)
{
    for (unsigned i = 0; i < h->n; i++)
        cr_expect_eq(h->legs[i].decode_errors, 0u,
                     "%s: %s got %lu undecodable packets", h->name,
                     h->legs[i].name, (unsigned long)h->legs[i].decode_errors);
}

static const struct mix_event *find_event(struct harness *h, unsigned from,
                                          enum mix_event_type type,
                                          unsigned leg, unsigned *at)
{
    for (unsigned k = from; k < h->nev; k++) {
        if (h->ev[k].type != type)
            continue;
        if (type != MIX_EV_ROOM_RELEASED && h->ev[k].leg_user != &h->legs[leg])
            continue;
        if (at)
            *at = k;
        return &h->ev[k];
    }
    return NULL;
}

static unsigned count_events(struct harness *h, enum mix_event_type type,
                             unsigned leg)
{
    unsigned n = 0;

    for (unsigned k = 0; k < h->nev; k++)
        if (h->ev[k].type == type && h->ev[k].leg_user == &h->legs[leg])
            n++;
    return n;
}

/* ---- mix-minus ---- */

Test(engine, three_talkers_hear_the_others_not_themselves)
{
    struct harness h;
    unsigned a, b, c, d;
    struct mix_leg_stats st;

    h_init(&h, "three");
    /* 2 * 660 - 880 = 440: the engine's encoder (SILK at 32 kb/s with
     * FEC) puts an intermodulation product of b and c at about -45 dBFS
     * exactly on a's own frequency, so a's "not myself" check has only a
     * few dB to spare over the 30 dB rule. A leak of a's own voice would
     * still come out near -12 dBFS. */
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 2500);

    expect_hears(&h, a, b, 0);
    expect_hears(&h, a, c, 0);
    expect_not_hears(&h, a, a, 0);
    expect_hears(&h, b, a, 0);
    expect_hears(&h, b, c, 0);
    expect_not_hears(&h, b, b, 0);
    expect_hears(&h, c, a, 0);
    expect_hears(&h, c, b, 0);
    expect_not_hears(&h, c, c, 0);
    expect_hears(&h, d, a, 0);
    expect_hears(&h, d, b, 0);
    expect_hears(&h, d, c, 0);
    expect_clean_decode(&h);

    /* Every leg got a packet every 20 ms (give or take start-up). */
    for (unsigned i = 0; i < h.n; i++) {
        cr_expect_geq(h.legs[i].packets, 2500 / 20 - 10, "%s: %lu packets",
                      h.legs[i].name, (unsigned long)h.legs[i].packets);
        cr_expect_leq(h.legs[i].packets, 2500 / 20);
        mix_leg_stats(h.legs[i].leg, &st);
        cr_expect_eq(st.packets_in, 2500 / 20);
        cr_expect_eq(st.packets_out, h.legs[i].packets);
        cr_expect_gt(st.decodes, 100u, "%s", h.legs[i].name);
        cr_expect_eq(st.talking, i != d, "%s talking", h.legs[i].name);
        cr_expect_eq(st.mixed, i != d, "%s mixed", h.legs[i].name);
        cr_expect_eq(st.invalid, 0u);
        /* RFC 6464 level heard from each leg: a -12 dBFS sine is -15 dBov. */
        if (i == d)
            cr_expect_eq(st.level, (uint32_t)MIX_LEVEL_SILENT, "silent leg level %u",
                         st.level);
        else
            cr_expect(abs((int)st.level - 15) <= 2, "%s: level %u, want ~15",
                      h.legs[i].name, st.level);
    }
    /* Level of the mix sent: three tones make -10 dBov, two make -12. */
    cr_expect(abs((int)h.legs[d].last.level - 10) <= 2, "full mix sent at level %u",
              h.legs[d].last.level);
    cr_expect(abs((int)h.legs[a].last.level - 12) <= 2, "mix-minus sent at level %u",
              h.legs[a].last.level);
    h_free(&h);
}

/* Rooms at every rate and frame size: what they send keeps the RTP clock
 * of the codec (48 kHz for Opus whatever the room rate) and the pitch. */
Test(engine, room_rates_and_frame_sizes)
{
    static const struct {
        uint32_t rate, frame_ms;
    } rooms[] = {{48000, 10}, {48000, 40}, {24000, 20}, {16000, 20}, {8000, 20}};

    for (unsigned k = 0; k < sizeof(rooms) / sizeof(rooms[0]); k++) {
        struct mix_room_settings rs;
        struct harness h;
        char name[32];
        unsigned a, b, d;
        uint32_t prev = 0, bad = 0, packets = 0;

        mix_room_settings_default(&rs);
        rs.rate = rooms[k].rate;
        rs.frame_ms = rooms[k].frame_ms;
        snprintf(name, sizeof(name), "room%u-%ums", rooms[k].rate / 1000,
                 rooms[k].frame_ms);
        h_init_settings(&h, name, &rs);
        a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
        b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
        d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
        h_run_ms(&h, 800);
        for (unsigned c = 0; c < 150; c++) {
            uint64_t before = h.legs[d].packets;

            h_step(&h);
            if (h.legs[d].packets == before)
                continue;
            if (packets++ && h.legs[d].last.ts - prev != 48 * rooms[k].frame_ms)
                bad++;
            prev = h.legs[d].last.ts;
        }
        cr_expect_eq(bad, 0u, "%s: %u timestamp steps not %u", name, bad,
                     48 * rooms[k].frame_ms);
        cr_expect(packets >= 1500 / rooms[k].frame_ms - 2, "%s: %u packets in 1.5 s",
                  name, packets);
        expect_hears(&h, d, a, 0);
        expect_hears(&h, d, b, 0);
        expect_hears(&h, a, b, 0);
        expect_not_hears(&h, a, a, 0);
        expect_hears(&h, b, a, 0);
        expect_not_hears(&h, b, b, 0);
        expect_clean_decode(&h);
        h_free(&h);
    }
}

Test(engine, talkers_with_10_and_40_ms_packets)
{
    struct harness h;
    unsigned a, b, d;

    h_init(&h, "packet-sizes");
    h.packet_ms = 10;
    a = h_leg(&h, "a440-10ms", SEND_OPUS, 440, TONE_DB);
    h.packet_ms = 40;
    b = h_leg(&h, "b660-40ms", SEND_OPUS, 660, TONE_DB);
    h.packet_ms = 20;
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 2500);
    expect_hears(&h, d, a, 0);
    expect_hears(&h, d, b, 0);
    expect_hears(&h, a, b, 0);
    expect_not_hears(&h, a, a, 0);
    expect_hears(&h, b, a, 0);
    expect_not_hears(&h, b, b, 0);
    /* Each talker hears one clean tone: packets cut at other boundaries
     * than the room's frames leave no gaps, repeats or clicks. (A single
     * tone, because the engine's encoder renders several at only ~8 dB
     * SNR however clean the mix.) */
    expect_clean_tone(&h, a, h.legs[b].freq, 25.0);
    expect_clean_tone(&h, b, h.legs[a].freq, 25.0);
    expect_clean_decode(&h);
    h_free(&h);
}

/* Lowest level of @freq over sliding windows of @win_ms (hop @hop_ms) of
 * leg @i's audio from @from_ms to @to_ms: a dropout or glitch in a
 * continuous tone shows up as a dip. Stores the window start in @at_ms. */
static double min_window_db(struct harness *h, unsigned i, uint32_t from_ms,
                            uint32_t to_ms, uint32_t win_ms, uint32_t hop_ms,
                            double freq, uint32_t *at_ms)
{
    struct ta_pcm *p = h_pcm(h, i);
    double lo = 1000.0;

    for (uint32_t t = from_ms; t + win_ms <= to_ms; t += hop_ms) {
        size_t a = ta_pcm_index_ms(p, t), b = ta_pcm_index_ms(p, t + win_ms);
        double db;

        if (b - a < (size_t)win_ms * p->rate / 1000)
            break;
        db = ta_tone_db(p->s + a, b - a, freq, p->rate);
        if (db < lo) {
            lo = db;
            *at_ms = t;
        }
    }
    return lo;
}

Test(engine, switching_between_forwarded_and_mixed_is_seamless)
{
    struct harness h;
    unsigned b, d;
    uint32_t at = 0, total_ms = 0;
    double lo;
    int32_t step;
    struct mix_leg_stats st;
    struct ta_pcm *p;

    h_init(&h, "fwd-switch");
    h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    /* a talks throughout; b comes and goes, so d's stream switches between
     * a's forwarded packets (a alone) and the engine's mix (both). */
    for (int k = 0; k < 4; k++) {
        h.legs[b].tone_on = false;
        h_run_ms(&h, 1500);
        h.legs[b].tone_on = true;
        h_run_ms(&h, 1000);
        total_ms += 2500;
    }
    mix_leg_stats(h.legs[d].leg, &st);
    if (verbose())
        fprintf(stderr, "fwd-switch: %lu of %lu packets forwarded\n",
                (unsigned long)st.forwarded, (unsigned long)st.packets_out);
    /* 40 ms windows: short enough to see a dip at a switch, long enough
     * that the codec's own ripple stays within a few dB (about -16 dBFS at
     * worst, measured with forwarding disabled). */
    lo = min_window_db(&h, d, SKIP_MS, total_ms - 100, 40, 5, 440, &at);
    p = h_pcm(&h, d);
    step = ta_max_step(p->s + ta_pcm_index_ms(p, SKIP_MS),
                       p->n - ta_pcm_index_ms(p, SKIP_MS));
    if (verbose())
        fprintf(stderr, "fwd-switch: a's tone dips to %.1f dBFS at %u ms; max step %d\n",
                lo, at, step);
    cr_expect_geq(lo, TONE_DB - 6.0, "a's tone dips to %.1f dBFS at %u ms of d's audio",
                  lo, at);
    /* Two -12 dBFS tones below 700 Hz move at most ~1200 per sample at
     * 48 kHz; a click from a decoder fed another encoder's stream moves
     * far more. */
    cr_expect_leq(step, 3000, "d's audio jumps by %d in one sample", step);
    expect_clean_decode(&h);
    h_free(&h);
}

/* A talker's lost packets are concealed smoothly, whether the listener
 * gets a mix or the talker's own packets forwarded. */
Test(engine, lost_packets_are_concealed)
{
    struct harness h;
    unsigned a, d;
    struct hleg *A;
    struct mix_leg_stats st;
    uint32_t at = 0, sent = 0;
    double lo;

    h_init(&h, "loss");
    a = h_leg(&h, "a440", SEND_NONE, 440, TONE_DB);
    d = h_leg(&h, "d", SEND_OPUS, 0, TA_DB_FLOOR);
    A = &h.legs[a];
    cr_assert_eq(ta_tx_new(&A->tx, 48000, H_FRAME_MS, 0, 0, 0), 0);
    /* a's network loses one packet in 17 (about 6 %), never two in a row. */
    for (unsigned c = 0; c < 400; c++) {
        if (c % 2 == 0) {
            int16_t pcm[960];
            uint8_t pkt[TA_MAX_PACKET];
            struct mix_in_meta m = {.arrival_ns = h.now_ns, .level = 0xff};
            int len;

            ta_sine_fill(&A->sine, pcm, 960);
            len = ta_tx_encode(A->tx, pcm, pkt, sizeof(pkt), &m.seq, &m.ts);
            cr_assert_gt(len, 0);
            if (++sent % 17 != 0)
                cr_assert_eq(mix_leg_push(A->leg, &m, pkt, (uint32_t)len), 0);
        }
        h_step(&h);
    }
    mix_leg_stats(A->leg, &st);
    if (verbose())
        fprintf(stderr, "loss: lost %lu fec %lu concealed %lu\n", (unsigned long)st.lost,
                (unsigned long)st.fec_recovered, (unsigned long)st.concealed);
    cr_expect_geq(st.lost, sent / 17 - 2, "%lu lost counted", (unsigned long)st.lost);
    cr_expect_gt(st.fec_recovered + st.concealed, 0u);
    lo = min_window_db(&h, d, SKIP_MS, 3900, 40, 5, 440, &at);
    if (verbose())
        fprintf(stderr, "loss: a's tone dips to %.1f dBFS at %u ms\n", lo, at);
    cr_expect_geq(lo, TONE_DB - 6.0, "a's tone dips to %.1f dBFS at %u ms", lo, at);
    expect_clean_decode(&h);
    h_free(&h);
}

/* Network jitter: each of a's packets is held for 0 to 60 ms (so some
 * overtake others); the jitter buffer absorbs it and the listener hears an
 * unbroken tone. */
Test(engine, jittered_arrivals_play_smoothly)
{
    enum { HOLD = 64, MAX_DELAY_CYCLES = 6 };
    struct held {
        uint64_t due;           /* cycle at which it is delivered */
        struct mix_in_meta m;
        int len;
        uint8_t data[TA_MAX_PACKET];
    };
    static struct held q[HOLD];
    struct harness h;
    unsigned a, d, nq = 0;
    struct hleg *A;
    uint32_t seed = 12345, at = 0;
    struct mix_leg_stats st;
    double lo;

    h_init(&h, "jitter");
    a = h_leg(&h, "a440", SEND_NONE, 440, TONE_DB);
    d = h_leg(&h, "d", SEND_OPUS, 0, TA_DB_FLOOR);
    A = &h.legs[a];
    cr_assert_eq(ta_tx_new(&A->tx, 48000, H_FRAME_MS, 0, 0, 0), 0);
    for (unsigned c = 0; c < 500; c++) {
        if (c % 2 == 0) {
            int16_t pcm[960];
            struct held *p = &q[nq++];

            cr_assert_leq(nq, (unsigned)HOLD);
            ta_sine_fill(&A->sine, pcm, 960);
            p->len = ta_tx_encode(A->tx, pcm, p->data, sizeof(p->data), &p->m.seq,
                                  &p->m.ts);
            cr_assert_gt(p->len, 0);
            p->m.level = 0xff;
            p->due = h.cycle + xorshift(&seed) % (MAX_DELAY_CYCLES + 1);
        }
        for (unsigned k = 0; k < nq;) {
            if (q[k].due > h.cycle) {
                k++;
                continue;
            }
            q[k].m.arrival_ns = h.now_ns;
            cr_assert_eq(mix_leg_push(A->leg, &q[k].m, q[k].data,
                                      (uint32_t)q[k].len), 0);
            q[k] = q[--nq];
        }
        h_step(&h);
    }
    mix_leg_stats(A->leg, &st);
    lo = min_window_db(&h, d, 1000, 4900, 40, 5, 440, &at);
    if (verbose())
        fprintf(stderr, "jitter: target %u ms, late %lu, concealed %lu, dropped %lu; dip %.1f dBFS at %u ms\n",
                st.jb_target_ms, (unsigned long)st.late, (unsigned long)st.concealed,
                (unsigned long)st.dropped_delay, lo, at);
    cr_expect_geq(lo, TONE_DB - 6.0, "a's tone dips to %.1f dBFS at %u ms", lo, at);
    cr_expect_leq(st.jb_target_ms, 120u, "jitter buffer target %u ms", st.jb_target_ms);
    expect_clean_tone(&h, d, 440, 20.0);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- controls ---- */

Test(engine, mute_removes_a_talker_from_every_mix)
{
    struct harness h;
    unsigned a, b, c, d;
    size_t pa, pc, pd;

    h_init(&h, "mute");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 1000);

    cr_assert_eq(mix_leg_set_muted(h.legs[b].leg, true), 0);
    pa = h_pos(&h, a);
    pc = h_pos(&h, c);
    pd = h_pos(&h, d);
    h_run_ms(&h, 1500);
    expect_not_hears(&h, a, b, pa);
    expect_not_hears(&h, c, b, pc);
    expect_not_hears(&h, d, b, pd);
    /* The others are unaffected, and the muted leg still hears. */
    expect_hears(&h, a, c, pa);
    expect_hears(&h, d, a, pd);
    expect_hears(&h, d, c, pd);
    expect_hears(&h, b, a, h_pos(&h, b) - 48000);
    expect_hears(&h, b, c, h_pos(&h, b) - 48000);

    cr_assert_eq(mix_leg_set_muted(h.legs[b].leg, false), 0);
    pd = h_pos(&h, d);
    pa = h_pos(&h, a);
    h_run_ms(&h, 1200);
    expect_hears(&h, d, b, pd);
    expect_hears(&h, a, b, pa);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, deaf_leg_hears_nothing_but_is_heard)
{
    struct harness h;
    unsigned a, b, c, d;
    size_t pc, pd;
    double rms;

    h_init(&h, "deaf");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 800);

    cr_assert_eq(mix_leg_set_deaf(h.legs[c].leg, true), 0);
    cr_assert_eq(mix_leg_set_deaf(h.legs[d].leg, true), 0);
    pc = h_pos(&h, c);
    pd = h_pos(&h, d);
    h_run_ms(&h, 1500);
    /* A deaf leg may get packets of silence or none at all; either way
     * what it decodes is near-silence. */
    rms = rms_since(&h, c, pc, SETTLE_MS);
    cr_expect_leq(rms, -60.0, "deaf talker decodes at %.1f dBFS", rms);
    rms = rms_since(&h, d, pd, SETTLE_MS);
    cr_expect_leq(rms, -60.0, "deaf listener decodes at %.1f dBFS", rms);
    expect_not_hears(&h, c, a, pc);
    expect_not_hears(&h, c, b, pc);
    expect_not_hears(&h, d, a, pd);
    /* Deaf is not mute: the others still hear c. */
    expect_hears(&h, a, c, h_pos(&h, a) - 48000);
    expect_hears(&h, b, c, h_pos(&h, b) - 48000);

    cr_assert_eq(mix_leg_set_deaf(h.legs[d].leg, false), 0);
    /* Mark after the first packets: if none came while deaf, the receiver
     * fills the gap with silence when they resume. */
    h_run_ms(&h, 200);
    pd = h_pos(&h, d);
    h_run_ms(&h, 1000);
    expect_hears(&h, d, a, pd);
    expect_hears(&h, d, c, pd);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, gain_lowers_a_talker_in_the_others_mix)
{
    struct harness h;
    unsigned a, b, c, d;
    size_t pc, pd;
    double la, lb, diff;

    h_init(&h, "gain");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 600);
    cr_assert_eq(mix_leg_set_gain(h.legs[a].leg, -12.0f), 0);
    pc = h_pos(&h, c);
    pd = h_pos(&h, d);
    h_run_ms(&h, 1800);

    /* Judge against a talker at 0 dB in the same mix. */
    la = heard(&h, d, pd, SETTLE_MS, 440);
    lb = heard(&h, d, pd, SETTLE_MS, 660);
    diff = lb - la;
    cr_expect(fabs(diff - 12.0) <= 2.0, "silent hears a %.1f dB below b (%.1f vs %.1f)",
              diff, la, lb);
    la = heard(&h, c, pc, SETTLE_MS, 440);
    lb = heard(&h, c, pc, SETTLE_MS, 660);
    diff = lb - la;
    cr_expect(fabs(diff - 12.0) <= 2.0, "c hears a %.1f dB below b (%.1f vs %.1f)",
              diff, la, lb);
    /* Gain is what others hear; a itself still hears b and c normally. */
    expect_hears(&h, a, b, h_pos(&h, a) - 48000);
    expect_hears(&h, a, c, h_pos(&h, a) - 48000);
    expect_clean_decode(&h);
    h_free(&h);
}

/* A single talker may be forwarded to listeners as its own packets; gain
 * and exclusions must still hold for it. */
Test(engine, lone_talker_gain_and_exclusion)
{
    struct harness h;
    unsigned a, d, x;
    size_t pd, px;
    double la;

    h_init(&h, "lone");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    d = h_leg(&h, "d", SEND_OPUS, 0, TA_DB_FLOOR);
    x = h_leg(&h, "x", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 800);
    expect_hears(&h, d, a, 0);
    expect_hears(&h, x, a, 0);

    cr_assert_eq(mix_leg_set_gain(h.legs[a].leg, -12.0f), 0);
    cr_assert_eq(mix_leg_exclude(h.legs[x].leg, h.legs[a].leg, true), 0);
    pd = h_pos(&h, d);
    px = h_pos(&h, x);
    h_run_ms(&h, 1500);
    la = heard(&h, d, pd, SETTLE_MS, 440);
    cr_expect(fabs(la - (TONE_DB - 12.0)) <= 2.0,
              "lone talker at -12 dB gain heard at %.1f dBFS, want ~%.1f", la,
              TONE_DB - 12.0);
    expect_not_hears(&h, x, a, px);
    expect_clean_decode(&h);
    h_free(&h);
}

struct suspend_watch {
    unsigned leg;
    bool armed;
    unsigned packets;
};

static void count_suspended_output(struct harness *h, unsigned leg,
                                   const struct mix_out_meta *m,
                                   const uint8_t *pkt, int len)
{
    struct suspend_watch *w = h->data;

    if (w->armed && leg == w->leg)
        w->packets++;
}

Test(engine, suspended_leg_gets_nothing_and_is_not_heard)
{
    struct harness h;
    struct suspend_watch w = {0};
    unsigned a, b, c, d;
    size_t pa, pd, pb;
    struct mix_leg_stats st0, st1;
    uint64_t before;

    h_init(&h, "suspend");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h.on_packet = count_suspended_output;
    h.data = &w;
    w.leg = b;
    h_run_ms(&h, 800);

    /* The command is applied at the start of the next cycle, and every
     * packet made before it has already been taken: from here on b must
     * get nothing at all. */
    cr_assert_eq(mix_leg_set_suspended(h.legs[b].leg, true), 0);
    w.armed = true;
    pa = h_pos(&h, a);
    pd = h_pos(&h, d);
    h_run_ms(&h, 100);
    mix_leg_stats(h.legs[b].leg, &st0);
    h_run_ms(&h, 1400);
    mix_leg_stats(h.legs[b].leg, &st1);
    cr_expect_eq(w.packets, 0u, "suspended leg got %u packets", w.packets);
    cr_expect_eq(st1.decodes, st0.decodes, "suspended leg still decoded");
    cr_expect_eq(st1.encodes_own, st0.encodes_own, "suspended leg still encoded");
    expect_not_hears(&h, a, b, pa);
    expect_not_hears(&h, d, b, pd);
    expect_hears(&h, a, c, pa);
    expect_hears(&h, d, a, pd);

    /* Resumed: both directions come back. */
    cr_assert_eq(mix_leg_set_suspended(h.legs[b].leg, false), 0);
    w.armed = false;
    /* b's receiver fills the suspended time with silence when packets
     * resume, so mark its position only once they have. */
    pd = h_pos(&h, d);
    before = h.legs[b].packets;
    h_run_ms(&h, 200);
    cr_expect_gt(h.legs[b].packets, before, "no packets after resuming");
    pb = h_pos(&h, b);
    h_run_ms(&h, 1200);
    expect_hears(&h, b, a, pb);
    expect_hears(&h, b, c, pb);
    expect_hears(&h, d, b, pd);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, exclusion_hides_one_speaker_from_one_listener)
{
    struct harness h;
    unsigned y, z, c, x;
    size_t px, pc, pz;

    h_init(&h, "exclude");
    /* x excludes y at 660 Hz and hears 440 and 880: 660 is no sum or
     * difference of those two, so codec distortion cannot fake y. */
    y = h_leg(&h, "y660", SEND_OPUS, 660, TONE_DB);
    z = h_leg(&h, "z440", SEND_OPUS, 440, TONE_DB);
    c = h_leg(&h, "c880", SEND_OPUS, 880, TONE_DB);
    x = h_leg(&h, "x", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 600);

    cr_assert_eq(mix_leg_exclude(h.legs[x].leg, h.legs[y].leg, true), 0);
    cr_assert_eq(mix_leg_exclude(h.legs[c].leg, h.legs[z].leg, true), 0);
    px = h_pos(&h, x);
    pc = h_pos(&h, c);
    pz = h_pos(&h, z);
    h_run_ms(&h, 1500);
    expect_not_hears(&h, x, y, px);
    expect_hears(&h, x, z, px);
    expect_hears(&h, x, c, px);
    /* A talker with an exclusion: hears neither itself nor the excluded. */
    expect_not_hears(&h, c, z, pc);
    expect_not_hears(&h, c, c, pc);
    expect_hears(&h, c, y, pc);
    /* Exclusions are per listener. */
    expect_hears(&h, z, y, pz);
    expect_hears(&h, z, c, pz);

    cr_assert_eq(mix_leg_exclude(h.legs[x].leg, h.legs[y].leg, false), 0);
    px = h_pos(&h, x);
    h_run_ms(&h, 1000);
    expect_hears(&h, x, y, px);
    expect_hears(&h, x, z, px);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, exclusion_limit)
{
    struct harness h;
    unsigned x, s[MIX_MAX_EXCLUDE + 1];

    h_init(&h, "exclude-limit");
    x = h_leg(&h, "x", SEND_NONE, 0, TA_DB_FLOOR);
    for (unsigned k = 0; k <= MIX_MAX_EXCLUDE; k++)
        s[k] = h_leg(&h, "s", SEND_NONE, 0, TA_DB_FLOOR);
    h_run_ms(&h, 40);
    for (unsigned k = 0; k < MIX_MAX_EXCLUDE; k++)
        cr_expect_eq(mix_leg_exclude(h.legs[x].leg, h.legs[s[k]].leg, true), 0);
    cr_expect_eq(mix_leg_exclude(h.legs[x].leg, h.legs[s[MIX_MAX_EXCLUDE]].leg, true),
                 -ENOSPC);
    cr_expect_eq(mix_leg_exclude(h.legs[x].leg, h.legs[s[0]].leg, false), 0);
    cr_expect_eq(mix_leg_exclude(h.legs[x].leg, h.legs[s[MIX_MAX_EXCLUDE]].leg, true),
                 0);
    h_run_ms(&h, 100);
    h_free(&h);
}

/* ---- rates and codecs ---- */

Test(engine, leg_at_16k_keeps_its_pitch_both_ways)
{
    struct harness h;
    struct mix_leg_config c;
    unsigned w, a, d;

    h_init(&h, "rate16k");
    mix_leg_config_default(&c);
    c.rate = 16000;
    w = h_leg_cfg(&h, "w16k440", &c, SEND_OPUS, 440, TONE_DB);
    a = h_leg(&h, "a660", SEND_OPUS, 660, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 2500);

    cr_assert_eq(h_pcm(&h, w)->rate, 16000u);
    /* The 48 kHz legs hear 440 Hz, not a tone shifted by the 3:1 ratio. */
    expect_hears(&h, d, w, 0);
    expect_hears(&h, a, w, 0);
    expect_absent_at(&h, d, 0, 440.0 * 3, TONE_DB, "16k played as 48k");
    expect_absent_at(&h, d, 0, 440.0 / 3, TONE_DB, "48k played as 16k");
    /* The 16 kHz leg, decoding at 16 kHz, hears 660 Hz. */
    expect_hears(&h, w, a, 0);
    expect_not_hears(&h, w, w, 0);
    /* Opus at 16 kHz (SILK) renders a pure tone at about 22 dB SNR even
     * without a mixer in between, so the bar is lower than at 48 kHz. */
    expect_clean_tone(&h, w, 660, 17.0);
    expect_clean_tone(&h, a, 440, 17.0);
    expect_absent_at(&h, w, 0, 660.0 * 3, TONE_DB, "16k played as 48k");
    expect_absent_at(&h, w, 0, 660.0 / 3, TONE_DB, "48k played as 16k");
    expect_clean_decode(&h);
    h_free(&h);
}

static void check_pcmu_packets(struct harness *h, unsigned leg,
                               const struct mix_out_meta *m,
                               const uint8_t *pkt, int len)
{
    struct hleg *L = &h->legs[leg];

    if (L->cfg.codec != MIX_CODEC_PCMU || (m->flags & MIX_OUT_KEEPALIVE))
        return;
    /* 20 ms of 8 kHz: 160 bytes, timestamps 160 apart. */
    cr_expect_eq(len, 160, "PCMU payload of %d bytes", len);
    if (L->have_last && m->ts - L->last.ts != 160)
        L->ts_step_bad++;
}

Test(engine, pcmu_leg_hears_and_is_heard)
{
    struct harness h;
    struct mix_leg_config c;
    unsigned p, a, d;

    h_init(&h, "pcmu");
    h.on_packet = check_pcmu_packets;
    mix_leg_config_default(&c);
    c.codec = MIX_CODEC_PCMU;
    c.rate = 8000;
    p = h_leg_cfg(&h, "pcmu660", &c, SEND_PCMU, 660, TONE_DB);
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 2500);

    cr_expect_geq(h.legs[p].packets, 2500 / 20 - 10);
    cr_expect_eq(h.legs[p].ts_step_bad, 0u, "%u PCMU timestamp steps not 160",
                 h.legs[p].ts_step_bad);
    cr_assert_eq(h_pcm(&h, p)->rate, 8000u);
    expect_hears(&h, p, a, 0);
    expect_not_hears(&h, p, p, 0);
    expect_clean_tone(&h, p, 440, 25.0);
    expect_clean_tone(&h, a, 660, 25.0);
    expect_hears(&h, a, p, 0);
    expect_hears(&h, d, p, 0);
    expect_hears(&h, d, a, 0);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- the K loudest ---- */

Test(engine, only_the_three_loudest_of_six_are_mixed)
{
    static const double freq[6] = {407, 541, 673, 863, 1013, 1187};
    static const double db[6] = {-6, -9, -12, -24, -27, -30};
    struct harness h;
    unsigned t[6], l;
    struct mix_leg_stats st;

    h_init(&h, "loudest3");
    /* Frequencies chosen so that no sum or difference of up to five of the
     * three loud tones falls within 15 Hz of a quiet one: distortion of
     * the loud mix cannot pass for a quiet talker. */
    for (int k = 0; k < 6; k++) {
        char name[16];

        snprintf(name, sizeof(name), "t%d", (int)freq[k]);
        t[k] = h_leg(&h, name, SEND_OPUS, freq[k], db[k]);
    }
    l = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 3000);

    /* The three loud tones sum past full scale, so the limiter may take
     * a little off them. */
    for (int k = 0; k < 3; k++)
        expect_present_at(&h, l, 0, freq[k], db[k], 4.0, "among the loudest");
    for (int k = 3; k < 6; k++)
        expect_absent_at(&h, l, 0, freq[k], db[k], "not among the loudest");
    for (int k = 0; k < 6; k++) {
        mix_leg_stats(h.legs[t[k]].leg, &st);
        cr_expect_eq(st.mixed, k < 3, "t%d mixed = %d", (int)freq[k], st.mixed);
        cr_expect(st.talking, "t%d should be talking", (int)freq[k]);
    }
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, louder_newcomers_displace_quieter_talkers)
{
    static const double freq[6] = {407, 541, 673, 863, 1013, 1187};
    static const double db[6] = {-6, -9, -12, -24, -27, -30};
    struct harness h;
    unsigned t[6], l;
    size_t pl;

    h_init(&h, "displace");
    for (int k = 0; k < 6; k++) {
        t[k] = h_leg(&h, "t", SEND_OPUS, freq[k], db[k]);
        h.legs[t[k]].tone_on = false;
    }
    l = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    /* The quiet three talk first and fill the K = 3 places... */
    for (int k = 3; k < 6; k++)
        h.legs[t[k]].tone_on = true;
    h_run_ms(&h, 1200);
    for (int k = 3; k < 6; k++)
        expect_present_at(&h, l, 0, freq[k], db[k], PRESENT_TOL_DB, "alone");
    /* ...then the loud three start, 12 dB or more above them, and take
     * the places over. */
    for (int k = 0; k < 3; k++)
        h.legs[t[k]].tone_on = true;
    pl = h_pos(&h, l);
    h_run_ms(&h, 2000);
    for (int k = 0; k < 3; k++)
        expect_present_at(&h, l, pl, freq[k], db[k], 4.0, "louder newcomer");
    for (int k = 3; k < 6; k++)
        expect_absent_at(&h, l, pl, freq[k], db[k], "displaced");
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, level_extension_selects_without_decoding_everyone)
{
    static const double freq[6] = {407, 541, 673, 863, 1013, 1187};
    static const double db[6] = {-6, -9, -12, -24, -27, -30};
    struct harness h;
    struct mix_engine_stats st0, st1;
    unsigned t[6], l;
    const unsigned frames = 50;

    h_init(&h, "level-ext");
    for (int k = 0; k < 6; k++) {
        t[k] = h_leg(&h, "t", SEND_OPUS, freq[k], db[k]);
        h.legs[t[k]].send_level = true;
    }
    l = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h.legs[l].send_level = true;
    h_run_ms(&h, 1000);
    mix_engine_stats(h.e, &st0);
    h_run_ms(&h, frames * 20);
    mix_engine_stats(h.e, &st1);
    h_run_ms(&h, 1000);

    for (int k = 0; k < 3; k++)
        expect_present_at(&h, l, 0, freq[k], db[k], 4.0, "among the loudest");
    for (int k = 3; k < 6; k++)
        expect_absent_at(&h, l, 0, freq[k], db[k], "not among the loudest");
    /* Legs that say how loud they are need not be decoded unless they are
     * among the K mixed: at most 3 of the 7 legs per frame. */
    cr_expect_leq(st1.decodes - st0.decodes, 3u * frames,
                  "%lu decodes in %u frames with 3 legs mixed",
                  (unsigned long)(st1.decodes - st0.decodes), frames);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- encode sharing ---- */

enum { SHARE_TALKERS = 3, SHARE_SILENT = 20 };

struct share_check {
    bool armed;
    unsigned first_silent;
    uint64_t cycle;
    unsigned got[H_MAX_LEGS];
    struct mix_out_meta ref_meta;
    uint8_t ref[MIX_MAX_PACKET];
    bool have_ref;
    unsigned mismatches;
    unsigned compared;
};

static void compare_silent_payloads(struct harness *h, unsigned leg,
                                    const struct mix_out_meta *m,
                                    const uint8_t *pkt, int len)
{
    struct share_check *s = h->data;

    if (!s->armed || leg < s->first_silent)
        return;
    if (s->cycle != h->cycle) {
        s->cycle = h->cycle;
        s->have_ref = false;
    }
    s->got[leg]++;
    if (!s->have_ref) {
        s->ref_meta = *m;
        memcpy(s->ref, pkt, (size_t)len);
        s->have_ref = true;
        return;
    }
    s->compared++;
    if (m->ts != s->ref_meta.ts || m->len != s->ref_meta.len ||
        memcmp(pkt, s->ref, (size_t)len) != 0)
        s->mismatches++;
}

Test(engine, silent_listeners_share_one_encode)
{
    struct harness h;
    struct share_check s = {0};
    struct mix_engine_stats st0, st1;
    static const double freq[SHARE_TALKERS] = {440, 660, 880};
    unsigned frames = 50;

    h_init(&h, "share");
    for (unsigned k = 0; k < SHARE_TALKERS; k++)
        h_leg(&h, "talker", SEND_OPUS, freq[k], TONE_DB);
    s.first_silent = h.n;
    for (unsigned k = 0; k < SHARE_SILENT; k++)
        h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h.on_packet = compare_silent_payloads;
    h.data = &s;
    h_run_ms(&h, 600);

    mix_engine_stats(h.e, &st0);
    s.armed = true;
    for (unsigned c = 0; c < 2 * frames; c++)
        h_step(&h);
    mix_engine_stats(h.e, &st1);

    /* Three mix-minus encodes for the talkers and one shared by all twenty
     * listeners of the full mix, per 20 ms frame, exactly. */
    cr_expect_eq(st1.encodes - st0.encodes, 4u * frames, "%lu encodes in %u frames",
                 (unsigned long)(st1.encodes - st0.encodes), frames);
    cr_expect_eq(st1.last_encodes, 4u);
    cr_expect_eq(st1.decodes - st0.decodes, (uint64_t)h.n * frames,
                 "one decode per leg and frame");
    cr_expect_gt(s.compared, (SHARE_SILENT - 1) * (frames - 1));
    cr_expect_eq(s.mismatches, 0u, "%u of %u silent payloads differ", s.mismatches,
                 s.compared);
    for (unsigned i = s.first_silent; i < h.n; i++)
        cr_expect_eq(s.got[i], frames, "silent leg %u got %u packets", i, s.got[i]);
    /* And what they share is the right mix. */
    for (unsigned k = 0; k < SHARE_TALKERS; k++)
        expect_hears(&h, h.n - 1, k, 0);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- forwarding a lone talker (forward_single_talker) ---- */

enum {
    FW_MAX_TALKERS = 4,
    FW_KEEP = 64,           /* packets of each talker kept for comparison */
    FW_MAX_DROPS = 64,
    FW_TS_STEP = 48 * H_FRAME_MS, /* RTP ticks per room frame */
};

/* Talker tones whose phase does not come round in a whole number of 20 ms
 * frames for seconds, so that no two of a talker's packets are alike. */
static const double FW_FREQ_A = 443.7;
static const double FW_FREQ_B = 657.3;

/* A packet a talker sent, kept so that it can be recognised in what the
 * others get. */
struct fw_sent {
    bool used;
    uint32_t seq;           /* RTP sequence number (no wrap in a test) */
    uint16_t len;
    uint8_t data[TA_MAX_PACKET];
};

/* Tells apart what each leg gets, by comparing payloads with what the
 * talkers sent: a forwarded packet is byte-identical to one of theirs; the
 * bridge's mixes and silence are identical to none. Optionally loses one in
 * @drop_every of a talker's packets on the way in. */
struct fwd_watch {
    unsigned talker[FW_MAX_TALKERS];    /* leg indices of the talkers */
    unsigned ntalkers;
    bool armed;                         /* counting (and dropping) */
    int drop_leg;                       /* leg whose packets are lost, or -1 */
    unsigned drop_every;                /* one in this many once armed */
    unsigned drop_sent;                 /* its packets sent while armed */
    uint32_t dropped[FW_MAX_DROPS];     /* sequence numbers lost */
    unsigned ndropped;
    struct fw_sent sent[FW_MAX_TALKERS][FW_KEEP]; /* by seq % FW_KEEP */
    bool shared_check[H_MAX_LEGS];      /* these legs should all get the same
                                           bytes in a cycle */

    /* Per receiving leg, while armed. */
    unsigned from[H_MAX_LEGS][FW_MAX_TALKERS]; /* talker's own packets */
    unsigned other[H_MAX_LEGS];         /* anything else (mix, silence) */
    unsigned lost[H_MAX_LEGS];          /* MIX_OUT_LOST records */
    uint32_t lost_ts[H_MAX_LEGS][FW_MAX_DROPS]; /* their timestamps */
    /* Timeline: talker packet s forwarded at ts T must be followed by
     * packet s + k at T + k frames; breaks counts the steps that are not. */
    bool have_prev[H_MAX_LEGS];
    uint32_t prev_seq[H_MAX_LEGS], prev_ts[H_MAX_LEGS];
    uint32_t offset[H_MAX_LEGS];        /* ts - seq * FW_TS_STEP, latest */
    unsigned breaks[H_MAX_LEGS];
    /* shared_check: one reference payload per cycle */
    uint64_t ref_cycle;
    bool have_ref;
    uint16_t ref_len;
    uint8_t ref[MIX_MAX_PACKET];
    unsigned compared, mismatches;
};

static int fw_talker(const struct fwd_watch *w, unsigned leg)
{
    for (unsigned t = 0; t < w->ntalkers; t++)
        if (w->talker[t] == leg)
            return (int)t;
    return -1;
}

static bool fw_on_send(struct harness *h, unsigned leg,
                       const struct mix_in_meta *m, const uint8_t *pkt, int len)
{
    struct fwd_watch *w = h->data;
    int t = fw_talker(w, leg);
    struct fw_sent *s;

    if (t < 0)
        return true;
    if (w->armed && (int)leg == w->drop_leg && ++w->drop_sent % w->drop_every == 0) {
        cr_assert_lt(w->ndropped, (unsigned)FW_MAX_DROPS);
        w->dropped[w->ndropped++] = m->seq;
        return false;
    }
    s = &w->sent[t][m->seq % FW_KEEP];
    s->used = true;
    s->seq = m->seq;
    s->len = (uint16_t)len;
    memcpy(s->data, pkt, (size_t)len);
    return true;
}

static bool fw_same(const struct fw_sent *s, const uint8_t *pkt, int len)
{
    return s->used && s->len == (uint16_t)len && memcmp(s->data, pkt, (size_t)len) == 0;
}

/* The talker (index into w->talker) whose packet @pkt is, with its
 * sequence number in @seq; -1 when it is nobody's. A steady tone whose
 * period divides a whole number of frames makes identical packets (440 Hz
 * every 5 frames), and the forwarding tests use tones that do not, but to
 * be safe the packet that continues @leg's forwarded timeline is preferred,
 * then the newest. */
static int fw_match(const struct fwd_watch *w, unsigned leg, uint32_t ts,
                    const uint8_t *pkt, int len, uint32_t *seq)
{
    if (w->have_prev[leg]) {
        uint32_t want = w->prev_seq[leg] + (ts - w->prev_ts[leg]) / FW_TS_STEP;

        for (unsigned t = 0; t < w->ntalkers; t++) {
            const struct fw_sent *s = &w->sent[t][want % FW_KEEP];
            if (s->seq == want && fw_same(s, pkt, len)) {
                *seq = want;
                return (int)t;
            }
        }
    }
    int found = -1;

    for (unsigned t = 0; t < w->ntalkers; t++) {
        for (unsigned k = 0; k < FW_KEEP; k++) {
            const struct fw_sent *s = &w->sent[t][k];
            if (fw_same(s, pkt, len) && (found < 0 || s->seq > *seq)) {
                *seq = s->seq;
                found = (int)t;
            }
        }
    }
    return found;
}

static void fw_shared(struct harness *h, struct fwd_watch *w, unsigned leg,
                      const uint8_t *pkt, int len)
{
    if (!w->shared_check[leg])
        return;
    if (!w->have_ref || w->ref_cycle != h->cycle) {
        w->ref_cycle = h->cycle;
        w->have_ref = true;
        w->ref_len = (uint16_t)len;
        memcpy(w->ref, pkt, (size_t)len);
        return;
    }
    w->compared++;
    if (w->ref_len != (uint16_t)len || memcmp(w->ref, pkt, (size_t)len) != 0)
        w->mismatches++;
}

static void fw_on_packet(struct harness *h, unsigned leg,
                         const struct mix_out_meta *m, const uint8_t *pkt,
                         int len)
{
    struct fwd_watch *w = h->data;
    uint32_t seq;
    int t;

    if (!w->armed)
        return;
    if (m->flags & MIX_OUT_LOST) {
        if (w->lost[leg] < FW_MAX_DROPS)
            w->lost_ts[leg][w->lost[leg]] = m->ts;
        w->lost[leg]++;
        return;
    }
    t = fw_match(w, leg, m->ts, pkt, len, &seq);
    if (t < 0) {
        w->other[leg]++;
        fw_shared(h, w, leg, pkt, len);
        return;
    }
    w->from[leg][t]++;
    if (w->have_prev[leg] &&
        (seq - w->prev_seq[leg]) * FW_TS_STEP != m->ts - w->prev_ts[leg])
        w->breaks[leg]++;
    w->have_prev[leg] = true;
    w->prev_seq[leg] = seq;
    w->prev_ts[leg] = m->ts;
    w->offset[leg] = m->ts - seq * FW_TS_STEP;
}

/* Sets up @w (static storage: it is large) for talkers @t[0..n) of @h and
 * installs its hooks. */
static void fw_init(struct fwd_watch *w, struct harness *h, const unsigned *t,
                    unsigned n)
{
    memset(w, 0, sizeof(*w));
    cr_assert_leq(n, (unsigned)FW_MAX_TALKERS);
    memcpy(w->talker, t, n * sizeof(*t));
    w->ntalkers = n;
    w->drop_leg = -1;
    h->on_send = fw_on_send;
    h->on_packet = fw_on_packet;
    h->data = w;
}

static void leg_stats(struct harness *h, unsigned i, struct mix_leg_stats *st)
{
    mix_leg_stats(h->legs[i].leg, st);
}

/* One talker, four listeners: after the talker's first frames nobody needs
 * a mix, so nothing is encoded at all; every listener gets exactly the
 * talker's packets, in order, and hears its tone; the talker gets the
 * cached silence packet. */
Test(engine, fwd_lone_talker_is_forwarded_without_encoding)
{
    enum { LISTENERS = 4, FRAMES = 100 };
    static struct fwd_watch w;
    struct harness h;
    struct mix_engine_stats e0, e1;
    struct mix_leg_stats st0[1 + LISTENERS], st1;
    unsigned a;

    h_init_fwd(&h, "fwd-lone");
    a = h_leg(&h, "a444", SEND_OPUS, FW_FREQ_A, TONE_DB);
    for (unsigned k = 0; k < LISTENERS; k++)
        h_leg(&h, "listener", SEND_OPUS, 0, TA_DB_FLOOR);
    fw_init(&w, &h, &a, 1);
    h_run_ms(&h, 600);

    mix_engine_stats(h.e, &e0);
    for (unsigned i = 0; i < h.n; i++)
        leg_stats(&h, i, &st0[i]);
    w.armed = true;
    h_run_ms(&h, FRAMES * H_FRAME_MS);
    mix_engine_stats(h.e, &e1);

    cr_expect_eq(e1.encodes - e0.encodes, 0u, "%lu encodes in %u frames of a lone talker",
                 (unsigned long)(e1.encodes - e0.encodes), FRAMES);
    cr_expect_eq(e1.last_encodes, 0u);
    for (unsigned i = 0; i < h.n; i++) {
        leg_stats(&h, i, &st1);
        cr_expect_eq(st1.encodes_own - st0[i].encodes_own, 0u, "leg %u encoded", i);
        cr_expect_eq(st1.packets_out - st0[i].packets_out, FRAMES, "leg %u: %lu packets out",
                     i, (unsigned long)(st1.packets_out - st0[i].packets_out));
        cr_expect_eq(h.legs[i].lost_records, 0u, "leg %u: %lu loss records", i,
                     (unsigned long)h.legs[i].lost_records);
        if (i == a) {
            /* The talker hears nobody: silence, never its own packets. */
            cr_expect_eq(st1.forwarded - st0[i].forwarded, 0u);
            cr_expect_eq(w.from[i][0], 0u, "the talker got its own packets back");
            cr_expect_eq(w.other[i], FRAMES);
            continue;
        }
        cr_expect_eq(w.from[i][0], FRAMES, "listener %u: %u of %u packets are the talker's",
                     i, w.from[i][0], FRAMES);
        cr_expect_eq(w.other[i], 0u, "listener %u: %u packets not the talker's", i,
                     w.other[i]);
        cr_expect_eq(w.breaks[i], 0u, "listener %u: %u out-of-order forwards", i,
                     w.breaks[i]);
        cr_expect_eq(st1.forwarded - st0[i].forwarded, FRAMES,
                     "listener %u: forwarded counts %lu", i,
                     (unsigned long)(st1.forwarded - st0[i].forwarded));
        expect_hears(&h, i, a, 0);
    }
    expect_not_hears(&h, a, a, 0);
    expect_clean_decode(&h);
    h_free(&h);
}

/* A packet the forwarded talker lost reaches every forwarded listener as a
 * MIX_OUT_LOST record at the timestamp the packet would have had. A
 * listener whose receiver conceals losses (as real ones do, with the
 * talker's own FEC) hears the tone on without a dip; one that plays silence
 * for a missing frame shows the gap, which proves the loss got through. */
Test(engine, fwd_lost_packet_is_passed_on_as_a_loss)
{
    enum { LISTENERS = 4, FRAMES = 150, DROP_EVERY = 17 };
    static struct fwd_watch w;
    struct harness h;
    struct mix_leg_stats st;
    unsigned a, l[LISTENERS];
    uint32_t from_ms[H_MAX_LEGS];

    h_init_fwd(&h, "fwd-loss");
    /* The talker's stream is CELT (48 kHz, Opus's default bitrate), whose
     * PLC carries a steady tone through a lost frame unchanged. (SILK's
     * in-band FEC would not help here: its encoder codes FEC only for
     * frames its VAD takes for speech, never for a pure tone, so the
     * receiver falls back to SILK's PLC, which dips by some 20 dB.) */
    a = h_leg(&h, "a444", SEND_OPUS, FW_FREQ_A, TONE_DB);
    for (unsigned k = 0; k < LISTENERS; k++) {
        l[k] = h_leg(&h, k < LISTENERS / 2 ? "conceals" : "silence-fill", SEND_OPUS,
                     0, TA_DB_FLOOR);
        h.legs[l[k]].conceal = k < LISTENERS / 2;
    }
    fw_init(&w, &h, &a, 1);
    w.drop_leg = (int)a;
    w.drop_every = DROP_EVERY;
    h_run_ms(&h, 600);
    for (unsigned k = 0; k < LISTENERS; k++)
        from_ms[k] = (uint32_t)(h_pos(&h, l[k]) * 1000 / h_pcm(&h, l[k])->rate);
    w.armed = true;
    h_run_ms(&h, FRAMES * H_FRAME_MS);
    w.armed = false;
    /* Let the packet after the last loss through before judging. */
    h_run_ms(&h, 100);

    leg_stats(&h, a, &st);
    cr_assert_geq(w.ndropped, FRAMES / DROP_EVERY - 1, "only %u packets lost", w.ndropped);
    cr_expect_geq(st.lost, w.ndropped, "talker: %lu lost counted of %u",
                  (unsigned long)st.lost, w.ndropped);
    for (unsigned k = 0; k < LISTENERS; k++) {
        unsigned i = l[k];
        struct ta_pcm *p = h_pcm(&h, i);
        uint32_t to_ms = (uint32_t)(p->n * 1000 / p->rate) - 100, at = 0;
        double lo;

        cr_expect_eq(w.other[i], 0u, "%s %u: %u packets not the talker's", h.legs[i].name,
                     i, w.other[i]);
        cr_expect_eq(w.breaks[i], 0u, "%s %u: forwarded timeline broken %u times",
                     h.legs[i].name, i, w.breaks[i]);
        cr_expect_eq(w.lost[i], w.ndropped, "%s %u: %u loss records for %u lost packets",
                     h.legs[i].name, i, w.lost[i], w.ndropped);
        cr_expect_eq(h.legs[i].lost_records, w.lost[i], "%s %u: loss records outside the window",
                     h.legs[i].name, i);
        /* Each loss record stands exactly where the lost packet would have
         * been forwarded. */
        for (unsigned d = 0; d < w.ndropped && d < w.lost[i]; d++) {
            uint32_t want = w.dropped[d] * FW_TS_STEP + w.offset[i];
            cr_expect_eq(w.lost_ts[i][d], want,
                         "%s %u: loss record at ts %u, packet %u would be at %u",
                         h.legs[i].name, i, w.lost_ts[i][d], w.dropped[d], want);
        }
        cr_expect_eq(w.from[i][0] + w.lost[i], FRAMES, "%s %u: %u forwarded + %u lost",
                     h.legs[i].name, i, w.from[i][0], w.lost[i]);
        lo = min_window_db(&h, i, from_ms[k], to_ms, 40, 5, FW_FREQ_A, &at);
        if (verbose())
            fprintf(stderr, "fwd-loss: %s %u: tone dips to %.1f dBFS at %u ms; concealed %lu (FEC tried %lu)\n",
                    h.legs[i].name, i, lo, at,
                    (unsigned long)ta_rx_concealed(h.legs[i].rx),
                    (unsigned long)ta_rx_fec_tried(h.legs[i].rx));
        if (h.legs[i].conceal) {
            cr_expect_geq(ta_rx_concealed(h.legs[i].rx), w.ndropped);
            cr_expect_geq(lo, TONE_DB - 3.0, "%s %u: tone dips to %.1f dBFS at %u ms",
                          h.legs[i].name, i, lo, at);
        } else {
            cr_expect_lt(lo, TONE_DB - 6.0,
                         "%s %u: no dip (%.1f dBFS): did the losses reach it?",
                         h.legs[i].name, i, lo);
        }
    }
    expect_clean_decode(&h);
    h_free(&h);
}

/* A listener being forwarded talker a goes over to the mix as soon as b
 * talks too (it hears both), and stays on the mix while a's talk spurt
 * lasts, whether b falls silent or leaves: going back to a's encoder
 * mid-speech would be a second audible switch. Only after a pause, at a's
 * next talk spurt, is it forwarded again. */
Test(engine, fwd_second_talker_moves_listeners_to_the_mix_until_a_pause)
{
    enum { LISTENERS = 3 };
    static struct fwd_watch w;
    struct harness h;
    struct mix_leg_stats st;
    unsigned a, b, l[LISTENERS];
    uint64_t fwd[H_MAX_LEGS], other[H_MAX_LEGS];
    size_t pos[H_MAX_LEGS];

    h_init_fwd(&h, "fwd-second");
    a = h_leg(&h, "a444", SEND_OPUS, FW_FREQ_A, TONE_DB);
    for (unsigned k = 0; k < LISTENERS; k++)
        l[k] = h_leg(&h, "listener", SEND_OPUS, 0, TA_DB_FLOOR);
    fw_init(&w, &h, &a, 1);
    w.armed = true;

    /* a alone: forwarded. */
    h_run_ms(&h, 800);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        cr_expect_geq(st.forwarded, 800 / H_FRAME_MS - 5, "listener %u: %lu forwarded",
                      l[k], (unsigned long)st.forwarded);
        fwd[k] = st.forwarded;
        pos[k] = h_pos(&h, l[k]);
    }

    /* b joins and talks: every listener hears both, from the mix. */
    b = h_leg(&h, "b657", SEND_OPUS, FW_FREQ_B, TONE_DB);
    h_run_ms(&h, 300);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        fwd[k] = st.forwarded;
        other[k] = w.other[l[k]];
    }
    h_run_ms(&h, 1200);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        cr_expect_eq(st.forwarded, fwd[k], "listener %u forwarded while two talk", l[k]);
        cr_expect_eq(w.other[l[k]] - other[k], 1200 / H_FRAME_MS,
                     "listener %u: %u mixed packets in 1.2 s", l[k],
                     (unsigned)(w.other[l[k]] - other[k]));
        expect_hears(&h, l[k], a, pos[k]);
        expect_hears(&h, l[k], b, pos[k]);
    }

    /* b falls silent (and past its hang-over stops talking), then comes
     * back, then leaves: a talks on throughout, so nobody is forwarded
     * again, though for most of this time a is all they hear. */
    h.legs[b].tone_on = false;
    h_run_ms(&h, 1500);
    h.legs[b].tone_on = true;
    h_run_ms(&h, 500);
    h_destroy_leg(&h, b);
    for (unsigned k = 0; k < LISTENERS; k++)
        pos[k] = h_pos(&h, l[k]);
    h_run_ms(&h, 1500);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        cr_expect_eq(st.forwarded, fwd[k], "listener %u forwarded again mid-spurt (%lu more)",
                     l[k], (unsigned long)(st.forwarded - fwd[k]));
        expect_hears(&h, l[k], a, pos[k]);
        expect_not_hears(&h, l[k], b, pos[k]);
    }

    /* a pauses: still nothing forwarded (there is nothing to forward)... */
    h.legs[a].tone_on = false;
    h_run_ms(&h, 1500);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        cr_expect_eq(st.forwarded, fwd[k], "listener %u forwarded during a's pause", l[k]);
        pos[k] = h_pos(&h, l[k]);
    }
    /* ...and its next talk spurt is forwarded again, from its start. */
    h.legs[a].tone_on = true;
    h_run_ms(&h, 1000);
    for (unsigned k = 0; k < LISTENERS; k++) {
        leg_stats(&h, l[k], &st);
        cr_expect_geq(st.forwarded - fwd[k], 1000 / H_FRAME_MS - 5,
                      "listener %u: %lu forwarded in a's new talk spurt", l[k],
                      (unsigned long)(st.forwarded - fwd[k]));
        expect_hears(&h, l[k], a, pos[k]);
    }
    expect_clean_decode(&h);
    h_free(&h);
}

/* Two talkers: each hears only the other, so each gets the other's packets
 * forwarded and needs no encoder of its own; the listeners hear both, from
 * one encode per frame shared by all of them. */
Test(engine, fwd_two_talkers_hear_each_other_forwarded)
{
    enum { LISTENERS = 3, FRAMES = 100 };
    static struct fwd_watch w;
    struct harness h;
    struct mix_engine_stats e0, e1;
    struct mix_leg_stats st0[2 + LISTENERS], st1;
    unsigned t[2];

    h_init_fwd(&h, "fwd-two");
    t[0] = h_leg(&h, "a444", SEND_OPUS, FW_FREQ_A, TONE_DB);
    t[1] = h_leg(&h, "b657", SEND_OPUS, FW_FREQ_B, TONE_DB);
    for (unsigned k = 0; k < LISTENERS; k++)
        h_leg(&h, "listener", SEND_OPUS, 0, TA_DB_FLOOR);
    fw_init(&w, &h, t, 2);
    for (unsigned i = 2; i < h.n; i++)
        w.shared_check[i] = true;
    h_run_ms(&h, 600);

    mix_engine_stats(h.e, &e0);
    for (unsigned i = 0; i < h.n; i++)
        leg_stats(&h, i, &st0[i]);
    w.armed = true;
    h_run_ms(&h, FRAMES * H_FRAME_MS);
    mix_engine_stats(h.e, &e1);

    cr_expect_eq(e1.encodes - e0.encodes, FRAMES, "%lu encodes in %u frames",
                 (unsigned long)(e1.encodes - e0.encodes), FRAMES);
    cr_expect_eq(e1.last_encodes, 1u);
    for (unsigned k = 0; k < 2; k++) {
        unsigned i = t[k], o = 1 - k;

        leg_stats(&h, i, &st1);
        cr_expect_eq(st1.encodes_own - st0[i].encodes_own, 0u, "talker %u encoded", i);
        cr_expect_eq(st1.forwarded - st0[i].forwarded, FRAMES, "talker %u: %lu forwarded",
                     i, (unsigned long)(st1.forwarded - st0[i].forwarded));
        cr_expect_eq(w.from[i][o], FRAMES, "talker %u: %u of the other's packets", i,
                     w.from[i][o]);
        cr_expect_eq(w.from[i][k], 0u, "talker %u got its own packets", i);
        cr_expect_eq(w.other[i], 0u);
        cr_expect_eq(w.breaks[i], 0u);
        expect_hears(&h, i, t[o], 0);
        expect_not_hears(&h, i, i, 0);
    }
    for (unsigned i = 2; i < h.n; i++) {
        leg_stats(&h, i, &st1);
        cr_expect_eq(st1.forwarded - st0[i].forwarded, 0u, "listener %u forwarded", i);
        cr_expect_eq(st1.encodes_own - st0[i].encodes_own, 0u);
        cr_expect_eq(w.other[i], FRAMES, "listener %u: %u mixed packets", i, w.other[i]);
        expect_hears(&h, i, t[0], 0);
        expect_hears(&h, i, t[1], 0);
    }
    cr_expect_eq(w.compared, (LISTENERS - 1) * FRAMES);
    cr_expect_eq(w.mismatches, 0u, "%u of %u listener payloads differ", w.mismatches,
                 w.compared);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- overload ---- */

Test(engine, five_full_scale_talkers_do_not_wrap)
{
    static const double freq[5] = {520, 780, 1140, 1340, 1420};
    struct mix_room_settings rs;
    struct harness h;
    unsigned t[5], l;
    unsigned listeners[2];

    mix_room_settings_default(&rs);
    rs.talkers = 5;
    h_init_settings(&h, "overload", &rs);
    for (int k = 0; k < 5; k++)
        t[k] = h_leg(&h, "fs", SEND_OPUS, freq[k], 0.0);
    l = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 2500);

    listeners[0] = l;
    listeners[1] = t[0];
    for (int j = 0; j < 2; j++) {
        struct ta_pcm *p = h_pcm(&h, listeners[j]);
        size_t a = ta_pcm_index_ms(p, SKIP_MS);
        const char *name = h.legs[listeners[j]].name;
        double snr, rails;
        int32_t step, peak;

        cr_assert_gt(p->n, a + 48000);
        step = ta_max_step(p->s + a, p->n - a);
        peak = ta_peak(p->s + a, p->n - a);
        rails = ta_fraction_at_or_above(p->s + a, p->n - a, 32767);
        if (verbose())
            fprintf(stderr, "overload: %s: step %d peak %d rails %.4f%%\n", name,
                    step, peak, 100.0 * rails);
        /* A wrapped sum shows up as jumps of nearly 65536. */
        cr_expect_leq(step, 40000, "%s: sample step %d", name, step);
        /* The limiter keeps the mix under full scale; only the codec's own
         * overshoot may touch the rails, rarely. (Measured with this chain:
         * limiter 0.02 %, hard clipping 2.3 %, wrap-around 1.5 %.) */
        cr_expect_leq(rails, 0.005, "%s: %.2f %% of samples at full scale", name,
                      100.0 * rails);
        cr_expect_geq(peak, 16384, "%s: peak only %d", name, peak);
        /* Each other talker is still there, loud. */
        for (int k = (j == 1); k < 5; k++) {
            double db = ta_tone_db(p->s + a, p->n - a, freq[k], p->rate);

            if (verbose())
                fprintf(stderr, "overload: %s: %g Hz at %.1f dBFS\n", name, freq[k], db);
            cr_expect_geq(db, -24.0, "%s: %g Hz at %.1f dBFS", name, freq[k], db);
        }
        /* The tones dominate what is heard. Wrap-around turns the mix into
         * noise (about -19 dB); a limiter keeps the tones well above the
         * rest. The bound is low because the engine's 32 kb/s encoder with
         * in-band FEC (SILK/hybrid mode) renders dense tone mixes at only
         * 6-12 dB SNR even when the mix itself is clean. */
        snr = ta_snr_db(p->s + a, p->n - a, p->rate, freq + (j == 1), 5 - (j == 1));
        if (verbose())
            fprintf(stderr, "overload: %s: SNR %.1f dB\n", name, snr);
        cr_expect_geq(snr, 3.0, "%s: tones %.1f dB above the rest", name, snr);
    }
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- comfort noise, slow readers, floods ---- */

Test(engine, comfort_noise_level)
{
    struct mix_room_settings rs;
    struct harness h;
    unsigned a, b;
    double rms_off, rms_on;
    size_t pa;

    mix_room_settings_default(&rs);
    h_init_settings(&h, "comfort-noise", &rs);
    a = h_leg(&h, "a", SEND_OPUS, 0, TA_DB_FLOOR);
    b = h_leg(&h, "b", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 1000);
    rms_off = rms_since(&h, a, 0, SKIP_MS);

    rs.comfort_noise = true;
    rs.comfort_noise_dbov = -40;
    cr_assert_eq(mix_room_update(h.room, &rs), 0);
    pa = h_pos(&h, a);
    h_run_ms(&h, 1500);
    rms_on = rms_since(&h, a, pa, SETTLE_MS);
    if (verbose())
        fprintf(stderr, "comfort-noise: off %.1f dBFS, on %.1f dBFS\n", rms_off, rms_on);
    /* -40 dBov is -37 dBFS in this file's sine-referenced terms; the codec
     * may shape noise a little. */
    cr_expect(rms_on > -37.0 - 5.0 && rms_on < -37.0 + 3.0,
              "comfort noise at %.1f dBFS, want ~-37", rms_on);
    cr_expect_leq(rms_off, -80.0, "silence without comfort noise at %.1f dBFS", rms_off);
    cr_expect_gt(rms_since(&h, b, pa, SETTLE_MS), -45.0);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, a_leg_nobody_reads_loses_only_its_own_packets)
{
    struct harness h;
    unsigned a, b, x;
    struct mix_leg_stats st;
    size_t pb;
    uint64_t before;

    h_init(&h, "slow-reader");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    x = h_leg(&h, "x", SEND_OPUS, 0, TA_DB_FLOOR);
    h_run_ms(&h, 300);
    h.legs[x].no_pop = true;
    pb = h_pos(&h, b);
    h_run_ms(&h, 4000);
    mix_leg_stats(h.legs[x].leg, &st);
    cr_expect_gt(st.out_dropped, 0u, "x's output ring never filled?");
    expect_hears(&h, b, a, pb);
    expect_hears(&h, a, b, pb);
    /* Reading again: x gets fresh packets and hears the room. */
    h.legs[x].no_pop = false;
    h_step(&h);
    before = h.legs[x].packets;
    h_run_ms(&h, 200);
    cr_expect_gt(h.legs[x].packets, before);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, input_flood_is_refused_and_counted)
{
    struct harness h;
    unsigned a, b, g;
    struct mix_leg_stats st;
    unsigned refused = 0;
    size_t pb;
    uint8_t pkt[200];

    h_init(&h, "flood");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b", SEND_OPUS, 0, TA_DB_FLOOR);
    g = h_leg(&h, "flood", SEND_NONE, 0, TA_DB_FLOOR);
    h_run_ms(&h, 300);
    pb = h_pos(&h, b);
    memset(pkt, 0x42, sizeof(pkt));
    pkt[0] = 0xf8;  /* a plausible Opus TOC: CELT FB 20 ms, one frame */
    for (unsigned k = 0; k < 500; k++) {
        struct mix_in_meta m = {.seq = (uint16_t)k, .ts = 960 * k,
                                .arrival_ns = h.now_ns, .level = 0xff};
        int rc = mix_leg_push(h.legs[g].leg, &m, pkt, sizeof(pkt));

        cr_expect(rc == 0 || rc == -ENOSPC, "push: %d", rc);
        refused += rc == -ENOSPC;
    }
    h_run_ms(&h, 1500);
    mix_leg_stats(h.legs[g].leg, &st);
    cr_expect_gt(refused, 0u, "an 8 KiB ring took 500 packets of 200 bytes");
    cr_expect_eq(st.in_dropped, refused);
    cr_expect_eq(st.packets_in, 500u);
    expect_hears(&h, b, a, pb);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- silence suppression ---- */

struct ss_watch {
    bool talking_phase;
    unsigned listener;
    uint32_t ka_prev[H_MAX_LEGS];
    uint32_t ka_first[H_MAX_LEGS];
    uint32_t ka_max_gap[H_MAX_LEGS];
    unsigned ka_count[H_MAX_LEGS];
    unsigned media_in_silence[H_MAX_LEGS];
    bool first_media_seen;
    bool first_media_marker;
    unsigned later_markers;
    size_t media_pos;       /* listener's decoded position at first media */
    uint32_t media_ts;
};

static void watch_suppression(struct harness *h, unsigned leg,
                              const struct mix_out_meta *m,
                              const uint8_t *pkt, int len)
{
    struct ss_watch *w = h->data;

    if (m->flags & MIX_OUT_KEEPALIVE) {
        if (w->ka_count[leg] == 0)
            w->ka_first[leg] = m->ts;
        else if (m->ts - w->ka_prev[leg] > w->ka_max_gap[leg])
            w->ka_max_gap[leg] = m->ts - w->ka_prev[leg];
        w->ka_prev[leg] = m->ts;
        w->ka_count[leg]++;
        return;
    }
    if (!w->talking_phase) {
        w->media_in_silence[leg]++;
        return;
    }
    if (leg != w->listener)
        return;
    if (!w->first_media_seen) {
        w->first_media_seen = true;
        w->first_media_marker = (m->flags & MIX_OUT_MARKER) != 0;
        /* The position where this packet's 20 ms of audio starts. */
        w->media_pos = h_pos(h, leg) - 960;
        w->media_ts = m->ts;
    } else if (m->flags & MIX_OUT_MARKER) {
        w->later_markers++;
    }
}

Test(engine, silence_suppression_sends_keepalives_then_marked_speech)
{
    struct mix_room_settings rs;
    struct harness h;
    struct ss_watch w = {0};
    unsigned a, b;
    const double f = 440.0;
    struct ta_pcm *p;
    size_t from, to;
    double db, snr;
    const uint32_t silent_ms = 8000;

    mix_room_settings_default(&rs);
    rs.silence_suppression = true;
    h_init_settings(&h, "suppress", &rs);
    a = h_leg(&h, "a440", SEND_OPUS, f, TONE_DB);
    b = h_leg(&h, "listener", SEND_OPUS, 0, TA_DB_FLOOR);
    h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h.legs[a].tone_on = false;
    h.on_packet = watch_suppression;
    h.data = &w;
    w.listener = b;

    h_run_ms(&h, silent_ms);
    for (unsigned i = 0; i < h.n; i++) {
        const char *n = h.legs[i].name;

        cr_expect_eq(w.media_in_silence[i], 0u, "%s got %u media packets in silence",
                     n, w.media_in_silence[i]);
        cr_expect_geq(w.ka_count[i], 2u, "%s: %u keep-alives in %u ms", n,
                      w.ka_count[i], silent_ms);
        /* From the room's origin of 0 to the first, between each two, and
         * from the last to now: never more than 3 s of RTP clock. */
        cr_expect_leq(w.ka_first[i], 144000u + 960u, "%s: first keep-alive at ts %u",
                      n, w.ka_first[i]);
        cr_expect_leq(w.ka_max_gap[i], 144000u, "%s: keep-alives %u ticks apart",
                      n, w.ka_max_gap[i]);
        cr_expect_leq(silent_ms * 48u - w.ka_prev[i], 144000u + 2 * 960u,
                      "%s: last keep-alive at ts %u", n, w.ka_prev[i]);
    }

    w.talking_phase = true;
    h.legs[a].tone_on = true;
    h_run_ms(&h, 1500);
    cr_assert(w.first_media_seen, "the listener got no speech at all");
    cr_expect(w.first_media_marker, "first packet of the talk spurt lacks the marker");
    cr_expect_eq(w.later_markers, 0u, "marker repeated inside the spurt");
    cr_expect_leq(w.media_ts - silent_ms * 48u, 200u * 48u,
                  "speech reached the listener %u ms late",
                  (w.media_ts - silent_ms * 48u) / 48u);

    /* What follows the marker decodes to a clean tone. */
    p = h_pcm(&h, b);
    from = w.media_pos + 200 * 48;
    to = from + 48000;
    cr_assert_leq(to, p->n, "listener decoded only %zu samples of speech",
                  p->n - w.media_pos);
    db = ta_tone_db(p->s + from, to - from, f, p->rate);
    snr = ta_snr_db(p->s + from, to - from, p->rate, &f, 1);
    if (verbose())
        fprintf(stderr, "suppress: speech at %.1f dBFS, SNR %.1f dB, %u ms after start\n",
                db, snr, (w.media_ts - silent_ms * 48u) / 48u);
    cr_expect_geq(db, TONE_DB - PRESENT_TOL_DB, "tone at %.1f dBFS", db);
    cr_expect_geq(snr, 25.0, "tone SNR %.1f dB", snr);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- events ---- */

Test(engine, talk_and_release_events)
{
    struct harness h;
    unsigned a, b, d, k0, at = 0, at0 = 0, at2 = 0;
    const struct mix_event *ev;
    uint64_t start_cycle, stop_cycle;

    h_init(&h, "events");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    d = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    h.legs[a].tone_on = false;
    h.legs[b].tone_on = false;
    h_run_ms(&h, 500);
    cr_expect_eq(count_events(&h, MIX_EV_TALKING, a), 0u, "talking in silence");

    /* a talks for 1.5 s. */
    k0 = h.nev;
    start_cycle = h.cycle;
    h.legs[a].tone_on = true;
    h_run_ms(&h, 1500);
    ev = find_event(&h, k0, MIX_EV_TALKING, a, &at);
    cr_assert(ev, "no TALKING event for a");
    cr_expect_eq(ev->leg_id, h.legs[a].cfg.id);
    cr_expect_eq(ev->room_id, (uint32_t)ROOM_ID);
    cr_expect_eq(ev->room_user, &h);
    cr_expect_leq(h.ev_cycle[at] - start_cycle, 30u, "TALKING %lu ms after the tone",
                  (unsigned long)(h.ev_cycle[at] - start_cycle) * 10);
    cr_expect_eq(count_events(&h, MIX_EV_TALKING, a), 1u);
    cr_expect_eq(count_events(&h, MIX_EV_STOPPED_TALKING, a), 0u, "stopped mid-tone");

    /* It stops: STOPPED_TALKING after the hang-over, within a second. */
    stop_cycle = h.cycle;
    h.legs[a].tone_on = false;
    h_run_ms(&h, 1500);
    ev = find_event(&h, at, MIX_EV_STOPPED_TALKING, a, &at2);
    cr_assert(ev, "no STOPPED_TALKING for a");
    cr_expect_geq(h.ev_cycle[at2] - stop_cycle, 40u, "stopped %lu ms after the tone: no hang-over",
                  (unsigned long)(h.ev_cycle[at2] - stop_cycle) * 10);
    cr_expect_leq(h.ev_cycle[at2] - stop_cycle, 100u, "stopped %lu ms after the tone",
                  (unsigned long)(h.ev_cycle[at2] - stop_cycle) * 10);
    cr_expect_eq(count_events(&h, MIX_EV_TALKING, d), 0u);
    cr_expect_eq(count_events(&h, MIX_EV_TALKING, b), 0u);

    /* b starts talking and leaves while talking: STOPPED_TALKING, then
     * LEG_RELEASED. The silent leg leaves too: only LEG_RELEASED. */
    h.legs[b].tone_on = true;
    h_run_ms(&h, 500);
    cr_assert(find_event(&h, 0, MIX_EV_TALKING, b, NULL), "b never talked");
    k0 = h.nev;
    h_destroy_leg(&h, b);
    h_destroy_leg(&h, d);
    h_run_ms(&h, 100);
    ev = find_event(&h, k0, MIX_EV_STOPPED_TALKING, b, &at);
    cr_expect(ev != NULL, "no STOPPED_TALKING for a talker that left");
    ev = find_event(&h, k0, MIX_EV_LEG_RELEASED, b, &at2);
    cr_expect(ev != NULL, "no LEG_RELEASED for b");
    if (ev) {
        cr_expect_eq(ev->leg_id, h.legs[b].cfg.id);
        cr_expect_lt(at, at2, "STOPPED_TALKING must come before LEG_RELEASED");
    }
    cr_expect(find_event(&h, k0, MIX_EV_LEG_RELEASED, d, NULL), "no LEG_RELEASED for d");
    cr_expect(!find_event(&h, k0, MIX_EV_STOPPED_TALKING, d, NULL),
              "STOPPED_TALKING for a leg that never talked");
    cr_expect_eq(count_events(&h, MIX_EV_LEG_RELEASED, b), 1u);
    cr_expect_eq(count_events(&h, MIX_EV_LEG_RELEASED, d), 1u);

    /* The room goes while a talks: STOPPED_TALKING, LEG_RELEASED, then
     * ROOM_RELEASED. */
    h.legs[a].tone_on = true;
    h_run_ms(&h, 400);
    cr_assert_eq(count_events(&h, MIX_EV_TALKING, a), 2u, "a did not talk again");
    k0 = h.nev;
    cr_assert_eq(mix_room_destroy(h.room), 0);
    h.legs[a].leg = NULL;
    h_run_ms(&h, 50);
    cr_expect(find_event(&h, k0, MIX_EV_STOPPED_TALKING, a, &at0),
              "no STOPPED_TALKING for a talker whose room went");
    cr_expect(find_event(&h, k0, MIX_EV_LEG_RELEASED, a, &at), "no LEG_RELEASED for a");
    ev = find_event(&h, k0, MIX_EV_ROOM_RELEASED, 0, &at2);
    cr_expect(ev != NULL, "no ROOM_RELEASED");
    if (ev) {
        cr_expect_eq(ev->room_id, (uint32_t)ROOM_ID);
        cr_expect_eq(ev->room_user, &h);
        cr_expect_lt(at0, at, "leg released before its STOPPED_TALKING");
        cr_expect_lt(at, at2, "room released before its leg");
    }
    for (unsigned k = at2 + 1; ev && k < h.nev; k++)
        cr_expect_neq(h.ev[k].type, MIX_EV_ROOM_RELEASED, "room released twice");
    h_free(&h);
}

/* ---- bad input ---- */

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

Test(engine, garbage_from_one_leg_does_not_disturb_the_others)
{
    struct harness h;
    unsigned a, b, c, g;
    uint32_t seed = 0xdecafbad;
    uint16_t seq = 100;
    uint32_t ts = 5000;
    unsigned zero = 0, over = 0, crafted = 0, rejected = 0, random_n = 0;
    struct mix_leg_stats st;
    static uint8_t big[5000];
    size_t pc;

    h_init(&h, "garbage");
    a = h_leg(&h, "a440", SEND_OPUS, 440, TONE_DB);
    b = h_leg(&h, "b660", SEND_OPUS, 660, TONE_DB);
    c = h_leg(&h, "silent", SEND_OPUS, 0, TA_DB_FLOOR);
    g = h_leg(&h, "garbage", SEND_NONE, 0, TA_DB_FLOOR);
    h_run_ms(&h, 400);
    pc = h_pos(&h, c);

    for (unsigned cyc = 0; cyc < 300; cyc++) {
        if (cyc % 2 == 0) {
            struct mix_in_meta m = {.seq = seq++, .ts = ts, .arrival_ns = h.now_ns,
                                    .level = 0xff};
            uint8_t pkt[300];
            uint32_t len;
            int rc;

            ts += 960;
            switch (cyc / 2 % 3) {
            case 0: /* random bytes */
                len = 1 + xorshift(&seed) % sizeof(pkt);
                for (uint32_t k = 0; k < len; k++)
                    pkt[k] = (uint8_t)xorshift(&seed);
                random_n++;
                break;
            case 1: /* code 3 (arbitrary frame count) with zero frames */
                pkt[0] = 0xfb;
                pkt[1] = 0x00;
                len = 2;
                crafted++;
                break;
            default: /* code 2 whose first frame is longer than the packet */
                pkt[0] = 0xfa;
                pkt[1] = 0xfa;
                pkt[2] = 0x11;
                len = 3;
                crafted++;
                break;
            }
            rc = mix_leg_push(h.legs[g].leg, &m, pkt, len);
            rejected += rc < 0;
            /* Zero-length and oversized pushes. */
            rc = mix_leg_push(h.legs[g].leg, &m, pkt, 0);
            zero++;
            rejected += rc < 0;
            memset(big, 0x55, sizeof(big));
            rc = mix_leg_push(h.legs[g].leg, &m, big,
                              cyc % 4 ? MIX_MAX_PACKET + 1 : sizeof(big));
            cr_expect(rc == -EMSGSIZE || rc == 0, "oversized push: %d", rc);
            over++;
            rejected += rc < 0;
        }
        h_step(&h);
    }

    /* Every unusable packet is refused or counted. */
    mix_leg_stats(h.legs[g].leg, &st);
    cr_expect_geq(rejected + st.invalid + st.duplicate + st.late, zero + over + crafted,
                  "%u rejected + %lu invalid of %u unusable", rejected,
                  (unsigned long)st.invalid, zero + over + crafted);
    cr_expect_gt(st.invalid + rejected, 0u);
    (void)random_n;
    /* The others' conversation goes on undisturbed. */
    expect_hears(&h, c, a, pc);
    expect_hears(&h, c, b, pc);
    expect_hears(&h, a, b, h_pos(&h, a) - 96000);
    expect_hears(&h, b, a, h_pos(&h, b) - 96000);
    expect_clean_decode(&h);
    h_free(&h);
}

Test(engine, reordered_and_duplicated_packets_play_cleanly)
{
    struct harness h;
    unsigned a, b;
    struct hleg *A;
    uint8_t held[TA_MAX_PACKET];
    struct mix_in_meta held_m;
    int held_len = 0;
    struct mix_leg_stats st;
    const double f = 440.0;
    struct ta_pcm *p;
    size_t from;
    double snr;

    h_init(&h, "reorder");
    a = h_leg(&h, "a440", SEND_NONE, f, TONE_DB);
    b = h_leg(&h, "listener", SEND_OPUS, 0, TA_DB_FLOOR);
    A = &h.legs[a];
    cr_assert_eq(ta_tx_new(&A->tx, 48000, H_FRAME_MS, 0, 65500,
                           UINT32_MAX - 960 * 40), 0);

    /* a's packets go out in swapped pairs (2 1 4 3 ...), each sent twice,
     * across a sequence number and timestamp wrap. */
    for (unsigned cyc = 0; cyc < 300; cyc++) {
        if (cyc % 2 == 0) {
            int16_t pcm[960];
            uint8_t pkt[TA_MAX_PACKET];
            struct mix_in_meta m = {.arrival_ns = h.now_ns, .level = 0xff};
            int len;

            ta_sine_fill(&A->sine, pcm, 960);
            len = ta_tx_encode(A->tx, pcm, pkt, sizeof(pkt), &m.seq, &m.ts);
            cr_assert_gt(len, 0);
            if (held_len == 0) {
                memcpy(held, pkt, (size_t)len);
                held_m = m;
                held_len = len;
            } else {
                held_m.arrival_ns = h.now_ns;
                for (int k = 0; k < 2; k++) {
                    cr_assert_eq(mix_leg_push(A->leg, &m, pkt, (uint32_t)len), 0);
                    cr_assert_eq(mix_leg_push(A->leg, &held_m, held,
                                              (uint32_t)held_len), 0);
                }
                held_len = 0;
            }
        }
        h_step(&h);
    }
    mix_leg_stats(A->leg, &st);
    cr_expect_geq(st.duplicate, 100u, "%lu duplicates counted",
                  (unsigned long)st.duplicate);
    p = h_pcm(&h, b);
    from = ta_pcm_index_ms(p, 500);
    cr_assert_gt(p->n, from + 48000);
    snr = ta_snr_db(p->s + from, p->n - from, p->rate, &f, 1);
    if (verbose())
        fprintf(stderr, "reorder: SNR %.1f dB\n", snr);
    expect_hears(&h, b, a, from);
    cr_expect_geq(snr, 25.0, "reordered stream heard with SNR %.1f dB", snr);
    expect_clean_decode(&h);
    h_free(&h);
}

/* ---- API contract ---- */

Test(engine, rejects_bad_settings_and_configs)
{
    struct harness h;
    struct mix_room_settings s;
    struct mix_leg_config c;
    struct mix_room *r = NULL;
    struct mix_leg *l = NULL;

    h_init(&h, "api");
    mix_room_settings_default(&s);
    cr_expect_eq(s.rate, 48000u);
    cr_expect_eq(s.frame_ms, 20u);
    cr_expect_eq(s.talkers, (uint32_t)MIX_DEFAULT_K);
    cr_expect(!s.silence_suppression);

    s.rate = 44100;
    cr_expect_eq(mix_room_new(h.e, 1, NULL, &s, &r), -EINVAL);
    mix_room_settings_default(&s);
    s.frame_ms = 30;
    cr_expect_eq(mix_room_new(h.e, 1, NULL, &s, &r), -EINVAL);
    mix_room_settings_default(&s);
    s.talkers = 0;
    cr_expect_eq(mix_room_new(h.e, 1, NULL, &s, &r), -EINVAL);
    s.talkers = MIX_MAX_K + 1;
    cr_expect_eq(mix_room_new(h.e, 1, NULL, &s, &r), -EINVAL);

    /* rate and frame_ms are fixed for the life of a room. */
    mix_room_settings_default(&s);
    s.rate = 16000;
    cr_expect_eq(mix_room_update(h.room, &s), -EINVAL);
    mix_room_settings_default(&s);
    s.frame_ms = 40;
    cr_expect_eq(mix_room_update(h.room, &s), -EINVAL);
    mix_room_settings_default(&s);
    s.talkers = 5;
    cr_expect_eq(mix_room_update(h.room, &s), 0);
    cr_expect_eq(mix_room_settings(h.room)->talkers, 5u);

    mix_leg_config_default(&c);
    cr_expect_eq(c.codec, MIX_CODEC_OPUS);
    cr_expect_eq(c.rate, 48000u);
    c.rate = 44100;
    cr_expect_eq(mix_leg_new(h.room, &c, &l), -EINVAL);
    mix_leg_config_default(&c);
    c.in_ring_bytes = 5000;
    cr_expect_eq(mix_leg_new(h.room, &c, &l), -EINVAL);
    mix_leg_config_default(&c);
    c.out_ring_bytes = 3000;
    cr_expect_eq(mix_leg_new(h.room, &c, &l), -EINVAL);
    h_run_ms(&h, 40);
    h_free(&h);
}

Test(engine, run_cycle_refused_while_started)
{
    struct mix_engine_config ec = {.workers = 1};
    struct mix_engine *e;

    cr_assert_eq(mix_engine_new(&ec, &e), 0);
    cr_assert_eq(mix_engine_start(e), 0);
    cr_expect_eq(mix_engine_run_cycle(e, 0), -EBUSY);
    mix_engine_stop(e);
    mix_engine_stop(e);     /* safe twice */
    cr_expect_eq(mix_engine_run_cycle(e, 0), 0);
    mix_engine_free(e);
}
