/*
 * lg_audio.c: see lg_audio.h.
 */
#include "lg_audio.h"

#include <errno.h>
#include <math.h>
#include <opus/opus.h>
#include <string.h>

#include "mix_ops.h"

enum {
    TONE_BASE_HZ = 200,          /* talker j's tone: 200 + 20 j Hz */
    TONE_STEP_HZ = 20,
    MARKER_BASE_HZ = 1000,       /* talker j's marker: 1000 + 350 j Hz */
    MARKER_STEP_HZ = 350,
    SILENCE_WARMUP = 5,          /* frames encoded before keeping one */
    HOLDOFF_MS = 200,            /* a burst straddles at most 2 frames */
    MAX_DECODED = 5760,          /* 120 ms at 48 kHz */
};

/* Detection thresholds, fractions of the nominal marker amplitude: a whole
 * frame must hold about a third of a burst; the onset is the first 2.5 ms
 * block at half the burst's amplitude. */
#define FRAME_THRESHOLD 0.20
#define BLOCK_THRESHOLD 0.50

static double amp_of(double dbfs)
{
    return 32767.0 * pow(10.0, dbfs / 20.0);
}

/* PCM of frame @n of talker @j's loop. */
static void talker_pcm(const struct lg_audio *a, unsigned j, unsigned n, int16_t *pcm)
{
    bool marker = n == a->marker_frame[j];
    double hz = marker ? a->marker_hz[j] : (double)(TONE_BASE_HZ + TONE_STEP_HZ * j);
    double amp = amp_of(marker ? LG_MARKER_DBFS : LG_TONE_DBFS);
    /* Sample index within the 1 s loop: integer-Hz tones are periodic in it. */
    uint32_t s0 = n * LG_FRAME;

    for (unsigned i = 0; i < LG_FRAME; i++)
        pcm[i] = (int16_t)lrint(amp * sin(2.0 * M_PI * hz * (double)(s0 + i) / LG_RATE));
}

static int encode(OpusEncoder *enc, const int16_t *pcm, struct lg_frame *f)
{
    int n = opus_encode(enc, pcm, LG_FRAME, f->data, LG_MAX_PAYLOAD);

    if (n <= 0)
        return -EINVAL;
    f->len = (uint16_t)n;
    f->level = mix_ops_level(pcm, LG_FRAME);
    return 0;
}

static OpusEncoder *make_encoder(uint32_t bitrate, int complexity)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(LG_RATE, 1, OPUS_APPLICATION_VOIP, &err);

    if (!enc)
        return NULL;
    opus_encoder_ctl(enc, OPUS_SET_BITRATE((opus_int32)bitrate));
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(10));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity));
    return enc;
}

/* Encodes talker @j's loop twice and keeps the second pass. */
static int encode_talker(struct lg_audio *a, unsigned j, uint32_t bitrate, int complexity)
{
    OpusEncoder *enc = make_encoder(bitrate, complexity);
    int16_t pcm[LG_FRAME];
    int rc = 0;

    if (!enc)
        return -ENOMEM;
    for (unsigned pass = 0; pass < 2 && rc == 0; pass++) {
        for (unsigned n = 0; n < LG_PERIOD_FRAMES && rc == 0; n++) {
            talker_pcm(a, j, n, pcm);
            rc = encode(enc, pcm, &a->talk[j][n]);
            a->talk[j][n].marker = n == a->marker_frame[j];
        }
    }
    opus_encoder_destroy(enc);
    return rc;
}

int lg_audio_init(struct lg_audio *a, unsigned talkers, uint32_t bitrate, int complexity)
{
    OpusEncoder *enc;
    int16_t zero[LG_FRAME] = {0};
    int rc = 0;

    if (talkers > LG_MAX_TALKERS)
        return -EINVAL;
    memset(a, 0, sizeof(*a));
    a->talkers = talkers;
    for (unsigned j = 0; j < talkers; j++) {
        a->marker_hz[j] = MARKER_BASE_HZ + MARKER_STEP_HZ * j;
        a->marker_frame[j] = j * LG_PERIOD_FRAMES / talkers;
        if ((rc = encode_talker(a, j, bitrate, complexity)) != 0)
            return rc;
    }
    if (!(enc = make_encoder(bitrate, complexity)))
        return -ENOMEM;
    for (int i = 0; i < SILENCE_WARMUP && rc == 0; i++)
        rc = encode(enc, zero, &a->silence);
    a->silence.level = LG_LEVEL_SILENT;
    opus_encoder_destroy(enc);
    return rc;
}

const struct lg_frame *lg_audio_frame(const struct lg_audio *a, int talker, uint32_t n)
{
    if (talker < 0 || (unsigned)talker >= a->talkers)
        return &a->silence;
    return &a->talk[talker][n % LG_PERIOD_FRAMES];
}

/* ---- listening ---- */

int lg_listener_init(struct lg_listener *l, const struct lg_audio *a)
{
    int err;

    memset(l, 0, sizeof(*l));
    l->a = a;
    l->dec = opus_decoder_create(LG_RATE, 1, &err);
    return l->dec ? 0 : -ENOMEM;
}

void lg_listener_close(struct lg_listener *l)
{
    if (l->dec)
        opus_decoder_destroy(l->dec);
    l->dec = NULL;
}

/* Amplitude of the @hz component of @n samples (Goertzel). */
static double tone_amp(const int16_t *x, unsigned n, double hz)
{
    double coeff = 2.0 * cos(2.0 * M_PI * hz / LG_RATE), s1 = 0, s2 = 0, p;

    for (unsigned i = 0; i < n; i++) {
        double s0 = x[i] + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    return 2.0 * sqrt(p > 0 ? p : 0) / n;
}

/* The onset of a burst at @hz found in @cur (arrived at @rx_ns): the first
 * 2.5 ms block at BLOCK_THRESHOLD, looking into the previous frame first. */
static uint64_t onset(const struct lg_listener *l, const int16_t *cur, uint64_t rx_ns,
                      double hz, double thr)
{
    const uint64_t block_ns = (uint64_t)LG_SUBBLOCK * 1000000000u / LG_RATE;

    if (l->have_prev) {
        for (unsigned b = 0; b < LG_FRAME / LG_SUBBLOCK; b++) {
            if (tone_amp(l->prev + b * LG_SUBBLOCK, LG_SUBBLOCK, hz) >= thr)
                return l->prev_rx_ns + b * block_ns;
        }
    }
    for (unsigned b = 0; b < LG_FRAME / LG_SUBBLOCK; b++) {
        if (tone_amp(cur + b * LG_SUBBLOCK, LG_SUBBLOCK, hz) >= thr)
            return rx_ns + b * block_ns;
    }
    return rx_ns; /* the burst is spread thin: the frame's own time */
}

static void detect(struct lg_listener *l, const int16_t *pcm, uint64_t rx_ns, lg_marker_cb cb,
                   void *data)
{
    double nominal = amp_of(LG_MARKER_DBFS);

    for (unsigned j = 0; j < l->a->talkers; j++) {
        if (rx_ns < l->holdoff_until[j] ||
            tone_amp(pcm, LG_FRAME, l->a->marker_hz[j]) < FRAME_THRESHOLD * nominal)
            continue;
        l->holdoff_until[j] = rx_ns + HOLDOFF_MS * 1000000ull;
        cb(j, onset(l, pcm, rx_ns, l->a->marker_hz[j], BLOCK_THRESHOLD * nominal), data);
    }
}

void lg_listener_feed(struct lg_listener *l, uint16_t seq, const uint8_t *payload, size_t len,
                      uint64_t rx_ns, lg_marker_cb cb, void *data)
{
    int16_t pcm[MAX_DECODED];
    int n;

    /* A gap or reordering breaks the "previous frame" look-back. */
    if (l->started && seq != l->next_seq)
        l->have_prev = false;
    l->started = true;
    l->next_seq = (uint16_t)(seq + 1);
    n = opus_decode(l->dec, payload, (opus_int32)len, pcm, MAX_DECODED, 0);
    if (n != LG_FRAME) {
        l->errors++;
        l->have_prev = false;
        return;
    }
    l->decoded++;
    detect(l, pcm, rx_ns, cb, data);
    memcpy(l->prev, pcm, sizeof(l->prev));
    l->prev_rx_ns = rx_ns;
    l->have_prev = true;
}
