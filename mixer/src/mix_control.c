/*
 * mix_control.c: the loop-side half of the engine. Builds rooms, encoder
 * groups and legs whole (every allocation and codec set-up happens here),
 * keeps a shadow of their settings so the loop never has to ask rt anything,
 * and posts commands that rt applies between cycles. Also the network-side
 * packet entry points, mix_leg_push and mix_leg_pop.
 *
 * Thread: loop, throughout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mix_internal.h"

/* ---- defaults and validation ---- */

void mix_room_settings_default(struct mix_room_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->rate = 48000;
    s->frame_ms = 20;
    s->talkers = MIX_DEFAULT_K;
    s->comfort_noise_dbov = -70;
}

void mix_leg_config_default(struct mix_leg_config *c)
{
    memset(c, 0, sizeof(*c));
    c->codec = MIX_CODEC_OPUS;
    c->rate = 48000;
    c->complexity = 10;
}

static bool room_rate_ok(uint32_t rate)
{
    return rate == 8000 || rate == 16000 || rate == 24000 || rate == 48000;
}

static bool settings_ok(const struct mix_room_settings *s)
{
    return room_rate_ok(s->rate) &&
           (s->frame_ms == 10 || s->frame_ms == 20 || s->frame_ms == 40) &&
           s->talkers >= 1 && s->talkers <= MIX_MAX_K &&
           s->comfort_noise_dbov >= -90 && s->comfort_noise_dbov <= -30;
}

static uint32_t default_bitrate(uint32_t rate)
{
    switch (rate) {
    case 8000:
        return 12000;
    case 12000:
        return 16000;
    case 16000:
        return 20000;
    case 24000:
        return 24000;
    default:
        return 32000;
    }
}

static bool ring_size_ok(uint32_t n)
{
    return n == 0 || (n >= 1024 && n <= (1u << 20) && (n & (n - 1)) == 0);
}

/* ---- encoder groups ---- */

static OpusEncoder *enc_new(const struct mix_group *g)
{
    int err;
    OpusEncoder *enc = opus_encoder_create((opus_int32)g->rate, 1,
                                           OPUS_APPLICATION_VOIP, &err);
    if (!enc)
        return NULL;
    opus_encoder_ctl(enc, OPUS_SET_BITRATE((opus_int32)g->bitrate));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(g->complexity));
    opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    /* In-band FEC lets receivers rebuild a single lost packet. */
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(10));
    return enc;
}

static SpeexResamplerState *resampler_new(uint32_t from, uint32_t to)
{
    int err;

    if (from == to)
        return NULL;
    return speex_resampler_init(1, from, to, SPEEX_RESAMPLER_QUALITY_VOIP, &err);
}

static void slot_free(struct mix_enc_slot *s)
{
    if (s->enc)
        opus_encoder_destroy(s->enc);
    if (s->down)
        speex_resampler_destroy(s->down);
    memset(s, 0, sizeof(*s));
}

static int slot_init(struct mix_enc_slot *s, const struct mix_group *g,
                     uint32_t room_rate)
{
    memset(s, 0, sizeof(*s));
    if (g->codec == MIX_CODEC_OPUS) {
        s->enc = enc_new(g);
        if (!s->enc)
            return -ENOMEM;
    }
    if (g->rate != room_rate) {
        s->down = resampler_new(room_rate, g->rate);
        if (!s->down) {
            slot_free(s);
            return -ENOMEM;
        }
    }
    mix_limiter_init(&s->lim, room_rate);
    return 0;
}

void mix__group_free(struct mix_group *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; i < g->pool_loop; i++)
        slot_free(&g->pool[i]);
    if (g->shared)
        opus_encoder_destroy(g->shared);
    if (g->down)
        speex_resampler_destroy(g->down);
    free(g);
}

/* Builds pool slots up to @n. Returns 0 or -ENOMEM (slots built so far stay). */
static int group_grow_pool(struct mix_group *g, uint32_t n, uint32_t room_rate)
{
    if (n > MIX_MAX_K + MIX_POOL_EXTRA)
        n = MIX_MAX_K + MIX_POOL_EXTRA;
    while (g->pool_loop < n) {
        int rc = slot_init(&g->pool[g->pool_loop], g, room_rate);
        if (rc)
            return rc;
        g->pool_loop++;
    }
    return 0;
}

/* One frame of encoded digital silence. Replayed frame after frame it
 * decodes to silence on any receiver (checked for every rate: after one
 * transition frame the output is within +-3 of zero), so deaf legs and
 * keep-alives reuse these bytes instead of running an encoder. */
static int group_make_silence(struct mix_group *g)
{
    int16_t zeros[MIX_MAX_FRAME_48K] = {0};
    OpusEncoder *enc;
    int n = 0;

    if (g->codec != MIX_CODEC_OPUS) {
        uint8_t code = g->codec == MIX_CODEC_PCMU ? mix_g711_ulaw_encode(0)
                                                  : mix_g711_alaw_encode(0);
        g->silence_len = (uint16_t)g->frame;
        memset(g->silence, code, g->silence_len);
        return 0;
    }
    enc = enc_new(g);
    if (!enc)
        return -ENOMEM;
    /* A few frames, so the encoder has left its start-up state. */
    for (int i = 0; i < 4 && n >= 0; i++)
        n = opus_encode(enc, zeros, (int)g->frame, g->silence, sizeof(g->silence));
    opus_encoder_destroy(enc);
    if (n <= 0)
        return -EIO;
    g->silence_len = (uint16_t)n;
    return 0;
}

static struct mix_group *group_new(struct mix_room *r, const struct mix_leg_config *c,
                                   uint32_t slot)
{
    struct mix_group *g = calloc(1, sizeof(*g));

    if (!g)
        return NULL;
    g->codec = c->codec;
    g->rate = c->codec == MIX_CODEC_OPUS ? c->rate : 8000;
    g->bitrate = c->codec == MIX_CODEC_OPUS
                     ? (c->bitrate ? c->bitrate : default_bitrate(g->rate))
                     : 64000;
    g->complexity = c->complexity < 0 ? 10 : c->complexity;
    g->frame = g->rate / 1000 * r->frame_ms;
    g->ts_step = (c->codec == MIX_CODEC_OPUS ? 48 : 8) * r->frame_ms;
    g->slot = slot;
    g->enc_size = (uint32_t)opus_encoder_get_size(1);
    if (g->codec == MIX_CODEC_OPUS) {
        g->shared = enc_new(g);
        if (!g->shared)
            goto err;
    }
    if (g->rate != r->rate) {
        g->down = resampler_new(r->rate, g->rate);
        if (!g->down)
            goto err;
    }
    if (group_make_silence(g) != 0)
        goto err;
    if (group_grow_pool(g, r->l_set.talkers + MIX_POOL_EXTRA, r->rate) != 0)
        goto err;
    g->pool_rt = g->pool_loop;
    mix_limiter_init(&g->lim, r->rate);
    return g;
err:
    mix__group_free(g);
    return NULL;
}

static bool group_matches(const struct mix_group *g, const struct mix_leg_config *c)
{
    uint32_t rate = c->codec == MIX_CODEC_OPUS ? c->rate : 8000;
    uint32_t br = c->codec == MIX_CODEC_OPUS
                      ? (c->bitrate ? c->bitrate : default_bitrate(rate))
                      : 64000;
    int cx = c->complexity < 0 ? 10 : c->complexity;

    return g->codec == c->codec && g->rate == rate && g->bitrate == br &&
           g->complexity == cx;
}

/* Finds the room's group for @c or builds and posts a new one. */
static int group_get(struct mix_room *r, const struct mix_leg_config *c,
                     struct mix_group **out)
{
    int free_slot = -1;
    struct mix_cmd cmd = {.type = MIX_CMD_GROUP_ADD, .room = r};
    struct mix_group *g;
    int rc;

    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++) {
        g = r->l_groups[i];
        if (g && group_matches(g, c)) {
            *out = g;
            return 0;
        }
        if (!g && free_slot < 0)
            free_slot = (int)i;
    }
    if (free_slot < 0)
        return -ENOSPC;
    g = group_new(r, c, (uint32_t)free_slot);
    if (!g)
        return -ENOMEM;
    cmd.group = g;
    rc = mix__post(r->w, &cmd);
    if (rc) {
        mix__group_free(g);
        return rc;
    }
    r->l_groups[free_slot] = g;
    *out = g;
    return 0;
}

/* Drops one reference; the last one removes the group (after the leg's own
 * removal command, so rt never sees a leg without its group). */
static void group_put(struct mix_room *r, struct mix_group *g)
{
    struct mix_cmd cmd = {.type = MIX_CMD_GROUP_REMOVE, .room = r, .group = g};

    if (--g->refs > 0 || g->dying)
        return;
    g->dying = true;
    r->l_groups[g->slot] = NULL;
    if (mix__post(r->w, &cmd) != 0) {
        /* Ring full: keep it listed so it is freed with the room. */
        g->dying = false;
        r->l_groups[g->slot] = g;
    }
}

/* ---- rooms ---- */

/* Chooses the phase that keeps the busiest of the four cycles (mod 4) of
 * the room's worker least busy, so rooms with 20 or 40 ms frames spread
 * evenly whatever their ids. */
static uint32_t pick_phase(struct mix_engine *e, const struct mix_room *r)
{
    uint32_t *load = e->phase_load[r->w->idx];
    uint32_t best = 0, best_max = UINT32_MAX;

    for (uint32_t p = 0; p < r->every; p++) {
        uint32_t mx = 0;
        for (uint32_t c = 0; c < 4; c++) {
            uint32_t l = load[c] + ((c + p) % r->every == 0);
            if (l > mx)
                mx = l;
        }
        if (mx < best_max) {
            best_max = mx;
            best = p;
        }
    }
    return best;
}

static void phase_account(struct mix_room *r, int delta)
{
    uint32_t *load = r->e->phase_load[r->w->idx];

    for (uint32_t c = 0; c < 4; c++)
        if ((c + r->phase) % r->every == 0)
            load[c] = (uint32_t)((int)load[c] + delta);
}

int mix_room_new(struct mix_engine *e, uint32_t id, void *user,
                 const struct mix_room_settings *s, struct mix_room **out)
{
    struct mix_room_settings def;
    struct mix_cmd cmd = {.type = MIX_CMD_ROOM_ADD};
    struct mix_room *r;
    int rc;

    *out = NULL;
    if (!s) {
        mix_room_settings_default(&def);
        s = &def;
    }
    if (!settings_ok(s))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->id = id;
    r->user = user;
    r->e = e;
    r->w = e->w[e->next_worker];
    e->next_worker = (e->next_worker + 1) % e->nworkers;
    r->rate = s->rate;
    r->frame_ms = s->frame_ms;
    r->frame = s->rate / 1000 * s->frame_ms;
    r->every = s->frame_ms / MIX_CYCLE_MS;
    r->phase = pick_phase(e, r);
    r->naive = s->naive;
    r->l_set = *s;
    /* rt fields may be written here: rt has not seen the room yet. */
    r->k = s->talkers;
    r->suppress = s->silence_suppression;
    r->cn = s->comfort_noise;
    r->cn_dbov = s->comfort_noise_dbov;
    r->forward = s->forward_single_talker;
    r->cn_seed = 0x9e3779b9u ^ id;

    cmd.room = r;
    rc = mix__post(r->w, &cmd);
    if (rc) {
        free(r);
        return rc;
    }
    phase_account(r, 1);
    r->l_next = e->l_rooms;
    if (e->l_rooms)
        e->l_rooms->l_prev = r;
    e->l_rooms = r;
    *out = r;
    return 0;
}

const struct mix_room_settings *mix_room_settings(const struct mix_room *r)
{
    return &r->l_set;
}

int mix_room_update(struct mix_room *r, const struct mix_room_settings *s)
{
    struct mix_cmd cmd = {.type = MIX_CMD_ROOM_SET, .room = r};
    int rc;

    if (r->l_dying || !settings_ok(s) || s->rate != r->rate ||
        s->frame_ms != r->frame_ms || s->naive != r->naive)
        return -EINVAL;
    /* More talkers need more encoders: build them first, hand them over
     * with their own command, then raise K. */
    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++) {
        struct mix_group *g = r->l_groups[i];
        struct mix_cmd grow = {.type = MIX_CMD_POOL_GROW, .room = r, .group = g};

        if (!g || g->pool_loop >= s->talkers + MIX_POOL_EXTRA)
            continue;
        rc = group_grow_pool(g, s->talkers + MIX_POOL_EXTRA, r->rate);
        if (rc)
            return rc;
        grow.u.pool_n = g->pool_loop;
        rc = mix__post(r->w, &grow);
        if (rc)
            return rc;
    }
    cmd.u.set.k = s->talkers;
    cmd.u.set.suppress = s->silence_suppression;
    cmd.u.set.cn = s->comfort_noise;
    cmd.u.set.cn_dbov = s->comfort_noise_dbov;
    cmd.u.set.forward = s->forward_single_talker;
    rc = mix__post(r->w, &cmd);
    if (rc)
        return rc;
    r->l_set = *s;
    return 0;
}

int mix_room_destroy(struct mix_room *r)
{
    struct mix_cmd cmd = {.type = MIX_CMD_ROOM_REMOVE, .room = r};
    int rc;

    if (r->l_dying)
        return -EALREADY;
    rc = mix__post(r->w, &cmd);
    if (rc)
        return rc;
    r->l_dying = true;
    phase_account(r, -1);
    /* rt releases the room's groups with it; forget them here so that
     * nothing frees them twice. */
    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++) {
        if (r->l_groups[i])
            r->l_groups[i]->dying = true;
        r->l_groups[i] = NULL;
    }
    for (struct mix_leg *l = r->l_legs; l; l = l->l_next)
        l->l_dying = true;
    return 0;
}

void mix__room_free(struct mix_room *r)
{
    free(r);
}

uint32_t mix_room_id(const struct mix_room *r)
{
    return r->id;
}

/* ---- legs ---- */

void mix__leg_free(struct mix_leg *l)
{
    if (!l)
        return;
    if (l->dec)
        opus_decoder_destroy(l->dec);
    if (l->up)
        speex_resampler_destroy(l->up);
    if (l->l_own) {
        slot_free(l->l_own);
        free(l->l_own);
    }
    free(l->in_buf);
    free(l->out_buf);
    free(l);
}

static bool leg_config_ok(const struct mix_leg_config *c)
{
    if (!ring_size_ok(c->in_ring_bytes) || !ring_size_ok(c->out_ring_bytes))
        return false;
    switch (c->codec) {
    case MIX_CODEC_OPUS:
        return (c->rate == 8000 || c->rate == 12000 || c->rate == 16000 ||
                c->rate == 24000 || c->rate == 48000) &&
               c->complexity >= -1 && c->complexity <= 10 &&
               (c->bitrate == 0 || (c->bitrate >= 6000 && c->bitrate <= 510000));
    case MIX_CODEC_PCMU:
    case MIX_CODEC_PCMA:
        return c->rate == 0 || c->rate == 8000;
    }
    return false;
}

static int leg_build(struct mix_leg *l, struct mix_room *r,
                     const struct mix_leg_config *c)
{
    struct mix_jb_config jc;
    uint32_t in_sz = c->in_ring_bytes ? c->in_ring_bytes : MIX_DEFAULT_RING;
    uint32_t out_sz = c->out_ring_bytes ? c->out_ring_bytes : MIX_DEFAULT_RING;
    int err;

    l->id = c->id;
    l->user = c->user;
    l->room = r;
    l->codec = c->codec;
    l->rate = c->codec == MIX_CODEC_OPUS ? c->rate : 8000;
    l->clock = c->codec == MIX_CODEC_OPUS ? 48000 : 8000;
    l->frame_ts = l->clock / 1000 * r->frame_ms;
    if (c->codec == MIX_CODEC_OPUS) {
        l->dec = opus_decoder_create((opus_int32)l->rate, 1, &err);
        if (!l->dec)
            return -ENOMEM;
    }
    if (l->rate != r->rate) {
        l->up = resampler_new(l->rate, r->rate);
        if (!l->up)
            return -ENOMEM;
    }
    l->in_buf = malloc(in_sz);
    l->out_buf = malloc(out_sz);
    if (!l->in_buf || !l->out_buf)
        return -ENOMEM;
    mix_ring_init(&l->in, l->in_buf, in_sz);
    mix_ring_init(&l->out, l->out_buf, out_sz);

    jc.clock_rate = l->clock;
    jc.frame = l->frame_ts;
    jc.min_delay = l->frame_ts;
    jc.max_delay = l->clock / 5; /* 200 ms */
    if (mix_jb_init(&l->jb, &jc) != 0)
        return -EINVAL;
    mix_talk_init(&l->talk);
    l->gain = MIX_GAIN_UNITY;
    l->l_gain_db = 0.0f;
    l->out_silent = true;
    l->heard_none = true;
    return 0;
}

int mix_leg_new(struct mix_room *r, const struct mix_leg_config *c,
                struct mix_leg **out)
{
    struct mix_leg_config def;
    struct mix_cmd cmd = {.type = MIX_CMD_LEG_ADD, .room = r};
    struct mix_group *g = NULL;
    struct mix_leg *l;
    int rc;

    *out = NULL;
    if (!c) {
        mix_leg_config_default(&def);
        c = &def;
    }
    if (r->l_dying || !leg_config_ok(c))
        return -EINVAL;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    rc = leg_build(l, r, c);
    if (rc)
        goto err;
    rc = group_get(r, c, &g);
    if (rc)
        goto err;
    l->group = g;
    g->refs++;
    if (r->naive) {
        /* The baseline gives every listener an encoder of its own. rt has
         * not seen the leg yet, so its rt field may be set here. */
        l->l_own = calloc(1, sizeof(*l->l_own));
        rc = l->l_own ? slot_init(l->l_own, g, r->rate) : -ENOMEM;
        if (rc) {
            group_put(r, g);
            goto err;
        }
        l->own = l->l_own;
    }
    cmd.leg = l;
    rc = mix__post(r->w, &cmd);
    if (rc) {
        group_put(r, g);
        goto err;
    }
    l->l_next = r->l_legs;
    if (r->l_legs)
        r->l_legs->l_prev = l;
    r->l_legs = l;
    *out = l;
    return 0;
err:
    mix__leg_free(l);
    return rc;
}

int mix_leg_destroy(struct mix_leg *l)
{
    struct mix_cmd cmd = {.type = MIX_CMD_LEG_REMOVE, .room = l->room, .leg = l};
    int rc;

    if (l->l_dying)
        return -EALREADY;
    rc = mix__post(l->room->w, &cmd);
    if (rc)
        return rc;
    l->l_dying = true;
    group_put(l->room, l->group);
    return 0;
}

static int post_controls(struct mix_leg *l)
{
    struct mix_cmd cmd = {.type = MIX_CMD_LEG_CONTROLS, .room = l->room, .leg = l};

    if (l->l_dying)
        return -EINVAL;
    cmd.u.ctl.muted = l->l_muted;
    cmd.u.ctl.deaf = l->l_deaf;
    cmd.u.ctl.suspended = l->l_suspended;
    cmd.u.ctl.gain = mix_ops_gain_q16(l->l_gain_db);
    return mix__post(l->room->w, &cmd);
}

int mix_leg_set_muted(struct mix_leg *l, bool muted)
{
    bool old = l->l_muted;
    int rc;

    l->l_muted = muted;
    rc = post_controls(l);
    if (rc)
        l->l_muted = old;
    return rc;
}

int mix_leg_set_deaf(struct mix_leg *l, bool deaf)
{
    bool old = l->l_deaf;
    int rc;

    l->l_deaf = deaf;
    rc = post_controls(l);
    if (rc)
        l->l_deaf = old;
    return rc;
}

int mix_leg_set_suspended(struct mix_leg *l, bool suspended)
{
    bool old = l->l_suspended;
    int rc;

    l->l_suspended = suspended;
    rc = post_controls(l);
    if (rc)
        l->l_suspended = old;
    return rc;
}

int mix_leg_set_gain(struct mix_leg *l, float db)
{
    float old = l->l_gain_db;
    int rc;

    if (db != db || db < -100.0f || db > 20.0f)
        return -EINVAL;
    l->l_gain_db = db;
    rc = post_controls(l);
    if (rc)
        l->l_gain_db = old;
    return rc;
}

int mix_leg_exclude(struct mix_leg *l, const struct mix_leg *speaker, bool on)
{
    struct mix_cmd cmd = {.type = MIX_CMD_LEG_EXCLUDE, .room = l->room, .leg = l};
    uint32_t i;
    int rc;

    if (l->l_dying || speaker->room != l->room || speaker == l)
        return -EINVAL;
    for (i = 0; i < l->l_nexcl; i++)
        if (l->l_excl[i] == speaker->id)
            break;
    if (on && i < l->l_nexcl)
        return 0;
    if (!on && i == l->l_nexcl)
        return 0;
    if (on && l->l_nexcl == MIX_MAX_EXCLUDE)
        return -ENOSPC;
    /* A listener with exclusions may need a mix of its own at any time:
     * give it an encoder of its own, once. */
    if (on && !l->l_own) {
        l->l_own = calloc(1, sizeof(*l->l_own));
        if (!l->l_own)
            return -ENOMEM;
        rc = slot_init(l->l_own, l->group, l->room->rate);
        if (rc) {
            free(l->l_own);
            l->l_own = NULL;
            return rc;
        }
    }
    if (on)
        l->l_excl[l->l_nexcl++] = speaker->id;
    else
        l->l_excl[i] = l->l_excl[--l->l_nexcl];
    memcpy(cmd.u.excl.ids, l->l_excl, sizeof(l->l_excl));
    cmd.u.excl.n = l->l_nexcl;
    cmd.u.excl.own = l->l_own;
    rc = mix__post(l->room->w, &cmd);
    if (rc) {
        /* Undo the shadow change; the encoder is kept for next time. */
        if (on)
            l->l_nexcl--;
        else
            l->l_excl[l->l_nexcl++] = speaker->id;
    }
    return rc;
}

int mix_leg_push(struct mix_leg *l, const struct mix_in_meta *m,
                 const void *payload, uint32_t len)
{
    int rc;

    cnt_add(&l->c.packets_in, 1);
    if (len == 0 || len > MIX_JB_MAX_PAYLOAD) {
        cnt_add(&l->c.invalid_loop, 1);
        return -EMSGSIZE;
    }
    rc = mix_ring_push2(&l->in, m, sizeof(*m), payload, len);
    if (rc) {
        cnt_add(&l->c.in_dropped, 1);
        return -ENOSPC;
    }
    cnt_add(&l->c.bytes_in, len);
    return 0;
}

int mix_leg_pop(struct mix_leg *l, struct mix_out_meta *m, void *buf,
                uint32_t cap)
{
    uint8_t rec[sizeof(struct mix_out_meta) + MIX_MAX_PACKET];
    int32_t n = mix_ring_pop(&l->out, rec, sizeof(rec));

    if (n < (int32_t)sizeof(*m))
        return n == -EMSGSIZE ? -EMSGSIZE : -EAGAIN;
    memcpy(m, rec, sizeof(*m));
    if (m->len > cap || m->len != (uint32_t)n - sizeof(*m))
        return -EMSGSIZE;
    memcpy(buf, rec + sizeof(*m), m->len);
    return m->len;
}

uint32_t mix_leg_id(const struct mix_leg *l)
{
    return l->id;
}

void *mix_leg_user(const struct mix_leg *l)
{
    return l->user;
}

void mix_leg_stats(const struct mix_leg *l, struct mix_leg_stats *o)
{
    const struct mix_leg_counters *c = &l->c;

    memset(o, 0, sizeof(*o));
    o->packets_in = cnt_get(&c->packets_in);
    o->in_dropped = cnt_get(&c->in_dropped);
    o->packets_out = cnt_get(&c->packets_out);
    o->out_dropped = cnt_get(&c->out_dropped);
    o->bytes_in = cnt_get(&c->bytes_in);
    o->bytes_out = cnt_get(&c->bytes_out);
    o->late = cnt_get(&c->late);
    o->lost = cnt_get(&c->lost);
    o->duplicate = cnt_get(&c->duplicate);
    o->concealed = cnt_get(&c->concealed);
    o->fec_recovered = cnt_get(&c->fec_recovered);
    o->dropped_delay = cnt_get(&c->dropped_delay);
    o->resync = cnt_get(&c->resync);
    o->overflow = cnt_get(&c->overflow);
    o->forwarded = cnt_get(&c->forwarded);
    o->invalid = cnt_get(&c->invalid) + cnt_get(&c->invalid_loop);
    o->decodes = cnt_get(&c->decodes);
    o->encodes_own = cnt_get(&c->encodes_own);
    o->jb_depth_ms = (uint32_t)cnt_get(&c->jb_depth_ms);
    o->jb_target_ms = (uint32_t)cnt_get(&c->jb_target_ms);
    o->level = (uint32_t)cnt_get(&c->level);
    o->talking = cnt_get(&c->talking) != 0;
    o->mixed = cnt_get(&c->mixed) != 0;
}
