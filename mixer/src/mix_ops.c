/*
 * mix_ops.c: sample kernels. See mix_ops.h.
 */
#include "mix_ops.h"

#include <math.h>

void mix_ops_accum(int32_t *acc, const int16_t *src, uint32_t n, int32_t gain_q16)
{
    if (gain_q16 == MIX_GAIN_UNITY) {
        for (uint32_t i = 0; i < n; i++)
            acc[i] += src[i];
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        acc[i] += (int32_t)(((int64_t)src[i] * gain_q16) >> 16);
}

void mix_ops_minus(int32_t *dst, const int32_t *acc, const int16_t *src,
                   uint32_t n, int32_t gain_q16)
{
    if (gain_q16 == MIX_GAIN_UNITY) {
        for (uint32_t i = 0; i < n; i++)
            dst[i] = acc[i] - src[i];
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        dst[i] = acc[i] - (int32_t)(((int64_t)src[i] * gain_q16) >> 16);
}

void mix_ops_sub(int32_t *dst, const int16_t *src, uint32_t n, int32_t gain_q16)
{
    for (uint32_t i = 0; i < n; i++)
        dst[i] -= (int32_t)(((int64_t)src[i] * gain_q16) >> 16);
}

int32_t mix_ops_gain_q16(float db)
{
    if (!(db > -60.0f)) /* also catches NaN */
        return 0;
    if (db > 20.0f)
        db = 20.0f;
    return (int32_t)lrintf(powf(10.0f, db / 20.0f) * (float)MIX_GAIN_UNITY);
}

/* -1 dBFS: leaves headroom for the codec's own overshoot. */
static const float LIMIT_THRESHOLD = 29204.0f;
/* Time for the gain to recover by 20 dB. */
static const float LIMIT_RELEASE_S = 0.25f;

void mix_limiter_init(struct mix_limiter *l, uint32_t rate)
{
    uint32_t blocks_per_s;

    l->gain = 1.0f;
    l->block = rate / 1000;
    if (l->block == 0)
        l->block = 1;
    blocks_per_s = rate / l->block;
    /* 20 dB (x10) over LIMIT_RELEASE_S seconds of blocks. */
    l->release = powf(10.0f, 1.0f / (LIMIT_RELEASE_S * (float)blocks_per_s));
}

static inline int16_t sat16(int32_t v)
{
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

uint32_t mix_limiter_process(struct mix_limiter *l, const int32_t *in,
                             int16_t *out, uint32_t n)
{
    uint32_t limited = 0;

    for (uint32_t start = 0; start < n; start += l->block) {
        uint32_t end = start + l->block < n ? start + l->block : n;
        int32_t peak = 0;
        float g;

        for (uint32_t i = start; i < end; i++) {
            int32_t a = in[i] < 0 ? -in[i] : in[i];
            if (a > peak)
                peak = a;
        }
        /* Recover first, then make sure this block cannot exceed the
         * threshold: attack is instantaneous at block granularity. */
        g = l->gain * l->release;
        if (g > 1.0f)
            g = 1.0f;
        if ((float)peak * g > LIMIT_THRESHOLD) {
            g = LIMIT_THRESHOLD / (float)peak;
            limited++;
        }
        l->gain = g;
        if (g >= 1.0f) {
            for (uint32_t i = start; i < end; i++)
                out[i] = sat16(in[i]);
        } else {
            for (uint32_t i = start; i < end; i++)
                out[i] = sat16((int32_t)lrintf((float)in[i] * g));
        }
    }
    return limited;
}

/* RFC 6464: level = -20 log10(rms / rms_full_scale_square), rms of a full
 * scale square wave being 32767. Clamped to 0..127. */
static uint8_t level_from_energy(double sum_sq, uint32_t n)
{
    double rms, db;

    if (n == 0 || sum_sq <= 0.0)
        return MIX_LEVEL_SILENT;
    rms = sqrt(sum_sq / n);
    db = -20.0 * log10(rms / 32767.0);
    if (db < 0.0)
        return 0;
    if (db > 127.0)
        return MIX_LEVEL_SILENT;
    return (uint8_t)lrint(db);
}

uint8_t mix_ops_level(const int16_t *pcm, uint32_t n)
{
    double sum = 0.0;

    for (uint32_t i = 0; i < n; i++)
        sum += (double)pcm[i] * pcm[i];
    return level_from_energy(sum, n);
}

uint8_t mix_ops_level32(const int32_t *pcm, uint32_t n)
{
    double sum = 0.0;

    for (uint32_t i = 0; i < n; i++) {
        double v = sat16(pcm[i]);
        sum += v * v;
    }
    return level_from_energy(sum, n);
}

void mix_ops_fade_in(int16_t *pcm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(((int32_t)pcm[i] * (int32_t)i) / (int32_t)n);
}

void mix_ops_add_noise(int32_t *acc, uint32_t n, int dbov, uint32_t *seed)
{
    /* Uniform noise in [-a, a] has rms a/sqrt(3). */
    int32_t amp = (int32_t)(32767.0 * pow(10.0, dbov / 20.0) * 1.7320508);
    uint32_t s = *seed;

    if (amp <= 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        acc[i] += (int32_t)((int64_t)((int32_t)(s >> 16) - 32768) * amp / 32768);
    }
    *seed = s;
}

/* ---- G.711, after the ITU-T/Sun reference implementation (g711.c) ---- */

static const int16_t SEG_AEND[8] = {0x1F, 0x3F, 0x7F, 0xFF,
                                    0x1FF, 0x3FF, 0x7FF, 0xFFF};
static const int16_t SEG_UEND[8] = {0x3F, 0x7F, 0xFF, 0x1FF,
                                    0x3FF, 0x7FF, 0xFFF, 0x1FFF};

static int seg_search(int val, const int16_t *table)
{
    for (int i = 0; i < 8; i++)
        if (val <= table[i])
            return i;
    return 8;
}

uint8_t mix_g711_alaw_encode(int16_t pcm)
{
    int val = pcm >> 3;
    int mask, seg;
    int aval;

    if (val >= 0) {
        mask = 0xD5;
    } else {
        mask = 0x55;
        val = -val - 1;
    }
    seg = seg_search(val, SEG_AEND);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    aval = seg << 4;
    aval |= seg < 2 ? (val >> 1) & 0x0F : (val >> seg) & 0x0F;
    return (uint8_t)(aval ^ mask);
}

int16_t mix_g711_alaw_decode(uint8_t a_val)
{
    int t, seg;

    a_val ^= 0x55;
    t = (a_val & 0x0F) << 4;
    seg = (a_val & 0x70) >> 4;
    switch (seg) {
    case 0:
        t += 8;
        break;
    case 1:
        t += 0x108;
        break;
    default:
        t += 0x108;
        t <<= seg - 1;
    }
    return (int16_t)((a_val & 0x80) ? t : -t);
}

enum { ULAW_BIAS = 0x84, ULAW_CLIP = 8159 };

uint8_t mix_g711_ulaw_encode(int16_t pcm)
{
    int val = pcm >> 2;
    int mask, seg;

    if (val < 0) {
        val = -val;
        mask = 0x7F;
    } else {
        mask = 0xFF;
    }
    if (val > ULAW_CLIP)
        val = ULAW_CLIP;
    val += ULAW_BIAS >> 2;
    seg = seg_search(val, SEG_UEND);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((val >> (seg + 1)) & 0xF)) ^ mask);
}

int16_t mix_g711_ulaw_decode(uint8_t u_val)
{
    int t;

    u_val = (uint8_t)~u_val;
    t = ((u_val & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u_val & 0x70) >> 4;
    return (int16_t)((u_val & 0x80) ? (ULAW_BIAS - t) : (t - ULAW_BIAS));
}
