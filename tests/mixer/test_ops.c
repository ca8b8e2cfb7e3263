/*
 * test_ops.c: the mixer's sample kernels (mix_ops.h). Exactness of the
 * accumulate / mix-minus pair, Q16 gains, the limiter on a five-way
 * full-scale overload, RFC 6464 levels, G.711 round trips and known codes,
 * the fade-in and the comfort-noise level.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "mix_ops.h"

/* Deterministic pseudo-random int16 samples (xorshift32). */
static uint32_t rnd_state = 0x12345678u;

static uint32_t rnd(void)
{
    uint32_t x = rnd_state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rnd_state = x;
    return x;
}

static void fill_random(int16_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s[i] = (int16_t)(rnd() & 0xffff);
}

/* ---- accumulate / minus ---- */

enum { N = 997 };   /* odd, so no kernel can rely on a multiple of 4 or 8 */

static const int32_t gains[] = {
    MIX_GAIN_UNITY, 0, 1, 32768, 65535, 65537, 131072, 655360, 12345,
};

Test(ops, accum_adds_exactly)
{
    static int16_t src[N];
    static int32_t acc[N], ref[N];

    for (unsigned g = 0; g < sizeof(gains) / sizeof(gains[0]); g++) {
        fill_random(src, N);
        for (uint32_t i = 0; i < N; i++)
            acc[i] = ref[i] = (int32_t)(rnd() % 400001) - 200000;
        mix_ops_accum(acc, src, N, gains[g]);
        for (uint32_t i = 0; i < N; i++)
            ref[i] += (int32_t)(((int64_t)src[i] * gains[g]) >> 16);
        cr_assert_arr_eq(acc, ref, sizeof(acc), "gain_q16 %d", gains[g]);
    }
}

Test(ops, minus_undoes_accum_exactly)
{
    enum { SRC = 5 };
    static int16_t src[SRC][N];
    static int32_t acc[N], others[N], dst[N], inplace[N];
    const int32_t g[SRC] = {MIX_GAIN_UNITY, 32768, 12345, 131072, 1};

    memset(acc, 0, sizeof(acc));
    for (unsigned k = 0; k < SRC; k++) {
        fill_random(src[k], N);
        mix_ops_accum(acc, src[k], N, g[k]);
    }
    /* The mix-minus of each source must equal the sum of all the others,
     * bit for bit: any rounding mismatch would leak a faint echo of the
     * listener's own voice back to them. */
    for (unsigned k = 0; k < SRC; k++) {
        memset(others, 0, sizeof(others));
        for (unsigned j = 0; j < SRC; j++)
            if (j != k)
                mix_ops_accum(others, src[j], N, g[j]);
        mix_ops_minus(dst, acc, src[k], N, g[k]);
        cr_assert_arr_eq(dst, others, sizeof(dst), "minus of source %u", k);
        memcpy(inplace, acc, sizeof(acc));
        mix_ops_sub(inplace, src[k], N, g[k]);
        cr_assert_arr_eq(inplace, others, sizeof(dst), "sub of source %u", k);
    }
}

Test(ops, accum_extremes_do_not_overflow)
{
    int16_t lo[4] = {-32768, -32768, -32768, -32768};
    int16_t hi[4] = {32767, 32767, 32767, 32767};
    int32_t acc[4] = {0};

    /* 20 full-scale sources at +20 dB stay far inside int32. */
    for (int k = 0; k < 20; k++)
        mix_ops_accum(acc, (k & 1) ? hi : lo, 4, mix_ops_gain_q16(20.0f));
    cr_expect_lt(acc[0], 0);
    cr_expect_gt(acc[0], -20 * 32768 * 11);
}

/* ---- gains ---- */

Test(ops, gain_q16_values)
{
    cr_expect_eq(mix_ops_gain_q16(0.0f), 65536);
    cr_expect_eq(MIX_GAIN_UNITY, 65536);
    /* -6 dB is 0.501, not exactly one half. */
    cr_expect(labs(mix_ops_gain_q16(-6.0f) - 32845) <= 2, "-6 dB: %d",
              mix_ops_gain_q16(-6.0f));
    cr_expect(labs(mix_ops_gain_q16(-6.0206f) - 32768) <= 2);
    cr_expect(labs(mix_ops_gain_q16(6.0206f) - 131072) <= 4);
    cr_expect(labs(mix_ops_gain_q16(-20.0f) - 6554) <= 1);
    cr_expect(labs(mix_ops_gain_q16(-12.0f) - 16462) <= 2);
    cr_expect(labs(mix_ops_gain_q16(20.0f) - 655360) <= 8);
    /* Clamps: above +20 dB, and -60 dB or below means off. */
    cr_expect_eq(mix_ops_gain_q16(30.0f), mix_ops_gain_q16(20.0f));
    cr_expect_eq(mix_ops_gain_q16(1000.0f), mix_ops_gain_q16(20.0f));
    cr_expect_eq(mix_ops_gain_q16(-60.0f), 0);
    cr_expect_eq(mix_ops_gain_q16(-100.0f), 0);
    cr_expect_eq(mix_ops_gain_q16(-INFINITY), 0);
    cr_expect_eq(mix_ops_gain_q16(NAN), 0);
    cr_expect_gt(mix_ops_gain_q16(-59.0f), 0);
    /* Monotonic over the useful range. */
    for (float db = -59.0f; db < 20.0f; db += 0.5f)
        cr_expect_leq(mix_ops_gain_q16(db), mix_ops_gain_q16(db + 0.5f),
                     "at %.1f dB", db);
}

/* ---- limiter ---- */

struct lim_case {
    uint32_t rate;
    double freqs[5];    /* five full-scale tones summed */
};

static void check_limiter(const struct lim_case *c)
{
    const uint32_t rate = c->rate;
    const uint32_t loud = rate;          /* 1 s of overload */
    const uint32_t quiet = rate;         /* then 1 s at -20 dBFS */
    const uint32_t total = loud + quiet;
    int32_t *in = calloc(total, sizeof(*in));
    int16_t *out = calloc(total, sizeof(*out));
    int16_t *q16 = calloc(quiet, sizeof(*q16));
    struct ta_sine g[5], gq;
    struct mix_limiter lim;
    uint32_t limited_loud = 0, limited_quiet = 0, exact_from = 0;
    uint32_t chunk = rate / 100;         /* 10 ms blocks, as the engine does */

    cr_assert(in && out && q16);
    for (int k = 0; k < 5; k++) {
        ta_sine_init(&g[k], c->freqs[k], rate, 0.0);
        ta_sine_add32(&g[k], in, loud);
    }
    ta_sine_init(&gq, 1000.0, rate, -20.0);
    ta_sine_fill(&gq, q16, quiet);
    for (uint32_t i = 0; i < quiet; i++)
        in[loud + i] = q16[i];

    mix_limiter_init(&lim, rate);
    for (uint32_t at = 0; at < total; at += chunk) {
        uint32_t r = mix_limiter_process(&lim, in + at, out + at, chunk);

        if (at < loud)
            limited_loud += r;
        else
            limited_quiet += r;
        if (at >= loud && exact_from == 0 && lim.gain >= 1.0f)
            exact_from = at + chunk;
    }

    cr_expect_gt(limited_loud, 0u);
    /* No wrap-around and no sign flips: every output sample keeps the sign
     * of its input, and neighbouring samples never jump by more than the
     * (limited) tones can move. */
    for (uint32_t i = 0; i < loud; i++) {
        if (in[i] > 0)
            cr_assert_geq(out[i], 0, "sign flip at %u: in %d out %d", i,
                          in[i], out[i]);
        else if (in[i] < 0)
            cr_assert_leq(out[i], 0, "sign flip at %u: in %d out %d", i,
                          in[i], out[i]);
    }
    cr_expect_leq(ta_peak(out, total), 32767);
    cr_expect_lt(ta_max_step(out, loud), 16384, "step %d",
                 ta_max_step(out, loud));
    /* It limits, it does not mute: the loud part stays loud. */
    cr_expect_gt(ta_peak(out, loud), 26000);
    for (int k = 0; k < 5; k++)
        cr_expect_gt(ta_tone_db(out + rate / 10, loud - rate / 10, c->freqs[k],
                                rate), -24.0, "tone %g", c->freqs[k]);
    /* The gain recovers to exactly 1 within 0.5 s of the overload ending,
     * after which quiet audio passes bit-exact. */
    cr_assert_neq(exact_from, 0u, "gain never recovered (%f)", lim.gain);
    cr_expect_leq(exact_from - loud, rate / 2, "recovered after %u samples",
                  exact_from - loud);
    cr_expect_eq(limited_quiet, 0u);
    cr_expect_arr_eq(out + exact_from, q16 + (exact_from - loud),
                     (total - exact_from) * sizeof(int16_t));
    free(in);
    free(out);
    free(q16);
}

Test(ops, limiter_five_in_phase_full_scale_48k)
{
    struct lim_case c = {48000, {440, 440, 440, 440, 440}};

    check_limiter(&c);
}

Test(ops, limiter_five_tones_full_scale_48k)
{
    struct lim_case c = {48000, {407, 541, 673, 863, 1013}};

    check_limiter(&c);
}

Test(ops, limiter_five_in_phase_full_scale_8k)
{
    struct lim_case c = {8000, {300, 300, 300, 300, 300}};

    check_limiter(&c);
}

Test(ops, limiter_passes_quiet_audio_bit_exact)
{
    static const uint32_t rates[] = {8000, 16000, 24000, 48000};

    for (unsigned r = 0; r < 4; r++) {
        uint32_t n = rates[r];
        int16_t *pcm = calloc(n, sizeof(*pcm));
        int16_t *out = calloc(n, sizeof(*out));
        int32_t *in = calloc(n, sizeof(*in));
        struct ta_sine g;
        struct mix_limiter lim;
        uint32_t limited = 0;

        cr_assert(pcm && out && in);
        /* -3 dBFS peaks at 23197, under the limiter's threshold. */
        ta_sine_init(&g, 997.0, rates[r], -3.0);
        ta_sine_fill(&g, pcm, n);
        for (uint32_t i = 0; i < n; i++)
            in[i] = pcm[i];
        mix_limiter_init(&lim, rates[r]);
        for (uint32_t at = 0; at < n; at += rates[r] / 50)
            limited += mix_limiter_process(&lim, in + at, out + at, rates[r] / 50);
        cr_expect_eq(limited, 0u, "rate %u", rates[r]);
        cr_expect_arr_eq(out, pcm, n * sizeof(int16_t), "rate %u", rates[r]);
        free(pcm);
        free(out);
        free(in);
    }
}

Test(ops, limiter_single_sample_spike)
{
    int32_t in[480] = {0};
    int16_t out[480];
    struct mix_limiter lim;

    /* A lone spike far beyond int16 must come out at the right sign and
     * no larger than full scale. */
    in[100] = 1000000;
    in[300] = -1000000;
    mix_limiter_init(&lim, 48000);
    cr_expect_gt(mix_limiter_process(&lim, in, out, 480), 0u);
    cr_expect_gt(out[100], 20000);
    cr_expect_lt(out[300], -20000);
    cr_expect_eq(out[0], 0);
}

/* ---- levels (RFC 6464) ---- */

Test(ops, level_reference_signals)
{
    enum { L = 4800 };
    static int16_t pcm[L];
    static int32_t wide[L];
    struct ta_sine g;

    for (int i = 0; i < L; i++)
        pcm[i] = (i / 24) & 1 ? 32767 : -32767;
    cr_expect_eq(mix_ops_level(pcm, L), 0, "full-scale square");

    ta_sine_init(&g, 1000.0, 48000, 0.0);
    ta_sine_fill(&g, pcm, L);
    cr_expect_eq(mix_ops_level(pcm, L), 3, "full-scale sine");

    ta_sine_init(&g, 1000.0, 48000, -20.0);
    ta_sine_fill(&g, pcm, L);
    cr_expect_eq(mix_ops_level(pcm, L), 23, "-20 dB sine");

    ta_sine_init(&g, 1000.0, 48000, -50.0);
    ta_sine_fill(&g, pcm, L);
    cr_expect_eq(mix_ops_level(pcm, L), 53, "-50 dB sine");

    memset(pcm, 0, sizeof(pcm));
    cr_expect_eq(mix_ops_level(pcm, L), MIX_LEVEL_SILENT);
    cr_expect_eq(mix_ops_level(pcm, 0), MIX_LEVEL_SILENT);
    pcm[7] = 1;     /* -140 dBov or so: still reported as silence */
    cr_expect_eq(mix_ops_level(pcm, L), MIX_LEVEL_SILENT);

    /* Wide mixes beyond int16 count as clipped, so at most 0. */
    for (int i = 0; i < L; i++)
        wide[i] = (i / 24) & 1 ? 200000 : -200000;
    cr_expect_eq(mix_ops_level32(wide, L), 0);
    ta_sine_init(&g, 1000.0, 48000, -20.0);
    memset(wide, 0, sizeof(wide));
    ta_sine_add32(&g, wide, L);
    cr_expect_eq(mix_ops_level32(wide, L), 23);
    memset(wide, 0, sizeof(wide));
    cr_expect_eq(mix_ops_level32(wide, L), MIX_LEVEL_SILENT);
}

/* ---- G.711 ---- */

Test(ops, g711_known_codes)
{
    cr_expect_eq(mix_g711_ulaw_encode(0), 0xFF);
    cr_expect_eq(mix_g711_ulaw_decode(0xFF), 0);
    cr_expect_eq(mix_g711_ulaw_decode(0x7F), 0);   /* "negative zero" */
    cr_expect_eq(mix_g711_ulaw_decode(0x80), 32124);
    cr_expect_eq(mix_g711_ulaw_decode(0x00), -32124);
    cr_expect_eq(mix_g711_ulaw_encode(32767), 0x80);
    cr_expect_eq(mix_g711_ulaw_encode(-32768), 0x00);

    cr_expect_eq(mix_g711_alaw_encode(0), 0xD5);
    cr_expect_eq(mix_g711_alaw_decode(0xD5), 8);
    cr_expect_eq(mix_g711_alaw_decode(0x55), -8);
    cr_expect_eq(mix_g711_alaw_decode(0xAA), 32256);
    cr_expect_eq(mix_g711_alaw_decode(0x2A), -32256);
    cr_expect_eq(mix_g711_alaw_encode(32767), 0xAA);
    cr_expect_eq(mix_g711_alaw_encode(-32768), 0x2A);
}

Test(ops, g711_codes_round_trip)
{
    /* Every code decodes to a value that encodes back to the same code
     * (except mu-law's negative zero, which becomes positive zero). */
    for (int c = 0; c < 256; c++) {
        uint8_t u = (uint8_t)c;

        if (u != 0x7F)
            cr_expect_eq(mix_g711_ulaw_encode(mix_g711_ulaw_decode(u)), u,
                         "mu-law code 0x%02x", u);
        cr_expect_eq(mix_g711_alaw_encode(mix_g711_alaw_decode(u)), u,
                     "A-law code 0x%02x", u);
    }
}

/* Largest error allowed for @s: about half the quantizer step of the
 * segment @s falls in (4 bits of mantissa: |s| / 32). The reference mu-law
 * encoder first truncates to 14 bits towards minus infinity, which can cost
 * most of a further step just above a segment boundary for negative
 * samples, hence its larger share (|s| / 19). @floor_err covers the finest
 * segments and anything beyond @clip is clipped. */
static int32_t g711_bound(int32_t s, int32_t div, int32_t floor_err,
                          int32_t clip)
{
    int32_t a = s < 0 ? -s : s;
    int32_t b = a / div + floor_err;

    if (a > clip)
        b += a - clip;
    return b;
}

Test(ops, g711_sample_round_trip_error)
{
    int32_t prev_u = -40000, prev_a = -40000;

    for (int32_t s = -32768; s <= 32767; s++) {
        int32_t u = mix_g711_ulaw_decode(mix_g711_ulaw_encode((int16_t)s));
        int32_t a = mix_g711_alaw_decode(mix_g711_alaw_encode((int16_t)s));

        cr_assert_leq(abs(u - s), g711_bound(s, 19, 12, 32124), "mu-law %d -> %d",
                      s, u);
        cr_assert_leq(abs(a - s), g711_bound(s, 32, 8, 32256), "A-law %d -> %d",
                      s, a);
        /* Both companders are monotonic. */
        cr_assert_geq(u, prev_u, "mu-law not monotonic at %d", s);
        cr_assert_geq(a, prev_a, "A-law not monotonic at %d", s);
        prev_u = u;
        prev_a = a;
    }
}

Test(ops, g711_tone_snr)
{
    enum { L = 8000 };
    static int16_t pcm[L], u[L], a[L];
    struct ta_sine g;
    const double f = 1000.0;

    /* G.711 gives about 38 dB SNR over a wide range of levels. */
    ta_sine_init(&g, f, 8000, -10.0);
    ta_sine_fill(&g, pcm, L);
    for (int i = 0; i < L; i++) {
        u[i] = mix_g711_ulaw_decode(mix_g711_ulaw_encode(pcm[i]));
        a[i] = mix_g711_alaw_decode(mix_g711_alaw_encode(pcm[i]));
    }
    cr_expect_gt(ta_snr_db(u, L, 8000, &f, 1), 33.0);
    cr_expect_gt(ta_snr_db(a, L, 8000, &f, 1), 33.0);
    cr_expect(fabs(ta_tone_db(u, L, f, 8000) + 10.0) < 0.5);
    cr_expect(fabs(ta_tone_db(a, L, f, 8000) + 10.0) < 0.5);
}

/* ---- fade, noise ---- */

Test(ops, fade_in_ramps_from_silence)
{
    enum { L = 480 };
    int16_t up[L], down[L];

    for (int i = 0; i < L; i++) {
        up[i] = 20000;
        down[i] = -20000;
    }
    mix_ops_fade_in(up, L);
    mix_ops_fade_in(down, L);
    cr_expect_eq(up[0], 0);
    cr_expect_eq(down[0], 0);
    for (int i = 1; i < L; i++) {
        cr_assert_geq(up[i], up[i - 1], "not monotonic at %d", i);
        cr_assert_leq(up[i], 20000);
        cr_assert_eq(down[i], -up[i], "asymmetric at %d", i);
    }
    cr_expect_geq(up[L - 1], 20000 - 20000 / L - 1);
    cr_expect(abs(up[L / 2] - 10000) <= 50, "half way: %d", up[L / 2]);
}

Test(ops, add_noise_level)
{
    enum { L = 48000 };
    static int32_t acc[L], acc2[L];
    static const int dbov[] = {-30, -50, -70};

    for (unsigned k = 0; k < 3; k++) {
        uint32_t seed = 1, seed2 = 1;
        double mean = 0.0;

        memset(acc, 0, sizeof(acc));
        mix_ops_add_noise(acc, L, dbov[k], &seed);
        cr_expect(abs(mix_ops_level32(acc, L) + dbov[k]) <= 1,
                  "asked %d dBov, level %u", dbov[k], mix_ops_level32(acc, L));
        for (int i = 0; i < L; i++)
            mean += acc[i];
        mean /= L;
        cr_expect(fabs(mean) < 0.05 * 32767.0 * pow(10.0, dbov[k] / 20.0) + 1.0,
                  "DC offset %f", mean);
        cr_expect_neq(seed, 1u, "seed not advanced");

        /* The seed carries the sequence on: two halves equal one whole. */
        memset(acc2, 0, sizeof(acc2));
        mix_ops_add_noise(acc2, L / 2, dbov[k], &seed2);
        mix_ops_add_noise(acc2 + L / 2, L / 2, dbov[k], &seed2);
        cr_expect_arr_eq(acc, acc2, sizeof(acc));
        cr_expect_eq(seed, seed2);
    }
}

Test(ops, add_noise_adds)
{
    int32_t acc[256];
    uint32_t seed = 7;

    /* Noise is added on top of the mix, not written over it. */
    for (int i = 0; i < 256; i++)
        acc[i] = 100000;
    mix_ops_add_noise(acc, 256, -70, &seed);
    for (int i = 0; i < 256; i++)
        cr_assert(abs(acc[i] - 100000) <= 20, "sample %d: %d", i, acc[i]);
}
