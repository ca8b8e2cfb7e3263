/*
 * test_integration_media.c: what participants hear, with the real
 * chorus-bridge, chorus-client and GStreamer processes on loopback.
 *
 * Every client sends a sine tone at -12 dBFS and records what it hears;
 * Goertzel levels (tests/support/audio.h) of those recordings decide:
 * others' tones within IT_TOL_DB of -12, one's own at least
 * IT_OWN_BELOW_DB lower, silenced tones below IT_GONE_DB. Timings are
 * measured from the moment the room lists every participant; a recording
 * starts when its client first hears the bridge (a few tens of ms before
 * that), so windows keep a few hundred ms away from every change.
 *
 * Cases: three clients (UDP, UDP, TCP); a plain RTP leg driven by
 * gst-launch-1.0; mute, gain and deaf through PATCH; kick through DELETE;
 * malformed datagrams at the media port and a plain leg's port.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "harness.h"

#ifndef CHORUS_GST_LAUNCH
#define CHORUS_GST_LAUNCH ""
#endif

enum {
    WAIT_JOIN_MS = 8000,        /* until the room lists every client */
    CLIENT_SLACK_MS = 10000,    /* a client's run may exceed its duration by */
    GST_READY_MS = 10000,       /* gst-launch's start-up (registry scan) */
    GST_EOS_MS = 5000,          /* after SIGINT, until the WAV is finished */
    FLOOD_PACKETS = 1000,       /* malformed datagrams per target */
    FLOOD_ROUNDS = 50,          /* sent in this many bursts */
    FLOOD_ROUND_MS = 40,
};

#define GST_VOLUME 0.25         /* gst's tone: 20 log10(0.25) = -12.04 dBFS */
#define GST_HZ 550.0

static const double TONES[3] = {440, 660, 880};

TestSuite(media, .init = ih_setup, .fini = ih_teardown, .timeout = 90);

/* Starts a bridge and creates @room with @settings (a JSON object body
 * without the name, or NULL). */
static void bridge_with_room(struct ih_bridge *b, const char *room, const char *settings)
{
    char body[512];
    json_t *j = NULL;
    long st;
    int rc = ih_bridge_start(b, NULL);

    cr_assert_eq(rc, 0, "the bridge did not start: %s", strerror(-rc));
    if (settings)
        snprintf(body, sizeof(body), "{\"name\":\"%s\",%s}", room, settings);
    else
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", room);
    st = ih_http(b, "POST", "/v1/rooms", body, &j);
    cr_assert_eq(st, 201, "POST /v1/rooms %s: %ld", body, st);
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")), room);
    json_decref(j);
}

/* Three clients with TONES, the last over TCP, for @duration_s. */
static void three_clients(struct ih_proc p[3], const struct ih_bridge *b, const char *room,
                          double duration_s, const char *const names[3])
{
    for (int i = 0; i < 3; i++) {
        struct ih_client c = {.name = names[i], .room = room, .tone_hz = TONES[i],
                              .duration_s = duration_s, .tcp = i == 2, .expect_audio = true};
        cr_assert_eq(ih_client_spawn(&p[i], b, &c), 0, "cannot start client %s", names[i]);
    }
}

static void wait_clients(struct ih_proc *p, size_t n, double duration_s)
{
    struct ih_proc *ps[8];

    for (size_t i = 0; i < n; i++)
        ps[i] = &p[i];
    ih_procs_wait(ps, n, (int)(duration_s * 1000) + CLIENT_SLACK_MS);
}

/* Checks one recording of the three-tone room: the other two tones at
 * -12 dBFS, its own at least @own_below dB lower. */
static void expect_mix_minus(const struct ta_pcm *pcm, const char *who, int self, uint32_t from,
                             uint32_t to, double own_below)
{
    for (int k = 0; k < 3; k++) {
        if (k != self)
            it_expect_tone(pcm, who, TONES[k], from, to, IT_TONE_DB, IT_TOL_DB);
    }
    it_expect_below(pcm, who, TONES[self], from, to, IT_TONE_DB - own_below);
}

/* ---- 1: three clients ---- */

Test(media, three_clients_hear_each_other)
{
    static const char *const names[3] = {"c440", "c660", "c880tcp"};
    struct ih_bridge b;
    struct ih_proc p[3];
    const double dur = 4.0;

    bridge_with_room(&b, "trio", NULL);
    three_clients(p, &b, "trio", dur, names);
    cr_assert_eq(ih_wait_participants(&b, "trio", 3, WAIT_JOIN_MS), 0,
                 "the room never listed 3 participants");
    wait_clients(p, 3, dur);
    for (int i = 0; i < 3; i++) {
        struct ta_pcm pcm;

        it_expect_exit(&p[i], 0, NULL);
        it_load_client(&pcm, names[i], 3500);
        expect_mix_minus(&pcm, names[i], i, IT_SKIP_MS, 3300, IT_OWN_BELOW_DB);
        ta_pcm_free(&pcm);
    }
    cr_expect(ih_proc_running(&b.proc), "the bridge died; see %s", ih_bridge_log(&b));
    it_finish(&b);
}

/* ---- 2: a plain RTP leg driven by GStreamer ---- */

static bool have_gst(void)
{
    return CHORUS_GST_LAUNCH[0] && access(CHORUS_GST_LAUNCH, X_OK) == 0;
}

/* Starts gst-launch-1.0 receiving Opus/RTP on @port into @wav and waits
 * until it listens. It ends when the test sends SIGINT: -e turns that into
 * an end of stream, so wavenc writes its header (udpsrc's timeout property
 * only posts a message, it does not end the pipeline). The wait after
 * SIGINT is bounded (GST_EOS_MS, then SIGKILL), and ta_wav_read copes with
 * a header that was never patched. */
static void gst_receiver(struct ih_proc *p, uint16_t port, const char *wav)
{
    char portarg[32], loc[IH_PATH_MAX + 16];
    const char *argv[] = {
        CHORUS_GST_LAUNCH, "-q", "-e",
        "udpsrc", "address=127.0.0.1", portarg,
        "caps=application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111",
        "!", "rtpjitterbuffer", "latency=100",
        "!", "rtpopusdepay", "!", "opusdec",
        "!", "audioconvert", "!", "audioresample",
        "!", "audio/x-raw,format=S16LE,rate=48000,channels=1",
        "!", "wavenc", "!", "filesink", loc, NULL,
    };

    uint64_t deadline;

    snprintf(portarg, sizeof(portarg), "port=%u", port);
    snprintf(loc, sizeof(loc), "location=%s", wav);
    cr_assert_eq(ih_spawn(p, "gst-rx", argv), 0, "cannot start %s", CHORUS_GST_LAUNCH);
    /* Ready once udpsrc holds the port (the first run may scan plugins). */
    deadline = ih_now_ms() + GST_READY_MS;
    while (!ih_udp_port_taken(port) && ih_proc_running(p) && ih_now_ms() < deadline)
        ih_sleep_ms(10);
    cr_assert(ih_udp_port_taken(port), "gst-launch never bound udp port %u; see %s", port,
              p->err_path);
}

/* gst-launch-1.0 sending a 550 Hz tone at -12 dBFS as Opus/RTP (pt 111)
 * to @port for @buffers 20 ms buffers, paced in real time. */
static int gst_sender(struct ih_proc *p, uint16_t port, unsigned buffers)
{
    char portarg[32], nbuf[32], freq[32], vol[32];
    const char *argv[] = {
        CHORUS_GST_LAUNCH, "-q",
        "audiotestsrc", "is-live=true", freq, vol, "samplesperbuffer=960", nbuf,
        "!", "audio/x-raw,rate=48000,channels=1",
        "!", "audioconvert", "!", "audioresample", "!", "opusenc",
        "!", "rtpopuspay", "pt=111",
        "!", "udpsink", "host=127.0.0.1", portarg, NULL,
    };

    snprintf(portarg, sizeof(portarg), "port=%u", port);
    snprintf(nbuf, sizeof(nbuf), "num-buffers=%u", buffers);
    snprintf(freq, sizeof(freq), "freq=%g", GST_HZ);
    snprintf(vol, sizeof(vol), "volume=%g", GST_VOLUME);
    return ih_spawn(p, "gst-tx", argv);
}

Test(media, gstreamer_rtp_leg)
{
    static const char *const names[3] = {"g440", "g660", "g880tcp"};
    const double dur = 4.0, gst_db = 20 * log10(GST_VOLUME);
    struct ih_bridge b;
    struct ih_proc p[3], rx, tx;
    char wav[IH_PATH_MAX], remote[128];
    struct ta_pcm pcm;
    json_t *j = NULL;
    long st, local_port;

    if (!have_gst())
        cr_skip_test("gst-launch-1.0 not found at configure time (scripts/install-deps.sh)");
    /* Four talkers: the three clients and the GStreamer leg all mixed. */
    bridge_with_room(&b, "gst", "\"talkers\":4");
    ih_path(wav, sizeof(wav), "gst-rx.wav");
    gst_receiver(&rx, b.spare[0], wav);

    snprintf(remote, sizeof(remote),
             "{\"codec\":\"opus\",\"remote\":\"127.0.0.1:%u\",\"display_name\":\"gst\"}",
             b.spare[0]);
    st = ih_http(&b, "POST", "/v1/rooms/gst/participants", remote, &j);
    cr_assert_eq(st, 201, "POST participants: %ld", st);
    local_port = (long)json_integer_value(json_object_get(j, "local_port"));
    cr_expect_str_eq(json_string_value(json_object_get(j, "kind")), "rtp");
    cr_expect_str_eq(json_string_value(json_object_get(j, "codec")), "opus");
    json_decref(j);
    cr_assert(local_port >= b.rtp_min && local_port <= b.rtp_max,
              "local_port %ld outside the bridge's range %u-%u", local_port, b.rtp_min, b.rtp_max);

    cr_assert_eq(gst_sender(&tx, (uint16_t)local_port, (unsigned)(dur * 50) + 20), 0);
    three_clients(p, &b, "gst", dur, names);
    cr_assert_eq(ih_wait_participants(&b, "gst", 4, WAIT_JOIN_MS), 0,
                 "the room never listed 4 participants");
    wait_clients(p, 3, dur);
    ih_proc_wait(&tx, CLIENT_SLACK_MS);
    it_expect_exit(&tx, 0, NULL);
    /* End the receiver: EOS (SIGINT with -e) writes the WAV header. */
    ih_proc_signal(&rx, SIGINT);
    cr_expect_eq(ih_proc_wait(&rx, GST_EOS_MS), 0, "gst-launch (receiver) ignored SIGINT");

    for (int i = 0; i < 3; i++) {
        /* A client hears the two other clients and 550 Hz: where a
         * third-order intermodulation product of those lands on its own
         * tone (2 x 550 - 440 = 660), the codecs put a little energy there
         * that is no echo; an echo would come back near -12 dBFS. */
        double heard[3] = {TONES[(i + 1) % 3], TONES[(i + 2) % 3], GST_HZ};
        double own_below = it_im3_hits(heard, 3, TONES[i]) ? IT_OWN_BELOW_IM3_DB : IT_OWN_BELOW_DB;

        it_expect_exit(&p[i], 0, NULL);
        it_load_client(&pcm, names[i], 3500);
        expect_mix_minus(&pcm, names[i], i, IT_SKIP_MS, 3300, own_below);
        /* gst-launch starts a little later than the clients. */
        it_expect_tone(&pcm, names[i], GST_HZ, 1000, 3300, gst_db, IT_TOL_DB);
        ta_pcm_free(&pcm);
    }
    it_load(&pcm, wav, "gst-rx", 3500);
    for (int k = 0; k < 3; k++)
        it_expect_tone(&pcm, "gst-rx", TONES[k], 1000, 3300, IT_TONE_DB, IT_TOL_DB);
    it_expect_below(&pcm, "gst-rx", GST_HZ, 1000, 3300, gst_db - IT_OWN_BELOW_DB);
    ta_pcm_free(&pcm);
    it_finish(&b);
}

/* ---- 3: mute, gain, deaf and kick through the API ---- */

static void patch(const struct ih_bridge *b, const char *room, uint32_t id, const char *body,
                  const char *field, json_t *want)
{
    char path[256];
    json_t *j = NULL;
    long st;

    snprintf(path, sizeof(path), "/v1/rooms/%s/participants/%u", room, id);
    st = ih_http(b, "PATCH", path, body, &j);
    cr_expect_eq(st, 200, "PATCH %s %s: %ld", path, body, st);
    cr_expect(json_equal(json_object_get(j, field), want), "PATCH %s %s: %s not echoed", path,
              body, field);
    json_decref(want);
    json_decref(j);
}

Test(media, mute_gain_deaf)
{
    static const char *const names[3] = {"m440", "m660", "m880tcp"};
    const double dur = 5.0;
    const uint32_t before_from = 600, before_to = 1800, after_to = 4400;
    struct ih_bridge b;
    struct ih_proc p[3];
    struct ta_pcm a, g, d;
    uint32_t id[3], after_from;
    uint64_t t0;

    bridge_with_room(&b, "mgd", NULL);
    three_clients(p, &b, "mgd", dur, names);
    cr_assert_eq(ih_wait_participants(&b, "mgd", 3, WAIT_JOIN_MS), 0);
    t0 = ih_now_ms();
    for (int i = 0; i < 3; i++) {
        id[i] = ih_participant_id(&b, "mgd", names[i]);
        cr_assert_neq(id[i], 0, "no participant named %s", names[i]);
    }
    ih_sleep_until(t0 + 2000);
    /* 440 muted, 660 at -12 dB, 880 deaf: all three at once. */
    patch(&b, "mgd", id[0], "{\"muted\":true}", "muted", json_true());
    patch(&b, "mgd", id[1], "{\"gain_db\":-12}", "gain_db", json_real(-12));
    patch(&b, "mgd", id[2], "{\"deaf\":true}", "deaf", json_true());
    after_from = (uint32_t)(ih_now_ms() - t0) + 700;
    wait_clients(p, 3, dur);
    for (int i = 0; i < 3; i++)
        it_expect_exit(&p[i], 0, NULL);

    it_load_client(&a, names[0], 4500);
    it_load_client(&g, names[1], 4500);
    it_load_client(&d, names[2], 4500);
    /* Mute: 440 leaves 660's recording (880's is deaf by then). */
    it_expect_tone(&g, names[1], 440, before_from, before_to, IT_TONE_DB, IT_TOL_DB);
    it_expect_below(&g, names[1], 440, after_from, after_to, IT_GONE_DB);
    it_expect_tone(&d, names[2], 440, before_from, before_to, IT_TONE_DB, IT_TOL_DB);
    /* Gain: 660 drops by 12 dB in 440's recording; 880 stays. */
    double g0 = it_expect_tone(&a, names[0], 660, before_from, before_to, IT_TONE_DB, IT_TOL_DB);
    double g1 = it_expect_tone(&a, names[0], 660, after_from, after_to, IT_TONE_DB - 12, IT_TOL_DB);
    cr_expect(fabs((g0 - g1) - 12.0) <= IT_TOL_DB, "gain -12 dB lowered 660 Hz by %.1f dB", g0 - g1);
    it_expect_tone(&a, names[0], 880, after_from, after_to, IT_TONE_DB, IT_TOL_DB);
    /* The muted client still hears; the deaf one still talks. */
    it_expect_tone(&g, names[1], 880, after_from, after_to, IT_TONE_DB, IT_TOL_DB);
    /* Deaf: near silence from then on. */
    double r0 = ta_rms_db(d.s + ta_pcm_index_ms(&d, before_from),
                          ta_pcm_index_ms(&d, before_to) - ta_pcm_index_ms(&d, before_from));
    double r1 = ta_rms_db(d.s + ta_pcm_index_ms(&d, after_from),
                          ta_pcm_index_ms(&d, after_to) - ta_pcm_index_ms(&d, after_from));
    it_note("%s: rms %.1f dBFS before deaf, %.1f after", names[2], r0, r1);
    cr_expect(r0 > -15, "%s heard only %.1f dBFS RMS before going deaf", names[2], r0);
    cr_expect(r1 < -50, "%s (deaf) still hears %.1f dBFS RMS", names[2], r1);
    ta_pcm_free(&a);
    ta_pcm_free(&g);
    ta_pcm_free(&d);
    it_finish(&b);
}

Test(media, kick)
{
    static const char *const names[3] = {"k440", "k660", "k880tcp"};
    const double dur = 5.0;
    struct ih_bridge b;
    struct ih_proc p[3];
    struct ta_pcm pcm;
    char path[256];
    uint32_t id[3], kick_rel;
    uint64_t t0, t_kick;
    json_t *j = NULL, *e;
    size_t i;

    bridge_with_room(&b, "kick", NULL);
    three_clients(p, &b, "kick", dur, names);
    cr_assert_eq(ih_wait_participants(&b, "kick", 3, WAIT_JOIN_MS), 0);
    t0 = ih_now_ms();
    for (int k = 0; k < 3; k++) {
        id[k] = ih_participant_id(&b, "kick", names[k]);
        cr_assert_neq(id[k], 0, "no participant named %s", names[k]);
    }
    ih_sleep_until(t0 + 1500);
    /* Kick the UDP client 440 and the TCP client 880; 660 stays. */
    t_kick = ih_now_ms();
    for (int k = 0; k < 3; k += 2) {
        snprintf(path, sizeof(path), "/v1/rooms/kick/participants/%u", id[k]);
        cr_expect_eq(ih_http(&b, "DELETE", path, NULL, NULL), 204, "DELETE %s", path);
    }
    kick_rel = (uint32_t)(t_kick - t0);
    /* The kicked clients leave at once, long before their duration. */
    struct ih_proc *kicked[2] = {&p[0], &p[2]};
    ih_procs_wait(kicked, 2, 3000);
    for (int k = 0; k < 3; k += 2) {
        it_expect_exit(&p[k], 5, "the bridge ended the leg: kicked");
        cr_expect_lt(p[k].end_ms, t_kick + 3000, "%s left %llu ms after the kick", names[k],
                     (unsigned long long)(p[k].end_ms - t_kick));
        snprintf(path, sizeof(path), "/v1/rooms/kick/participants/%u", id[k]);
        cr_expect_eq(ih_http(&b, "GET", path, NULL, NULL), 404, "GET %s after the kick", path);
    }
    cr_expect_eq(ih_http(&b, "GET", "/v1/rooms/kick/participants", NULL, &j), 200);
    cr_expect_eq(json_array_size(json_object_get(j, "participants")), 1);
    json_array_foreach(json_object_get(j, "participants"), i, e)
        cr_expect_eq(json_integer_value(json_object_get(e, "id")), id[1]);
    json_decref(j);
    wait_clients(&p[1], 1, dur);
    it_expect_exit(&p[1], 0, NULL);

    /* 660 heard both before the kick and neither after. */
    it_load_client(&pcm, names[1], 4500);
    it_expect_tone(&pcm, names[1], 440, IT_SKIP_MS, 1300, IT_TONE_DB, IT_TOL_DB);
    it_expect_tone(&pcm, names[1], 880, IT_SKIP_MS, 1300, IT_TONE_DB, IT_TOL_DB);
    it_expect_below(&pcm, names[1], 440, kick_rel + 700, 4400, IT_GONE_DB);
    it_expect_below(&pcm, names[1], 880, kick_rel + 700, 4400, IT_GONE_DB);
    ta_pcm_free(&pcm);
    /* And the kicked ones heard 660 until then. */
    it_load_client(&pcm, names[0], 1200);
    it_expect_tone(&pcm, names[0], 660, IT_SKIP_MS, 1300, IT_TONE_DB, IT_TOL_DB);
    ta_pcm_free(&pcm);
    it_finish(&b);
}

/* ---- 6: malformed datagrams ---- */

/* xorshift64: a fixed seed makes every run send the same bytes. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t fill_random(uint8_t *buf, size_t len, uint64_t *s)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rnd(s);
    return len;
}

static void rtp_header(uint8_t *buf, uint8_t first, uint8_t pt, uint64_t *s)
{
    fill_random(buf, 12, s);
    buf[0] = first;
    buf[1] = pt;
}

/* Datagram number @i for the secure media port: garbage of every shape
 * the classifier and the session layer must drop. Returns its length. */
static size_t bad_media(uint8_t *buf, unsigned i, uint64_t *s)
{
    size_t len;

    switch (i % 8) {
    case 0: /* random bytes */
        return fill_random(buf, 1 + rnd(s) % 200, s);
    case 1: /* a secure message cut short (INIT..KEY_REPLY types) */
        len = fill_random(buf, 4 + rnd(s) % 24, s);
        buf[0] = (uint8_t)(0x51 + rnd(s) % 6);
        buf[1] = 1;
        buf[2] = buf[3] = 0;
        return len;
    case 2: /* transport data for a session that does not exist */
        len = fill_random(buf, 16 + rnd(s) % 200, s);
        buf[0] = 0x54;
        buf[1] = 1;
        buf[2] = buf[3] = 0;
        return len;
    case 3: /* a wrong wire version */
        len = fill_random(buf, 32 + rnd(s) % 100, s);
        buf[0] = 0x54;
        buf[1] = (uint8_t)(2 + rnd(s) % 200);
        return len;
    case 4: /* oversized */
        return fill_random(buf, 2000 + rnd(s) % 2000, s);
    case 5: /* an initiation of the right size with a bad mac */
        len = fill_random(buf, 88 + 64 + rnd(s) % 200, s);
        buf[0] = 0x51;
        buf[1] = 1;
        buf[2] = buf[3] = 0;
        return len;
    case 6: /* RTP where only secure messages belong */
        len = fill_random(buf, 12 + rnd(s) % 160, s);
        buf[0] = 0x80;
        buf[1] = 111;
        return len;
    default: /* a single byte */
        buf[0] = (uint8_t)rnd(s);
        return 1;
    }
}

/* Datagram number @i for a plain RTP leg's port. */
static size_t bad_plain(uint8_t *buf, unsigned i, uint64_t *s)
{
    size_t len;

    switch (i % 8) {
    case 0: /* random bytes */
        return fill_random(buf, 1 + rnd(s) % 200, s);
    case 1: /* RTP version 0, 1 or 3 */
        len = fill_random(buf, 12 + rnd(s) % 160, s);
        buf[0] = (uint8_t)((rnd(s) % 2 ? 0x40 : 0xC0) | (buf[0] & 0x3F));
        return len;
    case 2: /* cut short: 8 to 11 bytes of a version 2 header */
        rtp_header(buf, 0x80, 111, s);
        return 8 + rnd(s) % 4;
    case 3: /* a payload type the leg did not negotiate */
        rtp_header(buf, 0x80, (uint8_t)(rnd(s) % 2 ? 0 : 96), s);
        return 12 + fill_random(buf + 12, 80, s);
    case 4: /* oversized, with a valid header */
        rtp_header(buf, 0x80, 111, s);
        return 12 + fill_random(buf + 12, 2000 + rnd(s) % 2000, s);
    case 5: /* 15 CSRCs announced, none there */
        rtp_header(buf, 0x8F, 111, s);
        return 12 + fill_random(buf + 12, 8, s);
    case 6: /* a header extension longer than the packet */
        rtp_header(buf, 0x90, 111, s);
        buf[12] = 0xBE;
        buf[13] = 0xDE;
        buf[14] = 0x7F;
        buf[15] = 0xFF;
        return 16 + fill_random(buf + 16, 20, s);
    default: /* padding longer than the packet */
        rtp_header(buf, 0xA0, 111, s);
        len = 12 + fill_random(buf + 12, 20, s);
        buf[len - 1] = 0xFF;
        return len;
    }
}

static void send_to(int fd, uint16_t port, const uint8_t *buf, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a)) < 0)
        cr_log_warn("sendto %u: %s", port, strerror(errno));
}

/* Sends a well-framed (RFC 4571 length prefix) message that is not a
 * secure-session message on a TCP connection to the media port, then more
 * garbage, and returns true when the bridge closed the connection within
 * @timeout_ms. (A bad length prefix alone proves nothing: any length up to
 * 65535 is legal, so the bridge rightly waits for the rest.) */
static bool tcp_garbage_closed(uint16_t port, uint64_t *s, int timeout_ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    uint8_t buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool closed = false;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        fill_random(buf, sizeof(buf), s);
        buf[0] = 0x00; /* a 64-byte frame... */
        buf[1] = 0x40;
        buf[2] = 0xFF; /* ...of a type no secure message has */
        if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) > 0) {
            uint64_t deadline = ih_now_ms() + (uint64_t)timeout_ms;
            ssize_t n;
            /* Bounded: each read waits at most SO_RCVTIMEO. */
            while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 && ih_now_ms() < deadline)
                ;
            closed = n == 0 || (n < 0 && errno == ECONNRESET);
        }
    }
    close(fd);
    return closed;
}

/* The datagrams of one flood and when they were sent. */
struct flood {
    unsigned media, plain;      /* sent to the media port, to the plain leg */
    uint32_t from_ms, to_ms;    /* from the test's t0 */
};

/* Sends FLOOD_PACKETS malformed datagrams to the media port and as many to
 * @plain_port, in FLOOD_ROUNDS bursts FLOOD_ROUND_MS apart, starting at
 * @t0 + @start_ms. Every run sends the same bytes (fixed seed). */
static void flood(struct flood *f, const struct ih_bridge *b, uint16_t plain_port, uint64_t t0,
                  uint32_t start_ms, uint64_t *seed)
{
    static uint8_t buf[4200];
    int tx = ih_udp_socket(0);

    cr_assert_geq(tx, 0, "cannot open a udp socket");
    memset(f, 0, sizeof(*f));
    ih_sleep_until(t0 + start_ms);
    f->from_ms = (uint32_t)(ih_now_ms() - t0);
    for (unsigned r = 0; r < FLOOD_ROUNDS; r++) {
        for (unsigned k = 0; k < FLOOD_PACKETS / FLOOD_ROUNDS; k++) {
            size_t n = bad_media(buf, f->media++, seed);
            send_to(tx, b->media_port, buf, n);
            n = bad_plain(buf, f->plain++, seed);
            send_to(tx, plain_port, buf, n);
        }
        ih_sleep_until(t0 + start_ms + (r + 1) * FLOOD_ROUND_MS);
    }
    f->to_ms = (uint32_t)(ih_now_ms() - t0);
    close(tx);
}

/* Adds a plain RTP leg to @room whose media goes to a socket of ours that
 * never sends (*@sink, to close). Stores its id and local port. */
static void quiet_plain_leg(const struct ih_bridge *b, const char *room, int *sink, uint32_t *id,
                            uint16_t *port)
{
    char body[160], path[128];
    json_t *j = NULL;
    long st;

    *sink = ih_udp_socket(b->spare[1]);
    cr_assert_geq(*sink, 0, "cannot bind udp %u", b->spare[1]);
    snprintf(body, sizeof(body), "{\"remote\":\"127.0.0.1:%u\",\"display_name\":\"plain\"}",
             b->spare[1]);
    snprintf(path, sizeof(path), "/v1/rooms/%s/participants", room);
    st = ih_http(b, "POST", path, body, &j);
    cr_assert_eq(st, 201, "POST %s: %ld", path, st);
    *port = (uint16_t)json_integer_value(json_object_get(j, "local_port"));
    *id = (uint32_t)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
}

/* With CHORUS_IT_VERBOSE, prints the bridge's view of @room's legs (loss,
 * jitter buffer, invalid packets). */
static void note_participants(const struct ih_bridge *b, const char *room)
{
    char path[128], *txt;
    json_t *j = NULL;

    if (!getenv("CHORUS_IT_VERBOSE"))
        return;
    snprintf(path, sizeof(path), "/v1/rooms/%s/participants", room);
    ih_http(b, "GET", path, NULL, &j);
    txt = json_dumps(j, JSON_COMPACT);
    it_note("%s: %s", path, txt ? txt : "?");
    free(txt);
    json_decref(j);
}

/* Expects the other two tones of the three-tone room in every 400 ms of
 * @f in recording @pcm of client @self. */
static void expect_steady(const struct ta_pcm *pcm, int self, const char *who,
                          const struct flood *f)
{
    for (uint32_t w = f->from_ms; w <= f->to_ms; w += 400) {
        for (int k = 0; k < 3; k++) {
            if (k != self)
                it_expect_tone(pcm, who, TONES[k], w, w + 400, IT_TONE_DB, IT_TOL_DB);
        }
    }
}

Test(media, malformed_packets)
{
    static const char *const names[3] = {"x440", "x660", "x880tcp"};
    const double dur = 5.0;
    struct ih_bridge b;
    struct ih_proc p[3];
    struct ta_pcm pcm;
    struct flood f;
    char path[128];
    json_t *j = NULL;
    uint64_t seed = 0x9E3779B97F4A7C15ull, t0;
    double inv0, unk0, inv, unk;
    int sink;
    long st;
    uint16_t plain_port;
    uint32_t plain_id;

    bridge_with_room(&b, "noise", NULL);
    quiet_plain_leg(&b, "noise", &sink, &plain_id, &plain_port);
    three_clients(p, &b, "noise", dur, names);
    cr_assert_eq(ih_wait_participants(&b, "noise", 4, WAIT_JOIN_MS), 0);
    t0 = ih_now_ms();
    inv0 = ih_metric(&b, "chorus_rx_invalid_total");
    unk0 = ih_metric(&b, "chorus_rx_unknown_total");
    cr_assert(inv0 >= 0 && unk0 >= 0, "metrics lack chorus_rx_invalid_total/unknown_total");

    flood(&f, &b, plain_port, t0, 800, &seed);
    cr_expect(tcp_garbage_closed(b.media_port, &seed, 2000),
              "the bridge kept a TCP connection that sent garbage");
    note_participants(&b, "noise");
    wait_clients(p, 3, dur);
    ih_sleep_ms(1200); /* metrics are rendered once a second */
    inv = ih_metric(&b, "chorus_rx_invalid_total") - inv0;
    unk = ih_metric(&b, "chorus_rx_unknown_total") - unk0;
    it_note("flood: %u + %u datagrams in %u-%u ms; invalid +%.0f, unknown +%.0f", f.media, f.plain,
            f.from_ms, f.to_ms, inv, unk);
    cr_expect_gt(inv, 0, "chorus_rx_invalid_total did not increase");
    cr_expect_gt(unk, 0, "chorus_rx_unknown_total did not increase");
    /* Every datagram is counted once (loopback drops none at this rate).
     * 1 in 8 of those at the plain port is an oversized RTP packet with a
     * valid header, dropped by the mixer (-EMSGSIZE), which the bridge
     * must count too. */
    cr_expect_geq(inv + unk, 0.98 * (f.media + f.plain),
                  "only %.0f of %u malformed datagrams were counted (invalid +%.0f, unknown +%.0f; "
                  "%u were oversized RTP with a valid header)",
                  inv + unk, f.media + f.plain, inv, unk, f.plain / 8);

    /* The bridge is up, the plain leg still there, and it counted its share. */
    cr_expect(ih_proc_running(&b.proc), "the bridge died; see %s", ih_bridge_log(&b));
    snprintf(path, sizeof(path), "/v1/rooms/noise/participants/%u", plain_id);
    st = ih_http(&b, "GET", path, NULL, &j);
    cr_expect_eq(st, 200, "GET %s: %ld", path, st);
    cr_expect_geq(json_integer_value(json_object_get(j, "invalid")), 0.98 * f.plain,
                  "the plain leg counted %lld invalid packets of %u",
                  (long long)json_integer_value(json_object_get(j, "invalid")), f.plain);
    json_decref(j);
    close(sink);

    /* No disturbance: the whole recording and every 400 ms of the flood. */
    for (int i = 0; i < 3; i++) {
        it_expect_exit(&p[i], 0, NULL);
        it_load_client(&pcm, names[i], 4500);
        expect_mix_minus(&pcm, names[i], i, IT_SKIP_MS, 4300, IT_OWN_BELOW_DB);
        expect_steady(&pcm, i, names[i], &f);
        ta_pcm_free(&pcm);
    }
    it_finish(&b);
}
