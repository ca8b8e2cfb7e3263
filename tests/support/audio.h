/*
 * audio.h: test audio helpers ("ta_"), shared by the tests and the bench/
 * programs: tone generation, measurement (Goertzel tone level, RMS, peak,
 * SNR), a small Opus sender and receiver that speak RTP timestamps, growable
 * PCM buffers and a WAV writer for looking at a failing case by ear.
 *
 * Levels. Every dB figure here is relative to full scale in the AES17 sense:
 * a full-scale sine (amplitude 32767) is 0 dBFS, both as a tone level and as
 * an RMS level, so a sine generated at -12 dBFS measures -12 both ways. (A
 * full-scale square wave therefore has an RMS level of +3 dBFS.) Silence
 * measures TA_DB_FLOOR rather than minus infinity, so results can be compared
 * and printed without special cases.
 *
 * Everything is mono, 16-bit. Nothing here knows about the mixer.
 *
 * Thread: any; each object is used by one thread at a time.
 */
#ifndef TA_AUDIO_H
#define TA_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TA_RTP_RATE = 48000,        /* Opus RTP clock (RFC 7587), whatever the rate */
    TA_MAX_PACKET = 1275,       /* largest Opus packet */
    TA_MAX_GAP_MS = 10000,      /* longest timestamp gap a receiver fills */
};

#define TA_DB_FLOOR (-200.0)    /* what silence measures, in dB */
#define TA_FULL_SCALE 32767.0   /* amplitude of a 0 dBFS sine */

/* ---- growable PCM buffer ---- */

/* A heap buffer of samples at one rate. Fields are public, read-only. */
struct ta_pcm {
    int16_t *s;     /* samples (NULL while empty) */
    size_t n;       /* samples held */
    size_t cap;     /* samples allocated */
    uint32_t rate;  /* sample rate, Hz */
};

void ta_pcm_init(struct ta_pcm *p, uint32_t rate);

/* Appends @n samples (@s may be NULL to append silence). Returns 0 or
 * -ENOMEM. */
int ta_pcm_append(struct ta_pcm *p, const int16_t *s, size_t n);

/* Forgets the samples but keeps the allocation. */
void ta_pcm_clear(struct ta_pcm *p);

void ta_pcm_free(struct ta_pcm *p);

/* Sample index of @ms milliseconds into @p (clamped to p->n). */
size_t ta_pcm_index_ms(const struct ta_pcm *p, uint32_t ms);

/* ---- generation ---- */

/* Linear amplitude of a sine at @dbfs (0 dBFS = 32767). */
double ta_db_to_amp(double dbfs);

/* Level in dBFS of a sine of amplitude @amp; TA_DB_FLOOR for amp <= 0. */
double ta_amp_to_db(double amp);

/* A phase-continuous sine generator: successive ta_sine_fill calls produce
 * one unbroken tone, whatever the block sizes, so frames cut from it have no
 * discontinuity at their edges. */
struct ta_sine {
    double phase;   /* radians, kept in [0, 2 pi) */
    double step;    /* radians per sample */
    double amp;     /* peak amplitude in sample units */
};

void ta_sine_init(struct ta_sine *g, double freq, uint32_t rate, double dbfs);

/* Changes the level from the next sample on (the phase carries on). */
void ta_sine_set_db(struct ta_sine *g, double dbfs);

/* Writes the next @n samples of the tone, rounded and saturated to int16. */
void ta_sine_fill(struct ta_sine *g, int16_t *out, size_t n);

/* Like ta_sine_fill but adds into a wide buffer (for sums beyond int16). */
void ta_sine_add32(struct ta_sine *g, int32_t *acc, size_t n);

/* ---- measurement ---- */

/*
 * Level in dBFS of the component of @freq Hz in @n samples at @rate:
 * a Hann-windowed Goertzel filter evaluated exactly at @freq (not at the
 * nearest bin), scaled so a sine of amplitude A at @freq measures
 * 20 log10(A / 32767). The window keeps leakage from other tones a few
 * hundred Hz away far below -100 dB for analysis lengths of 100 ms or more.
 * Returns TA_DB_FLOOR for silence or n < 2.
 */
double ta_tone_db(const int16_t *pcm, size_t n, double freq, uint32_t rate);

/* ta_tone_db over the part of @p from @from_ms to @to_ms (0: to the end). */
double ta_pcm_tone_db(const struct ta_pcm *p, uint32_t from_ms, uint32_t to_ms,
                      double freq);

/* True when the level of @freq in the buffer is at least @min_db. */
bool ta_tone_present(const int16_t *pcm, size_t n, double freq, uint32_t rate,
                     double min_db);

/* Root mean square, in sample units (0 for n == 0). */
double ta_rms(const int16_t *pcm, size_t n);

/* RMS level in dBFS (AES17: a full-scale sine is 0). */
double ta_rms_db(const int16_t *pcm, size_t n);

/* Largest absolute sample value (32768 for -32768). */
int32_t ta_peak(const int16_t *pcm, size_t n);

/* Fraction (0..1) of samples whose magnitude is at least @limit, e.g.
 * 32767 to see how much of a signal sits on the rails (hard clipping). */
double ta_fraction_at_or_above(const int16_t *pcm, size_t n, int32_t limit);

/* Largest absolute difference between neighbouring samples: a wrapped
 * (overflowed) mix shows up as a jump of about 65536. */
int32_t ta_max_step(const int16_t *pcm, size_t n);

/*
 * Signal-to-noise ratio in dB of @n samples that should contain only the
 * @nf tones listed in @freqs: each tone is fitted by least squares (known
 * frequency, free amplitude and phase) and removed; what is left is noise,
 * distortion and any tone not listed. Returns +200 when nothing is left and
 * TA_DB_FLOOR when the tones carry no energy.
 */
double ta_snr_db(const int16_t *pcm, size_t n, uint32_t rate,
                 const double *freqs, unsigned nf);

/* ---- Opus sender ---- */

/* Wraps an OpusEncoder (VOIP application, mono) and numbers its packets
 * like an RTP sender: seq + 1 and ts + 48 * frame_ms per frame, ts in the
 * 48 kHz units RFC 7587 uses for every Opus rate. */
struct ta_tx;

/* Creates a sender encoding at @rate (8000..48000) in frames of @frame_ms
 * (10, 20, 40 or 60) at @bitrate bps (0 for Opus's default). The first
 * packet has seq @seq0 and ts @ts0. Returns 0, -EINVAL or -ENOMEM. */
int ta_tx_new(struct ta_tx **out, uint32_t rate, uint32_t frame_ms,
              uint32_t bitrate, uint16_t seq0, uint32_t ts0);

void ta_tx_free(struct ta_tx *tx);

/* Samples per frame at the sender's rate. */
uint32_t ta_tx_frame_samples(const struct ta_tx *tx);

/* Encodes one frame of ta_tx_frame_samples() samples into @out (capacity
 * @cap), stores the packet's RTP seq and ts and advances them. Returns the
 * packet length, or -EINVAL when Opus refuses. */
int ta_tx_encode(struct ta_tx *tx, const int16_t *pcm, uint8_t *out,
                 uint32_t cap, uint16_t *seq, uint32_t *ts);

/* Skips one frame without encoding (a DTX gap or a lost packet): the next
 * packet's seq and ts advance as if this one had been sent. */
void ta_tx_skip(struct ta_tx *tx);

/* ---- Opus receiver ---- */

/* Decodes Opus packets at a rate and appends the PCM to a buffer, keeping
 * the timeline, so the buffer position of a sample stays tied to its
 * timestamp. It fills what it did not get in one of two ways:
 *  - ta_rx_decode knows only timestamps and fills every gap with digital
 *    silence, so a missing packet shows up as a dropout (tests that look
 *    for gaps rely on that);
 *  - ta_rx_receive also takes the RTP sequence number and behaves like a
 *    real receiver: packets missing from the sequence are concealed by the
 *    decoder (PLC), the last of them rebuilt from the in-band FEC of the
 *    packet that follows when it carries some. A timestamp gap with no
 *    sequence gap is the sender pausing on purpose (DTX, silence
 *    suppression) and is still filled with silence.
 * Use one or the other on a receiver, not both. */
struct ta_rx;

/* Creates a receiver decoding at @rate. Returns 0, -EINVAL or -ENOMEM. */
int ta_rx_new(struct ta_rx **out, uint32_t rate);

void ta_rx_free(struct ta_rx *rx);

/* Decodes one packet with RTP timestamp @ts (48 kHz units). Silence fills a
 * forward gap of up to TA_MAX_GAP_MS since the previous packet's end; a
 * longer gap or a backward step restarts the timeline without filling.
 * Returns the samples appended (gap included), -EINVAL when the decoder
 * rejects the packet (nothing appended), or -ENOMEM. */
int ta_rx_decode(struct ta_rx *rx, uint32_t ts, const uint8_t *data,
                 uint32_t len);

/* Receives one packet with RTP sequence number @seq and timestamp @ts
 * (48 kHz units), concealing the packets missing before it as described
 * above (at most TA_MAX_GAP_MS of them; a longer gap restarts the timeline
 * without filling). A packet whose sequence number is not newer than the
 * last one's (duplicate, reordered) is ignored and returns 0. Returns the
 * samples appended (concealment included), -EINVAL when the decoder rejects
 * the packet (nothing appended), or -ENOMEM. */
int ta_rx_receive(struct ta_rx *rx, uint16_t seq, uint32_t ts,
                  const uint8_t *data, uint32_t len);

/* The decoded audio so far (owned by the receiver). */
struct ta_pcm *ta_rx_pcm(struct ta_rx *rx);

/* Packets decoded and packets the decoder rejected. */
uint64_t ta_rx_packets(const struct ta_rx *rx);
uint64_t ta_rx_errors(const struct ta_rx *rx);

/* ta_rx_receive only: gaps concealed (one per run of missing packets), and
 * how many of those the decoder was offered the next packet's FEC for (it
 * falls back to PLC itself when that packet carries none), and packets
 * ignored as not newer than the last. */
uint64_t ta_rx_concealed(const struct ta_rx *rx);
uint64_t ta_rx_fec_tried(const struct ta_rx *rx);
uint64_t ta_rx_stale(const struct ta_rx *rx);

/* ---- files ---- */

/* Writes @n mono 16-bit samples as a RIFF/WAVE file. Returns 0 or -errno. */
int ta_wav_write(const char *path, const int16_t *pcm, size_t n, uint32_t rate);

/* Writes @p to $CHORUS_TEST_WAV_DIR/@name.wav when that variable is set (a
 * failing test calls this so the audio can be listened to). Returns 0 when
 * written or not asked for, else -errno. */
int ta_wav_dump(const char *name, const struct ta_pcm *p);

/*
 * Reads a RIFF/WAVE file of 16-bit PCM (format tag 1, or
 * WAVE_FORMAT_EXTENSIBLE with PCM inside) into @out, which must be
 * initialised (ta_pcm_init; its rate is replaced by the file's, and the
 * samples are appended). Several channels are averaged to mono. Chunks
 * other than "fmt " and "data" (LIST, fact...) are skipped. A data chunk
 * whose size is 0, 0xFFFFFFFF or beyond the end of the file (a writer that
 * was stopped before it could patch its header) is read to the end of the
 * file. Returns 0, -errno when the file cannot be read, -EINVAL when it is
 * not such a WAV file, or -ENOMEM.
 */
int ta_wav_read(const char *path, struct ta_pcm *out);

#endif /* TA_AUDIO_H */
