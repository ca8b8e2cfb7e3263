/*
 * mix_cycle.c: the real-time half of the engine. Applies commands between
 * cycles and runs one frame of a room:
 *
 *   1. ingest   per leg, input ring -> jitter buffer
 *   2. pull     per leg, jitter buffer -> audio at the room rate, or a packet
 *               left undecoded (it carries an RFC 6464 level, so its
 *               loudness is known without decoding), or silence
 *   3. talk     per leg, talk detection and events
 *   4. select   the K loudest talkers, with hysteresis
 *   5. plan     per listener: the common mix, a mix of its own (a talker does
 *               not hear itself; exclusions), the single talker's packet as
 *               it came (when that is all it hears), silence, or nothing
 *   6. mix      only if some listener hears a mix: decode what was deferred
 *               for the selected talkers, sum them in 32 bits (plus comfort
 *               noise)
 *   7. send     the common mix is limited, resampled and encoded once per
 *               encoder group and its bytes go to every listener of that
 *               group; own mixes are mix-minus by subtraction from the sum,
 *               each with its own limiter and encoder; silence is a cached
 *               packet
 *
 * Thread: rt. Nothing here allocates, frees, locks, logs or blocks; every
 * loop is bounded by the number of legs, K, or a constant.
 */
#include <errno.h>
#include <string.h>

#include "mix_internal.h"

/* Hysteresis of the loudest-talker set: a newcomer must be this much louder
 * than the weakest member to displace it. */
static const float SWAP_MARGIN_DB = 6.0f;
/* Packets taken from one leg's input ring per frame; the rest wait. */
enum { INGEST_MAX = 64 };

static const struct mix_talk_config TALK_CFG = {
    .start_level = 45,
    .stop_level = 52,
    .onset_ms = 20,
    .hangover_ms = 500,
};

enum leg_mode {
    MODE_NONE = 0,  /* suspended: nothing at all */
    MODE_SHARED,    /* the group's common mix */
    MODE_OWN,       /* a mix of its own */
    MODE_SILENCE,   /* deaf: encoded silence */
    MODE_QUIET,     /* suppressed: nothing, or a keep-alive */
    MODE_FORWARD,   /* the single talker's own packet */
    MODE_LOST,      /* forwarded talker lost this frame: pass the loss on */
};

/* ---- release queues ---- */

static void queue_leg(struct mix_worker *w, struct mix_leg *l)
{
    l->rt_next_free = NULL;
    *w->free_legs_tail = l;
    w->free_legs_tail = &l->rt_next_free;
}

static void queue_group(struct mix_worker *w, struct mix_group *g)
{
    g->rt_next_free = NULL;
    *w->free_groups_tail = g;
    w->free_groups_tail = &g->rt_next_free;
}

static void queue_room(struct mix_worker *w, struct mix_room *r)
{
    r->rt_next_free = NULL;
    *w->free_rooms_tail = r;
    w->free_rooms_tail = &r->rt_next_free;
}

/* Hands released objects back to the loop, legs before groups before rooms
 * (the loop's bookkeeping of a leg reads its room). Whatever does not fit in
 * the event ring now is retried next cycle; nothing is ever dropped. */
void mix__flush_releases(struct mix_worker *w)
{
    while (w->free_legs) {
        struct mix_leg *l = w->free_legs;
        struct mix_rec rec = {
            .kind = MIX_REC_FREE_LEG,
            .obj = l,
            .ev = {.type = MIX_EV_LEG_RELEASED, .room_id = l->room->id,
                   .room_user = l->room->user, .leg_id = l->id,
                   .leg_user = l->user, .worker = w->idx},
        };
        /* Read the link first: once the record is in the ring the loop
         * may free the object at any moment. */
        struct mix_leg *next = l->rt_next_free;

        if (!mix__emit(w, &rec))
            return;
        w->free_legs = next;
        if (!w->free_legs)
            w->free_legs_tail = &w->free_legs;
    }
    while (w->free_groups) {
        struct mix_group *g = w->free_groups;
        struct mix_rec rec = {.kind = MIX_REC_FREE_GROUP, .obj = g};
        /* Read the link first: once the record is in the ring the loop
         * may free the object at any moment. */
        struct mix_group *next = g->rt_next_free;

        if (!mix__emit(w, &rec))
            return;
        w->free_groups = next;
        if (!w->free_groups)
            w->free_groups_tail = &w->free_groups;
    }
    while (w->free_rooms) {
        struct mix_room *r = w->free_rooms;
        struct mix_rec rec = {
            .kind = MIX_REC_FREE_ROOM,
            .obj = r,
            .ev = {.type = MIX_EV_ROOM_RELEASED, .room_id = r->id,
                   .room_user = r->user, .worker = w->idx},
        };
        /* Read the link first: once the record is in the ring the loop
         * may free the object at any moment. */
        struct mix_room *next = r->rt_next_free;

        if (!mix__emit(w, &rec))
            return;
        w->free_rooms = next;
        if (!w->free_rooms)
            w->free_rooms_tail = &w->free_rooms;
    }
}

/* ---- commands ---- */

static void sel_remove(struct mix_room *r, struct mix_leg *l)
{
    uint32_t j = 0;

    for (uint32_t i = 0; i < r->nsel; i++)
        if (r->sel[i] != l)
            r->sel[j++] = r->sel[i];
    r->nsel = j;
    l->selected = false;
}

static void slot_release(struct mix_leg *l)
{
    if (l->cur && l->cur->owner == l)
        l->cur->owner = NULL;
    l->cur = NULL;
    l->was_custom = false;
}

static void leg_unlink(struct mix_worker *w, struct mix_room *r, struct mix_leg *l)
{
    if (l->talk.talking) {
        l->talk.talking = false;
        mix__emit_event(w, MIX_EV_STOPPED_TALKING, r, l, 0);
    }
    sel_remove(r, l);
    slot_release(l);
    for (struct mix_leg *o = r->legs; o; o = o->next)
        if (o->fwd_from == l)
            o->fwd_from = NULL;
    if (l->prev)
        l->prev->next = l->next;
    else
        r->legs = l->next;
    if (l->next)
        l->next->prev = l->prev;
    r->nlegs--;
    cnt_add(&w->legs_n, (uint64_t)-1);
    queue_leg(w, l);
}

static void room_unlink(struct mix_worker *w, struct mix_room *r)
{
    while (r->legs)
        leg_unlink(w, r, r->legs);
    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++) {
        if (r->groups[i])
            queue_group(w, r->groups[i]);
        r->groups[i] = NULL;
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        w->rooms = r->next;
    if (r->next)
        r->next->prev = r->prev;
    cnt_add(&w->rooms_n, (uint64_t)-1);
    queue_room(w, r);
}

static void leg_reset_audio(struct mix_leg *l)
{
    mix_jb_reset(&l->jb);
    l->fifo_len = 0;
    l->dec_stale = true;
}

void mix__apply(struct mix_worker *w, const struct mix_cmd *c)
{
    struct mix_room *r = c->room;
    struct mix_leg *l = c->leg;

    switch (c->type) {
    case MIX_CMD_ROOM_ADD:
        r->prev = NULL;
        r->next = w->rooms;
        if (w->rooms)
            w->rooms->prev = r;
        w->rooms = r;
        cnt_add(&w->rooms_n, 1);
        break;
    case MIX_CMD_ROOM_REMOVE:
        room_unlink(w, r);
        break;
    case MIX_CMD_ROOM_SET:
        r->k = c->u.set.k;
        while (r->nsel > r->k)
            sel_remove(r, r->sel[r->nsel - 1]);
        r->suppress = c->u.set.suppress;
        r->cn = c->u.set.cn;
        r->cn_dbov = c->u.set.cn_dbov;
        r->forward = c->u.set.forward;
        break;
    case MIX_CMD_GROUP_ADD:
        r->groups[c->group->slot] = c->group;
        break;
    case MIX_CMD_GROUP_REMOVE:
        if (r->groups[c->group->slot] == c->group)
            r->groups[c->group->slot] = NULL;
        queue_group(w, c->group);
        break;
    case MIX_CMD_POOL_GROW:
        c->group->pool_rt = c->u.pool_n;
        break;
    case MIX_CMD_LEG_ADD:
        l->prev = NULL;
        l->next = r->legs;
        if (r->legs)
            r->legs->prev = l;
        r->legs = l;
        r->nlegs++;
        l->last_out_frame = r->frames;
        cnt_add(&w->legs_n, 1);
        break;
    case MIX_CMD_LEG_REMOVE:
        leg_unlink(w, r, l);
        break;
    case MIX_CMD_LEG_CONTROLS:
        if (c->u.ctl.suspended && !l->suspended) {
            slot_release(l);
            sel_remove(r, l);
        }
        if (c->u.ctl.suspended != l->suspended)
            leg_reset_audio(l);
        l->muted = c->u.ctl.muted;
        l->deaf = c->u.ctl.deaf;
        l->suspended = c->u.ctl.suspended;
        l->gain = c->u.ctl.gain;
        break;
    case MIX_CMD_LEG_EXCLUDE:
        memcpy(l->excl, c->u.excl.ids, sizeof(l->excl));
        l->nexcl = c->u.excl.n;
        if (l->own != c->u.excl.own) {
            slot_release(l);
            l->own = c->u.excl.own;
        }
        break;
    }
}

/* ---- 1. ingest ---- */

static uint32_t ns_to_clock(uint64_t ns, uint32_t clock)
{
    return (uint32_t)(ns / 1000u * clock / 1000000u);
}

/* Duration of a packet in RTP clock units, or 0 when it is not a valid
 * packet of the leg's codec. */
static uint32_t packet_duration(const struct mix_leg *l, const uint8_t *p,
                                uint32_t len)
{
    int n;

    if (l->codec != MIX_CODEC_OPUS)
        return len <= MIX_MAX_PKT_DUR_48K / 6 ? len : 0;
    n = opus_packet_get_nb_samples(p, (opus_int32)len, 48000);
    if (n <= 0 || n > MIX_MAX_PKT_DUR_48K)
        return 0;
    return (uint32_t)n;
}

static void leg_ingest(struct mix_leg *l)
{
    uint8_t rec[sizeof(struct mix_in_meta) + MIX_JB_MAX_PAYLOAD];

    for (int i = 0; i < INGEST_MAX; i++) {
        struct mix_in_meta m;
        struct mix_jb_meta jm;
        int32_t n = mix_ring_pop(&l->in, rec, sizeof(rec));
        uint32_t len;

        if (n == -EAGAIN)
            break;
        if (n < (int32_t)sizeof(m)) {
            cnt_add(&l->c.invalid, 1);
            continue;
        }
        if (l->suspended)
            continue;
        memcpy(&m, rec, sizeof(m));
        len = (uint32_t)n - sizeof(m);
        jm.seq = m.seq;
        jm.ts = m.ts;
        jm.arrival = ns_to_clock(m.arrival_ns, l->clock);
        jm.level = m.level;
        jm.vad = m.vad;
        jm.duration = packet_duration(l, rec + sizeof(m), len);
        if (jm.duration == 0) {
            cnt_add(&l->c.invalid, 1);
            continue;
        }
        mix_jb_put(&l->jb, &jm, rec + sizeof(m), len);
    }
}

/* ---- 2. pull ---- */

static void fifo_append(struct mix_leg *l, const int16_t *pcm, uint32_t n)
{
    uint32_t room = MIX_FIFO - l->fifo_len;

    if (n > room)
        n = room;
    if (pcm)
        memcpy(l->fifo + l->fifo_len, pcm, n * sizeof(int16_t));
    else
        memset(l->fifo + l->fifo_len, 0, n * sizeof(int16_t));
    l->fifo_len += n;
}

/* Appends decoded audio at the leg's rate, converting to the room's. */
static void fifo_append_resampled(struct mix_leg *l, const int16_t *pcm,
                                  uint32_t n)
{
    spx_uint32_t in_len = n, out_len = MIX_FIFO - l->fifo_len;

    if (!l->up) {
        fifo_append(l, pcm, n);
        return;
    }
    speex_resampler_process_int(l->up, 0, pcm, &in_len, l->fifo + l->fifo_len,
                                &out_len);
    l->fifo_len += out_len;
}

/* Decodes one packet (or its FEC, or a concealment when @data is NULL) of
 * @dur RTP clock units into the FIFO. */
static void leg_decode(struct mix_worker *w, struct mix_leg *l,
                       const uint8_t *data, uint32_t len, uint32_t dur, int fec)
{
    uint32_t samples = (uint32_t)((uint64_t)dur * l->rate / l->clock);
    bool fade = false;
    int n;

    if (samples == 0 || samples > MIX_MAX_PKT_DUR_48K)
        return;
    if (l->codec != MIX_CODEC_OPUS) {
        if (!data) {
            /* G.711 has no concealment of its own: play silence. */
            fifo_append(l, NULL, samples);
            return;
        }
        for (uint32_t i = 0; i < len && i < samples; i++)
            w->dec16[i] = l->codec == MIX_CODEC_PCMU ? mix_g711_ulaw_decode(data[i])
                                                     : mix_g711_alaw_decode(data[i]);
        fifo_append_resampled(l, w->dec16, len < samples ? len : samples);
        return;
    }
    if (l->dec_stale) {
        /* Concealing or rebuilding from a state that missed packets only
         * makes noise: play silence until the next real packet. */
        if (!data || fec) {
            fifo_append(l, NULL, (uint32_t)((uint64_t)samples * l->room->rate / l->rate));
            return;
        }
        /* The decoder skipped packets (silence, or not among the loudest):
         * restart it cleanly and fade in, so resuming does not click. */
        opus_decoder_ctl(l->dec, OPUS_RESET_STATE);
        l->dec_stale = false;
        fade = true;
    }
    n = opus_decode(l->dec, data, (opus_int32)len, w->dec16, (int)samples, fec);
    cnt_add(&w->decodes, 1);
    cnt_add(&l->c.decodes, 1);
    if (n < 0) {
        cnt_add(&l->c.invalid, 1);
        l->dec_stale = true;
        fifo_append(l, NULL, (uint32_t)((uint64_t)samples * l->room->rate / l->rate));
        return;
    }
    if (fade)
        mix_ops_fade_in(w->dec16, (uint32_t)n);
    fifo_append_resampled(l, w->dec16, (uint32_t)n);
}

/* A packet that need not be decoded: muted leg, RFC 6464 silence, or an Opus
 * DTX frame (at most 2 bytes). */
static bool packet_silent(const struct mix_leg *l, const struct mix_jb_packet *p)
{
    if (l->room->naive) /* the baseline decodes everything */
        return false;
    return l->muted || p->meta.level == MIX_LEVEL_SILENT ||
           (l->codec == MIX_CODEC_OPUS && p->len <= 2);
}

static bool can_defer(const struct mix_leg *l, const struct mix_jb_packet *p)
{
    return !l->room->naive && l->codec == MIX_CODEC_OPUS && l->fifo_len == 0 &&
           p->meta.level != MIX_JB_LEVEL_NONE &&
           p->meta.duration == l->frame_ts;
}

/* Room samples for @dur RTP clock units of this leg. */
static uint32_t room_samples(const struct mix_leg *l, uint32_t dur)
{
    return (uint32_t)((uint64_t)dur * l->room->rate / l->clock);
}

/* Fills this frame of the leg: has_pcm with audio in fifo[0..frame), or a
 * deferred packet, or neither (silence). Sets frame_level. */
static void leg_pull(struct mix_worker *w, struct mix_room *r, struct mix_leg *l)
{
    uint32_t now = ns_to_clock(w->now_ns, l->clock);
    bool silent_only = true;

    l->has_pcm = false;
    l->deferred = NULL;
    l->fwd = NULL;
    l->frame_level = MIX_LEVEL_SILENT;

    for (int i = 0; l->fifo_len < r->frame && i < MIX_PULL_MAX; i++) {
        struct mix_jb_out o;

        mix_jb_get(&l->jb, now, &o);
        switch (o.kind) {
        case MIX_JB_EMPTY:
        case MIX_JB_SILENCE:
            l->dec_stale = true;
            if (l->fifo_len == 0)
                goto out; /* a silent frame: nothing to store or mix */
            fifo_append(l, NULL, room_samples(l, o.duration));
            break;
        case MIX_JB_PACKET:
            if (packet_silent(l, o.pkt)) {
                l->dec_stale = true;
                if (l->fifo_len == 0)
                    goto out;
                fifo_append(l, NULL, room_samples(l, o.duration));
                break;
            }
            if (l->fifo_len == 0 && o.duration == l->frame_ts &&
                l->codec == MIX_CODEC_OPUS)
                l->fwd = o.pkt;
            if (can_defer(l, o.pkt)) {
                l->deferred = o.pkt;
                l->frame_level = o.pkt->meta.level;
                return;
            }
            silent_only = false;
            leg_decode(w, l, o.pkt->data, o.pkt->len, o.duration, 0);
            break;
        case MIX_JB_FEC:
            silent_only = false;
            if (l->codec == MIX_CODEC_OPUS)
                cnt_add(&l->c.fec_recovered, 1);
            leg_decode(w, l, l->codec == MIX_CODEC_OPUS ? o.pkt->data : NULL,
                       o.pkt->len, o.duration, 1);
            break;
        case MIX_JB_LOST:
            silent_only = false;
            cnt_add(&l->c.concealed, 1);
            leg_decode(w, l, NULL, 0, o.duration, 0);
            break;
        }
    }
out:
    if (l->fifo_len == 0 && silent_only)
        return;
    if (l->fifo_len < r->frame)
        fifo_append(l, NULL, r->frame - l->fifo_len);
    l->has_pcm = true;
    l->frame_level = mix_ops_level(l->fifo, r->frame);
}

/* Decodes the deferred packet of a talker that was selected. */
static void leg_decode_deferred(struct mix_worker *w, struct mix_room *r,
                                struct mix_leg *l)
{
    const struct mix_jb_packet *p = l->deferred;

    l->deferred = NULL;
    leg_decode(w, l, p->data, p->len, p->meta.duration, 0);
    if (l->fifo_len < r->frame)
        fifo_append(l, NULL, r->frame - l->fifo_len);
    l->has_pcm = true;
}

static void fifo_consume(struct mix_leg *l, uint32_t n)
{
    if (n >= l->fifo_len) {
        l->fifo_len = 0;
        return;
    }
    memmove(l->fifo, l->fifo + n, (l->fifo_len - n) * sizeof(int16_t));
    l->fifo_len -= n;
}

/* ---- 3. talk, 4. select ---- */

static void leg_talk(struct mix_worker *w, struct mix_room *r, struct mix_leg *l)
{
    uint8_t level = l->muted ? MIX_LEVEL_SILENT : l->frame_level;

    switch (mix_talk_update(&l->talk, &TALK_CFG, level, r->frame_ms)) {
    case MIX_TALK_STARTED:
        mix__emit_event(w, MIX_EV_TALKING, r, l, level);
        break;
    case MIX_TALK_STOPPED:
        mix__emit_event(w, MIX_EV_STOPPED_TALKING, r, l, 0);
        break;
    case MIX_TALK_NONE:
        break;
    }
}

static bool candidate(const struct mix_leg *l)
{
    return !l->muted && !l->suspended && l->talk.talking;
}

static struct mix_leg *loudest_unselected(struct mix_room *r)
{
    struct mix_leg *best = NULL;

    for (struct mix_leg *l = r->legs; l; l = l->next)
        if (!l->selected && candidate(l) &&
            (!best || l->talk.smooth_db > best->talk.smooth_db))
            best = l;
    return best;
}

static void sel_add(struct mix_room *r, struct mix_leg *l)
{
    r->sel[r->nsel++] = l;
    l->selected = true;
}

/* Keeps the set of the K loudest talkers. Members stay while they talk
 * (hang-over included); free places go to the loudest candidates; a full set
 * changes only when an outsider is SWAP_MARGIN_DB louder than the weakest
 * member, so two talkers of similar level do not flap in and out. */
static void select_talkers(struct mix_room *r)
{
    uint32_t j = 0;
    struct mix_leg *best;

    for (uint32_t i = 0; i < r->nsel; i++) {
        if (candidate(r->sel[i]))
            r->sel[j++] = r->sel[i];
        else
            r->sel[i]->selected = false;
    }
    r->nsel = j;
    while (r->nsel < r->k && (best = loudest_unselected(r)))
        sel_add(r, best);
    if (r->nsel == r->k && r->nsel > 0 && (best = loudest_unselected(r))) {
        uint32_t weakest = 0;
        for (uint32_t i = 1; i < r->nsel; i++)
            if (r->sel[i]->talk.smooth_db < r->sel[weakest]->talk.smooth_db)
                weakest = i;
        if (best->talk.smooth_db > r->sel[weakest]->talk.smooth_db + SWAP_MARGIN_DB) {
            r->sel[weakest]->selected = false;
            r->sel[weakest] = best;
            best->selected = true;
        }
    }
}

/* ---- 5. plan, 6. mix, 7. send ---- */

static bool excludes(const struct mix_leg *l, uint32_t id)
{
    for (uint32_t i = 0; i < l->nexcl; i++)
        if (l->excl[i] == id)
            return true;
    return false;
}

static void push_out(struct mix_worker *w, struct mix_room *r, struct mix_leg *l,
                     const uint8_t *data, int len, uint8_t flags, uint8_t level)
{
    struct mix_out_meta m;

    if (len <= 0 && !(flags & MIX_OUT_LOST))
        return;
    if (len < 0)
        len = 0;
    if (l->out_silent && !(flags & (MIX_OUT_KEEPALIVE | MIX_OUT_LOST)))
        flags |= MIX_OUT_MARKER;
    m.ts = (uint32_t)(r->frames * l->group->ts_step);
    m.len = (uint16_t)len;
    m.flags = flags;
    m.level = level;
    if (mix_ring_push2(&l->out, &m, sizeof(m), data, (uint32_t)len) != 0) {
        cnt_add(&l->c.out_dropped, 1);
        return;
    }
    if (!(flags & (MIX_OUT_KEEPALIVE | MIX_OUT_LOST)))
        l->out_silent = false;
    l->last_out_frame = r->frames;
    cnt_add(&l->c.packets_out, 1);
    cnt_add(&l->c.bytes_out, (uint64_t)len);
    w->produced = true;
}

/* Limits a wide mix, converts it to the group's rate and encodes it.
 * Returns the packet length, or a negative value on encoder failure. */
static int encode_mix(struct mix_worker *w, struct mix_room *r,
                      struct mix_group *g, const int32_t *mix,
                      struct mix_limiter *lim, SpeexResamplerState *down,
                      OpusEncoder *enc, uint8_t *out, uint8_t *level)
{
    const int16_t *src = w->pcm16;
    int n;

    mix_limiter_process(lim, mix, w->pcm16, r->frame);
    *level = mix_ops_level(w->pcm16, r->frame);
    if (down) {
        spx_uint32_t in_len = r->frame, out_len = g->frame;
        speex_resampler_process_int(down, 0, w->pcm16, &in_len, w->rs16, &out_len);
        if (out_len < g->frame)
            memset(w->rs16 + out_len, 0, (g->frame - out_len) * sizeof(int16_t));
        src = w->rs16;
    }
    w->cycle_encodes++;
    cnt_add(&w->encodes, 1);
    if (g->codec == MIX_CODEC_OPUS) {
        n = opus_encode(enc, src, (int)g->frame, out, MIX_MAX_PACKET);
        return n;
    }
    for (uint32_t i = 0; i < g->frame; i++)
        out[i] = g->codec == MIX_CODEC_PCMU ? mix_g711_ulaw_encode(src[i])
                                            : mix_g711_alaw_encode(src[i]);
    return (int)g->frame;
}

static void send_shared(struct mix_worker *w, struct mix_room *r,
                        struct mix_leg *l)
{
    struct mix_group *g = l->group;

    if (!g->shared_done) {
        /* The encoder sat idle while the room was suppressed or everyone had
         * mixes of their own: start it afresh rather than predict from an
         * old frame. */
        if (g->shared_skipped && g->shared)
            opus_encoder_ctl(g->shared, OPUS_RESET_STATE);
        g->shared_len = encode_mix(w, r, g, w->acc, &g->lim, g->down, g->shared,
                                   g->shared_pkt, &g->shared_level);
        g->shared_done = true;
    }
    push_out(w, r, l, g->shared_pkt, g->shared_len, 0, g->shared_level);
}

static void send_silence(struct mix_worker *w, struct mix_room *r,
                         struct mix_leg *l)
{
    push_out(w, r, l, l->group->silence, l->group->silence_len, 0, MIX_LEVEL_SILENT);
}

static void send_quiet(struct mix_worker *w, struct mix_room *r,
                       struct mix_leg *l)
{
    uint64_t idle_ms = (r->frames - l->last_out_frame) * r->frame_ms;

    l->out_silent = true;
    if (idle_ms + r->frame_ms > MIX_KEEPALIVE_EVERY_MS)
        push_out(w, r, l, l->group->silence, l->group->silence_len,
                 MIX_OUT_KEEPALIVE, MIX_LEVEL_SILENT);
}

static void send_forward(struct mix_worker *w, struct mix_room *r,
                         struct mix_leg *l)
{
    const struct mix_leg *t = l->fwd_from;

    push_out(w, r, l, t->fwd->data, t->fwd->len, 0, t->frame_level);
    cnt_add(&l->c.forwarded, 1);
}

static void send_own(struct mix_worker *w, struct mix_room *r, struct mix_leg *l)
{
    struct mix_enc_slot *s = l->cur;
    uint8_t level;
    int n;

    /* Mix-minus: the sum less what this listener must not hear. */
    memcpy(w->mix, w->acc, r->frame * sizeof(int32_t));
    for (uint32_t i = 0; i < r->nsel; i++) {
        struct mix_leg *t = r->sel[i];
        if (t->has_pcm && (t == l || excludes(l, t->id)))
            mix_ops_sub(w->mix, t->fifo, r->frame, t->gain);
    }
    n = encode_mix(w, r, l->group, w->mix, &s->lim, s->down, s->enc, w->pkt,
                   &level);
    cnt_add(&l->c.encodes_own, 1);
    push_out(w, r, l, w->pkt, n, 0, level);
}

static struct mix_enc_slot *slot_take(struct mix_leg *l)
{
    struct mix_group *g = l->group;

    if (l->own)
        return l->own;
    if (l->cur && l->cur->owner == l)
        return l->cur;
    for (uint32_t i = 0; i < g->pool_rt; i++) {
        if (!g->pool[i].owner) {
            g->pool[i].owner = l;
            return &g->pool[i];
        }
    }
    return NULL;
}

static void send_lost(struct mix_worker *w, struct mix_room *r, struct mix_leg *l)
{
    push_out(w, r, l, NULL, 0, MIX_OUT_LOST, MIX_LEVEL_SILENT);
}

/* What @l hears this frame (no side effects but fwd_from):
 *  - nothing at all when suspended;
 *  - nothing but keep-alives when the room suppresses silence and the
 *    listener has nobody to hear (or is deaf);
 *  - encoded silence when deaf, or when it has nobody to hear but would hear
 *    itself in the common mix;
 *  - the single talker's own packet when it hears exactly one talker whose
 *    frame is one whole packet that needs no processing (unity gain, no
 *    comfort noise, Opus on both sides): no decode or encode is needed for it;
 *  - the common mix when it hears every selected talker;
 *  - else a mix of its own. */
static enum leg_mode plan_mode(const struct mix_room *r, struct mix_leg *l)
{
    uint32_t hidden = 0, heard;
    struct mix_leg *only = NULL;

    if (l->suspended) {
        l->fwd_from = NULL;
        l->heard_none = true;
        return MODE_NONE;
    }
    for (uint32_t i = 0; i < r->nsel; i++) {
        struct mix_leg *t = r->sel[i];
        if (t == l || excludes(l, t->id))
            hidden++;
        else
            only = t;
    }
    heard = r->nsel - hidden;
    if (l->deaf || heard == 0) {
        l->fwd_from = NULL;
        l->heard_none = true;
        if (r->suppress)
            return MODE_QUIET;
        return l->deaf || hidden > 0 ? MODE_SILENCE : MODE_SHARED;
    }
    /* Forwarding starts only at a talk spurt (the listener heard nobody a
     * frame ago) and lasts while that talker is all it hears: switching
     * between the talker's encoder and ours mid-speech is audible. */
    if (heard == 1 && r->forward && only->gain == MIX_GAIN_UNITY && !r->cn &&
        l->group->codec == MIX_CODEC_OPUS &&
        (l->fwd_from == only || (l->heard_none && only->fwd))) {
        l->fwd_from = only;
        l->heard_none = false;
        return only->fwd ? MODE_FORWARD : MODE_LOST;
    }
    l->fwd_from = NULL;
    l->heard_none = false;
    return hidden == 0 ? MODE_SHARED : MODE_OWN;
}

/* Gives @l (planned MODE_OWN) its encoder; on the switch from another
 * stream the encoder starts as a byte copy of the common encoder (one flat
 * allocation), so the listener's decoder keeps predicting from the state it
 * knows. Must run before the frame's common encode. Returns false when no
 * encoder is free (cannot happen while nsel <= K = pool size). */
static bool own_prepare(struct mix_leg *l)
{
    struct mix_enc_slot *s = slot_take(l);
    struct mix_group *g = l->group;

    if (!s)
        return false;
    if (!l->was_custom || l->cur != s) {
        if (s->enc && g->shared && !g->shared_skipped)
            memcpy(s->enc, g->shared, g->enc_size);
        else if (s->enc)
            opus_encoder_ctl(s->enc, OPUS_RESET_STATE);
        s->lim = g->lim;
    }
    l->cur = s;
    l->was_custom = true;
    return true;
}

/* ---- the frame ---- */

bool mix__room_due(const struct mix_worker *w, const struct mix_room *r)
{
    return (w->cycle + r->phase) % r->every == 0;
}

static void publish_leg(struct mix_leg *l)
{
    const struct mix_jb_stats *s = &l->jb.stats;
    struct mix_leg_counters *c = &l->c;

    cnt_set(&c->late, s->late);
    cnt_set(&c->lost, s->lost);
    cnt_set(&c->duplicate, s->duplicate);
    cnt_set(&c->dropped_delay, s->dropped_delay);
    cnt_set(&c->resync, s->resync);
    cnt_set(&c->overflow, s->dropped_overflow);
    cnt_set(&c->jb_depth_ms, (uint64_t)mix_jb_depth(&l->jb) * 1000 / l->clock);
    cnt_set(&c->jb_target_ms, (uint64_t)mix_jb_target(&l->jb) * 1000 / l->clock);
    cnt_set(&c->level, l->frame_level);
    cnt_set(&c->talking, l->talk.talking);
    cnt_set(&c->mixed, l->selected);
}

/* The benchmark baseline: every leg decoded and summed, every listener its
 * own mix-minus and its own encode. */
static void naive_cycle(struct mix_worker *w, struct mix_room *r)
{
    struct mix_leg *l;
    uint8_t level;
    int n;

    memset(w->acc, 0, r->frame * sizeof(int32_t));
    for (l = r->legs; l; l = l->next) {
        if (l->deferred)
            leg_decode_deferred(w, r, l);
        if (l->has_pcm && !l->muted && !l->suspended)
            mix_ops_accum(w->acc, l->fifo, r->frame, l->gain);
    }
    for (l = r->legs; l; l = l->next) {
        if (l->suspended || !l->own)
            continue;
        memcpy(w->mix, w->acc, r->frame * sizeof(int32_t));
        if (l->has_pcm && !l->muted)
            mix_ops_sub(w->mix, l->fifo, r->frame, l->gain);
        n = encode_mix(w, r, l->group, w->mix, &l->own->lim, l->own->down,
                       l->own->enc, w->pkt, &level);
        cnt_add(&l->c.encodes_own, 1);
        push_out(w, r, l, w->pkt, n, 0, level);
    }
}

/* Decodes what the selected talkers deferred and sums them (32 bits), plus
 * comfort noise. */
static void build_mix(struct mix_worker *w, struct mix_room *r)
{
    memset(w->acc, 0, r->frame * sizeof(int32_t));
    for (uint32_t i = 0; i < r->nsel; i++) {
        struct mix_leg *t = r->sel[i];
        if (t->deferred)
            leg_decode_deferred(w, r, t);
        if (t->has_pcm)
            mix_ops_accum(w->acc, t->fifo, r->frame, t->gain);
    }
    if (r->cn)
        mix_ops_add_noise(w->acc, r->frame, r->cn_dbov, &r->cn_seed);
}

static void send_all(struct mix_worker *w, struct mix_room *r)
{
    for (struct mix_leg *l = r->legs; l; l = l->next) {
        switch ((enum leg_mode)l->frame_mode) {
        case MODE_SHARED:
            send_shared(w, r, l);
            break;
        case MODE_OWN:
            send_own(w, r, l);
            break;
        case MODE_FORWARD:
            send_forward(w, r, l);
            break;
        case MODE_LOST:
            send_lost(w, r, l);
            break;
        case MODE_SILENCE:
            send_silence(w, r, l);
            break;
        case MODE_QUIET:
            send_quiet(w, r, l);
            break;
        case MODE_NONE:
            break;
        }
    }
}

void mix__room_cycle(struct mix_worker *w, struct mix_room *r)
{
    struct mix_leg *l;
    bool need_mix = false;

    for (l = r->legs; l; l = l->next) {
        leg_ingest(l);
        if (l->suspended)
            continue;
        leg_pull(w, r, l);
        leg_talk(w, r, l);
    }
    if (r->naive) {
        naive_cycle(w, r);
        goto done;
    }
    select_talkers(r);

    /* Plan every listener, then release the encoder slots of those that no
     * longer need one before anybody takes one (so K slots are enough), then
     * give out slots; only then may the common encoder run. */
    for (l = r->legs; l; l = l->next) {
        l->frame_mode = (uint8_t)plan_mode(r, l);
        need_mix |= l->frame_mode == MODE_SHARED || l->frame_mode == MODE_OWN;
    }
    for (l = r->legs; l; l = l->next)
        if (l->frame_mode != MODE_OWN)
            slot_release(l);
    for (l = r->legs; l; l = l->next)
        if (l->frame_mode == MODE_OWN && !own_prepare(l))
            l->frame_mode = MODE_SILENCE; /* never let a talker hear itself */
    /* Nobody hears a mix (everyone forwarded, silent or quiet): no decode,
     * no sum, no encode this frame. */
    if (need_mix)
        build_mix(w, r);

    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++)
        if (r->groups[i])
            r->groups[i]->shared_done = false;
    send_all(w, r);
    for (uint32_t i = 0; i < MIX_MAX_GROUPS; i++)
        if (r->groups[i])
            r->groups[i]->shared_skipped = !r->groups[i]->shared_done;

done:
    for (l = r->legs; l; l = l->next) {
        if (l->deferred) {
            /* Heard only through its level: the decoder missed this packet. */
            l->deferred = NULL;
            l->dec_stale = true;
        }
        if (l->has_pcm)
            fifo_consume(l, r->frame);
        publish_leg(l);
    }
    r->frames++;
}
