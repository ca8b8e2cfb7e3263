/*
 * audio.c: test audio helpers. See audio.h.
 */
#include "audio.h"

#include <errno.h>
#include <math.h>
#include <opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum {
    MAX_DECODE = 5760,      /* 120 ms at 48 kHz: the longest Opus packet */
};

/* ---- growable PCM buffer ---- */

void ta_pcm_init(struct ta_pcm *p, uint32_t rate)
{
    p->s = NULL;
    p->n = 0;
    p->cap = 0;
    p->rate = rate;
}

static int pcm_reserve(struct ta_pcm *p, size_t more)
{
    size_t cap = p->cap ? p->cap : 4096;
    int16_t *s;

    if (p->n + more <= p->cap)
        return 0;
    while (cap < p->n + more)
        cap *= 2;
    s = realloc(p->s, cap * sizeof(*s));
    if (!s)
        return -ENOMEM;
    p->s = s;
    p->cap = cap;
    return 0;
}

int ta_pcm_append(struct ta_pcm *p, const int16_t *s, size_t n)
{
    int rc = pcm_reserve(p, n);

    if (rc)
        return rc;
    if (s)
        memcpy(p->s + p->n, s, n * sizeof(*s));
    else
        memset(p->s + p->n, 0, n * sizeof(*s));
    p->n += n;
    return 0;
}

void ta_pcm_clear(struct ta_pcm *p)
{
    p->n = 0;
}

void ta_pcm_free(struct ta_pcm *p)
{
    free(p->s);
    ta_pcm_init(p, p->rate);
}

size_t ta_pcm_index_ms(const struct ta_pcm *p, uint32_t ms)
{
    size_t i = (size_t)ms * p->rate / 1000;

    return i < p->n ? i : p->n;
}

/* ---- generation ---- */

double ta_db_to_amp(double dbfs)
{
    return TA_FULL_SCALE * pow(10.0, dbfs / 20.0);
}

double ta_amp_to_db(double amp)
{
    double db;

    if (!(amp > 0.0))
        return TA_DB_FLOOR;
    db = 20.0 * log10(amp / TA_FULL_SCALE);
    return db < TA_DB_FLOOR ? TA_DB_FLOOR : db;
}

void ta_sine_init(struct ta_sine *g, double freq, uint32_t rate, double dbfs)
{
    g->phase = 0.0;
    g->step = 2.0 * M_PI * freq / (double)rate;
    g->amp = ta_db_to_amp(dbfs);
}

void ta_sine_set_db(struct ta_sine *g, double dbfs)
{
    g->amp = ta_db_to_amp(dbfs);
}

static double sine_next(struct ta_sine *g)
{
    double v = g->amp * sin(g->phase);

    /* Wrapping the phase keeps sin() accurate over hours of samples. */
    g->phase += g->step;
    if (g->phase >= 2.0 * M_PI)
        g->phase -= 2.0 * M_PI;
    return v;
}

void ta_sine_fill(struct ta_sine *g, int16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long v = lrint(sine_next(g));

        out[i] = (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
    }
}

void ta_sine_add32(struct ta_sine *g, int32_t *acc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += (int32_t)lrint(sine_next(g));
}

/* ---- measurement ---- */

double ta_tone_db(const int16_t *pcm, size_t n, double freq, uint32_t rate)
{
    double w = 2.0 * M_PI * freq / (double)rate;
    double coeff = 2.0 * cos(w);
    double s1 = 0.0, s2 = 0.0, wsum = 0.0, mag2;

    if (n < 2 || rate == 0)
        return TA_DB_FLOOR;
    for (size_t i = 0; i < n; i++) {
        double win = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)(n - 1));
        double s0 = win * pcm[i] + coeff * s1 - s2;

        wsum += win;
        s2 = s1;
        s1 = s0;
    }
    /* |X(w)|^2 of the windowed block; a sine of amplitude A gives
     * |X| = A * sum(win) / 2. */
    mag2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if (!(mag2 > 0.0))
        return TA_DB_FLOOR;
    return ta_amp_to_db(2.0 * sqrt(mag2) / wsum);
}

double ta_pcm_tone_db(const struct ta_pcm *p, uint32_t from_ms, uint32_t to_ms,
                      double freq)
{
    size_t a = ta_pcm_index_ms(p, from_ms);
    size_t b = to_ms ? ta_pcm_index_ms(p, to_ms) : p->n;

    if (b <= a)
        return TA_DB_FLOOR;
    return ta_tone_db(p->s + a, b - a, freq, p->rate);
}

bool ta_tone_present(const int16_t *pcm, size_t n, double freq, uint32_t rate,
                     double min_db)
{
    return ta_tone_db(pcm, n, freq, rate) >= min_db;
}

double ta_rms(const int16_t *pcm, size_t n)
{
    double sum = 0.0;

    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)pcm[i] * pcm[i];
    return sqrt(sum / (double)n);
}

double ta_rms_db(const int16_t *pcm, size_t n)
{
    return ta_amp_to_db(ta_rms(pcm, n) * sqrt(2.0));
}

int32_t ta_peak(const int16_t *pcm, size_t n)
{
    int32_t peak = 0;

    for (size_t i = 0; i < n; i++) {
        int32_t a = pcm[i] < 0 ? -(int32_t)pcm[i] : pcm[i];
        if (a > peak)
            peak = a;
    }
    return peak;
}

double ta_fraction_at_or_above(const int16_t *pcm, size_t n, int32_t limit)
{
    size_t hits = 0;

    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++) {
        int32_t a = pcm[i] < 0 ? -(int32_t)pcm[i] : pcm[i];
        hits += a >= limit;
    }
    return (double)hits / (double)n;
}

int32_t ta_max_step(const int16_t *pcm, size_t n)
{
    int32_t step = 0;

    for (size_t i = 1; i < n; i++) {
        int32_t d = (int32_t)pcm[i] - pcm[i - 1];
        if (d < 0)
            d = -d;
        if (d > step)
            step = d;
    }
    return step;
}

/* Removes from @r the least-squares sinusoid at @w radians/sample and
 * returns its power (amplitude^2 / 2). Over many periods cos and sin are
 * close to orthogonal, so the projection is the least-squares fit. */
static double remove_tone(double *r, size_t n, double w)
{
    double a = 0.0, b = 0.0;

    for (size_t i = 0; i < n; i++) {
        a += r[i] * cos(w * (double)i);
        b += r[i] * sin(w * (double)i);
    }
    a *= 2.0 / (double)n;
    b *= 2.0 / (double)n;
    for (size_t i = 0; i < n; i++)
        r[i] -= a * cos(w * (double)i) + b * sin(w * (double)i);
    return (a * a + b * b) / 2.0;
}

double ta_snr_db(const int16_t *pcm, size_t n, uint32_t rate,
                 const double *freqs, unsigned nf)
{
    double *r, tone = 0.0, noise = 0.0;

    if (n == 0 || rate == 0)
        return TA_DB_FLOOR;
    r = malloc(n * sizeof(*r));
    if (!r)
        return TA_DB_FLOOR;
    for (size_t i = 0; i < n; i++)
        r[i] = pcm[i];
    for (unsigned k = 0; k < nf; k++)
        tone += remove_tone(r, n, 2.0 * M_PI * freqs[k] / (double)rate);
    for (size_t i = 0; i < n; i++)
        noise += r[i] * r[i];
    free(r);
    noise /= (double)n;
    if (!(tone > 0.0))
        return TA_DB_FLOOR;
    if (!(noise > 0.0))
        return 200.0;
    return 10.0 * log10(tone / noise);
}

/* ---- Opus sender ---- */

struct ta_tx {
    OpusEncoder *enc;
    uint32_t rate;
    uint32_t frame;     /* samples per frame at rate */
    uint32_t ts_step;   /* 48 kHz ticks per frame */
    uint16_t seq;       /* of the next packet */
    uint32_t ts;
};

static bool opus_rate_ok(uint32_t rate)
{
    return rate == 8000 || rate == 12000 || rate == 16000 || rate == 24000 ||
           rate == 48000;
}

int ta_tx_new(struct ta_tx **out, uint32_t rate, uint32_t frame_ms,
              uint32_t bitrate, uint16_t seq0, uint32_t ts0)
{
    struct ta_tx *tx;
    int err;

    if (!opus_rate_ok(rate) ||
        (frame_ms != 10 && frame_ms != 20 && frame_ms != 40 && frame_ms != 60))
        return -EINVAL;
    tx = calloc(1, sizeof(*tx));
    if (!tx)
        return -ENOMEM;
    /* AUDIO rather than VOIP: the VOIP mode's high-pass and speech
     * shaping would colour the test tones and blur level checks. */
    tx->enc = opus_encoder_create((opus_int32)rate, 1, OPUS_APPLICATION_AUDIO,
                                  &err);
    if (!tx->enc) {
        free(tx);
        return err == OPUS_ALLOC_FAIL ? -ENOMEM : -EINVAL;
    }
    if (bitrate)
        opus_encoder_ctl(tx->enc, OPUS_SET_BITRATE((opus_int32)bitrate));
    tx->rate = rate;
    tx->frame = rate / 1000 * frame_ms;
    tx->ts_step = TA_RTP_RATE / 1000 * frame_ms;
    tx->seq = seq0;
    tx->ts = ts0;
    *out = tx;
    return 0;
}

void ta_tx_free(struct ta_tx *tx)
{
    if (!tx)
        return;
    opus_encoder_destroy(tx->enc);
    free(tx);
}

uint32_t ta_tx_frame_samples(const struct ta_tx *tx)
{
    return tx->frame;
}

int ta_tx_encode(struct ta_tx *tx, const int16_t *pcm, uint8_t *out,
                 uint32_t cap, uint16_t *seq, uint32_t *ts)
{
    opus_int32 len = opus_encode(tx->enc, pcm, (int)tx->frame, out,
                                 (opus_int32)cap);

    if (len < 0)
        return -EINVAL;
    *seq = tx->seq;
    *ts = tx->ts;
    ta_tx_skip(tx);
    return (int)len;
}

void ta_tx_skip(struct ta_tx *tx)
{
    tx->seq++;
    tx->ts += tx->ts_step;
}

/* ---- Opus receiver ---- */

struct ta_rx {
    OpusDecoder *dec;
    struct ta_pcm pcm;
    bool started;       /* a packet has been decoded */
    uint32_t next_ts;   /* 48 kHz timestamp just after the last packet */
    bool have_seq;      /* ta_rx_receive: last_seq is valid */
    uint16_t last_seq;  /* ta_rx_receive: of the last packet taken */
    uint64_t packets, errors;
    uint64_t concealed, fec_tried, stale; /* ta_rx_receive only */
    int16_t tmp[MAX_DECODE];
};

int ta_rx_new(struct ta_rx **out, uint32_t rate)
{
    struct ta_rx *rx;
    int err;

    if (!opus_rate_ok(rate))
        return -EINVAL;
    rx = calloc(1, sizeof(*rx));
    if (!rx)
        return -ENOMEM;
    rx->dec = opus_decoder_create((opus_int32)rate, 1, &err);
    if (!rx->dec) {
        free(rx);
        return err == OPUS_ALLOC_FAIL ? -ENOMEM : -EINVAL;
    }
    ta_pcm_init(&rx->pcm, rate);
    *out = rx;
    return 0;
}

void ta_rx_free(struct ta_rx *rx)
{
    if (!rx)
        return;
    opus_decoder_destroy(rx->dec);
    ta_pcm_free(&rx->pcm);
    free(rx);
}

/* Appends silence for a forward timestamp gap so that buffer position keeps
 * following the RTP clock. */
static int rx_fill_gap(struct ta_rx *rx, uint32_t ts)
{
    int32_t gap = (int32_t)(ts - rx->next_ts);

    if (!rx->started || gap <= 0 || gap > TA_MAX_GAP_MS * (TA_RTP_RATE / 1000))
        return 0;
    return ta_pcm_append(&rx->pcm, NULL,
                         (size_t)gap * rx->pcm.rate / TA_RTP_RATE);
}

int ta_rx_decode(struct ta_rx *rx, uint32_t ts, const uint8_t *data,
                 uint32_t len)
{
    size_t before = rx->pcm.n;
    int n, rc;

    n = opus_decode(rx->dec, data, (opus_int32)len, rx->tmp, MAX_DECODE, 0);
    if (n < 0) {
        rx->errors++;
        return -EINVAL;
    }
    rc = rx_fill_gap(rx, ts);
    if (rc == 0)
        rc = ta_pcm_append(&rx->pcm, rx->tmp, (size_t)n);
    if (rc)
        return rc;
    rx->started = true;
    rx->next_ts = ts + (uint32_t)((uint64_t)n * TA_RTP_RATE / rx->pcm.rate);
    rx->packets++;
    return (int)(rx->pcm.n - before);
}

/* Appends @n samples of rx->tmp and moves the timeline on past them. */
static int rx_append(struct ta_rx *rx, size_t n)
{
    int rc = ta_pcm_append(&rx->pcm, rx->tmp, n);

    if (rc == 0)
        rx->next_ts += (uint32_t)((uint64_t)n * TA_RTP_RATE / rx->pcm.rate);
    return rc;
}

/* Conceals the audio missing between the end of the last packet and @ts,
 * the start of the packet @data that follows the loss: PLC for all of it
 * but the last packet's worth, which Opus rebuilds from @data's in-band FEC
 * (or conceals too when @data carries none). Decoding in that order leaves
 * the decoder ready for @data itself. Returns 0 or -ENOMEM. */
static int rx_conceal(struct ta_rx *rx, uint32_t ts, const uint8_t *data,
                      uint32_t len)
{
    int32_t gap = (int32_t)(ts - rx->next_ts);
    uint32_t quantum = rx->pcm.rate / 400;  /* 2.5 ms, Opus's smallest frame */
    uint32_t chunk = rx->pcm.rate / 1000 * 60;
    size_t missing;
    int n, rc;

    if (gap <= 0 || gap > TA_MAX_GAP_MS * (TA_RTP_RATE / 1000))
        return 0;
    missing = (size_t)gap * rx->pcm.rate / TA_RTP_RATE / quantum * quantum;
    rx->concealed++;
    /* Plain PLC for what the FEC cannot cover, in chunks the decoder takes. */
    while (missing > MAX_DECODE) {
        n = opus_decode(rx->dec, NULL, 0, rx->tmp, (int)chunk, 0);
        if (n <= 0)
            return 0;   /* cannot happen with a valid size; stop concealing */
        rc = rx_append(rx, (size_t)n);
        if (rc)
            return rc;
        missing -= (size_t)n;
    }
    if (missing == 0)
        return 0;
    rx->fec_tried++;
    n = opus_decode(rx->dec, data, (opus_int32)len, rx->tmp, (int)missing, 1);
    if (n <= 0)
        return 0;
    return rx_append(rx, (size_t)n);
}

int ta_rx_receive(struct ta_rx *rx, uint16_t seq, uint32_t ts,
                  const uint8_t *data, uint32_t len)
{
    size_t before = rx->pcm.n;
    int rc;

    if (rx->have_seq && (int16_t)(seq - rx->last_seq) <= 0) {
        rx->stale++;
        return 0;
    }
    /* Reject a bad packet before concealing anything on its behalf. */
    if (opus_packet_get_nb_samples(data, (opus_int32)len, (opus_int32)rx->pcm.rate) <= 0) {
        rx->errors++;
        return -EINVAL;
    }
    if (rx->have_seq && rx->started && (uint16_t)(seq - rx->last_seq) > 1) {
        rc = rx_conceal(rx, ts, data, len);
        if (rc)
            return rc;
    }
    rx->have_seq = true;
    rx->last_seq = seq;
    rc = ta_rx_decode(rx, ts, data, len);
    if (rc < 0)
        return rc;
    return (int)(rx->pcm.n - before);
}

struct ta_pcm *ta_rx_pcm(struct ta_rx *rx)
{
    return &rx->pcm;
}

uint64_t ta_rx_packets(const struct ta_rx *rx)
{
    return rx->packets;
}

uint64_t ta_rx_errors(const struct ta_rx *rx)
{
    return rx->errors;
}

uint64_t ta_rx_concealed(const struct ta_rx *rx)
{
    return rx->concealed;
}

uint64_t ta_rx_fec_tried(const struct ta_rx *rx)
{
    return rx->fec_tried;
}

uint64_t ta_rx_stale(const struct ta_rx *rx)
{
    return rx->stale;
}

/* ---- files ---- */

static void put_le(uint8_t *p, uint32_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int ta_wav_write(const char *path, const int16_t *pcm, size_t n, uint32_t rate)
{
    uint8_t h[44];
    uint32_t data = (uint32_t)(n * 2);
    FILE *f;
    int rc = 0;

    memcpy(h, "RIFF", 4);
    put_le(h + 4, 36 + data, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 16, 4);          /* fmt chunk size */
    put_le(h + 20, 1, 2);           /* PCM */
    put_le(h + 22, 1, 2);           /* mono */
    put_le(h + 24, rate, 4);
    put_le(h + 28, rate * 2, 4);    /* byte rate */
    put_le(h + 32, 2, 2);           /* block align */
    put_le(h + 34, 16, 2);          /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_le(h + 40, data, 4);

    f = fopen(path, "wb");
    if (!f)
        return -errno;
    if (fwrite(h, 1, sizeof(h), f) != sizeof(h))
        rc = -EIO;
    /* Samples are written byte by byte so the file is little-endian on any
     * host. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t b[2];

        put_le(b, (uint16_t)pcm[i], 2);
        if (fwrite(b, 1, 2, f) != 2)
            rc = -EIO;
    }
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int ta_wav_dump(const char *name, const struct ta_pcm *p)
{
    const char *dir = getenv("CHORUS_TEST_WAV_DIR");
    char path[4096];

    if (!dir || !*dir)
        return 0;
    if (snprintf(path, sizeof(path), "%s/%s.wav", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    return ta_wav_write(path, p->s, p->n, p->rate);
}

/* ---- WAV reader ---- */

enum {
    WAV_FMT_PCM = 1,
    WAV_FMT_EXTENSIBLE = 0xFFFE,
    WAV_MAX_CHANNELS = 8,
    WAV_CHUNK_HDR = 8,          /* id + little-endian size */
    WAV_FMT_MIN = 16,           /* the PCM part of a fmt chunk */
};

static uint32_t get_le(const uint8_t *p, unsigned bytes)
{
    uint32_t v = 0;

    for (unsigned i = bytes; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Reads the whole file into a malloc'd buffer. Returns 0 or -errno. */
static int slurp(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!f)
        return -errno;
    for (;;) {
        if (cap - n < 65536) {
            uint8_t *nb = realloc(b, cap * 2 + 65536);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            b = nb;
            cap = cap * 2 + 65536;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Appends @frames frames of @ch interleaved little-endian channels at @p,
 * averaged to mono. */
static int wav_append(struct ta_pcm *out, const uint8_t *p, size_t frames, unsigned ch)
{
    int16_t block[1024];

    while (frames > 0) {
        size_t take = frames < 1024 ? frames : 1024;

        for (size_t i = 0; i < take; i++) {
            int32_t sum = 0;

            for (unsigned c = 0; c < ch; c++)
                sum += (int16_t)get_le(p + (i * ch + c) * 2, 2);
            block[i] = (int16_t)(sum / (int32_t)ch);
        }
        if (ta_pcm_append(out, block, take) != 0)
            return -ENOMEM;
        p += take * ch * 2;
        frames -= take;
    }
    return 0;
}

int ta_wav_read(const char *path, struct ta_pcm *out)
{
    uint8_t *buf = NULL;
    size_t len = 0, off = 12;
    unsigned ch = 0;
    uint32_t rate = 0;
    int rc = slurp(path, &buf, &len);

    if (rc)
        return rc;
    rc = -EINVAL;
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        goto out_free;
    /* Bounded: every pass moves @off forward by at least one chunk header. */
    while (off + WAV_CHUNK_HDR <= len) {
        const uint8_t *c = buf + off;
        size_t size = get_le(c + 4, 4);
        size_t avail = len - off - WAV_CHUNK_HDR;

        if (memcmp(c, "fmt ", 4) == 0) {
            unsigned tag, bits;

            if (size < WAV_FMT_MIN || size > avail)
                goto out_free;
            tag = get_le(c + 8, 2);
            ch = get_le(c + 10, 2);
            rate = get_le(c + 12, 4);
            bits = get_le(c + 22, 2);
            if (tag == WAV_FMT_EXTENSIBLE && size >= 40)
                tag = get_le(c + 32, 2); /* the sub-format GUID starts with the tag */
            if (tag != WAV_FMT_PCM || bits != 16 || ch == 0 || ch > WAV_MAX_CHANNELS ||
                rate == 0)
                goto out_free;
        } else if (memcmp(c, "data", 4) == 0) {
            if (ch == 0)
                goto out_free; /* data before fmt */
            if (size == 0 || size == 0xFFFFFFFFu || size > avail)
                size = avail;
            out->rate = rate;
            rc = wav_append(out, c + WAV_CHUNK_HDR, size / (2 * ch), ch);
            goto out_free;
        }
        if (size > avail)
            goto out_free;
        off += WAV_CHUNK_HDR + size + (size & 1); /* chunks are word aligned */
    }
out_free:
    free(buf);
    return rc;
}
