/*
 * mix_ops.h: pure sample kernels of the mixer (after PipeWire's mix-ops):
 * accumulate, mix-minus, limiter, level measurement, G.711, fades and
 * comfort noise. No state beyond what the caller passes in, no allocation:
 * every function here is real-time safe.
 *
 * Thread: any (rt in the engine).
 */
#ifndef MIX_OPS_H
#define MIX_OPS_H

#include <stdint.h>

enum {
    MIX_GAIN_UNITY = 1 << 16,   /* Q16 gain of 0 dB */
    MIX_LEVEL_SILENT = 127,     /* RFC 6464 level of digital silence */
};

/* acc[i] += (src[i] * gain_q16) >> 16. Accumulates wide, never clips. */
void mix_ops_accum(int32_t *acc, const int16_t *src, uint32_t n, int32_t gain_q16);

/* dst[i] = acc[i] - ((src[i] * gain_q16) >> 16): the mix-minus of one source,
 * exactly undoing what mix_ops_accum added for it. */
void mix_ops_minus(int32_t *dst, const int32_t *acc, const int16_t *src,
                   uint32_t n, int32_t gain_q16);

/* dst[i] -= (src[i] * gain_q16) >> 16, in place. */
void mix_ops_sub(int32_t *dst, const int16_t *src, uint32_t n, int32_t gain_q16);

/* Q16 gain for @db decibels, clamped to [-60, +20] dB (-60 dB and below
 * gives 0, i.e. fully attenuated). */
int32_t mix_ops_gain_q16(float db);

/*
 * A peak limiter per output, instead of a hard clamp: when a block of the
 * wide mix would exceed the threshold the gain drops at once for that block
 * (no overshoot), then recovers smoothly over the release time, so several
 * loud talkers neither wrap around nor crackle. A final saturation catches
 * rounding only.
 */
struct mix_limiter {
    float gain;     /* current gain, 0 < gain <= 1 */
    float release;  /* per-block multiplicative recovery step (> 1) */
    uint32_t block; /* samples per gain block (1 ms at the rate) */
};

void mix_limiter_init(struct mix_limiter *l, uint32_t rate);

/* Limits @n samples of @in into @out. Returns the number of blocks in which
 * gain reduction was applied (for counters and tests). */
uint32_t mix_limiter_process(struct mix_limiter *l, const int32_t *in,
                             int16_t *out, uint32_t n);

/* Audio level of @n samples as an RFC 6464 value: 0 (0 dBov, loudest) to
 * 127 (-127 dBov or digital silence). dBov is the RMS relative to the RMS of
 * a full-scale square wave, per RFC 6464 §3. */
uint8_t mix_ops_level(const int16_t *pcm, uint32_t n);

/* Same, over a wide mix (values beyond int16 are treated as clipped). */
uint8_t mix_ops_level32(const int32_t *pcm, uint32_t n);

/* Linear fade from silence over the first @n samples (after a decoder reset,
 * so a talker who resumes does not click). */
void mix_ops_fade_in(int16_t *pcm, uint32_t n);

/* Adds white noise at @dbov (e.g. -70) to @acc using the LCG state @seed. */
void mix_ops_add_noise(int32_t *acc, uint32_t n, int dbov, uint32_t *seed);

/* G.711 (ITU-T G.711, companding as in the reference implementation). */
uint8_t mix_g711_ulaw_encode(int16_t s);
int16_t mix_g711_ulaw_decode(uint8_t u);
uint8_t mix_g711_alaw_encode(int16_t s);
int16_t mix_g711_alaw_decode(uint8_t a);

#endif /* MIX_OPS_H */
