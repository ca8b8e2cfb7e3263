/*
 * cli_media.c: see cli_media.h.
 */
#include "cli_media.h"

#include <errno.h>
#include <math.h>
#include <opus/opus.h>
#include <sodium.h>
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brg_rtp.h"
#include "mix_jitter.h"
#include "mix_ops.h"

struct cli_media {
    struct cli_media_config cfg;
    OpusEncoder *enc;
    OpusDecoder *dec;
    double phase;                /* tone phase, radians */
    double amp;
    int16_t *wav;                /* CLI_SRC_WAV, resampled to 48 kHz */
    size_t wav_len, wav_pos;

    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    bool sent_any;

    struct mix_jb jb;
    bool rx_started;
    uint32_t rx_ssrc;
    struct brg_rtp_stats rx;
    bool dec_fresh;              /* nothing decoded yet / after silence */
    struct cli_wav_out out;
    bool out_open;
    struct cli_stats st;
};

static int load_wav(struct cli_media *m, char *err, size_t errlen)
{
    int16_t *pcm;
    size_t n;
    uint32_t rate;
    int rc = cli_wav_read(m->cfg.wav_in, &pcm, &n, &rate, err, errlen);
    SpeexResamplerState *rs;
    spx_uint32_t in_len, out_len;

    if (rc)
        return rc;
    if (rate == CLI_RATE) {
        m->wav = pcm;
        m->wav_len = n;
        return 0;
    }
    rs = speex_resampler_init(1, rate, CLI_RATE, SPEEX_RESAMPLER_QUALITY_DEFAULT, &rc);
    m->wav = malloc(((uint64_t)n * CLI_RATE / rate + 16) * sizeof(int16_t));
    if (!rs || !m->wav) {
        if (rs)
            speex_resampler_destroy(rs);
        free(pcm);
        snprintf(err, errlen, "out of memory resampling %s", m->cfg.wav_in);
        return -ENOMEM;
    }
    in_len = (spx_uint32_t)n;
    out_len = (spx_uint32_t)((uint64_t)n * CLI_RATE / rate + 16);
    speex_resampler_process_int(rs, 0, pcm, &in_len, m->wav, &out_len);
    m->wav_len = out_len;
    speex_resampler_destroy(rs);
    free(pcm);
    return 0;
}

int cli_media_new(struct cli_media **out, const struct cli_media_config *cfg,
                  char *err, size_t errlen)
{
    struct cli_media *m = calloc(1, sizeof(*m));
    struct mix_jb_config jc = {
        .clock_rate = CLI_RATE,
        .frame = CLI_FRAME,
        .min_delay = CLI_FRAME,
        .max_delay = CLI_RATE / 5,
    };
    int rc;

    *out = NULL;
    if (!m) {
        snprintf(err, errlen, "out of memory"); /* the caller prints err */
        return -ENOMEM;
    }
    m->cfg = *cfg;
    m->enc = opus_encoder_create(CLI_RATE, 1, OPUS_APPLICATION_VOIP, &rc);
    m->dec = opus_decoder_create(CLI_RATE, 1, &rc);
    if (!m->enc || !m->dec) {
        snprintf(err, errlen, "cannot create the Opus codec");
        rc = -ENOMEM;
        goto fail;
    }
    opus_encoder_ctl(m->enc, OPUS_SET_BITRATE((opus_int32)(cfg->bitrate ? cfg->bitrate : 32000)));
    opus_encoder_ctl(m->enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(m->enc, OPUS_SET_PACKET_LOSS_PERC(10));
    opus_encoder_ctl(m->enc, OPUS_SET_COMPLEXITY(10));
    mix_jb_init(&m->jb, &jc);
    m->amp = 32767.0 * pow(10.0, cfg->tone_dbfs / 20.0);
    /* RFC 3550 §5.1: random SSRC, sequence number and timestamp origin. */
    m->ssrc = randombytes_random();
    m->seq = (uint16_t)randombytes_random();
    m->ts = randombytes_random();
    m->dec_fresh = true;
    if (cfg->source == CLI_SRC_WAV && (rc = load_wav(m, err, errlen)) != 0)
        goto fail;
    if (cfg->wav_out) {
        rc = cli_wav_open(&m->out, cfg->wav_out, CLI_RATE);
        if (rc) {
            snprintf(err, errlen, "%s: %s", cfg->wav_out, strerror(-rc));
            goto fail;
        }
        m->out_open = true;
    }
    *out = m;
    return 0;
fail:
    cli_media_free(m);
    return rc;
}

void cli_media_free(struct cli_media *m)
{
    if (!m)
        return;
    if (m->out_open)
        cli_wav_close(&m->out);
    if (m->enc)
        opus_encoder_destroy(m->enc);
    if (m->dec)
        opus_decoder_destroy(m->dec);
    free(m->wav);
    free(m);
}

static void source_frame(struct cli_media *m, int16_t *pcm)
{
    switch (m->cfg.source) {
    case CLI_SRC_TONE: {
        double step = 2.0 * M_PI * m->cfg.tone_hz / CLI_RATE;
        for (int i = 0; i < CLI_FRAME; i++) {
            pcm[i] = (int16_t)lrint(m->amp * sin(m->phase));
            m->phase += step;
        }
        m->phase = fmod(m->phase, 2.0 * M_PI);
        return;
    }
    case CLI_SRC_WAV:
        for (int i = 0; i < CLI_FRAME; i++)
            pcm[i] = m->wav_pos < m->wav_len ? m->wav[m->wav_pos++] : 0;
        return;
    case CLI_SRC_SILENCE:
        break;
    }
    memset(pcm, 0, CLI_FRAME * sizeof(int16_t));
}

int cli_media_next_packet(struct cli_media *m, uint8_t *buf, size_t cap)
{
    int16_t pcm[CLI_FRAME];
    uint8_t payload[1275];
    uint8_t level;
    int n, len;

    source_frame(m, pcm);
    level = mix_ops_level(pcm, CLI_FRAME);
    n = opus_encode(m->enc, pcm, CLI_FRAME, payload, sizeof(payload));
    if (n < 0)
        return -EIO;
    struct brg_rtp_header h = {
        .pt = CLI_PT_OPUS,
        .marker = !m->sent_any,
        .seq = m->seq++,
        .ts = m->ts,
        .ssrc = m->ssrc,
        .level_present = true,
        .vad = level < MIX_LEVEL_SILENT,
        .level = level,
    };
    m->ts += CLI_FRAME;
    len = brg_rtp_build(buf, cap, &h, payload, (size_t)n);
    if (len > 0) {
        m->sent_any = true;
        m->st.sent++;
        m->st.sent_bytes += (uint64_t)len;
    }
    return len;
}

int cli_media_receive(struct cli_media *m, const uint8_t *pkt, size_t len,
                      uint64_t now_ns)
{
    struct brg_rtp_packet p;
    struct mix_jb_meta jm;
    int dur;

    if (brg_rtp_parse(&p, pkt, len, BRG_RTP_EXT_ID_AUDIO_LEVEL) != BRG_RTP_OK ||
        p.payload_len == 0 || p.payload_len > MIX_JB_MAX_PAYLOAD) {
        m->st.invalid++;
        return -EINVAL;
    }
    dur = opus_packet_get_nb_samples(p.payload, (opus_int32)p.payload_len, CLI_RATE);
    if (dur <= 0 || dur > 2880) {
        m->st.invalid++;
        return -EINVAL;
    }
    if (!m->rx_started || p.ssrc != m->rx_ssrc) {
        brg_rtp_stats_init(&m->rx, p.ssrc);
        m->rx_ssrc = p.ssrc;
        m->rx_started = true;
    }
    brg_rtp_stats_update(&m->rx, p.seq, p.ts, brg_rtp_arrival(now_ns / 1000, CLI_RATE));
    jm.seq = p.seq;
    jm.ts = p.ts;
    jm.duration = (uint32_t)dur;
    jm.arrival = (uint32_t)(now_ns / 1000 * CLI_RATE / 1000000);
    jm.level = p.level_present ? p.level : MIX_JB_LEVEL_NONE;
    jm.vad = p.vad;
    mix_jb_put(&m->jb, &jm, p.payload, (uint32_t)p.payload_len);
    m->st.received++;
    m->st.received_bytes += len;
    return 0;
}

void cli_media_play(struct cli_media *m, uint64_t now_ns)
{
    int16_t pcm[2880];
    struct mix_jb_out o;
    int n = CLI_FRAME;

    if (!m->rx_started)
        return;
    mix_jb_get(&m->jb, (uint32_t)(now_ns / 1000 * CLI_RATE / 1000000), &o);
    switch (o.kind) {
    case MIX_JB_PACKET:
        n = opus_decode(m->dec, o.pkt->data, o.pkt->len, pcm, (int)o.duration, 0);
        m->dec_fresh = false;
        break;
    case MIX_JB_FEC:
        n = opus_decode(m->dec, o.pkt->data, o.pkt->len, pcm, (int)o.duration, 1);
        break;
    case MIX_JB_LOST:
        n = m->dec_fresh ? -1 : opus_decode(m->dec, NULL, 0, pcm, CLI_FRAME, 0);
        break;
    case MIX_JB_EMPTY:
    case MIX_JB_SILENCE:
        n = -1;
        if (!m->dec_fresh)
            m->st.gaps++;
        break;
    }
    if (n < 0) {
        memset(pcm, 0, CLI_FRAME * sizeof(int16_t));
        n = CLI_FRAME;
    }
    m->st.played_frames++;
    if (m->out_open)
        cli_wav_append(&m->out, pcm, (size_t)n);
}

int cli_media_finish(struct cli_media *m, struct cli_stats *st)
{
    int rc = 0;

    if (m->out_open) {
        rc = cli_wav_close(&m->out);
        m->out_open = false;
    }
    m->st.lost = m->jb.stats.lost;
    m->st.late = m->jb.stats.late;
    m->st.concealed = m->jb.stats.concealed;
    m->st.fec = m->jb.stats.fec;
    m->st.duplicate = m->jb.stats.duplicate;
    m->st.jitter_ms = m->rx_started ? (double)(m->rx.jitter_q4 >> 4) * 1000.0 / CLI_RATE : 0;
    *st = m->st;
    return rc;
}
